//! Memcheck's leak checker, leak errors and XML output on guests with known leaks
//! (`tests/guest/mc_leak_kinds.c`, `mc_leak_req.c`): the loss records and summaries, filtered
//! of pids and addresses, against what the programs are known to leak — the expectations were
//! written by hand and checked against Valgrind 3.19's output on the same programs, built
//! dynamically as Valgrind needs them (a static C library's own start-up blocks would add
//! records of their own).

use std::process::Command;

use vg_tests::guests::{Outcome, Variant, build, build_dynamic, line_of, run_command, valgrind};

fn run(args: &[&str], name: &str) -> Outcome {
    let mut cmd = Command::new(valgrind());
    cmd.arg("--tool=memcheck").args(args).arg(build_dynamic(name));
    run_command(cmd, b"")
}

/// The filtered stderr lines from the first loss record or LEAK SUMMARY on, without the
/// `==PID== ` prefix.
fn leak_report(o: &Outcome) -> Vec<String> {
    let lines: Vec<String> = o
        .filtered_stderr()
        .iter()
        .map(|l| l.strip_prefix("==PID== ").or_else(|| l.strip_prefix("==PID==")).unwrap_or(l).to_string())
        .collect();
    let start = lines
        .iter()
        .position(|l| l.contains("in loss record") || l == "LEAK SUMMARY:")
        .unwrap_or_else(|| panic!("no leak report:\n{}", o.stderr_str()));
    lines[start..].to_vec()
}

fn at(marker: &str) -> usize {
    line_of("mc_leak_kinds", &format!("/* {marker} */"))
}

/// Loss record `line` with the allocation stack: malloc, then `frames` (function, marker).
fn record(line: &str, frames: &[(&str, &str)]) -> Vec<String> {
    let mut r = vec![line.to_string(), "   at 0x...: malloc (vg_replace_malloc.c:381)".to_string()];
    for (func, marker) in frames {
        r.push(format!("   by 0x...: {func} (mc_leak_kinds.c:{})", at(marker)));
    }
    r.push(String::new());
    r
}

fn summary(definite: &str, indirect: &str, possible: &str, reachable: &str, suppressed: &str) -> Vec<String> {
    vec![
        "LEAK SUMMARY:".to_string(),
        format!("   definitely lost: {definite}"),
        format!("   indirectly lost: {indirect}"),
        format!("     possibly lost: {possible}"),
        format!("   still reachable: {reachable}"),
        format!("        suppressed: {suppressed}"),
    ]
}

const MAIN: (&str, &str) = ("main", "CALL_LIST");

fn twice() -> Vec<String> {
    record("20 bytes in 2 blocks are definitely lost in loss record 1 of 5", &[("lose_small", "TWICE"), ("main", "CALL_SMALL")])
}
fn possible() -> Vec<String> {
    record("48 bytes in 1 blocks are possibly lost in loss record 2 of 5", &[("main", "POS")])
}
fn indirect() -> Vec<String> {
    record("64 bytes in 2 blocks are indirectly lost in loss record 3 of 5", &[("lose_list", "LIST"), MAIN])
}
fn list() -> Vec<String> {
    record(
        "96 (32 direct, 64 indirect) bytes in 1 blocks are definitely lost in loss record 4 of 5",
        &[("lose_list", "LIST"), MAIN],
    )
}
fn keep() -> Vec<String> {
    record("100 bytes in 1 blocks are still reachable in loss record 5 of 5", &[("main", "KEEP")])
}

#[test]
fn every_leak_kind_with_exact_records_and_figures() {
    let o = run(&["--leak-check=full"], "mc_leak_kinds");
    let mut want = [twice(), possible(), list()].concat();
    want.extend(summary("52 bytes in 3 blocks", "64 bytes in 2 blocks", "48 bytes in 1 blocks", "100 bytes in 1 blocks", "0 bytes in 0 blocks"));
    want.extend(
        [
            "Reachable blocks (those to which a pointer was found) are not shown.",
            "To see them, rerun with: --leak-check=full --show-leak-kinds=all",
            "",
            "For lists of detected and suppressed errors, rerun with: -s",
            "ERROR SUMMARY: 3 errors from 3 contexts (suppressed: 0 from 0)",
        ]
        .map(String::from),
    );
    assert_eq!(leak_report(&o), want, "{}", o.stderr_str());
    assert_eq!(o.shell_status(), 0);
}

#[test]
fn a_static_guest_gives_the_same_lost_figures() {
    // The static C library's own blocks are all still reachable: the lost figures are exact.
    let mut cmd = Command::new(valgrind());
    cmd.args(["--tool=memcheck", "--leak-check=full"]).arg(build("mc_leak_kinds", Variant::StaticO0));
    let o = run_command(cmd, b"");
    let text = o.filtered_stderr().join("\n");
    for l in ["   definitely lost: 52 bytes in 3 blocks", "   indirectly lost: 64 bytes in 2 blocks", "     possibly lost: 48 bytes in 1 blocks"] {
        assert!(text.contains(l), "{l}\n{text}");
    }
    assert!(text.contains("96 (32 direct, 64 indirect) bytes in 1 blocks are definitely lost in loss record"), "{text}");
    assert!(text.contains("ERROR SUMMARY: 3 errors from 3 contexts"), "{text}");
}

#[test]
fn show_and_error_kinds_select_records_and_errors() {
    let o = run(&["--leak-check=full", "--show-leak-kinds=all", "--errors-for-leak-kinds=all"], "mc_leak_kinds");
    let mut want = [twice(), possible(), indirect(), list(), keep()].concat();
    want.extend(summary("52 bytes in 3 blocks", "64 bytes in 2 blocks", "48 bytes in 1 blocks", "100 bytes in 1 blocks", "0 bytes in 0 blocks"));
    want.extend(["", "For lists of detected and suppressed errors, rerun with: -s", "ERROR SUMMARY: 5 errors from 5 contexts (suppressed: 0 from 0)"].map(String::from));
    assert_eq!(leak_report(&o), want, "{}", o.stderr_str());

    // Records shown are not errors unless their kind is one; errors need not be shown.
    let o = run(&["--leak-check=full", "--show-leak-kinds=none", "--errors-for-leak-kinds=definite"], "mc_leak_kinds");
    let r = leak_report(&o);
    assert_eq!(r[0], "LEAK SUMMARY:", "{}", o.stderr_str());
    assert_eq!(r.last().unwrap(), "ERROR SUMMARY: 2 errors from 2 contexts (suppressed: 0 from 0)");

    // The summary mode shows no records and counts no errors.
    let o = run(&[], "mc_leak_kinds");
    let r = leak_report(&o);
    assert!(r.contains(&"Rerun with --leak-check=full to see details of leaked memory".to_string()), "{r:?}");
    assert_eq!(r.last().unwrap(), "ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 0 from 0)");
}

#[test]
fn low_resolution_merges_records_by_their_first_frames() {
    // mc_leak_req loses two blocks through `lose` called from two lines of main: two records
    // when all frames must match, one when only malloc and `lose` must.
    let records = |res: &str| -> Vec<String> {
        let o = run(&["--leak-check=full", &format!("--leak-resolution={res}")], "mc_leak_req");
        let lines = o.filtered_stderr();
        let end = lines.iter().position(|l| l.ends_with("HEAP SUMMARY:")).expect("HEAP SUMMARY");
        lines[end..].iter().filter(|l| l.contains("in loss record")).cloned().collect()
    };
    assert_eq!(
        records("high"),
        [
            "==PID== 40 bytes in 1 blocks are definitely lost in loss record 1 of 3",
            "==PID== 40 bytes in 1 blocks are definitely lost in loss record 2 of 3"
        ]
    );
    assert_eq!(records("low"), ["==PID== 80 bytes in 2 blocks are definitely lost in loss record 2 of 2"]);
}

/// The suppressions in a `--gen-suppressions=all` log, named `leakN`.
fn extract_suppressions(stderr: &str) -> String {
    let mut out = String::new();
    let mut n = 0;
    let mut inside = false;
    for l in stderr.lines() {
        if l == "{" {
            inside = true;
        }
        if inside {
            if l.contains("<insert_a_suppression_name_here>") {
                n += 1;
                out.push_str(&format!("   leak{n}\n"));
            } else {
                out.push_str(l);
                out.push('\n');
            }
        }
        if l == "}" {
            inside = false;
        }
    }
    out
}

#[test]
fn generated_leak_suppressions_suppress_every_record() {
    let all = ["--leak-check=full", "--show-leak-kinds=all", "--errors-for-leak-kinds=all"];
    let o = run(&[&all[..], &["-q", "--gen-suppressions=all"]].concat(), "mc_leak_kinds");
    let supps = extract_suppressions(&o.stderr_str());
    assert_eq!(supps.matches("   Memcheck:Leak\n").count(), 5, "{}", o.stderr_str());
    assert!(
        supps.contains("   Memcheck:Leak\n   match-leak-kinds: definite\n   fun:malloc\n   fun:lose_small\n   fun:main\n}"),
        "{supps}"
    );
    assert!(supps.contains("   match-leak-kinds: indirect\n"), "{supps}");
    let file = std::env::temp_dir().join(format!("vg-leak-{}.supp", std::process::id()));
    std::fs::write(&file, &supps).unwrap();
    let o = run(&[&all[..], &["-s", &format!("--suppressions={}", file.display())]].concat(), "mc_leak_kinds");
    std::fs::remove_file(&file).ok();
    let r = leak_report(&o);
    let mut want = summary("0 bytes in 0 blocks", "0 bytes in 0 blocks", "0 bytes in 0 blocks", "0 bytes in 0 blocks", "264 bytes in 7 blocks");
    want.extend(["", "ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 5 from 5)"].map(String::from));
    assert_eq!(r[..want.len()], want[..], "{}", o.stderr_str());
    // -s lists each used suppression, most recently used first, with what it suppressed.
    let used: Vec<&String> = r.iter().filter(|l| l.contains("used_suppression:")).collect();
    assert_eq!(used.len(), 5, "{r:?}");
    assert!(used[0].contains(" leak5 ") && used[0].ends_with("suppressed: 100 bytes in 1 blocks"), "{used:?}");
    assert!(used[4].contains(" leak1 ") && used[4].ends_with("suppressed: 20 bytes in 2 blocks"), "{used:?}");
    assert_eq!(r.last().unwrap(), "ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 5 from 5)");

    // A suppression limited to other kinds leaves the record alone.
    let only_reachable = "{\n   r\n   Memcheck:Leak\n   match-leak-kinds: reachable\n   fun:malloc\n   ...\n}\n";
    std::fs::write(&file, only_reachable).unwrap();
    let o = run(&["--leak-check=full", &format!("--suppressions={}", file.display())], "mc_leak_kinds");
    std::fs::remove_file(&file).ok();
    let text = leak_report(&o).join("\n");
    assert!(text.contains("   definitely lost: 52 bytes in 3 blocks\n"), "{text}");
    assert!(text.contains("        suppressed: 100 bytes in 1 blocks\n"), "{text}");
    assert!(text.ends_with("ERROR SUMMARY: 3 errors from 3 contexts (suppressed: 0 from 0)"), "{text}");
}

#[test]
fn leak_client_requests_count_and_show_deltas() {
    let o = run(&[], "mc_leak_req");
    assert_eq!(
        o.stdout_str(),
        "bytes 40 0 80 0\nblocks 1 0 2 0\nbytes 80 0 80 0\nblocks 2 0 2 0\nbytes 80 0 64 0\nblocks 2 0 1 0\n",
        "{}",
        o.stderr_str()
    );
    let text = o.filtered_stderr().join("\n");
    let record = |line: &str, marker| {
        format!(
            "==PID== {line}\n==PID==    at 0x...: malloc (vg_replace_malloc.c:381)\n\
             ==PID==    by 0x...: lose (mc_leak_req.c:{})\n==PID==    by 0x...: main (mc_leak_req.c:{})\n",
            line_of("mc_leak_req", "LOSE"),
            line_of("mc_leak_req", marker)
        )
    };
    // The full check shows the first lost block; the added check only the new one, with deltas.
    assert!(text.contains(&record("40 bytes in 1 blocks are definitely lost in loss record 2 of 3", "FIRST")), "{text}");
    assert!(text.contains(&record("40 (+40) bytes in 1 (+1) blocks are definitely lost in loss record 3 of 4", "SECOND")), "{text}");
    assert_eq!(text.matches("are definitely lost in loss record").count(), 2, "{text}");
    assert!(text.contains("==PID==    definitely lost: 80 (+40) bytes in 2 (+1) blocks"), "{text}");
    assert!(text.contains("==PID==    still reachable: 64 (-16) bytes in 1 (-1) blocks"), "{text}");
    // Two leak errors: one per check that showed a new definitely lost record.
    assert!(text.ends_with("ERROR SUMMARY: 2 errors from 2 contexts (suppressed: 0 from 0)"), "{text}");
}

/// Parses `xml` with Python's `xml.etree` and returns, per `<error>`, its kind and the texts
/// of its what/xwhat, auxwhats and leaked bytes, one line each.
fn parse_xml(xml: &str) -> Vec<String> {
    let script = r#"
import sys, xml.etree.ElementTree as E
root = E.fromstring(sys.stdin.read())
assert root.tag == 'valgrindoutput'
assert root.find('protocolversion').text == '4'
assert root.find('protocoltool').text == 'memcheck'
assert [s.find('state').text for s in root.findall('status')] == ['RUNNING', 'FINISHED']
assert root.find('errorcounts') is not None and root.find('suppcounts') is not None
for e in root.findall('error'):
    what = e.findtext('what') or e.findtext('xwhat/text')
    parts = [e.findtext('kind'), what]
    parts += ['aux: ' + a.text for a in e.findall('auxwhat')]
    parts += ['stacks: %d' % len(e.findall('stack'))]
    if e.find('xwhat/leakedbytes') is not None:
        parts.append('leaked: %s/%s' % (e.findtext('xwhat/leakedbytes'), e.findtext('xwhat/leakedblocks')))
    if e.find('suppression') is not None:
        parts.append('supp: ' + e.findtext('suppression/skind'))
    print(' | '.join(parts))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "not well-formed protocol 4:\n{}\n{xml}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

#[test]
fn xml_output_is_well_formed_protocol_4_with_leak_kinds() {
    let file = std::env::temp_dir().join(format!("vg-leak-{}.xml", std::process::id()));
    let xml_file = format!("--xml-file={}", file.display());
    let o = run(&["--xml=yes", &xml_file, "--leak-check=full", "--show-leak-kinds=all", "--gen-suppressions=all"], "mc_leak_kinds");
    let xml = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).ok();
    assert_eq!(o.stderr_str(), "", "the text log is quiet with --xml=yes");
    assert!(xml.contains("<exe>") && xml.contains("mc_leak_kinds</exe>"), "{xml}");
    assert_eq!(
        parse_xml(&xml),
        [
            "Leak_DefinitelyLost | 20 bytes in 2 blocks are definitely lost in loss record 1 of 5 | stacks: 1 | leaked: 20/2 | supp: Memcheck:Leak",
            "Leak_PossiblyLost | 48 bytes in 1 blocks are possibly lost in loss record 2 of 5 | stacks: 1 | leaked: 48/1 | supp: Memcheck:Leak",
            "Leak_IndirectlyLost | 64 bytes in 2 blocks are indirectly lost in loss record 3 of 5 | stacks: 1 | leaked: 64/2 | supp: Memcheck:Leak",
            "Leak_DefinitelyLost | 96 (32 direct, 64 indirect) bytes in 1 blocks are definitely lost in loss record 4 of 5 | stacks: 1 | leaked: 96/1 | supp: Memcheck:Leak",
            "Leak_StillReachable | 100 bytes in 1 blocks are still reachable in loss record 5 of 5 | stacks: 1 | leaked: 100/1 | supp: Memcheck:Leak",
        ]
    );
    assert!(xml.contains("<skaux>match-leak-kinds: definite</skaux>"), "{xml}");
}

#[test]
fn xml_errors_carry_their_block_descriptions() {
    let file = std::env::temp_dir().join(format!("vg-free-{}.xml", std::process::id()));
    let mut cmd = Command::new(valgrind());
    cmd.args(["--tool=memcheck", "--xml=yes", &format!("--xml-file={}", file.display())]).arg(build_dynamic("mc_free"));
    let o = run_command(cmd, b"");
    let xml = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).ok();
    assert_eq!(o.stderr_str(), "");
    let errors = parse_xml(&xml);
    assert_eq!(errors.len(), 3, "{xml}");
    assert!(errors[0].starts_with("InvalidRead | Invalid read of size 4 | aux: Address 0x"), "{errors:?}");
    assert!(errors[0].contains(" is 4 bytes inside a block of size 16 free'd | aux: Block was alloc'd at | stacks: 3"), "{errors:?}");
    assert!(errors[1].starts_with("InvalidFree | Invalid free() / delete / delete[] / realloc() | aux: Address"), "{errors:?}");
    assert!(errors[2].starts_with("InvalidFree |") && errors[2].contains("is on thread 1's stack | aux: in frame #1, created by main (mc_free.c:5) | stacks: 1"), "{errors:?}");
    // Three contexts, once each, most recent first.
    assert!(xml.contains("<errorcounts>\n  <pair>\n    <count>1</count>\n    <unique>0x2</unique>"), "{xml}");
}

#[test]
fn bad_leak_options_are_rejected_as_valgrind_does() {
    for (opt, why) in [
        ("--show-leak-kinds=foo", Some("valgrind: foo is an invalid show-leak-kinds set")),
        ("--errors-for-leak-kinds=definite,x", Some("valgrind: definite,x is an invalid errors-for-leak-kinds set")),
        ("--show-reachable=maybe", Some("valgrind: Invalid boolean value 'maybe' (should be 'yes' or 'no')")),
        ("--leak-check-heuristics=foo", Some("valgrind: foo is an invalid leak-check-heuristics set")),
        ("--leak-resolution=xx", None),
    ] {
        let o = run(&[opt], "mc_leak_kinds");
        let err = o.stderr_str();
        let first = match why {
            Some(_) => format!("valgrind: Bad option: {opt}"),
            None => format!("valgrind: Unknown option: {opt}"),
        };
        let mut want = vec![first];
        want.extend(why.map(String::from));
        want.push("valgrind: Use --help for more information or consult the user manual.".to_string());
        assert_eq!(err.lines().collect::<Vec<_>>(), want, "{opt}");
        assert_eq!(o.shell_status(), 1, "{opt}");
    }
}

#[test]
fn heuristics_make_interior_pointers_count() {
    let tail = |args: &[&str]| -> Vec<String> {
        let o = run(&[&["--leak-check=full"], args].concat(), "mc_leak_heur");
        let r = leak_report(&o);
        let end = r.iter().position(|l| l.starts_with("        suppressed:")).expect("summary");
        r[..end].to_vec()
    };
    let reachable = |lines: &[&str]| {
        let mut want = summary("0 bytes in 0 blocks", "0 bytes in 0 blocks", "0 bytes in 0 blocks", "76 bytes in 2 blocks", "");
        want.pop();
        want.push("                      of which reachable via heuristic:".to_string());
        want.extend(lines.iter().map(|l| format!("                        {l}")));
        want
    };
    assert_eq!(
        tail(&[]),
        reachable(&["length64           : 48 bytes in 1 blocks", "newarray           : 28 bytes in 1 blocks"])
    );
    // A length64 block is a new[] array too.
    assert_eq!(tail(&["--leak-check-heuristics=newarray"]), reachable(&["newarray           : 76 bytes in 2 blocks"]));
    let none = tail(&["--leak-check-heuristics=none"]);
    assert!(none.contains(&"     possibly lost: 76 bytes in 2 blocks".to_string()), "{none:?}");
    assert!(none.contains(&"48 bytes in 1 blocks are possibly lost in loss record 2 of 2".to_string()), "{none:?}");
}
