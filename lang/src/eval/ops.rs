//! Vectorised operators over columns with DolphinDB's type rules and broadcasting.
//!
//! Numbers are computed as `i64` (integral and temporal types) or `f64` (floating types) in one
//! pass, then narrowed back; nulls (sentinels) propagate through arithmetic.

use storage::column::{Column, ColumnData};
use storage::types::{null, DataType, Physical};

use super::EvalError;

/// A numeric view of a column: nulls as `i64::MIN` / NaN.
pub enum Num {
    I(Vec<i64>),
    F(Vec<f64>),
}

pub(crate) fn is_temporal(t: DataType) -> bool {
    matches!(
        t,
        DataType::Date
            | DataType::Month
            | DataType::Time
            | DataType::Minute
            | DataType::Second
            | DataType::DateTime
            | DataType::Timestamp
            | DataType::NanoTime
            | DataType::NanoTimestamp
    )
}

pub fn to_num(c: &Column) -> Result<Num, String> {
    Ok(match &c.data {
        ColumnData::I8(v) => Num::I(
            v.iter()
                .map(|x| if *x == null::I8 { i64::MIN } else { *x as i64 })
                .collect(),
        ),
        ColumnData::I16(v) => Num::I(
            v.iter()
                .map(|x| if *x == null::I16 { i64::MIN } else { *x as i64 })
                .collect(),
        ),
        ColumnData::I32(v) => Num::I(
            v.iter()
                .map(|x| if *x == null::I32 { i64::MIN } else { *x as i64 })
                .collect(),
        ),
        ColumnData::I64(v) => Num::I(v.clone()),
        ColumnData::F32(v) => Num::F(
            v.iter()
                .map(|x| if *x == null::F32 { f64::NAN } else { *x as f64 })
                .collect(),
        ),
        ColumnData::F64(v) => Num::F(
            v.iter()
                .map(|x| if *x == null::F64 { f64::NAN } else { *x })
                .collect(),
        ),
        _ => return Err(format!("{} is not a numeric type", c.ty.name())),
    })
}

/// Narrows computed values back to a column of `ty`.
pub fn from_num(n: Num, ty: DataType) -> Column {
    let data = match (n, ty.physical()) {
        (Num::I(v), Physical::I8) => ColumnData::I8(
            v.iter()
                .map(|x| if *x == i64::MIN { null::I8 } else { *x as i8 })
                .collect(),
        ),
        (Num::I(v), Physical::I16) => ColumnData::I16(
            v.iter()
                .map(|x| if *x == i64::MIN { null::I16 } else { *x as i16 })
                .collect(),
        ),
        (Num::I(v), Physical::I32) => ColumnData::I32(
            v.iter()
                .map(|x| {
                    if *x == i64::MIN || *x > i32::MAX as i64 || *x < i32::MIN as i64 {
                        null::I32
                    } else {
                        *x as i32
                    }
                })
                .collect(),
        ),
        (Num::I(v), Physical::I64) => ColumnData::I64(v),
        (Num::I(v), Physical::F64) => ColumnData::F64(
            v.iter()
                .map(|x| if *x == i64::MIN { null::F64 } else { *x as f64 })
                .collect(),
        ),
        (Num::I(v), Physical::F32) => ColumnData::F32(
            v.iter()
                .map(|x| if *x == i64::MIN { null::F32 } else { *x as f32 })
                .collect(),
        ),
        (Num::F(v), Physical::F64) => ColumnData::F64(
            v.iter()
                .map(|x| if x.is_nan() { null::F64 } else { *x })
                .collect(),
        ),
        (Num::F(v), Physical::F32) => ColumnData::F32(
            v.iter()
                .map(|x| if x.is_nan() { null::F32 } else { *x as f32 })
                .collect(),
        ),
        (Num::F(v), _) => {
            let ints = v
                .iter()
                .map(|x| if x.is_nan() { i64::MIN } else { *x as i64 })
                .collect();
            return from_num(Num::I(ints), ty);
        }
        (Num::I(v), _) => ColumnData::I64(v),
    };
    Column { ty, data }
}

fn rank(t: DataType) -> u8 {
    match t {
        DataType::Bool => 1,
        DataType::Char => 2,
        DataType::Short => 3,
        DataType::Int => 4,
        DataType::Long => 5,
        DataType::Float => 6,
        DataType::Double => 7,
        _ => 0,
    }
}

/// Result type of an arithmetic operator.
fn arith_type(op: &str, a: DataType, b: DataType) -> Result<DataType, String> {
    let (ta, tb) = (is_temporal(a), is_temporal(b));
    if ta && tb {
        return if op == "-" {
            Ok(if a == b { DataType::Long } else { a })
        } else {
            Err(format!(
                "cannot apply {op} to {} and {}",
                a.name(),
                b.name()
            ))
        };
    }
    if ta && rank(b) > 0 && rank(b) <= 5 && (op == "+" || op == "-") {
        return Ok(a);
    }
    if tb && rank(a) > 0 && rank(a) <= 5 && op == "+" {
        return Ok(b);
    }
    let (ra, rb) = (rank(a), rank(b));
    if ra == 0 || rb == 0 {
        return Err(format!(
            "cannot apply {op} to {} and {}",
            a.name(),
            b.name()
        ));
    }
    if op == "\\" {
        return Ok(DataType::Double);
    }
    let r = ra.max(rb).max(4);
    Ok(match r {
        4 => DataType::Int,
        5 => DataType::Long,
        6 => DataType::Float,
        _ => DataType::Double,
    })
}

fn check_len(a: usize, b: usize) -> Result<usize, String> {
    if a == b || b == 1 {
        Ok(a)
    } else if a == 1 {
        Ok(b)
    } else {
        Err(format!("the operands have different lengths ({a} and {b})"))
    }
}

fn at<T: Copy>(v: &[T], i: usize) -> T {
    if v.len() == 1 {
        v[0]
    } else {
        v[i]
    }
}

/// `a op b` for arithmetic operators (`+ - * / \ %`).
pub fn arith(op: &str, a: &Column, b: &Column) -> Result<Column, EvalError> {
    let ty = arith_type(op, a.ty, b.ty).map_err(EvalError::msg)?;
    let n = check_len(a.len(), b.len()).map_err(EvalError::msg)?;
    let (x, y) = (
        to_num(a).map_err(EvalError::msg)?,
        to_num(b).map_err(EvalError::msg)?,
    );
    let float = matches!(ty, DataType::Double | DataType::Float);
    if !float {
        let (Num::I(x), Num::I(y)) = (x, y) else {
            unreachable!("integral types give integral views")
        };
        let f = |p: i64, q: i64| -> i64 {
            if p == i64::MIN || q == i64::MIN {
                return i64::MIN;
            }
            match op {
                "+" => p.wrapping_add(q),
                "-" => p.wrapping_sub(q),
                "*" => p.wrapping_mul(q),
                "/" => {
                    if q == 0 {
                        i64::MIN
                    } else {
                        p.div_euclid(q)
                    }
                }
                "%" => {
                    if q == 0 {
                        i64::MIN
                    } else {
                        p.rem_euclid(q)
                    }
                }
                _ => i64::MIN,
            }
        };
        let out: Vec<i64> = (0..n).map(|i| f(at(&x, i), at(&y, i))).collect();
        return Ok(from_num(Num::I(out), ty));
    }
    let fx = match x {
        Num::F(v) => v,
        Num::I(v) => v
            .iter()
            .map(|p| if *p == i64::MIN { f64::NAN } else { *p as f64 })
            .collect(),
    };
    let fy = match y {
        Num::F(v) => v,
        Num::I(v) => v
            .iter()
            .map(|p| if *p == i64::MIN { f64::NAN } else { *p as f64 })
            .collect(),
    };
    let f = |p: f64, q: f64| -> f64 {
        match op {
            "+" => p + q,
            "-" => p - q,
            "*" => p * q,
            "/" | "\\" => {
                if q == 0.0 {
                    f64::NAN
                } else {
                    p / q
                }
            }
            "%" => p % q,
            _ => f64::NAN,
        }
    };
    let out: Vec<f64> = (0..n).map(|i| f(at(&fx, i), at(&fy, i))).collect();
    Ok(from_num(
        Num::F(out),
        if ty == DataType::Float {
            DataType::Float
        } else {
            DataType::Double
        },
    ))
}

/// Comparison operators, giving BOOL. Nulls compare as the smallest value, as in DolphinDB.
pub fn compare(op: &str, a: &Column, b: &Column) -> Result<Column, EvalError> {
    let n = check_len(a.len(), b.len()).map_err(EvalError::msg)?;
    let ord = |i: usize| -> Result<std::cmp::Ordering, EvalError> {
        let (ia, ib) = (
            if a.len() == 1 { 0 } else { i },
            if b.len() == 1 { 0 } else { i },
        );
        if let (Some(x), Some(y)) = (a.bytes_at(ia), b.bytes_at(ib)) {
            return Ok(x.cmp(y));
        }
        let x = scalar_f64(a, ia).ok_or_else(|| {
            EvalError::msg(format!(
                "cannot compare {} with {}",
                a.ty.name(),
                b.ty.name()
            ))
        })?;
        let y = scalar_f64(b, ib).ok_or_else(|| {
            EvalError::msg(format!(
                "cannot compare {} with {}",
                a.ty.name(),
                b.ty.name()
            ))
        })?;
        Ok(x.total_cmp(&y))
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let o = ord(i)?;
        use std::cmp::Ordering::*;
        let r = match op {
            "<" => o == Less,
            "<=" => o != Greater,
            ">" => o == Greater,
            ">=" => o != Less,
            "==" | "=" => o == Equal,
            "!=" | "<>" => o != Equal,
            _ => return Err(EvalError::msg(format!("unknown comparison {op}"))),
        };
        out.push(r as i8);
    }
    Ok(Column {
        ty: DataType::Bool,
        data: ColumnData::I8(out),
    })
}

/// Value `i` as f64 (nulls as -inf so they sort first); `None` for non-numeric columns.
pub fn scalar_f64(c: &Column, i: usize) -> Option<f64> {
    Some(match &c.data {
        ColumnData::I8(v) => {
            if v[i] == null::I8 {
                f64::NEG_INFINITY
            } else {
                v[i] as f64
            }
        }
        ColumnData::I16(v) => {
            if v[i] == null::I16 {
                f64::NEG_INFINITY
            } else {
                v[i] as f64
            }
        }
        ColumnData::I32(v) => {
            if v[i] == null::I32 {
                f64::NEG_INFINITY
            } else {
                v[i] as f64
            }
        }
        ColumnData::I64(v) => {
            if v[i] == null::I64 {
                f64::NEG_INFINITY
            } else {
                v[i] as f64
            }
        }
        ColumnData::F32(v) => {
            if v[i] == null::F32 {
                f64::NEG_INFINITY
            } else {
                v[i] as f64
            }
        }
        ColumnData::F64(v) => {
            if v[i] == null::F64 {
                f64::NEG_INFINITY
            } else {
                v[i]
            }
        }
        _ => return None,
    })
}

/// Logical and/or over BOOL-like columns.
pub fn logic(op: &str, a: &Column, b: &Column) -> Result<Column, EvalError> {
    let n = check_len(a.len(), b.len()).map_err(EvalError::msg)?;
    let truth = |c: &Column, i: usize| {
        scalar_f64(c, if c.len() == 1 { 0 } else { i }).map(|v| v != 0.0 && v.is_finite())
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (x, y) = (truth(a, i), truth(b, i));
        let (Some(x), Some(y)) = (x, y) else {
            return Err(EvalError::msg("logical operators need numbers or booleans"));
        };
        out.push(if op == "&&" { x && y } else { x || y } as i8);
    }
    Ok(Column {
        ty: DataType::Bool,
        data: ColumnData::I8(out),
    })
}
