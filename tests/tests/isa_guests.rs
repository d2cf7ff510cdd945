//! The ISA extensions end to end: a guest built with `-O2 -mavx2 -mfma` (vectorised loops,
//! AVX2/FMA intrinsics, glibc's AVX2 string functions) gives the same stdout natively and
//! under `valgrind --tool=none`, dynamically and statically linked; and glibc, asked through
//! ld.so's diagnostics under the tool, sees AVX2 and FMA as usable and picks its AVX2 code.

use std::path::PathBuf;
use std::process::Command;
use vg_tests::guests::{first_difference, guest_source, run_native, run_tool, target_dir};

/// Builds `tests/guest/<name>.c` with `flags` into `<target>/guests/isa/<out>`.
fn build_with(name: &str, out: &str, flags: &[&str]) -> PathBuf {
    let src = guest_source(name);
    let dir = target_dir().join("guests").join("isa");
    std::fs::create_dir_all(&dir).expect("create the guest directory");
    let exe = dir.join(out);
    let tmp = dir.join(format!(".{out}.{}.tmp", std::process::id()));
    let r = Command::new("gcc")
        .args(flags)
        .args(["-g", "-Wall", "-Wextra", "-o"])
        .arg(&tmp)
        .arg(&src)
        .output()
        .expect("run gcc");
    assert!(r.status.success(), "gcc {flags:?} {}:\n{}", src.display(), String::from_utf8_lossy(&r.stderr));
    std::fs::rename(&tmp, &exe).expect("move the guest into place");
    exe
}

/// Whether this host runs AVX2 and FMA code natively (the comparison needs it).
fn host_has_avx2_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

#[test]
fn avx2_fma_guest_matches_native() {
    if !host_has_avx2_fma() {
        eprintln!("skipped: the host has no AVX2/FMA");
        return;
    }
    for (out, flags) in [
        ("avx2_fma-dyn", &["-O2", "-mavx2", "-mfma"][..]),
        ("avx2_fma-static", &["-O2", "-mavx2", "-mfma", "-static"][..]),
    ] {
        let exe = build_with("avx2_fma", out, flags);
        let native = run_native(&exe, &[], b"");
        assert_eq!(native.shell_status(), 0, "{out} natively: {}", native.stderr_str());
        // The program computes a fused result the unfused expression cannot give.
        assert!(native.stdout_str().contains("fused 0x1.00000002p-29\n"), "{out}: {}", native.stdout_str());
        let tool = run_tool(&["--tool=none"], &exe, &[], b"");
        assert!(
            tool.stdout == native.stdout,
            "{out}: stdout differs: {}\ntool stderr:\n{}",
            first_difference(&native.stdout, &tool.stdout),
            tool.stderr_str()
        );
        assert_eq!(tool.shell_status(), 0, "{out}: tool stderr:\n{}", tool.stderr_str());
        assert!(!tool.stderr_str().contains("unhandled instruction"), "{out}: {}", tool.stderr_str());
    }
}

#[test]
fn glibc_sees_avx2_and_fma_under_the_tool() {
    let ld = PathBuf::from("/lib64/ld-linux-x86-64.so.2");
    if !ld.exists() {
        eprintln!("skipped: no {}", ld.display());
        return;
    }
    let t = run_tool(&["--tool=none", "-q"], &ld, &["--list-diagnostics"], b"");
    assert_eq!(t.shell_status(), 0, "stderr:\n{}", t.stderr_str());
    let out = t.stdout_str();
    let value = |key: &str| -> u64 {
        let line = out.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key} in:\n{out}"));
        let v = line.rsplit('=').next().unwrap();
        u64::from_str_radix(v.trim_start_matches("0x"), 16).expect("hex value")
    };
    // Leaf 1 ecx (fma 12, osxsave 27, avx 28) and leaf 7 ebx (bmi1 3, avx2 5, bmi2 8), as
    // glibc found them usable.
    let l1 = value("x86.cpu_features.features[0x0].active[0x2]=");
    assert_eq!(l1 & (1 << 12 | 1 << 28), 1 << 12 | 1 << 28, "fma/avx not usable: {l1:#x}");
    let l7 = value("x86.cpu_features.features[0x1].active[0x1]=");
    assert_eq!(l7 & (1 << 3 | 1 << 5 | 1 << 8), 1 << 3 | 1 << 5 | 1 << 8, "avx2/bmi not usable: {l7:#x}");
    // The preference that makes the string functions' ifuncs choose their AVX2 versions.
    assert_eq!(value("x86.cpu_features.preferred.AVX_Fast_Unaligned_Load="), 1);
    // The xsave area ld.so's lazy-binding trampoline saves holds the AVX state.
    assert_eq!(value("x86.cpu_features.xsave_state_size="), 0x380);
}
