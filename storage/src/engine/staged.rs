//! Staged prepares (ARCHITECTURE D80): a transaction's batch of at least a block of rows is
//! written as a segment file of its own instead of into the redo log, and the log records only
//! where it is. At commit the segment joins the chunk's metadata; at abort the file is deleted.
//!
//! Why: a batch through the log is written twice (raw into the log, then encoded and
//! compressed at flush) and copied into the cache between; staged, it is encoded and written
//! once, at about an eighth of the bytes, and never occupies the cache.
//!
//! Invariants:
//! - The segment file is synced before its `Stage` record is logged, so a durable record
//!   always names a complete file.
//! - When a chunk's first batch of a transaction is staged, the chunk's cached rows are flushed
//!   first and the chunk is held by the transaction from then on: at commit its segments come
//!   right after the flushed ones, in the order logged, before any row the transaction adds
//!   through the log (which is applied after them). A batch of a transaction that already
//!   logged rows for the chunk goes through the log too, so order always holds.
//! - A staged segment's file is named by no metadata until its commit; `Engine::open` keeps the
//!   files of staged segments still prepared and deletes the other unnamed ones.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{bases_of, recoded, Engine, State};
use crate::batch::Batch;
use crate::column::{ColumnData, SymbolBase};
use crate::error::StorageError;
use crate::meta::{self, SegmentMeta};
use crate::wal::{BaseGrowth, Record};

/// One staged batch: its segment, and the chunk's symbol bases once it is in.
#[derive(Debug, Clone)]
pub(super) struct Staged {
    pub(super) segment: SegmentMeta,
    /// Per column, the symbol base the segment's codes refer to (`None` for other types).
    pub(super) bases: Vec<Option<Arc<SymbolBase>>>,
    /// What `bases` adds to the bases before it, as logged.
    pub(super) growth: Vec<BaseGrowth>,
    /// Replayed over metadata it does not fit (why): harmless when the metadata already holds
    /// the commit (installed, flushed or replaced since), corruption if it must be installed.
    pub(super) unfit: Option<String>,
}

impl Staged {
    pub(super) fn record(&self, tid: u64, chunk: u64) -> Record {
        Record::Stage {
            tid,
            chunk,
            segment: self.segment.clone(),
            bases: self.growth.clone(),
        }
    }
}

/// Releases a chunk held for a staging that did not finish (see [`Engine::stage`]).
struct Release<'a> {
    engine: &'a Engine,
    chunk: u64,
    armed: bool,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Some(c) = self.engine.state.borrow_mut().chunks.get_mut(&self.chunk) {
                c.locked_by = None;
            }
        }
    }
}

/// The bases a further staged batch of `tid` for `chunk` is coded against: its last staged
/// batch's, else the chunk's.
pub(super) fn bases_before(s: &State, tid: u64, chunk: u64) -> Vec<Option<Arc<SymbolBase>>> {
    s.staged
        .get(&tid)
        .and_then(|parts| parts.iter().rev().find(|(c, _)| *c == chunk))
        .map(|(_, st)| st.bases.clone())
        .or_else(|| s.chunks.get(&chunk).map(|c| c.bases.clone()))
        .unwrap_or_default()
}

/// What `after` adds to `before`, per column (`after` extends `before`: bases only grow).
fn growth(
    before: &[Option<Arc<SymbolBase>>],
    after: &[Option<Arc<SymbolBase>>],
) -> Vec<BaseGrowth> {
    after
        .iter()
        .enumerate()
        .map(|(i, a)| match a {
            Some(a) => {
                let from = before
                    .get(i)
                    .and_then(|b| b.as_ref())
                    .map_or(0, |b| b.strings.len());
                debug_assert!(from > 0 && a.strings.len() >= from);
                BaseGrowth {
                    from: from as u64,
                    strings: a.strings[from..].to_vec(),
                }
            }
            None => BaseGrowth::default(),
        })
        .collect()
}

/// `before` grown by a logged `growth`, or why the two do not fit (the record is not of this
/// chunk's history).
pub(super) fn grown(
    before: &[Option<Arc<SymbolBase>>],
    growth: &[BaseGrowth],
) -> Result<Vec<Option<Arc<SymbolBase>>>, String> {
    if before.len() != growth.len() {
        return Err(format!(
            "a staged segment of {} columns for a chunk of {}",
            growth.len(),
            before.len()
        ));
    }
    before
        .iter()
        .zip(growth)
        .map(|(b, g)| match b {
            None if g.from == 0 => Ok(None),
            Some(b) if g.from == b.strings.len() as u64 => {
                let mut strings = b.strings.clone();
                strings.extend(g.strings.iter().cloned());
                Ok(Some(Arc::new(SymbolBase { strings })))
            }
            _ => Err(format!(
                "a staged segment extends a symbol base of {} strings, the chunk's has {}",
                g.from,
                b.as_ref().map_or(0, |b| b.strings.len())
            )),
        })
        .collect()
}

impl Engine {
    /// Whether `tid`'s next batch for `chunk` may be staged: a plain append (not a rewrite) of
    /// at least a block, by a transaction that logged no rows for the chunk yet.
    pub(super) fn may_stage(&self, tid: u64, chunk: u64, batch: &Batch) -> bool {
        let s = self.state.borrow();
        batch.rows() >= self.cfg.block_rows
            && !s.replacing.contains(&(tid, chunk))
            && !s
                .prepared
                .get(&tid)
                .is_some_and(|parts| parts.iter().any(|(c, _)| *c == chunk))
    }

    /// Phase one of `tid` for `chunk` with `batch` staged: the chunk held, its cached rows
    /// flushed, the batch written and synced as a segment, then the `Stage` record logged.
    /// Returns the record's position (durable with [`Engine::durable`]).
    pub(super) async fn stage(
        &self,
        tid: u64,
        chunk: u64,
        batch: Batch,
    ) -> Result<u64, StorageError> {
        let _x = self.exclusive.lock().await;
        let held_before = {
            let mut s = self.state.borrow_mut();
            let c = Self::check_writable(&mut s, chunk, &batch, Some(tid))?;
            let held = c.locked_by == Some(tid);
            c.locked_by = Some(tid);
            held
        };
        // Until the record is logged, nothing of this batch is prepared: if the staging fails
        // or is cancelled (the caller's connection dropped mid-write), the chunk is released
        // unless `tid` held it already — otherwise no outcome would ever unlock it.
        let mut release = Release {
            engine: self,
            chunk,
            armed: !held_before,
        };
        let st = self.stage_locked(tid, chunk, batch).await?;
        let mut s = self.state.borrow_mut();
        let lsn = self.wal.append(&st.record(tid, chunk))?;
        s.staged.entry(tid).or_default().push((chunk, st));
        release.armed = false;
        Ok(lsn)
    }

    async fn stage_locked(
        &self,
        tid: u64,
        chunk: u64,
        batch: Batch,
    ) -> Result<Staged, StorageError> {
        // Rows of earlier commits still cached go first.
        self.flush_cached_first(chunk).await?;
        let (columns, before, seg_id, volume) = {
            let mut s = self.state.borrow_mut();
            let before = bases_before(&s, tid, chunk);
            let c = s
                .chunks
                .get_mut(&chunk)
                .ok_or(StorageError::NoSuchChunk(chunk))?;
            // SYMBOL codes against the bases this segment extends.
            let columns = recoded(chunk, batch.columns, &before)?;
            let seg_id = c.next_segment;
            c.next_segment += 1;
            let volume = self.cfg.volumes[c.meta.volume as usize].clone();
            (columns, before, seg_id, volume)
        };
        let path = meta::segment_file(&volume, chunk, seg_id);
        let mut segment = meta::write_segment(&path, &columns, self.cfg.block_rows).await?;
        segment.id = seg_id;
        let bases = bases_of(&columns);
        Ok(Staged {
            segment,
            growth: growth(&before, &bases),
            bases,
            unfit: None,
        })
    }

    /// Adds committed staged segments to their chunks' metadata, then applies the rows the
    /// transaction logged for those chunks after them (`rows`, visible at `lsn`, which is
    /// durable). Caller holds the exclusive lock; the chunks are held by the transaction.
    pub(super) async fn install_staged(
        &self,
        staged: Vec<(u64, Staged)>,
        rows: Vec<(u64, Batch)>,
        lsn: u64,
    ) -> Result<(), StorageError> {
        let chunks: BTreeSet<u64> = staged.iter().map(|(c, _)| *c).collect();
        for chunk in chunks {
            let parts: Vec<&Staged> = staged
                .iter()
                .filter(|(c, _)| *c == chunk)
                .map(|(_, st)| st)
                .collect();
            let Some(m) = self.state.borrow().chunks.get(&chunk).map(|c| {
                debug_assert_eq!(c.cache_rows(), 0, "a staging flushed the chunk's cache");
                let mut m = c.meta.clone();
                for st in &parts {
                    let mut seg = st.segment.clone();
                    m.version += 1;
                    seg.version = m.version;
                    m.segments.push(seg);
                    m.bases = st.bases.clone();
                }
                m
            }) else {
                continue; // dropped meanwhile
            };
            meta::write_meta(&self.cfg.meta_dir, &m).await?;
            let mut s = self.state.borrow_mut();
            let Some(c) = s.chunks.get_mut(&chunk) else {
                continue;
            };
            for (i, b) in m.bases.iter().enumerate() {
                if let (Some(b), ColumnData::Symbol { base, .. }) = (b, &mut c.cache[i].data) {
                    *base = b.clone();
                }
            }
            c.bases = m.bases.clone();
            c.version = m.version;
            c.next_segment = c
                .next_segment
                .max(m.segments.last().map_or(1, |s| s.id + 1));
            c.meta = m;
            for (_, batch) in rows.iter().filter(|(c, _)| *c == chunk) {
                let v = c.version + 1;
                // Counted in the cache's bytes since its prepare.
                c.apply(batch, v, lsn)
                    .map_err(|reason| StorageError::BadBatch { chunk, reason })?;
            }
            c.locked_by = None;
        }
        Ok(())
    }

    /// After replay, at open: every staged segment still prepared must have its file (a chunk
    /// whose file is gone is marked corrupt, for recovery to repair); files no metadata and no
    /// prepared transaction names are deleted (a flush or staging cut short by a crash).
    pub(super) async fn settle_segment_files(&self) -> Result<(), StorageError> {
        let chunks: Vec<(u64, meta::ChunkMeta, Vec<SegmentMeta>)> = {
            let s = self.state.borrow();
            s.chunks
                .iter()
                .map(|(id, c)| {
                    let staged = s
                        .staged
                        .values()
                        .flatten()
                        .filter(|(ch, _)| ch == id)
                        .map(|(_, st)| st.segment.clone())
                        .collect();
                    (*id, c.meta.clone(), staged)
                })
                .collect()
        };
        for (chunk, m, staged) in chunks {
            let volume = &self.cfg.volumes[m.volume as usize];
            for seg in &staged {
                if let Err(e) = super::verify_segment(volume, chunk, seg).await {
                    if matches!(e, StorageError::Io(_)) {
                        return Err(e);
                    }
                    let mut s = self.state.borrow_mut();
                    s.chunks.remove(&chunk);
                    s.corrupt.insert(chunk, e);
                }
            }
            let keep: Vec<u64> = staged.iter().map(|seg| seg.id).collect();
            super::remove_unnamed_segments(volume, &m, &keep).await?;
        }
        Ok(())
    }

    /// Deletes the files of staged segments that will never be installed (an abort).
    pub(super) async fn remove_staged(&self, staged: &[(u64, Staged)]) {
        for (chunk, st) in staged {
            let volume = self
                .state
                .borrow()
                .chunks
                .get(chunk)
                .map(|c| self.cfg.volumes[c.meta.volume as usize].clone());
            if let Some(volume) = volume {
                // Best effort: an unnamed segment left behind is deleted at the next open.
                let _ = rt::disk::remove(meta::segment_file(&volume, *chunk, st.segment.id)).await;
            }
        }
    }
}
