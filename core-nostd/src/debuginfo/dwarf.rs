//! DWARF 4/5 reading with gimli: line tables (address -> file, line) and inlined subroutines
//! (address -> chain of inlined calls), parsed lazily one compilation unit at a time. Only an
//! index of unit address ranges is built up front; a unit is parsed the first time an address in
//! it is asked about. Works on the bytes of one ELF file (the object or its separate debug file).

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use gimli::{
    AttributeValue, DebugInfoOffset, DebuggingInformationEntry, Dwarf, EndianSlice, LittleEndian,
    SectionId, Unit,
};

use super::elf::ElfInfo;

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// Where a section's bytes are: in the file, or inflated into a buffer of our own.
#[derive(Debug)]
enum SecData {
    InFile { offset: usize, len: usize },
    Owned(Vec<u8>),
}

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

#[derive(Debug)]
struct InlineEntry {
    ranges: Vec<(u64, u64)>,
    depth: u16,
    name: Option<String>,
    call_file: Option<u32>,
    call_line: u32,
}

#[derive(Debug)]
struct FuncEntry {
    ranges: Vec<(u64, u64)>,
    name: Option<String>,
    inlined: Vec<InlineEntry>,
}

#[derive(Debug)]
struct Sequence {
    start: u64,
    end: u64,
    /// (address, file, line), sorted by address.
    rows: Vec<(u64, Option<u32>, u32)>,
}

#[derive(Debug, Default)]
struct UnitInfo {
    sequences: Vec<Sequence>,
    funcs: Vec<FuncEntry>,
}

#[derive(Debug)]
struct UnitEntry {
    offset: usize,
    parsed: Option<UnitInfo>,
}

/// The lazily filled DWARF index of one file.
#[derive(Debug)]
pub struct DwarfIndex {
    sections: Vec<(SectionId, SecData)>,
    units: Vec<UnitEntry>,
    /// (lo, hi, unit) sorted by lo.
    ranges: Vec<(u64, u64, usize)>,
    indexed: bool,
    files: Vec<SourceFile>,
    file_ids: BTreeMap<SourceFile, u32>,
}

impl DwarfIndex {
    /// Prepares reading the DWARF of a file; `None` if it has no `.debug_info`. Compressed
    /// sections are inflated here, once.
    pub fn new(bytes: &[u8], info: &ElfInfo) -> Option<DwarfIndex> {
        info.section(".debug_info")?;
        let mut sections = Vec::new();
        for id in [
            SectionId::DebugAbbrev, SectionId::DebugAddr, SectionId::DebugInfo, SectionId::DebugLine,
            SectionId::DebugLineStr, SectionId::DebugStr, SectionId::DebugStrOffsets,
            SectionId::DebugRanges, SectionId::DebugRngLists,
        ] {
            let Some(data) = info.section_data(bytes, id.name()) else { continue };
            let sec = match data {
                Cow::Borrowed(b) => SecData::InFile { offset: b.as_ptr() as usize - bytes.as_ptr() as usize, len: b.len() },
                Cow::Owned(v) => SecData::Owned(v),
            };
            sections.push((id, sec));
        }
        Some(DwarfIndex { sections, units: Vec::new(), ranges: Vec::new(), indexed: false, files: Vec::new(), file_ids: BTreeMap::new() })
    }

    /// A file recorded in [`SrcFrame::file`].
    pub fn file(&self, id: u32) -> &SourceFile {
        &self.files[id as usize]
    }

    /// Source frames at link-time address `svma`, innermost first (inlined calls first, the
    /// containing function last). Empty if no unit covers it.
    pub fn frames_at(&mut self, bytes: &[u8], svma: u64) -> Vec<SrcFrame> {
        let Self { sections, units, ranges, indexed, files, file_ids } = self;
        let dwarf = load_dwarf(sections, bytes);
        if !*indexed {
            *indexed = true;
            index_units(&dwarf, units, ranges);
        }
        let Some(ui) = find_unit(ranges, svma) else { return Vec::new() };
        if units[ui].parsed.is_none() {
            let mut files = FileTable { files, ids: file_ids };
            let info = parse_unit(&dwarf, units, units[ui].offset, &mut files).unwrap_or_default();
            units[ui].parsed = Some(info);
        }
        let info = units[ui].parsed.as_ref().unwrap();
        frames_in_unit(info, svma)
    }
}

fn load_dwarf<'a>(sections: &'a [(SectionId, SecData)], bytes: &'a [u8]) -> Dwarf<Slice<'a>> {
    let get = |id: SectionId| -> Result<Slice<'a>, ()> {
        let data: &[u8] = match sections.iter().find(|(i, _)| *i == id) {
            Some((_, SecData::InFile { offset, len })) => &bytes[*offset..*offset + *len],
            Some((_, SecData::Owned(v))) => v,
            None => &[],
        };
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
    files: &mut FileTable<'_>,
) -> Option<UnitInfo> {
    let header = dwarf.debug_info.header_from_offset(DebugInfoOffset(offset)).ok()?;
    let unit = dwarf.unit(header).ok()?;
    let comp_dir = unit.comp_dir.map(|d| String::from(d.to_string_lossy().as_ref())).unwrap_or_default();
    let mut info = UnitInfo::default();
    // Line-program file index -> our file id.
    let mut file_map: BTreeMap<u64, Option<u32>> = BTreeMap::new();
    let mut map_file = |hdr: &gimli::LineProgramHeader<Slice<'a>>, index: u64, files: &mut FileTable<'_>| -> Option<u32> {
        *file_map.entry(index).or_insert_with(|| {
            let fe = hdr.file(index)?;
            let name = attr_str(dwarf, &unit, fe.path_name())?;
            let dir = fe.directory(hdr).and_then(|d| attr_str(dwarf, &unit, d)).unwrap_or_default();
            let full = join_path(&join_path(&comp_dir, &dir), &name);
            Some(files.intern(&full))
        })
    };

    if let Some(program) = unit.line_program.clone() {
        let mut rows = program.rows();
        let mut cur: Option<Sequence> = None;
        while let Ok(Some((hdr, row))) = rows.next_row() {
            let addr = row.address();
            if row.end_sequence() {
                if let Some(mut seq) = cur.take() {
                    seq.end = addr;
                    // A sequence at address 0 is a function the linker discarded.
                    if seq.start != 0 && seq.start < seq.end {
                        info.sequences.push(seq);
                    }
                }
                continue;
            }
            let file = map_file(hdr, row.file_index(), files);
            let line = row.line().map_or(0, |l| l.get() as u32);
            let seq = cur.get_or_insert_with(|| Sequence { start: addr, end: addr, rows: Vec::new() });
            seq.rows.push((addr, file, line));
        }
        for seq in &mut info.sequences {
            seq.rows.sort_by_key(|r| r.0);
        }
        info.sequences.sort_by_key(|s| s.start);
    }

    // Functions and inlined calls: a DFS keeping the chain of enclosing function/inline DIEs.
    let program_header = unit.line_program.as_ref().map(|p| p.header().clone());
    let mut entries = unit.entries();
    // (depth of DIE, index of function, inline nesting level or 0 for the function itself)
    let mut stack: Vec<(isize, usize, u16)> = Vec::new();
    while let Ok(Some(entry)) = entries.next_dfs() {
        let depth = entry.depth();
        while stack.last().is_some_and(|s| s.0 >= depth) {
            stack.pop();
        }
        let tag = entry.tag();
        if tag != gimli::DW_TAG_subprogram && tag != gimli::DW_TAG_inlined_subroutine {
            continue;
        }
        let ranges = die_ranges(dwarf, &unit, entry);
        if ranges.is_empty() {
            continue;
        }
        let name = die_name(dwarf, units, &unit, entry, 8);
        match (tag, stack.last().copied()) {
            (gimli::DW_TAG_inlined_subroutine, Some((_, fi, level))) => {
                let call_file = match (entry.attr_value(gimli::DW_AT_call_file), &program_header) {
                    (Some(AttributeValue::FileIndex(i)), Some(h)) => map_file(h, i, files),
                    (Some(v), Some(h)) => v.udata_value().and_then(|i| map_file(h, i, files)),
                    _ => None,
                };
                let call_line = entry.attr_value(gimli::DW_AT_call_line).and_then(|v| v.udata_value()).unwrap_or(0);
                info.funcs[fi].inlined.push(InlineEntry { ranges, depth: level + 1, name, call_file, call_line: call_line as u32 });
                stack.push((depth, fi, level + 1));
            }
            _ => {
                info.funcs.push(FuncEntry { ranges, name, inlined: Vec::new() });
                stack.push((depth, info.funcs.len() - 1, 0));
            }
        }
    }
    info.funcs.sort_by_key(|f| f.ranges.iter().map(|r| r.0).min().unwrap_or(0));
    Some(info)
}

fn die_ranges<'a>(dwarf: &Dwarf<Slice<'a>>, unit: &Unit<Slice<'a>>, entry: &DebuggingInformationEntry<Slice<'a>>) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    if let Ok(mut it) = dwarf.die_ranges(unit, entry) {
        while let Ok(Some(r)) = it.next() {
            if r.begin < r.end && r.begin != 0 {
                out.push((r.begin, r.end));
            }
        }
    }
    out
}

/// The name of a function DIE: its linkage name, else its name, else those of the DIE it refers
/// to by `DW_AT_abstract_origin`/`DW_AT_specification` (possibly in another unit).
fn die_name<'a>(
    dwarf: &Dwarf<Slice<'a>>,
    units: &[UnitEntry],
    unit: &Unit<Slice<'a>>,
    entry: &DebuggingInformationEntry<Slice<'a>>,
    budget: u32,
) -> Option<String> {
    for at in [gimli::DW_AT_linkage_name, gimli::DW_AT_MIPS_linkage_name, gimli::DW_AT_name] {
        if let Some(v) = entry.attr_value(at)
            && let Some(s) = attr_str(dwarf, unit, v) {
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

fn line_at(info: &UnitInfo, svma: u64) -> Option<(Option<u32>, u32)> {
    let end = info.sequences.partition_point(|s| s.start <= svma);
    let seq = info.sequences[..end].iter().rev().take(4).find(|s| svma < s.end)?;
    let i = seq.rows.partition_point(|r| r.0 <= svma).checked_sub(1)?;
    let (_, file, line) = seq.rows[i];
    Some((file, line))
}

fn frames_in_unit(info: &UnitInfo, svma: u64) -> Vec<SrcFrame> {
    let loc = line_at(info, svma);
    let func = info.funcs.iter().rfind(|f| covers(&f.ranges, svma));
    let mut chain: Vec<&InlineEntry> = func
        .map(|f| f.inlined.iter().filter(|i| covers(&i.ranges, svma)).collect())
        .unwrap_or_default();
    chain.sort_by_key(|i| i.depth);
    let mut out = Vec::with_capacity(chain.len() + 1);
    // The innermost code is in the deepest inlined body, at the line table's location; each
    // level out is the caller, at the call site recorded on the inlined-subroutine DIE.
    let (mut file, mut line) = loc.unwrap_or((None, 0));
    for inl in chain.iter().rev() {
        out.push(SrcFrame { name: inl.name.clone(), file, line });
        file = inl.call_file;
        line = inl.call_line;
    }
    if func.is_some() || loc.is_some() {
        out.push(SrcFrame { name: func.and_then(|f| f.name.clone()), file, line });
    }
    out
}
