//! Differential tests of the x87 lifter, and of the integer/SSE forms added with it (tzcnt,
//! lzcnt, popcnt, cmpxchg8b/16b, enter, loop/loope/loopne, pinsrw): each snippet runs natively
//! and through the lifter + IR interpreter (whole blocks and one instruction per block) on
//! random registers, flags and memory; GPRs, the defined arithmetic flags, xmm0-15 and the
//! memory buffer must agree.
//!
//! The native trampoline does not load or save x87 state, so every x87 snippet starts with
//! `fninit` (the state a fresh guest state has too), leaves the register stack empty and
//! stores what it computes to memory. The lifter models x87 registers as doubles, so inputs are
//! chosen where that model is exact: doubles (and 80-bit values that are doubles), and the
//! native unit's precision control set to double (`fldcw 0x027f`) so that each arithmetic
//! result is rounded once to double precision, as the model rounds it. NaNs are inputs only to
//! comparisons (x87 and SSE propagate NaN operands differently).

use iced_x86::code_asm::*;
use iced_x86::{Decoder, DecoderOptions, RflagsBits};
use vg_amd64_guest::state::*;
use vg_amd64_guest::{flags, Amd64};
use vg_core::arch::{GuestArch, LiftLimits};
use vg_ir::interp::{self, HostMemory};
use vg_ir::JumpKind;
use vg_tests::diff::*;
use vg_tests::native::{CodePage, CpuState};

const TRIALS: usize = 60;

/// Offsets from r15: input doubles (8), integers, a float, an 80-bit value, control words,
/// and the output area.
const D: i32 = 0;
const I16: i32 = 64;
const I32: i32 = 68;
const I64: i32 = 72;
const F32: i32 = 80;
const X80: i32 = 96;
/// 0x027f: all exceptions masked, double precision, round to nearest.
const CW_DOUBLE: i32 = 112;
/// 0x027f with a random rounding control.
const CW_ROUND: i32 = 114;
/// 0x037f (extended precision, what the model reads back) with a random rounding control.
const CW_EXT_ROUND: i32 = 116;
const OUT: i32 = 256;

// ---------------------------------------------------------------- random inputs

/// The x87 tests' input distributions, on top of the shared generator.
trait X87Inputs {
    fn signed_below(&mut self, n: u64) -> i64;
    fn nice(&mut self) -> f64;
    /// Integers for the integer loads/stores and the integer forms.
    fn fp_int(&mut self) -> u64;
}

impl X87Inputs for Rng {
    fn signed_below(&mut self, n: u64) -> i64 {
        self.below(2 * n + 1) as i64 - n as i64
    }
    /// A double on which the F64 model of the x87 is exact: quarters, scaled integers, signed
    /// zeroes, infinities and a few constants.
    fn nice(&mut self) -> f64 {
        match self.below(10) {
            0 => 0.0,
            1 => -0.0,
            2..=4 => self.signed_below(4000) as f64 / 4.0,
            5 => self.signed_below(1000) as f64 * 2f64.powi(self.signed_below(20) as i32),
            6 => self.signed_below(1 << 40) as f64,
            7 => self.signed_below(40) as f64 * 0.5 + 0.25,
            _ => [1.0, -1.0, 0.5, 3.0, 1e10, -7.25, 1e300, f64::INFINITY, -f64::INFINITY][self.below(9) as usize],
        }
    }
    fn fp_int(&mut self) -> u64 {
        match self.below(6) {
            0 => self.next(),
            1 => self.signed_below(1 << 20) as u64,
            2 => [0, 1, u64::MAX, 0x8000, 0x8000_0000, 1 << 63, 0x7fff, 0xffff][self.below(8) as usize],
            3 => (self.next() as i32) as u64,
            4 => self.next() & 0xff00,
            _ => self.signed_below(100) as u64,
        }
    }
}

/// The 80-bit extended encoding of a double (exact), as the test's own reference.
fn to_f80(x: f64) -> [u8; 10] {
    let b = x.to_bits();
    let sign = ((b >> 63) as u16) << 15;
    let e = ((b >> 52) & 0x7ff) as i32;
    let f = b & ((1 << 52) - 1);
    let (mant, exp) = match (e, f) {
        (0, 0) => (0, 0),
        (0x7ff, _) => (1 << 63 | f << 11, 0x7fff),
        (0, _) => {
            let lz = f.leading_zeros() as i32;
            (f << lz, (16383 - 1074 + 63 - lz) as u16)
        }
        _ => (1 << 63 | f << 11, (e - 1023 + 16383) as u16),
    };
    let mut out = [0u8; 10];
    out[..8].copy_from_slice(&u64::to_le_bytes(mant));
    out[8..].copy_from_slice(&(sign | exp).to_le_bytes());
    out
}

/// How a form's random state is adjusted.
#[derive(Clone, Copy, Debug)]
enum Fix {
    None,
    /// x87 inputs (nice doubles etc.; also NaNs when `true`).
    Fp(bool),
    /// Half of the time [r15] equals rdx:rax (cmpxchg8b/16b succeed).
    CasEq(u32),
    /// rbp points into the stack area (enter's outer frame pointers).
    RbpStack,
    /// rcx small and non-zero (loop counts); rbx near rdx (loope/loopne conditions).
    LoopCount,
}

struct Form {
    name: String,
    fix: Fix,
    code: Box<dyn Fn(&mut CodeAssembler) -> Result<(), IcedError>>,
}

fn random_state(rng: &mut Rng, fix: Fix, buf: &mut Buffer) -> CpuState {
    let base = buf.base();
    let mut c = CpuState::default();
    for r in 0..16 {
        c.gpr[r] = rng.fp_int();
    }
    c.gpr[4] = base + STACK_TOP as u64;
    c.gpr[15] = base + DATA_PTR as u64;
    c.rflags = (rng.next() & OSZACP) | 0x202;
    for x in c.xmm.iter_mut() {
        *x = rng.next() as u128 | (rng.next() as u128) << 64;
    }
    for b in buf.bytes().iter_mut() {
        *b = rng.next() as u8;
    }
    let at = |off: i32| DATA_PTR + off as usize;
    match fix {
        Fix::None => {}
        Fix::Fp(nans) => {
            let b = buf.bytes();
            for i in 0..8 {
                let x = if nans && rng.below(6) == 0 { f64::NAN } else { rng.nice() };
                b[at(D) + 8 * i..at(D) + 8 * i + 8].copy_from_slice(&x.to_le_bytes());
            }
            let i = rng.fp_int();
            b[at(I16)..at(I16) + 2].copy_from_slice(&(i as u16).to_le_bytes());
            b[at(I32)..at(I32) + 4].copy_from_slice(&(i as u32).to_le_bytes());
            let j = rng.fp_int();
            b[at(I64)..at(I64) + 8].copy_from_slice(&j.to_le_bytes());
            let f = rng.nice() as f32;
            b[at(F32)..at(F32) + 4].copy_from_slice(&f.to_le_bytes());
            let x = rng.nice();
            b[at(X80)..at(X80) + 10].copy_from_slice(&to_f80(x));
            let rc = rng.below(4) as u16;
            b[at(CW_DOUBLE)..at(CW_DOUBLE) + 2].copy_from_slice(&0x027fu16.to_le_bytes());
            b[at(CW_ROUND)..at(CW_ROUND) + 2].copy_from_slice(&(0x027f | rc << 10).to_le_bytes());
            b[at(CW_EXT_ROUND)..at(CW_EXT_ROUND) + 2].copy_from_slice(&(0x037f | rc << 10).to_le_bytes());
        }
        Fix::CasEq(bytes) => {
            if rng.below(2) == 0 {
                let n = bytes as usize / 2;
                let (lo, hi) = (c.gpr[0].to_le_bytes(), c.gpr[2].to_le_bytes());
                let b = buf.bytes();
                b[DATA_PTR..DATA_PTR + n].copy_from_slice(&lo[..n]);
                b[DATA_PTR + n..DATA_PTR + 2 * n].copy_from_slice(&hi[..n]);
            }
        }
        Fix::RbpStack => c.gpr[5] = base + STACK_TOP as u64 + 8 * rng.below(32),
        Fix::LoopCount => {
            c.gpr[1] = 1 + rng.below(20);
            c.gpr[3] = c.gpr[2].wrapping_add(rng.below(12));
        }
    }
    c
}

// ---------------------------------------------------------------- flags

/// Arithmetic flags no instruction of the snippet defines.
fn undefined_flags(code: &[u8], ip: u64) -> u64 {
    let mut d = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let mut u = 0u64;
    for ins in &mut d {
        let f = ins.rflags_undefined();
        for (bit, m) in [
            (RflagsBits::OF, flags::OF),
            (RflagsBits::SF, flags::SF),
            (RflagsBits::ZF, flags::ZF),
            (RflagsBits::AF, flags::AF),
            (RflagsBits::CF, flags::CF),
            (RflagsBits::PF, flags::PF),
        ] {
            if f & bit != 0 {
                u |= m;
            }
        }
    }
    u
}

// ---------------------------------------------------------------- the forms

type Code = Box<dyn Fn(&mut CodeAssembler) -> Result<(), IcedError>>;

fn m(off: i32) -> AsmMemoryOperand {
    qword_ptr(r15 + off)
}

/// An x87 form: `fninit; fldcw [CW_DOUBLE]; body`.
fn fp(name: &str, nans: bool, body: impl Fn(&mut CodeAssembler) -> Result<(), IcedError> + 'static) -> Form {
    let code: Code = Box::new(move |a| {
        a.fninit()?;
        a.fldcw(word_ptr(r15 + CW_DOUBLE))?;
        body(a)
    });
    Form { name: name.into(), fix: Fix::Fp(nans), code }
}

fn int(name: &str, fix: Fix, body: impl Fn(&mut CodeAssembler) -> Result<(), IcedError> + 'static) -> Form {
    Form { name: name.into(), fix, code: Box::new(body) }
}

/// Store the status word's TOP and C3, C2, C0 (the exception bits are not modelled, nor is C1
/// except where `store_sw_c1` is used: it reports stack overflow and rounding direction).
fn store_sw(a: &mut CodeAssembler, off: i32) -> Result<(), IcedError> {
    a.fnstsw(ax)?;
    a.and(ax, 0x7d00)?;
    a.mov(word_ptr(r15 + off), ax)
}

/// As `store_sw`, with C1 (for fxam's sign and fprem's quotient bit).
fn store_sw_c1(a: &mut CodeAssembler, off: i32) -> Result<(), IcedError> {
    a.fnstsw(ax)?;
    a.and(ax, 0x7f00)?;
    a.mov(word_ptr(r15 + off), ax)
}

fn x87_forms() -> Vec<Form> {
    let mut v = Vec::new();
    // Loads and stores of every memory format.
    v.push(fp("fld m64; fstp m64; fld m64; fst m32; fstp m32", false, |a| {
        a.fld(m(D))?;
        a.fstp(m(OUT))?;
        a.fld(m(D + 8))?;
        a.fst(dword_ptr(r15 + OUT + 8))?;
        a.fstp(dword_ptr(r15 + OUT + 12))
    }));
    v.push(fp("fld m32; fstp m64", false, |a| {
        a.fld(dword_ptr(r15 + F32))?;
        a.fstp(m(OUT))
    }));
    v.push(fp("fld m80; fstp m64; fld m64; fstp m80", false, |a| {
        a.fld(tword_ptr(r15 + X80))?;
        a.fstp(m(OUT))?;
        a.fld(m(D))?;
        a.fstp(tword_ptr(r15 + OUT + 16))
    }));
    v.push(fp("fild m16/m32/m64; fstp m64", false, |a| {
        a.fild(word_ptr(r15 + I16))?;
        a.fild(dword_ptr(r15 + I32))?;
        a.fild(m(I64))?;
        a.fstp(m(OUT))?;
        a.fstp(m(OUT + 8))?;
        a.fstp(m(OUT + 16))
    }));
    for (name, w) in [("m16", 2), ("m32", 4), ("m64", 8)] {
        let mem = move |off: i32| match w {
            2 => word_ptr(r15 + off),
            4 => dword_ptr(r15 + off),
            _ => qword_ptr(r15 + off),
        };
        v.push(fp(&format!("fldcw rc; fist {name}; fistp {name}; fisttp {name}"), false, move |a| {
            a.fldcw(word_ptr(r15 + CW_ROUND))?;
            a.fld(m(D))?;
            a.fld(m(D + 8))?;
            a.fld(m(D + 16))?;
            if w == 8 {
                // There is no fist m64: duplicate and pop instead.
                a.fld(st0)?;
                a.fistp(mem(OUT))?;
            } else {
                a.fist(mem(OUT))?;
            }
            a.fistp(mem(OUT + 8))?;
            a.fisttp(mem(OUT + 16))?;
            a.fistp(mem(OUT + 24))
        }));
    }
    // Register moves, exchanges, constants.
    v.push(fp("fld st(i); fxch; fst st(i); fstp st(i)", false, |a| {
        a.fld(m(D))?;
        a.fld(m(D + 8))?;
        a.fld(m(D + 16))?;
        a.fld(st1)?;
        a.fxch(st0, st2)?;
        a.fst(st3)?;
        a.fstp(st1)?;
        for k in 0..3 {
            a.fstp(m(OUT + 8 * k))?;
        }
        Ok(())
    }));
    v.push(fp("constants", false, |a| {
        a.fld1()?;
        a.fldz()?;
        a.fldpi()?;
        a.fldl2e()?;
        a.fldl2t()?;
        a.fldlg2()?;
        a.fldln2()?;
        for k in 0..7 {
            a.fstp(m(OUT + 8 * k))?;
        }
        Ok(())
    }));
    // Stack overflow and underflow produce the real indefinite; TOP in the status word.
    v.push(fp("overflow, underflow, TOP", false, |a| {
        a.fstp(m(OUT))?;
        for k in 0..9 {
            a.fld(m(D + 8 * (k % 8)))?;
        }
        store_sw(a, OUT + 8)?;
        for k in 0..8 {
            a.fstp(m(OUT + 16 + 8 * k))?;
        }
        a.fld(m(D))?;
        a.fld(m(D))?;
        a.fld(m(D))?;
        store_sw(a, OUT + 96)?;
        a.fstp(st0)?;
        a.fstp(st0)?;
        a.fstp(st0)
    }));
    // Arithmetic, every form.
    type Op2 = fn(&mut CodeAssembler, AsmRegisterSt, AsmRegisterSt) -> Result<(), IcedError>;
    type OpM = fn(&mut CodeAssembler, AsmMemoryOperand) -> Result<(), IcedError>;
    let ops: [(&str, OpM, OpM, Op2, Op2); 6] = [
        ("add", |a, x| a.fadd(x), |a, x| a.fiadd(x), |a, x, y| a.fadd_2(x, y), |a, x, y| a.faddp(x, y)),
        ("sub", |a, x| a.fsub(x), |a, x| a.fisub(x), |a, x, y| a.fsub_2(x, y), |a, x, y| a.fsubp(x, y)),
        ("subr", |a, x| a.fsubr(x), |a, x| a.fisubr(x), |a, x, y| a.fsubr_2(x, y), |a, x, y| a.fsubrp(x, y)),
        ("mul", |a, x| a.fmul(x), |a, x| a.fimul(x), |a, x, y| a.fmul_2(x, y), |a, x, y| a.fmulp(x, y)),
        ("div", |a, x| a.fdiv(x), |a, x| a.fidiv(x), |a, x, y| a.fdiv_2(x, y), |a, x, y| a.fdivp(x, y)),
        ("divr", |a, x| a.fdivr(x), |a, x| a.fidivr(x), |a, x, y| a.fdivr_2(x, y), |a, x, y| a.fdivrp(x, y)),
    ];
    for (name, mem, imem, two, pop) in ops {
        v.push(fp(&format!("f{name} m64/m32/m16int/m32int"), false, move |a| {
            a.fld(m(D))?;
            mem(a, m(D + 8))?;
            a.fstp(m(OUT))?;
            a.fld(m(D + 16))?;
            mem(a, dword_ptr(r15 + F32))?;
            a.fstp(m(OUT + 8))?;
            a.fld(m(D + 24))?;
            imem(a, word_ptr(r15 + I16))?;
            a.fstp(m(OUT + 16))?;
            a.fld(m(D + 32))?;
            imem(a, dword_ptr(r15 + I32))?;
            a.fstp(m(OUT + 24))
        }));
        v.push(fp(&format!("f{name} st0,st2; f{name} st1,st0; f{name}p st2,st0"), false, move |a| {
            a.fld(m(D))?;
            a.fld(m(D + 8))?;
            a.fld(m(D + 16))?;
            two(a, st0, st2)?;
            a.fst(m(OUT))?;
            two(a, st1, st0)?;
            pop(a, st2, st0)?;
            a.fstp(m(OUT + 8))?;
            a.fstp(m(OUT + 16))
        }));
    }
    v.push(fp("fchs; fabs; fsqrt", false, |a| {
        a.fld(m(D))?;
        a.fchs()?;
        a.fst(m(OUT))?;
        a.fabs()?;
        a.fst(m(OUT + 8))?;
        a.fld(m(D + 8))?;
        a.fsqrt()?;
        a.fstp(m(OUT + 16))?;
        a.fld(m(D + 16))?;
        a.fabs()?;
        a.fsqrt()?;
        a.fstp(m(OUT + 24))?;
        a.fstp(st0)
    }));
    v.push(fp("fldcw rc; frndint", false, |a| {
        a.fldcw(word_ptr(r15 + CW_ROUND))?;
        for k in 0..3 {
            a.fld(m(D + 8 * k))?;
            a.frndint()?;
            a.fstp(m(OUT + 8 * k))?;
        }
        Ok(())
    }));
    v.push(fp("fnstcw; fldcw; fnstcw", false, |a| {
        a.fninit()?;
        a.fnstcw(word_ptr(r15 + OUT + 2))?;
        a.fldcw(word_ptr(r15 + CW_EXT_ROUND))?;
        a.fnstcw(word_ptr(r15 + OUT + 4))
    }));
    // Comparisons: into rflags, into C3..C0 (read with fnstsw, and through sahf).
    type Cmp = fn(&mut CodeAssembler) -> Result<(), IcedError>;
    let fcomis: [(&str, Cmp); 4] = [
        ("fcomi", |a| a.fcomi(st0, st1)),
        ("fucomi", |a| a.fucomi(st0, st1)),
        ("fcomip", |a| a.fcomip(st0, st1)),
        ("fucomip", |a| a.fucomip(st0, st1)),
    ];
    for (name, op) in fcomis {
        v.push(fp(&format!("{name} st0,st1; setcc"), true, move |a| {
            a.fld(m(D))?;
            a.fld(m(D + 8 * (1 + (name.len() as i32 % 2))))?;
            op(a)?;
            a.setb(byte_ptr(r15 + OUT))?;
            a.sete(byte_ptr(r15 + OUT + 1))?;
            a.setp(byte_ptr(r15 + OUT + 2))?;
            a.seta(byte_ptr(r15 + OUT + 3))?;
            store_sw(a, OUT + 4)?;
            a.fstp(m(OUT + 8))?;
            a.fninit()
        }));
    }
    let fcoms: [(&str, Cmp); 9] = [
        ("fcom m64", |a| a.fcom(m(D + 16))),
        ("fcom m32", |a| a.fcom(dword_ptr(r15 + F32))),
        ("fcomp st2", |a| a.fcomp_2(st0, st2)),
        ("fcompp", |a| a.fcompp()),
        ("fucom st1", |a| a.fucom(st0, st1)),
        ("fucomp st1", |a| a.fucomp(st0, st1)),
        ("fucompp", |a| a.fucompp()),
        ("ficom m32", |a| a.ficom(dword_ptr(r15 + I32))),
        ("ficomp m16", |a| a.ficomp(word_ptr(r15 + I16))),
    ];
    for (name, op) in fcoms {
        v.push(fp(&format!("{name}; fnstsw; sahf; setcc"), true, move |a| {
            a.fld(m(D + 16))?;
            a.fld(m(D + 8))?;
            a.fld(m(D))?;
            op(a)?;
            store_sw(a, OUT)?;
            a.fnstsw(ax)?;
            a.sahf()?;
            // The exception bits in al are not modelled (ah's C1 goes nowhere).
            a.mov(eax, 0)?;
            a.setb(byte_ptr(r15 + OUT + 2))?;
            a.sete(byte_ptr(r15 + OUT + 3))?;
            a.setp(byte_ptr(r15 + OUT + 4))?;
            a.fninit()
        }));
    }
    v.push(fp("ftst; fxam (also of an empty register)", true, |a| {
        // C1 of an empty register is the sign of stale contents: not compared.
        a.fxam()?;
        a.fnstsw(ax)?;
        a.and(ax, 0x7d00)?;
        a.mov(word_ptr(r15 + OUT), ax)?;
        a.fld(m(D))?;
        a.ftst()?;
        store_sw(a, OUT + 2)?;
        a.fxam()?;
        store_sw_c1(a, OUT + 4)?;
        a.fld(m(D + 8))?;
        a.fdiv(m(D + 16))?;
        a.fxam()?;
        store_sw_c1(a, OUT + 6)?;
        a.fninit()
    }));
    // Integer dividends keep the exponent difference below 64, where the CPU's partial
    // remainder is complete in one step (the model always completes).
    v.push(fp("fprem; fprem1", false, |a| {
        a.fld(m(D))?;
        a.fild(dword_ptr(r15 + I32))?;
        a.fprem()?;
        store_sw_c1(a, OUT)?;
        a.fstp(m(OUT + 8))?;
        a.fild(word_ptr(r15 + I16))?;
        a.fprem1()?;
        store_sw_c1(a, OUT + 2)?;
        a.fstp(m(OUT + 16))?;
        a.fstp(st0)
    }));
    v.push(fp("fscale", false, |a| {
        a.fild(word_ptr(r15 + I16))?;
        a.fld(m(D))?;
        a.fscale()?;
        a.fstp(m(OUT))?;
        a.fstp(st0)
    }));
    v.push(fp("ffree; fincstp; fdecstp; ffreep", false, |a| {
        a.fld(m(D))?;
        a.fld(m(D + 8))?;
        a.ffree(st0)?;
        a.fincstp()?;
        store_sw(a, OUT)?;
        a.fdecstp()?;
        a.fincstp()?;
        a.fst(m(OUT + 8))?;
        a.fld(m(D + 16))?;
        a.ffreep(st0)?;
        a.fstp(m(OUT + 16))
    }));
    // The environment: control, status and tag words (the instruction and operand pointers
    // that follow are not modelled, so only the first 12 bytes are kept), and fldenv of an
    // image with another TOP, rounding and tags (what glibc's floorl & co. do around frndint).
    v.push(fp("fnstenv; fldenv", false, |a| {
        // Extended precision (the model's control word reads back as such).
        a.fldcw(word_ptr(r15 + CW_EXT_ROUND))?;
        a.fld(m(D))?;
        a.fld(m(D + 8))?;
        a.fldz()?;
        a.fnstenv(ptr(r15 + OUT))?;
        a.xor(eax, eax)?;
        for k in 0..4 {
            a.mov(dword_ptr(r15 + OUT + 12 + 4 * k), eax)?;
        }
        // Round to nearest; TOP + 2 with st(0), st(1) made empty: a pop of two.
        a.mov(ax, 0x037f)?;
        a.mov(word_ptr(r15 + OUT + 32), ax)?;
        a.mov(ax, word_ptr(r15 + OUT + 4))?;
        a.add(ax, 0x1000)?;
        a.mov(word_ptr(r15 + OUT + 36), ax)?;
        a.mov(ax, word_ptr(r15 + OUT + 8))?;
        a.or(ax, 0xf000)?;
        a.mov(word_ptr(r15 + OUT + 40), ax)?;
        a.fldenv(ptr(r15 + OUT + 32))?;
        a.fld(m(D + 16))?;
        a.frndint()?;
        a.fnstenv(ptr(r15 + OUT + 64))?;
        // frndint's inexact flag and round-up C1 are not modelled.
        a.and(word_ptr(r15 + OUT + 68), 0x7d00)?;
        a.mov(dword_ptr(r15 + OUT + 64 + 12), 0)?;
        a.mov(dword_ptr(r15 + OUT + 64 + 16), 0)?;
        a.mov(dword_ptr(r15 + OUT + 64 + 20), 0)?;
        a.mov(dword_ptr(r15 + OUT + 64 + 24), 0)?;
        a.fstp(m(OUT + 96))?;
        a.fstp(m(OUT + 104))?;
        a.fninit()
    }));
    type Fcmov = fn(&mut CodeAssembler) -> Result<(), IcedError>;
    let fcmovs: [(&str, Fcmov); 8] = [
        ("fcmovb", |a| a.fcmovb(st0, st1)),
        ("fcmovnb", |a| a.fcmovnb(st0, st1)),
        ("fcmove", |a| a.fcmove(st0, st1)),
        ("fcmovne", |a| a.fcmovne(st0, st1)),
        ("fcmovbe", |a| a.fcmovbe(st0, st1)),
        ("fcmovnbe", |a| a.fcmovnbe(st0, st1)),
        ("fcmovu", |a| a.fcmovu(st0, st1)),
        ("fcmovnu", |a| a.fcmovnu(st0, st1)),
    ];
    for (name, op) in fcmovs {
        v.push(fp(&format!("cmp; {name} st0,st1"), false, move |a| {
            a.fld(m(D))?;
            a.fld(m(D + 8))?;
            a.cmp(al, cl)?;
            op(a)?;
            a.fstp(m(OUT))?;
            a.fstp(m(OUT + 8))
        }));
    }
    v
}

fn int_forms() -> Vec<Form> {
    let mut v = Vec::new();
    v.push(int("tzcnt r16", Fix::None, |a| a.tzcnt(cx, dx)));
    v.push(int("tzcnt r32", Fix::None, |a| a.tzcnt(ecx, ebx)));
    v.push(int("tzcnt r64", Fix::None, |a| a.tzcnt(rcx, rsi)));
    v.push(int("tzcnt r64, m", Fix::None, |a| a.tzcnt(r9, qword_ptr(r15))));
    v.push(int("lzcnt r16", Fix::None, |a| a.lzcnt(cx, dx)));
    v.push(int("lzcnt r32", Fix::None, |a| a.lzcnt(ecx, ebx)));
    v.push(int("lzcnt r64", Fix::None, |a| a.lzcnt(rcx, rsi)));
    v.push(int("lzcnt r32, m", Fix::None, |a| a.lzcnt(r9d, dword_ptr(r15))));
    v.push(int("popcnt r16", Fix::None, |a| a.popcnt(cx, dx)));
    v.push(int("popcnt r32", Fix::None, |a| a.popcnt(ecx, ebx)));
    v.push(int("popcnt r64", Fix::None, |a| a.popcnt(rcx, rsi)));
    v.push(int("popcnt r64, m", Fix::None, |a| a.popcnt(r9, qword_ptr(r15))));
    v.push(int("tzcnt of a zero", Fix::None, |a| {
        a.xor(esi, esi)?;
        a.tzcnt(rax, rsi)?;
        a.setb(bl)?;
        a.lzcnt(dx, si)
    }));
    v.push(int("cmpxchg8b m", Fix::CasEq(8), |a| a.cmpxchg8b(qword_ptr(r15))));
    v.push(int("lock cmpxchg16b m", Fix::CasEq(16), |a| a.lock().cmpxchg16b(xmmword_ptr(r15))));
    for level in [0, 1, 3] {
        v.push(int(&format!("enter 24, {level}; leave"), Fix::RbpStack, move |a| {
            a.enter(24u32, level)?;
            a.mov(rax, rsp)?;
            a.mov(rdx, rbp)?;
            a.mov(rcx, qword_ptr(rsp))?;
            a.leave()
        }));
    }
    v.push(int("loop", Fix::LoopCount, |a| {
        let mut l = a.create_label();
        a.set_label(&mut l)?;
        a.add(rax, rcx)?;
        a.loop_(l)
    }));
    v.push(int("loope", Fix::LoopCount, |a| {
        let mut l = a.create_label();
        a.set_label(&mut l)?;
        a.inc(rdx)?;
        a.cmp(rdx, rbx)?;
        a.loope(l)
    }));
    v.push(int("loopne", Fix::LoopCount, |a| {
        let mut l = a.create_label();
        a.set_label(&mut l)?;
        a.inc(rdx)?;
        a.cmp(rdx, rbx)?;
        a.loopne(l)
    }));
    v.push(int("pinsrw xmm, r32, 2", Fix::None, |a| a.pinsrw(xmm3, ecx, 2)));
    v.push(int("pinsrw xmm, m16, 7", Fix::None, |a| a.pinsrw(xmm12, word_ptr(r15 + 6), 7)));
    v.push(int("pinsrw xmm, r32, 4", Fix::None, |a| a.pinsrw(xmm0, r10d, 12)));
    v
}

fn run_forms(forms: Vec<Form>) {
    let mut h = Harness::new(false, false);
    let mut failures = Vec::new();
    for (fi, form) in forms.iter().enumerate() {
        let mut a = CodeAssembler::new(64).expect("64-bit assembler");
        (form.code)(&mut a).unwrap_or_else(|e| panic!("assembling `{}`: {e}", form.name));
        let code = a.assemble(h.page.snippet_addr()).unwrap_or_else(|e| panic!("assembling `{}`: {e}", form.name));
        let (start, end) = h.page.load(&code);
        let mask = (OSZACP & !undefined_flags(&code, start)) | DF;
        let mut rng = Rng(0x51ed_2701_a3c4_9e1b ^ (fi as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let fails = h.check((start, end), mask, &mut rng, TRIALS, form.fix, random_state);
        // The first disagreeing executor of the first disagreeing trial.
        if let Some(x) = fails.first() {
            let inputs: Vec<String> = (0..8)
                .map(|i| {
                    let o = DATA_PTR + 8 * i;
                    format!("{:e}", f64::from_le_bytes(x.mem[o..o + 8].try_into().unwrap()))
                })
                .collect();
            failures.push(format!(
                "`{}` trial {} via {}:\n  doubles at r15: {}\n{}",
                form.name,
                x.trial,
                x.via,
                inputs.join(" "),
                x.diff
            ));
        }
    }
    assert!(failures.is_empty(), "{} forms differ from the CPU:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn x87_forms_match_the_cpu() {
    let forms = x87_forms();
    assert!(forms.len() >= 40);
    run_forms(forms);
}

#[test]
fn new_integer_and_sse_forms_match_the_cpu() {
    run_forms(int_forms());
}

// ---------------------------------------------------------------- lifter behaviour beyond the CPU

fn lift_bytes(code: &[u8]) -> (vg_ir::Superblock, u64, CodePage) {
    let mut page = CodePage::new();
    let (start, end) = page.load(code);
    let sb = Amd64::lift(&Snippet { start, end }, start, LiftLimits { max_insns: 10, chase_jumps: true });
    (sb, start, page)
}

#[test]
fn ud2_ends_the_block_with_sigill_at_itself() {
    // nop; ud2
    let (sb, start, _p) = lift_bytes(&[0x90, 0x0f, 0x0b]);
    assert_eq!((sb.next, sb.jump), (vg_ir::Atom::u64(start + 1), JumpKind::SigIll));
    let mut st = to_guest(&CpuState::default(), start);
    assert_eq!(interp::run(&sb, &mut st, &mut HostMemory), (start + 1, JumpKind::SigIll));
}

#[test]
fn syscall_writes_rcx_and_r11_like_the_cpu() {
    // stc; syscall
    let (sb, start, _p) = lift_bytes(&[0xf9, 0x0f, 0x05]);
    let cpu = CpuState { rflags: 0x202, ..Default::default() };
    let mut st = to_guest(&cpu, start);
    assert_eq!(interp::run(&sb, &mut st, &mut HostMemory), (start + 3, JumpKind::Syscall));
    let mut out = CpuState::default();
    from_guest(&st, &mut out);
    assert_eq!(out.gpr[1], start + 3, "rcx = the next instruction");
    assert_eq!(out.gpr[11], 0x203, "r11 = rflags (CF, bit 1, IF)");
}

#[test]
fn divide_fault_reports_the_pc_of_the_division() {
    // mov eax, 5; xor ecx, ecx; div ecx  -- after optimisation the pc Put must survive.
    let code = [0xb8, 5, 0, 0, 0, 0x31, 0xc9, 0xf7, 0xf1];
    let (sb, start, _p) = lift_bytes(&code);
    let cfg = vg_ir::opt::OptConfig { pc_offset: OFF_RIP, sp_offset: off_gpr(4), fp_offset: off_gpr(5), state_size: STATE_SIZE };
    let sb = vg_ir::opt::optimise(sb, &cfg);
    let mut st = to_guest(&CpuState::default(), start);
    assert_eq!(interp::run(&sb, &mut st, &mut HostMemory), (start + 7, JumpKind::SigFpeIntDiv));
}
