//! Replacements for the C library's string and memory functions (Valgrind's
//! `mc_replace_strmem`): glibc's vectorised versions read whole aligned words past a string's
//! end and branch on partially undefined vectors, which memcheck would report although the
//! program is correct. The replacements are simple byte (or word) loops written in machine
//! code; they run as guest code under the instrumentation like any other, so definedness and
//! addressability are checked exactly where the function really depends on a byte. Those that
//! copy also check that source and destination do not overlap and report it through a client
//! request ("Source and destination overlap in memcpy(...)").
//!
//! The code is assembled into the tool (below) and copied into a client page at start-up.
//! Which guest functions are replaced is decided per symbol, from each code object's symbol
//! table as it is mapped: in the C library (soname `libc.so*`) and in statically linked
//! executables. A plain function's entry jumps to its replacement; glibc's string functions are
//! mostly IFUNCs, whose symbol is a resolver run by the dynamic linker (or by a static
//! program's start-up code) to pick an implementation: such a resolver is sent to a stub that
//! returns the replacement instead. The symbol's type tells the two apart, and one name may be
//! both in one library (`memcpy@GLIBC_2.2.5` is a function, `memcpy@@GLIBC_2.14` an IFUNC), so
//! the decision is made per address here rather than by name in the core's redirector. The
//! symbol's version picks the replacement where Valgrind has one per version (the old memcpy is
//! a memmove), and an IFUNC whose implementations are another function's runs that one's
//! replacement, as it ends up doing in Valgrind (see [`IFUNC_SHARED`]).
//!
//! Uses the tool-facing core (`aspace`, `debuginfo`) and the IR; owns the map from replaced
//! addresses to replacements.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use goblin::elf::Elf;
use goblin::elf::sym::{STT_FUNC, STT_GNU_IFUNC};
use vg_core::debuginfo::elf::ElfInfo;
use vg_core::tool::vg_ir::{Atom, JumpKind, Stmt, Superblock};

use crate::malloc::STUB_BASE;

/// Client request sent by a replacement that found an overlap: (code, replacement entry,
/// destination, source, length or 0, -).
pub const OVERLAP_REQ: u64 = STUB_BASE + 0x100;
/// Stack the overlap report reserves for its request block (the caller's return address is
/// this far above the stack pointer while the request runs).
pub const OVERLAP_FRAME: u64 = 0x38;

core::arch::global_asm!(
    r#"
    .pushsection .text.vg_mc_strmem, "ax", @progbits

    // Report an overlap if [dst, dst+dlen) and [src, src+slen) intersect (both non-empty).
    // Keeps every register but r11.
    .macro VG_OVERLAP dst, dlen, src, slen, rlen, fn
        test \dlen, \dlen
        jz 9f
        test \slen, \slen
        jz 9f
        lea r11, [\src + \slen]
        cmp \dst, r11
        jae 9f
        lea r11, [\dst + \dlen]
        cmp \src, r11
        jae 9f
        sub rsp, 0x38
        mov [rsp + 0x30], rax
        mov [rsp + 0x28], rdx
        mov qword ptr [rsp], {code}
        mov [rsp + 0x10], \dst
        mov [rsp + 0x18], \src
        mov qword ptr [rsp + 0x20], \rlen
        lea r11, [rip + vg_mc_r_\fn]
        mov [rsp + 0x08], r11
        mov rax, rsp
        xor edx, edx
        rol rdi, 3
        rol rdi, 13
        rol rdi, 61
        rol rdi, 51
        xchg rbx, rbx
        mov rdx, [rsp + 0x28]
        mov rax, [rsp + 0x30]
        add rsp, 0x38
    9:
    .endm

    // Copies rdx bytes from rsi to rdi in whichever direction is safe, so overlapping copies
    // still come out right. Valgrind's access pattern, which decides the size and address of
    // an invalid access reported: with source and destination equally aligned, single bytes
    // up to a word boundary of the source, then words; then, if both are even, 2-byte units;
    // then single bytes. Keeps rax; uses rcx, r8-r10.
    .macro VG_MOVE
        mov rcx, rdx
        test rcx, rcx
        jz 49f
        mov r8, rsi
        mov r9, rdi
        cmp rdi, rsi
        jb 20f
        lea r10, [rsi + rcx]
        cmp rdi, r10
        jae 20f
        cmp rdi, rsi
        je 49f
        jmp 30f
        // Upwards.
    20: mov r10, r8
        xor r10, r9
        test r10, 7
        jnz 24f
    21: test r8, 7
        jz 22f
        test rcx, rcx
        jz 49f
        movzx r10d, byte ptr [r8]
        mov [r9], r10b
        inc r8
        inc r9
        dec rcx
        jmp 21b
    22: cmp rcx, 8
        jb 23f
        mov r10, [r8]
        mov [r9], r10
        add r8, 8
        add r9, 8
        sub rcx, 8
        jmp 22b
    23: test rcx, rcx
        jz 49f
    24: mov r10, r8
        or r10, r9
        test r10, 1
        jnz 26f
    25: cmp rcx, 2
        jb 26f
        movzx r10d, word ptr [r8]
        mov [r9], r10w
        add r8, 2
        add r9, 2
        sub rcx, 2
        jmp 25b
    26: test rcx, rcx
        jz 49f
        movzx r10d, byte ptr [r8]
        mov [r9], r10b
        inc r8
        inc r9
        dec rcx
        jmp 26b
        // Downwards, from the ends.
    30: add r8, rcx
        add r9, rcx
        mov r10, r8
        xor r10, r9
        test r10, 7
        jnz 34f
    31: test r8, 7
        jz 32f
        test rcx, rcx
        jz 49f
        dec r8
        dec r9
        movzx r10d, byte ptr [r8]
        mov [r9], r10b
        dec rcx
        jmp 31b
    32: cmp rcx, 8
        jb 33f
        sub r8, 8
        sub r9, 8
        mov r10, [r8]
        mov [r9], r10
        sub rcx, 8
        jmp 32b
    33: test rcx, rcx
        jz 49f
    34: mov r10, r8
        or r10, r9
        test r10, 1
        jnz 36f
    35: cmp rcx, 2
        jb 36f
        sub r8, 2
        sub r9, 2
        movzx r10d, word ptr [r8]
        mov [r9], r10w
        sub rcx, 2
        jmp 35b
    36: test rcx, rcx
        jz 49f
        dec r8
        dec r9
        movzx r10d, byte ptr [r8]
        mov [r9], r10b
        dec rcx
        jmp 36b
    49:
    .endm

    // For an IFUNC symbol: a resolver that picks the replacement.
    .macro VG_RESOLVER fn
    .globl vg_mc_i_\fn
    vg_mc_i_\fn:
        lea rax, [rip + vg_mc_r_\fn]
        ret
    .endm

    .macro VG_ENTRY fn
    .globl vg_mc_r_\fn
    .p2align 4
    vg_mc_r_\fn:
    .endm

    .globl vg_mc_strmem_start
    .p2align 4
vg_mc_strmem_start:

    VG_ENTRY strlen
        xor eax, eax
    2:  cmp byte ptr [rdi + rax], 0
        je 3f
        inc rax
        jmp 2b
    3:  ret

    VG_ENTRY strnlen
        xor eax, eax
    2:  cmp rax, rsi
        je 3f
        cmp byte ptr [rdi + rax], 0
        je 3f
        inc rax
        jmp 2b
    3:  ret

    VG_ENTRY wcslen
        xor eax, eax
    2:  cmp dword ptr [rdi + rax*4], 0
        je 3f
        inc rax
        jmp 2b
    3:  ret

    VG_ENTRY wcsnlen
        xor eax, eax
    2:  cmp rax, rsi
        je 3f
        cmp dword ptr [rdi + rax*4], 0
        je 3f
        inc rax
        jmp 2b
    3:  ret

    VG_ENTRY strcpy
        mov rax, rdi
        xor ecx, ecx
    2:  movzx edx, byte ptr [rsi + rcx]
        mov [rdi + rcx], dl
        inc rcx
        test dl, dl
        jnz 2b
        VG_OVERLAP rdi, rcx, rsi, rcx, 0, strcpy
        ret

    VG_ENTRY stpcpy
        xor ecx, ecx
    2:  movzx edx, byte ptr [rsi + rcx]
        mov [rdi + rcx], dl
        inc rcx
        test dl, dl
        jnz 2b
        lea rax, [rdi + rcx - 1]
        VG_OVERLAP rdi, rcx, rsi, rcx, 0, stpcpy
        ret

    VG_ENTRY strncpy
        mov rax, rdi
        xor ecx, ecx
    2:  cmp rcx, rdx
        je 4f
        movzx r8d, byte ptr [rsi + rcx]
        mov [rdi + rcx], r8b
        inc rcx
        test r8b, r8b
        jnz 2b
        mov r9, rcx
    3:  cmp rcx, rdx
        je 5f
        mov byte ptr [rdi + rcx], 0
        inc rcx
        jmp 3b
    4:  mov r9, rdx
    5:  VG_OVERLAP rdi, rdx, rsi, r9, rdx, strncpy
        ret

    VG_ENTRY stpncpy
        xor ecx, ecx
    2:  cmp rcx, rdx
        je 4f
        movzx r8d, byte ptr [rsi + rcx]
        mov [rdi + rcx], r8b
        inc rcx
        test r8b, r8b
        jnz 2b
        mov r9, rcx
        lea rax, [rdi + rcx - 1]
    3:  cmp rcx, rdx
        je 5f
        mov byte ptr [rdi + rcx], 0
        inc rcx
        jmp 3b
    4:  mov r9, rdx
        lea rax, [rdi + rdx]
    5:  VG_OVERLAP rdi, rdx, rsi, r9, rdx, stpncpy
        ret

    VG_ENTRY strcat
        mov rax, rdi
        mov r8, rdi
    2:  cmp byte ptr [r8], 0
        je 3f
        inc r8
        jmp 2b
    3:  xor ecx, ecx
    4:  movzx edx, byte ptr [rsi + rcx]
        mov [r8 + rcx], dl
        inc rcx
        test dl, dl
        jnz 4b
        mov r9, r8
        sub r9, rdi
        add r9, rcx
        VG_OVERLAP rdi, r9, rsi, rcx, 0, strcat
        ret

    VG_ENTRY strncat
        mov rax, rdi
        mov r8, rdi
    2:  cmp byte ptr [r8], 0
        je 3f
        inc r8
        jmp 2b
    3:  xor ecx, ecx
    4:  cmp rcx, rdx
        je 5f
        movzx r9d, byte ptr [rsi + rcx]
        test r9b, r9b
        jz 5f
        mov [r8 + rcx], r9b
        inc rcx
        jmp 4b
    5:  mov byte ptr [r8 + rcx], 0
        lea r10, [rcx + 1]
        mov r9, r8
        sub r9, rdi
        add r9, r10
        VG_OVERLAP rdi, r9, rsi, r10, rdx, strncat
        ret

    VG_ENTRY strcmp
    2:  movzx eax, byte ptr [rdi]
        movzx ecx, byte ptr [rsi]
        cmp eax, ecx
        jne 3f
        test eax, eax
        jz 3f
        inc rdi
        inc rsi
        jmp 2b
    3:  sub eax, ecx
        ret

    VG_ENTRY strncmp
        xor ecx, ecx
    2:  cmp rcx, rdx
        je 4f
        movzx eax, byte ptr [rdi + rcx]
        movzx r8d, byte ptr [rsi + rcx]
        cmp eax, r8d
        jne 3f
        test eax, eax
        jz 4f
        inc rcx
        jmp 2b
    3:  sub eax, r8d
        ret
    4:  xor eax, eax
        ret

    VG_ENTRY strcasecmp
    2:  movzx eax, byte ptr [rdi]
        movzx ecx, byte ptr [rsi]
        lea r8d, [rax - 65]
        cmp r8d, 25
        ja 3f
        add eax, 32
    3:  lea r8d, [rcx - 65]
        cmp r8d, 25
        ja 4f
        add ecx, 32
    4:  cmp eax, ecx
        jne 5f
        test eax, eax
        jz 5f
        inc rdi
        inc rsi
        jmp 2b
    5:  sub eax, ecx
        ret

    VG_ENTRY strncasecmp
        xor r9d, r9d
    2:  cmp r9, rdx
        je 6f
        movzx eax, byte ptr [rdi + r9]
        movzx ecx, byte ptr [rsi + r9]
        lea r8d, [rax - 65]
        cmp r8d, 25
        ja 3f
        add eax, 32
    3:  lea r8d, [rcx - 65]
        cmp r8d, 25
        ja 4f
        add ecx, 32
    4:  cmp eax, ecx
        jne 5f
        test eax, eax
        jz 6f
        inc r9
        jmp 2b
    5:  sub eax, ecx
        ret
    6:  xor eax, eax
        ret

    VG_ENTRY strchr
    2:  movzx eax, byte ptr [rdi]
        cmp al, sil
        je 3f
        test al, al
        jz 4f
        inc rdi
        jmp 2b
    3:  mov rax, rdi
        ret
    4:  xor eax, eax
        ret

    VG_ENTRY strchrnul
    2:  movzx eax, byte ptr [rdi]
        cmp al, sil
        je 3f
        test al, al
        jz 3f
        inc rdi
        jmp 2b
    3:  mov rax, rdi
        ret

    VG_ENTRY strrchr
        xor eax, eax
    2:  movzx ecx, byte ptr [rdi]
        cmp cl, sil
        jne 3f
        mov rax, rdi
    3:  test cl, cl
        jz 4f
        inc rdi
        jmp 2b
    4:  ret

    VG_ENTRY memchr
    2:  test rdx, rdx
        jz 3f
        cmp byte ptr [rdi], sil
        je 4f
        inc rdi
        dec rdx
        jmp 2b
    3:  xor eax, eax
        ret
    4:  mov rax, rdi
        ret

    VG_ENTRY rawmemchr
    2:  cmp byte ptr [rdi], sil
        je 3f
        inc rdi
        jmp 2b
    3:  mov rax, rdi
        ret

    VG_ENTRY memrchr
    2:  test rdx, rdx
        jz 3f
        dec rdx
        cmp byte ptr [rdi + rdx], sil
        jne 2b
        lea rax, [rdi + rdx]
        ret
    3:  xor eax, eax
        ret

    VG_ENTRY memcpy
        VG_OVERLAP rdi, rdx, rsi, rdx, rdx, memcpy
        mov rax, rdi
        VG_MOVE
        ret

    // The old memcpy (version GLIBC_2.2.5) is a memmove, as programs linked against it
    // relied on: no overlap check, as in Valgrind.
    VG_ENTRY memcpy_glibc_2_2_5
        mov rax, rdi
        VG_MOVE
        ret

    VG_ENTRY mempcpy
        VG_OVERLAP rdi, rdx, rsi, rdx, rdx, mempcpy
        lea rax, [rdi + rdx]
        VG_MOVE
        ret

    VG_ENTRY memmove
        mov rax, rdi
        VG_MOVE
        ret

    VG_ENTRY memset
        mov rax, rdi
        movzx r8d, sil
        mov r9, 0x0101010101010101
        imul r8, r9
        xor ecx, ecx
        mov r9, rdx
        and r9, -8
    2:  cmp rcx, r9
        je 3f
        mov [rdi + rcx], r8
        add rcx, 8
        jmp 2b
    3:  cmp rcx, rdx
        je 4f
        mov [rdi + rcx], r8b
        inc rcx
        jmp 3b
    4:  ret

    VG_ENTRY memcmp
        xor ecx, ecx
    2:  cmp rcx, rdx
        je 3f
        movzx eax, byte ptr [rdi + rcx]
        movzx r8d, byte ptr [rsi + rcx]
        inc rcx
        sub eax, r8d
        jz 2b
        ret
    3:  xor eax, eax
        ret

    VG_ENTRY strspn
        xor eax, eax
    2:  movzx ecx, byte ptr [rdi + rax]
        test ecx, ecx
        jz 5f
        mov r8, rsi
    3:  movzx edx, byte ptr [r8]
        test edx, edx
        jz 5f
        cmp ecx, edx
        je 4f
        inc r8
        jmp 3b
    4:  inc rax
        jmp 2b
    5:  ret

    VG_ENTRY strcspn
        xor eax, eax
    2:  movzx ecx, byte ptr [rdi + rax]
        test ecx, ecx
        jz 5f
        mov r8, rsi
    3:  movzx edx, byte ptr [r8]
        test edx, edx
        jz 4f
        cmp ecx, edx
        je 5f
        inc r8
        jmp 3b
    4:  inc rax
        jmp 2b
    5:  ret

    VG_ENTRY strpbrk
    2:  movzx ecx, byte ptr [rdi]
        test ecx, ecx
        jz 5f
        mov r8, rsi
    3:  movzx edx, byte ptr [r8]
        test edx, edx
        jz 4f
        cmp ecx, edx
        je 6f
        inc r8
        jmp 3b
    4:  inc rdi
        jmp 2b
    5:  xor eax, eax
        ret
    6:  mov rax, rdi
        ret

    VG_ENTRY strstr
        cmp byte ptr [rsi], 0
        je 5f
    2:  xor ecx, ecx
    3:  movzx edx, byte ptr [rsi + rcx]
        test edx, edx
        jz 5f
        movzx r8d, byte ptr [rdi + rcx]
        cmp edx, r8d
        jne 4f
        inc rcx
        jmp 3b
    4:  test r8d, r8d
        jz 6f
        inc rdi
        jmp 2b
    5:  mov rax, rdi
        ret
    6:  xor eax, eax
        ret

    VG_ENTRY wcscpy
        mov rax, rdi
        xor ecx, ecx
    2:  mov edx, dword ptr [rsi + rcx*4]
        mov dword ptr [rdi + rcx*4], edx
        inc rcx
        test edx, edx
        jnz 2b
        ret

    VG_ENTRY wcscmp
    2:  mov eax, dword ptr [rdi]
        mov ecx, dword ptr [rsi]
        cmp eax, ecx
        jne 3f
        test eax, eax
        jz 4f
        add rdi, 4
        add rsi, 4
        jmp 2b
    3:  mov eax, -1
        jl 5f
        mov eax, 1
    5:  ret
    4:  xor eax, eax
        ret

    VG_ENTRY wcschr
    2:  mov eax, dword ptr [rdi]
        cmp eax, esi
        je 3f
        test eax, eax
        jz 4f
        add rdi, 4
        jmp 2b
    3:  mov rax, rdi
        ret
    4:  xor eax, eax
        ret

    VG_ENTRY wcsrchr
        xor eax, eax
    2:  mov ecx, dword ptr [rdi]
        cmp ecx, esi
        jne 3f
        mov rax, rdi
    3:  test ecx, ecx
        jz 4f
        add rdi, 4
        jmp 2b
    4:  ret

    VG_RESOLVER strlen
    VG_RESOLVER strnlen
    VG_RESOLVER wcslen
    VG_RESOLVER wcsnlen
    VG_RESOLVER strcpy
    VG_RESOLVER stpcpy
    VG_RESOLVER strncpy
    VG_RESOLVER stpncpy
    VG_RESOLVER strcat
    VG_RESOLVER strncat
    VG_RESOLVER strcmp
    VG_RESOLVER strncmp
    VG_RESOLVER strcasecmp
    VG_RESOLVER strncasecmp
    VG_RESOLVER strchr
    VG_RESOLVER strchrnul
    VG_RESOLVER strrchr
    VG_RESOLVER memchr
    VG_RESOLVER rawmemchr
    VG_RESOLVER memrchr
    VG_RESOLVER memcpy
    VG_RESOLVER memcpy_glibc_2_2_5
    VG_RESOLVER mempcpy
    VG_RESOLVER memmove
    VG_RESOLVER memset
    VG_RESOLVER memcmp
    VG_RESOLVER strspn
    VG_RESOLVER strcspn
    VG_RESOLVER strpbrk
    VG_RESOLVER strstr
    VG_RESOLVER wcscpy
    VG_RESOLVER wcscmp
    VG_RESOLVER wcschr
    VG_RESOLVER wcsrchr

    .globl vg_mc_strmem_end
vg_mc_strmem_end:
    .popsection
"#,
    code = const OVERLAP_REQ,
);

/// One replacement: how traces name it, its nominal line in `vg_replace_strmem.c` (traces
/// show one, as Valgrind's do), the symbols it replaces, and where its code and its resolver
/// stub are in the assembled block.
pub struct Replacement {
    pub name: &'static str,
    pub line: u32,
    pub symbols: &'static [&'static str],
    entry: unsafe extern "C" fn(),
    resolver: unsafe extern "C" fn(),
}

macro_rules! replacements {
    ($($f:ident $(as $shown:literal)? $line:literal [$($sym:literal),+]),+ $(,)?) => {
        mod entry {
            unsafe extern "C" {
                $(#[link_name = concat!("vg_mc_r_", stringify!($f))] pub fn $f();)+
            }
        }
        mod resolver {
            unsafe extern "C" {
                $(#[link_name = concat!("vg_mc_i_", stringify!($f))] pub fn $f();)+
            }
        }
        /// Every replacement.
        pub static REPLACEMENTS: &[Replacement] = &[$(Replacement {
            name: first_of(&[$($shown,)? stringify!($f)]),
            line: $line,
            symbols: &[$($sym),+],
            entry: entry::$f,
            resolver: resolver::$f,
        }),+];
    };
}

/// A replacement's name: the one given, else its code's.
const fn first_of(names: &[&'static str]) -> &'static str {
    names[0]
}

/// IFUNCs whose every implementation is also another replaced function's: glibc's amd64
/// memcpy variants are entry points of its memmove variants. Valgrind redirects the
/// implementation an IFUNC picks, and there the other function's replacement outranks this
/// one's: calls through the IFUNC run that replacement (so memcpy reports no overlap). Only
/// in the shared C library: Valgrind replaces nothing in a static program, where this tool
/// keeps memcpy's overlap check.
const IFUNC_SHARED: &[(&str, &str)] = &[("memcpy", "memmove")];

/// The dynamic linker's functions that are replaced (as Valgrind does).
const LDSO_REPLACED: &[&str] = &["strlen", "index", "strcmp", "mempcpy"];

replacements! {
    strlen 494 ["strlen"],
    strnlen 461 ["strnlen", "__strnlen"],
    wcslen 2013 ["wcslen", "__wcslen"],
    wcsnlen 2035 ["wcsnlen", "__wcsnlen"],
    strcpy 553 ["strcpy"],
    stpcpy 1253 ["stpcpy", "__stpcpy"],
    strncpy 599 ["strncpy"],
    stpncpy 1307 ["stpncpy", "__stpncpy"],
    strcat 330 ["strcat"],
    strncat 376 ["strncat"],
    strcmp 924 ["strcmp"],
    strncmp 709 ["strncmp"],
    strcasecmp 759 ["strcasecmp", "__strcasecmp", "strcasecmp_l", "__strcasecmp_l"],
    strncasecmp 807 ["strncasecmp", "__strncasecmp", "strncasecmp_l", "__strncasecmp_l"],
    strchr 262 ["strchr", "index"],
    strchrnul 1518 ["strchrnul", "__strchrnul"],
    strrchr 209 ["strrchr", "rindex"],
    memchr 970 ["memchr", "__memchr"],
    rawmemchr 1548 ["rawmemchr", "__rawmemchr"],
    memrchr 1009 ["memrchr", "__memrchr"],
    memcpy 1120 ["memcpy@@GLIBC_2.14", "memcpy"],
    memcpy_glibc_2_2_5 as "memcpy@GLIBC_2.2.5" 1118 ["memcpy@GLIBC_2.2.5"],
    mempcpy 1668 ["mempcpy", "__mempcpy"],
    memmove 1382 ["memmove"],
    memset 1358 ["memset"],
    memcmp 1199 ["memcmp", "bcmp", "__memcmpeq"],
    strspn 1922 ["strspn"],
    strcspn 1871 ["strcspn"],
    strpbrk 1822 ["strpbrk"],
    strstr 1772 ["strstr"],
    wcscpy 2134 ["wcscpy"],
    wcscmp 2067 ["wcscmp"],
    wcschr 2157 ["wcschr", "__wcschr"],
    wcsrchr 2179 ["wcsrchr"],
}

unsafe extern "C" {
    fn vg_mc_strmem_start();
    fn vg_mc_strmem_end();
}

fn code_start() -> u64 {
    vg_mc_strmem_start as *const () as u64
}

/// The assembled replacement code, as it is copied into the client.
pub fn code() -> &'static [u8] {
    let len = vg_mc_strmem_end as *const () as u64 - code_start();
    // SAFETY: both symbols delimit one block of this executable's text, which is readable.
    unsafe { core::slice::from_raw_parts(code_start() as *const u8, len as usize) }
}

impl Replacement {
    fn entry_off(&self) -> u64 {
        self.entry as *const () as u64 - code_start()
    }
    fn resolver_off(&self) -> u64 {
        self.resolver as *const () as u64 - code_start()
    }
}

/// The replacements' code in the client and the guest addresses sent there.
#[derive(Default)]
pub struct StrMem {
    /// Client address of the copied code (0 until installed).
    pub base: u64,
    /// Replaced guest address -> where its calls go.
    redirs: BTreeMap<u64, u64>,
}

impl StrMem {
    /// The copied code was put at `base`.
    pub fn new(base: u64) -> StrMem {
        StrMem { base, redirs: BTreeMap::new() }
    }

    /// The replacement whose code holds client address `pc`.
    pub fn replacement_at(&self, pc: u64) -> Option<&'static Replacement> {
        if self.base == 0 || pc < self.base || pc >= self.base + code().len() as u64 {
            return None;
        }
        let off = pc - self.base;
        REPLACEMENTS.iter().filter(|r| r.entry_off() <= off).max_by_key(|r| r.entry_off())
    }

    /// Records the replaced functions of the object in `bytes` (an ELF file whose `offset` is
    /// mapped at `addr`): of the C library, or of a statically linked executable.
    pub fn scan_object(&mut self, path: &str, bytes: &[u8], addr: u64, offset: u64) {
        let Some(info) = ElfInfo::parse(bytes) else { return };
        let is_libc = info.soname.as_deref().is_some_and(|s| s.starts_with("libc.so"));
        let is_ldso = info.soname.as_deref().is_some_and(|s| s.starts_with("ld-linux"));
        // Any other shared library is of no interest: skip parsing (and allocating for) its
        // symbol tables.
        if (info.soname.is_some() && !(is_libc || is_ldso)) || self.base == 0 {
            return;
        }
        let Ok(elf) = Elf::parse(bytes) else { return };
        let is_static_exe = info.soname.is_none() && elf.interpreter.is_none();
        if !(is_libc || is_static_exe || is_ldso) {
            return;
        }
        let Some(bias) = info.bias_for_mapping(offset, addr) else { return };
        if is_ldso {
            // The dynamic linker's own string functions are local symbols, named only in its
            // separate debug file; Valgrind replaces these few there.
            let mut rd = vg_core::stacks::SysFileReader;
            let debuglink = vg_core::debuginfo::debuglink::DEBUG_ROOT;
            let Some(dbg) = vg_core::debuginfo::debuglink::find_debug_file(&mut rd, path, &info, debuglink) else { return };
            let Ok(delf) = Elf::parse(&dbg.bytes) else { return };
            self.scan_symbols(&delf.syms, &delf.strtab, bias, LDSO_REPLACED, &[], false);
            return;
        }
        self.scan_symbols(&elf.syms, &elf.strtab, bias, &[], &[], is_libc);
        let versions = symbol_versions(&elf);
        self.scan_symbols(&elf.dynsyms, &elf.dynstrtab, bias, &[], &versions, is_libc);
    }

    /// Redirect the replaced functions among `syms`: those named in `only` if it is not
    /// empty; `versions` gives the version suffix of each symbol (by index) if known
    /// (`memcpy@GLIBC_2.2.5` and `memcpy@@GLIBC_2.14` are different functions); `libc`: they
    /// are the shared C library's (see [`IFUNC_SHARED`]).
    fn scan_symbols(
        &mut self,
        syms: &goblin::elf::Symtab<'_>,
        strs: &goblin::strtab::Strtab<'_>,
        bias: u64,
        only: &[&str],
        versions: &[Option<String>],
        libc: bool,
    ) {
        for (i, sym) in syms.iter().enumerate() {
            let ty = sym.st_type();
            if (ty != STT_FUNC && ty != STT_GNU_IFUNC) || sym.st_shndx == 0 || sym.st_value == 0 {
                continue;
            }
            let Some(name) = strs.get_at(sym.st_name) else { continue };
            if !only.is_empty() && !only.contains(&name) {
                continue;
            }
            let versioned = versions.get(i).and_then(Option::as_ref).map(|v| alloc::format!("{name}{v}"));
            let shared_ifunc = libc && ty == STT_GNU_IFUNC;
            let Some(r) = replacement_for(name, versioned.as_deref(), shared_ifunc) else { continue };
            let to = self.base + if ty == STT_GNU_IFUNC { r.resolver_off() } else { r.entry_off() };
            self.redirs.insert(sym.st_value.wrapping_add(bias), to);
        }
    }

    /// `[addr, addr+len)` was unmapped: its functions are no longer replaced.
    pub fn forget(&mut self, addr: u64, len: u64) {
        let gone: Vec<u64> = self.redirs.range(addr..addr.saturating_add(len)).map(|(a, _)| *a).collect();
        for a in gone {
            self.redirs.remove(&a);
        }
    }

    /// Sends a superblock that starts at a replaced function to its replacement; one that runs
    /// into a replaced function further on stops just before it (so that the next block,
    /// starting there, is sent on).
    pub fn redirect(&self, sb: &mut Superblock) {
        if self.redirs.is_empty() {
            return;
        }
        let mut first = true;
        for i in 0..sb.stmts.len() {
            let Stmt::IMark { addr, .. } = sb.stmts[i] else { continue };
            if let Some(&to) = self.redirs.get(&addr) {
                if first {
                    sb.stmts.truncate(i + 1);
                    sb.next = Atom::u64(to);
                } else {
                    sb.stmts.truncate(i);
                    sb.next = Atom::u64(addr);
                }
                sb.jump = JumpKind::Boring;
                return;
            }
            first = false;
        }
    }
}

/// The replacement for symbol `name` (`versioned`: with its version suffix, if it has one;
/// `shared_ifunc`: it is an IFUNC of the shared C library, where Valgrind replaces): one naming
/// the versioned symbol, else one naming the plain one.
fn replacement_for(name: &str, versioned: Option<&str>, shared_ifunc: bool) -> Option<&'static Replacement> {
    let by_name = |n: &str| REPLACEMENTS.iter().find(|r| r.symbols.contains(&n));
    let r = versioned.and_then(by_name).or_else(|| by_name(name))?;
    match IFUNC_SHARED.iter().find(|(f, _)| shared_ifunc && *f == r.name) {
        Some((_, other)) => REPLACEMENTS.iter().find(|o| o.name == *other),
        None => Some(r),
    }
}

/// The version suffix of each dynamic symbol (by index): `@@VERSION` for a symbol's default
/// version, `@VERSION` for an older one, none for unversioned symbols.
fn symbol_versions(elf: &Elf) -> Vec<Option<String>> {
    let (Some(versym), Some(verdef)) = (&elf.versym, &elf.verdef) else { return Vec::new() };
    let mut names = BTreeMap::new();
    for vd in verdef.iter() {
        if let Some(aux) = vd.iter().next()
            && let Some(n) = elf.dynstrtab.get_at(aux.vda_name)
        {
            names.insert(vd.vd_ndx, n);
        }
    }
    versym
        .iter()
        .map(|v| {
            // Indices 0 and 1 are local and global (unversioned); others name a definition.
            let name = names.get(&v.version()).filter(|_| v.version() > 1)?;
            Some(alloc::format!("{}{name}", if v.is_hidden() { "@" } else { "@@" }))
        })
        .collect()
}

/// The name and line of the frame at `pc` if it is in a replacement.
pub fn frame_name(sm: &StrMem, pc: u64) -> Option<(String, u32)> {
    sm.replacement_at(pc).map(|r| (String::from(r.name), r.line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_replacement_lies_in_the_block_in_order() {
        let len = code().len() as u64;
        assert!(len > 0);
        let mut last = 0;
        for r in REPLACEMENTS {
            assert!(r.entry_off() >= last, "{} out of order", r.name);
            assert!(r.resolver_off() < len && r.entry_off() < len, "{}", r.name);
            last = r.entry_off();
        }
        let sm = StrMem::new(0x10000);
        let memcpy = REPLACEMENTS.iter().find(|r| r.name == "memcpy").unwrap();
        assert_eq!(sm.replacement_at(0x10000 + memcpy.entry_off() + 3).unwrap().name, "memcpy");
        assert!(sm.replacement_at(0x10000 + len).is_none());
    }

    #[test]
    fn memcpy_is_chosen_by_version_and_kind() {
        let name = |n, v, shared_ifunc| replacement_for(n, v, shared_ifunc).map(|r| r.name);
        // glibc's memcpy IFUNC picks one of its memmove implementations.
        assert_eq!(name("memcpy", Some("memcpy@@GLIBC_2.14"), true), Some("memmove"));
        // The old version is a plain function, copied as a memmove under its own name.
        assert_eq!(name("memcpy", Some("memcpy@GLIBC_2.2.5"), false), Some("memcpy@GLIBC_2.2.5"));
        // A static program's memcpy (a function or an IFUNC Valgrind leaves alone) checks for
        // overlap.
        assert_eq!(name("memcpy", None, false), Some("memcpy"));
        assert_eq!(name("mempcpy", None, true), Some("mempcpy"));
        assert_eq!(name("memfrob", None, false), None);
    }

    #[test]
    fn resolver_stub_returns_its_replacement() {
        for r in REPLACEMENTS {
            let b = &code()[r.resolver_off() as usize..];
            // lea rax, [rip + disp32]; ret
            assert_eq!(&b[..3], &[0x48, 0x8d, 0x05], "{}", r.name);
            assert_eq!(b[7], 0xc3);
            let disp = i32::from_le_bytes(b[3..7].try_into().unwrap()) as i64;
            assert_eq!((r.resolver_off() as i64 + 7 + disp) as u64, r.entry_off(), "{}", r.name);
        }
    }
}
