//! The IR optimiser: one forward and one backward linear pass over a superblock.
//!
//! Forward (`forward`): copy and constant propagation, constant folding and algebraic
//! simplification ([`fold`]), common-subexpression elimination of pure expressions, redundant
//! `Get` removal (a `Get` of a guest-state slot whose value is known from an earlier `Put` or
//! `Get` in the block), removal of `Put`s that store the value the slot already holds, and exits
//! with a constant guard (false: dropped; true: the block ends there). A last sweep drops `Put`s
//! made redundant by the backward pass, so a second `optimise` finds nothing more to do.
//!
//! Backward (`backward`): dead temps (any unused `WrTmp`) and dead `Put`s — this is what removes
//! the flag thunk (`cc_op`/`cc_dep1`/...) that every flag-setting instruction writes. A `Put` is
//! dead when every byte it writes is written again before anything can observe it. Observers,
//! walking forward from the `Put`:
//! - a `Get` of an overlapping range;
//! - an `Exit`, for every slot except the program counter (a taken exit writes the pc);
//! - a `Dirty` helper, for the ranges it declares in `reads_state`;
//! - the end of the block, for every slot except the program counter;
//! - a memory access (`Load`, `Store`, `Cas`, `Dirty`) or an integer division (`DivModU`,
//!   `DivModS`, which fault on a zero divisor or an overflowing quotient), for the stack and
//!   frame pointers: the unwinder needs them exact wherever a fault or a helper may take a stack
//!   trace (a prologue's `mov rbp, rsp` overwritten by the epilogue's `pop rbp` in the same
//!   block is still stored before the accesses between them, as VEX's default
//!   `--vex-iropt-register-updates=unwindregs-at-mem-access` does). The program counter at a fault is found
//!   from the faulting host instruction instead (the back end maps host code to guest
//!   instructions), so it costs no store; a `Dirty` helper, which may take a stack trace, sees
//!   the pc as well. Other registers may be stale at a fault.
//!
//! `CCall`s read only their arguments and are no barrier. An `AbiHint` observes nothing and is
//! never removed: it stays in place, and its operands stay live. A `Dirty` helper is trusted to
//! touch exactly the state it declares (`reads_state`/`writes_state`), even when given the state
//! pointer. An unused `Load` is removed although it might have faulted, as in VEX.
//!
//! The optimiser knows nothing of any guest beyond the offsets in [`OptConfig`]. Uses only the
//! IR definitions.

mod check;
mod fold;
mod unroll;

use alloc::vec;
use alloc::vec::Vec;
use core::hash::{Hash, Hasher};

use crate::{Atom, Binop, Expr, Stmt, Superblock, Ty, Unop};
pub use check::typecheck;
use fold::{Ctx, NO_DEF, simplify};

/// What the optimiser must know about the guest.
#[derive(Copy, Clone, Debug)]
pub struct OptConfig {
    /// Guest-state offset of the 8-byte program counter.
    pub pc_offset: u32,
    /// Guest-state offset of the 8-byte stack pointer.
    pub sp_offset: u32,
    /// Guest-state offset of the 8-byte frame pointer: kept exact, with the stack pointer,
    /// wherever a fault or a helper may take a stack trace (VEX's unwind registers).
    pub fp_offset: u32,
    /// Size of one copy of the guest state; offsets run up to three times this (two shadows).
    pub state_size: u32,
}

/// Width in bytes of the program counter and the stack pointer (guest addresses are I64).
const ADDR_BYTES: u32 = 8;

/// Bound on simplification steps per expression (each step is strictly simplifying, so this is
/// only a guard against a rule cycle).
const MAX_STEPS: usize = 8;

/// Optimise `sb`. The result computes the same guest-visible effects: memory, the guest state at
/// every exit and at the end, the program counter and stack pointer at every memory access.
pub fn optimise(mut sb: Superblock, cfg: &OptConfig) -> Superblock {
    let well_typed = cfg!(debug_assertions) && typecheck(&sb).is_ok();
    sb = simplify_block(sb, cfg);
    // Unroll after a first clean-up, so the size test sees the real body.
    if let Some(unrolled) = unroll::unroll_self_loop(&sb) {
        sb = simplify_block(unrolled, cfg);
    }
    if well_typed && let Err(e) = typecheck(&sb) {
        panic!("optimiser produced ill-typed IR: {e}\n{sb}");
    }
    sb
}

/// The forward and backward passes, to a fixed point.
fn simplify_block(mut sb: Superblock, cfg: &OptConfig) -> Superblock {
    forward(&mut sb, cfg);
    backward(&mut sb, cfg);
    // Dead Puts removed between two Puts of one value make the second redundant; dropping it
    // never makes another Put dead, but may leave a Get unused.
    if drop_rewrites(&mut sb) {
        backward(&mut sb, cfg);
    }
    sb.stmts.retain(|s| !matches!(s, Stmt::NoOp));
    sb
}

fn atom_ty(temps: &[Ty], a: Atom) -> Ty {
    match a {
        Atom::Tmp(t) => temps[t.0 as usize],
        Atom::Const(c) => c.ty(),
    }
}

/// Replace a temp known to equal another atom.
fn subst(env: &[Option<Atom>], a: &mut Atom) {
    if let Atom::Tmp(t) = *a
        && let Some(v) = env[t.0 as usize]
    {
        *a = v;
    }
}

fn forward(sb: &mut Superblock, cfg: &OptConfig) {
    let n = sb.temps.len();
    // What each removed temp equals (its uses are rewritten to this).
    let mut env: Vec<Option<Atom>> = vec![None; n];
    let mut defs = vec![NO_DEF; n];
    let mut known = KnownState::default();
    let mut cse = Cse::new(sb.stmts.len());
    let temps = &sb.temps;
    let stmts = &mut sb.stmts;
    let mut taken_exit = None;
    for i in 0..stmts.len() {
        let (done, rest) = stmts.split_at_mut(i);
        let s = &mut rest[0];
        s.map_atoms(|a| subst(&env, a));
        match s {
            Stmt::WrTmp { dst, e } => {
                let dst = dst.0 as usize;
                if let Expr::Get { off, ty } = *e {
                    debug_assert!(cfg.state_size == 0 || off + ty.bytes() <= 3 * cfg.state_size);
                    match known.lookup(off, ty) {
                        Some(v) => *e = v,
                        None => known.record_get(off, ty, Atom::Tmp(crate::Temp(dst as u32))),
                    }
                }
                let cx = Ctx {
                    temps,
                    defs: &defs,
                    stmts: done,
                };
                for _ in 0..MAX_STEPS {
                    match simplify(e, &cx) {
                        Some(s) => *e = s,
                        None => break,
                    }
                }
                let same = match *e {
                    Expr::Atom(a) => Some(a),
                    _ => cse.find_or_insert(e, i, done).map(Atom::Tmp),
                };
                match same {
                    Some(a) => {
                        env[dst] = Some(a);
                        *s = Stmt::NoOp;
                    }
                    None => defs[dst] = i as u32,
                }
            }
            Stmt::Put { off, val } => {
                let (off, val) = (*off, *val);
                let ty = atom_ty(temps, val);
                debug_assert!(cfg.state_size == 0 || off + ty.bytes() <= 3 * cfg.state_size);
                if known.lookup(off, ty) == Some(Expr::Atom(val)) {
                    *s = Stmt::NoOp;
                } else {
                    known.record(off, ty, val);
                }
            }
            Stmt::Exit {
                guard: Atom::Const(c),
                dst,
                kind,
            } => {
                if c.bits() & 1 != 0 {
                    taken_exit = Some((i, *dst, *kind));
                    break;
                }
                *s = Stmt::NoOp;
            }
            Stmt::Dirty(d) => {
                let never_called = match d.guard {
                    Some(Atom::Const(c)) if c.bits() & 1 != 0 => {
                        d.guard = None;
                        false
                    }
                    // A result temp of a helper not called would be left undefined: keep those.
                    Some(Atom::Const(_)) => d.dst.is_none(),
                    _ => false,
                };
                if never_called {
                    *s = Stmt::NoOp;
                } else {
                    for &(off, len) in &d.writes_state {
                        known.kill(off, len);
                    }
                }
            }
            _ => {}
        }
    }
    match taken_exit {
        Some((i, dst, kind)) => {
            stmts.truncate(i);
            sb.next = Atom::u64(dst);
            sb.jump = kind;
        }
        None => subst(&env, &mut sb.next),
    }
}

/// Remove each `Put` that stores the value its slot already holds (as `forward` does, on a block
/// from which dead `Put`s have gone). Returns whether any was removed.
fn drop_rewrites(sb: &mut Superblock) -> bool {
    let mut known = KnownState::default();
    let mut any = false;
    for s in sb.stmts.iter_mut() {
        match s {
            Stmt::WrTmp {
                dst,
                e: Expr::Get { off, ty },
            } => known.record_get(*off, *ty, Atom::Tmp(*dst)),
            Stmt::Put { off, val } => {
                let (off, val) = (*off, *val);
                let ty = atom_ty(&sb.temps, val);
                if known.lookup(off, ty) == Some(Expr::Atom(val)) {
                    *s = Stmt::NoOp;
                    any = true;
                } else {
                    known.record(off, ty, val);
                }
            }
            Stmt::Dirty(d) => d
                .writes_state
                .iter()
                .for_each(|&(off, len)| known.kill(off, len)),
            _ => {}
        }
    }
    any
}

/// Guest-state slots whose current value is known as an atom. `owner` maps each byte to the
/// entry (index + 1) last recorded over it; a write kills every entry it overlaps.
#[derive(Default)]
struct KnownState {
    owner: Vec<u32>,
    entries: Vec<Slot>,
}

struct Slot {
    off: u32,
    ty: Ty,
    val: Atom,
    live: bool,
}

impl KnownState {
    fn kill(&mut self, off: u32, len: u32) {
        let end = ((off + len) as usize).min(self.owner.len());
        for o in self.owner.get_mut(off as usize..end).unwrap_or_default() {
            if *o != 0 {
                self.entries[*o as usize - 1].live = false;
                *o = 0;
            }
        }
    }

    /// Remember what a `Get` read, unless that would forget more than it learns: a `Get`
    /// changes nothing, so it may replace only what it covers entirely (a narrower `Get` of the
    /// same register, say), never a wider slot it is part of.
    fn record_get(&mut self, off: u32, ty: Ty, val: Atom) {
        let end = off + ty.bytes();
        let last = (end as usize).min(self.owner.len());
        let owned = self.owner.get(off as usize..last).unwrap_or_default();
        let inside = |&o: &u32| {
            o == 0 || {
                let s = &self.entries[o as usize - 1];
                !s.live || (s.off >= off && s.off + s.ty.bytes() <= end)
            }
        };
        if owned.iter().all(inside) {
            self.record(off, ty, val);
        }
    }

    fn record(&mut self, off: u32, ty: Ty, val: Atom) {
        let len = ty.bytes();
        self.kill(off, len);
        let end = (off + len) as usize;
        if self.owner.len() < end {
            self.owner.resize(end, 0);
        }
        self.entries.push(Slot {
            off,
            ty,
            val,
            live: true,
        });
        let id = self.entries.len() as u32;
        self.owner[off as usize..end].fill(id);
    }

    /// An expression for the value a `Get` of `ty` at `off` would read, if known: the recorded
    /// value, or its low part when the `Get` reads fewer bytes at the same offset.
    fn lookup(&self, off: u32, ty: Ty) -> Option<Expr> {
        let id = *self.owner.get(off as usize)?;
        let s = self.entries.get((id as usize).checked_sub(1)?)?;
        if !s.live || s.off != off {
            return None;
        }
        let op = match (s.ty, ty) {
            (a, b) if a == b => return Some(Expr::Atom(s.val)),
            (a, b) if a.is_int() && b.is_int() && b.bytes() < a.bytes() && b != Ty::I1 => {
                Unop::Trunc(a, b)
            }
            (Ty::V128, Ty::I64) => Unop::V128to64,
            (Ty::V128, Ty::I32) => Unop::V128to32,
            (Ty::F64, Ty::I64) | (Ty::I64, Ty::F64) | (Ty::F32, Ty::I32) | (Ty::I32, Ty::F32) => {
                Unop::Reinterp(s.ty, ty)
            }
            _ => return None,
        };
        Some(Expr::Unop { op, a: s.val })
    }
}

/// A small FxHash-style hasher for the CSE table (no_std has no HashMap; this needs none).
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64)
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(v as u64)
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64)
    }
}

/// Open-addressing table of the pure expressions seen so far, by statement index (+1; 0 empty).
/// Sized at twice the statement count, so it never fills.
struct Cse {
    slots: Vec<u32>,
}

impl Cse {
    fn new(stmts: usize) -> Cse {
        Cse {
            slots: vec![0; (2 * stmts).next_power_of_two().max(16)],
        }
    }

    fn hash(e: &Expr) -> Option<u64> {
        let mut h = FxHasher(0);
        match e {
            Expr::Unop { op, a } => (1u8, op, a).hash(&mut h),
            Expr::Binop { op, a, b } => (2u8, op, a, b).hash(&mut h),
            Expr::Ite { cond, t, f } => (3u8, cond, t, f).hash(&mut h),
            Expr::CCall { callee, ret, args } => (4u8, callee.addr, ret, args).hash(&mut h),
            // Gets are handled by the known-state table; loads may see intervening stores.
            Expr::Atom(_) | Expr::Get { .. } | Expr::Load { .. } => return None,
        }
        Some(h.finish())
    }

    /// The temp defined earlier (in `done`) by an expression equal to `e`; otherwise remember
    /// that statement `i` defines `e`.
    fn find_or_insert(&mut self, e: &Expr, i: usize, done: &[Stmt]) -> Option<crate::Temp> {
        let mask = self.slots.len() - 1;
        let mut k = Self::hash(e)? as usize & mask;
        loop {
            match self.slots[k] {
                0 => {
                    self.slots[k] = i as u32 + 1;
                    return None;
                }
                j => {
                    if let Stmt::WrTmp { dst, e: prev } = &done[j as usize - 1]
                        && prev == e
                    {
                        return Some(*dst);
                    }
                }
            }
            k = (k + 1) & mask;
        }
    }
}

/// Bytes of guest state that will be overwritten before anything observes them, walking
/// backward. A byte is marked when its stamp equals `epoch`, so forgetting everything is O(1).
struct Overwritten {
    stamp: Vec<u32>,
    epoch: u32,
}

impl Overwritten {
    fn all(&self, off: u32, len: u32) -> bool {
        let (s, e) = (off as usize, (off + len) as usize);
        e <= self.stamp.len() && self.stamp[s..e].iter().all(|&x| x == self.epoch)
    }
    fn set(&mut self, off: u32, len: u32) {
        let end = (off + len) as usize;
        if self.stamp.len() < end {
            self.stamp.resize(end, 0);
        }
        self.stamp[off as usize..end].fill(self.epoch);
    }
    fn clear(&mut self, off: u32, len: u32) {
        let end = ((off + len) as usize).min(self.stamp.len());
        if let Some(s) = self.stamp.get_mut(off as usize..end) {
            s.fill(0);
        }
    }
    fn clear_all(&mut self) {
        self.epoch += 1;
    }
}

fn mark(live: &mut [bool], a: Atom) {
    if let Atom::Tmp(t) = a {
        live[t.0 as usize] = true;
    }
}

fn backward(sb: &mut Superblock, cfg: &OptConfig) {
    let mut live = vec![false; sb.temps.len()];
    mark(&mut live, sb.next);
    let (pc, sp) = (cfg.pc_offset, cfg.sp_offset);
    let mut ow = Overwritten {
        stamp: Vec::new(),
        epoch: 1,
    };
    // The block end writes `next` to the pc.
    ow.set(pc, ADDR_BYTES);
    let temps = &sb.temps;
    for s in sb.stmts.iter_mut().rev() {
        let may_fault = match s {
            Stmt::WrTmp { dst, e } => {
                if !live[dst.0 as usize] {
                    *s = Stmt::NoOp;
                    continue;
                }
                if let Expr::Get { off, ty } = *e {
                    ow.clear(off, ty.bytes());
                }
                matches!(
                    e,
                    Expr::Load { .. }
                        | Expr::Binop {
                            op: Binop::DivModU(_) | Binop::DivModS(_),
                            ..
                        }
                )
            }
            Stmt::Put { off, val } => {
                let len = atom_ty(temps, *val).bytes();
                if ow.all(*off, len) {
                    *s = Stmt::NoOp;
                    continue;
                }
                ow.set(*off, len);
                false
            }
            Stmt::Exit { .. } => {
                // A taken exit writes the pc, so a pc already dead on the fall-through path
                // stays dead; everything else is observable.
                let pc_dead = ow.all(pc, ADDR_BYTES);
                ow.clear_all();
                if pc_dead {
                    ow.set(pc, ADDR_BYTES);
                }
                false
            }
            Stmt::Dirty(d) => {
                for &(off, len) in &d.reads_state {
                    ow.clear(off, len);
                }
                // A helper may take a stack trace: it sees the pc as well.
                ow.clear(pc, ADDR_BYTES);
                true
            }
            Stmt::Store { .. } | Stmt::Cas { .. } => true,
            // A hint reads only its atoms (marked live below): it is kept, in place.
            Stmt::IMark { .. } | Stmt::Fence(_) | Stmt::AbiHint { .. } | Stmt::NoOp => false,
        };
        if may_fault {
            ow.clear(sp, ADDR_BYTES);
            ow.clear(cfg.fp_offset, ADDR_BYTES);
        }
        s.for_each_atom(|a| mark(&mut live, a));
    }
}

#[cfg(test)]
mod tests;
