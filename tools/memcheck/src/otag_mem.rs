//! Origin shadow memory for `--track-origins=yes` (Valgrind's `ocache`, differently built): for
//! each 4-byte aligned word of guest memory one 32-bit origin tag (see [`crate::origins`]) and a
//! 4-bit mask saying which of the word's bytes carry it. Memory is split into 64 KiB chunks,
//! each with a page allocated in the tool arena on the first non-zero tag stored in it (80 KiB:
//! the tags, then one mask byte per word). As in the V-bit shadow, table entries are never
//! null: regions and chunks without origins share a read-only zero L2 table and zero page, so
//! generated code finds a word's tag with two unconditional loads (see [`OTables`]).
//!
//! A tag is only meaningful for bytes whose V bits say undefined: generated code does not
//! store the (zero) origin of fully defined data, so defined bytes may keep stale tags, and
//! [`OriginMem::load_undefined`] consults the tags of undefined bytes only.

use alloc::alloc::{Layout, alloc_zeroed};
use alloc::vec::Vec;

use vg_core::arena::{ArenaId, with_arena};

const PAGE_BITS: u32 = 16;
const PAGE_SIZE: u64 = 1 << PAGE_BITS;
const WORDS: usize = (PAGE_SIZE / 4) as usize;
/// Guest addresses are below 2^48; origins of higher ones are never kept.
const ADDR_LIMIT: u64 = 1 << 48;
const L2_ENTRIES: usize = 1 << 16;
/// Offset of a page's mask bytes (after the tags).
pub const MASKS_OFFSET: u64 = 4 * WORDS as u64;

/// The origins of one 64 KiB chunk: a tag per word, then a mask byte per word with one bit
/// per byte of the word (bits 4..7 always clear).
#[repr(C)]
struct Page {
    tags: [u32; WORDS],
    masks: [u8; WORDS],
}

/// One 4 GiB region's pages.
struct L2([*const Page; L2_ENTRIES]);

// SAFETY: the shared tables below are never written through these pointers.
unsafe impl Sync for L2 {}
unsafe impl Sync for Page {}

/// The page of every chunk without origins: all tags 0, all masks empty. Never written.
static ZERO_PAGE: Page = Page { tags: [0; WORDS], masks: [0; WORDS] };

/// The L2 table of every region without origins.
static ZERO_L2: L2 = L2([&ZERO_PAGE as *const Page; L2_ENTRIES]);

/// Where generated code sends the origin writes it leaves to the helper: a page and a little
/// more, so that any in-page offset of a write of up to `SCRATCH_SPILL` bytes stays inside it.
#[repr(C)]
struct ScratchArea {
    page: Page,
    spill: [u8; SCRATCH_SPILL],
}

const SCRATCH_SPILL: usize = 256;

struct Scratch(core::cell::UnsafeCell<ScratchArea>);

// SAFETY: the contents are never read; concurrent writes of junk are harmless.
unsafe impl Sync for Scratch {}

static SCRATCH: Scratch =
    Scratch(core::cell::UnsafeCell::new(ScratchArea { page: Page { tags: [0; WORDS], masks: [0; WORDS] }, spill: [0; SCRATCH_SPILL] }));

/// Addresses generated code needs for inline origin lookups.
#[derive(Clone, Copy, Debug)]
pub struct OTables {
    /// The L1 table: 65536 pointers to L2 tables, indexed by address bits 47..32; each L2
    /// entry points to a page (indexed by bits 31..16).
    pub l1: u64,
    /// The shared zero page: a write through it must go to the helper instead.
    pub zero_page: u64,
    /// A writable area for skipped writes: any in-page offset plus 256 bytes fits.
    pub scratch: u64,
}

/// The origin tags of the whole address space.
pub struct OriginMem {
    /// Indexed by address bits 47..32; `ZERO_L2` where no origins were stored.
    l1: Vec<*const L2>,
    /// Pages allocated so far.
    pub pages: usize,
}

// SAFETY: the raw pointers are owned by the map or point at immutable statics; the map is only
// used under the core's big lock.
unsafe impl Send for OriginMem {}

fn tool_zeroed(layout: Layout) -> *mut u8 {
    // SAFETY: layouts here are non-zero-sized.
    let p = with_arena(ArenaId::Tool, || unsafe { alloc_zeroed(layout) });
    assert!(!p.is_null(), "memcheck: out of memory for origin shadow memory");
    p
}

/// The mask bits of the bytes `[lo, hi)` of a word (0 <= lo < hi <= 4).
#[inline]
fn byte_mask(lo: u64, hi: u64) -> u8 {
    ((1u8 << hi) - 1) & !((1u8 << lo) - 1)
}

#[inline]
fn word_index(a: u64) -> usize {
    ((a & (PAGE_SIZE - 1)) / 4) as usize
}

impl Default for OriginMem {
    fn default() -> Self {
        Self::new()
    }
}

impl OriginMem {
    pub fn new() -> OriginMem {
        OriginMem { l1: alloc::vec![&ZERO_L2 as *const L2; 1 << 16], pages: 0 }
    }

    /// The tables generated code reads (the L1 vector is never resized, so its address holds).
    pub fn tables(&self) -> OTables {
        OTables { l1: self.l1.as_ptr() as u64, zero_page: &ZERO_PAGE as *const Page as u64, scratch: SCRATCH.0.get() as u64 }
    }

    /// The page of `a` (the zero page where none was made; `a` below `ADDR_LIMIT`).
    #[inline]
    fn page(&self, a: u64) -> &Page {
        let l2 = self.l1[(a >> 32) as usize];
        // SAFETY: L2 tables and pages are live allocations owned by this map or the statics.
        unsafe { &*(*l2).0[((a >> PAGE_BITS) & 0xffff) as usize] }
    }

    /// The private page of `a` (below `ADDR_LIMIT`), made if needed.
    fn page_mut(&mut self, a: u64) -> &mut Page {
        let i = (a >> 32) as usize;
        if core::ptr::eq(self.l1[i], &ZERO_L2) {
            let t = tool_zeroed(Layout::new::<L2>()) as *mut L2;
            // SAFETY: a fresh allocation of one L2 table.
            unsafe { (*t).0.fill(&ZERO_PAGE) };
            self.l1[i] = t;
        }
        // SAFETY: a private L2 table owned by this map.
        let slot = unsafe { &mut (*(self.l1[i] as *mut L2)).0[((a >> PAGE_BITS) & 0xffff) as usize] };
        if core::ptr::eq(*slot, &ZERO_PAGE) {
            *slot = tool_zeroed(Layout::new::<Page>()) as *const Page;
            self.pages += 1;
        }
        // SAFETY: a private page owned by this map, borrowed through `&mut self`.
        unsafe { &mut *(*slot as *mut Page) }
    }

    /// A store of `len` bytes at `a` whose value has origin `tag` (0: no origin).
    pub fn store(&mut self, a: u64, len: u64, tag: u32) {
        let end = a.saturating_add(len).min(ADDR_LIMIT);
        let mut w = a & !3;
        while w < end {
            let page_end = (w | (PAGE_SIZE - 1)) + 1;
            // Clearing needs no page where there is none.
            if tag == 0 && core::ptr::eq(self.page(w), &ZERO_PAGE) {
                w = page_end;
                continue;
            }
            let p = self.page_mut(w);
            while w < end.min(page_end) {
                let i = word_index(w);
                let m = byte_mask(a.max(w) - w, end.min(w + 4) - w);
                if tag == 0 {
                    p.masks[i] &= !m;
                } else {
                    p.masks[i] |= m;
                    p.tags[i] = tag;
                }
                w += 4;
            }
        }
    }

    /// The largest tag carried by a byte of `[a, a+len)` for which `undefined` holds (0 if
    /// none).
    pub fn load_where(&self, a: u64, len: u64, undefined: impl Fn(u64) -> bool) -> u32 {
        let end = a.saturating_add(len).min(ADDR_LIMIT);
        let mut best = 0;
        let mut w = a & !3;
        while w < end {
            let p = self.page(w);
            if core::ptr::eq(p, &ZERO_PAGE) {
                w = (w | (PAGE_SIZE - 1)) + 1;
                continue;
            }
            let i = word_index(w);
            let m = p.masks[i] & byte_mask(a.max(w) - w, end.min(w + 4) - w);
            if m != 0 && p.tags[i] > best && (0..4).any(|b| m & (1 << b) != 0 && undefined(w + b)) {
                best = p.tags[i];
            }
            w += 4;
        }
        best
    }

    /// The origin of a load of `len` bytes at `a`: the largest tag any of its bytes carries
    /// (0 if none does), defined or not.
    pub fn load(&self, a: u64, len: u64) -> u32 {
        self.load_where(a, len, |_| true)
    }

    /// The origin of the undefined bytes of a load of `len` bytes at `a`, given the V-bit
    /// shadow: the largest tag an undefined byte carries.
    pub fn load_undefined(&self, a: u64, len: u64, shadow: &crate::shadow::ShadowMem) -> u32 {
        self.load_where(a, len, |b| shadow.vbyte(b).is_some_and(|v| v != 0))
    }

    /// Copy the origins of `[src, src+len)` to `[dst, dst+len)` (non-overlapping ranges).
    pub fn copy_range(&mut self, src: u64, dst: u64, len: u64) {
        for i in 0..len {
            let t = self.load(src + i, 1);
            self.store(dst + i, 1, t);
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn tags_follow_bytes() {
        let mut m = OriginMem::new();
        assert_eq!(m.load(0x1000, 8), 0);
        assert_eq!(m.pages, 0);
        m.store(0x1002, 4, 0x11);
        assert_eq!(m.pages, 1);
        assert_eq!(m.load(0x1000, 2), 0, "bytes before the store have no origin");
        assert_eq!(m.load(0x1003, 1), 0x11);
        assert_eq!(m.load(0x1005, 1), 0x11);
        assert_eq!(m.load(0x1006, 2), 0);
        // A zero-tag store clears only its bytes.
        m.store(0x1002, 2, 0);
        assert_eq!(m.load(0x1000, 4), 0);
        assert_eq!(m.load(0x1000, 8), 0x11);
        // The largest tag of the bytes loaded wins.
        m.store(0x1008, 1, 0x25);
        assert_eq!(m.load(0x1000, 16), 0x25);
    }

    #[test]
    fn only_undefined_bytes_count_when_asked() {
        let mut m = OriginMem::new();
        m.store(0x5000, 4, 0x40);
        m.store(0x5004, 4, 0x90);
        let undef = |b: u64| b == 0x5001;
        assert_eq!(m.load_where(0x5000, 8, undef), 0x40, "0x5004's larger tag is on defined bytes");
        assert_eq!(m.load_where(0x5004, 4, undef), 0);
        assert_eq!(m.load(0x5000, 8), 0x90);
    }

    #[test]
    fn clearing_never_allocates_and_ranges_cross_pages() {
        let mut m = OriginMem::new();
        m.store(0x7000_0000, 1 << 20, 0);
        assert_eq!(m.pages, 0);
        m.store(0x2_0000_fffe, 4, 7);
        assert_eq!(m.pages, 2);
        assert_eq!(m.load(0x2_0000_fff0, 0x20), 7);
        assert_eq!(m.load(0x2_0001_0001, 1), 7);
        assert_eq!(m.load(0x2_0001_0002, 1), 0);
        m.copy_range(0x2_0000_fffe, 0x3000, 4);
        assert_eq!(m.load(0x3000, 4), 7);
        assert_eq!(m.load(1 << 50, 8), 0);
        m.store(1 << 50, 8, 9);
        assert_eq!(m.pages, 3, "no origins above 2^48");
    }

    #[test]
    fn tables_lead_to_the_tags() {
        let mut m = OriginMem::new();
        let t = m.tables();
        let a = 0x1_2345_6788u64;
        // SAFETY (test): walking the tables as generated code does; `m` keeps them alive.
        let page = |_m: &OriginMem| unsafe {
            let l2 = *((t.l1 + ((a >> 32) & 0xffff) * 8) as *const u64);
            *((l2 + ((a >> 16) & 0xffff) * 8) as *const u64)
        };
        assert_eq!(page(&m), t.zero_page);
        m.store(a, 8, 0x77);
        let p = page(&m);
        assert_ne!(p, t.zero_page);
        let w = (a & 0xffff) / 4;
        // SAFETY (test): `p` is the live page of `a`.
        unsafe {
            assert_eq!(*((p + 4 * w) as *const u32), 0x77);
            assert_eq!(*((p + MASKS_OFFSET + w) as *const u8), 0xf);
        }
    }
}
