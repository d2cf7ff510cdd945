//! Instruction selection: flat IR -> amd64 vcode over virtual registers.
//!
//! The IR is flat, so trees are rebuilt by looking through single-use temps: such a temp whose
//! expression can fold into its consumer (a compare, a `Get`, an `Add64`, a small `Shl64`) is
//! *deferred* and only materialised if its consumer cannot use it directly. That gives
//! `cmp` + `jcc`/`cmovcc` for guards and ITEs, `[base + index*scale + disp]` addresses for
//! loads and stores, `[rbp + off]` memory operands for `Get`s and immediate operands.
//! Deferred `Get`s are materialised before anything that writes the guest state.
//!
//! A whole-register `Get` (I64, V128) gets its guest-state slot as a *home* for the register
//! allocator, valid until the first later write to the slot: if it must be spilled, its uses
//! read the slot and no spill code is needed.

use crate::inst::*;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use vg_core::regalloc::{Liveness, RegClass, VReg};
use vg_ir::{Atom, Binop, Const, Expr, Stmt, Superblock, Temp, Ty, Unop, VecOp};

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Val {
    Unset,
    /// Single-use, not yet computed: the index of its defining statement.
    Deferred(usize),
    R(VReg),
    /// An I128: (lo, hi).
    Pair(VReg, VReg),
    /// A V256: two vector vregs (lo, hi).
    VPair(VReg, VReg),
}

/// The output of selection: vcode and the allocator's view of it.
pub struct VCode {
    pub insts: Vec<Inst>,
    pub live: Liveness,
}

struct Isel<'a> {
    sb: &'a Superblock,
    uses: Vec<u32>,
    vals: Vec<Val>,
    insts: Vec<Inst>,
    live: Liveness,
    /// Deferred `Get`s, to materialise before the guest state is written.
    pending_gets: Vec<Temp>,
    /// Vregs loaded by a `Get` whose slot has not been written since: (vreg, offset, size).
    open_homes: Vec<(VReg, u32, u32)>,
}

type R<T> = Result<T, String>;

fn width(ty: Ty) -> u8 {
    match ty {
        Ty::I1 | Ty::I8 => 1,
        Ty::I16 => 2,
        Ty::I32 | Ty::F32 => 4,
        _ => 8,
    }
}

fn class_of(ty: Ty) -> RegClass {
    match ty {
        Ty::F32 | Ty::F64 | Ty::V128 => RegClass::Vec,
        _ => RegClass::Int,
    }
}

fn simm32(c: Const, ty: Ty) -> Option<i32> {
    let v = c.bits();
    match ty {
        Ty::I64 => i32::try_from(v as i64).ok(),
        Ty::I1 | Ty::I8 | Ty::I16 | Ty::I32 => Some(v as u32 as i32),
        _ => None,
    }
}

/// Select vcode for a superblock.
pub fn select(sb: &Superblock) -> R<VCode> {
    let mut uses = vec![0u32; sb.temps.len()];
    // A hint compiles to nothing: its operands are not uses here, so a temp only it reads is
    // never computed, and one it shares with another statement can still be folded there.
    for s in sb.stmts.iter().filter(|s| !matches!(s, Stmt::AbiHint { .. })) {
        s.for_each_atom(|a| {
            if let Atom::Tmp(t) = a {
                uses[t.0 as usize] += 1
            }
        });
    }
    if let Atom::Tmp(t) = sb.next {
        uses[t.0 as usize] += 1
    }
    let mut s = Isel {
        sb,
        uses,
        vals: vec![Val::Unset; sb.temps.len()],
        insts: Vec::with_capacity(sb.stmts.len() * 2),
        live: Liveness::new(),
        pending_gets: Vec::new(),
        open_homes: Vec::new(),
    };
    for i in 0..sb.stmts.len() {
        s.stmt(i)?;
    }
    match sb.next {
        Atom::Const(c) => s.push(Inst::Exit { cc: None, dst: c.bits(), kind: sb.jump }),
        a => {
            let next = s.reg(a)?;
            s.push(Inst::ExitInd { next, kind: sb.jump })
        }
    }
    for (v, off, _) in core::mem::take(&mut s.open_homes) {
        s.live.set_home(v, off, None);
    }
    Ok(VCode { insts: s.insts, live: s.live })
}

impl<'a> Isel<'a> {
    fn push(&mut self, i: Inst) {
        self.insts.push(i)
    }
    fn new_int(&mut self) -> VReg {
        self.live.new_vreg(RegClass::Int)
    }
    fn new_vec(&mut self) -> VReg {
        self.live.new_vreg(RegClass::Vec)
    }
    fn ty(&self, a: Atom) -> Ty {
        self.sb.atom_ty(a)
    }

    fn deferred_expr(&self, a: Atom) -> Option<(Temp, &'a Expr)> {
        let t = a.as_temp()?;
        match self.vals[t.0 as usize] {
            Val::Deferred(i) => match &self.sb.stmts[i] {
                Stmt::WrTmp { e, .. } => Some((t, e)),
                _ => None,
            },
            _ => None,
        }
    }

    /// Mark a deferred temp as folded into its (only) consumer.
    fn consume(&mut self, t: Temp) {
        self.vals[t.0 as usize] = Val::Unset;
        self.pending_gets.retain(|&p| p != t);
    }

    /// The guest state `[off, off + len)` is written by the next instruction: homes overlapping
    /// it are valid only up to that instruction's uses.
    fn state_written(&mut self, off: u32, len: u32) {
        let at = self.insts.len();
        let live = &mut self.live;
        self.open_homes.retain(|&(v, o, n)| {
            let overlap = o < off + len && off < o + n;
            if overlap {
                live.set_home(v, o, Some(at));
            }
            !overlap
        });
    }

    /// Compute a `Put`'s value ahead of the store itself.
    fn put_operand(&mut self, val: Atom) -> R<Atom> {
        if let Atom::Tmp(t) = val {
            self.materialise(t)?;
        }
        Ok(val)
    }

    fn flush_gets(&mut self) -> R<()> {
        while let Some(t) = self.pending_gets.pop() {
            self.materialise(t)?;
        }
        Ok(())
    }

    fn materialise(&mut self, t: Temp) -> R<Val> {
        match self.vals[t.0 as usize] {
            Val::Deferred(i) => {
                self.pending_gets.retain(|&p| p != t);
                let Stmt::WrTmp { e, .. } = &self.sb.stmts[i] else { unreachable!() };
                let v = self.expr(e, self.sb.temp_ty(t))?;
                self.vals[t.0 as usize] = v;
                Ok(v)
            }
            Val::Unset => Err(format!("t{} used before definition", t.0)),
            v => Ok(v),
        }
    }

    fn val(&mut self, a: Atom) -> R<Val> {
        match a {
            Atom::Tmp(t) => self.materialise(t),
            Atom::Const(c) => self.constant(c),
        }
    }

    fn constant(&mut self, c: Const) -> R<Val> {
        Ok(match c {
            Const::I128(v) => {
                let lo = self.new_int();
                let hi = self.new_int();
                self.push(Inst::Imm { dst: lo, v: v as u64 });
                self.push(Inst::Imm { dst: hi, v: (v >> 64) as u64 });
                Val::Pair(lo, hi)
            }
            Const::F32(_) | Const::F64(_) | Const::V128(_) => {
                let dst = self.new_vec();
                self.push(Inst::VImm { dst, v: c.bits128() });
                Val::R(dst)
            }
            _ => {
                let dst = self.new_int();
                self.push(Inst::Imm { dst, v: c.bits() });
                Val::R(dst)
            }
        })
    }

    /// The value of a single-register atom.
    fn reg(&mut self, a: Atom) -> R<VReg> {
        match self.val(a)? {
            Val::R(v) => Ok(v),
            v => Err(format!("expected a single-register value, got {v:?}")),
        }
    }
    fn pair(&mut self, a: Atom) -> R<(VReg, VReg)> {
        match self.val(a)? {
            Val::Pair(l, h) => Ok((l, h)),
            v => Err(format!("expected an I128 value, got {v:?}")),
        }
    }

    /// A second operand of width `w`: an immediate, a folded `Get`, or a register.
    fn src(&mut self, a: Atom, allow_mem: bool) -> R<Src> {
        let ty = self.ty(a);
        if let Atom::Const(c) = a
            && let Some(i) = simm32(c, ty) {
                return Ok(Src::I(i));
            }
        if allow_mem
            && let Some((t, Expr::Get { off, .. })) = self.deferred_expr(a) {
                self.consume(t);
                return Ok(Src::M(Amode::state(*off)));
            }
        Ok(Src::R(self.reg(a)?))
    }

    /// A register or immediate operand (stores, call arguments).
    fn src_ri(&mut self, a: Atom) -> R<Src> {
        self.src(a, false)
    }

    /// The address `a` as an addressing mode, folding `Add64`/`Shl64` trees.
    fn amode(&mut self, a: Atom) -> R<Amode> {
        if let Some((t, Expr::Binop { op: Binop::Add(Ty::I64), a: x, b: y })) = self.deferred_expr(a) {
            let (x, y) = if x.as_const().is_some() { (*y, *x) } else { (*x, *y) };
            if let Some(c) = y.as_const()
                && let Ok(d) = i32::try_from(c.bits() as i64) {
                    self.consume(t);
                    let mut am = self.amode_bi(x)?;
                    if let Some(nd) = am.disp.checked_add(d) {
                        am.disp = nd;
                        return Ok(am);
                    }
                    let base = self.new_int();
                    self.push(Inst::Lea { dst: base, am });
                    return Ok(Amode { base: Some(base), index: None, disp: d });
                }
            self.consume(t);
            return self.base_index(x, y, 0);
        }
        Ok(Amode { base: Some(self.reg(a)?), index: None, disp: 0 })
    }

    /// `x` as `[base + index]` if it is a deferred sum, else `[x]`.
    fn amode_bi(&mut self, x: Atom) -> R<Amode> {
        if let Some((t, Expr::Binop { op: Binop::Add(Ty::I64), a, b })) = self.deferred_expr(x)
            && a.as_const().is_none() && b.as_const().is_none() {
                self.consume(t);
                return self.base_index(*a, *b, 0);
            }
        Ok(Amode { base: Some(self.reg(x)?), index: None, disp: 0 })
    }

    fn scaled(&self, a: Atom) -> Option<(Temp, Atom, u8)> {
        match self.deferred_expr(a)? {
            (t, Expr::Binop { op: Binop::Shl(Ty::I64), a: z, b: Atom::Const(k) }) if (1..=3).contains(&k.bits()) => {
                Some((t, *z, 1 << k.bits()))
            }
            _ => None,
        }
    }

    fn base_index(&mut self, x: Atom, y: Atom, disp: i32) -> R<Amode> {
        let (x, y) = if self.scaled(x).is_some() { (y, x) } else { (x, y) };
        let base = self.reg(x)?;
        let index = match self.scaled(y) {
            Some((t, z, s)) => {
                self.consume(t);
                (self.reg(z)?, s)
            }
            None => (self.reg(y)?, 1),
        };
        Ok(Amode { base: Some(base), index: Some(index), disp })
    }

    /// Set the flags for an I1 condition; returns the condition that is true when it is.
    fn flags(&mut self, c: Atom) -> R<Cc> {
        if let Some((t, Expr::Binop { op, a, b })) = self.deferred_expr(c)
            && let Some(cc) = cmp_cc(*op) {
                self.consume(t);
                return self.cmp(*op, cc, *a, *b);
            }
        let a = self.reg(c)?;
        self.push(Inst::Test { a, imm: 1 });
        Ok(Cc::NE)
    }

    fn cmp(&mut self, op: Binop, cc: Cc, a: Atom, b: Atom) -> R<Cc> {
        let ty = self.ty(a);
        if !ty.is_int() {
            return Err(format!("unsupported compare {op:?}"));
        }
        let (a, b, cc) = if a.as_const().is_some() && b.as_const().is_none() { (b, a, swap_cc(cc)) } else { (a, b, cc) };
        let ra = self.reg(a)?;
        let sb = self.src(b, true)?;
        self.push(Inst::Cmp { w: width(ty), a: ra, b: sb });
        Ok(cc)
    }

    fn stmt(&mut self, i: usize) -> R<()> {
        let sb = self.sb;
        match &sb.stmts[i] {
            Stmt::IMark { addr, .. } => self.push(Inst::Mark(*addr)),
            Stmt::NoOp => {}
            Stmt::WrTmp { dst, e } => {
                let ty = sb.temp_ty(*dst);
                if self.uses[dst.0 as usize] == 1 && deferrable(e) {
                    self.vals[dst.0 as usize] = Val::Deferred(i);
                    if matches!(e, Expr::Get { .. }) {
                        self.pending_gets.push(*dst);
                    }
                } else if self.uses[dst.0 as usize] > 0 || !pure(e) {
                    let v = self.expr(e, ty)?;
                    self.vals[dst.0 as usize] = v;
                }
            }
            Stmt::Put { off, val } => {
                self.flush_gets()?;
                // Operands are selected first: they may still read homes the Put overwrites.
                let val = self.put_operand(*val)?;
                self.state_written(*off, self.ty(val).bytes());
                self.store(Amode::state(*off), val)?;
            }
            Stmt::Store { addr, val } => {
                let am = self.amode(*addr)?;
                self.store(am, *val)?;
            }
            Stmt::Exit { guard, dst, kind } => match guard {
                Atom::Const(c) if c.bits() & 1 == 0 => {}
                Atom::Const(_) => self.push(Inst::Exit { cc: None, dst: *dst, kind: *kind }),
                g => {
                    let cc = self.flags(*g)?;
                    self.push(Inst::Exit { cc: Some(cc), dst: *dst, kind: *kind });
                }
            },
            Stmt::Dirty(d) => {
                self.flush_gets()?;
                for &(o, n) in &d.writes_state {
                    self.state_written(o, n);
                }
                if d.args.len() + d.pass_state as usize > 6 {
                    return Err(format!("too many helper arguments for {}", d.callee.name));
                }
                let args = self.call_args(&d.args)?;
                let guard = match d.guard {
                    None => None,
                    Some(Atom::Const(c)) if c.bits() & 1 != 0 => None,
                    Some(Atom::Const(_)) => {
                        if let Some(t) = d.dst {
                            self.vals[t.0 as usize] = self.constant(Const::I64(0))?;
                        }
                        return Ok(());
                    }
                    Some(g) => Some(self.flags(g)?),
                };
                let dst = d.dst.map(|t| {
                    let v = self.new_int();
                    self.vals[t.0 as usize] = Val::R(v);
                    v
                });
                self.push(Inst::Call { addr: d.callee.addr, args, pass_state: d.pass_state, dst, guard });
            }
            Stmt::Cas { addr, expected, new, old } => {
                let ty = self.ty(*new);
                if !ty.is_int() {
                    return Err(format!("unsupported CAS of {ty:?}"));
                }
                let am = self.amode(*addr)?;
                let expected = self.reg(*expected)?;
                let new = self.reg(*new)?;
                let o = self.new_int();
                self.vals[old.0 as usize] = Val::R(o);
                self.push(Inst::Cas { w: width(ty), am, expected, new, old: o });
            }
            Stmt::Fence(_) => self.push(Inst::Fence),
            Stmt::AbiHint { .. } => {}
        }
        Ok(())
    }

    /// Helper arguments: each with the width it is zero-extended from when loaded into its
    /// argument register (the IR passes narrow values zero-extended to 64 bits).
    fn call_args(&mut self, args: &[Atom]) -> R<Vec<(Src, ArgExt)>> {
        let mut out = Vec::with_capacity(args.len());
        for &a in args {
            let ty = self.ty(a);
            let ext = match ty {
                Ty::I1 => ArgExt::Zx1,
                Ty::I8 => ArgExt::Zx8,
                Ty::I16 => ArgExt::Zx16,
                Ty::I32 => ArgExt::Zx32,
                Ty::I64 => ArgExt::None,
                _ => return Err(format!("unsupported helper argument type {ty:?}")),
            };
            let s = match a {
                // Constants are stored zero-extended: an immediate that fits needs no extension.
                Atom::Const(c) => match i32::try_from(c.bits() as i64) {
                    Ok(i) => (Src::I(i), ArgExt::None),
                    Err(_) => (Src::R(self.reg(a)?), ArgExt::None),
                },
                _ => (Src::R(self.reg(a)?), ext),
            };
            out.push(s);
        }
        Ok(out)
    }

    fn store(&mut self, am: Amode, val: Atom) -> R<()> {
        let ty = self.ty(val);
        match ty {
            Ty::I128 | Ty::V128 if val.as_const().is_some() => {
                let v = val.as_const().unwrap().bits128();
                self.store(am, Atom::u64(v as u64))?;
                let hi = Amode { disp: am.disp + 8, ..am };
                self.store(hi, Atom::u64((v >> 64) as u64))
            }
            Ty::F32 | Ty::F64 if val.as_const().is_some() => {
                let c = val.as_const().unwrap();
                self.store(am, Atom::Const(Const::int(Ty::int_of_bytes(ty.bytes()), c.bits())))
            }
            Ty::I128 => {
                let (lo, hi) = self.pair(val)?;
                self.push(Inst::Store { w: 8, am, src: Src::R(lo) });
                self.push(Inst::Store { w: 8, am: Amode { disp: am.disp + 8, ..am }, src: Src::R(hi) });
                Ok(())
            }
            Ty::F32 | Ty::F64 | Ty::V128 => {
                let src = self.reg(val)?;
                self.push(Inst::VStore { sz: ty.bytes() as u8, am, src });
                Ok(())
            }
            Ty::V256 => Err("V256 values are not supported by the amd64 back end".into()),
            _ => {
                let src = self.src_ri(val)?;
                self.push(Inst::Store { w: width(ty), am, src });
                Ok(())
            }
        }
    }

    fn load(&mut self, ty: Ty, am: Amode) -> R<Val> {
        Ok(match ty {
            Ty::I128 => {
                let lo = self.new_int();
                let hi = self.new_int();
                self.push(Inst::Load { w: 8, dst: lo, am });
                self.push(Inst::Load { w: 8, dst: hi, am: Amode { disp: am.disp + 8, ..am } });
                Val::Pair(lo, hi)
            }
            Ty::F32 | Ty::F64 | Ty::V128 => {
                let dst = self.new_vec();
                self.push(Inst::VLoad { sz: ty.bytes() as u8, dst, am });
                Val::R(dst)
            }
            Ty::V256 => return Err("V256 values are not supported by the amd64 back end".into()),
            _ => {
                let dst = self.new_int();
                self.push(Inst::Load { w: width(ty), dst, am });
                Val::R(dst)
            }
        })
    }

    fn un(&mut self, op: UnOp, a: VReg) -> VReg {
        let dst = self.new_int();
        self.push(Inst::Un { op, dst, a });
        dst
    }
    fn shift_imm(&mut self, op: ShiftOp, w: u8, a: VReg, n: u8) -> VReg {
        let dst = self.new_int();
        self.push(Inst::Shift { op, w, dst, a, amt: Amt::Imm(n) });
        dst
    }
    fn vun(&mut self, op: SseUn, src: VReg) -> VReg {
        let dst = self.new_vec();
        self.push(Inst::VUn { op, dst, src });
        dst
    }
    fn int_to_vec(&mut self, op: ToVec, src: VReg) -> VReg {
        let dst = self.new_vec();
        self.push(Inst::ToVec { op, dst, src });
        dst
    }
    fn vec_to_int(&mut self, op: FromVec, src: VReg) -> VReg {
        let dst = self.new_int();
        self.push(Inst::FromVec { op, dst, src });
        dst
    }
    fn vbin(&mut self, op: SseOp, a: VReg, b: VReg) -> VReg {
        let dst = self.new_vec();
        self.push(Inst::VBin { op, dst, a, b });
        dst
    }

    fn expr(&mut self, e: &Expr, ty: Ty) -> R<Val> {
        match e {
            Expr::Atom(a) => self.val(*a),
            Expr::Get { off, ty } => {
                let v = self.load(*ty, Amode::state(*off))?;
                if let (Ty::I64 | Ty::V128, Val::R(r)) = (ty, v) {
                    self.open_homes.push((r, *off, ty.bytes()));
                }
                Ok(v)
            }
            Expr::Load { ty, addr } => {
                let am = self.amode(*addr)?;
                self.load(*ty, am)
            }
            Expr::Unop { op, a } => self.unop(*op, *a),
            Expr::Binop { op, a, b } => self.binop(*op, *a, *b),
            Expr::Ite { cond, t, f } => {
                if let Atom::Const(c) = cond {
                    return self.val(if c.bits() & 1 != 0 { *t } else { *f });
                }
                match ty {
                    Ty::I128 => {
                        let (tl, th) = self.pair(*t)?;
                        let (fl, fh) = self.pair(*f)?;
                        let cc = self.flags(*cond)?;
                        let (lo, hi) = (self.new_int(), self.new_int());
                        self.push(Inst::Cmov { cc, dst: lo, t: tl, f: fl });
                        self.push(Inst::Cmov { cc, dst: hi, t: th, f: fh });
                        Ok(Val::Pair(lo, hi))
                    }
                    _ => {
                        let tv = self.reg(*t)?;
                        let fv = self.reg(*f)?;
                        let cc = self.flags(*cond)?;
                        if class_of(ty) == RegClass::Vec {
                            let dst = self.new_vec();
                            self.push(Inst::VSel { cc, dst, t: tv, f: fv });
                            Ok(Val::R(dst))
                        } else {
                            let dst = self.new_int();
                            self.push(Inst::Cmov { cc, dst, t: tv, f: fv });
                            Ok(Val::R(dst))
                        }
                    }
                }
            }
            Expr::CCall { callee, ret, args } => {
                if args.len() > 6 || !ret.is_int() {
                    return Err(format!("unsupported helper signature for {}", callee.name));
                }
                let args = self.call_args(args)?;
                let dst = self.new_int();
                self.push(Inst::Call { addr: callee.addr, args, pass_state: false, dst: Some(dst), guard: None });
                Ok(Val::R(dst))
            }
        }
    }

    fn unop(&mut self, op: Unop, a: Atom) -> R<Val> {
        use Unop::*;
        let r = |v| Ok(Val::R(v));
        match op {
            Not(Ty::I128) => {
                let (lo, hi) = self.pair(a)?;
                let (l, h) = (self.un(UnOp::Not, lo), self.un(UnOp::Not, hi));
                Ok(Val::Pair(l, h))
            }
            Not(Ty::V128) => {
                let s = self.reg(a)?;
                r(self.vun(SseUn::Not, s))
            }
            Not(_) => {
                let s = self.reg(a)?;
                r(self.un(UnOp::Not, s))
            }
            Neg(t) if t.is_int() => {
                let s = self.reg(a)?;
                r(self.un(UnOp::Neg, s))
            }
            Zext(from, to) | Sext(from, to) if from == to => self.val(a),
            Zext(from, to) => {
                // A narrow `Get` used only here: its zero-extending load is the whole extension.
                if let Some((t, Expr::Get { off, ty })) = self.deferred_expr(a)
                    && *ty == from
                    && matches!(from, Ty::I8 | Ty::I16 | Ty::I32)
                    && to != Ty::I128
                {
                    self.consume(t);
                    let dst = self.new_int();
                    self.push(Inst::Load { w: width(from), dst, am: Amode::state(*off) });
                    return r(dst);
                }
                let s = self.reg(a)?;
                let lo = match from {
                    Ty::I1 => self.un(UnOp::Zx1, s),
                    Ty::I8 => self.un(UnOp::Zx8, s),
                    Ty::I16 => self.un(UnOp::Zx16, s),
                    Ty::I32 => self.un(UnOp::Zx32, s),
                    Ty::I64 => s,
                    _ => return Err(format!("unsupported {op:?}")),
                };
                if to == Ty::I128 {
                    let hi = self.new_int();
                    self.push(Inst::Imm { dst: hi, v: 0 });
                    Ok(Val::Pair(lo, hi))
                } else {
                    r(lo)
                }
            }
            Sext(from, to) => {
                let s = self.reg(a)?;
                let lo = match from {
                    Ty::I1 => self.un(UnOp::Sx1, s),
                    Ty::I8 => self.un(UnOp::Sx8, s),
                    Ty::I16 => self.un(UnOp::Sx16, s),
                    Ty::I32 => self.un(UnOp::Sx32, s),
                    Ty::I64 => s,
                    _ => return Err(format!("unsupported {op:?}")),
                };
                if to == Ty::I128 {
                    let hi = self.un(UnOp::SignOf64, lo);
                    Ok(Val::Pair(lo, hi))
                } else {
                    r(lo)
                }
            }
            // Upper bits of narrow values are undefined, so truncation is free.
            Trunc(Ty::I128, _) => Ok(Val::R(self.pair(a)?.0)),
            Trunc(..) => self.val(a),
            Hi(Ty::I128) => Ok(Val::R(self.pair(a)?.1)),
            Hi(t) => {
                let s = self.reg(a)?;
                let w = width(t);
                r(self.shift_imm(ShiftOp::Shr, w, s, w * 4))
            }
            Clz(t) | Ctz(t) | Popcnt(t) => {
                let s = self.reg(a)?;
                let w64 = t == Ty::I64;
                let u = match (op, w64) {
                    (Clz(_), false) => UnOp::Clz32,
                    (Clz(_), true) => UnOp::Clz64,
                    (Ctz(_), false) => UnOp::Ctz32,
                    (Ctz(_), true) => UnOp::Ctz64,
                    (_, false) => UnOp::Popcnt32,
                    (_, true) => UnOp::Popcnt64,
                };
                r(self.un(u, s))
            }
            Bswap(t) => {
                let s = self.reg(a)?;
                let u = match t {
                    Ty::I16 => UnOp::Bswap16,
                    Ty::I32 => UnOp::Bswap32,
                    _ => UnOp::Bswap64,
                };
                r(self.un(u, s))
            }
            Reinterp(from, to) => {
                let s = self.reg(a)?;
                match (from, to) {
                    (Ty::F64, Ty::I64) => r(self.vec_to_int(FromVec::Movq, s)),
                    (Ty::F32, Ty::I32) => r(self.vec_to_int(FromVec::Movd, s)),
                    (Ty::I64, Ty::F64) => r(self.int_to_vec(ToVec::Movq, s)),
                    (Ty::I32, Ty::F32) => r(self.int_to_vec(ToVec::Movd, s)),
                    _ => Err(format!("unsupported {op:?}")),
                }
            }
            IntSToF(from, to) => {
                let s = self.reg(a)?;
                let o = match (from, to) {
                    (Ty::I64, Ty::F64) => ToVec::Cvtsi2sd64,
                    (Ty::I32, Ty::F64) => ToVec::Cvtsi2sd32,
                    (Ty::I64, Ty::F32) => ToVec::Cvtsi2ss64,
                    (Ty::I32, Ty::F32) => ToVec::Cvtsi2ss32,
                    _ => return Err(format!("unsupported {op:?}")),
                };
                r(self.int_to_vec(o, s))
            }
            FToIntSTrunc(from, to) | FToIntSNearest(from, to) => {
                let s = self.reg(a)?;
                let trunc = matches!(op, FToIntSTrunc(..));
                let o = match (from, to, trunc) {
                    (Ty::F64, Ty::I64, true) => FromVec::Cvttsd2si64,
                    (Ty::F64, Ty::I32, true) => FromVec::Cvttsd2si32,
                    (Ty::F32, Ty::I64, true) => FromVec::Cvttss2si64,
                    (Ty::F32, Ty::I32, true) => FromVec::Cvttss2si32,
                    (Ty::F64, Ty::I64, false) => FromVec::Cvtsd2si64,
                    (Ty::F64, Ty::I32, false) => FromVec::Cvtsd2si32,
                    (Ty::F32, Ty::I64, false) => FromVec::Cvtss2si64,
                    (Ty::F32, Ty::I32, false) => FromVec::Cvtss2si32,
                    _ => return Err(format!("unsupported {op:?}")),
                };
                r(self.vec_to_int(o, s))
            }
            F32toF64 | F64toF32 | SqrtF64 | SqrtF32 | NegF64 | AbsF64 => {
                let s = self.reg(a)?;
                let o = match op {
                    F32toF64 => SseUn::Cvtss2sd,
                    F64toF32 => SseUn::Cvtsd2ss,
                    SqrtF64 => SseUn::Sqrtsd,
                    SqrtF32 => SseUn::Sqrtss,
                    NegF64 => SseUn::NegF64,
                    _ => SseUn::AbsF64,
                };
                r(self.vun(o, s))
            }
            V128to64 => {
                let s = self.reg(a)?;
                r(self.vec_to_int(FromVec::Movq, s))
            }
            V128HIto64 => {
                let s = self.reg(a)?;
                let h = self.vun(SseUn::Hi64ToLo, s);
                r(self.vec_to_int(FromVec::Movq, h))
            }
            I64UtoV128 => {
                let s = self.reg(a)?;
                r(self.int_to_vec(ToVec::Movq, s))
            }
            I32UtoV128 => {
                let s = self.reg(a)?;
                r(self.int_to_vec(ToVec::Movd, s))
            }
            V128to32 => {
                let s = self.reg(a)?;
                r(self.vec_to_int(FromVec::Movd, s))
            }
            GetMSBs8x16 => {
                let s = self.reg(a)?;
                r(self.vec_to_int(FromVec::Pmovmskb, s))
            }
            Vec1(v) => {
                let s = self.reg(a)?;
                let o = match v {
                    VecOp::Sqrt32Fx4 => SseUn::Sqrtps,
                    VecOp::Sqrt64Fx2 => SseUn::Sqrtpd,
                    VecOp::I32StoF32x4 => SseUn::Cvtdq2ps,
                    VecOp::F32toI32STruncx4 => SseUn::Cvttps2dq,
                    VecOp::I32StoF64x2 => SseUn::Cvtdq2pd,
                    VecOp::F64toI32STruncx2 => SseUn::Cvttpd2dq,
                    VecOp::F32toF64x2 => SseUn::Cvtps2pd,
                    VecOp::F64toF32x2 => SseUn::Cvtpd2ps,
                    VecOp::Abs8x16 => SseUn::Pabsb,
                    VecOp::Abs16x8 => SseUn::Pabsw,
                    VecOp::Abs32x4 => SseUn::Pabsd,
                    _ => return Err(format!("unsupported {op:?}")),
                };
                if matches!(o, SseUn::Pabsb | SseUn::Pabsw | SseUn::Pabsd) {
                    need(Feature::Ssse3, op)?;
                }
                r(self.vun(o, s))
            }
            ShufImm(v, imm) => {
                let src = self.reg(a)?;
                let o = match v {
                    VecOp::Shuf32x4 => Shuf::Pshufd,
                    VecOp::ShufLo16x4 => Shuf::Pshuflw,
                    VecOp::ShufHi16x4 => Shuf::Pshufhw,
                    _ => return Err(format!("unsupported {op:?}")),
                };
                let dst = self.new_vec();
                self.push(Inst::VShuf { op: o, dst, src, imm });
                r(dst)
            }
            _ => Err(format!("unsupported {op:?}")),
        }
    }

    fn binop(&mut self, op: Binop, a: Atom, b: Atom) -> R<Val> {
        use Binop::*;
        let alu = match op {
            Add(t) | Sub(t) | Mul(t) | And(t) | Or(t) | Xor(t) if t.is_int() => Some(match op {
                Add(_) => AluOp::Add,
                Sub(_) => AluOp::Sub,
                Mul(_) => AluOp::Mul,
                And(_) => AluOp::And,
                Or(_) => AluOp::Or,
                _ => AluOp::Xor,
            }),
            _ => None,
        };
        if let Some(o) = alu {
            let ty = self.ty(a);
            let (a, b) = if o.commutative() && a.as_const().is_some() { (b, a) } else { (a, b) };
            let ra = self.reg(a)?;
            let sb = self.src(b, true)?;
            let dst = self.new_int();
            self.push(Inst::Alu { op: o, w64: ty == Ty::I64, dst, a: ra, b: sb });
            return Ok(Val::R(dst));
        }
        if let Some(cc) = cmp_cc(op) {
            let cc = self.cmp(op, cc, a, b)?;
            let dst = self.new_int();
            self.push(Inst::Setcc { cc, dst });
            return Ok(Val::R(dst));
        }
        let r = |v| Ok(Val::R(v));
        match op {
            And(Ty::I128) | Or(Ty::I128) | Xor(Ty::I128) => {
                let o = match op {
                    And(_) => AluOp::And,
                    Or(_) => AluOp::Or,
                    _ => AluOp::Xor,
                };
                let (al, ah) = self.pair(a)?;
                let (bl, bh) = self.pair(b)?;
                let (lo, hi) = (self.new_int(), self.new_int());
                self.push(Inst::Alu { op: o, w64: true, dst: lo, a: al, b: Src::R(bl) });
                self.push(Inst::Alu { op: o, w64: true, dst: hi, a: ah, b: Src::R(bh) });
                Ok(Val::Pair(lo, hi))
            }
            Shl(t) | Shr(t) | Sar(t) if t.is_int() => {
                let s = self.reg(a)?;
                let amt = match b {
                    Atom::Const(c) => Amt::Imm(c.bits() as u8 & 63),
                    _ => Amt::Reg(self.reg(b)?),
                };
                let o = match op {
                    Shl(_) => ShiftOp::Shl,
                    Shr(_) => ShiftOp::Shr,
                    _ => ShiftOp::Sar,
                };
                let dst = self.new_int();
                self.push(Inst::Shift { op: o, w: width(t), dst, a: s, amt });
                r(dst)
            }
            MullS(t) | MullU(t) if matches!(t, Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64) => {
                let (ra, rb) = (self.reg(a)?, self.reg(b)?);
                let dst = self.new_int();
                let dst_hi = if t == Ty::I64 { Some(self.new_int()) } else { None };
                self.push(Inst::MulW { signed: matches!(op, MullS(_)), w: width(t), dst, dst_hi, a: ra, b: rb });
                Ok(match dst_hi {
                    Some(h) => Val::Pair(dst, h),
                    None => Val::R(dst),
                })
            }
            DivModU(t) | DivModS(t) if matches!(t, Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64) => {
                let signed = matches!(op, DivModS(_));
                let (lo, hi) = if t == Ty::I64 {
                    let (l, h) = self.pair(a)?;
                    (l, Some(h))
                } else {
                    (self.reg(a)?, None)
                };
                let d = self.reg(b)?;
                let dst = self.new_int();
                let dst_hi = hi.map(|_| self.new_int());
                self.push(Inst::Div { signed, w: width(t), dst, dst_hi, lo, hi, d });
                Ok(match dst_hi {
                    Some(h) => Val::Pair(dst, h),
                    None => Val::R(dst),
                })
            }
            HiLo(Ty::I64) => {
                let (hi, lo) = (self.reg(a)?, self.reg(b)?);
                Ok(Val::Pair(lo, hi))
            }
            HiLo(t) if matches!(t, Ty::I8 | Ty::I16 | Ty::I32) => {
                let (hi, lo) = (self.reg(a)?, self.reg(b)?);
                let w = width(t);
                let sh = self.shift_imm(ShiftOp::Shl, w * 2, hi, w * 8);
                let z = self.un(
                    match t {
                        Ty::I8 => UnOp::Zx8,
                        Ty::I16 => UnOp::Zx16,
                        _ => UnOp::Zx32,
                    },
                    lo,
                );
                let dst = self.new_int();
                self.push(Inst::Alu { op: AluOp::Or, w64: true, dst, a: sh, b: Src::R(z) });
                r(dst)
            }
            AddF(t) | SubF(t) | MulF(t) | DivF(t) | MinF(t) | MaxF(t) => {
                let f64 = match t {
                    Ty::F64 => true,
                    Ty::F32 => false,
                    _ => return Err(format!("unsupported {op:?}")),
                };
                let o = match (op, f64) {
                    (AddF(_), true) => SseOp::Addsd,
                    (SubF(_), true) => SseOp::Subsd,
                    (MulF(_), true) => SseOp::Mulsd,
                    (DivF(_), true) => SseOp::Divsd,
                    (MinF(_), true) => SseOp::Minsd,
                    (MaxF(_), true) => SseOp::Maxsd,
                    (AddF(_), false) => SseOp::Addss,
                    (SubF(_), false) => SseOp::Subss,
                    (MulF(_), false) => SseOp::Mulss,
                    (DivF(_), false) => SseOp::Divss,
                    (MinF(_), false) => SseOp::Minss,
                    _ => SseOp::Maxss,
                };
                let (ra, rb) = (self.reg(a)?, self.reg(b)?);
                r(self.vbin(o, ra, rb))
            }
            CmpF(t) => {
                let (ra, rb) = (self.reg(a)?, self.reg(b)?);
                let dst = self.new_int();
                self.push(Inst::CmpF { f64: t == Ty::F64, dst, a: ra, b: rb });
                r(dst)
            }
            HiLo64toV128 => {
                let (hi, lo) = (self.reg(a)?, self.reg(b)?);
                let dst = self.new_vec();
                self.push(Inst::VPair { dst, hi, lo });
                r(dst)
            }
            SetV128lo64 | SetV128lo32 => {
                let ra = self.reg(a)?;
                let bty = self.ty(b);
                let mut rb = self.reg(b)?;
                let is64 = op == SetV128lo64;
                if bty.is_int() {
                    rb = self.int_to_vec(if is64 { ToVec::Movq } else { ToVec::Movd }, rb);
                }
                r(self.vbin(if is64 { SseOp::Movsd } else { SseOp::Movss }, ra, rb))
            }
            Vec2(v) => {
                let o = vec2_op(v).ok_or_else(|| format!("unsupported {op:?}"))?;
                if let Some(f) = o.feature() {
                    need(f, op)?;
                }
                let (ra, rb) = (self.reg(a)?, self.reg(b)?);
                r(self.vbin(o, ra, rb))
            }
            V128HLtoV256 => {
                let (hi, lo) = (self.reg(a)?, self.reg(b)?);
                Ok(Val::VPair(lo, hi))
            }
            Fma(v) => {
                let f64 = match v {
                    VecOp::Fma32Fx4(_) => false,
                    VecOp::Fma64Fx2(_) => true,
                    _ => return Err(format!("unsupported {op:?}")),
                };
                let neg = match v {
                    VecOp::Fma32Fx4(k) | VecOp::Fma64Fx2(k) => k,
                    _ => 0,
                };
                need(Feature::Fma, op)?;
                let (x, y) = match self.val(a)? {
                    Val::VPair(x, y) => (x, y),
                    v => return Err(format!("expected a V256 value, got {v:?}")),
                };
                let z = self.reg(b)?;
                let dst = self.new_vec();
                self.push(Inst::VFma { op: FmaOp { f64, neg }, dst, x, y, z });
                r(dst)
            }
            VecShift(v) => {
                let o = match v {
                    VecOp::Shl16x8 => SseShift::Psllw,
                    VecOp::Shl32x4 => SseShift::Pslld,
                    VecOp::Shl64x2 => SseShift::Psllq,
                    VecOp::Shr16x8 => SseShift::Psrlw,
                    VecOp::Shr32x4 => SseShift::Psrld,
                    VecOp::Shr64x2 => SseShift::Psrlq,
                    VecOp::Sar16x8 => SseShift::Psraw,
                    VecOp::Sar32x4 => SseShift::Psrad,
                    VecOp::ShlBytes => SseShift::Pslldq,
                    VecOp::ShrBytes => SseShift::Psrldq,
                    _ => return Err(format!("unsupported {op:?}")),
                };
                let ra = self.reg(a)?;
                let dst = self.new_vec();
                match b {
                    Atom::Const(c) => {
                        let imm = c.bits().min(255) as u8;
                        self.push(Inst::VShImm { op: o, dst, a: ra, imm })
                    }
                    _ if matches!(o, SseShift::Pslldq | SseShift::Psrldq) => {
                        return Err(format!("{op:?} needs a constant count"));
                    }
                    _ => {
                        let amt = self.reg(b)?;
                        self.push(Inst::VShReg { op: o, dst, a: ra, amt })
                    }
                }
                r(dst)
            }
            _ => Err(format!("unsupported {op:?}")),
        }
    }
}

/// An error unless the host has `f` (needed for `op`).
fn need(f: Feature, op: impl core::fmt::Debug) -> R<()> {
    if f.present() { Ok(()) } else { Err(format!("{op:?} needs a host CPU with {f:?}")) }
}

/// Whether a single-use temp defined by `e` may be folded into its consumer.
fn deferrable(e: &Expr) -> bool {
    match e {
        Expr::Get { ty, .. } => matches!(ty, Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64),
        Expr::Binop { op, b, .. } => {
            cmp_cc(*op).is_some()
                || *op == Binop::Add(Ty::I64)
                || (*op == Binop::Shl(Ty::I64) && b.as_const().is_some_and(|k| (1..=3).contains(&k.bits())))
        }
        _ => false,
    }
}

/// Expressions without side effects (dead ones need no code).
fn pure(e: &Expr) -> bool {
    !matches!(e, Expr::Load { .. })
}

fn cmp_cc(op: Binop) -> Option<Cc> {
    Some(match op {
        Binop::CmpEQ(t) if t.is_int() => Cc::E,
        Binop::CmpNE(t) if t.is_int() => Cc::NE,
        Binop::CmpLTS(t) if t.is_int() => Cc::L,
        Binop::CmpLES(t) if t.is_int() => Cc::LE,
        Binop::CmpLTU(t) if t.is_int() => Cc::B,
        Binop::CmpLEU(t) if t.is_int() => Cc::BE,
        _ => return None,
    })
}

/// The condition with its operands exchanged (`a < b` == `b > a`).
fn swap_cc(cc: Cc) -> Cc {
    match cc {
        Cc::L => Cc(0xf),  // g
        Cc::LE => Cc(0xd), // ge
        Cc::B => Cc(0x7),  // a
        Cc::BE => Cc(0x3), // ae
        c => c,
    }
}

fn vec2_op(v: VecOp) -> Option<SseOp> {
    use SseOp::*;
    use VecOp as V;
    Some(match v {
        V::And => Pand,
        V::Or => Por,
        V::Xor => Pxor,
        V::AndNot => Pandn,
        V::Add8x16 => Paddb,
        V::Add16x8 => Paddw,
        V::Add32x4 => Paddd,
        V::Add64x2 => Paddq,
        V::Sub8x16 => Psubb,
        V::Sub16x8 => Psubw,
        V::Sub32x4 => Psubd,
        V::Sub64x2 => Psubq,
        V::QAddS8x16 => Paddsb,
        V::QAddU8x16 => Paddusb,
        V::QAddS16x8 => Paddsw,
        V::QAddU16x8 => Paddusw,
        V::QSubS8x16 => Psubsb,
        V::QSubU8x16 => Psubusb,
        V::QSubS16x8 => Psubsw,
        V::QSubU16x8 => Psubusw,
        V::Mul16x8 => Pmullw,
        V::MulHiS16x8 => Pmulhw,
        V::MulHiU16x8 => Pmulhuw,
        V::MullEvenU32x2 => Pmuludq,
        V::MAddS16x8 => Pmaddwd,
        V::AvgU8x16 => Pavgb,
        V::AvgU16x8 => Pavgw,
        V::SadU8x16 => Psadbw,
        V::MinU8x16 => Pminub,
        V::MaxU8x16 => Pmaxub,
        V::MinS16x8 => Pminsw,
        V::MaxS16x8 => Pmaxsw,
        V::CmpEQ8x16 => Pcmpeqb,
        V::CmpEQ16x8 => Pcmpeqw,
        V::CmpEQ32x4 => Pcmpeqd,
        V::CmpGTS8x16 => Pcmpgtb,
        V::CmpGTS16x8 => Pcmpgtw,
        V::CmpGTS32x4 => Pcmpgtd,
        V::InterleaveLO8x16 => Punpcklbw,
        V::InterleaveLO16x8 => Punpcklwd,
        V::InterleaveLO32x4 => Punpckldq,
        V::InterleaveLO64x2 => Punpcklqdq,
        V::InterleaveHI8x16 => Punpckhbw,
        V::InterleaveHI16x8 => Punpckhwd,
        V::InterleaveHI32x4 => Punpckhdq,
        V::InterleaveHI64x2 => Punpckhqdq,
        V::QNarrowS16x8to8x16 => Packsswb,
        V::QNarrowU16x8to8x16 => Packuswb,
        V::QNarrowS32x4to16x8 => Packssdw,
        V::Add32Fx4 => Addps,
        V::Sub32Fx4 => Subps,
        V::Mul32Fx4 => Mulps,
        V::Div32Fx4 => Divps,
        V::Min32Fx4 => Minps,
        V::Max32Fx4 => Maxps,
        V::Add64Fx2 => Addpd,
        V::Sub64Fx2 => Subpd,
        V::Mul64Fx2 => Mulpd,
        V::Div64Fx2 => Divpd,
        V::Min64Fx2 => Minpd,
        V::Max64Fx2 => Maxpd,
        V::CmpF32x4(p) => Cmpps(p),
        V::CmpF64x2(p) => Cmppd(p),
        V::Perm8x16 => Pshufb,
        V::MAddUS8x16 => Pmaddubsw,
        V::MulHiRS16x8 => Pmulhrsw,
        V::Sign8x16 => Psignb,
        V::Sign16x8 => Psignw,
        V::Sign32x4 => Psignd,
        V::MinS8x16 => Pminsb,
        V::MaxS8x16 => Pmaxsb,
        V::MinU16x8 => Pminuw,
        V::MaxU16x8 => Pmaxuw,
        V::MinS32x4 => Pminsd,
        V::MaxS32x4 => Pmaxsd,
        V::MinU32x4 => Pminud,
        V::MaxU32x4 => Pmaxud,
        V::Mul32x4 => Pmulld,
        V::MullEvenS32x2 => Pmuldq,
        V::CmpEQ64x2 => Pcmpeqq,
        V::CmpGTS64x2 => Pcmpgtq,
        V::QNarrowU32x4to16x8 => Packusdw,
        _ => return None,
    })
}
