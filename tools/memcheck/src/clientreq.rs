//! The `memcheck.h` client requests (tool code 'M','C') and the custom-allocator requests of
//! `valgrind.h`: making memory no-access, undefined or defined, checking it, reading and
//! writing V bits, naming blocks (`CREATE_BLOCK`/`DISCARD`), turning address errors off in
//! ranges, and describing a custom allocator's blocks (`MALLOCLIKE_BLOCK`, `FREELIKE_BLOCK`,
//! `RESIZEINPLACE_BLOCK`); the mempool requests are passed on to [`crate::mempool`].
//!
//! [`ClientReqs`] keeps what these requests leave behind: the named blocks and the ranges
//! whose address errors are not reported.

use alloc::string::String;
use alloc::vec::Vec;

use vg_core::debuginfo::ExeContextId;

use crate::errors::McError;
use crate::malloc::AllocKind;
use crate::{current_pc, describe_addr, regs_at, report_here, shadow, st};

/// `memcheck.h`'s request codes, in the header's order from the tool base, and the
/// custom-allocator codes of `valgrind.h`.
pub mod code {
    pub const BASE: u64 = (b'M' as u64) << 24 | (b'C' as u64) << 16;
    pub const MAKE_MEM_NOACCESS: u64 = BASE;
    pub const MAKE_MEM_UNDEFINED: u64 = BASE + 1;
    pub const MAKE_MEM_DEFINED: u64 = BASE + 2;
    pub const DISCARD: u64 = BASE + 3;
    pub const CHECK_MEM_IS_ADDRESSABLE: u64 = BASE + 4;
    pub const CHECK_MEM_IS_DEFINED: u64 = BASE + 5;
    pub const DO_LEAK_CHECK: u64 = BASE + 6;
    pub const COUNT_LEAKS: u64 = BASE + 7;
    pub const GET_VBITS: u64 = BASE + 8;
    pub const SET_VBITS: u64 = BASE + 9;
    pub const CREATE_BLOCK: u64 = BASE + 10;
    pub const MAKE_MEM_DEFINED_IF_ADDRESSABLE: u64 = BASE + 11;
    pub const COUNT_LEAK_BLOCKS: u64 = BASE + 12;
    pub const ENABLE_ADDR_ERROR_REPORTING_IN_RANGE: u64 = BASE + 13;
    pub const DISABLE_ADDR_ERROR_REPORTING_IN_RANGE: u64 = BASE + 14;
    pub const MALLOCLIKE_BLOCK: u64 = 0x1301;
    pub const FREELIKE_BLOCK: u64 = 0x1302;
    pub const RESIZEINPLACE_BLOCK: u64 = 0x130b;
}

/// A block the client named with `CREATE_BLOCK`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedBlock {
    pub start: u64,
    pub size: u64,
    pub desc: String,
    /// Where it was named.
    pub at: ExeContextId,
}

/// What the requests leave behind.
#[derive(Debug, Default)]
pub struct ClientReqs {
    /// Named blocks by handle; a discarded handle's slot is free for the next block.
    blocks: Vec<Option<NamedBlock>>,
    /// Disjoint, sorted half-open ranges whose address errors are not reported.
    ignored: Vec<(u64, u64)>,
}

impl ClientReqs {
    /// Name `[start, start+size)`; returns its handle (the first free slot).
    pub fn create_block(&mut self, b: NamedBlock) -> usize {
        match self.blocks.iter().position(Option::is_none) {
            Some(i) => {
                self.blocks[i] = Some(b);
                i
            }
            None => {
                self.blocks.push(Some(b));
                self.blocks.len() - 1
            }
        }
    }

    /// Forget block `handle`; false if there is no such block.
    pub fn discard(&mut self, handle: u64) -> bool {
        match self.blocks.get_mut(handle as usize) {
            Some(slot @ Some(_)) => {
                *slot = None;
                true
            }
            _ => false,
        }
    }

    /// The first named block holding `a` (no redzone), with `a`'s offset in it.
    pub fn describe(&self, a: u64) -> Option<(&NamedBlock, u64)> {
        self.blocks.iter().flatten().find(|b| a >= b.start && a - b.start < b.size).map(|b| (b, a - b.start))
    }

    /// Stop (`ignore`) or resume reporting address errors in `[start, start+len)`.
    pub fn set_ignored(&mut self, start: u64, len: u64, ignore: bool) {
        let end = start.saturating_add(len);
        let mut out: Vec<(u64, u64)> = Vec::new();
        for &(s, e) in &self.ignored {
            if e <= start || s >= end {
                out.push((s, e));
                continue;
            }
            if s < start {
                out.push((s, start));
            }
            if e > end {
                out.push((end, e));
            }
        }
        if ignore {
            out.push((start, end));
        }
        out.sort();
        // Merge touching ranges, so that each address is in at most one.
        self.ignored.clear();
        for (s, e) in out {
            match self.ignored.last_mut() {
                Some(last) if last.1 >= s => last.1 = last.1.max(e),
                _ => self.ignored.push((s, e)),
            }
        }
    }

    /// Whether address errors at `a` are not reported.
    pub fn is_ignored(&self, a: u64) -> bool {
        let i = self.ignored.partition_point(|r| r.1 <= a);
        self.ignored.get(i).is_some_and(|r| r.0 <= a)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers for the requests (shared with `mempool`).

/// The stack of the request being serviced.
pub(crate) fn here() -> ExeContextId {
    let ips = vg_core::stacks::trace_ips(regs_at(current_pc()));
    st().ectx.intern(&ips)
}

/// Report `e` at the request being serviced.
pub(crate) fn report(e: McError) {
    report_here(e, current_pc());
}

/// "Invalid free() / delete / delete[] / realloc()" of `addr` at the request.
pub(crate) fn invalid_free(addr: u64) {
    let desc = describe_addr(addr);
    report(McError::Free { what: "free() / delete / delete[] / realloc()", addr, desc });
}

/// The shadow of a block the client allocated at `addr`: its payload defined (`zeroed`) or
/// undefined (with a heap origin made at `ctx`), `rz` bytes either side no-access.
pub(crate) fn new_block_shadow(addr: u64, size: u64, rz: u64, zeroed: bool, ctx: ExeContextId) {
    let s = st();
    if zeroed {
        s.shadow.make_defined(addr, size);
    } else {
        s.shadow.make_undefined(addr, size);
        crate::origins::tag_range(addr, size, crate::origins::make_tag(ctx, crate::origins::OriginKind::Heap));
    }
    if rz > 0 {
        s.shadow.make_noaccess(addr.saturating_sub(rz), rz);
        s.shadow.make_noaccess(addr + size, rz);
    }
}

/// The C string at client address `a` (up to 4 KiB; what is readable of it).
fn client_str(a: u64) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < 4096 && vg_core::aspace::is_client_readable(a + bytes.len() as u64, 1) {
        // SAFETY: one byte the address-space manager says the client can read.
        let c = unsafe { *((a + bytes.len() as u64) as *const u8) };
        if c == 0 {
            break;
        }
        bytes.push(c);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn check(a: u64, len: u64, defined: bool) -> u64 {
    let s = st();
    let bad = if defined { s.shadow.first_undefined(a, len) } else { s.shadow.first_noaccess(a, len).map(|p| (p, false)) };
    match bad {
        None => 0,
        Some((p, addressable)) => {
            let desc = describe_addr(p);
            report(McError::User { unaddressable: !addressable, addr: p, desc });
            p
        }
    }
}

/// `GET_VBITS`/`SET_VBITS`: copy the V bits of `[a, a+len)` to or from the client's array
/// at `vbits`. 3 if a byte of either is unaddressable (nothing is copied then), else 1.
fn vbits(a: u64, vbits: u64, len: u64, set: bool) -> u64 {
    let sh = &mut st().shadow;
    if (0..len).any(|i| sh.state(a + i) == shadow::NOACCESS || sh.state(vbits + i) == shadow::NOACCESS) {
        return 3;
    }
    for i in 0..len {
        let at = (vbits + i) as *mut u8;
        if set {
            // SAFETY: the shadow says the byte is addressable, so it is mapped client memory.
            sh.store_byte(a + i, unsafe { *at });
        } else {
            let v = sh.vbyte(a + i).unwrap_or(0);
            // SAFETY: as above.
            unsafe { *at = v };
        }
    }
    if !set {
        sh.make_defined(vbits, len);
    }
    1
}

/// `MALLOCLIKE_BLOCK`: a custom allocator's block, live and leak-checked like a malloc'd one.
fn malloclike(p: u64, size: u64, rz: u64, zeroed: bool) {
    if p == 0 {
        return;
    }
    let ctx = here();
    st().heap.add_custom(p, size, ctx);
    new_block_shadow(p, size, rz, zeroed, ctx);
}

/// `FREELIKE_BLOCK` (and `free()` of any block, as Valgrind counts frees): every attempt is
/// counted; a block that is not live is an invalid free, one of another family a mismatch.
fn freelike(p: u64, rz: u64) {
    let s = st();
    let Some(b) = s.heap.live.get(&p).copied() else {
        s.heap.stats.frees += 1;
        invalid_free(p);
        return;
    };
    if b.kind != AllocKind::Custom {
        let desc = describe_addr(p);
        report(McError::Mismatch { addr: p, desc });
    }
    let ctx = here();
    let s = st();
    s.heap.free(p, ctx);
    s.shadow.make_noaccess(p.saturating_sub(rz), b.size + 2 * rz);
}

/// `RESIZEINPLACE_BLOCK`: a live block of `old` bytes at `p` now has `new` bytes.
fn resize_in_place(p: u64, old: u64, new: u64, rz: u64) {
    let s = st();
    match s.heap.live.get_mut(&p) {
        Some(b) if b.size == old && new != 0 => b.size = new,
        _ => return invalid_free(p),
    }
    if new < old {
        s.shadow.make_noaccess(p + new, old - new + rz);
    } else if new > old {
        let ctx = here();
        new_block_shadow(p + old, new - old, 0, false, ctx);
        st().shadow.make_noaccess(p + new, rz);
    }
}

/// Service request `args` (code first) if it is one of memcheck's.
pub fn handle(args: &[u64; 6]) -> Option<u64> {
    let (a, len) = (args[1], args[2]);
    let s = st();
    Some(match args[0] {
        code::MAKE_MEM_NOACCESS => {
            s.shadow.make_noaccess(a, len);
            0
        }
        code::MAKE_MEM_UNDEFINED => {
            s.shadow.make_undefined(a, len);
            0
        }
        code::MAKE_MEM_DEFINED => {
            s.shadow.make_defined(a, len);
            0
        }
        code::MAKE_MEM_DEFINED_IF_ADDRESSABLE => {
            s.shadow.make_defined_if_addressable(a, len);
            0
        }
        code::CHECK_MEM_IS_ADDRESSABLE => check(a, len, false),
        code::CHECK_MEM_IS_DEFINED => check(a, len, true),
        code::GET_VBITS => vbits(a, args[2], args[3], false),
        code::SET_VBITS => vbits(a, args[2], args[3], true),
        code::CREATE_BLOCK => {
            if a == 0 || len == 0 {
                return Some(u64::MAX);
            }
            let b = NamedBlock { start: a, size: len, desc: client_str(args[3]), at: here() };
            st().creq.create_block(b) as u64
        }
        code::DISCARD => !s.creq.discard(args[2]) as u64,
        code::DISABLE_ADDR_ERROR_REPORTING_IN_RANGE | code::ENABLE_ADDR_ERROR_REPORTING_IN_RANGE => {
            if len == 0 {
                return Some(0);
            }
            s.creq.set_ignored(a, len, args[0] == code::DISABLE_ADDR_ERROR_REPORTING_IN_RANGE);
            1
        }
        code::MALLOCLIKE_BLOCK => {
            malloclike(a, len, args[3], args[4] != 0);
            0
        }
        code::FREELIKE_BLOCK => {
            freelike(a, len);
            0
        }
        code::RESIZEINPLACE_BLOCK => {
            resize_in_place(a, args[2], args[3], args[4]);
            0
        }
        _ => return crate::mempool::request(args),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_blocks_reuse_discarded_handles() {
        let mut c = ClientReqs::default();
        let b = |start| NamedBlock { start, size: 16, desc: String::from("t"), at: ExeContextId(0) };
        assert_eq!(c.create_block(b(0x100)), 0);
        assert_eq!(c.create_block(b(0x200)), 1);
        assert_eq!(c.describe(0x20f).map(|(b, off)| (b.start, off)), Some((0x200, 15)));
        assert!(c.describe(0x210).is_none(), "no redzone");
        assert!(c.discard(0));
        assert!(!c.discard(0) && !c.discard(7));
        assert!(c.describe(0x100).is_none());
        assert_eq!(c.create_block(b(0x300)), 0);
    }

    #[test]
    fn ignored_ranges_add_and_remove() {
        let mut c = ClientReqs::default();
        c.set_ignored(0x100, 0x100, true);
        c.set_ignored(0x180, 0x100, true);
        assert!(c.is_ignored(0x100) && c.is_ignored(0x27f) && !c.is_ignored(0x280) && !c.is_ignored(0xff));
        c.set_ignored(0x140, 0x10, false);
        assert!(c.is_ignored(0x13f) && !c.is_ignored(0x140) && !c.is_ignored(0x14f) && c.is_ignored(0x150));
        assert_eq!(c.ignored, [(0x100, 0x140), (0x150, 0x280)]);
    }
}
