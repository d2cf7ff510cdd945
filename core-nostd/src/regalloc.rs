//! Linear-scan register allocation over virtual registers, shared by the host back ends.
//!
//! Superblocks are straight-line code, so each virtual register has one live interval
//! `[definition, last use]`. The back end describes its vcode instruction by instruction through
//! [`Liveness`] (uses, defs, clobbered host registers, copy hints); [`Liveness::allocate`] gives
//! every virtual register one location for its whole life: a host register or a spill slot.
//! Spill slots are 16 bytes each; the back end places slot `k` at `spill_offset + 16 * k` of the
//! state block.
//!
//! Positions: instruction `i` reads its uses at `2i` and writes its defs at `2i + 1`, so a def
//! may share a register with a use that dies in the same instruction (two-address friendly). An
//! *early* def (written before all uses are read) is placed at `2i` and so never shares.
//! A clobber at instruction `i` forbids its registers to every interval live across `2i`,
//! including the uses of that instruction: call arguments therefore never sit in argument
//! registers, so setting up a call needs no parallel move.
//!
//! When registers run out, the interval that ends furthest away is spilled (Poletto & Sarkar).
//! A value that is a copy of memory the back end can address and that stays unchanged while the
//! value lives (a guest-state slot read by `Get` and not written before the value's last use)
//! has a *home* ([`Liveness::set_home`]): spilling it costs no store and no slot, its uses read
//! the home, so such values are spilled first.
//!
//! Depends on `alloc` only.

use alloc::vec;
use alloc::vec::Vec;

/// Register class of a virtual register.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum RegClass {
    /// General-purpose integer registers.
    Int = 0,
    /// Floating-point / vector registers.
    Vec = 1,
}

/// A virtual register (index into the [`Liveness`] tables).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub struct VReg(pub u32);

/// Where a virtual register lives for its whole interval.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Loc {
    /// Host register number (encoding number in its class).
    Reg(u8),
    /// Spill slot index (16 bytes each).
    Spill(u32),
    /// Lives in its home (the tag given to [`Liveness::set_home`]); its definition, a load from
    /// that home, needs no code.
    Home(u32),
    /// Never defined nor used.
    Unused,
}

/// The host registers available to the allocator, per class, in order of preference. Number
/// `n` stands for bit `n` of clobber masks.
#[derive(Copy, Clone, Debug)]
pub struct HostRegs {
    pub int: &'static [u8],
    pub vec: &'static [u8],
}

/// Allocation failure.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum RegAllocError {
    /// More simultaneously spilled values than the spill area holds.
    OutOfSpillSlots,
}

/// The result: a location per virtual register, and how many spill slots were used.
#[derive(Clone, Debug)]
pub struct Allocation {
    pub locs: Vec<Loc>,
    pub spill_slots: u32,
}

impl Allocation {
    pub fn loc(&self, v: VReg) -> Loc {
        self.locs[v.0 as usize]
    }
}

const NONE: u32 = u32::MAX;

/// Per-virtual-register interval data collected from the vcode.
#[derive(Default)]
pub struct Liveness {
    class: Vec<RegClass>,
    start: Vec<u32>,
    end: Vec<u32>,
    hint: Vec<u32>,
    /// (tag, last position at which the home still holds the value) or NONE.
    home: Vec<(u32, u32)>,
    /// (position, clobber mask of Int, clobber mask of Vec), in increasing position.
    clobbers: Vec<(u32, u64, u64)>,
}

impl Liveness {
    pub fn new() -> Liveness {
        Liveness::default()
    }

    /// A fresh virtual register of class `c`.
    pub fn new_vreg(&mut self, c: RegClass) -> VReg {
        self.class.push(c);
        self.start.push(NONE);
        self.end.push(0);
        self.hint.push(NONE);
        self.home.push((NONE, 0));
        VReg(self.class.len() as u32 - 1)
    }

    pub fn num_vregs(&self) -> usize {
        self.class.len()
    }
    pub fn class(&self, v: VReg) -> RegClass {
        self.class[v.0 as usize]
    }

    fn touch(&mut self, v: VReg, pos: u32) {
        let i = v.0 as usize;
        self.start[i] = self.start[i].min(pos);
        self.end[i] = self.end[i].max(pos);
    }

    /// Instruction `inst` reads `v`.
    pub fn add_use(&mut self, inst: usize, v: VReg) {
        self.touch(v, 2 * inst as u32)
    }
    /// Instruction `inst` writes `v` after reading all its uses.
    pub fn add_def(&mut self, inst: usize, v: VReg) {
        self.touch(v, 2 * inst as u32 + 1)
    }
    /// Instruction `inst` writes `v` while some of its uses may still be unread.
    pub fn add_early_def(&mut self, inst: usize, v: VReg) {
        self.touch(v, 2 * inst as u32)
    }
    /// Instruction `inst` destroys the host registers in `mask` (bit n = register n) of class `c`.
    /// Instructions must be described in increasing order for clobbers.
    pub fn add_clobber(&mut self, inst: usize, c: RegClass, mask: u64) {
        let pos = 2 * inst as u32;
        if self.clobbers.last().map(|l| l.0) != Some(pos) {
            self.clobbers.push((pos, 0, 0));
        }
        let last = self.clobbers.last_mut().unwrap();
        match c {
            RegClass::Int => last.1 |= mask,
            RegClass::Vec => last.2 |= mask,
        }
    }
    /// Prefer giving `v` the register of `from` (e.g. a copy, or the first source of a
    /// two-address operation), when `from` dies where `v` is born.
    pub fn add_hint(&mut self, v: VReg, from: VReg) {
        self.hint[v.0 as usize] = from.0;
    }

    /// `v` was loaded from the home `tag`, which keeps its value up to and including the uses of
    /// instruction `until` (which may overwrite the home after reading its operands); `None`:
    /// until the end of the block.
    pub fn set_home(&mut self, v: VReg, tag: u32, until: Option<usize>) {
        let last = until.map_or(u32::MAX, |i| 2 * i as u32);
        self.home[v.0 as usize] = (tag, last);
    }

    /// The home of `v` if it holds `v`'s value over its whole interval.
    fn valid_home(&self, v: usize) -> Option<u32> {
        let (tag, last) = self.home[v];
        (tag != NONE && self.end[v] <= last).then_some(tag)
    }

    /// Registers of class `c` clobbered anywhere in `[s, e]`.
    fn forbidden(&self, c: RegClass, s: u32, e: u32) -> u64 {
        let first = self.clobbers.partition_point(|cl| cl.0 < s);
        let mut m = 0;
        for cl in &self.clobbers[first..] {
            if cl.0 > e {
                break;
            }
            m |= if c == RegClass::Int { cl.1 } else { cl.2 };
        }
        m
    }
    /// For each instruction index in `insts` (increasing): the host registers (bit masks of the
    /// Int and Vec classes) that hold, under `a`, values live across it — written before it and
    /// read after it. Back ends use it to save only those around a call made off the
    /// allocator's books (an out-of-line slow path).
    pub fn live_across(&self, a: &Allocation, insts: &[usize]) -> Vec<(u64, u64)> {
        let mut masks = vec![(0u64, 0u64); insts.len()];
        if insts.is_empty() {
            return masks;
        }
        for v in 0..self.class.len() {
            let Loc::Reg(r) = a.locs[v] else { continue };
            if self.start[v] == NONE {
                continue;
            }
            // Instructions i with start < 2i and 2i + 1 < end.
            let first = insts.partition_point(|&i| 2 * i as u32 <= self.start[v]);
            for (k, &i) in insts.iter().enumerate().skip(first) {
                if 2 * i as u32 + 1 >= self.end[v] {
                    break;
                }
                match self.class[v] {
                    RegClass::Int => masks[k].0 |= 1 << r,
                    RegClass::Vec => masks[k].1 |= 1 << r,
                }
            }
        }
        masks
    }

    /// Run linear scan. `max_slots` is the number of 16-byte spill slots available.
    pub fn allocate(&self, regs: &HostRegs, max_slots: u32) -> Result<Allocation, RegAllocError> {
        let n = self.class.len();
        let mut locs = vec![Loc::Unused; n];
        let mut order: Vec<u32> = (0..n as u32).filter(|&v| self.start[v as usize] != NONE).collect();
        order.sort_by_key(|&v| (self.start[v as usize], v));

        // Active register intervals: (vreg, reg).
        let mut active: Vec<(u32, u8)> = Vec::new();
        // Per slot: the last position any occupant is live.
        let mut slot_busy: Vec<u32> = Vec::new();
        let mut free = [mask_of(regs.int), mask_of(regs.vec)];

        let take_slot = |slot_busy: &mut Vec<u32>, s: u32, e: u32| -> Result<u32, RegAllocError> {
            if let Some(k) = slot_busy.iter().position(|&b| b < s) {
                slot_busy[k] = e;
                return Ok(k as u32);
            }
            if slot_busy.len() as u32 >= max_slots {
                return Err(RegAllocError::OutOfSpillSlots);
            }
            slot_busy.push(e);
            Ok(slot_busy.len() as u32 - 1)
        };

        for &v in &order {
            let vi = v as usize;
            let (s, e, c) = (self.start[vi], self.end[vi], self.class[vi]);
            let ci = c as usize;
            // Expire intervals that ended before this one starts.
            active.retain(|&(a, r)| {
                if self.end[a as usize] < s {
                    free[self.class[a as usize] as usize] |= 1 << r;
                    false
                } else {
                    true
                }
            });
            let allowed = !self.forbidden(c, s, e);
            let cand = free[ci] & allowed;
            let prefs = if c == RegClass::Int { regs.int } else { regs.vec };
            if cand != 0 {
                let h = self.hint[vi];
                let r = match h {
                    NONE => None,
                    h => match locs[h as usize] {
                        Loc::Reg(r) if cand & (1 << r) != 0 => Some(r),
                        _ => None,
                    },
                };
                let r = r.unwrap_or_else(|| *prefs.iter().find(|&&r| cand & (1 << r) != 0).unwrap());
                free[ci] &= !(1 << r);
                locs[vi] = Loc::Reg(r);
                active.push((v, r));
                continue;
            }
            // No register: send this value home if it has one; else steal the register of the
            // stealable active interval with a home that ends last; else spill whichever of this
            // and the stealable intervals ends last.
            if let Some(tag) = self.valid_home(vi) {
                locs[vi] = Loc::Home(tag);
                continue;
            }
            let stealable = |&(_, &(a, r)): &(usize, &(u32, u8))| self.class[a as usize] == c && allowed & (1 << r) != 0;
            let homed = active
                .iter()
                .enumerate()
                .filter(stealable)
                .filter_map(|(i, &(a, r))| self.valid_home(a as usize).map(|tag| (i, a, r, tag)))
                .max_by_key(|&(_, a, _, _)| self.end[a as usize]);
            if let Some((i, a, r, tag)) = homed {
                locs[a as usize] = Loc::Home(tag);
                active[i] = (v, r);
                locs[vi] = Loc::Reg(r);
                continue;
            }
            let victim = active
                .iter()
                .enumerate()
                .filter(stealable)
                .max_by_key(|&(_, &(a, _))| self.end[a as usize])
                .map(|(i, &(a, r))| (i, a, r));
            match victim {
                Some((i, a, r)) if self.end[a as usize] > e => {
                    let ai = a as usize;
                    locs[ai] = Loc::Spill(take_slot(&mut slot_busy, self.start[ai], self.end[ai])?);
                    active[i] = (v, r);
                    locs[vi] = Loc::Reg(r);
                }
                _ => locs[vi] = Loc::Spill(take_slot(&mut slot_busy, s, e)?),
            }
        }
        Ok(Allocation { locs, spill_slots: slot_busy.len() as u32 })
    }
}

fn mask_of(rs: &[u8]) -> u64 {
    rs.iter().fold(0, |m, &r| m | 1 << r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGS: HostRegs = HostRegs { int: &[1, 2, 3], vec: &[0, 1] };

    fn check_no_overlap(l: &Liveness, a: &Allocation) {
        for x in 0..l.num_vregs() {
            for y in x + 1..l.num_vregs() {
                let (lx, ly) = (a.locs[x], a.locs[y]);
                if matches!(lx, Loc::Unused | Loc::Home(_)) || lx != ly {
                    continue;
                }
                if matches!(lx, Loc::Reg(_)) && l.class[x] != l.class[y] {
                    continue;
                }
                let overlap = l.start[x] <= l.end[y] && l.start[y] <= l.end[x];
                assert!(!overlap, "v{x} and v{y} overlap in {lx:?}");
            }
        }
    }

    #[test]
    fn reuses_register_of_dying_use() {
        let mut l = Liveness::new();
        let a = l.new_vreg(RegClass::Int);
        let b = l.new_vreg(RegClass::Int);
        l.add_def(0, a);
        l.add_use(1, a);
        l.add_def(1, b);
        l.add_hint(b, a);
        l.add_use(2, b);
        let al = l.allocate(&REGS, 4).unwrap();
        assert_eq!(al.loc(a), al.loc(b));
        assert_eq!(al.spill_slots, 0);
    }

    #[test]
    fn early_def_does_not_share() {
        let mut l = Liveness::new();
        let a = l.new_vreg(RegClass::Int);
        let b = l.new_vreg(RegClass::Int);
        l.add_def(0, a);
        l.add_use(1, a);
        l.add_early_def(1, b);
        l.add_use(2, b);
        let al = l.allocate(&REGS, 4).unwrap();
        assert_ne!(al.loc(a), al.loc(b));
    }

    #[test]
    fn spills_furthest_end() {
        // Four values live at once with three registers: the one used last is spilled.
        let mut l = Liveness::new();
        let v: Vec<VReg> = (0..4).map(|_| l.new_vreg(RegClass::Int)).collect();
        for (i, &x) in v.iter().enumerate() {
            l.add_def(i, x);
        }
        l.add_use(4, v[1]);
        l.add_use(5, v[3]);
        l.add_use(6, v[2]);
        l.add_use(9, v[0]);
        let al = l.allocate(&REGS, 4).unwrap();
        assert_eq!(al.loc(v[0]), Loc::Spill(0));
        for x in &v[1..] {
            assert!(matches!(al.loc(*x), Loc::Reg(_)));
        }
        check_no_overlap(&l, &al);
    }

    #[test]
    fn clobbers_avoid_caller_saved_and_args() {
        // Registers 1 and 2 are clobbered by a call at instruction 2; register 3 survives.
        let mut l = Liveness::new();
        let x = l.new_vreg(RegClass::Int);
        let y = l.new_vreg(RegClass::Int);
        let f = l.new_vreg(RegClass::Vec);
        l.add_def(0, x);
        l.add_def(1, y);
        l.add_def(1, f);
        l.add_use(2, y); // an argument: used by the call itself
        l.add_clobber(2, RegClass::Int, 0b110);
        l.add_clobber(2, RegClass::Vec, 0b11);
        l.add_use(3, x);
        l.add_use(3, f);
        let al = l.allocate(&REGS, 4).unwrap();
        let ok = |lc: Loc| matches!(lc, Loc::Reg(3) | Loc::Spill(_));
        assert!(ok(al.loc(x)) && ok(al.loc(y)));
        assert!(matches!(al.loc(f), Loc::Spill(_)));
        check_no_overlap(&l, &al);
    }

    #[test]
    fn values_with_a_valid_home_spill_there_for_free() {
        // Four values live at once with three registers; v0 (used last) has a home that holds
        // until the end, v1 one that is overwritten before v1's last use.
        let mut l = Liveness::new();
        let v: Vec<VReg> = (0..4).map(|_| l.new_vreg(RegClass::Int)).collect();
        for (i, &x) in v.iter().enumerate() {
            l.add_def(i, x);
        }
        l.set_home(v[0], 0x40, None);
        l.set_home(v[1], 0x48, Some(5));
        l.add_use(6, v[1]);
        l.add_use(7, v[2]);
        l.add_use(8, v[3]);
        l.add_use(4, v[0]);
        let al = l.allocate(&REGS, 4).unwrap();
        assert_eq!(al.loc(v[0]), Loc::Home(0x40));
        assert_eq!(al.spill_slots, 0);
        assert!(v[1..].iter().all(|x| matches!(al.loc(*x), Loc::Reg(_))));
        // With v0's home gone, the furthest-ending value (v3) takes a real spill slot, and v1's
        // home (overwritten at instruction 5, used at 6) is never used.
        let mut l2 = Liveness::new();
        let w: Vec<VReg> = (0..4).map(|_| l2.new_vreg(RegClass::Int)).collect();
        for (i, &x) in w.iter().enumerate() {
            l2.add_def(i, x);
        }
        l2.set_home(w[1], 0x48, Some(5));
        l2.add_use(6, w[1]);
        l2.add_use(7, w[2]);
        l2.add_use(9, w[3]);
        l2.add_use(4, w[0]);
        let al2 = l2.allocate(&REGS, 4).unwrap();
        assert_eq!(al2.loc(w[3]), Loc::Spill(0));
        assert!(al2.locs.iter().all(|lc| !matches!(lc, Loc::Home(_))));
        check_no_overlap(&l2, &al2);
    }

    #[test]
    fn out_of_slots() {
        let mut l = Liveness::new();
        let v: Vec<VReg> = (0..6).map(|_| l.new_vreg(RegClass::Int)).collect();
        for (i, &x) in v.iter().enumerate() {
            l.add_def(i, x);
            l.add_use(10, x);
        }
        assert_eq!(l.allocate(&REGS, 2).unwrap_err(), RegAllocError::OutOfSpillSlots);
        let al = l.allocate(&REGS, 3).unwrap();
        assert_eq!(al.spill_slots, 3);
        check_no_overlap(&l, &al);
    }

    #[test]
    fn random_intervals_never_conflict() {
        // A small xorshift generator: deterministic pseudo-random straight-line programs.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let mut l = Liveness::new();
            let mut live: Vec<VReg> = Vec::new();
            for i in 0..40 {
                for _ in 0..rnd(3) {
                    if !live.is_empty() {
                        let k = rnd(live.len() as u64) as usize;
                        l.add_use(i, live[k]);
                        if rnd(2) == 0 {
                            live.swap_remove(k);
                        }
                    }
                }
                if rnd(5) == 0 {
                    l.add_clobber(i, RegClass::Int, 0b011);
                }
                let c = if rnd(4) == 0 { RegClass::Vec } else { RegClass::Int };
                let v = l.new_vreg(c);
                if rnd(3) == 0 {
                    l.add_early_def(i, v);
                } else {
                    l.add_def(i, v);
                }
                live.push(v);
            }
            let al = l.allocate(&REGS, 64).unwrap();
            check_no_overlap(&l, &al);
            for (i, &loc) in al.locs.iter().enumerate() {
                if let Loc::Reg(r) = loc {
                    let m = l.forbidden(l.class[i], l.start[i], l.end[i]);
                    assert_eq!(m & (1 << r), 0, "v{i} in a clobbered register");
                }
            }
        }
    }
}
