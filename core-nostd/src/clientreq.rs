//! Client requests (Valgrind's `m_clientstate`/the scheduler's request handling): what the
//! magic sequences of the real `valgrind.h` ask of the core. The front end ends a block at a
//! request (`JumpKind::ClientReq`) or at a call-without-redirection (`JumpKind::NoRedir`); the
//! scheduler hands both here. Requests the core does not know go to the tool
//! ([`Tool::handle_client_request`]); unknown ones keep the macro's default result.
//!
//! Uses: `arch`, `aspace` (every guest read is vetted), `stacks` (backtraces, source
//! locations, registered stacks), `transtab` (discarding), `reportopts` (`CLO_CHANGE`),
//! `threads`, `log`, `translate` (the no-redirection tag).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::arch::{DispatchAddrs, GuestArch, HostArch};
use crate::tool::Tool;
use crate::transtab::TransTab;

/// Request codes of `valgrind.h`.
pub mod code {
    pub const RUNNING_ON_VALGRIND: u64 = 0x1001;
    pub const DISCARD_TRANSLATIONS: u64 = 0x1002;
    pub const CLIENT_CALL0: u64 = 0x1101;
    pub const CLIENT_CALL1: u64 = 0x1102;
    pub const CLIENT_CALL2: u64 = 0x1103;
    pub const CLIENT_CALL3: u64 = 0x1104;
    pub const COUNT_ERRORS: u64 = 0x1201;
    pub const GDB_MONITOR_COMMAND: u64 = 0x1202;
    pub const CLO_CHANGE: u64 = 0x1203;
    pub const PRINTF: u64 = 0x1401;
    pub const PRINTF_BACKTRACE: u64 = 0x1402;
    pub const PRINTF_VALIST_BY_REF: u64 = 0x1403;
    pub const PRINTF_BACKTRACE_VALIST_BY_REF: u64 = 0x1404;
    pub const STACK_REGISTER: u64 = 0x1501;
    pub const STACK_DEREGISTER: u64 = 0x1502;
    pub const STACK_CHANGE: u64 = 0x1503;
    pub const MAP_IP_TO_SRCLOC: u64 = 0x1701;
    pub const CHANGE_ERR_DISABLEMENT: u64 = 0x1801;
}

// ---------------------------------------------------------------------------------------------
// Guest memory, vetted by the address-space manager.

fn guest_u64(addr: u64) -> Option<u64> {
    // SAFETY: read only after the manager says 8 bytes at addr are readable client memory.
    crate::aspace::is_client_readable(addr, 8).then(|| unsafe { core::ptr::read_unaligned(addr as *const u64) })
}

fn guest_u32(addr: u64) -> Option<u32> {
    // SAFETY: as for guest_u64, 4 bytes.
    crate::aspace::is_client_readable(addr, 4).then(|| unsafe { core::ptr::read_unaligned(addr as *const u32) })
}

/// The NUL-terminated guest string at `addr` (at most `max` bytes; lossy UTF-8), if readable.
fn guest_str(addr: u64, max: usize) -> Option<String> {
    let n = crate::aspace::readable_extent(addr, max as u64) as usize;
    if n == 0 {
        return None;
    }
    // SAFETY: [addr, addr+n) is readable client memory (checked above).
    let bytes = unsafe { core::slice::from_raw_parts(addr as *const u8, n) };
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(n);
    Some(String::from_utf8_lossy(&bytes[..len]).into_owned())
}

// ---------------------------------------------------------------------------------------------
// printf over a guest va_list.

/// The guest's amd64 `va_list` (System V ABI): integer arguments from the register save area
/// until `gp_offset` reaches 48, floating-point ones until `fp_offset` reaches 176, then from
/// the overflow area.
pub struct GuestVaList {
    gp_offset: u32,
    fp_offset: u32,
    overflow: u64,
    reg_save: u64,
}

impl GuestVaList {
    /// Reads the `va_list` at guest address `addr`.
    pub fn read(addr: u64) -> Option<GuestVaList> {
        Some(GuestVaList {
            gp_offset: guest_u32(addr)?,
            fp_offset: guest_u32(addr + 4)?,
            overflow: guest_u64(addr + 8)?,
            reg_save: guest_u64(addr + 16)?,
        })
    }
}

/// Where printf arguments come from.
pub trait VaArgs {
    fn next_int(&mut self) -> u64;
    fn next_double(&mut self) -> f64;
    /// A string argument (`None` for a null or unreadable pointer).
    fn next_str(&mut self) -> Option<String>;
}

impl VaArgs for GuestVaList {
    fn next_int(&mut self) -> u64 {
        let at = if self.gp_offset < 48 {
            self.gp_offset += 8;
            self.reg_save + u64::from(self.gp_offset) - 8
        } else {
            self.overflow += 8;
            self.overflow - 8
        };
        guest_u64(at).unwrap_or(0)
    }
    fn next_double(&mut self) -> f64 {
        let at = if self.fp_offset < 176 {
            self.fp_offset += 16;
            self.reg_save + u64::from(self.fp_offset) - 16
        } else {
            self.overflow += 8;
            self.overflow - 8
        };
        f64::from_bits(guest_u64(at).unwrap_or(0))
    }
    fn next_str(&mut self) -> Option<String> {
        match self.next_int() {
            0 => None,
            p => guest_str(p, 4096),
        }
    }
}

fn pad(out: &mut String, body: &str, width: usize, left: bool, zero: bool) {
    let n = body.chars().count();
    if n >= width {
        out.push_str(body);
    } else if left {
        out.push_str(body);
        out.extend(core::iter::repeat_n(' ', width - n));
    } else if zero {
        // Zeros go after a sign or 0x prefix.
        let split = if body.starts_with("0x") || body.starts_with("0X") {
            2
        } else if body.starts_with(['-', '+', ' ']) {
            1
        } else {
            0
        };
        out.push_str(&body[..split]);
        out.extend(core::iter::repeat_n('0', width - n));
        out.push_str(&body[split..]);
    } else {
        out.extend(core::iter::repeat_n(' ', width - n));
        out.push_str(body);
    }
}

/// C `printf` formatting of `fmt` with arguments from `args`: flags `-0+ #`, width and
/// precision (also `*`), length modifiers `hh h l ll z j t L` and conversions
/// `d i u o x X c s p f F e E g G %` (`e`/`g` are rendered in fixed or exponent form as Rust's
/// formatter gives them).
pub fn format_c(fmt: &str, args: &mut dyn VaArgs) -> String {
    let mut out = String::new();
    let b = fmt.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            let start = i;
            while i < b.len() && b[i] != b'%' {
                i += 1;
            }
            out.push_str(&fmt[start..i]);
            continue;
        }
        i += 1;
        let (mut left, mut zero, mut plus, mut space, mut alt) = (false, false, false, false, false);
        while i < b.len() {
            match b[i] {
                b'-' => left = true,
                b'0' => zero = true,
                b'+' => plus = true,
                b' ' => space = true,
                b'#' => alt = true,
                _ => break,
            }
            i += 1;
        }
        let mut width = 0usize;
        if i < b.len() && b[i] == b'*' {
            let w = args.next_int() as i32;
            if w < 0 {
                left = true;
            }
            width = w.unsigned_abs() as usize;
            i += 1;
        }
        while i < b.len() && b[i].is_ascii_digit() {
            width = width * 10 + usize::from(b[i] - b'0');
            i += 1;
        }
        let mut prec: Option<usize> = None;
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let mut p = 0usize;
            if i < b.len() && b[i] == b'*' {
                p = (args.next_int() as i32).max(0) as usize;
                i += 1;
            }
            while i < b.len() && b[i].is_ascii_digit() {
                p = p * 10 + usize::from(b[i] - b'0');
                i += 1;
            }
            prec = Some(p);
        }
        // Length: bytes of the integer argument (8 for l, ll, z, j, t).
        let mut bytes = 4;
        while i < b.len() && matches!(b[i], b'h' | b'l' | b'z' | b'j' | b't' | b'L' | b'q') {
            bytes = match b[i] {
                b'h' if bytes == 2 => 1,
                b'h' => 2,
                _ => 8,
            };
            i += 1;
        }
        let Some(&conv) = b.get(i) else { break };
        i += 1;
        let sign = |neg: bool| if neg { "-" } else if plus { "+" } else if space { " " } else { "" };
        let body = match conv {
            b'd' | b'i' => {
                let raw = args.next_int();
                let v: i64 = match bytes {
                    1 => raw as i8 as i64,
                    2 => raw as i16 as i64,
                    4 => raw as i32 as i64,
                    _ => raw as i64,
                };
                let digits = with_precision(alloc::format!("{}", v.unsigned_abs()), prec);
                alloc::format!("{}{digits}", sign(v < 0))
            }
            b'u' | b'o' | b'x' | b'X' => {
                let raw = args.next_int();
                let v = match bytes {
                    1 => raw & 0xff,
                    2 => raw & 0xffff,
                    4 => raw & 0xffff_ffff,
                    _ => raw,
                };
                let digits = match conv {
                    b'u' => alloc::format!("{v}"),
                    b'o' => alloc::format!("{v:o}"),
                    b'x' => alloc::format!("{v:x}"),
                    _ => alloc::format!("{v:X}"),
                };
                let digits = with_precision(digits, prec);
                match conv {
                    b'x' if alt && v != 0 => alloc::format!("0x{digits}"),
                    b'X' if alt && v != 0 => alloc::format!("0X{digits}"),
                    b'o' if alt && !digits.starts_with('0') => alloc::format!("0{digits}"),
                    _ => digits,
                }
            }
            b'p' => alloc::format!("0x{:x}", args.next_int()),
            b'c' => String::from(char::from(args.next_int() as u8)),
            b's' => {
                let s = args.next_str().unwrap_or_else(|| String::from("(null)"));
                match prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                }
            }
            b'f' | b'F' | b'e' | b'E' | b'g' | b'G' => {
                let v = args.next_double();
                let p = prec.unwrap_or(6);
                let s = match conv {
                    b'e' => alloc::format!("{:.*e}", p, v.abs()),
                    b'E' => alloc::format!("{:.*E}", p, v.abs()),
                    _ => alloc::format!("{:.*}", p, v.abs()),
                };
                alloc::format!("{}{s}", sign(v.is_sign_negative() && v != 0.0))
            }
            b'%' => String::from("%"),
            other => {
                // Unknown conversion: shown as written.
                let mut s = String::from("%");
                s.push(char::from(other));
                s
            }
        };
        let zero = zero && !left && (prec.is_none() || matches!(conv, b'f' | b'F' | b'e' | b'E' | b'g' | b'G'));
        pad(&mut out, &body, width, left, zero && conv != b's' && conv != b'c');
    }
    out
}

fn with_precision(digits: String, prec: Option<usize>) -> String {
    match prec {
        Some(0) if digits == "0" => String::new(),
        Some(p) if digits.len() < p => {
            let mut s: String = core::iter::repeat_n('0', p - digits.len()).collect();
            s.push_str(&digits);
            s
        }
        _ => digits,
    }
}

/// Whether the client-message stream is at the start of a line (messages may span calls).
static AT_LINE_START: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(true);

/// Writes client text with the `**PID** ` prefix at the start of every line.
fn client_message(text: &str) {
    let mut s = String::new();
    let mut start = AT_LINE_START.load(core::sync::atomic::Ordering::Relaxed);
    for piece in text.split_inclusive('\n') {
        if start {
            let _ = write!(s, "**{}** ", crate::log::pid());
        }
        s.push_str(piece);
        start = piece.ends_with('\n');
    }
    AT_LINE_START.store(start, core::sync::atomic::Ordering::Relaxed);
    crate::log::write_raw(&s);
}

// ---------------------------------------------------------------------------------------------
// Running under ourselves.

/// The result of `RUNNING_ON_VALGRIND` as the real CPU (or an outer instrumentation framework)
/// answers it for the core itself: 0 natively, the outer level's count under one.
#[cfg(target_arch = "x86_64")]
fn outer_running_on_valgrind() -> u64 {
    let args: [u64; 6] = [code::RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0];
    let mut result: u64 = 0;
    // SAFETY: the magic sequence is a no-op on a real CPU (four rotations of rdi by 128 bits in
    // all, and an exchange of rbx with itself); an outer framework reads the six words at rax
    // and writes its answer to rdx. Flags are clobbered.
    unsafe {
        core::arch::asm!(
            "rol rdi, 3", "rol rdi, 13", "rol rdi, 61", "rol rdi, 51", "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") result,
            inout("rdi") 0u64 => _,
        );
    }
    result
}

#[cfg(not(target_arch = "x86_64"))]
fn outer_running_on_valgrind() -> u64 {
    0
}

// ---------------------------------------------------------------------------------------------
// Per-thread error-reporting disablement (CHANGE_ERR_DISABLEMENT).

static ERR_DISABLED: spin::Mutex<Vec<(usize, u64)>> = spin::Mutex::new(Vec::new());

/// Whether the client disabled error reporting for the guest thread in `slot`
/// (`VALGRIND_DISABLE_ERROR_REPORTING`, nestable).
pub fn error_reporting_disabled(slot: usize) -> bool {
    ERR_DISABLED.lock().iter().any(|&(s, n)| s == slot && n > 0)
}

fn change_err_disablement(slot: usize, delta: i64) {
    let mut t = ERR_DISABLED.lock();
    match t.iter_mut().find(|e| e.0 == slot) {
        Some(e) => e.1 = (e.1 as i64 + delta).max(0) as u64,
        None if delta > 0 => t.push((slot, delta as u64)),
        None => {}
    }
}

// ---------------------------------------------------------------------------------------------

/// Unknown request codes already warned about.
static WARNED: spin::Mutex<Vec<u64>> = spin::Mutex::new(Vec::new());

fn warn_unknown(req: u64) {
    if crate::log::verbosity() <= 2 {
        return;
    }
    let mut w = WARNED.lock();
    if w.contains(&req) {
        return;
    }
    w.push(req);
    let tool = [(req >> 24) as u8, (req >> 16) as u8].map(|c| if c.is_ascii_graphic() { char::from(c) } else { '?' });
    crate::umsg!("Warning: client request 0x{req:x} (tool code '{}{}', request 0x{:x}) is handled", tool[0], tool[1], req & 0xffff);
    crate::umsg!("   by neither the core nor this tool; the request's default result is used.");
}

/// A native call of guest code for `NON_SIMD_CALLn`: `f(tid, a1, a2, a3)` on the real CPU.
fn call_native(f: u64, tid: u64, a: [u64; 3]) -> u64 {
    // SAFETY: the client asked for this function to run on the real CPU (that is what the
    // request means); it follows the C calling convention with four word arguments.
    let f: extern "C" fn(u64, u64, u64, u64) -> u64 = unsafe { core::mem::transmute(f as usize) };
    f(tid, a[0], a[1], a[2])
}

fn print_backtrace<G: GuestArch>(st: &[u8]) {
    crate::log::user_lines(&crate::stacks::format_state_trace::<G>(st));
}

/// Services the client request of the guest state `st` (its pc is already past the sequence).
pub fn handle<G: GuestArch, H: HostArch, T: Tool>(st: &mut [u8], tool: &mut T, tt: &mut TransTab, disp: &DispatchAddrs) {
    let (argp, default) = G::client_request(st);
    let mut args = [0u64; 6];
    for (k, a) in args.iter_mut().enumerate() {
        match guest_u64(argp + 8 * k as u64) {
            Some(v) => *a = v,
            // An argument block the client cannot read: nothing to do.
            None => return,
        }
    }
    let slot = crate::threads::current_slot();
    let result = match args[0] {
        code::RUNNING_ON_VALGRIND => 1 + outer_running_on_valgrind(),
        code::DISCARD_TRANSLATIONS => {
            tt.discard_range::<H>(args[1], args[2], disp);
            0
        }
        code::CLIENT_CALL0 | code::CLIENT_CALL1 | code::CLIENT_CALL2 | code::CLIENT_CALL3 => {
            let n = (args[0] - code::CLIENT_CALL0) as usize;
            let mut a = [0u64; 3];
            a[..n].copy_from_slice(&args[2..2 + n]);
            call_native(args[1], slot as u64 + 1, a)
        }
        // The tool keeps the errors; one that reports none has counted none.
        code::COUNT_ERRORS => tool.handle_client_request(&args).unwrap_or(0),
        // No gdbserver: the command is not recognised.
        code::GDB_MONITOR_COMMAND => 1,
        code::CLO_CHANGE => {
            if let Some(opt) = guest_str(args[1], 1024)
                && let Err(why) = crate::reportopts::change_dynamic(&opt)
            {
                crate::umsg!("{why}");
            }
            default
        }
        code::PRINTF | code::PRINTF_VALIST_BY_REF | code::PRINTF_BACKTRACE | code::PRINTF_BACKTRACE_VALIST_BY_REF => {
            // The plain forms pass the va_list by value, which for amd64's array-typed va_list
            // is its address too.
            let text = match (guest_str(args[1], 64 * 1024), GuestVaList::read(args[2])) {
                (Some(fmt), Some(mut va)) => format_c(&fmt, &mut va),
                (Some(fmt), None) => fmt,
                (None, _) => String::new(),
            };
            client_message(&text);
            if matches!(args[0], code::PRINTF_BACKTRACE | code::PRINTF_BACKTRACE_VALIST_BY_REF) {
                print_backtrace::<G>(st);
            }
            text.len() as u64
        }
        code::STACK_REGISTER => crate::stacks::register_stack(args[1], args[2]),
        code::STACK_DEREGISTER => {
            crate::stacks::deregister_stack(args[1]);
            0
        }
        code::STACK_CHANGE => {
            crate::stacks::change_stack(args[1], args[2], args[3]);
            0
        }
        code::MAP_IP_TO_SRCLOC => {
            map_ip_to_srcloc(args[1], args[2]);
            0
        }
        code::CHANGE_ERR_DISABLEMENT => {
            change_err_disablement(slot, args[1] as i64);
            0
        }
        _ => match tool.handle_client_request(&args) {
            Some(v) => v,
            None => {
                warn_unknown(args[0]);
                default
            }
        },
    };
    G::set_client_request_result(st, result);
}

/// `VALGRIND_MAP_IP_TO_SRCLOC`: "file:line" (or an empty string) into the 64-byte guest buffer.
fn map_ip_to_srcloc(ip: u64, buf: u64) {
    if !crate::aspace::aspace().is_client_writable(buf, 64) {
        return;
    }
    let frames = crate::stacks::describe_ip(ip);
    let text = match frames.first() {
        Some(f) => match (&f.file, f.line) {
            (Some(file), Some(line)) => alloc::format!("{file}:{line}"),
            _ => String::new(),
        },
        None => String::new(),
    };
    let n = text.len().min(63);
    // SAFETY: 64 writable bytes of client memory at buf (checked above).
    unsafe {
        core::ptr::copy_nonoverlapping(text.as_ptr(), buf as *mut u8, n);
        core::ptr::write_bytes((buf + n as u64) as *mut u8, 0, 64 - n);
    }
}

/// `JumpKind::NoRedir`: the pc is the target of a call that must not be redirected (a
/// wrapper calling its original). Tag it so that the next translation is made without
/// redirection (see [`crate::translate::NOREDIR_TAG`]).
pub fn call_noredir<G: GuestArch>(st: &mut [u8]) {
    let pc = G::pc(st);
    let o = G::PC_OFFSET as usize;
    st[o..o + 8].copy_from_slice(&(pc | crate::translate::NOREDIR_TAG).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use alloc::vec;

    enum Arg {
        I(u64),
        F(f64),
        S(Option<&'static str>),
    }

    struct Fake(VecDeque<Arg>);

    impl VaArgs for Fake {
        fn next_int(&mut self) -> u64 {
            match self.0.pop_front() {
                Some(Arg::I(v)) => v,
                _ => panic!("expected an integer argument"),
            }
        }
        fn next_double(&mut self) -> f64 {
            match self.0.pop_front() {
                Some(Arg::F(v)) => v,
                _ => panic!("expected a double argument"),
            }
        }
        fn next_str(&mut self) -> Option<String> {
            match self.0.pop_front() {
                Some(Arg::S(s)) => s.map(String::from),
                _ => panic!("expected a string argument"),
            }
        }
    }

    fn f(fmt: &str, args: Vec<Arg>) -> String {
        format_c(fmt, &mut Fake(args.into()))
    }

    #[test]
    fn integers() {
        use Arg::I;
        assert_eq!(f("%d|%i|%u", vec![I(-5i64 as u64), I(7), I(u64::MAX)]), "-5|7|4294967295");
        assert_eq!(f("%ld %lu", vec![I(-5i64 as u64), I(123456789012)]), "-5 123456789012");
        assert_eq!(f("%5d|%-5d|%05d|%+d", vec![I(42), I(42), I(-42i64 as u64), I(3)]), "   42|42   |-0042|+3");
        assert_eq!(f("%x %X %#x %o %#o", vec![I(255), I(255), I(255), I(8), I(8)]), "ff FF 0xff 10 010");
        assert_eq!(f("%.3d|%hhu|%hd", vec![I(7), I(0x1ff), I(0x18000)]), "007|255|-32768");
        assert_eq!(f("%*d|%-*d|", vec![I(4), I(1), I(3), I(2)]), "   1|2  |");
        assert_eq!(f("%p %%", vec![I(0x1234)]), "0x1234 %");
    }

    #[test]
    fn strings_chars_floats() {
        use Arg::{F, I, S};
        assert_eq!(f("[%s] [%5s] [%-5s] [%.2s]", vec![S(Some("ab")), S(Some("ab")), S(Some("ab")), S(Some("abc"))]), "[ab] [   ab] [ab   ] [ab]");
        assert_eq!(f("%s", vec![S(None)]), "(null)");
        assert_eq!(f("%c%c", vec![I(b'o' as u64), I(b'k' as u64)]), "ok");
        assert_eq!(f("%5.2f|%f|%.0f|%08.3f", vec![F(3.25), F(-1.5), F(2.5), F(-3.14159)]), " 3.25|-1.500000|2|-003.142");
        assert_eq!(f("no args\n", vec![]), "no args\n");
        assert_eq!(f("%y|%", vec![]), "%y|");
    }
}
