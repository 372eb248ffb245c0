//! The interpreter's one door to `dfs://` databases: the [`Catalog`] trait (namespace, chunk
//! reads, transactional appends). A single node's local store (`crate::dfs::Dfs`) and the
//! cluster's coordinator (`node::coordinator`, which reaches the controllers and data nodes over
//! RPC) implement it, so every script — DDL, `append!`, `select` — runs the same interpreter
//! code on either.
//!
//! Invariants:
//! - A [`TableInfo`] is one consistent snapshot of a table's metadata: its partitions and, in
//!   the cluster, each chunk's committed version. Reading every chunk of a snapshot at its
//!   version shows each transaction entirely or not at all.
//! - Pruning lives here ([`scan`]), not in each implementation: a backend only reads chunks, so
//!   both prune alike and a partition with a matching row is never dropped.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use storage::batch::Schema;
use storage::column::Column;
use storage::types::DataType;

use crate::eval::value::Table;
use crate::eval::EvalError;
use crate::partition::{Pred, Scheme};

/// A future that stays on its shard (the interpreter is single-threaded).
pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// One partition of a table as a snapshot saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The partition's name (`20200601`, `20200601/Key3`, `DIM`).
    pub name: String,
    pub chunk: u64,
    /// The chunk's committed version when the snapshot was taken (0 on a single node, where
    /// reads are always of the latest committed rows).
    pub version: u64,
}

/// A table's metadata, as one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    pub schema: Schema,
    /// The partitioning column of each scheme level (empty: a dimension table).
    pub partition_columns: Vec<usize>,
    pub scheme: Scheme,
    /// In partition-name order.
    pub partitions: Vec<Partition>,
}

/// What the interpreter needs of a store of `dfs://` databases.
pub trait Catalog {
    fn exists_database<'a>(&'a self, name: &'a str) -> LocalFuture<'a, Result<bool, EvalError>>;

    fn exists_table<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
    ) -> LocalFuture<'a, Result<bool, EvalError>>;

    /// Creates database `name` with `scheme`, or opens the existing one (`scheme` `None`: it
    /// must exist).
    fn database<'a>(
        &'a self,
        name: &'a str,
        scheme: Option<Scheme>,
    ) -> LocalFuture<'a, Result<(), EvalError>>;

    fn drop_database<'a>(&'a self, name: &'a str) -> LocalFuture<'a, Result<(), EvalError>>;

    /// The database's partition scheme.
    fn scheme<'a>(&'a self, db: &'a str) -> LocalFuture<'a, Result<Scheme, EvalError>>;

    /// Creates a table partitioned by `partition_columns` (none: a dimension table).
    fn create_table<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
        schema: Schema,
        partition_columns: &'a [String],
    ) -> LocalFuture<'a, Result<(), EvalError>>;

    fn drop_table<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
    ) -> LocalFuture<'a, Result<(), EvalError>>;

    /// Removes the named partitions of a table (names it does not have are ignored).
    fn drop_partitions<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
        partitions: Vec<String>,
    ) -> LocalFuture<'a, Result<(), EvalError>>;

    /// `addColumn`: columns appended to the table's schema; its rows read nulls in them.
    fn add_columns<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
        columns: Vec<(String, DataType)>,
    ) -> LocalFuture<'a, Result<(), EvalError>>;

    /// `update` and `delete`: replaces the rows of each partition with the given columns (in
    /// schema order), computed from the partition at its version; one transaction. A
    /// partition written meanwhile refuses it with `<ChunkInTransaction>` (read again, retry).
    /// `tag`, as for [`Catalog::append_tagged`], is recorded with the commit so a resend of
    /// the request is never applied twice.
    fn rewrite<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
        rewrites: Vec<(Partition, Vec<Column>)>,
        tag: Option<WriteTag>,
    ) -> LocalFuture<'a, Result<(), EvalError>>;

    /// Whether the database writes atomically per chunk (`atomic='CHUNK'`).
    fn atomic_chunk<'a>(&'a self, db: &'a str) -> LocalFuture<'a, Result<bool, EvalError>>;

    /// `setAtomicLevel` / `database(…, atomic=)`: `chunk` makes each write to the database
    /// atomic per chunk (`'CHUNK'`: a locked chunk is retried, the others written) instead of
    /// per transaction (`'TRANS'`).
    fn set_atomic_level<'a>(
        &'a self,
        db: &'a str,
        chunk: bool,
    ) -> LocalFuture<'a, Result<(), EvalError>>;

    /// A snapshot of the table's metadata.
    fn table<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
    ) -> LocalFuture<'a, Result<Rc<TableInfo>, EvalError>>;

    /// Rows of one partition at the snapshot's version (from metadata where the store can).
    fn chunk_rows<'a>(&'a self, part: &'a Partition) -> LocalFuture<'a, Result<usize, EvalError>>;

    /// Columns `columns` (schema indexes) of one partition at the snapshot's version.
    fn scan_chunk<'a>(
        &'a self,
        part: &'a Partition,
        columns: &'a [usize],
    ) -> LocalFuture<'a, Result<Vec<Column>, EvalError>>;

    /// Runs a plan fragment where its partitions' chunks are: one table per partition of
    /// `f.parts`, in that order (`crate::fragment`).
    fn execute<'a>(
        &'a self,
        f: &'a crate::fragment::Fragment,
    ) -> LocalFuture<'a, Result<Vec<Table>, EvalError>>;

    /// Whether some node holds both chunks of each partition pair of `f`'s join (always, in a
    /// store whose chunks all live in one place); a join that is not is joined whole.
    fn colocated(&self, _f: &crate::fragment::Fragment) -> bool {
        true
    }

    /// Appends `data` (columns in schema order), routed to partitions, as one transaction;
    /// returns the rows added.
    fn append<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
        data: &'a Table,
    ) -> LocalFuture<'a, Result<usize, EvalError>>;

    /// [`Catalog::append`] tagged with the client request it serves, recorded with its commit
    /// so a resend of the request is never applied twice (a store with no resends ignores it).
    fn append_tagged<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
        data: &'a Table,
        tag: Option<WriteTag>,
    ) -> LocalFuture<'a, Result<usize, EvalError>> {
        let _ = tag;
        self.append(db, table, data)
    }

    /// The rows a tagged write appended, if it committed.
    fn written<'a>(
        &'a self,
        tag: &'a WriteTag,
    ) -> LocalFuture<'a, Result<Option<usize>, EvalError>> {
        let _ = tag;
        Box::pin(async { Ok(None) })
    }

    /// Moves cached appends into column files (what a checkpoint does).
    fn flush(&self) -> LocalFuture<'_, Result<(), EvalError>>;

    /// Every chunk, for `getClusterChunksStatus`.
    fn chunks(&self) -> LocalFuture<'_, Result<Vec<ChunkRow>, EvalError>>;

    /// The leader's replica recovery tasks, for `getRecoveryTaskStatus` (none where nothing is
    /// replicated).
    fn recovery_tasks(&self) -> LocalFuture<'_, Result<Vec<RecoveryTask>, EvalError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// The chunks this node itself holds, with their local versions, for `getChunksMeta`
    /// (`replicas` is left empty).
    fn local_chunks(&self) -> LocalFuture<'_, Result<Vec<ChunkRow>, EvalError>>;

    /// Database paths (`tables`: `dbPath/tableName`), for `getClusterDFSDatabases` and
    /// `getClusterDFSTables`.
    fn names(&self, tables: bool) -> LocalFuture<'_, Result<Vec<String>, EvalError>>;
}

/// Chunk reads as a plan fragment's executor makes them: a partition at its snapshot's
/// version, with the table's schema (the node running the fragment may never have seen it).
pub trait ChunkSource {
    /// Rows of the partition (from the chunk's metadata where the store can).
    fn rows<'a>(
        &'a self,
        schema: &'a Schema,
        part: &'a Partition,
    ) -> LocalFuture<'a, Result<usize, EvalError>>;

    /// Columns `columns` (schema indexes) of the partition.
    fn columns<'a>(
        &'a self,
        schema: &'a Schema,
        part: &'a Partition,
        columns: &'a [usize],
    ) -> LocalFuture<'a, Result<Vec<Column>, EvalError>>;

    /// The same columns as pieces in row order, each one `Arc<Column>` per column with the
    /// same rows: a store that keeps decoded spans hands them out by reference, and a partial
    /// aggregate folds piece by piece without copying them into one column. By default, one
    /// piece: [`ChunkSource::columns`].
    fn pieces<'a>(
        &'a self,
        schema: &'a Schema,
        part: &'a Partition,
        columns: &'a [usize],
    ) -> LocalFuture<'a, Result<Vec<Vec<std::sync::Arc<Column>>>, EvalError>> {
        Box::pin(async move {
            let cols = self.columns(schema, part, columns).await?;
            Ok(vec![cols.into_iter().map(std::sync::Arc::new).collect()])
        })
    }
}

/// Which write of which client request a dfs write is: the official client's session uuid, its
/// request's sequence number (positive, also for a resend), and the write's place among the
/// request's writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WriteTag {
    pub client: String,
    pub request: u64,
    pub write: u32,
}

/// One replica recovery task, as the leader tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryTask {
    pub id: u64,
    pub chunk: u64,
    /// `/testDB/20200601/testTB`.
    pub path: String,
    pub source: String,
    pub dest: String,
    /// `Waiting`, `In-Progress` or `Finished`.
    pub status: String,
    pub attempts: u32,
    /// Times in ms since the epoch (0: not yet).
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
    /// The leader's clock when it answered (for the estimate of time left).
    pub now_ms: u64,
}

/// One chunk as the metadata records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRow {
    pub chunk: u64,
    /// `/testDB/20200601/testTB`.
    pub file: String,
    pub version: u64,
    /// Node aliases holding a replica, each with the version its node last reported (`None`
    /// when not known yet). Empty on `lang::dfs`'s single node: the node itself.
    pub replicas: Vec<(String, Option<u64>)>,
    /// Held by a transaction not yet resolved.
    pub in_txn: bool,
    /// Replicas that missed commits and wait for recovery.
    pub stale: Vec<String>,
    /// What this node holds of it (`local_chunks` only; empty in the cluster's view).
    pub held: Option<Held>,
}

/// A chunk as the node holding it sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub rows: u64,
    /// Its directory on the node's volume.
    pub path: String,
    /// Bytes of its flushed column files.
    pub disk_bytes: u64,
}

/// The partitions of `info` that may hold rows satisfying `preds` (level → what the query
/// allows of that level's column; empty keeps every partition).
pub fn prune<'a>(info: &'a TableInfo, preds: &[(usize, Pred)]) -> Vec<&'a Partition> {
    info.partitions
        .iter()
        .filter(|p| {
            preds
                .iter()
                .all(|(l, pred)| info.scheme.may_match(&p.name, *l, pred))
        })
        .collect()
}

/// The rows of the partitions that may satisfy `preds`, partition by partition, with only the
/// named `columns` (all when `None`; at least one, so rows can be counted). Returns the rows
/// and how many partitions were read.
pub async fn scan(
    cat: &dyn Catalog,
    info: &TableInfo,
    preds: &[(usize, Pred)],
    columns: Option<&[String]>,
) -> Result<(Table, usize), EvalError> {
    let schema = &info.schema;
    let parts = prune(info, preds);
    let mut wanted: Vec<usize> = (0..schema.columns.len())
        .filter(|i| {
            columns.is_none_or(|names| {
                names
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&schema.columns[*i].0))
            })
        })
        .collect();
    if wanted.is_empty() {
        wanted.push(0);
    }
    let mut out: Vec<(String, Column)> = wanted
        .iter()
        .map(|i| {
            let (n, t) = &schema.columns[*i];
            (n.clone(), Column::empty(*t))
        })
        .collect();
    for p in &parts {
        let cols = cat.scan_chunk(p, &wanted).await?;
        for ((_, o), c) in out.iter_mut().zip(cols) {
            if o.is_empty() {
                *o = c;
            } else {
                o.append(&c).map_err(EvalError::msg)?;
            }
        }
    }
    Ok((Table { columns: out }, parts.len()))
}

/// Row indexes by partition name.
pub type Routed = std::collections::BTreeMap<String, Vec<usize>>;

/// `data` cast to the table's column types, and its rows grouped by the partition each
/// belongs to (a dimension table keeps every row in [`crate::dfs::DIMENSION_PARTITION`]).
pub fn route<'a>(
    info: &TableInfo,
    data: &'a Table,
    new_values: crate::partition::NewValues,
) -> Result<(Vec<std::borrow::Cow<'a, Column>>, Routed), EvalError> {
    let schema = &info.schema;
    if data.columns.len() != schema.columns.len() {
        return Err(EvalError::msg(format!(
            "The data has {} columns, the table {}",
            data.columns.len(),
            schema.columns.len()
        )));
    }
    let mut cols = Vec::with_capacity(schema.columns.len());
    for ((_, ty), (_, c)) in schema.columns.iter().zip(&data.columns) {
        // Borrowed unless a cast is needed: an append's rows are copied once, into batches.
        cols.push(if c.ty == *ty {
            std::borrow::Cow::Borrowed(c)
        } else {
            std::borrow::Cow::Owned(crate::eval::cast_column(c, *ty)?)
        });
    }
    let parts = if info.partition_columns.is_empty() {
        let rows = cols.first().map(|c| c.len()).unwrap_or(0);
        std::collections::BTreeMap::from([(
            crate::dfs::DIMENSION_PARTITION.to_string(),
            (0..rows).collect(),
        )])
    } else {
        let keys: Vec<&Column> = info
            .partition_columns
            .iter()
            .map(|i| cols[*i].as_ref())
            .collect();
        info.scheme.assign(&keys, new_values)?
    };
    Ok((cols, parts))
}
