//! The Raft state machine: [`Meta`] driven by committed entries, with snapshots kept as
//! `DFSMasterMetaCheckpoint.0` in the controller's `dfsMetaDir` (where the tutorial's backup
//! step looks for the metadata checkpoint).
//!
//! Snapshot file format (little-endian), replaced atomically:
//!
//! ```text
//! [4] "PSNP"  u32 format version (1)  u64 payload length  u32 crc32(payload)  payload
//! payload = bincode(Checkpoint { meta: SnapshotMeta, state: Meta })
//! ```
//!
//! Invariants:
//! - `last_applied` only grows, and equals the log id of the last entry applied (or of the
//!   installed snapshot); entries are applied in log order, each exactly once per state.
//! - A command refused by [`Meta::apply`] leaves the state unchanged on every controller (it
//!   is deterministic), and the refusal is the client's reply.
//! - Building a snapshot clones the state and yields before encoding, so replication and
//!   heartbeats keep running while it is written (asynchronous I/O).

use std::cell::RefCell;
use std::io;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use futures_util::{Stream, TryStreamExt};
use openraft::storage::EntryResponder;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder};
use rt::disk;
use serde::{Deserialize, Serialize};

use super::{LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};
use crate::controller::meta::Meta;

const SNAPSHOT_MAGIC: [u8; 4] = *b"PSNP";
/// Format 2 added `Meta::atomic_chunk`, format 3 stale replicas (`Chunk::stale`) and client
/// requests, format 4 a chunk in each request's write key; formats 1 to 3 are still read.
const SNAPSHOT_VERSION: u32 = 4;
const SNAPSHOT_HEADER_BYTES: usize = 20;
/// Release builds check the metadata's invariants (`Meta::check`, linear in its chunks) after
/// every command while it holds at most this many chunks, and at every snapshot always; debug
/// builds check after every command. `raft/meta_check` in `bench/benches/raft.rs` measured the
/// check at 7.4 µs for 1,000 chunks and 75 µs for 10,000, so up to this bound it costs at most
/// about 30 µs, 4% of a one-client commit (ARCHITECTURE D66).
pub const CHECK_EACH_APPLY_CHUNKS_MAX: usize = 4_096;
/// The checkpoint's file name, as DolphinDB names its controller checkpoint.
pub const CHECKPOINT_FILE: &str = "DFSMasterMetaCheckpoint.0";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub meta: SnapshotMeta,
    pub state: Meta,
}

/// A checkpoint of format 1.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointV1 {
    meta: SnapshotMeta,
    state: crate::controller::meta_compat::MetaV1,
}

/// A checkpoint of format 2.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointV2 {
    meta: SnapshotMeta,
    state: crate::controller::meta_compat::MetaV2,
}

/// A checkpoint of format 3.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointV3 {
    meta: SnapshotMeta,
    state: crate::controller::meta_compat::MetaV3,
}

/// Encodes a checkpoint file.
pub fn encode_checkpoint(c: &Checkpoint) -> Vec<u8> {
    let payload = bincode::serialize(c).expect("checkpoints encode");
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER_BYTES + payload.len());
    out.extend_from_slice(&SNAPSHOT_MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Decodes a checkpoint file (trailing padding ignored); `what` names it in errors.
pub fn decode_checkpoint(what: &str, bytes: &[u8]) -> io::Result<Checkpoint> {
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {why}"));
    if bytes.len() < SNAPSHOT_HEADER_BYTES || bytes[..4] != SNAPSHOT_MAGIC {
        return Err(bad("not a Porpoise metadata checkpoint".into()));
    }
    let version = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if !(1..=SNAPSHOT_VERSION).contains(&version) {
        return Err(super::log::unsupported_format(
            Path::new(what),
            "metadata checkpoint",
            version,
            SNAPSHOT_VERSION,
        ));
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let end = (SNAPSHOT_HEADER_BYTES as u64)
        .checked_add(len)
        .filter(|e| *e <= bytes.len() as u64)
        .ok_or_else(|| bad("truncated".into()))?;
    let payload = &bytes[SNAPSHOT_HEADER_BYTES..end as usize];
    if crc32fast::hash(payload) != crc {
        return Err(bad("checksum mismatch".into()));
    }
    let undecodable = |e: String| bad(format!("undecodable: {e}"));
    let c: Checkpoint = match version {
        1 => {
            let c: CheckpointV1 = super::net::decode(payload).map_err(undecodable)?;
            Checkpoint {
                meta: c.meta,
                state: c.state.into(),
            }
        }
        2 => {
            let c: CheckpointV2 = super::net::decode(payload).map_err(undecodable)?;
            Checkpoint {
                meta: c.meta,
                state: c.state.into(),
            }
        }
        3 => {
            let c: CheckpointV3 = super::net::decode(payload).map_err(undecodable)?;
            Checkpoint {
                meta: c.meta,
                state: c.state.into(),
            }
        }
        _ => super::net::decode(payload).map_err(undecodable)?,
    };
    c.state
        .check()
        .map_err(|e| bad(format!("metadata invariant broken: {e}")))?;
    Ok(c)
}

struct Inner {
    meta: Meta,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    /// The encoded current snapshot, if any (what followers are sent).
    snapshot: Option<(SnapshotMeta, Rc<Vec<u8>>)>,
    snapshots_built: u64,
}

/// The state machine; clones share it, and [`StateMachine::read`] gives the API its view.
#[derive(Clone)]
pub struct StateMachine {
    inner: Rc<RefCell<Inner>>,
    dir: PathBuf,
}

impl StateMachine {
    /// Opens the state machine, loading the checkpoint in `dir` if there is one.
    pub async fn open(dir: &Path) -> io::Result<StateMachine> {
        disk::create_dir_all(dir).await?;
        let path = dir.join(CHECKPOINT_FILE);
        let mut inner = Inner {
            meta: Meta::new(),
            last_applied: None,
            membership: StoredMembership::default(),
            snapshot: None,
            snapshots_built: 0,
        };
        if disk::exists(&path).await? {
            let bytes = disk::read_file(&path).await?;
            let c = decode_checkpoint(&path.display().to_string(), &bytes)?;
            inner.meta = c.state;
            inner.last_applied = c.meta.last_log_id;
            inner.membership = c.meta.last_membership.clone();
            inner.snapshot = Some((c.meta, Rc::new(bytes)));
        }
        Ok(StateMachine {
            inner: Rc::new(RefCell::new(inner)),
            dir: dir.to_path_buf(),
        })
    }

    /// Reads the metadata as applied on this controller.
    pub fn read<T>(&self, f: impl FnOnce(&Meta) -> T) -> T {
        f(&self.inner.borrow().meta)
    }

    /// The last applied log id.
    pub fn last_applied(&self) -> Option<LogId> {
        self.inner.borrow().last_applied
    }

    /// Snapshots built by this controller since it started.
    pub fn snapshots_built(&self) -> u64 {
        self.inner.borrow().snapshots_built
    }

    async fn persist(&self, bytes: &[u8]) -> io::Result<()> {
        storage::meta::write_atomic(&self.dir.join(CHECKPOINT_FILE), bytes)
            .await
            .map_err(|e| io::Error::other(e.to_string()))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let (state, meta) = {
            let g = self.inner.borrow();
            let meta = SnapshotMeta {
                last_log_id: g.last_applied,
                last_membership: g.membership.clone(),
            };
            (g.meta.clone(), meta)
        };
        // Let replication and heartbeats run between the copy and the encoding.
        rt::task::yield_now().await;
        if let Err(e) = state.check() {
            panic!(
                "metadata invariant broken at snapshot {:?}: {e}",
                meta.last_log_id
            );
        }
        let bytes = encode_checkpoint(&Checkpoint {
            meta: meta.clone(),
            state,
        });
        self.persist(&bytes).await?;
        let mut g = self.inner.borrow_mut();
        g.snapshots_built += 1;
        // Keep the newest: an install may have landed while this one was written.
        if g.snapshot.as_ref().map(|(m, _)| m.last_log_id) <= Some(meta.last_log_id) {
            g.snapshot = Some((meta.clone(), Rc::new(bytes.clone())));
        }
        Ok(Snapshot {
            meta,
            snapshot: Cursor::new(bytes),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = Cursor<Vec<u8>>;
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let g = self.inner.borrow();
        Ok((g.last_applied, g.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let reply = {
                let mut g = self.inner.borrow_mut();
                assert!(
                    g.last_applied < Some(entry.log_id),
                    "entries are applied in order, once"
                );
                g.last_applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => Ok(crate::controller::meta::Applied::Done),
                    EntryPayload::Normal(ref cmd) => {
                        let r = g.meta.apply(cmd);
                        // Paired with the check on every checkpoint read: a broken invariant
                        // is a bug every controller hits at the same entry, and the group
                        // stops rather than build on it.
                        if cfg!(debug_assertions)
                            || g.meta.chunks.len() <= CHECK_EACH_APPLY_CHUNKS_MAX
                        {
                            if let Err(e) = g.meta.check() {
                                panic!("metadata invariant broken by entry {}: {e}", entry.log_id);
                            }
                        }
                        r
                    }
                    EntryPayload::Membership(ref m) => {
                        g.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                        Ok(crate::controller::meta::Applied::Done)
                    }
                }
            };
            if let Some(responder) = responder {
                responder.send(reply);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Self::SnapshotData,
    ) -> Result<(), io::Error> {
        let bytes = snapshot.into_inner();
        let c = decode_checkpoint("snapshot from the leader", &bytes)?;
        self.persist(&bytes).await?;
        let mut g = self.inner.borrow_mut();
        g.meta = c.state;
        g.last_applied = meta.last_log_id;
        g.membership = meta.last_membership.clone();
        g.snapshot = Some((meta.clone(), Rc::new(bytes)));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let g = self.inner.borrow();
        Ok(g.snapshot.as_ref().map(|(meta, bytes)| Snapshot {
            meta: meta.clone(),
            snapshot: Cursor::new(bytes.as_ref().clone()),
        }))
    }
}
