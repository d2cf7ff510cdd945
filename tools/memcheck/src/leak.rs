//! The leak checker (Valgrind's `mc_leakcheck`): which heap blocks can still be reached from
//! the roots — the guest registers and every addressable word of the client's writable
//! mappings (data, bss, stacks) — through pointers to their start (reachable) or only into
//! their middle (possibly lost); blocks reached from no root are definitely lost, and the
//! blocks only they point to indirectly lost. The classification is pure logic over a word
//! reader ([`classify`]); [`check_and_report`] runs it on the live run and prints the loss
//! records and LEAK SUMMARY.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::LeakCheck;
use crate::{commas, st};

/// What became of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Reachable,
    Possible,
    Indirect,
    Definite,
}

/// Classify `blocks` (start, size), sorted by start. `roots` are the root words' values;
/// `read_block` gives the words inside a block.
pub fn classify(
    blocks: &[(u64, u64)],
    roots: &[u64],
    read_block: &dyn Fn(u64, u64) -> Vec<u64>,
) -> Vec<Kind> {
    let find = |v: u64| -> Option<(usize, bool)> {
        let i = blocks.partition_point(|b| b.0 <= v).checked_sub(1)?;
        let (s, n) = blocks[i];
        (v < s + n.max(1)).then_some((i, v == s))
    };
    // 0 = not reached, 1 = possible, 2 = reachable.
    let mut level = alloc::vec![0u8; blocks.len()];
    let mut work = Vec::new();
    let reach = |i: usize, lvl: u8, level: &mut Vec<u8>, work: &mut Vec<usize>| {
        if lvl > level[i] {
            level[i] = lvl;
            work.push(i);
        }
    };
    for &v in roots {
        if let Some((i, start)) = find(v) {
            reach(i, if start { 2 } else { 1 }, &mut level, &mut work);
        }
    }
    while let Some(i) = work.pop() {
        let lvl = level[i];
        for v in read_block(blocks[i].0, blocks[i].1) {
            if let Some((j, start)) = find(v) {
                reach(j, if start { lvl } else { 1 }, &mut level, &mut work);
            }
        }
    }
    let mut kinds: Vec<Kind> = level
        .iter()
        .map(|l| match l {
            2 => Kind::Reachable,
            1 => Kind::Possible,
            _ => Kind::Definite,
        })
        .collect();
    // Each unreached block not yet claimed leads a clique: what it reaches is indirect.
    for lead in 0..blocks.len() {
        if kinds[lead] != Kind::Definite {
            continue;
        }
        let mut stack = alloc::vec![lead];
        let mut seen = alloc::vec![false; blocks.len()];
        seen[lead] = true;
        while let Some(i) = stack.pop() {
            for v in read_block(blocks[i].0, blocks[i].1) {
                if let Some((j, _)) = find(v)
                    && !seen[j]
                    && matches!(kinds[j], Kind::Definite | Kind::Indirect)
                {
                    seen[j] = true;
                    kinds[j] = Kind::Indirect;
                    stack.push(j);
                }
            }
        }
    }
    kinds
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

/// Run the leak check on the live run; the loss records (with `Full`) and the LEAK SUMMARY.
pub fn check_and_report(mode: LeakCheck, show_reachable: bool) -> String {
    let st = crate::st();
    let blocks: Vec<(u64, u64)> = st.heap.live.values().map(|b| (b.start, b.size)).collect();
    let heap_ranges = st.heap.chunk_ranges();
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
            match heap_ranges
                .iter()
                .filter(|&&(hs, he)| he > p && hs < e)
                .min_by_key(|r| r.0)
            {
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
    let kinds = classify(&blocks, &roots, &read_words);

    let mut totals: BTreeMap<Kind, (u64, u64)> = BTreeMap::new();
    // Loss records: (kind, alloc context) -> (bytes, blocks).
    let mut records: BTreeMap<(Kind, u32), (u64, u64)> = BTreeMap::new();
    let ctxs: Vec<vg_core::debuginfo::ExeContextId> =
        st.heap.live.values().map(|b| b.alloc).collect();
    for (i, k) in kinds.iter().enumerate() {
        let t = totals.entry(*k).or_default();
        t.0 += blocks[i].1;
        t.1 += 1;
        let r = records.entry((*k, ctxs[i].0)).or_default();
        r.0 += blocks[i].1;
        r.1 += 1;
    }
    let mut out = String::new();
    if mode == LeakCheck::Full {
        let mut shown: Vec<((Kind, u32), (u64, u64))> = records
            .into_iter()
            .filter(|((k, _), _)| show_reachable || *k != Kind::Reachable)
            .collect();
        shown.sort_by_key(|(_, (bytes, blocks))| (*bytes, *blocks));
        let n = shown.len();
        for (i, ((k, ctx), (bytes, nblocks))) in shown.iter().enumerate() {
            let what = match k {
                Kind::Reachable => "still reachable",
                Kind::Possible => "possibly lost",
                Kind::Indirect => "indirectly lost",
                Kind::Definite => "definitely lost",
            };
            out.push_str(&format!(
                "{} bytes in {} blocks are {what} in loss record {} of {n}\n",
                commas(*bytes),
                commas(*nblocks),
                commas(i as u64 + 1)
            ));
            out.push_str(&crate::ctx_text(vg_core::debuginfo::ExeContextId(*ctx)));
            out.push('\n');
        }
    }
    let get = |k| totals.get(&k).copied().unwrap_or_default();
    let line = |label: &str, (b, n): (u64, u64)| {
        format!("{label}: {} bytes in {} blocks\n", commas(b), commas(n))
    };
    out.push_str("LEAK SUMMARY:\n");
    out.push_str(&line("   definitely lost", get(Kind::Definite)));
    out.push_str(&line("   indirectly lost", get(Kind::Indirect)));
    out.push_str(&line("     possibly lost", get(Kind::Possible)));
    out.push_str(&line("   still reachable", get(Kind::Reachable)));
    out.push_str("        suppressed: 0 bytes in 0 blocks\n");
    if mode == LeakCheck::Summary {
        out.push_str("Rerun with --leak-check=full to see details of leaked memory\n");
    } else if get(Kind::Reachable).1 > 0 && !show_reachable {
        out.push_str("Reachable blocks (those to which a pointer was found) are not shown.\n");
        out.push_str("To see them, rerun with: --leak-check=full --show-leak-kinds=all\n");
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_pointers() {
        // Blocks: A (reachable from a root), B (pointed to by A), C (interior pointer from a
        // root), D (lost) -> E (indirect).
        let blocks = [
            (0x1000, 16),
            (0x2000, 16),
            (0x3000, 16),
            (0x4000, 16),
            (0x5000, 16),
        ];
        let mem = |a: u64, _| match a {
            0x1000 => alloc::vec![0x2000],
            0x4000 => alloc::vec![0x5000, 7],
            _ => Vec::new(),
        };
        let k = classify(&blocks, &[0x1000, 0x3008, 42], &mem);
        assert_eq!(
            k,
            [
                Kind::Reachable,
                Kind::Reachable,
                Kind::Possible,
                Kind::Definite,
                Kind::Indirect
            ]
        );
    }

    #[test]
    fn a_lost_cycle_has_one_definite_block() {
        let blocks = [(0x1000, 16), (0x2000, 16)];
        let mem = |a: u64, _| {
            if a == 0x1000 {
                alloc::vec![0x2000]
            } else {
                alloc::vec![0x1000]
            }
        };
        let k = classify(&blocks, &[], &mem);
        assert_eq!(k, [Kind::Definite, Kind::Indirect]);
    }
}

/// The end-of-run report: HEAP SUMMARY, the leak check per `--leak-check=`, the error summary;
/// exits with `--error-exitcode=` when errors were found.
pub fn at_exit() {
    let s = st();
    let (bytes, blocks) = s.heap.in_use();
    let hs = s.heap.stats;
    let mut out = String::new();
    if vg_core::log::verbosity() == 0 {
        // -q: no summaries; the loss records of a full leak check are errors and still show.
        if blocks != 0 && s.opts.leak_check == LeakCheck::Full {
            let report = check_and_report(s.opts.leak_check, s.opts.show_reachable);
            let records = report.split("LEAK SUMMARY:").next().unwrap_or("");
            if !records.trim().is_empty() {
                vg_core::log::user_lines(records);
            }
        }
        if let Some(c) = st().em.exit_code() {
            vg_core::syscall::exit_group(c);
        }
        return;
    }
    out.push_str("HEAP SUMMARY:\n");
    out.push_str(&format!(
        "    in use at exit: {} bytes in {} blocks\n",
        commas(bytes),
        commas(blocks)
    ));
    out.push_str(&format!(
        "  total heap usage: {} allocs, {} frees, {} bytes allocated\n\n",
        commas(hs.allocs),
        commas(hs.frees),
        commas(hs.bytes_allocated)
    ));
    if blocks == 0 {
        out.push_str("All heap blocks were freed -- no leaks are possible\n\n");
    } else if s.opts.leak_check != LeakCheck::No {
        out.push_str(&check_and_report(s.opts.leak_check, s.opts.show_reachable));
    }
    let em = &st().em;
    if vg_core::log::verbosity() <= 1 {
        out.push_str("For lists of detected and suppressed errors, rerun with: -s\n");
    }
    out.push_str(&em.summary_line());
    out.push('\n');
    vg_core::log::user_lines(&out);
    if let Some(c) = em.exit_code() {
        vg_core::syscall::exit_group(c);
    }
}
