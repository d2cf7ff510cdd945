//! Memcheck on our own guest programs with known bugs (`tests/guest/mc_*.c`): the reports,
//! filtered of pids and addresses, against what each program is known to do, written out here
//! by hand; and a correct program that must report no error.

use std::process::Command;

use vg_tests::guests::{Outcome, Variant, build, line_of, run_command, valgrind};

/// Runs guest `name` under memcheck (with the environment cargo gives tests, `LD_LIBRARY_PATH`
/// included: a static C library parses it at start-up with its vectorised string functions).
fn run_mc(args: &[&str], name: &str, variant: Variant) -> Outcome {
    run_mc_args(args, name, variant, &[])
}

fn run_mc_args(args: &[&str], name: &str, variant: Variant, guest_args: &[&str]) -> Outcome {
    let prog = build(name, variant);
    let mut cmd = Command::new(valgrind());
    cmd.arg("--tool=memcheck").args(args).arg(&prog).args(guest_args);
    run_command(cmd, b"")
}

/// The error reports (from a headline to the blank line after it), without the final
/// summaries: each report's lines as one block.
fn reports(lines: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    for l in lines {
        let body = l.strip_prefix("==PID== ").or_else(|| l.strip_prefix("==PID==")).unwrap_or("");
        match (&mut cur, body) {
            (Some(c), "") => {
                out.push(std::mem::take(c));
                cur = None;
            }
            (Some(c), b) => c.push(b.to_string()),
            (None, b)
                if b.starts_with("Invalid")
                    || b.starts_with("Conditional")
                    || b.starts_with("Use of")
                    || b.starts_with("Syscall param")
                    || b.starts_with("Mismatched")
                    || b.starts_with("Source and destination overlap") =>
            {
                cur = Some(vec![b.to_string()])
            }
            _ => {}
        }
    }
    out
}

fn summary(lines: &[String]) -> String {
    lines.iter().rev().find(|l| l.contains("ERROR SUMMARY")).cloned().unwrap_or_default()
}

#[test]
fn overrun_is_an_invalid_write_after_a_block() {
    let o = run_mc(&[], "mc_overrun", Variant::StaticO0);
    let lines = o.filtered_stderr();
    let (alloc, bad) = (line_of("mc_overrun", "ALLOC"), line_of("mc_overrun", "OVERRUN"));
    assert_eq!(
        reports(&lines),
        vec![vec![
            "Invalid write of size 4".to_string(),
            format!("   at 0x...: main (mc_overrun.c:{bad})"),
            " Address 0x... is 0 bytes after a block of size 40 alloc'd".to_string(),
            "   at 0x...: malloc (vg_replace_malloc.c:381)".to_string(),
            format!("   by 0x...: main (mc_overrun.c:{alloc})"),
        ]],
        "{}",
        o.stderr_str()
    );
    assert_eq!(summary(&lines), "==PID== ERROR SUMMARY: 1 errors from 1 contexts (suppressed: 0 from 0)");
    assert_eq!(o.shell_status(), 0);
    assert!(lines.contains(&"==PID== HEAP SUMMARY:".to_string()), "{}", o.stderr_str());
}

#[test]
fn error_exitcode_applies_when_errors_were_found() {
    let o = run_mc(&["--error-exitcode=3"], "mc_overrun", Variant::StaticO0);
    assert_eq!(o.shell_status(), 3, "{}", o.stderr_str());
    let clean = run_mc(&["--error-exitcode=3"], "mc_clean", Variant::StaticO0);
    assert_eq!(clean.shell_status(), 0, "{}", clean.stderr_str());
}

#[test]
fn branch_on_uninitialised_local() {
    let o = run_mc(&[], "mc_cond", Variant::StaticO0);
    let lines = o.filtered_stderr();
    let (cond, call) = (line_of("mc_cond", "COND"), line_of("mc_cond", "pick(&x)"));
    assert_eq!(
        reports(&lines),
        vec![vec![
            "Conditional jump or move depends on uninitialised value(s)".to_string(),
            format!("   at 0x...: pick (mc_cond.c:{cond})"),
            format!("   by 0x...: main (mc_cond.c:{call})"),
        ]],
        "{}",
        o.stderr_str()
    );
    assert_eq!(summary(&lines), "==PID== ERROR SUMMARY: 1 errors from 1 contexts (suppressed: 0 from 0)");
    assert_eq!(o.stdout_str(), "1\n");
}

#[test]
fn write_of_an_uninitialised_buffer() {
    let o = run_mc(&[], "mc_write_uninit", Variant::StaticO0);
    let lines = o.filtered_stderr();
    let (alloc, call) = (line_of("mc_write_uninit", "ALLOC"), line_of("mc_write_uninit", "WRITE"));
    let r = reports(&lines);
    assert_eq!(r.len(), 1, "{}", o.stderr_str());
    let r = &r[0];
    assert_eq!(r[0], "Syscall param write(buf) points to uninitialised byte(s)");
    // The frame of the C library's write, then the caller.
    assert!(r[1].starts_with("   at 0x...: write "), "{r:?}");
    assert_eq!(r[2], format!("   by 0x...: main (mc_write_uninit.c:{call})"));
    assert_eq!(r[3], " Address 0x... is 2 bytes inside a block of size 10 alloc'd");
    assert_eq!(r[4], "   at 0x...: malloc (vg_replace_malloc.c:381)");
    assert_eq!(r[5], format!("   by 0x...: main (mc_write_uninit.c:{alloc})"));
    // The write still happens: ten bytes, the first two defined.
    assert_eq!((o.stdout.len(), &o.stdout[..2]), (10, &b"a\n"[..]));
    assert_eq!(summary(&lines), "==PID== ERROR SUMMARY: 1 errors from 1 contexts (suppressed: 0 from 0)");
}

#[test]
fn use_after_free_double_free_and_bad_free() {
    let o = run_mc(&[], "mc_free", Variant::StaticO0);
    let lines = o.filtered_stderr();
    let l = |m| line_of("mc_free", m);
    let freed = vec![
        format!("   at 0x...: free (vg_replace_malloc.c:872)"),
        format!("   by 0x...: main (mc_free.c:{})", l("FREE1")),
        " Block was alloc'd at".to_string(),
        "   at 0x...: malloc (vg_replace_malloc.c:381)".to_string(),
        format!("   by 0x...: main (mc_free.c:{})", l("ALLOC")),
    ];
    let mut uaf = vec![
        "Invalid read of size 4".to_string(),
        format!("   at 0x...: main (mc_free.c:{})", l("UAF")),
        " Address 0x... is 4 bytes inside a block of size 16 free'd".to_string(),
    ];
    uaf.extend(freed.clone());
    let mut double = vec![
        "Invalid free() / delete / delete[] / realloc()".to_string(),
        "   at 0x...: free (vg_replace_malloc.c:872)".to_string(),
        format!("   by 0x...: main (mc_free.c:{})", l("FREE2")),
        " Address 0x... is 0 bytes inside a block of size 16 free'd".to_string(),
    ];
    double.extend(freed);
    let bad = vec![
        "Invalid free() / delete / delete[] / realloc()".to_string(),
        "   at 0x...: free (vg_replace_malloc.c:872)".to_string(),
        format!("   by 0x...: main (mc_free.c:{})", l("FREE3")),
        " Address 0x... is on thread 1's stack".to_string(),
        " in frame #1, created by main (mc_free.c:5)".to_string(),
    ];
    assert_eq!(reports(&lines), vec![uaf, double, bad], "{}", o.stderr_str());
    assert_eq!(summary(&lines), "==PID== ERROR SUMMARY: 3 errors from 3 contexts (suppressed: 0 from 0)");
}

#[test]
fn leak_kinds_are_told_apart() {
    let o = run_mc(&["--leak-check=full", "--show-leak-kinds=all"], "mc_leak", Variant::StaticO0);
    let lines = o.filtered_stderr();
    let text = lines.join("\n");
    let l = |m| line_of("mc_leak", m);
    for (what, func, marker) in [
        ("24 bytes in 1 blocks are indirectly lost", "leak", "IND"),
        ("32 bytes in 1 blocks are possibly lost", "leak", "POS"),
        ("64 (40 direct, 24 indirect) bytes in 1 blocks are definitely lost", "leak", "DEF"),
        ("100 bytes in 1 blocks are still reachable", "main", "KEEP"),
    ] {
        let at = lines.iter().position(|x| x.contains(what) && x.contains("in loss record")).unwrap_or_else(|| panic!("no {what}:\n{text}"));
        assert_eq!(lines[at + 1], "==PID==    at 0x...: malloc (vg_replace_malloc.c:381)");
        assert_eq!(lines[at + 2], format!("==PID==    by 0x...: {func} (mc_leak.c:{})", l(marker)), "{text}");
    }
    assert!(text.contains("==PID== LEAK SUMMARY:"), "{text}");
}

#[test]
fn correct_programs_report_no_errors() {
    for variant in Variant::ALL {
        let o = run_mc(&[], "mc_clean", variant);
        let lines = o.filtered_stderr();
        assert_eq!(reports(&lines), Vec::<Vec<String>>::new(), "{}: {}", variant.name(), o.stderr_str());
        assert_eq!(summary(&lines), "==PID== ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 0 from 0)", "{}", variant.name());
        assert_eq!(o.stdout_str(), "hello, memcheck! 15 328350 1\n", "{}", variant.name());
        assert_eq!(o.shell_status(), 0);
    }
}

#[test]
fn overlapping_copies_are_reported_and_string_functions_stay_silent() {
    for variant in [Variant::StaticO0, Variant::StaticPieO2] {
        let o = run_mc(&[], "mc_overlap", variant);
        let lines = o.filtered_stderr();
        let l = |m| line_of("mc_overlap", m);
        assert_eq!(
            reports(&lines),
            vec![
                vec![
                    "Source and destination overlap in memcpy(0x..., 0x..., 10)".to_string(),
                    "   at 0x...: memcpy (vg_replace_strmem.c:1120)".to_string(),
                    format!("   by 0x...: main (mc_overlap.c:{})", l("MEMCPY")),
                ],
                vec![
                    "Source and destination overlap in strncpy(0x..., 0x..., 5)".to_string(),
                    "   at 0x...: strncpy (vg_replace_strmem.c:599)".to_string(),
                    format!("   by 0x...: main (mc_overlap.c:{})", l("STRNCPY")),
                ],
            ],
            "{}: {}",
            variant.name(),
            o.stderr_str()
        );
        // The addresses are the arguments: destination one byte above the source.
        let text = o.stderr_str();
        let args = text.split("overlap in memcpy(").nth(1).and_then(|r| r.split(')').next()).unwrap_or_default();
        let v: Vec<u64> = args.split(", ").take(2).map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).unwrap()).collect();
        assert_eq!(v[0], v[1] + 1, "{args}");
        assert_eq!(summary(&lines), "==PID== ERROR SUMMARY: 2 errors from 2 contexts (suppressed: 0 from 0)", "{}", variant.name());
        // The string functions give the C library's results; the overlapping memcpy copies
        // like memmove (strncpy's overlapping result is undefined, so it is not checked).
        assert!(o.stdout_str().starts_with("5 0 llo llo\naabcdefghijlmnopqrst"), "{}: {}", variant.name(), o.stdout_str());
    }
}

/// The guest programs the none-tool tests run, with their arguments and the error summary
/// memcheck must give: none of them has a memory error, except the deliberate faulting stores
/// to 0x1000.. of `sig_handlers` (caught by its SIGSEGV handler), which Valgrind reports too.
const CLEAN_GUESTS: &[(&str, &[&str], &str)] = &[
    ("hello", &[], "0 errors from 0 contexts"),
    ("printf", &[], "0 errors from 0 contexts"),
    ("recursion", &[], "0 errors from 0 contexts"),
    ("strings", &[], "0 errors from 0 contexts"),
    ("qsort", &[], "0 errors from 0 contexts"),
    ("setjmp", &[], "0 errors from 0 contexts"),
    ("malloc", &[], "0 errors from 0 contexts"),
    ("bytecode", &[], "0 errors from 0 contexts"),
    ("checksum", &[], "0 errors from 0 contexts"),
    ("args", &["one", "two words"], "0 errors from 0 contexts"),
    ("exitcode", &["ret42"], "0 errors from 0 contexts"),
    ("threads16", &[], "0 errors from 0 contexts"),
    ("stdin", &[], "0 errors from 0 contexts"),
    ("mc_libm", &[], "0 errors from 0 contexts"),
    ("sig_handlers", &[], "3 errors from 1 contexts"),
];

#[test]
fn guest_programs_have_no_false_positives() {
    let mut bad = Vec::new();
    std::thread::scope(|sc| {
        let runs: Vec<_> = Variant::ALL
            .iter()
            .map(|&variant| {
                sc.spawn(move || {
                    let mut bad = Vec::new();
                    for (name, args, want) in CLEAN_GUESTS {
                        let o = run_mc_args(&[], name, variant, args);
                        let got = summary(&o.filtered_stderr());
                        let want = format!("==PID== ERROR SUMMARY: {want} (suppressed: 0 from 0)");
                        if got != want {
                            bad.push(format!("{name} ({}): {got}\n{}", variant.name(), o.stderr_str()));
                        }
                    }
                    bad
                })
            })
            .collect();
        for r in runs {
            bad.extend(r.join().unwrap());
        }
    });
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}
