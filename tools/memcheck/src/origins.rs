//! Origin tracking (`--track-origins=yes`, Valgrind's "schemeB" half of `mc_translate`): every
//! value carries, beside its V bits, a 32-bit *origin tag* naming where undefined data in it
//! was created — a stack trace (an [`ExeContextId`]) and a kind (heap block, stack space,
//! client request). Tag 0 means "no origin".
//!
//! - Temps get an I32 origin temp; operations take the largest tag of their operands (which
//!   tag wins when several undefined inputs meet is arbitrary, as in Valgrind).
//! - Guest registers have their origins in the second shadow state, one tag per 8-byte slot
//!   of the guest state (a write covers every slot it touches; a read takes the largest).
//! - Memory has its origins in [`crate::otag_mem`]. An origin is only ever consulted for
//!   undefined bits, so loads and stores call their helpers (out of line) only when the value's
//!   V bits are not all zero: a defined load's tag is 0, and a defined store leaves the tags
//!   alone (the load helper looks at the tags of undefined bytes only). Stack-pointer moves
//!   and calls' and returns' red zones tag new stack space inline (see [`stack_store`] and
//!   [`red_zone`]).
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
use vg_core::tool::vg_ir::{Atom, Binop, Callee, Const, Dirty, Expr, Stmt, Superblock, Ty, Unop};

use crate::errors::McError;
use crate::otag_mem::{MASKS_OFFSET, OTables, OriginMem};

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
    /// (addr, len) -> origin tag of the undefined bytes among the `len` bytes at `addr`.
    pub load: Callee,
    /// (addr, len, tag): the `len` bytes at `addr` now have origin `tag`.
    pub store: Callee,
    /// (size, pc, tag): "Use of uninitialised value of size N" with its origin.
    pub value_error: Callee,
    /// (pc, tag): "Conditional jump or move depends on uninitialised value(s)" with its origin.
    pub cond_error: Callee,
    /// (old_sp, new_sp, tag): a stack-pointer move; new stack gets origin `tag`.
    pub sp_change: Callee,
    /// The origin memory's tables, for the inline stores of [`stack_store`].
    pub tables: OTables,
}

/// The run-time side: origin memory.
#[derive(Default)]
pub struct OriginState {
    pub mem: OriginMem,
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

    /// The origin of a load of `len` bytes at `addr`, computed only where `guard` (the loaded
    /// value is not fully defined) holds: elsewhere it is 0, the skipped call's result.
    fn load(&self, out: &mut Superblock, addr: Atom, len: u64, guard: Option<Atom>) -> Atom {
        let t = call(out, self.h.load, vec![addr, Atom::u64(len)], guard, true).expect("dst");
        emit(out, Expr::Unop { op: Unop::Trunc(Ty::I64, Ty::I32), a: t })
    }

    /// The origin of a load whose V bits are `v` (`None`: known defined).
    fn load_if_undefined(&self, out: &mut Superblock, addr: Atom, len: u64, v: Option<Atom>) -> Atom {
        match v.and_then(|v| undefined(out, v)) {
            Some(g) => self.load(out, addr, len, Some(g)),
            None => ZERO,
        }
    }

    fn store(&self, out: &mut Superblock, addr: Atom, len: u64, tag: Atom, guard: Option<Atom>) {
        let tag64 = if tag == ZERO { Atom::u64(0) } else { emit(out, Expr::Unop { op: Unop::Zext(Ty::I32, Ty::I64), a: tag }) };
        call(out, self.h.store, vec![addr, Atom::u64(len), tag64], guard, false);
    }

    /// The tag of `e`, whose V bits are `v`.
    fn expr(&mut self, out: &mut Superblock, e: &Expr, v: Option<Atom>) -> Atom {
        match e {
            Expr::Atom(a) => self.of(*a),
            Expr::Get { off, ty } => self.get(out, *off, ty.bytes()),
            Expr::Load { ty, addr } => self.load_if_undefined(out, *addr, bytes_of(*ty), v),
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

    /// The origin IR of original statement `s`, emitted before it (after its V-bit IR).
    /// `vbits` holds the V-bit atom of each original temp (`None`: defined).
    pub fn pre(&mut self, out: &mut Superblock, s: &Stmt, vbits: &[Option<Atom>]) {
        let vb = |a: Atom| match a {
            Atom::Tmp(t) => vbits.get(t.0 as usize).copied().flatten(),
            Atom::Const(_) => None,
        };
        match s {
            Stmt::WrTmp { dst, e } => {
                let o = self.expr(out, e, vb(Atom::Tmp(*dst)));
                self.otag[dst.0 as usize] = Some(o);
            }
            Stmt::Put { off, val } => {
                let o = self.of(*val);
                let len = out.atom_ty(*val).bytes();
                self.put(out, *off, len, o, None);
            }
            // A fully defined value's origin is not stored (see the module comment).
            Stmt::Store { addr, val } => {
                if let Some(g) = vb(*val).and_then(|v| undefined(out, v)) {
                    let o = self.of(*val);
                    let len = bytes_of(out.atom_ty(*val));
                    self.store(out, *addr, len, o, Some(g));
                }
            }
            Stmt::Cas { addr, expected, old, .. } => {
                let len = bytes_of(out.atom_ty(*expected));
                let o = self.load_if_undefined(out, *addr, len, vb(Atom::Tmp(*old)));
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
                    let m = self.load(out, addr, len as u64, None);
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
            Stmt::IMark { .. } | Stmt::Exit { .. } | Stmt::Fence(_) | Stmt::AbiHint { .. } | Stmt::NoOp => {}
        }
    }

    /// The origin IR of original statement `s`, emitted after it: a compare-and-swap stores
    /// its new value's origin only if it succeeded (and the value is not fully defined).
    pub fn post(&mut self, out: &mut Superblock, s: &Stmt, vbits: &[Option<Atom>]) {
        let Stmt::Cas { addr, expected, new, old } = s else { return };
        let v = match *new {
            Atom::Tmp(t) => vbits.get(t.0 as usize).copied().flatten(),
            Atom::Const(_) => None,
        };
        let Some(undef) = v.and_then(|v| undefined(out, v)) else { return };
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
        let g = emit(out, Expr::Binop { op: Binop::And(Ty::I1), a: ok, b: undef });
        self.store(out, *addr, bytes_of(ty), o, Some(g));
    }
}

/// An I1 that is true when the shadow `v` has an undefined bit; `None` when `v` is a constant
/// zero (known defined).
fn undefined(out: &mut Superblock, v: Atom) -> Option<Atom> {
    if let Atom::Const(c) = v
        && c.bits128() == 0
    {
        return None;
    }
    let ne0 = |out: &mut Superblock, t: Ty, x: Atom| emit(out, Expr::Binop { op: Binop::CmpNE(t), a: x, b: Atom::Const(Const::int(t, 0)) });
    let halves = |out: &mut Superblock, lo: Unop, hi: Unop| {
        let l = emit(out, Expr::Unop { op: lo, a: v });
        let h = emit(out, Expr::Unop { op: hi, a: v });
        let o = emit(out, Expr::Binop { op: Binop::Or(Ty::I64), a: l, b: h });
        ne0(out, Ty::I64, o)
    };
    Some(match out.atom_ty(v) {
        Ty::I1 => v,
        t @ (Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64) => ne0(out, t, v),
        Ty::I128 => halves(out, Unop::Trunc(Ty::I128, Ty::I64), Unop::Hi(Ty::I128)),
        Ty::V128 => halves(out, Unop::V128to64, Unop::V128HIto64),
        t => panic!("memcheck: no origin rule for shadows of type {t:?}"),
    })
}

/// The origin page of `addr` (an I64; the zero page where there are no origins): two table
/// loads.
fn page_of(out: &mut Superblock, t: &OTables, addr: Atom) -> Atom {
    let hi = out.binop(Binop::Shr(Ty::I64), addr, Atom::u8(32));
    let hi = out.binop(Binop::And(Ty::I64), hi, Atom::u64(0xffff));
    let hi = out.binop(Binop::Shl(Ty::I64), hi, Atom::u8(3));
    let l1e = out.binop(Binop::Add(Ty::I64), hi, Atom::u64(t.l1));
    let l2 = out.load(Ty::I64, l1e);
    let mid = out.binop(Binop::Shr(Ty::I64), addr, Atom::u8(16));
    let mid = out.binop(Binop::And(Ty::I64), mid, Atom::u64(0xffff));
    let mid = out.binop(Binop::Shl(Ty::I64), mid, Atom::u8(3));
    let l2e = out.binop(Binop::Add(Ty::I64), l2, mid);
    out.load(Ty::I64, l2e)
}

/// Guest addresses at or above 2^48 have no origins.
const HIGH_BITS: u64 = 0xffff_0000_0000_0000;

/// Give the 8 bytes at `addr` origin `tag` inline when `addr` is 8-aligned and its page is
/// private: two tag words and two mask bytes. Returns the I1 "take the helper"; when it is
/// true nothing was written.
pub fn stack_store(out: &mut Superblock, t: &OTables, addr: Atom, tag: u32) -> Atom {
    let page = page_of(out, t, addr);
    // Misaligned, at or above 2^48 (no origins there), or in the shared zero page.
    let bad = out.binop(Binop::And(Ty::I64), addr, Atom::u64(HIGH_BITS | 7));
    let bad = out.binop(Binop::CmpNE(Ty::I64), bad, Atom::u64(0));
    let zero = out.binop(Binop::CmpEQ(Ty::I64), page, Atom::u64(t.zero_page));
    let slow = out.binop(Binop::Or(Ty::I1), bad, zero);
    let base = out.ite(slow, Atom::u64(t.scratch), page);
    let w = out.binop(Binop::And(Ty::I64), addr, Atom::u64(0xfff8));
    let tags = out.binop(Binop::Add(Ty::I64), base, w);
    out.store(tags, Atom::u64((tag as u64) << 32 | tag as u64));
    let w4 = out.binop(Binop::Shr(Ty::I64), w, Atom::u8(2));
    let masks = out.binop(Binop::Add(Ty::I64), base, w4);
    let masks = out.binop(Binop::Add(Ty::I64), masks, Atom::u64(MASKS_OFFSET));
    out.store(masks, Atom::Const(Const::int(Ty::I16, 0x0f0f)));
    slow
}

/// Direct-mapped cache of red-zone tags by the address executed next (`nia`): entries
/// (nia, tag | tag << 32), read by generated code (see [`red_zone`]) and filled by
/// [`tag_red_zone`]. Valgrind too makes these tags at run time, from `nia`.
const RZ_CACHE: usize = 1024;

struct RzCache(core::cell::UnsafeCell<[[u64; 2]; RZ_CACHE]>);

// SAFETY: written only by `tag_red_zone`, under the core's big lock; generated code only reads.
unsafe impl Sync for RzCache {}

static RZ_TAGS: RzCache = RzCache(core::cell::UnsafeCell::new([[u64::MAX, 0]; RZ_CACHE]));

/// The cache slot of `nia` (the same hash as [`red_zone`] emits).
fn rz_slot(nia: u64) -> usize {
    ((nia ^ (nia >> 10)) as usize) & (RZ_CACHE - 1)
}

/// The `len` bytes at `base`, a call's or return's red zone, become stack space of the code
/// at `nia` (a one-frame context, as in Valgrind).
pub fn tag_red_zone(base: u64, len: u64, nia: u64) {
    // SAFETY: only called from helpers, under the core's big lock.
    let e = unsafe { &mut (*RZ_TAGS.0.get())[rz_slot(nia)] };
    if e[0] != nia {
        let t = make_tag(crate::st().ectx.intern(&[nia]), OriginKind::Stack) as u64;
        *e = [nia, t << 32 | t];
    }
    tag_range(base, len, e[1] as u32);
}

/// The origin half of a call's or return's red zone — the `fastpath::RED_ZONE` bytes at
/// `base` become stack space of the code at `nia` — inline: the tag from the cache, then 32
/// tag words and 32 mask bytes. Returns the I1 "take the helper" (nothing was written then):
/// the tag is not cached yet, `base` is misaligned, the range leaves its page, or the page is
/// the shared zero page.
pub fn red_zone(out: &mut Superblock, oh: &OHelpers, base: Atom, nia: Atom) -> Atom {
    let len = crate::fastpath::RED_ZONE;
    let t = &oh.tables;
    let h = out.binop(Binop::Shr(Ty::I64), nia, Atom::u8(10));
    let h = out.binop(Binop::Xor(Ty::I64), nia, h);
    let h = out.binop(Binop::And(Ty::I64), h, Atom::u64(RZ_CACHE as u64 - 1));
    let h = out.binop(Binop::Shl(Ty::I64), h, Atom::u8(4));
    let entry = out.binop(Binop::Add(Ty::I64), h, Atom::u64(RZ_TAGS.0.get() as u64));
    let key = out.load(Ty::I64, entry);
    let tag2 = out.binop(Binop::Add(Ty::I64), entry, Atom::u64(8));
    let tag2 = out.load(Ty::I64, tag2);
    let miss = out.binop(Binop::CmpNE(Ty::I64), key, nia);
    let page = page_of(out, t, base);
    // The in-page offset plus the high bits: adding the distance to the last 8-byte word
    // carries into bit 16 exactly when an aligned range runs past the page's end.
    let off = out.binop(Binop::And(Ty::I64), base, Atom::u64(HIGH_BITS | 0xffff));
    let last = out.binop(Binop::Add(Ty::I64), off, Atom::u64(len - 8));
    let bad = out.binop(Binop::And(Ty::I64), last, Atom::u64(HIGH_BITS | 0x1_0000 | 7));
    let bad = out.binop(Binop::CmpNE(Ty::I64), bad, Atom::u64(0));
    let zero = out.binop(Binop::CmpEQ(Ty::I64), page, Atom::u64(t.zero_page));
    let slow = out.binop(Binop::Or(Ty::I1), bad, zero);
    let slow = out.binop(Binop::Or(Ty::I1), slow, miss);
    let p = out.ite(slow, Atom::u64(t.scratch), page);
    let off = out.binop(Binop::And(Ty::I64), base, Atom::u64(0xffff));
    let tags = out.binop(Binop::Add(Ty::I64), p, off);
    for k in 0..len / 8 {
        let a = out.binop(Binop::Add(Ty::I64), tags, Atom::u64(8 * k));
        out.store(a, tag2);
    }
    let w = out.binop(Binop::Shr(Ty::I64), off, Atom::u8(2));
    let masks = out.binop(Binop::Add(Ty::I64), p, w);
    for k in 0..len / 32 {
        let a = out.binop(Binop::Add(Ty::I64), masks, Atom::u64(MASKS_OFFSET + 8 * k));
        out.store(a, Atom::u64(0x0f0f_0f0f_0f0f_0f0f));
    }
    slow
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

/// The tag of stack space made by the instruction at `pc`: a one-frame context, made when
/// the instruction is translated (as Valgrind does for stack-pointer moves).
pub fn stack_tag(pc: u64) -> u32 {
    make_tag(crate::st().ectx.intern(&[pc]), OriginKind::Stack)
}

extern "C" fn h_o_load(addr: u64, len: u64) -> u64 {
    let s = crate::st();
    let o = s.origins.as_ref().expect("origin helpers run only with --track-origins=yes");
    o.mem.load_undefined(addr, len, &s.shadow) as u64
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

extern "C" fn h_o_sp_change(old: u64, new: u64, tag: u64) {
    crate::h_sp_change(old, new);
    if new < old && old - new <= crate::STACK_SWITCH {
        ost().mem.store(new.wrapping_sub(crate::REDZONE), old - new, tag as u32);
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
        tables: ost().mem.tables(),
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
        let tables = OTables { l1: 0x2000, zero_page: 0x3000, scratch: 0x4000 };
        OHelpers { load: c, store: c, value_error: c, cond_error: c, sp_change: c, tables }
    }

    #[test]
    fn operations_take_the_largest_operand_tag_and_registers_use_shadow_two() {
        let h = helpers_for_test();
        let mut out = Superblock::new(0);
        let a = out.new_temp(Ty::I64);
        let b = out.new_temp(Ty::I64);
        let c = out.new_temp(Ty::I64);
        let vb = out.new_temp(Ty::I64);
        let mut vbits = vec![None; 3];
        vbits[b.0 as usize] = Some(Atom::Tmp(vb));
        let mut o = Origins::new(&h, 1000, 3);
        o.pre(&mut out, &Stmt::WrTmp { dst: a, e: Expr::Get { off: 16, ty: Ty::I64 } }, &vbits);
        assert!(matches!(out.stmts.last(), Some(Stmt::WrTmp { e: Expr::Get { off: 2016, ty: Ty::I32 }, .. })));
        o.pre(&mut out, &Stmt::WrTmp { dst: b, e: Expr::Load { ty: Ty::I64, addr: Atom::u64(0x100) } }, &vbits);
        let n = out.stmts.len();
        o.pre(&mut out, &Stmt::WrTmp { dst: c, e: Expr::Binop { op: Binop::Add(Ty::I64), a: Atom::Tmp(a), b: Atom::Tmp(b) } }, &vbits);
        assert_eq!(out.stmts.len(), n + 2, "a compare and a select");
        assert!(matches!(out.stmts.last(), Some(Stmt::WrTmp { e: Expr::Ite { .. }, .. })));
        // A constant operand adds nothing.
        let n = out.stmts.len();
        o.pre(&mut out, &Stmt::Put { off: 20, val: Atom::u32(3) }, &vbits);
        assert_eq!(out.stmts.len(), n + 1);
        assert!(matches!(out.stmts.last(), Some(Stmt::Put { off: 2016, val }) if *val == ZERO));
        // A V128 write covers two slots.
        let v = out.new_temp(Ty::V128);
        o.pre(&mut out, &Stmt::Put { off: 64, val: Atom::Tmp(v) }, &vbits);
        assert!(matches!(&out.stmts[out.stmts.len() - 2..], [Stmt::Put { off: 2064, .. }, Stmt::Put { off: 2072, .. }]));
        // The sum's tag is the select emitted for it.
        let sel = out.stmts.iter().find_map(|s| match s {
            Stmt::WrTmp { dst, e: Expr::Ite { .. } } => Some(Atom::Tmp(*dst)),
            _ => None,
        });
        assert_eq!(Some(o.of(Atom::Tmp(c))), sel);
    }

    fn dirties(out: &Superblock) -> Vec<&Dirty> {
        out.stmts.iter().filter_map(|s| if let Stmt::Dirty(d) = s { Some(&**d) } else { None }).collect()
    }

    #[test]
    fn memory_origins_are_loaded_and_stored_only_for_undefined_values() {
        let h = helpers_for_test();
        let mut out = Superblock::new(0);
        let x = out.new_temp(Ty::I32);
        let y = out.new_temp(Ty::I32);
        let vx = out.new_temp(Ty::I32);
        let mut vbits = vec![None; 2];
        let mut o = Origins::new(&h, 1000, 2);
        // V bits known zero: no helper, tag 0, no store.
        o.pre(&mut out, &Stmt::WrTmp { dst: y, e: Expr::Load { ty: Ty::I32, addr: Atom::u64(0x100) } }, &vbits);
        assert_eq!(o.of(Atom::Tmp(y)), ZERO);
        o.pre(&mut out, &Stmt::Store { addr: Atom::u64(0x200), val: Atom::Tmp(y) }, &vbits);
        o.pre(&mut out, &Stmt::Store { addr: Atom::u64(0x200), val: Atom::u32(1) }, &vbits);
        assert!(dirties(&out).is_empty());
        // V bits known only at run time: each call is guarded by "V bits != 0".
        vbits[x.0 as usize] = Some(Atom::Tmp(vx));
        o.pre(&mut out, &Stmt::WrTmp { dst: x, e: Expr::Load { ty: Ty::I32, addr: Atom::u64(0x100) } }, &vbits);
        o.pre(&mut out, &Stmt::Store { addr: Atom::u64(0x200), val: Atom::Tmp(x) }, &vbits);
        let ds = dirties(&out);
        assert_eq!(ds.len(), 2);
        for d in &ds {
            let Some(Atom::Tmp(g)) = d.guard else { panic!("unguarded {d:?}") };
            let def = out.stmts.iter().find_map(|s| match s {
                Stmt::WrTmp { dst, e } if *dst == g => Some(e.clone()),
                _ => None,
            });
            assert_eq!(def, Some(Expr::Binop { op: Binop::CmpNE(Ty::I32), a: Atom::Tmp(vx), b: Atom::u32(0) }));
        }
        assert!(ds[0].dst.is_some() && ds[1].dst.is_none());
        assert_eq!(ds[1].args[2], Atom::Tmp(out.stmts.iter().rev().find_map(|s| match s {
            Stmt::WrTmp { dst, e: Expr::Unop { op: Unop::Zext(Ty::I32, Ty::I64), .. } } => Some(*dst),
            _ => None,
        }).expect("the loaded tag, widened")));
    }

    #[test]
    fn stack_store_writes_two_tags_and_two_masks_or_goes_to_scratch() {
        let t = OTables { l1: 0x10_0000, zero_page: 0x20_0000, scratch: 0x30_0000 };
        let mut out = Superblock::new(0);
        let a = out.new_temp(Ty::I64);
        let slow = stack_store(&mut out, &t, Atom::Tmp(a), 0x1234_5678);
        assert_eq!(out.atom_ty(slow), Ty::I1);
        let stores: Vec<Atom> = out.stmts.iter().filter_map(|s| if let Stmt::Store { val, .. } = s { Some(*val) } else { None }).collect();
        assert_eq!(stores, vec![Atom::u64(0x1234_5678_1234_5678), Atom::Const(Const::int(Ty::I16, 0x0f0f))]);
        // Run it: the interpreter-free check of the address arithmetic is in otag_mem's tests;
        // here the page choice: the zero page sends the writes to the scratch page.
        assert!(out.stmts.iter().any(|s| matches!(s, Stmt::WrTmp { e: Expr::Ite { cond, t: Atom::Const(_), .. }, .. } if *cond == slow)));
    }
}
