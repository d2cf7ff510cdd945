//! Links `memcheck-amd64-linux` as a static, libc-free executable at the tool base address.
fn main() {
    vg_link::link_tool_executables();
}
