//! Foundation scenarios (run under `--cfg madsim`; an empty test binary otherwise):
//! - nodes started from the tutorial's cluster.nodes talk over `rt` TCP, and a killed host's
//!   nodes go away and come back on restart;
//! - a killed node loses unsynced writes but keeps synced ones;
//! - the same seed yields the same trace.
#![cfg(madsim)]

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rt::disk::{self, File, OpenMode};
use rt::rand::Rng;
use rt::sim::{run_seeds, seeds_from_env, World};
use sim::cluster::{http_get, SimCluster};
use sim::invariants::durability::{self, RECORD_BYTES};

/// The fixed CI seed list (extend with MADSIM_TEST_NUM, replay with MADSIM_TEST_SEED).
const SEEDS: &[u64] = &[1, 2, 3, 5, 8, 13, 21, 34];

fn tutorial_nodes() -> String {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/cluster/P1/config/cluster.nodes");
    std::fs::read_to_string(p).expect("configs/cluster/P1/config/cluster.nodes")
}

fn client_ip() -> IpAddr {
    "10.0.0.99".parse().unwrap()
}

async fn health_alias(addr: std::net::SocketAddr) -> Option<String> {
    let resp = http_get(addr, "/health", Duration::from_millis(500))
        .await
        .ok()?;
    let start = resp.find(r#""alias":""#)? + 9;
    let len = resp[start..].find('"')?;
    Some(resp[start..start + len].to_string())
}

#[test]
fn nodes_exchange_messages_and_survive_host_restart() {
    let nodes_text = tutorial_nodes();
    run_seeds(SEEDS, |world: World| {
        let nodes_text = nodes_text.clone();
        async move {
            world.set_network(Duration::from_millis(1)..Duration::from_millis(10), 0.0);
            let cluster = SimCluster::start(&world, &nodes_text);
            assert_eq!(cluster.hosts.len(), 3, "one simulated host per IP");
            rt::time::sleep(Duration::from_millis(100)).await;
            let client = world.create_idle_host("client", client_ip());
            let nodes = cluster.nodes.clone();

            // Every node answers with its own alias.
            let all = nodes.clone();
            let seen = client
                .spawn(async move {
                    let mut seen = Vec::new();
                    for n in &all {
                        seen.push((n.site.alias.clone(), health_alias(n.addr).await));
                    }
                    seen
                })
                .await
                .unwrap();
            for (alias, got) in &seen {
                assert_eq!(got.as_deref(), Some(alias.as_str()), "node {alias}");
            }

            // Kill P2: its four nodes stop answering, the others do not notice.
            let p2 = cluster.host_of("controller2").clone();
            world.kill(&p2);
            let all = nodes.clone();
            let p2_ip = p2.ip();
            let after_kill = client
                .spawn(async move {
                    let mut out = Vec::new();
                    for n in &all {
                        out.push((n.addr.ip() == p2_ip, health_alias(n.addr).await.is_some()));
                    }
                    out
                })
                .await
                .unwrap();
            assert!(
                after_kill.iter().all(|(on_p2, up)| on_p2 != up),
                "{after_kill:?}"
            );

            // Restart P2: its nodes come back (start-up is the real path, so this also proves
            // a restarted node can bind its port again).
            world.restart(&p2);
            let back = client
                .spawn(async move {
                    for _ in 0..100 {
                        let mut ok = true;
                        for n in nodes.iter().filter(|n| n.addr.ip() == p2_ip) {
                            ok &= health_alias(n.addr).await.as_deref()
                                == Some(n.site.alias.as_str());
                        }
                        if ok {
                            return true;
                        }
                        rt::time::sleep(Duration::from_millis(100)).await;
                    }
                    false
                })
                .await
                .unwrap();
            assert!(back, "P2's nodes answer again after restart");
        }
    });
}

/// Shared between the writer process (re-run on every boot) and the supervisor.
#[derive(Default)]
struct WriterState {
    boots: u32,
    written: u64,
    durable: u64,
    verdict: Option<Result<u64, String>>,
}

const WAL_DIR: &str = "/porpoise/data/writer";

async fn writer_process(state: Arc<Mutex<WriterState>>, seed: u64) {
    let boot = {
        let mut s = state.lock().unwrap();
        s.boots += 1;
        s.boots
    };
    let path = Path::new(WAL_DIR).join("wal");
    if boot == 1 {
        disk::create_dir_all(WAL_DIR).await.unwrap();
        let f = File::open(&path, OpenMode::CreateNew).await.unwrap();
        // The new name must be durable too, or a crash may take the whole file.
        disk::sync_dir(WAL_DIR).await.unwrap();
        let mut rng = Rng::with_seed(seed);
        for i in 0u64.. {
            f.write_at(i * RECORD_BYTES as u64, &durability::record(i))
                .await
                .unwrap();
            state.lock().unwrap().written = i + 1;
            if rng.below(3) == 0 {
                f.sync().await.unwrap();
                state.lock().unwrap().durable = i + 1;
            }
            rt::time::sleep(Duration::from_micros(200 + rng.below(800))).await;
        }
    } else {
        // After the crash: whatever was synced must be there, intact.
        let durable = state.lock().unwrap().durable;
        let verdict = match File::open(&path, OpenMode::Existing).await {
            Ok(f) => {
                let size = f.size().await.unwrap() as usize;
                let bytes = f.read_at(0, size).await.unwrap();
                durability::check(&bytes, durable).map(|()| (bytes.len() / RECORD_BYTES) as u64)
            }
            Err(_) if durable == 0 => Ok(0),
            Err(e) => Err(format!(
                "the WAL is gone after a crash although {durable} records were synced: {e}"
            )),
        };
        state.lock().unwrap().verdict = Some(verdict);
    }
}

#[test]
fn killed_node_loses_unsynced_writes_but_keeps_synced_ones() {
    let seeds = seeds_from_env(SEEDS);
    let mut unsynced_damage = 0u32;
    for seed in &seeds {
        unsynced_damage += World::run_seed(*seed, |world: World| async move {
            let state = Arc::new(Mutex::new(WriterState::default()));
            let st = state.clone();
            let writer_seed = world.seed();
            let host = world.create_host("writer", "10.0.0.50".parse().unwrap(), move || {
                writer_process(st.clone(), writer_seed)
            });
            let mut rng = Rng::new();
            rt::time::sleep(Duration::from_millis(20 + rng.below(200))).await;
            let (written, durable) = {
                let s = state.lock().unwrap();
                (s.written, s.durable)
            };
            assert!(written > 0);
            world.restart(&host);
            for _ in 0..100 {
                if state.lock().unwrap().verdict.is_some() {
                    break;
                }
                rt::time::sleep(Duration::from_millis(10)).await;
            }
            let verdict = state
                .lock()
                .unwrap()
                .verdict
                .clone()
                .expect("the writer rebooted and checked");
            let survived = verdict.unwrap_or_else(|e| panic!("durability violated: {e}"));
            assert!(
                survived >= durable,
                "{survived} records survived, {durable} were synced"
            );
            let stats = world.disk_stats(&host);
            assert_eq!(stats.crashes, 1);
            stats.writes_lost + stats.writes_torn
        });
    }
    if seeds.len() >= 4 {
        assert!(
            unsynced_damage > 0,
            "over {} seeds the crash model never lost or tore a write",
            seeds.len()
        );
    }
}

#[test]
fn same_seed_same_trace() {
    let nodes_text = tutorial_nodes();
    // Seed 11 caught a default account built with the simulator's randomness inside a
    // thread-local: the first run drew from the RNG, the replay did not (fixed in lang::users).
    // Seed 16 caught tokio's watch channel waking openraft's tasks in an order drawn from a
    // process-wide RNG, so only the first simulation in a process went its own way after a
    // kill (fixed with rt::watch).
    for seed in seeds_from_env(&[11, 12, 16]) {
        let text = nodes_text.clone();
        let trace = World::check_determinism(seed, move |world: World| {
            let text = text.clone();
            async move {
                world.set_network(Duration::from_millis(1)..Duration::from_millis(25), 0.0);
                let cluster = SimCluster::start(&world, &text);
                let client = world.create_idle_host("client", client_ip());
                let trace = cluster.trace.clone();
                let mut rng = Rng::new();
                let victim = cluster
                    .host_of(&format!("datanode{}", 1 + rng.below(3)))
                    .clone();
                let kill_after_ms = 50 + rng.below(100);
                trace.record(format!(
                    "plan kill {} after {kill_after_ms} ms",
                    victim.name()
                ));
                let nodes = cluster.nodes.clone();
                let probe = client.spawn(async move {
                    let mut seen = Vec::new();
                    for round in 0..4 {
                        for n in &nodes {
                            let up = health_alias(n.addr).await.is_some();
                            seen.push(format!(
                                "{} round {round} {} {}",
                                rt::time::unix_time_ms(),
                                n.site.alias,
                                up
                            ));
                        }
                    }
                    seen
                });
                rt::time::sleep(Duration::from_millis(kill_after_ms)).await;
                world.kill(&victim);
                trace.record(format!("killed {}", victim.name()));
                for line in probe.await.unwrap() {
                    trace.record(line);
                }
                trace.events()
            }
        });
        assert!(trace.len() > 10, "the scenario did something: {trace:?}");
    }
}
