//! What the leader controller serves the distributed file system (`crate::dfs_proto`):
//! linearizable namespace reads, placement of new partitions, and the transaction records of
//! two-phase commit.
//!
//! Invariants:
//! - Every answer comes from the leader after it confirmed its leadership with a quorum
//!   (reads) or through a Raft write (changes): a follower answers `<NotLeader>`.
//! - A transaction's commit is the `CommitTxn` entry: [`ControllerService::txn_decide`]
//!   answers `true` only once it is applied, and a transaction aborted first (a participant
//!   gave up on its coordinator) can never commit afterwards (`Meta::apply` refuses it).
//! - A chunk's recorded version counts the batches committed on it, as each replica's engine
//!   counts them: the decision adds the transaction's batches for each chunk, and participants
//!   hold the chunk locked from prepare to commit, so no two transactions on one chunk
//!   overlap.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use super::decide::{self, DataNode, Liveness};
use super::meta::{Command, Meta, Role, TxnState};
use super::service::ControllerService;
use crate::dfs_proto::*;
use crate::error::{ErrorCode, RemoteError};
use crate::rpc::{decode_payload, decode_request as decode, encode_payload};
use crate::rpc::{RpcClient, RpcClientConfig};

/// How long a participant may hold a transaction prepared, its coordinator silent, before the
/// leader aborts it (when the commit was not recorded).
pub const TXN_ABANDON_MS: u64 = 30_000;

/// What the leader knows of the DFS outside its Raft state. A new leader starts it empty: it
/// asks every live data node for its chunks again, and gives a transaction whose coordinator
/// it does not know the whole [`TXN_ABANDON_MS`].
#[derive(Default)]
pub struct Volatile {
    /// Data node → chunk → the version it holds (its last report, advanced by each commit it
    /// voted for: a yes vote means the rows are durable there).
    pub reports: BTreeMap<String, BTreeMap<u64, u64>>,
    /// Data nodes being asked for a report.
    pub asking: BTreeSet<String>,
    /// Transaction → the node run that began it.
    pub coordinators: BTreeMap<u64, Incarnation>,
    /// Committed transactions every participant acknowledged, to forget (the monitor writes
    /// them in one `ForgetTxns`; aborted ones it finds in the metadata itself).
    pub finished: BTreeSet<u64>,
    /// Transaction → when this leader began it (its clock, ms), for `super::settle`.
    pub began: BTreeMap<u64, u64>,
    /// Committed transactions whose participants are being told again (`super::settle`).
    pub telling: BTreeSet<u64>,
    /// Replica recovery tasks (`super::recovery`).
    pub recovery: super::recovery::Tasks,
}

/// Calls the leader makes to data nodes (reports, drops): short, so a node that is down costs
/// little.
pub(super) const DATA_NODE_CALL: RpcClientConfig = RpcClientConfig {
    connect_timeout: Duration::from_millis(1_000),
    call_timeout: Duration::from_millis(10_000),
    inflight_max: 4,
};

fn refused(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::new(ErrorCode::MetaRefused, e.to_string())
}

/// A refused namespace change in the words DolphinDB's users know.
fn dolphin_message(e: &super::meta::MetaError) -> String {
    use super::meta::MetaError;
    match e {
        MetaError::Missing(what) => match what.strip_prefix("database ") {
            Some(db) => format!("The database {db} does not exist"),
            None => format!("{what} does not exist"),
        },
        MetaError::Exists(what) => match what.strip_prefix("table ") {
            Some(rest) => match rest.split_once(" in ") {
                Some((t, db)) => format!("The table {t} already exists in {db}"),
                None => format!("{what} already exists"),
            },
            None => format!("{what} already exists"),
        },
        MetaError::BadTable(c) => format!("The partitioning column {c} is not in the table"),
        e => e.to_string(),
    }
}

/// The replicas of `chunk` with their sites.
fn replicas_of(m: &Meta, chunk: u64) -> Vec<Replica> {
    m.chunks
        .get(&chunk)
        .map(|c| {
            // Only current replicas are read and written; stale ones wait for recovery.
            c.current()
                .map(|a| {
                    let n = m.nodes.get(a);
                    Replica {
                        alias: a.clone(),
                        host: n.map(|n| n.host.clone()).unwrap_or_default(),
                        port: n.map(|n| n.port).unwrap_or(0),
                        live: n.is_some_and(|n| n.live),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn partition_of(m: &Meta, name: &str, chunk: u64) -> PartitionSnapshot {
    PartitionSnapshot {
        name: name.to_string(),
        chunk,
        version: m.chunks.get(&chunk).map(|c| c.version).unwrap_or(0),
        replicas: replicas_of(m, chunk),
    }
}

/// The answer to a namespace read, from the metadata.
pub fn read(m: &Meta, v: &Volatile, q: &DfsRead) -> Result<DfsReadReply, RemoteError> {
    let missing_db = |db: &str| refused(format!("The database {db} does not exist"));
    Ok(match q {
        DfsRead::ExistsDatabase(db) => DfsReadReply::Bool(m.databases.contains_key(db)),
        DfsRead::ExistsTable { db, table } => DfsReadReply::Bool(
            m.databases
                .get(db)
                .is_some_and(|d| d.tables.contains_key(table)),
        ),
        DfsRead::Scheme(db) => DfsReadReply::Scheme(
            m.databases
                .get(db)
                .ok_or_else(|| missing_db(db))?
                .scheme
                .clone(),
        ),
        DfsRead::Table { db, table } => {
            let d = m.databases.get(db).ok_or_else(|| missing_db(db))?;
            let t = d
                .tables
                .get(table)
                .ok_or_else(|| refused(format!("The table {table} does not exist in {db}")))?;
            DfsReadReply::Table(TableSnapshot {
                scheme: d.scheme.clone(),
                columns: t.columns.clone(),
                partition_columns: t.partition_columns.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|(name, chunk)| partition_of(m, name, *chunk))
                    .collect(),
                atomic_chunk: m.atomic_chunk.contains(db),
            })
        }
        DfsRead::TableSince { db, table, known } => {
            let q = DfsRead::Table {
                db: db.clone(),
                table: table.clone(),
            };
            let DfsReadReply::Table(t) = read(m, v, &q)? else {
                unreachable!("a table read answers a table")
            };
            let version = crate::dfs_proto::table_version(&t);
            if version == *known {
                DfsReadReply::TableUnchanged
            } else {
                DfsReadReply::TableAt(version, t)
            }
        }
        DfsRead::Chunks => {
            let locked: std::collections::BTreeSet<u64> = m
                .txns
                .values()
                .filter(|t| matches!(t.state, TxnState::Begun | TxnState::Prepared))
                .flat_map(|t| t.chunk_versions.keys().copied())
                .collect();
            let mut out = Vec::new();
            for (db, d) in &m.databases {
                let short = db.trim_start_matches("dfs:/");
                // Partitions by the paths DolphinDB shows (`20230108`, not the key 19365).
                let scheme =
                    lang::partition::Scheme::decode(&mut storage::bytes::Reader::new(&d.scheme))
                        .ok();
                for (tname, t) in &d.tables {
                    for (pname, chunk) in &t.partitions {
                        let c = m.chunks.get(chunk);
                        let shown = scheme
                            .as_ref()
                            .map_or_else(|| pname.clone(), |s| s.display_path(pname));
                        out.push(ChunkStatus {
                            chunk: *chunk,
                            file: format!("{short}/{shown}/{tname}"),
                            version: c.map(|c| c.version).unwrap_or(0),
                            replicas: c
                                .map(|c| {
                                    c.replicas
                                        .iter()
                                        .map(|a| {
                                            let held = v.reports.get(a);
                                            (a.clone(), held.and_then(|h| h.get(chunk)).copied())
                                        })
                                        .collect()
                                })
                                .unwrap_or_default(),
                            in_txn: locked.contains(chunk),
                            stale: c
                                .map(|c| c.stale.keys().cloned().collect())
                                .unwrap_or_default(),
                        });
                    }
                }
            }
            DfsReadReply::Chunks(out)
        }
        DfsRead::Written((client, request, write)) => DfsReadReply::Written(
            m.requests
                .get(client)
                .filter(|r| r.request == *request)
                .and_then(|r| r.rows.get(&(*write, 0)).copied()),
        ),
        DfsRead::WrittenChunks((client, request, write), chunks) => {
            let done = m.requests.get(client).filter(|r| r.request == *request);
            DfsReadReply::WrittenChunks(
                chunks
                    .iter()
                    .filter_map(|c| {
                        let rows = done?.rows.get(&(*write & !WRITE_PER_CHUNK, *c))?;
                        Some((*c, *rows))
                    })
                    .collect(),
            )
        }
        DfsRead::RecoveryTasks => DfsReadReply::RecoveryTasks(super::recovery::rows(
            m,
            &v.recovery,
            rt::time::unix_time_ms(),
        )),
        DfsRead::Databases => DfsReadReply::Names(m.databases.keys().cloned().collect()),
        DfsRead::AtomicChunk(db) => {
            if !m.databases.contains_key(db) {
                return Err(missing_db(db));
            }
            DfsReadReply::Bool(m.atomic_chunk.contains(db))
        }
        // Answered by the service, which knows the leader (`members`).
        DfsRead::Members => return Err(refused("Members is not a metadata read")),
        DfsRead::DataNodes => DfsReadReply::Nodes(
            m.nodes
                .iter()
                .filter(|(_, n)| n.role == Role::DataNode)
                .map(|(alias, n)| Replica {
                    alias: alias.clone(),
                    host: n.host.clone(),
                    port: n.port,
                    live: n.live,
                })
                .collect(),
        ),
        DfsRead::Tables => DfsReadReply::Names(
            m.databases
                .iter()
                .flat_map(|(db, d)| d.tables.keys().map(move |t| format!("{db}/{t}")))
                .collect(),
        ),
    })
}

/// The chunks (with their replicas' sites) that a drop removes.
fn dropped_chunks(m: &Meta, d: &Ddl) -> Vec<(u64, Vec<Replica>)> {
    let chunks: Vec<u64> = match d {
        Ddl::DropDatabase { name } => m
            .databases
            .get(name)
            .map(|db| {
                db.tables
                    .values()
                    .flat_map(|t| t.partitions.values().copied())
                    .collect()
            })
            .unwrap_or_default(),
        Ddl::DropTable { db, table } => m
            .databases
            .get(db)
            .and_then(|d| d.tables.get(table))
            .map(|t| t.partitions.values().copied().collect())
            .unwrap_or_default(),
        Ddl::DropPartitions {
            db,
            table,
            partitions,
        } => m
            .databases
            .get(db)
            .and_then(|d| d.tables.get(table))
            .map(|t| {
                partitions
                    .iter()
                    .filter_map(|p| t.partitions.get(p).copied())
                    .collect()
            })
            .unwrap_or_default(),
        Ddl::CreateDatabase { .. }
        | Ddl::CreateTable { .. }
        | Ddl::AddColumns { .. }
        | Ddl::SetAtomicLevel { .. } => Vec::new(),
    };
    chunks.into_iter().map(|c| (c, replicas_of(m, c))).collect()
}

/// The data nodes placement chooses among, with their load (replicas held).
/// The sites of `partition` in another table of `db`, when it has `factor` replicas all on
/// live data nodes: a new table's partition goes where the database's other tables keep the
/// same partition, so a join of the two on the partitioning columns runs where both chunks are
/// (D95), as DolphinDB keeps a partition's tables together. Otherwise `None` (placed afresh).
pub fn sibling_sites(
    m: &Meta,
    db: &str,
    table: &str,
    partition: &str,
    factor: usize,
) -> Option<Vec<String>> {
    let d = m.databases.get(db)?;
    d.tables
        .iter()
        .filter(|(name, _)| name.as_str() != table)
        .filter_map(|(_, t)| t.partitions.get(partition))
        .filter_map(|c| m.chunks.get(c))
        .find(|c| {
            c.replicas.len() == factor
                && c.replicas.iter().all(|a| {
                    m.nodes
                        .get(a)
                        .is_some_and(|n| n.live && n.role == Role::DataNode)
                })
        })
        .map(|c| c.replicas.iter().cloned().collect())
}

pub fn data_nodes(m: &Meta, pending: &BTreeMap<String, usize>) -> Vec<DataNode> {
    let mut load: BTreeMap<&str, usize> = BTreeMap::new();
    for c in m.chunks.values() {
        for r in &c.replicas {
            *load.entry(r.as_str()).or_default() += 1;
        }
    }
    m.nodes
        .iter()
        .filter(|(_, n)| n.role == Role::DataNode)
        .map(|(alias, n)| DataNode {
            alias: alias.clone(),
            host: n.host.clone(),
            liveness: if n.live { Liveness::Up } else { Liveness::Down },
            chunks: load.get(alias.as_str()).copied().unwrap_or(0)
                + pending.get(alias).copied().unwrap_or(0),
        })
        .collect()
}

impl ControllerService {
    /// Serves the DFS methods; `None` for any other method.
    pub async fn handle_dfs(
        &self,
        method: u16,
        payload: &[u8],
    ) -> Option<Result<Vec<u8>, RemoteError>> {
        let r = match method {
            method::DFS_READ => match decode(payload) {
                Ok(q) => self.dfs_read(q).await,
                Err(e) => Err(e),
            },
            method::ALLOCATE => match decode(payload) {
                Ok(a) => self.allocate(a).await.map(|r| encode_payload(&r)),
                Err(e) => Err(e),
            },
            method::TXN_BEGIN => match decode::<TxnBegin>(payload) {
                Ok(b) => self.txn_begin(b).await.map(|id| encode_payload(&id)),
                Err(e) => Err(e),
            },
            method::TXN_DECIDE => match decode::<TxnDecide>(payload) {
                Ok(d) => self.txn_decide(d).await.map(|c| encode_payload(&c)),
                Err(e) => Err(e),
            },
            method::DDL => match decode::<Ddl>(payload) {
                Ok(d) => self.ddl(d).await.map(|()| encode_payload(&())),
                Err(e) => Err(e),
            },
            method::CHUNK_REPORTS => match decode::<ChunkReports>(payload) {
                Ok(r) => self.chunk_reports(r).await.map(|o| encode_payload(&o)),
                Err(e) => Err(e),
            },
            method::TXN_DONE => match decode::<u64>(payload) {
                Ok(tid) => {
                    self.volatile.borrow_mut().finished.insert(tid);
                    Ok(encode_payload(&()))
                }
                Err(e) => Err(e),
            },
            method::RECOVERY_PROGRESS => match decode::<RecoveryProgress>(payload) {
                Ok(p) => {
                    self.volatile.borrow_mut().recovery.progress(&p);
                    Ok(encode_payload(&()))
                }
                Err(e) => Err(e),
            },
            method::REPLICA_DAMAGED => match decode::<Damaged>(payload) {
                Ok(d) => self.replica_damaged(d).await.map(|()| encode_payload(&())),
                Err(e) => Err(e),
            },
            method::TXN_OUTCOME => match decode::<TxnOutcome>(payload) {
                Ok(o) => self.txn_outcome(o).await.map(|o| encode_payload(&o)),
                Err(e) => Err(e),
            },
            _ => return None,
        };
        Some(r)
    }

    async fn ddl(&self, d: Ddl) -> Result<(), RemoteError> {
        if let Some(e) = self.not_leader_error() {
            return Err(e);
        }
        let creates_db = match &d {
            Ddl::CreateDatabase { name, .. } => Some(name.clone()),
            _ => None,
        };
        let dropped = self.ctl.sm.read(|m| dropped_chunks(m, &d));
        let cmd = match d {
            Ddl::CreateDatabase { name, scheme } => {
                if self.ctl.sm.read(|m| m.databases.contains_key(&name)) {
                    return Ok(());
                }
                Command::CreateDatabase { name, scheme }
            }
            Ddl::DropDatabase { name } => Command::DropDatabase { name },
            Ddl::CreateTable {
                db,
                table,
                columns,
                partition_columns,
            } => Command::CreateTable {
                db,
                table,
                columns,
                partition_columns,
            },
            Ddl::DropTable { db, table } => Command::DropTable { db, table },
            Ddl::AddColumns { db, table, columns } => Command::AddColumns { db, table, columns },
            Ddl::SetAtomicLevel { db, chunk } => Command::SetAtomicLevel { db, chunk },
            Ddl::DropPartitions {
                db,
                table,
                partitions,
            } => Command::DropPartitions {
                db,
                table,
                partitions,
            },
        };
        match self.ctl.write(cmd).await? {
            Ok(_) => {
                self.delete_chunks(dropped);
                Ok(())
            }
            // Two sessions created the same database at once: both opened it.
            Err(super::meta::MetaError::Exists(_)) if creates_db.is_some() => Ok(()),
            Err(e) => Err(refused(dolphin_message(&e))),
        }
    }

    async fn dfs_read(&self, q: DfsRead) -> Result<Vec<u8>, RemoteError> {
        self.linearizable().await?;
        if q == DfsRead::Members {
            return Ok(encode_payload(&DfsReadReply::Members(self.members())));
        }
        let reply = {
            let v = self.volatile.borrow();
            self.ctl.sm.read(|m| read(m, &v, &q))?
        };
        Ok(encode_payload(&reply))
    }

    /// The nodes as this leader knows them.
    fn members(&self) -> Members {
        fn split(site: &str) -> Option<(String, String, u16)> {
            let mut p = site.splitn(3, ':');
            let (h, port, alias) = (p.next()?, p.next()?, p.next()?);
            Some((alias.to_string(), h.to_string(), port.parse().ok()?))
        }
        let leader = self
            .ctl
            .leader()
            .and_then(|(_, site)| split(&site))
            .unwrap_or_default();
        let controllers = self
            .ctl
            .controllers()
            .into_iter()
            .filter_map(|(site, live, leads)| {
                let (alias, host, port) = split(&site)?;
                Some((alias, host, port, live, leads))
            })
            .collect();
        let nodes = self.ctl.sm.read(|m| {
            m.nodes
                .iter()
                .map(|(alias, n)| {
                    let mode = match n.role {
                        Role::DataNode => 0,
                        Role::Agent => 1,
                        Role::Controller => 2,
                        Role::ComputeNode => 4,
                    };
                    (alias.clone(), n.host.clone(), n.port, mode, n.live)
                })
                .collect()
        });
        Members {
            leader,
            nodes,
            controllers,
        }
    }

    /// Places every partition of `a` that does not exist yet and records it; answers all of
    /// them.
    async fn allocate(&self, a: Allocate) -> Result<Vec<PartitionSnapshot>, RemoteError> {
        if let Some(e) = self.not_leader_error() {
            return Err(e);
        }
        let (factor, level) = self.placement_settings();
        let mut pending: BTreeMap<String, usize> = BTreeMap::new();
        for p in &a.partitions {
            let exists = self.ctl.sm.read(|m| {
                m.databases
                    .get(&a.db)
                    .and_then(|d| d.tables.get(&a.table))
                    .map(|t| t.partitions.contains_key(p))
            });
            match exists {
                None => {
                    return Err(refused(format!(
                        "The table {} does not exist in {}",
                        a.table, a.db
                    )))
                }
                Some(true) => continue,
                Some(false) => {}
            }
            let sibling = self
                .ctl
                .sm
                .read(|m| sibling_sites(m, &a.db, &a.table, p, factor));
            let replicas = match sibling {
                Some(r) => r,
                None => {
                    let nodes = self.ctl.sm.read(|m| data_nodes(m, &pending));
                    decide::place_replicas(&nodes, factor, level)
                        .map_err(|e| RemoteError::new(ErrorCode::PlacementFailed, e.to_string()))?
                }
            };
            for r in &replicas {
                *pending.entry(r.clone()).or_default() += 1;
            }
            self.write_meta(Command::AddPartition {
                db: a.db.clone(),
                table: a.table.clone(),
                partition: p.clone(),
                replicas,
            })
            .await?;
        }
        self.ctl.sm.read(|m| {
            let t = m
                .databases
                .get(&a.db)
                .and_then(|d| d.tables.get(&a.table))
                .ok_or_else(|| refused(format!("The table {} does not exist", a.table)))?;
            Ok(a.partitions
                .iter()
                .filter_map(|p| t.partitions.get(p).map(|c| partition_of(m, p, *c)))
                .collect())
        })
    }

    async fn txn_begin(&self, b: TxnBegin) -> Result<u64, RemoteError> {
        loop {
            if let Some(e) = self.not_leader_error() {
                return Err(e);
            }
            let id = self.ctl.sm.read(|m| m.next_txn);
            match self
                .ctl
                .write(Command::BeginTxn {
                    id,
                    participants: b.participants.clone(),
                })
                .await?
            {
                Ok(_) => {
                    let mut v = self.volatile.borrow_mut();
                    v.began.insert(id, rt::time::unix_time_ms());
                    if let Some(c) = b.coordinator {
                        v.coordinators.insert(id, c);
                    }
                    return Ok(id);
                }
                // Another coordinator took the id between the read and the write.
                Err(super::meta::MetaError::Exists(_)) => continue,
                Err(e) => return Err(refused(e)),
            }
        }
    }

    /// Records the coordinator's decision. Repeating it (a retried call) answers the recorded
    /// outcome; a commit asked for a transaction already aborted (a participant gave up on the
    /// coordinator first) answers `false`.
    async fn txn_decide(&self, d: TxnDecide) -> Result<bool, RemoteError> {
        let id = d.id;
        let writers = d.writers.clone();
        let committed = self.record_decision(d).await;
        if let Ok(c) = committed {
            let mut v = self.volatile.borrow_mut();
            v.coordinators.remove(&id);
            if c {
                // Every participant voted yes, so each holds the rows durably.
                let versions = self
                    .ctl
                    .sm
                    .read(|m| m.txns.get(&id).map(|t| t.chunk_versions.clone()))
                    .unwrap_or_default();
                for (c, writers) in &writers {
                    for w in writers {
                        if let (Some(held), Some(ver)) = (v.reports.get_mut(w), versions.get(c)) {
                            held.insert(*c, *ver);
                        }
                    }
                }
            }
        }
        committed
    }

    async fn record_decision(&self, d: TxnDecide) -> Result<bool, RemoteError> {
        if let Some(e) = self.not_leader_error() {
            return Err(e);
        }
        let (state, begun) = self
            .ctl
            .sm
            .read(|m| (m.txns.get(&d.id).map(|t| t.state), d.id < m.next_txn));
        match state {
            // Begun once and forgotten: an abort (a commit is forgotten only after its
            // coordinator, having had its answer, said it was done).
            None if begun => return Ok(false),
            None => return Err(refused(format!("transaction {} was never begun", d.id))),
            Some(TxnState::Committed) => return Ok(true),
            Some(TxnState::Aborted) => return Ok(false),
            Some(TxnState::Prepared) if d.commit => return self.commit_writes(&d).await,
            Some(_) => {}
        }
        if !d.commit {
            return match self.ctl.write(Command::AbortTxn { id: d.id }).await? {
                // Swept up by the next round of `settle` (presumed abort: a participant asking
                // later is answered Abort anyway).
                Ok(_) => Ok(false),
                Err(e) => Err(refused(e)),
            };
        }
        let chunk_versions: Vec<(u64, u64)> = self.ctl.sm.read(|m| {
            d.chunks
                .iter()
                .map(|(c, batches)| {
                    (
                        *c,
                        m.chunks.get(c).map(|c| c.version).unwrap_or(0) + batches,
                    )
                })
                .collect()
        });
        match self
            .ctl
            .write(Command::PrepareTxn {
                id: d.id,
                chunk_versions,
            })
            .await?
        {
            Ok(_) => {}
            // Aborted meanwhile (a participant's resolver): not committed.
            Err(super::meta::MetaError::TxnState { .. }) => return Ok(false),
            Err(e) => return Err(refused(e)),
        }
        self.commit_writes(&d).await
    }

    /// The commit point: `CommitWrites`, which marks the replicas that did not write stale.
    /// A writer that is not a current replica (a snapshot older than a stale mark) cannot
    /// commit: the transaction is aborted.
    async fn commit_writes(&self, d: &TxnDecide) -> Result<bool, RemoteError> {
        let commit = Command::CommitWrites {
            id: d.id,
            writers: d.writers.clone(),
            replaced: d.replaced.clone(),
            tag: d.tag.clone(),
        };
        match self.ctl.write(commit).await? {
            Ok(_) => Ok(true),
            Err(super::meta::MetaError::TxnState { .. }) => Ok(false),
            Err(
                e @ (super::meta::MetaError::Replicas(_) | super::meta::MetaError::Duplicate(_)),
            ) => {
                self.log.info(
                    "txn_stale_writer",
                    &format!("transaction {}: {e}", d.id),
                    &[],
                );
                match self.ctl.write(Command::AbortTxn { id: d.id }).await? {
                    Ok(_) => Ok(false),
                    Err(_) => Ok(self
                        .ctl
                        .sm
                        .read(|m| m.txns.get(&d.id).map(|t| t.state) == Some(TxnState::Committed))),
                }
            }
            Err(e) => Err(refused(e)),
        }
    }

    /// What became of a transaction a participant holds prepared. One held longer than
    /// [`TXN_ABANDON_MS`] without a recorded commit is aborted (the coordinator is gone).
    async fn txn_outcome(&self, o: TxnOutcome) -> Result<Outcome, RemoteError> {
        self.linearizable().await?;
        let state = self.ctl.sm.read(|m| {
            m.txns
                .contains_key(&o.id)
                .then(|| decide::outcome_for(&m.txns, o.id))
        });
        Ok(match state {
            Some(TxnState::Committed) => Outcome::Commit,
            Some(TxnState::Aborted) => Outcome::Abort,
            // Never begun here: it never reached the commit point.
            None => Outcome::Abort,
            Some(TxnState::Begun | TxnState::Prepared) if o.waited_ms < TXN_ABANDON_MS => {
                Outcome::Pending
            }
            Some(_) => match self.ctl.write(Command::AbortTxn { id: o.id }).await? {
                Ok(_) => Outcome::Abort,
                // The coordinator's commit won the race.
                Err(_) => match self.ctl.sm.read(|m| decide::outcome_for(&m.txns, o.id)) {
                    TxnState::Committed => Outcome::Commit,
                    _ => Outcome::Pending,
                },
            },
        })
    }

    /// A data node's push when it starts: its report is taken, the transactions an earlier
    /// run of it began are aborted (that run can never decide them), and the chunks it holds
    /// that were dropped are named for it to delete.
    async fn chunk_reports(&self, r: ChunkReports) -> Result<Vec<u64>, RemoteError> {
        if let Some(e) = self.not_leader_error() {
            return Err(e);
        }
        let orphans = self.accept_report(&r.node.alias, &r.chunks);
        let dead = {
            let v = self.volatile.borrow();
            self.ctl
                .sm
                .read(|m| decide::orphaned_txns(&m.txns, &v.coordinators, &r.node))
        };
        self.abort_orphaned(dead, &r.node.alias).await;
        Ok(orphans)
    }

    /// A node was marked down: the transactions it began and left undecided are aborted, so
    /// their participants' chunks are unlocked within a resolver round instead of
    /// [`TXN_ABANDON_MS`].
    pub(super) async fn node_gone(&self, alias: &str) {
        let gone = Incarnation {
            alias: alias.to_string(),
            started_ms: u64::MAX,
        };
        let dead = {
            let v = self.volatile.borrow();
            self.ctl
                .sm
                .read(|m| decide::orphaned_txns(&m.txns, &v.coordinators, &gone))
        };
        self.abort_orphaned(dead, alias).await;
    }

    async fn abort_orphaned(&self, tids: Vec<u64>, alias: &str) {
        for tid in tids {
            // A refusal means it moved on meanwhile (its decision arrived): nothing to do.
            if let Ok(Ok(_)) = self.ctl.write(Command::AbortTxn { id: tid }).await {
                self.log.warn(
                    "txn_orphaned",
                    &format!("transaction {tid} aborted: its coordinator {alias} is gone"),
                    &[],
                );
            }
            self.volatile.borrow_mut().coordinators.remove(&tid);
        }
    }

    /// Takes `alias`'s report; logs what disagrees with the metadata; answers the orphans.
    fn accept_report(&self, alias: &str, chunks: &[ChunkReport]) -> Vec<u64> {
        if !self.ctl.is_leader() {
            return Vec::new();
        }
        let f = self.ctl.sm.read(|m| decide::judge_report(m, alias, chunks));
        for (c, have, want) in &f.stale {
            self.log.warn(
                "replica_stale",
                &format!("{alias} holds chunk {c} at version {have}; the metadata has {want}"),
                &[],
            );
        }
        for c in &f.missing {
            self.log.warn(
                "replica_missing",
                &format!("{alias} does not hold chunk {c}, which the metadata places on it"),
                &[],
            );
        }
        self.volatile.borrow_mut().reports.insert(
            alias.to_string(),
            chunks.iter().map(|c| (c.chunk, c.version)).collect(),
        );
        f.orphans
    }

    /// Asks every live data node this leader has no report from for one (a new leader asks
    /// them all).
    pub(super) fn ask_for_reports(self: Rc<Self>) {
        let live: Vec<(String, String, u16)> = self.ctl.sm.read(|m| {
            m.nodes
                .iter()
                .filter(|(_, n)| n.role == Role::DataNode && n.live)
                .map(|(a, n)| (a.clone(), n.host.clone(), n.port))
                .collect()
        });
        for (alias, host, port) in live {
            {
                let mut v = self.volatile.borrow_mut();
                if v.reports.contains_key(&alias) || !v.asking.insert(alias.clone()) {
                    continue;
                }
            }
            drop(rt::task::spawn_local(
                self.clone().ask_report(alias, host, port),
            ));
        }
    }

    async fn ask_report(self: Rc<Self>, alias: String, host: String, port: u16) {
        let asked = async {
            let addr = crate::server::resolve_addr(&host, port).map_err(|e| e.to_string())?;
            let client = RpcClient::new(addr, DATA_NODE_CALL);
            let b = client
                .call(method::CHUNK_REPORT, encode_payload(&()))
                .await
                .map_err(|e| e.to_string())?;
            let report: Vec<ChunkReport> = decode_payload(&b).map_err(|e| e.to_string())?;
            let orphans = self.accept_report(&alias, &report);
            if !orphans.is_empty() {
                client
                    .call(method::CHUNK_DROP, encode_payload(&orphans))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        };
        if let Err(e) = asked.await {
            self.log
                .debug("report_unavailable", &format!("{alias}: {e}"), &[]);
        }
        self.volatile.borrow_mut().asking.remove(&alias);
    }

    /// Tells each replica's data node to delete the chunks a drop removed (best effort: one
    /// that misses it finds them orphaned at its next report).
    fn delete_chunks(&self, dropped: Vec<(u64, Vec<Replica>)>) {
        let mut by_node: BTreeMap<(String, u16), Vec<u64>> = BTreeMap::new();
        for (chunk, replicas) in dropped {
            for r in replicas {
                by_node.entry((r.host, r.port)).or_default().push(chunk);
            }
        }
        for ((host, port), chunks) in by_node {
            let log = self.log.clone();
            drop(rt::task::spawn_local(async move {
                let Ok(addr) = crate::server::resolve_addr(&host, port) else {
                    return;
                };
                let client = RpcClient::new(addr, DATA_NODE_CALL);
                if let Err(e) = client
                    .call(method::CHUNK_DROP, encode_payload(&chunks))
                    .await
                {
                    log.debug(
                        "chunk_drop_undelivered",
                        &format!("{host}:{port}: {e}"),
                        &[],
                    );
                }
            }));
        }
    }

    /// Confirms leadership with a quorum (a linearizable read point).
    pub async fn linearizable(&self) -> Result<(), RemoteError> {
        if let Some(e) = self.not_leader_error() {
            return Err(e);
        }
        self.ctl
            .raft
            .ensure_linearizable(openraft::raft::ReadPolicy::ReadIndex)
            .await
            .map(|_| ())
            .map_err(|e| RemoteError::new(ErrorCode::RaftFailed, format!("RAFT-008 {e}")))
    }

    async fn write_meta(&self, cmd: Command) -> Result<(), RemoteError> {
        match self.ctl.write(cmd).await? {
            Ok(_) => Ok(()),
            Err(e) => Err(refused(e)),
        }
    }
}

impl MetaServer for ControllerService {
    fn handle(
        &self,
        method: u16,
        payload: Vec<u8>,
    ) -> lang::catalog::LocalFuture<'_, Result<Vec<u8>, RemoteError>> {
        Box::pin(async move {
            match self.handle_dfs(method, &payload).await {
                Some(r) => r,
                None => Err(RemoteError::new(
                    ErrorCode::UnknownMethod,
                    format!("unknown method {method}"),
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::meta::Command as C;

    fn tutorial_meta() -> Meta {
        let mut m = Meta::new();
        for (i, host) in ["127.0.0.80", "127.0.0.81", "127.0.0.82"]
            .iter()
            .enumerate()
        {
            let alias = format!("datanode{}", i + 1);
            m.apply(&C::RegisterNode {
                alias: alias.clone(),
                host: host.to_string(),
                port: 8802,
                role: Role::DataNode,
            })
            .unwrap();
            m.apply(&C::Heartbeat { alias, now_ms: 1 }).unwrap();
        }
        m.apply(&C::CreateDatabase {
            name: "dfs://testDB".into(),
            scheme: vec![1, 2, 3],
        })
        .unwrap();
        m.apply(&C::CreateTable {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
            columns: vec![("DateTime".into(), 11)],
            partition_columns: vec!["DateTime".into()],
        })
        .unwrap();
        m
    }

    /// Adds `partition` of testTB on `replicas`.
    fn add_partition(m: &mut Meta, partition: &str, replicas: [&str; 2]) {
        m.apply(&C::AddPartition {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
            partition: partition.into(),
            replicas: replicas.iter().map(|r| r.to_string()).collect(),
        })
        .unwrap();
    }

    #[test]
    fn a_table_snapshot_names_each_partitions_replicas_sites_and_version() {
        let mut m = tutorial_meta();
        add_partition(&mut m, "20200601", ["datanode1", "datanode3"]);
        let q = DfsRead::Table {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
        };
        let DfsReadReply::Table(t) = read(&m, &Volatile::default(), &q).unwrap() else {
            panic!("a table")
        };
        assert_eq!(t.partitions.len(), 1);
        let p = &t.partitions[0];
        assert_eq!((p.name.as_str(), p.version), ("20200601", 0));
        let sites: Vec<(&str, &str, bool)> = p
            .replicas
            .iter()
            .map(|r| (r.alias.as_str(), r.host.as_str(), r.live))
            .collect();
        assert_eq!(
            sites,
            [
                ("datanode1", "127.0.0.80", true),
                ("datanode3", "127.0.0.82", true)
            ]
        );
        let DfsReadReply::Chunks(c) = read(&m, &Volatile::default(), &DfsRead::Chunks).unwrap()
        else {
            panic!("chunks")
        };
        assert_eq!(c[0].file, "/testDB/20200601/testTB");
        let e = read(
            &m,
            &Volatile::default(),
            &DfsRead::Table {
                db: "dfs://testDB".into(),
                table: "nosuch".into(),
            },
        )
        .unwrap_err();
        assert!(e.message.contains("nosuch"), "{e}");
    }

    #[test]
    fn a_cached_table_is_refetched_after_any_change_its_snapshot_shows() {
        let mut m = tutorial_meta();
        let since = |m: &Meta, known: u64| {
            let q = DfsRead::TableSince {
                db: "dfs://testDB".into(),
                table: "testTB".into(),
                known,
            };
            read(m, &Volatile::default(), &q).unwrap()
        };
        let version = |m: &Meta, known: u64| match since(m, known) {
            DfsReadReply::TableAt(v, t) => {
                assert_eq!(v, crate::dfs_proto::table_version(&t));
                v
            }
            DfsReadReply::TableUnchanged => known,
            other => panic!("{other:?}"),
        };
        // Nothing known: the snapshot; the same version again: unchanged.
        let v0 = version(&m, 0);
        assert_ne!(v0, 0);
        assert_eq!(since(&m, v0), DfsReadReply::TableUnchanged);
        let mut seen = vec![v0];
        let mut changed = |m: &Meta, what: &str| {
            let v = version(m, *seen.last().unwrap());
            assert!(!seen.contains(&v), "{what}: the version did not change");
            seen.push(v);
        };
        // A new partition.
        add_partition(&mut m, "20200601", ["datanode1", "datanode3"]);
        changed(&m, "a partition added");
        // A committed append: the chunk's version.
        m.apply(&C::BeginTxn {
            id: 7,
            participants: vec!["datanode1".into(), "datanode3".into()],
        })
        .unwrap();
        let chunk = *m.databases["dfs://testDB"].tables["testTB"]
            .partitions
            .values()
            .next()
            .unwrap();
        m.apply(&C::PrepareTxn {
            id: 7,
            chunk_versions: vec![(chunk, 1)],
        })
        .unwrap();
        m.apply(&C::CommitTxn { id: 7 }).unwrap();
        changed(&m, "an append committed");
        // A replica's node down.
        m.apply(&C::Heartbeat {
            alias: "datanode1".into(),
            now_ms: 10_000,
        })
        .unwrap();
        m.apply(&C::ExpireNodes {
            now_ms: 10_000,
            timeout_ms: 5_000,
        })
        .unwrap();
        changed(&m, "a replica's node down");
        // A column added, then the partition dropped.
        m.apply(&C::AddColumns {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
            columns: vec![("x".into(), 16)],
        })
        .unwrap();
        changed(&m, "a column added");
        m.apply(&C::DropPartitions {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
            partitions: vec!["20200601".into()],
        })
        .unwrap();
        changed(&m, "a partition dropped");
    }

    #[test]
    fn placement_load_counts_replicas_held_and_those_being_placed() {
        let mut m = tutorial_meta();
        add_partition(&mut m, "p", ["datanode1", "datanode2"]);
        let pending = BTreeMap::from([("datanode3".to_string(), 5)]);
        let load: Vec<(String, usize)> = data_nodes(&m, &pending)
            .into_iter()
            .map(|n| (n.alias, n.chunks))
            .collect();
        assert_eq!(
            load,
            [
                ("datanode1".to_string(), 1),
                ("datanode2".to_string(), 1),
                ("datanode3".to_string(), 5)
            ]
        );
        let chosen = decide::place_replicas(&data_nodes(&m, &pending), 2, 1).unwrap();
        assert_eq!(chosen, ["datanode1", "datanode2"]);
    }

    #[test]
    fn a_new_tables_partition_goes_where_the_database_keeps_that_partition() {
        let mut m = tutorial_meta();
        add_partition(&mut m, "20200601", ["datanode1", "datanode3"]);
        let sites = |m: &Meta, table: &str, p: &str, factor: usize| {
            sibling_sites(m, "dfs://testDB", table, p, factor)
        };
        assert_eq!(
            sites(&m, "quotes", "20200601", 2),
            Some(vec!["datanode1".to_string(), "datanode3".to_string()])
        );
        assert_eq!(
            sites(&m, "quotes", "20200602", 2),
            None,
            "no sibling partition"
        );
        assert_eq!(
            sites(&m, "testTB", "20200601", 2),
            None,
            "not its own partition"
        );
        assert_eq!(
            sites(&m, "quotes", "20200601", 3),
            None,
            "fewer replicas than wanted"
        );
        // A sibling on a node that is down is placed afresh instead.
        m.nodes.get_mut("datanode3").unwrap().live = false;
        assert_eq!(sites(&m, "quotes", "20200601", 2), None);
    }
}
