//! Loading the client: ELF executables (static, static-PIE, dynamic via PT_INTERP) and the initial stack.
