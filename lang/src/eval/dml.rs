//! `update`, `delete` and `insert into` on in-memory tables held in variables.
//!
//! Invariant: a statement builds the whole new table before it rebinds the variable, so an
//! error (a bad expression, a type that does not convert) leaves the table unchanged.

use std::rc::Rc;

use storage::column::Column;

use super::builtins::{cast, gather};
use super::interp::Interp;
use super::sql::filter_mask;
use super::value::{Table, Value};
use super::EvalError;
use crate::parse::ast::{Expr, ExprKind};

/// The variable a statement changes, and its table.
fn target(it: &Interp, table: &Expr, what: &str) -> Result<(String, Rc<Table>), EvalError> {
    let ExprKind::Ident(name) = &table.kind else {
        return Err(EvalError::msg(format!("{what} needs a table variable")).at(table.pos));
    };
    match it.var(name) {
        Some(Value::Table(t)) => Ok((name.clone(), t.clone())),
        Some(Value::DfsTable { .. }) => Err(EvalError::msg(format!(
            "{what} on a dfs:// table is not supported yet; append! new rows instead"
        ))
        .at(table.pos)),
        Some(other) => Err(EvalError::msg(format!(
            "{what} needs a table, '{name}' is a {}",
            other.typestr()
        ))
        .at(table.pos)),
        None => Err(EvalError::msg(format!("Variable '{name}' isn't initialized")).at(table.pos)),
    }
}

/// Replaces the rows of `old` where `mask` holds with those of `new` (cast to `old`'s type).
fn overlay(old: &Column, new: &Column, mask: &[bool]) -> Result<Column, EvalError> {
    let new = if new.ty == old.ty {
        new.clone()
    } else {
        cast(new, old.ty)?
    };
    let rows = old.len();
    let mut both = old.clone();
    both.append(&new).map_err(EvalError::msg)?;
    let idx: Vec<usize> = (0..rows)
        .map(|i| if mask[i] { rows + i } else { i })
        .collect();
    Ok(gather(&both, &idx))
}

pub async fn update(
    it: &mut Interp,
    table: &Expr,
    sets: &[(String, Expr)],
    filters: &[Expr],
) -> Result<Value, EvalError> {
    let (name, t) = target(it, table, "update")?;
    let rows = t.rows();
    let mask = filter_mask(it, &t, filters).await?;
    let mut out = (*t).clone();
    for (col, e) in sets {
        let v = super::sql::eval_over(it, &t, e).await?;
        let new = match v {
            Value::Vector(c) if c.len() == rows => c,
            Value::Scalar(c) => gather(&c, &vec![0; rows]),
            // `set x = NULL`: nulls of the column's type.
            Value::Void => {
                let ty = out
                    .column(col)
                    .map(|c| c.ty)
                    .unwrap_or(storage::types::DataType::Int);
                Column::nulls(ty, rows)
            }
            other => {
                return Err(EvalError::msg(format!(
                    "update: '{col}' would get a {} of size {}, the table has {rows} rows",
                    other.typestr(),
                    other.size()
                ))
                .at(e.pos))
            }
        };
        match out
            .columns
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(col))
        {
            Some((_, c)) => *c = overlay(c, &new, &mask)?,
            None => {
                let c = overlay(&Column::nulls(new.ty, rows), &new, &mask)?;
                out.columns.push((col.clone(), c));
            }
        }
    }
    it.set(&name, Value::Table(Rc::new(out)));
    Ok(Value::Void)
}

pub async fn delete(it: &mut Interp, table: &Expr, filters: &[Expr]) -> Result<Value, EvalError> {
    let (name, t) = target(it, table, "delete")?;
    let mask = filter_mask(it, &t, filters).await?;
    let keep: Vec<usize> = (0..t.rows()).filter(|i| !mask[*i]).collect();
    let out = Table {
        columns: t
            .columns
            .iter()
            .map(|(n, c)| (n.clone(), gather(c, &keep)))
            .collect(),
    };
    it.set(&name, Value::Table(Rc::new(out)));
    Ok(Value::Void)
}

pub async fn insert(
    it: &mut Interp,
    table: &Expr,
    columns: &[String],
    values: &[Expr],
) -> Result<Value, EvalError> {
    let (name, t) = target(it, table, "insert into")?;
    let names: Vec<String> = if columns.is_empty() {
        t.columns.iter().map(|(n, _)| n.clone()).collect()
    } else {
        columns.to_vec()
    };
    if names.len() != values.len() {
        return Err(EvalError::msg(format!(
            "insert into {name}: {} values for {} columns",
            values.len(),
            names.len()
        )));
    }
    let mut given = Vec::new();
    for (n, e) in names.iter().zip(values) {
        let c = match it.eval(e).await? {
            Value::Scalar(c) | Value::Vector(c) => c,
            other => {
                return Err(EvalError::msg(format!(
                    "insert into {name}: a {} value",
                    other.typestr()
                ))
                .at(e.pos))
            }
        };
        if t.column(n).is_none() {
            return Err(
                EvalError::msg(format!("insert into {name}: no column named {n}")).at(e.pos),
            );
        }
        given.push((n, c));
    }
    let added = given.first().map(|(_, c)| c.len()).unwrap_or(0);
    if given.iter().any(|(_, c)| c.len() != added) {
        return Err(EvalError::msg(format!(
            "insert into {name}: the values have different lengths"
        )));
    }
    let mut out = (*t).clone();
    for (n, c) in out.columns.iter_mut() {
        let piece = match given.iter().find(|(g, _)| g.eq_ignore_ascii_case(n)) {
            Some((_, v)) if v.ty == c.ty => v.clone(),
            Some((_, v)) => cast(v, c.ty)?,
            None => Column::nulls(c.ty, added),
        };
        c.append(&piece).map_err(EvalError::msg)?;
    }
    it.set(&name, Value::Table(Rc::new(out)));
    Ok(Value::Void)
}
