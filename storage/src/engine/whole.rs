//! Operations on a chunk as a whole: truncate, drop, copy (a repair's source), install (a
//! repair's target), verify (is this copy damaged?) and widen (`addColumn`). Each replaces or removes the chunk's metadata in
//! one atomic write, so a crash leaves the chunk as it was before or as it is after.
//!
//! Invariant: none of them changes a chunk a transaction holds (`<ChunkInTransaction>`), and
//! a widen holds the chunk itself from its copy to its install, so no write lands between.

use rt::disk;

use super::{corrupt_clone, empty_column, ChunkState, Engine, WIDENING};
use crate::batch::{Batch, Schema};
use crate::column::Column;
use crate::error::StorageError;
use crate::meta::{self, ChunkMeta};

impl Engine {
    /// Reads every block of `chunk` from the disk, past every cache, and checks it. A read of
    /// this replica failed; this tells a damaged copy (marked so, and never served, until
    /// `install_chunk` replaces it) from a failure that has passed.
    pub async fn verify_chunk(&self, chunk: u64) -> Result<(), StorageError> {
        let (m, bases, volume) = {
            let s = self.state.borrow();
            let c = Self::readable(&s, chunk)?;
            (
                c.meta.clone(),
                c.bases.clone(),
                self.cfg.volumes[c.meta.volume as usize].clone(),
            )
        };
        for seg in &m.segments {
            let path = meta::segment_file(&volume, chunk, seg.id);
            for (i, (_, ty)) in m.schema.columns.iter().enumerate() {
                let empty = empty_column(*ty, bases[i].as_ref());
                if let Err(e) = self.read_span(&path, chunk, seg, i, &empty, false).await {
                    if matches!(e, StorageError::Corrupt { .. }) {
                        if let Some(c) = self.state.borrow_mut().chunks.get_mut(&chunk) {
                            c.damaged = Some(corrupt_clone(&e));
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Removes every row of `chunk`; returns the new version.
    pub async fn truncate(&self, chunk: u64) -> Result<u64, StorageError> {
        let schema = self.chunk_info(chunk)?.schema;
        let empty = Batch {
            columns: schema
                .columns
                .iter()
                .map(|(_, t)| Column::empty(*t))
                .collect(),
        };
        self.install_chunk(chunk, None, schema, empty).await
    }

    /// Deletes `chunk` and its files.
    pub async fn drop_chunk(&self, chunk: u64) -> Result<(), StorageError> {
        let _x = self.exclusive.lock().await;
        let old = {
            let mut s = self.state.borrow_mut();
            if let Some(c) = s.chunks.get(&chunk) {
                if let Some(tid) = c.locked_by {
                    return Err(StorageError::ChunkInTransaction { chunk, tid });
                }
            }
            let was_corrupt = s.corrupt.remove(&chunk).is_some();
            match s.chunks.remove(&chunk) {
                Some(c) => {
                    let freed: usize = c.cache.iter().map(Column::heap_bytes).sum();
                    self.cache_bytes
                        .set(self.cache_bytes.get().saturating_sub(freed as u64));
                    Some(c.meta)
                }
                None if was_corrupt => None,
                None => return Err(StorageError::NoSuchChunk(chunk)),
            }
        };
        self.spans.borrow_mut().evict_chunk(chunk);
        let path = meta::meta_file(&self.cfg.meta_dir, chunk);
        if disk::exists(&path).await? {
            disk::remove(&path).await?;
            disk::sync_dir(&self.cfg.meta_dir).await?;
        }
        for v in &self.cfg.volumes {
            remove_chunk_files(&meta::chunk_dir(v, chunk)).await?;
        }
        drop(old);
        Ok(())
    }

    /// The visible rows of `chunk` and their version — the source of a replica repair. With
    /// `at_version`, fails unless the chunk is at exactly that version.
    pub async fn copy_chunk(
        &self,
        chunk: u64,
        at_version: Option<u64>,
    ) -> Result<(u64, Schema, Batch), StorageError> {
        let info = self.chunk_info(chunk)?;
        let all: Vec<usize> = (0..info.schema.columns.len()).collect();
        let columns = self.scan(chunk, &all).await?;
        let version = self.chunk_info(chunk)?.version;
        if let Some(v) = at_version.filter(|v| *v != version) {
            return Err(StorageError::VersionMismatch {
                chunk,
                wanted: v,
                actual: version,
            });
        }
        Ok((version, info.schema, Batch { columns }))
    }

    /// Adds columns at the end of `chunk`'s schema (`addColumn`): `schema` is its schema with
    /// them appended, and its rows hold nulls in them. The version stays: what the chunk holds
    /// is unchanged, so replicas still agree. The chunk is held as a transaction would hold it
    /// from the copy to the install, so no write lands between them (and is lost).
    pub async fn widen_chunk(&self, chunk: u64, schema: Schema) -> Result<(), StorageError> {
        {
            let mut s = self.state.borrow_mut();
            let c = s
                .chunks
                .get_mut(&chunk)
                .ok_or(StorageError::NoSuchChunk(chunk))?;
            if let Some(tid) = c.locked_by {
                return Err(StorageError::ChunkInTransaction { chunk, tid });
            }
            c.locked_by = Some(WIDENING);
        }
        let widened = async {
            let (version, old, batch) = self.copy_chunk(chunk, None).await?;
            let n = old.columns.len();
            if schema.columns.len() < n || schema.columns[..n] != old.columns[..] {
                return Err(StorageError::BadBatch {
                    chunk,
                    reason: "a widened schema must keep the chunk's columns, in order".into(),
                });
            }
            let rows = batch.rows();
            let mut columns = batch.columns;
            columns.extend(
                schema.columns[n..]
                    .iter()
                    .map(|(_, t)| Column::nulls(*t, rows)),
            );
            self.install_as(
                chunk,
                Some(version),
                schema,
                Batch { columns },
                Some(WIDENING),
            )
            .await
        }
        .await;
        if widened.is_err() {
            if let Some(c) = self.state.borrow_mut().chunks.get_mut(&chunk) {
                if c.locked_by == Some(WIDENING) {
                    c.locked_by = None;
                }
            }
        }
        widened.map(|_| ())
    }

    /// Replaces `chunk` (creating it if needed, repairing it if corrupt) with `batch` at
    /// `version` (default: the current version + 1). Returns the version installed.
    pub async fn install_chunk(
        &self,
        chunk: u64,
        version: Option<u64>,
        schema: Schema,
        batch: Batch,
    ) -> Result<u64, StorageError> {
        self.install_as(chunk, version, schema, batch, None).await
    }

    /// [`Engine::install_chunk`] by `holder`, which may hold the chunk locked itself.
    pub(super) async fn install_as(
        &self,
        chunk: u64,
        version: Option<u64>,
        schema: Schema,
        batch: Batch,
        holder: Option<u64>,
    ) -> Result<u64, StorageError> {
        let _x = self.exclusive.lock().await;
        self.install_locked(chunk, version, schema, batch, holder)
            .await
    }

    /// [`Engine::install_as`], its caller holding the exclusive lock.
    pub(super) async fn install_locked(
        &self,
        chunk: u64,
        version: Option<u64>,
        schema: Schema,
        batch: Batch,
        holder: Option<u64>,
    ) -> Result<u64, StorageError> {
        batch
            .check(&schema)
            .map_err(|reason| StorageError::BadBatch { chunk, reason })?;
        let (old_version, volume_idx, seg_id) = {
            let s = self.state.borrow();
            match s.chunks.get(&chunk) {
                Some(c) => {
                    if let Some(tid) = c.locked_by.filter(|t| Some(*t) != holder) {
                        return Err(StorageError::ChunkInTransaction { chunk, tid });
                    }
                    (c.version, c.meta.volume, c.next_segment)
                }
                None => (0, (chunk % self.cfg.volumes.len() as u64) as u32, 1),
            }
        };
        let version = version.unwrap_or(old_version + 1);
        let volume = self.cfg.volumes[volume_idx as usize].clone();
        let bases = super::bases_of(&batch.columns);
        let mut segments = Vec::new();
        if batch.rows() > 0 {
            let mut seg = meta::write_segment(
                &meta::segment_file(&volume, chunk, seg_id),
                &batch.columns,
                self.cfg.block_rows,
            )
            .await?;
            seg.id = seg_id;
            seg.version = version;
            segments.push(seg);
        }
        let m = ChunkMeta {
            chunk,
            version,
            volume: volume_idx,
            schema,
            bases,
            segments,
        };
        meta::write_meta(&self.cfg.meta_dir, &m).await?;
        // The new metadata is durable: older segments are garbage now.
        remove_unnamed_segments(&volume, &m, &[]).await?;
        let mut s = self.state.borrow_mut();
        if let Some(old) = s.chunks.remove(&chunk) {
            let freed: usize = old.cache.iter().map(Column::heap_bytes).sum();
            self.cache_bytes
                .set(self.cache_bytes.get().saturating_sub(freed as u64));
        }
        s.corrupt.remove(&chunk);
        self.spans.borrow_mut().evict_chunk(chunk);
        let mut st = ChunkState::new(m);
        st.next_segment = seg_id + 1;
        s.chunks.insert(chunk, st);
        Ok(version)
    }
}

async fn remove_chunk_files(dir: &std::path::Path) -> Result<(), StorageError> {
    if !disk::exists(dir).await? {
        return Ok(());
    }
    for name in disk::list_dir(dir).await? {
        disk::remove(dir.join(name)).await?;
    }
    disk::remove_dir(dir).await?;
    Ok(())
}

/// Removes the files in `m`'s chunk directory that its metadata does not name (segments of a
/// flush that crashed before its metadata swap, or superseded by an install), except the
/// segments in `keep` (staged by transactions still prepared).
pub(super) async fn remove_unnamed_segments(
    volume: &std::path::Path,
    m: &ChunkMeta,
    keep: &[u64],
) -> Result<(), StorageError> {
    let dir = meta::chunk_dir(volume, m.chunk);
    if !disk::exists(&dir).await? {
        return Ok(());
    }
    for name in disk::list_dir(&dir).await? {
        let named = m
            .segments
            .iter()
            .map(|s| s.id)
            .chain(keep.iter().copied())
            .any(|id| {
                meta::segment_file(volume, m.chunk, id)
                    .file_name()
                    .is_some_and(|f| f.to_string_lossy() == name)
            });
        if !named {
            disk::remove(dir.join(&name)).await?;
        }
    }
    Ok(())
}

/// The holder a recovery's copy takes a chunk under ([`Engine::hold_chunk`]).
pub const RECOVERING: u64 = u64::MAX - 1;

impl Engine {
    /// Holds `chunk` against writers as a transaction would (its prepares are refused with
    /// `ChunkInTransaction { tid: RECOVERING }`), while a recovery copies its last rows: the
    /// synchronous phase of online recovery. Fails if a transaction holds it.
    pub fn hold_chunk(&self, chunk: u64) -> Result<(), StorageError> {
        let mut s = self.state.borrow_mut();
        let c = s
            .chunks
            .get_mut(&chunk)
            .ok_or(StorageError::NoSuchChunk(chunk))?;
        match c.locked_by {
            None => {
                c.locked_by = Some(RECOVERING);
                Ok(())
            }
            Some(RECOVERING) => Ok(()),
            Some(tid) => Err(StorageError::ChunkInTransaction { chunk, tid }),
        }
    }

    /// Ends [`Engine::hold_chunk`]; a chunk held by anything else is left alone.
    pub fn release_chunk(&self, chunk: u64) {
        if let Some(c) = self.state.borrow_mut().chunks.get_mut(&chunk) {
            if c.locked_by == Some(RECOVERING) {
                c.locked_by = None;
            }
        }
    }
}
