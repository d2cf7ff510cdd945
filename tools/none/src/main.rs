//! Nulgrind (`--tool=none`): the tool that adds no instrumentation. The guest runs through the
//! whole translation pipeline unchanged, which makes it the baseline for speed and the check
//! that the pipeline preserves behaviour. This file is also the tool executable
//! `none-amd64-linux`: `tool_main!` gives it its entry point and runtime.

#![no_std]
#![no_main]

use vg_core::tool::{StateLayout, Tool, vg_ir::Superblock};

/// The tool: no state, no options.
#[derive(Default)]
pub struct NoneTool;

impl Tool for NoneTool {
    const NAME: &'static str = "none";
    const BANNER: &'static str = "Nulgrind, the minimal Valgrind tool";
    const COPYRIGHT: &'static str = "Copyright (C) the valgrind-rs authors; GNU GPL'd.";

    fn instrument(&mut self, sb: Superblock, _layout: &StateLayout) -> Superblock {
        sb
    }
}

vg_core::tool_main!(
    NoneTool::default(),
    Guest = vg_amd64_guest::Amd64,
    Host = vg_amd64_host::Amd64Host,
    Os = vg_linux::Linux,
);
