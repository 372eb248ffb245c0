//! Built-ins over the matrix, set and dictionary forms: `matrix`, `set`, `keys`, `values`,
//! `rows`, `cols`, `transpose`, `flatten`, `dict`.
//!
//! Invariant: a `Matrix` holds exactly `rows * cols` values column by column, and its labels
//! (when present) have `rows` and `cols` elements; a `Set` holds distinct elements.

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use storage::column::Column;

use super::builtins::{gather, render};
use super::value::{Matrix, Value};
use super::EvalError;

pub const NAMES: &[&str] = &[
    "matrix",
    "set",
    "keys",
    "values",
    "rows",
    "cols",
    "transpose",
    "flatten",
    "dict",
];

fn err(name: &str, what: &str) -> EvalError {
    EvalError::msg(format!("The function [{name}] {what}"))
}

/// Builds a matrix from equal-length column vectors.
pub fn matrix_of(name: &str, columns: &[Column]) -> Result<Matrix, EvalError> {
    let rows = columns.first().map(|c| c.len()).unwrap_or(0);
    let mut data = match columns.first() {
        Some(c) => c.clone(),
        None => return Err(err(name, "needs at least one column")),
    };
    for c in &columns[1..] {
        if c.len() != rows {
            return Err(err(name, "needs columns of equal length"));
        }
        let c = if c.ty == data.ty {
            c.clone()
        } else {
            super::cast_column(c, data.ty)?
        };
        data.append(&c).map_err(EvalError::msg)?;
    }
    let m = Matrix {
        rows,
        cols: columns.len(),
        data,
        row_labels: None,
        col_labels: None,
    };
    debug_assert_eq!(m.data.len(), m.rows * m.cols);
    Ok(m)
}

/// Distinct elements of `c` in first-seen order.
pub fn distinct_in_order(c: &Column) -> Column {
    let mut seen = HashSet::new();
    let idx: Vec<usize> = (0..c.len())
        .filter(|i| seen.insert(render(c, *i)))
        .collect();
    gather(c, &idx)
}

fn transpose(m: &Matrix) -> Matrix {
    let idx: Vec<usize> = (0..m.rows)
        .flat_map(|r| (0..m.cols).map(move |c| c * m.rows + r))
        .collect();
    Matrix {
        rows: m.cols,
        cols: m.rows,
        data: gather(&m.data, &idx),
        row_labels: m.col_labels.clone(),
        col_labels: m.row_labels.clone(),
    }
}

pub fn call(name: &str, args: Vec<Value>) -> Result<Value, EvalError> {
    let one = |args: &[Value]| -> Result<(), EvalError> {
        if args.len() != 1 {
            return Err(EvalError::msg(format!(
                "The function [{name}] expects 1 argument(s), but the actual number of arguments is {}",
                args.len()
            )));
        }
        Ok(())
    };
    match name {
        "matrix" => {
            let mut cols = Vec::new();
            for a in &args {
                match a {
                    Value::Vector(c) => cols.push(c.clone()),
                    Value::Matrix(m) => {
                        for j in 0..m.cols {
                            cols.push(m.data.slice(j * m.rows, (j + 1) * m.rows));
                        }
                    }
                    other => {
                        return Err(err(
                            name,
                            &format!("does not accept a {} argument", other.typestr()),
                        ))
                    }
                }
            }
            Ok(Value::Matrix(Rc::new(matrix_of(name, &cols)?)))
        }
        "set" => {
            one(&args)?;
            match &args[0] {
                Value::Vector(c) | Value::Scalar(c) => Ok(Value::Set(distinct_in_order(c))),
                Value::Set(c) => Ok(Value::Set(c.clone())),
                other => Err(err(
                    name,
                    &format!("does not accept a {} argument", other.typestr()),
                )),
            }
        }
        "keys" | "values" => {
            one(&args)?;
            match (&args[0], name) {
                (Value::Set(c), "keys") => Ok(Value::Vector(c.clone())),
                (Value::Dict(d), "keys") => {
                    let k: Vec<&String> = d.keys().collect();
                    Ok(Value::Vector(Column::from_strings(
                        storage::types::DataType::String,
                        &k,
                    )))
                }
                (Value::Dict(d), _) => super::interp::to_vector(d.values().cloned().collect()),
                (Value::Table(t), "keys") => {
                    let k: Vec<&String> = t.columns.iter().map(|(n, _)| n).collect();
                    Ok(Value::Vector(Column::from_strings(
                        storage::types::DataType::String,
                        &k,
                    )))
                }
                (other, _) => Err(err(
                    name,
                    &format!("does not accept a {} argument", other.typestr()),
                )),
            }
        }
        "rows" | "cols" => {
            one(&args)?;
            let (r, c) = match &args[0] {
                Value::Matrix(m) => (m.rows, m.cols),
                Value::Table(t) => (t.rows(), t.columns.len()),
                Value::Vector(v) => (v.len(), 1),
                Value::Scalar(_) => (1, 1),
                other => {
                    return Err(err(
                        name,
                        &format!("does not accept a {} argument", other.typestr()),
                    ))
                }
            };
            Ok(Value::int(if name == "rows" { r } else { c } as i64))
        }
        "transpose" => {
            one(&args)?;
            match &args[0] {
                Value::Matrix(m) => Ok(Value::Matrix(Rc::new(transpose(m)))),
                other => Err(err(
                    name,
                    &format!("does not accept a {} argument", other.typestr()),
                )),
            }
        }
        "flatten" => {
            one(&args)?;
            match &args[0] {
                Value::Matrix(m) => Ok(Value::Vector(m.data.clone())),
                other => Ok(other.clone()),
            }
        }
        "dict" => {
            if args.len() != 2 {
                return Err(err(name, "expects keys and values"));
            }
            if args[0].size() != args[1].size() {
                return Err(err(name, "needs as many values as keys"));
            }
            let mut d = BTreeMap::new();
            for i in 0..args[0].size() {
                let k = super::builtins::element(&args[0], i)?;
                d.insert(
                    super::builtins::scalar_string(&k)?,
                    super::builtins::element(&args[1], i)?,
                );
            }
            Ok(Value::Dict(d))
        }
        _ => Err(EvalError::msg(format!(
            "Syntax Error: Cannot recognize the token {name}"
        ))),
    }
}
