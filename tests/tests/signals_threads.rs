//! Signals, threads and processes: guest programs run natively and under `valgrind --tool=none`
//! must give identical stdout and exit status (handlers with real signal frames, EINTR and
//! SA_RESTART, sigaltstack, 16 pthreads, fork/vfork/exec/wait), and the process options
//! (`--trace-children=yes`, `--trace-children-skip=`, `--child-silent-after-fork=yes`,
//! `--track-fds=yes`, `--fair-sched=yes`) behave as Valgrind's.

use vg_tests::guests::{Outcome, Variant, build, first_difference, run_native, run_tool};

/// Runs `name` natively and under the tool with `opts`; checks stdout and status agree and
/// that the native status is `status`. Returns the tool's run.
fn same_as_native(name: &str, variant: Variant, opts: &[&str], status: i32) -> Outcome {
    let prog = build(name, variant);
    let native = run_native(&prog, &[], b"");
    assert_eq!(native.shell_status(), status, "{name}: native status; stderr {}", native.stderr_str());
    let mut args = vec!["--tool=none"];
    args.extend_from_slice(opts);
    let tool = run_tool(&args, &prog, &[], b"");
    assert!(
        tool.stdout == native.stdout,
        "{name} ({}) stdout differs: {}\ntool stderr:\n{}",
        variant.name(),
        first_difference(&native.stdout, &tool.stdout),
        tool.stderr_str()
    );
    assert_eq!(tool.shell_status(), native.shell_status(), "{name}: status; tool stderr:\n{}", tool.stderr_str());
    tool
}

#[test]
fn signal_handlers_frames_and_default_action() {
    for v in [Variant::StaticO0, Variant::StaticO2, Variant::StaticPieO2] {
        let t = same_as_native("sig_handlers", v, &[], 143);
        let err = t.stderr_str();
        let p = t.prefix();
        assert!(
            err.contains(&format!("{p} Process terminating with default action of signal 15 (SIGTERM)\n")),
            "no default-action report:\n{err}"
        );
    }
}

#[test]
fn blocking_calls_are_interrupted_and_restarted() {
    same_as_native("sig_eintr", Variant::StaticO2, &["-q"], 0);
}

#[test]
fn sixteen_threads() {
    same_as_native("threads16", Variant::StaticO2, &[], 0);
    same_as_native("threads16", Variant::StaticO0, &["--fair-sched=yes"], 0);
}

#[test]
fn fork_vfork_exec_wait() {
    let t = same_as_native("fork_exec", Variant::StaticO2, &[], 0);
    let p = t.prefix();
    let banners = t.stderr_str().lines().filter(|l| l.contains("Nulgrind")).count();
    assert_eq!(banners, 1, "without --trace-children the exec'd child runs natively");
    assert!(t.stderr_str().contains(&format!("{p} Command: ")));
}

#[test]
fn trace_children_runs_the_exec_d_program_under_the_tool() {
    let t = same_as_native("fork_exec", Variant::StaticO2, &["--trace-children=yes"], 0);
    let err = t.stderr_str();
    let commands: Vec<&str> = err.lines().filter(|l| l.contains(" Command: ")).collect();
    assert_eq!(commands.len(), 2, "parent and exec'd child each print a banner:\n{err}");
    assert!(commands[1].ends_with("fork_exec arg1"), "{}", commands[1]);
    let t = same_as_native("fork_exec", Variant::StaticO2, &["--trace-children=yes", "--trace-children-skip=*/fork_ex?c"], 0);
    assert_eq!(t.stderr_str().lines().filter(|l| l.contains(" Command: ")).count(), 1, "skipped child runs natively");
}

#[test]
fn child_silent_after_fork() {
    let loud = same_as_native("fork_exec", Variant::StaticO2, &[], 0);
    let quiet = same_as_native("fork_exec", Variant::StaticO2, &["--child-silent-after-fork=yes"], 0);
    let lines = |o: &Outcome| o.stderr_str().lines().count();
    assert!(lines(&quiet) < lines(&loud), "forked children print nothing:\n{}", quiet.stderr_str());
}

#[test]
fn proc_self_and_descriptor_limit_and_track_fds() {
    let t = same_as_native("proc_self", Variant::StaticO2, &["--track-fds=yes"], 0);
    let err = t.stderr_str();
    let p = t.prefix();
    assert!(err.contains(&format!("{p} FILE DESCRIPTORS: ")), "no fd report:\n{err}");
    assert!(err.contains(&format!("{p} Open file descriptor 3: /dev/null\n{p}    at 0x")), "fd 3 opened by the guest:\n{err}");
    assert!(err.contains("<inherited from parent>"));
    assert!(!err.contains("Open file descriptor 1012"), "the core's descriptors are not listed");
}
