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
//!   write and, with `dataSync=1`, the fdatasync (the log file is then write-through, O_DSYNC,
//!   so the write itself is durable on completion and the fdatasync is a no-op);
//!   `truncate_after`, `save_vote` and `purge` sync before returning. The committed index is a hint: it is saved with the next vote or
//!   purge, never on its own (an fsync pair per commit for no safety gain).
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
/// The log file is extended with zeros this far ahead of the records, so appends overwrite
/// allocated blocks and their fdatasync commits no file-size change (on ext4 a growing file
/// made every flush about 1.7x slower: `fsync_4k_growing` in `bench/benches/raft.rs`).
const PREZERO_BYTES: u64 = 1 << 20;

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
    super::net::decode(payload).map_err(|e| bad(&format!("undecodable: {e}")))
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
        let Ok(entry) = super::net::decode::<Entry>(payload) else {
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
    file: Rc<File>,
    sync: bool,
    state: HardState,
    /// index → (file offset, entry), exactly `(purged, last]`.
    entries: BTreeMap<u64, (u64, Entry)>,
    /// Logical end of the records appended (in memory; on disk up to `durable_end`).
    end: u64,
    /// End of the records written (and, with `sync`, fsynced).
    durable_end: u64,
    /// The file's size: zeros from `durable_end` (rounded up) to here.
    allocated_end: u64,
    /// The bytes at `align_down(durable_end)..end`: the partial block already on disk plus
    /// every record not yet written. The flusher writes them from that aligned offset.
    unwritten: Vec<u8>,
    /// Completions owed to openraft, each with the end offset that must be durable first.
    waiting: Vec<(u64, IOFlushed<TypeConfig>)>,
    /// A failed write or sync poisons the log: openraft stops on a storage error, and nothing
    /// later may be acknowledged over a hole.
    failed: Option<String>,
}

struct Shared {
    inner: tokio::sync::Mutex<Inner>,
    /// Held for every file write: the flusher's rounds and truncate / purge / compaction.
    io: rt::sync::Lock,
    wake: Rc<tokio::sync::Notify>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Lets the flusher notice the store is gone.
        self.wake.notify_one();
    }
}

/// The log store; clones share it (openraft takes one as the store and one as the reader).
///
/// Appends are group-committed: `append` encodes the entries into memory and returns; a
/// flusher task writes everything appended so far with one write and one fdatasync, then
/// completes every waiting append in order. Appends arriving during a flush go in the next
/// round, so under load one fsync serves many commits, and the leader's own flush overlaps
/// replication to the followers.
#[derive(Clone)]
pub struct LogStore {
    shared: Rc<Shared>,
}

fn align_down(n: u64) -> u64 {
    n / ALIGN as u64 * ALIGN as u64
}

fn padded(mut v: Vec<u8>) -> Vec<u8> {
    v.resize(disk::align_up(v.len()), 0);
    v
}

/// Opens a log file: write-through with `dataSync=1`, so a flush round is one write that is
/// durable when it completes, not a write and then an fdatasync (ARCHITECTURE D58).
async fn open_log(path: &Path, mode: OpenMode, sync: bool) -> io::Result<File> {
    if sync {
        File::open_write_through(path, mode).await
    } else {
        File::open(path, mode).await
    }
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
        let file = open_log(&path, OpenMode::CreateOrOpen, sync).await?;
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
        let mut file_size = size;
        if size > end {
            file.write_at(align_down(end), &padded(tail.clone()))
                .await?;
            file_size = disk::align_up(end as usize) as u64;
            file.truncate(file_size).await?;
            file.sync().await?;
        }
        let inner = Inner {
            dir: dir.to_path_buf(),
            file: Rc::new(file),
            sync,
            state,
            entries,
            end,
            durable_end: end,
            allocated_end: file_size,
            unwritten: tail,
            waiting: Vec::new(),
            failed: None,
        };
        let wake = Rc::new(tokio::sync::Notify::new());
        let shared = Rc::new(Shared {
            inner: tokio::sync::Mutex::new(inner),
            io: rt::sync::Lock::new(),
            wake: wake.clone(),
        });
        drop(rt::task::spawn_local(flusher(Rc::downgrade(&shared), wake)));
        Ok(LogStore { shared })
    }

    /// The hard state as last saved.
    pub async fn hard_state(&self) -> HardState {
        self.shared.inner.lock().await.state.clone()
    }

    /// Indexes held, `(first, last)`, for tests and metrics.
    pub async fn bounds(&self) -> Option<(u64, u64)> {
        let g = self.shared.inner.lock().await;
        Some((*g.entries.keys().next()?, *g.entries.keys().next_back()?))
    }

    /// Waits until everything appended so far is durable.
    pub async fn flush(&self) -> io::Result<()> {
        let _io = self.shared.io.lock().await;
        flush_round(&self.shared).await
    }
}

/// Writes and syncs everything appended so far, then completes the appends waiting on it.
/// The caller holds `shared.io`.
async fn flush_round(shared: &Shared) -> io::Result<()> {
    let (file, start, bytes, target, waiting, sync, allocated) = {
        let mut g = shared.inner.lock().await;
        if let Some(f) = &g.failed {
            return Err(io::Error::other(f.clone()));
        }
        if g.end == g.durable_end && g.waiting.is_empty() {
            return Ok(());
        }
        let start = align_down(g.durable_end);
        debug_assert_eq!(start + g.unwritten.len() as u64, g.end);
        (
            g.file.clone(),
            start,
            padded(g.unwritten.clone()),
            g.end,
            std::mem::take(&mut g.waiting),
            g.sync,
            g.allocated_end,
        )
    };
    let needed = start + bytes.len() as u64;
    let grow_to = if needed > allocated {
        disk::align_up((needed + PREZERO_BYTES) as usize) as u64
    } else {
        allocated
    };
    // The lock on memory is released: appends continue into the next round meanwhile.
    let result = async {
        if grow_to > allocated {
            // Zeros past the records keep the "nothing valid after the end" invariant.
            let zeros = vec![0u8; (grow_to - allocated) as usize];
            file.write_at(allocated, &zeros).await?;
        }
        file.write_at(start, &bytes).await?;
        if sync {
            file.sync().await?;
        }
        Ok::<(), io::Error>(())
    }
    .await;
    let mut g = shared.inner.lock().await;
    match result {
        Ok(()) => {
            g.allocated_end = grow_to;
            // Appends made during the round sit after `target` in `unwritten`.
            let written = (align_down(target) - start) as usize;
            g.unwritten.drain(..written);
            g.durable_end = target;
            drop(g);
            for (_, cb) in waiting {
                cb.io_completed(Ok(()));
            }
            Ok(())
        }
        Err(e) => {
            let msg = format!("raft log write failed: {e}");
            g.failed = Some(msg.clone());
            let later = std::mem::take(&mut g.waiting);
            drop(g);
            for (_, cb) in waiting.into_iter().chain(later) {
                cb.io_completed(Err(io::Error::other(msg.clone())));
            }
            Err(e)
        }
    }
}

/// The group-commit task: one round whenever appends are waiting. Ends with the store.
async fn flusher(shared: std::rc::Weak<Shared>, wake: Rc<tokio::sync::Notify>) {
    loop {
        wake.notified().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let _io = shared.io.lock().await;
        let _ = flush_round(&shared).await;
    }
}

impl Inner {
    async fn save_state(&mut self) -> io::Result<()> {
        storage::meta::write_atomic(&self.dir.join("state"), &encode_state(&self.state))
            .await
            .map_err(|e| io::Error::other(e.to_string()))
    }

    fn append(&mut self, entries: Vec<Entry>) -> io::Result<()> {
        if let Some(f) = &self.failed {
            return Err(io::Error::other(f.clone()));
        }
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
        for e in entries {
            let off = self.end;
            encode_record(&e, &mut self.unwritten);
            self.end = align_down(self.durable_end) + self.unwritten.len() as u64;
            self.entries.insert(e.log_id.index, (off, e));
        }
        Ok(())
    }

    /// Drops entries from `index` on. Everything appended has been flushed (caller holds io).
    async fn truncate_from(&mut self, index: u64) -> io::Result<()> {
        debug_assert_eq!(self.end, self.durable_end);
        let Some((&first, &(off, _))) = self.entries.range(index..).next() else {
            return Ok(());
        };
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
        self.durable_end = off;
        self.allocated_end = disk::align_up(off as usize) as u64;
        self.unwritten = block;
        Ok(())
    }

    /// Rewrites the log without its purged head once that head is large (caller holds io,
    /// everything flushed).
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
        let f = open_log(&tmp, OpenMode::CreateNew, self.sync).await?;
        f.write_at(0, &padded(buf)).await?;
        f.sync().await?;
        disk::rename(&tmp, self.dir.join("log")).await?;
        disk::sync_dir(&self.dir).await?;
        // The old handle closes when its last user (a finished flush round) lets go.
        self.file = Rc::new(f);
        self.entries = moved;
        self.end = end;
        self.durable_end = end;
        self.allocated_end = disk::align_up(end as usize) as u64;
        self.unwritten = tail;
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let g = self.shared.inner.lock().await;
        Ok(g.entries
            .range(range)
            .map(|(_, (_, e))| e.clone())
            .collect())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.shared.inner.lock().await.state.vote)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let g = self.shared.inner.lock().await;
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
        let mut g = self.shared.inner.lock().await;
        g.state.vote = Some(*vote);
        g.save_state().await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Kept in memory and written with the next vote or purge, not on every commit: it is a
        // hint (openraft re-learns the commit index from the leader), and a state-file
        // replacement costs two fsyncs, which would triple a commit's latency.
        self.shared.inner.lock().await.state.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.shared.inner.lock().await.state.committed)
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
        {
            let mut g = self.shared.inner.lock().await;
            g.append(entries)?;
            let end = g.end;
            g.waiting.push((end, callback));
        }
        self.shared.wake.notify_one();
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map(|l| l.index + 1).unwrap_or(0);
        let _io = self.shared.io.lock().await;
        flush_round(&self.shared).await?;
        self.shared.inner.lock().await.truncate_from(from).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let _io = self.shared.io.lock().await;
        flush_round(&self.shared).await?;
        let mut g = self.shared.inner.lock().await;
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
