//! Building guest programs (C/asm under tests/guest) with the system gcc, in variants.
