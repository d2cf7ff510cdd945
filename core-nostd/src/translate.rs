//! The translation pipeline: lift, optimise, instrument, optimise again, compile — and the
//! `--trace-flags` printing of each step. Redirection is applied here: a redirected address is
//! translated from its replacement's code (a wrapper's translation first sets the guest's
//! NRADDR to the original), and an address tagged with [`NOREDIR_TAG`] is translated from its
//! own code whatever the redirections say.
//!
//! Uses: `arch` (front and back end), `tool` (instrumentation), `vg_ir::opt`, `log`,
//! `redir::live` (the active redirections).

use alloc::string::String;
use core::fmt::Write;

use crate::arch::{CodeSource, DispatchAddrs, GuestArch, HostArch, HostCode, LiftLimits, StateLayout};
use crate::tool::Tool;
use vg_ir::Superblock;

/// `--trace-flags` bits (Valgrind's numbering, most significant first).
pub mod trace {
    pub const FRONT_END: u32 = 0x80;
    pub const AFTER_OPT1: u32 = 0x40;
    pub const AFTER_INSTRUMENT: u32 = 0x20;
    pub const AFTER_OPT2: u32 = 0x10;
    /// Our flat IR is what instruction selection sees: "after tree building" prints it.
    pub const TREE_BUILD: u32 = 0x08;
    pub const ISEL: u32 = 0x04;
    pub const REGALLOC: u32 = 0x02;
    pub const ASSEMBLY: u32 = 0x01;
}

/// Set on a guest address (which is never canonical with it) to ask for its translation
/// without redirection: a wrapper calling its original (`JumpKind::NoRedir`). The translation
/// table keeps such translations apart from the redirected ones under this key.
pub const NOREDIR_TAG: u64 = 1 << 63;

/// The client's code as the front end sees it for one translation: a redirected address reads
/// as not decodable, so that the lifter never follows a call or jump into a redirected
/// function but ends the block there. The block's entry is exempt until the lifter has moved
/// past it: a translation without redirection starts at a redirected address, and a recursive
/// call back to it must still go through the redirection.
struct RedirAware<'a> {
    inner: &'a dyn CodeSource,
    entry: u64,
    left_entry: core::cell::Cell<bool>,
    /// The last address hidden from the lifter.
    hidden: core::cell::Cell<Option<u64>>,
}

impl CodeSource for RedirAware<'_> {
    fn code(&self, addr: u64, max: usize) -> &[u8] {
        if addr != self.entry {
            self.left_entry.set(true);
        }
        if (addr != self.entry || self.left_entry.get()) && crate::redir::live::lookup(addr).is_some() {
            self.hidden.set(Some(addr));
            return &[];
        }
        self.inner.code(addr, max)
    }
}

/// What the translator needs from the command line.
#[derive(Clone, Copy, Debug)]
pub struct TranslateConfig {
    pub limits: LiftLimits,
    pub trace_flags: u32,
    pub trace_notbelow: u64,
    /// Which code gets a self-check (`--smc-check`).
    pub smc_check: crate::options::SmcCheck,
}

/// The result of translating one guest address.
pub struct Translated {
    pub code: HostCode,
    /// Guest bytes covered (from the entry to the end of the furthest instruction).
    pub guest_len: u64,
    pub guest_insns: usize,
}

/// Translate the guest code at `pc`. `seq` is this translation's sequence number (for
/// `--trace-notbelow`); trace output goes to `out`.
#[allow(clippy::too_many_arguments)]
pub fn translate<G: GuestArch, H: HostArch, T: Tool>(
    pc: u64,
    seq: u64,
    code: &dyn CodeSource,
    tool: &mut T,
    cfg: &TranslateConfig,
    layout: &StateLayout,
    disp: &DispatchAddrs,
    out: &mut dyn FnMut(&str),
) -> Result<Translated, String> {
    let tracing = cfg.trace_flags != 0 && seq >= cfg.trace_notbelow;
    let flag = |bit: u32| tracing && cfg.trace_flags & bit != 0;
    if tracing {
        out(&alloc::format!("==== SB {seq} [guest {pc:#x}] ====\n"));
    }
    let opt_cfg = vg_ir::opt::OptConfig {
        pc_offset: G::PC_OFFSET,
        sp_offset: G::SP_OFFSET,
        fp_offset: G::FP_OFFSET,
        state_size: G::STATE_SIZE,
    };

    let (lift_at, redirected) = if pc & NOREDIR_TAG != 0 {
        (pc & !NOREDIR_TAG, false)
    } else {
        match crate::redir::live::lookup(pc) {
            Some((to, _)) => (to, true),
            None => (pc, false),
        }
    };
    let mut sb = if crate::redir::live::any_active() {
        let view = RedirAware {
            inner: code,
            entry: lift_at,
            left_entry: core::cell::Cell::new(false),
            hidden: core::cell::Cell::new(None),
        };
        let mut sb = G::lift(&view, lift_at, cfg.limits);
        // Straight-line code running into a redirected function (hand-written assembly falls
        // through like that) was cut as undecodable there: it simply continues at the
        // redirection.
        if sb.jump == vg_ir::JumpKind::NoDecode && view.hidden.get().is_some_and(|h| sb.next == vg_ir::Atom::u64(h)) {
            sb.jump = vg_ir::JumpKind::Boring;
        }
        sb
    } else {
        G::lift(code, lift_at, cfg.limits)
    };
    let (mut guest_len, guest_insns) = guest_extent(&sb, lift_at);
    if redirected {
        // The replacement learns what it replaces (VALGRIND_GET_ORIG_FN); the translation
        // stands for the original's entry only.
        sb.stmts.insert(0, vg_ir::Stmt::Put { off: G::NRADDR_OFFSET, val: vg_ir::Atom::u64(pc) });
        guest_len = 1;
    }
    if lift_at != pc {
        // The back end takes the first IMark as the address the translation is entered for
        // (an exit to it loops straight back): that is `pc`, not where the code came from. An
        // empty mark covers no instruction.
        sb.stmts.insert(0, vg_ir::Stmt::IMark { addr: pc, len: 0 });
    }
    if crate::smc::needs_check(cfg.smc_check, lift_at) {
        sb = crate::smc::add_self_check(sb, pc);
    }
    show(flag(trace::FRONT_END), "Front end", &sb, out);
    let sb = vg_ir::opt::optimise(sb, &opt_cfg);
    show(flag(trace::AFTER_OPT1), "After initial optimisation", &sb, out);
    let sb = tool.instrument(sb, layout);
    show(flag(trace::AFTER_INSTRUMENT), "After instrumentation", &sb, out);
    let sb = vg_ir::opt::optimise(sb, &opt_cfg);
    show(flag(trace::AFTER_OPT2), "After post-instrumentation optimisation", &sb, out);
    show(flag(trace::TREE_BUILD), "Input to instruction selection", &sb, out);

    let code = H::compile(&sb, layout, disp)?;
    if flag(trace::ISEL | trace::REGALLOC | trace::ASSEMBLY) {
        let mut s = String::from("------ Assembly ------\n");
        H::disassemble(&code.bytes, 0, &mut s);
        out(&s);
    }
    Ok(Translated { code, guest_len, guest_insns })
}

fn show(on: bool, title: &str, sb: &Superblock, out: &mut dyn FnMut(&str)) {
    if on {
        let mut s = String::new();
        let _ = write!(s, "------ {title} ------\n{sb}\n");
        out(&s);
    }
}

/// Guest bytes and instructions a superblock covers, from its IMarks.
fn guest_extent(sb: &Superblock, pc: u64) -> (u64, usize) {
    let mut end = pc;
    let mut n = 0;
    for s in &sb.stmts {
        if let vg_ir::Stmt::IMark { addr, len } = s {
            n += 1;
            if *addr >= pc {
                end = end.max(addr + *len as u64);
            }
        }
    }
    (end.saturating_sub(pc).max(1), n)
}
