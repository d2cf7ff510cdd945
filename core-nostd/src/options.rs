//! The core's command line (Valgrind's `m_options` + `m_commandline`): Valgrind's option syntax
//! (`-q`, `-v`, `--name=value`), the core options, and hand-over of everything else to the tool.
//! Options end at the first argument that does not start with `-` (the client program).
//!
//! Depends on [`crate::tool`] and [`crate::log`] (log-file name expansion, error lines).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::tool::{OptionResult, Tool};

/// `--smc-check=`: where to look for self-modifying code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmcCheck {
    None,
    /// Only code on the stack.
    Stack,
    All,
    /// All code except code from file-backed mappings (the default).
    AllNonFile,
}

/// Where the log goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// `--log-fd=N` (default 2); negative means nowhere.
    Fd(i32),
    /// `--log-file=`, already expanded (`%p`, `%q{VAR}`).
    File(String),
}

/// The core options of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreOptions {
    /// 1 by default, 0 with `-q`, one more per `-v`.
    pub verbosity: i32,
    /// Number of `-d` (debug logging of the core itself).
    pub debug_level: u32,
    pub log: LogTarget,
    /// `--trace-flags=XXXXXXXX`: the first digit is bit 7 (show the IR as lifted), the last
    /// bit 0 (show the final host code).
    pub trace_flags: u32,
    /// `--trace-notbelow=N`: trace only superblocks numbered N or above.
    pub trace_notbelow: u64,
    /// `--vex-guest-max-insns=N` (1..=100); the tool's `Tool::MAX_INSNS` by default.
    pub max_insns: usize,
    pub smc_check: SmcCheck,
    /// `--stats=yes`: print arena and translation figures at exit.
    pub stats: bool,
    /// `--fair-sched=yes`: threads take the big lock in arrival order (a ticket lock).
    pub fair_sched: bool,
    /// `--trace-children=yes`: run exec'd programs under the tool too.
    pub trace_children: bool,
    /// `--trace-children-skip=patt1,patt2`: exec'd programs matching one of these (`*` and `?`
    /// wildcards) run natively even with `--trace-children=yes`.
    pub trace_children_skip: Vec<String>,
    /// `--child-silent-after-fork=yes`: a forked child prints nothing.
    pub child_silent_after_fork: bool,
    /// `--track-fds=yes`: list the open file descriptors at exit.
    pub track_fds: bool,
    /// `--run-libc-freeres=no|yes`, `--run-cxx-freeres=no|yes`: call glibc's
    /// `__libc_freeres()` / libstdc++'s `__gnu_cxx::__freeres()` in the guest when it exits
    /// (for a tool that asks for it), so that what they keep until exit is not reported.
    pub run_libc_freeres: bool,
    pub run_cxx_freeres: bool,
    /// The options exactly as given, for `-v`'s listing and for `--trace-children=yes`.
    pub given: Vec<String>,
}

impl Default for CoreOptions {
    fn default() -> Self {
        CoreOptions {
            verbosity: 1,
            debug_level: 0,
            log: LogTarget::Fd(2),
            trace_flags: 0,
            trace_notbelow: 999_999_999,
            max_insns: 50,
            smc_check: SmcCheck::AllNonFile,
            stats: false,
            fair_sched: false,
            trace_children: false,
            trace_children_skip: Vec::new(),
            child_silent_after_fork: false,
            track_fds: false,
            run_libc_freeres: true,
            run_cxx_freeres: true,
            given: Vec::new(),
        }
    }
}

static CURRENT: spin::Once<CoreOptions> = spin::Once::new();

/// Record the options of this run (once, when the guest starts) for the parts of the core that
/// need them later (exec with `--trace-children`, fork).
pub fn set_current(o: &CoreOptions) {
    CURRENT.call_once(|| o.clone());
}

/// The options of this run (the defaults before [`set_current`]).
pub fn current() -> &'static CoreOptions {
    static DEFAULT: spin::Once<CoreOptions> = spin::Once::new();
    CURRENT.get().unwrap_or_else(|| DEFAULT.call_once(CoreOptions::default))
}

/// Whether `name` matches the wildcard pattern `pat` (`*` any run, `?` one character).
pub fn wildcard_match(pat: &str, name: &str) -> bool {
    fn m(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => m(&p[1..], n) || (!n.is_empty() && m(p, &n[1..])),
            (Some(b'?'), Some(_)) => m(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => m(&p[1..], &n[1..]),
            _ => false,
        }
    }
    m(pat.as_bytes(), name.as_bytes())
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Run the client: `args[client..]` is the program and its arguments (`client ==
    /// args.len()` when no program was given).
    Run { opts: CoreOptions, client: usize },
    /// `-h`/`--help`.
    Help,
    /// `--version`.
    Version,
}

/// A command-line error; [`OptError::report`] prints it the way Valgrind does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OptError {
    /// Neither the core nor the tool knows the option.
    Unknown(String),
    /// A known option with a bad value, and why.
    Bad { opt: String, why: String },
}

impl OptError {
    /// Print the error on stderr (`valgrind: ...` lines). The caller exits with status 1.
    pub fn report(&self) {
        match self {
            OptError::Unknown(opt) => crate::log::error_line(format_args!("Unknown option: {opt}")),
            OptError::Bad { opt, why } => {
                crate::log::error_line(format_args!("Bad option: {opt}"));
                crate::log::error_line(format_args!("{why}"));
            }
        }
        crate::log::error_line(format_args!("Use --help for more information or consult the user manual."));
    }
}

fn bad(opt: &str, why: impl Into<String>) -> OptError {
    OptError::Bad { opt: opt.to_string(), why: why.into() }
}

fn parse_int(opt: &str, v: &str) -> Result<i64, OptError> {
    v.parse::<i64>().map_err(|_| bad(opt, alloc::format!("Invalid integer value '{v}'")))
}

fn parse_bool(opt: &str, v: &str) -> Result<bool, OptError> {
    match v {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(bad(opt, alloc::format!("Invalid boolean value '{v}' (should be 'yes' or 'no')"))),
    }
}

fn parse_trace_flags(opt: &str, v: &str) -> Result<u32, OptError> {
    if v.len() != 8 {
        return Err(bad(opt, "--trace-flags argument must have 8 digits"));
    }
    v.bytes().try_fold(0u32, |acc, b| match b {
        b'0' | b'1' => Ok(acc << 1 | (b - b'0') as u32),
        _ => Err(bad(opt, "--trace-flags argument can only contain 0s and 1s")),
    })
}

/// Parse the arguments after argv[0]. `pid` and `envp` expand `--log-file=`; options the core
/// does not know are offered to `tool`.
pub fn parse<T: Tool>(args: &[&str], tool: &mut T, pid: i32, envp: &[&str]) -> Result<Action, OptError> {
    let mut o = CoreOptions { max_insns: T::MAX_INSNS, ..CoreOptions::default() };
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        let arg = args[i];
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg, None),
        };
        match (name, value) {
            ("-h" | "--help", None) => return Ok(Action::Help),
            ("--version", None) => return Ok(Action::Version),
            ("-q" | "--quiet", None) => o.verbosity -= 1,
            ("-v" | "--verbose", None) => o.verbosity += 1,
            ("-d", None) => o.debug_level += 1,
            // The launcher has already chosen the tool executable by this option.
            ("--tool", Some(_)) => {}
            ("--log-fd", Some(v)) => {
                let fd = parse_int(arg, v)?;
                o.log = LogTarget::Fd(i32::try_from(fd).unwrap_or(-1));
            }
            ("--log-file", Some(v)) => {
                let name = crate::log::expand_log_file_name(v, pid, |var| crate::log::getenv(envp, var))
                    .map_err(|why| bad(arg, why))?;
                o.log = LogTarget::File(name);
            }
            ("--trace-flags", Some(v)) => o.trace_flags = parse_trace_flags(arg, v)?,
            // A negative bound traces everything, like 0.
            ("--trace-notbelow", Some(v)) => o.trace_notbelow = parse_int(arg, v)?.max(0) as u64,
            ("--vex-guest-max-insns", Some(v)) => {
                let n = parse_int(arg, v)?;
                if !(1..=100).contains(&n) {
                    return Err(bad(arg, "'--vex-guest-max-insns' argument must be between 1 and 100"));
                }
                o.max_insns = n as usize;
            }
            ("--smc-check", Some(v)) => {
                o.smc_check = match v {
                    "none" => SmcCheck::None,
                    "stack" => SmcCheck::Stack,
                    "all" => SmcCheck::All,
                    "all-non-file" => SmcCheck::AllNonFile,
                    // Valgrind reports a bad enumeration value as an unknown option.
                    _ => return Err(OptError::Unknown(arg.to_string())),
                }
            }
            ("--stats", Some(v)) => o.stats = parse_bool(arg, v)?,
            ("--fair-sched", Some(v)) => {
                o.fair_sched = match v {
                    "yes" | "try" => true,
                    "no" => false,
                    _ => return Err(OptError::Unknown(arg.to_string())),
                }
            }
            ("--trace-children", Some(v)) => o.trace_children = parse_bool(arg, v)?,
            ("--trace-children-skip", Some(v)) => {
                o.trace_children_skip = v.split(',').filter(|p| !p.is_empty()).map(String::from).collect()
            }
            ("--child-silent-after-fork", Some(v)) => o.child_silent_after_fork = parse_bool(arg, v)?,
            ("--track-fds", Some(v)) => o.track_fds = parse_bool(arg, v)?,
            ("--run-libc-freeres", Some(v)) => o.run_libc_freeres = parse_bool(arg, v)?,
            ("--run-cxx-freeres", Some(v)) => o.run_cxx_freeres = parse_bool(arg, v)?,
            _ if let Some(r) = crate::reportopts::parse(arg) => r.map_err(|why| bad(arg, why))?,
            _ => match tool.process_option(arg) {
                OptionResult::Taken => {}
                OptionResult::Unknown => return Err(OptError::Unknown(arg.to_string())),
                OptionResult::Bad(why) => return Err(bad(arg, why)),
            },
        }
        o.given.push(arg.to_string());
        i += 1;
    }
    Ok(Action::Run { opts: o, client: i })
}

/// The `--help` text: the core options, then the tool's.
pub fn usage<T: Tool>(tool: &T) -> String {
    let mut s = String::from(
        "usage: valgrind [options] prog-and-args\n\
         \n\
         \x20 tool-selection option, with default in [ ]:\n\
         \x20   --tool=<name>             use the tool named <name> [memcheck]\n\
         \n\
         \x20 basic user options for all tools, with defaults in [ ]:\n\
         \x20   -h --help                 show this message\n\
         \x20   --version                 show version\n\
         \x20   -q --quiet                run silently; only print error messages\n\
         \x20   -v --verbose              be more verbose (repeatable)\n\
         \x20   -d                        debug logging of the core itself (repeatable)\n\
         \x20   --log-fd=<number>         log messages to file descriptor [2=stderr]\n\
         \x20   --log-file=<file>         log messages to <file>; %p is the process id,\n\
         \x20                             %q{VAR} the value of environment variable VAR\n\
         \x20   --smc-check=none|stack|all|all-non-file\n\
         \x20                             check for self-modifying code: none, only on the\n\
         \x20                             stack, all code, all code but file-backed [all-non-file]\n\
         \x20   --stats=no|yes            show arena and translation statistics at exit [no]\n\
         \x20   --trace-children=no|yes   Valgrind-ise child processes (follow execve)? [no]\n\
         \x20   --trace-children-skip=patt1,patt2,...    specifies a list of executables\n\
         \x20                             that --trace-children=yes should not trace into\n\
         \x20   --child-silent-after-fork=no|yes  omit child output between fork & exec? [no]\n\
         \x20   --track-fds=no|yes        track open file descriptors? [no]\n\
         \x20   --fair-sched=no|yes|try   schedule threads fairly (a ticket lock) [no]\n\
         \x20   --run-libc-freeres=no|yes call glibc's __libc_freeres() at exit [yes]\n\
         \x20   --run-cxx-freeres=no|yes  call libstdc++'s __gnu_cxx::__freeres() at exit [yes]\n\
         \n\
         \x20 debugging options:\n\
         \x20   --trace-flags=<XXXXXXXX>  show generated code of translated blocks (X = 0|1):\n\
         \x20                             10000000 IR as lifted, 01000000 after first\n\
         \x20                             optimisation, 00100000 after instrumentation,\n\
         \x20                             00010000 after second optimisation, 00000100\n\
         \x20                             selected instructions, 00000010 after register\n\
         \x20                             allocation, 00000001 final host code [00000000]\n\
         \x20   --trace-notbelow=<number> trace only blocks numbered <number> or above [999999999]\n\
         \x20   --vex-guest-max-insns=<1..100>  guest instructions per superblock [50]\n\
         \n",
    );
    s.push_str(crate::reportopts::USAGE);
    let _ = write!(s, "  user options for {}:\n{}\n", T::NAME, tool.usage());
    let _ = write!(s, "  {}\n  This is {}, an independent Rust implementation of the Valgrind framework.\n", T::COPYRIGHT, crate::log::NAME_VERSION);
    s
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::tool::StateLayout;
    use vg_ir::Superblock;

    /// A tool with one option, `--check=yes|no`, and a counter of what it was offered.
    #[derive(Default)]
    struct TestTool {
        check: bool,
        offered: usize,
    }

    impl Tool for TestTool {
        const NAME: &'static str = "testtool";
        const BANNER: &'static str = "Testgrind";
        const COPYRIGHT: &'static str = "Copyright nobody";
        fn process_option(&mut self, arg: &str) -> OptionResult {
            self.offered += 1;
            match arg {
                "--check=yes" => {
                    self.check = true;
                    OptionResult::Taken
                }
                "--check=no" => OptionResult::Taken,
                a if a.starts_with("--check=") => OptionResult::Bad("--check must be yes or no"),
                _ => OptionResult::Unknown,
            }
        }
        fn instrument(&mut self, sb: Superblock, _: &StateLayout) -> Superblock {
            sb
        }
    }

    fn run(args: &[&str]) -> Result<(CoreOptions, usize), OptError> {
        let mut t = TestTool::default();
        match parse(args, &mut t, 1234, &["HOME=/h"])? {
            Action::Run { opts, client } => Ok((opts, client)),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn bad_why(args: &[&str]) -> String {
        match run(args) {
            Err(OptError::Bad { opt, why }) => {
                assert_eq!(opt, args[0]);
                why
            }
            other => panic!("expected Bad, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_client_start() {
        let (o, c) = run(&["./prog", "-v", "--stats=yes"]).unwrap();
        assert_eq!(c, 0, "options end at the program");
        assert_eq!(o, CoreOptions::default());
        assert_eq!(o.max_insns, 50);
        assert_eq!(o.smc_check, SmcCheck::AllNonFile);
        let (_, c) = run(&[]).unwrap();
        assert_eq!(c, 0);
    }

    #[test]
    fn core_options() {
        let args = [
            "--tool=none",
            "-v",
            "-v",
            "-q",
            "-d",
            "-d",
            "--log-fd=9",
            "--trace-flags=10000001",
            "--trace-notbelow=5",
            "--vex-guest-max-insns=7",
            "--smc-check=stack",
            "--stats=yes",
            "prog",
            "-q",
        ];
        let (o, c) = run(&args).unwrap();
        assert_eq!(c, 12);
        assert_eq!(o.verbosity, 2);
        assert_eq!(o.debug_level, 2);
        assert_eq!(o.log, LogTarget::Fd(9));
        assert_eq!(o.trace_flags, 0x81);
        assert_eq!(o.trace_notbelow, 5);
        assert_eq!(o.max_insns, 7);
        assert_eq!(o.smc_check, SmcCheck::Stack);
        assert!(o.stats);
        assert_eq!(o.given.len(), 12);
        assert_eq!(o.given[0], "--tool=none");
        let (o, _) = run(&["--quiet", "--trace-notbelow=-5", "--log-file=v.%p.%q{HOME}", "p"]).unwrap();
        assert_eq!(o.verbosity, 0);
        assert_eq!(o.trace_notbelow, 0);
        assert_eq!(o.log, LogTarget::File("v.1234./h".into()));
        let (o, _) = run(&["--smc-check=all", "--smc-check=none", "--stats=no", "p"]).unwrap();
        assert_eq!(o.smc_check, SmcCheck::None);
        assert!(!o.stats);
    }

    #[test]
    fn bad_values() {
        assert_eq!(bad_why(&["--log-fd=abc", "p"]), "Invalid integer value 'abc'");
        assert_eq!(bad_why(&["--vex-guest-max-insns=0", "p"]), "'--vex-guest-max-insns' argument must be between 1 and 100");
        assert_eq!(bad_why(&["--vex-guest-max-insns=101", "p"]), "'--vex-guest-max-insns' argument must be between 1 and 100");
        assert_eq!(bad_why(&["--vex-guest-max-insns=x", "p"]), "Invalid integer value 'x'");
        assert_eq!(bad_why(&["--trace-flags=123", "p"]), "--trace-flags argument must have 8 digits");
        assert_eq!(bad_why(&["--trace-flags=1x000000", "p"]), "--trace-flags argument can only contain 0s and 1s");
        assert_eq!(bad_why(&["--stats=maybe", "p"]), "Invalid boolean value 'maybe' (should be 'yes' or 'no')");
        assert_eq!(bad_why(&["--log-file=", "p"]), "No filename given");
        assert_eq!(bad_why(&["--log-file=x%q{NOPE}", "p"]), "Environment variable 'NOPE' is not set");
        assert_eq!(bad_why(&["--check=maybe", "p"]), "--check must be yes or no");
    }

    #[test]
    fn process_options() {
        let (o, c) = run(&["--trace-children=yes", "--trace-children-skip=*/ls,/bin/?h", "--child-silent-after-fork=yes", "--track-fds=yes", "--fair-sched=yes", "p"]).unwrap();
        assert_eq!(c, 5);
        assert!(o.trace_children && o.child_silent_after_fork && o.track_fds && o.fair_sched);
        assert_eq!(o.trace_children_skip, ["*/ls", "/bin/?h"]);
        assert!(wildcard_match("*/ls", "/usr/bin/ls"));
        assert!(wildcard_match("/bin/?h", "/bin/sh"));
        assert!(!wildcard_match("/bin/?h", "/bin/bash"));
        assert!(!wildcard_match("*/ls", "/usr/bin/lsblk"));
        assert_eq!(run(&["--fair-sched=maybe", "p"]), Err(OptError::Unknown("--fair-sched=maybe".into())));
    }

    #[test]
    fn freeres_options() {
        let (o, _) = run(&["p"]).unwrap();
        assert!(o.run_libc_freeres && o.run_cxx_freeres, "both run by default");
        let (o, _) = run(&["--run-libc-freeres=no", "--run-cxx-freeres=no", "p"]).unwrap();
        assert!(!o.run_libc_freeres && !o.run_cxx_freeres);
        let (o, _) = run(&["--run-cxx-freeres=no", "--run-cxx-freeres=yes", "p"]).unwrap();
        assert!(o.run_libc_freeres && o.run_cxx_freeres);
        assert_eq!(bad_why(&["--run-libc-freeres=maybe", "p"]), "Invalid boolean value 'maybe' (should be 'yes' or 'no')");
    }

    #[test]
    fn unknown_options() {
        for a in ["--foo", "-x", "--log-fd", "--help=yes", "--smc-check=bad", "--stats"] {
            assert_eq!(run(&[a, "p"]), Err(OptError::Unknown(a.to_string())), "{a}");
        }
    }

    #[test]
    fn tool_options_and_help() {
        let mut t = TestTool::default();
        let r = parse(&["--check=yes", "-q", "prog"], &mut t, 1, &[]).unwrap();
        assert!(matches!(r, Action::Run { client: 2, .. }));
        assert!(t.check);
        assert_eq!(t.offered, 1, "core options are not offered to the tool");
        assert_eq!(parse(&["-h", "--foo"], &mut t, 1, &[]), Ok(Action::Help));
        assert_eq!(parse(&["--help"], &mut t, 1, &[]), Ok(Action::Help));
        assert_eq!(parse(&["--version", "prog"], &mut t, 1, &[]), Ok(Action::Version));
        let u = usage(&t);
        assert!(u.contains("user options for testtool:"));
        assert!(u.contains("--vex-guest-max-insns"));
    }
}
