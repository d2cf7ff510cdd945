//! The core's allocator: named arenas (Valgrind's `m_mallocfree`) on mmap'd superblocks, with
//! statistics for `--stats=yes`.
//!
//! Every superblock is aligned to [`SB_ALIGN`] and starts with a header (its arena, its size and
//! a first-fit heap over the rest of it), so the owner of any block is found from the block's
//! address alone: round it down to the superblock. Requests too big for an ordinary superblock
//! get a dedicated one that holds just that block and is unmapped when it is freed.
//!
//! The Rust global allocator of a tool executable ([`CoreAllocator`], registered by
//! `tool_main!`) allocates in the *current* arena ([`with_arena`] switches it; the default is
//! `core`) and frees into whichever arena owns the block. Explicit allocation in one arena (the
//! client heap of tools that replace malloc) goes through [`Arena::alloc`]/[`Arena::free`].
//!
//! The current arena is process-wide, not per thread: the core runs one thread at a time.
//!
//! Small blocks (up to [`QUICK_MAX`] bytes, alignment up to 16) are recycled through per-size
//! free lists in front of the first-fit heaps: a first-fit search over many fragmented
//! superblocks is linear in the free blocks, and programs that malloc heavily (through a tool's
//! client heap) would spend their time there. The lists hold at most [`QUICK_BUDGET`] bytes per
//! arena; beyond that, freed blocks go back to their heap to be coalesced.
//!
//! Depends on [`crate::syscall`] and [`crate::log`].

use core::alloc::{GlobalAlloc, Layout};
use core::fmt;
use core::mem::size_of;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU8, Ordering};

use linked_list_allocator::Heap;

use crate::syscall;

/// Alignment (and size) of an ordinary superblock. Block addresses round down to this to find
/// their superblock header.
pub const SB_ALIGN: usize = 1 << 20;
const PAGE: usize = 4096;
/// Where the usable part of a superblock starts (after its header).
const SB_PAYLOAD: usize = (size_of::<Superblock>() + 63) & !63;
/// The largest alignment any arena serves: a dedicated superblock must keep its block within the
/// first `SB_ALIGN` bytes so the address rounds down to the header.
pub const MAX_ALIGN: usize = SB_ALIGN / 4;

/// The arenas, as Valgrind names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ArenaId {
    /// The core's own data (default).
    Core = 0,
    /// The tool's data.
    Tool,
    /// Debug information (symbols, line tables, CFI).
    Dinfo,
    /// The guest's heap, for tools that replace malloc.
    Client,
    /// Demangled names.
    Demangle,
    /// Execution contexts (stack traces).
    Exectxt,
    /// Error records.
    Errors,
    /// Translation-table auxiliary data.
    Ttaux,
}

impl ArenaId {
    pub const COUNT: usize = 8;
    pub const ALL: [ArenaId; Self::COUNT] = [
        ArenaId::Core,
        ArenaId::Tool,
        ArenaId::Dinfo,
        ArenaId::Client,
        ArenaId::Demangle,
        ArenaId::Exectxt,
        ArenaId::Errors,
        ArenaId::Ttaux,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ArenaId::Core => "core",
            ArenaId::Tool => "tool",
            ArenaId::Dinfo => "dinfo",
            ArenaId::Client => "client",
            ArenaId::Demangle => "demangle",
            ArenaId::Exectxt => "exectxt",
            ArenaId::Errors => "errors",
            ArenaId::Ttaux => "ttaux",
        }
    }

    fn from_index(i: u8) -> ArenaId {
        Self::ALL[i as usize]
    }
}

/// Figures of one arena (Valgrind's `--stats=yes` columns). Byte counts of blocks are the
/// requested sizes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArenaStats {
    /// Bytes of superblocks mapped now / at most.
    pub mmapped: usize,
    pub max_mmapped: usize,
    /// Dedicated (single-block) superblocks given back to the kernel.
    pub sb_unmapped: u64,
    /// Bytes in live blocks now / at most.
    pub in_use: usize,
    pub max_in_use: usize,
    /// Live blocks now.
    pub live_blocks: usize,
    /// Blocks and bytes ever allocated.
    pub total_blocks: u64,
    pub total_bytes: u64,
    /// Superblock free lists searched by allocations.
    pub searches: u64,
}

/// Header at the start of every superblock.
#[repr(C)]
struct Superblock {
    heap: Heap,
    arena: ArenaId,
    /// Holds exactly one block and is unmapped when it is freed.
    dedicated: bool,
    /// Mapped size in bytes.
    size: usize,
    prev: *mut Superblock,
    next: *mut Superblock,
}

struct ArenaState {
    first: *mut Superblock,
    stats: ArenaStats,
    /// Heads of the per-size free lists of small blocks (each free block holds the next one's
    /// address in its first word); class `i` holds blocks of `16 * (i + 1)` bytes.
    quick: [*mut u8; QUICK_CLASSES],
    /// Bytes on the free lists.
    quick_bytes: usize,
}

/// The largest block size served from the per-size free lists.
pub const QUICK_MAX: usize = 4096;
const QUICK_CLASSES: usize = QUICK_MAX / 16;
/// At most this many bytes wait on one arena's free lists.
pub const QUICK_BUDGET: usize = 16 << 20;

/// The free-list class of a block of `layout`, if it is small enough.
fn quick_class(layout: Layout) -> Option<usize> {
    (layout.size() <= QUICK_MAX && layout.align() <= 16).then(|| (layout.size().max(1) - 1) / 16)
}

/// The layout blocks of class `c` are made with.
fn quick_layout(c: usize) -> Layout {
    // SAFETY: a non-zero multiple of 16 with alignment 16 is a valid layout.
    unsafe { Layout::from_size_align_unchecked(16 * (c + 1), 16) }
}

// SAFETY: the superblock pointers are only followed under the arena's lock.
unsafe impl Send for ArenaState {}

/// One named arena.
pub struct Arena {
    id: ArenaId,
    state: spin::Mutex<ArenaState>,
}

const fn arena(id: ArenaId) -> Arena {
    Arena {
        id,
        state: spin::Mutex::new(ArenaState {
            first: ptr::null_mut(),
            stats: zero_stats(),
            quick: [ptr::null_mut(); QUICK_CLASSES],
            quick_bytes: 0,
        }),
    }
}

const fn zero_stats() -> ArenaStats {
    ArenaStats {
        mmapped: 0,
        max_mmapped: 0,
        sb_unmapped: 0,
        in_use: 0,
        max_in_use: 0,
        live_blocks: 0,
        total_blocks: 0,
        total_bytes: 0,
        searches: 0,
    }
}

static ARENAS: [Arena; ArenaId::COUNT] = [
    arena(ArenaId::Core),
    arena(ArenaId::Tool),
    arena(ArenaId::Dinfo),
    arena(ArenaId::Client),
    arena(ArenaId::Demangle),
    arena(ArenaId::Exectxt),
    arena(ArenaId::Errors),
    arena(ArenaId::Ttaux),
];

/// The arena `id`.
pub fn get(id: ArenaId) -> &'static Arena {
    &ARENAS[id as usize]
}

static CURRENT: AtomicU8 = AtomicU8::new(ArenaId::Core as u8);

/// The arena the global allocator currently allocates in.
pub fn current() -> ArenaId {
    ArenaId::from_index(CURRENT.load(Ordering::Relaxed))
}

/// Run `f` with the global allocator allocating in arena `id`, then restore the previous one.
pub fn with_arena<R>(id: ArenaId, f: impl FnOnce() -> R) -> R {
    let prev = CURRENT.swap(id as u8, Ordering::Relaxed);
    let r = f();
    CURRENT.store(prev, Ordering::Relaxed);
    r
}

/// Which arena owns the block at `p`.
///
/// # Safety
/// `p` must be a live block allocated by an arena.
pub unsafe fn owner_of(p: *const u8) -> ArenaId {
    // SAFETY: every arena block lies in the first SB_ALIGN bytes of a superblock whose header
    // (written once, before any block of it was handed out) starts at the aligned address.
    unsafe { (*superblock_of(p)).arena }
}

fn superblock_of(p: *const u8) -> *mut Superblock {
    ((p as usize) & !(SB_ALIGN - 1)) as *mut Superblock
}

/// Free a block allocated by any arena.
///
/// # Safety
/// `p` must be a live block allocated with `layout` by an arena; it is invalid afterwards.
pub unsafe fn free(p: *mut u8, layout: Layout) {
    // SAFETY: forwarded caller contract.
    unsafe { get(owner_of(p)).free(p, layout) }
}

impl Arena {
    pub fn id(&self) -> ArenaId {
        self.id
    }

    /// A snapshot of the arena's figures.
    pub fn stats(&self) -> ArenaStats {
        self.state.lock().stats
    }

    /// Allocate a block; null if the kernel refuses more memory or `layout.align()` exceeds
    /// [`MAX_ALIGN`]. A zero-sized request gets a (distinct) one-byte block.
    pub fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() > MAX_ALIGN {
            return ptr::null_mut();
        }
        let layout = heap_layout(layout);
        let mut st = self.state.lock();
        let class = quick_class(layout);
        let p = if let Some(c) = class
            && !st.quick[c].is_null()
        {
            let p = st.quick[c];
            // SAFETY: blocks on a free list are ours, unused, and hold the next one's address.
            st.quick[c] = unsafe { *(p as *mut *mut u8) };
            st.quick_bytes -= quick_layout(c).size();
            p
        } else {
            let heap_layout = class.map_or(layout, quick_layout);
            match self.alloc_in_existing(&mut st, heap_layout) {
                Some(p) => p,
                None => match self.new_superblock(&mut st, heap_layout) {
                    Some(p) => p,
                    None => return ptr::null_mut(),
                },
            }
        };
        let s = &mut st.stats;
        s.in_use += layout.size();
        s.max_in_use = s.max_in_use.max(s.in_use);
        s.live_blocks += 1;
        s.total_blocks += 1;
        s.total_bytes += layout.size() as u64;
        p
    }

    /// Free a block of this arena.
    ///
    /// # Safety
    /// `p` must be a live block allocated by this arena with `layout`; it is invalid afterwards.
    pub unsafe fn free(&self, p: *mut u8, layout: Layout) {
        let layout = heap_layout(layout);
        let sb = superblock_of(p);
        let mut st = self.state.lock();
        debug_assert_eq!(
            // SAFETY: `p` is a live block of this arena (caller contract), so `sb` is its header.
            unsafe { (*sb).arena },
            self.id,
            "block freed into the wrong arena"
        );
        match quick_class(layout) {
            Some(c) if st.quick_bytes + quick_layout(c).size() <= QUICK_BUDGET => {
                // SAFETY: the block is ours and at least 16 bytes (its class size), 16-aligned.
                unsafe { *(p as *mut *mut u8) = st.quick[c] };
                st.quick[c] = p;
                st.quick_bytes += quick_layout(c).size();
            }
            class => {
                let heap_layout = class.map_or(layout, quick_layout);
                // SAFETY: as above; the lock is held and the block was made with `heap_layout`.
                unsafe { (*sb).heap.deallocate(NonNull::new_unchecked(p), heap_layout) };
            }
        }
        let s = &mut st.stats;
        s.in_use -= layout.size();
        s.live_blocks -= 1;
        // SAFETY: as above; a dedicated superblock held only this block.
        unsafe {
            if (*sb).dedicated {
                self.unmap_superblock(&mut st, sb);
            }
        }
    }

    fn alloc_in_existing(&self, st: &mut ArenaState, layout: Layout) -> Option<*mut u8> {
        let mut sb = st.first;
        while !sb.is_null() {
            // SAFETY: superblocks on the list are mapped and we hold the lock.
            unsafe {
                if !(*sb).dedicated {
                    st.stats.searches += 1;
                    if let Ok(p) = (*sb).heap.allocate_first_fit(layout) {
                        return Some(p.as_ptr());
                    }
                }
                sb = (*sb).next;
            }
        }
        None
    }

    /// Map a superblock for `layout` (an ordinary one, or a dedicated one if the block would not
    /// fit an ordinary one), link it in and allocate the block from it.
    fn new_superblock(&self, st: &mut ArenaState, layout: Layout) -> Option<*mut u8> {
        // Slack covers the heap's own rounding and the block's alignment padding.
        let need = SB_PAYLOAD + layout.size() + layout.align() + 64;
        let dedicated = need > SB_ALIGN;
        let size = if dedicated { (need + PAGE - 1) & !(PAGE - 1) } else { SB_ALIGN };
        let base = map_aligned(size)?;
        let sb = base as *mut Superblock;
        // SAFETY: `base` is a fresh, exclusively owned mapping of `size` bytes, aligned to
        // SB_ALIGN; the header is written before anything else reads it.
        unsafe {
            ptr::write(
                sb,
                Superblock {
                    heap: Heap::empty(),
                    arena: self.id,
                    dedicated,
                    size,
                    prev: ptr::null_mut(),
                    next: st.first,
                },
            );
            (*sb).heap.init((base + SB_PAYLOAD) as *mut u8, size - SB_PAYLOAD);
            if !st.first.is_null() {
                (*st.first).prev = sb;
            }
            st.first = sb;
        }
        let s = &mut st.stats;
        s.mmapped += size;
        s.max_mmapped = s.max_mmapped.max(s.mmapped);
        s.searches += 1;
        // SAFETY: the superblock was just initialised and we hold the lock.
        unsafe { (*sb).heap.allocate_first_fit(layout) }.ok().map(|p| p.as_ptr())
    }

    /// # Safety
    /// `sb` must be a superblock of this arena with no live blocks; the lock must be held (`st`).
    unsafe fn unmap_superblock(&self, st: &mut ArenaState, sb: *mut Superblock) {
        // SAFETY: caller contract: `sb` is on this arena's list and unused.
        unsafe {
            let (prev, next, size) = ((*sb).prev, (*sb).next, (*sb).size);
            if prev.is_null() {
                st.first = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            // Failure would only leak the range; nothing refers to it any more either way.
            let _ = syscall::munmap(sb as usize, size);
            st.stats.mmapped -= size;
            st.stats.sb_unmapped += 1;
        }
    }
}

/// The layout the heap is asked for: never zero-sized.
fn heap_layout(layout: Layout) -> Layout {
    if layout.size() == 0 {
        // SAFETY: size 1 with an already valid alignment is a valid layout.
        unsafe { Layout::from_size_align_unchecked(1, layout.align()) }
    } else {
        layout
    }
}

/// Map `size` bytes aligned to SB_ALIGN: over-map by SB_ALIGN and trim both ends.
fn map_aligned(size: usize) -> Option<usize> {
    let raw = syscall::mmap_anon(size + SB_ALIGN).ok()?;
    let base = (raw + SB_ALIGN - 1) & !(SB_ALIGN - 1);
    let head = base - raw;
    let tail = SB_ALIGN - head;
    // SAFETY: both trimmed ranges are parts of the fresh mapping outside [base, base+size).
    unsafe {
        if head > 0 {
            let _ = syscall::munmap(raw, head);
        }
        if tail > 0 {
            let _ = syscall::munmap(base + size, tail);
        }
    }
    syscall::uncount_anon(SB_ALIGN);
    Some(base)
}

/// The Rust global allocator of tool executables: the current arena (see [`with_arena`]).
/// `tool_main!` registers it with `#[global_allocator]`.
pub struct CoreAllocator;

// SAFETY: blocks come from arenas, which hand out disjoint, suitably aligned blocks of at least
// the requested size, and each block is freed into the arena that owns it.
unsafe impl GlobalAlloc for CoreAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        get(current()).alloc(layout)
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: `p` was allocated by this allocator with `layout` (GlobalAlloc contract).
        unsafe { free(p, layout) }
    }

    /// Reallocate in the arena that owns the block, whatever the current arena is.
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `p` is a live block of ours (GlobalAlloc contract); new_size with the same
        // alignment is a valid layout (contract), and the copy stays within both blocks.
        unsafe {
            let arena = get(owner_of(p));
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let q = arena.alloc(new_layout);
            if !q.is_null() {
                ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                arena.free(p, layout);
            }
            q
        }
    }
}

/// A number with thousands separators ("4,194,304"), right-aligned to the formatter's width.
struct Thousands(u64);

impl fmt::Display for Thousands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut digits = [0u8; 20];
        let mut n = self.0;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut out: heapless::String<27> = heapless::String::new();
        for i in (0..len).rev() {
            // Capacity 27 = 20 digits + 6 separators + 1 spare: the pushes cannot fail.
            let _ = out.push(digits[i] as char);
            if i > 0 && i % 3 == 0 {
                let _ = out.push(',');
            }
        }
        f.pad_integral(true, "", &out)
    }
}

/// Append one arena's `--stats=yes` line (Valgrind's column layout) to `out`.
pub fn format_stats_line(out: &mut impl fmt::Write, id: ArenaId, s: &ArenaStats) -> fmt::Result {
    write!(
        out,
        "{:<8}: {:>13}/{:>13} max/curr mmap'd, {}/0 unsplit/split sb unmmap'd,  {:>13}/{:>13} max/curr,  {:>10}/{:>10} totalloc-blocks/bytes,  {:>10} searches 0 rzB",
        id.name(),
        Thousands(s.max_mmapped as u64),
        Thousands(s.mmapped as u64),
        s.sb_unmapped,
        Thousands(s.max_in_use as u64),
        Thousands(s.in_use as u64),
        s.total_blocks,
        s.total_bytes,
        s.searches,
    )
}

/// Print the arena table for `--stats=yes` as verbose (`--PID--`) messages. Arenas that never
/// mapped anything are left out, except `core`.
pub fn print_stats() {
    crate::dmsg!("");
    crate::dmsg!("------ the core's own memory use, by arena ------");
    crate::dmsg!("------ {:>13} bytes mmap-ed ANONYMOUS so far", Thousands(syscall::anon_mapped_total() as u64));
    for id in ArenaId::ALL {
        let s = get(id).stats();
        if s.max_mmapped == 0 && id != ArenaId::Core {
            continue;
        }
        let mut line: heapless::String<256> = heapless::String::new();
        // 256 bytes hold the longest possible line (about 200 characters).
        let _ = format_stats_line(&mut line, id, &s);
        crate::dmsg!("{}", line.as_str());
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::fmt::Write as _;
    use std::string::String;
    use std::vec::Vec;

    // Each test uses its own arena so that tests running in parallel do not disturb each other's
    // figures.

    #[test]
    fn alloc_free_updates_stats() {
        let a = get(ArenaId::Demangle);
        let before = a.stats();
        let l = Layout::from_size_align(100, 8).unwrap();
        let p = a.alloc(l);
        assert!(!p.is_null());
        assert_eq!(p as usize % 8, 0);
        // SAFETY: p is a fresh 100-byte block.
        unsafe { ptr::write_bytes(p, 0xab, 100) };
        let mid = a.stats();
        assert_eq!(mid.in_use, before.in_use + 100);
        assert_eq!(mid.live_blocks, before.live_blocks + 1);
        assert_eq!(mid.total_blocks, before.total_blocks + 1);
        assert_eq!(mid.total_bytes, before.total_bytes + 100);
        assert!(mid.max_in_use >= mid.in_use);
        assert!(mid.mmapped >= SB_ALIGN);
        // SAFETY: p is live and owned by the demangle arena.
        unsafe {
            assert_eq!(owner_of(p), ArenaId::Demangle);
            free(p, l);
        }
        let after = a.stats();
        assert_eq!(after.in_use, before.in_use);
        assert_eq!(after.live_blocks, before.live_blocks);
        assert_eq!(after.max_in_use, mid.max_in_use);
    }

    #[test]
    fn small_blocks_are_recycled_by_size() {
        let a = get(ArenaId::Dinfo);
        let l40 = Layout::from_size_align(40, 8).unwrap();
        let l48 = Layout::from_size_align(48, 16).unwrap();
        let l100 = Layout::from_size_align(100, 8).unwrap();
        let p = a.alloc(l40);
        // SAFETY: live blocks of this arena, freed once with their layouts.
        unsafe {
            a.free(p, l40);
            // Same 48-byte class: the freed block comes back; another class does not take it.
            let q = a.alloc(l100);
            assert_ne!(q, p);
            let r = a.alloc(l48);
            assert_eq!(r, p);
            ptr::write_bytes(r, 0x5a, 48);
            a.free(r, l48);
            a.free(q, l100);
        }
        assert_eq!(a.stats().in_use, 0);
        assert_eq!(a.stats().live_blocks, 0);
    }

    #[test]
    fn many_blocks_span_superblocks_and_keep_contents() {
        let a = get(ArenaId::Exectxt);
        let l = Layout::from_size_align(4000, 16).unwrap();
        let blocks: Vec<*mut u8> = (0..600).map(|_| a.alloc(l)).collect();
        for (i, &p) in blocks.iter().enumerate() {
            assert!(!p.is_null());
            assert_eq!(p as usize % 16, 0);
            // SAFETY: each block is a live 4000-byte block.
            unsafe { ptr::write_bytes(p, i as u8, 4000) };
        }
        // 600 * 4000 bytes need at least three 1 MiB superblocks.
        assert!(a.stats().mmapped >= 3 * SB_ALIGN);
        for (i, &p) in blocks.iter().enumerate() {
            // SAFETY: as above; blocks do not overlap, so each still holds its own byte.
            unsafe {
                assert!(std::slice::from_raw_parts(p, 4000).iter().all(|&b| b == i as u8));
                a.free(p, l);
            }
        }
        assert_eq!(a.stats().live_blocks, 0);
        assert_eq!(a.stats().in_use, 0);
    }

    #[test]
    fn big_block_gets_dedicated_superblock_unmapped_on_free() {
        let a = get(ArenaId::Errors);
        let l = Layout::from_size_align(3 * SB_ALIGN, 4096).unwrap();
        let before = a.stats();
        let p = a.alloc(l);
        assert!(!p.is_null());
        assert_eq!(p as usize % 4096, 0);
        // SAFETY: the whole block is ours.
        unsafe {
            *p.add(3 * SB_ALIGN - 1) = 1;
            assert_eq!(owner_of(p), ArenaId::Errors);
        }
        let mid = a.stats();
        assert!(mid.mmapped >= before.mmapped + 3 * SB_ALIGN);
        // SAFETY: p is live in this arena.
        unsafe { a.free(p, l) };
        let after = a.stats();
        assert_eq!(after.mmapped, before.mmapped);
        assert_eq!(after.sb_unmapped, before.sb_unmapped + 1);
        assert_eq!(after.max_mmapped, mid.max_mmapped);
    }

    /// The only test that switches the current arena (it is process-wide).
    #[test]
    fn global_allocator_follows_current_arena() {
        let outer = current();
        let inner = with_arena(ArenaId::Dinfo, || with_arena(ArenaId::Tool, current));
        assert_eq!(inner, ArenaId::Tool);
        assert_eq!(current(), outer);
        let g = CoreAllocator;
        let l = Layout::from_size_align(48, 8).unwrap();
        let t0 = get(ArenaId::Ttaux).stats().total_blocks;
        // SAFETY: ordinary GlobalAlloc use with a non-zero layout.
        unsafe {
            let p = with_arena(ArenaId::Ttaux, || g.alloc(l));
            assert_eq!(owner_of(p), ArenaId::Ttaux);
            assert_eq!(get(ArenaId::Ttaux).stats().total_blocks, t0 + 1);
            *p = 42;
            // Grows in its own arena even though the current arena is another one now.
            let q = g.realloc(p, l, 5000);
            assert_eq!(owner_of(q), ArenaId::Ttaux);
            assert_eq!(*q, 42);
            g.dealloc(q, Layout::from_size_align(5000, 8).unwrap());
        }
        assert_eq!(get(ArenaId::Ttaux).stats().live_blocks, 0);
    }

    #[test]
    fn zero_size_and_huge_alignment() {
        let a = get(ArenaId::Client);
        let z = Layout::from_size_align(0, 1).unwrap();
        let p = a.alloc(z);
        let q = a.alloc(z);
        assert!(!p.is_null() && p != q);
        // SAFETY: both live in this arena with layout z.
        unsafe {
            a.free(p, z);
            a.free(q, z);
        }
        let huge = Layout::from_size_align(64, SB_ALIGN).unwrap();
        assert!(a.alloc(huge).is_null());
    }

    #[test]
    fn stats_line_layout() {
        let s = ArenaStats {
            mmapped: 3_720_544,
            max_mmapped: 4_194_304,
            sb_unmapped: 2,
            in_use: 1_000,
            max_in_use: 3_899_024,
            live_blocks: 1,
            total_blocks: 82,
            total_bytes: 4_087_520,
            searches: 81,
        };
        let mut out = String::new();
        format_stats_line(&mut out, ArenaId::Core, &s).unwrap();
        assert_eq!(
            out,
            "core    :     4,194,304/    3,720,544 max/curr mmap'd, 2/0 unsplit/split sb unmmap'd,      3,899,024/        1,000 max/curr,          82/   4087520 totalloc-blocks/bytes,          81 searches 0 rzB"
        );
        let mut t = String::new();
        write!(t, "[{:>6}|{}]", Thousands(1234), Thousands(0)).unwrap();
        assert_eq!(t, "[ 1,234|0]");
    }
}
