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

use crate::dfs_proto::WRITE_PER_CHUNK;

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
        /// The client request (uuid, request, write) the write serves and the rows it
        /// appends (D100): recorded in [`Meta::requests`]; refused (`Duplicate`) if that write
        /// committed already, so a resend racing its first attempt never applies twice.
        tag: Option<((String, u64, u32), u64)>,
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
    /// `alias`'s copy of `chunk` failed a block checksum (D101): it becomes stale and needs a
    /// full copy. Refused (`Replicas`) when it is the chunk's only current replica: marking it
    /// would leave nothing to read, and reads of it fail with the corruption named anyway.
    MarkDamaged {
        chunk: u64,
        alias: String,
    },
    /// The whole shared configuration of controller.cfg (`controller`) or cluster.cfg, as
    /// `saveControllerConfigs` / `saveClusterNodesConfigs` set it (`crate::config::edit`,
    /// D103): `lhs` → value. The set replaces the one held and is marked managed
    /// ([`CONFIG_MANAGED`]), so every controller writes it back to its files.
    SaveConfig {
        controller: bool,
        keys: BTreeMap<String, String>,
    },
}

/// The key a configuration set held in the metadata carries once an edit saved it: from then
/// on the set, not each controller's file, is the configuration (an empty set is then a file
/// with no shared keys, not an unedited one). No file key is empty, so it never clashes.
pub const CONFIG_MANAGED: &str = "";

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
    #[error("META-007 write {0} of this client request committed already")]
    Duplicate(String),
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
    /// Each client's last request that committed a write, by client uuid (checkpoint format
    /// 3, D100): what makes a resend after a failover exactly-once.
    pub requests: BTreeMap<String, ClientRequest>,
}

/// The writes one client request committed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClientRequest {
    /// The request's sequence number (the client's requests are sequential).
    pub request: u64,
    /// (write — its place in the request —, chunk) → the rows it appended. The chunk is 0 for
    /// a write committed as one transaction, and the chunk of an `atomic='CHUNK'` write's
    /// per-chunk commit (chunk ids start at 1; checkpoint format 4).
    pub rows: BTreeMap<(u32, u64), u64>,
    /// The transaction that last wrote here: the oldest client is forgotten first.
    pub stamp: u64,
}

/// Clients whose last request [`Meta::requests`] remembers, at most.
pub const CLIENTS_REMEMBERED_MAX: usize = 65_536;

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
                tag,
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
                let key = match tag {
                    Some(((_, _, write), _)) if write & WRITE_PER_CHUNK != 0 => {
                        let mut chunks = versions.keys();
                        match (chunks.next(), chunks.next()) {
                            (Some(c), None) => Some((write & !WRITE_PER_CHUNK, *c)),
                            _ => {
                                return Err(MetaError::Replicas(format!(
                                    "transaction {id} is tagged as one chunk's write but writes {}",
                                    versions.len()
                                )))
                            }
                        }
                    }
                    Some(((_, _, write), _)) => Some((*write, 0)),
                    None => None,
                };
                if let (Some(((client, request, _), _)), Some(key)) = (tag, key) {
                    let seen = self.requests.get(client);
                    // An older request (the client has moved on), or this very write again.
                    if seen.is_some_and(|r| {
                        r.request > *request || (r.request == *request && r.rows.contains_key(&key))
                    }) {
                        return Err(MetaError::Duplicate(format!(
                            "{client}:{request}:{}:{}",
                            key.0, key.1
                        )));
                    }
                }
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
                if let (Some(((client, request, _), rows)), Some(key)) = (tag, key) {
                    let r = self.requests.entry(client.clone()).or_default();
                    if r.request != *request {
                        r.request = *request;
                        r.rows.clear();
                    }
                    r.rows.insert(key, *rows);
                    r.stamp = *id;
                    if self.requests.len() > CLIENTS_REMEMBERED_MAX {
                        let oldest = self
                            .requests
                            .iter()
                            .min_by_key(|(_, r)| r.stamp)
                            .map(|(c, _)| c.clone());
                        if let Some(c) = oldest {
                            self.requests.remove(&c);
                        }
                    }
                }
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
            Command::MarkDamaged { chunk, alias } => {
                let c = self
                    .chunks
                    .get_mut(chunk)
                    .ok_or_else(|| MetaError::Missing(format!("chunk {chunk}")))?;
                if !c.replicas.contains(alias) {
                    return Err(MetaError::Replicas(format!(
                        "{alias} holds no replica of chunk {chunk}"
                    )));
                }
                if let Some(s) = c.stale.get_mut(alias) {
                    s.full = true;
                } else if c.current().count() == 1 {
                    return Err(MetaError::Replicas(format!(
                        "chunk {chunk}'s only current replica is the damaged one on {alias}"
                    )));
                } else {
                    let since = c.version;
                    c.stale.insert(alias.clone(), Stale { since, full: true });
                }
            }
            Command::SaveConfig { controller, keys } => {
                let cfg = if *controller {
                    &mut self.controller_config
                } else {
                    &mut self.nodes_config
                };
                *cfg = keys.clone();
                cfg.insert(CONFIG_MANAGED.to_string(), String::new());
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
#[path = "meta_tests.rs"]
mod tests;
