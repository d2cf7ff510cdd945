//! The facts debug-info reading needs from an ELF file's headers, extracted once: sections (by
//! name, with SHF_COMPRESSED ones inflated on demand), loadable segments (for the load bias), the
//! build-id and `.gnu_debuglink`. No I/O: works on the file's bytes.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::dynamic::Dynamic;
use goblin::elf::header::{ELFCLASS32, ELFCLASS64, ELFDATA2LSB, EI_CLASS, EI_DATA, Header};
use goblin::elf::program_header::{PT_LOAD, ProgramHeader};
use goblin::elf::section_header::{SHF_COMPRESSED, SHN_XINDEX, SHT_NOBITS, SectionHeader};
use goblin::elf::Elf;

use super::FileBytes;

/// `ELFCOMPRESS_ZLIB`: the only compression Debian's debug files use.
const ELFCOMPRESS_ZLIB: u32 = 1;
/// `NT_GNU_BUILD_ID`.
const NT_GNU_BUILD_ID: u32 = 3;

/// One section header, owned.
#[derive(Clone, Debug)]
pub struct Section {
    pub name: String,
    pub addr: u64,
    pub offset: u64,
    pub size: u64,
    pub flags: u64,
    /// False for SHT_NOBITS (a stripped section in a separate debug file, or .bss).
    pub has_data: bool,
}

/// A section's contents kept for later use: a range of the (mapped) file, or inflated bytes of
/// our own for a compressed section.
#[derive(Debug)]
pub enum SecBytes {
    InFile { file: Arc<FileBytes>, offset: usize, len: usize },
    Inflated(Vec<u8>),
}

impl SecBytes {
    pub fn bytes(&self) -> &[u8] {
        match self {
            SecBytes::InFile { file, offset, len } => &file[*offset..*offset + *len],
            SecBytes::Inflated(v) => v,
        }
    }
}

/// One PT_LOAD segment.
#[derive(Clone, Copy, Debug)]
pub struct LoadSegment {
    pub vaddr: u64,
    pub offset: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub flags: u32,
}

/// Header facts of one ELF file.
#[derive(Clone, Debug)]
pub struct ElfInfo {
    pub machine: u16,
    pub is_64: bool,
    pub sections: Vec<Section>,
    pub segments: Vec<LoadSegment>,
    pub build_id: Option<Vec<u8>>,
    /// `.gnu_debuglink`: file name of the separate debug file and its CRC-32.
    pub debuglink: Option<(String, u32)>,
    pub soname: Option<String>,
}

impl ElfInfo {
    /// Reads the headers; `None` if the bytes are not an ELF file. Reads only the headers and
    /// the few small sections named above (not the symbol or string tables, which can be
    /// large), so that it touches little of a mapped file.
    pub fn parse(bytes: &[u8]) -> Option<ElfInfo> {
        let (header, ctx, shdrs) = parse_headers(bytes)?;
        let phdrs = ProgramHeader::parse(bytes, header.e_phoff as usize, usize::from(header.e_phnum), ctx).ok()?;
        let mut stridx = usize::from(header.e_shstrndx);
        if stridx == SHN_XINDEX as usize {
            stridx = shdrs.first().map_or(0, |s| s.sh_link as usize);
        }
        let names = shdrs.get(stridx).and_then(|s| section_slice(bytes, s)).unwrap_or(&[]);
        let sections = shdrs
            .iter()
            .map(|sh| Section {
                name: String::from(cstr_at(names, sh.sh_name as u32).unwrap_or("")),
                addr: sh.sh_addr,
                offset: sh.sh_offset,
                size: sh.sh_size,
                flags: sh.sh_flags,
                has_data: sh.sh_type != SHT_NOBITS,
            })
            .collect();
        let segments = phdrs
            .iter()
            .filter(|ph| ph.p_type == PT_LOAD)
            .map(|ph| LoadSegment {
                vaddr: ph.p_vaddr,
                offset: ph.p_offset,
                filesz: ph.p_filesz,
                memsz: ph.p_memsz,
                flags: ph.p_flags,
            })
            .collect();
        // The soname as the dynamic linker sees it: through PT_DYNAMIC, not the section table.
        let soname = Dynamic::parse(bytes, &phdrs, ctx).ok().flatten().and_then(|d| {
            let strtab = bytes.get(d.info.strtab..d.info.strtab.checked_add(d.info.strsz)?)?;
            (d.info.soname != 0).then(|| cstr_at(strtab, d.info.soname as u32)).flatten().map(String::from)
        });
        let mut info = ElfInfo {
            machine: header.e_machine,
            is_64: ctx.container.is_big(),
            sections,
            segments,
            build_id: None,
            debuglink: None,
            soname,
        };
        info.build_id = info.raw_section(bytes, ".note.gnu.build-id").and_then(parse_build_id);
        info.debuglink = info.raw_section(bytes, ".gnu_debuglink").and_then(parse_debuglink);
        Some(info)
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name && s.has_data)
    }

    /// The bytes of a section as stored in the file (still compressed if it is).
    pub fn raw_section<'a>(&self, bytes: &'a [u8], name: &str) -> Option<&'a [u8]> {
        let s = self.section(name)?;
        bytes.get(s.offset as usize..(s.offset.checked_add(s.size)?) as usize)
    }

    /// A section's contents, inflated if SHF_COMPRESSED; `None` if absent or undecodable.
    pub fn section_data<'a>(&self, bytes: &'a [u8], name: &str) -> Option<Cow<'a, [u8]>> {
        let s = self.section(name)?;
        let raw = self.raw_section(bytes, name)?;
        if s.flags & u64::from(SHF_COMPRESSED) == 0 {
            return Some(Cow::Borrowed(raw));
        }
        decompress(raw, self.is_64).map(Cow::Owned)
    }

    /// A section's contents to keep: borrowed from `file` if stored plainly, inflated if
    /// SHF_COMPRESSED; `None` if absent or undecodable.
    pub fn section_bytes(&self, file: &Arc<FileBytes>, name: &str) -> Option<SecBytes> {
        Some(match self.section_data(file, name)? {
            Cow::Borrowed(b) => SecBytes::InFile { file: file.clone(), offset: b.as_ptr() as usize - file.as_ptr() as usize, len: b.len() },
            Cow::Owned(v) => {
                // The compressed bytes are not needed again.
                self.discard_sections(file, &[name]);
                SecBytes::Inflated(v)
            }
        })
    }

    /// Drops the file pages of the named sections from memory (see [`FileBytes::discard`]).
    pub fn discard_sections(&self, file: &FileBytes, names: &[&str]) {
        for s in self.sections.iter().filter(|s| s.has_data && names.contains(&s.name.as_str())) {
            file.discard(s.offset as usize..s.offset.saturating_add(s.size) as usize);
        }
    }

    /// Load bias of a mapping: the run-time address minus the link-time address, given that the
    /// file offset `file_offset` is mapped at `avma`. `None` if no PT_LOAD covers that offset.
    pub fn bias_for_mapping(&self, file_offset: u64, avma: u64) -> Option<u64> {
        let seg = self
            .segments
            .iter()
            .find(|s| file_offset >= s.offset & !0xfff && file_offset < s.offset + s.filesz.max(1))?;
        let svma = seg.vaddr.wrapping_add(file_offset).wrapping_sub(seg.offset);
        Some(avma.wrapping_sub(svma))
    }

    /// Lowest and highest (exclusive) link-time addresses of the executable segments.
    pub fn text_range(&self) -> Option<(u64, u64)> {
        const PF_X: u32 = 1;
        let x = self.segments.iter().filter(|s| s.flags & PF_X != 0);
        let lo = x.clone().map(|s| s.vaddr).min()?;
        let hi = x.map(|s| s.vaddr + s.memsz).max()?;
        Some((lo, hi))
    }
}

/// The ELF header, its byte order and word size, and the section headers (none if the file has
/// no section table). `None` if the bytes are not ELF.
pub(crate) fn parse_headers(bytes: &[u8]) -> Option<(Header, Ctx, Vec<SectionHeader>)> {
    let header = Elf::parse_header(bytes).ok()?;
    let class = header.e_ident[EI_CLASS];
    if class != ELFCLASS64 && class != ELFCLASS32 {
        return None;
    }
    let container = if class == ELFCLASS64 { Container::Big } else { Container::Little };
    let ctx = Ctx::new(container, Endian::from(header.e_ident[EI_DATA] == ELFDATA2LSB));
    let shoff = header.e_shoff as usize;
    let mut shnum = usize::from(header.e_shnum);
    if shoff != 0 && shnum == 0 {
        // More sections than e_shnum holds: the count is in the first header's sh_size.
        shnum = SectionHeader::parse(bytes, shoff, 1, ctx).ok()?.first()?.sh_size as usize;
    }
    let shdrs = if shoff == 0 { Vec::new() } else { SectionHeader::parse(bytes, shoff, shnum, ctx).ok()? };
    Some((header, ctx, shdrs))
}

/// The file bytes of a section with data; `None` for SHT_NOBITS or a range outside the file.
pub(crate) fn section_slice<'a>(bytes: &'a [u8], sh: &SectionHeader) -> Option<&'a [u8]> {
    if sh.sh_type == SHT_NOBITS {
        return None;
    }
    let start = usize::try_from(sh.sh_offset).ok()?;
    bytes.get(start..start.checked_add(usize::try_from(sh.sh_size).ok()?)?)
}

/// The NUL-terminated UTF-8 string at `off` in a string table.
pub(crate) fn cstr_at(table: &[u8], off: u32) -> Option<&str> {
    let rest = table.get(off as usize..)?;
    let len = rest.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&rest[..len]).ok()
}

/// The build-id in a `.note.gnu.build-id` section: the descriptor of the `GNU` note of type
/// NT_GNU_BUILD_ID (notes are 4-byte aligned; x86 and arm64 Linux are little-endian).
fn parse_build_id(notes: &[u8]) -> Option<Vec<u8>> {
    let u32_at = |o: usize| notes.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
    let align4 = |n: usize| n.checked_add(3).map(|n| n & !3);
    let mut at = 0;
    while at + 12 <= notes.len() {
        let (namesz, descsz, ty) = (u32_at(at)? as usize, u32_at(at + 4)? as usize, u32_at(at + 8)?);
        let name_at = at + 12;
        let desc_at = name_at.checked_add(align4(namesz)?)?;
        let name = notes.get(name_at..name_at + namesz)?;
        if ty == NT_GNU_BUILD_ID && name == b"GNU\0" {
            return notes.get(desc_at..desc_at.checked_add(descsz)?).map(<[u8]>::to_vec);
        }
        at = desc_at.checked_add(align4(descsz)?)?;
    }
    None
}

/// `.gnu_debuglink`: NUL-terminated name, padding to 4 bytes, CRC-32 (file's byte order; x86
/// and arm64 Linux are little-endian).
fn parse_debuglink(data: &[u8]) -> Option<(String, u32)> {
    let nul = data.iter().position(|&b| b == 0)?;
    let name = core::str::from_utf8(&data[..nul]).ok()?;
    let crc_at = (nul + 4) & !3;
    let crc = u32::from_le_bytes(data.get(crc_at..crc_at + 4)?.try_into().ok()?);
    Some((String::from(name), crc))
}

/// Inflates an SHF_COMPRESSED section: an `Elf{32,64}_Chdr` then a zlib stream, straight into
/// a buffer of the announced size (no growing and copying).
fn decompress(raw: &[u8], is_64: bool) -> Option<Vec<u8>> {
    use miniz_oxide::inflate::TINFLStatus;
    use miniz_oxide::inflate::core::{DecompressorOxide, decompress as inflate, inflate_flags};
    let u32_at = |o: usize| raw.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
    let ch_type = u32_at(0)?;
    let (size, header_len) = if is_64 {
        (u64::from_le_bytes(raw.get(8..16)?.try_into().ok()?), 24)
    } else {
        (u64::from(u32_at(4)?), 12)
    };
    if ch_type != ELFCOMPRESS_ZLIB {
        return None;
    }
    let mut out = alloc::vec![0u8; usize::try_from(size).ok()?];
    let mut state = alloc::boxed::Box::<DecompressorOxide>::default();
    let flags = inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let (status, _, written) = inflate(&mut state, raw.get(header_len..)?, &mut out, 0, flags);
    (status == TINFLStatus::Done && written == out.len()).then_some(out)
}

/// CRC-32 (IEEE, reflected), as `.gnu_debuglink` uses to identify the debug file.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn debuglink_layout() {
        let mut d = alloc::vec::Vec::from(&b"libc.so.6.debug\0"[..]);
        d.extend_from_slice(&0x1234_5678u32.to_le_bytes());
        assert_eq!(parse_debuglink(&d), Some((String::from("libc.so.6.debug"), 0x1234_5678)));
        let mut d = alloc::vec::Vec::from(&b"ab\0\0"[..]);
        d.extend_from_slice(&7u32.to_le_bytes());
        assert_eq!(parse_debuglink(&d), Some((String::from("ab"), 7)));
    }
}
