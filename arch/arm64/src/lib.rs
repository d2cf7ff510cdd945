//! AArch64 support. For now only the guest register layout, so the workspace has the shape the
//! architecture needs; the lifter and back end arrive with the AArch64 port.

#![no_std]

/// The AArch64 guest registers as the core will address them.
#[repr(C, align(32))]
#[derive(Clone, Copy, Debug, Default)]
pub struct Arm64State {
    /// x0..x30
    pub x: [u64; 31],
    pub sp: u64,
    pub pc: u64,
    /// NZCV flags, lazily computed as on amd64.
    pub cc_op: u64,
    pub cc_dep1: u64,
    pub cc_dep2: u64,
    pub cc_ndep: u64,
    /// TPIDR_EL0 (thread pointer).
    pub tpidr_el0: u64,
    /// q0..q31
    pub q: [[u64; 2]; 32],
    pub fpcr: u64,
    pub fpsr: u64,
}

/// The ELF machine number of AArch64 executables (EM_AARCH64).
pub const ELF_MACHINE: u16 = 183;
