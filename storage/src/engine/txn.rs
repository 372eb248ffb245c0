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

use super::{Engine, State};
use crate::batch::Batch;
use crate::column::Column;
use crate::error::StorageError;
use crate::wal::Record;

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
        self.make_room(batch.heap_bytes() as u64).await?;
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

    /// Phase two: makes transaction `tid`'s rows visible, bumping each chunk's version.
    pub async fn commit(&self, tid: u64) -> Result<(), StorageError> {
        let rewrites = self
            .state
            .borrow()
            .replacing
            .range((tid, 0)..=(tid, u64::MAX))
            .count();
        if rewrites > 0 {
            return self.commit_rewrite(tid).await;
        }
        let lsn = {
            let mut s = self.state.borrow_mut();
            let parts = s
                .prepared
                .get(&tid)
                .ok_or(StorageError::NoSuchTransaction(tid))?;
            let versions = versions_after(&s, parts);
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

    /// [`Engine::commit`] of a transaction that rewrites chunks: its added rows become
    /// visible as any commit's; each rewritten chunk is installed whole once the commit record
    /// is durable (readers see the old rows until then). The exclusive lock is held
    /// throughout, so no checkpoint drops the transaction's records before its installs.
    async fn commit_rewrite(&self, tid: u64) -> Result<(), StorageError> {
        let _x = self.exclusive.lock().await;
        let (lsn, rewrites) = {
            let mut s = self.state.borrow_mut();
            let parts = s
                .prepared
                .remove(&tid)
                .ok_or(StorageError::NoSuchTransaction(tid))?;
            let versions = versions_after(&s, &parts);
            let lsn = match self.wal.append(&Record::Commit {
                tid,
                versions: versions.clone(),
            }) {
                Ok(l) => l,
                Err(e) => {
                    s.prepared.insert(tid, parts);
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
            for (chunk, batch) in parts {
                if replaced.contains(&chunk) {
                    rewrites.entry(chunk).or_default().push(batch);
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
            (lsn, rewrites)
        };
        self.wal.wait_durable(lsn).await?;
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
        let lsn = {
            let mut s = self.state.borrow_mut();
            let parts = s
                .prepared
                .remove(&tid)
                .ok_or(StorageError::NoSuchTransaction(tid))?;
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
            lsn
        };
        self.wal.wait_durable(lsn).await
    }

    /// Replays the redo log over the flushed metadata. A committed rewrite not installed yet
    /// (the node stopped between its commit record and its install) is installed here, in log
    /// order, so later records of its chunk apply on top of it.
    pub(super) async fn replay(&self, records: Vec<Record>) -> Result<(), StorageError> {
        let _x = self.exclusive.lock().await;
        for rec in records {
            let rewrites = {
                let mut state = self.state.borrow_mut();
                replay_one(&mut state, rec)
            };
            for (tid, chunk, version, batches) in rewrites {
                self.install_rewrite(tid, chunk, version, batches).await?;
            }
        }
        Ok(())
    }
}

/// The version each chunk reaches when `parts` (a transaction's batches) commit: one more per
/// batch.
fn versions_after(s: &State, parts: &[(u64, Batch)]) -> Vec<(u64, u64)> {
    let mut versions: Vec<(u64, u64)> = Vec::new();
    for (chunk, _) in parts {
        let v = s.chunks.get(chunk).map(|c| c.version).unwrap_or(0);
        match versions.iter_mut().find(|(c, _)| c == chunk) {
            Some(e) => e.1 += 1,
            None => versions.push((*chunk, v + 1)),
        }
    }
    versions
}

/// Applies one recovered redo record over the flushed metadata; answers the rewrites a commit
/// record asks for, to install (a transaction, its chunk, the version and the chunk's rows).
fn replay_one(state: &mut State, rec: Record) -> Vec<(u64, u64, u64, Vec<Batch>)> {
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
        Record::Commit { tid, versions } => {
            let Some(parts) = state.prepared.remove(&tid) else {
                return Vec::new();
            };
            let target = |chunk: u64| {
                versions
                    .iter()
                    .find(|(id, _)| *id == chunk)
                    .map(|(_, v)| *v)
                    .unwrap_or(0)
            };
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
            rewrites
                .into_iter()
                .map(|(c, b)| (tid, c, target(c), b))
                .collect()
        }
        Record::Abort { tid } => {
            for (chunk, _) in state.prepared.remove(&tid).unwrap_or_default() {
                state.replacing.remove(&(tid, chunk));
                if let Some(c) = state.chunks.get_mut(&chunk) {
                    c.locked_by = None;
                }
            }
            Vec::new()
        }
    }
}
