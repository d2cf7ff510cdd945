//! Memcheck's command-line options (`--leak-check=`, the leak kinds to show and count, the
//! leak resolution and heuristics, `--undef-value-errors=`, the heap's redzone, fill and
//! free-queue options, ...): their values and parsing, with Valgrind's messages for bad values.

use alloc::format;
use alloc::string::String;

use crate::leak::Kind;
use crate::malloc::HeapOptions;

/// `--leak-check=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeakCheck {
    No,
    Summary,
    Full,
}

/// A set of leak kinds (`--show-leak-kinds=`, `--errors-for-leak-kinds=`, a suppression's
/// `match-leak-kinds:`), one bit per [`crate::leak::Kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeakKinds(pub u8);

impl LeakKinds {
    pub const NONE: LeakKinds = LeakKinds(0);
    pub const ALL: LeakKinds = LeakKinds(0xf);
    /// Valgrind's default for showing and for counting as errors.
    pub const DEFINITE_POSSIBLE: LeakKinds = LeakKinds(Kind::Definite.bit() | Kind::Possible.bit());

    /// `all`, `none` or a comma-separated list of `definite`, `indirect`, `possible`,
    /// `reachable`.
    pub fn parse(v: &str) -> Option<LeakKinds> {
        match v {
            "all" => return Some(LeakKinds::ALL),
            "none" => return Some(LeakKinds::NONE),
            _ => {}
        }
        v.split(',').try_fold(LeakKinds::NONE, |set, name| {
            let k = match name {
                "definite" => Kind::Definite,
                "indirect" => Kind::Indirect,
                "possible" => Kind::Possible,
                "reachable" => Kind::Reachable,
                _ => return None,
            };
            Some(set.with(k, true))
        })
    }

    pub fn has(self, k: Kind) -> bool {
        self.0 & k.bit() != 0
    }

    pub fn with(self, k: Kind, on: bool) -> LeakKinds {
        if on { LeakKinds(self.0 | k.bit()) } else { LeakKinds(self.0 & !k.bit()) }
    }
}

/// `--leak-resolution=`: how many frames of two allocation stacks must match for their blocks
/// to share a loss record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeakResolution {
    /// Two frames.
    Low,
    /// Four frames.
    Med,
    /// All frames.
    High,
}

impl LeakResolution {
    /// Frames compared; `None` for all.
    pub fn depth(self) -> Option<usize> {
        match self {
            LeakResolution::Low => Some(2),
            LeakResolution::Med => Some(4),
            LeakResolution::High => None,
        }
    }
}

/// `--leak-check-heuristics=`: interior pointers that count as pointers to a block's start
/// (the block is then reachable "via heuristic"), one bit per heuristic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heuristics(pub u8);

impl Heuristics {
    /// A pointer 3 words into a block laid out as a copy-on-write `std::string`: length,
    /// capacity, reference count, then the characters (capacity + 1 bytes).
    pub const STDSTRING: u8 = 1;
    /// A pointer 8 bytes into a block whose first 8 bytes hold the size of the rest.
    pub const LENGTH64: u8 = 2;
    /// A pointer one word into a block whose first word is an element count that divides the
    /// rest (the cookie of `new[]` for elements with a destructor).
    pub const NEWARRAY: u8 = 4;
    pub const NONE: Heuristics = Heuristics(0);
    /// What this memcheck implements; Valgrind's default, `all`, adds multipleinheritance.
    pub const IMPLEMENTED: Heuristics = Heuristics(Self::STDSTRING | Self::LENGTH64 | Self::NEWARRAY);

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// The names in Valgrind's order, for the LEAK SUMMARY's "reachable via heuristic" lines.
    pub const NAMES: [(u8, &'static str); 3] =
        [(Self::STDSTRING, "stdstring"), (Self::LENGTH64, "length64"), (Self::NEWARRAY, "newarray")];
}

/// Memcheck's options.
#[derive(Clone, Copy, Debug)]
pub struct McOptions {
    pub leak_check: LeakCheck,
    pub undef_value_errors: bool,
    pub expensive_cmp: bool,
    pub partial_loads_ok: bool,
    pub heap: HeapOptions,
    pub malloc_fill: Option<u8>,
    pub free_fill: Option<u8>,
    /// `--show-leak-kinds=`: the loss records shown.
    pub show_kinds: LeakKinds,
    /// `--errors-for-leak-kinds=`: the loss records counted as errors.
    pub error_kinds: LeakKinds,
    pub leak_resolution: LeakResolution,
    pub heuristics: Heuristics,
    /// `-s`, `--show-error-list=yes`: the errors and used suppressions again at exit.
    pub show_error_list: bool,
    /// `--track-origins=`: where undefined values were created.
    pub track_origins: bool,
}

impl Default for McOptions {
    fn default() -> Self {
        McOptions {
            leak_check: LeakCheck::Summary,
            undef_value_errors: true,
            expensive_cmp: true,
            partial_loads_ok: true,
            heap: HeapOptions::default(),
            malloc_fill: None,
            free_fill: None,
            show_kinds: LeakKinds::DEFINITE_POSSIBLE,
            error_kinds: LeakKinds::DEFINITE_POSSIBLE,
            leak_resolution: LeakResolution::High,
            heuristics: Heuristics::IMPLEMENTED,
            show_error_list: false,
            track_origins: false,
        }
    }
}

fn yes_no(v: &str) -> Option<bool> {
    match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// A message built at parse time: a bad option ends the run right after it is printed, so the
/// leak is harmless.
fn leaked(msg: String) -> &'static str {
    msg.leak()
}

fn kinds_set(v: &str, what: &str) -> Result<LeakKinds, &'static str> {
    LeakKinds::parse(v).ok_or_else(|| leaked(format!("{v} is an invalid {what} set")))
}

fn heuristics_set(v: &str) -> Result<Heuristics, &'static str> {
    let bad = || leaked(format!("{v} is an invalid leak-check-heuristics set"));
    let unsupported = || {
        leaked(format!(
            "--leak-check-heuristics={v}: the multipleinheritance heuristic is not implemented by this \
             memcheck (use stdstring,length64,newarray)"
        ))
    };
    match v {
        "none" => return Ok(Heuristics::NONE),
        "all" => return Err(unsupported()),
        _ => {}
    }
    let mut set = Heuristics::NONE;
    for name in v.split(',') {
        set.0 |= match name {
            "stdstring" => Heuristics::STDSTRING,
            "length64" => Heuristics::LENGTH64,
            "newarray" => Heuristics::NEWARRAY,
            "multipleinheritance" => return Err(unsupported()),
            _ => return Err(bad()),
        };
    }
    Ok(set)
}

impl McOptions {
    /// Parses one memcheck option: `None` if it is not memcheck's (or, as in Valgrind, a
    /// choice among fixed words that is none of them: the core reports it as unknown), else
    /// whether its value is acceptable (Valgrind's reason if not).
    pub fn parse(&mut self, arg: &str) -> Option<Result<(), &'static str>> {
        if arg == "-s" {
            self.show_error_list = true;
            return Some(Ok(()));
        }
        let (k, v) = arg.split_once('=')?;
        let o = self;
        let boolean = |set: &mut dyn FnMut(bool)| match yes_no(v) {
            Some(b) => Ok(set(b)),
            None => Err(leaked(format!("Invalid boolean value '{v}' (should be 'yes' or 'no')"))),
        };
        let r = match k {
            "--leak-check" => match v {
                "no" => Ok(o.leak_check = LeakCheck::No),
                "summary" => Ok(o.leak_check = LeakCheck::Summary),
                "full" | "yes" => Ok(o.leak_check = LeakCheck::Full),
                _ => return None,
            },
            "--show-leak-kinds" => kinds_set(v, "show-leak-kinds").map(|s| o.show_kinds = s),
            "--errors-for-leak-kinds" => kinds_set(v, "errors-for-leak-kinds").map(|s| o.error_kinds = s),
            "--show-reachable" => boolean(&mut |b| {
                o.show_kinds = if b { LeakKinds::ALL } else { LeakKinds::DEFINITE_POSSIBLE }
            }),
            "--show-possibly-lost" => boolean(&mut |b| o.show_kinds = o.show_kinds.with(Kind::Possible, b)),
            "--leak-resolution" => match v {
                "low" => Ok(o.leak_resolution = LeakResolution::Low),
                "med" => Ok(o.leak_resolution = LeakResolution::Med),
                "high" => Ok(o.leak_resolution = LeakResolution::High),
                _ => return None,
            },
            "--leak-check-heuristics" => heuristics_set(v).map(|h| o.heuristics = h),
            "--show-error-list" => boolean(&mut |b| o.show_error_list = b),
            "--undef-value-errors" => boolean(&mut |b| o.undef_value_errors = b),
            "--expensive-definedness-checks" => match v {
                "yes" | "auto" => Ok(o.expensive_cmp = true),
                "no" => Ok(o.expensive_cmp = false),
                _ => return None,
            },
            "--partial-loads-ok" => boolean(&mut |b| o.partial_loads_ok = b),
            "--track-origins" => boolean(&mut |b| o.track_origins = b),
            "--redzone-size" => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= 4096)
                .map(|n| o.heap.redzone = n)
                .ok_or("expected 0..4096"),
            "--freelist-vol" => v
                .parse::<u64>()
                .map(|n| o.heap.freelist_vol = n)
                .map_err(|_| "expected a number"),
            "--alignment" => v
                .parse::<u64>()
                .ok()
                .filter(|n| n.is_power_of_two() && (8..=4096).contains(n))
                .map(|n| o.heap.alignment = n)
                .ok_or("expected a power of two from 8 to 4096"),
            "--malloc-fill" => u8::from_str_radix(v.trim_start_matches("0x"), 16)
                .map(|b| o.malloc_fill = Some(b))
                .map_err(|_| "expected a hex byte"),
            "--free-fill" => u8::from_str_radix(v.trim_start_matches("0x"), 16)
                .map(|b| o.free_fill = Some(b))
                .map_err(|_| "expected a hex byte"),
            _ => return None,
        };
        Some(r)
    }
}

/// The option lines of `--help` that belong to memcheck.
pub const USAGE: &str = "    --leak-check=no|summary|full     search for memory leaks at exit?  [summary]\n\
         \x20   --leak-resolution=low|med|high   differentiation of leak stack traces [high]\n\
         \x20   --show-leak-kinds=kind1,kind2,.. which leak kinds to show?\n\
         \x20                                           [definite,possible]\n\
         \x20   --errors-for-leak-kinds=kind1,kind2,..  which leak kinds are errors?\n\
         \x20                                           [definite,possible]\n\
         \x20       where kind is one of:\n\
         \x20         definite indirect possible reachable all none\n\
         \x20   --leak-check-heuristics=heur1,heur2,... which heuristics to use for\n\
         \x20       improving leak search false positive [stdstring,length64,newarray]\n\
         \x20       where heur is one of:\n\
         \x20         stdstring length64 newarray none\n\
         \x20   --show-reachable=yes             same as --show-leak-kinds=all\n\
         \x20   --show-reachable=no --show-possibly-lost=yes\n\
         \x20                                    same as --show-leak-kinds=definite,possible\n\
         \x20   --show-reachable=no --show-possibly-lost=no\n\
         \x20                                    same as --show-leak-kinds=definite\n\
         \x20   -s --show-error-list=no|yes      list errors and used suppressions at exit [no]\n\
         \x20   --undef-value-errors=no|yes      check for undefined value errors [yes]\n\
         \x20   --track-origins=no|yes           show origins of undefined values? [no]\n\
         \x20   --expensive-definedness-checks=no|auto|yes  exact equality compares [auto]\n\
         \x20   --partial-loads-ok=no|yes        aligned partially-valid word loads are fine [yes]\n\
         \x20   --redzone-size=<number>          heap block redzone size [16]\n\
         \x20   --freelist-vol=<number>          volume of freed blocks queue [20000000]\n\
         \x20   --alignment=<number>             minimum heap block alignment [16]\n\
         \x20   --malloc-fill=<hexnumber>        fill malloc'd areas with given value\n\
         \x20   --free-fill=<hexnumber>          fill free'd areas with given value\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leak_kind_sets_parse_as_in_valgrind() {
        let mut o = McOptions::default();
        assert_eq!(o.show_kinds, LeakKinds::DEFINITE_POSSIBLE);
        assert_eq!(o.parse("--show-leak-kinds=all"), Some(Ok(())));
        assert!(Kind::ALL.iter().all(|k| o.show_kinds.has(*k)));
        assert_eq!(o.parse("--errors-for-leak-kinds=definite,indirect"), Some(Ok(())));
        assert!(o.error_kinds.has(Kind::Indirect) && !o.error_kinds.has(Kind::Possible));
        assert_eq!(o.parse("--show-leak-kinds=none"), Some(Ok(())));
        assert_eq!(o.show_kinds, LeakKinds::NONE);
        assert_eq!(o.parse("--show-leak-kinds=definite,bogus"), Some(Err("definite,bogus is an invalid show-leak-kinds set")));
        assert_eq!(o.parse("--show-leak-kinds=all,definite"), Some(Err("all,definite is an invalid show-leak-kinds set")));
        assert_eq!(o.parse("--errors-for-leak-kinds="), Some(Err(" is an invalid errors-for-leak-kinds set")));
        assert_eq!(o.parse("--show-reachable=yes"), Some(Ok(())));
        assert_eq!(o.show_kinds, LeakKinds::ALL);
        assert_eq!(o.parse("--show-reachable=no"), Some(Ok(())));
        assert_eq!(o.parse("--show-possibly-lost=no"), Some(Ok(())));
        assert_eq!(o.show_kinds, LeakKinds(Kind::Definite.bit()));
        assert_eq!(o.parse("--show-reachable=maybe"), Some(Err("Invalid boolean value 'maybe' (should be 'yes' or 'no')")));
    }

    #[test]
    fn resolution_heuristics_and_error_list() {
        let mut o = McOptions::default();
        assert_eq!(o.leak_resolution.depth(), None);
        assert_eq!(o.parse("--leak-resolution=low"), Some(Ok(())));
        assert_eq!(o.leak_resolution.depth(), Some(2));
        assert_eq!(o.parse("--leak-resolution=med"), Some(Ok(())));
        assert_eq!(o.leak_resolution.depth(), Some(4));
        assert_eq!(o.parse("--leak-resolution=xx"), None, "unknown option, as in Valgrind");
        assert_eq!(o.parse("--leak-check-heuristics=none"), Some(Ok(())));
        assert_eq!(o.heuristics, Heuristics::NONE);
        assert_eq!(o.parse("--leak-check-heuristics=stdstring,newarray"), Some(Ok(())));
        assert!(o.heuristics.has(Heuristics::STDSTRING) && !o.heuristics.has(Heuristics::LENGTH64));
        assert_eq!(o.parse("--leak-check-heuristics=foo"), Some(Err("foo is an invalid leak-check-heuristics set")));
        assert!(matches!(o.parse("--leak-check-heuristics=all"), Some(Err(m)) if m.contains("multipleinheritance")));
        assert!(matches!(o.parse("--leak-check-heuristics=length64,multipleinheritance"), Some(Err(_))));
        assert!(!o.show_error_list);
        assert_eq!(o.parse("-s"), Some(Ok(())));
        assert!(o.show_error_list);
        assert_eq!(o.parse("--show-error-list=no"), Some(Ok(())));
        assert!(!o.show_error_list);
    }
}
