//! Time-series vector functions, with DolphinDB's semantics (issue 19's first families):
//!
//! - **moving windows by count** — `msum`, `mavg`, `mcount`, `mmax`, `mmin`, `mstd`, `mvar`,
//!   `mfirst`, `mlast` as `mfunc(X, window, [minPeriods])`: one result per element over the
//!   `window` elements ending at it. Without `minPeriods` the first `window - 1` results are
//!   null and nulls inside a window are skipped; with it, a window with fewer than
//!   `minPeriods` non-null values gives null. Each is O(n): running sums for the sums and
//!   moments, a monotonic queue for the extremes.
//! - **cumulative** — `cumprod`, `cummax`, `cummin`, `cumavg`, `cumcount` (`cumsum` is in
//!   `builtins`): nulls are skipped, and a null before the first value stays null.
//! - **offsets and fills** — `prev`, `next`, `move(X, k)`, `ffill(X, [limit])`,
//!   `bfill(X, [limit])`, keeping X's type (any type: the rows move, not the values).
//! - **ranks** — `rank(X, [ascending], [groupNum], [ignoreNA], [tiesMethod])` and
//!   `denseRank(X, [ascending], [ignoreNA])`, from 0, over numbers, temporals and strings; a
//!   null is unranked with `ignoreNA` (the default) and the smallest value without it.
//!
//! Inside `select … context by` each applies per group, as every vector function does there.

use std::collections::VecDeque;

use storage::column::Column;
use storage::types::DataType;

use super::builtins::{arity, col as vector, named_args, null_mask, same_form, scalar_i64};
use super::funcs::floats as numbers;
use super::ops::{from_num, Num};
use super::value::Value;
use super::EvalError;
use crate::parse::ast::Expr;

pub const NAMES: &[&str] = &[
    "msum",
    "mavg",
    "mcount",
    "mmax",
    "mmin",
    "mstd",
    "mvar",
    "mfirst",
    "mlast",
    "cumprod",
    "cummax",
    "cummin",
    "cumavg",
    "cumcount",
    "prev",
    "next",
    "move",
    "ffill",
    "bfill",
    "rank",
    "denseRank",
];

/// The largest window accepted (DolphinDB caps streaming windows at 102,400; a batch window
/// only needs to fit the data, but an absurd one is a script error, not an allocation).
const WINDOW_MAX: i64 = 1 << 30;

pub fn call(
    name: &str,
    args: Vec<Value>,
    exprs: &[(Option<String>, Expr)],
) -> Result<Value, EvalError> {
    match name {
        "msum" | "mavg" | "mcount" | "mmax" | "mmin" | "mstd" | "mvar" | "mfirst" | "mlast" => {
            let a = named_args(name, args, exprs, &["X", "window", "minPeriods"])?;
            let (Some(x), Some(w)) = (&a[0], &a[1]) else {
                return Err(EvalError::msg(format!(
                    "The function [{name}] expects 2 to 3 argument(s): X, window, [minPeriods]"
                )));
            };
            if name == "mcount" && a[2].is_some() {
                return Err(EvalError::msg(
                    "The function [mcount] expects 2 argument(s): X, window",
                ));
            }
            let window = scalar_i64(w)?;
            if !(1..=WINDOW_MAX).contains(&window) {
                return Err(EvalError::msg(format!(
                    "The function [{name}]: window must be a positive integer, not {window}"
                )));
            }
            let min_periods = match &a[2] {
                Some(p) => {
                    let p = scalar_i64(p)?;
                    if !(1..=window).contains(&p) {
                        return Err(EvalError::msg(format!(
                            "The function [{name}]: minPeriods must be between 1 and the window ({window}), not {p}"
                        )));
                    }
                    Some(p as usize)
                }
                None => None,
            };
            let c = vector(name, x)?;
            let rule = Rule {
                window: window as usize,
                min_periods,
            };
            Ok(Value::Vector(moving(name, c, rule)?))
        }
        "cumprod" | "cummax" | "cummin" | "cumavg" | "cumcount" => {
            arity(name, &args, 1, 1)?;
            let c = vector(name, &args[0])?;
            Ok(same_form(&args[0], cumulative(name, c)?))
        }
        "prev" | "next" => {
            arity(name, &args, 1, 1)?;
            let c = vector(name, &args[0])?;
            Ok(same_form(
                &args[0],
                shifted(c, if name == "prev" { 1 } else { -1 }),
            ))
        }
        "move" => {
            arity(name, &args, 2, 2)?;
            let c = vector(name, &args[0])?;
            let k = scalar_i64(&args[1])?;
            Ok(same_form(&args[0], shifted(c, k)))
        }
        "ffill" | "bfill" => {
            arity(name, &args, 1, 2)?;
            let c = vector(name, &args[0])?;
            let limit = match args.get(1) {
                Some(l) => {
                    let l = scalar_i64(l)?;
                    if l < 1 {
                        return Err(EvalError::msg(format!(
                            "The function [{name}]: limit must be a positive integer, not {l}"
                        )));
                    }
                    l as usize
                }
                None => usize::MAX,
            };
            Ok(same_form(&args[0], filled(c, name == "ffill", limit)))
        }
        "rank" | "denseRank" => {
            let params: &[&str] = if name == "rank" {
                &[
                    "X",
                    "ascending",
                    "groupNum",
                    "ignoreNA",
                    "tiesMethod",
                    "percent",
                ]
            } else {
                &["X", "ascending", "ignoreNA", "percent"]
            };
            let a = named_args(name, args, exprs, params)?;
            let arg = |p: &str| {
                params
                    .iter()
                    .position(|q| *q == p)
                    .and_then(|i| a[i].as_ref())
            };
            let x = arg("X")
                .ok_or_else(|| EvalError::msg(format!("The function [{name}] expects X")))?;
            let flag = |p: &str, default: bool| -> Result<bool, EvalError> {
                arg(p).map_or(Ok(default), |v| Ok(scalar_i64(v)? != 0))
            };
            if flag("percent", false)? {
                return Err(EvalError::msg(format!(
                    "The function [{name}]: percent=true is not supported yet"
                )));
            }
            let group_num = match arg("groupNum") {
                Some(g) => match scalar_i64(g)? {
                    g if g >= 1 => Some(g as usize),
                    g => {
                        return Err(EvalError::msg(format!(
                            "The function [rank]: groupNum must be a positive integer, not {g}"
                        )))
                    }
                },
                None => None,
            };
            let ties = match arg("tiesMethod") {
                Some(t) => super::builtins::scalar_string(t)?,
                None if name == "denseRank" => "dense".into(),
                None => "min".into(),
            };
            let how = Ranking {
                ascending: flag("ascending", true)?,
                ignore_na: flag("ignoreNA", true)?,
                group_num,
                ties,
            };
            Ok(Value::Vector(ranked(name, vector(name, x)?, &how)?))
        }
        _ => unreachable!("{name} is not a series function"),
    }
}

/// A moving window's bounds: `window` elements ending at each one; `min_periods` as given.
#[derive(Clone, Copy)]
struct Rule {
    window: usize,
    min_periods: Option<usize>,
}

impl Rule {
    /// Whether the window ending at `i`, holding `valid` non-null values, has a result.
    fn gives(&self, i: usize, valid: usize) -> bool {
        match self.min_periods {
            None => i + 1 >= self.window && valid > 0,
            Some(p) => valid >= p,
        }
    }
}

fn moving(name: &str, c: &Column, rule: Rule) -> Result<Column, EvalError> {
    let n = c.len();
    let w = rule.window;
    match name {
        "mmax" | "mmin" | "mfirst" | "mlast" => {
            // The row each window's answer comes from, so the result keeps X's type.
            let nulls = null_mask(c);
            let picks = match name {
                "mfirst" | "mlast" => first_last(&nulls, rule, name == "mfirst"),
                _ => extremes(name, c, &nulls, rule)?,
            };
            Ok(pick(c, &picks))
        }
        _ => {
            // Moments about the first value, not zero: prices near 100 with cents of spread
            // would lose their variance to cancellation in a raw sum of squares.
            let raw = numbers(name, c)?;
            let shift = raw.iter().copied().find(|v| !v.is_nan()).unwrap_or(0.0);
            let x: Vec<f64> = raw.iter().map(|v| v - shift).collect();
            let mut out: Vec<f64> = Vec::with_capacity(n);
            let mut counts: Vec<i64> = Vec::with_capacity(n);
            let (mut sum, mut sum2, mut valid) = (0f64, 0f64, 0usize);
            for i in 0..n {
                if !x[i].is_nan() {
                    sum += x[i];
                    sum2 += x[i] * x[i];
                    valid += 1;
                }
                if i >= w && !x[i - w].is_nan() {
                    sum -= x[i - w];
                    sum2 -= x[i - w] * x[i - w];
                    valid -= 1;
                }
                counts.push(valid as i64);
                out.push(if !rule.gives(i, valid) {
                    f64::NAN
                } else {
                    let k = valid as f64;
                    match name {
                        "msum" => sum + shift * k,
                        "mavg" => sum / k + shift,
                        "mcount" => k,
                        // Sample variance (n - 1), as `var`; one value has none.
                        _ if valid < 2 => f64::NAN,
                        "mvar" => ((sum2 - sum * sum / k) / (k - 1.0)).max(0.0),
                        _ => ((sum2 - sum * sum / k) / (k - 1.0)).max(0.0).sqrt(),
                    }
                });
            }
            if name == "mcount" {
                return Ok(mcount(counts, rule.window));
            }
            Ok(from_num(Num::F(out), DataType::Double))
        }
    }
}

/// `mcount` (which takes no `minPeriods`): the non-null values in each full window, 0 for a
/// window of nulls; null before the first full window.
fn mcount(counts: Vec<i64>, window: usize) -> Column {
    let out = counts
        .into_iter()
        .enumerate()
        .map(|(i, k)| if i + 1 < window { i64::MIN } else { k })
        .collect();
    from_num(Num::I(out), DataType::Int)
}

/// `mfirst` / `mlast`: the window's first or last element (null or not), where the window has
/// a result.
fn first_last(nulls: &[bool], rule: Rule, first: bool) -> Vec<Option<usize>> {
    let w = rule.window;
    let mut valid = 0usize;
    (0..nulls.len())
        .map(|i| {
            if !nulls[i] {
                valid += 1;
            }
            if i >= w && !nulls[i - w] {
                valid -= 1;
            }
            let lo = (i + 1).saturating_sub(w);
            rule.gives(i, valid)
                .then_some(if first { lo } else { i })
                .filter(|r| !nulls[*r])
        })
        .collect()
}

/// `mmax` / `mmin` with a monotonic queue of candidate rows: O(n) for any window.
fn extremes(
    name: &str,
    c: &Column,
    nulls: &[bool],
    rule: Rule,
) -> Result<Vec<Option<usize>>, EvalError> {
    let x = numbers(name, c)?;
    let w = rule.window;
    let better = |a: f64, b: f64| if name == "mmax" { a >= b } else { a <= b };
    let mut queue: VecDeque<usize> = VecDeque::new();
    let mut valid = 0usize;
    let mut out = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        if !nulls[i] {
            valid += 1;
            while queue.back().is_some_and(|&j| better(x[i], x[j])) {
                queue.pop_back();
            }
            queue.push_back(i);
        }
        if i >= w && !nulls[i - w] {
            valid -= 1;
        }
        while queue.front().is_some_and(|&j| j + w <= i) {
            queue.pop_front();
        }
        out.push(if rule.gives(i, valid) {
            queue.front().copied()
        } else {
            None
        });
    }
    Ok(out)
}

fn cumulative(name: &str, c: &Column) -> Result<Column, EvalError> {
    let nulls = null_mask(c);
    match name {
        "cummax" | "cummin" => {
            let x = numbers(name, c)?;
            let mut best: Option<usize> = None;
            let picks: Vec<Option<usize>> = (0..x.len())
                .map(|i| {
                    if !nulls[i] {
                        let take = match best {
                            None => true,
                            Some(b) if name == "cummax" => x[i] > x[b],
                            Some(b) => x[i] < x[b],
                        };
                        if take {
                            best = Some(i);
                        }
                    }
                    best
                })
                .collect();
            Ok(pick(c, &picks))
        }
        "cumcount" => {
            let mut k = 0i64;
            let out = nulls
                .iter()
                .map(|null| {
                    k += i64::from(!null);
                    k
                })
                .collect();
            Ok(from_num(Num::I(out), DataType::Int))
        }
        _ => {
            let x = numbers(name, c)?;
            let (mut acc, mut k) = (if name == "cumprod" { 1.0 } else { 0.0 }, 0usize);
            let out = x
                .iter()
                .map(|v| {
                    if !v.is_nan() {
                        k += 1;
                        if name == "cumprod" {
                            acc *= v;
                        } else {
                            acc += v;
                        }
                    }
                    match (k, name) {
                        (0, _) => f64::NAN,
                        (_, "cumprod") => acc,
                        _ => acc / k as f64,
                    }
                })
                .collect();
            Ok(from_num(Num::F(out), DataType::Double))
        }
    }
}

/// `move(X, k)`: element `i` is X's element `i - k` (null where that is outside X).
fn shifted(c: &Column, k: i64) -> Column {
    let n = c.len() as i64;
    let picks: Vec<Option<usize>> = (0..n)
        .map(|i| {
            let j = i - k;
            (0..n).contains(&j).then_some(j as usize)
        })
        .collect();
    pick(c, &picks)
}

/// `ffill` / `bfill`: each null takes the nearest earlier (later) non-null value, at most
/// `limit` nulls in a row filled.
fn filled(c: &Column, forward: bool, limit: usize) -> Column {
    let nulls = null_mask(c);
    let n = nulls.len();
    let mut picks: Vec<Option<usize>> = vec![None; n];
    let order: Box<dyn Iterator<Item = usize>> = if forward {
        Box::new(0..n)
    } else {
        Box::new((0..n).rev())
    };
    let (mut source, mut run) = (None, 0usize);
    for i in order {
        if !nulls[i] {
            source = Some(i);
            run = 0;
            picks[i] = Some(i);
        } else {
            run += 1;
            picks[i] = source.filter(|_| run <= limit);
        }
    }
    pick(c, &picks)
}

/// How `rank` / `denseRank` rank.
struct Ranking {
    ascending: bool,
    ignore_na: bool,
    group_num: Option<usize>,
    /// `min`, `max`, `average`, `first`, or `dense` (`denseRank`).
    ties: String,
}

fn ranked(name: &str, c: &Column, how: &Ranking) -> Result<Column, EvalError> {
    let nulls = null_mask(c);
    let text = matches!(c.ty, DataType::String | DataType::Symbol);
    let x = if text { Vec::new() } else { numbers(name, c)? };
    // Ascending order of two rows, a null below everything.
    let cmp = |a: usize, b: usize| -> std::cmp::Ordering {
        match (nulls[a], nulls[b]) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            _ if text => c.bytes_at(a).cmp(&c.bytes_at(b)),
            _ => x[a].total_cmp(&x[b]),
        }
    };
    let mut order: Vec<usize> = (0..c.len())
        .filter(|i| !how.ignore_na || !nulls[*i])
        .collect();
    order.sort_by(|a, b| {
        if how.ascending {
            cmp(*a, *b)
        } else {
            cmp(*b, *a)
        }
    });
    let n = order.len();
    let group_of = |p: usize| match how.group_num {
        // The first `n % g` groups hold one more element than the rest.
        Some(g) => {
            let (base, extra) = (n / g, n % g);
            let big = extra * (base + 1);
            if p < big {
                p / (base + 1)
            } else {
                extra + (p - big) / base.max(1)
            }
        }
        None => p,
    };
    let mut out: Vec<f64> = vec![f64::NAN; c.len()];
    let (mut start, mut dense) = (0usize, 0usize);
    while start < n {
        let mut end = start + 1;
        while end < n && cmp(order[start], order[end]).is_eq() {
            end += 1;
        }
        for (k, &row) in order[start..end].iter().enumerate() {
            out[row] = match (how.group_num, how.ties.as_str()) {
                // Ties in different groups all take the smallest group number.
                (Some(_), _) => group_of(start) as f64,
                (None, "dense") => dense as f64,
                (None, "min") => start as f64,
                (None, "max") => (end - 1) as f64,
                (None, "average") => (start + end - 1) as f64 / 2.0,
                (None, "first") => (start + k) as f64,
                (None, other) => {
                    return Err(EvalError::msg(format!(
                        "The function [{name}]: tiesMethod must be 'min', 'max', 'average' or 'first', not '{other}'"
                    )))
                }
            };
        }
        dense += 1;
        start = end;
    }
    if how.ties == "average" && how.group_num.is_none() {
        return Ok(from_num(Num::F(out), DataType::Double));
    }
    let ints = out
        .into_iter()
        .map(|v| if v.is_nan() { i64::MIN } else { v as i64 })
        .collect();
    Ok(from_num(Num::I(ints), DataType::Int))
}

/// The rows of `c` that `picks` names, null where it names none.
fn pick(c: &Column, picks: &[Option<usize>]) -> Column {
    let mut with_null = c.clone();
    with_null
        .append(&Column::nulls(c.ty, 1))
        .expect("a column takes a null of its own type");
    let null_row = c.len();
    let idx: Vec<usize> = picks.iter().map(|p| p.unwrap_or(null_row)).collect();
    super::builtins::gather(&with_null, &idx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use storage::column::ColumnData;
    use storage::types::null;

    /// The window ending at each element, by definition (O(n·w)): the reference for the O(n)
    /// forms.
    fn naive(name: &str, x: &[Option<i32>], rule: Rule) -> Vec<Option<f64>> {
        (0..x.len())
            .map(|i| {
                let lo = (i + 1).saturating_sub(rule.window);
                let vals: Vec<f64> = x[lo..=i].iter().flatten().map(|v| *v as f64).collect();
                if !rule.gives(i, vals.len()) {
                    return None;
                }
                Some(match name {
                    "msum" => vals.iter().sum(),
                    "mavg" => vals.iter().sum::<f64>() / vals.len() as f64,
                    "mmax" => vals.iter().copied().fold(f64::MIN, f64::max),
                    _ => vals.iter().copied().fold(f64::MAX, f64::min),
                })
            })
            .collect()
    }

    proptest! {
        #[test]
        fn moving_forms_match_their_definition(
            x in proptest::collection::vec(proptest::option::weighted(0.8, -50i32..50), 0..40),
            window in 1usize..7,
            min in proptest::option::of(1usize..7),
        ) {
            let rule = Rule { window, min_periods: min.map(|m| m.min(window)) };
            let c = Column {
                ty: DataType::Int,
                data: ColumnData::I32(x.iter().map(|v| v.unwrap_or(null::I32)).collect()),
            };
            for name in ["msum", "mavg", "mmax", "mmin"] {
                let got = numbers(name, &moving(name, &c, rule).unwrap()).unwrap();
                let want = naive(name, &x, rule);
                for (g, w) in got.iter().zip(&want) {
                    match w {
                        None => prop_assert!(g.is_nan(), "{name}: {got:?} vs {want:?}"),
                        Some(w) => prop_assert!((g - w).abs() < 1e-9, "{name}: {got:?} vs {want:?}"),
                    }
                }
            }
        }
    }
}
