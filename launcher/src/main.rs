//! `valgrind`: the launcher (Valgrind's `launcher-linux.c`). It reads only what it needs from the
//! command line (`--tool=`, `--version`, `-h`/`--help`, the client program), looks at the
//! client's ELF header (through `#!` interpreters) to pick the architecture, finds the tool
//! executable `<tool>-<arch>-linux` and execs it with the same arguments. Everything else (the
//! other options, loading the client) is the tool executable's job.
//!
//! Problems with the client get Valgrind's messages and exit codes: 127 when the program cannot
//! be found, 126 when it is found but cannot be run, 1 when the tool cannot be started.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, exit};

/// Valgrind's `valgrind-X.Y.Z` form (scripts parse it), with our version number.
const VERSION: &str = concat!("valgrind-", env!("CARGO_PKG_VERSION"));
const DEFAULT_TOOL: &str = "memcheck";
/// How many `#!` interpreters may be chained (the kernel's limit is similar).
const MAX_INTERP_DEPTH: usize = 4;

const EM_386: u16 = 3;
const EM_MIPS: u16 = 8;
const EM_PPC: u16 = 20;
const EM_PPC64: u16 = 21;
const EM_S390: u16 = 22;
const EM_ARM: u16 = 40;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// Why the client cannot be run: the message after `valgrind: ` (one or more lines) and the exit
/// status.
#[derive(Debug, PartialEq, Eq)]
struct Failure {
    lines: Vec<String>,
    code: i32,
}

impl Failure {
    fn new(line: String, code: i32) -> Self {
        Failure { lines: vec![line], code }
    }

    fn exit(&self) -> ! {
        for l in &self.lines {
            eprintln!("valgrind: {l}");
        }
        exit(self.code)
    }
}

/// The platform of the tool executable to run, e.g. "amd64" (the `<arch>` of
/// `<tool>-<arch>-linux`).
fn host_platform() -> &'static str {
    if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" }
}

/// What the launcher takes from the command line.
#[derive(Debug, Default, PartialEq, Eq)]
struct LaunchArgs {
    tool: Option<String>,
    help: bool,
    version: bool,
    /// Index (in the full argv) of the client program, if any.
    client: Option<usize>,
}

/// Scan the options (they end at the first argument not starting with '-').
fn scan_args(args: &[OsString]) -> LaunchArgs {
    let mut la = LaunchArgs::default();
    for (i, a) in args.iter().enumerate().skip(1) {
        let b = a.as_bytes();
        if !b.starts_with(b"-") {
            la.client = Some(i);
            break;
        }
        if let Some(t) = b.strip_prefix(b"--tool=") {
            la.tool = Some(String::from_utf8_lossy(t).into_owned());
        } else if b == b"-h" || b == b"--help" {
            la.help = true;
        } else if b == b"--version" {
            la.version = true;
        }
    }
    la
}

fn is_executable(meta: &std::fs::Metadata) -> bool {
    meta.is_file() && meta.permissions().mode() & 0o111 != 0
}

/// Resolve the program name like a shell does: a name with a '/' is a path; otherwise the first
/// executable regular file of that name in `$PATH`.
fn find_client(name: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, Failure> {
    if name.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(name));
    }
    let path_var = path_var.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    for dir in path_var.as_bytes().split(|&c| c == b':') {
        // An empty PATH element means the current directory.
        let dir = if dir.is_empty() { Path::new(".") } else { Path::new(OsStr::from_bytes(dir)) };
        let cand = dir.join(name);
        if std::fs::metadata(&cand).is_ok_and(|m| is_executable(&m)) {
            return Ok(cand);
        }
    }
    Err(Failure::new(format!("{}: command not found", name.to_string_lossy()), 127))
}

/// Whether the first bytes of a file that is neither ELF nor `#!` look like text, in which case
/// it runs as a `/bin/sh` script (as the shell and Valgrind do): no control characters other
/// than white space in the first 80 bytes.
fn looks_like_text(head: &[u8]) -> bool {
    head.iter().take(80).all(|&c| c >= 32 || matches!(c, b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
}

/// Valgrind's platform name for an ELF machine, class (64-bit = true) and byte order (little
/// = true): the platforms Valgrind has ports for, whether or not we have tool executables for
/// them. Other machines cannot be run at all.
fn platform_name(machine: u16, is64: bool, little: bool) -> Option<&'static str> {
    Some(match (machine, is64, little) {
        (EM_X86_64, _, _) => "amd64",
        (EM_AARCH64, _, _) => "arm64",
        (EM_386, false, _) => "x86",
        (EM_ARM, false, _) => "arm",
        (EM_PPC, false, _) => "ppc32",
        (EM_PPC64, true, false) => "ppc64be",
        (EM_PPC64, true, true) => "ppc64le",
        (EM_S390, true, _) => "s390x",
        (EM_MIPS, false, _) => "mips32",
        (EM_MIPS, true, _) => "mips64",
        _ => return None,
    })
}

/// Check that `path` can be run and find the platform of the code it runs (through `#!`
/// interpreters, up to `depth` more levels). `shown` is the name used in messages.
fn examine(path: &Path, shown: &str, depth: usize) -> Result<&'static str, Failure> {
    let meta = std::fs::metadata(path).map_err(|e| io_failure(shown, &e, 127))?;
    if meta.is_dir() {
        return Err(Failure::new(format!("{shown}: is a directory"), 126));
    }
    if !is_executable(&meta) || access_x(path).is_err() {
        return Err(Failure::new(format!("{shown}: Permission denied"), 126));
    }
    let mut head = Vec::with_capacity(4096);
    File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .map_err(|e| io_failure(shown, &e, 126))?;

    if head.starts_with(b"\x7fELF") && head.len() >= 64 {
        let is64 = head[4] == 2;
        let little = head[5] == 1;
        let machine = if little {
            u16::from_le_bytes([head[18], head[19]])
        } else {
            u16::from_be_bytes([head[18], head[19]])
        };
        return match platform_name(machine, is64, little) {
            // Our platforms are 64-bit little-endian only.
            Some("amd64" | "arm64") if !is64 || !little => Err(Failure {
                lines: vec![
                    "wrong ELF executable class (eg. 32-bit instead of 64-bit)".to_string(),
                    format!("{shown}: cannot execute binary file"),
                ],
                code: 126,
            }),
            Some(p) => Ok(p),
            None => Err(Failure::new(format!("{shown}: cannot execute binary file"), 126)),
        };
    }
    if let Some(rest) = head.strip_prefix(b"#!") {
        let line = rest.split(|&c| c == b'\n').next().unwrap_or(&[]);
        let interp = line
            .split(|&c| c == b' ' || c == b'\t')
            .find(|w| !w.is_empty());
        if let Some(interp) = interp {
            if depth == 0 {
                return Err(Failure::new(format!("{shown}: bad interpreter: Too many levels of symbolic links"), 126));
            }
            let ipath = Path::new(OsStr::from_bytes(interp));
            return examine(ipath, &ipath.to_string_lossy(), depth - 1).map_err(|f| {
                if f.code == 127 {
                    Failure::new(format!("{shown}: bad interpreter: No such file or directory"), 126)
                } else {
                    f
                }
            });
        }
    }
    if looks_like_text(&head) {
        // No (usable) `#!` line: the shell runs it.
        return examine(Path::new("/bin/sh"), "/bin/sh", depth.saturating_sub(1));
    }
    Err(Failure::new(format!("{shown}: cannot execute binary file"), 126))
}

/// access(path, X_OK): the mode bits alone do not say whether *we* may execute it.
fn access_x(path: &Path) -> std::io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    const X_OK: i32 = 1;
    unsafe extern "C" {
        fn access(path: *const std::ffi::c_char, mode: i32) -> i32;
    }
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    if unsafe { access(c.as_ptr(), X_OK) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// A failure from an I/O error: ENOENT keeps `missing_code` (127 for the program itself).
fn io_failure(shown: &str, e: &std::io::Error, missing_code: i32) -> Failure {
    let code = if e.kind() == std::io::ErrorKind::NotFound { missing_code } else { 126 };
    Failure::new(format!("{shown}: {}", strerror(e)), code)
}

/// The C library's text for an I/O error ("No such file or directory"), without Rust's
/// " (os error N)" suffix.
fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Where tool executables may be: `$VALGRIND_LIB` if set (an explicit choice wins), else next to
/// the launcher, else `../libexec/valgrind/` relative to it.
fn tool_dirs(self_exe: Option<&Path>, valgrind_lib: Option<&OsStr>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(lib) = valgrind_lib.filter(|l| !l.is_empty()) {
        dirs.push(PathBuf::from(lib));
    }
    if let Some(dir) = self_exe.and_then(Path::parent) {
        dirs.push(dir.to_path_buf());
        dirs.push(dir.join("../libexec/valgrind"));
    }
    dirs
}

/// The tool executable for `tool` on `platform`, or the "failed to start tool" failure.
fn find_tool(tool: &str, platform: &str, dirs: &[PathBuf]) -> Result<PathBuf, Failure> {
    let fail = |why: &str| {
        Failure::new(format!("failed to start tool '{tool}' for platform '{platform}-linux': {why}"), 1)
    };
    if tool.is_empty() || tool.contains('/') {
        return Err(fail("No such file or directory"));
    }
    let name = format!("{tool}-{platform}-linux");
    for d in dirs {
        let cand = d.join(&name);
        if let Ok(meta) = std::fs::metadata(&cand) {
            if is_executable(&meta) {
                return Ok(cand);
            }
            return Err(fail("Permission denied"));
        }
    }
    Err(fail("No such file or directory"))
}

/// The help when the tool executable is not there to give its own (which adds the tool's
/// options and the debugging options).
fn usage() {
    print!(
        "usage: valgrind [options] prog-and-args\n\
         \n\
         \x20 tool-selection option, with default in [ ]:\n\
         \x20   --tool=<name>             use the tool named <name> [{DEFAULT_TOOL}]\n\
         \n\
         \x20 basic user options for all tools, with defaults in [ ]:\n\
         \x20   -h --help                 show this message\n\
         \x20   --version                 show version\n\
         \x20   -q --quiet                run silently; only print error messages\n\
         \x20   -v --verbose              be more verbose (repeatable)\n\
         \x20   --log-fd=<number>         log messages to file descriptor [2=stderr]\n\
         \x20   --log-file=<file>         log messages to <file>; %p is the process id,\n\
         \x20                             %q{{VAR}} the value of environment variable VAR\n\
         \x20   --smc-check=none|stack|all|all-non-file\n\
         \x20                             check for self-modifying code [all-non-file]\n\
         \x20   --stats=no|yes            show arena and translation statistics at exit [no]\n\
         \n\
         \x20 (the tool executable for this machine was not found, so the tool's own\n\
         \x20 options cannot be shown)\n"
    );
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let la = scan_args(&args);
    if la.version {
        println!("{VERSION}");
        return;
    }
    let tool = la.tool.as_deref().unwrap_or(DEFAULT_TOOL);

    let platform = match la.client {
        // Help without a program: the tool executable of this machine prints it.
        None if la.help => host_platform(),
        None => Failure {
            lines: vec!["no program specified".into(), "Use --help for more information.".into()],
            code: 1,
        }
        .exit(),
        Some(i) => {
            let path_var = std::env::var_os("PATH");
            let path = find_client(&args[i], path_var.as_deref()).unwrap_or_else(|f| f.exit());
            examine(&path, &args[i].to_string_lossy(), MAX_INTERP_DEPTH).unwrap_or_else(|f| f.exit())
        }
    };

    let self_exe = std::env::current_exe().ok();
    let dirs = tool_dirs(self_exe.as_deref(), std::env::var_os("VALGRIND_LIB").as_deref());
    let exe = match find_tool(tool, platform, &dirs) {
        Ok(exe) => exe,
        Err(_) if la.help && la.client.is_none() => {
            usage();
            return;
        }
        Err(f) => f.exit(),
    };

    let mut cmd = Command::new(&exe);
    cmd.arg0(&exe).args(&args[1..]);
    if let Some(me) = &self_exe {
        cmd.env("VALGRIND_LAUNCHER", me);
    }
    let err = cmd.exec();
    Failure::new(format!("failed to start tool '{tool}' for platform '{platform}-linux': {}", strerror(&err)), 1)
        .exit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    /// A scratch directory unique to one test.
    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vg-launcher-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn file(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, bytes).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn elf(class: u8, machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = class;
        h[5] = 1;
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h
    }

    fn msg(r: Result<&'static str, Failure>) -> (String, i32) {
        let f = r.unwrap_err();
        (f.lines.join("|"), f.code)
    }

    #[test]
    fn scans_options_up_to_the_program() {
        let la = scan_args(&os(&["valgrind", "--tool=none", "-q", "./p", "--tool=x", "--version"]));
        assert_eq!(la, LaunchArgs { tool: Some("none".into()), help: false, version: false, client: Some(3) });
        let la = scan_args(&os(&["valgrind", "-h"]));
        assert!(la.help && la.client.is_none() && la.tool.is_none());
        assert!(scan_args(&os(&["valgrind", "--version"])).version);
    }

    #[test]
    fn finds_programs_in_path() {
        let d = scratch("path");
        let sub = d.join("bin");
        fs::create_dir_all(&sub).unwrap();
        file(&d, "prog", b"x", 0o644); // not executable: skipped
        file(&sub, "prog", b"x", 0o755);
        let pv = OsString::from(format!("{}:{}", d.display(), sub.display()));
        assert_eq!(find_client(OsStr::new("prog"), Some(&pv)).unwrap(), sub.join("prog"));
        let f = find_client(OsStr::new("nope"), Some(&pv)).unwrap_err();
        assert_eq!(f, Failure::new("nope: command not found".into(), 127));
        assert_eq!(find_client(OsStr::new("./x/y"), Some(&pv)).unwrap(), PathBuf::from("./x/y"));
    }

    #[test]
    fn examines_programs() {
        let d = scratch("examine");
        let s = |p: &Path| p.display().to_string();
        let amd = file(&d, "amd", &elf(2, EM_X86_64), 0o755);
        assert_eq!(examine(&amd, "amd", 4), Ok("amd64"));
        let arm = file(&d, "arm", &elf(2, EM_AARCH64), 0o755);
        assert_eq!(examine(&arm, "arm", 4), Ok("arm64"));
        let mips = file(&d, "mips", &elf(2, EM_MIPS), 0o755);
        assert_eq!(examine(&mips, "mips", 4), Ok("mips64"));
        let mut ppc = elf(2, EM_PPC64);
        ppc[5] = 2;
        ppc[18..20].copy_from_slice(&EM_PPC64.to_be_bytes());
        let ppc = file(&d, "ppc", &ppc, 0o755);
        assert_eq!(examine(&ppc, "ppc", 4), Ok("ppc64be"));
        let riscv = file(&d, "riscv", &elf(2, 243), 0o755);
        assert_eq!(msg(examine(&riscv, "./riscv", 4)), ("./riscv: cannot execute binary file".into(), 126));
        let c32 = file(&d, "c32", &elf(1, EM_X86_64), 0o755);
        assert_eq!(
            msg(examine(&c32, "./c32", 4)),
            ("wrong ELF executable class (eg. 32-bit instead of 64-bit)|./c32: cannot execute binary file".into(), 126)
        );
        let odd = file(&d, "odd", &elf(2, 0x1234), 0o755);
        assert_eq!(msg(examine(&odd, "./odd", 4)), ("./odd: cannot execute binary file".into(), 126));
        let short = file(&d, "short", &elf(2, EM_X86_64)[..40], 0o755);
        assert_eq!(msg(examine(&short, "./short", 4)), ("./short: cannot execute binary file".into(), 126));
        let bin = file(&d, "bin", b"\xff\xfe\x01\x02abc", 0o755);
        assert_eq!(msg(examine(&bin, "./bin", 4)), ("./bin: cannot execute binary file".into(), 126));
        assert_eq!(msg(examine(&d.join("missing"), "./missing", 4)), ("./missing: No such file or directory".into(), 127));
        assert_eq!(msg(examine(&d, "./dir", 4)), ("./dir: is a directory".into(), 126));
        let noexec = file(&d, "noexec", &elf(2, EM_X86_64), 0o644);
        assert_eq!(msg(examine(&noexec, "./noexec", 4)), ("./noexec: Permission denied".into(), 126));

        // Scripts take the platform of their interpreter, through chains of them.
        let sh = file(&d, "sh.sh", format!("#!{} -x\necho\n", s(&arm)).as_bytes(), 0o755);
        assert_eq!(examine(&sh, "sh", 4), Ok("arm64"));
        let nested = file(&d, "nested", format!("#!{}\n", s(&sh)).as_bytes(), 0o755);
        assert_eq!(examine(&nested, "nested", 4), Ok("arm64"));
        assert_eq!(msg(examine(&nested, "./nested", 1)).1, 126, "too deep");
        let bad = file(&d, "bad", b"#!/nonexistent/sh\n", 0o755);
        assert_eq!(msg(examine(&bad, "./bad", 4)), ("./bad: bad interpreter: No such file or directory".into(), 126));
        // Text without `#!` runs under /bin/sh, which is an ELF of this machine.
        let text = file(&d, "text", b"echo hi\n", 0o755);
        assert_eq!(examine(&text, "./text", 4), Ok(host_platform()));
    }

    #[test]
    fn finds_tools() {
        let d = scratch("tools");
        let lib = d.join("lib");
        let bin = d.join("bin");
        let libexec = d.join("libexec/valgrind");
        for x in [&lib, &bin, &libexec] {
            fs::create_dir_all(x).unwrap();
        }
        file(&libexec, "none-amd64-linux", b"", 0o755);
        file(&lib, "memcheck-amd64-linux", b"", 0o755);
        let dirs = tool_dirs(Some(&bin.join("valgrind")), None);
        assert_eq!(dirs, [bin.clone(), bin.join("../libexec/valgrind")]);
        assert_eq!(find_tool("none", "amd64", &dirs).unwrap(), bin.join("../libexec/valgrind/none-amd64-linux"));
        let f = find_tool("memcheck", "amd64", &dirs).unwrap_err();
        assert_eq!(f.lines, ["failed to start tool 'memcheck' for platform 'amd64-linux': No such file or directory"]);
        assert_eq!(f.code, 1);
        let dirs = tool_dirs(Some(&bin.join("valgrind")), Some(lib.as_os_str()));
        assert_eq!(find_tool("memcheck", "amd64", &dirs).unwrap(), lib.join("memcheck-amd64-linux"));
        assert!(find_tool("none", "arm64", &dirs).is_err());
        assert!(find_tool("../lib/memcheck", "amd64", &dirs).is_err());
        assert!(find_tool("", "amd64", &dirs).is_err());
    }
}
