//! A simulated cluster built from a `cluster.nodes`: one host per IP, every node on it started
//! through the real start-up path (configuration resolution, bind on localSite, serve).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use node::config::{self, ConfigFile, Entry, Mode, NodesFile, Site, Source};
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

/// Starts one node the way `porpoise -mode <mode> -localSite <site> -home /porpoise/data` does:
/// resolve, bind, serve. Returns when the node stops (never, unless binding fails).
/// Agents, data and compute nodes are pointed at `controller` (`-controllerSite`).
pub async fn run_node(site: Site, mode: Mode, controller: Option<Site>) {
    let arg = |key: &str, value: String| Entry {
        alias_pattern: None,
        key: key.into(),
        value,
        line: 0,
    };
    let mut entries = vec![
        arg("mode", mode.as_str().into()),
        arg("localSite", site.to_string()),
    ];
    if let (Some(c), false) = (controller, mode == Mode::Controller) {
        entries.push(arg("controllerSite", c.to_string()));
    }
    let cmdline = ConfigFile {
        source: Source::CommandLine,
        entries,
    };
    let settings = match config::resolve(Path::new(SIM_HOME), &[cmdline]) {
        Ok(s) => s,
        Err(e) => panic!("simulated node {site} has an invalid configuration: {e}"),
    };
    let log = Logger::silent(settings.alias());
    match node::server::bind(&settings).await {
        Ok(listener) => {
            node::server::serve(listener, Rc::new(settings), log, None, None, None).await
        }
        Err(e) => panic!("simulated node {site} could not start: {e}"),
    }
}

impl SimCluster {
    /// Builds the world of `nodes_text`: one host per IP running its nodes.
    pub fn start(world: &World, nodes_text: &str) -> SimCluster {
        let (_, nodes) = sim_nodes(nodes_text).expect("valid cluster.nodes");
        let mut by_ip: BTreeMap<IpAddr, Vec<SimNode>> = BTreeMap::new();
        for n in &nodes {
            by_ip.entry(n.addr.ip()).or_default().push(n.clone());
        }
        let controller = nodes
            .iter()
            .find(|n| n.mode == Mode::Controller)
            .map(|n| n.site.clone());
        let mut hosts = BTreeMap::new();
        for (ip, host_nodes) in by_ip {
            let controller = controller.clone();
            let name = format!("host-{ip}");
            let host = world.create_host(&name, ip, move || {
                let host_nodes = host_nodes.clone();
                let controller = controller.clone();
                async move {
                    let tasks: Vec<_> = host_nodes
                        .into_iter()
                        .map(|n| {
                            rt::task::spawn_local(run_node(n.site, n.mode, controller.clone()))
                        })
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
