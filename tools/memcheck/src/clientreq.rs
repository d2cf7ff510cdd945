//! The `memcheck.h` client requests (tool code 'M','C'): making memory no-access, undefined or
//! defined, checking it, reading and writing V bits, and asking for a leak check.

use crate::errors::McError;
use crate::{describe_addr, report_here, current_pc, st};

/// `memcheck.h`'s request codes, in the header's order from the tool base.
pub mod code {
    pub const BASE: u64 = (b'M' as u64) << 24 | (b'C' as u64) << 16;
    pub const MAKE_MEM_NOACCESS: u64 = BASE;
    pub const MAKE_MEM_UNDEFINED: u64 = BASE + 1;
    pub const MAKE_MEM_DEFINED: u64 = BASE + 2;
    pub const DISCARD: u64 = BASE + 3;
    pub const CHECK_MEM_IS_ADDRESSABLE: u64 = BASE + 4;
    pub const CHECK_MEM_IS_DEFINED: u64 = BASE + 5;
    pub const DO_LEAK_CHECK: u64 = BASE + 6;
    pub const COUNT_LEAKS: u64 = BASE + 7;
    pub const GET_VBITS: u64 = BASE + 8;
    pub const SET_VBITS: u64 = BASE + 9;
    pub const CREATE_BLOCK: u64 = BASE + 10;
    pub const MAKE_MEM_DEFINED_IF_ADDRESSABLE: u64 = BASE + 11;
}

fn check(a: u64, len: u64, defined: bool) -> u64 {
    let s = st();
    let bad = if defined { s.shadow.first_undefined(a, len) } else { s.shadow.first_noaccess(a, len).map(|p| (p, false)) };
    match bad {
        None => 0,
        Some((p, addressable)) => {
            let desc = describe_addr(p);
            report_here(McError::User { unaddressable: !addressable, addr: p, desc }, current_pc());
            p
        }
    }
}

/// Service request `args` (code first) if it is one of memcheck's.
pub fn handle(args: &[u64; 6]) -> Option<u64> {
    let (a, len) = (args[1], args[2]);
    let s = st();
    Some(match args[0] {
        code::MAKE_MEM_NOACCESS => {
            s.shadow.make_noaccess(a, len);
            0
        }
        code::MAKE_MEM_UNDEFINED => {
            s.shadow.make_undefined(a, len);
            0
        }
        code::MAKE_MEM_DEFINED => {
            s.shadow.make_defined(a, len);
            0
        }
        code::MAKE_MEM_DEFINED_IF_ADDRESSABLE => {
            s.shadow.make_defined_if_addressable(a, len);
            0
        }
        code::CHECK_MEM_IS_ADDRESSABLE => check(a, len, false),
        code::CHECK_MEM_IS_DEFINED => check(a, len, true),
        // No user-described blocks are kept: the descriptor is accepted and forgotten.
        code::CREATE_BLOCK | code::DISCARD => 0,
        _ => return None,
    })
}
