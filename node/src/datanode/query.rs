//! A data node runs plan fragments over its own replicas (`lang::fragment`): the coordinator
//! sends one task naming the partitions this node is to compute, at the snapshot's versions,
//! and gets one table per partition back.
//!
//! Invariant: a task is all or nothing. It answers every partition it names or fails as a
//! whole, so a coordinator that reruns a failed task elsewhere never counts a partition twice
//! or drops one. A replica behind the snapshot waits briefly for its commit; one still behind
//! (or without the chunk) fails the task as `<DataNodeNotAvail>`, which sends it to another
//! replica; an error in the query itself is `QueryFailed`, which no other replica would fix.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use lang::catalog::{ChunkSource, LocalFuture, Partition};
use lang::eval::{EvalError, Table};
use lang::fragment::Fragment;
use storage::batch::Schema;
use storage::column::Column;

use super::DataNodeService;
use crate::dfs_proto::Scan;
use crate::error::{ErrorCode, RemoteError};
use crate::workers::{Input, Workers};

/// A replica behind the snapshot is asked again this many times, this far apart, before the
/// task goes to another replica.
const BEHIND_RETRIES_MAX: u32 = 20;
const BEHIND_PAUSE_MS: u64 = 50;

/// A partition is cut into row ranges over the shards only if each range gets this many rows
/// at least (below it, the message and the combine cost more than the range saves).
const SPLIT_ROWS_MIN: usize = 1 << 16;

/// A task's answer travels in slices of at most this many bytes (a frame holds 64 MiB); the
/// first slice answers the call and the coordinator asks for the rest (`QUERY_MORE`).
pub const REPLY_SLICE_BYTES: usize = 32 << 20;
/// An answer not fetched whole within this long is dropped (its coordinator is gone).
const PAGES_KEPT_MS: u64 = 60_000;

/// Answers larger than one slice, kept until their coordinator has fetched them.
#[derive(Default)]
pub struct Pages {
    next: Cell<u64>,
    kept: RefCell<HashMap<u64, (Vec<u8>, u64)>>,
}

impl Pages {
    /// The call's answer: `0` and the whole encoding, or `1`, a token, the total length and
    /// the first slice.
    fn answer(&self, bytes: Vec<u8>) -> Vec<u8> {
        if bytes.len() <= REPLY_SLICE_BYTES {
            let mut out = Vec::with_capacity(bytes.len() + 1);
            out.push(0);
            out.extend_from_slice(&bytes);
            return out;
        }
        let now = rt::time::unix_time_ms();
        self.kept.borrow_mut().retain(|_, (_, until)| *until > now);
        let token = self.next.get() + 1;
        self.next.set(token);
        let mut out = Vec::with_capacity(REPLY_SLICE_BYTES + 17);
        out.push(1);
        out.extend_from_slice(&token.to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&bytes[..REPLY_SLICE_BYTES]);
        self.kept
            .borrow_mut()
            .insert(token, (bytes, now + PAGES_KEPT_MS));
        out
    }

    /// The slice of answer `token` from `offset`; the last one forgets the answer.
    pub(super) fn more(&self, token: u64, offset: u64) -> Result<Vec<u8>, RemoteError> {
        let mut kept = self.kept.borrow_mut();
        let Some((bytes, _)) = kept.get(&token) else {
            return Err(RemoteError::new(
                ErrorCode::DataNodeNotAvail,
                format!("query answer {token} is no longer here"),
            ));
        };
        let start = (offset as usize).min(bytes.len());
        let end = (start + REPLY_SLICE_BYTES).min(bytes.len());
        let out = bytes[start..end].to_vec();
        if end == bytes.len() {
            kept.remove(&token);
        }
        Ok(out)
    }
}

/// The tag a chunk read's failure carries through the interpreter's error, so the task's
/// answer can say "try another replica" rather than "the query is wrong".
const REPLICA_TAG: &str = "<DataNodeNotAvail>";

impl DataNodeService {
    /// Runs one task of a fragment here.
    pub async fn execute(&self, f: &Fragment) -> Result<Vec<Table>, RemoteError> {
        self.tasks.set(self.tasks.get() + 1);
        let started = rt::time::now();
        // A fragment that needs only row counts (from chunk metadata) is not worth a message.
        let worth = |f: &Fragment| matches!(lang::fragment::reads(f), Ok(Some(_)));
        let r = match self.workers.get() {
            Some(w) if w.shards() > f.parts.len() && lang::fragment::splits(f) => {
                self.spread_rows(f, w).await
            }
            // A join reads two tables' chunks per partition: it runs here (D95).
            Some(w) if w.shards() > 1 && f.parts.len() > 1 && f.join.is_none() && worth(f) => {
                self.spread(f, w).await
            }
            _ => lang::fragment::run(f, self).await,
        };
        self.tasks.set(self.tasks.get().saturating_sub(1));
        super::bump(&self.stats.query_tasks, 1);
        self.stats
            .query_seconds
            .observe((rt::time::now() - started).as_secs_f64());
        let r = r.map_err(|e| {
            let m = e.to_string();
            let code = if m.starts_with(REPLICA_TAG) {
                ErrorCode::DataNodeNotAvail
            } else {
                ErrorCode::QueryFailed
            };
            RemoteError::new(code, m)
        });
        if r.as_ref().is_err_and(|e| {
            e.code == ErrorCode::DataNodeNotAvail && super::recovery::names_corruption(&e.message)
        }) {
            // The coordinator asks another replica; whether this copy is damaged is found out
            // here, from the disk (D101).
            self.check_damage(f.parts.iter().map(|p| p.chunk)).await;
        }
        r
    }

    /// Runs `f` with its partitions dealt over the shards: every `n`th to each worker (its
    /// columns read here as spans, sent with the fragment), the rest here, all at once.
    async fn spread(&self, f: &Fragment, w: &Workers) -> Result<Vec<Table>, EvalError> {
        let n = w.shards();
        let reads = lang::fragment::reads(f)?;
        let groups: Vec<Vec<usize>> = (0..n)
            .map(|g| (g..f.parts.len()).step_by(n).collect())
            .collect();
        let mut sent = Vec::new();
        for (g, idx) in groups.iter().enumerate().skip(1) {
            if idx.is_empty() {
                continue;
            }
            let task = f.over(idx.iter().map(|i| f.parts[*i].clone()).collect());
            let mut inputs = Vec::with_capacity(idx.len());
            for p in &task.parts {
                inputs.push(
                    self.input(&f.info.schema, p, reads.as_deref(), false)
                        .await?,
                );
            }
            // Sent before this shard starts its own share, which may not yield until done.
            let answer = w
                .submit(g, task.encode()?, inputs)
                .await
                .map_err(EvalError::msg)?;
            sent.push(async move { answer.wait().await.map(|t| (g, t)).map_err(EvalError::msg) });
        }
        let here = f.over(groups[0].iter().map(|i| f.parts[*i].clone()).collect());
        let mine = lang::fragment::run(&here, self).await;
        let theirs = futures_util::future::join_all(sent).await;
        let mut out: Vec<Option<Table>> = (0..f.parts.len()).map(|_| None).collect();
        for (i, t) in groups[0].iter().zip(mine?) {
            out[*i] = Some(t);
        }
        for r in theirs {
            let (g, tables) = r?;
            if tables.len() != groups[g].len() {
                return Err(EvalError::msg(
                    "a worker shard answered the wrong number of tables",
                ));
            }
            for (i, t) in groups[g].iter().zip(tables) {
                out[*i] = Some(t);
            }
        }
        Ok(out
            .into_iter()
            .map(|t| t.expect("every partition computed"))
            .collect())
    }

    /// Fewer partitions than shards (one day of the tutorial's data on a 2-core node): each
    /// partition's rows are cut into one range per shard, every shard computes the partial
    /// aggregates of its ranges, and each partition's are combined here
    /// (`lang::fragment::combine`), so no core idles. Partitions too small to be worth a
    /// message stay whole, here.
    async fn spread_rows(&self, f: &Fragment, w: &Workers) -> Result<Vec<Table>, EvalError> {
        let n = w.shards();
        let reads = lang::fragment::reads(f)?;
        // Decoded here (and cached by the engine): this shard's ranges load from memory and
        // the workers' travel as references to the same spans.
        let mut whole = Vec::with_capacity(f.parts.len());
        for p in &f.parts {
            match self
                .input(&f.info.schema, p, reads.as_deref(), true)
                .await?
            {
                Input::Columns(spans) => whole.push(spans),
                Input::Rows(_) => return lang::fragment::run(f, self).await,
            }
        }
        let rows: Vec<usize> = whole
            .iter()
            .map(|s| s.first().map_or(0, storage::Spans::rows))
            .collect();
        if rows.iter().any(|r| *r < SPLIT_ROWS_MIN * n) {
            return lang::fragment::run(f, self).await;
        }
        let share = |j: usize| -> Vec<Input> {
            whole
                .iter()
                .zip(&rows)
                .map(|(spans, r)| {
                    let (a, b) = (r * j / n, r * (j + 1) / n);
                    Input::Columns(spans.iter().map(|s| s.clone().window(a, b)).collect())
                })
                .collect()
        };
        let encoded = f.encode()?;
        let mut sent = Vec::with_capacity(n - 1);
        for j in 1..n {
            // Sent before this shard starts its own range, which may not yield until done.
            let answer = w
                .submit(j, encoded.clone(), share(j))
                .await
                .map_err(EvalError::msg)?;
            sent.push(async move { answer.wait().await.map_err(EvalError::msg) });
        }
        let mine = crate::workers::run_inputs(f, share(0), None).await;
        let theirs = futures_util::future::join_all(sent).await;
        let mut ranges: Vec<Vec<Table>> = vec![mine?];
        for r in theirs {
            ranges.push(r?);
        }
        if ranges.iter().any(|t| t.len() != f.parts.len()) {
            return Err(EvalError::msg(
                "a worker shard answered the wrong number of tables",
            ));
        }
        // Partition i's ranges, in row order, combined.
        let mut by_range: Vec<std::vec::IntoIter<Table>> =
            ranges.into_iter().map(Vec::into_iter).collect();
        (0..f.parts.len())
            .map(|_| {
                let pieces: Vec<Table> = by_range
                    .iter_mut()
                    .map(|r| r.next().expect("counted above"))
                    .collect();
                lang::fragment::combine(f, pieces)
            })
            .collect()
    }

    /// What a worker needs of partition `part`: its row count (`reads` `None`) or its columns
    /// as the engine's shared spans (`decode`: spans not decoded yet are decoded, and cached,
    /// here; else they travel as file references for the worker to decode).
    async fn input(
        &self,
        schema: &Schema,
        part: &Partition,
        reads: Option<&[usize]>,
        decode: bool,
    ) -> Result<Input, EvalError> {
        let rows = ChunkSource::rows(self, schema, part).await?;
        let Some(cols) = reads else {
            return Ok(Input::Rows(rows));
        };
        let width = self.engine.chunk_width(part.chunk).ok();
        if rows > 0 && width.is_some_and(|w| cols.iter().all(|c| *c < w)) {
            return self
                .engine
                .spans_at(part.chunk, cols, Some(part.version), decode)
                .await
                .map(Input::Columns)
                .map_err(|e| {
                    EvalError::msg(format!(
                        "{REPLICA_TAG}chunk {} cannot be read here: {e}",
                        part.chunk
                    ))
                });
        }
        // An empty chunk, or one older than some columns (nulls): read whole, as one piece.
        let full = ChunkSource::columns(self, schema, part, cols).await?;
        Ok(Input::Columns(
            full.into_iter()
                .map(|c| storage::Spans {
                    empty: c.slice(0, 0),
                    parts: vec![storage::Piece::Decoded(std::sync::Arc::new(c))],
                    window: None,
                })
                .collect(),
        ))
    }

    /// `QUERY_FRAGMENT` as node RPC carries it.
    pub(super) async fn execute_rpc(&self, payload: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let f = Fragment::decode(payload)
            .map_err(|e| RemoteError::new(ErrorCode::BadRequest, format!("a bad fragment: {e}")))?;
        let tables = self.execute(&f).await?;
        let bytes = lang::fragment::encode_tables(&tables)
            .map_err(|e| RemoteError::new(ErrorCode::QueryFailed, e.to_string()))?;
        drop(tables);
        Ok(self.pages.answer(bytes))
    }

    /// A chunk read at `part`'s version, waiting out a commit on its way.
    async fn read_behind(&self, s: Scan, rows: bool) -> Result<Read, EvalError> {
        let mut behind = 0;
        loop {
            let r = if rows {
                self.at_version(s.chunk, s.version).map(Read::Rows)
            } else {
                self.scan(s.clone()).await.map(Read::Columns)
            };
            match r {
                Ok(r) => return Ok(r),
                Err(e)
                    if e.code == ErrorCode::ChunkInTransaction && behind < BEHIND_RETRIES_MAX =>
                {
                    behind += 1;
                    rt::time::sleep(Duration::from_millis(BEHIND_PAUSE_MS)).await;
                }
                Err(e) => {
                    return Err(EvalError::msg(format!(
                        "{REPLICA_TAG}chunk {} cannot be read here: {e}",
                        s.chunk
                    )))
                }
            }
        }
    }
}

enum Read {
    Rows(u64),
    Columns(Vec<Column>),
}

impl ChunkSource for DataNodeService {
    fn rows<'a>(
        &'a self,
        schema: &'a Schema,
        part: &'a Partition,
    ) -> LocalFuture<'a, Result<usize, EvalError>> {
        Box::pin(async move {
            match self.read_behind(Scan::of(schema, part, &[]), true).await? {
                Read::Rows(n) => Ok(n as usize),
                Read::Columns(_) => unreachable!("a row count was asked"),
            }
        })
    }

    fn columns<'a>(
        &'a self,
        schema: &'a Schema,
        part: &'a Partition,
        columns: &'a [usize],
    ) -> LocalFuture<'a, Result<Vec<Column>, EvalError>> {
        Box::pin(async move {
            let Read::Columns(cols) = self
                .read_behind(Scan::of(schema, part, columns), false)
                .await?
            else {
                unreachable!("columns were asked");
            };
            if cols.is_empty() && !columns.is_empty() {
                // A chunk no commit has reached yet: no rows, the columns' types.
                return Ok(columns
                    .iter()
                    .map(|c| Column::empty(schema.columns[*c].1))
                    .collect());
            }
            Ok(cols)
        })
    }

    fn pieces<'a>(
        &'a self,
        schema: &'a Schema,
        part: &'a Partition,
        columns: &'a [usize],
    ) -> LocalFuture<'a, Result<Vec<Vec<std::sync::Arc<Column>>>, EvalError>> {
        Box::pin(async move {
            // The row count waits for a replica behind the snapshot, as a column read does.
            let rows = ChunkSource::rows(self, schema, part).await?;
            if rows == 0 {
                return Ok(Vec::new());
            }
            // The engine's decoded spans (decoded and cached here if not yet), by reference.
            match self.input(schema, part, Some(columns), true).await? {
                Input::Columns(spans) => {
                    crate::workers::spans_pieces(spans, None, part.chunk).await
                }
                Input::Rows(_) => unreachable!("columns were asked"),
            }
        })
    }
}
