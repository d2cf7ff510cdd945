//! Tests of suppressions (Debian's default.supp, matching by fun/obj/src, wildcards and `...`),
//! the error manager's deduplication, counts and summary, and the XML writer's output.

extern crate std;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::manager::{ErrorDetails, ErrorManager, ErrorOptions, Recorded};
use super::supp::{FramePat, gen_suppression, leak_kinds, parse_suppressions, stack_matches};
use super::xml;
use crate::debuginfo::{ExeContextTable, FrameDesc};

/// Where Debian puts Valgrind's default suppressions (the path moved between releases).
const DEFAULT_SUPP: [&str; 2] = ["/usr/lib/x86_64-linux-gnu/valgrind/default.supp", "/usr/libexec/valgrind/default.supp"];

fn frame(func: Option<&str>, obj: Option<&str>) -> FrameDesc {
    FrameDesc {
        ip: 0x1000,
        func: func.map(String::from),
        mangled: func.map(String::from),
        obj: obj.map(String::from),
        ..FrameDesc::default()
    }
}

fn stack() -> Vec<FrameDesc> {
    vec![
        frame(Some("__libc_write"), Some("/usr/lib/x86_64-linux-gnu/libc.so.6")),
        frame(Some("_IO_file_write"), Some("/usr/lib/x86_64-linux-gnu/libc.so.6")),
        frame(None, Some("/usr/lib/x86_64-linux-gnu/libfoo.so.1")),
        frame(Some("main"), Some("/tmp/prog")),
    ]
}

const SAMPLE: &str = "
# a comment
{
   write-from-libc
   Memcheck:Param
   write(buf)
   fun:*libc_write
   ...
   fun:main
}

{
   obj-frame
   Memcheck,Helgrind:Cond
   obj:*/libc.so.?
   fun:_IO_file_wri?e
   obj:/usr/lib/x86_64-linux-gnu/libfoo.so.*
}
{
   leak
   Memcheck:Leak
   match-leak-kinds: definite,possible
   fun:malloc
   src:prog.c:12
}
";

#[test]
fn parses_sample() {
    let s = parse_suppressions(SAMPLE, "sample.supp").unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].name, "write-from-libc");
    assert_eq!(s[0].tools, ["Memcheck"]);
    assert_eq!(s[0].kind, "Param");
    assert_eq!(s[0].extra, ["write(buf)"]);
    assert_eq!(s[0].frames, [FramePat::Fun(String::from("*libc_write")), FramePat::Ellipsis, FramePat::Fun(String::from("main"))]);
    assert_eq!(s[0].line, 4);
    assert_eq!(s[1].tools, ["Memcheck", "Helgrind"]);
    assert_eq!(s[2].frames[1], FramePat::Src { file: String::from("prog.c"), line: Some(12) });
    assert_eq!(leak_kinds(&s[2].extra), Some(vec![String::from("definite"), String::from("possible")]));
}

#[test]
fn rejects_malformed() {
    for (text, line) in [
        ("{\n name\n Memcheck:Addr4\n fun:a\n", 4),    // no closing brace
        ("{\n name\n MemcheckAddr4\n fun:a\n}\n", 3),   // no tool:kind
        ("fun:a\n", 1),                                 // no opening brace
        ("{\n name\n Memcheck:Addr4\n fun:a\n bogus\n}\n", 5), // junk after locations
        ("{\n name\n Memcheck:Addr4\n}\n", 3),          // no location
    ] {
        let e = parse_suppressions(text, "bad.supp").unwrap_err();
        assert_eq!(e.line, line, "{text:?}: {e}");
    }
}

#[test]
fn parses_debian_default_supp() {
    let Some((path, text)) = DEFAULT_SUPP.iter().find_map(|p| Some((*p, std::fs::read_to_string(p).ok()?))) else {
        std::eprintln!("no default.supp installed (package valgrind); skipped");
        return;
    };
    let supps = parse_suppressions(&text, path).unwrap_or_else(|e| panic!("{e}"));
    let braces = text.lines().filter(|l| l.trim() == "{").count();
    assert_eq!(supps.len(), braces);
    assert!(supps.len() > 50);
    assert!(supps.iter().all(|s| !s.frames.is_empty() && !s.tools.is_empty()));
    assert!(supps.iter().any(|s| s.kind == "Param" && !s.extra.is_empty()));
}

#[test]
fn matching_by_fun_obj_wildcards_and_ellipsis() {
    let s = parse_suppressions(SAMPLE, "sample.supp").unwrap();
    let st = stack();
    assert!(s[0].matches("Memcheck", "Param", &st, |_| true));
    assert!(!s[0].matches("Memcheck", "Cond", &st, |_| true), "kind differs");
    assert!(!s[0].matches("Helgrind", "Param", &st, |_| true), "tool differs");
    assert!(!s[0].matches("Memcheck", "Param", &st, |x| x == ["read(buf)"]), "tool refuses extra");
    assert!(s[1].matches("Helgrind", "Cond", &st, |_| true));
    assert!(s[1].matches("Memcheck", "Cond", &st, |_| true));

    let fun = |p: &str| FramePat::Fun(String::from(p));
    let obj = |p: &str| FramePat::Obj(String::from(p));
    // `?` is exactly one character.
    assert!(!stack_matches(&[fun("__libc_writ?x")], &st));
    assert!(stack_matches(&[fun("__libc_writ?")], &st));
    // A frame without a function name only matches `fun:*` (or `???`).
    assert!(stack_matches(&[FramePat::Ellipsis, fun("*"), fun("main")], &st));
    assert!(!stack_matches(&[fun("*"), fun("*"), fun("foo*"), fun("main")], &st));
    // `...` matches none or many frames; the stack may be longer than the patterns.
    assert!(stack_matches(&[FramePat::Ellipsis, fun("__libc_write")], &st));
    assert!(stack_matches(&[FramePat::Ellipsis, obj("*libfoo*"), FramePat::Ellipsis], &st));
    assert!(!stack_matches(&[FramePat::Ellipsis, fun("main"), fun("*")], &st), "nothing below main");
    assert!(stack_matches(&[FramePat::Ellipsis, fun("main"), FramePat::Ellipsis], &st));
    assert!(!stack_matches(&[obj("/tmp/prog")], &st));
    // Demangled names match too.
    let mut cxx = frame(Some("foo(int)"), None);
    cxx.mangled = Some(String::from("_Z3fooi"));
    assert!(stack_matches(&[fun("_Z3foo*")], &[cxx.clone()]));
    assert!(stack_matches(&[fun("foo(int)")], &[cxx]));
    // src: by file and line.
    let mut src = frame(Some("f"), None);
    src.file = Some(String::from("prog.c"));
    src.line = Some(12);
    assert!(stack_matches(&[FramePat::Src { file: String::from("prog.c"), line: Some(12) }], &[src.clone()]));
    assert!(stack_matches(&[FramePat::Src { file: String::from("*.c"), line: None }], &[src.clone()]));
    assert!(!stack_matches(&[FramePat::Src { file: String::from("prog.c"), line: Some(13) }], &[src]));
}

#[test]
fn generated_suppression_parses_and_matches() {
    let st = stack();
    let text = gen_suppression("Memcheck", "Param", &[String::from("write(buf)")], &st);
    assert_eq!(
        text,
        "{\n   <insert_a_suppression_name_here>\n   Memcheck:Param\n   write(buf)\n   fun:__libc_write\n   fun:_IO_file_write\n   obj:/usr/lib/x86_64-linux-gnu/libfoo.so.1\n   fun:main\n}\n"
    );
    let s = parse_suppressions(&text, "gen").unwrap();
    assert!(s[0].matches("Memcheck", "Param", &st, |x| x == ["write(buf)"]));
}

#[derive(Debug)]
struct Detail(u32);

impl ErrorDetails for Detail {
    fn same_as(&self, other: &Self) -> bool {
        self.0 == other.0
    }
    fn supp_extra(&self) -> Vec<String> {
        vec![alloc::format!("size{}", self.0)]
    }
}

#[test]
fn manager_dedups_counts_and_suppresses() {
    let mut ectx = ExeContextTable::new();
    let mut em: ErrorManager<Detail> = ErrorManager::new(ErrorOptions::default());
    let read = em.register_kind("Memcheck", "Addr4", "InvalidRead");
    let write = em.register_kind("Memcheck", "Addr8", "InvalidWrite");
    em.add_suppressions(parse_suppressions(SAMPLE, "s.supp").unwrap());
    em.add_suppressions(parse_suppressions("{\n foo\n Memcheck:Addr8\n fun:foo\n}\n", "t.supp").unwrap());
    let a = ectx.intern(&[1, 2, 3, 4, 5]);
    let a_deep = ectx.intern(&[1, 2, 3, 4, 6]); // same first 4 frames
    let b = ectx.intern(&[9, 2, 3]);
    let plain = || vec![frame(Some("main"), Some("/p"))];
    let in_foo = || vec![frame(Some("foo"), Some("/p"))];
    let mut calls = 0;
    assert_eq!(em.record_error(&ectx, read, a, 1, Detail(4), plain), Recorded::New(0));
    assert_eq!(em.record_error(&ectx, read, a_deep, 1, Detail(4), || { calls += 1; plain() }), Recorded::Duplicate(0));
    assert_eq!(calls, 0, "a duplicate must not be symbolised");
    assert_eq!(em.record_error(&ectx, read, a, 1, Detail(8), plain), Recorded::New(1), "details differ");
    assert_eq!(em.record_error(&ectx, write, a, 1, Detail(4), plain), Recorded::New(2), "kind differs");
    assert_eq!(em.record_error(&ectx, read, b, 2, Detail(4), plain), Recorded::New(3), "stack differs");
    assert_eq!(em.record_error(&ectx, write, b, 1, Detail(4), in_foo), Recorded::Suppressed(3));
    assert_eq!(em.record_error(&ectx, write, b, 1, Detail(4), in_foo), Recorded::Suppressed(3));
    em.disable_reporting();
    assert_eq!(em.record_error(&ectx, read, b, 1, Detail(99), plain), Recorded::Ignored);
    em.enable_reporting();
    assert_eq!(em.errors_found(), 5);
    assert_eq!(em.error(0).count, 2);
    assert_eq!(em.summary_line(), "ERROR SUMMARY: 5 errors from 4 contexts (suppressed: 2 from 1)");
    assert_eq!(em.used_suppression_lines(), ["used_suppression:      2 foo t.supp:2"]);
    assert_eq!(em.shown().count(), 4);
    assert_eq!(em.exit_code(), None);
    em.opts.error_exitcode = 3;
    assert_eq!(em.exit_code(), Some(3));
    assert!(!em.should_exit());
    let g = em.gen_suppression(3, &plain());
    assert!(g.contains("   Memcheck:Addr4\n   size4\n   fun:main\n"), "{g}");
}

#[test]
fn manager_error_limit() {
    let mut ectx = ExeContextTable::new();
    let mut em: ErrorManager<Detail> = ErrorManager::new(ErrorOptions::default());
    let k = em.register_kind("Memcheck", "Cond", "UninitCondition");
    for i in 0..super::manager::MAX_CONTEXTS as u64 {
        let c = ectx.intern(&[i]);
        assert!(matches!(em.record_error(&ectx, k, c, 1, Detail(0), Vec::new), Recorded::New(_)));
    }
    let c = ectx.intern(&[u64::MAX]);
    assert_eq!(em.record_error(&ectx, k, c, 1, Detail(0), Vec::new), Recorded::LimitReached);
    assert_eq!(em.record_error(&ectx, k, c, 1, Detail(0), Vec::new), Recorded::Ignored);
    let mut unlimited: ErrorManager<Detail> = ErrorManager::new(ErrorOptions { error_limit: false, ..ErrorOptions::default() });
    let k = unlimited.register_kind("Memcheck", "Cond", "UninitCondition");
    for i in 0..=super::manager::MAX_CONTEXTS as u64 {
        let c = ectx.intern(&[i]);
        assert!(matches!(unlimited.record_error(&ectx, k, c, 1, Detail(0), Vec::new), Recorded::New(_)));
    }
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, tag: &str) -> roxmltree::Node<'a, 'i> {
    n.children().find(|c| c.has_tag_name(tag)).unwrap_or_else(|| panic!("no <{tag}>"))
}

fn text(n: roxmltree::Node<'_, '_>, tag: &str) -> String {
    String::from(child(n, tag).text().unwrap_or(""))
}

#[test]
fn xml_is_well_formed_and_complete() {
    let mut frames = stack();
    frames[3].file = Some(String::from("prog<1>.c"));
    frames[3].dir = Some(String::from("/tmp/a&b"));
    frames[3].line = Some(12);
    let mut doc = xml::header("memcheck");
    doc.push_str(&xml::preamble(&["Memcheck, a memory error detector", "Copyright <C> & co"], 42, 1, "memcheck"));
    doc.push_str(&xml::args("/usr/bin/valgrind", &["--xml=yes"], "./prog", &["a<b", "\"q\""]));
    doc.push_str(&xml::status(xml::RunState::Running, "00:00:00:00.100 "));
    doc.push_str(&xml::error(&xml::XmlError {
        unique: 0,
        tid: 1,
        kind: "InvalidRead",
        what: xml::What::Plain("Invalid read of size 4"),
        stack: &frames,
        tool_xml: "  <auxwhat>Address 0x0 is not stack'd, malloc'd or (recently) free'd</auxwhat>\n",
        suppression: Some(xml::XmlSuppression { name: "<insert_a_suppression_name_here>", kind: "Memcheck:Addr4", aux: None, frames: &frames, raw: "{\n   x\n}\n" }),
    }));
    doc.push_str(&xml::error(&xml::XmlError {
        unique: 1,
        tid: 2,
        kind: "Race",
        what: xml::What::Extended { text: "Possible data race", extra_xml: "    <threadid>2</threadid>\n" },
        stack: &frames[..1],
        tool_xml: "",
        suppression: None,
    }));
    doc.push_str(&xml::status(xml::RunState::Finished, "00:00:00:00.200 "));
    doc.push_str(&xml::error_counts(&[(3, 0), (1, 1)]));
    doc.push_str(&xml::supp_counts(&[(2, "foo & bar")]));
    doc.push_str(&xml::footer());

    assert!(doc.starts_with("<?xml version=\"1.0\"?>\n"));
    let tree = roxmltree::Document::parse(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
    let root = tree.root_element();
    assert_eq!(root.tag_name().name(), "valgrindoutput");
    // The order protocol 4 requires.
    let tags: Vec<&str> = root.children().filter(|c| c.is_element()).map(|c| c.tag_name().name()).collect();
    assert_eq!(tags, ["protocolversion", "protocoltool", "preamble", "pid", "ppid", "tool", "args", "status", "error", "error", "status", "errorcounts", "suppcounts"]);
    assert_eq!(text(root, "protocolversion"), "4");
    assert_eq!(text(root, "protocoltool"), "memcheck");
    assert_eq!(text(root, "pid"), "42");
    let args = child(root, "args");
    let argv: Vec<&str> = child(args, "argv").children().filter(|c| c.is_element()).filter_map(|c| c.text()).collect();
    assert_eq!(argv, ["./prog", "a<b", "\"q\""]);
    assert_eq!(text(child(root, "status"), "state"), "RUNNING");
    let err = child(root, "error");
    assert_eq!(text(err, "unique"), "0x0");
    assert_eq!(text(err, "tid"), "1");
    assert_eq!(text(err, "kind"), "InvalidRead");
    assert_eq!(text(err, "what"), "Invalid read of size 4");
    let st: Vec<_> = child(err, "stack").children().filter(|c| c.has_tag_name("frame")).collect();
    assert_eq!(st.len(), 4);
    assert_eq!(text(st[0], "ip"), "0x1000");
    assert_eq!(text(st[3], "file"), "prog<1>.c");
    assert_eq!(text(st[3], "dir"), "/tmp/a&b");
    assert_eq!(text(st[3], "line"), "12");
    // Optional fields keep the protocol's order.
    let order: Vec<&str> = st[3].children().filter(|c| c.is_element()).map(|c| c.tag_name().name()).collect();
    assert_eq!(order, ["ip", "obj", "fn", "dir", "file", "line"]);
    assert!(st[2].children().all(|c| !c.has_tag_name("fn")), "unknown function: no <fn>");
    let sup = child(err, "suppression");
    assert_eq!(text(sup, "skind"), "Memcheck:Addr4");
    let sframes: Vec<String> = sup.children().filter(|c| c.has_tag_name("sframe")).map(|f| {
        let c = f.children().find(|c| c.is_element()).unwrap();
        alloc::format!("{}:{}", c.tag_name().name(), c.text().unwrap())
    }).collect();
    assert_eq!(sframes[2], "obj:/usr/lib/x86_64-linux-gnu/libfoo.so.1");
    assert_eq!(sframes[3], "fun:main");
    let second = root.children().filter(|c| c.has_tag_name("error")).nth(1).unwrap();
    assert_eq!(text(child(second, "xwhat"), "text"), "Possible data race");
    let pairs: Vec<_> = child(root, "errorcounts").children().filter(|c| c.has_tag_name("pair")).collect();
    assert_eq!((text(pairs[0], "count"), text(pairs[0], "unique")), (String::from("3"), String::from("0x0")));
    assert_eq!(text(child(child(root, "suppcounts"), "pair"), "name"), "foo & bar");
}
