//! Memcheck's whole report on our own C and C++ programs with known bugs
//! (`tests/guest/mcx_*.c`, `*.cpp`, built dynamically with `-g -O0`), filtered and compared
//! line by line with `tests/expected/memcheck/<name>.exp`. The expected files are what the
//! real Valgrind 3.19 prints for the same binaries (with its debug info, `valgrind-dbg`,
//! installed, so its replacement functions have file:line frames), through the same filter.
//!
//! Check the expectations against a real Valgrind:
//! `VG_TEST_VALGRIND=/usr/bin/valgrind cargo test -p vg-tests --test memcheck_expected -- --include-ignored`;
//! add `VG_TEST_BLESS=1` to rewrite them from it (then review the diff).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use vg_tests::guests::{Outcome, build_dynamic, external_valgrind, run_command, run_native, valgrind, workspace_root};

/// One run: guest `guest` under memcheck with `args`, its stderr expected in `<exp>.exp`.
struct Case {
    guest: &'static str,
    args: &'static [&'static str],
    exp: &'static str,
    status: i32,
}

fn expected_path(exp: &str) -> PathBuf {
    workspace_root().join("tests").join("expected").join("memcheck").join(format!("{exp}.exp"))
}

/// Whether a frame's location is the guest's own source or one of the replacement files: such
/// locations are compared exactly, all others (the C and C++ libraries, the loader) are not,
/// as they show a file:line or an object name depending on which debug info is installed.
fn kept_location(loc: &str) -> bool {
    loc.starts_with("mcx_") || loc.starts_with("vg_replace_")
}

/// The harness's pid and address filter (and the pid of debug lines), then: the banner's copyright and version lines
/// reduced to their first words, the program's path in `Command:` to its file name, and the
/// location of frames outside the guest and the replacement functions to `(...)`.
fn filter(o: &Outcome, prog: &Path) -> Vec<String> {
    let prog = prog.to_string_lossy();
    let file = prog.rsplit('/').next().unwrap_or(&prog).to_string();
    o.filtered_stderr()
        .into_iter()
        .map(|l| {
            // The harness filters the pid of `==pid==` lines; debug lines (`--pid--`) too.
            if let Some(rest) = l.strip_prefix("--")
                && let Some((pid, body)) = rest.split_once("--")
                && !pid.is_empty()
                && pid.bytes().all(|b| b.is_ascii_digit())
            {
                return format!("--PID--{body}");
            }
            let Some(body) = l.strip_prefix("==PID== ") else { return l };
            if body.starts_with("Copyright (C) ") {
                return "==PID== Copyright (C) ...".to_string();
            }
            if body.starts_with("Using ") && body.ends_with("rerun with -h for copyright info") {
                return "==PID== Using ...".to_string();
            }
            if let Some(cmd) = body.strip_prefix("Command: ") {
                return format!("==PID== Command: {}", cmd.replacen(&*prog, &file, 1));
            }
            let frame = body.trim_start();
            if (frame.starts_with("at 0x...: ") || frame.starts_with("by 0x...: "))
                && l.ends_with(')')
                && let Some(open) = l.rfind(" (")
                && !kept_location(&l[open + 2..l.len() - 1])
            {
                return format!("{} (...)", &l[..open]);
            }
            l
        })
        .collect()
}

fn check(case: &Case) {
    let prog = build_dynamic(case.guest);
    let mut cmd = Command::new(valgrind());
    cmd.args(case.args).arg(&prog);
    let o = run_command(cmd, b"");
    let mut got = filter(&o, &prog).join("\n");
    got.push('\n');
    let path = expected_path(case.exp);
    if std::env::var_os("VG_TEST_BLESS").is_some_and(|v| v == "1") {
        assert!(external_valgrind().is_some(), "VG_TEST_BLESS=1 writes Valgrind's output: set VG_TEST_VALGRIND");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &got).unwrap();
    }
    let want = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if want != got {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .enumerate()
            .filter(|(_, (w, g))| w != g)
            .map(|(i, (w, g))| format!("line {}:\n  want {w}\n  got  {g}", i + 1))
            .collect();
        panic!(
            "{}: filtered stderr differs ({} lines expected, {} got)\n{}\n--- got:\n{got}",
            case.exp,
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
    // The tool must not change what the program does.
    let native = run_native(&prog, &[], b"");
    assert_eq!(o.stdout_str(), native.stdout_str(), "{}: stdout", case.guest);
    assert_eq!(o.shell_status(), case.status, "{}: exit status\n{got}", case.guest);
}

/// One test per case: `name => guest, [args], exp, status`.
macro_rules! cases {
    ($($(#[$meta:meta])* $test:ident => $guest:literal, [$($arg:literal),*], $exp:literal, $status:literal;)*) => {
        $(
            $(#[$meta])*
            #[test]
            fn $test() {
                check(&Case { guest: $guest, args: &[$($arg),*], exp: $exp, status: $status });
            }
        )*
    };
}

cases! {
    heap_overrun => "mcx_overrun", [], "mcx_overrun", 0;
    heap_overrun_error_exitcode => "mcx_overrun", ["--error-exitcode=3"], "mcx_overrun", 3;
    heap_underrun => "mcx_underrun", [], "mcx_underrun", 0;
    use_after_free => "mcx_uaf", [], "mcx_uaf", 0;
    double_free => "mcx_double_free", [], "mcx_double_free", 0;
    mismatched_new_delete_malloc_free => "mcx_mismatch", [], "mcx_mismatch", 0;
    branch_on_undefined_in_if_and_switch => "mcx_cond", [], "mcx_cond", 0;
    undefined_value_hint_precedes_error_lists => "mcx_cond", ["-s"], "mcx_cond_s", 0;
    // Cargo runs the tests in the package's directory: the path is relative to it.
    used_suppressions_follow_error_lists => "mcx_cond", ["-s", "--suppressions=expected/memcheck/mcx_cond.supp"], "mcx_cond_supp", 0;
    no_undefined_value_hint_with_origins => "mcx_cond", ["--track-origins=yes"], "mcx_cond_origins", 0;
    write_of_undefined_buffer => "mcx_write_uninit", [], "mcx_write_uninit", 0;
    undefined_pointer_dereferenced => "mcx_undef_ptr", [], "mcx_undef_ptr", 0;
    bitfields_and_partly_defined_words_are_clean => "mcx_bitfields", [], "mcx_bitfields", 0;
    strcpy_and_mempcpy_overlap => "mcx_overlap", [], "mcx_overlap", 0;
    memcpy_overlap_is_a_memmove => "mcx_memcpy_overlap", [], "mcx_memcpy_overlap", 0;
    memcpy_overrun_runs_as_memmove => "mcx_memcpy_overrun", [], "mcx_memcpy_overrun", 0;
    old_memcpy_version_is_a_memmove => "mcx_memcpy_old", [], "mcx_memcpy_old", 0;
    stack_array_overrun_is_unseen => "mcx_stack_overrun", [], "mcx_stack_overrun", 0;
    calloc_realloc_growth_is_clean => "mcx_realloc", [], "mcx_realloc", 0;
    fishy_malloc_size => "mcx_fishy", [], "mcx_fishy", 0;
    free_of_a_stack_address => "mcx_free_stack", [], "mcx_free_stack", 0;
    stack_addresses_name_their_frames => "mcx_stack_frames", [], "mcx_stack_frames", 0;
    every_leak_kind => "mcx_leak", ["--leak-check=full", "--show-leak-kinds=all"], "mcx_leak", 0;
    leak_kinds_shown_by_default => "mcx_leak", ["--leak-check=full"], "mcx_leak_full", 0;
    leak_summary_only => "mcx_leak", [], "mcx_leak_summary", 0;
}
