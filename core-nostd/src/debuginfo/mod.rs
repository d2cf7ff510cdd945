//! Debug information of the client's objects: ELF symbols, DWARF line tables and inlined frames, CFI for unwinding, demangling. Read lazily per object.
