//! The tutorial's data (Step 5), generated the way `../shared/peers/peer_bench.py` does: per
//! day 5000 securities x 242 minutes, sorted by (SecurityID, DateTime); prices drawn from 100
//! random values, volumes from 100 random values, `Amount = round(LastPx * Volume, 2)`.

use rt::rand::Rng;
use storage::column::{Column, ColumnData};
use storage::types::DataType;
use storage::{Batch, Schema};

/// Rows per day: 5000 securities x 242 minutes = 1,210,000.
pub const ROWS_PER_DAY: usize = 5000 * 242;

/// The tutorial's 9-column schema.
pub fn schema() -> Schema {
    Schema::new(&[
        ("SecurityID", DataType::Symbol),
        ("DateTime", DataType::DateTime),
        ("PreClosePx", DataType::Double),
        ("OpenPx", DataType::Double),
        ("HighPx", DataType::Double),
        ("LowPx", DataType::Double),
        ("LastPx", DataType::Double),
        ("Volume", DataType::Int),
        ("Amount", DataType::Double),
    ])
}

/// [`day`] as a table with the tutorial's column names.
pub fn day_table(day: u32, seed: u64) -> value::Table {
    value::Table {
        columns: schema()
            .columns
            .iter()
            .map(|(n, _)| n.clone())
            .zip(self::day(day, seed).columns)
            .collect(),
    }
}

/// One day of data starting at 2023.01.08 + `day`.
pub fn day(day: u32, seed: u64) -> Batch {
    let mut rng = Rng::with_seed(seed ^ (day as u64).wrapping_mul(0x9E37_79B9));
    let rand_price: Vec<f64> = (0..100)
        .map(|_| ((10.0 + rng.below(1_000_000) as f64 / 1e6) * 100.0).round() / 100.0)
        .collect();
    let rand_volume: Vec<i32> = (0..100).map(|_| 100 + rng.below(100) as i32).collect();
    // 2023-01-08T00:00:00Z in seconds since the epoch.
    let day_start = 1_673_136_000i64 + day as i64 * 86_400;
    let minutes: Vec<i32> = (0..121)
        .map(|m| (day_start + 9 * 3600 + 30 * 60 + m * 60) as i32)
        .chain((0..121).map(|m| (day_start + 13 * 3600 + m * 60) as i32))
        .collect();
    let securities: Vec<String> = (0..5000).map(|i| format!("{i:06}")).collect();
    let mut ids = Vec::with_capacity(ROWS_PER_DAY);
    let mut times = Vec::with_capacity(ROWS_PER_DAY);
    for s in &securities {
        for t in &minutes {
            ids.push(s.as_str());
            times.push(*t);
        }
    }
    let mut price = || {
        (0..ROWS_PER_DAY)
            .map(|_| rand_price[rng.below(100) as usize])
            .collect::<Vec<f64>>()
    };
    let (pre, open, high, low, last) = (price(), price(), price(), price(), price());
    let volume: Vec<i32> = (0..ROWS_PER_DAY)
        .map(|_| rand_volume[rng.below(100) as usize])
        .collect();
    let amount: Vec<f64> = last
        .iter()
        .zip(&volume)
        .map(|(p, v)| (p * *v as f64 * 100.0).round() / 100.0)
        .collect();
    let f = |v: Vec<f64>| Column {
        ty: DataType::Double,
        data: ColumnData::F64(v),
    };
    Batch {
        columns: vec![
            Column::from_strings(DataType::Symbol, &ids),
            Column {
                ty: DataType::DateTime,
                data: ColumnData::I32(times),
            },
            f(pre),
            f(open),
            f(high),
            f(low),
            f(last),
            Column {
                ty: DataType::Int,
                data: ColumnData::I32(volume),
            },
            f(amount),
        ],
    }
}
