//! Guest programs for the integration tests: building the C/asm sources under `tests/guest/`
//! with the system gcc in several variants (cached by modification time in
//! `<target>/guests/<variant>/<name>`), making sure the tool executables are built, and running
//! a program natively or under the launcher with its stdout, stderr and exit status captured.
//!
//! Environment knobs:
//! - `VG_TEST_VALGRIND`: the launcher to test (e.g. `/usr/bin/valgrind` to check the harness
//!   against the real Valgrind). Unset: `<target>/release/valgrind`, built on first use.
//! - `VG_TEST_NO_BUILD=1`: never run `cargo build` from the tests.
//! - `VG_TEST_TIMEOUT`: seconds a single run may take before it is killed (default 600).
//! - `CARGO_TARGET_DIR`: honoured when locating the target directory.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// How a guest is compiled and linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// `-static -O0`: unoptimised code, a fixed load address.
    StaticO0,
    /// `-static -O2`: optimised code (more SSE, tighter loops), a fixed load address.
    StaticO2,
    /// `-static-pie -O2`: position-independent, self-relocating at startup.
    StaticPieO2,
}

impl Variant {
    /// Every variant the guest tests cover.
    pub const ALL: [Variant; 3] = [Variant::StaticO0, Variant::StaticO2, Variant::StaticPieO2];

    /// The directory name under `<target>/guests/`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::StaticO0 => "static-O0",
            Variant::StaticO2 => "static-O2",
            Variant::StaticPieO2 => "static-pie-O2",
        }
    }

    fn gcc_flags(self) -> &'static [&'static str] {
        match self {
            Variant::StaticO0 => &["-static", "-O0"],
            Variant::StaticO2 => &["-static", "-O2"],
            Variant::StaticPieO2 => &["-static-pie", "-fPIE", "-O2"],
        }
    }
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The cargo target directory: `$CARGO_TARGET_DIR` (made absolute) or `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// Where the guest sources live.
pub fn guest_source_dir() -> PathBuf {
    workspace_root().join("tests").join("guest")
}

/// The source of guest `name`: `tests/guest/<name>.c` or `tests/guest/<name>.S`.
pub fn guest_source(name: &str) -> PathBuf {
    let dir = guest_source_dir();
    let c = dir.join(format!("{name}.c"));
    if c.exists() {
        c
    } else {
        dir.join(format!("{name}.S"))
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// One lock per output file, so parallel tests in one process never compile the same guest
/// twice at once. Across processes the rename below keeps the output whole.
fn path_lock(path: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut map = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(path.to_path_buf()).or_default().clone()
}

/// Builds guest `name` in `variant` (unless an executable newer than its source exists) and
/// returns the executable's path. Panics with gcc's output if compilation fails.
pub fn build(name: &str, variant: Variant) -> PathBuf {
    let src = guest_source(name);
    assert!(
        src.exists(),
        "no guest source for {name:?} in {}",
        guest_source_dir().display()
    );
    compile(&src, variant.name(), |tmp| {
        let mut gcc = Command::new("gcc");
        gcc.args(variant.gcc_flags())
            .args(["-g", "-Wall", "-Wextra", "-o"])
            .arg(tmp)
            .arg(&src);
        if src.extension().is_some_and(|e| e == "S") {
            gcc.arg("-nostdlib");
        } else {
            gcc.arg("-lm");
        }
        gcc
    })
}

/// Builds guest `name` as an ordinary dynamically linked program, `-g -O0` (the system's
/// default PIE): `tests/guest/<name>.cpp` with g++ if it exists, else `<name>.c` with gcc.
/// Cached like [`build`] in `<target>/guests/dynamic-O0/`.
pub fn build_dynamic(name: &str) -> PathBuf {
    let cpp = guest_source_dir().join(format!("{name}.cpp"));
    let (src, compiler) = if cpp.exists() { (cpp, "g++") } else { (guest_source(name), "gcc") };
    assert!(src.exists(), "no guest source for {name:?} in {}", guest_source_dir().display());
    compile(&src, "dynamic-O0", |tmp| {
        let mut cc = Command::new(compiler);
        cc.args(["-g", "-O0", "-o"]).arg(tmp).arg(&src);
        cc
    })
}

/// Runs the compiler command `command(tmp)` makes (it writes to `tmp`) unless
/// `<target>/guests/<dir>/<stem of src>` is newer than `src`, then moves the result there.
/// Panics with the compiler's output if compilation fails.
fn compile(src: &Path, dir: &str, command: impl FnOnce(&Path) -> Command) -> PathBuf {
    let name = src.file_stem().expect("guest source has a name").to_string_lossy();
    let out_dir = target_dir().join("guests").join(dir);
    let out = out_dir.join(&*name);
    let lock = path_lock(&out);
    let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    if let (Some(built), Some(source)) = (modified(&out), modified(src))
        && built >= source
    {
        return out;
    }
    fs::create_dir_all(&out_dir).expect("create guest output directory");
    let tmp = out_dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut cc = command(&tmp);
    let result = cc.output().unwrap_or_else(|e| panic!("run {cc:?} (is it installed?): {e}"));
    assert!(
        result.status.success(),
        "compiling {} ({dir}) failed:\n{}",
        src.display(),
        String::from_utf8_lossy(&result.stderr)
    );
    fs::rename(&tmp, &out).expect("move built guest into place");
    out
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The process id of the child (the launcher execs the tool, so it keeps this pid and
    /// prints it in `==PID==`).
    pub pid: u32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: ExitStatus,
}

impl Outcome {
    /// The status as a shell reports it: the exit code, or 128 + the signal that killed it.
    pub fn shell_status(&self) -> i32 {
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => code,
            (None, Some(sig)) => 128 + sig,
            (None, None) => unreachable!("a finished process has a code or a signal"),
        }
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// The `==PID==` prefix of the tool's messages for this run.
    pub fn prefix(&self) -> String {
        format!("=={}==", self.pid)
    }
}

fn timeout() -> Duration {
    let secs = std::env::var("VG_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

fn drain(mut from: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = from.read_to_end(&mut buf);
        buf
    })
}

/// Runs `cmd` with `stdin` fed to it, capturing everything; kills it after the timeout
/// (a hung tool must fail a test, not hang the suite).
pub fn run_command(mut cmd: Command, stdin: &[u8]) -> Outcome {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child: Child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id();
    let mut input = child.stdin.take().expect("piped stdin");
    let data = stdin.to_vec();
    // A program that exits without reading makes this write fail (EPIPE): that is fine.
    let feeder = thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = drain(child.stdout.take().expect("piped stdout"));
    let err = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + timeout();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {:?}", timeout());
        }
        thread::sleep(Duration::from_millis(5));
    };
    let _ = feeder.join();
    Outcome {
        pid,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        status,
    }
}

/// Runs `prog args` natively.
pub fn run_native(prog: &Path, args: &[&str], stdin: &[u8]) -> Outcome {
    let mut cmd = Command::new(prog);
    cmd.args(args);
    run_command(cmd, stdin)
}

/// Runs `valgrind tool_args prog args` with the launcher under test.
pub fn run_tool(tool_args: &[&str], prog: &Path, args: &[&str], stdin: &[u8]) -> Outcome {
    let mut cmd = Command::new(valgrind());
    cmd.args(tool_args).arg(prog).args(args);
    run_command(cmd, stdin)
}

/// Runs the launcher under test with exactly `args` (for option and error-case tests).
pub fn run_launcher(args: &[&str]) -> Outcome {
    let mut cmd = Command::new(valgrind());
    cmd.args(args);
    run_command(cmd, b"")
}

/// Whether the tests exercise an outside launcher (`VG_TEST_VALGRIND`) rather than ours.
pub fn external_valgrind() -> Option<PathBuf> {
    std::env::var_os("VG_TEST_VALGRIND")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The launcher under test; builds the workspace's tool executables on first use.
pub fn valgrind() -> PathBuf {
    if let Some(v) = external_valgrind() {
        return v;
    }
    ensure_built("release");
    target_dir().join("release").join("valgrind")
}

/// The inner build's launcher (`cargo build --profile inner`), built on first use.
pub fn inner_valgrind() -> PathBuf {
    ensure_built("inner");
    target_dir().join("inner").join("valgrind")
}

/// Runs `cargo build --profile <profile>` of the launcher and the tools once per process (a
/// no-op when everything is fresh), so `cargo test` alone tests current tool executables.
pub fn ensure_built(profile: &'static str) {
    static BUILT: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    if std::env::var_os("VG_TEST_NO_BUILD").is_some_and(|v| v == "1") {
        return;
    }
    let mut done = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if done.contains(profile) {
        return;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "--profile",
            profile,
            "-p",
            "valgrind",
            "-p",
            "vg-tool-none",
            "-p",
            "vg-tool-memcheck",
        ])
        .env("CARGO_TARGET_DIR", target_dir())
        .status()
        .expect("run cargo build for the tool executables");
    assert!(
        status.success(),
        "cargo build --profile {profile} of the tool executables failed"
    );
    done.insert(profile);
}

/// A short, readable account of where two outputs first differ.
pub fn first_difference(expected: &[u8], actual: &[u8]) -> String {
    let exp = String::from_utf8_lossy(expected);
    let act = String::from_utf8_lossy(actual);
    for (i, (e, a)) in exp.lines().zip(act.lines()).enumerate() {
        if e != a {
            return format!("line {}: expected {e:?}, got {a:?}", i + 1);
        }
    }
    format!(
        "{} lines expected, {} lines got; tail expected {:?}, got {:?}",
        exp.lines().count(),
        act.lines().count(),
        tail(&exp),
        tail(&act)
    )
}

fn tail(s: &str) -> &str {
    let start = s.len().saturating_sub(200);
    let start = (start..=s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    &s[start..]
}

impl Outcome {
    /// Stderr lines with pids and addresses normalised for comparison with expected reports:
    /// the `==PID==` prefix, `**PID**` (client printf lines), and every hex number as `0x...`.
    pub fn filtered_stderr(&self) -> Vec<String> {
        self.stderr_str()
            .lines()
            .map(|l| {
                let l = l.replacen(&self.prefix(), "==PID==", 1);
                let l = l.replacen(&format!("**{}**", self.pid), "**PID**", 1);
                let mut out = String::new();
                let mut rest = l.as_str();
                while let Some(i) = rest.find("0x") {
                    out.push_str(&rest[..i]);
                    out.push_str("0x...");
                    rest = rest[i + 2..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
                }
                out.push_str(rest);
                out
            })
            .collect()
    }
}

/// The (1-based) line of guest source `name` holding `marker`, for expected `file:line`s.
pub fn line_of(name: &str, marker: &str) -> usize {
    let src = fs::read_to_string(guest_source(name)).expect("guest source");
    src.lines().position(|l| l.contains(marker)).unwrap_or_else(|| panic!("no {marker} in {name}")) + 1
}
