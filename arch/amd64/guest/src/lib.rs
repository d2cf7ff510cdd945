//! The amd64 guest: the synthetic CPU's register state and the front end that lifts x86-64
//! machine code into IR.

#![no_std]

extern crate alloc;

pub mod state;
