//! Stack traces of the running client (Valgrind's `m_stacktrace` and the run-time face of
//! `m_debuginfo`): the run's [`DebugInfo`], told about every executable file mapping of the
//! client and reading files through the core's raw system calls; the unwinder walking guest
//! stacks through memory the address-space manager says is readable; the stacks the client
//! registered (`VALGRIND_STACK_REGISTER`); and traces printed in Valgrind's format, honouring
//! `--num-callers=`, `--show-below-main=` and `--demangle=`.
//!
//! Uses: `debuginfo`, `aspace`, `syscall`, `threads`, `log`, `reportopts`, `redir::live` (told
//! about the same mappings).

use alloc::string::String;
use alloc::vec::Vec;

use crate::arch::GuestArch;
use crate::debuginfo::{DebugInfo, FileBytes, FileReader, MappingOps, FrameDesc, UnwindRegs, describe_stack, format_stack, get_stack_trace};
use crate::syscall;

/// Reads whole files with the core's system calls: maps regular files read-only (their pages
/// are shared with the page cache and only those touched cost memory), reads anything else.
pub struct SysFileReader;

impl FileReader for SysFileReader {
    fn read_file(&mut self, path: &str) -> Option<FileBytes> {
        let fd = syscall::open(path, syscall::O_RDONLY | syscall::O_CLOEXEC, 0).ok()?;
        let size = syscall::fstat(fd).map(|s| s.st_size.max(0) as usize).unwrap_or(0);
        // SAFETY: a fresh private read-only mapping chosen by the kernel replaces nothing.
        let mapped = (size > 0)
            .then(|| unsafe { syscall::mmap(0, size, syscall::PROT_READ, syscall::MAP_PRIVATE, fd, 0) }.ok())
            .flatten();
        let bytes = match mapped {
            // SAFETY: the mapping is ours alone and stays until the FileBytes drops it.
            Some(addr) => unsafe { FileBytes::from_mapping(addr as *const u8, size, &FILE_MAPPING) },
            None => FileBytes::from(read_fd(fd, size)),
        };
        let _ = syscall::close(fd);
        Some(bytes)
    }
}

static FILE_MAPPING: MappingOps = MappingOps { unmap: unmap_file, discard: discard_pages };

fn unmap_file(ptr: *const u8, len: usize) {
    // SAFETY: called once, when the FileBytes that owns this mapping is dropped.
    let _ = unsafe { syscall::munmap(ptr as usize, len) };
}

fn discard_pages(ptr: *const u8, len: usize) {
    const MADV_DONTNEED: usize = 4;
    // SAFETY: whole pages of a private read-only file mapping that was never written: dropping
    // them loses nothing, a later read faults them in from the file again.
    let _ = unsafe { syscalls::syscall!(syscalls::Sysno::madvise, ptr as usize, len, MADV_DONTNEED) };
}

/// Reads up to `size` bytes of `fd`. A file that shrinks under us gives what is there; one that
/// is not regular (size 0) gives nothing, which the readers treat as "no debug info".
fn read_fd(fd: i32, size: usize) -> Vec<u8> {
    let mut buf = alloc::vec![0u8; size];
    let mut got = 0;
    while got < size {
        match syscall::read(fd, &mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    buf.truncate(got);
    buf
}

static DEBUG_INFO: spin::Mutex<Option<DebugInfo>> = spin::Mutex::new(None);

/// Runs `f` on the run's debug information (created on first use with `--demangle=`).
pub fn with_debug_info<R>(f: impl FnOnce(&mut DebugInfo, &mut SysFileReader) -> R) -> R {
    let mut g = DEBUG_INFO.lock();
    let di = g.get_or_insert_with(|| DebugInfo::new(crate::reportopts::get().demangle));
    f(di, &mut SysFileReader)
}

const PROT_EXEC: u32 = 4;

/// The client mapped `[addr, addr+len)` with `prot`, from file `path` at `offset` if it is a
/// file mapping: whatever code was known there is gone, and an executable file mapping becomes
/// known to debug info and to the redirector.
pub fn notify_mmap(addr: u64, len: u64, prot: u32, path: Option<&str>, offset: u64) {
    if len == 0 {
        return;
    }
    notify_unmap(addr, len);
    if let Some(path) = path.filter(|_| prot & PROT_EXEC != 0) {
        with_debug_info(|di, _| di.notify_map(path, addr, len, offset));
        crate::redir::live::notify_map(path, addr, len, offset);
    }
}

/// The client unmapped `[addr, addr+len)`.
pub fn notify_unmap(addr: u64, len: u64) {
    with_debug_info(|di, _| di.notify_unmap(addr, len));
    crate::redir::live::notify_unmap(addr, len);
}

// ---------------------------------------------------------------------------------------------
// Client-registered stacks.

/// (id, start, end) of each stack registered with `VALGRIND_STACK_REGISTER`.
static STACKS: spin::Mutex<Vec<(u64, u64, u64)>> = spin::Mutex::new(Vec::new());
static NEXT_STACK_ID: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

/// Registers the stack `[start, end]` (either order, as the header allows); returns its id.
pub fn register_stack(start: u64, end: u64) -> u64 {
    let id = NEXT_STACK_ID.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    STACKS.lock().push((id, start.min(end), start.max(end)));
    id
}

/// Forgets stack `id` (unknown ids are ignored, as Valgrind does).
pub fn deregister_stack(id: u64) {
    STACKS.lock().retain(|s| s.0 != id);
}

/// Moves stack `id` to `[start, end]`.
pub fn change_stack(id: u64, start: u64, end: u64) {
    if let Some(s) = STACKS.lock().iter_mut().find(|s| s.0 == id) {
        s.1 = start.min(end);
        s.2 = start.max(end);
    }
}

/// The highest address the unwinder may walk to from `sp`: the end of the registered stack
/// holding it, else the end of the readable memory it is in.
fn stack_top(sp: u64) -> u64 {
    if let Some(&(_, _, end)) = STACKS.lock().iter().find(|s| s.1 <= sp && sp <= s.2) {
        return end;
    }
    sp + crate::aspace::readable_extent(sp, 1 << 30)
}

/// A word of guest memory, if the address-space manager says it is readable.
fn read_guest_word(addr: u64) -> Option<u64> {
    // SAFETY: read only after the manager says 8 bytes at addr are readable client memory.
    crate::aspace::is_client_readable(addr, 8).then(|| unsafe { core::ptr::read_unaligned(addr as *const u64) })
}

// ---------------------------------------------------------------------------------------------
// Traces.

/// The unwinder's view of a guest state, for code that is not generic over the guest (the
/// scheduler's reports); set by [`init`].
static REGS_OF: spin::Once<fn(&[u8]) -> UnwindRegs> = spin::Once::new();
static STATE_SIZE: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

fn regs_of<G: GuestArch>(st: &[u8]) -> UnwindRegs {
    UnwindRegs { pc: G::pc(st), sp: G::sp(st), fp: G::frame_pointer(st) }
}

/// Records the guest architecture for [`current_thread_trace`]. Called once at start-up.
pub fn init<G: GuestArch>() {
    REGS_OF.call_once(|| regs_of::<G>);
    STATE_SIZE.store(G::STATE_SIZE, core::sync::atomic::Ordering::Relaxed);
}

/// The code addresses of the stack from `regs` (at most `--num-callers=`).
pub fn trace_ips(regs: UnwindRegs) -> Vec<u64> {
    let max = crate::reportopts::get().stack.num_callers;
    let top = stack_top(regs.sp);
    with_debug_info(|di, rd| get_stack_trace(di, rd, regs, top, max, &mut read_guest_word))
}

/// The frames of `ips` as they are printed (inlined calls expanded, cut below `main`).
pub fn describe_ips(ips: &[u64]) -> Vec<FrameDesc> {
    let opts = crate::reportopts::get().stack;
    with_debug_info(|di, rd| describe_stack(di, rd, ips, opts))
}

/// The source frames at one code address, innermost first.
pub fn describe_ip(ip: u64) -> Vec<FrameDesc> {
    with_debug_info(|di, rd| di.describe(rd, ip))
}

/// The printed trace of `ips`: one `   at`/`   by` line per frame, each ending in a newline.
pub fn format_ips(ips: &[u64]) -> String {
    let mut s = String::new();
    for line in format_stack(&describe_ips(ips)) {
        s.push_str(&line);
        s.push('\n');
    }
    s
}

/// The printed trace of the guest state `st`.
pub fn format_state_trace<G: GuestArch>(st: &[u8]) -> String {
    format_ips(&trace_ips(regs_of::<G>(st)))
}

/// The printed trace of the current guest thread, stopped at `pc` (its state's pc may be
/// older when a report names a faulting instruction). Only `   at 0x..: ???` before [`init`].
pub fn current_thread_trace(pc: u64) -> String {
    let (Some(regs_of), true) = (REGS_OF.get(), crate::threads::running()) else {
        return alloc::format!("   at 0x{pc:X}: ???\n");
    };
    let size = STATE_SIZE.load(core::sync::atomic::Ordering::Relaxed) as usize;
    // SAFETY: the current thread's block holds at least one guest state; the caller holds the
    // big lock, so nothing writes it meanwhile.
    let st = unsafe { core::slice::from_raw_parts(crate::threads::current().state, size) };
    let regs = UnwindRegs { pc, ..regs_of(st) };
    format_ips(&trace_ips(regs))
}
