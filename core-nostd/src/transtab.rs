//! The translation table: the code cache, the fast lookup cache and chaining bookkeeping.
