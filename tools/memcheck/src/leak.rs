//! The leak checker (Valgrind's `mc_leakcheck`): which heap blocks can still be reached from
//! the roots — the guest registers and every addressable word of the client's writable
//! mappings (data, bss, stacks) — through pointers to their start (reachable) or only into
//! their middle (possibly lost, unless a `--leak-check-heuristics=` rule accepts the interior
//! pointer); blocks reached from no root are definitely lost, and the blocks only they point
//! to indirectly lost.
//!
//! The classification is pure logic over a word reader ([`classify`]). [`search`] runs it on
//! the live run: blocks become loss records (per kind and allocation stack, to the depth of
//! `--leak-resolution=`), kept from one search to the next so that the added/changed checks of
//! the client requests can print deltas; each record goes through the error manager (leak
//! suppressions, the error count of `--errors-for-leak-kinds=`, `--gen-suppressions=`), is
//! shown per `--show-leak-kinds=`, and the LEAK SUMMARY closes the report. [`at_exit`] is the
//! end-of-run report (HEAP SUMMARY, leak check, `-s`'s lists, ERROR SUMMARY);
//! [`client_request`] serves `VALGRIND_DO_LEAK_CHECK` and friends and the leak counts.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;

use vg_core::debuginfo::ExeContextId;
use vg_core::errors::ErrorKindId;

use crate::options::{Heuristics, LeakCheck, LeakKinds};
use crate::{commas, st};

/// What became of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Reachable,
    Possible,
    Indirect,
    Definite,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Definite, Kind::Indirect, Kind::Possible, Kind::Reachable];

    /// Its bit in a [`LeakKinds`] set.
    pub const fn bit(self) -> u8 {
        match self {
            Kind::Definite => 1,
            Kind::Indirect => 2,
            Kind::Possible => 4,
            Kind::Reachable => 8,
        }
    }

    /// Order among loss records of equal size: Valgrind sorts the lost kinds first.
    fn rank(self) -> u8 {
        match self {
            Kind::Definite => 0,
            Kind::Indirect => 1,
            Kind::Possible => 2,
            Kind::Reachable => 3,
        }
    }

    /// As a loss record says it.
    pub fn words(self) -> &'static str {
        match self {
            Kind::Definite => "definitely lost",
            Kind::Indirect => "indirectly lost",
            Kind::Possible => "possibly lost",
            Kind::Reachable => "still reachable",
        }
    }

    /// The `<kind>` of its XML errors.
    pub fn xml_kind(self) -> &'static str {
        match self {
            Kind::Definite => "Leak_DefinitelyLost",
            Kind::Indirect => "Leak_IndirectlyLost",
            Kind::Possible => "Leak_PossiblyLost",
            Kind::Reachable => "Leak_StillReachable",
        }
    }

    /// Its name in `match-leak-kinds:` and the kind options.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Definite => "definite",
            Kind::Indirect => "indirect",
            Kind::Possible => "possible",
            Kind::Reachable => "reachable",
        }
    }

    fn index(self) -> usize {
        self.rank() as usize
    }
}

/// What the search found for one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub kind: Kind,
    /// The heuristic (a [`Heuristics`] bit) through which a reachable block was reached; 0
    /// when a pointer to its start was found.
    pub heuristic: u8,
    /// For a definitely lost block: the bytes of the blocks lost through it (indirectly lost).
    pub indirect: u64,
}

/// Classify `blocks` (start, size), sorted by start. `roots` are the root words' values;
/// `read_block` gives the words inside a block; `heuristic(i, p)` says which heuristic, if any
/// (0: none), accepts interior pointer `p` into block `i` as a pointer to its start.
pub fn classify(
    blocks: &[(u64, u64)],
    roots: &[u64],
    read_block: &dyn Fn(u64, u64) -> Vec<u64>,
    heuristic: &dyn Fn(usize, u64) -> u8,
) -> Vec<Found> {
    // A zero-sized block is found by a pointer to its start.
    let find = |v: u64| -> Option<(usize, bool)> {
        let i = blocks.partition_point(|b| b.0 <= v).checked_sub(1)?;
        let (s, n) = blocks[i];
        (v < s + n.max(1)).then_some((i, v == s))
    };
    // 0 = not reached, 1 = possibly, 2 = reachable.
    let mut level = alloc::vec![0u8; blocks.len()];
    let mut heur = alloc::vec![0u8; blocks.len()];
    let mut work = Vec::new();
    // A pointer `v` found in a root (`from_reachable`) or in a block.
    let mut reach = |v: u64, from_reachable: bool, level: &mut Vec<u8>, work: &mut Vec<usize>| {
        let Some((i, start)) = find(v) else { return };
        if level[i] == 2 {
            if start {
                heur[i] = 0;
            }
            return;
        }
        let as_start = start || {
            heur[i] = heuristic(i, v);
            heur[i] != 0
        };
        if as_start && from_reachable {
            level[i] = 2;
            work.push(i);
        } else if level[i] == 0 {
            level[i] = 1;
            work.push(i);
        }
    };
    for &v in roots {
        reach(v, true, &mut level, &mut work);
    }
    while let Some(i) = work.pop() {
        let from_reachable = level[i] == 2;
        for v in read_block(blocks[i].0, blocks[i].1) {
            reach(v, from_reachable, &mut level, &mut work);
        }
    }
    let mut found: Vec<Found> = level
        .iter()
        .zip(&heur)
        .map(|(l, h)| match l {
            2 => Found { kind: Kind::Reachable, heuristic: *h, indirect: 0 },
            1 => Found { kind: Kind::Possible, heuristic: 0, indirect: 0 },
            _ => Found { kind: Kind::Definite, heuristic: 0, indirect: 0 },
        })
        .collect();
    // Each unreached block not yet claimed, in address order, leads a clique: the unreached
    // blocks it reaches are indirectly lost through it. A former leader claimed later hands
    // its own indirect bytes on.
    for lead in 0..blocks.len() {
        if found[lead].kind != Kind::Definite {
            continue;
        }
        let mut stack = alloc::vec![lead];
        while let Some(i) = stack.pop() {
            for v in read_block(blocks[i].0, blocks[i].1) {
                if let Some((j, _)) = find(v)
                    && j != lead
                    && found[j].kind == Kind::Definite
                {
                    found[j].kind = Kind::Indirect;
                    found[lead].indirect += blocks[j].1 + found[j].indirect;
                    found[j].indirect = 0;
                    stack.push(j);
                }
            }
        }
    }
    found
}

/// Whether the words at `a..a+8` are addressable and defined.
fn valid_word(a: u64) -> Option<u64> {
    let s = &st().shadow;
    // SAFETY: addressable guest memory (the shadow only marks mapped memory addressable).
    s.first_undefined(a, 8).is_none().then(|| unsafe { core::ptr::read_unaligned(a as *const u64) })
}

/// Which of `heur` accepts interior pointer `p` into block (`start`, `size`) (0: none), by
/// the layouts of [`Heuristics`], in the order Valgrind tries them.
fn heuristic_for(heur: Heuristics, start: u64, size: u64, p: u64) -> u8 {
    if heur.has(Heuristics::STDSTRING)
        && p == start + 24
        && let Some(capacity) = valid_word(start + 8)
        && capacity.checked_add(25) == Some(size)
        && let Some(length) = valid_word(start)
        && length <= capacity
    {
        return Heuristics::STDSTRING;
    }
    if p == start + 8 && size >= 8 {
        // Every length64 block also looks like a new[] array: length64 is tried first.
        let first = valid_word(start);
        if heur.has(Heuristics::LENGTH64) && first.is_some_and(|n| n > 0 && n == size - 8) {
            return Heuristics::LENGTH64;
        }
        if heur.has(Heuristics::NEWARRAY) && first.is_some_and(|n| n > 0 && (size - 8) % n == 0) {
            return Heuristics::NEWARRAY;
        }
    }
    0
}

fn read_words(a: u64, len: u64) -> Vec<u64> {
    let s = &crate::st().shadow;
    let mut out = Vec::new();
    let mut p = a.next_multiple_of(8);
    while p + 8 <= a + len {
        if s.first_noaccess(p, 8).is_none() {
            // SAFETY: addressable guest memory (shadow says so; it only marks mapped memory).
            out.push(unsafe { core::ptr::read_unaligned(p as *const u64) });
        }
        p += 8;
    }
    out
}

/// The root words: the client's writable mappings (without the heap's own chunks) and the
/// current thread's registers.
fn roots() -> Vec<u64> {
    let heap_ranges = st().heap.chunk_ranges();
    let mut roots = Vec::new();
    let segs: Vec<(u64, u64)> = vg_core::aspace::aspace()
        .segments()
        .iter()
        .filter(|g| matches!(g.kind, vg_core::aspace::SegKind::Client(_)) && g.prot & 5 == 1)
        .map(|g| (g.start, g.end))
        .collect();
    // The heap's own chunks are not roots (they may share a segment with other anonymous
    // mappings, so they are cut out of the segments rather than skipping whole segments).
    for (s, e) in segs {
        let mut p = s;
        while p < e {
            match heap_ranges.iter().filter(|&&(hs, he)| he > p && hs < e).min_by_key(|r| r.0) {
                Some(&(hs, he)) if hs <= p => p = he,
                Some(&(hs, _)) => {
                    roots.extend(read_words(p, hs - p));
                    p = hs;
                }
                None => {
                    roots.extend(read_words(p, e - p));
                    p = e;
                }
            }
        }
    }
    let t = vg_core::threads::current();
    for r in 0..16 {
        let off = vg_amd64_guest::state::off_gpr(r) as usize;
        // SAFETY: the current thread's guest state holds its 16 general registers.
        roots.push(unsafe { core::ptr::read_unaligned(t.state.add(off) as *const u64) });
    }
    roots
}

/// Which loss records a search shows: all, or only those that grew (`VALGRIND_DO_ADDED_LEAK_CHECK`)
/// or changed (`VALGRIND_DO_CHANGED_LEAK_CHECK`) since the previous search, with deltas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delta {
    Any,
    Increased,
    Changed,
}

/// Bytes and blocks.
type Amount = (u64, u64);

/// One loss record: the blocks of one kind allocated at one stack (to the leak resolution).
#[derive(Clone, Copy, Debug)]
struct LossRecord {
    kind: Kind,
    ctx: ExeContextId,
    bytes: u64,
    indirect: u64,
    blocks: u64,
    /// The figures of the previous search.
    old: (u64, u64, u64),
}

impl LossRecord {
    fn total(&self) -> u64 {
        self.bytes + self.indirect
    }
}

/// The LEAK SUMMARY's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Summary {
    /// Per kind, indexed by [`Kind::index`], suppressed records taken out.
    kinds: [Amount; 4],
    suppressed: Amount,
    /// Reachable through each heuristic, in [`Heuristics::NAMES`] order.
    heuristic: [Amount; 3],
}

/// What the leak checker keeps between searches.
#[derive(Default)]
struct LeakState {
    /// The error kinds of the four leak kinds (registered at the first search).
    kinds: Option<[ErrorKindId; 4]>,
    records: Vec<LossRecord>,
    /// The previous search's summary (none before the first).
    last: Option<Summary>,
    /// Per suppression (by index): the bytes (with indirect ones) and blocks it suppressed.
    supp_amounts: BTreeMap<usize, Amount>,
}

struct Global(UnsafeCell<Option<LeakState>>);

// SAFETY: as memcheck's state: only touched by the thread holding the core's big lock.
unsafe impl Sync for Global {}

static LEAKS: Global = Global(UnsafeCell::new(None));

fn leaks() -> &'static mut LeakState {
    // SAFETY: see `Global`: one user at a time.
    unsafe { (*LEAKS.0.get()).get_or_insert_with(LeakState::default) }
}

/// Whether a leak suppression's extra lines accept a record of `kind`: without a
/// `match-leak-kinds:` line every kind matches.
fn supp_accepts(extra: &[String], kind: Kind) -> bool {
    match extra.iter().find_map(|e| e.trim().strip_prefix("match-leak-kinds:")) {
        None => true,
        Some(list) => LeakKinds::parse(list.trim()).is_some_and(|set| set.has(kind)),
    }
}

/// `N` or, in a delta search, `N (+D)`.
fn with_delta(now: u64, old: u64, delta: Delta) -> String {
    if delta == Delta::Any {
        return commas(now);
    }
    let sign = if now >= old { '+' } else { '-' };
    format!("{} ({sign}{})", commas(now), commas(now.abs_diff(old)))
}

/// A loss record's first line (without a newline).
fn record_line(r: &LossRecord, n: usize, total: usize, delta: Delta) -> String {
    let (ob, oi, on) = r.old;
    let bytes = if r.indirect > 0 || oi > 0 {
        format!(
            "{} ({} direct, {} indirect)",
            with_delta(r.total(), ob + oi, delta),
            with_delta(r.bytes, ob, delta),
            with_delta(r.indirect, oi, delta)
        )
    } else {
        with_delta(r.bytes, ob, delta)
    };
    format!(
        "{bytes} bytes in {} blocks are {} in loss record {} of {}",
        with_delta(r.blocks, on, delta),
        r.kind.words(),
        commas(n as u64),
        commas(total as u64)
    )
}

/// Run a leak search on the live run with `mode` (`Full` or `Summary`) and `delta`; returns the
/// text to print (loss records, LEAK SUMMARY and hints). Records shown in XML mode go to the
/// XML output instead.
pub fn search(mode: LeakCheck, delta: Delta) -> String {
    let s = st();
    let opts = s.opts;
    let lk = leaks();
    let kinds = *lk.kinds.get_or_insert_with(|| {
        Kind::ALL.map(|k| s.em.register_kind("Memcheck", "Leak", k.xml_kind()))
    });
    // Pool chunks and custom blocks count, not the malloc'd superblocks holding them.
    let lb = crate::mempool::leak_blocks(&s.heap, &s.pools);
    let blocks: Vec<(u64, u64)> = lb.iter().map(|b| (b.start, b.size)).collect();
    let ctxs: Vec<ExeContextId> = lb.iter().map(|b| b.alloc).collect();
    let found = classify(&blocks, &roots(), &read_words, &|i, p| {
        heuristic_for(opts.heuristics, blocks[i].0, blocks[i].1, p)
    });

    // Fill the records, keeping last search's figures for the deltas.
    for r in &mut lk.records {
        r.old = (r.bytes, r.indirect, r.blocks);
        r.bytes = 0;
        r.indirect = 0;
        r.blocks = 0;
    }
    let depth = opts.leak_resolution.depth();
    let key = |kind: Kind, ctx: ExeContextId| {
        let ips = s.ectx.ips(ctx);
        (kind, ips[..depth.unwrap_or(ips.len()).min(ips.len())].to_vec())
    };
    let mut index: BTreeMap<(Kind, Vec<u64>), usize> =
        lk.records.iter().enumerate().map(|(i, r)| (key(r.kind, r.ctx), i)).collect();
    let mut sum = Summary::default();
    for ((f, &(_, size)), &ctx) in found.iter().zip(&blocks).zip(&ctxs) {
        let i = *index.entry(key(f.kind, ctx)).or_insert_with(|| {
            lk.records.push(LossRecord { kind: f.kind, ctx, bytes: 0, indirect: 0, blocks: 0, old: (0, 0, 0) });
            lk.records.len() - 1
        });
        let r = &mut lk.records[i];
        r.bytes += size;
        r.indirect += f.indirect;
        r.blocks += 1;
        let k = &mut sum.kinds[f.kind.index()];
        k.0 += size;
        k.1 += 1;
        if let Some(h) = Heuristics::NAMES.iter().position(|(bit, _)| *bit == f.heuristic) {
            sum.heuristic[h].0 += size;
            sum.heuristic[h].1 += 1;
        }
    }
    // A record that is gone stays one search longer in a delta search, to show its decrease.
    lk.records.retain(|r| r.blocks > 0 || (delta != Delta::Any && r.old.2 > 0));
    lk.records.sort_by_key(|r| (r.total(), r.kind.rank(), r.blocks, r.ctx.0));

    let xml = crate::xml::on();
    let gen_all = vg_core::reportopts::get().gen_suppressions == vg_core::reportopts::GenSuppressions::All;
    let n = lk.records.len();
    let mut out = String::new();
    for (i, r) in lk.records.iter().enumerate() {
        let (ob, oi, on) = r.old;
        let considered = match delta {
            Delta::Any => true,
            Delta::Increased => r.bytes > ob || r.indirect > oi || r.blocks > on,
            Delta::Changed => r.bytes != ob || r.indirect != oi || r.blocks != on,
        };
        let full = mode == LeakCheck::Full && considered;
        let show = full && opts.show_kinds.has(r.kind);
        let count = full && opts.error_kinds.has(r.kind);
        let ips = s.ectx.ips(r.ctx).to_vec();
        let frames = crate::frames_of(&ips);
        let kind = kinds[r.kind.index()];
        let got = s.em.record_unique(kind, &frames, |extra| supp_accepts(extra, r.kind), count);
        if let Some(sp) = got.suppressed_by {
            let k = &mut sum.kinds[r.kind.index()];
            k.0 -= r.bytes;
            k.1 -= r.blocks;
            sum.suppressed.0 += r.bytes;
            sum.suppressed.1 += r.blocks;
            let a = lk.supp_amounts.entry(sp).or_default();
            a.0 += r.total();
            a.1 += r.blocks;
            continue;
        }
        if !show {
            continue;
        }
        let line = record_line(r, i + 1, n, delta);
        let supp = gen_all.then(|| {
            let extra = [format!("match-leak-kinds: {}", r.kind.name())];
            vg_core::errors::gen_suppression("Memcheck", "Leak", &extra, &frames)
        });
        if xml {
            crate::xml::leak_error(got.unique, r.kind.xml_kind(), &line, (r.total(), r.blocks), &frames, supp.as_deref());
        } else {
            out.push_str(&line);
            out.push('\n');
            out.push_str(&crate::trace_text(&ips));
            out.push('\n');
            if let Some(t) = supp {
                // The suppression goes to the log unprefixed, after the record.
                vg_core::log::user_lines(&core::mem::take(&mut out));
                vg_core::log::write_raw(&t);
            }
        }
    }

    let old = lk.last.unwrap_or_default();
    lk.last = Some(sum);
    let line = |label: &str, (b, n): Amount, (ob, on): Amount| {
        format!("{label}: {} bytes in {} blocks\n", with_delta(b, ob, delta), with_delta(n, on, delta))
    };
    out.push_str("LEAK SUMMARY:\n");
    for (label, k) in [
        ("   definitely lost", Kind::Definite),
        ("   indirectly lost", Kind::Indirect),
        ("     possibly lost", Kind::Possible),
        ("   still reachable", Kind::Reachable),
    ] {
        out.push_str(&line(label, sum.kinds[k.index()], old.kinds[k.index()]));
    }
    if sum.heuristic.iter().any(|h| h.1 > 0) {
        out.push_str("                      of which reachable via heuristic:\n");
        for (h, (_, name)) in Heuristics::NAMES.iter().enumerate() {
            if sum.heuristic[h].1 > 0 || old.heuristic[h].1 > 0 {
                out.push_str(&line(&format!("                        {name:<19}"), sum.heuristic[h], old.heuristic[h]));
            }
        }
    }
    out.push_str(&line("        suppressed", sum.suppressed, old.suppressed));
    let unsuppressed = sum.kinds.iter().map(|k| k.1).sum::<u64>();
    if mode == LeakCheck::Summary && unsuppressed > 0 {
        out.push_str("Rerun with --leak-check=full to see details of leaked memory\n");
    } else if sum.kinds[Kind::Reachable.index()].1 > 0 && !opts.show_kinds.has(Kind::Reachable) {
        out.push_str("Reachable blocks (those to which a pointer was found) are not shown.\n");
        out.push_str("To see them, rerun with: --leak-check=full --show-leak-kinds=all\n");
    }
    out.push('\n');
    out
}

/// `-s`'s note after a used leak suppression: what it suppressed.
pub fn supp_note(i: usize) -> String {
    match leaks().supp_amounts.get(&i) {
        Some((bytes, blocks)) => format!(" suppressed: {} bytes in {} blocks", commas(*bytes), commas(*blocks)),
        None => String::new(),
    }
}

/// The last search's (leaked, dubious, reachable, suppressed) figures: bytes or blocks.
fn counts(blocks: bool) -> [u64; 4] {
    let s = leaks().last.unwrap_or_default();
    let pick = |a: Amount| if blocks { a.1 } else { a.0 };
    [
        pick(s.kinds[Kind::Definite.index()]) + pick(s.kinds[Kind::Indirect.index()]),
        pick(s.kinds[Kind::Possible.index()]),
        pick(s.kinds[Kind::Reachable.index()]),
        pick(s.suppressed),
    ]
}

/// `memcheck.h`'s request codes for the leak checker (`VG_USERREQ_TOOL_BASE('M','C')` + n).
mod code {
    const BASE: u64 = ((b'M' as u64) << 24) | ((b'C' as u64) << 16);
    pub const DO_LEAK_CHECK: u64 = BASE + 6;
    pub const COUNT_LEAKS: u64 = BASE + 7;
    pub const COUNT_LEAK_BLOCKS: u64 = BASE + 12;
}

/// Whether there is nothing to leak-check: no heap block, pool chunk or custom block.
fn no_blocks() -> bool {
    let s = st();
    crate::mempool::leak_blocks(&s.heap, &s.pools).is_empty()
}

/// A leak search asked for by the client, printed as Valgrind prints it (no HEAP SUMMARY).
fn requested_search(mode: LeakCheck, delta: Delta) {
    if no_blocks() {
        leaks().last = Some(Summary::default());
        if !crate::xml::on() {
            vg_core::log::user_lines("All heap blocks were freed -- no leaks are possible\n\n");
        }
        return;
    }
    let text = search(mode, delta);
    if !crate::xml::on() {
        print_report(&text);
    }
}

/// Prints a search's text: all of it, or with `-q` only the loss records.
fn print_report(text: &str) {
    let text = if vg_core::log::verbosity() == 0 { text.split("LEAK SUMMARY:").next().unwrap_or("") } else { text };
    if !text.is_empty() {
        vg_core::log::user_lines(text);
    }
}

/// The leak checker's client requests: `VALGRIND_DO_LEAK_CHECK` (args[1]: 0 full, 1 quick;
/// args[2]: 0 all records, 1 added, 2 changed), `VALGRIND_COUNT_LEAKS` and
/// `VALGRIND_COUNT_LEAK_BLOCKS` (args[1..5]: where to store leaked, dubious, reachable and
/// suppressed). `None` if `args[0]` is not one of them.
pub fn client_request(args: &[u64; 6]) -> Option<u64> {
    match args[0] {
        code::DO_LEAK_CHECK => {
            let mode = if args[1] == 0 { LeakCheck::Full } else { LeakCheck::Summary };
            let delta = match args[2] {
                1 => Delta::Increased,
                2 => Delta::Changed,
                _ => Delta::Any,
            };
            requested_search(mode, delta);
            Some(0)
        }
        code::COUNT_LEAKS | code::COUNT_LEAK_BLOCKS => {
            let c = counts(args[0] == code::COUNT_LEAK_BLOCKS);
            for (p, v) in args[1..5].iter().zip(c) {
                if vg_core::aspace::aspace().is_client_writable(*p, 8) {
                    // SAFETY: 8 writable bytes of client memory (checked above). Valgrind does
                    // not mark them defined either (memcheck.h initialises them).
                    unsafe { core::ptr::write_unaligned(*p as *mut u64, v) };
                }
            }
            Some(0)
        }
        _ => None,
    }
}

/// The end-of-run report: HEAP SUMMARY, the leak check per `--leak-check=`, with `-s` the
/// errors and used suppressions, the error summary; exits with `--error-exitcode=` when errors
/// were found. In XML mode: the loss records and the closing elements of the XML output.
pub fn at_exit() {
    let s = st();
    let (bytes, blocks) = s.heap.in_use();
    let hs = s.heap.stats;
    let mode = s.opts.leak_check;
    if crate::xml::on() {
        crate::xml::finished();
        if !no_blocks() && mode != LeakCheck::No {
            search(mode, Delta::Any);
        }
        crate::xml::close();
    } else if vg_core::log::verbosity() == 0 {
        // -q: no summaries; the loss records of a full leak check are errors and still show.
        if !no_blocks() && mode != LeakCheck::No {
            print_report(&search(mode, Delta::Any));
        }
    } else {
        let mut out = String::from("HEAP SUMMARY:\n");
        out.push_str(&format!("    in use at exit: {} bytes in {} blocks\n", commas(bytes), commas(blocks)));
        out.push_str(&format!(
            "  total heap usage: {} allocs, {} frees, {} bytes allocated\n\n",
            commas(hs.allocs),
            commas(hs.frees),
            commas(hs.bytes_allocated)
        ));
        vg_core::log::user_lines(&out);
        if mode == LeakCheck::No {
            // Only at the default verbosity, as Valgrind.
            if vg_core::log::verbosity() == 1 {
                vg_core::log::user_lines("For a detailed leak analysis, rerun with: --leak-check=full\n\n");
            }
        } else if no_blocks() {
            vg_core::log::user_lines("All heap blocks were freed -- no leaks are possible\n\n");
        } else {
            print_report(&search(mode, Delta::Any));
        }
        if !st().opts.track_origins && st().em.shown().any(|e| crate::errors::is_undefined_value(&e.details)) {
            vg_core::log::user_lines("Use --track-origins=yes to see where uninitialised values come from\n");
        }
        error_lists();
    }
    if let Some(c) = st().em.exit_code() {
        vg_core::syscall::exit_group(c);
    }
}

/// The closing lines: with `-s` the errors (least frequent first) and the used suppressions
/// between two ERROR SUMMARY lines, else the hint to use `-s`.
fn error_lists() {
    let em = &st().em;
    if !st().opts.show_error_list {
        vg_core::log::user_lines(&format!(
            "For lists of detected and suppressed errors, rerun with: -s\n{}\n",
            em.summary_line()
        ));
        return;
    }
    vg_core::log::user_lines(&format!("{}\n", em.summary_line()));
    let mut shown: Vec<_> = em.shown().collect();
    // Least frequent first; among equals, the most recent first.
    shown.sort_by_key(|e| (e.count, core::cmp::Reverse(e.unique)));
    let total = shown.len();
    for (k, e) in shown.iter().enumerate() {
        let stack = crate::ctx_text(e.ctx);
        let body = crate::errors::text(&e.details, &stack, &crate::ctx_text);
        vg_core::log::user_lines(&format!("\n{} errors in context {} of {total}:\n{body}\n", commas(e.count), k + 1));
    }
    // Each error ends in a blank line; the used suppressions are set off by blank lines.
    let used = em.used_suppression_lines_with(supp_note);
    if !used.is_empty() {
        vg_core::dmsg!();
        for l in &used {
            vg_core::dmsg!("{l}");
        }
        vg_core::log::user_lines(&format!("\n{}\n", em.summary_line()));
    } else if total > 0 {
        vg_core::log::user_lines(&format!("{}\n", em.summary_line()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(f: &[Found]) -> Vec<Kind> {
        f.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn kinds_follow_pointers() {
        // Blocks: A (reachable from a root), B (pointed to by A), C (interior pointer from a
        // root), D (lost) -> E (indirect).
        let blocks = [(0x1000, 16), (0x2000, 16), (0x3000, 16), (0x4000, 16), (0x5000, 24)];
        let mem = |a: u64, _| match a {
            0x1000 => alloc::vec![0x2000],
            0x4000 => alloc::vec![0x5000, 7],
            _ => Vec::new(),
        };
        let f = classify(&blocks, &[0x1000, 0x3008, 42], &mem, &|_, _| 0);
        assert_eq!(kinds(&f), [Kind::Reachable, Kind::Reachable, Kind::Possible, Kind::Definite, Kind::Indirect]);
        assert_eq!(f[3].indirect, 24);
    }

    #[test]
    fn a_lost_cycle_has_one_definite_block() {
        let blocks = [(0x1000, 16), (0x2000, 16)];
        let mem = |a: u64, _| if a == 0x1000 { alloc::vec![0x2000] } else { alloc::vec![0x1000] };
        let f = classify(&blocks, &[], &mem, &|_, _| 0);
        assert_eq!(kinds(&f), [Kind::Definite, Kind::Indirect]);
        assert_eq!(f[0].indirect, 16);
    }

    #[test]
    fn a_former_leader_hands_its_indirect_bytes_on() {
        // 0x1000 leads first and claims 0x2000; 0x3000 leads next and claims 0x1000, whose
        // 16 indirect bytes come along with its own 8.
        let blocks = [(0x1000, 8), (0x2000, 16), (0x3000, 32)];
        let mem = |a: u64, _| match a {
            0x1000 => alloc::vec![0x2000],
            0x3000 => alloc::vec![0x1000],
            _ => Vec::new(),
        };
        let f = classify(&blocks, &[], &mem, &|_, _| 0);
        assert_eq!(kinds(&f), [Kind::Indirect, Kind::Indirect, Kind::Definite]);
        assert_eq!((f[0].indirect, f[1].indirect, f[2].indirect), (0, 0, 24));
    }

    #[test]
    fn a_heuristic_makes_an_interior_pointer_count() {
        let blocks = [(0x1000, 40), (0x2000, 40)];
        let mem = |_, _| Vec::new();
        let heur = |i: usize, p: u64| if i == 0 && p == 0x1008 { Heuristics::NEWARRAY } else { 0 };
        let f = classify(&blocks, &[0x1008, 0x2008], &mem, &heur);
        assert_eq!(kinds(&f), [Kind::Reachable, Kind::Possible]);
        assert_eq!(f[0].heuristic, Heuristics::NEWARRAY);
        // A later pointer to its start makes it plainly reachable.
        let f = classify(&blocks, &[0x1008, 0x1000], &mem, &heur);
        assert_eq!(f[0].heuristic, 0);
    }

    #[test]
    fn records_and_deltas_read_as_in_valgrind() {
        let r = LossRecord {
            kind: Kind::Definite,
            ctx: ExeContextId(0),
            bytes: 32,
            indirect: 64,
            blocks: 1,
            old: (0, 0, 0),
        };
        assert_eq!(
            record_line(&r, 4, 5, Delta::Any),
            "96 (32 direct, 64 indirect) bytes in 1 blocks are definitely lost in loss record 4 of 5"
        );
        assert_eq!(
            record_line(&r, 4, 5, Delta::Increased),
            "96 (+96) (32 (+32) direct, 64 (+64) indirect) bytes in 1 (+1) blocks are definitely lost in loss record 4 of 5"
        );
        let gone = LossRecord { kind: Kind::Reachable, bytes: 0, indirect: 0, blocks: 0, old: (16, 0, 1), ..r };
        assert_eq!(
            record_line(&gone, 1, 4, Delta::Changed),
            "0 (-16) bytes in 0 (-1) blocks are still reachable in loss record 1 of 4"
        );
    }

    #[test]
    fn leak_suppressions_match_their_kinds() {
        let line = |s: &str| alloc::vec![String::from(s)];
        assert!(supp_accepts(&[], Kind::Reachable));
        assert!(supp_accepts(&line("match-leak-kinds: definite,possible"), Kind::Possible));
        assert!(!supp_accepts(&line("match-leak-kinds: definite,possible"), Kind::Indirect));
        assert!(supp_accepts(&line("match-leak-kinds: all"), Kind::Indirect));
    }
}
