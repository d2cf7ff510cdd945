//! SSE/SSE2 (the subset that compilers and static glibc emit for x86-64 without SSE3): moves,
//! packed integer and floating-point lane operations (mapped onto `VecOp`), scalar float
//! arithmetic, conversions, compares into rflags, shuffles, shifts, mask extraction, MXCSR.
//! MXCSR's rounding mode is stored but arithmetic rounds to nearest (see the IR interpreter).

use super::{Lifter, Outcome};
use crate::state::*;
use iced_x86::{Mnemonic as M, OpKind};
use vg_ir::*;

/// Packed two-operand forms: `dst = op(dst, src)`.
const VEC2: &[(M, VecOp)] = &[
    (M::Pxor, VecOp::Xor),
    (M::Xorps, VecOp::Xor),
    (M::Xorpd, VecOp::Xor),
    (M::Por, VecOp::Or),
    (M::Orps, VecOp::Or),
    (M::Orpd, VecOp::Or),
    (M::Pand, VecOp::And),
    (M::Andps, VecOp::And),
    (M::Andpd, VecOp::And),
    (M::Pandn, VecOp::AndNot),
    (M::Andnps, VecOp::AndNot),
    (M::Andnpd, VecOp::AndNot),
    (M::Paddb, VecOp::Add8x16),
    (M::Paddw, VecOp::Add16x8),
    (M::Paddd, VecOp::Add32x4),
    (M::Paddq, VecOp::Add64x2),
    (M::Psubb, VecOp::Sub8x16),
    (M::Psubw, VecOp::Sub16x8),
    (M::Psubd, VecOp::Sub32x4),
    (M::Psubq, VecOp::Sub64x2),
    (M::Paddsb, VecOp::QAddS8x16),
    (M::Paddusb, VecOp::QAddU8x16),
    (M::Paddsw, VecOp::QAddS16x8),
    (M::Paddusw, VecOp::QAddU16x8),
    (M::Psubsb, VecOp::QSubS8x16),
    (M::Psubusb, VecOp::QSubU8x16),
    (M::Psubsw, VecOp::QSubS16x8),
    (M::Psubusw, VecOp::QSubU16x8),
    (M::Pmullw, VecOp::Mul16x8),
    (M::Pmulhw, VecOp::MulHiS16x8),
    (M::Pmulhuw, VecOp::MulHiU16x8),
    (M::Pmuludq, VecOp::MullEvenU32x2),
    (M::Pmaddwd, VecOp::MAddS16x8),
    (M::Pavgb, VecOp::AvgU8x16),
    (M::Pavgw, VecOp::AvgU16x8),
    (M::Psadbw, VecOp::SadU8x16),
    (M::Pminub, VecOp::MinU8x16),
    (M::Pmaxub, VecOp::MaxU8x16),
    (M::Pminsw, VecOp::MinS16x8),
    (M::Pmaxsw, VecOp::MaxS16x8),
    (M::Pcmpeqb, VecOp::CmpEQ8x16),
    (M::Pcmpeqw, VecOp::CmpEQ16x8),
    (M::Pcmpeqd, VecOp::CmpEQ32x4),
    (M::Pcmpgtb, VecOp::CmpGTS8x16),
    (M::Pcmpgtw, VecOp::CmpGTS16x8),
    (M::Pcmpgtd, VecOp::CmpGTS32x4),
    (M::Punpcklbw, VecOp::InterleaveLO8x16),
    (M::Punpcklwd, VecOp::InterleaveLO16x8),
    (M::Punpckldq, VecOp::InterleaveLO32x4),
    (M::Punpcklqdq, VecOp::InterleaveLO64x2),
    (M::Punpckhbw, VecOp::InterleaveHI8x16),
    (M::Punpckhwd, VecOp::InterleaveHI16x8),
    (M::Punpckhdq, VecOp::InterleaveHI32x4),
    (M::Punpckhqdq, VecOp::InterleaveHI64x2),
    (M::Unpcklps, VecOp::InterleaveLO32x4),
    (M::Unpckhps, VecOp::InterleaveHI32x4),
    (M::Unpcklpd, VecOp::InterleaveLO64x2),
    (M::Unpckhpd, VecOp::InterleaveHI64x2),
    (M::Packsswb, VecOp::QNarrowS16x8to8x16),
    (M::Packuswb, VecOp::QNarrowU16x8to8x16),
    (M::Packssdw, VecOp::QNarrowS32x4to16x8),
    (M::Addps, VecOp::Add32Fx4),
    (M::Subps, VecOp::Sub32Fx4),
    (M::Mulps, VecOp::Mul32Fx4),
    (M::Divps, VecOp::Div32Fx4),
    (M::Minps, VecOp::Min32Fx4),
    (M::Maxps, VecOp::Max32Fx4),
    (M::Addpd, VecOp::Add64Fx2),
    (M::Subpd, VecOp::Sub64Fx2),
    (M::Mulpd, VecOp::Mul64Fx2),
    (M::Divpd, VecOp::Div64Fx2),
    (M::Minpd, VecOp::Min64Fx2),
    (M::Maxpd, VecOp::Max64Fx2),
];

/// Packed one-operand forms: `dst = op(src)`.
const VEC1: &[(M, VecOp)] = &[
    (M::Sqrtps, VecOp::Sqrt32Fx4),
    (M::Sqrtpd, VecOp::Sqrt64Fx2),
    (M::Cvtdq2ps, VecOp::I32StoF32x4),
    (M::Cvttps2dq, VecOp::F32toI32STruncx4),
    (M::Cvtdq2pd, VecOp::I32StoF64x2),
    (M::Cvttpd2dq, VecOp::F64toI32STruncx2),
    (M::Cvtps2pd, VecOp::F32toF64x2),
    (M::Cvtpd2ps, VecOp::F64toF32x2),
];

/// Scalar arithmetic: `dst.lo = op(dst.lo, src)`.
const SCALAR: &[(M, fn(Ty) -> Binop, Ty)] = &[
    (M::Addsd, Binop::AddF, Ty::F64),
    (M::Subsd, Binop::SubF, Ty::F64),
    (M::Mulsd, Binop::MulF, Ty::F64),
    (M::Divsd, Binop::DivF, Ty::F64),
    (M::Minsd, Binop::MinF, Ty::F64),
    (M::Maxsd, Binop::MaxF, Ty::F64),
    (M::Addss, Binop::AddF, Ty::F32),
    (M::Subss, Binop::SubF, Ty::F32),
    (M::Mulss, Binop::MulF, Ty::F32),
    (M::Divss, Binop::DivF, Ty::F32),
    (M::Minss, Binop::MinF, Ty::F32),
    (M::Maxss, Binop::MaxF, Ty::F32),
];

pub(super) fn is_xmm_op(l: &Lifter, i: u32) -> bool {
    l.ins.op_kind(i) == OpKind::Register && l.ins.op_register(i).is_xmm()
}

impl Lifter {
    pub(super) fn xoff(&self, i: u32) -> u32 {
        off_ymm(self.ins.op_register(i).number())
    }

    /// Operand `i` (xmm or memory) as `ty`: a register gives its low `ty` bits.
    pub(super) fn xsrc(&mut self, i: u32, ty: Ty) -> Option<Atom> {
        match self.ins.op_kind(i) {
            OpKind::Register if self.ins.op_register(i).is_xmm() => {
                let off = self.xoff(i);
                Some(self.sb.get(off, ty))
            }
            OpKind::Memory => {
                let a = self.ea();
                Some(self.sb.load(ty, a))
            }
            _ => None,
        }
    }

    /// Lift an SSE/SSE2 instruction; `None` if it is not one of this family.
    pub(super) fn lift_sse(&mut self) -> Option<Outcome> {
        let m = self.ins.mnemonic();
        // MMX-register forms share mnemonics with the SSE ones; they are not lifted.
        for i in 0..self.ins.op_count() {
            if self.ins.op_kind(i) == OpKind::Register && self.ins.op_register(i).is_mm() {
                return Some(Outcome::Unhandled);
            }
        }
        if let Some(&(_, op)) = VEC2.iter().find(|e| e.0 == m) {
            return Some(self.vec2(op).unwrap_or(Outcome::Unhandled));
        }
        if let Some(&(_, op)) = VEC1.iter().find(|e| e.0 == m) {
            return Some(self.vec1(m, op).unwrap_or(Outcome::Unhandled));
        }
        if let Some(&(_, mk, ty)) = SCALAR.iter().find(|e| e.0 == m) {
            return Some(self.scalar(mk(ty), ty).unwrap_or(Outcome::Unhandled));
        }
        let r = match m {
            M::Movdqa | M::Movdqu | M::Movaps | M::Movups | M::Movapd | M::Movupd | M::Movntdq | M::Movntps
            | M::Movntpd => self.mov128(),
            M::Movd | M::Movq => self.movdq(),
            M::Movss | M::Movsd => self.movs_scalar(if m == M::Movss { Ty::I32 } else { Ty::I64 }),
            M::Movhps | M::Movhpd | M::Movlps | M::Movlpd => self.movhl(matches!(m, M::Movhps | M::Movhpd)),
            M::Movhlps | M::Movlhps => {
                if !is_xmm_op(self, 1) {
                    return Some(Outcome::Unhandled);
                }
                let d = self.xsrc(0, Ty::V128)?;
                let s = self.xsrc(1, Ty::V128)?;
                let r = if m == M::Movhlps {
                    let h = self.sb.unop(Unop::V128HIto64, s);
                    self.sb.binop(Binop::SetV128lo64, d, h)
                } else {
                    let dl = self.sb.unop(Unop::V128to64, d);
                    let sl = self.sb.unop(Unop::V128to64, s);
                    self.sb.binop(Binop::HiLo64toV128, sl, dl)
                };
                let off = self.xoff(0);
                self.sb.put(off, r);
                Some(Outcome::Next)
            }
            M::Sqrtsd | M::Sqrtss => {
                let (ty, op) = if m == M::Sqrtsd { (Ty::F64, Unop::SqrtF64) } else { (Ty::F32, Unop::SqrtF32) };
                let s = self.xsrc(1, ty)?;
                let r = self.sb.unop(op, s);
                let off = self.xoff(0);
                self.sb.put(off, r);
                Some(Outcome::Next)
            }
            M::Cvtsi2sd | M::Cvtsi2ss => {
                let ity = self.op_ty(1);
                let s = self.read_op(1, ity)?;
                let fty = if m == M::Cvtsi2sd { Ty::F64 } else { Ty::F32 };
                let r = self.sb.unop(Unop::IntSToF(ity, fty), s);
                let off = self.xoff(0);
                self.sb.put(off, r);
                Some(Outcome::Next)
            }
            M::Cvttsd2si | M::Cvtsd2si | M::Cvttss2si | M::Cvtss2si => {
                let fty = if matches!(m, M::Cvttsd2si | M::Cvtsd2si) { Ty::F64 } else { Ty::F32 };
                let s = self.xsrc(1, fty)?;
                let ity = self.op_ty(0);
                let op = if matches!(m, M::Cvttsd2si | M::Cvttss2si) {
                    Unop::FToIntSTrunc(fty, ity)
                } else {
                    Unop::FToIntSNearest(fty, ity)
                };
                let r = self.sb.unop(op, s);
                self.put_reg(self.ins.op_register(0), r);
                Some(Outcome::Next)
            }
            M::Cvtss2sd | M::Cvtsd2ss => {
                let (sty, op) = if m == M::Cvtss2sd { (Ty::F32, Unop::F32toF64) } else { (Ty::F64, Unop::F64toF32) };
                let s = self.xsrc(1, sty)?;
                let r = self.sb.unop(op, s);
                let off = self.xoff(0);
                self.sb.put(off, r);
                Some(Outcome::Next)
            }
            M::Ucomisd | M::Comisd | M::Ucomiss | M::Comiss => {
                let ty = if matches!(m, M::Ucomisd | M::Comisd) { Ty::F64 } else { Ty::F32 };
                let a = self.xsrc(0, ty)?;
                let b = self.xsrc(1, ty)?;
                let c = self.sb.binop(Binop::CmpF(ty), a, b);
                let c = self.sb.zext(c, Ty::I64);
                self.set_flags_copy(c);
                Some(Outcome::Next)
            }
            M::Pshufd | M::Pshuflw | M::Pshufhw => {
                let op = match m {
                    M::Pshufd => VecOp::Shuf32x4,
                    M::Pshuflw => VecOp::ShufLo16x4,
                    _ => VecOp::ShufHi16x4,
                };
                let s = self.xsrc(1, Ty::V128)?;
                let r = self.sb.unop(Unop::ShufImm(op, self.ins.immediate(2) as u8), s);
                let off = self.xoff(0);
                self.sb.put(off, r);
                Some(Outcome::Next)
            }
            M::Psllw | M::Pslld | M::Psllq | M::Psrlw | M::Psrld | M::Psrlq | M::Psraw | M::Psrad => {
                let op = match m {
                    M::Psllw => VecOp::Shl16x8,
                    M::Pslld => VecOp::Shl32x4,
                    M::Psllq => VecOp::Shl64x2,
                    M::Psrlw => VecOp::Shr16x8,
                    M::Psrld => VecOp::Shr32x4,
                    M::Psrlq => VecOp::Shr64x2,
                    M::Psraw => VecOp::Sar16x8,
                    _ => VecOp::Sar32x4,
                };
                self.vec_shift(op)
            }
            M::Pslldq | M::Psrldq => self.vec_shift(if m == M::Pslldq { VecOp::ShlBytes } else { VecOp::ShrBytes }),
            M::Pmovmskb => {
                let s = self.xsrc(1, Ty::V128)?;
                let r = self.sb.unop(Unop::GetMSBs8x16, s);
                let ty = self.op_ty(0);
                let r = self.sb.zext(r, ty);
                self.put_reg(self.ins.op_register(0), r);
                Some(Outcome::Next)
            }
            M::Movmskps | M::Movmskpd => self.movmsk(m == M::Movmskps),
            M::Pinsrw => {
                // Replace word `imm & 7`: edit the 64-bit half that holds it.
                let w = match self.ins.op_kind(1) {
                    OpKind::Register => {
                        let r = self.get_reg(self.ins.op_register(1));
                        self.sb.zext(r, Ty::I16)
                    }
                    _ => self.read_op(1, Ty::I16)?,
                };
                let k = self.ins.immediate(2) as u8 & 7;
                let off = self.xoff(0);
                let v = self.sb.get(off, Ty::V128);
                let lo = self.sb.unop(Unop::V128to64, v);
                let hi = self.sb.unop(Unop::V128HIto64, v);
                let half = if k < 4 { lo } else { hi };
                let sh = (k % 4) * 16;
                let keep = self.sb.binop(Binop::And(Ty::I64), half, Atom::u64(!(0xffffu64 << sh)));
                let w64 = self.sb.zext(w, Ty::I64);
                let w64 = self.sb.binop(Binop::Shl(Ty::I64), w64, Atom::u8(sh));
                let half = self.sb.binop(Binop::Or(Ty::I64), keep, w64);
                let (lo, hi) = if k < 4 { (half, hi) } else { (lo, half) };
                let r = self.sb.binop(Binop::HiLo64toV128, hi, lo);
                self.sb.put(off, r);
                Some(Outcome::Next)
            }
            M::Shufps => self.shufps(),
            M::Shufpd => {
                let imm = self.ins.immediate(2);
                let d = self.xsrc(0, Ty::V128)?;
                let s = self.xsrc(1, Ty::V128)?;
                let lo = self.sb.unop(if imm & 1 == 0 { Unop::V128to64 } else { Unop::V128HIto64 }, d);
                let hi = self.sb.unop(if imm & 2 == 0 { Unop::V128to64 } else { Unop::V128HIto64 }, s);
                let r = self.sb.binop(Binop::HiLo64toV128, hi, lo);
                let off = self.xoff(0);
                self.sb.put(off, r);
                Some(Outcome::Next)
            }
            M::Cmpps | M::Cmppd | M::Cmpss | M::Cmpsd => {
                let p = self.ins.immediate(2) as u8 & 7;
                let d = self.xsrc(0, Ty::V128)?;
                let (wide, lo_ty) = match m {
                    M::Cmpps => (VecOp::CmpF32x4(p), None),
                    M::Cmppd => (VecOp::CmpF64x2(p), None),
                    M::Cmpss => (VecOp::CmpF32x4(p), Some(Ty::I32)),
                    _ => (VecOp::CmpF64x2(p), Some(Ty::I64)),
                };
                // Scalar forms compare the whole vector and keep only the low lane.
                let s = match lo_ty {
                    None => self.xsrc(1, Ty::V128)?,
                    Some(ty) => {
                        let v = self.xsrc(1, ty)?;
                        self.sb.unop(if ty == Ty::I32 { Unop::I32UtoV128 } else { Unop::I64UtoV128 }, v)
                    }
                };
                let r = self.sb.binop(Binop::Vec2(wide), d, s);
                let r = match lo_ty {
                    None => r,
                    Some(Ty::I32) => {
                        let l = self.sb.unop(Unop::V128to32, r);
                        self.sb.binop(Binop::SetV128lo32, d, l)
                    }
                    Some(_) => {
                        let l = self.sb.unop(Unop::V128to64, r);
                        self.sb.binop(Binop::SetV128lo64, d, l)
                    }
                };
                let off = self.xoff(0);
                self.sb.put(off, r);
                Some(Outcome::Next)
            }
            M::Ldmxcsr => {
                let a = self.ea();
                let v = self.sb.load(Ty::I32, a);
                let v = self.sb.zext(v, Ty::I64);
                let rm = self.sb.binop(Binop::Shr(Ty::I64), v, Atom::u8(13));
                let rm = self.sb.binop(Binop::And(Ty::I64), rm, Atom::u64(3));
                self.sb.put(OFF_SSEROUND, rm);
                Some(Outcome::Next)
            }
            M::Stmxcsr => {
                let rm = self.sb.get(OFF_SSEROUND, Ty::I64);
                let rm = self.sb.binop(Binop::Shl(Ty::I64), rm, Atom::u8(13));
                let v = self.sb.binop(Binop::Or(Ty::I64), rm, Atom::u64(0x1f80));
                let v = self.sb.zext(v, Ty::I32);
                let a = self.ea();
                self.sb.store(a, v);
                Some(Outcome::Next)
            }
            _ => return None,
        };
        Some(r.unwrap_or(Outcome::Unhandled))
    }

    fn vec2(&mut self, op: VecOp) -> Option<Outcome> {
        if !is_xmm_op(self, 0) {
            return None;
        }
        let d = self.xsrc(0, Ty::V128)?;
        let s = self.xsrc(1, Ty::V128)?;
        let r = self.sb.binop(Binop::Vec2(op), d, s);
        let off = self.xoff(0);
        self.sb.put(off, r);
        Some(Outcome::Next)
    }

    fn vec1(&mut self, m: M, op: VecOp) -> Option<Outcome> {
        if !is_xmm_op(self, 0) {
            return None;
        }
        // The widening conversions read only 64 bits from memory.
        let s = if matches!(m, M::Cvtdq2pd | M::Cvtps2pd) && self.ins.op_kind(1) == OpKind::Memory {
            let v = self.xsrc(1, Ty::I64)?;
            self.sb.unop(Unop::I64UtoV128, v)
        } else {
            self.xsrc(1, Ty::V128)?
        };
        let r = self.sb.unop(Unop::Vec1(op), s);
        let off = self.xoff(0);
        self.sb.put(off, r);
        Some(Outcome::Next)
    }

    fn scalar(&mut self, op: Binop, ty: Ty) -> Option<Outcome> {
        if !is_xmm_op(self, 0) {
            return None;
        }
        let a = self.xsrc(0, ty)?;
        let b = self.xsrc(1, ty)?;
        let r = self.sb.binop(op, a, b);
        let off = self.xoff(0);
        self.sb.put(off, r);
        Some(Outcome::Next)
    }

    fn mov128(&mut self) -> Option<Outcome> {
        let v = self.xsrc(1, Ty::V128)?;
        match self.ins.op_kind(0) {
            OpKind::Register if self.ins.op_register(0).is_xmm() => {
                let off = self.xoff(0);
                self.sb.put(off, v)
            }
            OpKind::Memory => {
                let a = self.ea();
                self.sb.store(a, v)
            }
            _ => return None,
        }
        Some(Outcome::Next)
    }

    /// movd/movq between xmm and GPR/memory, and movq xmm <- xmm/m64 / m64 <- xmm.
    fn movdq(&mut self) -> Option<Outcome> {
        let ty = if self.ins.mnemonic() == M::Movd { Ty::I32 } else { Ty::I64 };
        if is_xmm_op(self, 0) {
            let v = if is_xmm_op(self, 1) { self.xsrc(1, ty)? } else { self.read_op(1, ty)? };
            let w = self.sb.unop(if ty == Ty::I32 { Unop::I32UtoV128 } else { Unop::I64UtoV128 }, v);
            let off = self.xoff(0);
            self.sb.put(off, w);
        } else {
            if !is_xmm_op(self, 1) {
                return None;
            }
            let v = self.xsrc(1, ty)?;
            self.write_op(0, v)?;
        }
        Some(Outcome::Next)
    }

    /// movss/movsd: register to register merges the low lane; a load zeroes the rest.
    fn movs_scalar(&mut self, ty: Ty) -> Option<Outcome> {
        if is_xmm_op(self, 0) {
            let off = self.xoff(0);
            if is_xmm_op(self, 1) {
                let v = self.xsrc(1, ty)?;
                self.sb.put(off, v);
            } else {
                let v = self.xsrc(1, ty)?;
                let w = self.sb.unop(if ty == Ty::I32 { Unop::I32UtoV128 } else { Unop::I64UtoV128 }, v);
                self.sb.put(off, w);
            }
        } else {
            let v = self.xsrc(1, ty)?;
            self.write_op(0, v)?;
        }
        Some(Outcome::Next)
    }

    fn movhl(&mut self, high: bool) -> Option<Outcome> {
        if is_xmm_op(self, 0) {
            if self.ins.op_kind(1) != OpKind::Memory {
                return None;
            }
            let off = self.xoff(0) + if high { 8 } else { 0 };
            let v = self.xsrc(1, Ty::I64)?;
            self.sb.put(off, v);
        } else {
            let off = off_ymm(self.ins.op_register(1).number()) + if high { 8 } else { 0 };
            let v = self.sb.get(off, Ty::I64);
            self.write_op(0, v)?;
        }
        Some(Outcome::Next)
    }

    fn vec_shift(&mut self, op: VecOp) -> Option<Outcome> {
        if !is_xmm_op(self, 0) {
            return None;
        }
        let amount = if self.ins.op_kind(1) == OpKind::Immediate8 {
            Atom::u8(self.ins.immediate(1) as u8)
        } else {
            // A 64-bit count: anything above 255 shifts everything out, like 255 does.
            let c = self.xsrc(1, Ty::I64)?;
            let big = self.sb.binop(Binop::CmpLTU(Ty::I64), Atom::u64(255), c);
            let lo = self.sb.zext(c, Ty::I8);
            self.sb.ite(big, Atom::u8(255), lo)
        };
        let d = self.xsrc(0, Ty::V128)?;
        let r = self.sb.binop(Binop::VecShift(op), d, amount);
        let off = self.xoff(0);
        self.sb.put(off, r);
        Some(Outcome::Next)
    }

    fn movmsk(&mut self, ps: bool) -> Option<Outcome> {
        let off = off_ymm(self.ins.op_register(1).number());
        let lo = self.sb.get(off, Ty::I64);
        let hi = self.sb.get(off + 8, Ty::I64);
        let bit = |l: &mut Lifter, v: Atom, from: u8, to: u8| {
            let b = l.sb.binop(Binop::Shr(Ty::I64), v, Atom::u8(from));
            let b = l.sb.binop(Binop::And(Ty::I64), b, Atom::u64(1));
            if to == 0 { b } else { l.sb.binop(Binop::Shl(Ty::I64), b, Atom::u8(to)) }
        };
        let parts = if ps {
            [bit(self, lo, 31, 0), bit(self, lo, 63, 1), bit(self, hi, 31, 2), bit(self, hi, 63, 3)]
        } else {
            [bit(self, lo, 63, 0), bit(self, hi, 63, 1), Atom::u64(0), Atom::u64(0)]
        };
        let mut r = parts[0];
        for p in &parts[1..] {
            r = self.sb.binop(Binop::Or(Ty::I64), r, *p);
        }
        let ty = self.op_ty(0);
        let r = self.sb.zext(r, ty);
        self.put_reg(self.ins.op_register(0), r);
        Some(Outcome::Next)
    }

    fn shufps(&mut self) -> Option<Outcome> {
        let imm = self.ins.immediate(2) as u8;
        let d = self.xsrc(0, Ty::V128)?;
        let s = self.xsrc(1, Ty::V128)?;
        let pick = |l: &mut Lifter, v: Atom, k: u8| {
            let sh = l.sb.binop(Binop::VecShift(VecOp::ShrBytes), v, Atom::u8(4 * k));
            l.sb.unop(Unop::V128to32, sh)
        };
        let l0 = pick(self, d, imm & 3);
        let l1 = pick(self, d, (imm >> 2) & 3);
        let l2 = pick(self, s, (imm >> 4) & 3);
        let l3 = pick(self, s, (imm >> 6) & 3);
        let lo = self.sb.binop(Binop::HiLo(Ty::I32), l1, l0);
        let hi = self.sb.binop(Binop::HiLo(Ty::I32), l3, l2);
        let r = self.sb.binop(Binop::HiLo64toV128, hi, lo);
        let off = self.xoff(0);
        self.sb.put(off, r);
        Some(Outcome::Next)
    }
}
