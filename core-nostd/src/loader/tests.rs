//! Loader tests: real static and static-PIE programs (built with the system gcc) are mapped
//! into this test process, at addresses the test harness does not use.

extern crate std;

use super::*;
use crate::aspace::{SegKind, page_up};
use std::path::PathBuf;
use std::process::Command;
use std::string::ToString;

static INIT: std::sync::Once = std::sync::Once::new();

/// Initialise the global address space and build the test programs into a fresh directory,
/// once for all tests.
fn setup() -> PathBuf {
    let dir = std::env::temp_dir().join(std::format!("vg-loader-test-{}", std::process::id()));
    INIT.call_once(|| {
        aspace::init().unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("t.c");
        std::fs::write(&src, "int x = 5; char bss[100000]; int main(int c, char **v) { return x + bss[c]; }\n").unwrap();
        for (out, flag) in [("static", "-static"), ("pie", "-static-pie"), ("dyn", "-pie")] {
            let st = Command::new("gcc").arg(flag).arg("-O1").arg("-o").arg(dir.join(out)).arg(&src).status().unwrap();
            assert!(st.success(), "gcc {flag} failed");
        }
    });
    dir
}

fn word(addr: u64) -> u64 {
    // SAFETY: tests only read addresses inside mappings the loader just made.
    unsafe { *(addr as *const u64) }
}

fn cstr(addr: u64) -> std::string::String {
    // SAFETY: as above; the loader NUL-terminates every string it stores.
    unsafe { core::ffi::CStr::from_ptr(addr as *const core::ffi::c_char) }.to_str().unwrap().to_string()
}

#[test]
fn loads_a_static_exe_with_stack_auxv_and_brk() {
    let dir = setup();
    let exe = dir.join("static");
    let exe_s = exe.to_str().unwrap();
    let bytes = std::fs::read(&exe).unwrap();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    let host = [[AT_HWCAP as usize, 0x1234], [AT_HWCAP2 as usize, 3], [AT_UID as usize, 1000], [0, 0]];
    let img = load_for_machine(goblin::elf::header::EM_X86_64, exe_s, &[exe_s, "one", "two"], &["A=1", "PATH=/bin"], host.as_ptr(), 0).unwrap();

    assert_eq!((img.entry, img.exe_entry, img.base, img.interp.as_deref()), (elf.entry, elf.entry, 0, None));
    assert_eq!(img.exe_path, std::fs::canonicalize(&exe).unwrap().to_str().unwrap());
    assert_eq!(client().map(|c| &c.exe_path), Some(&img.exe_path));

    // The code is mapped from the file and is client-readable; the bss is zero.
    let text_off = elf.program_headers.iter().find(|p| p.is_executable()).unwrap();
    let off = (elf.entry - text_off.p_vaddr + text_off.p_offset) as usize;
    // SAFETY: the entry lies in the executable segment just mapped.
    let code = unsafe { core::slice::from_raw_parts(elf.entry as *const u8, 16) };
    assert_eq!(code, &bytes[off..off + 16]);
    assert!(aspace::is_client_readable(elf.entry, 16));
    let last = elf.program_headers.iter().rfind(|p| p.p_type == 1).unwrap();
    let bss = (last.p_vaddr + last.p_filesz, last.p_vaddr + last.p_memsz);
    assert!((bss.0..bss.1).step_by(997).all(|a| unsafe { *(a as *const u8) } == 0), "bss not zero");
    assert_eq!(img.brk_base, page_up(last.p_vaddr + last.p_memsz));

    // The stack: argc, argv, envp, auxv.
    assert_eq!(img.sp % 16, 0);
    assert!(img.sp > img.stack_low && img.sp < img.stack_top);
    assert_eq!(word(img.sp), 3);
    let argv: std::vec::Vec<_> = (1..=3).map(|i| cstr(word(img.sp + 8 * i))).collect();
    assert_eq!(argv, [exe_s, "one", "two"]);
    assert_eq!(word(img.sp + 32), 0);
    assert_eq!((cstr(word(img.sp + 40)), cstr(word(img.sp + 48)), word(img.sp + 56)), ("A=1".into(), "PATH=/bin".into(), 0));
    let mut auxv = std::collections::HashMap::new();
    let mut at = img.sp + 64;
    while word(at) != AT_NULL {
        auxv.insert(word(at), word(at + 8));
        at += 16;
    }
    let phdr_addr = 0x40_0000 + elf.header.e_phoff;
    assert_eq!(auxv[&AT_PHDR], phdr_addr);
    assert_eq!(auxv[&AT_PHNUM], elf.header.e_phnum as u64);
    assert_eq!((img.phdr, img.phnum), (phdr_addr, elf.header.e_phnum as u64));
    assert_eq!(auxv[&AT_PHENT], 56);
    assert_eq!(auxv[&AT_ENTRY], elf.entry);
    assert_eq!(auxv[&AT_BASE], 0);
    assert_eq!(auxv[&AT_PAGESZ], 4096);
    assert_eq!(auxv[&AT_HWCAP], 0x1234);
    assert_eq!(auxv[&AT_HWCAP2], 1, "FSGSBASE hidden");
    assert_eq!(auxv[&AT_UID], 1000);
    assert_eq!(auxv[&AT_CLKTCK], 100);
    assert_eq!(cstr(auxv[&AT_PLATFORM]), "x86_64");
    assert_eq!(cstr(auxv[&AT_EXECFN]), exe_s);
    assert!(auxv[&AT_RANDOM] > at && auxv[&AT_RANDOM] < img.stack_top);
    assert!(!auxv.contains_key(&33), "no AT_SYSINFO_EHDR");
    // The program headers are where AT_PHDR says.
    assert_eq!(word(phdr_addr) as u32, elf.program_headers[0].p_type);

    // brk: starts at brk_base, grows into writable memory, refuses to pass the limit.
    assert_eq!(aspace::client_brk(0), img.brk_base);
    let top = img.brk_base + 0x1_0010;
    assert_eq!(aspace::client_brk(top), top);
    // SAFETY: the brk pages up to `top` were just mapped read-write.
    unsafe { *((top - 1) as *mut u8) = 9 };
    assert_eq!(aspace::client_brk(img.brk_limit + 1), top);
    assert_eq!(aspace::client_brk(img.brk_base), img.brk_base);
    assert!(!aspace::is_client_readable(img.brk_base, 1));
    assert_eq!(aspace::aspace().segments().iter().find(|s| s.start <= top && top < s.end).unwrap().kind, SegKind::Reserved);
}

#[test]
fn maps_a_static_pie_at_the_requested_base() {
    let dir = setup();
    let path = dir.join("pie");
    let bytes = std::fs::read(&path).unwrap();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    let f = elf::ElfFile::open(path.to_str().unwrap(), goblin::elf::header::EM_X86_64).unwrap();
    assert_eq!(f.interp().unwrap(), None);
    let hint = 0x3000_0000;
    let m = f.map(hint, 0).unwrap();
    assert_eq!((m.bias, m.entry), (hint, hint + elf.entry));
    assert_eq!(word(hint) & 0xffff_ffff, 0x464c_457f, "ELF magic at the base");
    assert_eq!(word(m.phdr) as u32, elf.program_headers[0].p_type);
    // A second copy cannot go to the same place: it is moved, not overlapped.
    let m2 = f.map(hint, 0).unwrap();
    assert_ne!(m2.bias, hint);
    assert!(aspace::is_client_readable(m2.entry, 1));
}

#[test]
fn bad_programs_give_one_line_errors() {
    let dir = setup();
    let text = dir.join("text");
    std::fs::write(&text, "hello, not an ELF file\n").unwrap();
    let noexec = dir.join("noexec");
    std::fs::copy(dir.join("static"), &noexec).unwrap();
    let wrong = dir.join("wrong-arch");
    let mut b = std::fs::read(dir.join("static")).unwrap();
    b[18] = 183; // e_machine = EM_AARCH64
    std::fs::write(&wrong, &b).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for p in [&text, &wrong] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&noexec, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = |p: &std::path::Path| elf::ElfFile::open(p.to_str().unwrap(), goblin::elf::header::EM_X86_64).err().unwrap();
    let t = text.to_str().unwrap();
    assert_eq!(open(&text), LoadError::NotExecutable(t.into()));
    assert_eq!(std::format!("{}", open(&text)), std::format!("{t}: cannot execute binary file"));
    assert!(matches!(open(&wrong), LoadError::NotExecutable(_)));
    assert!(matches!(open(&dir), LoadError::IsDirectory(_)));
    assert!(matches!(open(&dir.join("missing")), LoadError::NotFound(_)));
    assert!(matches!(open(&noexec), LoadError::PermissionDenied(_)));
    assert_eq!(std::format!("{}", LoadError::NotFound("./x".into())), "./x: No such file or directory");
}

#[test]
fn program_names_are_searched_in_path() {
    let dir = setup();
    let path = std::format!("PATH=/nonexistent:{}", dir.to_str().unwrap());
    assert_eq!(find_program("static", &["A=1", &path]), std::format!("{}/static", dir.to_str().unwrap()));
    assert_eq!(find_program("./static", &[&path]), "./static");
    assert_eq!(find_program("no-such-program-here", &[&path]), "no-such-program-here");
}

#[test]
fn finds_and_maps_the_interpreter_of_a_dynamic_program() {
    let dir = setup();
    let f = elf::ElfFile::open(dir.join("dyn").to_str().unwrap(), goblin::elf::header::EM_X86_64).unwrap();
    let interp = f.interp().unwrap().expect("a dynamic program has PT_INTERP");
    assert!(interp.contains("ld-linux"), "{interp}");
    let ld = elf::ElfFile::open(&interp, goblin::elf::header::EM_X86_64).unwrap();
    let hint = 0x2000_0000;
    let m = ld.map(hint, 0).unwrap();
    assert_eq!(m.bias, hint);
    assert!(aspace::is_client_readable(m.entry, 16));
    let seg = aspace::aspace().segments().iter().find(|s| s.start == hint).unwrap().clone();
    assert_eq!(seg.kind, SegKind::Client(crate::aspace::Backing::File));
    assert!(seg.name.unwrap().contains("ld-linux"));
}
