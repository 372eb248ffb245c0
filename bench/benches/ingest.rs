//! Durable ingest of the tutorial's 1.21M rows on the local 3-host cluster: three controllers
//! and three data nodes on 127.0.0.80–82 from `configs/cluster/` (`dfsReplicationFactor=2`,
//! `dataSync=1`), each append one two-phase commit across two data nodes. The rows are
//! generated in the session first (the tutorial's Step 5 script up to `append!`); what is
//! timed is `loadTable(dbName, tbName).append!(t)` on `datanode1` through `POST /api/execute`,
//! answered only after the commit is recorded by the leader and every replica's redo log is
//! synced.
//!
//! Needs the release binary (`cargo build --release -p node`); the peers' durable ingest of the
//! same rows comes from `bash bench/compare.sh ingest duckdb` in the same run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const ROWS: u64 = 1_210_000;

/// `POST /api/execute` in session `session`; (session id, body).
fn execute(addr: SocketAddr, session: Option<&str>, script: &str) -> Option<(String, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(300))).ok()?;
    let header = session
        .map(|id| format!("X-Session: {id}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "POST /api/execute HTTP/1.1\r\nHost: x\r\n{header}Content-Length: {}\r\n\r\n{script}",
        script.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("X-Session: "))?
        .trim()
        .to_string();
    Some((id, body.to_string()))
}

fn ingest(c: &mut Criterion) {
    let _cluster = bench::cluster::Cluster::start(&bench::scratch("ingest-cluster"), false);
    let dn1: SocketAddr = "127.0.0.80:8802".parse().unwrap();
    let step5 =
        std::fs::read_to_string(bench::repo_root().join("lang/tests/scripts/tutorial_step5.dos"))
            .unwrap();
    let (setup, _) = step5.split_at(
        step5
            .find("dbName = \"dfs://testDB\"\ntbName = \"testTB\"\nloadTable")
            .unwrap(),
    );
    // The cluster is up when the create succeeds (every data node live, a leader elected).
    let deadline = Instant::now() + Duration::from_secs(60);
    let session = loop {
        if let Some((id, body)) = execute(dn1, None, setup) {
            if body.contains("\"ok\":true") {
                break id;
            }
        }
        assert!(Instant::now() < deadline, "the cluster did not come up");
        std::thread::sleep(Duration::from_millis(500));
    };
    let append = "loadTable(\"dfs://testDB\", \"testTB\").append!(t)";
    // The table exists before the data nodes are live (DDL needs only the leader): one
    // untimed append once placement can put the partition on two hosts.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = execute(dn1, Some(&session), append).expect("an answer");
        if body.contains("\"ok\":true") {
            break;
        }
        assert!(Instant::now() < deadline, "no append succeeded: {body}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut g = c.benchmark_group("ingest_cluster");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(ROWS));
    g.bench_function("append_1.21M_rf2_2pc_datasync", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let (_, body) = execute(dn1, Some(&session), append).expect("an answer");
                assert!(body.contains("\"ok\":true"), "{body}");
            }
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
