//! The intermediate representation (VEX-like, flat form).
//!
//! A [`Superblock`] is one entry, several side exits, straight-line code: a list of [`Stmt`]s and a
//! final jump. Values live in typed single-assignment temporaries ([`Temp`]). The IR is *flat*:
//! every operand of an expression is an [`Atom`] (a temp or a constant), so the optimiser works on
//! one statement at a time and instruction selection rebuilds trees by looking through
//! single-use temps.
//!
//! Guest registers are bytes of the guest-state block addressed by offset (`Get`/`Put`); shadow
//! copies for tools follow at `offset + state_size` and `offset + 2 * state_size`.
//!
//! Depends on nothing but `alloc`. Front ends (`arch/*/guest`), tools, the optimiser and back ends
//! (`arch/*/host`) meet only here.

#![no_std]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;

pub mod build;
pub mod interp;
pub mod opt;
pub mod print;
pub mod vec;

pub use vec::VecOp;

/// The type of an IR value.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum Ty {
    I1,
    I8,
    I16,
    I32,
    I64,
    I128,
    F32,
    F64,
    V128,
    V256,
}

impl Ty {
    /// Size in bytes (I1 counts as 1).
    pub const fn bytes(self) -> u32 {
        match self {
            Ty::I1 | Ty::I8 => 1,
            Ty::I16 => 2,
            Ty::I32 | Ty::F32 => 4,
            Ty::I64 | Ty::F64 => 8,
            Ty::I128 | Ty::V128 => 16,
            Ty::V256 => 32,
        }
    }
    /// Size in bits (I1 is 1 bit).
    pub const fn bits(self) -> u32 {
        match self {
            Ty::I1 => 1,
            t => t.bytes() * 8,
        }
    }
    pub const fn is_int(self) -> bool {
        matches!(self, Ty::I1 | Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64)
    }
    /// The integer type of the given size in bytes (1, 2, 4, 8, 16).
    pub const fn int_of_bytes(n: u32) -> Ty {
        match n {
            1 => Ty::I8,
            2 => Ty::I16,
            4 => Ty::I32,
            8 => Ty::I64,
            _ => Ty::I128,
        }
    }
    /// Twice as wide (I8 -> I16 ... I64 -> I128).
    pub const fn double(self) -> Ty {
        match self {
            Ty::I8 => Ty::I16,
            Ty::I16 => Ty::I32,
            Ty::I32 => Ty::I64,
            _ => Ty::I128,
        }
    }
    /// Mask of the low `bits()` bits (for integer types up to I64).
    pub const fn mask(self) -> u64 {
        match self {
            Ty::I1 => 1,
            Ty::I8 => 0xff,
            Ty::I16 => 0xffff,
            Ty::I32 => 0xffff_ffff,
            _ => u64::MAX,
        }
    }
}

/// A single-assignment temporary. Its type is in [`Superblock::temps`].
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub struct Temp(pub u32);

/// A constant. Integer constants are stored zero-extended; floats by their bit pattern.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum Const {
    I1(bool),
    I8(u8),
    I16(u16),
    I32(u32),
    I64(u64),
    I128(u128),
    F32(u32),
    F64(u64),
    V128(u128),
}

impl Const {
    pub const fn ty(self) -> Ty {
        match self {
            Const::I1(_) => Ty::I1,
            Const::I8(_) => Ty::I8,
            Const::I16(_) => Ty::I16,
            Const::I32(_) => Ty::I32,
            Const::I64(_) => Ty::I64,
            Const::I128(_) => Ty::I128,
            Const::F32(_) => Ty::F32,
            Const::F64(_) => Ty::F64,
            Const::V128(_) => Ty::V128,
        }
    }
    /// The integer constant of type `ty` holding `v` truncated to that width.
    pub const fn int(ty: Ty, v: u64) -> Const {
        match ty {
            Ty::I1 => Const::I1(v & 1 != 0),
            Ty::I8 => Const::I8(v as u8),
            Ty::I16 => Const::I16(v as u16),
            Ty::I32 => Const::I32(v as u32),
            Ty::I128 => Const::I128(v as u128),
            Ty::F32 => Const::F32(v as u32),
            Ty::F64 => Const::F64(v),
            Ty::V128 => Const::V128(v as u128),
            _ => Const::I64(v),
        }
    }
    /// The value as raw bits, zero-extended (low 64 bits for 128-bit constants).
    pub const fn bits(self) -> u64 {
        match self {
            Const::I1(b) => b as u64,
            Const::I8(v) => v as u64,
            Const::I16(v) => v as u64,
            Const::I32(v) | Const::F32(v) => v as u64,
            Const::I64(v) | Const::F64(v) => v,
            Const::I128(v) | Const::V128(v) => v as u64,
        }
    }
    pub const fn bits128(self) -> u128 {
        match self {
            Const::I128(v) | Const::V128(v) => v,
            c => c.bits() as u128,
        }
    }
}

/// An operand: a temp or a constant.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum Atom {
    Tmp(Temp),
    Const(Const),
}

impl Atom {
    pub const fn u64(v: u64) -> Atom {
        Atom::Const(Const::I64(v))
    }
    pub const fn u32(v: u32) -> Atom {
        Atom::Const(Const::I32(v))
    }
    pub const fn u8(v: u8) -> Atom {
        Atom::Const(Const::I8(v))
    }
    pub const fn bool(v: bool) -> Atom {
        Atom::Const(Const::I1(v))
    }
    pub const fn as_const(self) -> Option<Const> {
        match self {
            Atom::Const(c) => Some(c),
            Atom::Tmp(_) => None,
        }
    }
    pub const fn as_temp(self) -> Option<Temp> {
        match self {
            Atom::Tmp(t) => Some(t),
            Atom::Const(_) => None,
        }
    }
}

impl From<Temp> for Atom {
    fn from(t: Temp) -> Atom {
        Atom::Tmp(t)
    }
}
impl From<Const> for Atom {
    fn from(c: Const) -> Atom {
        Atom::Const(c)
    }
}

/// Unary operations. Conversions name their source and destination types.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum Unop {
    /// Bitwise not, of the operand's type (I1..I64, V128).
    Not(Ty),
    /// Two's complement negation.
    Neg(Ty),
    /// Zero-extension `from` -> `to` (I1 allowed as source).
    Zext(Ty, Ty),
    /// Sign-extension `from` -> `to` (I1 allowed: true -> all ones).
    Sext(Ty, Ty),
    /// Keep the low bits: `from` -> `to` (to narrower; I1 takes bit 0).
    Trunc(Ty, Ty),
    /// High half of an I128 (-> I64), of an I64 (-> I32), etc.: `Hi(from)`.
    Hi(Ty),
    /// Count leading / trailing zeroes, population count, of I32 or I64. Clz/Ctz of 0 is
    /// undefined, as in VEX: front ends guard zero themselves.
    Clz(Ty),
    Ctz(Ty),
    Popcnt(Ty),
    /// Byte swap of I16/I32/I64.
    Bswap(Ty),
    /// Reinterpret bits: F64<->I64, F32<->I32.
    Reinterp(Ty, Ty),
    /// Signed integer (I32/I64) -> F64 or F32, round to nearest.
    IntSToF(Ty, Ty),
    /// F64/F32 -> signed I32/I64, truncating toward zero (cvtt*); out of range gives the
    /// "integer indefinite" value (min signed), as the x86 instruction does.
    FToIntSTrunc(Ty, Ty),
    /// F64/F32 -> signed I32/I64, round to nearest even (cvt*).
    FToIntSNearest(Ty, Ty),
    /// F32 -> F64 and F64 -> F32 (round to nearest).
    F32toF64,
    F64toF32,
    SqrtF64,
    SqrtF32,
    NegF64,
    AbsF64,
    /// Low I64 of a V128; I64 -> V128 zero-extended; I32 -> V128 zero-extended; low I32 of V128.
    V128to64,
    V128HIto64,
    I64UtoV128,
    I32UtoV128,
    V128to32,
    /// A vector operation with one vector operand (see [`VecOp`]).
    Vec1(VecOp),
    /// Collect the top bit of each byte of a V128 into an I32 (pmovmskb).
    GetMSBs8x16,
    /// Lane shuffle with an immediate (pshufd / pshuflw / pshufhw), see [`VecOp`].
    ShufImm(VecOp, u8),
}

/// Binary operations. `Ty` is the type of the operands; see [`Binop::result_ty`].
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum Binop {
    Add(Ty),
    Sub(Ty),
    Mul(Ty),
    And(Ty),
    Or(Ty),
    Xor(Ty),
    /// Shifts: the amount is an I8 and must be < bits (front ends mask it).
    Shl(Ty),
    Shr(Ty),
    Sar(Ty),
    /// Comparisons, result I1.
    CmpEQ(Ty),
    CmpNE(Ty),
    CmpLTS(Ty),
    CmpLES(Ty),
    CmpLTU(Ty),
    CmpLEU(Ty),
    /// Widening multiply: `Ty` x `Ty` -> double width.
    MullS(Ty),
    MullU(Ty),
    /// Unsigned/signed division of a double-width dividend by a `Ty` divisor; result is double
    /// width with the remainder in the high half and the quotient in the low half. A zero
    /// divisor or a quotient that does not fit `Ty` *faults*: execution stops before the
    /// statement and the guest gets SIGFPE at the pc in the guest state (back ends use the
    /// host's trapping divide; the core maps the trap back). Front ends therefore `Put` the
    /// instruction's address to the pc before a division, and the optimiser keeps that `Put`
    /// (divisions observe pc and sp). A division whose result is unused may be removed, and
    /// its fault with it, as for loads.
    DivModU(Ty),
    DivModS(Ty),
    /// Concatenate: `hi:lo` of two `Ty` -> double width.
    HiLo(Ty),
    /// Scalar floating point, round to nearest.
    AddF(Ty),
    SubF(Ty),
    MulF(Ty),
    DivF(Ty),
    MinF(Ty),
    MaxF(Ty),
    /// Floating compare -> I32: 0x45 unordered, 0x01 less, 0x40 equal, 0x00 greater
    /// (the ZF/PF/CF pattern ucomis* leaves in rflags).
    CmpF(Ty),
    /// I64 x I64 -> V128 (hi, lo).
    HiLo64toV128,
    /// Replace the low I64 / low I32 / low F64 of a V128 (a) by (b).
    SetV128lo64,
    SetV128lo32,
    /// A vector operation with two V128 operands (see [`VecOp`]).
    Vec2(VecOp),
    /// Per-lane shift of a V128 by an I8 amount (psllw/psrld/... with an immediate or count).
    VecShift(VecOp),
    /// V128 x V128 -> V256 (hi, lo).
    V128HLtoV256,
    /// Fused multiply-add `VecOp::Fma32Fx4`/`Fma64Fx2`: `a` (V256) holds the factors x (low
    /// 128 bits) and y (high 128 bits), `b` (V128) the addend z; the result is a V128.
    Fma(VecOp),
}

impl Binop {
    pub fn result_ty(self) -> Ty {
        use Binop::*;
        match self {
            Add(t) | Sub(t) | Mul(t) | And(t) | Or(t) | Xor(t) | Shl(t) | Shr(t) | Sar(t) => t,
            CmpEQ(_) | CmpNE(_) | CmpLTS(_) | CmpLES(_) | CmpLTU(_) | CmpLEU(_) => Ty::I1,
            MullS(t) | MullU(t) | DivModU(t) | DivModS(t) | HiLo(t) => t.double(),
            AddF(t) | SubF(t) | MulF(t) | DivF(t) | MinF(t) | MaxF(t) => t,
            CmpF(_) => Ty::I32,
            HiLo64toV128 | SetV128lo64 | SetV128lo32 | Vec2(_) | VecShift(_) | Fma(_) => Ty::V128,
            V128HLtoV256 => Ty::V256,
        }
    }
}

impl Unop {
    pub fn result_ty(self) -> Ty {
        use Unop::*;
        match self {
            Not(t) | Neg(t) | Clz(t) | Ctz(t) | Popcnt(t) | Bswap(t) => t,
            Zext(_, t) | Sext(_, t) | Trunc(_, t) | Reinterp(_, t) => t,
            Hi(t) => match t {
                Ty::I128 => Ty::I64,
                Ty::I64 => Ty::I32,
                Ty::I32 => Ty::I16,
                _ => Ty::I8,
            },
            IntSToF(_, t) | FToIntSTrunc(_, t) | FToIntSNearest(_, t) => t,
            F32toF64 | SqrtF64 | NegF64 | AbsF64 => Ty::F64,
            F64toF32 | SqrtF32 => Ty::F32,
            V128to64 | V128HIto64 => Ty::I64,
            V128to32 | GetMSBs8x16 => Ty::I32,
            I64UtoV128 | I32UtoV128 | Vec1(_) | ShufImm(..) => Ty::V128,
        }
    }
}

/// A pure helper function called from generated code: `extern "C"` (SysV), at most 6 integer
/// arguments of up to 64 bits, returning one integer of up to 64 bits.
#[derive(Copy, Clone, Debug)]
pub struct Callee {
    pub name: &'static str,
    pub addr: usize,
}

impl PartialEq for Callee {
    fn eq(&self, o: &Callee) -> bool {
        self.addr == o.addr
    }
}
impl Eq for Callee {}

/// An expression: the right-hand side of [`Stmt::WrTmp`].
#[derive(Clone, PartialEq, Debug)]
pub enum Expr {
    Atom(Atom),
    /// Read `ty` from the guest state at byte offset `off`.
    Get { off: u32, ty: Ty },
    /// Read `ty` from guest memory (little-endian).
    Load { ty: Ty, addr: Atom },
    Unop { op: Unop, a: Atom },
    Binop { op: Binop, a: Atom, b: Atom },
    /// `if cond (I1) then t else f`.
    Ite { cond: Atom, t: Atom, f: Atom },
    /// Call a pure helper (no side effects, reads only its arguments).
    CCall { callee: Callee, ret: Ty, args: Vec<Atom> },
}

/// Why a superblock is left: tells the dispatcher/scheduler what to do at the destination.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum JumpKind {
    /// An ordinary jump; chained when the destination is constant.
    Boring,
    /// A call; like `Boring` for the dispatcher.
    Call,
    /// A return; like `Boring` for the dispatcher.
    Ret,
    /// Perform the system call described by the guest registers, then continue at the
    /// destination (the instruction after `syscall`).
    Syscall,
    /// A client request (the magic sequence); the scheduler services it and continues.
    ClientReq,
    /// Undecodable / unliftable instruction at the destination: report it and raise SIGILL.
    NoDecode,
    /// Raise SIGILL (a decodable but invalid instruction such as ud2), SIGTRAP (int3), SIGSEGV
    /// (e.g. a privileged instruction), SIGFPE (#DE) at the destination.
    SigIll,
    SigTrap,
    SigSegv,
    SigFpeIntDiv,
    /// Give other threads a chance (pause / sched_yield hint).
    Yield,
    /// The translations in [cmstart, cmstart+cmlen) must be discarded before continuing.
    InvalICache,
    /// A call to `NRADDR`-style function redirection (no-redir call); reserved for redirection.
    NoRedir,
}

impl JumpKind {
    /// Whether an exit of this kind may be chained directly to its destination's translation.
    pub const fn chainable(self) -> bool {
        matches!(self, JumpKind::Boring | JumpKind::Call | JumpKind::Ret)
    }
}

/// How a dirty helper touches guest state or memory (so tools and the optimiser know).
#[derive(Clone, PartialEq, Debug)]
pub struct Dirty {
    pub callee: Callee,
    /// Integer arguments. If `pass_state` is set, the guest-state pointer is passed first, before
    /// these.
    pub args: Vec<Atom>,
    pub pass_state: bool,
    /// Only call if this I1 is true (None = always).
    pub guard: Option<Atom>,
    /// Where the I64 (or narrower) result goes, if any.
    pub dst: Option<Temp>,
    /// Guest-state byte ranges (offset, size) the helper reads and writes.
    pub reads_state: Vec<(u32, u32)>,
    pub writes_state: Vec<(u32, u32)>,
    /// Memory the helper reads/writes: (address, size in bytes).
    pub reads_mem: Option<(Atom, u32)>,
    pub writes_mem: Option<(Atom, u32)>,
}

/// A memory barrier kind.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Fence {
    Full,
}

/// A statement.
#[derive(Clone, PartialEq, Debug)]
pub enum Stmt {
    /// Start of the guest instruction at `addr`, `len` bytes long.
    IMark { addr: u64, len: u32 },
    /// Write to the guest state.
    Put { off: u32, val: Atom },
    /// Write to guest memory (little-endian, the size of `val`'s type).
    Store { addr: Atom, val: Atom },
    /// Define a temp.
    WrTmp { dst: Temp, e: Expr },
    /// Side exit: if `guard` (I1) is true, leave to the constant guest address `dst`.
    Exit { guard: Atom, dst: u64, kind: JumpKind },
    /// Call a helper with side effects.
    Dirty(Box<Dirty>),
    /// Atomic compare-and-swap: if `*addr == expected` store `new`; `old` gets the value that
    /// was in memory either way.
    Cas { addr: Atom, expected: Atom, new: Atom, old: Temp },
    /// A memory fence.
    Fence(Fence),
    /// The ABI says the `len` bytes at `base` (I64) hold nothing meaningful from here on: the
    /// amd64 front end emits it after a call or return moves the stack pointer, for the red zone
    /// below the new stack pointer. `nia` (I64) is the address executed next (the callee, or
    /// the return address). It computes nothing and observes nothing; tools may act on it
    /// (memcheck marks the bytes undefined), back ends emit no code for it.
    AbiHint { base: Atom, len: u32, nia: Atom },
    /// A no-op (left by passes that delete statements in place).
    NoOp,
}

/// A superblock: one entry, several exits.
#[derive(Clone, PartialEq, Debug)]
pub struct Superblock {
    /// Type of each temp, indexed by `Temp.0`.
    pub temps: Vec<Ty>,
    pub stmts: Vec<Stmt>,
    /// Where to continue after the last statement (I64 guest address).
    pub next: Atom,
    pub jump: JumpKind,
    /// Guest-state offset of the program counter (the back end stores exits' destinations there).
    pub pc_offset: u32,
}

impl Superblock {
    pub fn new(pc_offset: u32) -> Superblock {
        Superblock {
            temps: Vec::new(),
            stmts: Vec::new(),
            next: Atom::u64(0),
            jump: JumpKind::Boring,
            pc_offset,
        }
    }

    /// Allocate a fresh temp of type `ty`.
    pub fn new_temp(&mut self, ty: Ty) -> Temp {
        self.temps.push(ty);
        Temp(self.temps.len() as u32 - 1)
    }

    pub fn temp_ty(&self, t: Temp) -> Ty {
        self.temps[t.0 as usize]
    }

    pub fn atom_ty(&self, a: Atom) -> Ty {
        match a {
            Atom::Tmp(t) => self.temp_ty(t),
            Atom::Const(c) => c.ty(),
        }
    }

    /// The type an expression evaluates to.
    pub fn expr_ty(&self, e: &Expr) -> Ty {
        match e {
            Expr::Atom(a) => self.atom_ty(*a),
            Expr::Get { ty, .. } | Expr::Load { ty, .. } | Expr::CCall { ret: ty, .. } => *ty,
            Expr::Unop { op, .. } => op.result_ty(),
            Expr::Binop { op, .. } => op.result_ty(),
            Expr::Ite { t, .. } => self.atom_ty(*t),
        }
    }

    /// Number of guest instructions (IMarks) in the block.
    pub fn guest_insns(&self) -> usize {
        self.stmts.iter().filter(|s| matches!(s, Stmt::IMark { .. })).count()
    }
}

impl Expr {
    /// Call `f` on every atom this expression reads.
    pub fn for_each_atom(&self, mut f: impl FnMut(Atom)) {
        match self {
            Expr::Atom(a) => f(*a),
            Expr::Get { .. } => {}
            Expr::Load { addr, .. } => f(*addr),
            Expr::Unop { a, .. } => f(*a),
            Expr::Binop { a, b, .. } => {
                f(*a);
                f(*b)
            }
            Expr::Ite { cond, t, f: e } => {
                f(*cond);
                f(*t);
                f(*e)
            }
            Expr::CCall { args, .. } => args.iter().for_each(|a| f(*a)),
        }
    }

    /// Call `f` on every atom slot, allowing replacement (used by substitution passes).
    pub fn map_atoms(&mut self, mut f: impl FnMut(&mut Atom)) {
        match self {
            Expr::Atom(a) => f(a),
            Expr::Get { .. } => {}
            Expr::Load { addr, .. } => f(addr),
            Expr::Unop { a, .. } => f(a),
            Expr::Binop { a, b, .. } => {
                f(a);
                f(b)
            }
            Expr::Ite { cond, t, f: e } => {
                f(cond);
                f(t);
                f(e)
            }
            Expr::CCall { args, .. } => args.iter_mut().for_each(f),
        }
    }
}

impl Stmt {
    /// Call `f` on every atom slot this statement reads, allowing replacement.
    pub fn map_atoms(&mut self, mut f: impl FnMut(&mut Atom)) {
        match self {
            Stmt::IMark { .. } | Stmt::Fence(_) | Stmt::NoOp => {}
            Stmt::Put { val, .. } => f(val),
            Stmt::Store { addr, val } => {
                f(addr);
                f(val)
            }
            Stmt::WrTmp { e, .. } => e.map_atoms(f),
            Stmt::Exit { guard, .. } => f(guard),
            Stmt::Dirty(d) => {
                d.args.iter_mut().for_each(&mut f);
                if let Some(g) = &mut d.guard {
                    f(g)
                }
                if let Some((a, _)) = &mut d.reads_mem {
                    f(a)
                }
                if let Some((a, _)) = &mut d.writes_mem {
                    f(a)
                }
            }
            Stmt::Cas { addr, expected, new, .. } => {
                f(addr);
                f(expected);
                f(new)
            }
            Stmt::AbiHint { base, nia, .. } => {
                f(base);
                f(nia)
            }
        }
    }

    /// Call `f` on every atom this statement reads.
    pub fn for_each_atom(&self, mut f: impl FnMut(Atom)) {
        match self {
            Stmt::IMark { .. } | Stmt::Fence(_) | Stmt::NoOp => {}
            Stmt::Put { val, .. } => f(*val),
            Stmt::Store { addr, val } => {
                f(*addr);
                f(*val)
            }
            Stmt::WrTmp { e, .. } => e.for_each_atom(f),
            Stmt::Exit { guard, .. } => f(*guard),
            Stmt::Dirty(d) => {
                d.args.iter().for_each(|a| f(*a));
                d.guard.iter().for_each(|a| f(*a));
                d.reads_mem.iter().for_each(|(a, _)| f(*a));
                d.writes_mem.iter().for_each(|(a, _)| f(*a));
            }
            Stmt::Cas { addr, expected, new, .. } => {
                f(*addr);
                f(*expected);
                f(*new)
            }
            Stmt::AbiHint { base, nia, .. } => {
                f(*base);
                f(*nia)
            }
        }
    }

    /// The temp this statement defines, if any.
    pub fn defined_temp(&self) -> Option<Temp> {
        match self {
            Stmt::WrTmp { dst, .. } => Some(*dst),
            Stmt::Dirty(d) => d.dst,
            Stmt::Cas { old, .. } => Some(*old),
            _ => None,
        }
    }
}
