//! The address-space manager: the one authority on what is mapped where.
//!
//! It keeps an ordered list of [`Segment`]s that covers the whole user address space without
//! gaps: free space, reserved space (kept free for a purpose, e.g. the client's brk growth),
//! client mappings and core mappings. Client `mmap`/`munmap`/`mprotect`/`mremap`/`brk` ask it
//! where they may go and tell it what they did; the JIT asks it whether guest code is readable.
//!
//! The core's own mappings (its image, stack, arenas, code cache) are not announced one by one:
//! at start-up and whenever a client request could land on unknown memory, the list is
//! re-synchronised with `/proc/self/maps`, and every kernel mapping that is not a known client
//! mapping is taken to be the core's. Client placements chosen here use `MAP_FIXED_NOREPLACE`, so
//! a core mapping made behind our back is never overwritten.
//!
//! Layout policy (amd64, mirroring Valgrind's so that addresses in reports look familiar): the
//! client stack ends at [`CLIENT_STACK_TOP`]; client mappings without a fixed address go top-down
//! below the stack's reservation; the core (at 0x58000000, or 0x38000000 for the inner build)
//! and the kernel-chosen core mappings near the top of the address space are never touched.
//!
//! Depends only on the raw system calls in [`sys`] (shared with the loader).

pub(crate) mod sys;
mod maps;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

pub use maps::{MapsEntry, parse_maps_line};
use sys::{MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PROT_READ, PROT_WRITE};

/// Page size (4 KiB on every host we support).
pub const PAGE_SIZE: u64 = 4096;
/// Exclusive end of the user address space (47-bit on amd64; the vsyscall page above it is
/// ignored).
pub const ADDR_TOP: u64 = 0x8000_0000_0000;
/// Addresses below this are never mapped (Linux's usual `mmap_min_addr`).
pub const MIN_ADDR: u64 = 0x1_0000;
/// Exclusive top of the client's main stack (as in Valgrind on amd64).
pub const CLIENT_STACK_TOP: u64 = 0x1f_ff00_0000;
/// Size of the client's main stack mapping (Valgrind's default `--main-stacksize`).
pub const CLIENT_STACK_SIZE: u64 = 8 << 20;
/// Non-fixed client mappings are placed top-down below this address first (the stack and a
/// guard gap sit above it).
pub const CLIENT_MMAP_TOP: u64 = CLIENT_STACK_TOP - CLIENT_STACK_SIZE - (1 << 20);
/// How far the client's brk may grow (address space reserved after the executable).
pub const BRK_MAX_SIZE: u64 = 8 << 20;

/// Round down / up to a page boundary.
pub const fn page_down(a: u64) -> u64 {
    a & !(PAGE_SIZE - 1)
}
pub const fn page_up(a: u64) -> u64 {
    page_down(a.saturating_add(PAGE_SIZE - 1))
}

/// What backs a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    Anon,
    File,
}

/// Who owns a range of addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegKind {
    /// Nothing mapped; the client may get it.
    Free,
    /// Nothing mapped, but kept for a purpose (brk growth, stack guard, the null page).
    Reserved,
    /// Mapped by or for the client.
    Client(Backing),
    /// Mapped by the core (or by the kernel for it: vdso, vvar, its stack).
    Core(Backing),
}

impl SegKind {
    fn is_core_or_reserved(self) -> bool {
        matches!(self, SegKind::Core(_) | SegKind::Reserved)
    }
}

/// One entry of the segment list: `[start, end)` with one owner and one set of attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub start: u64,
    /// Exclusive end.
    pub end: u64,
    pub kind: SegKind,
    /// `PROT_*` bits (0 for free and reserved space).
    pub prot: u32,
    /// File name for file mappings, or a label such as "[stack]".
    pub name: Option<String>,
    /// File offset of `start` (file mappings only).
    pub offset: u64,
}

impl Segment {
    fn unmapped(start: u64, end: u64, kind: SegKind) -> Segment {
        Segment { start, end, kind, prot: 0, name: None, offset: 0 }
    }
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
    /// Whether `next` (which starts at `self.end`) continues this segment seamlessly.
    fn merges_with(&self, next: &Segment) -> bool {
        self.kind == next.kind
            && self.prot == next.prot
            && self.name == next.name
            && (!matches!(self.kind, SegKind::Client(Backing::File) | SegKind::Core(Backing::File))
                || self.offset + self.len() == next.offset)
    }
}

/// The client's program break: `[base, cur)` is in use, `[base, limit)` is reserved for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Brk {
    pub base: u64,
    pub cur: u64,
    pub limit: u64,
}

/// What a `brk` request changes: the new break and the pages to map or unmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrkPlan {
    pub new_cur: u64,
    /// Pages `[start, end)` to map read-write (growth).
    pub map: Option<(u64, u64)>,
    /// Pages `[start, end)` to unmap (shrinking).
    pub unmap: Option<(u64, u64)>,
}

impl Brk {
    /// The kernel's rule: a break outside `[base, limit]` is refused (the old break stays);
    /// otherwise the pages between the old and new page-rounded breaks are mapped or unmapped.
    pub fn plan(&self, req: u64) -> Option<BrkPlan> {
        if req < self.base || req > self.limit {
            return None;
        }
        let (old_top, new_top) = (page_up(self.cur), page_up(req));
        Some(BrkPlan {
            new_cur: req,
            map: (new_top > old_top).then_some((old_top, new_top)),
            unmap: (new_top < old_top).then_some((new_top, old_top)),
        })
    }
}

/// The segment list and the client's brk.
pub struct AddressSpace {
    segs: Vec<Segment>,
    brk: Option<Brk>,
}

impl Default for AddressSpace {
    fn default() -> Self {
        Self::new()
    }
}

impl AddressSpace {
    /// An address space with nothing mapped: the null area reserved, everything else free.
    pub const fn new() -> AddressSpace {
        AddressSpace { segs: Vec::new(), brk: None }
    }

    fn ensure_nonempty(&mut self) {
        if self.segs.is_empty() {
            self.segs.push(Segment::unmapped(0, MIN_ADDR, SegKind::Reserved));
            self.segs.push(Segment::unmapped(MIN_ADDR, ADDR_TOP, SegKind::Free));
        }
    }

    /// All segments, in address order, covering `[0, ADDR_TOP)`.
    pub fn segments(&self) -> &[Segment] {
        &self.segs
    }

    /// The client's brk, once the loader has set it up.
    pub fn brk(&self) -> Option<Brk> {
        self.brk
    }

    /// Index of the segment containing `addr` (`addr < ADDR_TOP`).
    fn find(&self, addr: u64) -> usize {
        self.segs.partition_point(|s| s.end <= addr)
    }

    /// Make `addr` a segment boundary (no-op if it already is one).
    fn split_at(&mut self, addr: u64) {
        if addr == 0 || addr >= ADDR_TOP {
            return;
        }
        let i = self.find(addr);
        let s = &self.segs[i];
        if s.start == addr {
            return;
        }
        let mut tail = s.clone();
        tail.start = addr;
        if matches!(s.kind, SegKind::Client(Backing::File) | SegKind::Core(Backing::File)) {
            tail.offset = s.offset + (addr - s.start);
        }
        self.segs[i].end = addr;
        self.segs.insert(i + 1, tail);
    }

    /// Merge neighbours that continue each other (keeps the list short and printable).
    fn coalesce(&mut self) {
        let mut out: Vec<Segment> = Vec::with_capacity(self.segs.len());
        for s in self.segs.drain(..) {
            match out.last_mut() {
                Some(prev) if prev.merges_with(&s) => prev.end = s.end,
                _ => out.push(s),
            }
        }
        self.segs = out;
    }

    /// Indices `[i, j)` of the segments exactly covering `[start, end)` after splitting.
    fn isolate(&mut self, start: u64, end: u64) -> (usize, usize) {
        self.ensure_nonempty();
        self.split_at(start);
        self.split_at(end);
        let i = self.find(start);
        let j = if end >= ADDR_TOP { self.segs.len() } else { self.find(end) };
        (i, j)
    }

    /// Replace `[start, end)` (page-aligned) by one segment.
    fn set_range(&mut self, seg: Segment) {
        debug_assert!(seg.start < seg.end && seg.end <= ADDR_TOP);
        let (i, j) = self.isolate(seg.start, seg.end);
        self.segs.splice(i..j, core::iter::once(seg));
        self.coalesce();
    }

    /// Apply `f` to every segment piece inside `[start, end)`.
    fn update_range(&mut self, start: u64, end: u64, mut f: impl FnMut(&mut Segment)) {
        let (i, j) = self.isolate(start, end);
        for s in &mut self.segs[i..j] {
            f(s);
        }
        self.coalesce();
    }

    /// The segments overlapping `[start, end)`.
    fn overlapping(&self, start: u64, end: u64) -> &[Segment] {
        if self.segs.is_empty() || start >= end {
            return &[];
        }
        let i = self.find(start);
        let j = self.segs.partition_point(|s| s.start < end);
        &self.segs[i..j.max(i)]
    }

    /// Record the kernel's current mappings: every mapped range that is not a known client
    /// mapping becomes the core's. `text` is the content of `/proc/self/maps`.
    pub fn sync_from_maps(&mut self, text: &str) {
        self.ensure_nonempty();
        for e in text.lines().filter_map(parse_maps_line) {
            if e.start >= ADDR_TOP {
                continue;
            }
            let end = e.end.min(ADDR_TOP);
            let backing = if e.inode != 0 { Backing::File } else { Backing::Anon };
            let name = if e.name.is_empty() { None } else { Some(String::from(e.name)) };
            // Only the parts we believed empty change owner: client mappings stay the client's.
            let pieces: Vec<(u64, u64)> = self
                .overlapping(e.start, end)
                .iter()
                .filter(|s| matches!(s.kind, SegKind::Free | SegKind::Reserved))
                .map(|s| (s.start.max(e.start), s.end.min(end)))
                .collect();
            for (a, b) in pieces {
                self.set_range(Segment {
                    start: a,
                    end: b,
                    kind: SegKind::Core(backing),
                    prot: e.prot,
                    name: name.clone(),
                    offset: if backing == Backing::File { e.offset + (a - e.start) } else { 0 },
                });
            }
        }
    }

    /// Where the client may map `len` bytes.
    ///
    /// With `fixed`, `hint` is the required (page-aligned) address: the answer is `Some(hint)`
    /// unless the range would overlap a core or reserved segment (or leave the address space).
    /// Otherwise `hint` is used if its range is entirely free; else the highest free gap below
    /// [`CLIENT_MMAP_TOP`] (then anywhere) is chosen.
    pub fn find_client_space(&self, len: u64, hint: u64, fixed: bool) -> Option<u64> {
        self.find_client_space_below(len, hint, fixed, ADDR_TOP)
    }

    /// [`find_client_space`](Self::find_client_space) with the result's end at most `limit`
    /// (for `MAP_32BIT`).
    pub fn find_client_space_below(&self, len: u64, hint: u64, fixed: bool, limit: u64) -> Option<u64> {
        let len = page_up(len);
        if len == 0 || len > limit {
            return None;
        }
        if fixed {
            let end = hint.checked_add(len)?;
            if !hint.is_multiple_of(PAGE_SIZE) || hint < MIN_ADDR || end > ADDR_TOP {
                return None;
            }
            let ok = self.overlapping(hint, end).iter().all(|s| !s.kind.is_core_or_reserved());
            return ok.then_some(hint);
        }
        let hint = page_down(hint);
        if hint >= MIN_ADDR && hint.checked_add(len).is_some_and(|e| e <= limit) && self.is_free(hint, len) {
            return Some(hint);
        }
        self.highest_gap(len, MIN_ADDR, limit.min(CLIENT_MMAP_TOP))
            .or_else(|| self.highest_gap(len, MIN_ADDR, limit))
    }

    /// Whether `[addr, addr+len)` is entirely free.
    pub fn is_free(&self, addr: u64, len: u64) -> bool {
        let (start, end) = (page_down(addr), page_up(addr.saturating_add(len)));
        if self.segs.is_empty() {
            return start >= MIN_ADDR && end <= ADDR_TOP;
        }
        end <= ADDR_TOP && self.overlapping(start, end).iter().all(|s| s.kind == SegKind::Free)
    }

    /// Whether the client may map over or change `[addr, addr+len)`: nothing of the core and no
    /// reserved space in it.
    pub fn is_client_ok(&self, addr: u64, len: u64) -> bool {
        self.find_client_space(len, page_down(addr), true).is_some()
    }

    /// The highest `len`-byte free gap inside `[lo, hi)`.
    fn highest_gap(&self, len: u64, lo: u64, hi: u64) -> Option<u64> {
        if self.segs.is_empty() {
            return (hi >= lo + len).then(|| page_down(hi - len));
        }
        self.segs.iter().rev().filter(|s| s.kind == SegKind::Free).find_map(|s| {
            let (a, b) = (s.start.max(lo), s.end.min(hi));
            (b > a && b - a >= len).then(|| b - len)
        })
    }

    /// Record a client mapping made by `mmap(addr, len, prot, flags, fd, off)`; `name` is the
    /// file's path for file mappings.
    pub fn record_client_mmap(&mut self, addr: u64, len: u64, prot: u32, flags: u32, name: Option<String>, off: u64) {
        let file = flags & MAP_ANONYMOUS == 0 && name.is_some();
        let end = page_up(addr + len);
        self.set_range(Segment {
            start: page_down(addr),
            end,
            kind: SegKind::Client(if file { Backing::File } else { Backing::Anon }),
            prot,
            name,
            offset: if file { off } else { 0 },
        });
    }

    /// Record a client (or core) unmapping: client pieces become free, or reserved again when
    /// they lie in the brk reservation. Core and reserved pieces are left alone.
    pub fn record_munmap(&mut self, addr: u64, len: u64) {
        let (start, end) = (page_down(addr), page_up(addr + len).min(ADDR_TOP));
        if start >= end {
            return;
        }
        let brk = self.brk;
        self.update_range(start, end, |s| {
            if matches!(s.kind, SegKind::Client(_)) {
                let in_brk = brk.is_some_and(|b| s.start >= b.base && s.end <= page_up(b.limit));
                *s = Segment::unmapped(s.start, s.end, if in_brk { SegKind::Reserved } else { SegKind::Free });
            }
        });
    }

    /// Record a protection change of the mapped pieces of `[addr, addr+len)`.
    pub fn record_mprotect(&mut self, addr: u64, len: u64, prot: u32) {
        let (start, end) = (page_down(addr), page_up(addr + len).min(ADDR_TOP));
        if start >= end {
            return;
        }
        self.update_range(start, end, |s| {
            if matches!(s.kind, SegKind::Client(_) | SegKind::Core(_)) {
                s.prot = prot;
            }
        });
    }

    /// Record a core mapping the core made itself (optional: unknown ones are found by
    /// [`sync_from_maps`](Self::sync_from_maps)).
    pub fn record_core_mmap(&mut self, addr: u64, len: u64, prot: u32, name: Option<String>) {
        let kind = SegKind::Core(if name.is_some() { Backing::File } else { Backing::Anon });
        self.set_range(Segment { start: page_down(addr), end: page_up(addr + len), kind, prot, name, offset: 0 });
    }

    /// Reserve `[start, end)` (page-aligned) so that nothing else is placed there.
    pub fn reserve(&mut self, start: u64, end: u64) {
        self.set_range(Segment::unmapped(page_down(start), page_up(end), SegKind::Reserved));
    }

    /// Set up the client's brk at `base` (page-aligned), growing to at most `max` bytes or up to
    /// the next non-free segment. Returns the brk's limit.
    pub fn init_brk(&mut self, base: u64, max: u64) -> u64 {
        self.ensure_nonempty();
        let mut limit = base + max;
        if let Some(s) = self.overlapping(base, limit).iter().find(|s| s.kind != SegKind::Free) {
            limit = s.start.max(base);
        }
        if limit > base {
            self.reserve(base, limit);
        }
        self.brk = Some(Brk { base, cur: base, limit });
        limit
    }

    /// Change the client's break as the kernel's brk(2) would; returns the (new or unchanged)
    /// break. `map`/`unmap` carry out the page changes (real system calls, or a test's record);
    /// a failing `map` leaves the break unchanged.
    pub fn do_brk(
        &mut self,
        req: u64,
        map: impl FnOnce(u64, u64) -> Result<(), i32>,
        unmap: impl FnOnce(u64, u64),
    ) -> u64 {
        let Some(brk) = self.brk else { return 0 };
        let Some(plan) = brk.plan(req) else { return brk.cur };
        if let Some((a, b)) = plan.map {
            if map(a, b - a).is_err() {
                return brk.cur;
            }
            self.set_range(Segment {
                start: a,
                end: b,
                kind: SegKind::Client(Backing::Anon),
                prot: PROT_READ | PROT_WRITE,
                name: Some(String::from("[brk]")),
                offset: 0,
            });
        }
        if let Some((a, b)) = plan.unmap {
            unmap(a, b - a);
            self.set_range(Segment::unmapped(a, b, SegKind::Reserved));
        }
        self.brk = Some(Brk { cur: plan.new_cur, ..brk });
        plan.new_cur
    }

    /// How many bytes from `addr` on (at most `max`) are client memory with all of `prot`.
    pub fn accessible_extent(&self, addr: u64, max: u64, prot: u32) -> u64 {
        let end = addr.saturating_add(max).min(ADDR_TOP);
        let mut at = addr;
        for s in self.overlapping(addr, end) {
            if s.start > at || !matches!(s.kind, SegKind::Client(_)) || s.prot & prot != prot {
                break;
            }
            at = s.end.min(end);
        }
        at.saturating_sub(addr)
    }

    /// How many bytes from `addr` on (at most `max`) are readable client memory.
    pub fn readable_extent(&self, addr: u64, max: u64) -> u64 {
        self.accessible_extent(addr, max, PROT_READ)
    }

    /// Whether all of `[addr, addr+len)` is writable client memory.
    pub fn is_client_writable(&self, addr: u64, len: u64) -> bool {
        self.accessible_extent(addr, len, PROT_WRITE) == len
    }

    /// Whether any part of `[addr, addr+len)` belongs to the core.
    pub fn overlaps_core(&self, addr: u64, len: u64) -> bool {
        let (start, end) = (page_down(addr), page_up(addr.saturating_add(len)).min(ADDR_TOP));
        self.overlapping(start, end).iter().any(|s| matches!(s.kind, SegKind::Core(_)))
    }

    /// Record a successful `mremap` of `[old, old+old_len)` to `[new, new+new_len)` (the same
    /// address when resized in place): the moved pages keep their owner, protection and file
    /// offsets; growth continues the last piece.
    pub fn record_mremap(&mut self, old: u64, old_len: u64, new: u64, new_len: u64) {
        // Code that moved away, or was cut off, loses its translations.
        if new != old {
            note_code_gone(self, old, old_len);
        } else if new_len < old_len {
            note_code_gone(self, old + new_len, old_len - new_len);
        }
        let (old, old_len, new_len) = (page_down(old), page_up(old_len), page_up(new_len));
        let keep = old_len.min(new_len);
        let mut moved: Vec<Segment> = self
            .overlapping(old, old + keep)
            .iter()
            .filter(|s| matches!(s.kind, SegKind::Client(_)))
            .map(|s| {
                let (a, b) = (s.start.max(old), s.end.min(old + keep));
                let file = s.kind == SegKind::Client(Backing::File);
                Segment {
                    start: a - old + new,
                    end: b - old + new,
                    offset: if file { s.offset + (a - s.start) } else { 0 },
                    ..s.clone()
                }
            })
            .collect();
        if new_len > keep
            && let Some(last) = moved.last_mut()
        {
            last.end = new + new_len;
        }
        self.record_munmap(old, old_len);
        for s in moved {
            self.set_range(s);
        }
    }

    /// Whether all of `[addr, addr+len)` is readable client memory.
    pub fn is_client_readable(&self, addr: u64, len: u64) -> bool {
        self.readable_extent(addr, len) == len
    }

    /// The segment list, one line per segment (for `-d -d` and the gdbserver's
    /// `v.info memory aspacemgr`).
    pub fn print(&self, w: &mut impl Write) -> fmt::Result {
        for (i, s) in self.segs.iter().enumerate() {
            let tag = match s.kind {
                SegKind::Free => "FREE",
                SegKind::Reserved => "RSVN",
                SegKind::Client(Backing::Anon) => "ANON",
                SegKind::Client(Backing::File) => "FILE",
                SegKind::Core(Backing::Anon) => "anon",
                SegKind::Core(Backing::File) => "file",
            };
            let p = |bit: u32, c: char| if s.prot & bit != 0 { c } else { '-' };
            write!(
                w,
                "{i:3}: {tag} {:012x}-{:012x} {:>6} {}{}{}",
                s.start,
                s.end - 1,
                human_size(s.len()),
                p(PROT_READ, 'r'),
                p(PROT_WRITE, 'w'),
                p(sys::PROT_EXEC, 'x'),
            )?;
            if let SegKind::Client(Backing::File) | SegKind::Core(Backing::File) = s.kind {
                write!(w, " off {:#x}", s.offset)?;
            }
            match &s.name {
                Some(n) => writeln!(w, " {n}")?,
                None => writeln!(w)?,
            }
        }
        Ok(())
    }
}

/// Sizes as "4096", "12k", "8m", "1g" (rounded down), for the printed list.
fn human_size(n: u64) -> HumanSize {
    HumanSize(n)
}

struct HumanSize(u64);

impl fmt::Display for HumanSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        let mut buf = heapless::String::<24>::new();
        let _ = if n >= 1 << 30 {
            write!(buf, "{}g", n >> 30)
        } else if n >= 1 << 20 {
            write!(buf, "{}m", n >> 20)
        } else if n >= 1 << 10 {
            write!(buf, "{}k", n >> 10)
        } else {
            write!(buf, "{n}")
        };
        f.pad(&buf)
    }
}

// ---------------------------------------------------------------------------------------------
// The global instance and the operations that also make the system calls.

static ASPACE: spin::Mutex<AddressSpace> = spin::Mutex::new(AddressSpace::new());

/// The process's address space. Hold the guard briefly; never across a guest run.
pub fn aspace() -> spin::MutexGuard<'static, AddressSpace> {
    ASPACE.lock()
}

/// Read `/proc/self/maps` into the global list (at start-up, and again before a client request
/// that could land on memory the core mapped behind the manager's back).
pub fn sync() -> Result<(), i32> {
    let text = sys::read_file("/proc/self/maps")?;
    aspace().sync_from_maps(&String::from_utf8_lossy(&text));
    Ok(())
}

/// Initialise the manager at start-up: the kernel's mappings (the core's image, stack, heap,
/// vdso, vvar) become core segments, and the space just below the host stack is reserved for
/// its growth.
pub fn init() -> Result<(), i32> {
    sync()?;
    let mut a = aspace();
    let stack = a.segs.iter().find(|s| s.name.as_deref() == Some("[stack]")).map(|s| s.start);
    if let Some(lo) = stack {
        let guard = lo.saturating_sub(CLIENT_STACK_SIZE).max(MIN_ADDR);
        if a.is_free(guard, lo - guard) {
            a.reserve(guard, lo);
        }
    }
    Ok(())
}

/// See [`AddressSpace::find_client_space`].
pub fn find_client_space(len: u64, hint: u64, fixed: bool) -> Option<u64> {
    aspace().find_client_space(len, hint, fixed)
}

/// See [`AddressSpace::readable_extent`].
pub fn readable_extent(addr: u64, max: u64) -> u64 {
    aspace().readable_extent(addr, max)
}

/// See [`AddressSpace::is_client_readable`].
pub fn is_client_readable(addr: u64, len: u64) -> bool {
    aspace().is_client_readable(addr, len)
}

/// Whether `addr` lies in a mapping backed by a file (code there changes only by remapping).
pub fn is_file_backed(addr: u64) -> bool {
    let a = aspace();
    a.overlapping(addr, addr + 1)
        .first()
        .is_some_and(|s| matches!(s.kind, SegKind::Client(Backing::File) | SegKind::Core(Backing::File)))
}

/// Guest address ranges whose code went away or stopped being executable since the scheduler
/// last looked: their translations must be discarded.
static CODE_GONE: spin::Mutex<Vec<(u64, u64)>> = spin::Mutex::new(Vec::new());

/// Queue `[addr, addr+len)` if any of it was executable client memory.
fn note_code_gone(a: &AddressSpace, addr: u64, len: u64) {
    let end = page_up(addr.saturating_add(len)).min(ADDR_TOP);
    if a.overlapping(page_down(addr), end).iter().any(|s| matches!(s.kind, SegKind::Client(_)) && s.prot & sys::PROT_EXEC != 0) {
        CODE_GONE.lock().push((page_down(addr), end - page_down(addr)));
    }
}

/// Take the queued ranges whose translations must be discarded.
pub fn take_code_gone() -> Vec<(u64, u64)> {
    core::mem::take(&mut *CODE_GONE.lock())
}

/// Record a client mapping the kernel made with `mmap(addr, len, prot, flags, fd, off)`
/// (`addr` is the address the kernel returned). File mappings are named after the file.
pub fn notify_client_mmap(addr: u64, len: u64, prot: u32, flags: u32, fd: i32, off: u64) {
    let name = if flags & MAP_ANONYMOUS == 0 && fd >= 0 {
        let mut link = heapless::String::<32>::new();
        let _ = write!(link, "/proc/self/fd/{fd}");
        sys::readlink(&link).ok()
    } else {
        None
    };
    crate::stacks::notify_mmap(addr, len, prot, name.as_deref(), off);
    aspace().record_client_mmap(addr, len, prot, flags, name, off);
}

/// Record an unmapping done by the client.
pub fn notify_munmap(addr: u64, len: u64) {
    crate::stacks::notify_unmap(addr, len);
    let mut a = aspace();
    note_code_gone(&a, addr, len);
    a.record_munmap(addr, len);
}

/// Record a protection change done by the client.
pub fn notify_mprotect(addr: u64, len: u64, prot: u32) {
    let mut a = aspace();
    if prot & sys::PROT_EXEC == 0 {
        note_code_gone(&a, addr, len);
    }
    a.record_mprotect(addr, len, prot);
}

/// Map `len` bytes for the client at a place this manager chooses below `limit` (or exactly at
/// `hint` when `fixed`), with `MAP_FIXED_NOREPLACE` so that an unknown core mapping is never
/// overwritten: on a collision the list is re-synchronised and another place is tried. Records
/// the mapping. Errors are errno values.
#[allow(clippy::too_many_arguments)]
pub fn map_client(len: u64, hint: u64, fixed: bool, limit: u64, prot: u32, flags: u32, fd: i32, off: u64) -> Result<u64, i32> {
    for _ in 0..4 {
        let at = aspace().find_client_space_below(len, hint, fixed, limit).ok_or(sys::ENOMEM)?;
        let flags = (flags & !MAP_FIXED) | MAP_FIXED_NOREPLACE;
        match sys::mmap(at, len, prot, flags, fd, off) {
            Ok(got) if got == at => {
                notify_client_mmap(at, len, prot, flags, fd, off);
                return Ok(at);
            }
            // A kernel that ignores MAP_FIXED_NOREPLACE placed it elsewhere: undo, retry.
            Ok(got) => {
                let _ = sys::munmap(got, len);
                sync()?;
            }
            Err(sys::EEXIST) => sync()?,
            Err(e) => return Err(e),
        }
        if fixed {
            break;
        }
    }
    Err(sys::ENOMEM)
}

/// The client's brk(2): see [`AddressSpace::do_brk`].
pub fn client_brk(req: u64) -> u64 {
    aspace().do_brk(
        req,
        |a, len| {
            let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
            match sys::mmap(a, len, PROT_READ | PROT_WRITE, flags, -1, 0) {
                Ok(got) if got == a => Ok(()),
                Ok(got) => {
                    let _ = sys::munmap(got, len);
                    Err(sys::ENOMEM)
                }
                Err(e) => Err(e),
            }
        },
        |a, len| {
            let _ = sys::munmap(a, len);
        },
    )
}

#[cfg(test)]
mod tests;
