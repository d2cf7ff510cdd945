//! Memcheck (`--tool=memcheck`, the default tool): finds invalid memory accesses, uses of
//! undefined values, bad frees and leaks. The tool executable `memcheck-amd64-linux` is
//! `main.rs`; this library is the tool.
//!
//! Modules, as Valgrind splits memcheck:
//! - [`shadow`]: A and V bits of every byte (`mc_main`);
//! - [`translate`]: the instrumentation (`mc_translate`), with [`fastpath`] its inline
//!   shadow-memory checks;
//! - [`errors`]: error kinds, wording and recording (`mc_errors`);
//! - [`malloc`]: the replaced allocator and its blocks (`mc_malloc_wrappers`);
//! - [`mempool`]: the client's memory pools and their chunks;
//! - [`leak`]: the leak checker (`mc_leakcheck`);
//! - [`origins`], [`otag_mem`]: `--track-origins=yes` (origin tags and their memory);
//! - [`strmem`]: the string and memory function replacements (`mc_replace_strmem`);
//! - [`clientreq`]: the `memcheck.h` client requests;
//! - [`options`]: memcheck's command-line options.
//!
//! This file holds the run's state, the helpers generated code calls, the memory events the
//! core reports, and the [`Memcheck`] tool that ties them together.

#![no_std]

extern crate alloc;

pub mod clientreq;
pub mod errors;
pub mod fastpath;
pub mod leak;
pub mod malloc;
pub mod mempool;
pub mod options;
pub mod origins;
pub mod otag_mem;
pub mod shadow;
pub mod strmem;
pub mod translate;
pub mod xml;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;

use vg_amd64_guest::Amd64;
use vg_core::arch::GuestArch;
use vg_core::debuginfo::{ExeContextId, ExeContextTable, FrameDesc, UnwindRegs, format_stack};
use vg_core::errors::{ErrorManager, Recorded};
use vg_core::tool::vg_ir::{Callee, Superblock};
use vg_core::tool::{MemEvents, OptionResult, StateLayout, Tool};

use errors::{AddrDesc, Kinds, McError};
pub use options::{LeakCheck, McOptions};
use malloc::{AllocKind, Heap, REPLACED, STUB_BASE, STUB_FRAME, STUB_SIZE};
use shadow::ShadowMem;
use strmem::StrMem;

/// The amd64 stack red zone: memory up to this far below the stack pointer stays addressable.
const REDZONE: u64 = 128;
/// A stack-pointer move larger than this is a switch to another stack, not growth.
const STACK_SWITCH: u64 = 16 << 20;

/// Everything memcheck knows during the run.
pub struct State {
    pub shadow: ShadowMem,
    pub heap: Heap,
    pub em: ErrorManager<McError>,
    pub kinds: Kinds,
    pub ectx: ExeContextTable,
    pub opts: McOptions,
    /// The page holding the replacement stubs (0 until mapped).
    pub stub_page: u64,
    /// The string and memory function replacements.
    pub strmem: StrMem,
    /// What the client requests leave behind (named blocks, unreported ranges).
    pub creq: clientreq::ClientReqs,
    /// The client's memory pools.
    pub pools: mempool::Pools,
    /// Origin tracking's memory (`--track-origins=yes` only).
    pub origins: Option<origins::OriginState>,
}

struct Global(UnsafeCell<Option<State>>);

// SAFETY: the state is only touched by the thread holding the core's big lock (generated code,
// the scheduler's services and the OS layer's hooks all run under it).
unsafe impl Sync for Global {}

static STATE: Global = Global(UnsafeCell::new(None));

/// The run's state.
fn st() -> &'static mut State {
    // SAFETY: see `Global`: one user at a time; set in `post_options` before any guest code.
    unsafe { (*STATE.0.get()).as_mut().expect("memcheck state is set up in post_options") }
}

fn state_ready() -> bool {
    // SAFETY: as `st`.
    unsafe { (*STATE.0.get()).is_some() }
}

// ---------------------------------------------------------------------------------------------
// Stack traces and reporting.

/// The current guest thread's registers (pc given: the state's may be older).
fn regs_at(pc: u64) -> UnwindRegs {
    let t = vg_core::threads::current();
    let n = Amd64::STATE_SIZE as usize;
    // SAFETY: the current thread's block holds its guest state; the big lock is held.
    let s = unsafe { core::slice::from_raw_parts(t.state, n) };
    UnwindRegs { pc, sp: Amd64::sp(s), fp: Amd64::frame_pointer(s) }
}

fn current_pc() -> u64 {
    let t = vg_core::threads::current();
    // SAFETY: as in `regs_at`.
    let s = unsafe { core::slice::from_raw_parts(t.state, Amd64::STATE_SIZE as usize) };
    Amd64::pc(s)
}

/// Frames of `ips`, the replacement stubs named after the functions they replace.
fn frames_of(ips: &[u64]) -> Vec<FrameDesc> {
    let page = st().stub_page;
    let mut out = Vec::new();
    let mut k = 0;
    let frame = |ip: u64, func: &str, file: &str, line: u32| FrameDesc {
        ip,
        func: Some(String::from(func)),
        mangled: Some(String::from(func)),
        obj: None,
        dir: None,
        file: Some(String::from(file)),
        line: Some(line),
        inlined: false,
    };
    while k < ips.len() {
        if page != 0 && ips[k] >= page && ips[k] < page + 4096 {
            let r = &REPLACED[((ips[k] - page) / STUB_SIZE) as usize % REPLACED.len()];
            out.push(FrameDesc { mangled: Some(String::from(r.name)), ..frame(ips[k], r.display, "vg_replace_malloc.c", r.line) });
        } else if let Some((name, line)) = strmem::frame_name(&st().strmem, ips[k]) {
            out.push(frame(ips[k], &name, "vg_replace_strmem.c", line));
        } else {
            break;
        }
        k += 1;
    }
    out.extend(vg_core::stacks::describe_ips(&ips[k..]));
    out
}

fn trace_text(ips: &[u64]) -> String {
    let mut s = String::new();
    for l in format_stack(&frames_of(ips)) {
        s.push_str(&l);
        s.push('\n');
    }
    s
}

fn ctx_text(ctx: ExeContextId) -> String {
    let ips: Vec<u64> = st().ectx.ips(ctx).to_vec();
    trace_text(&ips)
}

/// Report error `e` that happened at `ips`.
fn report(e: McError, ips: &[u64]) {
    report_o(e, ips, 0)
}

/// Report error `e` that happened at `ips`, its undefined value having origin `tag` (0: none
/// known; a syscall parameter's or client check's is that of its first undefined byte).
fn report_o(e: McError, ips: &[u64], tag: u32) {
    let tag = match e {
        McError::Param { unaddressable: false, addr, .. } | McError::User { unaddressable: false, addr, .. } => origins::tag_at(addr),
        _ => tag,
    };
    let mut e = e;
    if let Some(&pc) = ips.first() {
        errors::locate_stack_frame(&mut e, regs_at(pc), replacement_frame(pc));
    }
    let s = st();
    let ctx = s.ectx.intern(ips);
    let shown = e.clone();
    match errors::record(&mut s.em, &s.kinds, &s.ectx, ctx, e, || frames_of(ips)) {
        Recorded::New(i) if xml::on() => xml::report(i, &shown, ips, origins::split_tag(tag)),
        Recorded::New(i) => {
            let mut text = errors::text(&shown, &trace_text(ips), &ctx_text);
            if let Some((octx, kind)) = origins::split_tag(tag) {
                text.push_str(&errors::origin_text(kind, &ctx_text(octx)));
            }
            text.push('\n');
            vg_core::log::user_lines(&text);
            if vg_core::reportopts::get().gen_suppressions == vg_core::reportopts::GenSuppressions::All {
                let sup = st().em.gen_suppression(i, &frames_of(ips));
                vg_core::log::write_raw(&sup);
            }
            if st().em.should_exit() {
                exit_now();
            }
        }
        Recorded::LimitReached => {
            vg_core::log::user_lines(
                "More than 1000 different errors detected.  I'm not reporting any more.\n\
                 Final error counts will be inaccurate.  Go fix your program!\n\
                 Rerun with --error-limit=no to disable this cutoff.  Note\n\
                 that errors may occur in your program without prior warning from\n\
                 Valgrind, because errors are no longer being displayed.\n\n",
            );
        }
        _ => {}
    }
}

/// `--exit-on-first-error=yes`: the summary, then exit with `--error-exitcode=`.
fn exit_now() -> ! {
    vg_core::log::user_lines(&format!("\n{}\n", st().em.summary_line()));
    vg_core::syscall::exit_group(st().em.exit_code().unwrap_or(0))
}

fn report_here(e: McError, pc: u64) {
    report_here_o(e, pc, 0)
}

fn report_here_o(e: McError, pc: u64, tag: u32) {
    // The replacements keep no frame: their caller's return address is on top of the stack.
    let ips = if st().strmem.replacement_at(pc).is_some() { replacement_ips(pc, 0) } else { vg_core::stacks::trace_ips(regs_at(pc)) };
    report_o(e, &ips, tag);
}

/// What `a` is, for an error's address line. Searched in Valgrind's order: blocks the client
/// named, chunks of ordinary pools, live heap blocks (a live block that also brackets a freed
/// one is "recently re-allocated"), freed blocks, chunks of meta pools, then the stack.
fn describe_addr(a: u64) -> AddrDesc {
    let s = st();
    if let Some((b, off)) = s.creq.describe(a) {
        return AddrDesc::Client { rel: format!("{} bytes inside", commas(off)), what: b.desc.clone(), size: b.size, alloc: b.at };
    }
    let chunk = |(c, rel): (malloc::Block, String)| AddrDesc::Client { rel, what: String::from("block"), size: c.size, alloc: c.alloc };
    if let Some(d) = s.pools.describe(a, false) {
        return chunk(d);
    }
    let freed = s.heap.describe_freed(a);
    if let Some((b, rel)) = s.heap.describe_live(a) {
        if freed.is_some() {
            return AddrDesc::Reallocated { rel, size: b.size, alloc: b.alloc };
        }
        return AddrDesc::Block { rel, size: b.size, freed: false, alloc: b.alloc, free: None };
    }
    if let Some((b, rel)) = freed {
        return AddrDesc::Block { rel, size: b.size, freed: true, alloc: b.alloc, free: b.free };
    }
    if let Some(d) = s.pools.describe(a, true) {
        return chunk(d);
    }
    let sp = regs_at(0).sp;
    // The thread's stack: the client mapping its stack pointer is in.
    let on_stack = vg_core::aspace::aspace()
        .segments()
        .iter()
        .any(|g| matches!(g.kind, vg_core::aspace::SegKind::Client(_)) && (g.start..g.end).contains(&sp) && (g.start..g.end).contains(&a));
    if on_stack {
        let tid = vg_core::threads::current_slot() as u32 + 1;
        // The red zone counts as the stack's live part.
        let below_sp = if a.saturating_add(REDZONE) >= sp { 0 } else { sp - a };
        return AddrDesc::Stack { tid, below_sp, frame: None };
    }
    AddrDesc::Unknown
}

fn addr_error(write: bool, addr: u64, size: u32, pc: u64) {
    if st().creq.is_ignored(addr) {
        return;
    }
    let desc = describe_addr(addr);
    report_here(McError::Addr { write, size, addr, desc }, pc);
}

// ---------------------------------------------------------------------------------------------
// Helpers called from generated code (SysV ABI; see `translate::Helpers`).

/// A 16-byte load: whether it is valid, and the V bits of its half at `addr + half`. With
/// `--partial-loads-ok=yes` an aligned load with some addressable byte is valid and its
/// unaddressable bytes are undefined; an invalid load's unaddressable bytes read as defined.
fn load16(addr: u64, half: u64) -> (bool, u64) {
    let s = st();
    let sh = &s.shadow;
    let none_bad = sh.first_noaccess(addr, 16).is_none();
    let partial = !none_bad
        && s.opts.partial_loads_ok
        && addr % 16 == 0
        && (0..16).any(|i| sh.state(addr + i) != shadow::NOACCESS);
    let bad_as = if partial { 0xff } else { 0 };
    let v = (0..8).fold(0u64, |v, i| v | (sh.vbyte(addr + half + i).unwrap_or(bad_as) as u64) << (8 * i));
    (none_bad || partial, v)
}

extern "C" fn h_loadv(addr: u64, n: u64, pc: u64) -> u64 {
    let s = st();
    if n == 16 {
        let (ok, v) = load16(addr, 0);
        if !ok {
            addr_error(false, addr, 16, pc);
        }
        return v;
    }
    let (v, bad) = s.shadow.load(addr, n as u32, s.opts.partial_loads_ok);
    if bad.is_some() {
        addr_error(false, addr, n as u32, pc);
    }
    v
}

extern "C" fn h_loadv_hi(addr: u64) -> u64 {
    load16(addr, 8).1
}

extern "C" fn h_storev(addr: u64, v: u64, n: u64, pc: u64) {
    if st().shadow.store(addr, n as u32, v).is_some() {
        addr_error(true, addr, n as u32, pc);
    }
}

extern "C" fn h_storev128(addr: u64, lo: u64, hi: u64, pc: u64) {
    let s = st();
    let b1 = s.shadow.store(addr, 8, lo);
    let b2 = s.shadow.store(addr.wrapping_add(8), 8, hi);
    if b1.or(b2).is_some() {
        addr_error(true, addr, 16, pc);
    }
}

extern "C" fn h_value_error(size: u64, pc: u64) {
    report_here(McError::Value { size: size as u32 }, pc);
}

extern "C" fn h_cond_error(pc: u64) {
    report_here(McError::Cond, pc);
}

extern "C" fn h_sp_change(old: u64, new: u64) {
    let s = st();
    if new < old && old - new <= STACK_SWITCH {
        s.shadow.make_undefined(new.wrapping_sub(REDZONE), old - new);
    } else if new > old && new - old <= STACK_SWITCH {
        s.shadow.make_noaccess(old.wrapping_sub(REDZONE), new - old);
    }
}

extern "C" fn h_mem_vbits(addr: u64, len: u64) -> u64 {
    match st().shadow.first_undefined(addr, len) {
        Some((_, true)) => u64::MAX,
        _ => 0,
    }
}

extern "C" fn h_mem_set(addr: u64, len: u64, undef: u64) {
    let s = st();
    for i in 0..len {
        if s.shadow.state(addr + i) != shadow::NOACCESS {
            s.shadow.store_byte(addr + i, if undef != 0 { 0xff } else { 0 });
        }
    }
}

/// A call's or return's red zone, and the `dead` bytes below it that left the stack (the
/// inline path in `fastpath` did not apply).
extern "C" fn h_make_stack_uninit(base: u64, len: u64, dead: u64) {
    let s = &mut st().shadow;
    s.make_noaccess(base.wrapping_sub(dead), dead);
    s.make_undefined(base, len);
}

/// The same with `--track-origins=yes`: the bytes are stack space of the code at `nia` (the
/// callee, or the returned-to code), a one-frame context as in Valgrind.
extern "C" fn h_make_stack_uninit_o(base: u64, len: u64, nia: u64, dead: u64) {
    h_make_stack_uninit(base, len, dead);
    origins::tag_red_zone(base, len, nia);
}

macro_rules! callee {
    ($f:ident) => {
        Callee { name: stringify!($f), addr: $f as *const () as usize }
    };
}

fn helpers() -> translate::Helpers {
    translate::Helpers {
        loadv: callee!(h_loadv),
        loadv_hi: callee!(h_loadv_hi),
        storev: callee!(h_storev),
        storev128: callee!(h_storev128),
        value_error: callee!(h_value_error),
        cond_error: callee!(h_cond_error),
        sp_change: callee!(h_sp_change),
        mem_vbits: callee!(h_mem_vbits),
        mem_set: callee!(h_mem_set),
        make_stack_uninit: callee!(h_make_stack_uninit),
        make_stack_uninit_o: callee!(h_make_stack_uninit_o),
        tables: st().shadow.fast_tables(),
    }
}

// ---------------------------------------------------------------------------------------------
// Memory events from the core and the OS layer.

struct Events;

const PROT_RWX: u32 = 7;
const PROT_EXEC: u32 = 4;

/// Finds the replaced string functions of the file mapped executable at `addr`, if any.
fn scan_code_at(addr: u64) {
    let file = vg_core::aspace::aspace()
        .segments()
        .iter()
        .find(|g| (g.start..g.end).contains(&addr) && matches!(g.kind, vg_core::aspace::SegKind::Client(_)))
        .and_then(|g| Some((g.name.clone().filter(|n| n.starts_with('/'))?, g.start, g.offset)));
    let Some((path, start, offset)) = file else { return };
    if let Some(bytes) = vg_core::debuginfo::FileReader::read_file(&mut vg_core::stacks::SysFileReader, &path) {
        st().strmem.scan_object(&path, &bytes, start, offset);
    }
}

impl MemEvents for Events {
    /// A new mapping is defined whatever its protection, as in Valgrind: access rights are the
    /// hardware's business, and a `PROT_NONE` reservation (a thread's stack, say) is often made
    /// accessible later by `mprotect`.
    fn new_mem_mmap(&self, addr: u64, len: u64, prot: u32) {
        st().shadow.make_defined(addr, len);
        if prot & PROT_EXEC != 0 {
            scan_code_at(addr);
        }
    }
    fn die_mem_munmap(&self, addr: u64, len: u64) {
        st().shadow.make_noaccess(addr, len);
        st().strmem.forget(addr, len);
    }
    fn copy_mem_mremap(&self, from: u64, to: u64, len: u64, new_len: u64) {
        let s = &mut st().shadow;
        if from != to {
            s.copy_range(from, to, len);
            s.make_noaccess(from, len);
        }
        if new_len > len {
            s.make_defined(to + len, new_len - len);
        }
    }
    /// The kernel hands out brk memory zeroed, and static C libraries rely on it (their
    /// thread block lives there): defined, as for anonymous mappings.
    fn new_mem_brk(&self, addr: u64, len: u64) {
        st().shadow.make_defined(addr, len);
    }
    fn die_mem_brk(&self, addr: u64, len: u64) {
        st().shadow.make_noaccess(addr, len);
    }
    /// The frame is written (defined); the handler's red zone below it is addressable.
    fn new_mem_stack_signal(&self, sp: u64, len: u64) {
        let s = &mut st().shadow;
        s.make_undefined(sp.wrapping_sub(REDZONE), REDZONE);
        s.make_defined(sp, len);
    }
    /// On the same stack the frame and the handler's red zone die; a handler that ran on the
    /// alternate stack leaves it as it was (where that stack ends is not known here).
    fn die_mem_stack_signal(&self, frame_sp: u64, restored_sp: u64) {
        if restored_sp > frame_sp && restored_sp - frame_sp <= STACK_SWITCH {
            st().shadow.make_noaccess(frame_sp.wrapping_sub(REDZONE), restored_sp - frame_sp);
        }
    }
}

static EVENTS: Events = Events;

struct Observer;

impl vg_linux::observer::SyscallObserver for Observer {
    fn pre_mem_read(&self, syscall: &str, param: &str, addr: u64, len: u64) {
        // Structures with padding are checked field by field, with Valgrind's names.
        if let Some((_, _, fields)) = PADDED.iter().find(|(c, p, f)| *c == syscall && *p == param && f.last().is_some_and(|l| l.0 + l.1 == len)) {
            for (off, n, name) in *fields {
                check_param(format!("{syscall}({param}->{name})"), addr + off, *n);
            }
            return;
        }
        check_param(format!("{syscall}({param})"), addr, len);
    }
    fn post_mem_write(&self, _syscall: &str, _param: &str, addr: u64, len: u64) {
        st().shadow.make_defined(addr, len);
    }
}

static OBSERVER: Observer = Observer;

/// System-call structures whose padding the kernel never reads: (call, parameter, fields as
/// (offset, size, name)). The OS layer describes such a parameter as one range.
const PADDED: &[(&str, &str, &[(u64, u64, &str)])] =
    &[("sigaltstack", "ss", &[(0, 8, "ss_sp"), (8, 4, "ss_flags"), (16, 8, "ss_size")])];

fn check_param(call: String, addr: u64, len: u64) {
    if let Some((bad, addressable)) = st().shadow.first_undefined(addr, len) {
        let desc = describe_addr(bad);
        report_here(McError::Param { call, unaddressable: !addressable, addr: bad, desc }, current_pc());
    }
}

// ---------------------------------------------------------------------------------------------
// Start-up: the client's initial memory and the replacement stubs.

/// The client heap's memory: client mappings made by the address-space manager.
struct ClientBacking;

impl malloc::Backing for ClientBacking {
    fn map(&mut self, len: u64) -> Option<u64> {
        const PROT_RW: u32 = 3;
        const MAP_PRIVATE_ANON: u32 = 0x22;
        vg_core::aspace::map_client(len, 0, false, vg_core::aspace::ADDR_TOP, PROT_RW, MAP_PRIVATE_ANON, -1, 0).ok()
    }
}

/// Mark what the loader mapped as defined, the stack below the stack pointer as no-access, and
/// install the replacement stubs.
fn start_up() {
    let s = st();
    let sp = regs_at(0).sp;
    let segs: Vec<(u64, u64, bool, bool)> = vg_core::aspace::aspace()
        .segments()
        .iter()
        .filter(|g| matches!(g.kind, vg_core::aspace::SegKind::Client(_)) && g.prot & PROT_RWX != 0)
        .map(|g| (g.start, g.end, (g.start..g.end).contains(&sp), g.prot & 2 != 0))
        .collect();
    for (start, end, stack, _) in &segs {
        s.shadow.make_defined(*start, end - start);
        if *stack && sp > start + REDZONE {
            s.shadow.make_noaccess(*start, (sp - REDZONE).min(*end) - start);
        }
    }
    install_stubs();
    install_strmem();
    let code: Vec<u64> = vg_core::aspace::aspace()
        .segments()
        .iter()
        .filter(|g| matches!(g.kind, vg_core::aspace::SegKind::Client(_)) && g.prot & PROT_EXEC != 0)
        .map(|g| g.start)
        .collect();
    for a in code {
        scan_code_at(a);
    }
}

/// Copies the string function replacements into the client.
fn install_strmem() {
    const PROT_RW: u32 = 3;
    const MAP_PRIVATE_ANON: u32 = 0x22;
    let code = strmem::code();
    let len = (code.len() as u64).next_multiple_of(4096);
    let Ok(at) = vg_core::aspace::map_client(len, 0, false, vg_core::aspace::ADDR_TOP, PROT_RW, MAP_PRIVATE_ANON, -1, 0) else {
        vg_core::umsg!("memcheck: cannot map the string function replacements; they are not replaced");
        return;
    };
    // SAFETY: the mapping was just made read-write, `len` >= code.len() bytes.
    unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), at as *mut u8, code.len()) };
    vg_core::smc::never_changes(at, len);
    st().shadow.make_defined(at, len);
    st().strmem = StrMem::new(at);
}

fn install_stubs() {
    const PROT_RW: u32 = 3;
    const MAP_PRIVATE_ANON: u32 = 0x22;
    let Ok(page) = vg_core::aspace::map_client(4096, 0, false, vg_core::aspace::ADDR_TOP, PROT_RW, MAP_PRIVATE_ANON, -1, 0) else {
        vg_core::umsg!("memcheck: cannot map the replacement stubs; the heap is not checked");
        return;
    };
    let mut specs = Vec::new();
    for (i, r) in REPLACED.iter().enumerate() {
        let code = malloc::stub_code((STUB_BASE + i as u64) as u32);
        let at = page + i as u64 * STUB_SIZE;
        // SAFETY: the page was just mapped read-write for this purpose.
        unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), at as *mut u8, code.len()) };
        for so in r.sonames {
            specs.push(vg_core::redir::RedirSpec {
                kind: vg_core::redir::RedirKind::Replace,
                eclass: 0,
                priority: 0,
                soname: String::from(*so),
                fnname: String::from(r.name),
                to_addr: at,
                origin: String::from("memcheck"),
            });
        }
    }
    vg_core::smc::never_changes(page, 4096);
    st().stub_page = page;
    vg_core::redir::live::add_tool_specs(specs);
}

// ---------------------------------------------------------------------------------------------
// The replaced allocator.

/// For a stub or replacement at `pc` (which keep no frame of their own): the bytes of stack
/// they have in use above their caller's return address.
fn replacement_frame(pc: u64) -> Option<u64> {
    let page = st().stub_page;
    if page != 0 && (page..page + 4096).contains(&pc) {
        Some(STUB_FRAME)
    } else {
        st().strmem.replacement_at(pc).map(|_| 0)
    }
}

/// The stack of a call to a stub or replacement at `pc` that has `frame` bytes of stack in
/// use: `pc`, then its caller's stack.
fn replacement_ips(pc: u64, frame: u64) -> Vec<u64> {
    let r = regs_at(0);
    let caller_sp = r.sp + frame;
    // SAFETY: the stub's own frame; read only if the manager says it is client memory.
    let ret = vg_core::aspace::is_client_readable(caller_sp, 8).then(|| unsafe { core::ptr::read_unaligned(caller_sp as *const u64) });
    let mut ips = alloc::vec![pc];
    if let Some(ret) = ret {
        let max = vg_core::reportopts::get().stack.num_callers.saturating_sub(1);
        let mut rest = vg_core::stacks::trace_ips(UnwindRegs { pc: ret - 1, sp: caller_sp + 8, fp: r.fp });
        rest.truncate(max);
        ips.extend(rest);
    }
    ips
}

fn do_alloc(size: u64, align: u64, kind: AllocKind, ips: &[u64], zeroed: bool) -> u64 {
    let s = st();
    let ctx = s.ectx.intern(ips);
    let Some(p) = s.heap.alloc(size, align, kind, ctx, &mut ClientBacking) else { return 0 };
    if zeroed {
        // SAFETY: the payload is client memory this heap just handed out.
        unsafe { core::ptr::write_bytes(p as *mut u8, 0, size as usize) };
        s.shadow.make_defined(p, size);
    } else {
        if let Some(b) = s.opts.malloc_fill {
            // SAFETY: as above.
            unsafe { core::ptr::write_bytes(p as *mut u8, b, size as usize) };
        }
        s.shadow.make_undefined(p, size);
        origins::tag_range(p, size, origins::make_tag(ctx, origins::OriginKind::Heap));
    }
    p
}

/// Free `p` as `kind` (`what` names the function for "Invalid free()"-style reports).
fn do_free(p: u64, kind: AllocKind, ips: &[u64]) {
    if p == 0 {
        return;
    }
    let s = st();
    let Some(b) = s.heap.live.get(&p).copied() else {
        // Valgrind counts every attempt in the HEAP SUMMARY's frees.
        s.heap.stats.frees += 1;
        let desc = describe_addr(p);
        report(McError::Free { what: "free() / delete / delete[] / realloc()", addr: p, desc }, ips);
        return;
    };
    if b.kind != kind {
        let desc = describe_addr(p);
        report(McError::Mismatch { addr: p, desc }, ips);
    }
    let s = st();
    let ctx = s.ectx.intern(ips);
    s.heap.free(p, ctx);
    // A custom allocator's block is the client's memory: not filled, as in Valgrind.
    if let Some(f) = s.opts.free_fill
        && b.kind != AllocKind::Custom
    {
        // SAFETY: the block's payload is client memory of this heap.
        unsafe { core::ptr::write_bytes(p as *mut u8, f, b.size as usize) };
    }
    // With the redzones: a custom block's may have been addressable.
    let rz = s.heap.opts.redzone;
    s.shadow.make_noaccess(p.saturating_sub(rz), b.size + 2 * rz);
}

fn fishy(func: &'static str, arg: &'static str, v: u64, ips: &[u64]) -> bool {
    if (v as i64) < 0 {
        report(McError::Fishy { func, arg, value: v as i64 }, ips);
        return true;
    }
    false
}

/// Service a call to replaced function `idx` with arguments `a`.
fn heap_call(idx: usize, a: &[u64; 6]) -> u64 {
    let r = &REPLACED[idx];
    let ips = replacement_ips(st().stub_page + idx as u64 * STUB_SIZE, STUB_FRAME);
    let kind_new = if r.name.starts_with("_Znw") { AllocKind::New } else { AllocKind::NewArray };
    match r.name {
        "malloc" => {
            if fishy("malloc", "size", a[1], &ips) {
                return 0;
            }
            do_alloc(a[1], 0, AllocKind::Malloc, &ips, false)
        }
        "_Znwm" | "_Znam" | "_ZnwmRKSt9nothrow_t" | "_ZnamRKSt9nothrow_t" => do_alloc(a[1], 0, kind_new, &ips, false),
        "_ZnwmSt11align_val_t" | "_ZnamSt11align_val_t" => do_alloc(a[1], a[2], kind_new, &ips, false),
        "calloc" => match a[1].checked_mul(a[2]) {
            Some(n) => do_alloc(n, 0, AllocKind::Malloc, &ips, true),
            None => 0,
        },
        "realloc" | "reallocarray" => {
            let size = if r.name == "realloc" { Some(a[2]) } else { a[2].checked_mul(a[3]) };
            let Some(size) = size else { return 0 };
            realloc(a[1], size, &ips)
        }
        "free" | "cfree" => {
            do_free(a[1], AllocKind::Malloc, &ips);
            0
        }
        "_ZdlPv" | "_ZdlPvm" | "_ZdlPvSt11align_val_t" | "_ZdlPvmSt11align_val_t" => {
            do_free(a[1], AllocKind::New, &ips);
            0
        }
        "_ZdaPv" | "_ZdaPvm" | "_ZdaPvSt11align_val_t" | "_ZdaPvmSt11align_val_t" => {
            do_free(a[1], AllocKind::NewArray, &ips);
            0
        }
        "memalign" | "aligned_alloc" => do_alloc(a[2], a[1].max(1).next_power_of_two(), AllocKind::Malloc, &ips, false),
        "valloc" => do_alloc(a[1], 4096, AllocKind::Malloc, &ips, false),
        "pvalloc" => do_alloc(a[1].next_multiple_of(4096).max(4096), 4096, AllocKind::Malloc, &ips, false),
        "posix_memalign" => {
            const EINVAL: u64 = 22;
            const ENOMEM: u64 = 12;
            let (pp, al, size) = (a[1], a[2], a[3]);
            if al == 0 || !al.is_power_of_two() || al % 8 != 0 {
                return EINVAL;
            }
            let p = do_alloc(size, al, AllocKind::Malloc, &ips, false);
            if p == 0 {
                return ENOMEM;
            }
            if vg_core::aspace::aspace().is_client_writable(pp, 8) {
                // SAFETY: 8 writable bytes of client memory (checked above).
                unsafe { core::ptr::write_unaligned(pp as *mut u64, p) };
                st().shadow.make_defined(pp, 8);
            }
            0
        }
        "malloc_usable_size" => st().heap.live.get(&a[1]).map_or(0, |b| b.size),
        _ => 0,
    }
}

/// A replacement found its source and destination overlapping: `a` is (code, replacement
/// entry, destination, source, length or 0).
fn overlap(a: &[u64; 6]) {
    let Some(r) = st().strmem.replacement_at(a[1]) else { return };
    let ips = replacement_ips(a[1], strmem::OVERLAP_FRAME);
    report(McError::Overlap { func: r.name, dst: a[2], src: a[3], len: a[4] }, &ips);
}

fn realloc(p: u64, size: u64, ips: &[u64]) -> u64 {
    if p == 0 {
        return do_alloc(size, 0, AllocKind::Malloc, ips, false);
    }
    if size == 0 {
        do_free(p, AllocKind::Malloc, ips);
        return 0;
    }
    let Some(old) = st().heap.live.get(&p).copied() else {
        let desc = describe_addr(p);
        report(McError::Free { what: "free() / delete / delete[] / realloc()", addr: p, desc }, ips);
        return 0;
    };
    let q = do_alloc(size, 0, AllocKind::Malloc, ips, false);
    if q == 0 {
        return 0;
    }
    let n = old.size.min(size);
    // SAFETY: both payloads are client memory of this heap, at least n bytes, disjoint.
    unsafe { core::ptr::copy_nonoverlapping(p as *const u8, q as *mut u8, n as usize) };
    let s = st();
    s.shadow.copy_range(p, q, n);
    if let Some(o) = s.origins.as_mut() {
        o.mem.copy_range(p, q, n);
    }
    do_free(p, old.kind, ips);
    q
}

// ---------------------------------------------------------------------------------------------
// The tool.

/// The memcheck tool.
#[derive(Default)]
pub struct Memcheck {
    opts: McOptions,
    started: bool,
}

impl Tool for Memcheck {
    const NAME: &'static str = "memcheck";
    const BANNER: &'static str = "Memcheck, a memory error detector";
    const COPYRIGHT: &'static str = "Copyright (C) the valgrind-rs authors; GNU GPL'd.";
    const XML_OUTPUT: bool = true;
    const RUN_FREERES: bool = true;
    const MAX_INSNS: usize = 20;

    fn process_option(&mut self, arg: &str) -> OptionResult {
        match self.opts.parse(arg) {
            None => OptionResult::Unknown,
            Some(Ok(())) => OptionResult::Taken,
            Some(Err(why)) => OptionResult::Bad(why),
        }
    }

    fn usage(&self) -> &'static str {
        options::USAGE
    }

    fn post_options(&mut self) {
        let ropts = vg_core::reportopts::get();
        let mut em = ErrorManager::new(ropts.error_options());
        // Valgrind's default suppressions (the installed Valgrind's file) come first, as they do
        // in Valgrind.
        let default = DEFAULT_SUPP.iter().find(|f| vg_core::syscall::stat(f).is_ok()).map(|f| String::from(*f));
        for file in default.iter().chain(ropts.suppressions.iter()) {
            if let Some(bytes) = vg_core::debuginfo::FileReader::read_file(&mut vg_core::stacks::SysFileReader, file)
                && let Ok(supps) = vg_core::errors::parse_suppressions(&String::from_utf8_lossy(&bytes), file)
            {
                em.add_suppressions(supps);
            }
        }
        let kinds = Kinds::register(&mut em);
        let state = State {
            shadow: ShadowMem::new(),
            heap: Heap::new(self.opts.heap),
            em,
            kinds,
            ectx: ExeContextTable::new(),
            opts: self.opts,
            stub_page: 0,
            strmem: StrMem::default(),
            creq: clientreq::ClientReqs::default(),
            pools: mempool::Pools::default(),
            origins: self.opts.track_origins.then(origins::OriginState::default),
        };
        // SAFETY: before the guest starts; nothing else uses the state yet.
        unsafe { *STATE.0.get() = Some(state) };
        vg_core::tool::set_mem_events(&EVENTS);
        vg_linux::observer::set(&OBSERVER);
        xml::start();
    }

    fn instrument(&mut self, sb: Superblock, layout: &StateLayout) -> Superblock {
        if !self.started {
            self.started = true;
            start_up();
        }
        let mut sb = sb;
        st().strmem.redirect(&mut sb);
        let cfg = translate::Config {
            state_size: layout.state_size,
            sp_offset: Amd64::SP_OFFSET,
            fp_offset: vg_amd64_guest::state::off_gpr(vg_amd64_guest::state::RBP),
            expensive_cmp: self.opts.expensive_cmp,
            undef_errors: self.opts.undef_value_errors,
            origins: self.opts.track_origins.then(origins::helpers),
        };
        translate::instrument(sb, &cfg, &helpers())
    }

    fn handle_client_request(&mut self, args: &[u64; 6]) -> Option<u64> {
        if !state_ready() {
            return None;
        }
        let code = args[0];
        if (STUB_BASE..STUB_BASE + REPLACED.len() as u64).contains(&code) {
            return Some(heap_call((code - STUB_BASE) as usize, args));
        }
        if code == strmem::OVERLAP_REQ {
            overlap(args);
            return Some(0);
        }
        if code == clientreq::code::MAKE_MEM_UNDEFINED && st().origins.is_some() {
            let ips = vg_core::stacks::trace_ips(regs_at(current_pc()));
            let ctx = st().ectx.intern(&ips);
            origins::tag_range(args[1], args[2], origins::make_tag(ctx, origins::OriginKind::Client));
        }
        if let Some(r) = leak::client_request(args) {
            return Some(r);
        }
        clientreq::handle(args)
    }

    fn fini(&mut self, _exit_code: i32) {
        if state_ready() {
            leak::at_exit();
        }
    }
}

/// Where the installed Valgrind keeps its default suppressions.
const DEFAULT_SUPP: &[&str] = &["/usr/libexec/valgrind/default.supp", "/usr/lib/x86_64-linux-gnu/valgrind/default.supp"];

/// A count with thousands separators, as Valgrind prints them.
pub fn commas(n: u64) -> String {
    let d = format!("{n}");
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(commas(0), "0");
        assert_eq!(commas(999), "999");
        assert_eq!(commas(1000), "1,000");
        assert_eq!(commas(20_000_000), "20,000,000");
    }

    #[test]
    fn options_parse_and_reject() {
        let mut m = Memcheck::default();
        assert_eq!(m.process_option("--leak-check=full"), OptionResult::Taken);
        assert_eq!(m.opts.leak_check, LeakCheck::Full);
        assert_eq!(m.process_option("--redzone-size=64"), OptionResult::Taken);
        assert_eq!(m.opts.heap.redzone, 64);
        // A bad choice among fixed words is an unknown option, as in Valgrind.
        assert_eq!(m.process_option("--leak-check=maybe"), OptionResult::Unknown);
        assert_eq!(m.process_option("--nonsense=1"), OptionResult::Unknown);
        assert_eq!(m.process_option("--malloc-fill=0xAB"), OptionResult::Taken);
        assert_eq!(m.opts.malloc_fill, Some(0xab));
    }
}

#[cfg(test)]
mod supp_tests {
    extern crate std;

    #[test]
    fn installed_default_suppressions_parse() {
        let Some(text) = super::DEFAULT_SUPP.iter().find_map(|f| std::fs::read_to_string(f).ok()) else { return };
        let supps = vg_core::errors::parse_suppressions(&text, "default.supp").expect("default.supp parses");
        assert!(supps.len() > 50, "{}", supps.len());
    }
}
