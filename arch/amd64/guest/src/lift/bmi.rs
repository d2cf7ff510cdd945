//! BMI1 (andn, bextr, blsi, blsmsk, blsr; tzcnt is in `int.rs`), BMI2 (bzhi, pdep, pext,
//! mulx, rorx, sarx, shlx, shrx) and movbe. The VEX-encoded integer instructions take their
//! second source from VEX.vvvv, which iced presents as an ordinary register operand.

use super::{Lifter, Outcome};
use crate::flags::{CC_LOGIC, CF, SF, ZF};
use crate::helpers as h;
use crate::state::*;
use alloc::vec;
use iced_x86::Mnemonic as M;
use vg_ir::*;

impl Lifter {
    pub(super) fn lift_bmi(&mut self) -> Option<Outcome> {
        let m = self.ins.mnemonic();
        let r = match m {
            M::Andn => {
                let ty = self.op_ty(0);
                let a = self.read_op(1, ty)?;
                let b = self.read_op(2, ty)?;
                let na = self.sb.unop(Unop::Not(ty), a);
                let r = self.sb.binop(Binop::And(ty), na, b);
                self.write_op(0, r)?;
                self.set_flags(CC_LOGIC, ty, r, Atom::Const(Const::int(ty, 0)), Atom::u64(0));
                Some(Outcome::Next)
            }
            M::Bextr => {
                let ty = self.op_ty(0);
                let src = self.read_op(1, ty)?;
                let ctl = self.read_op(2, ty)?;
                let src = self.sb.zext(src, Ty::I64);
                let ctl = self.sb.zext(ctl, Ty::I64);
                let start = self.sb.binop(Binop::And(Ty::I64), ctl, Atom::u64(0xff));
                let len = self.sb.binop(Binop::Shr(Ty::I64), ctl, Atom::u8(8));
                let len = self.sb.binop(Binop::And(Ty::I64), len, Atom::u64(0xff));
                // The source is zero-extended to 64 bits, so any start below 64 shifts right.
                let st8 = self.sb.zext(start, Ty::I8);
                let st8 = self.sb.binop(Binop::And(Ty::I8), st8, Atom::u8(63));
                let sh = self.sb.binop(Binop::Shr(Ty::I64), src, st8);
                let in_range = self.sb.binop(Binop::CmpLTU(Ty::I64), start, Atom::u64(64));
                let sh = self.sb.ite(in_range, sh, Atom::u64(0));
                let r = self.low_bits(sh, len, ty.bits());
                let r = self.sb.zext(r, ty);
                self.put_reg(self.ins.op_register(0), r);
                self.set_flags(CC_LOGIC, ty, r, Atom::Const(Const::int(ty, 0)), Atom::u64(0));
                Some(Outcome::Next)
            }
            M::Bzhi => {
                let ty = self.op_ty(0);
                let src = self.read_op(1, ty)?;
                let idx = self.read_op(2, ty)?;
                let src = self.sb.zext(src, Ty::I64);
                let idx = self.sb.zext(idx, Ty::I64);
                let n = self.sb.binop(Binop::And(Ty::I64), idx, Atom::u64(0xff));
                let r = self.low_bits(src, n, ty.bits());
                let r = self.sb.zext(r, ty);
                self.put_reg(self.ins.op_register(0), r);
                let cf = self.sb.binop(Binop::CmpLTU(Ty::I64), Atom::u64(ty.bits() as u64 - 1), n);
                self.flags_zs_c(r, ty, cf, true);
                Some(Outcome::Next)
            }
            M::Blsi | M::Blsmsk | M::Blsr => {
                let ty = self.op_ty(0);
                let src = self.read_op(1, ty)?;
                let r = match m {
                    M::Blsi => {
                        let n = self.sb.unop(Unop::Neg(ty), src);
                        self.sb.binop(Binop::And(ty), src, n)
                    }
                    _ => {
                        let d = self.sb.binop(Binop::Sub(ty), src, Atom::Const(Const::int(ty, 1)));
                        let op = if m == M::Blsmsk { Binop::Xor(ty) } else { Binop::And(ty) };
                        self.sb.binop(op, src, d)
                    }
                };
                self.put_reg(self.ins.op_register(0), r);
                let zero = Atom::Const(Const::int(ty, 0));
                let cf = if m == M::Blsi {
                    self.sb.binop(Binop::CmpNE(ty), src, zero)
                } else {
                    self.sb.binop(Binop::CmpEQ(ty), src, zero)
                };
                self.flags_zs_c(r, ty, cf, m != M::Blsmsk);
                Some(Outcome::Next)
            }
            M::Pdep | M::Pext => {
                let ty = self.op_ty(0);
                let a = self.read_op(1, ty)?;
                let b = self.read_op(2, ty)?;
                let a = self.sb.zext(a, Ty::I64);
                let b = self.sb.zext(b, Ty::I64);
                let c = if m == M::Pdep { h::pdep_callee() } else { h::pext_callee() };
                let r = self.sb.ccall(c, Ty::I64, vec![a, b]);
                let r = self.sb.zext(r, ty);
                self.put_reg(self.ins.op_register(0), r);
                Some(Outcome::Next)
            }
            M::Mulx => {
                let ty = self.op_ty(0);
                let s = self.read_op(2, ty)?;
                let d = self.sb.get(off_gpr(RDX), ty);
                let p = self.sb.binop(Binop::MullU(ty), d, s);
                let hi = self.sb.unop(Unop::Hi(ty.double()), p);
                let lo = self.sb.unop(Unop::Trunc(ty.double(), ty), p);
                // With the same register for both, the high half wins.
                self.put_reg(self.ins.op_register(1), lo);
                self.put_reg(self.ins.op_register(0), hi);
                Some(Outcome::Next)
            }
            M::Rorx => {
                let ty = self.op_ty(0);
                let s = self.read_op(1, ty)?;
                let n = (self.ins.immediate(2) as u32 & (ty.bits() - 1)) as u8;
                let r = if n == 0 {
                    s
                } else {
                    let a = self.sb.binop(Binop::Shr(ty), s, Atom::u8(n));
                    let b = self.sb.binop(Binop::Shl(ty), s, Atom::u8(ty.bits() as u8 - n));
                    self.sb.binop(Binop::Or(ty), a, b)
                };
                self.put_reg(self.ins.op_register(0), r);
                Some(Outcome::Next)
            }
            M::Sarx | M::Shlx | M::Shrx => {
                let ty = self.op_ty(0);
                let s = self.read_op(1, ty)?;
                let c = self.read_op(2, ty)?;
                let c = self.sb.zext(c, Ty::I8);
                let c = self.sb.binop(Binop::And(Ty::I8), c, Atom::u8(ty.bits() as u8 - 1));
                let op = match m {
                    M::Sarx => Binop::Sar(ty),
                    M::Shlx => Binop::Shl(ty),
                    _ => Binop::Shr(ty),
                };
                let r = self.sb.binop(op, s, c);
                self.put_reg(self.ins.op_register(0), r);
                Some(Outcome::Next)
            }
            M::Movbe => {
                let ty = self.op_ty(0);
                let v = self.read_op(1, ty)?;
                let r = self.sb.unop(Unop::Bswap(ty), v);
                self.write_op(0, r)?;
                Some(Outcome::Next)
            }
            _ => return None,
        };
        Some(r.unwrap_or(Outcome::Unhandled))
    }

    /// The low `n` bits of `v` (I64 both), `v` itself when `n >= bits`.
    fn low_bits(&mut self, v: Atom, n: Atom, bits: u32) -> Atom {
        let n8 = self.sb.zext(n, Ty::I8);
        let n8 = self.sb.binop(Binop::And(Ty::I8), n8, Atom::u8(63));
        let one = self.sb.binop(Binop::Shl(Ty::I64), Atom::u64(1), n8);
        let mask = self.sb.binop(Binop::Sub(Ty::I64), one, Atom::u64(1));
        let masked = self.sb.binop(Binop::And(Ty::I64), v, mask);
        let small = self.sb.binop(Binop::CmpLTU(Ty::I64), n, Atom::u64(bits as u64));
        self.sb.ite(small, masked, v)
    }

    /// Flags SF and (if `with_zf`) ZF from `r`, CF from `cf` (I1), the rest clear.
    fn flags_zs_c(&mut self, r: Atom, ty: Ty, cf: Atom, with_zf: bool) {
        let zero = Atom::Const(Const::int(ty, 0));
        let neg = self.sb.binop(Binop::CmpLTS(ty), r, zero);
        let neg = self.sb.zext(neg, Ty::I64);
        let mut f = self.sb.binop(Binop::Mul(Ty::I64), neg, Atom::u64(SF));
        if with_zf {
            let z = self.sb.binop(Binop::CmpEQ(ty), r, zero);
            let z = self.sb.zext(z, Ty::I64);
            let z = self.sb.binop(Binop::Mul(Ty::I64), z, Atom::u64(ZF));
            f = self.sb.binop(Binop::Or(Ty::I64), f, z);
        }
        let c = self.sb.zext(cf, Ty::I64);
        let c = self.sb.binop(Binop::Mul(Ty::I64), c, Atom::u64(CF));
        f = self.sb.binop(Binop::Or(Ty::I64), f, c);
        self.set_flags_copy(f);
    }
}
