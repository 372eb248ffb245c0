//! The controller role. Its decisions are pure functions of metadata state plus an event,
//! returning what to do (the openraft style: events in, commands out), so every rule is
//! unit-tested without a network or a Raft group.
//!
//! Built so far: replica placement, recovery planning and transaction resolution
//! ([`decide`]), and the metadata state machine the Raft log will drive ([`meta`]). The Raft
//! group itself (openraft), its storage and the heartbeat transport arrive with the rest of
//! the controllers issue.

pub mod decide;
pub mod meta;
pub mod raft;
pub mod service;
