//! Self-hosting: the normal build runs the inner build (linked at 0x38000000) as its guest,
//! which runs a program in turn. The program sees RUNNING_ON_VALGRIND == 2.

use vg_tests::guests::{Variant, build, inner_valgrind, run_native, run_tool};

#[test]
fn outer_runs_inner_running_a_guest() {
    let inner_tool = inner_valgrind().parent().unwrap().join("none-amd64-linux");
    for variant in [Variant::StaticO2, Variant::StaticPieO2] {
        let prog = build("clientreq", variant);
        let native = run_native(&prog, &[], b"");
        let nested = run_tool(&["-q", "--tool=none"], &inner_tool, &["-q", "--tool=none", prog.to_str().unwrap()], b"");
        assert_eq!(nested.shell_status(), native.shell_status(), "{}", nested.stderr_str());
        let out = nested.stdout_str();
        assert!(out.starts_with("RUNNING_ON_VALGRIND == 2\n"), "{variant:?}: {out}\n{}", nested.stderr_str());
    }
}
