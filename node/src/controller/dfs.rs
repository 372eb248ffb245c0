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

use std::collections::BTreeMap;

use super::decide::{self, DataNode, Liveness};
use super::meta::{Command, Meta, Role, TxnState};
use super::service::ControllerService;
use crate::dfs_proto::*;
use crate::error::{ErrorCode, RemoteError};
use crate::rpc::{decode_request as decode, encode_payload};

/// How long a participant may hold a transaction prepared, its coordinator silent, before the
/// leader aborts it (when the commit was not recorded).
pub const TXN_ABANDON_MS: u64 = 30_000;

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
            c.replicas
                .iter()
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
pub fn read(m: &Meta, q: &DfsRead) -> Result<DfsReadReply, RemoteError> {
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
            })
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
                for (tname, t) in &d.tables {
                    for (pname, chunk) in &t.partitions {
                        let c = m.chunks.get(chunk);
                        out.push(ChunkStatus {
                            chunk: *chunk,
                            file: format!("{short}/{pname}/{tname}"),
                            version: c.map(|c| c.version).unwrap_or(0),
                            replicas: c
                                .map(|c| c.replicas.iter().cloned().collect())
                                .unwrap_or_default(),
                            in_txn: locked.contains(chunk),
                        });
                    }
                }
            }
            DfsReadReply::Chunks(out)
        }
        DfsRead::Databases => DfsReadReply::Names(m.databases.keys().cloned().collect()),
        DfsRead::Tables => DfsReadReply::Names(
            m.databases
                .iter()
                .flat_map(|(db, d)| d.tables.keys().map(move |t| format!("{db}/{t}")))
                .collect(),
        ),
    })
}

/// The data nodes placement chooses among, with their load (replicas held).
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
            Ok(_) => Ok(()),
            // Two sessions created the same database at once: both opened it.
            Err(super::meta::MetaError::Exists(_)) if creates_db.is_some() => Ok(()),
            Err(e) => Err(refused(dolphin_message(&e))),
        }
    }

    async fn dfs_read(&self, q: DfsRead) -> Result<Vec<u8>, RemoteError> {
        self.linearizable().await?;
        let reply = self.ctl.sm.read(|m| read(m, &q))?;
        Ok(encode_payload(&reply))
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
            let nodes = self.ctl.sm.read(|m| data_nodes(m, &pending));
            let replicas = decide::place_replicas(&nodes, factor, level)
                .map_err(|e| RemoteError::new(ErrorCode::PlacementFailed, e.to_string()))?;
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
            let id = self
                .ctl
                .sm
                .read(|m| m.txns.keys().next_back().copied().unwrap_or(0) + 1);
            match self
                .ctl
                .write(Command::BeginTxn {
                    id,
                    participants: b.participants.clone(),
                })
                .await?
            {
                Ok(_) => return Ok(id),
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
        if let Some(e) = self.not_leader_error() {
            return Err(e);
        }
        let state = self.ctl.sm.read(|m| m.txns.get(&d.id).map(|t| t.state));
        match state {
            None => return Err(refused(format!("transaction {} was never begun", d.id))),
            Some(TxnState::Committed) => return Ok(true),
            Some(TxnState::Aborted) => return Ok(false),
            Some(TxnState::Prepared) if d.commit => {
                self.write_meta(Command::CommitTxn { id: d.id }).await?;
                return Ok(true);
            }
            Some(_) => {}
        }
        if !d.commit {
            return match self.ctl.write(Command::AbortTxn { id: d.id }).await? {
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
        match self.ctl.write(Command::CommitTxn { id: d.id }).await? {
            Ok(_) => Ok(true),
            Err(super::meta::MetaError::TxnState { .. }) => Ok(false),
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

    #[test]
    fn a_table_snapshot_names_each_partitions_replicas_sites_and_version() {
        let mut m = tutorial_meta();
        m.apply(&C::AddPartition {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
            partition: "20200601".into(),
            replicas: vec!["datanode1".into(), "datanode3".into()],
        })
        .unwrap();
        let q = DfsRead::Table {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
        };
        let DfsReadReply::Table(t) = read(&m, &q).unwrap() else {
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
        let DfsReadReply::Chunks(c) = read(&m, &DfsRead::Chunks).unwrap() else {
            panic!("chunks")
        };
        assert_eq!(c[0].file, "/testDB/20200601/testTB");
        let e = read(
            &m,
            &DfsRead::Table {
                db: "dfs://testDB".into(),
                table: "nosuch".into(),
            },
        )
        .unwrap_err();
        assert!(e.message.contains("nosuch"), "{e}");
    }

    #[test]
    fn placement_load_counts_replicas_held_and_those_being_placed() {
        let mut m = tutorial_meta();
        m.apply(&C::AddPartition {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
            partition: "p".into(),
            replicas: vec!["datanode1".into(), "datanode2".into()],
        })
        .unwrap();
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
}
