//! The amd64 vcode: x86-64 instructions over virtual registers, produced by instruction
//! selection and consumed by register allocation and emission.
//!
//! Register conventions of generated code:
//! - `rbp` points to the guest state (all `Get`/`Put` are `[rbp + off]`), `rsp` is the
//!   dispatcher's frame and stays fixed (16-aligned) except inside calls.
//! - Scratch, never allocated: `rax`, `rdx` (mul/div, helper results, dispatcher codes),
//!   `rcx` (shift counts, address base reloads), `r11` (two-address temporaries, spill
//!   reloads, patchable exits), `xmm14`, `xmm15` (vector temporaries).
//! - Allocatable: `rsi rdi r8 r9 r10` (caller-saved, preferred) and `rbx r12 r13 r14 r15`
//!   (callee-saved: survive helper calls); `xmm0..xmm13` (all caller-saved).
//!
//! Value representation: an integer vreg holds an I8/I16/I32 value in its low bits with the
//! upper bits undefined; an I1 is bit 0 (other bits undefined). I128 values are a pair of
//! integer vregs (lo, hi). F32/F64 live in the low lanes of an xmm vreg, V128 in a whole one.

use alloc::vec::Vec;
use vg_core::regalloc::{HostRegs, Liveness, RegClass, VReg};
use vg_ir::JumpKind;

pub const RAX: u8 = 0;
pub const RCX: u8 = 1;
pub const RDX: u8 = 2;
pub const RBP: u8 = 5;
pub const RSI: u8 = 6;
pub const RDI: u8 = 7;
pub const R8: u8 = 8;
pub const R9: u8 = 9;
pub const R11: u8 = 11;
pub const XTMP0: u8 = 14;
pub const XTMP1: u8 = 15;

/// Allocatable registers in order of preference.
pub const HOST_REGS: HostRegs = HostRegs {
    int: &[6, 7, 8, 9, 10, 3, 12, 13, 14, 15],
    vec: &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
};
/// Registers a SysV call destroys (of those the allocator hands out).
pub const CALL_CLOBBER_INT: u64 = (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10);
pub const CALL_CLOBBER_VEC: u64 = 0x3fff;
/// SysV integer argument registers.
pub const ARG_REGS: [u8; 6] = [RDI, RSI, RDX, RCX, R8, 9];

/// x86 condition codes (the low nibble of `jcc`/`setcc`/`cmovcc`).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Cc(pub u8);

impl Cc {
    pub const B: Cc = Cc(0x2);
    pub const E: Cc = Cc(0x4);
    pub const NE: Cc = Cc(0x5);
    pub const BE: Cc = Cc(0x6);
    pub const L: Cc = Cc(0xc);
    pub const LE: Cc = Cc(0xe);
    pub const fn invert(self) -> Cc {
        Cc(self.0 ^ 1)
    }
}

/// An address: `[base + index * scale + disp]`; a `None` base is the guest state (`rbp`).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Amode {
    pub base: Option<VReg>,
    pub index: Option<(VReg, u8)>,
    pub disp: i32,
}

impl Amode {
    pub const fn state(off: u32) -> Amode {
        Amode { base: None, index: None, disp: off as i32 }
    }
    fn regs(&self, f: &mut impl FnMut(VReg)) {
        if let Some(b) = self.base {
            f(b)
        }
        if let Some((i, _)) = self.index {
            f(i)
        }
    }
}

/// A second integer operand: register, memory or sign-extended 32-bit immediate.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Src {
    R(VReg),
    M(Amode),
    I(i32),
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum AluOp {
    Add,
    Sub,
    And,
    Or,
    Xor,
    Mul,
}

impl AluOp {
    pub fn commutative(self) -> bool {
        !matches!(self, AluOp::Sub)
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ShiftOp {
    Shl,
    Shr,
    Sar,
}

/// One-operand integer operations `dst = op(a)`.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum UnOp {
    Not,
    Neg,
    Bswap64,
    Bswap32,
    Bswap16,
    Zx8,
    Zx16,
    Zx32,
    Sx8,
    Sx16,
    Sx32,
    /// Keep bit 0 (zero-extend an I1).
    Zx1,
    /// All ones if bit 0 is set.
    Sx1,
    /// Arithmetic shift right by 63 (the high half of a sign-extension to I128).
    SignOf64,
    /// Count leading/trailing zeroes (input non-zero), population count.
    Clz32,
    Clz64,
    Ctz32,
    Ctz64,
    Popcnt32,
    Popcnt64,
}

/// Two-address SSE operations `dst = a op b` on xmm registers.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum SseOp {
    Pand, Por, Pxor, Pandn,
    Paddb, Paddw, Paddd, Paddq, Psubb, Psubw, Psubd, Psubq,
    Paddsb, Paddusb, Paddsw, Paddusw, Psubsb, Psubusb, Psubsw, Psubusw,
    Pmullw, Pmulhw, Pmulhuw, Pmuludq, Pmaddwd, Pavgb, Pavgw, Psadbw,
    Pminub, Pmaxub, Pminsw, Pmaxsw,
    Pcmpeqb, Pcmpeqw, Pcmpeqd, Pcmpgtb, Pcmpgtw, Pcmpgtd,
    Punpcklbw, Punpcklwd, Punpckldq, Punpcklqdq, Punpckhbw, Punpckhwd, Punpckhdq, Punpckhqdq,
    Packsswb, Packuswb, Packssdw,
    Addps, Subps, Mulps, Divps, Minps, Maxps, Addpd, Subpd, Mulpd, Divpd, Minpd, Maxpd,
    Cmpps(u8), Cmppd(u8),
    Addsd, Subsd, Mulsd, Divsd, Minsd, Maxsd, Addss, Subss, Mulss, Divss, Minss, Maxss,
    /// Merge the low 64 / 32 bits of `b` into `a` (movsd/movss register forms).
    Movsd, Movss,
    // SSSE3, SSE4.1, SSE4.2 (see `Feature`).
    Pshufb, Pmaddubsw, Pmulhrsw, Psignb, Psignw, Psignd,
    Pminsb, Pmaxsb, Pminuw, Pmaxuw, Pminsd, Pmaxsd, Pminud, Pmaxud, Pmulld, Pmuldq, Pcmpeqq, Packusdw,
    Pcmpgtq,
}

impl SseOp {
    pub fn commutative(self) -> bool {
        use SseOp::*;
        matches!(
            self,
            Pand | Por | Pxor | Paddb | Paddw | Paddd | Paddq | Paddsb | Paddusb | Paddsw | Paddusw
                | Pmullw | Pmulhw | Pmulhuw | Pmuludq | Pmaddwd | Pavgb | Pavgw | Psadbw | Pminub
                | Pmaxub | Pminsw | Pmaxsw | Pcmpeqb | Pcmpeqw | Pcmpeqd | Addps | Mulps | Addpd
                | Mulpd | Addsd | Mulsd | Addss | Mulss | Pminsb | Pmaxsb | Pminuw | Pmaxuw | Pminsd
                | Pmaxsd | Pminud | Pmaxud | Pmulld | Pmuldq | Pcmpeqq
        )
    }

    /// The instruction-set extension the host needs for this operation, beyond SSE2.
    pub fn feature(self) -> Option<Feature> {
        use SseOp::*;
        match self {
            Pshufb | Pmaddubsw | Pmulhrsw | Psignb | Psignw | Psignd => Some(Feature::Ssse3),
            Pminsb | Pmaxsb | Pminuw | Pmaxuw | Pminsd | Pmaxsd | Pminud | Pmaxud | Pmulld | Pmuldq | Pcmpeqq
            | Packusdw => Some(Feature::Sse41),
            Pcmpgtq => Some(Feature::Sse42),
            _ => None,
        }
    }
}

/// Host instruction-set extensions generated code may use when the host has them.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Feature {
    Ssse3,
    Sse41,
    Sse42,
    /// FMA3 (with the AVX state enabled by the OS).
    Fma,
}

impl Feature {
    /// Whether the host CPU has this extension (CPUID, read once).
    pub fn present(self) -> bool {
        use core::sync::atomic::{AtomicU32, Ordering};
        // Bit 31 marks the cached value as computed.
        static BITS: AtomicU32 = AtomicU32::new(0);
        let mut b = BITS.load(Ordering::Relaxed);
        if b == 0 {
            let c = core::arch::x86_64::__cpuid(1).ecx;
            let avx_os = c & (1 << 27) != 0 && c & (1 << 28) != 0
                // SAFETY: osxsave (bit 27) is set, so xgetbv is enabled.
                && unsafe { core::arch::x86_64::_xgetbv(0) } & 6 == 6;
            b = 1 << 31
                | (c >> 9 & 1)
                | (c >> 19 & 1) << 1
                | (c >> 20 & 1) << 2
                | ((c >> 12 & 1 != 0 && avx_os) as u32) << 3;
            BITS.store(b, Ordering::Relaxed);
        }
        let bit = match self {
            Feature::Ssse3 => 0,
            Feature::Sse41 => 1,
            Feature::Sse42 => 2,
            Feature::Fma => 3,
        };
        b >> bit & 1 != 0
    }
}

/// Fused multiply-adds: `dst = (±x * y) ± z` on four F32 or two F64 lanes.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct FmaOp {
    pub f64: bool,
    /// Bit 0: subtract z; bit 1: negate the product (as `VecOp::Fma*`).
    pub neg: u8,
}

/// One-operand SSE operations `dst = op(src)` (no dependence on the old `dst`).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum SseUn {
    Sqrtps, Sqrtpd, Sqrtsd, Sqrtss,
    Cvtdq2ps, Cvttps2dq, Cvtdq2pd, Cvttpd2dq, Cvtps2pd, Cvtpd2ps, Cvtss2sd, Cvtsd2ss,
    /// All bits inverted.
    Not,
    /// Sign bit of the low F64 flipped / cleared.
    NegF64,
    AbsF64,
    /// Move the high 64 bits to the low 64 (upper half undefined).
    Hi64ToLo,
    /// SSSE3 absolute values.
    Pabsb, Pabsw, Pabsd,
}

/// Per-lane shifts by an immediate or an xmm count.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum SseShift {
    Psllw, Pslld, Psllq, Psrlw, Psrld, Psrlq, Psraw, Psrad, Pslldq, Psrldq,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Shuf {
    Pshufd,
    Pshuflw,
    Pshufhw,
}

/// Integer -> xmm moves and conversions.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ToVec {
    Movq,
    Movd,
    Cvtsi2sd64,
    Cvtsi2sd32,
    Cvtsi2ss64,
    Cvtsi2ss32,
}

/// xmm -> integer moves and conversions.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum FromVec {
    Movq,
    Movd,
    Pmovmskb,
    Cvttsd2si64,
    Cvttsd2si32,
    Cvttss2si64,
    Cvttss2si32,
    Cvtsd2si64,
    Cvtsd2si32,
    Cvtss2si64,
    Cvtss2si32,
}

/// How a helper argument is widened to 64 bits in its argument register.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ArgExt {
    None,
    Zx1,
    Zx8,
    Zx16,
    Zx32,
}

/// How a shift gets its count.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Amt {
    Imm(u8),
    Reg(VReg),
}

/// A vcode instruction. Widths `w` are in bytes (1, 2, 4, 8).
#[derive(Clone, PartialEq, Debug)]
pub enum Inst {
    Imm { dst: VReg, v: u64 },
    Mov { dst: VReg, src: VReg },
    Alu { op: AluOp, w64: bool, dst: VReg, a: VReg, b: Src },
    /// `dst = base + index*scale + disp` (no flags).
    Lea { dst: VReg, am: Amode },
    Shift { op: ShiftOp, w: u8, dst: VReg, a: VReg, amt: Amt },
    Un { op: UnOp, dst: VReg, a: VReg },
    /// Zero-extending load.
    Load { w: u8, dst: VReg, am: Amode },
    Store { w: u8, am: Amode, src: Src },
    Cmp { w: u8, a: VReg, b: Src },
    /// `test a, imm` (flags for an I1 guard: `test a, 1`).
    Test { a: VReg, imm: i32 },
    /// Flags consumers: must directly follow the flags producer.
    Setcc { cc: Cc, dst: VReg },
    Cmov { cc: Cc, dst: VReg, t: VReg, f: VReg },
    VSel { cc: Cc, dst: VReg, t: VReg, f: VReg },
    /// Widening multiply; for `w == 8` the result is the pair `dst`, `dst_hi`.
    MulW { signed: bool, w: u8, dst: VReg, dst_hi: Option<VReg>, a: VReg, b: VReg },
    /// Division of a double-width dividend (`lo`, plus `hi` when `w == 8`) by `d`: remainder
    /// in the high half and quotient in the low half (for `w == 8`: `dst_hi`, `dst`).
    Div { signed: bool, w: u8, dst: VReg, dst_hi: Option<VReg>, lo: VReg, hi: Option<VReg>, d: VReg },
    /// SysV call; `guard`: call only if the condition holds on the flags set just before
    /// (`dst` then gets 0 when skipped). Guarded calls are the rare slow paths of inline checks:
    /// they are made out of line, preserving all registers, so the common path pays nothing.
    Call { addr: usize, args: Vec<(Src, ArgExt)>, pass_state: bool, dst: Option<VReg>, guard: Option<Cc> },
    /// A direct exit to `dst`: a side exit when `cc` is set (flags set just before), else the
    /// end of the block.
    Exit { cc: Option<Cc>, dst: u64, kind: JumpKind },
    /// The end of the block to a computed address.
    ExitInd { next: VReg, kind: JumpKind },
    Cas { w: u8, am: Amode, expected: VReg, new: VReg, old: VReg },
    Fence,
    /// Start of the code of the guest instruction at this address (emits nothing; recorded in
    /// the translation's pc map so that a fault's guest pc is found from the host pc).
    Mark(u64),
    // ---- xmm
    VImm { dst: VReg, v: u128 },
    VMov { dst: VReg, src: VReg },
    /// Loads zero the rest of the register; sizes 4, 8, 16.
    VLoad { sz: u8, dst: VReg, am: Amode },
    VStore { sz: u8, am: Amode, src: VReg },
    VBin { op: SseOp, dst: VReg, a: VReg, b: VReg },
    VUn { op: SseUn, dst: VReg, src: VReg },
    VShImm { op: SseShift, dst: VReg, a: VReg, imm: u8 },
    VShReg { op: SseShift, dst: VReg, a: VReg, amt: VReg },
    VShuf { op: Shuf, dst: VReg, src: VReg, imm: u8 },
    ToVec { op: ToVec, dst: VReg, src: VReg },
    FromVec { op: FromVec, dst: VReg, src: VReg },
    /// `dst = hi:lo` from two integer vregs.
    VPair { dst: VReg, hi: VReg, lo: VReg },
    /// `ucomisd`/`ucomiss` then the 0x45/0x01/0x40/0x00 code of the flags in `dst`.
    CmpF { f64: bool, dst: VReg, a: VReg, b: VReg },
    /// Fused multiply-add (FMA3, VEX-encoded).
    VFma { op: FmaOp, dst: VReg, x: VReg, y: VReg, z: VReg },
}

impl Inst {
    /// Describe operands to the register allocator.
    pub fn liveness(&self, i: usize, l: &mut Liveness) {
        use Inst::*;
        let src = |s: &Src, l: &mut Liveness| match s {
            Src::R(v) => l.add_use(i, *v),
            Src::M(am) => am.regs(&mut |v| l.add_use(i, v)),
            Src::I(_) => {}
        };
        match self {
            Imm { dst, .. } | VImm { dst, .. } | Setcc { dst, .. } => l.add_def(i, *dst),
            Mov { dst, src } | VMov { dst, src } => {
                l.add_use(i, *src);
                l.add_def(i, *dst);
                l.add_hint(*dst, *src);
            }
            Alu { dst, a, b, .. } => {
                l.add_use(i, *a);
                src(b, l);
                l.add_def(i, *dst);
                l.add_hint(*dst, *a);
            }
            Lea { dst, am } | Load { dst, am, .. } => {
                am.regs(&mut |v| l.add_use(i, v));
                l.add_def(i, *dst);
            }
            Shift { dst, a, amt, .. } => {
                l.add_use(i, *a);
                if let Amt::Reg(r) = amt {
                    l.add_use(i, *r)
                }
                l.add_def(i, *dst);
                l.add_hint(*dst, *a);
            }
            Un { dst, a, .. } => {
                l.add_use(i, *a);
                l.add_def(i, *dst);
                l.add_hint(*dst, *a);
            }
            Store { am, src: s, .. } => {
                am.regs(&mut |v| l.add_use(i, v));
                src(s, l);
            }
            Cmp { a, b, .. } => {
                l.add_use(i, *a);
                src(b, l);
            }
            Test { a, .. } => l.add_use(i, *a),
            Cmov { dst, t, f, .. } | VSel { dst, t, f, .. } => {
                l.add_use(i, *t);
                l.add_use(i, *f);
                l.add_def(i, *dst);
            }
            MulW { dst, dst_hi, a, b, .. } => {
                l.add_use(i, *a);
                l.add_use(i, *b);
                l.add_def(i, *dst);
                if let Some(h) = dst_hi {
                    l.add_def(i, *h)
                }
            }
            Div { dst, dst_hi, lo, hi, d, .. } => {
                l.add_use(i, *lo);
                if let Some(h) = hi {
                    l.add_use(i, *h)
                }
                l.add_use(i, *d);
                l.add_def(i, *dst);
                if let Some(h) = dst_hi {
                    l.add_def(i, *h)
                }
            }
            Call { args, dst, guard, .. } => {
                args.iter().for_each(|(a, _)| src(a, l));
                // A guarded call is made from an out-of-line stub that saves and restores every
                // allocatable register (see `Emitter::cold_call`): it clobbers nothing.
                if guard.is_none() {
                    l.add_clobber(i, RegClass::Int, CALL_CLOBBER_INT);
                    l.add_clobber(i, RegClass::Vec, CALL_CLOBBER_VEC);
                }
                if let Some(d) = dst {
                    l.add_def(i, *d)
                }
            }
            Exit { .. } | Fence | Mark(_) => {}
            ExitInd { next, .. } => l.add_use(i, *next),
            Cas { am, expected, new, old, .. } => {
                am.regs(&mut |v| l.add_use(i, v));
                l.add_use(i, *expected);
                l.add_use(i, *new);
                l.add_def(i, *old);
            }
            VLoad { dst, am, .. } => {
                am.regs(&mut |v| l.add_use(i, v));
                l.add_def(i, *dst);
            }
            VStore { am, src, .. } => {
                am.regs(&mut |v| l.add_use(i, v));
                l.add_use(i, *src);
            }
            VBin { dst, a, b, .. } => {
                l.add_use(i, *a);
                l.add_use(i, *b);
                l.add_def(i, *dst);
                l.add_hint(*dst, *a);
            }
            VShImm { dst, a, .. } => {
                l.add_use(i, *a);
                l.add_def(i, *dst);
                l.add_hint(*dst, *a);
            }
            VShReg { dst, a, amt, .. } => {
                l.add_use(i, *a);
                l.add_use(i, *amt);
                l.add_def(i, *dst);
                l.add_hint(*dst, *a);
            }
            VUn { dst, src, .. } | VShuf { dst, src, .. } | ToVec { dst, src, .. } | FromVec { dst, src, .. } => {
                l.add_use(i, *src);
                l.add_def(i, *dst);
            }
            VPair { dst, hi, lo } => {
                l.add_use(i, *hi);
                l.add_use(i, *lo);
                l.add_def(i, *dst);
            }
            CmpF { dst, a, b, .. } => {
                l.add_use(i, *a);
                l.add_use(i, *b);
                l.add_def(i, *dst);
            }
            VFma { dst, x, y, z, .. } => {
                l.add_use(i, *x);
                l.add_use(i, *y);
                l.add_use(i, *z);
                l.add_def(i, *dst);
                l.add_hint(*dst, *z);
            }
        }
    }
}
