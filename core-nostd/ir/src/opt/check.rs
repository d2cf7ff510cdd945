//! The IR sanity checker: single assignment, definition before use, and operand types of every
//! operation. Run on front-end output in debug builds and tests; the optimiser asserts it keeps
//! well-typed blocks well-typed.

use alloc::format;
use alloc::string::String;
use alloc::vec;

use crate::{Atom, Binop, Expr, Stmt, Superblock, Ty, Unop, VecOp};

/// Check `sb`; the error names the first offending statement (by index) and what is wrong.
pub fn typecheck(sb: &Superblock) -> Result<(), String> {
    let mut defined = vec![false; sb.temps.len()];
    for (i, s) in sb.stmts.iter().enumerate() {
        check_stmt(sb, s, &defined).map_err(|e| format!("stmt {i} `{s}`: {e}"))?;
        if let Some(t) = s.defined_temp() {
            let slot = defined
                .get_mut(t.0 as usize)
                .ok_or_else(|| format!("stmt {i} `{s}`: t{} has no type", t.0))?;
            if *slot {
                return Err(format!("stmt {i} `{s}`: t{} defined twice", t.0));
            }
            *slot = true;
        }
    }
    let next = ty_of(sb, &defined, sb.next).map_err(|e| format!("block end: {e}"))?;
    expect("block end", next, Ty::I64)
}

/// The type of an atom whose temp (if any) is defined.
fn ty_of(sb: &Superblock, defined: &[bool], a: Atom) -> Result<Ty, String> {
    match a {
        Atom::Const(c) => Ok(c.ty()),
        Atom::Tmp(t) => match defined.get(t.0 as usize) {
            Some(true) => Ok(sb.temps[t.0 as usize]),
            Some(false) => Err(format!("t{} used before its definition", t.0)),
            None => Err(format!("t{} has no type", t.0)),
        },
    }
}

fn expect(what: &str, got: Ty, want: Ty) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what} is {got}, expected {want}"))
    }
}

/// Types a helper may take or return in an integer register.
fn reg_int(t: Ty) -> bool {
    matches!(t, Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64)
}

/// Types that may be stored in the guest state or memory (I1 has no byte layout).
fn storable(t: Ty) -> bool {
    t != Ty::I1
}

fn check_stmt(sb: &Superblock, s: &Stmt, defined: &[bool]) -> Result<(), String> {
    let ty = |a: Atom| ty_of(sb, defined, a);
    match s {
        Stmt::IMark { .. } | Stmt::Fence(_) | Stmt::NoOp => Ok(()),
        Stmt::Put { val, .. } => {
            let t = ty(*val)?;
            if storable(t) {
                Ok(())
            } else {
                Err(format!("cannot PUT a value of type {t}"))
            }
        }
        Stmt::Store { addr, val } => {
            expect("address", ty(*addr)?, Ty::I64)?;
            let t = ty(*val)?;
            if storable(t) {
                Ok(())
            } else {
                Err(format!("cannot store a value of type {t}"))
            }
        }
        Stmt::WrTmp { dst, e } => {
            let got = check_expr(sb, e, defined)?;
            let want = *sb
                .temps
                .get(dst.0 as usize)
                .ok_or_else(|| format!("t{} has no type", dst.0))?;
            expect("result", got, want)
        }
        Stmt::Exit { guard, .. } => expect("guard", ty(*guard)?, Ty::I1),
        Stmt::Dirty(d) => {
            if let Some(g) = d.guard {
                expect("guard", ty(g)?, Ty::I1)?;
            }
            let max_args = if d.pass_state { 5 } else { 6 };
            if d.args.len() > max_args {
                return Err(format!(
                    "{} arguments, at most {max_args} fit in registers",
                    d.args.len()
                ));
            }
            for a in &d.args {
                let t = ty(*a)?;
                if !reg_int(t) {
                    return Err(format!("helper argument of type {t}"));
                }
            }
            for (a, _) in d.reads_mem.iter().chain(d.writes_mem.iter()) {
                expect("memory effect address", ty(*a)?, Ty::I64)?;
            }
            match d.dst.map(|t| sb.temps.get(t.0 as usize)) {
                Some(None) => Err("result temp has no type".into()),
                Some(Some(&t)) if !reg_int(t) => Err(format!("helper result of type {t}")),
                _ => Ok(()),
            }
        }
        Stmt::Cas {
            addr,
            expected,
            new,
            old,
        } => {
            expect("address", ty(*addr)?, Ty::I64)?;
            let t = *sb
                .temps
                .get(old.0 as usize)
                .ok_or_else(|| format!("t{} has no type", old.0))?;
            if !reg_int(t) && t != Ty::I128 {
                return Err(format!("CAS of type {t}"));
            }
            expect("expected value", ty(*expected)?, t)?;
            expect("new value", ty(*new)?, t)
        }
        Stmt::AbiHint { base, nia, .. } => {
            expect("hint base", ty(*base)?, Ty::I64)?;
            expect("hint next address", ty(*nia)?, Ty::I64)
        }
    }
}

fn check_expr(sb: &Superblock, e: &Expr, defined: &[bool]) -> Result<Ty, String> {
    let ty = |a: Atom| ty_of(sb, defined, a);
    match e {
        Expr::Atom(a) => ty(*a),
        Expr::Get { ty: t, .. } => {
            if storable(*t) {
                Ok(*t)
            } else {
                Err(format!("cannot GET a value of type {t}"))
            }
        }
        Expr::Load { ty: t, addr } => {
            expect("address", ty(*addr)?, Ty::I64)?;
            if storable(*t) {
                Ok(*t)
            } else {
                Err(format!("cannot load a value of type {t}"))
            }
        }
        Expr::Unop { op, a } => {
            let want = unop_arg(*op)?;
            expect(&format!("operand of {op}"), ty(*a)?, want)?;
            Ok(op.result_ty())
        }
        Expr::Binop { op, a, b } => {
            let (wa, wb) = binop_args(*op)?;
            expect(&format!("first operand of {op}"), ty(*a)?, wa)?;
            expect(&format!("second operand of {op}"), ty(*b)?, wb)?;
            Ok(op.result_ty())
        }
        Expr::Ite { cond, t, f } => {
            expect("ITE condition", ty(*cond)?, Ty::I1)?;
            let tt = ty(*t)?;
            expect("ITE else-value", ty(*f)?, tt)?;
            Ok(tt)
        }
        Expr::CCall { callee, ret, args } => {
            if args.len() > 6 {
                return Err(format!(
                    "{}: {} arguments, at most 6",
                    callee.name,
                    args.len()
                ));
            }
            for a in args {
                let t = ty(*a)?;
                if !reg_int(t) {
                    return Err(format!("{}: argument of type {t}", callee.name));
                }
            }
            if reg_int(*ret) {
                Ok(*ret)
            } else {
                Err(format!("{}: returns {ret}", callee.name))
            }
        }
    }
}

fn int(t: Ty) -> bool {
    t.is_int()
}

fn float(t: Ty) -> bool {
    matches!(t, Ty::F32 | Ty::F64)
}

/// The operand type a unary operation takes, after checking the operation itself is well formed.
fn unop_arg(op: Unop) -> Result<Ty, String> {
    use Unop::*;
    let ok = |cond: bool, t: Ty| {
        if cond {
            Ok(t)
        } else {
            Err(format!("ill-formed operation {op}"))
        }
    };
    match op {
        Not(t) => ok(int(t) || t == Ty::V128, t),
        Neg(t) => ok(int(t), t),
        Zext(f, t) | Sext(f, t) => ok(
            int(f) && (int(t) || t == Ty::I128) && f.bits() < t.bits(),
            f,
        ),
        Trunc(f, t) => ok(
            (int(f) || f == Ty::I128) && int(t) && t.bits() < f.bits(),
            f,
        ),
        Hi(t) => ok(matches!(t, Ty::I16 | Ty::I32 | Ty::I64 | Ty::I128), t),
        Clz(t) | Ctz(t) | Popcnt(t) => ok(matches!(t, Ty::I32 | Ty::I64), t),
        Bswap(t) => ok(matches!(t, Ty::I16 | Ty::I32 | Ty::I64), t),
        Reinterp(f, t) => ok(
            f.bytes() == t.bytes() && float(f) != float(t) && (int(f) || float(f)),
            f,
        ),
        IntSToF(f, t) => ok(matches!(f, Ty::I32 | Ty::I64) && float(t), f),
        FToIntSTrunc(f, t) | FToIntSNearest(f, t) => {
            ok(float(f) && matches!(t, Ty::I32 | Ty::I64), f)
        }
        F32toF64 | SqrtF32 => Ok(Ty::F32),
        F64toF32 | SqrtF64 | NegF64 | AbsF64 => Ok(Ty::F64),
        V128to64 | V128HIto64 | V128to32 | Vec1(_) | GetMSBs8x16 | ShufImm(..) => Ok(Ty::V128),
        I64UtoV128 => Ok(Ty::I64),
        I32UtoV128 => Ok(Ty::I32),
    }
}

/// The operand types a binary operation takes.
fn binop_args(op: Binop) -> Result<(Ty, Ty), String> {
    use Binop::*;
    let ok = |cond: bool, a: Ty, b: Ty| {
        if cond {
            Ok((a, b))
        } else {
            Err(format!("ill-formed operation {op}"))
        }
    };
    match op {
        Add(t) | Sub(t) | Mul(t) | And(t) | Or(t) | Xor(t) => ok(int(t), t, t),
        CmpEQ(t) | CmpNE(t) | CmpLTS(t) | CmpLES(t) | CmpLTU(t) | CmpLEU(t) => ok(int(t), t, t),
        Shl(t) | Shr(t) | Sar(t) => ok(int(t) && t != Ty::I1, t, Ty::I8),
        MullS(t) | MullU(t) | HiLo(t) => {
            ok(matches!(t, Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64), t, t)
        }
        DivModU(t) | DivModS(t) => ok(
            matches!(t, Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64),
            t.double(),
            t,
        ),
        AddF(t) | SubF(t) | MulF(t) | DivF(t) | MinF(t) | MaxF(t) | CmpF(t) => ok(float(t), t, t),
        HiLo64toV128 => Ok((Ty::I64, Ty::I64)),
        SetV128lo64 => Ok((Ty::V128, Ty::I64)),
        SetV128lo32 => Ok((Ty::V128, Ty::I32)),
        Vec2(v) => ok(!is_shift(v) && !is_fma(v), Ty::V128, Ty::V128),
        VecShift(v) => ok(is_shift(v), Ty::V128, Ty::I8),
        V128HLtoV256 => Ok((Ty::V128, Ty::V128)),
        Fma(v) => ok(is_fma(v), Ty::V256, Ty::V128),
    }
}

fn is_fma(v: VecOp) -> bool {
    matches!(v, VecOp::Fma32Fx4(_) | VecOp::Fma64Fx2(_))
}

fn is_shift(v: VecOp) -> bool {
    use VecOp::*;
    matches!(
        v,
        Shl16x8
            | Shl32x4
            | Shl64x2
            | Shr16x8
            | Shr32x4
            | Shr64x2
            | Sar16x8
            | Sar32x4
            | ShlBytes
            | ShrBytes
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Const, JumpKind, Temp};

    #[test]
    fn accepts_a_well_typed_block() {
        let mut sb = Superblock::new(128);
        sb.imark(0x1000, 4);
        let a = sb.get(0, Ty::I64);
        let b = sb.binop(Binop::Shl(Ty::I64), a, Atom::u8(3));
        let c = sb.binop(Binop::CmpEQ(Ty::I64), b, Atom::u64(0));
        sb.exit(c, 0x2000, JumpKind::Boring);
        let w = sb.binop(Binop::MullU(Ty::I64), a, b);
        let d = sb.binop(Binop::DivModU(Ty::I64), w, Atom::u64(3));
        let lo = sb.unop(Unop::Trunc(Ty::I128, Ty::I64), d);
        sb.store(lo, a);
        sb.next = lo;
        assert_eq!(typecheck(&sb), Ok(()));
    }

    #[test]
    fn rejects_errors() {
        let mut sb = Superblock::new(128);
        let a = sb.get(0, Ty::I64);
        sb.binop(Binop::Shl(Ty::I64), a, Atom::u64(3));
        let e = typecheck(&sb).unwrap_err();
        assert!(
            e.contains("stmt 1") && e.contains("second operand of Shl64 is I64, expected I8"),
            "{e}"
        );

        let mut sb = Superblock::new(128);
        let t = sb.new_temp(Ty::I64);
        sb.put(0, Atom::Tmp(t));
        sb.stmts.push(Stmt::WrTmp {
            dst: t,
            e: Expr::Atom(Atom::u64(1)),
        });
        assert!(
            typecheck(&sb)
                .unwrap_err()
                .contains("t0 used before its definition")
        );

        let mut sb = Superblock::new(128);
        let t = sb.new_temp(Ty::I64);
        sb.stmts.push(Stmt::WrTmp {
            dst: t,
            e: Expr::Atom(Atom::u64(1)),
        });
        sb.stmts.push(Stmt::WrTmp {
            dst: t,
            e: Expr::Atom(Atom::u64(2)),
        });
        assert!(typecheck(&sb).unwrap_err().contains("t0 defined twice"));

        let mut sb = Superblock::new(128);
        sb.exit(Atom::u64(1), 0, JumpKind::Boring);
        assert!(
            typecheck(&sb)
                .unwrap_err()
                .contains("guard is I64, expected I1")
        );

        let mut sb = Superblock::new(128);
        sb.next = Atom::Const(Const::I32(0));
        assert!(typecheck(&sb).unwrap_err().contains("block end"));

        let mut sb = Superblock::new(128);
        sb.stmts.push(Stmt::WrTmp {
            dst: Temp(0),
            e: Expr::Atom(Atom::u64(1)),
        });
        assert!(typecheck(&sb).unwrap_err().contains("t0 has no type"));

        let mut sb = Superblock::new(128);
        sb.unop(Unop::Zext(Ty::I64, Ty::I32), Atom::u64(1));
        assert!(
            typecheck(&sb)
                .unwrap_err()
                .contains("ill-formed operation 64Uto32")
        );
    }
}
