//! The controller role. Its decisions are pure functions of metadata state plus an event,
//! returning what to do (the openraft style: events in, commands out), so every rule is
//! unit-tested without a network or a Raft group.
//!
//! - [`decide`]: replica placement, recovery planning and transaction resolution;
//! - [`meta`]: the metadata state machine, changed only by committed Raft entries;
//! - [`raft`]: the openraft group — durable log and vote, checkpoints, Raft over node RPC;
//! - [`configs`]: controller.cfg and cluster.cfg as saved through Raft, written back to files;
//! - [`service`]: a running controller — node RPC (Raft, heartbeats, metadata reads and
//!   writes), `<NotLeader>` for followers, and the leader's liveness monitor.

pub mod configs;
pub mod decide;
pub mod dfs;
pub mod meta;
pub mod meta_compat;
pub mod raft;
pub mod recovery;
pub mod service;
mod settle;
