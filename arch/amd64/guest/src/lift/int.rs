//! The integer instruction set: data movement, arithmetic and logic with lazy flags, shifts and
//! rotates, multiply/divide, bit operations, control flow, the stack, string operations with
//! rep prefixes, and the few system instructions user code executes (syscall, cpuid, rdtsc).
//! The lock prefix is honoured by executing the operation plainly (the guest runs one thread at a
//! time under the big lock).

use super::{Lifter, Outcome};
use crate::flags::*;
use crate::helpers;
use crate::state::*;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use iced_x86::{Code, Mnemonic as M, OpKind, Register};
use vg_ir::*;

/// Bytes below the stack pointer the System V amd64 ABI reserves for the current function.
const RED_ZONE: u32 = 128;

impl Lifter {
    /// Lift an integer instruction; `None` if it is not one of this family.
    pub(super) fn lift_int(&mut self) -> Option<Outcome> {
        let m = self.ins.mnemonic();
        // movsd/cmpsd are also SSE mnemonics; those forms belong to sse.rs.
        if matches!(m, M::Movsd | M::Cmpsd)
            && !matches!(self.ins.op_kind(0), OpKind::MemoryESRDI | OpKind::MemorySegRSI | OpKind::MemoryESEDI | OpKind::MemorySegESI)
        {
            return None;
        }
        let r = match m {
            M::Nop | M::Endbr64 | M::Endbr32 | M::Prefetch | M::Prefetchnta | M::Prefetcht0 | M::Prefetcht1
            | M::Prefetcht2 | M::Prefetchw => Some(Outcome::Next),
            M::Mov => self.mov(),
            M::Movzx => self.movx(false),
            M::Movsx | M::Movsxd => self.movx(true),
            M::Movnti => self.mov(),
            M::Lea => self.lea(),
            M::Add | M::Adc | M::Sub | M::Sbb | M::Cmp | M::And | M::Or | M::Xor | M::Test => self.alu(m),
            M::Not => self.not(),
            M::Neg => self.neg(),
            M::Inc | M::Dec => self.incdec(m == M::Inc),
            M::Imul => self.imul(),
            M::Mul => self.mul1(false),
            M::Div | M::Idiv => self.div(m == M::Idiv),
            M::Shl | M::Sal | M::Shr | M::Sar => self.shift(m),
            M::Rol | M::Ror => self.rotate(m == M::Rol),
            M::Rcl | M::Rcr => self.rotate_carry(m == M::Rcl),
            M::Shld | M::Shrd => self.shift_double(m == M::Shld),
            M::Bt | M::Bts | M::Btr | M::Btc => self.bit_test(m),
            M::Bsf | M::Bsr => self.bit_scan(m == M::Bsf),
            M::Tzcnt | M::Lzcnt => self.count_zeros(m == M::Tzcnt),
            M::Popcnt => self.popcnt(),
            M::Cmpxchg8b | M::Cmpxchg16b => self.cmpxchg_wide(m == M::Cmpxchg16b),
            M::Enter => self.enter(),
            M::Loop | M::Loope | M::Loopne => self.loop_insn(m),
            M::Bswap => {
                let ty = self.op_ty(0);
                let v = self.read_op(0, ty)?;
                let r = self.sb.unop(Unop::Bswap(ty), v);
                self.write_op(0, r)?;
                Some(Outcome::Next)
            }
            M::Xchg => self.xchg(),
            M::Xadd => self.xadd(),
            M::Cmpxchg => self.cmpxchg(),
            M::Cmovo | M::Cmovno | M::Cmovb | M::Cmovae | M::Cmove | M::Cmovne | M::Cmovbe | M::Cmova | M::Cmovs
            | M::Cmovns | M::Cmovp | M::Cmovnp | M::Cmovl | M::Cmovge | M::Cmovle | M::Cmovg => self.cmov(),
            M::Seto | M::Setno | M::Setb | M::Setae | M::Sete | M::Setne | M::Setbe | M::Seta | M::Sets | M::Setns
            | M::Setp | M::Setnp | M::Setl | M::Setge | M::Setle | M::Setg => {
                let c = self.cond(self.cc());
                let v = self.sb.zext(c, Ty::I8);
                self.write_op(0, v)?;
                Some(Outcome::Next)
            }
            M::Jo | M::Jno | M::Jb | M::Jae | M::Je | M::Jne | M::Jbe | M::Ja | M::Js | M::Jns | M::Jp | M::Jnp
            | M::Jl | M::Jge | M::Jle | M::Jg => {
                let c = self.cond(self.cc());
                self.sb.exit(c, self.ins.near_branch_target(), JumpKind::Boring);
                Some(Outcome::Next)
            }
            M::Jrcxz | M::Jecxz => {
                let rcx = self.get_gpr64(RCX);
                let rcx = if m == M::Jecxz { self.sb.zext(rcx, Ty::I32) } else { rcx };
                let ty = self.sb.atom_ty(rcx);
                let z = self.sb.binop(Binop::CmpEQ(ty), rcx, Atom::Const(Const::int(ty, 0)));
                self.sb.exit(z, self.ins.near_branch_target(), JumpKind::Boring);
                Some(Outcome::Next)
            }
            M::Jmp => self.jmp(),
            M::Call => self.call(),
            M::Ret => self.ret(),
            M::Push => self.push(),
            M::Pop => self.pop(),
            M::Leave => {
                let rbp = self.get_gpr64(RBP);
                let v = self.sb.load(Ty::I64, rbp);
                let sp = self.sb.binop(Binop::Add(Ty::I64), rbp, Atom::u64(8));
                self.put_gpr64(RSP, sp);
                self.put_gpr64(RBP, v);
                Some(Outcome::Next)
            }
            M::Cbw | M::Cwde | M::Cdqe => {
                let (from, to) = match m {
                    M::Cbw => (Register::AL, Register::AX),
                    M::Cwde => (Register::AX, Register::EAX),
                    _ => (Register::EAX, Register::RAX),
                };
                let v = self.get_reg(from);
                let w = self.sb.sext(v, super::reg_ty(to));
                self.put_reg(to, w);
                Some(Outcome::Next)
            }
            M::Cwd | M::Cdq | M::Cqo => {
                let (a, d) = match m {
                    M::Cwd => (Register::AX, Register::DX),
                    M::Cdq => (Register::EAX, Register::EDX),
                    _ => (Register::RAX, Register::RDX),
                };
                let ty = super::reg_ty(a);
                let v = self.get_reg(a);
                let s = self.sb.binop(Binop::Sar(ty), v, Atom::u8(ty.bits() as u8 - 1));
                self.put_reg(d, s);
                Some(Outcome::Next)
            }
            M::Movsb | M::Movsw | M::Movsd | M::Movsq | M::Stosb | M::Stosw | M::Stosd | M::Stosq | M::Lodsb
            | M::Lodsw | M::Lodsd | M::Lodsq | M::Cmpsb | M::Cmpsw | M::Cmpsd | M::Cmpsq | M::Scasb | M::Scasw
            | M::Scasd | M::Scasq => self.string_op(m),
            M::Cld | M::Std => {
                self.sb.put(OFF_DFLAG, Atom::u64(if m == M::Cld { 1 } else { u64::MAX }));
                Some(Outcome::Next)
            }
            M::Clc | M::Stc | M::Cmc => {
                let f = self.rflags_all();
                let f = match m {
                    M::Clc => self.sb.binop(Binop::And(Ty::I64), f, Atom::u64(!CF)),
                    M::Stc => self.sb.binop(Binop::Or(Ty::I64), f, Atom::u64(CF)),
                    _ => self.sb.binop(Binop::Xor(Ty::I64), f, Atom::u64(CF)),
                };
                self.set_flags_copy(f);
                Some(Outcome::Next)
            }
            M::Lahf => {
                let f = self.rflags_all();
                let f = self.sb.binop(Binop::And(Ty::I64), f, Atom::u64(SF | ZF | AF | PF | CF));
                let f = self.sb.binop(Binop::Or(Ty::I64), f, Atom::u64(2));
                let b = self.sb.zext(f, Ty::I8);
                self.put_reg(Register::AH, b);
                Some(Outcome::Next)
            }
            M::Sahf => {
                let f = self.rflags_all();
                let of = self.sb.binop(Binop::And(Ty::I64), f, Atom::u64(OF));
                let ah = self.get_reg(Register::AH);
                let ah = self.sb.zext(ah, Ty::I64);
                let ah = self.sb.binop(Binop::And(Ty::I64), ah, Atom::u64(SF | ZF | AF | PF | CF));
                let n = self.sb.binop(Binop::Or(Ty::I64), of, ah);
                self.set_flags_copy(n);
                Some(Outcome::Next)
            }
            M::Pushf | M::Pushfq => self.pushf(),
            M::Popf | M::Popfq => self.popf(),
            M::Syscall => {
                // The instruction itself clobbers rcx (return address) and r11 (rflags).
                let f = self.rflags_image();
                self.put_gpr64(11, f);
                self.put_gpr64(RCX, Atom::u64(self.next_ip()));
                self.sb.put(OFF_IP_AT_SYSCALL, Atom::u64(self.addr()));
                Some(Outcome::End(Atom::u64(self.next_ip()), JumpKind::Syscall))
            }
            M::Int3 => Some(Outcome::End(Atom::u64(self.next_ip()), JumpKind::SigTrap)),
            // Defined to raise #UD: SIGILL at the instruction, no "unhandled" report.
            M::Ud0 | M::Ud1 | M::Ud2 => Some(Outcome::End(Atom::u64(self.addr()), JumpKind::SigIll)),
            // Privileged in user mode (#GP): SIGSEGV at the instruction.
            M::Hlt | M::Cli | M::Sti | M::In | M::Out | M::Insb | M::Insw | M::Insd | M::Outsb | M::Outsw | M::Outsd => {
                Some(Outcome::End(Atom::u64(self.addr()), JumpKind::SigSegv))
            }
            M::Pause => Some(Outcome::End(Atom::u64(self.next_ip()), JumpKind::Yield)),
            M::Lfence | M::Sfence | M::Mfence => {
                self.sb.stmts.push(Stmt::Fence(Fence::Full));
                Some(Outcome::Next)
            }
            M::Cpuid => {
                self.dirty(crate::cpuid::cpuid_callee(), vec![], true, &[RAX, RBX, RCX, RDX], &[RAX, RCX]);
                Some(Outcome::Next)
            }
            M::Rdtsc => {
                self.dirty(crate::cpuid::rdtsc_callee(), vec![], true, &[RAX, RDX], &[]);
                Some(Outcome::Next)
            }
            _ => return None,
        };
        // A recognised mnemonic with an operand form not handled here is unliftable.
        Some(r.unwrap_or(Outcome::Unhandled))
    }

    /// A dirty helper that reads/writes whole GPRs through the state pointer.
    fn dirty(&mut self, callee: Callee, args: Vec<Atom>, pass_state: bool, writes: &[usize], reads: &[usize]) {
        self.sb.stmts.push(Stmt::Dirty(Box::new(Dirty {
            callee,
            args,
            pass_state,
            guard: None,
            dst: None,
            reads_state: reads.iter().map(|&r| (off_gpr(r), 8)).collect(),
            writes_state: writes.iter().map(|&r| (off_gpr(r), 8)).collect(),
            reads_mem: None,
            writes_mem: None,
        })));
    }

    fn cc(&self) -> u8 {
        self.ins.condition_code() as u8 - 1
    }

    fn mov(&mut self) -> Option<Outcome> {
        let ty = self.op_ty(0);
        if !ty.is_int() || self.ins.op_register(0).is_segment_register() || self.ins.op_register(1).is_segment_register() {
            return None;
        }
        let v = self.read_op(1, ty)?;
        self.write_op(0, v)?;
        Some(Outcome::Next)
    }

    fn movx(&mut self, signed: bool) -> Option<Outcome> {
        let (dt, st) = (self.op_ty(0), self.op_ty(1));
        let v = self.read_op(1, st)?;
        let w = if signed { self.sb.sext(v, dt) } else { self.sb.zext(v, dt) };
        self.write_op(0, w)?;
        Some(Outcome::Next)
    }

    fn lea(&mut self) -> Option<Outcome> {
        if self.ins.op_kind(1) != OpKind::Memory {
            return None;
        }
        let ty = self.op_ty(0);
        let a = self.ea();
        let v = self.sb.zext(a, ty);
        self.put_reg(self.ins.op_register(0), v);
        Some(Outcome::Next)
    }

    fn alu(&mut self, m: M) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let a = self.read_op(0, ty)?;
        let b = self.read_op(1, ty)?;
        let r = match m {
            M::Add => {
                let r = self.sb.binop(Binop::Add(ty), a, b);
                self.set_flags(CC_ADD, ty, a, b, Atom::u64(0));
                r
            }
            M::Sub | M::Cmp => {
                let r = self.sb.binop(Binop::Sub(ty), a, b);
                self.set_flags(CC_SUB, ty, a, b, Atom::u64(0));
                r
            }
            M::Adc | M::Sbb => {
                let c = self.carry64();
                let ct = self.sb.zext(c, ty);
                let r = if m == M::Adc {
                    let s = self.sb.binop(Binop::Add(ty), a, b);
                    self.sb.binop(Binop::Add(ty), s, ct)
                } else {
                    let s = self.sb.binop(Binop::Sub(ty), a, b);
                    self.sb.binop(Binop::Sub(ty), s, ct)
                };
                self.set_flags(if m == M::Adc { CC_ADC } else { CC_SBB }, ty, a, b, c);
                r
            }
            _ => {
                let op = match m {
                    M::And | M::Test => Binop::And(ty),
                    M::Or => Binop::Or(ty),
                    _ => Binop::Xor(ty),
                };
                let r = self.sb.binop(op, a, b);
                self.set_flags(CC_LOGIC, ty, r, Atom::u64(0), Atom::u64(0));
                r
            }
        };
        if !matches!(m, M::Cmp | M::Test) {
            self.write_op(0, r)?;
        }
        Some(Outcome::Next)
    }

    fn not(&mut self) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let a = self.read_op(0, ty)?;
        let r = self.sb.unop(Unop::Not(ty), a);
        self.write_op(0, r)?;
        Some(Outcome::Next)
    }

    fn neg(&mut self) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let a = self.read_op(0, ty)?;
        let zero = Atom::Const(Const::int(ty, 0));
        let r = self.sb.binop(Binop::Sub(ty), zero, a);
        self.set_flags(CC_SUB, ty, zero, a, Atom::u64(0));
        self.write_op(0, r)?;
        Some(Outcome::Next)
    }

    fn incdec(&mut self, inc: bool) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let a = self.read_op(0, ty)?;
        let one = Atom::Const(Const::int(ty, 1));
        let r = self.sb.binop(if inc { Binop::Add(ty) } else { Binop::Sub(ty) }, a, one);
        let c = self.carry64();
        self.set_flags(if inc { CC_INC } else { CC_DEC }, ty, r, Atom::u64(0), c);
        self.write_op(0, r)?;
        Some(Outcome::Next)
    }

    fn imul(&mut self) -> Option<Outcome> {
        match self.ins.op_count() {
            1 => self.mul1(true),
            n => {
                let ty = self.op_ty(0);
                let (a, b) = if n == 2 {
                    (self.read_op(0, ty)?, self.read_op(1, ty)?)
                } else {
                    (self.read_op(1, ty)?, self.read_op(2, ty)?)
                };
                let r = self.sb.binop(Binop::Mul(ty), a, b);
                self.set_flags(CC_SMUL, ty, a, b, Atom::u64(0));
                self.write_op(0, r)?;
                Some(Outcome::Next)
            }
        }
    }

    /// One-operand mul/imul: rdx:rax (or ax) = rax * src.
    fn mul1(&mut self, signed: bool) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let b = self.read_op(0, ty)?;
        let a = self.get_reg(acc_reg(ty));
        let p = self.sb.binop(if signed { Binop::MullS(ty) } else { Binop::MullU(ty) }, a, b);
        self.set_flags(if signed { CC_SMUL } else { CC_UMUL }, ty, a, b, Atom::u64(0));
        if ty == Ty::I8 {
            self.put_reg(Register::AX, p);
        } else {
            let lo = self.sb.unop(Unop::Trunc(ty.double(), ty), p);
            let hi = self.sb.unop(Unop::Hi(ty.double()), p);
            self.put_reg(acc_reg(ty), lo);
            self.put_reg(dx_reg(ty), hi);
        }
        Some(Outcome::Next)
    }

    fn div(&mut self, signed: bool) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let d = self.read_op(0, ty)?;
        let (hi, lo) = if ty == Ty::I8 {
            let ax = self.get_reg(Register::AX);
            (self.sb.unop(Unop::Hi(Ty::I16), ax), self.sb.unop(Unop::Trunc(Ty::I16, Ty::I8), ax))
        } else {
            (self.get_reg(dx_reg(ty)), self.get_reg(acc_reg(ty)))
        };
        // No check: the host's div/idiv in generated code faults exactly when the guest's would
        // (#DE: zero divisor or a quotient that does not fit), and the core reports it at the pc
        // found in the guest state, so the pc must be exact at the division.
        self.sb.put(OFF_RIP, Atom::u64(self.addr()));
        let n = self.sb.binop(Binop::HiLo(ty), hi, lo);
        let qr = self.sb.binop(if signed { Binop::DivModS(ty) } else { Binop::DivModU(ty) }, n, d);
        let q = self.sb.unop(Unop::Trunc(ty.double(), ty), qr);
        let r = self.sb.unop(Unop::Hi(ty.double()), qr);
        if ty == Ty::I8 {
            self.put_reg(Register::AL, q);
            self.put_reg(Register::AH, r);
        } else {
            self.put_reg(acc_reg(ty), q);
            self.put_reg(dx_reg(ty), r);
        }
        // Flags are undefined after division: the thunk is left as it was.
        Some(Outcome::Next)
    }

    /// The shift/rotate count operand (masked as the CPU does) as I8, and its constant value.
    fn shift_count(&mut self, i: u32, ty: Ty) -> Option<(Atom, Option<u8>)> {
        let mask = if ty == Ty::I64 { 0x3f } else { 0x1f };
        if self.ins.op_count() <= i {
            return Some((Atom::u8(1), Some(1)));
        }
        match self.ins.op_kind(i) {
            OpKind::Register => {
                let c = self.get_reg(self.ins.op_register(i));
                let c = self.sb.zext(c, Ty::I8);
                Some((self.sb.binop(Binop::And(Ty::I8), c, Atom::u8(mask)), None))
            }
            OpKind::Immediate8 => {
                let n = self.ins.immediate(i) as u8 & mask;
                Some((Atom::u8(n), Some(n)))
            }
            _ => None,
        }
    }

    fn shift(&mut self, m: M) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let (n, known) = self.shift_count(1, ty)?;
        if known == Some(0) {
            // A zero count changes nothing, not even flags (but the operand is still accessed).
            self.read_op(0, ty)?;
            return Some(Outcome::Next);
        }
        let a = self.read_op(0, ty)?;
        // Shift in 64 bits so that 8/16-bit counts up to 31 behave as the CPU's do.
        let (wide, op) = match m {
            M::Shl | M::Sal => (self.sb.zext(a, Ty::I64), Binop::Shl(Ty::I64)),
            M::Shr => (self.sb.zext(a, Ty::I64), Binop::Shr(Ty::I64)),
            _ => (self.sb.sext(a, Ty::I64), Binop::Sar(Ty::I64)),
        };
        let r64 = self.sb.binop(op, wide, n);
        let n1 = self.sb.binop(Binop::Sub(Ty::I8), n, Atom::u8(1));
        let n1 = self.sb.binop(Binop::And(Ty::I8), n1, Atom::u8(0x3f));
        let p64 = self.sb.binop(op, wide, n1);
        let r = self.sb.zext(r64, ty);
        let p = self.sb.zext(p64, ty);
        let cc = if matches!(m, M::Shl | M::Sal) { CC_SHL } else { CC_SHR };
        if known.is_some() {
            self.set_flags(cc, ty, r, p, Atom::u64(0));
        } else {
            let nz = self.sb.binop(Binop::CmpNE(Ty::I8), n, Atom::u8(0));
            self.set_flags_if(nz, cc, ty, r, p, Atom::u64(0));
        }
        self.write_op(0, r)?;
        Some(Outcome::Next)
    }

    fn rotate(&mut self, left: bool) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let (n, known) = self.shift_count(1, ty)?;
        let a = self.read_op(0, ty)?;
        if known == Some(0) {
            return Some(Outcome::Next);
        }
        let w = ty.bits() as u8;
        let k = self.sb.binop(Binop::And(Ty::I8), n, Atom::u8(w - 1));
        let wk = self.sb.binop(Binop::Sub(Ty::I8), Atom::u8(w), k);
        let wk = self.sb.binop(Binop::And(Ty::I8), wk, Atom::u8(w - 1));
        let (o1, o2) = if left { (Binop::Shl(ty), Binop::Shr(ty)) } else { (Binop::Shr(ty), Binop::Shl(ty)) };
        let x = self.sb.binop(o1, a, k);
        let y = self.sb.binop(o2, a, wk);
        let r = self.sb.binop(Binop::Or(ty), x, y);
        let old = self.rflags_all();
        let cc = if left { CC_ROL } else { CC_ROR };
        if known.is_some() {
            self.set_flags(cc, ty, r, Atom::u64(0), old);
            self.flags = None;
        } else {
            let nz = self.sb.binop(Binop::CmpNE(Ty::I8), n, Atom::u8(0));
            self.set_flags_if(nz, cc, ty, r, Atom::u64(0), old);
        }
        self.write_op(0, r)?;
        Some(Outcome::Next)
    }

    fn rotate_carry(&mut self, left: bool) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let (n, _) = self.shift_count(1, ty)?;
        let a = self.read_op(0, ty)?;
        let old = self.rflags_all();
        let a64 = self.sb.zext(a, Ty::I64);
        let n64 = self.sb.zext(n, Ty::I64);
        let mode = ty.bytes() as u64 | ((left as u64) << 8);
        let r = self.sb.ccall(helpers::rcl_rcr_callee(), Ty::I64, vec![a64, n64, old, Atom::u64(mode)]);
        let f = self.sb.ccall(helpers::rcl_rcr_callee(), Ty::I64, vec![a64, n64, old, Atom::u64(mode | 1 << 16)]);
        self.set_flags_copy(f);
        let r = self.sb.zext(r, ty);
        self.write_op(0, r)?;
        Some(Outcome::Next)
    }

    fn shift_double(&mut self, left: bool) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let (n, known) = self.shift_count(2, ty)?;
        let a = self.read_op(0, ty)?;
        if known == Some(0) {
            return Some(Outcome::Next);
        }
        let b = self.read_op(1, ty)?;
        let dt = ty.double();
        let n1 = self.sb.binop(Binop::Sub(Ty::I8), n, Atom::u8(1));
        let n1 = self.sb.binop(Binop::And(Ty::I8), n1, Atom::u8(0x3f));
        let (r, p) = if ty == Ty::I64 {
            // No 128-bit shifts: a op n | (b op' 1) op' (63 - n), valid for n in 0..63.
            let (o1, o2) = if left { (Binop::Shl(ty), Binop::Shr(ty)) } else { (Binop::Shr(ty), Binop::Shl(ty)) };
            let b1 = self.sb.binop(o2, b, Atom::u8(1));
            let part = |l: &mut Lifter, k: Atom| {
                let x = l.sb.binop(o1, a, k);
                let c = l.sb.binop(Binop::Sub(Ty::I8), Atom::u8(63), k);
                let y = l.sb.binop(o2, b1, c);
                l.sb.binop(Binop::Or(ty), x, y)
            };
            (part(self, n), part(self, n1))
        } else if left {
            let cat = self.sb.binop(Binop::HiLo(ty), a, b);
            let s = self.sb.binop(Binop::Shl(dt), cat, n);
            let s1 = self.sb.binop(Binop::Shl(dt), cat, n1);
            (self.sb.unop(Unop::Hi(dt), s), self.sb.unop(Unop::Hi(dt), s1))
        } else {
            let cat = self.sb.binop(Binop::HiLo(ty), b, a);
            let s = self.sb.binop(Binop::Shr(dt), cat, n);
            let s1 = self.sb.binop(Binop::Shr(dt), cat, n1);
            (self.sb.unop(Unop::Trunc(dt, ty), s), self.sb.unop(Unop::Trunc(dt, ty), s1))
        };
        let cc = if left { CC_SHL } else { CC_SHR };
        if known.is_some() {
            self.set_flags(cc, ty, r, p, Atom::u64(0));
        } else {
            let nz = self.sb.binop(Binop::CmpNE(Ty::I8), n, Atom::u8(0));
            self.set_flags_if(nz, cc, ty, r, p, Atom::u64(0));
        }
        self.write_op(0, r)?;
        Some(Outcome::Next)
    }

    fn bit_test(&mut self, m: M) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let mem = self.ins.op_kind(0) == OpKind::Memory;
        // Memory with a register offset addresses the bit string byte-wise (the offset is signed
        // and may leave the operand); otherwise the bit is taken modulo the operand width.
        let (vty, addr, bit) = if mem && self.ins.op_kind(1) == OpKind::Register {
            let off = self.get_reg(self.ins.op_register(1));
            let off = self.sb.sext(off, Ty::I64);
            let byte = self.sb.binop(Binop::Sar(Ty::I64), off, Atom::u8(3));
            let base = self.ea();
            let addr = self.sb.binop(Binop::Add(Ty::I64), base, byte);
            let b = self.sb.zext(off, Ty::I8);
            let b = self.sb.binop(Binop::And(Ty::I8), b, Atom::u8(7));
            (Ty::I8, Some(addr), b)
        } else {
            let b = self.read_op(1, ty)?;
            let b = self.sb.zext(b, Ty::I8);
            let b = self.sb.binop(Binop::And(Ty::I8), b, Atom::u8(ty.bits() as u8 - 1));
            (ty, if mem { Some(self.ea()) } else { None }, b)
        };
        let v = match addr {
            Some(a) => self.sb.load(vty, a),
            None => self.read_op(0, ty)?,
        };
        let one = Atom::Const(Const::int(vty, 1));
        let mask = self.sb.binop(Binop::Shl(vty), one, bit);
        let sel = self.sb.binop(Binop::And(vty), v, mask);
        let set = self.sb.binop(Binop::CmpNE(vty), sel, Atom::Const(Const::int(vty, 0)));
        let old = self.rflags_all();
        let old = self.sb.binop(Binop::And(Ty::I64), old, Atom::u64(!CF));
        let c = self.sb.zext(set, Ty::I64);
        let f = self.sb.binop(Binop::Or(Ty::I64), old, c);
        self.set_flags_copy(f);
        let nv = match m {
            M::Bts => self.sb.binop(Binop::Or(vty), v, mask),
            M::Btr => {
                let nm = self.sb.unop(Unop::Not(vty), mask);
                self.sb.binop(Binop::And(vty), v, nm)
            }
            M::Btc => self.sb.binop(Binop::Xor(vty), v, mask),
            _ => return Some(Outcome::Next),
        };
        match addr {
            Some(a) => self.sb.store(a, nv),
            None => self.write_op(0, nv)?,
        }
        Some(Outcome::Next)
    }

    fn bit_scan(&mut self, forward: bool) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let src = self.read_op(1, ty)?;
        let old_dst = self.get_reg(self.ins.op_register(0));
        let wt = if ty == Ty::I64 { Ty::I64 } else { Ty::I32 };
        let s = self.sb.zext(src, wt);
        let zero = self.sb.binop(Binop::CmpEQ(wt), s, Atom::Const(Const::int(wt, 0)));
        let idx = if forward {
            self.sb.unop(Unop::Ctz(wt), s)
        } else {
            let c = self.sb.unop(Unop::Clz(wt), s);
            self.sb.binop(Binop::Sub(wt), Atom::Const(Const::int(wt, wt.bits() as u64 - 1)), c)
        };
        let idx = self.sb.zext(idx, ty);
        // A zero source leaves the destination unchanged, all 64 bits of it (as the CPUs do;
        // the ISA says undefined).
        let dst = self.ins.op_register(0);
        if ty == Ty::I32 {
            let old = self.get_reg(dst.full_register());
            let idx = self.sb.zext(idx, Ty::I64);
            let r = self.sb.ite(zero, old, idx);
            self.put_reg(dst.full_register(), r);
        } else {
            let r = self.sb.ite(zero, old_dst, idx);
            self.put_reg(dst, r);
        }
        let old = self.rflags_all();
        let old = self.sb.binop(Binop::And(Ty::I64), old, Atom::u64(!ZF));
        let z = self.sb.zext(zero, Ty::I64);
        let z = self.sb.binop(Binop::Shl(Ty::I64), z, Atom::u8(6));
        let f = self.sb.binop(Binop::Or(Ty::I64), old, z);
        self.set_flags_copy(f);
        Some(Outcome::Next)
    }

    /// tzcnt/lzcnt: the operand width for a zero source; CF = source zero, ZF = result zero
    /// (the other arithmetic flags are undefined; they are cleared).
    fn count_zeros(&mut self, trailing: bool) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let src = self.read_op(1, ty)?;
        let wt = if ty == Ty::I64 { Ty::I64 } else { Ty::I32 };
        let s = self.sb.zext(src, wt);
        let zero = self.sb.binop(Binop::CmpEQ(wt), s, Atom::Const(Const::int(wt, 0)));
        let n = if trailing {
            self.sb.unop(Unop::Ctz(wt), s)
        } else {
            let c = self.sb.unop(Unop::Clz(wt), s);
            let extra = (wt.bits() - ty.bits()) as u64;
            self.sb.binop(Binop::Sub(wt), c, Atom::Const(Const::int(wt, extra)))
        };
        let r = self.sb.ite(zero, Atom::Const(Const::int(wt, ty.bits() as u64)), n);
        let r = self.sb.zext(r, ty);
        self.put_reg(self.ins.op_register(0), r);
        let rz = self.sb.binop(Binop::CmpEQ(ty), r, Atom::Const(Const::int(ty, 0)));
        let cf = self.sb.zext(zero, Ty::I64);
        let zf = self.sb.zext(rz, Ty::I64);
        let zf = self.sb.binop(Binop::Shl(Ty::I64), zf, Atom::u8(6));
        let f = self.sb.binop(Binop::Or(Ty::I64), cf, zf);
        self.set_flags_copy(f);
        Some(Outcome::Next)
    }

    /// popcnt: ZF = source zero, the other arithmetic flags cleared.
    fn popcnt(&mut self) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let src = self.read_op(1, ty)?;
        let wt = if ty == Ty::I64 { Ty::I64 } else { Ty::I32 };
        let s = self.sb.zext(src, wt);
        let n = self.sb.unop(Unop::Popcnt(wt), s);
        let r = self.sb.zext(n, ty);
        self.put_reg(self.ins.op_register(0), r);
        let zero = self.sb.binop(Binop::CmpEQ(wt), s, Atom::Const(Const::int(wt, 0)));
        let zf = self.sb.zext(zero, Ty::I64);
        let zf = self.sb.binop(Binop::Shl(Ty::I64), zf, Atom::u8(6));
        self.set_flags_copy(zf);
        Some(Outcome::Next)
    }

    /// cmpxchg8b/16b: compare rdx:rax (edx:eax) with the memory operand; equal: store rcx:rbx,
    /// ZF = 1; otherwise load it into rdx:rax, ZF = 0. Memory is written either way (as the
    /// locked cycle does). cmpxchg16b needs a 16-byte aligned operand (#GP otherwise).
    fn cmpxchg_wide(&mut self, wide: bool) -> Option<Outcome> {
        if self.ins.op_kind(0) != OpKind::Memory {
            return None;
        }
        let ty = if wide { Ty::I64 } else { Ty::I32 };
        let n = ty.bytes() as u64;
        let a = self.ea();
        if wide {
            let mis = self.sb.binop(Binop::And(Ty::I64), a, Atom::u64(15));
            let mis = self.sb.binop(Binop::CmpNE(Ty::I64), mis, Atom::u64(0));
            self.sb.exit(mis, self.addr(), JumpKind::SigSegv);
        }
        let a_hi = self.sb.binop(Binop::Add(Ty::I64), a, Atom::u64(n));
        let lo = self.sb.load(ty, a);
        let hi = self.sb.load(ty, a_hi);
        let (rax, rdx) = (self.get_gpr64(RAX), self.get_gpr64(RDX));
        let (rbx, rcx) = (self.get_gpr64(RBX), self.get_gpr64(RCX));
        let [eax, edx, ebx, ecx] = [rax, rdx, rbx, rcx].map(|r| self.sb.zext(r, ty));
        let eq_lo = self.sb.binop(Binop::CmpEQ(ty), lo, eax);
        let eq_hi = self.sb.binop(Binop::CmpEQ(ty), hi, edx);
        let eq = self.sb.binop(Binop::And(Ty::I1), eq_lo, eq_hi);
        let new_lo = self.sb.ite(eq, ebx, lo);
        let new_hi = self.sb.ite(eq, ecx, hi);
        self.sb.store(a, new_lo);
        self.sb.store(a_hi, new_hi);
        // rdx:rax is written only on failure (so 32-bit halves keep their upper bits on success).
        let lo64 = self.sb.zext(lo, Ty::I64);
        let hi64 = self.sb.zext(hi, Ty::I64);
        let nrax = self.sb.ite(eq, rax, lo64);
        let nrdx = self.sb.ite(eq, rdx, hi64);
        self.put_gpr64(RAX, nrax);
        self.put_gpr64(RDX, nrdx);
        let old = self.rflags_all();
        let old = self.sb.binop(Binop::And(Ty::I64), old, Atom::u64(!ZF));
        let z = self.sb.zext(eq, Ty::I64);
        let z = self.sb.binop(Binop::Shl(Ty::I64), z, Atom::u8(6));
        let f = self.sb.binop(Binop::Or(Ty::I64), old, z);
        self.set_flags_copy(f);
        Some(Outcome::Next)
    }

    /// enter size, level (64-bit operand size): push rbp, copy `level - 1` outer frame
    /// pointers, push the new frame pointer if `level > 0`, then reserve `size` bytes.
    fn enter(&mut self) -> Option<Outcome> {
        if self.ins.code() != Code::Enterq_imm16_imm8 {
            return None;
        }
        let size = self.ins.immediate16() as u64;
        let level = self.ins.immediate8_2nd() & 31;
        let rbp = self.get_gpr64(RBP);
        let rsp = self.get_gpr64(RSP);
        let mut sp = self.sb.binop(Binop::Sub(Ty::I64), rsp, Atom::u64(8));
        self.sb.store(sp, rbp);
        let frame = sp;
        let mut bp = rbp;
        for _ in 1..level {
            bp = self.sb.binop(Binop::Sub(Ty::I64), bp, Atom::u64(8));
            let v = self.sb.load(Ty::I64, bp);
            sp = self.sb.binop(Binop::Sub(Ty::I64), sp, Atom::u64(8));
            self.sb.store(sp, v);
        }
        if level > 0 {
            sp = self.sb.binop(Binop::Sub(Ty::I64), sp, Atom::u64(8));
            self.sb.store(sp, frame);
        }
        self.put_gpr64(RBP, frame);
        let sp = self.sb.binop(Binop::Sub(Ty::I64), sp, Atom::u64(size));
        self.put_gpr64(RSP, sp);
        Some(Outcome::Next)
    }

    /// loop/loope/loopne with rcx as the counter (the ecx form, address-size prefixed, is not
    /// lifted). Flags are not changed.
    fn loop_insn(&mut self, m: M) -> Option<Outcome> {
        if !matches!(self.ins.code(), Code::Loop_rel8_64_RCX | Code::Loope_rel8_64_RCX | Code::Loopne_rel8_64_RCX) {
            return None;
        }
        let c = self.get_gpr64(RCX);
        let c = self.sb.binop(Binop::Sub(Ty::I64), c, Atom::u64(1));
        self.put_gpr64(RCX, c);
        let mut take = self.sb.binop(Binop::CmpNE(Ty::I64), c, Atom::u64(0));
        if m != M::Loop {
            // loope continues while ZF = 1, loopne while ZF = 0.
            let z = self.cond(if m == M::Loope { 4 } else { 5 });
            take = self.sb.binop(Binop::And(Ty::I1), take, z);
        }
        self.sb.exit(take, self.ins.near_branch_target(), JumpKind::Boring);
        Some(Outcome::Next)
    }

    fn xchg(&mut self) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let a = self.read_op(0, ty)?;
        let b = self.read_op(1, ty)?;
        self.write_op(0, b)?;
        self.write_op(1, a)?;
        Some(Outcome::Next)
    }

    fn xadd(&mut self) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let a = self.read_op(0, ty)?;
        let b = self.read_op(1, ty)?;
        let r = self.sb.binop(Binop::Add(ty), a, b);
        self.set_flags(CC_ADD, ty, a, b, Atom::u64(0));
        self.write_op(1, a)?;
        self.write_op(0, r)?;
        Some(Outcome::Next)
    }

    fn cmpxchg(&mut self) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let d = self.read_op(0, ty)?;
        let s = self.read_op(1, ty)?;
        let acc = acc_reg(ty);
        let a = self.get_reg(acc);
        self.set_flags(CC_SUB, ty, a, d, Atom::u64(0));
        let eq = self.sb.binop(Binop::CmpEQ(ty), a, d);
        let dreg = self.ins.op_register(0);
        if ty == Ty::I32 && self.ins.op_kind(0) == OpKind::Register {
            // A 32-bit register destination is written (and zero-extended) only on success.
            let old = self.get_reg(dreg.full_register());
            let s64 = self.sb.zext(s, Ty::I64);
            let n = self.sb.ite(eq, s64, old);
            self.put_reg(dreg.full_register(), n);
        } else {
            // Memory is always written (the locked cycle stores the old value back on failure).
            let nd = self.sb.ite(eq, s, d);
            self.write_op(0, nd)?;
        }
        // The accumulator is written only on failure (so a 32-bit one keeps its upper half).
        if ty == Ty::I32 {
            let old = self.get_gpr64(RAX);
            let d64 = self.sb.zext(d, Ty::I64);
            let n = self.sb.ite(eq, old, d64);
            self.put_gpr64(RAX, n);
        } else {
            let n = self.sb.ite(eq, a, d);
            self.put_reg(acc, n);
        }
        Some(Outcome::Next)
    }

    fn cmov(&mut self) -> Option<Outcome> {
        let ty = self.op_ty(0);
        let c = self.cond(self.cc());
        let d = self.read_op(0, ty)?;
        let s = self.read_op(1, ty)?;
        let r = self.sb.ite(c, s, d);
        self.write_op(0, r)?;
        Some(Outcome::Next)
    }

    fn branch_target(&mut self) -> Option<Atom> {
        match self.ins.op_kind(0) {
            OpKind::NearBranch64 => Some(Atom::u64(self.ins.near_branch_target())),
            OpKind::Register | OpKind::Memory => self.read_op(0, Ty::I64),
            _ => None,
        }
    }

    fn jmp(&mut self) -> Option<Outcome> {
        let t = self.branch_target()?;
        Some(Outcome::End(t, JumpKind::Boring))
    }

    fn call(&mut self) -> Option<Outcome> {
        let t = self.branch_target()?;
        let sp = self.push_val(Atom::u64(self.next_ip()));
        self.red_zone_hint(sp, t);
        Some(Outcome::End(t, JumpKind::Call))
    }

    /// `ret` and `ret imm16`.
    fn ret(&mut self) -> Option<Outcome> {
        let sp = self.get_gpr64(RSP);
        let t = self.sb.load(Ty::I64, sp);
        let extra = if self.ins.op_count() == 1 { self.ins.immediate(0) } else { 0 };
        let sp = self.sb.binop(Binop::Add(Ty::I64), sp, Atom::u64(8 + extra));
        self.put_gpr64(RSP, sp);
        self.red_zone_hint(sp, t);
        Some(Outcome::End(t, JumpKind::Ret))
    }

    /// After a call or return has set the stack pointer to `sp`: the red zone below it holds
    /// nothing the code at `nia` may rely on (the callee's, or the returned-from function's,
    /// data there is dead), as VEX's front end says with the same hint.
    fn red_zone_hint(&mut self, sp: Atom, nia: Atom) {
        let base = self.sb.binop(Binop::Sub(Ty::I64), sp, Atom::u64(RED_ZONE as u64));
        self.sb.stmts.push(Stmt::AbiHint { base, len: RED_ZONE, nia });
    }

    /// Push `v`; returns the new stack pointer.
    fn push_val(&mut self, v: Atom) -> Atom {
        let n = self.sb.atom_ty(v).bytes() as u64;
        let sp = self.get_gpr64(RSP);
        let sp = self.sb.binop(Binop::Sub(Ty::I64), sp, Atom::u64(n));
        self.sb.store(sp, v);
        self.put_gpr64(RSP, sp);
        sp
    }

    fn pop_val(&mut self, ty: Ty) -> Atom {
        let sp = self.get_gpr64(RSP);
        let v = self.sb.load(ty, sp);
        let sp = self.sb.binop(Binop::Add(Ty::I64), sp, Atom::u64(ty.bytes() as u64));
        self.put_gpr64(RSP, sp);
        v
    }

    fn push(&mut self) -> Option<Outcome> {
        let k = self.ins.op_kind(0);
        if k == OpKind::Register && self.ins.op_register(0).is_segment_register() {
            return None;
        }
        let ty = if k == OpKind::Register || k == OpKind::Memory {
            self.op_ty(0)
        } else {
            Ty::int_of_bytes((-self.ins.stack_pointer_increment()) as u32)
        };
        let v = self.read_op(0, ty)?;
        self.push_val(v);
        Some(Outcome::Next)
    }

    fn pop(&mut self) -> Option<Outcome> {
        if self.ins.op_kind(0) == OpKind::Register && self.ins.op_register(0).is_segment_register() {
            return None;
        }
        let ty = self.op_ty(0);
        let v = self.pop_val(ty);
        self.write_op(0, v)?;
        Some(Outcome::Next)
    }

    /// The full rflags image as pushf and syscall see it (I64).
    fn rflags_image(&mut self) -> Atom {
        let f = self.rflags_all();
        let d = self.sb.get(OFF_DFLAG, Ty::I64);
        let dn = self.sb.binop(Binop::CmpNE(Ty::I64), d, Atom::u64(1));
        let dbit = self.sb.ite(dn, Atom::u64(1 << 10), Atom::u64(0));
        let id = self.sb.get(OFF_IDFLAG, Ty::I64);
        let id = self.sb.binop(Binop::Shl(Ty::I64), id, Atom::u8(21));
        let ac = self.sb.get(OFF_ACFLAG, Ty::I64);
        let ac = self.sb.binop(Binop::Shl(Ty::I64), ac, Atom::u8(18));
        let mut v = self.sb.binop(Binop::Or(Ty::I64), f, dbit);
        v = self.sb.binop(Binop::Or(Ty::I64), v, id);
        v = self.sb.binop(Binop::Or(Ty::I64), v, ac);
        // Bit 1 is always set and user code always runs with interrupts enabled (IF).
        self.sb.binop(Binop::Or(Ty::I64), v, Atom::u64(0x202))
    }

    fn pushf(&mut self) -> Option<Outcome> {
        let v = self.rflags_image();
        let v = if self.ins.mnemonic() == M::Pushf { self.sb.zext(v, Ty::I16) } else { v };
        self.push_val(v);
        Some(Outcome::Next)
    }

    fn popf(&mut self) -> Option<Outcome> {
        let ty = if self.ins.mnemonic() == M::Popf { Ty::I16 } else { Ty::I64 };
        let v = self.pop_val(ty);
        let v = self.sb.zext(v, Ty::I64);
        self.set_flags_copy(v);
        let d = self.sb.binop(Binop::And(Ty::I64), v, Atom::u64(1 << 10));
        let dn = self.sb.binop(Binop::CmpNE(Ty::I64), d, Atom::u64(0));
        let df = self.sb.ite(dn, Atom::u64(u64::MAX), Atom::u64(1));
        self.sb.put(OFF_DFLAG, df);
        if ty == Ty::I64 {
            let id = self.sb.binop(Binop::Shr(Ty::I64), v, Atom::u8(21));
            let id = self.sb.binop(Binop::And(Ty::I64), id, Atom::u64(1));
            self.sb.put(OFF_IDFLAG, id);
            let ac = self.sb.binop(Binop::Shr(Ty::I64), v, Atom::u8(18));
            let ac = self.sb.binop(Binop::And(Ty::I64), ac, Atom::u64(1));
            self.sb.put(OFF_ACFLAG, ac);
        }
        Some(Outcome::Next)
    }

    /// movs/stos/lods/cmps/scas, one element per execution; with a rep prefix the block loops
    /// back to the instruction itself until the count (or the condition) ends it.
    fn string_op(&mut self, m: M) -> Option<Outcome> {
        let ty = match m {
            M::Movsb | M::Stosb | M::Lodsb | M::Cmpsb | M::Scasb => Ty::I8,
            M::Movsw | M::Stosw | M::Lodsw | M::Cmpsw | M::Scasw => Ty::I16,
            M::Movsd | M::Stosd | M::Lodsd | M::Cmpsd | M::Scasd => Ty::I32,
            _ => Ty::I64,
        };
        // Only the 64-bit-address forms (what compilers emit) are lifted.
        if !matches!(self.ins.op_kind(0), OpKind::MemoryESRDI | OpKind::MemorySegRSI | OpKind::Register)
            || (self.ins.op_count() > 1
                && !matches!(self.ins.op_kind(1), OpKind::MemoryESRDI | OpKind::MemorySegRSI | OpKind::Register))
        {
            return None;
        }
        let rep = self.ins.has_rep_prefix() || self.ins.has_repne_prefix();
        let (next, here) = (self.next_ip(), self.addr());
        if rep {
            let c = self.get_gpr64(RCX);
            let z = self.sb.binop(Binop::CmpEQ(Ty::I64), c, Atom::u64(0));
            self.sb.exit(z, next, JumpKind::Boring);
        }
        let d = self.sb.get(OFF_DFLAG, Ty::I64);
        let step = self.sb.binop(Binop::Mul(Ty::I64), d, Atom::u64(ty.bytes() as u64));
        let acc = acc_reg(ty);
        let advance = |l: &mut Lifter, r: usize| {
            let v = l.get_gpr64(r);
            let n = l.sb.binop(Binop::Add(Ty::I64), v, step);
            l.put_gpr64(r, n);
        };
        let mut cmp = false;
        match m {
            M::Movsb | M::Movsw | M::Movsd | M::Movsq => {
                let s = self.get_gpr64(RSI);
                let v = self.sb.load(ty, s);
                let di = self.get_gpr64(RDI);
                self.sb.store(di, v);
                advance(self, RSI);
                advance(self, RDI);
            }
            M::Stosb | M::Stosw | M::Stosd | M::Stosq => {
                let v = self.get_reg(acc);
                let di = self.get_gpr64(RDI);
                self.sb.store(di, v);
                advance(self, RDI);
            }
            M::Lodsb | M::Lodsw | M::Lodsd | M::Lodsq => {
                let s = self.get_gpr64(RSI);
                let v = self.sb.load(ty, s);
                self.put_reg(acc, v);
                advance(self, RSI);
            }
            M::Cmpsb | M::Cmpsw | M::Cmpsd | M::Cmpsq => {
                let s = self.get_gpr64(RSI);
                let a = self.sb.load(ty, s);
                let di = self.get_gpr64(RDI);
                let b = self.sb.load(ty, di);
                self.set_flags(CC_SUB, ty, a, b, Atom::u64(0));
                advance(self, RSI);
                advance(self, RDI);
                cmp = true;
            }
            _ => {
                let a = self.get_reg(acc);
                let di = self.get_gpr64(RDI);
                let b = self.sb.load(ty, di);
                self.set_flags(CC_SUB, ty, a, b, Atom::u64(0));
                advance(self, RDI);
                cmp = true;
            }
        }
        if !rep {
            return Some(Outcome::Next);
        }
        let c = self.get_gpr64(RCX);
        let c = self.sb.binop(Binop::Sub(Ty::I64), c, Atom::u64(1));
        self.put_gpr64(RCX, c);
        let mut again = self.sb.binop(Binop::CmpNE(Ty::I64), c, Atom::u64(0));
        if cmp {
            // repe continues while equal (ZF = 1), repne while not equal.
            let cc = if self.ins.has_repne_prefix() { 5 } else { 4 };
            let z = self.cond(cc);
            again = self.sb.binop(Binop::And(Ty::I1), again, z);
        }
        self.sb.exit(again, here, JumpKind::Boring);
        Some(Outcome::End(Atom::u64(next), JumpKind::Boring))
    }
}

fn acc_reg(ty: Ty) -> Register {
    match ty {
        Ty::I8 => Register::AL,
        Ty::I16 => Register::AX,
        Ty::I32 => Register::EAX,
        _ => Register::RAX,
    }
}

fn dx_reg(ty: Ty) -> Register {
    match ty {
        Ty::I8 => Register::DL,
        Ty::I16 => Register::DX,
        Ty::I32 => Register::EDX,
        _ => Register::RDX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vg_core::arch::{CodeSource, LiftLimits};

    struct Bytes(alloc::vec::Vec<u8>);
    impl CodeSource for Bytes {
        fn code(&self, addr: u64, max: usize) -> &[u8] {
            let off = ((addr - 0x1000) as usize).min(self.0.len());
            &self.0[off..(off + max).min(self.0.len())]
        }
    }

    /// The one-instruction block at 0x1000: its statements and end.
    fn lift(code: &[u8]) -> Superblock {
        let limits = LiftLimits { max_insns: 1, chase_jumps: false };
        super::super::lift_block(&Bytes(code.to_vec()), 0x1000, limits)
    }

    /// The hint's (base, len, nia), checking that it comes right after the stack pointer's
    /// update and that its base is that new value minus 128.
    fn hint(sb: &Superblock) -> (u32, Atom) {
        let i = sb.stmts.iter().position(|s| matches!(s, Stmt::AbiHint { .. })).expect("a hint");
        let Stmt::AbiHint { base, len, nia } = sb.stmts[i] else { unreachable!() };
        let put = sb.stmts[..i].iter().rposition(|s| matches!(s, Stmt::Put { off, .. } if *off == off_gpr(RSP)));
        let Some(Stmt::Put { val: new_sp, .. }) = put.map(|p| &sb.stmts[p]) else { panic!("no rsp update before the hint:\n{sb}") };
        let def = sb.stmts.iter().find_map(|s| match s {
            Stmt::WrTmp { dst, e } if Atom::Tmp(*dst) == base => Some(e.clone()),
            _ => None,
        });
        assert_eq!(def, Some(Expr::Binop { op: Binop::Sub(Ty::I64), a: *new_sp, b: Atom::u64(128) }), "{sb}");
        (len, nia)
    }

    #[test]
    fn calls_and_returns_hint_the_red_zone_below_the_new_stack_pointer() {
        // call rel32 to 0x2000: the next instruction is the callee.
        let sb = lift(&[0xe8, 0xfb, 0x0f, 0x00, 0x00]);
        assert_eq!(hint(&sb), (128, Atom::u64(0x2000)));
        // call rax: the loaded target.
        let sb = lift(&[0xff, 0xd0]);
        assert_eq!(hint(&sb), (128, sb.next));
        // ret and ret 16: the return address.
        for code in [&[0xc3][..], &[0xc2, 0x10, 0x00]] {
            let sb = lift(code);
            assert!(sb.next.as_temp().is_some());
            assert_eq!(hint(&sb), (128, sb.next), "{sb}");
        }
        // A jump moves no stack pointer and says nothing.
        let sb = lift(&[0xff, 0xe0]);
        assert!(!sb.stmts.iter().any(|s| matches!(s, Stmt::AbiHint { .. })));
    }
}
