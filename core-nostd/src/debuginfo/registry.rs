//! The set of code objects mapped in the client, by address range. An object is only recorded on
//! mapping; its file is mapped and parsed the first time an address in it is asked about, so
//! start-up does not pay for objects nobody asks about. Describes code addresses as source frames.
//! What is kept lives in the `dinfo` arena; answers are allocated in the caller's.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use super::FileReader;
use super::cfi::{UnwindRegs, fp_step};
use super::debuglink::DEBUG_ROOT;
use super::demangle::demangle;
use super::object::DebugObject;
use super::stacktrace::FrameDesc;
use crate::arena::{self, ArenaId};

#[derive(Debug)]
enum Slot {
    NotLoaded,
    Loaded(Box<DebugObject>),
    /// Unreadable or not ELF: only the path is known.
    Failed,
}

#[derive(Debug)]
struct Mapped {
    path: String,
    /// (start, end, file offset) of each executable mapping of the file.
    ranges: Vec<(u64, u64, u64)>,
    slot: Slot,
}

/// All mapped code objects and their (lazily read) debug information.
#[derive(Debug)]
pub struct DebugInfo {
    objects: Vec<Mapped>,
    /// `--demangle=`.
    pub demangle: bool,
    /// Where separate debug files are searched (`/usr/lib/debug`).
    pub debug_root: String,
}

impl DebugInfo {
    pub fn new(demangle: bool) -> DebugInfo {
        DebugInfo { objects: Vec::new(), demangle, debug_root: String::from(DEBUG_ROOT) }
    }

    /// Records an executable mapping of `path` at `[avma, avma+len)` from `file_offset`.
    pub fn notify_map(&mut self, path: &str, avma: u64, len: u64, file_offset: u64) {
        let range = (avma, avma + len, file_offset);
        arena::with_arena(ArenaId::Dinfo, || match self.objects.iter_mut().find(|m| m.path == path && !m.ranges.is_empty()) {
            // A second executable segment of an object already known (same bias).
            Some(m) if m.ranges.iter().all(|r| r.0 != avma) && within_reach(&m.ranges, avma) => m.ranges.push(range),
            _ => self.objects.push(Mapped { path: String::from(path), ranges: alloc::vec![range], slot: Slot::NotLoaded }),
        })
    }

    /// Records an object already in memory (e.g. the tool's own view of a file), at `bias`,
    /// covering `ranges` (start, end).
    pub fn add_loaded(&mut self, obj: DebugObject, ranges: &[(u64, u64)]) {
        let path = String::from(obj.path());
        let ranges = ranges.iter().map(|&(s, e)| (s, e, 0)).collect();
        self.objects.push(Mapped { path, ranges, slot: Slot::Loaded(Box::new(obj)) });
    }

    /// Forgets the parts of objects inside `[avma, avma+len)`; objects left with no range go.
    pub fn notify_unmap(&mut self, avma: u64, len: u64) {
        let end = avma + len;
        for m in &mut self.objects {
            m.ranges.retain(|r| r.1 <= avma || r.0 >= end);
        }
        self.objects.retain(|m| !m.ranges.is_empty());
    }

    fn index_of(&self, ip: u64) -> Option<usize> {
        self.objects.iter().position(|m| m.ranges.iter().any(|r| r.0 <= ip && ip < r.1))
    }

    /// Path of the object mapped at `ip`.
    pub fn object_path(&self, ip: u64) -> Option<&str> {
        self.index_of(ip).map(|i| self.objects[i].path.as_str())
    }

    /// The loaded object at `ip`, reading it now if needed.
    pub fn object_at(&mut self, reader: &mut dyn FileReader, ip: u64) -> Option<&mut DebugObject> {
        let i = self.index_of(ip)?;
        let root = self.debug_root.clone();
        let m = &mut self.objects[i];
        if let Slot::NotLoaded = m.slot {
            let (start, _, off) = m.ranges[0];
            m.slot = arena::with_arena(ArenaId::Dinfo, || {
                match DebugObject::load(reader, &m.path, &root, |info| info.bias_for_mapping(off, start)) {
                    Some(o) => Slot::Loaded(Box::new(o)),
                    None => Slot::Failed,
                }
            });
        }
        match &mut m.slot {
            Slot::Loaded(o) => Some(o),
            Slot::NotLoaded | Slot::Failed => None,
        }
    }

    /// Source-level frames at `ip`, innermost (inlined) first. Always at least one frame.
    pub fn describe(&mut self, reader: &mut dyn FileReader, ip: u64) -> Vec<FrameDesc> {
        let demangle_on = self.demangle;
        let obj_path = self.object_path(ip).map(String::from);
        let mut out = Vec::new();
        if let Some(obj) = self.object_at(reader, ip) {
            let src = obj.src_frames(ip);
            let sym = obj.symbolize(ip).map(|(n, _)| String::from(n));
            let n = src.len();
            for (k, f) in src.into_iter().enumerate() {
                // The outermost frame is the real function: named by the symbol table, as
                // Valgrind does (`qsort_r`, `msort_with_tmp.part.0`, not the DWARF's internal
                // `__GI___qsort_r` or the abstract origin's name), by the DWARF without one.
                let raw = if k + 1 == n { sym.clone().or(f.name) } else { f.name };
                let file = f.file.and_then(|id| obj.source_file(id)).cloned();
                out.push(FrameDesc {
                    ip,
                    func: raw.as_deref().map(|r| String::from(demangle(r, demangle_on))),
                    mangled: raw,
                    obj: obj_path.clone(),
                    dir: file.as_ref().map(|s| s.dir.clone()).filter(|d| !d.is_empty()),
                    file: file.map(|s| s.file),
                    line: (f.line != 0).then_some(f.line),
                    inlined: k + 1 < n,
                });
            }
            if out.is_empty() {
                out.push(FrameDesc {
                    ip,
                    func: sym.as_deref().map(|r| String::from(demangle(r, demangle_on))),
                    mangled: sym,
                    obj: obj_path,
                    ..FrameDesc::unknown(ip)
                });
            }
        } else {
            out.push(FrameDesc { obj: obj_path, ..FrameDesc::unknown(ip) });
        }
        out
    }

    /// One unwind step: CFI of the object at `regs.pc` if it has some for that pc, else the
    /// frame-pointer chain (bounded by `stack_top`).
    pub fn unwind_step(
        &mut self,
        reader: &mut dyn FileReader,
        regs: UnwindRegs,
        innermost: bool,
        stack_top: u64,
        read_mem: &mut dyn FnMut(u64) -> Option<u64>,
    ) -> Option<UnwindRegs> {
        let lookup_pc = if innermost { regs.pc } else { regs.pc.wrapping_sub(1) };
        if let Some(obj) = self.object_at(reader, lookup_pc)
            && let Some(next) = obj.unwind_step(regs, innermost, read_mem) {
                return Some(next);
            }
        fp_step(regs, stack_top, read_mem)
    }
}

/// Whether a new mapping at `avma` plausibly belongs to the same load of an object (its other
/// segments are within a few hundred MiB; a far-away one is a second load of the same file).
fn within_reach(ranges: &[(u64, u64, u64)], avma: u64) -> bool {
    ranges.iter().any(|r| avma.abs_diff(r.0) < 0x1000_0000)
}
