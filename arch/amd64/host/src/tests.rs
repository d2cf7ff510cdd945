//! In-process tests: build superblocks with the IR builder, compile them, copy them into an
//! executable page and run them through the dispatcher against a state buffer.

extern crate std;

use crate::*;
use alloc::vec;
use alloc::vec::Vec;
use std::sync::Mutex;
use vg_core::arch::{ChainSite, HostArch, RunExit, StateLayout};
use vg_core::codebuf::ExecMem;
use vg_ir::{Atom, Binop, Callee, Const, Dirty, Expr, JumpKind, Stmt, Superblock, Ty, Unop, VecOp};

/// The dispatcher's event counter is global: run one translation at a time.
pub(crate) static RUN_LOCK: Mutex<()> = Mutex::new(());

const PC: u32 = 128;
const STATE_SIZE: u32 = 256;
/// Scratch result area in the guest state: u64 slots 17.. (offset 136..).
const OUT: u32 = 136;
const LAYOUT: StateLayout = StateLayout { state_size: STATE_SIZE, spill_offset: 3 * STATE_SIZE, spill_size: 1024 };
const WORDS: usize = (3 * STATE_SIZE as usize + 1024) / 8;

fn out(k: u32) -> u32 {
    OUT + 8 * k
}

struct Env {
    mem: ExecMem,
    used: usize,
    state: Vec<u64>,
    table: Vec<[u64; 2]>,
}

impl Env {
    fn new() -> Env {
        Env { mem: ExecMem::new(1 << 16).unwrap(), used: 0, state: vec![0; WORDS], table: vec![[u64::MAX, 0]; 16] }
    }
    /// Compile and install; returns the code address and chain sites.
    fn install(&mut self, sb: &Superblock) -> (*mut u8, Vec<ChainSite>) {
        let hc = Amd64Host::compile(sb, &LAYOUT, &Amd64Host::dispatch_addrs()).unwrap();
        let at = self.used;
        self.used += (hc.bytes.len() + 15) & !15;
        (self.mem.write(at, &hc.bytes), hc.chain_sites)
    }
    fn run_at(&mut self, entry: *const u8) -> RunExit {
        let _g = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: entry is a translation for LAYOUT and the state buffer has its full size.
        unsafe { Amd64Host::run(self.state.as_mut_ptr() as *mut u8, entry, self.table.as_ptr() as *const u8, 15) }
    }
    fn run(&mut self, sb: &Superblock) -> RunExit {
        let (p, _) = self.install(sb);
        self.run_at(p)
    }
    fn get(&self, off: u32) -> u64 {
        self.state[off as usize / 8]
    }
    fn set(&mut self, off: u32, v: u64) {
        self.state[off as usize / 8] = v;
    }
    fn pc(&self) -> u64 {
        self.get(PC)
    }
}

fn sb() -> Superblock {
    let mut sb = Superblock::new(PC);
    sb.imark(0x1000, 4);
    sb
}

/// Finish a block with a chainable exit to `next` and check the run ends there.
fn run_block(env: &mut Env, mut sb: Superblock) {
    sb.next = Atom::u64(0x2000);
    sb.jump = JumpKind::Boring;
    let r = env.run(&sb);
    assert!(matches!(r, RunExit::ChainMe { .. }), "{r:?}");
    assert_eq!(env.pc(), 0x2000);
}

fn c(ty: Ty, v: u64) -> Atom {
    Atom::Const(Const::int(ty, v))
}

fn ref_binop(op: Binop, ty: Ty, a: u64, b: u64) -> u64 {
    let m = ty.mask();
    let bits = ty.bits();
    let sx = |v: u64| ((v << (64 - bits)) as i64 >> (64 - bits)) as u64;
    let r = match op {
        Binop::Add(_) => a.wrapping_add(b),
        Binop::Sub(_) => a.wrapping_sub(b),
        Binop::Mul(_) => a.wrapping_mul(b),
        Binop::And(_) => a & b,
        Binop::Or(_) => a | b,
        Binop::Xor(_) => a ^ b,
        Binop::Shl(_) => a << (b & 63),
        Binop::Shr(_) => (a & m) >> (b & 63),
        Binop::Sar(_) => ((sx(a) as i64) >> (b & 63)) as u64,
        Binop::CmpEQ(_) => ((a & m) == (b & m)) as u64,
        Binop::CmpNE(_) => ((a & m) != (b & m)) as u64,
        Binop::CmpLTU(_) => ((a & m) < (b & m)) as u64,
        Binop::CmpLEU(_) => ((a & m) <= (b & m)) as u64,
        Binop::CmpLTS(_) => ((sx(a) as i64) < (sx(b) as i64)) as u64,
        Binop::CmpLES(_) => ((sx(a) as i64) <= (sx(b) as i64)) as u64,
        _ => unreachable!(),
    };
    if op.result_ty() == Ty::I1 { r } else { r & m }
}

const VALUES: [u64; 6] = [0, 1, 0x7f, 0x80ff_fffe_8001_8081, 0xffff_ffff_ffff_ffff, 0x1234_5678_9abc_def0];

#[test]
fn integer_binops_all_widths() {
    let tys = [Ty::I8, Ty::I16, Ty::I32, Ty::I64];
    for ty in tys {
        let ops = [
            Binop::Add(ty), Binop::Sub(ty), Binop::Mul(ty), Binop::And(ty), Binop::Or(ty), Binop::Xor(ty),
            Binop::CmpEQ(ty), Binop::CmpNE(ty), Binop::CmpLTU(ty), Binop::CmpLEU(ty), Binop::CmpLTS(ty),
            Binop::CmpLES(ty),
        ];
        let mut env = Env::new();
        for &a in &VALUES {
            for &b in &VALUES {
                env.set(0, a);
                env.set(8, b);
                let mut s = sb();
                // Three forms per op: reg-reg, reg-imm (b constant), reg-mem (folded Get).
                let mut k = 0;
                for &op in &ops {
                    let x = s.get(0, ty);
                    let y = s.get(8, ty);
                    let r1 = s.binop(op, x, y);
                    let r2 = s.binop(op, x, c(ty, b));
                    let x2 = s.get(0, ty);
                    let y2 = s.get(8, ty);
                    let r3 = s.binop(op, x2, y2);
                    for r in [r1, r2, r3] {
                        let w = if s.atom_ty(r) == Ty::I1 { s.unop(Unop::Zext(Ty::I1, Ty::I64), r) } else { s.zext(r, Ty::I64) };
                        s.put(out(k), w);
                        k += 1;
                    }
                }
                run_block(&mut env, s);
                for (i, &op) in ops.iter().enumerate() {
                    let want = ref_binop(op, ty, a, b);
                    for j in 0..3 {
                        assert_eq!(env.get(out(3 * i as u32 + j)), want, "{op:?} {a:#x} {b:#x} form {j}");
                    }
                }
            }
        }
    }
}

#[test]
fn shifts_all_widths() {
    let mut env = Env::new();
    for ty in [Ty::I8, Ty::I16, Ty::I32, Ty::I64] {
        for &a in &VALUES {
            for n in [0u64, 1, 3, ty.bits() as u64 - 1] {
                env.set(0, a);
                env.set(8, n);
                let mut s = sb();
                let ops = [Binop::Shl(ty), Binop::Shr(ty), Binop::Sar(ty)];
                for (i, &op) in ops.iter().enumerate() {
                    let x = s.get(0, ty);
                    let amt = s.get(8, Ty::I8);
                    let r1 = s.binop(op, x, amt);
                    let r2 = s.binop(op, x, Atom::u8(n as u8));
                    let (w1, w2) = (s.zext(r1, Ty::I64), s.zext(r2, Ty::I64));
                    s.put(out(2 * i as u32), w1);
                    s.put(out(2 * i as u32 + 1), w2);
                }
                run_block(&mut env, s);
                for (i, &op) in ops.iter().enumerate() {
                    let want = ref_binop(op, ty, a, n) & ty.mask();
                    assert_eq!(env.get(out(2 * i as u32)), want, "{op:?} {a:#x} by {n} (cl)");
                    assert_eq!(env.get(out(2 * i as u32 + 1)), want, "{op:?} {a:#x} by {n} (imm)");
                }
            }
        }
    }
}

#[test]
fn unops_extensions_and_bit_counts() {
    let mut env = Env::new();
    for &a in &VALUES[1..] {
        env.set(0, a);
        let mut s = sb();
        let x64 = s.get(0, Ty::I64);
        let x32 = s.get(0, Ty::I32);
        let x16 = s.get(0, Ty::I16);
        let x8 = s.get(0, Ty::I8);
        let rs = [
            s.unop(Unop::Sext(Ty::I8, Ty::I64), x8),
            s.unop(Unop::Sext(Ty::I16, Ty::I64), x16),
            s.unop(Unop::Sext(Ty::I32, Ty::I64), x32),
            s.unop(Unop::Zext(Ty::I8, Ty::I64), x8),
            s.unop(Unop::Zext(Ty::I16, Ty::I32), x16),
            s.unop(Unop::Clz(Ty::I64), x64),
            s.unop(Unop::Clz(Ty::I32), x32),
            s.unop(Unop::Ctz(Ty::I64), x64),
            s.unop(Unop::Ctz(Ty::I32), x32),
            s.unop(Unop::Popcnt(Ty::I64), x64),
            s.unop(Unop::Popcnt(Ty::I32), x32),
            s.unop(Unop::Bswap(Ty::I64), x64),
            s.unop(Unop::Bswap(Ty::I32), x32),
            s.unop(Unop::Bswap(Ty::I16), x16),
            s.unop(Unop::Not(Ty::I64), x64),
            s.unop(Unop::Neg(Ty::I32), x32),
            s.unop(Unop::Hi(Ty::I64), x64),
            s.unop(Unop::Hi(Ty::I16), x16),
        ];
        for (i, r) in rs.into_iter().enumerate() {
            let w = s.zext(r, Ty::I64);
            s.put(out(i as u32), w);
        }
        run_block(&mut env, s);
        let (a32, a16, a8) = (a as u32, a as u16, a as u8);
        let want: [u64; 18] = [
            a8 as i8 as i64 as u64,
            a16 as i16 as i64 as u64,
            a32 as i32 as i64 as u64,
            a8 as u64,
            a16 as u64,
            a.leading_zeros() as u64,
            if a32 == 0 { env.get(out(6)) } else { a32.leading_zeros() as u64 },
            a.trailing_zeros() as u64,
            if a32 == 0 { env.get(out(8)) } else { a32.trailing_zeros() as u64 },
            a.count_ones() as u64,
            a32.count_ones() as u64,
            a.swap_bytes(),
            a32.swap_bytes() as u64,
            a16.swap_bytes() as u64,
            !a,
            a32.wrapping_neg() as u64,
            a >> 32,
            (a16 >> 8) as u64,
        ];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(env.get(out(i as u32)), *w, "unop #{i} of {a:#x}");
        }
    }
}

#[test]
fn widening_multiply_and_division() {
    let mut env = Env::new();
    let (a, b) = (0xfedc_ba98_7654_3210u64, 0x0123_4567_89ab_cdefu64);
    env.set(0, a);
    env.set(8, b);
    let mut s = sb();
    let x = s.get(0, Ty::I64);
    let y = s.get(8, Ty::I64);
    let mu = s.binop(Binop::MullU(Ty::I64), x, y);
    let ms = s.binop(Binop::MullS(Ty::I64), x, y);
    for (k, m) in [(0, mu), (2, ms)] {
        let lo = s.unop(Unop::Trunc(Ty::I128, Ty::I64), m);
        let hi = s.unop(Unop::Hi(Ty::I128), m);
        s.put(out(k), lo);
        s.put(out(k + 1), hi);
    }
    // 128/64 division of hi:lo = (b>>8):a by b.
    let h = s.binop(Binop::Shr(Ty::I64), y, Atom::u8(8));
    let dd = s.binop(Binop::HiLo(Ty::I64), h, x);
    let q = s.binop(Binop::DivModU(Ty::I64), dd, y);
    let ql = s.unop(Unop::Trunc(Ty::I128, Ty::I64), q);
    let qh = s.unop(Unop::Hi(Ty::I128), q);
    s.put(out(4), ql);
    s.put(out(5), qh);
    // 32-bit forms.
    let x32 = s.unop(Unop::Trunc(Ty::I64, Ty::I32), x);
    let y32 = s.unop(Unop::Trunc(Ty::I64, Ty::I32), y);
    let m32 = s.binop(Binop::MullS(Ty::I32), x32, y32);
    s.put(out(6), m32);
    let d32 = s.binop(Binop::DivModS(Ty::I32), m32, y32);
    s.put(out(7), d32);
    let x8 = s.unop(Unop::Trunc(Ty::I64, Ty::I8), x);
    let y16 = s.binop(Binop::HiLo(Ty::I8), Atom::u8(0x12), x8);
    let d8 = s.binop(Binop::DivModU(Ty::I8), y16, Atom::u8(0x77));
    let d8w = s.zext(d8, Ty::I64);
    s.put(out(8), d8w);
    run_block(&mut env, s);
    let pu = a as u128 * b as u128;
    let ps = (a as i64 as i128 * b as i64 as i128) as u128;
    assert_eq!((env.get(out(0)), env.get(out(1))), (pu as u64, (pu >> 64) as u64));
    assert_eq!((env.get(out(2)), env.get(out(3))), (ps as u64, (ps >> 64) as u64));
    let n = ((b >> 8) as u128) << 64 | a as u128;
    assert_eq!(env.get(out(4)), (n / b as u128) as u64);
    assert_eq!(env.get(out(5)), (n % b as u128) as u64);
    let p32 = (a as u32 as i32 as i64).wrapping_mul(b as u32 as i32 as i64);
    assert_eq!(env.get(out(6)), p32 as u64);
    let (qq, rr) = (p32 / (b as u32 as i32 as i64), p32 % (b as u32 as i32 as i64));
    assert_eq!(env.get(out(7)) as u32, qq as u32);
    assert_eq!((env.get(out(7)) >> 32) as u32, rr as u32);
    let n16 = 0x1200u32 | (a as u8) as u32;
    assert_eq!(env.get(out(8)), ((n16 % 0x77) << 8 | (n16 / 0x77)) as u64);
}

#[test]
fn side_exits_fuse_compare_and_branch() {
    let mut env = Env::new();
    for (a, b, taken) in [(5u64, 7u64, true), (7, 5, false), (u64::MAX, 1, false)] {
        env.set(0, a);
        env.set(8, b);
        env.set(out(0), 0);
        let mut s = sb();
        let x = s.get(0, Ty::I64);
        let y = s.get(8, Ty::I64);
        let lt = s.binop(Binop::CmpLTU(Ty::I64), x, y);
        s.exit(lt, 0x3000, JumpKind::Boring);
        s.put(out(0), Atom::u64(1));
        let r = env.run(&s_end(s));
        assert!(matches!(r, RunExit::ChainMe { .. }));
        assert_eq!(env.pc(), if taken { 0x3000 } else { 0x2000 });
        assert_eq!(env.get(out(0)), !taken as u64);
    }
    // The fused form: cmp + jcc, no setcc.
    let mut s = sb();
    let x = s.get(0, Ty::I64);
    let lt = s.binop(Binop::CmpLTS(Ty::I64), x, Atom::u64(10));
    s.exit(lt, 0x3000, JumpKind::Boring);
    let hc = Amd64Host::compile(&s_end(s), &LAYOUT, &Amd64Host::dispatch_addrs()).unwrap();
    let mut text = alloc::string::String::new();
    Amd64Host::disassemble(&hc.bytes, 0, &mut text);
    assert!(text.contains("cmp ") && text.contains("jl "), "{text}");
    assert!(!text.contains("set"), "{text}");
    assert_eq!(hc.chain_sites.len(), 2);
}

fn s_end(mut s: Superblock) -> Superblock {
    s.next = Atom::u64(0x2000);
    s
}

#[test]
fn assisted_and_indirect_exits() {
    let mut env = Env::new();
    let mut s = sb();
    s.next = Atom::u64(0x4444);
    s.jump = JumpKind::Syscall;
    assert_eq!(env.run(&s), RunExit::Assisted(JumpKind::Syscall));
    assert_eq!(env.pc(), 0x4444);

    // Indirect exit: a miss returns FastMiss with the pc stored...
    let mut ind = sb();
    let t = ind.get(0, Ty::I64);
    ind.next = t;
    ind.jump = JumpKind::Ret;
    let (ind_code, _) = env.install(&ind);
    env.set(0, 0x5000);
    assert_eq!(env.run_at(ind_code), RunExit::FastMiss);
    assert_eq!(env.pc(), 0x5000);
    // ...a hit jumps straight to the target translation.
    let mut target = sb();
    target.put(out(0), Atom::u64(0xabc));
    target.next = Atom::u64(0x6000);
    target.jump = JumpKind::Yield;
    let (tcode, _) = env.install(&target);
    let idx = fast_index(0x5000, 15) as usize;
    env.table[idx] = [0x5000, tcode as u64];
    assert_eq!(env.run_at(ind_code), RunExit::Assisted(JumpKind::Yield));
    assert_eq!(env.get(out(0)), 0xabc);
    assert_eq!(env.pc(), 0x6000);
}

#[test]
fn chaining_and_unchaining() {
    let mut env = Env::new();
    let mut a = sb();
    let x = a.get(out(0), Ty::I64);
    let x1 = a.binop(Binop::Add(Ty::I64), x, Atom::u64(1));
    a.put(out(0), x1);
    a.next = Atom::u64(0x7000);
    let mut b = sb();
    let y = b.get(out(0), Ty::I64);
    let y1 = b.binop(Binop::Mul(Ty::I64), y, Atom::u64(10));
    b.put(out(0), y1);
    b.next = Atom::u64(0x8000);
    b.jump = JumpKind::ClientReq;
    let (acode, sites) = env.install(&a);
    let (bcode, _) = env.install(&b);
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0].dst, 0x7000);
    let site = unsafe { acode.add(sites[0].offset as usize) };
    // Unchained: the exit reports its own site.
    let r = env.run_at(acode);
    assert_eq!(r, RunExit::ChainMe { site: site as usize });
    assert_eq!(env.pc(), 0x7000);
    // Chained: a runs straight into b.
    env.set(out(0), 4);
    unsafe { Amd64Host::chain(site, bcode) };
    assert_eq!(env.run_at(acode), RunExit::Assisted(JumpKind::ClientReq));
    assert_eq!(env.get(out(0)), 50);
    assert_eq!(env.pc(), 0x8000);
    // Unchained again.
    unsafe { Amd64Host::unchain(site, &Amd64Host::dispatch_addrs()) };
    assert_eq!(env.run_at(acode), RunExit::ChainMe { site: site as usize });
    assert_eq!(env.get(out(0)), 51);
}

#[test]
fn event_check_ends_time_slice() {
    let mut env = Env::new();
    let mut s = sb();
    s.put(out(0), Atom::u64(9));
    s.next = Atom::u64(0x2000);
    let (code, _) = env.install(&s);
    let _g = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    EVENT_COUNTER.store(0, core::sync::atomic::Ordering::Relaxed);
    env.set(PC, 0x1000);
    // SAFETY: as in Env::run_at.
    let r = unsafe { Amd64Host::run(env.state.as_mut_ptr() as *mut u8, code, env.table.as_ptr() as *const u8, 15) };
    assert_eq!(r, RunExit::EventCheck);
    assert_eq!(env.get(out(0)), 0, "the block must not run");
    assert_eq!(env.pc(), 0x1000);
    assert_eq!(EVENT_COUNTER.load(core::sync::atomic::Ordering::Relaxed), EVENT_QUANTUM.load(core::sync::atomic::Ordering::Relaxed));
}

#[test]
fn loads_and_stores_with_folded_addresses() {
    let mut env = Env::new();
    let mut buf = vec![0u64; 32];
    for (i, w) in buf.iter_mut().enumerate() {
        *w = 0x1111_1111_1111_1111u64.wrapping_mul(i as u64 + 1);
    }
    let base = buf.as_mut_ptr() as u64;
    env.set(0, base);
    env.set(8, 5);
    let mut s = sb();
    let p = s.get(0, Ty::I64);
    let i = s.get(8, Ty::I64);
    // buf[i + 2] via base + (i << 3) + 16
    let sc = s.binop(Binop::Shl(Ty::I64), i, Atom::u8(3));
    let a1 = s.binop(Binop::Add(Ty::I64), p, sc);
    let a2 = s.binop(Binop::Add(Ty::I64), a1, Atom::u64(16));
    let v = s.load(Ty::I64, a2);
    s.put(out(0), v);
    let p8 = s.binop(Binop::Add(Ty::I64), p, Atom::u64(9));
    let b = s.load(Ty::I8, p8);
    let bw = s.zext(b, Ty::I64);
    s.put(out(1), bw);
    let p16 = s.binop(Binop::Add(Ty::I64), p, Atom::u64(24));
    let h = s.load(Ty::I16, p16);
    let hw = s.zext(h, Ty::I64);
    s.put(out(2), hw);
    // Stores of each width and of an immediate.
    let q = s.binop(Binop::Add(Ty::I64), p, Atom::u64(8 * 20));
    s.store(q, Atom::u64(0x0102_0304_0506_0708));
    let q2 = s.binop(Binop::Add(Ty::I64), p, Atom::u64(8 * 21));
    let t32 = s.unop(Unop::Trunc(Ty::I64, Ty::I32), v);
    s.store(q2, t32);
    let q3 = s.binop(Binop::Add(Ty::I64), p, Atom::u64(8 * 22 + 1));
    s.store(q3, Atom::u8(0xee));
    let asm = Amd64Host::compile(&s_end(s.clone()), &LAYOUT, &Amd64Host::dispatch_addrs()).unwrap();
    let mut text = alloc::string::String::new();
    Amd64Host::disassemble(&asm.bytes, 0, &mut text);
    assert!(text.contains("*8+10h]"), "address not folded:\n{text}");
    run_block(&mut env, s);
    assert_eq!(env.get(out(0)), buf[7]);
    assert_eq!(env.get(out(1)), buf[1] & 0xff);
    assert_eq!(env.get(out(2)), buf[3] & 0xffff);
    assert_eq!(buf[20], 0x0102_0304_0506_0708);
    assert_eq!(buf[21] as u32, buf[7] as u32);
    assert_eq!(buf[21] >> 32, 0x1111_1111_1111_1111u64.wrapping_mul(22) >> 32);
    assert_eq!((buf[22] >> 8) as u8, 0xee);
}

extern "C" fn helper3(a: u64, b: u64, c: u64) -> u64 {
    a * 100 + b * 10 + c
}
extern "C" fn dirty_helper(state: *mut u64, x: u64) -> u64 {
    // SAFETY: the back end passes the state pointer; OUT is inside it.
    unsafe { *state.add(OUT as usize / 8 + 5) = x + 1 };
    x * 2
}

#[test]
fn helper_calls_preserve_live_values() {
    let mut env = Env::new();
    for k in 0..16u32 {
        env.set(8 * k, k as u64 + 1);
    }
    let mut s = sb();
    // Many values live across the calls (they must survive in callee-saved registers or spills).
    let vals: Vec<Atom> = (0..12).map(|k| s.get(8 * k, Ty::I64)).collect();
    let callee = Callee { name: "helper3", addr: helper3 as *const () as usize };
    let r = s.ccall(callee, Ty::I64, vec![vals[1], vals[2], Atom::u64(3)]);
    s.put(out(0), r);
    let d = s.new_temp(Ty::I64);
    let g = s.binop(Binop::CmpEQ(Ty::I64), vals[0], Atom::u64(1));
    s.stmts.push(Stmt::Dirty(alloc::boxed::Box::new(Dirty {
        callee: Callee { name: "dirty", addr: dirty_helper as *const () as usize },
        args: vec![vals[3]],
        pass_state: true,
        guard: Some(g),
        dst: Some(d),
        reads_state: vec![],
        writes_state: vec![],
        reads_mem: None,
        writes_mem: None,
    })));
    s.put(out(1), Atom::Tmp(d));
    let mut acc = vals[0];
    for &v in &vals[1..] {
        acc = s.binop(Binop::Add(Ty::I64), acc, v);
    }
    s.put(out(2), acc);
    run_block(&mut env, s);
    assert_eq!(env.get(out(0)), 233);
    assert_eq!(env.get(out(1)), 8);
    assert_eq!(env.get(out(5)), 5);
    assert_eq!(env.get(out(2)), (1..=12).sum::<u64>());
}

/// A helper that destroys every caller-saved register, integer and vector, as real ones may.
extern "C" fn clobber_all(x: u64) -> u64 {
    // SAFETY: only registers declared as clobbered are written.
    unsafe {
        core::arch::asm!(
            "mov rsi, -1", "mov rdi, -1", "mov r8, -1", "mov r9, -1", "mov r10, -1", "mov r11, -1",
            "pcmpeqd xmm0, xmm0", "pcmpeqd xmm1, xmm1", "pcmpeqd xmm2, xmm2", "pcmpeqd xmm3, xmm3",
            "pcmpeqd xmm4, xmm4", "pcmpeqd xmm5, xmm5", "pcmpeqd xmm6, xmm6", "pcmpeqd xmm7, xmm7",
            "pcmpeqd xmm8, xmm8", "pcmpeqd xmm9, xmm9", "pcmpeqd xmm10, xmm10", "pcmpeqd xmm11, xmm11",
            "pcmpeqd xmm12, xmm12", "pcmpeqd xmm13, xmm13",
            out("rsi") _, out("rdi") _, out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _, out("xmm4") _, out("xmm5") _,
            out("xmm6") _, out("xmm7") _, out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
            out("xmm12") _, out("xmm13") _,
        );
    }
    x + 1
}

#[test]
fn guarded_calls_preserve_live_vector_and_integer_values() {
    let mut env = Env::new();
    for k in 0..8u32 {
        env.set(8 * k, 0x0101_0101_0101_0101u64.wrapping_mul(k as u64 + 1));
    }
    let mut s = sb();
    let vs: Vec<Atom> = (0..4).map(|k| s.get(16 * k, Ty::V128)).collect();
    let ints: Vec<Atom> = (0..8).map(|k| s.get(8 * k, Ty::I64)).collect();
    // Vector and integer values computed before the (taken) guarded call, used after it.
    let sums: Vec<Atom> = (0..4).map(|k| s.binop(Binop::Vec2(VecOp::Add8x16), vs[k], vs[(k + 1) % 4])).collect();
    let prods: Vec<Atom> = (0..4).map(|k| s.binop(Binop::Mul(Ty::I64), ints[k], ints[k + 4])).collect();
    let g = s.binop(Binop::CmpNE(Ty::I64), ints[0], Atom::u64(0));
    let d = s.new_temp(Ty::I64);
    s.stmts.push(Stmt::Dirty(alloc::boxed::Box::new(Dirty {
        callee: Callee { name: "clobber_all", addr: clobber_all as *const () as usize },
        args: vec![ints[1]],
        pass_state: false,
        guard: Some(g),
        dst: Some(d),
        reads_state: vec![],
        writes_state: vec![],
        reads_mem: None,
        writes_mem: None,
    })));
    for (k, v) in sums.iter().enumerate() {
        s.put(out(2 * k as u32), *v);
    }
    for (k, v) in prods.iter().enumerate() {
        s.put(out(8 + k as u32), *v);
    }
    s.put(out(12), Atom::Tmp(d));
    run_block(&mut env, s);
    let word = |k: u32| 0x0101_0101_0101_0101u64.wrapping_mul(k as u64 + 1);
    for k in 0..4u32 {
        let n = (k + 1) % 4;
        // Bytes of each lane never carry: lane sums are byte-wise sums of the multipliers.
        assert_eq!(env.get(out(2 * k)), word(2 * k).wrapping_add(word(2 * n)), "vector {k} low");
        assert_eq!(env.get(out(2 * k) + 8), word(2 * k + 1).wrapping_add(word(2 * n + 1)), "vector {k} high");
        assert_eq!(env.get(out(8 + k)), word(k).wrapping_mul(word(k + 4)), "product {k}");
    }
    assert_eq!(env.get(out(12)), word(1) + 1);
}

#[test]
fn ite_selects_with_cmov_and_branches() {
    let mut env = Env::new();
    for (a, b) in [(3u64, 9u64), (9, 3)] {
        env.set(0, a);
        env.set(8, b);
        let mut s = sb();
        let x = s.get(0, Ty::I64);
        let y = s.get(8, Ty::I64);
        let c1 = s.binop(Binop::CmpLTU(Ty::I64), x, y);
        let m = s.ite(c1, x, y);
        s.put(out(0), m);
        let c2 = s.binop(Binop::CmpLTS(Ty::I32), x, Atom::u32(5));
        let k = s.ite(c2, Atom::u32(111), Atom::u32(222));
        let kw = s.zext(k, Ty::I64);
        s.put(out(1), kw);
        let fx = s.unop(Unop::Reinterp(Ty::I64, Ty::F64), x);
        let fy = s.unop(Unop::Reinterp(Ty::I64, Ty::F64), y);
        let c3 = s.binop(Binop::CmpEQ(Ty::I64), x, Atom::u64(3));
        let f = s.ite(c3, fx, fy);
        s.put(out(2), f);
        run_block(&mut env, s);
        assert_eq!(env.get(out(0)), a.min(b));
        assert_eq!(env.get(out(1)), if a < 5 { 111 } else { 222 });
        assert_eq!(env.get(out(2)), if a == 3 { a } else { b });
    }
}

#[test]
fn high_register_pressure_spills() {
    let mut env = Env::new();
    for k in 0..16u32 {
        env.set(8 * k, 0x100 + k as u64);
    }
    let mut s = sb();
    // 40 values all live until the end.
    let mut vals = Vec::new();
    for k in 0..40u64 {
        let g = s.get(8 * (k as u32 % 16), Ty::I64);
        vals.push(s.binop(Binop::Mul(Ty::I64), g, Atom::u64(k + 1)));
    }
    let mut acc = Atom::u64(0);
    for (k, &v) in vals.iter().enumerate() {
        let t = s.binop(Binop::Xor(Ty::I64), v, Atom::u64(k as u64));
        acc = s.binop(Binop::Add(Ty::I64), acc, t);
    }
    s.put(out(0), acc);
    let mut want = 0u64;
    for k in 0..40u64 {
        want = want.wrapping_add(((0x100 + k % 16) * (k + 1)) ^ k);
    }
    run_block(&mut env, s);
    assert_eq!(env.get(out(0)), want);
}

#[test]
fn floating_point_scalar() {
    let mut env = Env::new();
    for (a, b) in [(1.5f64, 2.25f64), (-3.0, 0.5), (2.0, 2.0), (f64::NAN, 1.0)] {
        env.set(0, a.to_bits());
        env.set(8, b.to_bits());
        let mut s = sb();
        let x = s.get(0, Ty::F64);
        let y = s.get(8, Ty::F64);
        let rs = [
            s.binop(Binop::AddF(Ty::F64), x, y),
            s.binop(Binop::SubF(Ty::F64), x, y),
            s.binop(Binop::MulF(Ty::F64), x, y),
            s.binop(Binop::DivF(Ty::F64), x, y),
            s.unop(Unop::NegF64, x),
            s.unop(Unop::AbsF64, x),
        ];
        for (i, r) in rs.into_iter().enumerate() {
            s.put(out(i as u32), r);
        }
        let cf = s.binop(Binop::CmpF(Ty::F64), x, y);
        let cfw = s.zext(cf, Ty::I64);
        s.put(out(6), cfw);
        let i = s.unop(Unop::FToIntSTrunc(Ty::F64, Ty::I64), x);
        s.put(out(7), i);
        let back = s.unop(Unop::IntSToF(Ty::I64, Ty::F64), i);
        s.put(out(8), back);
        let f32v = s.unop(Unop::F64toF32, y);
        let f32w = s.unop(Unop::Reinterp(Ty::F32, Ty::I32), f32v);
        let f32z = s.zext(f32w, Ty::I64);
        s.put(out(9), f32z);
        run_block(&mut env, s);
        let f = |k| f64::from_bits(env.get(out(k)));
        let same = |x: f64, y: f64| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
        assert!(same(f(0), a + b) && same(f(1), a - b) && same(f(2), a * b) && same(f(3), a / b));
        assert!(same(f(4), -a) && same(f(5), a.abs()));
        let code = if a.is_nan() { 0x45 } else if a < b { 1 } else if a == b { 0x40 } else { 0 };
        assert_eq!(env.get(out(6)), code);
        let it = if a.is_nan() { i64::MIN } else { a as i64 };
        assert_eq!(env.get(out(7)), it as u64);
        assert_eq!(f(8), it as f64);
        assert_eq!(env.get(out(9)) as u32, (b as f32).to_bits());
    }
}

#[test]
fn vector_ops() {
    let mut env = Env::new();
    let a: u128 = 0x0011_2233_4455_6677_8899_aabb_ccdd_eeff;
    let b: u128 = 0x0102_0304_0506_0708_f0e0_d0c0_b0a0_9080;
    env.set(0, a as u64);
    env.set(8, (a >> 64) as u64);
    env.set(16, b as u64);
    env.set(24, (b >> 64) as u64);
    let mut s = sb();
    let x = s.get(0, Ty::V128);
    let y = s.get(16, Ty::V128);
    let rs = [
        s.binop(Binop::Vec2(VecOp::Add8x16), x, y),
        s.binop(Binop::Vec2(VecOp::Sub32x4), x, y),
        s.binop(Binop::Vec2(VecOp::MinU8x16), x, y),
        s.binop(Binop::Vec2(VecOp::CmpEQ8x16), x, x),
        s.binop(Binop::Vec2(VecOp::InterleaveLO8x16), x, y),
        s.binop(Binop::Vec2(VecOp::AndNot), x, y),
        s.binop(Binop::VecShift(VecOp::Shl16x8), x, Atom::u8(4)),
        s.unop(Unop::ShufImm(VecOp::Shuf32x4, 0x1b), x),
        s.unop(Unop::Not(Ty::V128), x),
    ];
    let cnt = s.get(32, Ty::I8);
    let sh = s.binop(Binop::VecShift(VecOp::Shr32x4), y, cnt);
    let msb = s.unop(Unop::GetMSBs8x16, y);
    let hi = s.unop(Unop::V128HIto64, x);
    let pair = s.binop(Binop::HiLo64toV128, Atom::u64(7), hi);
    for (i, r) in rs.into_iter().chain([sh, pair]).enumerate() {
        s.put(out(2 * i as u32), r);
    }
    let mw = s.zext(msb, Ty::I64);
    s.put(out(30), mw);
    env.set(32, 3);
    run_block(&mut env, s);
    let lanes8 = |v: u128| v.to_le_bytes();
    let from8 = |b: [u8; 16]| u128::from_le_bytes(b);
    let map8 = |f: &dyn Fn(u8, u8) -> u8| {
        let (la, lb) = (lanes8(a), lanes8(b));
        from8(core::array::from_fn(|i| f(la[i], lb[i])))
    };
    let map32 = |v: u128, f: &dyn Fn(u32, u32) -> u32, w: u128| {
        let mut r = 0u128;
        for i in 0..4 {
            r |= (f((v >> (32 * i)) as u32, (w >> (32 * i)) as u32) as u128) << (32 * i);
        }
        r
    };
    let got = |k: u32| env.get(out(2 * k)) as u128 | (env.get(out(2 * k + 1)) as u128) << 64;
    assert_eq!(got(0), map8(&|p, q| p.wrapping_add(q)));
    assert_eq!(got(1), map32(a, &|p, q| p.wrapping_sub(q), b));
    assert_eq!(got(2), map8(&|p, q| p.min(q)));
    assert_eq!(got(3), u128::MAX);
    let (la, lb) = (lanes8(a), lanes8(b));
    assert_eq!(got(4), from8(core::array::from_fn(|i| if i % 2 == 0 { la[i / 2] } else { lb[i / 2] })));
    assert_eq!(got(5), !a & b);
    let mut shl = 0u128;
    for i in 0..8 {
        shl |= ((((a >> (16 * i)) as u16) << 4) as u128) << (16 * i);
    }
    assert_eq!(got(6), shl);
    let w = |v: u128, i: u32| (v >> (32 * i)) as u32 as u128;
    assert_eq!(got(7), w(a, 3) | w(a, 2) << 32 | w(a, 1) << 64 | w(a, 0) << 96);
    assert_eq!(got(8), !a);
    assert_eq!(got(9), map32(b, &|p, _| p >> 3, 0));
    assert_eq!(got(10), (a >> 64) | 7u128 << 64);
    let msbs = lb.iter().enumerate().fold(0u64, |m, (i, &v)| m | ((v >> 7) as u64) << i);
    assert_eq!(env.get(out(30)), msbs);
}

#[test]
fn cas_and_fence() {
    let mut env = Env::new();
    let mut cell = 5u64;
    env.set(0, &mut cell as *mut u64 as u64);
    let mut s = sb();
    let p = s.get(0, Ty::I64);
    let o1 = s.new_temp(Ty::I64);
    s.stmts.push(Stmt::Cas { addr: p, expected: Atom::u64(5), new: Atom::u64(6), old: o1 });
    let o2 = s.new_temp(Ty::I64);
    s.stmts.push(Stmt::Cas { addr: p, expected: Atom::u64(5), new: Atom::u64(7), old: o2 });
    s.stmts.push(Stmt::Fence(vg_ir::Fence::Full));
    s.put(out(0), Atom::Tmp(o1));
    s.put(out(1), Atom::Tmp(o2));
    run_block(&mut env, s);
    assert_eq!((env.get(out(0)), env.get(out(1)), cell), (5, 6, 6));
}

#[test]
fn abi_hints_compile_to_nothing() {
    // The same block with and without a hint whose base only the hint reads: same code.
    let block = |hint: bool| {
        let mut s = sb();
        let x = s.get(0, Ty::I64);
        let y = s.binop(Binop::Sub(Ty::I64), x, Atom::u64(8));
        s.put(0, y);
        if hint {
            let base = s.binop(Binop::Sub(Ty::I64), y, Atom::u64(128));
            s.stmts.push(Stmt::AbiHint { base, len: 128, nia: y });
        }
        s.put(out(0), y);
        s_end(s)
    };
    let code = |hint| Amd64Host::compile(&block(hint), &LAYOUT, &Amd64Host::dispatch_addrs()).unwrap().bytes;
    assert_eq!(code(true), code(false));
    let mut env = Env::new();
    env.set(0, 100);
    run_block(&mut env, block(true));
    assert_eq!((env.get(0), env.get(out(0))), (92, 92));
}

#[test]
fn compact_code_for_simple_block() {
    // Get, add immediate, Put: should need no more than a handful of instructions.
    let mut s = sb();
    let x = s.get(0, Ty::I64);
    let y = s.binop(Binop::Add(Ty::I64), x, Atom::u64(8));
    s.put(0, y);
    let hc = Amd64Host::compile(&s_end(s), &LAYOUT, &Amd64Host::dispatch_addrs()).unwrap();
    let mut text = alloc::string::String::new();
    Amd64Host::disassemble(&hc.bytes, 0, &mut text);
    // dec/js, mov, add, mov, pc store, mov r11 + call, evcheck stub (pc store + 3)
    assert!(text.lines().count() <= 12, "{text}");
    let _ = Expr::Atom(Atom::u64(0));
}


/// A counting loop whose back edge targets the block's own entry (0x1000).
fn self_loop_block(limit: u64) -> Superblock {
    let mut s = sb();
    let x = s.get(out(0), Ty::I64);
    let x1 = s.binop(Binop::Add(Ty::I64), x, Atom::u64(1));
    s.put(out(0), x1);
    let again = s.binop(Binop::CmpLTU(Ty::I64), x1, Atom::u64(limit));
    s.exit(again, 0x1000, JumpKind::Boring);
    s_end(s)
}

#[test]
fn self_loops_jump_straight_back_to_the_block_start() {
    let mut env = Env::new();
    let s = self_loop_block(1000);
    let hc = Amd64Host::compile(&s, &LAYOUT, &Amd64Host::dispatch_addrs()).unwrap();
    // Only the fall-through exit is a chain site: the back edge is a plain jump to offset 0.
    assert_eq!(hc.chain_sites.iter().map(|c| c.dst).collect::<Vec<_>>(), vec![0x2000]);
    let mut text = alloc::string::String::new();
    Amd64Host::disassemble(&hc.bytes, 0, &mut text);
    assert!(text.contains("jb 0\n"), "{text}");
    env.set(PC, 0x1000);
    run_block(&mut env, s);
    assert_eq!(env.get(out(0)), 1000);
}

#[test]
fn self_loops_still_end_time_slices_with_the_entry_pc() {
    let mut env = Env::new();
    let (code, _) = env.install(&self_loop_block(1_000_000));
    let _g = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    EVENT_COUNTER.store(5, core::sync::atomic::Ordering::Relaxed);
    env.set(PC, 0x1000);
    // SAFETY: as in Env::run_at.
    let r = unsafe { Amd64Host::run(env.state.as_mut_ptr() as *mut u8, code, env.table.as_ptr() as *const u8, 15) };
    assert_eq!(r, RunExit::EventCheck);
    // Entries 1..=5 ran the body; the sixth entry's check ended the slice.
    assert_eq!(env.get(out(0)), 5);
    assert_eq!(env.pc(), 0x1000);
}
