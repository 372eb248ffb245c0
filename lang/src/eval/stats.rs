//! Statistics (issue 19's sixth family), with DolphinDB's semantics: every function skips
//! nulls, and pairwise ones (`corr`, `covar`, `beta`) use the rows where both are non-null.
//!
//! - `percentile(X, percent, [interpolation='linear'])` (percent in 0..100) and
//!   `quantile(X, q, [interpolation='linear'])` (q in 0..1), with the `linear`, `lower`,
//!   `higher`, `nearest` and `midpoint` interpolations, over the sorted non-null values.
//! - `mad(X, [useMedian=false])`: mean absolute deviation from the mean, or the median
//!   absolute deviation from the median.
//! - `skew(X, [biased=true])`, `kurtosis(X, [biased=true])` (DolphinDB's kurtosis is not the
//!   excess: a normal sample gives about 3).
//! - `corr(X, Y)`, `covar(X, Y)` (sample), `beta(Y, X)` (the slope of Y regressed on X).
//! - `nunique(X, [ignoreNull=false])`, `mode(X)` (the most frequent non-null value; on a tie,
//!   the one seen first), `zscore(X)`, `prod(X)`, `sem(X)`.
//!
//! Each is an aggregate: inside `select … group by` it runs once per group.

use storage::column::Column;
use storage::types::DataType;

use super::builtins::{arity, col, gather, named_args, null_mask};
use super::funcs::floats;
use super::ops::{from_num, Num};
use super::value::Value;
use super::EvalError;
use crate::parse::ast::Expr;

pub const NAMES: &[&str] = &[
    "percentile",
    "quantile",
    "mad",
    "skew",
    "kurtosis",
    "corr",
    "covar",
    "beta",
    "nunique",
    "mode",
    "zscore",
    "prod",
    "sem",
];

fn double(x: f64) -> Value {
    Value::Scalar(from_num(Num::F(vec![x]), DataType::Double))
}

fn flag(name: &str, v: &Option<Value>, default: bool) -> Result<bool, EvalError> {
    match v {
        None => Ok(default),
        Some(v) => Ok(super::builtins::scalar_i64(v)
            .map_err(|e| EvalError::msg(format!("The function [{name}] {}", e.message)))?
            != 0),
    }
}

/// The non-null values of a numeric argument.
fn values(name: &str, v: &Value) -> Result<Vec<f64>, EvalError> {
    let mut xs = floats(name, col(name, v)?)?;
    xs.retain(|x| !x.is_nan());
    Ok(xs)
}

/// The rows of `x` and `y` where both are non-null.
fn pairs(name: &str, x: &Value, y: &Value) -> Result<(Vec<f64>, Vec<f64>), EvalError> {
    let (a, b) = (floats(name, col(name, x)?)?, floats(name, col(name, y)?)?);
    if a.len() != b.len() {
        return Err(EvalError::msg(format!(
            "The function [{name}] needs X and Y of the same length ({} and {})",
            a.len(),
            b.len()
        )));
    }
    Ok(a.into_iter()
        .zip(b)
        .filter(|(a, b)| !a.is_nan() && !b.is_nan())
        .unzip())
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The sample covariance of paired values (null below two pairs).
fn covariance(a: &[f64], b: &[f64]) -> f64 {
    if a.len() < 2 {
        return f64::NAN;
    }
    let (ma, mb) = (mean(a), mean(b));
    let s: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    s / (a.len() - 1) as f64
}

/// The value at fraction `q` of the sorted values, by DolphinDB's interpolations.
pub(super) fn quantile_of(sorted: &[f64], q: f64, how: &str) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let pos = q * (n - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let (a, b) = (sorted[lo], sorted[hi.min(n - 1)]);
    match how {
        "lower" => a,
        "higher" => b,
        "midpoint" => (a + b) / 2.0,
        // Halves round to the even index, as numpy's `nearest` (which DolphinDB follows).
        "nearest" => sorted[pos.round_ties_even() as usize],
        _ => a + (b - a) * (pos - lo as f64),
    }
}

/// Central moments 2..4 and the count.
fn moments(xs: &[f64]) -> (f64, f64, f64, f64) {
    let n = xs.len() as f64;
    let m = mean(xs);
    let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
    for x in xs {
        let d = x - m;
        m2 += d * d;
        m3 += d * d * d;
        m4 += d * d * d * d;
    }
    (n, m2 / n, m3 / n, m4 / n)
}

pub fn call(
    name: &str,
    args: Vec<Value>,
    exprs: &[(Option<String>, Expr)],
) -> Result<Value, EvalError> {
    match name {
        "percentile" | "quantile" => {
            let params: &[&str] = if name == "percentile" {
                &["X", "percent", "interpolation"]
            } else {
                &["X", "q", "interpolation"]
            };
            let a = named_args(name, args, exprs, params)?;
            let (Some(x), Some(p)) = (&a[0], &a[1]) else {
                return Err(EvalError::msg(format!(
                    "The function [{name}] expects 2 to 3 argument(s): X, {}, [interpolation]",
                    params[1]
                )));
            };
            let how = match &a[2] {
                Some(v) => super::builtins::scalar_string(v)?,
                None => "linear".into(),
            };
            if !["linear", "lower", "higher", "nearest", "midpoint"].contains(&how.as_str()) {
                return Err(EvalError::msg(format!(
                    "The function [{name}]: interpolation must be 'linear', 'lower', 'higher', 'nearest' or 'midpoint', not '{how}'"
                )));
            }
            let (scale, top) = if name == "percentile" {
                (100.0, "100")
            } else {
                (1.0, "1")
            };
            let mut xs = values(name, x)?;
            xs.sort_by(f64::total_cmp);
            let ps = floats(name, col(name, p)?)?;
            let mut out = Vec::with_capacity(ps.len());
            for q in &ps {
                if !(0.0..=scale).contains(q) {
                    return Err(EvalError::msg(format!(
                        "The function [{name}]: {} must be between 0 and {top}, not {q}",
                        params[1]
                    )));
                }
                out.push(quantile_of(&xs, q / scale, &how));
            }
            Ok(match p {
                Value::Scalar(_) => double(out[0]),
                _ => Value::Vector(from_num(Num::F(out), DataType::Double)),
            })
        }
        "mad" => {
            let a = named_args(name, args, exprs, &["X", "useMedian"])?;
            let Some(x) = &a[0] else {
                return Err(EvalError::msg(
                    "The function [mad] expects 1 to 2 argument(s)",
                ));
            };
            let mut xs = values(name, x)?;
            if xs.is_empty() {
                return Ok(double(f64::NAN));
            }
            Ok(double(if flag(name, &a[1], false)? {
                xs.sort_by(f64::total_cmp);
                let med = quantile_of(&xs, 0.5, "linear");
                let mut dev: Vec<f64> = xs.iter().map(|x| (x - med).abs()).collect();
                dev.sort_by(f64::total_cmp);
                quantile_of(&dev, 0.5, "linear")
            } else {
                let m = mean(&xs);
                xs.iter().map(|x| (x - m).abs()).sum::<f64>() / xs.len() as f64
            }))
        }
        "skew" | "kurtosis" => {
            let a = named_args(name, args, exprs, &["X", "biased"])?;
            let Some(x) = &a[0] else {
                return Err(EvalError::msg(format!(
                    "The function [{name}] expects 1 to 2 argument(s)"
                )));
            };
            let biased = flag(name, &a[1], true)?;
            let xs = values(name, x)?;
            let (n, m2, m3, m4) = moments(&xs);
            let v = if name == "skew" {
                let g1 = m3 / m2.powf(1.5);
                match biased {
                    true if n >= 1.0 => g1,
                    false if n >= 3.0 => g1 * (n * (n - 1.0)).sqrt() / (n - 2.0),
                    _ => f64::NAN,
                }
            } else {
                let g2 = m4 / (m2 * m2);
                match biased {
                    true if n >= 1.0 => g2,
                    // The unbiased excess kurtosis, plus 3.
                    false if n >= 4.0 => {
                        ((n + 1.0) * (g2 - 3.0) + 6.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0)) + 3.0
                    }
                    _ => f64::NAN,
                }
            };
            Ok(double(if v.is_finite() { v } else { f64::NAN }))
        }
        "corr" | "covar" | "beta" => {
            arity(name, &args, 2, 2)?;
            // beta(Y, X): the slope of Y on X.
            let (x, y) = if name == "beta" {
                pairs(name, &args[1], &args[0])?
            } else {
                pairs(name, &args[0], &args[1])?
            };
            let cov = covariance(&x, &y);
            let v = match name {
                "covar" => cov,
                "beta" => cov / covariance(&x, &x),
                _ => cov / (covariance(&x, &x) * covariance(&y, &y)).sqrt(),
            };
            Ok(double(if v.is_finite() { v } else { f64::NAN }))
        }
        "nunique" => {
            let a = named_args(name, args, exprs, &["X", "ignoreNull"])?;
            let Some(x) = &a[0] else {
                return Err(EvalError::msg(
                    "The function [nunique] expects 1 to 2 argument(s)",
                ));
            };
            let c = col(name, x)?;
            let groups = super::group::group(&[c], c.len());
            let mut n = groups.len() as i64;
            if flag(name, &a[1], false)? {
                let nulls = null_mask(c);
                if groups.first.iter().any(|r| nulls[*r]) {
                    n -= 1;
                }
            }
            Ok(Value::scalar(
                DataType::Int,
                storage::column::ColumnData::I32(vec![n as i32]),
            ))
        }
        "mode" => {
            arity(name, &args, 1, 1)?;
            let c = col(name, &args[0])?;
            Ok(Value::Scalar(mode(c)))
        }
        "zscore" => {
            arity(name, &args, 1, 1)?;
            let c = col(name, &args[0])?;
            let v = floats(name, c)?;
            let xs: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
            let m = mean(&xs);
            let sd = covariance(&xs, &xs).sqrt();
            let out = v.iter().map(|x| (x - m) / sd).collect();
            Ok(Value::Vector(from_num(Num::F(out), DataType::Double)))
        }
        "prod" => {
            arity(name, &args, 1, 1)?;
            let xs = values(name, &args[0])?;
            Ok(double(if xs.is_empty() {
                f64::NAN
            } else {
                xs.iter().product()
            }))
        }
        "sem" => {
            arity(name, &args, 1, 1)?;
            let xs = values(name, &args[0])?;
            Ok(double((covariance(&xs, &xs) / xs.len() as f64).sqrt()))
        }
        _ => unreachable!("stats::call reached for {name}"),
    }
}

/// The most frequent non-null value (the first seen on a tie), as a scalar of X's type.
fn mode(c: &Column) -> Column {
    let nulls = null_mask(c);
    let g = super::group::group(&[c], c.len());
    let mut counts = vec![0usize; g.len()];
    for (row, id) in g.of_row.iter().enumerate() {
        if !nulls[row] {
            counts[*id as usize] += 1;
        }
    }
    // Groups in first-seen order, so a tie goes to the earliest value.
    let mut order: Vec<usize> = (0..g.len()).collect();
    order.sort_by_key(|k| g.first[*k]);
    match order.iter().filter(|k| counts[**k] > 0).max_by(|a, b| {
        counts[**a]
            .cmp(&counts[**b])
            .then(g.first[**b].cmp(&g.first[**a]))
    }) {
        Some(k) => gather(c, &[g.first[*k]]),
        None => Column::nulls(c.ty, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::quantile_of;

    #[test]
    fn quantiles_follow_the_interpolations() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_of(&xs, 0.5, "linear"), 2.5);
        assert_eq!(quantile_of(&xs, 0.5, "lower"), 2.0);
        assert_eq!(quantile_of(&xs, 0.5, "higher"), 3.0);
        assert_eq!(quantile_of(&xs, 0.5, "midpoint"), 2.5);
        assert_eq!(quantile_of(&xs, 0.5, "nearest"), 3.0);
        assert_eq!(quantile_of(&xs, 0.0, "linear"), 1.0);
        assert_eq!(quantile_of(&xs, 1.0, "linear"), 4.0);
        assert!(quantile_of(&[], 0.5, "linear").is_nan());
    }
}
