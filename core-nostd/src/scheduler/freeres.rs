//! The libraries' exit-time clean-up, run in the guest (Valgrind's freeres wrapper). glibc keeps
//! some memory until the process ends (stdio buffers, locale data, the dynamic linker's state)
//! and libstdc++ some more (its emergency exception pool); `__libc_freeres()` and
//! `__gnu_cxx::__freeres()` release it. When the client exits normally (exit_group, or exit of
//! its last thread) and the tool asked for it ([`tool_needs_freeres`]), the scheduler has the
//! exiting thread call them — libstdc++'s first, as Valgrind does — on the synthetic CPU, so that
//! a tool's "in use at exit" figures show only the program's own memory. Afterwards the process
//! ends with the status of the original exit call. `--run-libc-freeres=no` and
//! `--run-cxx-freeres=no` leave either out.
//!
//! Nothing runs after a fatal signal (that path never reaches an exit call), at most one run
//! happens per process (a forked child runs its own when it exits), and a program without the
//! functions (a stripped static executable, a C library other than glibc) exits at once.
//!
//! The functions are found by name in the symbol tables of the client's mapped code objects. Each
//! is entered the way a signal handler is (a frame below the exiting thread's stack pointer,
//! [`RETURN_ADDR`] as its return address: the guest architecture's frame code is the core's one
//! way to enter a guest function with a chosen return address); the scheduler notices the thread
//! reaching that address. While a run lasts the thread blocks every signal and the process's
//! other threads run no more guest code.
//!
//! Uses: `aspace` (which code objects are mapped, whether the stack is writable), `stacks` (their
//! symbols), `threads`, `tool` (the frame is a memory event), `options`, `log`.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::arch::{GuestArch, SIGINFO_SIZE, SigDelivery};
use crate::aspace::{Backing, SegKind};

/// Where the clean-up functions return to: a non-canonical address, which no guest code can
/// occupy (on amd64 or arm64), so the scheduler may take reaching it as the end of a call.
pub const RETURN_ADDR: u64 = 0x7fff_ffff_ffff_f000;

const LIBC_FREERES: &str = "__libc_freeres";
const CXX_FREERES: &str = "_ZN9__gnu_cxx9__freeresEv";
const PROT_EXEC: u32 = 4;
const SS_DISABLE: i32 = 2;

/// Whether the tool wants the clean-up (set by [`tool_needs_freeres`]).
static TOOL_NEEDS: AtomicBool = AtomicBool::new(false);

/// Ask for the libraries' clean-up at exit; start-up calls it for tools with
/// `Tool::RUN_FREERES`.
pub fn tool_needs_freeres() {
    TOOL_NEEDS.store(true, Ordering::Relaxed);
}

/// A clean-up run in progress.
struct Run {
    /// The status of the exit call that started it: the process's exit status.
    code: i32,
    /// The thread's stack pointer at that call; each function's frame goes below it.
    sp: u64,
    /// Functions still to call, next last.
    todo: Vec<u64>,
}

/// The run in progress, if any; `STARTED` says whether one was ever begun in this process.
static RUN: spin::Mutex<Option<Run>> = spin::Mutex::new(None);
static STARTED: AtomicBool = AtomicBool::new(false);
/// The slot of the thread making the calls plus one (0: no run yet), read by every thread's
/// loop.
static RUN_SLOT: AtomicUsize = AtomicUsize::new(0);

/// The thread in `slot` made an exit call with status `code` that ends the process. Either sets
/// the thread up to call the first clean-up function (`None`: the scheduler runs it on) or
/// gives the status the process ends with now: the original one if this exit comes from a
/// clean-up function itself.
pub(super) fn on_exit<G: GuestArch>(slot: usize, st: &mut [u8], code: i32) -> Option<i32> {
    if let Some(r) = RUN.lock().as_ref() {
        return Some(r.code);
    }
    if !TOOL_NEEDS.load(Ordering::Relaxed) || STARTED.swap(true, Ordering::Relaxed) {
        return Some(code);
    }
    let opts = crate::options::current();
    if !opts.run_libc_freeres && !opts.run_cxx_freeres {
        return Some(code);
    }
    let found = [(opts.run_libc_freeres, find_function(LIBC_FREERES)), (opts.run_cxx_freeres, find_function(CXX_FREERES))];
    if found.iter().all(|f| f.1.is_none()) {
        return Some(code);
    }
    // Valgrind names what the options ask for, whichever of the two the program has (its
    // wrapper calls what is there); like it, say nothing for a program without either.
    if crate::log::verbosity() > 2 {
        let what = match (opts.run_cxx_freeres, opts.run_libc_freeres) {
            (true, true) => "__gnu_cxx::__freeres and __libc_freeres()",
            (true, false) => "__gnu_cxx::__freeres()",
            _ => "__libc_freeres()",
        };
        crate::dmsg!("Caught __NR_exit; running {what} wrapper");
    }
    // Called last first: `todo` is popped from its end.
    let todo: Vec<u64> = found.iter().filter(|f| f.0).filter_map(|f| f.1).collect();
    if todo.is_empty() {
        return Some(code);
    }
    // No handler may run in the middle of the clean-up (or after it, as the process is ending).
    crate::threads::current().mask = !super::UNBLOCKABLE;
    *RUN.lock() = Some(Run { code, sp: G::sp(st), todo });
    RUN_SLOT.store(slot + 1, Ordering::Relaxed);
    call_next::<G>(st)
}

/// The thread in `slot` reached [`RETURN_ADDR`]: if it is the thread of the run, one clean-up
/// function has returned. Sets up the next one (`None`), or gives the exit status once all have
/// run. A thread that jumps there on its own gets `None` and goes on to fault there.
pub(super) fn returned<G: GuestArch>(slot: usize, st: &mut [u8]) -> Option<i32> {
    if RUN_SLOT.load(Ordering::Relaxed) != slot + 1 {
        return None;
    }
    call_next::<G>(st)
}

/// Whether another thread than the one in `slot` is running the clean-up: this thread must
/// run no more guest code (Valgrind has the other threads gone by then).
pub(super) fn held_by_other(slot: usize) -> bool {
    let s = RUN_SLOT.load(Ordering::Relaxed);
    s != 0 && s != slot + 1
}

/// Enter the next function of the run, or end the run: `Some(status)` when nothing is left
/// (or the stack has no room for a frame).
fn call_next<G: GuestArch>(st: &mut [u8]) -> Option<i32> {
    let mut guard = RUN.lock();
    let run = guard.as_mut().expect("a clean-up run is in progress");
    let (code, sp) = (run.code, run.sp);
    let low = sp.wrapping_sub(G::SIGFRAME_MAX);
    let room = low < sp && crate::aspace::aspace().is_client_writable(low, G::SIGFRAME_MAX);
    let Some(func) = run.todo.pop().filter(|_| room) else {
        // The run is over, but RUN_SLOT stays: the other threads must stay stopped while the
        // process ends.
        *guard = None;
        return Some(code);
    };
    drop(guard);
    let d = SigDelivery {
        signo: 0,
        info: [0; SIGINFO_SIZE],
        handler: func,
        restorer: RETURN_ADDR,
        saved_mask: crate::threads::current().mask,
        sp,
        on_altstack: false,
        altstack: (0, SS_DISABLE, 0),
    };
    // SAFETY: [sp - SIGFRAME_MAX, sp) is writable client memory (checked above).
    unsafe { G::push_signal_frame(st, &d) };
    let entry_sp = G::sp(st);
    crate::tool::mem_events().inspect(|ev| ev.new_mem_stack_signal(entry_sp, sp - entry_sp));
    None
}

/// The run-time address of function `name` in the first mapped code object that defines it.
fn find_function(name: &str) -> Option<u64> {
    // One executable mapping per file is enough to find its object (and its load bias).
    let mut objects: Vec<(String, u64)> = Vec::new();
    for s in crate::aspace::aspace().segments() {
        if s.kind != SegKind::Client(Backing::File) || s.prot & PROT_EXEC == 0 {
            continue;
        }
        if let Some(path) = &s.name
            && !objects.iter().any(|o| &o.0 == path)
        {
            objects.push((path.clone(), s.start));
        }
    }
    crate::stacks::with_debug_info(|di, reader| {
        objects.iter().find_map(|&(_, start)| {
            let obj = di.object_at(reader, start)?;
            let bias = obj.bias();
            obj.symbols().lookup_name(name).map(|a| a.wrapping_add(bias))
        })
    })
}
