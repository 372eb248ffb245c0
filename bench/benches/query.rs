//! The tutorial's queries over a `dfs://` table on the real runtime (glommio, O_DIRECT):
//! - `q1`: `select count(*) from pt group by date(DateTime)`;
//! - `q2`: the OHLC bars, `select first(LastPx) as Open, max(LastPx) as High, min(LastPx) as
//!   Low, last(LastPx) as Close from pt group by date(DateTime) as Date, SecurityID`;
//!
//! each on one shard and on one shard per core (`_1shard`, `_2shard`: the single node deals a
//! query's partitions over its shards, ARCHITECTURE D88), over 1 day (1.21M rows) and 20 days
//! (24.2M rows) of the tutorial's data, loaded once into
//! `target/bench-scratch/query-<days>d` (VALUE-partitioned by day, as the tutorial's
//! database). Each measurement runs the script through the interpreter, as a client's query
//! would, after one warm-up run. The peers run the same queries on the same data shape:
//! `bash bench/compare.sh query duckdb,chdb,polars`.

use std::rc::Rc;
use std::time::Duration;

use bench::tutorial;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lang::catalog::Catalog;
use lang::eval::Interp;

const Q1: &str = "select count(*) from pt group by date(DateTime)";
const Q2: &str = "select first(LastPx) as Open, max(LastPx) as High, min(LastPx) as Low, last(LastPx) as Close from pt group by date(DateTime) as Date, SecurityID";

fn dir(days: u32) -> std::path::PathBuf {
    bench::repo_root()
        .join("target")
        .join("bench-scratch")
        .join(format!("query-{days}d"))
}

/// The single node of `dir(days)`, opened as `porpoise -mode single` opens it (a one-node
/// cluster, ARCHITECTURE D71), with the tutorial's table loaded on first use.
async fn open(days: u32, shards: usize) -> (Rc<dyn Catalog>, Rc<node::datanode::DataNodeService>) {
    let d = dir(days);
    let marker = d.join("loaded");
    let fresh = !marker.exists();
    if fresh {
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
    }
    // workerNum is the shard count, as `porpoise` runs it (the span cache is shared out).
    let cmdline = node::config::kv::parse(
        node::config::Source::CommandLine,
        &format!(
            "mode=single\nlocalSite=127.0.0.1:18999:bench1\nOLAPCacheEngineSize=2\nworkerNum={shards}\n"
        ),
    )
    .unwrap();
    let settings = node::config::resolve(&d, &[cmdline]).unwrap();
    let log = node::log::Logger::silent("bench1");
    let one = node::single::open(&settings, &log, Default::default())
        .await
        .unwrap();
    let dfs = one.catalog;
    let datanode = one.datanode;
    if fresh {
        let by_day = lang::partition::Scheme::Value {
            ty: storage::types::DataType::Date,
            keys: Vec::new(),
        };
        dfs.database("dfs://bench", Some(by_day)).await.unwrap();
        let schema = tutorial::schema();
        dfs.create_table(
            "dfs://bench",
            "pt",
            schema.clone(),
            &["DateTime".to_string()],
        )
        .await
        .unwrap();
        for day in 0..days {
            let t = tutorial::day_table(day, 1);
            dfs.append("dfs://bench", "pt", &t).await.unwrap();
        }
        // Steady state: the rows are in column files, as after the cache engine's flush.
        dfs.flush().await.unwrap();
        std::fs::write(&marker, b"").unwrap();
    }
    (dfs, datanode)
}

/// One measurement of `q` over `days` days on a runtime of `shards` shards (shard 0 serves the
/// single node, the others compute its query tasks, as `porpoise` runs with `workerNum` cores).
fn measure(days: u32, q: &'static str, shards: usize, iters: u64) -> Duration {
    rt::Runtime::new("bench")
        .shards(shards)
        .run(
            move |shard: rt::shard::Shard<node::workers::Work>| async move {
                if shard.id() > 0 {
                    node::workers::serve(shard).await;
                    return None;
                }
                let count = shard.count();
                let workers = (count > 1).then(|| node::workers::Workers::start(shard));
                let (dfs, datanode) = open(days, count).await;
                if let Some(w) = &workers {
                    datanode.use_workers(w.clone());
                }
                let mut it = Interp::new(1);
                it.dfs = Some(dfs);
                it.run("login(`admin, `123456)\npt = loadTable(\"dfs://bench\", \"pt\")")
                    .await
                    .unwrap();
                it.run(q).await.unwrap();
                let start = rt::time::now();
                for _ in 0..iters {
                    std::hint::black_box(it.run(q).await.unwrap());
                }
                let took = rt::time::now() - start;
                if let Some(w) = &workers {
                    w.stop().await;
                }
                Some(took)
            },
        )
        .expect("runtime")
        .into_iter()
        .flatten()
        .next()
        .expect("shard 0 measured")
}

fn query(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for days in [1u32, 20] {
        let rows = days as u64 * tutorial::ROWS_PER_DAY as u64;
        let mut g = c.benchmark_group(format!("query_{days}d"));
        g.sample_size(10)
            .measurement_time(Duration::from_secs(if days == 1 { 5 } else { 15 }))
            .throughput(Throughput::Elements(rows));
        for (name, q) in [("q1", Q1), ("q2", Q2)] {
            // One shard, then every core: the same data, the same run.
            let mut counts = vec![1];
            if cores > 1 {
                counts.push(cores);
            }
            for shards in counts {
                g.bench_function(
                    BenchmarkId::new(format!("{name}_{shards}shard"), rows),
                    |b| {
                        b.iter_custom(|iters| measure(days, q, shards, iters));
                    },
                );
            }
        }
        g.finish();
    }
}

criterion_group!(benches, query);
criterion_main!(benches);
