//! IR interpreter (reference semantics of every operation; the second oracle in tests).
