//! Memcheck and the red zone (`tests/guest/mc_redzone.c`): a call or a return makes the 128
//! bytes below the new stack pointer undefined (the front end's ABI hint), so a leaf function
//! reading an unwritten local reports "Conditional jump or move depends on uninitialised
//! value(s)" even though the previous leaf function left defined data in those bytes; with
//! `--track-origins=yes` the origin is "a stack allocation" at the entry of the called function.
//! The expected reports are Valgrind 3.19's for the same program (checked by hand against
//! `/usr/bin/valgrind`; where it is installed, the last test compares them again).

use std::path::Path;
use std::process::Command;

use vg_tests::guests::{
    Outcome, Variant, build, build_dynamic, line_of, run_command, run_native, run_tool, valgrind,
};

fn memcheck(launcher: &Path, args: &[&str], prog: &Path) -> Outcome {
    let mut cmd = Command::new(launcher);
    cmd.arg("--tool=memcheck").args(args).arg(prog);
    run_command(cmd, b"")
}

/// The error reports: from each headline to the blank line after it, prefix removed.
fn reports(o: &Outcome) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    for l in o.filtered_stderr() {
        let body = l
            .strip_prefix("==PID== ")
            .or_else(|| l.strip_prefix("==PID=="))
            .unwrap_or("")
            .to_string();
        match cur.as_mut() {
            Some(c) if body.is_empty() => out.push(std::mem::take(c)),
            Some(c) => {
                c.push(body);
                continue;
            }
            None if body.starts_with("Conditional") || body.starts_with("Use of") => {
                cur = Some(vec![body]);
                continue;
            }
            None => {}
        }
        cur = None;
    }
    out
}

fn l(marker: &str) -> usize {
    line_of("mc_redzone", marker)
}

fn cond_report() -> Vec<String> {
    vec![
        "Conditional jump or move depends on uninitialised value(s)".to_string(),
        format!("   at 0x...: peek (mc_redzone.c:{})", l("PEEK-COND")),
        format!("   by 0x...: main (mc_redzone.c:{})", l("r += peek()")),
    ]
}

/// The origin: one frame, the called function's first instruction (its opening line).
fn stack_origin() -> Vec<String> {
    vec![
        " Uninitialised value was created by a stack allocation".to_string(),
        format!("   at 0x...: peek (mc_redzone.c:{})", l("PEEK-FRAME")),
    ]
}

#[test]
fn a_local_in_bytes_an_earlier_call_wrote_is_undefined() {
    for prog in [
        build("mc_redzone", Variant::StaticO0),
        build_dynamic("mc_redzone"),
    ] {
        let o = memcheck(&valgrind(), &[], &prog);
        let text = o.stderr_str();
        assert_eq!(reports(&o), [cond_report()], "{}:\n{text}", prog.display());
        assert!(
            text.contains("ERROR SUMMARY: 1 errors from 1 contexts"),
            "{text}"
        );
        assert_eq!(o.stdout_str(), "done 1\n");
    }
}

#[test]
fn with_track_origins_the_value_comes_from_the_callee_s_stack() {
    for prog in [
        build("mc_redzone", Variant::StaticO0),
        build_dynamic("mc_redzone"),
    ] {
        let o = memcheck(&valgrind(), &["--track-origins=yes"], &prog);
        let mut want = cond_report();
        want.extend(stack_origin());
        assert_eq!(
            reports(&o),
            [want],
            "{}:\n{}",
            prog.display(),
            o.stderr_str()
        );
    }
}

#[test]
fn the_program_runs_unchanged_under_none() {
    let prog = build("mc_redzone", Variant::StaticO0);
    let native = run_native(&prog, &[], b"");
    let none = run_tool(&["--tool=none"], &prog, &[], b"");
    assert_eq!(
        (none.stdout_str(), none.shell_status()),
        (native.stdout_str(), native.shell_status())
    );
}

#[test]
fn reports_match_the_installed_valgrind() {
    let reference = Path::new("/usr/bin/valgrind");
    if !reference.exists() {
        return;
    }
    let prog = build_dynamic("mc_redzone");
    for args in [&[][..], &["--track-origins=yes"]] {
        let theirs = reports(&memcheck(reference, args, &prog));
        assert_eq!(
            theirs.len(),
            1,
            "the installed Valgrind reports one error ({args:?})"
        );
        assert_eq!(
            reports(&memcheck(&valgrind(), args, &prog)),
            theirs,
            "{args:?}"
        );
    }
}
