//! Replica recovery, planned and driven by the leader (ARCHITECTURE D99).
//!
//! The durable fact is in the metadata: a chunk's stale replicas (`Chunk::stale`), marked by
//! the commit that missed them. Tasks are derived from it each round by [`plan`], a pure
//! function (state in, actions out, as openraft's engine is written), so a new leader finds
//! every unfinished recovery again in the state it applied; only progress figures and attempt
//! counts are lost with a leadership.
//!
//! Invariants:
//! - A replica is made current only by `ClearStale` at the chunk's version (checked in
//!   `Meta::apply`, in log order with every commit), after its data node installed exactly
//!   that version copied from a current replica.
//! - At most `concurrency` tasks run at once, and at most one per (chunk, replica).
//! - A stale replica with no live current replica to copy from is reported as data at risk
//!   (log and `getRecoveryTaskStatus`), never left silently waiting.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use super::meta::{Meta, MetaError, Role};
use super::service::ControllerService;
use crate::dfs_proto::*;
use crate::error::RemoteError;
use crate::rpc::{decode_payload, encode_payload, RpcClient, RpcClientConfig};

/// A recovery's call to its target: a full copy of a large chunk takes a while.
const RECOVER_CALL: RpcClientConfig = RpcClientConfig {
    connect_timeout: Duration::from_millis(2_000),
    call_timeout: Duration::from_millis(600_000),
    inflight_max: 64,
};
/// A failed task waits this long per attempt made (up to [`RETRY_PAUSE_MAX_MS`]).
const RETRY_PAUSE_MS: u64 = 500;
const RETRY_PAUSE_MAX_MS: u64 = 10_000;
/// Finished tasks kept for `getRecoveryTaskStatus`.
const FINISHED_KEPT_MAX: usize = 10_000;

/// What recovery may do, from the controller's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `dfsRecoveryWaitTime`: a node offline longer has its replicas rebuilt elsewhere (0: never).
    pub wait_ms: u64,
    /// `dfsRecoveryConcurrency`.
    pub concurrency: usize,
    /// `dfsSyncRecoveryChunkRowSize`.
    pub sync_rows: u64,
    /// `dfsReplicaReliabilityLevel`, for where a rebuilt replica may go.
    pub reliability_level: u8,
}

/// One thing a recovery round does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Copy `chunk` to its stale replica on `dest` from the current one on `source`.
    Start {
        chunk: u64,
        dest: String,
        source: String,
        full: bool,
    },
    /// `dest`'s replica of `chunk` is stale and no current replica is on a live node.
    AtRisk { chunk: u64, dest: String },
    /// `from` has been offline longer than `dfsRecoveryWaitTime`: its replica goes to `to`.
    Move {
        chunk: u64,
        from: String,
        to: String,
    },
}

/// What the leader knows of each data node for planning.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Data nodes that reported their chunks to this leader (a stale replica is recovered only
    /// once its node said what it holds).
    pub reported: BTreeSet<String>,
    /// (chunk, dest) pairs with a task running or waiting to retry.
    pub busy: BTreeSet<(u64, String)>,
    /// (chunk, dest) → attempts made, which rotates the source.
    pub attempts: BTreeMap<(u64, String), u32>,
}

/// Plans one round: which stale replicas to recover from where, which are at risk, and which
/// replicas of long-offline nodes to move.
pub fn plan(m: &Meta, seen: &Seen, s: &Settings, running: usize, now_ms: u64) -> Vec<Action> {
    let live = |a: &str| m.nodes.get(a).is_some_and(|n| n.live);
    let mut out = Vec::new();
    let mut starts = running;
    // Replicas each data node holds, which grows as moves are planned (to spread them).
    let mut load: BTreeMap<&str, usize> = m
        .nodes
        .iter()
        .filter(|(_, n)| n.role == Role::DataNode)
        .map(|(a, _)| (a.as_str(), 0))
        .collect();
    for c in m.chunks.values() {
        for r in &c.replicas {
            if let Some(l) = load.get_mut(r.as_str()) {
                *l += 1;
            }
        }
    }
    for (id, c) in &m.chunks {
        let sources: Vec<&String> = c.current().filter(|r| live(r)).collect();
        let mut holders: BTreeSet<&str> = c.replicas.iter().map(String::as_str).collect();
        for r in &c.replicas {
            let gone_for = m
                .nodes
                .get(r)
                .filter(|n| !n.live)
                .map(|n| now_ms.saturating_sub(n.last_seen_ms));
            if s.wait_ms > 0 && gone_for.is_some_and(|g| g > s.wait_ms) && !sources.is_empty() {
                let hosts: BTreeSet<&str> = c
                    .replicas
                    .iter()
                    .filter(|h| *h != r)
                    .filter_map(|h| m.nodes.get(h).map(|n| n.host.as_str()))
                    .collect();
                let to = m
                    .nodes
                    .iter()
                    .filter(|(a, n)| {
                        n.role == Role::DataNode && n.live && !holders.contains(a.as_str())
                    })
                    .filter(|(_, n)| s.reliability_level == 0 || !hosts.contains(n.host.as_str()))
                    .min_by_key(|(a, _)| (load.get(a.as_str()).copied().unwrap_or(0), a.as_str()));
                if let Some((to, _)) = to {
                    *load.entry(to.as_str()).or_default() += 1;
                    holders.insert(to.as_str());
                    out.push(Action::Move {
                        chunk: *id,
                        from: r.clone(),
                        to: to.clone(),
                    });
                    continue;
                }
            }
        }
        for (dest, stale) in &c.stale {
            if !live(dest) || !seen.reported.contains(dest) {
                continue;
            }
            if seen.busy.contains(&(*id, dest.clone())) {
                continue;
            }
            if sources.is_empty() {
                out.push(Action::AtRisk {
                    chunk: *id,
                    dest: dest.clone(),
                });
                continue;
            }
            if starts >= s.concurrency {
                continue;
            }
            let tried = seen
                .attempts
                .get(&(*id, dest.clone()))
                .copied()
                .unwrap_or(0);
            let source = sources[tried as usize % sources.len()];
            starts += 1;
            out.push(Action::Start {
                chunk: *id,
                dest: dest.clone(),
                source: source.clone(),
                full: stale.full,
            });
        }
    }
    out
}

/// A task's state, DolphinDB's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Waiting,
    InProgress,
    Finished,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Waiting => "Waiting",
            Status::InProgress => "In-Progress",
            Status::Finished => "Finished",
        }
    }
}

/// One recovery task as `getRecoveryTaskStatus` shows it.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: u64,
    pub chunk: u64,
    pub source: String,
    pub dest: String,
    pub status: Status,
    pub attempts: u32,
    pub start_ms: u64,
    pub last_start_ms: u64,
    pub finish_ms: u64,
    pub incremental: bool,
    pub fell_back: bool,
    pub sync_ms: u64,
    pub failure: String,
    pub rows_done: u64,
    pub bytes_done: u64,
    pub rows_total: u64,
    /// Not before this time (ms) is a failed task tried again.
    pub retry_at_ms: u64,
}

/// The leader's recovery tasks (volatile: see the module header).
#[derive(Default)]
pub struct Tasks {
    pub tasks: BTreeMap<u64, Task>,
    next_id: u64,
    /// (chunk, dest) → the task recovering it, while unfinished.
    open: BTreeMap<(u64, String), u64>,
    /// Chunks reported at risk, so the log says it once per episode.
    at_risk: BTreeSet<(u64, String)>,
}

impl Tasks {
    /// What [`plan`] needs to know of the tasks.
    pub fn seen(&self, now_ms: u64, reported: BTreeSet<String>) -> (Seen, usize) {
        let mut seen = Seen {
            reported,
            ..Seen::default()
        };
        let mut running = 0;
        for (key, id) in &self.open {
            let t = &self.tasks[id];
            seen.attempts.insert(key.clone(), t.attempts);
            if t.status == Status::InProgress {
                running += 1;
                seen.busy.insert(key.clone());
            } else if t.retry_at_ms > now_ms {
                seen.busy.insert(key.clone());
            }
        }
        (seen, running)
    }

    /// The task for (chunk, dest), begun now (a new one, or the waiting one again).
    fn begin(&mut self, chunk: u64, dest: &str, source: &str, full: bool, now_ms: u64) -> u64 {
        let key = (chunk, dest.to_string());
        let id = match self.open.get(&key) {
            Some(id) => *id,
            None => {
                self.next_id += 1;
                let id = self.next_id;
                self.open.insert(key.clone(), id);
                self.tasks.insert(
                    id,
                    Task {
                        id,
                        chunk,
                        source: source.to_string(),
                        dest: dest.to_string(),
                        status: Status::Waiting,
                        attempts: 0,
                        start_ms: now_ms,
                        last_start_ms: 0,
                        finish_ms: 0,
                        incremental: !full,
                        fell_back: false,
                        sync_ms: 0,
                        failure: String::new(),
                        rows_done: 0,
                        bytes_done: 0,
                        rows_total: 0,
                        retry_at_ms: 0,
                    },
                );
                id
            }
        };
        self.at_risk.remove(&key);
        let t = self.tasks.get_mut(&id).expect("an open task exists");
        t.source = source.to_string();
        t.status = Status::InProgress;
        t.attempts += 1;
        t.last_start_ms = now_ms;
        id
    }

    fn failed(&mut self, id: u64, why: String, now_ms: u64) {
        if let Some(t) = self.tasks.get_mut(&id) {
            t.status = Status::Waiting;
            t.failure = why;
            t.retry_at_ms =
                now_ms + (RETRY_PAUSE_MS * u64::from(t.attempts)).min(RETRY_PAUSE_MAX_MS);
        }
    }

    fn finished(&mut self, id: u64, now_ms: u64) {
        if let Some(t) = self.tasks.get_mut(&id) {
            t.status = Status::Finished;
            t.finish_ms = now_ms;
            t.failure.clear();
            self.open.remove(&(t.chunk, t.dest.clone()));
        }
        while self.tasks.len() > FINISHED_KEPT_MAX {
            let oldest = self
                .tasks
                .iter()
                .find(|(_, t)| t.status == Status::Finished)
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => self.tasks.remove(&id),
                None => break,
            };
        }
    }

    /// Records a target's report of a running task.
    pub fn progress(&mut self, p: &RecoveryProgress) {
        if let Some(t) = self.tasks.get_mut(&p.task) {
            t.rows_done = p.rows_done;
            t.bytes_done = p.bytes_done;
            t.rows_total = p.rows_total;
        }
    }

    /// Unfinished tasks whose stale mark is gone (cleared, moved, dropped): nothing to do.
    fn forget_settled(&mut self, m: &Meta, now_ms: u64) {
        let settled: Vec<u64> = self
            .open
            .iter()
            .filter(|((chunk, dest), _)| {
                !m.chunks
                    .get(chunk)
                    .is_some_and(|c| c.stale.contains_key(dest))
            })
            .map(|(_, id)| *id)
            .filter(|id| self.tasks[id].status != Status::InProgress)
            .collect();
        for id in settled {
            self.finished(id, now_ms);
        }
    }

    /// Tasks with a chunk at risk are shown waiting with the reason.
    fn at_risk(&mut self, chunk: u64, dest: &str, now_ms: u64) -> bool {
        let key = (chunk, dest.to_string());
        let id = match self.open.get(&key) {
            Some(id) => *id,
            None => {
                let id = self.begin(chunk, dest, "", false, now_ms);
                if let Some(t) = self.tasks.get_mut(&id) {
                    t.attempts = 0;
                }
                id
            }
        };
        self.failed(
            id,
            format!("data at risk: no current replica of chunk {chunk} is on a live data node"),
            now_ms,
        );
        self.at_risk.insert(key)
    }
}

impl ControllerService {
    /// One recovery round of the leader's monitor.
    pub(super) async fn recovery_round(self: &Rc<Self>, now_ms: u64) {
        let settings = self.recovery_settings();
        let actions = {
            let v = self.volatile.borrow();
            let reported: BTreeSet<String> = v.reports.keys().cloned().collect();
            let (seen, running) = v.recovery.seen(now_ms, reported);
            self.ctl
                .sm
                .read(|m| plan(m, &seen, &settings, running, now_ms))
        };
        self.ctl.sm.read(|m| {
            self.volatile
                .borrow_mut()
                .recovery
                .forget_settled(m, now_ms)
        });
        for a in actions {
            match a {
                Action::Start {
                    chunk,
                    dest,
                    source,
                    full,
                } => {
                    let id = self
                        .volatile
                        .borrow_mut()
                        .recovery
                        .begin(chunk, &dest, &source, full, now_ms);
                    let sync_rows = settings.sync_rows;
                    drop(rt::task::spawn_local(
                        self.clone()
                            .recover_one(id, chunk, dest, source, full, sync_rows),
                    ));
                }
                Action::AtRisk { chunk, dest } => {
                    let first = self
                        .volatile
                        .borrow_mut()
                        .recovery
                        .at_risk(chunk, &dest, now_ms);
                    if first {
                        self.log.error(
                            "data_at_risk",
                            &format!("chunk {chunk}: its replica on {dest} is stale and no current replica is on a live data node"),
                            &[],
                        );
                    }
                }
                Action::Move { chunk, from, to } => {
                    let cmd = super::meta::Command::MoveReplica {
                        chunk,
                        from: from.clone(),
                        to: to.clone(),
                    };
                    if let Ok(Ok(_)) = self.ctl.write(cmd).await {
                        self.log.warn(
                            "replica_moved",
                            &format!("chunk {chunk}: {from} was offline longer than dfsRecoveryWaitTime; its replica is rebuilt on {to}"),
                            &[],
                        );
                    }
                }
            }
        }
    }

    /// A data node's copy of a chunk failed a checksum: it is marked stale (a full copy), and
    /// the next round plans its repair from a good replica (D101).
    pub(super) async fn replica_damaged(&self, d: Damaged) -> Result<(), RemoteError> {
        if let Some(e) = self.not_leader_error() {
            return Err(e);
        }
        let cmd = super::meta::Command::MarkDamaged {
            chunk: d.chunk,
            alias: d.alias.clone(),
        };
        match self.ctl.write(cmd).await.map_err(RemoteError::from)? {
            Ok(_) => {
                self.log.error(
                    "replica_damaged",
                    &format!(
                        "chunk {} on {} is damaged ({}); it is repaired from another replica",
                        d.chunk, d.alias, d.why
                    ),
                    &[],
                );
                Ok(())
            }
            Err(MetaError::Missing(_)) => Ok(()),
            Err(e) => {
                self.log.error(
                    "data_at_risk",
                    &format!(
                        "chunk {} on {} is damaged ({}): {e}",
                        d.chunk, d.alias, d.why
                    ),
                    &[],
                );
                Ok(())
            }
        }
    }

    /// Runs one task: the target copies, the leader records it current, the source's hold
    /// ends.
    async fn recover_one(
        self: Rc<Self>,
        id: u64,
        chunk: u64,
        dest: String,
        source: String,
        full: bool,
        sync_rows: u64,
    ) {
        let site = |alias: &str| {
            self.ctl.sm.read(|m| {
                m.nodes.get(alias).map(|n| Replica {
                    alias: alias.to_string(),
                    host: n.host.clone(),
                    port: n.port,
                    live: n.live,
                })
            })
        };
        let (Some(dest_site), Some(source_site)) = (site(&dest), site(&source)) else {
            let now = rt::time::unix_time_ms();
            self.volatile.borrow_mut().recovery.failed(
                id,
                "a node is not in cluster.nodes".into(),
                now,
            );
            return;
        };
        let call = |r: &Replica, method: u16, payload: Vec<u8>| {
            let addr = crate::server::resolve_addr(&r.host, r.port);
            async move {
                let addr = addr.map_err(|e| e.to_string())?;
                RpcClient::new(addr, RECOVER_CALL)
                    .call(method, payload)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        let ask = Recover {
            task: id,
            chunk,
            source: source_site.clone(),
            full,
            sync_rows,
        };
        let done = call(&dest_site, method::CHUNK_RECOVER, encode_payload(&ask))
            .await
            .and_then(|b| decode_payload::<Recovered>(&b).map_err(|e| e.to_string()));
        let outcome = match done {
            Err(e) => Err(e),
            Ok(r) => {
                {
                    let mut v = self.volatile.borrow_mut();
                    if let Some(t) = v.recovery.tasks.get_mut(&id) {
                        t.incremental = r.incremental;
                        t.fell_back = r.fell_back;
                        t.sync_ms = r.sync_ms;
                        t.rows_done = r.rows;
                        t.bytes_done = r.bytes;
                    }
                }
                let clear = super::meta::Command::ClearStale {
                    chunk,
                    alias: dest.clone(),
                    version: r.version,
                };
                match self.ctl.write(clear).await {
                    Ok(Ok(_)) | Ok(Err(MetaError::Missing(_))) => Ok(r),
                    Ok(Err(e)) => Err(format!("writes moved on during the copy: {e}")),
                    Err(e) => Err(RemoteError::from(e).to_string()),
                }
            }
        };
        // Whatever happened, the source's hold (if the copy took one) ends now.
        let _ = call(&source_site, method::CHUNK_RELEASE, encode_payload(&chunk)).await;
        let now = rt::time::unix_time_ms();
        match outcome {
            Ok(r) => {
                {
                    let mut v = self.volatile.borrow_mut();
                    v.recovery.finished(id, now);
                    if let Some(held) = v.reports.get_mut(&dest) {
                        held.insert(chunk, r.version);
                    }
                }
                self.log.info(
                    "replica_recovered",
                    &format!(
                        "chunk {chunk} on {dest} from {source}: {} rows, {} bytes, {} copy, now version {}",
                        r.rows,
                        r.bytes,
                        if r.incremental { "incremental" } else { "full" },
                        r.version
                    ),
                    &[],
                );
            }
            Err(e) => {
                self.log.warn(
                    "recovery_failed",
                    &format!("chunk {chunk} on {dest} from {source}: {e}"),
                    &[],
                );
                self.volatile.borrow_mut().recovery.failed(id, e, now);
            }
        }
    }
}

/// The tasks as `getRecoveryTaskStatus` rows, each with its chunk's path.
pub fn rows(m: &Meta, tasks: &Tasks, now_ms: u64) -> Vec<RecoveryTaskRow> {
    let mut paths: BTreeMap<u64, String> = BTreeMap::new();
    for (db, d) in &m.databases {
        let short = db.trim_start_matches("dfs:/");
        let scheme =
            lang::partition::Scheme::decode(&mut storage::bytes::Reader::new(&d.scheme)).ok();
        for (tname, t) in &d.tables {
            for (pname, chunk) in &t.partitions {
                let shown = scheme
                    .as_ref()
                    .map_or_else(|| pname.clone(), |s| s.display_path(pname));
                paths.insert(*chunk, format!("{short}/{shown}/{tname}"));
            }
        }
    }
    tasks
        .tasks
        .values()
        .map(|t| RecoveryTaskRow {
            id: t.id,
            chunk: t.chunk,
            path: paths.get(&t.chunk).cloned().unwrap_or_default(),
            source: t.source.clone(),
            dest: t.dest.clone(),
            status: t.status.name().to_string(),
            attempts: t.attempts,
            start_ms: t.start_ms,
            last_start_ms: t.last_start_ms,
            finish_ms: t.finish_ms,
            incremental: t.incremental,
            fell_back: t.fell_back,
            sync_ms: t.sync_ms,
            failure: t.failure.clone(),
            rows_done: t.rows_done,
            bytes_done: t.bytes_done,
            rows_total: t.rows_total,
            now_ms,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::meta::{Chunk, NodeEntry, Stale};

    fn node(host: &str, live: bool, last_seen_ms: u64) -> NodeEntry {
        NodeEntry {
            host: host.into(),
            port: 8802,
            role: Role::DataNode,
            live,
            last_seen_ms,
        }
    }

    /// Data nodes dn1–dn4 (dn4 on dn1's host), chunk 1 on dn1+dn2+dn3 with dn3 stale.
    fn meta(live: [bool; 4]) -> Meta {
        let mut m = Meta::new();
        for (i, host) in ["h1", "h2", "h3", "h1"].iter().enumerate() {
            m.nodes
                .insert(format!("dn{}", i + 1), node(host, live[i], 1_000));
        }
        let mut stale = BTreeMap::new();
        stale.insert(
            "dn3".to_string(),
            Stale {
                since: 2,
                full: false,
            },
        );
        m.chunks.insert(
            1,
            Chunk {
                replicas: ["dn1", "dn2", "dn3"].map(String::from).into(),
                version: 5,
                stale,
            },
        );
        m
    }

    fn settings() -> Settings {
        Settings {
            wait_ms: 0,
            concurrency: 8,
            sync_rows: 1000,
            reliability_level: 0,
        }
    }

    fn reported(nodes: &[&str]) -> Seen {
        Seen {
            reported: nodes.iter().map(|n| n.to_string()).collect(),
            ..Seen::default()
        }
    }

    fn start(source: &str, full: bool) -> Action {
        Action::Start {
            chunk: 1,
            dest: "dn3".into(),
            source: source.into(),
            full,
        }
    }

    #[test]
    fn a_returned_stale_replica_is_recovered_from_a_live_current_one_once_it_reported() {
        let m = meta([true; 4]);
        let s = settings();
        assert_eq!(plan(&m, &reported(&["dn1", "dn2"]), &s, 0, 2_000), []);
        assert_eq!(
            plan(&m, &reported(&["dn3"]), &s, 0, 2_000),
            [start("dn1", false)]
        );
        // Each attempt tries the next source.
        let mut seen = reported(&["dn3"]);
        seen.attempts.insert((1, "dn3".into()), 1);
        assert_eq!(plan(&m, &seen, &s, 0, 2_000), [start("dn2", false)]);
        // A dead source is never chosen.
        let m2 = meta([false, true, true, true]);
        assert_eq!(
            plan(&m2, &reported(&["dn3"]), &s, 0, 2_000),
            [start("dn2", false)]
        );
        // A rewrite since: a full copy.
        let mut m3 = meta([true; 4]);
        m3.chunks
            .get_mut(&1)
            .unwrap()
            .stale
            .get_mut("dn3")
            .unwrap()
            .full = true;
        assert_eq!(
            plan(&m3, &reported(&["dn3"]), &s, 0, 2_000),
            [start("dn1", true)]
        );
    }

    #[test]
    fn busy_bounded_and_at_risk_are_respected() {
        let m = meta([true; 4]);
        let mut seen = reported(&["dn3"]);
        seen.busy.insert((1, "dn3".into()));
        assert_eq!(plan(&m, &seen, &settings(), 0, 2_000), []);
        let full = Settings {
            concurrency: 2,
            ..settings()
        };
        assert_eq!(plan(&m, &reported(&["dn3"]), &full, 2, 2_000), []);
        // No current replica on a live node: at risk, whatever the concurrency.
        let m2 = meta([false, false, true, true]);
        assert_eq!(
            plan(&m2, &reported(&["dn3"]), &full, 2, 2_000),
            [Action::AtRisk {
                chunk: 1,
                dest: "dn3".into()
            }]
        );
        // A stale replica whose node is down waits for it.
        let m3 = meta([true, true, false, true]);
        assert_eq!(plan(&m3, &reported(&["dn3"]), &settings(), 0, 2_000), []);
    }

    #[test]
    fn a_node_offline_longer_than_the_wait_has_its_replicas_moved() {
        let m = meta([true, true, false, true]);
        let wait = Settings {
            wait_ms: 5_000,
            ..settings()
        };
        assert_eq!(
            plan(&m, &Seen::default(), &wait, 0, 5_000),
            [],
            "not long enough"
        );
        assert_eq!(
            plan(&m, &Seen::default(), &wait, 0, 7_000),
            [Action::Move {
                chunk: 1,
                from: "dn3".into(),
                to: "dn4".into()
            }]
        );
        // dn4 shares dn1's host: with distinct hosts required there is nowhere to go.
        let distinct = Settings {
            reliability_level: 1,
            ..wait
        };
        assert_eq!(plan(&m, &Seen::default(), &distinct, 0, 7_000), []);
        // Never with wait 0 (DolphinDB's default: replicas wait for their node).
        assert_eq!(plan(&m, &Seen::default(), &settings(), 0, 70_000), []);
    }

    #[test]
    fn tasks_retry_with_a_pause_and_finish_once() {
        let mut t = Tasks::default();
        let id = t.begin(1, "dn3", "dn1", false, 100);
        let (seen, running) = t.seen(100, BTreeSet::new());
        assert_eq!(running, 1);
        assert!(seen.busy.contains(&(1, "dn3".into())));
        t.failed(id, "the source died".into(), 200);
        let (seen, running) = t.seen(300, BTreeSet::new());
        assert_eq!(running, 0);
        assert!(
            seen.busy.contains(&(1, "dn3".into())),
            "pausing before a retry"
        );
        assert_eq!(seen.attempts[&(1, "dn3".into())], 1);
        let (seen, _) = t.seen(200 + RETRY_PAUSE_MS, BTreeSet::new());
        assert!(seen.busy.is_empty());
        assert_eq!(
            t.begin(1, "dn3", "dn2", false, 800),
            id,
            "the same task again"
        );
        assert_eq!(t.tasks[&id].attempts, 2);
        t.finished(id, 900);
        assert_eq!(t.tasks[&id].status, Status::Finished);
        assert!(t.seen(900, BTreeSet::new()).0.attempts.is_empty());
        assert_ne!(
            t.begin(1, "dn3", "dn1", false, 1_000),
            id,
            "a new episode, a new task"
        );
    }
}
