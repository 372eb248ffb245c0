//! The node's one port: HTTP (web UI and JSON API) and DolphinDB's binary API protocol, told
//! apart by the first bytes of a connection, as DolphinDB does.
//!
//! HTTP today: `GET /health` and `GET /metrics` (Prometheus' text format, `crate::metrics`) on
//! every node, and `POST /api/execute` (DolphinDB script, see
//! [`crate::script_http`]) on single, data and compute nodes. Binary API clients are told
//! clearly that their protocol is not served yet. Scripts run on the connection's shard, so a
//! long script holds that shard until it finishes; worker threads (`workerNum`) come with DFS.
//!
//! Invariants: at most `maxConnections` connections are served at once (more are closed at
//! once); a request head is at most [`HTTP_HEAD_BYTES_MAX`]; a silent peer is dropped after
//! [`IDLE_TIMEOUT`]; anything a peer sends can close only that peer's connection.

use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::Duration;

use rt::net::{TcpListener, TcpStream};

use crate::config::Settings;
use crate::controller::service::ControllerService;
use crate::log::Logger;
use crate::script_http::{json_str, ScriptSessions};

/// Largest script accepted by `POST /api/execute`.
pub const SCRIPT_BYTES_MAX: usize = 16 << 20;

/// Largest HTTP request head accepted.
pub const HTTP_HEAD_BYTES_MAX: usize = 16 * 1024;
/// How long a connection may stay silent.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("NODE-001 cannot resolve localSite host '{host}': {reason}")]
    Resolve { host: String, reason: String },
    /// The tutorial's FAQ: "Failed to bind the socket on port 8800 with error code 98".
    #[error("NODE-002 Failed to bind the socket on port {port} with error code {code} ({addr}: {reason}). {hint}")]
    Bind {
        addr: SocketAddr,
        port: u16,
        code: i32,
        reason: String,
        hint: String,
    },
}

/// Resolves the `host:port` of localSite to one socket address (IPv4 preferred).
pub fn resolve_addr(host: &str, port: u16) -> Result<SocketAddr, ServeError> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| ServeError::Resolve {
            host: host.to_string(),
            reason: e.to_string(),
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| ServeError::Resolve {
            host: host.to_string(),
            reason: "no address".into(),
        })
}

/// Binds the node's port on its localSite address.
/// How long a node waits for its port to be released before reporting it as taken.
pub const BIND_RETRY_MS: u64 = 3000;

pub async fn bind(settings: &Settings) -> Result<TcpListener, ServeError> {
    let site = settings.site();
    let addr = resolve_addr(&site.host, site.port)?;
    // A node killed a moment ago can still hold its port: its io_uring instance is torn down
    // by the kernel after the process is gone, and the listening socket with it. Retry for a
    // short while before reporting the port as taken (a live process keeps it, and then the
    // FAQ's message appears after BIND_RETRY_MS).
    let deadline = rt::time::now() + Duration::from_millis(BIND_RETRY_MS);
    let bound = loop {
        match TcpListener::bind(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && rt::time::now() < deadline => {
                rt::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other,
        }
    };
    bound.map_err(|e| {
        let code = e.raw_os_error().unwrap_or(0);
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => format!(
                "Another process is using {addr}: stop it, or give {} another port in localSite",
                site.alias
            ),
            std::io::ErrorKind::AddrNotAvailable => format!(
                "{} is not an address of this host: fix the ip in localSite of {}",
                addr.ip(),
                site.alias
            ),
            _ => "Check localSite and the host's network configuration".into(),
        };
        ServeError::Bind {
            addr,
            port: site.port,
            code,
            reason: e.to_string(),
            hint,
        }
    })
}

/// Decoded segment spans a node keeps, all shards together: shard 0's engine and each worker
/// shard (`crate::workers`) hold an equal share, so a node's memory for them does not grow
/// with its cores, and one shard or many cache the same amount.
pub const SPAN_CACHE_BYTES: usize = 512 << 20;

/// The span cache of each of a node's `shards` shards.
pub fn span_cache_share(shards: usize) -> usize {
    SPAN_CACHE_BYTES / shards.max(1)
}

/// Opens a node's storage engine on its volumes, as its settings say.
pub async fn open_engine(settings: &Settings) -> Result<storage::Engine, String> {
    let node_dir = storage::layout::node_dir(settings.home(), settings.alias());
    let cfg = storage::EngineConfig {
        volumes: settings.volumes(),
        meta_dir: settings.chunk_meta_dir(),
        redo_dir: node_dir.join("redoLog"),
        cache_bytes_max: settings.olap_cache_engine_bytes().max(64 << 20),
        data_sync: settings.data_sync(),
        redo_write_through: true,
        block_rows: 65_536,
        // One shard per `workerNum` (main.rs): shard 0's share.
        span_cache_bytes_max: span_cache_share(settings.worker_num()),
    };
    storage::Engine::open(cfg).await.map_err(|e| e.to_string())
}

/// Runs the `-script` file before the node takes connections; an error is logged with the
/// file, line and column, and the node starts anyway (as DolphinDB does).
async fn run_startup_script(path: &std::path::Path, sessions: &ScriptSessions, log: &Logger) {
    let file = path.display().to_string();
    let src = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            log.warn("script_unreadable", &format!("{file}: {e}"), &[]);
            return;
        }
    };
    let (output, result) = sessions.run_startup(&src).await;
    for line in output {
        log.info("script_print", &line, &[("file", &file)]);
    }
    match result {
        Ok(()) => log.info("script_done", &format!("ran start-up script {file}"), &[]),
        Err(e) => log.error("script_failed", &format!("{file}: {e}"), &[("file", &file)]),
    }
}

/// Starts what a node runs besides serving its port: the Raft member on a controller (which
/// is returned, to serve its RPC, API gate and HTTP), heartbeats to the leader elsewhere.
pub async fn start_role(
    settings: &Rc<Settings>,
    nodes: Option<&crate::config::NodesFile>,
    log: &Logger,
    timing: crate::controller::raft::RaftTiming,
) -> Result<Option<Rc<ControllerService>>, String> {
    use crate::config::Mode;
    match settings.mode() {
        Mode::Controller => {
            let nodes = nodes.ok_or("a controller needs cluster.nodes")?;
            let svc = ControllerService::start(settings, nodes, log.clone(), timing).await?;
            if settings.lan_cluster() {
                let addr = resolve_addr(&settings.site().host, settings.site().port)
                    .map_err(|e| e.to_string())?;
                drop(rt::task::spawn_local(svc.clone().serve_udp(addr)));
            }
            Ok(Some(svc))
        }
        Mode::Agent | Mode::DataNode | Mode::ComputeNode => {
            drop(rt::task::spawn_local(crate::heartbeat::run(
                settings.clone(),
                log.clone(),
            )));
            Ok(None)
        }
        Mode::Single => Ok(None),
    }
}

/// The HTTP status of a refusal, by what the caller can do about it: 421 Misdirected Request
/// names the leader (as the API's `<NotLeader>` does), 503 asks to try another node or later.
fn http_status(e: &crate::error::RemoteError) -> u16 {
    match e.retry() {
        crate::error::Retry::Redirect => 421,
        crate::error::Retry::OtherNode | crate::error::Retry::Later => 503,
        crate::error::Retry::Never => 400,
    }
}

/// Serves connections on `listener` forever.
/// `dfs` serves `dfs://` databases on this node (single mode) when given.
pub async fn serve(
    listener: TcpListener,
    settings: Rc<Settings>,
    log: Logger,
    dfs: Option<Rc<dyn lang::catalog::Catalog>>,
    startup: Option<std::path::PathBuf>,
    controller: Option<Rc<ControllerService>>,
    datanode: Option<Rc<crate::datanode::DataNodeService>>,
) {
    use crate::config::Mode;
    // Script sessions live on nodes that run user scripts; controllers and agents do not.
    let node = lang::eval::NodeInfo {
        alias: settings.alias().to_string(),
        host: settings.site().host.clone(),
        port: settings.site().port,
        // getClusterPerf's and getNodeType's codes: 0 data node (a single node serves as one),
        // 1 agent, 2 controller, 4 compute node.
        mode_code: match settings.mode() {
            Mode::ComputeNode => 4,
            Mode::Controller => 2,
            Mode::Agent => 1,
            Mode::DataNode | Mode::Single => 0,
        },
        controller_alias: settings
            .controller_site()
            .map(|c| c.alias)
            .unwrap_or_default(),
        max_connections: settings.max_connections(),
        worker_num: settings.worker_num(),
        log_file: log.path().map(|p| p.to_path_buf()),
    };
    // Data and compute nodes reach the rest of the cluster (rpc, pnodeRun, getClusterPerf).
    let probe = Rc::new(crate::cluster::Probe::new(
        node.clone(),
        settings
            .max_mem_bytes()
            .map_or(0.0, |b| b as f64 / (1u64 << 30) as f64),
        settings.home().to_path_buf(),
        datanode
            .as_ref()
            .map(|d| d.tasks.clone())
            .unwrap_or_default(),
    ));
    let controllers = match settings.mode() {
        Mode::DataNode | Mode::ComputeNode => Some(crate::heartbeat::controller_addrs(&settings)),
        // A controller's cluster functions (`getClusterPerf(true)`, `startDataNode`) ask its
        // group's leader, as any node's do.
        Mode::Controller => controller.as_ref().map(|c| {
            c.ctl
                .members
                .values()
                .filter_map(|n| {
                    let site = crate::config::Site::parse(&n.addr).ok()?;
                    resolve_addr(&site.host, site.port).ok()
                })
                .collect()
        }),
        _ => None,
    };
    let cluster_impl = controllers.map(|addrs| {
        Rc::new(crate::cluster::NodeCluster::new(
            Rc::new(crate::leader::LeaderClient::new(addrs)),
            probe.clone(),
        ))
    });
    let cluster: Option<Rc<dyn lang::cluster::Cluster>> = cluster_impl
        .clone()
        .map(|c| c as Rc<dyn lang::cluster::Cluster>);
    // Controllers run scripts too (on the leader; followers answer <NotLeader>).
    let scripts = if matches!(
        settings.mode(),
        Mode::Single | Mode::DataNode | Mode::ComputeNode | Mode::Controller
    ) {
        // Single nodes keep their accounts beside the DFS metadata; a cluster's accounts will
        // live in the controllers' Raft state, so data and compute nodes use the defaults.
        let mut sessions = ScriptSessions::new(node.clone(), dfs);
        if let Some(c) = &cluster {
            sessions = sessions.with_cluster(c.clone());
        }
        if settings.mode() == Mode::Single {
            match lang::users::Users::open(settings.dfs_meta_dir().join("users")).await {
                Ok(u) => sessions = sessions.with_users(Rc::new(u)),
                Err(e) => {
                    log.error(
                        "users_unreadable",
                        &format!("{e}; no login is possible until the file is repaired"),
                        &[],
                    );
                    sessions = sessions.with_users(Rc::new(lang::users::Users::locked()));
                }
            }
        }
        Some(Rc::new(sessions))
    } else {
        None
    };
    if let (Some(path), Some(sessions)) = (&startup, &scripts) {
        run_startup_script(path, sessions, &log).await;
    }
    if let (Some(c), Some(s)) = (&cluster_impl, &scripts) {
        c.set_sessions(s);
    }
    // An agent starts and stops its host's data and compute nodes (`crate::agent`).
    let agent = (settings.mode() == Mode::Agent).then(|| {
        let controller = settings
            .controller_site()
            .map(|c| c.to_string())
            .unwrap_or_default();
        Rc::new(crate::agent::Agent::new(&settings.site().host, &controller))
    });
    if let Some(a) = &agent {
        // Children that exit on their own are reaped within a second.
        let a = Rc::downgrade(a);
        drop(rt::task::spawn_local(async move {
            while let Some(a) = a.upgrade() {
                a.reap();
                drop(a);
                rt::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }
    let active = probe.connections.clone();
    let limit = settings.max_connections();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                log.warn("accept_failed", &e.to_string(), &[]);
                rt::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if active.get() >= limit {
            log.warn(
                "connection_refused",
                "maxConnections reached",
                &[("peer", &peer.to_string())],
            );
            drop(stream);
            continue;
        }
        active.set(active.get() + 1);
        let (active, settings, log, scripts, controller, datanode, probe, agent) = (
            active.clone(),
            settings.clone(),
            log.clone(),
            scripts.clone(),
            controller.clone(),
            datanode.clone(),
            probe.clone(),
            agent.clone(),
        );
        drop(rt::task::spawn_local(async move {
            let roles = Roles {
                scripts: scripts.as_deref(),
                agent: agent.as_deref(),
                controller: controller.as_deref(),
                datanode: datanode.as_deref(),
                probe: &probe,
            };
            if let Err(e) = handle(stream, &settings, roles).await {
                log.event(
                    crate::log::Level::Debug,
                    "connection_closed",
                    &e.to_string(),
                    &[("peer", &peer.to_string())],
                );
            }
            active.set(active.get() - 1);
        }));
    }
}

/// What a node serves on its port besides HTTP basics.
#[derive(Clone, Copy)]
struct Roles<'a> {
    scripts: Option<&'a ScriptSessions>,
    agent: Option<&'a crate::agent::Agent>,
    controller: Option<&'a ControllerService>,
    datanode: Option<&'a crate::datanode::DataNodeService>,
    probe: &'a crate::cluster::Probe,
}

async fn handle(mut s: TcpStream, settings: &Settings, roles: Roles<'_>) -> std::io::Result<()> {
    let Roles {
        scripts,
        agent,
        controller,
        datanode,
        probe,
    } = roles;
    s.set_read_timeout(Some(IDLE_TIMEOUT));
    s.set_write_timeout(Some(IDLE_TIMEOUT));
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() < 4 && b"PRPC".starts_with(&head) {
            continue;
        }
        if head.starts_with(b"PRPC") {
            // Node RPC: a controller's (Raft, heartbeats, metadata) or a data node's (2PC,
            // chunk reads).
            s.set_read_timeout(None);
            if controller.is_none() {
                // A data or compute node: its own calls (rpc, getClusterPerf), then a data
                // node's (2PC, chunk reads, query tasks).
                let handler = |method: u16,
                               payload: Vec<u8>|
                 -> lang::catalog::LocalFuture<'_, _> {
                    use crate::dfs_proto::method::{NODE_PERF, NODE_RUN, NODE_START, NODE_STOP};
                    match (method, datanode) {
                        (NODE_RUN | NODE_PERF, _) => {
                            Box::pin(crate::cluster::handle(method, payload, scripts, probe))
                        }
                        (NODE_START | NODE_STOP, _) => {
                            Box::pin(async move { agent_call(agent, method, &payload) })
                        }
                        (_, Some(dn)) => Box::pin(dn.handle_rpc(method, payload)),
                        (m, None) => Box::pin(async move {
                            Err(crate::error::RemoteError::new(
                                crate::error::ErrorCode::UnknownMethod,
                                format!("unknown method {m}: this node holds no data"),
                            ))
                        }),
                    }
                };
                return crate::rpc::serve_connection_after(
                    s,
                    crate::rpc::FrameReader::new(head),
                    None,
                    &handler,
                )
                .await
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()));
            }
            let Some(ctl) = controller else {
                return Ok(());
            };
            return ctl
                .serve_rpc_connection(s, head)
                .await
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()));
        }
        if head.starts_with(b"API") {
            if let Some(scripts) = scripts {
                s.set_read_timeout(None); // API sessions stay open between requests
                let gate = || controller.and_then(|c| c.not_leader());
                return crate::api::serve_gated(&mut s, head, scripts, &gate).await;
            }
            // Controllers and agents do not run user scripts.
            let msg = format!(
                "0 0 1\nPorpoise {} on {} ({}) does not serve the DolphinDB API; connect to a data, compute or single node\n",
                crate::VERSION,
                settings.alias(),
                settings.mode()
            );
            s.write_all(msg.as_bytes()).await?;
            return Ok(());
        }
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        if head.len() > HTTP_HEAD_BYTES_MAX {
            return respond(&mut s, 431, r#"{"error":"request head too large"}"#).await;
        }
    }
    let head_end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("checked above")
        + 4;
    let text = String::from_utf8_lossy(&head[..head_end]).into_owned();
    let mut lines = text.split("\r\n");
    let mut parts = lines.next().unwrap_or_default().split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut content_length = 0usize;
    let mut session = None;
    let (mut upgrade, mut ws_key, mut ws_version) = (false, None, None);
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                content_length = v.parse().unwrap_or(usize::MAX);
            } else if k.eq_ignore_ascii_case("x-session") {
                session = v.parse::<u64>().ok();
            } else if k.eq_ignore_ascii_case("upgrade") {
                upgrade = v.eq_ignore_ascii_case("websocket");
            } else if k.eq_ignore_ascii_case("sec-websocket-key") {
                ws_key = Some(v.to_string());
            } else if k.eq_ignore_ascii_case("sec-websocket-version") {
                ws_version = Some(v.to_string());
            }
        }
    }
    if let (true, "GET", Some(key)) = (upgrade, method, &ws_key) {
        // The DolphinDB API over WebSocket (the JavaScript API, DolphinDB's web client).
        let Some(scripts) = scripts else {
            return respond(&mut s, 400, r#"{"error":"this node does not run scripts"}"#).await;
        };
        if ws_version.as_deref() != Some("13") {
            return respond_with(
                &mut s,
                426,
                r#"{"error":"WebSocket version 13 only"}"#,
                &[("Sec-WebSocket-Version", "13")],
            )
            .await;
        }
        s.write_all(crate::websocket::handshake_response(key).as_bytes())
            .await?;
        s.set_read_timeout(None); // like a raw API session, it stays open between requests
        let gate = || controller.and_then(|c| c.not_leader());
        let after_head = head[head_end..].to_vec();
        let mut socket = crate::websocket::Socket::new(&mut s, after_head);
        return crate::api::serve_on(&mut socket, Vec::new(), scripts, &gate).await;
    }
    if let Some(ctl) = controller {
        match (method, path) {
            ("GET", "/raft") => return respond(&mut s, 200, &ctl.raft_json()).await,
            ("GET", "/nodes") => return respond(&mut s, 200, &ctl.nodes_text()).await,
            ("GET", "/config/nodes") => {
                return respond(&mut s, 200, &ctl.nodes_config_text()).await
            }
            ("POST", "/config/nodes") => {
                if content_length > SCRIPT_BYTES_MAX {
                    return respond(&mut s, 413, r#"{"error":"body too large"}"#).await;
                }
                let Some(body) = read_body(&mut s, &head[head_end..], content_length).await? else {
                    return Ok(());
                };
                let result = match ctl.not_leader_error() {
                    Some(e) => Err(e),
                    None => ctl.set_nodes_config(&String::from_utf8_lossy(&body)).await,
                };
                return match result {
                    Ok(n) => respond(&mut s, 200, &format!("{{\"changed\":{n}}}")).await,
                    Err(e) => respond(&mut s, http_status(&e), &e.to_string()).await,
                };
            }
            _ => {}
        }
    }
    if let (Some(dn), "GET", "/chunks" | "/chunks?digest") = (datanode, method, path) {
        // `chunk,version,rows,txn` of every chunk this data node holds (what it reports; txn 0:
        // none holds it prepared), and with `?digest` a fifth field: the CRC-32 of its rows at
        // that version (empty while prepared), which replicas that agree share.
        let mut body = String::new();
        for c in dn.report() {
            body.push_str(&format!(
                "{},{},{},{}",
                c.chunk,
                c.version,
                c.rows,
                c.txn.unwrap_or(0)
            ));
            if path.ends_with("?digest") {
                body.push(',');
                if c.txn.is_none() {
                    match dn.content_digest(c.chunk, c.version).await {
                        Ok(d) => body.push_str(&d.to_string()),
                        Err(e) => body.push_str(&format!("error {e}")),
                    }
                }
            }
            body.push('\n');
        }
        return respond(&mut s, 200, &body).await;
    }
    match (method, path) {
        ("GET", "/metrics") => {
            let mut out = crate::metrics::Exposition::default();
            probe.metrics(&mut out);
            if let Some(ctl) = controller {
                ctl.metrics(&mut out);
            }
            if let Some(dn) = datanode {
                dn.metrics(&mut out);
            }
            if let Some(scripts) = scripts {
                scripts.metrics(&mut out);
            }
            respond_with(
                &mut s,
                200,
                &out.finish(),
                // The web Dashboard served by another node reads every node's metrics.
                &[
                    ("Content-Type", "text/plain; version=0.0.4"),
                    ("Access-Control-Allow-Origin", "*"),
                ],
            )
            .await
        }
        ("GET", "/health") | ("GET", "/version") => {
            let body = health_json(settings);
            respond(&mut s, 200, &body).await
        }
        ("POST", "/api/execute") if scripts.is_some() => {
            if content_length > SCRIPT_BYTES_MAX {
                return respond(&mut s, 413, r#"{"error":"script too large"}"#).await;
            }
            let Some(body) = read_body(&mut s, &head[head_end..], content_length).await? else {
                return Ok(());
            };
            let script = String::from_utf8_lossy(&body);
            let (id, reply) = scripts.expect("guarded").execute(session, &script).await;
            respond_with(&mut s, 200, &reply, &[("X-Session", &id.to_string())]).await
        }
        ("GET", p) if crate::web::asset(p).is_some() => {
            let (ty, body) = crate::web::asset(p).expect("matched");
            respond_with(&mut s, 200, body, &[("Content-Type", ty)]).await
        }
        ("GET", _) | ("POST", _) => respond(&mut s, 404, r#"{"error":"not found"}"#).await,
        _ => respond(&mut s, 400, r#"{"error":"bad request"}"#).await,
    }
}

/// An agent's start or stop of one of its host's nodes.
fn agent_call(
    agent: Option<&crate::agent::Agent>,
    method: u16,
    payload: &[u8],
) -> Result<Vec<u8>, crate::error::RemoteError> {
    use crate::error::{ErrorCode, RemoteError};
    let Some(agent) = agent else {
        return Err(RemoteError::new(
            ErrorCode::UnknownMethod,
            "only an agent starts and stops nodes",
        ));
    };
    let started = if method == crate::dfs_proto::method::NODE_START {
        agent.start(&crate::rpc::decode_request(payload)?)?
    } else {
        agent.stop(&crate::rpc::decode_request::<String>(payload)?)
    };
    Ok(crate::rpc::encode_payload(&started))
}

/// The JSON body of `GET /health`.
/// Reads a request body of `len` bytes that starts with `already`. `None` if the peer left.
async fn read_body(
    s: &mut TcpStream,
    already: &[u8],
    len: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut body = already.to_vec();
    body.truncate(len);
    let mut buf = [0u8; 4096];
    while body.len() < len {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[..n.min(len - body.len())]);
    }
    Ok(Some(body))
}

pub fn health_json(settings: &Settings) -> String {
    format!(
        r#"{{"status":"ok","product":"porpoise","version":{},"alias":{},"mode":{},"site":{},"backend":{}}}"#,
        json_str(crate::VERSION),
        json_str(settings.alias()),
        json_str(settings.mode().as_str()),
        json_str(&settings.site().to_string()),
        json_str(rt::BACKEND)
    )
}

async fn respond(s: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    respond_with(s, status, body, &[]).await
}

async fn respond_with(
    s: &mut TcpStream,
    status: u16,
    body: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Payload Too Large",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    // A handler's Content-Type replaces the default.
    let typed = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    let msg =
        format!(
        "HTTP/1.1 {status} {reason}\r\n{}Content-Length: {}\r\n{}Connection: close\r\n\r\n{body}",
        if typed { "" } else { "Content-Type: application/json\r\n" },
        body.len(),
        headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect::<String>()
    );
    s.write_all(msg.as_bytes()).await
}
