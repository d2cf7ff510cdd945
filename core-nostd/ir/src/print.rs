//! IR pretty-printer: `Display` for every IR type, in a compact VEX-like text form (what
//! `--trace-flags` shows).
//!
//! A superblock prints as
//!
//! ```text
//! IRSB {
//!    t0:I64   t1:I64   t2:I1
//!
//!    ------ IMark(0x401000, 3) ------
//!    t0 = GET:I64(16)
//!    t1 = Add64(t0,0x1:I64)
//!    PUT(16) = t1
//!    if (t2) { PUT(128) = 0x401020:I64; exit-Boring }
//!    PUT(128) = 0x401003:I64; exit-Boring
//! }
//! ```
//!
//! A lone [`Stmt::Exit`] does not know the program counter's offset and prints `PUT(pc)`; inside a
//! superblock the offset is printed. Uses only the IR definitions.

use core::fmt::{self, Display, Formatter, Write};

use crate::{Atom, Binop, Const, Dirty, Expr, Fence, JumpKind, Stmt, Superblock, Ty, Unop};

impl Display for Ty {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ty::I1 => "I1",
            Ty::I8 => "I8",
            Ty::I16 => "I16",
            Ty::I32 => "I32",
            Ty::I64 => "I64",
            Ty::I128 => "I128",
            Ty::F32 => "F32",
            Ty::F64 => "F64",
            Ty::V128 => "V128",
            Ty::V256 => "V256",
        })
    }
}

impl Display for Const {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match *self {
            Const::F32(v) => write!(f, "F32{{{v:#x}}}"),
            Const::F64(v) => write!(f, "F64{{{v:#x}}}"),
            Const::V128(v) => write!(f, "V128{{{v:#x}}}"),
            Const::I128(v) => write!(f, "{v:#x}:I128"),
            c => write!(f, "{:#x}:{}", c.bits(), c.ty()),
        }
    }
}

impl Display for Atom {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Tmp(t) => write!(f, "t{}", t.0),
            Atom::Const(c) => c.fmt(f),
        }
    }
}

/// Bit width as VEX writes it in operation names (`Add64`, `8Uto64`).
fn w(t: Ty) -> u32 {
    t.bits()
}

impl Display for Unop {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match *self {
            Unop::Not(t) => write!(f, "Not{}", w(t)),
            Unop::Neg(t) => write!(f, "Neg{}", w(t)),
            Unop::Zext(a, b) => write!(f, "{}Uto{}", w(a), w(b)),
            Unop::Sext(a, b) => write!(f, "{}Sto{}", w(a), w(b)),
            Unop::Trunc(a, b) => write!(f, "{}to{}", w(a), w(b)),
            Unop::Hi(t) => write!(f, "{}HIto{}", w(t), w(t) / 2),
            Unop::Clz(t) => write!(f, "Clz{}", w(t)),
            Unop::Ctz(t) => write!(f, "Ctz{}", w(t)),
            Unop::Popcnt(t) => write!(f, "PopCount{}", w(t)),
            Unop::Bswap(t) => write!(f, "Bswap{}", w(t)),
            Unop::Reinterp(a, b) => write!(f, "Reinterp{a}as{b}"),
            Unop::IntSToF(a, b) => write!(f, "I{}Sto{b}", w(a)),
            Unop::FToIntSTrunc(a, b) => write!(f, "{a}toI{}S_trunc", w(b)),
            Unop::FToIntSNearest(a, b) => write!(f, "{a}toI{}S", w(b)),
            Unop::F32toF64 => f.write_str("F32toF64"),
            Unop::F64toF32 => f.write_str("F64toF32"),
            Unop::SqrtF64 => f.write_str("SqrtF64"),
            Unop::SqrtF32 => f.write_str("SqrtF32"),
            Unop::NegF64 => f.write_str("NegF64"),
            Unop::AbsF64 => f.write_str("AbsF64"),
            Unop::V128to64 => f.write_str("V128to64"),
            Unop::V128HIto64 => f.write_str("V128HIto64"),
            Unop::I64UtoV128 => f.write_str("64UtoV128"),
            Unop::I32UtoV128 => f.write_str("32UtoV128"),
            Unop::V128to32 => f.write_str("V128to32"),
            Unop::Vec1(op) => write!(f, "{op:?}"),
            Unop::GetMSBs8x16 => f.write_str("GetMSBs8x16"),
            Unop::ShufImm(op, imm) => write!(f, "{op:?}[{imm:#x}]"),
        }
    }
}

impl Display for Binop {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        use Binop::*;
        match *self {
            Add(t) => write!(f, "Add{}", w(t)),
            Sub(t) => write!(f, "Sub{}", w(t)),
            Mul(t) => write!(f, "Mul{}", w(t)),
            And(t) => write!(f, "And{}", w(t)),
            Or(t) => write!(f, "Or{}", w(t)),
            Xor(t) => write!(f, "Xor{}", w(t)),
            Shl(t) => write!(f, "Shl{}", w(t)),
            Shr(t) => write!(f, "Shr{}", w(t)),
            Sar(t) => write!(f, "Sar{}", w(t)),
            CmpEQ(t) => write!(f, "CmpEQ{}", w(t)),
            CmpNE(t) => write!(f, "CmpNE{}", w(t)),
            CmpLTS(t) => write!(f, "CmpLT{}S", w(t)),
            CmpLES(t) => write!(f, "CmpLE{}S", w(t)),
            CmpLTU(t) => write!(f, "CmpLT{}U", w(t)),
            CmpLEU(t) => write!(f, "CmpLE{}U", w(t)),
            MullS(t) => write!(f, "MullS{}", w(t)),
            MullU(t) => write!(f, "MullU{}", w(t)),
            DivModU(t) => write!(f, "DivModU{}to{}", 2 * w(t), w(t)),
            DivModS(t) => write!(f, "DivModS{}to{}", 2 * w(t), w(t)),
            HiLo(t) => write!(f, "{}HLto{}", w(t), 2 * w(t)),
            AddF(t) => write!(f, "Add{t}"),
            SubF(t) => write!(f, "Sub{t}"),
            MulF(t) => write!(f, "Mul{t}"),
            DivF(t) => write!(f, "Div{t}"),
            MinF(t) => write!(f, "Min{t}"),
            MaxF(t) => write!(f, "Max{t}"),
            CmpF(t) => write!(f, "Cmp{t}"),
            HiLo64toV128 => f.write_str("64HLtoV128"),
            SetV128lo64 => f.write_str("SetV128lo64"),
            SetV128lo32 => f.write_str("SetV128lo32"),
            Vec2(op) | VecShift(op) | Fma(op) => write!(f, "{op:?}"),
            V128HLtoV256 => f.write_str("V128HLtoV256"),
        }
    }
}

/// `a,b,c` (no spaces, as VEX prints argument lists).
fn atoms(f: &mut Formatter<'_>, args: &[Atom]) -> fmt::Result {
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        a.fmt(f)?;
    }
    Ok(())
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Atom(a) => a.fmt(f),
            Expr::Get { off, ty } => write!(f, "GET:{ty}({off})"),
            Expr::Load { ty, addr } => write!(f, "LDle:{ty}({addr})"),
            Expr::Unop { op, a } => write!(f, "{op}({a})"),
            Expr::Binop { op, a, b } => write!(f, "{op}({a},{b})"),
            Expr::Ite { cond, t, f: e } => write!(f, "ITE({cond},{t},{e})"),
            Expr::CCall { callee, ret, args } => {
                write!(f, "{}(", callee.name)?;
                atoms(f, args)?;
                write!(f, "):{ret}")
            }
        }
    }
}

impl Display for JumpKind {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JumpKind::Boring => "Boring",
            JumpKind::Call => "Call",
            JumpKind::Ret => "Ret",
            JumpKind::Syscall => "Sys_syscall",
            JumpKind::ClientReq => "ClientReq",
            JumpKind::NoDecode => "NoDecode",
            JumpKind::SigIll => "SigILL",
            JumpKind::SigTrap => "SigTRAP",
            JumpKind::SigSegv => "SigSEGV",
            JumpKind::SigFpeIntDiv => "SigFPE_IntDiv",
            JumpKind::Yield => "Yield",
            JumpKind::InvalICache => "InvalICache",
            JumpKind::NoRedir => "NoRedir",
        })
    }
}

/// `t5 = DIRTY t1 RdFX-gst(16,8) WrFX-mem(t3,8) ::: helper(BBPTR,t2)`: result, guard, declared
/// effects, then the call (`BBPTR` stands for the guest-state pointer).
fn dirty(f: &mut Formatter<'_>, d: &Dirty) -> fmt::Result {
    if let Some(t) = d.dst {
        write!(f, "t{} = ", t.0)?;
    }
    f.write_str("DIRTY")?;
    if let Some(g) = d.guard {
        write!(f, " {g}")?;
    }
    for (off, len) in &d.reads_state {
        write!(f, " RdFX-gst({off},{len})")?;
    }
    for (off, len) in &d.writes_state {
        write!(f, " WrFX-gst({off},{len})")?;
    }
    if let Some((a, len)) = d.reads_mem {
        write!(f, " RdFX-mem({a},{len})")?;
    }
    if let Some((a, len)) = d.writes_mem {
        write!(f, " WrFX-mem({a},{len})")?;
    }
    write!(f, " ::: {}(", d.callee.name)?;
    if d.pass_state {
        f.write_str("BBPTR")?;
        if !d.args.is_empty() {
            f.write_char(',')?;
        }
    }
    atoms(f, &d.args)?;
    f.write_char(')')
}

/// The `PUT(pc)` part of an exit: the numeric offset when known.
struct PcSlot(Option<u32>);

impl Display for PcSlot {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(off) => write!(f, "PUT({off})"),
            None => f.write_str("PUT(pc)"),
        }
    }
}

fn stmt(f: &mut Formatter<'_>, s: &Stmt, pc: Option<u32>) -> fmt::Result {
    match s {
        Stmt::IMark { addr, len } => write!(f, "------ IMark({addr:#x}, {len}) ------"),
        Stmt::Put { off, val } => write!(f, "PUT({off}) = {val}"),
        Stmt::Store { addr, val } => write!(f, "STle({addr}) = {val}"),
        Stmt::WrTmp { dst, e } => write!(f, "t{} = {e}", dst.0),
        Stmt::Exit { guard, dst, kind } => {
            write!(
                f,
                "if ({guard}) {{ {} = {dst:#x}:I64; exit-{kind} }}",
                PcSlot(pc)
            )
        }
        Stmt::Dirty(d) => dirty(f, d),
        Stmt::Cas {
            addr,
            expected,
            new,
            old,
        } => {
            write!(f, "t{} = CASle({addr}::{expected}->{new})", old.0)
        }
        Stmt::Fence(Fence::Full) => f.write_str("IR-MBE-Fence"),
        Stmt::AbiHint { base, len, nia } => write!(f, "====== AbiHint({base}, {len}, {nia}) ======"),
        Stmt::NoOp => f.write_str("IR-NoOp"),
    }
}

impl Display for Stmt {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        stmt(f, self, None)
    }
}

/// Temps per line in a superblock's header.
const TEMPS_PER_LINE: usize = 8;

impl Display for Superblock {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("IRSB {\n")?;
        for (i, ty) in self.temps.iter().enumerate() {
            if i % TEMPS_PER_LINE == 0 {
                f.write_str("   ")?;
            }
            write!(f, "t{i}:{ty}")?;
            if i % TEMPS_PER_LINE == TEMPS_PER_LINE - 1 || i + 1 == self.temps.len() {
                f.write_char('\n')?;
            } else {
                f.write_str("   ")?;
            }
        }
        f.write_char('\n')?;
        for s in &self.stmts {
            f.write_str("   ")?;
            stmt(f, s, Some(self.pc_offset))?;
            f.write_char('\n')?;
        }
        writeln!(
            f,
            "   {} = {}; exit-{}",
            PcSlot(Some(self.pc_offset)),
            self.next,
            self.jump
        )?;
        f.write_char('}')
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use crate::*;
    use alloc::boxed::Box;
    use alloc::string::ToString;
    use alloc::vec;

    const CALC: Callee = Callee {
        name: "calculate_condition",
        addr: 0x1234,
    };

    #[test]
    fn statements_print_like_vex() {
        let mut sb = Superblock::new(128);
        sb.imark(0x401000, 3);
        let t0 = sb.get(16, Ty::I64);
        let t1 = sb.binop(Binop::Add(Ty::I64), t0, Atom::u64(1));
        sb.put(16, t1);
        sb.store(t0, t1);
        let t2 = sb.load(Ty::I32, t0);
        let c = sb.binop(Binop::CmpLTU(Ty::I32), t2, Atom::u32(7));
        sb.exit(c, 0x401020, JumpKind::Boring);
        let t4 = sb.ite(c, t0, t1);
        let t5 = sb.ccall(CALC, Ty::I64, vec![Atom::u64(4), t0, t4]);
        let t6 = sb.unop(Unop::Zext(Ty::I8, Ty::I64), Atom::u8(0x80));
        let t7 = sb.unop(Unop::Trunc(Ty::I64, Ty::I1), t6);
        let _ = (t5, t7);
        sb.next = t1;
        let lines: std::vec::Vec<_> = sb.stmts.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            lines,
            [
                "------ IMark(0x401000, 3) ------",
                "t0 = GET:I64(16)",
                "t1 = Add64(t0,0x1:I64)",
                "PUT(16) = t1",
                "STle(t0) = t1",
                "t2 = LDle:I32(t0)",
                "t3 = CmpLT32U(t2,0x7:I32)",
                "if (t3) { PUT(pc) = 0x401020:I64; exit-Boring }",
                "t4 = ITE(t3,t0,t1)",
                "t5 = calculate_condition(0x4:I64,t0,t4):I64",
                "t6 = 8Uto64(0x80:I8)",
                "t7 = 64to1(t6)",
            ]
        );
        let text = sb.to_string();
        assert!(text.starts_with(
            "IRSB {\n   t0:I64   t1:I64   t2:I32   t3:I1   t4:I64   t5:I64   t6:I64   t7:I1\n\n"
        ));
        assert!(text.contains("\n   if (t3) { PUT(128) = 0x401020:I64; exit-Boring }\n"));
        assert!(text.ends_with("\n   PUT(128) = t1; exit-Boring\n}"));
    }

    #[test]
    fn constants_and_other_statements() {
        assert_eq!(Const::I1(true).to_string(), "0x1:I1");
        assert_eq!(Const::I16(0xbeef).to_string(), "0xbeef:I16");
        assert_eq!(
            Const::F64(0x3ff0000000000000).to_string(),
            "F64{0x3ff0000000000000}"
        );
        assert_eq!(Const::V128(0).to_string(), "V128{0x0}");
        assert_eq!(Binop::DivModU(Ty::I64).to_string(), "DivModU128to64");
        assert_eq!(Binop::CmpLES(Ty::I8).to_string(), "CmpLE8S");
        assert_eq!(Unop::Hi(Ty::I128).to_string(), "128HIto64");
        assert_eq!(Unop::Sext(Ty::I32, Ty::I64).to_string(), "32Sto64");
        assert_eq!(
            Unop::ShufImm(VecOp::Shuf32x4, 0x1b).to_string(),
            "Shuf32x4[0x1b]"
        );
        let cas = Stmt::Cas {
            addr: Atom::Tmp(Temp(1)),
            expected: Atom::u32(0),
            new: Atom::u32(1),
            old: Temp(2),
        };
        assert_eq!(cas.to_string(), "t2 = CASle(t1::0x0:I32->0x1:I32)");
        let d = Stmt::Dirty(Box::new(Dirty {
            callee: Callee {
                name: "cpuid",
                addr: 1,
            },
            args: vec![Atom::u32(7)],
            pass_state: true,
            guard: None,
            dst: Some(Temp(3)),
            reads_state: vec![(0, 8)],
            writes_state: vec![(0, 32)],
            reads_mem: None,
            writes_mem: Some((Atom::Tmp(Temp(1)), 16)),
        }));
        assert_eq!(
            d.to_string(),
            "t3 = DIRTY RdFX-gst(0,8) WrFX-gst(0,32) WrFX-mem(t1,16) ::: cpuid(BBPTR,0x7:I32)"
        );
        assert_eq!(JumpKind::Syscall.to_string(), "Sys_syscall");
        let hint = Stmt::AbiHint {
            base: Atom::Tmp(Temp(4)),
            len: 128,
            nia: Atom::u64(0x401000),
        };
        assert_eq!(hint.to_string(), "====== AbiHint(t4, 128, 0x401000:I64) ======");
    }

    #[test]
    fn empty_block_prints_header_and_end() {
        let mut sb = Superblock::new(128);
        sb.next = Atom::u64(0x400000);
        sb.jump = JumpKind::Ret;
        assert_eq!(
            sb.to_string(),
            "IRSB {\n\n   PUT(128) = 0x400000:I64; exit-Ret\n}"
        );
    }
}
