//! The x87 floating-point unit, enough for what compilers and static glibc emit: loads and
//! stores of m32/m64/m80 floats and m16/m32/m64 integers, register moves and exchanges,
//! constants, the arithmetic family (all forms, popping and integer-operand ones), sign and
//! magnitude, square root, rounding, comparisons into rflags or C3..C0, `fxam`, `fprem(1)`,
//! `fscale`, conditional moves, tag and stack-pointer manipulation, the control and status
//! words, and the environment (`fnstenv`/`fldenv`, by dirty helpers). Not lifted: the
//! transcendental instructions (fsin, fptan, fyl2x, f2xm1, ...), BCD, fnsave/frstor and
//! fxsave/fxrstor.
//!
//! Model (as in Valgrind): registers are 64-bit doubles, so long double arithmetic is done in
//! double precision; 80-bit memory operands are converted exactly on the way out and rounded
//! to nearest on the way in (helpers in `crate::x87`). Only the rounding field of the control
//! word is kept (`fpround`; it governs `frndint` and `fist*`; arithmetic rounds to nearest) and
//! `fnstcw` reads back `0x037f | rc << 10` (all exceptions masked, extended precision).
//! Exceptions are never raised: invalid operations produce the "real indefinite" NaN, as they
//! do on a CPU with them masked; stack overflow and underflow do the same. C1 is always 0
//! except after `fxam` and `fprem`.
//!
//! Layout: the guest state keeps the stack in *stack order* — `fpreg[k]` is ST(k) and byte k of
//! `fptag` is its tag (0 empty, 1 valid) — so every register access has a constant offset and
//! needs no indexed Get/Put; a push or pop moves the eight registers and shifts the tag word,
//! and the optimiser turns the moves inside a block into renamings. `ftop` is the physical
//! TOP that `fnstsw` shows (decremented by a push, incremented by a pop); the physical register
//! `i` is ST((i - ftop) & 7), which is what `fxsave`-style layouts (not lifted) would need.

use super::{Lifter, Outcome};
use crate::state::*;
use crate::x87::{self as h, NAN_INDEFINITE};
use alloc::vec;
use iced_x86::{MemorySize, Mnemonic as M, OpKind, Register};
use vg_ir::*;

/// Constants of fld1/fldz/fldl2t/fldl2e/fldpi/fldlg2/fldln2, rounded to double.
const LOG2_10: f64 = 3.321_928_094_887_362_3;

/// Which binary arithmetic operation, and whether its operands are reversed (fsubr/fdivr).
#[derive(Clone, Copy)]
enum Arith {
    Add,
    Mul,
    Sub,
    SubR,
    Div,
    DivR,
}

fn st_off(k: u32) -> u32 {
    OFF_FPREG + 8 * (k & 7)
}

fn f64c(x: f64) -> Atom {
    Atom::Const(Const::F64(x.to_bits()))
}

impl Lifter {
    /// Lift an x87 instruction; `None` if it is not one of this family.
    pub(super) fn lift_x87(&mut self) -> Option<Outcome> {
        let m = self.ins.mnemonic();
        let r = match m {
            M::Fld => self.fld(),
            M::Fild => {
                let v = self.fp_mem_operand()?;
                self.fpush(v);
                Some(Outcome::Next)
            }
            M::Fst | M::Fstp => self.fst(m == M::Fstp),
            M::Fist | M::Fistp | M::Fisttp => self.fist(m),
            M::Fxch => {
                let i = self.st_operand(if self.ins.op_count() == 2 { 1 } else { 0 })?;
                let (a, b) = (self.st(0), self.st(i));
                self.set_st(0, b);
                self.set_st(i, a);
                Some(Outcome::Next)
            }
            M::Fld1 | M::Fldz | M::Fldl2t | M::Fldl2e | M::Fldpi | M::Fldlg2 | M::Fldln2 => {
                let c = match m {
                    M::Fld1 => 1.0,
                    M::Fldz => 0.0,
                    M::Fldl2t => LOG2_10,
                    M::Fldl2e => core::f64::consts::LOG2_E,
                    M::Fldpi => core::f64::consts::PI,
                    M::Fldlg2 => core::f64::consts::LOG10_2,
                    _ => core::f64::consts::LN_2,
                };
                self.fpush(f64c(c));
                Some(Outcome::Next)
            }
            M::Fadd | M::Faddp | M::Fiadd => self.farith(Arith::Add, m == M::Faddp),
            M::Fmul | M::Fmulp | M::Fimul => self.farith(Arith::Mul, m == M::Fmulp),
            M::Fsub | M::Fsubp | M::Fisub => self.farith(Arith::Sub, m == M::Fsubp),
            M::Fsubr | M::Fsubrp | M::Fisubr => self.farith(Arith::SubR, m == M::Fsubrp),
            M::Fdiv | M::Fdivp | M::Fidiv => self.farith(Arith::Div, m == M::Fdivp),
            M::Fdivr | M::Fdivrp | M::Fidivr => self.farith(Arith::DivR, m == M::Fdivrp),
            M::Fchs | M::Fabs | M::Fsqrt => {
                let op = match m {
                    M::Fchs => Unop::NegF64,
                    M::Fabs => Unop::AbsF64,
                    _ => Unop::SqrtF64,
                };
                let a = self.st(0);
                let r = self.sb.unop(op, a);
                self.set_st(0, r);
                Some(Outcome::Next)
            }
            M::Frndint => {
                let a = self.st(0);
                let rc = self.sb.get(OFF_FPROUND, Ty::I32);
                let rc = self.sb.zext(rc, Ty::I64);
                let r = self.fcall(h::frndint_callee(), vec![a, rc]);
                self.set_st(0, r);
                Some(Outcome::Next)
            }
            M::Fscale => {
                let (a, b) = (self.st(0), self.st(1));
                let r = self.fcall(h::fscale_callee(), vec![a, b]);
                self.set_st(0, r);
                Some(Outcome::Next)
            }
            M::Fprem | M::Fprem1 => {
                let (a, b) = (self.st(0), self.st(1));
                let (a64, b64) = (self.f2i(a), self.f2i(b));
                let mode = Atom::u64((m == M::Fprem1) as u64);
                let r = self.fcall(h::fprem_callee(), vec![a, b, mode]);
                let cc = self.sb.ccall(h::fprem_cc_callee(), Ty::I64, vec![a64, b64, mode]);
                self.set_st(0, r);
                self.sb.put(OFF_FC3210, cc);
                Some(Outcome::Next)
            }
            M::Fcomi | M::Fcomip | M::Fucomi | M::Fucomip => {
                let i = self.st_operand(1)?;
                let (a, b) = (self.st(0), self.st(i));
                let c = self.sb.binop(Binop::CmpF(Ty::F64), a, b);
                // ZF, PF, CF as ucomisd leaves them; OF, SF, AF cleared.
                let f = self.sb.zext(c, Ty::I64);
                self.set_flags_copy(f);
                if matches!(m, M::Fcomip | M::Fucomip) {
                    self.fpop();
                }
                Some(Outcome::Next)
            }
            M::Fcom | M::Fcomp | M::Fcompp | M::Fucom | M::Fucomp | M::Fucompp | M::Ficom | M::Ficomp => {
                let b = match self.ins.op_count() {
                    0 => self.st(1),
                    1 if self.ins.op_kind(0) == OpKind::Memory => self.fp_mem_operand()?,
                    1 => {
                        let i = self.st_operand(0)?;
                        self.st(i)
                    }
                    _ => {
                        let i = self.st_operand(1)?;
                        self.st(i)
                    }
                };
                let a = self.st(0);
                self.fcompare(a, b);
                let pops = match m {
                    M::Fcompp | M::Fucompp => 2,
                    M::Fcomp | M::Fucomp | M::Ficomp => 1,
                    _ => 0,
                };
                for _ in 0..pops {
                    self.fpop();
                }
                Some(Outcome::Next)
            }
            M::Ftst => {
                let a = self.st(0);
                self.fcompare(a, f64c(0.0));
                Some(Outcome::Next)
            }
            M::Fxam => {
                let tags = self.sb.get(OFF_FPTAG, Ty::I64);
                let t0 = self.sb.binop(Binop::And(Ty::I64), tags, Atom::u64(0xff));
                let raw = self.sb.get(st_off(0), Ty::F64);
                let raw = self.f2i(raw);
                let cc = self.sb.ccall(h::fxam_callee(), Ty::I64, vec![t0, raw]);
                self.sb.put(OFF_FC3210, cc);
                Some(Outcome::Next)
            }
            M::Fcmovb | M::Fcmove | M::Fcmovbe | M::Fcmovu | M::Fcmovnb | M::Fcmovne | M::Fcmovnbe | M::Fcmovnu => {
                let cc = match m {
                    M::Fcmovb => 2,
                    M::Fcmovnb => 3,
                    M::Fcmove => 4,
                    M::Fcmovne => 5,
                    M::Fcmovbe => 6,
                    M::Fcmovnbe => 7,
                    M::Fcmovu => 10,
                    _ => 11,
                };
                let i = self.st_operand(1)?;
                let c = self.cond(cc);
                let (a, b) = (self.st(0), self.st(i));
                let r = self.sb.ite(c, b, a);
                self.set_st(0, r);
                Some(Outcome::Next)
            }
            M::Ffree | M::Ffreep => {
                let i = self.st_operand(0)?;
                let tags = self.sb.get(OFF_FPTAG, Ty::I64);
                let t = self.sb.binop(Binop::And(Ty::I64), tags, Atom::u64(!(0xffu64 << (8 * i))));
                self.sb.put(OFF_FPTAG, t);
                if m == M::Ffreep {
                    self.fpop();
                }
                Some(Outcome::Next)
            }
            M::Fincstp | M::Fdecstp => {
                self.frotate(m == M::Fincstp);
                Some(Outcome::Next)
            }
            M::Fnstcw | M::Fstcw => {
                let rc = self.sb.get(OFF_FPROUND, Ty::I32);
                let rc = self.sb.binop(Binop::And(Ty::I32), rc, Atom::u32(3));
                let rc = self.sb.binop(Binop::Shl(Ty::I32), rc, Atom::u8(10));
                let cw = self.sb.binop(Binop::Or(Ty::I32), rc, Atom::u32(0x037f));
                let cw = self.sb.zext(cw, Ty::I16);
                self.write_op(0, cw)?;
                Some(Outcome::Next)
            }
            M::Fldcw => {
                let cw = self.read_op(0, Ty::I16)?;
                let cw = self.sb.zext(cw, Ty::I32);
                let rc = self.sb.binop(Binop::Shr(Ty::I32), cw, Atom::u8(10));
                let rc = self.sb.binop(Binop::And(Ty::I32), rc, Atom::u32(3));
                self.sb.put(OFF_FPROUND, rc);
                Some(Outcome::Next)
            }
            M::Fnstsw | M::Fstsw => {
                let top = self.sb.get(OFF_FTOP, Ty::I32);
                let top = self.sb.binop(Binop::And(Ty::I32), top, Atom::u32(7));
                let top = self.sb.binop(Binop::Shl(Ty::I32), top, Atom::u8(11));
                let cc = self.sb.get(OFF_FC3210, Ty::I64);
                let cc = self.sb.zext(cc, Ty::I32);
                let cc = self.sb.binop(Binop::And(Ty::I32), cc, Atom::u32((h::C3 | h::C2 | h::C1 | h::C0) as u32));
                let sw = self.sb.binop(Binop::Or(Ty::I32), top, cc);
                let sw = self.sb.zext(sw, Ty::I16);
                self.write_op(0, sw)?;
                Some(Outcome::Next)
            }
            M::Fninit | M::Finit => {
                self.sb.put(OFF_FPTAG, Atom::u64(0));
                self.sb.put(OFF_FTOP, Atom::u32(0));
                self.sb.put(OFF_FPROUND, Atom::u32(0));
                self.sb.put(OFF_FC3210, Atom::u64(0));
                Some(Outcome::Next)
            }
            M::Fnstenv | M::Fstenv | M::Fldenv => {
                // The 28-byte format only (no 16-bit operand-size prefix).
                if self.ins.op_kind(0) != OpKind::Memory || self.ins.memory_size() != MemorySize::FpuEnv28 {
                    return Some(Outcome::Unhandled);
                }
                let a = self.ea();
                let fpu = vec![(OFF_FPREG, 64), (OFF_FPTAG, 8), (OFF_FTOP, 4), (OFF_FPROUND, 4), (OFF_FC3210, 8)];
                let store = m != M::Fldenv;
                self.sb.stmts.push(Stmt::Dirty(alloc::boxed::Box::new(Dirty {
                    callee: if store { h::fnstenv_callee() } else { h::fldenv_callee() },
                    args: vec![a],
                    pass_state: true,
                    guard: None,
                    dst: None,
                    reads_state: fpu.clone(),
                    writes_state: if store { vec![] } else { fpu },
                    reads_mem: (!store).then_some((a, 28)),
                    writes_mem: store.then_some((a, 28)),
                })));
                Some(Outcome::Next)
            }
            // Exceptions are never recorded, so there is nothing to clear or wait for.
            M::Fnclex | M::Fclex | M::Wait | M::Fnop => Some(Outcome::Next),
            _ => return None,
        };
        Some(r.unwrap_or(Outcome::Unhandled))
    }

    /// The stack index of register operand `i` (ST(0)..ST(7)).
    fn st_operand(&self, i: u32) -> Option<u32> {
        if self.ins.op_kind(i) != OpKind::Register {
            return None;
        }
        let r = self.ins.op_register(i);
        r.is_st().then(|| r as u32 - Register::ST0 as u32)
    }

    fn tag_valid(&mut self, k: u32) -> Atom {
        let tags = self.sb.get(OFF_FPTAG, Ty::I64);
        let t = self.sb.binop(Binop::Shr(Ty::I64), tags, Atom::u8(8 * k as u8));
        let t = self.sb.binop(Binop::And(Ty::I64), t, Atom::u64(0xff));
        self.sb.binop(Binop::CmpNE(Ty::I64), t, Atom::u64(0))
    }

    /// ST(k) as F64; an empty register reads as the real indefinite (stack underflow).
    fn st(&mut self, k: u32) -> Atom {
        let valid = self.tag_valid(k);
        let v = self.sb.get(st_off(k), Ty::F64);
        self.sb.ite(valid, v, Atom::Const(Const::F64(NAN_INDEFINITE)))
    }

    /// Write ST(k) and mark it valid.
    fn set_st(&mut self, k: u32, v: Atom) {
        self.sb.put(st_off(k), v);
        let tags = self.sb.get(OFF_FPTAG, Ty::I64);
        let t = self.sb.binop(Binop::Or(Ty::I64), tags, Atom::u64(1 << (8 * k)));
        self.sb.put(OFF_FPTAG, t);
    }

    fn add_ftop(&mut self, d: u32) {
        let top = self.sb.get(OFF_FTOP, Ty::I32);
        let top = self.sb.binop(Binop::Add(Ty::I32), top, Atom::u32(d));
        let top = self.sb.binop(Binop::And(Ty::I32), top, Atom::u32(7));
        self.sb.put(OFF_FTOP, top);
    }

    /// Rotate the stack by one (tags with it): `up` = fincstp (ST(k) <- ST(k+1), ST(7) <- the
    /// old ST(0)), otherwise fdecstp.
    fn frotate(&mut self, up: bool) {
        let regs: [Atom; 8] = core::array::from_fn(|k| self.sb.get(st_off(k as u32), Ty::F64));
        for k in 0..8u32 {
            let from = if up { (k + 1) & 7 } else { (k + 7) & 7 };
            self.sb.put(st_off(k), regs[from as usize]);
        }
        let tags = self.sb.get(OFF_FPTAG, Ty::I64);
        let (a, b) = if up { (Binop::Shr(Ty::I64), Binop::Shl(Ty::I64)) } else { (Binop::Shl(Ty::I64), Binop::Shr(Ty::I64)) };
        let x = self.sb.binop(a, tags, Atom::u8(8));
        let y = self.sb.binop(b, tags, Atom::u8(56));
        let t = self.sb.binop(Binop::Or(Ty::I64), x, y);
        self.sb.put(OFF_FPTAG, t);
        self.add_ftop(if up { 1 } else { 7 });
    }

    /// Push `v` (F64). Pushing onto a full stack (ST(7) valid) stores the real indefinite.
    fn fpush(&mut self, v: Atom) {
        let full = self.tag_valid(7);
        let v = self.sb.ite(full, Atom::Const(Const::F64(NAN_INDEFINITE)), v);
        self.frotate(false);
        self.set_st(0, v);
    }

    /// Pop: ST(0) becomes empty and the stack moves up.
    fn fpop(&mut self) {
        let tags = self.sb.get(OFF_FPTAG, Ty::I64);
        let t = self.sb.binop(Binop::And(Ty::I64), tags, Atom::u64(!0xff));
        self.sb.put(OFF_FPTAG, t);
        self.frotate(true);
    }

    fn f2i(&mut self, v: Atom) -> Atom {
        self.sb.unop(Unop::Reinterp(Ty::F64, Ty::I64), v)
    }

    /// Call a pure helper on doubles (passed and returned as bits).
    fn fcall(&mut self, c: Callee, args: alloc::vec::Vec<Atom>) -> Atom {
        let args = args
            .into_iter()
            .map(|a| if self.sb.atom_ty(a) == Ty::F64 { self.f2i(a) } else { a })
            .collect();
        let r = self.sb.ccall(c, Ty::I64, args);
        self.sb.unop(Unop::Reinterp(Ty::I64, Ty::F64), r)
    }

    /// The instruction's memory operand as F64 (float or integer, by its size and type).
    fn fp_mem_operand(&mut self) -> Option<Atom> {
        let ms = self.ins.memory_size();
        let a = self.ea();
        Some(match ms {
            MemorySize::Float32 => {
                let v = self.sb.load(Ty::F32, a);
                self.sb.unop(Unop::F32toF64, v)
            }
            MemorySize::Float64 => self.sb.load(Ty::F64, a),
            MemorySize::Float80 => {
                let mant = self.sb.load(Ty::I64, a);
                let a8 = self.sb.binop(Binop::Add(Ty::I64), a, Atom::u64(8));
                let se = self.sb.load(Ty::I16, a8);
                let se = self.sb.zext(se, Ty::I64);
                self.fcall(h::f80_to_f64_callee(), vec![mant, se])
            }
            MemorySize::Int16 | MemorySize::Int32 | MemorySize::Int64 => {
                let v = self.sb.load(Ty::int_of_bytes(ms.size() as u32), a);
                let v = self.sb.sext(v, Ty::I64);
                self.sb.unop(Unop::IntSToF(Ty::I64, Ty::F64), v)
            }
            _ => return None,
        })
    }

    fn fld(&mut self) -> Option<Outcome> {
        let v = match self.ins.op_kind(0) {
            OpKind::Memory => self.fp_mem_operand()?,
            _ => {
                let i = self.st_operand(0)?;
                self.st(i)
            }
        };
        self.fpush(v);
        Some(Outcome::Next)
    }

    fn fst(&mut self, pop: bool) -> Option<Outcome> {
        let v = self.st(0);
        match self.ins.op_kind(0) {
            OpKind::Memory => {
                let a = self.ea();
                match self.ins.memory_size() {
                    MemorySize::Float32 => {
                        let f = self.sb.unop(Unop::F64toF32, v);
                        self.sb.store(a, f);
                    }
                    MemorySize::Float64 => self.sb.store(a, v),
                    MemorySize::Float80 => {
                        let bits = self.f2i(v);
                        let mant = self.sb.ccall(h::f64_to_f80_mant_callee(), Ty::I64, vec![bits]);
                        let se = self.sb.ccall(h::f64_to_f80_se_callee(), Ty::I64, vec![bits]);
                        let se = self.sb.zext(se, Ty::I16);
                        self.sb.store(a, mant);
                        let a8 = self.sb.binop(Binop::Add(Ty::I64), a, Atom::u64(8));
                        self.sb.store(a8, se);
                    }
                    _ => return None,
                }
            }
            _ => {
                let i = self.st_operand(0)?;
                self.set_st(i, v);
            }
        }
        if pop {
            self.fpop();
        }
        Some(Outcome::Next)
    }

    /// fist/fistp (current rounding) and fisttp (truncating) to m16/m32/m64.
    fn fist(&mut self, m: M) -> Option<Outcome> {
        if self.ins.op_kind(0) != OpKind::Memory {
            return None;
        }
        let ty = match self.ins.memory_size() {
            MemorySize::Int16 => Ty::I16,
            MemorySize::Int32 => Ty::I32,
            MemorySize::Int64 => Ty::I64,
            _ => return None,
        };
        let v = self.st(0);
        let bits = self.f2i(v);
        let rc = if m == M::Fisttp {
            Atom::u64(3)
        } else {
            let rc = self.sb.get(OFF_FPROUND, Ty::I32);
            let rc = self.sb.binop(Binop::And(Ty::I32), rc, Atom::u32(3));
            self.sb.zext(rc, Ty::I64)
        };
        let mode = self.sb.binop(Binop::Or(Ty::I64), rc, Atom::u64((ty.bytes() as u64) << 8));
        let r = self.sb.ccall(h::to_int_callee(), Ty::I64, vec![bits, mode]);
        let r = self.sb.zext(r, ty);
        let a = self.ea();
        self.sb.store(a, r);
        if m != M::Fist {
            self.fpop();
        }
        Some(Outcome::Next)
    }

    /// The arithmetic family: `fop m32/m64/mint` (ST(0) op= mem), `fop st(0), st(i)`,
    /// `fop st(i), st(0)` and the popping `fopp st(i), st(0)`.
    fn farith(&mut self, op: Arith, pop: bool) -> Option<Outcome> {
        let (dst, a, b) = match self.ins.op_count() {
            1 if self.ins.op_kind(0) == OpKind::Memory => {
                let b = self.fp_mem_operand()?;
                (0, self.st(0), b)
            }
            2 => {
                let (d, s) = (self.st_operand(0)?, self.st_operand(1)?);
                (d, self.st(d), self.st(s))
            }
            _ => return None,
        };
        let (bin, x, y) = match op {
            Arith::Add => (Binop::AddF(Ty::F64), a, b),
            Arith::Mul => (Binop::MulF(Ty::F64), a, b),
            Arith::Sub => (Binop::SubF(Ty::F64), a, b),
            Arith::SubR => (Binop::SubF(Ty::F64), b, a),
            Arith::Div => (Binop::DivF(Ty::F64), a, b),
            Arith::DivR => (Binop::DivF(Ty::F64), b, a),
        };
        let r = self.sb.binop(bin, x, y);
        self.set_st(dst, r);
        if pop {
            self.fpop();
        }
        Some(Outcome::Next)
    }

    /// C3/C2/C0 from comparing `a` with `b` (unordered: all three), C1 cleared.
    fn fcompare(&mut self, a: Atom, b: Atom) {
        let c = self.sb.binop(Binop::CmpF(Ty::F64), a, b);
        // CmpF gives ZF/PF/CF in bits 6/2/0; C3/C2/C0 are bits 14/10/8.
        let c = self.sb.zext(c, Ty::I64);
        let c = self.sb.binop(Binop::And(Ty::I64), c, Atom::u64(0x45));
        let c = self.sb.binop(Binop::Shl(Ty::I64), c, Atom::u8(8));
        self.sb.put(OFF_FC3210, c);
    }
}
