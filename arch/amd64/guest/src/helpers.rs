//! Pure helpers for integer instructions that are awkward in IR: rotate-through-carry. Called from generated code (`extern "C"`, integer arguments only).

use crate::flags::{CF, OF, OSZACP};
use vg_ir::Callee;

/// rcl/rcr: `mode` = operand bytes | left << 8 | want flags << 16. Returns the rotated value,
/// or with the flags bit the new rflags (CF and OF updated; unchanged for a zero count).
pub extern "C" fn amd64_rcl_rcr(value: u64, count: u64, rflags: u64, mode: u64) -> u64 {
    let w = ((mode & 0xff) * 8) as u32;
    let left = mode & (1 << 8) != 0;
    let want_flags = mode & (1 << 16) != 0;
    let m = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    let n = count & if w == 64 { 0x3f } else { 0x1f };
    let steps = n % (w as u64 + 1);
    let (mut v, mut c) = (value & m, rflags & CF);
    for _ in 0..steps {
        if left {
            let out = (v >> (w - 1)) & 1;
            v = ((v << 1) | c) & m;
            c = out;
        } else {
            let out = v & 1;
            v = (v >> 1) | (c << (w - 1));
            c = out;
        }
    }
    if !want_flags {
        return v;
    }
    if n == 0 {
        return rflags & OSZACP;
    }
    let msb = (v >> (w - 1)) & 1;
    let of = if left { msb ^ c } else { msb ^ ((v >> (w - 2)) & 1) };
    (rflags & OSZACP & !(CF | OF)) | c | (of << 11)
}

pub(crate) fn rcl_rcr_callee() -> Callee {
    Callee { name: "amd64_rcl_rcr", addr: amd64_rcl_rcr as extern "C" fn(u64, u64, u64, u64) -> u64 as usize }
}
