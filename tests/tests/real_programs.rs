//! Real, dynamically linked programs of the machine under `--tool=none`: each must print exactly
//! what it prints natively and exit with the same status.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use vg_tests::guests::{Outcome, first_difference, run_command, run_native, run_tool, target_dir};

/// Resolves a command name on PATH (the tests skip nothing: these are part of the base system
/// or installed by .ci/run).
fn which(name: &str) -> PathBuf {
    let out = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().expect("sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!path.is_empty(), "{name} is not installed");
    PathBuf::from(path)
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = target_dir().join("real-programs").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A few MB of deterministic text lines.
fn big_text(dir: &Path) -> PathBuf {
    let path = dir.join("big.txt");
    let mut s = String::with_capacity(4 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..100_000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        s.push_str(&format!("{:020} line {i} {:03}\n", x, x % 977));
    }
    fs::write(&path, s).unwrap();
    path
}

fn assert_same(what: &str, native: &Outcome, tool: &Outcome) {
    assert!(
        native.stdout == tool.stdout,
        "{what}: stdout differs: {}\ntool stderr:\n{}",
        first_difference(&native.stdout, &tool.stdout),
        tool.stderr_str()
    );
    assert_eq!(native.shell_status(), tool.shell_status(), "{what}: exit status\ntool stderr:\n{}", tool.stderr_str());
}

/// The python3 interpreter itself (`python3` on PATH may be a pyenv shell-script shim that
/// execs it; without --trace-children the tool would then run only the shim).
fn real_python() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import os, sys; print(os.path.realpath(sys.executable))"])
        .output()
        .expect("python3");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn same_as_native(prog: &str, args: &[&str]) {
    let exe = if prog == "python3" { real_python() } else { which(prog) };
    let native = run_native(&exe, args, b"");
    let tool = run_tool(&["-q", "--tool=none"], &exe, args, b"");
    assert_same(&format!("{prog} {args:?}"), &native, &tool);
}

#[test]
fn ls_la_usr_lib() {
    same_as_native("ls", &["-la", "/usr/lib"]);
}

#[test]
fn sort_and_sha256sum_of_a_multi_megabyte_file() {
    let dir = scratch_dir("sort");
    let file = big_text(&dir);
    let f = file.to_str().unwrap();
    same_as_native("sort", &[f]);
    same_as_native("sha256sum", &[f]);
}

#[test]
fn python3_json_re_hashlib_threading_subprocess() {
    let script = r#"
import json, re, hashlib, threading, subprocess
print(json.dumps({"k": [1, 2.5, None, "x"]}, sort_keys=True))
print(re.findall(r"(\w)(\d+)", "a1 b22 c333"))
print(hashlib.sha256(b"valgrind" * 10000).hexdigest())
out = []
ts = [threading.Thread(target=lambda i=i: out.append(sum(range(i * 1000)))) for i in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
print(sorted(out))
print(subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip())
"#;
    same_as_native("python3", &["-c", script]);
}

#[test]
fn perl_one_liner() {
    same_as_native("perl", &["-e", "my %h = map { $_ => $_ ** 2 } 1..50; print join(',', map { $h{$_} } sort { $a <=> $b } keys %h), \"\\n\";"]);
}

#[test]
fn gcc_compiles_a_c_file() {
    let dir = scratch_dir("gcc");
    let src = dir.join("unit.c");
    fs::write(&src, "int twice(int x) { return 2 * x; }\nint main(void) { return twice(21) - 42; }\n").unwrap();
    let gcc = which("gcc");
    for (obj, under_tool) in [("native.o", false), ("tool.o", true)] {
        let obj = dir.join(obj);
        let args = ["-O2", "-c", src.to_str().unwrap(), "-o", obj.to_str().unwrap()];
        let out = if under_tool { run_tool(&["-q", "--tool=none"], &gcc, &args, b"") } else { run_native(&gcc, &args, b"") };
        assert_eq!(out.shell_status(), 0, "gcc (tool: {under_tool}) failed:\n{}", out.stderr_str());
    }
    assert_eq!(fs::read(dir.join("native.o")).unwrap(), fs::read(dir.join("tool.o")).unwrap(), "object files differ");
}

#[test]
fn tar_of_a_directory() {
    let guest_dir = vg_tests::guests::guest_source_dir();
    // Fixed owner and time so the two archives can be compared byte for byte.
    let args = ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-cf", "-", "-C"];
    let mut args: Vec<&str> = args.to_vec();
    args.push(guest_dir.to_str().unwrap());
    args.push(".");
    same_as_native("tar", &args);
}

#[test]
fn git_version() {
    same_as_native("git", &["--version"]);
}

#[test]
fn trace_children_runs_each_child_under_the_tool() {
    let sh = which("sh");
    let native = run_native(&sh, &["-c", "ls / | wc -l"], b"");
    let mut cmd = Command::new(vg_tests::guests::valgrind());
    cmd.args(["--tool=none", "--trace-children=yes"]).arg(&sh).args(["-c", "ls / | wc -l"]);
    let tool = run_command(cmd, b"");
    assert_same("sh -c 'ls / | wc -l'", &native, &tool);
    let err = tool.stderr_str();
    for child in ["Command: /usr/bin/ls /", "Command: /usr/bin/wc -l"] {
        assert!(err.contains(child), "no banner of the child `{child}`:\n{err}");
    }
    assert!(err.matches("Nulgrind, the minimal Valgrind tool").count() >= 3, "{err}");
}
