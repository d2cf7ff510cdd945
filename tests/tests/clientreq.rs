//! Client requests and function wrapping with the real `/usr/include/valgrind/valgrind.h`:
//! guest programs run natively (every request gives its default, no wrapper runs) and under
//! `--tool=none`, with the expected outputs written out here from what each program must do.
//! Static variants come from the shared harness; the dynamic ones (a wrapper for a function in
//! a shared library) are built here.

use std::path::{Path, PathBuf};
use std::process::Command;

use vg_tests::guests::{Variant, build, guest_source, line_of, run_native, run_tool, target_dir};

#[test]
fn client_requests() {
    let def = line_of("clientreq", "WHERE-DEF");
    let bt = line_of("clientreq", "BT-CALL");
    let call1 = line_of("clientreq", "MAIN-CALL */");
    let call2 = line_of("clientreq", "MAIN-CALL-2");
    for variant in Variant::ALL {
        let prog = build("clientreq", variant);
        let what = format!("clientreq {}", variant.name());

        let native = run_native(&prog, &[], b"");
        assert_eq!(native.shell_status(), 0, "{what} natively: {}", native.stderr_str());
        assert_eq!(
            native.stdout_str(),
            "RUNNING_ON_VALGRIND == 0\nwhere -> 2\ncall3 = 0\nunknown = 77\nerrors = 0\nstack id = 0\n\
             srcloc = (untouched)\nwhere -> 3\n",
            "{what} natively"
        );
        assert_eq!(native.stderr_str(), "", "{what} natively");

        let tool = run_tool(&["--tool=none", "-q"], &prog, &[], b"");
        assert_eq!(tool.shell_status(), 0, "{what}: {}", tool.stderr_str());
        // NON_SIMD_CALL3 runs add3(tid 1, 1, 2, 3) on the real CPU.
        assert_eq!(
            tool.stdout_str(),
            format!(
                "RUNNING_ON_VALGRIND == 1\nwhere -> 2\ncall3 = 1123\nunknown = 77\nerrors = 0\nstack id = 1\n\
                 srcloc = clientreq.c:{def}\nwhere -> 3\n"
            ),
            "{what}: stderr {}",
            tool.stderr_str()
        );
        let err = tool.filtered_stderr();
        let first = err.iter().position(|l| l.starts_with("**PID** fmt")).unwrap_or_else(|| panic!("{what}: {err:#?}"));
        let err = &err[first..];
        // The first backtrace stops at main; after CLO_CHANGE(--show-below-main=yes) the
        // second goes on into the C library's start-up. --num-callers cannot change.
        let expect_head = [
            "**PID** fmt -7 7 ff  2.50|q|12  |0042|1099511627776|(null)".to_string(),
            "**PID** no newline, then the rest".to_string(),
            "**PID** backtrace at depth 1".to_string(),
        ];
        assert_eq!(&err[..3], &expect_head, "{what}: {err:#?}");
        assert!(err[3].starts_with("==PID==    at 0x...: VALGRIND_PRINTF_BACKTRACE"), "{what}: {err:#?}");
        assert!(err[3].contains("(valgrind.h:"), "{what}: {err:#?}");
        assert_eq!(err[4], format!("==PID==    by 0x...: where (clientreq.c:{bt})"), "{what}: {err:#?}");
        assert_eq!(err[5], format!("==PID==    by 0x...: main (clientreq.c:{call1})"), "{what}: {err:#?}");
        assert_eq!(err[6], "==PID== Cannot change --num-callers option dynamically", "{what}: {err:#?}");
        assert_eq!(err[7], "**PID** backtrace at depth 2", "{what}: {err:#?}");
        assert_eq!(err[9], format!("==PID==    by 0x...: where (clientreq.c:{bt})"), "{what}: {err:#?}");
        assert_eq!(err[10], format!("==PID==    by 0x...: main (clientreq.c:{call2})"), "{what}: {err:#?}");
        assert!(err[11].contains("__libc_start_call_main"), "{what}: {err:#?}");
    }
}

/// What wrap.c prints under the tool: every call of foo, fact and jumper goes through its
/// wrapper, recursive calls of fact included, and the longjmp leaves jumper's wrapper.
const WRAP_TOOL: &str = "foo's wrapper: args 3 4\nfoo's wrapper: result 34\nfoo(3, 4) = 34\n\
    fact(1) = 1 at depth 4\nfact(2) = 2 at depth 3\nfact(3) = 6 at depth 2\nfact(4) = 24 at depth 1\n\
    fact(4) = 24\njumper's wrapper: original gave 42, jumping\nback in main with 42\n\
    foo's wrapper: args 1 2\nfoo's wrapper: result 12\nfoo(1, 2) = 12\n";

const WRAP_NATIVE: &str = "foo(3, 4) = 34\nfact(4) = 24\njumper returned 42 without its wrapper\nfoo(1, 2) = 12\n";

#[test]
fn wrappers_in_the_main_executable() {
    for variant in Variant::ALL {
        let prog = build("wrap", variant);
        let native = run_native(&prog, &[], b"");
        assert_eq!(native.stdout_str(), WRAP_NATIVE, "wrap {} natively", variant.name());
        let tool = run_tool(&["--tool=none", "-q"], &prog, &[], b"");
        assert_eq!(tool.shell_status(), 0, "wrap {}: {}", variant.name(), tool.stderr_str());
        assert_eq!(tool.stdout_str(), WRAP_TOOL, "wrap {}: stderr {}", variant.name(), tool.stderr_str());
        assert_eq!(tool.stderr_str(), "", "wrap {}", variant.name());
    }
}

#[test]
fn falling_through_into_a_wrapped_function() {
    for variant in Variant::ALL {
        let prog = build("wrapfall", variant);
        assert_eq!(run_native(&prog, &[], b"").stdout_str(), "bar(1) = 101\nfall_into_bar(1) = 102\n");
        let tool = run_tool(&["--tool=none", "-q"], &prog, &[], b"");
        assert_eq!(
            tool.stdout_str(),
            "bar's wrapper: 1 -> 101\nbar(1) = 101\nbar's wrapper: 2 -> 102\nfall_into_bar(1) = 102\n",
            "wrapfall {}: stderr {}",
            variant.name(),
            tool.stderr_str()
        );
    }
}

#[test]
fn wrapper_on_pthread_create() {
    let want_tool = "pthread_create's wrapper: result 0\nv = 42, wrapper saw 1 creation(s)\n";
    let mut progs: Vec<(String, PathBuf)> = Variant::ALL.iter().map(|v| (v.name().to_string(), build("wrapthread", *v))).collect();
    progs.push((String::from("dynamic"), build_dynamic("wrapthread", None)));
    for (what, prog) in progs {
        assert_eq!(run_native(&prog, &[], b"").stdout_str(), "v = 42, wrapper saw 0 creation(s)\n", "{what}");
        let tool = run_tool(&["--tool=none", "-q"], &prog, &[], b"");
        assert_eq!(tool.stdout_str(), want_tool, "wrapthread {what}: stderr {}", tool.stderr_str());
    }
}

#[test]
fn conflicting_wrappers_are_reported_with_v() {
    let prog = build("wrapconflict", Variant::StaticO0);
    let quiet = run_tool(&["--tool=none", "-q"], &prog, &[], b"");
    assert_eq!(quiet.stdout_str(), "first wrapper: 2\nfoo(1) = 2\n", "{}", quiet.stderr_str());
    assert_eq!(quiet.stderr_str(), "");
    let verbose = run_tool(&["--tool=none", "-v"], &prog, &[], b"");
    assert_eq!(verbose.stdout_str(), "first wrapper: 2\nfoo(1) = 2\n");
    let err = verbose.filtered_stderr();
    let at = err.iter().position(|l| l.starts_with("==PID== WARNING: conflicting redirections of foo at 0x...")).unwrap_or_else(|| panic!("{err:#?}"));
    assert!(err[at + 1].contains("kept:") && err[at + 1].contains("NONE:foo"), "{err:#?}");
    assert!(err[at + 2].contains("ignored:") && err[at + 2].contains("NONE:foo"), "{err:#?}");
}

#[test]
fn reporting_options() {
    let prog = build("clientreq", Variant::StaticO0);
    // --num-callers=1: the backtrace is the innermost frame alone.
    let one = run_tool(&["--tool=none", "-q", "--num-callers=1"], &prog, &[], b"").filtered_stderr();
    let at = one.iter().position(|l| l == "**PID** backtrace at depth 1").unwrap_or_else(|| panic!("{one:#?}"));
    assert!(one[at + 1].contains(": VALGRIND_PRINTF_BACKTRACE"), "{one:#?}");
    assert!(one[at + 2].starts_with("==PID== Cannot change"), "{one:#?}");
    // Bad values and combinations are refused before the client runs.
    for (opts, want) in [
        (&["--num-callers=0"][..], "'--num-callers' argument must be between 1 and 500"),
        (&["--demangle=maybe"][..], "Invalid boolean value 'maybe'"),
        (&["--xml=yes", "--xml-fd=2"][..], "Nulgrind does not support XML output."),
        (&["--exit-on-first-error=yes"][..], "--exit-on-first-error=yes needs a non-zero --error-exitcode=."),
        (&["--gen-suppressions=maybe"][..], "Unknown option: --gen-suppressions=maybe"),
    ] {
        let mut args = vec!["--tool=none"];
        args.extend_from_slice(opts);
        let o = run_tool(&args, &prog, &[], b"");
        assert_eq!(o.shell_status(), 1, "{opts:?}: {}", o.stderr_str());
        assert!(o.stderr_str().contains(want), "{opts:?}: {}", o.stderr_str());
        assert_eq!(o.stdout_str(), "", "{opts:?}: the client must not run");
    }
}

#[test]
fn trace_redir_lists_the_active_set() {
    let prog = build("wrap", Variant::StaticO0);
    let tool = run_tool(&["--tool=none", "-q", "--trace-redir=yes"], &prog, &[], b"");
    assert_eq!(tool.stdout_str(), WRAP_TOOL);
    let err = tool.filtered_stderr();
    for f in ["foo", "fact", "jumper"] {
        let want = format!(" ({f}) W-> 0x... (NONE:{f})");
        assert!(err.iter().any(|l| l.ends_with(&want)), "no `{want}` in {err:#?}");
    }
}

/// Builds a dynamically linked guest (and its shared library) with gcc into
/// `<target>/guests/dynamic/`; returns the executable.
fn build_dynamic(main: &str, lib: Option<(&str, &str)>) -> PathBuf {
    let dir = target_dir().join("guests").join("dynamic");
    std::fs::create_dir_all(&dir).expect("create the dynamic guest directory");
    let gcc = |args: &[&str]| {
        let out = Command::new("gcc").args(args).output().expect("run gcc");
        assert!(out.status.success(), "gcc {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let d = dir.to_str().expect("UTF-8 target path");
    let mut link = vec![String::from("-g"), String::from("-O0")];
    if let Some((src, soname)) = lib {
        let so = dir.join(soname);
        let soname_flag = format!("-Wl,-soname,{soname}");
        gcc(&["-g", "-shared", "-fPIC", &soname_flag, "-o", so.to_str().unwrap(), guest_source(src).to_str().unwrap()]);
        link.extend([format!("-L{d}"), format!("-l:{soname}"), format!("-Wl,-rpath,{d}")]);
    }
    let exe = dir.join(main);
    let mut args = vec![String::from("-o"), exe.to_str().unwrap().to_string(), guest_source(main).to_str().unwrap().to_string()];
    args.extend(link);
    gcc(&args.iter().map(String::as_str).collect::<Vec<_>>());
    exe
}

fn dynamic_runs(exe: &Path) -> bool {
    // The dynamic loader and libc must run under the tool for these tests to say anything.
    let o = run_tool(&["--tool=none", "-q"], exe, &[], b"");
    o.shell_status() == 0
}

#[test]
fn wrappers_dynamic() {
    let exe = build_dynamic("wrap", None);
    assert_eq!(run_native(&exe, &[], b"").stdout_str(), WRAP_NATIVE);
    assert!(dynamic_runs(&exe), "a dynamic guest does not run under the tool");
    let tool = run_tool(&["--tool=none", "-q"], &exe, &[], b"");
    assert_eq!(tool.stdout_str(), WRAP_TOOL, "stderr: {}", tool.stderr_str());
}

#[test]
fn wrapper_of_a_shared_library_function() {
    let exe = build_dynamic("wrapso", Some(("wrapso_lib", "libwrapso.so")));
    assert_eq!(run_native(&exe, &[], b"").stdout_str(), "foo(3, 4) = 34\n");
    let tool = run_tool(&["--tool=none", "-q"], &exe, &[], b"");
    assert_eq!(tool.shell_status(), 0, "{}", tool.stderr_str());
    assert_eq!(
        tool.stdout_str(),
        "foo's wrapper: args 3 4\nfoo's wrapper: result 34\nfoo(3, 4) = 34\n",
        "stderr: {}",
        tool.stderr_str()
    );
}

#[test]
fn fatal_signal_report_names_the_source_line() {
    // A null store in main itself: the report's first frame is main at that line.
    let prog = build("segv_main", Variant::StaticO0);
    let tool = run_tool(&["--tool=none"], &prog, &[], b"");
    let line = line_of("segv_main", "NULL-STORE");
    let err = tool.filtered_stderr();
    let at = err.iter().position(|l| l.contains("Process terminating with default action of signal 11")).unwrap_or_else(|| panic!("{err:#?}"));
    assert_eq!(err[at + 2], format!("==PID==    at 0x...: main (segv_main.c:{line})"), "{err:#?}");
}
