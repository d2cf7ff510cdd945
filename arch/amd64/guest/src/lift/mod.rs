//! The superblock driver and the operand/flags plumbing shared by the instruction families
//! (`int.rs`: the integer ISA, `sse.rs`: SSE/SSE2, `sse4.rs`: SSE3..SSE4.2, `avx.rs`: AVX, AVX2
//! and FMA3, `bmi.rs`: BMI1/2 and movbe, `x87.rs`: the x87 FPU, `save.rs`: fxsave/xsave and other
//! processor-state instructions).
//!
//! One superblock: decode with iced-x86 up to `max_insns` instructions, an `IMark` per
//! instruction, side exits for conditional branches, following unconditional direct jumps and
//! calls when chasing is enabled, ending at indirect branches, returns and system calls. An
//! instruction that cannot be decoded or lifted ends the block before it with a `NoDecode` exit;
//! one that decodes but is defined to fault (ud2, privileged instructions) ends the block at it
//! with the signal's jump kind (`SigIll`, `SigSegv`).
//!
//! Flags are lazy: every flag-setting instruction writes the thunk (see `flags.rs`); a condition
//! whose flags were set by a known operation earlier in the same block is computed by direct IR
//! comparisons instead of the helper call.

mod avx;
mod bmi;
mod int;
mod save;
mod special;
mod sse;
mod sse4;
mod x87;

use crate::flags::*;
use crate::state::*;
use alloc::vec;
use iced_x86::{Decoder, DecoderOptions, Instruction, OpKind, Register};
use vg_core::arch::{CodeSource, LiftLimits};
use vg_ir::*;

/// The flag-setting operation whose thunk is current, when known at lift time.
#[derive(Clone, Copy)]
pub(crate) struct KnownFlags {
    pub op: u64,
    pub ty: Ty,
    pub dep1: Atom,
    pub dep2: Atom,
}

/// What lifting one instruction produced.
pub(crate) enum Outcome {
    /// Fall through to the next instruction.
    Next,
    /// The block ends: continue at `next` for reason `kind`.
    End(Atom, JumpKind),
    /// Not decodable / not lifted.
    Unhandled,
}

pub(crate) struct Lifter {
    pub sb: Superblock,
    pub ins: Instruction,
    pub flags: Option<KnownFlags>,
}

const fn callee(name: &'static str, addr: usize) -> Callee {
    Callee { name, addr }
}

pub(crate) fn rflags_all_callee() -> Callee {
    callee("amd64_calculate_rflags_all", calculate_rflags_all as extern "C" fn(u64, u64, u64, u64) -> u64 as usize)
}
fn rflags_c_callee() -> Callee {
    callee("amd64_calculate_rflags_c", calculate_rflags_c as extern "C" fn(u64, u64, u64, u64) -> u64 as usize)
}
fn condition_callee() -> Callee {
    callee("amd64_calculate_condition", calculate_condition as extern "C" fn(u64, u64, u64, u64, u64) -> u64 as usize)
}

/// Lift the superblock starting at `addr`.
pub fn lift_block(code: &dyn CodeSource, addr: u64, limits: LiftLimits) -> Superblock {
    let mut l = Lifter { sb: Superblock::new(OFF_RIP), ins: Instruction::default(), flags: None };
    let mut pc = addr;
    let max = limits.max_insns.max(1);
    let mut n = 0;
    loop {
        if n == max {
            l.sb.next = Atom::u64(pc);
            l.sb.jump = JumpKind::Boring;
            return l.sb;
        }
        n += 1;
        match special::lift_special(&mut l, code, pc) {
            Some(special::SpecialNext::Continue(next)) => {
                pc = next;
                continue;
            }
            Some(special::SpecialNext::Ended) => return l.sb,
            None => {}
        }
        let bytes = code.code(pc, 15);
        let mut dec = Decoder::with_ip(64, bytes, pc, DecoderOptions::NONE);
        let ins = dec.decode();
        let mark = l.sb.stmts.len();
        let saved_flags = l.flags;
        let outcome = if ins.is_invalid() {
            Outcome::Unhandled
        } else {
            l.ins = ins;
            l.sb.imark(pc, ins.len() as u32);
            // The pc of every instruction; the optimiser keeps it only where something can
            // observe it (a helper, which may take a stack trace). Faults find their pc from
            // the host code instead.
            l.sb.put(OFF_RIP, Atom::u64(pc));
            l.lift_insn()
        };
        match outcome {
            Outcome::Next => pc = ins.next_ip(),
            Outcome::Unhandled => {
                l.sb.stmts.truncate(mark);
                l.flags = saved_flags;
                l.sb.next = Atom::u64(pc);
                l.sb.jump = JumpKind::NoDecode;
                return l.sb;
            }
            Outcome::End(next, kind) => {
                let chase = limits.chase_jumps && matches!(kind, JumpKind::Boring | JumpKind::Call) && n < max;
                match next {
                    Atom::Const(c) if chase && !code.code(c.bits(), 1).is_empty() => pc = c.bits(),
                    _ => {
                        l.sb.next = next;
                        l.sb.jump = kind;
                        return l.sb;
                    }
                }
            }
        }
    }
}

impl Lifter {
    fn lift_insn(&mut self) -> Outcome {
        if let Some(o) = self.lift_int() {
            return o;
        }
        if let Some(o) = self.lift_sse() {
            return o;
        }
        if let Some(o) = self.lift_x87() {
            return o;
        }
        if let Some(o) = self.lift_save() {
            return o;
        }
        if let Some(o) = self.lift_sse4() {
            return o;
        }
        if let Some(o) = self.lift_bmi() {
            return o;
        }
        if let Some(o) = self.lift_avx() {
            return o;
        }
        Outcome::Unhandled
    }

    pub fn addr(&self) -> u64 {
        self.ins.ip()
    }
    pub fn next_ip(&self) -> u64 {
        self.ins.next_ip()
    }

    // ---- general-purpose registers

    /// Read a GPR (any width, including ah/ch/dh/bh) as its own type.
    pub fn get_reg(&mut self, r: Register) -> Atom {
        let (off, ty) = gpr_slot(r);
        self.sb.get(off, ty)
    }

    /// Write a GPR; 32-bit writes zero the upper half, 8/16-bit writes merge.
    pub fn put_reg(&mut self, r: Register, v: Atom) {
        let (off, ty) = gpr_slot(r);
        debug_assert_eq!(self.sb.atom_ty(v), ty);
        if ty == Ty::I32 {
            let w = self.sb.zext(v, Ty::I64);
            self.sb.put(off, w);
        } else {
            self.sb.put(off, v);
        }
    }

    pub fn get_gpr64(&mut self, n: usize) -> Atom {
        self.sb.get(off_gpr(n), Ty::I64)
    }
    pub fn put_gpr64(&mut self, n: usize, v: Atom) {
        self.sb.put(off_gpr(n), v)
    }

    // ---- memory operands

    /// Effective address of the instruction's memory operand (with fs/gs base).
    pub fn ea(&mut self) -> Atom {
        let ins = self.ins;
        let mut a = if ins.is_ip_rel_memory_operand() {
            Atom::u64(ins.ip_rel_memory_address())
        } else {
            let mut acc: Option<Atom> = None;
            let base = ins.memory_base();
            if base != Register::None {
                acc = Some(self.get_addr_reg(base));
            }
            let index = ins.memory_index();
            if index != Register::None {
                let i = self.get_addr_reg(index);
                let sh = ins.memory_index_scale().trailing_zeros() as u8;
                let i = if sh > 0 { self.sb.binop(Binop::Shl(Ty::I64), i, Atom::u8(sh)) } else { i };
                acc = Some(match acc {
                    Some(b) => self.sb.binop(Binop::Add(Ty::I64), b, i),
                    None => i,
                });
            }
            let disp = ins.memory_displacement64();
            match acc {
                Some(b) if disp != 0 => self.sb.binop(Binop::Add(Ty::I64), b, Atom::u64(disp)),
                Some(b) => b,
                None => Atom::u64(disp),
            }
        };
        if ins.memory_base().size() == 4 || ins.memory_index().size() == 4 {
            // Address-size prefix: the address wraps at 32 bits.
            let t = self.sb.zext(a, Ty::I32);
            a = self.sb.zext(t, Ty::I64);
        }
        match ins.segment_prefix() {
            Register::FS => {
                let b = self.sb.get(OFF_FS_BASE, Ty::I64);
                self.sb.binop(Binop::Add(Ty::I64), a, b)
            }
            Register::GS => {
                let b = self.sb.get(OFF_GS_BASE, Ty::I64);
                self.sb.binop(Binop::Add(Ty::I64), a, b)
            }
            _ => a,
        }
    }

    fn get_addr_reg(&mut self, r: Register) -> Atom {
        let v = self.get_reg(r);
        self.sb.zext(v, Ty::I64)
    }

    // ---- generic operands

    /// The type of operand `i` (for immediates: the destination's type).
    pub fn op_ty(&self, i: u32) -> Ty {
        match self.ins.op_kind(i) {
            OpKind::Register => reg_ty(self.ins.op_register(i)),
            OpKind::Memory => Ty::int_of_bytes(self.ins.memory_size().size() as u32),
            _ => self.op_ty(0),
        }
    }

    /// Read integer operand `i` as `ty` (immediates are already sign-extended by the decoder).
    pub fn read_op(&mut self, i: u32, ty: Ty) -> Option<Atom> {
        Some(match self.ins.op_kind(i) {
            OpKind::Register => self.get_reg(self.ins.op_register(i)),
            OpKind::Memory => {
                let a = self.ea();
                self.sb.load(ty, a)
            }
            OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64 => Atom::Const(Const::int(ty, self.ins.immediate(i))),
            _ => return None,
        })
    }

    /// Write integer operand `i` (register or memory).
    pub fn write_op(&mut self, i: u32, v: Atom) -> Option<()> {
        match self.ins.op_kind(i) {
            OpKind::Register => self.put_reg(self.ins.op_register(i), v),
            OpKind::Memory => {
                let a = self.ea();
                self.sb.store(a, v)
            }
            _ => return None,
        }
        Some(())
    }

    // ---- flags

    /// Write the thunk of operation `op` and remember it for condition specialisation.
    pub fn set_flags(&mut self, op: u64, ty: Ty, dep1: Atom, dep2: Atom, ndep: Atom) {
        let d1 = self.sb.zext(dep1, Ty::I64);
        let d2 = self.sb.zext(dep2, Ty::I64);
        let nd = self.sb.zext(ndep, Ty::I64);
        self.sb.put(OFF_CC_OP, Atom::u64(cc_op(op, ty.bytes())));
        self.sb.put(OFF_CC_DEP1, d1);
        self.sb.put(OFF_CC_DEP2, d2);
        self.sb.put(OFF_CC_NDEP, nd);
        self.flags = Some(KnownFlags { op, ty, dep1, dep2 });
    }

    /// Set the flags to the literal rflags bits `f` (I64).
    pub fn set_flags_copy(&mut self, f: Atom) {
        let f = self.sb.binop(Binop::And(Ty::I64), f, Atom::u64(OSZACP));
        self.sb.put(OFF_CC_OP, Atom::u64(CC_COPY));
        self.sb.put(OFF_CC_DEP1, f);
        self.sb.put(OFF_CC_DEP2, Atom::u64(0));
        self.sb.put(OFF_CC_NDEP, Atom::u64(0));
        self.flags = None;
    }

    /// Write the thunk only if `doit` (I1) holds, otherwise keep the old one.
    pub fn set_flags_if(&mut self, doit: Atom, op: u64, ty: Ty, dep1: Atom, dep2: Atom, ndep: Atom) {
        let vals = [
            (OFF_CC_OP, Atom::u64(cc_op(op, ty.bytes()))),
            (OFF_CC_DEP1, self.sb.zext(dep1, Ty::I64)),
            (OFF_CC_DEP2, self.sb.zext(dep2, Ty::I64)),
            (OFF_CC_NDEP, self.sb.zext(ndep, Ty::I64)),
        ];
        for (off, v) in vals {
            let old = self.sb.get(off, Ty::I64);
            let n = self.sb.ite(doit, v, old);
            self.sb.put(off, n);
        }
        self.flags = None;
    }

    fn thunk_args(&mut self) -> [Atom; 4] {
        [
            self.sb.get(OFF_CC_OP, Ty::I64),
            self.sb.get(OFF_CC_DEP1, Ty::I64),
            self.sb.get(OFF_CC_DEP2, Ty::I64),
            self.sb.get(OFF_CC_NDEP, Ty::I64),
        ]
    }

    /// The six arithmetic flags as rflags bits (I64).
    pub fn rflags_all(&mut self) -> Atom {
        let a = self.thunk_args();
        self.sb.ccall(rflags_all_callee(), Ty::I64, vec![a[0], a[1], a[2], a[3]])
    }

    /// The carry flag as I64 0/1.
    pub fn carry64(&mut self) -> Atom {
        if let Some(k) = self.flags {
            if k.op == CC_SUB {
                let c = self.sb.binop(Binop::CmpLTU(k.ty), k.dep1, k.dep2);
                return self.sb.zext(c, Ty::I64);
            }
            if k.op == CC_LOGIC {
                return Atom::u64(0);
            }
        }
        let a = self.thunk_args();
        self.sb.ccall(rflags_c_callee(), Ty::I64, vec![a[0], a[1], a[2], a[3]])
    }

    /// Condition code `cc` (x86 encoding 0..15) as I1.
    pub fn cond(&mut self, cc: u8) -> Atom {
        if let Some(c) = self.cond_known(cc) {
            return c;
        }
        let a = self.thunk_args();
        let r = self.sb.ccall(condition_callee(), Ty::I64, vec![Atom::u64(cc as u64), a[0], a[1], a[2], a[3]]);
        self.sb.binop(Binop::CmpNE(Ty::I64), r, Atom::u64(0))
    }

    /// Direct comparisons for conditions after a known SUB/LOGIC/ADD/INC/DEC thunk.
    fn cond_known(&mut self, cc: u8) -> Option<Atom> {
        let k = self.flags?;
        let ty = k.ty;
        let zero = Atom::Const(Const::int(ty, 0));
        let neg = cc & 1 != 0;
        let base = cc & !1;
        let c = match (k.op, base) {
            (CC_SUB, 2) => self.sb.binop(Binop::CmpLTU(ty), k.dep1, k.dep2),
            (CC_SUB, 4) => self.sb.binop(Binop::CmpEQ(ty), k.dep1, k.dep2),
            (CC_SUB, 6) => self.sb.binop(Binop::CmpLEU(ty), k.dep1, k.dep2),
            (CC_SUB, 8) => {
                let r = self.sb.binop(Binop::Sub(ty), k.dep1, k.dep2);
                self.sb.binop(Binop::CmpLTS(ty), r, zero)
            }
            (CC_SUB, 12) => self.sb.binop(Binop::CmpLTS(ty), k.dep1, k.dep2),
            (CC_SUB, 14) => self.sb.binop(Binop::CmpLES(ty), k.dep1, k.dep2),
            // LOGIC: CF = OF = 0.
            (CC_LOGIC, 0) | (CC_LOGIC, 2) => Atom::bool(false),
            (CC_LOGIC, 4) | (CC_LOGIC, 6) => self.sb.binop(Binop::CmpEQ(ty), k.dep1, zero),
            (CC_LOGIC, 8) | (CC_LOGIC, 12) => self.sb.binop(Binop::CmpLTS(ty), k.dep1, zero),
            (CC_LOGIC, 14) => self.sb.binop(Binop::CmpLES(ty), k.dep1, zero),
            (CC_INC, 4) | (CC_DEC, 4) => self.sb.binop(Binop::CmpEQ(ty), k.dep1, zero),
            (CC_INC, 8) | (CC_DEC, 8) => self.sb.binop(Binop::CmpLTS(ty), k.dep1, zero),
            (CC_ADD, 4) | (CC_ADD, 8) => {
                let r = self.sb.binop(Binop::Add(ty), k.dep1, k.dep2);
                let op = if base == 4 { Binop::CmpEQ(ty) } else { Binop::CmpLTS(ty) };
                self.sb.binop(op, r, zero)
            }
            (CC_ADD, 2) => {
                let r = self.sb.binop(Binop::Add(ty), k.dep1, k.dep2);
                self.sb.binop(Binop::CmpLTU(ty), r, k.dep1)
            }
            _ => return None,
        };
        Some(if neg { self.sb.binop(Binop::Xor(Ty::I1), c, Atom::bool(true)) } else { c })
    }
}

/// Guest-state slot (offset, type) of a GPR of any width.
pub(crate) fn gpr_slot(r: Register) -> (u32, Ty) {
    let ty = reg_ty(r);
    match r {
        Register::AH | Register::CH | Register::DH | Register::BH => {
            let n = r.full_register().number();
            (off_gpr(n) + 1, Ty::I8)
        }
        _ => (off_gpr(r.full_register().number()), ty),
    }
}

pub(crate) fn reg_ty(r: Register) -> Ty {
    if r.is_xmm() {
        Ty::V128
    } else {
        Ty::int_of_bytes(r.size() as u32)
    }
}
