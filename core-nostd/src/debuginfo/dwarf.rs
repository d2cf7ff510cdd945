//! DWARF 4/5 reading with gimli: line tables (address -> file, line) and inlined subroutines
//! (address -> chain of inlined calls), parsed lazily one compilation unit at a time. Only an
//! index of unit address ranges is built up front; a unit is parsed the first time an address in
//! it is asked about, into packed arrays (line rows of 12 bytes, function and inlined-call
//! records naming their strings by offset into the sections, no per-entry heap objects). Works
//! on the sections of one ELF file (the object or its separate debug file), read in place from
//! the mapped file; only compressed sections are inflated, once.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use gimli::{
    AttributeValue, DebugInfoOffset, DebuggingInformationEntry, Dwarf, EndianSlice, LittleEndian,
    SectionId, Unit,
};

use super::FileBytes;
use super::elf::{ElfInfo, SecBytes};
use crate::arena::{self, ArenaId};

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// A source file, split as Valgrind shows it: `file` is the base name, `dir` its directory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourceFile {
    pub dir: String,
    pub file: String,
}

/// One source-level frame at an address, innermost first: the function, and where in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrcFrame {
    /// Function name as recorded (linkage name if any, so possibly mangled).
    pub name: Option<String>,
    /// Index into [`DwarfIndex::file`].
    pub file: Option<u32>,
    pub line: u32,
}

/// A string of the DWARF: `len` bytes at `off` in section `sec` (an index into
/// [`DwarfIndex::sections`]), or in [`DwarfIndex::pool`] when `sec` is [`NameRef::POOL`].
#[derive(Clone, Copy, Debug)]
struct NameRef {
    off: u32,
    len: u32,
    sec: u8,
}

impl NameRef {
    const NONE: NameRef = NameRef { off: 0, len: 0, sec: u8::MAX };
    const POOL: u8 = u8::MAX - 1;
}

/// `file` value of a line row or call site without a file.
const NO_FILE: u32 = u32::MAX;

/// A slice `[start, start + len)` of one of a unit's arrays.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn of<T>(self, v: &[T]) -> &[T] {
        &v[self.start as usize..(self.start + self.len) as usize]
    }
}

/// One line-table row: from `seq.start + off` on, the code is at `file:line`.
#[derive(Clone, Copy, Debug)]
struct Row {
    off: u32,
    file: u32,
    line: u32,
}

/// A line-table row as read: (address, file, line).
type RawRow = (u64, u32, u32);

/// One line-table sequence: `[start, end)`, its rows in [`UnitInfo::rows`].
#[derive(Clone, Copy, Debug)]
struct Sequence {
    start: u64,
    end: u64,
    rows: Span,
}

#[derive(Clone, Copy, Debug)]
struct FuncRec {
    /// Into [`UnitInfo::ranges`].
    ranges: Span,
    name: NameRef,
    /// Its inlined calls, into [`UnitInfo::inlined`].
    inlined: Span,
}

#[derive(Clone, Copy, Debug)]
struct InlineRec {
    ranges: Span,
    name: NameRef,
    call_file: u32,
    call_line: u32,
    depth: u16,
}

#[derive(Debug, Default)]
struct UnitInfo {
    /// Sorted by start.
    sequences: Vec<Sequence>,
    rows: Vec<Row>,
    /// Sorted by lowest address.
    funcs: Vec<FuncRec>,
    inlined: Vec<InlineRec>,
    ranges: Vec<(u64, u64)>,
}

#[derive(Debug)]
struct UnitEntry {
    offset: usize,
    parsed: Option<UnitInfo>,
}

/// The lazily filled DWARF index of one file.
#[derive(Debug)]
pub struct DwarfIndex {
    sections: Vec<(SectionId, SecBytes)>,
    units: Vec<UnitEntry>,
    /// (lo, hi, unit) sorted by lo.
    ranges: Vec<(u64, u64, usize)>,
    indexed: bool,
    files: Vec<SourceFile>,
    file_ids: BTreeMap<SourceFile, u32>,
    /// Names that lie in no section kept (none in the usual cases).
    pool: String,
}

impl DwarfIndex {
    /// Prepares reading the DWARF of a file; `None` if it has no `.debug_info`. Compressed
    /// sections are inflated here, once.
    pub fn new(file: &Arc<FileBytes>, info: &ElfInfo) -> Option<DwarfIndex> {
        info.section(".debug_info")?;
        let mut sections = Vec::new();
        for id in [
            SectionId::DebugAbbrev, SectionId::DebugAddr, SectionId::DebugInfo, SectionId::DebugLine,
            SectionId::DebugLineStr, SectionId::DebugStr, SectionId::DebugStrOffsets,
            SectionId::DebugRanges, SectionId::DebugRngLists,
        ] {
            if let Some(sec) = info.section_bytes(file, id.name()) {
                sections.push((id, sec));
            }
        }
        Some(DwarfIndex {
            sections,
            units: Vec::new(),
            ranges: Vec::new(),
            indexed: false,
            files: Vec::new(),
            file_ids: BTreeMap::new(),
            pool: String::new(),
        })
    }

    /// A file recorded in [`SrcFrame::file`].
    pub fn file(&self, id: u32) -> &SourceFile {
        &self.files[id as usize]
    }

    /// Source frames at link-time address `svma`, innermost first (inlined calls first, the
    /// containing function last). Empty if no unit covers it.
    pub fn frames_at(&mut self, svma: u64) -> Vec<SrcFrame> {
        let Self { sections, units, ranges, indexed, files, file_ids, pool } = self;
        let dwarf = load_dwarf(sections);
        let ui = arena::with_arena(ArenaId::Dinfo, || {
            if !*indexed {
                *indexed = true;
                index_units(&dwarf, units, ranges);
            }
            let ui = find_unit(ranges, svma)?;
            if units[ui].parsed.is_none() {
                let mut strings = Strings { sections, files: FileTable { files, ids: file_ids }, pool };
                let info = parse_unit(&dwarf, units, units[ui].offset, &mut strings).unwrap_or_default();
                units[ui].parsed = Some(info);
            }
            Some(ui)
        });
        let Some(ui) = ui else { return Vec::new() };
        let info = units[ui].parsed.as_ref().unwrap();
        frames_in_unit(info, svma, &|n| name_str(sections, pool, n))
    }
}

/// The text of a [`NameRef`] (lossily decoded, as gimli's strings are).
fn name_str(sections: &[(SectionId, SecBytes)], pool: &str, n: NameRef) -> Option<String> {
    let (off, len) = (n.off as usize, n.len as usize);
    let bytes = match n.sec {
        s if s == NameRef::NONE.sec => return None,
        NameRef::POOL => pool.as_bytes().get(off..off + len)?,
        s => sections.get(usize::from(s))?.1.bytes().get(off..off + len)?,
    };
    Some(String::from(String::from_utf8_lossy(bytes)))
}

fn load_dwarf(sections: &[(SectionId, SecBytes)]) -> Dwarf<Slice<'_>> {
    let get = |id: SectionId| -> Result<Slice<'_>, ()> {
        let data: &[u8] = sections.iter().find(|(i, _)| *i == id).map_or(&[], |(_, s)| s.bytes());
        Ok(EndianSlice::new(data, LittleEndian))
    };
    Dwarf::load(get).unwrap_or_else(|()| unreachable!("the loader never fails"))
}

/// Records every unit's offset and address ranges.
fn index_units(dwarf: &Dwarf<Slice<'_>>, units: &mut Vec<UnitEntry>, ranges: &mut Vec<(u64, u64, usize)>) {
    let mut headers = dwarf.units();
    while let Ok(Some(header)) = headers.next() {
        let Some(off) = header.debug_info_offset() else { continue };
        let ui = units.len();
        units.push(UnitEntry { offset: off.0, parsed: None });
        let Ok(unit) = dwarf.unit(header) else { continue };
        if let Ok(mut it) = dwarf.unit_ranges(&unit) {
            while let Ok(Some(r)) = it.next() {
                if r.begin < r.end && r.begin != 0 {
                    ranges.push((r.begin, r.end, ui));
                }
            }
        }
    }
    ranges.sort_unstable();
}

fn find_unit(ranges: &[(u64, u64, usize)], svma: u64) -> Option<usize> {
    let end = ranges.partition_point(|r| r.0 <= svma);
    // Unit ranges rarely overlap; look back a few in case one does.
    ranges[..end].iter().rev().take(8).find(|r| svma < r.1).map(|r| r.2)
}

struct FileTable<'t> {
    files: &'t mut Vec<SourceFile>,
    ids: &'t mut BTreeMap<SourceFile, u32>,
}

impl FileTable<'_> {
    fn intern(&mut self, full_path: &str) -> u32 {
        let (dir, file) = match full_path.rfind('/') {
            Some(i) => (&full_path[..i], &full_path[i + 1..]),
            None => ("", full_path),
        };
        let key = SourceFile { dir: String::from(dir), file: String::from(file) };
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.files.len() as u32;
        self.files.push(key.clone());
        self.ids.insert(key, id);
        id
    }
}

/// Where a unit's strings go while it is parsed: file names into the file table, function names
/// as references into the sections.
struct Strings<'t> {
    sections: &'t [(SectionId, SecBytes)],
    files: FileTable<'t>,
    pool: &'t mut String,
}

impl Strings<'_> {
    /// A reference to `s`, a string gimli found in one of our sections (copied into the pool if
    /// it lies in none).
    fn name_ref(&mut self, s: &[u8]) -> NameRef {
        let p = s.as_ptr() as usize;
        for (i, (_, sec)) in self.sections.iter().enumerate() {
            let b = sec.bytes();
            let base = b.as_ptr() as usize;
            if p >= base && p + s.len() <= base + b.len() && let (Ok(off), Ok(len)) = (u32::try_from(p - base), u32::try_from(s.len())) {
                return NameRef { off, len, sec: i as u8 };
            }
        }
        let off = self.pool.len() as u32;
        self.pool.push_str(&String::from_utf8_lossy(s));
        NameRef { off, len: self.pool.len() as u32 - off, sec: NameRef::POOL }
    }
}

fn attr_str<'a>(dwarf: &Dwarf<Slice<'a>>, unit: &Unit<Slice<'a>>, v: AttributeValue<Slice<'a>>) -> Option<String> {
    let s = dwarf.attr_string(unit, v).ok()?;
    Some(String::from(s.to_string_lossy().as_ref()))
}

fn join_path(dir: &str, name: &str) -> String {
    if name.starts_with('/') || dir.is_empty() {
        return String::from(name);
    }
    let mut p = String::from(dir.trim_end_matches('/'));
    p.push('/');
    p.push_str(name);
    p
}

/// Parses one unit: its line table into sequences and its functions with their inlined calls.
fn parse_unit<'a>(
    dwarf: &Dwarf<Slice<'a>>,
    units: &[UnitEntry],
    offset: usize,
    strings: &mut Strings<'_>,
) -> Option<UnitInfo> {
    let header = dwarf.debug_info.header_from_offset(DebugInfoOffset(offset)).ok()?;
    let unit = dwarf.unit(header).ok()?;
    let comp_dir = unit.comp_dir.map(|d| String::from(d.to_string_lossy().as_ref())).unwrap_or_default();
    let mut info = UnitInfo::default();
    // Line-program file index -> our file id.
    let mut file_map: BTreeMap<u64, u32> = BTreeMap::new();
    let mut map_file = |hdr: &gimli::LineProgramHeader<Slice<'a>>, index: u64, files: &mut FileTable<'_>| -> u32 {
        *file_map.entry(index).or_insert_with(|| {
            let full = (|| {
                let fe = hdr.file(index)?;
                let name = attr_str(dwarf, &unit, fe.path_name())?;
                let dir = fe.directory(hdr).and_then(|d| attr_str(dwarf, &unit, d)).unwrap_or_default();
                Some(join_path(&join_path(&comp_dir, &dir), &name))
            })();
            full.map_or(NO_FILE, |f| files.intern(&f))
        })
    };

    if let Some(program) = unit.line_program.clone() {
        let mut rows = program.rows();
        // The current sequence's start and rows (address, file, line) until it ends.
        let mut cur: Option<(u64, Vec<RawRow>)> = None;
        while let Ok(Some((hdr, row))) = rows.next_row() {
            let addr = row.address();
            if row.end_sequence() {
                // A sequence at address 0 is a function the linker discarded.
                if let Some((start, mut seq)) = cur.take()
                    && start != 0
                    && start < addr
                    && addr - start <= u64::from(u32::MAX)
                {
                    seq.sort_by_key(|r| r.0);
                    // Rows repeating the previous row's place add nothing: a lookup that would
                    // land on one gets the same file and line from the row it repeats.
                    seq.dedup_by(|r, prev| (r.1, r.2) == (prev.1, prev.2));
                    let first = info.rows.len() as u32;
                    info.rows.extend(seq.iter().map(|&(a, file, line)| Row { off: (a - start) as u32, file, line }));
                    info.sequences.push(Sequence { start, end: addr, rows: Span { start: first, len: seq.len() as u32 } });
                }
                continue;
            }
            let file = map_file(hdr, row.file_index(), &mut strings.files);
            let line = row.line().map_or(0, |l| l.get() as u32);
            cur.get_or_insert_with(|| (addr, Vec::new())).1.push((addr, file, line));
        }
        info.sequences.sort_by_key(|s| s.start);
    }

    // Functions and inlined calls: a DFS keeping the chain of enclosing function/inline DIEs.
    let program_header = unit.line_program.as_ref().map(|p| p.header().clone());
    let mut entries = unit.entries();
    // (depth of DIE, index of function, inline nesting level or 0 for the function itself)
    let mut stack: Vec<(isize, usize, u16)> = Vec::new();
    // Inlined calls with the index of their function, in DFS order.
    let mut inlined: Vec<(usize, InlineRec)> = Vec::new();
    while let Ok(Some(entry)) = entries.next_dfs() {
        let depth = entry.depth();
        while stack.last().is_some_and(|s| s.0 >= depth) {
            stack.pop();
        }
        let tag = entry.tag();
        if tag != gimli::DW_TAG_subprogram && tag != gimli::DW_TAG_inlined_subroutine {
            continue;
        }
        let start = info.ranges.len();
        push_die_ranges(dwarf, &unit, entry, &mut info.ranges);
        if info.ranges.len() == start {
            continue;
        }
        let ranges = Span { start: start as u32, len: (info.ranges.len() - start) as u32 };
        let name = die_name(dwarf, units, &unit, entry, 8).map_or(NameRef::NONE, |s| strings.name_ref(s.slice()));
        match (tag, stack.last().copied()) {
            (gimli::DW_TAG_inlined_subroutine, Some((_, fi, level))) => {
                let call_file = match (entry.attr_value(gimli::DW_AT_call_file), &program_header) {
                    (Some(AttributeValue::FileIndex(i)), Some(h)) => map_file(h, i, &mut strings.files),
                    (Some(v), Some(h)) => v.udata_value().map_or(NO_FILE, |i| map_file(h, i, &mut strings.files)),
                    _ => NO_FILE,
                };
                let call_line = entry.attr_value(gimli::DW_AT_call_line).and_then(|v| v.udata_value()).unwrap_or(0);
                inlined.push((fi, InlineRec { ranges, name, call_file, call_line: call_line as u32, depth: level + 1 }));
                stack.push((depth, fi, level + 1));
            }
            _ => {
                info.funcs.push(FuncRec { ranges, name, inlined: Span::default() });
                stack.push((depth, info.funcs.len() - 1, 0));
            }
        }
    }
    // Each function's inlined calls together, in DFS order (a nested function's DIEs can
    // interrupt its parent's).
    inlined.sort_by_key(|&(fi, _)| fi);
    for (k, &(fi, rec)) in inlined.iter().enumerate() {
        let f = &mut info.funcs[fi];
        if f.inlined.len == 0 {
            f.inlined.start = k as u32;
        }
        f.inlined.len += 1;
        info.inlined.push(rec);
    }
    let ranges = &info.ranges;
    info.funcs.sort_by_key(|f| f.ranges.of(ranges).iter().map(|r| r.0).min().unwrap_or(0));
    Some(info)
}

fn push_die_ranges<'a>(
    dwarf: &Dwarf<Slice<'a>>,
    unit: &Unit<Slice<'a>>,
    entry: &DebuggingInformationEntry<Slice<'a>>,
    out: &mut Vec<(u64, u64)>,
) {
    if let Ok(mut it) = dwarf.die_ranges(unit, entry) {
        while let Ok(Some(r)) = it.next() {
            if r.begin < r.end && r.begin != 0 {
                out.push((r.begin, r.end));
            }
        }
    }
}

/// The name of a function DIE: its linkage name, else its name, else those of the DIE it refers
/// to by `DW_AT_abstract_origin`/`DW_AT_specification` (possibly in another unit).
fn die_name<'a>(
    dwarf: &Dwarf<Slice<'a>>,
    units: &[UnitEntry],
    unit: &Unit<Slice<'a>>,
    entry: &DebuggingInformationEntry<Slice<'a>>,
    budget: u32,
) -> Option<Slice<'a>> {
    for at in [gimli::DW_AT_linkage_name, gimli::DW_AT_MIPS_linkage_name, gimli::DW_AT_name] {
        if let Some(v) = entry.attr_value(at)
            && let Ok(s) = dwarf.attr_string(unit, v)
        {
            return Some(s);
        }
    }
    if budget == 0 {
        return None;
    }
    for at in [gimli::DW_AT_abstract_origin, gimli::DW_AT_specification] {
        match entry.attr_value(at) {
            Some(AttributeValue::UnitRef(off)) => {
                let target = unit.entry(off).ok()?;
                return die_name(dwarf, units, unit, &target, budget - 1);
            }
            Some(AttributeValue::DebugInfoRef(off)) => {
                // The unit holding `off` is the last one starting at or before it.
                let ui = units.partition_point(|u| u.offset <= off.0).checked_sub(1)?;
                let header = dwarf.debug_info.header_from_offset(DebugInfoOffset(units[ui].offset)).ok()?;
                let other = dwarf.unit(header).ok()?;
                let target = other.entry(off.to_unit_offset(&other.header)?).ok()?;
                return die_name(dwarf, units, &other, &target, budget - 1);
            }
            _ => {}
        }
    }
    None
}

fn covers(ranges: &[(u64, u64)], a: u64) -> bool {
    ranges.iter().any(|&(lo, hi)| lo <= a && a < hi)
}

fn line_at(info: &UnitInfo, svma: u64) -> Option<(u32, u32)> {
    let end = info.sequences.partition_point(|s| s.start <= svma);
    let seq = info.sequences[..end].iter().rev().take(4).find(|s| svma < s.end)?;
    let rows = seq.rows.of(&info.rows);
    let off = (svma - seq.start) as u32;
    let i = rows.partition_point(|r| r.off <= off).checked_sub(1)?;
    Some((rows[i].file, rows[i].line))
}

fn frames_in_unit(info: &UnitInfo, svma: u64, name: &dyn Fn(NameRef) -> Option<String>) -> Vec<SrcFrame> {
    let loc = line_at(info, svma);
    let func = info.funcs.iter().rfind(|f| covers(f.ranges.of(&info.ranges), svma));
    let mut chain: Vec<&InlineRec> = func
        .map(|f| f.inlined.of(&info.inlined).iter().filter(|i| covers(i.ranges.of(&info.ranges), svma)).collect())
        .unwrap_or_default();
    chain.sort_by_key(|i| i.depth);
    let mut out = Vec::with_capacity(chain.len() + 1);
    let file_id = |f: u32| (f != NO_FILE).then_some(f);
    // The innermost code is in the deepest inlined body, at the line table's location; each
    // level out is the caller, at the call site recorded on the inlined-subroutine DIE.
    let (mut file, mut line) = loc.unwrap_or((NO_FILE, 0));
    for inl in chain.iter().rev() {
        out.push(SrcFrame { name: name(inl.name), file: file_id(file), line });
        file = inl.call_file;
        line = inl.call_line;
    }
    if func.is_some() || loc.is_some() {
        out.push(SrcFrame { name: func.and_then(|f| name(f.name)), file: file_id(file), line });
    }
    out
}
