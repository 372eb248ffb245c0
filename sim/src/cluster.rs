//! A simulated cluster built from a `cluster.nodes`: one host per IP, every node on it started
//! through the real start-up path (configuration resolution, bind on localSite, serve).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use node::config::{self, ConfigFile, Entry, Mode, NodesFile, Site, Source};
use node::controller::raft::RaftTiming;
use node::controller::service::ControllerService;
use node::log::Logger;
use rt::net::TcpStream;
use rt::sim::{Host, World};

use crate::addr::sim_ip;

/// Home directory of every simulated node (on its host's SimDisk).
pub const SIM_HOME: &str = "/porpoise/data";

/// An event log with virtual timestamps: what determinism checks compare.
#[derive(Clone, Default)]
pub struct Trace {
    events: Rc<RefCell<Vec<String>>>,
}

impl Trace {
    /// Records `what` at the current virtual time.
    pub fn record(&self, what: impl Into<String>) {
        let t = rt::time::unix_time_ms();
        self.events
            .borrow_mut()
            .push(format!("{t} {}", what.into()));
    }

    /// Everything recorded so far.
    pub fn events(&self) -> Vec<String> {
        self.events.borrow().clone()
    }
}

/// One node as the simulation sees it.
#[derive(Debug, Clone)]
pub struct SimNode {
    pub site: Site,
    pub mode: Mode,
    /// The node's address inside the simulation.
    pub addr: SocketAddr,
}

/// The cluster: hosts by IP, and the nodes of `cluster.nodes` with simulated addresses.
pub struct SimCluster {
    pub world: World,
    pub hosts: BTreeMap<IpAddr, Host>,
    pub nodes: Vec<SimNode>,
    pub trace: Trace,
}

/// Parses `cluster.nodes` text and maps every host to its simulated address.
pub fn sim_nodes(nodes_text: &str) -> Result<(NodesFile, Vec<SimNode>), String> {
    let nodes = config::nodes::parse(Source::File("cluster.nodes".into()), nodes_text)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for n in &nodes.nodes {
        let ip = sim_ip(&n.site.host)
            .ok_or_else(|| format!("host '{}' is not an IP address", n.site.host))?;
        let mut site = n.site.clone();
        site.host = ip.to_string();
        out.push(SimNode {
            site,
            mode: n.mode,
            addr: SocketAddr::new(ip, n.site.port),
        });
    }
    Ok((nodes, out))
}

/// How the simulated cluster's nodes are configured beyond cluster.nodes.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub timing: RaftTiming,
    /// `nodeHeartbeatTimeout` of the controllers.
    pub node_timeout_ms: u64,
    /// `heartbeatInterval` of the other nodes.
    pub heartbeat_interval_ms: u64,
    /// `lanCluster`: heartbeats over UDP (true) or TCP (false).
    pub lan_cluster: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timing: RaftTiming::default(),
            node_timeout_ms: 4_000,
            heartbeat_interval_ms: 500,
            lan_cluster: false,
        }
    }
}

/// What every node of the cluster is started with.
#[derive(Debug, Clone)]
pub struct NodeCtx {
    /// cluster.nodes with simulated addresses.
    pub nodes_text: String,
    pub controllers: Vec<Site>,
    pub opts: Options,
}

thread_local! {
    /// `(term, controller id)` each time a controller became leader; see [`leaders_elected`].
    static BECAME_LEADER: RefCell<Vec<(u64, u64, u64)>> = const { RefCell::new(Vec::new()) };
    /// `(alias, error)` of every node whose start-up refused (a damaged file), in order.
    static REFUSED: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
    /// controller id → index of the newest snapshot it holds (built or installed).
    static SNAPSHOTS: RefCell<BTreeMap<u64, u64>> = const { RefCell::new(BTreeMap::new()) };
}

/// The newest snapshot index each controller has held since the last [`reset_observations`].
pub fn snapshots_held() -> BTreeMap<u64, u64> {
    SNAPSHOTS.with(|s| s.borrow().clone())
}

/// Every `(term, controller id, virtual ms)` at which a controller became leader since the last
/// [`reset_observations`] (the simulation is single-threaded, so one list serves all hosts).
pub fn leaders_elected() -> Vec<(u64, u64, u64)> {
    BECAME_LEADER.with(|l| l.borrow().clone())
}

/// Every `(alias, error)` of a node that refused to start since the last
/// [`reset_observations`]: the process would have exited with that error.
pub fn refused_starts() -> Vec<(String, String)> {
    REFUSED.with(|r| r.borrow().clone())
}

/// [`crate::invariants::one_leader_per_term`] over every leadership observed so far.
pub fn check_one_leader_per_term() -> Result<(), String> {
    let seen: Vec<(u64, u64)> = leaders_elected()
        .iter()
        .map(|(t, id, _)| (*t, *id))
        .collect();
    crate::invariants::one_leader_per_term::check(&seen)
}

/// Waits (on `client`) until the controller at `addr` reports `"standing":"voter"` on
/// `GET /raft`, at most `wait`; whether it did.
pub async fn wait_voter(client: &Host, addr: SocketAddr, wait: Duration) -> bool {
    client
        .spawn(async move {
            let deadline = rt::time::now() + wait;
            while rt::time::now() < deadline {
                let raft = http_get(addr, "/raft", Duration::from_secs(1)).await;
                if raft.is_ok_and(|r| r.contains("\"standing\":\"voter\"")) {
                    return true;
                }
                rt::time::sleep(Duration::from_millis(200)).await;
            }
            false
        })
        .await
        .expect("the client host runs")
}

/// Forgets what earlier scenarios observed.
pub fn reset_observations() {
    REFUSED.with(|r| r.borrow_mut().clear());
    BECAME_LEADER.with(|l| l.borrow_mut().clear());
    SNAPSHOTS.with(|s| s.borrow_mut().clear());
}

/// Records every term in which `svc` becomes leader, from its own Raft metrics.
async fn observe(svc: Rc<ControllerService>) {
    use openraft::async_runtime::WatchReceiver;
    let mut rx = svc.ctl.raft.metrics();
    let mut last = None;
    loop {
        let now = {
            let m = rx.borrow_watched();
            if let Some(snap) = &m.snapshot {
                SNAPSHOTS.with(|s| {
                    let mut s = s.borrow_mut();
                    let e = s.entry(m.id).or_default();
                    *e = (*e).max(snap.index);
                });
            }
            (m.state == openraft::ServerState::Leader).then_some((m.current_term, m.id))
        };
        if let Some((term, id)) = now {
            if last != Some(term) {
                last = Some(term);
                BECAME_LEADER.with(|l| l.borrow_mut().push((term, id, rt::time::unix_time_ms())));
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Starts one node the way `porpoise -mode <mode> -localSite <site> -home /porpoise/data` does:
/// resolve, bind, start its role (a controller's Raft member, another node's heartbeats),
/// serve. Returns when the node stops (never, unless start-up fails).
pub async fn run_node(site: Site, mode: Mode, ctx: NodeCtx) {
    let arg = |key: &str, value: String| Entry {
        alias_pattern: None,
        key: key.into(),
        value,
        line: 0,
    };
    let mut entries = vec![
        arg("mode", mode.as_str().into()),
        arg("localSite", site.to_string()),
        arg("lanCluster", ctx.opts.lan_cluster.to_string()),
        // Every node syncs before it acknowledges, as the tutorial's configuration asks: a
        // simulated kill loses unsynced writes as a power loss would.
        arg("dataSync", "1".into()),
    ];
    if mode == Mode::Controller {
        entries.push(arg("dfsHAMode", "Raft".into()));
        entries.push(arg(
            "nodeHeartbeatTimeout",
            ctx.opts.node_timeout_ms.to_string(),
        ));
    } else if let Some(first) = ctx.controllers.first() {
        entries.push(arg("controllerSite", first.to_string()));
        let sites: Vec<String> = ctx
            .controllers
            .iter()
            .map(|c| format!("{c}:controller"))
            .collect();
        entries.push(arg("sites", sites.join(",")));
        entries.push(arg(
            "heartbeatInterval",
            ctx.opts.heartbeat_interval_ms.to_string(),
        ));
    }
    let cmdline = ConfigFile {
        source: Source::CommandLine,
        entries,
    };
    let settings = match config::resolve(Path::new(SIM_HOME), &[cmdline]) {
        Ok(s) => Rc::new(s),
        Err(e) => panic!("simulated node {site} has an invalid configuration: {e}"),
    };
    let nodes = config::nodes::parse(Source::File("cluster.nodes".into()), &ctx.nodes_text)
        .expect("simulated cluster.nodes");
    let log = Logger::silent(settings.alias());
    let opts = node::start::StartOptions {
        timing: ctx.opts.timing,
        on_controller: Some(Box::new(|c: &Rc<ControllerService>| {
            drop(rt::task::spawn_local(observe(c.clone())))
        })),
        ..Default::default()
    };
    match node::start::start(settings, Some(&nodes), log, opts).await {
        Ok(()) => {}
        Err(e @ node::start::StartError::Bind(_)) => {
            panic!("simulated node {site} could not start: {e}")
        }
        Err(e) => {
            // The process would exit: record why and stop this node (the scenario decides
            // whether that was the right answer).
            REFUSED.with(|r| r.borrow_mut().push((site.alias.clone(), e.to_string())));
        }
    }
}

impl SimCluster {
    /// Builds the world of `nodes_text`: one host per IP running its nodes.
    pub fn start(world: &World, nodes_text: &str) -> SimCluster {
        Self::start_with(world, nodes_text, Options::default())
    }

    /// Like [`SimCluster::start`], with explicit options.
    pub fn start_with(world: &World, nodes_text: &str, opts: Options) -> SimCluster {
        let (_, nodes) = sim_nodes(nodes_text).expect("valid cluster.nodes");
        let mut sim_text = String::from("localSite,mode\n");
        for n in &nodes {
            sim_text.push_str(&format!("{},{}\n", n.site, n.mode.as_str()));
        }
        let ctx = NodeCtx {
            nodes_text: sim_text,
            controllers: nodes
                .iter()
                .filter(|n| n.mode == Mode::Controller)
                .map(|n| n.site.clone())
                .collect(),
            opts,
        };
        let mut by_ip: BTreeMap<IpAddr, Vec<SimNode>> = BTreeMap::new();
        for n in &nodes {
            by_ip.entry(n.addr.ip()).or_default().push(n.clone());
        }
        let mut hosts = BTreeMap::new();
        for (ip, host_nodes) in by_ip {
            let ctx = ctx.clone();
            let name = format!("host-{ip}");
            let host = world.create_host(&name, ip, move || {
                let host_nodes = host_nodes.clone();
                let ctx = ctx.clone();
                async move {
                    let tasks: Vec<_> = host_nodes
                        .into_iter()
                        .map(|n| rt::task::spawn_local(run_node(n.site, n.mode, ctx.clone())))
                        .collect();
                    for t in tasks {
                        let _ = t.await;
                    }
                }
            });
            hosts.insert(ip, host);
        }
        SimCluster {
            world: world.clone(),
            hosts,
            nodes,
            trace: Trace::default(),
        }
    }

    /// The node with `alias`.
    pub fn node(&self, alias: &str) -> &SimNode {
        self.nodes
            .iter()
            .find(|n| n.site.alias == alias)
            .unwrap_or_else(|| panic!("no node {alias}"))
    }

    /// The host a node runs on.
    pub fn host_of(&self, alias: &str) -> &Host {
        &self.hosts[&self.node(alias).addr.ip()]
    }
}

/// `GET path` over `rt` TCP; returns the response text.
pub async fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr, timeout).await?;
    s.set_read_timeout(Some(timeout));
    s.set_write_timeout(Some(timeout));
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: sim\r\n\r\n").as_bytes())
        .await?;
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() > 64 * 1024 {
            return Err(std::io::Error::other("response too large"));
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `POST path` with `body` over `rt` TCP; returns the response body (after the head).
pub async fn http_post(
    addr: SocketAddr,
    path: &str,
    body: &str,
    timeout: Duration,
) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr, timeout).await?;
    s.set_read_timeout(Some(timeout));
    s.set_write_timeout(Some(timeout));
    s.write_all(
        format!(
            "POST {path} HTTP/1.1\r\nHost: sim\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() > 4 << 20 {
            return Err(std::io::Error::other("response too large"));
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    match text.split_once("\r\n\r\n") {
        Some((_, body)) => Ok(body.to_string()),
        None => Err(std::io::Error::other("no HTTP response")),
    }
}
