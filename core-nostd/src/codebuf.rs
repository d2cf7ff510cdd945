//! A code buffer in the core's own memory that the `dynasm!` macro emits into (dynasmrt needs std).
