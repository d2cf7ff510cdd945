//! Loading the client: finding the executable, mapping it (static, static-PIE, or dynamic with
//! its `PT_INTERP` ld.so), the brk reservation, and the initial stack with argv, envp and the
//! auxiliary vector. The result ([`ClientImage`]) is also kept in a global ([`client`]) for the
//! system-call layer (e.g. `readlink("/proc/self/exe")` answers the client's path).
//!
//! Depends on the address-space manager (and its raw system calls) only.

mod elf;
pub mod stack;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::arch::GuestArch;
use crate::aspace::sys::{self, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use crate::aspace::{self, BRK_MAX_SIZE, CLIENT_STACK_SIZE, CLIENT_STACK_TOP, PAGE_SIZE};
use elf::ElfFile;
use stack::*;

/// Where a position-independent executable goes when that space is free (Valgrind's choice on
/// amd64, so addresses in reports look the same).
pub const PIE_BASE: u64 = 0x10_8000;
/// Where the ELF interpreter (ld.so) goes when that space is free (also Valgrind's).
pub const INTERP_BASE: u64 = 0x400_0000;

/// The loaded client, as the scheduler and the system-call layer need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientImage {
    /// Where the guest starts: the interpreter's entry if there is one, else the program's.
    pub entry: u64,
    /// Initial stack pointer (points at argc).
    pub sp: u64,
    /// Start and limit of the brk area (initial break = `brk_base`).
    pub brk_base: u64,
    pub brk_limit: u64,
    /// Absolute path of the executable (what `/proc/self/exe` should say).
    pub exe_path: String,
    /// The program's own entry point (`AT_ENTRY`).
    pub exe_entry: u64,
    /// Load bias of the program (0 for ET_EXEC).
    pub exe_bias: u64,
    /// `AT_PHDR` / `AT_PHNUM`.
    pub phdr: u64,
    pub phnum: u64,
    /// Interpreter load address (`AT_BASE`), 0 without an interpreter.
    pub base: u64,
    /// The interpreter's path, if any.
    pub interp: Option<String>,
    /// The main stack mapping `[stack_low, stack_top)`.
    pub stack_low: u64,
    pub stack_top: u64,
}

/// Why the client could not be loaded. `Display` gives a one-line message (without the
/// `valgrind: ` prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    NotFound(String),
    PermissionDenied(String),
    IsDirectory(String),
    /// Not an ELF executable for this architecture (nor a `#!` script).
    NotExecutable(String),
    /// An ELF file whose headers make no sense.
    BadElf(String, &'static str),
    /// The image would overlap the core or reserved space.
    NoSpace(String),
    /// mmap of the image failed with this errno.
    MapFailed(String, i32),
    Io(String, i32),
    /// argv/envp do not fit on the client's stack.
    ArgsTooLong,
    /// The main stack could not be mapped (errno).
    NoStack(i32),
}

impl LoadError {
    /// The exit status Valgrind gives for this failure (the shell's: 127 not found, 126 found but
    /// not runnable, 1 otherwise).
    pub fn exit_code(&self) -> i32 {
        match self {
            LoadError::NotFound(_) => 127,
            LoadError::PermissionDenied(_) | LoadError::IsDirectory(_) | LoadError::NotExecutable(_) => 126,
            _ => 1,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotFound(p) => write!(f, "{p}: No such file or directory"),
            LoadError::PermissionDenied(p) => write!(f, "{p}: Permission denied"),
            LoadError::IsDirectory(p) => write!(f, "{p}: Is a directory"),
            LoadError::NotExecutable(p) => write!(f, "{p}: cannot execute binary file"),
            LoadError::BadElf(p, what) => write!(f, "{p}: malformed ELF file ({what})"),
            LoadError::NoSpace(p) => write!(f, "{p}: no room in the address space to load it"),
            LoadError::MapFailed(p, e) => write!(f, "{p}: mmap of a segment failed (errno {e})"),
            LoadError::Io(p, e) => write!(f, "{p}: cannot read (errno {e})"),
            LoadError::ArgsTooLong => write!(f, "argument list too long"),
            LoadError::NoStack(e) => write!(f, "cannot map the client's stack (errno {e})"),
        }
    }
}

static CLIENT: spin::Once<ClientImage> = spin::Once::new();

/// The loaded client, once [`load_client`] has succeeded.
pub fn client() -> Option<&'static ClientImage> {
    CLIENT.get()
}

/// The value of `name` in an environment list.
fn getenv<'a>(envp: &[&'a str], name: &str) -> Option<&'a str> {
    envp.iter().find_map(|e| e.strip_prefix(name)?.strip_prefix('='))
}

/// Resolve a program name as execvp does: names with a '/' are paths; others are searched in
/// `$PATH`. Returns the first existing candidate (or the name itself, so the error names it).
fn find_program(exe: &str, envp: &[&str]) -> String {
    if exe.contains('/') {
        return exe.into();
    }
    let path = getenv(envp, "PATH").unwrap_or("/usr/local/bin:/usr/bin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = alloc::format!("{dir}/{exe}");
        if sys::access(&cand, 0).is_ok() {
            return cand;
        }
    }
    exe.into()
}

/// The platform string for `AT_PLATFORM`.
fn platform_of(machine: u16) -> &'static str {
    match machine {
        goblin::elf::header::EM_X86_64 => "x86_64",
        goblin::elf::header::EM_AARCH64 => "aarch64",
        _ => "unknown",
    }
}

/// The host's auxiliary vector as (key, value) pairs.
///
/// # Safety
/// `auxv` must be null or point to a valid auxv array terminated by `AT_NULL`.
unsafe fn host_auxv(auxv: *const [usize; 2]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    if auxv.is_null() {
        return out;
    }
    let mut p = auxv;
    // SAFETY: the caller guarantees an AT_NULL-terminated array; we stop at AT_NULL.
    unsafe {
        while (*p)[0] != AT_NULL as usize {
            out.push(((*p)[0] as u64, (*p)[1] as u64));
            p = p.add(1);
        }
    }
    out
}

/// The client's auxiliary vector, in the kernel's order. `AT_SYSINFO_EHDR` is left out: without
/// a vDSO, libc makes real system calls (which the core sees) for the time functions.
fn client_auxv(machine: u16, host: &[(u64, u64)], phdr: u64, phnum: u64, base: u64, entry: u64) -> Vec<(u64, u64)> {
    let h = |k: u64, default: u64| host.iter().find(|e| e.0 == k).map_or(default, |e| e.1);
    // x86-64: HWCAP2 bit 1 says user space may use the FSGSBASE instructions; the guest must
    // use arch_prctl instead so that the core sees TLS changes.
    let hwcap2 = if machine == goblin::elf::header::EM_X86_64 { h(AT_HWCAP2, 0) & !2 } else { h(AT_HWCAP2, 0) };
    let mut v = Vec::with_capacity(20);
    if let Some(&m) = host.iter().find(|e| e.0 == AT_MINSIGSTKSZ) {
        v.push(m);
    }
    v.extend_from_slice(&[
        (AT_HWCAP, h(AT_HWCAP, 0)),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_CLKTCK, h(AT_CLKTCK, 100)),
        (AT_PHDR, phdr),
        (AT_PHENT, 56),
        (AT_PHNUM, phnum),
        (AT_BASE, base),
        (AT_FLAGS, 0),
        (AT_ENTRY, entry),
        (AT_UID, h(AT_UID, 0)),
        (AT_EUID, h(AT_EUID, 0)),
        (AT_GID, h(AT_GID, 0)),
        (AT_EGID, h(AT_EGID, 0)),
        (AT_SECURE, h(AT_SECURE, 0)),
        (AT_RANDOM, 0),
        (AT_HWCAP2, hwcap2),
        (AT_EXECFN, 0),
        (AT_PLATFORM, 0),
    ]);
    v
}

/// Load the client program `exe` (searched in `$PATH` if it has no '/') with argument vector
/// `args` (the whole argv: `args[0]` is the program name as the user typed it; an empty `args`
/// means `[exe]`) and environment `envp`, and build its initial stack.
/// `host_auxv` is the core's own auxiliary vector (from its start-up stack; may be null): the
/// hardware capabilities, ids and `AT_MINSIGSTKSZ` are taken from it.
///
/// Initialises the address-space manager first if start-up has not done so.
pub fn load_client<G: GuestArch>(
    exe: &str,
    args: &[&str],
    envp: &[&str],
    host_auxv: *const [usize; 2],
) -> Result<ClientImage, LoadError> {
    load_for_machine(G::ELF_MACHINE, exe, args, envp, host_auxv, 0)
}

/// How many `#!` interpreters may be chained (the kernel allows a few more; four is plenty).
const MAX_SCRIPT_DEPTH: u32 = 4;

/// The interpreter line of a `#!` script: (interpreter, optional single argument), as the
/// kernel splits it (everything after the interpreter name is one argument). `None` if `path`
/// is not a script.
fn script_interpreter(path: &str) -> Option<(String, Option<String>)> {
    use crate::syscall;
    let fd = syscall::open(path, syscall::O_RDONLY | syscall::O_CLOEXEC, 0).ok()?;
    let mut head = [0u8; 256];
    let n = syscall::pread(fd, &mut head, 0).unwrap_or(0);
    let _ = syscall::close(fd);
    let line = head[..n].strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let line = core::str::from_utf8(line).ok()?.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
    let (interp, arg) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], Some(line[i..].trim_matches([' ', '\t']))),
        None => (line, None),
    };
    (!interp.is_empty()).then(|| (String::from(interp), arg.filter(|a| !a.is_empty()).map(String::from)))
}

/// [`load_client`] for executables of ELF machine `machine`.
fn load_for_machine(
    machine: u16,
    exe: &str,
    args: &[&str],
    envp: &[&str],
    host_auxv: *const [usize; 2],
    depth: u32,
) -> Result<ClientImage, LoadError> {
    if aspace::aspace().segments().is_empty() {
        aspace::init().map_err(|e| LoadError::Io(String::from("/proc/self/maps"), e))?;
    } else {
        aspace::sync().map_err(|e| LoadError::Io(String::from("/proc/self/maps"), e))?;
    }
    let path = find_program(exe, envp);
    if depth < MAX_SCRIPT_DEPTH
        && let Some((interp, arg)) = script_interpreter(&path)
    {
        // Run the interpreter on the script, as execve does: interp [arg] script args...
        let mut argv: Vec<&str> = Vec::with_capacity(args.len() + 2);
        argv.push(&interp);
        if let Some(a) = &arg {
            argv.push(a);
        }
        argv.push(&path);
        argv.extend(args.iter().skip(1));
        return load_for_machine(machine, &interp, &argv, envp, host_auxv, depth + 1);
    }
    let prog = ElfFile::open(&path, machine)?;
    let interp_path = prog.interp()?;
    let interp = interp_path.as_deref().map(|p| ElfFile::open(p, machine)).transpose()?;

    // Room for the brk right after a PIE; an ET_EXEC gets whatever is free after it.
    let pm = prog.map(PIE_BASE, BRK_MAX_SIZE)?;
    let brk_base = pm.end;
    let brk_limit = aspace::aspace().init_brk(brk_base, BRK_MAX_SIZE);
    let (entry, base) = match &interp {
        Some(i) => {
            let im = i.map(INTERP_BASE, 0)?;
            (im.entry, im.bias)
        }
        None => (pm.entry, 0),
    };

    // The main stack, with a reserved guard page below it, at its usual place; anywhere free
    // when that is taken (as when this core runs under another one: self-hosting).
    let (rw, anon) = (PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    let wanted = CLIENT_STACK_TOP - CLIENT_STACK_SIZE;
    let stack_low = match aspace::map_client(CLIENT_STACK_SIZE, wanted, true, aspace::ADDR_TOP, rw, anon, -1, 0) {
        Ok(low) => {
            aspace::aspace().reserve(low - PAGE_SIZE, low);
            low
        }
        Err(_) => aspace::map_client(CLIENT_STACK_SIZE, 0, false, CLIENT_STACK_TOP, rw, anon, -1, 0)
            .map_err(LoadError::NoStack)?,
    };
    let stack_top = stack_low + CLIENT_STACK_SIZE;

    let mut random = [0u8; 16];
    sys::getrandom(&mut random).map_err(|e| LoadError::Io(String::from("getrandom"), e))?;
    // SAFETY: the caller passes the core's own AT_NULL-terminated auxv (or null).
    let host = unsafe { self::host_auxv(host_auxv) };
    let phnum = prog.header.e_phnum as u64;
    let auxv = client_auxv(machine, &host, pm.phdr, phnum, base, pm.entry);
    let argv: &[&str] = if args.is_empty() { &[exe] } else { args };
    let contents = StackContents { argv, envp, execfn: exe, platform: platform_of(machine), random, auxv: &auxv };
    // SAFETY: [stack_low, stack_top) was just mapped read-write for the client and no
    // Rust object lives there.
    let mem = unsafe { core::slice::from_raw_parts_mut(stack_low as *mut u8, CLIENT_STACK_SIZE as usize) };
    let sp = build_stack(mem, stack_top, &contents).map_err(|_| LoadError::ArgsTooLong)?;

    let img = ClientImage {
        entry,
        sp,
        brk_base,
        brk_limit,
        exe_path: prog.real_path.clone(),
        exe_entry: pm.entry,
        exe_bias: pm.bias,
        phdr: pm.phdr,
        phnum,
        base,
        interp: interp_path,
        stack_low,
        stack_top,
    };
    CLIENT.call_once(|| img.clone());
    Ok(img)
}

#[cfg(test)]
mod tests;
