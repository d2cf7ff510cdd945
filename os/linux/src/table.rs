//! The amd64-linux system-call table: for each call its name, what memory the kernel reads
//! (PRE) and writes (POST), named by parameter as Valgrind's messages name them
//! ("Syscall param write(buf) ..."), and how the core carries it out.
//!
//! The descriptions are data: the dispatcher turns them into address ranges for the tool
//! hooks in [`crate::observer`].

use alloc::borrow::Cow;
use alloc::format;
use alloc::vec::Vec;
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
    /// PRE only: a socket address of argument `n` bytes, read as the kernel reads it: the
    /// family, then that family's fields (a Unix path as a string); padding and unused path
    /// bytes are not checked. Each field is named `param.field`.
    Sockaddr(u8),
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
    /// Give it to the kernel unchanged; it may block, so the big lock is released and the
    /// guest's signal mask applies meanwhile.
    Pass,
    /// Give it to the kernel unchanged, holding the lock: it never blocks (getpid, lseek, ...).
    Quick,
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
const fn quick(nr: S, name: &'static str, pre: &'static [MemArg], post: &'static [MemArg]) -> SyscallDesc {
    SyscallDesc { nr: nr as u64, name, pre, post, how: How::Quick }
}
const fn emul(nr: S, name: &'static str, pre: &'static [MemArg], post: &'static [MemArg], h: Handler) -> SyscallDesc {
    SyscallDesc { nr: nr as u64, name, pre, post, how: How::Emul(h) }
}

/// Sizes of kernel structures on x86-64.
const STAT: Len = Len::Bytes(144);
const STATFS: Len = Len::Bytes(120);
const STATX: Len = Len::Bytes(256);
const TIMESPEC: Len = Len::Bytes(16);
const TIMEVAL: Len = Len::Bytes(16);
const ITIMERVAL: Len = Len::Bytes(32);
const ITIMERSPEC: Len = Len::Bytes(32);
const UTSNAME: Len = Len::Bytes(390);
const RLIMIT: Len = Len::Bytes(16);
const RUSAGE: Len = Len::Bytes(144);
const SIGACTION: Len = Len::Bytes(32);
const SIGSET: Len = Len::Bytes(8);
const SIGINFO: Len = Len::Bytes(128);
const STACK_T: Len = Len::Bytes(24);
const FDSET: Len = Len::Bytes(128);
const MSGHDR: Len = Len::Bytes(56);
const EPOLL_EVENT: u64 = 12;
const POLLFD: u64 = 8;
const INT: Len = Len::Bytes(4);
const IOVEC: u64 = 16;

use crate::process as p;

/// The table, sorted by number (checked by a test; looked up by binary search).
pub static TABLE: &[SyscallDesc] = &[
    pass(S::read, "read", &[], &[m("buf", 1, Len::Ret)]),
    pass(S::write, "write", &[m("buf", 1, Len::Arg(2))], &[]),
    emul(S::open, "open", &[m("filename", 0, Len::CStr)], &[], p::open),
    emul(S::close, "close", &[], &[], p::close),
    quick(S::stat, "stat", &[m("file_name", 0, Len::CStr)], &[m("buf", 1, STAT)]),
    quick(S::fstat, "fstat", &[], &[m("buf", 1, STAT)]),
    quick(S::lstat, "lstat", &[m("file_name", 0, Len::CStr)], &[m("buf", 1, STAT)]),
    pass(S::poll, "poll", &[m("ufds", 0, Len::ArgTimes(1, POLLFD))], &[m("ufds", 0, Len::ArgTimes(1, POLLFD))]),
    quick(S::lseek, "lseek", &[], &[]),
    emul(S::mmap, "mmap", &[], &[], emul::mmap),
    emul(S::mprotect, "mprotect", &[], &[], emul::mprotect),
    emul(S::munmap, "munmap", &[], &[], emul::munmap),
    emul(S::brk, "brk", &[], &[], emul::brk),
    emul(S::rt_sigaction, "rt_sigaction", &[opt("act", 1, SIGACTION)], &[opt("oldact", 2, SIGACTION)], emul::rt_sigaction),
    emul(S::rt_sigprocmask, "rt_sigprocmask", &[opt("set", 1, SIGSET)], &[opt("oldset", 2, SIGSET)], emul::rt_sigprocmask),
    emul(S::rt_sigreturn, "rt_sigreturn", &[], &[], emul::rt_sigreturn),
    // ioctl's memory depends on the request; TCGETS and friends write a small struct.
    pass(S::ioctl, "ioctl", &[], &[]),
    pass(S::pread64, "pread64", &[], &[m("buf", 1, Len::Ret)]),
    pass(S::pwrite64, "pwrite64", &[m("buf", 1, Len::Arg(2))], &[]),
    pass(S::readv, "readv", &[m("vector", 1, Len::ArgTimes(2, IOVEC))], &[]),
    pass(S::writev, "writev", &[m("vector", 1, Len::ArgTimes(2, IOVEC))], &[]),
    quick(S::access, "access", &[m("pathname", 0, Len::CStr)], &[]),
    emul(S::pipe, "pipe", &[], &[m("filedes", 0, Len::Bytes(8))], p::pass_fd_pair),
    pass(
        S::select,
        "select",
        &[opt("readfds", 1, FDSET), opt("writefds", 2, FDSET), opt("exceptfds", 3, FDSET), opt("timeout", 4, TIMEVAL)],
        &[opt("readfds", 1, FDSET), opt("writefds", 2, FDSET), opt("exceptfds", 3, FDSET)],
    ),
    quick(S::sched_yield, "sched_yield", &[], &[]),
    emul(S::mremap, "mremap", &[], &[], emul::mremap),
    pass(S::msync, "msync", &[], &[]),
    quick(S::mincore, "mincore", &[], &[m("vec", 2, Len::Arg(1))]),
    emul(S::madvise, "madvise", &[], &[], emul::madvise),
    quick(S::shmget, "shmget", &[], &[]),
    emul(S::dup, "dup", &[], &[], p::pass_fd),
    emul(S::dup2, "dup2", &[], &[], p::dup2),
    pass(S::pause, "pause", &[], &[]),
    pass(S::nanosleep, "nanosleep", &[m("req", 0, TIMESPEC)], &[opt("rem", 1, TIMESPEC)]),
    quick(S::getitimer, "getitimer", &[], &[m("value", 1, ITIMERVAL)]),
    quick(S::alarm, "alarm", &[], &[]),
    quick(S::setitimer, "setitimer", &[opt("value", 1, ITIMERVAL)], &[opt("ovalue", 2, ITIMERVAL)]),
    quick(S::getpid, "getpid", &[], &[]),
    pass(S::sendfile, "sendfile", &[opt("offset", 2, Len::Bytes(8))], &[opt("offset", 2, Len::Bytes(8))]),
    // The socket calls carry the names of their socketcall(2) multiplexer, as Valgrind's do.
    emul(S::socket, "socketcall.socket", &[], &[], p::pass_fd),
    pass(S::connect, "socketcall.connect", &[m("serv_addr", 1, Len::Sockaddr(2))], &[]),
    emul(S::accept, "socketcall.accept", &[opt("addrlen_in", 2, INT)], &[opt("addrlen_out", 2, INT)], p::pass_fd),
    pass(S::sendto, "socketcall.sendto", &[m("msg", 1, Len::Arg(2)), opt("to", 4, Len::Sockaddr(5))], &[]),
    pass(S::recvfrom, "socketcall.recvfrom", &[opt("fromlen_in", 5, INT)], &[m("buf", 1, Len::Ret), opt("fromlen_out", 5, INT)]),
    pass(S::sendmsg, "sendmsg", &[m("msg", 1, MSGHDR)], &[]),
    pass(S::recvmsg, "recvmsg", &[m("msg", 1, MSGHDR)], &[m("msg", 1, MSGHDR)]),
    quick(S::shutdown, "socketcall.shutdown", &[], &[]),
    quick(S::bind, "socketcall.bind", &[m("my_addr", 1, Len::Sockaddr(2))], &[]),
    quick(S::listen, "socketcall.listen", &[], &[]),
    quick(S::getsockname, "socketcall.getsockname", &[m("namelen_in", 2, INT)], &[m("namelen_out", 2, INT)]),
    quick(S::getpeername, "socketcall.getpeername", &[m("namelen_in", 2, INT)], &[m("namelen_out", 2, INT)]),
    emul(S::socketpair, "socketcall.socketpair", &[], &[m("sv", 3, Len::Bytes(8))], p::pass_fd_pair),
    quick(S::setsockopt, "socketcall.setsockopt", &[opt("optval", 3, Len::Arg(4))], &[]),
    quick(S::getsockopt, "socketcall.getsockopt", &[m("optlen", 4, INT)], &[m("optlen_out", 4, INT)]),
    emul(S::clone, "clone", &[], &[], p::clone),
    emul(S::fork, "fork", &[], &[], p::fork),
    emul(S::vfork, "vfork", &[], &[], p::fork),
    emul(S::execve, "execve", &[m("filename", 0, Len::CStr)], &[], p::execve),
    emul(S::exit, "exit", &[], &[], emul::exit),
    pass(S::wait4, "wait4", &[], &[opt("status", 1, INT), opt("rusage", 3, RUSAGE)]),
    quick(S::kill, "kill", &[], &[]),
    quick(S::uname, "uname", &[], &[m("buf", 0, UTSNAME)]),
    quick(S::semget, "semget", &[], &[]),
    pass(S::semop, "semop", &[m("sops", 1, Len::ArgTimes(2, 6))], &[]),
    quick(S::semctl, "semctl", &[], &[]),
    quick(S::msgget, "msgget", &[], &[]),
    pass(S::msgsnd, "msgsnd", &[m("msgp", 1, Len::Arg(2))], &[]),
    pass(S::msgrcv, "msgrcv", &[], &[m("msgp", 1, Len::Ret)]),
    quick(S::msgctl, "msgctl", &[], &[]),
    emul(S::fcntl, "fcntl", &[], &[], p::fcntl),
    pass(S::flock, "flock", &[], &[]),
    pass(S::fsync, "fsync", &[], &[]),
    pass(S::fdatasync, "fdatasync", &[], &[]),
    quick(S::truncate, "truncate", &[m("path", 0, Len::CStr)], &[]),
    quick(S::ftruncate, "ftruncate", &[], &[]),
    quick(S::getdents, "getdents", &[], &[m("dirp", 1, Len::Ret)]),
    quick(S::getcwd, "getcwd", &[], &[m("buf", 0, Len::Ret)]),
    quick(S::chdir, "chdir", &[m("path", 0, Len::CStr)], &[]),
    quick(S::fchdir, "fchdir", &[], &[]),
    quick(S::rename, "rename", &[m("oldpath", 0, Len::CStr), m("newpath", 1, Len::CStr)], &[]),
    quick(S::mkdir, "mkdir", &[m("pathname", 0, Len::CStr)], &[]),
    quick(S::rmdir, "rmdir", &[m("pathname", 0, Len::CStr)], &[]),
    emul(S::creat, "creat", &[m("pathname", 0, Len::CStr)], &[], p::open),
    quick(S::link, "link", &[m("oldpath", 0, Len::CStr), m("newpath", 1, Len::CStr)], &[]),
    quick(S::unlink, "unlink", &[m("pathname", 0, Len::CStr)], &[]),
    quick(S::symlink, "symlink", &[m("oldpath", 0, Len::CStr), m("newpath", 1, Len::CStr)], &[]),
    emul(S::readlink, "readlink", &[m("path", 0, Len::CStr)], &[m("buf", 1, Len::Ret)], emul::readlink),
    quick(S::chmod, "chmod", &[m("path", 0, Len::CStr)], &[]),
    quick(S::fchmod, "fchmod", &[], &[]),
    quick(S::chown, "chown", &[m("path", 0, Len::CStr)], &[]),
    quick(S::fchown, "fchown", &[], &[]),
    quick(S::lchown, "lchown", &[m("path", 0, Len::CStr)], &[]),
    quick(S::umask, "umask", &[], &[]),
    quick(S::gettimeofday, "gettimeofday", &[], &[opt("tv", 0, TIMEVAL), opt("tz", 1, Len::Bytes(8))]),
    emul(S::getrlimit, "getrlimit", &[], &[m("rlim", 1, RLIMIT)], p::getrlimit),
    quick(S::getrusage, "getrusage", &[], &[m("usage", 1, RUSAGE)]),
    quick(S::sysinfo, "sysinfo", &[], &[m("info", 0, Len::Bytes(112))]),
    quick(S::times, "times", &[], &[opt("buf", 0, Len::Bytes(32))]),
    quick(S::getuid, "getuid", &[], &[]),
    quick(S::getgid, "getgid", &[], &[]),
    quick(S::setuid, "setuid", &[], &[]),
    quick(S::setgid, "setgid", &[], &[]),
    quick(S::geteuid, "geteuid", &[], &[]),
    quick(S::getegid, "getegid", &[], &[]),
    quick(S::setpgid, "setpgid", &[], &[]),
    quick(S::getppid, "getppid", &[], &[]),
    quick(S::getpgrp, "getpgrp", &[], &[]),
    quick(S::setsid, "setsid", &[], &[]),
    quick(S::setreuid, "setreuid", &[], &[]),
    quick(S::setregid, "setregid", &[], &[]),
    quick(S::getgroups, "getgroups", &[], &[m("list", 1, Len::ArgTimes(0, 4))]),
    quick(S::setgroups, "setgroups", &[m("list", 1, Len::ArgTimes(0, 4))], &[]),
    quick(S::setresuid, "setresuid", &[], &[]),
    quick(S::getresuid, "getresuid", &[], &[m("ruid", 0, INT), m("euid", 1, INT), m("suid", 2, INT)]),
    quick(S::setresgid, "setresgid", &[], &[]),
    quick(S::getresgid, "getresgid", &[], &[m("rgid", 0, INT), m("egid", 1, INT), m("sgid", 2, INT)]),
    quick(S::getpgid, "getpgid", &[], &[]),
    quick(S::getsid, "getsid", &[], &[]),
    emul(S::rt_sigpending, "rt_sigpending", &[], &[m("set", 0, SIGSET)], emul::rt_sigpending),
    emul(S::rt_sigtimedwait, "rt_sigtimedwait", &[m("set", 0, SIGSET), opt("timeout", 2, TIMESPEC)], &[opt("info", 1, SIGINFO)], emul::rt_sigtimedwait),
    quick(S::rt_sigqueueinfo, "rt_sigqueueinfo", &[m("uinfo", 2, SIGINFO)], &[]),
    emul(S::rt_sigsuspend, "rt_sigsuspend", &[m("mask", 0, SIGSET)], &[], emul::rt_sigsuspend),
    emul(S::sigaltstack, "sigaltstack", &[opt("ss", 0, STACK_T)], &[opt("oss", 1, STACK_T)], emul::sigaltstack),
    quick(S::utime, "utime", &[m("filename", 0, Len::CStr), opt("buf", 1, Len::Bytes(16))], &[]),
    quick(S::mknod, "mknod", &[m("pathname", 0, Len::CStr)], &[]),
    quick(S::personality, "personality", &[], &[]),
    quick(S::statfs, "statfs", &[m("path", 0, Len::CStr)], &[m("buf", 1, STATFS)]),
    quick(S::fstatfs, "fstatfs", &[], &[m("buf", 1, STATFS)]),
    quick(S::getpriority, "getpriority", &[], &[]),
    quick(S::setpriority, "setpriority", &[], &[]),
    quick(S::sched_setparam, "sched_setparam", &[m("param", 1, INT)], &[]),
    quick(S::sched_getparam, "sched_getparam", &[], &[m("param", 1, INT)]),
    quick(S::sched_setscheduler, "sched_setscheduler", &[m("p", 2, INT)], &[]),
    quick(S::sched_getscheduler, "sched_getscheduler", &[], &[]),
    quick(S::sched_get_priority_max, "sched_get_priority_max", &[], &[]),
    quick(S::sched_get_priority_min, "sched_get_priority_min", &[], &[]),
    quick(S::sched_rr_get_interval, "sched_rr_get_interval", &[], &[m("tp", 1, TIMESPEC)]),
    quick(S::mlock, "mlock", &[], &[]),
    quick(S::munlock, "munlock", &[], &[]),
    quick(S::mlockall, "mlockall", &[], &[]),
    quick(S::munlockall, "munlockall", &[], &[]),
    quick(S::prctl, "prctl", &[], &[]),
    emul(S::arch_prctl, "arch_prctl", &[], &[], emul::arch_prctl),
    emul(S::setrlimit, "setrlimit", &[m("rlim", 1, RLIMIT)], &[], p::setrlimit),
    quick(S::chroot, "chroot", &[m("path", 0, Len::CStr)], &[]),
    pass(S::sync, "sync", &[], &[]),
    quick(S::gettid, "gettid", &[], &[]),
    quick(S::setxattr, "setxattr", &[m("path", 0, Len::CStr), m("name", 1, Len::CStr), opt("value", 2, Len::Arg(3))], &[]),
    quick(S::lsetxattr, "lsetxattr", &[m("path", 0, Len::CStr), m("name", 1, Len::CStr), opt("value", 2, Len::Arg(3))], &[]),
    quick(S::fsetxattr, "fsetxattr", &[m("name", 1, Len::CStr), opt("value", 2, Len::Arg(3))], &[]),
    quick(S::getxattr, "getxattr", &[m("path", 0, Len::CStr), m("name", 1, Len::CStr)], &[opt("value", 2, Len::Ret)]),
    quick(S::lgetxattr, "lgetxattr", &[m("path", 0, Len::CStr), m("name", 1, Len::CStr)], &[opt("value", 2, Len::Ret)]),
    quick(S::fgetxattr, "fgetxattr", &[m("name", 1, Len::CStr)], &[opt("value", 2, Len::Ret)]),
    quick(S::listxattr, "listxattr", &[m("path", 0, Len::CStr)], &[opt("list", 1, Len::Ret)]),
    quick(S::llistxattr, "llistxattr", &[m("path", 0, Len::CStr)], &[opt("list", 1, Len::Ret)]),
    quick(S::flistxattr, "flistxattr", &[], &[opt("list", 1, Len::Ret)]),
    quick(S::removexattr, "removexattr", &[m("path", 0, Len::CStr), m("name", 1, Len::CStr)], &[]),
    quick(S::lremovexattr, "lremovexattr", &[m("path", 0, Len::CStr), m("name", 1, Len::CStr)], &[]),
    quick(S::fremovexattr, "fremovexattr", &[m("name", 1, Len::CStr)], &[]),
    quick(S::tkill, "tkill", &[], &[]),
    quick(S::time, "time", &[], &[opt("t", 0, Len::Bytes(8))]),
    pass(S::futex, "futex", &[m("futex", 0, Len::Bytes(4))], &[]),
    quick(S::sched_setaffinity, "sched_setaffinity", &[m("mask", 2, Len::Arg(1))], &[]),
    quick(S::sched_getaffinity, "sched_getaffinity", &[], &[m("mask", 2, Len::Ret)]),
    emul(S::epoll_create, "epoll_create", &[], &[], p::pass_fd),
    quick(S::getdents64, "getdents64", &[], &[m("dirp", 1, Len::Ret)]),
    emul(S::set_tid_address, "set_tid_address", &[], &[], emul::set_tid_address),
    quick(S::fadvise64, "fadvise64", &[], &[]),
    quick(S::timer_create, "timer_create", &[opt("evp", 1, Len::Bytes(64))], &[m("timerid", 2, INT)]),
    quick(S::timer_settime, "timer_settime", &[m("value", 2, ITIMERSPEC)], &[opt("ovalue", 3, ITIMERSPEC)]),
    quick(S::timer_gettime, "timer_gettime", &[], &[m("value", 1, ITIMERSPEC)]),
    quick(S::timer_getoverrun, "timer_getoverrun", &[], &[]),
    quick(S::timer_delete, "timer_delete", &[], &[]),
    quick(S::clock_settime, "clock_settime", &[m("tp", 1, TIMESPEC)], &[]),
    quick(S::clock_gettime, "clock_gettime", &[], &[m("tp", 1, TIMESPEC)]),
    quick(S::clock_getres, "clock_getres", &[], &[opt("res", 1, TIMESPEC)]),
    pass(S::clock_nanosleep, "clock_nanosleep", &[m("request", 2, TIMESPEC)], &[opt("remain", 3, TIMESPEC)]),
    emul(S::exit_group, "exit_group", &[], &[], emul::exit_group),
    pass(S::epoll_wait, "epoll_wait", &[], &[m("events", 1, Len::ArgTimes(2, EPOLL_EVENT))]),
    quick(S::epoll_ctl, "epoll_ctl", &[opt("event", 3, Len::Bytes(EPOLL_EVENT))], &[]),
    quick(S::tgkill, "tgkill", &[], &[]),
    quick(S::utimes, "utimes", &[m("filename", 0, Len::CStr), opt("tvp", 1, Len::Bytes(32))], &[]),
    pass(S::waitid, "waitid", &[], &[opt("infop", 2, SIGINFO), opt("rusage", 4, RUSAGE)]),
    emul(S::inotify_init, "inotify_init", &[], &[], p::pass_fd),
    quick(S::inotify_add_watch, "inotify_add_watch", &[m("pathname", 1, Len::CStr)], &[]),
    quick(S::inotify_rm_watch, "inotify_rm_watch", &[], &[]),
    emul(S::openat, "openat", &[m("filename", 1, Len::CStr)], &[], p::openat),
    quick(S::mkdirat, "mkdirat", &[m("pathname", 1, Len::CStr)], &[]),
    quick(S::mknodat, "mknodat", &[m("pathname", 1, Len::CStr)], &[]),
    quick(S::fchownat, "fchownat", &[m("path", 1, Len::CStr)], &[]),
    quick(S::newfstatat, "newfstatat", &[m("file_name", 1, Len::CStr)], &[m("buf", 2, STAT)]),
    quick(S::unlinkat, "unlinkat", &[m("pathname", 1, Len::CStr)], &[]),
    quick(S::renameat, "renameat", &[m("oldpath", 1, Len::CStr), m("newpath", 3, Len::CStr)], &[]),
    quick(S::linkat, "linkat", &[m("oldpath", 1, Len::CStr), m("newpath", 3, Len::CStr)], &[]),
    quick(S::symlinkat, "symlinkat", &[m("oldpath", 0, Len::CStr), m("newpath", 2, Len::CStr)], &[]),
    emul(S::readlinkat, "readlinkat", &[m("path", 1, Len::CStr)], &[m("buf", 2, Len::Ret)], emul::readlinkat),
    quick(S::fchmodat, "fchmodat", &[m("path", 1, Len::CStr)], &[]),
    quick(S::faccessat, "faccessat", &[m("pathname", 1, Len::CStr)], &[]),
    pass(
        S::pselect6,
        "pselect6",
        &[opt("readfds", 1, FDSET), opt("writefds", 2, FDSET), opt("exceptfds", 3, FDSET), opt("timeout", 4, TIMESPEC)],
        &[opt("readfds", 1, FDSET), opt("writefds", 2, FDSET), opt("exceptfds", 3, FDSET)],
    ),
    pass(S::ppoll, "ppoll", &[m("ufds", 0, Len::ArgTimes(1, POLLFD)), opt("tsp", 2, TIMESPEC), opt("sigmask", 3, SIGSET)], &[m("ufds", 0, Len::ArgTimes(1, POLLFD))]),
    quick(S::set_robust_list, "set_robust_list", &[], &[]),
    quick(S::get_robust_list, "get_robust_list", &[], &[]),
    pass(S::splice, "splice", &[], &[]),
    pass(S::tee, "tee", &[], &[]),
    pass(S::sync_file_range, "sync_file_range", &[], &[]),
    quick(S::utimensat, "utimensat", &[opt("filename", 1, Len::CStr), opt("utimes", 2, Len::Bytes(32))], &[]),
    pass(S::epoll_pwait, "epoll_pwait", &[opt("sigmask", 4, SIGSET)], &[m("events", 1, Len::ArgTimes(2, EPOLL_EVENT))]),
    emul(S::timerfd_create, "timerfd_create", &[], &[], p::pass_fd),
    emul(S::eventfd, "eventfd", &[], &[], p::pass_fd),
    pass(S::fallocate, "fallocate", &[], &[]),
    quick(S::timerfd_settime, "timerfd_settime", &[m("utmr", 2, ITIMERSPEC)], &[opt("otmr", 3, ITIMERSPEC)]),
    quick(S::timerfd_gettime, "timerfd_gettime", &[], &[m("otmr", 1, ITIMERSPEC)]),
    emul(S::accept4, "socketcall.accept", &[opt("addrlen_in", 2, INT)], &[opt("addrlen_out", 2, INT)], p::pass_fd),
    emul(S::eventfd2, "eventfd2", &[], &[], p::pass_fd),
    emul(S::epoll_create1, "epoll_create1", &[], &[], p::pass_fd),
    emul(S::dup3, "dup3", &[], &[], p::dup2),
    emul(S::pipe2, "pipe2", &[], &[m("filedes", 0, Len::Bytes(8))], p::pass_fd_pair),
    emul(S::inotify_init1, "inotify_init1", &[], &[], p::pass_fd),
    pass(S::preadv, "preadv", &[m("vector", 1, Len::ArgTimes(2, IOVEC))], &[]),
    pass(S::pwritev, "pwritev", &[m("vector", 1, Len::ArgTimes(2, IOVEC))], &[]),
    quick(S::rt_tgsigqueueinfo, "rt_tgsigqueueinfo", &[m("uinfo", 3, SIGINFO)], &[]),
    pass(S::recvmmsg, "recvmmsg", &[], &[]),
    emul(S::prlimit64, "prlimit64", &[opt("new_rlim", 2, RLIMIT)], &[opt("old_rlim", 3, RLIMIT)], p::prlimit64),
    pass(S::syncfs, "syncfs", &[], &[]),
    pass(S::sendmmsg, "sendmmsg", &[], &[]),
    quick(S::getcpu, "getcpu", &[], &[opt("cpu", 0, INT), opt("node", 1, INT)]),
    quick(S::renameat2, "renameat2", &[m("oldpath", 1, Len::CStr), m("newpath", 3, Len::CStr)], &[]),
    pass(S::getrandom, "getrandom", &[], &[m("buf", 0, Len::Ret)]),
    emul(S::memfd_create, "memfd_create", &[m("uname", 0, Len::CStr)], &[], p::pass_fd),
    quick(S::membarrier, "membarrier", &[], &[]),
    pass(S::copy_file_range, "copy_file_range", &[opt("off_in", 1, Len::Bytes(8)), opt("off_out", 3, Len::Bytes(8))], &[]),
    pass(S::preadv2, "preadv2", &[m("vector", 1, Len::ArgTimes(2, IOVEC))], &[]),
    pass(S::pwritev2, "pwritev2", &[m("vector", 1, Len::ArgTimes(2, IOVEC))], &[]),
    quick(S::statx, "statx", &[m("file_name", 1, Len::CStr)], &[m("buf", 4, STATX)]),
    emul(S::rseq, "rseq", &[], &[], emul::rseq),
    quick(S::pidfd_send_signal, "pidfd_send_signal", &[opt("info", 2, SIGINFO)], &[]),
    emul(S::pidfd_open, "pidfd_open", &[], &[], p::pass_fd),
    emul(S::clone3, "clone3", &[], &[], p::clone3),
    quick(S::faccessat2, "faccessat2", &[m("pathname", 1, Len::CStr)], &[]),
    pass(S::epoll_pwait2, "epoll_pwait2", &[opt("timeout", 3, TIMESPEC), opt("sigmask", 4, SIGSET)], &[m("events", 1, Len::ArgTimes(2, EPOLL_EVENT))]),
];

/// Whether call `nr`, interrupted by a handler with SA_RESTART, is restarted: everything but
/// the waits the kernel never restarts (signal(7): sleeps, poll/select/epoll, signal waits,
/// System V IPC waits).
pub fn restartable(nr: u64) -> bool {
    const NEVER: &[S] = &[
        S::pause, S::rt_sigsuspend, S::nanosleep, S::clock_nanosleep, S::select, S::pselect6, S::poll, S::ppoll,
        S::epoll_wait, S::epoll_pwait, S::epoll_pwait2, S::rt_sigtimedwait, S::msgrcv, S::msgsnd, S::semop,
        S::semtimedop, S::io_getevents,
    ];
    !NEVER.iter().any(|&s| s as u64 == nr)
}

/// The entry for guest system call `nr`.
pub fn lookup(nr: u64) -> Option<&'static SyscallDesc> {
    TABLE.binary_search_by_key(&nr, |d| d.nr).ok().map(|i| &TABLE[i])
}

/// What the descriptions need to read of guest memory, without faulting on bad pointers.
pub trait GuestMem {
    /// The length of the string at `addr` including its NUL (an unreadable or unterminated
    /// string counts as 1 byte, so that a checker still looks at it).
    fn cstr_len(&self, addr: u64) -> u64;
    /// The 16-bit value at `addr`, if it is readable.
    fn read_u16(&self, addr: u64) -> Option<u16>;
}

/// The address ranges `(param, addr, len)` a list of memory parameters names for arguments
/// `args` (and, for POST, the call's result `ret`). Null optional pointers are skipped.
pub fn ranges(list: &[MemArg], args: &[u64; 6], ret: u64, mem: &dyn GuestMem) -> Vec<(Cow<'static, str>, u64, u64)> {
    let mut out = Vec::new();
    for a in list {
        let addr = args[a.ptr as usize];
        if a.optional && addr == 0 {
            continue;
        }
        let len = match a.len {
            Len::Arg(n) => args[n as usize],
            Len::Bytes(n) => n,
            Len::CStr => mem.cstr_len(addr),
            Len::Ret => ret,
            Len::ArgTimes(n, size) => args[n as usize].saturating_mul(size),
            Len::Sockaddr(n) => {
                sockaddr_ranges(a.param, addr, args[n as usize], mem, &mut out);
                continue;
            }
        };
        out.push((Cow::Borrowed(a.param), addr, len));
    }
    out
}

/// A field of a socket address: (name, offset, size); a size of 0 means a NUL-terminated string.
type SockField = (&'static str, u64, u64);

/// Address families whose socket addresses the kernel reads field by field.
const SOCKADDR_FIELDS: &[(u16, &[SockField])] = &[
    // AF_UNSPEC: nothing beyond the family.
    (0, &[]),
    // AF_UNIX: the path as a string (what follows its NUL is never read).
    (1, &[("sun_path", 2, 0)]),
    // AF_INET: the 8 bytes of sin_zero are padding.
    (2, &[("sin_port", 2, 2), ("sin_addr", 4, 4)]),
    (10, &[("sin6_port", 2, 2), ("sin6_flowinfo", 4, 4), ("sin6_addr", 8, 16), ("sin6_scope_id", 24, 4)]),
    // AF_NETLINK: nl_pad (bytes 2..4) is padding.
    (16, &[("nl_pid", 4, 4), ("nl_groups", 8, 4)]),
    // AF_BLUETOOTH (RFCOMM's layout).
    (31, &[("rc_bdaddr", 2, 6), ("rc_channel", 8, 1)]),
];

/// The ranges of a socket address `param` of `salen` bytes at `addr`: its family, then the
/// fields of that family, or for other families everything after the family (`sa_data`). A
/// null or empty address is not read.
fn sockaddr_ranges(param: &'static str, addr: u64, salen: u64, mem: &dyn GuestMem, out: &mut Vec<(Cow<'static, str>, u64, u64)>) {
    if addr == 0 || salen == 0 {
        return;
    }
    let field = |name: &str| Cow::Owned(format!("{param}.{name}"));
    // The family is read whatever the length says.
    out.push((field("sa_family"), addr, 2));
    let Some(family) = mem.read_u16(addr) else { return };
    match SOCKADDR_FIELDS.iter().find(|(f, _)| *f == family) {
        Some((_, fields)) => {
            for &(name, off, size) in *fields {
                let len = if size == 0 { mem.cstr_len(addr + off) } else { size };
                out.push((field(name), addr + off, len));
            }
        }
        // The length is a 32-bit socklen_t: a length below 2 wraps, as the kernel's would.
        None => out.push((field("sa_data"), addr + 2, (salen as u32).wrapping_sub(2) as u64)),
    }
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
                assert!(!matches!(a.len, Len::Sockaddr(n) if n >= 6));
                assert!(!(a.len == Len::Ret && d.pre.contains(a)), "{}: Ret in PRE", d.name);
                assert!(!(matches!(a.len, Len::Sockaddr(_)) && d.post.contains(a)), "{}: Sockaddr in POST", d.name);
            }
        }
        assert_eq!(lookup(1).map(|d| d.name), Some("write"));
        assert_eq!(lookup(S::openat as u64).map(|d| d.name), Some("openat"));
        assert!(lookup(999).is_none());
        assert!(restartable(S::read as u64) && restartable(S::wait4 as u64));
        assert!(!restartable(S::nanosleep as u64) && !restartable(S::epoll_wait as u64));
    }

    /// Guest memory for the tests: `bytes` at `base`, nothing else readable.
    struct Mem {
        base: u64,
        bytes: &'static [u8],
    }
    impl GuestMem for Mem {
        fn cstr_len(&self, addr: u64) -> u64 {
            let i = addr.wrapping_sub(self.base) as usize;
            self.bytes.get(i..).and_then(|b| b.iter().position(|&c| c == 0)).map_or(1, |n| n as u64 + 1)
        }
        fn read_u16(&self, addr: u64) -> Option<u16> {
            let i = addr.wrapping_sub(self.base) as usize;
            self.bytes.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
        }
    }
    const NO_MEM: Mem = Mem { base: 0, bytes: &[] };

    fn names<'a>(r: &'a [(Cow<'static, str>, u64, u64)]) -> Vec<(&'a str, u64, u64)> {
        r.iter().map(|(p, a, l)| (&**p, *a, *l)).collect()
    }

    #[test]
    fn ranges_follow_the_descriptions() {
        let write = lookup(S::write as u64).unwrap();
        assert_eq!(names(&ranges(write.pre, &[1, 0x5000, 12, 0, 0, 0], 0, &NO_MEM)), [("buf", 0x5000, 12)]);
        let read = lookup(S::read as u64).unwrap();
        assert_eq!(names(&ranges(read.post, &[0, 0x6000, 100, 0, 0, 0], 7, &NO_MEM)), [("buf", 0x6000, 7)]);
        let open = lookup(S::openat as u64).unwrap();
        let path = Mem { base: 0x7000, bytes: b"/etc/passwd\0junk" };
        assert_eq!(names(&ranges(open.pre, &[0, 0x7000, 0, 0, 0, 0], 0, &path)), [("filename", 0x7000, 12)]);
        let writev = lookup(S::writev as u64).unwrap();
        assert_eq!(names(&ranges(writev.pre, &[1, 0x8000, 3, 0, 0, 0], 0, &NO_MEM)), [("vector", 0x8000, 48)]);
        let sa = lookup(S::rt_sigaction as u64).unwrap();
        assert!(ranges(sa.post, &[2, 0x9000, 0, 8, 0, 0], 0, &NO_MEM).is_empty(), "null oldact skipped");
        assert_eq!(names(&ranges(sa.post, &[2, 0, 0xa000, 8, 0, 0], 0, &NO_MEM)), [("oldact", 0xa000, 32)]);
    }

    #[test]
    fn socket_addresses_are_read_field_by_field() {
        let connect = lookup(S::connect as u64).unwrap();
        assert_eq!(connect.name, "socketcall.connect");
        // AF_UNIX with a 110-byte length: the family and the path up to its NUL only.
        let un = Mem { base: 0x1000, bytes: b"\x01\x00/run/x\0\xff\xff" };
        assert_eq!(
            names(&ranges(connect.pre, &[3, 0x1000, 110, 0, 0, 0], 0, &un)),
            [("serv_addr.sa_family", 0x1000, 2), ("serv_addr.sun_path", 0x1002, 7)]
        );
        // AF_INET: port and address, not sin_zero.
        let inet = Mem { base: 0x2000, bytes: &[2, 0, 0, 9, 127, 0, 0, 1] };
        assert_eq!(
            names(&ranges(connect.pre, &[3, 0x2000, 16, 0, 0, 0], 0, &inet)),
            [("serv_addr.sa_family", 0x2000, 2), ("serv_addr.sin_port", 0x2002, 2), ("serv_addr.sin_addr", 0x2004, 4)]
        );
        // AF_UNSPEC: the family only; another family: everything after it.
        let unspec = Mem { base: 0x3000, bytes: &[0, 0] };
        assert_eq!(names(&ranges(connect.pre, &[3, 0x3000, 16, 0, 0, 0], 0, &unspec)), [("serv_addr.sa_family", 0x3000, 2)]);
        let packet = Mem { base: 0x3000, bytes: &[17, 0] };
        assert_eq!(
            names(&ranges(connect.pre, &[3, 0x3000, 20, 0, 0, 0], 0, &packet)),
            [("serv_addr.sa_family", 0x3000, 2), ("serv_addr.sa_data", 0x3002, 18)]
        );
        // An unreadable family stops after it; a null or empty address is not read at all.
        assert_eq!(names(&ranges(connect.pre, &[3, 0x4000, 16, 0, 0, 0], 0, &NO_MEM)), [("serv_addr.sa_family", 0x4000, 2)]);
        assert!(ranges(connect.pre, &[3, 0, 0, 0, 0, 0], 0, &NO_MEM).is_empty());
        assert!(ranges(connect.pre, &[3, 0x1000, 0, 0, 0, 0], 0, &un).is_empty());
        // sendto: the message, then the optional destination.
        let sendto = lookup(S::sendto as u64).unwrap();
        assert_eq!(names(&ranges(sendto.pre, &[3, 0x5000, 4, 0, 0, 0], 0, &NO_MEM)), [("msg", 0x5000, 4)]);
        assert_eq!(
            names(&ranges(sendto.pre, &[3, 0x5000, 4, 0, 0x1000, 110], 0, &un)),
            [("msg", 0x5000, 4), ("to.sa_family", 0x1000, 2), ("to.sun_path", 0x1002, 7)]
        );
    }
}
