//! Pure helpers for integer instructions that are awkward in IR: the #DE check of div/idiv and
//! rotate-through-carry. Called from generated code (`extern "C"`, integer arguments only).

use crate::flags::{CF, OF, OSZACP};
use vg_ir::Callee;

/// Whether `div`/`idiv` faults (#DE): zero divisor or a quotient that does not fit.
/// `mode` = signed (bit 0) | operand bytes << 8; the dividend is `hi:lo` of twice that width.
pub extern "C" fn amd64_div_faults(mode: u64, hi: u64, lo: u64, divisor: u64) -> u64 {
    let w = ((mode >> 8) * 8) as u32;
    let signed = mode & 1 != 0;
    let m = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    let n = ((hi as u128 & m as u128) << w) | (lo & m) as u128;
    let d = divisor & m;
    if d == 0 {
        return 1;
    }
    if signed {
        let sx = |v: u128, bits: u32| ((v << (128 - bits)) as i128) >> (128 - bits);
        let (n, d) = (sx(n, 2 * w), sx(d as u128, w));
        let q = n.checked_div(d);
        match q {
            Some(q) => (q >= (1i128 << (w - 1)) || q < -(1i128 << (w - 1))) as u64,
            None => 1,
        }
    } else {
        (n / d as u128 > m as u128) as u64
    }
}

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

pub(crate) fn div_fault_callee() -> Callee {
    Callee { name: "amd64_div_faults", addr: amd64_div_faults as extern "C" fn(u64, u64, u64, u64) -> u64 as usize }
}
pub(crate) fn rcl_rcr_callee() -> Callee {
    Callee { name: "amd64_rcl_rcr", addr: amd64_rcl_rcr as extern "C" fn(u64, u64, u64, u64) -> u64 as usize }
}
