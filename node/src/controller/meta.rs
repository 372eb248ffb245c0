//! The controllers' metadata state machine: everything the cluster knows, changed only by
//! applying [`Command`]s in log order (the Raft group's committed entries, once it runs).
//! `apply` is a pure function of the state and one command, so every controller that applies
//! the same log holds the same state, and a snapshot is just the encoded state.
//!
//! What it holds: the nodes of cluster.nodes with their live state; the controller and nodes
//! configuration (controller.cfg / cluster.cfg as key/value sets, so the web manager can edit
//! them and every controller's files follow); the DFS namespace (databases with their partition
//! schemes, tables, partitions → chunks with replicas and versions); transactions (state,
//! participants, chunk versions).
//!
//! Invariants (checked by `check`, asserted after every apply in tests):
//! - every chunk belongs to exactly one partition of one table, and its id is below
//!   `next_chunk` (ids are never reused);
//! - a committed or aborted transaction never changes state again;
//! - a chunk's version only grows;
//! - a chunk's stale replicas are among its replicas, and at least one replica is current
//!   (not stale): a commit always has a writer that holds every earlier one.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A node's role, as cluster.nodes names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Controller,
    Agent,
    DataNode,
    ComputeNode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    pub host: String,
    pub port: u16,
    pub role: Role,
    pub live: bool,
    /// Last heartbeat, in the leader's clock (milliseconds).
    pub last_seen_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub replicas: BTreeSet<String>,
    pub version: u64,
    /// Replicas that missed a commit (checkpoint format 3, ARCHITECTURE D99): neither read nor
    /// written until recovery brings them to `version` and clears them.
    pub stale: BTreeMap<String, Stale>,
}

/// Why a replica is stale, and what can repair it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stale {
    /// The chunk's version when the replica was marked: it holds every commit up to it.
    pub since: u64,
    /// A rewrite (`update`, `delete`) committed since: only a full copy repairs it, because
    /// the rows it holds are no longer a prefix of the chunk's.
    pub full: bool,
}

impl Chunk {
    /// The replicas reads and writes use: every one not stale.
    pub fn current(&self) -> impl Iterator<Item = &String> {
        self.replicas
            .iter()
            .filter(|r| !self.stale.contains_key(*r))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TableMeta {
    /// Column names and DolphinDB type ids.
    pub columns: Vec<(String, u8)>,
    pub partition_columns: Vec<String>,
    /// Partition name → chunk id.
    pub partitions: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DatabaseMeta {
    /// The partition scheme in `lang::partition`'s encoding.
    pub scheme: Vec<u8>,
    pub tables: BTreeMap<String, TableMeta>,
}

/// Where a distributed transaction stands in the controller's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnState {
    /// Participants are being asked to prepare.
    Begun,
    /// Every participant voted yes; no decision recorded yet.
    Prepared,
    /// The commit decision is recorded (the commit point).
    Committed,
    Aborted,
}

/// A distributed transaction as the metadata records it; the pure decisions
/// (`decide::resolve_abandoned`, `decide::outcome_for`) read this same record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    pub state: TxnState,
    pub participants: BTreeSet<String>,
    /// Chunk → the version the transaction writes.
    pub chunk_versions: BTreeMap<u64, u64>,
}

/// One change to the metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    RegisterNode {
        alias: String,
        host: String,
        port: u16,
        role: Role,
    },
    Heartbeat {
        alias: String,
        now_ms: u64,
    },
    /// Nodes not heard from since `now_ms - timeout_ms` are marked down.
    ExpireNodes {
        now_ms: u64,
        timeout_ms: u64,
    },
    SetConfig {
        controller: bool,
        key: String,
        value: String,
    },
    RemoveConfig {
        controller: bool,
        key: String,
    },
    CreateDatabase {
        name: String,
        scheme: Vec<u8>,
    },
    DropDatabase {
        name: String,
    },
    CreateTable {
        db: String,
        table: String,
        columns: Vec<(String, u8)>,
        partition_columns: Vec<String>,
    },
    /// A new partition and its chunk (the id is assigned here, from `next_chunk`).
    AddPartition {
        db: String,
        table: String,
        partition: String,
        replicas: Vec<String>,
    },
    BeginTxn {
        id: u64,
        participants: Vec<String>,
    },
    PrepareTxn {
        id: u64,
        chunk_versions: Vec<(u64, u64)>,
    },
    CommitTxn {
        id: u64,
    },
    AbortTxn {
        id: u64,
    },
    /// A partition whose chunk exists already, keeping its id and version: a single node's
    /// catalog adopted when it became a one-node cluster (`node::single`). Appended last, so
    /// logs and checkpoints written before it keep their encoding.
    ImportPartition {
        db: String,
        table: String,
        partition: String,
        chunk: u64,
        version: u64,
        replicas: Vec<String>,
    },
    DropTable {
        db: String,
        table: String,
    },
    /// Removes the named partitions of a table (and their chunks).
    DropPartitions {
        db: String,
        table: String,
        partitions: Vec<String>,
    },
    /// `addColumn`: columns appended to a table's schema (names and DolphinDB type ids).
    /// Existing rows read nulls in them.
    AddColumns {
        db: String,
        table: String,
        columns: Vec<(String, u8)>,
    },
    /// `database(…, atomic=)` / `setAtomicLevel`: whether a write to the database is atomic
    /// per chunk (`'CHUNK'`) rather than per transaction (`'TRANS'`, the default).
    SetAtomicLevel {
        db: String,
        chunk: bool,
    },
    /// Drops the records of finished transactions no participant will ask about again (an
    /// aborted one at once — an unknown transaction is presumed aborted — and a committed one
    /// once every participant acknowledged its commit). Others named are left alone.
    ForgetTxns {
        ids: Vec<u64>,
    },
    /// The commit point of a prepared transaction (D99), naming each chunk's writers: the
    /// replicas that voted yes for it. Current replicas of a chunk that did not write it become
    /// stale, since the chunk's version before this commit; every stale replica of a chunk in
    /// `replaced` (rewritten) needs a full copy. Refused, the state unchanged, when a writer is
    /// stale or not a replica (its rows do not sit on every earlier commit) or a chunk would
    /// have no writer. Computed here, in log order, so a recovery's `ClearStale` and a commit
    /// that missed that replica can never both count it current.
    CommitWrites {
        id: u64,
        writers: Vec<(u64, Vec<String>)>,
        replaced: Vec<u64>,
    },
    /// A recovered replica holds `chunk` at `version`; refused (`VersionMoved`) unless that is
    /// still the chunk's version, so a commit during the copy is never missed.
    ClearStale {
        chunk: u64,
        alias: String,
        version: u64,
    },
    /// A replica's node stayed away longer than `dfsRecoveryWaitTime`: `to` takes its place
    /// and starts stale, to be filled by a full copy.
    MoveReplica {
        chunk: u64,
        from: String,
        to: String,
    },
}

/// Why a command was refused (the state is unchanged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MetaError {
    #[error("META-001 {0} does not exist")]
    Missing(String),
    #[error("META-002 {0} already exists")]
    Exists(String),
    #[error("META-003 transaction {id} is {state:?}; it cannot become {to:?}")]
    TxnState {
        id: u64,
        state: TxnState,
        to: TxnState,
    },
    #[error("META-004 the partitioning columns do not name columns of the table: {0}")]
    BadTable(String),
    #[error("META-005 chunk {chunk} is at version {now}, not {version}")]
    VersionMoved { chunk: u64, version: u64, now: u64 },
    #[error("META-006 {0}")]
    Replicas(String),
}

/// The metadata.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Meta {
    pub nodes: BTreeMap<String, NodeEntry>,
    pub controller_config: BTreeMap<String, String>,
    pub nodes_config: BTreeMap<String, String>,
    pub databases: BTreeMap<String, DatabaseMeta>,
    pub chunks: BTreeMap<u64, Chunk>,
    pub txns: BTreeMap<u64, Txn>,
    pub next_chunk: u64,
    /// Databases created or set with `atomic='CHUNK'` (checkpoint format 2).
    pub atomic_chunk: BTreeSet<String>,
    /// The next transaction id: ids are never reused, even once a record is forgotten
    /// (checkpoint format 2).
    pub next_txn: u64,
}

/// What applying a command produced (for the caller's reply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    Done,
    /// A chunk id assigned by `AddPartition`.
    Chunk(u64),
    /// Nodes `ExpireNodes` marked down.
    Down(Vec<String>),
}

impl Meta {
    pub fn new() -> Meta {
        Meta {
            next_chunk: 1,
            next_txn: 1,
            ..Meta::default()
        }
    }

    fn txn_to(&mut self, id: u64, to: TxnState) -> Result<&mut Txn, MetaError> {
        let t = self
            .txns
            .get_mut(&id)
            .ok_or_else(|| MetaError::Missing(format!("transaction {id}")))?;
        let allowed = match (t.state, to) {
            (TxnState::Begun, TxnState::Prepared | TxnState::Aborted) => true,
            (TxnState::Prepared, TxnState::Committed | TxnState::Aborted) => true,
            // Re-applying the same decision is harmless (a retried request).
            (a, b) => a == b && matches!(a, TxnState::Committed | TxnState::Aborted),
        };
        if !allowed {
            return Err(MetaError::TxnState {
                id,
                state: t.state,
                to,
            });
        }
        t.state = to;
        Ok(t)
    }

    /// Applies one command: the state changes entirely or not at all.
    pub fn apply(&mut self, c: &Command) -> Result<Applied, MetaError> {
        match c {
            Command::RegisterNode {
                alias,
                host,
                port,
                role,
            } => {
                self.nodes.insert(
                    alias.clone(),
                    NodeEntry {
                        host: host.clone(),
                        port: *port,
                        role: *role,
                        live: false,
                        last_seen_ms: 0,
                    },
                );
            }
            Command::Heartbeat { alias, now_ms } => {
                let n = self
                    .nodes
                    .get_mut(alias)
                    .ok_or_else(|| MetaError::Missing(format!("node {alias}")))?;
                n.live = true;
                n.last_seen_ms = n.last_seen_ms.max(*now_ms);
            }
            Command::ExpireNodes { now_ms, timeout_ms } => {
                let mut down = Vec::new();
                for (alias, n) in &mut self.nodes {
                    if n.live && now_ms.saturating_sub(n.last_seen_ms) > *timeout_ms {
                        n.live = false;
                        down.push(alias.clone());
                    }
                }
                return Ok(Applied::Down(down));
            }
            Command::SetConfig {
                controller,
                key,
                value,
            } => {
                let cfg = if *controller {
                    &mut self.controller_config
                } else {
                    &mut self.nodes_config
                };
                cfg.insert(key.clone(), value.clone());
            }
            Command::RemoveConfig { controller, key } => {
                let cfg = if *controller {
                    &mut self.controller_config
                } else {
                    &mut self.nodes_config
                };
                cfg.remove(key)
                    .ok_or_else(|| MetaError::Missing(format!("configuration key {key}")))?;
            }
            Command::CreateDatabase { name, scheme } => {
                if self.databases.contains_key(name) {
                    return Err(MetaError::Exists(format!("database {name}")));
                }
                self.databases.insert(
                    name.clone(),
                    DatabaseMeta {
                        scheme: scheme.clone(),
                        tables: BTreeMap::new(),
                    },
                );
            }
            Command::DropDatabase { name } => {
                let db = self
                    .databases
                    .remove(name)
                    .ok_or_else(|| MetaError::Missing(format!("database {name}")))?;
                self.atomic_chunk.remove(name);
                for t in db.tables.values() {
                    for c in t.partitions.values() {
                        self.chunks.remove(c);
                    }
                }
            }
            Command::CreateTable {
                db,
                table,
                columns,
                partition_columns,
            } => {
                let d = self
                    .databases
                    .get_mut(db)
                    .ok_or_else(|| MetaError::Missing(format!("database {db}")))?;
                if d.tables.contains_key(table) {
                    return Err(MetaError::Exists(format!("table {table} in {db}")));
                }
                if let Some(p) = partition_columns
                    .iter()
                    .find(|p| !columns.iter().any(|(n, _)| n == *p))
                {
                    return Err(MetaError::BadTable(p.clone()));
                }
                d.tables.insert(
                    table.clone(),
                    TableMeta {
                        columns: columns.clone(),
                        partition_columns: partition_columns.clone(),
                        partitions: BTreeMap::new(),
                    },
                );
            }
            Command::AddPartition {
                db,
                table,
                partition,
                replicas,
            } => {
                let id = self.next_chunk;
                let t = self
                    .databases
                    .get_mut(db)
                    .and_then(|d| d.tables.get_mut(table))
                    .ok_or_else(|| MetaError::Missing(format!("table {table} in {db}")))?;
                if let Some(existing) = t.partitions.get(partition) {
                    // Two appenders raced to create it: both get the same chunk.
                    return Ok(Applied::Chunk(*existing));
                }
                t.partitions.insert(partition.clone(), id);
                self.chunks.insert(
                    id,
                    Chunk {
                        replicas: replicas.iter().cloned().collect(),
                        version: 0,
                        stale: BTreeMap::new(),
                    },
                );
                self.next_chunk += 1;
                return Ok(Applied::Chunk(id));
            }
            Command::BeginTxn { id, participants } => {
                // Below next_txn: taken (perhaps by a transaction forgotten since).
                if self.txns.contains_key(id) || *id < self.next_txn {
                    return Err(MetaError::Exists(format!("transaction {id}")));
                }
                self.next_txn = id + 1;
                self.txns.insert(
                    *id,
                    Txn {
                        state: TxnState::Begun,
                        participants: participants.iter().cloned().collect(),
                        chunk_versions: BTreeMap::new(),
                    },
                );
            }
            Command::PrepareTxn { id, chunk_versions } => {
                if let Some((c, _)) = chunk_versions
                    .iter()
                    .find(|(c, _)| !self.chunks.contains_key(c))
                {
                    return Err(MetaError::Missing(format!("chunk {c}")));
                }
                let t = self.txn_to(*id, TxnState::Prepared)?;
                t.chunk_versions = chunk_versions.iter().copied().collect();
            }
            Command::CommitTxn { id } => {
                let versions: Vec<(u64, u64)> = self
                    .txn_to(*id, TxnState::Committed)?
                    .chunk_versions
                    .iter()
                    .map(|(c, v)| (*c, *v))
                    .collect();
                for (c, v) in versions {
                    if let Some(chunk) = self.chunks.get_mut(&c) {
                        chunk.version = chunk.version.max(v);
                    }
                }
            }
            Command::AbortTxn { id } => {
                self.txn_to(*id, TxnState::Aborted)?;
            }
            Command::ImportPartition {
                db,
                table,
                partition,
                chunk,
                version,
                replicas,
            } => {
                let known = self.chunks.contains_key(chunk);
                let t = self
                    .databases
                    .get_mut(db)
                    .and_then(|d| d.tables.get_mut(table))
                    .ok_or_else(|| MetaError::Missing(format!("table {table} in {db}")))?;
                match t.partitions.get(partition) {
                    Some(c) if c == chunk => return Ok(Applied::Chunk(*chunk)),
                    Some(_) => return Err(MetaError::Exists(format!("partition {partition}"))),
                    None if known => return Err(MetaError::Exists(format!("chunk {chunk}"))),
                    None => {}
                }
                t.partitions.insert(partition.clone(), *chunk);
                self.chunks.insert(
                    *chunk,
                    Chunk {
                        replicas: replicas.iter().cloned().collect(),
                        version: *version,
                        stale: BTreeMap::new(),
                    },
                );
                self.next_chunk = self.next_chunk.max(chunk + 1);
                return Ok(Applied::Chunk(*chunk));
            }
            Command::DropTable { db, table } => {
                let t = self
                    .databases
                    .get_mut(db)
                    .ok_or_else(|| MetaError::Missing(format!("database {db}")))?
                    .tables
                    .remove(table)
                    .ok_or_else(|| MetaError::Missing(format!("table {table} in {db}")))?;
                for c in t.partitions.values() {
                    self.chunks.remove(c);
                }
            }
            Command::ForgetTxns { ids } => {
                for id in ids {
                    if self
                        .txns
                        .get(id)
                        .is_some_and(|t| matches!(t.state, TxnState::Committed | TxnState::Aborted))
                    {
                        self.txns.remove(id);
                    }
                }
            }
            Command::SetAtomicLevel { db, chunk } => {
                if !self.databases.contains_key(db) {
                    return Err(MetaError::Missing(format!("database {db}")));
                }
                if *chunk {
                    self.atomic_chunk.insert(db.clone());
                } else {
                    self.atomic_chunk.remove(db);
                }
            }
            Command::AddColumns { db, table, columns } => {
                let t = self
                    .databases
                    .get_mut(db)
                    .and_then(|d| d.tables.get_mut(table))
                    .ok_or_else(|| MetaError::Missing(format!("table {table} in {db}")))?;
                let mut names: BTreeSet<String> =
                    t.columns.iter().map(|(n, _)| n.to_lowercase()).collect();
                for (n, _) in columns {
                    if !names.insert(n.to_lowercase()) {
                        return Err(MetaError::Exists(format!("column {n} in {table}")));
                    }
                }
                t.columns.extend(columns.iter().cloned());
            }
            Command::DropPartitions {
                db,
                table,
                partitions,
            } => {
                let t = self
                    .databases
                    .get_mut(db)
                    .and_then(|d| d.tables.get_mut(table))
                    .ok_or_else(|| MetaError::Missing(format!("table {table} in {db}")))?;
                for p in partitions {
                    if let Some(c) = t.partitions.remove(p) {
                        self.chunks.remove(&c);
                    }
                }
            }
            Command::CommitWrites {
                id,
                writers,
                replaced,
            } => {
                let t = self
                    .txns
                    .get(id)
                    .ok_or_else(|| MetaError::Missing(format!("transaction {id}")))?;
                if t.state == TxnState::Committed {
                    // A retried request: decided once.
                    return Ok(Applied::Done);
                }
                let versions = t.chunk_versions.clone();
                // Marks are made on copies, checked, then installed with the commit.
                let mut marked: BTreeMap<u64, BTreeMap<String, Stale>> = BTreeMap::new();
                for c in versions.keys() {
                    let Some(chunk) = self.chunks.get(c) else {
                        continue;
                    };
                    let wrote: BTreeSet<&String> = writers
                        .iter()
                        .filter(|(w, _)| w == c)
                        .flat_map(|(_, a)| a)
                        .collect();
                    if let Some(w) = wrote
                        .iter()
                        .find(|w| !chunk.replicas.contains(**w) || chunk.stale.contains_key(**w))
                    {
                        return Err(MetaError::Replicas(format!(
                            "{w} is not a current replica of chunk {c}"
                        )));
                    }
                    if wrote.is_empty() {
                        return Err(MetaError::Replicas(format!("chunk {c} has no writer")));
                    }
                    let mut stale = chunk.stale.clone();
                    for r in chunk.current().filter(|r| !wrote.contains(r)) {
                        stale.insert(
                            r.clone(),
                            Stale {
                                since: chunk.version,
                                full: false,
                            },
                        );
                    }
                    if replaced.contains(c) {
                        for s in stale.values_mut() {
                            s.full = true;
                        }
                    }
                    marked.insert(*c, stale);
                }
                self.txn_to(*id, TxnState::Committed)?;
                for (c, v) in versions {
                    if let Some(chunk) = self.chunks.get_mut(&c) {
                        chunk.version = chunk.version.max(v);
                        if let Some(stale) = marked.remove(&c) {
                            chunk.stale = stale;
                        }
                    }
                }
            }
            Command::ClearStale {
                chunk,
                alias,
                version,
            } => {
                let c = self
                    .chunks
                    .get_mut(chunk)
                    .ok_or_else(|| MetaError::Missing(format!("chunk {chunk}")))?;
                if !c.stale.contains_key(alias) {
                    return Err(MetaError::Missing(format!(
                        "stale replica {alias} of chunk {chunk}"
                    )));
                }
                if c.version != *version {
                    return Err(MetaError::VersionMoved {
                        chunk: *chunk,
                        version: *version,
                        now: c.version,
                    });
                }
                c.stale.remove(alias);
            }
            Command::MoveReplica { chunk, from, to } => {
                let c = self
                    .chunks
                    .get_mut(chunk)
                    .ok_or_else(|| MetaError::Missing(format!("chunk {chunk}")))?;
                if !c.replicas.contains(from) || c.replicas.contains(to) {
                    return Err(MetaError::Replicas(format!(
                        "chunk {chunk} cannot move a replica from {from} to {to}"
                    )));
                }
                if !c.stale.contains_key(from) && c.current().count() == 1 {
                    return Err(MetaError::Replicas(format!(
                        "chunk {chunk}'s only current replica is on {from}"
                    )));
                }
                c.replicas.remove(from);
                c.stale.remove(from);
                c.replicas.insert(to.clone());
                c.stale.insert(
                    to.clone(),
                    Stale {
                        since: 0,
                        full: true,
                    },
                );
            }
        }
        Ok(Applied::Done)
    }

    /// Checks the invariants in the module header; `Err` names the first broken one.
    pub fn check(&self) -> Result<(), String> {
        // Sorted ids, no map: this runs after every applied command (raft::sm), so it avoids
        // allocating per chunk.
        let mut owned: Vec<u64> = self
            .databases
            .values()
            .flat_map(|d| d.tables.values())
            .flat_map(|t| t.partitions.values().copied())
            .collect();
        owned.sort_unstable();
        if let Some(w) = owned.windows(2).find(|w| w[0] == w[1]) {
            let n = owned.iter().filter(|c| **c == w[0]).count();
            return Err(format!("chunk {} belongs to {n} partitions", w[0]));
        }
        if let Some(c) = owned.last().filter(|c| **c >= self.next_chunk) {
            return Err(format!(
                "chunk {c} is not below next_chunk {}",
                self.next_chunk
            ));
        }
        for (id, c) in &self.chunks {
            if let Some(a) = c.stale.keys().find(|a| !c.replicas.contains(*a)) {
                return Err(format!("chunk {id}: stale {a} is not one of its replicas"));
            }
            if !c.replicas.is_empty() && c.current().next().is_none() {
                return Err(format!("chunk {id} has no current replica"));
            }
        }
        // Both sorted and duplicate-free: they must be the same list.
        let mut entries = self.chunks.keys().copied().peekable();
        let mut owners = owned.iter().copied().peekable();
        loop {
            match (owners.peek().copied(), entries.peek().copied()) {
                (None, None) => return Ok(()),
                (Some(o), Some(e)) if o == e => {
                    owners.next();
                    entries.next();
                }
                (Some(o), e) if e.is_none_or(|e| o < e) => {
                    return Err(format!("chunk {o} has no entry"))
                }
                (_, Some(e)) => return Err(format!("chunk {e} belongs to no partition")),
                (Some(_), None) => unreachable!("handled above"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn setup() -> Meta {
        let mut m = Meta::new();
        for c in [
            Command::RegisterNode {
                alias: "dnode1".into(),
                host: "10.0.0.80".into(),
                port: 8802,
                role: Role::DataNode,
            },
            Command::CreateDatabase {
                name: "dfs://testDB".into(),
                scheme: vec![1, 6, 0],
            },
            Command::CreateTable {
                db: "dfs://testDB".into(),
                table: "testTB".into(),
                columns: vec![("SecurityID".into(), 17), ("DateTime".into(), 11)],
                partition_columns: vec!["DateTime".into()],
            },
        ] {
            m.apply(&c).unwrap();
        }
        m
    }

    #[test]
    fn check_names_each_broken_chunk_invariant() {
        let mut m = setup();
        for p in ["19365", "19366"] {
            m.apply(&Command::AddPartition {
                db: "dfs://testDB".into(),
                table: "testTB".into(),
                partition: p.into(),
                replicas: vec!["dnode1".into()],
            })
            .unwrap();
        }
        m.check().unwrap();
        let mut two = m.clone();
        two.databases
            .get_mut("dfs://testDB")
            .unwrap()
            .tables
            .get_mut("testTB")
            .unwrap()
            .partitions
            .insert("19367".into(), 1);
        assert_eq!(two.check().unwrap_err(), "chunk 1 belongs to 2 partitions");
        let mut orphan = m.clone();
        let entry = orphan.chunks[&1].clone();
        orphan.chunks.insert(0, entry);
        assert_eq!(
            orphan.check().unwrap_err(),
            "chunk 0 belongs to no partition"
        );
        let mut missing = m.clone();
        missing.chunks.remove(&2);
        assert_eq!(missing.check().unwrap_err(), "chunk 2 has no entry");
        let mut ahead = m.clone();
        ahead.next_chunk = 2;
        assert!(ahead.check().unwrap_err().contains("not below next_chunk"));
    }

    #[test]
    fn partitions_get_fresh_chunks_and_races_share_one() {
        let mut m = setup();
        let add = |p: &str| Command::AddPartition {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
            partition: p.into(),
            replicas: vec!["dnode1".into()],
        };
        assert_eq!(m.apply(&add("19365")).unwrap(), Applied::Chunk(1));
        assert_eq!(m.apply(&add("19366")).unwrap(), Applied::Chunk(2));
        assert_eq!(m.apply(&add("19365")).unwrap(), Applied::Chunk(1));
        m.check().unwrap();
        m.apply(&Command::DropDatabase {
            name: "dfs://testDB".into(),
        })
        .unwrap();
        assert!(m.chunks.is_empty());
        assert_eq!(m.next_chunk, 3, "ids are never reused");
        m.check().unwrap();
    }

    #[test]
    fn transactions_move_forward_only() {
        let mut m = setup();
        m.apply(&Command::AddPartition {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
            partition: "19365".into(),
            replicas: vec!["dnode1".into()],
        })
        .unwrap();
        m.apply(&Command::BeginTxn {
            id: 7,
            participants: vec!["dnode1".into()],
        })
        .unwrap();
        assert!(
            m.apply(&Command::CommitTxn { id: 7 }).is_err(),
            "not prepared"
        );
        m.apply(&Command::PrepareTxn {
            id: 7,
            chunk_versions: vec![(1, 4)],
        })
        .unwrap();
        m.apply(&Command::CommitTxn { id: 7 }).unwrap();
        m.apply(&Command::CommitTxn { id: 7 }).unwrap();
        assert!(m.apply(&Command::AbortTxn { id: 7 }).is_err());
        assert_eq!(m.chunks[&1].version, 4);
    }

    #[test]
    fn heartbeats_and_expiry() {
        let mut m = setup();
        m.apply(&Command::Heartbeat {
            alias: "dnode1".into(),
            now_ms: 1000,
        })
        .unwrap();
        assert!(m.nodes["dnode1"].live);
        let r = m
            .apply(&Command::ExpireNodes {
                now_ms: 5000,
                timeout_ms: 3000,
            })
            .unwrap();
        assert_eq!(r, Applied::Down(vec!["dnode1".into()]));
        assert!(m
            .apply(&Command::Heartbeat {
                alias: "nobody".into(),
                now_ms: 1
            })
            .is_err());
    }

    fn arb_command() -> impl Strategy<Value = Command> {
        let db = prop::sample::select(vec!["dfs://a", "dfs://b"]).prop_map(String::from);
        let part = prop::sample::select(vec!["p1", "p2", "p3"]).prop_map(String::from);
        let node = prop::sample::select(vec!["n1", "n2", "n3"]).prop_map(String::from);
        prop_oneof![
            db.clone().prop_map(|name| Command::CreateDatabase {
                name,
                scheme: vec![]
            }),
            db.clone().prop_map(|name| Command::DropDatabase { name }),
            db.clone().prop_map(|db| Command::CreateTable {
                db,
                table: "t".into(),
                columns: vec![("k".into(), 4)],
                partition_columns: vec!["k".into()],
            }),
            (db, part).prop_map(|(db, partition)| Command::AddPartition {
                db,
                table: "t".into(),
                partition,
                replicas: vec!["n1".into(), "n2".into()],
            }),
            (
                1u64..4,
                prop::collection::vec(node.clone(), 1..3),
                any::<bool>()
            )
                .prop_map(|(c, a, r)| Command::CommitWrites {
                    id: c % 3,
                    writers: vec![(c, a)],
                    replaced: if r { vec![c] } else { vec![] },
                }),
            (1u64..4, node.clone(), 0u64..9).prop_map(|(chunk, alias, version)| {
                Command::ClearStale {
                    chunk,
                    alias,
                    version,
                }
            }),
            (1u64..4, node.clone(), node).prop_map(|(chunk, from, to)| Command::MoveReplica {
                chunk,
                from,
                to
            }),
            (0u64..3).prop_map(|id| Command::BeginTxn {
                id,
                participants: vec![]
            }),
            (0u64..3, 1u64..4, 0u64..9).prop_map(|(id, c, v)| Command::PrepareTxn {
                id,
                chunk_versions: vec![(c, v)]
            }),
            (0u64..3).prop_map(|id| Command::CommitTxn { id }),
            (0u64..3).prop_map(|id| Command::AbortTxn { id }),
        ]
    }

    proptest! {
        /// Any command sequence keeps the invariants; a refused command changes nothing; the
        /// same log gives the same state (what lets every controller replay it).
        #[test]
        fn invariants_hold_and_replay_is_deterministic(cmds in prop::collection::vec(arb_command(), 0..60)) {
            let mut m = Meta::new();
            let mut versions: BTreeMap<u64, u64> = BTreeMap::new();
            for c in &cmds {
                let before = m.clone();
                if m.apply(c).is_err() {
                    prop_assert_eq!(&m, &before);
                }
                prop_assert!(m.check().is_ok(), "{:?}", m.check());
                for (id, ch) in &m.chunks {
                    prop_assert!(ch.version >= *versions.get(id).unwrap_or(&0));
                    versions.insert(*id, ch.version);
                }
            }
            let mut again = Meta::new();
            for c in &cmds {
                let _ = again.apply(c);
            }
            prop_assert_eq!(m, again);
        }
    }

    #[test]
    fn stale_replicas_are_marked_cleared_at_the_chunk_version_and_moved() {
        let mut m = setup();
        m.apply(&Command::AddPartition {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
            partition: "19365".into(),
            replicas: vec!["dn1".into(), "dn2".into()],
        })
        .unwrap();
        // One transaction of `batches` written by `writers`, committed.
        let mut next = 1;
        let mut write = |m: &mut Meta, writers: &[&str], batches: u64, replaced: bool| {
            let id = next;
            next += 1;
            m.apply(&Command::BeginTxn {
                id,
                participants: writers.iter().map(|w| w.to_string()).collect(),
            })
            .unwrap();
            let v = m.chunks[&1].version;
            m.apply(&Command::PrepareTxn {
                id,
                chunk_versions: vec![(1, v + batches)],
            })
            .unwrap();
            let commit = Command::CommitWrites {
                id,
                writers: vec![(1, writers.iter().map(|w| w.to_string()).collect())],
                replaced: if replaced { vec![1] } else { vec![] },
            };
            let r = m.apply(&commit);
            if r.is_err() {
                m.apply(&Command::AbortTxn { id }).unwrap();
            }
            r
        };
        write(&mut m, &["dn1", "dn2"], 4, false).unwrap();
        assert!(m.chunks[&1].stale.is_empty());
        write(&mut m, &["dn1"], 1, false).unwrap();
        assert_eq!(m.chunks[&1].version, 5);
        assert_eq!(
            m.chunks[&1].stale["dn2"],
            Stale {
                since: 4,
                full: false
            },
            "it holds every commit up to 4"
        );
        assert_eq!(m.chunks[&1].current().collect::<Vec<_>>(), ["dn1"]);
        // Missing more keeps what it holds; a rewrite since needs a full copy.
        write(&mut m, &["dn1"], 1, true).unwrap();
        assert_eq!(
            m.chunks[&1].stale["dn2"],
            Stale {
                since: 4,
                full: true
            }
        );
        assert_eq!(m.chunks[&1].version, 6);
        let before = m.chunks.clone();
        assert!(
            matches!(
                write(&mut m, &["dn2"], 1, false),
                Err(MetaError::Replicas(_))
            ),
            "a stale replica's vote commits nothing: its rows do not sit on version 6"
        );
        assert!(matches!(
            write(&mut m, &["dn1", "dn2"], 1, false),
            Err(MetaError::Replicas(_))
        ));
        assert_eq!(m.chunks, before);
        let mark = |m: &mut Meta| {
            let mut c = m.chunks[&1].clone();
            c.stale.insert(
                "dn2".into(),
                Stale {
                    since: c.version,
                    full: false,
                },
            );
            m.chunks.insert(1, c);
        };
        let clear = |version| Command::ClearStale {
            chunk: 1,
            alias: "dn2".into(),
            version,
        };
        assert_eq!(
            m.apply(&clear(5)),
            Err(MetaError::VersionMoved {
                chunk: 1,
                version: 5,
                now: 6
            }),
            "a commit during the copy keeps it stale"
        );
        m.apply(&clear(6)).unwrap();
        assert!(m.chunks[&1].stale.is_empty());
        assert!(matches!(m.apply(&clear(6)), Err(MetaError::Missing(_))));
        // A node gone too long: its replica moves and starts stale; never the last current one.
        let mv = |from: &str, to: &str| Command::MoveReplica {
            chunk: 1,
            from: from.into(),
            to: to.into(),
        };
        mark(&mut m);
        assert!(matches!(
            m.apply(&mv("dn1", "dn3")),
            Err(MetaError::Replicas(_))
        ));
        m.apply(&mv("dn2", "dn3")).unwrap();
        let c = &m.chunks[&1];
        assert_eq!(c.replicas, ["dn1".to_string(), "dn3".into()].into());
        assert_eq!(
            c.stale["dn3"],
            Stale {
                since: 0,
                full: true
            }
        );
        m.check().unwrap();
    }

    #[test]
    fn finished_transactions_are_forgotten_and_their_ids_never_reused() {
        let mut m = Meta::new();
        let begin = |id| Command::BeginTxn {
            id,
            participants: vec!["dn1".into()],
        };
        m.apply(&begin(1)).unwrap();
        m.apply(&begin(2)).unwrap();
        m.apply(&Command::AbortTxn { id: 1 }).unwrap();
        m.apply(&Command::ForgetTxns { ids: vec![1, 2, 9] })
            .unwrap();
        assert!(!m.txns.contains_key(&1), "aborted: forgotten");
        assert!(m.txns.contains_key(&2), "still begun: kept");
        assert_eq!(m.next_txn, 3);
        assert!(
            matches!(m.apply(&begin(1)), Err(MetaError::Exists(_))),
            "a forgotten id is not taken again"
        );
        m.apply(&begin(3)).unwrap();
    }
}
