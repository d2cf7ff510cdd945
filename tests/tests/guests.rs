//! Guest programs run natively and under `valgrind --tool=none`, in every build variant:
//! stdout and the exit status must be identical, and the tool's stderr must carry its banner.
//! Also the core options visible from outside (`-q`, `--stats=yes`, an unknown option), the
//! SIGILL path for undecodable and undefined instructions, and the tool executables' layout
//! (release at 0x58000000, inner build at 0x38000000).

use std::path::Path;
use std::process::Command;

use vg_tests::guests::{
    self, Outcome, Variant, build, external_valgrind, first_difference, run_native, run_tool,
};

/// One guest invocation: program, arguments, stdin and the exit status native runs must have
/// (checked too, so a broken guest cannot pass by failing the same way twice).
struct Case<'a> {
    name: &'a str,
    args: &'a [&'a str],
    stdin: &'a [u8],
    status: i32,
}

impl<'a> Case<'a> {
    const fn new(name: &'a str) -> Self {
        Case {
            name,
            args: &[],
            stdin: b"",
            status: 0,
        }
    }
    const fn args(mut self, args: &'a [&'a str]) -> Self {
        self.args = args;
        self
    }
    const fn stdin(mut self, stdin: &'a [u8]) -> Self {
        self.stdin = stdin;
        self
    }
    const fn status(mut self, status: i32) -> Self {
        self.status = status;
        self
    }
}

/// Compares one native run with one run under the tool; returns what differs.
fn check_against_native(prog: &Path, case: &Case, native: &Outcome, tool: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    if native.shell_status() != case.status {
        problems.push(format!(
            "native run exited {} (expected {}); stderr: {}",
            native.shell_status(),
            case.status,
            native.stderr_str()
        ));
    }
    if tool.stdout != native.stdout {
        problems.push(format!(
            "stdout differs: {}",
            first_difference(&native.stdout, &tool.stdout)
        ));
    }
    if tool.shell_status() != native.shell_status() {
        problems.push(format!(
            "status {} under the tool, {} natively",
            tool.shell_status(),
            native.shell_status()
        ));
    }
    let stderr = tool.stderr_str();
    let banner = format!("{} Nulgrind", tool.prefix());
    if !stderr.lines().any(|l| l.starts_with(&banner)) {
        problems.push(format!("no `{banner}` banner line on stderr"));
    }
    let command = format!("{} Command: {}", tool.prefix(), prog.display());
    if !stderr.lines().any(|l| l.starts_with(&command)) {
        problems.push(format!("no `{command}` line on stderr"));
    }
    if !problems.is_empty() {
        problems.push(format!("tool stderr:\n{stderr}"));
    }
    problems
}

/// Runs every case in every variant and fails with one report listing all mismatches.
fn differential(cases: &[Case]) {
    let mut failures = Vec::new();
    for variant in Variant::ALL {
        for case in cases {
            let prog = build(case.name, variant);
            let native = run_native(&prog, case.args, case.stdin);
            let tool = run_tool(&["--tool=none"], &prog, case.args, case.stdin);
            for p in check_against_native(&prog, case, &native, &tool) {
                failures.push(format!(
                    "[{} {} {:?}] {p}",
                    case.name,
                    variant.name(),
                    case.args
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

macro_rules! guest_tests {
    ($($test:ident: [$($case:expr),+ $(,)?];)+) => {
        $(
            #[test]
            fn $test() {
                differential(&[$($case),+]);
            }
        )+
    };
}

/// Text for the stdin guest: varied line lengths, tabs and runs of spaces.
const STDIN_TEXT: &[u8] = b"the quick brown fox\njumps over\tthe lazy dog\n\n   leading spaces\n\
    a b c d e f g h i j k l m n o p q r s t u v w x y z\nno newline at the end";

guest_tests! {
    hello: [Case::new("hello")];
    printf: [Case::new("printf")];
    recursion: [Case::new("recursion")];
    strings: [Case::new("strings")];
    qsort: [Case::new("qsort")];
    setjmp: [Case::new("setjmp")];
    malloc: [Case::new("malloc")];
    bytecode: [Case::new("bytecode")];
    checksum: [Case::new("checksum")];
    exit_codes: [
        Case::new("exitcode").args(&["exit3"]).status(3),
        Case::new("exitcode").args(&["ret42"]).status(42),
        Case::new("exitcode").args(&["nested"]).status(77),
    ];
    // The guest's own options must reach it untouched, even ones the launcher also knows.
    args: [
        Case::new("args").args(&["one", "two words", "", "--tool=memcheck", "-q", "\u{fc}nic\u{f6}de"]).status(7),
        Case::new("args").status(1),
    ];
    stdin: [Case::new("stdin").stdin(STDIN_TEXT), Case::new("stdin")];
    raw_asm: [Case::new("asm_hello").status(8), Case::new("asm_hello").args(&["x", "y"]).status(10)];
    demo: [Case::new("demo")];
    bench_programs: [
        Case::new("bench_sieve").args(&["100000", "2"]),
        Case::new("bench_sha256").args(&["1", "1"]),
        Case::new("bench_intloop").args(&["300"]),
        Case::new("bench_sort").args(&["20000", "2"]),
    ];
}

/// The guest's environment reaches it (only `VGT_` variables are printed; a tool may add its
/// own variables, as Valgrind does).
#[test]
fn environment_is_passed() {
    let prog = build("args", Variant::StaticO2);
    let with_env = |mut cmd: Command| {
        cmd.env("VGT_GREETING", "hello there")
            .env("VGT_EMPTY", "")
            .env("VGT_A", "=x=");
        guests::run_command(cmd, b"")
    };
    let native = with_env(Command::new(&prog));
    let mut tool_cmd = Command::new(guests::valgrind());
    tool_cmd.args(["-q", "--tool=none"]).arg(&prog);
    let tool = with_env(tool_cmd);
    assert!(
        native
            .stdout_str()
            .contains("env VGT_GREETING=hello there\n"),
        "{}",
        native.stdout_str()
    );
    assert_eq!(tool.stdout_str(), native.stdout_str());
    assert_eq!(tool.shell_status(), native.shell_status());
}

/// `-q` leaves stderr empty for a program that does nothing wrong.
#[test]
fn quiet_prints_nothing_on_stderr() {
    for variant in Variant::ALL {
        let prog = build("hello", variant);
        let tool = run_tool(&["-q", "--tool=none"], &prog, &[], b"");
        assert_eq!(
            tool.stderr_str(),
            "",
            "{}: stderr not empty with -q",
            variant.name()
        );
        assert_eq!(tool.stdout_str(), "Hello, world!\n");
        assert_eq!(tool.shell_status(), 0);
        let exit = run_tool(
            &["--tool=none", "-q"],
            &build("exitcode", variant),
            &["exit3"],
            b"",
        );
        assert_eq!(
            exit.stderr_str(),
            "",
            "{}: stderr not empty with -q",
            variant.name()
        );
        assert_eq!(exit.shell_status(), 3);
    }
}

/// `--stats=yes` adds the per-arena table (`--PID-- core    : ... max/curr mmap'd ...`) on
/// stderr; without it there is none. Stdout is untouched either way.
#[test]
fn stats_adds_arena_table() {
    let prog = build("hello", Variant::StaticO2);
    let arena_line = |o: &Outcome| {
        let start = format!("--{}-- core", o.pid);
        o.stderr_str()
            .lines()
            .any(|l| l.starts_with(&start) && l.contains("max/curr mmap'd"))
    };
    let stats = run_tool(&["--tool=none", "--stats=yes"], &prog, &[], b"");
    assert!(
        arena_line(&stats),
        "no arena table with --stats=yes:\n{}",
        stats.stderr_str()
    );
    assert_eq!(stats.stdout_str(), "Hello, world!\n");
    assert_eq!(stats.shell_status(), 0);
    let plain = run_tool(&["--tool=none"], &prog, &[], b"");
    assert!(
        !arena_line(&plain),
        "arena table without --stats=yes:\n{}",
        plain.stderr_str()
    );
}

/// An unknown core option is rejected before the guest runs: message and exit status 1.
#[test]
fn unknown_option_is_rejected() {
    let prog = build("hello", Variant::StaticO2);
    let tool = run_tool(&["--tool=none", "--no-such-option=3"], &prog, &[], b"");
    assert_eq!(tool.shell_status(), 1, "stderr: {}", tool.stderr_str());
    assert!(
        tool.stderr_str()
            .lines()
            .any(|l| l == "valgrind: Unknown option: --no-such-option=3"),
        "stderr: {}",
        tool.stderr_str()
    );
    assert_eq!(tool.stdout_str(), "", "the guest must not have run");
}

/// Runs the SIGILL guest natively and under the tool; checks the common part and returns the
/// tool's stderr.
fn sigill_run(variant: Variant, which: &str) -> String {
    let prog = build("sigill", variant);
    let native = run_native(&prog, &[which], b"");
    let tool = run_tool(&["--tool=none"], &prog, &[which], b"");
    let ctx = format!("{} {which}", variant.name());
    assert_eq!(
        native.shell_status(),
        132,
        "{ctx}: natively the guest dies of SIGILL"
    );
    assert_eq!(
        tool.shell_status(),
        132,
        "{ctx}: under the tool too; stderr:\n{}",
        tool.stderr_str()
    );
    assert_eq!(tool.stdout_str(), native.stdout_str(), "{ctx}: stdout");
    assert_eq!(
        native.stdout_str(),
        format!("about to execute {which}\n"),
        "{ctx}"
    );
    let stderr = tool.stderr_str();
    let terminating = format!(
        "{} Process terminating with default action of signal 4 (SIGILL)",
        tool.prefix()
    );
    assert!(
        stderr.lines().any(|l| l == terminating),
        "{ctx}: no `{terminating}` in:\n{stderr}"
    );
    stderr
}

/// Bytes that decode to no instruction: the "unhandled instruction bytes" report (naming the
/// first byte), then the guest gets SIGILL and dies of its default action.
#[test]
fn undecodable_instruction_reports_and_raises_sigill() {
    for variant in Variant::ALL {
        let stderr = sigill_run(variant, "badop");
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("unhandled instruction bytes: 0x6 ")),
            "{}: no `unhandled instruction bytes: 0x6 ...` line in:\n{stderr}",
            variant.name()
        );
    }
}

/// `ud2` is a known instruction whose job is to raise SIGILL: no "unhandled" report, just
/// the signal's default action.
#[test]
fn ud2_raises_sigill_without_unhandled_report() {
    for variant in Variant::ALL {
        let stderr = sigill_run(variant, "ud2");
        assert!(
            !stderr.contains("unhandled instruction bytes"),
            "{}: ud2 is decodable, yet:\n{stderr}",
            variant.name()
        );
    }
}

/// `readelf -lhW` of a tool executable.
fn readelf(exe: &Path) -> String {
    let out = Command::new("readelf")
        .arg("-lhW")
        .arg(exe)
        .output()
        .expect("run readelf (binutils)");
    assert!(
        out.status.success(),
        "readelf {}: {}",
        exe.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tool executable is a static non-PIE `EXEC` whose first `LOAD` segment is at `base`,
/// with no `INTERP` and no `DYNAMIC` segment.
fn assert_tool_layout(exe: &Path, base: u64) {
    let text = readelf(exe);
    let ctx = format!("{}:\n{text}", exe.display());
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("Type:") && l.contains("EXEC")),
        "not EXEC: {ctx}"
    );
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("INTERP")),
        "has INTERP: {ctx}"
    );
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("DYNAMIC")),
        "has DYNAMIC: {ctx}"
    );
    let first_load = text
        .lines()
        .find(|l| l.trim_start().starts_with("LOAD "))
        .unwrap_or_else(|| panic!("no LOAD segment: {ctx}"));
    // Columns: Type Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align.
    let vaddr = first_load
        .split_whitespace()
        .nth(2)
        .expect("VirtAddr column");
    let vaddr = u64::from_str_radix(vaddr.trim_start_matches("0x"), 16).expect("hex VirtAddr");
    assert_eq!(
        vaddr, base,
        "first LOAD at {vaddr:#x}, expected {base:#x}: {ctx}"
    );
}

#[test]
fn release_tool_is_static_exec_at_0x58000000() {
    if external_valgrind().is_some() {
        return; // an outside Valgrind's tools are not ours to check
    }
    guests::valgrind(); // builds the tool executables
    assert_tool_layout(
        &guests::target_dir()
            .join("release")
            .join("none-amd64-linux"),
        0x5800_0000,
    );
}

/// The inner build (`cargo build --profile inner`): the same code linked at 0x38000000, so it
/// can later run as a guest of the normal build; it must run guests by itself too.
#[test]
fn inner_build_is_at_0x38000000_and_runs_guests() {
    if external_valgrind().is_some() {
        return;
    }
    let launcher = guests::inner_valgrind();
    assert_tool_layout(
        &guests::target_dir().join("inner").join("none-amd64-linux"),
        0x3800_0000,
    );
    for variant in Variant::ALL {
        for (name, args, status) in [("hello", &[][..], 0), ("exitcode", &["nested"][..], 77)] {
            let prog = build(name, variant);
            let native = run_native(&prog, args, b"");
            let mut cmd = Command::new(&launcher);
            cmd.arg("--tool=none").arg(&prog).args(args);
            let inner = guests::run_command(cmd, b"");
            assert_eq!(native.shell_status(), status);
            assert_eq!(
                inner.stdout_str(),
                native.stdout_str(),
                "{name} {}: stdout",
                variant.name()
            );
            assert_eq!(
                inner.shell_status(),
                status,
                "{name} {}: stderr:\n{}",
                variant.name(),
                inner.stderr_str()
            );
        }
    }
}
