//! The time-series library on the tutorial's data, in memory on one core (issue 19):
//! - `mavg20`: a 20-row moving average per security over 20 days (24.2M rows),
//!   `select SecurityID, DateTime, mavg(LastPx, 20) as ma from t context by SecurityID`;
//! - `aj`: an as-of join of one day's trades (1.21M rows) to quotes stamped 20 seconds before
//!   each minute (1.21M rows), `aj(trades, quotes, `SecurityID`DateTime)`;
//! - `bars5m`: 5-minute OHLC bars per security over 20 days, `select first(LastPx) ... from t
//!   group by SecurityID, bar(DateTime, 5m)`.
//!
//! The peers do the same work on the same data shape (`bench/ts_peers.py`: Polars'
//! `rolling_mean().over()`, `join_asof`, `dt.truncate`; DuckDB's window `AVG`, `ASOF JOIN`,
//! `time_bucket`): `bash bench/compare.sh timeseries duckdb,polars`.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bench::tutorial;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lang::eval::{Interp, Table, Value};

const MAVG: &str =
    "select SecurityID, DateTime, mavg(LastPx, 20) as ma from t context by SecurityID";
const AJ: &str = "aj(trades, quotes, `SecurityID`DateTime)";
const BARS: &str = "select first(LastPx) as Open, max(LastPx) as High, min(LastPx) as Low, last(LastPx) as Close from t group by SecurityID, bar(DateTime, 5m) as Bar";

/// `days` days of the tutorial's table, appended in day order.
fn table(days: u32) -> Table {
    let schema = tutorial::schema();
    let mut columns: Vec<(String, storage::column::Column)> = Vec::new();
    for day in 0..days {
        let batch = tutorial::day(day, 1);
        if columns.is_empty() {
            columns = schema
                .columns
                .iter()
                .map(|(n, _)| n.clone())
                .zip(batch.columns)
                .collect();
        } else {
            for ((_, c), b) in columns.iter_mut().zip(batch.columns) {
                c.append(&b).unwrap();
            }
        }
    }
    Table { columns }
}

/// One day's quotes: each trade's row 20 seconds earlier, its price as the bid.
fn quotes(trades: &Table) -> Table {
    let pick = |n: &str| trades.column(n).unwrap().clone();
    let storage::column::ColumnData::I32(t) = &pick("DateTime").data else {
        unreachable!("DATETIME is i32")
    };
    let shifted = storage::column::Column {
        ty: storage::types::DataType::DateTime,
        data: storage::column::ColumnData::I32(t.iter().map(|x| x - 20).collect()),
    };
    Table {
        columns: vec![
            ("SecurityID".into(), pick("SecurityID")),
            ("DateTime".into(), shifted),
            ("Bid".into(), pick("OpenPx")),
        ],
    }
}

fn run(it: &mut Interp, q: &str, iters: u64) -> Duration {
    it.run_now(q).unwrap();
    let start = Instant::now();
    for _ in 0..iters {
        std::hint::black_box(it.run_now(q).unwrap());
    }
    start.elapsed()
}

fn timeseries(c: &mut Criterion) {
    let mut it = Interp::new(1);
    let twenty = Rc::new(table(20));
    let one = Rc::new(table(1));
    it.set("t", Value::Table(twenty));
    it.set("quotes", Value::Table(Rc::new(quotes(&one))));
    it.set("trades", Value::Table(one));
    let mut g = c.benchmark_group("timeseries");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for (name, q, rows) in [
        ("mavg20", MAVG, 20 * tutorial::ROWS_PER_DAY),
        ("aj", AJ, tutorial::ROWS_PER_DAY),
        ("bars5m", BARS, 20 * tutorial::ROWS_PER_DAY),
    ] {
        g.throughput(Throughput::Elements(rows as u64));
        g.bench_function(BenchmarkId::new(name, rows), |b| {
            b.iter_custom(|iters| run(&mut it, q, iters));
        });
    }
    g.finish();
}

criterion_group!(benches, timeseries);
criterion_main!(benches);
