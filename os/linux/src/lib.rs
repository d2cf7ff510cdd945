//! The Linux OS layer: how the guest's system calls are checked, emulated or passed to the
//! kernel.
//!
//! - [`table`]: one entry per system call — its name, the memory the kernel reads (PRE) and
//!   writes (POST) named by parameter, and whether it is passed through or emulated.
//! - [`emul`]: the emulated calls (mmap family and brk through the address-space manager,
//!   arch_prctl on the guest state, readlink of /proc/self/exe, signal calls, exits).
//! - [`observer`]: the hook through which a tool hears about PRE reads and POST writes.
//!
//! Only the amd64-linux table exists; the guest shares the core's address space, so guest
//! pointers are passed to the kernel unchanged.
//!
//! Depends on `vg-core` (the `Os` trait, the address-space manager, the loaded client, the log).

#![no_std]

extern crate alloc;

pub mod emul;
pub mod observer;
pub mod process;
pub mod table;

use vg_core::arch::{GuestArch, Os, SyscallOutcome};
use vg_core::aspace;

/// The Linux OS layer, as the scheduler sees it.
pub struct Linux;

/// `-e` as a raw kernel return value.
pub fn errno(e: i32) -> u64 {
    (-(e as i64)) as u64
}

/// Make system call `nr` on the host with `args`, returning the raw result (-errno on error).
pub(crate) fn raw_syscall(nr: u64, a: [u64; 6]) -> u64 {
    // SAFETY: the call is the guest's own (or the emulation's), made with guest pointers into
    // the shared address space; the emulated calls that could harm the core (memory mapping,
    // signals, exits, TLS) never get here.
    unsafe {
        syscalls::raw::syscall6(nr as usize, a[0] as usize, a[1] as usize, a[2] as usize, a[3] as usize, a[4] as usize, a[5] as usize)
            as u64
    }
}

/// The client's memory as the descriptions read it: bounded by what is readable, so that a bad
/// guest pointer yields a report from the tool rather than a fault in the core.
struct ClientMem;

impl table::GuestMem for ClientMem {
    fn cstr_len(&self, addr: u64) -> u64 {
        let n = aspace::readable_extent(addr, 4096) as usize;
        // SAFETY: [addr, addr+n) is readable client memory.
        let bytes = unsafe { core::slice::from_raw_parts(addr as *const u8, n) };
        bytes.iter().position(|&b| b == 0).map_or(1, |i| i as u64 + 1)
    }
    fn read_u16(&self, addr: u64) -> Option<u16> {
        // SAFETY: the two bytes are readable client memory (checked first); unaligned read.
        (aspace::readable_extent(addr, 2) == 2).then(|| unsafe { core::ptr::read_unaligned(addr as *const u16) })
    }
}

fn warn_unhandled(arch: &str, nr: u64) {
    if vg_core::log::verbosity() >= 1 {
        vg_core::dmsg!("WARNING: unhandled {arch}-linux syscall: {nr}");
    }
}

impl Os for Linux {
    const NAME: &'static str = "linux";

    fn syscall<G: GuestArch>(state: &mut [u8], nr: u64, args: [u64; 6]) -> SyscallOutcome {
        let regs = GuestRegs {
            tls_base: G::tls_base,
            set_tls_base: G::set_tls_base,
            sp: G::sp(state),
            sp_offset: G::SP_OFFSET,
            pc: G::pc(state),
        };
        dispatch_with(G::NAME, state, nr, args, regs)
    }

    fn restartable(nr: u64) -> bool {
        table::restartable(nr)
    }

    fn fini() {
        if vg_core::options::current().track_fds {
            process::report_open_fds();
        }
    }
}

/// What the dispatcher needs of the guest's registers besides the state bytes.
#[derive(Clone, Copy)]
pub struct GuestRegs {
    pub tls_base: fn(&[u8]) -> u64,
    pub set_tls_base: fn(&mut [u8], u64),
    /// Stack pointer and program counter at the call, and where the stack pointer lives.
    pub sp: u64,
    pub sp_offset: u32,
    pub pc: u64,
}

/// Carry out guest system call `nr` for a guest of architecture `arch` (Valgrind's name), with
/// the guest's TLS-base accessors: tool hooks for PRE reads, the call (passed or emulated),
/// tool hooks for POST writes.
pub fn dispatch(
    arch: &str,
    state: &mut [u8],
    nr: u64,
    args: [u64; 6],
    tls_base: fn(&[u8]) -> u64,
    set_tls_base: fn(&mut [u8], u64),
) -> SyscallOutcome {
    dispatch_with(arch, state, nr, args, GuestRegs { tls_base, set_tls_base, sp: 0, sp_offset: 0, pc: 0 })
}

/// [`dispatch`] with all of the guest's registers the emulation may need.
pub fn dispatch_with(arch: &str, state: &mut [u8], nr: u64, args: [u64; 6], regs: GuestRegs) -> SyscallOutcome {
    // The table holds amd64 numbers and ABI structures.
    let desc = if arch == "amd64" { table::lookup(nr) } else { None };
    let Some(d) = desc else {
        warn_unhandled(arch, nr);
        return SyscallOutcome::Return(errno(emul::ENOSYS));
    };
    let obs = observer::get();
    if let Some(o) = obs {
        for (param, addr, len) in table::ranges(d.pre, &args, 0, &ClientMem) {
            o.pre_mem_read(d.name, &param, addr, len);
        }
    }
    let out = match d.how {
        table::How::Pass => SyscallOutcome::Return(vg_core::scheduler::blocking_syscall(nr, args)),
        table::How::Quick => SyscallOutcome::Return(raw_syscall(nr, args)),
        table::How::Emul(h) => h(&mut emul::Call {
            state,
            nr,
            args,
            tls_base: regs.tls_base,
            set_tls_base: regs.set_tls_base,
            sp: regs.sp,
            sp_offset: regs.sp_offset,
            pc: regs.pc,
        }),
    };
    if let (Some(o), SyscallOutcome::Return(r)) = (obs, out)
        && r <= (-4096i64) as u64
    {
        for (param, addr, len) in table::ranges(d.post, &args, r, &ClientMem) {
            o.post_mem_write(d.name, &param, addr, len);
        }
    }
    out
}

#[cfg(test)]
mod tests;
