//! Function symbols of an ELF object from `.symtab` and `.dynsym`, sorted by address, for
//! address -> (name, offset) lookup and for the redirector's name scans.

use alloc::string::String;
use alloc::vec::Vec;

use goblin::elf::Elf;
use goblin::elf::sym::{STB_GLOBAL, STB_WEAK, STT_FUNC, STT_GNU_IFUNC};

/// One function symbol, at its link-time address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncSym {
    pub addr: u64,
    pub size: u64,
    /// As in the file (still mangled).
    pub name: String,
    pub global: bool,
}

/// All function symbols of an object, sorted by (addr, preference): for aliases at one address
/// the preferred name comes first.
#[derive(Clone, Debug, Default)]
pub struct SymbolTable {
    syms: Vec<FuncSym>,
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
        let Ok(elf) = Elf::parse(bytes) else { return };
        for (tab, strs) in [(&elf.syms, &elf.strtab), (&elf.dynsyms, &elf.dynstrtab)] {
            for sym in tab.iter() {
                let ty = sym.st_type();
                if (ty != STT_FUNC && ty != STT_GNU_IFUNC) || sym.st_shndx == 0 || sym.st_value == 0 {
                    continue;
                }
                let Some(name) = strs.get_at(sym.st_name).filter(|n| !n.is_empty()) else { continue };
                let bind = sym.st_bind();
                self.syms.push(FuncSym {
                    addr: sym.st_value,
                    size: sym.st_size,
                    name: String::from(name),
                    global: bind == STB_GLOBAL || bind == STB_WEAK,
                });
            }
        }
        self.sort();
    }

    fn sort(&mut self) {
        self.syms.sort_by(|a, b| a.addr.cmp(&b.addr).then_with(|| preference(a).cmp(&preference(b))));
        self.syms.dedup_by(|b, a| a.addr == b.addr && a.name == b.name);
    }

    /// The function containing `svma` (link-time address) and the offset into it. Zero-sized
    /// symbols (hand-written assembly) only match their exact address.
    pub fn symbolize(&self, svma: u64) -> Option<(&str, u64)> {
        let end = self.syms.partition_point(|s| s.addr <= svma);
        // The nearest symbol may be a short local label while an earlier function still covers
        // svma, so look back a little for the closest covering one.
        let hit = self.syms[..end].iter().rev().take(64).find(|s| svma < s.addr + s.size.max(1))?;
        // Among aliases at that address the preferred name sorts first.
        let s = &self.syms[self.syms.partition_point(|s| s.addr < hit.addr)];
        Some((s.name.as_str(), svma - s.addr))
    }

    /// Link-time address of a function by exact name.
    pub fn lookup_name(&self, name: &str) -> Option<u64> {
        self.syms.iter().find(|s| s.name == name).map(|s| s.addr)
    }

    pub fn iter(&self) -> impl Iterator<Item = &FuncSym> {
        self.syms.iter()
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
fn preference(s: &FuncSym) -> (bool, usize, usize, &str) {
    let underscores = s.name.bytes().take_while(|&b| b == b'_').count();
    (!s.global, underscores, s.name.len(), s.name.as_str())
}
