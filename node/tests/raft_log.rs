//! The controllers' durable Raft log against a reference model (a Vec of entries, the purged
//! id and the vote): random appends, truncations, purges (with compaction) and reopenings must
//! agree with the model after every step; garbage after the last record (a torn append) is
//! cut off on reopen and never resurfaces; a flipped byte anywhere before the torn tail is
//! refused with the file and the offset, never cut. Runs on glommio (`cargo test`) and on madsim (`scripts/test-sim.sh`).

use std::path::{Path, PathBuf};

use node::controller::meta::Command;
use node::controller::raft::log::{
    decode_records, decode_records_after, encode_log_header, encode_record, LogStore, LOG_FORMAT,
    LOG_HEADER_BYTES,
};
use node::controller::raft::{Entry, LogId, TypeConfig, Vote};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::vote::leader_id_std::CommittedLeaderId;
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
    LogId::new(CommittedLeaderId::new(term), index)
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

/// Reads the whole log file.
async fn log_bytes(dir: &Path) -> Vec<u8> {
    let f = rt::disk::File::open(dir.join("log"), rt::disk::OpenMode::Existing)
        .await
        .unwrap();
    let size = f.size().await.unwrap();
    let bytes = f.read_at(0, size as usize).await.unwrap();
    f.close().await.unwrap();
    bytes
}

/// Writes `bytes` over the log file from offset 0 (padded to whole blocks) and syncs.
async fn put_log_bytes(dir: &Path, mut bytes: Vec<u8>) {
    let f = rt::disk::File::open(dir.join("log"), rt::disk::OpenMode::Existing)
        .await
        .unwrap();
    bytes.resize(rt::disk::align_up(bytes.len()), 0);
    f.write_at(0, &bytes).await.unwrap();
    f.sync().await.unwrap();
    f.close().await.unwrap();
}

/// Appends `entries` as one flush round (one group commit).
async fn append_round(store: &mut LogStore, entries: Vec<Entry>) {
    store.append(entries, IOFlushed::noop()).await.unwrap();
    store.flush().await.unwrap();
}

#[test]
fn a_torn_tail_is_cut_off_and_never_resurfaces() {
    run("torn", |dir| async move {
        let mut store = LogStore::open(&dir, true).await.unwrap();
        let batch: Vec<Entry> = (0..10).map(|i| entry(1, i, 100)).collect();
        append_round(&mut store, batch.clone()).await;
        drop(store);
        let good = log_bytes(&dir).await;
        let (recs, end) = decode_records(&good).unwrap();
        assert_eq!(recs.len(), 10);
        // The next round wrote three records over several 512-byte sectors, and power failed
        // mid-write: the sector holding the first one's start never reached the disk (it
        // reads as the zeros the log was filled with), later sectors did.
        let mut round = Vec::new();
        for i in 10..13 {
            encode_record(&entry(1, i, 700), end as u64, &mut round);
        }
        let mut torn = good[..end].to_vec();
        torn.extend_from_slice(&round);
        let sector = end / 512 * 512;
        torn[end..sector + 512].fill(0);
        put_log_bytes(&dir, torn.clone()).await;
        assert_eq!(decode_records(&torn).unwrap().0.len(), 10, "a torn tail");

        let mut store = LogStore::open(&dir, true).await.unwrap();
        assert_eq!(store.try_get_log_entries(..).await.unwrap(), batch);
        let more = vec![entry(2, 10, 5)];
        append_round(&mut store, more.clone()).await;
        drop(store);
        // The torn round's surviving records never come back behind the new one.
        let mut store = LogStore::open(&dir, true).await.unwrap();
        let want: Vec<Entry> = batch.into_iter().chain(more).collect();
        assert_eq!(store.try_get_log_entries(..).await.unwrap(), want);
    });
}

#[test]
fn a_flipped_byte_before_later_rounds_is_refused_with_the_file_and_offset() {
    run("flip-mid", |dir| async move {
        let mut store = LogStore::open(&dir, true).await.unwrap();
        for i in 0..10 {
            append_round(&mut store, vec![entry(1, i, 60)]).await;
        }
        drop(store);
        let mut bytes = log_bytes(&dir).await;
        let (recs, _) = decode_records(&bytes).unwrap();
        let third = recs[3].0 as usize;
        bytes[third + 30] ^= 0x08;
        put_log_bytes(&dir, bytes.clone()).await;
        let damage = decode_records(&bytes).unwrap_err();
        assert_eq!(damage.offset, third as u64);
        let err = LogStore::open(&dir, true).await.err().expect("refused");
        let msg = err.to_string();
        assert!(
            msg.contains(&dir.join("log").display().to_string()),
            "{msg}"
        );
        assert!(msg.contains(&format!("offset {third}")), "{msg}");
        assert!(msg.contains("OPERATIONS.md"), "{msg}");
        // Refusing changed nothing: the file still holds every record after the damage.
        assert_eq!(log_bytes(&dir).await[..bytes.len()], bytes[..]);
    });
}

#[test]
fn a_flipped_byte_in_the_last_round_is_refused_not_cut() {
    // One round of five records, then a flip inside the last one: every byte of it was
    // written (no zeroed sector), so it is a changed record, not a torn one.
    let mut bytes = encode_log_header();
    for i in 0..5 {
        encode_record(&entry(1, i, 50), LOG_HEADER_BYTES as u64, &mut bytes);
    }
    let (all, end) = decode_records(&bytes).unwrap();
    assert_eq!((all.len(), end), (5, bytes.len()));
    let last = all[4].0 as usize;
    bytes[last + 20] ^= 0x40;
    bytes.resize(4096, 0);
    assert_eq!(decode_records(&bytes).unwrap_err().offset, last as u64);
    // A zeroed length in the middle is no end either: later rounds follow it.
    let mut bytes = encode_log_header();
    let mut starts = Vec::new();
    for i in 0..5 {
        starts.push(bytes.len());
        let round = bytes.len() as u64;
        encode_record(&entry(1, i, 50), round, &mut bytes);
    }
    bytes[starts[2]..starts[2] + 4].fill(0);
    assert_eq!(decode_records(&bytes).unwrap_err().offset, starts[2] as u64);
    // A missing index is refused too: a whole, checked record cannot come from a tear.
    let mut gap = encode_log_header();
    encode_record(&entry(1, 0, 1), 16, &mut gap);
    encode_record(&entry(1, 2, 1), 16, &mut gap);
    assert!(decode_records(&gap).unwrap_err().why.contains("missing"));
}

#[test]
fn a_log_of_another_format_is_refused_naming_both_formats() {
    run("format", |dir| async move {
        let store = LogStore::open(&dir, true).await.unwrap();
        drop(store);
        let mut bytes = log_bytes(&dir).await;
        bytes[4..8].copy_from_slice(&(LOG_FORMAT + 1).to_le_bytes());
        let crc = crc32fast::hash(&bytes[..12]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
        put_log_bytes(&dir, bytes).await;
        let msg = LogStore::open(&dir, true).await.err().unwrap().to_string();
        assert!(
            msg.contains(&format!("format {}", LOG_FORMAT + 1))
                && msg.contains(&format!("reads format {LOG_FORMAT}"))
                && msg.contains("newer Porpoise"),
            "{msg}"
        );
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
        let mut body = 16u64.to_le_bytes().to_vec();
        body.extend_from_slice(payload);
        let mut rec = encode_log_header();
        rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        rec.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        rec.extend_from_slice(&body);
        let _ = decode_records(&rec);
        let mut st = b"PRST".to_vec();
        st.extend_from_slice(&1u32.to_le_bytes());
        st.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        st.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        st.extend_from_slice(payload);
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

/// A follower whose log ends at 4 installs a snapshot through 9: it purges through 9 and
/// appends 10 after 4's record in the file. That gap is the purge's, not damage: the log
/// reopens with 10 and 11 (found as swarm `MADSIM_TEST_SEED=134`, where the controller
/// refused to start). A gap the purge point does not cover is still refused.
#[test]
fn a_gap_the_purge_point_covers_reopens_and_one_it_does_not_is_refused() {
    run("purged-gap", |dir| async move {
        let mut store = LogStore::open(&dir, true).await.unwrap();
        append_round(&mut store, (0..5).map(|i| entry(1, i, 40)).collect()).await;
        store.purge(entry(2, 9, 0).log_id).await.unwrap();
        let after: Vec<Entry> = (10..12).map(|i| entry(2, i, 40)).collect();
        append_round(&mut store, after.clone()).await;
        drop(store);
        let bytes = log_bytes(&dir).await;
        let (recs, _) = decode_records_after(&bytes, Some(9)).unwrap();
        let indexes: Vec<u64> = recs.iter().map(|(_, e)| e.log_id.index).collect();
        assert_eq!(
            indexes,
            [0, 1, 2, 3, 4, 10, 11],
            "the purged head stays in the file"
        );
        assert!(
            decode_records(&bytes).is_err(),
            "without the purge point it is a gap"
        );
        assert!(
            decode_records_after(&bytes, Some(7)).is_err(),
            "a purge through 7 leaves 8 and 9 missing"
        );
        let mut store = LogStore::open(&dir, true).await.unwrap();
        assert_eq!(store.try_get_log_entries(..).await.unwrap(), after);
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(9));
        assert_eq!(state.last_log_id.map(|l| l.index), Some(11));
    });
}
