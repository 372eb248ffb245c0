//! The controllers' durable Raft log against a reference model (a Vec of entries, the purged
//! id and the vote): random appends, truncations, purges (with compaction) and reopenings must
//! agree with the model after every step; garbage after the last record (a torn append) is
//! cut off on reopen and never resurfaces; a flipped byte inside the log ends the valid prefix
//! there. Runs on glommio (`cargo test`) and on madsim (`scripts/test-sim.sh`).

use std::path::{Path, PathBuf};

use node::controller::meta::Command;
use node::controller::raft::log::{decode_records, LogStore};
use node::controller::raft::{Entry, LogId, TypeConfig, Vote};
use openraft::entry::RaftEntry;
use openraft::impls::leader_id_adv::LeaderId;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::RaftLogReader;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

#[derive(Debug, Clone)]
enum Op {
    /// Append `n` entries in `term` (terms never go down in a real log).
    Append {
        n: usize,
        value_bytes: usize,
    },
    /// Keep entries up to `keep` (fraction of the current length, in percent).
    Truncate {
        keep_pct: u8,
    },
    /// Purge up to this fraction of the entries.
    Purge {
        pct: u8,
    },
    NewTerm,
    Vote,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..40, 0usize..3000).prop_map(|(n, value_bytes)| Op::Append { n, value_bytes }),
        1 => (0u8..=100).prop_map(|keep_pct| Op::Truncate { keep_pct }),
        1 => (0u8..=100).prop_map(|pct| Op::Purge { pct }),
        1 => Just(Op::NewTerm),
        1 => Just(Op::Vote),
        2 => Just(Op::Reopen),
    ]
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(LeaderId { term, node_id: 1 }, index)
}

fn entry(term: u64, index: u64, value_bytes: usize) -> Entry {
    Entry::new_normal(
        log_id(term, index),
        Command::SetConfig {
            controller: false,
            key: format!("k{index}"),
            value: "v".repeat(value_bytes),
        },
    )
}

#[derive(Default)]
struct Model {
    entries: Vec<Entry>,
    purged: Option<LogId>,
    vote: Option<Vote>,
    term: u64,
}

impl Model {
    fn next_index(&self) -> u64 {
        self.entries
            .last()
            .map(|e| e.log_id.index + 1)
            .or(self.purged.map(|p| p.index + 1))
            .unwrap_or(0)
    }
}

async fn check(store: &mut LogStore, m: &Model, step: &str) {
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, m.purged, "{step}: purged");
    let last = m.entries.last().map(|e| e.log_id).or(m.purged);
    assert_eq!(state.last_log_id, last, "{step}: last log id");
    let got = store.try_get_log_entries(..).await.unwrap();
    assert_eq!(got, m.entries, "{step}: entries");
    assert_eq!(store.read_vote().await.unwrap(), m.vote, "{step}: vote");
    if let (Some(first), Some(last)) = (m.entries.first(), m.entries.last()) {
        let mid = (first.log_id.index + last.log_id.index) / 2;
        let got = store
            .try_get_log_entries(mid..=last.log_id.index)
            .await
            .unwrap();
        let want: Vec<Entry> = m
            .entries
            .iter()
            .filter(|e| e.log_id.index >= mid)
            .cloned()
            .collect();
        assert_eq!(got, want, "{step}: a range read");
    }
}

async fn run_case(dir: &Path, ops: &[Op]) {
    let _ = rt::disk::remove(dir.join("log")).await;
    let _ = rt::disk::remove(dir.join("state")).await;
    let mut store = LogStore::open(dir, true).await.unwrap();
    let mut m = Model {
        term: 1,
        ..Model::default()
    };
    for (i, op) in ops.iter().enumerate() {
        let step = format!("step {i} {op:?}");
        match op {
            Op::Append { n, value_bytes } => {
                let start = m.next_index();
                let batch: Vec<Entry> = (0..*n as u64)
                    .map(|k| entry(m.term, start + k, *value_bytes))
                    .collect();
                store
                    .append(batch.clone(), IOFlushed::<TypeConfig>::noop())
                    .await
                    .unwrap();
                m.entries.extend(batch);
            }
            Op::Truncate { keep_pct } => {
                let keep = m.entries.len() * *keep_pct as usize / 100;
                let last = if keep == 0 {
                    m.purged
                } else {
                    Some(m.entries[keep - 1].log_id)
                };
                store.truncate_after(last).await.unwrap();
                m.entries.truncate(keep);
            }
            Op::Purge { pct } => {
                let n = m.entries.len() * *pct as usize / 100;
                if n > 0 {
                    let upto = m.entries[n - 1].log_id;
                    store.purge(upto).await.unwrap();
                    m.entries.drain(..n);
                    m.purged = Some(upto);
                }
            }
            Op::NewTerm => m.term += 1,
            Op::Vote => {
                let v = Vote::new(m.term, 2);
                store.save_vote(&v).await.unwrap();
                m.vote = Some(v);
            }
            Op::Reopen => {
                // openraft considers entries durable only after their callbacks fire, i.e.
                // after a flush; a crash before it may lose them (`a_crash_before_a_flush`).
                store.flush().await.unwrap();
                drop(store);
                store = LogStore::open(dir, true).await.unwrap();
            }
        }
        check(&mut store, &m, &step).await;
    }
    store.flush().await.unwrap();
    drop(store);
    let mut store = LogStore::open(dir, true).await.unwrap();
    check(&mut store, &m, "final reopen").await;
}

fn scratch(name: &str) -> PathBuf {
    #[cfg(not(madsim))]
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("raft-log-{name}"));
    #[cfg(madsim)]
    let p = PathBuf::from(format!("/raft-log-{name}"));
    p
}

fn run<F, Fut>(name: &str, body: F)
where
    F: Fn(PathBuf) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let dir = scratch(name);
    #[cfg(not(madsim))]
    let _ = std::fs::remove_dir_all(&dir);
    rt::Runtime::new(name)
        .run(move |_s: rt::shard::Shard<()>| body(dir.clone()))
        .unwrap();
}

#[test]
fn the_log_agrees_with_a_model_through_appends_truncations_purges_and_reopens() {
    let cases: usize = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::default();
    let strategy = proptest::collection::vec(op(), 1..40);
    let all: Vec<Vec<Op>> = (0..cases)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    run("model", move |dir| {
        let all = all.clone();
        async move {
            rt::disk::create_dir_all(&dir).await.unwrap();
            for ops in &all {
                run_case(&dir, ops).await;
            }
        }
    });
}

#[test]
fn a_torn_tail_is_cut_off_and_never_resurfaces() {
    run("torn", |dir| async move {
        let mut store = LogStore::open(&dir, true).await.unwrap();
        let batch: Vec<Entry> = (0..10).map(|i| entry(1, i, 100)).collect();
        store
            .append(batch.clone(), IOFlushed::noop())
            .await
            .unwrap();
        store.flush().await.unwrap();
        drop(store);
        // A crash mid-append: half a record, then stale-looking blocks far past the end.
        let f = rt::disk::File::open(dir.join("log"), rt::disk::OpenMode::Existing)
            .await
            .unwrap();
        let size = f.size().await.unwrap();
        let good = f.read_at(0, size as usize).await.unwrap();
        let (recs, end) = decode_records(&good);
        assert_eq!(recs.len(), 10);
        let mut torn = good[..end].to_vec();
        let mut extra = Vec::new();
        node::controller::raft::log::encode_record(&entry(1, 10, 100), &mut extra);
        torn.extend_from_slice(&extra[..extra.len() / 2]);
        torn.resize(rt::disk::align_up(torn.len()), 0);
        f.write_at(0, &torn).await.unwrap();
        // A whole valid record for index 10 two blocks further on must not be picked up.
        let mut stale = extra.clone();
        stale.resize(rt::disk::align_up(stale.len()), 0);
        f.write_at(torn.len() as u64 + 8192, &stale).await.unwrap();
        f.sync().await.unwrap();
        f.close().await.unwrap();

        let mut store = LogStore::open(&dir, true).await.unwrap();
        assert_eq!(store.try_get_log_entries(..).await.unwrap(), batch);
        let more = vec![entry(2, 10, 5)];
        store.append(more.clone(), IOFlushed::noop()).await.unwrap();
        store.flush().await.unwrap();
        drop(store);
        let mut store = LogStore::open(&dir, true).await.unwrap();
        let want: Vec<Entry> = batch.into_iter().chain(more).collect();
        assert_eq!(store.try_get_log_entries(..).await.unwrap(), want);
    });
}

#[test]
fn appends_complete_in_order_after_one_shared_flush() {
    run("group", |dir| async move {
        let mut store = LogStore::open(&dir, true).await.unwrap();
        let mut rxs = Vec::new();
        for i in 0..20 {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let cb = IOFlushed::<TypeConfig>::signal(rt::raft::OneshotTx::from(tx));
            store.append(vec![entry(1, i, 10)], cb).await.unwrap();
            rxs.push(rx);
        }
        for rx in rxs {
            rx.await.unwrap().unwrap();
        }
        // Everything acknowledged is on disk: a reopen (no flush) finds all of it.
        drop(store);
        let mut store = LogStore::open(&dir, true).await.unwrap();
        assert_eq!(store.try_get_log_entries(..).await.unwrap().len(), 20);
    });
}

#[test]
fn a_flipped_byte_ends_the_valid_prefix_at_that_record() {
    let mut bytes = Vec::new();
    for i in 0..5 {
        node::controller::raft::log::encode_record(&entry(1, i, 50), &mut bytes);
    }
    let (all, end) = decode_records(&bytes);
    assert_eq!((all.len(), end), (5, bytes.len()));
    // Corrupt the third record's payload.
    let third = all[2].0 as usize;
    bytes[third + 20] ^= 0x40;
    let (prefix, end) = decode_records(&bytes);
    assert_eq!(prefix.len(), 2);
    assert_eq!(end, third);
    // A gap in the indexes also ends it.
    let mut gap = Vec::new();
    node::controller::raft::log::encode_record(&entry(1, 0, 1), &mut gap);
    node::controller::raft::log::encode_record(&entry(1, 2, 1), &mut gap);
    assert_eq!(decode_records(&gap).0.len(), 1);
}

proptest! {
    /// Whatever is on disk, reading it back never panics and never allocates without bound:
    /// random bytes, and checksummed garbage that gets past the crc.
    #[test]
    fn garbage_on_disk_is_an_error_or_a_prefix_never_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        len in 0u32..64,
    ) {
        let _ = decode_records(&bytes);
        let path = std::path::Path::new("state");
        let _ = node::controller::raft::log::decode_state(path, &bytes);
        let _ = node::controller::raft::sm::decode_checkpoint("checkpoint", &bytes);
        // The same bytes framed with a valid length and crc.
        let payload = &bytes[..bytes.len().min(len as usize * 64)];
        let mut rec = Vec::new();
        rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        rec.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        rec.extend_from_slice(payload);
        let _ = decode_records(&rec);
        let mut st = b"PRST".to_vec();
        st.extend_from_slice(&rec);
        let _ = node::controller::raft::log::decode_state(path, &st);
        let mut cp = b"PSNP".to_vec();
        cp.extend_from_slice(&1u32.to_le_bytes());
        cp.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        cp.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        cp.extend_from_slice(payload);
        let _ = node::controller::raft::sm::decode_checkpoint("checkpoint", &cp);
    }
}

#[test]
fn checkpoints_round_trip_and_broken_ones_are_refused() {
    use node::controller::meta::Meta;
    use node::controller::raft::sm::{decode_checkpoint, encode_checkpoint, Checkpoint};
    let mut state = Meta::new();
    state
        .apply(&Command::SetConfig {
            controller: false,
            key: "maxMemSize".into(),
            value: "16".into(),
        })
        .unwrap();
    let c = Checkpoint {
        meta: Default::default(),
        state: state.clone(),
    };
    let mut bytes = encode_checkpoint(&c);
    assert_eq!(decode_checkpoint("c", &bytes).unwrap().state, state);
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert!(decode_checkpoint("c", &bytes)
        .unwrap_err()
        .to_string()
        .contains("checksum"));
}
