//! Processor-state instructions: fxsave/fxrstor and the xsave family (dirty helpers in
//! `helpers.rs` convert between the guest state and the memory image), xgetbv, rdtscp.

use super::{Lifter, Outcome};
use crate::helpers as h;
use crate::state::*;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use iced_x86::{Mnemonic as M, OpKind};
use vg_ir::*;

/// Guest-state ranges an image of the components `XCR0` covers.
fn component_ranges() -> Vec<(u32, u32)> {
    let mut r = h::x87_state_ranges();
    r.push((OFF_SSEROUND, 8));
    for i in 0..16 {
        r.push((off_ymm(i), if h::XCR0 & 4 != 0 { 32 } else { 16 }));
    }
    r
}

impl Lifter {
    pub(super) fn lift_save(&mut self) -> Option<Outcome> {
        let m = self.ins.mnemonic();
        let r = match m {
            M::Fxsave | M::Fxsave64 | M::Fxrstor | M::Fxrstor64 => {
                if self.ins.op_kind(0) != OpKind::Memory {
                    return Some(Outcome::Unhandled);
                }
                let store = matches!(m, M::Fxsave | M::Fxsave64);
                let callee = if store { h::fxsave_callee() } else { h::fxrstor_callee() };
                let a = self.ea();
                self.save_dirty(callee, vec![a], store, 512);
                Some(Outcome::Next)
            }
            M::Xsave | M::Xsave64 | M::Xsaveopt | M::Xsaveopt64 | M::Xsavec | M::Xsavec64 | M::Xrstor | M::Xrstor64 => {
                if self.ins.op_kind(0) != OpKind::Memory {
                    return Some(Outcome::Unhandled);
                }
                let a = self.ea();
                let eax = self.get_gpr64(RAX);
                if matches!(m, M::Xrstor | M::Xrstor64) {
                    self.save_dirty(h::xrstor_callee(), vec![a, eax], false, h::XSAVE_SIZE);
                } else {
                    let compacted = Atom::u64(matches!(m, M::Xsavec | M::Xsavec64) as u64);
                    self.save_dirty(h::xsave_callee(), vec![a, eax, compacted], true, h::XSAVE_SIZE);
                }
                Some(Outcome::Next)
            }
            M::Xgetbv => {
                // Only XCR0 exists (cpuid leaf 0xd sub-leaf 1 does not offer ecx = 1): any other
                // ecx raises #GP, SIGSEGV at the instruction.
                let ecx = self.sb.get(off_gpr(RCX), Ty::I32);
                let bad = self.sb.binop(Binop::CmpNE(Ty::I32), ecx, Atom::u32(0));
                self.sb.exit(bad, self.addr(), JumpKind::SigSegv);
                self.put_gpr64(RAX, Atom::u64(h::XCR0 & 0xffff_ffff));
                self.put_gpr64(RDX, Atom::u64(h::XCR0 >> 32));
                Some(Outcome::Next)
            }
            M::Rdtscp => {
                // The time-stamp counter as rdtsc gives it; IA32_TSC_AUX (ecx) reads as 0.
                self.sb.stmts.push(Stmt::Dirty(Box::new(Dirty {
                    callee: crate::cpuid::rdtsc_callee(),
                    args: vec![],
                    pass_state: true,
                    guard: None,
                    dst: None,
                    reads_state: vec![],
                    writes_state: vec![(off_gpr(RAX), 8), (off_gpr(RDX), 8)],
                    reads_mem: None,
                    writes_mem: None,
                })));
                self.put_gpr64(RCX, Atom::u64(0));
                Some(Outcome::Next)
            }
            _ => return None,
        };
        Some(r.unwrap_or(Outcome::Unhandled))
    }

    /// A save (`store`: state -> memory) or restore helper over `len` bytes at `args[0]`.
    fn save_dirty(&mut self, callee: Callee, args: Vec<Atom>, store: bool, len: u32) {
        let a = args[0];
        let state = component_ranges();
        self.sb.stmts.push(Stmt::Dirty(Box::new(Dirty {
            callee,
            args,
            pass_state: true,
            guard: None,
            dst: None,
            reads_state: if store { state.clone() } else { vec![] },
            writes_state: if store { vec![] } else { state },
            reads_mem: (!store).then_some((a, len)),
            writes_mem: store.then_some((a, len)),
        })));
    }
}
