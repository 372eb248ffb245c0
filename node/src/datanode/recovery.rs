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

use storage::column::{Column, ColumnData};
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

/// How many rows from `start` (of `rows`) fit in a page of about [`RECOVERY_PAGE_BYTES`],
/// estimated from the columns' size in memory; at least one while any is left. A symbol
/// column's dictionary goes whole with every page, so it comes off the budget first (down to
/// a quarter of it).
fn page_rows(columns: &[Column], start: u64, rows: u64) -> u64 {
    let left = rows.saturating_sub(start);
    if left == 0 {
        return 0;
    }
    let per_page: usize = columns
        .iter()
        .map(|c| match &c.data {
            ColumnData::Symbol { base, .. } => base.strings.iter().map(|s| s.len() + 1).sum(),
            _ => 0,
        })
        .sum();
    let budget = RECOVERY_PAGE_BYTES
        .saturating_sub(per_page)
        .max(RECOVERY_PAGE_BYTES / 4);
    let bytes: usize = columns.iter().map(Column::heap_bytes).sum();
    let per_row = (bytes as u64).div_ceil(rows).max(1);
    (budget as u64 / per_row).clamp(1, left)
}

/// A read's error names a failed check of stored bytes (`STO-002`, which a span decoded on
/// another shard carries only in its message): worth a look at the disk.
pub(super) fn names_corruption(message: &str) -> bool {
    message.contains("STO-002")
}

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
        self.log.info(
            "recovery_started",
            &format!(
                "chunk {}: task {}, {} copy from {}",
                r.chunk,
                r.task,
                if full { "full" } else { "incremental" },
                r.source.alias
            ),
            &[],
        );
        for round in 0.. {
            let mine = match self.engine.chunk_info(r.chunk) {
                Ok(i) => Some(i),
                // Nothing to build on: a full copy replaces (and so repairs) it.
                Err(StorageError::NoSuchChunk(_) | StorageError::Corrupt { .. }) => None,
                Err(e) => return Err(storage_error(e)),
            };
            if mine.is_none() && !full {
                full = true;
                done.fell_back = round == 0;
            }
            let hold = round >= ASYNC_ROUNDS_MAX || (round > 0 && last_copied <= r.sync_rows);
            if hold && done.sync_ms == 0 {
                done.sync_ms = rt::time::unix_time_ms();
            }
            // Incremental: the rows past this replica's, if the source proves them a prefix.
            let base = if full {
                None
            } else {
                mine.as_ref().map(|m| (m.version, m.rows))
            };
            let (got, columns, bytes) = self.fetch_round(&source, &r, base, hold).await?;
            done.bytes += bytes;
            let copied = columns.first().map_or(0, |c| c.len() as u64);
            self.log.info(
                "recovery_round",
                &format!(
                    "chunk {}: round {round}{}, {} from row {}, {copied} rows of {} at version {}",
                    r.chunk,
                    if hold { " (held)" } else { "" },
                    if got.from_rows.is_some() {
                        "incremental"
                    } else {
                        "full"
                    },
                    got.from_rows.unwrap_or(0),
                    got.rows,
                    got.version
                ),
                &[],
            );
            let schema = decode_schema(&got.schema).map_err(failed)?;
            let same_schema = mine.as_ref().is_some_and(|m| m.schema == schema);
            let batch = match (got.from_rows, &mine) {
                (Some(_), Some(m)) if same_schema => {
                    if copied == 0 && m.version == got.version {
                        None
                    } else {
                        Some(self.own_rows_then(r.chunk, columns).await?)
                    }
                }
                // The whole chunk (asked for, or the source could not prove a prefix).
                (None, _) => {
                    if base.is_some() && round == 0 {
                        done.fell_back = true;
                    }
                    Some(columns)
                }
                // The schema changed under the replica: copy all of it next round.
                _ => {
                    full = true;
                    done.fell_back |= round == 0;
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
            // The replica now holds exactly the source's rows at `got.version`: later rounds
            // copy only what lands after it.
            full = false;
            done.rows += copied;
            done.version = got.version;
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
                self.damaged.borrow_mut().remove(&r.chunk);
                return Ok(done);
            }
        }
        unreachable!("the loop returns")
    }

    /// A read of `chunks` failed here: each one the disk shows damaged is reported to the
    /// leader, once until it is repaired, which marks this replica stale and has it copied back
    /// from a good one (D101). A failure the disk does not confirm (it passed) is not.
    pub(super) async fn check_damage(&self, chunks: impl IntoIterator<Item = u64>) {
        let Some(alias) = self.alias.get().cloned() else {
            return;
        };
        for chunk in chunks {
            if self.damaged.borrow().contains(&chunk) {
                continue;
            }
            let why = match self.engine.verify_chunk(chunk).await {
                Err(e @ StorageError::Corrupt { .. }) => e.to_string(),
                _ => continue,
            };
            self.damaged.borrow_mut().insert(chunk);
            self.log.error(
                "replica_damaged",
                &format!(
                    "chunk {chunk}: {why}; the leader is told, to repair it from another replica"
                ),
                &[],
            );
            let report = Damaged {
                alias: alias.clone(),
                chunk,
                why,
            };
            let told = self
                .leader
                .call(method::REPLICA_DAMAGED, encode_payload(&report))
                .await;
            if told.is_err() {
                // Told again at the next failed read.
                self.damaged.borrow_mut().remove(&chunk);
            }
        }
    }

    /// One round's copy from the source, page by page, every page at the first one's version
    /// (so the pages join into that version's rows whatever commits land meanwhile): the
    /// first page's header (its `columns` emptied), the joined rows and the bytes fetched.
    async fn fetch_round(
        &self,
        source: &RpcClient,
        r: &Recover,
        base: Option<(u64, u64)>,
        hold: bool,
    ) -> Result<(Fetched, Vec<Column>, u64), RemoteError> {
        let ask = |from_rows, hold, version, since| Fetch {
            chunk: r.chunk,
            from_rows,
            hold,
            version,
            since,
        };
        let first = ask(base.map(|b| b.1), hold, None, base.map(|b| b.0));
        let first = self.fetch_page(source, r, first).await?;
        let mut columns = decode_columns(&first.columns).map_err(failed)?;
        let mut bytes = first.columns.len();
        let mut next = first.from_rows.unwrap_or(0) + columns.first().map_or(0, |c| c.len() as u64);
        while next < first.rows {
            let page = self
                .fetch_page(source, r, ask(Some(next), false, Some(first.version), None))
                .await?;
            let more = decode_columns(&page.columns).map_err(failed)?;
            let copied = more.first().map_or(0, |c| c.len() as u64);
            if page.version != first.version || page.from_rows != Some(next) || copied == 0 {
                return Err(failed(format!(
                    "{} answered chunk {} from row {:?} at version {} with {copied} rows, asked from row {next} at version {}",
                    r.source.alias, r.chunk, page.from_rows, page.version, first.version
                )));
            }
            for (c, m) in columns.iter_mut().zip(&more) {
                c.append(m).map_err(failed)?;
            }
            bytes += page.columns.len();
            next += copied;
            let progress = RecoveryProgress {
                task: r.task,
                rows_done: next - first.from_rows.unwrap_or(0),
                bytes_done: bytes as u64,
                rows_total: first.rows,
            };
            let _ = self
                .leader
                .call(method::RECOVERY_PROGRESS, encode_payload(&progress))
                .await;
        }
        let header = Fetched {
            columns: Vec::new(),
            ..first
        };
        Ok((header, columns, bytes as u64))
    }

    async fn fetch_page(
        &self,
        source: &RpcClient,
        r: &Recover,
        ask: Fetch,
    ) -> Result<Fetched, RemoteError> {
        let answer = source
            .call(method::CHUNK_FETCH, encode_payload(&ask))
            .await
            .map_err(|e| failed(format!("the source {}: {e}", r.source.alias)))?;
        decode_payload(&answer)
            .map_err(|e| failed(format!("a bad answer from {}: {e}", r.source.alias)))
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

    /// The source's side: a page of the chunk's rows at `f.version` (default its latest),
    /// from `f.from_rows` on.
    pub(super) async fn fetch(&self, f: Fetch) -> Result<Fetched, RemoteError> {
        if f.hold {
            self.hold(f.chunk).await?;
        }
        let info = self.engine.chunk_info(f.chunk).map_err(storage_error)?;
        let all: Vec<usize> = (0..info.schema.columns.len()).collect();
        let (version, columns) = match f.version {
            // A later page: exactly the version the first one named.
            Some(v) => {
                let columns = self
                    .engine
                    .scan_at(f.chunk, &all, Some(v))
                    .await
                    .map_err(storage_error)?;
                (v, columns)
            }
            None => self.read_latest(f.chunk, &all, f.hold).await?,
        };
        let rows = columns.first().map_or(0, |c| c.len() as u64);
        // The asker's rows are a prefix of these only if this replica has exactly as many at
        // the asker's version: a rewrite since leaves none of its segments at that version.
        let prefix = match (f.from_rows, f.since) {
            (Some(n), Some(v)) => v <= version && self.engine.rows_at(f.chunk, v).ok() == Some(n),
            (Some(_), None) => true,
            (None, _) => false,
        };
        let from = f.from_rows.filter(|n| prefix && *n <= rows);
        let start = from.unwrap_or(0);
        let end = start + page_rows(&columns, start, rows);
        let page = columns
            .iter()
            .map(|c| c.slice(start as usize, end as usize))
            .collect();
        Ok(Fetched {
            version,
            rows,
            from_rows: from,
            schema: encode_schema(&info.schema),
            columns: encode_columns(page),
        })
    }

    /// The chunk's rows at its latest version, read so that no commit moved it meanwhile
    /// (under a hold nothing can).
    async fn read_latest(
        &self,
        chunk: u64,
        all: &[usize],
        held: bool,
    ) -> Result<(u64, Vec<Column>), RemoteError> {
        let mut attempt = 0;
        loop {
            let before = self
                .engine
                .chunk_info(chunk)
                .map_err(storage_error)?
                .version;
            let columns = self
                .engine
                .scan_at(chunk, all, Some(before))
                .await
                .map_err(storage_error)?;
            let after = self
                .engine
                .chunk_info(chunk)
                .map_err(storage_error)?
                .version;
            attempt += 1;
            if before == after || held {
                return Ok((before, columns));
            }
            if attempt >= READ_ATTEMPTS_MAX {
                return Err(failed(format!(
                    "chunk {chunk} kept moving while it was read"
                )));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use storage::types::DataType;

    fn column(ty: DataType, data: ColumnData) -> Column {
        Column { ty, data }
    }

    #[test]
    fn a_page_is_bounded_by_bytes_and_never_empty_while_rows_are_left() {
        let rows = 3_000_000u64;
        let col = column(DataType::Long, ColumnData::I64((0..rows as i64).collect()));
        let per_row = col.heap_bytes() as u64 / rows;
        assert_eq!(per_row, 8);
        let page = page_rows(std::slice::from_ref(&col), 0, rows);
        assert_eq!(page, RECOVERY_PAGE_BYTES as u64 / 8);
        assert!(page < rows, "a 24 MB chunk takes more than one page");
        // The last page is what is left; none past the end.
        assert_eq!(page_rows(std::slice::from_ref(&col), rows - 5, rows), 5);
        assert_eq!(page_rows(std::slice::from_ref(&col), rows, rows), 0);
        // A row larger than a page still goes, one at a time.
        let big = RECOVERY_PAGE_BYTES * 2;
        let wide = column(
            DataType::String,
            ColumnData::Bytes {
                offsets: vec![0, big as u32],
                data: vec![b'x'; big],
            },
        );
        assert_eq!(page_rows(&[wide], 0, 1), 1);
    }
}
