//! The amd64 guest: the synthetic CPU's register state and the front end that lifts x86-64
//! machine code into IR (iced-x86 decodes; `lift/` builds the IR by instruction family; lazy
//! flags in `flags.rs`; emulated CPUID/RDTSC in `cpuid.rs`; helper functions in `helpers.rs`
//! (integer) and `x87.rs` (floating point)).
//!
//! Depends on `vg-ir` (the IR) and `vg-core::arch` (the `GuestArch` trait) only.

#![no_std]

extern crate alloc;

pub mod cpuid;
pub mod flags;
pub mod helpers;
mod lift;
pub mod sigframe;
pub mod state;
pub mod x87;

use alloc::format;
use alloc::string::String;
use state::*;
use vg_core::arch::{CodeSource, GuestArch, LiftLimits};
use vg_ir::Superblock;

/// The amd64 guest architecture.
pub struct Amd64;

fn rd64(state: &[u8], off: u32) -> u64 {
    let o = off as usize;
    u64::from_le_bytes(state[o..o + 8].try_into().expect("8 bytes"))
}
fn wr64(state: &mut [u8], off: u32, v: u64) {
    let o = off as usize;
    state[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

impl GuestArch for Amd64 {
    const NAME: &'static str = "amd64";
    const STATE_SIZE: u32 = STATE_SIZE;
    const PC_OFFSET: u32 = OFF_RIP;
    const SP_OFFSET: u32 = off_gpr(RSP);
    const FP_OFFSET: u32 = off_gpr(RBP);
    const ELF_MACHINE: u16 = 62;

    fn lift(code: &dyn CodeSource, addr: u64, limits: LiftLimits) -> Superblock {
        lift::lift_block(code, addr, limits)
    }

    fn describe_undecodable(code: &dyn CodeSource, addr: u64) -> String {
        describe_undecodable(code.code(addr, 10), addr)
    }

    fn init_state(state: &mut [u8], entry: u64, sp: u64) {
        let d = Amd64State::default();
        // SAFETY: Amd64State is repr(C) plain old data; viewing it as bytes is sound.
        let bytes = unsafe {
            core::slice::from_raw_parts(&d as *const Amd64State as *const u8, core::mem::size_of::<Amd64State>())
        };
        state[..bytes.len()].copy_from_slice(bytes);
        wr64(state, OFF_RIP, entry);
        wr64(state, off_gpr(RSP), sp);
        // Flags start as all clear: a COPY thunk of 0.
        wr64(state, OFF_CC_OP, flags::CC_COPY);
    }

    fn syscall_args(state: &[u8]) -> (u64, [u64; 6]) {
        let r = |n: usize| rd64(state, off_gpr(n));
        (r(RAX), [r(RDI), r(RSI), r(RDX), r(10), r(8), r(9)])
    }
    fn set_syscall_result(state: &mut [u8], ret: u64) {
        wr64(state, off_gpr(RAX), ret)
    }
    fn tls_base(state: &[u8]) -> u64 {
        rd64(state, OFF_FS_BASE)
    }
    fn set_tls_base(state: &mut [u8], v: u64) {
        wr64(state, OFF_FS_BASE, v)
    }
    fn pc(state: &[u8]) -> u64 {
        rd64(state, OFF_RIP)
    }
    fn sp(state: &[u8]) -> u64 {
        rd64(state, off_gpr(RSP))
    }
    fn frame_pointer(state: &[u8]) -> u64 {
        rd64(state, off_gpr(RBP))
    }
    fn client_request(state: &[u8]) -> (u64, u64) {
        (rd64(state, off_gpr(RAX)), rd64(state, off_gpr(RDX)))
    }
    fn set_client_request_result(state: &mut [u8], v: u64) {
        wr64(state, off_gpr(RDX), v)
    }
    const NRADDR_OFFSET: u32 = OFF_NRADDR;
    fn restart_syscall(state: &mut [u8]) {
        sigframe::restart_syscall(state)
    }
    const SIGFRAME_MAX: u64 = sigframe::SIGFRAME_MAX;
    unsafe fn push_signal_frame(state: &mut [u8], d: &vg_core::arch::SigDelivery) {
        // SAFETY: the trait's contract is the function's.
        unsafe { sigframe::push_signal_frame(state, d) }
    }
    fn pop_signal_frame(state: &mut [u8], readable: &dyn Fn(u64, u64) -> bool) -> Option<vg_core::arch::SigRestored> {
        sigframe::pop_signal_frame(state, readable)
    }
}

/// Valgrind's report for an instruction the front end could not decode or lift: the first ten
/// bytes at `addr` (fewer if fewer are readable) and the prefixes found in front of the opcode.
/// (`_addr` is where they are; the report itself does not show it.)
pub fn describe_undecodable(bytes: &[u8], _addr: u64) -> String {
    let mut s = String::from("vex amd64->IR: unhandled instruction bytes:");
    for b in bytes.iter().take(10) {
        s.push_str(&format!(" 0x{:X}", b));
    }
    s.push('\n');
    // Scan legacy prefixes, then an optional REX, then VEX / escape bytes.
    let (mut p66, mut pf2, mut pf3) = (0, 0, 0);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            0x66 => p66 = 1,
            0xf2 => pf2 = 1,
            0xf3 => pf3 = 1,
            0x67 | 0xf0 | 0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65 => {}
            _ => break,
        }
        i += 1;
    }
    let rex = bytes.get(i).copied().filter(|b| b & 0xf0 == 0x40).unwrap_or(0);
    if rex != 0 {
        i += 1;
    }
    let bit = |b: u8, n: u32| (b >> n) & 1;
    let (mut vex, mut vex_l, mut vvvv, mut esc) = (0, 0, 0u8, "NONE");
    match bytes.get(i) {
        Some(0xc5) if bytes.len() > i + 1 => {
            let b = bytes[i + 1];
            vex = 1;
            vex_l = bit(b, 2);
            vvvv = (!b >> 3) & 0xf;
            esc = "0F";
        }
        Some(0xc4) if bytes.len() > i + 2 => {
            let (b1, b2) = (bytes[i + 1], bytes[i + 2]);
            vex = 1;
            vex_l = bit(b2, 2);
            vvvv = (!b2 >> 3) & 0xf;
            esc = match b1 & 0x1f {
                1 => "0F",
                2 => "0F38",
                3 => "0F3A",
                _ => "NONE",
            };
        }
        Some(0x0f) => {
            esc = match bytes.get(i + 1) {
                Some(0x38) => "0F38",
                Some(0x3a) => "0F3A",
                _ => "0F",
            };
        }
        _ => {}
    }
    s.push_str(&format!(
        "vex amd64->IR:   REX={} REX.W={} REX.R={} REX.X={} REX.B={}\n",
        (rex != 0) as u8,
        bit(rex, 3),
        bit(rex, 2),
        bit(rex, 1),
        bit(rex, 0)
    ));
    s.push_str(&format!("vex amd64->IR:   VEX={} VEX.L={} VEX.nVVVV=0x{:x} ESC={}\n", vex, vex_l, vvvv, esc));
    s.push_str(&format!("vex amd64->IR:   PFX.66={} PFX.F2={} PFX.F3={}\n", p66, pf2, pf3));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_report_format() {
        // An EVEX-encoded vmovdqu64 (not lifted) as in Valgrind's own reports.
        let r = describe_undecodable(&[0x62, 0xf1, 0xfe, 0x08, 0x6f, 0x40, 0x01, 0xc5, 0xf8, 0x11, 0x99], 0x1000);
        assert_eq!(
            r,
            "vex amd64->IR: unhandled instruction bytes: 0x62 0xF1 0xFE 0x8 0x6F 0x40 0x1 0xC5 0xF8 0x11\n\
             vex amd64->IR:   REX=0 REX.W=0 REX.R=0 REX.X=0 REX.B=0\n\
             vex amd64->IR:   VEX=0 VEX.L=0 VEX.nVVVV=0x0 ESC=NONE\n\
             vex amd64->IR:   PFX.66=0 PFX.F2=0 PFX.F3=0\n"
        );
        let r = describe_undecodable(&[0x66, 0x48, 0x0f, 0x38, 0x00, 0xc1], 0);
        assert!(r.contains("REX=1 REX.W=1 REX.R=0 REX.X=0 REX.B=0"));
        assert!(r.contains("ESC=0F38"));
        assert!(r.contains("PFX.66=1 PFX.F2=0 PFX.F3=0"));
    }
}
