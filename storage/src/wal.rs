//! The redo log: every change is a record, records are written in groups, and a group is
//! durable as one unit.
//!
//! File `redo.<gen>.log` is a sequence of groups, each starting on a 4 KiB boundary:
//!
//! ```text
//! 0  u32 magic "PWAL"   16 u32 body_len    28 u32 reserved (0)
//! 4  u8  format (1)     20 u32 body_crc    32 body: records, each varint length + bytes
//! 5  [3] reserved       24 u32 header_crc      then zero padding to the next 4 KiB
//! 8  u64 seq (1, 2, 3, ... within a file)
//! ```
//!
//! Invariants:
//! - A group is written with one aligned write into fresh blocks; a block holding synced data is
//!   never rewritten, so a torn write can only damage the group being written.
//! - Recovery accepts groups while magic, crcs and `seq` check out and stops at the first that
//!   does not (a torn tail); the file is truncated there. An unacknowledged group is thus either
//!   wholly present or wholly absent — never partially applied.
//! - Group commit: concurrent writers append records, one of them writes and syncs the group,
//!   and all of them are released when their record is durable.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::task::{Poll, Waker};

use rt::disk::{self, File, OpenMode, ALIGN};

use crate::batch::{Batch, COLUMNS_MAX};
use crate::bytes::{DecodeError, Reader, Writer};
use crate::error::StorageError;
use crate::meta::SegmentMeta;

pub const WAL_MAGIC: u32 = u32::from_le_bytes(*b"PWAL");
pub const WAL_FORMAT: u8 = 1;
pub const GROUP_HEADER_BYTES: usize = 32;
/// Largest group body; an append bigger than this is refused (split it).
pub const GROUP_BODY_BYTES_MAX: usize = 1 << 30;

/// One logged change.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// An auto-committed append producing `version` of `chunk`.
    Append {
        chunk: u64,
        version: u64,
        batch: Batch,
    },
    /// Rows of transaction `tid` for `chunk`: durable, invisible until committed.
    Prepare {
        tid: u64,
        chunk: u64,
        batch: Batch,
    },
    /// Transaction `tid` committed, producing these `(chunk, version)`s (replay skips parts
    /// whose version is already in the chunk's flushed metadata).
    Commit {
        tid: u64,
        versions: Vec<(u64, u64)>,
    },
    Abort {
        tid: u64,
    },
    /// Transaction `tid` rewrites `chunk`: the batches it prepares for it after this record
    /// replace the chunk's rows when it commits (`update`, `delete`).
    Replace {
        tid: u64,
        chunk: u64,
    },
    /// Rows of transaction `tid` for `chunk` written as segment file `segment.id` (synced
    /// before this record) instead of into the log: durable, invisible until committed, then
    /// added to the chunk's metadata (ARCHITECTURE D80). `bases` holds, per column, the
    /// strings the segment's SYMBOL codes use beyond the chunk's base.
    Stage {
        tid: u64,
        chunk: u64,
        segment: SegmentMeta,
        bases: Vec<BaseGrowth>,
    },
}

/// Strings appended to a SYMBOL column's base: `from` is the length of the base they extend
/// (0, with no strings, for a column that is not SYMBOL; a symbol base is never empty).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BaseGrowth {
    pub from: u64,
    pub strings: Vec<Vec<u8>>,
}

impl Record {
    /// Encodes an `Append` record without owning the batch (appends are large: no copy).
    pub fn encode_append(w: &mut Writer, chunk: u64, version: u64, batch: &Batch) {
        w.u8(2);
        w.u64(chunk);
        w.u64(version);
        batch.encode(w);
    }

    /// Encodes a `Prepare` record without owning the batch.
    pub fn encode_prepare(w: &mut Writer, tid: u64, chunk: u64, batch: &Batch) {
        w.u8(3);
        w.u64(tid);
        w.u64(chunk);
        batch.encode(w);
    }

    pub fn encode(&self, w: &mut Writer) {
        match self {
            Record::Append {
                chunk,
                version,
                batch,
            } => Record::encode_append(w, *chunk, *version, batch),
            Record::Prepare { tid, chunk, batch } => Record::encode_prepare(w, *tid, *chunk, batch),
            Record::Commit { tid, versions } => {
                w.u8(4);
                w.u64(*tid);
                w.varint(versions.len() as u64);
                for (c, v) in versions {
                    w.u64(*c);
                    w.u64(*v);
                }
            }
            Record::Abort { tid } => {
                w.u8(5);
                w.u64(*tid);
            }
            Record::Replace { tid, chunk } => {
                w.u8(6);
                w.u64(*tid);
                w.u64(*chunk);
            }
            Record::Stage {
                tid,
                chunk,
                segment,
                bases,
            } => {
                w.u8(7);
                w.u64(*tid);
                w.u64(*chunk);
                w.varint(bases.len() as u64);
                segment.encode(w);
                for b in bases {
                    w.varint(b.from);
                    w.varint(b.strings.len() as u64);
                    for s in &b.strings {
                        w.blob(s);
                    }
                }
            }
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Record, DecodeError> {
        Ok(match r.u8()? {
            2 => Record::Append {
                chunk: r.u64()?,
                version: r.u64()?,
                batch: Batch::decode(r)?,
            },
            3 => Record::Prepare {
                tid: r.u64()?,
                chunk: r.u64()?,
                batch: Batch::decode(r)?,
            },
            4 => {
                let tid = r.u64()?;
                let n = r.count(r.remaining() / 16)?;
                let mut versions = Vec::with_capacity(n);
                for _ in 0..n {
                    versions.push((r.u64()?, r.u64()?));
                }
                Record::Commit { tid, versions }
            }
            5 => Record::Abort { tid: r.u64()? },
            6 => Record::Replace {
                tid: r.u64()?,
                chunk: r.u64()?,
            },
            7 => {
                let tid = r.u64()?;
                let chunk = r.u64()?;
                let ncols = r.count(COLUMNS_MAX)?;
                let segment = SegmentMeta::decode(r, ncols, true)?;
                let mut bases = Vec::with_capacity(ncols);
                for _ in 0..ncols {
                    let from = r.varint()?;
                    let n = r.count(r.remaining())?;
                    let mut strings = Vec::with_capacity(n);
                    for _ in 0..n {
                        strings.push(r.blob()?.to_vec());
                    }
                    if from == 0 && n > 0 {
                        return Err(r.err("symbol strings extend no base"));
                    }
                    bases.push(BaseGrowth { from, strings });
                }
                Record::Stage {
                    tid,
                    chunk,
                    segment,
                    bases,
                }
            }
            k => return Err(r.err(format!("unknown record kind {k}"))),
        })
    }
}

fn group_header(seq: u64, body: &[u8]) -> [u8; GROUP_HEADER_BYTES] {
    let mut w = Writer::with_capacity(GROUP_HEADER_BYTES);
    w.u32(WAL_MAGIC);
    w.u8(WAL_FORMAT);
    w.bytes(&[0, 0, 0]);
    w.u64(seq);
    w.u32(body.len() as u32);
    w.u32(crc32fast::hash(body));
    let crc = crc32fast::hash(&w.buf);
    w.u32(crc);
    w.u32(0);
    w.buf.try_into().expect("32-byte header")
}

/// One group as it is written: header, body (each record a `blob`), zeros to a block boundary.
pub fn encode_group(seq: u64, records: &[Record]) -> Vec<u8> {
    let mut body = Writer::default();
    for r in records {
        let mut w = Writer::default();
        r.encode(&mut w);
        body.blob(&w.buf);
    }
    let mut out = group_header(seq, &body.buf).to_vec();
    out.extend_from_slice(&body.buf);
    out.resize(disk::align_up(out.len()), 0);
    out
}

/// Parses a group header; `None` if it is not a valid header for `seq`.
fn parse_header(h: &[u8], seq: u64) -> Option<(usize, u32)> {
    let mut r = Reader::new(h.get(..GROUP_HEADER_BYTES)?);
    let magic = r.u32().ok()?;
    let format = r.u8().ok()?;
    r.take(3).ok()?;
    let s = r.u64().ok()?;
    let len = r.u32().ok()? as usize;
    let body_crc = r.u32().ok()?;
    let header_crc = r.u32().ok()?;
    let ok = magic == WAL_MAGIC
        && format == WAL_FORMAT
        && s == seq
        && header_crc == crc32fast::hash(&h[..24])
        && len <= GROUP_BODY_BYTES_MAX;
    ok.then_some((len, body_crc))
}

/// The format of a log whose first group header is intact but of a format other than ours.
fn other_format(bytes: &[u8]) -> Option<u8> {
    let h = bytes.get(..GROUP_HEADER_BYTES)?;
    let intact =
        h[..4] == WAL_MAGIC.to_le_bytes() && h[24..28] == crc32fast::hash(&h[..24]).to_le_bytes();
    (intact && h[4] != WAL_FORMAT).then_some(h[4])
}

/// Looks for a valid group header with a sequence number after `seq` at any block boundary
/// past `from`.
fn later_group(bytes: &[u8], from: usize, seq: u64) -> Option<usize> {
    let mut pos = disk::align_up(from + 1);
    while pos + GROUP_HEADER_BYTES <= bytes.len() {
        for s in seq + 1..seq + 64 {
            if parse_header(&bytes[pos..], s).is_some() {
                return Some(pos);
            }
        }
        pos += ALIGN;
    }
    None
}

/// The valid prefix of a log: its records, the byte length of the groups that hold them, and
/// the next group's sequence number. Pure, so the fuzz target can drive it with arbitrary bytes.
pub fn scan(bytes: &[u8]) -> (Vec<Record>, usize, u64) {
    let s = scan_groups(bytes);
    (s.records, s.valid, s.next_seq)
}

/// What [`scan`] found, and whether it stopped at a complete group it cannot read.
pub struct Scanned {
    pub records: Vec<Record>,
    pub valid: usize,
    pub next_seq: u64,
    /// A group whose checksums hold but whose records do not parse starts at `valid`: a
    /// newer build's records or a bug, never a torn write — it must not be cut off.
    pub unreadable: Option<DecodeError>,
}

/// [`scan`], telling a torn tail from a complete group it cannot read.
pub fn scan_groups(bytes: &[u8]) -> Scanned {
    let mut unreadable = None;
    let mut records = Vec::new();
    let mut pos = 0usize;
    let mut seq = 1u64;
    while pos + GROUP_HEADER_BYTES <= bytes.len() {
        let Some((len, crc)) = parse_header(&bytes[pos..], seq) else {
            break;
        };
        let start = pos + GROUP_HEADER_BYTES;
        let Some(body) = bytes.get(start..start + len) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        let mut r = Reader::new(body);
        let mut group = Vec::new();
        let mut ok = true;
        while r.remaining() > 0 {
            let rec = r.blob().and_then(|b| {
                let mut rr = Reader::new(b);
                let rec = Record::decode(&mut rr)?;
                if rr.remaining() != 0 {
                    return Err(rr.err("trailing bytes in record"));
                }
                Ok(rec)
            });
            match rec {
                Ok(rec) => group.push(rec),
                Err(e) => {
                    unreadable = Some(e);
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            break; // a group whose crc matches but does not parse: written by a buggy or newer build
        }
        records.extend(group);
        pos = disk::align_up(start + len);
        seq += 1;
    }
    Scanned {
        records,
        valid: pos.min(bytes.len()),
        next_seq: seq,
        unreadable,
    }
}

struct Shared {
    /// Encoded records waiting for the next group.
    pending: Writer,
    /// Records appended so far (the last one's log sequence number).
    appended: u64,
    /// Records known durable.
    durable: u64,
    flushing: bool,
    waiters: Vec<Waker>,
    /// A failed write or sync poisons the log: nothing after it may be acknowledged.
    failed: Option<String>,
}

/// Writes `body` as the next group at the log's write position, growing the pre-zeroed
/// region first when the group passes its end, and fdatasyncs when `synced` (a write-through
/// file is durable when the write completes). The position moves only once the write is done,
/// so a failed write leaves it where the next group overwrites it.
async fn write_group(
    file: &File,
    write_pos: &RefCell<(u64, u64)>,
    allocated: &std::cell::Cell<u64>,
    synced: bool,
    body: &[u8],
) -> Result<(), StorageError> {
    if body.is_empty() {
        return Ok(());
    }
    let (pos, seq) = *write_pos.borrow();
    let mut buf = Vec::with_capacity(disk::align_up(GROUP_HEADER_BYTES + body.len()));
    buf.extend_from_slice(&group_header(seq, body));
    buf.extend_from_slice(body);
    buf.resize(disk::align_up(buf.len()), 0);
    debug_assert_eq!(pos % ALIGN as u64, 0);
    let end = pos + buf.len() as u64;
    if end > allocated.get() {
        let grow_to = end + PREZERO_BYTES;
        let zeros = vec![0u8; (grow_to - allocated.get()) as usize];
        file.write_at(allocated.get(), &zeros).await?;
        allocated.set(grow_to);
    }
    file.write_at(pos, &buf).await?;
    if synced {
        file.sync().await?;
    }
    *write_pos.borrow_mut() = (pos + buf.len() as u64, seq + 1);
    Ok(())
}

/// The open redo log.
pub struct Wal {
    dir: PathBuf,
    gen: std::cell::Cell<u64>,
    file: RefCell<Rc<File>>,
    write_pos: Rc<RefCell<(u64, u64)>>, // (byte position, next seq)
    sync: bool,
    /// `dataSync=1` with a write-through file: each group is durable when its write completes.
    write_through: bool,
    /// The file's size: zeros from the write position to here (see [`PREZERO_BYTES`]).
    allocated: Rc<std::cell::Cell<u64>>,
    shared: Rc<RefCell<Shared>>,
}

/// The log is extended with zeros this far ahead of its groups, so a group's write overwrites
/// allocated blocks and commits no file-size change: with a write-through file a growing file
/// costs a metadata write with every group (the Raft log does the same, ARCHITECTURE D58).
/// Zeros never parse as a group, so the torn-tail rule is unchanged.
pub const PREZERO_BYTES: u64 = 1 << 20;

fn log_name(gen: u64) -> String {
    format!("redo.{gen:020}.log")
}

fn parse_gen(name: &str) -> Option<u64> {
    name.strip_prefix("redo.")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

impl Wal {
    /// Opens the newest log in `dir` (creating one if there is none), returning the records of
    /// its valid prefix. A torn tail is cut off.
    pub async fn open(dir: &Path, sync: bool) -> Result<(Wal, Vec<Record>), StorageError> {
        Wal::open_with(dir, sync, sync).await
    }

    /// [`Wal::open`], choosing whether a synced log is written through (`write_through`, the
    /// default with `dataSync=1`) or written and then fdatasynced (kept for the benchmark's
    /// same-run comparison).
    pub async fn open_with(
        dir: &Path,
        sync: bool,
        write_through: bool,
    ) -> Result<(Wal, Vec<Record>), StorageError> {
        let write_through = sync && write_through;
        disk::create_dir_all(dir).await?;
        let mut gens = Vec::new();
        for name in disk::list_dir(dir).await? {
            if let Some(g) = parse_gen(&name) {
                gens.push(g);
            } else if name.ends_with(".tmp") {
                // An interrupted checkpoint: the old log is still complete and authoritative.
                disk::remove(dir.join(&name)).await?;
            }
        }
        gens.sort_unstable();
        let gen = gens.last().copied().unwrap_or(1);
        // Older generations were superseded by a completed checkpoint.
        for g in &gens[..gens.len().saturating_sub(1)] {
            disk::remove(dir.join(log_name(*g))).await?;
        }
        let path = dir.join(log_name(gen));
        let file = File::open_log(&path, OpenMode::CreateOrOpen, write_through).await?;
        let mut bytes = file.read_all().await?;
        if let Some(found) = other_format(&bytes) {
            // Another build's log: cutting it as a torn tail would drop every record in it.
            return Err(StorageError::unsupported(
                &path,
                "redo log",
                found as u32,
                WAL_FORMAT as u32,
            ));
        }
        let mut scanned = scan_groups(&bytes);
        if scanned.valid < bytes.len() {
            // Before cutting anything, rule out a transient read error: read again.
            let again = file.read_all().await?;
            let rescan = scan_groups(&again);
            if rescan.valid > scanned.valid {
                scanned = rescan;
                bytes = again;
            }
        }
        let Scanned {
            records,
            valid,
            next_seq,
            unreadable,
        } = scanned;
        if let Some(e) = unreadable {
            // Complete (its checksums hold), so not torn: cutting it would drop acknowledged
            // records this build cannot read.
            return Err(StorageError::Corrupt {
                chunk: 0,
                file: path,
                offset: Some(valid as u64),
                reason: format!(
                    "redo log group {next_seq} is complete but its records do not parse ({}): \
                     written by a newer build? it is not cut off",
                    e.what
                ),
            });
        }
        if valid < bytes.len() {
            // Only the group being written at the crash can be torn. A valid group *after* the
            // bad one means acknowledged data is damaged in the middle: refuse to guess.
            if let Some(at) = later_group(&bytes, valid, next_seq) {
                return Err(StorageError::Corrupt {
                    chunk: 0,
                    file: path,
                    offset: Some(valid as u64),
                    reason: format!(
                        "redo log group {next_seq} is damaged but a later group follows at offset {at}; \
                         the node's data must be recovered from replicas"
                    ),
                });
            }
            file.truncate(valid as u64).await?;
            file.sync().await?;
        }
        if gens.is_empty() {
            disk::sync_dir(dir).await?;
        }
        let wal = Wal {
            dir: dir.to_path_buf(),
            gen: std::cell::Cell::new(gen),
            file: RefCell::new(Rc::new(file)),
            write_pos: Rc::new(RefCell::new((valid as u64, next_seq))),
            sync,
            write_through,
            allocated: Rc::new(std::cell::Cell::new(valid as u64)),
            shared: Rc::new(RefCell::new(Shared {
                pending: Writer::default(),
                appended: 0,
                durable: 0,
                flushing: false,
                waiters: Vec::new(),
                failed: None,
            })),
        };
        Ok((wal, records))
    }

    /// Adds `rec` to the next group; returns its sequence number for [`Wal::wait_durable`].
    pub fn append(&self, rec: &Record) -> Result<u64, StorageError> {
        self.append_with(|w| rec.encode(w))
    }

    /// Adds the record `encode` writes to the next group (lets callers log borrowed data).
    pub fn append_with(&self, encode: impl FnOnce(&mut Writer)) -> Result<u64, StorageError> {
        let mut s = self.shared.borrow_mut();
        if let Some(e) = &s.failed {
            return Err(StorageError::LogFailed(e.clone()));
        }
        let mut w = Writer::default();
        encode(&mut w);
        if s.pending.buf.len() + w.buf.len() + 10 > GROUP_BODY_BYTES_MAX {
            return Err(StorageError::TooLarge(format!(
                "a redo log record of {} bytes exceeds the group limit of {GROUP_BODY_BYTES_MAX}; split the append",
                w.buf.len()
            )));
        }
        s.pending.blob(&w.buf);
        s.appended += 1;
        Ok(s.appended)
    }

    /// The last record appended (durable or not).
    pub fn appended_lsn(&self) -> u64 {
        self.shared.borrow().appended
    }

    /// Waits until record `lsn` is written (and synced when `dataSync=1`). The first waiter
    /// starts the group's write; the others ride along (group commit).
    ///
    /// Cancel-safe: the group is written by a task of its own, so a waiter dropped mid-write
    /// (its caller timed out or its connection went) neither leaves `flushing` set for ever nor
    /// loses the records it took from `pending` — they are written all the same, and every
    /// other waiter learns of it.
    pub async fn wait_durable(&self, lsn: u64) -> Result<(), StorageError> {
        loop {
            {
                let mut s = self.shared.borrow_mut();
                if let Some(e) = &s.failed {
                    return Err(StorageError::LogFailed(e.clone()));
                }
                if s.durable >= lsn {
                    return Ok(());
                }
                if !s.flushing {
                    s.flushing = true;
                    let body = std::mem::take(&mut s.pending.buf);
                    let upto = s.appended;
                    drop(rt::task::spawn_local(self.group(body, upto)));
                }
            }
            self.wait_for_flush().await;
        }
    }

    /// Writes one group (the records up to `upto`), then marks them durable and wakes every
    /// waiter; a failure poisons the log. Owns all it touches, so it can run as its own task.
    fn group(&self, body: Vec<u8>, upto: u64) -> impl std::future::Future<Output = ()> + 'static {
        let file = self.file.borrow().clone();
        let write_pos = self.write_pos.clone();
        let allocated = self.allocated.clone();
        let shared = self.shared.clone();
        let synced = self.sync && !self.write_through;
        async move {
            let result = write_group(&file, &write_pos, &allocated, synced, &body).await;
            let mut s = shared.borrow_mut();
            debug_assert!(s.flushing, "one group write at a time");
            s.flushing = false;
            match result {
                Ok(()) => s.durable = s.durable.max(upto),
                Err(e) => s.failed = Some(e.to_string()),
            }
            let waiting = std::mem::take(&mut s.waiters);
            drop(s);
            for w in waiting {
                w.wake();
            }
        }
    }

    async fn wait_for_flush(&self) {
        std::future::poll_fn(|cx| {
            let mut s = self.shared.borrow_mut();
            if !s.flushing {
                return Poll::Ready(());
            }
            s.waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Replaces the log by a fresh generation holding only `keep` (checkpoint). Call only when
    /// everything else the old log held is durable elsewhere (flushed chunks and metadata).
    pub async fn rotate(&self, keep: &[Record]) -> Result<(), StorageError> {
        // Hold the group-commit flag: no group may be written to the old file meanwhile.
        // Records appended during the rotation stay pending and go to the new file.
        loop {
            let acquired = {
                let mut s = self.shared.borrow_mut();
                !std::mem::replace(&mut s.flushing, true)
            };
            if acquired {
                break;
            }
            self.wait_for_flush().await;
        }
        let result = self.rotate_locked(keep).await;
        let mut s = self.shared.borrow_mut();
        s.flushing = false;
        if let Err(e) = &result {
            s.failed = Some(e.to_string());
        }
        for w in s.waiters.drain(..) {
            w.wake();
        }
        result
    }

    async fn rotate_locked(&self, keep: &[Record]) -> Result<(), StorageError> {
        let gen = self.gen.get() + 1;
        let tmp = self.dir.join(format!("{}.tmp", log_name(gen)));
        let file = File::open_log(&tmp, OpenMode::CreateNew, self.write_through).await?;
        let mut next = (0u64, 1u64);
        if !keep.is_empty() {
            let buf = encode_group(1, keep);
            file.write_at(0, &buf).await?;
            next = (buf.len() as u64, 2);
        }
        file.sync().await?;
        let path = self.dir.join(log_name(gen));
        disk::rename(&tmp, &path).await?;
        disk::sync_dir(&self.dir).await?;
        disk::remove(self.dir.join(log_name(self.gen.get()))).await?;
        disk::sync_dir(&self.dir).await?;
        self.gen.set(gen);
        *self.file.borrow_mut() =
            Rc::new(File::open_log(&path, OpenMode::Existing, self.write_through).await?);
        *self.write_pos.borrow_mut() = next;
        self.allocated.set(next.0);
        Ok(())
    }

    /// Bytes of the current log file (for checkpoint decisions).
    pub fn bytes(&self) -> u64 {
        self.write_pos.borrow().0
    }

    /// The last record known durable.
    pub fn durable_lsn(&self) -> u64 {
        self.shared.borrow().durable
    }

    /// Whether every appended record is durable.
    pub fn idle(&self) -> bool {
        let s = self.shared.borrow();
        s.durable == s.appended && !s.flushing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column::Column;
    use crate::types::DataType;

    fn sample() -> Vec<Record> {
        let batch = Batch {
            columns: vec![
                Column::from_strings(DataType::Symbol, &["a", "b"]),
                Column {
                    ty: DataType::Double,
                    data: crate::column::ColumnData::F64(vec![1.5, 2.5]),
                },
            ],
        };
        vec![
            Record::Append {
                chunk: 7,
                version: 1,
                batch: batch.clone(),
            },
            Record::Prepare {
                tid: 9,
                chunk: 7,
                batch,
            },
            Record::Commit {
                tid: 9,
                versions: vec![(7, 2), (8, 5)],
            },
            Record::Abort { tid: 10 },
        ]
    }

    fn log_bytes(groups: &[&[Record]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            out.extend_from_slice(&encode_group(i as u64 + 1, g));
        }
        out
    }

    #[test]
    fn redo_log_bytes_are_pinned() {
        let recs = sample();
        let mut w = Writer::default();
        for r in &recs {
            r.encode(&mut w);
        }
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        crate::golden::check(&golden.join("redo_records.hex"), &w.buf);
        crate::golden::check(&golden.join("redo_group.hex"), &encode_group(1, &recs));
    }

    #[test]
    fn groups_round_trip_and_a_torn_tail_is_cut() {
        let recs = sample();
        let bytes = log_bytes(&[&recs[..2], &recs[2..]]);
        let (got, valid, next) = scan(&bytes);
        assert_eq!(got, recs);
        assert_eq!((valid, next), (bytes.len(), 3));
        // Tear the second group anywhere: only the first survives, whole.
        let first_len = log_bytes(&[&recs[..2]]).len();
        for cut in [first_len + 1, first_len + 40, first_len + 70] {
            let (got, valid, _) = scan(&bytes[..cut]);
            assert_eq!(got, recs[..2].to_vec(), "cut at {cut}");
            assert_eq!(valid, first_len);
        }
        let mut flipped = bytes.clone();
        flipped[first_len + 40] ^= 1;
        assert_eq!(scan(&flipped).0, recs[..2].to_vec());
        // A stale group (wrong seq) is not accepted.
        let stale = log_bytes(&[&recs[..2]]);
        let mut twice = stale.clone();
        twice.extend_from_slice(&stale);
        assert_eq!(scan(&twice).0.len(), 2);
    }
}
