//! The translation pipeline: lift, instrument, optimise, compile, and tracing of each step.
