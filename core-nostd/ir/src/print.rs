//! IR pretty-printer.
