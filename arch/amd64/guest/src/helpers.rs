//! Helpers called from generated code (`extern "C"`, integer arguments only): rotate-through-carry
//! (pure), the dirty helpers of fxsave/fxrstor and the xsave family, the 128-bit lane
//! operations without a `VecOp` (SSE3..SSE4.2, AVX/AVX2 variable shifts and permutes), CRC32C,
//! pdep/pext and the string compares.

use crate::flags::{CF, OF, OSZACP};
use vg_ir::Callee;

/// rcl/rcr: `mode` = operand bytes | left << 8 | want flags << 16. Returns the rotated value,
/// or with the flags bit the new rflags (CF and OF updated; unchanged for a zero count).
pub extern "C" fn amd64_rcl_rcr(value: u64, count: u64, rflags: u64, mode: u64) -> u64 {
    let w = ((mode & 0xff) * 8) as u32;
    let left = mode & (1 << 8) != 0;
    let want_flags = mode & (1 << 16) != 0;
    let m = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    let n = count & if w == 64 { 0x3f } else { 0x1f };
    let steps = n % (w as u64 + 1);
    let (mut v, mut c) = (value & m, rflags & CF);
    for _ in 0..steps {
        if left {
            let out = (v >> (w - 1)) & 1;
            v = ((v << 1) | c) & m;
            c = out;
        } else {
            let out = v & 1;
            v = (v >> 1) | (c << (w - 1));
            c = out;
        }
    }
    if !want_flags {
        return v;
    }
    if n == 0 {
        return rflags & OSZACP;
    }
    let msb = (v >> (w - 1)) & 1;
    let of = if left { msb ^ c } else { msb ^ ((v >> (w - 2)) & 1) };
    (rflags & OSZACP & !(CF | OF)) | c | (of << 11)
}

pub(crate) fn rcl_rcr_callee() -> Callee {
    Callee { name: "amd64_rcl_rcr", addr: amd64_rcl_rcr as extern "C" fn(u64, u64, u64, u64) -> u64 as usize }
}

// ---------------------------------------------------------------- processor state save/restore
//
// fxsave/fxrstor and the xsave family, as dirty helpers that convert between the guest state
// (F64 x87 registers in stack order, the SSE rounding field, ymm registers) and the
// architectural memory image (the 512-byte legacy region, the 64-byte xsave header at 512, the
// AVX upper halves at 576, which is also their place in the compacted format since AVX is the
// first extended component).

/// State components the synthetic CPU implements (XCR0): x87, SSE, and AVX when advertised.
pub const XCR0: u64 = if crate::cpuid::AVX { 0b111 } else { 0b011 };
/// Size of the xsave area for `XCR0` (standard and compacted formats coincide).
pub const XSAVE_SIZE: u32 = if crate::cpuid::AVX { 576 + 256 } else { 576 };
/// The MXCSR_MASK an fxsave image reports (every MXCSR bit writable, as on current CPUs).
const MXCSR_MASK: u32 = 0xffff;
/// Bit 63 of XCOMP_BV: the image is in the compacted format.
const COMPACTED: u64 = 1 << 63;

/// Guest-state ranges holding the x87 registers.
pub(crate) fn x87_state_ranges() -> alloc::vec::Vec<(u32, u32)> {
    use crate::state::*;
    alloc::vec![(OFF_FPREG, 64), (OFF_FPTAG, 8), (OFF_FTOP, 4), (OFF_FPROUND, 4), (OFF_FC3210, 8)]
}

/// Raw access to the guest state block at `state` (the pointer generated code passes to dirty
/// helpers) and to guest memory (guest addresses are host addresses).
struct Raw(*mut u8);
impl Raw {
    fn rd<T: Copy>(&self, off: u32) -> T {
        // SAFETY: `off` is one of the state's field offsets (callers use the OFF_* constants),
        // inside the block generated code vouches for; unaligned read.
        unsafe { core::ptr::read_unaligned(self.0.add(off as usize) as *const T) }
    }
    fn wr<T: Copy>(&self, off: u32, v: T) {
        // SAFETY: as in `rd`.
        unsafe { core::ptr::write_unaligned(self.0.add(off as usize) as *mut T, v) }
    }
}
fn mem_rd<const N: usize>(addr: u64) -> [u8; N] {
    let mut b = [0u8; N];
    // SAFETY: the IR declares this read of guest memory; an unmapped address faults the host
    // as a guest load would.
    unsafe { core::ptr::copy_nonoverlapping(addr as usize as *const u8, b.as_mut_ptr(), N) };
    b
}
fn mem_wr(addr: u64, b: &[u8]) {
    // SAFETY: the IR declares this write of guest memory (see `mem_rd`).
    unsafe { core::ptr::copy_nonoverlapping(b.as_ptr(), addr as usize as *mut u8, b.len()) };
}

fn mxcsr(s: &Raw) -> u32 {
    0x1f80 | ((s.rd::<u64>(crate::state::OFF_SSEROUND) as u32 & 3) << 13)
}
fn set_mxcsr(s: &Raw, v: u32) {
    s.wr::<u64>(crate::state::OFF_SSEROUND, ((v >> 13) & 3) as u64);
}

/// Store the x87 part of the legacy region (FCW, FSW, abridged FTW, zero FOP/FIP/FDP, ST0-7).
fn save_x87(s: &Raw, addr: u64) {
    // SAFETY: the state pointer comes from generated code.
    let (regs, tags, top, rc, cc) = unsafe { crate::x87::read_fpu(s.0) };
    let env = crate::x87::fpu_env(&regs, &tags, top, rc, cc);
    let mut head = [0u8; 24];
    head[0..2].copy_from_slice(&env[0..2]);
    head[2..4].copy_from_slice(&env[4..6]);
    let mut ftw = 0u8;
    for phys in 0..8u32 {
        if tags[((phys + 8 - top) & 7) as usize] != 0 {
            ftw |= 1 << phys;
        }
    }
    head[4] = ftw;
    mem_wr(addr, &head);
    for (k, r) in regs.iter().enumerate() {
        let (mant, se) = crate::x87::f64_to_f80(*r);
        let mut slot = [0u8; 16];
        slot[0..8].copy_from_slice(&mant.to_le_bytes());
        slot[8..10].copy_from_slice(&se.to_le_bytes());
        mem_wr(addr + 32 + 16 * k as u64, &slot);
    }
}

/// Load the x87 part of the legacy region; `None` gives the initial (fninit) state.
fn restore_x87(s: &Raw, addr: Option<u64>) {
    use crate::state::*;
    let Some(addr) = addr else {
        for k in 0..8 {
            s.wr::<u64>(OFF_FPREG + 8 * k, 0);
        }
        s.wr::<[u8; 8]>(OFF_FPTAG, [0; 8]);
        s.wr::<u32>(OFF_FTOP, 0);
        s.wr::<u32>(OFF_FPROUND, 0);
        s.wr::<u64>(OFF_FC3210, 0);
        return;
    };
    let head: [u8; 8] = mem_rd(addr);
    let cw = u16::from_le_bytes([head[0], head[1]]) as u32;
    let sw = u16::from_le_bytes([head[2], head[3]]) as u64;
    let ftw = head[4];
    let top = ((sw >> 11) & 7) as u32;
    let mut tags = [0u8; 8];
    for k in 0..8u32 {
        let slot: [u8; 10] = mem_rd(addr + 32 + 16 * k as u64);
        let mant = u64::from_le_bytes(slot[0..8].try_into().expect("8 bytes"));
        let se = u16::from_le_bytes([slot[8], slot[9]]) as u64;
        s.wr::<u64>(OFF_FPREG + 8 * k, crate::x87::amd64_x87_f80_to_f64(mant, se));
        tags[k as usize] = (ftw >> ((top + k) & 7)) & 1;
    }
    s.wr::<[u8; 8]>(OFF_FPTAG, tags);
    s.wr::<u32>(OFF_FTOP, top);
    s.wr::<u32>(OFF_FPROUND, (cw >> 10) & 3);
    use crate::x87::{C0, C1, C2, C3};
    s.wr::<u64>(OFF_FC3210, sw & (C3 | C2 | C1 | C0));
}

fn save_mxcsr(s: &Raw, addr: u64) {
    let mut b = [0u8; 8];
    b[0..4].copy_from_slice(&mxcsr(s).to_le_bytes());
    b[4..8].copy_from_slice(&MXCSR_MASK.to_le_bytes());
    mem_wr(addr + 24, &b);
}

/// xmm0-15 (the low halves of the ymm slots) to/from offset 160 of the legacy region.
fn save_xmm(s: &Raw, addr: u64) {
    for i in 0..16 {
        let v: [u8; 16] = s.rd(crate::state::off_ymm(i));
        mem_wr(addr + 160 + 16 * i as u64, &v);
    }
}
fn restore_xmm(s: &Raw, addr: Option<u64>) {
    for i in 0..16 {
        let v: [u8; 16] = addr.map_or([0; 16], |a| mem_rd(a + 160 + 16 * i as u64));
        s.wr(crate::state::off_ymm(i), v);
    }
}
/// The upper halves of ymm0-15 to/from the AVX component at offset 576.
fn save_ymm_hi(s: &Raw, addr: u64) {
    for i in 0..16 {
        let v: [u8; 16] = s.rd(crate::state::off_ymm(i) + 16);
        mem_wr(addr + 576 + 16 * i as u64, &v);
    }
}
fn restore_ymm_hi(s: &Raw, addr: Option<u64>) {
    for i in 0..16 {
        let v: [u8; 16] = addr.map_or([0; 16], |a| mem_rd(a + 576 + 16 * i as u64));
        s.wr(crate::state::off_ymm(i) + 16, v);
    }
}

/// Dirty helper for `fxsave`/`fxsave64 m512`: the legacy region at `addr` (the instruction and
/// operand pointers are not tracked and read as zero; bytes 416..512 are left alone).
pub extern "C" fn amd64_dirty_fxsave(state: *mut u8, addr: u64) -> u64 {
    let s = Raw(state);
    save_x87(&s, addr);
    save_mxcsr(&s, addr);
    save_xmm(&s, addr);
    0
}

/// Dirty helper for `fxrstor`/`fxrstor64 m512`.
pub extern "C" fn amd64_dirty_fxrstor(state: *mut u8, addr: u64) -> u64 {
    let s = Raw(state);
    restore_x87(&s, Some(addr));
    set_mxcsr(&s, u32::from_le_bytes(mem_rd(addr + 24)));
    restore_xmm(&s, Some(addr));
    0
}

/// Dirty helper for `xsave`/`xsaveopt` (`compacted` = 0) and `xsavec` (1) of the components
/// `eax & XCR0` (edx selects only components above 31, which do not exist). Every enabled
/// component counts as in use, so XSTATE_BV gets all requested bits.
pub extern "C" fn amd64_dirty_xsave(state: *mut u8, addr: u64, eax: u64, compacted: u64) -> u64 {
    let s = Raw(state);
    let rfbm = eax & XCR0;
    if rfbm & 1 != 0 {
        save_x87(&s, addr);
    }
    if rfbm & 6 != 0 {
        save_mxcsr(&s, addr);
    }
    if rfbm & 2 != 0 {
        save_xmm(&s, addr);
    }
    if rfbm & 4 != 0 {
        save_ymm_hi(&s, addr);
    }
    if compacted != 0 {
        // XSTATE_BV and XCOMP_BV (the reserved rest of the header is left alone).
        let mut h = [0u8; 16];
        h[0..8].copy_from_slice(&rfbm.to_le_bytes());
        h[8..16].copy_from_slice(&(COMPACTED | rfbm).to_le_bytes());
        mem_wr(addr + 512, &h);
    } else {
        // Only XSTATE_BV, and in it only the requested bits.
        let old = u64::from_le_bytes(mem_rd(addr + 512));
        mem_wr(addr + 512, &((old & !rfbm) | rfbm).to_le_bytes());
    }
    0
}

/// Dirty helper for `xrstor` of the components `eax & XCR0`, from either format: a component
/// whose XSTATE_BV bit is clear gets its initial state.
pub extern "C" fn amd64_dirty_xrstor(state: *mut u8, addr: u64, eax: u64) -> u64 {
    let s = Raw(state);
    let rfbm = eax & XCR0;
    let bv = u64::from_le_bytes(mem_rd(addr + 512));
    let comp = u64::from_le_bytes(mem_rd(addr + 520));
    let from = |bit: u64| (bv & bit != 0).then_some(addr);
    if rfbm & 1 != 0 {
        restore_x87(&s, from(1));
    }
    if rfbm & 6 != 0 {
        let v = if comp & COMPACTED != 0 && bv & 2 == 0 { 0x1f80 } else { u32::from_le_bytes(mem_rd(addr + 24)) };
        set_mxcsr(&s, v);
    }
    if rfbm & 2 != 0 {
        restore_xmm(&s, from(2));
    }
    if rfbm & 4 != 0 {
        restore_ymm_hi(&s, from(4));
    }
    0
}

pub(crate) fn fxsave_callee() -> Callee {
    Callee { name: "amd64_dirty_fxsave", addr: amd64_dirty_fxsave as extern "C" fn(*mut u8, u64) -> u64 as usize }
}
pub(crate) fn fxrstor_callee() -> Callee {
    Callee { name: "amd64_dirty_fxrstor", addr: amd64_dirty_fxrstor as extern "C" fn(*mut u8, u64) -> u64 as usize }
}
pub(crate) fn xsave_callee() -> Callee {
    Callee { name: "amd64_dirty_xsave", addr: amd64_dirty_xsave as extern "C" fn(*mut u8, u64, u64, u64) -> u64 as usize }
}
pub(crate) fn xrstor_callee() -> Callee {
    Callee { name: "amd64_dirty_xrstor", addr: amd64_dirty_xrstor as extern "C" fn(*mut u8, u64, u64) -> u64 as usize }
}

// ---------------------------------------------------------------- 128-bit lane operations
//
// SSE3..SSE4.2 operations without a `VecOp`, as one pure helper over 64-bit halves: the lifter
// calls it twice per result (low and high half). Lanes are little-endian, lane 0 lowest.

/// Operation selectors of [`amd64_vec128`]; `a` is the destination operand, `b` the source.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
#[repr(u64)]
pub enum V128Op {
    Phaddw,
    Phaddd,
    Phaddsw,
    Phsubw,
    Phsubd,
    Phsubsw,
    /// Minimum unsigned word of `b` and its index.
    Phminposuw,
    /// imm: block selects.
    Mpsadbw,
    /// imm: lane masks.
    Dpps,
    Dppd,
    Addsubps,
    Addsubpd,
    Haddps,
    Haddpd,
    Hsubps,
    Hsubpd,
    /// `b` rounded per lane; imm = rounding control (0..3) | suppress-precision << 3 is ignored.
    Roundps,
    Roundpd,
    /// AVX2 per-lane variable shifts of `a` by the lanes of `b` (counts >= the width give 0,
    /// or the sign fill).
    Psllvd,
    Psllvq,
    Psrlvd,
    Psrlvq,
    Psravd,
    /// AVX vpermilps/vpermilpd with a vector control `b` (in-lane selects).
    Vpermilps,
    Vpermilpd,
}

fn lane(v: u128, i: u32, bits: u32) -> u64 {
    ((v >> (i * bits)) as u64) & if bits == 64 { u64::MAX } else { (1 << bits) - 1 }
}
fn slane(v: u128, i: u32, bits: u32) -> i64 {
    let x = lane(v, i, bits);
    ((x << (64 - bits)) as i64) >> (64 - bits)
}
/// Build a vector from `n` lanes of `bits` given by `f`.
fn build(n: u32, bits: u32, mut f: impl FnMut(u32) -> u64) -> u128 {
    let m = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    (0..n).fold(0u128, |acc, i| acc | ((f(i) & m) as u128) << (i * bits))
}
fn sat16(x: i64) -> u64 {
    x.clamp(i16::MIN as i64, i16::MAX as i64) as u64
}
fn f32l(v: u128, i: u32) -> f32 {
    f32::from_bits(lane(v, i, 32) as u32)
}
fn f64l(v: u128, i: u32) -> f64 {
    f64::from_bits(lane(v, i, 64))
}

/// roundsd/roundpd of one double under rounding control `rc`: NaNs are quieted.
pub(crate) fn round_f64(b: u64, rc: u64) -> u64 {
    if (b >> 52) & 0x7ff == 0x7ff && b << 12 != 0 {
        return b | 1 << 51;
    }
    crate::x87::amd64_x87_frndint(b, rc)
}
/// The same for a float (rounding is exact through the double, whose integers include every
/// integral float).
pub(crate) fn round_f32(b: u32, rc: u64) -> u32 {
    let f = f32::from_bits(b);
    if f.is_nan() {
        return b | 1 << 22;
    }
    (f64::from_bits(round_f64((f as f64).to_bits(), rc)) as f32).to_bits()
}

/// The full 128-bit result of `op` on `a` and `b` with immediate `imm`.
pub fn vec128(op: V128Op, a: u128, b: u128, imm: u8) -> u128 {
    use V128Op::*;
    let hadd = |x: u128, y: u128, bits: u32, f: &dyn Fn(i64, i64) -> u64| {
        let n = 128 / bits;
        build(n, bits, |i| {
            let (src, j) = if i < n / 2 { (x, 2 * i) } else { (y, 2 * (i - n / 2)) };
            f(slane(src, j, bits), slane(src, j + 1, bits))
        })
    };
    match op {
        Phaddw => hadd(a, b, 16, &|x, y| (x + y) as u64),
        Phaddd => hadd(a, b, 32, &|x, y| (x + y) as u64),
        Phaddsw => hadd(a, b, 16, &|x, y| sat16(x + y)),
        Phsubw => hadd(a, b, 16, &|x, y| (x - y) as u64),
        Phsubd => hadd(a, b, 32, &|x, y| (x - y) as u64),
        Phsubsw => hadd(a, b, 16, &|x, y| sat16(x - y)),
        Phminposuw => {
            let (mut best, mut at) = (lane(b, 0, 16), 0);
            for i in 1..8 {
                if lane(b, i, 16) < best {
                    best = lane(b, i, 16);
                    at = i;
                }
            }
            best as u128 | (at as u128) << 16
        }
        Mpsadbw => {
            let ao = 4 * ((imm >> 2) & 1) as u32;
            let bo = 4 * (imm & 3) as u32;
            build(8, 16, |i| (0..4).map(|k| lane(a, ao + i + k, 8).abs_diff(lane(b, bo + k, 8))).sum())
        }
        Dpps => {
            let p = |i: u32| if imm >> (4 + i) & 1 != 0 { f32l(a, i) * f32l(b, i) } else { 0.0 };
            let s = (p(0) + p(1)) + (p(2) + p(3));
            build(4, 32, |i| if imm >> i & 1 != 0 { s.to_bits() as u64 } else { 0 })
        }
        Dppd => {
            let p = |i: u32| if imm >> (4 + i) & 1 != 0 { f64l(a, i) * f64l(b, i) } else { 0.0 };
            let s = p(0) + p(1);
            build(2, 64, |i| if imm >> i & 1 != 0 { s.to_bits() } else { 0 })
        }
        Addsubps => build(4, 32, |i| {
            let r = if i % 2 == 0 { f32l(a, i) - f32l(b, i) } else { f32l(a, i) + f32l(b, i) };
            r.to_bits() as u64
        }),
        Addsubpd => build(2, 64, |i| {
            let r = if i == 0 { f64l(a, 0) - f64l(b, 0) } else { f64l(a, 1) + f64l(b, 1) };
            r.to_bits()
        }),
        Haddps | Hsubps => build(4, 32, |i| {
            let (v, j) = if i < 2 { (a, 2 * i) } else { (b, 2 * (i - 2)) };
            let r = if op == Haddps { f32l(v, j) + f32l(v, j + 1) } else { f32l(v, j) - f32l(v, j + 1) };
            r.to_bits() as u64
        }),
        Haddpd | Hsubpd => build(2, 64, |i| {
            let v = if i == 0 { a } else { b };
            let r = if op == Haddpd { f64l(v, 0) + f64l(v, 1) } else { f64l(v, 0) - f64l(v, 1) };
            r.to_bits()
        }),
        Roundps => build(4, 32, |i| round_f32(lane(b, i, 32) as u32, imm as u64 & 3) as u64),
        Roundpd => build(2, 64, |i| round_f64(lane(b, i, 64), imm as u64 & 3)),
        Psllvd | Psrlvd | Psravd => build(4, 32, |i| {
            let (x, n) = (lane(a, i, 32), lane(b, i, 32));
            match op {
                Psllvd => if n > 31 { 0 } else { x << n },
                Psrlvd => if n > 31 { 0 } else { x >> n },
                _ => (slane(a, i, 32) >> n.min(31)) as u64,
            }
        }),
        Psllvq | Psrlvq => build(2, 64, |i| {
            let (x, n) = (lane(a, i, 64), lane(b, i, 64));
            if n > 63 { 0 } else if op == Psllvq { x << n } else { x >> n }
        }),
        Vpermilps => build(4, 32, |i| lane(a, (lane(b, i, 32) & 3) as u32, 32)),
        Vpermilpd => build(2, 64, |i| lane(a, ((lane(b, i, 64) >> 1) & 1) as u32, 64)),
    }
}

/// Pure helper for vpermd/vpermps: result dwords `2k` and `2k+1` of a 256-bit source
/// `s0..s3` (64-bit quarters, lowest first) under the two indices in `idx` (low 3 bits of
/// each 32-bit half).
pub extern "C" fn amd64_permd(idx: u64, s0: u64, s1: u64, s2: u64, s3: u64) -> u64 {
    let q = [s0, s1, s2, s3];
    let pick = |i: u64| (q[(i as usize & 7) / 2] >> (32 * (i & 1))) & 0xffff_ffff;
    pick(idx & 0xffff_ffff) | pick(idx >> 32) << 32
}
pub(crate) fn permd_callee() -> Callee {
    Callee { name: "amd64_permd", addr: amd64_permd as extern "C" fn(u64, u64, u64, u64, u64) -> u64 as usize }
}

/// Pure helper: half `imm_half & 1` of [`vec128`]`(op, a, b, imm_half >> 8)`.
pub extern "C" fn amd64_vec128(op: u64, alo: u64, ahi: u64, blo: u64, bhi: u64, imm_half: u64) -> u64 {
    // SAFETY: the lifter passes a valid discriminant of the repr(u64) enum.
    let op: V128Op = unsafe { core::mem::transmute::<u64, V128Op>(op) };
    let r = vec128(op, alo as u128 | (ahi as u128) << 64, blo as u128 | (bhi as u128) << 64, (imm_half >> 8) as u8);
    if imm_half & 1 == 0 { r as u64 } else { (r >> 64) as u64 }
}

pub(crate) fn vec128_callee() -> Callee {
    Callee { name: "amd64_vec128", addr: amd64_vec128 as extern "C" fn(u64, u64, u64, u64, u64, u64) -> u64 as usize }
}

/// Pure helper: roundss/roundsd of one lane: `mode` = rounding control | is-double << 8.
pub extern "C" fn amd64_round_scalar(b: u64, mode: u64) -> u64 {
    if mode >> 8 != 0 { round_f64(b, mode & 3) } else { round_f32(b as u32, mode & 3) as u64 }
}
pub(crate) fn round_scalar_callee() -> Callee {
    Callee { name: "amd64_round_scalar", addr: amd64_round_scalar as extern "C" fn(u64, u64) -> u64 as usize }
}

/// Pure helper: crc32 (the Castagnoli polynomial, bit-reflected) of the low `bytes` bytes of
/// `v` into `crc`.
pub extern "C" fn amd64_crc32c(crc: u64, v: u64, bytes: u64) -> u64 {
    let mut c = crc as u32;
    for k in 0..bytes {
        c ^= (v >> (8 * k)) as u8 as u32;
        for _ in 0..8 {
            c = (c >> 1) ^ (0x82f6_3b78 & (c & 1).wrapping_neg());
        }
    }
    c as u64
}
pub(crate) fn crc32c_callee() -> Callee {
    Callee { name: "amd64_crc32c", addr: amd64_crc32c as extern "C" fn(u64, u64, u64) -> u64 as usize }
}

/// Pure helpers: pdep and pext of 64-bit values.
pub extern "C" fn amd64_pdep(src: u64, mask: u64) -> u64 {
    let (mut r, mut m, mut k) = (0u64, mask, 0);
    while m != 0 {
        let bit = m & m.wrapping_neg();
        if src >> k & 1 != 0 {
            r |= bit;
        }
        k += 1;
        m &= m - 1;
    }
    r
}
pub extern "C" fn amd64_pext(src: u64, mask: u64) -> u64 {
    let (mut r, mut m, mut k) = (0u64, mask, 0);
    while m != 0 {
        let bit = m & m.wrapping_neg();
        if src & bit != 0 {
            r |= 1 << k;
        }
        k += 1;
        m &= m - 1;
    }
    r
}
pub(crate) fn pdep_callee() -> Callee {
    Callee { name: "amd64_pdep", addr: amd64_pdep as extern "C" fn(u64, u64) -> u64 as usize }
}
pub(crate) fn pext_callee() -> Callee {
    Callee { name: "amd64_pext", addr: amd64_pext as extern "C" fn(u64, u64) -> u64 as usize }
}

/// The ymm slot front ends use for a temporary operand (`Amd64State::ymm[16]`).
pub const SCRATCH: usize = 16;

/// pcmp[ei]str[im] on `a` and `b` (128-bit), `mode` = imm8 | explicit << 8 | wide << 10, with
/// explicit lengths `la`, `lb` (rax/rdx, signed, 64-bit if `wide`). Returns (IntRes2, rflags).
pub fn pcmpstr(a: u128, b: u128, mode: u64, la: u64, lb: u64) -> (u32, u64) {
    let imm = mode as u8;
    let words = imm & 1 != 0;
    let signed = imm & 2 != 0;
    let (n, bits) = if words { (8u32, 16u32) } else { (16, 8) };
    let elem = |v: u128, i: u32| if signed { slane(v, i, bits) } else { lane(v, i, bits) as i64 };
    let len = |v: u128, reg: u64| -> u32 {
        if mode & (1 << 8) != 0 {
            let l = if mode & (1 << 10) != 0 { reg as i64 } else { reg as i32 as i64 };
            l.unsigned_abs().min(n as u64) as u32
        } else {
            (0..n).find(|&i| lane(v, i, bits) == 0).unwrap_or(n)
        }
    };
    let (la, lb) = (len(a, la), len(b, lb));
    let (va, vb) = (|i: u32| i < la, |j: u32| j < lb);
    let mut r1 = 0u32;
    for j in 0..n {
        let hit = match (imm >> 2) & 3 {
            // Equal any: some valid element of a equals the valid b[j].
            0 => vb(j) && (0..la).any(|i| elem(a, i) == elem(b, j)),
            // Ranges: b[j] lies in some valid pair [a[i], a[i+1]].
            1 => vb(j) && (0..n).step_by(2).any(|i| va(i) && va(i + 1) && elem(a, i) <= elem(b, j) && elem(b, j) <= elem(a, i + 1)),
            // Equal each: both invalid match, one invalid does not.
            2 => match (va(j), vb(j)) {
                (true, true) => elem(a, j) == elem(b, j),
                (x, y) => !x && !y,
            },
            // Equal ordered: a (as a prefix) matches at b[j]; invalid a elements match anything.
            _ => (0..n - j).all(|i| !va(i) || (vb(j + i) && elem(a, i) == elem(b, j + i))),
        };
        r1 |= (hit as u32) << j;
    }
    let all = (1u32 << n) - 1;
    let valid_b = (1u32 << lb) - 1;
    let r2 = match (imm >> 4) & 3 {
        1 => !r1 & all,
        3 => r1 ^ valid_b,
        _ => r1,
    };
    use crate::flags::{CF, OF, SF, ZF};
    let f = if r2 != 0 { CF } else { 0 } | if lb < n { ZF } else { 0 } | if la < n { SF } else { 0 } | if r2 & 1 != 0 { OF } else { 0 };
    (r2, f)
}

/// Dirty helper for pcmp[ei]str[im]: the first operand is xmm `areg`, the second the scratch
/// register; `mode` as for [`pcmpstr`] plus bit 9 for the mask forms, which write xmm0.
/// Returns rflags | (the index forms' ecx) << 32.
pub extern "C" fn amd64_dirty_pcmpstr(state: *mut u8, areg: u64, mode: u64) -> u64 {
    let s = Raw(state);
    let a: u128 = s.rd(crate::state::off_ymm(areg as usize));
    let b: u128 = s.rd(crate::state::off_ymm(SCRATCH));
    let (rax, rdx): (u64, u64) = (s.rd(crate::state::off_gpr(0)), s.rd(crate::state::off_gpr(2)));
    let (r2, f) = pcmpstr(a, b, mode, rax, rdx);
    let imm = mode as u8;
    let (n, bits) = if imm & 1 != 0 { (8u32, 16u32) } else { (16, 8) };
    if mode & (1 << 9) != 0 {
        let m = if imm & 0x40 != 0 { build(n, bits, |i| if r2 >> i & 1 != 0 { u64::MAX } else { 0 }) } else { r2 as u128 };
        s.wr(crate::state::off_ymm(0), m);
        f
    } else {
        let idx = if r2 == 0 {
            n
        } else if imm & 0x40 != 0 {
            31 - r2.leading_zeros()
        } else {
            r2.trailing_zeros()
        };
        f | (idx as u64) << 32
    }
}
pub(crate) fn pcmpstr_callee() -> Callee {
    Callee { name: "amd64_dirty_pcmpstr", addr: amd64_dirty_pcmpstr as extern "C" fn(*mut u8, u64, u64) -> u64 as usize }
}
