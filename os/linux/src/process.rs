//! Processes and file descriptors as the guest sees them: clone (threads go to the scheduler;
//! fork and vfork are made as a fork), execve (natively, or under the tool again with
//! `--trace-children=yes`), the descriptor limit that keeps the core's descriptors out of the
//! guest's way, `/proc/self/exe` and `/proc/self/auxv` opened as the client's, and
//! `--track-fds=yes`.
//!
//! Depends on `vg-core` (threads, signals, options, log, the scheduler's blocking calls).

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use syscalls::x86_64::Sysno as S;
use vg_core::arch::SyscallOutcome;
use vg_core::aspace;
use vg_core::log::SAFE_FD_MIN;
use vg_core::scheduler::blocking_syscall;

use crate::emul::{Call, EFAULT, EINVAL, EPERM, guest_cstr, is_self_exe};
use crate::{errno, raw_syscall};

const CLONE_VM: u64 = 0x100;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_THREAD: u64 = 0x10000;
const EBADF: i32 = 9;
const ENOSYS: i32 = 38;
const EMFILE: i32 = 24;
const EACCES: i32 = 13;

fn ret(v: u64) -> SyscallOutcome {
    SyscallOutcome::Return(v)
}
fn err(e: i32) -> SyscallOutcome {
    SyscallOutcome::Return(errno(e))
}
fn is_err(r: u64) -> bool {
    r > (-4096i64) as u64
}

// --- clone, fork, vfork ---------------------------------------------------------------------

/// clone(flags, stack, parent_tid, child_tid, tls): a thread is the scheduler's business; any
/// other clone is a fork (CLONE_VM|CLONE_VFORK, as posix_spawn uses it, runs as a fork too:
/// the child gets its own copy of memory, as under Valgrind).
pub fn clone(c: &mut Call<'_>) -> SyscallOutcome {
    let [flags, stack, ptid, ctid, tls, _] = c.args;
    if flags & CLONE_THREAD != 0 {
        if flags & (CLONE_VM | CLONE_SIGHAND) != CLONE_VM | CLONE_SIGHAND {
            return err(EINVAL);
        }
        return SyscallOutcome::NewThread { flags, stack, parent_tid: ptid, child_tid: ctid, tls };
    }
    if flags & CLONE_VM != 0 && flags & CLONE_VFORK == 0 {
        // A process sharing our memory would run guest code outside the core.
        vg_core::umsg!("Unsupported clone() flags: {flags:#x}");
        return err(EINVAL);
    }
    let tls = (flags & CLONE_SETTLS != 0).then_some(tls);
    fork_common(c, flags & !(CLONE_VM | CLONE_VFORK | CLONE_SETTLS), stack, ptid, ctid, tls)
}

/// clone3 is refused so that glibc falls back to clone, whose arguments are in registers.
pub fn clone3(_: &mut Call<'_>) -> SyscallOutcome {
    err(ENOSYS)
}

pub fn fork(c: &mut Call<'_>) -> SyscallOutcome {
    fork_common(c, 17, 0, 0, 0, None)
}

/// fork with `flags` (exit signal in the low byte). Made with the big lock held, so that the
/// child, which has only the forking thread, inherits a lock nobody else holds.
fn fork_common(c: &mut Call<'_>, flags: u64, stack: u64, ptid: u64, ctid: u64, tls: Option<u64>) -> SyscallOutcome {
    let r = raw_syscall(S::clone as u64, [flags, 0, ptid, ctid, 0, 0]);
    if r != 0 {
        return ret(r);
    }
    vg_core::threads::after_fork_child();
    vg_core::log::reset_pid();
    vg_core::signals::PROC_PENDING.store(0, Ordering::Relaxed);
    if vg_core::options::current().child_silent_after_fork {
        vg_core::log::set_fd(-1);
    }
    if stack != 0 {
        let o = c.sp_offset as usize;
        c.state[o..o + 8].copy_from_slice(&stack.to_le_bytes());
    }
    if let Some(t) = tls {
        (c.set_tls_base)(c.state, t);
    }
    ret(0)
}

// --- execve ---------------------------------------------------------------------------------

/// The NULL-terminated array of pointers at `addr` in guest memory (at most 4096 entries).
fn guest_ptr_array(addr: u64) -> Option<Vec<u64>> {
    let mut v = Vec::new();
    if addr == 0 {
        return Some(v);
    }
    for i in 0..4096u64 {
        let a = addr + 8 * i;
        if !aspace::is_client_readable(a, 8) {
            return None;
        }
        // SAFETY: 8 readable bytes of client memory (checked above).
        let p = unsafe { core::ptr::read_unaligned(a as *const u64) };
        if p == 0 {
            return Some(v);
        }
        v.push(p);
    }
    None
}

/// `VALGRIND_LAUNCHER` from the tool's own environment (the launcher sets it).
fn launcher() -> Option<String> {
    let fd = vg_core::syscall::open("/proc/self/environ", vg_core::syscall::O_RDONLY | vg_core::syscall::O_CLOEXEC, 0).ok()?;
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = vg_core::syscall::read(fd, &mut buf) {
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let _ = vg_core::syscall::close(fd);
    data.split(|&b| b == 0)
        .find_map(|kv| kv.strip_prefix(b"VALGRIND_LAUNCHER="))
        .and_then(|v| core::str::from_utf8(v).ok())
        .map(String::from)
}

/// Whether `--trace-children-skip` names this program.
fn skipped(path: &str) -> bool {
    vg_core::options::current().trace_children_skip.iter().any(|p| vg_core::options::wildcard_match(p, path))
}

/// execve: natively (the tool ends with the image), or with `--trace-children=yes` through the
/// launcher with the same options, so that the new program runs under the tool too.
pub fn execve(c: &mut Call<'_>) -> SyscallOutcome {
    let [path, argv, envp, ..] = c.args;
    let opts = vg_core::options::current();
    let Some(p) = guest_cstr(path) else { return err(EFAULT) };
    if !opts.trace_children || skipped(p) {
        return ret(blocking_syscall(c.nr, c.args));
    }
    // The kernel's own checks first, so that execvp's search of PATH still works.
    const X_OK: u64 = 1;
    let r = raw_syscall(S::faccessat as u64, [(-100i64) as u64, path, X_OK, 0, 0, 0]);
    if is_err(r) {
        return ret(r);
    }
    let mut st = [0u8; 144];
    let r = raw_syscall(S::stat as u64, [path, st.as_mut_ptr() as u64, 0, 0, 0, 0]);
    let mode = u32::from_le_bytes(st[24..28].try_into().expect("4 bytes"));
    if is_err(r) || mode & 0o170000 != 0o100000 {
        return err(EACCES);
    }
    let (Some(args), Some(launcher)) = (guest_ptr_array(argv), launcher()) else {
        return err(EFAULT);
    };
    let mut strings: Vec<Vec<u8>> = Vec::new();
    let mut own = |s: &str| {
        let mut v = Vec::from(s.as_bytes());
        v.push(0);
        strings.push(v);
    };
    own(&launcher);
    for o in &opts.given {
        own(o);
    }
    own(p);
    let mut ptrs: Vec<u64> = strings.iter().map(|s| s.as_ptr() as u64).collect();
    ptrs.extend(args.iter().skip(1));
    ptrs.push(0);
    ret(blocking_syscall(c.nr, [ptrs[0], ptrs.as_ptr() as u64, envp, 0, 0, 0]))
}

// --- file descriptors ---------------------------------------------------------------------

/// The guest's RLIMIT_NOFILE (soft, hard): at most the first descriptor the core keeps for
/// itself, so that the guest's descriptors never reach the core's.
static NOFILE: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
const RLIMIT_NOFILE: u64 = 7;

fn nofile() -> (u64, u64) {
    if NOFILE[0].load(Ordering::Relaxed) == 0 {
        let mut lim = [0u64; 2];
        let _ = raw_syscall(S::prlimit64 as u64, [0, RLIMIT_NOFILE, 0, lim.as_mut_ptr() as u64, 0, 0]);
        let cap = SAFE_FD_MIN as u64;
        NOFILE[0].store(lim[0].min(cap), Ordering::Relaxed);
        NOFILE[1].store(lim[1].min(cap), Ordering::Relaxed);
    }
    (NOFILE[0].load(Ordering::Relaxed), NOFILE[1].load(Ordering::Relaxed))
}

/// The lowest descriptor the guest may not use.
pub fn fd_limit() -> u64 {
    nofile().0
}

/// Whether `fd` is one the guest may name.
fn guest_fd(fd: u64) -> bool {
    (fd as i32) >= 0 && (fd as i32 as u64) < fd_limit()
}

/// prlimit64(pid, resource, new, old): RLIMIT_NOFILE of this process is emulated.
pub fn prlimit64(c: &mut Call<'_>) -> SyscallOutcome {
    let [pid, res, new, old, ..] = c.args;
    let me = pid == 0 || pid == raw_syscall(S::getpid as u64, [0; 6]);
    if !me || res != RLIMIT_NOFILE {
        return ret(blocking_syscall(c.nr, c.args));
    }
    nofile_common(new, old)
}

pub fn getrlimit(c: &mut Call<'_>) -> SyscallOutcome {
    let [res, old, ..] = c.args;
    if res != RLIMIT_NOFILE {
        return ret(raw_syscall(c.nr, c.args));
    }
    nofile_common(0, old)
}

pub fn setrlimit(c: &mut Call<'_>) -> SyscallOutcome {
    let [res, new, ..] = c.args;
    if res != RLIMIT_NOFILE {
        return ret(raw_syscall(c.nr, c.args));
    }
    nofile_common(new, 0)
}

fn nofile_common(new: u64, old: u64) -> SyscallOutcome {
    let (soft, hard) = nofile();
    let n = if new != 0 {
        if !aspace::is_client_readable(new, 16) {
            return err(EFAULT);
        }
        // SAFETY: 16 readable bytes of client memory (checked above).
        let v = unsafe { core::ptr::read_unaligned(new as *const [u64; 2]) };
        if v[0] > v[1] {
            return err(EINVAL);
        }
        if v[1] > hard {
            return err(EPERM);
        }
        Some(v)
    } else {
        None
    };
    if old != 0 {
        if !aspace::aspace().is_client_writable(old, 16) {
            return err(EFAULT);
        }
        // SAFETY: 16 writable bytes of client memory (checked above).
        unsafe { core::ptr::write_unaligned(old as *mut [u64; 2], [soft, hard]) };
    }
    if let Some(v) = n {
        NOFILE[0].store(v[0].max(1), Ordering::Relaxed);
        NOFILE[1].store(v[1].max(1), Ordering::Relaxed);
    }
    ret(0)
}

/// The pc of the guest instruction that opened each descriptor (`--track-fds=yes`), 0 for
/// descriptors inherited from the parent.
static OPENED_AT: spin::Mutex<Vec<(u32, u64)>> = spin::Mutex::new(Vec::new());

/// After a call that returned a new descriptor: refuse one at or above the limit (as the
/// kernel would with that limit), and remember where it was opened.
pub fn new_fd(r: u64, pc: u64) -> u64 {
    if is_err(r) {
        return r;
    }
    if r >= fd_limit() {
        let _ = raw_syscall(S::close as u64, [r, 0, 0, 0, 0, 0]);
        return errno(EMFILE);
    }
    note_fd(r as u32, pc);
    r
}

fn note_fd(fd: u32, pc: u64) {
    let mut t = OPENED_AT.lock();
    t.retain(|e| e.0 != fd);
    t.push((fd, pc));
}

/// close: the core's descriptors are not the guest's to close.
pub fn close(c: &mut Call<'_>) -> SyscallOutcome {
    if !guest_fd(c.args[0]) {
        return err(EBADF);
    }
    let r = raw_syscall(c.nr, c.args);
    if !is_err(r) {
        OPENED_AT.lock().retain(|e| e.0 as u64 != c.args[0]);
    }
    ret(r)
}

/// dup2/dup3: the target must be a guest descriptor.
pub fn dup2(c: &mut Call<'_>) -> SyscallOutcome {
    if !guest_fd(c.args[1]) {
        return err(EBADF);
    }
    let r = raw_syscall(c.nr, c.args);
    ret(new_fd(r, c.pc))
}

/// fcntl: F_DUPFD/F_DUPFD_CLOEXEC must stay below the limit.
pub fn fcntl(c: &mut Call<'_>) -> SyscallOutcome {
    const F_DUPFD: u64 = 0;
    const F_DUPFD_CLOEXEC: u64 = 1030;
    let [_, cmd, arg, ..] = c.args;
    if cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC {
        if arg >= fd_limit() {
            return err(EINVAL);
        }
        return ret(new_fd(raw_syscall(c.nr, c.args), c.pc));
    }
    ret(blocking_syscall(c.nr, c.args))
}

/// open/openat/creat: `/proc/self/exe` is the client's executable and `/proc/self/auxv` the
/// client's auxiliary vector; the new descriptor is checked against the limit.
pub fn open_common(c: &mut Call<'_>, path_arg: usize) -> SyscallOutcome {
    if let Some(p) = guest_cstr(c.args[path_arg]) {
        let pid = raw_syscall(S::getpid as u64, [0; 6]);
        if is_self_exe(p, pid)
            && let Some(img) = vg_core::loader::client()
        {
            let mut args = c.args;
            let exe = alloc::format!("{}\0", img.exe_path);
            args[path_arg] = exe.as_ptr() as u64;
            let r = raw_syscall(c.nr, args);
            return ret(new_fd(r, c.pc));
        }
        if is_self_file(p, pid, "auxv") {
            return ret(new_fd(auxv_fd(), c.pc));
        }
    }
    ret(new_fd(blocking_syscall(c.nr, c.args), c.pc))
}

fn is_self_file(path: &str, pid: u64, file: &str) -> bool {
    let Some(rest) = path.strip_prefix("/proc/").and_then(|r| r.strip_suffix(file)).and_then(|r| r.strip_suffix('/')) else {
        return false;
    };
    rest == "self" || rest == "thread-self" || rest.parse::<u64>() == Ok(pid)
}

/// A read-only-in-spirit memory file holding the client's auxv.
fn auxv_fd() -> u64 {
    let name = b"auxv\0";
    let fd = raw_syscall(S::memfd_create as u64, [name.as_ptr() as u64, 1, 0, 0, 0, 0]);
    if is_err(fd) {
        return fd;
    }
    let data = vg_core::scheduler::client_auxv();
    let _ = raw_syscall(S::write as u64, [fd, data.as_ptr() as u64, data.len() as u64, 0, 0, 0]);
    let _ = raw_syscall(S::lseek as u64, [fd, 0, 0, 0, 0, 0]);
    fd
}

pub fn open(c: &mut Call<'_>) -> SyscallOutcome {
    open_common(c, 0)
}
pub fn openat(c: &mut Call<'_>) -> SyscallOutcome {
    open_common(c, 1)
}

/// Calls whose result is a new descriptor, made as they are and checked against the limit.
pub fn pass_fd(c: &mut Call<'_>) -> SyscallOutcome {
    ret(new_fd(blocking_syscall(c.nr, c.args), c.pc))
}

/// pipe/pipe2/socketpair: two new descriptors at `args[ptr]`.
pub fn pass_fd_pair(c: &mut Call<'_>) -> SyscallOutcome {
    let ptr = if c.nr == S::socketpair as u64 { c.args[3] } else { c.args[0] };
    let r = raw_syscall(c.nr, c.args);
    if !is_err(r) && aspace::is_client_readable(ptr, 8) {
        // SAFETY: 8 readable bytes of client memory (checked above).
        let fds = unsafe { core::ptr::read_unaligned(ptr as *const [i32; 2]) };
        if fds.iter().any(|&f| f as u64 >= fd_limit()) {
            for f in fds {
                let _ = raw_syscall(S::close as u64, [f as u64, 0, 0, 0, 0, 0]);
            }
            return err(EMFILE);
        }
        for f in fds {
            note_fd(f as u32, c.pc);
        }
    }
    ret(r)
}

/// `--track-fds=yes`: the guest's open descriptors at exit, in Valgrind's format.
pub fn report_open_fds() {
    let mut fds: Vec<u32> = Vec::new();
    let dir = vg_core::syscall::open("/proc/self/fd", vg_core::syscall::O_RDONLY | vg_core::syscall::O_CLOEXEC | 0o200000, 0);
    let Ok(dfd) = dir else { return };
    let mut buf = [0u8; 4096];
    loop {
        let n = raw_syscall(S::getdents64 as u64, [dfd as u64, buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0]);
        if is_err(n) || n == 0 {
            break;
        }
        let mut off = 0usize;
        while off < n as usize {
            let reclen = u16::from_le_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let name = &buf[off + 19..off + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if let Some(fd) = core::str::from_utf8(name).ok().and_then(|s| s.parse::<u32>().ok())
                && fd as i32 != dfd
                && (fd as u64) < fd_limit()
            {
                fds.push(fd);
            }
            off += reclen;
        }
    }
    let _ = vg_core::syscall::close(dfd);
    fds.sort_unstable();
    let std = fds.iter().filter(|&&f| f < 3).count();
    vg_core::umsg!("FILE DESCRIPTORS: {} open ({} std) at exit.", fds.len(), std);
    let opened = OPENED_AT.lock();
    for fd in fds {
        let mut target = [0u8; 512];
        let link = alloc::format!("/proc/self/fd/{fd}");
        let what = match vg_core::syscall::readlink(&link, &mut target) {
            Ok(n) => String::from_utf8_lossy(&target[..n]).into_owned(),
            Err(_) => String::new(),
        };
        vg_core::umsg!("Open file descriptor {fd}: {what}");
        match opened.iter().find(|e| e.0 == fd) {
            Some(&(_, pc)) => vg_core::umsg!("   at {pc:#X}: ???"),
            None => vg_core::umsg!("   <inherited from parent>"),
        }
        vg_core::umsg!("");
    }
}
