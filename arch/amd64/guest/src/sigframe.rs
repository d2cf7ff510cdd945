//! The amd64 Linux signal frame (the kernel's `struct rt_sigframe`): building it on the guest
//! stack to enter a handler, and reading it back for rt_sigreturn. The layout is the kernel's
//! ABI, because handlers read it (`ucontext_t` registers, `siginfo_t`) and glibc's restorer
//! relies on it:
//!
//! ```text
//! frame+0    pretcode (the restorer: the handler's return address)
//! frame+8    ucontext: uc_flags, uc_link, uc_stack{sp, flags, size}, uc_mcontext (gregs[23],
//!            fpstate pointer, 8 reserved words), uc_sigmask
//! frame+312  siginfo (128 bytes)
//! above      the fxsave-format FP/SSE state (512 bytes, 64-aligned) the fpstate pointer names
//! ```
//!
//! x87 registers are kept as doubles in the guest state; the frame's st slots are left zero
//! (handlers that inspect x87 state from the context are rare); xmm0..15 and mxcsr's rounding
//! mode round-trip.
//!
//! Depends on `state`, `flags` and `vg-core::arch` (the delivery description).

use vg_core::arch::{SIGINFO_SIZE, SigDelivery, SigRestored};

use crate::flags::{self, OSZACP};
use crate::state::*;

const UC_OFF: u64 = 8;
const UC_SIZE: u64 = 304;
const INFO_OFF: u64 = UC_OFF + UC_SIZE;
const FRAME_SIZE: u64 = INFO_OFF + SIGINFO_SIZE as u64;
const FXSAVE_SIZE: u64 = 512;
const RED_ZONE: u64 = 128;
/// Offsets inside the ucontext.
const UC_STACK: u64 = 16;
const UC_MCONTEXT: u64 = 40;
const UC_SIGMASK: u64 = 296;
/// Offset of the fpstate pointer in the mcontext (after the 23 gregs).
const MC_FPSTATE: u64 = 23 * 8;

/// Most bytes a frame takes below the stack pointer it is built under.
pub const SIGFRAME_MAX: u64 = RED_ZONE + FXSAVE_SIZE + 64 + FRAME_SIZE + 32;

/// `gregs[]` order of the kernel's sigcontext, as guest register numbers (16 = rip).
const GREGS: [usize; 17] = [8, 9, 10, 11, 12, 13, 14, 15, RDI, RSI, RBP, RBX, RDX, RAX, RCX, RSP, 16];
const REG_EFL: u64 = 17;
const REG_CSGSFS: u64 = 18;
const REG_CR2: u64 = 22;

const DF: u64 = 1 << 10;
const ID: u64 = 1 << 21;
const AC: u64 = 1 << 18;
/// Bit 1 is always set; IF is always set in user mode.
const FIXED: u64 = 0x202;

fn st(state: &[u8]) -> &Amd64State {
    debug_assert!(state.len() >= core::mem::size_of::<Amd64State>());
    // SAFETY: the core hands in a guest state block of STATE_SIZE bytes, 32-aligned, which is
    // an Amd64State (all fields plain integers).
    unsafe { &*(state.as_ptr() as *const Amd64State) }
}
fn st_mut(state: &mut [u8]) -> &mut Amd64State {
    debug_assert!(state.len() >= core::mem::size_of::<Amd64State>());
    // SAFETY: as in `st`, and the borrow is unique.
    unsafe { &mut *(state.as_mut_ptr() as *mut Amd64State) }
}

/// The guest's rflags, computed from the lazy thunk and the separately kept flags.
pub fn rflags(s: &Amd64State) -> u64 {
    let arith = flags::calculate_rflags_all(s.cc_op, s.cc_dep1, s.cc_dep2, s.cc_ndep) & OSZACP;
    let df = if s.dflag as i64 == -1 { DF } else { 0 };
    arith | df | (s.idflag & 1) * ID | (s.acflag & 1) * AC | FIXED
}

/// Set the guest's rflags (arithmetic flags become a COPY thunk).
pub fn set_rflags(s: &mut Amd64State, f: u64) {
    s.cc_op = flags::CC_COPY;
    s.cc_dep1 = f & OSZACP;
    s.cc_dep2 = 0;
    s.cc_ndep = 0;
    s.dflag = if f & DF != 0 { u64::MAX } else { 1 };
    s.idflag = (f >> 21) & 1;
    s.acflag = (f >> 18) & 1;
}

fn reg(s: &Amd64State, r: usize) -> u64 {
    if r == 16 { s.rip } else { s.gpr[r] }
}

/// # Safety
/// `addr` must be writable for 8 bytes.
unsafe fn put(addr: u64, v: u64) {
    // SAFETY: caller contract.
    unsafe { core::ptr::write_unaligned(addr as *mut u64, v) }
}

/// # Safety
/// `addr` must be readable for 8 bytes.
unsafe fn get(addr: u64) -> u64 {
    // SAFETY: caller contract.
    unsafe { core::ptr::read_unaligned(addr as *const u64) }
}

/// Build the frame (see the module comment) and enter the handler.
///
/// # Safety
/// `[d.sp - SIGFRAME_MAX, d.sp)` must be writable client memory.
pub unsafe fn push_signal_frame(state: &mut [u8], d: &SigDelivery) {
    let s = st(state);
    let mut sp = d.sp;
    if !d.on_altstack {
        sp -= RED_ZONE;
    }
    let fp = (sp - FXSAVE_SIZE) & !63;
    let frame = ((fp - FRAME_SIZE) & !15) - 8;
    let uc = frame + UC_OFF;
    let mc = uc + UC_MCONTEXT;
    // SAFETY: everything written lies in [frame, fp + 512) within the vetted range below d.sp.
    unsafe {
        core::ptr::write_bytes(frame as *mut u8, 0, (fp + FXSAVE_SIZE - frame) as usize);
        put(frame, d.restorer);
        // uc_flags: UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS, as the kernel sets them.
        put(uc, 0x6);
        put(uc + UC_STACK, d.altstack.0);
        core::ptr::write_unaligned((uc + UC_STACK + 8) as *mut i32, d.altstack.1);
        put(uc + UC_STACK + 16, d.altstack.2);
        for (i, &r) in GREGS.iter().enumerate() {
            put(mc + 8 * i as u64, reg(s, r));
        }
        put(mc + 8 * REG_EFL, rflags(s));
        // cs = 0x33, ss = 0x2b (the user segments of a 64-bit process).
        put(mc + 8 * REG_CSGSFS, 0x002b_0000_0000_0033);
        if d.signo == 11 || d.signo == 7 {
            put(mc + 8 * REG_CR2, get_info_addr(&d.info));
        }
        put(mc + MC_FPSTATE, fp);
        put(uc + UC_SIGMASK, d.saved_mask);
        core::ptr::copy_nonoverlapping(d.info.as_ptr(), (frame + INFO_OFF) as *mut u8, SIGINFO_SIZE);
        write_fxsave(s, fp);
    }
    let s = st_mut(state);
    s.gpr[RDI] = d.signo as u64;
    s.gpr[RSI] = frame + INFO_OFF;
    s.gpr[RDX] = uc;
    s.gpr[RAX] = 0;
    s.gpr[RSP] = frame;
    s.rip = d.handler;
    s.dflag = 1;
}

fn get_info_addr(info: &[u8; SIGINFO_SIZE]) -> u64 {
    u64::from_le_bytes(info[16..24].try_into().expect("8 bytes"))
}

/// The fxsave image of the SSE state (control words at their reset values).
///
/// # Safety
/// `fp` must be writable for 512 bytes.
unsafe fn write_fxsave(s: &Amd64State, fp: u64) {
    // SAFETY: caller contract; all offsets are below 512.
    unsafe {
        core::ptr::write_unaligned(fp as *mut u16, 0x37f);
        core::ptr::write_unaligned((fp + 2) as *mut u16, ((s.ftop & 7) << 11) as u16);
        core::ptr::write_unaligned((fp + 24) as *mut u32, 0x1f80 | ((s.sseround as u32 & 3) << 13));
        core::ptr::write_unaligned((fp + 28) as *mut u32, 0xffff);
        for (i, x) in s.ymm.iter().take(16).enumerate() {
            put(fp + 160 + 16 * i as u64, x[0]);
            put(fp + 168 + 16 * i as u64, x[1]);
        }
    }
}

/// rt_sigreturn: the ucontext is at the stack pointer (the handler's `ret` popped pretcode).
pub fn pop_signal_frame(state: &mut [u8], readable: &dyn Fn(u64, u64) -> bool) -> Option<SigRestored> {
    let uc = st(state).gpr[RSP];
    if !readable(uc, UC_SIZE) {
        return None;
    }
    let mc = uc + UC_MCONTEXT;
    // SAFETY: [uc, uc + UC_SIZE) is readable (checked above).
    let (restored, fp) = unsafe {
        let s = st_mut(state);
        for (i, &r) in GREGS.iter().enumerate() {
            let v = get(mc + 8 * i as u64);
            if r == 16 { s.rip = v } else { s.gpr[r] = v }
        }
        set_rflags(s, get(mc + 8 * REG_EFL));
        let altstack = (
            get(uc + UC_STACK),
            core::ptr::read_unaligned((uc + UC_STACK + 8) as *const i32),
            get(uc + UC_STACK + 16),
        );
        (SigRestored { mask: get(uc + UC_SIGMASK), altstack }, get(mc + MC_FPSTATE))
    };
    if fp != 0 && readable(fp, FXSAVE_SIZE) {
        let s = st_mut(state);
        // SAFETY: [fp, fp + 512) is readable (checked above).
        unsafe {
            let mxcsr = core::ptr::read_unaligned((fp + 24) as *const u32);
            s.sseround = ((mxcsr >> 13) & 3) as u64;
            for (i, x) in s.ymm.iter_mut().take(16).enumerate() {
                x[0] = get(fp + 160 + 16 * i as u64);
                x[1] = get(fp + 168 + 16 * i as u64);
            }
        }
    }
    Some(restored)
}

/// SA_RESTART: back to the `syscall` instruction (its address was recorded by the lifter).
pub fn restart_syscall(state: &mut [u8]) {
    let s = st_mut(state);
    s.rip = s.ip_at_syscall;
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    fn bytes(s: &mut Amd64State) -> &mut [u8] {
        // SAFETY: Amd64State is plain old data.
        unsafe { core::slice::from_raw_parts_mut(s as *mut Amd64State as *mut u8, STATE_SIZE as usize) }
    }

    #[test]
    fn frame_round_trip() {
        let mut s = Amd64State::default();
        for (i, r) in s.gpr.iter_mut().enumerate() {
            *r = 0x1000 + i as u64;
        }
        s.rip = 0x40_1234;
        s.ymm[3] = [0x33, 0x44, 0x55, 0x66];
        s.sseround = 2;
        set_rflags(&mut s, flags::CF | flags::ZF | DF);
        let saved = s;
        // A 16-aligned stack whose top is 0x800 bytes into a buffer.
        let mut stack = vec![0u8; 0x1000];
        let top = ((stack.as_mut_ptr() as u64 + 0x800) & !15) + 8;
        s.gpr[RSP] = top;
        let before = s;
        let mut info = [0u8; SIGINFO_SIZE];
        info[0] = 11;
        info[16..24].copy_from_slice(&0xdead_u64.to_le_bytes());
        let d = SigDelivery {
            signo: 11,
            info,
            handler: 0x50_0000,
            restorer: 0x60_0000,
            saved_mask: 0x8000,
            sp: top,
            on_altstack: false,
            altstack: (0, 2, 0),
        };
        // SAFETY: [top - SIGFRAME_MAX, top) lies inside `stack`.
        unsafe { push_signal_frame(bytes(&mut s), &d) };
        let frame = s.gpr[RSP];
        assert_eq!(frame % 16, 8, "the handler sees the stack as right after a call");
        assert!(frame >= top - SIGFRAME_MAX && frame + FRAME_SIZE <= top - RED_ZONE);
        assert_eq!((s.rip, s.gpr[RDI], s.gpr[RSI], s.gpr[RDX]), (0x50_0000, 11, frame + INFO_OFF, frame + 8));
        // SAFETY: the frame lies inside `stack`.
        unsafe {
            assert_eq!(get(frame), 0x60_0000);
            assert_eq!(get(frame + 8 + UC_MCONTEXT + 8 * 16), 0x40_1234, "gregs[REG_RIP]");
            assert_eq!(get(frame + 8 + UC_MCONTEXT + 8 * 15), top, "gregs[REG_RSP]");
            assert_eq!(get(frame + 8 + UC_MCONTEXT + 8 * 13), 0x1000, "gregs[REG_RAX]");
            assert_eq!(get(frame + 8 + UC_MCONTEXT + 8 * REG_CR2), 0xdead);
            assert_eq!(get(frame + 8 + UC_MCONTEXT + 8 * REG_EFL) & (flags::CF | flags::ZF | DF), flags::CF | flags::ZF | DF);
            assert_eq!(get(frame + 8 + UC_SIGMASK), 0x8000);
            assert_eq!(get(frame + INFO_OFF + 16), 0xdead);
        }
        // The handler clobbers registers, then `ret` pops pretcode; the restorer sigreturns.
        s.gpr = [7; 16];
        s.ymm[3] = [0; 4];
        s.gpr[RSP] = frame + 8;
        let r = pop_signal_frame(bytes(&mut s), &|_, _| true).expect("frame readable");
        assert_eq!(r, SigRestored { mask: 0x8000, altstack: (0, 2, 0) });
        assert_eq!(s.gpr, before.gpr);
        assert_eq!(s.rip, saved.rip);
        assert_eq!(rflags(&s), rflags(&saved));
        assert_eq!(s.ymm[3][..2], saved.ymm[3][..2]);
        assert_eq!(s.sseround, 2);
        assert!(pop_signal_frame(bytes(&mut s), &|_, _| false).is_none());
    }
}
