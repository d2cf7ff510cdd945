//! `main` of a tool executable: options, logging, banner, client loading, run, exit.
