//! Pure controller decisions.
//!
//! Invariants these functions guarantee (and their tests check):
//! - a chunk's replicas are on distinct live data nodes; with `dfsReplicaReliabilityLevel=1` also
//!   on distinct hosts, or placement fails with a message saying what is missing;
//! - placement is deterministic (same state, same answer) and prefers the least-loaded nodes;
//! - a recovery copies from a live replica with the highest version to a live node that holds no
//!   replica of the chunk (on a host of its own when level 1);
//! - an abandoned transaction is aborted unless its commit decision was recorded (the commit
//!   point is the controller recording it), in which case participants are told to commit.

use std::collections::{BTreeMap, BTreeSet};

use super::meta::{Txn, TxnState};
use crate::dfs_proto::{ChunkReport, Incarnation};

/// Liveness of a node as the controller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Up,
    Down,
}

/// A data node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataNode {
    pub alias: String,
    pub host: String,
    pub liveness: Liveness,
    /// Chunks it holds (its load).
    pub chunks: usize,
}

/// Why replicas cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error(
        "CTL-001 dfsReplicationFactor={factor} needs {factor} live data nodes, {live} are up. \
         Start more data nodes or lower dfsReplicationFactor"
    )]
    NotEnoughNodes { factor: usize, live: usize },
    #[error(
        "CTL-002 dfsReplicaReliabilityLevel=1 puts each replica on its own host: \
         dfsReplicationFactor={factor} needs {factor} hosts with a live data node, {hosts} have one. \
         Add data nodes on other hosts, lower dfsReplicationFactor, or set dfsReplicaReliabilityLevel=0"
    )]
    NotEnoughHosts { factor: usize, hosts: usize },
}

/// Chooses the data nodes for a new chunk's `factor` replicas.
pub fn place_replicas(
    nodes: &[DataNode],
    factor: usize,
    reliability_level: u8,
) -> Result<Vec<String>, PlacementError> {
    let mut live: Vec<&DataNode> = nodes
        .iter()
        .filter(|n| n.liveness == Liveness::Up)
        .collect();
    if live.len() < factor {
        return Err(PlacementError::NotEnoughNodes {
            factor,
            live: live.len(),
        });
    }
    // Least loaded first; alias breaks ties so the answer is deterministic.
    live.sort_by(|a, b| a.chunks.cmp(&b.chunks).then_with(|| a.alias.cmp(&b.alias)));
    if reliability_level == 0 {
        return Ok(live.iter().take(factor).map(|n| n.alias.clone()).collect());
    }
    let mut hosts = BTreeSet::new();
    let mut chosen = Vec::with_capacity(factor);
    for n in &live {
        if chosen.len() == factor {
            break;
        }
        if hosts.insert(n.host.as_str()) {
            chosen.push(n.alias.clone());
        }
    }
    if chosen.len() < factor && reliability_level == 2 {
        // Level 2: distinct hosts where possible, then the least-loaded other nodes.
        for n in live {
            if chosen.len() == factor {
                break;
            }
            if !chosen.contains(&n.alias) {
                chosen.push(n.alias.clone());
            }
        }
    }
    if chosen.len() < factor {
        return Err(PlacementError::NotEnoughHosts {
            factor,
            hosts: hosts.len(),
        });
    }
    Ok(chosen)
}

/// One replica of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub node: String,
    pub version: u64,
}

/// A chunk and where its replicas are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkReplicas {
    pub chunk: u64,
    pub replicas: Vec<Replica>,
}

/// Copy `chunk` from `source` to `target` (a replica repair).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryTask {
    pub chunk: u64,
    pub source: String,
    pub target: String,
    pub version: u64,
}

/// Plans repairs: every chunk with fewer up-to-date replicas on live nodes than `factor` gets
/// copies from its best live replica to suitable live nodes; stale live replicas (an older
/// version) are brought up to date in place. Chunks with no live replica cannot be repaired and
/// are returned separately.
pub fn plan_recovery(
    chunks: &[ChunkReplicas],
    nodes: &[DataNode],
    factor: usize,
    reliability_level: u8,
) -> (Vec<RecoveryTask>, Vec<u64>) {
    let by_alias: BTreeMap<&str, &DataNode> = nodes.iter().map(|n| (n.alias.as_str(), n)).collect();
    let is_live = |alias: &str| {
        by_alias
            .get(alias)
            .is_some_and(|n| n.liveness == Liveness::Up)
    };
    // Load grows as we plan, so repairs spread out.
    let mut load: BTreeMap<&str, usize> =
        nodes.iter().map(|n| (n.alias.as_str(), n.chunks)).collect();
    let mut tasks = Vec::new();
    let mut unrecoverable = Vec::new();
    for c in chunks {
        let live: Vec<&Replica> = c.replicas.iter().filter(|r| is_live(&r.node)).collect();
        let Some(best) = live
            .iter()
            .max_by(|a, b| a.version.cmp(&b.version).then_with(|| b.node.cmp(&a.node)))
        else {
            unrecoverable.push(c.chunk);
            continue;
        };
        let newest = best.version;
        for stale in live.iter().filter(|r| r.version < newest) {
            tasks.push(RecoveryTask {
                chunk: c.chunk,
                source: best.node.clone(),
                target: stale.node.clone(),
                version: newest,
            });
        }
        let mut holders: BTreeSet<&str> = c.replicas.iter().map(|r| r.node.as_str()).collect();
        let mut hosts: BTreeSet<&str> = live
            .iter()
            .filter_map(|r| by_alias.get(r.node.as_str()).map(|n| n.host.as_str()))
            .collect();
        let mut missing = factor.saturating_sub(live.len());
        while missing > 0 {
            let target = nodes
                .iter()
                .filter(|n| n.liveness == Liveness::Up && !holders.contains(n.alias.as_str()))
                .filter(|n| reliability_level == 0 || !hosts.contains(n.host.as_str()))
                .min_by(|a, b| {
                    load[a.alias.as_str()]
                        .cmp(&load[b.alias.as_str()])
                        .then_with(|| a.alias.cmp(&b.alias))
                });
            let Some(t) = target else { break };
            tasks.push(RecoveryTask {
                chunk: c.chunk,
                source: best.node.clone(),
                target: t.alias.clone(),
                version: newest,
            });
            holders.insert(t.alias.as_str());
            hosts.insert(t.host.as_str());
            *load
                .get_mut(t.alias.as_str())
                .expect("every node has a load") += 1;
            missing -= 1;
        }
    }
    (tasks, unrecoverable)
}

/// What to do with an unresolved transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Record the abort, then tell every participant to abort.
    Abort { tid: u64, participants: Vec<String> },
    /// The decision is commit: tell every participant (again) to commit.
    Commit { tid: u64, participants: Vec<String> },
}

/// Resolves transactions whose coordinator has been quiet for `timeout_ms`: presumed abort
/// unless the commit was recorded. Finished transactions need nothing.
///
/// `txns` is the metadata's own transaction table (changed only through Raft). When a
/// coordinator last reported is the leader's volatile knowledge, not metadata: `last_heard_ms`
/// holds it per transaction, and a transaction this leader has not heard of since it took
/// over (`leader_since_ms`) counts as heard then, so a new leader gives every coordinator a
/// full timeout before deciding for it.
pub fn resolve_abandoned(
    txns: &BTreeMap<u64, Txn>,
    last_heard_ms: &BTreeMap<u64, u64>,
    leader_since_ms: u64,
    now_ms: u64,
    timeout_ms: u64,
) -> Vec<Resolution> {
    txns.iter()
        .filter(|(tid, _)| {
            // Never earlier than this leader took over.
            let heard = last_heard_ms
                .get(tid)
                .copied()
                .unwrap_or(0)
                .max(leader_since_ms);
            now_ms.saturating_sub(heard) >= timeout_ms
        })
        .filter_map(|(&tid, t)| {
            let participants = t.participants.iter().cloned().collect();
            match t.state {
                TxnState::Begun | TxnState::Prepared => {
                    Some(Resolution::Abort { tid, participants })
                }
                TxnState::Committed => Some(Resolution::Commit { tid, participants }),
                TxnState::Aborted => None,
            }
        })
        .collect()
}

/// A participant restarted with `tid` prepared and asks for the outcome.
pub fn outcome_for(txns: &BTreeMap<u64, Txn>, tid: u64) -> TxnState {
    // Unknown to the controller means it never reached the commit point: abort.
    txns.get(&tid).map(|t| t.state).unwrap_or(TxnState::Aborted)
}

/// What a data node's chunk report tells the leader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFindings {
    /// Chunks it holds that the metadata dropped (their ids are below `next_chunk`, so they
    /// were allocated once, and ids are never reused): safe to delete.
    pub orphans: Vec<u64>,
    /// Chunks it should hold at a version it is behind: (chunk, its version, the metadata's).
    pub stale: Vec<(u64, u64, u64)>,
    /// Chunks the metadata places on it that it does not hold.
    pub missing: Vec<u64>,
}

/// Compares `alias`'s report with the metadata. A chunk held by a transaction is neither stale
/// nor an orphan: its prepared rows are still being decided.
pub fn judge_report(m: &super::meta::Meta, alias: &str, report: &[ChunkReport]) -> ReportFindings {
    let held: BTreeMap<u64, &ChunkReport> = report.iter().map(|r| (r.chunk, r)).collect();
    let mut f = ReportFindings::default();
    for r in report {
        match m.chunks.get(&r.chunk) {
            None if r.chunk < m.next_chunk && r.txn.is_none() => f.orphans.push(r.chunk),
            Some(c) if c.replicas.contains(alias) && r.txn.is_none() && r.version < c.version => {
                f.stale.push((r.chunk, r.version, c.version))
            }
            _ => {}
        }
    }
    for (id, c) in &m.chunks {
        // A chunk no transaction committed on yet is created by its first prepare.
        if c.replicas.contains(alias) && c.version > 0 && !held.contains_key(id) {
            f.missing.push(*id);
        }
    }
    f
}

/// Transactions still undecided (`Begun` or `Prepared`) that an earlier run of `node`
/// coordinates: that process is gone, so it will never decide them, and nothing was committed
/// (the commit point is the leader's own `CommitWrites` record, which neither has; one racing
/// in is refused once the abort is applied, and the other way round). `coordinators` is the
/// leader's volatile knowledge of who began what. (Only `Begun` ones were taken before the
/// replica swarm's seed 21: a coordinator killed after every vote left its participants'
/// chunks locked for `TXN_ABANDON_MS`, and every append to them failed meanwhile.)
pub fn orphaned_txns(
    txns: &BTreeMap<u64, Txn>,
    coordinators: &BTreeMap<u64, Incarnation>,
    node: &Incarnation,
) -> Vec<u64> {
    coordinators
        .iter()
        .filter(|(_, c)| c.alias == node.alias && c.started_ms < node.started_ms)
        .filter(|(tid, _)| {
            txns.get(tid)
                .is_some_and(|t| matches!(t.state, TxnState::Begun | TxnState::Prepared))
        })
        .map(|(tid, _)| *tid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(alias: &str, host: &str, up: bool, chunks: usize) -> DataNode {
        DataNode {
            alias: alias.into(),
            host: host.into(),
            liveness: if up { Liveness::Up } else { Liveness::Down },
            chunks,
        }
    }

    /// The tutorial: three hosts with one data node each.
    fn tutorial() -> Vec<DataNode> {
        vec![
            dn("datanode1", "P1", true, 0),
            dn("datanode2", "P2", true, 0),
            dn("datanode3", "P3", true, 0),
        ]
    }

    #[test]
    fn tutorial_placement_uses_two_hosts_and_balances() {
        let mut nodes = tutorial();
        let mut counts = BTreeMap::new();
        for _ in 0..30 {
            let r = place_replicas(&nodes, 2, 1).unwrap();
            assert_eq!(r.len(), 2);
            assert_ne!(r[0], r[1]);
            for a in &r {
                *counts.entry(a.clone()).or_insert(0) += 1;
                nodes.iter_mut().find(|n| &n.alias == a).unwrap().chunks += 1;
            }
        }
        assert_eq!(
            counts.values().copied().collect::<Vec<_>>(),
            vec![20, 20, 20],
            "evenly spread"
        );
    }

    #[test]
    fn reliability_level_one_refuses_same_host_replicas() {
        let nodes = vec![
            dn("a1", "P1", true, 0),
            dn("a2", "P1", true, 0),
            dn("b1", "P2", false, 0),
        ];
        let err = place_replicas(&nodes, 2, 1).unwrap_err();
        assert_eq!(
            err,
            PlacementError::NotEnoughHosts {
                factor: 2,
                hosts: 1
            }
        );
        assert!(
            err.to_string().contains("dfsReplicaReliabilityLevel=0"),
            "{err}"
        );
        // Level 0 allows it.
        assert_eq!(
            place_replicas(&nodes, 2, 0).unwrap(),
            vec!["a1".to_string(), "a2".to_string()]
        );
        let err = place_replicas(&nodes, 3, 0).unwrap_err();
        assert_eq!(err, PlacementError::NotEnoughNodes { factor: 3, live: 2 });
        // Level 2: distinct hosts where possible, so one host's two nodes serve.
        assert_eq!(
            place_replicas(&nodes, 2, 2).unwrap(),
            vec!["a1".to_string(), "a2".to_string()]
        );
        let spread = vec![
            dn("a1", "P1", true, 0),
            dn("a2", "P1", true, 0),
            dn("b1", "P2", true, 3),
        ];
        assert_eq!(
            place_replicas(&spread, 2, 2).unwrap(),
            vec!["a1".to_string(), "b1".to_string()],
            "another host first, though it holds more"
        );
    }

    #[test]
    fn a_lost_replica_is_recovered_on_another_host_from_the_newest_copy() {
        let mut nodes = tutorial();
        nodes[0].liveness = Liveness::Down; // datanode1 fails
        let chunks = vec![
            ChunkReplicas {
                chunk: 1,
                replicas: vec![
                    Replica {
                        node: "datanode1".into(),
                        version: 5,
                    },
                    Replica {
                        node: "datanode3".into(),
                        version: 5,
                    },
                ],
            },
            ChunkReplicas {
                chunk: 2,
                replicas: vec![
                    Replica {
                        node: "datanode2".into(),
                        version: 3,
                    },
                    Replica {
                        node: "datanode3".into(),
                        version: 4,
                    },
                ],
            },
            ChunkReplicas {
                chunk: 3,
                replicas: vec![Replica {
                    node: "datanode1".into(),
                    version: 1,
                }],
            },
        ];
        let (tasks, lost) = plan_recovery(&chunks, &nodes, 2, 1);
        assert_eq!(
            tasks,
            vec![
                RecoveryTask {
                    chunk: 1,
                    source: "datanode3".into(),
                    target: "datanode2".into(),
                    version: 5
                },
                RecoveryTask {
                    chunk: 2,
                    source: "datanode3".into(),
                    target: "datanode2".into(),
                    version: 4
                },
            ]
        );
        assert_eq!(lost, vec![3], "no live replica: reported, not invented");
    }

    #[test]
    fn abandoned_transactions_abort_unless_committed() {
        let t = |state| Txn {
            state,
            participants: ["datanode1", "datanode3"].map(String::from).into(),
            chunk_versions: BTreeMap::from([(7, 2)]),
        };
        let txns = BTreeMap::from([
            (1, t(TxnState::Begun)),
            (2, t(TxnState::Prepared)),
            (3, t(TxnState::Committed)),
            (4, t(TxnState::Aborted)),
            (5, t(TxnState::Prepared)),
        ]);
        let heard = BTreeMap::from([(1, 0), (2, 0), (3, 0), (4, 0), (5, 9_500)]);
        let r = resolve_abandoned(&txns, &heard, 0, 10_000, 1_000);
        let both = vec!["datanode1".to_string(), "datanode3".to_string()];
        assert_eq!(
            r,
            vec![
                Resolution::Abort {
                    tid: 1,
                    participants: both.clone()
                },
                Resolution::Abort {
                    tid: 2,
                    participants: both.clone()
                },
                Resolution::Commit {
                    tid: 3,
                    participants: both
                },
            ],
            "5 reported 500 ms ago; 4 is finished"
        );
        assert_eq!(outcome_for(&txns, 3), TxnState::Committed);
        assert_eq!(outcome_for(&txns, 2), TxnState::Prepared);
        assert_eq!(outcome_for(&txns, 99), TxnState::Aborted, "presumed abort");
    }

    #[test]
    fn a_new_leader_gives_every_coordinator_a_full_timeout() {
        let txns = BTreeMap::from([(
            1,
            Txn {
                state: TxnState::Prepared,
                participants: BTreeSet::from(["datanode1".to_string()]),
                chunk_versions: BTreeMap::new(),
            },
        )]);
        // Last heard long ago by the old leader's clock, or never by this one: both count
        // from when this leader took over (9 000 ms).
        for heard in [BTreeMap::from([(1, 0)]), BTreeMap::new()] {
            assert!(resolve_abandoned(&txns, &heard, 9_000, 9_999, 1_000).is_empty());
            assert_eq!(
                resolve_abandoned(&txns, &heard, 9_000, 10_000, 1_000).len(),
                1
            );
        }
    }

    #[test]
    fn placement_properties_hold_for_random_clusters() {
        let mut rng = rt::rand::Rng::with_seed(11);
        for _ in 0..2000 {
            let n = 1 + rng.below(8) as usize;
            let nodes: Vec<DataNode> = (0..n)
                .map(|i| {
                    dn(
                        &format!("dn{i}"),
                        &format!("h{}", rng.below(4)),
                        rng.chance(0.8),
                        rng.below(5) as usize,
                    )
                })
                .collect();
            let factor = 1 + rng.below(3) as usize;
            let level = rng.below(2) as u8;
            match place_replicas(&nodes, factor, level) {
                Ok(r) => {
                    assert_eq!(r.len(), factor);
                    let set: BTreeSet<_> = r.iter().collect();
                    assert_eq!(set.len(), factor, "distinct nodes");
                    let picked: Vec<&DataNode> = r
                        .iter()
                        .map(|a| nodes.iter().find(|n| &n.alias == a).unwrap())
                        .collect();
                    assert!(picked.iter().all(|n| n.liveness == Liveness::Up));
                    if level == 1 {
                        let hosts: BTreeSet<_> = picked.iter().map(|n| &n.host).collect();
                        assert_eq!(hosts.len(), factor, "distinct hosts");
                    }
                    assert_eq!(
                        place_replicas(&nodes, factor, level).unwrap(),
                        r,
                        "deterministic"
                    );
                }
                Err(PlacementError::NotEnoughNodes { live, .. }) => assert!(live < factor),
                Err(PlacementError::NotEnoughHosts { hosts, .. }) => {
                    let live_hosts: BTreeSet<_> = nodes
                        .iter()
                        .filter(|n| n.liveness == Liveness::Up)
                        .map(|n| &n.host)
                        .collect();
                    assert_eq!(hosts, live_hosts.len());
                    assert!(hosts < factor && level == 1);
                }
            }
        }
    }

    #[test]
    fn a_report_names_orphans_stale_and_missing_replicas() {
        use super::super::meta::{Chunk, Meta};
        let mut m = Meta::new();
        let on = |a: &[&str], version| Chunk {
            replicas: a.iter().map(|s| s.to_string()).collect(),
            version,
            stale: Default::default(),
        };
        m.chunks.insert(1, on(&["dn1", "dn2"], 3));
        m.chunks.insert(2, on(&["dn1"], 2));
        m.chunks.insert(3, on(&["dn1"], 0));
        m.chunks.insert(4, on(&["dn1"], 5));
        m.next_chunk = 10;
        let r = |chunk, version, txn| ChunkReport {
            chunk,
            version,
            rows: 0,
            txn,
            path: String::new(),
            disk_bytes: 0,
        };
        let report = [
            r(1, 3, None),    // up to date
            r(2, 1, None),    // behind: stale
            r(4, 4, Some(8)), // behind, but a transaction holds it: being decided
            r(5, 7, None),    // dropped: an orphan
            r(6, 1, Some(9)), // dropped, but held by a transaction: left alone
            r(12, 1, None),   // above next_chunk: not allocated by this metadata, left alone
        ];
        let f = judge_report(&m, "dn1", &report);
        assert_eq!(f.orphans, vec![5]);
        assert_eq!(f.stale, vec![(2, 1, 2)]);
        assert_eq!(
            f.missing,
            Vec::<u64>::new(),
            "3 has no commit yet; 4 is held"
        );
        let f = judge_report(&m, "dn2", &[]);
        assert_eq!(f.missing, vec![1]);
    }

    #[test]
    fn a_restarted_coordinator_orphans_only_its_earlier_runs_undecided_transactions() {
        let t = |state| Txn {
            state,
            participants: BTreeSet::new(),
            chunk_versions: BTreeMap::new(),
        };
        let txns = BTreeMap::from([
            (1, t(TxnState::Begun)),
            (2, t(TxnState::Committed)),
            (3, t(TxnState::Begun)),
            (4, t(TxnState::Begun)),
            (5, t(TxnState::Prepared)),
            (6, t(TxnState::Aborted)),
        ]);
        let run = |alias: &str, started_ms| Incarnation {
            alias: alias.into(),
            started_ms,
        };
        let coordinators = BTreeMap::from([
            (1, run("dn1", 100)),
            (2, run("dn1", 100)),
            (3, run("dn1", 200)),
            (4, run("dn2", 100)),
            (5, run("dn1", 100)),
            (6, run("dn1", 100)),
        ]);
        assert_eq!(
            orphaned_txns(&txns, &coordinators, &run("dn1", 200)),
            vec![1, 5],
            "2 is committed, 6 aborted; 3 is the new run's own; 4 is another node's"
        );
        assert!(orphaned_txns(&txns, &coordinators, &run("dn1", 50)).is_empty());
    }
}
