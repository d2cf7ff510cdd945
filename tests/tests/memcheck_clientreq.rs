//! Memcheck's client requests on our own guests (`tests/guest/mc_vbits.c`,
//! `mc_custom_alloc.c`, `mc_pool.c`): V bits, value checks and unreported ranges; a custom
//! allocator's blocks and named blocks; memory pools. The expected reports, filtered of pids
//! and addresses, are written out here by hand from what Valgrind 3.19 prints for the same
//! programs; where `/usr/bin/valgrind` is installed, the last test checks that it still
//! prints them (built dynamically, as Valgrind replaces no functions in a static program).

use std::path::Path;
use std::process::Command;

use vg_tests::guests::{Outcome, Variant, build, build_dynamic, line_of, run_command, valgrind};

fn run(prog: &Path, launcher: &Path, args: &[&str]) -> Outcome {
    let mut cmd = Command::new(launcher);
    cmd.arg("--tool=memcheck").args(args).arg(prog);
    run_command(cmd, b"")
}

fn run_mc(name: &str, args: &[&str]) -> Outcome {
    run(&build(name, Variant::StaticO0), &valgrind(), args)
}

const HEADLINES: &[&str] = &[
    "Invalid",
    "Conditional",
    "Use of",
    "Syscall param",
    "Mismatched",
    "Source and destination overlap",
    "Uninitialised byte(s) found",
    "Unaddressable byte(s) found",
    "Illegal memory pool address",
];

/// The error reports (headline to blank line), without the final summaries; the line numbers
/// of the replacement functions' file are not compared (they are the malloc module's).
fn reports(o: &Outcome) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    for l in o.filtered_stderr() {
        let body = l.strip_prefix("==PID== ").or_else(|| l.strip_prefix("==PID==")).unwrap_or("");
        let body = match body.find("(vg_replace_malloc.c:") {
            Some(i) => format!("{}(vg_replace_malloc.c:...)", &body[..i]),
            None => body.to_string(),
        };
        match (&mut cur, body.as_str()) {
            (Some(c), "") => {
                out.push(std::mem::take(c));
                cur = None;
            }
            (Some(c), _) => c.push(body),
            (None, b) if HEADLINES.iter().any(|h| b.starts_with(h)) => cur = Some(vec![body]),
            _ => {}
        }
    }
    out
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn vbits_expected() -> Vec<Vec<String>> {
    let l = |m| line_of("mc_vbits", m);
    vec![
        vec![
            "Uninitialised byte(s) found during client check request".to_string(),
            format!("   at 0x...: main (mc_vbits.c:{})", l("CHECKVAL")),
            " Address 0x... is on thread 1's stack".to_string(),
            " in frame #0, created by main (mc_vbits.c:9)".to_string(),
        ],
        vec![
            "Invalid write of size 1".to_string(),
            format!("   at 0x...: main (mc_vbits.c:{})", l("REPORTED")),
            " Address 0x... is 2 bytes after a block of size 8 alloc'd".to_string(),
            "   at 0x...: malloc (vg_replace_malloc.c:...)".to_string(),
            format!("   by 0x...: main (mc_vbits.c:{})", l("ALLOC")),
        ],
    ]
}

const VBITS_STDOUT: &str = "set 1 get 1: 00 ff 0f 00\nunaddressable: get 3 set 3\nranges: 1 0 1\n";

#[test]
fn vbits_value_checks_and_unreported_ranges() {
    let o = run_mc("mc_vbits", &[]);
    assert_eq!(reports(&o), vbits_expected(), "{}", o.stderr_str());
    // GET_VBITS gives back SET_VBITS' pattern; both fail with 3 on unaddressable memory; a
    // disabled range (but not an empty one) is acknowledged with 1.
    assert_eq!(o.stdout_str(), VBITS_STDOUT);
}

fn custom_expected() -> Vec<Vec<String>> {
    let l = |m| line_of("mc_custom_alloc", m);
    let at = |m| format!("   at 0x...: main (mc_custom_alloc.c:{})", l(m));
    let by = |f: &str, m| format!("   by 0x...: {f} (mc_custom_alloc.c:{})", l(m));
    let alloc_a = vec![format!("   at 0x...: my_alloc (mc_custom_alloc.c:{})", l("/* MALLOCLIKE */")), by("main", "ALLOC_A")];
    let freed_a = [
        vec![format!("   at 0x...: my_free (mc_custom_alloc.c:{})", l("/* FREELIKE */")), by("main", "FREE_A")],
        lines(&[" Block was alloc'd at"]),
        alloc_a.clone(),
    ]
    .concat();
    vec![
        [lines(&["Invalid write of size 1"]), vec![at("OVERRUN")], lines(&[" Address 0x... is 0 bytes after a block of size 24 alloc'd"]), alloc_a.clone()]
            .concat(),
        [lines(&["Invalid write of size 1"]), vec![at("SHRUNK")], lines(&[" Address 0x... is 2 bytes after a block of size 8 alloc'd"]), alloc_a.clone()]
            .concat(),
        [
            lines(&["Invalid free() / delete / delete[] / realloc()"]),
            vec![at("BADRESIZE")],
            lines(&[" Address 0x... is 0 bytes inside a block of size 12 alloc'd"]),
            alloc_a.clone(),
        ]
        .concat(),
        [lines(&["Invalid read of size 1"]), vec![at("UAF")], lines(&[" Address 0x... is 1 bytes inside a block of size 12 free'd"]), freed_a.clone()]
            .concat(),
        [
            lines(&["Invalid free() / delete / delete[] / realloc()"]),
            vec![format!("   at 0x...: my_free (mc_custom_alloc.c:{})", l("/* FREELIKE */")), by("main", "DOUBLE")],
            lines(&[" Address 0x... is 0 bytes inside a block of size 12 free'd"]),
            freed_a,
        ]
        .concat(),
        vec![
            "Mismatched free() / delete / delete []".to_string(),
            "   at 0x...: free (vg_replace_malloc.c:...)".to_string(),
            by("main", "MISMATCH"),
            " Address 0x... is 0 bytes inside a block of size 8 alloc'd".to_string(),
            format!("   at 0x...: my_alloc (mc_custom_alloc.c:{})", l("/* MALLOCLIKE */")),
            by("main", "ALLOC_B"),
        ],
        vec![
            "Invalid read of size 1".to_string(),
            at("/* DESCRIBED */"),
            " Address 0x... is 28 bytes inside a lookup table of size 32 client-defined".to_string(),
            at("/* CREATE */"),
        ],
        vec![
            "Invalid read of size 1".to_string(),
            at("UNDESCRIBED"),
            " Address 0x... is 45 bytes inside a block of size 64 alloc'd".to_string(),
            "   at 0x...: malloc (vg_replace_malloc.c:...)".to_string(),
            by("main", "TABLE"),
        ],
    ]
}

#[test]
fn custom_allocator_blocks_and_named_blocks() {
    let o = run_mc("mc_custom_alloc", &["--leak-check=full"]);
    assert_eq!(reports(&o), custom_expected(), "{}", o.stderr_str());
    // CREATE_BLOCK's handle, DISCARD's 0 then 1 (already discarded), an empty block's -1.
    assert_eq!(o.stdout_str(), "blocks 0 0 1 -1\n");
    // The custom block never freed is leak-checked, with its MALLOCLIKE_BLOCK stack.
    let l = |m| line_of("mc_custom_alloc", m);
    let text = o.filtered_stderr();
    let at = text
        .iter()
        .position(|x| x.contains("40 bytes in 1 blocks are definitely lost in loss record"))
        .unwrap_or_else(|| panic!("no loss record:\n{}", o.stderr_str()));
    assert_eq!(
        text[at + 1..at + 4],
        [
            format!("==PID==    at 0x...: my_alloc (mc_custom_alloc.c:{})", l("/* MALLOCLIKE */")),
            format!("==PID==    by 0x...: leak_one (mc_custom_alloc.c:{})", l("LEAK */")),
            format!("==PID==    by 0x...: main (mc_custom_alloc.c:{})", l("LEAK_CALL")),
        ],
        "{}",
        o.stderr_str()
    );
}

fn pool_expected() -> Vec<Vec<String>> {
    let l = |m| line_of("mc_pool", m);
    let at = |m| format!("   at 0x...: main (mc_pool.c:{})", l(m));
    let superblock = |init| {
        vec![
            "   at 0x...: malloc (vg_replace_malloc.c:...)".to_string(),
            format!("   by 0x...: pool_init (mc_pool.c:{})", l("SUPER")),
            format!("   by 0x...: main (mc_pool.c:{})", l(init)),
        ]
    };
    let in_super = |what: &str, m, rel: &str, size: &str, init| {
        [
            vec![what.to_string(), at(m), format!(" Address 0x... is {rel} a recently re-allocated block of size {size} alloc'd")],
            superblock(init),
        ]
        .concat()
    };
    vec![
        vec![
            "Invalid write of size 1".to_string(),
            at("OVERRUN"),
            " Address 0x... is 0 bytes after a block of size 16 client-defined".to_string(),
            format!("   at 0x...: pool_alloc (mc_pool.c:{})", l("POOL_ALLOC")),
            format!("   by 0x...: main (mc_pool.c:{})", l("ALLOC_A")),
        ],
        // A freed chunk inside its live superblock: Valgrind names the superblock.
        in_super("Invalid read of size 1", "UAF", "12 bytes inside", "1,024", "INIT_P"),
        in_super("Invalid free() / delete / delete[] / realloc()", "DOUBLE", "8 bytes inside", "1,024", "INIT_P"),
        vec![
            "Illegal memory pool address".to_string(),
            at("ILLEGAL"),
            " Address 0x... is on thread 1's stack".to_string(),
            " in frame #0, created by main (mc_pool.c:36)".to_string(),
        ],
        in_super("Invalid free() / delete / delete[] / realloc()", "BADCHANGE", "8 bytes inside", "1,024", "INIT_P"),
        vec![
            "Illegal memory pool address".to_string(),
            at("DESTROY2"),
            " Address 0x... is 0 bytes inside a block of size 16 alloc'd".to_string(),
            "   at 0x...: malloc (vg_replace_malloc.c:...)".to_string(),
            at("MOVED").replace("   at", "   by"),
        ],
        // The meta pool's chunk took the blocks inside it along when it was freed.
        in_super("Invalid free() / delete / delete[] / realloc()", "AUTOFREED", "40 bytes inside", "512", "INIT_M"),
    ]
}

#[test]
fn pool_chunks_are_blocks() {
    let o = run_mc("mc_pool", &[]);
    assert_eq!(reports(&o), pool_expected(), "{}", o.stderr_str());
    // EXISTS before and after MOVE_MEMPOOL (old and new anchor) and after DESTROY_MEMPOOL.
    assert_eq!(o.stdout_str(), "exists 1 0 1 0\n");
}

/// The leak checker sees pool chunks, found through their pool, and not the superblock that
/// holds them (needs the leak checker to classify `mempool::leak_blocks`).
#[test]
fn pool_chunks_are_leak_checked_instead_of_their_superblock() {
    let o = run_mc("mc_pool", &["--leak-check=full", "--show-leak-kinds=all"]);
    let text = o.filtered_stderr();
    let l = |m| line_of("mc_pool", m);
    let chunk = format!("==PID==    at 0x...: pool_alloc (mc_pool.c:{})", l("POOL_ALLOC"));
    for (record, callers) in [
        ("20 bytes in 1 blocks are definitely lost", vec![format!("main (mc_pool.c:{})", l("ALLOC_B"))]),
        (
            "24 bytes in 1 blocks are definitely lost",
            vec![format!("leak_chunk (mc_pool.c:{})", l("LEAK */")), format!("main (mc_pool.c:{})", l("LEAK_CALL"))],
        ),
        ("40 bytes in 1 blocks are still reachable", vec![format!("main (mc_pool.c:{})", l("KEPT"))]),
    ] {
        // The C library's own blocks may have the same size: find the record of a chunk.
        let at = (0..text.len() - 1)
            .find(|&i| text[i].contains(record) && text[i].contains("in loss record") && text[i + 1] == chunk)
            .unwrap_or_else(|| panic!("no {record} at pool_alloc:\n{}", o.stderr_str()));
        for (i, c) in callers.iter().enumerate() {
            assert_eq!(text[at + 2 + i], format!("==PID==    by 0x...: {c}"), "{}", o.stderr_str());
        }
    }
    assert!(!text.iter().any(|x| x.contains("1,024 bytes in 1 blocks are")), "the superblock is not a leak:\n{}", o.stderr_str());
}

/// The hand-written expectations are what the real Valgrind prints.
#[test]
fn expectations_match_the_installed_valgrind() {
    let real = Path::new("/usr/bin/valgrind");
    if !real.exists() {
        return;
    }
    let cases: [(&str, Vec<Vec<String>>, Option<&str>); 3] = [
        ("mc_vbits", vbits_expected(), Some(VBITS_STDOUT)),
        ("mc_custom_alloc", custom_expected(), Some("blocks 0 0 1 -1\n")),
        ("mc_pool", pool_expected(), Some("exists 1 0 1 0\n")),
    ];
    for (name, want, stdout) in cases {
        let o = run(&build_dynamic(name), real, &[]);
        assert_eq!(reports(&o), want, "{name}: {}", o.stderr_str());
        if let Some(s) = stdout {
            assert_eq!(o.stdout_str(), s, "{name}");
        }
    }
}
