//! The facts debug-info reading needs from an ELF file's headers, extracted once: sections (by
//! name, with SHF_COMPRESSED ones inflated on demand), loadable segments (for the load bias), the
//! build-id and `.gnu_debuglink`. No I/O: works on the file's bytes.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

use goblin::elf::Elf;
use goblin::elf::program_header::PT_LOAD;
use goblin::elf::section_header::{SHF_COMPRESSED, SHT_NOBITS};

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
    /// Reads the headers; `None` if the bytes are not an ELF file goblin accepts.
    pub fn parse(bytes: &[u8]) -> Option<ElfInfo> {
        let elf = Elf::parse(bytes).ok()?;
        let sections: Vec<Section> = elf
            .section_headers
            .iter()
            .map(|sh| Section {
                name: String::from(elf.shdr_strtab.get_at(sh.sh_name).unwrap_or("")),
                addr: sh.sh_addr,
                offset: sh.sh_offset,
                size: sh.sh_size,
                flags: sh.sh_flags,
                has_data: sh.sh_type != SHT_NOBITS,
            })
            .collect();
        let segments = elf
            .program_headers
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
        let build_id = elf.iter_note_sections(bytes, Some(".note.gnu.build-id")).and_then(|notes| {
            notes
                .filter_map(Result::ok)
                .find(|n| n.n_type == NT_GNU_BUILD_ID && n.name == "GNU")
                .map(|n| n.desc.to_vec())
        });
        let mut info = ElfInfo {
            machine: elf.header.e_machine,
            is_64: elf.is_64,
            sections,
            segments,
            build_id,
            debuglink: None,
            soname: elf.soname.map(String::from),
        };
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

/// `.gnu_debuglink`: NUL-terminated name, padding to 4 bytes, CRC-32 (file's byte order; x86
/// and arm64 Linux are little-endian).
fn parse_debuglink(data: &[u8]) -> Option<(String, u32)> {
    let nul = data.iter().position(|&b| b == 0)?;
    let name = core::str::from_utf8(&data[..nul]).ok()?;
    let crc_at = (nul + 4) & !3;
    let crc = u32::from_le_bytes(data.get(crc_at..crc_at + 4)?.try_into().ok()?);
    Some((String::from(name), crc))
}

/// Inflates an SHF_COMPRESSED section: an `Elf{32,64}_Chdr` then a zlib stream.
fn decompress(raw: &[u8], is_64: bool) -> Option<Vec<u8>> {
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
    let out = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(raw.get(header_len..)?, size as usize).ok()?;
    (out.len() as u64 == size).then_some(out)
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
