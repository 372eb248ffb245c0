//! Metadata commits on a 3-controller Raft group on loopback (127.0.0.80-82), beside the fsync
//! latency of the same disk, all in one run:
//! - `fsync_4k`: one 4 KiB O_DIRECT write + fdatasync in the group's directory — the floor of a
//!   durable commit;
//! - `dsync_4k`: the same on a write-through (O_DSYNC) file, one I/O instead of two, as the
//!   Raft log writes with `dataSync=1`;
//! - `write_4k`: the O_DIRECT write alone, no fdatasync (what a `dataSync=0` flush pays);
//! - `fsync_4k_x3_concurrent`: the same by three writers at once (per-write latency), which is
//!   what each controller's flush costs here, where all three share one disk;
//! - `rpc_roundtrip`: one node-RPC round trip to a controller (the transport floor of a hop);
//! - `tcp_roundtrip`: the same hop on plain `rt::net` TCP, a 32-byte echo between two
//!   executors (the runtime's floor under node RPC);
//! - `rpc_64_calls/64_conns` and `rpc_64_calls/1_conn`: 64 concurrent calls that only cross
//!   the transport, on a connection each and multiplexed over one (calls/s);
//! - `commit/1_client`: one client writing `SetConfig` commands one after another (each is
//!   acknowledged after a majority has it durably, with `dataSync=1`, and it is applied);
//! - `floor/1_client`: the same commit with Raft taken out — a leader that sends the entry to
//!   both followers, writes it write-through itself, and answers when two of the three writes
//!   are durable (`raft/floor.rs`): what the hardware and transport alone ask of a commit;
//! - `commit/64_clients`: 64 concurrent clients, each on a connection of its own; openraft
//!   batches their entries into shared appends and fsyncs, so throughput is reported in
//!   commits/s;
//! - `commit/64_clients_4_conns`: the same 64 clients calling through 4 multiplexed node-RPC
//!   connections (16 each), as nodes relay their sessions' changes to the leader.
//!
//! Each controller runs on its own thread with its own glommio executor, as three processes
//! would; clients run on the bench thread's executor and talk node RPC over TCP.
//!
//! - `meta_check/<n>_chunks`: one full check of the metadata's invariants over `n` chunks,
//!   what each applied command costs in release builds up to `CHECK_EACH_APPLY_CHUNKS_MAX`.
//!
//! `BENCH_DATASYNC=0` starts the group with `dataSync=0` (no fdatasync): the commit figures of
//! such a run are the cost of everything but the flush, which is how the figures are split into
//! disk and the rest.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use node::config::{self, ConfigFile, Entry, Source};
use node::controller::meta::Command;
use node::controller::raft::{net, Reply};
use node::controller::service::method;
use node::log::Logger;
use node::rpc::{RpcClient, RpcClientConfig, RpcError};
use rt::raft::openraft_rt::AsyncRuntime;
use rt::raft::RaftRt;

#[path = "raft/floor.rs"]
mod floor;

const PORT: u16 = 18800;
const HOSTS: [&str; 3] = ["127.0.0.80", "127.0.0.81", "127.0.0.82"];

fn scratch() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-scratch/raft")
}

fn nodes_text() -> String {
    let mut t = String::from("localSite,mode\n");
    for (i, h) in HOSTS.iter().enumerate() {
        t.push_str(&format!("{h}:{PORT}:controller{},controller\n", i + 1));
    }
    t
}

/// Starts controller `i` on its own thread (it runs until the process exits).
fn start_controller(i: usize) {
    let home = scratch();
    std::thread::spawn(move || {
        let entry = |key: &str, value: String| Entry {
            alias_pattern: None,
            key: key.into(),
            value,
            line: 0,
        };
        let cfg = ConfigFile {
            source: Source::CommandLine,
            entries: vec![
                entry("mode", "controller".into()),
                entry(
                    "localSite",
                    format!("{}:{PORT}:controller{}", HOSTS[i], i + 1),
                ),
                entry("dfsHAMode", "Raft".into()),
                entry(
                    "dataSync",
                    std::env::var("BENCH_DATASYNC").unwrap_or("1".into()),
                ),
                entry("lanCluster", "false".into()),
            ],
        };
        let settings = config::resolve(&home, &[cfg]).expect("controller settings");
        let nodes = config::nodes::parse(Source::File("cluster.nodes".into()), &nodes_text())
            .expect("cluster.nodes");
        let _ = rt::Runtime::new(format!("controller{}", i + 1))
            .io_memory_bytes(512 << 10)
            .run(move |_s: rt::shard::Shard<()>| {
                let settings = Rc::new(settings.clone());
                let nodes = nodes.clone();
                async move {
                    let log = Logger::silent(settings.alias());
                    let opts = node::start::StartOptions::default();
                    node::start::start(settings, Some(&nodes), log, opts)
                        .await
                        .expect("a controller starts");
                }
            });
    });
}

fn addrs() -> Vec<SocketAddr> {
    HOSTS
        .iter()
        .map(|h| format!("{h}:{PORT}").parse().unwrap())
        .collect()
}

fn rpc_cfg() -> RpcClientConfig {
    RpcClientConfig {
        connect_timeout: Duration::from_secs(2),
        call_timeout: Duration::from_secs(10),
        inflight_max: 4,
    }
}

/// A client bound to the leader (found by following `<NotLeader>`).
async fn leader_client() -> RpcClient {
    let probe = net::encode(&Command::SetConfig {
        controller: false,
        key: "bench.probe".into(),
        value: "1".into(),
    });
    for _ in 0..600 {
        for a in addrs() {
            let c = RpcClient::new(a, rpc_cfg());
            match c.call(method::META_WRITE, probe.clone()).await {
                Ok(_) => return c,
                Err(RpcError::Remote(e)) if e.retry() != node::error::Retry::Never => {}
                Err(_) => {}
            }
        }
        rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader among {:?}", addrs());
}

async fn commit(c: &RpcClient, client: usize, i: u64) {
    let cmd = Command::SetConfig {
        controller: false,
        key: format!("bench.{client}"),
        value: i.to_string(),
    };
    let reply = c
        .call(method::META_WRITE, net::encode(&cmd))
        .await
        .expect("commit");
    let r: Reply = net::decode(&reply).unwrap();
    assert!(r.is_ok(), "{r:?}");
}

/// `iters` commits by each of 64 concurrent clients, spread over `conns` connections; returns
/// the time they took together.
async fn concurrent_commits(leader: SocketAddr, conns: usize, iters: u64) -> Duration {
    let cfg = RpcClientConfig {
        inflight_max: 64,
        ..rpc_cfg()
    };
    let conns: Vec<Rc<RpcClient>> = (0..conns)
        .map(|_| Rc::new(RpcClient::new(leader, cfg)))
        .collect();
    for (k, cl) in conns.iter().enumerate() {
        commit(cl, k, 0).await; // connect outside the timing
    }
    let t = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|k| {
            let cl = conns[k % conns.len()].clone();
            rt::task::spawn_local(async move {
                for i in 0..iters {
                    commit(&cl, k, i).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    t.elapsed()
}

/// `iters` 4 KiB writes, each followed by an fdatasync when `sync`: over the first 256 blocks
/// again and again (`in_place`), or each one past the end of the file.
async fn write_and_sync(f: &rt::disk::File, iters: u64, in_place: bool, sync: bool) {
    let block = vec![7u8; rt::disk::ALIGN];
    for i in 0..iters {
        let block_no = if in_place { i % 256 } else { i };
        f.write_at(block_no * rt::disk::ALIGN as u64, &block)
            .await
            .unwrap();
        if sync {
            f.sync().await.unwrap();
        }
    }
}

/// Times [`write_and_sync`] on `f`, then closes it.
async fn timed_writes(f: rt::disk::File, iters: u64, in_place: bool, sync: bool) -> Duration {
    let t = Instant::now();
    write_and_sync(&f, iters, in_place, sync).await;
    let d = t.elapsed();
    f.close().await.unwrap();
    d
}

fn benches(c: &mut Criterion) {
    let _ = std::fs::remove_dir_all(scratch());
    std::fs::create_dir_all(scratch()).unwrap();
    for i in 0..3 {
        start_controller(i);
        floor::start_replica(i, scratch());
    }
    floor::start_echo();
    let mut exec = RaftRt::new(1);
    let leader_addr = exec.block_on(async { leader_client().await.peer() });

    let mut g = c.benchmark_group("raft");
    g.sample_size(20).measurement_time(Duration::from_secs(10));

    // The floor of every hop: one node-RPC round trip to a controller (an unknown method, so
    // nothing but the transport and dispatch is measured).
    g.bench_function("rpc_roundtrip", |b| {
        b.iter_custom(|iters| {
            exec.block_on(async {
                let cl = RpcClient::new(leader_addr, rpc_cfg());
                let _ = cl.call(999, Vec::new()).await;
                let t = Instant::now();
                for _ in 0..iters {
                    let _ = cl.call(999, Vec::new()).await;
                }
                t.elapsed()
            })
        })
    });

    // The same hop without node RPC: a 32-byte echo over plain `rt::net` TCP between two
    // executors (compare with bench/probes/loopback_rtt.c, the same with blocking threads).
    g.bench_function("tcp_roundtrip", |b| {
        b.iter_custom(|iters| {
            exec.block_on(async {
                let mut s = rt::net::TcpStream::connect(floor::echo_addr(), Duration::from_secs(2))
                    .await
                    .expect("echo server");
                let _ = s.set_nodelay(true);
                let mut msg = [7u8; floor::ECHO_BYTES];
                let t = Instant::now();
                for _ in 0..iters {
                    s.write_all(&msg).await.unwrap();
                    s.read_exact(&mut msg).await.unwrap();
                }
                t.elapsed()
            })
        })
    });

    // 64 concurrent calls that do nothing but cross the transport (an unknown method), on 64
    // connections and multiplexed over one: what the node-RPC layer itself batches (D57).
    g.throughput(Throughput::Elements(64));
    for (name, conns) in [("rpc_64_calls/64_conns", 64), ("rpc_64_calls/1_conn", 1)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                exec.block_on(async {
                    let cfg = RpcClientConfig {
                        inflight_max: 64,
                        ..rpc_cfg()
                    };
                    let clients: Vec<Rc<RpcClient>> = (0..conns)
                        .map(|_| Rc::new(RpcClient::new(leader_addr, cfg)))
                        .collect();
                    for cl in &clients {
                        let _ = cl.call(999, Vec::new()).await;
                    }
                    let t = Instant::now();
                    let tasks: Vec<_> = (0..64)
                        .map(|k| {
                            let cl = clients[k % conns].clone();
                            rt::task::spawn_local(async move {
                                for _ in 0..iters {
                                    let _ = cl.call(999, Vec::new()).await;
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                    t.elapsed()
                })
            })
        });
    }

    let fsync_path = scratch().join("fsync-probe");
    g.throughput(Throughput::Elements(1));
    g.bench_function("fsync_4k", |b| {
        b.iter_custom(|iters| {
            exec.block_on(async {
                let f = rt::disk::File::open(&fsync_path, rt::disk::OpenMode::CreateOrOpen)
                    .await
                    .unwrap();
                timed_writes(f, iters, true, true).await
            })
        })
    });

    // The same durable write as one I/O: a write-through (O_DSYNC) file, as the log opens with
    // dataSync=1 (ARCHITECTURE D58).
    let dsync_path = scratch().join("dsync-probe");
    g.bench_function("dsync_4k", |b| {
        b.iter_custom(|iters| {
            exec.block_on(async {
                let f = rt::disk::File::open_write_through(
                    &dsync_path,
                    rt::disk::OpenMode::CreateOrOpen,
                )
                .await
                .unwrap();
                timed_writes(f, iters, true, true).await // its sync is a no-op
            })
        })
    });

    // The write alone, without the fdatasync: what every log flush pays even with dataSync=0.
    let write_path = scratch().join("write-probe");
    g.bench_function("write_4k", |b| {
        b.iter_custom(|iters| {
            exec.block_on(async {
                let f = rt::disk::File::open(&write_path, rt::disk::OpenMode::CreateOrOpen)
                    .await
                    .unwrap();
                write_and_sync(&f, 256, true, false).await; // the blocks exist before timing
                timed_writes(f, iters, true, false).await
            })
        })
    });

    // The same at the end of a growing file: the size changes with every write, so each
    // fdatasync also commits file metadata (what a log that is not preallocated pays).
    let grow_path = scratch().join("fsync-grow");
    g.bench_function("fsync_4k_growing", |b| {
        b.iter_custom(|iters| {
            exec.block_on(async {
                let _ = rt::disk::remove(&grow_path).await;
                let f = rt::disk::File::open(&grow_path, rt::disk::OpenMode::CreateNew)
                    .await
                    .unwrap();
                timed_writes(f, iters, false, true).await
            })
        })
    });

    // Three flushers at once on the same disk: what each controller's log flush costs when
    // all three controllers of this loopback group share one device (as they do here).
    let dir = scratch();
    g.bench_function("fsync_4k_x3_concurrent", |b| {
        b.iter_custom(|iters| {
            exec.block_on(async {
                let mut files = Vec::new();
                for k in 0..3 {
                    let p = dir.join(format!("fsync-probe-{k}"));
                    files.push(Rc::new(
                        rt::disk::File::open(&p, rt::disk::OpenMode::CreateOrOpen)
                            .await
                            .unwrap(),
                    ));
                }
                let t = Instant::now();
                let tasks: Vec<_> = files
                    .iter()
                    .map(|f| {
                        let f = f.clone();
                        rt::task::spawn_local(
                            async move { write_and_sync(&f, iters, true, true).await },
                        )
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                t.elapsed()
            })
        })
    });

    g.bench_function("commit/1_client", |b| {
        b.iter_custom(|iters| {
            exec.block_on(async {
                let cl = RpcClient::new(leader_addr, rpc_cfg());
                commit(&cl, 0, 0).await; // connect outside the timing
                let t = Instant::now();
                for i in 0..iters {
                    commit(&cl, 0, i).await;
                }
                t.elapsed()
            })
        })
    });

    // The same commit without Raft: the transport and disk floor of any 3-way replicated
    // commit here (see floor.rs).
    g.bench_function("floor/1_client", |b| {
        b.iter_custom(|iters| {
            exec.block_on(async {
                let cl = floor::leader_client().await;
                let t = Instant::now();
                for _ in 0..iters {
                    floor::commit(&cl).await;
                }
                t.elapsed()
            })
        })
    });

    const CLIENTS: usize = 64;
    g.throughput(Throughput::Elements(CLIENTS as u64));
    // Each client on a connection of its own, and the same 64 clients calling through 4 node
    // connections (16 each), the way a node relays its sessions' metadata changes to the
    // leader over its one multiplexed connection.
    for (name, conns) in [
        ("commit/64_clients", CLIENTS),
        ("commit/64_clients_4_conns", 4),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| exec.block_on(concurrent_commits(leader_addr, conns, iters)))
        });
    }
    g.finish();
}

/// A metadata state with one database, one table and `chunks` partitions of one chunk each.
fn meta_with_chunks(chunks: usize) -> node::controller::meta::Meta {
    use node::controller::meta::{Meta, Role};
    let mut m = Meta::new();
    let setup = [
        Command::RegisterNode {
            alias: "dnode1".into(),
            host: "127.0.0.80".into(),
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
    ];
    for c in setup {
        m.apply(&c).expect("setup applies");
    }
    for i in 0..chunks {
        m.apply(&Command::AddPartition {
            db: "dfs://testDB".into(),
            table: "testTB".into(),
            partition: format!("p{i:08}"),
            replicas: vec!["dnode1".into()],
        })
        .expect("a partition is added");
    }
    assert_eq!(m.chunks.len(), chunks);
    m
}

fn meta_check(c: &mut Criterion) {
    let mut g = c.benchmark_group("raft/meta_check");
    for chunks in [1_000usize, 10_000] {
        let m = meta_with_chunks(chunks);
        g.bench_function(format!("{chunks}_chunks"), |b| {
            b.iter(|| m.check().expect("consistent"))
        });
    }
    g.finish();
}

criterion_group!(raft, benches, meta_check);
criterion_main!(raft);
