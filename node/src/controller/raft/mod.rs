//! The controllers' Raft group (openraft on `rt`): durable log ([`log`]), the metadata state
//! machine ([`sm`]) and Raft traffic over node RPC ([`net`]).
//!
//! Membership comes from cluster.nodes: the controllers in file order get node ids 1, 2, 3…,
//! and each is known to the others as `host:port:alias` (the form `<NotLeader>` names). A
//! controller starting with an empty log and no vote initialises the group with that
//! membership; every controller doing so with the same list is safe (openraft accepts the
//! identical initial membership from each), so no controller is special at first start.
//!
//! Invariants:
//! - metadata changes only through [`Controller::write`], i.e. a committed Raft entry;
//! - a write is acknowledged only after a majority has it durably and it has been applied
//!   on the leader (openraft's `client_write`);
//! - a controller that is not the leader refuses writes with the leader it knows of.

pub mod log;
pub mod net;
pub mod sm;
pub mod stream;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, SnapshotPolicy};

use crate::controller::meta::{Applied, Command, MetaError};

pub type NodeId = u64;
/// What applying a command answers.
pub type Reply = Result<Applied, MetaError>;

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

openraft::declare_raft_types!(
    /// The controllers' Raft types: metadata commands in, their results out.
    pub TypeConfig:
        D = Command,
        R = Reply,
        NodeId = NodeId,
        Node = BasicNode,
        AsyncRuntime = rt::raft::RaftRt,
);

pub type Raft = openraft::Raft<TypeConfig, sm::StateMachine>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, std::io::Cursor<Vec<u8>>>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type AppendEntriesRequest = openraft::raft::AppendEntriesRequest<TypeConfig>;
pub type AppendEntriesResponse = openraft::raft::AppendEntriesResponse<TypeConfig>;
pub type VoteRequest = openraft::raft::VoteRequest<TypeConfig>;
pub type VoteResponse = openraft::raft::VoteResponse<TypeConfig>;
pub type SnapshotResponse = openraft::raft::SnapshotResponse<TypeConfig>;

/// Timing and limits of the group.
#[derive(Debug, Clone, Copy)]
pub struct RaftTiming {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// A snapshot is built after this many entries since the last one.
    pub snapshot_every_entries: u64,
    /// Entries kept in the log behind a snapshot (so lagging followers need no snapshot).
    pub keep_after_snapshot: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        RaftTiming {
            heartbeat_ms: 150,
            election_timeout_min_ms: 600,
            election_timeout_max_ms: 1200,
            snapshot_every_entries: 20_000,
            keep_after_snapshot: 1_000,
        }
    }
}

/// Why a write was not applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    /// This controller is not the leader; the leader it knows of, as `host:port:alias`.
    #[error("<NotLeader>{}", .0.as_deref().unwrap_or(""))]
    NotLeader(Option<String>),
    #[error("RAFT-002 the write did not complete: {0}")]
    Raft(String),
}

/// One controller's Raft member.
pub struct Controller {
    pub id: NodeId,
    pub raft: Raft,
    pub sm: sm::StateMachine,
    pub log: log::LogStore,
    pub members: BTreeMap<NodeId, BasicNode>,
}

/// The membership from cluster.nodes: `(host, port, alias)` of each controller in file order.
pub fn members(controllers: &[(String, u16, String)]) -> BTreeMap<NodeId, BasicNode> {
    controllers
        .iter()
        .enumerate()
        .map(|(i, (h, p, a))| (i as NodeId + 1, BasicNode::new(format!("{h}:{p}:{a}"))))
        .collect()
}

impl Controller {
    /// Opens the durable state under `raft_dir` / `meta_dir` and starts the Raft member.
    pub async fn start(
        id: NodeId,
        members: BTreeMap<NodeId, BasicNode>,
        raft_dir: &Path,
        meta_dir: &Path,
        data_sync: bool,
        timing: RaftTiming,
    ) -> Result<Controller, String> {
        assert!(
            members.contains_key(&id),
            "a controller is a member of its group"
        );
        let log = log::LogStore::open(raft_dir, data_sync)
            .await
            .map_err(|e| {
                format!(
                    "RAFT-003 cannot open the raft log in {}: {e}",
                    raft_dir.display()
                )
            })?;
        let sm = sm::StateMachine::open(meta_dir).await.map_err(|e| {
            format!(
                "RAFT-004 cannot open the metadata checkpoint in {}: {e}",
                meta_dir.display()
            )
        })?;
        let fresh = log.hard_state().await.vote.is_none() && log.bounds().await.is_none();
        let config = openraft::Config {
            cluster_name: "porpoise-controllers".into(),
            heartbeat_interval: timing.heartbeat_ms,
            election_timeout_min: timing.election_timeout_min_ms,
            election_timeout_max: timing.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(timing.snapshot_every_entries),
            max_in_snapshot_log_to_keep: timing.keep_after_snapshot,
            install_snapshot_timeout: 5_000,
            ..Default::default()
        };
        let config = Arc::new(config.validate().map_err(|e| format!("RAFT-005 {e}"))?);
        let network = net::Network {
            rpc: crate::rpc::RpcClientConfig {
                connect_timeout: Duration::from_millis(timing.heartbeat_ms * 2),
                call_timeout: Duration::from_secs(10),
                inflight_max: 64,
            },
        };
        let raft = Raft::new(id, config, network, log.clone(), sm.clone())
            .await
            .map_err(|e| format!("RAFT-006 {e}"))?;
        if fresh {
            // Every controller proposes the same initial membership; see the module header.
            if let Err(e) = raft.initialize(members.clone()).await {
                return Err(format!("RAFT-007 cannot initialise the group: {e}"));
            }
        }
        Ok(Controller {
            id,
            raft,
            sm,
            log,
            members,
        })
    }

    /// The leader as this controller knows it: `(id, "host:port:alias")`.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        use openraft::async_runtime::WatchReceiver;
        let m = self.raft.metrics();
        let id = m.borrow_watched().current_leader?;
        Some((id, self.members.get(&id)?.addr.clone()))
    }

    /// Whether this controller is the leader right now.
    pub fn is_leader(&self) -> bool {
        self.leader().map(|(id, _)| id) == Some(self.id)
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        use openraft::async_runtime::WatchReceiver;
        self.raft.metrics().borrow_watched().current_term
    }

    /// Proposes `cmd`; returns once it is committed and applied on this leader.
    pub async fn write(&self, cmd: Command) -> Result<Reply, WriteError> {
        if !self.is_leader() {
            return Err(WriteError::NotLeader(self.leader().map(|(_, a)| a)));
        }
        match self.raft.client_write(cmd).await {
            Ok(r) => Ok(r.data),
            Err(e) => match e.forward_to_leader() {
                Some(f) => Err(WriteError::NotLeader(
                    f.leader_id
                        .and_then(|id| self.members.get(&id))
                        .map(|n| n.addr.clone()),
                )),
                None => Err(WriteError::Raft(e.to_string())),
            },
        }
    }

    /// Stops the Raft member (its tasks end; the durable state stays).
    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }
}
