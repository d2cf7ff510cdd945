//! The harness shared by the differential instruction tests (`insn_diff*`): random inputs, the
//! memory buffer, the interpreter and JIT executors (lift [+ optimise + compile] + run a snippet),
//! the conversion between `CpuState` and the guest state, and the comparison against the CPU.
//! The tests own their forms, assemblers and input fix-ups.

use crate::native::{CodePage, CpuState, Executor, Native};
use std::collections::HashMap;
use vg_amd64_guest::state::*;
use vg_amd64_guest::{flags, Amd64};
use vg_amd64_host::{fast_index, Amd64Host};
use vg_core::arch::{CodeSource, GuestArch, HostArch, LiftLimits, RunExit, StateLayout};
use vg_core::codebuf::ExecMem;
use vg_core::transtab::FastEntry;
use vg_ir::interp::{self, HostMemory};
use vg_ir::opt::OptConfig;
use vg_ir::JumpKind;

pub const BUF_LEN: usize = 8192;
/// r15 points here (data area [0, 4096)); rsp starts at STACK_TOP.
pub const DATA_PTR: usize = 2048;
pub const STACK_TOP: usize = 7168;
pub const OSZACP: u64 = flags::OSZACP;
pub const DF: u64 = 1 << 10;

// ---------------------------------------------------------------- random inputs

/// xorshift64* with input distributions suited to integer and vector instructions.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Integers that exercise carries, signs and zero as well as random bits.
    pub fn int(&mut self) -> u64 {
        const SPECIAL: [u64; 14] = [
            0,
            1,
            u64::MAX,
            0x7f,
            0x80,
            0xff,
            0x7fff,
            0x8000,
            0xffff,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
            i64::MAX as u64,
            i64::MIN as u64,
        ];
        let r = self.next();
        match self.below(10) {
            0..=3 => r,
            4 => SPECIAL[self.below(SPECIAL.len() as u64) as usize],
            5 => self.below(17),
            6 => r & 0xff | (self.next() & !0xff),
            7 => (self.below(5) as i64 - 2) as u64,
            8 => (r as i8) as u64 | (self.next() << 8),
            _ => (r as i32) as i64 as u64,
        }
    }
    /// 64 bits of xmm lane: random bits or a "nice" double / pair of floats.
    pub fn lane(&mut self) -> u64 {
        match self.below(4) {
            0 | 1 => self.next(),
            2 => ((self.below(2001) as i64 - 1000) as f64 / 4.0).to_bits(),
            _ => {
                let a = (self.below(201) as i32 - 100) as f32 * 0.5;
                let b = (self.below(201) as i32 - 100) as f32;
                (a.to_bits() as u64) << 32 | b.to_bits() as u64
            }
        }
    }
}

// ---------------------------------------------------------------- the interpreter executor

/// Code in [start, end): the lifter sees nothing at or past `end`.
pub struct Snippet {
    pub start: u64,
    pub end: u64,
}
impl CodeSource for Snippet {
    fn code(&self, addr: u64, max: usize) -> &[u8] {
        if addr < self.start || addr >= self.end {
            return &[];
        }
        let n = max.min((self.end - addr) as usize);
        // SAFETY: [start, end) is the snippet in the test's live code page.
        unsafe { std::slice::from_raw_parts(addr as *const u8, n) }
    }
}

/// Lift + IR interpreter, `max_insns` guest instructions per superblock.
pub struct Interp {
    pub max_insns: usize,
}

/// The guest state (with its two shadows, zeroed) for `cpu` at `pc`.
pub fn to_guest(cpu: &CpuState, pc: u64) -> Vec<u8> {
    let mut s = Amd64State::default();
    s.gpr = cpu.gpr;
    s.rip = pc;
    s.cc_op = flags::CC_COPY;
    s.cc_dep1 = cpu.rflags & OSZACP;
    s.dflag = if cpu.rflags & DF != 0 { u64::MAX } else { 1 };
    for i in 0..16 {
        s.ymm[i][0] = cpu.xmm[i] as u64;
        s.ymm[i][1] = (cpu.xmm[i] >> 64) as u64;
        s.ymm[i][2] = cpu.ymm_hi[i] as u64;
        s.ymm[i][3] = (cpu.ymm_hi[i] >> 64) as u64;
    }
    let mut v = vec![0u8; 3 * STATE_SIZE as usize];
    // SAFETY: Amd64State is repr(C) plain data.
    let bytes = unsafe { std::slice::from_raw_parts(&s as *const Amd64State as *const u8, STATE_SIZE as usize) };
    v[..STATE_SIZE as usize].copy_from_slice(bytes);
    v
}

pub fn from_guest(st: &[u8], cpu: &mut CpuState) {
    // SAFETY: `st` holds an Amd64State written by `to_guest` and the IR; read unaligned.
    let s: Amd64State = unsafe { std::ptr::read_unaligned(st.as_ptr() as *const Amd64State) };
    cpu.gpr = s.gpr;
    let f = flags::calculate_rflags_all(s.cc_op, s.cc_dep1, s.cc_dep2, s.cc_ndep);
    cpu.rflags = f | 0x202 | if s.dflag == 1 { 0 } else { DF };
    for i in 0..16 {
        cpu.xmm[i] = s.ymm[i][0] as u128 | (s.ymm[i][1] as u128) << 64;
        cpu.ymm_hi[i] = s.ymm[i][2] as u128 | (s.ymm[i][3] as u128) << 64;
    }
}

impl Executor for Interp {
    fn name(&self) -> String {
        format!("interp(max_insns={})", self.max_insns)
    }
    fn run(&mut self, start: u64, end: u64, cpu: &mut CpuState) -> Result<(), String> {
        let src = Snippet { start, end };
        let mut st = to_guest(cpu, start);
        let mut pc = start;
        for _ in 0..100_000 {
            if pc == end {
                from_guest(&st, cpu);
                return Ok(());
            }
            let sb = Amd64::lift(&src, pc, LiftLimits { max_insns: self.max_insns, chase_jumps: true });
            let (next, kind) = interp::run(&sb, &mut st, &mut HostMemory);
            if next != end && !matches!(kind, JumpKind::Boring | JumpKind::Call | JumpKind::Ret) {
                let bytes = src.code(next, 10);
                return Err(format!(
                    "block at {pc:#x} left with {kind:?} to {next:#x}\n{}",
                    vg_amd64_guest::describe_undecodable(bytes, next)
                ));
            }
            pc = next;
        }
        Err("did not reach the end of the snippet".into())
    }
}

// ---------------------------------------------------------------- the JIT executor

/// Spill area the back end may use after the state and its two shadows.
const SPILL_SIZE: u32 = 4096;
/// Fast lookup table entries (a power of two).
const FAST_LEN: usize = 64;

/// Lift + optimise + compile + run through the dispatcher, `max_insns` guest instructions per
/// superblock. Translations live for one `run` (the snippet page is reused by the next form);
/// direct exits are chained and indirect targets entered in the fast table, as the scheduler
/// does, so both dispatcher paths are exercised.
pub struct Jit {
    max_insns: usize,
    code: ExecMem,
    used: usize,
    fast: Vec<FastEntry>,
    /// Guest pc -> host code of this run's translations.
    trans: HashMap<u64, *const u8>,
}

impl Jit {
    pub fn new(max_insns: usize) -> Jit {
        Jit {
            max_insns,
            code: ExecMem::new(1 << 20).expect("mmap of the code area"),
            used: 0,
            fast: vec![FastEntry { guest: u64::MAX, host: 0 }; FAST_LEN],
            trans: HashMap::new(),
        }
    }

    fn layout() -> StateLayout {
        StateLayout { state_size: STATE_SIZE, spill_offset: 3 * STATE_SIZE, spill_size: SPILL_SIZE }
    }

    /// The host code for guest `pc`, translating it on first use.
    fn host_for(&mut self, src: &Snippet, pc: u64) -> Result<*const u8, String> {
        if let Some(&h) = self.trans.get(&pc) {
            return Ok(h);
        }
        let sb = Amd64::lift(src, pc, LiftLimits { max_insns: self.max_insns, chase_jumps: true });
        let cfg = OptConfig { pc_offset: Amd64::PC_OFFSET, sp_offset: Amd64::SP_OFFSET, fp_offset: Amd64::FP_OFFSET, state_size: STATE_SIZE };
        let sb = vg_ir::opt::optimise(sb, &cfg);
        let hc = Amd64Host::compile(&sb, &Self::layout(), &Amd64Host::dispatch_addrs())
            .map_err(|e| format!("compile of the block at {pc:#x} failed: {e}\n{sb}"))?;
        if self.used + hc.bytes.len() > self.code.len() {
            return Err("code area full".into());
        }
        let at = self.code.write(self.used, &hc.bytes) as *const u8;
        self.used = (self.used + hc.bytes.len() + 15) & !15;
        self.trans.insert(pc, at);
        let k = fast_index(pc, FAST_LEN as u64 - 1) as usize;
        self.fast[k] = FastEntry { guest: pc, host: at as u64 };
        Ok(at)
    }
}

impl Executor for Jit {
    fn name(&self) -> String {
        format!("jit(max_insns={})", self.max_insns)
    }
    fn run(&mut self, start: u64, end: u64, cpu: &mut CpuState) -> Result<(), String> {
        let src = Snippet { start, end };
        self.used = 0;
        self.trans.clear();
        self.fast.fill(FastEntry { guest: u64::MAX, host: 0 });
        let lay = Self::layout();
        let mut block = vec![0u128; (lay.spill_offset + lay.spill_size) as usize / 16];
        // SAFETY: a u128 vector viewed as its bytes.
        let st = unsafe { std::slice::from_raw_parts_mut(block.as_mut_ptr() as *mut u8, block.len() * 16) };
        st[..3 * STATE_SIZE as usize].copy_from_slice(&to_guest(cpu, start));
        for _ in 0..100_000 {
            let pc = Amd64::pc(st);
            if pc == end {
                from_guest(st, cpu);
                return Ok(());
            }
            let entry = self.host_for(&src, pc)?;
            // SAFETY: `entry` is a translation compiled for this layout; `st` has its full size;
            // the fast table holds FAST_LEN entries of this run's translations.
            let exit = unsafe { Amd64Host::run(st.as_mut_ptr(), entry, self.fast.as_ptr() as *const u8, FAST_LEN as u64 - 1) };
            match exit {
                RunExit::FastMiss | RunExit::EventCheck => {}
                RunExit::ChainMe { site } => {
                    let dst = Amd64::pc(st);
                    if dst != end {
                        let target = self.host_for(&src, dst)?;
                        // SAFETY: `site` is a chain site of a live translation in our RWX area.
                        unsafe { Amd64Host::chain(site as *mut u8, target) };
                    }
                }
                RunExit::Assisted(JumpKind::Boring | JumpKind::Call | JumpKind::Ret) => {}
                RunExit::Assisted(kind) => {
                    let next = Amd64::pc(st);
                    if next != end {
                        let bytes = src.code(next, 10);
                        return Err(format!(
                            "block at {pc:#x} left with {kind:?} to {next:#x}\n{}",
                            vg_amd64_guest::describe_undecodable(bytes, next)
                        ));
                    }
                }
            }
        }
        Err("did not reach the end of the snippet".into())
    }
}

// ---------------------------------------------------------------- the driver

/// The memory buffer: 64-byte aligned (xsave areas must be), at a stable address.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub struct Line([u8; 64]);
pub struct Buffer(Vec<Line>);
impl Buffer {
    pub fn new() -> Buffer {
        Buffer(vec![Line([0; 64]); BUF_LEN / 64])
    }
    pub fn base(&self) -> u64 {
        self.0.as_ptr() as u64
    }
    pub fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: a vector of byte arrays viewed as its bytes.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr() as *mut u8, BUF_LEN) }
    }
}


const GPR_NAMES: [&str; 16] =
    ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

/// The integer registers and flags of `c`, for failure reports.
pub fn describe(c: &CpuState) -> String {
    let mut s = String::new();
    for (i, n) in GPR_NAMES.iter().enumerate() {
        s += &format!("{n}={:#x} ", c.gpr[i]);
    }
    s += &format!("rflags={:#x}", c.rflags);
    s
}

/// Differences between the native result and another executor's, as text (empty if equal).
/// `ymm`: also compare the ymm upper halves (only pages made with `CodePage::with_ymm` move them).
pub fn diff(
    want: &CpuState,
    got: &CpuState,
    flag_mask: u64,
    ymm: bool,
    mem_want: &[u8],
    mem_got: &[u8],
) -> String {
    let mut s = String::new();
    for i in 0..16 {
        if want.gpr[i] != got.gpr[i] {
            s += &format!("  {}: want {:#x} got {:#x}\n", GPR_NAMES[i], want.gpr[i], got.gpr[i]);
        }
    }
    if (want.rflags ^ got.rflags) & flag_mask != 0 {
        s += &format!(
            "  rflags (mask {:#x}): want {:#x} got {:#x}\n",
            flag_mask,
            want.rflags & flag_mask,
            got.rflags & flag_mask
        );
    }
    for i in 0..16 {
        if want.xmm[i] != got.xmm[i] {
            s += &format!("  xmm{i}: want {:#034x} got {:#034x}\n", want.xmm[i], got.xmm[i]);
        }
        if ymm && want.ymm_hi[i] != got.ymm_hi[i] {
            s += &format!("  ymm{i}[255:128]: want {:#034x} got {:#034x}\n", want.ymm_hi[i], got.ymm_hi[i]);
        }
    }
    if let Some(p) = (0..BUF_LEN).find(|&p| mem_want[p] != mem_got[p]) {
        let e = (p + 16).min(BUF_LEN);
        s += &format!("  memory at buffer+{p:#x}: want {:02x?} got {:02x?}\n", &mem_want[p..e], &mem_got[p..e]);
    }
    s
}

// ---------------------------------------------------------------- the comparison loop

/// The interpreter with whole superblocks and with one instruction per block (so that flags go
/// through the thunk helpers), and with `jit` the same two through the whole JIT.
fn executors(jit: bool) -> Vec<Box<dyn Executor>> {
    let mut v: Vec<Box<dyn Executor>> = vec![Box::new(Interp { max_insns: 50 }), Box::new(Interp { max_insns: 1 })];
    if jit {
        v.push(Box::new(Jit::new(50)));
        v.push(Box::new(Jit::new(1)));
    }
    v
}

/// One executor's disagreement with the CPU.
pub struct Failure {
    pub trial: usize,
    /// The executor's name.
    pub via: String,
    pub input: CpuState,
    /// The buffer before the run.
    pub mem: Vec<u8>,
    /// The differences, as from [`diff`].
    pub diff: String,
}

/// A code page, the memory buffer and the executors a test's forms run on.
pub struct Harness {
    pub page: CodePage,
    pub buf: Buffer,
    pub execs: Vec<Box<dyn Executor>>,
    /// Whether the page moves the ymm upper halves (then they are compared too).
    ymm: bool,
}

impl Harness {
    /// `ymm`: a page that moves the ymm upper halves (needs AVX2); `jit`: also the two JIT executors.
    pub fn new(ymm: bool, jit: bool) -> Harness {
        let page = if ymm { CodePage::with_ymm() } else { CodePage::new() };
        Harness { page, buf: Buffer::new(), execs: executors(jit), ymm }
    }

    /// Run the snippet [start, end) loaded in the page on `trials` random states drawn by
    /// `state` natively and through every executor (each from the same state and buffer),
    /// comparing with [`diff`] (flags in `flag_mask`). Returns the disagreements of the first
    /// trial that has any (empty if all agree).
    pub fn check<F: Copy>(
        &mut self,
        (start, end): (u64, u64),
        flag_mask: u64,
        rng: &mut Rng,
        trials: usize,
        fix: F,
        state: fn(&mut Rng, F, &mut Buffer) -> CpuState,
    ) -> Vec<Failure> {
        for trial in 0..trials {
            let init = state(rng, fix, &mut self.buf);
            let mem0 = self.buf.bytes().to_vec();
            let mut want = init;
            Native(&self.page).run(start, end, &mut want).expect("native run");
            let mem_want = self.buf.bytes().to_vec();
            let mut failures = Vec::new();
            for ex in self.execs.iter_mut() {
                self.buf.bytes().copy_from_slice(&mem0);
                let mut got = init;
                let d = match ex.run(start, end, &mut got) {
                    Ok(()) => diff(&want, &got, flag_mask, self.ymm, &mem_want, self.buf.bytes()),
                    Err(e) => format!("  error: {e}\n"),
                };
                if !d.is_empty() {
                    failures.push(Failure { trial, via: ex.name(), input: init, mem: mem0.clone(), diff: d });
                }
            }
            if !failures.is_empty() {
                return failures;
            }
        }
        Vec::new()
    }
}
