//! Differential instruction tests: every lifted instruction form runs natively on the real CPU,
//! through the lifter + IR interpreter, and through the whole JIT (lift, optimise, compile, run
//! by the dispatcher) — each both with whole superblocks and with one instruction per block, so
//! that flags go through the thunk helpers instead of the lift-time specialisation — on many
//! random register, flag, xmm and memory states; all GPRs, the defined arithmetic flags, DF,
//! xmm0-15 and the memory buffer must agree.
//!
//! Forms are written as iced `Code` names with operands (`Add_rm32_r32 esi r12d`), assembled with
//! iced's block encoder for the snippet address. Operands: register names, `m` / `m+N` for
//! `[r15 + N]` (r15 always points into the data buffer, rsp into its stack part), integers for
//! immediates, `@k` for a branch to the k-th instruction, and `db XX YY` for raw bytes.
//! The executors and the comparison are `vg_tests::diff`'s.

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
    /// cl = random count below the given limit.
    Cl(u64),
    /// Division of width (bytes), signed?, divisor in rcx and at [r15]: no #DE.
    Div(u32, bool),
    /// rsi/rdi into the buffer, rcx small; `true`: the destination mostly equals the source.
    Str(bool),
    /// rax = a valid rflags image (for popf).
    FlagsInRax,
    /// rbp points into the stack area (for leave).
    RbpStack,
    /// Bit offset in rcx small and signed (bt* with a memory operand).
    BitOff,
    /// Half of the time [r15] equals rax (cmpxchg succeeds).
    CasEq(u32),
    /// xmm2's low 64 bits hold a small shift count.
    XmmCount,
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

const CCS: [&str; 16] = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];

fn forms() -> Vec<Form> {
    let mut v = Vec::new();
    // (width in bits, register pairs, accumulator, register for mul/div, imm samples)
    let widths: [(u32, &[(&str, &str)], &str); 4] = [
        (8, &[("sil", "r10l"), ("cl", "dh")], "al"),
        (16, &[("dx", "r11w")], "ax"),
        (32, &[("esi", "r12d")], "eax"),
        (64, &[("rbx", "r13")], "rax"),
    ];
    let imm_for = |w: u32, k: usize| -> i64 {
        let s: [i64; 5] = match w {
            8 => [1, -1, 0x7f, -0x80, 0x35],
            16 => [1, -1, 0x7fff, -0x8000, 0x1234],
            _ => [1, -1, 0x7fff_ffff, -0x8000_0000, 0x1234_5678],
        };
        s[k % 5]
    };
    // ALU: reg,reg / mem,reg / reg,mem / reg,imm / mem,imm / imm8 forms / accumulator forms.
    for (k, op) in ["Add", "Or", "Adc", "Sbb", "And", "Sub", "Xor", "Cmp"].iter().enumerate() {
        for &(w, pairs, acc) in &widths {
            for &(a, b) in pairs {
                v.push(f(format!("{op}_rm{w}_r{w} {a} {b}")));
            }
            let (a, b) = pairs[0];
            v.push(f(format!("{op}_rm{w}_r{w} m+8 {b}")));
            v.push(f(format!("{op}_r{w}_rm{w} {a} m-16")));
            let iw = w.min(32);
            v.push(f(format!("{op}_rm{w}_imm{iw} {a} {}", imm_for(w, k))));
            v.push(f(format!("{op}_rm{w}_imm{iw} m+4 {}", imm_for(w, k + 1))));
            if w > 8 {
                v.push(f(format!("{op}_rm{w}_imm8 {a} {}", imm_for(8, k + 2))));
            }
            let accname = match w {
                8 => "AL",
                16 => "AX",
                32 => "EAX",
                _ => "RAX",
            };
            v.push(f(format!("{op}_{accname}_imm{iw} {acc} {}", imm_for(w, k + 3))));
        }
    }
    for &(w, pairs, _) in &widths {
        let (a, b) = pairs[0];
        let iw = w.min(32);
        v.push(f(format!("Test_rm{w}_r{w} {a} {b}")));
        v.push(f(format!("Test_rm{w}_r{w} m {b}")));
        v.push(f(format!("Test_rm{w}_imm{iw} {a} {}", imm_for(w, w as usize))));
    }
    // Unary.
    for op in ["Not", "Neg", "Inc", "Dec"] {
        for &(w, pairs, _) in &widths {
            v.push(f(format!("{op}_rm{w} {}", pairs[0].0)));
            v.push(f(format!("{op}_rm{w} m+24")));
        }
    }
    // Shifts and rotates: by 1, by cl (reg and mem), by an immediate.
    for (k, op) in ["Rol", "Ror", "Rcl", "Rcr", "Shl", "Shr", "Sar"].iter().enumerate() {
        for &(w, pairs, _) in &widths {
            let r = pairs[0].1;
            v.push(f(format!("{op}_rm{w}_1 {r}")));
            v.push(fx(format!("{op}_rm{w}_CL {r} cl"), Fix::Cl(w.min(32) as u64)));
            v.push(fx(format!("{op}_rm{w}_CL m+32 cl"), Fix::Cl(w as u64)));
            v.push(f(format!("{op}_rm{w}_imm8 {r} {}", 1 + (k as u32 * 3 + w) % (w - 1))));
        }
    }
    // Double shifts.
    for op in ["Shld", "Shrd"] {
        for (w, a, b) in [(16, "dx", "r9w"), (32, "esi", "r12d"), (64, "rbx", "r13")] {
            v.push(f(format!("{op}_rm{w}_r{w}_imm8 {a} {b} {}", w / 2 - 3)));
            v.push(fx(format!("{op}_rm{w}_r{w}_CL {a} {b} cl"), Fix::Cl(w as u64)));
            v.push(f(format!("{op}_rm{w}_r{w}_imm8 m {b} 1")));
        }
    }
    // Multiply and divide.
    for (w, r) in [(8, "cl"), (16, "cx"), (32, "ecx"), (64, "rcx")] {
        v.push(f(format!("Mul_rm{w} {r}")));
        v.push(f(format!("Mul_rm{w} m")));
        v.push(f(format!("Imul_rm{w} {r}")));
        v.push(f(format!("Imul_rm{w} m")));
        v.push(fx(format!("Div_rm{w} {r}"), Fix::Div(w / 8, false)));
        v.push(fx(format!("Div_rm{w} m"), Fix::Div(w / 8, false)));
        v.push(fx(format!("Idiv_rm{w} {r}"), Fix::Div(w / 8, true)));
        v.push(fx(format!("Idiv_rm{w} m"), Fix::Div(w / 8, true)));
    }
    for (w, a, b) in [(16, "dx", "r9w"), (32, "esi", "r12d"), (64, "rbx", "r13")] {
        v.push(f(format!("Imul_r{w}_rm{w} {a} {b}")));
        v.push(f(format!("Imul_r{w}_rm{w} {a} m")));
        v.push(f(format!("Imul_r{w}_rm{w}_imm8 {a} {b} -7")));
        v.push(f(format!("Imul_r{w}_rm{w}_imm{} {a} m 1000", w.min(32))));
    }
    // Moves and extensions.
    for &(w, pairs, _) in &widths {
        let (a, b) = pairs[0];
        v.push(f(format!("Mov_rm{w}_r{w} {a} {b}")));
        v.push(f(format!("Mov_rm{w}_r{w} m+40 {b}")));
        v.push(f(format!("Mov_r{w}_rm{w} {a} m+40")));
        v.push(f(format!("Mov_r{w}_imm{w} {a} {}", imm_for(w, 3))));
    }
    v.push(f("Mov_rm64_imm32 m -5"));
    v.push(f("Mov_rm8_r8 ah bl"));
    v.push(f("Mov_rm8_r8 m+1 bpl"));
    for s in [
        "Movzx_r32_rm8 ecx dh",
        "Movzx_r64_rm16 rdx m",
        "Movzx_r16_rm8 ax m",
        "Movzx_r32_rm16 r9d r10w",
        "Movsx_r64_rm8 rcx sil",
        "Movsx_r16_rm8 dx m",
        "Movsx_r32_rm16 r8d m",
        "Movsx_r64_rm16 rax bx",
        "Movsxd_r64_rm32 rdi m",
        "Movsxd_r64_rm32 r11 eax",
        "Lea_r64_m rax m+100",
        "Lea_r32_m ecx m-8",
        "Lea_r16_m dx m+3",
        "Cbw",
        "Cwde",
        "Cdqe",
        "Cwd",
        "Cdq",
        "Cqo",
        "Bswap_r32 ecx",
        "Bswap_r64 r9",
        "Xchg_rm64_r64 rdx rbp",
        "Xchg_rm32_r32 m esi",
        "Xchg_rm8_r8 al ah",
        "Xchg_rm16_r16 m r8w",
        "Xadd_rm64_r64 rcx rdx",
        "Xadd_rm32_r32 m ebx",
        "Xadd_rm8_r8 m dl",
        "Nopd",
        "db 0F 1F 44 00 00",
        "db F3 0F 1E FA",
        "Clc",
        "Stc",
        "Cmc",
        "Lahf",
        "Sahf",
        "Std",
        "Cld",
        "Pushfq; Pop_r64 rax",
        "Push_r64 rbx; Pop_r64 rdx",
        "Push_rm64 m; Pop_rm64 m+8",
        "Pushq_imm32 -100; Pop_r64 rcx",
        "Pushq_imm8 5; Pop_r64 r9",
        "Call_rel32_64 @2; Jmp_rel32_64 @3; Retnq; Nopd",
        "Sub_rm64_imm8 rsp 16; Mov_rm64_r64 m rsp; Add_rm64_imm8 rsp 16",
        "Mfence",
        "Lfence",
        "Sfence",
        "Prefetcht0_m8 m",
        "Movnti_m64_r64 m rcx",
    ] {
        v.push(f(s));
    }
    v.push(fx("Push_r64 rax; Popfq", Fix::FlagsInRax));
    v.push(fx("Leaveq", Fix::RbpStack));
    for (w, a, b) in [(16, "dx", "r9w"), (32, "esi", "r12d"), (64, "rbx", "r13")] {
        for op in ["Bt", "Bts", "Btr", "Btc"] {
            v.push(f(format!("{op}_rm{w}_r{w} {a} {b}")));
            v.push(f(format!("{op}_rm{w}_imm8 {a} {}", w - 3)));
            if w == 64 {
                v.push(fx(format!("{op}_rm{w}_r{w} m rcx"), Fix::BitOff));
                v.push(f(format!("{op}_rm{w}_imm8 m 35")));
            }
        }
        v.push(f(format!("Bsf_r{w}_rm{w} {a} {b}")));
        v.push(f(format!("Bsr_r{w}_rm{w} {a} {b}")));
        v.push(f(format!("Bsf_r{w}_rm{w} {a} m")));
    }
    for (w, r) in [(8, "dl"), (16, "dx"), (32, "edx"), (64, "rdx")] {
        v.push(fx(format!("Cmpxchg_rm{w}_r{w} m {r}"), Fix::CasEq(w / 8)));
    }
    v.push(fx("Cmpxchg_rm32_r32 ecx edx", Fix::None));
    // Conditions: straight from the initial flags (helper path), after known operations
    // (specialised path), as setcc, cmovcc and jcc.
    for (i, cc) in CCS.iter().enumerate() {
        v.push(f(format!("Set{cc}_rm8 dl")));
        v.push(f(format!("Cmp_rm64_r64 rax rcx; Set{cc}_rm8 dl")));
        v.push(f(format!("Cmp_rm8_r8 al cl; Set{cc}_rm8 m")));
        v.push(f(format!("Sub_rm32_r32 eax ecx; Cmov{cc}_r64_rm64 rdx rbx")));
        v.push(f(format!("Test_rm16_r16 ax cx; Cmov{cc}_r32_rm32 edx m")));
        v.push(f(format!("Add_rm64_r64 rax rcx; J{cc}_rel8_64 @3; Mov_r32_imm32 edx {i}; Nopd")));
        v.push(f(format!("Dec_rm32 esi; J{cc}_rel32_64 @3; Mov_r32_imm32 edx {i}; Nopd")));
        v.push(f(format!("And_rm8_imm8 bl 0x5a; Set{cc}_rm8 bh")));
    }
    // String operations.
    for (bytes, cmp) in [
        ("A4", false),
        ("48 A5", false),
        ("F3 A4", false),
        ("F3 48 A5", false),
        ("F3 A5", false),
        ("66 F3 A5", false),
        ("AA", false),
        ("F3 AA", false),
        ("F3 48 AB", false),
        ("AC", false),
        ("48 AD", false),
        ("A6", true),
        ("F3 A6", true),
        ("F3 48 A7", true),
        ("F2 AE", true),
        ("AE", true),
        ("F3 AE", true),
        ("FD; db F3 A4; db FC", false),
        ("FD; db 48 AB; db FC", false),
    ] {
        v.push(fx(format!("db {bytes}"), Fix::Str(cmp)));
    }
    sse_forms(&mut v);
    v
}

fn sse_forms(v: &mut Vec<Form>) {
    let vec2 = [
        "Pxor", "Por", "Pand", "Pandn", "Xorps", "Xorpd", "Andps", "Andpd", "Orps", "Orpd", "Andnps", "Andnpd", "Paddb",
        "Paddw", "Paddd", "Paddq", "Psubb", "Psubw", "Psubd", "Psubq", "Paddsb", "Paddusb", "Paddsw", "Paddusw",
        "Psubsb", "Psubusb", "Psubsw", "Psubusw", "Pmullw", "Pmulhw", "Pmulhuw", "Pmuludq", "Pmaddwd", "Pavgb",
        "Pavgw", "Psadbw", "Pminub", "Pmaxub", "Pminsw", "Pmaxsw", "Pcmpeqb", "Pcmpeqw", "Pcmpeqd", "Pcmpgtb",
        "Pcmpgtw", "Pcmpgtd", "Punpcklbw", "Punpcklwd", "Punpckldq", "Punpcklqdq", "Punpckhbw", "Punpckhwd",
        "Punpckhdq", "Punpckhqdq", "Unpcklps", "Unpckhps", "Unpcklpd", "Unpckhpd", "Packsswb", "Packuswb",
        "Packssdw", "Addps", "Subps", "Mulps", "Divps", "Minps", "Maxps", "Addpd", "Subpd", "Mulpd", "Divpd", "Minpd",
        "Maxpd",
    ];
    for (k, op) in vec2.iter().enumerate() {
        v.push(f(format!("{op}_xmm_xmmm128 xmm1 xmm2")));
        if k % 3 == 0 {
            v.push(f(format!("{op}_xmm_xmmm128 xmm9 m")));
        }
    }
    for s in [
        "Sqrtps_xmm_xmmm128 xmm3 xmm4",
        "Sqrtpd_xmm_xmmm128 xmm3 xmm12",
        "Cvtdq2ps_xmm_xmmm128 xmm1 xmm2",
        "Cvttps2dq_xmm_xmmm128 xmm1 xmm2",
        "Cvtdq2pd_xmm_xmmm64 xmm1 xmm2",
        "Cvtdq2pd_xmm_xmmm64 xmm1 m",
        "Cvttpd2dq_xmm_xmmm128 xmm1 xmm2",
        "Cvtps2pd_xmm_xmmm64 xmm1 xmm2",
        "Cvtpd2ps_xmm_xmmm128 xmm1 xmm2",
        "Sqrtsd_xmm_xmmm64 xmm5 xmm6",
        "Sqrtss_xmm_xmmm32 xmm5 m",
        "Cvtsi2sd_xmm_rm32 xmm1 ecx",
        "Cvtsi2sd_xmm_rm64 xmm10 rcx",
        "Cvtsi2ss_xmm_rm32 xmm1 m",
        "Cvtsi2ss_xmm_rm64 xmm1 rdx",
        "Cvttsd2si_r32_xmmm64 eax xmm3",
        "Cvttsd2si_r64_xmmm64 rax xmm3",
        "Cvtsd2si_r64_xmmm64 r9 xmm3",
        "Cvtsd2si_r32_xmmm64 ecx m",
        "Cvttss2si_r32_xmmm32 eax xmm3",
        "Cvtss2si_r64_xmmm32 rax xmm3",
        "Cvtss2sd_xmm_xmmm32 xmm1 xmm2",
        "Cvtsd2ss_xmm_xmmm64 xmm1 xmm2",
        "Ucomisd_xmm_xmmm64 xmm1 xmm2; Setb_rm8 al; Sete_rm8 cl; Setp_rm8 dl",
        "Comisd_xmm_xmmm64 xmm1 m",
        "Ucomiss_xmm_xmmm32 xmm1 xmm2",
        "Comiss_xmm_xmmm32 xmm7 xmm8; Seta_rm8 bl",
        "Movdqa_xmm_xmmm128 xmm1 xmm2",
        "Movdqa_xmm_xmmm128 xmm11 m",
        "Movdqa_xmmm128_xmm m+16 xmm3",
        "Movdqu_xmm_xmmm128 xmm1 m+3",
        "Movdqu_xmmm128_xmm m+5 xmm14",
        "Movaps_xmm_xmmm128 xmm1 xmm2",
        "Movups_xmmm128_xmm m+1 xmm2",
        "Movapd_xmm_xmmm128 xmm1 m",
        "Movupd_xmm_xmmm128 xmm1 m+7",
        "Movntdq_m128_xmm m xmm4",
        "Movd_xmm_rm32 xmm1 ecx",
        "Movd_rm32_xmm edx xmm1",
        "Movd_xmm_rm32 xmm1 m",
        "Movq_xmm_rm64 xmm1 rcx",
        "Movq_rm64_xmm m xmm9",
        "Movq_xmm_xmmm64 xmm1 xmm2",
        "Movq_xmmm64_xmm m xmm2",
        "Movss_xmm_xmmm32 xmm1 xmm2",
        "Movss_xmm_xmmm32 xmm1 m",
        "Movss_xmmm32_xmm m xmm2",
        "Movsd_xmm_xmmm64 xmm1 xmm2",
        "Movsd_xmm_xmmm64 xmm1 m",
        "Movsd_xmmm64_xmm m xmm2",
        "Movhps_xmm_m64 xmm1 m",
        "Movhps_m64_xmm m xmm1",
        "Movlps_xmm_m64 xmm1 m",
        "Movhpd_xmm_m64 xmm1 m",
        "Movlpd_m64_xmm m xmm1",
        "Movhlps_xmm_xmm xmm1 xmm2",
        "Movlhps_xmm_xmm xmm1 xmm2",
        "Pshufd_xmm_xmmm128_imm8 xmm1 xmm2 0x1b",
        "Pshufd_xmm_xmmm128_imm8 xmm1 m 0xe4",
        "Pshuflw_xmm_xmmm128_imm8 xmm1 xmm2 0x93",
        "Pshufhw_xmm_xmmm128_imm8 xmm1 xmm2 0x39",
        "Psllw_xmm_imm8 xmm1 3",
        "Pslld_xmm_imm8 xmm1 31",
        "Psllq_xmm_imm8 xmm1 40",
        "Psrlw_xmm_imm8 xmm1 17",
        "Psrld_xmm_imm8 xmm1 5",
        "Psrlq_xmm_imm8 xmm1 63",
        "Psraw_xmm_imm8 xmm1 9",
        "Psrad_xmm_imm8 xmm1 40",
        "Pslldq_xmm_imm8 xmm1 5",
        "Psrldq_xmm_imm8 xmm1 11",
        "Pmovmskb_r32_xmm eax xmm1",
        "Movmskps_r32_xmm ecx xmm1",
        "Movmskpd_r32_xmm edx xmm1",
        "Pextrw_r32_xmm_imm8 eax xmm1 5",
        "Shufps_xmm_xmmm128_imm8 xmm1 xmm2 0x4e",
        "Shufps_xmm_xmmm128_imm8 xmm1 m 0xb1",
        "Shufpd_xmm_xmmm128_imm8 xmm1 xmm2 1",
        "Shufpd_xmm_xmmm128_imm8 xmm1 xmm2 2",
        // The sticky exception flags (bits 0-5) are not modelled.
        "Stmxcsr_m32 m; And_rm32_imm8 m -64",
        "Stmxcsr_m32 m; Ldmxcsr_m32 m; Stmxcsr_m32 m+4; And_rm32_imm8 m -64; And_rm32_imm8 m+4 -64",
    ] {
        v.push(f(s));
    }
    for op in ["Psllw", "Pslld", "Psllq", "Psrlw", "Psrld", "Psrlq", "Psraw", "Psrad"] {
        v.push(fx(format!("{op}_xmm_xmmm128 xmm1 xmm2"), Fix::XmmCount));
    }
    for p in 0..8 {
        v.push(f(format!("Cmpps_xmm_xmmm128_imm8 xmm1 xmm2 {p}")));
        v.push(f(format!("Cmppd_xmm_xmmm128_imm8 xmm1 xmm2 {p}")));
    }
    v.push(f("Cmpss_xmm_xmmm32_imm8 xmm1 xmm2 1"));
    v.push(f("Cmpsd_xmm_xmmm64_imm8 xmm1 m 2"));
    for s in ["Add", "Sub", "Mul", "Div", "Min", "Max"] {
        v.push(f(format!("{s}sd_xmm_xmmm64 xmm1 xmm2")));
        v.push(f(format!("{s}sd_xmm_xmmm64 xmm13 m")));
        v.push(f(format!("{s}ss_xmm_xmmm32 xmm1 xmm2")));
        v.push(f(format!("{s}ss_xmm_xmmm32 xmm1 m")));
    }
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
    for x in c.xmm.iter_mut() {
        *x = rng.lane() as u128 | (rng.lane() as u128) << 64;
    }
    for b in buf.bytes().iter_mut() {
        *b = rng.next() as u8;
    }
    match fix {
        Fix::None => {}
        Fix::Cl(n) => c.gpr[RCX] = (c.gpr[RCX] & !0xff) | rng.below(n),
        Fix::Div(bytes, signed) => {
            let w = bytes * 8;
            let m = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
            let mut d = rng.int() & m;
            if d == 0 {
                d = 3;
            }
            let sd = ((d << (64 - w)) as i64) >> (64 - w);
            c.gpr[RCX] = (c.gpr[RCX] & !m) | d;
            buf.bytes()[DATA_PTR..DATA_PTR + bytes as usize].copy_from_slice(&d.to_le_bytes()[..bytes as usize]);
            let mut lo = rng.int() & m;
            let hi = if signed {
                if sd == -1 && lo == 1u64 << (w - 1) {
                    lo = 5;
                }
                if (lo >> (w - 1)) & 1 != 0 { m } else { 0 }
            } else {
                rng.below(d)
            };
            if bytes == 1 {
                c.gpr[RAX] = (c.gpr[RAX] & !0xffff) | hi << 8 | lo;
            } else {
                c.gpr[RAX] = (c.gpr[RAX] & !m) | lo;
                c.gpr[RDX] = (c.gpr[RDX] & !m) | hi;
            }
        }
        Fix::Str(cmp) => {
            c.gpr[RSI] = base + 1024 + rng.below(64);
            c.gpr[RDI] = base + 2048 + rng.below(64);
            c.gpr[RCX] = rng.below(24);
            if cmp && rng.below(2) == 0 {
                // Make a long common prefix so repe cmps/scas run for a while.
                let (s, d) = ((c.gpr[RSI] - base) as usize, (c.gpr[RDI] - base) as usize);
                let n = rng.below(200) as usize;
                let b = buf.bytes();
                b.copy_within(s..s + n, d);
                let fill = b[d];
                b[d..d + n / 2].fill(fill);
                c.gpr[RAX] = (c.gpr[RAX] & !0xff) | fill as u64;
            }
        }
        Fix::FlagsInRax => c.gpr[RAX] = (rng.next() & (OSZACP | DF)) | 0x202,
        Fix::RbpStack => c.gpr[RBP] = base + STACK_TOP as u64 + 8 * rng.below(32),
        Fix::BitOff => c.gpr[RCX] = (rng.below(1024) as i64 - 256) as u64,
        Fix::CasEq(bytes) => {
            if rng.below(2) == 0 {
                let n = bytes as usize;
                let a = c.gpr[RAX].to_le_bytes();
                buf.bytes()[DATA_PTR..DATA_PTR + n].copy_from_slice(&a[..n]);
            }
        }
        Fix::XmmCount => {
            let n = match rng.below(4) {
                0 => rng.next(),
                _ => rng.below(70),
            };
            c.xmm[2] = (c.xmm[2] & !(u64::MAX as u128)) | n as u128;
        }
    }
    c
}

#[test]
fn instruction_forms_match_the_cpu() {
    let asm = Assembler::new_cached();
    let mut h = Harness::new(false, true);
    let forms = forms();
    let mut failures: Vec<String> = Vec::new();
    let mut passed = 0;
    for (fi, form) in forms.iter().enumerate() {
        let code = asm.assemble(&form.spec, h.page.snippet_addr());
        let (start, end) = h.page.load(&code);
        let mask = (OSZACP & !undefined_flags(&code, start)) | DF;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (fi as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1));
        let fails = h.check((start, end), mask, &mut rng, TRIALS, form.fix, random_state);
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
    eprintln!("instruction forms: {passed} of {} pass ({TRIALS} random inputs each)", forms.len());
    assert!(failures.is_empty(), "{} forms differ from the CPU:\n{}", forms.len() - passed, failures.join("\n"));
    assert!(forms.len() >= 200);
}

// ---------------------------------------------------------------- lifter behaviour beyond the CPU

fn lift_bytes(code: &[u8], max_insns: usize) -> (vg_ir::Superblock, u64, CodePage) {
    let mut page = CodePage::new();
    let (start, end) = page.load(code);
    let sb = Amd64::lift(&Snippet { start, end }, start, LiftLimits { max_insns, chase_jumps: true });
    (sb, start, page)
}

#[test]
fn divide_by_zero_exits_with_sigfpe_at_the_instruction() {
    // div rcx
    let (sb, start, _page) = lift_bytes(&[0x48, 0xf7, 0xf1], 10);
    let mut cpu = CpuState { rflags: 0x202, ..Default::default() };
    cpu.gpr[RAX] = 10;
    let mut st = to_guest(&cpu, start);
    assert_eq!(interp::run(&sb, &mut st, &mut HostMemory), (start, JumpKind::SigFpeIntDiv));
    // Overflowing quotient: rdx:rax = 2^64, divisor 1.
    cpu.gpr[RDX] = 1;
    cpu.gpr[RCX] = 1;
    let mut st = to_guest(&cpu, start);
    assert_eq!(interp::run(&sb, &mut st, &mut HostMemory), (start, JumpKind::SigFpeIntDiv));
}

#[test]
fn undecodable_instruction_ends_the_block_before_it() {
    // An EVEX instruction first: the block is only the NoDecode exit.
    let evex = [0x62, 0xf1, 0xfe, 0x08, 0x6f, 0x40, 0x01];
    let (sb, start, _p) = lift_bytes(&evex, 10);
    assert_eq!((sb.next, sb.jump, sb.stmts.len()), (vg_ir::Atom::u64(start), JumpKind::NoDecode, 0));
    // After a nop: the nop is lifted, then NoDecode at the bad instruction.
    let mut code = vec![0x90];
    code.extend_from_slice(&evex);
    let (sb, start, _p) = lift_bytes(&code, 10);
    assert_eq!((sb.next, sb.jump, sb.guest_insns()), (vg_ir::Atom::u64(start + 1), JumpKind::NoDecode, 1));
    let text = vg_amd64_guest::describe_undecodable(&evex, start + 1);
    assert!(text.starts_with("vex amd64->IR: unhandled instruction bytes: 0x62 0xF1 0xFE 0x8 0x6F 0x40 0x1\n"));
}

#[test]
fn compare_and_branch_needs_no_flags_helper() {
    // cmp rax, rcx; jl +0; cmp eax, 5; setbe dl; test rbx, rbx; jne +0
    let code = [0x48, 0x39, 0xc8, 0x7c, 0x00, 0x83, 0xf8, 0x05, 0x0f, 0x96, 0xc2, 0x48, 0x85, 0xdb, 0x75, 0x00];
    let (sb, _, _p) = lift_bytes(&code, 10);
    let calls = sb
        .stmts
        .iter()
        .filter(|s| matches!(s, vg_ir::Stmt::WrTmp { e: vg_ir::Expr::CCall { .. }, .. }))
        .count();
    assert_eq!(calls, 0, "{:#?}", sb.stmts);
    assert_eq!(sb.stmts.iter().filter(|s| matches!(s, vg_ir::Stmt::Exit { .. })).count(), 2);
}

#[test]
fn cpuid_advertises_only_lifted_features() {
    let (sb, start, _p) = lift_bytes(&[0x0f, 0xa2], 1);
    let run = |leaf: u64, sub: u64| {
        let mut cpu = CpuState { rflags: 0x202, ..Default::default() };
        cpu.gpr[RAX] = leaf;
        cpu.gpr[RCX] = sub;
        let mut st = to_guest(&cpu, start);
        interp::run(&sb, &mut st, &mut HostMemory);
        from_guest(&st, &mut cpu);
        [cpu.gpr[RAX], cpu.gpr[RBX], cpu.gpr[RCX], cpu.gpr[RDX]]
    };
    let v = run(0, 0);
    let vendor: Vec<u8> = [v[1], v[3], v[2]].iter().flat_map(|r| (*r as u32).to_le_bytes()).collect();
    assert_eq!(&vendor, b"GenuineIntel");
    let l1 = run(1, 0);
    // Lifted and advertised: SSE3, SSSE3, CX16, SSE4.1, SSE4.2, MOVBE, POPCNT, XSAVE, OSXSAVE.
    let lifted = 1 << 0 | 1 << 9 | 1 << 13 | 1 << 19 | 1 << 20 | 1 << 22 | 1 << 23 | 1 << 26 | 1 << 27;
    assert_eq!(l1[2] & lifted, lifted, "ecx {:#x}", l1[2]);
    // FMA and AVX only once the VEX forms are lifted.
    let avx = 1 << 12 | 1 << 28;
    assert_eq!(l1[2] & avx, if vg_amd64_guest::cpuid::AVX { avx } else { 0 }, "ecx {:#x}", l1[2]);
    assert_eq!(l1[3] & (1 << 26 | 1 << 25 | 1 << 15), 1 << 26 | 1 << 25 | 1 << 15);
    // Leaf 7: BMI1 and BMI2 lifted; AVX2 with AVX; nothing else (no AVX-512, no ERMS).
    let l7 = run(7, 0);
    let avx2 = if vg_amd64_guest::cpuid::AVX { 1 << 5 } else { 0 };
    assert_eq!(l7[1], 1 << 3 | 1 << 8 | avx2, "leaf 7 ebx {:#x}", l7[1]);
    assert_eq!([l7[2], l7[3]], [0, 0]);
    assert_eq!(run(0x8000_0001, 0)[3] & (1 << 29), 1 << 29);
}
