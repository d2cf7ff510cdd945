//! Guest threads (Valgrind's `m_threadstate` + the big lock of `m_scheduler`): every guest
//! thread is a real host thread running the scheduler loop on its own guest state, and one big
//! lock serialises them — only its holder runs guest code or touches core data (translation
//! table, arenas, address space, this module's table). Blocking system calls release it.
//!
//! The lock is a futex mutex by default and a futex ticket lock with `--fair-sched=yes` (threads
//! then get it in arrival order). The thread table is indexed by slot; a signal handler finds
//! its thread's slot from the tid ([`SLOT_TID`]) to record a thread-directed signal.
//!
//! Uses: `syscall`, `log` (nothing else: the scheduler and the signal code build on this).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use syscalls::{Sysno, syscall};

/// Most guest threads alive at once.
pub const MAX_THREADS: usize = 256;
/// Host stack of a guest thread (mapped lazily by the kernel; the core's translation needs room).
const HOST_STACK: usize = 8 << 20;

// --- the big lock -------------------------------------------------------------------------

static FAIR: AtomicBool = AtomicBool::new(false);
/// Mutex word (0 free, 1 held, 2 held with waiters) or, when fair, the ticket being served.
static LOCK_WORD: AtomicU32 = AtomicU32::new(0);
static NEXT_TICKET: AtomicU32 = AtomicU32::new(0);

fn futex_wait(word: &AtomicU32, val: u32) {
    const FUTEX_WAIT_PRIVATE: usize = 128;
    // SAFETY: the kernel only reads the word (it outlives the call); a timeout of null waits.
    let _ = unsafe { syscall!(Sysno::futex, word.as_ptr(), FUTEX_WAIT_PRIVATE, val, 0) };
}

fn futex_wake(word: &AtomicU32, n: u32) {
    const FUTEX_WAKE_PRIVATE: usize = 129;
    // SAFETY: waking has no memory effect.
    let _ = unsafe { syscall!(Sysno::futex, word.as_ptr(), FUTEX_WAKE_PRIVATE, n) };
}

/// Take the big lock (blocking).
pub fn lock() {
    if FAIR.load(Ordering::Relaxed) {
        let me = NEXT_TICKET.fetch_add(1, Ordering::Relaxed);
        loop {
            let now = LOCK_WORD.load(Ordering::Acquire);
            if now == me {
                return;
            }
            futex_wait(&LOCK_WORD, now);
        }
    }
    if LOCK_WORD.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok() {
        return;
    }
    while LOCK_WORD.swap(2, Ordering::Acquire) != 0 {
        futex_wait(&LOCK_WORD, 2);
    }
}

/// Release the big lock.
pub fn unlock() {
    if FAIR.load(Ordering::Relaxed) {
        LOCK_WORD.fetch_add(1, Ordering::Release);
        futex_wake(&LOCK_WORD, i32::MAX as u32);
    } else if LOCK_WORD.swap(0, Ordering::Release) == 2 {
        futex_wake(&LOCK_WORD, 1);
    }
}

/// Whether another thread waits for the lock (the holder should end its time slice).
pub fn others_waiting() -> bool {
    if FAIR.load(Ordering::Relaxed) {
        NEXT_TICKET.load(Ordering::Relaxed).wrapping_sub(LOCK_WORD.load(Ordering::Relaxed)) > 1
    } else {
        LOCK_WORD.load(Ordering::Relaxed) == 2
    }
}

/// End the holder's time slice: let a waiting thread run, then take the lock back.
pub fn yield_lock() {
    let slot = current_slot();
    unlock();
    // SAFETY: sched_yield has no memory effect.
    let _ = unsafe { syscall!(Sysno::sched_yield) };
    lock();
    set_current(slot);
}

// --- the thread table ---------------------------------------------------------------------

/// tid of the thread in each slot (0 = free); read by signal handlers.
pub static SLOT_TID: [AtomicI32; MAX_THREADS] = [const { AtomicI32::new(0) }; MAX_THREADS];
/// Thread-directed signals caught for each slot and not yet delivered (bit n-1 = signal n).
pub static SLOT_PENDING: [AtomicU64; MAX_THREADS] = [const { AtomicU64::new(0) }; MAX_THREADS];
/// Non-zero while the host thread of a slot lives (the kernel clears it at the thread's exit:
/// CLONE_CHILD_CLEARTID), so that its host stack can be reused.
static HOST_LIVE: [AtomicU32; MAX_THREADS] = [const { AtomicU32::new(0) }; MAX_THREADS];
static HOST_STACKS: [AtomicUsize; MAX_THREADS] = [const { AtomicUsize::new(0) }; MAX_THREADS];

/// The slot of the lock holder.
static CURRENT: AtomicUsize = AtomicUsize::new(0);

/// A guest thread as the core keeps it (only touched by the big lock's holder).
#[derive(Clone, Copy, Debug)]
pub struct Thread {
    pub tid: i32,
    /// The guest-state block (state, shadows, spill area) this thread runs on.
    pub state: *mut u8,
    /// The guest's blocked-signal mask.
    pub mask: u64,
    /// During rt_sigsuspend: the mask to restore once a handler has run.
    pub suspend_saved: Option<u64>,
    /// sigaltstack: (ss_sp, ss_flags, ss_size); size 0 = disabled.
    pub altstack: (u64, i32, u64),
    /// CLONE_CHILD_CLEARTID / set_tid_address: zeroed and futex-woken at thread exit.
    pub clear_child_tid: u64,
}

struct Table(UnsafeCell<[Option<Thread>; MAX_THREADS]>);
// SAFETY: only the big lock's holder accesses the table (see `table`).
unsafe impl Sync for Table {}
static TABLE: Table = Table(UnsafeCell::new([None; MAX_THREADS]));

#[allow(clippy::mut_from_ref)]
fn table() -> &'static mut [Option<Thread>; MAX_THREADS] {
    // SAFETY: callers hold the big lock, which serialises all access; no reference escapes
    // across a release of the lock (callers copy what they keep).
    unsafe { &mut *TABLE.0.get() }
}

static RUNNING: AtomicBool = AtomicBool::new(false);

/// Whether the guest runs (the table and the lock are set up).
pub fn running() -> bool {
    RUNNING.load(Ordering::Relaxed)
}

/// Set up the table with the main thread in slot 0 (holding the lock) and choose the lock kind.
pub fn init(fair: bool, main: Thread) {
    FAIR.store(fair, Ordering::Relaxed);
    RUNNING.store(true, Ordering::Relaxed);
    lock();
    SLOT_TID[0].store(main.tid, Ordering::Relaxed);
    table()[0] = Some(main);
    CURRENT.store(0, Ordering::Relaxed);
}

/// The lock holder's slot.
pub fn current_slot() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

/// Record that the thread in `slot` now holds the lock.
pub fn set_current(slot: usize) {
    CURRENT.store(slot, Ordering::Relaxed);
}

/// The lock holder's thread record. Before the guest runs (the OS layer's own tests) this is
/// a record of no thread, so that the signal calls have a mask to work on.
pub fn current() -> &'static mut Thread {
    if !running() {
        return table()[0].get_or_insert(Thread {
            tid: 0,
            state: core::ptr::null_mut(),
            mask: 0,
            suspend_saved: None,
            altstack: (0, 2, 0),
            clear_child_tid: 0,
        });
    }
    thread(current_slot())
}

/// The record of the thread in `slot` (which must be in use).
pub fn thread(slot: usize) -> &'static mut Thread {
    table()[slot].as_mut().expect("a live thread slot")
}

/// The slot of host thread `tid`, if it is a guest thread.
pub fn slot_of_tid(tid: i32) -> Option<usize> {
    SLOT_TID.iter().position(|t| t.load(Ordering::Relaxed) == tid)
}

/// Number of live guest threads.
pub fn live_count() -> usize {
    table().iter().filter(|t| t.is_some()).count()
}

/// Remove the thread in `slot` from the table (it is exiting).
pub fn remove(slot: usize) {
    table()[slot] = None;
    SLOT_TID[slot].store(0, Ordering::Relaxed);
    SLOT_PENDING[slot].store(0, Ordering::Relaxed);
}

/// In the child of a fork: only the forking thread exists, with a new tid, holding the lock.
pub fn after_fork_child() {
    let me = current_slot();
    for slot in 0..MAX_THREADS {
        if slot != me {
            table()[slot] = None;
            SLOT_TID[slot].store(0, Ordering::Relaxed);
            HOST_LIVE[slot].store(0, Ordering::Relaxed);
        }
        SLOT_PENDING[slot].store(0, Ordering::Relaxed);
    }
    let tid = crate::syscall::gettid();
    SLOT_TID[me].store(tid, Ordering::Relaxed);
    thread(me).tid = tid;
    if FAIR.load(Ordering::Relaxed) {
        NEXT_TICKET.store(LOCK_WORD.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    } else {
        LOCK_WORD.store(1, Ordering::Relaxed);
    }
}

// --- host threads -------------------------------------------------------------------------

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SYSVSEM: u64 = 0x40000;
pub const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;

/// Why a thread could not be created (an errno for the guest).
pub const EAGAIN: i32 = 11;

/// Create the host thread of a new guest thread in a free slot: it starts in
/// `entry(slot)` (which must take the big lock before touching anything). The caller holds the
/// lock, so the child waits until the caller has filled in `t` (done here before returning).
/// With `parent_tid` non-zero the kernel stores the new tid there (CLONE_PARENT_SETTID).
pub fn spawn(mut t: Thread, parent_tid: u64, entry: extern "C" fn(usize) -> !) -> Result<(usize, i32), i32> {
    let slot = (1..MAX_THREADS)
        .find(|&s| table()[s].is_none() && HOST_LIVE[s].load(Ordering::Acquire) == 0)
        .ok_or(EAGAIN)?;
    let stack = match HOST_STACKS[slot].load(Ordering::Relaxed) {
        0 => {
            let s = crate::syscall::mmap_anon(HOST_STACK).map_err(|_| EAGAIN)?;
            HOST_STACKS[slot].store(s, Ordering::Relaxed);
            s
        }
        s => s,
    };
    let top = stack + HOST_STACK - 16;
    // SAFETY: the top 16 bytes of the fresh stack are ours: the child pops the entry and slot.
    unsafe {
        *(top as *mut usize) = entry as usize;
        *((top + 8) as *mut usize) = slot;
    }
    let mut flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_CHILD_CLEARTID;
    if parent_tid != 0 {
        flags |= CLONE_PARENT_SETTID;
    }
    HOST_LIVE[slot].store(1, Ordering::Release);
    // SAFETY: the child runs on its own stack and starts in `entry`, which never returns; the
    // kernel clears HOST_LIVE[slot] (a static) when the child exits.
    let r = unsafe { clone_thread(flags, top, parent_tid, HOST_LIVE[slot].as_ptr() as u64) };
    if r < 0 {
        HOST_LIVE[slot].store(0, Ordering::Relaxed);
        return Err(-r as i32);
    }
    t.tid = r as i32;
    SLOT_TID[slot].store(t.tid, Ordering::Relaxed);
    table()[slot] = Some(t);
    Ok((slot, t.tid))
}

/// End the calling host thread (not the process).
pub fn exit_host_thread() -> ! {
    loop {
        // SAFETY: exit ends only this thread; nothing runs after it.
        let _ = unsafe { syscall!(Sysno::exit, 0) };
    }
}

unsafe extern "C" {
    /// Raw clone: the child starts with `stack` holding its entry function and argument.
    fn vg_clone_thread(flags: u64, stack: usize, ptid: u64, ctid: u64) -> i64;
}

/// # Safety
/// `stack` must hold the entry and its argument as laid out by `spawn`.
unsafe fn clone_thread(flags: u64, stack: usize, ptid: u64, ctid: u64) -> i64 {
    // SAFETY: caller contract.
    unsafe { vg_clone_thread(flags, stack, ptid, ctid) }
}

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .text.vg_clone_thread,\"ax\",@progbits",
    ".globl vg_clone_thread",
    "vg_clone_thread:",
    "mov r10, rcx",
    "xor r8d, r8d",
    "mov eax, 56",
    "syscall",
    "test rax, rax",
    "jnz 1f",
    // The child: entry and slot are on its new stack; the entry never returns.
    "pop rax",
    "pop rdi",
    "xor ebp, ebp",
    "call rax",
    "ud2",
    "1:",
    "ret",
    ".popsection",
);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".pushsection .text.vg_clone_thread,\"ax\",@progbits",
    ".globl vg_clone_thread",
    "vg_clone_thread:",
    // clone(flags, stack, ptid, tls, ctid) on aarch64.
    "mov x4, x3",
    "mov x3, xzr",
    "mov x8, #220",
    "svc #0",
    "cbnz x0, 1f",
    "ldp x9, x0, [sp], #16",
    "mov x29, xzr",
    "blr x9",
    "brk #0",
    "1:",
    "ret",
    ".popsection",
);
