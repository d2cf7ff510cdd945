//! The tool-facing API: what a tool implements ([`Tool`]) and what it may use from the core.
//! Tools see the IR (`vg_ir`) and this module; everything else in the core is private to it.

use vg_ir::Superblock;

pub use crate::arch::StateLayout;
pub use vg_ir;

/// What a tool does with an option the core did not recognise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionResult {
    /// The tool took it.
    Taken,
    /// Not one of the tool's options (the core reports it as unknown).
    Unknown,
    /// The tool's option, but the value is bad; the core prints the message and exits 1.
    Bad(&'static str),
}

/// A tool: a name, an instrumentation pass and a few life-cycle hooks.
pub trait Tool {
    /// The `--tool=` name ("none", "memcheck", ...).
    const NAME: &'static str;
    /// The banner's first line, e.g. "Nulgrind, the minimal Valgrind tool".
    const BANNER: &'static str;
    /// The banner's copyright line for the tool.
    const COPYRIGHT: &'static str;
    /// Whether the tool writes its reports as XML with `--xml=yes`.
    const XML_OUTPUT: bool = false;
    /// Whether glibc's and libstdc++'s clean-up functions run in the guest at exit
    /// (`--run-libc-freeres=`, `--run-cxx-freeres=`): tools that report the memory still in
    /// use at exit want it, as Valgrind's memcheck, massif and dhat do.
    const RUN_FREERES: bool = false;
    /// The default of `--vex-guest-max-insns=`: superblock length that suits the tool. Heavy
    /// instrumentation makes long superblocks (and the code duplicated into them by chasing and
    /// unrolling) cost more to translate than they save at run time.
    const MAX_INSNS: usize = 50;

    /// Handle one tool option (`--foo=bar`).
    fn process_option(&mut self, _arg: &str) -> OptionResult {
        OptionResult::Unknown
    }
    /// Lines describing the tool's options for `--help`.
    fn usage(&self) -> &'static str {
        "    (none)\n"
    }
    /// Called once options are parsed, before the guest starts.
    fn post_options(&mut self) {}
    /// Add instrumentation to a superblock (before optimisation).
    fn instrument(&mut self, sb: Superblock, layout: &StateLayout) -> Superblock;
    /// A client request the core does not service itself (`MALLOCLIKE_BLOCK`, the mempool
    /// requests, the tool's own requests): `args` is the request's argument block (code
    /// first). `Some(result)` if the tool handled it; `None` leaves it unknown to the core.
    fn handle_client_request(&mut self, _args: &[u64; 6]) -> Option<u64> {
        None
    }
    /// Called when the guest has exited, with its exit code.
    fn fini(&mut self, _exit_code: i32) {}
}

/// Memory events the core reports to a tool that tracks the client's memory (memcheck): the
/// system calls that map, unmap and move memory and move the break. A tool installs its
/// receiver once with [`set_mem_events`]; the core calls [`mem_events`] where the events
/// happen (the OS layer's emulation of those calls). Every method defaults to doing nothing.
pub trait MemEvents: Sync {
    /// `[addr, addr+len)` was mapped by the client with `prot` (`PROT_*` bits).
    fn new_mem_mmap(&self, _addr: u64, _len: u64, _prot: u32) {}
    /// `[addr, addr+len)` was unmapped.
    fn die_mem_munmap(&self, _addr: u64, _len: u64) {}
    /// `[from, from+len)` moved to `[to, to+len)` (mremap); the rest of a grown mapping,
    /// `[to+len, to+new_len)`, is new.
    fn copy_mem_mremap(&self, _from: u64, _to: u64, _len: u64, _new_len: u64) {}
    /// The break grew over `[addr, addr+len)`.
    fn new_mem_brk(&self, _addr: u64, _len: u64) {}
    /// The break shrank, releasing `[addr, addr+len)`.
    fn die_mem_brk(&self, _addr: u64, _len: u64) {}
    /// The core wrote a signal frame over `[sp, sp+len)` and enters the handler with its stack
    /// pointer at `sp`.
    fn new_mem_stack_signal(&self, _sp: u64, _len: u64) {}
    /// rt_sigreturn popped the frame at stack pointer `frame_sp` and restored stack pointer
    /// `restored_sp` (on another stack if the handler ran on the alternate one).
    fn die_mem_stack_signal(&self, _frame_sp: u64, _restored_sp: u64) {}
}

static MEM_EVENTS: spin::Once<&'static dyn MemEvents> = spin::Once::new();

/// Install the tool's receiver of memory events (once, before the guest starts).
pub fn set_mem_events(m: &'static dyn MemEvents) {
    MEM_EVENTS.call_once(|| m);
}

/// The installed receiver of memory events, if any.
pub fn mem_events() -> Option<&'static dyn MemEvents> {
    MEM_EVENTS.get().copied()
}
