//! Debug information of the client's objects: ELF symbols, DWARF line tables and inlined frames,
//! CFI for unwinding, demangling, stack traces and execution contexts. Read lazily per object:
//! mapping an object only records it; its file is read on the first question about it.
//!
//! No I/O here: files are read through a [`FileReader`] (std in tests, the core's raw system
//! calls at run time). Uses [`crate::redir`] only to show wrapper symbols by their function name.

pub mod cfi;
pub mod debuglink;
pub mod demangle;
pub mod dwarf;
pub mod elf;
pub mod elf_syms;
pub mod execontext;
pub mod object;
pub mod registry;
pub mod stacktrace;

#[cfg(test)]
mod tests;

use alloc::vec::Vec;

pub use cfi::{CfaKind, FrameRules, RuleKind, UnwindRegs};
pub use execontext::{ExeContextId, ExeContextTable};
pub use object::DebugObject;
pub use registry::DebugInfo;
pub use stacktrace::{FrameDesc, StackOptions, describe_stack, format_frame, format_stack, get_stack_trace};

/// Reads whole files by path.
pub trait FileReader {
    fn read_file(&mut self, path: &str) -> Option<Vec<u8>>;
}

impl<F: FnMut(&str) -> Option<Vec<u8>>> FileReader for F {
    fn read_file(&mut self, path: &str) -> Option<Vec<u8>> {
        self(path)
    }
}
