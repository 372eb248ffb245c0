//! Element access, gathering rows and casting: `v[i]`, `v[mask]`, `v[positions]`, rows of a
//! column by index, and DolphinDB's conversions between types (used by every built-in family;
//! re-exported from `builtins`).

use storage::column::{Column, ColumnData};
use storage::types::DataType;

use super::builtins::{render, scalar_i64, scalar_string};
use super::ops::{self, from_num, to_num, Num};
use super::value::Value;
use super::EvalError;

/// Element `i` of a vector-like value.
pub fn element(v: &Value, i: usize) -> Result<Value, EvalError> {
    match v {
        Value::Vector(c) | Value::Set(c) => Ok(Value::Scalar(c.slice(i, i + 1))),
        Value::Scalar(c) => Ok(Value::Scalar(c.clone())),
        Value::Tuple(items) => items
            .get(i)
            .cloned()
            .ok_or_else(|| EvalError::msg("index out of range")),
        Value::Pair(a, b) => Ok(if i == 0 { (**a).clone() } else { (**b).clone() }),
        _ => Err(EvalError::msg(format!(
            "cannot iterate over a {}",
            v.typestr()
        ))),
    }
}

/// `v[idx]`.
pub fn index(v: &Value, idx: &Value) -> Result<Value, EvalError> {
    match (v, idx) {
        (Value::Table(t), _) => {
            let name = scalar_string(idx)?;
            t.column(&name)
                .map(|c| Value::Vector(c.clone()))
                .ok_or_else(|| EvalError::msg(format!("the table has no column {name}")))
        }
        (Value::Dict(d), _) => Ok(d.get(&scalar_string(idx)?).cloned().unwrap_or(Value::Void)),
        (_, Value::Scalar(_)) => element(v, scalar_i64(idx)? as usize),
        // `x[x > 5]` keeps the rows where the mask is true; `x[0 2]` takes rows (null past
        // the end, as DolphinDB).
        (Value::Vector(c), Value::Vector(i)) if i.ty == DataType::Bool => {
            if i.len() != c.len() {
                return Err(EvalError::msg(format!(
                    "a mask of {} elements cannot index a vector of {}",
                    i.len(),
                    c.len()
                )));
            }
            let ColumnData::I8(m) = &i.data else {
                unreachable!("BOOL is stored as i8")
            };
            let rows: Vec<usize> = (0..m.len()).filter(|r| m[*r] == 1).collect();
            Ok(Value::Vector(gather(c, &rows)))
        }
        (Value::Vector(c), Value::Vector(i)) => {
            let Num::I(ix) = to_num(i).map_err(EvalError::msg)? else {
                return Err(EvalError::msg("vector indices must be integers"));
            };
            let n = c.len();
            let inside: Vec<usize> = ix
                .iter()
                .map(|x| {
                    if (0..n as i64).contains(x) {
                        *x as usize
                    } else {
                        n
                    }
                })
                .collect();
            // Row `n` is a null appended for indices outside the vector.
            let mut padded = c.clone();
            padded
                .append(&Column::nulls(c.ty, 1))
                .map_err(EvalError::msg)?;
            Ok(Value::Vector(gather(&padded, &inside)))
        }
        _ => Err(EvalError::msg("unsupported indexing")),
    }
}

/// Converts a column to `ty` (numeric and temporal conversions).
pub fn cast(c: &Column, ty: DataType) -> Result<Column, EvalError> {
    if c.ty == ty {
        return Ok(c.clone());
    }
    if ty == DataType::String || ty == DataType::Symbol {
        if let Some(t) = c.text_as(ty) {
            return Ok(t);
        }
        let strs: Vec<String> = (0..c.len()).map(|i| render(c, i)).collect();
        return Ok(Column::from_strings(ty, &strs));
    }
    // Text to numbers: parsed; empty text is null, anything unparsable an error.
    if matches!(c.ty, DataType::String | DataType::Symbol) && !ops::is_temporal(ty) {
        let text: Vec<String> = (0..c.len()).map(|i| render(c, i)).collect();
        let bad = |t: &str| EvalError::msg(format!("cannot convert '{t}' to {}", ty.name()));
        let n = if matches!(ty, DataType::Double | DataType::Float) {
            Num::F(
                text.iter()
                    .map(|t| {
                        if t.is_empty() {
                            Ok(f64::NAN)
                        } else {
                            t.trim().parse().map_err(|_| bad(t))
                        }
                    })
                    .collect::<Result<_, _>>()?,
            )
        } else {
            Num::I(
                text.iter()
                    .map(|t| {
                        if t.is_empty() {
                            Ok(i64::MIN)
                        } else {
                            t.trim().parse().map_err(|_| bad(t))
                        }
                    })
                    .collect::<Result<_, _>>()?,
            )
        };
        return Ok(from_num(n, ty));
    }
    let n = to_num(c).map_err(|e| {
        EvalError::msg(format!(
            "cannot convert {} to {}: {e}",
            c.ty.name(),
            ty.name()
        ))
    })?;
    let n = match (n, ty) {
        (Num::F(v), DataType::Int | DataType::Long | DataType::Short) => Num::I(
            v.iter()
                .map(|x| {
                    if x.is_nan() {
                        i64::MIN
                    } else {
                        x.round() as i64
                    }
                })
                .collect(),
        ),
        (n, _) => n,
    };
    Ok(from_num(n, ty))
}

/// `date()` of a DATE, DATETIME, TIMESTAMP or NANOTIMESTAMP column, in one pass straight into
/// DATE's i32 days (the OHLC query's group key).
pub(super) fn date_column(c: &Column) -> Result<Column, EvalError> {
    let per_day: i64 = match c.ty {
        DataType::Date => 1,
        DataType::DateTime => 86_400,
        DataType::Timestamp => 86_400_000,
        DataType::NanoTimestamp => 86_400_000_000_000,
        t => {
            return Err(EvalError::msg(format!(
                "The function [date] does not accept a {} argument",
                t.name()
            )))
        }
    };
    let null = storage::types::null::I32;
    let days: Vec<i32> = match &c.data {
        ColumnData::I32(v) => v
            .iter()
            .map(|x| {
                if *x == null {
                    null
                } else {
                    x.div_euclid(per_day as i32)
                }
            })
            .collect(),
        ColumnData::I64(v) => v
            .iter()
            .map(|x| {
                if *x == i64::MIN {
                    null
                } else {
                    x.div_euclid(per_day) as i32
                }
            })
            .collect(),
        _ => {
            return Err(EvalError::msg(
                "The function [date] needs a temporal argument",
            ))
        }
    };
    Ok(Column {
        ty: DataType::Date,
        data: ColumnData::I32(days),
    })
}

/// Rows `idx` of `c`.
pub fn gather(c: &Column, idx: &[usize]) -> Column {
    let data = match &c.data {
        ColumnData::I8(v) => ColumnData::I8(idx.iter().map(|i| v[*i]).collect()),
        ColumnData::I16(v) => ColumnData::I16(idx.iter().map(|i| v[*i]).collect()),
        ColumnData::I32(v) => ColumnData::I32(idx.iter().map(|i| v[*i]).collect()),
        ColumnData::I64(v) => ColumnData::I64(idx.iter().map(|i| v[*i]).collect()),
        ColumnData::F32(v) => ColumnData::F32(idx.iter().map(|i| v[*i]).collect()),
        ColumnData::F64(v) => ColumnData::F64(idx.iter().map(|i| v[*i]).collect()),
        ColumnData::Symbol { codes, base } => ColumnData::Symbol {
            codes: idx.iter().map(|i| codes[*i]).collect(),
            base: base.clone(),
        },
        ColumnData::Bytes { offsets, data } => {
            let mut o = Vec::with_capacity(idx.len() + 1);
            let mut d = Vec::new();
            o.push(0);
            for i in idx {
                d.extend_from_slice(&data[offsets[*i] as usize..offsets[*i + 1] as usize]);
                o.push(d.len() as u32);
            }
            ColumnData::Bytes {
                offsets: o,
                data: d,
            }
        }
    };
    Column { ty: c.ty, data }
}
