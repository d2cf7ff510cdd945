//! Running instruction snippets natively against a register/memory state (the oracle).
