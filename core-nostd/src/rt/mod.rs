//! Process runtime of a tool executable (no libc): what `_start` hands over ([`StartInfo`]),
//! the implementations behind the C symbols the compiler expects (`memcpy`, `memmove`, `memset`,
//! `memcmp`, `bcmp`, `strlen`, `getauxval`), the internal-error report of a panic, and dying by
//! a signal. The [`tool_main!`](crate::tool_main) macro puts the entry point, the lang items and
//! the `#[no_mangle]` symbols into the tool binary itself: they must not exist in this rlib,
//! because std test binaries link it too (and have their own).
//!
//! Depends on [`crate::syscall`], [`crate::log`].

use alloc::string::String;
use alloc::vec::Vec;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use crate::syscall;

/// What the kernel left on the initial stack: argc, argv, envp and the auxiliary vector.
#[derive(Clone, Copy, Debug)]
pub struct StartInfo {
    pub argc: usize,
    pub argv: *const *const u8,
    pub envp: *const *const u8,
    pub auxv: *const [usize; 2],
}

impl StartInfo {
    /// Read the initial stack at `sp` (pointing at argc) and remember the auxv for
    /// [`getauxval`].
    ///
    /// # Safety
    /// `sp` must be the stack pointer the kernel gave the process at entry.
    pub unsafe fn from_stack(sp: *const usize) -> StartInfo {
        // SAFETY: the kernel's layout: argc, argv[argc], NULL, envp..., NULL, auxv pairs.
        unsafe {
            let argc = *sp;
            let argv = sp.add(1) as *const *const u8;
            let envp = argv.add(argc + 1);
            let mut p = envp;
            while !(*p).is_null() {
                p = p.add(1);
            }
            let auxv = p.add(1) as *const [usize; 2];
            AUXV.store(auxv as *mut [usize; 2], Ordering::Relaxed);
            StartInfo { argc, argv, envp, auxv }
        }
    }

    /// The arguments (argv[0] first).
    pub fn args(&self) -> Vec<&'static str> {
        // SAFETY: argv has argc valid C strings that live as long as the process.
        (0..self.argc).map(|i| unsafe { c_str(*self.argv.add(i)) }).collect()
    }

    /// The environment, as `NAME=value` strings.
    pub fn env(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut p = self.envp;
        // SAFETY: envp is a NULL-terminated array of C strings that live as long as the process.
        unsafe {
            while !(*p).is_null() {
                v.push(c_str(*p));
                p = p.add(1);
            }
        }
        v
    }
}

/// A C string from the initial stack as `&str`. Bytes that are not UTF-8 are replaced (the
/// core's interfaces take `&str`); the replacement copy lives for the rest of the process.
///
/// # Safety
/// `p` must point to a NUL-terminated string that is never freed.
unsafe fn c_str(p: *const u8) -> &'static str {
    // SAFETY: caller contract.
    let bytes = unsafe { core::slice::from_raw_parts(p, strlen(p)) };
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => String::leak(String::from_utf8_lossy(bytes).into_owned()),
    }
}

static AUXV: AtomicPtr<[usize; 2]> = AtomicPtr::new(ptr::null_mut());

/// The value of auxiliary-vector entry `ty` of the tool process (0 if absent). Behind the C
/// `getauxval`, which compiler_builtins calls on aarch64 to detect atomics.
pub fn getauxval(ty: usize) -> usize {
    let mut a = AUXV.load(Ordering::Relaxed) as *const [usize; 2];
    if a.is_null() {
        return 0;
    }
    // SAFETY: AUXV points at the kernel's AT_NULL-terminated auxv (set by from_stack).
    unsafe {
        while (*a)[0] != 0 {
            if (*a)[0] == ty {
                return (*a)[1];
            }
            a = a.add(1);
        }
    }
    0
}

static PANICKING: AtomicBool = AtomicBool::new(false);

/// The internal-error report of a panic (a bug in the tool, never the guest's fault), then exit
/// with status 1.
pub fn panic_report(info: &core::panic::PanicInfo<'_>) -> ! {
    if PANICKING.swap(true, Ordering::Relaxed) {
        // Panicked while reporting: give up quietly rather than loop.
        syscall::exit_group(1);
    }
    let loc = info.location();
    crate::log::error_line(format_args!("the 'impossible' happened:"));
    match loc {
        Some(l) => crate::log::stderr(format_args!("   {} (at {}:{})\n", info.message(), l.file(), l.line())),
        None => crate::log::stderr(format_args!("   {}\n", info.message())),
    }
    crate::log::stderr(format_args!(
        "\nThis is a bug in {}, not in the program being run. Please report it.\n",
        crate::log::NAME_VERSION
    ));
    syscall::exit_group(1)
}

/// Die by signal `sig` with its default action, so that the exit status the parent sees is the
/// guest's. No core file: it would be the tool's, not the guest's. Exits with 128+sig if the
/// signal does not kill.
pub fn die_by_signal(sig: i32) -> ! {
    const RLIMIT_CORE: i32 = 4;
    let zero = [0u64; 2];
    // SAFETY: prlimit64 reads the two-word limit struct; SIG_DFL is a valid action.
    unsafe {
        let _ = syscalls::syscall!(syscalls::Sysno::prlimit64, 0, RLIMIT_CORE, zero.as_ptr(), 0);
        let dfl = syscall::KernelSigaction::default();
        let _ = syscall::rt_sigaction(sig, Some(&dfl));
    }
    if (1..=64).contains(&sig) {
        let _ = syscall::rt_sigprocmask(syscall::SIG_UNBLOCK, 1u64 << (sig - 1));
    }
    let _ = syscall::tgkill(syscall::getpid(), syscall::gettid(), sig);
    syscall::exit_group(128 + sig)
}

// The C memory and string functions. compiler_builtins does not provide them on *-linux-gnu,
// and no libc is linked. These bodies must not be compiled into calls to the functions they
// implement: on x86-64 they are string instructions, elsewhere volatile byte loops (which
// LLVM does not recognise as memcpy/memset idioms).

/// # Safety
/// As C `memcpy`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub unsafe fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    // SAFETY: caller contract: n bytes readable at s, writable at d.
    unsafe {
        core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") d => _, inout("rsi") s => _,
            options(nostack, preserves_flags));
    }
    d
}

/// # Safety
/// As C `memmove`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub unsafe fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    if (d as usize).wrapping_sub(s as usize) >= n {
        // Destination below the source or disjoint: a forward copy is safe.
        // SAFETY: caller contract.
        unsafe { memcpy(d, s, n) }
    } else {
        // SAFETY: caller contract; copy backwards (direction flag set, then cleared as the ABI
        // requires).
        unsafe {
            core::arch::asm!("std", "rep movsb", "cld",
                inout("rcx") n => _, inout("rdi") d.add(n - 1) => _, inout("rsi") s.add(n - 1) => _,
                options(nostack));
        }
        d
    }
}

/// # Safety
/// As C `memset`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub unsafe fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: caller contract: n bytes writable at d.
    unsafe {
        core::arch::asm!("rep stosb", inout("rcx") n => _, inout("rdi") d => _, in("al") c as u8,
            options(nostack, preserves_flags));
    }
    d
}

/// # Safety
/// As C `memcpy`.
#[cfg(not(target_arch = "x86_64"))]
pub unsafe fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: caller contract.
        unsafe { ptr::write_volatile(d.add(i), ptr::read_volatile(s.add(i))) }
    }
    d
}

/// # Safety
/// As C `memmove`.
#[cfg(not(target_arch = "x86_64"))]
pub unsafe fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    if (d as usize) <= (s as usize) {
        // SAFETY: caller contract; forward copy is safe when the destination is lower.
        unsafe { memcpy(d, s, n) }
    } else {
        for i in (0..n).rev() {
            // SAFETY: caller contract.
            unsafe { ptr::write_volatile(d.add(i), ptr::read_volatile(s.add(i))) }
        }
        d
    }
}

/// # Safety
/// As C `memset`.
#[cfg(not(target_arch = "x86_64"))]
pub unsafe fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: caller contract.
        unsafe { ptr::write_volatile(d.add(i), c as u8) }
    }
    d
}

/// # Safety
/// As C `memcmp` (also serves `bcmp`).
pub unsafe fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: caller contract: n bytes readable at a and b.
        let (x, y) = unsafe { (ptr::read_volatile(a.add(i)), ptr::read_volatile(b.add(i))) };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

/// # Safety
/// As C `strlen`.
pub unsafe fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: caller contract: s is NUL-terminated.
    while unsafe { ptr::read_volatile(s.add(n)) } != 0 {
        n += 1;
    }
    n
}

/// The entry point and runtime symbols of a tool executable. Invoke once, at the top level of
/// the tool's `main.rs` (a `#![no_std] #![no_main]` binary):
///
/// ```text
/// vg_core::tool_main!(NoneTool::default(), Guest = vg_amd64_guest::Amd64,
///                     Host = vg_amd64_host::Amd64Host, Os = vg_linux::Linux);
/// ```
///
/// It defines `_start` (which calls [`crate::startup::main`] with the tool value), the panic
/// handler, the global allocator (the core's arenas), the C symbols `memcpy`, `memmove`,
/// `memset`, `memcmp`, `bcmp`, `strlen` and `getauxval`, and the `_Unwind_Resume` /
/// `rust_eh_personality` stubs that precompiled `core` references in debug builds (never
/// called: tool executables abort on panic).
#[macro_export]
macro_rules! tool_main {
    ($tool:expr, Guest = $guest:ty, Host = $host:ty, Os = $os:ty $(,)?) => {
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        #[unsafe(link_section = ".text._start")]
        pub unsafe extern "C" fn _start() -> ! {
            ::core::arch::naked_asm!(
                "xor ebp, ebp", // outermost frame
                "mov rdi, rsp", // &argc
                "and rsp, -16", // SysV stack alignment before a call
                "call {entry}",
                "ud2",
                entry = sym __vg_entry,
            )
        }

        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        #[unsafe(link_section = ".text._start")]
        pub unsafe extern "C" fn _start() -> ! {
            ::core::arch::naked_asm!(
                "mov x29, #0", // outermost frame
                "mov x30, #0",
                "mov x0, sp", // &argc
                "bl {entry}",
                "brk #0",
                entry = sym __vg_entry,
            )
        }

        unsafe extern "C" fn __vg_entry(sp: *const usize) -> ! {
            // SAFETY: called only from _start with the kernel's initial stack pointer.
            let si = unsafe { $crate::rt::StartInfo::from_stack(sp) };
            $crate::startup::main::<$guest, $host, $os, _>($tool, &si)
        }

        #[panic_handler]
        fn __vg_panic(info: &::core::panic::PanicInfo<'_>) -> ! {
            $crate::rt::panic_report(info)
        }

        #[global_allocator]
        static __VG_ALLOCATOR: $crate::arena::CoreAllocator = $crate::arena::CoreAllocator;

        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
            // SAFETY: forwarded C contract.
            unsafe { $crate::rt::memcpy(d, s, n) }
        }

        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
            // SAFETY: forwarded C contract.
            unsafe { $crate::rt::memmove(d, s, n) }
        }

        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
            // SAFETY: forwarded C contract.
            unsafe { $crate::rt::memset(d, c, n) }
        }

        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: forwarded C contract.
            unsafe { $crate::rt::memcmp(a, b, n) }
        }

        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: forwarded C contract.
            unsafe { $crate::rt::memcmp(a, b, n) }
        }

        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn strlen(s: *const u8) -> usize {
            // SAFETY: forwarded C contract.
            unsafe { $crate::rt::strlen(s) }
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn getauxval(ty: usize) -> usize {
            $crate::rt::getauxval(ty)
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn _Unwind_Resume() -> ! {
            $crate::syscall::exit_group(134)
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn rust_eh_personality() {}
    };
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn mem_functions() {
        let mut buf = *b"0123456789";
        // SAFETY: all ranges lie within `buf`.
        unsafe {
            memmove(buf.as_mut_ptr().add(2), buf.as_ptr(), 5);
            assert_eq!(&buf, b"0101234789");
            memmove(buf.as_mut_ptr(), buf.as_ptr().add(3), 4);
            assert_eq!(&buf, b"1234234789");
            memset(buf.as_mut_ptr(), b'x' as i32, 3);
            assert_eq!(&buf, b"xxx4234789");
            let src = *b"abc";
            memcpy(buf.as_mut_ptr().add(7), src.as_ptr(), 3);
            assert_eq!(&buf, b"xxx4234abc");
            assert_eq!(memcmp(b"abc".as_ptr(), b"abd".as_ptr(), 3), -1);
            assert_eq!(memcmp(b"abc".as_ptr(), b"abd".as_ptr(), 2), 0);
            assert!(memcmp(b"b".as_ptr(), b"a".as_ptr(), 1) > 0);
            assert_eq!(strlen(b"hello\0world".as_ptr()), 5);
        }
    }

    #[test]
    fn start_info_from_a_fake_stack() {
        let a0 = b"prog\0";
        let a1 = b"-q\0";
        let e0 = b"HOME=/h\0";
        let stack: [usize; 9] = [
            2,
            a0.as_ptr() as usize,
            a1.as_ptr() as usize,
            0,
            e0.as_ptr() as usize,
            0,
            6, // AT_PAGESZ
            4096,
            0,
        ];
        // SAFETY: `stack` has the kernel's initial-stack layout and the strings outlive the test.
        // from_stack also records this auxv for getauxval; no other test depends on it.
        let si = unsafe { StartInfo::from_stack(stack.as_ptr()) };
        assert_eq!(si.args(), ["prog", "-q"]);
        assert_eq!(si.env(), ["HOME=/h"]);
        assert_eq!(getauxval(6), 4096);
        assert_eq!(getauxval(3), 0);
    }
}
