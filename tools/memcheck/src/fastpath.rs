//! The inline fast paths of shadow-memory accesses (what Valgrind's `mc_main` fast helpers do,
//! but emitted as IR into the translation): an aligned load whose bytes are all defined, an
//! aligned store of a defined value to addressable memory, the stack-pointer moves of push,
//! pop, call and ret, and the red zone a call or return makes undefined. Each emits the shadow lookup — two table loads, since L1 and L2
//! entries are never null (see [`crate::shadow`]) — and returns an I1 that is true when the
//! fast path does not apply; the caller then makes the (guarded, out-of-line) helper call that
//! handles every case.

use vg_core::tool::vg_ir::{Atom, Binop, Superblock, Ty, Unop};

use crate::shadow::{FastTables, SECONDARY_BYTES};

/// Guest addresses at or above 2^48 have no shadow: the fast path leaves them to the helper.
const HIGH_BITS: u64 = 0xffff_0000_0000_0000;

/// Shadow bytes of all-defined, all-undefined and no-access memory (four bytes per shadow byte).
pub const FILL_DEFINED: u64 = 0xAAAA_AAAA_AAAA_AAAA;
pub const FILL_UNDEFINED: u64 = 0x5555_5555_5555_5555;
pub const FILL_NOACCESS: u64 = 0;

fn ty_of_bytes(n: u64) -> Ty {
    match n {
        1 => Ty::I8,
        2 => Ty::I16,
        4 => Ty::I32,
        _ => Ty::I64,
    }
}

struct Lookup {
    /// The secondary map of the address.
    sm: Atom,
    /// Address of the shadow byte(s) of the access.
    p: Atom,
}

/// The secondary of `addr` and the address of the shadow byte of `addr & !(align - 1)`
/// (`align` >= 4), or of the byte holding `addr`'s two bits (`align` < 4).
fn lookup(sb: &mut Superblock, t: &FastTables, addr: Atom, align: u64) -> Lookup {
    let hi = sb.binop(Binop::Shr(Ty::I64), addr, Atom::u8(32));
    let hi = sb.binop(Binop::And(Ty::I64), hi, Atom::u64(0xffff));
    let hi = sb.binop(Binop::Shl(Ty::I64), hi, Atom::u8(3));
    let l1e = sb.binop(Binop::Add(Ty::I64), hi, Atom::u64(t.l1));
    let l2 = sb.load(Ty::I64, l1e);
    let mid = sb.binop(Binop::Shr(Ty::I64), addr, Atom::u8(16));
    let mid = sb.binop(Binop::And(Ty::I64), mid, Atom::u64(0xffff));
    let mid = sb.binop(Binop::Shl(Ty::I64), mid, Atom::u8(3));
    let l2e = sb.binop(Binop::Add(Ty::I64), l2, mid);
    let sm = sb.load(Ty::I64, l2e);
    // Aligning the offset keeps a misaligned access's lookup inside the secondary; the
    // misalignment itself sends it to the helper.
    let low = sb.binop(Binop::And(Ty::I64), addr, Atom::u64(0xffff & !(align.max(4) - 1)));
    let low = sb.binop(Binop::Shr(Ty::I64), low, Atom::u8(2));
    let p = sb.binop(Binop::Add(Ty::I64), sm, low);
    Lookup { sm, p }
}

/// Non-zero (I64) if `addr` is not `n`-aligned or has no shadow.
fn misaligned(sb: &mut Superblock, addr: Atom, n: u64) -> Atom {
    sb.binop(Binop::And(Ty::I64), addr, Atom::u64(HIGH_BITS | (n - 1)))
}

/// The bit position (I8) of `addr`'s two bits in its shadow byte.
fn sub_shift(sb: &mut Superblock, addr: Atom) -> Atom {
    let a3 = sb.binop(Binop::And(Ty::I64), addr, Atom::u64(3));
    let sh = sb.binop(Binop::Shl(Ty::I64), a3, Atom::u8(1));
    sb.unop(Unop::Trunc(Ty::I64, Ty::I8), sh)
}

/// The shadow of the `n` (1, 2, 4, 8 or 16) bytes at `addr` as an I64 of `2n` bits (for
/// `n` < 4, shifted down to bit 0), plus the lookup.
fn shadow_bits(sb: &mut Superblock, t: &FastTables, addr: Atom, n: u64) -> (Lookup, Atom) {
    let l = lookup(sb, t, addr, n);
    let bits = if n >= 4 {
        let ty = ty_of_bytes(n / 4);
        let v = sb.load(ty, l.p);
        sb.zext(v, Ty::I64)
    } else {
        let v = sb.load(Ty::I8, l.p);
        let v = sb.zext(v, Ty::I64);
        let sh = sub_shift(sb, addr);
        let v = sb.binop(Binop::Shr(Ty::I64), v, sh);
        sb.binop(Binop::And(Ty::I64), v, Atom::u64(mask(n)))
    };
    (l, bits)
}

/// The mask of the shadow bits of `n` bytes.
const fn mask(n: u64) -> u64 {
    if n >= 32 { u64::MAX } else { (1u64 << (2 * n)) - 1 }
}

/// A load of `n` (1..=16) bytes at `addr`, any alignment, whose bytes are all defined: emits
/// the check and returns the I1 "take the helper" (false: the V bits are all zero). The shadow
/// of the access is one unaligned 64-bit read from the shadow byte of `addr` (32 guest bytes
/// from `addr & !3`); one that runs past its secondary reads the no-access padding and takes
/// the helper.
pub fn load(sb: &mut Superblock, t: &FastTables, addr: Atom, n: u64) -> Atom {
    let l = lookup(sb, t, addr, 4);
    let w = sb.load(Ty::I64, l.p);
    let sh = sub_shift(sb, addr);
    let bits = sb.binop(Binop::Shr(Ty::I64), w, sh);
    let bits = sb.binop(Binop::And(Ty::I64), bits, Atom::u64(mask(n)));
    let diff = sb.binop(Binop::Xor(Ty::I64), bits, Atom::u64(FILL_DEFINED & mask(n)));
    // Non-zero for an address with no shadow (a shift needs no 64-bit immediate, a mask does).
    let high = sb.binop(Binop::Shr(Ty::I64), addr, Atom::u8(HIGH_BITS.trailing_zeros() as u8));
    let any = sb.binop(Binop::Or(Ty::I64), diff, high);
    sb.binop(Binop::CmpNE(Ty::I64), any, Atom::u64(0))
}

/// Give the `n` bytes at `addr` the shadow `fill` (one of the `FILL_*` patterns) inline when
/// possible: `addr` aligned, the secondary private (or already holding exactly that), and —
/// if `must_be_addressable` (a store) — no byte no-access. `extra_slow` (an I64, non-zero:
/// not applicable) joins the condition. Returns the I1 "take the helper"; when it is true
/// nothing was written.
pub fn set(sb: &mut Superblock, t: &FastTables, addr: Atom, n: u64, fill: u64, must_be_addressable: bool, extra_slow: Option<Atom>) -> Atom {
    let (l, old) = shadow_bits(sb, t, addr, n);
    let new = fill & mask(n);
    let mut slow = misaligned(sb, addr, n);
    if let Some(x) = extra_slow {
        slow = sb.binop(Binop::Or(Ty::I64), slow, x);
    }
    if must_be_addressable {
        // Every two-bit state non-zero: (old | old >> 1) has all the even bits set.
        let sh = sb.binop(Binop::Shr(Ty::I64), old, Atom::u8(1));
        let any = sb.binop(Binop::Or(Ty::I64), old, sh);
        let even = sb.binop(Binop::And(Ty::I64), any, Atom::u64(0x5555_5555_5555_5555 & mask(n)));
        let missing = sb.binop(Binop::Xor(Ty::I64), even, Atom::u64(0x5555_5555_5555_5555 & mask(n)));
        slow = sb.binop(Binop::Or(Ty::I64), slow, missing);
    }
    // A distinguished (shared, read-only) secondary can only take the write if it already
    // holds the new state.
    let rel = sb.binop(Binop::Sub(Ty::I64), l.sm, Atom::u64(t.dsm));
    let shared = sb.binop(Binop::CmpLTU(Ty::I64), rel, Atom::u64(3 * SECONDARY_BYTES));
    let changes = sb.binop(Binop::CmpNE(Ty::I64), old, Atom::u64(new));
    let stuck = sb.binop(Binop::And(Ty::I1), shared, changes);
    let stuck = sb.zext(stuck, Ty::I64);
    let slow = sb.binop(Binop::Or(Ty::I64), slow, stuck);
    let slow = sb.binop(Binop::CmpNE(Ty::I64), slow, Atom::u64(0));
    // Write only when neither slow nor shared; otherwise the write goes to a scratch word.
    let skip = sb.binop(Binop::Or(Ty::I1), slow, shared);
    let target = sb.ite(skip, Atom::u64(t.scratch), l.p);
    if n >= 4 {
        let ty = ty_of_bytes(n / 4);
        let v = Atom::Const(vg_core::tool::vg_ir::Const::int(ty, new));
        sb.store(target, v);
    } else {
        // Read-modify-write of the shadow byte holding the `n` bytes' bits.
        let cur = sb.load(Ty::I8, l.p);
        let cur = sb.zext(cur, Ty::I64);
        let sh = sub_shift(sb, addr);
        let m = sb.binop(Binop::Shl(Ty::I64), Atom::u64(mask(n)), sh);
        let nm = sb.unop(Unop::Not(Ty::I64), m);
        let kept = sb.binop(Binop::And(Ty::I64), cur, nm);
        let put = sb.binop(Binop::Shl(Ty::I64), Atom::u64(new), sh);
        let b = sb.binop(Binop::Or(Ty::I64), kept, put);
        let b = sb.unop(Unop::Trunc(Ty::I64, Ty::I8), b);
        sb.store(target, b);
    }
    slow
}

/// The amd64 red zone: the bytes below the stack pointer a call or return makes undefined.
pub const RED_ZONE: u64 = 128;

/// Where [`undefine_red_zone`] sends its shadow stores when it leaves the work to the helper
/// (room for the shadow of a return's 8 dead bytes and of the red zone).
struct RedZoneScratch(core::cell::UnsafeCell<[u64; (RED_ZONE / 32 + 1) as usize]>);

// SAFETY: the contents are never read; concurrent writes of junk are harmless.
unsafe impl Sync for RedZoneScratch {}

static RED_ZONE_SCRATCH: RedZoneScratch = RedZoneScratch(core::cell::UnsafeCell::new([0; (RED_ZONE / 32 + 1) as usize]));

/// Make the [`RED_ZONE`] bytes at `base` undefined, and the `dead` bytes below them (0, or 8
/// for a return: the stack shrinks by the return address) no-access, inline when the range
/// starts 8-aligned, lies in one secondary and that secondary is private: one shadow lookup,
/// then a 2-byte store for the dead bytes and four 8-byte stores of the undefined pattern.
/// Runs at every call and return, so the test is folded into few operations. Returns the I1
/// "take the helper"; when it is true nothing was written.
pub fn undefine_red_zone(sb: &mut Superblock, t: &FastTables, base: Atom, dead: u64) -> Atom {
    assert!(dead == 0 || dead == 8, "dead bytes below a red zone: 0 or 8, not {dead}");
    let start = if dead == 0 { base } else { sb.binop(Binop::Sub(Ty::I64), base, Atom::u64(dead)) };
    let l = lookup(sb, t, start, 8);
    // The offset in the secondary plus the high bits: adding the distance to the last 8-byte
    // word carries into bit 16 exactly when an aligned range runs past the secondary's end,
    // and leaves the low three bits (misalignment) and the high bits (no shadow) as they were.
    let off = sb.binop(Binop::And(Ty::I64), start, Atom::u64(HIGH_BITS | 0xffff));
    let last = sb.binop(Binop::Add(Ty::I64), off, Atom::u64(dead + RED_ZONE - 8));
    let bad = sb.binop(Binop::And(Ty::I64), last, Atom::u64(HIGH_BITS | 0x1_0000 | 7));
    let bad = sb.binop(Binop::CmpNE(Ty::I64), bad, Atom::u64(0));
    let rel = sb.binop(Binop::Sub(Ty::I64), l.sm, Atom::u64(t.dsm));
    let shared = sb.binop(Binop::CmpLTU(Ty::I64), rel, Atom::u64(3 * SECONDARY_BYTES));
    let slow = sb.binop(Binop::Or(Ty::I1), bad, shared);
    let target = sb.ite(slow, Atom::u64(RED_ZONE_SCRATCH.0.get() as u64), l.p);
    // Four guest bytes per shadow byte.
    if dead > 0 {
        sb.store(target, Atom::Const(vg_core::tool::vg_ir::Const::I16(FILL_NOACCESS as u16)));
    }
    for k in 0..RED_ZONE / 32 {
        let a = sb.binop(Binop::Add(Ty::I64), target, Atom::u64(dead / 4 + 8 * k));
        sb.store(a, Atom::u64(FILL_UNDEFINED));
    }
    slow
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::{DEFINED, NOACCESS, ShadowMem, UNDEFINED};
    use alloc::vec::Vec;
    use vg_core::tool::vg_ir::interp::{HostMemory, run};

    /// Run the inline red-zone code for `base` and `dead` against `m`; returns "take the
    /// helper".
    fn red_zone_dead(m: &ShadowMem, base: u64, dead: u64) -> bool {
        let mut sb = Superblock::new(8);
        let slow = undefine_red_zone(&mut sb, &m.fast_tables(), Atom::u64(base), dead);
        let slow = sb.zext(slow, Ty::I64);
        sb.put(0, slow);
        let mut state = [0u8; 16];
        run(&sb, &mut state, &mut HostMemory);
        state[0] != 0
    }

    fn red_zone(m: &ShadowMem, base: u64) -> bool {
        red_zone_dead(m, base, 0)
    }

    fn states(m: &ShadowMem, from: u64, len: u64) -> Vec<u8> {
        (from..from + len).map(|a| m.state(a)).collect()
    }

    /// Run the inline load check for `n` bytes at `addr` against `m`; returns "take the helper".
    fn load_slow(m: &ShadowMem, addr: u64, n: u64) -> bool {
        let mut sb = Superblock::new(8);
        let slow = load(&mut sb, &m.fast_tables(), Atom::u64(addr), n);
        let slow = sb.zext(slow, Ty::I64);
        sb.put(0, slow);
        let mut state = [0u8; 16];
        run(&sb, &mut state, &mut HostMemory);
        state[0] != 0
    }

    #[test]
    fn loads_of_defined_bytes_stay_inline_at_any_alignment() {
        let mut m = ShadowMem::new();
        m.make_defined(0x10_0000, 0x1_0000);
        m.make_undefined(0x10_8000, 1);
        for n in [1, 2, 4, 8, 16] {
            for off in 0..8 {
                assert!(!load_slow(&m, 0x10_4000 + off, n), "{n} bytes at +{off}");
            }
            // An undefined byte anywhere in the access, the end of a chunk (the next one is
            // no-access, read from the secondary's padding), no shadow at all: the helper.
            assert!(load_slow(&m, 0x10_8000 + 1 - n, n), "{n} bytes ending at the undefined byte");
            if n > 1 {
                assert!(load_slow(&m, 0x11_0000 - n + 1, n), "{n} bytes across the chunk's end");
            }
            assert!(!load_slow(&m, 0x11_0000 - n, n), "{n} bytes ending at the chunk's end");
            assert!(load_slow(&m, 1 << 48, n));
        }
    }

    #[test]
    fn red_zone_inline_in_one_private_secondary_and_nothing_elsewhere() {
        let mut m = ShadowMem::new();
        m.make_defined(0x10_0000, 0x4_0000);
        // Private secondaries for the first two chunks; the third stays shared.
        m.make_noaccess(0x10_0000, 1);
        m.make_noaccess(0x11_0000, 1);
        assert!(!red_zone(&m, 0x10_8000));
        assert_eq!(states(&m, 0x10_8000, 128), [UNDEFINED; 128]);
        assert_eq!((m.state(0x10_7fff), m.state(0x10_8080)), (DEFINED, DEFINED));
        // The last 128 bytes of a secondary still fit.
        assert!(!red_zone(&m, 0x10_ff80));
        assert_eq!(states(&m, 0x10_ff80, 128), [UNDEFINED; 128]);
        // Misaligned, crossing into the next secondary, a shared secondary, an address with no
        // shadow: the helper's work, and nothing written.
        for base in [0x10_9004, 0x10_ff88, 0x12_8000, 1 << 48] {
            assert!(red_zone(&m, base), "{base:#x}");
        }
        assert_eq!(states(&m, 0x10_9000, 0x80), [DEFINED; 0x80]);
        assert_eq!(states(&m, 0x11_0001, 0x80), [DEFINED; 0x80]);
        assert_eq!(states(&m, 0x12_8000, 0x80), [DEFINED; 0x80]);
    }

    #[test]
    fn a_return_also_kills_the_eight_bytes_below_its_red_zone() {
        let mut m = ShadowMem::new();
        m.make_defined(0x10_0000, 0x2_0000);
        m.make_noaccess(0x10_0000, 1);
        assert!(!red_zone_dead(&m, 0x10_8008, 8));
        assert_eq!(states(&m, 0x10_8000, 8), [NOACCESS; 8]);
        assert_eq!(states(&m, 0x10_8008, 128), [UNDEFINED; 128]);
        assert_eq!((m.state(0x10_7fff), m.state(0x10_8088)), (DEFINED, DEFINED));
        // The whole 136 bytes must fit in the secondary, from the first dead byte.
        assert!(red_zone_dead(&m, 0x10_ff88, 8));
        assert_eq!(states(&m, 0x10_ff80, 0x80), [DEFINED; 0x80]);
        assert!(!red_zone_dead(&m, 0x10_ff80, 8));
        assert_eq!(m.state(0x10_ff77), DEFINED);
        assert_eq!(states(&m, 0x10_ff78, 8), [NOACCESS; 8]);
        assert_eq!(states(&m, 0x10_ff80, 0x80), [UNDEFINED; 0x80]);
    }
}
