//! Memcheck's `--track-origins=yes` on `tests/guest/mc_origins.c`: each undefined-value error
//! names where its value was created — a heap allocation with the malloc stack, a stack
//! allocation with the frame that moved the stack pointer, a client request with its stack —
//! in the words and order `/usr/bin/valgrind --track-origins=yes` (3.19) prints for the same
//! program (checked by hand against it; written out here).

use std::process::Command;

use vg_tests::guests::{Outcome, Variant, build, line_of, run_command, valgrind};

fn run(args: &[&str]) -> Outcome {
    let prog = build("mc_origins", Variant::StaticO0);
    let mut cmd = Command::new(valgrind());
    cmd.arg("--tool=memcheck").args(args).arg(&prog);
    run_command(cmd, b"")
}

/// The error reports (from a headline to the blank line after it), each as its lines.
fn reports(lines: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    for l in lines {
        let body = l.strip_prefix("==PID== ").or_else(|| l.strip_prefix("==PID==")).unwrap_or("");
        match (&mut cur, body) {
            (Some(c), "") => out.push(std::mem::take(c)),
            (Some(c), b) => {
                c.push(b.to_string());
                continue;
            }
            (None, b)
                if b.starts_with("Conditional")
                    || b.starts_with("Use of")
                    || b.starts_with("Syscall param")
                    || b.starts_with("Uninitialised byte(s)") =>
            {
                cur = Some(vec![b.to_string()]);
                continue;
            }
            _ => {}
        }
        cur = None;
    }
    out
}

fn l(marker: &str) -> usize {
    line_of("mc_origins", marker)
}

fn heap_origin(alloc: &str) -> Vec<String> {
    vec![
        " Uninitialised value was created by a heap allocation".to_string(),
        "   at 0x...: malloc (vg_replace_malloc.c:381)".to_string(),
        format!("   by 0x...: main (mc_origins.c:{})", l(alloc)),
    ]
}

fn client_origin() -> Vec<String> {
    vec![" Uninitialised value was created by a client request".to_string(), format!("   at 0x...: main (mc_origins.c:{})", l("CLIENT-REQ"))]
}

#[test]
fn each_undefined_value_error_names_its_origin() {
    let o = run(&["--track-origins=yes"]);
    let text = o.stderr_str();
    let r = reports(&o.filtered_stderr());
    assert_eq!(r.len(), 6, "{text}");

    let mut heap_cond = vec![
        "Conditional jump or move depends on uninitialised value(s)".to_string(),
        format!("   at 0x...: main (mc_origins.c:{})", l("HEAP-COND")),
    ];
    heap_cond.extend(heap_origin("HEAP-ALLOC"));
    assert_eq!(r[0], heap_cond, "{text}");

    // The stack origin is one frame: the instruction that moved the stack pointer, in the
    // function that owns the space (its opening line: the prologue).
    assert_eq!(
        r[1],
        vec![
            "Conditional jump or move depends on uninitialised value(s)".to_string(),
            format!("   at 0x...: big (mc_origins.c:{})", l("STACK-COND")),
            format!("   by 0x...: stack_origin (mc_origins.c:{})", l("return big(local[2])")),
            format!("   by 0x...: main (mc_origins.c:{})", l("r += stack_origin()")),
            " Uninitialised value was created by a stack allocation".to_string(),
            format!("   at 0x...: stack_origin (mc_origins.c:{})", l("STACK-FRAME")),
        ],
        "{text}"
    );

    // A syscall parameter: the address lines, then the origin of the first undefined byte.
    let w = &r[2];
    assert_eq!(w[0], "Syscall param write(buf) points to uninitialised byte(s)", "{text}");
    assert!(w[1].starts_with("   at 0x...: write "), "{w:?}");
    assert_eq!(w[2], format!("   by 0x...: main (mc_origins.c:{})", l("WRITE */")));
    assert_eq!(w[3], " Address 0x... is 9 bytes inside a block of size 16 alloc'd");
    assert_eq!(w[4], "   at 0x...: malloc (vg_replace_malloc.c:381)");
    assert_eq!(w[5], format!("   by 0x...: main (mc_origins.c:{})", l("WRITE-ALLOC")));
    assert_eq!(w[6..], heap_origin("WRITE-ALLOC")[..], "{text}");

    let mut client_cond = vec![
        "Conditional jump or move depends on uninitialised value(s)".to_string(),
        format!("   at 0x...: main (mc_origins.c:{})", l("CLIENT-COND")),
    ];
    client_cond.extend(client_origin());
    assert_eq!(r[3], client_cond, "{text}");

    // A client check: headline, stack, address description, then the origin.
    let c = &r[4];
    assert_eq!(c[0], "Uninitialised byte(s) found during client check request");
    assert_eq!(c[1], format!("   at 0x...: main (mc_origins.c:{})", l("CLIENT-CHECK")));
    assert_eq!(c[2], " Address 0x... is on thread 1's stack");
    assert_eq!(c[c.len() - 2..], client_origin()[..], "{text}");

    let mut index = vec!["Use of uninitialised value of size 8".to_string(), format!("   at 0x...: main (mc_origins.c:{})", l("INDEX-USE"))];
    index.extend(heap_origin("INDEX-ALLOC"));
    assert_eq!(r[5], index, "{text}");

    assert!(text.contains("ERROR SUMMARY: 6 errors from 6 contexts"), "{text}");
}

#[test]
fn without_origins_the_same_errors_have_no_origin_lines() {
    let o = run(&["--track-origins=no"]);
    let text = o.stderr_str();
    let r = reports(&o.filtered_stderr());
    assert_eq!(r.len(), 6, "{text}");
    assert!(!text.contains("Uninitialised value was created"), "{text}");
    assert_eq!(r[0].len(), 2, "{text}");
}

#[test]
fn track_origins_takes_yes_or_no() {
    let o = run(&["--track-origins=maybe"]);
    assert_ne!(o.shell_status(), 0);
    assert!(o.stderr_str().contains("--track-origins"), "{}", o.stderr_str());
}
