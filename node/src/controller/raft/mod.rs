//! The controllers' Raft group (openraft on `rt`): durable log ([`log`]), the metadata state
//! machine ([`sm`]) and Raft traffic over node RPC ([`net`]).
//!
//! Membership comes from cluster.nodes: the controllers in file order get node ids 1, 2, 3…,
//! and each is known to the others as `host:port:alias` (the form `<NotLeader>` names). A
//! controller starting with an empty log and no vote asks its peers how to join ([`rejoin`]):
//! at a first start it initialises the group with that membership (every controller doing so
//! with the same list is safe: openraft accepts the identical initial membership from each, so
//! no controller is special); after losing its log it rejoins, voting only once caught up.
//!
//! Invariants:
//! - metadata changes only through [`Controller::write`], i.e. a committed Raft entry;
//! - a write is acknowledged only after a majority has it durably and it has been applied
//!   on the leader (openraft's `client_write`);
//! - a controller that is not the leader refuses writes with the leader it knows of;
//! - a controller that may have forgotten its log or vote takes no Raft traffic until it knows
//!   its term floor, and grants no vote until it has caught up ([`Standing`]).

pub mod log;
pub mod net;
pub mod rejoin;
pub mod sm;
pub mod stream;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
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
        // Standard Raft: at most one leader per term (ARCHITECTURE D65).
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, NodeId>,
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
    /// This controller is not the leader; the leader it knows of, as `host:port:alias`
    /// (`<ControllerNotReady>` when it knows none: a bare `<NotLeader>` names nowhere to go).
    #[error("{}", crate::error::RemoteError::not_leader(.0.clone()))]
    NotLeader(Option<String>),
    #[error("RAFT-002 the write did not complete: {0}")]
    Raft(String),
}

impl From<WriteError> for crate::error::RemoteError {
    fn from(e: WriteError) -> Self {
        use crate::error::{ErrorCode, RemoteError};
        match e {
            WriteError::NotLeader(site) => RemoteError::not_leader(site),
            WriteError::Raft(m) => RemoteError::new(ErrorCode::RaftFailed, m),
        }
    }
}

/// How far a controller is in joining its group ([`rejoin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// A full member: votes, campaigns, acknowledges.
    Voter,
    /// No log and no vote: asking its peers whether to initialise or rejoin. Takes no Raft
    /// traffic at all.
    Deciding,
    /// Rejoining after a loss: acknowledges leaders of terms at least its floor, grants no
    /// vote and does not campaign until caught up.
    CatchingUp,
}

/// A follower that has not acknowledged its leader's heartbeats for this long is listed as
/// down (`getClusterPerf(true)`): a few heartbeats, above the election timeout.
pub const FOLLOWER_SILENCE_MAX: Duration = Duration::from_millis(2000);

/// One controller's Raft member.
pub struct Controller {
    pub id: NodeId,
    pub raft: Raft,
    pub sm: sm::StateMachine,
    pub log: log::LogStore,
    pub members: BTreeMap<NodeId, BasicNode>,
    standing: Rc<Cell<Standing>>,
    /// It knows it lost state (a checkpoint or a rejoining mark outlived its log).
    lost: bool,
}

/// What `GET /metrics` reports of a controller's Raft member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftNumbers {
    pub term: u64,
    pub last_log_index: u64,
    pub committed: u64,
    pub applied: u64,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub state: &'static str,
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
        let hard = log.hard_state().await;
        let empty = hard.vote.is_none() && log.bounds().await.is_none();
        let lost = hard.rejoining || (empty && sm.last_applied().is_some());
        let standing = if members.len() == 1 || !(empty || hard.rejoining) {
            // A group of one has nothing to protect from itself.
            Standing::Voter
        } else if hard.rejoining && hard.vote.is_some() {
            Standing::CatchingUp
        } else {
            Standing::Deciding
        };
        let config = openraft::Config {
            cluster_name: "porpoise-controllers".into(),
            heartbeat_interval: timing.heartbeat_ms,
            election_timeout_min: timing.election_timeout_min_ms,
            election_timeout_max: timing.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(timing.snapshot_every_entries),
            max_in_snapshot_log_to_keep: timing.keep_after_snapshot,
            install_snapshot_timeout: 5_000,
            // A controller with nothing on disk cannot campaign (it knows no membership); one
            // that knows it lost state may know one from its checkpoint, so it must not.
            enable_elect: !lost,
            ..Default::default()
        };
        let config = Arc::new(config.validate().map_err(|e| format!("RAFT-005 {e}"))?);
        let rpc = crate::rpc::RpcClientConfig {
            connect_timeout: Duration::from_millis(timing.heartbeat_ms * 2),
            call_timeout: Duration::from_secs(10),
            inflight_max: 64,
        };
        let network = net::Network { rpc };
        let raft = Raft::new(id, config, network, log.clone(), sm.clone())
            .await
            .map_err(|e| format!("RAFT-006 {e}"))?;
        if empty && members.len() == 1 {
            if let Err(e) = raft.initialize(members.clone()).await {
                return Err(format!("RAFT-007 cannot initialise the group: {e}"));
            }
        }
        let ctl = Controller {
            id,
            raft,
            sm,
            log,
            members,
            standing: Rc::new(Cell::new(standing)),
            lost,
        };
        if standing != Standing::Voter {
            drop(rt::task::spawn_local(join(
                ctl.raft.clone(),
                ctl.log.clone(),
                ctl.standing.clone(),
                ctl.id,
                ctl.members.clone(),
                lost,
                timing,
            )));
        }
        Ok(ctl)
    }

    /// How far this controller is in joining its group.
    pub fn standing(&self) -> Standing {
        self.standing.get()
    }

    /// Whether this controller takes the Raft message `method` now (see [`Standing`]).
    pub fn admits(&self, method: u16) -> bool {
        use net::method::*;
        let raft = matches!(method, APPEND | VOTE | SNAPSHOT | APPEND_STREAM);
        match self.standing.get() {
            Standing::Voter => true,
            Standing::Deciding => !raft,
            Standing::CatchingUp => method != VOTE,
        }
    }

    /// What this controller answers a joining peer's probe.
    pub fn probe(&self) -> rejoin::Probe {
        use openraft::async_runtime::WatchReceiver;
        let m = self.raft.metrics().borrow_watched().clone();
        let standing = self.standing.get();
        rejoin::Probe {
            vote_term: m.vote.leader_id().term,
            vote_committed: m.vote.is_committed(),
            last_log_index: m.last_log_index,
            last_applied_index: m.last_applied.map(|l| l.index),
            rejoining: standing == Standing::CatchingUp
                || (standing == Standing::Deciding && self.lost),
        }
    }

    /// The leader as this controller knows it: `(id, "host:port:alias")`.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        use openraft::async_runtime::WatchReceiver;
        let m = self.raft.metrics();
        let id = m.borrow_watched().current_leader?;
        Some((id, self.members.get(&id)?.addr.clone()))
    }

    /// Every controller of the group: its site (`host:port:alias`), whether it is live, and
    /// whether it leads. Liveness is what this controller can know: itself and the leader it
    /// follows are live; a leader also counts each follower that acknowledged a heartbeat
    /// within [`FOLLOWER_SILENCE_MAX`].
    pub fn controllers(&self) -> Vec<(String, bool, bool)> {
        use openraft::async_runtime::WatchReceiver;
        let m = self.raft.metrics().borrow_watched().clone();
        self.members
            .iter()
            .map(|(id, node)| {
                let leads = m.current_leader == Some(*id);
                let acked = m
                    .heartbeat
                    .as_ref()
                    .and_then(|h| h.get(id).copied().flatten())
                    .is_some_and(|at| at.elapsed() <= FOLLOWER_SILENCE_MAX);
                (node.addr.clone(), *id == self.id || leads || acked, leads)
            })
            .collect()
    }

    /// Waits until this controller's view of `(leader, term)` differs from `seen` and returns
    /// it; `None` once the Raft member has stopped.
    pub async fn next_leadership(
        &self,
        seen: (Option<NodeId>, u64),
    ) -> Option<(Option<NodeId>, u64)> {
        use openraft::async_runtime::WatchReceiver;
        let mut rx = self.raft.metrics();
        loop {
            let now = {
                let m = rx.borrow_watched();
                (m.current_leader, m.current_term)
            };
            if now != seen {
                return Some(now);
            }
            rx.changed().await.ok()?;
        }
    }

    /// The Raft numbers `GET /metrics` reports: term, last log index, committed and applied
    /// index (0 before the first entry).
    pub fn raft_numbers(&self) -> RaftNumbers {
        use openraft::async_runtime::WatchReceiver;
        let m = self.raft.metrics().borrow_watched().clone();
        RaftNumbers {
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            committed: m
                .cluster_committed
                .or(m.local_committed)
                .map_or(0, |l| l.index),
            applied: m.last_applied.map_or(0, |l| l.index),
            state: match m.state {
                openraft::ServerState::Leader => "leader",
                openraft::ServerState::Candidate => "candidate",
                openraft::ServerState::Learner => "learner",
                openraft::ServerState::Follower => "follower",
                openraft::ServerState::Shutdown => "shutdown",
            },
        }
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

/// Asks every other member for its [`rejoin::Probe`] (naming itself, so that a leader lets its
/// replication to this controller start over); the answers of those that answered.
async fn probe_peers(
    id: NodeId,
    members: &BTreeMap<NodeId, BasicNode>,
    timeout: Duration,
) -> Vec<rejoin::Probe> {
    let mut answers = Vec::new();
    for (peer, node) in members {
        if *peer == id {
            continue;
        }
        let Some(addr) = net::site_addr(&node.addr) else {
            continue;
        };
        let call = crate::rpc::call_once(addr, net::method::PROBE, net::encode(&id), timeout);
        if let Ok(reply) = call.await {
            if let Ok(p) = net::decode::<rejoin::Probe>(&reply) {
                answers.push(p);
            }
        }
    }
    answers
}

/// Takes a controller from [`Standing::Deciding`] or [`Standing::CatchingUp`] to
/// [`Standing::Voter`], as [`rejoin`] decides.
async fn join(
    raft: Raft,
    log: log::LogStore,
    standing: Rc<Cell<Standing>>,
    id: NodeId,
    members: BTreeMap<NodeId, BasicNode>,
    lost: bool,
    timing: RaftTiming,
) {
    use openraft::async_runtime::WatchReceiver;
    let pause = Duration::from_millis(timing.heartbeat_ms.max(50));
    loop {
        match standing.get() {
            Standing::Voter => return,
            Standing::Deciding => {
                let answers = probe_peers(id, &members, pause * 2).await;
                match rejoin::decide(members.len(), lost, &answers) {
                    rejoin::Join::Initialize => {
                        // Another member's identical proposal may already have reached us.
                        let _ = raft.initialize(members.clone()).await;
                        standing.set(Standing::Voter);
                    }
                    rejoin::Join::Rejoin { term_floor } => {
                        // The mark first: a crash after the vote must still restart rejoining.
                        if log.set_rejoining(true).await.is_err() {
                            rt::time::sleep(pause).await;
                            continue;
                        }
                        // No campaign with a partial log (the membership arrives with it).
                        raft.runtime_config().elect(false);
                        let vote = VoteRequest::new(Vote::new(term_floor, id), None);
                        if raft.vote(vote).await.is_err() {
                            rt::time::sleep(pause).await;
                            continue;
                        }
                        standing.set(Standing::CatchingUp);
                    }
                    rejoin::Join::Wait => rt::time::sleep(pause).await,
                }
            }
            Standing::CatchingUp => {
                let m = raft.metrics().borrow_watched().clone();
                let applied_term = m.last_applied.map(|l| l.leader_id.term);
                if rejoin::caught_up(m.vote.leader_id().term, m.vote.is_committed(), applied_term)
                    && log.set_rejoining(false).await.is_ok()
                {
                    raft.runtime_config().elect(true);
                    standing.set(Standing::Voter);
                } else {
                    rt::time::sleep(pause).await;
                }
            }
        }
    }
}
