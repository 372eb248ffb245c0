//! Decoded segment spans: the engine's cache of them, and a chunk column handed out as pieces
//! ([`Spans`]) that any shard can load — decoded pieces shared by reference, pieces still on
//! disk read and decoded by the shard that loads them.
//!
//! Invariant: a span, once decoded, is never changed. Segments are immutable and their ids
//! are never reused within a chunk (nor chunk ids, D72), so a cached span keyed by (chunk,
//! segment, column) is right for as long as it is cached, in any shard's cache.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use crate::column::Column;
use crate::meta::{self, SegmentMeta};
use crate::StorageError;

/// A bounded cache of segment column spans, evicted oldest first.
pub struct SpanCache {
    bytes_max: usize,
    bytes: usize,
    map: std::collections::HashMap<(u64, u64, usize), Arc<Column>>,
    order: VecDeque<(u64, u64, usize)>,
}

impl SpanCache {
    pub fn new(bytes_max: usize) -> SpanCache {
        SpanCache {
            bytes_max,
            bytes: 0,
            map: Default::default(),
            order: VecDeque::new(),
        }
    }

    pub fn get(&mut self, key: &(u64, u64, usize)) -> Option<Arc<Column>> {
        self.map.get(key).cloned()
    }

    pub fn insert(&mut self, key: (u64, u64, usize), v: Arc<Column>) {
        let size = v.heap_bytes();
        if size > self.bytes_max {
            return;
        }
        if let Some(old) = self.map.insert(key, v.clone()) {
            self.bytes -= old.heap_bytes();
        } else {
            self.order.push_back(key);
        }
        self.bytes += size;
        while self.bytes > self.bytes_max {
            let Some(k) = self.order.pop_front() else {
                break;
            };
            if let Some(old) = self.map.remove(&k) {
                self.bytes -= old.heap_bytes();
            }
        }
    }

    fn remove(&mut self, key: &(u64, u64, usize)) {
        if let Some(old) = self.map.remove(key) {
            self.bytes -= old.heap_bytes();
            self.order.retain(|k| k != key);
        }
    }

    pub fn evict_chunk(&mut self, chunk: u64) {
        let keys: Vec<_> = self.map.keys().filter(|k| k.0 == chunk).copied().collect();
        for k in keys {
            self.remove(&k);
        }
    }
}

/// One piece of a chunk column.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Decoded: a cached segment span, or the cache engine's rows.
    Decoded(Arc<Column>),
    /// A segment's span not decoded yet: where it is.
    OnDisk {
        path: PathBuf,
        chunk: u64,
        seg: SegmentMeta,
        col: usize,
    },
}

/// One column of a chunk as pieces in insertion order: its segments' spans, then its cached
/// rows. `empty` carries the column's type and symbol base.
#[derive(Debug, Clone)]
pub struct Spans {
    pub empty: Column,
    pub parts: Vec<Piece>,
}

impl Spans {
    /// Rows in all (known without reading: a span's rows are in its segment's metadata).
    pub fn rows(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Piece::Decoded(c) => c.len(),
                Piece::OnDisk { seg, .. } => seg.rows as usize,
            })
            .sum()
    }

    /// The pieces as one column: decoded pieces copied, pieces on disk read and decoded here
    /// (checksums verified), and kept in `cache` when one is given (borrowed only between
    /// reads, so tasks sharing it may interleave).
    pub async fn load(self, cache: Option<&RefCell<SpanCache>>) -> Result<Column, StorageError> {
        let mut col = self.empty;
        for p in self.parts {
            match p {
                Piece::Decoded(c) => col.append(&c).map_err(StorageError::Format)?,
                Piece::OnDisk {
                    path,
                    chunk,
                    seg,
                    col: i,
                } => {
                    let key = (chunk, seg.id, i);
                    let hit = cache.and_then(|c| c.borrow_mut().get(&key));
                    if let Some(c) = hit {
                        col.append(&c).map_err(StorageError::Format)?;
                        continue;
                    }
                    let bytes = meta::read_span(&path, chunk, &seg, i).await?;
                    let mut decoded = col.slice(0, 0);
                    meta::decode_span(&path, chunk, &seg, i, &bytes, &mut decoded)?;
                    col.append(&decoded).map_err(StorageError::Format)?;
                    if let Some(c) = cache {
                        c.borrow_mut().insert(key, Arc::new(decoded));
                    }
                }
            }
        }
        Ok(col)
    }
}
