//! The one start function of a node (RisingWave's `start(opts, shutdown)`): the `porpoise`
//! binary, the simulation and the benches all start a node through [`start`], so each runs the
//! real start-up path — bind on `localSite`, open a single node's storage, start the role (a
//! controller's Raft member, another node's heartbeats), serve the port — instead of a copy of
//! it.
//!
//! Invariant: the port is bound before anything else starts, so a second node on a taken port
//! fails with the tutorial FAQ's message before it touches any file.

use std::path::PathBuf;
use std::rc::Rc;

use crate::config::{Mode, NodesFile, Settings};
use crate::controller::raft::RaftTiming;
use crate::controller::service::ControllerService;
use crate::coordinator::ClusterCatalog;
use crate::datanode::DataNodeService;
use crate::dfs_proto::ChunkServer;
use crate::leader::LeaderClient;
use crate::log::Logger;
use crate::server::{self, ServeError};

/// This run of the node: its alias and when it started.
pub fn incarnation(settings: &Settings) -> crate::dfs_proto::Incarnation {
    crate::dfs_proto::Incarnation {
        alias: settings.alias().to_string(),
        started_ms: rt::time::unix_time_ms(),
    }
}

/// Why a node did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Bind(#[from] ServeError),
    #[error("cannot open the storage engine: {0}")]
    Storage(String),
    #[error("{0}")]
    Role(String),
}

impl StartError {
    /// The log event the binary reports it under.
    pub fn event(&self) -> &'static str {
        match self {
            StartError::Bind(_) => "bind_failed",
            StartError::Storage(_) => "storage_failed",
            StartError::Role(_) => "start_failed",
        }
    }
}

/// Called with a controller's service once its Raft member runs.
pub type ControllerHook = Box<dyn FnOnce(&Rc<ControllerService>)>;

/// What a start needs besides the settings.
#[derive(Default)]
pub struct StartOptions {
    pub timing: RaftTiming,
    /// `-script`: run before the node takes connections.
    pub startup: Option<PathBuf>,
    /// Called with a controller's service once its Raft member runs (the simulation observes
    /// leaderships through it).
    pub on_controller: Option<ControllerHook>,
    /// The process's other shards, where a data node (or the single node) computes query
    /// tasks (`crate::workers`); `None` computes everything on this shard.
    pub workers: Option<Rc<crate::workers::Workers>>,
    /// A controller's configuration files, rewritten when an edit is saved (D103).
    pub config_files: Option<crate::controller::configs::Files>,
}

/// Starts the node `settings` describe and serves its port until the process ends; returns
/// only if start-up fails.
pub async fn start(
    settings: Rc<Settings>,
    nodes: Option<&NodesFile>,
    log: Logger,
    opts: StartOptions,
) -> Result<(), StartError> {
    let listener = server::bind(&settings).await?;
    let mut datanode = None;
    let mut controller = None;
    let new_values = lang::partition::NewValues::parse(&settings.new_value_partition_policy());
    let me = incarnation(&settings);
    let coordinator = |leader: LeaderClient,
                       local: Option<(String, Rc<dyn ChunkServer>)>|
     -> Rc<dyn lang::catalog::Catalog> {
        // Only a data node announces its restarts to the leader (DataNodeService::announce).
        let me = local.is_some().then(|| me.clone());
        Rc::new(ClusterCatalog::new(
            Rc::new(leader),
            local,
            new_values,
            log.clone(),
            me,
        ))
    };
    let dfs: Option<Rc<dyn lang::catalog::Catalog>> = match settings.mode() {
        Mode::Single => {
            let one = crate::single::open(&settings, &log, opts.timing).await?;
            datanode = Some(one.datanode);
            controller = Some(one.controller);
            Some(one.catalog)
        }
        Mode::DataNode => {
            let engine = server::open_engine(&settings)
                .await
                .map_err(StartError::Storage)?;
            let controllers = crate::heartbeat::controller_addrs(&settings);
            let dn = DataNodeService::start(
                engine,
                Rc::new(LeaderClient::new(controllers.clone())),
                log.clone(),
            );
            drop(rt::task::spawn_local(dn.clone().announce(me.clone())));
            drop(rt::task::spawn_local(dn.clone().scrub()));
            let chunks: Rc<dyn ChunkServer> = dn.clone();
            let catalog = coordinator(
                LeaderClient::new(controllers),
                Some((settings.alias().to_string(), chunks)),
            );
            // It coordinates the appends compute nodes forward to it.
            dn.serve_appends(catalog.clone());
            datanode = Some(dn);
            Some(catalog)
        }
        Mode::ComputeNode => Some(coordinator(
            LeaderClient::new(crate::heartbeat::controller_addrs(&settings)),
            None,
        )),
        Mode::Controller => nodes.map(|n| {
            coordinator(
                LeaderClient::new(
                    n.of_mode(Mode::Controller)
                        .filter_map(|c| server::resolve_addr(&c.site.host, c.site.port).ok())
                        .collect(),
                ),
                None,
            )
        }),
        Mode::Agent => None,
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    log.info(
        "listening",
        &format!("listening on {addr}"),
        &[("addr", &addr)],
    );
    // The single node's in-process controller serves no one else: it is not on the port.
    let in_process = controller.is_some();
    let controller = match controller {
        Some(c) => Some(c),
        None => server::start_role(&settings, nodes, &log, opts.timing)
            .await
            .map_err(StartError::Role)?,
    };
    if let (Some(dn), Some(w)) = (&datanode, opts.workers) {
        dn.use_workers(w);
    }
    if let (Some(c), Some(files), false) = (&controller, opts.config_files, in_process) {
        c.use_config_files(files);
    }
    if let (Some(c), Some(hook)) = (&controller, opts.on_controller) {
        hook(c);
    }
    server::serve(
        listener,
        settings,
        log,
        dfs,
        opts.startup,
        if in_process { None } else { controller },
        datanode,
    )
    .await;
    Ok(())
}
