//! The tutorial's Q1 and Q2 (as in `query.rs`) on the local 3-host cluster: 3 controllers,
//! 3 data nodes (`workerNum` from the tutorial's `cluster.cfg`) and 3 compute nodes on
//! 127.0.0.80–82, all on this one machine. Each query is sent by the Rust client to
//! `computenode1`, which plans it and sends one task per data node (ARCHITECTURE D86); what is
//! timed is the request through the client protocol until the whole result has arrived, as a
//! DolphinDB user's query is.
//!
//! Data: `dfs://bench1d` (1 day, 1.21M rows) and `dfs://bench20d` (20 days, 24.2M rows), VALUE
//! partitioned by day, replication factor 2 (the tutorial's `cluster.cfg`), appended once
//! through `datanode1` and kept under `target/bench-scratch/cluster-query` for later runs.
//!
//! Needs the release binary (`cargo build --release -p node`); the peers' figures come from
//! `bash bench/compare.sh query duckdb,chdb,polars` in the same run.

use std::rc::Rc;
use std::time::Duration;

use bench::cluster::Cluster;
use bench::tutorial;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use value::Value;

const Q1: &str = "select count(*) from pt group by date(DateTime)";
const Q2: &str = "select first(LastPx) as Open, max(LastPx) as High, min(LastPx) as Low, last(LastPx) as Close from pt group by date(DateTime) as Date, SecurityID";
const DAYS: [u32; 2] = [1, 20];

fn database(days: u32) -> String {
    format!("dfs://bench{days}d")
}

/// Appends `days` days of the tutorial's data to a new `database(days)` through `datanode1`.
fn load(cluster: &Cluster, days: u32) {
    let db = database(days);
    let mut c = cluster.session(
        "127.0.0.80:8802",
        &format!(
            "if (existsDatabase(\"{db}\")) dropDatabase(\"{db}\")
             db = database(\"{db}\", VALUE, 2023.01.08..2023.01.08)"
        ),
    );
    for day in 0..days {
        let t = tutorial::day_table(day, 1);
        c.upload(&[("t", Value::Table(Rc::new(t)))]).unwrap();
        let script = if day == 0 {
            "pt = createPartitionedTable(db, t, `pt, `DateTime)
             pt.append!(t)"
                .to_string()
        } else {
            "pt.append!(t)".to_string()
        };
        // An append can meet a data node not yet live after the start: retried, as a client
        // would, until placement finds two hosts.
        let mut tries = 0;
        while let Err(e) = c.run(&script) {
            tries += 1;
            assert!(tries < 60, "append of day {day} to {db}: {e}");
            std::thread::sleep(Duration::from_millis(500));
            if day == 0 && e.to_string().contains("exists") {
                c.run("pt = loadTable(db, `pt)").unwrap();
                break;
            }
        }
    }
    let got = c.run("exec count(*) from pt").unwrap();
    assert_eq!(
        got,
        Value::int(days as i64 * tutorial::ROWS_PER_DAY as i64),
        "{db} holds every appended row"
    );
}

fn cluster_query(c: &mut Criterion) {
    let root = bench::repo_root().join("target/bench-scratch/cluster-query");
    let marker = root.join("loaded");
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&root);
    }
    let cluster = Cluster::start(&root, true);
    if !marker.exists() {
        for days in DAYS {
            load(&cluster, days);
        }
        std::fs::write(&marker, "1\n20\n").unwrap();
    }
    let mut g = c.benchmark_group("query_cluster");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for days in DAYS {
        let db = database(days);
        let mut s = cluster.session(
            "127.0.0.80:8803",
            &format!("pt = loadTable(\"{db}\", `pt)\nselect count(*) from pt"),
        );
        let rows = days as u64 * tutorial::ROWS_PER_DAY as u64;
        g.throughput(Throughput::Elements(rows));
        for (name, q) in [("q1", Q1), ("q2", Q2)] {
            // The answer is checked once: Q1 has a row per day, Q2 a bar per security per day.
            let want = if name == "q1" { days } else { days * 5000 } as usize;
            match s.run(q).unwrap() {
                Value::Table(t) => assert_eq!(t.rows(), want, "{name} over {days} days"),
                other => panic!("{name} answered {other:?}"),
            }
            g.bench_with_input(BenchmarkId::new(name, format!("{days}d")), &q, |b, q| {
                b.iter(|| s.run(q).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, cluster_query);
criterion_main!(benches);
