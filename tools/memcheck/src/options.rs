//! Memcheck's command-line options (`--leak-check=`, `--undef-value-errors=`, the heap's
//! redzone, fill and free-queue options, ...): their values and parsing.

use crate::malloc::HeapOptions;

/// `--leak-check=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeakCheck {
    No,
    Summary,
    Full,
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
    pub show_reachable: bool,
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
            show_reachable: false,
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

impl McOptions {
    /// Parses one memcheck option: `None` if it is not memcheck's, else whether its value is
    /// acceptable (the reason if not).
    pub fn parse(&mut self, arg: &str) -> Option<Result<(), &'static str>> {
        let (k, v) = arg.split_once('=')?;
        let o = self;
        let bad_bool = "expected 'yes' or 'no'";
        let r = match k {
            "--leak-check" => match v {
                "no" => Ok(o.leak_check = LeakCheck::No),
                "summary" => Ok(o.leak_check = LeakCheck::Summary),
                "full" | "yes" => Ok(o.leak_check = LeakCheck::Full),
                _ => Err("expected no, summary or full"),
            },
            "--undef-value-errors" => yes_no(v).map(|b| o.undef_value_errors = b).ok_or(bad_bool),
            "--expensive-definedness-checks" => match v {
                "yes" | "auto" => Ok(o.expensive_cmp = true),
                "no" => Ok(o.expensive_cmp = false),
                _ => Err("expected no, auto or yes"),
            },
            "--partial-loads-ok" => yes_no(v).map(|b| o.partial_loads_ok = b).ok_or(bad_bool),
            "--show-reachable" => yes_no(v).map(|b| o.show_reachable = b).ok_or(bad_bool),
            // Origin tracking (shadow 2) is not built yet: say so instead of ignoring it.
            "--track-origins" => match yes_no(v) {
                Some(false) => Ok(()),
                Some(true) => Err("--track-origins=yes is not supported yet by this memcheck"),
                None => Err(bad_bool),
            },
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
         \x20   --undef-value-errors=no|yes      check for undefined value errors [yes]\n\
         \x20   --expensive-definedness-checks=no|auto|yes  exact equality compares [auto]\n\
         \x20   --partial-loads-ok=no|yes        aligned partially-valid word loads are fine [yes]\n\
         \x20   --redzone-size=<number>          heap block redzone size [16]\n\
         \x20   --freelist-vol=<number>          volume of freed blocks queue [20000000]\n\
         \x20   --alignment=<number>             minimum heap block alignment [16]\n\
         \x20   --malloc-fill=<hexnumber>        fill malloc'd areas with given value\n\
         \x20   --free-fill=<hexnumber>          fill free'd areas with given value\n";
