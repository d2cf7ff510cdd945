//! Tests on real files of this machine: small C programs compiled here with gcc (-O0 and -O2 with
//! an inlined function, separate debug files, compressed sections), the test binary itself (Rust
//! symbols), and the C library with its Debian debug file when installed.

extern crate std;

use alloc::string::String;
use alloc::vec::Vec;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::FileReader;
use super::cfi::{CfaKind, REG_RBP, REG_RSP, RuleKind, UnwindRegs};
use super::demangle::demangle;
use super::object::DebugObject;
use super::registry::DebugInfo;
use super::stacktrace::{FrameDesc, StackOptions, describe_stack, format_frame, format_stack, get_stack_trace};

const PROG: &str = r#"#include <stdio.h>
static volatile int sink;
static inline __attribute__((always_inline)) int helper_inl(int x) {
    int acc = 0;
    for (int i = 0; i < x; i++) { acc += i * x; sink = acc; } /* MARK_INL_BODY */
    return acc;
}
__attribute__((noinline)) int worker(int v) {
    int r = helper_inl(v); /* MARK_CALL_INL */
    return r + (v > 3 ? printf("%d\n", r) : 0);
}
int main(int argc, char **argv) {
    (void)argv;
    return worker(argc) == 42; /* MARK_MAIN_CALL */
}
"#;

fn std_reader(path: &str) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

fn marker_line(marker: &str) -> u32 {
    PROG.lines().position(|l| l.contains(marker)).expect("marker") as u32 + 1
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(std::format!("vg-dinfo-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Compiles PROG in `dir` with `flags`; returns the executable's path.
fn build(dir: &Path, flags: &[&str]) -> PathBuf {
    let src = dir.join("prog.c");
    std::fs::write(&src, PROG).unwrap();
    let exe = dir.join("prog");
    let st = Command::new("gcc").args(flags).arg("-o").arg(&exe).arg(&src).current_dir(dir).status().expect("gcc");
    assert!(st.success(), "gcc {flags:?} failed");
    exe
}

fn load(exe: &Path) -> DebugObject {
    DebugObject::from_bytes(exe.to_str().unwrap(), std::fs::read(exe).unwrap(), 0).expect("ELF")
}

fn func_range(obj: &mut DebugObject, name: &str) -> (u64, u64) {
    let s = obj.symbols().iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no symbol {name}"));
    (s.addr, s.addr + s.size)
}

#[test]
fn o0_symbols_and_lines() {
    let dir = tmpdir("o0");
    let exe = build(&dir, &["-g", "-O0"]);
    let mut obj = load(&exe);
    let (main_lo, main_hi) = func_range(&mut obj, "main");
    assert_eq!(obj.symbolize(main_lo), Some(("main", 0)));
    assert_eq!(obj.symbolize(main_lo + 5), Some(("main", 5)));
    let (w_lo, _) = func_range(&mut obj, "worker");
    assert_eq!(obj.symbolize(w_lo + 1).map(|(n, _)| String::from(n)), Some(String::from("worker")));
    assert_eq!(obj.symbolize(1), None);

    // Some address of main is attributed to the marked line, and none to a line outside main.
    let want = marker_line("MARK_MAIN_CALL");
    let mut seen = false;
    for a in main_lo..main_hi {
        let frames = obj.src_frames(a);
        assert_eq!(frames.len(), 1, "no inlining at -O0");
        let f = &frames[0];
        assert_eq!(f.name.as_deref(), Some("main"));
        let file = obj.source_file(f.file.unwrap()).unwrap();
        assert_eq!(file.file, "prog.c");
        assert_eq!(file.dir, dir.to_str().unwrap());
        assert!((marker_line("int main") ..= want + 1).contains(&f.line), "line {}", f.line);
        seen |= f.line == want;
    }
    assert!(seen, "no address of main maps to line {want}");

    // Load bias of a PIE mapped at `base`: its text segment's page mapped at base + vaddr.
    let seg = *obj.info().segments.iter().find(|s| s.flags & 1 != 0).expect("text segment");
    let base = 0x5555_5555_0000u64;
    let page_off = seg.offset & !0xfff;
    assert_eq!(obj.info().bias_for_mapping(page_off, base + (seg.vaddr & !0xfff)), Some(base));
    assert_eq!(obj.info().bias_for_mapping(1 << 40, base), None);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn o2_inlined_frames() {
    let dir = tmpdir("o2");
    let exe = build(&dir, &["-g", "-O2"]);
    let mut obj = load(&exe);
    let (lo, hi) = func_range(&mut obj, "worker");
    let body = marker_line("MARK_INL_BODY");
    let call = marker_line("MARK_CALL_INL");
    let mut found = false;
    for a in lo..hi {
        let frames = obj.src_frames(a);
        if frames.len() == 2 && frames[0].line == body {
            assert_eq!(frames[0].name.as_deref(), Some("helper_inl"));
            assert_eq!(frames[1].name.as_deref(), Some("worker"));
            assert_eq!(frames[1].line, call, "call site of the inlined function");
            found = true;
        }
        assert!(frames.len() <= 2);
    }
    assert!(found, "no address in worker shows helper_inl inlined");

    // Through the registry: same ip repeated, inlined frame first, printed in Valgrind's form.
    let mut di = DebugInfo::new(true);
    di.add_loaded(load(&exe), &[(lo, hi)]);
    let mut reader = std_reader;
    let addr = (lo..hi).find(|&a| di.describe(&mut reader, a).len() == 2).unwrap();
    let frames = di.describe(&mut reader, addr);
    assert!(frames[0].inlined && !frames[1].inlined);
    assert_eq!(frames[0].ip, frames[1].ip);
    let lines = format_stack(&frames);
    assert!(lines[0].starts_with(&std::format!("   at 0x{addr:X}: helper_inl (prog.c:")), "{}", lines[0]);
    assert_eq!(lines[1], std::format!("   by 0x{addr:X}: worker (prog.c:{call})"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn cfi_rules_and_unwind_step() {
    let dir = tmpdir("cfi");
    let exe = build(&dir, &["-g", "-O0"]);
    let mut obj = load(&exe);
    let (w_lo, w_hi) = func_range(&mut obj, "worker");
    let (m_lo, m_hi) = func_range(&mut obj, "main");
    // At entry the CFA is rsp+8 and the return address sits just below it.
    let entry = obj.cfi_rules_at(w_lo).expect("FDE for worker");
    assert_eq!(entry.cfa, CfaKind::RegOffset { reg: REG_RSP, offset: 8 });
    assert_eq!(entry.ra, RuleKind::AtCfaOffset(-8));
    // After `push rbp; mov rbp, rsp` the CFA is rbp+16 and rbp is saved at CFA-16.
    let body = (w_lo..w_hi)
        .find(|&a| obj.cfi_rules_at(a).is_some_and(|r| r.cfa == CfaKind::RegOffset { reg: REG_RBP, offset: 16 }))
        .expect("an rbp-based CFA in worker");
    assert_eq!(obj.cfi_rules_at(body).unwrap().fp, RuleKind::AtCfaOffset(-16));
    assert!(obj.cfi_rules_at(w_hi + 0x10_0000).is_none());

    // A synthetic stack: worker's frame at rbp=0x7000_0100 called from main, whose frame is at
    // rbp=0x7000_0200 and which returns to an unmapped address (the stack walk ends there).
    let ra_in_main = (m_lo + m_hi) / 2;
    let main_body = (m_lo..m_hi)
        .find(|&a| obj.cfi_rules_at(a).is_some_and(|r| r.cfa == CfaKind::RegOffset { reg: REG_RBP, offset: 16 }))
        .unwrap();
    assert!(ra_in_main > main_body);
    let mem = [(0x7000_0100u64, 0x7000_0200u64), (0x7000_0108, ra_in_main), (0x7000_0200, 0), (0x7000_0208, 0x1234)];
    let mut read = |a: u64| mem.iter().find(|m| m.0 == a).map(|m| m.1);
    let regs = UnwindRegs { pc: body, sp: 0x7000_00f0, fp: 0x7000_0100 };
    let up = obj.unwind_step(regs, true, &mut read).expect("step");
    assert_eq!(up, UnwindRegs { pc: ra_in_main, sp: 0x7000_0110, fp: 0x7000_0200 });

    let mut di = DebugInfo::new(true);
    di.add_loaded(load(&exe), &[(m_lo.min(w_lo), m_hi.max(w_hi))]);
    let mut reader = std_reader;
    let ips = get_stack_trace(&mut di, &mut reader, regs, 0x7000_1000, 12, &mut read);
    assert_eq!(ips, [body, ra_in_main - 1, 0x1233]);
    let frames = describe_stack(&mut di, &mut reader, &ips, StackOptions::default());
    // Cut after main (show-below-main=no).
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].func.as_deref(), Some("worker"));
    assert_eq!(frames[1].func.as_deref(), Some("main"));
    assert_eq!(frames[1].file.as_deref(), Some("prog.c"));
    let frames = describe_stack(&mut di, &mut reader, &ips, StackOptions { num_callers: 12, show_below_main: true });
    assert_eq!(frames.len(), 3);
    assert_eq!(format_frame(false, &frames[2]), "   by 0x1233: ???");
    let frames = describe_stack(&mut di, &mut reader, &ips, StackOptions { num_callers: 1, show_below_main: true });
    assert_eq!(frames.len(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn separate_debug_file_by_debuglink_and_compressed() {
    let dir = tmpdir("split");
    // -gz: SHF_COMPRESSED debug sections, as Debian's debug packages have.
    let exe = build(&dir, &["-g", "-O0", "-gz"]);
    let run = |args: &[&str]| {
        let st = Command::new(args[0]).args(&args[1..]).current_dir(&dir).status().expect(args[0]);
        assert!(st.success(), "{args:?}");
    };
    run(&["objcopy", "--only-keep-debug", "prog", "prog.debug"]);
    run(&["strip", "--strip-debug", "--strip-unneeded", "prog"]);
    run(&["objcopy", "--add-gnu-debuglink=prog.debug", "prog"]);
    let mut reader = std_reader;
    let root = dir.join("no-such-root");
    let mut obj = DebugObject::load(&mut reader, exe.to_str().unwrap(), root.to_str().unwrap(), |_| Some(0)).unwrap();
    assert_eq!(obj.debug_file_path(), Some(dir.join("prog.debug").to_str().unwrap()));
    // `worker` is only in the debug file's .symtab now (strip removed the local symbol table).
    let (lo, hi) = func_range(&mut obj, "worker");
    let lines: Vec<u32> = (lo..hi).flat_map(|a| obj.src_frames(a)).map(|f| f.line).collect();
    assert!(lines.contains(&marker_line("MARK_CALL_INL")));

    // A debug file whose CRC does not match is refused.
    std::fs::write(dir.join("prog.debug"), b"not the debug file").unwrap();
    let obj = DebugObject::load(&mut reader, exe.to_str().unwrap(), root.to_str().unwrap(), |_| Some(0)).unwrap();
    assert_eq!(obj.debug_file_path(), None);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn libc_with_debian_debug_file() {
    let libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    let mut reader = std_reader;
    let Some(mut obj) = DebugObject::load_standard(&mut reader, libc, |_| Some(0)) else {
        std::eprintln!("{libc} not readable; skipped");
        return;
    };
    let malloc = obj.symbols().lookup_name("malloc").expect("malloc in .dynsym");
    assert_eq!(obj.symbolize(malloc + 1).map(|(n, o)| (String::from(n), o)), Some((String::from("malloc"), 1)));
    let Some(dbg) = obj.debug_file_path().map(String::from) else {
        std::eprintln!("libc6-dbg not installed; debug-file part skipped");
        return;
    };
    assert!(dbg.starts_with("/usr/lib/debug/.build-id/"), "{dbg}");
    // Line info comes from the compressed DWARF 5 of the debug file.
    let frames = obj.src_frames(malloc + 4);
    let outer = frames.last().expect("DWARF for malloc");
    let file = obj.source_file(outer.file.unwrap()).unwrap();
    assert_eq!(file.file, "malloc.c");
    assert!(outer.line > 0);
    // A static function only the debug file's .symtab knows.
    assert!(obj.symbols().lookup_name("_int_malloc").is_some());
}

#[test]
fn mapped_file_reads_back_after_discard() {
    let path = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    let Ok(want) = std::fs::read(path) else { return };
    let mut reader = crate::stacks::SysFileReader;
    let got = reader.read_file(path).expect("mapped");
    assert_eq!(&got[..], &want[..]);
    // Dropping the resident pages loses nothing: they are read from the file again.
    got.discard(0..got.len());
    got.discard(5..3 * 4096 + 7);
    assert_eq!(&got[..], &want[..]);
}

#[test]
fn mapped_and_read_objects_describe_alike() {
    // Through mapped files (whose symbol-table and compressed-section pages are discarded once
    // copied out) and through plain buffers, libc and its debug file give the same answers.
    let libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    let mut plain = std_reader;
    let Some(mut a) = DebugObject::load_standard(&mut plain, libc, |_| Some(0)) else { return };
    let mut mapped = crate::stacks::SysFileReader;
    let mut b = DebugObject::load_standard(&mut mapped, libc, |_| Some(0)).expect("mapped libc");
    assert_eq!(a.debug_file_path(), b.debug_file_path());
    let malloc = a.symbols().lookup_name("malloc").expect("malloc");
    assert_eq!(b.symbols().lookup_name("malloc"), Some(malloc));
    assert_eq!(a.symbols().len(), b.symbols().len());
    let mut described = 0;
    for addr in (malloc..malloc + 0x400).step_by(3) {
        let (fa, fb) = (a.src_frames(addr), b.src_frames(addr));
        assert_eq!(fa, fb, "{addr:#x}");
        let file = |o: &DebugObject, f: &[super::dwarf::SrcFrame]| f.iter().map(|f| f.file.and_then(|id| o.source_file(id)).cloned()).collect::<Vec<_>>();
        assert_eq!(file(&a, &fa), file(&b, &fb));
        assert_eq!(a.symbolize(addr).map(|(n, o)| (String::from(n), o)), b.symbolize(addr).map(|(n, o)| (String::from(n), o)));
        assert_eq!(a.cfi_rules_at(addr), b.cfi_rules_at(addr));
        described += usize::from(!fa.is_empty());
    }
    if a.debug_file_path().is_some() {
        assert!(described > 100, "{described}");
    }
}

#[inline(never)]
fn marker_fn_one() -> u32 {
    std::hint::black_box(1)
}

#[inline(never)]
fn marker_fn_two() -> u32 {
    std::hint::black_box(2)
}

#[test]
fn rust_test_binary_symbols_demangled() {
    let exe = std::env::current_exe().unwrap();
    let mut obj = DebugObject::from_bytes(exe.to_str().unwrap(), std::fs::read(&exe).unwrap(), 0).unwrap();
    let find = |obj: &mut DebugObject, suffix: &str| {
        obj.symbols()
            .iter()
            .find(|s| demangle(&s.name, true).ends_with(suffix))
            .map(|s| s.addr)
            .unwrap_or_else(|| panic!("no symbol ending {suffix}"))
    };
    let one = find(&mut obj, "debuginfo::tests::marker_fn_one");
    let two = find(&mut obj, "debuginfo::tests::marker_fn_two");
    // The binary is position independent: its load bias is where the code is minus where the
    // file says it is.
    let bias = (marker_fn_one as fn() -> u32 as usize as u64).wrapping_sub(one);
    let mut obj = DebugObject::from_bytes(exe.to_str().unwrap(), std::fs::read(&exe).unwrap(), bias).unwrap();
    let runtime_two = marker_fn_two as fn() -> u32 as usize as u64;
    assert_eq!(two.wrapping_add(bias), runtime_two);
    let (name, off) = obj.symbolize(runtime_two).unwrap();
    assert_eq!(off, 0);
    assert!(name.starts_with("_ZN") || name.starts_with("_R"), "{name}");
    assert!(demangle(name, true).ends_with("debuginfo::tests::marker_fn_two"));
    assert!(!demangle(name, true).contains("17h"), "hash suffix shown");
    assert_eq!(demangle(name, false), name);
    // And its line: this file.
    let frames = obj.src_frames(runtime_two);
    let f = frames.last().expect("DWARF for marker_fn_two");
    assert_eq!(obj.source_file(f.file.unwrap()).unwrap().file, "tests.rs");
    let _ = (marker_fn_one(), marker_fn_two());
}

#[test]
fn frame_formats() {
    let f = |func: Option<&str>, file: Option<&str>, line, obj: Option<&str>| FrameDesc {
        ip: 0x4005B4,
        func: func.map(String::from),
        file: file.map(String::from),
        line,
        obj: obj.map(String::from),
        ..FrameDesc::default()
    };
    assert_eq!(format_frame(true, &f(Some("main"), Some("prog.c"), Some(12), Some("/p"))), "   at 0x4005B4: main (prog.c:12)");
    assert_eq!(format_frame(false, &f(Some("fn"), None, None, Some("/path/lib.so"))), "   by 0x4005B4: fn (in /path/lib.so)");
    assert_eq!(format_frame(false, &f(None, None, None, Some("/path/lib.so"))), "   by 0x4005B4: ??? (in /path/lib.so)");
    assert_eq!(format_frame(false, &f(None, None, None, None)), "   by 0x4005B4: ???");
}
