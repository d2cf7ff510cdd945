//! Shared helpers of the integration tests.

pub mod diff;
pub mod guests;
pub mod native;
