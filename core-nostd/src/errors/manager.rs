//! The error manager: tools register their error kinds and report errors; errors of one kind at
//! one stack (to a few frames) with equal tool details are counted once as a context; suppressed
//! errors are counted per suppression; limits and the closing summary. Errors that are never
//! merged with others (memcheck's loss records) go through [`ErrorManager::record_unique`]:
//! matched against the suppressions and counted, but not kept.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::supp::{Suppression, gen_suppression};
use crate::debuginfo::{ExeContextId, ExeContextTable, FrameDesc};

/// A tool's error kind, as registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ErrorKindId(pub u16);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorKindInfo {
    /// Tool name as suppressions spell it (`Memcheck`).
    pub tool: String,
    /// Kind as suppressions spell it (`Addr4`, `Param`, `Leak`).
    pub supp_kind: String,
    /// Kind in XML output (`InvalidRead`).
    pub xml_kind: String,
}

/// Tool-specific details of an error.
pub trait ErrorDetails {
    /// Whether two errors of the same kind and stack are the same error.
    fn same_as(&self, other: &Self) -> bool;
    /// Whether a suppression's extra lines (after `tool:kind`) accept this error.
    fn supp_extra_matches(&self, _extra: &[String]) -> bool {
        true
    }
    /// Extra lines for a generated suppression (e.g. the syscall parameter).
    fn supp_extra(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Core options that govern error collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorOptions {
    /// `--error-limit=yes`: stop collecting after [`MAX_CONTEXTS`] contexts or [`MAX_ERRORS`] errors.
    pub error_limit: bool,
    /// `--error-exitcode=`: 0 means none.
    pub error_exitcode: i32,
    /// `--exit-on-first-error=yes`.
    pub exit_on_first_error: bool,
    /// Frames compared when deciding two errors are the same (Valgrind compares 4).
    pub compare_depth: usize,
}

impl Default for ErrorOptions {
    fn default() -> Self {
        ErrorOptions { error_limit: true, error_exitcode: 0, exit_on_first_error: false, compare_depth: 4 }
    }
}

/// Contexts collected before `--error-limit=yes` stops collection.
pub const MAX_CONTEXTS: usize = 1000;
/// Errors counted before `--error-limit=yes` stops collection.
pub const MAX_ERRORS: u64 = 10_000_000;

/// One error context.
#[derive(Clone, Debug)]
pub struct ErrorRecord<E> {
    /// Sequence number among contexts (XML's `<unique>`).
    pub unique: u64,
    pub kind: ErrorKindId,
    pub ctx: ExeContextId,
    /// Thread of the first occurrence.
    pub tid: u32,
    pub details: E,
    pub count: u64,
    /// Index of the suppression that covers it.
    pub suppressed_by: Option<usize>,
}

/// What became of a unique error ([`ErrorManager::record_unique`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UniqueError {
    /// Its `<unique>` number.
    pub unique: u64,
    /// The suppression that covers it.
    pub suppressed_by: Option<usize>,
}

/// What happened to a reported error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// A new context: the caller shows it.
    New(usize),
    /// Another occurrence of a shown context.
    Duplicate(usize),
    /// Covered by suppression number `.0`.
    Suppressed(usize),
    /// Reporting is disabled by the client, or collection stopped at the limit earlier.
    Ignored,
    /// Collection stops now (first time the limit is hit): the caller says so, once.
    LimitReached,
}

/// The error manager, generic over the tool's error details.
#[derive(Debug)]
pub struct ErrorManager<E> {
    kinds: Vec<ErrorKindInfo>,
    errors: Vec<ErrorRecord<E>>,
    supps: Vec<Suppression>,
    supp_counts: Vec<u64>,
    /// When each suppression was last used (a clock tick): the used ones are listed most
    /// recently used first, as Valgrind lists them.
    supp_last_used: Vec<u64>,
    use_clock: u64,
    pub opts: ErrorOptions,
    errors_found: u64,
    errors_suppressed: u64,
    shown_contexts: usize,
    suppressed_contexts: u64,
    /// The next `<unique>` number: every new context and every unique error takes one.
    next_unique: u64,
    limit_hit: bool,
    /// Nesting depth of `VALGRIND_DISABLE_ERROR_REPORTING`.
    disabled: u32,
}

impl<E: ErrorDetails> ErrorManager<E> {
    pub fn new(opts: ErrorOptions) -> Self {
        ErrorManager {
            kinds: Vec::new(),
            errors: Vec::new(),
            supps: Vec::new(),
            supp_counts: Vec::new(),
            supp_last_used: Vec::new(),
            use_clock: 0,
            opts,
            errors_found: 0,
            errors_suppressed: 0,
            shown_contexts: 0,
            suppressed_contexts: 0,
            next_unique: 0,
            limit_hit: false,
            disabled: 0,
        }
    }

    pub fn register_kind(&mut self, tool: &str, supp_kind: &str, xml_kind: &str) -> ErrorKindId {
        self.kinds.push(ErrorKindInfo { tool: String::from(tool), supp_kind: String::from(supp_kind), xml_kind: String::from(xml_kind) });
        ErrorKindId(self.kinds.len() as u16 - 1)
    }

    pub fn kind(&self, k: ErrorKindId) -> &ErrorKindInfo {
        &self.kinds[k.0 as usize]
    }

    pub fn add_suppressions(&mut self, supps: Vec<Suppression>) {
        self.supp_counts.resize(self.supp_counts.len() + supps.len(), 0);
        self.supp_last_used.resize(self.supp_counts.len(), 0);
        self.supps.extend(supps);
    }

    pub fn suppressions(&self) -> &[Suppression] {
        &self.supps
    }

    /// `VALGRIND_DISABLE_ERROR_REPORTING` / `ENABLE`: nested.
    pub fn disable_reporting(&mut self) {
        self.disabled += 1;
    }

    pub fn enable_reporting(&mut self) {
        self.disabled = self.disabled.saturating_sub(1);
    }

    /// Reports an error. `frames` describes the stack; it is only called for a new context (to
    /// match suppressions), so duplicates cost no symbol lookups.
    pub fn record_error(
        &mut self,
        ectx: &ExeContextTable,
        kind: ErrorKindId,
        ctx: ExeContextId,
        tid: u32,
        details: E,
        frames: impl FnOnce() -> Vec<FrameDesc>,
    ) -> Recorded {
        if self.disabled > 0 || self.limit_hit {
            return Recorded::Ignored;
        }
        let depth = self.opts.compare_depth;
        if let Some(i) = self.errors.iter().position(|e| {
            e.kind == kind && (e.ctx == ctx || ectx.same_prefix(e.ctx, ctx, depth)) && e.details.same_as(&details)
        }) {
            let e = &mut self.errors[i];
            e.count += 1;
            return match e.suppressed_by {
                Some(s) => {
                    self.use_suppression(s);
                    self.errors_suppressed += 1;
                    Recorded::Suppressed(s)
                }
                None => {
                    self.errors_found += 1;
                    Recorded::Duplicate(i)
                }
            };
        }
        if self.opts.error_limit && (self.shown_contexts >= MAX_CONTEXTS || self.errors_found >= MAX_ERRORS) {
            self.limit_hit = true;
            return Recorded::LimitReached;
        }
        let info = &self.kinds[kind.0 as usize];
        let frames = frames();
        let supp = self
            .supps
            .iter()
            .position(|s| s.matches(&info.tool, &info.supp_kind, &frames, |x| details.supp_extra_matches(x)));
        let unique = self.next_unique;
        self.next_unique += 1;
        self.errors.push(ErrorRecord { unique, kind, ctx, tid, details, count: 1, suppressed_by: supp });
        match supp {
            Some(s) => {
                self.use_suppression(s);
                self.errors_suppressed += 1;
                self.suppressed_contexts += 1;
                Recorded::Suppressed(s)
            }
            None => {
                self.errors_found += 1;
                self.shown_contexts += 1;
                Recorded::New(self.errors.len() - 1)
            }
        }
    }

    fn use_suppression(&mut self, s: usize) {
        self.supp_counts[s] += 1;
        self.use_clock += 1;
        self.supp_last_used[s] = self.use_clock;
    }

    /// Reports an error that is never merged with another (Valgrind's unique errors: memcheck's
    /// loss records). It takes a `<unique>` number; it is matched against the suppressions
    /// (`extra_ok` checks a suppression's extra lines); `count` says whether it counts in the
    /// error summary (as an error, or as a suppressed one). It is not kept.
    pub fn record_unique(
        &mut self,
        kind: ErrorKindId,
        frames: &[FrameDesc],
        extra_ok: impl Fn(&[String]) -> bool,
        count: bool,
    ) -> UniqueError {
        let unique = self.next_unique;
        self.next_unique += 1;
        let info = &self.kinds[kind.0 as usize];
        let supp = self.supps.iter().position(|s| s.matches(&info.tool, &info.supp_kind, frames, &extra_ok));
        match supp {
            Some(s) => {
                self.use_suppression(s);
                if count {
                    self.errors_suppressed += 1;
                    self.suppressed_contexts += 1;
                }
            }
            None if count => {
                self.errors_found += 1;
                self.shown_contexts += 1;
            }
            None => {}
        }
        UniqueError { unique, suppressed_by: supp }
    }

    pub fn error(&self, i: usize) -> &ErrorRecord<E> {
        &self.errors[i]
    }

    /// Shown (unsuppressed) contexts, in order of first occurrence.
    pub fn shown(&self) -> impl Iterator<Item = &ErrorRecord<E>> {
        self.errors.iter().filter(|e| e.suppressed_by.is_none())
    }

    /// Unsuppressed errors so far (`VALGRIND_COUNT_ERRORS`).
    pub fn errors_found(&self) -> u64 {
        self.errors_found
    }

    /// The used suppressions with their indices and use counts, most recently used first.
    pub fn used_suppressions(&self) -> impl Iterator<Item = (usize, &Suppression, u64)> {
        let mut used: Vec<usize> = (0..self.supps.len()).filter(|&i| self.supp_counts[i] > 0).collect();
        used.sort_by_key(|&i| core::cmp::Reverse(self.supp_last_used[i]));
        used.into_iter().map(|i| (i, &self.supps[i], self.supp_counts[i]))
    }

    /// `ERROR SUMMARY: N errors from M contexts (suppressed: X from Y)`: Y counts the
    /// suppressed contexts.
    pub fn summary_line(&self) -> String {
        format!(
            "ERROR SUMMARY: {} errors from {} contexts (suppressed: {} from {})",
            self.errors_found, self.shown_contexts, self.errors_suppressed, self.suppressed_contexts
        )
    }

    /// `-s`'s list of used suppressions, one line each.
    pub fn used_suppression_lines(&self) -> Vec<String> {
        self.used_suppression_lines_with(|_| String::new())
    }

    /// The same, each line followed by the tool's note on suppression `i` (memcheck's
    /// " suppressed: N bytes in M blocks" for leak suppressions).
    pub fn used_suppression_lines_with(&self, note: impl Fn(usize) -> String) -> Vec<String> {
        self.used_suppressions()
            .map(|(i, s, c)| format!("used_suppression: {c:>6} {} {}:{}{}", s.name, s.file, s.line, note(i)))
            .collect()
    }

    /// The exit code `--error-exitcode=` asks for, if errors were found.
    pub fn exit_code(&self) -> Option<i32> {
        (self.opts.error_exitcode != 0 && self.errors_found > 0).then_some(self.opts.error_exitcode)
    }

    /// Whether `--exit-on-first-error=yes` asks to stop now.
    pub fn should_exit(&self) -> bool {
        self.opts.exit_on_first_error && self.errors_found > 0
    }

    /// The `--gen-suppressions` text for error `i` whose stack is `frames`.
    pub fn gen_suppression(&self, i: usize, frames: &[FrameDesc]) -> String {
        let e = &self.errors[i];
        let k = &self.kinds[e.kind.0 as usize];
        gen_suppression(&k.tool, &k.supp_kind, &e.details.supp_extra(), frames)
    }
}
