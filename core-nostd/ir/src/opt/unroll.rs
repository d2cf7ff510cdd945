//! Unrolling of superblocks that loop back to their own entry.
//!
//! A small loop translates to a block that jumps back to itself, so every iteration pays a
//! block transition: the event check, and guest registers stored at the end and loaded again at
//! the start, a store-to-load chain through memory that bounds the loop's speed. Copying the
//! body a few times into one block lets the optimiser forward each copy's `Put`s to the next
//! copy's `Get`s, so those values stay in host registers, and pays the transition once per
//! several iterations (VEX does the same).
//!
//! Two shapes qualify, where `E` is the block's entry (its first instruction's address):
//! - the block ends with a plain jump to `E`;
//! - a side exit jumps to `E` and the instruction after it falls through to `F`: the block is cut
//!   after that exit, whose guard is inverted to leave for `F`, and then ends with a jump to `E`.
//!
//! Uses only the IR definitions.

use alloc::vec::Vec;

use crate::{Atom, Const, Expr, JumpKind, Stmt, Superblock, Temp, Ty, Unop};

/// Statement budget of the unrolled block (the body is copied 2, 4 or 8 times within it).
const UNROLL_BUDGET: usize = 120;

/// Unroll `sb` if it is a small loop on its own entry; `None` if it is not one.
pub fn unroll_self_loop(sb: &Superblock) -> Option<Superblock> {
    let entry = match sb.stmts.first() {
        Some(Stmt::IMark { addr, .. }) => *addr,
        _ => return None,
    };
    // Already unrolled (or a loop of one instruction jumping into itself mid-block): leave it.
    let entry_marks = sb.stmts.iter().filter(|s| matches!(s, Stmt::IMark { addr, .. } if *addr == entry)).count();
    if entry_marks != 1 {
        return None;
    }
    let (body_len, exit_to) = loop_shape(sb, entry)?;
    let body = &sb.stmts[..body_len];
    let copies = match body.len() {
        n if n * 8 <= UNROLL_BUDGET => 8,
        n if n * 4 <= UNROLL_BUDGET => 4,
        n if n * 2 <= UNROLL_BUDGET => 2,
        _ => return None,
    };
    // A body that calls a helper with side effects or contains an atomic is left alone: copies
    // would only add calls.
    if body.iter().any(|s| matches!(s, Stmt::Dirty(_) | Stmt::Cas { .. })) {
        return None;
    }

    let mut out = Superblock::new(sb.pc_offset);
    out.temps = sb.temps.clone();
    for _ in 0..copies {
        copy_body(&mut out, sb, body, exit_to, entry);
    }
    out.next = Atom::u64(entry);
    out.jump = JumpKind::Boring;
    Some(out)
}

/// The body's length in statements and, for the side-exit shape, where the loop is left.
fn loop_shape(sb: &Superblock, entry: u64) -> Option<(usize, Option<u64>)> {
    if sb.jump == JumpKind::Boring && sb.next == Atom::u64(entry) {
        // A side exit back to the entry inside this shape is fine: it stays an exit.
        return Some((sb.stmts.len(), None));
    }
    let i = sb.stmts.iter().position(|s| {
        matches!(s, Stmt::Exit { dst, kind: JumpKind::Boring, .. } if *dst == entry)
    })?;
    // The fall-through address: the next instruction, or the block's constant end.
    let fall = match sb.stmts[i + 1..].iter().find_map(|s| match s {
        Stmt::IMark { addr, .. } => Some(*addr),
        _ => None,
    }) {
        Some(a) => a,
        None => sb.next.as_const()?.bits(),
    };
    Some((i + 1, Some(fall)))
}

/// Append one copy of `body` with fresh temps; in the side-exit shape the exit back to `entry`
/// becomes an exit to `fall` on the inverted guard.
fn copy_body(out: &mut Superblock, sb: &Superblock, body: &[Stmt], fall: Option<u64>, entry: u64) {
    let mut rename: Vec<Option<Temp>> = alloc::vec![None; sb.temps.len()];
    let map = |rename: &Vec<Option<Temp>>, a: &mut Atom| {
        if let Atom::Tmp(t) = *a
            && let Some(n) = rename[t.0 as usize]
        {
            *a = Atom::Tmp(n);
        }
    };
    for s in body {
        let mut s = s.clone();
        s.map_atoms(|a| map(&rename, a));
        if let Some(t) = s.defined_temp() {
            let n = out.new_temp(sb.temp_ty(t));
            rename[t.0 as usize] = Some(n);
            match &mut s {
                Stmt::WrTmp { dst, .. } => *dst = n,
                Stmt::Dirty(d) => d.dst = Some(n),
                Stmt::Cas { old, .. } => *old = n,
                _ => {}
            }
        }
        if let (Some(fall), Stmt::Exit { guard, dst, kind: JumpKind::Boring }) = (fall, &s)
            && *dst == entry
        {
            let inverted = match guard {
                Atom::Const(Const::I1(b)) => Atom::Const(Const::I1(!b)),
                g => {
                    let t = out.new_temp(Ty::I1);
                    out.stmts.push(Stmt::WrTmp { dst: t, e: Expr::Unop { op: Unop::Not(Ty::I1), a: *g } });
                    Atom::Tmp(t)
                }
            };
            out.stmts.push(Stmt::Exit { guard: inverted, dst: fall, kind: JumpKind::Boring });
            continue;
        }
        out.stmts.push(s);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::Binop;

    /// `top: r0 += 1; if (r0 != 10) goto top;` then more code.
    fn side_exit_loop() -> Superblock {
        let mut sb = Superblock::new(128);
        sb.imark(0x1000, 4);
        let r = sb.get(0, Ty::I64);
        let r1 = sb.binop(Binop::Add(Ty::I64), r, Atom::u64(1));
        sb.put(0, r1);
        sb.imark(0x1004, 2);
        let c = sb.binop(Binop::CmpNE(Ty::I64), r1, Atom::u64(10));
        sb.exit(c, 0x1000, JumpKind::Boring);
        sb.imark(0x1006, 3);
        sb.put(8, Atom::u64(7));
        sb.next = Atom::u64(0x2000);
        sb
    }

    #[test]
    fn side_exit_loop_is_cut_inverted_and_copied() {
        let sb = side_exit_loop();
        let u = unroll_self_loop(&sb).expect("a loop");
        let exits: Vec<_> = u.stmts.iter().filter(|s| matches!(s, Stmt::Exit { .. })).collect();
        assert_eq!(exits.len(), 8, "{u}");
        for e in exits {
            assert!(matches!(e, Stmt::Exit { dst: 0x1006, .. }), "{u}");
        }
        assert_eq!(u.next, Atom::u64(0x1000));
        assert!(!u.stmts.iter().any(|s| matches!(s, Stmt::Put { off: 8, .. })), "code after the loop is cut");
        assert!(crate::opt::typecheck(&u).is_ok(), "{u}");
        assert!(unroll_self_loop(&u).is_none(), "unrolled blocks are not unrolled again");
    }

    #[test]
    fn unrolled_loop_computes_the_same() {
        use crate::interp::{HostMemory, run};
        let sb = side_exit_loop();
        let u = unroll_self_loop(&sb).unwrap();
        // Run both to completion from the same state, re-entering at the entry like the
        // dispatcher does, and compare the register and the exit address.
        for start in [0u64, 3, 9, 5, 2] {
            let mut results = Vec::new();
            for b in [&sb, &u] {
                let mut state = alloc::vec![0u8; 512];
                state[..8].copy_from_slice(&start.to_le_bytes());
                let mut pc;
                loop {
                    let (next, _) = run(b, &mut state, &mut HostMemory);
                    pc = next;
                    if pc != 0x1000 {
                        break;
                    }
                }
                results.push((u64::from_le_bytes(state[..8].try_into().unwrap()), pc));
            }
            assert_eq!(results[0], (10, 0x2000), "original from {start}");
            assert_eq!(results[1], (10, 0x1006), "unrolled from {start}");
        }
    }

    #[test]
    fn blocks_that_do_not_loop_are_left_alone() {
        let mut sb = Superblock::new(128);
        sb.imark(0x1000, 4);
        sb.put(0, Atom::u64(1));
        sb.next = Atom::u64(0x3000);
        assert!(unroll_self_loop(&sb).is_none());
    }
}
