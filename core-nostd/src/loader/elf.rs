//! Reading an ELF file's headers and mapping its `PT_LOAD` segments for the client, as the
//! kernel's ELF loader does (file pages mapped privately, the bss tail of the last file page
//! zeroed, anonymous pages for the rest).

use alloc::string::String;
use alloc::vec::Vec;
use goblin::container::Ctx;
use goblin::elf::header::{self, Header};
use goblin::elf::program_header::{self as ph, ProgramHeader};

use super::LoadError;
use crate::aspace::sys::{self, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::aspace::{self, PAGE_SIZE, page_down, page_up};

/// An opened ELF file with its headers read.
pub struct ElfFile {
    /// The path as given (for messages).
    pub path: String,
    /// The path the kernel knows the file by (`/proc/self/fd/N`), for naming mappings.
    pub real_path: String,
    pub fd: i32,
    pub header: Header,
    pub phdrs: Vec<ProgramHeader>,
}

impl Drop for ElfFile {
    fn drop(&mut self) {
        sys::close(self.fd);
    }
}

/// The result of mapping one ELF file.
#[derive(Clone, Copy, Debug)]
pub struct Mapped {
    /// Load bias: runtime address minus link-time address (0 for ET_EXEC).
    pub bias: u64,
    pub entry: u64,
    /// Runtime address of the program headers.
    pub phdr: u64,
    /// Page-rounded end of the highest segment.
    pub end: u64,
}

/// What a mapping request needs to know about a segment list: `[lo, hi)` link-time extent.
fn load_extent(phdrs: &[ProgramHeader]) -> Option<(u64, u64)> {
    let loads = phdrs.iter().filter(|p| p.p_type == ph::PT_LOAD && p.p_memsz > 0);
    let lo = loads.clone().map(|p| page_down(p.p_vaddr)).min()?;
    let hi = loads.map(|p| p.p_vaddr.saturating_add(p.p_memsz)).max()?;
    Some((lo, page_up(hi)))
}

impl ElfFile {
    /// Open `path` and read its ELF and program headers; checks it is an executable or shared
    /// object for `machine`.
    pub fn open(path: &str, machine: u16) -> Result<ElfFile, LoadError> {
        match sys::access(path, 1) {
            Ok(()) => {}
            Err(sys::ENOENT) => return Err(LoadError::NotFound(path.into())),
            Err(sys::EACCES) => return Err(LoadError::PermissionDenied(path.into())),
            Err(e) => return Err(LoadError::Io(path.into(), e)),
        }
        let fd = sys::open(path, sys::O_RDONLY | sys::O_CLOEXEC).map_err(|e| match e {
            sys::EACCES => LoadError::PermissionDenied(path.into()),
            e => LoadError::Io(path.into(), e),
        })?;
        let mut link = heapless::String::<32>::new();
        let _ = core::fmt::Write::write_fmt(&mut link, format_args!("/proc/self/fd/{fd}"));
        let real_path = sys::readlink(&link).unwrap_or_else(|_| path.into());
        // Owning the descriptor from here on closes it on every error path.
        let mut f = ElfFile { path: path.into(), real_path, fd, header: Header::new(Ctx::default()), phdrs: Vec::new() };

        let mut ehdr = [0u8; header::header64::SIZEOF_EHDR];
        match sys::pread_exact(fd, &mut ehdr, 0) {
            Ok(()) => {}
            Err(sys::EISDIR) => return Err(LoadError::IsDirectory(path.into())),
            Err(0) => return Err(LoadError::NotExecutable(path.into())),
            Err(e) => return Err(LoadError::Io(path.into(), e)),
        }
        if &ehdr[..4] != header::ELFMAG {
            return Err(LoadError::NotExecutable(path.into()));
        }
        let h = goblin::elf::Elf::parse_header(&ehdr).map_err(|_| LoadError::NotExecutable(path.into()))?;
        let class_ok = h.e_ident[header::EI_CLASS] == header::ELFCLASS64;
        if !class_ok || h.e_machine != machine || !matches!(h.e_type, header::ET_EXEC | header::ET_DYN) {
            return Err(LoadError::NotExecutable(path.into()));
        }
        let bad = |what: &'static str| LoadError::BadElf(path.into(), what);
        let ctx = Ctx::new(
            h.container().map_err(|_| bad("bad class"))?,
            h.endianness().map_err(|_| bad("bad byte order"))?,
        );
        if h.e_phnum == 0 || h.e_phnum > 1024 || h.e_phentsize as usize != ProgramHeader::size(ctx) {
            return Err(bad("bad program header table"));
        }
        let mut raw = alloc::vec![0u8; h.e_phnum as usize * h.e_phentsize as usize];
        sys::pread_exact(fd, &mut raw, h.e_phoff).map_err(|_| bad("truncated program header table"))?;
        f.phdrs = ProgramHeader::parse(&raw, 0, h.e_phnum as usize, ctx).map_err(|_| bad("bad program header table"))?;
        f.header = h;
        if load_extent(&f.phdrs).is_none() {
            return Err(bad("no loadable segment"));
        }
        Ok(f)
    }

    /// The `PT_INTERP` path, if any.
    pub fn interp(&self) -> Result<Option<String>, LoadError> {
        let Some(p) = self.phdrs.iter().find(|p| p.p_type == ph::PT_INTERP) else { return Ok(None) };
        if p.p_filesz == 0 || p.p_filesz > 4096 {
            return Err(LoadError::BadElf(self.path.clone(), "bad PT_INTERP"));
        }
        let mut buf = alloc::vec![0u8; p.p_filesz as usize];
        sys::pread_exact(self.fd, &mut buf, p.p_offset).map_err(|_| LoadError::BadElf(self.path.clone(), "bad PT_INTERP"))?;
        let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let s = core::str::from_utf8(&buf[..n]).map_err(|_| LoadError::BadElf(self.path.clone(), "bad PT_INTERP"))?;
        Ok(Some(s.into()))
    }

    /// Link-time extent `[lo, hi)` of the loadable segments (page-rounded).
    pub fn extent(&self) -> (u64, u64) {
        load_extent(&self.phdrs).expect("checked at open")
    }

    /// Map the file. ET_EXEC files go at their link addresses (which must be free); ET_DYN
    /// files at `hint` if `[hint, hint + size + extra)` is free, else wherever the
    /// address-space manager finds room for that much (`extra` keeps room after the image,
    /// e.g. for the brk).
    pub fn map(&self, hint: u64, extra: u64) -> Result<Mapped, LoadError> {
        let (lo, hi) = self.extent();
        let span = hi - lo;
        let no_space = || LoadError::NoSpace(self.path.clone());
        let bias = if self.header.e_type == header::ET_EXEC {
            if !aspace::aspace().is_free(lo, span) {
                return Err(no_space());
            }
            0
        } else {
            let total = span.checked_add(extra).ok_or_else(no_space)?;
            let base = aspace::find_client_space(total, hint, false).ok_or_else(no_space)?;
            base - lo
        };
        for p in self.phdrs.iter().filter(|p| p.p_type == ph::PT_LOAD && p.p_memsz > 0) {
            self.map_segment(p, bias)?;
        }
        let phdr = self.phdr_addr(bias);
        Ok(Mapped { bias, entry: self.header.e_entry.wrapping_add(bias), phdr, end: hi + bias })
    }

    fn map_segment(&self, p: &ProgramHeader, bias: u64) -> Result<(), LoadError> {
        let bad = |what: &'static str| LoadError::BadElf(self.path.clone(), what);
        if p.p_offset % PAGE_SIZE != p.p_vaddr % PAGE_SIZE || p.p_filesz > p.p_memsz {
            return Err(bad("misaligned or inconsistent PT_LOAD"));
        }
        let prot = (if p.p_flags & ph::PF_R != 0 { PROT_READ } else { 0 })
            | (if p.p_flags & ph::PF_W != 0 { PROT_WRITE } else { 0 })
            | (if p.p_flags & ph::PF_X != 0 { PROT_EXEC } else { 0 });
        let start = p.p_vaddr + bias;
        let page_start = page_down(start);
        let file_end = start + p.p_filesz;
        let mem_end = page_up(start + p.p_memsz);
        let map_err = |e: i32| LoadError::MapFailed(self.path.clone(), e);
        let mut anon_start = page_start;
        if p.p_filesz > 0 {
            let file_map_end = page_up(file_end);
            let zero_tail = p.p_memsz > p.p_filesz && !file_end.is_multiple_of(PAGE_SIZE);
            let off = page_down(p.p_offset);
            // The range was checked free (or chosen) by the address-space manager; several
            // segments may share a page, so later ones replace earlier ones as the kernel does.
            let map_prot = if zero_tail { prot | PROT_WRITE } else { prot };
            sys::mmap(page_start, file_map_end - page_start, map_prot, MAP_PRIVATE | MAP_FIXED, self.fd, off)
                .map_err(map_err)?;
            crate::stacks::notify_mmap(page_start, file_map_end - page_start, prot, Some(&self.real_path), off);
            if zero_tail {
                let n = (file_map_end - file_end) as usize;
                // SAFETY: [file_end, file_map_end) lies in the private writable mapping just made.
                unsafe { core::ptr::write_bytes(file_end as *mut u8, 0, n) };
                if prot & PROT_WRITE == 0 {
                    sys::mprotect(page_start, file_map_end - page_start, prot).map_err(map_err)?;
                }
            }
            aspace::aspace().record_client_mmap(
                page_start,
                file_map_end - page_start,
                prot,
                MAP_PRIVATE,
                Some(self.real_path.clone()),
                off,
            );
            anon_start = file_map_end;
        }
        if mem_end > anon_start {
            let len = mem_end - anon_start;
            sys::mmap(anon_start, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0).map_err(map_err)?;
            aspace::aspace().record_client_mmap(anon_start, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, None, 0);
        }
        Ok(())
    }

    /// Runtime address of the program header table: from PT_PHDR, else from the PT_LOAD that
    /// contains it in the file.
    fn phdr_addr(&self, bias: u64) -> u64 {
        if let Some(p) = self.phdrs.iter().find(|p| p.p_type == ph::PT_PHDR) {
            return p.p_vaddr + bias;
        }
        let off = self.header.e_phoff;
        self.phdrs
            .iter()
            .find(|p| p.p_type == ph::PT_LOAD && off >= p.p_offset && off < p.p_offset + p.p_filesz)
            .map(|p| p.p_vaddr + (off - p.p_offset) + bias)
            .unwrap_or(0)
    }
}
