//! Memory pools (the mempool requests of `valgrind.h`, Valgrind's `mc_malloc_wrappers` pool
//! half): pools the client declares by an anchor address, each with its live chunks
//! ([`Block`]s of [`AllocKind::Custom`](crate::malloc::AllocKind::Custom)), its redzone size
//! and flags; and the set of blocks the leak checker sees ([`leak_blocks`]): pool chunks in
//! place of the heap blocks that hold them.
//!
//! The bookkeeping ([`Pools`], [`Pool`]) is pure; [`request`] services the requests on the
//! run's state: shadow memory, the heap's freed queue and statistics, and errors
//! ("Illegal memory pool address" for a pool that does not exist, "Invalid free()" for a
//! chunk that does not).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use vg_core::debuginfo::ExeContextId;

use crate::errors::McError;
use crate::malloc::{AllocKind, Block, Heap, relative};

/// `valgrind.h`'s pool request codes and `CREATE_MEMPOOL_EXT` flags.
pub mod code {
    pub const CREATE_MEMPOOL: u64 = 0x1303;
    pub const DESTROY_MEMPOOL: u64 = 0x1304;
    pub const MEMPOOL_ALLOC: u64 = 0x1305;
    pub const MEMPOOL_FREE: u64 = 0x1306;
    pub const MEMPOOL_TRIM: u64 = 0x1307;
    pub const MOVE_MEMPOOL: u64 = 0x1308;
    pub const MEMPOOL_CHANGE: u64 = 0x1309;
    pub const MEMPOOL_EXISTS: u64 = 0x130a;
    pub const AUTO_FREE: u64 = 1;
    pub const METAPOOL: u64 = 2;
}

/// One pool.
#[derive(Clone, Debug)]
pub struct Pool {
    /// Redzone bytes around each chunk.
    pub rz: u64,
    /// Chunks start defined (else undefined).
    pub zeroed: bool,
    /// Its chunks hold `MALLOCLIKE_BLOCK` blocks (described after the heap, not before).
    pub metapool: bool,
    /// Freeing a chunk frees the `MALLOCLIKE_BLOCK` blocks inside it.
    pub auto_free: bool,
    /// Live chunks by start.
    pub chunks: BTreeMap<u64, Block>,
}

/// What `MEMPOOL_TRIM` did: the chunks it freed and the ranges it made no-access.
#[derive(Debug, Default)]
pub struct Trimmed {
    pub freed: Vec<Block>,
    pub noaccess: Vec<(u64, u64)>,
}

impl Pool {
    /// Trim the pool to `[addr, addr+len)`: chunks entirely outside it are freed, chunks
    /// partly inside are cut down. The cut follows Valgrind's arithmetic exactly (it measures
    /// the kept part with the trim length, not the chunk's), so that the same program gets the
    /// same errors.
    pub fn trim(&mut self, addr: u64, len: u64) -> Trimmed {
        let inside = |x: u64| addr <= x && x < addr.wrapping_add(len);
        let mut out = Trimmed::default();
        let starts: Vec<u64> = self.chunks.keys().copied().collect();
        for start in starts {
            let c = self.chunks[&start];
            let (lo, hi) = (c.start, if c.size == 0 { c.start } else { c.start + c.size - 1 });
            if inside(lo) && inside(hi) {
                continue;
            }
            self.chunks.remove(&start);
            if !inside(lo) && !inside(hi) {
                out.freed.push(c);
                continue;
            }
            let (min, lo) = if c.start < addr { (c.start, addr) } else { (addr, c.start) };
            let (max, hi) =
                if c.start.wrapping_add(len) > addr.wrapping_add(len) { (c.start + len, addr + len) } else { (addr + len, c.start + len) };
            if min < lo && !inside(min) {
                out.noaccess.push((min, lo - min));
            }
            if hi < max && !inside(max) {
                out.noaccess.push((hi, max - hi));
            }
            self.chunks.insert(lo, c.moved(lo, hi.saturating_sub(lo)));
        }
        out
    }
}

/// Why a pool cannot be created (Valgrind stops the run for both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateError {
    Duplicate,
    AutoFreeWithoutMetapool,
}

/// The client's pools by anchor address.
#[derive(Debug, Default)]
pub struct Pools {
    pools: BTreeMap<u64, Pool>,
}

impl Pools {
    pub fn create(&mut self, anchor: u64, rz: u64, zeroed: bool, flags: u64) -> Result<(), CreateError> {
        let (auto_free, metapool) = (flags & code::AUTO_FREE != 0, flags & code::METAPOOL != 0);
        if auto_free && !metapool {
            return Err(CreateError::AutoFreeWithoutMetapool);
        }
        if self.pools.contains_key(&anchor) {
            return Err(CreateError::Duplicate);
        }
        self.pools.insert(anchor, Pool { rz, zeroed, metapool, auto_free, chunks: BTreeMap::new() });
        Ok(())
    }

    pub fn exists(&self, anchor: u64) -> bool {
        self.pools.contains_key(&anchor)
    }

    pub fn get_mut(&mut self, anchor: u64) -> Option<&mut Pool> {
        self.pools.get_mut(&anchor)
    }

    pub fn destroy(&mut self, anchor: u64) -> Option<Pool> {
        self.pools.remove(&anchor)
    }

    /// Re-anchor the pool at `from` to `to`; false if there is none at `from`.
    pub fn relocate(&mut self, from: u64, to: u64) -> bool {
        let Some(p) = self.pools.remove(&from) else { return false };
        self.pools.insert(to, p);
        true
    }

    /// The live chunk (of a meta pool or not, per `metapool`) whose payload or the pool's
    /// redzones around it hold `a`, with where `a` is in it.
    pub fn describe(&self, a: u64, metapool: bool) -> Option<(Block, String)> {
        self.pools
            .values()
            .filter(|p| p.metapool == metapool)
            .find_map(|p| p.chunks.values().find_map(|c| relative(a, c.start, c.size, p.rz).map(|r| (*c, r))))
    }

    /// Every live chunk of every pool.
    pub fn chunks(&self) -> impl Iterator<Item = &Block> {
        self.pools.values().flat_map(|p| p.chunks.values())
    }
}

/// The blocks the leak checker classifies, sorted by start: the pool chunks and the live heap
/// blocks, except heap blocks holding the start or end of a client-described block (a pool
/// chunk or a `MALLOCLIKE_BLOCK` block), which stand for it: a pool's superblock is not
/// counted twice.
pub fn leak_blocks(heap: &Heap, pools: &Pools) -> Vec<Block> {
    let live: Vec<&Block> = heap.live.values().collect();
    let custom: Vec<&Block> = pools.chunks().chain(live.iter().copied().filter(|b| b.kind == AllocKind::Custom)).collect();
    let holds = |h: &Block, a: u64| h.start <= a && a < h.start + h.size;
    let mut out: Vec<Block> = live
        .iter()
        .filter(|h| {
            h.kind == AllocKind::Custom
                || !custom.iter().any(|c| holds(h, c.start) || (c.size > 1 && holds(h, c.start + c.size - 1)))
        })
        .map(|b| **b)
        .chain(pools.chunks().copied())
        .collect();
    out.sort_by_key(|b| b.start);
    out
}

// ---------------------------------------------------------------------------------------------
// The requests on the run's state.

use crate::{describe_addr, st};

fn illegal(pool: u64) {
    let desc = describe_addr(pool);
    crate::clientreq::report(McError::IllegalMempool { addr: pool, desc });
}

/// Retire freed chunk `c` (redzones `rz`): no-access, on the freed queue with this stack.
fn die(c: Block, rz: u64, ctx: ExeContextId) {
    let s = st();
    s.shadow.make_noaccess(c.start.saturating_sub(rz), c.size + 2 * rz);
    let mut c = c;
    c.free = Some(ctx);
    s.heap.retire(c);
}

/// `AUTO_FREE`: the `MALLOCLIKE_BLOCK` blocks inside `[start, end)` die with their chunk.
fn free_blocks_inside(start: u64, end: u64, rz: u64, ctx: ExeContextId) {
    let s = st();
    let inside: Vec<u64> = s.heap.live.range(start..end).filter(|(_, b)| b.start + b.size <= end).map(|(k, _)| *k).collect();
    for k in inside {
        if let Some(b) = s.heap.live.remove(&k) {
            die(b, rz, ctx);
        }
    }
}

/// Service pool request `args` (code first), if it is one.
pub fn request(args: &[u64; 6]) -> Option<u64> {
    let pool = args[1];
    let s = st();
    Some(match args[0] {
        code::CREATE_MEMPOOL => {
            if let Err(e) = s.pools.create(pool, args[2], args[3] != 0, args[4]) {
                let why = match e {
                    CreateError::Duplicate => "MC_(create_mempool): duplicate pool creation",
                    CreateError::AutoFreeWithoutMetapool => "Inappropriate use of mempool: an auto free pool must be a meta pool. Aborting",
                };
                vg_core::umsg!("valgrind: the 'impossible' happened:\n   {why}");
                vg_core::syscall::exit_group(1);
            }
            0
        }
        code::DESTROY_MEMPOOL => {
            match s.pools.destroy(pool) {
                None => illegal(pool),
                Some(p) => {
                    for c in p.chunks.values() {
                        s.shadow.make_noaccess(c.start.saturating_sub(p.rz), c.size + 2 * p.rz);
                    }
                }
            }
            0
        }
        code::MEMPOOL_ALLOC => {
            let (addr, size) = (args[2], args[3]);
            let Some(p) = s.pools.get_mut(pool) else {
                illegal(pool);
                return Some(0);
            };
            let (rz, zeroed) = (p.rz, p.zeroed);
            let ctx = crate::clientreq::here();
            p.chunks.insert(addr, Block::custom(addr, size, ctx));
            s.heap.count_alloc(size);
            crate::clientreq::new_block_shadow(addr, size, rz, zeroed, ctx);
            0
        }
        code::MEMPOOL_FREE => {
            let addr = args[2];
            let Some(p) = s.pools.get_mut(pool) else {
                illegal(pool);
                return Some(0);
            };
            let (rz, auto_free) = (p.rz, p.auto_free);
            let Some(c) = p.chunks.remove(&addr) else {
                crate::clientreq::invalid_free(addr);
                return Some(0);
            };
            let ctx = crate::clientreq::here();
            if auto_free {
                free_blocks_inside(c.start, c.start + c.size, rz, ctx);
            }
            die(c, rz, ctx);
            0
        }
        code::MEMPOOL_TRIM => {
            let Some(p) = s.pools.get_mut(pool) else {
                illegal(pool);
                return Some(0);
            };
            let rz = p.rz;
            let t = p.trim(args[2], args[3]);
            let ctx = crate::clientreq::here();
            for (a, n) in t.noaccess {
                s.shadow.make_noaccess(a, n);
            }
            for c in t.freed {
                die(c, rz, ctx);
            }
            0
        }
        code::MOVE_MEMPOOL => {
            if !s.pools.relocate(pool, args[2]) {
                illegal(pool);
            }
            0
        }
        code::MEMPOOL_CHANGE => {
            let (from, to, size) = (args[2], args[3], args[4]);
            let Some(p) = s.pools.get_mut(pool) else {
                illegal(pool);
                return Some(0);
            };
            match p.chunks.remove(&from) {
                Some(c) => {
                    p.chunks.insert(to, c.moved(to, size));
                }
                None => crate::clientreq::invalid_free(from),
            }
            0
        }
        code::MEMPOOL_EXISTS => s.pools.exists(pool) as u64,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::malloc::HeapOptions;

    fn pool_with(chunks: &[(u64, u64)]) -> Pool {
        let mut p = Pool { rz: 8, zeroed: false, metapool: false, auto_free: false, chunks: BTreeMap::new() };
        for &(a, n) in chunks {
            p.chunks.insert(a, Block::custom(a, n, ExeContextId(1)));
        }
        p
    }

    #[test]
    fn create_checks_flags_and_duplicates() {
        let mut ps = Pools::default();
        assert_eq!(ps.create(0x100, 0, false, code::AUTO_FREE), Err(CreateError::AutoFreeWithoutMetapool));
        assert_eq!(ps.create(0x100, 0, false, code::AUTO_FREE | code::METAPOOL), Ok(()));
        assert_eq!(ps.create(0x100, 0, false, 0), Err(CreateError::Duplicate));
        assert!(ps.relocate(0x100, 0x200));
        assert!(!ps.exists(0x100) && ps.exists(0x200));
        assert!(!ps.relocate(0x100, 0x300));
        assert!(ps.destroy(0x200).is_some_and(|p| p.metapool && p.auto_free));
    }

    #[test]
    fn chunks_are_described_with_the_pool_redzone() {
        let mut ps = Pools::default();
        ps.create(0x100, 8, false, 0).unwrap();
        ps.get_mut(0x100).unwrap().chunks.insert(0x1000, Block::custom(0x1000, 16, ExeContextId(3)));
        assert_eq!(ps.describe(0x1010, false).map(|(b, r)| (b.start, r)), Some((0x1000, String::from("0 bytes after"))));
        assert_eq!(ps.describe(0x0ff8, false).map(|(_, r)| r), Some(String::from("8 bytes before")));
        assert!(ps.describe(0x1018, false).is_none(), "beyond the redzone");
        assert!(ps.describe(0x1004, true).is_none(), "not a meta pool");
    }

    #[test]
    fn trim_frees_outside_chunks_and_cuts_straddling_ones() {
        // Kept: [0x1000,+16) inside; freed: [0x2000,+8) outside; cut: [0x1800,+32) from an
        // extent starting in its middle.
        let mut p = pool_with(&[(0x1000, 16), (0x1800, 32), (0x2000, 8)]);
        let t = p.trim(0x1000, 0x810);
        assert_eq!(t.freed.iter().map(|b| b.start).collect::<Vec<_>>(), [0x2000]);
        assert_eq!(p.chunks.keys().copied().collect::<Vec<_>>(), [0x1000, 0x1800]);
        assert_eq!(p.chunks[&0x1800].size, 0x10);
        // A chunk trimmed at its own start keeps the trim length (Valgrind's arithmetic); no
        // memory is made no-access then.
        let mut p = pool_with(&[(0x1000, 32)]);
        let t = p.trim(0x1000, 8);
        assert_eq!((p.chunks[&0x1000].size, t.noaccess.len(), t.freed.len()), (8, 0, 0));
        // An extent starting in the chunk: the head before it becomes no-access, and so does
        // what lies beyond the chunk's start plus the trim length.
        let mut p = pool_with(&[(0x1000, 32)]);
        let t = p.trim(0x1008, 0x100);
        assert_eq!(t.noaccess, [(0x1000, 8), (0x1100, 8)]);
        assert_eq!((p.chunks.keys().copied().collect::<Vec<_>>(), p.chunks[&0x1008].size), (alloc::vec![0x1008], 0xf8));
    }

    struct StdBacking(Vec<Vec<u8>>);
    impl crate::malloc::Backing for StdBacking {
        fn map(&mut self, len: u64) -> Option<u64> {
            let v = alloc::vec![0u8; len as usize + 4096];
            let p = (v.as_ptr() as u64).next_multiple_of(4096);
            self.0.push(v);
            Some(p)
        }
    }

    #[test]
    fn superblocks_holding_chunks_are_not_leak_blocks() {
        let mut bk = StdBacking(Vec::new());
        let mut h = Heap::new(HeapOptions::default());
        let ctx = ExeContextId(0);
        let (pool_sb, custom_sb, plain) = (
            h.alloc(1024, 16, AllocKind::Malloc, ctx, &mut bk).unwrap(),
            h.alloc(64, 16, AllocKind::Malloc, ctx, &mut bk).unwrap(),
            h.alloc(8, 16, AllocKind::Malloc, ctx, &mut bk).unwrap(),
        );
        h.add_custom(custom_sb + 16, 16, ExeContextId(2));
        let mut ps = Pools::default();
        ps.create(0x1, 8, false, 0).unwrap();
        ps.get_mut(0x1).unwrap().chunks.insert(pool_sb + 8, Block::custom(pool_sb + 8, 24, ExeContextId(1)));
        let got: Vec<(u64, u64)> = leak_blocks(&h, &ps).iter().map(|b| (b.start, b.size)).collect();
        let mut want = alloc::vec![(pool_sb + 8, 24), (custom_sb + 16, 16), (plain, 8)];
        want.sort();
        assert_eq!(got, want);
    }
}
