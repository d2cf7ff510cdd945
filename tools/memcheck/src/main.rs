//! The tool executable `memcheck-amd64-linux`: memcheck ([`vg_tool_memcheck::Memcheck`]) on
//! the amd64 guest and host under Linux. `tool_main!` gives it its entry point and runtime.

#![no_std]
#![no_main]

vg_core::tool_main!(
    vg_tool_memcheck::Memcheck::default(),
    Guest = vg_amd64_guest::Amd64,
    Host = vg_amd64_host::Amd64Host,
    Os = vg_linux::Linux,
);
