//! Memcheck, the default tool, on real programs of the machine and on small reproducers of the
//! false positives they once showed: each must report no error (as Valgrind does here with its
//! default suppressions) and behave exactly as it does natively.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use vg_tests::guests::{Outcome, build_dynamic, first_difference, run_command, run_native, run_tool, target_dir};

/// The path of `name` on PATH, or `None` (with a notice) if it is not installed.
fn installed(name: &str) -> Option<PathBuf> {
    let out = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().expect("sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if path.is_empty() {
        eprintln!("NOTICE: {name} is not installed; its memcheck test is skipped");
        return None;
    }
    Some(PathBuf::from(path))
}

/// The python3 interpreter itself (`python3` on PATH may be a pyenv shell-script shim that
/// execs it; without --trace-children the tool would then check only the shell).
fn real_python() -> Option<PathBuf> {
    installed("python3")?;
    let out = Command::new("python3")
        .args(["-c", "import os, sys; print(os.path.realpath(sys.executable))"])
        .output()
        .expect("python3");
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = target_dir().join("memcheck-real").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The final "ERROR SUMMARY: ..." line, without its `==pid== ` prefix.
fn error_summary(o: &Outcome) -> String {
    let err = o.stderr_str();
    let line = err.lines().rev().find(|l| l.contains("ERROR SUMMARY:")).unwrap_or_default();
    line.split_once("== ").map_or(line, |(_, rest)| rest).to_string()
}

/// Runs `exe args` natively and under memcheck (chosen by default: no `--tool`) with
/// `tool_args`; both must print the same and exit alike, and memcheck must find no error.
fn clean_under_memcheck(exe: &Path, args: &[&str], tool_args: &[&str]) {
    let native = run_native(exe, args, b"");
    let tool = run_tool(tool_args, exe, args, b"");
    let what = format!("{} {args:?}", exe.display());
    let err = tool.stderr_str();
    assert!(err.contains("Memcheck, a memory error detector"), "{what}: not memcheck:\n{err}");
    assert_eq!(
        error_summary(&tool),
        "ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 0 from 0)",
        "{what}: memcheck found errors:\n{err}"
    );
    assert!(
        native.stdout == tool.stdout,
        "{what}: stdout differs from the native run: {}\nstderr:\n{err}",
        first_difference(&native.stdout, &tool.stdout)
    );
    assert_eq!(native.shell_status(), tool.shell_status(), "{what}: exit status\nstderr:\n{err}");
}

#[test]
fn ls_la_usr_lib_is_clean() {
    // ls looks up owners and groups: glibc first tries nscd, connecting with a sockaddr_un whose
    // path is a short string in a 110-byte struct.
    let Some(ls) = installed("ls") else { return };
    clean_under_memcheck(&ls, &["-la", "/usr/lib"], &[]);
}

#[test]
fn python3_json_re_and_threads_are_clean() {
    // Lazily bound calls into libm (log, ldexp) pass through the dynamic linker's trampoline,
    // which saves and restores the SSE and AVX state with xsavec/xrstor.
    let Some(python) = real_python() else { return };
    let script = "import json, re, threading\n\
                  data = {'name': 'memcheck', 'values': [1, 2.5, 1e10], 'nested': {'ok': True}}\n\
                  text = json.dumps(data, sort_keys=True)\n\
                  results = []\n\
                  def work(i):\n    \
                      words = re.findall(r'[a-z]+', text)\n    \
                      back = json.loads(text)\n    \
                      results.append((i, len(words), back['values'][2] > 1e9))\n\
                  threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]\n\
                  for t in threads: t.start()\n\
                  for t in threads: t.join()\n\
                  print(text)\n\
                  print(sorted(results))\n\
                  print(re.sub(r'(\\d+)', lambda m: str(int(m.group(1)) * 2), 'a1 b22 c333'))\n";
    clean_under_memcheck(&python, &["-c", script], &[]);
}

#[test]
fn perl_hashes_regexes_sprintf_and_sort_are_clean() {
    // perl's start-up seeds its hash function through ldexp, its first call into libm.
    let Some(perl) = installed("perl") else { return };
    let script = r#"my %h; $h{"key$_"} = $_ * 3 for 1..300;
my @k = sort { $h{$b} <=> $h{$a} or $a cmp $b } keys %h;
my $s = join ",", map { sprintf("%s=%05.1f", $_, $h{$_} / 7) } @k[0..9];
(my $t = $s) =~ s/key(\d+)/K<$1>/g;
print "$t\n";
print scalar(grep { /7/ } @k), " ", length($s), "\n";
my %count; $count{length $_}++ for @k;
printf "%d:%d\n", $_, $count{$_} for sort { $a <=> $b } keys %count;
"#;
    clean_under_memcheck(&perl, &["-e", script], &[]);
}

#[test]
fn sort_of_a_multi_line_file_is_clean() {
    let Some(sort) = installed("sort") else { return };
    let dir = scratch_dir("sort");
    let file = dir.join("lines.txt");
    let mut text = String::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..2000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        text.push_str(&format!("{:x} {} line {i}\n", x >> 40, x % 1000));
    }
    fs::write(&file, text).unwrap();
    clean_under_memcheck(&sort, &[file.to_str().unwrap()], &[]);
    clean_under_memcheck(&sort, &["-n", "-k2", file.to_str().unwrap()], &[]);
}

#[test]
fn gcc_compiling_a_small_file_is_clean() {
    let Some(gcc) = installed("gcc") else { return };
    let dir = scratch_dir("gcc");
    let src = dir.join("small.c");
    fs::write(
        &src,
        "#include <stdio.h>\nstatic int sq(int x) { return x * x; }\n\
         int main(void) { for (int i = 0; i < 3; i++) printf(\"%d\\n\", sq(i)); return 0; }\n",
    )
    .unwrap();
    let (native_o, tool_o) = (dir.join("native.o"), dir.join("tool.o"));
    let src = src.to_str().unwrap();
    // Only the driver runs under the tool (cc1 and as are children, not traced).
    let native = run_native(&gcc, &["-c", src, "-o", native_o.to_str().unwrap()], b"");
    assert_eq!(native.shell_status(), 0, "{}", native.stderr_str());
    clean_under_memcheck(&gcc, &["-c", src, "-o", tool_o.to_str().unwrap()], &[]);
    assert!(fs::read(&native_o).unwrap() == fs::read(&tool_o).unwrap(), "object files differ");
}

/// `--leak-check=full` leaves the programs' behaviour alone, and counts the leaks it reports as
/// errors exactly as Valgrind does (definite and possible ones, one context each).
#[test]
fn full_leak_check_counts_errors_as_valgrind_does() {
    let reference = Path::new("/usr/bin/valgrind");
    let dir = scratch_dir("leaks");
    let lines = dir.join("lines.txt");
    fs::write(&lines, "pear\napple\nfig\nbanana\ncherry\napple\n").unwrap();
    let src = dir.join("small.c");
    fs::write(&src, "int f(int x) { return x * 3; }\n").unwrap();
    let obj = dir.join("small.o");
    let runs: [(&str, Vec<&str>); 4] = [
        ("ls", vec!["-la", "/usr/lib"]),
        ("sort", vec![lines.to_str().unwrap()]),
        ("gcc", vec!["-c", src.to_str().unwrap(), "-o", obj.to_str().unwrap()]),
        ("perl", vec!["-e", "my %h = map { $_ => 1 } 1..50; print scalar(keys %h), \"\\n\""]),
    ];
    for (name, args) in runs {
        let Some(exe) = installed(name) else { continue };
        let native = run_native(&exe, &args, b"");
        let ours = run_tool(&["--leak-check=full"], &exe, &args, b"");
        let err = ours.stderr_str();
        assert!(err.contains("LEAK SUMMARY:") || err.contains("All heap blocks were freed"), "{name}: no leak report:\n{err}");
        assert!(native.stdout == ours.stdout, "{name}: stdout: {}", first_difference(&native.stdout, &ours.stdout));
        assert_eq!(native.shell_status(), ours.shell_status(), "{name}: exit status\n{err}");
        if name == "ls" {
            assert_eq!(error_summary(&ours), "ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 0 from 0)", "{err}");
        }
        if reference.exists() {
            let mut cmd = Command::new(reference);
            cmd.arg("--leak-check=full").arg(&exe).args(&args);
            let theirs = run_command(cmd, b"");
            assert_eq!(error_summary(&ours), error_summary(&theirs), "{name}: ours:\n{err}\nValgrind's:\n{}", theirs.stderr_str());
        }
    }
}

/// Runs dynamically linked guest `name` under memcheck with `args`: the headlines of its
/// reports and its error summary.
fn guest_reports(name: &str, args: &[&str]) -> (Vec<String>, String) {
    let prog = build_dynamic(name);
    let o = run_tool(&["--tool=memcheck"], &prog, args, b"");
    let err = o.stderr_str();
    let heads = err
        .lines()
        .filter_map(|l| l.split_once("== ").map(|(_, rest)| rest))
        .filter(|l| l.starts_with("Syscall param") || l.starts_with("Conditional") || l.starts_with("Use of"))
        .map(str::to_string)
        .collect();
    (heads, error_summary(&o))
}

#[test]
fn socket_addresses_are_checked_field_by_field() {
    let (heads, summary) = guest_reports("mc_fp_sockaddr", &[]);
    assert!(heads.is_empty(), "{heads:#?}");
    assert_eq!(summary, "ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 0 from 0)");
    // The fields the kernel reads, named as Valgrind names them.
    let (heads, _) = guest_reports("mc_fp_sockaddr", &["bad"]);
    let uninit = |p: &str| format!("Syscall param socketcall.{p} points to uninitialised byte(s)");
    assert_eq!(
        heads,
        [uninit("connect(serv_addr.sun_path)"), uninit("bind(my_addr.sun_path)"), uninit("sendto(to.sun_path)"), uninit("connect(serv_addr.sin_addr)")]
    );
}

#[test]
fn saving_and_restoring_the_sse_state_keeps_each_register_definedness() {
    let (heads, summary) = guest_reports("mc_fp_xsave", &[]);
    assert!(heads.is_empty(), "{heads:#?}");
    assert_eq!(summary, "ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 0 from 0)");
    // An undefined register stays undefined through both xsave/xrstor and fxsave/fxrstor.
    let (heads, summary) = guest_reports("mc_fp_xsave", &["bad"]);
    assert_eq!(heads, ["Conditional jump or move depends on uninitialised value(s)"]);
    assert_eq!(summary, "ERROR SUMMARY: 2 errors from 1 contexts (suppressed: 0 from 0)");
}
