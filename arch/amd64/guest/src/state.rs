//! The amd64 guest state: the synthetic CPU's registers as a `#[repr(C)]` block that generated
//! code addresses by byte offset. The core allocates it followed by two shadow copies of the same
//! size (tools' shadow registers) and the back end's spill area.

use core::mem::offset_of;

/// General-purpose register numbers, in x86 encoding order.
pub const RAX: usize = 0;
pub const RCX: usize = 1;
pub const RDX: usize = 2;
pub const RBX: usize = 3;
pub const RSP: usize = 4;
pub const RBP: usize = 5;
pub const RSI: usize = 6;
pub const RDI: usize = 7;

/// The registers of the synthetic amd64 CPU.
///
/// Flags are lazy: `cc_op` names the last flag-setting operation and `cc_dep1`/`cc_dep2`/
/// `cc_ndep` hold its operands; the flags helpers compute any flag from them on demand.
/// The direction flag is kept apart as +1/-1 (`dflag`), ID and AC as 0/1.
#[repr(C, align(32))]
#[derive(Clone, Copy, Debug)]
pub struct Amd64State {
    /// rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15.
    pub gpr: [u64; 16],
    pub rip: u64,
    pub cc_op: u64,
    pub cc_dep1: u64,
    pub cc_dep2: u64,
    pub cc_ndep: u64,
    pub dflag: u64,
    pub idflag: u64,
    pub acflag: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    /// ymm0..ymm15 (low 128 bits are xmm), lanes little-endian, then one scratch register
    /// front ends may use for temporaries that must live in the state.
    pub ymm: [[u64; 4]; 17],
    /// SSE rounding mode (bits 13..14 of mxcsr, 0 = nearest); the rest of mxcsr is not modelled.
    pub sseround: u64,
    /// x87 registers as F64 (long double is approximated by double) in *stack order*:
    /// `fpreg[k]` is ST(k) and `fptag[k]` its tag (0 empty, 1 valid); `ftop` is the physical
    /// top-of-stack (0..7) the status word shows, so physical register i is ST((i - ftop) & 7);
    /// `fpround` the control word's rounding field (0..3); `fc3210` the condition bits C3..C0
    /// in their status-word positions (mask 0x4700). See `lift/x87.rs`.
    pub fpreg: [u64; 8],
    pub fptag: [u8; 8],
    pub ftop: u32,
    pub fpround: u32,
    pub fc3210: u64,
    /// Emulation note (warning) raised by the last helper, 0 if none.
    pub emnote: u64,
    /// Range of guest code whose translations must be discarded (JumpKind::InvalICache).
    pub cmstart: u64,
    pub cmlen: u64,
    /// Address of the original function for function wrapping (VALGRIND_GET_ORIG_FN).
    pub nraddr: u64,
    /// Bookkeeping for `syscall`: address of the syscall instruction (for restart).
    pub ip_at_syscall: u64,
}

impl Default for Amd64State {
    fn default() -> Self {
        // SAFETY: all-zero bits are a valid value for every field (integers only).
        let mut s: Amd64State = unsafe { core::mem::zeroed() };
        s.dflag = 1;
        s.fptag = [0; 8];
        s
    }
}

/// Size of the guest state in bytes (a multiple of 32, so shadows stay aligned).
pub const STATE_SIZE: u32 = core::mem::size_of::<Amd64State>() as u32;

/// Byte offsets of the fields, for IR `Get`/`Put`.
pub const OFF_GPR: u32 = offset_of!(Amd64State, gpr) as u32;
pub const OFF_RIP: u32 = offset_of!(Amd64State, rip) as u32;
pub const OFF_CC_OP: u32 = offset_of!(Amd64State, cc_op) as u32;
pub const OFF_CC_DEP1: u32 = offset_of!(Amd64State, cc_dep1) as u32;
pub const OFF_CC_DEP2: u32 = offset_of!(Amd64State, cc_dep2) as u32;
pub const OFF_CC_NDEP: u32 = offset_of!(Amd64State, cc_ndep) as u32;
pub const OFF_DFLAG: u32 = offset_of!(Amd64State, dflag) as u32;
pub const OFF_IDFLAG: u32 = offset_of!(Amd64State, idflag) as u32;
pub const OFF_ACFLAG: u32 = offset_of!(Amd64State, acflag) as u32;
pub const OFF_FS_BASE: u32 = offset_of!(Amd64State, fs_base) as u32;
pub const OFF_GS_BASE: u32 = offset_of!(Amd64State, gs_base) as u32;
pub const OFF_YMM: u32 = offset_of!(Amd64State, ymm) as u32;
pub const OFF_SSEROUND: u32 = offset_of!(Amd64State, sseround) as u32;
pub const OFF_FPREG: u32 = offset_of!(Amd64State, fpreg) as u32;
pub const OFF_FPTAG: u32 = offset_of!(Amd64State, fptag) as u32;
pub const OFF_FTOP: u32 = offset_of!(Amd64State, ftop) as u32;
pub const OFF_FPROUND: u32 = offset_of!(Amd64State, fpround) as u32;
pub const OFF_FC3210: u32 = offset_of!(Amd64State, fc3210) as u32;
pub const OFF_EMNOTE: u32 = offset_of!(Amd64State, emnote) as u32;
pub const OFF_CMSTART: u32 = offset_of!(Amd64State, cmstart) as u32;
pub const OFF_CMLEN: u32 = offset_of!(Amd64State, cmlen) as u32;
pub const OFF_NRADDR: u32 = offset_of!(Amd64State, nraddr) as u32;
pub const OFF_IP_AT_SYSCALL: u32 = offset_of!(Amd64State, ip_at_syscall) as u32;

/// Offset of general-purpose register `r` (0..16, encoding order).
pub const fn off_gpr(r: usize) -> u32 {
    OFF_GPR + 8 * r as u32
}
/// Offset of ymm register `r` (0..17); its low 16 bytes are xmm `r`.
pub const fn off_ymm(r: usize) -> u32 {
    OFF_YMM + 32 * r as u32
}

const _: () = assert!(STATE_SIZE % 32 == 0);
