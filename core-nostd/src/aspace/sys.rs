//! The few raw system calls the address-space manager and the loader make themselves
//! (mapping, file reading, randomness). Kept private so that these two modules stand alone: they
//! depend on nothing else in the core.

use syscalls::{Sysno, raw};

pub(crate) const PROT_READ: u32 = 1;
pub(crate) const PROT_WRITE: u32 = 2;
pub(crate) const PROT_EXEC: u32 = 4;

pub(crate) const MAP_PRIVATE: u32 = 0x02;
pub(crate) const MAP_FIXED: u32 = 0x10;
pub(crate) const MAP_ANONYMOUS: u32 = 0x20;
pub(crate) const MAP_FIXED_NOREPLACE: u32 = 0x10_0000;

pub(crate) const O_RDONLY: u64 = 0;
pub(crate) const O_CLOEXEC: u64 = 0o2000000;
const AT_FDCWD: i64 = -100;

pub(crate) const ENOENT: i32 = 2;
pub(crate) const ENOMEM: i32 = 12;
pub(crate) const EACCES: i32 = 13;
pub(crate) const EEXIST: i32 = 17;
pub(crate) const EISDIR: i32 = 21;

/// A raw return value as a `Result`: kernel errors are -1..=-4095.
fn check(ret: usize) -> Result<u64, i32> {
    if ret > (-4096isize) as usize { Err(-(ret as isize) as i32) } else { Ok(ret as u64) }
}

/// A NUL-terminated copy of `path` on the stack (paths longer than 4095 bytes are refused).
fn with_cpath<R>(path: &str, f: impl FnOnce(*const u8) -> Result<R, i32>) -> Result<R, i32> {
    let mut buf = [0u8; 4096];
    if path.len() >= buf.len() || path.as_bytes().contains(&0) {
        return Err(ENOENT);
    }
    buf[..path.len()].copy_from_slice(path.as_bytes());
    f(buf.as_ptr())
}

pub(crate) fn open(path: &str, flags: u64) -> Result<i32, i32> {
    with_cpath(path, |p| {
        // SAFETY: p is a valid NUL-terminated string for the duration of the call.
        check(unsafe { raw::syscall4(Sysno::openat as usize, AT_FDCWD as usize, p as usize, flags as usize, 0) })
            .map(|fd| fd as i32)
    })
}

pub(crate) fn close(fd: i32) {
    // SAFETY: closing a descriptor this module opened; no memory is involved.
    unsafe { raw::syscall1(Sysno::close as usize, fd as usize) };
}

/// Read up to `buf.len()` bytes at file offset `off`.
pub(crate) fn pread(fd: i32, buf: &mut [u8], off: u64) -> Result<usize, i32> {
    // SAFETY: the kernel writes at most buf.len() bytes into buf.
    check(unsafe {
        raw::syscall4(Sysno::pread64 as usize, fd as usize, buf.as_mut_ptr() as usize, buf.len(), off as usize)
    })
    .map(|n| n as usize)
}

/// Read exactly `buf.len()` bytes at `off` (a short file is `Err(0)`).
pub(crate) fn pread_exact(fd: i32, buf: &mut [u8], off: u64) -> Result<(), i32> {
    let mut done = 0;
    while done < buf.len() {
        match pread(fd, &mut buf[done..], off + done as u64)? {
            0 => return Err(0),
            n => done += n,
        }
    }
    Ok(())
}

/// Read a whole (small, unseekable-size) file such as /proc/self/maps.
pub(crate) fn read_file(path: &str) -> Result<alloc::vec::Vec<u8>, i32> {
    let fd = open(path, O_RDONLY | O_CLOEXEC)?;
    let mut out = alloc::vec::Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // SAFETY: the kernel writes at most chunk.len() bytes into chunk.
        let r = check(unsafe { raw::syscall3(Sysno::read as usize, fd as usize, chunk.as_mut_ptr() as usize, chunk.len()) });
        match r {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n as usize]),
            Err(e) => {
                close(fd);
                return Err(e);
            }
        }
    }
    close(fd);
    Ok(out)
}

/// readlink(2) of `path`, as a string (lossy for non-UTF-8 names).
pub(crate) fn readlink(path: &str) -> Result<alloc::string::String, i32> {
    let mut buf = [0u8; 4096];
    let n = with_cpath(path, |p| {
        // SAFETY: p is NUL-terminated; the kernel writes at most buf.len() bytes into buf.
        check(unsafe {
            raw::syscall4(Sysno::readlinkat as usize, AT_FDCWD as usize, p as usize, buf.as_mut_ptr() as usize, buf.len())
        })
    })? as usize;
    Ok(alloc::string::String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// mmap(2). The caller is responsible for the placement being safe (see the aspace rules).
pub(crate) fn mmap(addr: u64, len: u64, prot: u32, flags: u32, fd: i32, off: u64) -> Result<u64, i32> {
    // SAFETY: mapping memory does not touch existing Rust objects unless MAP_FIXED is used over
    // them; callers only map over ranges the address-space manager gives to the client.
    check(unsafe {
        raw::syscall6(Sysno::mmap as usize, addr as usize, len as usize, prot as usize, flags as usize, fd as isize as usize, off as usize)
    })
}

pub(crate) fn munmap(addr: u64, len: u64) -> Result<u64, i32> {
    // SAFETY: callers only unmap client ranges, which no Rust object lives in.
    check(unsafe { raw::syscall2(Sysno::munmap as usize, addr as usize, len as usize) })
}

pub(crate) fn mprotect(addr: u64, len: u64, prot: u32) -> Result<u64, i32> {
    // SAFETY: callers only change client ranges, which no Rust object lives in.
    check(unsafe { raw::syscall3(Sysno::mprotect as usize, addr as usize, len as usize, prot as usize) })
}

/// Fill `buf` from the kernel's random source.
pub(crate) fn getrandom(buf: &mut [u8]) -> Result<(), i32> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the kernel writes at most the remaining length into buf.
        let n = check(unsafe {
            raw::syscall3(Sysno::getrandom as usize, buf[done..].as_mut_ptr() as usize, buf.len() - done, 0)
        })?;
        done += n as usize;
    }
    Ok(())
}

/// faccessat(2) with `mode` (`X_OK` = 1).
pub(crate) fn access(path: &str, mode: u64) -> Result<(), i32> {
    with_cpath(path, |p| {
        // SAFETY: p is a valid NUL-terminated string for the duration of the call.
        check(unsafe { raw::syscall3(Sysno::faccessat as usize, AT_FDCWD as usize, p as usize, mode as usize) })
            .map(|_| ())
    })
}
