//! Random-block testing of the back end against the IR interpreter: generate random well-typed
//! flat superblocks (integer operations of every width, compares, ITEs, widening multiplies and
//! divisions, loads and stores into a buffer, compare-and-swap, side exits, Gets and Puts of
//! overlapping widths, pure and dirty helper calls, direct and indirect block ends), run each
//! through `vg_ir::interp::run` and through the compiled code, and require the same guest state,
//! buffer contents, exit address and exit kind. Every block runs as generated and after
//! `vg_ir::opt::optimise`, so both the raw shapes and the optimiser's shapes reach the back end.

extern crate std;

use crate::Amd64Host;
use crate::tests::RUN_LOCK;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use vg_core::arch::{HostArch, RunExit, StateLayout};
use vg_core::codebuf::ExecMem;
use vg_core::regalloc::Loc;
use vg_ir::interp::{self, HostMemory};
use vg_ir::opt::{OptConfig, optimise, typecheck};
use vg_ir::{Atom, Binop, Callee, Const, Dirty, JumpKind, Stmt, Superblock, Ty, Unop};

const PC: u32 = 128;
const STATE_SIZE: u32 = 256;
/// Guest-state bytes the blocks read and write freely (overlapping Gets/Puts of any width).
const REGS_LEN: u32 = 112;
/// Holds the buffer's address (only ever read).
const BASE_SLOT: u32 = 112;
/// The word the dirty helper reads and writes.
const DIRTY_SLOT: u32 = 96;
const BUF_LEN: usize = 512;
const LAYOUT: StateLayout = StateLayout { state_size: STATE_SIZE, spill_offset: 3 * STATE_SIZE, spill_size: 4096 };
const BLOCK_BYTES: usize = (3 * STATE_SIZE + 4096) as usize;
const ENTRY: u64 = 0x1000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, k: u64) -> bool {
        self.below(k) == 0
    }
    /// Values that hit carries, signs and zero as well as random bits.
    fn int(&mut self) -> u64 {
        const SPECIAL: [u64; 10] =
            [0, 1, u64::MAX, 0x7f, 0x80, 0xffff, 0x8000_0000, 0xffff_ffff, i64::MAX as u64, i64::MIN as u64];
        match self.below(6) {
            0 => SPECIAL[self.below(SPECIAL.len() as u64) as usize],
            1 => self.below(17),
            2 => (self.below(9) as i64 - 4) as u64,
            _ => self.next(),
        }
    }
}

extern "C" fn pure1(a: u64) -> u64 {
    a.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
}
extern "C" fn pure2(a: u64, b: u64) -> u64 {
    a.wrapping_sub(b.rotate_left(11))
}
extern "C" fn pure3(a: u64, b: u64, c: u64) -> u64 {
    a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.rotate_left((c & 63) as u32) ^ c
}

extern "C" fn dirty_helper(state: *mut u64, x: u64, y: u64) -> u64 {
    // Destroy every caller-saved register, as a real helper may: generated code must not keep
    // anything there across a call (an out-of-line guarded call must save what is live).
    // SAFETY: only registers declared as clobbered are written.
    unsafe {
        core::arch::asm!(
            "mov rsi, -1", "mov rdi, -1", "mov r8, -1", "mov r9, -1", "mov r10, -1", "mov r11, -1",
            "mov rcx, -1", "mov rdx, -1",
            "pcmpeqd xmm0, xmm0", "pcmpeqd xmm1, xmm1", "pcmpeqd xmm2, xmm2", "pcmpeqd xmm3, xmm3",
            "pcmpeqd xmm4, xmm4", "pcmpeqd xmm5, xmm5", "pcmpeqd xmm6, xmm6", "pcmpeqd xmm7, xmm7",
            "pcmpeqd xmm8, xmm8", "pcmpeqd xmm9, xmm9", "pcmpeqd xmm10, xmm10", "pcmpeqd xmm11, xmm11",
            "pcmpeqd xmm12, xmm12", "pcmpeqd xmm13, xmm13", "pcmpeqd xmm14, xmm14", "pcmpeqd xmm15, xmm15",
            out("rsi") _, out("rdi") _, out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            out("rcx") _, out("rdx") _,
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _, out("xmm4") _, out("xmm5") _,
            out("xmm6") _, out("xmm7") _, out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
            out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
        );
    }
    // SAFETY: generated code and the interpreter pass the state block; DIRTY_SLOT is inside it.
    unsafe {
        let p = state.add(DIRTY_SLOT as usize / 8);
        *p = (*p).wrapping_mul(31) ^ x ^ y.rotate_left(17);
    }
    x.wrapping_sub(y) ^ 0x5555
}

const INT_TYS: [Ty; 4] = [Ty::I8, Ty::I16, Ty::I32, Ty::I64];

/// Builds one random block, keeping a pool of the values defined so far by type.
struct Gen<'r> {
    rng: &'r mut Rng,
    sb: Superblock,
    /// Values of I1, I8, I16, I32, I64, I128.
    pool: [Vec<Atom>; 6],
}

fn slot(ty: Ty) -> usize {
    match ty {
        Ty::I1 => 0,
        Ty::I8 => 1,
        Ty::I16 => 2,
        Ty::I32 => 3,
        Ty::I64 => 4,
        _ => 5,
    }
}

impl Gen<'_> {
    fn int_ty(&mut self) -> Ty {
        INT_TYS[self.rng.below(4) as usize]
    }
    fn add(&mut self, a: Atom) -> Atom {
        let ty = self.sb.atom_ty(a);
        if a.as_temp().is_some() {
            self.pool[slot(ty)].push(a);
        }
        a
    }
    fn konst(&mut self, ty: Ty) -> Atom {
        if ty == Ty::I128 {
            return Atom::Const(Const::I128((self.rng.int() as u128) << 64 | self.rng.int() as u128));
        }
        Atom::Const(Const::int(ty, self.rng.int()))
    }
    /// An operand of type `ty`: mostly an existing value (recent ones preferred), else a constant
    /// or a fresh `Get`.
    fn val(&mut self, ty: Ty) -> Atom {
        let n = self.pool[slot(ty)].len();
        if n > 0 && !self.rng.chance(5) {
            let k = if self.rng.chance(2) { n - 1 - self.rng.below(n.min(4) as u64) as usize } else { self.rng.below(n as u64) as usize };
            return self.pool[slot(ty)][k];
        }
        match ty {
            Ty::I1 => {
                let t = self.int_ty();
                let (a, b) = (self.val(t), self.val(t));
                self.cmp(t, a, b)
            }
            Ty::I128 => {
                if self.rng.chance(3) {
                    self.konst(ty)
                } else {
                    let (h, l) = (self.val(Ty::I64), self.val(Ty::I64));
                    let v = self.sb.binop(Binop::HiLo(Ty::I64), h, l);
                    self.add(v)
                }
            }
            _ if self.rng.chance(2) => self.konst(ty),
            _ => self.get(ty),
        }
    }
    fn get(&mut self, ty: Ty) -> Atom {
        let off = self.rng.below((REGS_LEN / ty.bytes()) as u64) as u32 * ty.bytes();
        let v = self.sb.get(off, ty);
        self.add(v)
    }
    fn cmp(&mut self, t: Ty, a: Atom, b: Atom) -> Atom {
        let op = match self.rng.below(6) {
            0 => Binop::CmpEQ(t),
            1 => Binop::CmpNE(t),
            2 => Binop::CmpLTS(t),
            3 => Binop::CmpLES(t),
            4 => Binop::CmpLTU(t),
            _ => Binop::CmpLEU(t),
        };
        let v = self.sb.binop(op, a, b);
        self.add(v)
    }
    /// An address inside the buffer: base + masked offset (+ scaled index) + displacement.
    fn addr(&mut self, align8: bool) -> Atom {
        let base = self.sb.get(BASE_SLOT, Ty::I64);
        let x = self.val(Ty::I64);
        if align8 {
            let off = self.sb.binop(Binop::And(Ty::I64), x, Atom::u64(0x1f8));
            return self.sb.binop(Binop::Add(Ty::I64), base, off);
        }
        let disp = self.rng.below(0x80);
        match self.rng.below(3) {
            0 => {
                let off = self.sb.binop(Binop::And(Ty::I64), x, Atom::u64(0xff));
                let a = self.sb.binop(Binop::Add(Ty::I64), base, off);
                self.sb.binop(Binop::Add(Ty::I64), a, Atom::u64(disp))
            }
            1 => {
                let i = self.sb.binop(Binop::And(Ty::I64), x, Atom::u64(0x1f));
                let k = self.rng.below(4) as u8;
                let sc = self.sb.binop(Binop::Shl(Ty::I64), i, Atom::u8(k));
                let a = if self.rng.chance(2) {
                    self.sb.binop(Binop::Add(Ty::I64), base, sc)
                } else {
                    self.sb.binop(Binop::Add(Ty::I64), sc, base)
                };
                self.sb.binop(Binop::Add(Ty::I64), a, Atom::u64(disp))
            }
            _ => self.sb.binop(Binop::Add(Ty::I64), base, Atom::u64(disp + 0x100)),
        }
    }
    /// A shift amount below the width of `t`: a constant or a masked value.
    fn shift_amount(&mut self, t: Ty) -> Atom {
        if self.rng.chance(2) {
            return Atom::u8(self.rng.below(t.bits() as u64) as u8);
        }
        let v = self.val(Ty::I8);
        self.sb.binop(Binop::And(Ty::I8), v, Atom::u8(t.bits() as u8 - 1))
    }

    fn stmt(&mut self) {
        let t = self.int_ty();
        match self.rng.below(24) {
            0..=2 => {
                self.get(t);
            }
            3..=6 => {
                let op = match self.rng.below(6) {
                    0 => Binop::Add(t),
                    1 => Binop::Sub(t),
                    2 => Binop::Mul(t),
                    3 => Binop::And(t),
                    4 => Binop::Or(t),
                    _ => Binop::Xor(t),
                };
                let a = self.val(t);
                let b = if self.rng.chance(8) { a } else { self.val(t) };
                let v = self.sb.binop(op, a, b);
                self.add(v);
            }
            7 => {
                let op = match self.rng.below(3) {
                    0 => Binop::Shl(t),
                    1 => Binop::Shr(t),
                    _ => Binop::Sar(t),
                };
                let a = self.val(t);
                let n = self.shift_amount(t);
                let v = self.sb.binop(op, a, n);
                self.add(v);
            }
            8 => {
                let (a, b) = (self.val(t), self.val(t));
                self.cmp(t, a, b);
            }
            9 => {
                let ty = if self.rng.chance(6) { Ty::I128 } else if self.rng.chance(6) { Ty::I1 } else { t };
                let c = self.val(Ty::I1);
                let (x, y) = (self.val(ty), self.val(ty));
                let v = self.sb.ite(c, x, y);
                self.add(v);
            }
            10 | 11 => self.unop(t),
            12 => {
                let op = if self.rng.chance(2) { Binop::MullS(t) } else { Binop::MullU(t) };
                let (a, b) = (self.val(t), self.val(t));
                let v = self.sb.binop(op, a, b);
                self.add(v);
            }
            13 => self.division(t),
            14 | 15 => {
                let ty = if self.rng.chance(8) { Ty::I128 } else { t };
                let a = self.addr(false);
                let v = self.sb.load(ty, a);
                self.add(v);
            }
            16 | 17 => {
                let ty = if self.rng.chance(8) { Ty::I128 } else { t };
                let a = self.addr(false);
                let v = self.val(ty);
                self.sb.store(a, v);
            }
            18 | 19 => {
                let ty = if self.rng.chance(10) { Ty::I128 } else { t };
                let off = self.rng.below((REGS_LEN / ty.bytes()) as u64) as u32 * ty.bytes();
                let v = self.val(ty);
                self.sb.put(off, v);
            }
            20 => {
                let g = self.val(Ty::I1);
                let dst = 0x3000 + 0x10 * self.rng.below(4);
                let kind = if self.rng.chance(4) { JumpKind::Syscall } else { JumpKind::Boring };
                self.sb.exit(g, dst, kind);
            }
            21 => {
                let n = 1 + self.rng.below(3) as usize;
                let addr = [pure1 as *const () as usize, pure2 as *const () as usize, pure3 as *const () as usize][n - 1];
                let callee = Callee { name: "pure", addr };
                let args: Vec<Atom> = (0..n).map(|_| self.val_any_int()).collect();
                let ret = self.int_ty();
                let v = self.sb.ccall(callee, ret, args);
                self.add(v);
            }
            22 => self.dirty(),
            _ => {
                let a = self.addr(true);
                let (e, n) = (self.val(t), self.val(t));
                let old = self.sb.new_temp(t);
                self.sb.stmts.push(Stmt::Cas { addr: a, expected: e, new: n, old });
                self.add(Atom::Tmp(old));
            }
        }
    }

    fn val_any_int(&mut self) -> Atom {
        let ty = self.int_ty();
        self.val(ty)
    }

    fn unop(&mut self, t: Ty) {
        let a = self.val(t);
        let op = match self.rng.below(9) {
            0 => Unop::Not(t),
            1 => Unop::Neg(t),
            2 | 3 => {
                let to = INT_TYS[self.rng.below(4) as usize];
                let from = if self.rng.chance(5) { Ty::I1 } else { t };
                let a = if from == Ty::I1 { self.val(Ty::I1) } else { a };
                let op = match to.bits().cmp(&from.bits()) {
                    core::cmp::Ordering::Greater if self.rng.chance(2) => Unop::Sext(from, to),
                    core::cmp::Ordering::Greater => Unop::Zext(from, to),
                    core::cmp::Ordering::Less => Unop::Trunc(from, to),
                    core::cmp::Ordering::Equal => Unop::Trunc(from, Ty::I1),
                };
                let v = self.sb.unop(op, a);
                self.add(v);
                return;
            }
            4 if t != Ty::I8 => Unop::Hi(t),
            5 | 6 if matches!(t, Ty::I32 | Ty::I64) => {
                // Clz/Ctz of zero is undefined: make the operand odd or give it its top bit.
                let fix = if self.rng.chance(2) { 1 } else { 1u64 << (t.bits() - 1) };
                let nz = self.sb.binop(Binop::Or(t), a, Atom::Const(Const::int(t, fix)));
                let op = if self.rng.chance(2) { Unop::Clz(t) } else { Unop::Ctz(t) };
                let v = self.sb.unop(op, nz);
                self.add(v);
                return;
            }
            7 if matches!(t, Ty::I32 | Ty::I64) => Unop::Popcnt(t),
            8 if t != Ty::I8 => Unop::Bswap(t),
            _ => {
                // I128 pieces.
                let w = self.val(Ty::I128);
                let op = if self.rng.chance(2) { Unop::Hi(Ty::I128) } else { Unop::Trunc(Ty::I128, Ty::I64) };
                let v = self.sb.unop(op, w);
                self.add(v);
                return;
            }
        };
        let v = self.sb.unop(op, a);
        self.add(v);
    }

    /// A division whose divisor is non-zero and whose quotient fits: the dividend is an
    /// extended single-width value, the divisor positive and odd.
    fn division(&mut self, t: Ty) {
        let signed = self.rng.chance(2);
        let wide = t.double();
        let x = self.val(t);
        let y = self.val(t);
        let dividend = if signed {
            self.sb.unop(Unop::Sext(t, wide), x)
        } else {
            self.sb.unop(Unop::Zext(t, wide), x)
        };
        let odd = self.sb.binop(Binop::Or(t), y, Atom::Const(Const::int(t, 1)));
        let d = self.sb.binop(Binop::And(t), odd, Atom::Const(Const::int(t, t.mask() >> 1)));
        let op = if signed { Binop::DivModS(t) } else { Binop::DivModU(t) };
        let v = self.sb.binop(op, dividend, d);
        self.add(v);
    }

    fn dirty(&mut self) {
        let (x, y) = (self.val(Ty::I64), self.val_any_int());
        let guard = if self.rng.chance(2) { Some(self.val(Ty::I1)) } else { None };
        let dst = if self.rng.chance(3) { None } else { Some(self.sb.new_temp(Ty::I64)) };
        self.sb.stmts.push(Stmt::Dirty(Box::new(Dirty {
            callee: Callee { name: "dirty_helper", addr: dirty_helper as *const () as usize },
            args: vec![x, y],
            pass_state: true,
            guard,
            dst,
            reads_state: vec![(DIRTY_SLOT, 8)],
            writes_state: vec![(DIRTY_SLOT, 8)],
            reads_mem: None,
            writes_mem: None,
        })));
        if let Some(d) = dst {
            self.add(Atom::Tmp(d));
        }
    }
}

/// A random block of about `n` statements.
fn random_block(rng: &mut Rng, n: usize) -> Superblock {
    let mut sb = Superblock::new(PC);
    sb.imark(ENTRY, 4);
    let mut g = Gen { rng, sb, pool: Default::default() };
    for _ in 0..n {
        g.stmt();
    }
    // Make use of some late values so they stay live to the end.
    for _ in 0..g.rng.below(4) {
        let t = g.int_ty();
        let off = g.rng.below((REGS_LEN / t.bytes()) as u64) as u32 * t.bytes();
        let v = g.val(t);
        g.sb.put(off, v);
    }
    match g.rng.below(4) {
        0 => {
            let c = g.val(Ty::I1);
            let v = g.sb.ite(c, Atom::u64(0x5000), Atom::u64(0x5010));
            g.sb.next = v;
        }
        1 => {
            g.sb.next = Atom::u64(0x6000);
            g.sb.jump = JumpKind::Syscall;
        }
        _ => g.sb.next = Atom::u64(0x2000),
    }
    g.sb
}

/// State block (state, shadows, spill area) and buffer for one execution.
struct World {
    state: Vec<u64>,
    buf: Vec<u64>,
}

impl World {
    fn new(rng: &mut Rng) -> World {
        let mut w = World { state: vec![0; BLOCK_BYTES / 8], buf: vec![0; BUF_LEN / 8 + 2] };
        for k in 0..(REGS_LEN / 8) as usize {
            w.state[k] = rng.int();
        }
        for b in w.buf.iter_mut() {
            *b = rng.next();
        }
        w
    }
    fn prepare(&mut self) {
        self.state[BASE_SLOT as usize / 8] = self.buf.as_mut_ptr() as u64;
        self.state[PC as usize / 8] = ENTRY;
    }
    fn state_bytes(&mut self) -> &mut [u8] {
        // SAFETY: a u64 vector viewed as its bytes.
        unsafe { core::slice::from_raw_parts_mut(self.state.as_mut_ptr() as *mut u8, self.state.len() * 8) }
    }
    /// What must agree between the interpreter and the JIT: the state up to its end (the buffer
    /// address slot excepted), and the buffer.
    fn observable(&self) -> (Vec<u64>, Vec<u64>) {
        let mut s = self.state[..STATE_SIZE as usize / 8].to_vec();
        s[BASE_SLOT as usize / 8] = 0;
        (s, self.buf.clone())
    }
}

fn run_interp(sb: &Superblock, w: &mut World) -> (u64, JumpKind) {
    w.prepare();
    let (next, kind) = interp::run(sb, w.state_bytes(), &mut HostMemory);
    w.state[PC as usize / 8] = next;
    (next, kind)
}

fn run_jit(sb: &Superblock, w: &mut World, mem: &mut ExecMem) -> Result<(u64, JumpKind), String> {
    let hc = Amd64Host::compile(sb, &LAYOUT, &Amd64Host::dispatch_addrs())?;
    let code = mem.write(0, &hc.bytes);
    let table = [[u64::MAX, 0u64]; 2];
    w.prepare();
    let _g = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        // SAFETY: `code` was compiled for LAYOUT, the state block has its full size, the fast
        // table (two empty entries) matches mask 1.
        let r = unsafe { Amd64Host::run(w.state.as_mut_ptr() as *mut u8, code, table.as_ptr() as *const u8, 1) };
        let pc = w.state[PC as usize / 8];
        return Ok(match r {
            // The time slice ran out before the block started: run it again.
            RunExit::EventCheck => continue,
            RunExit::FastMiss | RunExit::ChainMe { .. } => (pc, JumpKind::Boring),
            RunExit::Assisted(k) => (pc, k),
        });
    }
}

/// How many blocks had values allocated to a spill slot / to their home (so the tests can check
/// that the generator reaches those paths).
#[derive(Default)]
struct Coverage {
    spills: usize,
    homes: usize,
}

fn note_coverage(sb: &Superblock, cov: &mut Coverage) {
    let crate::isel::VCode { insts, mut live } = crate::isel::select(sb).unwrap();
    for (i, inst) in insts.iter().enumerate() {
        inst.liveness(i, &mut live);
    }
    let al = live.allocate(&crate::inst::HOST_REGS, LAYOUT.spill_size / 16).unwrap();
    cov.spills += al.locs.iter().any(|l| matches!(l, Loc::Spill(_))) as usize;
    cov.homes += al.locs.iter().any(|l| matches!(l, Loc::Home(_))) as usize;
}

/// Run `n_blocks` random blocks of about `len` statements from `seed`, each on `inputs` random
/// states, raw and optimised; returns the descriptions of the first few mismatches.
fn check_random_blocks(seed: u64, n_blocks: usize, len: usize, inputs: usize, cov: &mut Coverage) -> Vec<String> {
    let mut rng = Rng(seed);
    let mut mem = ExecMem::new(1 << 16).unwrap();
    let mut failures = Vec::new();
    let cfg = OptConfig { pc_offset: PC, sp_offset: 0, fp_offset: 8, state_size: STATE_SIZE };
    'blocks: for b in 0..n_blocks {
        let n = 1 + rng.below(len as u64) as usize;
        let raw = random_block(&mut rng, n);
        if let Err(e) = typecheck(&raw) {
            panic!("generator made an ill-typed block ({e}):\n{raw}");
        }
        let opt = optimise(raw.clone(), &cfg);
        note_coverage(&raw, cov);
        for i in 0..inputs {
            let w0 = World::new(&mut rng);
            let mut wi = World { state: w0.state.clone(), buf: w0.buf.clone() };
            let want_exit = run_interp(&raw, &mut wi);
            let want = wi.observable();
            for (what, sb) in [("raw", &raw), ("optimised", &opt)] {
                let mut wj = World { state: w0.state.clone(), buf: w0.buf.clone() };
                let got = run_jit(sb, &mut wj, &mut mem);
                let got_obs = wj.observable();
                let mut d = String::new();
                match got {
                    Err(e) => d += &format!("  compile error: {e}\n"),
                    Ok(x) if x != want_exit => d += &format!("  exit: want {want_exit:x?} got {x:x?}\n"),
                    Ok(_) => {}
                }
                for k in 0..want.0.len() {
                    if want.0[k] != got_obs.0[k] {
                        d += &format!("  state+{:#x}: want {:#x} got {:#x}\n", 8 * k, want.0[k], got_obs.0[k]);
                    }
                }
                for k in 0..want.1.len() {
                    if want.1[k] != got_obs.1[k] {
                        d += &format!("  buf+{:#x}: want {:#x} got {:#x}\n", 8 * k, want.1[k], got_obs.1[k]);
                    }
                }
                if !d.is_empty() {
                    let mut asm = String::new();
                    if let Ok(hc) = Amd64Host::compile(sb, &LAYOUT, &Amd64Host::dispatch_addrs()) {
                        Amd64Host::disassemble(&hc.bytes, 0, &mut asm);
                    }
                    failures.push(format!("block {b} ({what}) input {i}:\n{d}{sb}\n{asm}"));
                    if failures.len() >= 3 {
                        return failures;
                    }
                    continue 'blocks;
                }
            }
        }
    }
    failures
}

#[test]
fn random_blocks_match_the_interpreter() {
    let mut cov = Coverage::default();
    let f = check_random_blocks(0x1234_5678_9abc_def1, 4000, 40, 3, &mut cov);
    assert!(f.is_empty(), "{} mismatches, first:\n{}", f.len(), f.join("\n"));
}

#[test]
fn long_random_blocks_under_register_pressure() {
    let mut cov = Coverage::default();
    let f = check_random_blocks(0x0fed_cba9_8765_4321, 400, 200, 3, &mut cov);
    assert!(f.is_empty(), "{} mismatches, first:\n{}", f.len(), f.join("\n"));
    assert!(cov.spills > 100 && cov.homes > 100, "spills in {} blocks, homes in {}", cov.spills, cov.homes);
}
