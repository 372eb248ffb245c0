//! A running controller: its Raft member plus what it serves on its port — Raft and node RPC
//! (heartbeats, metadata reads and writes), the DolphinDB API and HTTP gated on leadership,
//! and the leader's node-liveness monitor.
//!
//! Liveness is replicated only where it changes what other controllers must know: a node's
//! registration, and `Heartbeat` entries at most every `timeout/3` per node (so a new leader
//! knows when each node was last heard from), and `ExpireNodes` when a node goes quiet. A new
//! leader waits one full timeout before expiring anyone, so nodes that were heartbeating to the
//! old leader have time to find it.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::meta::{Command, Meta, Role, TxnState};
use super::raft::{self, Controller, RaftTiming};
use crate::config::{Mode, NodesFile, Settings};
use crate::error::{ErrorCode, RemoteError};
use crate::log::Logger;
use crate::rpc::{self, decode_request as decode, RpcError};

/// RPC methods nodes call on controllers (Raft's own are in [`raft::net::method`]).
pub mod method {
    pub const HEARTBEAT: u16 = 20;
    pub const META_WRITE: u16 = 21;
    pub const META_READ: u16 = 22;
    /// `bool` controller.cfg (else cluster.cfg) → `Vec<String>` `key=value` lines
    /// (`loadControllerConfigs`, `loadClusterNodesConfigs`; `super::configs`).
    pub const CONFIG_LOAD: u16 = 23;
    /// `(bool, Vec<String>)` → `()`: saves the lines (`saveControllerConfigs`,
    /// `saveClusterNodesConfigs`).
    pub const CONFIG_SAVE: u16 = 24;
}

/// A heartbeat: who the node is (it registers itself with its first one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub alias: String,
    pub host: String,
    pub port: u16,
    pub role: Role,
}

/// A controller's role for a node of `mode`.
pub fn role_of(mode: Mode) -> Role {
    match mode {
        Mode::Controller => Role::Controller,
        Mode::Agent => Role::Agent,
        Mode::ComputeNode => Role::ComputeNode,
        Mode::DataNode | Mode::Single => Role::DataNode,
    }
}

pub struct ControllerService {
    pub ctl: Controller,
    pub(super) log: Logger,
    node_timeout_ms: u64,
    /// When this controller last became leader (its clock), if it is the leader.
    leader_since_ms: Cell<Option<u64>>,
    /// The agents, data and compute nodes cluster.nodes lists (registered by a new leader).
    listed: Vec<Heartbeat>,
    /// `dfsReplicationFactor` and `dfsReplicaReliabilityLevel`.
    placement: (usize, u8),
    /// `dfsRecoveryWaitTime`, `dfsRecoveryConcurrency`, `dfsSyncRecoveryChunkRowSize`.
    recovery: super::recovery::Settings,
    /// What the leader knows without Raft, lost with its leadership (`super::dfs`).
    pub(super) volatile: std::cell::RefCell<super::dfs::Volatile>,
    /// Changes of leader or term seen (`log_leadership`).
    leader_changes: Cell<u64>,
    /// Heartbeats taken as leader.
    heartbeats: Cell<u64>,
    /// This controller's controller.cfg and cluster.cfg (`super::configs`).
    pub(super) config_files: std::cell::RefCell<Option<super::configs::Files>>,
}

impl ControllerService {
    /// Starts the controller's Raft member from its settings and cluster.nodes.
    pub async fn start(
        settings: &Settings,
        nodes: &NodesFile,
        log: Logger,
        timing: RaftTiming,
    ) -> Result<Rc<ControllerService>, String> {
        // dfsHAMode=None: this controller alone (a group of one keeps the same code path).
        let controllers: Vec<(String, u16, String)> = nodes
            .of_mode(Mode::Controller)
            .filter(|n| settings.raft_enabled() || n.site.alias == settings.alias())
            .map(|n| (n.site.host.clone(), n.site.port, n.site.alias.clone()))
            .collect();
        let listed: Vec<Heartbeat> = nodes
            .nodes
            .iter()
            .filter(|n| n.mode != Mode::Controller)
            .map(|n| Heartbeat {
                alias: n.site.alias.clone(),
                host: n.site.host.clone(),
                port: n.site.port,
                role: role_of(n.mode),
            })
            .collect();
        let members = raft::members(&controllers);
        let id = controllers
            .iter()
            .position(|(_, _, a)| a == settings.alias())
            .map(|i| i as u64 + 1)
            .ok_or_else(|| format!("{} is not a controller in cluster.nodes", settings.alias()))?;
        let ctl = Controller::start(
            id,
            members,
            &settings.raft_dir(),
            &settings.dfs_meta_dir(),
            settings.data_sync(),
            timing,
        )
        .await?;
        log.info(
            "raft_started",
            &format!(
                "controller {} is Raft member {id} of {}",
                settings.alias(),
                controllers.len()
            ),
            &[],
        );
        let svc = Rc::new(ControllerService {
            ctl,
            log,
            node_timeout_ms: settings.node_heartbeat_timeout_ms(),
            leader_since_ms: Cell::new(None),
            listed,
            // A single node is a one-node cluster: one replica, on itself (D71).
            placement: if settings.mode() == Mode::Single {
                (1, 0)
            } else {
                (
                    settings.replication_factor(),
                    settings.replica_reliability_level(),
                )
            },
            recovery: super::recovery::Settings {
                wait_ms: settings.recovery_wait_ms(),
                // DolphinDB's default: twice the nodes other than agents.
                concurrency: settings
                    .recovery_concurrency()
                    .unwrap_or_else(|| {
                        2 * nodes.nodes.iter().filter(|n| n.mode != Mode::Agent).count()
                    })
                    .max(1),
                sync_rows: settings.sync_recovery_rows(),
                reliability_level: settings.replica_reliability_level(),
            },
            volatile: Default::default(),
            leader_changes: Cell::new(0),
            heartbeats: Cell::new(0),
            config_files: Default::default(),
        });
        drop(rt::task::spawn_local(svc.clone().monitor(timing)));
        drop(rt::task::spawn_local(svc.clone().log_leadership()));
        Ok(svc)
    }

    /// How replica recovery runs, as this controller was started.
    pub fn recovery_settings(&self) -> super::recovery::Settings {
        self.recovery
    }

    /// `dfsReplicationFactor` and `dfsReplicaReliabilityLevel`, as this controller was started.
    pub fn placement_settings(&self) -> (usize, u8) {
        self.placement
    }

    /// Why this controller refuses leader-only work, while it is not the leader:
    /// `<NotLeader>host:port:alias` (the tag the official clients follow) or, when it knows
    /// no leader, `<ControllerNotReady>` (try another controller). `None` on the leader.
    pub fn not_leader_error(&self) -> Option<RemoteError> {
        if self.ctl.is_leader() {
            return None;
        }
        Some(RemoteError::not_leader(self.ctl.leader().map(|(_, a)| a)))
    }

    /// [`ControllerService::not_leader_error`] as the text the API and HTTP answer.
    pub fn not_leader(&self) -> Option<String> {
        self.not_leader_error().map(|e| e.to_string())
    }

    /// Serves one node-RPC connection (its first bytes, `prefix`, already read). Its first
    /// request decides what it is: a pipelined append stream from the leader, which then owns
    /// the connection ([`raft::stream`]), or calls served concurrently ([`rpc::serve_connection`]).
    pub async fn serve_rpc_connection(
        &self,
        mut conn: rt::net::TcpStream,
        prefix: Vec<u8>,
    ) -> Result<(), RpcError> {
        let _ = conn.set_nodelay(true);
        let mut input = rpc::FrameReader::new(prefix);
        let Some(first) = rpc::read_request(&mut conn, &mut input).await? else {
            return Ok(());
        };
        if first.method == raft::net::method::APPEND_STREAM {
            if !self.ctl.admits(first.method) {
                return Err(RpcError::Remote(joining()));
            }
            return raft::stream::serve(&self.ctl.raft, conn, input, first).await;
        }
        let handler = |method: u16, payload: Vec<u8>| self.handle_rpc(method, payload);
        rpc::serve_connection_after(conn, input, Some(first), &handler).await
    }

    /// Serves one RPC call from a peer controller or a node.
    pub async fn handle_rpc(&self, method: u16, payload: Vec<u8>) -> Result<Vec<u8>, RemoteError> {
        if method == raft::net::method::PROBE {
            // The asker has no log: a leader that replicated to it before must start over
            // instead of treating the empty log as a bug (openraft's procedure for a member
            // whose data was removed; a first start has nothing to revert either).
            if let Ok(asker) = raft::net::decode::<raft::NodeId>(&payload) {
                if self.ctl.is_leader() && asker != self.ctl.id {
                    let _ = self
                        .ctl
                        .raft
                        .trigger()
                        .allow_next_revert(&asker, true)
                        .await;
                }
            }
            return Ok(raft::net::encode(&self.ctl.probe()));
        }
        if !self.ctl.admits(method) {
            return Err(joining());
        }
        if let Some(r) = raft::net::serve(&self.ctl.raft, method, &payload).await {
            return r;
        }
        if let Some(r) = self.handle_dfs(method, &payload).await {
            return r;
        }
        match method {
            method::HEARTBEAT => {
                let hb: Heartbeat = decode(&payload)?;
                self.heartbeat(hb).await.map(|()| Vec::new())
            }
            method::CONFIG_LOAD => {
                let controller: bool = decode(&payload)?;
                let lines = self.load_config(which(controller)).await?;
                Ok(rpc::encode_payload(&lines))
            }
            method::CONFIG_SAVE => {
                let (controller, lines): (bool, Vec<String>) = decode(&payload)?;
                self.save_config(which(controller), &lines).await?;
                Ok(rpc::encode_payload(&()))
            }
            method::META_WRITE => {
                let cmd: Command = decode(&payload)?;
                let reply = self.ctl.write(cmd).await?;
                Ok(raft::net::encode(&reply))
            }
            method::META_READ => {
                if let Some(e) = self.not_leader_error() {
                    return Err(e);
                }
                // Linearizable: confirm leadership with a quorum before answering.
                self.ctl
                    .raft
                    .ensure_linearizable(openraft::raft::ReadPolicy::ReadIndex)
                    .await
                    .map_err(|e| {
                        RemoteError::new(ErrorCode::RaftFailed, format!("RAFT-008 {e}"))
                    })?;
                Ok(self.ctl.sm.read(raft::net::encode::<Meta>))
            }
            _ => Err(RemoteError::new(
                ErrorCode::UnknownMethod,
                format!("unknown method {method}"),
            )),
        }
    }

    /// A node's heartbeat, on the leader.
    pub async fn heartbeat(&self, hb: Heartbeat) -> Result<(), RemoteError> {
        if let Some(e) = self.not_leader_error() {
            return Err(e);
        }
        self.heartbeats.set(self.heartbeats.get() + 1);
        let now_ms = rt::time::unix_time_ms();
        let (known, fresh) = self.ctl.sm.read(|m| match m.nodes.get(&hb.alias) {
            None => (false, false),
            Some(e) => (
                e.host == hb.host && e.port == hb.port && e.role == hb.role,
                e.live && e.last_seen_ms + self.node_timeout_ms / 3 > now_ms,
            ),
        });
        if !known {
            self.write(Command::RegisterNode {
                alias: hb.alias.clone(),
                host: hb.host.clone(),
                port: hb.port,
                role: hb.role,
            })
            .await?;
            self.log.info("node_registered", &hb.alias, &[]);
        }
        if !fresh {
            self.write(Command::Heartbeat {
                alias: hb.alias,
                now_ms,
            })
            .await?;
        }
        Ok(())
    }

    async fn write(&self, cmd: Command) -> Result<(), RemoteError> {
        match self.ctl.write(cmd).await? {
            Ok(_) => Ok(()),
            Err(e) => Err(RemoteError::new(ErrorCode::MetaRefused, e.to_string())),
        }
    }

    /// Logs every change of leader or term this controller sees (issue 18: who leads, which
    /// term), and counts them for `GET /metrics`.
    async fn log_leadership(self: Rc<Self>) {
        let mut seen = (None, 0);
        while let Some(now) = self.ctl.next_leadership(seen).await {
            let (leader, term) = now;
            let site = leader
                .and_then(|id| self.ctl.members.get(&id))
                .map(|n| n.addr.clone());
            match &site {
                Some(site) => self.log.info(
                    "leader_changed",
                    &format!("{site} leads term {term}"),
                    &[("leader", site), ("term", &term.to_string())],
                ),
                None => self.log.info(
                    "leader_changed",
                    &format!("no leader known in term {term}"),
                    &[("term", &term.to_string())],
                ),
            }
            self.leader_changes.set(self.leader_changes.get() + 1);
            seen = now;
        }
    }

    /// This controller's part of `GET /metrics`: its Raft member, and the cluster as its
    /// copy of the metadata knows it (every controller applies the same entries).
    pub fn metrics(&self, out: &mut crate::metrics::Exposition) {
        let r = self.ctl.raft_numbers();
        out.gauge(
            "porpoise_raft_term",
            "The Raft term this controller is in.",
            &[],
            r.term as f64,
        );
        for state in ["leader", "follower", "candidate", "learner"] {
            out.gauge(
                "porpoise_raft_state",
                "1 for this controller's Raft state, 0 for the others.",
                &[("state", state)],
                (r.state == state) as u8 as f64,
            );
        }
        out.gauge(
            "porpoise_raft_last_log_index",
            "The last entry in this controller's Raft log.",
            &[],
            r.last_log_index as f64,
        );
        out.gauge(
            "porpoise_raft_commit_index",
            "The last Raft entry known committed.",
            &[],
            r.committed as f64,
        );
        out.gauge(
            "porpoise_raft_applied_index",
            "The last Raft entry applied to the metadata.",
            &[],
            r.applied as f64,
        );
        out.counter(
            "porpoise_raft_leader_changes_total",
            "Changes of leader or term this controller has seen (each is logged as leader_changed).",
            &[],
            self.leader_changes.get() as f64,
        );
        out.counter(
            "porpoise_heartbeats_total",
            "Node heartbeats this controller took as leader.",
            &[],
            self.heartbeats.get() as f64,
        );
        let (nodes, chunks, txns) = self.ctl.sm.read(|m| {
            let mut nodes: BTreeMap<(&'static str, bool), usize> = BTreeMap::new();
            for role in ["agent", "datanode", "computenode"] {
                for up in [true, false] {
                    nodes.insert((role, up), 0);
                }
            }
            for n in m.nodes.values() {
                let role = match n.role {
                    Role::Agent => "agent",
                    Role::DataNode => "datanode",
                    Role::ComputeNode => "computenode",
                    Role::Controller => continue,
                };
                *nodes.entry((role, n.live)).or_default() += 1;
            }
            let open: Vec<&super::meta::Txn> = m
                .txns
                .values()
                .filter(|t| matches!(t.state, TxnState::Begun | TxnState::Prepared))
                .collect();
            let held: std::collections::BTreeSet<u64> = open
                .iter()
                .flat_map(|t| t.chunk_versions.keys().copied())
                .collect();
            let constructing = m.chunks.keys().filter(|c| held.contains(c)).count();
            (
                nodes,
                (m.chunks.len() - constructing, constructing),
                open.len(),
            )
        });
        for ((role, up), n) in nodes {
            out.gauge(
                "porpoise_cluster_nodes",
                "Agents, data and compute nodes by liveness (heartbeats within dfsHeartbeatTimeout).",
                &[("role", role), ("state", if up { "up" } else { "down" })],
                n as f64,
            );
        }
        out.gauge(
            "porpoise_chunks",
            "Chunks by state, as getClusterChunksStatus() shows them.",
            &[("state", "COMPLETE")],
            chunks.0 as f64,
        );
        out.gauge(
            "porpoise_chunks",
            "Chunks by state, as getClusterChunksStatus() shows them.",
            &[("state", "CONSTRUCTING")],
            chunks.1 as f64,
        );
        out.gauge(
            "porpoise_transactions_open",
            "Transactions begun or prepared and not yet decided.",
            &[],
            txns as f64,
        );
        // Replica recovery (issue 17) keeps no tasks yet: a real zero, not a placeholder.
        out.gauge(
            "porpoise_recovery_tasks",
            "Replica recovery tasks in the controllers' state.",
            &[],
            0.0,
        );
    }

    /// The leader's periodic duties: mark quiet nodes down.
    async fn monitor(self: Rc<Self>, timing: RaftTiming) {
        let tick = Duration::from_millis(timing.heartbeat_ms.max(100));
        loop {
            rt::time::sleep(tick).await;
            let now_ms = rt::time::unix_time_ms();
            if !self.ctl.is_leader() {
                self.leader_since_ms.set(None);
                *self.volatile.borrow_mut() = Default::default();
                continue;
            }
            let since = match self.leader_since_ms.get() {
                Some(t) => t,
                None => {
                    self.leader_since_ms.set(Some(now_ms));
                    now_ms
                }
            };
            // Every tick, not once per leadership: a registration refused while the new
            // leader's first entries commit would otherwise leave a node that is not started
            // yet (and so never heartbeats) unknown, and `startDataNode` would refuse it.
            self.register_listed().await;
            self.clone().ask_for_reports();
            self.settle_transactions(since, now_ms).await;
            self.recovery_round(now_ms).await;
            if now_ms < since + self.node_timeout_ms {
                continue;
            }
            let quiet = self.ctl.sm.read(|m| {
                m.nodes
                    .values()
                    .any(|e| e.live && e.last_seen_ms + self.node_timeout_ms < now_ms)
            });
            if quiet {
                let cmd = Command::ExpireNodes {
                    now_ms,
                    timeout_ms: self.node_timeout_ms,
                };
                if let Ok(Ok(super::meta::Applied::Down(down))) = self.ctl.write(cmd).await {
                    for alias in down {
                        self.log.warn("node_down", &alias, &[]);
                        self.node_gone(&alias).await;
                    }
                }
            }
        }
    }

    /// Registers the nodes of cluster.nodes that the metadata does not hold yet (down until
    /// their first heartbeat). Costs a read per listed node when every one is known.
    async fn register_listed(&self) {
        for n in &self.listed {
            let known = self.ctl.sm.read(|m| m.nodes.contains_key(&n.alias));
            if !known {
                let _ = self
                    .write(Command::RegisterNode {
                        alias: n.alias.clone(),
                        host: n.host.clone(),
                        port: n.port,
                        role: n.role,
                    })
                    .await;
            }
        }
    }

    /// Receives UDP heartbeats (`lanCluster=1`) on the controller's own address. A datagram
    /// that is not a well-formed heartbeat frame is dropped.
    pub async fn serve_udp(self: Rc<Self>, addr: std::net::SocketAddr) {
        let sock = match rt::net::UdpSocket::bind(addr).await {
            Ok(s) => s,
            Err(e) => {
                self.log
                    .error("udp_bind_failed", &format!("{addr}: {e}"), &[]);
                return;
            }
        };
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let Ok((n, _from)) = sock.recv_from(&mut buf).await else {
                continue;
            };
            let Ok(frame) = crate::rpc::decode_datagram(&buf[..n]) else {
                continue;
            };
            if frame.method != method::HEARTBEAT || !self.ctl.is_leader() {
                continue;
            }
            if let Ok(hb) = raft::net::decode::<Heartbeat>(&frame.payload) {
                let _ = self.heartbeat(hb).await;
            }
        }
    }

    /// `/raft` as JSON: this controller's view of the group.
    pub fn raft_json(&self) -> String {
        let leader = self.ctl.leader();
        let applied = self.ctl.sm.last_applied().map(|l| l.index);
        format!(
            "{{\"id\":{},\"state\":\"{}\",\"standing\":\"{}\",\"term\":{},\"leader\":{},\"leaderSite\":{},\"lastApplied\":{},\"members\":{},\"transactions\":{}}}",
            self.ctl.id,
            if self.ctl.is_leader() { "leader" } else { "follower" },
            match self.ctl.standing() {
                raft::Standing::Voter => "voter",
                raft::Standing::Deciding => "deciding",
                raft::Standing::CatchingUp => "catchingUp",
            },
            self.ctl.term(),
            leader.as_ref().map(|(id, _)| id.to_string()).unwrap_or_else(|| "null".into()),
            leader
                .map(|(_, a)| format!("\"{a}\""))
                .unwrap_or_else(|| "null".into()),
            applied.map(|i| i.to_string()).unwrap_or_else(|| "null".into()),
            self.ctl.members.len(),
            self.ctl.sm.read(|m| m.txns.len())
        )
    }

    /// `GET /config/nodes`: the nodes configuration (cluster.cfg) as `key=value` lines.
    pub fn nodes_config_text(&self) -> String {
        self.ctl.sm.read(|m| {
            m.nodes_config
                .iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect()
        })
    }

    /// `GET /nodes`: `alias,host,port,role,live` lines.
    pub fn nodes_text(&self) -> String {
        self.ctl.sm.read(|m| {
            m.nodes
                .iter()
                .map(|(a, e)| format!("{a},{},{},{:?},{}\n", e.host, e.port, e.role, e.live))
                .collect()
        })
    }

    /// `POST /config/nodes` with `key=value` lines (an empty value removes the key).
    pub async fn set_nodes_config(&self, body: &str) -> Result<usize, RemoteError> {
        let mut n = 0;
        for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (k, v) = line.split_once('=').ok_or_else(|| {
                RemoteError::new(
                    ErrorCode::BadRequest,
                    format!("CONFIG-LINE '{line}' is not key=value"),
                )
            })?;
            let cmd = if v.trim().is_empty() {
                Command::RemoveConfig {
                    controller: false,
                    key: k.trim().into(),
                }
            } else {
                Command::SetConfig {
                    controller: false,
                    key: k.trim().into(),
                    value: v.trim().into(),
                }
            };
            self.write(cmd).await?;
            n += 1;
        }
        Ok(n)
    }
}

fn which(controller: bool) -> crate::config::edit::Which {
    if controller {
        crate::config::edit::Which::Controller
    } else {
        crate::config::edit::Which::Nodes
    }
}

fn joining() -> RemoteError {
    RemoteError::new(
        ErrorCode::Joining,
        "this controller is joining its group and takes no Raft traffic yet",
    )
}
