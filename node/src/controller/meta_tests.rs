//! Tests of the metadata state machine (`meta.rs`).
use super::*;
use proptest::prelude::*;

fn setup() -> Meta {
    let mut m = Meta::new();
    for c in [
        Command::RegisterNode {
            alias: "dnode1".into(),
            host: "10.0.0.80".into(),
            port: 8802,
            role: Role::DataNode,
        },
        Command::CreateDatabase {
            name: "dfs://testDB".into(),
            scheme: vec![1, 6, 0],
        },
        Command::CreateTable {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
            columns: vec![("SecurityID".into(), 17), ("DateTime".into(), 11)],
            partition_columns: vec!["DateTime".into()],
        },
    ] {
        m.apply(&c).unwrap();
    }
    m
}

#[test]
fn check_names_each_broken_chunk_invariant() {
    let mut m = setup();
    for p in ["19365", "19366"] {
        m.apply(&Command::AddPartition {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
            partition: p.into(),
            replicas: vec!["dnode1".into()],
        })
        .unwrap();
    }
    m.check().unwrap();
    let mut two = m.clone();
    two.databases
        .get_mut("dfs://testDB")
        .unwrap()
        .tables
        .get_mut("testTB")
        .unwrap()
        .partitions
        .insert("19367".into(), 1);
    assert_eq!(two.check().unwrap_err(), "chunk 1 belongs to 2 partitions");
    let mut orphan = m.clone();
    let entry = orphan.chunks[&1].clone();
    orphan.chunks.insert(0, entry);
    assert_eq!(
        orphan.check().unwrap_err(),
        "chunk 0 belongs to no partition"
    );
    let mut missing = m.clone();
    missing.chunks.remove(&2);
    assert_eq!(missing.check().unwrap_err(), "chunk 2 has no entry");
    let mut ahead = m.clone();
    ahead.next_chunk = 2;
    assert!(ahead.check().unwrap_err().contains("not below next_chunk"));
}

#[test]
fn partitions_get_fresh_chunks_and_races_share_one() {
    let mut m = setup();
    let add = |p: &str| Command::AddPartition {
        db: "dfs://testDB".into(),
        table: "testTB".into(),
        partition: p.into(),
        replicas: vec!["dnode1".into()],
    };
    assert_eq!(m.apply(&add("19365")).unwrap(), Applied::Chunk(1));
    assert_eq!(m.apply(&add("19366")).unwrap(), Applied::Chunk(2));
    assert_eq!(m.apply(&add("19365")).unwrap(), Applied::Chunk(1));
    m.check().unwrap();
    m.apply(&Command::DropDatabase {
        name: "dfs://testDB".into(),
    })
    .unwrap();
    assert!(m.chunks.is_empty());
    assert_eq!(m.next_chunk, 3, "ids are never reused");
    m.check().unwrap();
}

#[test]
fn transactions_move_forward_only() {
    let mut m = setup();
    m.apply(&Command::AddPartition {
        db: "dfs://testDB".into(),
        table: "testTB".into(),
        partition: "19365".into(),
        replicas: vec!["dnode1".into()],
    })
    .unwrap();
    m.apply(&Command::BeginTxn {
        id: 7,
        participants: vec!["dnode1".into()],
    })
    .unwrap();
    assert!(
        m.apply(&Command::CommitTxn { id: 7 }).is_err(),
        "not prepared"
    );
    m.apply(&Command::PrepareTxn {
        id: 7,
        chunk_versions: vec![(1, 4)],
    })
    .unwrap();
    m.apply(&Command::CommitTxn { id: 7 }).unwrap();
    m.apply(&Command::CommitTxn { id: 7 }).unwrap();
    assert!(m.apply(&Command::AbortTxn { id: 7 }).is_err());
    assert_eq!(m.chunks[&1].version, 4);
}

#[test]
fn heartbeats_and_expiry() {
    let mut m = setup();
    m.apply(&Command::Heartbeat {
        alias: "dnode1".into(),
        now_ms: 1000,
    })
    .unwrap();
    assert!(m.nodes["dnode1"].live);
    let r = m
        .apply(&Command::ExpireNodes {
            now_ms: 5000,
            timeout_ms: 3000,
        })
        .unwrap();
    assert_eq!(r, Applied::Down(vec!["dnode1".into()]));
    assert!(m
        .apply(&Command::Heartbeat {
            alias: "nobody".into(),
            now_ms: 1
        })
        .is_err());
}

fn arb_command() -> impl Strategy<Value = Command> {
    let db = prop::sample::select(vec!["dfs://a", "dfs://b"]).prop_map(String::from);
    let part = prop::sample::select(vec!["p1", "p2", "p3"]).prop_map(String::from);
    let node = prop::sample::select(vec!["n1", "n2", "n3"]).prop_map(String::from);
    prop_oneof![
        db.clone().prop_map(|name| Command::CreateDatabase {
            name,
            scheme: vec![]
        }),
        db.clone().prop_map(|name| Command::DropDatabase { name }),
        db.clone().prop_map(|db| Command::CreateTable {
            db,
            table: "t".into(),
            columns: vec![("k".into(), 4)],
            partition_columns: vec!["k".into()],
        }),
        (db, part).prop_map(|(db, partition)| Command::AddPartition {
            db,
            table: "t".into(),
            partition,
            replicas: vec!["n1".into(), "n2".into()],
        }),
        (
            1u64..4,
            prop::collection::vec(node.clone(), 1..3),
            any::<bool>()
        )
            .prop_map(|(c, a, r)| Command::CommitWrites {
                id: c % 3,
                writers: vec![(c, a)],
                replaced: if r { vec![c] } else { vec![] },
                tag: r.then(|| (("u1".to_string(), c % 2, 0), 5)),
            }),
        (1u64..4, node.clone(), 0u64..9).prop_map(|(chunk, alias, version)| {
            Command::ClearStale {
                chunk,
                alias,
                version,
            }
        }),
        (1u64..4, node.clone(), node.clone())
            .prop_map(|(chunk, from, to)| { Command::MoveReplica { chunk, from, to } }),
        (1u64..4, node).prop_map(|(chunk, alias)| Command::MarkDamaged { chunk, alias }),
        (0u64..3).prop_map(|id| Command::BeginTxn {
            id,
            participants: vec![]
        }),
        (0u64..3, 1u64..4, 0u64..9).prop_map(|(id, c, v)| Command::PrepareTxn {
            id,
            chunk_versions: vec![(c, v)]
        }),
        (0u64..3).prop_map(|id| Command::CommitTxn { id }),
        (0u64..3).prop_map(|id| Command::AbortTxn { id }),
    ]
}

proptest! {
    /// Any command sequence keeps the invariants; a refused command changes nothing; the
    /// same log gives the same state (what lets every controller replay it).
    #[test]
    fn invariants_hold_and_replay_is_deterministic(cmds in prop::collection::vec(arb_command(), 0..60)) {
        let mut m = Meta::new();
        let mut versions: BTreeMap<u64, u64> = BTreeMap::new();
        for c in &cmds {
            let before = m.clone();
            if m.apply(c).is_err() {
                prop_assert_eq!(&m, &before);
            }
            prop_assert!(m.check().is_ok(), "{:?}", m.check());
            for (id, ch) in &m.chunks {
                prop_assert!(ch.version >= *versions.get(id).unwrap_or(&0));
                versions.insert(*id, ch.version);
            }
        }
        let mut again = Meta::new();
        for c in &cmds {
            let _ = again.apply(c);
        }
        prop_assert_eq!(m, again);
    }
}

#[test]
fn stale_replicas_are_marked_cleared_at_the_chunk_version_and_moved() {
    let mut m = setup();
    m.apply(&Command::AddPartition {
        db: "dfs://testDB".into(),
        table: "testTB".into(),
        partition: "19365".into(),
        replicas: vec!["dn1".into(), "dn2".into()],
    })
    .unwrap();
    // One transaction of `batches` written by `writers`, committed.
    let mut next = 1;
    let mut write = |m: &mut Meta, writers: &[&str], batches: u64, replaced: bool| {
        let id = next;
        next += 1;
        m.apply(&Command::BeginTxn {
            id,
            participants: writers.iter().map(|w| w.to_string()).collect(),
        })
        .unwrap();
        let v = m.chunks[&1].version;
        m.apply(&Command::PrepareTxn {
            id,
            chunk_versions: vec![(1, v + batches)],
        })
        .unwrap();
        let commit = Command::CommitWrites {
            id,
            writers: vec![(1, writers.iter().map(|w| w.to_string()).collect())],
            replaced: if replaced { vec![1] } else { vec![] },
            tag: None,
        };
        let r = m.apply(&commit);
        if r.is_err() {
            m.apply(&Command::AbortTxn { id }).unwrap();
        }
        r
    };
    write(&mut m, &["dn1", "dn2"], 4, false).unwrap();
    assert!(m.chunks[&1].stale.is_empty());
    write(&mut m, &["dn1"], 1, false).unwrap();
    assert_eq!(m.chunks[&1].version, 5);
    assert_eq!(
        m.chunks[&1].stale["dn2"],
        Stale {
            since: 4,
            full: false
        },
        "it holds every commit up to 4"
    );
    assert_eq!(m.chunks[&1].current().collect::<Vec<_>>(), ["dn1"]);
    // Missing more keeps what it holds; a rewrite since needs a full copy.
    write(&mut m, &["dn1"], 1, true).unwrap();
    assert_eq!(
        m.chunks[&1].stale["dn2"],
        Stale {
            since: 4,
            full: true
        }
    );
    assert_eq!(m.chunks[&1].version, 6);
    let before = m.chunks.clone();
    assert!(
        matches!(
            write(&mut m, &["dn2"], 1, false),
            Err(MetaError::Replicas(_))
        ),
        "a stale replica's vote commits nothing: its rows do not sit on version 6"
    );
    assert!(matches!(
        write(&mut m, &["dn1", "dn2"], 1, false),
        Err(MetaError::Replicas(_))
    ));
    assert_eq!(m.chunks, before);
    let mark = |m: &mut Meta| {
        let mut c = m.chunks[&1].clone();
        c.stale.insert(
            "dn2".into(),
            Stale {
                since: c.version,
                full: false,
            },
        );
        m.chunks.insert(1, c);
    };
    let clear = |version| Command::ClearStale {
        chunk: 1,
        alias: "dn2".into(),
        version,
    };
    assert_eq!(
        m.apply(&clear(5)),
        Err(MetaError::VersionMoved {
            chunk: 1,
            version: 5,
            now: 6
        }),
        "a commit during the copy keeps it stale"
    );
    m.apply(&clear(6)).unwrap();
    assert!(m.chunks[&1].stale.is_empty());
    assert!(matches!(m.apply(&clear(6)), Err(MetaError::Missing(_))));
    // A node gone too long: its replica moves and starts stale; never the last current one.
    let mv = |from: &str, to: &str| Command::MoveReplica {
        chunk: 1,
        from: from.into(),
        to: to.into(),
    };
    mark(&mut m);
    assert!(matches!(
        m.apply(&mv("dn1", "dn3")),
        Err(MetaError::Replicas(_))
    ));
    m.apply(&mv("dn2", "dn3")).unwrap();
    let c = &m.chunks[&1];
    assert_eq!(c.replicas, ["dn1".to_string(), "dn3".into()].into());
    assert_eq!(
        c.stale["dn3"],
        Stale {
            since: 0,
            full: true
        }
    );
    m.check().unwrap();
}

#[test]
fn a_damaged_replica_needs_a_full_copy_unless_it_is_the_last_current_one() {
    let mut m = setup();
    m.apply(&Command::AddPartition {
        db: "dfs://testDB".into(),
        table: "testTB".into(),
        partition: "19365".into(),
        replicas: vec!["dn1".into(), "dn2".into()],
    })
    .unwrap();
    let damaged = |alias: &str| Command::MarkDamaged {
        chunk: 1,
        alias: alias.into(),
    };
    assert!(matches!(
        m.apply(&damaged("dn3")),
        Err(MetaError::Replicas(_))
    ));
    m.apply(&damaged("dn1")).unwrap();
    assert_eq!(
        m.chunks[&1].stale.get("dn1"),
        Some(&Stale {
            since: 0,
            full: true
        })
    );
    // Its partner is the only copy left to read: marking it too would leave none.
    let before = m.clone();
    assert!(matches!(
        m.apply(&damaged("dn2")),
        Err(MetaError::Replicas(_))
    ));
    assert_eq!(m, before, "a refused command changes nothing");
    // Again for a stale one: still a full copy.
    m.apply(&damaged("dn1")).unwrap();
    assert_eq!(m.chunks[&1].current().collect::<Vec<_>>(), ["dn2"]);
}

/// Begins, prepares (each chunk at version `id`) and commits transaction `id` on dn1, tagged
/// `(client, request, write)` with `rows`; the commit's answer.
fn tagged_commit(
    m: &mut Meta,
    id: u64,
    chunks: &[u64],
    (client, request, write): (&str, u64, u32),
    rows: u64,
) -> Result<Applied, MetaError> {
    m.apply(&Command::BeginTxn {
        id,
        participants: vec!["dn1".into()],
    })
    .unwrap();
    m.apply(&Command::PrepareTxn {
        id,
        chunk_versions: chunks.iter().map(|c| (*c, id)).collect(),
    })
    .unwrap();
    m.apply(&Command::CommitWrites {
        id,
        writers: chunks.iter().map(|c| (*c, vec!["dn1".into()])).collect(),
        replaced: vec![],
        tag: Some(((client.into(), request, write), rows)),
    })
}

#[test]
fn a_client_requests_writes_commit_once_each() {
    let mut m = setup();
    m.apply(&Command::AddPartition {
        db: "dfs://testDB".into(),
        table: "testTB".into(),
        partition: "19365".into(),
        replicas: vec!["dn1".into()],
    })
    .unwrap();
    let commit = |m: &mut Meta, id: u64, request: u64, write: u32| {
        tagged_commit(m, id, &[1], ("uuid-a", request, write), 10 * id)
    };
    commit(&mut m, 1, 7, 0).unwrap();
    commit(&mut m, 2, 7, 1).unwrap();
    assert_eq!(
        m.requests["uuid-a"].rows,
        [((0, 0), 10), ((1, 0), 20)].into()
    );
    let before = m.chunks.clone();
    assert!(
        matches!(commit(&mut m, 3, 7, 0), Err(MetaError::Duplicate(_))),
        "a resend racing the first attempt of write 0"
    );
    assert_eq!(m.chunks, before, "the duplicate committed nothing");
    assert_eq!(m.txns[&3].state, TxnState::Prepared);
    m.apply(&Command::AbortTxn { id: 3 }).unwrap();
    // The next request replaces the record; the old one can no longer commit.
    commit(&mut m, 4, 8, 0).unwrap();
    assert_eq!(m.requests["uuid-a"].request, 8);
    assert!(matches!(
        commit(&mut m, 5, 7, 2),
        Err(MetaError::Duplicate(_))
    ));
}

#[test]
fn finished_transactions_are_forgotten_and_their_ids_never_reused() {
    let mut m = Meta::new();
    let begin = |id| Command::BeginTxn {
        id,
        participants: vec!["dn1".into()],
    };
    m.apply(&begin(1)).unwrap();
    m.apply(&begin(2)).unwrap();
    m.apply(&Command::AbortTxn { id: 1 }).unwrap();
    m.apply(&Command::ForgetTxns { ids: vec![1, 2, 9] })
        .unwrap();
    assert!(!m.txns.contains_key(&1), "aborted: forgotten");
    assert!(m.txns.contains_key(&2), "still begun: kept");
    assert_eq!(m.next_txn, 3);
    assert!(
        matches!(m.apply(&begin(1)), Err(MetaError::Exists(_))),
        "a forgotten id is not taken again"
    );
    m.apply(&begin(3)).unwrap();
}

#[test]
fn an_atomic_chunk_writes_commits_are_recorded_per_chunk() {
    use crate::dfs_proto::WRITE_PER_CHUNK;
    let mut m = setup();
    for (partition, replicas) in [("19365", ["dn1"]), ("19366", ["dn1"])] {
        m.apply(&Command::AddPartition {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
            partition: partition.into(),
            replicas: replicas.iter().map(|r| r.to_string()).collect(),
        })
        .unwrap();
    }
    let commit = |m: &mut Meta, id: u64, chunks: &[u64], write: u32| {
        tagged_commit(m, id, chunks, ("uuid-b", 4, write), 5 * id)
    };
    // Write 0 of request 4, per chunk: both chunks commit under the same write.
    commit(&mut m, 1, &[1], WRITE_PER_CHUNK).unwrap();
    commit(&mut m, 2, &[2], WRITE_PER_CHUNK).unwrap();
    assert_eq!(
        m.requests["uuid-b"].rows,
        [((0, 1), 5), ((0, 2), 10)].into()
    );
    // A resend racing the first attempt of chunk 2: refused, and nothing else moved.
    let before = m.chunks.clone();
    assert!(matches!(
        commit(&mut m, 3, &[2], WRITE_PER_CHUNK),
        Err(MetaError::Duplicate(_))
    ));
    assert_eq!(m.chunks, before);
    m.apply(&Command::AbortTxn { id: 3 }).unwrap();
    // A per-chunk tag on a transaction of two chunks is a coordinator's bug: refused.
    assert!(matches!(
        commit(&mut m, 4, &[1, 2], 1 | WRITE_PER_CHUNK),
        Err(MetaError::Replicas(_))
    ));
    m.apply(&Command::AbortTxn { id: 4 }).unwrap();
    // A whole-transaction write 1 is its own key.
    commit(&mut m, 5, &[1, 2], 1).unwrap();
    assert_eq!(m.requests["uuid-b"].rows[&(1, 0)], 25);
}
