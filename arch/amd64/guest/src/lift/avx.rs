//! AVX, AVX2 and FMA3: the VEX-encoded 128- and 256-bit vector forms.
//!
//! A 256-bit value is a pair of V128 halves (the ymm slot's bytes 0..16 and 16..32, or the
//! memory operand's): lane-wise operations, and AVX's in-lane shuffles, apply the 128-bit
//! operation to each half; the cross-lane forms (inserts, extracts, vperm2i128, vpermq,
//! vpermd, broadcasts, widening moves and conversions) move halves and 64-bit quarters. A VEX.128
//! form writes the low half and zeroes bits 128..255 of its destination, unlike the legacy
//! encodings in `sse.rs`/`sse4.rs`, whose operation tables this module reuses.
//!
//! FMA3 maps the 132/213/231 operand orders onto one IR operation, `Binop::Fma`, whose
//! factors travel as a V256 pair; the scalar forms compute all lanes and keep the low one.

use super::sse::is_xmm_op;
use super::sse4::{lane_mask, vconst, HELPER2, HELPER_IMM, NATIVE1, NATIVE2, PMOVX};
use super::{Lifter, Outcome};
use crate::helpers::{self as h, V128Op};
use crate::state::*;
use alloc::vec;
use alloc::vec::Vec;
use iced_x86::{EncodingKind, Mnemonic as M, OpKind};
use vg_ir::*;

/// VEX forms of the packed two-operand SSE operations: `dst = op(src1, src2)`.
const VEC2: &[(M, VecOp)] = &[
    (M::Vpxor, VecOp::Xor),
    (M::Vxorps, VecOp::Xor),
    (M::Vxorpd, VecOp::Xor),
    (M::Vpor, VecOp::Or),
    (M::Vorps, VecOp::Or),
    (M::Vorpd, VecOp::Or),
    (M::Vpand, VecOp::And),
    (M::Vandps, VecOp::And),
    (M::Vandpd, VecOp::And),
    (M::Vpandn, VecOp::AndNot),
    (M::Vandnps, VecOp::AndNot),
    (M::Vandnpd, VecOp::AndNot),
    (M::Vpaddb, VecOp::Add8x16),
    (M::Vpaddw, VecOp::Add16x8),
    (M::Vpaddd, VecOp::Add32x4),
    (M::Vpaddq, VecOp::Add64x2),
    (M::Vpsubb, VecOp::Sub8x16),
    (M::Vpsubw, VecOp::Sub16x8),
    (M::Vpsubd, VecOp::Sub32x4),
    (M::Vpsubq, VecOp::Sub64x2),
    (M::Vpaddsb, VecOp::QAddS8x16),
    (M::Vpaddusb, VecOp::QAddU8x16),
    (M::Vpaddsw, VecOp::QAddS16x8),
    (M::Vpaddusw, VecOp::QAddU16x8),
    (M::Vpsubsb, VecOp::QSubS8x16),
    (M::Vpsubusb, VecOp::QSubU8x16),
    (M::Vpsubsw, VecOp::QSubS16x8),
    (M::Vpsubusw, VecOp::QSubU16x8),
    (M::Vpmullw, VecOp::Mul16x8),
    (M::Vpmulhw, VecOp::MulHiS16x8),
    (M::Vpmulhuw, VecOp::MulHiU16x8),
    (M::Vpmuludq, VecOp::MullEvenU32x2),
    (M::Vpmaddwd, VecOp::MAddS16x8),
    (M::Vpavgb, VecOp::AvgU8x16),
    (M::Vpavgw, VecOp::AvgU16x8),
    (M::Vpsadbw, VecOp::SadU8x16),
    (M::Vpminub, VecOp::MinU8x16),
    (M::Vpmaxub, VecOp::MaxU8x16),
    (M::Vpminsw, VecOp::MinS16x8),
    (M::Vpmaxsw, VecOp::MaxS16x8),
    (M::Vpcmpeqb, VecOp::CmpEQ8x16),
    (M::Vpcmpeqw, VecOp::CmpEQ16x8),
    (M::Vpcmpeqd, VecOp::CmpEQ32x4),
    (M::Vpcmpgtb, VecOp::CmpGTS8x16),
    (M::Vpcmpgtw, VecOp::CmpGTS16x8),
    (M::Vpcmpgtd, VecOp::CmpGTS32x4),
    (M::Vpunpcklbw, VecOp::InterleaveLO8x16),
    (M::Vpunpcklwd, VecOp::InterleaveLO16x8),
    (M::Vpunpckldq, VecOp::InterleaveLO32x4),
    (M::Vpunpcklqdq, VecOp::InterleaveLO64x2),
    (M::Vpunpckhbw, VecOp::InterleaveHI8x16),
    (M::Vpunpckhwd, VecOp::InterleaveHI16x8),
    (M::Vpunpckhdq, VecOp::InterleaveHI32x4),
    (M::Vpunpckhqdq, VecOp::InterleaveHI64x2),
    (M::Vunpcklps, VecOp::InterleaveLO32x4),
    (M::Vunpckhps, VecOp::InterleaveHI32x4),
    (M::Vunpcklpd, VecOp::InterleaveLO64x2),
    (M::Vunpckhpd, VecOp::InterleaveHI64x2),
    (M::Vpacksswb, VecOp::QNarrowS16x8to8x16),
    (M::Vpackuswb, VecOp::QNarrowU16x8to8x16),
    (M::Vpackssdw, VecOp::QNarrowS32x4to16x8),
    (M::Vaddps, VecOp::Add32Fx4),
    (M::Vsubps, VecOp::Sub32Fx4),
    (M::Vmulps, VecOp::Mul32Fx4),
    (M::Vdivps, VecOp::Div32Fx4),
    (M::Vminps, VecOp::Min32Fx4),
    (M::Vmaxps, VecOp::Max32Fx4),
    (M::Vaddpd, VecOp::Add64Fx2),
    (M::Vsubpd, VecOp::Sub64Fx2),
    (M::Vmulpd, VecOp::Mul64Fx2),
    (M::Vdivpd, VecOp::Div64Fx2),
    (M::Vminpd, VecOp::Min64Fx2),
    (M::Vmaxpd, VecOp::Max64Fx2),
];

/// VEX mnemonic -> legacy mnemonic, for the forms whose operation table lives in `sse4.rs`.
const LEGACY: &[(M, M)] = &[
    (M::Vpshufb, M::Pshufb),
    (M::Vpmaddubsw, M::Pmaddubsw),
    (M::Vpmulhrsw, M::Pmulhrsw),
    (M::Vpsignb, M::Psignb),
    (M::Vpsignw, M::Psignw),
    (M::Vpsignd, M::Psignd),
    (M::Vpminsb, M::Pminsb),
    (M::Vpmaxsb, M::Pmaxsb),
    (M::Vpminuw, M::Pminuw),
    (M::Vpmaxuw, M::Pmaxuw),
    (M::Vpminsd, M::Pminsd),
    (M::Vpmaxsd, M::Pmaxsd),
    (M::Vpminud, M::Pminud),
    (M::Vpmaxud, M::Pmaxud),
    (M::Vpmulld, M::Pmulld),
    (M::Vpmuldq, M::Pmuldq),
    (M::Vpcmpeqq, M::Pcmpeqq),
    (M::Vpcmpgtq, M::Pcmpgtq),
    (M::Vpackusdw, M::Packusdw),
    (M::Vpabsb, M::Pabsb),
    (M::Vpabsw, M::Pabsw),
    (M::Vpabsd, M::Pabsd),
    (M::Vphaddw, M::Phaddw),
    (M::Vphaddd, M::Phaddd),
    (M::Vphaddsw, M::Phaddsw),
    (M::Vphsubw, M::Phsubw),
    (M::Vphsubd, M::Phsubd),
    (M::Vphsubsw, M::Phsubsw),
    (M::Vaddsubps, M::Addsubps),
    (M::Vaddsubpd, M::Addsubpd),
    (M::Vhaddps, M::Haddps),
    (M::Vhaddpd, M::Haddpd),
    (M::Vhsubps, M::Hsubps),
    (M::Vhsubpd, M::Hsubpd),
    (M::Vphminposuw, M::Phminposuw),
    (M::Vmpsadbw, M::Mpsadbw),
    (M::Vdpps, M::Dpps),
    (M::Vdppd, M::Dppd),
    (M::Vpmovzxbw, M::Pmovzxbw),
    (M::Vpmovzxbd, M::Pmovzxbd),
    (M::Vpmovzxbq, M::Pmovzxbq),
    (M::Vpmovzxwd, M::Pmovzxwd),
    (M::Vpmovzxwq, M::Pmovzxwq),
    (M::Vpmovzxdq, M::Pmovzxdq),
    (M::Vpmovsxbw, M::Pmovsxbw),
    (M::Vpmovsxbd, M::Pmovsxbd),
    (M::Vpmovsxbq, M::Pmovsxbq),
    (M::Vpmovsxwd, M::Pmovsxwd),
    (M::Vpmovsxwq, M::Pmovsxwq),
    (M::Vpmovsxdq, M::Pmovsxdq),
];

/// AVX2 variable shifts and AVX variable in-lane permutes (helper forms).
const HELPER_VAR: &[(M, V128Op)] = &[
    (M::Vpsllvd, V128Op::Psllvd),
    (M::Vpsllvq, V128Op::Psllvq),
    (M::Vpsrlvd, V128Op::Psrlvd),
    (M::Vpsrlvq, V128Op::Psrlvq),
    (M::Vpsravd, V128Op::Psravd),
    (M::Vpermilps, V128Op::Vpermilps),
    (M::Vpermilpd, V128Op::Vpermilpd),
];

/// Packed one-operand forms: `dst = op(src)` per half.
const VEC1: &[(M, VecOp)] = &[
    (M::Vsqrtps, VecOp::Sqrt32Fx4),
    (M::Vsqrtpd, VecOp::Sqrt64Fx2),
    (M::Vcvtdq2ps, VecOp::I32StoF32x4),
    (M::Vcvttps2dq, VecOp::F32toI32STruncx4),
];

/// Scalar arithmetic `dst = src1` with the low lane `op(src1.lo, src2)`.
const SCALAR: &[(M, fn(Ty) -> Binop, Ty)] = &[
    (M::Vaddsd, Binop::AddF, Ty::F64),
    (M::Vsubsd, Binop::SubF, Ty::F64),
    (M::Vmulsd, Binop::MulF, Ty::F64),
    (M::Vdivsd, Binop::DivF, Ty::F64),
    (M::Vminsd, Binop::MinF, Ty::F64),
    (M::Vmaxsd, Binop::MaxF, Ty::F64),
    (M::Vaddss, Binop::AddF, Ty::F32),
    (M::Vsubss, Binop::SubF, Ty::F32),
    (M::Vmulss, Binop::MulF, Ty::F32),
    (M::Vdivss, Binop::DivF, Ty::F32),
    (M::Vminss, Binop::MinF, Ty::F32),
    (M::Vmaxss, Binop::MaxF, Ty::F32),
];

/// Per-lane shifts by an immediate or an xmm count.
const SHIFTS: &[(M, VecOp)] = &[
    (M::Vpsllw, VecOp::Shl16x8),
    (M::Vpslld, VecOp::Shl32x4),
    (M::Vpsllq, VecOp::Shl64x2),
    (M::Vpsrlw, VecOp::Shr16x8),
    (M::Vpsrld, VecOp::Shr32x4),
    (M::Vpsrlq, VecOp::Shr64x2),
    (M::Vpsraw, VecOp::Sar16x8),
    (M::Vpsrad, VecOp::Sar32x4),
    (M::Vpslldq, VecOp::ShlBytes),
    (M::Vpsrldq, VecOp::ShrBytes),
];

/// FMA3: (mnemonic, operand order 132/213/231, negation flags of `VecOp::Fma*` or 4 for
/// fmaddsub (even lanes subtract z, odd lanes add it), 5 for fmsubadd, lane type).
type FmaForm = (M, u16, u8, FmaTy);
const FMA: &[FmaForm] = &{
    use FmaTy::*;
    [
        (M::Vfmadd132ps, 132, 0, Ps),
        (M::Vfmadd213ps, 213, 0, Ps),
        (M::Vfmadd231ps, 231, 0, Ps),
        (M::Vfmadd132pd, 132, 0, Pd),
        (M::Vfmadd213pd, 213, 0, Pd),
        (M::Vfmadd231pd, 231, 0, Pd),
        (M::Vfmadd132ss, 132, 0, Ss),
        (M::Vfmadd213ss, 213, 0, Ss),
        (M::Vfmadd231ss, 231, 0, Ss),
        (M::Vfmadd132sd, 132, 0, Sd),
        (M::Vfmadd213sd, 213, 0, Sd),
        (M::Vfmadd231sd, 231, 0, Sd),
        (M::Vfmsub132ps, 132, 1, Ps),
        (M::Vfmsub213ps, 213, 1, Ps),
        (M::Vfmsub231ps, 231, 1, Ps),
        (M::Vfmsub132pd, 132, 1, Pd),
        (M::Vfmsub213pd, 213, 1, Pd),
        (M::Vfmsub231pd, 231, 1, Pd),
        (M::Vfmsub132ss, 132, 1, Ss),
        (M::Vfmsub213ss, 213, 1, Ss),
        (M::Vfmsub231ss, 231, 1, Ss),
        (M::Vfmsub132sd, 132, 1, Sd),
        (M::Vfmsub213sd, 213, 1, Sd),
        (M::Vfmsub231sd, 231, 1, Sd),
        (M::Vfnmadd132ps, 132, 2, Ps),
        (M::Vfnmadd213ps, 213, 2, Ps),
        (M::Vfnmadd231ps, 231, 2, Ps),
        (M::Vfnmadd132pd, 132, 2, Pd),
        (M::Vfnmadd213pd, 213, 2, Pd),
        (M::Vfnmadd231pd, 231, 2, Pd),
        (M::Vfnmadd132ss, 132, 2, Ss),
        (M::Vfnmadd213ss, 213, 2, Ss),
        (M::Vfnmadd231ss, 231, 2, Ss),
        (M::Vfnmadd132sd, 132, 2, Sd),
        (M::Vfnmadd213sd, 213, 2, Sd),
        (M::Vfnmadd231sd, 231, 2, Sd),
        (M::Vfnmsub132ps, 132, 3, Ps),
        (M::Vfnmsub213ps, 213, 3, Ps),
        (M::Vfnmsub231ps, 231, 3, Ps),
        (M::Vfnmsub132pd, 132, 3, Pd),
        (M::Vfnmsub213pd, 213, 3, Pd),
        (M::Vfnmsub231pd, 231, 3, Pd),
        (M::Vfnmsub132ss, 132, 3, Ss),
        (M::Vfnmsub213ss, 213, 3, Ss),
        (M::Vfnmsub231ss, 231, 3, Ss),
        (M::Vfnmsub132sd, 132, 3, Sd),
        (M::Vfnmsub213sd, 213, 3, Sd),
        (M::Vfnmsub231sd, 231, 3, Sd),
        (M::Vfmaddsub132ps, 132, 4, Ps),
        (M::Vfmaddsub132pd, 132, 4, Pd),
        (M::Vfmaddsub213ps, 213, 4, Ps),
        (M::Vfmaddsub213pd, 213, 4, Pd),
        (M::Vfmaddsub231ps, 231, 4, Ps),
        (M::Vfmaddsub231pd, 231, 4, Pd),
        (M::Vfmsubadd132ps, 132, 5, Ps),
        (M::Vfmsubadd132pd, 132, 5, Pd),
        (M::Vfmsubadd213ps, 213, 5, Ps),
        (M::Vfmsubadd213pd, 213, 5, Pd),
        (M::Vfmsubadd231ps, 231, 5, Ps),
        (M::Vfmsubadd231pd, 231, 5, Pd),
    ]
};

#[derive(Copy, Clone, PartialEq, Eq)]
enum FmaTy {
    Ps,
    Pd,
    Ss,
    Sd,
}

const ZERO: Atom = Atom::Const(Const::V128(0));

impl Lifter {
    /// Lift a VEX-encoded vector instruction; `None` if it is not one of this family.
    pub(super) fn lift_avx(&mut self) -> Option<Outcome> {
        if self.ins.encoding() != EncodingKind::VEX {
            return None;
        }
        let m = self.ins.mnemonic();
        if let Some(&(_, op)) = VEC2.iter().find(|e| e.0 == m) {
            return Some(self.vbin(|l, a, b| l.sb.binop(Binop::Vec2(op), a, b)));
        }
        if let Some(&(_, lm)) = LEGACY.iter().find(|e| e.0 == m) {
            return Some(self.legacy(lm).unwrap_or(Outcome::Unhandled));
        }
        if let Some(&(_, op)) = HELPER_VAR.iter().find(|e| e.0 == m) {
            if self.ins.op_kind(2) == OpKind::Immediate8 {
                return Some(self.permil_imm(m == M::Vpermilpd));
            }
            return Some(self.vbin(|l, a, b| l.vh(op, a, b, Atom::u64(0))));
        }
        if let Some(&(_, op)) = VEC1.iter().find(|e| e.0 == m) {
            return Some(self.vun(|l, a| l.sb.unop(Unop::Vec1(op), a)));
        }
        if let Some(&(_, mk, ty)) = SCALAR.iter().find(|e| e.0 == m) {
            return Some(self.scalar3(ty, |l, a, b| l.sb.binop(mk(ty), a, b)).unwrap_or(Outcome::Unhandled));
        }
        if let Some(&(_, op)) = SHIFTS.iter().find(|e| e.0 == m) {
            return Some(self.vshift(op).unwrap_or(Outcome::Unhandled));
        }
        if let Some(&(_, order, neg, ty)) = FMA.iter().find(|e| e.0 == m) {
            return Some(self.fma(order, neg, ty).unwrap_or(Outcome::Unhandled));
        }
        let r = match m {
            M::Vmovdqu | M::Vmovdqa | M::Vmovups | M::Vmovaps | M::Vmovupd | M::Vmovapd | M::Vmovntdq | M::Vmovntps
            | M::Vmovntpd | M::Vlddqu | M::Vmovntdqa => self.vmov(),
            M::Vzeroupper | M::Vzeroall => {
                for r in 0..16 {
                    let off = off_ymm(r);
                    if m == M::Vzeroall {
                        self.sb.put(off, ZERO);
                    }
                    self.sb.put(off + 16, ZERO);
                }
                Some(Outcome::Next)
            }
            M::Vmovd | M::Vmovq => self.vmovdq(),
            M::Vmovss | M::Vmovsd => self.vmovs(if m == M::Vmovss { Ty::I32 } else { Ty::I64 }),
            M::Vmovhps | M::Vmovhpd | M::Vmovlps | M::Vmovlpd => self.vmovhl(matches!(m, M::Vmovhps | M::Vmovhpd)),
            M::Vmovhlps | M::Vmovlhps => {
                let a = self.vget(1, 0);
                let b = self.vget(2, 0);
                let (hi, lo) = if m == M::Vmovhlps {
                    (self.sb.unop(Unop::V128HIto64, a), self.sb.unop(Unop::V128HIto64, b))
                } else {
                    (self.sb.unop(Unop::V128to64, b), self.sb.unop(Unop::V128to64, a))
                };
                let r = self.sb.binop(Binop::HiLo64toV128, hi, lo);
                self.vput(0, &[r])
            }
            M::Vmovddup => {
                if self.wide() {
                    self.vun(|l, a| {
                        let lo = l.sb.unop(Unop::V128to64, a);
                        l.sb.binop(Binop::HiLo64toV128, lo, lo)
                    });
                    Some(Outcome::Next)
                } else {
                    let lo = self.xsrc(1, Ty::I64)?;
                    let r = self.sb.binop(Binop::HiLo64toV128, lo, lo);
                    self.vput(0, &[r])
                }
            }
            M::Vmovshdup | M::Vmovsldup => {
                let imm = if m == M::Vmovshdup { 0xf5 } else { 0xa0 };
                Some(self.vun(|l, a| l.sb.unop(Unop::ShufImm(VecOp::Shuf32x4, imm), a)))
            }
            M::Vpshufd | M::Vpshuflw | M::Vpshufhw => {
                let op = match m {
                    M::Vpshufd => VecOp::Shuf32x4,
                    M::Vpshuflw => VecOp::ShufLo16x4,
                    _ => VecOp::ShufHi16x4,
                };
                let imm = self.ins.immediate8();
                Some(self.vun(|l, a| l.sb.unop(Unop::ShufImm(op, imm), a)))
            }
            M::Vpalignr => {
                let imm = self.ins.immediate8();
                Some(self.vbin(|l, a, b| l.palignr(a, b, imm)))
            }
            M::Vshufps => {
                let imm = self.ins.immediate8();
                Some(self.vbin(|l, a, b| {
                    let lo = l.sb.unop(Unop::ShufImm(VecOp::Shuf32x4, imm), a);
                    let hi = l.sb.unop(Unop::ShufImm(VecOp::Shuf32x4, imm), b);
                    l.sel(vconst(u128::MAX << 64), hi, lo)
                }))
            }
            M::Vshufpd => {
                let imm = self.ins.immediate8();
                Some(self.vbin_h(|l, h, a, b| {
                    let k = imm >> (2 * h);
                    let lo = l.sb.unop(if k & 1 == 0 { Unop::V128to64 } else { Unop::V128HIto64 }, a);
                    let hi = l.sb.unop(if k & 2 == 0 { Unop::V128to64 } else { Unop::V128HIto64 }, b);
                    l.sb.binop(Binop::HiLo64toV128, hi, lo)
                }))
            }
            M::Vblendps | M::Vblendpd | M::Vpblendw | M::Vpblendd => {
                let imm = self.ins.immediate8() as u32;
                Some(self.vbin_h(|l, h, a, b| {
                    let mask = match m {
                        M::Vblendps | M::Vpblendd => lane_mask(imm >> (4 * h), 4, 4),
                        M::Vblendpd => lane_mask(imm >> (2 * h), 2, 8),
                        _ => lane_mask(imm, 8, 2),
                    };
                    l.sel(vconst(mask), b, a)
                }))
            }
            M::Vblendvps | M::Vblendvpd | M::Vpblendvb => {
                let n = self.halves();
                let mut r = Vec::with_capacity(2);
                for h in 0..n {
                    let a = self.vget(1, h);
                    let b = self.vget(2, h);
                    let x = self.vget(3, h);
                    let mask = self.blendv_mask(m, x);
                    r.push(self.sel(mask, b, a));
                }
                self.vput(0, &r)
            }
            M::Vptest => {
                let n = self.halves();
                let (mut ands, mut andns) = (Vec::new(), Vec::new());
                for h in 0..n {
                    let d = self.vget(0, h);
                    let s = self.vget(1, h);
                    ands.push(self.sb.binop(Binop::Vec2(VecOp::And), d, s));
                    andns.push(self.sb.binop(Binop::Vec2(VecOp::AndNot), d, s));
                }
                self.ptest_flags_of(&ands, &andns);
                Some(Outcome::Next)
            }
            M::Vtestps | M::Vtestpd => {
                // ptest of the sign bits only.
                let sign = vconst(if m == M::Vtestps { 0x8000_0000_8000_0000_8000_0000_8000_0000 } else { 1 << 127 | 1 << 63 });
                let n = self.halves();
                let (mut ands, mut andns) = (Vec::new(), Vec::new());
                for h in 0..n {
                    let d = self.vget(0, h);
                    let s = self.vget(1, h);
                    let a = self.sb.binop(Binop::Vec2(VecOp::And), d, s);
                    ands.push(self.sb.binop(Binop::Vec2(VecOp::And), a, sign));
                    let b = self.sb.binop(Binop::Vec2(VecOp::AndNot), d, s);
                    andns.push(self.sb.binop(Binop::Vec2(VecOp::And), b, sign));
                }
                self.ptest_flags_of(&ands, &andns);
                Some(Outcome::Next)
            }
            M::Vcvtps2dq => {
                let rc = self.sb.get(OFF_SSEROUND, Ty::I64);
                let imm = self.sb.binop(Binop::Shl(Ty::I64), rc, Atom::u8(8));
                Some(self.vun(|l, a| l.cvt_rounded(false, a, imm)))
            }
            M::Vcvtpd2dq => {
                let wide = self.ins.memory_size().size() == 32
                    || (self.ins.op_kind(1) == OpKind::Register && self.ins.op_register(1).is_ymm());
                let rc = self.sb.get(OFF_SSEROUND, Ty::I64);
                let imm = self.sb.binop(Binop::Shl(Ty::I64), rc, Atom::u8(8));
                let a = self.vget(1, 0);
                let a = self.cvt_rounded(true, a, imm);
                let r = if wide {
                    let b = self.vget(1, 1);
                    let b = self.cvt_rounded(true, b, imm);
                    let (lo, hi) = (self.sb.unop(Unop::V128to64, a), self.sb.unop(Unop::V128to64, b));
                    self.sb.binop(Binop::HiLo64toV128, hi, lo)
                } else {
                    a
                };
                self.vput(0, &[r])
            }
            M::Vpmovmskb | M::Vmovmskps | M::Vmovmskpd => self.vmovmsk(m),
            M::Vinsertf128 | M::Vinserti128 => {
                let k = (self.ins.immediate8() & 1) as usize;
                let mut r = [self.vget(1, 0), self.vget(1, 1)];
                r[k] = self.vget(2, 0);
                self.vput(0, &r)
            }
            M::Vextractf128 | M::Vextracti128 => {
                let v = self.vget(1, (self.ins.immediate8() & 1) as u32);
                self.vput(0, &[v])
            }
            M::Vperm2f128 | M::Vperm2i128 => {
                let imm = self.ins.immediate8();
                let src = [self.vget(1, 0), self.vget(1, 1), self.vget(2, 0), self.vget(2, 1)];
                let pick = |c: u8| if c & 8 != 0 { ZERO } else { src[(c & 3) as usize] };
                self.vput(0, &[pick(imm), pick(imm >> 4)])
            }
            M::Vpermq | M::Vpermpd => {
                let imm = self.ins.immediate8();
                let q = self.quarters(1);
                let pick = |k: u8| q[((imm >> (2 * k)) & 3) as usize];
                let lo = self.sb.binop(Binop::HiLo64toV128, pick(1), pick(0));
                let hi = self.sb.binop(Binop::HiLo64toV128, pick(3), pick(2));
                self.vput(0, &[lo, hi])
            }
            M::Vpermd | M::Vpermps => {
                let idx = self.quarters(1);
                let s = self.quarters(2);
                let mut out = [Atom::u64(0); 4];
                for (k, o) in out.iter_mut().enumerate() {
                    *o = self.sb.ccall(h::permd_callee(), Ty::I64, vec![idx[k], s[0], s[1], s[2], s[3]]);
                }
                let lo = self.sb.binop(Binop::HiLo64toV128, out[1], out[0]);
                let hi = self.sb.binop(Binop::HiLo64toV128, out[3], out[2]);
                self.vput(0, &[lo, hi])
            }
            M::Vbroadcastss | M::Vbroadcastsd | M::Vpbroadcastb | M::Vpbroadcastw | M::Vpbroadcastd
            | M::Vpbroadcastq => self.broadcast(m),
            M::Vbroadcastf128 | M::Vbroadcasti128 => {
                let v = self.vget(1, 0);
                self.vput(0, &[v, v])
            }
            M::Vcvtdq2pd | M::Vcvtps2pd => {
                let op = if m == M::Vcvtdq2pd { VecOp::I32StoF64x2 } else { VecOp::F32toF64x2 };
                if self.wide() {
                    let s = self.vget(1, 0);
                    let hi = self.sb.binop(Binop::VecShift(VecOp::ShrBytes), s, Atom::u8(8));
                    let a = self.sb.unop(Unop::Vec1(op), s);
                    let b = self.sb.unop(Unop::Vec1(op), hi);
                    self.vput(0, &[a, b])
                } else {
                    let s = if is_xmm_op(self, 1) {
                        self.vget(1, 0)
                    } else {
                        let v = self.xsrc(1, Ty::I64)?;
                        self.sb.unop(Unop::I64UtoV128, v)
                    };
                    let r = self.sb.unop(Unop::Vec1(op), s);
                    self.vput(0, &[r])
                }
            }
            M::Vcvttpd2dq | M::Vcvtpd2ps => {
                let op = if m == M::Vcvttpd2dq { VecOp::F64toI32STruncx2 } else { VecOp::F64toF32x2 };
                let wide = self.ins.memory_size().size() == 32
                    || (self.ins.op_kind(1) == OpKind::Register && self.ins.op_register(1).is_ymm());
                let a = self.vget(1, 0);
                let a = self.sb.unop(Unop::Vec1(op), a);
                let r = if wide {
                    let b = self.vget(1, 1);
                    let b = self.sb.unop(Unop::Vec1(op), b);
                    let (lo, hi) = (self.sb.unop(Unop::V128to64, a), self.sb.unop(Unop::V128to64, b));
                    self.sb.binop(Binop::HiLo64toV128, hi, lo)
                } else {
                    a
                };
                self.vput(0, &[r])
            }
            M::Vsqrtsd | M::Vsqrtss => {
                let (ty, op) = if m == M::Vsqrtsd { (Ty::F64, Unop::SqrtF64) } else { (Ty::F32, Unop::SqrtF32) };
                self.scalar3(ty, |l, _, b| l.sb.unop(op, b))
            }
            M::Vcvtss2sd | M::Vcvtsd2ss => {
                let (sty, dty, op) =
                    if m == M::Vcvtss2sd { (Ty::F32, Ty::F64, Unop::F32toF64) } else { (Ty::F64, Ty::F32, Unop::F64toF32) };
                let b = self.xsrc(2, sty)?;
                let r = self.sb.unop(op, b);
                self.merge_low(dty, r)
            }
            M::Vcvtsi2sd | M::Vcvtsi2ss => {
                let ity = self.op_ty(2);
                let s = self.read_op(2, ity)?;
                let fty = if m == M::Vcvtsi2sd { Ty::F64 } else { Ty::F32 };
                let r = self.sb.unop(Unop::IntSToF(ity, fty), s);
                self.merge_low(fty, r)
            }
            M::Vcvttsd2si | M::Vcvtsd2si | M::Vcvttss2si | M::Vcvtss2si => {
                let fty = if matches!(m, M::Vcvttsd2si | M::Vcvtsd2si) { Ty::F64 } else { Ty::F32 };
                let s = self.xsrc(1, fty)?;
                let ity = self.op_ty(0);
                let op = if matches!(m, M::Vcvttsd2si | M::Vcvttss2si) {
                    Unop::FToIntSTrunc(fty, ity)
                } else {
                    Unop::FToIntSNearest(fty, ity)
                };
                let r = self.sb.unop(op, s);
                self.put_reg(self.ins.op_register(0), r);
                Some(Outcome::Next)
            }
            M::Vucomisd | M::Vcomisd | M::Vucomiss | M::Vcomiss => {
                let ty = if matches!(m, M::Vucomisd | M::Vcomisd) { Ty::F64 } else { Ty::F32 };
                let a = self.xsrc(0, ty)?;
                let b = self.xsrc(1, ty)?;
                let c = self.sb.binop(Binop::CmpF(ty), a, b);
                let c = self.sb.zext(c, Ty::I64);
                self.set_flags_copy(c);
                Some(Outcome::Next)
            }
            M::Vcmpps | M::Vcmppd => {
                let p = self.ins.immediate8();
                let pd = m == M::Vcmppd;
                Some(self.vbin(|l, a, b| l.fcmp(pd, p, a, b)))
            }
            M::Vcmpss | M::Vcmpsd => {
                let p = self.ins.immediate8();
                let pd = m == M::Vcmpsd;
                let ty = if pd { Ty::I64 } else { Ty::I32 };
                let a = self.vget(1, 0);
                let b = self.xsrc(2, ty)?;
                let b = self.sb.unop(if pd { Unop::I64UtoV128 } else { Unop::I32UtoV128 }, b);
                let r = self.fcmp(pd, p, a, b);
                let r = if pd {
                    let l = self.sb.unop(Unop::V128to64, r);
                    self.sb.binop(Binop::SetV128lo64, a, l)
                } else {
                    let l = self.sb.unop(Unop::V128to32, r);
                    self.sb.binop(Binop::SetV128lo32, a, l)
                };
                self.vput(0, &[r])
            }
            M::Vroundps | M::Vroundpd => {
                let rc = self.round_control_imm();
                let imm = self.sb.binop(Binop::Shl(Ty::I64), rc, Atom::u8(8));
                let op = if m == M::Vroundps { V128Op::Roundps } else { V128Op::Roundpd };
                Some(self.vun(|l, a| l.vh(op, a, a, imm)))
            }
            M::Vroundss | M::Vroundsd => {
                let ty = if m == M::Vroundss { Ty::I32 } else { Ty::I64 };
                let rc = self.round_control_imm();
                let mode = if m == M::Vroundsd { self.sb.binop(Binop::Or(Ty::I64), rc, Atom::u64(256)) } else { rc };
                let s = self.xsrc(2, ty)?;
                let s = self.sb.zext(s, Ty::I64);
                let r = self.sb.ccall(h::round_scalar_callee(), Ty::I64, vec![s, mode]);
                let r = self.sb.zext(r, ty);
                self.merge_low(ty, r)
            }
            M::Vpextrb | M::Vpextrw | M::Vpextrd | M::Vpextrq | M::Vextractps => {
                let bytes = match m {
                    M::Vpextrb => 1,
                    M::Vpextrw => 2,
                    M::Vpextrq => 8,
                    _ => 4,
                };
                let k = self.ins.immediate8() & (16 / bytes as u8 - 1);
                let s = self.vget(1, 0);
                let v = self.extract_lane(s, k * bytes as u8, bytes);
                self.write_extracted(v, bytes)
            }
            M::Vpinsrb | M::Vpinsrw | M::Vpinsrd | M::Vpinsrq => {
                let bytes = match m {
                    M::Vpinsrb => 1,
                    M::Vpinsrw => 2,
                    M::Vpinsrd => 4,
                    _ => 8,
                };
                let v = match self.ins.op_kind(2) {
                    OpKind::Register => self.get_reg(self.ins.op_register(2)),
                    _ => self.read_op(2, Ty::int_of_bytes(bytes))?,
                };
                let v = self.sb.zext(v, Ty::I64);
                let v = if bytes < 8 {
                    self.sb.binop(Binop::And(Ty::I64), v, Atom::u64((1u64 << (8 * bytes)) - 1))
                } else {
                    v
                };
                let k = self.ins.immediate8() & (16 / bytes as u8 - 1);
                let d = self.vget(1, 0);
                let r = self.insert_lane(d, v, k * bytes as u8, bytes);
                self.vput(0, &[r])
            }
            M::Vinsertps => {
                let imm = self.ins.immediate8();
                let v = if is_xmm_op(self, 2) {
                    let s = self.vget(2, 0);
                    self.extract_lane(s, 4 * (imm >> 6), 4)
                } else {
                    let v = self.xsrc(2, Ty::I32)?;
                    self.sb.zext(v, Ty::I64)
                };
                let d = self.vget(1, 0);
                let r = self.insert_lane(d, v, 4 * ((imm >> 4) & 3), 4);
                let r = self.sb.binop(Binop::Vec2(VecOp::And), r, vconst(!lane_mask(imm as u32 & 15, 4, 4)));
                self.vput(0, &[r])
            }
            M::Vldmxcsr => {
                let a = self.ea();
                let v = self.sb.load(Ty::I32, a);
                let v = self.sb.zext(v, Ty::I64);
                let rm = self.sb.binop(Binop::Shr(Ty::I64), v, Atom::u8(13));
                let rm = self.sb.binop(Binop::And(Ty::I64), rm, Atom::u64(3));
                self.sb.put(OFF_SSEROUND, rm);
                Some(Outcome::Next)
            }
            M::Vstmxcsr => {
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

    // ---- operands

    /// Whether the form is 256 bits wide (a ymm destination, or a ymm source of a store).
    fn wide(&self) -> bool {
        (0..self.ins.op_count()).any(|i| self.ins.op_kind(i) == OpKind::Register && self.ins.op_register(i).is_ymm())
    }
    fn halves(&self) -> u32 {
        if self.wide() { 2 } else { 1 }
    }

    /// Half `h` (0: bits 0..128, 1: bits 128..256) of vector operand `i` as a V128.
    fn vget(&mut self, i: u32, h: u32) -> Atom {
        match self.ins.op_kind(i) {
            OpKind::Memory => {
                let a = self.ea();
                let a = if h == 0 { a } else { self.sb.binop(Binop::Add(Ty::I64), a, Atom::u64(16)) };
                self.sb.load(Ty::V128, a)
            }
            _ => {
                let off = off_ymm(self.ins.op_register(i).number()) + 16 * h;
                self.sb.get(off, Ty::V128)
            }
        }
    }

    /// Write vector operand `i`: one half zeroes bits 128..255 of a register (VEX.128), two
    /// fill a ymm; memory gets the halves given.
    fn vput(&mut self, i: u32, halves: &[Atom]) -> Option<Outcome> {
        match self.ins.op_kind(i) {
            OpKind::Memory => {
                let a = self.ea();
                for (h, v) in halves.iter().enumerate() {
                    let at = if h == 0 { a } else { self.sb.binop(Binop::Add(Ty::I64), a, Atom::u64(16)) };
                    self.sb.store(at, *v);
                }
            }
            OpKind::Register => {
                let off = off_ymm(self.ins.op_register(i).number());
                self.sb.put(off, halves[0]);
                self.sb.put(off + 16, halves.get(1).copied().unwrap_or(ZERO));
            }
            _ => return None,
        }
        Some(Outcome::Next)
    }

    /// The four 64-bit quarters of the 256-bit operand `i`, lowest first.
    fn quarters(&mut self, i: u32) -> [Atom; 4] {
        let lo = self.vget(i, 0);
        let hi = self.vget(i, 1);
        [
            self.sb.unop(Unop::V128to64, lo),
            self.sb.unop(Unop::V128HIto64, lo),
            self.sb.unop(Unop::V128to64, hi),
            self.sb.unop(Unop::V128HIto64, hi),
        ]
    }

    /// `dst = f(src1, src2)` per half.
    fn vbin(&mut self, f: impl Fn(&mut Lifter, Atom, Atom) -> Atom) -> Outcome {
        self.vbin_h(|l, _, a, b| f(l, a, b))
    }
    /// `dst = f(half, src1, src2)` per half.
    fn vbin_h(&mut self, f: impl Fn(&mut Lifter, u32, Atom, Atom) -> Atom) -> Outcome {
        let mut r = Vec::with_capacity(2);
        for h in 0..self.halves() {
            let a = self.vget(1, h);
            let b = self.vget(2, h);
            r.push(f(self, h, a, b));
        }
        self.vput(0, &r).unwrap_or(Outcome::Unhandled)
    }
    /// `dst = f(src)` per half.
    fn vun(&mut self, f: impl Fn(&mut Lifter, Atom) -> Atom) -> Outcome {
        let mut r = Vec::with_capacity(2);
        for h in 0..self.halves() {
            let a = self.vget(1, h);
            r.push(f(self, a));
        }
        self.vput(0, &r).unwrap_or(Outcome::Unhandled)
    }

    /// `dst = src1` with its low `ty` lane replaced by `r` (I32/I64/F32/F64), upper half zeroed.
    fn merge_low(&mut self, ty: Ty, r: Atom) -> Option<Outcome> {
        let src1 = self.vget(1, 0);
        let off = off_ymm(self.ins.op_register(0).number());
        self.sb.put(off, src1);
        self.sb.put(off, r);
        self.sb.put(off + 16, ZERO);
        debug_assert!(ty.bytes() == self.sb.atom_ty(r).bytes());
        Some(Outcome::Next)
    }

    /// Scalar `dst.lo = f(src1.lo, src2)`, the rest of the low half from src1.
    fn scalar3(&mut self, ty: Ty, f: impl Fn(&mut Lifter, Atom, Atom) -> Atom) -> Option<Outcome> {
        let a = self.xsrc(1, ty)?;
        let b = self.xsrc(2, ty)?;
        let r = f(self, a, b);
        self.merge_low(ty, r)
    }

    /// The VEX forms of the `sse4.rs` tables: the same operation, three operands, per half.
    fn legacy(&mut self, lm: M) -> Option<Outcome> {
        if let Some(&(_, op)) = NATIVE2.iter().find(|e| e.0 == lm) {
            return Some(self.vbin(|l, a, b| l.sb.binop(Binop::Vec2(op), a, b)));
        }
        if let Some(&(_, op)) = NATIVE1.iter().find(|e| e.0 == lm) {
            return Some(self.vun(|l, a| l.sb.unop(Unop::Vec1(op), a)));
        }
        if lm == M::Phminposuw {
            return Some(self.vun(|l, a| l.vh(V128Op::Phminposuw, a, a, Atom::u64(0))));
        }
        if let Some(&(_, op)) = HELPER2.iter().find(|e| e.0 == lm) {
            return Some(self.vbin(|l, a, b| l.vh(op, a, b, Atom::u64(0))));
        }
        if let Some(&(_, op)) = HELPER_IMM.iter().find(|e| e.0 == lm) {
            let imm = self.ins.immediate8();
            // vmpsadbw takes the high half's block selects from bits 3..5.
            let sh = if lm == M::Mpsadbw { 3 } else { 0 };
            return Some(self.vbin_h(|l, h, a, b| l.vh(op, a, b, Atom::u64(((imm >> (sh * h)) as u64) << 8))));
        }
        let &(_, signed, from, to) = PMOVX.iter().find(|e| e.0 == lm)?;
        let n = self.halves();
        // Source bytes: what the destination's lanes widen.
        let bytes = 16 * n * from / to;
        let s = if is_xmm_op(self, 1) || bytes == 16 {
            self.vget(1, 0)
        } else {
            let v = self.read_op(1, Ty::int_of_bytes(bytes))?;
            let v = self.sb.zext(v, Ty::I64);
            self.sb.unop(Unop::I64UtoV128, v)
        };
        let lo = self.widen_lanes(s, signed, from, to);
        if n == 1 {
            return self.vput(0, &[lo]);
        }
        let up = self.sb.binop(Binop::VecShift(VecOp::ShrBytes), s, Atom::u8((bytes / 2) as u8));
        let hi = self.widen_lanes(up, signed, from, to);
        self.vput(0, &[lo, hi])
    }

    /// vpermilps/vpermilpd with an immediate: in-lane selects (vpermilpd: one bit per qword).
    fn permil_imm(&mut self, pd: bool) -> Outcome {
        let imm = self.ins.immediate8();
        let mut r = Vec::with_capacity(2);
        for h in 0..self.halves() {
            let a = self.vget(1, h);
            let sel = if pd {
                let k = imm >> (2 * h);
                let q = |b: u8| if b & 1 == 0 { 0b0100 } else { 0b1110 };
                q(k) | q(k >> 1) << 4
            } else {
                imm
            };
            r.push(self.sb.unop(Unop::ShufImm(VecOp::Shuf32x4, sel), a));
        }
        self.vput(0, &r).unwrap_or(Outcome::Unhandled)
    }

    fn vshift(&mut self, op: VecOp) -> Option<Outcome> {
        let amount = if self.ins.op_kind(2) == OpKind::Immediate8 {
            Atom::u8(self.ins.immediate8())
        } else {
            // A 64-bit count: anything above 255 shifts everything out, like 255 does.
            let c = self.xsrc(2, Ty::I64)?;
            let big = self.sb.binop(Binop::CmpLTU(Ty::I64), Atom::u64(255), c);
            let lo = self.sb.zext(c, Ty::I8);
            self.sb.ite(big, Atom::u8(255), lo)
        };
        Some(self.vun(|l, a| l.sb.binop(Binop::VecShift(op), a, amount)))
    }

    /// Packed compare with an AVX predicate (0..31): the eight SSE predicates, their
    /// complements and swaps; 16..31 repeat 0..15 (they differ only in exception signalling).
    fn fcmp(&mut self, pd: bool, p: u8, a: Atom, b: Atom) -> Atom {
        let c = |l: &mut Lifter, k: u8, x: Atom, y: Atom| {
            l.sb.binop(Binop::Vec2(if pd { VecOp::CmpF64x2(k) } else { VecOp::CmpF32x4(k) }), x, y)
        };
        match p & 15 {
            k @ 0..=7 => c(self, k, a, b),
            8 => {
                let e = c(self, 0, a, b);
                let u = c(self, 3, a, b);
                self.sb.binop(Binop::Vec2(VecOp::Or), e, u)
            }
            9 => c(self, 6, b, a),
            10 => c(self, 5, b, a),
            11 => ZERO,
            12 => {
                let n = c(self, 4, a, b);
                let o = c(self, 7, a, b);
                self.sb.binop(Binop::Vec2(VecOp::And), n, o)
            }
            13 => c(self, 2, b, a),
            14 => c(self, 1, b, a),
            _ => vconst(u128::MAX),
        }
    }

    /// The rounding control of vround*: the immediate's, or MXCSR's when bit 2 is set (I64).
    fn round_control_imm(&mut self) -> Atom {
        let imm = self.ins.immediate8() as u64;
        if imm & 4 != 0 { self.sb.get(OFF_SSEROUND, Ty::I64) } else { Atom::u64(imm & 3) }
    }

    fn vmov(&mut self) -> Option<Outcome> {
        let mut r = Vec::with_capacity(2);
        for h in 0..self.halves() {
            r.push(self.vget(1, h));
        }
        self.vput(0, &r)
    }

    /// vmovd/vmovq: xmm from GPR/memory/xmm (zero-extended to 256 bits), GPR/memory from xmm.
    fn vmovdq(&mut self) -> Option<Outcome> {
        let ty = if self.ins.mnemonic() == M::Vmovd { Ty::I32 } else { Ty::I64 };
        if is_xmm_op(self, 0) {
            let v = if is_xmm_op(self, 1) { self.xsrc(1, ty)? } else { self.read_op(1, ty)? };
            let w = self.sb.unop(if ty == Ty::I32 { Unop::I32UtoV128 } else { Unop::I64UtoV128 }, v);
            self.vput(0, &[w])
        } else {
            if !is_xmm_op(self, 1) {
                return None;
            }
            let v = self.xsrc(1, ty)?;
            self.write_op(0, v).map(|_| Outcome::Next)
        }
    }

    /// vmovss/vmovsd: the load zeroes the rest, the three-register form merges into src1.
    fn vmovs(&mut self, ty: Ty) -> Option<Outcome> {
        if !is_xmm_op(self, 0) {
            let v = self.xsrc(1, ty)?;
            return self.write_op(0, v).map(|_| Outcome::Next);
        }
        if self.ins.op_count() == 2 {
            let v = self.xsrc(1, ty)?;
            let w = self.sb.unop(if ty == Ty::I32 { Unop::I32UtoV128 } else { Unop::I64UtoV128 }, v);
            return self.vput(0, &[w]);
        }
        let v = self.xsrc(2, ty)?;
        self.merge_low(ty, v)
    }

    /// vmovhps/vmovlps/...: `xmm1 = src1 with one 64-bit half from m64`, or the store form.
    fn vmovhl(&mut self, high: bool) -> Option<Outcome> {
        if !is_xmm_op(self, 0) {
            let off = off_ymm(self.ins.op_register(1).number()) + if high { 8 } else { 0 };
            let v = self.sb.get(off, Ty::I64);
            return self.write_op(0, v).map(|_| Outcome::Next);
        }
        let a = self.vget(1, 0);
        let m = self.xsrc(2, Ty::I64)?;
        let r = if high {
            let lo = self.sb.unop(Unop::V128to64, a);
            self.sb.binop(Binop::HiLo64toV128, m, lo)
        } else {
            self.sb.binop(Binop::SetV128lo64, a, m)
        };
        self.vput(0, &[r])
    }

    fn vmovmsk(&mut self, m: M) -> Option<Outcome> {
        let n = self.halves();
        let mut r = Atom::u64(0);
        for h in 0..n {
            let v = self.vget(1, h);
            let bits = match m {
                M::Vpmovmskb => {
                    let b = self.sb.unop(Unop::GetMSBs8x16, v);
                    self.sb.zext(b, Ty::I64)
                }
                _ => {
                    // The sign bits of the lanes: pick them with a byte mask of the lanes' top
                    // bytes, then compress.
                    let ps = m == M::Vmovmskps;
                    let b = self.sb.unop(Unop::GetMSBs8x16, v);
                    let b = self.sb.zext(b, Ty::I64);
                    let lanes = if ps { 4 } else { 2 };
                    let mut acc = Atom::u64(0);
                    for k in 0..lanes {
                        let byte = if ps { 4 * k + 3 } else { 8 * k + 7 };
                        let bit = self.sb.binop(Binop::Shr(Ty::I64), b, Atom::u8(byte as u8));
                        let bit = self.sb.binop(Binop::And(Ty::I64), bit, Atom::u64(1));
                        let bit = if k == 0 { bit } else { self.sb.binop(Binop::Shl(Ty::I64), bit, Atom::u8(k as u8)) };
                        acc = self.sb.binop(Binop::Or(Ty::I64), acc, bit);
                    }
                    acc
                }
            };
            let per = match m {
                M::Vpmovmskb => 16,
                M::Vmovmskps => 4,
                _ => 2,
            };
            let bits = if h == 0 { bits } else { self.sb.binop(Binop::Shl(Ty::I64), bits, Atom::u8(per)) };
            r = self.sb.binop(Binop::Or(Ty::I64), r, bits);
        }
        let ty = self.op_ty(0);
        let r = self.sb.zext(r, ty);
        self.put_reg(self.ins.op_register(0), r);
        Some(Outcome::Next)
    }

    /// vbroadcastss/sd, vpbroadcastb/w/d/q from memory or the low lane of an xmm register.
    fn broadcast(&mut self, m: M) -> Option<Outcome> {
        let bytes = match m {
            M::Vpbroadcastb => 1,
            M::Vpbroadcastw => 2,
            M::Vbroadcastss | M::Vpbroadcastd => 4,
            _ => 8,
        };
        let ty = Ty::int_of_bytes(bytes);
        let v = if is_xmm_op(self, 1) {
            let off = off_ymm(self.ins.op_register(1).number());
            self.sb.get(off, ty)
        } else {
            self.read_op(1, ty)?
        };
        let r = if bytes == 8 {
            let w = self.sb.unop(Unop::I64UtoV128, v);
            self.sb.unop(Unop::ShufImm(VecOp::Shuf32x4, 0x44), w)
        } else {
            let v = self.sb.zext(v, Ty::I32);
            let w = self.sb.unop(Unop::I32UtoV128, v);
            match bytes {
                // pshufb with an all-zero selector copies byte 0 everywhere.
                1 => self.sb.binop(Binop::Vec2(VecOp::Perm8x16), w, ZERO),
                2 => {
                    let lo = self.sb.unop(Unop::ShufImm(VecOp::ShufLo16x4, 0), w);
                    self.sb.unop(Unop::ShufImm(VecOp::Shuf32x4, 0), lo)
                }
                _ => self.sb.unop(Unop::ShufImm(VecOp::Shuf32x4, 0), w),
            }
        };
        if self.wide() { self.vput(0, &[r, r]) } else { self.vput(0, &[r]) }
    }

    /// FMA3: the three operand orders map to `x * y + z`; the scalar forms merge the low lane
    /// into the destination's old value.
    fn fma(&mut self, order: u16, neg: u8, ty: FmaTy) -> Option<Outcome> {
        let (xi, yi, zi) = match order {
            132 => (0, 2, 1),
            213 => (1, 0, 2),
            _ => (1, 2, 0),
        };
        let op = |k: u8| match ty {
            FmaTy::Ps | FmaTy::Ss => VecOp::Fma32Fx4(k),
            FmaTy::Pd | FmaTy::Sd => VecOp::Fma64Fx2(k),
        };
        if matches!(ty, FmaTy::Ps | FmaTy::Pd) {
            // The odd lanes of fmaddsub/fmsubadd.
            let odd = if ty == FmaTy::Ps { lane_mask(0b1010, 4, 4) } else { lane_mask(0b10, 2, 8) };
            let mut r = Vec::with_capacity(2);
            for h in 0..self.halves() {
                let x = self.vget(xi, h);
                let y = self.vget(yi, h);
                let z = self.vget(zi, h);
                let xy = self.sb.binop(Binop::V128HLtoV256, y, x);
                let v = if neg < 4 {
                    self.sb.binop(Binop::Fma(op(neg)), xy, z)
                } else {
                    let add = self.sb.binop(Binop::Fma(op(0)), xy, z);
                    let sub = self.sb.binop(Binop::Fma(op(1)), xy, z);
                    if neg == 4 { self.sel(vconst(odd), add, sub) } else { self.sel(vconst(odd), sub, add) }
                };
                r.push(v);
            }
            return self.vput(0, &r);
        }
        let op = op(neg);
        let lty = if ty == FmaTy::Ss { Ty::I32 } else { Ty::I64 };
        // Only operand 2 may be memory, and only the scalar is read from it.
        let get = |l: &mut Lifter, i: u32| -> Option<Atom> {
            if l.ins.op_kind(i) == OpKind::Memory {
                let v = l.xsrc(i, lty)?;
                Some(l.sb.unop(if lty == Ty::I32 { Unop::I32UtoV128 } else { Unop::I64UtoV128 }, v))
            } else {
                Some(l.vget(i, 0))
            }
        };
        let x = get(self, xi)?;
        let y = get(self, yi)?;
        let z = get(self, zi)?;
        let d = self.vget(0, 0);
        let xy = self.sb.binop(Binop::V128HLtoV256, y, x);
        let r = self.sb.binop(Binop::Fma(op), xy, z);
        let r = if lty == Ty::I32 {
            let l = self.sb.unop(Unop::V128to32, r);
            self.sb.binop(Binop::SetV128lo32, d, l)
        } else {
            let l = self.sb.unop(Unop::V128to64, r);
            self.sb.binop(Binop::SetV128lo64, d, l)
        };
        self.vput(0, &[r])
    }
}
