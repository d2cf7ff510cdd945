//! The launcher's behaviour before any guest runs: its error cases, `--version` and `--help`.
//! Messages and exit statuses are Valgrind 3.19's (each was checked against `/usr/bin/valgrind`;
//! run these tests with `VG_TEST_VALGRIND=/usr/bin/valgrind` to check them again).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use vg_tests::guests::{Outcome, Variant, build, run_launcher, target_dir};

/// A scratch directory private to this test process.
fn scratch(test: &str) -> PathBuf {
    let dir = target_dir()
        .join("launcher-tests")
        .join(format!("{}-{test}", std::process::id()));
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) {
    fs::write(path, bytes).expect("write test file");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod test file");
}

/// A 64-bit little-endian ELF header (an `EXEC` with no program headers) for `machine`.
fn elf64_header(machine: u16) -> Vec<u8> {
    let mut h = vec![
        0x7f, b'E', b'L', b'F', 2, /* 64-bit */
        1, /* LE */
        1, /* version */
        0, /* SysV */
    ];
    h.resize(16, 0);
    h.extend_from_slice(&2u16.to_le_bytes()); // e_type = ET_EXEC
    h.extend_from_slice(&machine.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes()); // e_version
    h.extend_from_slice(&0x10000u64.to_le_bytes()); // e_entry
    h.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    h.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    h.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for half in [64u16, 56, 0, 64, 0, 0] {
        // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
        h.extend_from_slice(&half.to_le_bytes());
    }
    assert_eq!(h.len(), 64);
    h
}

const EM_AARCH64: u16 = 183;
const EM_RISCV: u16 = 243;

/// Exactly these stderr lines, this status, nothing on stdout.
fn assert_error(o: &Outcome, lines: &[&str], status: i32) {
    let expected: String = lines.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(o.stderr_str(), expected, "stderr");
    assert_eq!(
        o.shell_status(),
        status,
        "status; stderr: {}",
        o.stderr_str()
    );
    assert_eq!(o.stdout_str(), "", "stdout");
}

#[test]
fn no_program() {
    let lines = [
        "valgrind: no program specified",
        "valgrind: Use --help for more information.",
    ];
    assert_error(&run_launcher(&[]), &lines, 1);
    assert_error(&run_launcher(&["--tool=none"]), &lines, 1);
    assert_error(&run_launcher(&["-q", "--tool=none"]), &lines, 1);
}

#[test]
fn missing_program() {
    let path = scratch("missing").join("no-such-program");
    let p = path.to_str().unwrap();
    assert_error(
        &run_launcher(&["--tool=none", p]),
        &[&format!("valgrind: {p}: No such file or directory")],
        127,
    );
    assert_error(
        &run_launcher(&["-q", "--tool=none", p]),
        &[&format!("valgrind: {p}: No such file or directory")],
        127,
    );
}

/// A name without a slash is looked up in `$PATH`, like a shell does.
#[test]
fn program_not_in_path() {
    let name = "vg-tests-no-such-command-xyzzy";
    assert_error(
        &run_launcher(&["--tool=none", name]),
        &[&format!("valgrind: {name}: command not found")],
        127,
    );
}

#[test]
fn directory() {
    let dir = scratch("directory");
    let d = dir.to_str().unwrap();
    assert_error(
        &run_launcher(&["--tool=none", d]),
        &[&format!("valgrind: {d}: is a directory")],
        126,
    );
}

/// A real guest executable, but with its execute bits cleared. (Root bypasses read and write
/// permissions, never a missing execute bit, so this holds under CI's root too.)
#[test]
fn not_executable() {
    let exe = build("hello", Variant::StaticO2);
    let copy = scratch("noexec").join("hello-noexec");
    fs::copy(&exe, &copy).expect("copy guest");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o644)).unwrap();
    let p = copy.to_str().unwrap();
    assert_error(
        &run_launcher(&["--tool=none", p]),
        &[&format!("valgrind: {p}: Permission denied")],
        126,
    );
}

/// An executable file that is neither ELF nor a `#!` script, with binary content.
#[test]
fn not_elf() {
    let path = scratch("notelf").join("garbage");
    let bytes: Vec<u8> = (0..512u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 0x80)
        .collect();
    write_file(&path, &bytes, 0o755);
    let p = path.to_str().unwrap();
    assert_error(
        &run_launcher(&["--tool=none", p]),
        &[&format!("valgrind: {p}: cannot execute binary file")],
        126,
    );
}

/// An ELF file for an architecture Valgrind has no port for at all.
#[test]
fn unsupported_architecture() {
    let path = scratch("riscv").join("riscv-prog");
    write_file(&path, &elf64_header(EM_RISCV), 0o755);
    let p = path.to_str().unwrap();
    assert_error(
        &run_launcher(&["--tool=none", p]),
        &[&format!("valgrind: {p}: cannot execute binary file")],
        126,
    );
}

/// An arm64 ELF: a known platform, but no `none-arm64-linux` tool executable is built (the
/// arm64 port is a skeleton), so the launcher cannot start one. Update this test when the
/// arm64 tool executables exist.
#[test]
fn platform_without_tool_executable() {
    let path = scratch("arm64").join("arm64-prog");
    write_file(&path, &elf64_header(EM_AARCH64), 0o755);
    let p = path.to_str().unwrap();
    let line = "valgrind: failed to start tool 'none' for platform 'arm64-linux': No such file or directory";
    assert_error(&run_launcher(&["--tool=none", p]), &[line], 1);
}

#[test]
fn unknown_tool() {
    let exe = build("hello", Variant::StaticO2);
    let line = "valgrind: failed to start tool 'nosuchtool' for platform 'amd64-linux': No such file or directory";
    assert_error(
        &run_launcher(&["--tool=nosuchtool", exe.to_str().unwrap()]),
        &[line],
        1,
    );
}

/// `--version` prints one `valgrind-X.Y.Z` line on stdout, whatever else is on the line.
#[test]
fn version() {
    for args in [&["--version"][..], &["--tool=none", "--version"][..]] {
        let o = run_launcher(args);
        assert_eq!(o.shell_status(), 0, "{args:?}: {}", o.stderr_str());
        assert_eq!(o.stderr_str(), "", "{args:?}");
        let out = o.stdout_str();
        let version = out
            .strip_prefix("valgrind-")
            .and_then(|v| v.strip_suffix('\n'));
        let version =
            version.unwrap_or_else(|| panic!("{args:?}: not `valgrind-X.Y.Z\\n`: {out:?}"));
        let parts: Vec<&str> = version.split('.').collect();
        assert!(
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
            "{args:?}: version {version:?} is not X.Y.Z"
        );
    }
}

/// `--help` and `-h` print the usage on stdout, naming the core options, and exit 0.
#[test]
fn help() {
    for flag in ["--help", "-h"] {
        let o = run_launcher(&[flag]);
        assert_eq!(o.shell_status(), 0, "{flag}: {}", o.stderr_str());
        let out = o.stdout_str();
        assert!(
            out.starts_with("usage: valgrind [options] prog-and-args\n"),
            "{flag}: {out}"
        );
        for option in [
            "--tool=<name>",
            "--version",
            "-q --quiet",
            "--log-file=<file>",
            "--log-fd=<number>",
        ] {
            assert!(
                out.contains(option),
                "{flag}: usage does not mention {option}:\n{out}"
            );
        }
    }
}
