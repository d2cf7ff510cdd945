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
    fn read_file(&mut self, path: &str) -> Option<FileBytes>;
}

impl<F: FnMut(&str) -> Option<Vec<u8>>> FileReader for F {
    fn read_file(&mut self, path: &str) -> Option<FileBytes> {
        self(path).map(FileBytes::from)
    }
}

/// The contents of a file: a buffer of our own, or a private read-only mapping of the file
/// (file-backed pages cost memory only once touched, and the kernel may drop them again), which
/// is unmapped when this is dropped.
pub struct FileBytes(Inner);

enum Inner {
    Buffer(Vec<u8>),
    /// `len` bytes mapped at `ptr`, released through `ops`.
    Mapping { ptr: *const u8, len: usize, ops: &'static MappingOps },
}

/// How a [`FileBytes`] mapping is given back.
pub struct MappingOps {
    /// Unmaps `(ptr, len)`; called on drop.
    pub unmap: fn(*const u8, usize),
    /// Drops the resident pages of whole pages `(ptr, len)`: a later read of them reads the
    /// file again.
    pub discard: fn(*const u8, usize),
}

impl FileBytes {
    /// Wraps a private read-only file mapping of `len` bytes at `ptr`.
    ///
    /// # Safety
    /// `[ptr, ptr+len)` must stay mapped and unmodified until `ops.unmap` is called, nothing
    /// else may unmap it, and `ops.discard` must leave its contents unchanged.
    pub unsafe fn from_mapping(ptr: *const u8, len: usize, ops: &'static MappingOps) -> FileBytes {
        FileBytes(Inner::Mapping { ptr, len, ops })
    }

    /// Says `range` will not be read again soon: a mapping drops the whole pages inside it from
    /// memory (they stay readable, from the file). Nothing happens for a buffer.
    pub fn discard(&self, range: core::ops::Range<usize>) {
        const PAGE: usize = 4096;
        if let Inner::Mapping { ptr, len, ops } = self.0 {
            let start = (ptr as usize + range.start.min(len)).next_multiple_of(PAGE);
            let end = (ptr as usize + range.end.min(len)) & !(PAGE - 1);
            if start < end {
                (ops.discard)(start as *const u8, end - start);
            }
        }
    }
}

impl From<Vec<u8>> for FileBytes {
    fn from(v: Vec<u8>) -> FileBytes {
        FileBytes(Inner::Buffer(v))
    }
}

impl core::ops::Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self.0 {
            Inner::Buffer(ref v) => v,
            // SAFETY: the mapping stays until drop (`from_mapping`'s contract).
            Inner::Mapping { ptr, len, .. } => unsafe { core::slice::from_raw_parts(ptr, len) },
        }
    }
}

impl Drop for FileBytes {
    fn drop(&mut self) {
        if let Inner::Mapping { ptr, len, ops } = self.0 {
            (ops.unmap)(ptr, len);
        }
    }
}

impl core::fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FileBytes({} bytes)", self.len())
    }
}

// SAFETY: the bytes are never written through this handle; a mapping is private and read-only,
// and the buffer is owned: sharing or sending the handle is as safe as for a `Vec<u8>`.
unsafe impl Send for FileBytes {}
// SAFETY: as above: only shared reads.
unsafe impl Sync for FileBytes {}
