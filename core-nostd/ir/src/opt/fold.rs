//! Constant folding and algebraic simplification of one flat expression.
//!
//! Folding is exact: integer operations wrap at their type's width; division by zero, quotients
//! that do not fit, shifts by the width or more, Clz/Ctz of zero and all floating-point and
//! lane-wise arithmetic are left alone (their results are undefined, raise an exception, or
//! depend on rounding). Simplifications look through the definitions of operand temps (the IR
//! is flat, so `Trunc(Zext(x))` is two statements).

use crate::{Atom, Binop, Const, Expr, Stmt, Ty, Unop, VecOp};

/// What the simplifier may know about operands: their types and their defining expressions.
pub(super) struct Ctx<'a> {
    pub temps: &'a [Ty],
    /// Index into `stmts` of each temp's defining `WrTmp`, or `NO_DEF`.
    pub defs: &'a [u32],
    pub stmts: &'a [Stmt],
}

pub(super) const NO_DEF: u32 = u32::MAX;

impl Ctx<'_> {
    fn ty(&self, a: Atom) -> Ty {
        match a {
            Atom::Tmp(t) => self.temps[t.0 as usize],
            Atom::Const(c) => c.ty(),
        }
    }
    /// The expression that defined `a`, if `a` is a temp defined by a `WrTmp` already seen.
    fn def(&self, a: Atom) -> Option<&Expr> {
        let t = a.as_temp()?;
        let i = *self.defs.get(t.0 as usize)?;
        match self.stmts.get(i as usize)? {
            Stmt::WrTmp { e, .. } => Some(e),
            _ => None,
        }
    }
}

/// `v`'s low `bits` bits, sign-extended.
fn sext(v: u64, bits: u32) -> i64 {
    let sh = 64 - bits.min(64);
    ((v << sh) as i64) >> sh
}

/// The constant of integer type `t` (up to I128) holding the low bits of `v`.
fn int128(t: Ty, v: u128) -> Const {
    match t {
        Ty::I128 => Const::I128(v),
        t => Const::int(t, v as u64),
    }
}

/// Integer types the folder handles with 64-bit arithmetic.
fn small_int(t: Ty) -> bool {
    t.is_int()
}

/// Integer types that have a double-width partner (for widening multiply, divide, concat).
fn halvable(t: Ty) -> bool {
    matches!(t, Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64)
}

/// Fold a unary operation on a constant; `None` if not exactly foldable.
pub(crate) fn fold_unop(op: Unop, a: Const) -> Option<Const> {
    use Unop::*;
    let v = a.bits();
    Some(match op {
        Not(Ty::V128) => Const::V128(!a.bits128()),
        Not(t) if small_int(t) => Const::int(t, !v),
        Neg(t) if small_int(t) => Const::int(t, v.wrapping_neg()),
        Zext(f, t) if small_int(f) && (small_int(t) || t == Ty::I128) => {
            int128(t, (v & f.mask()) as u128)
        }
        Sext(f, t) if small_int(f) && (small_int(t) || t == Ty::I128) => {
            int128(t, sext(v, f.bits()) as i128 as u128)
        }
        Trunc(_, t) if small_int(t) => Const::int(t, v),
        Hi(Ty::I128) => Const::I64((a.bits128() >> 64) as u64),
        Hi(t) if halvable(t) && t != Ty::I8 => Const::int(op.result_ty(), v >> (t.bits() / 2)),
        Clz(t) if small_int(t) && v & t.mask() != 0 => {
            Const::int(t, ((v & t.mask()).leading_zeros() - (64 - t.bits())) as u64)
        }
        Ctz(t) if small_int(t) && v & t.mask() != 0 => {
            Const::int(t, (v & t.mask()).trailing_zeros() as u64)
        }
        Popcnt(t) if small_int(t) => Const::int(t, (v & t.mask()).count_ones() as u64),
        Bswap(Ty::I16) => Const::I16((v as u16).swap_bytes()),
        Bswap(Ty::I32) => Const::I32((v as u32).swap_bytes()),
        Bswap(Ty::I64) => Const::I64(v.swap_bytes()),
        Reinterp(f, t) if f.bytes() == t.bytes() && t.bytes() <= 8 => Const::int(t, v),
        V128to64 => Const::I64(a.bits128() as u64),
        V128HIto64 => Const::I64((a.bits128() >> 64) as u64),
        V128to32 => Const::I32(a.bits128() as u32),
        I64UtoV128 => Const::V128(v as u128),
        I32UtoV128 => Const::V128(v as u32 as u128),
        _ => return None,
    })
}

/// Fold a binary operation on constants; `None` if not exactly foldable.
pub(crate) fn fold_binop(op: Binop, a: Const, b: Const) -> Option<Const> {
    use Binop::*;
    let (x, y) = (a.bits(), b.bits());
    Some(match op {
        Add(t) if small_int(t) => Const::int(t, x.wrapping_add(y)),
        Sub(t) if small_int(t) => Const::int(t, x.wrapping_sub(y)),
        Mul(t) if small_int(t) => Const::int(t, x.wrapping_mul(y)),
        And(t) if small_int(t) => Const::int(t, x & y),
        Or(t) if small_int(t) => Const::int(t, x | y),
        Xor(t) if small_int(t) => Const::int(t, x ^ y),
        Shl(t) if small_int(t) && y < t.bits() as u64 => Const::int(t, x << y),
        Shr(t) if small_int(t) && y < t.bits() as u64 => Const::int(t, (x & t.mask()) >> y),
        Sar(t) if small_int(t) && y < t.bits() as u64 => {
            Const::int(t, (sext(x, t.bits()) >> y) as u64)
        }
        CmpEQ(t) if small_int(t) => Const::I1(x & t.mask() == y & t.mask()),
        CmpNE(t) if small_int(t) => Const::I1(x & t.mask() != y & t.mask()),
        CmpLTU(t) if small_int(t) => Const::I1(x & t.mask() < y & t.mask()),
        CmpLEU(t) if small_int(t) => Const::I1(x & t.mask() <= y & t.mask()),
        CmpLTS(t) if small_int(t) => Const::I1(sext(x, t.bits()) < sext(y, t.bits())),
        CmpLES(t) if small_int(t) => Const::I1(sext(x, t.bits()) <= sext(y, t.bits())),
        MullU(t) if halvable(t) => int128(
            t.double(),
            ((x & t.mask()) as u128) * ((y & t.mask()) as u128),
        ),
        MullS(t) if halvable(t) => int128(
            t.double(),
            (sext(x, t.bits()) as i128 * sext(y, t.bits()) as i128) as u128,
        ),
        DivModU(t) if halvable(t) => {
            let n = a.bits128();
            let d = (y & t.mask()) as u128;
            if d == 0 {
                return None;
            }
            let (q, r) = (n / d, n % d);
            if q > t.mask() as u128 {
                return None;
            }
            int128(t.double(), (r << t.bits()) | q)
        }
        DivModS(t) if halvable(t) => {
            let w = 2 * t.bits();
            let n = ((a.bits128() << (128 - w)) as i128) >> (128 - w);
            let d = sext(y, t.bits()) as i128;
            let q = n.checked_div(d)?;
            let r = n.checked_rem(d)?;
            let half = 1i128 << (t.bits() - 1);
            if q < -half || q >= half {
                return None;
            }
            let m = t.mask() as u128;
            int128(t.double(), ((r as u128 & m) << t.bits()) | (q as u128 & m))
        }
        HiLo(t) if halvable(t) => int128(
            t.double(),
            (((x & t.mask()) as u128) << t.bits()) | (y & t.mask()) as u128,
        ),
        HiLo64toV128 => Const::V128(((x as u128) << 64) | y as u128),
        SetV128lo64 => Const::V128((a.bits128() & !(u64::MAX as u128)) | y as u128),
        SetV128lo32 => Const::V128((a.bits128() & !(u32::MAX as u128)) | (y as u32) as u128),
        Vec2(VecOp::And) => Const::V128(a.bits128() & b.bits128()),
        Vec2(VecOp::Or) => Const::V128(a.bits128() | b.bits128()),
        Vec2(VecOp::Xor) => Const::V128(a.bits128() ^ b.bits128()),
        Vec2(VecOp::AndNot) => Const::V128(!a.bits128() & b.bits128()),
        _ => return None,
    })
}

fn atom(c: Const) -> Expr {
    Expr::Atom(Atom::Const(c))
}

/// Whether `a` is the integer constant `v` (compared at `a`'s width).
fn is_const(a: Atom, v: u64) -> bool {
    match a {
        Atom::Const(c) if c.ty().is_int() => c.bits() == v & c.ty().mask(),
        _ => false,
    }
}

fn commutative(op: Binop) -> bool {
    use Binop::*;
    matches!(
        op,
        Add(_) | Mul(_) | And(_) | Or(_) | Xor(_) | CmpEQ(_) | CmpNE(_) | MullS(_) | MullU(_)
    )
}

/// One simplification step of `e`: a cheaper equivalent expression, or `None` if none is known.
/// Callers repeat until `None` (each step makes the expression strictly simpler or canonical).
pub(super) fn simplify(e: &Expr, cx: &Ctx) -> Option<Expr> {
    match *e {
        Expr::Unop { op, a } => match a {
            Atom::Const(c) => fold_unop(op, c).map(atom),
            Atom::Tmp(_) => simplify_unop(op, a, cx),
        },
        Expr::Binop { op, a, b } => {
            if let (Atom::Const(x), Atom::Const(y)) = (a, b)
                && let Some(c) = fold_binop(op, x, y)
            {
                return Some(atom(c));
            }
            simplify_binop(op, a, b, cx)
        }
        Expr::Ite { cond, t, f } => match cond {
            Atom::Const(c) => Some(Expr::Atom(if c.bits() & 1 != 0 { t } else { f })),
            _ if t == f => Some(Expr::Atom(t)),
            _ if t == Atom::bool(true) && f == Atom::bool(false) => Some(Expr::Atom(cond)),
            _ if t == Atom::bool(false) && f == Atom::bool(true) => Some(Expr::Unop {
                op: Unop::Not(Ty::I1),
                a: cond,
            }),
            _ => None,
        },
        _ => None,
    }
}

fn simplify_unop(op: Unop, a: Atom, cx: &Ctx) -> Option<Expr> {
    use Unop::*;
    let Some(&Expr::Unop { op: inner, a: x }) = cx.def(a) else {
        return simplify_unop_of_binop(op, a, cx);
    };
    let un = |op, a| Some(Expr::Unop { op, a });
    match (op, inner) {
        (Not(t), Not(u)) | (Neg(t), Neg(u)) if t == u => Some(Expr::Atom(x)),
        (Zext(m, hi), Zext(lo, m2)) if m == m2 => un(Zext(lo, hi), x),
        (Sext(m, hi), Sext(lo, m2)) if m == m2 => un(Sext(lo, hi), x),
        // The narrower value was zero-extended, so its sign bit at width `m` is clear.
        (Sext(m, hi), Zext(lo, m2)) if m == m2 => un(Zext(lo, hi), x),
        (Trunc(m, lo), Trunc(hi, m2)) if m == m2 => un(Trunc(hi, lo), x),
        (Trunc(m, to), Zext(from, m2) | Sext(from, m2)) if m == m2 => {
            if to == from {
                Some(Expr::Atom(x))
            } else if to.bits() < from.bits() {
                un(Trunc(from, to), x)
            } else if matches!(inner, Zext(..)) {
                un(Zext(from, to), x)
            } else {
                un(Sext(from, to), x)
            }
        }
        (Zext(m, wide), Trunc(wide2, m2)) if m == m2 && wide == wide2 && small_int(wide) => {
            Some(Expr::Binop {
                op: Binop::And(wide),
                a: x,
                b: Atom::Const(Const::int(wide, m.mask())),
            })
        }
        (V128to64, I64UtoV128) | (V128to32, I32UtoV128) => Some(Expr::Atom(x)),
        (Reinterp(f, t), Reinterp(f2, t2)) if f == t2 && t == f2 => Some(Expr::Atom(x)),
        _ => None,
    }
}

/// Unary operations that pick a half of a concatenation, and negated comparisons.
fn simplify_unop_of_binop(op: Unop, a: Atom, cx: &Ctx) -> Option<Expr> {
    use Binop::*;
    let Some(&Expr::Binop {
        op: inner,
        a: hi,
        b: lo,
    }) = cx.def(a)
    else {
        return None;
    };
    let cmp = |op, a, b| Some(Expr::Binop { op, a, b });
    match (op, inner) {
        // The back end then branches on one compare (jae for `!(a <u b)`).
        (Unop::Not(Ty::I1), CmpEQ(t)) => cmp(CmpNE(t), hi, lo),
        (Unop::Not(Ty::I1), CmpNE(t)) => cmp(CmpEQ(t), hi, lo),
        (Unop::Not(Ty::I1), CmpLTU(t)) => cmp(CmpLEU(t), lo, hi),
        (Unop::Not(Ty::I1), CmpLEU(t)) => cmp(CmpLTU(t), lo, hi),
        (Unop::Not(Ty::I1), CmpLTS(t)) => cmp(CmpLES(t), lo, hi),
        (Unop::Not(Ty::I1), CmpLES(t)) => cmp(CmpLTS(t), lo, hi),
        (Unop::Trunc(w, t), Binop::HiLo(h)) if h == t && t.double() == w => Some(Expr::Atom(lo)),
        (Unop::Hi(w), Binop::HiLo(h)) if h.double() == w => Some(Expr::Atom(hi)),
        (Unop::V128to64, Binop::HiLo64toV128) => Some(Expr::Atom(lo)),
        (Unop::V128HIto64, Binop::HiLo64toV128) => Some(Expr::Atom(hi)),
        _ => None,
    }
}

fn simplify_binop(op: Binop, a: Atom, b: Atom, cx: &Ctx) -> Option<Expr> {
    use Binop::*;
    // Constants go right, so the rules below and CSE see one form.
    if commutative(op) && a.as_const().is_some() && b.as_temp().is_some() {
        return Some(Expr::Binop { op, a: b, b: a });
    }
    let t = cx.ty(a);
    let int = small_int(t);
    let zero = || Some(atom(Const::int(t, 0)));
    let same = || Some(Expr::Atom(a));
    let bool_ = |v| Some(atom(Const::I1(v)));
    match op {
        Add(_) | Sub(_) | Or(_) | Xor(_) | Shl(_) | Shr(_) | Sar(_) if int && is_const(b, 0) => {
            same()
        }
        Shl(_) | Shr(_) | Sar(_) if int && is_const(a, 0) => zero(),
        Sub(_) | Xor(_) if int && a == b => zero(),
        And(_) | Or(_) if int && a == b => same(),
        And(_) | Mul(_) if int && is_const(b, 0) => zero(),
        And(_) if int && is_const(b, u64::MAX) => same(),
        Or(_) if int && is_const(b, u64::MAX) => Some(Expr::Atom(b)),
        Mul(_) if int && is_const(b, 1) => same(),
        Xor(Ty::I1) if is_const(b, 1) => Some(Expr::Unop {
            op: Unop::Not(Ty::I1),
            a,
        }),
        Add(_) | Sub(_) if int && b.as_const().is_some() => reassociate(op, a, b, t, cx),
        CmpEQ(_) | CmpLEU(_) | CmpLES(_) if int && a == b => bool_(true),
        CmpNE(_) | CmpLTU(_) | CmpLTS(_) if int && a == b => bool_(false),
        CmpLTU(_) if int && is_const(b, 0) => bool_(false),
        CmpLEU(_) if int && is_const(a, 0) => bool_(true),
        // `Zext1(c) != 0` and `Sext1(c) != 0` are `c`; `== 0`, `!c`.
        CmpNE(_) | CmpEQ(_) if int && is_const(b, 0) => match cx.def(a) {
            Some(&Expr::Unop {
                op: Unop::Zext(Ty::I1, _) | Unop::Sext(Ty::I1, _),
                a: c,
            }) => Some(if matches!(op, CmpNE(_)) {
                Expr::Atom(c)
            } else {
                Expr::Unop {
                    op: Unop::Not(Ty::I1),
                    a: c,
                }
            }),
            _ => None,
        },
        Vec2(VecOp::Xor | VecOp::AndNot | VecOp::Sub8x16 | VecOp::Sub16x8 | VecOp::Sub32x4)
        | Vec2(VecOp::Sub64x2)
            if a == b =>
        {
            Some(atom(Const::V128(0)))
        }
        Vec2(VecOp::And | VecOp::Or) if a == b => same(),
        Vec2(VecOp::CmpEQ8x16 | VecOp::CmpEQ16x8 | VecOp::CmpEQ32x4) if a == b => {
            Some(atom(Const::V128(u128::MAX)))
        }
        _ => None,
    }
}

/// `(x ± c1) ± c2` -> `x ± c` (or `x` when the constants cancel).
fn reassociate(op: Binop, a: Atom, b: Atom, t: Ty, cx: &Ctx) -> Option<Expr> {
    let Some(&Expr::Binop {
        op: inner,
        a: x,
        b: Atom::Const(c1),
    }) = cx.def(a)
    else {
        return None;
    };
    let c2 = b.as_const()?.bits();
    let signed = |op: Binop, c: u64| match op {
        Binop::Add(u) if u == t => Some(c),
        Binop::Sub(u) if u == t => Some(c.wrapping_neg()),
        _ => None,
    };
    let sum = signed(inner, c1.bits())?.wrapping_add(signed(op, c2)?) & t.mask();
    if sum == 0 {
        return Some(Expr::Atom(x));
    }
    Some(if matches!((inner, op), (Binop::Sub(_), Binop::Sub(_))) {
        Expr::Binop {
            op,
            a: x,
            b: Atom::Const(Const::int(t, sum.wrapping_neg())),
        }
    } else {
        Expr::Binop {
            op: Binop::Add(t),
            a: x,
            b: Atom::Const(Const::int(t, sum)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ty::*;

    fn bu(op: Binop, a: Const, b: Const) -> Option<u128> {
        fold_binop(op, a, b).map(|c| c.bits128())
    }

    #[test]
    fn integer_folding_wraps_at_width() {
        assert_eq!(bu(Binop::Add(I8), Const::I8(0xff), Const::I8(2)), Some(1));
        assert_eq!(
            bu(Binop::Sub(I32), Const::I32(0), Const::I32(1)),
            Some(0xffff_ffff)
        );
        assert_eq!(
            bu(Binop::Mul(I16), Const::I16(0x100), Const::I16(0x100)),
            Some(0)
        );
        assert_eq!(
            bu(Binop::Shl(I32), Const::I32(1), Const::I8(31)),
            Some(0x8000_0000)
        );
        assert_eq!(
            bu(Binop::Sar(I8), Const::I8(0x80), Const::I8(7)),
            Some(0xff)
        );
        assert_eq!(bu(Binop::Shr(I8), Const::I8(0x80), Const::I8(7)), Some(1));
        assert_eq!(
            bu(Binop::CmpLTS(I8), Const::I8(0x80), Const::I8(1)),
            Some(1)
        );
        assert_eq!(
            bu(Binop::CmpLTU(I8), Const::I8(0x80), Const::I8(1)),
            Some(0)
        );
        assert_eq!(
            bu(
                Binop::CmpLES(I64),
                Const::I64(u64::MAX),
                Const::I64(u64::MAX)
            ),
            Some(1)
        );
        assert_eq!(
            bu(Binop::MullS(I8), Const::I8(0xff), Const::I8(2)),
            Some(0xfffe)
        );
        assert_eq!(
            bu(Binop::MullU(I64), Const::I64(u64::MAX), Const::I64(2)),
            Some((u64::MAX as u128) * 2)
        );
        assert_eq!(
            bu(Binop::HiLo(I32), Const::I32(1), Const::I32(2)),
            Some(0x1_0000_0002)
        );
        assert_eq!(
            fold_binop(Binop::Xor(I1), Const::I1(true), Const::I1(true)),
            Some(Const::I1(false))
        );
    }

    #[test]
    fn unsafe_folds_are_refused() {
        assert_eq!(bu(Binop::Shl(I32), Const::I32(1), Const::I8(32)), None);
        assert_eq!(bu(Binop::Sar(I64), Const::I64(1), Const::I8(64)), None);
        assert_eq!(bu(Binop::DivModU(I32), Const::I64(10), Const::I32(0)), None);
        // Quotient 0x1_0000_0000 does not fit in 32 bits (#DE on the real CPU).
        assert_eq!(
            bu(Binop::DivModU(I32), Const::I64(1 << 33), Const::I32(2)),
            None
        );
        // i64::MIN / -1 overflows.
        assert_eq!(
            bu(
                Binop::DivModS(I64),
                Const::I128(i64::MIN as i128 as u128),
                Const::I64(u64::MAX)
            ),
            None
        );
        assert_eq!(fold_unop(Unop::Clz(I64), Const::I64(0)), None);
        assert_eq!(bu(Binop::AddF(F64), Const::F64(0), Const::F64(0)), None);
        assert_eq!(
            bu(Binop::Vec2(VecOp::Add8x16), Const::V128(1), Const::V128(1)),
            None
        );
    }

    #[test]
    fn division_folds_exactly() {
        // 100 / 7 = 14 rem 2, result is rem:quot.
        assert_eq!(
            bu(Binop::DivModU(I32), Const::I64(100), Const::I32(7)),
            Some((2 << 32) | 14)
        );
        // -7 / 2 = -3 rem -1 (truncating).
        let r = bu(Binop::DivModS(I32), Const::I64(-7i64 as u64), Const::I32(2)).unwrap();
        assert_eq!(r, 0xffff_ffff_ffff_fffd);
        let r = bu(Binop::DivModU(I64), Const::I128(1u128 << 64), Const::I64(2)).unwrap();
        assert_eq!(r, 1 << 63);
    }

    #[test]
    fn unary_folding() {
        let f = |op, c| fold_unop(op, c);
        assert_eq!(
            f(Unop::Sext(I8, I64), Const::I8(0x80)),
            Some(Const::I64(0xffff_ffff_ffff_ff80))
        );
        assert_eq!(
            f(Unop::Sext(I1, I32), Const::I1(true)),
            Some(Const::I32(u32::MAX))
        );
        assert_eq!(
            f(Unop::Zext(I32, I128), Const::I32(5)),
            Some(Const::I128(5))
        );
        assert_eq!(
            f(Unop::Sext(I64, I128), Const::I64(u64::MAX)),
            Some(Const::I128(u128::MAX))
        );
        assert_eq!(
            f(Unop::Trunc(I64, I1), Const::I64(3)),
            Some(Const::I1(true))
        );
        assert_eq!(
            f(Unop::Trunc(I128, I64), Const::I128(7 | (1 << 70))),
            Some(Const::I64(7))
        );
        assert_eq!(f(Unop::Hi(I128), Const::I128(7 << 64)), Some(Const::I64(7)));
        assert_eq!(
            f(Unop::Hi(I64), Const::I64(0x1234_0000_0000)),
            Some(Const::I32(0x1234))
        );
        assert_eq!(f(Unop::Clz(I32), Const::I32(1)), Some(Const::I32(31)));
        assert_eq!(f(Unop::Ctz(I64), Const::I64(8)), Some(Const::I64(3)));
        assert_eq!(f(Unop::Popcnt(I32), Const::I32(0xf0f)), Some(Const::I32(8)));
        assert_eq!(
            f(Unop::Bswap(I32), Const::I32(0x1122_3344)),
            Some(Const::I32(0x4433_2211))
        );
        assert_eq!(f(Unop::Neg(I8), Const::I8(1)), Some(Const::I8(0xff)));
        assert_eq!(f(Unop::Not(I1), Const::I1(false)), Some(Const::I1(true)));
        assert_eq!(
            f(Unop::Reinterp(F64, I64), Const::F64(42)),
            Some(Const::I64(42))
        );
        assert_eq!(f(Unop::SqrtF64, Const::F64(0)), None);
        assert_eq!(f(Unop::I64UtoV128, Const::I64(9)), Some(Const::V128(9)));
    }
}
