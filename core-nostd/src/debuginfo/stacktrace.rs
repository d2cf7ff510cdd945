//! Stack traces: walking the guest stack into a list of code addresses, describing them as
//! frames (with inlined calls expanded), and printing them as Valgrind does:
//! `   at 0x4005B4: main (prog.c:12)`, `   by 0x...: fn (in /lib/x.so)`, `   by 0x...: ???`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::FileReader;
use super::cfi::UnwindRegs;
use super::registry::DebugInfo;

/// One printed frame.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameDesc {
    pub ip: u64,
    /// As displayed (demangled unless `--demangle=no`).
    pub func: Option<String>,
    /// As recorded in the object (for suppressions).
    pub mangled: Option<String>,
    pub obj: Option<String>,
    pub dir: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// An inlined call: the next frame has the same ip.
    pub inlined: bool,
}

impl FrameDesc {
    pub fn unknown(ip: u64) -> FrameDesc {
        FrameDesc { ip, ..FrameDesc::default() }
    }
}

/// `--num-callers=` and `--show-below-main=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackOptions {
    pub num_callers: usize,
    pub show_below_main: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions { num_callers: 12, show_below_main: false }
    }
}

/// Functions that run before `main` (the C library's start-up), shown as `(below main)`.
const BELOW_MAIN: [&str; 4] = ["__libc_start_main", "__libc_start_call_main", "generic_start_main", "__libc_start_main_impl"];

/// Walks the stack from `regs`: at most `max` addresses. The first is the pc itself; callers are
/// recorded as return address - 1 (inside the call instruction), as Valgrind does, so that line
/// numbers name the call. Stops when the stack pointer stops growing or passes `stack_top`.
pub fn get_stack_trace(
    di: &mut DebugInfo,
    reader: &mut dyn FileReader,
    regs: UnwindRegs,
    stack_top: u64,
    max: usize,
    read_mem: &mut dyn FnMut(u64) -> Option<u64>,
) -> Vec<u64> {
    let mut ips = Vec::with_capacity(max.min(64));
    if max == 0 {
        return ips;
    }
    ips.push(regs.pc);
    let mut cur = regs;
    while ips.len() < max {
        let Some(next) = di.unwind_step(reader, cur, ips.len() == 1, stack_top, read_mem) else { break };
        if next.pc == 0 || next.sp <= cur.sp || next.sp > stack_top {
            break;
        }
        ips.push(next.pc - 1);
        cur = next;
    }
    ips
}

/// Describes `ips` as printed frames, cutting below `main` unless `show_below_main`.
pub fn describe_stack(di: &mut DebugInfo, reader: &mut dyn FileReader, ips: &[u64], opts: StackOptions) -> Vec<FrameDesc> {
    let mut out = Vec::new();
    'ips: for &ip in ips.iter().take(opts.num_callers) {
        for mut f in di.describe(reader, ip) {
            let name = f.mangled.as_deref().unwrap_or("");
            let is_main = f.func.as_deref() == Some("main");
            let below = BELOW_MAIN.contains(&name);
            if below && !opts.show_below_main {
                f.func = Some(String::from("(below main)"));
            }
            out.push(f);
            if !opts.show_below_main && (is_main || below) {
                break 'ips;
            }
        }
    }
    out
}

/// One line of a printed stack trace, without the `==pid==` prefix.
pub fn format_frame(first: bool, f: &FrameDesc) -> String {
    let word = if first { "at" } else { "by" };
    let func = f.func.as_deref().unwrap_or("???");
    match (&f.file, f.line, &f.obj) {
        (Some(file), Some(line), _) => format!("   {word} 0x{:X}: {func} ({file}:{line})", f.ip),
        (Some(file), None, _) => format!("   {word} 0x{:X}: {func} ({file})", f.ip),
        (None, _, Some(obj)) => format!("   {word} 0x{:X}: {func} (in {obj})", f.ip),
        (None, _, None) => format!("   {word} 0x{:X}: {func}", f.ip),
    }
}

/// A whole printed stack trace, one line per frame.
pub fn format_stack(frames: &[FrameDesc]) -> Vec<String> {
    frames.iter().enumerate().map(|(i, f)| format_frame(i == 0, f)).collect()
}
