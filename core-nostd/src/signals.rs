//! Signals (Valgrind's `m_signals`): the core owns every host handler; the guest's dispositions,
//! masks and pending signals are emulated here.
//!
//! - Synchronous faults: a fault inside generated code is the guest's (a division by zero, a
//!   bad memory access): the handler records it and makes the translation leave through an
//!   assisted exit, so the scheduler can deliver it at the instruction in the guest state's pc.
//!   A fault anywhere else is a bug in the tool and gets the internal-error report.
//! - Asynchronous signals (kill, alarm, SIGCHLD, ...): the host handler records them as pending
//!   (for the thread, if thread-directed, else for the process); the scheduler delivers them at
//!   the next block boundary. Blocking system calls go through [`window`], so a signal always
//!   interrupts them.
//!
//! Uses: `arch` (the host's context layout), `transtab` (is a pc generated code?), `threads`
//! (the slot of a thread-directed signal), `syscall`, `log`.

use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use crate::arch::{HostArch, SIGINFO_SIZE};
use crate::syscall::{self, KernelSigaction};
use vg_ir::JumpKind;

pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGSEGV: i32 = 11;

pub const SA_SIGINFO: u64 = 0x4;
pub const SA_RESTORER: u64 = 0x0400_0000;

/// The last guest fault caught in generated code: signal, si_code and faulting data address.
static FAULT_SIGNAL: AtomicI32 = AtomicI32::new(0);
static FAULT_CODE: AtomicI32 = AtomicI32::new(0);
static FAULT_ADDR: AtomicU64 = AtomicU64::new(0);
static FAULT_HOST_PC: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// A guest fault as the kernel described it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub signal: i32,
    pub code: i32,
    pub addr: u64,
    /// The faulting host instruction (in generated code).
    pub host_pc: usize,
}

/// Take (and clear) the fault recorded by the handler.
pub fn take_fault() -> Option<Fault> {
    let signal = FAULT_SIGNAL.swap(0, Ordering::Relaxed);
    (signal != 0).then(|| Fault {
        signal,
        host_pc: FAULT_HOST_PC.load(Ordering::Relaxed),
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
    if code <= SI_USER_MAX {
        // Sent by kill/tgkill, not caused by an instruction: an asynchronous signal.
        // SAFETY: as above.
        unsafe { window::check(uc) };
        record(sig, info);
        return;
    }
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
    FAULT_HOST_PC.store(pc, Ordering::Relaxed);
    FAULT_SIGNAL.store(sig, Ordering::Relaxed);
    // SAFETY: the fault is in generated code (checked above).
    unsafe { H::redirect_fault(uc, kind) };
}

// --- the guest's signals --------------------------------------------------------------------

/// The signal the core sends its own threads to get one out of a blocking system call (the
/// process is ending). The guest may not use it, as with Valgrind's reserved signal.
pub const SIG_VGKILL: i32 = 64;
pub const SIGKILL: i32 = 9;
pub const SIGSTOP: i32 = 19;
pub const SIGCHLD: i32 = 17;

pub const SA_NOCLDSTOP: u64 = 1;
pub const SA_NOCLDWAIT: u64 = 2;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

/// Signals the kernel delivers at once when they are caused by an instruction.
const SYNC_SIGNALS: [i32; 5] = [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP];
const SI_USER_MAX: i32 = 0;
const SI_TKILL: i32 = -6;

pub const fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// A guest's `struct kernel_sigaction`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestSigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// The guest's dispositions, signals 1..=64 (index 0 unused).
static ACTIONS: spin::Mutex<[GuestSigAction; 65]> = spin::Mutex::new([GuestSigAction { handler: 0, flags: 0, restorer: 0, mask: 0 }; 65]);

/// Process-directed signals caught by the host handler and not yet delivered.
pub static PROC_PENDING: AtomicU64 = AtomicU64::new(0);
/// The siginfo of the last instance of each signal caught (standard signals do not queue).
static PENDING_INFO: [[AtomicU64; 16]; 65] = [const { [const { AtomicU64::new(0) }; 16] }; 65];

/// The guest's disposition of `sig`.
pub fn action(sig: i32) -> GuestSigAction {
    ACTIONS.lock()[sig as usize]
}

/// Whether `sig` (1..=64) may be given to the guest's sigaction.
pub fn valid_guest_signal(sig: u64) -> bool {
    (1..=64).contains(&sig) && sig != SIG_VGKILL as u64
}

/// rt_sigaction for the guest: record `new` (if any) and return the old disposition. The host
/// keeps the core's handler, except that a guest SIG_IGN is mirrored (the kernel then discards
/// the signal, and SIGCHLD ignored reaps children), and so are SIGCHLD's NOCLDSTOP/NOCLDWAIT.
pub fn set_action(sig: i32, new: Option<GuestSigAction>) -> GuestSigAction {
    let mut acts = ACTIONS.lock();
    let old = acts[sig as usize];
    if let Some(mut a) = new {
        a.mask &= !(bit(SIGKILL) | bit(SIGSTOP));
        acts[sig as usize] = a;
        drop(acts);
        install_async(sig, &a);
    }
    old
}

const SIGRETURN_FLAGS: u64 = SA_SIGINFO | SA_RESTORER;

/// The host action for `sig` given the guest's `a`.
fn install_async(sig: i32, a: &GuestSigAction) {
    if SYNC_SIGNALS.contains(&sig) {
        return;
    }
    let handler = ASYNC_HANDLER.load(Ordering::Relaxed);
    if handler == 0 {
        // The core's handlers are not installed (no guest runs): leave the host alone.
        return;
    }
    let host = if a.handler == SIG_IGN {
        KernelSigaction { handler: SIG_IGN as usize, flags: SA_RESTORER, restorer: restorer as *const () as usize, mask: 0 }
    } else {
        let extra = if sig == SIGCHLD { a.flags & (SA_NOCLDSTOP | SA_NOCLDWAIT) } else { 0 };
        KernelSigaction { handler: handler as usize, flags: SIGRETURN_FLAGS | extra, restorer: restorer as *const () as usize, mask: 0 }
    };
    // SAFETY: the handler is the core's async handler (or SIG_IGN).
    let _ = unsafe { syscall::rt_sigaction(sig, Some(&host)) };
}

static ASYNC_HANDLER: AtomicU64 = AtomicU64::new(0);

/// Install the core's handlers for every catchable signal and return the guest's initial mask
/// (the mask the tool was started with). Signals the tool inherited as ignored start ignored
/// for the guest too; the host mask is then cleared (the guest's mask is applied by the core).
pub fn install_all<H: HostArch>() -> u64 {
    install_fault_handlers::<H>();
    ASYNC_HANDLER.store(async_handler as *const () as u64, Ordering::Relaxed);
    for sig in 1..=64 {
        if sig == SIGKILL || sig == SIGSTOP || SYNC_SIGNALS.contains(&sig) {
            continue;
        }
        // SAFETY: querying an action has no effect.
        let inherited = unsafe { syscall::rt_sigaction(sig, None) }.unwrap_or_default();
        let mut a = GuestSigAction::default();
        if inherited.handler == SIG_IGN as usize && sig != SIG_VGKILL {
            a.handler = SIG_IGN;
            ACTIONS.lock()[sig as usize] = a;
        }
        install_async(sig, &a);
    }
    let inherited = syscall::rt_sigprocmask(syscall::SIG_SETMASK, 0).unwrap_or(0);
    inherited & !(bit(SIGKILL) | bit(SIGSTOP) | bit(SIG_VGKILL))
}

/// Byte offsets in siginfo_t of si_pid (kill) and the sender.
const SI_PID: usize = 16;

/// Record an asynchronous signal: thread-directed ones (tgkill) for the receiving thread,
/// the rest for the process. A signal arriving inside the blocking-syscall window before the
/// call makes the call fail with EINTR, so that a blocking call never sleeps on it.
extern "C" fn async_handler(sig: i32, info: *const u8, uc: *mut u8) {
    // SAFETY: the kernel passes valid siginfo and ucontext pointers to an SA_SIGINFO handler.
    unsafe { window::check(uc) };
    record(sig, info);
}

fn record(sig: i32, info: *const u8) {
    // SAFETY: siginfo is 128 readable bytes.
    let words = unsafe { core::slice::from_raw_parts(info as *const u64, 16) };
    for (slot, w) in PENDING_INFO[sig as usize].iter().zip(words) {
        slot.store(*w, Ordering::Relaxed);
    }
    // SAFETY: as above.
    let code = unsafe { *(info.add(SI_CODE) as *const i32) };
    let from_us = unsafe { *(info.add(SI_PID) as *const i32) } == syscall::getpid();
    let thread_slot = if (code == SI_TKILL && from_us) || sig == SIG_VGKILL {
        crate::threads::slot_of_tid(syscall::gettid())
    } else {
        None
    };
    match thread_slot {
        Some(s) => crate::threads::SLOT_PENDING[s].fetch_or(bit(sig), Ordering::SeqCst),
        None => PROC_PENDING.fetch_or(bit(sig), Ordering::SeqCst),
    };
}

/// Whether a signal outside `mask` is pending for the thread in `slot`.
pub fn deliverable(slot: usize, mask: u64) -> bool {
    (crate::threads::SLOT_PENDING[slot].load(Ordering::Relaxed) | PROC_PENDING.load(Ordering::Relaxed)) & !mask != 0
}

/// Take the next pending signal outside `mask` for the thread in `slot` (synchronous ones and
/// low numbers first), with its siginfo.
pub fn take_pending(slot: usize, mask: u64) -> Option<(i32, [u8; SIGINFO_SIZE])> {
    let me = &crate::threads::SLOT_PENDING[slot];
    for word in [me, &PROC_PENDING] {
        let avail = word.load(Ordering::SeqCst) & !mask & !bit(SIG_VGKILL);
        if avail == 0 {
            continue;
        }
        let sig = avail.trailing_zeros() as i32 + 1;
        if word.fetch_and(!bit(sig), Ordering::SeqCst) & bit(sig) == 0 {
            continue;
        }
        let mut info = [0u8; SIGINFO_SIZE];
        for (i, w) in PENDING_INFO[sig as usize].iter().enumerate() {
            info[8 * i..8 * i + 8].copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        return Some((sig, info));
    }
    me.fetch_and(!bit(SIG_VGKILL), Ordering::SeqCst);
    None
}

/// A siginfo for signal `sig` with si_code `code` and si_addr `addr` (a fault's).
pub fn siginfo(sig: i32, code: i32, addr: u64) -> [u8; SIGINFO_SIZE] {
    let mut info = [0u8; SIGINFO_SIZE];
    info[0..4].copy_from_slice(&sig.to_le_bytes());
    info[SI_CODE..SI_CODE + 4].copy_from_slice(&code.to_le_bytes());
    info[SI_ADDR..SI_ADDR + 8].copy_from_slice(&addr.to_le_bytes());
    info
}

/// What the kernel does with a signal whose disposition is SIG_DFL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Ignore,
    Stop,
    /// Terminate (with or without a core dump: the exit status is the same without a core).
    Terminate,
}

pub fn default_action(sig: i32) -> DefaultAction {
    match sig {
        17 | 18 | 23 | 28 => DefaultAction::Ignore,
        19..=22 => DefaultAction::Stop,
        _ => DefaultAction::Terminate,
    }
}

/// The signal's name as Valgrind prints it ("SIGSEGV"; real-time ones as "SIGRT<n>").
pub fn signal_name(sig: i32) -> alloc::borrow::Cow<'static, str> {
    const NAMES: [&str; 32] = [
        "?", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1",
        "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP",
        "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR",
        "SIGSYS",
    ];
    match sig {
        1..=31 => alloc::borrow::Cow::Borrowed(NAMES[sig as usize]),
        32..=64 => alloc::borrow::Cow::Owned(alloc::format!("SIGRT{}", sig - 32)),
        _ => alloc::borrow::Cow::Borrowed("?"),
    }
}

/// The blocking-syscall window: a guest system call that may block is made by a small
/// assembly routine that first checks for deliverable pending signals and then executes the
/// `syscall` instruction. A signal caught between the check and the instruction would be
/// missed by a call that then sleeps (pause, read): the handler sees its pc in that range and
/// makes the routine return -EINTR instead. A signal during the call interrupts it (the core's
/// handlers are not SA_RESTART); the scheduler decides about restarting.
pub mod window {
    use core::sync::atomic::AtomicU64;

    unsafe extern "C" {
        fn vg_sys_window(nr: u64, args: *const [u64; 6], pending: *const AtomicU64, deliverable: u64) -> u64;
        static vg_sys_window_start: u8;
        static vg_sys_window_syscall: u8;
        static vg_sys_window_eintr: u8;
    }

    #[cfg(target_arch = "x86_64")]
    core::arch::global_asm!(
        ".pushsection .text.vg_sys_window,\"ax\",@progbits",
        ".globl vg_sys_window",
        ".globl vg_sys_window_start",
        ".globl vg_sys_window_syscall",
        ".globl vg_sys_window_eintr",
        "vg_sys_window:",
        "push r12",
        "mov r12, rdx",
        "mov r11, rcx",
        "mov rax, rdi",
        "mov rdi, [rsi]",
        "mov rdx, [rsi + 16]",
        "mov r10, [rsi + 24]",
        "mov r8, [rsi + 32]",
        "mov r9, [rsi + 40]",
        "mov rsi, [rsi + 8]",
        "vg_sys_window_start:",
        "mov rcx, [r12]",
        "or rcx, [rip + {proc}]",
        "and rcx, r11",
        "jnz vg_sys_window_eintr",
        "vg_sys_window_syscall:",
        "syscall",
        "pop r12",
        "ret",
        "vg_sys_window_eintr:",
        "mov rax, -4",
        "pop r12",
        "ret",
        ".popsection",
        proc = sym super::PROC_PENDING,
    );

    /// Offset of the pc in the host's ucontext (uc_mcontext.rip).
    #[cfg(target_arch = "x86_64")]
    const UC_PC: usize = 40 + 16 * 8;

    /// Called by the async handler with its context: inside the window before the call, go
    /// to the EINTR exit.
    ///
    /// # Safety
    /// `uc` must be the ucontext the kernel passed to the handler.
    pub unsafe fn check(uc: *mut u8) {
        // SAFETY: the symbols are labels of the routine above; uc is the kernel's context.
        unsafe {
            let pc_slot = uc.add(UC_PC) as *mut usize;
            let pc = *pc_slot;
            let start = &vg_sys_window_start as *const u8 as usize;
            let sc = &vg_sys_window_syscall as *const u8 as usize;
            if (start..=sc).contains(&pc) {
                *pc_slot = &vg_sys_window_eintr as *const u8 as usize;
            }
        }
    }

    /// Make system call `nr` with the guest's `mask` installed on the host, failing with EINTR
    /// at once if a signal outside the mask is pending (for the thread: `pending`; or the
    /// process). Returns the raw result.
    pub fn syscall(nr: u64, args: [u64; 6], mask: u64, pending: &AtomicU64) -> u64 {
        let host_mask = mask & !super::KEEP_UNBLOCKED;
        if host_mask != 0 {
            let _ = crate::syscall::rt_sigprocmask(crate::syscall::SIG_SETMASK, host_mask);
        }
        // SAFETY: the guest's own call with its own pointers (the address space is shared);
        // calls that would harm the core are emulated and never get here.
        let r = unsafe { vg_sys_window(nr, &args, pending as *const AtomicU64, !mask | super::bit(super::SIG_VGKILL)) };
        if host_mask != 0 {
            let _ = crate::syscall::rt_sigprocmask(crate::syscall::SIG_SETMASK, 0);
        }
        r
    }
}

/// Signals the host never blocks on the guest's behalf: the faults (a fault while blocked kills
/// the process) and the core's own.
const KEEP_UNBLOCKED: u64 = bit(SIGSEGV) | bit(SIGBUS) | bit(SIGFPE) | bit(SIGILL) | bit(SIGTRAP) | bit(SIG_VGKILL);

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
