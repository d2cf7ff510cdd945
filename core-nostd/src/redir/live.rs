//! The run's redirections: the code objects the client has mapped, with the function symbols
//! and wrapper/replacement specifications read from each when it is mapped; the tool's own
//! specifications; and the active set, recomputed on every mapping and unmapping of code. The
//! translator asks [`lookup`] for every block it makes; addresses whose redirection changed
//! are handed to the translation table through [`take_changed`] so that stale translations go.
//!
//! The one part of `redir` with run-time state; uses `debuginfo` (ELF symbol reading),
//! `stacks` (the file reader), `reportopts` (`--trace-redir=`, `--soname-synonyms=`) and `log`.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use super::active::{ActiveSet, ObjectSymbols, RedirSpec, compute_active, specs_from_object};
use super::names::RedirKind;
use crate::debuginfo::FileReader;
use crate::debuginfo::elf::ElfInfo;
use crate::debuginfo::elf_syms::SymbolTable;

/// One mapped code object.
struct Obj {
    id: u64,
    path: String,
    soname: Option<String>,
    /// Executable ranges (start, end).
    ranges: Vec<(u64, u64)>,
    /// Function symbols at run-time addresses.
    symbols: Vec<(String, u64)>,
}

#[derive(Default)]
struct Live {
    objs: Vec<Obj>,
    next_id: u64,
    tool_specs: Vec<RedirSpec>,
    specs: Vec<RedirSpec>,
    active: ActiveSet,
    /// Addresses whose redirection changed since the translation table last looked.
    changed: Vec<u64>,
    /// Conflicts already reported: (address, dropped replacement).
    reported: Vec<(u64, u64)>,
}

static LIVE: spin::Mutex<Option<Live>> = spin::Mutex::new(None);
/// Whether any redirection is active (lets the translator skip the lock in the common case).
static ANY_ACTIVE: AtomicBool = AtomicBool::new(false);

fn with_live<R>(f: impl FnOnce(&mut Live) -> R) -> R {
    f(LIVE.lock().get_or_insert_with(Live::default))
}

/// Adds the tool's own specifications (its replacement functions).
pub fn add_tool_specs(specs: Vec<RedirSpec>) {
    with_live(|l| {
        l.tool_specs.extend(specs);
        recompute(l, "the tool's specifications");
    });
}

/// The client mapped `[addr, addr+len)` of `path` (at file `offset`) executable.
pub fn notify_map(path: &str, addr: u64, len: u64, offset: u64) {
    with_live(|l| {
        // Another executable segment of an object already read (its symbols are known).
        if let Some(o) = l.objs.iter_mut().find(|o| o.path == path && o.ranges.iter().any(|r| addr.abs_diff(r.0) < 0x1000_0000)) {
            o.ranges.push((addr, addr + len));
            return;
        }
        let Some(bytes) = crate::stacks::SysFileReader.read_file(path) else { return };
        let Some(info) = ElfInfo::parse(&bytes) else { return };
        let Some(bias) = info.bias_for_mapping(offset, addr) else { return };
        let symbols = SymbolTable::from_elf(&bytes).iter().map(|s| (s.name.clone(), s.addr.wrapping_add(bias))).collect();
        l.next_id += 1;
        l.objs.push(Obj {
            id: l.next_id,
            path: String::from(path),
            soname: info.soname.clone(),
            ranges: alloc::vec![(addr, addr + len)],
            symbols,
        });
        recompute(l, path);
    });
}

/// The client unmapped `[addr, addr+len)`: objects left without executable ranges go.
pub fn notify_unmap(addr: u64, len: u64) {
    let end = addr.saturating_add(len);
    with_live(|l| {
        let before = l.objs.len();
        for o in &mut l.objs {
            o.ranges.retain(|r| r.1 <= addr || r.0 >= end);
        }
        l.objs.retain(|o| !o.ranges.is_empty());
        if l.objs.len() != before {
            recompute(l, "an unmapping");
        }
    });
}

fn recompute(l: &mut Live, why: &str) {
    let opts = crate::reportopts::get();
    let views: Vec<ObjectSymbols<'_>> = l
        .objs
        .iter()
        .map(|o| ObjectSymbols { id: o.id, soname: o.soname.as_deref(), path: &o.path, symbols: &o.symbols })
        .collect();
    let mut specs = l.tool_specs.clone();
    for v in &views {
        specs.extend(specs_from_object(v));
    }
    let active = compute_active(&views, &specs, &opts.soname_synonyms);
    drop(views);
    // Every address whose target changed (added, removed or moved) must be retranslated.
    for r in &active.redirs {
        if l.active.lookup(r.from_addr).is_none_or(|o| o.to_addr != r.to_addr || o.kind != r.kind) {
            l.changed.push(r.from_addr);
        }
    }
    for r in &l.active.redirs {
        if active.lookup(r.from_addr).is_none() {
            l.changed.push(r.from_addr);
        }
    }
    // Like Valgrind, conflicts are news for -v only: the program runs with the first one.
    for c in active.conflicts.iter().filter(|_| crate::log::verbosity() > 1) {
        let dropped = specs[c.dropped].to_addr;
        if l.reported.contains(&(c.from_addr, dropped)) {
            continue;
        }
        l.reported.push((c.from_addr, dropped));
        let (k, d) = (&specs[c.kept], &specs[c.dropped]);
        crate::umsg!("WARNING: conflicting redirections of {} at 0x{:X}; the first is used:", c.from_name, c.from_addr);
        crate::umsg!("   kept:    0x{:X} ({}, from {})", k.to_addr, spec_label(k), k.origin);
        crate::umsg!("   ignored: 0x{:X} ({}, from {})", d.to_addr, spec_label(d), d.origin);
    }
    if opts.trace_redir {
        crate::dmsg!("REDIR: active set after {why}: {} specification(s), {} redirection(s)", specs.len(), active.redirs.len());
        for s in &specs {
            crate::dmsg!("   spec  {:<28} -> 0x{:X} ({})", spec_label(s), s.to_addr, s.origin);
        }
        for r in &active.redirs {
            let arrow = if r.kind == RedirKind::Wrap { "W->" } else { "R->" };
            crate::dmsg!("   0x{:X} ({}) {arrow} 0x{:X} ({})", r.from_addr, r.from_name, r.to_addr, spec_label(&specs[r.spec]));
        }
    }
    ANY_ACTIVE.store(!active.redirs.is_empty(), Ordering::Relaxed);
    l.specs = specs;
    l.active = active;
}

fn spec_label(s: &RedirSpec) -> String {
    alloc::format!("{}:{}", s.soname, s.fnname)
}

/// The redirection of code address `addr`: (replacement address, kind).
pub fn lookup(addr: u64) -> Option<(u64, RedirKind)> {
    if !ANY_ACTIVE.load(Ordering::Relaxed) {
        return None;
    }
    with_live(|l| l.active.lookup(addr).map(|r| (r.to_addr, r.kind)))
}

/// Whether any redirection is in force.
pub fn any_active() -> bool {
    ANY_ACTIVE.load(Ordering::Relaxed)
}

/// Takes the addresses whose redirection changed since the last call.
pub fn take_changed() -> Vec<u64> {
    let mut g = LIVE.lock();
    match g.as_mut() {
        Some(l) if !l.changed.is_empty() => core::mem::take(&mut l.changed),
        _ => Vec::new(),
    }
}
