//! Unit tests of the segment list (std available).

extern crate std;

use super::*;
use alloc::string::ToString;

const MAPS: &str = "\
58000000-58100000 r-xp 00000000 08:01 1234                               /opt/vg/none-amd64-linux
58100000-58180000 rw-p 00100000 08:01 1234                               /opt/vg/none-amd64-linux
7ffff7ff8000-7ffff7ffc000 r--p 00000000 00:00 0                          [vvar]
7ffff7ffc000-7ffff7ffe000 r-xp 00000000 00:00 0                          [vdso]
7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";

fn started() -> AddressSpace {
    let mut a = AddressSpace::new();
    a.sync_from_maps(MAPS);
    a
}

/// The list covers the address space without gaps or overlaps and is coalesced.
fn check_invariants(a: &AddressSpace) {
    let s = a.segments();
    assert_eq!(s[0].start, 0);
    assert_eq!(s.last().unwrap().end, ADDR_TOP);
    for w in s.windows(2) {
        assert_eq!(w[0].end, w[1].start, "gap or overlap: {:?} {:?}", w[0], w[1]);
        assert!(!w[0].merges_with(&w[1]), "not coalesced: {:?} {:?}", w[0], w[1]);
    }
    for seg in s {
        assert!(seg.start < seg.end && seg.start % PAGE_SIZE == 0 && seg.end % PAGE_SIZE == 0);
    }
}

fn kind_at(a: &AddressSpace, addr: u64) -> SegKind {
    a.segments()[a.find(addr)].kind
}

#[test]
fn maps_line_parses() {
    let e = parse_maps_line("58100000-58180000 rw-p 00100000 08:01 1234    /opt/x y").unwrap();
    assert_eq!((e.start, e.end, e.prot, e.offset, e.inode, e.name), (0x5810_0000, 0x5818_0000, 3, 0x10_0000, 1234, "/opt/x y"));
    let anon = parse_maps_line("7f00-8f00 ---p 00000000 00:00 0").unwrap();
    assert_eq!((anon.prot, anon.name), (0, ""));
    assert!(parse_maps_line("garbage").is_none());
    assert!(parse_maps_line("9000-8000 r--p 0 00:00 0").is_none());
}

#[test]
fn startup_mappings_become_core() {
    let a = started();
    check_invariants(&a);
    assert_eq!(kind_at(&a, 0x5800_0000), SegKind::Core(Backing::File));
    assert_eq!(kind_at(&a, 0x7fff_f7ffc000), SegKind::Core(Backing::Anon));
    assert_eq!(kind_at(&a, 0x7fff_fffde000), SegKind::Core(Backing::Anon));
    assert_eq!(kind_at(&a, 0), SegKind::Reserved);
    assert_eq!(kind_at(&a, 0x40_0000), SegKind::Free);
    // The two image segments stay apart (different permissions).
    let core_file: std::vec::Vec<_> = a.segments().iter().filter(|s| s.kind == SegKind::Core(Backing::File)).collect();
    assert_eq!(core_file.len(), 2);
    assert_eq!(core_file[1].offset, 0x10_0000);
}

#[test]
fn fixed_requests_on_core_or_reserved_are_refused() {
    let mut a = started();
    assert_eq!(a.find_client_space(0x1000, 0x40_0000, true), Some(0x40_0000));
    assert_eq!(a.find_client_space(0x1000, 0x5800_0000, true), None);
    // Overlapping the core's start from below.
    assert_eq!(a.find_client_space(0x2000, 0x57ff_f000, true), None);
    assert_eq!(a.find_client_space(0x1000, 0, true), None);
    assert_eq!(a.find_client_space(0x1000, 0x40_0800, true), None, "unaligned");
    a.reserve(0x100_0000, 0x200_0000);
    assert_eq!(a.find_client_space(0x1000, 0x180_0000, true), None);
    // Over an existing client mapping is fine (MAP_FIXED replaces it).
    a.record_client_mmap(0x40_0000, 0x3000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, None, 0);
    assert_eq!(a.find_client_space(0x1000, 0x40_1000, true), Some(0x40_1000));
    check_invariants(&a);
}

#[test]
fn non_fixed_uses_free_hint_else_top_down_below_the_stack() {
    let mut a = started();
    assert_eq!(a.find_client_space(0x1000, 0x40_0000, false), Some(0x40_0000));
    let first = a.find_client_space(0x5000, 0, false).unwrap();
    assert_eq!(first, CLIENT_MMAP_TOP - 0x5000);
    a.record_client_mmap(first, 0x5000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, None, 0);
    let second = a.find_client_space(0x1000, 0, false).unwrap();
    assert_eq!(second, first - 0x1000);
    // A hint on the core is moved elsewhere, not refused.
    let moved = a.find_client_space(0x1000, 0x5800_0000, false).unwrap();
    assert_eq!(moved, second);
    assert_eq!(a.find_client_space(0, 0, false), None);
    assert_eq!(a.find_client_space(1 << 50, 0, false), None);
}

#[test]
fn mmap_munmap_mprotect_bookkeeping() {
    let mut a = started();
    a.record_client_mmap(0x40_0000, 0x4000, PROT_READ | sys::PROT_EXEC, MAP_PRIVATE, Some("/bin/x".to_string()), 0x1000);
    assert!(a.is_client_readable(0x40_0000, 0x4000));
    assert!(!a.is_client_readable(0x40_0000, 0x4001));
    a.record_mprotect(0x40_1000, 0x1000, PROT_READ | PROT_WRITE);
    check_invariants(&a);
    let segs: std::vec::Vec<_> = a.segments().iter().filter(|s| matches!(s.kind, SegKind::Client(_))).cloned().collect();
    assert_eq!(segs.len(), 3);
    assert_eq!((segs[1].start, segs[1].offset, segs[1].prot), (0x40_1000, 0x2000, PROT_READ | PROT_WRITE));
    assert_eq!(segs[2].offset, 0x3000);
    // Restoring the protection merges the pieces again (offsets are contiguous).
    a.record_mprotect(0x40_1000, 0x1000, PROT_READ | sys::PROT_EXEC);
    check_invariants(&a);
    assert_eq!(a.segments().iter().filter(|s| matches!(s.kind, SegKind::Client(_))).count(), 1);
    a.record_munmap(0x40_1000, 0x1800);
    check_invariants(&a);
    assert_eq!(kind_at(&a, 0x40_1000), SegKind::Free);
    assert_eq!(kind_at(&a, 0x40_2000), SegKind::Free);
    assert_eq!(kind_at(&a, 0x40_3000), SegKind::Client(Backing::File));
    assert_eq!(a.readable_extent(0x40_0800, 0x10000), 0x800);
    // munmap never frees core segments.
    a.record_munmap(0x5800_0000, 0x1000);
    assert_eq!(kind_at(&a, 0x5800_0000), SegKind::Core(Backing::File));
    assert!(!a.is_client_readable(0x5800_0000, 1), "core memory is not client code");
}

#[test]
fn resync_keeps_client_mappings_and_finds_new_core_ones() {
    let mut a = started();
    a.record_client_mmap(0x40_0000, 0x1000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, None, 0);
    let more = "00400000-00401000 r--p 00000000 00:00 0\n7f0000000000-7f0000010000 rw-p 00000000 00:00 0\n";
    a.sync_from_maps(more);
    check_invariants(&a);
    assert_eq!(kind_at(&a, 0x40_0000), SegKind::Client(Backing::Anon));
    assert_eq!(kind_at(&a, 0x7f00_0000_0000), SegKind::Core(Backing::Anon));
}

#[test]
fn brk_plan_follows_the_kernel() {
    let b = Brk { base: 0x60_0000, cur: 0x60_0000, limit: 0x60_0000 + BRK_MAX_SIZE };
    assert_eq!(b.plan(0x5f_0000), None, "below the base");
    assert_eq!(b.plan(b.limit + 1), None, "past the limit");
    let p = b.plan(0x60_0010).unwrap();
    assert_eq!(p, BrkPlan { new_cur: 0x60_0010, map: Some((0x60_0000, 0x60_1000)), unmap: None });
    let b2 = Brk { cur: 0x60_2800, ..b };
    assert_eq!(b2.plan(0x60_2900).unwrap().map, None, "same page");
    assert_eq!(b2.plan(0x60_0800).unwrap().unmap, Some((0x60_1000, 0x60_3000)));
    assert_eq!(b2.plan(b.limit).unwrap().map, Some((0x60_3000, b.limit)));
}

#[test]
fn brk_grows_and_shrinks_in_its_reservation() {
    let mut a = started();
    let limit = a.init_brk(0x60_0000, BRK_MAX_SIZE);
    assert_eq!(limit, 0x60_0000 + BRK_MAX_SIZE);
    assert_eq!(kind_at(&a, 0x70_0000), SegKind::Reserved);
    assert_eq!(a.find_client_space(0x1000, 0x70_0000, true), None, "brk space is reserved");
    let mut mapped = std::vec::Vec::new();
    let mut unmapped = std::vec::Vec::new();
    assert_eq!(a.do_brk(0, |x, l| { mapped.push((x, l)); Ok(()) }, |x, l| unmapped.push((x, l))), 0x60_0000);
    assert_eq!(a.do_brk(0x62_1000, |x, l| { mapped.push((x, l)); Ok(()) }, |x, l| unmapped.push((x, l))), 0x62_1000);
    assert_eq!(mapped, [(0x60_0000, 0x2_1000)]);
    assert!(a.is_client_readable(0x60_0000, 0x2_1000));
    // A failing map leaves the break where it was.
    assert_eq!(a.do_brk(0x63_0000, |_, _| Err(12), |_, _| ()), 0x62_1000);
    assert_eq!(a.do_brk(0x60_0800, |_, _| Ok(()), |x, l| unmapped.push((x, l))), 0x60_0800);
    assert_eq!(unmapped, [(0x60_1000, 0x2_0000)]);
    assert_eq!(kind_at(&a, 0x60_1000), SegKind::Reserved);
    // A client munmap inside the brk area gives the space back to the reservation, not to all.
    a.record_munmap(0x60_0000, 0x1000);
    assert_eq!(kind_at(&a, 0x60_0000), SegKind::Reserved);
    check_invariants(&a);
}

#[test]
fn brk_limit_stops_at_the_next_mapping() {
    let mut a = started();
    a.record_client_mmap(0x64_0000, 0x1000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, None, 0);
    assert_eq!(a.init_brk(0x60_0000, BRK_MAX_SIZE), 0x64_0000);
}

#[test]
fn print_lists_every_segment() {
    let mut a = started();
    a.record_client_mmap(0x40_0000, 0x2000, PROT_READ | sys::PROT_EXEC, MAP_PRIVATE, Some("/bin/x".to_string()), 0);
    let mut out = std::string::String::new();
    a.print(&mut out).unwrap();
    assert_eq!(out.lines().count(), a.segments().len());
    assert!(out.contains("FILE 000000400000-000000401fff     8k r-x off 0x0 /bin/x"), "{out}");
    assert!(out.contains("RSVN 000000000000-00000000ffff    64k ---"), "{out}");
}

#[test]
fn real_maps_of_this_process() {
    let text = sys::read_file("/proc/self/maps").unwrap();
    let mut a = AddressSpace::new();
    a.sync_from_maps(core::str::from_utf8(&text).unwrap());
    check_invariants(&a);
    // This function's code is core memory here, hence not client-readable.
    let here = real_maps_of_this_process as *const () as usize as u64;
    assert!(matches!(kind_at(&a, here), SegKind::Core(_)));
    assert!(!a.is_client_readable(here, 1));
}

#[test]
fn mremap_moves_and_grows_the_record() {
    let mut a = started();
    a.record_client_mmap(0x40_0000, 0x2000, PROT_READ, MAP_PRIVATE, Some("/lib/f".to_string()), 0x3000);
    a.record_mremap(0x40_0000, 0x2000, 0x80_0000, 0x5000);
    check_invariants(&a);
    assert_eq!(kind_at(&a, 0x40_0000), SegKind::Free);
    let s = &a.segments()[a.find(0x80_0000)];
    assert_eq!((s.start, s.end, s.offset, s.kind), (0x80_0000, 0x80_5000, 0x3000, SegKind::Client(Backing::File)));
    // Shrinking in place frees the tail.
    a.record_mremap(0x80_0000, 0x5000, 0x80_0000, 0x1000);
    assert_eq!(a.segments()[a.find(0x80_0000)].end, 0x80_1000);
    assert_eq!(kind_at(&a, 0x80_1000), SegKind::Free);
    assert!(a.is_client_writable(0x80_0000, 0) && !a.is_client_writable(0x80_0000, 1));
    assert!(a.overlaps_core(0x57ff_f000, 0x2000) && !a.overlaps_core(0x80_0000, 0x1000));
}
