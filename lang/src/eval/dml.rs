//! `update`, `delete` and `insert into`: on in-memory tables held in variables, and `update`
//! and `delete` on `dfs://` tables (each changed partition rewritten, in one transaction).
//!
//! Invariant: a statement builds the whole new table (or every changed partition) before it
//! rebinds the variable (or commits), so an error — a bad expression, a type that does not
//! convert — leaves the table unchanged.

use std::rc::Rc;

use storage::column::Column;

use super::builtins::{cast, gather};
use super::interp::Interp;
use super::sql::filter_mask;
use super::value::{Table, Value};
use super::EvalError;
use crate::parse::ast::{Expr, ExprKind};

/// What a statement changes: an in-memory table held in a variable, or a `dfs://` table.
enum Target {
    Memory(String, Rc<Table>),
    Dfs { db: String, table: String },
}

/// The table a statement changes.
fn target(it: &Interp, table: &Expr, what: &str) -> Result<Target, EvalError> {
    let ExprKind::Ident(name) = &table.kind else {
        return Err(EvalError::msg(format!("{what} needs a table variable")).at(table.pos));
    };
    match it.var(name) {
        Some(Value::Table(t)) => Ok(Target::Memory(name.clone(), t.clone())),
        Some(Value::DfsTable { db, table }) => Ok(Target::Dfs {
            db: db.clone(),
            table: table.clone(),
        }),
        Some(other) => Err(EvalError::msg(format!(
            "{what} needs a table, '{name}' is a {}",
            other.typestr()
        ))
        .at(table.pos)),
        None => Err(EvalError::msg(format!("Variable '{name}' isn't initialized")).at(table.pos)),
    }
}

/// The variable and table an in-memory-only statement changes.
fn memory_target(it: &Interp, table: &Expr, what: &str) -> Result<(String, Rc<Table>), EvalError> {
    match target(it, table, what)? {
        Target::Memory(name, t) => Ok((name, t)),
        Target::Dfs { .. } => Err(EvalError::msg(format!(
            "{what} on a dfs:// table is not supported; append! new rows instead"
        ))
        .at(table.pos)),
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

/// `t` after `update … set sets` on the rows `mask` selects. With `add`, a `set` naming a
/// column `t` lacks adds it (in-memory tables); otherwise that is an error.
async fn updated(
    it: &mut Interp,
    t: &Rc<Table>,
    sets: &[(String, Expr)],
    mask: &[bool],
    add: bool,
) -> Result<Table, EvalError> {
    let rows = t.rows();
    let mut out = (**t).clone();
    for (col, e) in sets {
        let v = super::sql::eval_over(it, t, e).await?;
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
            Some((_, c)) => *c = overlay(c, &new, mask)?,
            None if add => {
                let c = overlay(&Column::nulls(new.ty, rows), &new, mask)?;
                out.columns.push((col.clone(), c));
            }
            None => {
                return Err(EvalError::msg(format!(
                    "The column [{col}] does not exist in the table; add it with addColumn first"
                ))
                .at(e.pos))
            }
        }
    }
    Ok(out)
}

/// `t` without the rows `mask` selects.
fn deleted(t: &Table, mask: &[bool]) -> Table {
    let keep: Vec<usize> = (0..t.rows()).filter(|i| !mask[*i]).collect();
    Table {
        columns: t
            .columns
            .iter()
            .map(|(n, c)| (n.clone(), gather(c, &keep)))
            .collect(),
    }
}

/// How a statement changes the rows it selects.
enum Change<'a> {
    Update(&'a [(String, Expr)]),
    Delete,
}

/// A rewrite that met a concurrent write is computed again from the new rows this many times.
const REWRITE_ATTEMPTS: u32 = 5;
const REWRITE_PAUSE_MS: u64 = 100;

/// `update` / `delete` on a `dfs://` table: each partition that may hold selected rows is
/// read at the snapshot's version and changed as an in-memory table would be; the changed
/// partitions are replaced in one transaction. `where` and `set` expressions are evaluated
/// per partition, as DolphinDB runs them.
async fn rewrite_dfs(
    it: &mut Interp,
    db: &str,
    table: &str,
    filters: &[Expr],
    change: Change<'_>,
) -> Result<Value, EvalError> {
    let Some(dfs) = it.dfs.clone() else {
        return Err(EvalError::msg("this node has no dfs:// catalog"));
    };
    if it.user.is_none() {
        return Err(EvalError::msg(
            "<NoPrivilege>Not granted to write tables: log in first with login(userId, password)",
        ));
    }
    // A resent request whose rewrite committed the first time: answered, not applied again
    // (an `update t set x = x + 1` must not add twice).
    let (tag, done) = it.next_write(dfs.as_ref()).await?;
    if done.is_some() {
        return Ok(Value::Void);
    }
    for attempt in 1..=REWRITE_ATTEMPTS {
        let info = dfs.table(db, table).await?;
        if let Change::Update(sets) = &change {
            for (col, e) in sets.iter() {
                let is_partitioning = info
                    .partition_columns
                    .iter()
                    .any(|i| info.schema.columns[*i].0.eq_ignore_ascii_case(col));
                if is_partitioning {
                    return Err(EvalError::msg(format!(
                        "The partitioning column [{col}] cannot be updated"
                    ))
                    .at(e.pos));
                }
            }
        }
        let preds = super::sql::partition_preds(it, &info, filters).await?;
        let all: Vec<usize> = (0..info.schema.columns.len()).collect();
        let mut rewrites = Vec::new();
        for p in crate::catalog::prune(&info, &preds) {
            let cols = dfs.scan_chunk(p, &all).await?;
            let t = Rc::new(Table {
                columns: info
                    .schema
                    .columns
                    .iter()
                    .map(|(n, _)| n.clone())
                    .zip(cols)
                    .collect(),
            });
            if t.rows() == 0 {
                continue;
            }
            let mask = filter_mask(it, &t, filters).await?;
            if !mask.iter().any(|m| *m) {
                continue;
            }
            let out = match &change {
                Change::Update(sets) => updated(it, &t, sets, &mask, false).await?,
                Change::Delete => deleted(&t, &mask),
            };
            rewrites.push((p.clone(), out.columns.into_iter().map(|(_, c)| c).collect()));
        }
        if rewrites.is_empty() {
            return Ok(Value::Void);
        }
        match dfs.rewrite(db, table, rewrites, tag.clone()).await {
            Ok(()) => return Ok(Value::Void),
            // Written meanwhile: read the new rows and compute again.
            Err(e)
                if attempt < REWRITE_ATTEMPTS && e.to_string().contains("<ChunkInTransaction>") =>
            {
                rt::time::sleep(std::time::Duration::from_millis(
                    REWRITE_PAUSE_MS * u64::from(attempt),
                ))
                .await;
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

pub async fn update(
    it: &mut Interp,
    table: &Expr,
    sets: &[(String, Expr)],
    filters: &[Expr],
) -> Result<Value, EvalError> {
    match target(it, table, "update")? {
        Target::Memory(name, t) => {
            let mask = filter_mask(it, &t, filters).await?;
            let out = updated(it, &t, sets, &mask, true).await?;
            it.set(&name, Value::Table(Rc::new(out)));
            Ok(Value::Void)
        }
        Target::Dfs { db, table } => {
            rewrite_dfs(it, &db, &table, filters, Change::Update(sets)).await
        }
    }
}

pub async fn delete(it: &mut Interp, table: &Expr, filters: &[Expr]) -> Result<Value, EvalError> {
    match target(it, table, "delete")? {
        Target::Memory(name, t) => {
            let mask = filter_mask(it, &t, filters).await?;
            it.set(&name, Value::Table(Rc::new(deleted(&t, &mask))));
            Ok(Value::Void)
        }
        Target::Dfs { db, table } => rewrite_dfs(it, &db, &table, filters, Change::Delete).await,
    }
}

pub async fn insert(
    it: &mut Interp,
    table: &Expr,
    columns: &[String],
    values: &[Expr],
) -> Result<Value, EvalError> {
    let (name, t) = memory_target(it, table, "insert into")?;
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
