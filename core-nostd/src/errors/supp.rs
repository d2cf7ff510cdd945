//! Suppressions in Valgrind's file syntax: parsing, matching a stack against them, and generating
//! the text of a suppression for an error (`--gen-suppressions=`).
//!
//! ```text
//! {
//!    name
//!    Tool[,Tool2]:Kind
//!    extra lines the tool interprets (e.g. `write(buf)` or `match-leak-kinds: definite`)
//!    fun:pattern | obj:pattern | src:file[:line] | ...
//! }
//! ```
//! Blank lines and lines starting with `#` are ignored; patterns use `*` and `?`.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::debuginfo::FrameDesc;
use crate::redir::wildcard_match;

/// One location line of a suppression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramePat {
    /// `fun:`: function name (mangled or demangled).
    Fun(String),
    /// `obj:`: path of the object.
    Obj(String),
    /// `src:file` or `src:file:line`.
    Src { file: String, line: Option<u32> },
    /// `...`: any number of frames, including none.
    Ellipsis,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppression {
    pub name: String,
    /// Tools the suppression is for (`Memcheck`, ...); matching is exact.
    pub tools: Vec<String>,
    pub kind: String,
    /// Lines between the kind and the first location, for the tool to interpret.
    pub extra: Vec<String>,
    pub frames: Vec<FramePat>,
    /// Where it was read from, for `-v`'s list of used suppressions.
    pub file: String,
    pub line: u32,
}

/// A syntax error in a suppression file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuppParseError {
    pub file: String,
    pub line: u32,
    pub msg: &'static str,
}

impl core::fmt::Display for SuppParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}:{}: bad suppression: {}", self.file, self.line, self.msg)
    }
}

fn is_location(line: &str) -> bool {
    line == "..." || line.starts_with("fun:") || line.starts_with("obj:") || line.starts_with("src:")
}

fn parse_location(line: &str) -> Option<FramePat> {
    if line == "..." {
        return Some(FramePat::Ellipsis);
    }
    if let Some(p) = line.strip_prefix("fun:") {
        return Some(FramePat::Fun(String::from(p)));
    }
    if let Some(p) = line.strip_prefix("obj:") {
        return Some(FramePat::Obj(String::from(p)));
    }
    let p = line.strip_prefix("src:")?;
    match p.rsplit_once(':') {
        Some((file, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            Some(FramePat::Src { file: String::from(file), line: n.parse().ok() })
        }
        _ => Some(FramePat::Src { file: String::from(p), line: None }),
    }
}

/// Parses a whole suppression file; `file` names it in errors and in the results.
pub fn parse_suppressions(text: &str, file: &str) -> Result<Vec<Suppression>, SuppParseError> {
    let mut out = Vec::new();
    // Significant lines with their 1-based numbers.
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i as u32 + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let err = |line, msg| SuppParseError { file: String::from(file), line, msg };
    while let Some((n, l)) = lines.next() {
        if l != "{" {
            return Err(err(n, "expected '{'"));
        }
        let (name_line, name) = lines.next().ok_or(err(n, "missing name"))?;
        if name == "}" {
            return Err(err(name_line, "missing name"));
        }
        let (kn, kind_line) = lines.next().ok_or(err(name_line, "missing tool:kind line"))?;
        let (tools, kind) = kind_line.split_once(':').ok_or(err(kn, "expected tool:kind"))?;
        if tools.is_empty() || kind.is_empty() {
            return Err(err(kn, "expected tool:kind"));
        }
        let mut s = Suppression {
            name: String::from(name),
            tools: tools.split(',').map(|t| String::from(t.trim())).collect(),
            kind: String::from(kind.trim()),
            extra: Vec::new(),
            frames: Vec::new(),
            file: String::from(file),
            line: name_line,
        };
        let mut last = kn;
        loop {
            let (ln, l) = lines.next().ok_or(err(last, "missing '}'"))?;
            last = ln;
            if l == "}" {
                break;
            }
            if is_location(l) {
                s.frames.push(parse_location(l).ok_or(err(ln, "bad location"))?);
            } else if s.frames.is_empty() {
                s.extra.push(String::from(l));
            } else {
                return Err(err(ln, "location should be \"...\", or start with \"fun:\", \"obj:\" or \"src:\""));
            }
        }
        if s.frames.is_empty() && !s.tools.iter().any(|t| t == "CoreError") {
            return Err(err(kn, "a suppression needs at least one location"));
        }
        out.push(s);
    }
    Ok(out)
}

fn frame_matches(p: &FramePat, f: &FrameDesc) -> bool {
    match p {
        FramePat::Ellipsis => true,
        FramePat::Fun(pat) => {
            let mangled = f.mangled.as_deref().unwrap_or("???");
            wildcard_match(pat, mangled) || f.func.as_deref().is_some_and(|d| d != mangled && wildcard_match(pat, d))
        }
        FramePat::Obj(pat) => wildcard_match(pat, f.obj.as_deref().unwrap_or("???")),
        FramePat::Src { file, line } => {
            f.file.as_deref().is_some_and(|name| wildcard_match(file, name)) && line.is_none_or(|l| f.line == Some(l))
        }
    }
}

/// Whether the location patterns match the stack: each pattern the next frame, `...` any run
/// of frames; frames beyond the patterns don't matter.
pub fn stack_matches(pats: &[FramePat], frames: &[FrameDesc]) -> bool {
    match pats.split_first() {
        None => true,
        Some((FramePat::Ellipsis, rest)) => (0..=frames.len()).any(|skip| stack_matches(rest, &frames[skip..])),
        Some((p, rest)) => frames.split_first().is_some_and(|(f, fs)| frame_matches(p, f) && stack_matches(rest, fs)),
    }
}

impl Suppression {
    /// Whether this suppression covers an error of `tool`'s `kind` at `frames`; `extra_ok` lets
    /// the tool check the extra lines against the error (e.g. the syscall parameter name).
    pub fn matches(&self, tool: &str, kind: &str, frames: &[FrameDesc], extra_ok: impl FnOnce(&[String]) -> bool) -> bool {
        self.tools.iter().any(|t| t == tool)
            && self.kind == kind
            && stack_matches(&self.frames, frames)
            && extra_ok(&self.extra)
    }
}

/// The location line `--gen-suppressions` writes for a frame: the function's name as the object
/// records it, else the object, else a wildcard.
pub fn location_for(f: &FrameDesc) -> String {
    match (&f.mangled, &f.obj) {
        (Some(n), _) => format!("fun:{n}"),
        (None, Some(o)) => format!("obj:{o}"),
        (None, None) => String::from("obj:*"),
    }
}

/// The text of a suppression for an error, as `--gen-suppressions` prints it.
pub fn gen_suppression(tool: &str, kind: &str, extra: &[String], frames: &[FrameDesc]) -> String {
    let mut s = String::from("{\n   <insert_a_suppression_name_here>\n");
    s.push_str(&format!("   {tool}:{kind}\n"));
    for e in extra {
        s.push_str(&format!("   {e}\n"));
    }
    for f in frames {
        s.push_str("   ");
        s.push_str(&location_for(f));
        s.push('\n');
    }
    s.push_str("}\n");
    s
}

/// Extracts the `match-leak-kinds:` values of a suppression's extra lines (memcheck's use).
pub fn leak_kinds(extra: &[String]) -> Option<Vec<String>> {
    let line = extra.iter().find_map(|e| e.strip_prefix("match-leak-kinds:"))?;
    Some(line.split(',').map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect())
}
