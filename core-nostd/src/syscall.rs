//! Raw Linux system calls for the core itself (no libc): thin wrappers over the `syscalls`
//! crate that take and return Rust types and report failures as [`Errno`] values. Guest system
//! calls are not made here (that is the OS layer's job); these are the core's own.
//!
//! Depends on nothing else in the core.

use core::ffi::CStr;
use core::sync::atomic::{AtomicUsize, Ordering};

pub use syscalls::{Errno, Sysno};
use syscalls::syscall;

/// Result of a system call: the kernel's value or its error number.
pub type SysResult<T> = Result<T, Errno>;

pub const AT_FDCWD: i32 = -100;

pub const O_RDONLY: i32 = 0;
pub const O_WRONLY: i32 = 1;
pub const O_RDWR: i32 = 2;
pub const O_CREAT: i32 = 0o100;
pub const O_TRUNC: i32 = 0o1000;
pub const O_APPEND: i32 = 0o2000;
pub const O_CLOEXEC: i32 = 0o2000000;

pub const PROT_NONE: usize = 0;
pub const PROT_READ: usize = 1;
pub const PROT_WRITE: usize = 2;
pub const PROT_EXEC: usize = 4;

pub const MAP_SHARED: usize = 0x01;
pub const MAP_PRIVATE: usize = 0x02;
pub const MAP_FIXED: usize = 0x10;
pub const MAP_ANONYMOUS: usize = 0x20;
pub const MAP_NORESERVE: usize = 0x4000;
pub const MAP_FIXED_NOREPLACE: usize = 0x10_0000;

/// `st_mode` file-type bits.
pub const S_IFMT: u32 = 0o170000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;

/// Bytes of anonymous memory the core has mapped through [`mmap`] so far (never decreases; the
/// `--stats=yes` "mmap-ed ANONYMOUS" figure).
static ANON_MAPPED: AtomicUsize = AtomicUsize::new(0);

/// Total bytes of anonymous memory mapped by the core since start-up.
pub fn anon_mapped_total() -> usize {
    ANON_MAPPED.load(Ordering::Relaxed)
}

/// Write some of `buf` to `fd`; returns how many bytes were written.
pub fn write(fd: i32, buf: &[u8]) -> SysResult<usize> {
    // SAFETY: the kernel reads at most buf.len() bytes from a valid slice.
    unsafe { syscall!(Sysno::write, fd, buf.as_ptr(), buf.len()) }
}

/// Write all of `buf` to `fd`, retrying on short writes and EINTR.
pub fn write_all(fd: i32, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Read into `buf`; returns how many bytes were read (0 at end of file).
pub fn read(fd: i32, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: the kernel writes at most buf.len() bytes into a valid mutable slice.
    unsafe { syscall!(Sysno::read, fd, buf.as_mut_ptr(), buf.len()) }
}

/// Read at most `buf.len()` bytes at file offset `off`.
pub fn pread(fd: i32, buf: &mut [u8], off: u64) -> SysResult<usize> {
    // SAFETY: as for `read`.
    unsafe { syscall!(Sysno::pread64, fd, buf.as_mut_ptr(), buf.len(), off) }
}

/// Open `path` relative to `dirfd`; returns the new file descriptor.
pub fn openat(dirfd: i32, path: &CStr, flags: i32, mode: u32) -> SysResult<i32> {
    // SAFETY: `path` is NUL-terminated and outlives the call.
    unsafe { syscall!(Sysno::openat, dirfd, path.as_ptr(), flags, mode) }.map(|fd| fd as i32)
}

/// Open `path` (a Rust string; relative paths are relative to the working directory).
pub fn open(path: &str, flags: i32, mode: u32) -> SysResult<i32> {
    with_cstr(path, |p| openat(AT_FDCWD, p, flags, mode))
}

pub fn close(fd: i32) -> SysResult<()> {
    // SAFETY: closing a descriptor has no memory-safety effect on the core.
    unsafe { syscall!(Sysno::close, fd) }.map(drop)
}

/// Duplicate `fd` onto the lowest free descriptor >= `min` (F_DUPFD_CLOEXEC).
pub fn dup_min(fd: i32, min: i32) -> SysResult<i32> {
    const F_DUPFD_CLOEXEC: i32 = 1030;
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) only creates a descriptor.
    unsafe { syscall!(Sysno::fcntl, fd, F_DUPFD_CLOEXEC, min) }.map(|r| r as i32)
}

/// Map memory; returns the mapped address. Anonymous mappings are counted for `--stats=yes`.
///
/// # Safety
/// With `MAP_FIXED` this replaces whatever was mapped at `addr`: the caller must own that range.
pub unsafe fn mmap(addr: usize, len: usize, prot: usize, flags: usize, fd: i32, off: u64) -> SysResult<usize> {
    // SAFETY: the caller vouches for the target range (see above); otherwise the kernel picks a
    // free range and nothing existing is touched.
    let r = unsafe { syscall!(Sysno::mmap, addr, len, prot, flags, fd, off) };
    if r.is_ok() && flags & MAP_ANONYMOUS != 0 {
        ANON_MAPPED.fetch_add(len, Ordering::Relaxed);
    }
    r
}

/// Take back `len` bytes from the anonymous-mapping count: for a mapping made larger than
/// needed (to align it) whose excess was unmapped at once.
pub(crate) fn uncount_anon(len: usize) {
    ANON_MAPPED.fetch_sub(len, Ordering::Relaxed);
}

/// Map `len` bytes of fresh private read-write memory anywhere.
pub fn mmap_anon(len: usize) -> SysResult<usize> {
    // SAFETY: no MAP_FIXED, so no existing mapping is affected.
    unsafe { mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) }
}

/// # Safety
/// Nothing may use the range afterwards.
pub unsafe fn munmap(addr: usize, len: usize) -> SysResult<()> {
    // SAFETY: the caller guarantees the range is no longer used.
    unsafe { syscall!(Sysno::munmap, addr, len) }.map(drop)
}

/// # Safety
/// Removing access from memory that Rust code still uses makes that code fault.
pub unsafe fn mprotect(addr: usize, len: usize, prot: usize) -> SysResult<()> {
    // SAFETY: the caller guarantees no live Rust reference relies on the removed permissions.
    unsafe { syscall!(Sysno::mprotect, addr, len, prot) }.map(drop)
}

/// End the whole process with `code`.
pub fn exit_group(code: i32) -> ! {
    // SAFETY: exit_group does not return.
    let _ = unsafe { syscall!(Sysno::exit_group, code) };
    unreachable_exit()
}

#[cold]
fn unreachable_exit() -> ! {
    // exit_group cannot fail; if it ever returns, stop rather than continue in a torn state.
    loop {
        core::hint::spin_loop();
    }
}

pub fn getpid() -> i32 {
    // SAFETY: no arguments, no memory effects.
    unsafe { syscall!(Sysno::getpid) }.map_or(0, |p| p as i32)
}

pub fn gettid() -> i32 {
    // SAFETY: no arguments, no memory effects.
    unsafe { syscall!(Sysno::gettid) }.map_or(0, |p| p as i32)
}

/// Send `sig` to process `pid`.
pub fn kill(pid: i32, sig: i32) -> SysResult<()> {
    // SAFETY: signals have no memory-safety effect on the caller beyond what handlers do.
    unsafe { syscall!(Sysno::kill, pid, sig) }.map(drop)
}

/// Send `sig` to thread `tid` of process `tgid`.
pub fn tgkill(tgid: i32, tid: i32, sig: i32) -> SysResult<()> {
    // SAFETY: as for `kill`.
    unsafe { syscall!(Sysno::tgkill, tgid, tid, sig) }.map(drop)
}

/// The kernel's `struct sigaction` (rt_sigaction ABI).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelSigaction {
    pub handler: usize,
    pub flags: u64,
    pub restorer: usize,
    pub mask: u64,
}

pub const SIG_DFL: usize = 0;

/// Install `act` for `sig` (if given) and return the previous action.
///
/// # Safety
/// A handler address must point to a function fit to run as a signal handler.
pub unsafe fn rt_sigaction(sig: i32, act: Option<&KernelSigaction>) -> SysResult<KernelSigaction> {
    let mut old = KernelSigaction::default();
    let new = act.map_or(core::ptr::null(), |a| a as *const KernelSigaction);
    // SAFETY: both structs are valid for the kernel's 8-byte signal-set size; the caller vouches
    // for the handler.
    unsafe { syscall!(Sysno::rt_sigaction, sig, new, &mut old as *mut KernelSigaction, 8) }?;
    Ok(old)
}

pub const SIG_BLOCK: i32 = 0;
pub const SIG_UNBLOCK: i32 = 1;
pub const SIG_SETMASK: i32 = 2;

/// Change the calling thread's signal mask (bit n-1 = signal n); returns the old mask.
pub fn rt_sigprocmask(how: i32, set: u64) -> SysResult<u64> {
    let mut old = 0u64;
    // SAFETY: both masks are valid 8-byte locations.
    unsafe { syscall!(Sysno::rt_sigprocmask, how, &set as *const u64, &mut old as *mut u64, 8) }?;
    Ok(old)
}

/// Read the target of symbolic link `path` into `buf`; returns its length (not NUL-terminated).
pub fn readlink(path: &str, buf: &mut [u8]) -> SysResult<usize> {
    with_cstr(path, |p| {
        // SAFETY: `p` is NUL-terminated; the kernel writes at most buf.len() bytes.
        unsafe { syscall!(Sysno::readlinkat, AT_FDCWD, p.as_ptr(), buf.as_mut_ptr(), buf.len()) }
    })
}

/// The kernel's `struct stat` for x86-64.
#[cfg(target_arch = "x86_64")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Stat {
    pub st_dev: u64,
    pub st_ino: u64,
    pub st_nlink: u64,
    pub st_mode: u32,
    pub st_uid: u32,
    pub st_gid: u32,
    pad0: u32,
    pub st_rdev: u64,
    pub st_size: i64,
    pub st_blksize: i64,
    pub st_blocks: i64,
    pub st_atime: i64,
    pub st_atime_nsec: i64,
    pub st_mtime: i64,
    pub st_mtime_nsec: i64,
    pub st_ctime: i64,
    pub st_ctime_nsec: i64,
    unused: [i64; 3],
}

/// The kernel's `struct stat` for AArch64 (the generic layout).
#[cfg(target_arch = "aarch64")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Stat {
    pub st_dev: u64,
    pub st_ino: u64,
    pub st_mode: u32,
    pub st_nlink: u32,
    pub st_uid: u32,
    pub st_gid: u32,
    pub st_rdev: u64,
    pad1: u64,
    pub st_size: i64,
    pub st_blksize: i32,
    pad2: i32,
    pub st_blocks: i64,
    pub st_atime: i64,
    pub st_atime_nsec: i64,
    pub st_mtime: i64,
    pub st_mtime_nsec: i64,
    pub st_ctime: i64,
    pub st_ctime_nsec: i64,
    unused: [u32; 2],
}

pub fn fstat(fd: i32) -> SysResult<Stat> {
    let mut st = Stat::default();
    // SAFETY: `st` has the kernel's struct stat layout for this architecture.
    unsafe { syscall!(Sysno::fstat, fd, &mut st as *mut Stat) }?;
    Ok(st)
}

/// `stat` of a path (following symbolic links).
pub fn stat(path: &str) -> SysResult<Stat> {
    let mut st = Stat::default();
    with_cstr(path, |p| {
        // SAFETY: `p` is NUL-terminated; `st` has the kernel's struct stat layout.
        unsafe { syscall!(Sysno::newfstatat, AT_FDCWD, p.as_ptr(), &mut st as *mut Stat, 0) }
    })?;
    Ok(st)
}

/// Run `f` with `s` as a NUL-terminated string (on the stack when short, else on the heap).
/// A string with an interior NUL cannot name a file: ENOENT.
pub fn with_cstr<R>(s: &str, f: impl FnOnce(&CStr) -> SysResult<R>) -> SysResult<R> {
    let bytes = s.as_bytes();
    if bytes.contains(&0) {
        return Err(Errno::ENOENT);
    }
    let mut stack = [0u8; 256];
    if bytes.len() < stack.len() {
        stack[..bytes.len()].copy_from_slice(bytes);
        let c = CStr::from_bytes_until_nul(&stack).map_err(|_| Errno::EINVAL)?;
        f(c)
    } else {
        let mut v = alloc::vec::Vec::with_capacity(bytes.len() + 1);
        v.extend_from_slice(bytes);
        v.push(0);
        let c = CStr::from_bytes_until_nul(&v).map_err(|_| Errno::EINVAL)?;
        f(c)
    }
}

/// The text of an error number as `strerror` gives it ("No such file or directory").
pub fn strerror(e: Errno) -> &'static str {
    e.description().unwrap_or("Unknown error")
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn open_read_fstat_close() {
        let fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC, 0).unwrap();
        let st = fstat(fd).unwrap();
        assert_eq!(st.st_mode & S_IFMT, S_IFREG);
        let mut hdr = [0u8; 4];
        assert_eq!(read(fd, &mut hdr).unwrap(), 4);
        assert_eq!(&hdr, b"\x7fELF");
        close(fd).unwrap();
        assert_eq!(close(fd), Err(Errno::EBADF));
    }

    #[test]
    fn errors_and_strerror() {
        assert_eq!(open("/nonexistent/x", O_RDONLY, 0), Err(Errno::ENOENT));
        assert_eq!(strerror(Errno::ENOENT), "No such file or directory");
        assert_eq!(stat("/").unwrap().st_mode & S_IFMT, S_IFDIR);
        let long = "/x".repeat(200);
        assert_eq!(stat(&long).err(), Some(Errno::ENOENT));
    }

    #[test]
    fn readlink_and_pid() {
        let mut buf = [0u8; 64];
        let n = readlink("/proc/self", &mut buf).unwrap();
        let pid: i32 = core::str::from_utf8(&buf[..n]).unwrap().parse().unwrap();
        assert_eq!(pid, getpid());
        assert_eq!(pid as u32, std::process::id());
    }

    #[test]
    fn mmap_counts_anonymous_bytes() {
        let before = anon_mapped_total();
        let p = mmap_anon(8192).unwrap();
        assert!(anon_mapped_total() >= before + 8192);
        // SAFETY: the page is ours and unused elsewhere.
        unsafe {
            *(p as *mut u64) = 7;
            mprotect(p, 4096, PROT_READ).unwrap();
            assert_eq!(*(p as *const u64), 7);
            munmap(p, 8192).unwrap();
        }
    }
}
