//! The translation table: the code cache, the fast lookup cache and chaining bookkeeping.
//!
//! Translations live in a few large sectors of executable memory, filled in order; when all are
//! full the oldest sector is emptied (its translations are forgotten and every chain into them
//! is undone), as Valgrind does. A direct-mapped fast cache, read by the dispatcher's indirect-jump
//! path, maps a guest address to host code; the full map behind it is a B-tree.
//!
//! Uses: `arch` (chaining is done by the host back end), `syscalls` for the code memory,
//! `redir::live` (addresses whose redirection changed are discarded) and `translate`'s
//! no-redirection tag.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::arch::{DispatchAddrs, HostArch, HostCode};

/// One entry of the fast lookup cache; the layout is shared with the dispatcher's assembly.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FastEntry {
    pub guest: u64,
    pub host: u64,
}

/// log2 of the fast cache's entry count.
const FAST_BITS: u32 = 15;
pub const FAST_MASK: u64 = (1 << FAST_BITS) - 1;

/// The fast cache's hash of a guest address (the dispatcher computes the same).
#[inline]
pub const fn fast_index(pc: u64) -> usize {
    ((pc ^ (pc >> 16)) & FAST_MASK) as usize
}

/// Sector geometry: enough for large programs, small enough to start quickly (sectors are
/// mapped lazily, on first use).
const SECTOR_SIZE: usize = 16 << 20;
const N_SECTORS: usize = 8;

/// A translation's bookkeeping.
struct Translation {
    guest: u64,
    host: usize,
    sector: usize,
    /// Number of guest bytes (for discarding by range) — upper bound: last IMark end - guest.
    guest_len: u64,
    /// This translation's chain sites (absolute addresses) and whether each is chained.
    sites: Vec<(usize, u64)>,
    /// Length of its host code, and where each guest instruction's code starts (offsets).
    code_len: usize,
    pc_map: Vec<(u32, u64)>,
}

struct Sector {
    base: usize,
    used: usize,
    /// Guest addresses of the translations in this sector.
    entries: Vec<u64>,
}

/// Counters printed by `--stats=yes`.
static STAT_TRANSLATIONS: AtomicU64 = AtomicU64::new(0);
static STAT_GUEST_INSNS: AtomicU64 = AtomicU64::new(0);
static STAT_CODE_BYTES: AtomicU64 = AtomicU64::new(0);
static STAT_CHAINS: AtomicU64 = AtomicU64::new(0);
static STAT_FAST_MISSES: AtomicU64 = AtomicU64::new(0);
static STAT_DISCARDED: AtomicU64 = AtomicU64::new(0);
static STAT_SECTOR_RECYCLES: AtomicU64 = AtomicU64::new(0);

/// The table of translations.
pub struct TransTab {
    fast: Vec<FastEntry>,
    map: BTreeMap<u64, Translation>,
    sectors: Vec<Sector>,
    current: usize,
    /// For each chained site (absolute address): the guest address it jumps to, so chains into
    /// a discarded translation can be undone.
    incoming: BTreeMap<u64, Vec<usize>>,
}

impl TransTab {
    pub fn new() -> TransTab {
        TransTab {
            fast: alloc::vec![FastEntry { guest: u64::MAX, host: 0 }; FAST_MASK as usize + 1],
            map: BTreeMap::new(),
            sectors: Vec::new(),
            current: 0,
            incoming: BTreeMap::new(),
        }
    }

    /// The fast cache, for the dispatcher.
    pub fn fast_table(&self) -> *const u8 {
        self.fast.as_ptr() as *const u8
    }

    /// Host code for `guest`, if translated; refreshes the fast cache entry.
    pub fn lookup(&mut self, guest: u64) -> Option<*const u8> {
        STAT_FAST_MISSES.fetch_add(1, Ordering::Relaxed);
        let host = self.map.get(&guest)?.host;
        self.fast[fast_index(guest)] = FastEntry { guest, host: host as u64 };
        Some(host as *const u8)
    }

    /// Copy a new translation of `guest` (covering `guest_len` bytes of guest code, `n_insns`
    /// instructions) into the code cache and return its address.
    pub fn add<H: HostArch>(
        &mut self,
        guest: u64,
        guest_len: u64,
        n_insns: usize,
        code: &HostCode,
        disp: &DispatchAddrs,
    ) -> *const u8 {
        // Translations made before a redirection of their address changed are stale.
        for addr in crate::redir::live::take_changed() {
            self.discard_range::<H>(addr, 1, disp);
        }
        let len = (code.bytes.len() + 15) & !15;
        assert!(len <= SECTOR_SIZE, "translation larger than a code sector");
        let sector = self.sector_with_room::<H>(len, disp);
        let s = &mut self.sectors[sector];
        let host = s.base + s.used;
        // SAFETY: [host, host+len) lies inside the sector's RWX mapping and is unused.
        unsafe { core::ptr::copy_nonoverlapping(code.bytes.as_ptr(), host as *mut u8, code.bytes.len()) };
        s.used += len;
        s.entries.push(guest);
        let sites = code.chain_sites.iter().map(|c| (host + c.offset as usize, c.dst)).collect();
        if let Some(old) = self.map.insert(guest, Translation {
            guest,
            host,
            sector,
            guest_len,
            sites,
            code_len: code.bytes.len(),
            pc_map: code.pc_map.clone(),
        }) {
            // Retranslation of the same address: forget the old one's chains.
            self.forget_sites(&old);
        }
        self.fast[fast_index(guest)] = FastEntry { guest, host: host as u64 };
        STAT_TRANSLATIONS.fetch_add(1, Ordering::Relaxed);
        STAT_GUEST_INSNS.fetch_add(n_insns as u64, Ordering::Relaxed);
        STAT_CODE_BYTES.fetch_add(code.bytes.len() as u64, Ordering::Relaxed);
        host as *const u8
    }

    /// Chain the exit at `site` (of a live translation) to the translation of `dst`.
    // `target` is only written into the jump, never dereferenced here.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    pub fn chain<H: HostArch>(&mut self, site: usize, dst: u64, target: *const u8) {
        // SAFETY: `site` came from the dispatcher's ChainMe for a live translation.
        unsafe { H::chain(site as *mut u8, target) };
        self.incoming.entry(dst).or_default().push(site);
        STAT_CHAINS.fetch_add(1, Ordering::Relaxed);
    }

    /// The guest instruction whose host code contains `host_pc` (a fault in generated code).
    /// Faults are rare: a scan of the table is fine.
    pub fn guest_pc_at(&self, host_pc: usize) -> Option<u64> {
        let t = self.map.values().find(|t| host_pc >= t.host && host_pc < t.host + t.code_len)?;
        let off = (host_pc - t.host) as u32;
        t.pc_map.iter().take_while(|&&(o, _)| o <= off).last().map(|&(_, pc)| pc)
    }

    /// Guest bytes covered by the translation of `guest`, if there is one.
    pub fn guest_len(&self, guest: u64) -> Option<u64> {
        self.map.get(&guest).map(|t| t.guest_len)
    }

    /// Discard every translation whose guest code overlaps [start, start+len).
    pub fn discard_range<H: HostArch>(&mut self, start: u64, len: u64, disp: &DispatchAddrs) {
        let end = start.saturating_add(len);
        let victims: Vec<u64> = self
            .map
            .values()
            .filter(|t| {
                // A translation made without redirection covers the code under its untagged key.
                let g = t.guest & !crate::translate::NOREDIR_TAG;
                g < end && g.saturating_add(t.guest_len) > start
            })
            .map(|t| t.guest)
            .collect();
        for g in victims {
            self.remove::<H>(g, disp);
        }
    }

    fn remove<H: HostArch>(&mut self, guest: u64, disp: &DispatchAddrs) {
        let Some(t) = self.map.remove(&guest) else { return };
        self.forget_sites(&t);
        if let Some(sites) = self.incoming.remove(&guest) {
            for site in sites {
                if self.site_is_live(site) {
                    // SAFETY: the site belongs to a live translation (checked above).
                    unsafe { H::unchain(site as *mut u8, disp) };
                }
            }
        }
        let e = &mut self.fast[fast_index(guest)];
        if e.guest == guest {
            e.guest = u64::MAX;
        }
        STAT_DISCARDED.fetch_add(1, Ordering::Relaxed);
    }

    /// Drop `t`'s own chain sites from the incoming lists (its code is going away).
    fn forget_sites(&mut self, t: &Translation) {
        for &(site, dst) in &t.sites {
            if let Some(v) = self.incoming.get_mut(&dst) {
                v.retain(|&s| s != site);
            }
        }
    }

    fn site_is_live(&self, site: usize) -> bool {
        self.sectors.iter().any(|s| site >= s.base && site < s.base + s.used)
    }

    /// A sector with `len` free bytes, recycling the oldest when all are full.
    fn sector_with_room<H: HostArch>(&mut self, len: usize, disp: &DispatchAddrs) -> usize {
        if self.sectors.is_empty() {
            self.sectors.push(new_sector());
            self.current = 0;
        }
        if self.sectors[self.current].used + len <= SECTOR_SIZE {
            return self.current;
        }
        let next = (self.current + 1) % N_SECTORS;
        if next == self.sectors.len() {
            self.sectors.push(new_sector());
        } else {
            self.empty_sector::<H>(next, disp);
        }
        self.current = next;
        next
    }

    fn empty_sector<H: HostArch>(&mut self, idx: usize, disp: &DispatchAddrs) {
        let guests = core::mem::take(&mut self.sectors[idx].entries);
        for g in guests {
            if self.map.get(&g).is_some_and(|t| t.sector == idx) {
                self.remove::<H>(g, disp);
            }
        }
        self.sectors[idx].used = 0;
        STAT_SECTOR_RECYCLES.fetch_add(1, Ordering::Relaxed);
    }
}

impl Default for TransTab {
    fn default() -> Self {
        Self::new()
    }
}

/// Bases of the mapped code sectors, readable from a signal handler (see [`in_code_cache`]).
static SECTOR_BASES: [AtomicUsize; N_SECTORS] = [const { AtomicUsize::new(0) }; N_SECTORS];

/// Whether host address `pc` lies in generated code (used to tell guest faults from the
/// core's own).
pub fn in_code_cache(pc: usize) -> bool {
    SECTOR_BASES.iter().any(|b| {
        let base = b.load(Ordering::Relaxed);
        base != 0 && pc >= base && pc < base + SECTOR_SIZE
    })
}

fn new_sector() -> Sector {
    use syscalls::{Sysno, syscall};
    const PROT_RWX: usize = 7;
    const MAP_PRIVATE_ANON: usize = 0x22;
    // SAFETY: an anonymous private mapping at a kernel-chosen address has no other effect.
    let base = unsafe { syscall!(Sysno::mmap, 0, SECTOR_SIZE, PROT_RWX, MAP_PRIVATE_ANON, usize::MAX, 0) }
        .unwrap_or_else(|e| panic!("cannot map a code sector: {e:?}"));
    if let Some(slot) = SECTOR_BASES.iter().find(|b| b.load(Ordering::Relaxed) == 0) {
        slot.store(base, Ordering::Relaxed);
    }
    Sector { base, used: 0, entries: Vec::new() }
}

/// Figures for `--stats=yes`.
pub struct TransStats {
    pub translations: u64,
    pub guest_insns: u64,
    pub code_bytes: u64,
    pub chains: u64,
    pub fast_misses: u64,
    pub discarded: u64,
    pub sector_recycles: u64,
}

pub fn stats() -> TransStats {
    TransStats {
        translations: STAT_TRANSLATIONS.load(Ordering::Relaxed),
        guest_insns: STAT_GUEST_INSNS.load(Ordering::Relaxed),
        code_bytes: STAT_CODE_BYTES.load(Ordering::Relaxed),
        chains: STAT_CHAINS.load(Ordering::Relaxed),
        fast_misses: STAT_FAST_MISSES.load(Ordering::Relaxed),
        discarded: STAT_DISCARDED.load(Ordering::Relaxed),
        sector_recycles: STAT_SECTOR_RECYCLES.load(Ordering::Relaxed),
    }
}

/// Print the translation-table figures for `--stats=yes` (debug-prefixed lines, as Valgrind).
pub fn print_stats() {
    let s = stats();
    let ratio = (s.code_bytes * 10).checked_div(s.guest_insns).unwrap_or(0);
    crate::dmsg!(
        "transtab: new {} translations ({} guest insns -> {} host bytes; {}.{} bytes/insn)",
        s.translations,
        s.guest_insns,
        s.code_bytes,
        ratio / 10,
        ratio % 10
    );
    crate::dmsg!("transtab: discarded {} (sectors recycled {})", s.discarded, s.sector_recycles);
    crate::dmsg!("transtab: {} chainings, {} fast-cache misses", s.chains, s.fast_misses);
}
