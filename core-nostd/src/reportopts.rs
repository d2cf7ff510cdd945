//! The command-line options of the reporting services — stack traces (`--num-callers=`,
//! `--show-below-main=`, `--demangle=`) and redirection (`--trace-redir=`,
//! `--soname-synonyms=`) — parsed by `options::parse` through [`parse`], some of them changeable
//! while the client runs (`VALGRIND_CLO_CHANGE`, see [`change_dynamic`]).
//!
//! Uses: `debuginfo` (the stack options type), `redir` (the synonyms syntax).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::debuginfo::StackOptions;

/// The reporting options of this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportOptions {
    pub stack: StackOptions,
    pub demangle: bool,
    pub trace_redir: bool,
    /// `--soname-synonyms=tag=pattern,...`.
    pub soname_synonyms: Vec<(String, String)>,
}

impl ReportOptions {
    pub const fn new() -> ReportOptions {
        ReportOptions {
            stack: StackOptions { num_callers: 12, show_below_main: false },
            demangle: true,
            trace_redir: false,
            soname_synonyms: Vec::new(),
        }
    }
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions::new()
    }
}

static OPTS: spin::Mutex<ReportOptions> = spin::Mutex::new(ReportOptions::new());

/// The current options.
pub fn get() -> ReportOptions {
    OPTS.lock().clone()
}

fn yes_no(v: &str) -> Result<bool, String> {
    match v {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("Invalid boolean value '{v}' (should be 'yes' or 'no')")),
    }
}

/// Applies option `arg` to `o`. `None`: not one of these options; `Some(Err(why))`: a bad
/// value.
pub fn apply(o: &mut ReportOptions, arg: &str) -> Option<Result<(), String>> {
    let (name, value) = arg.split_once('=')?;
    let r = match name {
        "--num-callers" => match value.parse::<usize>() {
            // Valgrind's bounds.
            Ok(n) if (1..=500).contains(&n) => {
                o.stack.num_callers = n;
                Ok(())
            }
            Ok(_) => Err(String::from("'--num-callers' argument must be between 1 and 500")),
            Err(_) => Err(format!("Invalid integer value '{value}'")),
        },
        "--show-below-main" => yes_no(value).map(|b| o.stack.show_below_main = b),
        "--demangle" => yes_no(value).map(|b| o.demangle = b),
        "--trace-redir" => yes_no(value).map(|b| o.trace_redir = b),
        "--soname-synonyms" => match crate::redir::active::parse_soname_synonyms(value) {
            Some(s) => {
                o.soname_synonyms = s;
                Ok(())
            }
            None => Err(String::from("--soname-synonyms entries must be tag=pattern")),
        },
        _ => return None,
    };
    Some(r)
}

/// Parses one command-line option into the run's options (see [`apply`]).
pub fn parse(arg: &str) -> Option<Result<(), String>> {
    apply(&mut OPTS.lock(), arg)
}

/// The options of this module that `VALGRIND_CLO_CHANGE` may change while the client runs
/// (Valgrind's dynamic ones; the others are fixed once the run has started).
const DYNAMIC: [&str; 2] = ["--show-below-main", "--trace-redir"];

/// `VALGRIND_CLO_CHANGE(arg)`: applies `arg` if it is a dynamically changeable option
/// (these, and `-v`/`-q` for the log's verbosity); otherwise the warning to print.
pub fn change_dynamic(arg: &str) -> Result<(), String> {
    let name = arg.split_once('=').map_or(arg, |(n, _)| n);
    match name {
        "-v" | "--verbose" => crate::log::set_verbosity(crate::log::verbosity() + 1),
        "-q" | "--quiet" => crate::log::set_verbosity(crate::log::verbosity() - 1),
        _ if DYNAMIC.contains(&name) => return parse(arg).unwrap_or(Ok(())),
        _ => return Err(format!("Cannot change {name} option dynamically")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let mut o = ReportOptions::new();
        assert_eq!(apply(&mut o, "--num-callers=30"), Some(Ok(())));
        assert_eq!(o.stack.num_callers, 30);
        assert!(matches!(apply(&mut o, "--num-callers=0"), Some(Err(_))));
        assert!(matches!(apply(&mut o, "--num-callers=x"), Some(Err(_))));
        assert_eq!(apply(&mut o, "--show-below-main=yes"), Some(Ok(())));
        assert!(o.stack.show_below_main);
        assert_eq!(apply(&mut o, "--demangle=no"), Some(Ok(())));
        assert!(!o.demangle);
        assert!(matches!(apply(&mut o, "--trace-redir=maybe"), Some(Err(_))));
        assert_eq!(apply(&mut o, "--soname-synonyms=somalloc=*tcmalloc*"), Some(Ok(())));
        assert_eq!(o.soname_synonyms, alloc::vec![(String::from("somalloc"), String::from("*tcmalloc*"))]);
        assert_eq!(apply(&mut o, "--stats=yes"), None);
        assert_eq!(apply(&mut o, "-v"), None);
    }

    #[test]
    fn dynamic_changes() {
        assert_eq!(change_dynamic("--num-callers=3"), Err(String::from("Cannot change --num-callers option dynamically")));
        assert_eq!(change_dynamic("--nonsense"), Err(String::from("Cannot change --nonsense option dynamically")));
        assert!(change_dynamic("--show-below-main=maybe").is_err());
        assert_eq!(change_dynamic("--show-below-main=yes"), Ok(()));
        assert!(get().stack.show_below_main);
        assert_eq!(change_dynamic("--show-below-main=no"), Ok(()));
        assert!(!get().stack.show_below_main);
    }
}
