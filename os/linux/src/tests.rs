//! Tests of the dispatcher and the emulated calls, run for real in the test process (whose own
//! mappings play the core's part).

extern crate std;

use super::*;
use emul::*;
use syscalls::x86_64::Sysno as S;
use vg_core::aspace::{CLIENT_MMAP_TOP, SegKind};

static INIT: std::sync::Once = std::sync::Once::new();
/// The tests share the process's address space and its manager: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn setup() -> std::sync::MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    INIT.call_once(|| aspace::init().unwrap());
    guard
}

fn fs_of(state: &[u8]) -> u64 {
    u64::from_le_bytes(state[..8].try_into().unwrap())
}
fn set_fs_of(state: &mut [u8], v: u64) {
    state[..8].copy_from_slice(&v.to_le_bytes());
}

/// Run one guest system call through the dispatcher (state: fs base in bytes 0..8).
fn sys(state: &mut [u8], nr: S, args: [u64; 6]) -> SyscallOutcome {
    dispatch("amd64", state, nr as u64, args, fs_of, set_fs_of)
}

fn ret(o: SyscallOutcome) -> u64 {
    match o {
        SyscallOutcome::Return(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

const PROT_RW: u64 = 3;
const ANON: u64 = 0x22; // MAP_PRIVATE | MAP_ANONYMOUS

fn kind_at(addr: u64) -> SegKind {
    let a = aspace::aspace();
    a.segments().iter().find(|s| s.start <= addr && addr < s.end).unwrap().kind
}

#[test]
fn mmap_places_client_memory_in_the_client_area_and_munmap_frees_it() {
    let _serial = setup();
    let mut st = [0u8; 8];
    let a = ret(sys(&mut st, S::mmap, [0, 0x3000, PROT_RW, ANON, u64::MAX, 0]));
    assert!(a < CLIENT_MMAP_TOP && a.is_multiple_of(4096), "{a:#x}");
    // SAFETY: the call just mapped three read-write pages at `a`.
    unsafe { *((a + 0x2fff) as *mut u8) = 1 };
    assert!(matches!(kind_at(a), SegKind::Client(_)));
    assert!(aspace::is_client_readable(a, 0x3000));
    assert_eq!(ret(sys(&mut st, S::mprotect, [a, 0x1000, 1, 0, 0, 0])), 0);
    assert!(!aspace::aspace().is_client_writable(a, 1));
    assert_eq!(ret(sys(&mut st, S::munmap, [a, 0x3000, 0, 0, 0, 0])), 0);
    assert!(!aspace::is_client_readable(a, 1));
    assert_eq!(ret(sys(&mut st, S::mmap, [0, 0, PROT_RW, ANON, u64::MAX, 0])), errno(EINVAL));
}

#[test]
fn requests_that_hit_the_core_are_refused() {
    let _serial = setup();
    let mut st = [0u8; 8];
    let code = aspace::page_down(requests_that_hit_the_core_are_refused as *const () as u64);
    let fixed = ANON | 0x10;
    assert_eq!(ret(sys(&mut st, S::mmap, [code, 0x1000, PROT_RW, fixed, u64::MAX, 0])), errno(ENOMEM));
    assert_eq!(ret(sys(&mut st, S::mmap, [code, 0x1000, PROT_RW, ANON | 0x10_0000, u64::MAX, 0])), errno(EEXIST));
    assert_eq!(ret(sys(&mut st, S::munmap, [code, 0x1000, 0, 0, 0, 0])), errno(EINVAL));
    assert_eq!(ret(sys(&mut st, S::mprotect, [code, 0x1000, 0, 0, 0, 0])), errno(ENOMEM));
    assert_eq!(ret(sys(&mut st, S::madvise, [code, 0x1000, 4, 0, 0, 0])), errno(EINVAL));
    // A hint on the core is only a hint: the mapping goes elsewhere.
    let a = ret(sys(&mut st, S::mmap, [code, 0x1000, PROT_RW, ANON, u64::MAX, 0]));
    assert_ne!(a, code);
    assert!(matches!(kind_at(a), SegKind::Client(_)));
    // The core's code is still there and still the core's.
    assert!(matches!(kind_at(code), SegKind::Core(_)));
}

#[test]
fn fixed_mmap_replaces_client_memory_and_mremap_grows_it() {
    let _serial = setup();
    let mut st = [0u8; 8];
    let a = ret(sys(&mut st, S::mmap, [0, 0x2000, PROT_RW, ANON, u64::MAX, 0]));
    // SAFETY: mapped read-write just above.
    unsafe { *(a as *mut u8) = 42 };
    let b = ret(sys(&mut st, S::mmap, [a + 0x1000, 0x1000, 1, ANON | 0x10, u64::MAX, 0]));
    assert_eq!(b, a + 0x1000);
    assert!(!aspace::aspace().is_client_writable(a + 0x1000, 1));
    assert_eq!(ret(sys(&mut st, S::mprotect, [a, 0x2000, PROT_RW, 0, 0, 0])), 0);
    let c = ret(sys(&mut st, S::mremap, [a, 0x2000, 0x40000, 1, 0, 0]));
    assert!(c < (-4096i64) as u64, "mremap failed: {}", c as i64);
    // SAFETY: mremap moved/grew the mapping to [c, c+0x40000).
    assert_eq!(unsafe { *(c as *const u8) }, 42);
    assert!(aspace::aspace().is_client_writable(c, 0x40000));
    if c != a {
        assert!(!aspace::is_client_readable(a, 1));
    }
    assert_eq!(ret(sys(&mut st, S::munmap, [c, 0x40000, 0, 0, 0, 0])), 0);
}

#[test]
fn arch_prctl_works_on_the_guest_state() {
    let _serial = setup();
    let mut st = [0u8; 8];
    assert_eq!(ret(sys(&mut st, S::arch_prctl, [0x1002, 0x1234_5000, 0, 0, 0, 0])), 0);
    assert_eq!(fs_of(&st), 0x1234_5000);
    let slot = ret(sys(&mut st, S::mmap, [0, 0x1000, PROT_RW, ANON, u64::MAX, 0]));
    assert_eq!(ret(sys(&mut st, S::arch_prctl, [0x1003, slot, 0, 0, 0, 0])), 0);
    // SAFETY: `slot` is a read-write page mapped above.
    assert_eq!(unsafe { *(slot as *const u64) }, 0x1234_5000);
    // Writing the answer into core memory is refused.
    let core_addr = &st as *const _ as u64;
    assert_eq!(ret(sys(&mut st, S::arch_prctl, [0x1003, core_addr, 0, 0, 0, 0])), errno(EFAULT));
    assert_eq!(ret(sys(&mut st, S::arch_prctl, [0x9999, 0, 0, 0, 0, 0])), errno(EINVAL));
    assert_eq!(ret(sys(&mut st, S::arch_prctl, [0x1002, 1 << 60, 0, 0, 0, 0])), errno(EPERM));
}

#[test]
fn signal_calls_are_emulated() {
    let _serial = setup();
    let mut st = [0u8; 8];
    let page = ret(sys(&mut st, S::mmap, [0, 0x1000, PROT_RW, ANON, u64::MAX, 0]));
    let (act, oact, set) = (page, page + 64, page + 128);
    // SAFETY: the page is mapped read-write.
    unsafe { core::ptr::copy_nonoverlapping([0xdead_u64, 0x0400_0000, 0xbeef, 0].as_ptr(), act as *mut u64, 4) };
    assert_eq!(ret(sys(&mut st, S::rt_sigaction, [10, act, 0, 8, 0, 0])), 0);
    assert_eq!(ret(sys(&mut st, S::rt_sigaction, [10, 0, oact, 8, 0, 0])), 0);
    // SAFETY: as above.
    assert_eq!(unsafe { *(oact as *const [u64; 3]) }, [0xdead, 0x0400_0000, 0xbeef]);
    assert_eq!(ret(sys(&mut st, S::rt_sigaction, [9, act, 0, 8, 0, 0])), errno(EINVAL));
    assert_eq!(ret(sys(&mut st, S::rt_sigaction, [10, act, 0, 4, 0, 0])), errno(EINVAL));
    // SAFETY: as above.
    unsafe { *(set as *mut u64) = (1 << 1) | (1 << 8) };
    assert_eq!(ret(sys(&mut st, S::rt_sigprocmask, [2, set, 0, 8, 0, 0])), 0);
    assert_eq!(ret(sys(&mut st, S::rt_sigprocmask, [0, 0, set, 8, 0, 0])), 0);
    // SAFETY: as above.
    assert_eq!(unsafe { *(set as *const u64) }, 1 << 1, "SIGKILL cannot be blocked");
    assert_eq!(ret(sys(&mut st, S::rt_sigprocmask, [7, set, 0, 8, 0, 0])), errno(EINVAL));
}

#[test]
fn exits_rseq_and_unknown_calls() {
    let mut st = [0u8; 8];
    assert_eq!(sys(&mut st, S::exit_group, [3, 0, 0, 0, 0, 0]), SyscallOutcome::ExitGroup(3));
    assert_eq!(sys(&mut st, S::exit, [4, 0, 0, 0, 0, 0]), SyscallOutcome::ExitThread(4));
    assert_eq!(ret(sys(&mut st, S::rseq, [0; 6])), errno(ENOSYS));
    assert_eq!(ret(dispatch("amd64", &mut st, 999, [0; 6], fs_of, set_fs_of)), errno(ENOSYS));
    assert_eq!(ret(dispatch("arm64", &mut st, 1, [0; 6], fs_of, set_fs_of)), errno(ENOSYS));
    let pid = ret(sys(&mut st, S::getpid, [0; 6]));
    assert_eq!(pid, std::process::id() as u64);
}

#[test]
fn self_exe_names() {
    assert!(is_self_exe("/proc/self/exe", 7));
    assert!(is_self_exe("/proc/7/exe", 7));
    assert!(is_self_exe("/proc/thread-self/exe", 7));
    assert!(!is_self_exe("/proc/8/exe", 7));
    assert!(!is_self_exe("/proc/self/exe2", 7));
    assert!(!is_self_exe("/usr/bin/exe", 7));
}

struct Recorder(spin::Mutex<std::vec::Vec<(std::string::String, u64, u64, bool)>>);

impl observer::SyscallObserver for Recorder {
    fn pre_mem_read(&self, sc: &str, param: &str, addr: u64, len: u64) {
        self.0.lock().push((std::format!("{sc}({param})"), addr, len, false));
    }
    fn post_mem_write(&self, sc: &str, param: &str, addr: u64, len: u64) {
        self.0.lock().push((std::format!("{sc}({param})"), addr, len, true));
    }
}

static REC: Recorder = Recorder(spin::Mutex::new(std::vec::Vec::new()));

#[test]
fn the_observer_hears_pre_reads_and_post_writes() {
    let _serial = setup();
    observer::set(&REC);
    let mut st = [0u8; 8];
    let page = ret(sys(&mut st, S::mmap, [0, 0x1000, PROT_RW, ANON, u64::MAX, 0]));
    let path = b"/dev/zero\0";
    // SAFETY: the page is mapped read-write.
    unsafe { core::ptr::copy_nonoverlapping(path.as_ptr(), page as *mut u8, path.len()) };
    let fd = ret(sys(&mut st, S::openat, [(-100i64) as u64, page, 0, 0, 0, 0]));
    assert!((fd as i64) >= 0);
    let buf = page + 256;
    assert_eq!(ret(sys(&mut st, S::read, [fd, buf, 100, 0, 0, 0])), 100);
    assert_eq!(ret(sys(&mut st, S::close, [fd, 0, 0, 0, 0, 0])), 0);
    let rec = REC.0.lock();
    let mine: std::vec::Vec<_> = rec.iter().filter(|r| r.1 >= page && r.1 < page + 0x1000).cloned().collect();
    assert_eq!(
        mine,
        [("openat(filename)".into(), page, 10, false), ("read(buf)".into(), buf, 100, true)]
    );
}
