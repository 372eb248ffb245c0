//! The controller's durable Raft log and vote, in `<home>/<alias>/raft` (the directory the
//! tutorial's metadata backup copies).
//!
//! On-disk format (all integers little-endian):
//!
//! ```text
//! raft/state   one record, replaced atomically (tmp + fsync + rename + fsync dir):
//!              [4] "PRST"  u32 payload length  u32 crc32(payload)  payload
//!              payload = bincode(HardState { vote, committed, purged })
//! raft/log     records back to back from offset 0, zero-filled after the last one:
//!              u32 payload length (> 0)  u32 crc32(payload)  payload = bincode(Entry)
//! ```
//!
//! Invariants:
//! - **Valid prefix.** Recovery reads records until the first zero length, short record, crc
//!   mismatch, undecodable entry or index that does not follow its predecessor; that prefix is
//!   the log. Everything after it is cut off (the file is truncated and the tail block
//!   re-zeroed) before the log is used, so a stale record can never reappear behind new ones.
//! - **Durable before acknowledged.** `append` reports completion to openraft only after the
//!   write and, with `dataSync=1`, the fdatasync; `truncate_after` and `save_vote` sync before
//!   returning.
//! - **Aligned writes.** Appends rewrite the partial tail block together with the new records
//!   (O_DIRECT), so bytes already acknowledged are rewritten with identical contents: a torn
//!   rewrite keeps them.
//! - **Contiguous.** In memory, entries are exactly the indexes `(purged, last]`, each at the
//!   offset recorded for it.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use openraft::{LogState, RaftLogReader};
use rt::disk::{self, File, OpenMode, ALIGN};
use serde::{Deserialize, Serialize};

use super::{Entry, LogId, TypeConfig, Vote};

const STATE_MAGIC: [u8; 4] = *b"PRST";
const RECORD_HEADER_BYTES: usize = 8;
/// Largest entry accepted when reading the log back (a corrupt length is not allocated).
const ENTRY_BYTES_MAX: usize = 16 << 20;
/// Bytes read per step while recovering the log.
const RECOVERY_READ_BYTES: usize = 4 << 20;
/// Purged bytes at the head of the file before it is rewritten without them.
const COMPACT_DEAD_BYTES_MIN: u64 = 4 << 20;

fn corrupt(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// What must survive a restart besides the entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HardState {
    pub vote: Option<Vote>,
    pub committed: Option<LogId>,
    pub purged: Option<LogId>,
}

/// Encodes `HardState` as the `raft/state` file.
pub fn encode_state(s: &HardState) -> Vec<u8> {
    let payload = bincode::serialize(s).expect("hard state encodes");
    let mut out = Vec::with_capacity(12 + payload.len());
    out.extend_from_slice(&STATE_MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Decodes the `raft/state` file (trailing padding ignored).
pub fn decode_state(path: &Path, bytes: &[u8]) -> io::Result<HardState> {
    let bad = |why: &str| corrupt(format!("{}: {why}", path.display()));
    if bytes.len() < 12 || bytes[..4] != STATE_MAGIC {
        return Err(bad("not a Porpoise raft state file"));
    }
    let len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let payload = bytes.get(12..12 + len).ok_or_else(|| bad("truncated"))?;
    if crc32fast::hash(payload) != crc {
        return Err(bad("checksum mismatch"));
    }
    bincode::deserialize(payload).map_err(|e| bad(&format!("undecodable: {e}")))
}

/// Encodes one log record.
pub fn encode_record(e: &Entry, out: &mut Vec<u8>) {
    let payload = bincode::serialize(e).expect("log entries encode");
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// Decodes the valid prefix of a log file's bytes: `(entries with their offsets, end)`.
/// `after` is the index the first record must follow (the purged index), if known.
pub fn decode_records(bytes: &[u8]) -> (Vec<(u64, Entry)>, usize) {
    let mut out: Vec<(u64, Entry)> = Vec::new();
    let mut pos = 0usize;
    while bytes.len() - pos >= RECORD_HEADER_BYTES {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes"));
        if len == 0 || len > ENTRY_BYTES_MAX || bytes.len() - pos - RECORD_HEADER_BYTES < len {
            break;
        }
        let payload = &bytes[pos + RECORD_HEADER_BYTES..pos + RECORD_HEADER_BYTES + len];
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Ok(entry) = bincode::deserialize::<Entry>(payload) else {
            break;
        };
        if let Some((_, prev)) = out.last() {
            if entry.log_id.index != prev.log_id.index + 1 {
                break;
            }
        }
        out.push((pos as u64, entry));
        pos += RECORD_HEADER_BYTES + len;
    }
    (out, pos)
}

struct Inner {
    dir: PathBuf,
    file: File,
    sync: bool,
    state: HardState,
    /// index → (file offset, entry), exactly `(purged, last]`.
    entries: BTreeMap<u64, (u64, Entry)>,
    /// Logical end of the records.
    end: u64,
    /// The bytes of the partial block at `align_down(end)..end`.
    tail: Vec<u8>,
}

/// The log store; clones share it (openraft takes one as the store and one as the reader).
#[derive(Clone)]
pub struct LogStore {
    inner: Rc<tokio::sync::Mutex<Inner>>,
}

fn align_down(n: u64) -> u64 {
    n / ALIGN as u64 * ALIGN as u64
}

fn padded(mut v: Vec<u8>) -> Vec<u8> {
    v.resize(disk::align_up(v.len()), 0);
    v
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, recovering the valid prefix. With `sync` false
    /// (`dataSync=0`) writes are not fsynced, as DolphinDB does.
    pub async fn open(dir: &Path, sync: bool) -> io::Result<LogStore> {
        disk::create_dir_all(dir).await?;
        let state_path = dir.join("state");
        let state = if disk::exists(&state_path).await? {
            let f = File::open(&state_path, OpenMode::Existing).await?;
            let size = f.size().await? as usize;
            let bytes = f.read_at(0, size).await?;
            f.close().await?;
            decode_state(&state_path, &bytes)?
        } else {
            HardState::default()
        };
        let path = dir.join("log");
        let file = File::open(&path, OpenMode::CreateOrOpen).await?;
        let size = file.size().await?;
        let mut bytes = Vec::with_capacity(size as usize);
        while (bytes.len() as u64) < size {
            let chunk = file
                .read_at(
                    bytes.len() as u64,
                    RECOVERY_READ_BYTES.min((size as usize) - bytes.len()),
                )
                .await?;
            if chunk.is_empty() {
                break;
            }
            bytes.extend_from_slice(&chunk);
        }
        let (records, end) = decode_records(&bytes);
        let purged = state.purged.map(|l| l.index);
        let entries: BTreeMap<u64, (u64, Entry)> = records
            .into_iter()
            .filter(|(_, e)| Some(e.log_id.index) > purged)
            .map(|(off, e)| (e.log_id.index, (off, e)))
            .collect();
        if let (Some(p), Some(first)) = (purged, entries.keys().next()) {
            if *first != p + 1 {
                return Err(corrupt(format!(
                    "{}: the log starts at {first} but entries up to {p} were purged; entries are missing",
                    path.display()
                )));
            }
        }
        let end = end as u64;
        let tail = bytes[align_down(end) as usize..end as usize].to_vec();
        // Cut everything after the valid prefix (torn or stale records) before any append.
        if size > disk::align_up(end as usize) as u64 || size > end {
            file.write_at(align_down(end), &padded(tail.clone()))
                .await?;
            file.truncate(disk::align_up(end as usize) as u64).await?;
            file.sync().await?;
        }
        let inner = Inner {
            dir: dir.to_path_buf(),
            file,
            sync,
            state,
            entries,
            end,
            tail,
        };
        Ok(LogStore {
            inner: Rc::new(tokio::sync::Mutex::new(inner)),
        })
    }

    /// The hard state as last saved.
    pub async fn hard_state(&self) -> HardState {
        self.inner.lock().await.state.clone()
    }

    /// Indexes held, `(first, last)`, for tests and metrics.
    pub async fn bounds(&self) -> Option<(u64, u64)> {
        let g = self.inner.lock().await;
        Some((*g.entries.keys().next()?, *g.entries.keys().next_back()?))
    }
}

impl Inner {
    async fn save_state(&mut self) -> io::Result<()> {
        storage::meta::write_atomic(&self.dir.join("state"), &encode_state(&self.state))
            .await
            .map_err(|e| io::Error::other(e.to_string()))
    }

    async fn append(&mut self, entries: Vec<Entry>) -> io::Result<()> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let expected = self
            .entries
            .keys()
            .next_back()
            .map(|i| i + 1)
            .or(self.state.purged.map(|l| l.index + 1));
        if let Some(want) = expected {
            if first.log_id.index != want {
                return Err(io::Error::other(format!(
                    "append at index {} but the log continues at {want}",
                    first.log_id.index
                )));
            }
        }
        let start = align_down(self.end);
        let mut buf = std::mem::take(&mut self.tail);
        let mut offsets = Vec::with_capacity(entries.len());
        for e in &entries {
            offsets.push(start + buf.len() as u64);
            encode_record(e, &mut buf);
        }
        let new_end = start + buf.len() as u64;
        let new_tail = buf[(align_down(new_end) - start) as usize..].to_vec();
        let result = async {
            self.file.write_at(start, &padded(buf)).await?;
            if self.sync {
                self.file.sync().await?;
            }
            Ok::<(), io::Error>(())
        }
        .await;
        if let Err(e) = result {
            // The tail on disk may now be anything past `end`; re-read it on the next open.
            self.tail = self
                .file
                .read_at(
                    align_down(self.end),
                    (self.end - align_down(self.end)) as usize,
                )
                .await
                .unwrap_or_default();
            return Err(e);
        }
        for (off, e) in offsets.into_iter().zip(entries) {
            self.entries.insert(e.log_id.index, (off, e));
        }
        self.end = new_end;
        self.tail = new_tail;
        Ok(())
    }

    async fn truncate_from(&mut self, index: u64) -> io::Result<()> {
        let Some((&first, &(off, _))) = self.entries.range(index..).next() else {
            return Ok(());
        };
        debug_assert_eq!(first, index.max(first));
        let keep = (off - align_down(off)) as usize;
        let block = self.file.read_at(align_down(off), keep).await?;
        if block.len() != keep {
            return Err(corrupt(format!(
                "{}: short read of the log tail",
                self.dir.join("log").display()
            )));
        }
        self.file
            .write_at(align_down(off), &padded(block.clone()))
            .await?;
        self.file
            .truncate(disk::align_up(off as usize) as u64)
            .await?;
        self.file.sync().await?;
        self.entries.split_off(&first);
        self.end = off;
        self.tail = block;
        Ok(())
    }

    /// Rewrites the log without its purged head once that head is large.
    async fn maybe_compact(&mut self) -> io::Result<()> {
        let dead = match self.entries.values().next() {
            Some((off, _)) => *off,
            None => self.end,
        };
        if dead < COMPACT_DEAD_BYTES_MIN || dead < self.end / 2 {
            return Ok(());
        }
        let mut buf = Vec::new();
        let mut moved = BTreeMap::new();
        for (i, (_, e)) in std::mem::take(&mut self.entries) {
            let off = buf.len() as u64;
            encode_record(&e, &mut buf);
            moved.insert(i, (off, e));
        }
        let end = buf.len() as u64;
        let tail = buf[align_down(end) as usize..].to_vec();
        let tmp = self.dir.join("log.tmp");
        if disk::exists(&tmp).await? {
            disk::remove(&tmp).await?;
        }
        let f = File::open(&tmp, OpenMode::CreateNew).await?;
        f.write_at(0, &padded(buf)).await?;
        f.sync().await?;
        disk::rename(&tmp, self.dir.join("log")).await?;
        disk::sync_dir(&self.dir).await?;
        let old = std::mem::replace(&mut self.file, f);
        let _ = old.close().await;
        self.entries = moved;
        self.end = end;
        self.tail = tail;
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let g = self.inner.lock().await;
        Ok(g.entries
            .range(range)
            .map(|(_, (_, e))| e.clone())
            .collect())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.inner.lock().await.state.vote)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let g = self.inner.lock().await;
        let last = g.entries.values().next_back().map(|(_, e)| e.log_id);
        Ok(LogState {
            last_purged_log_id: g.state.purged,
            last_log_id: last.or(g.state.purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let mut g = self.inner.lock().await;
        g.state.vote = Some(*vote);
        g.save_state().await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not needed for safety (openraft re-derives it), but it lets a restarted controller
        // apply committed entries before it hears from a leader. Saved without a sync
        // barrier of its own only when dataSync=0.
        let mut g = self.inner.lock().await;
        if g.state.committed == committed {
            return Ok(());
        }
        g.state.committed = committed;
        g.save_state().await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.inner.lock().await.state.committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry>,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let result = self.inner.lock().await.append(entries).await;
        match result {
            Ok(()) => {
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map(|l| l.index + 1).unwrap_or(0);
        self.inner.lock().await.truncate_from(from).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let mut g = self.inner.lock().await;
        assert!(
            g.state.purged.map(|p| p.index) <= Some(log_id.index),
            "purge moves forward only"
        );
        g.state.purged = Some(log_id);
        g.save_state().await?;
        let keep = g.entries.split_off(&(log_id.index + 1));
        g.entries = keep;
        g.maybe_compact().await
    }
}
