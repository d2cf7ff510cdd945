//! Processor-state instructions: fxsave/fxrstor and the xsave family, xgetbv, rdtscp.
//!
//! The x87 component goes through the dirty helpers in `helpers.rs` (its registers change
//! format on the way); MXCSR, the xmm registers and the ymm upper halves move with plain IR
//! loads and stores, one per register, so that a tool follows each register's value exactly. A
//! helper's effects are known only as whole ranges: memcheck would make the whole image
//! undefined if any saved register were, and every restored register undefined if any byte of
//! the image were (the x87 area stays unwritten when the dynamic linker's lazy-binding
//! trampoline saves only the SSE and AVX components) — false reports after every first call of
//! a lazily bound function.

use super::{Lifter, Outcome};
use crate::helpers as h;
use crate::state::*;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use iced_x86::{Mnemonic as M, OpKind};
use vg_ir::*;

/// Offsets in the image: MXCSR (and MXCSR_MASK after it), xmm0, the xsave header, the AVX
/// component (its place in both formats, AVX being the only extended component).
const MXCSR_AT: u64 = 24;
const XMM_AT: u64 = 160;
const HEADER_AT: u64 = 512;
const YMM_HI_AT: u64 = 576;
/// The size of the legacy region's x87 part the helpers read or write (it covers MXCSR too).
const X87_LEN: u32 = 160;
/// The MXCSR_MASK an image reports (as `helpers.rs` writes it: every MXCSR bit writable).
const MXCSR_MASK: u64 = 0xffff;
/// Bit 63 of XCOMP_BV: the image is in the compacted format.
const COMPACTED: u64 = 1 << 63;

impl Lifter {
    pub(super) fn lift_save(&mut self) -> Option<Outcome> {
        let m = self.ins.mnemonic();
        let r = match m {
            M::Fxsave | M::Fxsave64 | M::Fxrstor | M::Fxrstor64 => {
                if self.ins.op_kind(0) != OpKind::Memory {
                    return Some(Outcome::Unhandled);
                }
                let a = self.ea();
                if matches!(m, M::Fxsave | M::Fxsave64) {
                    // The helper writes the whole region; the xmm registers are then stored
                    // again by IR, which is what tools see of them.
                    self.x87_dirty(h::fxsave_callee(), vec![a], None, true, true);
                    let yes = Atom::bool(true);
                    self.save_xmm(a, yes, 0, XMM_AT);
                } else {
                    self.x87_dirty(h::fxrstor_callee(), vec![a], None, false, true);
                    let yes = Atom::bool(true);
                    self.restore_xmm(a, yes, yes, 0, XMM_AT);
                }
                Some(Outcome::Next)
            }
            M::Xsave | M::Xsave64 | M::Xsaveopt | M::Xsaveopt64 | M::Xsavec | M::Xsavec64 | M::Xrstor | M::Xrstor64 => {
                if self.ins.op_kind(0) != OpKind::Memory {
                    return Some(Outcome::Unhandled);
                }
                let a = self.ea();
                let eax = self.get_gpr64(RAX);
                let rfbm = self.sb.binop(Binop::And(Ty::I64), eax, Atom::u64(h::XCR0));
                if matches!(m, M::Xrstor | M::Xrstor64) {
                    self.xrstor(a, rfbm);
                } else {
                    self.xsave(a, rfbm, matches!(m, M::Xsavec | M::Xsavec64));
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

    /// A helper moving the x87 state (and MXCSR if `mxcsr`) between the state and the first
    /// `X87_LEN` bytes at `args[0]`, under `guard`. What else it moves is moved again by IR
    /// afterwards, so only these ranges are declared.
    fn x87_dirty(&mut self, callee: Callee, args: Vec<Atom>, guard: Option<Atom>, store: bool, mxcsr: bool) {
        let a = args[0];
        let mut state = h::x87_state_ranges();
        if mxcsr {
            state.push((OFF_SSEROUND, 8));
        }
        self.sb.stmts.push(Stmt::Dirty(Box::new(Dirty {
            callee,
            args,
            pass_state: true,
            guard,
            dst: None,
            reads_state: if store { state.clone() } else { vec![] },
            writes_state: if store { vec![] } else { state },
            reads_mem: (!store).then_some((a, X87_LEN)),
            writes_mem: store.then_some((a, X87_LEN)),
        })));
    }

    fn plus(&mut self, a: Atom, off: u64) -> Atom {
        self.sb.binop(Binop::Add(Ty::I64), a, Atom::u64(off))
    }

    /// Whether any of `mask`'s bits is set in `v` (I64).
    fn any_bit(&mut self, v: Atom, mask: u64) -> Atom {
        let b = self.sb.binop(Binop::And(Ty::I64), v, Atom::u64(mask));
        self.sb.binop(Binop::CmpNE(Ty::I64), b, Atom::u64(0))
    }

    /// The IR has no guarded memory access: an access the instruction may skip goes, when
    /// skipped, to `safe` instead (an address it accesses anyway: the xsave header).
    fn addr_if(&mut self, g: Atom, addr: Atom, safe: Atom) -> Atom {
        if g == Atom::bool(true) { addr } else { self.sb.ite(g, addr, safe) }
    }

    /// Store `val` at `addr` if `g`; otherwise `safe` gets its own bytes back.
    fn store_if(&mut self, g: Atom, addr: Atom, val: Atom, safe: Atom) {
        if g == Atom::bool(true) {
            self.sb.store(addr, val);
            return;
        }
        let at = self.addr_if(g, addr, safe);
        let ty = self.sb.atom_ty(val);
        let old = self.sb.load(ty, at);
        let v = self.sb.ite(g, val, old);
        self.sb.store(at, v);
    }

    /// Store the 16-byte halves at `half` (0: xmm, 16: ymm upper) of all 16 registers from
    /// offset `at` of the image at `a`, if `g`.
    fn save_xmm(&mut self, a: Atom, g: Atom, half: u32, at: u64) {
        let safe = self.plus(a, HEADER_AT);
        for i in 0..16 {
            let v = self.sb.get(off_ymm(i) + half, Ty::V128);
            let addr = self.plus(a, at + 16 * i as u64);
            self.store_if(g, addr, v, safe);
        }
    }

    /// Load those halves if `g`: from the image if `from`, else the initial zeros.
    fn restore_xmm(&mut self, a: Atom, g: Atom, from: Atom, half: u32, at: u64) {
        let safe = self.plus(a, HEADER_AT);
        let read = if g == Atom::bool(true) { from } else { self.sb.ite(g, from, Atom::bool(false)) };
        for i in 0..16 {
            let addr = self.plus(a, at + 16 * i as u64);
            let at = self.addr_if(read, addr, safe);
            let v = self.sb.load(Ty::V128, at);
            let v = if from == Atom::bool(true) { v } else { self.sb.ite(from, v, Atom::Const(Const::V128(0))) };
            let off = off_ymm(i) + half;
            let v = if g == Atom::bool(true) {
                v
            } else {
                let old = self.sb.get(off, Ty::V128);
                self.sb.ite(g, v, old)
            };
            self.sb.put(off, v);
        }
    }

    /// xsave/xsaveopt/xsavec of the components `rfbm` at `a`. Every enabled component counts as
    /// in use, so XSTATE_BV gets all requested bits.
    fn xsave(&mut self, a: Atom, rfbm: Atom, compacted: bool) {
        // The helper asked for the x87 component alone (it also sets XSTATE_BV bit 0, which the
        // header update below sets again).
        let g = self.any_bit(rfbm, 1);
        self.x87_dirty(h::xsave_callee(), vec![a, Atom::u64(1), Atom::u64(0)], Some(g), true, false);
        let safe = self.plus(a, HEADER_AT);
        let g = self.any_bit(rfbm, 6);
        let rm = self.sb.get(OFF_SSEROUND, Ty::I64);
        let rm = self.sb.binop(Binop::Shl(Ty::I64), rm, Atom::u8(13));
        let mxcsr = self.sb.binop(Binop::Or(Ty::I64), rm, Atom::u64(0x1f80 | MXCSR_MASK << 32));
        let addr = self.plus(a, MXCSR_AT);
        self.store_if(g, addr, mxcsr, safe);
        let g = self.any_bit(rfbm, 2);
        self.save_xmm(a, g, 0, XMM_AT);
        if h::XCR0 & 4 != 0 {
            let g = self.any_bit(rfbm, 4);
            self.save_xmm(a, g, 16, YMM_HI_AT);
        }
        if compacted {
            // XSTATE_BV and XCOMP_BV (the reserved rest of the header is left alone).
            self.sb.store(safe, rfbm);
            let comp = self.sb.binop(Binop::Or(Ty::I64), rfbm, Atom::u64(COMPACTED));
            let addr = self.plus(a, HEADER_AT + 8);
            self.sb.store(addr, comp);
        } else {
            let old = self.sb.load(Ty::I64, safe);
            let bv = self.sb.binop(Binop::Or(Ty::I64), old, rfbm);
            self.sb.store(safe, bv);
        }
    }

    /// xrstor of the components `rfbm` from `a`, in either format: a component whose XSTATE_BV
    /// bit is clear gets its initial state.
    fn xrstor(&mut self, a: Atom, rfbm: Atom) {
        let g = self.any_bit(rfbm, 1);
        self.x87_dirty(h::xrstor_callee(), vec![a, Atom::u64(1)], Some(g), false, false);
        let safe = self.plus(a, HEADER_AT);
        let bv = self.sb.load(Ty::I64, safe);
        let addr = self.plus(a, HEADER_AT + 8);
        let comp = self.sb.load(Ty::I64, addr);
        // MXCSR: the default 0x1f80 (round to nearest) when a compacted image lacks SSE.
        let g = self.any_bit(rfbm, 6);
        let addr = self.plus(a, MXCSR_AT);
        let at = self.addr_if(g, addr, safe);
        let mx = self.sb.load(Ty::I32, at);
        let mx = self.sb.zext(mx, Ty::I64);
        let rm = self.sb.binop(Binop::Shr(Ty::I64), mx, Atom::u8(13));
        let rm = self.sb.binop(Binop::And(Ty::I64), rm, Atom::u64(3));
        let c = self.sb.binop(Binop::Shr(Ty::I64), comp, Atom::u8(63));
        let no_sse = self.sb.unop(Unop::Not(Ty::I64), bv);
        let no_sse = self.sb.binop(Binop::Shr(Ty::I64), no_sse, Atom::u8(1));
        let init = self.sb.binop(Binop::And(Ty::I64), c, no_sse);
        let init = self.any_bit(init, 1);
        let rm = self.sb.ite(init, Atom::u64(0), rm);
        let old = self.sb.get(OFF_SSEROUND, Ty::I64);
        let rm = self.sb.ite(g, rm, old);
        self.sb.put(OFF_SSEROUND, rm);
        let g = self.any_bit(rfbm, 2);
        let from = self.any_bit(bv, 2);
        self.restore_xmm(a, g, from, 0, XMM_AT);
        if h::XCR0 & 4 != 0 {
            let g = self.any_bit(rfbm, 4);
            let from = self.any_bit(bv, 4);
            self.restore_xmm(a, g, from, 16, YMM_HI_AT);
        }
    }
}
