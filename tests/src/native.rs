//! Running instruction snippets natively against a register/memory state (the oracle of the
//! differential instruction tests), and the [`Executor`] interface every way of running a
//! snippet implements (native CPU here; the IR interpreter and the JIT in the tests).
//!
//! A [`CodePage`] is an RWX mapping holding a prologue (save the host's callee-saved registers
//! and stack pointer, load rflags, xmm0-15 and all sixteen GPRs from a [`CpuState`]), the
//! snippet, and an epilogue (store everything back, restore the host). Guest memory is the
//! host's: snippets address buffers of the test through registers.

/// The register state a snippet starts from and ends with.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CpuState {
    /// rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15 (encoding order).
    pub gpr: [u64; 16],
    /// Full rflags (only OSZAPC and DF are set by tests; bit 1 and IF are always set natively).
    pub rflags: u64,
    pub _pad: u64,
    pub xmm: [u128; 16],
    /// Upper halves of ymm0-15; loaded and stored only by pages made with
    /// [`CodePage::with_ymm`] (other pages leave them alone).
    pub ymm_hi: [u128; 16],
}

const OFF_RFLAGS: i64 = 128;
const OFF_XMM: i64 = 144;
const _: () = assert!(std::mem::offset_of!(CpuState, xmm) == OFF_XMM as usize);
const _: () = assert!(std::mem::offset_of!(CpuState, rflags) == OFF_RFLAGS as usize);
const OFF_YMM_HI: i64 = OFF_XMM + 256;
const _: () = assert!(std::mem::offset_of!(CpuState, ymm_hi) == OFF_YMM_HI as usize);

/// Something that can run the code in `[start, end)` (reaching `end` means done) on a state.
pub trait Executor {
    fn name(&self) -> String;
    /// Run from `start` until control reaches `end`; memory is the live host memory.
    fn run(&mut self, start: u64, end: u64, cpu: &mut CpuState) -> Result<(), String>;
}

const PAGE_LEN: usize = 0x4000;
/// Offsets in the page: prologue, data slots, snippet.
const SLOT_HOST_RSP: usize = 0xf00;
const SLOT_CTX: usize = 0xf08;
const SLOT_TMP: usize = 0xf10;
const SNIPPET: usize = 0x1000;

/// An RWX page holding prologue + snippet + epilogue.
pub struct CodePage {
    base: *mut u8,
    snippet_len: usize,
    /// Whether the trampoline also loads and stores the ymm upper halves (needs AVX2).
    ymm: bool,
}

fn mmap_rwx(len: usize) -> *mut u8 {
    let ret: i64;
    // SAFETY: a plain anonymous mmap(NULL, len, RWX, PRIVATE|ANONYMOUS, -1, 0) system call; it
    // touches no existing memory.
    unsafe {
        std::arch::asm!("syscall",
            inlateout("rax") 9i64 => ret,
            in("rdi") 0u64, in("rsi") len, in("rdx") 7u64, in("r10") 0x22u64, in("r8") -1i64, in("r9") 0u64,
            lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    assert!(ret > 0 && ret as u64 % 4096 == 0, "mmap of the code page failed: {ret}");
    ret as *mut u8
}

/// A tiny hand encoder for the trampoline's few instruction forms (no assembler dependency in
/// the library: iced's encoder is a dev-dependency of the tests only).
struct Asm {
    at: u64,
    b: Vec<u8>,
}

impl Asm {
    fn bytes(&mut self, v: &[u8]) {
        self.b.extend_from_slice(v);
    }
    fn here(&self) -> u64 {
        self.at + self.b.len() as u64
    }
    /// REX.W + `op` + ModRM with a RIP-relative operand at absolute `target`, register `r`.
    fn rip_op(&mut self, op: u8, r: usize, target: u64) {
        self.bytes(&[0x48 | if r >= 8 { 4 } else { 0 }, op, 0x05 | ((r as u8 & 7) << 3)]);
        let disp = target as i64 - (self.here() as i64 + 4);
        self.bytes(&(disp as i32).to_le_bytes());
    }
    /// `prefix* (REX) op* ModRM [rdi + disp32]` with register field `r`.
    fn rdi_op(&mut self, prefix: &[u8], rex_w: bool, op: &[u8], r: usize, disp: i32) {
        self.bytes(prefix);
        let rex = if rex_w { 0x48 } else { 0x40 } | if r >= 8 { 4 } else { 0 };
        if rex != 0x40 {
            self.bytes(&[rex]);
        }
        self.bytes(op);
        self.bytes(&[0x80 | ((r as u8 & 7) << 3) | 7]);
        self.bytes(&disp.to_le_bytes());
    }
    /// A VEX-encoded `prefix-bytes ModRM [rdi + disp32]` with register field `r` (the caller's
    /// VEX bytes already carry the inverted R bit for `r`).
    fn vex_rdi(&mut self, vex_and_op: &[u8], r: usize, disp: i32) {
        self.bytes(vex_and_op);
        self.bytes(&[0x80 | ((r as u8 & 7) << 3) | 7]);
        self.bytes(&disp.to_le_bytes());
    }
    fn push(&mut self, r: usize) {
        if r >= 8 {
            self.bytes(&[0x41]);
        }
        self.bytes(&[0x50 + (r as u8 & 7)]);
    }
    fn pop(&mut self, r: usize) {
        if r >= 8 {
            self.bytes(&[0x41]);
        }
        self.bytes(&[0x58 + (r as u8 & 7)]);
    }
}

const RAX: usize = 0;
const RSP: usize = 4;
const RDI: usize = 7;
/// rbx, rbp, r12..r15.
const CALLEE_SAVED: [usize; 6] = [3, 5, 12, 13, 14, 15];

impl CodePage {
    pub fn new() -> CodePage {
        Self::make(false)
    }

    /// A page whose trampoline also transfers the ymm upper halves (`CpuState::ymm_hi`); the
    /// host must have AVX2.
    pub fn with_ymm() -> CodePage {
        Self::make(true)
    }

    fn make(ymm: bool) -> CodePage {
        let base = mmap_rwx(PAGE_LEN);
        let page = CodePage { base, snippet_len: 0, ymm };
        page.write(0, &page.prologue());
        page
    }

    fn addr(&self, off: usize) -> u64 {
        self.base as u64 + off as u64
    }

    fn write(&self, off: usize, bytes: &[u8]) {
        assert!(off + bytes.len() <= PAGE_LEN, "snippet too long");
        // SAFETY: the range lies inside our own RWX mapping (checked above).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(off), bytes.len()) }
    }

    fn prologue(&self) -> Vec<u8> {
        let mut a = Asm { at: self.addr(0), b: Vec::new() };
        for r in CALLEE_SAVED {
            a.push(r);
        }
        a.rip_op(0x89, RSP, self.addr(SLOT_HOST_RSP));
        a.rip_op(0x89, RDI, self.addr(SLOT_CTX));
        if self.ymm {
            // vmovdqu ymm_i, [rdi + hi_i - 16]: the upper half lands right; the lower half is
            // replaced by the xmm load below (legacy SSE loads keep the upper half).
            for i in 0..16 {
                a.vex_rdi(&[0xc5, if i >= 8 { 0x7e } else { 0xfe }, 0x6f], i, (OFF_YMM_HI + 16 * i as i64 - 16) as i32);
            }
        }
        for i in 0..16 {
            a.rdi_op(&[0xf3], false, &[0x0f, 0x6f], i, (OFF_XMM + 16 * i as i64) as i32);
        }
        // push qword [rdi + rflags]; popfq
        a.rdi_op(&[], false, &[0xff], 6, OFF_RFLAGS as i32);
        a.bytes(&[0x9d]);
        for r in (0..16).filter(|&r| r != RDI) {
            a.rdi_op(&[], true, &[0x8b], r, 8 * r as i32);
        }
        a.rdi_op(&[], true, &[0x8b], RDI, 8 * RDI as i32);
        a.bytes(&[0xe9]);
        let disp = self.addr(SNIPPET) as i64 - (a.here() as i64 + 4);
        a.bytes(&(disp as i32).to_le_bytes());
        a.b
    }

    fn epilogue(&self, at: u64) -> Vec<u8> {
        let mut a = Asm { at, b: Vec::new() };
        a.rip_op(0x89, RDI, self.addr(SLOT_TMP));
        a.rip_op(0x8b, RDI, self.addr(SLOT_CTX));
        for r in (0..16).filter(|&r| r != RDI) {
            a.rdi_op(&[], true, &[0x89], r, 8 * r as i32);
        }
        a.rip_op(0x8b, RAX, self.addr(SLOT_TMP));
        a.rdi_op(&[], true, &[0x89], RAX, 8 * RDI as i32);
        a.rip_op(0x8b, RSP, self.addr(SLOT_HOST_RSP));
        // pushfq; pop qword [rdi + rflags]; cld
        a.bytes(&[0x9c]);
        a.rdi_op(&[], false, &[0x8f], 0, OFF_RFLAGS as i32);
        a.bytes(&[0xfc]);
        for i in 0..16 {
            a.rdi_op(&[0xf3], false, &[0x0f, 0x7f], i, (OFF_XMM + 16 * i as i64) as i32);
        }
        if self.ymm {
            for i in 0..16 {
                // vextracti128 [rdi + hi_i], ymm_i, 1
                a.vex_rdi(&[0xc4, if i >= 8 { 0x63 } else { 0xe3 }, 0x7d, 0x39], i, (OFF_YMM_HI + 16 * i as i64) as i32);
                a.bytes(&[1]);
            }
            a.bytes(&[0xc5, 0xf8, 0x77]); // vzeroupper: leave the host's SSE code unpenalised
        }
        for r in CALLEE_SAVED.iter().rev() {
            a.pop(*r);
        }
        a.bytes(&[0xc3]);
        a.b
    }

/// Where snippets are placed (assemble them for this address).
    pub fn snippet_addr(&self) -> u64 {
        self.addr(SNIPPET)
    }

    /// Install `code` (assembled for `snippet_addr()`); returns `(start, end)`.
    pub fn load(&mut self, code: &[u8]) -> (u64, u64) {
        self.write(SNIPPET, code);
        let end = self.addr(SNIPPET + code.len());
        self.write(SNIPPET + code.len(), &self.epilogue(end));
        self.snippet_len = code.len();
        (self.addr(SNIPPET), end)
    }

    /// Run the loaded snippet natively on `cpu`.
    ///
    /// # Safety
    /// The snippet must be well-behaved: it must end by falling off its end (or jumping there),
    /// keep rsp/r15-based accesses inside memory the caller owns, and not fault.
    pub unsafe fn run_native(&self, cpu: &mut CpuState) {
        // SAFETY: the page starts with the prologue, an `extern "C" fn(*mut CpuState)` that
        // preserves the host's callee-saved registers, stack pointer and direction flag.
        let f: extern "C" fn(*mut CpuState) = unsafe { std::mem::transmute(self.base) };
        f(cpu as *mut CpuState)
    }
}

impl Default for CodePage {
    fn default() -> Self {
        CodePage::new()
    }
}

/// The real CPU as an [`Executor`]; the page must hold the snippet `[start, end)`.
pub struct Native<'a>(pub &'a CodePage);

impl Executor for Native<'_> {
    fn name(&self) -> String {
        "native".into()
    }
    fn run(&mut self, start: u64, end: u64, cpu: &mut CpuState) -> Result<(), String> {
        assert_eq!((start, end - start), (self.0.snippet_addr(), self.0.snippet_len as u64));
        // SAFETY: the test forms are written to stay inside the test's buffers (see
        // `CodePage::run_native`).
        unsafe { self.0.run_native(cpu) };
        Ok(())
    }
}
