//! `pivot by` and `cgroup by` (issue 19's eighth family), with DolphinDB's semantics.
//!
//! - `select agg from t pivot by r..., c`: the query grouped by every pivot key, reshaped so
//!   each value of the last key `c` is a column (named by the value; a value that is not a
//!   valid column name becomes `C` plus the value with `_` for each other character, as
//!   DolphinDB names them) and each combination of the other keys a row, both in key order.
//!   With several items each column is `item_value`. `exec agg from t pivot by r, c` gives a
//!   matrix labelled by the row and column values.
//! - `select agg from t [group by g...] cgroup by k`: for each distinct `k` (ascending), the
//!   aggregates over every row of the group with a key at most `k` — running totals by
//!   time, for example.

use std::rc::Rc;

use storage::column::Column;
use storage::types::DataType;

use super::builtins::gather;
use super::interp::Interp;
use super::sql::{compare_rows, default_name, strip_alias};
use super::value::{Matrix, Table, Value};
use super::EvalError;
use crate::parse::ast::Select;

/// DolphinDB's column name for a pivot value.
fn column_name(v: &str) -> String {
    let valid = v.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        return v.to_string();
    }
    let body: String = v
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("C{body}")
}

/// Rows in the order of `cols` (stable), and whether each row starts a new key.
fn key_order(cols: &[&Column], rows: usize) -> (Vec<usize>, Vec<bool>) {
    let cmp = |a: usize, b: usize| {
        cols.iter()
            .map(|c| compare_rows(c, a, b))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    };
    let mut idx: Vec<usize> = (0..rows).collect();
    idx.sort_by(|a, b| cmp(*a, *b));
    let starts = (0..idx.len())
        .map(|k| k == 0 || cmp(idx[k - 1], idx[k]).is_ne())
        .collect();
    (idx, starts)
}

/// Runs `pivot by` over the filtered `table`.
pub(super) async fn pivot(
    it: &mut Interp,
    s: &Select,
    table: Rc<Table>,
) -> Result<Value, EvalError> {
    if !s.group_by.is_empty() || !s.context_by.is_empty() || !s.cgroup_by.is_empty() {
        return Err(EvalError::msg(
            "pivot by cannot be combined with group by, context by or cgroup by",
        ));
    }
    if s.pivot_by.len() < 2 {
        return Err(EvalError::msg(
            "pivot by needs at least two keys: the rows' and the columns'",
        ));
    }
    // The long form: one row per combination of the keys.
    let mut long = s.clone();
    long.group_by = s.pivot_by.clone();
    long.pivot_by.clear();
    long.filters.clear();
    long.order_by.clear();
    long.top = None;
    long.limit = None;
    long.exec = false;
    let Value::Table(t) = Box::pin(super::sql::select_on(it, &long, table)).await? else {
        return Err(EvalError::msg("pivot by: the grouped query gave no table"));
    };
    let nkeys = s.pivot_by.len();
    let nitems = t.columns.len() - nkeys;
    let row_keys: Vec<&Column> = t.columns[..nkeys - 1].iter().map(|(_, c)| c).collect();
    let col_key = &t.columns[nkeys - 1].1;
    let (row_idx, row_starts) = key_order(&row_keys, t.rows());
    let (col_idx, col_starts) = key_order(&[col_key], t.rows());
    // Dense row and column numbers of every long row.
    let number = |idx: &[usize], starts: &[bool]| -> (Vec<usize>, Vec<usize>) {
        let mut of = vec![0; idx.len()];
        let mut firsts = Vec::new();
        let mut n = 0;
        for (k, r) in idx.iter().enumerate() {
            if starts[k] {
                firsts.push(*r);
                n += 1;
            }
            of[*r] = n - 1;
        }
        (of, firsts)
    };
    let (row_of, row_firsts) = number(&row_idx, &row_starts);
    let (col_of, col_firsts) = number(&col_idx, &col_starts);
    let (nr, nc) = (row_firsts.len(), col_firsts.len());
    // For each output cell, the long row that fills it (`None`: no such combination).
    let mut cell = vec![None; nr * nc];
    for r in 0..t.rows() {
        cell[col_of[r] * nr + row_of[r]] = Some(r);
    }
    let values = |item: &Column, c: usize| -> Column {
        let rows: Vec<Option<usize>> = (0..nr).map(|r| cell[c * nr + r]).collect();
        let mut padded = item.clone();
        padded
            .append(&Column::nulls(item.ty, 1))
            .expect("a column takes its own null");
        let idx: Vec<usize> = rows.iter().map(|r| r.unwrap_or(item.len())).collect();
        gather(&padded, &idx)
    };
    if s.exec {
        if nitems != 1 {
            return Err(EvalError::msg("exec ... pivot by takes one item"));
        }
        let item = &t.columns[nkeys].1;
        let mut data = Column::empty(item.ty);
        for c in 0..nc {
            data.append(&values(item, c)).map_err(EvalError::msg)?;
        }
        let labels = |key: &Column, firsts: &[usize]| gather(key, firsts);
        return Ok(Value::Matrix(Rc::new(Matrix {
            rows: nr,
            cols: nc,
            data,
            row_labels: (nkeys == 2).then(|| labels(row_keys[0], &row_firsts)),
            col_labels: Some(labels(col_key, &col_firsts)),
        })));
    }
    let mut columns: Vec<(String, Column)> = t.columns[..nkeys - 1]
        .iter()
        .map(|(n, c)| (n.clone(), gather(c, &row_firsts)))
        .collect();
    for k in 0..nitems {
        let (iname, item) = &t.columns[nkeys + k];
        for (c, first) in col_firsts.iter().enumerate() {
            let v = column_name(&super::builtins::render(col_key, *first));
            let name = if nitems == 1 {
                v
            } else {
                format!("{iname}_{v}")
            };
            columns.push((name, values(item, c)));
        }
    }
    Ok(Value::Table(Rc::new(Table { columns })))
}

/// Runs `cgroup by` over the filtered `table`: the group keys, the cgroup key, the items.
pub(super) async fn cgroup(
    it: &mut Interp,
    s: &Select,
    table: &Rc<Table>,
) -> Result<Table, EvalError> {
    if !s.context_by.is_empty() || s.cgroup_by.len() != 1 {
        return Err(EvalError::msg(
            "cgroup by takes one key and cannot be combined with context by",
        ));
    }
    let rows = table.rows();
    let mut keys = Vec::new();
    for k in s.group_by.iter().chain(&s.cgroup_by) {
        let v = super::sql::eval_over(it, table, strip_alias(k)).await?;
        let c = match v {
            Value::Vector(c) if c.len() == rows => c,
            Value::Scalar(c) => gather(&c, &vec![0; rows]),
            _ => return Err(EvalError::msg("a cgroup by key must give a value per row").at(k.pos)),
        };
        keys.push((default_name(k), c));
    }
    let groups: Vec<&Column> = keys[..s.group_by.len()].iter().map(|(_, c)| c).collect();
    let ckey = &keys[s.group_by.len()].1;
    let g = if groups.is_empty() {
        vec![0u32; rows]
    } else {
        super::group::group(&groups, rows).of_row
    };
    let ngroups = g.iter().max().map_or(0, |m| *m as usize + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); ngroups];
    for (r, id) in g.iter().enumerate() {
        members[*id as usize].push(r);
    }
    // Each group's rows by the cgroup key; each distinct key closes a cumulative group.
    let mut out_rows: Vec<usize> = Vec::new();
    let mut values: Vec<Vec<Value>> = vec![Vec::new(); s.items.len()];
    for rows_of in &mut members {
        rows_of.sort_by(|a, b| compare_rows(ckey, *a, *b));
        for k in 0..rows_of.len() {
            let last =
                k + 1 == rows_of.len() || compare_rows(ckey, rows_of[k], rows_of[k + 1]).is_ne();
            if !last {
                continue;
            }
            let prefix = &rows_of[..=k];
            let sub = Rc::new(Table {
                columns: table
                    .columns
                    .iter()
                    .map(|(n, c)| (n.clone(), gather(c, prefix)))
                    .collect(),
            });
            for (i, item) in s.items.iter().enumerate() {
                values[i].push(super::sql::eval_over(it, &sub, strip_alias(item)).await?);
            }
            out_rows.push(rows_of[k]);
        }
    }
    let mut columns: Vec<(String, Column)> = keys
        .iter()
        .map(|(n, c)| (n.clone(), gather(c, &out_rows)))
        .collect();
    for (item, vals) in s.items.iter().zip(values) {
        let col = match super::interp::to_vector(vals)? {
            Value::Vector(c) => c,
            _ if out_rows.is_empty() => Column::empty(DataType::Double),
            _ => {
                return Err(
                    EvalError::msg("a cgroup by item must give one value per group").at(item.pos),
                )
            }
        };
        columns.push((default_name(item), col));
    }
    // Key order, as group by gives it.
    let out = Table { columns };
    let key_cols: Vec<&Column> = (0..keys.len()).map(|k| &out.columns[k].1).collect();
    let (order, _) = key_order(&key_cols, out.rows());
    Ok(Table {
        columns: out
            .columns
            .iter()
            .map(|(n, c)| (n.clone(), gather(c, &order)))
            .collect(),
    })
}
