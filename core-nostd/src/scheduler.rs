//! The scheduler: runs the guest through the dispatcher and services what translations cannot do.
