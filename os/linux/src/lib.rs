//! The Linux OS layer: how the guest's system calls are checked, emulated or passed to the
//! kernel.

#![no_std]

extern crate alloc;
