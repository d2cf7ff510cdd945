//! A code buffer in the core's own memory that the `dynasm!` macro emits into (dynasmrt needs
//! std), and executable memory for the code cache.
//!
//! `dynasm!` expands to plain method calls on the buffer value it is given (`push`, `extend`,
//! `push_i32`, `local_label`, `forward_reloc`, `dynamic_reloc`, ...); [`CodeBuf`] implements the
//! subset the back ends use. Only relative relocations of 1, 2, 4 or 8 bytes are supported
//! (what x86-64 jumps and rip-relative operands need).
//!
//! Depends on `alloc` and the `syscalls` crate only.

use alloc::vec::Vec;

/// A label whose position is decided at run time ([`CodeBuf::new_dynamic_label`]); use it in
/// `dynasm!` as `=>label`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DynLabel(pub u32);

/// A pending relocation: a field at `loc - field_off` that must hold
/// `target - (loc - ref_off) + target_off`.
#[derive(Clone, Copy, Debug)]
struct Fixup {
    loc: usize,
    field_off: u8,
    ref_off: u8,
    target_off: isize,
    size: usize,
}

/// Error from [`CodeBuf::finish`]: a relocation could not be resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeBufError {
    /// A dynamic label was referenced but never placed.
    UnplacedLabel(u32),
    /// A local forward label was referenced but never defined.
    UndefinedLabel(&'static str),
    /// A relative displacement does not fit its field.
    OutOfRange,
}

/// The assembler sink: a growable byte buffer with label bookkeeping.
#[derive(Default)]
pub struct CodeBuf {
    buf: Vec<u8>,
    labels: Vec<(&'static str, usize)>,
    fwd: Vec<(&'static str, Fixup)>,
    dyn_pos: Vec<Option<usize>>,
    dyn_fixups: Vec<(DynLabel, Fixup)>,
    error: Option<CodeBufError>,
}

fn reloc_size(kind: u8) -> usize {
    // dynasm encodes (relocation kind << 6) | size code; only Relative (0) is meaningful for
    // the position-independent code we generate.
    assert!(kind >> 6 == 0, "only relative relocations are supported");
    match kind & 0x3f {
        0 => 1,
        1 => 2,
        2 => 4,
        3 => 8,
        c => panic!("architecture-specific relocation {c} not supported"),
    }
}

impl CodeBuf {
    pub fn new() -> CodeBuf {
        CodeBuf::default()
    }
    pub fn with_capacity(n: usize) -> CodeBuf {
        CodeBuf { buf: Vec::with_capacity(n), ..CodeBuf::default() }
    }
    /// Current position (bytes emitted so far).
    pub fn offset(&self) -> usize {
        self.buf.len()
    }
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
    pub fn push(&mut self, b: u8) {
        self.buf.push(b)
    }
    pub fn extend(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b)
    }
    pub fn push_i8(&mut self, v: i8) {
        self.buf.push(v as u8)
    }
    pub fn push_i16(&mut self, v: i16) {
        self.extend(&v.to_le_bytes())
    }
    pub fn push_i32(&mut self, v: i32) {
        self.extend(&v.to_le_bytes())
    }
    pub fn push_i64(&mut self, v: i64) {
        self.extend(&v.to_le_bytes())
    }
    pub fn push_u16(&mut self, v: u16) {
        self.extend(&v.to_le_bytes())
    }
    pub fn push_u32(&mut self, v: u32) {
        self.extend(&v.to_le_bytes())
    }
    pub fn push_u64(&mut self, v: u64) {
        self.extend(&v.to_le_bytes())
    }
    pub fn align(&mut self, a: usize, with: u8) {
        while !self.buf.len().is_multiple_of(a) {
            self.buf.push(with)
        }
    }
    /// Called by `dynasm!` for operands it can only check at run time (e.g. a dynamic
    /// register that is invalid for the instruction): a back-end bug.
    pub fn runtime_error(&self, msg: &'static str) -> ! {
        panic!("{}", msg)
    }

    /// Overwrite the byte at `at` (e.g. a short jump's displacement known later).
    pub fn patch_u8(&mut self, at: usize, v: u8) {
        self.buf[at] = v;
    }
    /// Overwrite 4 bytes at `at` (e.g. to patch a displacement known later).
    pub fn patch_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn apply(&mut self, f: Fixup, target: usize) {
        let v = target as isize - (f.loc as isize - f.ref_off as isize) + f.target_off;
        let field = f.loc - f.field_off as usize;
        let fits = match f.size {
            1 => i8::try_from(v).is_ok(),
            2 => i16::try_from(v).is_ok(),
            4 => i32::try_from(v).is_ok(),
            _ => true,
        };
        if !fits {
            self.error.get_or_insert(CodeBufError::OutOfRange);
            return;
        }
        self.buf[field..field + f.size].copy_from_slice(&v.to_le_bytes()[..f.size]);
    }

    /// `name:` — defines a local label here and resolves pending forward references to it.
    pub fn local_label(&mut self, name: &'static str) {
        let here = self.offset();
        let mut i = 0;
        while i < self.fwd.len() {
            if self.fwd[i].0 == name {
                let (_, f) = self.fwd.swap_remove(i);
                self.apply(f, here);
            } else {
                i += 1;
            }
        }
        self.labels.push((name, here));
    }
    /// `>name`: a reference to the next definition of `name`.
    pub fn forward_reloc(&mut self, name: &'static str, target_off: isize, field_off: u8, ref_off: u8, kind: u8) {
        let f = Fixup { loc: self.offset(), field_off, ref_off, target_off, size: reloc_size(kind) };
        self.fwd.push((name, f));
    }
    /// `<name`: a reference to the latest definition of `name`.
    pub fn backward_reloc(&mut self, name: &'static str, target_off: isize, field_off: u8, ref_off: u8, kind: u8) {
        let f = Fixup { loc: self.offset(), field_off, ref_off, target_off, size: reloc_size(kind) };
        match self.labels.iter().rev().find(|l| l.0 == name) {
            Some(&(_, target)) => self.apply(f, target),
            None => panic!("backward reference to undefined label {name}"),
        }
    }

    pub fn new_dynamic_label(&mut self) -> DynLabel {
        self.dyn_pos.push(None);
        DynLabel(self.dyn_pos.len() as u32 - 1)
    }
    /// `=>label:` — places a dynamic label here.
    pub fn dynamic_label(&mut self, l: DynLabel) {
        self.dyn_pos[l.0 as usize] = Some(self.offset());
    }
    /// `=>label` as a jump target; resolved in [`CodeBuf::finish`].
    pub fn dynamic_reloc(&mut self, l: DynLabel, target_off: isize, field_off: u8, ref_off: u8, kind: u8) {
        let f = Fixup { loc: self.offset(), field_off, ref_off, target_off, size: reloc_size(kind) };
        self.dyn_fixups.push((l, f));
    }
    /// Position of a placed dynamic label.
    pub fn label_offset(&self, l: DynLabel) -> Option<usize> {
        self.dyn_pos[l.0 as usize]
    }

    /// Resolve all dynamic relocations and return the code.
    pub fn finish(mut self) -> Result<Vec<u8>, CodeBufError> {
        if let Some(&(name, _)) = self.fwd.first() {
            return Err(CodeBufError::UndefinedLabel(name));
        }
        let fixups = core::mem::take(&mut self.dyn_fixups);
        for (l, f) in fixups {
            match self.dyn_pos[l.0 as usize] {
                Some(target) => self.apply(f, target),
                None => return Err(CodeBufError::UnplacedLabel(l.0)),
            }
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.buf),
        }
    }
}

/// A block of anonymous read-write-execute memory for generated code.
pub struct ExecMem {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: ExecMem owns its mapping exclusively; moving it between threads moves that ownership.
unsafe impl Send for ExecMem {}

impl ExecMem {
    /// Map at least `len` bytes (rounded up to pages) readable, writable and executable.
    pub fn new(len: usize) -> Result<ExecMem, syscalls::Errno> {
        let len = (len.max(1) + 4095) & !4095;
        const PROT_RWX: usize = 7;
        const MAP_PRIVATE_ANON: usize = 0x02 | 0x20;
        // SAFETY: an anonymous mapping at a kernel-chosen address touches no existing memory.
        let p = unsafe {
            syscalls::syscall!(syscalls::Sysno::mmap, 0, len, PROT_RWX, MAP_PRIVATE_ANON, usize::MAX, 0)
        }?;
        Ok(ExecMem { ptr: p as *mut u8, len })
    }
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Copy `code` to offset `at` and return its address.
    pub fn write(&mut self, at: usize, code: &[u8]) -> *mut u8 {
        assert!(at + code.len() <= self.len, "code does not fit the executable block");
        // SAFETY: the range was checked to lie inside our mapping.
        unsafe {
            let dst = self.ptr.add(at);
            core::ptr::copy_nonoverlapping(code.as_ptr(), dst, code.len());
            dst
        }
    }
}

impl Drop for ExecMem {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping; nothing refers to it once the owner drops it.
        let _ = unsafe { syscalls::syscall!(syscalls::Sysno::munmap, self.ptr as usize, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_backward_and_dynamic_relocs() {
        let mut b = CodeBuf::new();
        let l = b.new_dynamic_label();
        // a 4-byte rel32 field after one opcode byte, like `jmp rel32`
        b.push(0xe9);
        b.push_i32(0);
        b.dynamic_reloc(l, 0, 4, 0, 2);
        b.push(0xeb);
        b.push_i8(0);
        b.forward_reloc("f", 0, 1, 0, 0);
        b.push(0x90);
        b.local_label("f");
        b.dynamic_label(l);
        b.push(0xeb);
        b.push_i8(0);
        b.backward_reloc("f", 0, 1, 0, 0);
        let code = b.finish().unwrap();
        assert_eq!(i32::from_le_bytes(code[1..5].try_into().unwrap()), 3);
        assert_eq!(code[6] as i8, 1);
        assert_eq!(code[9] as i8, -2);
    }

    #[test]
    fn unplaced_label_is_an_error() {
        let mut b = CodeBuf::new();
        let l = b.new_dynamic_label();
        b.push_i32(0);
        b.dynamic_reloc(l, 0, 4, 0, 2);
        assert_eq!(b.finish(), Err(CodeBufError::UnplacedLabel(0)));
    }

    #[test]
    fn rel8_out_of_range() {
        let mut b = CodeBuf::new();
        b.push_i8(0);
        b.forward_reloc("x", 0, 1, 0, 0);
        b.extend(&[0x90; 200]);
        b.local_label("x");
        assert_eq!(b.finish(), Err(CodeBufError::OutOfRange));
    }
}
