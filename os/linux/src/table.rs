//! The amd64-linux system-call table: for each call its name, what memory the kernel reads
//! (PRE) and writes (POST), named by parameter as Valgrind's messages name them
//! ("Syscall param write(buf) ..."), and how the core carries it out.
//!
//! The descriptions are data: the dispatcher turns them into address ranges for the tool
//! hooks in [`crate::observer`].

use syscalls::x86_64::Sysno as S;

use crate::emul;

/// How long a memory parameter is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Len {
    /// The value of argument `n`.
    Arg(u8),
    /// A fixed number of bytes (a struct).
    Bytes(u64),
    /// A NUL-terminated string (its bytes and the NUL).
    CStr,
    /// POST only: as many bytes as the call returned.
    Ret,
    /// `count(arg n) * size` bytes (arrays of structs, e.g. an iovec array).
    ArgTimes(u8, u64),
}

/// One memory parameter: `param` names it; its address is argument `ptr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemArg {
    pub param: &'static str,
    pub ptr: u8,
    pub len: Len,
    /// A null pointer is allowed and means "no such argument" (e.g. `oldact`).
    pub optional: bool,
}

const fn m(param: &'static str, ptr: u8, len: Len) -> MemArg {
    MemArg { param, ptr, len, optional: false }
}
const fn opt(param: &'static str, ptr: u8, len: Len) -> MemArg {
    MemArg { param, ptr, len, optional: true }
}

/// Handler of an emulated call: gets the guest state and arguments, returns the outcome.
pub type Handler = fn(&mut emul::Call<'_>) -> vg_core::arch::SyscallOutcome;

/// How the core carries a call out.
#[derive(Clone, Copy)]
pub enum How {
    /// Give it to the kernel unchanged.
    Pass,
    /// Emulate it in the core.
    Emul(Handler),
}

/// One entry of the table.
#[derive(Clone, Copy)]
pub struct SyscallDesc {
    pub nr: u64,
    pub name: &'static str,
    pub pre: &'static [MemArg],
    pub post: &'static [MemArg],
    pub how: How,
}

const fn pass(nr: S, name: &'static str, pre: &'static [MemArg], post: &'static [MemArg]) -> SyscallDesc {
    SyscallDesc { nr: nr as u64, name, pre, post, how: How::Pass }
}
const fn emul(nr: S, name: &'static str, pre: &'static [MemArg], post: &'static [MemArg], h: Handler) -> SyscallDesc {
    SyscallDesc { nr: nr as u64, name, pre, post, how: How::Emul(h) }
}

/// Sizes of kernel structures on x86-64.
const STAT: Len = Len::Bytes(144);
const TIMESPEC: Len = Len::Bytes(16);
const TIMEVAL: Len = Len::Bytes(16);
const UTSNAME: Len = Len::Bytes(390);
const RLIMIT: Len = Len::Bytes(16);
const SIGACTION: Len = Len::Bytes(32);
const SIGSET: Len = Len::Bytes(8);
const IOVEC: u64 = 16;

/// The table, sorted by number (checked by a test; looked up by binary search).
pub static TABLE: &[SyscallDesc] = &[
    pass(S::read, "read", &[], &[m("buf", 1, Len::Ret)]),
    pass(S::write, "write", &[m("buf", 1, Len::Arg(2))], &[]),
    pass(S::open, "open", &[m("filename", 0, Len::CStr)], &[]),
    pass(S::close, "close", &[], &[]),
    pass(S::stat, "stat", &[m("file_name", 0, Len::CStr)], &[m("buf", 1, STAT)]),
    pass(S::fstat, "fstat", &[], &[m("buf", 1, STAT)]),
    pass(S::lstat, "lstat", &[m("file_name", 0, Len::CStr)], &[m("buf", 1, STAT)]),
    pass(S::lseek, "lseek", &[], &[]),
    emul(S::mmap, "mmap", &[], &[], emul::mmap),
    emul(S::mprotect, "mprotect", &[], &[], emul::mprotect),
    emul(S::munmap, "munmap", &[], &[], emul::munmap),
    emul(S::brk, "brk", &[], &[], emul::brk),
    emul(S::rt_sigaction, "rt_sigaction", &[opt("act", 1, SIGACTION)], &[opt("oldact", 2, SIGACTION)], emul::rt_sigaction),
    emul(S::rt_sigprocmask, "rt_sigprocmask", &[opt("set", 1, SIGSET)], &[opt("oldset", 2, SIGSET)], emul::rt_sigprocmask),
    // ioctl's memory depends on the request; TCGETS and friends write a small struct.
    pass(S::ioctl, "ioctl", &[], &[]),
    pass(S::pread64, "pread64", &[], &[m("buf", 1, Len::Ret)]),
    pass(S::pwrite64, "pwrite64", &[m("buf", 1, Len::Arg(2))], &[]),
    pass(S::readv, "readv", &[m("vector", 1, Len::ArgTimes(2, IOVEC))], &[]),
    pass(S::writev, "writev", &[m("vector", 1, Len::ArgTimes(2, IOVEC))], &[]),
    pass(S::access, "access", &[m("pathname", 0, Len::CStr)], &[]),
    pass(S::pipe, "pipe", &[], &[m("filedes", 0, Len::Bytes(8))]),
    emul(S::mremap, "mremap", &[], &[], emul::mremap),
    emul(S::madvise, "madvise", &[], &[], emul::madvise),
    pass(S::dup, "dup", &[], &[]),
    pass(S::dup2, "dup2", &[], &[]),
    pass(S::nanosleep, "nanosleep", &[m("req", 0, TIMESPEC)], &[opt("rem", 1, TIMESPEC)]),
    pass(S::getpid, "getpid", &[], &[]),
    emul(S::exit, "exit", &[], &[], emul::exit),
    pass(S::uname, "uname", &[], &[m("buf", 0, UTSNAME)]),
    pass(S::fcntl, "fcntl", &[], &[]),
    pass(S::getcwd, "getcwd", &[], &[m("buf", 0, Len::Ret)]),
    pass(S::rename, "rename", &[m("oldpath", 0, Len::CStr), m("newpath", 1, Len::CStr)], &[]),
    pass(S::mkdir, "mkdir", &[m("pathname", 0, Len::CStr)], &[]),
    pass(S::unlink, "unlink", &[m("pathname", 0, Len::CStr)], &[]),
    emul(S::readlink, "readlink", &[m("path", 0, Len::CStr)], &[m("buf", 1, Len::Ret)], emul::readlink),
    pass(S::umask, "umask", &[], &[]),
    pass(S::gettimeofday, "gettimeofday", &[], &[opt("tv", 0, TIMEVAL), opt("tz", 1, Len::Bytes(8))]),
    pass(S::sysinfo, "sysinfo", &[], &[m("info", 0, Len::Bytes(112))]),
    pass(S::times, "times", &[], &[opt("buf", 0, Len::Bytes(32))]),
    pass(S::getuid, "getuid", &[], &[]),
    pass(S::getgid, "getgid", &[], &[]),
    pass(S::geteuid, "geteuid", &[], &[]),
    pass(S::getegid, "getegid", &[], &[]),
    emul(S::arch_prctl, "arch_prctl", &[], &[], emul::arch_prctl),
    pass(S::gettid, "gettid", &[], &[]),
    pass(S::futex, "futex", &[m("futex", 0, Len::Bytes(4))], &[]),
    pass(S::sched_getaffinity, "sched_getaffinity", &[], &[m("mask", 2, Len::Ret)]),
    pass(S::getdents64, "getdents64", &[], &[m("dirp", 1, Len::Ret)]),
    pass(S::set_tid_address, "set_tid_address", &[], &[]),
    pass(S::clock_gettime, "clock_gettime", &[], &[m("tp", 1, TIMESPEC)]),
    pass(S::clock_nanosleep, "clock_nanosleep", &[m("request", 2, TIMESPEC)], &[opt("remain", 3, TIMESPEC)]),
    emul(S::exit_group, "exit_group", &[], &[], emul::exit_group),
    pass(S::openat, "openat", &[m("filename", 1, Len::CStr)], &[]),
    pass(S::mkdirat, "mkdirat", &[m("pathname", 1, Len::CStr)], &[]),
    pass(S::newfstatat, "newfstatat", &[m("file_name", 1, Len::CStr)], &[m("buf", 2, STAT)]),
    pass(S::unlinkat, "unlinkat", &[m("pathname", 1, Len::CStr)], &[]),
    pass(S::renameat, "renameat", &[m("oldpath", 1, Len::CStr), m("newpath", 3, Len::CStr)], &[]),
    emul(S::readlinkat, "readlinkat", &[m("path", 1, Len::CStr)], &[m("buf", 2, Len::Ret)], emul::readlinkat),
    pass(S::faccessat, "faccessat", &[m("pathname", 1, Len::CStr)], &[]),
    pass(S::set_robust_list, "set_robust_list", &[], &[]),
    pass(S::dup3, "dup3", &[], &[]),
    pass(S::pipe2, "pipe2", &[], &[m("filedes", 0, Len::Bytes(8))]),
    pass(S::prlimit64, "prlimit64", &[opt("new_rlim", 2, RLIMIT)], &[opt("old_rlim", 3, RLIMIT)]),
    pass(S::renameat2, "renameat2", &[m("oldpath", 1, Len::CStr), m("newpath", 3, Len::CStr)], &[]),
    pass(S::getrandom, "getrandom", &[], &[m("buf", 0, Len::Ret)]),
    emul(S::rseq, "rseq", &[], &[], emul::rseq),
    pass(S::faccessat2, "faccessat2", &[m("pathname", 1, Len::CStr)], &[]),
];

/// The entry for guest system call `nr`.
pub fn lookup(nr: u64) -> Option<&'static SyscallDesc> {
    TABLE.binary_search_by_key(&nr, |d| d.nr).ok().map(|i| &TABLE[i])
}

/// The address ranges `(param, addr, len)` a list of memory parameters names for arguments
/// `args` (and, for POST, the call's result `ret`). `cstr_len` measures a guest string
/// (including its NUL) without reading unmapped memory. Null optional pointers are skipped.
pub fn ranges(
    list: &[MemArg],
    args: &[u64; 6],
    ret: u64,
    cstr_len: impl Fn(u64) -> u64,
) -> alloc::vec::Vec<(&'static str, u64, u64)> {
    list.iter()
        .filter_map(|a| {
            let addr = args[a.ptr as usize];
            if a.optional && addr == 0 {
                return None;
            }
            let len = match a.len {
                Len::Arg(n) => args[n as usize],
                Len::Bytes(n) => n,
                Len::CStr => cstr_len(addr),
                Len::Ret => ret,
                Len::ArgTimes(n, size) => args[n as usize].saturating_mul(size),
            };
            Some((a.param, addr, len))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        for w in TABLE.windows(2) {
            assert!(w[0].nr < w[1].nr, "{} and {} out of order", w[0].name, w[1].name);
        }
        for d in TABLE {
            for a in d.pre.iter().chain(d.post) {
                assert!(a.ptr < 6, "{}({})", d.name, a.param);
                assert!(!matches!(a.len, Len::Arg(n) | Len::ArgTimes(n, _) if n >= 6));
                assert!(!(a.len == Len::Ret && d.pre.contains(a)), "{}: Ret in PRE", d.name);
            }
        }
        assert_eq!(lookup(1).map(|d| d.name), Some("write"));
        assert_eq!(lookup(S::openat as u64).map(|d| d.name), Some("openat"));
        assert!(lookup(999).is_none());
    }

    #[test]
    fn ranges_follow_the_descriptions() {
        let write = lookup(S::write as u64).unwrap();
        assert_eq!(ranges(write.pre, &[1, 0x5000, 12, 0, 0, 0], 0, |_| 0), [("buf", 0x5000, 12)]);
        let read = lookup(S::read as u64).unwrap();
        assert_eq!(ranges(read.post, &[0, 0x6000, 100, 0, 0, 0], 7, |_| 0), [("buf", 0x6000, 7)]);
        let open = lookup(S::openat as u64).unwrap();
        assert_eq!(ranges(open.pre, &[0, 0x7000, 0, 0, 0, 0], 0, |a| a - 0x6ff0), [("filename", 0x7000, 0x10)]);
        let writev = lookup(S::writev as u64).unwrap();
        assert_eq!(ranges(writev.pre, &[1, 0x8000, 3, 0, 0, 0], 0, |_| 0), [("vector", 0x8000, 48)]);
        let sa = lookup(S::rt_sigaction as u64).unwrap();
        assert!(ranges(sa.post, &[2, 0x9000, 0, 8, 0, 0], 0, |_| 0).is_empty(), "null oldact skipped");
        assert_eq!(ranges(sa.post, &[2, 0, 0xa000, 8, 0, 0], 0, |_| 0), [("oldact", 0xa000, 32)]);
    }
}
