//! The core of the instrumentation framework: a `no_std`, libc-free library that every tool
//! executable links. It owns the process (start-up, raw system calls, its own allocator arenas,
//! logging, options), the client's address space and image, and the translation machinery
//! (translation table, scheduler), and defines the traits that architectures, the OS layer and
//! tools implement.
//!
//! Modules, by job (Valgrind's `m_<job>` split):
//! - [`arch`]: guest/host/OS traits; [`tool`]: the tool-facing API.
//! - [`regalloc`]: linear-scan register allocation; [`codebuf`]: the code buffer dynasm emits into.
//! - [`rt`]: process entry, `mem*` symbols, panic handler, the `tool_main!` macro.
//! - [`syscall`]: raw Linux system calls; [`arena`]: allocator arenas and their statistics.
//! - [`log`]: `==PID==` messages and log destinations; [`options`]: the core's command line.
//! - [`aspace`]: the address-space manager; [`loader`]: ELF loading and the initial stack.
//! - [`transtab`]: translation table and fast cache; [`translate`]: the pipeline driver;
//!   [`scheduler`]: runs the guest; [`signals`]: the core's host signal handlers;
//!   [`smc`]: self-modifying-code checks (`--smc-check`).
//! - [`debuginfo`]: symbols, lines, CFI; [`errors`]: the error manager, suppressions, XML;
//!   [`redir`]: redirection and function wrapping; [`stacks`]: the run's debug info and stack
//!   traces; [`clientreq`]: client requests; [`reportopts`]: their options.
//! - [`startup`]: `main` of a tool executable, wiring the above together.

#![no_std]

extern crate alloc;

pub mod arch;
pub mod tool;
pub mod arena;
pub mod aspace;
pub mod clientreq;
pub mod codebuf;
pub mod debuginfo;
pub mod errors;
pub mod loader;
pub mod log;
pub mod options;
pub mod redir;
pub mod regalloc;
pub mod reportopts;
pub mod rt;
pub mod scheduler;
pub mod signals;
pub mod smc;
pub mod stacks;
pub mod startup;
pub mod syscall;
pub mod threads;
pub mod translate;
pub mod transtab;
