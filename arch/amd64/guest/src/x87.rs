//! Pure helpers for the x87 lifter (`lift/x87.rs`): conversions between the F64 register model
//! and 80-bit extended memory operands, rounding to integers under the x87 rounding control,
//! `fxam` classification, `fprem`/`fprem1` and `fscale` (pure: doubles travel as their bit
//! patterns); and the dirty helpers of `fnstenv`/`fldenv`, which read and write the guest state
//! and guest memory. All are called from generated code (`extern "C"`, integer arguments).
//!
//! All of them compute exactly (integer arithmetic on the parts of the doubles) and round once,
//! to nearest-even, where the result must be rounded; so they need no libm.
//!
//! Depends on `vg-ir` (for `Callee`) and `state` (the x87 fields' offsets).

use vg_ir::Callee;

/// The x87 "real indefinite" QNaN (what a masked invalid operation produces), as a double.
pub const NAN_INDEFINITE: u64 = 0xfff8_0000_0000_0000;

/// Condition-code bits in their status-word positions (the layout of the guest's `fc3210`).
pub const C0: u64 = 1 << 8;
pub const C1: u64 = 1 << 9;
pub const C2: u64 = 1 << 10;
pub const C3: u64 = 1 << 14;

const FRAC_MASK: u64 = (1 << 52) - 1;
const EXP_MASK: u64 = 0x7ff;

fn is_nan(b: u64) -> bool {
    (b >> 52) & EXP_MASK == EXP_MASK && b & FRAC_MASK != 0
}
fn is_inf(b: u64) -> bool {
    b & !(1 << 63) == 0x7ff0_0000_0000_0000
}
fn is_zero(b: u64) -> bool {
    b & !(1 << 63) == 0
}
fn neg(b: u64) -> bool {
    b >> 63 != 0
}

/// A finite double as `(negative, m, e)` with value `m * 2^e` (m < 2^53; 0 for zeroes).
fn decompose(b: u64) -> (bool, u64, i32) {
    let e = ((b >> 52) & EXP_MASK) as i32;
    let f = b & FRAC_MASK;
    if e == 0 { (neg(b), f, -1074) } else { (neg(b), f | 1 << 52, e - 1075) }
}

/// `m >> sh`, rounded to nearest, ties to even.
fn round_shift(m: u128, sh: u32) -> u128 {
    match sh {
        0 => m,
        1..=127 => {
            let q = m >> sh;
            let rem = m & ((1u128 << sh) - 1);
            let half = 1u128 << (sh - 1);
            if rem > half || (rem == half && q & 1 == 1) { q + 1 } else { q }
        }
        // m / 2^128 is below 1: it rounds up only past one half.
        128 => (m > 1 << 127) as u128,
        _ => 0,
    }
}

/// The double nearest to `±m * 2^e` (ties to even; overflow gives infinity).
fn compose(negative: bool, m: u128, e: i32) -> u64 {
    let s = (negative as u64) << 63;
    if m == 0 {
        return s;
    }
    let lz = m.leading_zeros() as i32;
    let (m, e) = (m << lz, e - lz);
    // The leading bit is now bit 127, of weight 2^(e + 127).
    let be = e + 127 + 1023;
    if be >= 1 {
        let q = round_shift(m, 75);
        let (q, be) = if q >> 53 != 0 { (q >> 1, be + 1) } else { (q, be) };
        if be >= EXP_MASK as i32 {
            return s | 0x7ff0_0000_0000_0000;
        }
        s | (be as u64) << 52 | (q as u64 & FRAC_MASK)
    } else {
        // Subnormal; a rounding carry into bit 52 yields the smallest normal, encoded the same.
        let sh = 75 + (1 - be) as u32;
        s | round_shift(m, sh) as u64
    }
}

/// Rounds a finite double to an integer under x87 rounding control `rc` (0 nearest-even,
/// 1 down, 2 up, 3 toward zero): `(negative, magnitude)`.
fn round_to_int(b: u64, rc: u64) -> (bool, u128) {
    let (n, m, e) = decompose(b);
    if e >= 0 {
        // Already an integer; beyond 2^122 only "too large" matters.
        return (n, if e >= 70 { u128::MAX } else { (m as u128) << e });
    }
    let sh = (-e) as u32;
    let (q, rem, half) = if sh >= 128 {
        (0, m as u128, u128::MAX)
    } else {
        (m as u128 >> sh, m as u128 & ((1u128 << sh) - 1), 1u128 << (sh - 1))
    };
    let up = match rc & 3 {
        0 => rem > half || (rem == half && q & 1 == 1),
        1 => n && rem != 0,
        2 => !n && rem != 0,
        _ => false,
    };
    (n, q + up as u128)
}

/// `frndint`: the double rounded to an integer under rounding control `rc` (keeps the sign of
/// a zero result; NaNs and infinities are returned unchanged).
pub extern "C" fn amd64_x87_frndint(b: u64, rc: u64) -> u64 {
    if (b >> 52) & EXP_MASK >= 1075 {
        // NaN, infinity, or so large that it is an integer already.
        return b;
    }
    let (n, mag) = round_to_int(b, rc);
    compose(n, mag, 0)
}

/// `fist`/`fistp`/`fisttp`: `mode` = rounding control (0..3; 3 truncates) | bytes << 8 (2, 4,
/// 8). A NaN, infinity or out-of-range value gives the "integer indefinite" (minimum signed).
pub extern "C" fn amd64_x87_to_int(b: u64, mode: u64) -> u64 {
    let bits = ((mode >> 8) & 0xf) as u32 * 8;
    let indefinite = 1u64 << (bits - 1);
    if is_nan(b) || is_inf(b) {
        return indefinite;
    }
    let (n, mag) = round_to_int(b, mode & 3);
    let lim = 1u128 << (bits - 1);
    if (!n && mag >= lim) || (n && mag > lim) {
        return indefinite;
    }
    let v = if n { (mag as i128).wrapping_neg() } else { mag as i128 };
    (v as u64) & if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 }
}

/// The 64-bit significand (explicit integer bit) of a double widened to 80-bit extended.
pub extern "C" fn amd64_x87_f64_to_f80_mant(b: u64) -> u64 {
    f64_to_f80(b).0
}

/// The sign and 15-bit exponent (the top 16 bits) of a double widened to 80-bit extended.
pub extern "C" fn amd64_x87_f64_to_f80_se(b: u64) -> u64 {
    f64_to_f80(b).1 as u64
}

/// Widening is exact: every double (subnormals included) is a normal extended value.
pub(crate) fn f64_to_f80(b: u64) -> (u64, u16) {
    let s = ((b >> 63) as u16) << 15;
    if is_zero(b) {
        return (0, s);
    }
    if (b >> 52) & EXP_MASK == EXP_MASK {
        return (1 << 63 | (b & FRAC_MASK) << 11, s | 0x7fff);
    }
    let (_, m, e) = decompose(b);
    let lz = m.leading_zeros() as i32;
    // Leading bit of weight 2^(e + 63 - lz), biased by 16383.
    (m << lz, s | (e + 63 - lz + 16383) as u16)
}

/// An 80-bit extended value (significand, sign/exponent) narrowed to the nearest double.
/// A signalling NaN becomes quiet, as loading it on the x87 does.
///
/// Finite values outside the double range saturate instead of becoming infinity or zero: to
/// ±DBL_MAX above it and to ±(the smallest subnormal) below it. So the idioms compilers and libc
/// use to classify long doubles keep working in the F64 model: `isinf(x)` as `|x| > LDBL_MAX`
/// (LDBL_MAX must not become infinity) and `isnormal(x)` as `|x| >= LDBL_MIN` (LDBL_MIN must not
/// become 0).
pub extern "C" fn amd64_x87_f80_to_f64(mant: u64, se: u64) -> u64 {
    let negative = se & 0x8000 != 0;
    let e = (se & 0x7fff) as i32;
    if e == 0x7fff {
        let s = (negative as u64) << 63;
        if mant << 1 == 0 {
            return s | 0x7ff0_0000_0000_0000;
        }
        return s | 0x7ff8_0000_0000_0000 | ((mant >> 11) & FRAC_MASK);
    }
    if mant == 0 {
        return (negative as u64) << 63;
    }
    // Denormals (exponent 0) have the weight of exponent 1.
    let r = compose(negative, mant as u128, e.max(1) - 16383 - 63);
    match r & !(1 << 63) {
        0x7ff0_0000_0000_0000 => r - 1,
        0 => r | 1,
        _ => r,
    }
}

/// `fxam` of ST(0): C3/C2/C0 classify (empty, NaN, infinity, zero, normal), C1 is the sign.
/// Double subnormals are normal numbers in the extended format the real register holds.
pub extern "C" fn amd64_x87_fxam(tag: u64, b: u64) -> u64 {
    let sign = if neg(b) { C1 } else { 0 };
    let class = if tag == 0 {
        C3 | C0
    } else if is_nan(b) {
        C0
    } else if is_inf(b) {
        C2 | C0
    } else if is_zero(b) {
        C3
    } else {
        C2
    };
    class | sign
}

/// The remainder and quotient bits of `fprem` (`round` = 0: truncated quotient) or `fprem1`
/// (`round` = 1: nearest-even quotient), computed completely (C2 = 0): (result, fc3210).
fn fprem(x: u64, y: u64, round: bool) -> (u64, u64) {
    if is_nan(x) || is_nan(y) {
        let q = if is_nan(x) { x } else { y };
        return (q | 1 << 51, 0);
    }
    if is_inf(x) || is_zero(y) {
        return (NAN_INDEFINITE, 0);
    }
    if is_zero(x) || is_inf(y) {
        return (x, 0);
    }
    let (nx, mx, ex) = decompose(x);
    let (_, my, ey) = decompose(y);
    // Remainder r and divisor yy as integers times 2^e, and the low bits of the quotient q;
    // yy is None when |y| > 2^11 |x| (the quotient is 0 and no rounding can change it).
    let (mut r, mut q, e, yy): (u128, u64, i32, Option<u128>);
    if ex >= ey {
        let my = my as u128;
        r = mx as u128 % my;
        q = ((mx as u128 / my) & 7) as u64;
        for _ in 0..(ex - ey) {
            r <<= 1;
            q = (q << 1) & 7;
            if r >= my {
                r -= my;
                q |= 1;
            }
        }
        (e, yy) = (ey, Some(my));
    } else if ey - ex >= 64 {
        (r, q, e, yy) = (mx as u128, 0, ex, None);
    } else {
        let d = (my as u128) << (ey - ex);
        (r, q, e, yy) = (mx as u128 % d, ((mx as u128 / d) & 7) as u64, ex, Some(d));
    }
    let mut negative = nx;
    if let Some(yy) = yy
        && round
        && (2 * r > yy || (2 * r == yy && q & 1 == 1))
    {
        r = yy - r;
        q = (q + 1) & 7;
        negative = !negative;
    }
    // C0 = q2, C3 = q1, C1 = q0.
    let cc = (if q & 4 != 0 { C0 } else { 0 }) | (if q & 2 != 0 { C3 } else { 0 }) | (if q & 1 != 0 { C1 } else { 0 });
    // A zero remainder keeps the dividend's sign.
    let negative = if r == 0 { nx } else { negative };
    (compose(negative, r, e), cc)
}

/// `fprem` (`mode` 0) / `fprem1` (`mode` 1): the new ST(0).
pub extern "C" fn amd64_x87_fprem(x: u64, y: u64, mode: u64) -> u64 {
    fprem(x, y, mode != 0).0
}

/// `fprem` / `fprem1`: the new condition bits (fc3210 layout).
pub extern "C" fn amd64_x87_fprem_cc(x: u64, y: u64, mode: u64) -> u64 {
    fprem(x, y, mode != 0).1
}

/// `fscale`: ST(0) * 2^trunc(ST(1)), rounded once.
pub extern "C" fn amd64_x87_fscale(x: u64, y: u64) -> u64 {
    if is_nan(x) || is_nan(y) {
        return if is_nan(x) { x | 1 << 51 } else { y | 1 << 51 };
    }
    if is_inf(y) {
        // x * 2^+inf: infinity (0 * inf is invalid); x * 2^-inf: zero (inf * 0 is invalid).
        let sign = x & 1 << 63;
        return match (neg(y), is_zero(x), is_inf(x)) {
            (false, true, _) | (true, _, true) => NAN_INDEFINITE,
            (false, false, _) => sign | 0x7ff0_0000_0000_0000,
            (true, _, false) => sign,
        };
    }
    if is_inf(x) || is_zero(x) {
        return x;
    }
    let (ny, my) = round_to_int(y, 3);
    // Beyond +-5000 the result is 0 or infinity whatever x is.
    let n = (my.min(5000) as i32) * if ny { -1 } else { 1 };
    let (nx, mx, ex) = decompose(x);
    compose(nx, mx as u128, ex + n)
}

/// Reads the x87 part of the guest state at `state`: (registers in stack order as bits, tag
/// bytes, TOP, rounding, fc3210).
///
/// # Safety
/// `state` must point to a guest state block (`crate::state::Amd64State` layout).
pub(crate) unsafe fn read_fpu(state: *const u8) -> ([u64; 8], [u8; 8], u32, u32, u64) {
    use crate::state::*;
    // SAFETY: the offsets lie inside the state block the caller vouches for; unaligned reads.
    unsafe {
        let rd = |off: u32| core::ptr::read_unaligned(state.add(off as usize) as *const u64);
        let regs = core::array::from_fn(|k| rd(OFF_FPREG + 8 * k as u32));
        let tags = rd(OFF_FPTAG).to_le_bytes();
        let top = core::ptr::read_unaligned(state.add(OFF_FTOP as usize) as *const u32);
        let rc = core::ptr::read_unaligned(state.add(OFF_FPROUND as usize) as *const u32);
        (regs, tags, top & 7, rc & 3, rd(OFF_FC3210))
    }
}

/// The 28-byte x87 environment (`fnstenv` in 64-bit mode, 32-bit operand size): control,
/// status and full tag words (each in a dword whose upper half reads as ones, as the CPU
/// writes it), then instruction and operand pointers, which are not tracked (zero).
pub fn fpu_env(regs: &[u64; 8], tags: &[u8; 8], top: u32, rc: u32, c3210: u64) -> [u8; 28] {
    let cw = 0x037f | (rc as u16) << 10;
    let sw = (top as u16) << 11 | (c3210 & (C3 | C2 | C1 | C0)) as u16;
    let mut tw = 0u16;
    for phys in 0..8u32 {
        let k = ((phys + 8 - top) & 7) as usize;
        let b = regs[k];
        let t = if tags[k] == 0 {
            3
        } else if is_zero(b) {
            1
        } else if (b >> 52) & EXP_MASK == EXP_MASK {
            2
        } else {
            0
        };
        tw |= t << (2 * phys);
    }
    let mut env = [0u8; 28];
    for (i, w) in [cw, sw, tw].into_iter().enumerate() {
        env[4 * i..4 * i + 2].copy_from_slice(&w.to_le_bytes());
        env[4 * i + 2..4 * i + 4].copy_from_slice(&[0xff, 0xff]);
    }
    env
}

/// Dirty helper for `fnstenv m28`: stores the environment at guest address `addr`.
pub extern "C" fn amd64_x87_fnstenv(state: *mut u8, addr: u64) -> u64 {
    // SAFETY: generated code passes its guest-state pointer.
    let (regs, tags, top, rc, cc) = unsafe { read_fpu(state) };
    let env = fpu_env(&regs, &tags, top, rc, cc);
    // SAFETY: guest addresses are host addresses; the IR declares this 28-byte write (as for a
    // guest store, an unmapped address faults the host).
    unsafe { core::ptr::copy_nonoverlapping(env.as_ptr(), addr as usize as *mut u8, env.len()) };
    0
}

/// Dirty helper for `fldenv m28`: loads control, status and tag words from guest address
/// `addr`. A new TOP renames the registers: the stack-order copy in the state is rotated so
/// that each physical register keeps its contents.
pub extern "C" fn amd64_x87_fldenv(state: *mut u8, addr: u64) -> u64 {
    use crate::state::*;
    let mut env = [0u8; 28];
    // SAFETY: as in `amd64_x87_fnstenv`, a declared 28-byte read.
    unsafe { core::ptr::copy_nonoverlapping(addr as usize as *const u8, env.as_mut_ptr(), env.len()) };
    let word = |i: usize| u16::from_le_bytes([env[4 * i], env[4 * i + 1]]) as u32;
    let (cw, sw, tw) = (word(0), word(1), word(2));
    // SAFETY: generated code passes its guest-state pointer.
    let (regs, _, top, _, _) = unsafe { read_fpu(state) };
    let new_top = (sw >> 11) & 7;
    let d = new_top.wrapping_sub(top);
    let mut tags = [0u8; 8];
    // SAFETY: the offsets lie inside the state block; unaligned writes.
    unsafe {
        for k in 0..8u32 {
            let from = (k.wrapping_add(d) & 7) as usize;
            core::ptr::write_unaligned(state.add((OFF_FPREG + 8 * k) as usize) as *mut u64, regs[from]);
            let phys = (new_top + k) & 7;
            tags[k as usize] = ((tw >> (2 * phys)) & 3 != 3) as u8;
        }
        core::ptr::write_unaligned(state.add(OFF_FPTAG as usize) as *mut [u8; 8], tags);
        core::ptr::write_unaligned(state.add(OFF_FTOP as usize) as *mut u32, new_top);
        core::ptr::write_unaligned(state.add(OFF_FPROUND as usize) as *mut u32, (cw >> 10) & 3);
        core::ptr::write_unaligned(state.add(OFF_FC3210 as usize) as *mut u64, sw as u64 & (C3 | C2 | C1 | C0));
    }
    0
}

pub(crate) fn fnstenv_callee() -> Callee {
    Callee { name: "amd64_x87_fnstenv", addr: amd64_x87_fnstenv as extern "C" fn(*mut u8, u64) -> u64 as usize }
}
pub(crate) fn fldenv_callee() -> Callee {
    Callee { name: "amd64_x87_fldenv", addr: amd64_x87_fldenv as extern "C" fn(*mut u8, u64) -> u64 as usize }
}

macro_rules! callee {
    ($name:ident, $f:ident, $($a:ty),+) => {
        pub(crate) fn $name() -> Callee {
            Callee { name: stringify!($f), addr: $f as extern "C" fn($($a),+) -> u64 as usize }
        }
    };
}
callee!(frndint_callee, amd64_x87_frndint, u64, u64);
callee!(to_int_callee, amd64_x87_to_int, u64, u64);
callee!(f64_to_f80_mant_callee, amd64_x87_f64_to_f80_mant, u64);
callee!(f64_to_f80_se_callee, amd64_x87_f64_to_f80_se, u64);
callee!(f80_to_f64_callee, amd64_x87_f80_to_f64, u64, u64);
callee!(fxam_callee, amd64_x87_fxam, u64, u64);
callee!(fprem_callee, amd64_x87_fprem, u64, u64, u64);
callee!(fprem_cc_callee, amd64_x87_fprem_cc, u64, u64, u64);
callee!(fscale_callee, amd64_x87_fscale, u64, u64);

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn d(x: f64) -> u64 {
        x.to_bits()
    }

    #[test]
    fn f80_round_trip_is_exact_for_doubles() {
        for x in [0.0, -0.0, 1.0, -1.5, 0.1, 1e300, -1e-300, 5e-324, 2.2250738585072014e-308, f64::MAX, f64::INFINITY, -f64::INFINITY] {
            let (m, se) = (amd64_x87_f64_to_f80_mant(d(x)), amd64_x87_f64_to_f80_se(d(x)));
            assert_eq!(amd64_x87_f80_to_f64(m, se), d(x), "{x:e}");
        }
        // 1.0 is 0x3fff:8000000000000000; 5e-324 = 2^-1074 is normal in extended.
        assert_eq!(f64_to_f80(d(1.0)), (1 << 63, 0x3fff));
        assert_eq!(f64_to_f80(d(5e-324)), (1 << 63, (16383 - 1074) as u16));
        assert_eq!(f64_to_f80(d(-2.0)), (1 << 63, 0xc000));
    }

    #[test]
    fn f80_narrowing_rounds_to_nearest_even() {
        // 1 + 2^-53 (a tie) rounds to 1; 1 + 3 * 2^-54 rounds up; 1 + 2^-53 + 2^-63 rounds up.
        let one = 1u64 << 63;
        assert_eq!(amd64_x87_f80_to_f64(one | 1 << 10, 0x3fff), d(1.0));
        assert_eq!(amd64_x87_f80_to_f64(one | 3 << 9, 0x3fff), d(1.0 + f64::EPSILON));
        assert_eq!(amd64_x87_f80_to_f64(one | 1 << 10 | 1, 0x3fff), d(1.0 + f64::EPSILON));
        // Too large or too small for a double: saturated (LDBL_MAX, LDBL_MIN, the smallest
        // extended subnormal); pi (extended) to the double pi.
        assert_eq!(amd64_x87_f80_to_f64(u64::MAX, 0x7ffe), d(f64::MAX));
        assert_eq!(amd64_x87_f80_to_f64(u64::MAX, 0xfffe), d(-f64::MAX));
        assert_eq!(amd64_x87_f80_to_f64(one, 0x0001), d(5e-324));
        assert_eq!(amd64_x87_f80_to_f64(1, 0x8000), d(-5e-324));
        assert_eq!(amd64_x87_f80_to_f64(0, 0x8000), d(-0.0));
        assert_eq!(amd64_x87_f80_to_f64(0xc90f_daa2_2168_c235, 0x4000), d(std::f64::consts::PI));
        // Signalling NaN becomes quiet.
        assert_eq!(amd64_x87_f80_to_f64(one | 1, 0x7fff), 0x7ff8_0000_0000_0000);
    }

    #[test]
    fn rounding_to_integers_follows_the_control_word() {
        let r = |x: f64, rc| f64::from_bits(amd64_x87_frndint(d(x), rc));
        assert_eq!([r(2.5, 0), r(3.5, 0), r(-2.5, 0), r(2.6, 0)], [2.0, 4.0, -2.0, 3.0]);
        assert_eq!([r(2.5, 1), r(-2.5, 1), r(2.5, 2), r(-2.5, 2), r(-2.5, 3)], [2.0, -3.0, 3.0, -2.0, -2.0]);
        assert_eq!(amd64_x87_frndint(d(-0.3), 0), d(-0.0));
        assert_eq!(r(0.5, 0), 0.0);
        assert_eq!(r(1e300, 0), 1e300);
        let i = |x: f64, mode| amd64_x87_to_int(d(x), mode);
        assert_eq!(i(-2.5, 0 | 4 << 8), (-2i32) as u32 as u64);
        assert_eq!(i(-2.7, 3 | 8 << 8), (-2i64) as u64);
        assert_eq!(i(32767.4, 0 | 2 << 8), 32767);
        assert_eq!(i(32767.6, 0 | 2 << 8), 0x8000);
        assert_eq!(i(-32768.0, 0 | 2 << 8), 0x8000);
        assert_eq!(i(f64::NAN, 2 | 8 << 8), 1 << 63);
        assert_eq!(i(9.3e18, 3 | 8 << 8), 1 << 63);
        assert_eq!(i(-9223372036854775808.0, 8 << 8), 1 << 63);
    }

    #[test]
    fn partial_remainder_and_scale() {
        let p = |x: f64, y: f64, m| (f64::from_bits(amd64_x87_fprem(d(x), d(y), m)), amd64_x87_fprem_cc(d(x), d(y), m));
        // 7 / 2: q = 3 (C3 = q1, C1 = q0), r = 1; fprem1: q = 4 (even), r = -1.
        assert_eq!(p(7.0, 2.0, 0), (1.0, C3 | C1));
        assert_eq!(p(7.0, 2.0, 1), (-1.0, C0));
        assert_eq!(p(-7.5, 2.0, 0), (-1.5, C3 | C1));
        assert_eq!(p(1e300, 3.0, 0).0, 1e300 % 3.0);
        assert_eq!(p(0.3, 0.1, 0).0, 0.3 % 0.1);
        assert_eq!(p(1.0, 1e300, 0), (1.0, 0));
        assert_eq!(amd64_x87_fprem(d(1.0), d(0.0), 0), NAN_INDEFINITE);
        let s = |x: f64, y: f64| f64::from_bits(amd64_x87_fscale(d(x), d(y)));
        assert_eq!([s(3.0, 2.7), s(3.0, -1.9), s(1.0, -1074.0), s(1.0, 1024.0)], [12.0, 1.5, 5e-324, f64::INFINITY]);
        assert_eq!(s(1.5, -1075.0), 5e-324);
        assert_eq!(amd64_x87_fxam(1, d(-0.0)), C3 | C1);
        assert_eq!(amd64_x87_fxam(1, d(5e-324)), C2);
        assert_eq!(amd64_x87_fxam(0, 0), C3 | C0);
    }
}
