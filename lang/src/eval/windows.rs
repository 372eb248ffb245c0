//! More moving windows (issue 19's first to third families), beside `series`:
//!
//! - **time windows** — `tmsum`, `tmavg`, `tmcount`, `tmmax`, `tmmin`, `tmstd`, `tmvar`,
//!   `tmfirst`, `tmlast`, `tmmed` as `tmfunc(T, X, window)`: the window of row i holds the
//!   rows j with `T[i] - window < T[j] <= T[i]` (left-open, as DolphinDB), `window` an
//!   integer in T's unit or a duration; T must not decrease. A window with no non-null X is
//!   null. O(n) by two pointers (O(n·w) for the median).
//! - **weighted and exponential** — `ema(X, window, [warmup=false])` (the first value is the
//!   mean of the first window, then `2/(window+1)` smoothing; with warmup the smoothing
//!   factor grows into the window from the first element), `wma(X, window)` (weights 1..w,
//!   the newest heaviest).
//! - **pairs and order statistics** — `mcorr(X, Y, window)`, `mcovar`, `mbeta(Y, X, window)`
//!   over rows where both are non-null, O(n); `mmed`, `mpercentile(X, percent, window)` and
//!   `mrank(X, ascending, window)` per window.
//! - **`moving(func, funcArgs, window, [minPeriods])`** applies any function to each window.
//! - **`cumrank(X, [ascending=true])`**: each element's rank among those so far, from 0.
//! - **`lfill(X)`**: nulls between two values are linearly interpolated.
//! - **`aggrTopN(func, funcArgs, sortingCol, top, [ascending=true])`**: `func` over the rows
//!   with the `top` smallest (or largest) `sortingCol` (a fraction below 1 is a share of the
//!   rows).
//!
//! Counted windows follow `series`'s rule: a result once the window is full, or once it
//! holds `minPeriods` non-null values.

use std::collections::VecDeque;

use storage::column::Column;
use storage::types::DataType;

use super::builtins::{arity, col, gather, named_args, null_mask, same_form, scalar_i64};
use super::funcs::floats;
use super::interp::Interp;
use super::ops::{from_num, Num};
use super::value::Value;
use super::EvalError;
use crate::parse::ast::Expr;

pub const NAMES: &[&str] = &[
    "tmsum",
    "tmavg",
    "tmcount",
    "tmmax",
    "tmmin",
    "tmstd",
    "tmvar",
    "tmfirst",
    "tmlast",
    "tmmed",
    "ema",
    "wma",
    "mcorr",
    "mcovar",
    "mbeta",
    "mmed",
    "mpercentile",
    "mrank",
    "moving",
    "cumrank",
    "lfill",
    "aggrTopN",
];

/// The largest window accepted (as in `series`).
const WINDOW_MAX: i64 = 1 << 30;

fn window_arg(name: &str, v: &Value) -> Result<usize, EvalError> {
    let w = scalar_i64(v)?;
    if !(1..=WINDOW_MAX).contains(&w) {
        return Err(EvalError::msg(format!(
            "The function [{name}]: window must be a positive integer, not {w}"
        )));
    }
    Ok(w as usize)
}

fn doubles(v: Vec<f64>) -> Column {
    from_num(Num::F(v), DataType::Double)
}

/// Each row's window start for a counted window of `w`.
fn counted(n: usize, w: usize) -> Vec<usize> {
    (0..n).map(|i| (i + 1).saturating_sub(w)).collect()
}

/// Each row's window start for a time window: the first row with `T > T[i] - w`.
fn timed(name: &str, t: &Column, w: i64) -> Result<Vec<usize>, EvalError> {
    let Num::I(ts) = super::ops::to_num(t).map_err(EvalError::msg)? else {
        return Err(EvalError::msg(format!(
            "The function [{name}]: T must be temporal or integral"
        )));
    };
    if ts.windows(2).any(|p| p[1] < p[0]) {
        return Err(EvalError::msg(format!(
            "The function [{name}]: T must be in ascending order"
        )));
    }
    let mut lo = 0;
    Ok((0..ts.len())
        .map(|i| {
            while ts[lo] <= ts[i].saturating_sub(w) {
                lo += 1;
            }
            lo
        })
        .collect())
}

/// An aggregate over windows `[lo[i], i]` (starts never move back), null where the window
/// has no non-null value (or fewer than `min_valid`).
fn over_windows(
    name: &str,
    c: &Column,
    lo: &[usize],
    full: impl Fn(usize) -> bool,
) -> Result<Column, EvalError> {
    let n = c.len();
    let nulls = null_mask(c);
    match name {
        "max" | "min" | "first" | "last" => {
            let x = if matches!(name, "max" | "min") {
                floats(name, c)?
            } else {
                Vec::new()
            };
            let better = |a: f64, b: f64| if name == "max" { a >= b } else { a <= b };
            let mut queue: VecDeque<usize> = VecDeque::new();
            let mut picks = Vec::with_capacity(n);
            let mut valid = VecDeque::new();
            for i in 0..n {
                if !nulls[i] {
                    valid.push_back(i);
                    if !x.is_empty() {
                        while queue.back().is_some_and(|&j| better(x[i], x[j])) {
                            queue.pop_back();
                        }
                        queue.push_back(i);
                    }
                }
                while queue.front().is_some_and(|&j| j < lo[i]) {
                    queue.pop_front();
                }
                while valid.front().is_some_and(|&j| j < lo[i]) {
                    valid.pop_front();
                }
                let pick = match name {
                    _ if !full(i) => None,
                    "first" => valid.front().copied(),
                    "last" => valid.back().copied(),
                    _ => queue.front().copied(),
                };
                picks.push(pick.unwrap_or(n));
            }
            let mut padded = c.clone();
            padded
                .append(&Column::nulls(c.ty, 1))
                .map_err(EvalError::msg)?;
            Ok(gather(&padded, &picks))
        }
        "med" => {
            let x = floats(name, c)?;
            let out = (0..n)
                .map(|i| {
                    let mut w: Vec<f64> = x[lo[i]..=i]
                        .iter()
                        .copied()
                        .filter(|v| !v.is_nan())
                        .collect();
                    if w.is_empty() || !full(i) {
                        return f64::NAN;
                    }
                    w.sort_by(f64::total_cmp);
                    super::stats::quantile_of(&w, 0.5, "linear")
                })
                .collect();
            Ok(doubles(out))
        }
        _ => {
            let raw = floats(name, c)?;
            // Moments about the first value (see `series::moving`).
            let shift = raw.iter().copied().find(|v| !v.is_nan()).unwrap_or(0.0);
            let x: Vec<f64> = raw.iter().map(|v| v - shift).collect();
            let (mut sum, mut sum2, mut k) = (0f64, 0f64, 0usize);
            let mut start = 0;
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                if !x[i].is_nan() {
                    sum += x[i];
                    sum2 += x[i] * x[i];
                    k += 1;
                }
                while start < lo[i] {
                    if !x[start].is_nan() {
                        sum -= x[start];
                        sum2 -= x[start] * x[start];
                        k -= 1;
                    }
                    start += 1;
                }
                let kf = k as f64;
                out.push(match name {
                    "count" if full(i) => kf,
                    _ if k == 0 || !full(i) => f64::NAN,
                    "sum" => sum + shift * kf,
                    "avg" => sum / kf + shift,
                    _ if k < 2 => f64::NAN,
                    "var" => ((sum2 - sum * sum / kf) / (kf - 1.0)).max(0.0),
                    _ => ((sum2 - sum * sum / kf) / (kf - 1.0)).max(0.0).sqrt(),
                });
            }
            if name == "count" {
                let v = out
                    .iter()
                    .map(|x| if x.is_nan() { i64::MIN } else { *x as i64 })
                    .collect();
                return Ok(from_num(Num::I(v), DataType::Int));
            }
            Ok(doubles(out))
        }
    }
}

/// `mcorr`, `mcovar`, `mbeta` over counted windows, by running sums of the pairs.
fn pairwise(name: &str, x: &[f64], y: &[f64], w: usize) -> Vec<f64> {
    let n = x.len();
    let ok = |i: usize| !x[i].is_nan() && !y[i].is_nan();
    // About the first pair, against cancellation (as the single-column moments).
    let first = (0..n).find(|i| ok(*i));
    let (sx, sy) = first.map_or((0.0, 0.0), |i| (x[i], y[i]));
    let (mut a, mut b, mut ab, mut aa, mut bb, mut k) = (0f64, 0f64, 0f64, 0f64, 0f64, 0f64);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut add = |j: usize, s: f64| {
            let (p, q) = (x[j] - sx, y[j] - sy);
            a += s * p;
            b += s * q;
            ab += s * p * q;
            aa += s * p * p;
            bb += s * q * q;
            k += s;
        };
        if ok(i) {
            add(i, 1.0);
        }
        if i >= w && ok(i - w) {
            add(i - w, -1.0);
        }
        if i + 1 < w || k < 2.0 {
            out.push(f64::NAN);
            continue;
        }
        let cov = (ab - a * b / k) / (k - 1.0);
        let vx = (aa - a * a / k) / (k - 1.0);
        let vy = (bb - b * b / k) / (k - 1.0);
        let v = match name {
            "mcovar" => cov,
            "mbeta" => cov / vx,
            _ => cov / (vx * vy).sqrt(),
        };
        out.push(if v.is_finite() { v } else { f64::NAN });
    }
    out
}

fn ema(x: &[f64], w: usize, warmup: bool) -> Vec<f64> {
    let n = x.len();
    let mut out = vec![f64::NAN; n];
    // The series starts at the first non-null value (leading nulls stay null).
    let Some(s) = x.iter().position(|v| !v.is_nan()) else {
        return out;
    };
    let mut prev = f64::NAN;
    for i in s..n {
        let k = i - s; // elements before this one
        if x[i].is_nan() {
            continue;
        }
        if warmup {
            prev = if k == 0 {
                x[i]
            } else {
                let alpha = 2.0 / (k.min(w) as f64 + 1.0);
                alpha * x[i] + (1.0 - alpha) * prev
            };
            out[i] = prev;
        } else if k + 1 == w {
            let seed: Vec<f64> = x[s..=i].iter().copied().filter(|v| !v.is_nan()).collect();
            prev = seed.iter().sum::<f64>() / seed.len() as f64;
            out[i] = prev;
        } else if k + 1 > w {
            let alpha = 2.0 / (w as f64 + 1.0);
            prev = alpha * x[i] + (1.0 - alpha) * prev;
            out[i] = prev;
        }
    }
    out
}

fn wma(x: &[f64], w: usize) -> Vec<f64> {
    let total = (w * (w + 1) / 2) as f64;
    (0..x.len())
        .map(|i| {
            if i + 1 < w {
                return f64::NAN;
            }
            let win = &x[i + 1 - w..=i];
            if win.iter().any(|v| v.is_nan()) {
                return f64::NAN;
            }
            win.iter()
                .enumerate()
                .map(|(k, v)| (k + 1) as f64 * v)
                .sum::<f64>()
                / total
        })
        .collect()
}

/// `cumrank`: each element's rank (from 0, ties at their lowest) among the non-null elements
/// up to it; a null has none.
fn cumrank(x: &[f64], ascending: bool) -> Vec<i64> {
    let mut seen: Vec<f64> = Vec::new();
    x.iter()
        .map(|v| {
            if v.is_nan() {
                return i64::MIN;
            }
            let key = if ascending { *v } else { -*v };
            let at = seen.partition_point(|s| *s < key);
            seen.insert(at, key);
            at as i64
        })
        .collect()
}

fn lfill(x: &[f64]) -> Vec<f64> {
    let mut out = x.to_vec();
    let mut last: Option<usize> = None;
    for i in 0..x.len() {
        if x[i].is_nan() {
            continue;
        }
        if let Some(p) = last {
            for (k, slot) in out.iter_mut().enumerate().take(i).skip(p + 1) {
                *slot = x[p] + (x[i] - x[p]) * (k - p) as f64 / (i - p) as f64;
            }
        }
        last = Some(i);
    }
    out
}

pub async fn call(
    it: &mut Interp,
    name: &str,
    args: Vec<Value>,
    exprs: &[(Option<String>, Expr)],
    pos: crate::parse::Pos,
) -> Result<Value, EvalError> {
    if let Some(agg) = name.strip_prefix("tm") {
        arity(name, &args, 3, 3)?;
        let (t, x) = (col(name, &args[0])?, col(name, &args[1])?);
        if t.len() != x.len() {
            return Err(EvalError::msg(format!(
                "The function [{name}]: T and X must have the same length"
            )));
        }
        let w = super::calendar::interval_ticks(name, t.ty, &args[2])?;
        if w <= 0 {
            return Err(EvalError::msg(format!(
                "The function [{name}]: window must be positive"
            )));
        }
        let lo = timed(name, t, w)?;
        return Ok(same_form(&args[1], over_windows(agg, x, &lo, |_| true)?));
    }
    match name {
        "ema" => {
            let a = named_args(name, args, exprs, &["X", "window", "warmup"])?;
            let (Some(x), Some(w)) = (&a[0], &a[1]) else {
                return Err(EvalError::msg(
                    "The function [ema] expects 2 to 3 argument(s): X, window, [warmup]",
                ));
            };
            let w = window_arg(name, w)?;
            if w < 2 {
                return Err(EvalError::msg(
                    "The function [ema]: window must be at least 2",
                ));
            }
            let warm = match &a[2] {
                Some(v) => scalar_i64(v)? != 0,
                None => false,
            };
            Ok(same_form(
                x,
                doubles(ema(&floats(name, col(name, x)?)?, w, warm)),
            ))
        }
        "wma" => {
            arity(name, &args, 2, 2)?;
            let w = window_arg(name, &args[1])?;
            let x = floats(name, col(name, &args[0])?)?;
            Ok(same_form(&args[0], doubles(wma(&x, w))))
        }
        "mcorr" | "mcovar" | "mbeta" => {
            arity(name, &args, 3, 3)?;
            let w = window_arg(name, &args[2])?;
            // mbeta(Y, X): the slope of Y on X.
            let (xi, yi) = if name == "mbeta" { (1, 0) } else { (0, 1) };
            let x = floats(name, col(name, &args[xi])?)?;
            let y = floats(name, col(name, &args[yi])?)?;
            if x.len() != y.len() {
                return Err(EvalError::msg(format!(
                    "The function [{name}] needs X and Y of the same length"
                )));
            }
            Ok(Value::Vector(doubles(pairwise(name, &x, &y, w))))
        }
        "mmed" => {
            let a = named_args(name, args, exprs, &["X", "window", "minPeriods"])?;
            let (Some(x), Some(w)) = (&a[0], &a[1]) else {
                return Err(EvalError::msg("The function [mmed] expects X and window"));
            };
            let w = window_arg(name, w)?;
            let c = col(name, x)?;
            let out = match &a[2] {
                Some(p) => {
                    let p = scalar_i64(p)? as usize;
                    let nulls = null_mask(c);
                    let valid = |i: usize| (i + 1).saturating_sub(w)..=i;
                    let ok = |i: usize| valid(i).filter(|j| !nulls[*j]).count() >= p;
                    over_windows("med", c, &counted(c.len(), w), ok)?
                }
                None => over_windows("med", c, &counted(c.len(), w), |i| i + 1 >= w)?,
            };
            Ok(same_form(x, out))
        }
        "mpercentile" => {
            let a = named_args(
                name,
                args,
                exprs,
                &["X", "percent", "window", "interpolation"],
            )?;
            let (Some(x), Some(p), Some(w)) = (&a[0], &a[1], &a[2]) else {
                return Err(EvalError::msg(
                    "The function [mpercentile] expects X, percent and window",
                ));
            };
            let w = window_arg(name, w)?;
            let q = super::ops::scalar_f64(col(name, p)?, 0).unwrap_or(f64::NAN);
            if !(0.0..=100.0).contains(&q) {
                return Err(EvalError::msg(
                    "The function [mpercentile]: percent must be between 0 and 100",
                ));
            }
            let how = match &a[3] {
                Some(v) => super::builtins::scalar_string(v)?,
                None => "linear".into(),
            };
            let v = floats(name, col(name, x)?)?;
            let out = (0..v.len())
                .map(|i| {
                    if i + 1 < w {
                        return f64::NAN;
                    }
                    let mut win: Vec<f64> = v[i + 1 - w..=i]
                        .iter()
                        .copied()
                        .filter(|x| !x.is_nan())
                        .collect();
                    win.sort_by(f64::total_cmp);
                    super::stats::quantile_of(&win, q / 100.0, &how)
                })
                .collect();
            Ok(same_form(x, doubles(out)))
        }
        "mrank" => {
            let a = named_args(name, args, exprs, &["X", "ascending", "window", "ignoreNA"])?;
            let (Some(x), Some(asc), Some(w)) = (&a[0], &a[1], &a[2]) else {
                return Err(EvalError::msg(
                    "The function [mrank] expects X, ascending and window",
                ));
            };
            let (asc, w) = (scalar_i64(asc)? != 0, window_arg(name, w)?);
            let v = floats(name, col(name, x)?)?;
            let out = (0..v.len())
                .map(|i| {
                    if i + 1 < w || v[i].is_nan() {
                        return i64::MIN;
                    }
                    let me = v[i];
                    v[i + 1 - w..=i]
                        .iter()
                        .filter(|o| !o.is_nan() && if asc { **o < me } else { **o > me })
                        .count() as i64
                })
                .collect();
            Ok(same_form(x, from_num(Num::I(out), DataType::Int)))
        }
        "moving" => {
            let a = named_args(
                name,
                args,
                exprs,
                &["func", "funcArgs", "window", "minPeriods"],
            )?;
            let (Some(f), Some(fa), Some(w)) = (&a[0], &a[1], &a[2]) else {
                return Err(EvalError::msg(
                    "The function [moving] expects 3 to 4 argument(s): func, funcArgs, window, [minPeriods]",
                ));
            };
            let w = window_arg(name, w)?;
            let min = match &a[3] {
                Some(p) => scalar_i64(p)? as usize,
                None => w,
            };
            let columns: Vec<Column> = match fa {
                Value::Tuple(items) => items
                    .iter()
                    .map(|v| col(name, v).cloned())
                    .collect::<Result<_, _>>()?,
                v => vec![col(name, v)?.clone()],
            };
            let n = columns[0].len();
            if columns.iter().any(|c| c.len() != n) {
                return Err(EvalError::msg(
                    "The function [moving]: funcArgs must have the same length",
                ));
            }
            let mut results = Vec::new();
            let mut skipped = 0;
            for i in 0..n {
                let lo = (i + 1).saturating_sub(w);
                if i + 1 - lo < min {
                    skipped += 1;
                    continue;
                }
                let window: Vec<Value> = columns
                    .iter()
                    .map(|c| Value::Vector(c.slice(lo, i + 1)))
                    .collect();
                let r = Box::pin(it.apply(f.clone(), window, &[], pos)).await?;
                if !matches!(r, Value::Scalar(_)) {
                    return Err(EvalError::msg(format!(
                        "The function [moving]: func must give a scalar per window, not a {}",
                        r.typestr()
                    )));
                }
                results.push(r);
            }
            let body = match super::interp::to_vector(results)? {
                Value::Vector(c) => c,
                _ => Column::empty(DataType::Double),
            };
            let mut out = Column::nulls(body.ty, skipped);
            out.append(&body).map_err(EvalError::msg)?;
            Ok(Value::Vector(out))
        }
        "aggrTopN" => {
            let a = named_args(
                name,
                args,
                exprs,
                &["func", "funcArgs", "sortingCol", "top", "ascending"],
            )?;
            let (Some(f), Some(fa), Some(by), Some(top)) = (&a[0], &a[1], &a[2], &a[3]) else {
                return Err(EvalError::msg(
                    "The function [aggrTopN] expects func, funcArgs, sortingCol and top",
                ));
            };
            let asc = match &a[4] {
                Some(v) => scalar_i64(v)? != 0,
                None => true,
            };
            let columns: Vec<Column> = match fa {
                Value::Tuple(items) => items
                    .iter()
                    .map(|v| col(name, v).cloned())
                    .collect::<Result<_, _>>()?,
                v => vec![col(name, v)?.clone()],
            };
            let key = col(name, by)?;
            let n = key.len();
            if columns.iter().any(|c| c.len() != n) {
                return Err(EvalError::msg(
                    "The function [aggrTopN]: funcArgs and sortingCol must have the same length",
                ));
            }
            let t = super::ops::scalar_f64(col(name, top)?, 0).unwrap_or(f64::NAN);
            let k = if t > 0.0 && t < 1.0 {
                (t * n as f64).round() as usize
            } else if t >= 1.0 {
                (t as usize).min(n)
            } else {
                return Err(EvalError::msg(
                    "The function [aggrTopN]: top must be a positive count or a fraction",
                ));
            };
            // Nulls of the sorting column are never among the top.
            let nulls = null_mask(key);
            let mut rows: Vec<usize> = (0..n).filter(|r| !nulls[*r]).collect();
            rows.sort_by(|x, y| {
                let o = super::sql::compare_rows(key, *x, *y);
                if asc {
                    o
                } else {
                    o.reverse()
                }
            });
            rows.truncate(k);
            let picked: Vec<Value> = columns
                .iter()
                .map(|c| Value::Vector(gather(c, &rows)))
                .collect();
            Box::pin(it.apply(f.clone(), picked, &[], pos)).await
        }
        "cumrank" => {
            let a = named_args(name, args, exprs, &["X", "ascending"])?;
            let Some(x) = &a[0] else {
                return Err(EvalError::msg("The function [cumrank] expects X"));
            };
            let asc = match &a[1] {
                Some(v) => scalar_i64(v)? != 0,
                None => true,
            };
            let v = floats(name, col(name, x)?)?;
            Ok(same_form(
                x,
                from_num(Num::I(cumrank(&v, asc)), DataType::Int),
            ))
        }
        "lfill" => {
            arity(name, &args, 1, 1)?;
            let c = col(name, &args[0])?;
            let filled = doubles(lfill(&floats(name, c)?));
            // Integers stay integers where the interpolation lands on them, as DolphinDB
            // keeps X's type.
            let out = if c.ty == DataType::Double {
                filled
            } else {
                super::builtins::cast(&filled, c.ty)?
            };
            Ok(same_form(&args[0], out))
        }
        _ => unreachable!("windows::call reached for {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_follows_the_manual() {
        let x = [12.1, 12.2, 12.6, 12.8, 11.9, 11.6, 11.2];
        let e = ema(&x, 3, false);
        assert!(e[0].is_nan() && e[1].is_nan());
        for (got, want) in e[2..].iter().zip([12.3, 12.55, 12.225, 11.9125, 11.55625]) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
        let w = ema(&x, 3, true);
        for (got, want) in w
            .iter()
            .zip([12.1, 12.2, 12.4667, 12.6333, 12.2667, 11.9333, 11.5667])
        {
            assert!((got - want).abs() < 1e-4, "{got} vs {want}");
        }
    }

    #[test]
    fn time_windows_are_left_open() {
        let t = from_num(Num::I(vec![1, 2, 4, 7, 8]), DataType::Int);
        assert_eq!(timed("tmsum", &t, 3).unwrap(), vec![0, 0, 1, 3, 3]);
    }
}
