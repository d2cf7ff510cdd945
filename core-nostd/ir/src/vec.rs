//! 128-bit vector operations.
//!
//! Each operation is a lane-wise function of one or two V128 values (the fused multiply-adds of
//! three, see [`super::Binop::Fma`]) (lanes little-endian, lane 0
//! in the low bits), named `<Op><lanes>x<count>`: `Add8x16` adds sixteen 8-bit lanes. `S`/`U`
//! mark signed/unsigned lanes, `F` floating lanes. Semantics are those of the like-named SSE
//! instructions, so a back end on an SSE host can select one instruction per operation; another
//! host (or the IR interpreter) implements them lane by lane.

/// A vector operation; used through [`super::Unop::Vec1`], [`super::Binop::Vec2`],
/// [`super::Binop::VecShift`], [`super::Unop::ShufImm`] and [`super::Binop::Fma`].
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum VecOp {
    // ---- bitwise (Vec2)
    And,
    Or,
    Xor,
    /// `!a & b` (pandn: the first operand is inverted).
    AndNot,
    // ---- integer arithmetic (Vec2)
    Add8x16,
    Add16x8,
    Add32x4,
    Add64x2,
    Sub8x16,
    Sub16x8,
    Sub32x4,
    Sub64x2,
    QAddS8x16,
    QAddU8x16,
    QAddS16x8,
    QAddU16x8,
    QSubS8x16,
    QSubU8x16,
    QSubS16x8,
    QSubU16x8,
    /// Low 16 bits of the 16x16 products (pmullw); high 16 bits signed/unsigned (pmulhw/pmulhuw).
    Mul16x8,
    MulHiS16x8,
    MulHiU16x8,
    /// Unsigned 32x32->64 of the even lanes (pmuludq).
    MullEvenU32x2,
    /// Multiply-add adjacent 16-bit pairs into 32 bits (pmaddwd).
    MAddS16x8,
    AvgU8x16,
    AvgU16x8,
    /// Sum of absolute differences of bytes into two 16-bit sums (psadbw).
    SadU8x16,
    MinU8x16,
    MaxU8x16,
    MinS16x8,
    MaxS16x8,
    // ---- comparisons, all-ones lanes where true (Vec2)
    CmpEQ8x16,
    CmpEQ16x8,
    CmpEQ32x4,
    CmpGTS8x16,
    CmpGTS16x8,
    CmpGTS32x4,
    // ---- interleave / pack (Vec2): `a` supplies the even result lanes (punpckl*/h* dst)
    InterleaveLO8x16,
    InterleaveLO16x8,
    InterleaveLO32x4,
    InterleaveLO64x2,
    InterleaveHI8x16,
    InterleaveHI16x8,
    InterleaveHI32x4,
    InterleaveHI64x2,
    /// Saturating narrow: `a` gives the low half of the result, `b` the high half.
    QNarrowS16x8to8x16,
    QNarrowU16x8to8x16,
    QNarrowS32x4to16x8,
    // ---- shifts by a scalar count (VecShift); counts >= lane width give 0 (or sign fill)
    Shl16x8,
    Shl32x4,
    Shl64x2,
    Shr16x8,
    Shr32x4,
    Shr64x2,
    Sar16x8,
    Sar32x4,
    /// Whole-register byte shifts (pslldq/psrldq), count in bytes.
    ShlBytes,
    ShrBytes,
    // ---- immediate shuffles (ShufImm)
    /// pshufd
    Shuf32x4,
    /// pshuflw / pshufhw
    ShufLo16x4,
    ShufHi16x4,
    // ---- packed floating point (Vec2), round to nearest
    Add32Fx4,
    Sub32Fx4,
    Mul32Fx4,
    Div32Fx4,
    Min32Fx4,
    Max32Fx4,
    Add64Fx2,
    Sub64Fx2,
    Mul64Fx2,
    Div64Fx2,
    Min64Fx2,
    Max64Fx2,
    /// Lane-wise compares with the cmpps/cmppd predicate 0 (eq), 1 (lt), 2 (le), 3 (unord),
    /// 4 (neq), 5 (nlt), 6 (nle), 7 (ord).
    CmpF32x4(u8),
    CmpF64x2(u8),
    // ---- packed floating point (Vec1)
    Sqrt32Fx4,
    Sqrt64Fx2,
    /// cvtdq2ps, cvttps2dq, cvtdq2pd (low two lanes), cvttpd2dq (into low two lanes, upper 0),
    /// cvtps2pd (low two lanes), cvtpd2ps (into low two lanes, upper 0).
    I32StoF32x4,
    F32toI32STruncx4,
    I32StoF64x2,
    F64toI32STruncx2,
    F32toF64x2,
    F64toF32x2,
    // ---- SSSE3 / SSE4.1 / SSE4.2 lane operations (Vec2)
    /// Byte permute (pshufb): result byte i is `a[b[i] & 15]`, or 0 if `b[i]` has its top bit set.
    Perm8x16,
    MinS8x16,
    MaxS8x16,
    MinU16x8,
    MaxU16x8,
    MinS32x4,
    MaxS32x4,
    MinU32x4,
    MaxU32x4,
    /// Low 32 bits of the 32x32 products (pmulld).
    Mul32x4,
    /// Signed 32x32->64 of the even lanes (pmuldq).
    MullEvenS32x2,
    CmpEQ64x2,
    CmpGTS64x2,
    /// Unsigned-saturating narrow of signed 32-bit lanes (packusdw); `a` gives the low half.
    QNarrowU32x4to16x8,
    /// pmaddubsw: unsigned bytes of `a` times signed bytes of `b`, adjacent products summed
    /// with signed 16-bit saturation.
    MAddUS8x16,
    /// pmulhrsw: `(a * b + 0x4000) >> 15` of signed 16-bit lanes.
    MulHiRS16x8,
    /// psign: the lane of `a` negated, zeroed or kept as `b`'s lane is negative, zero or positive.
    Sign8x16,
    Sign16x8,
    Sign32x4,
    // ---- (Vec1)
    /// Absolute value of signed lanes (pabs*; the minimum stays as it is).
    Abs8x16,
    Abs16x8,
    Abs32x4,
    // ---- fused multiply-add (Binop::Fma): per lane `(x * y) + z` rounded once, where the
    // flag bits negate: bit 0 the addend (fmsub), bit 1 the product (fnmadd; both: fnmsub).
    // With several NaN operands the result is the first of z, x, y (quieted).
    Fma32Fx4(u8),
    Fma64Fx2(u8),
}
