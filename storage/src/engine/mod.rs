//! The chunk store of one node: an OLAP cache engine over a redo log, flushed to immutable
//! column segments, with transactional versions for two-phase commit.
//!
//! Invariants:
//! - **Nothing acknowledged is lost.** `append`, `prepare`, `commit` return only after their
//!   redo record is durable (synced when `dataSync=1`). Recovery replays the log over the
//!   flushed metadata.
//! - **Readers see only durable, committed rows, in insertion order.** Rows enter the cache in
//!   log order at once, tagged with their log sequence number; a scan shows the prefix whose
//!   records are durable. Prepared rows are invisible until their commit.
//! - **Versions.** Every append or commit that touches a chunk bumps its version by one;
//!   replay applies a record only if its version is the next one, so a record already flushed
//!   is never applied twice and a gap is reported as corruption.
//! - **A chunk in an unresolved transaction refuses other writes** (`<ChunkInTransaction>`).
//! - **Corruption is never served.** A block or metadata record failing its checks marks the
//!   chunk corrupt (file and offset in the error) until it is repaired with `install_chunk`.
//! - **Memory is bounded** by `cache_bytes_max` (OLAPCacheEngineSize): a write that would exceed
//!   it first waits for a flush; a single write larger than the cache is refused.
//!
//! Chunk ids must never be reused after `drop_chunk` (DolphinDB's are UUIDs).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

pub use spans::{Piece, SpanCache, Spans};

use rt::disk;

use crate::batch::{Batch, Schema};
use crate::column::{Column, ColumnData, SymbolBase};
use crate::error::StorageError;
use crate::meta::{self, ChunkMeta};
use crate::types::DataType;
use crate::wal::{Record, Wal};

mod spans;
mod staged;
mod txn;
mod whole;
use whole::remove_unnamed_segments;
pub use whole::RECOVERING;

/// The holder [`Engine::widen_chunk`] locks a chunk as (never a transaction id: the
/// controllers number transactions from 1 up).
const WIDENING: u64 = u64::MAX;

/// Engine settings (from the node's configuration).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Data volumes; chunk `c` lives on volume `c % volumes.len()`.
    pub volumes: Vec<PathBuf>,
    /// The `CHUNK_METADATA` directory.
    pub meta_dir: PathBuf,
    /// Where the redo log lives.
    pub redo_dir: PathBuf,
    /// OLAPCacheEngineSize in bytes.
    pub cache_bytes_max: u64,
    /// dataSync=1: fsync the redo log before acknowledging.
    pub data_sync: bool,
    /// With `data_sync`, write the redo log through (O_DSYNC, one I/O per group) rather than
    /// write and then fdatasync. On by default; off only for the benchmark's comparison.
    pub redo_write_through: bool,
    /// Rows per column block.
    pub block_rows: usize,
    /// Memory for cached segment column spans (decoded), so repeated scans skip the disk and the decoder.
    pub span_cache_bytes_max: usize,
}

impl EngineConfig {
    /// A configuration with one volume under `dir` (tests and tools).
    pub fn in_dir(dir: impl Into<PathBuf>) -> EngineConfig {
        let dir = dir.into();
        EngineConfig {
            volumes: vec![dir.join("storage")],
            meta_dir: dir.join("storage").join(crate::layout::CHUNK_METADATA_DIR),
            redo_dir: dir.join("redoLog"),
            cache_bytes_max: 1 << 30,
            data_sync: true,
            redo_write_through: true,
            block_rows: 65_536,
            span_cache_bytes_max: 256 << 20,
        }
    }
}

/// A chunk's visible state.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkInfo {
    pub version: u64,
    pub rows: u64,
    pub schema: Schema,
    /// Transaction holding the chunk, if any.
    pub in_transaction: Option<u64>,
    /// Where its column files are.
    pub dir: PathBuf,
    /// Bytes of its flushed column blocks (rows still in the cache engine are in the redo log).
    pub disk_bytes: u64,
}

#[derive(Debug, Clone, Copy)]
struct Mark {
    lsn: u64,
    rows: usize,
    version: u64,
}

struct ChunkState {
    meta: ChunkMeta,
    bases: Vec<Option<Arc<SymbolBase>>>,
    /// Rows after the flushed segments, in log order (the tail may not be durable yet).
    cache: Vec<Column>,
    marks: VecDeque<Mark>,
    /// Latest logged version (may not be durable yet).
    version: u64,
    locked_by: Option<u64>,
    next_segment: u64,
    /// A verified read of a segment failed: reads and writes are refused until the chunk is
    /// repaired (`install_chunk`) or the node reopens. Its cache is still flushed normally.
    damaged: Option<StorageError>,
    /// A direct (segment) append is running: other writers wait, so order and versions hold.
    direct: bool,
}

impl ChunkState {
    fn new(meta: ChunkMeta) -> ChunkState {
        let cache = meta
            .schema
            .columns
            .iter()
            .zip(&meta.bases)
            .map(|((_, ty), b)| empty_column(*ty, b.as_ref()))
            .collect();
        ChunkState {
            bases: meta.bases.clone(),
            cache,
            marks: VecDeque::new(),
            version: meta.version,
            locked_by: None,
            next_segment: meta.segments.iter().map(|s| s.id + 1).max().unwrap_or(1),
            damaged: None,
            direct: false,
            meta,
        }
    }

    /// Cache rows and version visible when records up to `durable` are durable.
    fn visible(&self, durable: u64) -> (usize, u64) {
        match self.marks.iter().rev().find(|m| m.lsn <= durable) {
            Some(m) => (m.rows, m.version),
            None => (0, self.meta.version),
        }
    }

    /// What a reader of committed version `version` sees (records up to `durable` durable):
    /// how many leading segments, and how many cache rows — the rows of every commit up to it,
    /// none of a later one. A version above the visible one is not here yet
    /// (`VersionMismatch`); one at or below the flushed segments' is served by segments alone
    /// ([`ChunkMeta::segments_at`]).
    fn rows_at(
        &self,
        chunk: u64,
        durable: u64,
        version: u64,
    ) -> Result<(usize, usize), StorageError> {
        let (rows, visible) = self.visible(durable);
        if version > visible {
            return Err(StorageError::VersionMismatch {
                chunk,
                wanted: version,
                actual: visible,
            });
        }
        if version <= self.meta.version {
            let segments =
                self.meta
                    .segments_at(version)
                    .ok_or(StorageError::VersionCompacted {
                        chunk,
                        wanted: version,
                        through: self.meta.version,
                    })?;
            return Ok((segments, 0));
        }
        let cached = self
            .marks
            .iter()
            .rev()
            .find(|m| m.lsn <= durable && m.version <= version)
            .map(|m| m.rows)
            .unwrap_or(rows);
        Ok((self.meta.segments.len(), cached))
    }

    fn cache_rows(&self) -> usize {
        self.cache.first().map(Column::len).unwrap_or(0)
    }

    /// Appends a checked batch to the cache as `version`, logged at `lsn`.
    fn apply(&mut self, batch: &Batch, version: u64, lsn: u64) -> Result<usize, String> {
        let mut bytes = 0;
        for (i, col) in batch.columns.iter().enumerate() {
            self.cache[i].append(col)?;
            if let ColumnData::Symbol { base, .. } = &self.cache[i].data {
                self.bases[i] = Some(base.clone());
            }
            bytes += col.heap_bytes();
        }
        self.version = version;
        self.marks.push_back(Mark {
            lsn,
            rows: self.cache_rows(),
            version,
        });
        Ok(bytes)
    }
}

/// `columns` of a batch for `chunk`, each SYMBOL column re-coded against the chunk's base
/// for it in `bases` (bases only grow); other columns as they came.
fn recoded(
    chunk: u64,
    columns: Vec<Column>,
    bases: &[Option<Arc<SymbolBase>>],
) -> Result<Vec<Column>, StorageError> {
    columns
        .into_iter()
        .enumerate()
        .map(|(i, col)| match bases.get(i).and_then(|b| b.as_ref()) {
            None => Ok(col),
            Some(base) => {
                let mut out = empty_column(col.ty, Some(base));
                out.append(&col)
                    .map_err(|reason| StorageError::BadBatch { chunk, reason })?;
                Ok(out)
            }
        })
        .collect()
}

/// The symbol base of each column (`None` for a column that is not SYMBOL).
fn bases_of(columns: &[Column]) -> Vec<Option<Arc<SymbolBase>>> {
    columns
        .iter()
        .map(|col| match &col.data {
            ColumnData::Symbol { base, .. } => Some(base.clone()),
            _ => None,
        })
        .collect()
}

fn empty_column(ty: DataType, base: Option<&Arc<SymbolBase>>) -> Column {
    match base {
        Some(b) => Column {
            ty,
            data: ColumnData::Symbol {
                codes: Vec::new(),
                base: b.clone(),
            },
        },
        None => Column::empty(ty),
    }
}

struct State {
    chunks: BTreeMap<u64, ChunkState>,
    /// Chunks whose metadata could not be read or verified: id → reason.
    corrupt: BTreeMap<u64, StorageError>,
    prepared: BTreeMap<u64, Vec<(u64, Batch)>>,
    /// Transaction → its batches staged as segments (D80), in the order logged; for any one
    /// chunk they precede its batches in `prepared`.
    staged: BTreeMap<u64, Vec<(u64, staged::Staged)>>,
    /// (transaction, chunk) pairs whose prepared batches replace the chunk's rows instead of
    /// adding to them (`update` and `delete`).
    replacing: std::collections::BTreeSet<(u64, u64)>,
}

/// The chunk store. Cheap to clone; all clones share one engine (one shard).
#[derive(Clone)]
pub struct Engine {
    cfg: Rc<EngineConfig>,
    state: Rc<RefCell<State>>,
    wal: Rc<Wal>,
    /// Serialises flush, truncate, drop, install and scans against each other.
    exclusive: rt::sync::Lock,
    cache_bytes: Rc<Cell<u64>>,
    /// Decoded column spans of segments, so repeated scans skip the disk and the decoder. Segments
    /// are immutable and their ids never reused within a chunk, so entries never go stale;
    /// `install_chunk` and `drop_chunk` evict the chunk anyway.
    spans: Rc<RefCell<SpanCache>>,
}

fn corrupt_clone(e: &StorageError) -> StorageError {
    match e {
        StorageError::Corrupt {
            chunk,
            file,
            offset,
            reason,
        } => StorageError::Corrupt {
            chunk: *chunk,
            file: file.clone(),
            offset: *offset,
            reason: reason.clone(),
        },
        other => StorageError::Format(other.to_string()),
    }
}

impl Engine {
    /// Opens (or creates) the store: reads every chunk's metadata, verifies it against the
    /// segment files, and replays the redo log. Prepared-but-unresolved transactions are
    /// reported by [`Engine::prepared`].
    pub async fn open(cfg: EngineConfig) -> Result<Engine, StorageError> {
        assert!(
            !cfg.volumes.is_empty(),
            "the engine needs at least one volume"
        );
        assert!(cfg.block_rows > 0 && cfg.block_rows <= crate::codec::BLOCK_ROWS_MAX);
        for v in &cfg.volumes {
            disk::create_dir_all(v).await?;
        }
        disk::create_dir_all(&cfg.meta_dir).await?;
        let mut chunks = BTreeMap::new();
        let mut corrupt = BTreeMap::new();
        for name in disk::list_dir(&cfg.meta_dir).await? {
            let path = cfg.meta_dir.join(&name);
            if name.ends_with(".tmp") {
                disk::remove(&path).await?; // an interrupted metadata update: the old file stands
                continue;
            }
            let Some(id) = name
                .strip_suffix(".meta")
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            match meta::read_meta(&path, id).await {
                Ok(m) if m.chunk == id && (m.volume as usize) < cfg.volumes.len() => {
                    match verify_segments(&cfg, &m).await {
                        Ok(()) => {
                            chunks.insert(id, ChunkState::new(m));
                        }
                        // An I/O error is not a verdict on the data: fail the open (retryable).
                        Err(StorageError::Io(e)) => return Err(StorageError::Io(e)),
                        Err(e) => {
                            corrupt.insert(id, e);
                        }
                    }
                }
                Ok(m) => {
                    corrupt.insert(
                        id,
                        StorageError::Corrupt {
                            chunk: id,
                            file: path,
                            offset: None,
                            reason: format!(
                                "metadata names chunk {} on volume {}",
                                m.chunk, m.volume
                            ),
                        },
                    );
                }
                Err(StorageError::Io(e)) => return Err(StorageError::Io(e)),
                Err(e) => {
                    corrupt.insert(id, e);
                }
            }
        }
        let (wal, records) =
            Wal::open_with(&cfg.redo_dir, cfg.data_sync, cfg.redo_write_through).await?;
        let state = State {
            chunks,
            corrupt,
            prepared: BTreeMap::new(),
            staged: BTreeMap::new(),
            replacing: Default::default(),
        };
        let span_cache_bytes_max = cfg.span_cache_bytes_max;
        let engine = Engine {
            cfg: Rc::new(cfg),
            state: Rc::new(RefCell::new(state)),
            wal: Rc::new(wal),
            exclusive: rt::sync::Lock::new(),
            cache_bytes: Rc::new(Cell::new(0)),
            spans: Rc::new(RefCell::new(SpanCache::new(span_cache_bytes_max))),
        };
        engine.replay(records).await?;
        engine.settle_segment_files().await?;
        let bytes: u64 = {
            let state = engine.state.borrow();
            state
                .chunks
                .values()
                .flat_map(|c| c.cache.iter())
                .map(|c| c.heap_bytes() as u64)
                .chain(
                    state
                        .prepared
                        .values()
                        .flatten()
                        .map(|(_, b)| b.heap_bytes() as u64),
                )
                .sum()
        };
        engine.cache_bytes.set(bytes);
        Ok(engine)
    }

    /// Transactions prepared here and not yet resolved (ask the controller for their outcome).
    pub fn prepared(&self) -> Vec<u64> {
        let s = self.state.borrow();
        let mut tids: Vec<u64> = s.prepared.keys().chain(s.staged.keys()).copied().collect();
        tids.sort_unstable();
        tids.dedup();
        tids
    }

    /// Chunks found damaged: at open, or by a read or a verify since.
    pub fn damaged_chunks(&self) -> Vec<u64> {
        let s = self.state.borrow();
        let damaged = s.chunks.iter().filter(|(_, c)| c.damaged.is_some());
        s.corrupt
            .keys()
            .copied()
            .chain(damaged.map(|(id, _)| *id))
            .collect()
    }

    /// Ids of all chunks (corrupt ones included).
    pub fn chunks(&self) -> Vec<u64> {
        let s = self.state.borrow();
        let mut ids: Vec<u64> = s.chunks.keys().chain(s.corrupt.keys()).copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Bytes held by the cache engine (committed cache rows plus prepared rows).
    /// Bytes of the current redo log file (`GET /metrics`).
    pub fn redo_log_bytes(&self) -> u64 {
        self.wal.bytes()
    }

    pub fn cache_bytes(&self) -> u64 {
        self.cache_bytes.get()
    }

    /// The chunk, if it exists and is neither corrupt nor damaged.
    fn readable(s: &State, chunk: u64) -> Result<&ChunkState, StorageError> {
        if let Some(e) = s.corrupt.get(&chunk) {
            return Err(corrupt_clone(e));
        }
        let c = s
            .chunks
            .get(&chunk)
            .ok_or(StorageError::NoSuchChunk(chunk))?;
        match &c.damaged {
            Some(e) => Err(corrupt_clone(e)),
            None => Ok(c),
        }
    }

    /// Rows of `chunk` visible at committed version `version` (see [`Engine::scan_at`]).
    pub fn rows_at(&self, chunk: u64, version: u64) -> Result<u64, StorageError> {
        let s = self.state.borrow();
        let c = Self::readable(&s, chunk)?;
        let (segments, cached) = c.rows_at(chunk, self.wal.durable_lsn(), version)?;
        Ok(c.meta.rows_of(segments) + cached as u64)
    }

    /// The visible version, rows and schema of a chunk.
    pub fn chunk_info(&self, chunk: u64) -> Result<ChunkInfo, StorageError> {
        let s = self.state.borrow();
        let c = Self::readable(&s, chunk)?;
        let (rows, version) = c.visible(self.wal.durable_lsn());
        Ok(ChunkInfo {
            version,
            rows: c.meta.rows() + rows as u64,
            schema: c.meta.schema.clone(),
            in_transaction: c.locked_by,
            dir: meta::chunk_dir(&self.cfg.volumes[c.meta.volume as usize], chunk),
            disk_bytes: c
                .meta
                .segments
                .iter()
                .flat_map(|s| s.blocks.iter().flatten())
                .map(|b| u64::from(b.len))
                .sum(),
        })
    }

    /// How many columns a chunk's schema has (fewer than its table's after an `addColumn` it
    /// has not been written since): [`Engine::chunk_info`]'s schema without building the rest,
    /// for every read.
    pub fn chunk_width(&self, chunk: u64) -> Result<usize, StorageError> {
        let s = self.state.borrow();
        Ok(Self::readable(&s, chunk)?.meta.schema.columns.len())
    }

    /// Creates an empty chunk (durable on return).
    pub async fn create_chunk(&self, chunk: u64, schema: Schema) -> Result<(), StorageError> {
        if schema.columns.is_empty() || schema.columns.iter().any(|(_, t)| !t.storable()) {
            return Err(StorageError::BadBatch {
                chunk,
                reason: "a table needs at least one column of a storable type".into(),
            });
        }
        let _x = self.exclusive.lock().await;
        if self.state.borrow().chunks.contains_key(&chunk)
            || self.state.borrow().corrupt.contains_key(&chunk)
        {
            return Err(StorageError::ChunkExists(chunk));
        }
        let bases = schema
            .columns
            .iter()
            .map(|(_, t)| (*t == DataType::Symbol).then(|| Arc::new(SymbolBase::with_null())))
            .collect();
        let volume = (chunk % self.cfg.volumes.len() as u64) as u32;
        let m = ChunkMeta {
            chunk,
            version: 0,
            volume,
            schema,
            bases,
            segments: Vec::new(),
        };
        meta::write_meta(&self.cfg.meta_dir, &m).await?;
        self.state
            .borrow_mut()
            .chunks
            .insert(chunk, ChunkState::new(m));
        Ok(())
    }

    /// The chunk, if `batch` may be written to it now: by transaction `tid` (which may add
    /// more batches to a chunk it holds) or, with `None`, as an append of its own.
    fn check_writable<'a>(
        s: &'a mut State,
        chunk: u64,
        batch: &Batch,
        tid: Option<u64>,
    ) -> Result<&'a mut ChunkState, StorageError> {
        if let Some(e) = s.corrupt.get(&chunk) {
            return Err(corrupt_clone(e));
        }
        let c = s
            .chunks
            .get_mut(&chunk)
            .ok_or(StorageError::NoSuchChunk(chunk))?;
        if let Some(e) = &c.damaged {
            return Err(corrupt_clone(e));
        }
        batch
            .check(&c.meta.schema)
            .map_err(|reason| StorageError::BadBatch { chunk, reason })?;
        match c.locked_by {
            Some(holder) if Some(holder) != tid => {
                Err(StorageError::ChunkInTransaction { chunk, tid: holder })
            }
            _ => Ok(c),
        }
    }

    /// Waits until `bytes` more fit in the cache, flushing if needed.
    async fn make_room(&self, bytes: u64) -> Result<(), StorageError> {
        if bytes > self.cfg.cache_bytes_max {
            return Err(StorageError::TooLarge(format!(
                "a write of {bytes} bytes exceeds the cache engine ({} bytes): split the append or raise OLAPCacheEngineSize",
                self.cfg.cache_bytes_max
            )));
        }
        if self.cache_bytes.get() + bytes > self.cfg.cache_bytes_max {
            self.flush().await?;
        }
        Ok(())
    }

    /// Appends `batch` to `chunk` as its own committed transaction; returns the new version.
    pub async fn append(&self, chunk: u64, batch: Batch) -> Result<u64, StorageError> {
        if batch.rows() >= self.cfg.block_rows {
            return self.append_direct(chunk, batch).await;
        }
        // A direct append in progress owns the chunk's order: wait for it.
        while self
            .state
            .borrow()
            .chunks
            .get(&chunk)
            .is_some_and(|c| c.direct)
        {
            drop(self.exclusive.lock().await);
        }
        self.make_room(batch.heap_bytes() as u64).await?;
        let (lsn, version) = {
            let mut s = self.state.borrow_mut();
            let c = Self::check_writable(&mut s, chunk, &batch, None)?;
            let version = c.version + 1;
            let lsn = self
                .wal
                .append_with(|w| Record::encode_append(w, chunk, version, &batch))?;
            let bytes = c
                .apply(&batch, version, lsn)
                .map_err(|reason| StorageError::BadBatch { chunk, reason })?;
            self.cache_bytes.set(self.cache_bytes.get() + bytes as u64);
            (lsn, version)
        };
        self.wal.wait_durable(lsn).await?;
        Ok(version)
    }

    /// Writes every durable cached row to column segments, then checkpoints the redo log when
    /// nothing else needs it.
    pub async fn flush(&self) -> Result<(), StorageError> {
        let _x = self.exclusive.lock().await;
        let durable = self.wal.durable_lsn();
        let targets: Vec<(u64, usize, u64)> = {
            let s = self.state.borrow();
            s.chunks
                .iter()
                .filter_map(|(id, c)| {
                    let (rows, version) = c.visible(durable);
                    (rows > 0).then_some((*id, rows, version))
                })
                .collect()
        };
        for (chunk, rows, version) in targets {
            self.flush_chunk(chunk, rows, version).await?;
        }
        // Checkpoint: once every cached row is in a segment, the log only needs the prepared
        // transactions. (Checked and started without yielding, so nothing slips in between.)
        let keep: Option<Vec<Record>> = {
            let s = self.state.borrow();
            let empty = s.chunks.values().all(|c| c.cache_rows() == 0);
            // A chunk whose metadata could not be read may still have records only in the log.
            (empty && s.corrupt.is_empty() && self.wal.idle() && self.wal.bytes() > 0).then(|| {
                let mut keep = Vec::new();
                // A staged batch precedes its transaction's logged rows for the chunk.
                for (tid, parts) in &s.staged {
                    keep.extend(parts.iter().map(|(chunk, st)| st.record(*tid, *chunk)));
                }
                for (tid, parts) in &s.prepared {
                    let mut marked = std::collections::BTreeSet::new();
                    for (chunk, batch) in parts {
                        // A rewrite's marker goes before its first batch, as it was logged.
                        if s.replacing.contains(&(*tid, *chunk)) && marked.insert(*chunk) {
                            keep.push(Record::Replace {
                                tid: *tid,
                                chunk: *chunk,
                            });
                        }
                        keep.push(Record::Prepare {
                            tid: *tid,
                            chunk: *chunk,
                            batch: batch.clone(),
                        });
                    }
                }
                keep
            })
        };
        if let Some(keep) = keep {
            self.wal.rotate(&keep).await?;
        }
        Ok(())
    }

    /// Writes `columns` as segment `seg_id` of `chunk` and makes `new_meta` plus that segment
    /// the chunk's durable metadata. Returns the metadata as written.
    async fn commit_segment(
        &self,
        chunk: u64,
        volume: &std::path::Path,
        seg_id: u64,
        columns: &[Column],
        mut new_meta: ChunkMeta,
    ) -> Result<ChunkMeta, StorageError> {
        let path = meta::segment_file(volume, chunk, seg_id);
        let mut seg = meta::write_segment(&path, columns, self.cfg.block_rows).await?;
        seg.id = seg_id;
        seg.version = new_meta.version;
        new_meta.segments.push(seg);
        meta::write_meta(&self.cfg.meta_dir, &new_meta).await?;
        Ok(new_meta)
    }

    /// Moves the first `rows` cached rows of `chunk` (durable, at `version`) into a new
    /// segment. Caller holds the exclusive lock.
    async fn flush_chunk(&self, chunk: u64, rows: usize, version: u64) -> Result<(), StorageError> {
        let (columns, new_meta, seg_id, volume) = {
            let s = self.state.borrow();
            let c = &s.chunks[&chunk];
            let columns: Vec<Column> = c.cache.iter().map(|col| col.slice(0, rows)).collect();
            let mut m = c.meta.clone();
            m.version = version;
            m.bases = c.bases.clone();
            (
                columns,
                m,
                c.next_segment,
                self.cfg.volumes[c.meta.volume as usize].clone(),
            )
        };
        let new_meta = self
            .commit_segment(chunk, &volume, seg_id, &columns, new_meta)
            .await?;
        let mut s = self.state.borrow_mut();
        let c = s
            .chunks
            .get_mut(&chunk)
            .expect("the exclusive lock keeps the chunk");
        // What the flushed rows held (they were copied out above; no second copy to measure).
        let freed: usize = columns.iter().map(Column::heap_bytes).sum();
        let total = c.cache_rows();
        c.cache = if rows == total {
            // Every cached row flushed (the usual case): the cache starts empty, not copied.
            c.cache
                .iter()
                .zip(&c.bases)
                .map(|(col, b)| empty_column(col.ty, b.as_ref()))
                .collect()
        } else {
            c.cache.iter().map(|col| col.slice(rows, total)).collect()
        };
        while c.marks.front().is_some_and(|m| m.rows <= rows) {
            c.marks.pop_front();
        }
        for m in c.marks.iter_mut() {
            m.rows -= rows;
        }
        c.meta = new_meta;
        c.next_segment = seg_id + 1;
        self.cache_bytes
            .set(self.cache_bytes.get().saturating_sub(freed as u64));
        Ok(())
    }

    /// Appends a large batch straight to a new segment (encode, compress, write, sync, swap the
    /// metadata) instead of through the redo log: durable with a fraction of the bytes written.
    /// The chunk's cached rows are flushed first, so insertion order and versions hold.
    async fn append_direct(&self, chunk: u64, batch: Batch) -> Result<u64, StorageError> {
        let _x = self.exclusive.lock().await;
        {
            let mut s = self.state.borrow_mut();
            let c = Self::check_writable(&mut s, chunk, &batch, None)?;
            c.direct = true;
        }
        let result = self.append_direct_locked(chunk, batch).await;
        if let Some(c) = self.state.borrow_mut().chunks.get_mut(&chunk) {
            c.direct = false;
        }
        result
    }

    async fn append_direct_locked(&self, chunk: u64, batch: Batch) -> Result<u64, StorageError> {
        self.flush_cached_first(chunk).await?;
        let (columns, new_meta, seg_id, volume, version) = {
            let s = self.state.borrow();
            let c = s
                .chunks
                .get(&chunk)
                .ok_or(StorageError::NoSuchChunk(chunk))?;
            let columns = recoded(chunk, batch.columns, &c.bases)?;
            let version = c.version + 1;
            let mut m = c.meta.clone();
            m.version = version;
            m.bases = bases_of(&columns);
            let volume = self.cfg.volumes[c.meta.volume as usize].clone();
            (columns, m, c.next_segment, volume, version)
        };
        let new_meta = self
            .commit_segment(chunk, &volume, seg_id, &columns, new_meta)
            .await?;
        let mut s = self.state.borrow_mut();
        let c = s
            .chunks
            .get_mut(&chunk)
            .expect("the exclusive lock keeps the chunk");
        c.bases = new_meta.bases.clone();
        for (i, b) in c.bases.iter().enumerate() {
            if let (Some(b), ColumnData::Symbol { base, .. }) = (b, &mut c.cache[i].data) {
                *base = b.clone();
            }
        }
        c.version = version;
        c.meta = new_meta;
        c.next_segment = seg_id + 1;
        Ok(version)
    }

    /// Before a segment of new rows is written for `chunk`: every row cached for it made
    /// durable, then flushed into a segment of its own, so the new one comes after them. The
    /// caller holds the exclusive lock and keeps other writers off the chunk meanwhile.
    pub(super) async fn flush_cached_first(&self, chunk: u64) -> Result<(), StorageError> {
        self.wal.wait_durable(self.wal.appended_lsn()).await?;
        let pending = {
            let s = self.state.borrow();
            let c = s
                .chunks
                .get(&chunk)
                .ok_or(StorageError::NoSuchChunk(chunk))?;
            let (rows, version) = c.visible(self.wal.durable_lsn());
            debug_assert_eq!(
                rows,
                c.cache_rows(),
                "no writer adds rows to the chunk meanwhile"
            );
            (rows > 0).then_some((rows, version))
        };
        if let Some((rows, version)) = pending {
            self.flush_chunk(chunk, rows, version).await?;
        }
        Ok(())
    }

    /// Reads one column of one segment, through the span cache when `cached`.
    /// One segment's span of column `col`, decoded (checksums verified) in the chunk's type
    /// and symbol base `like`, from the span cache when `cached` and it is there; cached
    /// decoded, so a repeated scan is a copy, not a decode.
    async fn read_span(
        &self,
        path: &std::path::Path,
        chunk: u64,
        seg: &meta::SegmentMeta,
        col: usize,
        like: &Column,
        cached: bool,
    ) -> Result<Arc<Column>, StorageError> {
        let key = (chunk, seg.id, col);
        if cached {
            if let Some(c) = self.spans.borrow_mut().get(&key) {
                return Ok(c);
            }
        }
        let bytes = meta::read_span(path, chunk, seg, col).await?;
        let mut decoded = like.slice(0, 0);
        meta::decode_span(path, chunk, seg, col, &bytes, &mut decoded)?;
        let decoded = Arc::new(decoded);
        self.spans.borrow_mut().insert(key, decoded.clone());
        Ok(decoded)
    }

    /// Reads the visible rows of `columns` (indexes into the schema), cache and segments as
    /// one table in insertion order.
    pub async fn scan(&self, chunk: u64, columns: &[usize]) -> Result<Vec<Column>, StorageError> {
        self.scan_at(chunk, columns, None).await
    }

    /// [`Engine::scan`] as of committed version `version` (`None`: the latest): the rows of
    /// the commits up to it, in insertion order, and none of a later one (a reader's snapshot
    /// stays whole while newer commits land). A version not reached yet is refused with
    /// `VersionMismatch`.
    pub async fn scan_at(
        &self,
        chunk: u64,
        columns: &[usize],
        version: Option<u64>,
    ) -> Result<Vec<Column>, StorageError> {
        let mut out = Vec::with_capacity(columns.len());
        for s in self.spans_at(chunk, columns, version, true).await? {
            out.push(s.load(None).await?);
        }
        Ok(out)
    }

    /// [`Engine::scan_at`] without joining the pieces: each column as its segments' spans and
    /// the cached rows. A span in the span cache is shared decoded (`Arc`, immutable); with
    /// `decode` false, one that is not stays on disk as a [`Piece::OnDisk`] for whoever loads
    /// it — another shard reads and decodes it there (`node::workers`), not here.
    pub async fn spans_at(
        &self,
        chunk: u64,
        columns: &[usize],
        version: Option<u64>,
        decode: bool,
    ) -> Result<Vec<Spans>, StorageError> {
        let _x = self.exclusive.lock().await;
        let (meta_snapshot, bases, cached, volume) = {
            let s = self.state.borrow();
            let c = Self::readable(&s, chunk)?;
            if let Some(bad) = columns.iter().find(|i| **i >= c.meta.schema.columns.len()) {
                return Err(StorageError::BadBatch {
                    chunk,
                    reason: format!("no column {bad}"),
                });
            }
            let durable = self.wal.durable_lsn();
            let (segments, rows) = match version {
                None => (c.meta.segments.len(), c.visible(durable).0),
                Some(v) => c.rows_at(chunk, durable, v)?,
            };
            let cached: Vec<Column> = columns.iter().map(|i| c.cache[*i].slice(0, rows)).collect();
            let mut m = c.meta.clone();
            m.segments.truncate(segments);
            (
                m,
                c.bases.clone(),
                cached,
                self.cfg.volumes[c.meta.volume as usize].clone(),
            )
        };
        let mut out = Vec::with_capacity(columns.len());
        for (&i, tail) in columns.iter().zip(cached) {
            let ty = meta_snapshot.schema.columns[i].1;
            let empty = empty_column(ty, bases[i].as_ref());
            let mut parts = Vec::with_capacity(meta_snapshot.segments.len() + 1);
            for seg in &meta_snapshot.segments {
                let path = meta::segment_file(&volume, chunk, seg.id);
                if !decode {
                    let cached = self.spans.borrow_mut().get(&(chunk, seg.id, i));
                    parts.push(match cached {
                        Some(span) => Piece::Decoded(span),
                        None => Piece::OnDisk {
                            path,
                            chunk,
                            seg: seg.clone(),
                            col: i,
                        },
                    });
                    continue;
                }
                let mut result = self.read_span(&path, chunk, seg, i, &empty, true).await;
                if matches!(result, Err(StorageError::Corrupt { .. })) {
                    // A failed check may be a transient read error: read once more, from the
                    // disk, before declaring the chunk damaged.
                    result = self.read_span(&path, chunk, seg, i, &empty, false).await;
                }
                match result {
                    Ok(span) => parts.push(Piece::Decoded(span)),
                    Err(e) => {
                        if matches!(e, StorageError::Corrupt { .. }) {
                            if let Some(c) = self.state.borrow_mut().chunks.get_mut(&chunk) {
                                c.damaged = Some(corrupt_clone(&e));
                            }
                        }
                        return Err(e);
                    }
                }
            }
            if !tail.is_empty() {
                parts.push(Piece::Decoded(Arc::new(tail)));
            }
            out.push(Spans {
                empty,
                parts,
                window: None,
            });
        }
        Ok(out)
    }
}

/// Checks that every segment the metadata names exists and is long enough. (Files it does not
/// name are removed after the redo log's replay, which knows the staged ones to keep.)
async fn verify_segments(cfg: &EngineConfig, m: &ChunkMeta) -> Result<(), StorageError> {
    let volume = &cfg.volumes[m.volume as usize];
    for seg in &m.segments {
        verify_segment(volume, m.chunk, seg).await?;
    }
    Ok(())
}

/// Checks that a segment's file exists and holds its blocks.
async fn verify_segment(
    volume: &std::path::Path,
    chunk: u64,
    seg: &meta::SegmentMeta,
) -> Result<(), StorageError> {
    let path = meta::segment_file(volume, chunk, seg.id);
    let end = seg
        .blocks
        .iter()
        .flatten()
        .map(|b| b.offset + b.len as u64)
        .max()
        .unwrap_or(0);
    let size = match disk::File::open(&path, disk::OpenMode::Existing).await {
        Ok(f) => {
            let size = f.size().await?;
            f.close().await?;
            size
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StorageError::Corrupt {
                chunk,
                file: path,
                offset: None,
                reason: "segment file is missing".into(),
            })
        }
        Err(e) => return Err(e.into()),
    };
    if size < end {
        return Err(StorageError::Corrupt {
            chunk,
            file: path,
            offset: Some(size),
            reason: format!("segment file ends at {size}, its blocks at {end}"),
        });
    }
    Ok(())
}
