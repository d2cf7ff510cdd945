//! Lazy rflags: the thunk encoding (`cc_op`, `cc_dep1`, `cc_dep2`, `cc_ndep` in the guest state)
//! and the pure `extern "C"` helpers generated code calls to evaluate flags and conditions.
//!
//! `cc_op = CC_<OP> * 4 + size index` (0 = byte, 1 = word, 2 = dword, 3 = qword), except
//! `CC_COPY` (= 0) whose `dep1` holds the flag bits themselves. Operands per operation:
//! - ADD/SUB: dep1 = a, dep2 = b (result a op b).
//! - ADC/SBB: dep1 = a, dep2 = b, ndep = carry in (0/1).
//! - LOGIC: dep1 = result.   INC/DEC: dep1 = result, ndep = old CF.
//! - SHL/SHR (also SAR and SHLD/SHRD): dep1 = result, dep2 = the value shifted by count-1.
//! - ROL/ROR: dep1 = result, ndep = old rflags (they keep SF/ZF/AF/PF).
//! - UMUL/SMUL: dep1 = a, dep2 = b (flags from the widening product).
//!
//! Depends on nothing (the helpers must stay pure and callable from generated code).

/// rflags bit positions of the six arithmetic flags.
pub const CF: u64 = 1 << 0;
pub const PF: u64 = 1 << 2;
pub const AF: u64 = 1 << 4;
pub const ZF: u64 = 1 << 6;
pub const SF: u64 = 1 << 7;
pub const OF: u64 = 1 << 11;
/// The six arithmetic flags.
pub const OSZACP: u64 = CF | PF | AF | ZF | SF | OF;

pub const CC_COPY: u64 = 0;
pub const CC_ADD: u64 = 1;
pub const CC_SUB: u64 = 2;
pub const CC_ADC: u64 = 3;
pub const CC_SBB: u64 = 4;
pub const CC_LOGIC: u64 = 5;
pub const CC_INC: u64 = 6;
pub const CC_DEC: u64 = 7;
pub const CC_SHL: u64 = 8;
pub const CC_SHR: u64 = 9;
pub const CC_ROL: u64 = 10;
pub const CC_ROR: u64 = 11;
pub const CC_UMUL: u64 = 12;
pub const CC_SMUL: u64 = 13;

/// `cc_op` value of operation `op` on operands of `bytes` bytes.
pub const fn cc_op(op: u64, bytes: u32) -> u64 {
    let idx = match bytes {
        1 => 0,
        2 => 1,
        4 => 2,
        _ => 3,
    };
    op * 4 + idx
}

fn parity(r: u64) -> u64 {
    if (r as u8).count_ones() % 2 == 0 { PF } else { 0 }
}

/// ZF, SF and PF of a result `r` of width `w` bits (already masked).
fn szp(r: u64, w: u32) -> u64 {
    let mut f = parity(r);
    if r == 0 {
        f |= ZF;
    }
    if (r >> (w - 1)) & 1 != 0 {
        f |= SF;
    }
    f
}

fn sext(v: u64, w: u32) -> i64 {
    let s = 64 - w;
    ((v << s) as i64) >> s
}

/// All six arithmetic flags (in their rflags positions) of a thunk.
pub extern "C" fn calculate_rflags_all(cc_op: u64, dep1: u64, dep2: u64, ndep: u64) -> u64 {
    let op = cc_op / 4;
    if op == CC_COPY {
        return dep1 & OSZACP;
    }
    let w = 8u32 << (cc_op % 4);
    let m = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    let sb = 1u64 << (w - 1);
    let (a, b) = (dep1 & m, dep2 & m);
    let of = |c: bool| if c { OF } else { 0 };
    let cf = |c: bool| if c { CF } else { 0 };
    match op {
        CC_ADD | CC_ADC => {
            let c = if op == CC_ADC { ndep & 1 } else { 0 };
            let r = a.wrapping_add(b).wrapping_add(c) & m;
            let carry = if c != 0 { r <= a } else { r < a };
            szp(r, w) | cf(carry) | of((a ^ r) & (b ^ r) & sb != 0) | ((a ^ b ^ r) & AF)
        }
        CC_SUB | CC_SBB => {
            let c = if op == CC_SBB { ndep & 1 } else { 0 };
            let r = a.wrapping_sub(b).wrapping_sub(c) & m;
            let borrow = if c != 0 { a <= b } else { a < b };
            szp(r, w) | cf(borrow) | of((a ^ b) & (a ^ r) & sb != 0) | ((a ^ b ^ r) & AF)
        }
        CC_LOGIC => szp(a, w),
        CC_INC => {
            let old = a.wrapping_sub(1) & m;
            szp(a, w) | (ndep & CF) | of(a == sb) | ((old ^ 1 ^ a) & AF)
        }
        CC_DEC => {
            let old = a.wrapping_add(1) & m;
            szp(a, w) | (ndep & CF) | of(old == sb) | ((old ^ 1 ^ a) & AF)
        }
        CC_SHL => szp(a, w) | cf(b & sb != 0) | of((a ^ b) & sb != 0),
        CC_SHR => szp(a, w) | cf(b & 1 != 0) | of((a ^ b) & sb != 0),
        CC_ROL => {
            let c = a & 1;
            (ndep & (SF | ZF | AF | PF)) | cf(c != 0) | of(((a >> (w - 1)) & 1) ^ c != 0)
        }
        CC_ROR => {
            let hi = (a >> (w - 1)) & 1;
            (ndep & (SF | ZF | AF | PF)) | cf(hi != 0) | of(hi ^ ((a >> (w - 2)) & 1) != 0)
        }
        CC_UMUL => {
            let p = (a as u128) * (b as u128);
            let lo = (p as u64) & m;
            let hi = p >> w;
            szp(lo, w) | cf(hi != 0) | of(hi != 0)
        }
        CC_SMUL => {
            let p = (sext(a, w) as i128) * (sext(b, w) as i128);
            let lo = (p as u64) & m;
            let ovf = p != sext(lo, w) as i128;
            szp(lo, w) | cf(ovf) | of(ovf)
        }
        _ => 0,
    }
}

/// The carry flag of a thunk (0 or 1).
pub extern "C" fn calculate_rflags_c(cc_op: u64, dep1: u64, dep2: u64, ndep: u64) -> u64 {
    calculate_rflags_all(cc_op, dep1, dep2, ndep) & CF
}

/// Evaluate condition code `cond` (x86 encoding 0..15: O NO B NB Z NZ BE NBE S NS P NP L NL LE
/// NLE) on a thunk; 0 or 1.
pub extern "C" fn calculate_condition(cond: u64, cc_op: u64, dep1: u64, dep2: u64, ndep: u64) -> u64 {
    condition_of_flags(cond, calculate_rflags_all(cc_op, dep1, dep2, ndep))
}

/// Evaluate condition code `cond` on rflags bits.
pub fn condition_of_flags(cond: u64, f: u64) -> u64 {
    let bit = |m: u64| f & m != 0;
    let v = match cond >> 1 {
        0 => bit(OF),
        1 => bit(CF),
        2 => bit(ZF),
        3 => bit(CF) || bit(ZF),
        4 => bit(SF),
        5 => bit(PF),
        6 => bit(SF) != bit(OF),
        _ => bit(ZF) || (bit(SF) != bit(OF)),
    };
    (v ^ (cond & 1 != 0)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_and_add_flags() {
        // 1 - 2 (byte): borrow, sign, AF, no overflow.
        let f = calculate_rflags_all(cc_op(CC_SUB, 1), 1, 2, 0);
        assert_eq!(f & (CF | SF | ZF | OF | AF), CF | SF | AF);
        // 0x7f + 1 (byte): overflow, sign, AF.
        let f = calculate_rflags_all(cc_op(CC_ADD, 1), 0x7f, 1, 0);
        assert_eq!(f & (CF | SF | ZF | OF | AF), OF | SF | AF);
        // jl after cmp -1, 0 (qword) is taken; jb is not.
        assert_eq!(calculate_condition(12, cc_op(CC_SUB, 8), u64::MAX, 0, 0), 1);
        assert_eq!(calculate_condition(2, cc_op(CC_SUB, 8), u64::MAX, 0, 0), 0);
        assert_eq!(calculate_rflags_all(cc_op(CC_SMUL, 4), 0x10000, 0x10000, 0) & (CF | OF), CF | OF);
    }
}
