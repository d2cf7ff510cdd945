//! Shadow memory (Valgrind's `mc_main` core): for every byte of the guest's address space, its
//! addressability (A) and validity (V) state. The common cases take two bits per byte —
//! no-access, undefined, defined, or "partially defined" — and the exact V bits of partially
//! defined bytes are kept aside in a map. The address space is split into 64 KiB chunks, each
//! described by a *secondary map*; chunks that are entirely no-access, undefined or defined
//! share one of three read-only distinguished secondaries, and get a private copy (allocated
//! in the core's tool arena) on their first mixed write.
//!
//! V-bit convention (Valgrind's): a 1 bit is undefined, a 0 bit defined.

use alloc::alloc::{Layout, alloc_zeroed};
use alloc::collections::BTreeMap;

use vg_core::arena::{ArenaId, with_arena};

/// Two-bit states of one byte.
pub const NOACCESS: u8 = 0;
pub const UNDEFINED: u8 = 1;
pub const DEFINED: u8 = 2;
pub const PARTDEFINED: u8 = 3;

const SM_BITS: u32 = 16;
const SM_SIZE: u64 = 1 << SM_BITS;
/// Bytes of one secondary map: four guest bytes per shadow byte.
const SM_BYTES: usize = (SM_SIZE / 4) as usize;
/// Guest addresses are below 2^48; higher ones are always no-access.
const ADDR_LIMIT: u64 = 1 << 48;
const L2_ENTRIES: usize = 1 << 16;

#[repr(C, align(64))]
pub struct Secondary([u8; SM_BYTES], [u8; SM_PAD]);

/// Zero (no-access) bytes after each secondary's shadow: generated code reads the shadow of an
/// access as one unaligned 64-bit word from the access's shadow byte, which may run past the
/// end; there it finds "no access" and takes the helper.
const SM_PAD: usize = 8;

/// The distinguished secondaries, indexed by state (no-access, undefined, defined), in one
/// array so that generated code tells them from private ones by one range check.
static DSM: [Secondary; 3] = [
    Secondary([0x00; SM_BYTES], [0; SM_PAD]),
    Secondary([0x55; SM_BYTES], [0; SM_PAD]),
    Secondary([0xAA; SM_BYTES], [0; SM_PAD]),
];

fn distinguished(state: u8) -> *const Secondary {
    &DSM[(state as usize).min(2)]
}

fn is_distinguished(p: *const Secondary) -> bool {
    (p as usize).wrapping_sub(DSM.as_ptr() as usize) < core::mem::size_of_val(&DSM)
}

/// One 4 GiB region's secondaries.
struct L2([*const Secondary; L2_ENTRIES]);

// SAFETY: L2 tables only hold pointers to secondaries; shared ones are never written.
unsafe impl Sync for L2 {}

/// The L2 table of a 4 GiB region nothing was mapped in: every chunk is no-access. L1 entries
/// and L2 entries are never null, so that generated code looks a byte's shadow up with two
/// unconditional loads.
static NOACCESS_L2: L2 = L2([&DSM[0] as *const Secondary; L2_ENTRIES]);

/// Where generated code sends the shadow writes it decides to skip (see `fastpath::set`).
struct Scratch(core::cell::UnsafeCell<[u64; 2]>);

// SAFETY: the contents are never read; concurrent writes of junk are harmless.
unsafe impl Sync for Scratch {}

static SCRATCH: Scratch = Scratch(core::cell::UnsafeCell::new([0; 2]));

/// Addresses generated code needs for the inline shadow lookups (see `fastpath`).
#[derive(Clone, Copy, Debug)]
pub struct FastTables {
    /// The L1 table: 65536 pointers to L2 tables, indexed by address bits 47..32.
    pub l1: u64,
    /// The first distinguished secondary; the three span `3 * SECONDARY_BYTES` bytes.
    pub dsm: u64,
    /// A writable 16-byte scratch area.
    pub scratch: u64,
}

/// Bytes one secondary takes in memory, padding included (each covers 64 KiB of guest memory).
pub const SECONDARY_BYTES: u64 = core::mem::size_of::<Secondary>() as u64;

/// The shadow memory of the whole address space.
pub struct ShadowMem {
    /// Indexed by address bits 47..32; `NOACCESS_L2` where nothing is mapped.
    l1: alloc::vec::Vec<*const L2>,
    /// Exact V bits of the bytes in state PARTDEFINED.
    partial: BTreeMap<u64, u8>,
    /// Private secondaries made so far (for `--stats`-style figures and tests).
    pub private_secondaries: usize,
}

// SAFETY: the raw pointers are owned by the map (private secondaries, L2 tables) or point at
// immutable statics; the map itself is only used under the core's big lock.
unsafe impl Send for ShadowMem {}

/// Allocates zeroed memory of `layout` in the tool arena (shadow data is the tool's).
fn tool_zeroed(layout: Layout) -> *mut u8 {
    // SAFETY: layouts here are non-zero-sized.
    let p = with_arena(ArenaId::Tool, || unsafe { alloc_zeroed(layout) });
    assert!(!p.is_null(), "memcheck: out of memory for shadow memory");
    p
}

impl Default for ShadowMem {
    fn default() -> Self {
        Self::new()
    }
}

impl ShadowMem {
    pub fn new() -> ShadowMem {
        ShadowMem { l1: alloc::vec![&NOACCESS_L2 as *const L2; 1 << 16], partial: BTreeMap::new(), private_secondaries: 0 }
    }

    /// The tables generated code reads (the L1 vector is never resized, so its address holds).
    pub fn fast_tables(&self) -> FastTables {
        FastTables { l1: self.l1.as_ptr() as u64, dsm: DSM.as_ptr() as u64, scratch: SCRATCH.0.get() as u64 }
    }

    #[inline]
    fn sm(&self, a: u64) -> *const Secondary {
        if a >= ADDR_LIMIT {
            return &DSM[0];
        }
        let l2 = self.l1[(a >> 32) as usize];
        // SAFETY: L2 tables are live allocations owned by this map or the shared static.
        unsafe { (*l2).0[((a >> SM_BITS) & 0xffff) as usize] }
    }

    /// The slot holding the secondary of `a` (creating its L2 table).
    fn slot(&mut self, a: u64) -> &mut *const Secondary {
        let i = (a >> 32) as usize;
        if core::ptr::eq(self.l1[i], &NOACCESS_L2) {
            let t = tool_zeroed(Layout::new::<L2>()) as *mut L2;
            // SAFETY: a fresh allocation of one L2 table.
            unsafe { (*t).0.fill(&DSM[0]) };
            self.l1[i] = t;
        }
        // SAFETY: a live private L2 table owned by this map.
        unsafe { &mut (*(self.l1[i] as *mut L2)).0[((a >> SM_BITS) & 0xffff) as usize] }
    }

    /// A writable secondary for `a` (copying a distinguished one on first write).
    fn sm_mut(&mut self, a: u64) -> *mut Secondary {
        let slot = self.slot(a);
        let cur = *slot;
        if !is_distinguished(cur) {
            return cur as *mut Secondary;
        }
        let p = tool_zeroed(Layout::new::<Secondary>()) as *mut Secondary;
        // SAFETY: fresh allocation of one Secondary; `cur` is a valid Secondary.
        unsafe { core::ptr::copy_nonoverlapping(cur, p, 1) };
        *slot = p;
        self.private_secondaries += 1;
        p
    }

    /// The two-bit state of the byte at `a`.
    #[inline]
    pub fn state(&self, a: u64) -> u8 {
        // SAFETY: `sm` returns a valid Secondary.
        let b = unsafe { (*self.sm(a)).0[((a & (SM_SIZE - 1)) >> 2) as usize] };
        (b >> ((a & 3) * 2)) & 3
    }

    /// The shadow byte covering the aligned four bytes at `a & !3` (four two-bit states).
    #[inline]
    fn quad(&self, a: u64) -> u8 {
        // SAFETY: `sm` returns a valid Secondary.
        unsafe { (*self.sm(a)).0[((a & (SM_SIZE - 1)) >> 2) as usize] }
    }

    fn set_state(&mut self, a: u64, st: u8) {
        if a >= ADDR_LIMIT || self.state(a) == st && st != PARTDEFINED {
            return;
        }
        let sm = self.sm_mut(a);
        let i = ((a & (SM_SIZE - 1)) >> 2) as usize;
        let sh = (a & 3) * 2;
        // SAFETY: a private secondary owned by this map.
        unsafe { (*sm).0[i] = ((*sm).0[i] & !(3 << sh)) | (st << sh) };
    }

    /// Give `[a, a+len)` the state `st` (NOACCESS, UNDEFINED or DEFINED).
    pub fn set_range(&mut self, a: u64, len: u64, st: u8) {
        let end = a.saturating_add(len).min(ADDR_LIMIT);
        if a >= end {
            return;
        }
        if !self.partial.is_empty() {
            let keys: alloc::vec::Vec<u64> = self.partial.range(a..end).map(|(k, _)| *k).collect();
            for k in keys {
                self.partial.remove(&k);
            }
        }
        let mut p = a;
        while p < end {
            let chunk_end = ((p | (SM_SIZE - 1)) + 1).min(end);
            if p & (SM_SIZE - 1) == 0 && chunk_end - p == SM_SIZE {
                // A whole chunk: share the distinguished secondary (freeing is not worth it:
                // private secondaries are reused when the range is written again).
                let slot = self.slot(p);
                if !is_distinguished(*slot) {
                    let fill = [0x00u8, 0x55, 0xAA][st as usize];
                    // SAFETY: a private secondary owned by this map.
                    unsafe { (*(*slot as *mut Secondary)).0.fill(fill) };
                } else {
                    *slot = distinguished(st);
                }
            } else {
                let whole = self.sm(p);
                if !core::ptr::eq(whole, distinguished(st)) {
                    let fill = [0x00u8, 0x55, 0xAA][st as usize];
                    let mut q = p;
                    while q < chunk_end && q & 3 != 0 {
                        self.set_state(q, st);
                        q += 1;
                    }
                    let body_end = chunk_end & !3;
                    if body_end > q {
                        let sm = self.sm_mut(q);
                        let i0 = ((q & (SM_SIZE - 1)) >> 2) as usize;
                        let i1 = i0 + ((body_end - q) >> 2) as usize;
                        // SAFETY: a private secondary owned by this map; [q, body_end) lies in
                        // its chunk.
                        unsafe { (&mut (*sm).0)[i0..i1].fill(fill) };
                        q = body_end;
                    }
                    while q < chunk_end {
                        self.set_state(q, st);
                        q += 1;
                    }
                }
            }
            p = chunk_end;
        }
    }

    pub fn make_noaccess(&mut self, a: u64, len: u64) {
        self.set_range(a, len, NOACCESS);
    }
    pub fn make_undefined(&mut self, a: u64, len: u64) {
        self.set_range(a, len, UNDEFINED);
    }
    pub fn make_defined(&mut self, a: u64, len: u64) {
        self.set_range(a, len, DEFINED);
    }
    /// Defined where addressable (Valgrind's MAKE_MEM_DEFINED_IF_ADDRESSABLE).
    pub fn make_defined_if_addressable(&mut self, a: u64, len: u64) {
        for i in 0..len {
            if self.state(a + i) != NOACCESS {
                self.store_byte(a + i, 0);
            }
        }
    }

    /// The V bits of the byte at `a`, or `None` if it is not addressable.
    #[inline]
    pub fn vbyte(&self, a: u64) -> Option<u8> {
        match self.state(a) {
            NOACCESS => None,
            UNDEFINED => Some(0xff),
            DEFINED => Some(0),
            _ => Some(self.partial.get(&a).copied().unwrap_or(0xff)),
        }
    }

    /// Write V bits `v` to the (addressable) byte at `a`.
    #[inline]
    pub fn store_byte(&mut self, a: u64, v: u8) {
        let old = self.state(a);
        if old == PARTDEFINED {
            self.partial.remove(&a);
        }
        match v {
            0 => self.set_state(a, DEFINED),
            0xff => self.set_state(a, UNDEFINED),
            _ => {
                self.set_state(a, PARTDEFINED);
                self.partial.insert(a, v);
            }
        }
    }

    /// Load the V bits of `n` (1..=8) bytes at `a`, little-endian. Returns the V bits and the
    /// first unaddressable byte if the access is invalid. With `partial_ok`, an aligned
    /// word-sized load with some addressable bytes is valid and its unaddressable bytes read as
    /// undefined (`--partial-loads-ok=yes`); otherwise unaddressable bytes read as defined, so
    /// that one invalid read does not cascade into undefined-value errors.
    pub fn load(&self, a: u64, n: u32, partial_ok: bool) -> (u64, Option<u64>) {
        // Fast path: aligned, all defined or all undefined.
        if a & (n as u64 - 1) == 0 && n >= 4 {
            let q = self.quad(a);
            let same = n == 4 || self.quad(a + 4) == q;
            if same && (q == 0xAA || q == 0x55) {
                let v = if q == 0xAA { 0 } else { u64::MAX >> (64 - 8 * n) };
                return (v, None);
            }
        }
        let mut v = 0u64;
        let mut bad = None;
        let mut any_ok = false;
        for i in 0..n as u64 {
            let b = match self.vbyte(a.wrapping_add(i)) {
                Some(b) => {
                    any_ok = true;
                    b
                }
                None => {
                    bad.get_or_insert(a.wrapping_add(i));
                    0
                }
            };
            v |= (b as u64) << (8 * i);
        }
        if bad.is_some()
            && partial_ok
            && any_ok
            && n >= 4
            && a & (n as u64 - 1) == 0
        {
            for i in 0..n as u64 {
                if self.state(a + i) == NOACCESS {
                    v |= 0xff << (8 * i);
                }
            }
            return (v, None);
        }
        (v, bad)
    }

    /// Store V bits `v` for `n` (1..=8) bytes at `a`. Returns the first unaddressable byte if
    /// any (those bytes keep their state).
    pub fn store(&mut self, a: u64, n: u32, v: u64) -> Option<u64> {
        if a & 3 == 0 && n >= 4 && a & (n as u64 - 1) == 0 && a + n as u64 <= ADDR_LIMIT {
            let mask = u64::MAX >> (64 - 8 * n);
            let fill = if v & mask == 0 {
                Some(0xAAu8)
            } else if v & mask == mask {
                Some(0x55)
            } else {
                None
            };
            let sm = self.sm(a);
            let q0 = self.quad(a);
            let q1 = if n == 8 { self.quad(a + 4) } else { q0 };
            // Addressable and not partially defined: overwrite whole shadow bytes.
            let plain = |q: u8| q == 0xAA || q == 0x55;
            if let Some(f) = fill
                && plain(q0)
                && plain(q1)
            {
                if core::ptr::eq(sm, distinguished(if f == 0xAA { DEFINED } else { UNDEFINED })) {
                    return None;
                }
                let sm = self.sm_mut(a);
                let i = ((a & (SM_SIZE - 1)) >> 2) as usize;
                // SAFETY: a private secondary owned by this map; an aligned 8-byte access stays
                // within one 64 KiB chunk.
                unsafe {
                    (*sm).0[i] = f;
                    if n == 8 {
                        (*sm).0[i + 1] = f;
                    }
                }
                return None;
            }
        }
        let mut bad = None;
        for i in 0..n as u64 {
            let p = a.wrapping_add(i);
            if self.state(p) == NOACCESS {
                bad.get_or_insert(p);
            } else {
                self.store_byte(p, (v >> (8 * i)) as u8);
            }
        }
        bad
    }

    /// The first byte of `[a, a+len)` that is not addressable.
    pub fn first_noaccess(&self, a: u64, len: u64) -> Option<u64> {
        (0..len).map(|i| a + i).find(|&p| self.state(p) == NOACCESS)
    }

    /// The first byte of `[a, a+len)` that is not addressable or not fully defined, with
    /// whether it is addressable.
    pub fn first_undefined(&self, a: u64, len: u64) -> Option<(u64, bool)> {
        (0..len).map(|i| a + i).find_map(|p| match self.vbyte(p) {
            None => Some((p, false)),
            Some(0) => None,
            Some(_) => Some((p, true)),
        })
    }

    /// Copy the A and V state of `[src, src+len)` to `[dst, dst+len)` (overlap allowed).
    pub fn copy_range(&mut self, src: u64, dst: u64, len: u64) {
        let mut copy = |i: u64| {
            let st = self.state(src + i);
            match st {
                NOACCESS => self.set_state(dst + i, NOACCESS),
                _ => {
                    let v = self.vbyte(src + i).unwrap_or(0);
                    if self.state(dst + i) == NOACCESS {
                        self.set_state(dst + i, UNDEFINED);
                    }
                    self.store_byte(dst + i, v)
                }
            }
        };
        if dst <= src {
            (0..len).for_each(&mut copy);
        } else {
            (0..len).rev().for_each(&mut copy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_memory_is_noaccess_and_shared() {
        let m = ShadowMem::new();
        assert_eq!(m.state(0x1000), NOACCESS);
        assert_eq!(m.state(u64::MAX), NOACCESS);
        assert_eq!(m.load(0x1000, 8, true), (0, Some(0x1000)));
    }

    #[test]
    fn whole_chunks_use_distinguished_secondaries() {
        let mut m = ShadowMem::new();
        m.make_defined(0x10_0000, 0x4_0000);
        assert_eq!(m.private_secondaries, 0);
        assert_eq!(m.state(0x10_0000), DEFINED);
        assert_eq!(m.state(0x13_ffff), DEFINED);
        assert_eq!(m.state(0x14_0000), NOACCESS);
        m.make_undefined(0x10_0010, 3);
        assert_eq!(m.private_secondaries, 1);
        assert_eq!(m.state(0x10_000f), DEFINED);
        assert_eq!(m.state(0x10_0010), UNDEFINED);
        assert_eq!(m.state(0x10_0012), UNDEFINED);
        assert_eq!(m.state(0x10_0013), DEFINED);
    }

    #[test]
    fn partially_defined_bytes_keep_exact_vbits() {
        let mut m = ShadowMem::new();
        m.make_undefined(0x2000, 16);
        assert_eq!(m.store(0x2000, 8, 0x00ff_0f00_0000_00f0), None);
        assert_eq!(m.state(0x2000), PARTDEFINED);
        assert_eq!(m.state(0x2001), DEFINED);
        assert_eq!(m.state(0x2006), UNDEFINED);
        assert_eq!(m.load(0x2000, 8, true), (0x00ff_0f00_0000_00f0, None));
        assert_eq!(m.load(0x2004, 2, true), (0x0f00, None));
        // Overwriting a partial byte drops its side entry.
        m.store(0x2000, 1, 0);
        assert_eq!(m.state(0x2000), DEFINED);
        assert!(m.partial.is_empty() || !m.partial.contains_key(&0x2000));
    }

    #[test]
    fn invalid_accesses_name_the_first_bad_byte() {
        let mut m = ShadowMem::new();
        m.make_defined(0x3000, 40);
        assert_eq!(m.store(0x3000 + 40, 4, 0), Some(0x3000 + 40));
        assert_eq!(m.store(0x3000 + 38, 4, 0), Some(0x3000 + 40));
        assert_eq!(m.state(0x3000 + 39), DEFINED);
        // Unaddressable bytes read as defined when the load is reported.
        assert_eq!(m.load(0x3000 + 38, 4, false), (0, Some(0x3000 + 40)));
        // An aligned word load partly in bounds is fine with --partial-loads-ok=yes, its bad
        // bytes undefined.
        assert_eq!(m.load(0x3000 + 32, 8, true), (0, None));
        assert_eq!(m.load(0x3000 + 36, 4, true), (0, None));
        m.make_defined(0x4000, 4);
        assert_eq!(m.load(0x4000, 8, true), (0xffff_ffff_0000_0000, None));
        assert_eq!(m.load(0x4000, 8, false).1, Some(0x4004));
    }

    #[test]
    fn fast_word_stores_and_loads() {
        let mut m = ShadowMem::new();
        m.make_undefined(0x5000, 64);
        assert_eq!(m.load(0x5008, 8, true), (u64::MAX, None));
        m.store(0x5008, 8, 0);
        assert_eq!(m.load(0x5008, 8, true), (0, None));
        assert_eq!(m.load(0x5004, 4, true), (0xffff_ffff, None));
        assert_eq!(m.load(0x5010, 4, true), (0xffff_ffff, None));
        m.store(0x5010, 4, u64::MAX);
        assert_eq!(m.state(0x5010), UNDEFINED);
    }

    #[test]
    fn copy_range_moves_states() {
        let mut m = ShadowMem::new();
        m.make_defined(0x6000, 4);
        m.make_undefined(0x6004, 4);
        m.store(0x6002, 1, 0x0f);
        m.copy_range(0x6000, 0x7000, 8);
        assert_eq!(m.load(0x7000, 8, false), (0xffff_ffff_000f_0000, None));
        assert_eq!(m.state(0x7008), NOACCESS);
        assert_eq!(m.first_undefined(0x7000, 8), Some((0x7002, true)));
        assert_eq!(m.first_noaccess(0x7000, 9), Some(0x7008));
    }
}
