//! Valgrind's special instruction sequences (`valgrind.h`, amd64): a preamble that is a no-op
//! on a real CPU (`rol rdi` by 3, 13, 61 and 51: 128 bits in all) followed by a marker
//! `xchg` that says what the synthetic CPU must do:
//!
//! - `xchg rbx,rbx`: client request — the core services the request whose arguments `rax`
//!   points to and leaves the result in `rdx` (a `ClientReq` block end);
//! - `xchg rcx,rcx`: `rax` gets the guest's `NRADDR` (the original of a wrapped function);
//! - `xchg rdx,rdx`: call `*rax` without redirection (a `NoRedir` block end);
//! - `xchg rdi,rdi`: IR injection, which this front end does not support (`NoDecode`).
//!
//! The whole sequence is one guest "instruction" (one `IMark`) so that a block never starts in
//! its middle.

use super::Lifter;
use crate::state::*;
use vg_core::arch::CodeSource;
use vg_ir::*;

/// `rol rdi,3; rol rdi,13; rol rdi,61; rol rdi,51` (REX.W C1 /0 ib).
const PREAMBLE: [u8; 16] = [
    0x48, 0xc1, 0xc7, 0x03, 0x48, 0xc1, 0xc7, 0x0d, 0x48, 0xc1, 0xc7, 0x3d, 0x48, 0xc1, 0xc7, 0x33,
];
/// Preamble plus the 3-byte marker.
pub(crate) const SEQ_LEN: u64 = 19;

/// What the marker after the preamble asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    ClientRequest,
    GetNrAddr,
    CallNoRedir,
    InjectIr,
}

/// The special sequence starting at `bytes`, if there is one.
pub(crate) fn recognise(bytes: &[u8]) -> Option<Special> {
    if bytes.len() < SEQ_LEN as usize || bytes[..16] != PREAMBLE || bytes[16..18] != [0x48, 0x87] {
        return None;
    }
    Some(match bytes[18] {
        0xdb => Special::ClientRequest,
        0xc9 => Special::GetNrAddr,
        0xd2 => Special::CallNoRedir,
        0xff => Special::InjectIr,
        _ => return None,
    })
}

/// What the block driver does after a special sequence.
pub(crate) enum SpecialNext {
    /// Continue lifting at this address.
    Continue(u64),
    /// The block is complete (`next`/`jump` are set).
    Ended,
}

/// Lifts the special sequence at `pc`, if there is one.
pub(crate) fn lift_special(l: &mut Lifter, code: &dyn CodeSource, pc: u64) -> Option<SpecialNext> {
    let kind = recognise(code.code(pc, SEQ_LEN as usize))?;
    let after = pc + SEQ_LEN;
    if kind == Special::InjectIr {
        l.sb.next = Atom::u64(pc);
        l.sb.jump = JumpKind::NoDecode;
        return Some(SpecialNext::Ended);
    }
    l.sb.imark(pc, SEQ_LEN as u32);
    l.flags = None;
    match kind {
        Special::ClientRequest => {
            l.sb.next = Atom::u64(after);
            l.sb.jump = JumpKind::ClientReq;
            Some(SpecialNext::Ended)
        }
        Special::GetNrAddr => {
            let v = l.sb.get(OFF_NRADDR, Ty::I64);
            l.sb.put(off_gpr(RAX), v);
            Some(SpecialNext::Continue(after))
        }
        Special::CallNoRedir => {
            let target = l.sb.get(off_gpr(RAX), Ty::I64);
            let sp = l.sb.get(off_gpr(RSP), Ty::I64);
            let sp = l.sb.binop(Binop::Sub(Ty::I64), sp, Atom::u64(8));
            l.sb.put(off_gpr(RSP), sp);
            l.sb.store(sp, Atom::u64(after));
            l.sb.next = target;
            l.sb.jump = JumpKind::NoRedir;
            Some(SpecialNext::Ended)
        }
        Special::InjectIr => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(marker: u8) -> [u8; 19] {
        let mut b = [0u8; 19];
        b[..16].copy_from_slice(&PREAMBLE);
        b[16..].copy_from_slice(&[0x48, 0x87, marker]);
        b
    }

    struct Bytes(u64, alloc::vec::Vec<u8>);
    impl CodeSource for Bytes {
        fn code(&self, addr: u64, max: usize) -> &[u8] {
            let off = (addr - self.0) as usize;
            let end = (off + max).min(self.1.len());
            &self.1[off.min(end)..end]
        }
    }

    fn lift(code: &[u8]) -> Superblock {
        let limits = vg_core::arch::LiftLimits { max_insns: 10, chase_jumps: true };
        super::super::lift_block(&Bytes(0x1000, code.to_vec()), 0x1000, limits)
    }

    fn imarks(sb: &Superblock) -> alloc::vec::Vec<(u64, u32)> {
        sb.stmts.iter().filter_map(|s| if let Stmt::IMark { addr, len } = s { Some((*addr, *len)) } else { None }).collect()
    }

    #[test]
    fn lifts_the_sequences() {
        // A request ends the block after the sequence.
        let sb = lift(&seq(0xdb));
        assert_eq!((sb.jump, sb.next), (JumpKind::ClientReq, Atom::u64(0x1000 + SEQ_LEN)));
        assert_eq!(imarks(&sb), [(0x1000, 19)]);
        // NRADDR into rax, then lifting goes on (a ret ends the block).
        let mut code = seq(0xc9).to_vec();
        code.push(0xc3);
        let sb = lift(&code);
        assert_eq!(imarks(&sb), [(0x1000, 19), (0x1013, 1)]);
        assert!(sb.stmts.iter().any(|s| matches!(s, Stmt::Put { off, .. } if *off == off_gpr(RAX))));
        assert_eq!(sb.jump, JumpKind::Ret);
        // The no-redirection call pushes the return address and leaves with NoRedir.
        let sb = lift(&seq(0xd2));
        assert_eq!(sb.jump, JumpKind::NoRedir);
        assert!(sb.stmts.iter().any(|s| matches!(s, Stmt::Store { val, .. } if *val == Atom::u64(0x1013))));
        // IR injection is not supported: undecodable at the sequence.
        let sb = lift(&seq(0xff));
        assert_eq!((sb.jump, sb.next), (JumpKind::NoDecode, Atom::u64(0x1000)));
    }

    #[test]
    fn recognises_the_markers() {
        assert_eq!(recognise(&seq(0xdb)), Some(Special::ClientRequest));
        assert_eq!(recognise(&seq(0xc9)), Some(Special::GetNrAddr));
        assert_eq!(recognise(&seq(0xd2)), Some(Special::CallNoRedir));
        assert_eq!(recognise(&seq(0xff)), Some(Special::InjectIr));
        // xchg rsi,rsi is no marker; a truncated or altered preamble is ordinary code.
        assert_eq!(recognise(&seq(0xf6)), None);
        assert_eq!(recognise(&seq(0xdb)[..18]), None);
        let mut b = seq(0xdb);
        b[3] = 0x04;
        assert_eq!(recognise(&b), None);
    }
}
