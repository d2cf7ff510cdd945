//! Host signals: the core owns the handlers of the synchronous fault signals. A fault inside
//! generated code is the guest's (a division by zero, a bad memory access): the handler records
//! it and makes the translation leave through an assisted exit, so the scheduler can deliver it to
//! the guest at the instruction in the guest state's pc. A fault anywhere else is a bug in the
//! tool and gets the internal-error report.
//!
//! Uses: `arch` (the host's context layout), `transtab` (is a pc generated code?), `syscall`, `log`.

use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use crate::arch::HostArch;
use crate::syscall::{self, KernelSigaction};
use vg_ir::JumpKind;

pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGSEGV: i32 = 11;

const SA_SIGINFO: u64 = 0x4;
const SA_RESTORER: u64 = 0x0400_0000;

/// The last guest fault caught in generated code: signal, si_code and faulting data address.
static FAULT_SIGNAL: AtomicI32 = AtomicI32::new(0);
static FAULT_CODE: AtomicI32 = AtomicI32::new(0);
static FAULT_ADDR: AtomicU64 = AtomicU64::new(0);

/// A guest fault as the kernel described it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub signal: i32,
    pub code: i32,
    pub addr: u64,
}

/// Take (and clear) the fault recorded by the handler.
pub fn take_fault() -> Option<Fault> {
    let signal = FAULT_SIGNAL.swap(0, Ordering::Relaxed);
    (signal != 0).then(|| Fault {
        signal,
        code: FAULT_CODE.load(Ordering::Relaxed),
        addr: FAULT_ADDR.load(Ordering::Relaxed),
    })
}

/// Install the core's handlers for the synchronous fault signals.
pub fn install_fault_handlers<H: HostArch>() {
    let act = KernelSigaction {
        handler: fault_handler::<H> as *const () as usize,
        flags: SA_SIGINFO | SA_RESTORER,
        restorer: restorer as *const () as usize,
        mask: 0,
    };
    for sig in [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP] {
        // SAFETY: fault_handler is an SA_SIGINFO handler that only touches atomics and the
        // context, and the restorer performs rt_sigreturn.
        if let Err(e) = unsafe { syscall::rt_sigaction(sig, Some(&act)) } {
            panic!("cannot install the handler of signal {sig}: {e:?}");
        }
    }
}

/// Byte offsets in the kernel's siginfo_t: si_code and si_addr.
const SI_CODE: usize = 8;
const SI_ADDR: usize = 16;

extern "C" fn fault_handler<H: HostArch>(sig: i32, info: *const u8, uc: *mut u8) {
    // SAFETY: the kernel passes a valid siginfo and ucontext to an SA_SIGINFO handler.
    let (code, addr, pc) = unsafe {
        (*(info.add(SI_CODE) as *const i32), *(info.add(SI_ADDR) as *const u64), H::fault_pc(uc))
    };
    if !crate::transtab::in_code_cache(pc) {
        crate::log::error_line(format_args!(
            "the 'impossible' happened: the tool itself got signal {sig} (code {code}) at {pc:#x}, data address {addr:#x}"
        ));
        crate::rt::die_by_signal(sig);
    }
    let kind = match sig {
        SIGFPE => JumpKind::SigFpeIntDiv,
        SIGILL => JumpKind::SigIll,
        SIGTRAP => JumpKind::SigTrap,
        _ => JumpKind::SigSegv,
    };
    FAULT_CODE.store(code, Ordering::Relaxed);
    FAULT_ADDR.store(addr, Ordering::Relaxed);
    FAULT_SIGNAL.store(sig, Ordering::Relaxed);
    // SAFETY: the fault is in generated code (checked above).
    unsafe { H::redirect_fault(uc, kind) };
}

/// Return path of the handlers: the kernel needs an explicit rt_sigreturn (no libc here).
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
extern "C" fn restorer() {
    core::arch::naked_asm!("mov eax, 15", "syscall", "ud2")
}

#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
extern "C" fn restorer() {
    core::arch::naked_asm!("mov x8, #139", "svc #0", "brk #0")
}
