//! Golden bytes of the controllers' on-disk formats (docs/FORMAT.md): `raft/state`, `raft/log`
//! (its header and records of every entry kind — bincode of openraft's `Entry`, `LogId`,
//! `Vote` and `Membership`) and the `dfsMeta` checkpoint (bincode of `Meta`). Each is encoded
//! from a fixed value and compared with `tests/golden/*.hex` (`storage::golden`), so a change
//! in openraft's or bincode's serialization fails here, not in a cluster that cannot read its
//! own log after an upgrade.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use node::controller::meta::{Command, Meta, Role};
use node::controller::raft::log::{
    decode_records, decode_state, encode_log_header, encode_record, encode_state, HardState,
    LOG_HEADER_BYTES,
};
use node::controller::raft::sm::{decode_checkpoint, encode_checkpoint, Checkpoint};
use node::controller::raft::{Entry, LogId, SnapshotMeta, StoredMembership, Vote};
use openraft::entry::RaftEntry;
use openraft::vote::leader_id_std::CommittedLeaderId;
use openraft::{BasicNode, Membership};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.hex"))
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term), index)
}

fn membership() -> Membership<u64, BasicNode> {
    let nodes: BTreeMap<u64, BasicNode> = [
        (1, BasicNode::new("127.0.0.80:8800:controller1")),
        (2, BasicNode::new("127.0.0.81:8800:controller2")),
        (3, BasicNode::new("127.0.0.82:8800:controller3")),
    ]
    .into_iter()
    .collect();
    Membership::new(vec![[1, 2, 3].into_iter().collect()], nodes).unwrap()
}

#[test]
fn raft_state_bytes_are_pinned() {
    let s = HardState {
        vote: Some(Vote::new_committed(3, 2)),
        committed: Some(log_id(3, 41)),
        purged: Some(log_id(2, 20)),
        rejoining: true,
    };
    let bytes = encode_state(&s);
    storage::golden::check(&golden("raft_state"), &bytes);
    assert_eq!(decode_state(Path::new("state"), &bytes).unwrap(), s);
}

#[test]
fn raft_log_bytes_are_pinned_for_every_entry_kind() {
    let entries = vec![
        Entry::new_membership(log_id(0, 0), membership()),
        Entry::new_blank(log_id(1, 1)),
        Entry::new_normal(
            log_id(1, 2),
            Command::RegisterNode {
                alias: "datanode1".into(),
                host: "127.0.0.80".into(),
                port: 8802,
                role: Role::DataNode,
            },
        ),
        Entry::new_normal(
            log_id(1, 3),
            Command::SetConfig {
                controller: false,
                key: "maxMemSize".into(),
                value: "16".into(),
            },
        ),
    ];
    let mut bytes = encode_log_header();
    for (i, e) in entries.iter().enumerate() {
        // Two rounds: the first two records, then the rest.
        let round = if i < 2 { LOG_HEADER_BYTES as u64 } else { 1000 };
        let round = round.min(bytes.len() as u64);
        encode_record(e, round, &mut bytes);
    }
    storage::golden::check(&golden("raft_log"), &bytes);
    let (back, end) = decode_records(&bytes).unwrap();
    assert_eq!(end, bytes.len());
    assert_eq!(
        back.into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
        entries
    );
}

#[test]
fn checkpoint_bytes_are_pinned() {
    let mut state = Meta::new();
    for cmd in [
        Command::RegisterNode {
            alias: "datanode1".into(),
            host: "127.0.0.80".into(),
            port: 8802,
            role: Role::DataNode,
        },
        Command::SetConfig {
            controller: true,
            key: "dfsReplicationFactor".into(),
            value: "2".into(),
        },
    ] {
        state.apply(&cmd).unwrap();
    }
    let c = Checkpoint {
        meta: SnapshotMeta {
            last_log_id: Some(log_id(4, 99)),
            last_membership: StoredMembership::new(Some(log_id(0, 0)), membership()),
        },
        state: state.clone(),
    };
    // Checkpoints of formats 1 (before `atomic_chunk`) and 2 (before stale replicas), written
    // for this state, still open as the same state.
    for (name, format) in [("checkpoint", 1), ("checkpoint_v2", 2)] {
        let old = golden_bytes(name);
        assert_eq!(u32::from_le_bytes(old[4..8].try_into().unwrap()), format);
        let back = decode_checkpoint(name, &old).unwrap();
        assert_eq!((back.state, back.meta), (state.clone(), c.meta.clone()));
    }

    // Formats 3 and 4 pin a chunk with a stale replica and a client request too.
    for cmd in [
        Command::CreateDatabase {
            name: "dfs://testDB".into(),
            scheme: vec![1, 6, 0],
        },
        Command::CreateTable {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
            columns: vec![("SecurityID".into(), 17)],
            partition_columns: vec!["SecurityID".into()],
        },
        Command::AddPartition {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
            partition: "A".into(),
            replicas: vec!["datanode1".into(), "datanode2".into()],
        },
        Command::BeginTxn {
            id: 1,
            participants: vec!["datanode1".into()],
        },
        Command::PrepareTxn {
            id: 1,
            chunk_versions: vec![(1, 1)],
        },
        Command::CommitWrites {
            id: 1,
            writers: vec![(1, vec!["datanode1".into()])],
            replaced: vec![1],
            tag: Some((("5b0ea26c-uuid".into(), 3, 0), 1)),
        },
    ] {
        state.apply(&cmd).unwrap();
    }
    let c = Checkpoint {
        meta: c.meta.clone(),
        state: state.clone(),
    };
    // Format 3 keyed the request's write without a chunk: it opens as chunk 0.
    let old = golden_bytes("checkpoint_v3");
    assert_eq!(u32::from_le_bytes(old[4..8].try_into().unwrap()), 3);
    let back = decode_checkpoint("checkpoint_v3", &old).unwrap();
    assert_eq!((&back.state, &back.meta), (&state, &c.meta));
    assert_eq!(
        back.state.requests["5b0ea26c-uuid"].rows,
        [((0, 0), 1)].into()
    );
    let bytes = encode_checkpoint(&c);
    assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 4);
    storage::golden::check(&golden("checkpoint_v4"), &bytes);
    let back = decode_checkpoint("checkpoint", &bytes).unwrap();
    assert_eq!((back.state, back.meta), (state, c.meta));
}

/// A golden file's bytes (hex, whitespace ignored).
fn golden_bytes(name: &str) -> Vec<u8> {
    let hex = std::fs::read_to_string(golden(name)).unwrap();
    hex.split_whitespace()
        .flat_map(|line| {
            (0..line.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}
