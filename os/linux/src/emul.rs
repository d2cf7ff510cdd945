//! System calls the core emulates instead of passing them to the kernel: the memory-map family
//! and brk (through the address-space manager, so that the client never maps over the core),
//! arch_prctl (the guest's TLS registers live in the guest state, not in the host's), readlink
//! of `/proc/self/exe` (the client's path, not the tool's), the signal calls (the guest's
//! dispositions, masks and alternate stacks live in the core's `signals`/`threads`), rseq (refused, so that glibc does not register an area the
//! kernel would write behind the JIT's back) and the exits.

use core::sync::atomic::{AtomicU64, Ordering};

use vg_core::arch::SyscallOutcome;
use vg_core::signals::{self, GuestSigAction, bit};
use vg_core::threads;
use vg_core::aspace::{self, ADDR_TOP, PAGE_SIZE, page_up};

use crate::{errno, raw_syscall};

/// One emulated call: the guest state, the arguments, and the guest's TLS accessors.
pub struct Call<'a> {
    pub state: &'a mut [u8],
    pub nr: u64,
    pub args: [u64; 6],
    pub tls_base: fn(&[u8]) -> u64,
    pub set_tls_base: fn(&mut [u8], u64),
    /// The guest's stack pointer (sigaltstack: is the thread on its alternate stack?), its
    /// offset in the state (a forked child's new stack), and the pc of the call.
    pub sp: u64,
    pub sp_offset: u32,
    pub pc: u64,
}

fn ret(v: u64) -> SyscallOutcome {
    SyscallOutcome::Return(v)
}
fn err(e: i32) -> SyscallOutcome {
    SyscallOutcome::Return(errno(e))
}
fn is_err(r: u64) -> bool {
    r > (-4096i64) as u64
}

// Linux ABI constants used below.
pub const EPERM: i32 = 1;
pub const EFAULT: i32 = 14;
pub const EEXIST: i32 = 17;
pub const EINVAL: i32 = 22;
pub const ENOMEM: i32 = 12;
pub const ENOSYS: i32 = 38;
const MAP_FIXED: u64 = 0x10;
const MAP_32BIT: u64 = 0x40;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;
const MREMAP_DONTUNMAP: u64 = 4;

pub fn exit(c: &mut Call<'_>) -> SyscallOutcome {
    SyscallOutcome::ExitThread(c.args[0] as i32)
}

pub fn exit_group(c: &mut Call<'_>) -> SyscallOutcome {
    SyscallOutcome::ExitGroup(c.args[0] as i32)
}

pub fn rseq(_: &mut Call<'_>) -> SyscallOutcome {
    err(ENOSYS)
}

pub fn brk(c: &mut Call<'_>) -> SyscallOutcome {
    let old = aspace::aspace().brk().map(|b| b.cur);
    let new = aspace::client_brk(c.args[0]);
    if let (Some(ev), Some(old)) = (vg_core::tool::mem_events(), old) {
        if new > old {
            ev.new_mem_brk(old, new - old);
        } else if new < old {
            ev.die_mem_brk(new, old - new);
        }
    }
    ret(new)
}

/// mmap: the address-space manager picks the place (or vets a fixed one); the kernel maps.
pub fn mmap(c: &mut Call<'_>) -> SyscallOutcome {
    let [addr, len, prot, flags, fd, off] = c.args;
    if len == 0 || off % PAGE_SIZE != 0 {
        return err(EINVAL);
    }
    let plen = page_up(len);
    if plen == 0 || plen >= ADDR_TOP {
        return err(ENOMEM);
    }
    let (prot32, flags32, fd32) = (prot as u32, flags as u32, fd as i32);
    if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
        if addr % PAGE_SIZE != 0 {
            return err(EINVAL);
        }
        // Space we think free may hold a core mapping made since the last look.
        if aspace::aspace().accessible_extent(addr, plen, 0) != plen && aspace::sync().is_err() {
            return err(ENOMEM);
        }
        if !aspace::aspace().is_client_ok(addr, plen) {
            return err(if flags & MAP_FIXED == 0 { EEXIST } else { ENOMEM });
        }
        let r = raw_syscall(c.nr, c.args);
        if !is_err(r) {
            aspace::notify_client_mmap(r, len, prot32, flags32, fd32, off);
            vg_core::tool::mem_events().inspect(|ev| ev.new_mem_mmap(r, plen, prot32));
        }
        return ret(r);
    }
    let limit = if flags & MAP_32BIT != 0 { 0x8000_0000 } else { ADDR_TOP };
    match aspace::map_client(len, addr, false, limit, prot32, flags32 & !(MAP_32BIT as u32), fd32, off) {
        Ok(a) => {
            vg_core::tool::mem_events().inspect(|ev| ev.new_mem_mmap(a, plen, prot32));
            ret(a)
        }
        Err(e) => err(e),
    }
}

pub fn munmap(c: &mut Call<'_>) -> SyscallOutcome {
    let [addr, len, ..] = c.args;
    if addr % PAGE_SIZE != 0 || len == 0 || addr.checked_add(len).is_none_or(|e| e > ADDR_TOP) {
        return err(EINVAL);
    }
    if aspace::aspace().overlaps_core(addr, len) {
        return err(EINVAL);
    }
    let r = raw_syscall(c.nr, c.args);
    if !is_err(r) {
        aspace::notify_munmap(addr, len);
        vg_core::tool::mem_events().inspect(|ev| ev.die_mem_munmap(addr, page_up(len)));
    }
    ret(r)
}

pub fn mprotect(c: &mut Call<'_>) -> SyscallOutcome {
    let [addr, len, prot, ..] = c.args;
    if addr % PAGE_SIZE != 0 {
        return err(EINVAL);
    }
    if aspace::aspace().overlaps_core(addr, len) {
        return err(ENOMEM);
    }
    let r = raw_syscall(c.nr, c.args);
    if !is_err(r) {
        aspace::notify_mprotect(addr, len, prot as u32);
    }
    ret(r)
}

pub fn madvise(c: &mut Call<'_>) -> SyscallOutcome {
    let [addr, len, ..] = c.args;
    if aspace::aspace().overlaps_core(addr, len) {
        return err(EINVAL);
    }
    ret(raw_syscall(c.nr, c.args))
}

/// mremap: shrink or grow in place when the manager says the space after is free; otherwise
/// (with MREMAP_MAYMOVE) move to a place the manager picks, with MREMAP_FIXED.
pub fn mremap(c: &mut Call<'_>) -> SyscallOutcome {
    let [old, old_len, new_len, flags, new_addr, _] = c.args;
    if old % PAGE_SIZE != 0 || new_len == 0 || flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
        return err(EINVAL);
    }
    // DONTUNMAP leaves the old range mapped: not modelled yet.
    if flags & MREMAP_DONTUNMAP != 0 {
        return err(EINVAL);
    }
    let (pold, pnew) = (page_up(old_len), page_up(new_len));
    if pnew >= ADDR_TOP || aspace::aspace().overlaps_core(old, old_len) {
        return err(EFAULT);
    }
    if aspace::sync().is_err() {
        return err(ENOMEM);
    }
    let moved = |at: u64| {
        let r = raw_syscall(c.nr, [old, old_len, new_len, MREMAP_MAYMOVE | MREMAP_FIXED, at, 0]);
        if !is_err(r) {
            aspace::aspace().record_mremap(old, old_len, r, new_len);
            vg_core::tool::mem_events().inspect(|ev| ev.copy_mem_mremap(old, r, old_len.min(new_len), new_len));
        }
        ret(r)
    };
    if flags & MREMAP_FIXED != 0 {
        if flags & MREMAP_MAYMOVE == 0 || new_addr % PAGE_SIZE != 0 {
            return err(EINVAL);
        }
        if !aspace::aspace().is_client_ok(new_addr, pnew) {
            return err(ENOMEM);
        }
        return moved(new_addr);
    }
    if pnew <= pold || aspace::aspace().is_free(old + pold, pnew - pold) {
        let r = raw_syscall(c.nr, [old, old_len, new_len, 0, 0, 0]);
        if !is_err(r) {
            aspace::aspace().record_mremap(old, old_len, old, new_len);
            vg_core::tool::mem_events().inspect(|ev| ev.copy_mem_mremap(old, old, old_len.min(new_len), new_len));
            return ret(r);
        }
        if flags & MREMAP_MAYMOVE == 0 {
            return ret(r);
        }
    } else if flags & MREMAP_MAYMOVE == 0 {
        return err(ENOMEM);
    }
    match aspace::find_client_space(pnew, 0, false) {
        Some(at) => moved(at),
        None => err(ENOMEM),
    }
}

// --- arch_prctl -----------------------------------------------------------------------------

const ARCH_SET_GS: u64 = 0x1001;
const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;
const ARCH_GET_GS: u64 = 0x1004;

/// The guest's gs base. The `GuestArch` trait has no gs accessor yet, so it is kept here (one
/// per process: threads are not emulated yet); guest code that addresses through %gs does not
/// see it until the trait grows `gs_base`/`set_gs_base`.
static GS_BASE: AtomicU64 = AtomicU64::new(0);

/// Store a u64 into guest memory if the client may write there.
fn put_u64(addr: u64, v: u64) -> Result<(), i32> {
    if !aspace::aspace().is_client_writable(addr, 8) {
        return Err(EFAULT);
    }
    // SAFETY: [addr, addr+8) is writable client memory (guest and core share the address space).
    unsafe { core::ptr::write_unaligned(addr as *mut u64, v) };
    Ok(())
}

/// Read a u64 from guest memory if it is readable client memory.
fn get_u64(addr: u64) -> Result<u64, i32> {
    if !aspace::is_client_readable(addr, 8) {
        return Err(EFAULT);
    }
    // SAFETY: [addr, addr+8) is readable client memory.
    Ok(unsafe { core::ptr::read_unaligned(addr as *const u64) })
}

pub fn arch_prctl(c: &mut Call<'_>) -> SyscallOutcome {
    let [code, addr, ..] = c.args;
    let done = |r: Result<(), i32>| match r {
        Ok(()) => ret(0),
        Err(e) => err(e),
    };
    match code {
        ARCH_SET_FS | ARCH_SET_GS if addr >= ADDR_TOP => err(EPERM),
        ARCH_SET_FS => {
            (c.set_tls_base)(c.state, addr);
            ret(0)
        }
        ARCH_SET_GS => {
            GS_BASE.store(addr, Ordering::Relaxed);
            ret(0)
        }
        ARCH_GET_FS => done(put_u64(addr, (c.tls_base)(c.state))),
        ARCH_GET_GS => done(put_u64(addr, GS_BASE.load(Ordering::Relaxed))),
        _ => err(EINVAL),
    }
}

// --- readlink of /proc/self/exe ---------------------------------------------------------------

/// A guest C string (at most 4096 bytes, all readable client memory), if valid UTF-8.
pub(crate) fn guest_cstr(addr: u64) -> Option<&'static str> {
    let n = aspace::readable_extent(addr, 4096) as usize;
    // SAFETY: [addr, addr+n) is readable client memory; the guest could change it concurrently
    // only from another thread, which the single-threaded core does not run meanwhile.
    let bytes = unsafe { core::slice::from_raw_parts(addr as *const u8, n) };
    let len = bytes.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&bytes[..len]).ok()
}

/// Whether `path` names this process's executable link.
pub(crate) fn is_self_exe(path: &str, pid: u64) -> bool {
    let Some(rest) = path.strip_prefix("/proc/").and_then(|r| r.strip_suffix("/exe")) else { return false };
    rest == "self" || rest == "thread-self" || rest.parse::<u64>() == Ok(pid)
}

/// Answer readlink for the client's executable: its path, truncated to `size`, no NUL.
fn answer_exe(buf: u64, size: u64) -> Option<SyscallOutcome> {
    let exe = vg_core::loader::client()?.exe_path.as_bytes();
    if size as i64 <= 0 {
        return Some(err(EINVAL));
    }
    let n = exe.len().min(size as usize);
    if !aspace::aspace().is_client_writable(buf, n as u64) {
        return Some(err(EFAULT));
    }
    // SAFETY: [buf, buf+n) is writable client memory.
    unsafe { core::ptr::copy_nonoverlapping(exe.as_ptr(), buf as *mut u8, n) };
    Some(ret(n as u64))
}

fn our_pid() -> u64 {
    raw_syscall(syscalls::x86_64::Sysno::getpid as u64, [0; 6])
}

/// readlink/readlinkat of the executable's link: the client's path; anything else: the kernel.
/// (Only an absolute path can name /proc/self/exe whatever readlinkat's directory is.)
fn readlink_common(c: &mut Call<'_>, path: u64, buf: u64, size: u64) -> SyscallOutcome {
    if let Some(p) = guest_cstr(path)
        && is_self_exe(p, our_pid())
        && let Some(out) = answer_exe(buf, size)
    {
        return out;
    }
    ret(raw_syscall(c.nr, c.args))
}

pub fn readlink(c: &mut Call<'_>) -> SyscallOutcome {
    let [path, buf, size, ..] = c.args;
    readlink_common(c, path, buf, size)
}

pub fn readlinkat(c: &mut Call<'_>) -> SyscallOutcome {
    let [_dirfd, path, buf, size, ..] = c.args;
    readlink_common(c, path, buf, size)
}

// --- signals --------------------------------------------------------------------------------

/// Signals the guest can never block.
const UNBLOCKABLE: u64 = bit(SIGKILL as i32) | bit(SIGSTOP as i32) | bit(signals::SIG_VGKILL);
const SIGKILL: u64 = 9;
const SIGSTOP: u64 = 19;
pub const EINTR: i32 = 4;
pub const EAGAIN: i32 = 11;
const SS_ONSTACK: i32 = 1;
const SS_DISABLE: i32 = 2;
const SS_AUTODISARM: i32 = 1 << 31;
const MINSIGSTKSZ: u64 = 2048;

/// Read `n` u64 words of guest memory at `addr`.
fn get_words<const N: usize>(addr: u64) -> Result<[u64; N], i32> {
    let mut w = [0u64; N];
    for (i, v) in w.iter_mut().enumerate() {
        *v = get_u64(addr + 8 * i as u64)?;
    }
    Ok(w)
}

pub fn rt_sigaction(c: &mut Call<'_>) -> SyscallOutcome {
    let [sig, act, oact, sigsetsize, ..] = c.args;
    if sigsetsize != 8 || !signals::valid_guest_signal(sig) || (act != 0 && (sig == SIGKILL || sig == SIGSTOP)) {
        return err(EINVAL);
    }
    let new = if act != 0 {
        match get_words::<4>(act) {
            Ok([handler, flags, restorer, mask]) => Some(GuestSigAction { handler, flags, restorer, mask }),
            Err(e) => return err(e),
        }
    } else {
        None
    };
    if oact != 0 && !aspace::aspace().is_client_writable(oact, 32) {
        return err(EFAULT);
    }
    let old = signals::set_action(sig as i32, new);
    if oact != 0 {
        for (i, w) in [old.handler, old.flags, old.restorer, old.mask].iter().enumerate() {
            if let Err(e) = put_u64(oact + 8 * i as u64, *w) {
                return err(e);
            }
        }
    }
    ret(0)
}

pub fn rt_sigprocmask(c: &mut Call<'_>) -> SyscallOutcome {
    let [how, set, oset, sigsetsize, ..] = c.args;
    if sigsetsize != 8 {
        return err(EINVAL);
    }
    let new = if set != 0 {
        match get_u64(set) {
            Ok(v) => Some(v),
            Err(e) => return err(e),
        }
    } else {
        None
    };
    let t = threads::current();
    let old = t.mask;
    let mask = match (new, how) {
        (None, _) => old,
        (Some(s), 0) => old | s,
        (Some(s), 1) => old & !s,
        (Some(s), 2) => s,
        _ => return err(EINVAL),
    };
    if oset != 0
        && let Err(e) = put_u64(oset, old)
    {
        return err(e);
    }
    t.mask = mask & !UNBLOCKABLE;
    ret(0)
}

pub fn rt_sigreturn(_: &mut Call<'_>) -> SyscallOutcome {
    SyscallOutcome::SigReturn
}

/// sigaltstack: the thread's alternate stack (`stack_t`: sp, flags, size).
pub fn sigaltstack(c: &mut Call<'_>) -> SyscallOutcome {
    let [ss, oss, ..] = c.args;
    let t = threads::current();
    let (sp, flags, size) = t.altstack;
    let enabled = size != 0 && flags & SS_DISABLE == 0;
    let on = enabled && c.sp > sp && c.sp - sp <= size;
    let new = if ss != 0 {
        match get_words::<3>(ss) {
            Ok(w) => Some(w),
            Err(e) => return err(e),
        }
    } else {
        None
    };
    if oss != 0 {
        let f = if on { SS_ONSTACK } else if !enabled { SS_DISABLE } else { 0 } | (flags & SS_AUTODISARM);
        if !aspace::aspace().is_client_writable(oss, 24) {
            return err(EFAULT);
        }
        let _ = put_u64(oss, if enabled { sp } else { 0 });
        let _ = put_u64(oss + 8, f as u32 as u64);
        let _ = put_u64(oss + 16, if enabled { size } else { 0 });
    }
    if let Some([nsp, nflags, nsize]) = new {
        let nflags = nflags as i32;
        if on {
            return err(EPERM);
        }
        if nflags & !(SS_DISABLE | SS_ONSTACK | SS_AUTODISARM) != 0 {
            return err(EINVAL);
        }
        t.altstack = if nflags & SS_DISABLE != 0 {
            (0, SS_DISABLE, 0)
        } else if nsize < MINSIGSTKSZ {
            return err(ENOMEM);
        } else {
            (nsp, nflags & SS_AUTODISARM, nsize)
        };
    }
    ret(0)
}

/// rt_sigsuspend: wait with the given mask; the handler that ends the wait returns to the old
/// mask (kept in the thread until the frame is built).
pub fn rt_sigsuspend(c: &mut Call<'_>) -> SyscallOutcome {
    let [set, size, ..] = c.args;
    if size != 8 {
        return err(EINVAL);
    }
    let new = match get_u64(set) {
        Ok(v) => v & !UNBLOCKABLE,
        Err(e) => return err(e),
    };
    let t = threads::current();
    if t.suspend_saved.is_none() {
        t.suspend_saved = Some(t.mask);
    }
    t.mask = new;
    ret(vg_core::scheduler::blocking_syscall(c.nr, c.args))
}

/// rt_sigpending: signals caught for the thread or process and held back by the mask.
pub fn rt_sigpending(c: &mut Call<'_>) -> SyscallOutcome {
    let [set, size, ..] = c.args;
    if size != 8 {
        return err(EINVAL);
    }
    let slot = threads::current_slot();
    let pending = threads::SLOT_PENDING[slot].load(Ordering::Relaxed) | signals::PROC_PENDING.load(Ordering::Relaxed);
    match put_u64(set, pending & threads::current().mask & !UNBLOCKABLE) {
        Ok(()) => ret(0),
        Err(e) => err(e),
    }
}

/// rt_sigtimedwait: a signal of the set already caught by the core is answered at once;
/// otherwise the kernel waits (the set is blocked by the guest, so the kernel keeps it).
pub fn rt_sigtimedwait(c: &mut Call<'_>) -> SyscallOutcome {
    let [set, info, _timeout, size, ..] = c.args;
    if size != 8 {
        return err(EINVAL);
    }
    let want = match get_u64(set) {
        Ok(v) => v & !UNBLOCKABLE,
        Err(e) => return err(e),
    };
    if let Some((sig, si)) = signals::take_pending(threads::current_slot(), !want) {
        if info != 0 {
            if !aspace::aspace().is_client_writable(info, si.len() as u64) {
                return err(EFAULT);
            }
            // SAFETY: [info, info+128) is writable client memory (checked above).
            unsafe { core::ptr::copy_nonoverlapping(si.as_ptr(), info as *mut u8, si.len()) };
        }
        return ret(sig as u64);
    }
    ret(vg_core::scheduler::blocking_syscall(c.nr, c.args))
}

/// set_tid_address: the word zeroed and woken when the thread exits.
pub fn set_tid_address(c: &mut Call<'_>) -> SyscallOutcome {
    let t = threads::current();
    t.clear_child_tid = c.args[0];
    ret(t.tid as u64)
}
