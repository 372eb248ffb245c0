//! A data node's part in replica recovery (ARCHITECTURE D99): as a stale replica's node it
//! copies what it missed from a current replica, and as a source it serves that copy.
//!
//! Invariants:
//! - A copy is of one committed version: an unheld read is kept only if the chunk's version
//!   did not move while it was read, and a held read has no writer to move it.
//! - An incremental copy appends the source's rows past the replica's own, which is right only
//!   because the replica holds a prefix of the chunk's rows: the metadata asks for a full copy
//!   when a rewrite committed since the replica went stale (`Stale::full`), and the replica
//!   falls back to one when its schema differs or the source has fewer rows than it.
//! - The replica ends at exactly the source's version, so the leader's `ClearStale` at that
//!   version is true of it; whether it still is the chunk's version is the leader's check.
//! - A hold never outlives `HOLD_MAX_MS`: a leader that never releases it (it died) does not
//!   block the chunk's writers for ever.

use std::time::Duration;

use storage::column::Column;
use storage::StorageError;

use super::{storage_error, DataNodeService};
use crate::dfs_proto::*;
use crate::error::{ErrorCode, RemoteError};
use crate::rpc::{decode_payload, encode_payload, RpcClient, RpcClientConfig};

/// Unheld rounds before the next round holds the source whatever it copies.
const ASYNC_ROUNDS_MAX: u32 = 4;
/// A synchronous fetch's hold on the source ends by itself after this long.
pub const HOLD_MAX_MS: u64 = 30_000;
/// A held fetch waits this long between attempts to take a chunk a transaction holds.
const HOLD_RETRY_MS: u64 = 5;
/// And gives up after this long (the recovery is tried again later).
const HOLD_WAIT_MS: u64 = 10_000;
/// An unheld read is retried this many times when a commit moves the version under it.
const READ_ATTEMPTS_MAX: u32 = 5;

/// Calls to a recovery's source: a full copy of a large chunk takes a while.
const SOURCE_CALL: RpcClientConfig = RpcClientConfig {
    connect_timeout: Duration::from_millis(2_000),
    call_timeout: Duration::from_millis(300_000),
    inflight_max: 4,
};

fn failed(why: String) -> RemoteError {
    RemoteError::new(ErrorCode::StorageFailed, why)
}

impl DataNodeService {
    /// Brings this node's stale replica of `r.chunk` to the source's version: unheld rounds
    /// while writes go on, then one held round (the synchronous phase).
    pub(super) async fn recover(&self, r: Recover) -> Result<Recovered, RemoteError> {
        let addr = crate::server::resolve_addr(&r.source.host, r.source.port)
            .map_err(|e| failed(e.to_string()))?;
        let source = RpcClient::new(addr, SOURCE_CALL);
        let mut full = r.full;
        let mut done = Recovered {
            version: 0,
            rows: 0,
            bytes: 0,
            incremental: !r.full,
            fell_back: false,
            sync_ms: 0,
        };
        let mut last_copied = u64::MAX;
        for round in 0.. {
            let mine = match self.engine.chunk_info(r.chunk) {
                Ok(i) => Some(i),
                Err(StorageError::NoSuchChunk(_)) => None,
                Err(e) => return Err(storage_error(e)),
            };
            if mine.is_none() && !full {
                full = true;
                done.fell_back = true;
            }
            let hold = round >= ASYNC_ROUNDS_MAX || (round > 0 && last_copied <= r.sync_rows);
            if hold && done.sync_ms == 0 {
                done.sync_ms = rt::time::unix_time_ms();
            }
            let ask = Fetch {
                chunk: r.chunk,
                from_rows: if full {
                    None
                } else {
                    mine.as_ref().map(|m| m.rows)
                },
                hold,
            };
            let answer = source
                .call(method::CHUNK_FETCH, encode_payload(&ask))
                .await
                .map_err(|e| failed(format!("the source {}: {e}", r.source.alias)))?;
            done.bytes += answer.len() as u64;
            let got: Fetched = decode_payload(&answer)
                .map_err(|e| failed(format!("a bad answer from {}: {e}", r.source.alias)))?;
            let schema = decode_schema(&got.schema).map_err(failed)?;
            let columns = decode_columns(&got.columns).map_err(failed)?;
            let copied = columns.first().map_or(0, |c| c.len() as u64);
            let same_schema = mine.as_ref().is_some_and(|m| m.schema == schema);
            let batch = match (got.from_rows, &mine) {
                (Some(_), Some(m)) if same_schema => {
                    if copied == 0 && m.version == got.version {
                        None
                    } else {
                        Some(self.own_rows_then(r.chunk, columns).await?)
                    }
                }
                (None, _) => {
                    full = true;
                    Some(columns)
                }
                // Incremental cannot apply: copy all of it next round.
                _ => {
                    if !full {
                        full = true;
                        done.fell_back = true;
                    }
                    last_copied = u64::MAX;
                    if hold {
                        // The leader releases the hold when this call fails; a full round
                        // held from the start keeps the synchronous phase short.
                        self.release_at(&source, r.chunk).await;
                    }
                    continue;
                }
            };
            if let Some(columns) = batch {
                self.engine
                    .install_chunk(
                        r.chunk,
                        Some(got.version),
                        schema,
                        storage::Batch { columns },
                    )
                    .await
                    .map_err(storage_error)?;
            }
            done.rows += copied;
            done.version = got.version;
            done.incremental = !full || done.fell_back;
            last_copied = copied;
            let progress = RecoveryProgress {
                task: r.task,
                rows_done: done.rows,
                bytes_done: done.bytes,
                rows_total: got.rows,
            };
            let _ = self
                .leader
                .call(method::RECOVERY_PROGRESS, encode_payload(&progress))
                .await;
            if hold {
                return Ok(done);
            }
        }
        unreachable!("the loop returns")
    }

    /// This node's rows of `chunk` followed by `more`.
    async fn own_rows_then(
        &self,
        chunk: u64,
        more: Vec<Column>,
    ) -> Result<Vec<Column>, RemoteError> {
        let width = more.len();
        let all: Vec<usize> = (0..width).collect();
        let mut mine = self.engine.scan(chunk, &all).await.map_err(storage_error)?;
        for (m, c) in mine.iter_mut().zip(&more) {
            m.append(c).map_err(failed)?;
        }
        Ok(mine)
    }

    async fn release_at(&self, source: &RpcClient, chunk: u64) {
        let _ = source
            .call(method::CHUNK_RELEASE, encode_payload(&chunk))
            .await;
    }

    /// The source's side: the chunk's rows at its latest version, from `f.from_rows` on.
    pub(super) async fn fetch(&self, f: Fetch) -> Result<Fetched, RemoteError> {
        if f.hold {
            self.hold(f.chunk).await?;
        }
        let info = self.engine.chunk_info(f.chunk).map_err(storage_error)?;
        let all: Vec<usize> = (0..info.schema.columns.len()).collect();
        let mut attempt = 0;
        let (version, columns) = loop {
            let before = self
                .engine
                .chunk_info(f.chunk)
                .map_err(storage_error)?
                .version;
            let columns = self
                .engine
                .scan_at(f.chunk, &all, Some(before))
                .await
                .map_err(storage_error)?;
            let after = self
                .engine
                .chunk_info(f.chunk)
                .map_err(storage_error)?
                .version;
            attempt += 1;
            if before == after || f.hold || attempt >= READ_ATTEMPTS_MAX {
                if before != after && !f.hold {
                    return Err(failed(format!(
                        "chunk {} kept moving while it was read",
                        f.chunk
                    )));
                }
                break (before, columns);
            }
        };
        let rows = columns.first().map_or(0, |c| c.len() as u64);
        let from = f.from_rows.filter(|n| *n <= rows);
        let columns = match from {
            Some(n) => columns
                .iter()
                .map(|c| c.slice(n as usize, rows as usize))
                .collect(),
            None => columns,
        };
        Ok(Fetched {
            version,
            rows,
            from_rows: from,
            schema: encode_schema(&info.schema),
            columns: encode_columns(columns),
        })
    }

    /// Takes `chunk` from writers for a synchronous fetch, waiting for a transaction that
    /// holds it to finish; the hold ends by itself after [`HOLD_MAX_MS`].
    async fn hold(&self, chunk: u64) -> Result<(), RemoteError> {
        let deadline = rt::time::now() + Duration::from_millis(HOLD_WAIT_MS);
        loop {
            match self.engine.hold_chunk(chunk) {
                Ok(()) => break,
                Err(StorageError::ChunkInTransaction { .. }) if rt::time::now() < deadline => {
                    rt::time::sleep(Duration::from_millis(HOLD_RETRY_MS)).await;
                }
                Err(e) => return Err(storage_error(e)),
            }
        }
        // Ending early is safe (the leader's ClearStale checks the version; the hold only
        // keeps the synchronous phase from being overtaken by writes), never ending is not.
        let engine = self.engine.clone();
        drop(rt::task::spawn_local(async move {
            rt::time::sleep(Duration::from_millis(HOLD_MAX_MS)).await;
            engine.release_chunk(chunk);
        }));
        Ok(())
    }

    /// Ends a synchronous fetch's hold (the leader recorded the replica, or gave up).
    pub(super) fn release(&self, chunk: u64) {
        self.engine.release_chunk(chunk);
    }
}
