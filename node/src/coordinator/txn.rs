//! The coordinator's two-phase commit (ARCHITECTURE D70): one transaction writes batches to
//! chunks — rows added (`append!`, `tableInsert`) or a chunk's rows replaced (`update`,
//! `delete`) — on every replica of each, all or nothing.
//!
//! With `atomic='CHUNK'` (D76) an append is one transaction per chunk instead: chunks another
//! transaction holds are tried again, the others written, for up to `ATOMIC_CHUNK_RETRY_MS`.
//!
//! Invariants:
//! - Nothing is answered as written before the leader recorded the commit, and once it is
//!   recorded the write is never reported as failed.
//! - A rewrite names the version its new rows were computed from; a replica at another
//!   version refuses to prepare, so a commit between the read and the rewrite is never lost.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::rc::Rc;

use lang::catalog::Partition;
use lang::eval::{EvalError, Table};
use storage::column::Column;
use storage::Schema;

use super::steps::{reached, Step};
use super::{ClusterCatalog, Target, PREPARE_BYTES_MAX};
use crate::dfs_proto::*;
use crate::rpc::encode_payload;

/// With `atomic='CHUNK'`, a chunk held by other transactions is tried again this long.
const ATOMIC_CHUNK_RETRY_MS: u64 = 120_000;
const ATOMIC_CHUNK_PAUSE_MS: u64 = 50;

/// Why a transaction did not commit.
struct TxnFailed {
    message: String,
    /// A participant refused because another transaction holds a chunk (`<ChunkInTransaction>`).
    conflict: bool,
}

/// What a transaction writes to one chunk.
#[derive(Clone)]
struct ChunkWrite {
    part: PartitionSnapshot,
    /// Each batch is one version of the chunk.
    batches: Vec<Vec<Column>>,
    /// `Some(v)`: the batches replace the chunk's rows, which must be at version `v`.
    replace: Option<u64>,
}

/// What one participant is sent: calls (each a list of batches), or batches handed over
/// in-process.
enum Work {
    Remote(Vec<Vec<RemotePart>>),
    Local(Vec<RemotePart>),
}

/// [`Work`] once the transaction has its id: each remote call's payload, or the local batches
/// (owned now that no remote call shares their columns).
enum Ready {
    Remote(Vec<Vec<u8>>),
    Local(Vec<LocalPart>),
}

/// One batch of a chunk: its columns shared by every replica it goes to, encoded straight
/// into each remote call's payload (`encode_prepare`).
struct RemotePart {
    chunk: u64,
    columns: Rc<Vec<Column>>,
    /// The columns' heap bytes: what the batch adds to a call (the encoding is about as big).
    bytes: usize,
    replace: Option<u64>,
}

impl ClusterCatalog {
    /// One append, as one two-phase commit: the rows routed to partitions (the leader places
    /// and records new ones), then written.
    pub(super) async fn append_txn(
        &self,
        db: &str,
        table: &str,
        data: &Table,
        tag: Option<Tag>,
    ) -> Result<usize, EvalError> {
        let (info, snap) = self.snapshot(db, table).await?;
        let (cols, parts) = lang::catalog::route(&info, data, self.new_values)?;
        let rows: usize = parts.values().map(|r| r.len()).sum();
        if rows == 0 {
            return Ok(0);
        }
        let known: BTreeMap<&str, &PartitionSnapshot> = snap
            .partitions
            .iter()
            .map(|p| (p.name.as_str(), p))
            .collect();
        let missing: Vec<String> = parts
            .keys()
            .filter(|k| !known.contains_key(k.as_str()))
            .cloned()
            .collect();
        let mut placed: BTreeMap<String, PartitionSnapshot> = parts
            .keys()
            .filter_map(|k| known.get(k.as_str()).map(|p| (k.clone(), (*p).clone())))
            .collect();
        if !missing.is_empty() {
            let req = Allocate {
                db: db.to_string(),
                table: table.to_string(),
                partitions: missing,
            };
            let got: Vec<PartitionSnapshot> = self.leader_call(method::ALLOCATE, &req).await?;
            self.remember(&got, &Rc::new(info.schema.clone()));
            placed.extend(got.into_iter().map(|p| (p.name.clone(), p)));
        }
        let mut writes = Vec::with_capacity(parts.len());
        for (name, rows) in &parts {
            let p = placed.get(name).ok_or_else(|| {
                EvalError::msg(format!("the controller did not place partition {name}"))
            })?;
            writes.push((
                rows.len(),
                ChunkWrite {
                    part: p.clone(),
                    batches: batches_of(&cols, rows),
                    replace: None,
                },
            ));
        }
        if snap.atomic_chunk {
            // One transaction per chunk, each tagged with its chunk (D100).
            return self.append_per_chunk(&info.schema, writes, tag).await;
        }
        let writes = writes.into_iter().map(|(_, w)| w).collect();
        let tag = tag.map(|t| (t, rows as u64));
        self.run_txn(&info.schema, writes, "The append was rolled back", tag)
            .await
            .map_err(|f| EvalError::msg(f.message))?;
        Ok(rows)
    }

    /// `atomic='CHUNK'`: each chunk's rows in a transaction of their own; a chunk another
    /// transaction holds is tried again (the others are written meanwhile) until
    /// [`ATOMIC_CHUNK_RETRY_MS`]. Answers the rows written, or which partitions failed. A
    /// tagged write tags each chunk's commit with its chunk ([`WRITE_PER_CHUNK`]), and first
    /// asks the leader which chunks the request committed already (a resend after a
    /// failover): those count as written and are not written again.
    async fn append_per_chunk(
        &self,
        schema: &Schema,
        writes: Vec<(usize, ChunkWrite)>,
        tag: Option<Tag>,
    ) -> Result<usize, EvalError> {
        let deadline = rt::time::now() + std::time::Duration::from_millis(ATOMIC_CHUNK_RETRY_MS);
        let mut pending = writes;
        let mut written = 0;
        if let Some(t) = &tag {
            let chunks = pending.iter().map(|(_, w)| w.part.chunk).collect();
            let done: BTreeMap<u64, u64> =
                match self.read(DfsRead::WrittenChunks(t.clone(), chunks)).await? {
                    DfsReadReply::WrittenChunks(d) => d.into_iter().collect(),
                    _ => return Err(EvalError::msg("a bad controller reply")),
                };
            pending.retain(|(_, w)| match done.get(&w.part.chunk) {
                Some(rows) => {
                    written += *rows as usize;
                    false
                }
                None => true,
            });
        }
        let chunk_tag = |rows: usize| {
            tag.as_ref()
                .map(|(c, r, w)| ((c.clone(), *r, *w | WRITE_PER_CHUNK), rows as u64))
        };
        let mut failed: Vec<String> = Vec::new();
        while !pending.is_empty() {
            let mut locked = Vec::new();
            for (rows, w) in pending {
                let name = w.part.name.clone();
                match self
                    .run_txn(
                        schema,
                        vec![w.clone()],
                        "The append was rolled back",
                        chunk_tag(rows),
                    )
                    .await
                {
                    Ok(()) => written += rows,
                    Err(f) if f.conflict && rt::time::now() < deadline => locked.push((rows, w)),
                    Err(f) => failed.push(format!("{name}: {}", f.message)),
                }
            }
            if !locked.is_empty() {
                rt::time::sleep(std::time::Duration::from_millis(ATOMIC_CHUNK_PAUSE_MS)).await;
            }
            pending = locked;
        }
        if failed.is_empty() {
            return Ok(written);
        }
        Err(EvalError::msg(format!(
            "{written} rows were written (atomic='CHUNK'); these partitions were not: {}",
            failed.join("; ")
        )))
    }

    /// Replaces the rows of each partition in `rewrites` (computed from the partition at its
    /// snapshot's version) as one transaction, tagged like an append (its rows recorded as 0).
    pub(super) async fn rewrite_txn(
        &self,
        db: &str,
        table: &str,
        rewrites: Vec<(Partition, Vec<Column>)>,
        tag: Option<Tag>,
    ) -> Result<(), EvalError> {
        let (info, snap) = self.snapshot(db, table).await?;
        let by_chunk: BTreeMap<u64, &PartitionSnapshot> =
            snap.partitions.iter().map(|p| (p.chunk, p)).collect();
        let mut writes = Vec::with_capacity(rewrites.len());
        for (part, columns) in rewrites {
            let p = by_chunk.get(&part.chunk).ok_or_else(|| {
                EvalError::msg(format!(
                    "<ChunkInTransaction>partition {} was dropped meanwhile",
                    part.name
                ))
            })?;
            let n = columns.first().map(Column::len).unwrap_or(0);
            let cols: Vec<Cow<'_, Column>> = columns.iter().map(Cow::Borrowed).collect();
            let all: Vec<usize> = (0..n).collect();
            let batches = if n == 0 {
                vec![columns.clone()]
            } else {
                batches_of(&cols, &all)
            };
            writes.push(ChunkWrite {
                part: (*p).clone(),
                batches,
                replace: Some(part.version),
            });
        }
        let tag = tag.map(|t| (t, 0));
        self.run_txn(&info.schema, writes, "The update was rolled back", tag)
            .await
            .map_err(|f| EvalError::msg(f.message))
    }

    /// The two-phase commit of `writes` (the module header's steps).
    async fn run_txn(
        &self,
        schema: &Schema,
        writes: Vec<ChunkWrite>,
        rolled_back: &str,
        tag: Option<(Tag, u64)>,
    ) -> Result<(), TxnFailed> {
        // Each chunk's batches, in calls of at most PREPARE_BYTES_MAX each for the remote
        // replicas (encoded as each is sent), handed over as they are to this node's own data
        // node.
        let schema_bytes = encode_schema(schema);
        let mut per_node: BTreeMap<String, (Replica, Work)> = BTreeMap::new();
        let mut chunks = Vec::with_capacity(writes.len());
        let mut replaced = Vec::new();
        // Chunk → the replicas it is sent to.
        let mut sent: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for w in writes {
            let p = &w.part;
            chunks.push((p.chunk, w.batches.len() as u64));
            if w.replace.is_some() {
                replaced.push(p.chunk);
            }
            // A replica whose node is down is left out (it becomes stale at the commit, D99),
            // unless none is up: the leader's view may lag, so then every one is tried.
            let up: Vec<&Replica> = p.replicas.iter().filter(|r| r.live).collect();
            let to: Vec<&Replica> = if up.is_empty() {
                p.replicas.iter().collect()
            } else {
                up
            };
            sent.insert(p.chunk, to.iter().map(|r| r.alias.clone()).collect());
            for (i, columns) in w.batches.into_iter().enumerate() {
                // Only a rewrite's first batch replaces; the rest add to it.
                let replace = if i == 0 { w.replace } else { None };
                let bytes: usize = columns.iter().map(Column::heap_bytes).sum();
                let shared = Rc::new(columns);
                for r in to.iter().copied() {
                    let local = self.is_local(r);
                    let (_, work) = per_node.entry(r.alias.clone()).or_insert_with(|| {
                        (
                            r.clone(),
                            if local {
                                Work::Local(Vec::new())
                            } else {
                                Work::Remote(vec![Vec::new()])
                            },
                        )
                    });
                    match work {
                        Work::Local(parts) => parts.push(RemotePart {
                            chunk: p.chunk,
                            columns: shared.clone(),
                            bytes,
                            replace,
                        }),
                        Work::Remote(calls) => {
                            let size: usize = calls
                                .last()
                                .map(|c| c.iter().map(|p| p.bytes).sum())
                                .unwrap_or(0);
                            if size > 0 && size + bytes > PREPARE_BYTES_MAX {
                                calls.push(Vec::new());
                            }
                            calls
                                .last_mut()
                                .expect("one call at least")
                                .push(RemotePart {
                                    chunk: p.chunk,
                                    columns: shared.clone(),
                                    bytes,
                                    replace,
                                });
                        }
                    }
                }
            }
        }
        let participants: Vec<String> = per_node.keys().cloned().collect();
        let tid: u64 = self
            .leader_call(
                method::TXN_BEGIN,
                &TxnBegin {
                    participants,
                    coordinator: self.me.clone(),
                },
            )
            .await
            .map_err(|e| TxnFailed {
                message: e.message,
                conflict: false,
            })?;
        let me = self.me.as_ref().map(|m| m.alias.as_str()).unwrap_or("");
        reached(me, Step::Begun, tid).await;
        // The remote calls are encoded first: then no call shares the local batches' columns,
        // which go to this node's data node without a copy.
        let mut ready: Vec<(String, Replica, Ready)> = Vec::with_capacity(per_node.len());
        let mut local = None;
        for (alias, (replica, work)) in per_node {
            match work {
                Work::Remote(calls) => {
                    let payloads = calls
                        .into_iter()
                        .enumerate()
                        .map(|(seq, parts)| {
                            let send: Vec<PartToSend<'_>> = parts
                                .iter()
                                .map(|p| PartToSend {
                                    chunk: p.chunk,
                                    schema: &schema_bytes,
                                    columns: &p.columns,
                                    replace: p.replace,
                                })
                                .collect();
                            encode_prepare(tid, seq as u32, &send)
                        })
                        .collect();
                    ready.push((alias, replica, Ready::Remote(payloads)));
                }
                Work::Local(parts) => local = Some((alias, replica, parts)),
            }
        }
        if let Some((alias, replica, parts)) = local {
            let parts = parts
                .into_iter()
                .map(|p| LocalPart {
                    chunk: p.chunk,
                    schema: schema.clone(),
                    batch: storage::Batch {
                        columns: Rc::unwrap_or_clone(p.columns),
                    },
                    replace: p.replace,
                })
                .collect();
            ready.push((alias, replica, Ready::Local(parts)));
        }
        // Phase one: every participant prepares, all at once.
        let mut votes = Vec::new();
        let mut replicas = Vec::with_capacity(ready.len());
        for (alias, replica, work) in ready {
            let target = self.node(&replica);
            replicas.push(replica);
            votes.push(rt::task::spawn_local(async move {
                let vote = prepare_on(target, tid, work).await;
                (alias, vote)
            }));
        }
        let mut refusal = None;
        let mut unavailable: BTreeMap<String, String> = BTreeMap::new();
        for (i, v) in votes.into_iter().enumerate() {
            match v.await {
                Ok((_, Vote::Yes)) => {}
                Ok((alias, Vote::Unavailable(why))) => {
                    unavailable.insert(alias, why);
                }
                Ok((alias, Vote::No(why, conflict))) => {
                    refusal.get_or_insert((format!("{alias}: {why}"), conflict));
                }
                Err(_) => {
                    refusal.get_or_insert(("the prepare task was cancelled".into(), false));
                }
            }
            if i == 0 {
                reached(me, Step::OnePrepared, tid).await;
            }
        }
        // Each chunk's writers: the replicas that prepared it. A chunk with none cannot commit.
        let writers: Vec<(u64, Vec<String>)> = sent
            .into_iter()
            .map(|(c, to)| {
                (
                    c,
                    to.into_iter()
                        .filter(|a| !unavailable.contains_key(a))
                        .collect(),
                )
            })
            .collect();
        if refusal.is_none() {
            if let Some((c, _)) = writers.iter().find(|(_, w)| w.is_empty()) {
                let why: Vec<String> = unavailable
                    .iter()
                    .map(|(a, e)| format!("{a}: {e}"))
                    .collect();
                refusal = Some((
                    format!(
                        "<DataNodeNotAvail>no replica of chunk {c} could be written ({})",
                        why.join("; ")
                    ),
                    false,
                ));
            } else {
                for (alias, why) in &unavailable {
                    self.log.warn(
                        "txn_replica_unavailable",
                        &format!(
                            "transaction {tid} commits without {alias}, which becomes stale: {why}"
                        ),
                        &[],
                    );
                }
            }
        }
        let commit = refusal.is_none();
        let decide = TxnDecide {
            id: tid,
            chunks,
            commit,
            writers,
            replaced,
            tag,
        };
        let committed: bool = match self.leader_call(method::TXN_DECIDE, &decide).await {
            Ok(c) => c,
            Err(e) if commit => {
                // The decision's fate is unknown: participants will learn it from the leader.
                return Err(TxnFailed {
                    message: format!(
                        "the outcome of transaction {tid} is not known yet ({e}); its participants will learn it from the leader"
                    ),
                    conflict: false,
                });
            }
            Err(_) => false,
        };
        reached(me, Step::Decided, tid).await;
        // Phase two: tell every participant; one that misses it asks the leader.
        let outcome = if committed {
            method::CHUNK_COMMIT
        } else {
            method::CHUNK_ABORT
        };
        let mut told = Vec::new();
        let mut undelivered = false;
        for replica in &replicas {
            let target = self.node(replica);
            let alias = replica.alias.clone();
            told.push(rt::task::spawn_local(async move {
                match target {
                    Some(c) => c.call(outcome, encode_payload(&tid)).await.err(),
                    None => Some(crate::rpc::RpcError::Connect {
                        peer: alias,
                        reason: "the address does not resolve".into(),
                    }),
                }
            }));
        }
        for (i, t) in told.into_iter().enumerate() {
            let why = match t.await {
                Ok(None) => None,
                Ok(Some(e)) => Some(e.to_string()),
                Err(_) => Some("the task telling it was cancelled".to_string()),
            };
            if let Some(e) = why {
                // That participant will ask the leader, which must keep the record for it.
                undelivered = true;
                self.log.warn(
                    "txn_outcome_undelivered",
                    &format!("transaction {tid}: {e}"),
                    &[],
                );
            }
            if i == 0 {
                reached(me, Step::OneTold, tid).await;
            }
        }
        if !undelivered {
            // Nobody will ask about it again: the leader may forget it (best effort).
            let leader = self.leader.clone();
            drop(rt::task::spawn_local(async move {
                let _ = leader.call(method::TXN_DONE, encode_payload(&tid)).await;
            }));
        }
        reached(me, Step::Answering, tid).await;
        if committed {
            return Ok(());
        }
        Err(match refusal {
            Some((e, conflict)) => TxnFailed {
                message: format!("{rolled_back}: {e}"),
                conflict,
            },
            None => TxnFailed {
                message: format!("{rolled_back}: transaction {tid} was aborted"),
                conflict: false,
            },
        })
    }
}

/// A prepare call waits this long for a remote participant's answer: one that has not answered
/// by then is left out of the commit (its replicas become stale) when every chunk has another
/// writer — no write waits for ever on a node that hangs.
const PREPARE_WAIT_MS: u64 = 20_000;

/// A participant's answer to phase one.
enum Vote {
    Yes,
    /// It refused (with whether another transaction holds a chunk): the transaction aborts.
    No(String, bool),
    /// It could not be reached or did not answer in time: it may be left out.
    Unavailable(String),
}

/// Phase one on one participant.
async fn prepare_on(target: Option<Target>, tid: u64, work: Ready) -> Vote {
    let Some(target) = target else {
        return Vote::Unavailable("the address does not resolve".into());
    };
    let vote = |r: Result<(), crate::rpc::RpcError>| match r {
        Ok(()) => Vote::Yes,
        // A damaged copy cannot take the write, but the others can: it becomes stale (D101).
        Err(crate::rpc::RpcError::Remote(e))
            if e.code == crate::error::ErrorCode::ReplicaDamaged =>
        {
            Vote::Unavailable(e.to_string())
        }
        Err(crate::rpc::RpcError::Remote(e)) => {
            let conflict = e.code == crate::error::ErrorCode::ChunkInTransaction;
            Vote::No(e.to_string(), conflict)
        }
        Err(e) => Vote::Unavailable(e.to_string()),
    };
    match (work, &target) {
        (Ready::Local(parts), Target::Local(l)) => vote(
            l.prepare(tid, parts)
                .await
                .map_err(crate::rpc::RpcError::Remote),
        ),
        (Ready::Local(_), Target::Remote(_)) => Vote::No("not this node's data node".into(), false),
        (Ready::Remote(calls), _) => {
            // All at once: the data node logs them in `seq` order, and its redo log syncs them
            // together.
            let sent = calls
                .into_iter()
                .map(|payload| target.call(method::CHUNK_PREPARE, payload));
            let all = futures_util::future::join_all(sent);
            match rt::time::timeout(std::time::Duration::from_millis(PREPARE_WAIT_MS), all).await {
                Err(_) => Vote::Unavailable(format!("no answer within {PREPARE_WAIT_MS} ms")),
                Ok(answers) => answers
                    .into_iter()
                    .map(|r| r.map(|_| ()))
                    .map(vote)
                    .find(|v| !matches!(v, Vote::Yes))
                    .unwrap_or(Vote::Yes),
            }
        }
    }
}

/// `rows` of `cols` as batches: one, or as many as keep each (its heap bytes estimating the
/// encoding) under [`PREPARE_BYTES_MAX`].
fn batches_of(cols: &[Cow<'_, Column>], rows: &[usize]) -> Vec<Vec<Column>> {
    let total = cols.first().map(|c| c.len()).unwrap_or(0);
    let bytes: usize =
        cols.iter().map(|c| c.heap_bytes()).sum::<usize>() * rows.len() / total.max(1);
    let gather = |part: &[usize]| -> Vec<Column> {
        let first = part.first().copied().unwrap_or(0);
        if part.iter().enumerate().all(|(i, r)| first + i == *r) {
            // A run of consecutive rows (one partition takes all or a stretch of the append):
            // a slice, not a gather.
            cols.iter()
                .map(|c| c.as_ref().slice(first, first + part.len()))
                .collect()
        } else {
            cols.iter()
                .map(|c| lang::eval::gather_rows(c, part))
                .collect()
        }
    };
    if bytes <= PREPARE_BYTES_MAX || rows.len() < 2 {
        return vec![gather(rows)];
    }
    let pieces = bytes.div_ceil(PREPARE_BYTES_MAX / 2);
    rows.chunks(rows.len().div_ceil(pieces))
        .map(gather)
        .collect()
}
