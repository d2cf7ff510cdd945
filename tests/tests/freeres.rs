//! The C and C++ libraries' clean-up at exit (`--run-libc-freeres=`, `--run-cxx-freeres=`):
//! under memcheck, what glibc and libstdc++ keep until exit (the stdout buffer, the exception
//! pool) is freed before the heap summary, whichever way the program leaves, with its exit
//! status kept; not after a fatal signal; in a static program that has `__libc_freeres`; never
//! under `--tool=none`. Where `/usr/bin/valgrind` is installed, the heap summaries are compared
//! with its own for the same binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

use vg_tests::guests::{Outcome, Variant, build, guest_source_dir, run_command, run_native, run_tool, target_dir};

/// Builds `tests/guest/<file>` as an ordinary dynamically linked program (gcc, or g++ for
/// `.cpp`) into `<target>/guests/freeres-dynamic/`, unless it is already newer than its source.
fn build_dynamic(file: &str) -> PathBuf {
    let src = guest_source_dir().join(file);
    let dir = target_dir().join("guests").join("freeres-dynamic");
    let exe = dir.join(Path::new(file).file_stem().expect("a file name"));
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if mtime(&exe).is_some_and(|b| mtime(&src).is_some_and(|s| b >= s)) {
        return exe;
    }
    std::fs::create_dir_all(&dir).expect("create the guest directory");
    let tmp = dir.join(format!(".{file}.{}.tmp", std::process::id()));
    let cc = if file.ends_with(".cpp") { "g++" } else { "gcc" };
    let out = Command::new(cc).args(["-g", "-O0", "-o"]).arg(&tmp).arg(&src).output().expect("run the compiler");
    assert!(out.status.success(), "{cc} {file}: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::rename(&tmp, &exe).expect("move the guest into place");
    exe
}

fn dynamic() -> PathBuf {
    build_dynamic("freeres.c")
}

fn memcheck(args: &[&str], prog: &Path, how: &str) -> Outcome {
    let mut tool = vec!["--tool=memcheck"];
    tool.extend_from_slice(args);
    run_tool(&tool, prog, &[how], b"")
}

/// The installed Valgrind, if there is one to compare with.
fn reference() -> Option<&'static Path> {
    let p = Path::new("/usr/bin/valgrind");
    p.exists().then_some(p)
}

fn run_reference(valgrind: &Path, args: &[&str], prog: &Path, how: &str) -> Outcome {
    let mut cmd = Command::new(valgrind);
    cmd.arg("--tool=memcheck").args(args).arg(prog).arg(how);
    run_command(cmd, b"")
}

/// The "in use at exit" and "total heap usage" lines of every heap summary in the run.
fn heap_lines(o: &Outcome) -> Vec<String> {
    o.filtered_stderr()
        .into_iter()
        .filter(|l| l.contains("in use at exit:") || l.contains("total heap usage:"))
        .collect()
}

/// Bytes in use at exit, from the (only) heap summary.
fn in_use(o: &Outcome) -> u64 {
    let line = heap_lines(o).into_iter().find(|l| l.contains("in use at exit:")).unwrap_or_else(|| panic!("no heap summary in {}", o.stderr_str()));
    let n = line.split("in use at exit: ").nth(1).and_then(|r| r.split(' ').next()).expect("a byte count");
    n.replace(',', "").parse().expect("a number")
}

fn caught_lines(o: &Outcome) -> Vec<String> {
    o.filtered_stderr().into_iter().filter(|l| l.contains("Caught __NR_exit")).collect()
}

const ALL_FREED_TAIL: &str = "== All heap blocks were freed -- no leaks are possible";
const ALL_FREED: &str = "==PID== All heap blocks were freed -- no leaks are possible";

#[test]
fn return_exit_and_fork_free_everything() {
    let prog = dynamic();
    for (how, status, summaries) in [("return", 3, 1), ("exit", 4, 1), ("fork", 9, 2)] {
        let o = memcheck(&[], &prog, how);
        assert_eq!(o.shell_status(), status, "{how}: {}", o.stderr_str());
        assert!(o.stdout_str().starts_with(&format!("leaving by {how}\n")), "{how}: {:?}", o.stdout_str());
        // A forked child (with its own pid) has its own summary, the parent its own: each
        // frees its own buffer.
        let count = |tail: &str| o.stderr_str().lines().filter(|l| l.ends_with(tail)).count();
        assert_eq!(count(ALL_FREED_TAIL), summaries, "{how}: {}", o.stderr_str());
        assert_eq!(count(" in use at exit: 0 bytes in 0 blocks"), summaries, "{how}: {}", o.stderr_str());
    }
}

#[test]
fn without_libc_freeres_the_stdout_buffer_stays() {
    let prog = dynamic();
    let o = memcheck(&["--run-libc-freeres=no"], &prog, "exit");
    assert_eq!(o.shell_status(), 4, "{}", o.stderr_str());
    let lines = o.filtered_stderr();
    assert!(!lines.contains(&ALL_FREED.to_string()), "{}", o.stderr_str());
    assert!(in_use(&o) > 0, "{}", o.stderr_str());
    assert!(lines.iter().any(|l| l.starts_with("==PID==    still reachable: ") && !l.ends_with(" 0 bytes in 0 blocks")), "{}", o.stderr_str());
    // The same run with the clean-up frees exactly what stdio kept.
    let freed = memcheck(&[], &prog, "exit");
    assert_eq!(in_use(&freed), 0, "{}", freed.stderr_str());
}

#[test]
fn threads_exit_with_their_status_after_the_clean_up() {
    let prog = dynamic();
    for (how, status, out) in [("thread", 5, "thread done\n"), ("thread-exit", 6, "thread quits\n")] {
        let with = memcheck(&["-v", "-v"], &prog, how);
        assert_eq!(with.shell_status(), status, "{how}: {}", with.stderr_str());
        assert_eq!(with.stdout_str(), format!("leaving by {how}\n{out}"));
        assert_eq!(caught_lines(&with).len(), 1, "{how}: {}", with.stderr_str());
        let without = memcheck(&["--run-libc-freeres=no"], &prog, how);
        assert_eq!(without.shell_status(), status, "{how}: {}", without.stderr_str());
        // At least the 4096-byte stdout buffer goes (the thread's own blocks may stay).
        assert!(in_use(&without) >= in_use(&with) + 4096, "{how}: {}\n{}", with.stderr_str(), without.stderr_str());
    }
}

#[test]
fn no_clean_up_after_a_fatal_signal() {
    let o = memcheck(&["-v", "-v"], &dynamic(), "abort");
    assert_eq!(o.shell_status(), 128 + 6, "{}", o.stderr_str());
    assert!(caught_lines(&o).is_empty(), "{}", o.stderr_str());
    assert!(in_use(&o) >= 4096, "the stdout buffer is still there: {}", o.stderr_str());
}

#[test]
fn verbose_message_names_what_the_options_ask_for() {
    let prog = dynamic();
    for (args, want) in [
        (&[][..], Some("__gnu_cxx::__freeres and __libc_freeres()")),
        (&["--run-cxx-freeres=no"][..], Some("__libc_freeres()")),
        (&["--run-libc-freeres=no"][..], Some("__gnu_cxx::__freeres()")),
        (&["--run-libc-freeres=no", "--run-cxx-freeres=no"][..], None),
    ] {
        let mut all = vec!["-v", "-v"];
        all.extend_from_slice(args);
        let o = memcheck(&all, &prog, "return");
        assert_eq!(o.shell_status(), 3);
        let want: Vec<String> = want.iter().map(|w| format!("--{}-- Caught __NR_exit; running {w} wrapper", o.pid)).collect();
        assert_eq!(caught_lines(&o), want, "{args:?}");
        // One -v says nothing about it.
        let quiet = memcheck(&["-v"], &prog, "return");
        assert!(caught_lines(&quiet).is_empty(), "{}", quiet.stderr_str());
    }
}

#[test]
fn cxx_exception_pool_is_freed() {
    let prog = build_dynamic("freeres_cxx.cpp");
    let o = run_tool(&["--tool=memcheck"], &prog, &[], b"");
    assert_eq!(o.shell_status(), 2, "{}", o.stderr_str());
    assert_eq!(o.stdout_str(), "hello from C++\n");
    assert!(o.filtered_stderr().contains(&ALL_FREED.to_string()), "{}", o.stderr_str());
    let kept = run_tool(&["--tool=memcheck", "--run-cxx-freeres=no"], &prog, &[], b"");
    assert_eq!(kept.shell_status(), 2);
    assert!(in_use(&kept) > 0, "the exception pool stays: {}", kept.stderr_str());
}

#[test]
fn static_program_with_libc_freeres() {
    let prog = build("freeres", Variant::StaticO0);
    for (how, status) in [("return", 3), ("exit", 4)] {
        let with = memcheck(&["-v", "-v"], &prog, how);
        assert_eq!(with.shell_status(), status, "{}", with.stderr_str());
        assert_eq!(caught_lines(&with).len(), 1, "{}", with.stderr_str());
        let without = memcheck(&["--run-libc-freeres=no"], &prog, how);
        assert_eq!(without.shell_status(), status);
        assert_eq!(in_use(&without), in_use(&with) + 4096, "the stdout buffer: {}\n{}", with.stderr_str(), without.stderr_str());
    }
}

#[test]
fn static_program_without_libc_freeres_just_exits() {
    // A static link leaves the clean-up function out unless something refers to it.
    let prog = build("hello", Variant::StaticO0);
    let o = run_tool(&["--tool=memcheck", "-v", "-v"], &prog, &[], b"");
    assert_eq!(o.shell_status(), 0, "{}", o.stderr_str());
    assert_eq!(o.stdout_str(), "Hello, world!\n");
    assert!(caught_lines(&o).is_empty(), "{}", o.stderr_str());
}

#[test]
fn none_runs_no_clean_up_and_behaves_natively() {
    let prog = dynamic();
    for how in ["return", "exit", "thread", "thread-exit", "fork"] {
        let native = run_native(&prog, &[how], b"");
        let o = run_tool(&["--tool=none", "-v", "-v"], &prog, &[how], b"");
        assert_eq!(o.shell_status(), native.shell_status(), "{how}: {}", o.stderr_str());
        assert_eq!(o.stdout_str(), native.stdout_str(), "{how}");
        assert!(caught_lines(&o).is_empty(), "{how}: {}", o.stderr_str());
    }
}

#[test]
fn heap_summaries_match_the_installed_valgrind() {
    let Some(real) = reference() else { return };
    let prog = dynamic();
    for (args, how) in [(&[][..], "return"), (&[][..], "exit"), (&[][..], "thread-exit"), (&["--run-libc-freeres=no"][..], "exit")] {
        let ours = memcheck(args, &prog, how);
        let theirs = run_reference(real, args, &prog, how);
        assert_eq!(ours.shell_status(), theirs.shell_status(), "{args:?} {how}");
        assert_eq!(heap_lines(&ours), heap_lines(&theirs), "{args:?} {how}: {}", ours.stderr_str());
    }
    let cxx = build_dynamic("freeres_cxx.cpp");
    for args in [&[][..], &["--run-cxx-freeres=no"][..]] {
        let mut cmd = Command::new(real);
        cmd.arg("--tool=memcheck").args(args).arg(&cxx);
        let theirs = run_command(cmd, b"");
        let mut tool = vec!["--tool=memcheck"];
        tool.extend_from_slice(args);
        let ours = run_tool(&tool, &cxx, &[], b"");
        assert_eq!(heap_lines(&ours), heap_lines(&theirs), "C++ {args:?}: {}", ours.stderr_str());
    }
}
