//! The amd64 host back end: instruction selection from IR, register allocation, emission of
//! x86-64 code with the `dynasm!` macro, and the dispatcher generated code returns to.

#![no_std]

extern crate alloc;
