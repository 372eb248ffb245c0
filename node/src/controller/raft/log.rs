//! The controller's durable Raft log and vote, in `<home>/<alias>/raft` (the directory the
//! tutorial's metadata backup copies).
//!
//! On-disk format (all integers little-endian; `docs/FORMAT.md` has it byte by byte):
//!
//! ```text
//! raft/state   one record, replaced atomically (tmp + fsync + rename + fsync dir):
//!              [4] "PRST"  u32 format (1)  u32 payload length  u32 crc32(payload)  payload
//!              payload = bincode(HardState { vote, committed, purged, rejoining })
//! raft/log     [4] "PRLG"  u32 format (1)  u32 reserved (0)  u32 crc32(bytes 0..12)
//!              then records back to back from offset 16, zero-filled after the last one:
//!              u32 payload length (> 0)  u32 crc32(bytes 8.. of the record)
//!              u64 round_start  payload = bincode(Entry)
//! ```
//!
//! `round_start` is the offset at which the flush round that wrote the record began writing
//! (the log's durable end before that round). It is what tells a torn tail from corruption.
//!
//! Invariants:
//! - **Only a torn tail is cut.** Recovery reads records until the first zero length, bad
//!   record or index that does not follow its predecessor, at offset `p`. That is a torn
//!   tail — the last flush round, interrupted — only if no valid record after `p` was
//!   written by a *later* round (`round_start > p`) and the record at `p` is not a complete
//!   record whose bytes hold no zeroed sector (a tear leaves a sector unwritten: zeros, since
//!   the log is zero-filled ahead; a flipped bit does not). A torn tail is cut (the file is
//!   truncated and the tail block re-zeroed) before the log is used, so a stale record can
//!   never reappear behind new ones. Anything else is corruption of acknowledged entries:
//!   the log refuses to open, naming the file and the offset ([`LogDamage`]), and
//!   `docs/OPERATIONS.md` says how to bring the controller back.
//! - **Durable before acknowledged.** `append` reports completion to openraft only after the
//!   write and, with `dataSync=1`, the fdatasync (the log file is then write-through, O_DSYNC,
//!   so the write itself is durable on completion and the fdatasync is a no-op);
//!   `truncate_after`, `save_vote` and `purge` sync before returning. The committed index is a
//!   hint: it is saved with the next vote or purge, never on its own (an fsync pair per commit
//!   for no safety gain).
//! - **Aligned writes.** Appends rewrite the partial tail block together with the new records
//!   (O_DIRECT), so bytes already acknowledged are rewritten with identical contents: a torn
//!   rewrite keeps them.
//! - **Contiguous.** In memory, entries are exactly the indexes `(purged, last]`, each at the
//!   offset recorded for it. In the file, each record follows the one before it by one index,
//!   except where the purge point covers the gap: a follower whose log ends at 42 that installs
//!   a snapshot up to 60 purges through 60 and appends 61 after 42's record (the purged head
//!   stays in the file until compaction). A gap the purge point does not cover is damage.

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
/// The `raft/state` format this build writes and reads.
pub const STATE_FORMAT: u32 = 1;
const STATE_HEADER_BYTES: usize = 16;
const LOG_MAGIC: [u8; 4] = *b"PRLG";
/// The `raft/log` format this build writes and reads.
pub const LOG_FORMAT: u32 = 1;
/// The log file's header; records start right after it.
pub const LOG_HEADER_BYTES: usize = 16;
const RECORD_HEADER_BYTES: usize = 16;
/// Largest entry accepted when reading the log back (a corrupt length is not allocated).
const ENTRY_BYTES_MAX: usize = 16 << 20;
/// The unit a device may tear a write at: a torn record holds at least one such sector of
/// zeros (512 bytes: the smallest logical sector a disk has, so 4 KiB devices are covered).
const TEAR_SECTOR_BYTES: usize = 512;
/// Purged bytes at the head of the file before it is rewritten without them.
const COMPACT_DEAD_BYTES_MIN: u64 = 4 << 20;
/// The log file is extended with zeros this far ahead of the records, so appends overwrite
/// allocated blocks and their fdatasync commits no file-size change (on ext4 a growing file
/// made every flush about 1.7x slower: `fsync_4k_growing` in `bench/benches/raft.rs`).
const PREZERO_BYTES: u64 = 1 << 20;

fn corrupt(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Refuses `what` at `path`, of a format this build does not read ([`storage::format_refusal`]).
pub fn unsupported_format(path: &Path, what: &str, found: u32, reads: u32) -> io::Error {
    corrupt(format!(
        "{}: {}",
        path.display(),
        storage::format_refusal(what, found, reads)
    ))
}

/// What must survive a restart besides the entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HardState {
    pub vote: Option<Vote>,
    pub committed: Option<LogId>,
    pub purged: Option<LogId>,
    /// This controller lost its log and vote and is catching up from the leader: it grants
    /// no vote until it has (ARCHITECTURE D61). Durable, so a restart mid-way keeps it.
    pub rejoining: bool,
}

/// Encodes `HardState` as the `raft/state` file.
pub fn encode_state(s: &HardState) -> Vec<u8> {
    let payload = bincode::serialize(s).expect("hard state encodes");
    let mut out = Vec::with_capacity(STATE_HEADER_BYTES + payload.len());
    out.extend_from_slice(&STATE_MAGIC);
    out.extend_from_slice(&STATE_FORMAT.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Decodes the `raft/state` file (trailing padding ignored).
pub fn decode_state(path: &Path, bytes: &[u8]) -> io::Result<HardState> {
    let bad = |why: &str| corrupt(format!("{}: {why}", path.display()));
    if bytes.len() < STATE_HEADER_BYTES || bytes[..4] != STATE_MAGIC {
        return Err(bad("not a Porpoise raft state file"));
    }
    let format = le32(bytes, 4);
    if format != STATE_FORMAT {
        return Err(unsupported_format(path, "raft state", format, STATE_FORMAT));
    }
    let len = le32(bytes, 8) as usize;
    let crc = le32(bytes, 12);
    let payload = bytes
        .get(STATE_HEADER_BYTES..STATE_HEADER_BYTES + len)
        .ok_or_else(|| bad("truncated"))?;
    if crc32fast::hash(payload) != crc {
        return Err(bad("checksum mismatch"));
    }
    super::net::decode(payload).map_err(|e| bad(&format!("undecodable: {e}")))
}

/// The log file's header block contents (16 bytes).
pub fn encode_log_header() -> Vec<u8> {
    let mut h = Vec::with_capacity(LOG_HEADER_BYTES);
    h.extend_from_slice(&LOG_MAGIC);
    h.extend_from_slice(&LOG_FORMAT.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// Checks the log file's header. An all-zero header is a file whose creation was torn before
/// anything was acknowledged in it (`Ok(false)`: start it afresh).
fn check_log_header(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    if bytes.len() < LOG_HEADER_BYTES || bytes[..LOG_HEADER_BYTES].iter().all(|b| *b == 0) {
        if bytes.iter().all(|b| *b == 0) {
            return Ok(false);
        }
        return Err(corrupt(format!(
            "{}: the header is missing but the file holds data; {}",
            path.display(),
            WAY_OUT
        )));
    }
    if bytes[..4] != LOG_MAGIC {
        return Err(corrupt(format!(
            "{}: not a Porpoise raft log (written before log format 1, or not ours); {}",
            path.display(),
            WAY_OUT
        )));
    }
    let format = le32(bytes, 4);
    if crc32fast::hash(&bytes[..12]) != le32(bytes, 12) {
        return Err(corrupt(format!(
            "{}: the header checksum does not match; {}",
            path.display(),
            WAY_OUT
        )));
    }
    if format != LOG_FORMAT {
        return Err(unsupported_format(path, "raft log", format, LOG_FORMAT));
    }
    Ok(true)
}

/// What an operator does about a refused log (docs/OPERATIONS.md, "A controller refuses its
/// Raft log").
const WAY_OUT: &str = "the controller refuses to start rather than lose acknowledged \
    entries. To bring it back, stop it, move its raft directory aside and start it again: \
    it rejoins the group and catches up from the leader without voting until it has \
    (docs/OPERATIONS.md, \"A controller refuses its Raft log\")";

/// Encodes one log record, written by the flush round that begins at `round_start`.
pub fn encode_record(e: &Entry, round_start: u64, out: &mut Vec<u8>) {
    let payload = bincode::serialize(e).expect("log entries encode");
    let at = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&round_start.to_le_bytes());
    out.extend_from_slice(&payload);
    let crc = crc32fast::hash(&out[at + 8..]);
    out[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The log's records are damaged before its end: acknowledged entries would be lost if it
/// were cut there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDamage {
    /// File offset of the first record that does not check out.
    pub offset: u64,
    pub why: String,
}

/// One record read back: its offset, round and entry, and where the next one starts.
enum Read {
    Valid {
        round_start: u64,
        entry: Box<Entry>,
        next: usize,
    },
    /// A zero length: nothing was written here.
    Empty,
    /// Not a record. `complete_len` is its length when the header claims a record that fits
    /// in the file (the bytes are all there but do not check out).
    Bad {
        why: &'static str,
        complete_len: Option<usize>,
    },
}

fn read_record(bytes: &[u8], pos: usize) -> Read {
    if bytes.len() - pos < RECORD_HEADER_BYTES {
        return if bytes[pos..].iter().all(|b| *b == 0) {
            Read::Empty
        } else {
            Read::Bad {
                why: "a record header cut short by the end of the file",
                complete_len: None,
            }
        };
    }
    let len = le32(bytes, pos) as usize;
    if len == 0 {
        return Read::Empty;
    }
    if len > ENTRY_BYTES_MAX || bytes.len() - pos - RECORD_HEADER_BYTES < len {
        return Read::Bad {
            why: "a record length past the end of the file",
            complete_len: None,
        };
    }
    let next = pos + RECORD_HEADER_BYTES + len;
    let complete_len = Some(RECORD_HEADER_BYTES + len);
    if crc32fast::hash(&bytes[pos + 8..next]) != le32(bytes, pos + 4) {
        return Read::Bad {
            why: "a record checksum mismatch",
            complete_len,
        };
    }
    let round_start = u64::from_le_bytes(bytes[pos + 8..pos + 16].try_into().expect("8 bytes"));
    if round_start > pos as u64 {
        return Read::Bad {
            why: "a record from a flush round that starts after it",
            complete_len,
        };
    }
    match super::net::decode::<Entry>(&bytes[pos + RECORD_HEADER_BYTES..next]) {
        Ok(entry) => Read::Valid {
            round_start,
            entry: Box::new(entry),
            next,
        },
        Err(_) => Read::Bad {
            why: "an undecodable entry",
            complete_len,
        },
    }
}

/// Decides whether the log may end at `end`: `Ok` if everything from there is a torn tail
/// (see the module header), the damage otherwise.
fn classify_end(bytes: &[u8], end: usize, here: &Read) -> Result<(), LogDamage> {
    let damage = |why: String| {
        Err(LogDamage {
            offset: end as u64,
            why,
        })
    };
    // A later flush round wrote after this point, so the round holding it had completed: the
    // records here were acknowledged.
    for q in end + 1..bytes.len().saturating_sub(RECORD_HEADER_BYTES - 1) {
        if let Read::Valid { round_start, .. } = read_record(bytes, q) {
            if round_start > end as u64 {
                return damage(format!(
                    "{}, followed by a valid record at offset {q} written by a later flush round",
                    describe(here)
                ));
            }
        }
    }
    // A complete record with no zeroed sector in it was written whole and then changed.
    if let Read::Bad {
        why,
        complete_len: Some(len),
    } = here
    {
        let first = end / TEAR_SECTOR_BYTES;
        let last = (end + len - 1) / TEAR_SECTOR_BYTES;
        let torn = (first..=last).any(|s| {
            let a = (s * TEAR_SECTOR_BYTES).max(end);
            let b = ((s + 1) * TEAR_SECTOR_BYTES).min(end + len);
            bytes[a..b].iter().all(|x| *x == 0)
        });
        if !torn {
            return damage(format!(
                "{why} in a complete record with no unwritten sector (a changed byte, not a torn write)"
            ));
        }
    }
    Ok(())
}

fn describe(r: &Read) -> &'static str {
    match r {
        Read::Bad { why, .. } => why,
        Read::Empty | Read::Valid { .. } => "a zero record length",
    }
}

/// Decodes a log file's records (`bytes` is the whole file, header included):
/// `(entries with their offsets, end of the last one)`, or the damage that forbids cutting
/// the log at its first bad record. Every record must follow the one before by one index.
pub fn decode_records(bytes: &[u8]) -> Result<(Vec<(u64, Entry)>, usize), LogDamage> {
    decode_records_after(bytes, None)
}

/// [`decode_records`] for a log purged through `purged`: a record may follow one below the
/// purge point with a gap the purge covers (its index at most `purged + 1`), as after a
/// snapshot installed ahead of the log (the module header's "Contiguous").
pub fn decode_records_after(
    bytes: &[u8],
    purged: Option<u64>,
) -> Result<(Vec<(u64, Entry)>, usize), LogDamage> {
    let mut out: Vec<(u64, Entry)> = Vec::new();
    let mut pos = LOG_HEADER_BYTES.min(bytes.len());
    loop {
        if pos == bytes.len() {
            return Ok((out, pos));
        }
        let here = read_record(bytes, pos);
        if let Read::Valid { entry, next, .. } = here {
            if let Some((_, prev)) = out.last() {
                let (prev_i, i) = (prev.log_id.index, entry.log_id.index);
                let covered = purged.is_some_and(|p| i > prev_i && i <= p + 1);
                if i != prev_i + 1 && !covered {
                    // A whole, checked record cannot come from a tear.
                    return Err(LogDamage {
                        offset: pos as u64,
                        why: format!(
                            "entry {} follows entry {}: an index is missing",
                            entry.log_id.index, prev.log_id.index
                        ),
                    });
                }
            }
            out.push((pos as u64, *entry));
            pos = next;
            continue;
        }
        classify_end(bytes, pos, &here)?;
        return Ok((out, pos));
    }
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
    /// Where the flush round in progress ends, if one is: records appended meanwhile belong
    /// to the next round, which starts there.
    flushing_to: Option<u64>,
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

impl LogStore {
    /// Opens (or creates) the log in `dir`, recovering the valid prefix. With `sync` false
    /// (`dataSync=0`) writes are not fsynced, as DolphinDB does.
    pub async fn open(dir: &Path, sync: bool) -> io::Result<LogStore> {
        disk::create_dir_all(dir).await?;
        let state_path = dir.join("state");
        let state = if disk::exists(&state_path).await? {
            decode_state(&state_path, &disk::read_file(&state_path).await?)?
        } else {
            HardState::default()
        };
        let path = dir.join("log");
        let file = File::open_log(&path, OpenMode::CreateOrOpen, sync).await?;
        let mut bytes = file.read_all().await?;
        if !check_log_header(&path, &bytes)? {
            // A new log (or one whose creation was torn before anything was written to it).
            let header = padded(encode_log_header());
            file.write_at(0, &header).await?;
            file.truncate(ALIGN as u64).await?;
            file.sync().await?;
            bytes = header;
        }
        let purged = state.purged.map(|l| l.index);
        let (records, end) = decode_records_after(&bytes, purged).map_err(|d| {
            corrupt(format!(
                "{}: damaged at offset {}: {}; {}",
                path.display(),
                d.offset,
                d.why,
                WAY_OUT
            ))
        })?;
        let entries: BTreeMap<u64, (u64, Entry)> = records
            .into_iter()
            .filter(|(_, e)| Some(e.log_id.index) > purged)
            .map(|(off, e)| (e.log_id.index, (off, e)))
            .collect();
        if let (Some(p), Some(first)) = (purged, entries.keys().next()) {
            if *first != p + 1 {
                return Err(corrupt(format!(
                    "{}: the log starts at {first} but entries up to {p} were purged; entries are missing; {}",
                    path.display(),
                    WAY_OUT
                )));
            }
        }
        let end = end as u64;
        let tail = bytes[align_down(end) as usize..end as usize].to_vec();
        // Cut the torn tail before any append.
        let mut file_size = bytes.len() as u64;
        if file_size > end {
            file_size = cut_at(&file, end, &tail).await?;
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
            flushing_to: None,
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

    /// Records durably whether this controller is rejoining after losing its log and vote
    /// (ARCHITECTURE D61).
    pub async fn set_rejoining(&self, rejoining: bool) -> io::Result<()> {
        let mut g = self.shared.inner.lock().await;
        if g.state.rejoining != rejoining {
            g.state.rejoining = rejoining;
            g.save_state().await?;
        }
        Ok(())
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

/// Ends the log file at `end`, whose partial block holds `tail` (the bytes from
/// `align_down(end)`): the file is shortened to that block first and the block re-zeroed past
/// `end` after, each synced, so a crash in between never leaves zeros with older records behind
/// them (which the next open would rightly call corruption). Returns the new file size.
async fn cut_at(file: &File, end: u64, tail: &[u8]) -> io::Result<u64> {
    debug_assert_eq!(align_down(end) + tail.len() as u64, end);
    let size = disk::align_up(end as usize) as u64;
    file.truncate(size).await?;
    file.sync().await?;
    file.write_at(align_down(end), &padded(tail.to_vec()))
        .await?;
    file.sync().await?;
    Ok(size)
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
        g.flushing_to = Some(g.end);
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
    g.flushing_to = None;
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
        // The round that will write these records starts where the one in flight ends, or at
        // the durable end when none is.
        let round_start = self.flushing_to.unwrap_or(self.durable_end);
        for e in entries {
            let off = self.end;
            encode_record(&e, round_start, &mut self.unwritten);
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
        cut_at(&self.file, off, &block).await?;
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
        // The rewritten file is one round from its header: it is durable before it replaces
        // the old one.
        let mut buf = encode_log_header();
        let mut moved = BTreeMap::new();
        for (i, (_, e)) in std::mem::take(&mut self.entries) {
            let off = buf.len() as u64;
            encode_record(&e, LOG_HEADER_BYTES as u64, &mut buf);
            moved.insert(i, (off, e));
        }
        let end = buf.len() as u64;
        let tail = buf[align_down(end) as usize..].to_vec();
        let tmp = self.dir.join("log.tmp");
        if disk::exists(&tmp).await? {
            disk::remove(&tmp).await?;
        }
        let f = File::open_log(&tmp, OpenMode::CreateNew, self.sync).await?;
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
