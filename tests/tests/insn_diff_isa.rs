//! Differential instruction tests of the ISA extensions beyond SSE2 (SSE3, SSSE3, SSE4.1,
//! SSE4.2, BMI1/2, MOVBE, CRC32, fxsave/xsave and friends; AVX/AVX2/FMA when advertised): every
//! lifted form runs natively on the real CPU, through the lifter + IR interpreter, and through
//! the JIT, each with whole superblocks and with one instruction per block, on many random
//! register, flag, xmm/ymm and memory states; all GPRs, the defined arithmetic flags, DF,
//! xmm0-15 (and the ymm upper halves) and the memory buffer must agree.
//!
//! The harness is `vg_tests::diff`; the spec syntax is the one of `insn_diff.rs` (iced `Code`
//! names with operands; `m` / `m+N` for `[r15 + N]`); the ymm upper halves are carried through
//! the trampoline and compared.

use iced_x86::Code;
use vg_amd64_guest::state::*;
use vg_amd64_guest::Amd64;
use vg_core::arch::{GuestArch, LiftLimits};
use vg_ir::interp::{self, HostMemory};
use vg_ir::JumpKind;
#[path = "support/asm.rs"]
mod asm;
use asm::*;
use vg_tests::diff::*;
use vg_tests::native::{CodePage, CpuState};

const TRIALS: usize = 50;

/// Fix-ups of the random state a form needs to be well defined (and not fault natively).
#[derive(Clone, Copy, Debug)]
enum Fix {
    None,
    /// rax and rdx hold small signed string lengths (pcmpestr*).
    Lens,
    /// [r15 .. r15+64) holds eight doubles for the x87 stack of the save forms, and
    /// edx:eax the xsave component mask `XCR0`.
    X87Full,
    /// Bytes of xmm1 / xmm2 drawn from a small alphabet with some zeroes (string compares).
    Strings,
    /// Every ymm lane a finite float/double (random mantissas, moderate exponents) or zero.
    Finite,
}

struct Form {
    spec: String,
    fix: Fix,
}

fn f(spec: impl Into<String>) -> Form {
    Form { spec: spec.into(), fix: Fix::None }
}
fn fx(spec: impl Into<String>, fix: Fix) -> Form {
    Form { spec: spec.into(), fix }
}


// ---------------------------------------------------------------- the forms

fn forms() -> Vec<Form> {
    let mut v = Vec::new();
    // Packed two-operand forms, register and memory sources.
    let vec2 = [
        "Pshufb", "Phaddw", "Phaddd", "Phaddsw", "Phsubw", "Phsubd", "Phsubsw", "Pmaddubsw", "Pmulhrsw", "Psignb",
        "Psignw", "Psignd", "Pabsb", "Pabsw", "Pabsd", "Pminsb", "Pminsd", "Pminuw", "Pminud", "Pmaxsb", "Pmaxsd",
        "Pmaxuw", "Pmaxud", "Pmulld", "Pmuldq", "Packusdw", "Pcmpeqq", "Pcmpgtq", "Phminposuw", "Addsubps", "Addsubpd",
        "Haddps", "Haddpd", "Hsubps", "Hsubpd", "Pblendvb", "Blendvps", "Blendvpd",
    ];
    for (k, op) in vec2.iter().enumerate() {
        v.push(f(format!("{op}_xmm_xmmm128 xmm1 xmm{}", 2 + k % 13)));
        v.push(f(format!("{op}_xmm_xmmm128 xmm9 m+{}", 16 * (k % 4))));
    }
    v.push(f("Ptest_xmm_xmmm128 xmm1 xmm2"));
    v.push(f("Ptest_xmm_xmmm128 xmm1 m"));
    // ptest with operands that make ZF/CF set.
    v.push(f("Ptest_xmm_xmmm128 xmm1 xmm1"));
    v.push(f("Pxor_xmm_xmmm128 xmm3 xmm3; Ptest_xmm_xmmm128 xmm3 xmm2"));
    v.push(f("Pcmpeqb_xmm_xmmm128 xmm3 xmm3; Ptest_xmm_xmmm128 xmm3 xmm2"));
    for imm in [0u8, 0x5, 0xa, 0xf, 0x3, 0x0c] {
        v.push(f(format!("Blendps_xmm_xmmm128_imm8 xmm1 xmm2 {imm}")));
        v.push(f(format!("Pblendw_xmm_xmmm128_imm8 xmm1 m {}", imm.wrapping_mul(37))));
    }
    for imm in 0..4 {
        v.push(f(format!("Blendpd_xmm_xmmm128_imm8 xmm1 xmm2 {imm}")));
    }
    for imm in [0, 1, 4, 7, 8, 15, 16, 17, 24, 31, 32, 200] {
        v.push(f(format!("Palignr_xmm_xmmm128_imm8 xmm1 xmm2 {imm}")));
    }
    v.push(f("Palignr_xmm_xmmm128_imm8 xmm1 m 5"));
    for (op, mem) in [
        ("Pmovzxbw_xmm_xmmm64", 8),
        ("Pmovzxbd_xmm_xmmm32", 4),
        ("Pmovzxbq_xmm_xmmm16", 2),
        ("Pmovzxwd_xmm_xmmm64", 8),
        ("Pmovzxwq_xmm_xmmm32", 4),
        ("Pmovzxdq_xmm_xmmm64", 8),
        ("Pmovsxbw_xmm_xmmm64", 8),
        ("Pmovsxbd_xmm_xmmm32", 4),
        ("Pmovsxbq_xmm_xmmm16", 2),
        ("Pmovsxwd_xmm_xmmm64", 8),
        ("Pmovsxwq_xmm_xmmm32", 4),
        ("Pmovsxdq_xmm_xmmm64", 8),
    ] {
        v.push(f(format!("{op} xmm1 xmm2")));
        // The load is only as wide as the lanes it widens: reading at the buffer's end works.
        v.push(f(format!("{op} xmm3 m+{}", 2048 - mem)));
    }
    for imm in [0, 3, 9, 15, 21] {
        v.push(f(format!("Pextrb_r32m8_xmm_imm8 eax xmm1 {imm}")));
        v.push(f(format!("Pextrb_r32m8_xmm_imm8 m+3 xmm1 {imm}")));
        v.push(f(format!("Pextrw_r32m16_xmm_imm8 m+5 xmm2 {imm}")));
        v.push(f(format!("Pextrw_r32_xmm_imm8 ecx xmm2 {imm}")));
        v.push(f(format!("Pextrd_rm32_xmm_imm8 edx xmm3 {imm}")));
        v.push(f(format!("Pextrd_rm32_xmm_imm8 m xmm3 {imm}")));
        v.push(f(format!("Pextrq_rm64_xmm_imm8 rbx xmm4 {imm}")));
        v.push(f(format!("Pextrq_rm64_xmm_imm8 m+8 xmm4 {imm}")));
        v.push(f(format!("Extractps_rm32_xmm_imm8 esi xmm5 {imm}")));
        v.push(f(format!("Extractps_r64m32_xmm_imm8 rsi xmm5 {imm}")));
        v.push(f(format!("Pinsrb_xmm_r32m8_imm8 xmm1 ecx {imm}")));
        v.push(f(format!("Pinsrb_xmm_r32m8_imm8 xmm1 m+1 {imm}")));
        v.push(f(format!("Pinsrd_xmm_rm32_imm8 xmm2 edx {imm}")));
        v.push(f(format!("Pinsrd_xmm_rm32_imm8 xmm2 m {imm}")));
        v.push(f(format!("Pinsrq_xmm_rm64_imm8 xmm3 r9 {imm}")));
        v.push(f(format!("Pinsrq_xmm_rm64_imm8 xmm3 m {imm}")));
    }
    for imm in [0x00, 0x1b, 0x4e, 0xa5, 0xff, 0x31, 0xc0] {
        v.push(f(format!("Insertps_xmm_xmmm32_imm8 xmm1 xmm2 {imm}")));
        v.push(f(format!("Insertps_xmm_xmmm32_imm8 xmm1 m {imm}")));
    }
    for imm in [0, 1, 2, 3, 4, 8, 9, 10, 11, 12] {
        v.push(f(format!("Roundps_xmm_xmmm128_imm8 xmm1 xmm2 {imm}")));
        v.push(f(format!("Roundpd_xmm_xmmm128_imm8 xmm1 m {imm}")));
        v.push(f(format!("Roundss_xmm_xmmm32_imm8 xmm1 xmm2 {imm}")));
        v.push(f(format!("Roundsd_xmm_xmmm64_imm8 xmm1 m {imm}")));
    }
    v.push(f("Cvtps2dq_xmm_xmmm128 xmm1 xmm2"));
    v.push(f("Cvtps2dq_xmm_xmmm128 xmm1 m"));
    v.push(f("Cvtpd2dq_xmm_xmmm128 xmm3 xmm4"));
    v.push(f("Cvtpd2dq_xmm_xmmm128 xmm3 m+16"));
    // Rounding from MXCSR: set RC to each mode, round, restore.
    for rc in 0..4u32 {
        v.push(f(format!(
            "Stmxcsr_m32 m+64; Mov_rm32_imm32 m+68 {}; Ldmxcsr_m32 m+68; Cvtps2dq_xmm_xmmm128 xmm1 xmm2; Cvtpd2dq_xmm_xmmm128 xmm3 xmm4; VEX_Vcvtps2dq_ymm_ymmm256 ymm5 ymm6; VEX_Vcvtpd2dq_xmm_ymmm256 xmm7 ymm8; Ldmxcsr_m32 m+64; And_rm32_imm8 m+64 -64",
            0x1f80 | rc << 13
        )));
        v.push(f(format!(
            "Stmxcsr_m32 m+64; Mov_rm32_imm32 m+68 {}; Ldmxcsr_m32 m+68; Roundpd_xmm_xmmm128_imm8 xmm1 xmm2 4; Roundss_xmm_xmmm32_imm8 xmm3 xmm4 12; Ldmxcsr_m32 m+64; And_rm32_imm8 m+64 -64",
            0x1f80 | rc << 13
        )));
    }
    for imm in [0xff, 0xf1, 0x3c, 0x92, 0x0f, 0xf0] {
        v.push(f(format!("Dpps_xmm_xmmm128_imm8 xmm1 xmm2 {imm}")));
        v.push(f(format!("Dppd_xmm_xmmm128_imm8 xmm1 m {}", imm & 0x33)));
    }
    for imm in 0..8 {
        v.push(f(format!("Mpsadbw_xmm_xmmm128_imm8 xmm1 xmm2 {imm}")));
    }
    v.push(f("Mpsadbw_xmm_xmmm128_imm8 xmm1 m 5"));
    for s in [
        "Movddup_xmm_xmmm64 xmm1 xmm2",
        "Movddup_xmm_xmmm64 xmm1 m+8",
        "Movshdup_xmm_xmmm128 xmm1 xmm2",
        "Movsldup_xmm_xmmm128 xmm1 m",
        "Lddqu_xmm_m128 xmm1 m+3",
        "Movntdqa_xmm_m128 xmm7 m+16",
    ] {
        v.push(f(s));
    }
    // String compares: every aggregation, polarity, format and output selection.
    for imm in [0x00u32, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x18, 0x1c, 0x30, 0x34, 0x38, 0x3c, 0x40, 0x44, 0x48, 0x4c, 0x01, 0x05, 0x09, 0x0d, 0x02, 0x06, 0x0a, 0x0e, 0x03, 0x07, 0x0b, 0x0f, 0x4f, 0x7a, 0x1a, 0x39] {
        v.push(fx(format!("Pcmpistri_xmm_xmmm128_imm8 xmm1 xmm2 {imm}"), Fix::Strings));
        v.push(fx(format!("Pcmpistrm_xmm_xmmm128_imm8 xmm1 xmm2 {imm}"), Fix::Strings));
        v.push(fx(format!("Pcmpestri_xmm_xmmm128_imm8 xmm1 xmm2 {imm}"), Fix::Lens));
        v.push(fx(format!("Pcmpestrm_xmm_xmmm128_imm8 xmm1 m {imm}"), Fix::Lens));
        v.push(fx(format!("Pcmpestri64_xmm_xmmm128_imm8 xmm1 xmm2 {imm}"), Fix::Lens));
        v.push(fx(format!("Pcmpestrm64_xmm_xmmm128_imm8 xmm1 xmm2 {imm}"), Fix::Strings));
    }
    v.push(fx("Pcmpistri_xmm_xmmm128_imm8 xmm1 m 0x0c", Fix::Strings));
    for s in [
        "Crc32_r32_rm8 eax cl",
        "Crc32_r32_rm16 eax cx",
        "Crc32_r32_rm32 eax m",
        "Crc32_r64_rm8 rax m+1",
        "Crc32_r64_rm64 r9 rcx",
    ] {
        v.push(f(s));
    }
    // BMI1/BMI2/MOVBE.
    for (w, a, b, c) in [(32, "eax", "ecx", "edx"), (64, "rax", "rcx", "rdx"), (64, "r9", "r10", "r11")] {
        for op in ["Andn", "Pdep", "Pext", "Mulx"] {
            v.push(f(format!("VEX_{op}_r{w}_r{w}_rm{w} {a} {b} {c}")));
            v.push(f(format!("VEX_{op}_r{w}_r{w}_rm{w} {a} {b} m")));
        }
        v.push(f(format!("VEX_Mulx_r{w}_r{w}_rm{w} {a} {a} {c}")));
        for op in ["Bextr", "Bzhi", "Shlx", "Sarx", "Shrx"] {
            v.push(f(format!("VEX_{op}_r{w}_rm{w}_r{w} {a} {b} {c}")));
            v.push(f(format!("VEX_{op}_r{w}_rm{w}_r{w} {a} m {c}")));
        }
        for op in ["Blsi", "Blsmsk", "Blsr"] {
            v.push(f(format!("VEX_{op}_r{w}_rm{w} {a} {b}")));
            v.push(f(format!("VEX_{op}_r{w}_rm{w} {a} m")));
            // A zero source: the carry cases.
            v.push(f(format!("Xor_rm32_r32 ecx ecx; VEX_{op}_r{w}_rm{w} {a} {b}")));
        }
        for imm in [0, 1, 13, 31, 63] {
            v.push(f(format!("VEX_Rorx_r{w}_rm{w}_imm8 {a} {b} {imm}")));
        }
        v.push(f(format!("VEX_Rorx_r{w}_rm{w}_imm8 {a} m 7")));
        // Small controls for bextr/bzhi: start/length/index inside and around the width.
        for ctl in [0x0000, 0x0400, 0x0804, 0x2010, 0x401f, 0x0120, 0x3f3f, 0x0840, 0x00ff, 0x10, 0x41, 0x1f] {
            v.push(f(format!("Mov_r64_imm64 rdx {ctl}; VEX_Bextr_r{w}_rm{w}_r{w} {a} {b} {c}")));
            v.push(f(format!("Mov_r64_imm64 rdx {ctl}; VEX_Bzhi_r{w}_rm{w}_r{w} {a} {b} {c}")));
        }
    }
    for w in [16, 32, 64] {
        let r = match w {
            16 => "cx",
            32 => "ecx",
            _ => "rcx",
        };
        v.push(f(format!("Movbe_r{w}_m{w} {r} m+1")));
        v.push(f(format!("Movbe_m{w}_r{w} m+3 {r}")));
    }
    for s in ["Tzcnt_r32_rm32 eax ecx", "Tzcnt_r64_rm64 rax m", "Tzcnt_r16_rm16 ax cx"] {
        v.push(f(s));
    }
    save_forms(&mut v);
    v
}

/// fxsave/xsave images and their restores. The instruction and operand pointers of the x87
/// (which the synthetic CPU does not track), MXCSR's sticky exception flags and MXCSR_MASK
/// (the host's own; the synthetic CPU reports 0xffff) are cleared in the image before it is
/// compared.
fn save_forms(v: &mut Vec<Form>) {
    let fill = "Fninit; Fld_m64fp m; Fld_m64fp m+8; Fld_m64fp m+16; Fld_m64fp m+24; Fld_m64fp m+32; Fld_m64fp m+40; Fld_m64fp m+48; Fld_m64fp m+56";
    let scrub = |at: u32| {
        format!(
            "Mov_rm16_imm16 m+{} 0; Mov_rm64_imm32 m+{} 0; Mov_rm64_imm32 m+{} 0; And_rm32_imm8 m+{} -64; Mov_rm32_imm32 m+{} 0",
            at + 6,
            at + 8,
            at + 16,
            at + 24,
            at + 28
        )
    };
    // The 512-byte legacy image at m+512 (and the xsave header after it).
    for op in ["Fxsave_m512byte", "Fxsave64_m512byte"] {
        v.push(fx(format!("{fill}; {op} m+512; {}; Fninit", scrub(512)), Fix::X87Full));
    }
    // Rounding control toward +inf (the x87 model keeps only the rounding field of the control
    // word; precision and exception masks stay at their defaults).
    v.push(fx(
        format!("{fill}; Mov_rm16_imm16 m+1024 0xb7f; Fldcw_m2byte m+1024; Fxsave64_m512byte m+512; {}; Fninit", scrub(512)),
        Fix::X87Full,
    ));
    for op in ["Xsave64_mem", "Xsavec64_mem", "Xsave_mem", "Xsaveopt64_mem"] {
        v.push(fx(format!("{fill}; {op} m+512; {}; Fninit", scrub(512)), Fix::X87Full));
    }
    // Restores: save, change the image, restore, look at the registers.
    for (save, restore) in [("Fxsave64_m512byte", "Fxrstor64_m512byte"), ("Fxsave_m512byte", "Fxrstor_m512byte")] {
        v.push(fx(
            format!("{fill}; {save} m+512; Mov_rm64_imm32 m+672 -7; Mov_rm64_imm32 m+712 99; Fninit; {restore} m+512; Fstp_m64fp m+64; Fstp_m64fp m+72; Fstp_m64fp m+80; Fninit; Fnstsw_m2byte m+88; {}", scrub(512)),
            Fix::X87Full,
        ));
    }
    // xrstor faults on a header with reserved bits set: clear it before the standard-format save
    // (which writes only XSTATE_BV).
    let clear_header = (0..8).map(|k| format!("Mov_rm64_imm32 m+{} 0", 1024 + 8 * k)).collect::<Vec<_>>().join("; ");
    for (save, restore) in [("Xsave64_mem", "Xrstor64_mem"), ("Xsavec64_mem", "Xrstor64_mem"), ("Xsave_mem", "Xrstor_mem")] {
        let fill = format!("{clear_header}; {fill}");
        v.push(fx(
            format!("{fill}; {save} m+512; Mov_rm64_imm32 m+688 -7; Fninit; {restore} m+512; Fstp_m64fp m+64; Fstp_m64fp m+72; Fninit; {}", scrub(512)),
            Fix::X87Full,
        ));
        // A cleared XSTATE_BV bit restores the component's initial state (xmm zero, x87 empty).
        v.push(fx(
            format!("{fill}; {save} m+512; And_rm8_imm8 m+1024 -4; Fninit; Fld1; {restore} m+512; Fnstsw_m2byte m+88; Fnstcw_m2byte m+90; Fninit; {}", scrub(512)),
            Fix::X87Full,
        ));
    }
    v.push(fx("Rdtscp; Mov_r32_imm32 eax 0; Mov_r32_imm32 edx 0; Mov_r32_imm32 ecx 0", Fix::None));
}


// ---------------------------------------------------------------- assembling specs


// ---------------------------------------------------------------- random states

fn random_state(rng: &mut Rng, fix: Fix, buf: &mut Buffer) -> CpuState {
    let base = buf.base();
    let mut c = CpuState::default();
    for r in 0..16 {
        c.gpr[r] = rng.int();
    }
    c.gpr[RSP] = base + STACK_TOP as u64;
    c.gpr[15] = base + DATA_PTR as u64;
    c.rflags = (rng.next() & OSZACP) | 0x202;
    for x in c.xmm.iter_mut().chain(c.ymm_hi.iter_mut()) {
        *x = rng.lane() as u128 | (rng.lane() as u128) << 64;
    }
    for b in buf.bytes().iter_mut() {
        *b = rng.next() as u8;
    }
    match fix {
        Fix::None => {}
        Fix::Lens => {
            c.gpr[RAX] = (rng.below(41) as i64 - 20) as u64;
            c.gpr[RDX] = (rng.below(41) as i64 - 20) as u64;
            if rng.below(4) == 0 {
                // Upper halves that only the 64-bit forms see.
                c.gpr[RAX] ^= rng.next() << 32;
            }
        }
        Fix::X87Full => {
            // Quarter integers: no NaNs and no denormals (whose sticky exception flag in the
            // status word the x87 model does not keep).
            for k in 0..8 {
                let d = (rng.below(2001) as i64 - 1000) as f64 / 4.0;
                buf.bytes()[DATA_PTR + 8 * k..DATA_PTR + 8 * k + 8].copy_from_slice(&d.to_le_bytes());
            }
            c.gpr[RAX] = vg_amd64_guest::helpers::XCR0;
            c.gpr[RDX] = 0;
        }
        Fix::Finite => {
            for x in c.xmm.iter_mut().chain(c.ymm_hi.iter_mut()) {
                let mut v = 0u128;
                for q in 0..2 {
                    let r = rng.next();
                    // Exponents within 2^-64..2^64 of one: products and sums round but stay
                    // normal; every 8th lane zero. The same bits read as two floats are finite.
                    let lane = if r % 8 == 0 { 0 } else { (r & 0x800f_ffff_ffff_ffff) | (0x3bf + r % 0x80) << 52 };
                    let lane = lane & !(0x4000_0000_u64) | (r >> 8 & 0x3f00_0000);
                    v |= (lane as u128) << (64 * q);
                }
                *x = v;
            }
        }
        Fix::Strings => {
            for r in [1, 2] {
                let mut v = 0u128;
                for k in 0..16 {
                    let b = match rng.below(8) {
                        0 => 0u128,
                        1 => rng.next() as u8 as u128,
                        _ => b"abcab"[rng.below(5) as usize] as u128,
                    };
                    v |= b << (8 * k);
                }
                c.xmm[r] = v;
            }
        }
    }
    c
}

/// Run every form against the CPU and the four executors; returns (passed, failure reports).
fn check_forms(forms: &[Form], trials: usize) -> (usize, Vec<String>) {
    let asm = Assembler::new_cached();
    let mut h = Harness::new(true, true);
    let mut failures: Vec<String> = Vec::new();
    let mut passed = 0;
    for (fi, form) in forms.iter().enumerate() {
        let code = asm.assemble(&form.spec, h.page.snippet_addr());
        let (start, end) = h.page.load(&code);
        let mask = (OSZACP & !undefined_flags(&code, start)) | DF;
        let mut rng = Rng(0x51ed_2701_aa55_1234 ^ (fi as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1));
        let fails = h.check((start, end), mask, &mut rng, trials, form.fix, random_state);
        passed += fails.is_empty() as usize;
        for x in fails {
            if failures.len() < 40 {
                failures.push(format!(
                    "form `{}` ({:02x?}) trial {} via {}:\n  input: {}\n{}",
                    form.spec,
                    code,
                    x.trial,
                    x.via,
                    describe(&x.input),
                    x.diff
                ));
            }
        }
    }
    (passed, failures)
}

#[test]
fn extension_forms_match_the_cpu() {
    let forms = forms();
    let (passed, failures) = check_forms(&forms, TRIALS);
    eprintln!("extension forms: {passed} of {} pass ({TRIALS} random inputs each)", forms.len());
    assert!(failures.is_empty(), "{} forms differ from the CPU:\n{}", forms.len() - passed, failures.join("\n"));
    assert!(forms.len() >= 400);
}

// ---------------------------------------------------------------- AVX, AVX2, FMA3

/// VEX forms not compared: they fault on random inputs (vldmxcsr with reserved MXCSR bits) or
/// address memory through a vector index (gathers).
const AVX_SKIP: &[&str] = &["vldmxcsr", "vgather", "vpgather"];

/// Immediates tried on every imm8 form (predicates, selects, zeroing bits, shift counts).
const AVX_IMMS: [u8; 7] = [0, 1, 0x1b, 0x4e, 0x88, 0xa5, 0x3f];

/// Every VEX-encoded vector `Code` iced knows whose instruction the lifter lifts, with its
/// operands picked from the `Code` name (`xmm`, `ymmm256`, `r32m8`, `imm8`, ...): register and
/// memory variants, several immediates. Memory is `[r15 + 32k]` (aligned for the movdqa family).
/// Returns the forms and the mnemonics the lifter does not lift.
fn avx_forms() -> (Vec<Form>, Vec<String>) {
    let mut forms = Vec::new();
    let mut unlifted = std::collections::BTreeSet::new();
    let mut k = 0usize;
    for code in Code::values() {
        let name = format!("{code:?}");
        let Some(rest) = name.strip_prefix("VEX_V") else { continue };
        let mut toks = rest.split('_');
        let mn = format!("v{}", toks.next().unwrap()).to_ascii_lowercase();
        if AVX_SKIP.iter().any(|s| mn.starts_with(s)) {
            continue;
        }
        let toks: Vec<&str> = toks.collect();
        if toks.iter().any(|t| t.contains("vsib") || t.starts_with('k') || *t == "imm4") {
            continue;
        }
        // Each operand: the alternatives to try.
        let mut alts: Vec<Vec<String>> = Vec::new();
        let mut ok = true;
        for (i, t) in toks.iter().enumerate() {
            k += 1;
            let x = format!("xmm{}", 1 + (k + 3 * i) % 15);
            let y = format!("ymm{}", 1 + (k + 3 * i) % 15);
            let gpr32 = ["eax", "ecx", "edx", "ebx", "esi", "edi", "r8d", "r9d"][(k + i) % 8];
            let gpr64 = ["rax", "rcx", "rdx", "rbx", "rsi", "rdi", "r8", "r9"][(k + i) % 8];
            let m = format!("m+{}", 32 * ((k + i) % 4));
            let a: Vec<String> = match *t {
                "xmm" => vec![x],
                "ymm" => vec![y],
                "xmmm128" | "xmmm64" | "xmmm32" | "xmmm16" | "xmmm8" => vec![x, m],
                "ymmm256" => vec![y, m],
                "m128" | "m256" | "m64" | "m32" | "m16" | "m8" | "mem" => vec![m],
                "r32" => vec![gpr32.into()],
                "r64" => vec![gpr64.into()],
                "rm32" | "r32m8" | "r32m16" => vec![gpr32.into(), m],
                "rm64" | "r64m8" | "r64m16" | "r64m32" => vec![gpr64.into(), m],
                "imm8" => AVX_IMMS.iter().map(|v| v.to_string()).collect(),
                _ => {
                    ok = false;
                    vec![]
                }
            };
            alts.push(a);
        }
        if !ok {
            continue;
        }
        // One form per register/memory choice of the rm operand; immediates multiply.
        let mut specs = vec![format!("{name}")];
        for a in &alts {
            let mut next = Vec::new();
            for sp in &specs {
                for v in a {
                    next.push(format!("{sp} {v}"));
                }
            }
            specs = next;
        }
        let lifted = {
            let asm = Assembler::new_cached();
            let bytes = asm.assemble(&specs[0], 0x10_0000);
            let start = bytes.as_ptr() as u64;
            let sb = Amd64::lift(&Snippet { start, end: start + bytes.len() as u64 }, start, LiftLimits { max_insns: 1, chase_jumps: false });
            !(sb.jump == JumpKind::NoDecode && sb.stmts.is_empty())
        };
        if !lifted {
            unlifted.insert(mn);
            continue;
        }
        // FMA forms see finite operands: the NaN a lane returns when several are NaN is the
        // host's choice for its 231 encoding, not the guest form's.
        let fix = if mn.starts_with("vfm") || mn.starts_with("vfnm") { Fix::Finite } else { Fix::None };
        // MXCSR's sticky exception flags are the host's history: clear them in the image.
        let specs = specs.into_iter().map(|sp| match sp.rsplit_once(' ') {
            Some((_, m)) if mn == "vstmxcsr" => format!("{sp}; And_rm32_imm8 {m} -64"),
            _ => sp,
        });
        forms.extend(specs.map(|sp| fx(sp, fix)));
    }
    (forms, unlifted.into_iter().collect())
}

#[test]
fn avx_forms_match_the_cpu() {
    let (forms, unlifted) = avx_forms();
    let trials = 20;
    let (passed, failures) = check_forms(&forms, trials);
    eprintln!("AVX/AVX2/FMA forms: {passed} of {} pass ({trials} random inputs each)", forms.len());
    eprintln!("VEX vector mnemonics not lifted: {}", unlifted.join(" "));
    assert!(failures.is_empty(), "{} forms differ from the CPU:\n{}", forms.len() - passed, failures.join("\n"));
    assert!(forms.len() >= 1500, "only {} AVX forms", forms.len());
    // What glibc's AVX2 string functions and libm's FMA variants use must be lifted.
    for m in ["vpcmpeqb", "vpminub", "vpmovmskb", "vpbroadcastb", "vpshufb", "vinserti128", "vperm2i128", "vzeroupper", "vfmadd231sd", "vpminud"] {
        assert!(!unlifted.iter().any(|u| u == m), "{m} is not lifted");
    }
}

// ---------------------------------------------------------------- what cannot be compared natively

fn lift_and_run(code: &[u8], cpu: &mut CpuState) -> (u64, JumpKind) {
    let mut page = CodePage::new();
    let (start, end) = page.load(code);
    let sb = Amd64::lift(&Snippet { start, end }, start, LiftLimits { max_insns: 1, chase_jumps: true });
    let mut st = to_guest(cpu, start);
    let r = interp::run(&sb, &mut st, &mut HostMemory);
    from_guest(&st, cpu);
    (r.0 - start, r.1)
}

#[test]
fn cpuid_and_xgetbv_describe_the_synthetic_cpu() {
    let xcr0 = vg_amd64_guest::helpers::XCR0;
    let avx = vg_amd64_guest::cpuid::AVX;
    let id = vg_amd64_guest::cpuid::cpuid;
    let l1 = id(1, 0)[2];
    for bit in [0, 9, 13, 19, 20, 22, 23, 26, 27] {
        assert!(l1 & 1 << bit != 0, "leaf 1 ecx bit {bit} missing: {l1:#x}");
    }
    let l7 = id(7, 0)[1];
    assert_eq!(l7 & (1 << 3 | 1 << 8), 1 << 3 | 1 << 8, "bmi1, bmi2");
    assert_eq!(l1 & (1 << 12 | 1 << 28) != 0, avx, "fma/avx only with AVX");
    assert_eq!(l7 & 1 << 5 != 0, avx, "avx2 only with AVX");
    assert_eq!(id(0, 0)[0], 0xd);
    let d0 = id(0xd, 0);
    assert_eq!(d0[0] as u64, xcr0);
    assert_eq!(d0[1], if avx { 832 } else { 576 });
    assert_eq!(id(0xd, 1)[0] & 3, 3, "xsaveopt, xsavec");
    assert_eq!(id(0x8000_0001, 0)[3] & 1 << 27, 1 << 27, "rdtscp");
    // xgetbv: ecx = 0 gives XCR0; any other ecx faults at the instruction.
    let mut cpu = CpuState { rflags: 0x202, ..Default::default() };
    cpu.gpr[RAX] = u64::MAX;
    cpu.gpr[RDX] = u64::MAX;
    assert_eq!(lift_and_run(&[0x0f, 0x01, 0xd0], &mut cpu), (3, JumpKind::Boring));
    assert_eq!((cpu.gpr[RAX], cpu.gpr[RDX]), (xcr0, 0));
    cpu.gpr[RCX] = 1;
    assert_eq!(lift_and_run(&[0x0f, 0x01, 0xd0], &mut cpu).1, JumpKind::SigSegv);
}

#[test]
fn scalar_helpers_compute_known_values() {
    use vg_amd64_guest::helpers::*;
    // The standard CRC-32C check value of "123456789".
    let crc = b"123456789".iter().fold(0xffff_ffffu64, |c, &b| amd64_crc32c(c, b as u64, 1)) ^ 0xffff_ffff;
    assert_eq!(crc, 0xe306_9283);
    assert_eq!(amd64_pdep(0b1011, 0xf0f0), 0b1011_0000);
    assert_eq!(amd64_pdep(0b10_1101, 0x8181_0101), 0x8081_0001);
    assert_eq!(amd64_pext(0xf0f0_1234, 0xff00_0f0f), 0xf024);
    assert_eq!(amd64_pext(u64::MAX, 0), 0);
}
