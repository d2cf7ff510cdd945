//! The launcher is linked fully statically (through linker/static-cc), so that it runs on a
//! system without a matching libc.
fn main() {
    println!("cargo:rustc-link-arg-bins=-vg-static-std");
    println!("cargo:rerun-if-changed=build.rs");
}
