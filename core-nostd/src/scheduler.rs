//! The scheduler: runs the guest through the dispatcher and services what translations cannot do
//! themselves — translating new code, chaining exits, system calls, and the guest's fatal
//! events (undecodable instructions, faults) with Valgrind's reports.
//!
//! Uses: `arch`, `transtab`, `translate`, `aspace` (which code is readable), `log`, `options`.

use alloc::alloc::{Layout, alloc_zeroed};
use alloc::string::String;

use crate::arch::{CodeSource, GuestArch, HostArch, LiftLimits, Os, RunExit, StateLayout, SyscallOutcome};
use crate::loader::ClientImage;
use crate::options::CoreOptions;
use crate::signals::{self, Fault, SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGTRAP};
use crate::tool::Tool;
use crate::translate::{self, TranslateConfig};
use crate::transtab::{FAST_MASK, TransTab};
use vg_ir::JumpKind;

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

/// The guest-state block: the state, two shadows, the spill area.
struct StateBlock {
    ptr: *mut u8,
    len: usize,
}

impl StateBlock {
    fn new(layout: &StateLayout) -> StateBlock {
        let len = (layout.spill_offset + layout.spill_size) as usize;
        let l = Layout::from_size_align(len, 64).expect("state block layout");
        // SAFETY: non-zero size; freed never (lives as long as the guest thread).
        let ptr = unsafe { alloc_zeroed(l) };
        assert!(!ptr.is_null(), "out of memory for the guest state");
        StateBlock { ptr, len }
    }
    fn state<G: GuestArch>(&mut self) -> &mut [u8] {
        debug_assert!(G::STATE_SIZE as usize <= self.len);
        // SAFETY: ptr is valid for len bytes and only reached through &mut self.
        unsafe { core::slice::from_raw_parts_mut(self.ptr, G::STATE_SIZE as usize) }
    }
}

/// Guest code as the front end may read it: only where the client's mappings are readable.
struct ClientCode;

impl CodeSource for ClientCode {
    fn code(&self, addr: u64, max: usize) -> &[u8] {
        let n = crate::aspace::readable_extent(addr, max as u64) as usize;
        // SAFETY: the address-space manager says [addr, addr+n) is mapped readable client memory.
        unsafe { core::slice::from_raw_parts(addr as *const u8, n) }
    }
}

/// Run the client until it exits.
pub fn run<G: GuestArch, H: HostArch, O: Os, T: Tool>(
    tool: &mut T,
    opts: &CoreOptions,
    img: &ClientImage,
) -> GuestExit {
    let layout = StateLayout {
        state_size: G::STATE_SIZE,
        spill_offset: 3 * G::STATE_SIZE,
        spill_size: SPILL_SIZE,
    };
    let cfg = TranslateConfig {
        limits: LiftLimits { max_insns: opts.max_insns, chase_jumps: true },
        trace_flags: opts.trace_flags,
        trace_notbelow: opts.trace_notbelow,
    };
    let disp = H::dispatch_addrs();
    crate::signals::install_fault_handlers::<H>();
    let mut block = StateBlock::new(&layout);
    G::init_state(block.state::<G>(), img.entry, img.sp);
    let mut tt = TransTab::new();
    let mut seq: u64 = 0;

    // Find (or make) the translation of the guest's current pc.
    let mut host_for = |tt: &mut TransTab, pc: u64, tool: &mut T| -> *const u8 {
        if let Some(h) = tt.lookup(pc) {
            return h;
        }
        let mut trace_out = |s: &str| crate::log::write_raw(s);
        match translate::translate::<G, H, T>(pc, seq, &ClientCode, tool, &cfg, &layout, &disp, &mut trace_out) {
            Ok(t) => {
                seq += 1;
                tt.add::<H>(pc, t.guest_len, t.guest_insns, &t.code, &disp)
            }
            Err(e) => panic!("cannot compile the translation of {pc:#x}: {e}"),
        }
    };

    loop {
        let pc = G::pc(block.state::<G>());
        let entry = host_for(&mut tt, pc, tool);
        // SAFETY: `entry` is a live translation for this layout; the block has the full size.
        let exit = unsafe { H::run(block.ptr, entry, tt.fast_table(), FAST_MASK) };
        match exit {
            RunExit::FastMiss | RunExit::EventCheck => {}
            RunExit::ChainMe { site } => {
                let dst = G::pc(block.state::<G>());
                let target = host_for(&mut tt, dst, tool);
                tt.chain::<H>(site, dst, target);
            }
            RunExit::Assisted(kind) => {
                if let Some(end) = assisted::<G, O>(kind, block.state::<G>()) {
                    return end;
                }
            }
        }
    }
}

/// Service an exit that needs the scheduler; `Some` when the guest is finished.
fn assisted<G: GuestArch, O: Os>(kind: JumpKind, state: &mut [u8]) -> Option<GuestExit> {
    let pc = G::pc(state);
    match kind {
        JumpKind::Syscall => {
            let (nr, args) = G::syscall_args(state);
            match O::syscall::<G>(state, nr, args) {
                SyscallOutcome::Return(v) => {
                    G::set_syscall_result(state, v);
                    None
                }
                SyscallOutcome::ExitThread(c) | SyscallOutcome::ExitGroup(c) => Some(GuestExit::Exit(c)),
            }
        }
        JumpKind::NoDecode => {
            report_undecodable::<G>(pc);
            Some(fatal_signal(SIGILL, &alloc::format!("Illegal opcode at address {pc:#X}"), pc))
        }
        JumpKind::SigIll => Some(fatal_signal(SIGILL, &alloc::format!("Illegal opcode at address {pc:#X}"), pc)),
        JumpKind::SigTrap => Some(fatal_signal(SIGTRAP, "", pc)),
        JumpKind::SigSegv | JumpKind::SigFpeIntDiv => {
            let fault = signals::take_fault();
            let (sig, detail) = describe_fault(kind, fault, pc);
            Some(fatal_signal(sig, &detail, pc))
        }
        JumpKind::Boring | JumpKind::Call | JumpKind::Ret | JumpKind::Yield => None,
        JumpKind::ClientReq | JumpKind::InvalICache | JumpKind::NoRedir => {
            panic!("jump kind {kind:?} at {pc:#x} is not supported yet")
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGILL => "SIGILL",
        SIGTRAP => "SIGTRAP",
        SIGBUS => "SIGBUS",
        SIGFPE => "SIGFPE",
        SIGSEGV => "SIGSEGV",
        _ => "?",
    }
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
        (_, Some(Fault { signal: SIGSEGV, code, addr })) => (SIGSEGV, match code {
            SEGV_MAPERR => alloc::format!("Access not within mapped region at address {addr:#X}"),
            SEGV_ACCERR => alloc::format!("Bad permissions for mapped region at address {addr:#X}"),
            SI_KERNEL => String::from("General Protection Fault"),
            _ => alloc::format!("Bad memory access at address {addr:#X}"),
        }),
        (_, Some(Fault { signal: SIGBUS, code, addr })) => (SIGBUS, match code {
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
    let _ = writeln!(s, "");
    let _ = writeln!(s, "Process terminating with default action of signal {sig} ({})", signal_name(sig));
    if !detail.is_empty() {
        let _ = writeln!(s, " {detail}");
    }
    let _ = writeln!(s, "   at {pc:#X}: ???");
    crate::log::user_lines(&s);
    GuestExit::Signal(sig)
}

fn report_undecodable<G: GuestArch>(pc: u64) {
    let text = G::describe_undecodable(&ClientCode, pc);
    crate::log::write_raw(&text);
    let mut s = String::new();
    use core::fmt::Write;
    let _ = writeln!(s, "valgrind: Unrecognised instruction at address {pc:#x}.");
    let _ = writeln!(s, "   at {pc:#X}: ???");
    let _ = writeln!(s, "Your program just tried to execute an instruction that this tool could not");
    let _ = writeln!(s, "decode. Either the program has a bug and jumped to garbage (or executed");
    let _ = writeln!(s, "an instruction its CPU does not have), or the instruction is not supported");
    let _ = writeln!(s, "by this tool yet. In the second case, please report it with the bytes above.");
    let _ = writeln!(s, "The program will be sent SIGILL, as it would be natively.");
    crate::log::user_lines(&s);
}
