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

impl Piece {
    /// Rows of the piece (known without reading: a span's are in its segment's metadata).
    pub fn rows(&self) -> usize {
        match self {
            Piece::Decoded(c) => c.len(),
            Piece::OnDisk { seg, .. } => seg.rows as usize,
        }
    }
}

/// One column of a chunk as pieces in insertion order: its segments' spans, then its cached
/// rows. `empty` carries the column's type and symbol base.
#[derive(Debug, Clone)]
pub struct Spans {
    pub empty: Column,
    pub parts: Vec<Piece>,
    /// Only rows `start..end` of the pieces' concatenation ([`Spans::window`]); all if `None`.
    pub window: Option<(usize, usize)>,
}

impl Spans {
    /// Rows in all (known without reading: a span's rows are in its segment's metadata).
    pub fn rows(&self) -> usize {
        if let Some((start, end)) = self.window {
            return end - start;
        }
        self.parts.iter().map(Piece::rows).sum()
    }

    /// Rows `start..end` only (of all rows, whatever window was set before): a share of one
    /// partition for one shard. Nothing is read or copied until [`Spans::load`].
    pub fn window(mut self, start: usize, end: usize) -> Spans {
        let (base, all) = self.window.unwrap_or((0, self.rows()));
        assert!(
            start <= end && end <= all,
            "window {start}..{end} of {all} rows"
        );
        self.window = Some((base + start, base + end));
        self
    }

    /// The pieces inside the window, each its own column: decoded pieces shared, not copied
    /// (but for a piece the window cuts), pieces on disk decoded here and kept in `cache`
    /// when one is given. The columns of one chunk cut the same way, so their pieces line up.
    pub async fn load_pieces(
        self,
        cache: Option<&RefCell<SpanCache>>,
    ) -> Result<Vec<Arc<Column>>, StorageError> {
        let (from, to) = self.window.unwrap_or((0, usize::MAX));
        let mut out = Vec::with_capacity(self.parts.len());
        let mut at = 0;
        for p in self.parts {
            let rows = p.rows();
            let (lo, hi) = (from.max(at) - at, to.min(at + rows).saturating_sub(at));
            at += rows;
            if lo >= hi {
                continue;
            }
            let whole = match p {
                Piece::Decoded(c) => c,
                Piece::OnDisk {
                    path,
                    chunk,
                    seg,
                    col: i,
                } => {
                    let key = (chunk, seg.id, i);
                    match cache.and_then(|c| c.borrow_mut().get(&key)) {
                        Some(c) => c,
                        None => {
                            let bytes = meta::read_span(&path, chunk, &seg, i).await?;
                            let mut decoded = self.empty.slice(0, 0);
                            meta::decode_span(&path, chunk, &seg, i, &bytes, &mut decoded)?;
                            let decoded = Arc::new(decoded);
                            if let Some(c) = cache {
                                c.borrow_mut().insert(key, decoded.clone());
                            }
                            decoded
                        }
                    }
                }
            };
            out.push(if lo == 0 && hi == rows {
                whole
            } else {
                Arc::new(whole.slice(lo, hi))
            });
        }
        Ok(out)
    }

    /// The pieces as one column: decoded pieces copied, pieces on disk read and decoded here
    /// (checksums verified), and kept in `cache` when one is given (borrowed only between
    /// reads, so tasks sharing it may interleave).
    pub async fn load(self, cache: Option<&RefCell<SpanCache>>) -> Result<Column, StorageError> {
        let mut col = self.empty.clone();
        col.reserve(self.rows());
        for piece in self.load_pieces(cache).await? {
            col.append(&piece).map_err(StorageError::Format)?;
        }
        Ok(col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column::ColumnData;
    use crate::types::DataType;

    /// The output of a future that never waits (loading decoded pieces only).
    fn ready<F: std::future::Future>(f: F) -> F::Output {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::pin!(f).poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("decoded pieces load without waiting"),
        }
    }

    fn ints(v: std::ops::Range<i64>) -> Arc<Column> {
        Arc::new(Column {
            ty: DataType::Long,
            data: ColumnData::I64(v.collect()),
        })
    }

    #[test]
    fn a_window_loads_exactly_its_rows_across_pieces() {
        let spans = Spans {
            empty: Column::empty(DataType::Long),
            parts: vec![
                Piece::Decoded(ints(0..5)),
                Piece::Decoded(ints(5..6)),
                Piece::Decoded(ints(6..12)),
            ],
            window: None,
        };
        let all = ready(spans.clone().load(None)).unwrap();
        for (a, b) in [(0, 12), (0, 0), (3, 9), (5, 6), (4, 5), (11, 12), (6, 12)] {
            let w = spans.clone().window(a, b);
            assert_eq!(w.rows(), b - a);
            let got = ready(w.load(None)).unwrap();
            assert_eq!(got, all.slice(a, b), "{a}..{b}");
        }
        // Pieces: whole ones shared, cut ones sliced, together the window's rows.
        let w = spans.clone().window(3, 9);
        let pieces = ready(w.load_pieces(None)).unwrap();
        assert_eq!(
            pieces.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [2, 1, 3]
        );
        assert!(Arc::ptr_eq(
            &pieces[1],
            match &spans.parts[1] {
                Piece::Decoded(c) => c,
                Piece::OnDisk { .. } => unreachable!(),
            }
        ));
        let mut joined = Column::empty(DataType::Long);
        for p in &pieces {
            joined.append(p).unwrap();
        }
        assert_eq!(joined, all.slice(3, 9));
        // A window of a window is relative to the first.
        let w = spans.window(2, 10).window(1, 4);
        assert_eq!(ready(w.load(None)).unwrap(), all.slice(3, 6));
    }
}
