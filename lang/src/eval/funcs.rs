//! Everyday built-ins beyond the core: statistics (`std`, `var`, `med`, `wavg`), vector
//! functions (`deltas`, `ratios`, `iif`, `nullFill`, `log`, `exp`), strings (`concat`,
//! `substr`) and temporal conversions and arithmetic (`month`, `minute`, `second`, `hour`,
//! `year`, `datetime`, `temporalAdd`). Nulls propagate as in DolphinDB: aggregates skip them,
//! element-wise functions give null for a null input.

use storage::column::Column;
use storage::types::DataType;

use super::builtins::{arity, cast, gather, same_form, scalar_i64, scalar_string};
use super::ops::{from_num, to_num, Num};
use super::value::Value;
use super::EvalError;

pub const NAMES: &[&str] = &[
    "std",
    "var",
    "med",
    "wavg",
    "deltas",
    "ratios",
    "iif",
    "nullFill",
    "log",
    "exp",
    "concat",
    "substr",
    "month",
    "minute",
    "second",
    "hour",
    "year",
    "datetime",
    "temporalAdd",
    "between",
    "like",
    "pow",
    "eqObj",
];

fn col<'a>(name: &str, v: &'a Value, pos: usize) -> Result<&'a Column, EvalError> {
    v.column().ok_or_else(|| {
        EvalError::msg(format!(
            "The function [{name}] argument {} must be a scalar or a vector, not a {}",
            pos + 1,
            v.typestr()
        ))
    })
}

/// The values as f64 with nulls as NaN, or a message naming the function.
pub(super) fn floats(name: &str, c: &Column) -> Result<Vec<f64>, EvalError> {
    match to_num(c).map_err(|e| EvalError::msg(format!("The function [{name}] {e}")))? {
        Num::I(v) => Ok(v
            .iter()
            .map(|x| if *x == i64::MIN { f64::NAN } else { *x as f64 })
            .collect()),
        Num::F(v) => Ok(v),
    }
}

fn double_like(template: &Value, v: Vec<f64>) -> Value {
    let c = from_num(Num::F(v), DataType::Double);
    match template {
        Value::Scalar(_) => Value::Scalar(c),
        _ => Value::Vector(c),
    }
}

fn scalar_double(x: f64) -> Value {
    Value::Scalar(from_num(Num::F(vec![x]), DataType::Double))
}

fn variance(v: &[f64]) -> f64 {
    let xs: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if xs.len() < 2 {
        return f64::NAN;
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (xs.len() - 1) as f64
}

/// Repeats a scalar to `n` rows; a vector must already have `n`.
fn broadcast(name: &str, c: &Column, scalar: bool, n: usize) -> Result<Column, EvalError> {
    if scalar {
        Ok(gather(c, &vec![0; n]))
    } else if c.len() == n {
        Ok(c.clone())
    } else {
        Err(EvalError::msg(format!(
            "The function [{name}] needs arguments of the same length ({} and {n})",
            c.len()
        )))
    }
}

/// Days since 1970 → (year, month 1-12, day); and back.
fn civil(days: i64) -> (i64, i64, i64) {
    let (y, m, d) = crate::display::civil_from_days(days);
    (y, m as i64, d as i64)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    let next = if m == 12 {
        crate::parse::lexer::days_from_civil(y + 1, 1, 1)
    } else {
        crate::parse::lexer::days_from_civil(y, m + 1, 1)
    };
    next - crate::parse::lexer::days_from_civil(y, m, 1)
}

/// Units per day of a temporal type that counts from 1970-01-01 (DATE, DATETIME, ...).
fn per_day(ty: DataType) -> Option<i64> {
    Some(match ty {
        DataType::Date => 1,
        DataType::DateTime => 86_400,
        DataType::Timestamp => 86_400_000,
        DataType::NanoTimestamp => 86_400_000_000_000,
        _ => return None,
    })
}

/// Units per second of a time-of-day type.
fn per_second_of_day(ty: DataType) -> Option<(i64, i64)> {
    // (units per second, units per day)
    Some(match ty {
        DataType::Second => (1, 86_400),
        DataType::Minute => return Some((0, 1440)),
        DataType::Time => (1000, 86_400_000),
        DataType::NanoTime => (1_000_000_000, 86_400_000_000_000),
        DataType::DateTime => (1, 86_400),
        DataType::Timestamp => (1000, 86_400_000),
        DataType::NanoTimestamp => (1_000_000_000, 86_400_000_000_000),
        _ => return None,
    })
}

/// An integral or temporal column's values (nulls as `i64::MIN`), or an error naming `name`.
pub(super) fn ints(name: &str, c: &Column) -> Result<Vec<i64>, EvalError> {
    match to_num(c).map_err(|e| EvalError::msg(format!("The function [{name}] {e}")))? {
        Num::I(v) => Ok(v),
        Num::F(_) => Err(EvalError::msg(format!(
            "The function [{name}] does not accept a {} argument",
            c.ty.name()
        ))),
    }
}

/// Seconds (or minutes for MINUTE) into the day of a temporal value.
fn time_of_day(name: &str, c: &Column) -> Result<Vec<i64>, EvalError> {
    let (per_s, per_d) = per_second_of_day(c.ty).ok_or_else(|| {
        EvalError::msg(format!(
            "The function [{name}] does not accept a {} argument",
            c.ty.name()
        ))
    })?;
    Ok(ints(name, c)?
        .into_iter()
        .map(|x| {
            if x == i64::MIN {
                x
            } else if per_s == 0 {
                x.rem_euclid(per_d) * 60
            } else {
                x.rem_euclid(per_d) / per_s
            }
        })
        .collect())
}

/// Most years a calendar shift may reach (the civil-date arithmetic stays far from overflow).
const YEARS_MAX: i64 = 1_000_000;

fn temporal_add(name: &str, c: &Column, n: i64, unit: &str) -> Result<Column, EvalError> {
    let bad_unit = || {
        EvalError::msg(format!(
            "The function [{name}] cannot add the unit '{unit}' to a {}",
            c.ty.name()
        ))
    };
    let out_of_range = || {
        EvalError::msg(format!(
            "The function [{name}] moves a {} outside its range",
            c.ty.name()
        ))
    };
    let v = ints(name, c)?;
    // Adding a null amount gives nulls, as any arithmetic with NULL.
    if n == i64::MIN {
        return Ok(Column::nulls(c.ty, c.len()));
    }
    // The largest value the type holds (nulls are the type's minimum).
    let max = match c.ty.physical() {
        storage::types::Physical::I32 => i32::MAX as i128,
        _ => i64::MAX as i128,
    };
    let shift = |x: i64, by: i128| -> Result<i64, EvalError> {
        let r = x as i128 + by;
        if r > max || r < -max {
            return Err(out_of_range());
        }
        Ok(r as i64)
    };
    // Calendar units move the civil date and keep the time of day.
    if matches!(unit, "M" | "y") {
        let months = if unit == "y" {
            n as i128 * 12
        } else {
            n as i128
        };
        if months.abs() > (YEARS_MAX * 12) as i128 {
            return Err(out_of_range());
        }
        if c.ty == DataType::Month {
            let out = v
                .iter()
                .map(|x| {
                    if *x == i64::MIN {
                        Ok(*x)
                    } else {
                        shift(*x, months)
                    }
                })
                .collect::<Result<_, _>>()?;
            return Ok(from_num(Num::I(out), c.ty));
        }
        let pd = per_day(c.ty).ok_or_else(bad_unit)?;
        let out = v
            .iter()
            .map(|x| {
                if *x == i64::MIN {
                    return Ok(*x);
                }
                let (days, rem) = (x.div_euclid(pd), x.rem_euclid(pd));
                let (y, m, d) = civil(days);
                let total = y * 12 + (m - 1) + months as i64;
                let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) + 1);
                let nd = d.min(days_in_month(ny, nm));
                let day = crate::parse::lexer::days_from_civil(ny, nm, nd);
                shift(0, day as i128 * pd as i128 + rem as i128)
            })
            .collect::<Result<_, _>>()?;
        return Ok(from_num(Num::I(out), c.ty));
    }
    let ns: i64 = match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "H" | "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        "w" => 7 * 86_400_000_000_000,
        _ => return Err(bad_unit()),
    };
    let unit_ns: i64 = match c.ty {
        DataType::Date => 86_400_000_000_000,
        DataType::Minute => 60_000_000_000,
        DataType::Second | DataType::DateTime => 1_000_000_000,
        DataType::Time | DataType::Timestamp => 1_000_000,
        DataType::NanoTime | DataType::NanoTimestamp => 1,
        _ => return Err(bad_unit()),
    };
    let step = (n as i128 * ns as i128) / unit_ns as i128;
    if step * unit_ns as i128 != n as i128 * ns as i128 {
        return Err(bad_unit());
    }
    let out = v
        .iter()
        .map(|x| {
            if *x == i64::MIN {
                Ok(*x)
            } else {
                shift(*x, step)
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(from_num(Num::I(out), c.ty))
}

pub fn call(name: &str, args: Vec<Value>) -> Result<Value, EvalError> {
    match name {
        "std" | "var" | "med" => {
            arity(name, &args, 1, 1)?;
            let v = floats(name, col(name, &args[0], 0)?)?;
            Ok(scalar_double(match name {
                "var" => variance(&v),
                "std" => variance(&v).sqrt(),
                _ => {
                    let mut xs: Vec<f64> = v.into_iter().filter(|x| !x.is_nan()).collect();
                    xs.sort_by(f64::total_cmp);
                    match xs.len() {
                        0 => f64::NAN,
                        n if n % 2 == 1 => xs[n / 2],
                        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
                    }
                }
            }))
        }
        "wavg" => {
            arity(name, &args, 2, 2)?;
            let x = floats(name, col(name, &args[0], 0)?)?;
            let w = floats(name, col(name, &args[1], 1)?)?;
            if x.len() != w.len() {
                return Err(EvalError::msg(
                    "The function [wavg] needs arguments of the same length",
                ));
            }
            let (mut num, mut den) = (0.0, 0.0);
            for (a, b) in x.iter().zip(&w) {
                if !a.is_nan() && !b.is_nan() {
                    num += a * b;
                    den += b;
                }
            }
            Ok(scalar_double(if den == 0.0 { f64::NAN } else { num / den }))
        }
        "deltas" | "ratios" => {
            arity(name, &args, 1, 1)?;
            let c = col(name, &args[0], 0)?;
            if name == "deltas" {
                if let Num::I(v) = to_num(c).map_err(EvalError::msg)? {
                    let out: Vec<i64> = (0..v.len())
                        .map(|i| {
                            if i == 0 || v[i] == i64::MIN || v[i - 1] == i64::MIN {
                                i64::MIN
                            } else {
                                v[i].wrapping_sub(v[i - 1])
                            }
                        })
                        .collect();
                    let ty = if matches!(c.ty, DataType::Long) || super::ops::is_temporal(c.ty) {
                        DataType::Long
                    } else {
                        DataType::Int
                    };
                    return Ok(same_form(&args[0], from_num(Num::I(out), ty)));
                }
            }
            let v = floats(name, c)?;
            let out = (0..v.len())
                .map(|i| match i {
                    0 => f64::NAN,
                    _ if name == "deltas" => v[i] - v[i - 1],
                    _ => v[i] / v[i - 1],
                })
                .collect();
            Ok(double_like(&args[0], out))
        }
        "log" | "exp" => {
            arity(name, &args, 1, 1)?;
            let v = floats(name, col(name, &args[0], 0)?)?;
            let f = if name == "log" { f64::ln } else { f64::exp };
            Ok(double_like(&args[0], v.into_iter().map(f).collect()))
        }
        "iif" => {
            arity(name, &args, 3, 3)?;
            let cond = col(name, &args[0], 0)?;
            let n = cond.len();
            let scalar = matches!(args[0], Value::Scalar(_));
            let a = col(name, &args[1], 1)?;
            let b = col(name, &args[2], 2)?;
            let ty = if a.ty == b.ty
                || (to_num(a).is_ok() && !matches!(b.ty, DataType::Double | DataType::Float))
            {
                a.ty
            } else {
                b.ty
            };
            let conv = |c: &Column| {
                if c.ty == ty {
                    Ok(c.clone())
                } else {
                    cast(c, ty)
                }
            };
            let a = broadcast(name, &conv(a)?, matches!(args[1], Value::Scalar(_)), n)?;
            let b = broadcast(name, &conv(b)?, matches!(args[2], Value::Scalar(_)), n)?;
            let flags = floats(name, cond)?;
            let mut both = a;
            both.append(&b).map_err(EvalError::msg)?;
            let idx: Vec<usize> = flags
                .iter()
                .enumerate()
                .map(|(i, f)| if *f != 0.0 && !f.is_nan() { i } else { n + i })
                .collect();
            let out = gather(&both, &idx);
            Ok(if scalar {
                Value::Scalar(out)
            } else {
                Value::Vector(out)
            })
        }
        "nullFill" => {
            arity(name, &args, 2, 2)?;
            let x = col(name, &args[0], 0)?;
            let y = col(name, &args[1], 1)?;
            let y = if y.ty == x.ty {
                y.clone()
            } else {
                cast(y, x.ty)?
            };
            let n = x.len();
            let scalar_fill = y.len() == 1;
            if !scalar_fill && y.len() != n {
                return Err(EvalError::msg(
                    "The function [nullFill] needs a scalar or a vector as long as X to fill with",
                ));
            }
            let mut both = x.clone();
            both.append(&y).map_err(EvalError::msg)?;
            let nulls = super::builtins::null_mask(x);
            let idx: Vec<usize> = (0..n)
                .map(|i| match (nulls[i], scalar_fill) {
                    (false, _) => i,
                    (true, true) => n,
                    (true, false) => n + i,
                })
                .collect();
            Ok(same_form(&args[0], gather(&both, &idx)))
        }
        "concat" => {
            arity(name, &args, 2, 2)?;
            let (a, b) = (col(name, &args[0], 0)?, col(name, &args[1], 1)?);
            let n = a.len().max(b.len());
            let text = |c: &Column, i: usize| {
                let i = if c.len() == 1 { 0 } else { i };
                super::builtins::render(c, i)
            };
            if (a.len() != 1 && a.len() != n) || (b.len() != 1 && b.len() != n) {
                return Err(EvalError::msg(
                    "The function [concat] needs arguments of the same length",
                ));
            }
            let out: Vec<String> = (0..n).map(|i| text(a, i) + &text(b, i)).collect();
            let c = Column::from_strings(DataType::String, &out);
            Ok(
                if matches!(args[0], Value::Scalar(_)) && matches!(args[1], Value::Scalar(_)) {
                    Value::Scalar(c)
                } else {
                    Value::Vector(c)
                },
            )
        }
        "substr" => {
            arity(name, &args, 2, 3)?;
            let s = col(name, &args[0], 0)?;
            if !matches!(s.ty, DataType::String | DataType::Symbol) {
                return Err(EvalError::msg(format!(
                    "The function [substr] needs a STRING or SYMBOL, not a {}",
                    s.ty.name()
                )));
            }
            let start = scalar_i64(&args[1])?.max(0) as usize;
            let len = match args.get(2) {
                Some(l) => Some(scalar_i64(l)?.max(0) as usize),
                None => None,
            };
            let out: Vec<Vec<u8>> = (0..s.len())
                .map(|i| {
                    let b = s.bytes_at(i).unwrap_or_default();
                    let from = start.min(b.len());
                    let to = len.map_or(b.len(), |l| (from + l).min(b.len()));
                    b[from..to].to_vec()
                })
                .collect();
            let ty = if s.ty == DataType::Symbol {
                DataType::String
            } else {
                s.ty
            };
            Ok(same_form(&args[0], Column::from_strings(ty, &out)))
        }
        "month" | "year" => {
            arity(name, &args, 1, 1)?;
            let c = col(name, &args[0], 0)?;
            let pd = per_day(c.ty).ok_or_else(|| {
                EvalError::msg(format!(
                    "The function [{name}] does not accept a {} argument",
                    c.ty.name()
                ))
            })?;
            let out: Vec<i64> = ints(name, c)?
                .iter()
                .map(|x| {
                    if *x == i64::MIN {
                        return *x;
                    }
                    let (y, m, _) = civil(x.div_euclid(pd));
                    if name == "year" {
                        y
                    } else {
                        y * 12 + m - 1
                    }
                })
                .collect();
            let ty = if name == "year" {
                DataType::Int
            } else {
                DataType::Month
            };
            Ok(same_form(&args[0], from_num(Num::I(out), ty)))
        }
        "minute" | "second" | "hour" => {
            arity(name, &args, 1, 1)?;
            let c = col(name, &args[0], 0)?;
            let secs = time_of_day(name, c)?;
            let (ty, div) = match name {
                "minute" => (DataType::Minute, 60),
                "second" => (DataType::Second, 1),
                _ => (DataType::Int, 3600),
            };
            let out = secs
                .iter()
                .map(|x| if *x == i64::MIN { *x } else { x / div })
                .collect();
            Ok(same_form(&args[0], from_num(Num::I(out), ty)))
        }
        "datetime" => {
            arity(name, &args, 1, 1)?;
            let c = col(name, &args[0], 0)?;
            let to_secs: Box<dyn Fn(i64) -> i64> = match c.ty {
                DataType::Date => Box::new(|x| x * 86_400),
                DataType::DateTime => Box::new(|x| x),
                DataType::Timestamp => Box::new(|x| x.div_euclid(1000)),
                DataType::NanoTimestamp => Box::new(|x| x.div_euclid(1_000_000_000)),
                t => {
                    return Err(EvalError::msg(format!(
                        "The function [datetime] does not accept a {} argument",
                        t.name()
                    )))
                }
            };
            let out = ints(name, c)?
                .into_iter()
                .map(|x| if x == i64::MIN { x } else { to_secs(x) })
                .collect();
            Ok(same_form(
                &args[0],
                from_num(Num::I(out), DataType::DateTime),
            ))
        }
        "temporalAdd" => {
            arity(name, &args, 3, 3)?;
            let c = col(name, &args[0], 0)?;
            let n = scalar_i64(&args[1])?;
            let unit = scalar_string(&args[2])?;
            Ok(same_form(&args[0], temporal_add(name, c, n, &unit)?))
        }
        "eqObj" => {
            // Same form, length and values (nulls equal nulls); numbers within `precision`
            // decimal places when it is given.
            arity(name, &args, 2, 3)?;
            let tol = match args.get(2) {
                Some(p) => 0.5 * 10f64.powi(-(scalar_i64(p)? as i32)),
                None => 0.0,
            };
            let same = match (args[0].column(), args[1].column()) {
                (Some(a), Some(b)) => {
                    a.len() == b.len()
                        && matches!(args[0], Value::Scalar(_))
                            == matches!(args[1], Value::Scalar(_))
                        && (0..a.len()).all(|i| {
                            match (super::ops::scalar_f64(a, i), super::ops::scalar_f64(b, i)) {
                                (Some(x), Some(y)) if a.bytes_at(i).is_none() => {
                                    x == y || (x - y).abs() <= tol
                                }
                                _ => a.bytes_at(i) == b.bytes_at(i),
                            }
                        })
                }
                _ => crate::display::format(&args[0]) == crate::display::format(&args[1]),
            };
            Ok(Value::bool(same))
        }
        "pow" => {
            arity(name, &args, 2, 2)?;
            let (a, b) = (
                floats(name, col(name, &args[0], 0)?)?,
                floats(name, col(name, &args[1], 1)?)?,
            );
            let n = a.len().max(b.len());
            if (a.len() != 1 && a.len() != n) || (b.len() != 1 && b.len() != n) {
                return Err(EvalError::msg(
                    "The function [pow] needs arguments of the same length",
                ));
            }
            let at = |v: &Vec<f64>, i: usize| if v.len() == 1 { v[0] } else { v[i] };
            let out: Vec<f64> = (0..n).map(|i| at(&a, i).powf(at(&b, i))).collect();
            let c = from_num(Num::F(out), DataType::Double);
            Ok(
                if matches!(args[0], Value::Scalar(_)) && matches!(args[1], Value::Scalar(_)) {
                    Value::Scalar(c)
                } else {
                    Value::Vector(c)
                },
            )
        }
        "between" => {
            arity(name, &args, 2, 2)?;
            let x = col(name, &args[0], 0)?;
            let (lo, hi) = match &args[1] {
                Value::Pair(a, b) => match (a.column(), b.column()) {
                    (Some(a), Some(b)) => (a.clone(), b.clone()),
                    _ => {
                        return Err(EvalError::msg(
                            "The function [between] needs a pair of scalars, e.g. 1:5",
                        ))
                    }
                },
                Value::Vector(c) if c.len() == 2 => (c.slice(0, 1), c.slice(1, 2)),
                other => {
                    return Err(EvalError::msg(format!(
                        "The function [between] needs a range such as 1:5, not a {}",
                        other.typestr()
                    )))
                }
            };
            let ge = super::ops::compare(">=", x, &lo)?;
            let le = super::ops::compare("<=", x, &hi)?;
            Ok(same_form(&args[0], super::ops::logic("&&", &ge, &le)?))
        }
        "like" => {
            arity(name, &args, 2, 2)?;
            let x = col(name, &args[0], 0)?;
            let pattern = scalar_string(&args[1])?;
            let v: Vec<i8> = (0..x.len())
                .map(|i| like(x.bytes_at(i).unwrap_or_default(), pattern.as_bytes()) as i8)
                .collect();
            Ok(same_form(
                &args[0],
                Column {
                    ty: DataType::Bool,
                    data: storage::column::ColumnData::I8(v),
                },
            ))
        }
        _ => Err(EvalError::msg(format!(
            "Syntax Error: Cannot recognize the token {name}"
        ))),
    }
}

/// SQL `like`: `%` matches any run of bytes (iterative, no backtracking blow-up).
pub(super) fn like(s: &[u8], p: &[u8]) -> bool {
    let (mut si, mut pi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] != b'%' && p[pi] == s[si] {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == b'%' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'%')
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::column::ColumnData;

    #[test]
    fn like_matches_percent_wildcards() {
        assert!(like(b"porpoise", b"por%"));
        assert!(like(b"porpoise", b"%poi%"));
        assert!(like(b"porpoise", b"porpoise"));
        assert!(!like(b"porpoise", b"%x%"));
        assert!(like(b"", b"%"));
        assert!(!like(b"ab", b"a"));
    }

    #[test]
    fn calendar_months_clamp_the_day() {
        // 2023.01.31 + 1 month = 2023.02.28.
        let d = Column {
            ty: DataType::Date,
            data: ColumnData::I32(vec![
                crate::parse::lexer::days_from_civil(2023, 1, 31) as i32
            ]),
        };
        let out = temporal_add("temporalAdd", &d, 1, "M").unwrap();
        assert_eq!(crate::display::cell(&out, 0), "2023.02.28");
        assert!(
            temporal_add("temporalAdd", &d, 1, "s").is_err(),
            "DATE has no seconds"
        );
    }
}
