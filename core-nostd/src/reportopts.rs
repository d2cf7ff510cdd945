//! The command-line options of the reporting services — stack traces (`--num-callers=`,
//! `--show-below-main=`, `--demangle=`), redirection (`--trace-redir=`, `--soname-synonyms=`)
//! and errors (`--error-limit=`, `--error-exitcode=`, `--exit-on-first-error=`,
//! `--suppressions=`, `--gen-suppressions=`, `--xml=`, `--xml-file=`, `--xml-fd=`) — parsed by
//! `options::parse` through [`parse`], checked together once the tool is known ([`check`]),
//! some of them changeable while the client runs (`VALGRIND_CLO_CHANGE`, see
//! [`change_dynamic`]). Tools that report errors build their error manager from
//! [`ReportOptions::error_options`] and the suppression files listed here.
//!
//! Uses: `debuginfo` (the stack options type), `redir` (the synonyms syntax), `errors` (its
//! options type).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::debuginfo::StackOptions;

/// `--gen-suppressions=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenSuppressions {
    No,
    /// Ask after each error.
    Yes,
    /// Print one for every error.
    All,
}

/// Where `--xml=yes` output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XmlDest {
    Fd(i32),
    File(String),
}

/// The reporting options of this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportOptions {
    pub stack: StackOptions,
    pub demangle: bool,
    pub trace_redir: bool,
    /// `--soname-synonyms=tag=pattern,...`.
    pub soname_synonyms: Vec<(String, String)>,
    pub error_limit: bool,
    /// `--error-exitcode=`: 0 means none.
    pub error_exitcode: i32,
    pub exit_on_first_error: bool,
    /// `--suppressions=` files, in order (the tool's default file comes first, added by it).
    pub suppressions: Vec<String>,
    pub gen_suppressions: GenSuppressions,
    pub xml: bool,
    pub xml_dest: Option<XmlDest>,
}

impl ReportOptions {
    pub const fn new() -> ReportOptions {
        ReportOptions {
            stack: StackOptions { num_callers: 12, show_below_main: false },
            demangle: true,
            trace_redir: false,
            soname_synonyms: Vec::new(),
            error_limit: true,
            error_exitcode: 0,
            exit_on_first_error: false,
            suppressions: Vec::new(),
            gen_suppressions: GenSuppressions::No,
            xml: false,
            xml_dest: None,
        }
    }

    /// The error manager's options.
    pub fn error_options(&self) -> crate::errors::ErrorOptions {
        crate::errors::ErrorOptions {
            error_limit: self.error_limit,
            error_exitcode: self.error_exitcode,
            exit_on_first_error: self.exit_on_first_error,
            ..crate::errors::ErrorOptions::default()
        }
    }
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions::new()
    }
}

/// The `--help` section of these options.
pub const USAGE: &str = "  \
    options for stack traces, errors and function wrapping, with defaults in [ ]:
    --num-callers=<number>    frames in a stack trace, 1..500 [12]
    --show-below-main=no|yes  go on below main() into the C start-up code [no]
    --demangle=no|yes         show C++ and Rust names demangled [yes]
    --error-limit=no|yes      stop collecting errors after very many [yes]
    --error-exitcode=<number> exit with <number> when errors were found [0: off]
    --exit-on-first-error=no|yes  end the run at the first error [no]
    --suppressions=<file>     read suppressions from <file> (repeatable)
    --gen-suppressions=no|yes|all  write a suppression for errors: ask, always [no]
    --xml=no|yes              write errors as XML, protocol 4 (tools that can) [no]
    --xml-fd=<number>         the XML goes to file descriptor <number>
    --xml-file=<file>         the XML goes to <file>
    --trace-redir=no|yes      list the function redirections in force [no]
    --soname-synonyms=tag=pattern,...
                              a wrapper's soname VgSoSyn<tag> means <pattern>

";

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

fn int(v: &str) -> Result<i32, String> {
    v.parse::<i32>().map_err(|_| format!("Invalid integer value '{v}'"))
}

/// Applies option `arg` to `o`. `None`: not one of these options (a bad choice among fixed
/// words is reported as an unknown option, as Valgrind does); `Some(Err(why))`: a bad value.
pub fn apply(o: &mut ReportOptions, arg: &str) -> Option<Result<(), String>> {
    let (name, value) = arg.split_once('=')?;
    let r = match name {
        "--error-limit" => yes_no(value).map(|b| o.error_limit = b),
        "--error-exitcode" => int(value).map(|n| o.error_exitcode = n),
        "--exit-on-first-error" => yes_no(value).map(|b| o.exit_on_first_error = b),
        "--suppressions" => {
            o.suppressions.push(String::from(value));
            Ok(())
        }
        "--gen-suppressions" => {
            o.gen_suppressions = match value {
                "no" => GenSuppressions::No,
                "yes" => GenSuppressions::Yes,
                "all" => GenSuppressions::All,
                _ => return None,
            };
            Ok(())
        }
        "--xml" => yes_no(value).map(|b| o.xml = b),
        "--xml-file" => {
            o.xml_dest = Some(XmlDest::File(String::from(value)));
            Ok(())
        }
        "--xml-fd" => int(value).map(|fd| o.xml_dest = Some(XmlDest::Fd(fd))),
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

/// Checks the options against each other and against the tool (`tool_name` as in its banner,
/// e.g. "Nulgrind"; `xml_ok`: whether it writes XML): `Err((option, lines))` is a bad option
/// with the lines explaining why.
pub fn check(tool_name: &str, xml_ok: bool) -> Result<(), (String, Vec<String>)> {
    let o = get();
    if o.xml && !xml_ok {
        return Err((String::from("--xml=yes"), alloc::vec![format!("{tool_name} does not support XML output.")]));
    }
    if o.xml && o.xml_dest.is_none() {
        return Err((
            String::from("--xml=yes, but no XML destination specified"),
            alloc::vec![String::from("--xml=yes needs an XML output destination: --xml-fd= or --xml-file=.")],
        ));
    }
    if o.exit_on_first_error && o.error_exitcode == 0 {
        return Err((
            String::from("--exit-on-first-error=yes"),
            alloc::vec![String::from("--exit-on-first-error=yes needs a non-zero --error-exitcode=.")],
        ));
    }
    Ok(())
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
        assert_eq!(apply(&mut o, "--error-exitcode=42"), Some(Ok(())));
        assert!(matches!(apply(&mut o, "--error-exitcode=abc"), Some(Err(_))));
        assert_eq!(apply(&mut o, "--error-limit=no"), Some(Ok(())));
        assert_eq!(apply(&mut o, "--exit-on-first-error=yes"), Some(Ok(())));
        let e = o.error_options();
        assert_eq!((e.error_exitcode, e.error_limit, e.exit_on_first_error), (42, false, true));
        assert_eq!(apply(&mut o, "--suppressions=a.supp"), Some(Ok(())));
        assert_eq!(apply(&mut o, "--suppressions=b.supp"), Some(Ok(())));
        assert_eq!(o.suppressions, ["a.supp", "b.supp"]);
        assert_eq!(apply(&mut o, "--gen-suppressions=all"), Some(Ok(())));
        assert_eq!(o.gen_suppressions, GenSuppressions::All);
        assert_eq!(apply(&mut o, "--gen-suppressions=maybe"), None);
        assert_eq!(apply(&mut o, "--xml=yes"), Some(Ok(())));
        assert_eq!(apply(&mut o, "--xml-fd=5"), Some(Ok(())));
        assert_eq!(o.xml_dest, Some(XmlDest::Fd(5)));
        assert_eq!(apply(&mut o, "--xml-file=out.xml"), Some(Ok(())));
        assert_eq!(o.xml_dest, Some(XmlDest::File(String::from("out.xml"))));
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
