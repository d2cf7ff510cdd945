//! Messages to the user (Valgrind's `m_libcprint`): the log destination (`--log-fd`,
//! `--log-file` with `%p`/`%q{VAR}` expansion), the `==PID==` prefix of user messages and the
//! `--PID--` prefix of debug/verbose ones, verbosity (`-q`, `-v`), the start-up banner, and
//! `valgrind: ` one-line errors on stderr.
//!
//! Formatting never allocates (a panic report must get out even if the allocator is broken).
//!
//! Depends on [`crate::syscall`].

use alloc::string::String;
use core::fmt::{self, Write as _};
use core::sync::atomic::{AtomicI32, Ordering};

use crate::syscall;

/// What `--version` prints: Valgrind's `valgrind-X.Y.Z` form (scripts parse it), with our
/// version number.
pub const VERSION: &str = concat!("valgrind-", env!("CARGO_PKG_VERSION"));
/// Our own name and version, as the banner's "Using" line shows it.
pub const NAME_VERSION: &str = concat!("valgrind-rs-", env!("CARGO_PKG_VERSION"));

/// The core's own descriptors (the log) are moved to at least this number, out of the range
/// guests normally use, so that a guest closing or reusing low descriptors does not hit them.
pub const SAFE_FD_MIN: i32 = 1012;

/// Where messages go; negative = nowhere.
static LOG_FD: AtomicI32 = AtomicI32::new(2);
static PID: AtomicI32 = AtomicI32::new(0);
/// 1 by default, 0 with `-q`, +1 per `-v`.
static VERBOSITY: AtomicI32 = AtomicI32::new(1);

pub fn fd() -> i32 {
    LOG_FD.load(Ordering::Relaxed)
}

pub fn set_fd(fd: i32) {
    LOG_FD.store(fd, Ordering::Relaxed);
}

pub fn verbosity() -> i32 {
    VERBOSITY.load(Ordering::Relaxed)
}

pub fn set_verbosity(v: i32) {
    VERBOSITY.store(v, Ordering::Relaxed);
}

/// The process id shown in prefixes (asked once, then remembered).
/// Forget the cached pid: a forked child must prefix its messages with its own.
pub fn reset_pid() {
    PID.store(0, Ordering::Relaxed);
}

pub fn pid() -> i32 {
    match PID.load(Ordering::Relaxed) {
        0 => {
            let p = syscall::getpid();
            PID.store(p, Ordering::Relaxed);
            p
        }
        p => p,
    }
}

/// Kinds of messages, by prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgKind {
    /// `==PID== `: what the user asked for (banner, errors, summaries).
    User,
    /// `--PID-- `: debug and verbose output (`-v`, `-d`, `--stats=yes`).
    Debug,
}

/// Writes text to a descriptor through a fixed buffer, putting `prefix` before every line.
struct PrefixWriter {
    fd: i32,
    prefix: heapless::String<24>,
    at_line_start: bool,
    buf: [u8; 512],
    len: usize,
}

impl PrefixWriter {
    fn new(fd: i32, prefix: heapless::String<24>) -> Self {
        PrefixWriter { fd, prefix, at_line_start: true, buf: [0; 512], len: 0 }
    }

    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    fn flush(&mut self) {
        if self.fd >= 0 {
            // Nowhere to report a failing log; the message is lost either way.
            let _ = syscall::write_all(self.fd, &self.buf[..self.len]);
        }
        self.len = 0;
    }
}

impl fmt::Write for PrefixWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for piece in s.split_inclusive('\n') {
            if self.at_line_start {
                let prefix = self.prefix.clone();
                self.push(prefix.as_bytes());
            }
            self.push(piece.as_bytes());
            self.at_line_start = piece.ends_with('\n');
        }
        Ok(())
    }
}

fn prefix(kind: MsgKind) -> heapless::String<24> {
    let mut p = heapless::String::new();
    // 24 bytes hold "==" + 11 digits + "== ".
    let _ = match kind {
        MsgKind::User => write!(p, "=={}== ", pid()),
        MsgKind::Debug => write!(p, "--{}-- ", pid()),
    };
    p
}

/// Write one message (which may span lines; every line is prefixed) and a newline to the log.
pub fn message(kind: MsgKind, args: fmt::Arguments<'_>) {
    let fd = fd();
    if fd < 0 {
        return;
    }
    let mut w = PrefixWriter::new(fd, prefix(kind));
    let _ = w.write_fmt(args);
    let _ = w.write_str("\n");
    w.flush();
}

/// Write text to the log without any prefix (e.g. IR dumps that already carry their own).
pub fn raw(args: fmt::Arguments<'_>) {
    let mut w = PrefixWriter::new(fd(), heapless::String::new());
    let _ = w.write_fmt(args);
    w.flush();
}

/// Write `text` to the log as it is.
pub fn write_raw(text: &str) {
    raw(format_args!("{text}"));
}

/// Write newline-terminated `text` to the log as user messages: every line gets the `==PID== `
/// prefix (an empty line becomes `==PID== `).
pub fn user_lines(text: &str) {
    message(MsgKind::User, format_args!("{}", text.strip_suffix('\n').unwrap_or(text)));
}

/// Write `valgrind: <msg>` and a newline to stderr (errors before or instead of the run).
pub fn error_line(args: fmt::Arguments<'_>) {
    let mut w = PrefixWriter::new(2, heapless::String::try_from("valgrind: ").unwrap_or_default());
    let _ = w.write_fmt(args);
    let _ = w.write_str("\n");
    w.flush();
}

/// Write text to stderr as it is (no prefix).
pub fn stderr(args: fmt::Arguments<'_>) {
    let mut w = PrefixWriter::new(2, heapless::String::new());
    let _ = w.write_fmt(args);
    w.flush();
}

/// A user message: `==PID== ...` (like `println!`; `umsg!()` prints the empty `==PID== ` line).
#[macro_export]
macro_rules! umsg {
    () => { $crate::log::message($crate::log::MsgKind::User, format_args!("")) };
    ($($arg:tt)+) => { $crate::log::message($crate::log::MsgKind::User, format_args!($($arg)+)) };
}

/// A debug/verbose message: `--PID-- ...`. Callers decide (by verbosity or flags) whether to
/// print it.
#[macro_export]
macro_rules! dmsg {
    () => { $crate::log::message($crate::log::MsgKind::Debug, format_args!("")) };
    ($($arg:tt)+) => { $crate::log::message($crate::log::MsgKind::Debug, format_args!($($arg)+)) };
}

/// A verbose message: `--PID-- ...`, printed only with `-v`.
#[macro_export]
macro_rules! vmsg {
    ($($arg:tt)*) => {
        if $crate::log::verbosity() > 1 { $crate::dmsg!($($arg)*) }
    };
}

/// Expand a `--log-file=` name: `%p` is the process id, `%q{VAR}` the value of environment
/// variable VAR, `%%` a percent sign. The error is the second line of Valgrind's "Bad option"
/// report.
pub fn expand_log_file_name<'e>(
    template: &str,
    pid: i32,
    getenv: impl Fn(&str) -> Option<&'e str>,
) -> Result<String, String> {
    if template.is_empty() {
        return Err(String::from("No filename given"));
    }
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        match rest.as_bytes().first() {
            Some(b'%') => {
                out.push('%');
                rest = &rest[1..];
            }
            Some(b'p') => {
                let _ = write!(out, "{pid}");
                rest = &rest[1..];
            }
            Some(b'q') => {
                rest = rest[1..]
                    .strip_prefix('{')
                    .ok_or_else(|| String::from("Expected '{' after '%q'"))?;
                let end = rest.find('}').ok_or_else(|| String::from("Missing '}' in %q specifier"))?;
                let var = &rest[..end];
                let val = getenv(var)
                    .ok_or_else(|| alloc::format!("Environment variable '{var}' is not set"))?;
                out.push_str(val);
                rest = &rest[end + 1..];
            }
            _ => return Err(String::from("Expected 'p' or 'q' or '%' after '%'")),
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Look `name` up in an environment given as `NAME=value` strings.
pub fn getenv<'e>(envp: &[&'e str], name: &str) -> Option<&'e str> {
    envp.iter().find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Send the log to descriptor `fd` (a copy of it in the safe range, if the descriptor limit
/// leaves room there). Returns false, and logs to stderr instead, if `fd` is not open. A
/// negative `fd` silences the log.
pub fn use_fd(fd: i32) -> bool {
    if fd < 0 {
        set_fd(-1);
        return true;
    }
    match syscall::dup_min(fd, SAFE_FD_MIN) {
        Ok(safe) => {
            set_fd(safe);
            true
        }
        Err(syscall::Errno::EBADF) => {
            set_fd(syscall::dup_min(2, SAFE_FD_MIN).unwrap_or(2));
            false
        }
        // Open, but the limit leaves no room above SAFE_FD_MIN: use it where it is.
        Err(_) => {
            set_fd(fd);
            true
        }
    }
}

/// Create (truncate) the log file `name` and send the log there.
pub fn use_file(name: &str) -> Result<(), syscall::Errno> {
    let fd = syscall::open(
        name,
        syscall::O_WRONLY | syscall::O_CREAT | syscall::O_TRUNC | syscall::O_CLOEXEC,
        0o600,
    )?;
    match syscall::dup_min(fd, SAFE_FD_MIN) {
        Ok(safe) => {
            let _ = syscall::close(fd);
            set_fd(safe);
        }
        Err(_) => set_fd(fd),
    }
    Ok(())
}

/// The start-up banner (unless `-q`): the tool's name and copyright, our version, the command,
/// and an empty line.
pub fn print_banner(tool_banner: &str, tool_copyright: &str, command: &[&str]) {
    if verbosity() < 1 {
        return;
    }
    crate::umsg!("{tool_banner}");
    crate::umsg!("{tool_copyright}");
    crate::umsg!("Using {NAME_VERSION} and its own JIT; rerun with -h for copyright info");
    let mut w = PrefixWriter::new(fd(), prefix(MsgKind::User));
    let _ = w.write_str("Command:");
    for a in command {
        let _ = write!(w, " {a}");
    }
    let _ = w.write_str("\n");
    w.flush();
    crate::umsg!();
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn env(name: &str) -> Option<&'static str> {
        match name {
            "HOME" => Some("/home/u"),
            "EMPTY" => Some(""),
            _ => None,
        }
    }

    #[test]
    fn expands_pid_env_and_percent() {
        assert_eq!(expand_log_file_name("log.%p", 42, env).unwrap(), "log.42");
        assert_eq!(expand_log_file_name("%q{HOME}/v-%p.txt", 7, env).unwrap(), "/home/u/v-7.txt");
        assert_eq!(expand_log_file_name("a%%b%q{EMPTY}c", 1, env).unwrap(), "a%bc");
        assert_eq!(expand_log_file_name("plain", 1, env).unwrap(), "plain");
    }

    #[test]
    fn bad_log_file_names() {
        assert_eq!(expand_log_file_name("", 1, env).unwrap_err(), "No filename given");
        assert_eq!(expand_log_file_name("x%q", 1, env).unwrap_err(), "Expected '{' after '%q'");
        assert_eq!(expand_log_file_name("x%q{HOME", 1, env).unwrap_err(), "Missing '}' in %q specifier");
        assert_eq!(
            expand_log_file_name("x%q{NOPE}", 1, env).unwrap_err(),
            "Environment variable 'NOPE' is not set"
        );
        assert_eq!(expand_log_file_name("x%z", 1, env).unwrap_err(), "Expected 'p' or 'q' or '%' after '%'");
        assert_eq!(expand_log_file_name("x%", 1, env).unwrap_err(), "Expected 'p' or 'q' or '%' after '%'");
    }

    #[test]
    fn getenv_matches_whole_name() {
        let e = ["HOMEX=1", "HOME=/h", "A="];
        assert_eq!(getenv(&e, "HOME"), Some("/h"));
        assert_eq!(getenv(&e, "A"), Some(""));
        assert_eq!(getenv(&e, "HOM"), None);
    }

    /// The only test that redirects the (process-wide) log.
    #[test]
    fn user_lines_and_raw_go_to_the_log() {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 writes two descriptors into `fds`.
        unsafe { syscalls::syscall!(syscalls::Sysno::pipe2, fds.as_mut_ptr(), 0) }.unwrap();
        let old = fd();
        set_fd(fds[1]);
        user_lines("\nProcess terminating\n   at 0x1\n");
        write_raw("raw text\n");
        crate::dmsg!("d {}", 1);
        set_fd(old);
        let mut buf = [0u8; 512];
        let n = syscall::read(fds[0], &mut buf).unwrap();
        let pid = std::process::id();
        assert_eq!(
            core::str::from_utf8(&buf[..n]).unwrap(),
            std::format!("=={pid}== \n=={pid}== Process terminating\n=={pid}==    at 0x1\nraw text\n--{pid}-- d 1\n")
        );
        syscall::close(fds[0]).unwrap();
        syscall::close(fds[1]).unwrap();
    }

    #[test]
    fn prefix_writer_prefixes_every_line() {
        // Write through a pipe and read back what a multi-line message looks like.
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 writes two descriptors into `fds`.
        unsafe { syscalls::syscall!(syscalls::Sysno::pipe2, fds.as_mut_ptr(), 0) }.unwrap();
        let mut w = PrefixWriter::new(fds[1], prefix(MsgKind::User));
        write!(w, "a\nb\n\nc").unwrap();
        w.write_str("\n").unwrap();
        w.flush();
        let mut buf = [0u8; 256];
        let n = syscall::read(fds[0], &mut buf).unwrap();
        let p = std::format!("=={}== ", std::process::id());
        let expect = std::format!("{p}a\n{p}b\n{p}\n{p}c\n");
        assert_eq!(core::str::from_utf8(&buf[..n]).unwrap(), expect);
        let long = "x".repeat(2000);
        let mut w = PrefixWriter::new(fds[1], prefix(MsgKind::Debug));
        w.write_str(&long).unwrap();
        w.flush();
        let mut got = std::string::String::new();
        while got.len() < long.len() + p.len() {
            let n = syscall::read(fds[0], &mut buf).unwrap();
            got.push_str(core::str::from_utf8(&buf[..n]).unwrap());
        }
        assert_eq!(got, std::format!("--{}-- {long}", std::process::id()));
        syscall::close(fds[0]).unwrap();
        syscall::close(fds[1]).unwrap();
    }
}
