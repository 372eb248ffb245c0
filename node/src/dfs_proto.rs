//! The node-RPC messages of the distributed file system, shared by the roles that speak them
//! and owned by none: the coordinator asks the leader controller (namespace reads, placement,
//! transaction records) and data nodes (prepare, commit, abort, chunk reads). Roles never
//! import each other; they meet here.
//!
//! Payloads are bincode (`rpc::encode_payload`); column data travels in the storage engine's
//! own batch encoding (`storage::Batch::encode`), so a scan's bytes are exactly what the redo
//! log would hold.

use lang::catalog::LocalFuture;
use serde::{Deserialize, Serialize};
use storage::bytes::{Reader, Writer};
use storage::column::Column;
use storage::{Batch, Schema};

use crate::error::RemoteError;

/// Method numbers (controllers' are 20–39, data nodes' 40–59; Raft's own are below 20).
pub mod method {
    /// [`super::DfsRead`] → [`super::DfsReadReply`], linearizable, on the leader.
    pub const DFS_READ: u16 = 30;
    /// [`super::Allocate`] → `Vec<PartitionSnapshot>`: places and records new partitions.
    pub const ALLOCATE: u16 = 31;
    /// [`super::TxnBegin`] → `u64` transaction id.
    pub const TXN_BEGIN: u16 = 32;
    /// [`super::TxnDecide`] → `bool` committed. Recording a commit is the commit point.
    pub const TXN_DECIDE: u16 = 33;
    /// [`super::TxnOutcome`] → [`super::Outcome`].
    pub const TXN_OUTCOME: u16 = 34;
    /// [`super::Ddl`] → `()`: a namespace change, through Raft.
    pub const DDL: u16 = 35;
    /// `u64` tid → `()`: every participant acknowledged the outcome; the leader may forget
    /// the transaction's record.
    pub const TXN_DONE: u16 = 37;
    /// [`super::ChunkReports`] → `Vec<u64>`: a data node's chunks, pushed when it starts; the
    /// reply names the chunks it holds that the metadata dropped (to delete).
    pub const CHUNK_REPORTS: u16 = 36;

    /// [`super::Prepare`] → `()`: rows durable and invisible, chunks locked.
    pub const CHUNK_PREPARE: u16 = 40;
    /// `u64` tid → `()`: the prepared rows become visible.
    pub const CHUNK_COMMIT: u16 = 41;
    /// `u64` tid → `()`: the prepared rows are discarded.
    pub const CHUNK_ABORT: u16 = 42;
    /// [`super::Scan`] → encoded columns ([`super::decode_columns`]).
    pub const CHUNK_SCAN: u16 = 43;
    /// [`super::Scan`] (columns ignored) → `u64` rows.
    pub const CHUNK_ROWS: u16 = 44;
    /// `()` → `Vec<ChunkReport>`: what this data node holds (a new leader asks).
    pub const CHUNK_REPORT: u16 = 45;
    /// `Vec<u64>` → `()`: delete these chunks (dropped from the metadata); one held by a
    /// transaction, or absent, is skipped.
    pub const CHUNK_DROP: u16 = 46;
    /// [`super::ForwardedAppend`] → `Option<u64>`: an append a node that stores nothing (a
    /// compute node) hands to a data node to coordinate; the part marked `last` runs it and
    /// is answered with the rows added.
    pub const APPEND_FORWARD: u16 = 47;
    /// Coordinator → data node: run a plan fragment's task over this node's replicas
    /// (`lang::fragment`); the answer is one table per partition.
    pub const QUERY_FRAGMENT: u16 = 48;
    /// `(token, offset)` → the next slice of a query answer larger than one reply.
    pub const QUERY_MORE: u16 = 49;
    /// Any data or compute node: run an encoded `lang::cluster` call in a new session; the
    /// answer is its value in the client wire format (`rpc`, `pnodeRun`).
    pub const NODE_RUN: u16 = 50;
    /// Any data or compute node: `()` → its own `getClusterPerf` row, as a one-row table in the
    /// client wire format.
    pub const NODE_PERF: u16 = 51;
    /// An agent: [`crate::agent::NodeCommand`] → `bool` (whether it started a process; false:
    /// the node runs already).
    pub const NODE_START: u16 = 52;
    /// An agent: `String` alias → `bool` (whether it was running).
    pub const NODE_STOP: u16 = 53;
    /// Leader → a stale replica's data node: [`super::Recover`] → [`super::Recovered`], the
    /// replica brought to the source's version (D99).
    pub const CHUNK_RECOVER: u16 = 54;
    /// Data node → a recovery's source: [`super::Fetch`] → [`super::Fetched`].
    pub const CHUNK_FETCH: u16 = 55;
    /// Leader → a recovery's source: `u64` chunk → `()`, the end of a synchronous fetch's hold.
    pub const CHUNK_RELEASE: u16 = 56;
    /// Data node → leader: [`super::RecoveryProgress`] of a running recovery → `()`.
    pub const RECOVERY_PROGRESS: u16 = 38;
    /// Data node → leader: [`super::Damaged`], its copy of a chunk failed a checksum → `()`
    /// once the leader marked it for repair (D101).
    pub const REPLICA_DAMAGED: u16 = 57;
}

/// A namespace question for the leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DfsRead {
    ExistsDatabase(String),
    ExistsTable {
        db: String,
        table: String,
    },
    /// The database's scheme (`lang::partition` encoding).
    Scheme(String),
    Table {
        db: String,
        table: String,
    },
    /// Every chunk, for `getClusterChunksStatus`.
    Chunks,
    /// Database names, for `getClusterDFSDatabases`.
    Databases,
    /// `db/table` names, for `getClusterDFSTables`.
    Tables,
    /// Every data node with its site and liveness (where a compute node forwards appends).
    DataNodes,
    /// Whether the database writes atomically per chunk (`atomic='CHUNK'`).
    AtomicChunk(String),
    /// Every node the leader knows, and the leader itself (`getClusterPerf`, `rpc`).
    Members,
    /// The table's snapshot unless its version is still `known` (a node's metadata cache):
    /// [`DfsReadReply::TableAt`] or [`DfsReadReply::TableUnchanged`].
    TableSince {
        db: String,
        table: String,
        known: u64,
    },
    /// The leader's replica recovery tasks, for `getRecoveryTaskStatus`.
    RecoveryTasks,
    /// The rows a tagged write appended, if it committed ([`DfsReadReply::Written`]).
    Written(Tag),
    /// Which of these chunks a tagged `atomic='CHUNK'` write committed, each with its rows
    /// ([`DfsReadReply::WrittenChunks`]).
    WrittenChunks(Tag, Vec<u64>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DfsReadReply {
    Bool(bool),
    Scheme(Vec<u8>),
    Table(TableSnapshot),
    Chunks(Vec<ChunkStatus>),
    Names(Vec<String>),
    Nodes(Vec<Replica>),
    Members(Members),
    /// The table's snapshot and its version ([`table_version`]).
    TableAt(u64, TableSnapshot),
    RecoveryTasks(Vec<RecoveryTaskRow>),
    Written(Option<u64>),
    /// The table's version is still the one the asker knows.
    TableUnchanged,
    WrittenChunks(Vec<(u64, u64)>),
}

/// A table snapshot's version: a 64-bit hash of its encoding, so that any change the snapshot
/// shows — a partition added or dropped, a chunk's committed version, a replica's liveness, a
/// column — changes the version, and a cache keyed by it never serves a stale snapshot (but
/// for a hash collision, 2^-64 per change). Computed, not stored: no checkpoint format change.
pub fn table_version(t: &TableSnapshot) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bincode::serialize(t)
        .expect("a table snapshot encodes")
        .hash(&mut h);
    // 0 means "nothing known" to the asker.
    h.finish().max(1)
}

/// The cluster's nodes as the leader knows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Members {
    /// The leader controller's alias, host and port.
    pub leader: (String, String, u16),
    /// Agents, data and compute nodes: alias, host, port, `getClusterPerf` mode, heartbeating.
    pub nodes: Vec<(String, String, u16, u8, bool)>,
    /// Every controller: alias, host, port, live (acknowledging the leader), leading.
    pub controllers: Vec<(String, String, u16, bool, bool)>,
}

/// A namespace change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Ddl {
    /// Creates the database; one that exists already is left as it is (`database()` opens it).
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
        /// Column names and DolphinDB type ids.
        columns: Vec<(String, u8)>,
        partition_columns: Vec<String>,
    },
    DropTable {
        db: String,
        table: String,
    },
    DropPartitions {
        db: String,
        table: String,
        partitions: Vec<String>,
    },
    AddColumns {
        db: String,
        table: String,
        columns: Vec<(String, u8)>,
    },
    SetAtomicLevel {
        db: String,
        chunk: bool,
    },
}

/// Where a replica lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replica {
    pub alias: String,
    pub host: String,
    pub port: u16,
    /// Heartbeating, as the leader last saw.
    pub live: bool,
}

/// One partition of a table: its chunk, committed version and replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSnapshot {
    pub name: String,
    pub chunk: u64,
    pub version: u64,
    pub replicas: Vec<Replica>,
}

/// A table as the leader's metadata holds it, at one point of its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSnapshot {
    pub scheme: Vec<u8>,
    /// Column names and DolphinDB type ids.
    pub columns: Vec<(String, u8)>,
    pub partition_columns: Vec<String>,
    pub partitions: Vec<PartitionSnapshot>,
    /// The database writes atomically per chunk (`atomic='CHUNK'`).
    pub atomic_chunk: bool,
}

/// One row of `getClusterChunksStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkStatus {
    pub chunk: u64,
    /// `/testDB/20200601/testTB` (DolphinDB's file column).
    pub file: String,
    pub version: u64,
    /// Each replica's `alias` and the version its data node last reported (`None` before its
    /// first report to this leader).
    pub replicas: Vec<(String, Option<u64>)>,
    /// Whether a transaction holds the chunk (`state` is then not COMPLETE).
    pub in_txn: bool,
    /// Replicas waiting for recovery (`state` RECOVERING).
    pub stale: Vec<String>,
}

/// Place and record `partitions` of a table (those that already exist are returned as they
/// are, so concurrent appenders agree).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Allocate {
    pub db: String,
    pub table: String,
    pub partitions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxnBegin {
    pub participants: Vec<String>,
    /// The node coordinating it, if it is one that reports when it restarts (a data node).
    pub coordinator: Option<Incarnation>,
}

/// One run of a node's process: a restart is a new incarnation, so the leader can tell that
/// transactions the old one coordinated will never be decided by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incarnation {
    pub alias: String,
    /// When the process started (ms since the epoch): later runs have larger numbers.
    pub started_ms: u64,
}

/// One part of a forwarded append: the parts of one append share `session` and arrive in
/// order; each is at most `coordinator::PREPARE_BYTES_MAX` of rows, so no frame outgrows the
/// frame limit whatever the append's size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForwardedAppend {
    pub session: u64,
    pub db: String,
    pub table: String,
    /// Column names, in the order of `columns`.
    pub names: Vec<String>,
    /// `storage::Batch` encoding of this part's rows.
    #[serde(with = "serde_bytes")]
    pub columns: Vec<u8>,
    /// The append is complete: run it.
    pub last: bool,
    /// For a forwarded rewrite (`update`, `delete`): the partition these rows replace
    /// (name, chunk, the version they were computed from); `None` for an append.
    pub rewrite: Option<Rewrites>,
    /// The client request the append serves (D100).
    pub tag: Option<Tag>,
}

/// A [`lang::catalog::WriteTag`] on the wire: client uuid, request, write (D100).
pub type Tag = (String, u64, u32);

/// Set in a tag's `write` when the write is one of an `atomic='CHUNK'` append's per-chunk
/// commits: the controller then records it by write and chunk, so each chunk commits once
/// (D100). A request never holds 2^31 writes.
pub const WRITE_PER_CHUNK: u32 = 1 << 31;

pub fn tag_wire(t: &lang::catalog::WriteTag) -> Tag {
    (t.client.clone(), t.request, t.write)
}

pub fn tag_of(t: Tag) -> lang::catalog::WriteTag {
    lang::catalog::WriteTag {
        client: t.0,
        request: t.1,
        write: t.2,
    }
}

/// The partition a forwarded rewrite's rows replace: its name, chunk, and the version the rows
/// were computed from.
pub type Rewrites = (String, u64, u64);

/// What a data node holds, pushed to the leader when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkReports {
    pub node: Incarnation,
    pub chunks: Vec<ChunkReport>,
}

/// The coordinator's decision: commit (every participant voted yes) or abort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxnDecide {
    pub id: u64,
    /// Each chunk written and the batches written to it (each batch is one version).
    pub chunks: Vec<(u64, u64)>,
    pub commit: bool,
    /// Each chunk's writers: the replicas that voted yes for it. A replica left out (its node
    /// down or unreachable during prepare) becomes stale at the commit (D99).
    pub writers: Vec<(u64, Vec<String>)>,
    /// Chunks whose rows the transaction replaces (`update`, `delete`).
    pub replaced: Vec<u64>,
    /// The client request the transaction's write serves, and the rows it appends: recorded
    /// with the commit, so a resend is answered instead of applied again (D100).
    pub tag: Option<(Tag, u64)>,
}

/// A participant asks what became of `id`, which it has held prepared for `waited_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxnOutcome {
    pub id: u64,
    pub waited_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Commit,
    Abort,
    /// Not decided yet: ask again later.
    Pending,
}

/// One chunk's rows for one transaction, for one replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreparePart {
    pub chunk: u64,
    /// `storage::Schema` encoding (the chunk is created with it if this replica lacks it).
    #[serde(with = "serde_bytes")]
    pub schema: Vec<u8>,
    /// `storage::Batch` encoding.
    #[serde(with = "serde_bytes")]
    pub batch: Vec<u8>,
    /// `Some(v)`: this batch starts a rewrite — it (and the transaction's later batches for
    /// the chunk) replaces the chunk's rows, which must be at version `v`.
    pub replace: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prepare {
    pub tid: u64,
    /// This call's place among the participant's prepare calls for `tid` (0, 1, …): the
    /// coordinator sends them all at once, and the data node logs them in this order, so a
    /// chunk's batches keep the append's row order.
    pub seq: u32,
    pub parts: Vec<PreparePart>,
}

/// One part of a prepare call as the coordinator holds it: the batch still as columns.
pub struct PartToSend<'a> {
    pub chunk: u64,
    pub schema: &'a [u8],
    pub columns: &'a [Column],
    pub replace: Option<u64>,
}

/// Encodes a [`Prepare`] call exactly as `bincode::serialize` would (fixed-width
/// little-endian integers, `u64` lengths, a one-byte `Option` tag), but with each batch's
/// columns encoded straight into the payload: the rows are written once, not encoded into a
/// buffer and then copied into bincode's (a call carries up to `PREPARE_BYTES_MAX`).
pub fn encode_prepare(tid: u64, seq: u32, parts: &[PartToSend<'_>]) -> Vec<u8> {
    let estimate: usize = parts
        .iter()
        .map(|p| p.schema.len() + p.columns.iter().map(Column::heap_bytes).sum::<usize>() + 64)
        .sum();
    let mut w = Writer::with_capacity(estimate + 32);
    w.u64(tid);
    w.u32(seq);
    w.u64(parts.len() as u64);
    for p in parts {
        w.u64(p.chunk);
        w.u64(p.schema.len() as u64);
        w.bytes(p.schema);
        let len_at = w.buf.len();
        w.u64(0); // the batch's length, known once it is written
        Batch::encode_columns(p.columns, &mut w);
        let len = (w.buf.len() - len_at - 8) as u64;
        w.buf[len_at..len_at + 8].copy_from_slice(&len.to_le_bytes());
        match p.replace {
            None => w.u8(0),
            Some(v) => {
                w.u8(1);
                w.u64(v);
            }
        }
    }
    w.buf
}

/// A [`Prepare`] call decoded in place: each part's bytes borrowed from the payload.
#[derive(Debug, Deserialize)]
pub struct PrepareRef<'a> {
    pub tid: u64,
    pub seq: u32,
    #[serde(borrow)]
    pub parts: Vec<PreparePartRef<'a>>,
}

/// A [`PreparePart`] borrowed from its call's payload.
#[derive(Debug, Deserialize)]
pub struct PreparePartRef<'a> {
    pub chunk: u64,
    #[serde(borrow)]
    pub schema: &'a [u8],
    #[serde(borrow)]
    pub batch: &'a [u8],
    pub replace: Option<u64>,
}

/// Read `columns` of `chunk`; the replica must hold exactly `version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scan {
    pub chunk: u64,
    pub version: u64,
    pub columns: Vec<u32>,
    /// Each column's DolphinDB type id: a column the chunk predates (`addColumn` after its
    /// rows were written) is answered as nulls of that type.
    pub types: Vec<u8>,
}

impl Scan {
    /// A read of `columns` (schema indexes) of `part` at its snapshot's version.
    pub fn of(schema: &Schema, part: &lang::catalog::Partition, columns: &[usize]) -> Scan {
        Scan {
            chunk: part.chunk,
            version: part.version,
            columns: columns.iter().map(|c| *c as u32).collect(),
            types: columns
                .iter()
                .map(|c| schema.columns.get(*c).map_or(0, |(_, t)| *t as u8))
                .collect(),
        }
    }
}

/// A chunk a data node holds, as it reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkReport {
    pub chunk: u64,
    pub version: u64,
    pub rows: u64,
    /// The transaction holding it prepared, if any.
    pub txn: Option<u64>,
    /// Its directory on this node's volume.
    pub path: String,
    /// Bytes of its flushed column files.
    pub disk_bytes: u64,
}

pub fn encode_schema(s: &Schema) -> Vec<u8> {
    let mut w = Writer::default();
    s.encode(&mut w);
    w.buf
}

pub fn decode_schema(b: &[u8]) -> Result<Schema, String> {
    Schema::decode(&mut Reader::new(b)).map_err(|e| e.to_string())
}

pub fn encode_columns(columns: Vec<Column>) -> Vec<u8> {
    encode_columns_ref(&columns)
}

pub fn encode_columns_ref(columns: &[Column]) -> Vec<u8> {
    let mut w = Writer::default();
    // Batch owns its columns; encoding borrows them through a shallow view.
    Batch::encode_columns(columns, &mut w);
    w.buf
}

/// One chunk's rows for a transaction, as a coordinator hands them to its own data node.
pub struct LocalPart {
    pub chunk: u64,
    pub schema: Schema,
    pub batch: Batch,
    /// As [`PreparePart::replace`].
    pub replace: Option<u64>,
}

pub fn decode_columns(b: &[u8]) -> Result<Vec<Column>, String> {
    Batch::decode(&mut Reader::new(b))
        .map(|b| b.columns)
        .map_err(|e| e.to_string())
}

/// A data node's chunk service as a coordinator in the same process reaches it: the same
/// methods as over node RPC, and reads that hand over columns without encoding them.
pub trait ChunkServer {
    /// One call, as node RPC would carry it (`method::CHUNK_*`).
    fn handle(
        &self,
        method: u16,
        payload: Vec<u8>,
    ) -> LocalFuture<'_, Result<Vec<u8>, RemoteError>>;

    /// `CHUNK_PREPARE`, the batches handed over as they are.
    fn prepare(&self, tid: u64, parts: Vec<LocalPart>) -> LocalFuture<'_, Result<(), RemoteError>>;

    /// `CHUNK_SCAN`, its columns as they are.
    fn scan(&self, s: Scan) -> LocalFuture<'_, Result<Vec<Column>, RemoteError>>;

    /// Moves the cache engine's rows into column files (a checkpoint).
    fn flush(&self) -> LocalFuture<'_, Result<(), RemoteError>>;

    /// Every chunk this data node holds (`CHUNK_REPORT`).
    fn report(&self) -> Vec<ChunkReport>;

    /// Runs a plan fragment's task over this node's replicas, without encoding its results.
    fn execute<'a>(
        &'a self,
        f: &'a lang::fragment::Fragment,
    ) -> LocalFuture<'a, Result<Vec<lang::eval::Table>, RemoteError>>;
}

/// The leader controller's DFS methods as a node in the same process reaches them (the single
/// node: a one-member controller group in-process).
pub trait MetaServer {
    fn handle(
        &self,
        method: u16,
        payload: Vec<u8>,
    ) -> LocalFuture<'_, Result<Vec<u8>, RemoteError>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::types::DataType;

    /// `encode_prepare` writes exactly bincode's encoding of the owned `Prepare`, and the
    /// borrowed decode reads it back.
    #[test]
    fn a_prepare_call_is_bincode_of_prepare_and_decodes_in_place() {
        let schema = Schema::new(&[("id", DataType::Int), ("sym", DataType::Symbol)]);
        let columns = vec![
            Column {
                ty: DataType::Int,
                data: storage::column::ColumnData::I32(vec![7, 8, i32::MIN]),
            },
            Column::from_strings(DataType::Symbol, &["a", "b", "a"]),
        ];
        let schema_bytes = encode_schema(&schema);
        let parts = [
            PartToSend {
                chunk: 5,
                schema: &schema_bytes,
                columns: &columns,
                replace: None,
            },
            PartToSend {
                chunk: 6,
                schema: &schema_bytes,
                columns: &columns,
                replace: Some(9),
            },
        ];
        let ours = encode_prepare(3, 1, &parts);
        let owned = Prepare {
            tid: 3,
            seq: 1,
            parts: parts
                .iter()
                .map(|p| PreparePart {
                    chunk: p.chunk,
                    schema: p.schema.to_vec(),
                    batch: encode_columns_ref(p.columns),
                    replace: p.replace,
                })
                .collect(),
        };
        assert_eq!(ours, crate::rpc::encode_payload(&owned));
        let back: PrepareRef<'_> = crate::rpc::decode_borrowed(&ours).unwrap();
        assert_eq!((back.tid, back.seq, back.parts.len()), (3, 1, 2));
        assert_eq!(back.parts[1].replace, Some(9));
        assert_eq!(decode_columns(back.parts[0].batch).unwrap(), columns);
        assert_eq!(decode_schema(back.parts[1].schema).unwrap(), schema);
    }
}

/// Bring the stale replica of `chunk` on the called data node to `source`'s version (D99).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recover {
    pub task: u64,
    pub chunk: u64,
    pub source: Replica,
    /// Only a full copy repairs it (a rewrite committed since it went stale, or a new replica).
    pub full: bool,
    /// `dfsSyncRecoveryChunkRowSize`: once a round copies at most this many rows, the next one
    /// holds the source against writers (the synchronous phase).
    pub sync_rows: u64,
}

/// What a recovery did; the replica now holds `version`, and the source holds the chunk
/// against writers until the leader releases it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovered {
    pub version: u64,
    pub rows: u64,
    pub bytes: u64,
    /// It copied only what the replica missed (false: the whole chunk).
    pub incremental: bool,
    /// It began incremental and fell back to a full copy.
    pub fell_back: bool,
    /// When the synchronous phase began (ms since the epoch).
    pub sync_ms: u64,
}

/// A recovery asks its source for `chunk`'s rows from `from_rows` on (`None`: all of them) at
/// `version` (`None`: its latest); with `hold`, the source keeps the chunk from writers
/// afterwards. The source answers at most a page (`RECOVERY_PAGE_BYTES`); the rest is asked
/// for at the version the first page named. A first incremental page names `since`, the
/// asker's version: the source answers from `from_rows` only if it holds exactly that many
/// rows at that version (the asker's rows are then a prefix of its own), else everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fetch {
    pub chunk: u64,
    pub from_rows: Option<u64>,
    pub hold: bool,
    pub version: Option<u64>,
    pub since: Option<u64>,
}

/// The source's answer: its version and rows, and a page of the rows from `from_rows` on
/// (`None`: from the first row, because the asked start is past its rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fetched {
    pub version: u64,
    pub rows: u64,
    pub from_rows: Option<u64>,
    pub schema: Vec<u8>,
    pub columns: Vec<u8>,
}

/// The most a recovery page holds, estimated from the rows' size in memory: a quarter of
/// the frame limit, which leaves room for an encoding larger than the columns in memory.
/// The simulation's chunks are small, so its pages are too: every recovery it runs then goes
/// page by page.
pub const RECOVERY_PAGE_BYTES: usize = if cfg!(madsim) { 4 << 10 } else { 16 << 20 };
const _: () = assert!(RECOVERY_PAGE_BYTES * 4 <= crate::rpc::FRAME_PAYLOAD_BYTES_MAX);

/// A data node found its copy of `chunk` damaged on disk (`why`: the file and offset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Damaged {
    pub alias: String,
    pub chunk: u64,
    pub why: String,
}

/// A recovery's progress, reported by its target after each round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryProgress {
    pub task: u64,
    pub rows_done: u64,
    pub bytes_done: u64,
    /// The rows the replica must hold at the end, as the source last said.
    pub rows_total: u64,
}

/// One row of `getRecoveryTaskStatus` (`lang::catalog::RecoveryTask` on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryTaskRow {
    pub id: u64,
    pub chunk: u64,
    pub path: String,
    pub source: String,
    pub dest: String,
    pub status: String,
    pub attempts: u32,
    pub start_ms: u64,
    pub last_start_ms: u64,
    pub finish_ms: u64,
    pub incremental: bool,
    pub fell_back: bool,
    pub sync_ms: u64,
    pub failure: String,
    pub rows_done: u64,
    pub bytes_done: u64,
    pub rows_total: u64,
    pub now_ms: u64,
}

impl From<RecoveryTaskRow> for lang::catalog::RecoveryTask {
    fn from(r: RecoveryTaskRow) -> Self {
        lang::catalog::RecoveryTask {
            id: r.id,
            chunk: r.chunk,
            path: r.path,
            source: r.source,
            dest: r.dest,
            status: r.status,
            attempts: r.attempts,
            start_ms: r.start_ms,
            last_start_ms: r.last_start_ms,
            finish_ms: r.finish_ms,
            incremental: r.incremental,
            fell_back: r.fell_back,
            sync_ms: r.sync_ms,
            failure: r.failure,
            rows_done: r.rows_done,
            bytes_done: r.bytes_done,
            rows_total: r.rows_total,
            now_ms: r.now_ms,
        }
    }
}
