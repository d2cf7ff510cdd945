//! The emulated CPUID and RDTSC: dirty helpers that write the guest's rax/rbx/rcx/rdx.
//!
//! CPUID advertises only what the lifter handles, so that libc's ifunc resolvers pick code we
//! can run: an Intel-like vendor with fpu, tsc, cx8, cmov, mmx, fxsr, sse, sse2, sse3, ssse3,
//! cx16, sse4.1, sse4.2, movbe, popcnt, xsave/osxsave (XCR0 = x87|SSE, leaf 0xd describing the
//! xsave area, xsaveopt and xsavec), leaf 7 bmi1 and bmi2, and the long-mode extended leaves
//! (lm, lahf/sahf, lzcnt, syscall, nx, rdtscp), and with the `AVX` switch avx, avx2 and fma
//! (XCR0 then has the AVX state component, and leaf 0xd its size and place). The back end
//! emits FMA forms with the host's FMA instructions, so a host without FMA needs the switch
//! off. Cache geometry comes
//! from leaf 4 (leaf 2 says so with descriptor 0xff) so that libc's string functions get
//! sensible thresholds.

use crate::helpers::{XCR0, XSAVE_SIZE};
use crate::state::{off_gpr, RAX, RBX, RCX, RDX};
use vg_ir::Callee;

/// Whether AVX, AVX2 and FMA are advertised (and the AVX state component enabled in XCR0).
pub const AVX: bool = true;

/// Leaf 1 ecx: sse3(0) ssse3(9) cx16(13) sse4_1(19) sse4_2(20) movbe(22) popcnt(23) xsave(26)
/// osxsave(27), and with `AVX` fma(12) avx(28).
const LEAF1_ECX: u32 = 1 | (1 << 9) | (1 << 13) | (1 << 19) | (1 << 20) | (1 << 22) | (1 << 23) | (1 << 26) | (1 << 27)
    | if AVX { (1 << 12) | (1 << 28) } else { 0 };
/// Leaf 7 ebx: bmi1(3) bmi2(8), and with `AVX` avx2(5).
const LEAF7_EBX: u32 = (1 << 3) | (1 << 8) | if AVX { 1 << 5 } else { 0 };

/// (leaf, subleaf or None for any) -> eax, ebx, ecx, edx.
const LEAVES: &[(u32, Option<u32>, [u32; 4])] = &[
    // Highest basic leaf 0xd; "GenuineIntel" in ebx, edx, ecx.
    (0, None, [0xd, 0x756e_6547, 0x6c65_746e, 0x4965_6e69]),
    // Family 6 model 0x3c stepping 3; clflush 64 bytes, 1 logical CPU; ecx: LEAF1_ECX;
    // edx: fpu(0) tsc(4) cx8(8) cmov(15) clflush(19) mmx(23) fxsr(24) sse(25) sse2(26).
    (1, None, [0x0003_06c3, 0x0001_0800, LEAF1_ECX, (1 << 0) | (1 << 4) | (1 << 8) | (1 << 15) | (1 << 19) | (1 << 23) | (1 << 24) | (1 << 25) | (1 << 26)]),
    // One round, descriptor 0xff: "use leaf 4".
    (2, None, [0x0000_ff01, 0, 0, 0]),
    // Deterministic cache parameters: L1d 32K, L1i 32K, L2 256K, L3 8M, 64-byte lines.
    (4, Some(0), [0x0000_0121, (7 << 22) | 63, 63, 0]),
    (4, Some(1), [0x0000_0122, (7 << 22) | 63, 63, 0]),
    (4, Some(2), [0x0000_0143, (7 << 22) | 63, 511, 0]),
    (4, Some(3), [0x0000_0163, (15 << 22) | 63, 8191, 0]),
    // Structured extended features: sub-leaf 0 only.
    (7, Some(0), [0, LEAF7_EBX, 0, 0]),
    // XSAVE: the XCR0 components, the area size for them (standard and compacted formats are
    // the same size); sub-leaf 1: xsaveopt(0) xsavec(1); sub-leaf 2: the AVX component.
    (0xd, Some(0), [XCR0 as u32, XSAVE_SIZE, XSAVE_SIZE, 0]),
    (0xd, Some(1), [0b11, XSAVE_SIZE, 0, 0]),
    (0xd, Some(2), if AVX { [256, 576, 0, 0] } else { [0; 4] }),
    (0x8000_0000, None, [0x8000_0008, 0, 0, 0]),
    // lahf_lm (ecx 0), abm = lzcnt (ecx 5); syscall (edx 11), nx (20), rdtscp (27), lm (29).
    (0x8000_0001, None, [0, 0, 1 | (1 << 5), (1 << 11) | (1 << 20) | (1 << 27) | (1 << 29)]),
    // Brand string "Synthetic amd64 CPU (vg-rs)", 48 bytes NUL-padded.
    (0x8000_0002, None, [0x746e_7953, 0x6974_6568, 0x6d61_2063, 0x2034_3664]),
    (0x8000_0003, None, [0x2055_5043, 0x2d67_7628, 0x0029_7372, 0]),
    (0x8000_0004, None, [0, 0, 0, 0]),
    // L2: 256K, 8-way, 64-byte lines.
    (0x8000_0006, None, [0, 0, 0x0100_6040, 0]),
    // 48-bit virtual and physical addresses.
    (0x8000_0008, None, [0x3030, 0, 0, 0]),
];

/// The CPUID result for `leaf`/`subleaf`; unknown leaves read as zero.
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    LEAVES
        .iter()
        .find(|(l, s, _)| *l == leaf && s.is_none_or(|s| s == subleaf))
        .map(|e| e.2)
        .unwrap_or([0; 4])
}

fn rd(state: *mut u8, r: usize) -> u64 {
    // SAFETY: `state` is the guest-state pointer generated code passes to dirty helpers; GPR
    // slots are 8-byte aligned inside it.
    unsafe { *(state.add(off_gpr(r) as usize) as *const u64) }
}
fn wr(state: *mut u8, r: usize, v: u64) {
    // SAFETY: as in `rd`.
    unsafe { *(state.add(off_gpr(r) as usize) as *mut u64) = v }
}

/// Dirty helper for `cpuid`: reads eax/ecx, writes rax/rbx/rcx/rdx (zero-extended).
pub extern "C" fn amd64_dirty_cpuid(state: *mut u8) -> u64 {
    let r = cpuid(rd(state, RAX) as u32, rd(state, RCX) as u32);
    for (reg, v) in [(RAX, r[0]), (RBX, r[1]), (RCX, r[2]), (RDX, r[3])] {
        wr(state, reg, v as u64);
    }
    0
}

/// Dirty helper for `rdtsc`: the host's time-stamp counter into edx:eax.
pub extern "C" fn amd64_dirty_rdtsc(state: *mut u8) -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: rdtsc is available in user mode on every x86-64 host we run on.
    let t = unsafe { core::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    let t = 0u64;
    wr(state, RAX, t & 0xffff_ffff);
    wr(state, RDX, t >> 32);
    0
}

pub(crate) fn cpuid_callee() -> Callee {
    Callee { name: "amd64_dirty_cpuid", addr: amd64_dirty_cpuid as extern "C" fn(*mut u8) -> u64 as usize }
}
pub(crate) fn rdtsc_callee() -> Callee {
    Callee { name: "amd64_dirty_rdtsc", addr: amd64_dirty_rdtsc as extern "C" fn(*mut u8) -> u64 as usize }
}
