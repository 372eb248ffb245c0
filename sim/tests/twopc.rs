//! Two-phase commit under madsim, through the real start function: three controllers and three
//! data nodes, each on its own host (`dfsReplicationFactor=2`), a client appending batches
//! over four partitions through a different data node each time (so coordinators, participants
//! and the leader all change; every fifth append large enough that its participants stage a
//! batch as a segment, D80), a reader querying meanwhile, and per seed one crash at a named
//! step of one transaction (`node::coordinator::steps`: begun, one participant prepared, the
//! decision answered, one participant told, before the answer) of one of three victims — the
//! coordinator, another participant, or the leader controller. The seed picks the step and
//! the victim, so the CI seeds cover all fifteen pairs; it also picks the coordinator and the
//! moment. The crashed host comes back; then every invariant must hold:
//! appends all or nothing with none acknowledged lost (`appends_atomic`), replicas agreeing
//! with the metadata (`replicas_agree`), and no read seeing half an append (`whole_reads`).
#![cfg(madsim)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use node::coordinator::steps::{self, Step};
use rt::sim::{run_seeds, Host, World};
use sim::cluster::{http_get, reset_observations, Options, SimCluster};
use sim::dfs::{
    batch_counts, column, counts_via, create_table, parse_chunks, parse_status, run, COUNTS, LOGIN,
};
use sim::invariants::{appends_atomic, replicas_agree, whole_reads};

/// Whom a seed crashes while a coordinator is held at a step.
#[derive(Debug, Clone, Copy)]
enum Victim {
    Coordinator,
    Participant,
    Leader,
}

impl Victim {
    const ALL: [Victim; 3] = [Victim::Coordinator, Victim::Participant, Victim::Leader];
}

/// The fixed CI seed list: one per (step, victim) pair.
const SEEDS: &[u64] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const NODES: &str = "localSite,mode
127.0.0.80:8800:controller1,controller
127.0.0.81:8800:controller2,controller
127.0.0.82:8800:controller3,controller
127.0.0.83:8802:datanode1,datanode
127.0.0.84:8802:datanode2,datanode
127.0.0.85:8802:datanode3,datanode
";
const BATCHES: i64 = 40;
/// Rows per append: 50 in each of 4 partitions; every fifth append adds 66,000 more to
/// partition 2, a block and more, so its participants stage that batch as a segment (D80).
const ROWS_PER_BATCH: u64 = 200;
const LARGE_EXTRA: u64 = 66_000;

fn rows_of(b: i64) -> u64 {
    if b % 5 == 4 {
        ROWS_PER_BATCH + LARGE_EXTRA
    } else {
        ROWS_PER_BATCH
    }
}

#[derive(Default)]
struct Seen {
    attempted: BTreeSet<i64>,
    acked: BTreeSet<i64>,
    reads: u64,
    rewrites: u64,
}

#[test]
fn a_crash_at_any_step_of_two_phase_commit_leaves_appends_whole() {
    run_seeds(SEEDS, |world: World| async move {
        reset_observations();
        world.set_network(Duration::from_millis(1)..Duration::from_millis(5), 0.0);
        let cluster = SimCluster::start_with(&world, NODES, Options::default());
        let data: Vec<SocketAddr> = (1..=3)
            .map(|i| cluster.node(&format!("datanode{i}")).addr)
            .collect();
        let client = world.create_idle_host("client", "10.0.0.99".parse::<IpAddr>().unwrap());
        let mut rng = rt::rand::Rng::new();

        // The table, once the cluster is up (a leader, data nodes live).
        create_table(&client, data[0]).await;

        let seen = Arc::new(Mutex::new(Seen::default()));
        let writer = client.spawn({
            let (seen, data) = (seen.clone(), data.clone());
            async move {
                for b in 0..BATCHES {
                    let (n, extra) = (rows_of(b), rows_of(b) - ROWS_PER_BATCH);
                    let script = format!(
                        "{LOGIN}tableInsert(loadTable(\"dfs://t\", `pt), \
                         table(join(take(1..4, 200), take(2, {extra})) as p, take({b}, {n}) as b, 0..{} as i))",
                        n - 1
                    );
                    seen.lock().unwrap().attempted.insert(b);
                    let out = run(data[b as usize % 3], &script).await;
                    if out.contains("\"ok\":true") {
                        seen.lock().unwrap().acked.insert(b);
                    }
                    rt::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        // Rewrites meanwhile (`update`, D75): every row kept, so the invariants are the
        // appends'; they meet the crash too, and a committed rewrite must survive it whole.
        let rewriter = client.spawn({
            let (seen, data) = (seen.clone(), data.clone());
            async move {
                for k in 0..12usize {
                    let script = format!(
                        "{LOGIN}pt = loadTable(\"dfs://t\", `pt)\nupdate pt set i = i + 0 where p = {}",
                        1 + k % 4
                    );
                    if run(data[(k + 1) % 3], &script).await.contains("\"ok\":true") {
                        seen.lock().unwrap().rewrites += 1;
                    }
                    rt::time::sleep(Duration::from_millis(400)).await;
                }
            }
        });
        let reader = client.spawn({
            let (seen, data) = (seen.clone(), data.clone());
            async move {
                for k in 0..60usize {
                    let out = run(data[k % 3], &format!("{LOGIN}{COUNTS}")).await;
                    if let Some(read) = batch_counts(&out) {
                        whole_reads::check(&read, rows_of).unwrap();
                        seen.lock().unwrap().reads += 1;
                    }
                    rt::time::sleep(Duration::from_millis(150)).await;
                }
            }
        });

        // The fault: hold the next transaction a data node coordinates at the seed's step,
        // crash the seed's victim there, let the coordinator go on (if it lives), restart.
        let pair = (world.seed().wrapping_sub(1) % 15) as usize;
        let (step, victim) = (Step::ALL[pair / 3], Victim::ALL[pair % 3]);
        let coordinator = 1 + rng.below(3) as usize;
        rt::time::sleep(Duration::from_millis(300 + rng.below(1_500))).await;
        steps::hold_at(&format!("datanode{coordinator}"), step);
        let deadline = rt::time::now() + Duration::from_secs(30);
        let (_, _, tid) = loop {
            if let Some(h) = steps::holding() {
                break h;
            }
            assert!(
                rt::time::now() < deadline,
                "no transaction of datanode{coordinator} reached {step:?}"
            );
            rt::time::sleep(Duration::from_millis(5)).await;
        };
        let target = match victim {
            Victim::Coordinator => format!("datanode{coordinator}"),
            Victim::Participant => format!("datanode{}", coordinator % 3 + 1),
            Victim::Leader => cluster
                .nodes
                .iter()
                .find(|n| {
                    n.site.alias.starts_with("controller")
                        && sim::cluster::leaders_elected()
                            .last()
                            .is_some_and(|(_, id, _)| format!("controller{id}") == n.site.alias)
                })
                .map(|n| n.site.alias.clone())
                .expect("a leader was elected"),
        };
        let killed: Vec<Host> = vec![cluster.host_of(&target).clone()];
        for h in &killed {
            world.kill(h);
        }
        steps::release();
        rt::time::sleep(Duration::from_millis(1_000 + rng.below(3_000))).await;
        for h in &killed {
            world.restart(h);
        }
        let kind = format!("{victim:?} {target} at {step:?} of transaction {tid}");
        writer.await.unwrap();
        reader.await.unwrap();
        rewriter.await.unwrap();

        // Every outcome delivered (a participant waits out an abandoned coordinator), then the
        // final state, read through every data node.
        let (final_counts, meta, reports) = client
            .spawn({
                let data = data.clone();
                async move {
                    let deadline = rt::time::now() + Duration::from_secs(120);
                    loop {
                        let mut reports = BTreeMap::new();
                        for (i, a) in data.iter().enumerate() {
                            if let Ok(r) = http_get(*a, "/chunks?digest", Duration::from_secs(5)).await {
                                reports.insert(format!("datanode{}", i + 1), parse_chunks(&r));
                            }
                        }
                        let settled = reports.len() == 3
                            && reports.values().all(|r: &BTreeMap<u64, replicas_agree::Held>| {
                                r.values().all(|h| h.txn == 0)
                            });
                        let status = run(data[1], &format!("{LOGIN}getClusterChunksStatus()")).await;
                        let counts = batch_counts(&run(data[2], &format!("{LOGIN}{COUNTS}")).await);
                        let meta = parse_status(&status);
                        // A replica a commit went on without has caught up (D99).
                        let recovered = column(&status, "state")
                            .is_some_and(|s| s.iter().all(|s| s == "COMPLETE"));
                        if let (true, true, Some(meta), Some(counts)) =
                            (settled, recovered, &meta, &counts)
                        {
                            return (counts.clone(), meta.clone(), reports);
                        }
                        assert!(
                            rt::time::now() < deadline,
                            "the cluster never settled: reports {reports:?}, status {status}, counts {counts:?}, refused starts {:?}", sim::cluster::refused_starts()
                        );
                        rt::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            })
            .await
            .unwrap();
        let (acked, attempted, reads, rewrites) = {
            let s = seen.lock().unwrap();
            (s.acked.clone(), s.attempted.clone(), s.reads, s.rewrites)
        };
        eprintln!(
            "seed {}: crashed {kind}; {} of {} appends acknowledged, {} present, {} whole reads, {rewrites} rewrites",
            world.seed(),
            acked.len(),
            attempted.len(),
            final_counts.len(),
            reads
        );
        appends_atomic::check(&final_counts, rows_of, &acked, &attempted).unwrap();
        replicas_agree::check(&meta, &reports).unwrap();
        for a in &data[..2] {
            assert_eq!(
                counts_via(&client, *a).await.as_ref(),
                Some(&final_counts),
                "every node reads the same"
            );
        }
        assert!(
            !acked.is_empty(),
            "the workload made progress: {reads} reads"
        );
    });
}
