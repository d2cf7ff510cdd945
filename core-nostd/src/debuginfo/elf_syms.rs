//! Function symbols of an ELF object from `.symtab` and `.dynsym`, sorted by address, for
//! address -> (name, offset) lookup and for the redirector's name scans. Stored compactly: one
//! fixed-size record per symbol and all names in one string.

use alloc::string::String;
use alloc::vec::Vec;

use goblin::elf::section_header::{SHT_DYNSYM, SHT_SYMTAB};
use goblin::elf::sym::{self, STB_GLOBAL, STB_WEAK, STT_FUNC, STT_GNU_IFUNC, Symtab};

use super::elf::{cstr_at, parse_headers, section_slice};

/// One function symbol, at its link-time address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncSym {
    pub addr: u64,
    pub size: u64,
    /// As in the file (still mangled).
    pub name: String,
    pub global: bool,
}

/// A symbol as stored: its name is `names[name_off..name_off + name_len]`.
#[derive(Clone, Copy, Debug)]
struct Sym {
    addr: u64,
    size: u32,
    name_off: u32,
    name_len: u32,
    global: bool,
}

/// A symbol while a table is being built, its name borrowed.
struct Building<'a> {
    addr: u64,
    size: u32,
    name: &'a str,
    global: bool,
}

/// All function symbols of an object, sorted by (addr, preference): for aliases at one address
/// the preferred name comes first.
#[derive(Clone, Debug, Default)]
pub struct SymbolTable {
    syms: Vec<Sym>,
    names: String,
}

impl SymbolTable {
    /// Reads the symbols of `bytes`; an unparsable file gives an empty table.
    pub fn from_elf(bytes: &[u8]) -> SymbolTable {
        let mut t = SymbolTable::default();
        t.add_elf(bytes);
        t
    }

    /// Adds the symbols of another file of the same object (its separate debug file).
    pub fn add_elf(&mut self, bytes: &[u8]) {
        let Some((_, ctx, shdrs)) = parse_headers(bytes) else { return };
        let mut all: Vec<Building<'_>> = self
            .syms
            .iter()
            .map(|s| Building { addr: s.addr, size: s.size, name: self.name_of(s), global: s.global })
            .collect();
        // `.symtab` then `.dynsym`, each with the string table it links to.
        for kind in [SHT_SYMTAB, SHT_DYNSYM] {
            let Some(sh) = shdrs.iter().find(|s| s.sh_type == kind) else { continue };
            let strs = shdrs.get(sh.sh_link as usize).and_then(|s| section_slice(bytes, s)).unwrap_or(&[]);
            let count = sh.sh_size as usize / sym::Sym::size(ctx.container);
            let Ok(tab) = Symtab::parse(bytes, sh.sh_offset as usize, count, ctx) else { continue };
            for sym in tab.iter() {
                let ty = sym.st_type();
                if (ty != STT_FUNC && ty != STT_GNU_IFUNC) || sym.st_shndx == 0 || sym.st_value == 0 {
                    continue;
                }
                let Some(name) = cstr_at(strs, sym.st_name as u32).filter(|n| !n.is_empty()) else { continue };
                let bind = sym.st_bind();
                all.push(Building {
                    addr: sym.st_value,
                    // No function is 4 GiB long; a bogus size is clamped rather than wrapped.
                    size: u32::try_from(sym.st_size).unwrap_or(u32::MAX),
                    name,
                    global: bind == STB_GLOBAL || bind == STB_WEAK,
                });
            }
        }
        all.sort_by(|a, b| a.addr.cmp(&b.addr).then_with(|| preference(a).cmp(&preference(b))));
        all.dedup_by(|b, a| a.addr == b.addr && a.name == b.name);
        let mut names = String::with_capacity(all.iter().map(|s| s.name.len()).sum());
        let mut syms = Vec::with_capacity(all.len());
        for s in &all {
            syms.push(Sym { addr: s.addr, size: s.size, name_off: names.len() as u32, name_len: s.name.len() as u32, global: s.global });
            names.push_str(s.name);
        }
        drop(all);
        self.syms = syms;
        self.names = names;
    }

    fn name_of(&self, s: &Sym) -> &str {
        &self.names[s.name_off as usize..(s.name_off + s.name_len) as usize]
    }

    /// The function containing `svma` (link-time address) and the offset into it. Zero-sized
    /// symbols (hand-written assembly) only match their exact address.
    pub fn symbolize(&self, svma: u64) -> Option<(&str, u64)> {
        let end = self.syms.partition_point(|s| s.addr <= svma);
        // The nearest symbol may be a short local label while an earlier function still covers
        // svma, so look back a little for the closest covering one.
        let hit = self.syms[..end].iter().rev().take(64).find(|s| svma < s.addr + u64::from(s.size.max(1)))?;
        // Among aliases at that address the preferred name sorts first.
        let s = &self.syms[self.syms.partition_point(|s| s.addr < hit.addr)];
        Some((self.name_of(s), svma - s.addr))
    }

    /// Link-time address of a function by exact name.
    pub fn lookup_name(&self, name: &str) -> Option<u64> {
        self.syms.iter().find(|s| self.name_of(s) == name).map(|s| s.addr)
    }

    /// The symbols in address order (each name copied out).
    pub fn iter(&self) -> impl Iterator<Item = FuncSym> + '_ {
        self.syms.iter().map(|s| FuncSym { addr: s.addr, size: u64::from(s.size), name: String::from(self.name_of(s)), global: s.global })
    }

    pub fn len(&self) -> usize {
        self.syms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }
}

/// Sort key among aliases: global before local, fewer leading underscores, shorter, then by name
/// (so `malloc` is shown rather than `__libc_malloc`).
fn preference<'a>(s: &Building<'a>) -> (bool, usize, usize, &'a str) {
    let underscores = s.name.bytes().take_while(|&b| b == b'_').count();
    (!s.global, underscores, s.name.len(), s.name)
}
