//! Raw Linux system calls for the core itself (no libc).
