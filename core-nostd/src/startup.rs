//! `main` of a tool executable (Valgrind's `m_main`): parse the options, set up the log, load
//! the client, print the banner, run the guest, let the tool finish, print `--stats=yes`
//! figures, and leave with the guest's exit status (or die by the guest's fatal signal).
//!
//! Uses: `rt`, `options`, `log`, `arena`, `loader`, `scheduler`, `transtab`, `syscall`.

use crate::arch::{GuestArch, HostArch, Os};
use crate::options::{Action, LogTarget};
use crate::rt::StartInfo;
use crate::scheduler::GuestExit;
use crate::tool::Tool;
use crate::{arena, loader, log, options, scheduler, syscall, transtab};

/// Run the tool executable. `si` is what the kernel put on the initial stack.
pub fn main<G: GuestArch, H: HostArch, O: Os, T: Tool>(mut tool: T, si: &StartInfo) -> ! {
    let args = si.args();
    let env = si.env();
    let opt_args = args.get(1..).unwrap_or(&[]);
    let (opts, client) = match options::parse(opt_args, &mut tool, log::pid(), &env) {
        Ok(Action::Run { opts, client }) => (opts, client),
        Ok(Action::Help) => {
            let _ = syscall::write_all(1, options::usage(&tool).as_bytes());
            syscall::exit_group(0)
        }
        Ok(Action::Version) => {
            let _ = syscall::write_all(1, alloc::format!("{}\n", log::VERSION).as_bytes());
            syscall::exit_group(0)
        }
        Err(e) => {
            e.report();
            syscall::exit_group(1)
        }
    };

    log::set_verbosity(opts.verbosity);
    match &opts.log {
        LogTarget::Fd(fd) => {
            if !log::use_fd(*fd) {
                crate::umsg!("warning: cannot use --log-fd={fd}, logging to stderr instead");
            }
        }
        LogTarget::File(name) => {
            if let Err(e) = log::use_file(name) {
                log::error_line(format_args!("Cannot create log file '{name}': {}", syscall::strerror(e)));
                syscall::exit_group(1)
            }
        }
    }
    tool.post_options();
    let tool_name = T::BANNER.split(',').next().unwrap_or(T::NAME);
    if let Err((opt, why)) = crate::reportopts::check(tool_name, T::XML_OUTPUT) {
        crate::umsg!("Bad option: {opt}");
        for line in why {
            crate::umsg!("{line}");
        }
        crate::umsg!("Use --help for more information or consult the user manual.");
        syscall::exit_group(1)
    }
    crate::stacks::init::<G>();

    let client_args = &opt_args[client..];
    let Some(&exe) = client_args.first() else {
        log::error_line(format_args!("no program specified"));
        log::error_line(format_args!("Use --help for more information."));
        syscall::exit_group(1)
    };
    let img = match loader::load_client::<G>(exe, client_args, &env, si.auxv) {
        Ok(img) => img,
        Err(e) => {
            log::error_line(format_args!("{e}"));
            syscall::exit_group(e.exit_code())
        }
    };

    log::print_banner(T::BANNER, T::COPYRIGHT, client_args);
    if T::RUN_FREERES {
        crate::scheduler::freeres::tool_needs_freeres();
    }
    if opts.verbosity > 1 {
        crate::dmsg!("Options:");
        for o in &opts.given {
            crate::dmsg!("   {o}");
        }
        crate::dmsg!("Guest {}, host {}, OS {}", G::NAME, H::NAME, O::NAME);
    }
    if opts.debug_level >= 2 {
        print_address_space("after loading the client");
    }

    let exit = scheduler::run::<G, H, O, T>(&mut tool, &opts, &img);

    if log::verbosity() > 0 {
        crate::umsg!();
    }
    tool.fini(match exit {
        GuestExit::Exit(code) => code,
        GuestExit::Signal(sig) => 128 + sig,
    });
    if opts.stats {
        arena::print_stats();
        transtab::print_stats();
    }
    match exit {
        GuestExit::Exit(code) => syscall::exit_group(code),
        GuestExit::Signal(sig) => crate::rt::die_by_signal(sig),
    }
}

/// `-d -d`: the address-space manager's segment list, as debug lines.
fn print_address_space(when: &str) {
    let mut text = alloc::string::String::new();
    let _ = crate::aspace::aspace().print(&mut text);
    crate::dmsg!("Address space {when}:");
    for line in text.lines() {
        crate::dmsg!("{line}");
    }
}
