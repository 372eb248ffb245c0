//! Chunk metadata (`CHUNK_METADATA/<chunk>.meta`) and segment files
//! (`<volume>/CHUNKS/<chunk>/<segment>.seg`).
//!
//! A segment is an immutable file of column blocks written by one flush: all blocks of column
//! 0, then column 1, ..., zero-padded to 4 KiB. The metadata record is the only index into
//! segments, and it is replaced atomically (write a temporary file, sync, rename, sync the
//! directory), so a crash leaves either the old or the new metadata — never a mix.
//!
//! Metadata file layout (little-endian; see docs/FORMAT.md):
//!
//! ```text
//! 0  u32 magic "PMET"   8  u32 body_len    16 u32 header_crc (crc32 of bytes 0..16)
//! 4  u8  format (2)     12 u32 body_crc    20 body, then zero padding to 4 KiB
//! 5  [3] reserved
//! body: u64 chunk, u64 version, u32 volume, schema, per column: symbol base (count + blobs,
//!       count 0 for non-SYMBOL columns), segments: count, then per segment u64 id, u64 rows,
//!       u64 version (format 2 only), per column: block count, then per block u64 offset,
//!       u32 len, u32 rows.
//! ```
//!
//! A segment's version is the chunk's version once its rows are in, so a reader's snapshot
//! takes the segments up to the first that reaches it ([`ChunkMeta::segments_at`]), and is
//! refused where a segment holds commits on both sides of it; format 1 files have none, read
//! as 0 (served at every version, as format 1 builds did).
//!
//! ```text
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rt::disk::{self, File, OpenMode};

use crate::batch::{Schema, COLUMNS_MAX};
use crate::bytes::{DecodeError, Reader, Writer};
use crate::codec;
use crate::column::{Column, SymbolBase};
use crate::error::StorageError;
use crate::types::DataType;

pub const META_MAGIC: u32 = u32::from_le_bytes(*b"PMET");
pub const META_FORMAT: u8 = 2;
/// The oldest metadata format this build still reads (no segment versions).
pub const META_FORMAT_V1: u8 = 1;
const META_HEADER_BYTES: usize = 20;
/// Largest metadata body accepted.
pub const META_BODY_BYTES_MAX: usize = 256 << 20;

/// Where one block of one column lives in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    pub offset: u64,
    pub len: u32,
    pub rows: u32,
}

/// One flushed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMeta {
    pub id: u64,
    pub rows: u64,
    /// The chunk's version once this segment's rows are in: a flush's segment holds the
    /// versions after its predecessor's up to this one, a staged transaction's segment exactly
    /// this one. 0 in format 1 metadata (unknown: served at every version).
    pub version: u64,
    /// Per column, its blocks in row order.
    pub blocks: Vec<Vec<BlockRef>>,
}

impl SegmentMeta {
    /// `u64 id, u64 rows, u64 version`, then per column `varint nblocks` and per block
    /// `u64 offset, u32 len, u32 rows` (also the body of a redo log `Stage` record).
    pub fn encode(&self, w: &mut Writer) {
        w.u64(self.id);
        w.u64(self.rows);
        w.u64(self.version);
        for col in &self.blocks {
            w.varint(col.len() as u64);
            for b in col {
                w.u64(b.offset);
                w.u32(b.len);
                w.u32(b.rows);
            }
        }
    }

    /// Decodes [`SegmentMeta::encode`] for `ncols` columns (`versioned`: false for format 1
    /// metadata, which has no version). Each column's block rows must add up to the rows.
    pub fn decode(
        r: &mut Reader<'_>,
        ncols: usize,
        versioned: bool,
    ) -> Result<SegmentMeta, DecodeError> {
        let id = r.u64()?;
        let rows = r.u64()?;
        let version = if versioned { r.u64()? } else { 0 };
        let mut blocks = Vec::with_capacity(ncols.min(COLUMNS_MAX));
        for _ in 0..ncols {
            let nb = r.count(r.remaining() / 16)?;
            let mut col = Vec::with_capacity(nb);
            for _ in 0..nb {
                col.push(BlockRef {
                    offset: r.u64()?,
                    len: r.u32()?,
                    rows: r.u32()?,
                });
            }
            if col.iter().map(|b| b.rows as u64).sum::<u64>() != rows {
                return Err(r.err(format!("segment {id}: block rows do not add up to {rows}")));
            }
            blocks.push(col);
        }
        Ok(SegmentMeta {
            id,
            rows,
            version,
            blocks,
        })
    }
}

/// The durable description of a chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkMeta {
    pub chunk: u64,
    pub version: u64,
    pub volume: u32,
    pub schema: Schema,
    /// Per column: the symbol base (SYMBOL columns) or `None`.
    pub bases: Vec<Option<Arc<SymbolBase>>>,
    pub segments: Vec<SegmentMeta>,
}

impl ChunkMeta {
    /// Total flushed rows.
    pub fn rows(&self) -> u64 {
        self.segments.iter().map(|s| s.rows).sum()
    }

    /// How many leading segments a reader of committed `version` sees: every segment up to
    /// and including the first that reaches `version`. `None` when a segment holds commits on
    /// both sides of `version` (a flush of several commits): its rows cannot be split, and
    /// serving it whole would show a reader part of a later transaction (the replica swarm's
    /// seed 10), so that reader must be served elsewhere. A staged transaction's segment holds
    /// one version, so it is always exact; a format 1 segment (version 0) is served at every
    /// version, as format 1 builds served it.
    pub fn segments_at(&self, version: u64) -> Option<usize> {
        let mut before = 0; // the version the chunk had before the next segment
        for (i, s) in self.segments.iter().enumerate() {
            if before >= version {
                return Some(i);
            }
            if s.version > version {
                return None;
            }
            before = s.version.max(before);
        }
        Some(self.segments.len())
    }

    /// Rows of the first `n` segments.
    pub fn rows_of(&self, n: usize) -> u64 {
        self.segments.iter().take(n).map(|s| s.rows).sum()
    }

    /// The structural invariants of a chunk's metadata, checked before every write and after
    /// every read (paired assertions): one symbol base exactly for each SYMBOL column, segment
    /// ids strictly increasing, every segment with one block list per column whose rows add
    /// up to the segment's, and no two blocks of a segment overlapping in its file.
    pub fn check(&self) -> Result<(), String> {
        let ncols = self.schema.columns.len();
        if self.bases.len() != ncols {
            return Err(format!(
                "{} symbol bases for {ncols} columns",
                self.bases.len()
            ));
        }
        for ((name, ty), base) in self.schema.columns.iter().zip(&self.bases) {
            if (*ty == DataType::Symbol) != base.is_some() {
                return Err(format!(
                    "column {name}: a symbol base only for SYMBOL columns"
                ));
            }
        }
        let mut last_id = None;
        let mut last_version = 0;
        for seg in &self.segments {
            if seg.version < last_version {
                return Err(format!(
                    "segment {} is at version {}, below its predecessor's {last_version}",
                    seg.id, seg.version
                ));
            }
            last_version = seg.version;
            if last_id.is_some_and(|l| seg.id <= l) {
                return Err(format!(
                    "segment {} follows segment {}",
                    seg.id,
                    last_id.unwrap_or(0)
                ));
            }
            last_id = Some(seg.id);
            if seg.version > self.version {
                return Err(format!(
                    "segment {} is at version {}, the chunk at {}",
                    seg.id, seg.version, self.version
                ));
            }
            if seg.blocks.len() != ncols {
                return Err(format!(
                    "segment {}: {} block lists for {ncols} columns",
                    seg.id,
                    seg.blocks.len()
                ));
            }
            let mut spans: Vec<(u64, u64)> = Vec::new();
            for col in &seg.blocks {
                if col.iter().map(|b| b.rows as u64).sum::<u64>() != seg.rows {
                    return Err(format!(
                        "segment {}: block rows do not add up to {}",
                        seg.id, seg.rows
                    ));
                }
                spans.extend(col.iter().map(|b| (b.offset, b.offset + b.len as u64)));
            }
            spans.sort_unstable();
            if spans.windows(2).any(|w| w[0].1 > w[1].0) {
                return Err(format!("segment {}: blocks overlap", seg.id));
            }
        }
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u64(self.chunk);
        w.u64(self.version);
        w.u32(self.volume);
        self.schema.encode(&mut w);
        for b in &self.bases {
            let strings: &[Vec<u8>] = b.as_ref().map(|b| b.strings.as_slice()).unwrap_or(&[]);
            w.varint(strings.len() as u64);
            for s in strings {
                w.blob(s);
            }
        }
        w.varint(self.segments.len() as u64);
        for s in &self.segments {
            s.encode(&mut w);
        }
        let body = w.buf;
        let mut h = Writer::with_capacity(META_HEADER_BYTES + body.len());
        h.u32(META_MAGIC);
        h.u8(META_FORMAT);
        h.bytes(&[0, 0, 0]);
        h.u32(body.len() as u32);
        h.u32(crc32fast::hash(&body));
        let crc = crc32fast::hash(&h.buf);
        h.u32(crc);
        h.bytes(&body);
        h.buf
    }

    pub fn decode(bytes: &[u8]) -> Result<ChunkMeta, DecodeError> {
        let mut r = Reader::new(bytes);
        if r.u32()? != META_MAGIC {
            return Err(r.err("not a chunk metadata file (bad magic)"));
        }
        let format = r.u8()?;
        if format != META_FORMAT && format != META_FORMAT_V1 {
            return Err(r.err(format!(
                "metadata format {format} is not supported (this build reads {META_FORMAT})"
            )));
        }
        r.take(3)?;
        let len = r.u32()? as usize;
        let body_crc = r.u32()?;
        let header_crc = r.u32()?;
        if header_crc != crc32fast::hash(&bytes[..16]) {
            return Err(r.err("metadata header checksum mismatch"));
        }
        if len > META_BODY_BYTES_MAX {
            return Err(r.err(format!("metadata body of {len} bytes is too large")));
        }
        let body = r.take(len)?;
        if crc32fast::hash(body) != body_crc {
            return Err(r.err("metadata body checksum mismatch"));
        }
        let mut r = Reader::new(body);
        let chunk = r.u64()?;
        let version = r.u64()?;
        let volume = r.u32()?;
        let schema = Schema::decode(&mut r)?;
        let mut bases = Vec::with_capacity(schema.columns.len());
        for (_, ty) in &schema.columns {
            let n = r.count(r.remaining())?;
            let mut strings = Vec::with_capacity(n);
            for _ in 0..n {
                strings.push(r.blob()?.to_vec());
            }
            bases.push(if *ty == DataType::Symbol {
                if strings.first().map(|s| !s.is_empty()).unwrap_or(true) {
                    return Err(r.err("a symbol base must start with the empty string"));
                }
                Some(Arc::new(SymbolBase { strings }))
            } else {
                None
            });
        }
        let nseg = r.count(r.remaining() / 16)?;
        let mut segments = Vec::with_capacity(nseg);
        for _ in 0..nseg {
            segments.push(SegmentMeta::decode(
                &mut r,
                schema.columns.len(),
                format == META_FORMAT,
            )?);
        }
        if r.remaining() != 0 {
            return Err(r.err("trailing bytes after the metadata body"));
        }
        Ok(ChunkMeta {
            chunk,
            version,
            volume,
            schema,
            bases,
            segments,
        })
    }
}

/// File name of a chunk's metadata.
pub fn meta_file(meta_dir: &Path, chunk: u64) -> PathBuf {
    meta_dir.join(format!("{chunk:020}.meta"))
}

/// The chunk's directory on its volume.
pub fn chunk_dir(volume: &Path, chunk: u64) -> PathBuf {
    volume.join("CHUNKS").join(format!("{chunk:020}"))
}

/// A segment file's path.
pub fn segment_file(volume: &Path, chunk: u64, segment: u64) -> PathBuf {
    chunk_dir(volume, chunk).join(format!("{segment:010}.seg"))
}

/// Writes a chunk's metadata file atomically and durably, after checking its invariants: a
/// violation is a bug in the engine, and writing it would make the chunk unreadable.
pub async fn write_meta(meta_dir: &Path, m: &ChunkMeta) -> Result<(), StorageError> {
    if let Err(e) = m.check() {
        panic!(
            "chunk {} metadata breaks its invariants before a write: {e}",
            m.chunk
        );
    }
    write_atomic(&meta_file(meta_dir, m.chunk), &m.encode()).await
}

/// Writes `bytes` to `path` atomically and durably ([`rt::disk::replace_file`]).
pub async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    Ok(disk::replace_file(path, bytes).await?)
}

/// Reads and verifies a metadata file, reading twice before declaring it corrupt (a failed
/// check may be a transient read error).
pub async fn read_meta(path: &Path, chunk_hint: u64) -> Result<ChunkMeta, StorageError> {
    match read_meta_once(path, chunk_hint).await {
        Err(StorageError::Corrupt { .. }) | Err(StorageError::Io(_)) => {
            read_meta_once(path, chunk_hint).await
        }
        other => other,
    }
}

async fn read_meta_once(path: &Path, chunk_hint: u64) -> Result<ChunkMeta, StorageError> {
    let f = File::open(path, OpenMode::Existing).await?;
    let size = (f.size().await? as usize).min(META_BODY_BYTES_MAX + META_HEADER_BYTES);
    let bytes = f.read_at(0, size).await?;
    f.close().await?;
    if bytes.len() >= META_HEADER_BYTES
        && bytes[..4] == META_MAGIC.to_le_bytes()
        && bytes[4] != META_FORMAT
        && bytes[4] != META_FORMAT_V1
        && crc32fast::hash(&bytes[..16]).to_le_bytes() == bytes[16..20]
    {
        return Err(StorageError::unsupported(
            path,
            "chunk metadata",
            bytes[4] as u32,
            META_FORMAT as u32,
        ));
    }
    let m = ChunkMeta::decode(&bytes).map_err(|e| StorageError::Corrupt {
        chunk: chunk_hint,
        file: path.to_path_buf(),
        offset: Some(e.at as u64),
        reason: e.what,
    })?;
    m.check().map_err(|reason| StorageError::Corrupt {
        chunk: chunk_hint,
        file: path.to_path_buf(),
        offset: None,
        reason,
    })?;
    Ok(m)
}

/// Encodes `columns` (all of one segment) into blocks of at most `block_rows` rows and writes
/// the segment file durably. Returns its block index.
pub async fn write_segment(
    path: &Path,
    columns: &[Column],
    block_rows: usize,
) -> Result<SegmentMeta, StorageError> {
    let rows = columns.first().map(|c| c.len()).unwrap_or(0);
    let mut buf = Vec::new();
    let mut blocks = Vec::with_capacity(columns.len());
    for col in columns {
        let mut refs = Vec::new();
        let mut start = 0;
        while start < rows {
            let end = (start + block_rows).min(rows);
            let at = buf.len();
            codec::encode_block_into(col, start, end, &mut buf);
            refs.push(BlockRef {
                offset: at as u64,
                len: (buf.len() - at) as u32,
                rows: (end - start) as u32,
            });
            start = end;
            // Encoding is the CPU-bound part of a flush (seconds for a full cache): let the
            // shard's other tasks — heartbeats, calls — run between blocks.
            rt::task::yield_now().await;
        }
        blocks.push(refs);
    }
    let dir = path.parent().expect("segments live in a chunk directory");
    disk::create_dir_all(dir).await?;
    let f = File::open(path, OpenMode::CreateOrOpen).await?;
    buf.resize(disk::align_up(buf.len().max(1)), 0);
    // Write in pieces so no single DMA buffer gets huge.
    const PIECE: usize = 16 << 20;
    let mut at = 0;
    while at < buf.len() {
        let end = (at + PIECE).min(buf.len());
        f.write_at(at as u64, &buf[at..end]).await?;
        at = end;
    }
    f.sync().await?;
    f.close().await?;
    disk::sync_dir(dir).await?;
    Ok(SegmentMeta {
        id: 0,
        rows: rows as u64,
        version: 0,
        blocks,
    })
}

/// Reads the stored bytes of column `col` of a segment: one read covering all its blocks.
pub async fn read_span(
    path: &Path,
    chunk: u64,
    seg: &SegmentMeta,
    col: usize,
) -> Result<Vec<u8>, StorageError> {
    let blocks = &seg.blocks[col];
    let (Some(first), Some(last)) = (blocks.first(), blocks.last()) else {
        return Ok(Vec::new());
    };
    let span_start = first.offset;
    let span_len = (last.offset + last.len as u64 - span_start) as usize;
    let f = File::open(path, OpenMode::Existing).await?;
    let mut bytes = Vec::with_capacity(span_len);
    while bytes.len() < span_len {
        let n = (span_len - bytes.len()).min(disk::READ_BYTES_MAX);
        let part = f.read_at(span_start + bytes.len() as u64, n).await?;
        if part.is_empty() {
            f.close().await?;
            return Err(StorageError::Corrupt {
                chunk,
                file: path.to_path_buf(),
                offset: Some(span_start + bytes.len() as u64),
                reason: "segment file is shorter than its index".into(),
            });
        }
        bytes.extend_from_slice(&part);
    }
    f.close().await?;
    Ok(bytes)
}

/// Decodes a column span read by [`read_span`], appending to `out` (whose type and symbol
/// base are the column's). Every block is checked against the index as well as its own crc.
pub fn decode_span(
    path: &Path,
    chunk: u64,
    seg: &SegmentMeta,
    col: usize,
    bytes: &[u8],
    out: &mut Column,
) -> Result<(), StorageError> {
    let blocks = &seg.blocks[col];
    let Some(first) = blocks.first() else {
        return Ok(());
    };
    let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
        chunk,
        file: path.to_path_buf(),
        offset: Some(offset),
        reason,
    };
    for b in blocks {
        let at = (b.offset - first.offset) as usize;
        let slice = bytes
            .get(at..at + b.len as usize)
            .ok_or_else(|| corrupt(b.offset, "block outside the file".into()))?;
        let before = out.len();
        let used =
            codec::decode_block_into(slice, out).map_err(|e| corrupt(b.offset, e.to_string()))?;
        if used != b.len as usize || out.len() - before != b.rows as usize {
            return Err(corrupt(
                b.offset,
                format!(
                    "block holds {} rows in {used} bytes, index says {} in {}",
                    out.len() - before,
                    b.rows,
                    b.len
                ),
            ));
        }
    }
    Ok(())
}
