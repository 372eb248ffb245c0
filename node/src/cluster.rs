//! The cluster functions' reach (`lang::cluster::Cluster`) for data and compute nodes: the
//! leader's member list (`DfsRead::Members`), each node's own figures (`NODE_PERF`, measured
//! by [`Probe`] from `/proc` and `statvfs`), and calls run on other nodes (`NODE_RUN`).
//!
//! Invariant: a node that does not answer is reported, never invented: its `getClusterPerf`
//! row carries the leader's word on its liveness and zeros for what only it could measure.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use lang::catalog::LocalFuture;
use lang::cluster::{Cluster, NodePerf};
use lang::eval::EvalError;

use crate::dfs_proto::{method, DfsRead, DfsReadReply, Members};
use crate::error::{ErrorCode, RemoteError};
use crate::leader::LeaderClient;
use crate::rpc::{decode_payload, encode_payload, RpcClient, RpcClientConfig};
use crate::script_http::ScriptSessions;

/// A node asked for its figures answers within this long or is shown without them.
const PERF_TIMEOUT: Duration = Duration::from_secs(2);

/// This process's own measures.
pub struct Probe {
    pub node: lang::eval::NodeInfo,
    /// Open connections on the node's port.
    pub connections: Rc<Cell<usize>>,
    pub max_mem_gb: f64,
    pub home: PathBuf,
    /// CPU ticks and wall time (ms) at the last sample.
    last_cpu: Cell<(u64, u64)>,
    /// Query tasks this data node is running (`datanode::query`).
    pub tasks: Rc<Cell<usize>>,
}

impl Probe {
    pub fn new(
        node: lang::eval::NodeInfo,
        max_mem_gb: f64,
        home: PathBuf,
        tasks: Rc<Cell<usize>>,
    ) -> Probe {
        Probe {
            node,
            connections: Rc::new(Cell::new(0)),
            max_mem_gb,
            home,
            last_cpu: Cell::new((cpu_ticks().unwrap_or(0), rt::time::unix_time_ms())),
            tasks,
        }
    }

    /// This node's `getClusterPerf` row now.
    pub fn sample(&self, sessions: Option<&ScriptSessions>) -> NodePerf {
        let n = &self.node;
        let (rss, peak) = memory().unwrap_or((0, 0));
        let now_ms = rt::time::unix_time_ms();
        let ticks = cpu_ticks().unwrap_or(0);
        let (t0, w0) = self.last_cpu.replace((ticks, now_ms));
        // Clock ticks are 1/100 s on Linux: percent of one core over the interval.
        let cpu = if now_ms > w0 {
            (ticks.saturating_sub(t0) as f64 * 10.0) * 100.0 / (now_ms - w0) as f64
        } else {
            0.0
        };
        let jobs: Vec<u64> = sessions
            .map(|s| s.jobs.borrow().values().copied().collect())
            .unwrap_or_default();
        let longest = jobs.iter().map(|s| now_ms.saturating_sub(*s)).max();
        let (cap, free) = disk(&self.home).unwrap_or((0, 0));
        NodePerf {
            name: n.alias.clone(),
            host: n.host.clone(),
            port: n.port,
            mode: n.mode_code,
            state: true,
            agent_site: String::new(),
            max_connections: n.max_connections as i32,
            max_mem_size: self.max_mem_gb,
            worker_num: n.worker_num as i32,
            executor_num: n.worker_num.saturating_sub(1) as i32,
            connection_num: self.connections.get() as i32,
            memory_used: rss as i64,
            memory_alloc: peak as i64,
            cpu_usage: cpu,
            avg_load: load_average().unwrap_or(0.0),
            max_running_query_time: longest.map_or(0, |ms| ms as i64 * 1_000_000),
            running_jobs: jobs.len() as i32,
            // Every script runs as soon as it arrives: nothing waits in a queue.
            queued_jobs: 0,
            running_tasks: self.tasks.get() as i32,
            queued_tasks: 0,
            job_load: jobs.len() as f64 / n.worker_num.max(1) as f64,
            disk_capacity: cap as i64,
            disk_free_space: free as i64,
            disk_free_space_ratio: if cap > 0 {
                free as f64 / cap as f64
            } else {
                0.0
            },
            is_leader: false,
        }
    }
}

impl Probe {
    /// The process's part of `GET /metrics`: what it is, and the resources it uses.
    pub fn metrics(&self, out: &mut crate::metrics::Exposition) {
        let n = &self.node;
        out.gauge(
            "porpoise_node_info",
            "This node: its alias, mode, site and version (always 1).",
            &[
                ("alias", &n.alias),
                ("mode", &n.mode_code.to_string()),
                ("site", &format!("{}:{}", n.host, n.port)),
                ("version", crate::VERSION),
            ],
            1.0,
        );
        let (rss, peak) = memory().unwrap_or((0, 0));
        out.gauge(
            "porpoise_process_resident_memory_bytes",
            "Resident memory of this process.",
            &[],
            rss as f64,
        );
        out.gauge(
            "porpoise_process_resident_memory_peak_bytes",
            "Peak resident memory of this process.",
            &[],
            peak as f64,
        );
        // Clock ticks are 1/100 s on Linux.
        out.counter(
            "porpoise_process_cpu_seconds_total",
            "CPU time this process has used, user and system.",
            &[],
            cpu_ticks().unwrap_or(0) as f64 / 100.0,
        );
        out.gauge(
            "porpoise_connections",
            "Open connections on this node's port.",
            &[],
            self.connections.get() as f64,
        );
        let (cap, free) = disk(&self.home).unwrap_or((0, 0));
        let home = self.home.display().to_string();
        out.gauge(
            "porpoise_disk_capacity_bytes",
            "Capacity of the volume holding the node's home.",
            &[("path", &home)],
            cap as f64,
        );
        out.gauge(
            "porpoise_disk_free_bytes",
            "Free space on the volume holding the node's home.",
            &[("path", &home)],
            free as f64,
        );
    }
}

fn cpu_ticks() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn memory() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = |key: &str| -> Option<u64> {
        let line = s.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
            .map(|k| k * 1024)
    };
    Some((kb("VmRSS:")?, kb("VmHWM:")?))
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn disk(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `s` a properly sized, writable statvfs.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    (r == 0).then(|| {
        let block = s.f_frsize as u64;
        (s.f_blocks as u64 * block, s.f_bavail as u64 * block)
    })
}

/// Serves `NODE_RUN` and `NODE_PERF` on a data or compute node.
pub async fn handle(
    method: u16,
    payload: Vec<u8>,
    sessions: Option<&ScriptSessions>,
    probe: &Probe,
) -> Result<Vec<u8>, RemoteError> {
    let wire = |v: value::Value| -> Result<Vec<u8>, RemoteError> {
        let mut out = Vec::new();
        value::wire::encode(&v, &mut out)
            .map_err(|e| RemoteError::new(ErrorCode::QueryFailed, e.to_string()))?;
        Ok(out)
    };
    match method {
        method::NODE_PERF => {
            let t = lang::cluster::perf_table(&[probe.sample(sessions)]);
            wire(value::Value::Table(Rc::new(t)))
        }
        method::NODE_RUN => {
            let Some(s) = sessions else {
                return Err(RemoteError::new(
                    ErrorCode::UnknownMethod,
                    "this node runs no scripts",
                ));
            };
            let v = s
                .run_call(&payload)
                .await
                .map_err(|e| RemoteError::new(ErrorCode::QueryFailed, e))?;
            wire(lang::wire::to_plain(&v))
        }
        m => Err(RemoteError::new(
            ErrorCode::UnknownMethod,
            format!("unknown method {m}"),
        )),
    }
}

/// A data or compute node's view of the cluster.
pub struct NodeCluster {
    leader: Rc<LeaderClient>,
    probe: Rc<Probe>,
    sessions: RefCell<Option<std::rc::Weak<ScriptSessions>>>,
    clients: RefCell<HashMap<(String, u16), Rc<RpcClient>>>,
}

impl NodeCluster {
    pub fn new(leader: Rc<LeaderClient>, probe: Rc<Probe>) -> NodeCluster {
        NodeCluster {
            leader,
            probe,
            sessions: RefCell::new(None),
            clients: RefCell::new(HashMap::new()),
        }
    }

    /// The node's sessions (for its own row's running jobs).
    pub fn set_sessions(&self, s: &Rc<ScriptSessions>) {
        *self.sessions.borrow_mut() = Some(Rc::downgrade(s));
    }

    fn client(&self, host: &str, port: u16) -> Option<Rc<RpcClient>> {
        let key = (host.to_string(), port);
        if let Some(c) = self.clients.borrow().get(&key) {
            return Some(c.clone());
        }
        let addr = crate::server::resolve_addr(host, port).ok()?;
        let c = Rc::new(RpcClient::new(
            addr,
            RpcClientConfig {
                connect_timeout: PERF_TIMEOUT,
                call_timeout: Duration::from_secs(600),
                inflight_max: 64,
            },
        ));
        self.clients.borrow_mut().insert(key, c.clone());
        Some(c)
    }

    async fn members(&self) -> Result<Members, EvalError> {
        let reply = self
            .leader
            .call(method::DFS_READ, encode_payload(&DfsRead::Members))
            .await
            .map_err(|e| EvalError::msg(e.to_string()))?;
        match decode_payload::<DfsReadReply>(&reply) {
            Ok(DfsReadReply::Members(m)) => Ok(m),
            _ => Err(EvalError::msg("a bad controller reply")),
        }
    }

    async fn remote_perf(&self, host: &str, port: u16) -> Option<NodePerf> {
        let c = self.client(host, port)?;
        let call = c.call(method::NODE_PERF, Vec::new());
        let timeout = rt::time::sleep(PERF_TIMEOUT);
        let b = futures_util::future::select(Box::pin(call), Box::pin(timeout));
        let bytes = match b.await {
            futures_util::future::Either::Left((Ok(b), _)) => b,
            _ => return None,
        };
        let (v, _) = value::wire::decode(&bytes).ok()?;
        let value::Value::Table(t) = v else {
            return None;
        };
        lang::cluster::perf_rows(&t).ok()?.into_iter().next()
    }
}

impl Cluster for NodeCluster {
    fn perf(&self, controllers: bool) -> LocalFuture<'_, Result<Vec<NodePerf>, EvalError>> {
        Box::pin(async move {
            let m = self.members().await?;
            let me = self.probe.node.alias.clone();
            let asked = m.nodes.iter().map(|(alias, host, port, mode, live)| {
                let me = me.clone();
                async move {
                    let base = NodePerf {
                        name: alias.clone(),
                        host: host.clone(),
                        port: *port,
                        mode: *mode,
                        state: *live,
                        ..NodePerf::default()
                    };
                    if *alias == me {
                        let s = self.sessions.borrow().as_ref().and_then(|w| w.upgrade());
                        return self.probe.sample(s.as_deref());
                    }
                    // A node the leader thinks down is not asked (agents answer too, D97).
                    if !*live {
                        return base;
                    }
                    match self.remote_perf(host, *port).await {
                        Some(mut p) => {
                            p.state = true;
                            p
                        }
                        None => base,
                    }
                }
            });
            let mut rows: Vec<NodePerf> = futures_util::future::join_all(asked).await;
            if controllers {
                // Each controller as the leader sees it (live: acknowledging its heartbeats).
                rows.extend(
                    m.controllers
                        .into_iter()
                        .map(|(name, host, port, live, leads)| NodePerf {
                            name,
                            host,
                            port,
                            mode: 2,
                            state: live,
                            is_leader: leads,
                            ..NodePerf::default()
                        }),
                );
            }
            Ok(rows)
        })
    }

    fn run_on<'a>(
        &'a self,
        alias: &'a str,
        call: Vec<u8>,
    ) -> LocalFuture<'a, Result<value::Value, EvalError>> {
        Box::pin(async move {
            let m = self.members().await?;
            let Some((_, host, port, mode, live)) = m.nodes.iter().find(|n| n.0 == alias) else {
                return Err(EvalError::msg(format!(
                    "<DataNodeNotAvail>{alias} is not a node of this cluster"
                )));
            };
            if !matches!(mode, 0 | 4) {
                return Err(EvalError::msg(format!(
                    "{alias} runs no scripts: rpc reaches data and compute nodes"
                )));
            }
            if !live {
                return Err(EvalError::msg(format!(
                    "<DataNodeNotAvail>node {alias} is not available"
                )));
            }
            let c = self
                .client(host, *port)
                .ok_or_else(|| EvalError::msg(format!("{alias}: the address does not resolve")))?;
            let bytes = c.call(method::NODE_RUN, call).await.map_err(|e| match e {
                crate::rpc::RpcError::Remote(r) => EvalError::msg(r.message),
                e => EvalError::msg(format!("<DataNodeNotAvail>rpc to {alias} failed: {e}")),
            })?;
            value::wire::decode(&bytes)
                .map(|(v, _)| v)
                .map_err(|e| EvalError::msg(format!("a bad answer from {alias}: {e}")))
        })
    }

    fn active_master(&self) -> LocalFuture<'_, Result<String, EvalError>> {
        Box::pin(async move { Ok(self.members().await?.leader.0) })
    }

    fn start_nodes<'a>(
        &'a self,
        nodes: &'a [String],
        start: bool,
    ) -> LocalFuture<'a, Result<(), EvalError>> {
        Box::pin(async move {
            let m = self.members().await?;
            for name in nodes {
                // An alias, or "host:port": DolphinDB's docs show the one, its web sends the other.
                let (alias, host, port, mode, _) = m
                    .nodes
                    .iter()
                    .find(|(a, h, p, mode, _)| {
                        (a == name || format!("{h}:{p}") == *name) && matches!(mode, 0 | 4)
                    })
                    .ok_or_else(|| {
                        EvalError::msg(format!(
                            "{name} is not a data or compute node of this cluster"
                        ))
                    })?;
                let (agent, ahost, aport, _, live) = m
                    .nodes
                    .iter()
                    .find(|(_, h, _, mode, _)| *mode == 1 && h == host)
                    .ok_or_else(|| {
                        EvalError::msg(format!("no agent serves {alias}'s host {host}"))
                    })?;
                if !live {
                    return Err(EvalError::msg(format!(
                        "{agent}, the agent of {alias}'s host, is not running: start it first (startagent.sh)"
                    )));
                }
                let c = self
                    .client(ahost, *aport)
                    .ok_or_else(|| EvalError::msg(format!("{agent}'s address does not resolve")))?;
                let (method, payload) = if start {
                    let cmd = crate::agent::NodeCommand {
                        site: format!("{host}:{port}:{alias}"),
                        mode: if *mode == 4 {
                            "computenode"
                        } else {
                            "datanode"
                        }
                        .into(),
                    };
                    (method::NODE_START, encode_payload(&cmd))
                } else {
                    (method::NODE_STOP, encode_payload(alias))
                };
                c.call(method, payload).await.map_err(|e| {
                    EvalError::msg(format!(
                        "{agent} could not {} {alias}: {e}",
                        if start { "start" } else { "stop" }
                    ))
                })?;
            }
            Ok(())
        })
    }

    fn load_config(&self, controller: bool) -> LocalFuture<'_, Result<Vec<String>, EvalError>> {
        Box::pin(async move {
            let bytes = self
                .leader
                .call(
                    crate::controller::service::method::CONFIG_LOAD,
                    encode_payload(&controller),
                )
                .await
                .map_err(|e| EvalError::msg(e.message))?;
            decode_payload(&bytes).map_err(|e| EvalError::msg(format!("a bad answer: {e}")))
        })
    }

    fn save_config<'a>(
        &'a self,
        controller: bool,
        lines: &'a [String],
    ) -> LocalFuture<'a, Result<(), EvalError>> {
        Box::pin(async move {
            self.leader
                .call(
                    crate::controller::service::method::CONFIG_SAVE,
                    encode_payload(&(controller, lines)),
                )
                .await
                .map_err(|e| EvalError::msg(e.message))?;
            Ok(())
        })
    }
}
