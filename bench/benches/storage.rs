//! Storage engine throughput on the real runtime (glommio, O_DIRECT, io_uring) with the
//! tutorial's 9-column data:
//! - `append_durable`: one append of 1,210,000 rows with dataSync=1, then a flush to column
//!   segments (comparable to DuckDB's insert + checkpoint);
//! - `scan_double` / `scan_symbol`: a full scan of LastPx / SecurityID, decompressed bytes/s;
//! - bytes on disk per row, printed after the append benchmark (segments + metadata);
//! - `redo_append/<mode>`: small appends (100 rows) through the redo log with dataSync=1, one
//!   writer (each waits for its group: the log's latency) and 64 concurrent writers (group
//!   commit: its throughput), with the log written through (`write_through`, the default) and
//!   written then fdatasynced (`write_then_sync`), in the same run.

use std::time::Duration;

use bench::tutorial;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use storage::{Engine, EngineConfig};

fn on_runtime<T: Send + 'static>(
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>>
        + Send
        + Sync
        + Clone
        + 'static,
) -> T {
    rt::Runtime::new("bench")
        .run(move |_s: rt::shard::Shard<()>| (f.clone())())
        .expect("runtime")
        .pop()
        .expect("one shard")
}

fn config(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::in_dir(dir);
    c.data_sync = true;
    c.cache_bytes_max = 2 << 30; // OLAPCacheEngineSize=2, as in the tutorial's cluster.cfg
    c
}

fn append(c: &mut Criterion) {
    let batch = tutorial::day(0, 1);
    let rows = batch.rows() as u64;
    let mut g = c.benchmark_group("storage");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(rows));
    g.bench_function(BenchmarkId::new("append_durable", rows), |b| {
        b.iter_custom(|iters| {
            let batch = batch.clone();
            on_runtime(move || {
                let batch = batch.clone();
                Box::pin(async move {
                    let mut total = Duration::ZERO;
                    for i in 0..iters {
                        let dir = bench::scratch(&format!("append-{i}"));
                        let engine = Engine::open(config(&dir)).await.unwrap();
                        engine.create_chunk(1, tutorial::schema()).await.unwrap();
                        let start = rt::time::now();
                        engine.append(1, batch.clone()).await.unwrap();
                        engine.flush().await.unwrap();
                        total += rt::time::now() - start;
                        if i == 0 {
                            let bytes = bench::disk_bytes(&dir.join("storage"));
                            eprintln!(
                                "storage footprint: {bytes} bytes for {rows} rows = {:.2} bytes/row on disk",
                                bytes as f64 / rows as f64
                            );
                        }
                        drop(engine);
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                    total
                })
            })
        })
    });
    g.finish();
}

fn scans(c: &mut Criterion) {
    let batch = tutorial::day(0, 1);
    let rows = batch.rows() as u64;
    let dir = bench::scratch("scan");
    {
        let dir = dir.clone();
        on_runtime(move || {
            let (dir, batch) = (dir.clone(), batch.clone());
            Box::pin(async move {
                let engine = Engine::open(config(&dir)).await.unwrap();
                engine.create_chunk(1, tutorial::schema()).await.unwrap();
                engine.append(1, batch).await.unwrap();
                engine.flush().await.unwrap();
            })
        });
    }
    let mut g = c.benchmark_group("storage");
    g.sample_size(20);
    for (name, col, width) in [("scan_double", 6usize, 8u64), ("scan_symbol", 0usize, 4u64)] {
        g.throughput(Throughput::Bytes(rows * width));
        let dir = dir.clone();
        g.bench_function(BenchmarkId::new(name, rows), move |b| {
            let dir = dir.clone();
            b.iter_custom(move |iters| {
                let dir = dir.clone();
                on_runtime(move || {
                    let dir = dir.clone();
                    Box::pin(async move {
                        let engine = Engine::open(config(&dir)).await.unwrap();
                        let start = rt::time::now();
                        for _ in 0..iters {
                            let cols = engine.scan(1, &[col]).await.unwrap();
                            assert_eq!(cols[0].len() as u64, rows);
                        }
                        rt::time::now() - start
                    })
                })
            })
        });
    }
    g.finish();
}

/// Small durable appends through the redo log: `writers` concurrent appenders, `per_writer`
/// appends of `batch` each, on a fresh engine; returns the time for all of them.
async fn redo_appends(write_through: bool, writers: usize, per_writer: usize) -> Duration {
    let dir = bench::scratch(&format!("redo-{write_through}-{writers}"));
    let mut cfg = config(&dir);
    cfg.redo_write_through = write_through;
    let engine = std::rc::Rc::new(Engine::open(cfg).await.unwrap());
    let day = tutorial::day(0, 1);
    // 100 rows; the SYMBOL column gets a base of its own 100 values (a slice keeps the day's
    // 5,000-symbol base, which every log record would then carry).
    let batch = storage::Batch {
        columns: day
            .columns
            .iter()
            .map(|c| match c.ty {
                storage::types::DataType::Symbol => {
                    let ids: Vec<Vec<u8>> = (0..100)
                        .map(|i| c.bytes_at(i).expect("a symbol").to_vec())
                        .collect();
                    storage::column::Column::from_strings(c.ty, &ids)
                }
                _ => c.slice(0, 100),
            })
            .collect(),
    };
    for w in 0..writers {
        engine
            .create_chunk(w as u64 + 1, tutorial::schema())
            .await
            .unwrap();
    }
    let start = rt::time::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (engine, batch) = (engine.clone(), batch.clone());
            rt::task::spawn_local(async move {
                for _ in 0..per_writer {
                    engine.append(w as u64 + 1, batch.clone()).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("a writer finishes");
    }
    let took = rt::time::now() - start;
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
    took
}

fn redo(c: &mut Criterion) {
    let mut g = c.benchmark_group("storage/redo_append");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for (writers, per_writer) in [(1usize, 200usize), (64, 20)] {
        g.throughput(Throughput::Elements((writers * per_writer) as u64));
        for (mode, write_through) in [("write_through", true), ("write_then_sync", false)] {
            g.bench_function(BenchmarkId::new(mode, format!("{writers}_writers")), |b| {
                b.iter_custom(|iters| {
                    on_runtime(move || {
                        Box::pin(async move {
                            let mut total = Duration::ZERO;
                            for _ in 0..iters {
                                total += redo_appends(write_through, writers, per_writer).await;
                            }
                            total
                        })
                    })
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, append, scans, redo);
criterion_main!(benches);
