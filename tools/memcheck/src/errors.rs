//! Memcheck's errors (Valgrind's `mc_errors`): the kinds, their details and their wording,
//! address descriptions ("Address 0x... is 0 bytes after a block of size 40 alloc'd"), and the
//! recording of each error through the core's error manager with its stack.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vg_core::debuginfo::{ExeContextId, ExeContextTable, FrameDesc, UnwindRegs};
use vg_core::errors::{ErrorDetails, ErrorKindId, ErrorManager, Recorded};

/// What an address is, for the line after an error's stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrDesc {
    /// Not stack'd, malloc'd or (recently) free'd.
    Unknown,
    /// Relative to a heap block: (offset text, block size, freed?, alloc ctx, free ctx).
    Block { rel: String, size: u64, freed: bool, alloc: ExeContextId, free: Option<ExeContextId> },
    /// On a thread's stack: in the frame `frame` if one of the stack trace's frames holds it
    /// (see [`locate_stack_frame`]), else `below_sp` bytes below its stack pointer if positive.
    Stack { tid: u32, below_sp: u64, frame: Option<StackFrame> },
    /// Relative to a client-defined block: one named by `CREATE_BLOCK` (`what` is the
    /// client's description) or a live pool chunk (`what` is "block"); `alloc` is where it
    /// was described.
    Client { rel: String, what: String, size: u64, alloc: ExeContextId },
    /// Relative to a live heap block that also holds a recently freed block (a pool chunk
    /// freed inside its superblock, say): "a recently re-allocated block".
    Reallocated { rel: String, size: u64, alloc: ExeContextId },
}

/// The frame of a stack trace holding a stack address, named as Valgrind does: the function
/// and file of the frame's code address, the line of its function's first instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackFrame {
    /// The frame's number in the error's stack trace (0: the innermost).
    pub no: u32,
    pub func: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// The details of a memcheck error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum McError {
    /// Invalid read or write of `size` bytes.
    Addr { write: bool, size: u32, addr: u64, desc: AddrDesc },
    /// An undefined value used as an address or passed where it matters.
    Value { size: u32 },
    /// A conditional jump or move on an undefined value.
    Cond,
    /// A system call reads memory that is unaddressable or undefined.
    Param { call: String, unaddressable: bool, addr: u64, desc: AddrDesc },
    /// free/delete of something that is not a live block.
    Free { what: &'static str, addr: u64, desc: AddrDesc },
    /// Deallocation by the wrong function.
    Mismatch { addr: u64, desc: AddrDesc },
    /// A mempool request naming no pool.
    IllegalMempool { addr: u64, desc: AddrDesc },
    /// A client check request found a bad byte.
    User { unaddressable: bool, addr: u64, desc: AddrDesc },
    /// realloc/malloc argument values that make no sense.
    Fishy { func: &'static str, arg: &'static str, value: i64 },
    /// A string or memory function's source and destination overlap; `len` is shown when
    /// the function takes a length (0: it does not).
    Overlap { func: &'static str, dst: u64, src: u64, len: u64 },
}

impl ErrorDetails for McError {
    fn same_as(&self, o: &McError) -> bool {
        match (self, o) {
            (McError::Addr { write: a, size: s, .. }, McError::Addr { write: b, size: t, .. }) => a == b && s == t,
            (McError::Value { size: a }, McError::Value { size: b }) => a == b,
            (McError::Cond, McError::Cond) => true,
            (McError::Param { call: a, unaddressable: u, .. }, McError::Param { call: b, unaddressable: v, .. }) => {
                a == b && u == v
            }
            (McError::Free { what: a, .. }, McError::Free { what: b, .. }) => a == b,
            (McError::Mismatch { .. }, McError::Mismatch { .. }) => true,
            (McError::IllegalMempool { .. }, McError::IllegalMempool { .. }) => true,
            (McError::User { unaddressable: a, .. }, McError::User { unaddressable: b, .. }) => a == b,
            (McError::Fishy { func: a, arg: x, .. }, McError::Fishy { func: b, arg: y, .. }) => a == b && x == y,
            (McError::Overlap { func: a, .. }, McError::Overlap { func: b, .. }) => a == b,
            _ => false,
        }
    }
    fn supp_extra_matches(&self, extra: &[String]) -> bool {
        match self {
            McError::Param { call, .. } => extra.first().is_none_or(|e| e == call),
            _ => true,
        }
    }
    fn supp_extra(&self) -> Vec<String> {
        match self {
            McError::Param { call, .. } => alloc::vec![call.clone()],
            _ => Vec::new(),
        }
    }
}

/// The error kinds as registered with the error manager.
pub struct Kinds {
    pub addr: [ErrorKindId; 6],
    pub value: [ErrorKindId; 6],
    pub cond: ErrorKindId,
    pub param: ErrorKindId,
    pub free: ErrorKindId,
    pub mismatch: ErrorKindId,
    pub mempool: ErrorKindId,
    pub fishy: ErrorKindId,
    pub user: ErrorKindId,
    pub overlap: ErrorKindId,
}

const SIZES: [u32; 6] = [1, 2, 4, 8, 16, 32];

fn size_index(size: u32) -> usize {
    SIZES.iter().position(|&s| s == size).unwrap_or(3)
}

impl Kinds {
    pub fn register(em: &mut ErrorManager<McError>) -> Kinds {
        let mut addr = [ErrorKindId(0); 6];
        let mut value = [ErrorKindId(0); 6];
        for (i, s) in SIZES.iter().enumerate() {
            addr[i] = em.register_kind("Memcheck", &format!("Addr{s}"), "InvalidRead");
        }
        for (i, s) in SIZES.iter().enumerate() {
            value[i] = em.register_kind("Memcheck", &format!("Value{s}"), "UninitValue");
        }
        Kinds {
            addr,
            value,
            cond: em.register_kind("Memcheck", "Cond", "UninitCondition"),
            param: em.register_kind("Memcheck", "Param", "SyscallParam"),
            free: em.register_kind("Memcheck", "Free", "InvalidFree"),
            mismatch: em.register_kind("Memcheck", "Free", "MismatchedFree"),
            mempool: em.register_kind("Memcheck", "Mempool", "InvalidMemPool"),
            fishy: em.register_kind("Memcheck", "FishyValue", "FishyValue"),
            user: em.register_kind("Memcheck", "User", "ClientCheck"),
            overlap: em.register_kind("Memcheck", "Overlap", "Overlap"),
        }
    }

    pub fn of(&self, e: &McError) -> ErrorKindId {
        match e {
            McError::Addr { size, .. } => self.addr[size_index(*size)],
            McError::Value { size } => self.value[size_index(*size)],
            McError::Cond => self.cond,
            McError::Param { .. } => self.param,
            McError::Free { .. } => self.free,
            McError::Mismatch { .. } => self.mismatch,
            McError::IllegalMempool { .. } => self.mempool,
            McError::Fishy { .. } => self.fishy,
            McError::User { .. } => self.user,
            McError::Overlap { .. } => self.overlap,
        }
    }
}

/// Whether `e` is about an undefined value (not an address): after such errors were shown,
/// the end of a run without `--track-origins=yes` suggests it.
pub fn is_undefined_value(e: &McError) -> bool {
    matches!(
        e,
        McError::Value { .. }
            | McError::Cond
            | McError::Param { unaddressable: false, .. }
            | McError::User { unaddressable: false, .. }
    )
}

/// The first line of an error.
pub fn headline(e: &McError) -> String {
    match e {
        McError::Addr { write, size, .. } => format!("Invalid {} of size {size}", if *write { "write" } else { "read" }),
        McError::Value { size } => format!("Use of uninitialised value of size {size}"),
        McError::Cond => String::from("Conditional jump or move depends on uninitialised value(s)"),
        McError::Param { call, unaddressable, .. } => {
            format!("Syscall param {call} points to {} byte(s)", if *unaddressable { "unaddressable" } else { "uninitialised" })
        }
        McError::Free { what, .. } => format!("Invalid {what}"),
        McError::Mismatch { .. } => String::from("Mismatched free() / delete / delete []"),
        McError::IllegalMempool { .. } => String::from("Illegal memory pool address"),
        McError::User { unaddressable, .. } => format!(
            "{} byte(s) found during client check request",
            if *unaddressable { "Unaddressable" } else { "Uninitialised" }
        ),
        McError::Fishy { func, arg, value } => {
            format!("Argument '{arg}' of function {func} has a fishy (possibly negative) value: {value}")
        }
        McError::Overlap { func, dst, src, len: 0 } => format!("Source and destination overlap in {func}(0x{dst:x}, 0x{src:x})"),
        McError::Overlap { func, dst, src, len } => format!("Source and destination overlap in {func}(0x{dst:x}, 0x{src:x}, {len})"),
    }
}

/// The lines after an error's stack describing `addr` (each ending in a newline); `trace`
/// prints a stored stack.
pub fn describe(addr: u64, d: &AddrDesc, trace: &dyn Fn(ExeContextId) -> String) -> String {
    match d {
        AddrDesc::Unknown => format!(" Address 0x{addr:x} is not stack'd, malloc'd or (recently) free'd\n"),
        AddrDesc::Stack { tid, below_sp, frame } => {
            let mut s = format!(" Address 0x{addr:x} is on thread {tid}'s stack\n");
            if let Some(f) = frame.as_ref().filter(|f| f.func.is_some() || f.file.is_some()) {
                s.push_str(&format!(
                    " in frame #{}, created by {} ({}:{})\n",
                    f.no,
                    f.func.as_deref().unwrap_or("???"),
                    f.file.as_deref().unwrap_or("???"),
                    f.line.map(|l| format!("{l}")).unwrap_or_default()
                ));
            }
            if *below_sp > 0 {
                s.push_str(&format!(" {below_sp} bytes below stack pointer\n"));
            }
            s
        }
        AddrDesc::Block { rel, size, freed, alloc, free } => {
            let mut s = format!(
                " Address 0x{addr:x} is {rel} a block of size {} {}\n",
                crate::commas(*size),
                if *freed { "free'd" } else { "alloc'd" }
            );
            if let Some(f) = free {
                s.push_str(&trace(*f));
                s.push_str(" Block was alloc'd at\n");
            }
            s.push_str(&trace(*alloc));
            s
        }
        AddrDesc::Client { rel, what, size, alloc } => {
            let mut s = format!(" Address 0x{addr:x} is {rel} a {what} of size {} client-defined\n", crate::commas(*size));
            s.push_str(&trace(*alloc));
            s
        }
        AddrDesc::Reallocated { rel, size, alloc } => {
            let mut s =
                format!(" Address 0x{addr:x} is {rel} a recently re-allocated block of size {} alloc'd\n", crate::commas(*size));
            s.push_str(&trace(*alloc));
            s
        }
    }
}

/// The part of the stack below its stack pointer that still counts as in use (amd64's red
/// zone): an address there is "on the stack", not "below stack pointer".
pub const STACK_REDZONE: u64 = 128;
/// The largest frame believed when looking for the frame holding an address (Valgrind's).
const MAX_FRAME: u64 = 64 << 20;

/// The frame whose range `[sps[f], sps[f + 1])` holds `a`, for a trace whose frames have
/// stack pointers `sps` (innermost first) on a stack whose live part is
/// `[stack_min - STACK_REDZONE, stack_max]`; none if no sane frame holds it.
pub fn frame_holding(a: u64, sps: &[u64], stack_min: u64, stack_max: u64) -> Option<usize> {
    sps.windows(2).position(|w| {
        w[0] <= a && a < w[1] && w[1] - w[0] <= MAX_FRAME && w[1] <= stack_max && w[0] >= stack_min.saturating_sub(STACK_REDZONE)
    })
}

/// The code address and stack pointer of each frame of the current thread's stack from
/// `regs`, innermost first, stepping as the error's trace was taken (`frameless`: the
/// innermost frame is a replacement that keeps no frame, its caller's return address that
/// many bytes above the stack pointer); at most `--num-callers=` frames.
fn walk_stack(regs: UnwindRegs, frameless: Option<u64>, stack_top: u64) -> Vec<(u64, u64)> {
    let max = vg_core::reportopts::get().stack.num_callers;
    let mut read = |a: u64| {
        // SAFETY: read only after the address-space manager says 8 bytes at `a` are readable
        // client memory.
        vg_core::aspace::is_client_readable(a, 8).then(|| unsafe { core::ptr::read_unaligned(a as *const u64) })
    };
    let mut out = alloc::vec![(regs.pc, regs.sp)];
    let mut cur = regs;
    if let Some(frame) = frameless {
        let Some(ret) = read(regs.sp + frame) else { return out };
        cur = UnwindRegs { pc: ret - 1, sp: regs.sp + frame + 8, fp: regs.fp };
        out.push((cur.pc, cur.sp));
    }
    let mut innermost = true;
    vg_core::stacks::with_debug_info(|di, rd| {
        while out.len() < max {
            let Some(next) = di.unwind_step(rd, cur, innermost, stack_top, &mut read) else { break };
            if next.pc == 0 || next.sp <= cur.sp || next.sp > stack_top {
                break;
            }
            out.push((next.pc - 1, next.sp));
            cur = next;
            innermost = false;
        }
    });
    out
}

/// Frame `no` at code address `ip`, named as Valgrind names it.
fn name_frame(no: usize, ip: u64) -> StackFrame {
    let src = vg_core::stacks::describe_ip(ip);
    let start = vg_core::stacks::with_debug_info(|di, rd| {
        di.object_at(rd, ip).and_then(|o| o.symbolize(ip).map(|(_, off)| ip - off))
    });
    StackFrame {
        no: no as u32,
        // The function by the symbol table (the outermost of inlined frames), the file of the
        // code address itself.
        func: src.last().and_then(|f| f.func.clone()),
        file: src.first().and_then(|f| f.file.clone()),
        line: start.and_then(|s| vg_core::stacks::describe_ip(s).first().and_then(|f| f.line)),
    }
}

/// Names the frame holding `e`'s address when it is on the live part of the current thread's
/// stack: walks the stack from `regs` (see [`walk_stack`]) noting each frame's stack pointer,
/// as the error's trace was taken, and takes the frame whose range holds the address.
pub fn locate_stack_frame(e: &mut McError, regs: UnwindRegs, frameless: Option<u64>) {
    let (addr, desc) = match e {
        McError::Addr { addr, desc, .. }
        | McError::Param { addr, desc, .. }
        | McError::Free { addr, desc, .. }
        | McError::Mismatch { addr, desc }
        | McError::IllegalMempool { addr, desc }
        | McError::User { addr, desc, .. } => (*addr, desc),
        _ => return,
    };
    let AddrDesc::Stack { below_sp: 0, frame, .. } = desc else { return };
    // The stack ends where the readable memory from its stack pointer does, as for the trace.
    let stack_end = regs.sp + vg_core::aspace::readable_extent(regs.sp, 1 << 30);
    let frames = walk_stack(regs, frameless, stack_end);
    let sps: Vec<u64> = frames.iter().map(|f| f.1).collect();
    if let Some(no) = frame_holding(addr, &sps, regs.sp, stack_end - 1) {
        *frame = Some(name_frame(no, frames[no].0));
    }
}

/// The whole text of error `e` (headline, stack, address lines).
pub fn text(e: &McError, stack: &str, trace: &dyn Fn(ExeContextId) -> String) -> String {
    let mut s = headline(e);
    s.push('\n');
    s.push_str(stack);
    match e {
        McError::Addr { addr, desc, .. }
        | McError::Param { addr, desc, .. }
        | McError::Free { addr, desc, .. }
        | McError::Mismatch { addr, desc }
        | McError::IllegalMempool { addr, desc }
        | McError::User { addr, desc, .. } => s.push_str(&describe(*addr, desc, trace)),
        _ => {}
    }
    s
}

/// The lines saying where an undefined value was created (`--track-origins=yes`), after the
/// rest of its error's text; `stack` is the printed stack of its creation.
pub fn origin_text(kind: crate::origins::OriginKind, stack: &str) -> String {
    use crate::origins::OriginKind;
    let how = match kind {
        OriginKind::Heap => " by a heap allocation",
        OriginKind::Stack => " by a stack allocation",
        OriginKind::Client => " by a client request",
        OriginKind::Unknown => "",
    };
    format!(" Uninitialised value was created{how}\n{stack}")
}

/// Record `e` at stack `ctx`; returns whether it is a new context to show.
pub fn record(
    em: &mut ErrorManager<McError>,
    kinds: &Kinds,
    ectx: &ExeContextTable,
    ctx: ExeContextId,
    e: McError,
    frames: impl FnOnce() -> Vec<FrameDesc>,
) -> Recorded {
    let k = kinds.of(&e);
    em.record_error(ectx, k, ctx, 1, e, frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_matches_valgrind() {
        assert_eq!(headline(&McError::Addr { write: true, size: 4, addr: 0, desc: AddrDesc::Unknown }), "Invalid write of size 4");
        assert_eq!(headline(&McError::Cond), "Conditional jump or move depends on uninitialised value(s)");
        assert_eq!(
            headline(&McError::Overlap { func: "memcpy", dst: 0x1ffefffe61, src: 0x1ffefffe60, len: 10 }),
            "Source and destination overlap in memcpy(0x1ffefffe61, 0x1ffefffe60, 10)"
        );
        assert_eq!(
            headline(&McError::Overlap { func: "strcpy", dst: 0x11, src: 0x10, len: 0 }),
            "Source and destination overlap in strcpy(0x11, 0x10)"
        );
        assert_eq!(
            headline(&McError::Param { call: "write(buf)".into(), unaddressable: false, addr: 0, desc: AddrDesc::Unknown }),
            "Syscall param write(buf) points to uninitialised byte(s)"
        );
        let d = AddrDesc::Block { rel: "0 bytes after".into(), size: 40, freed: false, alloc: ExeContextId(0), free: None };
        let t = describe(0x4a5a068, &d, &|_| String::from("   at 0x1: malloc\n"));
        assert_eq!(t, " Address 0x4a5a068 is 0 bytes after a block of size 40 alloc'd\n   at 0x1: malloc\n");
        assert_eq!(
            describe(0x10, &AddrDesc::Unknown, &|_| String::new()),
            " Address 0x10 is not stack'd, malloc'd or (recently) free'd\n"
        );
    }

    #[test]
    fn stack_addresses_name_their_frame() {
        let frame = StackFrame { no: 2, func: Some("main".into()), file: Some("prog.c".into()), line: Some(8) };
        let d = AddrDesc::Stack { tid: 1, below_sp: 0, frame: Some(frame) };
        assert_eq!(
            describe(0x1ffefff6e8, &d, &|_| String::new()),
            " Address 0x1ffefff6e8 is on thread 1's stack\n in frame #2, created by main (prog.c:8)\n"
        );
        let unnamed = StackFrame { no: 1, func: None, file: Some("prog.c".into()), line: None };
        let d = AddrDesc::Stack { tid: 1, below_sp: 0, frame: Some(unnamed) };
        assert!(describe(0x10, &d, &|_| String::new()).ends_with(" in frame #1, created by ??? (prog.c:)\n"));
        let nothing = StackFrame { no: 1, func: None, file: None, line: None };
        let d = AddrDesc::Stack { tid: 3, below_sp: 0, frame: Some(nothing) };
        assert_eq!(describe(0x10, &d, &|_| String::new()), " Address 0x10 is on thread 3's stack\n");
        let d = AddrDesc::Stack { tid: 1, below_sp: 608, frame: None };
        assert_eq!(describe(0x10, &d, &|_| String::new()), " Address 0x10 is on thread 1's stack\n 608 bytes below stack pointer\n");
    }

    #[test]
    fn the_frame_holding_an_address_is_between_two_stack_pointers() {
        // Frames 0..3 with stack pointers; the stack's live part starts at 0x1000 - 128.
        let sps = [0x1000, 0x1040, 0x1100, 0x1200];
        assert_eq!(frame_holding(0x1000, &sps, 0x1000, 0x2000), Some(0));
        assert_eq!(frame_holding(0x1040, &sps, 0x1000, 0x2000), Some(1));
        assert_eq!(frame_holding(0x11ff, &sps, 0x1000, 0x2000), Some(2));
        // Beyond the last frame, or below the innermost: no frame.
        assert_eq!(frame_holding(0x1200, &sps, 0x1000, 0x2000), None);
        assert_eq!(frame_holding(0xff0, &sps, 0x1000, 0x2000), None);
        // A frame reaching past the stack's end is not believed.
        assert_eq!(frame_holding(0x1150, &sps, 0x1000, 0x11ff), None);
        // Nor one starting below the live part.
        assert_eq!(frame_holding(0x1010, &sps, 0x1100, 0x2000), None);
    }

    #[test]
    fn same_kind_and_size_are_one_error() {
        let a = McError::Addr { write: false, size: 4, addr: 1, desc: AddrDesc::Unknown };
        let b = McError::Addr { write: false, size: 4, addr: 2, desc: AddrDesc::Stack { tid: 1, below_sp: 0, frame: None } };
        let c = McError::Addr { write: true, size: 4, addr: 1, desc: AddrDesc::Unknown };
        assert!(a.same_as(&b));
        assert!(!a.same_as(&c));
    }
}
