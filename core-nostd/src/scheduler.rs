//! The scheduler (Valgrind's `m_scheduler`): runs each guest thread through the dispatcher and
//! services what translations cannot do themselves — translating new code, chaining exits,
//! system calls, signal delivery (asynchronous signals at block boundaries, faults at the
//! faulting instruction, with a real signal frame), thread creation and exit, and the guest's
//! fatal events (undecodable instructions, faults, default actions) with Valgrind's reports.
//!
//! Each guest thread is a host thread running [`thread_loop`] while it holds the big lock
//! ([`crate::threads`]); the main thread's `run` returns when the process ends, whichever
//! thread ends it.
//!
//! A normal exit first runs the C and C++ libraries' clean-up in the guest ([`freeres`]).
//!
//! Uses: `arch`, `threads`, `signals`, `transtab`, `translate`, `aspace` (which memory the guest
//! may use), `log`, `options`.

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use alloc::string::String;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, Ordering};

use crate::arch::{
    CodeSource, DispatchAddrs, GuestArch, HostArch, LiftLimits, Os, RunExit, SigDelivery, StateLayout, SyscallOutcome,
};
use crate::loader::ClientImage;
use crate::options::CoreOptions;
use crate::signals::{self, Fault, SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGTRAP, bit};
use crate::threads::{self, Thread};
use crate::tool::Tool;
use crate::translate::{self, TranslateConfig};
use crate::transtab::{FAST_MASK, TransTab};
use vg_ir::JumpKind;

pub mod freeres;

/// How the guest ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestExit {
    /// exit/exit_group with this status.
    Exit(i32),
    /// Killed by this signal (its default action).
    Signal(i32),
}

/// Bytes of spill slots after the two shadow states.
const SPILL_SIZE: u32 = 4096;

const EINTR: i32 = 4;
const SS_ONSTACK: i32 = 1;
const SS_DISABLE: i32 = 2;
const SS_AUTODISARM: i32 = 1 << 31;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;
const UNBLOCKABLE: u64 = bit(signals::SIGKILL) | bit(signals::SIGSTOP) | bit(signals::SIG_VGKILL);

fn errno(e: i32) -> u64 {
    (-(e as i64)) as u64
}

fn block_layout(layout: &StateLayout) -> Layout {
    let len = (layout.spill_offset + layout.spill_size) as usize;
    Layout::from_size_align(len, 64).expect("state block layout")
}

/// A fresh zeroed guest-state block: the state, two shadows, the spill area.
fn new_block(layout: &StateLayout) -> *mut u8 {
    // SAFETY: non-zero size; freed by `free_block` when its thread exits.
    let ptr = unsafe { alloc_zeroed(block_layout(layout)) };
    assert!(!ptr.is_null(), "out of memory for a guest state");
    ptr
}

/// The guest state of a block.
///
/// # Safety
/// `ptr` must be a live block from `new_block`, used by the caller's thread only.
unsafe fn state<'a, G: GuestArch>(ptr: *mut u8) -> &'a mut [u8] {
    // SAFETY: caller contract; the block is at least STATE_SIZE bytes.
    unsafe { core::slice::from_raw_parts_mut(ptr, G::STATE_SIZE as usize) }
}

/// Guest code as the front end may read it: only where the client's mappings are readable.
struct ClientCode;

impl CodeSource for ClientCode {
    fn code(&self, addr: u64, max: usize) -> &[u8] {
        let n = crate::aspace::readable_extent(addr, max as u64) as usize;
        if n == 0 {
            // Nothing readable (possibly address 0, which no slice may start at).
            return &[];
        }
        // SAFETY: the address-space manager says [addr, addr+n) is mapped readable client memory.
        unsafe { core::slice::from_raw_parts(addr as *const u8, n) }
    }
}

/// What all guest threads share (only touched by the big lock's holder).
struct Shared<T> {
    tt: TransTab,
    seq: u64,
    tool: *mut T,
    cfg: TranslateConfig,
    layout: StateLayout,
    disp: DispatchAddrs,
}

static SHARED: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());

/// The shared data of this run.
///
/// # Safety
/// The caller holds the big lock and `T` is the tool type `run` was called with.
unsafe fn shared<'a, T>() -> &'a mut Shared<T> {
    // SAFETY: set by `run` (which outlives every thread's use) to a Shared<T>; the big lock
    // serialises access.
    unsafe { &mut *(SHARED.load(Ordering::Relaxed) as *mut Shared<T>) }
}

/// Set once when the process is ending (a futex word the main thread can wait on).
static ENDED: AtomicU32 = AtomicU32::new(0);
/// How it ends: the status, and whether it is a signal.
static END_CODE: AtomicI32 = AtomicI32::new(0);
static END_BY_SIGNAL: AtomicU32 = AtomicU32::new(0);
static MAIN_TID: AtomicI32 = AtomicI32::new(0);

fn ended() -> Option<GuestExit> {
    (ENDED.load(Ordering::Acquire) != 0).then(|| {
        let c = END_CODE.load(Ordering::Relaxed);
        if END_BY_SIGNAL.load(Ordering::Relaxed) != 0 { GuestExit::Signal(c) } else { GuestExit::Exit(c) }
    })
}

/// Record how the process ends (the first caller wins) and get the main thread out of any
/// blocking call or wait, so that it can finish the run.
fn end_process(e: GuestExit) {
    if ENDED.load(Ordering::Acquire) != 0 {
        return;
    }
    let (code, sig) = match e {
        GuestExit::Exit(c) => (c, 0),
        GuestExit::Signal(s) => (s, 1),
    };
    END_CODE.store(code, Ordering::Relaxed);
    END_BY_SIGNAL.store(sig, Ordering::Relaxed);
    ENDED.store(1, Ordering::Release);
    const FUTEX_WAKE_PRIVATE: usize = 129;
    // SAFETY: waking a futex and signalling our own main thread have no memory effects.
    unsafe {
        let _ = syscalls::syscall!(syscalls::Sysno::futex, ENDED.as_ptr(), FUTEX_WAKE_PRIVATE, 1);
    }
    let main = MAIN_TID.load(Ordering::Relaxed);
    if main != crate::syscall::gettid() {
        let _ = crate::syscall::tgkill(crate::syscall::getpid(), main, signals::SIG_VGKILL);
    }
}

/// How a thread's loop ended.
enum Ended {
    /// The thread exited; others live on.
    Thread,
    /// The whole process ends.
    Process(GuestExit),
}

/// What the loop does after servicing an exit.
enum Flow {
    Continue,
    End(Ended),
}

/// Run the client until it exits.
pub fn run<G: GuestArch, H: HostArch, O: Os, T: Tool>(
    tool: &mut T,
    opts: &CoreOptions,
    img: &ClientImage,
) -> GuestExit {
    crate::options::set_current(opts);
    let layout = StateLayout {
        state_size: G::STATE_SIZE,
        spill_offset: 3 * G::STATE_SIZE,
        spill_size: SPILL_SIZE,
    };
    let cfg = TranslateConfig {
        limits: LiftLimits { max_insns: opts.max_insns, chase_jumps: true },
        trace_flags: opts.trace_flags,
        trace_notbelow: opts.trace_notbelow,
        smc_check: opts.smc_check,
    };
    let mask = signals::install_all::<H>();
    let block = new_block(&layout);
    // SAFETY: a fresh block of this thread.
    G::init_state(unsafe { state::<G>(block) }, img.entry, img.sp);
    let tid = crate::syscall::gettid();
    MAIN_TID.store(tid, Ordering::Relaxed);
    threads::init(opts.fair_sched, Thread {
        tid,
        state: block,
        mask,
        suspend_saved: None,
        altstack: (0, SS_DISABLE, 0),
        clear_child_tid: 0,
    });
    save_client_auxv(img.sp);
    let mut sh = Shared { tt: TransTab::new(), seq: 0, tool: tool as *mut T, cfg, layout, disp: H::dispatch_addrs() };
    SHARED.store(&mut sh as *mut Shared<T> as *mut u8, Ordering::Relaxed);

    let end = match thread_loop::<G, H, O, T>(0) {
        Ended::Process(e) => e,
        Ended::Thread => {
            // The main thread exited first: wait (without the lock) until the last one ends.
            threads::unlock();
            while ENDED.load(Ordering::Acquire) == 0 {
                const FUTEX_WAIT_PRIVATE: usize = 128;
                // SAFETY: waiting on a static word.
                let _ = unsafe { syscalls::syscall!(syscalls::Sysno::futex, ENDED.as_ptr(), FUTEX_WAIT_PRIVATE, 0, 0) };
            }
            threads::lock();
            ended().expect("the process has ended")
        }
    };
    end_process(end);
    // The main thread keeps the lock: no other thread runs guest code from here on.
    if let GuestExit::Exit(_) = end {
        O::fini();
    }
    end
}

static CLIENT_AUXV: spin::Once<alloc::vec::Vec<u8>> = spin::Once::new();

/// Keep a copy of the auxv the loader put on the client's initial stack at `sp` (argc, argv,
/// NULL, envp, NULL, auxv pairs up to AT_NULL), for `/proc/self/auxv`.
fn save_client_auxv(sp: u64) {
    let word = |a: u64| -> Option<u64> {
        // SAFETY: read only after the address-space manager says it is readable client memory.
        crate::aspace::is_client_readable(a, 8).then(|| unsafe { core::ptr::read_unaligned(a as *const u64) })
    };
    let mut bytes = alloc::vec::Vec::new();
    let mut p = sp + 8 * (word(sp).unwrap_or(0) + 2);
    while word(p).is_some_and(|w| w != 0) {
        p += 8;
    }
    p += 8;
    while let (Some(k), Some(v)) = (word(p), word(p + 8)) {
        bytes.extend_from_slice(&k.to_le_bytes());
        bytes.extend_from_slice(&v.to_le_bytes());
        p += 16;
        if k == 0 {
            break;
        }
    }
    CLIENT_AUXV.call_once(|| bytes);
}

/// The client's auxiliary vector as `/proc/self/auxv` shows it (pairs of u64, AT_NULL last).
pub fn client_auxv() -> &'static [u8] {
    CLIENT_AUXV.get().map_or(&[], |v| v.as_slice())
}

/// Entry of the host thread of a guest thread other than the main one.
extern "C" fn child_entry<G: GuestArch, H: HostArch, O: Os, T: Tool>(slot: usize) -> ! {
    threads::lock();
    threads::set_current(slot);
    if let Ended::Process(e) = thread_loop::<G, H, O, T>(slot) {
        end_process(e);
    }
    threads::unlock();
    threads::exit_host_thread()
}

/// Find (or make) the translation of guest address `pc`.
fn host_for<G: GuestArch, H: HostArch, T: Tool>(sh: &mut Shared<T>, pc: u64) -> *const u8 {
    if let Some(h) = sh.tt.lookup(pc) {
        return h;
    }
    let mut trace_out = |s: &str| crate::log::write_raw(s);
    // SAFETY: the tool outlives the run; the big lock serialises its use.
    let tool = unsafe { &mut *sh.tool };
    match translate::translate::<G, H, T>(pc, sh.seq, &ClientCode, tool, &sh.cfg, &sh.layout, &sh.disp, &mut trace_out) {
        Ok(t) => {
            sh.seq += 1;
            let host = sh.tt.add::<H>(pc, t.guest_len, t.guest_insns, &t.code, &sh.disp);
            if sh.cfg.trace_flags != 0 && sh.seq > sh.cfg.trace_notbelow {
                crate::log::write_raw(&alloc::format!("==== SB {} placed at host {host:p} ====\n", sh.seq - 1));
            }
            host
        }
        Err(e) => panic!("cannot compile the translation of {pc:#x}: {e}"),
    }
}

/// Run the guest thread in `slot` (holding the big lock) until it or the process ends.
fn thread_loop<G: GuestArch, H: HostArch, O: Os, T: Tool>(slot: usize) -> Ended {
    let block = threads::thread(slot).state;
    loop {
        if let Some(e) = ended() {
            return Ended::Process(e);
        }
        if freeres::held_by_other(slot) {
            return Ended::Thread;
        }
        // SAFETY: this thread's block; no other reference to it is live.
        let st = unsafe { state::<G>(block) };
        if G::pc(st) == freeres::RETURN_ADDR
            && let Some(code) = freeres::returned::<G>(slot, st)
        {
            return Ended::Process(GuestExit::Exit(code));
        }
        if signals::deliverable(slot, threads::current().mask)
            && let Flow::End(e) = deliver_pending::<G>(slot, st, None::<fn(&signals::GuestSigAction) -> bool>)
        {
            return e;
        }
        // SAFETY: the lock holder is the only user of the shared data.
        let sh = unsafe { shared::<T>() };
        let entry = host_for::<G, H, T>(sh, G::pc(st));
        // SAFETY: `entry` is a live translation for this layout; the block has the full size.
        let exit = unsafe { H::run(block, entry, sh.tt.fast_table(), FAST_MASK) };
        match exit {
            RunExit::FastMiss => {}
            RunExit::EventCheck => {
                if threads::others_waiting() {
                    threads::yield_lock();
                }
            }
            RunExit::ChainMe { site } => {
                let dst = G::pc(st);
                let target = host_for::<G, H, T>(sh, dst);
                sh.tt.chain::<H>(site, dst, target);
            }
            RunExit::Assisted(kind) => {
                if let Flow::End(e) = assisted::<G, H, O, T>(slot, kind, st) {
                    return e;
                }
            }
        }
    }
}

/// Make a guest system call that may block: the big lock is released meanwhile and the
/// guest's signal mask is in force on the host, so that a signal interrupts the call (EINTR;
/// the scheduler then runs the handler and restarts the call if it should). Returns the raw
/// result. The OS layer calls this for every call it passes to the kernel.
pub fn blocking_syscall(nr: u64, args: [u64; 6]) -> u64 {
    if !threads::running() {
        // No guest threads (the OS layer's own tests): nothing to release.
        return signals::window::syscall(nr, args, 0, &threads::SLOT_PENDING[0]);
    }
    let slot = threads::current_slot();
    let mask = threads::current().mask;
    threads::unlock();
    let r = signals::window::syscall(nr, args, mask, &threads::SLOT_PENDING[slot]);
    threads::lock();
    threads::set_current(slot);
    r
}

/// Service an exit that needs the scheduler.
fn assisted<G: GuestArch, H: HostArch, O: Os, T: Tool>(slot: usize, kind: JumpKind, st: &mut [u8]) -> Flow {
    let pc = G::pc(st);
    match kind {
        JumpKind::Syscall => syscall::<G, H, O, T>(slot, st),
        JumpKind::NoDecode => {
            report_undecodable::<G>(pc);
            synchronous::<G>(slot, st, signals::siginfo(SIGILL, 1, pc), &alloc::format!("Illegal opcode at address {pc:#X}"))
        }
        JumpKind::SigIll => {
            synchronous::<G>(slot, st, signals::siginfo(SIGILL, 2, pc), &alloc::format!("Illegal opcode at address {pc:#X}"))
        }
        JumpKind::SigTrap => synchronous::<G>(slot, st, signals::siginfo(SIGTRAP, 0x80, 0), ""),
        JumpKind::SigSegv | JumpKind::SigFpeIntDiv => {
            let fault = signals::take_fault();
            // A fault the host caught: its guest instruction comes from the translation's pc
            // map (the state's pc is only exact at exits and helper calls).
            let pc = match fault {
                Some(f) => {
                    // SAFETY: the lock holder is the only user of the shared data.
                    let sh = unsafe { shared::<T>() };
                    let g = sh.tt.guest_pc_at(f.host_pc).unwrap_or(pc);
                    let o = G::PC_OFFSET as usize;
                    st[o..o + 8].copy_from_slice(&g.to_le_bytes());
                    g
                }
                None => pc,
            };
            let (sig, detail) = describe_fault(kind, fault, pc);
            let info = match fault {
                Some(f) if f.signal == SIGFPE => signals::siginfo(SIGFPE, f.code, pc),
                Some(f) => signals::siginfo(f.signal, f.code, f.addr),
                None if sig == SIGFPE => signals::siginfo(SIGFPE, 1, pc),
                None => signals::siginfo(SIGSEGV, 0x80, 0),
            };
            synchronous::<G>(slot, st, info, &detail)
        }
        JumpKind::Boring | JumpKind::Call | JumpKind::Ret | JumpKind::Yield => Flow::Continue,
        JumpKind::ClientReq => {
            // SAFETY: the lock holder is the only user of the shared data; the tool outlives
            // the run.
            let sh = unsafe { shared::<T>() };
            crate::clientreq::handle::<G, H, T>(st, unsafe { &mut *sh.tool }, &mut sh.tt, &sh.disp);
            Flow::Continue
        }
        JumpKind::NoRedir => {
            crate::clientreq::call_noredir::<G>(st);
            Flow::Continue
        }
        JumpKind::InvalICache => {
            // A self-check found the code changed: drop the stale translations of the block.
            // SAFETY: the lock holder is the only user of the shared data.
            let sh = unsafe { shared::<T>() };
            let len = sh.tt.guest_len(pc).unwrap_or(1);
            sh.tt.discard_range::<H>(pc, len, &sh.disp);
            Flow::Continue
        }
    }
}

/// A guest system call: the OS layer carries it out; the scheduler does what changes threads
/// and signal state.
fn syscall<G: GuestArch, H: HostArch, O: Os, T: Tool>(slot: usize, st: &mut [u8]) -> Flow {
    let (nr, args) = G::syscall_args(st);
    let out = O::syscall::<G>(st, nr, args);
    let gone = crate::aspace::take_code_gone();
    if !gone.is_empty() {
        // SAFETY: the lock holder is the only user of the shared data.
        let sh = unsafe { shared::<T>() };
        for (start, len) in gone {
            sh.tt.discard_range::<H>(start, len, &sh.disp);
        }
    }
    if let Some(e) = ended() {
        return Flow::End(Ended::Process(e));
    }
    match out {
        SyscallOutcome::Return(v) if v == errno(EINTR) => interrupted::<G, O>(slot, st, nr),
        SyscallOutcome::Return(v) => {
            G::set_syscall_result(st, v);
            Flow::Continue
        }
        SyscallOutcome::SigReturn => {
            let readable = |a: u64, l: u64| crate::aspace::is_client_readable(a, l);
            let frame_sp = G::sp(st);
            match G::pop_signal_frame(st, &readable) {
                Some(r) => {
                    let restored_sp = G::sp(st);
                    crate::tool::mem_events().inspect(|ev| ev.die_mem_stack_signal(frame_sp, restored_sp));
                    let t = threads::current();
                    t.mask = r.mask & !UNBLOCKABLE;
                    if r.altstack.1 & SS_DISABLE != 0 || r.altstack.2 != 0 {
                        t.altstack = r.altstack;
                        t.altstack.1 &= !SS_ONSTACK;
                    }
                    Flow::Continue
                }
                None => Flow::End(Ended::Process(fatal_signal(
                    SIGSEGV,
                    "General Protection Fault",
                    G::pc(st),
                ))),
            }
        }
        SyscallOutcome::ExitGroup(c) => exit_process::<G>(slot, st, c),
        SyscallOutcome::ExitThread(c) => {
            if threads::live_count() == 1 {
                return exit_process::<G>(slot, st, c);
            }
            let t = *threads::current();
            if t.clear_child_tid != 0 && crate::aspace::aspace().is_client_writable(t.clear_child_tid, 4) {
                // SAFETY: 4 writable bytes of client memory (checked above).
                unsafe { core::ptr::write_volatile(t.clear_child_tid as *mut u32, 0) };
                const FUTEX_WAKE: usize = 1;
                // SAFETY: waking waiters of a guest word has no effect on the core's memory.
                let _ = unsafe { syscalls::syscall!(syscalls::Sysno::futex, t.clear_child_tid, FUTEX_WAKE, 1) };
            }
            threads::remove(slot);
            // SAFETY: the block is this thread's and nothing uses it any more.
            unsafe { dealloc(t.state, block_layout(&shared::<T>().layout)) };
            Flow::End(Ended::Thread)
        }
        SyscallOutcome::NewThread { flags, stack, parent_tid, child_tid, tls } => {
            let r = new_thread::<G, H, O, T>(st, flags, stack, parent_tid, child_tid, tls);
            G::set_syscall_result(st, r);
            Flow::Continue
        }
    }
}

/// The thread in `slot` made an exit call that ends the process with status `code`: the
/// libraries' clean-up runs first if there is any to run.
fn exit_process<G: GuestArch>(slot: usize, st: &mut [u8], code: i32) -> Flow {
    match freeres::on_exit::<G>(slot, st, code) {
        Some(c) => Flow::End(Ended::Process(GuestExit::Exit(c))),
        None => Flow::Continue,
    }
}

/// clone with CLONE_THREAD: a copy of the caller's state (and shadows) that returns 0 from the
/// call on its own stack and TLS, run by a new host thread. Returns the parent's result.
fn new_thread<G: GuestArch, H: HostArch, O: Os, T: Tool>(
    parent: &[u8],
    flags: u64,
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
) -> u64 {
    // SAFETY: the lock holder is the only user of the shared data.
    let layout = unsafe { shared::<T>() }.layout;
    let block = new_block(&layout);
    let copy = 3 * G::STATE_SIZE as usize;
    // SAFETY: the parent's block and the new one both hold the state and two shadows.
    unsafe { core::ptr::copy_nonoverlapping(parent.as_ptr(), block, copy) };
    // SAFETY: the new block is not shared yet.
    let cs = unsafe { state::<G>(block) };
    G::set_syscall_result(cs, 0);
    if stack != 0 {
        let o = G::SP_OFFSET as usize;
        cs[o..o + 8].copy_from_slice(&stack.to_le_bytes());
    }
    if flags & CLONE_SETTLS != 0 {
        G::set_tls_base(cs, tls);
    }
    let me = threads::current();
    let t = Thread {
        tid: 0,
        state: block,
        mask: me.mask,
        suspend_saved: None,
        altstack: (0, SS_DISABLE, 0),
        clear_child_tid: if flags & CLONE_CHILD_CLEARTID != 0 { child_tid } else { 0 },
    };
    let ptid = if flags & threads::CLONE_PARENT_SETTID != 0 { parent_tid } else { 0 };
    match threads::spawn(t, ptid, child_entry::<G, H, O, T>) {
        Ok((_, tid)) => {
            if flags & CLONE_CHILD_SETTID != 0 && crate::aspace::aspace().is_client_writable(child_tid, 4) {
                // SAFETY: 4 writable bytes of client memory (checked above).
                unsafe { core::ptr::write_volatile(child_tid as *mut i32, tid) };
            }
            tid as u64
        }
        Err(e) => {
            // SAFETY: the block never reached a thread.
            unsafe { dealloc(block, block_layout(&layout)) };
            errno(e)
        }
    }
}

/// A call failed with EINTR: a signal arrived. Run the first deliverable handler, with the call
/// restarted afterwards if its SA_RESTART says so (and the call is restartable), else failing
/// with EINTR. If no handler runs (the signals were ignored), restart the call at once, as the
/// kernel does.
fn interrupted<G: GuestArch, O: Os>(slot: usize, st: &mut [u8], nr: u64) -> Flow {
    let restart = |a: &signals::GuestSigAction| a.flags & signals::SA_RESTART != 0 && O::restartable(nr);
    match deliver_pending::<G>(slot, st, Some(restart)) {
        Flow::Continue if !HANDLER_RAN.swap(false, Ordering::Relaxed) => {
            G::restart_syscall(st);
            Flow::Continue
        }
        other => other,
    }
}

/// Set when `deliver_pending` entered a handler (read by `interrupted`).
static HANDLER_RAN: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Deliver the pending signals of the thread in `slot` that its mask lets through: ignored ones
/// are dropped, default actions taken, and the first one with a handler gets a frame. With
/// `syscall_restart` (an interrupted call), the handler's frame resumes at the restarted call
/// or with EINTR.
fn deliver_pending<G: GuestArch>(
    slot: usize,
    st: &mut [u8],
    syscall_restart: Option<impl Fn(&signals::GuestSigAction) -> bool>,
) -> Flow {
    while let Some((sig, info)) = signals::take_pending(slot, threads::current().mask) {
        let act = signals::action(sig);
        match act.handler {
            signals::SIG_IGN => {}
            signals::SIG_DFL => match signals::default_action(sig) {
                signals::DefaultAction::Ignore => {}
                signals::DefaultAction::Stop => {
                    let _ = crate::syscall::kill(crate::syscall::getpid(), signals::SIGSTOP);
                }
                signals::DefaultAction::Terminate => {
                    return Flow::End(Ended::Process(fatal_signal(sig, "", G::pc(st))));
                }
            },
            _ => {
                if let Some(restart) = &syscall_restart {
                    if restart(&act) {
                        G::restart_syscall(st);
                    } else {
                        G::set_syscall_result(st, errno(EINTR));
                    }
                    HANDLER_RAN.store(true, Ordering::Relaxed);
                }
                return push_frame::<G>(st, sig, info, &act);
            }
        }
    }
    Flow::Continue
}

/// A signal caused by the instruction at the pc: its handler if it has one and does not block
/// it, else the default action (as the kernel forces it), with `detail` in the report.
fn synchronous<G: GuestArch>(_slot: usize, st: &mut [u8], info: [u8; crate::arch::SIGINFO_SIZE], detail: &str) -> Flow {
    let sig = i32::from_le_bytes(info[0..4].try_into().expect("4 bytes"));
    let act = signals::action(sig);
    let blocked = threads::current().mask & bit(sig) != 0;
    if act.handler != signals::SIG_DFL && act.handler != signals::SIG_IGN && !blocked {
        return push_frame::<G>(st, sig, info, &act);
    }
    Flow::End(Ended::Process(fatal_signal(sig, detail, G::pc(st))))
}

/// Enter the guest's handler for `sig`: the frame on the right stack, the handler's mask.
fn push_frame<G: GuestArch>(st: &mut [u8], sig: i32, info: [u8; crate::arch::SIGINFO_SIZE], act: &signals::GuestSigAction) -> Flow {
    let t = threads::current();
    let sp = G::sp(st);
    let (ss_sp, ss_flags, ss_size) = t.altstack;
    let alt_on = ss_size != 0 && ss_flags & SS_DISABLE == 0;
    let on_alt = alt_on && sp > ss_sp && sp - ss_sp <= ss_size;
    let use_alt = act.flags & signals::SA_ONSTACK != 0 && alt_on && !on_alt;
    let frame_sp = if use_alt { ss_sp + ss_size } else { sp };
    let saved_flags = if !alt_on { SS_DISABLE } else if on_alt { SS_ONSTACK } else { 0 } | (ss_flags & SS_AUTODISARM);
    let low = frame_sp.wrapping_sub(G::SIGFRAME_MAX);
    if low > frame_sp || !crate::aspace::aspace().is_client_writable(low, G::SIGFRAME_MAX) {
        let pc = G::pc(st);
        crate::umsg!("Can't extend stack to {low:#x} during signal delivery for thread {}:", threads::current_slot() + 1);
        crate::umsg!("  no stack segment");
        return Flow::End(Ended::Process(fatal_signal(SIGSEGV, &alloc::format!("Access not within mapped region at address {low:#X}"), pc)));
    }
    let d = SigDelivery {
        signo: sig,
        info,
        handler: act.handler,
        restorer: act.restorer,
        saved_mask: t.suspend_saved.take().unwrap_or(t.mask),
        sp: frame_sp,
        on_altstack: use_alt,
        altstack: (ss_sp, saved_flags, ss_size),
    };
    // SAFETY: [frame_sp - SIGFRAME_MAX, frame_sp) is writable client memory (checked above).
    unsafe { G::push_signal_frame(st, &d) };
    let handler_sp = G::sp(st);
    crate::tool::mem_events().inspect(|ev| ev.new_mem_stack_signal(handler_sp, frame_sp - handler_sp));
    t.mask |= act.mask | if act.flags & signals::SA_NODEFER != 0 { 0 } else { bit(sig) };
    t.mask &= !UNBLOCKABLE;
    if use_alt && ss_flags & SS_AUTODISARM != 0 {
        t.altstack = (0, SS_DISABLE, 0);
    }
    if act.flags & signals::SA_RESETHAND != 0 {
        signals::set_action(sig, Some(signals::GuestSigAction::default()));
    }
    Flow::Continue
}

/// The signal a fault exit stands for and Valgrind's line describing it (from the kernel's
/// si_code; a fault detected by the front end itself has no kernel record).
fn describe_fault(kind: JumpKind, fault: Option<Fault>, pc: u64) -> (i32, String) {
    const SEGV_MAPERR: i32 = 1;
    const SEGV_ACCERR: i32 = 2;
    const FPE_INTDIV: i32 = 1;
    const FPE_INTOVF: i32 = 2;
    const BUS_ADRALN: i32 = 1;
    const SI_KERNEL: i32 = 0x80;
    match (kind, fault) {
        (_, Some(Fault { signal: SIGSEGV, code, addr, .. })) => (SIGSEGV, match code {
            SEGV_MAPERR => alloc::format!("Access not within mapped region at address {addr:#X}"),
            SEGV_ACCERR => alloc::format!("Bad permissions for mapped region at address {addr:#X}"),
            SI_KERNEL => String::from("General Protection Fault"),
            _ => alloc::format!("Bad memory access at address {addr:#X}"),
        }),
        (_, Some(Fault { signal: SIGBUS, code, addr, .. })) => (SIGBUS, match code {
            BUS_ADRALN => alloc::format!("Invalid address alignment at address {addr:#X}"),
            _ => alloc::format!("Non-existent physical address at address {addr:#X}"),
        }),
        (_, Some(Fault { signal: SIGFPE, code: FPE_INTOVF, .. })) => {
            (SIGFPE, alloc::format!("Integer overflow at address {pc:#X}"))
        }
        (JumpKind::SigFpeIntDiv, _) | (_, Some(Fault { signal: SIGFPE, code: FPE_INTDIV, .. })) => {
            (SIGFPE, alloc::format!("Integer divide by zero at address {pc:#X}"))
        }
        _ => (SIGSEGV, String::from("General Protection Fault")),
    }
}

/// "Process terminating with default action of signal N", the detail line and where.
fn fatal_signal(sig: i32, detail: &str, pc: u64) -> GuestExit {
    let mut s = String::new();
    use core::fmt::Write;
    s.push('\n');
    let _ = writeln!(s, "Process terminating with default action of signal {sig} ({})", signals::signal_name(sig));
    if !detail.is_empty() {
        let _ = writeln!(s, " {detail}");
    }
    s.push_str(&crate::stacks::current_thread_trace(pc));
    crate::log::user_lines(&s);
    GuestExit::Signal(sig)
}

fn report_undecodable<G: GuestArch>(pc: u64) {
    let text = G::describe_undecodable(&ClientCode, pc);
    crate::log::write_raw(&text);
    let mut s = String::new();
    use core::fmt::Write;
    let _ = writeln!(s, "valgrind: Unrecognised instruction at address {pc:#x}.");
    s.push_str(&crate::stacks::current_thread_trace(pc));
    let _ = writeln!(s, "Your program just tried to execute an instruction that this tool could not");
    let _ = writeln!(s, "decode. Either the program has a bug and jumped to garbage (or executed");
    let _ = writeln!(s, "an instruction its CPU does not have), or the instruction is not supported");
    let _ = writeln!(s, "by this tool yet. In the second case, please report it with the bytes above.");
    let _ = writeln!(s, "The program will be sent SIGILL, as it would be natively.");
    crate::log::user_lines(&s);
}
