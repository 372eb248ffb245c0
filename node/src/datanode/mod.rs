//! The data node role: owns chunks on its volumes (a storage engine with its cache engine and
//! redo log), takes part in two-phase commit, and serves chunk reads (`crate::dfs_proto`).
//!
//! Invariants:
//! - A prepared transaction's rows are durable before the vote (the engine's `prepare` returns
//!   after its redo record is synced with `dataSync=1`) and invisible until its commit.
//! - Commit and abort are idempotent: a transaction this node no longer holds prepared was
//!   already resolved here (the redo log keeps prepared rows across restarts), so repeating the
//!   outcome is answered as done.
//! - A prepared transaction is never resolved by this node alone: the resolver asks the
//!   leader, which answers the recorded outcome or, for a coordinator silent longer than
//!   `controller::dfs::TXN_ABANDON_MS`, records an abort first.
//! - The leader judges this node's chunks (and names orphans to delete) only after the node
//!   announced itself ready with its start report ([`DataNodeService::announce`]): a report
//!   asked for earlier is refused, so chunks a single node is still adopting are never taken
//!   for dropped ones.
//! - A read is of exactly the version the reader's snapshot saw: commits after it are not
//!   shown (so a transaction over several chunks is seen whole or not at all), and a replica
//!   behind it (its commit still on the way) answers `<ChunkInTransaction>` to be asked again,
//!   never old rows.

mod forwarded;
mod query;
mod recovery;
mod scrub;

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use storage::{Engine, StorageError};

use crate::dfs_proto::*;
use crate::error::{ErrorCode, RemoteError};
use crate::leader::LeaderClient;
use crate::log::Logger;
use crate::rpc::{decode_payload, decode_request as decode, encode_payload};

/// How often the resolver looks at prepared transactions.
const RESOLVE_INTERVAL_MS: u64 = 1_000;
/// A transaction prepared for less than this is left to its coordinator.
const RESOLVE_AFTER_MS: u64 = 3_000;

pub struct DataNodeService {
    engine: Engine,
    leader: Rc<LeaderClient>,
    log: Logger,
    /// Prepared transactions → when this node first saw them prepared (its clock, ms).
    prepared_since: RefCell<BTreeMap<u64, u64>>,
    /// Its start report was taken by a leader: reports may be asked for now.
    announced: Cell<bool>,
    /// Transaction → the `Prepare::seq` whose turn it is to be logged.
    turns: RefCell<BTreeMap<u64, u32>>,
    /// The node's catalog, which runs forwarded appends (set by the start function).
    appends: OnceCell<Rc<dyn lang::catalog::Catalog>>,
    forwarded: RefCell<forwarded::Sessions>,
    /// Query answers larger than one reply, until fetched.
    pages: query::Pages,
    /// Query tasks running now (`getClusterPerf`'s runningTasks).
    pub tasks: Rc<Cell<usize>>,
    /// The other shards of this process, which compute query tasks' partitions.
    workers: OnceCell<Rc<crate::workers::Workers>>,
    /// What `GET /metrics` counts.
    stats: Stats,
    /// This node's alias, once its start report named it to a leader.
    alias: OnceCell<String>,
    /// Chunks whose damage was reported to the leader and not yet repaired (D101).
    damaged: RefCell<std::collections::BTreeSet<u64>>,
}

/// A data node's counters for `GET /metrics` (since it started).
#[derive(Default)]
struct Stats {
    prepared_rows: Cell<u64>,
    commits: Cell<u64>,
    aborts: Cell<u64>,
    query_tasks: Cell<u64>,
    query_seconds: crate::metrics::Latency,
    /// Chunks the background scrub checked, and its finished passes (`scrub`).
    scrubbed_chunks: Cell<u64>,
    scrub_passes: Cell<u64>,
}

fn bump(c: &Cell<u64>, by: u64) {
    c.set(c.get() + by);
}

/// A prepare call waits at most this long for the calls before it of its transaction (the
/// coordinator sends them together; one lost means the transaction will abort anyway).
const PREPARE_TURN_WAIT_MS: u64 = 30_000;

/// Pause between attempts to announce this node to the leader.
const ANNOUNCE_RETRY_MS: u64 = 1_000;

fn storage_error(e: StorageError) -> RemoteError {
    match e {
        // DolphinDB's words (S00002); the code carries the tag.
        StorageError::ChunkInTransaction { chunk, tid } => RemoteError::new(
            ErrorCode::ChunkInTransaction,
            format!(
                "The openChunks operation failed because the chunk {chunk} is currently locked and in use by transaction {tid}. RefId:S00002"
            ),
        ),
        // Behind the reader's snapshot: its commit is on the way; ask again.
        StorageError::VersionMismatch { .. } => {
            RemoteError::new(ErrorCode::ChunkInTransaction, e.to_string())
        }
        // Another replica can take this one's place while it is repaired.
        StorageError::Corrupt { .. } => RemoteError::new(ErrorCode::ReplicaDamaged, e.to_string()),
        // This replica flushed past the reader's snapshot; another may still serve it.
        StorageError::VersionCompacted { .. } => {
            RemoteError::new(ErrorCode::DataNodeNotAvail, e.to_string())
        }
        e => RemoteError::new(ErrorCode::StorageFailed, e.to_string()),
    }
}

impl DataNodeService {
    /// Serves `engine`; starts the resolver of prepared transactions.
    pub fn start(engine: Engine, leader: Rc<LeaderClient>, log: Logger) -> Rc<DataNodeService> {
        let svc = Rc::new(DataNodeService {
            engine,
            leader,
            log,
            prepared_since: RefCell::new(BTreeMap::new()),
            announced: Cell::new(false),
            turns: RefCell::new(BTreeMap::new()),
            appends: OnceCell::new(),
            forwarded: RefCell::new(Default::default()),
            pages: Default::default(),
            tasks: Default::default(),
            workers: OnceCell::new(),
            stats: Stats::default(),
            alias: OnceCell::new(),
            damaged: RefCell::new(Default::default()),
        });
        drop(rt::task::spawn_local(svc.clone().resolver()));
        svc
    }

    /// Spreads query tasks over `workers` (the process's other shards).
    pub fn use_workers(&self, workers: Rc<crate::workers::Workers>) {
        let _ = self.workers.set(workers);
    }

    /// Serves one call.
    pub async fn handle_rpc(&self, method: u16, payload: Vec<u8>) -> Result<Vec<u8>, RemoteError> {
        match method {
            method::CHUNK_PREPARE => {
                let (tid, seq, parts) = self.decode_prepare(&payload)?;
                drop(payload);
                self.prepare_parts(tid, seq, parts)
                    .await
                    .map(|()| encode_payload(&()))
            }
            method::CHUNK_COMMIT => {
                let tid: u64 = decode(&payload)?;
                self.turns.borrow_mut().remove(&tid);
                bump(&self.stats.commits, 1);
                let engine = self.engine.clone();
                match detached(async move { engine.commit(tid).await }).await {
                    Ok(()) | Err(StorageError::NoSuchTransaction(_)) => Ok(encode_payload(&())),
                    Err(e) => Err(storage_error(e)),
                }
            }
            method::CHUNK_ABORT => {
                let tid: u64 = decode(&payload)?;
                self.turns.borrow_mut().remove(&tid);
                bump(&self.stats.aborts, 1);
                let engine = self.engine.clone();
                match detached(async move { engine.abort(tid).await }).await {
                    Ok(()) | Err(StorageError::NoSuchTransaction(_)) => Ok(encode_payload(&())),
                    Err(e) => Err(storage_error(e)),
                }
            }
            method::CHUNK_SCAN => Ok(encode_columns(self.scan(decode(&payload)?).await?)),
            method::CHUNK_ROWS => {
                let s: Scan = decode(&payload)?;
                Ok(encode_payload(&self.at_version(s.chunk, s.version)?))
            }
            method::CHUNK_REPORT if self.announced.get() => Ok(encode_payload(&self.report())),
            method::CHUNK_REPORT => Err(RemoteError::new(
                ErrorCode::DataNodeNotAvail,
                "this data node is starting: it reports its chunks when it is ready",
            )),
            method::APPEND_FORWARD => {
                let p: ForwardedAppend = decode(&payload)?;
                self.forwarded(p).await.map(|r| encode_payload(&r))
            }
            method::QUERY_FRAGMENT => self.execute_rpc(&payload).await,
            method::QUERY_MORE => {
                let (token, offset): (u64, u64) = decode(&payload)?;
                self.pages.more(token, offset)
            }
            method::CHUNK_DROP => {
                let chunks: Vec<u64> = decode(&payload)?;
                self.drop_chunks(&chunks).await;
                Ok(encode_payload(&()))
            }
            method::CHUNK_RECOVER => {
                let r: Recover = decode(&payload)?;
                Ok(encode_payload(&self.recover(r).await?))
            }
            method::CHUNK_FETCH => {
                let f: Fetch = decode(&payload)?;
                let chunk = f.chunk;
                match self.fetch(f).await {
                    Ok(got) => Ok(encode_payload(&got)),
                    Err(e) => {
                        // A source that cannot be read may be damaged itself.
                        if recovery::names_corruption(&e.message) {
                            self.check_damage([chunk]).await;
                        }
                        Err(e)
                    }
                }
            }
            method::CHUNK_RELEASE => {
                let chunk: u64 = decode(&payload)?;
                self.release(chunk);
                Ok(encode_payload(&()))
            }
            _ => Err(RemoteError::new(
                ErrorCode::UnknownMethod,
                format!("unknown method {method}"),
            )),
        }
    }

    /// The columns a scan asks for; none when the chunk does not exist here and nothing was
    /// committed on it (the reader fills in empty columns of its schema).
    async fn scan(&self, s: Scan) -> Result<Vec<storage::column::Column>, RemoteError> {
        let rows = self.at_version(s.chunk, s.version)? as usize;
        let width = match self.engine.chunk_width(s.chunk) {
            Ok(w) => w,
            Err(_) if rows == 0 && s.version == 0 => return Ok(Vec::new()),
            Err(e) => return Err(storage_error(e)),
        };
        // Columns added to the table after this chunk's rows were written are nulls here.
        let have: Vec<usize> = s
            .columns
            .iter()
            .map(|c| *c as usize)
            .filter(|c| *c < width)
            .collect();
        let read = self
            .engine
            .scan_at(s.chunk, &have, Some(s.version))
            .await
            .map_err(storage_error)?;
        if have.len() == s.columns.len() {
            return Ok(read);
        }
        let mut read = read.into_iter();
        let mut out = Vec::with_capacity(s.columns.len());
        for (i, c) in s.columns.iter().enumerate() {
            if (*c as usize) < width {
                out.push(
                    read.next()
                        .expect("one read column per index below the width"),
                );
            } else {
                let ty = s
                    .types
                    .get(i)
                    .and_then(|t| storage::types::DataType::from_id(*t))
                    .ok_or_else(|| {
                        RemoteError::new(
                            ErrorCode::BadRequest,
                            format!("column {c} of chunk {} has no type", s.chunk),
                        )
                    })?;
                out.push(storage::column::Column::nulls(ty, rows));
            }
        }
        Ok(out)
    }

    /// The chunk's rows at committed `version`, if it holds that version (a reader's
    /// snapshot: later commits are not counted).
    fn at_version(&self, chunk: u64, version: u64) -> Result<u64, RemoteError> {
        match self.engine.rows_at(chunk, version) {
            // A chunk no transaction has committed on yet may not exist here.
            Err(StorageError::NoSuchChunk(_)) if version == 0 => Ok(0),
            r => r.map_err(storage_error),
        }
    }

    /// A prepare call's transaction, place and parts, the batches decoded straight from the
    /// payload (`PrepareRef` borrows them: no copy before the decode).
    fn decode_prepare(&self, payload: &[u8]) -> Result<(u64, u32, Vec<LocalPart>), RemoteError> {
        let bad = |e: String| RemoteError::new(ErrorCode::BadRequest, e);
        let p: PrepareRef<'_> = crate::rpc::decode_borrowed(payload)
            .map_err(|e| bad(format!("undecodable request: {e}")))?;
        let mut parts = Vec::with_capacity(p.parts.len());
        for part in p.parts {
            parts.push(LocalPart {
                chunk: part.chunk,
                schema: decode_schema(part.schema).map_err(bad)?,
                batch: storage::Batch {
                    columns: decode_columns(part.batch).map_err(bad)?,
                },
                replace: part.replace,
            });
        }
        Ok((p.tid, p.seq, parts))
    }

    /// Waits until call `seq` of `tid` may be logged (every earlier call of it was).
    async fn my_turn(&self, tid: u64, seq: u32) -> Result<(), RemoteError> {
        let deadline = rt::time::now() + Duration::from_millis(PREPARE_TURN_WAIT_MS);
        loop {
            let next = self.turns.borrow().get(&tid).copied().unwrap_or(0);
            if next == seq {
                return Ok(());
            }
            if next > seq || rt::time::now() >= deadline {
                return Err(RemoteError::new(
                    ErrorCode::BadRequest,
                    format!("prepare call {seq} of transaction {tid} arrived out of turn (next is {next})"),
                ));
            }
            rt::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Phase one for `tid`: each part's chunk created if this replica lacks it, its rows
    /// prepared (durable, invisible, the chunk locked).
    async fn prepare_parts(
        &self,
        tid: u64,
        seq: u32,
        parts: Vec<LocalPart>,
    ) -> Result<(), RemoteError> {
        self.my_turn(tid, seq).await?;
        let rows: usize = parts.iter().map(|p| p.batch.rows()).sum();
        bump(&self.stats.prepared_rows, rows as u64);
        let chunks: Vec<u64> = parts.iter().map(|p| p.chunk).collect();
        let engine = self.engine.clone();
        let logged = detached(async move { log_parts(&engine, tid, parts).await }).await;
        // The next call's turn, whatever became of this one (a failure aborts the transaction).
        self.turns.borrow_mut().insert(tid, seq + 1);
        if logged
            .as_ref()
            .is_err_and(|e| e.code == ErrorCode::ReplicaDamaged)
        {
            // The coordinator goes on without this replica; the leader is told to repair it.
            self.check_damage(chunks).await;
        }
        let lsn = logged?;
        self.engine.durable(lsn).await.map_err(storage_error)?;
        self.prepared_since
            .borrow_mut()
            .entry(tid)
            .or_insert_with(rt::time::unix_time_ms);
        Ok(())
    }

    /// This data node's part of `GET /metrics`.
    pub fn metrics(&self, out: &mut crate::metrics::Exposition) {
        let s = &self.stats;
        out.counter(
            "porpoise_prepared_rows_total",
            "Rows this data node prepared in transactions (appends and rewrites).",
            &[],
            s.prepared_rows.get() as f64,
        );
        for (outcome, n) in [("commit", s.commits.get()), ("abort", s.aborts.get())] {
            out.counter(
                "porpoise_transaction_outcomes_total",
                "Two-phase commit outcomes this data node was told.",
                &[("outcome", outcome)],
                n as f64,
            );
        }
        out.counter(
            "porpoise_query_tasks_total",
            "Query fragments this data node computed.",
            &[],
            s.query_tasks.get() as f64,
        );
        out.histogram(
            "porpoise_query_task_seconds",
            "Time to compute one query fragment here.",
            &s.query_seconds.get(),
        );
        out.gauge(
            "porpoise_query_tasks_running",
            "Query fragments computing now.",
            &[],
            self.tasks.get() as f64,
        );
        out.counter(
            "porpoise_scrub_chunks_total",
            "Chunks the background scrub read back from the disk and checked.",
            &[],
            s.scrubbed_chunks.get() as f64,
        );
        out.counter(
            "porpoise_scrub_passes_total",
            "Finished passes of the background scrub over every chunk.",
            &[],
            s.scrub_passes.get() as f64,
        );
        out.gauge(
            "porpoise_chunks_held",
            "Chunk replicas this data node holds.",
            &[],
            self.engine.chunks().len() as f64,
        );
        out.gauge(
            "porpoise_cache_engine_bytes",
            "Bytes of committed rows in the cache engine, not yet in column files.",
            &[],
            self.engine.cache_bytes() as f64,
        );
        out.gauge(
            "porpoise_redo_log_bytes",
            "Bytes of the current redo log file.",
            &[],
            self.engine.redo_log_bytes() as f64,
        );
        out.gauge(
            "porpoise_transactions_prepared",
            "Transactions prepared here and not yet decided.",
            &[],
            self.prepared_since.borrow().len() as f64,
        );
    }

    /// Every chunk this node holds, with its visible version and rows.
    pub fn report(&self) -> Vec<ChunkReport> {
        self.engine
            .chunks()
            .into_iter()
            .filter_map(|c| {
                self.engine.chunk_info(c).ok().map(|i| ChunkReport {
                    chunk: c,
                    version: i.version,
                    rows: i.rows,
                    txn: i.in_transaction,
                    path: i.dir.display().to_string(),
                    disk_bytes: i.disk_bytes,
                })
            })
            .collect()
    }

    /// A CRC-32 of chunk `chunk`'s rows as of its visible `version`, every column in order
    /// (each as the wire encodes a vector): equal on two replicas exactly when they hold the
    /// same rows in the same order. For checking convergence (`GET /chunks?digest`); it reads
    /// the whole chunk.
    pub async fn content_digest(&self, chunk: u64, version: u64) -> Result<u32, String> {
        let width = self.engine.chunk_width(chunk).map_err(|e| e.to_string())?;
        let columns: Vec<usize> = (0..width).collect();
        let cols = self
            .engine
            .scan_at(chunk, &columns, Some(version))
            .await
            .map_err(|e| e.to_string())?;
        let mut crc = crc32fast::Hasher::new();
        let mut bytes = Vec::new();
        for c in cols {
            bytes.clear();
            value::wire::encode(&value::Value::Vector(c), &mut bytes).map_err(|e| e.to_string())?;
            crc.update(&bytes);
        }
        Ok(crc.finalize())
    }

    /// Reports this node's chunks to the leader once it is ready to serve them (after a single
    /// node adopted its old catalog), retrying until a leader takes the report; then deletes
    /// the chunks the leader names as dropped. Spawned by the start function.
    pub async fn announce(self: Rc<Self>, me: Incarnation) {
        let _ = self.alias.set(me.alias.clone());
        loop {
            let push = ChunkReports {
                node: me.clone(),
                chunks: self.report(),
            };
            match self
                .leader
                .call(method::CHUNK_REPORTS, encode_payload(&push))
                .await
                .and_then(|b| {
                    decode_payload::<Vec<u64>>(&b)
                        .map_err(|e| RemoteError::new(ErrorCode::BadRequest, e.to_string()))
                }) {
                Ok(orphans) => {
                    self.announced.set(true);
                    self.drop_chunks(&orphans).await;
                    // Chunks found damaged when the node opened its storage.
                    self.check_damage(self.engine.damaged_chunks()).await;
                    self.log.info(
                        "chunks_reported",
                        &format!("{} chunks reported to the leader", push.chunks.len()),
                        &[],
                    );
                    return;
                }
                Err(e) => {
                    self.log.debug("report_refused", &e.to_string(), &[]);
                    rt::time::sleep(Duration::from_millis(ANNOUNCE_RETRY_MS)).await;
                }
            }
        }
    }

    /// Deletes chunks the metadata dropped; one a transaction holds, or gone already, is left
    /// (a later report names it again).
    async fn drop_chunks(&self, chunks: &[u64]) {
        for c in chunks {
            match self.engine.drop_chunk(*c).await {
                Ok(()) => self
                    .log
                    .info("chunk_deleted", &format!("chunk {c} was dropped"), &[]),
                Err(StorageError::NoSuchChunk(_)) => {}
                Err(e) => self.log.warn("chunk_delete_failed", &e.to_string(), &[]),
            }
        }
    }

    /// Asks the leader about transactions held prepared longer than `RESOLVE_AFTER_MS`
    /// (their coordinator may be gone, or its commit may not have reached this node).
    async fn resolver(self: Rc<Self>) {
        loop {
            rt::time::sleep(Duration::from_millis(RESOLVE_INTERVAL_MS)).await;
            let now = rt::time::unix_time_ms();
            let held = self.engine.prepared();
            let due: Vec<(u64, u64)> = {
                let mut since = self.prepared_since.borrow_mut();
                since.retain(|tid, _| held.contains(tid));
                held.iter()
                    .map(|tid| (*tid, now.saturating_sub(*since.entry(*tid).or_insert(now))))
                    .filter(|(_, waited)| *waited >= RESOLVE_AFTER_MS)
                    .collect()
            };
            for (id, waited_ms) in due {
                let ask = encode_payload(&TxnOutcome { id, waited_ms });
                let outcome = match self.leader.call(method::TXN_OUTCOME, ask).await {
                    Ok(b) => decode_payload::<Outcome>(&b).unwrap_or(Outcome::Pending),
                    Err(_) => Outcome::Pending,
                };
                self.turns.borrow_mut().remove(&id);
                let r = match outcome {
                    Outcome::Commit => self.engine.commit(id).await,
                    Outcome::Abort => self.engine.abort(id).await,
                    Outcome::Pending => continue,
                };
                match r {
                    Ok(()) | Err(StorageError::NoSuchTransaction(_)) => self.log.info(
                        "txn_resolved",
                        &format!("transaction {id}: {outcome:?}, learned from the leader"),
                        &[],
                    ),
                    Err(e) => self.log.warn("txn_resolve_failed", &e.to_string(), &[]),
                }
            }
        }
    }
}

impl ChunkServer for DataNodeService {
    fn handle(
        &self,
        method: u16,
        payload: Vec<u8>,
    ) -> lang::catalog::LocalFuture<'_, Result<Vec<u8>, RemoteError>> {
        Box::pin(self.handle_rpc(method, payload))
    }

    fn prepare(
        &self,
        tid: u64,
        parts: Vec<LocalPart>,
    ) -> lang::catalog::LocalFuture<'_, Result<(), RemoteError>> {
        // In-process work is one call.
        Box::pin(self.prepare_parts(tid, 0, parts))
    }

    fn scan(
        &self,
        s: Scan,
    ) -> lang::catalog::LocalFuture<'_, Result<Vec<storage::column::Column>, RemoteError>> {
        Box::pin(DataNodeService::scan(self, s))
    }

    fn report(&self) -> Vec<ChunkReport> {
        DataNodeService::report(self)
    }

    fn execute<'a>(
        &'a self,
        f: &'a lang::fragment::Fragment,
    ) -> lang::catalog::LocalFuture<'a, Result<Vec<lang::eval::Table>, RemoteError>> {
        Box::pin(DataNodeService::execute(self, f))
    }

    fn flush(&self) -> lang::catalog::LocalFuture<'_, Result<(), RemoteError>> {
        Box::pin(async move { self.engine.flush().await.map_err(storage_error) })
    }
}

/// Logs each part's rows for `tid` (the chunk created or widened first if need be);
/// returns the last record's position.
async fn log_parts(engine: &Engine, tid: u64, parts: Vec<LocalPart>) -> Result<u64, RemoteError> {
    let mut last = 0;
    for part in parts {
        let held = engine.chunk_info(part.chunk).ok().map(|i| i.schema);
        match held {
            None => match engine.create_chunk(part.chunk, part.schema).await {
                Ok(()) | Err(StorageError::ChunkExists(_)) => {}
                Err(e) => return Err(storage_error(e)),
            },
            // The table gained columns (`addColumn`) since this chunk was written.
            Some(s) if s.columns.len() < part.schema.columns.len() => engine
                .widen_chunk(part.chunk, part.schema)
                .await
                .map_err(storage_error)?,
            Some(_) => {}
        }
        // A recovery's synchronous phase may hold the chunk a moment: the engine waits.
        let lsn = match part.replace {
            Some(version) => {
                engine
                    .prepare_replace_logged(tid, part.chunk, version, part.batch)
                    .await
            }
            None => engine.prepare_logged(tid, part.chunk, part.batch).await,
        };
        last = last.max(lsn.map_err(storage_error)?);
    }
    Ok(last)
}

/// Runs `work` as a task of its own and waits for it: a caller that goes away (its
/// connection dropped) does not cut a prepare, commit or abort short halfway through — the
/// engine finishes it, and the outcome is learned as if the answer had been lost.
async fn detached<T: 'static>(work: impl std::future::Future<Output = T> + 'static) -> T {
    rt::task::spawn_local(work)
        .await
        .expect("a data node's engine task is never aborted")
}
