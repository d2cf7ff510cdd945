//! The traits that architectures implement for the core: a guest front end ([`GuestArch`]) and a
//! host back end ([`HostArch`]). A tool executable instantiates one of each.
//!
//! Depends only on `vg-ir`.

use alloc::string::String;
use alloc::vec::Vec;
use vg_ir::Superblock;

/// Where the front end reads guest code from. Guest and core share one address space, but code
/// may only be read where the address-space manager says it is mapped and readable.
pub trait CodeSource {
    /// The readable bytes starting at `addr`, at most `max` of them; empty if not readable.
    fn code(&self, addr: u64, max: usize) -> &[u8];
}

/// Limits and switches for lifting one superblock.
#[derive(Clone, Copy, Debug)]
pub struct LiftLimits {
    /// At most this many guest instructions per superblock (`--vex-guest-max-insns`).
    pub max_insns: usize,
    /// Follow unconditional direct jumps/calls into the same superblock.
    pub chase_jumps: bool,
}

/// A guest architecture: its register file and its instruction-set front end.
pub trait GuestArch {
    /// Valgrind's name for it ("amd64", "arm64").
    const NAME: &'static str;
    /// Size of the guest state in bytes (a multiple of 32).
    const STATE_SIZE: u32;
    /// Offsets of the program counter and stack pointer in the guest state.
    const PC_OFFSET: u32;
    const SP_OFFSET: u32;
    /// Offset of the frame pointer (the unwinder's register besides pc and sp).
    const FP_OFFSET: u32;
    /// The ELF `e_machine` value of its executables.
    const ELF_MACHINE: u16;

    /// Translate the guest code at `addr` into a superblock. Undecodable code does not fail:
    /// the block ends with a `JumpKind::NoDecode` exit at the bad instruction, and
    /// `describe_undecodable` gives the report text.
    fn lift(code: &dyn CodeSource, addr: u64, limits: LiftLimits) -> Superblock;

    /// The front end's report on the undecodable instruction at `addr` (Valgrind's
    /// "unhandled instruction bytes" lines, each ending in a newline).
    fn describe_undecodable(code: &dyn CodeSource, addr: u64) -> String;

    /// Initialise a zeroed guest state to start at `entry` with stack pointer `sp`.
    fn init_state(state: &mut [u8], entry: u64, sp: u64);

    /// The system call the guest is making: (number, six arguments).
    fn syscall_args(state: &[u8]) -> (u64, [u64; 6]);
    /// Write a system call's result (a raw kernel return value: -errno on failure).
    fn set_syscall_result(state: &mut [u8], ret: u64);
    /// The thread-pointer (TLS) base register: fs base on amd64, TPIDR_EL0 on arm64.
    fn tls_base(state: &[u8]) -> u64;
    fn set_tls_base(state: &mut [u8], v: u64);
    /// Read the program counter / stack pointer.
    fn pc(state: &[u8]) -> u64;
    fn sp(state: &[u8]) -> u64;

    /// The frame-pointer register (the unwinder's fallback when there is no CFI).
    fn frame_pointer(state: &[u8]) -> u64;

    /// A client request: the address of its six-word argument block (request code first) and
    /// the default result the request macro preloaded.
    fn client_request(state: &[u8]) -> (u64, u64);
    /// Write a client request's result where the request macro reads it.
    fn set_client_request_result(state: &mut [u8], v: u64);
    /// Offset of the guest register `VALGRIND_GET_ORIG_FN` reads (NRADDR): a wrapper's
    /// translation sets it to the address of the function it wraps.
    const NRADDR_OFFSET: u32;

    /// Point the pc back at the system-call instruction just executed (the number register
    /// still holds the call's number), so that the call is made again: SA_RESTART.
    fn restart_syscall(state: &mut [u8]);

    /// Bytes a signal frame may take below the stack pointer it is built under (red zone,
    /// alignment, extended state and the frame itself); the core checks that much is writable.
    const SIGFRAME_MAX: u64;
    /// Build the kernel's signal frame for `d` below `d.sp` in guest memory and set the state up
    /// to enter the handler (arguments, stack pointer, pc, cleared direction flag).
    ///
    /// # Safety
    /// `[d.sp - SIGFRAME_MAX, d.sp)` must be writable client memory.
    unsafe fn push_signal_frame(state: &mut [u8], d: &SigDelivery);
    /// rt_sigreturn: restore the registers from the frame at the stack pointer and return what
    /// the core restores itself (mask, alternate stack). `readable(addr, len)` vets every read.
    fn pop_signal_frame(state: &mut [u8], readable: &dyn Fn(u64, u64) -> bool) -> Option<SigRestored>;
}

/// Size of the kernel's `siginfo_t`.
pub const SIGINFO_SIZE: usize = 128;

/// A signal to deliver to a guest handler, as the core decided it.
#[derive(Clone, Copy, Debug)]
pub struct SigDelivery {
    pub signo: i32,
    /// The `siginfo_t` the handler gets (SA_SIGINFO) and the frame holds.
    pub info: [u8; SIGINFO_SIZE],
    pub handler: u64,
    pub restorer: u64,
    /// The mask rt_sigreturn restores (the one in force when the signal arrived).
    pub saved_mask: u64,
    /// Build the frame below this address (the interrupted stack pointer, or the top of the
    /// alternate stack).
    pub sp: u64,
    /// Whether `sp` is the top of the alternate stack (no red zone to skip).
    pub on_altstack: bool,
    /// The alternate-stack record saved in the frame (`uc_stack`: sp, flags, size).
    pub altstack: (u64, i32, u64),
}

/// What rt_sigreturn gives back to the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigRestored {
    pub mask: u64,
    pub altstack: (u64, i32, u64),
}

/// Addresses of the dispatcher's entry points that generated code jumps to on exit.
#[derive(Clone, Copy, Debug)]
pub struct DispatchAddrs {
    /// Unchained direct exit: `call` here; the return address identifies the exit site.
    pub chain_me: usize,
    /// Indirect exit: look the guest PC up in the fast table.
    pub xindir: usize,
    /// Exit that needs the scheduler (syscall, client request, ...); the kind is in a register.
    pub xassisted: usize,
}

/// Layout of the block generated code runs against.
#[derive(Clone, Copy, Debug)]
pub struct StateLayout {
    /// Size of one guest state copy; shadow 1 and 2 follow it.
    pub state_size: u32,
    /// Offset of the back end's spill area (after the two shadows) and its size in bytes.
    pub spill_offset: u32,
    pub spill_size: u32,
}

/// A directly chainable exit in generated code: where it is and where it wants to go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainSite {
    /// Offset of the patchable sequence from the start of the translation.
    pub offset: u32,
    /// Guest address of the destination.
    pub dst: u64,
}

/// The result of compiling one superblock.
#[derive(Clone, Debug, Default)]
pub struct HostCode {
    pub bytes: Vec<u8>,
    pub chain_sites: Vec<ChainSite>,
    /// (offset, guest pc) where the code of each guest instruction starts, in order: a fault at
    /// a host pc belongs to the last instruction starting at or before it.
    pub pc_map: Vec<(u32, u64)>,
}

/// Why the dispatcher returned to the scheduler. The guest PC is always up to date in the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunExit {
    /// Indirect jump whose target is not in the fast table.
    FastMiss,
    /// A direct exit that is not chained yet: `site` is the absolute address of its patchable
    /// sequence (chain it once the destination is translated).
    ChainMe { site: usize },
    /// An exit that needs the scheduler's help.
    Assisted(vg_ir::JumpKind),
    /// The event counter ran out (time slice over).
    EventCheck,
}

/// A host architecture: instruction selection, register allocation, emission, dispatch.
pub trait HostArch {
    const NAME: &'static str;

    /// Compile an optimised, instrumented superblock to host code positioned anywhere (the code
    /// is position independent except for absolute references to the dispatcher).
    fn compile(sb: &Superblock, layout: &StateLayout, disp: &DispatchAddrs) -> Result<HostCode, String>;

    /// The dispatcher's entry points.
    fn dispatch_addrs() -> DispatchAddrs;

    /// Run translations starting at host address `entry` against `state` until one exits to the
    /// scheduler. `fast_table` is the fast lookup cache ([`crate::transtab::FastEntry`] array of
    /// `fast_mask + 1` entries).
    ///
    /// # Safety
    /// `entry` must be a translation made by `compile` for a state with this layout; `state` must
    /// point to a state block of the layout's full size.
    unsafe fn run(state: *mut u8, entry: *const u8, fast_table: *const u8, fast_mask: u64) -> RunExit;

    /// Patch the chain site at absolute address `site` to jump straight to `target` / back to
    /// the dispatcher's chain-me entry.
    ///
    /// # Safety
    /// `site` must be a chain site of a live translation in writable code memory.
    unsafe fn chain(site: *mut u8, target: *const u8);
    unsafe fn unchain(site: *mut u8, disp: &DispatchAddrs);

    /// The host program counter of an interrupted context (a Linux `ucontext_t` of this host).
    ///
    /// # Safety
    /// `uc` must be the context pointer the kernel passed to an SA_SIGINFO handler.
    unsafe fn fault_pc(uc: *const u8) -> usize;

    /// Make the interrupted context `uc`, stopped by a fault inside generated code, leave
    /// through the assisted exit with `kind` when the handler returns — as if the translation
    /// had exited there. The guest state's pc must already name the faulting instruction.
    ///
    /// # Safety
    /// As for `fault_pc`, and the fault must have happened in generated code (not in a helper).
    unsafe fn redirect_fault(uc: *mut u8, kind: vg_ir::JumpKind);

    /// Append a disassembly of `code` (loaded at `addr`) to `out`, one instruction per line.
    fn disassemble(code: &[u8], addr: u64, out: &mut String);
}

/// What the OS layer decided about a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyscallOutcome {
    /// Continue the guest with this raw result (-errno on failure) in the result register.
    Return(u64),
    /// The calling thread exits with this status.
    ExitThread(i32),
    /// The whole process exits with this status.
    ExitGroup(i32),
    /// rt_sigreturn: the guest state (and the mask) were restored from the frame; the pc is
    /// the interrupted one, no result register to write.
    SigReturn,
    /// A new thread in this process (clone with CLONE_THREAD): the scheduler creates it and
    /// returns its tid (or -errno) to the parent.
    NewThread { flags: u64, stack: u64, parent_tid: u64, child_tid: u64, tls: u64 },
}

/// The operating-system layer: how a guest system call is carried out.
pub trait Os {
    /// Valgrind's name for it ("linux").
    const NAME: &'static str;
    /// Carry out system call `nr` with `args` for a guest of architecture `G` whose state is
    /// `state` (which the call may change, e.g. the TLS base for arch_prctl).
    fn syscall<G: GuestArch>(state: &mut [u8], nr: u64, args: [u64; 6]) -> SyscallOutcome;
    /// Whether call `nr`, interrupted by a signal whose handler has SA_RESTART, is restarted
    /// (otherwise it fails with EINTR whatever the flag: poll, nanosleep, ...).
    fn restartable(nr: u64) -> bool;
    /// The process is ending normally (`--track-fds=yes` reports, ...).
    fn fini();
}
