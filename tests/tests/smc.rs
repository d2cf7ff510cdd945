//! `--smc-check`: code generated or patched at run time runs as it is at that moment when the
//! mode checks it, and stale translations show when the mode does not.

use vg_tests::guests::{Variant, build, run_native, run_tool};

#[test]
fn generated_and_patched_code_runs_as_written() {
    for variant in Variant::ALL {
        let prog = build("smc", variant);
        let native = run_native(&prog, &[], b"");
        assert_eq!(native.shell_status(), 0);
        for mode in [None, Some("--smc-check=all"), Some("--smc-check=all-non-file")] {
            let mut args = vec!["-q", "--tool=none"];
            args.extend(mode);
            let tool = run_tool(&args, &prog, &[], b"");
            assert_eq!(tool.stdout_str(), native.stdout_str(), "{variant:?} {mode:?}\n{}", tool.stderr_str());
            assert_eq!(tool.shell_status(), 0);
        }
    }
}

#[test]
fn smc_check_none_keeps_stale_translations() {
    let prog = build("smc", Variant::StaticO2);
    let native = run_native(&prog, &[], b"");
    let tool = run_tool(&["-q", "--tool=none", "--smc-check=none"], &prog, &[], b"");
    // The buffer is rewritten in place: without checks the first translation keeps running...
    assert!(tool.stdout_str().contains("k=19 f(1)=1\n"), "{}", tool.stdout_str());
    assert_ne!(tool.stdout_str(), native.stdout_str());
    // ...but code unmapped and mapped again is always translated afresh.
    assert!(tool.stdout_str().contains("remapped f(10)=5 "), "{}", tool.stdout_str());
}
