//! Redirection and function wrapping: Z-encoded names, wrapper/replacement specifications (from
//! the tool and from `I_WRAP_SONAME_FNNAME_*`/`I_REPLACE_SONAME_FNNAME_*` symbols in guest
//! objects), name patterns, and the active set of redirections. All but `live` are pure logic
//! over symbol lists that depend on nothing else in the core; `live` holds the run's state (the
//! mapped objects and the active set the translator consults).

pub mod active;
pub mod live;
pub mod names;
pub mod pattern;
pub mod zenc;

pub use active::{ActiveRedir, ActiveSet, ObjectSymbols, RedirConflict, RedirSpec, compute_active, specs_from_object};
pub use names::{RedirKind, SpecName, parse_spec_name};
pub use pattern::wildcard_match;
pub use zenc::{z_decode, z_encode};
