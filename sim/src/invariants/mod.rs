//! Invariants, one per file. Each is a pure check over what a scenario observed, so it can be
//! unit-tested without a simulation and reused by every scenario.

pub mod acked_not_lost;
pub mod appends_atomic;
pub mod durability;
pub mod election_bound;
pub mod minority_refuses;
pub mod one_leader_per_term;
pub mod reads_correct;
pub mod recovery_bound;
pub mod redirects;
pub mod replicas_agree;
pub mod whole_reads;
