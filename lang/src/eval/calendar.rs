//! Bucketing and calendars (issue 19's fourth family), with DolphinDB's semantics:
//!
//! - durations: `5m`, `30s`, `1H`, `100ms`, `1d`, `1w`, `1M`, `1y`, `1B` literals and
//!   `duration("5m")`, a count of a unit that becomes a count of X's ticks where used;
//! - `bar(X, interval, [closed='left'])`: `X - (X % interval)` (the remainder takes the
//!   divisor's sign), or the right boundary with `closed='right'`;
//! - `dailyAlignedBar(X, timeOffset, n, [timeEnd], [mergeSessionEnd=false])`: bars that
//!   start at each session's `timeOffset` every day;
//! - `weekday(X, [startFromSunday=true])`, `dayOfWeek` (Monday 0), `dayOfMonth`,
//!   `dayOfYear`, `monthBegin`, `monthEnd`, `yearBegin`, `yearEnd`, `businessDay` (the
//!   latest Monday-to-Friday day on or before X);
//! - `temporalFormat(X, format)` and `temporalParse(X, format)` / `datetimeParse`, with the
//!   format letters `yyyy yy MMM MM M dd d HH H hh h mm m ss s SSS nnnnnn nnnnnnnnn aa`.
//!
//! Every function keeps nulls null.

use storage::column::Column;
use storage::types::DataType;

use super::builtins::{arity, col, named_args, same_form, scalar_i64, scalar_string};
use super::funcs::ints;
use super::ops::{from_num, Num};
use super::value::Value;
use super::EvalError;
use crate::parse::ast::Expr;

pub const NAMES: &[&str] = &[
    "duration",
    "bar",
    "dailyAlignedBar",
    "weekday",
    "dayOfWeek",
    "dayOfMonth",
    "dayOfYear",
    "monthBegin",
    "monthEnd",
    "yearBegin",
    "yearEnd",
    "businessDay",
    "temporalFormat",
    "temporalParse",
    "datetimeParse",
    "interval",
    "timestamp",
    "nanotimestamp",
    "time",
    "nanotime",
];

/// The units a duration may have, longest first (so `ms` is not read as `m`).
pub const UNITS: [&str; 11] = ["ms", "us", "ns", "y", "M", "w", "d", "B", "H", "m", "s"];

const NS_PER_DAY: i64 = 86_400_000_000_000;

/// Nanoseconds in a fixed-length unit (`None` for the calendar units M, y, B).
fn unit_ns(unit: &str) -> Option<i64> {
    Some(match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "H" => 3_600_000_000_000,
        "d" => NS_PER_DAY,
        "w" => 7 * NS_PER_DAY,
        _ => return None,
    })
}

/// Nanoseconds in one tick of a temporal type.
pub(super) fn tick_ns(ty: DataType) -> Option<i64> {
    Some(match ty {
        DataType::Date => NS_PER_DAY,
        DataType::Minute => 60_000_000_000,
        DataType::Second | DataType::DateTime => 1_000_000_000,
        DataType::Time | DataType::Timestamp => 1_000_000,
        DataType::NanoTime | DataType::NanoTimestamp => 1,
        _ => return None,
    })
}

/// A duration as a whole number of ticks of `ty`.
pub(super) fn ticks(name: &str, ty: DataType, n: i64, unit: &str) -> Result<i64, EvalError> {
    let bad = || {
        EvalError::msg(format!(
            "The function [{name}] cannot measure a {} in {n}{unit}",
            ty.name()
        ))
    };
    let (Some(u), Some(t)) = (unit_ns(unit), tick_ns(ty)) else {
        return match (ty, unit) {
            (DataType::Month, "M") => Ok(n),
            (DataType::Month, "y") => n.checked_mul(12).ok_or_else(bad),
            _ => Err(bad()),
        };
    };
    let ns = (n as i128) * (u as i128);
    if ns % t as i128 != 0 {
        return Err(bad());
    }
    i64::try_from(ns / t as i128).map_err(|_| bad())
}

/// An interval argument as ticks of `ty`: an integer as it is, a duration converted.
pub(super) fn interval_ticks(name: &str, ty: DataType, v: &Value) -> Result<i64, EvalError> {
    match v {
        Value::Duration(n, unit) => ticks(name, ty, *n, unit),
        v => scalar_i64(v),
    }
}

/// Parses `"5m"` into a duration.
pub fn parse_duration(s: &str) -> Option<(i64, &'static str)> {
    let s = s.trim();
    let digits = s.trim_start_matches('-');
    let split = digits.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split + (s.len() - digits.len()));
    let unit = UNITS.iter().find(|u| **u == unit)?;
    Some((num.parse().ok()?, unit))
}

/// Days since 1970 of each value (DATE, DATETIME, TIMESTAMP, NANOTIMESTAMP), nulls kept.
fn days_of(name: &str, c: &Column) -> Result<Vec<i64>, EvalError> {
    let per_day = match c.ty {
        DataType::Date => 1,
        DataType::DateTime => 86_400,
        DataType::Timestamp => 86_400_000,
        DataType::NanoTimestamp => NS_PER_DAY,
        _ => {
            return Err(EvalError::msg(format!(
                "The function [{name}] needs a date, not a {}",
                c.ty.name()
            )))
        }
    };
    Ok(ints(name, c)?
        .into_iter()
        .map(|x| {
            if x == i64::MIN {
                x
            } else {
                x.div_euclid(per_day)
            }
        })
        .collect())
}

fn civil(days: i64) -> (i64, i64, i64) {
    let (y, m, d) = crate::display::civil_from_days(days);
    (y, m as i64, d as i64)
}

fn from_civil(y: i64, m: i64, d: i64) -> i64 {
    crate::parse::lexer::days_from_civil(y, m, d)
}

fn int_vector(template: &Value, v: Vec<i64>) -> Value {
    same_form(template, from_num(Num::I(v), DataType::Int))
}

fn date_vector(template: &Value, v: Vec<i64>) -> Value {
    same_form(template, from_num(Num::I(v), DataType::Date))
}

fn map_days(days: &[i64], f: impl Fn(i64) -> i64) -> Vec<i64> {
    days.iter()
        .map(|d| if *d == i64::MIN { *d } else { f(*d) })
        .collect()
}

pub fn call(
    name: &str,
    args: Vec<Value>,
    exprs: &[(Option<String>, Expr)],
) -> Result<Value, EvalError> {
    match name {
        "duration" => {
            arity(name, &args, 1, 1)?;
            let s = scalar_string(&args[0])?;
            let (n, unit) = parse_duration(&s).ok_or_else(|| {
                EvalError::msg(format!("The function [duration]: '{s}' is not a duration"))
            })?;
            Ok(Value::Duration(n, unit))
        }
        "bar" => {
            let a = named_args(name, args, exprs, &["X", "interval", "closed"])?;
            let (Some(x), Some(iv)) = (&a[0], &a[1]) else {
                return Err(EvalError::msg(
                    "The function [bar] expects 2 to 3 argument(s): X, interval, [closed]",
                ));
            };
            let right = match &a[2] {
                None => false,
                Some(v) => match scalar_string(v)?.as_str() {
                    "left" => false,
                    "right" => true,
                    other => {
                        return Err(EvalError::msg(format!(
                            "The function [bar]: closed must be 'left' or 'right', not '{other}'"
                        )))
                    }
                },
            };
            let c = col(name, x)?;
            let step = interval_ticks(name, c.ty, iv)?;
            if step <= 0 {
                return Err(EvalError::msg(format!(
                    "The function [bar]: interval must be positive, not {step}"
                )));
            }
            let bar = |v: i64| {
                let r = v.rem_euclid(step);
                if right && r != 0 {
                    v - r + step
                } else {
                    v - r
                }
            };
            // 32-bit temporals (DATETIME, SECOND, DATE...) straight into their own width:
            // a bar over 24M rows is one pass, not a round trip through i64.
            if let storage::column::ColumnData::I32(v) = &c.data {
                let out = v
                    .iter()
                    .map(|x| {
                        if *x == i32::MIN {
                            *x
                        } else {
                            i32::try_from(bar(*x as i64)).unwrap_or(i32::MIN)
                        }
                    })
                    .collect();
                let col = Column {
                    ty: c.ty,
                    data: storage::column::ColumnData::I32(out),
                };
                return Ok(same_form(x, col));
            }
            let out = ints(name, c)?
                .into_iter()
                .map(|v| if v == i64::MIN { v } else { bar(v) })
                .collect();
            Ok(same_form(x, from_num(Num::I(out), c.ty)))
        }
        "dailyAlignedBar" => daily_aligned_bar(args, exprs),
        "timestamp" | "nanotimestamp" | "time" | "nanotime" => {
            arity(name, &args, 1, 1)?;
            let c = col(name, &args[0])?;
            let (to, of_day) = match name {
                "timestamp" => (DataType::Timestamp, false),
                "nanotimestamp" => (DataType::NanoTimestamp, false),
                "time" => (DataType::Time, true),
                _ => (DataType::NanoTime, true),
            };
            let epoch = matches!(
                c.ty,
                DataType::Date | DataType::DateTime | DataType::Timestamp | DataType::NanoTimestamp
            );
            let day_only = matches!(
                c.ty,
                DataType::Minute | DataType::Second | DataType::Time | DataType::NanoTime
            );
            let from = tick_ns(c.ty)
                .filter(|_| epoch || (of_day && day_only))
                .ok_or_else(|| {
                    EvalError::msg(format!(
                        "The function [{name}] does not accept a {} argument",
                        c.ty.name()
                    ))
                })?;
            let to_tick = tick_ns(to).expect("a temporal type");
            let out = ints(name, c)?
                .into_iter()
                .map(|x| {
                    if x == i64::MIN {
                        return x;
                    }
                    let mut ns = x as i128 * from as i128;
                    if of_day {
                        ns = ns.rem_euclid(NS_PER_DAY as i128);
                    }
                    ns.div_euclid(to_tick as i128) as i64
                })
                .collect();
            Ok(same_form(&args[0], from_num(Num::I(out), to)))
        }
        "interval" => {
            // Outside `group by` it is the window start, as `bar`; the query fills the
            // empty windows (`fill_intervals`).
            arity(name, &args, 3, 3).map_err(|_| {
                EvalError::msg(
                    "The function [interval] takes X, duration and fill (step, explicitOffset, closed, label and origin are not supported yet)",
                )
            })?;
            Fill::of(&args[2])?;
            let c = col(name, &args[0])?;
            let step = interval_ticks(name, c.ty, &args[1])?;
            if step <= 0 {
                return Err(EvalError::msg(
                    "The function [interval]: duration must be positive",
                ));
            }
            let out = ints(name, c)?
                .into_iter()
                .map(|v| {
                    if v == i64::MIN {
                        v
                    } else {
                        v - v.rem_euclid(step)
                    }
                })
                .collect();
            Ok(same_form(&args[0], from_num(Num::I(out), c.ty)))
        }
        "weekday" | "dayOfWeek" => {
            let a = named_args(name, args, exprs, &["X", "startFromSunday"])?;
            let Some(x) = &a[0] else {
                return Err(EvalError::msg(format!(
                    "The function [{name}] expects 1 to 2 argument(s)"
                )));
            };
            let from_sunday = match &a[1] {
                Some(v) => scalar_i64(v)? != 0,
                None => name == "weekday",
            };
            let days = days_of(name, col(name, x)?)?;
            // 1970.01.01 was a Thursday.
            let out = map_days(&days, |d| {
                let monday0 = (d + 3).rem_euclid(7);
                if from_sunday {
                    (monday0 + 1) % 7
                } else {
                    monday0
                }
            });
            Ok(int_vector(x, out))
        }
        "dayOfMonth" | "dayOfYear" => {
            arity(name, &args, 1, 1)?;
            let days = days_of(name, col(name, &args[0])?)?;
            let out = map_days(&days, |d| {
                let (y, _, dd) = civil(d);
                if name == "dayOfMonth" {
                    dd
                } else {
                    d - from_civil(y, 1, 1) + 1
                }
            });
            Ok(int_vector(&args[0], out))
        }
        "monthBegin" | "monthEnd" | "yearBegin" | "yearEnd" => {
            arity(name, &args, 1, 1)?;
            let days = days_of(name, col(name, &args[0])?)?;
            let out = map_days(&days, |d| {
                let (y, m, _) = civil(d);
                match name {
                    "monthBegin" => from_civil(y, m, 1),
                    "monthEnd" if m == 12 => from_civil(y + 1, 1, 1) - 1,
                    "monthEnd" => from_civil(y, m + 1, 1) - 1,
                    "yearBegin" => from_civil(y, 1, 1),
                    _ => from_civil(y + 1, 1, 1) - 1,
                }
            });
            Ok(date_vector(&args[0], out))
        }
        "businessDay" => {
            arity(name, &args, 1, 1)?;
            let days = days_of(name, col(name, &args[0])?)?;
            let out = map_days(&days, |d| match (d + 3).rem_euclid(7) {
                5 => d - 1, // Saturday → Friday
                6 => d - 2, // Sunday → Friday
                _ => d,
            });
            Ok(date_vector(&args[0], out))
        }
        "temporalFormat" => {
            arity(name, &args, 2, 2)?;
            let c = col(name, &args[0])?;
            let fmt = tokens(&scalar_string(&args[1])?);
            let v = ints(name, c)?;
            let mut out = Vec::with_capacity(v.len());
            for x in v {
                out.push(if x == i64::MIN {
                    String::new()
                } else {
                    format_one(name, c.ty, x, &fmt)?
                });
            }
            Ok(same_form(
                &args[0],
                Column::from_strings(DataType::String, &out),
            ))
        }
        "temporalParse" | "datetimeParse" => {
            arity(name, &args, 2, 2)?;
            let c = col(name, &args[0])?;
            let fmt = tokens(&scalar_string(&args[1])?);
            let ty = parsed_type(&fmt).ok_or_else(|| {
                EvalError::msg(format!(
                    "The function [{name}]: the format names no date or time"
                ))
            })?;
            let out = (0..c.len())
                .map(|i| {
                    let s = c.bytes_at(i).unwrap_or_default();
                    parse_one(std::str::from_utf8(s).unwrap_or(""), &fmt, ty).unwrap_or(i64::MIN)
                })
                .collect();
            Ok(same_form(&args[0], from_num(Num::I(out), ty)))
        }
        _ => unreachable!("calendar::call reached for {name}"),
    }
}

fn daily_aligned_bar(
    args: Vec<Value>,
    exprs: &[(Option<String>, Expr)],
) -> Result<Value, EvalError> {
    let name = "dailyAlignedBar";
    let a = named_args(
        name,
        args,
        exprs,
        &["X", "timeOffset", "n", "timeEnd", "mergeSessionEnd"],
    )?;
    let (Some(x), Some(off), Some(n)) = (&a[0], &a[1], &a[2]) else {
        return Err(EvalError::msg(
            "The function [dailyAlignedBar] expects 3 to 5 argument(s): X, timeOffset, n, [timeEnd], [mergeSessionEnd]",
        ));
    };
    let c = col(name, x)?;
    let tick = tick_ns(c.ty)
        .filter(|_| c.ty != DataType::Date)
        .ok_or_else(|| {
            EvalError::msg(format!(
                "The function [dailyAlignedBar] needs a time or timestamp, not a {}",
                c.ty.name()
            ))
        })?;
    let per_day = NS_PER_DAY / tick;
    // Session bounds in X's ticks of the day.
    let in_ticks = |v: &Value| -> Result<Vec<i64>, EvalError> {
        let oc = col(name, v)?;
        let t = tick_ns(oc.ty).ok_or_else(|| {
            EvalError::msg("The function [dailyAlignedBar]: timeOffset must be a time")
        })?;
        Ok(ints(name, oc)?.into_iter().map(|s| s * t / tick).collect())
    };
    let starts = in_ticks(off)?;
    if starts.is_empty() || starts.windows(2).any(|w| w[0] >= w[1]) {
        return Err(EvalError::msg(
            "The function [dailyAlignedBar]: timeOffset must be increasing",
        ));
    }
    let ends = match &a[3] {
        Some(v) => Some(in_ticks(v)?),
        None => None,
    };
    let merge = match &a[4] {
        Some(v) => scalar_i64(v)? != 0,
        None => false,
    };
    let step = interval_ticks(name, c.ty, n)?;
    if step <= 0 {
        return Err(EvalError::msg(
            "The function [dailyAlignedBar]: n must be positive",
        ));
    }
    let out = ints(name, c)?
        .into_iter()
        .map(|v| {
            if v == i64::MIN {
                return v;
            }
            let tod = v.rem_euclid(per_day);
            // The session this time falls in: the last start at or before it (a time before
            // the first start belongs to the previous day's last session).
            let k = starts.partition_point(|s| *s <= tod);
            let (start, back) = if k == 0 {
                (starts[starts.len() - 1], per_day)
            } else {
                (starts[k - 1], 0)
            };
            let since = tod + back - start;
            let mut bar = v - since.rem_euclid(step);
            if let (true, Some(ends)) = (merge, &ends) {
                let end = ends[if k == 0 { starts.len() - 1 } else { k - 1 }];
                if tod == end && (end - start) % step == 0 && bar == v && since > 0 {
                    bar -= step;
                }
            }
            bar
        })
        .collect();
    Ok(same_form(x, from_num(Num::I(out), c.ty)))
}

/// A format string as runs of one letter (a field) or literal text.
#[derive(Debug, PartialEq)]
enum Tok {
    Field(char, usize),
    Text(String),
}

fn tokens(fmt: &str) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::new();
    for ch in fmt.chars() {
        let field = "yMdHhmsSna".contains(ch);
        match out.last_mut() {
            Some(Tok::Field(c, n)) if field && *c == ch => *n += 1,
            Some(Tok::Text(t)) if !field => t.push(ch),
            _ if field => out.push(Tok::Field(ch, 1)),
            _ => out.push(Tok::Text(ch.to_string())),
        }
    }
    out
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// One value's (days since 1970, nanoseconds of the day); MONTH gives its first day.
fn split(name: &str, ty: DataType, x: i64) -> Result<(Option<i64>, Option<i64>), EvalError> {
    Ok(match ty {
        DataType::Month => (
            Some(from_civil(x.div_euclid(12), x.rem_euclid(12) + 1, 1)),
            None,
        ),
        DataType::Date => (Some(x), None),
        DataType::Minute | DataType::Second | DataType::Time | DataType::NanoTime => {
            (None, Some(x * tick_ns(ty).expect("a time type")))
        }
        DataType::DateTime | DataType::Timestamp | DataType::NanoTimestamp => {
            let ns = x as i128 * tick_ns(ty).expect("a timestamp type") as i128;
            let day = ns.div_euclid(NS_PER_DAY as i128);
            (
                Some(day as i64),
                Some(ns.rem_euclid(NS_PER_DAY as i128) as i64),
            )
        }
        other => {
            return Err(EvalError::msg(format!(
                "The function [{name}] formats temporal values, not a {}",
                other.name()
            )))
        }
    })
}

fn format_one(name: &str, ty: DataType, x: i64, fmt: &[Tok]) -> Result<String, EvalError> {
    let (days, tod) = split(name, ty, x)?;
    let (y, mo, d) = civil(days.unwrap_or(0));
    let tod = tod.unwrap_or(0);
    let (h, mi, s, frac) = (
        tod / 3_600_000_000_000,
        tod / 60_000_000_000 % 60,
        tod / 1_000_000_000 % 60,
        tod % 1_000_000_000,
    );
    let mut out = String::new();
    for t in fmt {
        match t {
            Tok::Text(s) => out.push_str(s),
            Tok::Field('y', n) if *n <= 2 => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            Tok::Field('y', n) => out.push_str(&format!("{y:0n$}")),
            Tok::Field('M', n) if *n >= 3 => out.push_str(MONTHS[(mo - 1) as usize]),
            Tok::Field('M', n) => out.push_str(&format!("{mo:0n$}")),
            Tok::Field('d', n) => out.push_str(&format!("{d:0n$}")),
            Tok::Field('H', n) => out.push_str(&format!("{h:0n$}")),
            Tok::Field('h', n) => out.push_str(&format!("{:0n$}", (h + 11) % 12 + 1)),
            Tok::Field('m', n) => out.push_str(&format!("{mi:0n$}")),
            Tok::Field('s', n) => out.push_str(&format!("{s:0n$}")),
            Tok::Field('S' | 'n', n) => {
                let digits = format!("{frac:09}");
                out.push_str(&digits[..(*n).min(9)]);
            }
            Tok::Field('a', _) => out.push_str(if h < 12 { "AM" } else { "PM" }),
            Tok::Field(c, n) => out.push_str(&c.to_string().repeat(*n)),
        }
    }
    Ok(out)
}

/// The type a format parses into: date and time → DATETIME/TIMESTAMP/NANOTIMESTAMP by the
/// fraction's digits; a date alone → DATE (MONTH without days); a time alone → MINUTE,
/// SECOND, TIME or NANOTIME.
fn parsed_type(fmt: &[Tok]) -> Option<DataType> {
    let has = |c: char| fmt.iter().any(|t| matches!(t, Tok::Field(x, _) if *x == c));
    let frac = fmt
        .iter()
        .filter_map(|t| match t {
            Tok::Field('S' | 'n', n) => Some(*n),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let date = has('y') || has('M') || has('d');
    let time = has('H') || has('h') || has('m') || has('s');
    Some(match (date, time) {
        (true, true) if frac > 3 => DataType::NanoTimestamp,
        (true, true) if frac > 0 => DataType::Timestamp,
        (true, true) => DataType::DateTime,
        (true, false) if has('d') => DataType::Date,
        (true, false) => DataType::Month,
        (false, true) if frac > 3 => DataType::NanoTime,
        (false, true) if frac > 0 => DataType::Time,
        (false, true) if has('s') => DataType::Second,
        (false, true) => DataType::Minute,
        _ => return None,
    })
}

fn parse_one(s: &str, fmt: &[Tok], ty: DataType) -> Option<i64> {
    let b = s.as_bytes();
    let mut i = 0;
    let (mut y, mut mo, mut d, mut h, mut mi, mut sec, mut frac) = (1970, 1, 1, 0, 0, 0, 0i64);
    let mut pm = None;
    for (k, t) in fmt.iter().enumerate() {
        match t {
            Tok::Text(lit) => {
                if !s[i..].starts_with(lit.as_str()) {
                    return None;
                }
                i += lit.len();
            }
            Tok::Field('M', n) if *n >= 3 => {
                let word = s.get(i..i + 3)?.to_ascii_uppercase();
                mo = MONTHS.iter().position(|m| *m == word)? as i64 + 1;
                i += 3;
            }
            Tok::Field('a', _) => {
                let word = s.get(i..i + 2)?.to_ascii_uppercase();
                pm = Some(match word.as_str() {
                    "AM" => false,
                    "PM" => true,
                    _ => return None,
                });
                i += 2;
            }
            Tok::Field(c, n) => {
                // A one-letter field reads one or two digits; a field followed directly by
                // another reads exactly its width.
                let next_is_field = matches!(fmt.get(k + 1), Some(Tok::Field(..)));
                // A field run directly into the next one reads exactly its width; otherwise
                // a one-letter field reads up to two digits and a longer one up to its width.
                let width = if *n == 1 && !next_is_field { 2 } else { *n };
                let start = i;
                while i < b.len() && i - start < width && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i == start || (next_is_field && i - start != width) {
                    return None;
                }
                let v: i64 = s[start..i].parse().ok()?;
                match c {
                    'y' if *n <= 2 => y = 2000 + v,
                    'y' => y = v,
                    'M' => mo = v,
                    'd' => d = v,
                    'H' | 'h' => h = v,
                    'm' => mi = v,
                    's' => sec = v,
                    'S' | 'n' => frac = v * 10i64.pow(9 - (i - start) as u32),
                    _ => return None,
                }
            }
        }
    }
    if i != b.len() {
        return None;
    }
    match pm {
        Some(true) if h < 12 => h += 12,
        Some(false) if h == 12 => h = 0,
        _ => {}
    }
    let days_in = match mo {
        1..=12 => {
            let next = if mo == 12 {
                from_civil(y + 1, 1, 1)
            } else {
                from_civil(y, mo + 1, 1)
            };
            next - from_civil(y, mo, 1)
        }
        _ => return None,
    };
    if d < 1 || d > days_in || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let days = from_civil(y, mo, d);
    let tod = ((h * 60 + mi) * 60 + sec) * 1_000_000_000 + frac;
    Some(match ty {
        DataType::Month => y * 12 + mo - 1,
        DataType::Date => days,
        DataType::DateTime | DataType::Timestamp | DataType::NanoTimestamp => {
            let t = tick_ns(ty)?;
            (days as i128 * (NS_PER_DAY / t) as i128 + (tod / t) as i128) as i64
        }
        _ => tod / tick_ns(ty)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_convert() {
        assert_eq!(parse_duration("5m"), Some((5, "m")));
        assert_eq!(parse_duration("100ms"), Some((100, "ms")));
        assert_eq!(parse_duration("-2s"), Some((-2, "s")));
        assert_eq!(parse_duration("3x"), None);
        assert_eq!(ticks("bar", DataType::Timestamp, 5, "m").unwrap(), 300_000);
        assert_eq!(ticks("bar", DataType::Date, 2, "w").unwrap(), 14);
        assert!(ticks("bar", DataType::Second, 5, "ms").is_err());
    }

    #[test]
    fn formats_round_trip() {
        let fmt = tokens("yyyy.MM.dd HH:mm:ss.SSS");
        let ts = 1_700_000_000_123i64; // 2023.11.14 22:13:20.123
        let s = format_one("t", DataType::Timestamp, ts, &fmt).unwrap();
        assert_eq!(s, "2023.11.14 22:13:20.123");
        let ty = parsed_type(&fmt).unwrap();
        assert_eq!(ty, DataType::Timestamp);
        assert_eq!(parse_one(&s, &fmt, ty), Some(ts));
    }
}

/// How `interval(X, duration, fill)` fills a window with no rows.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Fill {
    Prev,
    Post,
    Linear,
    Null,
    None,
    Value(f64),
}

impl Fill {
    pub(super) fn of(v: &Value) -> Result<Fill, EvalError> {
        if let Ok(s) = scalar_string(v) {
            if v.column().is_some_and(|c| c.bytes_at(0).is_some()) {
                return match s.as_str() {
                    "prev" => Ok(Fill::Prev),
                    "post" => Ok(Fill::Post),
                    "linear" => Ok(Fill::Linear),
                    "null" => Ok(Fill::Null),
                    "none" => Ok(Fill::None),
                    other => Err(EvalError::msg(format!(
                        "The function [interval]: fill must be 'prev', 'post', 'linear', 'null', 'none' or a number, not '{other}'"
                    ))),
                };
            }
        }
        let c = col("interval", v)?;
        match super::ops::scalar_f64(c, 0) {
            Some(x) if x.is_finite() => Ok(Fill::Value(x)),
            _ => Err(EvalError::msg(
                "The function [interval]: fill must be 'prev', 'post', 'linear', 'null', 'none' or a number",
            )),
        }
    }
}

/// Where a row of a filled `interval` result comes from.
enum Source {
    Row(usize),
    /// A window with no rows: its start, a row of its series (for the other keys), and the
    /// rows of the windows before and after it in that series.
    Gap {
        start: i64,
        like: usize,
        before: Option<usize>,
        after: Option<usize>,
    },
}

/// Adds a row for every empty window between the first and last window of `out` (a
/// `group by` result: `nkeys` key columns, then the aggregates), per combination of the
/// other keys, filled by `fill`. The interval key is column `ki`; windows are `step` apart.
pub(super) fn fill_intervals(
    out: super::value::Table,
    ki: usize,
    nkeys: usize,
    step: i64,
    fill: &Fill,
) -> Result<super::value::Table, EvalError> {
    use super::builtins::gather;
    if *fill == Fill::None || out.rows() == 0 || step <= 0 {
        return Ok(out);
    }
    let key = &out.columns[ki].1;
    let starts = ints("interval", key)?;
    let present: Vec<i64> = starts.iter().copied().filter(|s| *s != i64::MIN).collect();
    let (Some(lo), Some(hi)) = (present.iter().min(), present.iter().max()) else {
        return Ok(out);
    };
    /// Most windows one query may fill in (a guard against a tiny step over a long range).
    const WINDOWS_MAX: i64 = 1 << 22;
    if (hi - lo) / step > WINDOWS_MAX {
        return Err(EvalError::msg(format!(
            "interval would fill more than {WINDOWS_MAX} windows"
        )));
    }
    let others: Vec<&Column> = (0..nkeys)
        .filter(|k| *k != ki)
        .map(|k| &out.columns[k].1)
        .collect();
    let series = if others.is_empty() {
        vec![0u32; out.rows()]
    } else {
        super::group::group(&others, out.rows()).of_row
    };
    let nseries = series.iter().max().map_or(0, |m| *m as usize + 1);
    let mut rows_of: Vec<Vec<usize>> = vec![Vec::new(); nseries];
    for (r, s) in series.iter().enumerate() {
        if starts[r] != i64::MIN {
            rows_of[*s as usize].push(r);
        }
    }
    let mut plan = Vec::new();
    for rows in &mut rows_of {
        rows.sort_by_key(|r| starts[*r]);
        let mut next = 0;
        let mut t = *lo;
        while t <= *hi {
            if next < rows.len() && starts[rows[next]] == t {
                plan.push(Source::Row(rows[next]));
                next += 1;
            } else {
                plan.push(Source::Gap {
                    start: t,
                    like: rows[0],
                    before: next.checked_sub(1).map(|k| rows[k]),
                    after: rows.get(next).copied(),
                });
            }
            t += step;
        }
    }
    // Rows with a null window stay as they are.
    plan.extend(
        (0..out.rows())
            .filter(|r| starts[*r] == i64::MIN)
            .map(Source::Row),
    );
    let mut columns = Vec::with_capacity(out.columns.len());
    for (k, (name, c)) in out.columns.iter().enumerate() {
        let col = if k == ki {
            let v: Vec<i64> = plan
                .iter()
                .map(|p| match p {
                    Source::Row(r) => starts[*r],
                    Source::Gap { start, .. } => *start,
                })
                .collect();
            from_num(Num::I(v), c.ty)
        } else if k < nkeys {
            let idx: Vec<usize> = plan
                .iter()
                .map(|p| match p {
                    Source::Row(r) | Source::Gap { like: r, .. } => *r,
                })
                .collect();
            gather(c, &idx)
        } else {
            filled_column(c, &plan, &starts, fill)?
        };
        columns.push((name.clone(), col));
    }
    // Back in key order, as `group by` gives it.
    let mut order: Vec<usize> = (0..plan.len()).collect();
    order.sort_by(|a, b| {
        (0..nkeys)
            .map(|k| super::sql::compare_rows(&columns[k].1, *a, *b))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let columns = columns
        .into_iter()
        .map(|(n, c)| (n, gather(&c, &order)))
        .collect();
    Ok(super::value::Table { columns })
}

fn filled_column(
    c: &Column,
    plan: &[Source],
    starts: &[i64],
    fill: &Fill,
) -> Result<Column, EvalError> {
    use super::builtins::gather;
    let numeric = !matches!(
        c.ty,
        DataType::Symbol | DataType::String | DataType::Blob | DataType::Uuid
    );
    if let (Fill::Linear | Fill::Value(_), true) = (fill, numeric) {
        let v = super::funcs::floats("interval", c)?;
        let out: Vec<f64> = plan
            .iter()
            .map(|p| match p {
                Source::Row(r) => v[*r],
                Source::Gap { .. } if matches!(fill, Fill::Value(_)) => match fill {
                    Fill::Value(x) => *x,
                    _ => unreachable!("matched above"),
                },
                Source::Gap {
                    start,
                    before: Some(b),
                    after: Some(a),
                    ..
                } => {
                    let f = (*start - starts[*b]) as f64 / (starts[*a] - starts[*b]) as f64;
                    v[*b] + (v[*a] - v[*b]) * f
                }
                Source::Gap {
                    before: Some(b), ..
                } => v[*b],
                Source::Gap { .. } => f64::NAN,
            })
            .collect();
        let ty = match (fill, c.ty) {
            (Fill::Linear, DataType::Float | DataType::Double) => c.ty,
            (Fill::Linear, _) => DataType::Double,
            _ => c.ty,
        };
        let doubles = from_num(Num::F(out), DataType::Double);
        return if ty == DataType::Double {
            Ok(doubles)
        } else {
            super::builtins::cast(&doubles, ty)
        };
    }
    // By rows: prev (also linear over text), post, null.
    let n = c.len();
    let mut padded = c.clone();
    padded
        .append(&Column::nulls(c.ty, 1))
        .map_err(EvalError::msg)?;
    let idx: Vec<usize> = plan
        .iter()
        .map(|p| match p {
            Source::Row(r) => *r,
            Source::Gap { before, after, .. } => match fill {
                Fill::Post => after.unwrap_or(n),
                Fill::Null | Fill::Value(_) => n,
                _ => before.unwrap_or(n),
            },
        })
        .collect();
    Ok(gather(&padded, &idx))
}
