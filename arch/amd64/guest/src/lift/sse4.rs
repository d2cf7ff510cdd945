//! SSE3, SSSE3, SSE4.1 and SSE4.2 (legacy encodings). Lane operations that have a `VecOp` use
//! it (the common SSSE3/SSE4 ones have their own, which back ends emit as one instruction;
//! blends are bit selects); the rest go through the pure `amd64_vec128` helper, one call per
//! 64-bit half; the string compares (pcmp[ei]str[im]) are a dirty helper reading their
//! operands from the guest state.

use super::sse::is_xmm_op;
use super::{Lifter, Outcome};
use crate::helpers::{self as h, V128Op};
use crate::state::*;
use alloc::boxed::Box;
use alloc::vec;
use iced_x86::{Mnemonic as M, OpKind};
use vg_ir::*;

/// Forms with their own `VecOp`: `dst = op(dst, src)`.
pub(super) const NATIVE2: &[(M, VecOp)] = &[
    (M::Pshufb, VecOp::Perm8x16),
    (M::Pmaddubsw, VecOp::MAddUS8x16),
    (M::Pmulhrsw, VecOp::MulHiRS16x8),
    (M::Psignb, VecOp::Sign8x16),
    (M::Psignw, VecOp::Sign16x8),
    (M::Psignd, VecOp::Sign32x4),
    (M::Pminsb, VecOp::MinS8x16),
    (M::Pmaxsb, VecOp::MaxS8x16),
    (M::Pminuw, VecOp::MinU16x8),
    (M::Pmaxuw, VecOp::MaxU16x8),
    (M::Pminsd, VecOp::MinS32x4),
    (M::Pmaxsd, VecOp::MaxS32x4),
    (M::Pminud, VecOp::MinU32x4),
    (M::Pmaxud, VecOp::MaxU32x4),
    (M::Pmulld, VecOp::Mul32x4),
    (M::Pmuldq, VecOp::MullEvenS32x2),
    (M::Pcmpeqq, VecOp::CmpEQ64x2),
    (M::Pcmpgtq, VecOp::CmpGTS64x2),
    (M::Packusdw, VecOp::QNarrowU32x4to16x8),
];

/// `dst = op(src)` with their own `VecOp`.
pub(super) const NATIVE1: &[(M, VecOp)] = &[(M::Pabsb, VecOp::Abs8x16), (M::Pabsw, VecOp::Abs16x8), (M::Pabsd, VecOp::Abs32x4)];

/// Forms computed by `amd64_vec128(op, dst, src)`.
pub(super) const HELPER2: &[(M, V128Op)] = &[
    (M::Phaddw, V128Op::Phaddw),
    (M::Phaddd, V128Op::Phaddd),
    (M::Phaddsw, V128Op::Phaddsw),
    (M::Phsubw, V128Op::Phsubw),
    (M::Phsubd, V128Op::Phsubd),
    (M::Phsubsw, V128Op::Phsubsw),
    (M::Phminposuw, V128Op::Phminposuw),
    (M::Addsubps, V128Op::Addsubps),
    (M::Addsubpd, V128Op::Addsubpd),
    (M::Haddps, V128Op::Haddps),
    (M::Haddpd, V128Op::Haddpd),
    (M::Hsubps, V128Op::Hsubps),
    (M::Hsubpd, V128Op::Hsubpd),
];

/// Forms `amd64_vec128(op, dst, src, imm8)`.
pub(super) const HELPER_IMM: &[(M, V128Op)] = &[(M::Mpsadbw, V128Op::Mpsadbw), (M::Dpps, V128Op::Dpps), (M::Dppd, V128Op::Dppd)];

/// pmovzx/pmovsx: (mnemonic, signed, source lane bits, destination lane bits).
pub(super) const PMOVX: &[(M, bool, u32, u32)] = &[
    (M::Pmovzxbw, false, 8, 16),
    (M::Pmovzxbd, false, 8, 32),
    (M::Pmovzxbq, false, 8, 64),
    (M::Pmovzxwd, false, 16, 32),
    (M::Pmovzxwq, false, 16, 64),
    (M::Pmovzxdq, false, 32, 64),
    (M::Pmovsxbw, true, 8, 16),
    (M::Pmovsxbd, true, 8, 32),
    (M::Pmovsxbq, true, 8, 64),
    (M::Pmovsxwd, true, 16, 32),
    (M::Pmovsxwq, true, 16, 64),
    (M::Pmovsxdq, true, 32, 64),
];

pub(super) fn vconst(v: u128) -> Atom {
    Atom::Const(Const::V128(v))
}

/// The mask with all-ones in the `bytes`-byte lanes whose bit is set in `sel`.
pub(super) fn lane_mask(sel: u32, lanes: u32, bytes: u32) -> u128 {
    let one = if bytes == 16 { u128::MAX } else { (1u128 << (8 * bytes)) - 1 };
    (0..lanes).filter(|i| sel >> i & 1 != 0).fold(0, |m, i| m | one << (8 * bytes * i))
}

impl Lifter {
    pub(super) fn lift_sse4(&mut self) -> Option<Outcome> {
        let m = self.ins.mnemonic();
        if let Some(&(_, op)) = HELPER2.iter().find(|e| e.0 == m) {
            return Some(self.helper_form(op, 0).unwrap_or(Outcome::Unhandled));
        }
        if let Some(&(_, op)) = HELPER_IMM.iter().find(|e| e.0 == m) {
            let imm = self.ins.immediate(2) as u8;
            return Some(self.helper_form(op, imm).unwrap_or(Outcome::Unhandled));
        }
        if let Some(&(_, op)) = NATIVE2.iter().find(|e| e.0 == m) {
            return Some(self.xform(|l, a, b| l.sb.binop(Binop::Vec2(op), a, b)).unwrap_or(Outcome::Unhandled));
        }
        if let Some(&(_, op)) = NATIVE1.iter().find(|e| e.0 == m) {
            return Some(self.xform(|l, _, b| l.sb.unop(Unop::Vec1(op), b)).unwrap_or(Outcome::Unhandled));
        }
        if let Some(&(_, signed, from, to)) = PMOVX.iter().find(|e| e.0 == m) {
            return Some(self.pmovx(signed, from, to).unwrap_or(Outcome::Unhandled));
        }
        let r = match m {
            M::Pblendvb | M::Blendvps | M::Blendvpd => {
                let x0 = self.sb.get(off_ymm(0), Ty::V128);
                let mask = self.blendv_mask(m, x0);
                self.xform(|l, a, b| l.sel(mask, b, a))
            }
            M::Blendps | M::Blendpd | M::Pblendw => {
                let imm = self.ins.immediate(2) as u32;
                let mask = match m {
                    M::Blendps => lane_mask(imm, 4, 4),
                    M::Blendpd => lane_mask(imm, 2, 8),
                    _ => lane_mask(imm, 8, 2),
                };
                self.xform(|l, a, b| l.sel(vconst(mask), b, a))
            }
            M::Palignr => {
                let imm = self.ins.immediate(2) as u8;
                self.xform(|l, a, b| l.palignr(a, b, imm))
            }
            M::Ptest => {
                let d = self.xsrc(0, Ty::V128)?;
                let s = self.xsrc(1, Ty::V128)?;
                self.ptest_flags(d, s);
                Some(Outcome::Next)
            }
            M::Cvtps2dq | M::Cvtpd2dq => {
                let rc = self.sb.get(OFF_SSEROUND, Ty::I64);
                let imm = self.sb.binop(Binop::Shl(Ty::I64), rc, Atom::u8(8));
                self.xform(|l, _, b| l.cvt_rounded(m == M::Cvtpd2dq, b, imm))
            }
            M::Movddup => {
                let lo = self.xsrc(1, Ty::I64)?;
                let r = self.sb.binop(Binop::HiLo64toV128, lo, lo);
                self.put_xmm(0, r);
                Some(Outcome::Next)
            }
            M::Movshdup | M::Movsldup => {
                let s = self.xsrc(1, Ty::V128)?;
                let r = self.sb.unop(Unop::ShufImm(VecOp::Shuf32x4, if m == M::Movshdup { 0xf5 } else { 0xa0 }), s);
                self.put_xmm(0, r);
                Some(Outcome::Next)
            }
            M::Lddqu | M::Movntdqa => {
                let s = self.xsrc(1, Ty::V128)?;
                self.put_xmm(0, s);
                Some(Outcome::Next)
            }
            M::Pextrb | M::Pextrw | M::Pextrd | M::Pextrq | M::Extractps => {
                let bytes = match m {
                    M::Pextrb => 1,
                    M::Pextrw => 2,
                    M::Pextrq => 8,
                    _ => 4,
                };
                let k = self.ins.immediate(2) as u8 & (16 / bytes as u8 - 1);
                let s = self.xsrc(1, Ty::V128)?;
                let v = self.extract_lane(s, k * bytes as u8, bytes);
                self.write_extracted(v, bytes)
            }
            M::Pinsrb | M::Pinsrd | M::Pinsrq => {
                let bytes = match m {
                    M::Pinsrb => 1,
                    M::Pinsrd => 4,
                    _ => 8,
                };
                let ty = Ty::int_of_bytes(bytes);
                let v = match self.ins.op_kind(1) {
                    OpKind::Register => {
                        let r = self.get_reg(self.ins.op_register(1));
                        self.sb.zext(r, Ty::I64)
                    }
                    _ => {
                        let v = self.read_op(1, ty)?;
                        self.sb.zext(v, Ty::I64)
                    }
                };
                let v = if bytes < 8 {
                    self.sb.binop(Binop::And(Ty::I64), v, Atom::u64((1u64 << (8 * bytes)) - 1))
                } else {
                    v
                };
                let k = self.ins.immediate(2) as u8 & (16 / bytes as u8 - 1);
                let d = self.xsrc(0, Ty::V128)?;
                let r = self.insert_lane(d, v, k * bytes as u8, bytes);
                self.put_xmm(0, r);
                Some(Outcome::Next)
            }
            M::Insertps => {
                let imm = self.ins.immediate(2) as u8;
                let v = if is_xmm_op(self, 1) {
                    let s = self.xsrc(1, Ty::V128)?;
                    self.extract_lane(s, 4 * (imm >> 6), 4)
                } else {
                    let v = self.xsrc(1, Ty::I32)?;
                    self.sb.zext(v, Ty::I64)
                };
                let d = self.xsrc(0, Ty::V128)?;
                let r = self.insert_lane(d, v, 4 * ((imm >> 4) & 3), 4);
                let r = self.sb.binop(Binop::Vec2(VecOp::And), r, vconst(!lane_mask(imm as u32 & 15, 4, 4)));
                self.put_xmm(0, r);
                Some(Outcome::Next)
            }
            M::Roundps | M::Roundpd => {
                let rc = self.round_control();
                let imm = self.sb.binop(Binop::Shl(Ty::I64), rc, Atom::u8(8));
                let s = self.xsrc(1, Ty::V128)?;
                let op = if m == M::Roundps { V128Op::Roundps } else { V128Op::Roundpd };
                let r = self.vh(op, s, s, imm);
                self.put_xmm(0, r);
                Some(Outcome::Next)
            }
            M::Roundss | M::Roundsd => {
                let ty = if m == M::Roundss { Ty::I32 } else { Ty::I64 };
                let rc = self.round_control();
                let mode = if m == M::Roundsd { self.sb.binop(Binop::Or(Ty::I64), rc, Atom::u64(256)) } else { rc };
                let s = self.xsrc(1, ty)?;
                let s = self.sb.zext(s, Ty::I64);
                let r = self.sb.ccall(h::round_scalar_callee(), Ty::I64, vec![s, mode]);
                let r = self.sb.zext(r, ty);
                let off = self.xoff(0);
                self.sb.put(off, r);
                Some(Outcome::Next)
            }
            M::Pcmpestri | M::Pcmpestrm | M::Pcmpistri | M::Pcmpistrm | M::Pcmpestri64 | M::Pcmpestrm64 => {
                self.pcmpstr(m)
            }
            M::Crc32 => {
                let sty = self.op_ty(1);
                let src = self.read_op(1, sty)?;
                let src = self.sb.zext(src, Ty::I64);
                let d = self.get_reg(self.ins.op_register(0));
                let d = self.sb.zext(d, Ty::I64);
                let r = self.sb.ccall(h::crc32c_callee(), Ty::I64, vec![d, src, Atom::u64(sty.bytes() as u64)]);
                let dty = self.op_ty(0);
                let r = self.sb.zext(r, dty);
                self.put_reg(self.ins.op_register(0), r);
                Some(Outcome::Next)
            }
            _ => return None,
        };
        Some(r.unwrap_or(Outcome::Unhandled))
    }

    /// Write xmm operand `i` (legacy encoding: the ymm upper half is kept).
    pub(super) fn put_xmm(&mut self, i: u32, v: Atom) {
        let off = self.xoff(i);
        self.sb.put(off, v);
    }

    /// `dst = f(dst, src)` for an xmm destination and xmm/m128 source.
    fn xform(&mut self, f: impl FnOnce(&mut Lifter, Atom, Atom) -> Atom) -> Option<Outcome> {
        if !is_xmm_op(self, 0) {
            return None;
        }
        let a = self.xsrc(0, Ty::V128)?;
        let b = self.xsrc(1, Ty::V128)?;
        let r = f(self, a, b);
        self.put_xmm(0, r);
        Some(Outcome::Next)
    }

    fn helper_form(&mut self, op: V128Op, imm: u8) -> Option<Outcome> {
        self.xform(|l, a, b| l.vh(op, a, b, Atom::u64((imm as u64) << 8)))
    }

    /// `amd64_vec128(op, a, b)` as a V128; `imm` is an I64 holding the immediate shifted left 8.
    pub(super) fn vh(&mut self, op: V128Op, a: Atom, b: Atom, imm: Atom) -> Atom {
        let alo = self.sb.unop(Unop::V128to64, a);
        let ahi = self.sb.unop(Unop::V128HIto64, a);
        let blo = self.sb.unop(Unop::V128to64, b);
        let bhi = self.sb.unop(Unop::V128HIto64, b);
        let imm_hi = self.sb.binop(Binop::Or(Ty::I64), imm, Atom::u64(1));
        let lo = self.sb.ccall(h::vec128_callee(), Ty::I64, vec![Atom::u64(op as u64), alo, ahi, blo, bhi, imm]);
        let hi = self.sb.ccall(h::vec128_callee(), Ty::I64, vec![Atom::u64(op as u64), alo, ahi, blo, bhi, imm_hi]);
        self.sb.binop(Binop::HiLo64toV128, hi, lo)
    }

    /// cvtps2dq/cvtpd2dq: round the lanes in the MXCSR mode (`imm` = the mode << 8, I64),
    /// then convert exactly by truncation (out of range and NaN give the integer indefinite).
    pub(super) fn cvt_rounded(&mut self, pd: bool, v: Atom, imm: Atom) -> Atom {
        let r = self.vh(if pd { V128Op::Roundpd } else { V128Op::Roundps }, v, v, imm);
        self.sb.unop(Unop::Vec1(if pd { VecOp::F64toI32STruncx2 } else { VecOp::F32toI32STruncx4 }), r)
    }

    /// Bit select: `mask ? x : y` per bit.
    pub(super) fn sel(&mut self, mask: Atom, x: Atom, y: Atom) -> Atom {
        let t = self.sb.binop(Binop::Vec2(VecOp::And), mask, x);
        let e = self.sb.binop(Binop::Vec2(VecOp::AndNot), mask, y);
        self.sb.binop(Binop::Vec2(VecOp::Or), t, e)
    }

    /// The all-ones-where-negative mask of a variable blend's selector `x0`.
    pub(super) fn blendv_mask(&mut self, m: M, x0: Atom) -> Atom {
        match m {
            M::Pblendvb | M::Vpblendvb => self.sb.binop(Binop::Vec2(VecOp::CmpGTS8x16), vconst(0), x0),
            M::Blendvps | M::Vblendvps => self.sb.binop(Binop::Vec2(VecOp::CmpGTS32x4), vconst(0), x0),
            _ => {
                let s = self.sb.binop(Binop::VecShift(VecOp::Sar32x4), x0, Atom::u8(31));
                self.sb.unop(Unop::ShufImm(VecOp::Shuf32x4, 0xf5), s)
            }
        }
    }

    /// palignr: bytes `imm..imm+16` of the 32-byte concatenation `a:b`.
    pub(super) fn palignr(&mut self, a: Atom, b: Atom, imm: u8) -> Atom {
        if imm >= 16 {
            return self.sb.binop(Binop::VecShift(VecOp::ShrBytes), a, Atom::u8(imm - 16));
        }
        let lo = self.sb.binop(Binop::VecShift(VecOp::ShrBytes), b, Atom::u8(imm));
        let hi = self.sb.binop(Binop::VecShift(VecOp::ShlBytes), a, Atom::u8(16 - imm));
        self.sb.binop(Binop::Vec2(VecOp::Or), lo, hi)
    }

    /// ptest/vptest flags from the two 128-bit halves' `d & s` and `!d & s` (pairs for ymm).
    pub(super) fn ptest_flags(&mut self, d: Atom, s: Atom) {
        let and = self.sb.binop(Binop::Vec2(VecOp::And), d, s);
        let andn = self.sb.binop(Binop::Vec2(VecOp::AndNot), d, s);
        self.ptest_flags_of(&[and], &[andn]);
    }
    pub(super) fn ptest_flags_of(&mut self, ands: &[Atom], andns: &[Atom]) {
        let mut bits = [Atom::u64(0), Atom::u64(0)];
        for (k, vs) in [ands, andns].into_iter().enumerate() {
            let mut acc = Atom::u64(0);
            for &v in vs {
                let lo = self.sb.unop(Unop::V128to64, v);
                let hi = self.sb.unop(Unop::V128HIto64, v);
                acc = self.sb.binop(Binop::Or(Ty::I64), acc, lo);
                acc = self.sb.binop(Binop::Or(Ty::I64), acc, hi);
            }
            let z = self.sb.binop(Binop::CmpEQ(Ty::I64), acc, Atom::u64(0));
            bits[k] = self.sb.zext(z, Ty::I64);
        }
        // ZF (bit 6) from the and, CF (bit 0) from the and-not.
        let zf = self.sb.binop(Binop::Shl(Ty::I64), bits[0], Atom::u8(6));
        let f = self.sb.binop(Binop::Or(Ty::I64), zf, bits[1]);
        self.set_flags_copy(f);
    }

    /// The `bytes`-byte lane at byte offset `at` of V128 `v`, zero-extended to I64.
    pub(super) fn extract_lane(&mut self, v: Atom, at: u8, bytes: u32) -> Atom {
        let half = self.sb.unop(if at < 8 { Unop::V128to64 } else { Unop::V128HIto64 }, v);
        let sh = (at % 8) * 8;
        let x = if sh > 0 { self.sb.binop(Binop::Shr(Ty::I64), half, Atom::u8(sh)) } else { half };
        if bytes == 8 { x } else { self.sb.binop(Binop::And(Ty::I64), x, Atom::u64((1u64 << (8 * bytes)) - 1)) }
    }

    /// `v` with the `bytes`-byte lane at byte offset `at` replaced by `x` (I64, high bits clear).
    pub(super) fn insert_lane(&mut self, v: Atom, x: Atom, at: u8, bytes: u32) -> Atom {
        let lo = self.sb.unop(Unop::V128to64, v);
        let hi = self.sb.unop(Unop::V128HIto64, v);
        let half = if at < 8 { lo } else { hi };
        let sh = (at % 8) * 8;
        let m = if bytes == 8 { u64::MAX } else { ((1u64 << (8 * bytes)) - 1) << sh };
        let keep = self.sb.binop(Binop::And(Ty::I64), half, Atom::u64(!m));
        let x = if sh > 0 { self.sb.binop(Binop::Shl(Ty::I64), x, Atom::u8(sh)) } else { x };
        let half = self.sb.binop(Binop::Or(Ty::I64), keep, x);
        let (lo, hi) = if at < 8 { (half, hi) } else { (lo, half) };
        self.sb.binop(Binop::HiLo64toV128, hi, lo)
    }

    /// Store an extracted lane (I64, zero-extended) to operand 0: a GPR gets it zero-extended,
    /// memory its `bytes` bytes.
    pub(super) fn write_extracted(&mut self, v: Atom, bytes: u32) -> Option<Outcome> {
        match self.ins.op_kind(0) {
            OpKind::Register => {
                let r = self.ins.op_register(0);
                let ty = self.op_ty(0);
                let v = self.sb.zext(v, ty);
                self.put_reg(r, v);
            }
            OpKind::Memory => {
                let v = self.sb.zext(v, Ty::int_of_bytes(bytes));
                let a = self.ea();
                self.sb.store(a, v);
            }
            _ => return None,
        }
        Some(Outcome::Next)
    }

    /// The rounding control of round*: the immediate's, or MXCSR's when bit 2 is set (I64).
    pub(super) fn round_control(&mut self) -> Atom {
        let imm = self.ins.immediate(2);
        if imm & 4 != 0 { self.sb.get(OFF_SSEROUND, Ty::I64) } else { Atom::u64(imm & 3) }
    }

    fn pmovx(&mut self, signed: bool, from: u32, to: u32) -> Option<Outcome> {
        if !is_xmm_op(self, 0) {
            return None;
        }
        let s = if is_xmm_op(self, 1) {
            self.xsrc(1, Ty::V128)?
        } else {
            // Memory: only the lanes that are widened are read.
            let bytes = 16 * from / to;
            let v = self.read_op(1, Ty::int_of_bytes(bytes))?;
            let v = self.sb.zext(v, Ty::I64);
            self.sb.unop(Unop::I64UtoV128, v)
        };
        let r = self.widen_lanes(s, signed, from, to);
        self.put_xmm(0, r);
        Some(Outcome::Next)
    }

    /// Widen the low lanes of `s` from `from` to `to` bits by repeated interleaving with zero
    /// or with the lanes' sign masks.
    pub(super) fn widen_lanes(&mut self, s: Atom, signed: bool, from: u32, to: u32) -> Atom {
        let mut v = s;
        let mut w = from;
        while w < to {
            let (inter, gt) = match w {
                8 => (VecOp::InterleaveLO8x16, VecOp::CmpGTS8x16),
                16 => (VecOp::InterleaveLO16x8, VecOp::CmpGTS16x8),
                _ => (VecOp::InterleaveLO32x4, VecOp::CmpGTS32x4),
            };
            let fill = if signed { self.sb.binop(Binop::Vec2(gt), vconst(0), v) } else { vconst(0) };
            v = self.sb.binop(Binop::Vec2(inter), v, fill);
            w *= 2;
        }
        v
    }

    /// pcmp[ei]str[im]: the second operand goes to the scratch register, where the helper reads
    /// it with the first operand, rax and rdx; it returns rflags | index << 32 and writes xmm0
    /// for the mask forms.
    fn pcmpstr(&mut self, m: M) -> Option<Outcome> {
        if !is_xmm_op(self, 0) {
            return None;
        }
        let b = self.xsrc(1, Ty::V128)?;
        self.sb.put(off_ymm(h::SCRATCH), b);
        let explicit = matches!(m, M::Pcmpestri | M::Pcmpestrm | M::Pcmpestri64 | M::Pcmpestrm64);
        let mask = matches!(m, M::Pcmpestrm | M::Pcmpistrm | M::Pcmpestrm64);
        let wide = matches!(m, M::Pcmpestri64 | M::Pcmpestrm64);
        let imm = self.ins.immediate(2);
        let mode = imm | (explicit as u64) << 8 | (mask as u64) << 9 | (wide as u64) << 10;
        let areg = self.ins.op_register(0).number();
        let dst = self.sb.new_temp(Ty::I64);
        let mut reads = vec![(off_ymm(areg), 16), (off_ymm(h::SCRATCH), 16)];
        if explicit {
            reads.push((off_gpr(RAX), 8));
            reads.push((off_gpr(RDX), 8));
        }
        self.sb.stmts.push(Stmt::Dirty(Box::new(Dirty {
            callee: h::pcmpstr_callee(),
            args: vec![Atom::u64(areg as u64), Atom::u64(mode)],
            pass_state: true,
            guard: None,
            dst: Some(dst),
            reads_state: reads,
            writes_state: if mask { vec![(off_ymm(0), 16)] } else { vec![] },
            reads_mem: None,
            writes_mem: None,
        })));
        let r = Atom::Tmp(dst);
        if !mask {
            let idx = self.sb.binop(Binop::Shr(Ty::I64), r, Atom::u8(32));
            self.put_gpr64(RCX, idx);
        }
        self.set_flags_copy(r);
        Some(Outcome::Next)
    }
}
