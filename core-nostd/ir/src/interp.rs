//! IR interpreter: the reference semantics of every IR operation, and the second oracle in tests
//! (lifter checked against the CPU through it, back ends checked against it).
//!
//! Values are held as `u128`, zero-extended to their type's width (I1 is 0 or 1, floats are their
//! bit patterns). A V256 (only built by `V128HLtoV256` for `Fma`) keeps its high half aside;
//! V256 guest-state and memory accesses are not supported (nothing in the IR makes them).
//!
//! Points the IR documentation leaves open, fixed here (back ends may differ only where noted as
//! undefined):
//! - Shifts by an amount >= the width: `Shl`/`Shr` give 0, `Sar` fills with the sign bit.
//!   Front ends mask amounts, so this is undefined behaviour for them to rely on.
//! - `DivModU`/`DivModS` with a zero divisor or a quotient that does not fit the narrow type
//!   *fault*: the run stops before the statement, the pc of the faulting instruction (the last
//!   `IMark` passed; without one, the pc already in the guest state) is written to the guest
//!   state and returned with [`JumpKind::SigFpeIntDiv`]. This is the contract the back end
//!   meets by executing the host's `div`/`idiv`, which traps on exactly these inputs, and the
//!   core by mapping the trapping host instruction back to its guest instruction. So a front
//!   end needs no check of its own. A division whose result is unused may be removed, and its
//!   fault with it (as for loads).
//!   Remainders have the dividend's sign (x86 `idiv`).
//! - `Clz`/`Ctz` of 0 give the width (undefined for front ends).
//! - `MinF`/`MaxF` and the packed forms follow SSE: `min(a, b) = if a < b { a } else { b }`,
//!   `max(a, b) = if a > b { a } else { b }`, so a NaN in either operand or two zeroes give `b`.
//! - Float arithmetic rounds to nearest-even regardless of the guest's rounding mode; NaN results
//!   are those of the host's SSE unit (the x86 default NaN / first-operand propagation).
//! - `FToIntS*` of NaN or an out-of-range value give the minimum signed value ("integer
//!   indefinite"); `QNarrow*` saturate; vector shift counts >= the lane width give 0 (or the sign
//!   fill for `Sar`); `ShlBytes`/`ShrBytes` counts >= 16 give 0.
//! - `CCall` and `Dirty` call `Callee.addr` as `extern "C" fn(u64, ..., u64) -> u64` with six
//!   arguments (unused ones 0); narrower results are truncated to the declared type. A `Dirty`
//!   with `pass_state` receives the guest-state pointer first.
//! - `Cas` is performed as a plain load/compare/store (the interpreter is single-threaded).
//! - `Fma` rounds once: with the host's FMA instructions when it has them (so NaN results are
//!   the host's, as in generated code), else in software (the first NaN of z, x, y, quieted).
//!
//! Depends only on the IR definitions.

use crate::*;
use alloc::vec;
use alloc::vec::Vec;

/// Guest memory as seen by the interpreter. Accesses are little-endian byte copies.
pub trait Memory {
    fn load(&mut self, addr: u64, buf: &mut [u8]);
    fn store(&mut self, addr: u64, data: &[u8]);
}

/// Memory that is the host's own address space (guest and host share it). Accessing an unmapped
/// address faults the host, exactly as generated code would.
pub struct HostMemory;

impl Memory for HostMemory {
    fn load(&mut self, addr: u64, buf: &mut [u8]) {
        // SAFETY: guest addresses are host addresses; the caller runs code whose accesses it
        // trusts (tests point them into their own buffers), as the JIT's generated code would.
        unsafe { core::ptr::copy_nonoverlapping(addr as usize as *const u8, buf.as_mut_ptr(), buf.len()) }
    }
    fn store(&mut self, addr: u64, data: &[u8]) {
        // SAFETY: as for `load`.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), addr as usize as *mut u8, data.len()) }
    }
}

type HelperFn = extern "C" fn(u64, u64, u64, u64, u64, u64) -> u64;

fn call_helper(addr: usize, args: &[u64]) -> u64 {
    assert!(args.len() <= 6, "helper call with more than 6 arguments");
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    // SAFETY: `Callee.addr` is by contract an `extern "C"` function taking at most six integer
    // arguments and returning an integer; passing extra zero arguments in registers is harmless
    // under the SysV calling convention.
    let f: HelperFn = unsafe { core::mem::transmute::<usize, HelperFn>(addr) };
    f(a[0], a[1], a[2], a[3], a[4], a[5])
}

/// Execute `sb` against `state` (the guest state block, with shadows if the IR addresses them)
/// and `mem`. Returns the guest address to continue at and why the block was left.
pub fn run(sb: &Superblock, state: &mut [u8], mem: &mut dyn Memory) -> (u64, JumpKind) {
    let mut tmp: Vec<u128> = vec![0; sb.temps.len()];
    // High halves of V256 temps: (temp, bits 128..255).
    let mut hi256: Vec<(Temp, u128)> = Vec::new();
    let mut insn_pc: Option<u64> = None;
    for s in &sb.stmts {
        match s {
            Stmt::IMark { addr, .. } => insn_pc = Some(*addr),
            // A hint changes nothing the guest can see.
            Stmt::NoOp | Stmt::Fence(_) | Stmt::AbiHint { .. } => {}
            Stmt::Put { off, val } => {
                let ty = sb.atom_ty(*val);
                let v = atom(&tmp, *val);
                put(state, *off, ty, v);
            }
            Stmt::Store { addr, val } => {
                let ty = sb.atom_ty(*val);
                let v = atom(&tmp, *val);
                let n = ty.bytes() as usize;
                mem.store(atom(&tmp, *addr) as u64, &v.to_le_bytes()[..n]);
            }
            Stmt::WrTmp { dst, e } => {
                if let Expr::Binop { op, a, b } = e
                    && div_faults(*op, atom(&tmp, *a), atom(&tmp, *b))
                {
                    let pc = insn_pc.unwrap_or(get(state, sb.pc_offset, Ty::I64) as u64);
                    put(state, sb.pc_offset, Ty::I64, pc as u128);
                    return (pc, JumpKind::SigFpeIntDiv);
                }
                let v = match e {
                    Expr::Binop { op: Binop::V128HLtoV256, a, b } => {
                        hi256.push((*dst, atom(&tmp, *a)));
                        atom(&tmp, *b)
                    }
                    Expr::Binop { op: Binop::Fma(v), a, b } => {
                        let y = match a {
                            Atom::Tmp(t) => hi256.iter().rev().find(|e| e.0 == *t).map_or(0, |e| e.1),
                            Atom::Const(_) => 0,
                        };
                        fma(*v, atom(&tmp, *a), y, atom(&tmp, *b))
                    }
                    _ => eval(&tmp, e, state, mem),
                };
                tmp[dst.0 as usize] = v;
            }
            Stmt::Exit { guard, dst, kind } => {
                if atom(&tmp, *guard) & 1 != 0 {
                    return (*dst, *kind);
                }
            }
            Stmt::Dirty(d) => {
                if let Some(g) = d.guard
                    && atom(&tmp, g) & 1 == 0
                {
                    // A skipped call's result is defined as 0.
                    if let Some(t) = d.dst {
                        tmp[t.0 as usize] = 0;
                    }
                    continue;
                }
                let mut args: Vec<u64> = Vec::new();
                if d.pass_state {
                    args.push(state.as_mut_ptr() as u64);
                }
                args.extend(d.args.iter().map(|a| atom(&tmp, *a) as u64));
                let r = call_helper(d.callee.addr, &args);
                if let Some(t) = d.dst {
                    tmp[t.0 as usize] = (r & sb.temp_ty(t).mask()) as u128;
                }
            }
            Stmt::Cas { addr, expected, new, old } => {
                let ty = sb.temp_ty(*old);
                let a = atom(&tmp, *addr) as u64;
                let cur = load(mem, a, ty);
                if cur == atom(&tmp, *expected) {
                    let n = ty.bytes() as usize;
                    mem.store(a, &atom(&tmp, *new).to_le_bytes()[..n]);
                }
                tmp[old.0 as usize] = cur;
            }
        }
    }
    (atom(&tmp, sb.next) as u64, sb.jump)
}

fn atom(tmp: &[u128], a: Atom) -> u128 {
    match a {
        Atom::Tmp(t) => tmp[t.0 as usize],
        Atom::Const(c) => c.bits128(),
    }
}

fn width_mask(ty: Ty) -> u128 {
    match ty.bits() {
        128 | 256 => u128::MAX,
        b => (1u128 << b) - 1,
    }
}

fn get(state: &[u8], off: u32, ty: Ty) -> u128 {
    assert!(ty != Ty::V256, "the interpreter does not support V256");
    let n = ty.bytes() as usize;
    let mut b = [0u8; 16];
    b[..n].copy_from_slice(&state[off as usize..off as usize + n]);
    u128::from_le_bytes(b) & width_mask(ty)
}

fn put(state: &mut [u8], off: u32, ty: Ty, v: u128) {
    assert!(ty != Ty::V256, "the interpreter does not support V256");
    let n = ty.bytes() as usize;
    state[off as usize..off as usize + n].copy_from_slice(&v.to_le_bytes()[..n]);
}

fn load(mem: &mut dyn Memory, addr: u64, ty: Ty) -> u128 {
    assert!(ty != Ty::V256, "the interpreter does not support V256");
    let n = ty.bytes() as usize;
    let mut b = [0u8; 16];
    mem.load(addr, &mut b[..n]);
    u128::from_le_bytes(b) & width_mask(ty)
}

fn eval(tmp: &[u128], e: &Expr, state: &[u8], mem: &mut dyn Memory) -> u128 {
    match e {
        Expr::Atom(a) => atom(tmp, *a),
        Expr::Get { off, ty } => get(state, *off, *ty),
        Expr::Load { ty, addr } => load(mem, atom(tmp, *addr) as u64, *ty),
        Expr::Unop { op, a } => unop(*op, atom(tmp, *a)),
        Expr::Binop { op, a, b } => binop(*op, atom(tmp, *a), atom(tmp, *b)),
        Expr::Ite { cond, t, f } => {
            if atom(tmp, *cond) & 1 != 0 {
                atom(tmp, *t)
            } else {
                atom(tmp, *f)
            }
        }
        Expr::CCall { callee, ret, args } => {
            let a: Vec<u64> = args.iter().map(|x| atom(tmp, *x) as u64).collect();
            (call_helper(callee.addr, &a) & ret.mask()) as u128
        }
    }
}

/// Whether `op` is a division that faults on these operands (zero divisor, or a quotient that
/// does not fit the narrow type).
fn div_faults(op: Binop, a: u128, b: u128) -> bool {
    match op {
        Binop::DivModU(t) => b == 0 || a / b > width_mask(t),
        Binop::DivModS(t) => {
            let w = t.bits();
            let (n, d) = (sx(a, 2 * w), sx(b, w));
            if d == 0 {
                return true;
            }
            // checked_div fails only for i128::MIN / -1, whose quotient does not fit either.
            let q = n.checked_div(d);
            let lim = 1i128 << (w - 1);
            q.is_none_or(|q| q >= lim || q < -lim)
        }
        _ => false,
    }
}

/// Sign-extend the low `bits` of `v` to i128.
fn sx(v: u128, bits: u32) -> i128 {
    if bits >= 128 {
        return v as i128;
    }
    let s = 128 - bits;
    ((v << s) as i128) >> s
}

fn f64b(v: u128) -> f64 {
    f64::from_bits(v as u64)
}
fn f32b(v: u128) -> f32 {
    f32::from_bits(v as u32)
}

fn sqrt64(x: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        let r: f64;
        // SAFETY: sqrtsd only computes; SSE2 is part of the x86-64 baseline.
        unsafe { core::arch::asm!("sqrtsd {0}, {1}", out(xmm_reg) r, in(xmm_reg) x, options(pure, nomem, nostack)) };
        r
    }
    #[cfg(target_arch = "aarch64")]
    {
        let r: f64;
        // SAFETY: fsqrt only computes; FP is part of the AArch64 baseline.
        unsafe { core::arch::asm!("fsqrt {0:d}, {1:d}", out(vreg) r, in(vreg) x, options(pure, nomem, nostack)) };
        r
    }
}

fn sqrt32(x: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        let r: f32;
        // SAFETY: sqrtss only computes; SSE is part of the x86-64 baseline.
        unsafe { core::arch::asm!("sqrtss {0}, {1}", out(xmm_reg) r, in(xmm_reg) x, options(pure, nomem, nostack)) };
        r
    }
    #[cfg(target_arch = "aarch64")]
    {
        let r: f32;
        // SAFETY: fsqrt only computes; FP is part of the AArch64 baseline.
        unsafe { core::arch::asm!("fsqrt {0:s}, {1:s}", out(vreg) r, in(vreg) x, options(pure, nomem, nostack)) };
        r
    }
}

/// Round to nearest, ties to even (the default SSE rounding) without libm.
fn rint(x: f64) -> f64 {
    const TWO52: f64 = 4503599627370496.0;
    if x.is_nan() || x.abs() >= TWO52 {
        return x;
    }
    let r = (x.abs() + TWO52) - TWO52;
    if x.is_sign_negative() { -r } else { r }
}

/// Float -> signed integer of `bits` (32/64), "integer indefinite" when not representable.
fn f_to_int(x: f64, bits: u32, truncate: bool) -> u128 {
    let r = if truncate { x.trunc_toward_zero() } else { rint(x) };
    let lim = if bits == 32 { 2147483648.0f64 } else { 9223372036854775808.0f64 };
    let min = 1u128 << (bits - 1);
    if r.is_nan() || r >= lim || r < -lim {
        return min;
    }
    (r as i64 as u128) & width_mask(Ty::int_of_bytes(bits / 8))
}

trait TruncZero {
    fn trunc_toward_zero(self) -> f64;
}
impl TruncZero for f64 {
    fn trunc_toward_zero(self) -> f64 {
        const TWO52: f64 = 4503599627370496.0;
        if self.is_nan() || self.abs() >= TWO52 {
            return self;
        }
        // Exact: the magnitude fits in an i64.
        let t = self as i64 as f64;
        if t == 0.0 && self.is_sign_negative() { -0.0 } else { t }
    }
}

fn unop(op: Unop, a: u128) -> u128 {
    use Unop::*;
    match op {
        Not(t) => !a & width_mask(t),
        Neg(t) => a.wrapping_neg() & width_mask(t),
        Zext(_, t) => a & width_mask(t),
        Sext(f, t) => (sx(a, f.bits()) as u128) & width_mask(t),
        Trunc(_, t) => a & width_mask(t),
        Hi(t) => (a >> (t.bits() / 2)) & width_mask(op.result_ty()),
        Clz(t) => {
            let b = t.bits();
            let v = a & width_mask(t);
            if v == 0 { b as u128 } else { (v.leading_zeros() - (128 - b)) as u128 }
        }
        Ctz(t) => {
            let v = a & width_mask(t);
            if v == 0 { t.bits() as u128 } else { v.trailing_zeros() as u128 }
        }
        Popcnt(t) => (a & width_mask(t)).count_ones() as u128,
        Bswap(t) => match t {
            Ty::I16 => (a as u16).swap_bytes() as u128,
            Ty::I32 => (a as u32).swap_bytes() as u128,
            _ => (a as u64).swap_bytes() as u128,
        },
        Reinterp(_, t) => a & width_mask(t),
        IntSToF(f, t) => {
            let v = sx(a, f.bits()) as i64;
            match t {
                Ty::F32 => (v as f32).to_bits() as u128,
                _ => (v as f64).to_bits() as u128,
            }
        }
        FToIntSTrunc(f, t) | FToIntSNearest(f, t) => {
            let x = if f == Ty::F32 { f32b(a) as f64 } else { f64b(a) };
            f_to_int(x, t.bits(), matches!(op, FToIntSTrunc(..)))
        }
        F32toF64 => (f32b(a) as f64).to_bits() as u128,
        F64toF32 => (f64b(a) as f32).to_bits() as u128,
        SqrtF64 => sqrt64(f64b(a)).to_bits() as u128,
        SqrtF32 => sqrt32(f32b(a)).to_bits() as u128,
        NegF64 => (a as u64 ^ (1 << 63)) as u128,
        AbsF64 => (a as u64 & !(1 << 63)) as u128,
        V128to64 => a as u64 as u128,
        V128HIto64 => (a >> 64) as u64 as u128,
        I64UtoV128 => a as u64 as u128,
        I32UtoV128 => a as u32 as u128,
        V128to32 => a as u32 as u128,
        Vec1(v) => vec1(v, a),
        GetMSBs8x16 => {
            let mut r = 0u128;
            for i in 0..16 {
                r |= ((a >> (8 * i + 7)) & 1) << i;
            }
            r
        }
        ShufImm(v, imm) => shuf(v, a, imm),
    }
}

fn shift_amount(b: u128) -> u32 {
    (b as u8) as u32
}

fn binop(op: Binop, a: u128, b: u128) -> u128 {
    use Binop::*;
    match op {
        Add(t) => a.wrapping_add(b) & width_mask(t),
        Sub(t) => a.wrapping_sub(b) & width_mask(t),
        Mul(t) => a.wrapping_mul(b) & width_mask(t),
        And(_) => a & b,
        Or(_) => a | b,
        Xor(_) => a ^ b,
        Shl(t) => {
            let n = shift_amount(b);
            if n >= t.bits() { 0 } else { (a << n) & width_mask(t) }
        }
        Shr(t) => {
            let n = shift_amount(b);
            if n >= t.bits() { 0 } else { (a & width_mask(t)) >> n }
        }
        Sar(t) => {
            let n = shift_amount(b).min(t.bits() - 1);
            ((sx(a, t.bits()) >> n) as u128) & width_mask(t)
        }
        CmpEQ(_) => (a == b) as u128,
        CmpNE(_) => (a != b) as u128,
        CmpLTS(t) => (sx(a, t.bits()) < sx(b, t.bits())) as u128,
        CmpLES(t) => (sx(a, t.bits()) <= sx(b, t.bits())) as u128,
        CmpLTU(_) => (a < b) as u128,
        CmpLEU(_) => (a <= b) as u128,
        MullS(t) => (sx(a, t.bits()).wrapping_mul(sx(b, t.bits())) as u128) & width_mask(t.double()),
        MullU(t) => a.wrapping_mul(b) & width_mask(t.double()),
        DivModU(t) => {
            let w = t.bits();
            if b == 0 {
                return 0;
            }
            let (q, r) = (a / b, a % b);
            if q > width_mask(t) {
                return 0;
            }
            (r << w) | q
        }
        DivModS(t) => {
            let w = t.bits();
            let (n, d) = (sx(a, 2 * w), sx(b, w));
            if d == 0 {
                return 0;
            }
            let (q, r) = (n.wrapping_div(d), n.wrapping_rem(d));
            let lim = 1i128 << (w - 1);
            if q >= lim || q < -lim {
                return 0;
            }
            (((r as u128) & width_mask(t)) << w) | ((q as u128) & width_mask(t))
        }
        HiLo(t) => ((a & width_mask(t)) << t.bits()) | (b & width_mask(t)),
        AddF(t) | SubF(t) | MulF(t) | DivF(t) | MinF(t) | MaxF(t) => {
            if t == Ty::F32 {
                fbin32(op, f32b(a), f32b(b)).to_bits() as u128
            } else {
                fbin64(op, f64b(a), f64b(b)).to_bits() as u128
            }
        }
        CmpF(t) => {
            let (x, y) = if t == Ty::F32 { (f32b(a) as f64, f32b(b) as f64) } else { (f64b(a), f64b(b)) };
            if x.is_nan() || y.is_nan() {
                0x45
            } else if x < y {
                0x01
            } else if x == y {
                0x40
            } else {
                0x00
            }
        }
        HiLo64toV128 => ((a as u64 as u128) << 64) | (b as u64 as u128),
        SetV128lo64 => (a & !(u64::MAX as u128)) | (b as u64 as u128),
        SetV128lo32 => (a & !(u32::MAX as u128)) | (b as u32 as u128),
        Vec2(v) => vec2(v, a, b),
        VecShift(v) => vec_shift(v, a, shift_amount(b)),
        V128HLtoV256 | Fma(_) => unreachable!("V256 operations are evaluated in `run`"),
    }
}

fn fbin64(op: Binop, x: f64, y: f64) -> f64 {
    match op {
        Binop::AddF(_) => x + y,
        Binop::SubF(_) => x - y,
        Binop::MulF(_) => x * y,
        Binop::DivF(_) => x / y,
        Binop::MinF(_) => {
            if x < y { x } else { y }
        }
        _ => {
            if x > y { x } else { y }
        }
    }
}

fn fbin32(op: Binop, x: f32, y: f32) -> f32 {
    match op {
        Binop::AddF(_) => x + y,
        Binop::SubF(_) => x - y,
        Binop::MulF(_) => x * y,
        Binop::DivF(_) => x / y,
        Binop::MinF(_) => {
            if x < y { x } else { y }
        }
        _ => {
            if x > y { x } else { y }
        }
    }
}

/// Lane `i` of width `w` bits.
fn lane(v: u128, w: u32, i: u32) -> u128 {
    (v >> (w * i)) & width_mask(Ty::int_of_bytes(w / 8))
}

/// Build a vector from `f(i)` for each of the `128 / w` lanes (values are masked to `w`).
fn lanes(w: u32, mut f: impl FnMut(u32) -> u128) -> u128 {
    let m = width_mask(Ty::int_of_bytes(w / 8));
    (0..128 / w).fold(0, |acc, i| acc | ((f(i) & m) << (w * i)))
}

fn sat_s(v: i128, w: u32) -> u128 {
    let hi = (1i128 << (w - 1)) - 1;
    let lo = -(1i128 << (w - 1));
    v.clamp(lo, hi) as u128
}
fn sat_u(v: i128, w: u32) -> u128 {
    v.clamp(0, (1i128 << w) - 1) as u128
}

// The negated comparisons are the point: they are true for unordered (NaN) operands.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn fcmp_pred(p: u8, x: f64, y: f64) -> bool {
    let unord = x.is_nan() || y.is_nan();
    match p & 7 {
        0 => x == y,
        1 => x < y,
        2 => x <= y,
        3 => unord,
        4 => !(x == y),
        5 => !(x < y),
        6 => !(x <= y),
        _ => !unord,
    }
}

fn vec2(op: VecOp, a: u128, b: u128) -> u128 {
    use VecOp::*;
    let s = |w: u32, v: u128, i: u32| sx(lane(v, w, i), w);
    match op {
        And => a & b,
        Or => a | b,
        Xor => a ^ b,
        AndNot => !a & b,
        Add8x16 | Add16x8 | Add32x4 | Add64x2 => {
            let w = lane_width(op);
            lanes(w, |i| lane(a, w, i).wrapping_add(lane(b, w, i)))
        }
        Sub8x16 | Sub16x8 | Sub32x4 | Sub64x2 => {
            let w = lane_width(op);
            lanes(w, |i| lane(a, w, i).wrapping_sub(lane(b, w, i)))
        }
        QAddS8x16 | QAddS16x8 => {
            let w = lane_width(op);
            lanes(w, |i| sat_s(s(w, a, i) + s(w, b, i), w))
        }
        QAddU8x16 | QAddU16x8 => {
            let w = lane_width(op);
            lanes(w, |i| sat_u(lane(a, w, i) as i128 + lane(b, w, i) as i128, w))
        }
        QSubS8x16 | QSubS16x8 => {
            let w = lane_width(op);
            lanes(w, |i| sat_s(s(w, a, i) - s(w, b, i), w))
        }
        QSubU8x16 | QSubU16x8 => {
            let w = lane_width(op);
            lanes(w, |i| sat_u(lane(a, w, i) as i128 - lane(b, w, i) as i128, w))
        }
        Mul16x8 => lanes(16, |i| lane(a, 16, i).wrapping_mul(lane(b, 16, i))),
        MulHiS16x8 => lanes(16, |i| ((s(16, a, i) * s(16, b, i)) >> 16) as u128),
        MulHiU16x8 => lanes(16, |i| (lane(a, 16, i) * lane(b, 16, i)) >> 16),
        MullEvenU32x2 => lanes(64, |i| lane(a, 32, 2 * i) * lane(b, 32, 2 * i)),
        MAddS16x8 => lanes(32, |i| {
            (s(16, a, 2 * i) * s(16, b, 2 * i) + s(16, a, 2 * i + 1) * s(16, b, 2 * i + 1)) as u128
        }),
        AvgU8x16 | AvgU16x8 => {
            let w = lane_width(op);
            lanes(w, |i| (lane(a, w, i) + lane(b, w, i) + 1) >> 1)
        }
        SadU8x16 => lanes(64, |i| {
            (0..8).map(|j| (lane(a, 8, 8 * i + j) as i128 - lane(b, 8, 8 * i + j) as i128).unsigned_abs()).sum()
        }),
        MinU8x16 => lanes(8, |i| lane(a, 8, i).min(lane(b, 8, i))),
        MaxU8x16 => lanes(8, |i| lane(a, 8, i).max(lane(b, 8, i))),
        MinS16x8 => lanes(16, |i| s(16, a, i).min(s(16, b, i)) as u128),
        MaxS16x8 => lanes(16, |i| s(16, a, i).max(s(16, b, i)) as u128),
        CmpEQ8x16 | CmpEQ16x8 | CmpEQ32x4 => {
            let w = lane_width(op);
            lanes(w, |i| if lane(a, w, i) == lane(b, w, i) { u128::MAX } else { 0 })
        }
        CmpGTS8x16 | CmpGTS16x8 | CmpGTS32x4 => {
            let w = lane_width(op);
            lanes(w, |i| if s(w, a, i) > s(w, b, i) { u128::MAX } else { 0 })
        }
        InterleaveLO8x16 | InterleaveLO16x8 | InterleaveLO32x4 | InterleaveLO64x2 => {
            let w = lane_width(op);
            lanes(w, |i| if i % 2 == 0 { lane(a, w, i / 2) } else { lane(b, w, i / 2) })
        }
        InterleaveHI8x16 | InterleaveHI16x8 | InterleaveHI32x4 | InterleaveHI64x2 => {
            let w = lane_width(op);
            let half = 64 / w;
            lanes(w, |i| if i % 2 == 0 { lane(a, w, half + i / 2) } else { lane(b, w, half + i / 2) })
        }
        QNarrowS16x8to8x16 => lanes(8, |i| {
            let v = if i < 8 { s(16, a, i) } else { s(16, b, i - 8) };
            sat_s(v, 8)
        }),
        QNarrowU16x8to8x16 => lanes(8, |i| {
            let v = if i < 8 { s(16, a, i) } else { s(16, b, i - 8) };
            sat_u(v, 8)
        }),
        QNarrowS32x4to16x8 => lanes(16, |i| {
            let v = if i < 4 { s(32, a, i) } else { s(32, b, i - 4) };
            sat_s(v, 16)
        }),
        Add32Fx4 | Sub32Fx4 | Mul32Fx4 | Div32Fx4 | Min32Fx4 | Max32Fx4 => {
            let f = fop_of(op);
            lanes(32, |i| fbin32(f, f32::from_bits(lane(a, 32, i) as u32), f32::from_bits(lane(b, 32, i) as u32)).to_bits() as u128)
        }
        Add64Fx2 | Sub64Fx2 | Mul64Fx2 | Div64Fx2 | Min64Fx2 | Max64Fx2 => {
            let f = fop_of(op);
            lanes(64, |i| fbin64(f, f64::from_bits(lane(a, 64, i) as u64), f64::from_bits(lane(b, 64, i) as u64)).to_bits() as u128)
        }
        CmpF32x4(p) => lanes(32, |i| {
            let (x, y) = (f32::from_bits(lane(a, 32, i) as u32), f32::from_bits(lane(b, 32, i) as u32));
            if fcmp_pred(p, x as f64, y as f64) { u128::MAX } else { 0 }
        }),
        CmpF64x2(p) => lanes(64, |i| {
            let (x, y) = (f64::from_bits(lane(a, 64, i) as u64), f64::from_bits(lane(b, 64, i) as u64));
            if fcmp_pred(p, x, y) { u128::MAX } else { 0 }
        }),
        Perm8x16 => lanes(8, |i| {
            let k = lane(b, 8, i);
            if k & 0x80 != 0 { 0 } else { lane(a, 8, (k & 15) as u32) }
        }),
        MinS8x16 => lanes(8, |i| s(8, a, i).min(s(8, b, i)) as u128),
        MaxS8x16 => lanes(8, |i| s(8, a, i).max(s(8, b, i)) as u128),
        MinU16x8 => lanes(16, |i| lane(a, 16, i).min(lane(b, 16, i))),
        MaxU16x8 => lanes(16, |i| lane(a, 16, i).max(lane(b, 16, i))),
        MinS32x4 => lanes(32, |i| s(32, a, i).min(s(32, b, i)) as u128),
        MaxS32x4 => lanes(32, |i| s(32, a, i).max(s(32, b, i)) as u128),
        MinU32x4 => lanes(32, |i| lane(a, 32, i).min(lane(b, 32, i))),
        MaxU32x4 => lanes(32, |i| lane(a, 32, i).max(lane(b, 32, i))),
        Mul32x4 => lanes(32, |i| lane(a, 32, i).wrapping_mul(lane(b, 32, i))),
        MullEvenS32x2 => lanes(64, |i| (s(32, a, 2 * i) * s(32, b, 2 * i)) as u128),
        CmpEQ64x2 => lanes(64, |i| if lane(a, 64, i) == lane(b, 64, i) { u128::MAX } else { 0 }),
        CmpGTS64x2 => lanes(64, |i| if s(64, a, i) > s(64, b, i) { u128::MAX } else { 0 }),
        QNarrowU32x4to16x8 => lanes(16, |i| {
            let v = if i < 4 { s(32, a, i) } else { s(32, b, i - 4) };
            sat_u(v, 16)
        }),
        MAddUS8x16 => lanes(16, |i| {
            let p = |k: u32| lane(a, 8, k) as i128 * s(8, b, k);
            sat_s(p(2 * i) + p(2 * i + 1), 16)
        }),
        MulHiRS16x8 => lanes(16, |i| ((((s(16, a, i) * s(16, b, i)) >> 14) + 1) >> 1) as u128),
        Sign8x16 | Sign16x8 | Sign32x4 => {
            let w = match op {
                Sign8x16 => 8,
                Sign16x8 => 16,
                _ => 32,
            };
            lanes(w, |i| match s(w, b, i) {
                0 => 0,
                x if x < 0 => s(w, a, i).wrapping_neg() as u128,
                _ => lane(a, w, i),
            })
        }
        _ => panic!("interp: {:?} is not a two-operand vector operation", op),
    }
}

fn fop_of(op: VecOp) -> Binop {
    use VecOp::*;
    match op {
        Add32Fx4 | Add64Fx2 => Binop::AddF(Ty::F64),
        Sub32Fx4 | Sub64Fx2 => Binop::SubF(Ty::F64),
        Mul32Fx4 | Mul64Fx2 => Binop::MulF(Ty::F64),
        Div32Fx4 | Div64Fx2 => Binop::DivF(Ty::F64),
        Min32Fx4 | Min64Fx2 => Binop::MinF(Ty::F64),
        _ => Binop::MaxF(Ty::F64),
    }
}

/// Lane width in bits of an integer lane-wise operation.
fn lane_width(op: VecOp) -> u32 {
    use VecOp::*;
    match op {
        Add8x16 | Sub8x16 | QAddS8x16 | QAddU8x16 | QSubS8x16 | QSubU8x16 | AvgU8x16 | CmpEQ8x16
        | CmpGTS8x16 | InterleaveLO8x16 | InterleaveHI8x16 => 8,
        Add16x8 | Sub16x8 | QAddS16x8 | QAddU16x8 | QSubS16x8 | QSubU16x8 | AvgU16x8 | CmpEQ16x8
        | CmpGTS16x8 | InterleaveLO16x8 | InterleaveHI16x8 | Shl16x8 | Shr16x8 | Sar16x8 => 16,
        Add32x4 | Sub32x4 | CmpEQ32x4 | CmpGTS32x4 | InterleaveLO32x4 | InterleaveHI32x4 | Shl32x4
        | Shr32x4 | Sar32x4 => 32,
        _ => 64,
    }
}

fn vec_shift(op: VecOp, a: u128, n: u32) -> u128 {
    use VecOp::*;
    match op {
        ShlBytes => {
            if n >= 16 { 0 } else { a << (8 * n) }
        }
        ShrBytes => {
            if n >= 16 { 0 } else { a >> (8 * n) }
        }
        Shl16x8 | Shl32x4 | Shl64x2 => {
            let w = lane_width(op);
            if n >= w { 0 } else { lanes(w, |i| lane(a, w, i) << n) }
        }
        Shr16x8 | Shr32x4 | Shr64x2 => {
            let w = lane_width(op);
            if n >= w { 0 } else { lanes(w, |i| lane(a, w, i) >> n) }
        }
        Sar16x8 | Sar32x4 => {
            let w = lane_width(op);
            let n = n.min(w - 1);
            lanes(w, |i| (sx(lane(a, w, i), w) >> n) as u128)
        }
        _ => panic!("interp: {:?} is not a vector shift", op),
    }
}

fn shuf(op: VecOp, a: u128, imm: u8) -> u128 {
    let sel = |k: u32| ((imm >> (2 * k)) & 3) as u32;
    match op {
        VecOp::Shuf32x4 => lanes(32, |i| lane(a, 32, sel(i))),
        VecOp::ShufLo16x4 => lanes(16, |i| if i < 4 { lane(a, 16, sel(i)) } else { lane(a, 16, i) }),
        VecOp::ShufHi16x4 => lanes(16, |i| if i < 4 { lane(a, 16, i) } else { lane(a, 16, 4 + sel(i - 4)) }),
        _ => panic!("interp: {:?} is not an immediate shuffle", op),
    }
}

fn vec1(op: VecOp, a: u128) -> u128 {
    use VecOp::*;
    let f32l = |i: u32| f32::from_bits(lane(a, 32, i) as u32);
    let f64l = |i: u32| f64::from_bits(lane(a, 64, i) as u64);
    match op {
        Sqrt32Fx4 => lanes(32, |i| sqrt32(f32l(i)).to_bits() as u128),
        Sqrt64Fx2 => lanes(64, |i| sqrt64(f64l(i)).to_bits() as u128),
        I32StoF32x4 => lanes(32, |i| (sx(lane(a, 32, i), 32) as i32 as f32).to_bits() as u128),
        F32toI32STruncx4 => lanes(32, |i| f_to_int(f32l(i) as f64, 32, true)),
        I32StoF64x2 => lanes(64, |i| (sx(lane(a, 32, i), 32) as i32 as f64).to_bits() as u128),
        F64toI32STruncx2 => lanes(32, |i| if i < 2 { f_to_int(f64l(i), 32, true) } else { 0 }),
        F32toF64x2 => lanes(64, |i| (f32l(i) as f64).to_bits() as u128),
        F64toF32x2 => lanes(32, |i| if i < 2 { (f64l(i) as f32).to_bits() as u128 } else { 0 }),
        Abs8x16 => lanes(8, |i| sx(lane(a, 8, i), 8).unsigned_abs()),
        Abs16x8 => lanes(16, |i| sx(lane(a, 16, i), 16).unsigned_abs()),
        Abs32x4 => lanes(32, |i| sx(lane(a, 32, i), 32).unsigned_abs()),
        _ => panic!("interp: {:?} is not a one-operand vector operation", op),
    }
}

/// `Fma32Fx4(k)`/`Fma64Fx2(k)` of factors `x`, `y` and addend `z` (see [`VecOp`]).
fn fma(op: VecOp, x: u128, y: u128, z: u128) -> u128 {
    let (k, w) = match op {
        VecOp::Fma32Fx4(k) => (k, 32),
        VecOp::Fma64Fx2(k) => (k, 64),
        _ => panic!("interp: {op:?} is not a fused multiply-add"),
    };
    if let Some(r) = host_fma(k, w, x, y, z) {
        return r;
    }
    let sign = |v: u128| if w == 32 { v ^ 0x8000_0000 } else { v ^ (1 << 63) };
    lanes(w, |i| {
        let (a, b, c) = (lane(x, w, i), lane(y, w, i), lane(z, w, i));
        let a = if k & 2 != 0 { sign(a) } else { a };
        let c = if k & 1 != 0 { sign(c) } else { c };
        soft_fma(a as u64, b as u64, c as u64, w) as u128
    })
}

/// The host's FMA unit, if it has one (and the OS enabled the AVX state): the instructions
/// generated code uses, so NaN results agree with it.
#[cfg(target_arch = "x86_64")]
fn host_fma(k: u8, w: u32, x: u128, y: u128, z: u128) -> Option<u128> {
    use core::arch::x86_64::{__cpuid, _xgetbv};
    use core::sync::atomic::{AtomicU8, Ordering};
    static HAS: AtomicU8 = AtomicU8::new(0);
    if HAS.load(Ordering::Relaxed) == 0 {
        // SAFETY: cpuid is available on every x86-64; xgetbv only when osxsave (bit 27) is set.
        let ok = unsafe {
            let c = __cpuid(1).ecx;
            c & (1 << 12) != 0 && c & (1 << 27) != 0 && c & (1 << 28) != 0 && _xgetbv(0) & 6 == 6
        };
        HAS.store(if ok { 2 } else { 1 }, Ordering::Relaxed);
    }
    if HAS.load(Ordering::Relaxed) != 2 {
        return None;
    }
    use core::arch::x86_64::__m128i;
    // SAFETY: u128 and __m128i are both 16 plain bytes.
    let (x, y, mut d) = unsafe {
        use core::mem::transmute;
        (transmute::<u128, __m128i>(x), transmute::<u128, __m128i>(y), transmute::<u128, __m128i>(z))
    };
    macro_rules! f {
        ($mn:literal) => {
            // SAFETY: the host has FMA (checked above); the instruction only computes.
            unsafe {
                core::arch::asm!(
                    concat!($mn, " {d}, {a}, {b}"),
                    d = inout(xmm_reg) d, a = in(xmm_reg) x, b = in(xmm_reg) y,
                    options(pure, nomem, nostack)
                )
            }
        };
    }
    match (w, k & 3) {
        (32, 0) => f!("vfmadd231ps"),
        (32, 1) => f!("vfmsub231ps"),
        (32, 2) => f!("vfnmadd231ps"),
        (32, _) => f!("vfnmsub231ps"),
        (_, 0) => f!("vfmadd231pd"),
        (_, 1) => f!("vfmsub231pd"),
        (_, 2) => f!("vfnmadd231pd"),
        _ => f!("vfnmsub231pd"),
    }
    // SAFETY: as above.
    Some(unsafe { core::mem::transmute::<__m128i, u128>(d) })
}
#[cfg(not(target_arch = "x86_64"))]
fn host_fma(_: u8, _: u32, _: u128, _: u128, _: u128) -> Option<u128> {
    None
}

/// `a * b + c` rounded once to nearest-even, on the bit patterns of two binary32 (`w` = 32) or
/// binary64 values.
pub fn soft_fma(a: u64, b: u64, c: u64, w: u32) -> u64 {
    let (frac, bias) = if w == 32 { (23u32, 127i32) } else { (52, 1023) };
    let exp_mask = (1u64 << (w - 1 - frac)) - 1;
    let frac_mask = (1u64 << frac) - 1;
    let sign_bit = 1u64 << (w - 1);
    let quiet = 1u64 << (frac - 1);
    let is_nan = |v: u64| (v >> frac) & exp_mask == exp_mask && v & frac_mask != 0;
    let is_inf = |v: u64| (v & !sign_bit) == exp_mask << frac;
    let is_zero = |v: u64| v & !sign_bit == 0;
    for v in [c, a, b] {
        if is_nan(v) {
            return v | quiet;
        }
    }
    let default_nan = (exp_mask << frac) | quiet | sign_bit;
    let ps = (a ^ b) & sign_bit;
    if is_inf(a) || is_inf(b) {
        if is_zero(a) || is_zero(b) {
            return default_nan;
        }
        if is_inf(c) && (c & sign_bit) != ps {
            return default_nan;
        }
        return ps | exp_mask << frac;
    }
    if is_inf(c) {
        return c;
    }
    if is_zero(a) || is_zero(b) {
        // An exact zero product: the sum of signed zeroes is -0 only if both are negative.
        return if is_zero(c) { ps & c } else { c };
    }
    // (integer mantissa, exponent) with value m * 2^e.
    let parts = |v: u64| {
        let f = (v >> frac) & exp_mask;
        let m = v & frac_mask;
        if f == 0 { (m, 1 - bias - frac as i32) } else { (m | 1 << frac, f as i32 - bias - frac as i32) }
    };
    let (ma, ea) = parts(a);
    let (mb, eb) = parts(b);
    // Both terms with their top bit at 124: exact, with room for a carry.
    let norm = |m: u128, e: i32| {
        let sh = m.leading_zeros() as i32 - 3;
        (m << sh, e - sh)
    };
    let (mp, ep) = norm(ma as u128 * mb as u128, ea + eb);
    if is_zero(c) {
        return round(ps, mp, ep, frac, bias, w);
    }
    let (mc, ec) = parts(c);
    let (mc, ec) = norm(mc as u128, ec);
    let cs = c & sign_bit;
    let ((big, be, bs), (small, se, ss)) = if ep >= ec { ((mp, ep, ps), (mc, ec, cs)) } else { ((mc, ec, cs), (mp, ep, ps)) };
    let d = (be - se) as u32;
    let small = if d >= 128 {
        1
    } else {
        let lost = small & ((1u128 << d) - 1) != 0;
        (small >> d) | lost as u128
    };
    let (m, s) = if bs == ss {
        (big + small, bs)
    } else if big >= small {
        (big - small, bs)
    } else {
        (small - big, ss)
    };
    if m == 0 {
        return 0;
    }
    round(s, m, be, frac, bias, w)
}

/// Round `m * 2^e` (m != 0, a sticky bit at bit 0 if inexact) to the format with `frac`
/// fraction bits, with sign `s`.
fn round(s: u64, m: u128, e: i32, frac: u32, bias: i32, w: u32) -> u64 {
    let msb = 127 - m.leading_zeros() as i32;
    let big_e = msb + e;
    let min_e = 1 - bias;
    // Bits to drop: down to `frac` fraction bits, more for a subnormal result.
    let shift = if big_e >= min_e { msb - frac as i32 } else { (min_e - frac as i32) - e };
    let mant = if shift <= 0 {
        (m << (-shift) as u32) as u64
    } else if shift >= 128 {
        0
    } else {
        let sh = shift as u32;
        let q = (m >> sh) as u64;
        let rem = m & ((1u128 << sh) - 1);
        let half = 1u128 << (sh - 1);
        if rem > half || (rem == half && q & 1 != 0) { q + 1 } else { q }
    };
    let inf = ((1u64 << (w - 1 - frac)) - 1) << frac;
    if big_e < min_e {
        // Subnormal (a carry into bit `frac` makes it the smallest normal, as the bits say).
        return s | mant;
    }
    let field = big_e + bias;
    if field >= (1 << (w - 1 - frac)) - 1 {
        return s | inf;
    }
    // The implicit bit (and a rounding carry out of the fraction) adds to the exponent field.
    let bits = (((field - 1) as u64) << frac) + mant;
    s | bits.min(inf)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    struct Buf(std::vec::Vec<u8>, u64);
    impl Memory for Buf {
        fn load(&mut self, addr: u64, buf: &mut [u8]) {
            let o = (addr - self.1) as usize;
            buf.copy_from_slice(&self.0[o..o + buf.len()]);
        }
        fn store(&mut self, addr: u64, data: &[u8]) {
            let o = (addr - self.1) as usize;
            self.0[o..o + data.len()].copy_from_slice(data);
        }
    }

    extern "C" fn add3(a: u64, b: u64, c: u64) -> u64 {
        a + b + c
    }

    #[test]
    fn block_with_exit_load_store_and_call() {
        let mut sb = Superblock::new(8);
        let x = sb.get(0, Ty::I64);
        let y = sb.load(Ty::I32, Atom::u64(0x1000));
        let y64 = sb.zext(y, Ty::I64);
        let s = sb.ccall(Callee { name: "add3", addr: add3 as extern "C" fn(u64, u64, u64) -> u64 as usize }, Ty::I64, alloc::vec![x, y64, Atom::u64(1)]);
        sb.store(Atom::u64(0x1008), s);
        sb.put(16, s);
        let z = sb.binop(Binop::CmpEQ(Ty::I64), s, Atom::u64(0));
        sb.exit(z, 0x99, JumpKind::Boring);
        sb.next = Atom::u64(0x1234);
        let mut st = [0u8; 32];
        st[0] = 5;
        let mut m = Buf(std::vec![0; 16], 0x1000);
        m.0[0] = 7;
        let (pc, k) = run(&sb, &mut st, &mut m);
        assert_eq!((pc, k), (0x1234, JumpKind::Boring));
        assert_eq!(st[16], 13);
        assert_eq!(m.0[8], 13);
    }

    #[test]
    fn faulting_division_stops_at_the_pc_in_the_state() {
        for (op, hi, lo, d) in [
            (Binop::DivModU(Ty::I64), 0u64, 10u64, 0u64),
            (Binop::DivModU(Ty::I64), 1, 0, 1),
            (Binop::DivModS(Ty::I32), u64::MAX, 0x8000_0000, 0xffff_ffff),
            (Binop::DivModS(Ty::I8), 0xff, 0x80, 0xff),
        ] {
            let ty = match op {
                Binop::DivModU(t) | Binop::DivModS(t) => t,
                _ => unreachable!(),
            };
            let mut sb = Superblock::new(8);
            sb.put(8, Atom::u64(0x4444));
            let n = sb.binop(Binop::HiLo(ty), Atom::Const(Const::int(ty, hi)), Atom::Const(Const::int(ty, lo)));
            let qr = sb.binop(op, n, Atom::Const(Const::int(ty, d)));
            sb.put(0, qr);
            sb.put(8, Atom::u64(0x5555));
            sb.next = Atom::u64(0x1234);
            let mut st = [0u8; 32];
            let mut m = Buf(std::vec![], 0);
            assert_eq!(run(&sb, &mut st, &mut m), (0x4444, JumpKind::SigFpeIntDiv), "{op:?} {hi:#x}:{lo:#x} / {d:#x}");
            assert_eq!(st[0], 0, "the division's result must not be written");
        }
        // The largest quotients that fit do not fault.
        assert!(!div_faults(Binop::DivModS(Ty::I8), (-128i16 as u16) as u128, 1));
        assert!(!div_faults(Binop::DivModU(Ty::I64), (1u128 << 64) - 1, 1));
        assert!(!div_faults(Binop::DivModS(Ty::I64), (-(1i128 << 63)) as u128, 1));
    }

    #[test]
    fn arithmetic_edge_cases() {
        assert_eq!(binop(Binop::DivModS(Ty::I32), (-7i64) as u64 as u128, 2), ((-1i32 as u32 as u128) << 32) | (-3i32 as u32 as u128));
        assert_eq!(binop(Binop::MullS(Ty::I8), 0xff, 0x02), 0xfffe);
        assert_eq!(binop(Binop::Sar(Ty::I16), 0x8000, 15), 0xffff);
        assert_eq!(unop(Unop::Sext(Ty::I1, Ty::I32), 1), 0xffff_ffff);
        assert_eq!(unop(Unop::FToIntSTrunc(Ty::F64, Ty::I32), (1e10f64).to_bits() as u128), 0x8000_0000);
        assert_eq!(unop(Unop::FToIntSNearest(Ty::F64, Ty::I64), (2.5f64).to_bits() as u128), 2);
        assert_eq!(unop(Unop::FToIntSTrunc(Ty::F64, Ty::I64), (-2.7f64).to_bits() as u128), (-2i64) as u64 as u128);
        assert_eq!(binop(Binop::CmpF(Ty::F64), f64::NAN.to_bits() as u128, 0), 0x45);
        assert_eq!(vec2(VecOp::QNarrowU16x8to8x16, 0x0100_ffff, 0), 0xff00);
        assert_eq!(unop(Unop::GetMSBs8x16, 0x80 | (0x80 << 120)), 0x8001);
        assert_eq!(shuf(VecOp::Shuf32x4, 0x3333_3333_2222_2222_1111_1111_0000_0000, 0x1b), 0x0000_0000_1111_1111_2222_2222_3333_3333);
    }

    /// Software FMA against the host's (libm's correctly rounded `mul_add`) on values whose
    /// products and sums round: random bits, nearby exponents, cancellation, subnormals,
    /// overflow, infinities and zeroes.
    #[test]
    fn soft_fma_rounds_once() {
        let mut r = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r
        };
        let special = [0u64, 1 << 63, 0x7ff0 << 48, 0xfff0 << 48, 1, 0x000f_ffff_ffff_ffff, 0x7fef_ffff_ffff_ffff, 0x3ff0 << 48];
        for n in 0..200_000 {
            let mut pick = |k: u64| match k % 5 {
                0 => next(),
                1 => special[(next() % 8) as usize],
                2 => (next() & 0x800f_ffff_ffff_ffff) | (0x3f0 + next() % 32) << 52,
                3 => next() & 0x801f_ffff_ffff_ffff,
                _ => (next() & 0x800f_ffff_ffff_ffff) | (0x7e0 + next() % 31) << 52,
            };
            let (a, b) = (pick(n), pick(n / 5));
            // An addend near -a*b half the time: cancellation.
            let c = if n % 2 == 0 { (-(f64::from_bits(a) * f64::from_bits(b))).to_bits() ^ (next() & 0xff) } else { pick(n / 25) };
            let want = f64::from_bits(a).mul_add(f64::from_bits(b), f64::from_bits(c));
            let got = f64::from_bits(soft_fma(a, b, c, 64));
            assert!(want.to_bits() == got.to_bits() || (want.is_nan() && got.is_nan()), "fma({a:#x}, {b:#x}, {c:#x}): want {want:e} got {got:e}");
            let (a32, b32, c32) = (a as u32 ^ (a >> 32) as u32, b as u32, (c >> 32) as u32);
            let want = f32::from_bits(a32).mul_add(f32::from_bits(b32), f32::from_bits(c32));
            let got = f32::from_bits(soft_fma(a32 as u64, b32 as u64, c32 as u64, 32) as u32);
            assert!(want.to_bits() == got.to_bits() || (want.is_nan() && got.is_nan()), "fmaf({a32:#x}, {b32:#x}, {c32:#x}): want {want:e} got {got:e}");
        }
    }

    #[test]
    fn fma_ops_negate_as_named() {
        let v = |x: f64, y: f64| (y.to_bits() as u128) << 64 | x.to_bits() as u128;
        let (x, y, z) = (v(2.0, 3.0), v(5.0, 7.0), v(1.0, 0.5));
        assert_eq!(fma(VecOp::Fma64Fx2(0), x, y, z), v(11.0, 21.5));
        assert_eq!(fma(VecOp::Fma64Fx2(1), x, y, z), v(9.0, 20.5));
        assert_eq!(fma(VecOp::Fma64Fx2(2), x, y, z), v(-9.0, -20.5));
        assert_eq!(fma(VecOp::Fma64Fx2(3), x, y, z), v(-11.0, -21.5));
        // 1 + 2^-30 squared minus 1: the fused result keeps the 2^-60 term.
        let e = 1.0 + f64::powi(2.0, -30);
        let r = fma(VecOp::Fma64Fx2(1), v(e, 0.0), v(e, 0.0), v(1.0, 0.0));
        assert_eq!(f64::from_bits(r as u64), f64::powi(2.0, -29) + f64::powi(2.0, -60));
    }
}
