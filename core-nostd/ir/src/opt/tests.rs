//! Tests of the optimiser: each pass on hand-built blocks (checked by their printed IR), and
//! random blocks run through the IR interpreter before and after optimisation.

extern crate std;

use super::*;
use crate::{Binop, Callee, Const, Dirty, JumpKind};
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use std::collections::BTreeMap;

const PC: u32 = 128;
const SP: u32 = 32;
/// The frame pointer's slot: kept exact at memory accesses, like the stack pointer.
const FP: u32 = 104;
const CC_OP: u32 = 136;
const CC_DEP1: u32 = 144;
const CC_DEP2: u32 = 152;
const CFG: OptConfig = OptConfig {
    pc_offset: PC,
    sp_offset: SP,
    fp_offset: FP,
    state_size: 1024,
};
const I64: Ty = Ty::I64;

/// The optimised block's statements as text, then the block end.
fn opt_lines(sb: Superblock) -> Vec<String> {
    assert_eq!(typecheck(&sb), Ok(()), "test input is ill-typed:\n{sb}");
    let sb = optimise(sb, &CFG);
    let mut v: Vec<String> = sb.stmts.iter().map(|s| s.to_string()).collect();
    v.push(alloc::format!("next {}; {}", sb.next, sb.jump));
    v
}

fn k64(v: u64) -> Atom {
    Atom::u64(v)
}

extern "C" fn helper(a: u64, b: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    a.wrapping_mul(31) ^ b
}

fn calc() -> Callee {
    Callee {
        name: "calc",
        addr: helper as *const () as usize,
    }
}

#[test]
fn folds_constants_and_propagates_copies() {
    let mut sb = Superblock::new(PC);
    let a = sb.binop(Binop::Add(I64), k64(2), k64(3));
    let b = sb.binop(Binop::Shl(I64), a, Atom::u8(1));
    let c = sb.get(0, I64);
    let d = sb.assign(Expr::Atom(c));
    let e = sb.binop(Binop::Add(I64), d, b);
    sb.put(0, e);
    sb.next = b;
    assert_eq!(
        opt_lines(sb),
        [
            "t2 = GET:I64(0)",
            "t4 = Add64(t2,0xa:I64)",
            "PUT(0) = t4",
            "next 0xa:I64; Boring"
        ]
    );
}

#[test]
fn applies_algebraic_identities() {
    let mut sb = Superblock::new(PC);
    let x = sb.get(0, I64); // t0
    let z1 = sb.binop(Binop::Xor(I64), x, x);
    let z2 = sb.binop(Binop::Sub(I64), x, x);
    let z3 = sb.binop(Binop::And(I64), x, z1);
    let s = sb.binop(Binop::Or(I64), z2, z3); // 0 | 0 -> 0
    let y = sb.binop(Binop::Add(I64), x, s); // x + 0 -> x
    sb.put(8, y);
    let eq = sb.binop(Binop::CmpEQ(I64), y, x); // true
    let i = sb.ite(eq, x, k64(7)); // x
    sb.put(16, i);
    // Trunc(Zext(b)) -> b; Zext(Zext(b)) -> one Zext; Zext(Trunc(x)) -> And.
    let b = sb.get(40, Ty::I8); // t8
    let w = sb.unop(Unop::Zext(Ty::I8, Ty::I32), b);
    let n = sb.unop(Unop::Trunc(Ty::I32, Ty::I8), w);
    sb.put(48, n);
    let ww = sb.unop(Unop::Zext(Ty::I32, I64), w);
    sb.put(56, ww);
    let lo = sb.unop(Unop::Trunc(I64, Ty::I32), x);
    let lz = sb.unop(Unop::Zext(Ty::I32, I64), lo);
    sb.put(64, lz);
    // (x - 8) - 8 -> x - 16; (x + 4) - 4 -> x.
    let p = sb.binop(Binop::Sub(I64), x, k64(8));
    let q = sb.binop(Binop::Sub(I64), p, k64(8));
    sb.put(72, q);
    let r = sb.binop(Binop::Add(I64), x, k64(4));
    let r2 = sb.binop(Binop::Sub(I64), r, k64(4));
    sb.put(80, r2);
    // Constants move right.
    let m = sb.binop(Binop::Mul(I64), k64(3), x);
    sb.put(88, m);
    assert_eq!(
        opt_lines(sb),
        [
            "t0 = GET:I64(0)",
            "PUT(8) = t0",
            "PUT(16) = t0",
            "t8 = GET:I8(40)",
            "PUT(48) = t8",
            "t11 = 8Uto64(t8)",
            "PUT(56) = t11",
            "t13 = And64(t0,0xffffffff:I64)",
            "PUT(64) = t13",
            "t15 = Sub64(t0,0x10:I64)",
            "PUT(72) = t15",
            "PUT(80) = t0",
            "t18 = Mul64(t0,0x3:I64)",
            "PUT(88) = t18",
            "next 0x0:I64; Boring",
        ]
    );
}

#[test]
fn forwards_known_guest_state_to_gets() {
    let mut sb = Superblock::new(PC);
    let v = sb.get(200, I64); // t0 stays: nothing known yet
    let a = sb.binop(Binop::Add(I64), v, k64(1)); // t1
    sb.put(16, a);
    let g = sb.get(16, I64); // -> t1
    let lo = sb.get(16, Ty::I32); // -> 64to32(t1)
    let again = sb.get(200, I64); // -> t0 (a Get is known too)
    sb.put(17, Atom::u8(0)); // overlaps 16..24: kills it
    let g2 = sb.get(16, I64); // stays
    sb.stmts.push(Stmt::Dirty(Box::new(Dirty {
        callee: calc(),
        args: Vec::new(),
        pass_state: true,
        guard: None,
        dst: None,
        reads_state: Vec::new(),
        writes_state: alloc::vec![(196, 8)],
        reads_mem: None,
        writes_mem: None,
    })));
    let g3 = sb.get(200, I64); // stays: the helper wrote it
    let sum = sb.binop(Binop::Add(I64), g, again);
    let sum = sb.binop(Binop::Add(I64), sum, g2);
    let sum = sb.binop(Binop::Add(I64), sum, g3);
    sb.put(0, sum);
    sb.put(8, lo);
    assert_eq!(
        opt_lines(sb),
        [
            "t0 = GET:I64(200)",
            "t1 = Add64(t0,0x1:I64)",
            "PUT(16) = t1",
            "t3 = 64to32(t1)",
            "PUT(17) = 0x0:I8",
            "t5 = GET:I64(16)",
            "DIRTY WrFX-gst(196,8) ::: calc(BBPTR)",
            "t6 = GET:I64(200)",
            "t7 = Add64(t1,t0)",
            "t8 = Add64(t7,t5)",
            "t9 = Add64(t8,t6)",
            "PUT(0) = t9",
            "PUT(8) = t3",
            "next 0x0:I64; Boring",
        ]
    );
}

#[test]
fn put_of_the_value_already_there_is_dropped() {
    let mut sb = Superblock::new(PC);
    let v = sb.get(8, I64);
    sb.put(8, v);
    sb.put(16, k64(5));
    sb.put(16, k64(5));
    assert_eq!(opt_lines(sb), ["PUT(16) = 0x5:I64", "next 0x0:I64; Boring"]);
}

/// Two flag-setting instructions: the first's thunk is dead; the branch reads the second's.
#[test]
fn removes_the_flag_thunk() {
    let mut sb = Superblock::new(PC);
    sb.imark(0x1000, 3);
    sb.put(PC, k64(0x1000));
    let a = sb.get(0, I64);
    let r = sb.binop(Binop::Sub(I64), a, k64(1));
    sb.put(0, r);
    sb.put(CC_OP, k64(3));
    sb.put(CC_DEP1, a);
    sb.put(CC_DEP2, k64(1));
    sb.imark(0x1003, 3);
    sb.put(PC, k64(0x1003));
    let b = sb.get(8, I64);
    let s = sb.binop(Binop::Add(I64), b, r);
    sb.put(8, s);
    sb.put(CC_OP, k64(4));
    sb.put(CC_DEP1, b);
    sb.put(CC_DEP2, r);
    sb.imark(0x1006, 2);
    sb.put(PC, k64(0x1006));
    let op = sb.get(CC_OP, I64);
    let d1 = sb.get(CC_DEP1, I64);
    let d2 = sb.get(CC_DEP2, I64);
    let c = sb.ccall(calc(), I64, alloc::vec![op, d1, d2]);
    let g = sb.unop(Unop::Trunc(I64, Ty::I1), c);
    sb.exit(g, 0x2000, JumpKind::Boring);
    sb.next = k64(0x1008);
    assert_eq!(
        opt_lines(sb),
        [
            "------ IMark(0x1000, 3) ------",
            "t0 = GET:I64(0)",
            "t1 = Sub64(t0,0x1:I64)",
            "PUT(0) = t1",
            "------ IMark(0x1003, 3) ------",
            "t2 = GET:I64(8)",
            "t3 = Add64(t2,t1)",
            "PUT(8) = t3",
            "PUT(136) = 0x4:I64",
            "PUT(144) = t2",
            "PUT(152) = t1",
            "------ IMark(0x1006, 2) ------",
            "t7 = calc(0x4:I64,t2,t1):I64",
            "t8 = 64to1(t7)",
            "if (t8) { PUT(pc) = 0x2000:I64; exit-Boring }",
            "next 0x1008:I64; Boring",
        ]
    );
}

#[test]
fn divisions_keep_the_sp_but_not_the_pc() {
    // The sp Put before a division survives (a fault there sees the sp); the pc's does not (the
    // core finds a fault's pc from the host instruction); other registers' Puts do not either.
    let mut sb = Superblock::new(PC);
    let d = sb.get(0, I64);
    sb.put(PC, k64(0x10));
    sb.put(SP, k64(0x7000));
    sb.put(16, k64(1));
    let n = sb.binop(Binop::HiLo(I64), k64(0), k64(100));
    let qr = sb.binop(Binop::DivModU(I64), n, d);
    let q = sb.unop(Unop::Trunc(Ty::I128, I64), qr);
    sb.put(PC, k64(0x13));
    sb.put(SP, k64(0x7008));
    sb.put(16, q);
    sb.put(PC, k64(0x16));
    sb.next = k64(0x20);
    assert_eq!(
        opt_lines(sb),
        [
            "t0 = GET:I64(0)",
            "PUT(32) = 0x7000:I64",
            "t2 = DivModU128to64(0x64:I128,t0)",
            "t3 = 128to64(t2)",
            "PUT(32) = 0x7008:I64",
            "PUT(16) = t3",
            "next 0x20:I64; Boring",
        ]
    );
}

#[test]
fn frame_pointer_is_exact_at_memory_accesses() {
    // A prologue's frame pointer, overwritten later in the block, is still stored before a
    // load that may fault (the unwinder reads it); another register's value is not.
    let mut sb = Superblock::new(PC);
    let g = sb.get(0, Ty::I64);
    sb.put(FP, k64(0x7000));
    sb.put(16, k64(1));
    let v = sb.load(Ty::I64, g);
    sb.put(8, v);
    sb.put(FP, k64(0x8000));
    sb.put(16, k64(2));
    let out = opt_lines(sb);
    assert!(out.iter().any(|l| l == "PUT(104) = 0x7000:I64"), "{out:?}");
    assert!(!out.iter().any(|l| l == "PUT(16) = 0x1:I64"), "{out:?}");
}

#[test]
fn widened_booleans_compared_with_zero_are_the_boolean() {
    // Memcheck's "any bit undefined" idiom: CmpNE(Sext1(c), 0) is c itself.
    let mut sb = Superblock::new(PC);
    let g = sb.get(0, Ty::I64);
    let c = sb.binop(Binop::CmpNE(Ty::I64), g, k64(0));
    let w = sb.sext(c, Ty::I64);
    let back = sb.binop(Binop::CmpNE(Ty::I64), w, k64(0));
    let n = sb.zext(back, Ty::I64);
    sb.put(8, n);
    let out = opt_lines(sb);
    assert!(!out.iter().any(|l| l.contains("1Sto64")), "{out:?}");
}

#[test]
fn barriers_keep_puts_alive() {
    let mut sb = Superblock::new(PC);
    let g = sb.get(0, Ty::I64);
    let c = sb.binop(Binop::CmpEQ(I64), g, k64(0));
    // Before an exit: all kept but the pc, which the exit writes and which is written again.
    sb.put(8, k64(1));
    sb.put(PC, k64(0x10));
    sb.exit(c, 0x99, JumpKind::Boring);
    sb.put(8, k64(2));
    sb.put(PC, k64(0x11));
    // Before a store: the sp kept, the pc (found from the host code) and others not.
    sb.put(SP, k64(0x7000));
    sb.put(16, k64(3));
    sb.put(PC, k64(0x12));
    sb.store(g, k64(0));
    sb.put(SP, k64(0x7008));
    sb.put(16, k64(4));
    sb.put(PC, k64(0x13));
    // A dirty helper reading 24..32 keeps that Put only; a read of a part keeps a whole Put.
    sb.put(24, k64(5));
    sb.put(40, k64(5));
    sb.put(48, k64(6));
    sb.stmts.push(Stmt::Dirty(Box::new(Dirty {
        callee: calc(),
        args: Vec::new(),
        pass_state: true,
        guard: None,
        dst: None,
        reads_state: alloc::vec![(24, 8)],
        writes_state: Vec::new(),
        reads_mem: None,
        writes_mem: None,
    })));
    let part = sb.get(52, Ty::I8);
    sb.put(0, part);
    sb.put(24, k64(6));
    sb.put(40, k64(6));
    sb.put(48, k64(7));
    // A partial overwrite leaves the wider Put alive; the pc before the end is dead.
    sb.put(56, k64(0xffff));
    sb.put(56, Atom::u32(0));
    sb.put(PC, k64(0x14));
    sb.next = k64(0x20);
    assert_eq!(
        opt_lines(sb),
        [
            "t0 = GET:I64(0)",
            "t1 = CmpEQ64(t0,0x0:I64)",
            "PUT(8) = 0x1:I64",
            "if (t1) { PUT(pc) = 0x99:I64; exit-Boring }",
            "PUT(8) = 0x2:I64",
            "PUT(32) = 0x7000:I64",
            "STle(t0) = 0x0:I64",
            "PUT(32) = 0x7008:I64",
            "PUT(16) = 0x4:I64",
            "PUT(128) = 0x13:I64",
            "PUT(24) = 0x5:I64",
            "PUT(48) = 0x6:I64",
            "DIRTY RdFX-gst(24,8) ::: calc(BBPTR)",
            "t2 = GET:I8(52)",
            "PUT(0) = t2",
            "PUT(24) = 0x6:I64",
            "PUT(40) = 0x6:I64",
            "PUT(48) = 0x7:I64",
            "PUT(56) = 0xffff:I64",
            "PUT(56) = 0x0:I32",
            "next 0x20:I64; Boring",
        ]
    );
}

#[test]
fn constant_exits_are_resolved() {
    let mut sb = Superblock::new(PC);
    let x = sb.get(0, I64);
    let never = sb.binop(Binop::CmpLTU(I64), x, k64(0));
    sb.exit(never, 0x10, JumpKind::Boring);
    sb.put(8, x);
    let always = sb.binop(Binop::CmpLEU(I64), k64(0), x);
    sb.exit(always, 0x20, JumpKind::Syscall);
    sb.put(16, x);
    sb.next = k64(0x30);
    assert_eq!(
        opt_lines(sb),
        [
            "t0 = GET:I64(0)",
            "PUT(8) = t0",
            "next 0x20:I64; Sys_syscall"
        ]
    );
}

#[test]
fn common_subexpressions_are_shared() {
    let mut sb = Superblock::new(PC);
    let x = sb.get(0, I64);
    let a = sb.binop(Binop::Add(I64), x, k64(1));
    let b = sb.binop(Binop::Add(I64), k64(1), x); // same once the constant moves right
    let c1 = sb.ccall(calc(), I64, alloc::vec![a, x]);
    let c2 = sb.ccall(calc(), I64, alloc::vec![b, x]);
    let l1 = sb.load(I64, a);
    sb.store(x, l1);
    let l2 = sb.load(I64, b); // a load is not shared: the store may have changed memory
    let s = sb.binop(Binop::Add(I64), c1, c2);
    let s = sb.binop(Binop::Add(I64), s, l2);
    sb.put(8, s);
    assert_eq!(
        opt_lines(sb),
        [
            "t0 = GET:I64(0)",
            "t1 = Add64(t0,0x1:I64)",
            "t3 = calc(t1,t0):I64",
            "t5 = LDle:I64(t1)",
            "STle(t0) = t5",
            "t6 = LDle:I64(t1)",
            "t7 = Add64(t3,t3)",
            "t8 = Add64(t7,t6)",
            "PUT(8) = t8",
            "next 0x0:I64; Boring",
        ]
    );
}

#[test]
fn dead_code_is_removed_but_effects_stay() {
    let mut sb = Superblock::new(PC);
    let x = sb.get(0, I64);
    let l = sb.load(I64, x);
    let c = sb.ccall(calc(), I64, alloc::vec![l]);
    let _unused = sb.binop(Binop::Mul(I64), c, c);
    let old = sb.new_temp(I64);
    sb.stmts.push(Stmt::Cas {
        addr: x,
        expected: k64(0),
        new: k64(1),
        old,
    });
    let r = sb.new_temp(I64);
    sb.stmts.push(Stmt::Dirty(Box::new(Dirty {
        callee: calc(),
        args: alloc::vec![x],
        pass_state: false,
        guard: None,
        dst: Some(r),
        reads_state: Vec::new(),
        writes_state: Vec::new(),
        reads_mem: None,
        writes_mem: None,
    })));
    sb.stmts.push(Stmt::Fence(crate::Fence::Full));
    assert_eq!(
        opt_lines(sb),
        [
            "t0 = GET:I64(0)",
            "t4 = CASle(t0::0x0:I64->0x1:I64)",
            "t5 = DIRTY ::: calc(t0)",
            "IR-MBE-Fence",
            "next 0x0:I64; Boring",
        ]
    );
}

#[test]
fn abi_hints_stay_in_place_and_keep_their_operands() {
    // A call: the hint follows the stack-pointer update; its base is used nowhere else.
    let mut sb = Superblock::new(PC);
    let sp = sb.get(SP, I64);
    let new = sb.binop(Binop::Sub(I64), sp, k64(8));
    sb.store(new, k64(0x401005));
    sb.put(SP, new);
    let base = sb.binop(Binop::Sub(I64), new, k64(128));
    let target = sb.get(0, I64);
    sb.stmts.push(Stmt::AbiHint { base, len: 128, nia: target });
    let dead = sb.binop(Binop::Add(I64), sp, k64(1));
    sb.put(CC_OP, dead);
    sb.put(CC_OP, k64(0));
    sb.next = target;
    sb.jump = JumpKind::Call;
    assert_eq!(
        opt_lines(sb),
        [
            "t0 = GET:I64(32)",
            "t1 = Sub64(t0,0x8:I64)",
            "STle(t1) = 0x401005:I64",
            "PUT(32) = t1",
            // Folded into one offset from the old stack pointer.
            "t2 = Sub64(t0,0x88:I64)",
            "t3 = GET:I64(0)",
            "====== AbiHint(t2, 128, t3) ======",
            "PUT(136) = 0x0:I64",
            "next t3; Call",
        ]
    );
}

#[test]
fn dirty_helpers_with_constant_guards() {
    let dirty = |guard, dst| {
        Stmt::Dirty(Box::new(Dirty {
            callee: calc(),
            args: Vec::new(),
            pass_state: false,
            guard: Some(guard),
            dst,
            reads_state: Vec::new(),
            writes_state: Vec::new(),
            reads_mem: None,
            writes_mem: None,
        }))
    };
    let mut sb = Superblock::new(PC);
    let t = sb.new_temp(I64);
    sb.stmts.push(dirty(Atom::bool(true), None));
    sb.stmts.push(dirty(Atom::bool(false), None));
    sb.stmts.push(dirty(Atom::bool(false), Some(t)));
    assert_eq!(
        opt_lines(sb),
        [
            "DIRTY ::: calc()",
            "t0 = DIRTY 0x0:I1 ::: calc()",
            "next 0x0:I64; Boring"
        ]
    );
}

/// A hand-written lifted block: optimising twice changes nothing more (a fixed point).
#[test]
fn optimise_reaches_a_fixed_point() {
    let mut sb = Superblock::new(PC);
    sb.imark(0x1000, 4);
    sb.put(PC, k64(0x1000));
    let sp = sb.get(SP, I64);
    let nsp = sb.binop(Binop::Sub(I64), sp, k64(8));
    sb.put(SP, nsp);
    let rbp = sb.get(40, I64);
    sb.store(nsp, rbp);
    sb.imark(0x1004, 3);
    sb.put(PC, k64(0x1004));
    let sp2 = sb.get(SP, I64);
    sb.put(40, sp2);
    sb.imark(0x1007, 4);
    sb.put(PC, k64(0x1007));
    let sp3 = sb.get(SP, I64);
    let nsp3 = sb.binop(Binop::Sub(I64), sp3, k64(16));
    sb.put(SP, nsp3);
    sb.put(CC_OP, k64(9));
    sb.put(CC_DEP1, sp3);
    sb.put(CC_DEP2, k64(16));
    let eax = sb.get(0, Ty::I32);
    let z = sb.binop(Binop::Xor(Ty::I32), eax, eax);
    let zz = sb.unop(Unop::Zext(Ty::I32, I64), z);
    sb.put(0, zz);
    sb.put(CC_OP, k64(10));
    sb.put(CC_DEP1, zz);
    sb.put(CC_DEP2, k64(0));
    sb.next = k64(0x100b);
    let once = optimise(sb, &CFG);
    let twice = optimise(once.clone(), &CFG);
    assert_eq!(once, twice);
    let text: Vec<String> = once.stmts.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        text,
        [
            "------ IMark(0x1000, 4) ------",
            "t0 = GET:I64(32)",
            "t1 = Sub64(t0,0x8:I64)",
            "PUT(32) = t1",
            "t2 = GET:I64(40)",
            "STle(t1) = t2",
            "------ IMark(0x1004, 3) ------",
            "PUT(40) = t1",
            "------ IMark(0x1007, 4) ------",
            "t5 = Sub64(t0,0x18:I64)",
            "PUT(32) = t5",
            "PUT(0) = 0x0:I64",
            "PUT(136) = 0xa:I64",
            "PUT(144) = 0x0:I64",
            "PUT(152) = 0x0:I64",
        ]
    );
}

// ---- random blocks against the interpreter

/// xorshift64*: deterministic test randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// Sparse byte memory; bytes never written read as a function of their address.
#[derive(Clone, PartialEq, Debug, Default)]
struct Mem(BTreeMap<u64, u8>);

impl crate::interp::Memory for Mem {
    fn load(&mut self, addr: u64, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            let a = addr + i as u64;
            *b = self
                .0
                .get(&a)
                .copied()
                .unwrap_or((a.wrapping_mul(0x9e37_79b9) >> 7) as u8);
        }
    }
    fn store(&mut self, addr: u64, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            self.0.insert(addr + i as u64, *b);
        }
    }
}

const INTS: [Ty; 4] = [Ty::I8, Ty::I16, Ty::I32, Ty::I64];
/// Guest-state bytes the random blocks use (small, so accesses overlap often; includes the sp).
const STATE_WINDOW: u64 = 40;

/// Builds random, well-typed integer blocks over a small state (offsets 0..40, the sp at 32 and
/// the pc at 128) and a small memory window, biased toward what the optimiser rewrites: repeated
/// operands, special constants, re-read and re-written registers.
struct Gen {
    rng: Rng,
    sb: Superblock,
    vals: Vec<Atom>,
}

impl Gen {
    fn constant(&mut self, t: Ty) -> Atom {
        let v = match self.rng.below(4) {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            _ => self.rng.next() >> self.rng.below(64),
        };
        Atom::Const(Const::int(t, v))
    }

    /// A value of type `t`: an earlier one, a conversion of one, or a constant.
    fn val(&mut self, t: Ty) -> Atom {
        let same: Vec<Atom> = self
            .vals
            .iter()
            .copied()
            .filter(|a| self.sb.atom_ty(*a) == t)
            .collect();
        match self.rng.below(6) {
            0..=2 if !same.is_empty() => self.rng.pick(&same),
            3 if !self.vals.is_empty() => {
                let a = self.rng.pick(&self.vals);
                let from = self.sb.atom_ty(a);
                let r = if from.bits() < t.bits() && self.rng.below(2) == 0 {
                    self.sb.sext(a, t)
                } else {
                    self.sb.zext(a, t)
                };
                self.vals.push(r);
                r
            }
            _ => self.constant(t),
        }
    }

    fn addr(&mut self) -> Atom {
        let x = self.val(I64);
        let m = self.sb.binop(Binop::And(I64), x, k64(0x1f));
        self.sb.binop(Binop::Add(I64), m, k64(0x1000))
    }

    fn step(&mut self, pc: u64) {
        use Binop::*;
        let t = self.rng.pick(&INTS);
        let r = match self.rng.below(16) {
            0 | 1 => {
                let off = self.rng.below(STATE_WINDOW - t.bytes() as u64) as u32;
                self.sb.get(off, t)
            }
            2 | 3 => {
                let off = self.rng.below(STATE_WINDOW - t.bytes() as u64) as u32;
                let v = self.val(t);
                self.sb.put(off, v);
                return;
            }
            4 => {
                let a = self.addr();
                self.sb.load(t, a)
            }
            5 => {
                let a = self.addr();
                let v = self.val(t);
                self.sb.store(a, v);
                return;
            }
            6 => {
                let c = self.val(Ty::I1);
                self.sb.exit(c, pc + 0x100, JumpKind::Boring);
                return;
            }
            7 => {
                let (c, a, b) = (self.val(Ty::I1), self.val(t), self.val(t));
                self.sb.ite(c, a, b)
            }
            8 => {
                let op = self.rng.pick(&[Shl(t), Shr(t), Sar(t)]);
                let a = self.val(t);
                let n = Atom::u8(self.rng.below(t.bits() as u64) as u8);
                self.sb.binop(op, a, n)
            }
            9 => {
                let op = self.rng.pick(&[Unop::Not(t), Unop::Neg(t)]);
                let a = self.val(t);
                self.sb.unop(op, a)
            }
            10 => {
                let op = self.rng.pick(&[
                    CmpEQ(t),
                    CmpNE(t),
                    CmpLTS(t),
                    CmpLES(t),
                    CmpLTU(t),
                    CmpLEU(t),
                ]);
                let a = self.val(t);
                let b = if self.rng.below(3) == 0 {
                    a
                } else {
                    self.val(t)
                };
                let c = self.sb.binop(op, a, b);
                match self.rng.below(3) {
                    0 => self.sb.binop(Xor(Ty::I1), c, Atom::bool(true)),
                    1 => self.sb.unop(Unop::Not(Ty::I1), c),
                    _ => c,
                }
            }
            11 => {
                let (a, b) = (self.val(Ty::I32), self.val(Ty::I32));
                let op = self
                    .rng
                    .pick(&[MullU(Ty::I32), MullS(Ty::I32), HiLo(Ty::I32)]);
                let w = self.sb.binop(op, a, b);
                let half = self.rng.pick(&[Unop::Trunc(I64, Ty::I32), Unop::Hi(I64)]);
                self.sb.unop(half, w)
            }
            _ => {
                let op = self
                    .rng
                    .pick(&[Add(t), Sub(t), Mul(t), And(t), Or(t), Xor(t)]);
                let a = self.val(t);
                let b = match self.rng.below(4) {
                    0 => a,
                    1 => self.constant(t),
                    _ => self.val(t),
                };
                self.sb.binop(op, a, b)
            }
        };
        self.vals.push(r);
    }
}

#[test]
fn random_blocks_mean_the_same_after_optimisation() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut removed = 0;
    for round in 0..3000 {
        let mut g = Gen {
            rng: Rng(rng.next() | 1),
            sb: Superblock::new(PC),
            vals: Vec::new(),
        };
        let insns = 1 + g.rng.below(8);
        for i in 0..insns {
            let pc = 0x4000 + 4 * i;
            g.sb.imark(pc, 4);
            g.sb.put(PC, k64(pc));
            for _ in 0..g.rng.below(8) {
                g.step(pc);
            }
            // The flag thunk of a flag-setting instruction.
            let v = g.val(I64);
            g.sb.put(CC_OP, k64(g.rng.below(3)));
            g.sb.put(CC_DEP1, v);
        }
        g.sb.next = g.val(I64);
        let sb = g.sb;
        assert_eq!(typecheck(&sb), Ok(()), "generator made ill-typed IR:\n{sb}");
        let opt = optimise(sb.clone(), &CFG);
        assert_eq!(typecheck(&opt), Ok(()));
        assert_eq!(
            optimise(opt.clone(), &CFG),
            opt,
            "not a fixed point:\n{sb}\n{opt}"
        );
        removed += sb.stmts.len() - opt.stmts.len();

        let mut init = [0u8; 256];
        init.iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i as u8).wrapping_mul(37) ^ round as u8);
        let run = |b: &Superblock| {
            let (mut st, mut mem) = (init, Mem::default());
            let (next, kind) = crate::interp::run(b, &mut st, &mut mem);
            // The block's exit writes its destination to the pc (the back end's job).
            st[PC as usize..PC as usize + 8].copy_from_slice(&next.to_le_bytes());
            (next, kind, st, mem)
        };
        assert_eq!(
            run(&sb),
            run(&opt),
            "round {round}\nbefore:\n{sb}\nafter:\n{opt}"
        );
    }
    // The test is only meaningful if the optimiser actually rewrote these blocks.
    assert!(removed > 75000, "only {removed} statements removed");
}

/// How the amd64 front end negates a condition (`jae` is `!(a <u b)`): one compare remains.
#[test]
fn negated_comparisons_become_one_compare() {
    let mut sb = Superblock::new(PC);
    let a = sb.get(0, I64);
    let b = sb.get(8, I64);
    for op in [Binop::CmpLTU(I64), Binop::CmpLES(I64), Binop::CmpEQ(I64)] {
        let c = sb.binop(op, a, b);
        let n = sb.binop(Binop::Xor(Ty::I1), c, Atom::bool(true));
        sb.exit(n, 0x10, JumpKind::Boring);
    }
    let c = sb.binop(Binop::CmpNE(I64), a, b);
    let n = sb.unop(Unop::Not(Ty::I1), c);
    let nn = sb.unop(Unop::Not(Ty::I1), n);
    sb.exit(nn, 0x20, JumpKind::Boring);
    assert_eq!(
        opt_lines(sb),
        [
            "t0 = GET:I64(0)",
            "t1 = GET:I64(8)",
            "t3 = CmpLE64U(t1,t0)",
            "if (t3) { PUT(pc) = 0x10:I64; exit-Boring }",
            "t5 = CmpLT64S(t1,t0)",
            "if (t5) { PUT(pc) = 0x10:I64; exit-Boring }",
            "t7 = CmpNE64(t0,t1)",
            "if (t7) { PUT(pc) = 0x10:I64; exit-Boring }",
            "if (t7) { PUT(pc) = 0x20:I64; exit-Boring }",
            "next 0x0:I64; Boring",
        ]
    );
}
