//! IR optimiser.
