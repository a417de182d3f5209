//! Shared test support: a moto server per test, and SDK configuration pointing at it.

pub mod moto;
pub mod pipeline;
