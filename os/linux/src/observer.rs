//! The hook through which a tool learns what memory a system call reads and writes (memcheck:
//! "Syscall param write(buf) points to uninitialised byte(s)"; marking `read`'s buffer defined).
//! The dispatcher evaluates the table's PRE/POST descriptions only when an observer is set.

/// A tool's interest in system-call memory. Addresses are guest addresses (which are also the
/// core's: the address space is shared).
pub trait SyscallObserver: Sync {
    /// Before the call: the kernel will read `[addr, addr+len)` for parameter `param` of
    /// `syscall` (e.g. "write", "buf").
    fn pre_mem_read(&self, syscall: &str, param: &str, addr: u64, len: u64);
    /// After a successful call: the kernel wrote `[addr, addr+len)` for parameter `param`.
    fn post_mem_write(&self, syscall: &str, param: &str, addr: u64, len: u64);
}

static OBSERVER: spin::Once<&'static dyn SyscallObserver> = spin::Once::new();

/// Install the tool's observer (once, before the guest starts; later calls are ignored).
pub fn set(o: &'static dyn SyscallObserver) {
    OBSERVER.call_once(|| o);
}

/// The installed observer, if any.
pub fn get() -> Option<&'static dyn SyscallObserver> {
    OBSERVER.get().copied()
}
