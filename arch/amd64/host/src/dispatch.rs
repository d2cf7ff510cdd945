//! The dispatcher: the hand-written code between the scheduler (Rust) and translations.
//!
//! `vg_amd64_run(state, entry, fast_table, fast_mask)` saves the callee-saved registers, builds
//! a 16-aligned frame that translations keep as their `rsp`, sets `rbp = state` and jumps to
//! `entry`. Frame: `[rsp+0]` fast table, `[rsp+8]` fast mask, `[rsp+16]` event counter (i32,
//! decremented at every translation entry; loaded from and saved back to [`EVENT_COUNTER`], so
//! time slices span calls of `run`).
//!
//! Translations leave through three entry points:
//! - `xindir` (guest pc in `rax`): look it up in the fast table, entries `{guest, host}` of 16
//!   bytes at index `(pc ^ (pc >> 16)) & mask`; a hit jumps straight to the host code, a miss
//!   returns `FastMiss`;
//! - `chain_me` (called): returns `ChainMe` with the site = return address - 13;
//! - `xassisted` (kind code in `eax`): returns `Assisted(kind)`, or `EventCheck` for the event
//!   counter code (and refills the counter with [`EVENT_QUANTUM`]).

use core::sync::atomic::AtomicI32;

/// Block entries per time slice.
pub static EVENT_QUANTUM: AtomicI32 = AtomicI32::new(100_000);
/// Remaining block entries of the current slice (saved here between calls of `run`).
pub static EVENT_COUNTER: AtomicI32 = AtomicI32::new(100_000);

/// What the assembly returns in rax:rdx: a tag (0 fast miss, 1 chain-me, 2 assisted,
/// 3 event check) and its value.
#[repr(C)]
pub struct RawExit {
    pub tag: u64,
    pub val: u64,
}

core::arch::global_asm!(
    ".pushsection .text.vg_amd64_dispatch,\"ax\",@progbits",
    ".globl vg_amd64_run",
    "vg_amd64_run:",
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    // 8 (return address) + 48 (pushes) + 40 = 96: rsp is 16-aligned inside translations.
    "sub rsp, 40",
    "mov [rsp], rdx",
    "mov [rsp + 8], rcx",
    "mov eax, dword ptr [rip + {counter}]",
    "mov [rsp + 16], eax",
    "mov rbp, rdi",
    "jmp rsi",
    ".globl vg_amd64_xindir",
    "vg_amd64_xindir:",
    "mov rcx, rax",
    "shr rcx, 16",
    "xor rcx, rax",
    "and rcx, [rsp + 8]",
    "shl rcx, 4",
    "add rcx, [rsp]",
    "cmp [rcx], rax",
    "jne 3f",
    "jmp qword ptr [rcx + 8]",
    "3:",
    "xor eax, eax",
    "xor edx, edx",
    "jmp 9f",
    ".globl vg_amd64_chain_me",
    "vg_amd64_chain_me:",
    "pop rdx",
    "sub rdx, 13",
    "mov eax, 1",
    "jmp 9f",
    ".globl vg_amd64_xassisted",
    "vg_amd64_xassisted:",
    "cmp eax, 255",
    "je 4f",
    "mov edx, eax",
    "mov eax, 2",
    "jmp 9f",
    "4:",
    "mov ecx, dword ptr [rip + {quantum}]",
    "mov [rsp + 16], ecx",
    "mov eax, 3",
    "xor edx, edx",
    "9:",
    "mov ecx, [rsp + 16]",
    "mov dword ptr [rip + {counter}], ecx",
    "add rsp, 40",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    ".popsection",
    counter = sym EVENT_COUNTER,
    quantum = sym EVENT_QUANTUM,
);

unsafe extern "C" {
    pub fn vg_amd64_run(state: *mut u8, entry: *const u8, fast_table: *const u8, fast_mask: u64) -> RawExit;
    pub fn vg_amd64_xindir();
    pub fn vg_amd64_chain_me();
    pub fn vg_amd64_xassisted();
}

/// Index of `pc` in a fast table of `mask + 1` entries (the dispatcher's hash).
pub const fn fast_index(pc: u64, mask: u64) -> u64 {
    (pc ^ (pc >> 16)) & mask
}
