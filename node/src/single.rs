//! The single node as a one-node cluster (ARCHITECTURE D71): the start function composes a
//! one-member controller group, a data node on the local volumes and a coordinator in one
//! process, so a single node runs exactly the cluster's catalog, placement and two-phase
//! commit — only the transport is a function call. This module holds what only that
//! composition needs: the node's heartbeats to its own controller, and the adoption of a
//! catalog written by builds before it (`DFSMasterMeta.catalog`).
//!
//! Invariants:
//! - Start-up returns only once the group has elected this node and registered its data node
//!   live, so the first script can create partitions.
//! - Adoption keeps every chunk's id and version (`Command::ImportPartition`) and happens once:
//!   the old catalog is renamed `DFSMasterMeta.catalog.adopted` after every command applied,
//!   and a catalog is adopted only into metadata that holds no database.

use std::rc::Rc;
use std::time::Duration;

use crate::config::{Mode, NodeEntry, NodesFile, Settings, Source};
use crate::controller::meta::{Command, Role};
use crate::controller::raft::RaftTiming;
use crate::controller::service::{ControllerService, Heartbeat};
use crate::coordinator::ClusterCatalog;
use crate::datanode::DataNodeService;
use crate::dfs_proto::{ChunkServer, MetaServer};
use crate::leader::LeaderClient;
use crate::log::Logger;
use crate::start::StartError;

/// A running single node's parts.
pub struct SingleNode {
    pub catalog: Rc<dyn lang::catalog::Catalog>,
    pub controller: Rc<ControllerService>,
    pub datanode: Rc<DataNodeService>,
}

/// Opens the single node `settings` describe: its one-member controller group, its data node
/// on the local volumes, and the coordinator scripts use. The start function and the benches
/// both open a single node here.
pub async fn open(
    settings: &Settings,
    log: &Logger,
    timing: RaftTiming,
) -> Result<SingleNode, StartError> {
    let one = NodesFile {
        source: Source::Default,
        nodes: vec![NodeEntry {
            site: settings.site().clone(),
            mode: Mode::Controller,
            line: 0,
        }],
    };
    let controller = ControllerService::start(settings, &one, log.clone(), timing)
        .await
        .map_err(StartError::Role)?;
    let engine = crate::server::open_engine(settings)
        .await
        .map_err(StartError::Storage)?;
    let meta: Rc<dyn MetaServer> = controller.clone();
    let datanode = DataNodeService::start(
        engine,
        Rc::new(LeaderClient::local(meta.clone())),
        log.clone(),
    );
    adopt(settings, &controller, &datanode, log)
        .await
        .map_err(StartError::Storage)?;
    let me = crate::start::incarnation(settings);
    drop(rt::task::spawn_local(datanode.clone().announce(me.clone())));
    let chunks: Rc<dyn ChunkServer> = datanode.clone();
    let catalog = Rc::new(ClusterCatalog::new(
        Rc::new(LeaderClient::local(meta)),
        Some((settings.alias().to_string(), chunks)),
        lang::partition::NewValues::parse(&settings.new_value_partition_policy()),
        log.clone(),
        Some(me),
    ));
    Ok(SingleNode {
        catalog,
        controller,
        datanode,
    })
}

/// How long start-up waits for the one-member group to elect itself.
const ELECTED_WAIT_MS: u64 = 30_000;
/// The catalog file builds before D71 kept.
pub const OLD_CATALOG: &str = "DFSMasterMeta.catalog";

/// Heartbeats to the in-process controller, waits until this node is its live data node,
/// then adopts an old catalog if there is one.
pub async fn adopt(
    settings: &Settings,
    svc: &Rc<ControllerService>,
    dn: &Rc<DataNodeService>,
    log: &Logger,
) -> Result<(), String> {
    let beat = Heartbeat {
        alias: settings.alias().to_string(),
        host: settings.site().host.clone(),
        port: settings.site().port,
        role: Role::DataNode,
    };
    let interval = Duration::from_millis(settings.heartbeat_interval_ms().max(100));
    drop(rt::task::spawn_local({
        let (svc, beat) = (svc.clone(), beat.clone());
        async move {
            loop {
                let _ = svc.heartbeat(beat.clone()).await;
                rt::time::sleep(interval).await;
            }
        }
    }));
    let deadline = rt::time::now() + Duration::from_millis(ELECTED_WAIT_MS);
    loop {
        let live = svc
            .ctl
            .sm
            .read(|m| m.nodes.get(&beat.alias).is_some_and(|n| n.live));
        if svc.ctl.is_leader() && live {
            break;
        }
        if rt::time::now() > deadline {
            return Err(format!(
                "the single node's controller did not elect itself within {ELECTED_WAIT_MS} ms"
            ));
        }
        rt::time::sleep(Duration::from_millis(20)).await;
    }
    let path = settings.dfs_meta_dir().join(OLD_CATALOG);
    let Some(databases) = lang::dfs::load_catalog(&path)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(());
    };
    if svc.ctl.sm.read(|m| !m.databases.is_empty()) {
        return Err(format!(
            "{} exists beside metadata that already holds databases; move it aside (it was adopted before)",
            path.display()
        ));
    }
    let versions: std::collections::BTreeMap<u64, u64> =
        dn.report().iter().map(|c| (c.chunk, c.version)).collect();
    let mut commands = Vec::new();
    for (name, db) in &databases {
        let mut w = storage::bytes::Writer::default();
        db.scheme.encode(&mut w);
        commands.push(Command::CreateDatabase {
            name: name.clone(),
            scheme: w.buf,
        });
        for (tname, t) in &db.tables {
            commands.push(Command::CreateTable {
                db: name.clone(),
                table: tname.clone(),
                columns: t
                    .schema
                    .columns
                    .iter()
                    .map(|(n, ty)| (n.clone(), *ty as u8))
                    .collect(),
                partition_columns: t
                    .partition_columns
                    .iter()
                    .map(|i| t.schema.columns[*i].0.clone())
                    .collect(),
            });
            for (pname, chunk) in &t.chunks {
                commands.push(Command::ImportPartition {
                    db: name.clone(),
                    table: tname.clone(),
                    partition: pname.clone(),
                    chunk: *chunk,
                    version: versions.get(chunk).copied().unwrap_or(0),
                    replicas: vec![beat.alias.clone()],
                });
            }
        }
    }
    let n = commands.len();
    for cmd in commands {
        match svc.ctl.write(cmd).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("adopting {}: {e}", path.display())),
            Err(e) => return Err(format!("adopting {}: {e}", path.display())),
        }
    }
    let adopted = path.with_extension("catalog.adopted");
    rt::disk::rename(&path, &adopted)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    log.info(
        "catalog_adopted",
        &format!(
            "{} databases of {} are now the cluster metadata ({n} commands); the file is kept as {}",
            databases.len(),
            path.display(),
            adopted.display()
        ),
        &[],
    );
    Ok(())
}
