//! Build-script helper for tool executables: writes the linker script that places a tool
//! executable at its fixed base address and tells cargo how to link it (no libc, no start files,
//! static, non-PIE). Used only from `build.rs` of tool crates; depends on nothing.

use std::path::{Path, PathBuf};
use std::{env, fs};

/// Base address of a normal build's tool executables.
pub const BASE_NORMAL: u64 = 0x5800_0000;
/// Base address of the "inner" build, so that it can run as a guest of a normal build without
/// colliding with the outer tool executable mapped at [`BASE_NORMAL`].
pub const BASE_INNER: u64 = 0x3800_0000;

/// The linker script template; `@BASE@` is replaced by the base address.
const SCRIPT_TEMPLATE: &str = include_str!("../link.ld.in");

/// The base address for a build whose build-script output directory is `out_dir`.
///
/// Cargo does not tell build scripts which profile is being built (`PROFILE` is only
/// "debug"/"release", and custom profiles report the profile they inherit from). The profile name
/// does appear in the output path: `target/<profile>/build/<pkg>-<hash>/out` (or
/// `target/<triple>/<profile>/build/...`), so `cargo build --profile inner` is recognised by the
/// `/inner/build/` component.
pub fn base_for_out_dir(out_dir: &Path) -> u64 {
    let s = out_dir.to_string_lossy();
    if s.contains("/inner/build/") { BASE_INNER } else { BASE_NORMAL }
}

/// The linker script text for base address `base`.
pub fn linker_script(base: u64) -> String {
    SCRIPT_TEMPLATE.replace("@BASE@", &format!("{base:#x}"))
}

/// Call from a tool crate's `build.rs`: writes `link.ld` into `OUT_DIR` and passes the linker
/// arguments for the crate's binaries (only binaries: build scripts, tests and the std launcher
/// are linked normally).
pub fn link_tool_executables() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set for build scripts"));
    let base = base_for_out_dir(&out);
    let path = out.join("link.ld");
    fs::write(&path, linker_script(base)).expect("write linker script");
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--build-id=none",
        "-Wl,-z,norelro",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rustc-link-arg-bins=-T{}", path.display());
    println!("cargo:rerun-if-changed=build.rs");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_follows_profile_directory() {
        assert_eq!(base_for_out_dir(Path::new("/w/target/release/build/x-1/out")), BASE_NORMAL);
        assert_eq!(base_for_out_dir(Path::new("/w/target/debug/build/x-1/out")), BASE_NORMAL);
        assert_eq!(base_for_out_dir(Path::new("/w/target/inner/build/x-1/out")), BASE_INNER);
        assert_eq!(
            base_for_out_dir(Path::new("/w/target/x86_64-unknown-linux-gnu/inner/build/x-1/out")),
            BASE_INNER
        );
        // A directory merely named like the profile elsewhere in the path does not count.
        assert_eq!(base_for_out_dir(Path::new("/inner/target/release/build/x-1/out")), BASE_NORMAL);
    }

    #[test]
    fn script_has_base_and_explicit_phdrs() {
        let s = linker_script(BASE_INNER);
        assert!(s.contains(". = 0x38000000 + SIZEOF_HEADERS;"));
        assert!(!s.contains("@BASE@"));
        assert!(s.contains("PHDRS"));
    }
}
