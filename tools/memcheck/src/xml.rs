//! Memcheck's XML output (`--xml=yes`, protocol 4), written with the core's XML writer
//! ([`vg_core::errors::xml`]): the preamble when the run starts, each error as an `<error>`
//! (`<what>` and the main `<stack>`, then the address description's `<auxwhat>`s with the
//! block's free and allocation stacks, and where an undefined value came from), loss records
//! as `<xwhat>` with their leaked bytes and blocks, and at the end the FINISHED status, the
//! error and suppression counts and the closing tag. While XML is on, the text log is quiet,
//! as in Valgrind.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use vg_core::debuginfo::{ExeContextId, FrameDesc};
use vg_core::errors::xml::{self, RunState, What, XmlError, XmlSuppression};
use vg_core::reportopts::GenSuppressions;
use vg_core::tool::Tool;

use crate::errors::{self, McError};
use crate::{Memcheck, st};

/// Whether XML output is on.
pub fn on() -> bool {
    xml::enabled()
}

/// The name `<sname>` gives a generated suppression.
const SUPP_NAME: &str = "insert_a_suppression_name_here";

/// With `--xml=yes` and a destination: opens it, quiets the text log and writes the document's
/// start (up to the RUNNING status). Without a destination the core rejects the options.
pub fn start() {
    let o = vg_core::reportopts::get();
    let Some(dest) = o.xml_dest.as_ref().filter(|_| o.xml) else { return };
    if let Err(why) = xml::open_sink(dest) {
        vg_core::log::error_line(format_args!("{why}"));
        vg_core::syscall::exit_group(1);
    }
    vg_core::log::set_verbosity(0);
    // The command line as the launcher passed it on: this executable, the options, then the
    // client and its arguments.
    let cmdline = read_proc("/proc/self/cmdline");
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let (vexe, rest) = args.split_first().map_or(("", &[][..]), |(e, r)| (e.as_str(), r));
    let nopts = rest.iter().take_while(|a| a.starts_with('-')).count();
    let vargs: Vec<&str> = rest[..nopts].iter().map(String::as_str).collect();
    let client: Vec<&str> = rest[nopts..].iter().map(String::as_str).collect();
    let (exe, cargs) = client.split_first().map_or(("", &[][..]), |(e, r)| (*e, r));
    let using = format!("Using {} and its own JIT; rerun with -h for copyright info", vg_core::log::NAME_VERSION);
    let command = format!("Command: {}", client.join(" "));
    let lines = [Memcheck::BANNER, Memcheck::COPYRIGHT, using.as_str(), command.as_str()];
    let mut doc = xml::header(Memcheck::NAME);
    doc.push_str(&xml::preamble(&lines, vg_core::log::pid() as u32, xml::ppid(), Memcheck::NAME));
    doc.push_str(&xml::args(vexe, &vargs, exe, cargs));
    doc.push_str(&xml::status(RunState::Running, &xml::elapsed()));
    xml::write(&doc);
}

/// A /proc file's contents (its size is not known before reading).
fn read_proc(path: &str) -> Vec<u8> {
    use vg_core::syscall;
    let mut out = Vec::new();
    let Ok(fd) = syscall::open(path, syscall::O_RDONLY | syscall::O_CLOEXEC, 0) else { return out };
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = syscall::read(fd, &mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    let _ = syscall::close(fd);
    out
}

/// The FINISHED status (before the leak check's records, as Valgrind orders them).
pub fn finished() {
    // Valgrind leaves an empty line before it.
    xml::write(&format!("\n{}", xml::status(RunState::Finished, &xml::elapsed())));
}

/// The error and suppression counts and the end of the document.
pub fn close() {
    let em = &st().em;
    // Valgrind lists the most recent context first.
    let mut pairs: Vec<(u64, u64)> = em.shown().map(|e| (e.count, e.unique)).collect();
    pairs.reverse();
    let mut doc = xml::error_counts(&pairs);
    let supps: Vec<(u64, String)> = em.used_suppressions().map(|(_, s, c)| (c, s.name.clone())).collect();
    let supps: Vec<(u64, &str)> = supps.iter().map(|(c, n)| (*c, n.as_str())).collect();
    doc.push_str(&xml::supp_counts(&supps));
    doc.push_str(&xml::footer());
    xml::write(&doc);
}

/// Marks a stack inside an error's text while it is turned into elements.
const STACK_MARK: &str = "\u{1}";

/// The tool-specific elements after the main stack: each line of the error's text after its
/// headline becomes an `<auxwhat>`, each stack a `<stack>`. `tail` is built with `mark`
/// standing in for the stacks, whose contexts `marks` collected in order.
fn aux_elements(tail: &str, marks: &[ExeContextId]) -> String {
    let mut out = String::new();
    let mut next = marks.iter();
    for line in tail.lines() {
        if line == STACK_MARK {
            if let Some(ctx) = next.next() {
                let ips = st().ectx.ips(*ctx).to_vec();
                out.push_str(&xml::stack(&crate::frames_of(&ips)));
            }
        } else if !line.trim().is_empty() {
            out.push_str(&format!("  <auxwhat>{}</auxwhat>\n", xml::escape(line.trim())));
        }
    }
    out
}

/// Writes error context `i` (just recorded, details `e`, at `ips`; `origin`: where its
/// undefined value was created) as an `<error>`, with its suppression under
/// `--gen-suppressions=all`.
pub fn report(i: usize, e: &McError, ips: &[u64], origin: Option<(ExeContextId, crate::origins::OriginKind)>) {
    let marks = RefCell::new(Vec::new());
    let mark = |ctx: ExeContextId| {
        marks.borrow_mut().push(ctx);
        format!("{STACK_MARK}\n")
    };
    let mut text = errors::text(e, "", &mark);
    if let Some((octx, kind)) = origin {
        text.push_str(&errors::origin_text(kind, &mark(octx)));
    }
    let (what, tail) = text.split_once('\n').unwrap_or((&text, ""));
    let tool_xml = aux_elements(tail, &marks.borrow());
    let em = &st().em;
    let rec = em.error(i);
    let kind = match e {
        McError::Addr { write: true, .. } => "InvalidWrite",
        _ => em.kind(rec.kind).xml_kind.as_str(),
    };
    let frames = crate::frames_of(ips);
    let gen_all = vg_core::reportopts::get().gen_suppressions == GenSuppressions::All;
    let raw = gen_all.then(|| em.gen_suppression(i, &frames));
    let supp_kind = format!("Memcheck:{}", em.kind(rec.kind).supp_kind);
    let extra = vg_core::errors::ErrorDetails::supp_extra(e);
    let suppression = raw.as_deref().map(|raw| XmlSuppression {
        name: SUPP_NAME,
        kind: &supp_kind,
        aux: extra.first().map(String::as_str),
        frames: &frames,
        raw,
    });
    xml::write(&xml::error(&XmlError {
        unique: rec.unique,
        tid: rec.tid,
        kind,
        what: What::Plain(what),
        stack: &frames,
        tool_xml: &tool_xml,
        suppression,
    }));
}

/// Writes a loss record as an `<error>` of kind `kind`: `text` is its line, `leaked` its
/// bytes (with indirect ones) and blocks; `supp` the generated suppression, if any.
pub fn leak_error(unique: u64, kind: &str, text: &str, leaked: (u64, u64), frames: &[FrameDesc], supp: Option<&str>) {
    let extra = format!("    <leakedbytes>{}</leakedbytes>\n    <leakedblocks>{}</leakedblocks>\n", leaked.0, leaked.1);
    let aux = supp.and_then(|t| t.lines().find(|l| l.trim_start().starts_with("match-leak-kinds:"))).map(str::trim);
    let suppression =
        supp.map(|raw| XmlSuppression { name: SUPP_NAME, kind: "Memcheck:Leak", aux, frames, raw });
    xml::write(&xml::error(&XmlError {
        unique,
        tid: 1,
        kind,
        what: What::Extended { text, extra_xml: &extra },
        stack: frames,
        tool_xml: "",
        suppression,
    }));
}
