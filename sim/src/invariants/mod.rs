//! Invariants, one per file. Each is a pure check over what a scenario observed, so it can be
//! unit-tested without a simulation and reused by every scenario.

pub mod durability;
