//! The client's heap (Valgrind's `mc_malloc_wrappers` and `vg_replace_malloc`): blocks the
//! replaced malloc family hands out, each between two no-access redzones, carved from client
//! memory that this module maps; the live blocks with their allocation stacks; the queue of
//! freed blocks kept no-access for a while (`--freelist-vol=`) so that uses after free are
//! caught; and the guest code stubs that stand in for the replaced functions.
//!
//! Blocks the client's own allocators describe (`MALLOCLIKE_BLOCK`, and pool chunks kept by
//! [`crate::mempool`]) are [`AllocKind::Custom`] blocks: live in the same table and freed
//! through the same queue, but their memory is the client's, never this heap's.
//!
//! The stubs: redirection needs guest code to send calls to. Each replaced function gets a
//! small stub in a client page this module maps: it stores its code and the argument
//! registers in a client-request block on the stack, runs the client-request sequence of
//! `valgrind.h`, and returns the tool's answer. The tool services the request in the core
//! (see `Memcheck::handle_client_request`).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::ptr::NonNull;

use vg_core::debuginfo::ExeContextId;

/// Which family allocated or frees a block (for "Mismatched free() / delete / delete []").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocKind {
    Malloc,
    New,
    NewArray,
    /// Described by the client (`MALLOCLIKE_BLOCK`, a pool chunk): not this heap's memory.
    Custom,
}

/// A live or freed block.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    /// The payload's address (what the client got).
    pub start: u64,
    pub size: u64,
    pub kind: AllocKind,
    pub alloc: ExeContextId,
    pub free: Option<ExeContextId>,
    /// The backing allocation holding the block and its redzones.
    base: u64,
    layout: Layout,
}

impl Block {
    /// A block of the client's own allocator at `start` (its memory is the client's).
    pub fn custom(start: u64, size: u64, alloc: ExeContextId) -> Block {
        Block { start, size, kind: AllocKind::Custom, alloc, free: None, base: 0, layout: Layout::new::<u8>() }
    }

    /// This block moved to `start` with `size` bytes (a pool chunk changed or trimmed).
    pub fn moved(self, start: u64, size: u64) -> Block {
        Block { start, size, ..self }
    }
}

/// Where `a` is relative to the block `[start, start+size)` if it is inside it or within `rz`
/// bytes of it ("4 bytes inside", "0 bytes after", "1,024 bytes before").
pub fn relative(a: u64, start: u64, size: u64, rz: u64) -> Option<String> {
    if a < start.saturating_sub(rz) || a >= start.saturating_add(size).saturating_add(rz) {
        return None;
    }
    Some(if a < start {
        format!("{} bytes before", crate::commas(start - a))
    } else if a - start >= size {
        format!("{} bytes after", crate::commas(a - start - size))
    } else {
        format!("{} bytes inside", crate::commas(a - start))
    })
}

/// One replaced function.
#[derive(Clone, Copy, Debug)]
pub struct Replaced {
    pub name: &'static str,
    /// How stack traces name it.
    pub display: &'static str,
    /// Line number shown in `vg_replace_malloc.c`, as Valgrind's traces show one.
    pub line: u32,
    /// Soname patterns whose definitions are replaced.
    pub sonames: &'static [&'static str],
}

const LIBC: &[&str] = &["libc.so*", "NONE"];
const CXX: &[&str] = &["libstdc++*", "libc++*", "NONE"];

/// The replaced functions; the request code of entry `i` is `STUB_BASE + i`.
pub const REPLACED: &[Replaced] = &[
    Replaced { name: "malloc", display: "malloc", line: 381, sonames: LIBC },
    Replaced { name: "calloc", display: "calloc", line: 1328, sonames: LIBC },
    Replaced { name: "realloc", display: "realloc", line: 1437, sonames: LIBC },
    Replaced { name: "free", display: "free", line: 872, sonames: LIBC },
    Replaced { name: "memalign", display: "memalign", line: 1517, sonames: LIBC },
    Replaced { name: "posix_memalign", display: "posix_memalign", line: 1689, sonames: LIBC },
    Replaced { name: "aligned_alloc", display: "aligned_alloc", line: 1730, sonames: LIBC },
    Replaced { name: "valloc", display: "valloc", line: 1568, sonames: LIBC },
    Replaced { name: "pvalloc", display: "pvalloc", line: 1808, sonames: LIBC },
    Replaced { name: "malloc_usable_size", display: "malloc_usable_size", line: 1767, sonames: LIBC },
    Replaced { name: "reallocarray", display: "reallocarray", line: 1490, sonames: LIBC },
    Replaced { name: "_Znwm", display: "operator new(unsigned long)", line: 422, sonames: CXX },
    Replaced { name: "_Znam", display: "operator new[](unsigned long)", line: 640, sonames: CXX },
    Replaced { name: "_ZnwmRKSt9nothrow_t", display: "operator new(unsigned long, std::nothrow_t const&)", line: 530, sonames: CXX },
    Replaced { name: "_ZnamRKSt9nothrow_t", display: "operator new[](unsigned long, std::nothrow_t const&)", line: 747, sonames: CXX },
    Replaced { name: "_ZdlPv", display: "operator delete(void*)", line: 923, sonames: CXX },
    Replaced { name: "_ZdaPv", display: "operator delete[](void*)", line: 1103, sonames: CXX },
    Replaced { name: "_ZdlPvm", display: "operator delete(void*, unsigned long)", line: 935, sonames: CXX },
    Replaced { name: "_ZdaPvm", display: "operator delete[](void*, unsigned long)", line: 1116, sonames: CXX },
    Replaced { name: "_ZnwmSt11align_val_t", display: "operator new(unsigned long, std::align_val_t)", line: 480, sonames: CXX },
    Replaced { name: "_ZnamSt11align_val_t", display: "operator new[](unsigned long, std::align_val_t)", line: 698, sonames: CXX },
    Replaced { name: "_ZdlPvSt11align_val_t", display: "operator delete(void*, std::align_val_t)", line: 983, sonames: CXX },
    Replaced { name: "_ZdaPvSt11align_val_t", display: "operator delete[](void*, std::align_val_t)", line: 1167, sonames: CXX },
    Replaced { name: "_ZdlPvmSt11align_val_t", display: "operator delete(void*, unsigned long, std::align_val_t)", line: 996, sonames: CXX },
    Replaced { name: "_ZdaPvmSt11align_val_t", display: "operator delete[](void*, unsigned long, std::align_val_t)", line: 1180, sonames: CXX },
    Replaced { name: "cfree", display: "cfree", line: 898, sonames: LIBC },
];

/// Request code of the first stub (tool code 'M','C', far from `memcheck.h`'s requests).
pub const STUB_BASE: u64 = (b'M' as u64) << 24 | (b'C' as u64) << 16 | 0x3000;
/// Bytes per stub.
pub const STUB_SIZE: u64 = 128;
/// Stack the stub reserves for its request block.
pub const STUB_FRAME: u64 = 0x38;

/// The machine code of the stub for request `code` (amd64).
pub fn stub_code(code: u32) -> Vec<u8> {
    let mut c = Vec::with_capacity(STUB_SIZE as usize);
    c.extend_from_slice(&[0x48, 0x83, 0xEC, STUB_FRAME as u8]); // sub rsp, 0x38
    c.extend_from_slice(&[0x48, 0xC7, 0x04, 0x24]); // mov qword [rsp], imm32
    c.extend_from_slice(&code.to_le_bytes());
    c.extend_from_slice(&[0x48, 0x89, 0x7C, 0x24, 0x08]); // mov [rsp+8], rdi
    c.extend_from_slice(&[0x48, 0x89, 0x74, 0x24, 0x10]); // mov [rsp+16], rsi
    c.extend_from_slice(&[0x48, 0x89, 0x54, 0x24, 0x18]); // mov [rsp+24], rdx
    c.extend_from_slice(&[0x48, 0x89, 0x4C, 0x24, 0x20]); // mov [rsp+32], rcx
    c.extend_from_slice(&[0x4C, 0x89, 0x44, 0x24, 0x28]); // mov [rsp+40], r8
    c.extend_from_slice(&[0x48, 0x89, 0xE0]); // mov rax, rsp
    c.extend_from_slice(&[0x31, 0xD2]); // xor edx, edx
    // The client-request sequence: rol rdi by 3, 13, 61, 51 (a no-op), xchg rbx, rbx.
    for r in [3u8, 13, 61, 51] {
        c.extend_from_slice(&[0x48, 0xC1, 0xC7, r]);
    }
    c.extend_from_slice(&[0x48, 0x87, 0xDB]);
    c.extend_from_slice(&[0x48, 0x89, 0xD0]); // mov rax, rdx
    c.extend_from_slice(&[0x48, 0x83, 0xC4, STUB_FRAME as u8]); // add rsp, 0x38
    c.push(0xC3); // ret
    assert!(c.len() as u64 <= STUB_SIZE);
    c
}

/// Where the client heap's memory comes from (the tool maps client memory; tests use the
/// process's own allocator).
pub trait Backing {
    /// A fresh region of at least `len` bytes (page-aligned), or `None`.
    fn map(&mut self, len: u64) -> Option<u64>;
}

/// One region of backing memory, managed by a first-fit allocator.
struct Chunk {
    start: u64,
    end: u64,
    heap: linked_list_allocator::Heap,
}

// SAFETY: the heap's pointers are into client memory the chunk owns; used under the big lock.
unsafe impl Send for Chunk {}

/// Heap options.
#[derive(Clone, Copy, Debug)]
pub struct HeapOptions {
    pub redzone: u64,
    pub freelist_vol: u64,
    pub alignment: u64,
}

impl Default for HeapOptions {
    fn default() -> Self {
        HeapOptions { redzone: 16, freelist_vol: 20_000_000, alignment: 16 }
    }
}

/// Counts for the HEAP SUMMARY.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    pub allocs: u64,
    pub frees: u64,
    pub bytes_allocated: u64,
}

/// The client heap.
pub struct Heap {
    pub opts: HeapOptions,
    chunks: Vec<Chunk>,
    pub live: BTreeMap<u64, Block>,
    /// Freed blocks still held back, oldest first, and their total size.
    pub freed: VecDeque<Block>,
    freed_vol: u64,
    pub stats: HeapStats,
}

const CHUNK_MIN: u64 = 1 << 20;

impl Heap {
    pub fn new(opts: HeapOptions) -> Heap {
        Heap { opts, chunks: Vec::new(), live: BTreeMap::new(), freed: VecDeque::new(), freed_vol: 0, stats: HeapStats::default() }
    }

    fn raw_alloc(&mut self, layout: Layout, backing: &mut dyn Backing) -> Option<u64> {
        for c in &mut self.chunks {
            if let Ok(p) = c.heap.allocate_first_fit(layout) {
                return Some(p.as_ptr() as u64);
            }
        }
        let len = (layout.size() as u64 + layout.align() as u64 + 4096).max(CHUNK_MIN).next_multiple_of(4096);
        let start = backing.map(len)?;
        let mut heap = linked_list_allocator::Heap::empty();
        // SAFETY: [start, start+len) is fresh writable memory owned by this chunk from now on.
        unsafe { heap.init(start as *mut u8, len as usize) };
        let p = heap.allocate_first_fit(layout).ok()?.as_ptr() as u64;
        self.chunks.push(Chunk { start, end: start + len, heap });
        Some(p)
    }

    fn raw_free(&mut self, base: u64, layout: Layout) {
        if let Some(c) = self.chunks.iter_mut().find(|c| c.start <= base && base < c.end) {
            // SAFETY: `base` was allocated from this chunk's heap with `layout`.
            unsafe { c.heap.deallocate(NonNull::new_unchecked(base as *mut u8), layout) };
        }
    }

    /// Allocate a block of `size` bytes aligned to `align` (a power of two); returns its
    /// payload address. The caller sets the payload's shadow.
    pub fn alloc(&mut self, size: u64, align: u64, kind: AllocKind, ctx: ExeContextId, backing: &mut dyn Backing) -> Option<u64> {
        let rz = self.opts.redzone;
        let align = align.max(self.opts.alignment).max(8);
        let total = size.checked_add(2 * rz)?.checked_add(align)?;
        let layout = Layout::from_size_align(total as usize, 16).ok()?;
        let base = self.raw_alloc(layout, backing)?;
        let start = (base + rz).next_multiple_of(align);
        self.live.insert(start, Block { start, size, kind, alloc: ctx, free: None, base, layout });
        self.count_alloc(size);
        Some(start)
    }

    /// Free the live block at `p`: it joins the freed queue; blocks leaving the queue go back
    /// to the allocator. Returns the block, or `None` if `p` is not a live block's start.
    pub fn free(&mut self, p: u64, ctx: ExeContextId) -> Option<Block> {
        let mut b = self.live.remove(&p)?;
        b.free = Some(ctx);
        self.stats.frees += 1;
        self.retire(b);
        Some(b)
    }

    /// Record a client-described block (`MALLOCLIKE_BLOCK`) as live; counted as an
    /// allocation, as Valgrind counts it.
    pub fn add_custom(&mut self, start: u64, size: u64, ctx: ExeContextId) {
        self.live.insert(start, Block::custom(start, size, ctx));
        self.count_alloc(size);
    }

    /// Count an allocation of `size` bytes (pool chunks are counted but kept by their pool).
    pub fn count_alloc(&mut self, size: u64) {
        self.stats.allocs += 1;
        self.stats.bytes_allocated += size;
    }

    /// Put freed block `b` (its free stack set) on the freed queue, so that uses after free
    /// are described; blocks leaving the queue go back to the allocator if they are its.
    pub fn retire(&mut self, b: Block) {
        self.freed_vol += b.size;
        self.freed.push_back(b);
        while self.freed_vol > self.opts.freelist_vol
            && let Some(old) = self.freed.pop_front()
        {
            self.freed_vol -= old.size;
            if old.kind != AllocKind::Custom {
                self.raw_free(old.base, old.layout);
            }
        }
    }

    /// The live block whose payload or redzones hold `a`, with where `a` is in it.
    pub fn describe_live(&self, a: u64) -> Option<(Block, String)> {
        let rz = self.opts.redzone;
        let live = self.live.range(..=a.saturating_add(rz)).next_back().map(|(_, b)| b).into_iter();
        let before = self.live.range(a..).next().into_iter().map(|(_, b)| b);
        live.chain(before).find_map(|b| relative(a, b.start, b.size, rz).map(|r| (*b, r)))
    }

    /// The recently freed block whose payload or redzones hold `a`, with where `a` is in it.
    pub fn describe_freed(&self, a: u64) -> Option<(Block, String)> {
        let rz = self.opts.redzone;
        // Oldest first, as Valgrind searches its queue.
        self.freed.iter().find_map(|b| relative(a, b.start, b.size, rz).map(|r| (*b, r)))
    }

    /// The block (live first, then recently freed) whose payload or redzones hold `a`, with
    /// the description of where `a` is relative to it.
    pub fn describe(&self, a: u64) -> Option<(Block, String)> {
        self.describe_live(a).or_else(|| self.describe_freed(a))
    }

    /// The memory regions the heap's blocks come from.
    pub fn chunk_ranges(&self) -> Vec<(u64, u64)> {
        self.chunks.iter().map(|c| (c.start, c.end)).collect()
    }

    /// Live blocks and their total size.
    pub fn in_use(&self) -> (u64, u64) {
        (self.live.values().map(|b| b.size).sum(), self.live.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    struct StdBacking(Vec<Vec<u8>>);
    impl Backing for StdBacking {
        fn map(&mut self, len: u64) -> Option<u64> {
            let v = std::vec![0u8; len as usize + 4096];
            let p = (v.as_ptr() as u64).next_multiple_of(4096);
            self.0.push(v);
            Some(p)
        }
    }

    #[test]
    fn blocks_have_redzones_and_descriptions() {
        let mut bk = StdBacking(Vec::new());
        let mut h = Heap::new(HeapOptions::default());
        let ctx = ExeContextId(7);
        let a = h.alloc(40, 1, AllocKind::Malloc, ctx, &mut bk).unwrap();
        let b = h.alloc(40, 1, AllocKind::Malloc, ctx, &mut bk).unwrap();
        assert_eq!(a % 16, 0);
        assert!(b >= a + 40 + 16 || a >= b + 40 + 16);
        assert_eq!(h.describe(a + 40).unwrap().1, "0 bytes after");
        assert_eq!(h.describe(a + 4).unwrap().1, "4 bytes inside");
        assert_eq!(h.describe(a - 1).unwrap().1, "1 bytes before");
        assert_eq!(h.in_use(), (80, 2));
        let f = h.free(a, ExeContextId(9)).unwrap();
        assert_eq!(f.free, Some(ExeContextId(9)));
        assert!(h.free(a, ExeContextId(9)).is_none(), "a double free finds no live block");
        let (blk, rel) = h.describe(a + 8).unwrap();
        assert_eq!((rel.as_str(), blk.free.is_some()), ("8 bytes inside", true));
        assert_eq!(h.stats, HeapStats { allocs: 2, frees: 1, bytes_allocated: 80 });
    }

    #[test]
    fn aligned_blocks_and_the_freed_queue() {
        let mut bk = StdBacking(Vec::new());
        let mut h = Heap::new(HeapOptions { freelist_vol: 100, ..HeapOptions::default() });
        let a = h.alloc(10, 256, AllocKind::New, ExeContextId(0), &mut bk).unwrap();
        assert_eq!(a % 256, 0);
        let b = h.alloc(80, 1, AllocKind::Malloc, ExeContextId(0), &mut bk).unwrap();
        h.free(a, ExeContextId(1));
        h.free(b, ExeContextId(1));
        // 90 bytes held back; a third free (140 bytes) pushes the oldest out until the volume
        // is within bounds again.
        assert_eq!(h.freed.len(), 2);
        let c = h.alloc(50, 1, AllocKind::Malloc, ExeContextId(0), &mut bk).unwrap();
        h.free(c, ExeContextId(1));
        assert_eq!(h.freed.len(), 1);
        assert_eq!(h.freed.front().unwrap().start, c);
    }

    #[test]
    fn stub_is_the_client_request_sequence() {
        let c = stub_code(0x4d43_3000);
        assert!(c.windows(3).any(|w| w == [0x48, 0x87, 0xDB]));
        assert_eq!(*c.last().unwrap(), 0xC3);
        assert_eq!(&c[8..12], &0x4d43_3000u32.to_le_bytes());
    }
}
