//! Origin tracking (`--track-origins=yes`, Valgrind's "schemeB" half of `mc_translate`): every
//! value carries, beside its V bits, a 32-bit *origin tag* naming where undefined data in it
//! was created — a stack trace (an [`ExeContextId`]) and a kind (heap block, stack space,
//! client request). Tag 0 means "no origin".
//!
//! - Temps get an I32 origin temp; operations take the largest tag of their operands (which
//!   tag wins when several undefined inputs meet is arbitrary, as in Valgrind).
//! - Guest registers have their origins in the second shadow state, one tag per 8-byte slot
//!   of the guest state (a write covers every slot it touches; a read takes the largest).
//! - Memory has its origins in [`crate::otag_mem`]: loads and stores call helpers here.
//! - Checks pass the checked value's tag to the complaint helpers, which print the origin.
//!
//! [`crate::translate`] calls [`Origins::pre`] before and [`Origins::post`] after each original
//! statement, and asks [`Origins::of`] for the tag of a checked atom. The helpers generated code
//! calls, and the tagging of memory made undefined (malloc, stack-pointer moves, client
//! requests), are here too.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use vg_core::debuginfo::ExeContextId;
use vg_core::tool::vg_ir::{Atom, Binop, Callee, Dirty, Expr, Stmt, Superblock, Ty, Unop};

use crate::errors::McError;
use crate::otag_mem::OriginMem;

/// What made undefined data, the low two bits of a tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginKind {
    /// Made undefined by something that gives no reason (kept for tags of unknown kind).
    Unknown = 0,
    Heap = 1,
    Stack = 2,
    Client = 3,
}

/// The tag of data created at stack `ctx` by `kind`.
pub fn make_tag(ctx: ExeContextId, kind: OriginKind) -> u32 {
    ((ctx.0 + 1) << 2) | kind as u32
}

/// The stack and kind of a non-zero tag.
pub fn split_tag(tag: u32) -> Option<(ExeContextId, OriginKind)> {
    if tag < 4 {
        return None;
    }
    let kind = match tag & 3 {
        1 => OriginKind::Heap,
        2 => OriginKind::Stack,
        3 => OriginKind::Client,
        _ => OriginKind::Unknown,
    };
    Some((ExeContextId((tag >> 2) - 1), kind))
}

/// The helpers origin-tracking code calls.
#[derive(Clone, Copy, Debug)]
pub struct OHelpers {
    /// (addr, len) -> origin tag of the `len` bytes at `addr`.
    pub load: Callee,
    /// (addr, len, tag): the `len` bytes at `addr` now have origin `tag`.
    pub store: Callee,
    /// (size, pc, tag): "Use of uninitialised value of size N" with its origin.
    pub value_error: Callee,
    /// (pc, tag): "Conditional jump or move depends on uninitialised value(s)" with its origin.
    pub cond_error: Callee,
    /// (old_sp, new_sp, pc): a stack-pointer move; new stack is tagged as made at `pc`.
    pub sp_change: Callee,
}

/// The run-time side: origin memory and a cache of stack tags.
pub struct OriginState {
    pub mem: OriginMem,
    /// Direct-mapped cache of (pc, stack tag of a one-frame context at pc).
    stack_tags: Vec<(u64, u32)>,
}

const STACK_TAG_CACHE: usize = 1024;

impl Default for OriginState {
    fn default() -> Self {
        OriginState { mem: OriginMem::new(), stack_tags: vec![(u64::MAX, 0); STACK_TAG_CACHE] }
    }
}

/// The per-superblock instrumenter.
pub struct Origins<'a> {
    h: &'a OHelpers,
    state_size: u32,
    /// Origin tag (an I32 atom) of each original temp.
    otag: Vec<Option<Atom>>,
}

const ZERO: Atom = Atom::u32(0);

fn emit(out: &mut Superblock, e: Expr) -> Atom {
    let ty = out.expr_ty(&e);
    let t = out.new_temp(ty);
    out.stmts.push(Stmt::WrTmp { dst: t, e });
    Atom::Tmp(t)
}

fn call(out: &mut Superblock, callee: Callee, args: Vec<Atom>, guard: Option<Atom>, ret: bool) -> Option<Atom> {
    let dst = ret.then(|| out.new_temp(Ty::I64));
    out.stmts.push(Stmt::Dirty(Box::new(Dirty {
        callee,
        args,
        pass_state: false,
        guard,
        dst,
        reads_state: Vec::new(),
        writes_state: Vec::new(),
        reads_mem: None,
        writes_mem: None,
    })));
    dst.map(Atom::Tmp)
}

/// The larger of two tags.
fn max(out: &mut Superblock, a: Atom, b: Atom) -> Atom {
    if a == ZERO || a == b {
        return b;
    }
    if b == ZERO {
        return a;
    }
    let lt = emit(out, Expr::Binop { op: Binop::CmpLTU(Ty::I32), a, b });
    emit(out, Expr::Ite { cond: lt, t: b, f: a })
}

fn bytes_of(ty: Ty) -> u64 {
    ty.bytes().max(1) as u64
}

impl<'a> Origins<'a> {
    pub fn new(h: &'a OHelpers, state_size: u32, temps: usize) -> Origins<'a> {
        Origins { h, state_size, otag: vec![None; temps] }
    }

    /// The origin tag (I32) of original atom `a`.
    pub fn of(&self, a: Atom) -> Atom {
        match a {
            Atom::Tmp(t) => self.otag.get(t.0 as usize).copied().flatten().unwrap_or(ZERO),
            Atom::Const(_) => ZERO,
        }
    }

    /// Offset in the second shadow of the slot holding the origin of guest byte `off`.
    fn slot(&self, off: u32) -> u32 {
        2 * self.state_size + (off & !7)
    }

    fn slots(&self, off: u32, len: u32) -> impl Iterator<Item = u32> + use<'_> {
        let first = off & !7;
        (first..off + len.max(1)).step_by(8).map(|o| self.slot(o))
    }

    fn get(&self, out: &mut Superblock, off: u32, len: u32) -> Atom {
        if off >= self.state_size {
            return ZERO;
        }
        let mut acc = ZERO;
        for s in self.slots(off, len).collect::<Vec<_>>() {
            let t = emit(out, Expr::Get { off: s, ty: Ty::I32 });
            acc = max(out, acc, t);
        }
        acc
    }

    /// Give guest bytes `[off, off+len)` origin `tag`, only where `guard` holds if given.
    fn put(&self, out: &mut Superblock, off: u32, len: u32, tag: Atom, guard: Option<Atom>) {
        if off >= self.state_size {
            return;
        }
        for s in self.slots(off, len).collect::<Vec<_>>() {
            let v = match guard {
                Some(g) => {
                    let old = emit(out, Expr::Get { off: s, ty: Ty::I32 });
                    emit(out, Expr::Ite { cond: g, t: tag, f: old })
                }
                None => tag,
            };
            out.stmts.push(Stmt::Put { off: s, val: v });
        }
    }

    fn load(&self, out: &mut Superblock, addr: Atom, len: u64) -> Atom {
        let t = call(out, self.h.load, vec![addr, Atom::u64(len)], None, true).expect("dst");
        emit(out, Expr::Unop { op: Unop::Trunc(Ty::I64, Ty::I32), a: t })
    }

    fn store(&self, out: &mut Superblock, addr: Atom, len: u64, tag: Atom, guard: Option<Atom>) {
        let tag64 = if tag == ZERO { Atom::u64(0) } else { emit(out, Expr::Unop { op: Unop::Zext(Ty::I32, Ty::I64), a: tag }) };
        call(out, self.h.store, vec![addr, Atom::u64(len), tag64], guard, false);
    }

    fn expr(&mut self, out: &mut Superblock, e: &Expr) -> Atom {
        match e {
            Expr::Atom(a) => self.of(*a),
            Expr::Get { off, ty } => self.get(out, *off, ty.bytes()),
            Expr::Load { ty, addr } => self.load(out, *addr, bytes_of(*ty)),
            Expr::Unop { a, .. } => self.of(*a),
            Expr::Binop { a, b, .. } => {
                let (oa, ob) = (self.of(*a), self.of(*b));
                max(out, oa, ob)
            }
            Expr::Ite { cond, t, f } => {
                let (oc, ot, of) = (self.of(*cond), self.of(*t), self.of(*f));
                let sel = if ot == of { ot } else { emit(out, Expr::Ite { cond: *cond, t: ot, f: of }) };
                max(out, oc, sel)
            }
            Expr::CCall { args, .. } => self.max_of(out, args),
        }
    }

    fn max_of(&self, out: &mut Superblock, atoms: &[Atom]) -> Atom {
        let mut acc = ZERO;
        for a in atoms {
            let o = self.of(*a);
            acc = max(out, acc, o);
        }
        acc
    }

    /// The origin IR of original statement `s`, emitted before it.
    pub fn pre(&mut self, out: &mut Superblock, s: &Stmt) {
        match s {
            Stmt::WrTmp { dst, e } => {
                let o = self.expr(out, e);
                self.otag[dst.0 as usize] = Some(o);
            }
            Stmt::Put { off, val } => {
                let o = self.of(*val);
                let len = out.atom_ty(*val).bytes();
                self.put(out, *off, len, o, None);
            }
            Stmt::Store { addr, val } => {
                let o = self.of(*val);
                let len = bytes_of(out.atom_ty(*val));
                self.store(out, *addr, len, o, None);
            }
            Stmt::Cas { addr, expected, old, .. } => {
                let len = bytes_of(out.atom_ty(*expected));
                let o = self.load(out, *addr, len);
                self.otag[old.0 as usize] = Some(o);
            }
            // The helper reads its inputs before it writes: everything it produces has the
            // largest origin of what it reads.
            Stmt::Dirty(d) => {
                let mut o = self.max_of(out, &d.args);
                for &(off, len) in &d.reads_state {
                    let g = self.get(out, off, len);
                    o = max(out, o, g);
                }
                if let Some((addr, len)) = d.reads_mem {
                    let m = self.load(out, addr, len as u64);
                    o = max(out, o, m);
                }
                if let Some(dst) = d.dst {
                    self.otag[dst.0 as usize] = Some(o);
                }
                for &(off, len) in &d.writes_state {
                    self.put(out, off, len, o, d.guard);
                }
                if let Some((addr, len)) = d.writes_mem {
                    self.store(out, addr, len as u64, o, d.guard);
                }
            }
            Stmt::IMark { .. } | Stmt::Exit { .. } | Stmt::Fence(_) | Stmt::NoOp => {}
        }
    }

    /// The origin IR of original statement `s`, emitted after it: a compare-and-swap stores
    /// its new value's origin only if it succeeded.
    pub fn post(&mut self, out: &mut Superblock, s: &Stmt) {
        let Stmt::Cas { addr, expected, new, old } = s else { return };
        let ty = out.atom_ty(*expected);
        let ok = if ty == Ty::I128 {
            let lo = |out: &mut Superblock, a| emit(out, Expr::Unop { op: Unop::Trunc(Ty::I128, Ty::I64), a });
            let hi = |out: &mut Superblock, a| emit(out, Expr::Unop { op: Unop::Hi(Ty::I128), a });
            let (ol, oh) = (lo(out, Atom::Tmp(*old)), hi(out, Atom::Tmp(*old)));
            let (el, eh) = (lo(out, *expected), hi(out, *expected));
            let dl = emit(out, Expr::Binop { op: Binop::Xor(Ty::I64), a: ol, b: el });
            let dh = emit(out, Expr::Binop { op: Binop::Xor(Ty::I64), a: oh, b: eh });
            let d = emit(out, Expr::Binop { op: Binop::Or(Ty::I64), a: dl, b: dh });
            emit(out, Expr::Binop { op: Binop::CmpEQ(Ty::I64), a: d, b: Atom::u64(0) })
        } else {
            emit(out, Expr::Binop { op: Binop::CmpEQ(ty), a: Atom::Tmp(*old), b: *expected })
        };
        let o = self.of(*new);
        self.store(out, *addr, bytes_of(ty), o, Some(ok));
    }
}

// ---------------------------------------------------------------------------------------------
// Run time: helpers called from generated code, and the tagging of new undefined memory.

fn ost() -> &'static mut OriginState {
    crate::st().origins.as_mut().expect("origin helpers run only with --track-origins=yes")
}

/// Give `[a, a+len)` origin `tag` (the bytes were just made undefined).
pub fn tag_range(a: u64, len: u64, tag: u32) {
    if let Some(o) = crate::st().origins.as_mut() {
        o.mem.store(a, len, tag);
    }
}

/// The origin of the byte at `a`, if origins are tracked.
pub fn tag_at(a: u64) -> u32 {
    crate::st().origins.as_ref().map_or(0, |o| o.mem.load(a, 1))
}

/// The tag of stack space made by the instruction at `pc`.
fn stack_tag(pc: u64) -> u32 {
    let i = (pc as usize ^ (pc >> 10) as usize) % STACK_TAG_CACHE;
    if let Some(&(p, t)) = ost().stack_tags.get(i)
        && p == pc
    {
        return t;
    }
    let t = make_tag(crate::st().ectx.intern(&[pc]), OriginKind::Stack);
    ost().stack_tags[i] = (pc, t);
    t
}

extern "C" fn h_o_load(addr: u64, len: u64) -> u64 {
    ost().mem.load(addr, len) as u64
}

extern "C" fn h_o_store(addr: u64, len: u64, tag: u64) {
    ost().mem.store(addr, len, tag as u32);
}

extern "C" fn h_o_value_error(size: u64, pc: u64, tag: u64) {
    crate::report_here_o(McError::Value { size: size as u32 }, pc, tag as u32);
}

extern "C" fn h_o_cond_error(pc: u64, tag: u64) {
    crate::report_here_o(McError::Cond, pc, tag as u32);
}

extern "C" fn h_o_sp_change(old: u64, new: u64, pc: u64) {
    crate::h_sp_change(old, new);
    if new < old && old - new <= crate::STACK_SWITCH {
        let t = stack_tag(pc);
        ost().mem.store(new.wrapping_sub(crate::REDZONE), old - new, t);
    }
}

macro_rules! callee {
    ($f:ident) => {
        Callee { name: stringify!($f), addr: $f as *const () as usize }
    };
}

/// The helpers, for [`crate::translate::Config`].
pub fn helpers() -> OHelpers {
    OHelpers {
        load: callee!(h_o_load),
        store: callee!(h_o_store),
        value_error: callee!(h_o_value_error),
        cond_error: callee!(h_o_cond_error),
        sp_change: callee!(h_o_sp_change),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        for (id, kind) in [(0, OriginKind::Heap), (5, OriginKind::Stack), (77, OriginKind::Client)] {
            let t = make_tag(ExeContextId(id), kind);
            assert_ne!(t, 0);
            assert_eq!(split_tag(t), Some((ExeContextId(id), kind)));
        }
        assert_eq!(split_tag(0), None);
    }

    fn helpers_for_test() -> OHelpers {
        let c = Callee { name: "h", addr: 0x1000 };
        OHelpers { load: c, store: c, value_error: c, cond_error: c, sp_change: c }
    }

    #[test]
    fn operations_take_the_largest_operand_tag_and_registers_use_shadow_two() {
        let h = helpers_for_test();
        let mut out = Superblock::new(0);
        let a = out.new_temp(Ty::I64);
        let b = out.new_temp(Ty::I64);
        let c = out.new_temp(Ty::I64);
        let mut o = Origins::new(&h, 1000, 3);
        o.pre(&mut out, &Stmt::WrTmp { dst: a, e: Expr::Get { off: 16, ty: Ty::I64 } });
        assert!(matches!(out.stmts.last(), Some(Stmt::WrTmp { e: Expr::Get { off: 2016, ty: Ty::I32 }, .. })));
        o.pre(&mut out, &Stmt::WrTmp { dst: b, e: Expr::Load { ty: Ty::I64, addr: Atom::u64(0x100) } });
        let n = out.stmts.len();
        o.pre(&mut out, &Stmt::WrTmp { dst: c, e: Expr::Binop { op: Binop::Add(Ty::I64), a: Atom::Tmp(a), b: Atom::Tmp(b) } });
        assert_eq!(out.stmts.len(), n + 2, "a compare and a select");
        assert!(matches!(out.stmts.last(), Some(Stmt::WrTmp { e: Expr::Ite { .. }, .. })));
        // A constant operand adds nothing.
        let n = out.stmts.len();
        o.pre(&mut out, &Stmt::Put { off: 20, val: Atom::u32(3) });
        assert_eq!(out.stmts.len(), n + 1);
        assert!(matches!(out.stmts.last(), Some(Stmt::Put { off: 2016, val }) if *val == ZERO));
        // A V128 write covers two slots.
        let v = out.new_temp(Ty::V128);
        o.pre(&mut out, &Stmt::Put { off: 64, val: Atom::Tmp(v) });
        assert!(matches!(&out.stmts[out.stmts.len() - 2..], [Stmt::Put { off: 2064, .. }, Stmt::Put { off: 2072, .. }]));
        // The sum's tag is the select emitted for it.
        let sel = out.stmts.iter().find_map(|s| match s {
            Stmt::WrTmp { dst, e: Expr::Ite { .. } } => Some(Atom::Tmp(*dst)),
            _ => None,
        });
        assert_eq!(Some(o.of(Atom::Tmp(c))), sel);
    }
}
