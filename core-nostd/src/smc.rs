//! Self-modifying and generated code (`--smc-check=`). A translation of code that may change
//! under it starts with a self-check: the guest bytes it was made from are hashed again on
//! every entry and, if they differ, the block leaves through a `JumpKind::InvalICache` exit back
//! to its own entry; the scheduler then discards it and translates the new code. Which code is
//! checked depends on the mode: none; only code on the main stack (`stack`); all code (`all`);
//! all code not backed by a file (`all-non-file`, the default: JIT buffers, heap, stacks).
//!
//! Code that goes away or stops being executable (munmap, mprotect, mremap) is handled apart:
//! the address-space manager queues the ranges and the scheduler discards their translations
//! after the system call.
//!
//! Uses: `aspace` (what kind of mapping code lives in), `options`, `vg_ir`.

use alloc::vec::Vec;

use crate::options::SmcCheck;
use vg_ir::{Atom, Binop, Callee, JumpKind, Stmt, Superblock, Ty};

/// FNV-1a over guest code: cheap, and any single-byte change alters it.
pub extern "C" fn code_hash(addr: u64, len: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    // SAFETY: the range was readable client code when the block was translated; the check runs
    // only while the translation is live, and an unmapping discards the translation first.
    let bytes = unsafe { core::slice::from_raw_parts(addr as *const u8, len as usize) };
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn hash_callee() -> Callee {
    Callee { name: "smc_code_hash", addr: code_hash as extern "C" fn(u64, u64) -> u64 as usize }
}

/// Guest code ranges known never to change although they are not file-backed (a tool's own
/// code pages in the client: replacement functions, stubs).
static NEVER_CHANGES: spin::Mutex<Vec<(u64, u64)>> = spin::Mutex::new(Vec::new());

/// Declare `[addr, addr+len)` code that never changes: no self-check for it in any mode but
/// `all`.
pub fn never_changes(addr: u64, len: u64) {
    NEVER_CHANGES.lock().push((addr, len));
}

/// Whether code at `addr` must be checked under `mode`.
pub fn needs_check(mode: SmcCheck, addr: u64) -> bool {
    if mode != SmcCheck::All && NEVER_CHANGES.lock().iter().any(|&(a, l)| addr >= a && addr - a < l) {
        return false;
    }
    match mode {
        SmcCheck::None => false,
        SmcCheck::All => true,
        SmcCheck::AllNonFile => !crate::aspace::is_file_backed(addr),
        SmcCheck::Stack => crate::loader::client().is_some_and(|c| addr >= c.stack_low && addr < c.stack_top),
    }
}

/// The guest byte ranges a superblock was made from (its IMarks, adjacent ones merged).
fn code_ranges(sb: &Superblock) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for s in &sb.stmts {
        if let Stmt::IMark { addr, len } = *s {
            match ranges.last_mut() {
                Some((a, l)) if *a + *l == addr => *l += len as u64,
                _ => ranges.push((addr, len as u64)),
            }
        }
    }
    ranges
}

/// Prefix `sb` (translated from `entry`) with the self-check of every code range it covers.
pub fn add_self_check(sb: Superblock, entry: u64) -> Superblock {
    let ranges = code_ranges(&sb);
    let mut out = Superblock::new(sb.pc_offset);
    out.temps = sb.temps;
    for (addr, len) in ranges {
        let now = out.ccall(hash_callee(), Ty::I64, alloc::vec![Atom::u64(addr), Atom::u64(len)]);
        let changed = out.binop(Binop::CmpNE(Ty::I64), now, Atom::u64(code_hash(addr, len)));
        out.exit(changed, entry, JumpKind::InvalICache);
    }
    out.stmts.extend(sb.stmts);
    out.next = sb.next;
    out.jump = sb.jump;
    out
}
