//! Transactions in the engine: two-phase commit's prepare (rows added, or a chunk's rows
//! replaced — `update`, `delete`), commit and abort, and the replay of the redo log that
//! rebuilds them after a restart.
//!
//! Invariants (with the engine's, `super`): a prepared batch is durable before its prepare
//! returns and invisible until its commit; a transaction's batches for a chunk keep the order
//! they were logged in; a committed rewrite is installed whole, once — live after its commit
//! record is durable, or during replay in log order.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::staged::{self, Staged};
use super::{Engine, State};
use crate::batch::Batch;
use crate::column::Column;
use crate::error::StorageError;
use crate::wal::Record;

/// A prepare waits at most this long for a recovery's hold on its chunk to end.
pub const HOLD_WAIT_MAX_MS: u64 = 60_000;

impl Engine {
    /// Phase one of 2PC: makes `batch` durable for `chunk` under transaction `tid`, invisible
    /// until [`Engine::commit`]. The chunk refuses other writers until the outcome is known;
    /// `tid` may prepare more batches for it (each bumps the version by one at commit).
    pub async fn prepare(&self, tid: u64, chunk: u64, batch: Batch) -> Result<(), StorageError> {
        let lsn = self.prepare_logged(tid, chunk, batch).await?;
        self.wal.wait_durable(lsn).await
    }

    /// [`Engine::prepare`] up to its redo record being logged — after every prepare logged
    /// before it, so a transaction's batches keep their order — but not yet durable; returns
    /// the record's position, to pass to [`Engine::durable`].
    pub async fn prepare_logged(
        &self,
        tid: u64,
        chunk: u64,
        batch: Batch,
    ) -> Result<u64, StorageError> {
        self.log_prepare(tid, chunk, batch, None).await
    }

    /// Waits until the redo log is durable up to `lsn` (synced with `dataSync=1`).
    pub async fn durable(&self, lsn: u64) -> Result<(), StorageError> {
        self.wal.wait_durable(lsn).await
    }

    /// Phase one of a rewrite (`update`, `delete`): `batch` becomes the whole of `chunk` when
    /// `tid` commits (with any further batches `tid` prepares for it after this one). Refused
    /// unless the chunk is at `expect_version`, the version its new rows were computed from,
    /// so a commit between that read and this prepare is never overwritten.
    pub async fn prepare_replace(
        &self,
        tid: u64,
        chunk: u64,
        expect_version: u64,
        batch: Batch,
    ) -> Result<(), StorageError> {
        let lsn = self
            .prepare_replace_logged(tid, chunk, expect_version, batch)
            .await?;
        self.wal.wait_durable(lsn).await
    }

    /// [`Engine::prepare_replace`] up to its records being logged (see
    /// [`Engine::prepare_logged`]).
    pub async fn prepare_replace_logged(
        &self,
        tid: u64,
        chunk: u64,
        expect_version: u64,
        batch: Batch,
    ) -> Result<u64, StorageError> {
        self.log_prepare(tid, chunk, batch, Some(expect_version))
            .await
    }

    /// Logs `batch` for `tid` on `chunk` — with `replace`, as the start of a rewrite of the
    /// chunk at that version — and holds the chunk for `tid`; returns the record's position.
    async fn log_prepare(
        &self,
        tid: u64,
        chunk: u64,
        batch: Batch,
        replace: Option<u64>,
    ) -> Result<u64, StorageError> {
        self.wait_unheld(chunk).await;
        if replace.is_none() && self.may_stage(tid, chunk, &batch) {
            return self.stage(tid, chunk, batch).await;
        }
        self.make_room(batch.heap_bytes() as u64).await?;
        // No await between this wait and the lock check below.
        self.wait_unheld(chunk).await;
        let mut s = self.state.borrow_mut();
        let c = Self::check_writable(&mut s, chunk, &batch, Some(tid))?;
        if let Some(expect_version) = replace {
            if c.version != expect_version || c.locked_by.is_some() {
                return Err(StorageError::VersionMismatch {
                    chunk,
                    wanted: expect_version,
                    actual: c.version,
                });
            }
        }
        c.locked_by = Some(tid);
        if replace.is_some() {
            self.wal.append(&Record::Replace { tid, chunk })?;
            s.replacing.insert((tid, chunk));
        }
        let lsn = self
            .wal
            .append_with(|w| Record::encode_prepare(w, tid, chunk, &batch))?;
        self.cache_bytes
            .set(self.cache_bytes.get() + batch.heap_bytes() as u64);
        s.prepared.entry(tid).or_default().push((chunk, batch));
        Ok(lsn)
    }

    /// Waits while a recovery holds `chunk` ([`Engine::hold_chunk`]): its synchronous phase is
    /// short, and a prepare refused for it would abort a user's write. Bounded by
    /// [`HOLD_WAIT_MAX_MS`]; after that the prepare is refused as for any holder.
    async fn wait_unheld(&self, chunk: u64) {
        let deadline = rt::time::now() + std::time::Duration::from_millis(HOLD_WAIT_MAX_MS);
        while self
            .state
            .borrow()
            .chunks
            .get(&chunk)
            .is_some_and(|c| c.locked_by == Some(super::RECOVERING))
            && rt::time::now() < deadline
        {
            rt::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// Phase two: makes transaction `tid`'s rows visible, bumping each chunk's version.
    pub async fn commit(&self, tid: u64) -> Result<(), StorageError> {
        let installs = {
            let s = self.state.borrow();
            s.staged.contains_key(&tid)
                || s.replacing
                    .range((tid, 0)..=(tid, u64::MAX))
                    .next()
                    .is_some()
        };
        if installs {
            return self.commit_installing(tid).await;
        }
        let lsn = {
            let mut s = self.state.borrow_mut();
            let parts = s
                .prepared
                .get(&tid)
                .ok_or(StorageError::NoSuchTransaction(tid))?;
            let versions = versions_after(&s, parts.iter().map(|(c, _)| *c));
            let lsn = self.wal.append(&Record::Commit { tid, versions })?;
            let parts = s.prepared.remove(&tid).expect("checked above");
            for (chunk, batch) in &parts {
                if let Some(c) = s.chunks.get_mut(chunk) {
                    let v = c.version + 1;
                    c.apply(batch, v, lsn)
                        .map_err(|reason| StorageError::BadBatch {
                            chunk: *chunk,
                            reason,
                        })?;
                    c.locked_by = None;
                }
            }
            lsn
        };
        self.wal.wait_durable(lsn).await
    }

    /// [`Engine::commit`] of a transaction that rewrites chunks or staged segments: its rows
    /// added through the log become visible as any commit's; once the commit record is
    /// durable each staged segment joins its chunk's metadata (followed by the rows the
    /// transaction logged for that chunk) and each rewritten chunk is installed whole (readers
    /// see the old rows until then). The exclusive lock is held throughout, so no checkpoint
    /// drops the transaction's records before its installs.
    async fn commit_installing(&self, tid: u64) -> Result<(), StorageError> {
        let _x = self.exclusive.lock().await;
        let (lsn, rewrites, staged, after_staged) = {
            let mut s = self.state.borrow_mut();
            let parts = s.prepared.remove(&tid).unwrap_or_default();
            let staged = s.staged.remove(&tid).unwrap_or_default();
            if parts.is_empty() && staged.is_empty() {
                return Err(StorageError::NoSuchTransaction(tid));
            }
            let versions = versions_after(
                &s,
                staged
                    .iter()
                    .map(|(c, _)| *c)
                    .chain(parts.iter().map(|(c, _)| *c)),
            );
            let lsn = match self.wal.append(&Record::Commit {
                tid,
                versions: versions.clone(),
            }) {
                Ok(l) => l,
                Err(e) => {
                    if !parts.is_empty() {
                        s.prepared.insert(tid, parts);
                    }
                    if !staged.is_empty() {
                        s.staged.insert(tid, staged);
                    }
                    return Err(e);
                }
            };
            let replaced: Vec<u64> = s
                .replacing
                .range((tid, 0)..=(tid, u64::MAX))
                .map(|(_, c)| *c)
                .collect();
            for c in &replaced {
                s.replacing.remove(&(tid, *c));
            }
            let mut rewrites: BTreeMap<u64, Vec<Batch>> = BTreeMap::new();
            let mut after_staged = Vec::new();
            for (chunk, batch) in parts {
                if replaced.contains(&chunk) {
                    rewrites.entry(chunk).or_default().push(batch);
                } else if staged.iter().any(|(c, _)| *c == chunk) {
                    after_staged.push((chunk, batch));
                } else if let Some(c) = s.chunks.get_mut(&chunk) {
                    let v = c.version + 1;
                    c.apply(&batch, v, lsn)
                        .map_err(|reason| StorageError::BadBatch { chunk, reason })?;
                    c.locked_by = None;
                }
            }
            let rewrites: Vec<(u64, u64, Vec<Batch>)> = rewrites
                .into_iter()
                .map(|(c, b)| {
                    let v = versions
                        .iter()
                        .find(|(id, _)| *id == c)
                        .map_or(0, |(_, v)| *v);
                    (c, v, b)
                })
                .collect();
            (lsn, rewrites, staged, after_staged)
        };
        self.wal.wait_durable(lsn).await?;
        self.install_staged(staged, after_staged, lsn).await?;
        for (chunk, version, batches) in rewrites {
            self.install_rewrite(tid, chunk, version, batches).await?;
        }
        Ok(())
    }

    /// Installs `batches` as the whole of `chunk` at `version`, for committed transaction
    /// `tid` (which holds it). Caller holds the exclusive lock.
    async fn install_rewrite(
        &self,
        tid: u64,
        chunk: u64,
        version: u64,
        batches: Vec<Batch>,
    ) -> Result<(), StorageError> {
        let Some(schema) = self
            .state
            .borrow()
            .chunks
            .get(&chunk)
            .map(|c| c.meta.schema.clone())
        else {
            return Ok(());
        };
        let prepared: u64 = batches.iter().map(|b| b.heap_bytes() as u64).sum();
        let mut it = batches.into_iter();
        let mut whole = it.next().unwrap_or_else(|| Batch {
            columns: schema
                .columns
                .iter()
                .map(|(_, t)| Column::empty(*t))
                .collect(),
        });
        for more in it {
            for (c, m) in whole.columns.iter_mut().zip(&more.columns) {
                c.append(m).map_err(StorageError::Format)?;
            }
        }
        self.install_locked(chunk, Some(version), schema, whole, Some(tid))
            .await?;
        self.cache_bytes
            .set(self.cache_bytes.get().saturating_sub(prepared));
        Ok(())
    }

    /// Discards transaction `tid`'s prepared rows.
    pub async fn abort(&self, tid: u64) -> Result<(), StorageError> {
        let (lsn, staged) = {
            let mut s = self.state.borrow_mut();
            let parts = s.prepared.remove(&tid).unwrap_or_default();
            let staged = s.staged.remove(&tid).unwrap_or_default();
            if parts.is_empty() && staged.is_empty() {
                return Err(StorageError::NoSuchTransaction(tid));
            }
            let replaced: Vec<(u64, u64)> = s
                .replacing
                .range((tid, 0)..=(tid, u64::MAX))
                .copied()
                .collect();
            for r in replaced {
                s.replacing.remove(&r);
            }
            let lsn = self.wal.append(&Record::Abort { tid })?;
            for (chunk, batch) in &parts {
                self.cache_bytes.set(
                    self.cache_bytes
                        .get()
                        .saturating_sub(batch.heap_bytes() as u64),
                );
                if let Some(c) = s.chunks.get_mut(chunk) {
                    c.locked_by = None;
                }
            }
            for (chunk, _) in &staged {
                if let Some(c) = s.chunks.get_mut(chunk) {
                    c.locked_by = None;
                }
            }
            (lsn, staged)
        };
        self.wal.wait_durable(lsn).await?;
        // Only once the abort is durable: before it, a restart replays the staged records.
        self.remove_staged(&staged).await;
        Ok(())
    }

    /// Replays the redo log over the flushed metadata. A committed rewrite not installed yet
    /// (the node stopped between its commit record and its install) is installed here, in log
    /// order, so later records of its chunk apply on top of it.
    pub(super) async fn replay(&self, records: Vec<Record>) -> Result<(), StorageError> {
        let _x = self.exclusive.lock().await;
        for rec in records {
            let installs = {
                let mut state = self.state.borrow_mut();
                replay_one(&mut state, rec)
            };
            for install in installs {
                match install {
                    Install::Rewrite {
                        tid,
                        chunk,
                        version,
                        batches,
                    } => self.install_rewrite(tid, chunk, version, batches).await?,
                    // Replayed rows are durable: visible at position 0.
                    Install::Staged { staged, rows } => {
                        self.install_staged(staged, rows, 0).await?
                    }
                }
            }
        }
        Ok(())
    }
}

/// The version each chunk reaches when a transaction's batches (one chunk id per batch,
/// staged or logged) commit: one more per batch.
fn versions_after(s: &State, chunks: impl Iterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut versions: Vec<(u64, u64)> = Vec::new();
    for chunk in chunks {
        let v = s.chunks.get(&chunk).map(|c| c.version).unwrap_or(0);
        match versions.iter_mut().find(|(c, _)| *c == chunk) {
            Some(e) => e.1 += 1,
            None => versions.push((chunk, v + 1)),
        }
    }
    versions
}

/// What a replayed commit record leaves to install, once its turn in the log comes.
enum Install {
    /// A rewritten chunk: its rows at `version`.
    Rewrite {
        tid: u64,
        chunk: u64,
        version: u64,
        batches: Vec<Batch>,
    },
    /// Staged segments to add to their chunks, then the rows logged after them.
    Staged {
        staged: Vec<(u64, Staged)>,
        rows: Vec<(u64, Batch)>,
    },
}

/// Applies one recovered redo record over the flushed metadata; answers what a commit record
/// leaves to install.
fn replay_one(state: &mut State, rec: Record) -> Vec<Install> {
    match rec {
        Record::Append {
            chunk,
            version,
            batch,
        } => {
            let Some(c) = state.chunks.get_mut(&chunk) else {
                return Vec::new();
            };
            if version <= c.version {
                return Vec::new(); // already in a flushed segment (or superseded by an install)
            }
            if version != c.version + 1 || c.apply(&batch, version, 0).is_err() {
                let err = StorageError::Corrupt {
                    chunk,
                    file: PathBuf::from("redo log"),
                    offset: None,
                    reason: format!("the log jumps from version {} to {version}", c.version),
                };
                state.chunks.remove(&chunk);
                state.corrupt.insert(chunk, err);
            }
            Vec::new()
        }
        Record::Prepare { tid, chunk, batch } => {
            if let Some(c) = state.chunks.get_mut(&chunk) {
                c.locked_by = Some(tid);
                state.prepared.entry(tid).or_default().push((chunk, batch));
            }
            Vec::new()
        }
        Record::Replace { tid, chunk } => {
            if state.chunks.contains_key(&chunk) {
                state.replacing.insert((tid, chunk));
            }
            Vec::new()
        }
        Record::Stage {
            tid,
            chunk,
            segment,
            bases: growth,
        } => {
            if !state.chunks.contains_key(&chunk) {
                return Vec::new();
            }
            let before = staged::bases_before(state, tid, chunk);
            let (bases, unfit) = match staged::grown(&before, &growth) {
                Ok(bases) => (bases, None),
                Err(reason) => (before, Some(reason)),
            };
            let c = state.chunks.get_mut(&chunk).expect("checked above");
            c.locked_by = Some(tid);
            c.next_segment = c.next_segment.max(segment.id + 1);
            state.staged.entry(tid).or_default().push((
                chunk,
                Staged {
                    segment,
                    bases,
                    growth,
                    unfit,
                },
            ));
            Vec::new()
        }
        Record::Commit { tid, versions } => {
            let parts = state.prepared.remove(&tid).unwrap_or_default();
            let staged = state.staged.remove(&tid).unwrap_or_default();
            let target = |chunk: u64| {
                versions
                    .iter()
                    .find(|(id, _)| *id == chunk)
                    .map(|(_, v)| *v)
                    .unwrap_or(0)
            };
            // Chunks with staged segments: those segments, then the rows logged after them.
            let (after_staged, parts): (Vec<_>, Vec<_>) = parts
                .into_iter()
                .partition(|(c, _)| staged.iter().any(|(s, _)| s == c));
            let mut installs = replay_staged_commit(state, staged, after_staged, target);
            let mut rewrites: BTreeMap<u64, Vec<Batch>> = BTreeMap::new();
            for (chunk, batch) in parts {
                let rewrite =
                    state.replacing.remove(&(tid, chunk)) || rewrites.contains_key(&chunk);
                let Some(c) = state.chunks.get_mut(&chunk) else {
                    continue;
                };
                if target(chunk) <= c.version {
                    // Installed (or flushed) before the node stopped.
                    c.locked_by = None;
                    continue;
                }
                if rewrite {
                    // Installed below, still held by `tid` until then.
                    rewrites.entry(chunk).or_default().push(batch);
                } else {
                    c.locked_by = None;
                    let v = c.version + 1;
                    let _ = c.apply(&batch, v, 0);
                }
            }
            installs.extend(
                rewrites
                    .into_iter()
                    .map(|(chunk, batches)| Install::Rewrite {
                        tid,
                        chunk,
                        version: target(chunk),
                        batches,
                    }),
            );
            installs
        }
        Record::Abort { tid } => {
            let staged = state.staged.remove(&tid).unwrap_or_default();
            let staged = staged.into_iter().map(|(c, _)| c);
            let logged = state.prepared.remove(&tid).unwrap_or_default();
            for chunk in staged.chain(logged.into_iter().map(|(c, _)| c)) {
                state.replacing.remove(&(tid, chunk));
                if let Some(c) = state.chunks.get_mut(&chunk) {
                    c.locked_by = None;
                }
            }
            // Their files are deleted once replay ends (no metadata names them).
            Vec::new()
        }
    }
}

/// A replayed commit's staged segments (and the rows logged after them, `rows`): per chunk,
/// what the metadata does not hold yet. A chunk reaches `target(chunk)` once all are in; its
/// metadata may already hold the segments (installed before the node stopped) or, flushed,
/// everything.
fn replay_staged_commit(
    state: &mut State,
    staged: Vec<(u64, Staged)>,
    rows: Vec<(u64, Batch)>,
    target: impl Fn(u64) -> u64,
) -> Vec<Install> {
    let mut install = (Vec::new(), Vec::new());
    let chunks: std::collections::BTreeSet<u64> = staged.iter().map(|(c, _)| *c).collect();
    for chunk in chunks {
        let Some(c) = state.chunks.get_mut(&chunk) else {
            continue;
        };
        let segments: Vec<Staged> = staged
            .iter()
            .filter(|(ch, _)| *ch == chunk)
            .map(|(_, st)| st.clone())
            .collect();
        let logged: Vec<&Batch> = rows
            .iter()
            .filter(|(ch, _)| *ch == chunk)
            .map(|(_, b)| b)
            .collect();
        let to = target(chunk);
        let from = to.saturating_sub((segments.len() + logged.len()) as u64);
        if c.version >= to {
            c.locked_by = None; // all of it flushed before the node stopped
        } else if c.version >= from + segments.len() as u64 {
            // The segments were installed; the logged rows were only in the cache.
            c.locked_by = None;
            for (i, batch) in logged.into_iter().enumerate() {
                let v = from + segments.len() as u64 + i as u64 + 1;
                if v > c.version {
                    let _ = c.apply(batch, v, 0);
                }
            }
        } else if let Some(reason) = segments.iter().find_map(|st| st.unfit.clone()) {
            state.chunks.remove(&chunk);
            state.corrupt.insert(
                chunk,
                StorageError::Corrupt {
                    chunk,
                    file: PathBuf::from("redo log"),
                    offset: None,
                    reason,
                },
            );
        } else {
            install.0.extend(segments.into_iter().map(|st| (chunk, st)));
            install
                .1
                .extend(logged.into_iter().map(|b| (chunk, b.clone())));
        }
    }
    if install.0.is_empty() {
        return Vec::new();
    }
    vec![Install::Staged {
        staged: install.0,
        rows: install.1,
    }]
}
