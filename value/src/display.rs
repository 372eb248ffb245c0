//! Text forms of values, as DolphinDB's console and `string()` write them: temporal values in
//! DolphinDB's literal syntax (`2023.01.08T09:30:00`), nulls as empty text, tables and matrices
//! as aligned columns under a dashed rule. `print`, `string`, the console and `porpoise shell`
//! all use this one module so a value looks the same wherever it is shown.

use crate::column::{Column, ColumnData};
use crate::types::{null, DataType};
use crate::value::Value;

/// Civil date (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

fn date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}.{m:02}.{d:02}")
}

fn clock(secs_of_day: i64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}

/// A double as DolphinDB prints it: integers without a fraction, others shortest round-trip.
fn double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    format!("{x}")
}

/// Element `i` of a column as text; nulls are empty.
pub fn cell(c: &Column, i: usize) -> String {
    if let Some(b) = c.bytes_at(i) {
        return String::from_utf8_lossy(b).into_owned();
    }
    let int = |i: usize| -> Option<i64> {
        match &c.data {
            ColumnData::I8(v) => (v[i] != null::I8).then_some(v[i] as i64),
            ColumnData::I16(v) => (v[i] != null::I16).then_some(v[i] as i64),
            ColumnData::I32(v) => (v[i] != null::I32).then_some(v[i] as i64),
            ColumnData::I64(v) => (v[i] != null::I64).then_some(v[i]),
            _ => None,
        }
    };
    match &c.data {
        ColumnData::F64(v) => {
            return if v[i] == null::F64 {
                String::new()
            } else {
                double(v[i])
            }
        }
        ColumnData::F32(v) => {
            return if v[i] == null::F32 {
                String::new()
            } else {
                double(v[i] as f64)
            }
        }
        _ => {}
    }
    let Some(x) = int(i) else {
        return String::new();
    };
    const NS_PER_DAY: i64 = 86_400_000_000_000;
    match c.ty {
        DataType::Bool => (if x != 0 { "true" } else { "false" }).into(),
        DataType::Date => date(x),
        DataType::Month => format!("{:04}.{:02}M", x.div_euclid(12), x.rem_euclid(12) + 1),
        DataType::Time => format!("{}.{:03}", clock(x / 1000), x % 1000),
        DataType::Minute => format!("{:02}:{:02}m", x / 60, x % 60),
        DataType::Second => clock(x),
        DataType::DateTime => format!(
            "{}T{}",
            date(x.div_euclid(86_400)),
            clock(x.rem_euclid(86_400))
        ),
        DataType::Timestamp => {
            let ms = x.rem_euclid(86_400_000);
            format!(
                "{}T{}.{:03}",
                date(x.div_euclid(86_400_000)),
                clock(ms / 1000),
                ms % 1000
            )
        }
        DataType::NanoTime => format!("{}.{:09}", clock(x / 1_000_000_000), x % 1_000_000_000),
        DataType::NanoTimestamp => {
            let ns = x.rem_euclid(NS_PER_DAY);
            format!(
                "{}T{}.{:09}",
                date(x.div_euclid(NS_PER_DAY)),
                clock(ns / 1_000_000_000),
                ns % 1_000_000_000
            )
        }
        _ => x.to_string(),
    }
}

/// How many rows of a table or elements of a vector are shown before `...`.
pub const DISPLAY_ROWS_MAX: usize = 1000;

fn list(c: &Column, limit: usize) -> String {
    let mut items: Vec<String> = (0..c.len().min(limit)).map(|i| quoted(c, i)).collect();
    if c.len() > limit {
        items.push("...".into());
    }
    items.join(",")
}

fn quoted(c: &Column, i: usize) -> String {
    match c.ty {
        DataType::String | DataType::Symbol => format!("\"{}\"", cell(c, i)),
        _ => cell(c, i),
    }
}

/// Aligned text columns: a header row, a dashed rule, then the rows.
fn grid(headers: &[String], columns: &[Vec<String>], total_rows: usize) -> String {
    let widths: Vec<usize> = headers
        .iter()
        .zip(columns)
        .map(|(h, col)| {
            col.iter()
                .map(|s| s.chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let parts: Vec<String> = cells
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}", w = *w))
            .collect();
        parts.join(" ").trim_end().to_string()
    };
    let mut out = String::new();
    out.push_str(&line(&mut headers.iter().map(|s| s.as_str())));
    out.push('\n');
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(&mut rule.iter().map(|s| s.as_str())));
    out.push('\n');
    let shown = columns.first().map(|c| c.len()).unwrap_or(0);
    for r in 0..shown {
        out.push_str(&line(&mut columns.iter().map(|c| c[r].as_str())));
        out.push('\n');
    }
    if total_rows > shown {
        out.push_str(&format!("... ({total_rows} rows in all)\n"));
    }
    out
}

/// The console's text for a value (no trailing newline for scalars and vectors).
pub fn format(v: &Value) -> String {
    match v {
        Value::Void => String::new(),
        Value::Scalar(c) => cell(c, 0),
        Value::Vector(c) => format!("[{}]", list(c, DISPLAY_ROWS_MAX)),
        Value::Pair(a, b) => format!("{} : {}", format(a), format(b)),
        Value::Tuple(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|v| match v {
                    Value::Scalar(c) => quoted(c, 0),
                    v => format(v),
                })
                .collect();
            format!("({})", parts.join(","))
        }
        Value::Set(c) => format!("set({})", list(c, DISPLAY_ROWS_MAX)),
        Value::Dict(d) => d
            .iter()
            .map(|(k, v)| format!("{k}->{}\n", format(v)))
            .collect(),
        Value::Table(t) => {
            let rows = t.rows();
            let shown = rows.min(DISPLAY_ROWS_MAX);
            let headers: Vec<String> = t.columns.iter().map(|(n, _)| n.clone()).collect();
            let cols: Vec<Vec<String>> = t
                .columns
                .iter()
                .map(|(_, c)| (0..shown).map(|i| cell(c, i)).collect())
                .collect();
            grid(&headers, &cols, rows)
        }
        Value::Matrix(m) => {
            let shown = m.rows.min(DISPLAY_ROWS_MAX);
            let mut headers = Vec::new();
            let mut cols = Vec::new();
            if let Some(l) = &m.row_labels {
                headers.push(String::new());
                cols.push((0..shown).map(|i| cell(l, i)).collect());
            }
            for j in 0..m.cols {
                headers.push(match &m.col_labels {
                    Some(l) => cell(l, j),
                    None => format!("#{j}"),
                });
                cols.push((0..shown).map(|i| cell(&m.data, j * m.rows + i)).collect());
            }
            grid(&headers, &cols, m.rows)
        }
        Value::Opaque(name) => name.clone(),
    }
}
