//! The amd64 host back end: instruction selection from IR ([`isel`]), vcode ([`inst`]), linear
//! scan register allocation (`vg_core::regalloc`), emission of x86-64 code with the `dynasm!`
//! macro ([`emit`]), and the dispatcher generated code returns to ([`dispatch`]).
//!
//! Depends on `vg-ir` and the core's `arch`, `regalloc` and `codebuf` modules only.

#![no_std]

extern crate alloc;

pub mod dispatch;
pub mod emit;
pub mod inst;
pub mod isel;

#[cfg(test)]
mod random_blocks;
#[cfg(test)]
mod tests;

use alloc::format;
use alloc::string::String;
use vg_core::arch::{DispatchAddrs, HostArch, HostCode, RunExit, StateLayout};
use vg_ir::{JumpKind, Stmt, Superblock};

pub use dispatch::{EVENT_COUNTER, EVENT_QUANTUM, fast_index};

/// Offset of the event counter in the dispatcher's frame (see [`dispatch`]).
pub const EVC_OFFSET: i32 = 16;
/// Kind code of the event-check exit (not a `JumpKind`).
pub const EVCHECK_CODE: u32 = 255;
/// Length of a chain site: `mov r11, imm64; call r11`.
pub const CHAIN_SITE_LEN: usize = 13;

const KINDS: [JumpKind; 13] = [
    JumpKind::Boring,
    JumpKind::Call,
    JumpKind::Ret,
    JumpKind::Syscall,
    JumpKind::ClientReq,
    JumpKind::NoDecode,
    JumpKind::SigIll,
    JumpKind::SigTrap,
    JumpKind::SigSegv,
    JumpKind::SigFpeIntDiv,
    JumpKind::Yield,
    JumpKind::InvalICache,
    JumpKind::NoRedir,
];

/// The code an assisted exit passes to the dispatcher for `k`.
pub fn kind_code(k: JumpKind) -> u32 {
    KINDS.iter().position(|&x| x == k).unwrap() as u32
}

/// Offsets of rip and rax in the x86-64 Linux `ucontext_t` (uc_mcontext.gregs[REG_RIP/RAX]:
/// gregs start at byte 40; REG_RAX = 13, REG_RIP = 16).
const UC_RIP: usize = 40 + 16 * 8;
const UC_RAX: usize = 40 + 13 * 8;

/// The amd64 host.
pub struct Amd64Host;

impl HostArch for Amd64Host {
    const NAME: &'static str = "amd64";

    fn compile(sb: &Superblock, layout: &StateLayout, disp: &DispatchAddrs) -> Result<HostCode, String> {
        let isel::VCode { insts, mut live } = isel::select(sb)?;
        for (i, inst) in insts.iter().enumerate() {
            inst.liveness(i, &mut live);
        }
        let alloc = live
            .allocate(&inst::HOST_REGS, layout.spill_size / 16)
            .map_err(|e| format!("register allocation failed: {e:?}"))?;
        // The first IMark is the block's entry (the front end starts every block with one).
        let entry = sb.stmts.iter().find_map(|s| match s {
            Stmt::IMark { addr, .. } => Some(*addr),
            _ => None,
        });
        let mut em = emit::Emitter::new(&alloc, layout.spill_offset, sb.pc_offset, entry, disp);
        let guarded: alloc::vec::Vec<usize> = (insts.iter().enumerate())
            .filter(|(_, inst)| matches!(inst, inst::Inst::Call { guard: Some(_), .. }))
            .map(|(i, _)| i)
            .collect();
        let masks = live.live_across(&alloc, &guarded);
        em.set_cold_live(guarded.into_iter().zip(masks).collect());
        em.emit_block(&insts);
        let chain_sites = core::mem::take(&mut em.chain_sites);
        let pc_map = core::mem::take(&mut em.pc_map);
        let bytes = em.ops.finish().map_err(|e| format!("code emission failed: {e:?}"))?;
        Ok(HostCode { bytes, chain_sites, pc_map })
    }

    unsafe fn fault_pc(uc: *const u8) -> usize {
        // SAFETY: the caller passes a kernel ucontext_t.
        unsafe { *(uc.add(UC_RIP) as *const usize) }
    }

    unsafe fn redirect_fault(uc: *mut u8, kind: JumpKind) {
        // Resume at the assisted-exit entry with the kind code in eax: rbp (guest state) and rsp
        // (the dispatcher's frame) are as they were in the translation.
        // SAFETY: the caller passes a kernel ucontext_t of a fault in generated code.
        unsafe {
            *(uc.add(UC_RIP) as *mut usize) = dispatch::vg_amd64_xassisted as *const () as usize;
            *(uc.add(UC_RAX) as *mut u64) = kind_code(kind) as u64;
        }
    }

    fn dispatch_addrs() -> DispatchAddrs {
        DispatchAddrs {
            chain_me: dispatch::vg_amd64_chain_me as *const () as usize,
            xindir: dispatch::vg_amd64_xindir as *const () as usize,
            xassisted: dispatch::vg_amd64_xassisted as *const () as usize,
        }
    }

    unsafe fn run(state: *mut u8, entry: *const u8, fast_table: *const u8, fast_mask: u64) -> RunExit {
        // SAFETY: the caller guarantees `entry` is a translation for this state's layout.
        let r = unsafe { dispatch::vg_amd64_run(state, entry, fast_table, fast_mask) };
        match r.tag {
            0 => RunExit::FastMiss,
            1 => RunExit::ChainMe { site: r.val as usize },
            2 => RunExit::Assisted(KINDS[r.val as usize]),
            _ => RunExit::EventCheck,
        }
    }

    unsafe fn chain(site: *mut u8, target: *const u8) {
        let mut code = [0u8; CHAIN_SITE_LEN];
        let rel = (target as isize).wrapping_sub(site as isize + 5);
        match i32::try_from(rel) {
            Ok(r) => {
                code[0] = 0xe9;
                code[1..5].copy_from_slice(&r.to_le_bytes());
                // One 8-byte nop fills the rest of the site.
                code[5..].copy_from_slice(&[0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0]);
            }
            Err(_) => {
                code[..2].copy_from_slice(&[0x49, 0xbb]);
                code[2..10].copy_from_slice(&(target as u64).to_le_bytes());
                code[10..].copy_from_slice(&[0x41, 0xff, 0xe3]); // jmp r11
            }
        }
        // SAFETY: the caller guarantees `site` is a chain site in writable code memory.
        unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), site, CHAIN_SITE_LEN) };
    }

    unsafe fn unchain(site: *mut u8, disp: &DispatchAddrs) {
        let mut code = [0u8; CHAIN_SITE_LEN];
        code[..2].copy_from_slice(&[0x49, 0xbb]);
        code[2..10].copy_from_slice(&(disp.chain_me as u64).to_le_bytes());
        code[10..].copy_from_slice(&[0x41, 0xff, 0xd3]); // call r11
        // SAFETY: as for `chain`.
        unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), site, CHAIN_SITE_LEN) };
    }

    fn disassemble(code: &[u8], addr: u64, out: &mut String) {
        use core::fmt::Write;
        use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter};
        let mut dec = Decoder::with_ip(64, code, addr, DecoderOptions::NONE);
        let mut fmt = IntelFormatter::new();
        let mut ins = Instruction::default();
        let mut text = String::new();
        while dec.can_decode() {
            dec.decode_out(&mut ins);
            text.clear();
            fmt.format(&ins, &mut text);
            let _ = writeln!(out, "  0x{:x}:  {}", ins.ip(), text);
        }
    }
}
