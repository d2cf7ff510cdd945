//! The debug information of one ELF object at one load bias: its file (and separate debug
//! file) mapped when created, and the symbol table, DWARF index and CFI each built on first use,
//! in the `dinfo` arena. Addresses in and out are run-time addresses (avma); link-time ones are
//! avma - bias.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{FileBytes, FileReader};
use crate::arena::{self, ArenaId};
use super::cfi::{CfiIndex, FrameRules, UnwindRegs};
use super::debuglink::{DEBUG_ROOT, DebugFile, find_debug_file};
use super::dwarf::{DwarfIndex, SourceFile, SrcFrame};
use super::elf::ElfInfo;
use super::elf_syms::SymbolTable;

/// Where the DWARF of an object lives.
#[derive(Debug)]
enum DwarfState {
    Unread,
    None,
    Read(DwarfIndex),
}

#[derive(Debug)]
pub struct DebugObject {
    path: String,
    bias: u64,
    bytes: Arc<FileBytes>,
    info: ElfInfo,
    debug: Option<DebugFile>,
    syms: Option<SymbolTable>,
    dwarf: DwarfState,
    cfi: Option<CfiIndex>,
}

impl DebugObject {
    /// Wraps an object's bytes, without a separate debug file. `None` if not ELF.
    pub fn from_bytes(path: &str, bytes: impl Into<FileBytes>, bias: u64) -> Option<DebugObject> {
        let bytes = Arc::new(bytes.into());
        let info = ElfInfo::parse(&bytes)?;
        Some(DebugObject {
            path: String::from(path),
            bias,
            bytes,
            info,
            debug: None,
            syms: None,
            dwarf: DwarfState::Unread,
            cfi: None,
        })
    }

    /// Reads `path` and looks for its separate debug file under `debug_root` (usually
    /// [`DEBUG_ROOT`]). `bias_of` computes the load bias from the file's headers.
    pub fn load(
        reader: &mut dyn FileReader,
        path: &str,
        debug_root: &str,
        bias_of: impl FnOnce(&ElfInfo) -> Option<u64>,
    ) -> Option<DebugObject> {
        let bytes = reader.read_file(path)?;
        let mut obj = DebugObject::from_bytes(path, bytes, 0)?;
        obj.bias = bias_of(&obj.info)?;
        obj.debug = find_debug_file(reader, path, &obj.info, debug_root);
        Some(obj)
    }

    /// [`DebugObject::load`] with the standard debug root.
    pub fn load_standard(reader: &mut dyn FileReader, path: &str, bias_of: impl FnOnce(&ElfInfo) -> Option<u64>) -> Option<DebugObject> {
        Self::load(reader, path, DEBUG_ROOT, bias_of)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn bias(&self) -> u64 {
        self.bias
    }

    pub fn info(&self) -> &ElfInfo {
        &self.info
    }

    pub fn soname(&self) -> Option<&str> {
        self.info.soname.as_deref()
    }

    /// Path of the separate debug file in use, if one was found.
    pub fn debug_file_path(&self) -> Option<&str> {
        self.debug.as_ref().map(|d| d.path.as_str())
    }

    pub fn symbols(&mut self) -> &SymbolTable {
        let Self { syms, bytes, info, debug, .. } = self;
        syms.get_or_insert_with(|| {
            // The symbol tables are copied out, so their file pages can go.
            const TABLES: [&str; 4] = [".symtab", ".strtab", ".dynsym", ".dynstr"];
            arena::with_arena(ArenaId::Dinfo, || {
                let mut t = SymbolTable::from_elf(bytes);
                info.discard_sections(bytes, &TABLES);
                if let Some(d) = debug {
                    t.add_elf(&d.bytes);
                    d.info.discard_sections(&d.bytes, &TABLES);
                }
                t
            })
        })
    }

    /// Function containing `avma` by the symbol table, and the offset into it.
    pub fn symbolize(&mut self, avma: u64) -> Option<(&str, u64)> {
        let svma = avma.wrapping_sub(self.bias);
        self.symbols().symbolize(svma)
    }

    /// Source frames at `avma`, innermost (inlined) first; empty without DWARF for it.
    pub fn src_frames(&mut self, avma: u64) -> Vec<SrcFrame> {
        let svma = avma.wrapping_sub(self.bias);
        if let DwarfState::Unread = self.dwarf {
            self.dwarf = arena::with_arena(ArenaId::Dinfo, || {
                self.debug
                    .as_ref()
                    .and_then(|d| DwarfIndex::new(&d.bytes, &d.info))
                    .or_else(|| DwarfIndex::new(&self.bytes, &self.info))
                    .map_or(DwarfState::None, DwarfState::Read)
            });
        }
        match &mut self.dwarf {
            DwarfState::Read(idx) => idx.frames_at(svma),
            DwarfState::Unread | DwarfState::None => Vec::new(),
        }
    }

    /// A file named by a [`SrcFrame`] of this object.
    pub fn source_file(&self, id: u32) -> Option<&SourceFile> {
        match &self.dwarf {
            DwarfState::Read(idx) => Some(idx.file(id)),
            DwarfState::Unread | DwarfState::None => None,
        }
    }

    fn cfi(&mut self) -> &mut CfiIndex {
        let Self { cfi, bytes, info, debug, .. } = self;
        cfi.get_or_insert_with(|| {
            arena::with_arena(ArenaId::Dinfo, || CfiIndex::new(bytes, info, debug.as_ref().map(|d| (&d.bytes, &d.info))))
        })
    }

    /// The CFI rules at `avma`, if any FDE covers it.
    pub fn cfi_rules_at(&mut self, avma: u64) -> Option<FrameRules> {
        let svma = avma.wrapping_sub(self.bias);
        self.cfi().rules_at(svma)
    }

    /// One CFI unwind step from `regs` (see [`CfiIndex::unwind_step`]).
    pub fn unwind_step(&mut self, regs: UnwindRegs, innermost: bool, read_mem: &mut dyn FnMut(u64) -> Option<u64>) -> Option<UnwindRegs> {
        let bias = self.bias;
        self.cfi().unwind_step(bias, regs, innermost, read_mem)
    }
}
