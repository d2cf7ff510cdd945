//! Shared helpers of the integration tests.

pub mod guests;
pub mod native;
