//! Redirection and function wrapping: Z-encoded names, specifications, the active set.
