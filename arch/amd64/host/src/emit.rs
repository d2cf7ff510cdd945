//! Emission: allocated vcode -> x86-64 machine code with the `dynasm!` macro into a
//! [`CodeBuf`].
//!
//! Spilled values are read through the scratch registers (see [`crate::inst`]) or used as
//! `[rbp + slot]` memory operands. Side exits jump to out-of-line stubs placed after the block
//! so the fall-through path stays straight.
//!
//! Exit sequences (the contract with the dispatcher and [`crate::chain`]):
//! - chainable direct exit: `mov [rbp+pc], dst` then the 13-byte chain site
//!   `mov r11, chain_me; call r11`;
//! - indirect exit: `mov rax, next; mov [rbp+pc], rax; mov r11, xindir; jmp r11`;
//! - assisted exit: `mov [rbp+pc], dst; mov eax, code; mov r11, xassisted; jmp r11`.
//!
//! Every translation starts with `dec dword [rsp+EVC]; js evcheck_stub`. A direct exit back to
//! the block's own entry (a loop that fits one superblock) jumps straight to that start instead:
//! the event check still runs every iteration, and its stub stores the entry address as the pc.

// dynasm! converts dynamic register numbers with `.into()`, which is a no-op for our u8s.
#![allow(clippy::useless_conversion)]

use crate::inst::*;
use crate::{EVC_OFFSET, EVCHECK_CODE, kind_code};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use dynasm::dynasm;
use vg_core::arch::{ChainSite, DispatchAddrs};
use vg_core::codebuf::{CodeBuf, DynLabel};
use vg_core::regalloc::{Allocation, Loc, VReg};
use vg_ir::JumpKind;

/// A resolved memory operand.
#[derive(Copy, Clone)]
struct Mem {
    base: u8,
    index: Option<(u8, u8)>,
    disp: i32,
}

/// A resolved second integer operand.
#[derive(Copy, Clone)]
enum ESrc {
    R(u8),
    M(Mem),
    I(i32),
}

/// Emit `$pre [mem] $post` in the shortest displacement form.
macro_rules! with_mem {
    ($ops:expr, $m:expr, [$($pre:tt)*], [$($post:tt)*]) => {{
        let m: Mem = $m;
        let b = m.base;
        match (m.index, i8::try_from(m.disp)) {
            (None, Ok(d)) => dynasm!($ops ; .arch x64 ; $($pre)* [BYTE Rq(b) + d] $($post)*),
            (None, Err(_)) => { let d = m.disp; dynasm!($ops ; .arch x64 ; $($pre)* [Rq(b) + d] $($post)*) }
            (Some((i, 1)), Ok(d)) => dynasm!($ops ; .arch x64 ; $($pre)* [BYTE Rq(b) + Rq(i) + d] $($post)*),
            (Some((i, 2)), Ok(d)) => dynasm!($ops ; .arch x64 ; $($pre)* [BYTE Rq(b) + Rq(i) * 2 + d] $($post)*),
            (Some((i, 4)), Ok(d)) => dynasm!($ops ; .arch x64 ; $($pre)* [BYTE Rq(b) + Rq(i) * 4 + d] $($post)*),
            (Some((i, _)), Ok(d)) => dynasm!($ops ; .arch x64 ; $($pre)* [BYTE Rq(b) + Rq(i) * 8 + d] $($post)*),
            (Some((i, 1)), Err(_)) => { let d = m.disp; dynasm!($ops ; .arch x64 ; $($pre)* [Rq(b) + Rq(i) + d] $($post)*) }
            (Some((i, 2)), Err(_)) => { let d = m.disp; dynasm!($ops ; .arch x64 ; $($pre)* [Rq(b) + Rq(i) * 2 + d] $($post)*) }
            (Some((i, 4)), Err(_)) => { let d = m.disp; dynasm!($ops ; .arch x64 ; $($pre)* [Rq(b) + Rq(i) * 4 + d] $($post)*) }
            (Some((i, _)), Err(_)) => { let d = m.disp; dynasm!($ops ; .arch x64 ; $($pre)* [Rq(b) + Rq(i) * 8 + d] $($post)*) }
        }
    }};
}

/// `$mn dst, src` for an integer ALU instruction of 32 or 64 bits.
macro_rules! alu {
    ($ops:expr, $mn:ident, $w64:expr, $d:expr, $src:expr) => {{
        let d = $d;
        match ($w64, $src) {
            (true, ESrc::R(r)) => dynasm!($ops ; .arch x64 ; $mn Rq(d), Rq(r)),
            (false, ESrc::R(r)) => dynasm!($ops ; .arch x64 ; $mn Rd(d), Rd(r)),
            (true, ESrc::I(i)) => match i8::try_from(i) {
                Ok(b) => dynasm!($ops ; .arch x64 ; $mn Rq(d), BYTE b as _),
                Err(_) => dynasm!($ops ; .arch x64 ; $mn Rq(d), DWORD i),
            },
            (false, ESrc::I(i)) => match i8::try_from(i) {
                Ok(b) => dynasm!($ops ; .arch x64 ; $mn Rd(d), BYTE b as _),
                Err(_) => dynasm!($ops ; .arch x64 ; $mn Rd(d), DWORD i),
            },
            (true, ESrc::M(m)) => with_mem!($ops, m, [$mn Rq(d), QWORD], []),
            (false, ESrc::M(m)) => with_mem!($ops, m, [$mn Rd(d), DWORD], []),
        }
    }};
}

pub struct Emitter<'a> {
    pub ops: CodeBuf,
    alloc: &'a Allocation,
    spill_offset: i32,
    pc_off: i32,
    disp: &'a DispatchAddrs,
    pub chain_sites: Vec<ChainSite>,
    /// (host offset, guest pc) where each guest instruction's code starts.
    pub pc_map: Vec<(u32, u64)>,
    stubs: Vec<(DynLabel, u64, JumpKind)>,
    /// Out-of-line guarded calls, emitted after the block.
    cold: Vec<ColdCall>,
    /// The host registers (Int, Vec masks) live across each guarded call, by instruction index.
    cold_live: BTreeMap<usize, (u64, u64)>,
    /// Index of the instruction being emitted.
    cur: usize,
    /// The guest address the block starts at, and the label of its first instruction.
    entry: Option<u64>,
    top: DynLabel,
}

/// A guarded helper call's out-of-line part: entered at `label` when the guard holds, returns
/// to `resume`.
struct ColdCall {
    label: DynLabel,
    resume: DynLabel,
    addr: usize,
    args: Vec<(Src, ArgExt)>,
    pass_state: bool,
    dst: Option<VReg>,
    /// Caller-saved registers to preserve: integer ones (live across the call or holding an
    /// argument) and vector ones (live across the call).
    save_int: Vec<u8>,
    save_vec: Vec<u8>,
}

/// The caller-saved integer registers the allocator hands out.
const CALLER_SAVED_INT: [u8; 5] = [RSI, RDI, R8, R9, 10];
/// The vector registers the allocator hands out (all caller-saved).
const ALLOC_VEC: u8 = 14;

fn is_chainable(k: JumpKind) -> bool {
    k.chainable()
}

impl<'a> Emitter<'a> {
    /// `entry`: the block's guest start address, if known (enables direct self-loops).
    pub fn new(
        alloc: &'a Allocation,
        spill_offset: u32,
        pc_off: u32,
        entry: Option<u64>,
        disp: &'a DispatchAddrs,
    ) -> Emitter<'a> {
        let mut ops = CodeBuf::with_capacity(1024);
        let top = ops.new_dynamic_label();
        Emitter {
            ops,
            entry,
            top,
            alloc,
            spill_offset: spill_offset as i32,
            pc_off: pc_off as i32,
            disp,
            chain_sites: Vec::new(),
            pc_map: Vec::new(),
            stubs: Vec::new(),
            cold: Vec::new(),
            cold_live: BTreeMap::new(),
            cur: 0,
        }
    }

    fn loc(&self, v: VReg) -> Loc {
        self.alloc.loc(v)
    }
    fn slot(&self, k: u32) -> Mem {
        Mem { base: RBP, index: None, disp: self.spill_offset + 16 * k as i32 }
    }
    /// The memory a value not in a register lives in: its spill slot or its home.
    fn in_mem(&self, l: Loc) -> Mem {
        match l {
            Loc::Spill(k) => self.slot(k),
            Loc::Home(off) => Mem { base: RBP, index: None, disp: off as i32 },
            _ => unreachable!("{l:?} is not in memory"),
        }
    }
    // ---- integer operand helpers

    /// `v` in a register, reloading it into `scratch` if spilled.
    fn ireg(&mut self, v: VReg, scratch: u8) -> u8 {
        match self.loc(v) {
            Loc::Reg(r) => r,
            l @ (Loc::Spill(_) | Loc::Home(_)) => {
                let m = self.in_mem(l);
                with_mem!(self.ops, m, [mov Rq(scratch), QWORD], []);
                scratch
            }
            Loc::Unused => panic!("use of unallocated {v:?}"),
        }
    }
    /// Copy `v` into the fixed register `r` (64 bits).
    fn load_into(&mut self, r: u8, v: VReg) {
        match self.loc(v) {
            Loc::Reg(s) if s == r => {}
            Loc::Reg(s) => dynasm!(self.ops ; .arch x64 ; mov Rq(r), Rq(s)),
            l @ (Loc::Spill(_) | Loc::Home(_)) => {
                let m = self.in_mem(l);
                with_mem!(self.ops, m, [mov Rq(r), QWORD], [])
            }
            Loc::Unused => panic!("use of unallocated {v:?}"),
        }
    }
    /// Where to compute `v`: its register, or r11 when spilled (see `set_dst`).
    fn dreg(&self, v: VReg) -> u8 {
        match self.loc(v) {
            Loc::Reg(r) => r,
            _ => R11,
        }
    }
    /// Finish computing `v` in register `r`: move it to `v`'s home.
    fn set_dst(&mut self, v: VReg, r: u8) {
        match self.loc(v) {
            Loc::Reg(d) if d == r => {}
            Loc::Reg(d) => dynasm!(self.ops ; .arch x64 ; mov Rq(d), Rq(r)),
            Loc::Spill(k) => {
                let m = self.slot(k);
                with_mem!(self.ops, m, [mov QWORD], [, Rq(r)])
            }
            // Only the load from the home defines a homed value, and it is skipped.
            Loc::Home(_) | Loc::Unused => {}
        }
    }
    fn esrc(&mut self, s: &Src) -> ESrc {
        match *s {
            Src::I(i) => ESrc::I(i),
            Src::R(v) => match self.loc(v) {
                Loc::Reg(r) => ESrc::R(r),
                l @ (Loc::Spill(_) | Loc::Home(_)) => ESrc::M(self.in_mem(l)),
                Loc::Unused => panic!("use of unallocated {v:?}"),
            },
            Src::M(am) => ESrc::M(self.mem(&am)),
        }
    }
    /// Resolve an address; spilled base/index are reloaded into rcx/rdx.
    fn mem(&mut self, am: &Amode) -> Mem {
        let base = match am.base {
            None => RBP,
            Some(v) => self.ireg(v, RCX),
        };
        let index = am.index.map(|(v, s)| (self.ireg(v, RDX), s));
        Mem { base, index, disp: am.disp }
    }

    fn mov_imm(&mut self, r: u8, v: u64) {
        if v == 0 {
            dynasm!(self.ops ; .arch x64 ; xor Rd(r), Rd(r));
        } else if v <= u32::MAX as u64 {
            dynasm!(self.ops ; .arch x64 ; mov Rd(r), DWORD v as u32 as i32);
        } else if let Ok(i) = i32::try_from(v as i64) {
            dynasm!(self.ops ; .arch x64 ; mov Rq(r), DWORD i);
        } else {
            dynasm!(self.ops ; .arch x64 ; mov Rq(r), QWORD v as i64);
        }
    }

    // ---- raw encodings for condition-code instructions

    fn rex(&mut self, w: bool, reg: u8, rm: u8, force: bool) {
        let b = 0x40 | (w as u8) << 3 | ((reg >> 3) & 1) << 2 | ((rm >> 3) & 1);
        if b != 0x40 || force {
            self.ops.push(b);
        }
    }
    fn setcc(&mut self, cc: Cc, r: u8) {
        self.rex(false, 0, r, r >= 4);
        self.ops.extend(&[0x0f, 0x90 | cc.0, 0xc0 | (r & 7)]);
    }
    fn cmov(&mut self, cc: Cc, d: u8, s: u8) {
        self.rex(true, d, s, false);
        self.ops.extend(&[0x0f, 0x40 | cc.0, 0xc0 | (d & 7) << 3 | (s & 7)]);
    }
    fn jcc_label(&mut self, cc: Cc, l: DynLabel) {
        self.ops.extend(&[0x0f, 0x80 | cc.0]);
        self.ops.push_i32(0);
        self.ops.dynamic_reloc(l, 0, 4, 0, 2);
    }
    /// A short forward `jcc`; returns the position to pass to `bind_short`.
    fn jcc_short(&mut self, cc: Cc) -> usize {
        self.ops.extend(&[0x70 | cc.0, 0]);
        self.ops.offset()
    }
    fn jmp_short(&mut self) -> usize {
        self.ops.extend(&[0xeb, 0]);
        self.ops.offset()
    }
    fn bind_short(&mut self, from: usize) {
        let d = self.ops.offset() - from;
        assert!(d < 128, "short jump too long");
        self.ops.patch_u8(from - 1, d as u8);
    }

    // ---- xmm operand helpers

    fn xreg(&mut self, v: VReg, scratch: u8) -> u8 {
        match self.loc(v) {
            Loc::Reg(r) => r,
            l @ (Loc::Spill(_) | Loc::Home(_)) => {
                let m = self.in_mem(l);
                with_mem!(self.ops, m, [movdqu Rx(scratch),], []);
                scratch
            }
            Loc::Unused => panic!("use of unallocated {v:?}"),
        }
    }
    fn xdreg(&self, v: VReg) -> u8 {
        match self.loc(v) {
            Loc::Reg(r) => r,
            _ => XTMP0,
        }
    }
    fn set_xdst(&mut self, v: VReg, r: u8) {
        match self.loc(v) {
            Loc::Reg(d) if d == r => {}
            Loc::Reg(d) => dynasm!(self.ops ; .arch x64 ; movaps Rx(d), Rx(r)),
            Loc::Spill(k) => {
                let m = self.slot(k);
                with_mem!(self.ops, m, [movdqu], [, Rx(r)])
            }
            Loc::Home(_) | Loc::Unused => {}
        }
    }
    /// Copy `v` into xmm register `r`.
    fn xload_into(&mut self, r: u8, v: VReg) {
        match self.loc(v) {
            Loc::Reg(s) if s == r => {}
            Loc::Reg(s) => dynasm!(self.ops ; .arch x64 ; movaps Rx(r), Rx(s)),
            l @ (Loc::Spill(_) | Loc::Home(_)) => {
                let m = self.in_mem(l);
                with_mem!(self.ops, m, [movdqu Rx(r),], [])
            }
            Loc::Unused => panic!("use of unallocated {v:?}"),
        }
    }

    // ---- exits

    fn store_pc_imm(&mut self, dst: u64) {
        let pc = self.pc_off;
        match i32::try_from(dst as i64) {
            Ok(i) => dynasm!(self.ops ; .arch x64 ; mov QWORD [rbp + pc], DWORD i),
            Err(_) => dynasm!(self.ops ; .arch x64 ; mov r11, QWORD dst as i64 ; mov [rbp + pc], r11),
        }
    }
    fn jmp_abs(&mut self, addr: usize) {
        dynasm!(self.ops ; .arch x64 ; mov r11, QWORD addr as i64 ; jmp r11);
    }
    fn assisted(&mut self, code: u32) {
        dynasm!(self.ops ; .arch x64 ; mov eax, code as i32);
        self.jmp_abs(self.disp.xassisted);
    }
    fn exit_seq(&mut self, dst: u64, kind: JumpKind) {
        self.store_pc_imm(dst);
        if is_chainable(kind) {
            let offset = self.ops.offset() as u32;
            // mov r11, imm64 ; call r11 — exactly CHAIN_SITE_LEN bytes, rewritten by chaining.
            self.ops.extend(&[0x49, 0xbb]);
            self.ops.push_u64(self.disp.chain_me as u64);
            self.ops.extend(&[0x41, 0xff, 0xd3]);
            self.chain_sites.push(ChainSite { offset, dst });
        } else {
            self.assisted(kind_code(kind));
        }
    }

    /// Emit a whole translation.
    /// Registers live across each instruction (see `Liveness::live_across`): guarded calls save
    /// only those. Without it, they save every allocatable caller-saved register.
    pub fn set_cold_live(&mut self, live: BTreeMap<usize, (u64, u64)>) {
        self.cold_live = live;
    }

    pub fn emit_block(&mut self, insts: &[Inst]) {
        let evc = self.ops.new_dynamic_label();
        self.ops.dynamic_label(self.top);
        dynasm!(self.ops ; .arch x64 ; dec DWORD [rsp + EVC_OFFSET]);
        self.jcc_label(Cc(0x8), evc); // js
        for (k, i) in insts.iter().enumerate() {
            self.cur = k;
            self.inst(i);
        }
        for c in core::mem::take(&mut self.cold) {
            self.cold_call(&c);
        }
        let stubs = core::mem::take(&mut self.stubs);
        for (l, dst, kind) in stubs {
            self.ops.dynamic_label(l);
            self.exit_seq(dst, kind);
        }
        self.ops.dynamic_label(evc);
        if let Some(pc) = self.entry {
            self.store_pc_imm(pc);
        }
        self.assisted(EVCHECK_CODE);
    }

    /// Zero-extend a helper argument in `r` from its IR width to 64 bits.
    fn extend_arg(&mut self, r: u8, ext: ArgExt) {
        match ext {
            ArgExt::None => {}
            ArgExt::Zx1 => dynasm!(self.ops ; .arch x64 ; and Rd(r), 1),
            ArgExt::Zx8 => dynasm!(self.ops ; .arch x64 ; movzx Rd(r), Rb(r)),
            ArgExt::Zx16 => dynasm!(self.ops ; .arch x64 ; movzx Rd(r), Rw(r)),
            ArgExt::Zx32 => dynasm!(self.ops ; .arch x64 ; mov Rd(r), Rd(r)),
        }
    }

    /// The out-of-line part of a guarded call: save the caller-saved registers that matter,
    /// pass the arguments (from the saved copies where they were in those registers), call,
    /// put the result where `dst` lives (into its saved copy if need be), restore, go back.
    fn cold_call(&mut self, c: &ColdCall) {
        self.ops.dynamic_label(c.label);
        let xmm_at = ((8 * c.save_int.len() + 15) & !15) as i32;
        let frame = xmm_at + 16 * c.save_vec.len() as i32;
        if frame != 0 {
            dynasm!(self.ops ; .arch x64 ; sub rsp, frame);
        }
        for (i, r) in c.save_int.iter().enumerate() {
            dynasm!(self.ops ; .arch x64 ; mov [rsp + 8 * i as i32], Rq(*r));
        }
        for (i, x) in c.save_vec.iter().enumerate() {
            dynasm!(self.ops ; .arch x64 ; movups [rsp + xmm_at + 16 * i as i32], Rx(*x));
        }
        let save_int = c.save_int.clone();
        let saved = |r: u8| save_int.iter().position(|&s| s == r).map(|i| 8 * i as i32);
        let mut n = 0;
        if c.pass_state {
            dynasm!(self.ops ; .arch x64 ; mov rdi, rbp);
            n = 1;
        }
        for (a, ext) in &c.args {
            let r = ARG_REGS[n];
            n += 1;
            match a {
                Src::R(v) => match self.loc(*v) {
                    Loc::Reg(s) => match saved(s) {
                        Some(off) => dynasm!(self.ops ; .arch x64 ; mov Rq(r), [rsp + off]),
                        None => dynasm!(self.ops ; .arch x64 ; mov Rq(r), Rq(s)),
                    },
                    _ => self.load_into(r, *v),
                },
                Src::I(i) => self.mov_imm(r, *i as i64 as u64),
                Src::M(_) => unreachable!("memory call argument"),
            }
            self.extend_arg(r, *ext);
        }
        dynasm!(self.ops ; .arch x64 ; mov rax, QWORD c.addr as i64 ; call rax);
        if let Some(d) = c.dst {
            match self.loc(d) {
                Loc::Reg(s) => match saved(s) {
                    Some(off) => dynasm!(self.ops ; .arch x64 ; mov [rsp + off], rax),
                    None => dynasm!(self.ops ; .arch x64 ; mov Rq(s), rax),
                },
                _ => self.set_dst(d, RAX),
            }
        }
        for (i, r) in c.save_int.iter().enumerate() {
            dynasm!(self.ops ; .arch x64 ; mov Rq(*r), [rsp + 8 * i as i32]);
        }
        for (i, x) in c.save_vec.iter().enumerate() {
            dynasm!(self.ops ; .arch x64 ; movups Rx(*x), [rsp + xmm_at + 16 * i as i32]);
        }
        if frame != 0 {
            dynasm!(self.ops ; .arch x64 ; add rsp, frame);
        }
        self.ops.extend(&[0xe9]);
        self.ops.push_i32(0);
        self.ops.dynamic_reloc(c.resume, 0, 4, 0, 2);
    }

    /// Whether a direct exit to `dst` may jump straight back to the start of this block.
    fn self_loop(&self, dst: u64, kind: JumpKind) -> bool {
        self.entry == Some(dst) && is_chainable(kind)
    }

    fn inst(&mut self, inst: &Inst) {
        match inst {
            Inst::Imm { dst, v } => {
                let d = self.dreg(*dst);
                self.mov_imm(d, *v);
                self.set_dst(*dst, d);
            }
            Inst::Mov { dst, src } => {
                if self.loc(*dst) != self.loc(*src) {
                    let s = self.ireg(*src, R11);
                    self.set_dst(*dst, s);
                }
            }
            Inst::Alu { op, w64, dst, a, b } => self.alu(*op, *w64, *dst, *a, b),
            Inst::Lea { dst, am } => {
                let m = self.mem(am);
                let d = self.dreg(*dst);
                with_mem!(self.ops, m, [lea Rq(d),], []);
                self.set_dst(*dst, d);
            }
            Inst::Shift { op, w, dst, a, amt } => self.shift(*op, *w, *dst, *a, *amt),
            Inst::Un { op, dst, a } => self.unary(*op, *dst, *a),
            Inst::Load { dst, .. } | Inst::VLoad { dst, .. } if matches!(self.loc(*dst), Loc::Home(_)) => {}
            Inst::Load { w, dst, am } => {
                let m = self.mem(am);
                let d = self.dreg(*dst);
                match w {
                    1 => with_mem!(self.ops, m, [movzx Rd(d), BYTE], []),
                    2 => with_mem!(self.ops, m, [movzx Rd(d), WORD], []),
                    4 => with_mem!(self.ops, m, [mov Rd(d), DWORD], []),
                    _ => with_mem!(self.ops, m, [mov Rq(d), QWORD], []),
                }
                self.set_dst(*dst, d);
            }
            Inst::Store { w, am, src } => {
                let s = match src {
                    Src::R(v) => ESrc::R(self.ireg(*v, R11)),
                    s => self.esrc(s),
                };
                let m = self.mem(am);
                match (w, s) {
                    (1, ESrc::R(r)) => with_mem!(self.ops, m, [mov BYTE], [, Rb(r)]),
                    (2, ESrc::R(r)) => with_mem!(self.ops, m, [mov WORD], [, Rw(r)]),
                    (4, ESrc::R(r)) => with_mem!(self.ops, m, [mov DWORD], [, Rd(r)]),
                    (_, ESrc::R(r)) => with_mem!(self.ops, m, [mov QWORD], [, Rq(r)]),
                    (1, ESrc::I(i)) => with_mem!(self.ops, m, [mov BYTE], [, i as i8]),
                    (2, ESrc::I(i)) => with_mem!(self.ops, m, [mov WORD], [, i as i16]),
                    (4, ESrc::I(i)) => with_mem!(self.ops, m, [mov DWORD], [, i]),
                    (_, ESrc::I(i)) => with_mem!(self.ops, m, [mov QWORD], [, i]),
                    (_, ESrc::M(_)) => unreachable!("memory-to-memory store"),
                }
            }
            Inst::Cmp { w, a, b } => {
                let ra = self.ireg(*a, R11);
                let s = self.esrc(b);
                match (w, s) {
                    // `test r, r` sets every flag a compare with zero is read for, in fewer bytes.
                    (8, ESrc::I(0)) => dynasm!(self.ops ; .arch x64 ; test Rq(ra), Rq(ra)),
                    (4, ESrc::I(0)) => dynasm!(self.ops ; .arch x64 ; test Rd(ra), Rd(ra)),
                    (2, ESrc::I(0)) => dynasm!(self.ops ; .arch x64 ; test Rw(ra), Rw(ra)),
                    (1, ESrc::I(0)) => dynasm!(self.ops ; .arch x64 ; test Rb(ra), Rb(ra)),
                    (8, s) => alu!(self.ops, cmp, true, ra, s),
                    (4, s) => alu!(self.ops, cmp, false, ra, s),
                    (2, ESrc::R(r)) => dynasm!(self.ops ; .arch x64 ; cmp Rw(ra), Rw(r)),
                    (2, ESrc::I(i)) => dynasm!(self.ops ; .arch x64 ; cmp Rw(ra), WORD i as i16),
                    (2, ESrc::M(m)) => with_mem!(self.ops, m, [cmp Rw(ra), WORD], []),
                    (_, ESrc::R(r)) => dynasm!(self.ops ; .arch x64 ; cmp Rb(ra), Rb(r)),
                    (_, ESrc::I(i)) => dynasm!(self.ops ; .arch x64 ; cmp Rb(ra), BYTE i as i8),
                    (_, ESrc::M(m)) => with_mem!(self.ops, m, [cmp Rb(ra), BYTE], []),
                }
            }
            Inst::Test { a, imm } => {
                let ra = self.ireg(*a, R11);
                match i8::try_from(*imm) {
                    Ok(b) if *imm >= 0 => dynasm!(self.ops ; .arch x64 ; test Rb(ra), BYTE b),
                    _ => dynasm!(self.ops ; .arch x64 ; test Rd(ra), DWORD *imm),
                }
            }
            Inst::Setcc { cc, dst } => {
                let d = self.dreg(*dst);
                self.setcc(*cc, d);
                self.set_dst(*dst, d);
            }
            Inst::Cmov { cc, dst, t, f } => {
                let rt = self.ireg(*t, RAX);
                let rf = self.ireg(*f, RDX);
                let d = self.dreg(*dst);
                if d == rt {
                    self.cmov(cc.invert(), d, rf);
                } else if d == rf {
                    self.cmov(*cc, d, rt);
                } else {
                    dynasm!(self.ops ; .arch x64 ; mov Rq(d), Rq(rf));
                    self.cmov(*cc, d, rt);
                }
                self.set_dst(*dst, d);
            }
            Inst::VSel { cc, dst, t, f } => {
                let xt = self.xreg(*t, XTMP0);
                let xf = self.xreg(*f, XTMP1);
                let d = match self.loc(*dst) {
                    Loc::Reg(r) => r,
                    _ => XTMP0,
                };
                if d == xt {
                    let j = self.jcc_short(*cc);
                    dynasm!(self.ops ; .arch x64 ; movaps Rx(d), Rx(xf));
                    self.bind_short(j);
                } else if d == xf {
                    let j = self.jcc_short(cc.invert());
                    dynasm!(self.ops ; .arch x64 ; movaps Rx(d), Rx(xt));
                    self.bind_short(j);
                } else {
                    // d is a fresh register here (or xmm14 holding nothing needed).
                    let j = self.jcc_short(*cc);
                    dynasm!(self.ops ; .arch x64 ; movaps Rx(d), Rx(xf));
                    let e = self.jmp_short();
                    self.bind_short(j);
                    dynasm!(self.ops ; .arch x64 ; movaps Rx(d), Rx(xt));
                    self.bind_short(e);
                }
                self.set_xdst(*dst, d);
            }
            Inst::MulW { signed, w, dst, dst_hi, a, b } => self.mulw(*signed, *w, *dst, *dst_hi, *a, *b),
            Inst::Div { signed, w, dst, dst_hi, lo, hi, d } => self.div(*signed, *w, *dst, *dst_hi, *lo, *hi, *d),
            Inst::Call { addr, args, pass_state, dst, guard: Some(cc) } => {
                let label = self.ops.new_dynamic_label();
                let resume = self.ops.new_dynamic_label();
                self.jcc_label(*cc, label);
                if let Some(d) = dst {
                    let r = self.dreg(*d);
                    self.mov_imm(r, 0);
                    self.set_dst(*d, r);
                }
                self.ops.dynamic_label(resume);
                let (mut int_live, vec_live) = self.cold_live.get(&self.cur).copied().unwrap_or((u64::MAX, u64::MAX));
                for (a, _) in args.iter() {
                    if let Src::R(v) = a
                        && let Loc::Reg(r) = self.loc(*v)
                    {
                        int_live |= 1 << r;
                    }
                }
                let save_int = CALLER_SAVED_INT.iter().copied().filter(|r| int_live & (1 << r) != 0).collect();
                let save_vec = (0..ALLOC_VEC).filter(|x| vec_live & (1 << x) != 0).collect();
                let (args, pass_state, dst) = (args.clone(), *pass_state, *dst);
                self.cold.push(ColdCall { label, resume, addr: *addr, args, pass_state, dst, save_int, save_vec });
            }
            Inst::Call { addr, args, pass_state, dst, guard } => {
                let skip = guard.map(|cc| {
                    if dst.is_some() {
                        dynasm!(self.ops ; .arch x64 ; mov eax, 0);
                    }
                    let l = self.ops.new_dynamic_label();
                    self.jcc_label(cc.invert(), l);
                    l
                });
                let mut n = 0;
                if *pass_state {
                    dynasm!(self.ops ; .arch x64 ; mov rdi, rbp);
                    n = 1;
                }
                for (a, ext) in args {
                    let r = ARG_REGS[n];
                    n += 1;
                    match a {
                        Src::R(v) => self.load_into(r, *v),
                        Src::I(i) => self.mov_imm(r, *i as i64 as u64),
                        Src::M(_) => unreachable!("memory call argument"),
                    }
                    self.extend_arg(r, *ext);
                }
                dynasm!(self.ops ; .arch x64 ; mov rax, QWORD *addr as i64 ; call rax);
                if let Some(l) = skip {
                    self.ops.dynamic_label(l);
                }
                if let Some(d) = dst {
                    self.set_dst(*d, RAX);
                }
            }
            Inst::Exit { cc: None, dst, kind } if self.self_loop(*dst, *kind) => {
                let l = self.top;
                self.ops.extend(&[0xe9]);
                self.ops.push_i32(0);
                self.ops.dynamic_reloc(l, 0, 4, 0, 2);
            }
            Inst::Exit { cc: Some(cc), dst, kind } if self.self_loop(*dst, *kind) => self.jcc_label(*cc, self.top),
            Inst::Exit { cc: None, dst, kind } => self.exit_seq(*dst, *kind),
            Inst::Exit { cc: Some(cc), dst, kind } => {
                let l = self.ops.new_dynamic_label();
                self.jcc_label(*cc, l);
                self.stubs.push((l, *dst, *kind));
            }
            Inst::ExitInd { next, kind } => {
                self.load_into(RAX, *next);
                let pc = self.pc_off;
                dynasm!(self.ops ; .arch x64 ; mov [rbp + pc], rax);
                if is_chainable(*kind) {
                    self.jmp_abs(self.disp.xindir);
                } else {
                    self.assisted(kind_code(*kind));
                }
            }
            Inst::Cas { w, am, expected, new, old } => {
                let rn = self.ireg(*new, R11);
                let m = self.mem(am);
                self.load_into(RAX, *expected);
                match w {
                    1 => with_mem!(self.ops, m, [lock cmpxchg BYTE], [, Rb(rn)]),
                    2 => with_mem!(self.ops, m, [lock cmpxchg WORD], [, Rw(rn)]),
                    4 => with_mem!(self.ops, m, [lock cmpxchg DWORD], [, Rd(rn)]),
                    _ => with_mem!(self.ops, m, [lock cmpxchg QWORD], [, Rq(rn)]),
                }
                self.set_dst(*old, RAX);
            }
            Inst::Fence => dynasm!(self.ops ; .arch x64 ; mfence),
            Inst::Mark(pc) => self.pc_map.push((self.ops.offset() as u32, *pc)),
            Inst::VImm { dst, v } => {
                let d = self.xdreg(*dst);
                if *v == 0 {
                    dynasm!(self.ops ; .arch x64 ; pxor Rx(d), Rx(d));
                } else if *v == u128::MAX {
                    dynasm!(self.ops ; .arch x64 ; pcmpeqd Rx(d), Rx(d));
                } else {
                    self.mov_imm(R11, *v as u64);
                    dynasm!(self.ops ; .arch x64 ; movq Rx(d), r11);
                    let hi = (*v >> 64) as u64;
                    if hi != 0 {
                        self.mov_imm(R11, hi);
                        dynasm!(self.ops ; .arch x64 ; movq xmm15, r11 ; punpcklqdq Rx(d), xmm15);
                    }
                }
                self.set_xdst(*dst, d);
            }
            Inst::VMov { dst, src } => {
                if self.loc(*dst) != self.loc(*src) {
                    let s = self.xreg(*src, XTMP0);
                    self.set_xdst(*dst, s);
                }
            }
            Inst::VLoad { sz, dst, am } => {
                let m = self.mem(am);
                let d = self.xdreg(*dst);
                match sz {
                    4 => with_mem!(self.ops, m, [movss Rx(d),], []),
                    8 => with_mem!(self.ops, m, [movsd Rx(d),], []),
                    _ => with_mem!(self.ops, m, [movdqu Rx(d),], []),
                }
                self.set_xdst(*dst, d);
            }
            Inst::VStore { sz, am, src } => {
                let s = self.xreg(*src, XTMP1);
                let m = self.mem(am);
                match sz {
                    4 => with_mem!(self.ops, m, [movss], [, Rx(s)]),
                    8 => with_mem!(self.ops, m, [movsd], [, Rx(s)]),
                    _ => with_mem!(self.ops, m, [movdqu], [, Rx(s)]),
                }
            }
            Inst::VBin { op, dst, a, b } => {
                let xb = self.xreg(*b, XTMP1);
                let mut d = self.xdreg(*dst);
                let a_loc = self.loc(*a);
                let spare = d == xb && a_loc != Loc::Reg(xb);
                if spare && op.commutative() {
                    // d already holds b: d = d op a.
                    let xa = self.xreg(*a, XTMP0);
                    self.sse(*op, d, xa);
                } else {
                    if spare {
                        d = XTMP0;
                    }
                    self.xload_into(d, *a);
                    self.sse(*op, d, xb);
                }
                self.set_xdst(*dst, d);
            }
            Inst::VUn { op, dst, src } => self.vun(*op, *dst, *src),
            Inst::VShImm { op, dst, a, imm } => {
                let d = self.xdreg(*dst);
                self.xload_into(d, *a);
                let i = *imm as i8;
                match op {
                    SseShift::Psllw => dynasm!(self.ops ; .arch x64 ; psllw Rx(d), BYTE i),
                    SseShift::Pslld => dynasm!(self.ops ; .arch x64 ; pslld Rx(d), BYTE i),
                    SseShift::Psllq => dynasm!(self.ops ; .arch x64 ; psllq Rx(d), BYTE i),
                    SseShift::Psrlw => dynasm!(self.ops ; .arch x64 ; psrlw Rx(d), BYTE i),
                    SseShift::Psrld => dynasm!(self.ops ; .arch x64 ; psrld Rx(d), BYTE i),
                    SseShift::Psrlq => dynasm!(self.ops ; .arch x64 ; psrlq Rx(d), BYTE i),
                    SseShift::Psraw => dynasm!(self.ops ; .arch x64 ; psraw Rx(d), BYTE i),
                    SseShift::Psrad => dynasm!(self.ops ; .arch x64 ; psrad Rx(d), BYTE i),
                    SseShift::Pslldq => dynasm!(self.ops ; .arch x64 ; pslldq Rx(d), BYTE i),
                    SseShift::Psrldq => dynasm!(self.ops ; .arch x64 ; psrldq Rx(d), BYTE i),
                }
                self.set_xdst(*dst, d);
            }
            Inst::VShReg { op, dst, a, amt } => {
                let r = self.ireg(*amt, R11);
                dynasm!(self.ops ; .arch x64 ; movzx r11d, Rb(r) ; movq xmm15, r11);
                let d = self.xdreg(*dst);
                self.xload_into(d, *a);
                match op {
                    SseShift::Psllw => dynasm!(self.ops ; .arch x64 ; psllw Rx(d), xmm15),
                    SseShift::Pslld => dynasm!(self.ops ; .arch x64 ; pslld Rx(d), xmm15),
                    SseShift::Psllq => dynasm!(self.ops ; .arch x64 ; psllq Rx(d), xmm15),
                    SseShift::Psrlw => dynasm!(self.ops ; .arch x64 ; psrlw Rx(d), xmm15),
                    SseShift::Psrld => dynasm!(self.ops ; .arch x64 ; psrld Rx(d), xmm15),
                    SseShift::Psrlq => dynasm!(self.ops ; .arch x64 ; psrlq Rx(d), xmm15),
                    SseShift::Psraw => dynasm!(self.ops ; .arch x64 ; psraw Rx(d), xmm15),
                    SseShift::Psrad => dynasm!(self.ops ; .arch x64 ; psrad Rx(d), xmm15),
                    SseShift::Pslldq | SseShift::Psrldq => unreachable!("byte shifts take immediates"),
                }
                self.set_xdst(*dst, d);
            }
            Inst::VShuf { op, dst, src, imm } => {
                let s = self.xreg(*src, XTMP1);
                let d = self.xdreg(*dst);
                let i = *imm as i8;
                match op {
                    Shuf::Pshufd => dynasm!(self.ops ; .arch x64 ; pshufd Rx(d), Rx(s), BYTE i),
                    Shuf::Pshuflw => dynasm!(self.ops ; .arch x64 ; pshuflw Rx(d), Rx(s), BYTE i),
                    Shuf::Pshufhw => dynasm!(self.ops ; .arch x64 ; pshufhw Rx(d), Rx(s), BYTE i),
                }
                self.set_xdst(*dst, d);
            }
            Inst::ToVec { op, dst, src } => {
                let r = self.ireg(*src, R11);
                let d = self.xdreg(*dst);
                match op {
                    ToVec::Movq => dynasm!(self.ops ; .arch x64 ; movq Rx(d), Rq(r)),
                    ToVec::Movd => dynasm!(self.ops ; .arch x64 ; movd Rx(d), Rd(r)),
                    ToVec::Cvtsi2sd64 => dynasm!(self.ops ; .arch x64 ; cvtsi2sd Rx(d), Rq(r)),
                    ToVec::Cvtsi2sd32 => dynasm!(self.ops ; .arch x64 ; cvtsi2sd Rx(d), Rd(r)),
                    ToVec::Cvtsi2ss64 => dynasm!(self.ops ; .arch x64 ; cvtsi2ss Rx(d), Rq(r)),
                    ToVec::Cvtsi2ss32 => dynasm!(self.ops ; .arch x64 ; cvtsi2ss Rx(d), Rd(r)),
                }
                self.set_xdst(*dst, d);
            }
            Inst::FromVec { op, dst, src } => {
                let s = self.xreg(*src, XTMP1);
                let d = self.dreg(*dst);
                match op {
                    FromVec::Movq => dynasm!(self.ops ; .arch x64 ; movq Rq(d), Rx(s)),
                    FromVec::Movd => dynasm!(self.ops ; .arch x64 ; movd Rd(d), Rx(s)),
                    FromVec::Pmovmskb => dynasm!(self.ops ; .arch x64 ; pmovmskb Rd(d), Rx(s)),
                    FromVec::Cvttsd2si64 => dynasm!(self.ops ; .arch x64 ; cvttsd2si Rq(d), Rx(s)),
                    FromVec::Cvttsd2si32 => dynasm!(self.ops ; .arch x64 ; cvttsd2si Rd(d), Rx(s)),
                    FromVec::Cvttss2si64 => dynasm!(self.ops ; .arch x64 ; cvttss2si Rq(d), Rx(s)),
                    FromVec::Cvttss2si32 => dynasm!(self.ops ; .arch x64 ; cvttss2si Rd(d), Rx(s)),
                    FromVec::Cvtsd2si64 => dynasm!(self.ops ; .arch x64 ; cvtsd2si Rq(d), Rx(s)),
                    FromVec::Cvtsd2si32 => dynasm!(self.ops ; .arch x64 ; cvtsd2si Rd(d), Rx(s)),
                    FromVec::Cvtss2si64 => dynasm!(self.ops ; .arch x64 ; cvtss2si Rq(d), Rx(s)),
                    FromVec::Cvtss2si32 => dynasm!(self.ops ; .arch x64 ; cvtss2si Rd(d), Rx(s)),
                }
                self.set_dst(*dst, d);
            }
            Inst::VPair { dst, hi, lo } => {
                let d = self.xdreg(*dst);
                let rl = self.ireg(*lo, R11);
                dynasm!(self.ops ; .arch x64 ; movq Rx(d), Rq(rl));
                let rh = self.ireg(*hi, R11);
                dynasm!(self.ops ; .arch x64 ; movq xmm15, Rq(rh) ; punpcklqdq Rx(d), xmm15);
                self.set_xdst(*dst, d);
            }
            Inst::CmpF { f64, dst, a, b } => {
                let xa = self.xreg(*a, XTMP0);
                let xb = self.xreg(*b, XTMP1);
                if *f64 {
                    dynasm!(self.ops ; .arch x64 ; ucomisd Rx(xa), Rx(xb));
                } else {
                    dynasm!(self.ops ; .arch x64 ; ucomiss Rx(xa), Rx(xb));
                }
                // lahf puts ZF, PF and CF at bits 6, 2 and 0 of ah: exactly the 0x45 pattern.
                dynasm!(self.ops ; .arch x64 ; lahf ; movzx eax, ah ; and eax, 0x45);
                self.set_dst(*dst, RAX);
            }
            Inst::VFma { op, dst, x, y, z } => self.fma(*op, *dst, *x, *y, *z),
        }
    }

    /// `d = z; d = (±x * y) ± d` with the 231 form (VEX.128, which also clears the host
    /// register's upper half). `y` may stay in memory; `d` must not be `x`'s or `y`'s register
    /// unless it is `z`'s too.
    fn fma(&mut self, op: FmaOp, dst: VReg, x: VReg, y: VReg, z: VReg) {
        let mut d = self.xdreg(dst);
        let (lz, lx, ly) = (self.loc(z), self.loc(x), self.loc(y));
        if Loc::Reg(d) != lz && (Loc::Reg(d) == lx || Loc::Reg(d) == ly) {
            d = XTMP0;
        }
        self.xload_into(d, z);
        let a = self.xreg(x, XTMP1);
        macro_rules! f {
            ($mn:ident) => {
                match ly {
                    Loc::Reg(b) => dynasm!(self.ops ; .arch x64 ; $mn Rx(d), Rx(a), Rx(b)),
                    l => {
                        let m = self.in_mem(l);
                        with_mem!(self.ops, m, [$mn Rx(d), Rx(a),], [])
                    }
                }
            };
        }
        // dynasm encodes the pd forms without VEX.W (as the ps ones): emit the ps form and set
        // W, bit 7 of the three-byte VEX prefix's last byte.
        let at = self.ops.offset();
        match op.neg & 3 {
            0 => f!(vfmadd231ps),
            1 => f!(vfmsub231ps),
            2 => f!(vfnmadd231ps),
            _ => f!(vfnmsub231ps),
        }
        if op.f64 {
            let b = self.ops.bytes();
            assert!(b[at] == 0xc4, "FMA without a three-byte VEX prefix");
            let w = b[at + 2] | 0x80;
            self.ops.patch_u8(at + 2, w);
        }
        self.set_xdst(dst, d);
    }

    fn alu(&mut self, op: AluOp, w64: bool, dst: VReg, a: VReg, b: &Src) {
        let s = self.esrc(b);
        let mut d = self.dreg(dst);
        let a_loc = self.loc(a);
        if let (AluOp::Add | AluOp::Sub | AluOp::Or | AluOp::Xor, ESrc::I(0)) = (op, s) {
            let ra = self.ireg(a, R11);
            return self.set_dst(dst, ra);
        }
        if let (AluOp::Mul, ESrc::I(i), Loc::Reg(ra)) = (op, s, a_loc) {
            if w64 {
                dynasm!(self.ops ; .arch x64 ; imul Rq(d), Rq(ra), DWORD i);
            } else {
                dynasm!(self.ops ; .arch x64 ; imul Rd(d), Rd(ra), DWORD i);
            }
            return self.set_dst(dst, d);
        }
        // Three-address forms when `a` must survive in another register.
        if let (Loc::Reg(ra), Loc::Reg(_)) = (a_loc, self.loc(dst))
            && ra != d {
                match (op, s) {
                    (AluOp::Add, ESrc::I(i)) => {
                        return self.lea(w64, d, Mem { base: ra, index: None, disp: i });
                    }
                    (AluOp::Sub, ESrc::I(i)) if i != i32::MIN => {
                        return self.lea(w64, d, Mem { base: ra, index: None, disp: -i });
                    }
                    (AluOp::Add, ESrc::R(rb)) => {
                        return self.lea(w64, d, Mem { base: ra, index: Some((rb, 1)), disp: 0 });
                    }
                    _ => {}
                }
            }
        if let ESrc::R(rb) = s
            && rb == d && a_loc != Loc::Reg(rb) {
                if op.commutative() {
                    // d already holds b: d = d op a.
                    let ra = match a_loc {
                        Loc::Reg(r) => ESrc::R(r),
                        l @ (Loc::Spill(_) | Loc::Home(_)) => ESrc::M(self.in_mem(l)),
                        Loc::Unused => panic!("use of unallocated {a:?}"),
                    };
                    self.alu_op(op, w64, d, ra);
                    return self.set_dst(dst, d);
                }
                d = R11;
            }
        self.load_into(d, a);
        self.alu_op(op, w64, d, s);
        self.set_dst(dst, d);
    }

    fn lea(&mut self, w64: bool, d: u8, m: Mem) {
        if w64 {
            with_mem!(self.ops, m, [lea Rq(d),], []);
        } else {
            with_mem!(self.ops, m, [lea Rd(d),], []);
        }
    }

    fn alu_op(&mut self, op: AluOp, w64: bool, d: u8, s: ESrc) {
        match op {
            AluOp::Add => alu!(self.ops, add, w64, d, s),
            AluOp::Sub => alu!(self.ops, sub, w64, d, s),
            AluOp::And => alu!(self.ops, and, w64, d, s),
            AluOp::Or => alu!(self.ops, or, w64, d, s),
            AluOp::Xor => alu!(self.ops, xor, w64, d, s),
            AluOp::Mul => match (w64, s) {
                (true, ESrc::R(r)) => dynasm!(self.ops ; .arch x64 ; imul Rq(d), Rq(r)),
                (false, ESrc::R(r)) => dynasm!(self.ops ; .arch x64 ; imul Rd(d), Rd(r)),
                (true, ESrc::I(i)) => dynasm!(self.ops ; .arch x64 ; imul Rq(d), Rq(d), DWORD i),
                (false, ESrc::I(i)) => dynasm!(self.ops ; .arch x64 ; imul Rd(d), Rd(d), DWORD i),
                (true, ESrc::M(m)) => with_mem!(self.ops, m, [imul Rq(d), QWORD], []),
                (false, ESrc::M(m)) => with_mem!(self.ops, m, [imul Rd(d), DWORD], []),
            },
        }
    }

    fn shift(&mut self, op: ShiftOp, w: u8, dst: VReg, a: VReg, amt: Amt) {
        if let Amt::Reg(r) = amt {
            self.load_into(RCX, r);
        }
        let d = self.dreg(dst);
        // Right shifts of narrow values need their upper bits cleared/sign-filled first.
        match (op, w) {
            (ShiftOp::Shr, 1) | (ShiftOp::Sar, 1) | (ShiftOp::Shr, 2) | (ShiftOp::Sar, 2) => {
                let ra = self.ireg(a, R11);
                match (op, w) {
                    (ShiftOp::Shr, 1) => dynasm!(self.ops ; .arch x64 ; movzx Rd(d), Rb(ra)),
                    (ShiftOp::Sar, 1) => dynasm!(self.ops ; .arch x64 ; movsx Rd(d), Rb(ra)),
                    (ShiftOp::Shr, _) => dynasm!(self.ops ; .arch x64 ; movzx Rd(d), Rw(ra)),
                    _ => dynasm!(self.ops ; .arch x64 ; movsx Rd(d), Rw(ra)),
                }
            }
            _ => self.load_into(d, a),
        }
        let w64 = w == 8;
        match (op, w64, amt) {
            (ShiftOp::Shl, true, Amt::Imm(n)) => dynasm!(self.ops ; .arch x64 ; shl Rq(d), BYTE n as i8),
            (ShiftOp::Shl, false, Amt::Imm(n)) => dynasm!(self.ops ; .arch x64 ; shl Rd(d), BYTE n as i8),
            (ShiftOp::Shr, true, Amt::Imm(n)) => dynasm!(self.ops ; .arch x64 ; shr Rq(d), BYTE n as i8),
            (ShiftOp::Shr, false, Amt::Imm(n)) => dynasm!(self.ops ; .arch x64 ; shr Rd(d), BYTE n as i8),
            (ShiftOp::Sar, true, Amt::Imm(n)) => dynasm!(self.ops ; .arch x64 ; sar Rq(d), BYTE n as i8),
            (ShiftOp::Sar, false, Amt::Imm(n)) => dynasm!(self.ops ; .arch x64 ; sar Rd(d), BYTE n as i8),
            (ShiftOp::Shl, true, Amt::Reg(_)) => dynasm!(self.ops ; .arch x64 ; shl Rq(d), cl),
            (ShiftOp::Shl, false, Amt::Reg(_)) => dynasm!(self.ops ; .arch x64 ; shl Rd(d), cl),
            (ShiftOp::Shr, true, Amt::Reg(_)) => dynasm!(self.ops ; .arch x64 ; shr Rq(d), cl),
            (ShiftOp::Shr, false, Amt::Reg(_)) => dynasm!(self.ops ; .arch x64 ; shr Rd(d), cl),
            (ShiftOp::Sar, true, Amt::Reg(_)) => dynasm!(self.ops ; .arch x64 ; sar Rq(d), cl),
            (ShiftOp::Sar, false, Amt::Reg(_)) => dynasm!(self.ops ; .arch x64 ; sar Rd(d), cl),
        }
        self.set_dst(dst, d);
    }

    fn unary(&mut self, op: UnOp, dst: VReg, a: VReg) {
        let d = self.dreg(dst);
        match op {
            UnOp::Zx8 | UnOp::Zx16 | UnOp::Zx32 | UnOp::Sx8 | UnOp::Sx16 | UnOp::Sx32 => {
                let ra = self.ireg(a, R11);
                match op {
                    UnOp::Zx8 => dynasm!(self.ops ; .arch x64 ; movzx Rd(d), Rb(ra)),
                    UnOp::Zx16 => dynasm!(self.ops ; .arch x64 ; movzx Rd(d), Rw(ra)),
                    UnOp::Zx32 => dynasm!(self.ops ; .arch x64 ; mov Rd(d), Rd(ra)),
                    UnOp::Sx8 => dynasm!(self.ops ; .arch x64 ; movsx Rq(d), Rb(ra)),
                    UnOp::Sx16 => dynasm!(self.ops ; .arch x64 ; movsx Rq(d), Rw(ra)),
                    _ => dynasm!(self.ops ; .arch x64 ; movsxd Rq(d), Rd(ra)),
                }
            }
            UnOp::Clz32 | UnOp::Clz64 | UnOp::Ctz32 | UnOp::Ctz64 => {
                let ra = self.ireg(a, R11);
                match op {
                    UnOp::Clz32 => dynasm!(self.ops ; .arch x64 ; bsr Rd(d), Rd(ra) ; xor Rd(d), 31),
                    UnOp::Clz64 => dynasm!(self.ops ; .arch x64 ; bsr Rq(d), Rq(ra) ; xor Rd(d), 63),
                    UnOp::Ctz32 => dynasm!(self.ops ; .arch x64 ; bsf Rd(d), Rd(ra)),
                    _ => dynasm!(self.ops ; .arch x64 ; bsf Rq(d), Rq(ra)),
                }
            }
            UnOp::Popcnt32 | UnOp::Popcnt64 => {
                // SWAR population count (baseline x86-64 has no popcnt instruction).
                self.load_into(RAX, a);
                if op == UnOp::Popcnt32 {
                    dynasm!(self.ops ; .arch x64 ; mov eax, eax);
                }
                dynasm!(self.ops ; .arch x64
                    ; mov rdx, rax ; shr rdx, 1 ; mov rcx, QWORD 0x5555_5555_5555_5555 ; and rdx, rcx
                    ; sub rax, rdx
                    ; mov rcx, QWORD 0x3333_3333_3333_3333 ; mov rdx, rax ; shr rdx, 2
                    ; and rax, rcx ; and rdx, rcx ; add rax, rdx
                    ; mov rdx, rax ; shr rdx, 4 ; add rax, rdx
                    ; mov rcx, QWORD 0x0f0f_0f0f_0f0f_0f0f ; and rax, rcx
                    ; mov rcx, QWORD 0x0101_0101_0101_0101 ; imul rax, rcx ; shr rax, 56
                );
                return self.set_dst(dst, RAX);
            }
            _ => {
                self.load_into(d, a);
                match op {
                    UnOp::Not => dynasm!(self.ops ; .arch x64 ; not Rq(d)),
                    UnOp::Neg => dynasm!(self.ops ; .arch x64 ; neg Rq(d)),
                    UnOp::Bswap64 => dynasm!(self.ops ; .arch x64 ; bswap Rq(d)),
                    UnOp::Bswap32 => dynasm!(self.ops ; .arch x64 ; bswap Rd(d)),
                    UnOp::Bswap16 => dynasm!(self.ops ; .arch x64 ; rol Rw(d), 8),
                    UnOp::Zx1 => dynasm!(self.ops ; .arch x64 ; and Rd(d), 1),
                    UnOp::Sx1 => dynasm!(self.ops ; .arch x64 ; and Rd(d), 1 ; neg Rq(d)),
                    UnOp::SignOf64 => dynasm!(self.ops ; .arch x64 ; sar Rq(d), 63),
                    _ => unreachable!(),
                }
            }
        }
        self.set_dst(dst, d);
    }

    fn mulw(&mut self, signed: bool, w: u8, dst: VReg, dst_hi: Option<VReg>, a: VReg, b: VReg) {
        if w == 8 {
            self.load_into(RAX, a);
            let rb = self.ireg(b, R11);
            if signed {
                dynasm!(self.ops ; .arch x64 ; imul Rq(rb));
            } else {
                dynasm!(self.ops ; .arch x64 ; mul Rq(rb));
            }
            self.set_dst(dst, RAX);
            if let Some(h) = dst_hi {
                self.set_dst(h, RDX);
            }
            return;
        }
        let rb = self.ireg(b, RCX);
        let ra = self.ireg(a, R11);
        let d = self.dreg(dst);
        match (w, signed) {
            (4, true) => dynasm!(self.ops ; .arch x64 ; movsxd rax, Rd(rb) ; movsxd Rq(d), Rd(ra) ; imul Rq(d), rax),
            (4, false) => dynasm!(self.ops ; .arch x64 ; mov eax, Rd(rb) ; mov Rd(d), Rd(ra) ; imul Rq(d), rax),
            (2, true) => dynasm!(self.ops ; .arch x64 ; movsx eax, Rw(rb) ; movsx Rd(d), Rw(ra) ; imul Rd(d), eax),
            (2, false) => dynasm!(self.ops ; .arch x64 ; movzx eax, Rw(rb) ; movzx Rd(d), Rw(ra) ; imul Rd(d), eax),
            (_, true) => dynasm!(self.ops ; .arch x64 ; movsx eax, Rb(rb) ; movsx Rd(d), Rb(ra) ; imul Rd(d), eax),
            (_, false) => dynasm!(self.ops ; .arch x64 ; movzx eax, Rb(rb) ; movzx Rd(d), Rb(ra) ; imul Rd(d), eax),
        }
        self.set_dst(dst, d);
    }

    #[allow(clippy::too_many_arguments)]
    fn div(&mut self, signed: bool, w: u8, dst: VReg, dst_hi: Option<VReg>, lo: VReg, hi: Option<VReg>, d: VReg) {
        let rd = self.ireg(d, R11);
        match w {
            8 => {
                self.load_into(RDX, hi.expect("128-bit dividend"));
                self.load_into(RAX, lo);
                if signed {
                    dynasm!(self.ops ; .arch x64 ; idiv Rq(rd));
                } else {
                    dynasm!(self.ops ; .arch x64 ; div Rq(rd));
                }
                self.set_dst(dst, RAX);
                if let Some(h) = dst_hi {
                    self.set_dst(h, RDX);
                }
                return;
            }
            4 => {
                self.load_into(RAX, lo);
                dynasm!(self.ops ; .arch x64 ; mov rdx, rax ; shr rdx, 32);
                if signed {
                    dynasm!(self.ops ; .arch x64 ; idiv Rd(rd));
                } else {
                    dynasm!(self.ops ; .arch x64 ; div Rd(rd));
                }
                dynasm!(self.ops ; .arch x64 ; shl rdx, 32 ; mov eax, eax ; or rax, rdx);
            }
            2 => {
                self.load_into(RAX, lo);
                dynasm!(self.ops ; .arch x64 ; mov edx, eax ; shr edx, 16);
                if signed {
                    dynasm!(self.ops ; .arch x64 ; idiv Rw(rd));
                } else {
                    dynasm!(self.ops ; .arch x64 ; div Rw(rd));
                }
                dynasm!(self.ops ; .arch x64 ; shl edx, 16 ; movzx eax, ax ; or eax, edx);
            }
            _ => {
                self.load_into(RAX, lo);
                dynasm!(self.ops ; .arch x64 ; movzx eax, ax);
                if signed {
                    dynasm!(self.ops ; .arch x64 ; idiv Rb(rd));
                } else {
                    dynasm!(self.ops ; .arch x64 ; div Rb(rd));
                }
            }
        }
        self.set_dst(dst, RAX);
    }

    fn vun(&mut self, op: SseUn, dst: VReg, src: VReg) {
        if let SseUn::NegF64 | SseUn::AbsF64 = op {
            let s = self.xreg(src, XTMP1);
            dynasm!(self.ops ; .arch x64 ; movq rax, Rx(s));
            if op == SseUn::NegF64 {
                dynasm!(self.ops ; .arch x64 ; btc rax, 63);
            } else {
                dynasm!(self.ops ; .arch x64 ; btr rax, 63);
            }
            let d = self.xdreg(dst);
            dynasm!(self.ops ; .arch x64 ; movq Rx(d), rax);
            return self.set_xdst(dst, d);
        }
        let s = self.xreg(src, XTMP1);
        let d = self.xdreg(dst);
        match op {
            SseUn::Sqrtps => dynasm!(self.ops ; .arch x64 ; sqrtps Rx(d), Rx(s)),
            SseUn::Sqrtpd => dynasm!(self.ops ; .arch x64 ; sqrtpd Rx(d), Rx(s)),
            SseUn::Sqrtsd => dynasm!(self.ops ; .arch x64 ; sqrtsd Rx(d), Rx(s)),
            SseUn::Sqrtss => dynasm!(self.ops ; .arch x64 ; sqrtss Rx(d), Rx(s)),
            SseUn::Cvtdq2ps => dynasm!(self.ops ; .arch x64 ; cvtdq2ps Rx(d), Rx(s)),
            SseUn::Cvttps2dq => dynasm!(self.ops ; .arch x64 ; cvttps2dq Rx(d), Rx(s)),
            SseUn::Cvtdq2pd => dynasm!(self.ops ; .arch x64 ; cvtdq2pd Rx(d), Rx(s)),
            SseUn::Cvttpd2dq => dynasm!(self.ops ; .arch x64 ; cvttpd2dq Rx(d), Rx(s)),
            SseUn::Cvtps2pd => dynasm!(self.ops ; .arch x64 ; cvtps2pd Rx(d), Rx(s)),
            SseUn::Cvtpd2ps => dynasm!(self.ops ; .arch x64 ; cvtpd2ps Rx(d), Rx(s)),
            SseUn::Cvtss2sd => dynasm!(self.ops ; .arch x64 ; cvtss2sd Rx(d), Rx(s)),
            SseUn::Cvtsd2ss => dynasm!(self.ops ; .arch x64 ; cvtsd2ss Rx(d), Rx(s)),
            SseUn::Pabsb => dynasm!(self.ops ; .arch x64 ; pabsb Rx(d), Rx(s)),
            SseUn::Pabsw => dynasm!(self.ops ; .arch x64 ; pabsw Rx(d), Rx(s)),
            SseUn::Pabsd => dynasm!(self.ops ; .arch x64 ; pabsd Rx(d), Rx(s)),
            SseUn::Hi64ToLo => {
                let i = 0xeeu8 as i8;
                dynasm!(self.ops ; .arch x64 ; pshufd Rx(d), Rx(s), BYTE i)
            }
            SseUn::Not => {
                if d == s {
                    dynasm!(self.ops ; .arch x64 ; pcmpeqd xmm15, xmm15 ; pxor Rx(d), xmm15);
                } else {
                    dynasm!(self.ops ; .arch x64 ; pcmpeqd Rx(d), Rx(d) ; pxor Rx(d), Rx(s));
                }
            }
            SseUn::NegF64 | SseUn::AbsF64 => unreachable!(),
        }
        self.set_xdst(dst, d);
    }

    fn sse(&mut self, op: SseOp, d: u8, s: u8) {
        use SseOp::*;
        macro_rules! e {
            ($mn:ident) => {
                dynasm!(self.ops ; .arch x64 ; $mn Rx(d), Rx(s))
            };
        }
        match op {
            Pand => e!(pand),
            Por => e!(por),
            Pxor => e!(pxor),
            Pandn => e!(pandn),
            Paddb => e!(paddb),
            Paddw => e!(paddw),
            Paddd => e!(paddd),
            Paddq => e!(paddq),
            Psubb => e!(psubb),
            Psubw => e!(psubw),
            Psubd => e!(psubd),
            Psubq => e!(psubq),
            Paddsb => e!(paddsb),
            Paddusb => e!(paddusb),
            Paddsw => e!(paddsw),
            Paddusw => e!(paddusw),
            Psubsb => e!(psubsb),
            Psubusb => e!(psubusb),
            Psubsw => e!(psubsw),
            Psubusw => e!(psubusw),
            Pmullw => e!(pmullw),
            Pmulhw => e!(pmulhw),
            Pmulhuw => e!(pmulhuw),
            Pmuludq => e!(pmuludq),
            Pmaddwd => e!(pmaddwd),
            Pavgb => e!(pavgb),
            Pavgw => e!(pavgw),
            Psadbw => e!(psadbw),
            Pminub => e!(pminub),
            Pmaxub => e!(pmaxub),
            Pminsw => e!(pminsw),
            Pmaxsw => e!(pmaxsw),
            Pcmpeqb => e!(pcmpeqb),
            Pcmpeqw => e!(pcmpeqw),
            Pcmpeqd => e!(pcmpeqd),
            Pcmpgtb => e!(pcmpgtb),
            Pcmpgtw => e!(pcmpgtw),
            Pcmpgtd => e!(pcmpgtd),
            Punpcklbw => e!(punpcklbw),
            Punpcklwd => e!(punpcklwd),
            Punpckldq => e!(punpckldq),
            Punpcklqdq => e!(punpcklqdq),
            Punpckhbw => e!(punpckhbw),
            Punpckhwd => e!(punpckhwd),
            Punpckhdq => e!(punpckhdq),
            Punpckhqdq => e!(punpckhqdq),
            Packsswb => e!(packsswb),
            Packuswb => e!(packuswb),
            Packssdw => e!(packssdw),
            Addps => e!(addps),
            Subps => e!(subps),
            Mulps => e!(mulps),
            Divps => e!(divps),
            Minps => e!(minps),
            Maxps => e!(maxps),
            Addpd => e!(addpd),
            Subpd => e!(subpd),
            Mulpd => e!(mulpd),
            Divpd => e!(divpd),
            Minpd => e!(minpd),
            Maxpd => e!(maxpd),
            Cmpps(p) => dynasm!(self.ops ; .arch x64 ; cmpps Rx(d), Rx(s), p as i8),
            Cmppd(p) => dynasm!(self.ops ; .arch x64 ; cmppd Rx(d), Rx(s), p as i8),
            Addsd => e!(addsd),
            Subsd => e!(subsd),
            Mulsd => e!(mulsd),
            Divsd => e!(divsd),
            Minsd => e!(minsd),
            Maxsd => e!(maxsd),
            Addss => e!(addss),
            Subss => e!(subss),
            Mulss => e!(mulss),
            Divss => e!(divss),
            Minss => e!(minss),
            Maxss => e!(maxss),
            Movsd => e!(movsd),
            Movss => e!(movss),
            Pshufb => e!(pshufb),
            Pmaddubsw => e!(pmaddubsw),
            Pmulhrsw => e!(pmulhrsw),
            Psignb => e!(psignb),
            Psignw => e!(psignw),
            Psignd => e!(psignd),
            Pminsb => e!(pminsb),
            Pmaxsb => e!(pmaxsb),
            Pminuw => e!(pminuw),
            Pmaxuw => e!(pmaxuw),
            Pminsd => e!(pminsd),
            Pmaxsd => e!(pmaxsd),
            Pminud => e!(pminud),
            Pmaxud => e!(pmaxud),
            Pmulld => e!(pmulld),
            Pmuldq => e!(pmuldq),
            Pcmpeqq => e!(pcmpeqq),
            Packusdw => e!(packusdw),
            Pcmpgtq => e!(pcmpgtq),
        }
    }
}
