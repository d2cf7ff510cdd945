//! The error manager: error kinds registered by tools, deduplication by kind and stack, counts
//! and the summary, suppressions in Valgrind's syntax (parse, match, generate), and XML output
//! (protocol 4). Tool-agnostic: a tool supplies its error details through [`ErrorDetails`].
//! Uses [`crate::debuginfo`] for stacks and [`crate::redir`]'s wildcard matcher.

pub mod manager;
pub mod supp;
pub mod xml;

#[cfg(test)]
mod tests;

pub use manager::{ErrorDetails, ErrorKindId, ErrorKindInfo, ErrorManager, ErrorOptions, ErrorRecord, Recorded, UniqueError};
pub use supp::{FramePat, SuppParseError, Suppression, gen_suppression, parse_suppressions, stack_matches};
