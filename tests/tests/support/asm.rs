//! (Shared by the instruction test files through `#[path]`: it needs iced-x86's encoder, a
//! dev-dependency, which the test library cannot use without also switching on iced's std
//! feature for the no_std tool executables.)
//!
//! Assembling instruction-test snippets from textual specs with iced-x86's encoder
//! (`"Add_rm64_r64 rax m+8"`: an iced `Code` name and operands; `m+d` is `[r15+d]`, `@k` the
//! k-th snippet slot for branches), and the flags each instruction leaves undefined.

use std::collections::HashMap;

use iced_x86::{
    BlockEncoder, BlockEncoderOptions, Code, Decoder, DecoderOptions, Instruction, InstructionBlock, MemoryOperand,
    Register, RflagsBits,
};
use vg_amd64_guest::flags;

pub struct Assembler {
    codes: HashMap<String, Code>,
    regs: HashMap<String, Register>,
}

enum Opnd {
    R(Register),
    M(i64),
    I(i64),
    B(usize),
}

pub const FAKE_IP: u64 = 0x1000_0000;

impl Assembler {
    /// One assembler per thread (building the name tables takes a while).
    pub fn new_cached() -> std::rc::Rc<Assembler> {
        thread_local!(static ASM: std::rc::Rc<Assembler> = std::rc::Rc::new(Assembler::new()));
        ASM.with(|a| a.clone())
    }

    pub fn new() -> Assembler {
        let codes = Code::values().map(|c| (format!("{c:?}").to_ascii_lowercase(), c)).collect();
        let regs = Register::values().map(|r| (format!("{r:?}").to_ascii_lowercase(), r)).collect();
        Assembler { codes, regs }
    }

    fn parse_int(s: &str) -> Option<i64> {
        let (neg, t) = match s.strip_prefix('-') {
            Some(t) => (true, t),
            None => (false, s),
        };
        let v = match t.strip_prefix("0x") {
            Some(h) => i64::from_str_radix(h, 16).ok()?,
            None => t.parse().ok()?,
        };
        Some(if neg { -v } else { v })
    }

    fn operand(&self, t: &str) -> Opnd {
        let t = t.to_ascii_lowercase();
        if let Some(k) = t.strip_prefix('@') {
            return Opnd::B(k.parse().expect("branch index"));
        }
        if t == "m" {
            return Opnd::M(0);
        }
        if let Some(d) = t.strip_prefix('m') {
            return Opnd::M(Self::parse_int(d.trim_start_matches('+')).unwrap_or_else(|| panic!("bad operand {t}")));
        }
        if let Some(&r) = self.regs.get(&t) {
            return Opnd::R(r);
        }
        Opnd::I(Self::parse_int(&t).unwrap_or_else(|| panic!("bad operand {t}")))
    }

    pub fn insn(&self, text: &str) -> Instruction {
        let toks: Vec<&str> = text.split_whitespace().collect();
        if toks[0] == "db" {
            let bytes: Vec<u8> = toks[1..].iter().map(|b| u8::from_str_radix(b, 16).expect("hex byte")).collect();
            return Instruction::with_declare_byte(&bytes).expect("db");
        }
        let code = *self.codes.get(&toks[0].to_ascii_lowercase()).unwrap_or_else(|| panic!("unknown Code {}", toks[0]));
        let mut ops: Vec<Opnd> = toks[1..].iter().map(|t| self.operand(t)).collect();
        if toks[0].ends_with("_1") {
            // Shift/rotate by one: iced models the implicit 1 as an immediate operand.
            ops.push(Opnd::I(1));
        }
        let mem = |d: i64| MemoryOperand::with_base_displ(Register::R15, d);
        use Opnd::*;
        let r = match ops.as_slice() {
            [] => Ok(Instruction::with(code)),
            [B(k)] => Instruction::with_branch(code, FAKE_IP + 16 * *k as u64),
            [R(a)] => Instruction::with1(code, *a),
            [M(d)] => Instruction::with1(code, mem(*d)),
            [I(i)] => Instruction::with1(code, *i as i32),
            [R(a), R(b)] => Instruction::with2(code, *a, *b),
            [R(a), M(d)] => Instruction::with2(code, *a, mem(*d)),
            [M(d), R(b)] => Instruction::with2(code, mem(*d), *b),
            [R(a), I(i)] if *i >= i32::MIN as i64 && *i <= u32::MAX as i64 => {
                if *i < 0 { Instruction::with2(code, *a, *i as i32) } else { Instruction::with2(code, *a, *i as u32) }
            }
            [R(a), I(i)] => Instruction::with2(code, *a, *i as u64),
            [M(d), I(i)] => Instruction::with2(code, mem(*d), *i as i32),
            [R(a), R(b), R(c)] => Instruction::with3(code, *a, *b, *c),
            [R(a), R(b), M(d)] => Instruction::with3(code, *a, *b, mem(*d)),
            [R(a), M(d), R(c)] => Instruction::with3(code, *a, mem(*d), *c),
            [R(a), R(b), I(i)] => Instruction::with3(code, *a, *b, *i as i32),
            [R(a), M(d), I(i)] => Instruction::with3(code, *a, mem(*d), *i as i32),
            [M(d), R(b), I(i)] => Instruction::with3(code, mem(*d), *b, *i as i32),
            [M(d), R(b), R(c)] => Instruction::with3(code, mem(*d), *b, *c),
            [R(a), R(b), R(c), R(d)] => Instruction::with4(code, *a, *b, *c, *d),
            [R(a), R(b), M(d), R(c)] => Instruction::with4(code, *a, *b, mem(*d), *c),
            [R(a), R(b), R(c), I(i)] => Instruction::with4(code, *a, *b, *c, *i as i32),
            [R(a), R(b), M(d), I(i)] => Instruction::with4(code, *a, *b, mem(*d), *i as i32),
            _ => panic!("unsupported operand combination in {text}"),
        };
        r.unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// Assemble a snippet for address `ip`.
    pub fn assemble(&self, spec: &str, ip: u64) -> Vec<u8> {
        let mut ins: Vec<Instruction> = spec.split(';').map(|s| self.insn(s.trim())).collect();
        for (k, i) in ins.iter_mut().enumerate() {
            i.set_ip(FAKE_IP + 16 * k as u64);
        }
        let block = InstructionBlock::new(&ins, ip);
        BlockEncoder::encode(64, block, BlockEncoderOptions::NONE)
            .unwrap_or_else(|e| panic!("{spec}: {e}"))
            .code_buffer
    }
}

/// Arithmetic flags the ISA leaves undefined after any instruction of `code`.
pub fn undefined_flags(code: &[u8], ip: u64) -> u64 {
    let mut d = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let mut u = 0;
    for ins in d.iter() {
        let x = ins.rflags_undefined();
        for (bit, fl) in [
            (RflagsBits::OF, flags::OF),
            (RflagsBits::SF, flags::SF),
            (RflagsBits::ZF, flags::ZF),
            (RflagsBits::AF, flags::AF),
            (RflagsBits::CF, flags::CF),
            (RflagsBits::PF, flags::PF),
        ] {
            if x & bit != 0 {
                u |= fl;
            }
        }
    }
    u
}
