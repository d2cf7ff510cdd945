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

/// Undefined values that meet other values on their way to a check, built from a program kept
/// here: the origin reported is the one `/usr/bin/valgrind --track-origins=yes` (3.19) reports
/// for the same program (checked by hand against its dynamic build). These pin down what the
/// shortcuts of origin tracking must not change: fully defined stores leave memory's tags
/// alone and fully defined loads skip the tag lookup, yet a partly defined word still reports
/// the origin of its undefined bytes, a copy keeps them, and when a heap and a stack origin
/// meet the same one wins as in Valgrind.
const MIX_SRC: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/memcheck.h>

struct pad { char c; int i; };

__attribute__((noinline)) static int use(int v) { if (v > 5) { printf("x"); return 1; } return 0; } /* USE */
__attribute__((noinline)) static int heap_plus_stack(int *h) { int s[16]; return h[2] + s[7]; } /* MIX-FRAME */
__attribute__((noinline)) static void callee(void) { volatile long x[4]; x[0] = 1; x[1] = 2; }
__attribute__((noinline)) static long red_zone_read(void) { long r[4]; callee(); return r[1]; } /* RZ-FRAME */

int main(void) {
    int r = 0;
    int *h1 = malloc(16);
    r += use(heap_plus_stack(h1));
    struct pad *p = malloc(sizeof *p * 2); /* PAD-ALLOC */
    p[0].c = 1;
    p[0].i = 2;
    p[1] = p[0];
    char *b = (char *)&p[1];
    r += use(b[1]);
    int *h3 = malloc(32); /* COPY-ALLOC */
    int *h4 = malloc(32);
    memcpy(h4, h3, 32);
    h4[0] = 7;
    long *lp = (long *)h4;
    r += use((int)(lp[0] >> 40));
    int *h5 = calloc(4, sizeof(int));
    VALGRIND_MAKE_MEM_UNDEFINED(&h5[2], 4); /* CLIENT-REQ */
    r += use(h5[2] + h5[1]);
    r += use((int)red_zone_read());
    char buf[32];
    buf[0] = 'a';
    buf[1] = 'b';
    r += use(strlen(buf) > 3);
    return r == 100;
}
"#;

fn mix_line(marker: &str) -> usize {
    MIX_SRC.lines().position(|l| l.contains(marker)).expect("marker") + 1
}

#[test]
fn origins_survive_copies_partial_words_and_mixing() {
    let dir = vg_tests::guests::target_dir().join("guests").join("origins-mix");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("mc_origins_mix.c");
    let prog = dir.join("mc_origins_mix");
    std::fs::write(&src, MIX_SRC).unwrap();
    let st = Command::new("gcc").args(["-static", "-O0", "-g", "-o"]).arg(&prog).arg(&src).status().unwrap();
    assert!(st.success(), "gcc failed");
    let mut cmd = Command::new(valgrind());
    cmd.args(["--tool=memcheck", "--track-origins=yes"]).arg(&prog);
    let o = run_command(cmd, b"");
    let text = o.stderr_str();
    let r = reports(&o.filtered_stderr());
    // Each report's origin lines (from the " Uninitialised value was created" line on).
    let origins: Vec<Vec<String>> =
        r.iter().map(|rep| rep.iter().skip_while(|l| !l.starts_with(" Uninitialised value")).cloned().collect()).collect();
    let heap = |line: usize| {
        vec![
            " Uninitialised value was created by a heap allocation".to_string(),
            "   at 0x...: malloc (vg_replace_malloc.c:381)".to_string(),
            format!("   by 0x...: main (mc_origins_mix.c:{line})"),
        ]
    };
    let stack = |f: &str, line: usize| {
        vec![" Uninitialised value was created by a stack allocation".to_string(), format!("   at 0x...: {f} (mc_origins_mix.c:{line})")]
    };
    let expected = vec![
        stack("heap_plus_stack", mix_line("MIX-FRAME")),
        heap(mix_line("PAD-ALLOC")),
        heap(mix_line("COPY-ALLOC")),
        vec![
            " Uninitialised value was created by a client request".to_string(),
            format!("   at 0x...: main (mc_origins_mix.c:{})", mix_line("CLIENT-REQ")),
        ],
        stack("red_zone_read", mix_line("RZ-FRAME")),
    ];
    assert_eq!(r.len(), 6, "{text}");
    let headline = [
        "Conditional jump or move depends on uninitialised value(s)".to_string(),
        format!("   at 0x...: use (mc_origins_mix.c:{})", mix_line("USE")),
    ];
    for (i, e) in expected.iter().enumerate() {
        assert_eq!(r[i][..2], headline, "report {i}: {text}");
        assert_eq!(&origins[i], e, "report {i}: {text}");
    }
    // strlen's replacement reads the first undefined byte of the local buffer.
    assert!(r[5][0].starts_with("Conditional jump"), "{text}");
    assert_eq!(origins[5], stack("main", mix_line("int main")), "{text}");
}
