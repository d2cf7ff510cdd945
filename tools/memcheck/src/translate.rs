//! Instrumentation (Valgrind's `mc_translate`): every temp gets a shadow temp holding its V bits
//! (1 = undefined), every guest register a shadow in the first shadow state; statements are
//! preceded by the IR that computes their shadows, with Valgrind's rules — exact for bitwise
//! operations (with the defined-zero/defined-one improvements of And/Or), constant shifts,
//! widening and narrowing; add/sub/mul approximated by the left-spread of the union of the
//! operands' undefinedness; equality compares exact where a defined bit differs; everything
//! else pessimistic (any undefined input bit makes the whole result undefined). Loads and
//! stores call the shadow-memory helpers; undefined values are reported where they matter:
//! exit guards, load/store addresses, dirty-helper guards. Moves of the stack pointer call a
//! helper that keeps the stack's addressability in step; the red-zone hint of a call or return
//! (`Stmt::AbiHint`) makes the 128 bytes below the new stack pointer undefined, and takes over
//! the marking of that call's or return's own move.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use crate::fastpath;
use vg_core::tool::vg_ir::{Atom, Binop, Callee, Const, Dirty, Expr, Stmt, Superblock, Temp, Ty, Unop, VecOp};

/// What the instrumenter needs to know.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub state_size: u32,
    pub sp_offset: u32,
    pub fp_offset: u32,
    /// `--expensive-definedness-checks=`: exact CmpEQ/CmpNE.
    pub expensive_cmp: bool,
    /// `--undef-value-errors=`.
    pub undef_errors: bool,
    /// `--track-origins=yes`: the origin helpers (see [`crate::origins`]).
    pub origins: Option<crate::origins::OHelpers>,
}

/// The helpers generated code calls (addresses of `extern "C"` functions).
#[derive(Clone, Copy, Debug)]
pub struct Helpers {
    /// (addr, size, pc) -> V bits of the loaded value (size <= 8), reporting invalid reads.
    pub loadv: Callee,
    /// (addr) -> V bits of the high 8 bytes of a 16-byte load (no report).
    pub loadv_hi: Callee,
    /// (addr, vbits, size, pc): store V bits, reporting invalid writes (size <= 8).
    pub storev: Callee,
    /// (addr, lo, hi, pc): 16-byte store.
    pub storev128: Callee,
    /// (size, pc): "Use of uninitialised value of size N".
    pub value_error: Callee,
    /// (pc): "Conditional jump or move depends on uninitialised value(s)".
    pub cond_error: Callee,
    /// (old_sp, new_sp).
    pub sp_change: Callee,
    /// (addr, len) -> 0 if all defined, else all ones.
    pub mem_vbits: Callee,
    /// (addr, len, undefined).
    pub mem_set: Callee,
    /// (base, len, dead): a call's or return's red zone holds nothing (see `Stmt::AbiHint`),
    /// and the `dead` bytes below it left the stack.
    pub make_stack_uninit: Callee,
    /// (base, len, nia, dead): the same, the red zone's origin the stack space of the code at
    /// `nia`.
    pub make_stack_uninit_o: Callee,
    /// The shadow tables the inline fast paths read.
    pub tables: crate::shadow::FastTables,
}

/// The shadow type of a value type: floats are shadowed by integers of their size.
pub fn sh_ty(t: Ty) -> Ty {
    match t {
        Ty::F32 => Ty::I32,
        Ty::F64 => Ty::I64,
        t => t,
    }
}

fn zero(t: Ty) -> Atom {
    match t {
        // V256 shadows are V128 unions (see the V128HLtoV256 rule).
        Ty::V128 | Ty::V256 => Atom::Const(Const::V128(0)),
        Ty::I128 => Atom::Const(Const::I128(0)),
        t => Atom::Const(Const::int(sh_ty(t), 0)),
    }
}

fn is_zero(a: Atom) -> bool {
    matches!(a, Atom::Const(c) if c.bits128() == 0)
}

/// Lane width in bits of a vector operation, from its name (`Add16x8` -> 16, `Add64Fx2` ->
/// 64); `None` for whole-register operations. The names follow one scheme, so this stays right
/// as operations are added.
fn lane_bits(op: VecOp) -> Option<u32> {
    let name = alloc::format!("{op:?}");
    for (pat, bits) in [("8x16", 8), ("16x8", 16), ("32x4", 32), ("64x2", 64), ("32Fx4", 32), ("64Fx2", 64), ("F32x4", 32), ("F64x2", 64)] {
        if name.contains(pat) {
            return Some(bits);
        }
    }
    None
}

struct Mce<'a> {
    cfg: &'a Config,
    h: &'a Helpers,
    out: Superblock,
    /// Shadow of each original temp.
    shadow: Vec<Option<Atom>>,
    pc: u64,
    /// Per original temp: known to be `root + constant`, where `root` is a temp that held the
    /// stack pointer at some point of the block.
    sp_temps: Vec<Option<(Temp, i64)>>,
    /// The stack pointer now, as `root + constant`, if known.
    sp_cur: Option<(Temp, i64)>,
    /// Origin tracking, if on.
    o: Option<crate::origins::Origins<'a>>,
    /// Stack-pointer values a red-zone hint follows (see [`hinted_sps`]).
    hinted: Vec<Temp>,
    /// Bytes below the next hint's red zone that the last stack-pointer move killed and left
    /// to the hint to mark (see [`Mce::hint_takes`]).
    hint_dead: u64,
}

impl Mce<'_> {
    fn emit(&mut self, e: Expr) -> Atom {
        let ty = self.out.expr_ty(&e);
        let t = self.out.new_temp(ty);
        self.out.stmts.push(Stmt::WrTmp { dst: t, e });
        Atom::Tmp(t)
    }
    fn un(&mut self, op: Unop, a: Atom) -> Atom {
        self.emit(Expr::Unop { op, a })
    }
    fn bin(&mut self, op: Binop, a: Atom, b: Atom) -> Atom {
        self.emit(Expr::Binop { op, a, b })
    }

    fn ty(&self, a: Atom) -> Ty {
        self.out.atom_ty(a)
    }

    /// The V bits of an atom.
    fn sh(&self, a: Atom) -> Atom {
        match a {
            Atom::Const(c) => zero(c.ty()),
            Atom::Tmp(t) => self.shadow[t.0 as usize].unwrap_or_else(|| zero(self.out.temp_ty(t))),
        }
    }

    /// All ones of an integer shadow type if `a` (an I64 that is 0 or all ones) is non-zero.
    fn widen(&mut self, m: Atom, dst: Ty) -> Atom {
        match sh_ty(dst) {
            Ty::I1 => self.bin(Binop::CmpNE(Ty::I64), m, Atom::u64(0)),
            Ty::I8 | Ty::I16 | Ty::I32 => self.un(Unop::Trunc(Ty::I64, sh_ty(dst)), m),
            Ty::I64 => m,
            Ty::I128 => self.bin(Binop::HiLo(Ty::I64), m, m),
            Ty::V128 => self.bin(Binop::HiLo64toV128, m, m),
            t => panic!("memcheck: no shadow rule for values of type {t:?} yet"),
        }
    }

    /// I64: all ones if any bit of `v` (a shadow of type `t`) is set.
    fn pcast64(&mut self, v: Atom, t: Ty) -> Atom {
        if is_zero(v) {
            return Atom::u64(0);
        }
        let any = match sh_ty(t) {
            Ty::I1 => return self.un(Unop::Sext(Ty::I1, Ty::I64), v),
            t @ (Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64) => self.bin(Binop::CmpNE(t), v, Atom::Const(Const::int(t, 0))),
            Ty::I128 => {
                let lo = self.un(Unop::Trunc(Ty::I128, Ty::I64), v);
                let hi = self.un(Unop::Hi(Ty::I128), v);
                let o = self.bin(Binop::Or(Ty::I64), lo, hi);
                self.bin(Binop::CmpNE(Ty::I64), o, Atom::u64(0))
            }
            Ty::V128 => {
                let lo = self.un(Unop::V128to64, v);
                let hi = self.un(Unop::V128HIto64, v);
                let o = self.bin(Binop::Or(Ty::I64), lo, hi);
                self.bin(Binop::CmpNE(Ty::I64), o, Atom::u64(0))
            }
            t => panic!("memcheck: no shadow rule for values of type {t:?} yet"),
        };
        self.un(Unop::Sext(Ty::I1, Ty::I64), any)
    }

    /// Pessimistic cast: all of `dst` undefined if any bit of `v` (of type `src`) is.
    fn pcast(&mut self, v: Atom, src: Ty, dst: Ty) -> Atom {
        if is_zero(v) {
            return zero(dst);
        }
        let m = self.pcast64(v, src);
        self.widen(m, dst)
    }

    /// Pessimistic union of several shadows into `dst`.
    fn lazy(&mut self, vs: &[(Atom, Ty)], dst: Ty) -> Atom {
        let mut acc: Option<Atom> = None;
        for &(v, t) in vs {
            if is_zero(v) {
                continue;
            }
            let m = self.pcast64(v, t);
            acc = Some(match acc {
                None => m,
                Some(a) => self.bin(Binop::Or(Ty::I64), a, m),
            });
        }
        match acc {
            None => zero(dst),
            Some(m) => self.widen(m, dst),
        }
    }

    fn or(&mut self, t: Ty, a: Atom, b: Atom) -> Atom {
        if is_zero(a) {
            return b;
        }
        if is_zero(b) {
            return a;
        }
        match sh_ty(t) {
            Ty::V128 => self.bin(Binop::Vec2(VecOp::Or), a, b),
            Ty::I128 => {
                let (al, ah) = (self.un(Unop::Trunc(Ty::I128, Ty::I64), a), self.un(Unop::Hi(Ty::I128), a));
                let (bl, bh) = (self.un(Unop::Trunc(Ty::I128, Ty::I64), b), self.un(Unop::Hi(Ty::I128), b));
                let lo = self.bin(Binop::Or(Ty::I64), al, bl);
                let hi = self.bin(Binop::Or(Ty::I64), ah, bh);
                self.bin(Binop::HiLo(Ty::I64), hi, lo)
            }
            t => self.bin(Binop::Or(t), a, b),
        }
    }

    fn and(&mut self, t: Ty, a: Atom, b: Atom) -> Atom {
        match sh_ty(t) {
            Ty::V128 => self.bin(Binop::Vec2(VecOp::And), a, b),
            t => self.bin(Binop::And(t), a, b),
        }
    }

    fn not(&mut self, t: Ty, a: Atom) -> Atom {
        self.un(Unop::Not(sh_ty(t)), a)
    }

    /// Valgrind's Left: undefinedness spreads to all higher bits (`x | -x`).
    fn left(&mut self, t: Ty, v: Atom) -> Atom {
        if is_zero(v) {
            return v;
        }
        let n = self.un(Unop::Neg(t), v);
        self.bin(Binop::Or(t), v, n)
    }

    /// Per-lane pessimistic cast of a V128 shadow.
    fn pcast_lanes(&mut self, v: Atom, bits: u32) -> Atom {
        if is_zero(v) {
            return v;
        }
        let z = Atom::Const(Const::V128(0));
        let (cmp, fixup) = match bits {
            8 => (VecOp::CmpEQ8x16, false),
            16 => (VecOp::CmpEQ16x8, false),
            32 => (VecOp::CmpEQ32x4, false),
            _ => (VecOp::CmpEQ32x4, true),
        };
        let eq = self.bin(Binop::Vec2(cmp), v, z);
        let mut r = self.un(Unop::Not(Ty::V128), eq);
        if fixup {
            // 64-bit lanes: a lane is undefined if either of its 32-bit halves is.
            let swapped = self.un(Unop::ShufImm(VecOp::Shuf32x4, 0b10_11_00_01), r);
            r = self.bin(Binop::Vec2(VecOp::Or), r, swapped);
        }
        r
    }

    fn binop(&mut self, op: Binop, a: Atom, b: Atom) -> Atom {
        use Binop::*;
        let (va, vb) = (self.sh(a), self.sh(b));
        let rt = op.result_ty();
        match op {
            Add(t) | Sub(t) | Mul(t) => {
                let u = self.or(t, va, vb);
                self.left(t, u)
            }
            And(t) | Or(t) => {
                if is_zero(va) && is_zero(vb) {
                    return zero(t);
                }
                // A bit of the result is defined where both inputs are, or where one input has
                // a defined 0 (And) or a defined 1 (Or) that decides it.
                let u = self.or(t, va, vb);
                let (ia, ib) = if matches!(op, And(_)) {
                    (self.or_full(t, a, va), self.or_full(t, b, vb))
                } else {
                    let na = self.not(t, a);
                    let nb = self.not(t, b);
                    (self.or_full(t, na, va), self.or_full(t, nb, vb))
                };
                let x = self.and(t, u, ia);
                self.and(t, x, ib)
            }
            Xor(t) => self.or(t, va, vb),
            Shl(t) | Shr(t) | Sar(t) => {
                if is_zero(va) && is_zero(vb) {
                    return zero(t);
                }
                let shifted = self.bin(op, va, b);
                let vbp = self.pcast(vb, Ty::I8, t);
                self.or(t, shifted, vbp)
            }
            CmpEQ(t) | CmpNE(t) if self.cfg.expensive_cmp && t.is_int() => {
                if is_zero(va) && is_zero(vb) {
                    return zero(Ty::I1);
                }
                // Defined if some bit defined in both operands differs; else pessimistic.
                let u = self.or(t, va, vb);
                let naive = self.pcast(u, t, Ty::I1);
                let x = self.bin(Xor(t), a, b);
                let nu = self.not(t, u);
                let d = self.bin(And(t), x, nu);
                let differs = self.bin(CmpNE(t), d, Atom::Const(Const::int(t, 0)));
                self.emit(Expr::Ite { cond: differs, t: Atom::bool(false), f: naive })
            }
            HiLo(_) | HiLo64toV128 | SetV128lo64 | SetV128lo32 => {
                if is_zero(va) && is_zero(vb) {
                    return zero(rt);
                }
                self.bin(op, va, vb)
            }
            Vec2(v) => self.vec2(v, a, b, va, vb),
            // A V256 only ever carries the two factors of an FMA: its shadow is kept as the
            // V128 union of both factors' shadows, which is all the FMA rule needs.
            V128HLtoV256 => self.or(Ty::V128, va, vb),
            // Each result lane is undefined if anything in that lane of a factor or the addend
            // is (the pessimistic rule VEX's memcheck uses for fused multiply-add).
            Fma(v) => {
                let u = self.or(Ty::V128, va, vb);
                let bits = if matches!(v, VecOp::Fma32Fx4(_)) { 32 } else { 64 };
                self.pcast_lanes(u, bits)
            }
            VecShift(_) => {
                if is_zero(va) && is_zero(vb) {
                    return zero(Ty::V128);
                }
                let shifted = self.bin(op, va, b);
                let vbp = self.pcast(vb, Ty::I8, Ty::V128);
                self.or(Ty::V128, shifted, vbp)
            }
            _ => {
                let (ta, tb) = (self.ty(a), self.ty(b));
                self.lazy(&[(va, ta), (vb, tb)], rt)
            }
        }
    }

    /// `x | vx` for the And/Or improvement terms (x an original value of type t).
    fn or_full(&mut self, t: Ty, x: Atom, vx: Atom) -> Atom {
        match sh_ty(t) {
            Ty::V128 => self.bin(Binop::Vec2(VecOp::Or), x, vx),
            t => self.bin(Binop::Or(t), x, vx),
        }
    }

    fn vec2(&mut self, v: VecOp, a: Atom, b: Atom, va: Atom, vb: Atom) -> Atom {
        if is_zero(va) && is_zero(vb) {
            return zero(Ty::V128);
        }
        match v {
            VecOp::Xor => self.or(Ty::V128, va, vb),
            VecOp::And | VecOp::Or => self.binop_bitwise_v(v, a, b, va, vb),
            VecOp::AndNot => {
                let na = self.un(Unop::Not(Ty::V128), a);
                self.binop_bitwise_v(VecOp::And, na, b, va, vb)
            }
            VecOp::InterleaveLO8x16
            | VecOp::InterleaveLO16x8
            | VecOp::InterleaveLO32x4
            | VecOp::InterleaveLO64x2
            | VecOp::InterleaveHI8x16
            | VecOp::InterleaveHI16x8
            | VecOp::InterleaveHI32x4
            | VecOp::InterleaveHI64x2 => self.bin(Binop::Vec2(v), va, vb),
            VecOp::QNarrowS16x8to8x16 | VecOp::QNarrowU16x8to8x16 => {
                // Narrow the per-lane casts with signed saturation: all ones stays all ones.
                let (pa, pb) = (self.pcast_lanes(va, 16), self.pcast_lanes(vb, 16));
                self.bin(Binop::Vec2(VecOp::QNarrowS16x8to8x16), pa, pb)
            }
            VecOp::QNarrowS32x4to16x8 => {
                let (pa, pb) = (self.pcast_lanes(va, 32), self.pcast_lanes(vb, 32));
                self.bin(Binop::Vec2(VecOp::QNarrowS32x4to16x8), pa, pb)
            }
            VecOp::SadU8x16 | VecOp::MullEvenU32x2 => {
                let u = self.or(Ty::V128, va, vb);
                self.pcast_lanes(u, 64)
            }
            VecOp::MAddS16x8 => {
                let u = self.or(Ty::V128, va, vb);
                self.pcast_lanes(u, 32)
            }
            _ => {
                let u = self.or(Ty::V128, va, vb);
                match lane_bits(v) {
                    Some(bits) => self.pcast_lanes(u, bits),
                    None => self.pcast(u, Ty::V128, Ty::V128),
                }
            }
        }
    }

    fn binop_bitwise_v(&mut self, v: VecOp, a: Atom, b: Atom, va: Atom, vb: Atom) -> Atom {
        let u = self.or(Ty::V128, va, vb);
        let (ia, ib) = if v == VecOp::And {
            (self.or_full(Ty::V128, a, va), self.or_full(Ty::V128, b, vb))
        } else {
            let na = self.un(Unop::Not(Ty::V128), a);
            let nb = self.un(Unop::Not(Ty::V128), b);
            (self.or_full(Ty::V128, na, va), self.or_full(Ty::V128, nb, vb))
        };
        let x = self.and(Ty::V128, u, ia);
        self.and(Ty::V128, x, ib)
    }

    fn unop(&mut self, op: Unop, a: Atom) -> Atom {
        use Unop::*;
        let va = self.sh(a);
        let rt = op.result_ty();
        if is_zero(va) {
            return zero(rt);
        }
        match op {
            Not(_) | Reinterp(..) | NegF64 | AbsF64 => va,
            Neg(t) => self.left(t, va),
            Zext(f, t) => self.un(Zext(sh_ty(f), t), va),
            Sext(f, t) => self.un(Sext(sh_ty(f), t), va),
            Trunc(f, t) => self.un(Trunc(sh_ty(f), t), va),
            Hi(_) | Bswap(_) | V128to64 | V128HIto64 | I64UtoV128 | I32UtoV128 | V128to32 | GetMSBs8x16 => self.un(op, va),
            ShufImm(..) => self.un(op, va),
            Ctz(t) => {
                // Defined if every bit up to and including the lowest set bit is defined
                // (Valgrind's rule: what lies above the lowest 1 cannot change the count).
                let one = Atom::Const(Const::int(t, 1));
                let below = self.bin(Binop::Sub(t), a, one);
                let mask = self.bin(Binop::Xor(t), a, below);
                let improved = self.bin(Binop::And(t), va, mask);
                self.pcast(improved, t, rt)
            }
            Vec1(v) => match lane_bits(v) {
                Some(bits) => self.pcast_lanes(va, bits),
                None => self.pcast(va, Ty::V128, Ty::V128),
            },
            _ => {
                let ta = self.ty(a);
                self.pcast(va, ta, rt)
            }
        }
    }

    fn expr(&mut self, e: &Expr, ty: Ty) -> Atom {
        match e {
            Expr::Atom(a) => self.sh(*a),
            Expr::Get { off, ty } => {
                if *off < self.cfg.state_size {
                    self.emit(Expr::Get { off: off + self.cfg.state_size, ty: sh_ty(*ty) })
                } else {
                    zero(*ty)
                }
            }
            Expr::Load { ty, addr } => {
                self.check_value(*addr, 8);
                self.load(*addr, *ty)
            }
            Expr::Unop { op, a } => self.unop(*op, *a),
            Expr::Binop { op, a, b } => self.binop(*op, *a, *b),
            Expr::Ite { cond, t, f } => {
                let (vt, vf, vc) = (self.sh(*t), self.sh(*f), self.sh(*cond));
                let sel = if is_zero(vt) && is_zero(vf) {
                    zero(ty)
                } else {
                    self.emit(Expr::Ite { cond: *cond, t: vt, f: vf })
                };
                let pc = self.pcast(vc, Ty::I1, ty);
                self.or(ty, sel, pc)
            }
            Expr::CCall { args, ret, .. } => {
                let vs: Vec<(Atom, Ty)> = args.iter().map(|a| (self.sh(*a), self.ty(*a))).collect();
                self.lazy(&vs, *ret)
            }
        }
    }

    fn call(&mut self, callee: Callee, args: Vec<Atom>, guard: Option<Atom>, ret: bool) -> Option<Atom> {
        let dst = ret.then(|| self.out.new_temp(Ty::I64));
        self.out.stmts.push(Stmt::Dirty(Box::new(Dirty {
            callee,
            args,
            pass_state: false,
            guard,
            dst,
            // The frame pointer must be exact for the stack trace of a report.
            reads_state: vec![(self.cfg.fp_offset, 8)],
            writes_state: Vec::new(),
            reads_mem: None,
            writes_mem: None,
        })));
        dst.map(Atom::Tmp)
    }

    /// Remember temps that are a stack-pointer value plus a constant (see `sp_change`). The
    /// optimiser that ran before folds `push; push` into constants off one `Get`, so relations
    /// are kept to a root value, not just to the current stack pointer.
    fn track_sp(&mut self, dst: Temp, e: &Expr) {
        let of = |m: &Self, x: Temp| m.sp_temps.get(x.0 as usize).copied().flatten();
        let rel = match *e {
            Expr::Get { off, ty: Ty::I64 } if off == self.cfg.sp_offset => {
                Some(*self.sp_cur.get_or_insert((dst, 0)))
            }
            Expr::Atom(Atom::Tmp(x)) => of(self, x),
            Expr::Binop { op: Binop::Add(Ty::I64), a: Atom::Tmp(x), b: Atom::Const(Const::I64(c)) } => {
                of(self, x).map(|(r, d)| (r, d.wrapping_add(c as i64)))
            }
            Expr::Binop { op: Binop::Sub(Ty::I64), a: Atom::Tmp(x), b: Atom::Const(Const::I64(c)) } => {
                of(self, x).map(|(r, d)| (r, d.wrapping_sub(c as i64)))
            }
            _ => None,
        };
        if let (Some(rel), Some(slot)) = (rel, self.sp_temps.get_mut(dst.0 as usize)) {
            *slot = Some(rel);
        }
    }

    /// The stack pointer was set to `new`.
    fn sp_moved(&mut self, new: Atom) {
        self.sp_cur = match new {
            Atom::Tmp(t) => match self.sp_temps.get_mut(t.0 as usize) {
                Some(slot) => Some(*slot.get_or_insert((t, 0))),
                None => None,
            },
            Atom::Const(_) => None,
        };
    }

    /// `t` as (current stack pointer + constant), if known.
    fn sp_rel(&self, t: Temp) -> Option<i64> {
        let (r, d) = self.sp_temps.get(t.0 as usize).copied().flatten()?;
        let (rc, dc) = self.sp_cur?;
        (r == rc).then(|| d.wrapping_sub(dc))
    }

    /// The stack pointer moves from `old` to `new`: the space below it (past the red zone)
    /// becomes undefined when it grows and no-access when it shrinks. Moves by a small
    /// constant (push, pop, call, ret) are done inline, 8 bytes at a time; the helper does
    /// the rest and any case the inline code cannot.
    fn sp_change(&mut self, old: Atom, new: Atom) {
        let delta = match new {
            Atom::Tmp(t) => self.sp_rel(t),
            Atom::Const(_) => None,
        };
        // With origins, new stack space is tagged as made by this instruction (the tag made at
        // translation, as Valgrind does); a move known to shrink the stack needs none.
        let otag = self.cfg.origins.map(|oh| (oh, if delta.is_some_and(|d| d > 0) { 0 } else { crate::origins::stack_tag(self.pc) }));
        let (helper, args) = match otag {
            Some((oh, tag)) => (oh.sp_change, vec![old, new, Atom::u64(tag as u64)]),
            None => (self.h.sp_change, vec![old, new]),
        };
        let Some(d) = delta.filter(|d| *d != 0 && d.unsigned_abs() <= 32 && d % 8 == 0) else {
            self.call(helper, args, None, false);
            return;
        };
        let (base, fill) = if d < 0 { (new, fastpath::FILL_UNDEFINED) } else { (old, fastpath::FILL_NOACCESS) };
        let mut slow: Option<Atom> = None;
        for k in 0..d.unsigned_abs() / 8 {
            let a = self.bin(Binop::Add(Ty::I64), base, Atom::u64((8 * k).wrapping_sub(crate::REDZONE)));
            let mut s = fastpath::set(&mut self.out, &self.h.tables, a, 8, fill, false, None);
            if let (Some((oh, tag)), true) = (otag, d < 0) {
                let so = crate::origins::stack_store(&mut self.out, &oh.tables, a, tag);
                s = self.bin(Binop::Or(Ty::I1), s, so);
            }
            slow = Some(match slow {
                None => s,
                Some(p) => self.bin(Binop::Or(Ty::I1), p, s),
            });
        }
        self.call(helper, args, slow, false);
    }

    /// A call or return says the `len` bytes at `base` are dead (the red zone below the new
    /// stack pointer): they become undefined, as in Valgrind, so a local read before it is
    /// written is reported even where an earlier call left defined data. The 128-byte case is
    /// done inline when it can be, with origins the bytes' tags too (`origins::red_zone`).
    ///
    /// The stack pointer's move just before may have left its marking to this (see
    /// [`Self::hint_takes`]): then the `dead` bytes below `base` become no-access too.
    fn abi_hint(&mut self, base: Atom, len: u32, nia: Atom) {
        let dead = core::mem::take(&mut self.hint_dead);
        let (len, dead_a) = (Atom::u64(len as u64), Atom::u64(dead));
        let inline = len == Atom::u64(fastpath::RED_ZONE);
        if let Some(oh) = self.cfg.origins {
            let slow = if inline {
                let v = fastpath::undefine_red_zone(&mut self.out, &self.h.tables, base, dead);
                let o = crate::origins::red_zone(&mut self.out, &oh, base, nia);
                Some(self.bin(Binop::Or(Ty::I1), v, o))
            } else {
                None
            };
            self.call(self.h.make_stack_uninit_o, vec![base, len, nia, dead_a], slow, false);
            return;
        }
        let slow = inline.then(|| fastpath::undefine_red_zone(&mut self.out, &self.h.tables, base, dead));
        self.call(self.h.make_stack_uninit, vec![base, len, dead_a], slow, false);
    }

    /// Whether the red-zone hint that follows the stack pointer's move to `new` can mark the
    /// move's bytes too, and how many bytes the move kills below the red zone: `Some(0)` when
    /// it only grows the stack into the red zone (a call), `Some(8)` when it pops 8 bytes (a
    /// return); `None` when the move needs its own marking.
    fn hint_takes(&self, new: Atom) -> Option<u64> {
        let Atom::Tmp(t) = new else { return None };
        if !self.hinted.contains(&t) {
            return None;
        }
        match self.sp_rel(t)? {
            d if (-(fastpath::RED_ZONE as i64)..0).contains(&d) => Some(0),
            8 => Some(8),
            _ => None,
        }
    }

    /// Shadow of a load of `ty` at `addr`.
    fn load(&mut self, addr: Atom, ty: Ty) -> Atom {
        let pc = Atom::u64(self.pc);
        let st = sh_ty(ty);
        match st.bytes() {
            n @ (1 | 2 | 4 | 8) => {
                let slow = fastpath::load(&mut self.out, &self.h.tables, addr, n as u64);
                let v = self.call(self.h.loadv, vec![addr, Atom::u64(n as u64), pc], Some(slow), true).expect("dst");
                if st == Ty::I64 { v } else { self.un(Unop::Trunc(Ty::I64, st), v) }
            }
            16 => {
                let slow = fastpath::load(&mut self.out, &self.h.tables, addr, 16);
                let lo = self.call(self.h.loadv, vec![addr, Atom::u64(16), pc], Some(slow), true).expect("dst");
                let hi = self.call(self.h.loadv_hi, vec![addr], Some(slow), true).expect("dst");
                if st == Ty::V128 { self.bin(Binop::HiLo64toV128, hi, lo) } else { self.bin(Binop::HiLo(Ty::I64), hi, lo) }
            }
            _ => panic!("memcheck: no shadow rule for loads of type {ty:?} yet"),
        }
    }

    /// Store the shadow `v` of a value of type `ty` at `addr`, under `guard` if given.
    fn store(&mut self, addr: Atom, v: Atom, ty: Ty, guard: Option<Atom>) {
        let pc = Atom::u64(self.pc);
        let st = sh_ty(ty);
        match st.bytes() {
            n @ (1 | 2 | 4 | 8) => {
                let v64 = if st == Ty::I64 { v } else { self.un(Unop::Zext(st, Ty::I64), v) };
                let guard = match guard {
                    Some(g) => g,
                    None => fastpath::set(&mut self.out, &self.h.tables, addr, n as u64, fastpath::FILL_DEFINED, true, Some(v64)),
                };
                self.call(self.h.storev, vec![addr, v64, Atom::u64(n as u64), pc], Some(guard), false);
            }
            16 => {
                let (lo, hi) = if st == Ty::V128 {
                    (self.un(Unop::V128to64, v), self.un(Unop::V128HIto64, v))
                } else {
                    (self.un(Unop::Trunc(Ty::I128, Ty::I64), v), self.un(Unop::Hi(Ty::I128), v))
                };
                let guard = match guard {
                    Some(g) => g,
                    None => {
                        let any = self.bin(Binop::Or(Ty::I64), lo, hi);
                        fastpath::set(&mut self.out, &self.h.tables, addr, 16, fastpath::FILL_DEFINED, true, Some(any))
                    }
                };
                self.call(self.h.storev128, vec![addr, lo, hi, pc], Some(guard), false);
            }
            _ => panic!("memcheck: no shadow rule for stores of type {ty:?} yet"),
        }
    }

    /// Report "Use of uninitialised value of size N" if `a` is not fully defined; afterwards
    /// treat it as defined (one report per value).
    fn check_value(&mut self, a: Atom, size: u64) {
        let v = self.sh(a);
        if is_zero(v) || !self.cfg.undef_errors {
            return;
        }
        let t = self.ty(a);
        let m = self.pcast64(v, t);
        let cond = self.bin(Binop::CmpNE(Ty::I64), m, Atom::u64(0));
        match (&self.o, &self.cfg.origins) {
            (Some(o), Some(oh)) => {
                let args = vec![Atom::u64(size), Atom::u64(self.pc), o.of(a)];
                self.call(oh.value_error, args, Some(cond), false)
            }
            _ => self.call(self.h.value_error, vec![Atom::u64(size), Atom::u64(self.pc)], Some(cond), false),
        };
        if let Atom::Tmp(t) = a {
            self.shadow[t.0 as usize] = Some(zero(self.out.temp_ty(t)));
        }
    }

    fn check_cond(&mut self, g: Atom) {
        let v = self.sh(g);
        if is_zero(v) || !self.cfg.undef_errors {
            return;
        }
        match (&self.o, &self.cfg.origins) {
            (Some(o), Some(oh)) => self.call(oh.cond_error, vec![Atom::u64(self.pc), o.of(g)], Some(v), false),
            _ => self.call(self.h.cond_error, vec![Atom::u64(self.pc)], Some(v), false),
        };
        if let Atom::Tmp(t) = g {
            self.shadow[t.0 as usize] = Some(Atom::bool(false));
        }
    }

    fn stmt(&mut self, s: Stmt) {
        match &s {
            Stmt::IMark { addr, .. } => self.pc = *addr,
            Stmt::WrTmp { dst, e } => {
                self.track_sp(*dst, e);
                let ty = self.out.temp_ty(*dst);
                let v = self.expr(e, ty);
                self.shadow[dst.0 as usize] = Some(v);
            }
            Stmt::Put { off, val } => {
                let ss = self.cfg.state_size;
                if *off < ss {
                    if *off == self.cfg.sp_offset {
                        match self.hint_takes(*val) {
                            Some(dead) => self.hint_dead = dead,
                            None => {
                                let old = self.emit(Expr::Get { off: *off, ty: Ty::I64 });
                                self.sp_change(old, *val);
                            }
                        }
                        self.sp_moved(*val);
                    }
                    let v = self.sh(*val);
                    self.out.stmts.push(Stmt::Put { off: off + ss, val: v });
                }
            }
            Stmt::Store { addr, val } => {
                self.check_value(*addr, 8);
                let (v, ty) = (self.sh(*val), self.ty(*val));
                self.store(*addr, v, ty, None);
            }
            Stmt::Exit { guard, .. } => self.check_cond(*guard),
            Stmt::Cas { addr, expected, .. } => {
                self.check_value(*addr, 8);
                let ty = self.ty(*expected);
                let v = self.load(*addr, ty);
                if let Stmt::Cas { old, .. } = &s {
                    self.shadow[old.0 as usize] = Some(v);
                }
            }
            Stmt::Dirty(d) => self.dirty_pre(d),
            Stmt::AbiHint { base, len, nia } => self.abi_hint(*base, *len, *nia),
            Stmt::Fence(_) | Stmt::NoOp => {}
        }
        let post = match &s {
            Stmt::Cas { addr, expected, new, old } => Some((*addr, *expected, *new, *old)),
            _ => None,
        };
        let dirty = match &s {
            Stmt::Dirty(d) => Some((**d).clone()),
            _ => None,
        };
        if let Some(o) = self.o.as_mut() {
            o.pre(&mut self.out, &s, &self.shadow);
        }
        self.out.stmts.push(s);
        if let (Some(o), Some(cas @ Stmt::Cas { .. })) = (self.o.as_mut(), self.out.stmts.last()) {
            let cas = cas.clone();
            o.post(&mut self.out, &cas, &self.shadow);
        }
        if let Some((addr, expected, new, old)) = post {
            // The store happened iff the old value equalled the expected one.
            let ty = self.ty(expected);
            let ok = if ty == Ty::I128 {
                let (ol, oh) = (self.un(Unop::Trunc(Ty::I128, Ty::I64), Atom::Tmp(old)), self.un(Unop::Hi(Ty::I128), Atom::Tmp(old)));
                let (el, eh) = (self.un(Unop::Trunc(Ty::I128, Ty::I64), expected), self.un(Unop::Hi(Ty::I128), expected));
                let dl = self.bin(Binop::Xor(Ty::I64), ol, el);
                let dh = self.bin(Binop::Xor(Ty::I64), oh, eh);
                let d = self.bin(Binop::Or(Ty::I64), dl, dh);
                self.bin(Binop::CmpEQ(Ty::I64), d, Atom::u64(0))
            } else {
                self.bin(Binop::CmpEQ(ty), Atom::Tmp(old), expected)
            };
            let vn = self.sh(new);
            self.store(addr, vn, ty, Some(ok));
        }
        if let Some(d) = dirty {
            self.dirty_post(&d);
        }
    }

    /// The pessimistic undefinedness of everything a dirty helper reads, as an I64.
    fn dirty_inputs(&mut self, d: &Dirty) -> Atom {
        let mut vs: Vec<(Atom, Ty)> = d.args.iter().map(|a| (self.sh(*a), self.ty(*a))).collect();
        let ss = self.cfg.state_size;
        for &(off, len) in &d.reads_state {
            if off >= ss {
                continue;
            }
            for (o, t) in state_pieces(off, len) {
                let g = self.emit(Expr::Get { off: o + ss, ty: t });
                vs.push((g, t));
            }
        }
        if let Some((addr, len)) = d.reads_mem {
            let m = self.call(self.h.mem_vbits, vec![addr, Atom::u64(len as u64)], None, true).expect("dst");
            vs.push((m, Ty::I64));
        }
        self.lazy(&vs, Ty::I64)
    }

    fn dirty_pre(&mut self, d: &Dirty) {
        if let Some(g) = d.guard {
            self.check_cond(g);
        }
        if let Some((addr, _)) = d.reads_mem {
            self.check_value(addr, 8);
        }
        if let Some((addr, _)) = d.writes_mem {
            self.check_value(addr, 8);
        }
    }

    fn dirty_post(&mut self, d: &Dirty) {
        if d.dst.is_none() && d.writes_state.is_empty() && d.writes_mem.is_none() {
            return;
        }
        let m = self.dirty_inputs(d);
        if let Some(dst) = d.dst {
            let t = self.out.temp_ty(dst);
            let v = self.widen_or_zero(m, t);
            self.shadow[dst.0 as usize] = Some(v);
        }
        let ss = self.cfg.state_size;
        for &(off, len) in &d.writes_state {
            if off >= ss {
                continue;
            }
            for (o, t) in state_pieces(off, len) {
                let mut v = self.widen_or_zero(m, t);
                if let Some(g) = d.guard {
                    let old = self.emit(Expr::Get { off: o + ss, ty: t });
                    v = self.emit(Expr::Ite { cond: g, t: v, f: old });
                }
                self.out.stmts.push(Stmt::Put { off: o + ss, val: v });
            }
        }
        if let Some((addr, len)) = d.writes_mem {
            self.call(self.h.mem_set, vec![addr, Atom::u64(len as u64), m], d.guard, false);
        }
    }

    fn widen_or_zero(&mut self, m: Atom, t: Ty) -> Atom {
        if is_zero(m) { zero(t) } else { self.widen(m, t) }
    }
}

/// The values `v` that a `Put` gives the stack pointer and that a hint over the
/// [`fastpath::RED_ZONE`] bytes at `v - RED_ZONE` follows, with no side exit between (calls and
/// returns, as the front end lifts them). The optimiser may have rewritten the hint's base
/// from the old stack pointer (`old - 136` for a call's `old - 8`), so values are compared as
/// a root temp plus a constant.
fn hinted_sps(sb: &Superblock, sp_offset: u32) -> Vec<Temp> {
    let mut rel: Vec<Option<(Temp, i64)>> = vec![None; sb.temps.len()];
    let of = |rel: &[Option<(Temp, i64)>], t: Temp| rel[t.0 as usize].unwrap_or((t, 0));
    let mut put: Option<(Temp, (Temp, i64))> = None;
    let mut out = Vec::new();
    for s in &sb.stmts {
        match s {
            Stmt::WrTmp { dst, e: Expr::Binop { op: op @ (Binop::Add(Ty::I64) | Binop::Sub(Ty::I64)), a: Atom::Tmp(x), b: Atom::Const(Const::I64(c)) } } => {
                let (root, d) = of(&rel, *x);
                let c = if matches!(op, Binop::Add(_)) { *c as i64 } else { (*c as i64).wrapping_neg() };
                rel[dst.0 as usize] = Some((root, d.wrapping_add(c)));
            }
            Stmt::Put { off, val } if *off == sp_offset => put = val.as_temp().map(|v| (v, of(&rel, v))),
            Stmt::AbiHint { base: Atom::Tmp(b), len, .. } if *len as u64 == fastpath::RED_ZONE => {
                if let Some((v, (root, d))) = put.take()
                    && of(&rel, *b) == (root, d.wrapping_sub(fastpath::RED_ZONE as i64))
                {
                    out.push(v)
                }
            }
            Stmt::Exit { .. } => put = None,
            _ => {}
        }
    }
    out
}

/// The guest-state range `[off, off+len)` as aligned-size pieces: (offset, integer type of
/// 8, 4, 2 or 1 bytes), largest first.
fn state_pieces(off: u32, len: u32) -> impl Iterator<Item = (u32, Ty)> {
    let mut o = off;
    core::iter::from_fn(move || {
        (o < off + len).then(|| {
            let n = [8u32, 4, 2, 1].into_iter().find(|&n| o + n <= off + len).unwrap_or(1);
            let piece = (o, Ty::int_of_bytes(n));
            o += n;
            piece
        })
    })
}

/// Instrument `sb` for memcheck.
pub fn instrument(sb: Superblock, cfg: &Config, h: &Helpers) -> Superblock {
    let mut out = Superblock::new(sb.pc_offset);
    out.temps = sb.temps.clone();
    out.next = sb.next;
    out.jump = sb.jump;
    let n = sb.temps.len();
    let o = cfg.origins.as_ref().map(|oh| crate::origins::Origins::new(oh, cfg.state_size, n));
    let mut m = Mce { cfg, h, out, shadow: vec![None; n], pc: 0, sp_temps: vec![None; n], sp_cur: None, o, hinted: hinted_sps(&sb, cfg.sp_offset), hint_dead: 0 };
    for s in sb.stmts {
        m.stmt(s);
    }
    // The block's destination is an address: check it as Valgrind does for indirect jumps.
    if let Atom::Tmp(_) = sb.next {
        m.check_value(sb.next, 8);
    }
    m.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vg_amd64_guest::Amd64;
    use vg_core::arch::{CodeSource, GuestArch, LiftLimits};
    use vg_core::tool::vg_ir::opt::{OptConfig, optimise};

    struct Code(&'static [u8]);
    impl CodeSource for Code {
        fn code(&self, addr: u64, max: usize) -> &[u8] {
            let off = ((addr - 0x1000) as usize).min(self.0.len());
            &self.0[off..(off + max).min(self.0.len())]
        }
    }

    const SP_CHANGE: usize = 7;
    const STACK_UNINIT: usize = 10;

    fn helpers() -> Helpers {
        let c = |addr| Callee { name: "h", addr };
        Helpers {
            loadv: c(1),
            loadv_hi: c(2),
            storev: c(3),
            storev128: c(4),
            value_error: c(5),
            cond_error: c(6),
            sp_change: c(SP_CHANGE),
            mem_vbits: c(8),
            mem_set: c(9),
            make_stack_uninit: c(STACK_UNINIT),
            make_stack_uninit_o: c(11),
            tables: crate::shadow::ShadowMem::new().fast_tables(),
        }
    }

    /// The first `n` instructions at 0x1000 as the core translates them: lifted, optimised,
    /// instrumented.
    fn translate(code: &'static [u8], n: usize) -> Superblock {
        let sb = Amd64::lift(&Code(code), 0x1000, LiftLimits { max_insns: n, chase_jumps: false });
        let opt = OptConfig { pc_offset: Amd64::PC_OFFSET, sp_offset: Amd64::SP_OFFSET, fp_offset: Amd64::FP_OFFSET, state_size: Amd64::STATE_SIZE };
        let sb = optimise(sb, &opt);
        let cfg = Config { state_size: Amd64::STATE_SIZE, sp_offset: Amd64::SP_OFFSET, fp_offset: Amd64::FP_OFFSET, expensive_cmp: false, undef_errors: true, origins: None };
        instrument(sb, &cfg, &helpers())
    }

    #[test]
    fn pushes_and_pops_move_the_stack_inline() {
        // push rbx; push rbp; pop rbp; pop rbx: the optimiser folds the moves into constants
        // off one stack-pointer value; each still gets the inline marking (its helper call is
        // only the guarded fallback).
        let out = translate(&[0x53, 0x55, 0x5d, 0x5b], 4);
        let moves: Vec<bool> = (out.stmts.iter())
            .filter_map(|s| match s {
                Stmt::Dirty(d) if d.callee.addr == SP_CHANGE => Some(d.guard.is_some()),
                _ => None,
            })
            .collect();
        assert_eq!(moves, [true; 4], "{out}");
    }

    /// The helper calls (address, arguments) of the instruction at 0x1000 as the core
    /// translates it.
    fn helper_calls(code: &'static [u8]) -> Vec<(usize, Vec<Atom>)> {
        let out = translate(code, 1);
        out.stmts
            .iter()
            .filter_map(|s| match s {
                // Stores and address checks aside.
                Stmt::Dirty(d) if ![3, 5].contains(&d.callee.addr) => Some((d.callee.addr, d.args.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn calls_and_returns_mark_the_red_zone_in_place_of_the_stack_pointer_move() {
        // call rel32: the new stack word lies in the red zone the hint marks; no dead bytes.
        let calls = helper_calls(&[0xe8, 0xfb, 0x0f, 0x00, 0x00]);
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!((calls[0].0, &calls[0].1[1..]), (STACK_UNINIT, &[Atom::u64(128), Atom::u64(0)][..]));
        // ret: the popped return address's 8 bytes below the red zone die with it.
        let rets = helper_calls(&[0xc3]);
        assert_eq!(rets.iter().map(|c| c.0).collect::<Vec<_>>(), [1, STACK_UNINIT], "{rets:?}");
        assert_eq!(rets[1].1[1..], [Atom::u64(128), Atom::u64(8)]);
        // ret 16 pops 24 bytes: the move keeps its own marking.
        let rets = helper_calls(&[0xc2, 0x10, 0x00]);
        assert_eq!(rets.iter().map(|c| c.0).collect::<Vec<_>>(), [1, SP_CHANGE, STACK_UNINIT], "{rets:?}");
        assert_eq!(rets[2].1[1..], [Atom::u64(128), Atom::u64(0)]);
    }
}
