//! Unwinding with call-frame information from `.eh_frame` and `.debug_frame` (gimli's
//! `UnwindSection`), for amd64: the CFA rule, the return address and `rbp` are all that stack
//! traces need. Also the frame-pointer fallback for code without CFI. Works on link-time addresses
//! internally; the caller gives the object's load bias. The sections are read in place from the
//! mapped file; only a sorted index of their FDEs is built.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

use gimli::{
    BaseAddresses, CfaRule, DebugFrame, EhFrame, EndianSlice, Evaluation, EvaluationResult,
    LittleEndian, Location, Register, RegisterRule, UnwindContext, UnwindSection,
    UnwindTableRow, Value,
};

use super::FileBytes;
use super::elf::{ElfInfo, SecBytes};
use crate::arena::{self, ArenaId};

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// DWARF register numbers of amd64.
pub const REG_RBP: u16 = 6;
pub const REG_RSP: u16 = 7;
pub const REG_RA: u16 = 16;

/// The registers a stack walk tracks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnwindRegs {
    pub pc: u64,
    pub sp: u64,
    pub fp: u64,
}

/// How a value is recovered at some pc (a simplified, owned view of gimli's rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// Not mentioned by the CFI: the ABI default (unchanged for callee-saved registers).
    Default,
    Undefined,
    SameValue,
    /// Saved at CFA + n.
    AtCfaOffset(i64),
    /// Equal to CFA + n.
    CfaOffset(i64),
    InRegister(u16),
    Expression,
    ValExpression,
    Other,
}

/// How the CFA is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CfaKind {
    RegOffset { reg: u16, offset: i64 },
    Expression,
}

/// The unwind rules in force at one pc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRules {
    pub cfa: CfaKind,
    pub ra: RuleKind,
    pub fp: RuleKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Eh,
    Debug,
}

/// One FDE in the index: it covers `[start, start + len)`.
#[derive(Clone, Copy, Debug)]
struct FdeRef {
    start: u64,
    len: u32,
    offset: u32,
}

/// One CFI section (borrowed from the mapped file, or inflated) with a sorted index of its FDEs.
#[derive(Debug)]
struct CfiSection {
    kind: Kind,
    data: SecBytes,
    bases: BaseAddresses,
    /// Sorted by start.
    fdes: Vec<FdeRef>,
}

/// The CFI of one object.
#[derive(Debug, Default)]
pub struct CfiIndex {
    sections: Vec<CfiSection>,
    /// Scratch space for evaluating a CFA program, kept between lookups.
    ctx: Option<Box<UnwindContext<usize>>>,
}

impl CfiIndex {
    /// Indexes `.eh_frame` of the object and `.debug_frame` of the object or its debug file.
    pub fn new(main: &Arc<FileBytes>, main_info: &ElfInfo, debug: Option<(&Arc<FileBytes>, &ElfInfo)>) -> CfiIndex {
        let mut idx = CfiIndex::default();
        let svma = |info: &ElfInfo, name: &str| info.section(name).map_or(0, |s| s.addr);
        if let Some(data) = main_info.section_bytes(main, ".eh_frame") {
            let bases = BaseAddresses::default()
                .set_eh_frame(svma(main_info, ".eh_frame"))
                .set_eh_frame_hdr(svma(main_info, ".eh_frame_hdr"))
                .set_text(svma(main_info, ".text"))
                .set_got(svma(main_info, ".got"));
            idx.add(Kind::Eh, data, bases);
        }
        let dbg = main_info
            .section_bytes(main, ".debug_frame")
            .or_else(|| debug.and_then(|(b, i)| i.section_bytes(b, ".debug_frame")));
        if let Some(data) = dbg {
            idx.add(Kind::Debug, data, BaseAddresses::default());
        }
        idx
    }

    fn add(&mut self, kind: Kind, data: SecBytes, bases: BaseAddresses) {
        let fdes = match kind {
            Kind::Eh => index_fdes(&eh(data.bytes()), &bases),
            Kind::Debug => index_fdes(&debug_frame(data.bytes()), &bases),
        };
        self.sections.push(CfiSection { kind, data, bases, fdes });
    }

    /// Whether any CFI was found.
    pub fn is_empty(&self) -> bool {
        self.sections.iter().all(|s| s.fdes.is_empty())
    }

    /// The rules at link-time address `svma`, if some FDE covers it.
    pub fn rules_at(&mut self, svma: u64) -> Option<FrameRules> {
        self.with_row(svma, |row, _| FrameRules {
            cfa: match row.cfa() {
                CfaRule::RegisterAndOffset { register, offset } => CfaKind::RegOffset { reg: register.0, offset: *offset },
                CfaRule::Expression(_) => CfaKind::Expression,
            },
            ra: rule_kind(row.register(Register(REG_RA))),
            fp: rule_kind(row.register(Register(REG_RBP))),
        })
    }

    /// One unwind step: the caller's registers. `bias` is the object's load bias; `innermost`
    /// says `regs.pc` is the interrupted instruction rather than a return address (return
    /// addresses are looked up at pc-1, inside the call). `read_mem` reads a guest word.
    pub fn unwind_step(
        &mut self,
        bias: u64,
        regs: UnwindRegs,
        innermost: bool,
        read_mem: &mut dyn FnMut(u64) -> Option<u64>,
    ) -> Option<UnwindRegs> {
        let lookup = regs.pc.wrapping_sub(bias).wrapping_sub(u64::from(!innermost));
        self.with_row(lookup, |row, sec| apply_row(row, sec, regs, read_mem)).flatten()
    }

    fn with_row<T>(&mut self, svma: u64, f: impl FnOnce(&UnwindTableRow<usize>, (&CfiSection, gimli::Encoding)) -> T) -> Option<T> {
        let ctx = self.ctx.get_or_insert_with(|| arena::with_arena(ArenaId::Dinfo, || Box::new(UnwindContext::new())));
        for sec in &self.sections {
            let i = sec.fdes.partition_point(|e| e.start <= svma);
            let Some(fde) = i.checked_sub(1).map(|i| sec.fdes[i]) else { continue };
            if svma - fde.start >= u64::from(fde.len) {
                continue;
            }
            let off = fde.offset as usize;
            let res = match sec.kind {
                Kind::Eh => row_in(&eh(sec.data.bytes()), &sec.bases, off, svma, ctx),
                Kind::Debug => row_in(&debug_frame(sec.data.bytes()), &sec.bases, off, svma, ctx),
            };
            if let Some((row, enc)) = res {
                return Some(f(&row, (sec, enc)));
            }
        }
        None
    }
}

fn eh(data: &[u8]) -> EhFrame<Slice<'_>> {
    let mut s = EhFrame::new(data, LittleEndian);
    s.set_address_size(8);
    s
}

fn debug_frame(data: &[u8]) -> DebugFrame<Slice<'_>> {
    let mut s = DebugFrame::new(data, LittleEndian);
    s.set_address_size(8);
    s
}

fn index_fdes<'a, S: UnwindSection<Slice<'a>>>(section: &S, bases: &BaseAddresses) -> Vec<FdeRef> {
    let mut out = Vec::new();
    let mut entries = section.entries(bases);
    while let Ok(Some(entry)) = entries.next() {
        if let gimli::CieOrFde::Fde(partial) = entry
            && let Ok(fde) = partial.parse(S::cie_from_offset)
            && fde.len() > 0
            // Sections and functions this large do not exist; such an entry is corrupt.
            && let (Ok(len), Ok(offset)) = (u32::try_from(fde.len()), u32::try_from(fde.offset()))
        {
            out.push(FdeRef { start: fde.initial_address(), len, offset });
        }
    }
    out.sort_unstable_by_key(|f| (f.start, f.len, f.offset));
    out
}

fn row_in<'a, S: UnwindSection<Slice<'a>>>(
    section: &S,
    bases: &BaseAddresses,
    fde_offset: usize,
    svma: u64,
    ctx: &mut UnwindContext<usize>,
) -> Option<(UnwindTableRow<usize>, gimli::Encoding)> {
    let fde = section.fde_from_offset(bases, S::Offset::from(fde_offset), S::cie_from_offset).ok()?;
    let row = fde.unwind_info_for_address(section, bases, ctx, svma).ok()?.clone();
    Some((row, fde.cie().encoding()))
}

fn rule_kind(r: Option<RegisterRule<usize>>) -> RuleKind {
    match r {
        None => RuleKind::Default,
        Some(RegisterRule::Undefined) => RuleKind::Undefined,
        Some(RegisterRule::SameValue) => RuleKind::SameValue,
        Some(RegisterRule::Offset(n)) => RuleKind::AtCfaOffset(n),
        Some(RegisterRule::ValOffset(n)) => RuleKind::CfaOffset(n),
        Some(RegisterRule::Register(r)) => RuleKind::InRegister(r.0),
        Some(RegisterRule::Expression(_)) => RuleKind::Expression,
        Some(RegisterRule::ValExpression(_)) => RuleKind::ValExpression,
        Some(_) => RuleKind::Other,
    }
}

fn reg_value(regs: &UnwindRegs, reg: u16) -> Option<u64> {
    match reg {
        REG_RSP => Some(regs.sp),
        REG_RBP => Some(regs.fp),
        REG_RA => Some(regs.pc),
        _ => None,
    }
}

/// Evaluates a DWARF expression of the CFI; `initial` is pushed first (the CFA, for register
/// rules). Only rsp/rbp/rip are known registers.
fn eval_expr(
    expr: &gimli::UnwindExpression<usize>,
    sec: &CfiSection,
    enc: gimli::Encoding,
    regs: &UnwindRegs,
    initial: Option<u64>,
    read_mem: &mut dyn FnMut(u64) -> Option<u64>,
) -> Option<u64> {
    let expression = match sec.kind {
        Kind::Eh => expr.get(&eh(sec.data.bytes())).ok()?,
        Kind::Debug => expr.get(&debug_frame(sec.data.bytes())).ok()?,
    };
    let mut ev: Evaluation<Slice<'_>> = expression.evaluation(enc);
    if let Some(v) = initial {
        ev.set_initial_value(v);
    }
    let mut res = ev.evaluate().ok()?;
    // Bounded: an expression needing unbounded inputs is not a stack-walk expression.
    for _ in 0..64 {
        res = match res {
            EvaluationResult::Complete => {
                let pieces = ev.result();
                return match pieces.first()?.location {
                    Location::Address { address } => Some(address),
                    Location::Value { value } => value.to_u64(!0).ok(),
                    _ => None,
                };
            }
            EvaluationResult::RequiresMemory { address, size, .. } => {
                let word = read_mem(address)?;
                let v = if size >= 8 { word } else { word & ((1u64 << (size * 8)) - 1) };
                ev.resume_with_memory(Value::Generic(v)).ok()?
            }
            EvaluationResult::RequiresRegister { register, .. } => {
                ev.resume_with_register(Value::Generic(reg_value(regs, register.0)?)).ok()?
            }
            _ => return None,
        };
    }
    None
}

fn apply_row(
    row: &UnwindTableRow<usize>,
    (sec, enc): (&CfiSection, gimli::Encoding),
    regs: UnwindRegs,
    read_mem: &mut dyn FnMut(u64) -> Option<u64>,
) -> Option<UnwindRegs> {
    let cfa = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => {
            reg_value(&regs, register.0)?.wrapping_add(*offset as u64)
        }
        CfaRule::Expression(e) => eval_expr(e, sec, enc, &regs, None, read_mem)?,
    };
    let recover = |rule: Option<RegisterRule<usize>>, current: u64, read_mem: &mut dyn FnMut(u64) -> Option<u64>| -> Option<u64> {
        match rule {
            None | Some(RegisterRule::SameValue) => Some(current),
            Some(RegisterRule::Offset(n)) => read_mem(cfa.wrapping_add(n as u64)),
            Some(RegisterRule::ValOffset(n)) => Some(cfa.wrapping_add(n as u64)),
            Some(RegisterRule::Register(r)) => reg_value(&regs, r.0),
            Some(RegisterRule::Expression(e)) => {
                let at = eval_expr(&e, sec, enc, &regs, Some(cfa), read_mem)?;
                read_mem(at)
            }
            Some(RegisterRule::ValExpression(e)) => eval_expr(&e, sec, enc, &regs, Some(cfa), read_mem),
            Some(RegisterRule::Constant(v)) => Some(v),
            Some(_) => None,
        }
    };
    // An undefined return address marks the outermost frame (e.g. `_start`).
    let ra_rule = row.register(Register(REG_RA));
    if matches!(ra_rule, Some(RegisterRule::Undefined)) {
        return None;
    }
    // Without a rule the return address sits just below the CFA (the call pushed it there).
    let pc = match ra_rule {
        None => read_mem(cfa.wrapping_sub(8))?,
        r => recover(r, regs.pc, read_mem)?,
    };
    let fp = recover(row.register(Register(REG_RBP)), regs.fp, read_mem).unwrap_or(regs.fp);
    Some(UnwindRegs { pc, sp: cfa, fp })
}

/// The frame-pointer step for code without CFI: `[rbp]` is the caller's rbp, `[rbp+8]` the
/// return address. Refused when rbp does not point into the stack above sp.
pub fn fp_step(regs: UnwindRegs, stack_top: u64, read_mem: &mut dyn FnMut(u64) -> Option<u64>) -> Option<UnwindRegs> {
    let fp = regs.fp;
    if fp < regs.sp || !fp.is_multiple_of(8) || fp.checked_add(16)? > stack_top {
        return None;
    }
    let pc = read_mem(fp + 8)?;
    let caller_fp = read_mem(fp)?;
    Some(UnwindRegs { pc, sp: fp + 16, fp: caller_fp })
}

