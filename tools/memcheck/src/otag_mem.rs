//! Origin shadow memory for `--track-origins=yes` (Valgrind's `ocache`, differently built): for
//! each 4-byte aligned word of guest memory one 32-bit origin tag (see [`crate::origins`]) and a
//! 4-bit mask saying which of the word's bytes carry it. Only words whose bytes were given a
//! non-zero tag matter; storing tag 0 clears the mask bits, so a word written with defined data
//! has no origin. Memory is split into 64 KiB chunks, each with a page allocated in the tool
//! arena on the first non-zero tag stored in it (72 KiB: the tags and the packed masks); the
//! rest of the address space costs nothing. A tag is only consulted for bytes whose V bits say
//! undefined, so stale tags on defined bytes do no harm.

use alloc::alloc::{Layout, alloc_zeroed};
use alloc::vec::Vec;

use vg_core::arena::{ArenaId, with_arena};

const PAGE_BITS: u32 = 16;
const PAGE_SIZE: u64 = 1 << PAGE_BITS;
const WORDS: usize = (PAGE_SIZE / 4) as usize;
/// Guest addresses are below 2^48; origins of higher ones are never kept.
const ADDR_LIMIT: u64 = 1 << 48;
const L2_ENTRIES: usize = 1 << 16;

/// The origins of one 64 KiB chunk: a tag per word, and a nibble per word (two per byte) with
/// one bit per byte of the word.
#[repr(C)]
struct Page {
    tags: [u32; WORDS],
    masks: [u8; WORDS / 2],
}

impl Page {
    #[inline]
    fn mask(&self, w: usize) -> u8 {
        (self.masks[w / 2] >> ((w & 1) * 4)) & 0xf
    }
    #[inline]
    fn set_mask(&mut self, w: usize, m: u8) {
        let sh = (w & 1) * 4;
        let b = &mut self.masks[w / 2];
        *b = (*b & !(0xf << sh)) | (m << sh);
    }
}

/// One 4 GiB region's pages; null: no origins there.
struct L2([*mut Page; L2_ENTRIES]);

/// The origin tags of the whole address space.
pub struct OriginMem {
    /// Indexed by address bits 47..32.
    l1: Vec<*mut L2>,
    /// Pages allocated so far.
    pub pages: usize,
}

// SAFETY: the raw pointers are owned by the map; it is only used under the core's big lock.
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

impl Default for OriginMem {
    fn default() -> Self {
        Self::new()
    }
}

impl OriginMem {
    pub fn new() -> OriginMem {
        OriginMem { l1: alloc::vec![core::ptr::null_mut(); 1 << 16], pages: 0 }
    }

    #[inline]
    fn page(&self, a: u64) -> Option<&Page> {
        if a >= ADDR_LIMIT {
            return None;
        }
        let l2 = self.l1[(a >> 32) as usize];
        if l2.is_null() {
            return None;
        }
        // SAFETY: non-null L2 tables and pages are live allocations owned by this map.
        unsafe { (*l2).0[((a >> PAGE_BITS) & 0xffff) as usize].as_ref() }
    }

    /// The page of `a`, allocated if `create`.
    fn page_mut(&mut self, a: u64, create: bool) -> Option<&mut Page> {
        if a >= ADDR_LIMIT {
            return None;
        }
        let i = (a >> 32) as usize;
        if self.l1[i].is_null() {
            if !create {
                return None;
            }
            self.l1[i] = tool_zeroed(Layout::new::<L2>()) as *mut L2;
        }
        // SAFETY: a live L2 table owned by this map.
        let slot = unsafe { &mut (*self.l1[i]).0[((a >> PAGE_BITS) & 0xffff) as usize] };
        if slot.is_null() {
            if !create {
                return None;
            }
            *slot = tool_zeroed(Layout::new::<Page>()) as *mut Page;
            self.pages += 1;
        }
        // SAFETY: a live page owned by this map, borrowed through `&mut self`.
        Some(unsafe { &mut **slot })
    }

    /// A store of `len` bytes at `a` whose value has origin `tag` (0: no origin).
    pub fn store(&mut self, a: u64, len: u64, tag: u32) {
        let end = a.saturating_add(len).min(ADDR_LIMIT);
        let mut w = a & !3;
        while w < end {
            let page_end = (w | (PAGE_SIZE - 1)) + 1;
            // Clearing needs no page where there is none.
            let Some(p) = self.page_mut(w, tag != 0) else {
                w = page_end;
                continue;
            };
            while w < end.min(page_end) {
                let i = ((w & (PAGE_SIZE - 1)) / 4) as usize;
                let m = byte_mask(a.max(w) - w, end.min(w + 4) - w);
                let cur = p.mask(i);
                if tag == 0 {
                    p.set_mask(i, cur & !m);
                } else {
                    p.set_mask(i, cur | m);
                    p.tags[i] = tag;
                }
                w += 4;
            }
        }
    }

    /// The origin of a load of `len` bytes at `a`: the largest tag any of its bytes carries
    /// (0 if none does).
    pub fn load(&self, a: u64, len: u64) -> u32 {
        let end = a.saturating_add(len).min(ADDR_LIMIT);
        let mut best = 0;
        let mut w = a & !3;
        while w < end {
            let Some(p) = self.page(w) else {
                w = (w | (PAGE_SIZE - 1)) + 1;
                continue;
            };
            let i = ((w & (PAGE_SIZE - 1)) / 4) as usize;
            let m = byte_mask(a.max(w) - w, end.min(w + 4) - w);
            if p.mask(i) & m != 0 {
                best = best.max(p.tags[i]);
            }
            w += 4;
        }
        best
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
        // A defined store clears only its bytes.
        m.store(0x1002, 2, 0);
        assert_eq!(m.load(0x1000, 4), 0);
        assert_eq!(m.load(0x1000, 8), 0x11);
        // The largest tag of the bytes loaded wins.
        m.store(0x1008, 1, 0x25);
        assert_eq!(m.load(0x1000, 16), 0x25);
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
    }
}
