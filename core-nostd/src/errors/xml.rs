//! XML output, protocol 4 (`--xml=yes`): the document's parts written as text in order
//! (header, preamble, pid/ppid/tool, args, status, errors, error counts, suppression counts,
//! footer), and the sink they go to (`--xml-file=` or `--xml-fd=`): the caller sends each part
//! to the sink as it is produced.
//!
//! Uses [`crate::syscall`] (the sink, the clock, the parent's pid).

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use crate::debuginfo::FrameDesc;
use crate::reportopts::XmlDest;
use crate::syscall;

/// The sink's descriptor; negative: no XML output.
static SINK: AtomicI32 = AtomicI32::new(-1);
/// When the sink was opened (monotonic nanoseconds): `<time>` counts from there.
static START_NS: AtomicU64 = AtomicU64::new(0);

fn monotonic_ns() -> u64 {
    const CLOCK_MONOTONIC: usize = 1;
    let mut ts = [0i64; 2];
    // SAFETY: `ts` is a writable timespec (two 64-bit words) that outlives the call.
    let r = unsafe { syscalls::syscall!(syscall::Sysno::clock_gettime, CLOCK_MONOTONIC, ts.as_mut_ptr()) };
    r.map_or(0, |_| ts[0] as u64 * 1_000_000_000 + ts[1] as u64)
}

/// Opens the XML destination (a file is created or truncated; a descriptor is used as it
/// is). The error is the message to give the user.
pub fn open_sink(dest: &XmlDest) -> Result<(), String> {
    let fd = match dest {
        XmlDest::Fd(fd) => *fd,
        XmlDest::File(name) => {
            let flags = syscall::O_WRONLY | syscall::O_CREAT | syscall::O_TRUNC | syscall::O_CLOEXEC;
            let fd = syscall::open(name, flags, 0o600)
                .map_err(|e| format!("Can't create XML file '{name}' ({})", syscall::strerror(e)))?;
            // Out of the guest's usual range, as the log is.
            match syscall::dup_min(fd, crate::log::SAFE_FD_MIN) {
                Ok(safe) => {
                    let _ = syscall::close(fd);
                    safe
                }
                Err(_) => fd,
            }
        }
    };
    START_NS.store(monotonic_ns(), Ordering::Relaxed);
    SINK.store(fd, Ordering::Relaxed);
    Ok(())
}

/// Whether XML output is on (the sink is open).
pub fn enabled() -> bool {
    SINK.load(Ordering::Relaxed) >= 0
}

/// Writes a part of the document to the sink.
pub fn write(text: &str) {
    let fd = SINK.load(Ordering::Relaxed);
    if fd >= 0 {
        let _ = syscall::write_all(fd, text.as_bytes());
    }
}

/// The time since the sink was opened as `<time>` shows it: `days:hours:minutes:seconds.millis `.
pub fn elapsed() -> String {
    let ms = monotonic_ns().saturating_sub(START_NS.load(Ordering::Relaxed)) / 1_000_000;
    let (s, ms) = (ms / 1000, ms % 1000);
    format!("{:02}:{:02}:{:02}:{:02}.{ms:03} ", s / 86400, s / 3600 % 24, s / 60 % 60, s % 60)
}

/// The parent process's id, for `<ppid>`.
pub fn ppid() -> u32 {
    // SAFETY: no arguments, no memory effects.
    unsafe { syscalls::syscall!(syscall::Sysno::getppid) }.map_or(0, |p| p as u32)
}

/// Escapes text for element content: `&`, `<` and `>`, as Valgrind does (quotes need no
/// escaping outside attributes).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // Control characters are not allowed in XML 1.0 text.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

fn elem(out: &mut String, indent: &str, tag: &str, text: &str) {
    out.push_str(&format!("{indent}<{tag}>{}</{tag}>\n", escape(text)));
}

/// `<?xml ...?>`, `<valgrindoutput>`, protocol version 4 and the tool (lower-case name).
pub fn header(protocol_tool: &str) -> String {
    let mut s = String::from("<?xml version=\"1.0\"?>\n\n<valgrindoutput>\n\n<protocolversion>4</protocolversion>\n");
    elem(&mut s, "", "protocoltool", protocol_tool);
    s.push('\n');
    s
}

/// The preamble lines, pid, ppid and tool name.
pub fn preamble(lines: &[&str], pid: u32, ppid: u32, tool: &str) -> String {
    let mut s = String::from("<preamble>\n");
    for l in lines {
        elem(&mut s, "  ", "line", l);
    }
    s.push_str("</preamble>\n\n");
    s.push_str(&format!("<pid>{pid}</pid>\n<ppid>{ppid}</ppid>\n"));
    elem(&mut s, "", "tool", tool);
    s.push('\n');
    s
}

/// `<args>`: the framework's command line (`vargv`) and the client's (`argv`), each an
/// executable then its arguments.
pub fn args(vexe: &str, vargs: &[&str], exe: &str, cargs: &[&str]) -> String {
    let mut s = String::from("<args>\n");
    for (tag, e, a) in [("vargv", vexe, vargs), ("argv", exe, cargs)] {
        s.push_str(&format!("  <{tag}>\n"));
        elem(&mut s, "    ", "exe", e);
        for x in a {
            elem(&mut s, "    ", "arg", x);
        }
        s.push_str(&format!("  </{tag}>\n"));
    }
    s.push_str("</args>\n\n");
    s
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Running,
    Finished,
}

/// `<status>` with the state and a human-readable time.
pub fn status(state: RunState, time: &str) -> String {
    let st = match state {
        RunState::Running => "RUNNING",
        RunState::Finished => "FINISHED",
    };
    let mut s = format!("<status>\n  <state>{st}</state>\n");
    elem(&mut s, "  ", "time", time);
    s.push_str("</status>\n\n");
    s
}

/// A `<stack>` of frames.
pub fn stack(frames: &[FrameDesc]) -> String {
    let mut s = String::from("  <stack>\n");
    for f in frames {
        s.push_str("    <frame>\n");
        s.push_str(&format!("      <ip>0x{:X}</ip>\n", f.ip));
        let fields = [("obj", f.obj.as_deref()), ("fn", f.func.as_deref()), ("dir", f.dir.as_deref()), ("file", f.file.as_deref())];
        for (tag, v) in fields {
            if let Some(v) = v {
                elem(&mut s, "      ", tag, v);
            }
        }
        if let Some(l) = f.line {
            s.push_str(&format!("      <line>{l}</line>\n"));
        }
        s.push_str("    </frame>\n");
    }
    s.push_str("  </stack>\n");
    s
}

/// The primary description: plain `<what>` or `<xwhat>` with extra tagged content.
#[derive(Clone, Copy, Debug)]
pub enum What<'a> {
    Plain(&'a str),
    /// The text and pre-rendered extra elements (already XML).
    Extended { text: &'a str, extra_xml: &'a str },
}

/// The suppression that would hide an error, for `<suppression>` inside it.
#[derive(Clone, Copy, Debug)]
pub struct XmlSuppression<'a> {
    pub name: &'a str,
    /// `Tool:Kind`.
    pub kind: &'a str,
    pub aux: Option<&'a str>,
    pub frames: &'a [FrameDesc],
    /// The suppression as `--gen-suppressions` prints it, for `<rawtext>`.
    pub raw: &'a str,
}

/// One `<error>`.
#[derive(Clone, Copy, Debug)]
pub struct XmlError<'a> {
    pub unique: u64,
    pub tid: u32,
    pub kind: &'a str,
    pub what: What<'a>,
    pub stack: &'a [FrameDesc],
    /// Tool-specific elements after the stack (already XML: `<auxwhat>`, another stack, ...).
    pub tool_xml: &'a str,
    pub suppression: Option<XmlSuppression<'a>>,
}

pub fn error(e: &XmlError<'_>) -> String {
    let mut s = String::from("<error>\n");
    s.push_str(&format!("  <unique>0x{:x}</unique>\n  <tid>{}</tid>\n", e.unique, e.tid));
    elem(&mut s, "  ", "kind", e.kind);
    match e.what {
        What::Plain(t) => elem(&mut s, "  ", "what", t),
        What::Extended { text, extra_xml } => {
            s.push_str("  <xwhat>\n");
            elem(&mut s, "    ", "text", text);
            s.push_str(extra_xml);
            s.push_str("  </xwhat>\n");
        }
    }
    s.push_str(&stack(e.stack));
    s.push_str(e.tool_xml);
    if let Some(sp) = &e.suppression {
        s.push_str("  <suppression>\n");
        elem(&mut s, "    ", "sname", sp.name);
        elem(&mut s, "    ", "skind", sp.kind);
        if let Some(a) = sp.aux {
            elem(&mut s, "    ", "skaux", a);
        }
        for f in sp.frames {
            match (&f.mangled, &f.obj) {
                (Some(n), _) => s.push_str(&format!("    <sframe> <fun>{}</fun> </sframe>\n", escape(n))),
                (None, Some(o)) => s.push_str(&format!("    <sframe> <obj>{}</obj> </sframe>\n", escape(o))),
                (None, None) => s.push_str("    <sframe> <obj>*</obj> </sframe>\n"),
            }
        }
        // CDATA cannot hold "]]>"; a suppression's text never has it, but stay well-formed.
        s.push_str("    <rawtext>\n<![CDATA[\n");
        s.push_str(&sp.raw.replace("]]>", "]]]]><![CDATA[>"));
        s.push_str("]]>\n    </rawtext>\n");
        s.push_str("  </suppression>\n");
    }
    s.push_str("</error>\n\n");
    s
}

/// `<errorcounts>`: (count, unique) pairs.
pub fn error_counts(pairs: &[(u64, u64)]) -> String {
    let mut s = String::from("<errorcounts>\n");
    for (count, unique) in pairs {
        s.push_str(&format!("  <pair>\n    <count>{count}</count>\n    <unique>0x{unique:x}</unique>\n  </pair>\n"));
    }
    s.push_str("</errorcounts>\n\n");
    s
}

/// `<suppcounts>`: (count, suppression name) pairs.
pub fn supp_counts(pairs: &[(u64, &str)]) -> String {
    let mut s = String::from("<suppcounts>\n");
    for (count, name) in pairs {
        s.push_str(&format!("  <pair>\n    <count>{count}</count>\n"));
        elem(&mut s, "    ", "name", name);
        s.push_str("  </pair>\n");
    }
    s.push_str("</suppcounts>\n\n");
    s
}

pub fn footer() -> String {
    String::from("</valgrindoutput>\n\n")
}
