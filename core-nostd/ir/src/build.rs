//! Convenience constructors used by front ends and tools to append flat IR to a superblock.
//! Every helper that computes a value allocates a fresh temp and returns it as an [`Atom`].

use crate::*;
use alloc::vec::Vec;

impl Superblock {
    /// Append `t = e` for a fresh temp of `e`'s type and return the temp.
    pub fn assign(&mut self, e: Expr) -> Atom {
        let ty = self.expr_ty(&e);
        let dst = self.new_temp(ty);
        self.stmts.push(Stmt::WrTmp { dst, e });
        Atom::Tmp(dst)
    }
    pub fn get(&mut self, off: u32, ty: Ty) -> Atom {
        self.assign(Expr::Get { off, ty })
    }
    pub fn put(&mut self, off: u32, val: Atom) {
        self.stmts.push(Stmt::Put { off, val });
    }
    pub fn load(&mut self, ty: Ty, addr: Atom) -> Atom {
        self.assign(Expr::Load { ty, addr })
    }
    pub fn store(&mut self, addr: Atom, val: Atom) {
        self.stmts.push(Stmt::Store { addr, val });
    }
    pub fn unop(&mut self, op: Unop, a: Atom) -> Atom {
        self.assign(Expr::Unop { op, a })
    }
    pub fn binop(&mut self, op: Binop, a: Atom, b: Atom) -> Atom {
        self.assign(Expr::Binop { op, a, b })
    }
    pub fn ite(&mut self, cond: Atom, t: Atom, f: Atom) -> Atom {
        self.assign(Expr::Ite { cond, t, f })
    }
    pub fn ccall(&mut self, callee: Callee, ret: Ty, args: Vec<Atom>) -> Atom {
        self.assign(Expr::CCall { callee, ret, args })
    }
    pub fn imark(&mut self, addr: u64, len: u32) {
        self.stmts.push(Stmt::IMark { addr, len });
    }
    pub fn exit(&mut self, guard: Atom, dst: u64, kind: JumpKind) {
        self.stmts.push(Stmt::Exit { guard, dst, kind });
    }
    /// Zero-extend (or truncate) integer `a` to `to`.
    pub fn zext(&mut self, a: Atom, to: Ty) -> Atom {
        let from = self.atom_ty(a);
        match from.bits().cmp(&to.bits()) {
            core::cmp::Ordering::Equal => a,
            core::cmp::Ordering::Less => self.unop(Unop::Zext(from, to), a),
            core::cmp::Ordering::Greater => self.unop(Unop::Trunc(from, to), a),
        }
    }
    /// Sign-extend (or truncate) integer `a` to `to`.
    pub fn sext(&mut self, a: Atom, to: Ty) -> Atom {
        let from = self.atom_ty(a);
        match from.bits().cmp(&to.bits()) {
            core::cmp::Ordering::Equal => a,
            core::cmp::Ordering::Less => self.unop(Unop::Sext(from, to), a),
            core::cmp::Ordering::Greater => self.unop(Unop::Trunc(from, to), a),
        }
    }
}
