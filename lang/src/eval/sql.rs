//! `select` / `exec` over in-memory tables: filter, group by with aggregates, projection.
//!
//! Grouping assigns each row a dense group id from its key values (SYMBOL and STRING keys by
//! their bytes, numbers by value) and every aggregate is computed in one pass over the rows
//! with per-group accumulators — the same partial-aggregate shape the per-chunk operators of a
//! distributed query will use. Groups come out ordered by key.

use std::collections::HashMap;
use std::rc::Rc;

use storage::column::{Column, ColumnData};
use storage::types::DataType;

use super::builtins::gather;
use super::interp::Interp;
use super::ops::{from_num, to_num, Num};
use super::value::{Table, Value};
use super::EvalError;
use crate::parse::ast::{Expr, ExprKind, Select};

const AGGREGATES: [&str; 8] = ["count", "first", "last", "max", "min", "sum", "avg", "mean"];

fn default_name(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Alias { name, .. } => name.clone(),
        ExprKind::Ident(n) => n.clone(),
        ExprKind::Call { func, args } => {
            let f = match &func.kind {
                ExprKind::Ident(n) => n.clone(),
                _ => "col".into(),
            };
            match args.first().map(|a| &a.value.kind) {
                Some(ExprKind::Ident(a)) => format!("{f}_{a}"),
                _ => f,
            }
        }
        _ => "col".into(),
    }
}

fn strip_alias(e: &Expr) -> &Expr {
    match &e.kind {
        ExprKind::Alias { expr, .. } => expr,
        _ => e,
    }
}

/// Evaluates `e` with the table's columns in scope, as a column of `rows` values.
async fn column_of(it: &mut Interp, e: &Expr, rows: usize) -> Result<Column, EvalError> {
    let v = it.eval(e).await?;
    match v {
        Value::Vector(c) if c.len() == rows => Ok(c),
        Value::Scalar(c) => Ok(super::builtins::gather(&c, &vec![0; rows])),
        other => Err(EvalError::msg(format!(
            "a select expression gave a {} of size {}, expected {rows} rows",
            other.typestr(),
            other.size()
        ))
        .at(e.pos)),
    }
}

/// Dense per-row ids for one key column.
fn key_ids(c: &Column) -> Vec<u64> {
    match &c.data {
        ColumnData::Symbol { codes, .. } => codes.iter().map(|c| *c as u64).collect(),
        ColumnData::Bytes { .. } => {
            let mut map: HashMap<&[u8], u64> = HashMap::new();
            (0..c.len())
                .map(|i| {
                    let b = c.bytes_at(i).unwrap_or_default();
                    let next = map.len() as u64;
                    *map.entry(b).or_insert(next)
                })
                .collect()
        }
        _ => match to_num(c) {
            Ok(Num::I(v)) => v.iter().map(|x| *x as u64).collect(),
            Ok(Num::F(v)) => v.iter().map(|x| x.to_bits()).collect(),
            Err(_) => vec![0; c.len()],
        },
    }
}

fn aggregate_groups(
    name: &str,
    c: &Column,
    groups: &[u32],
    ngroups: usize,
) -> Result<Column, EvalError> {
    match name {
        "count" => {
            let mut n = vec![0i64; ngroups];
            for g in groups {
                n[*g as usize] += 1;
            }
            Ok(Column {
                ty: DataType::Long,
                data: ColumnData::I64(n),
            })
        }
        "first" | "last" => {
            let mut pick = vec![usize::MAX; ngroups];
            for (row, g) in groups.iter().enumerate() {
                let p = &mut pick[*g as usize];
                if name == "last" || *p == usize::MAX {
                    *p = row;
                }
            }
            Ok(gather(c, &pick))
        }
        _ => {
            let num =
                to_num(c).map_err(|e| EvalError::msg(format!("The function [{name}] {e}")))?;
            let vals: Vec<f64> = match &num {
                Num::I(v) => v
                    .iter()
                    .map(|x| if *x == i64::MIN { f64::NAN } else { *x as f64 })
                    .collect(),
                Num::F(v) => v.clone(),
            };
            let mut acc = vec![f64::NAN; ngroups];
            let mut cnt = vec![0u64; ngroups];
            for (x, g) in vals.iter().zip(groups) {
                if x.is_nan() {
                    continue;
                }
                let g = *g as usize;
                let a = &mut acc[g];
                *a = match name {
                    "max" => {
                        if a.is_nan() || x > a {
                            *x
                        } else {
                            *a
                        }
                    }
                    "min" => {
                        if a.is_nan() || x < a {
                            *x
                        } else {
                            *a
                        }
                    }
                    _ => {
                        if a.is_nan() {
                            *x
                        } else {
                            *a + x
                        }
                    }
                };
                cnt[g] += 1;
            }
            let ty = match (name, c.ty) {
                ("avg" | "mean", _) => DataType::Double,
                ("sum", DataType::Double | DataType::Float) => DataType::Double,
                ("sum", _) => DataType::Long,
                (_, t) => t,
            };
            if matches!(name, "avg" | "mean") {
                for (a, n) in acc.iter_mut().zip(&cnt) {
                    *a /= (*n).max(1) as f64;
                }
            }
            Ok(match ty {
                DataType::Double | DataType::Float => from_num(Num::F(acc), ty),
                _ => from_num(
                    Num::I(
                        acc.iter()
                            .map(|x| if x.is_nan() { i64::MIN } else { *x as i64 })
                            .collect(),
                    ),
                    ty,
                ),
            })
        }
    }
}

fn aggregate_call(e: &Expr) -> Option<(&str, Option<&Expr>)> {
    if let ExprKind::Call { func, args } = &e.kind {
        if let ExprKind::Ident(f) = &func.kind {
            if let Some(name) = AGGREGATES.iter().find(|a| **a == f.as_str()) {
                return match args.first() {
                    Some(a) if matches!(a.value.kind, ExprKind::Star) => Some((name, None)),
                    Some(a) if args.len() == 1 => Some((name, Some(&a.value))),
                    None => Some((name, None)),
                    _ => None,
                };
            }
        }
    }
    None
}

/// Runs a `select` / `exec`.
pub async fn select(it: &mut Interp, s: &Select) -> Result<Value, EvalError> {
    // Parsed but not evaluated yet: refuse rather than silently ignore a clause.
    let unsupported = [
        (!s.context_by.is_empty(), "context by"),
        (s.having.is_some(), "having"),
        (!s.order_by.is_empty(), "order by"),
        (s.top.is_some(), "top"),
        (s.limit.is_some(), "limit"),
    ];
    if let Some((_, clause)) = unsupported.iter().find(|(present, _)| *present) {
        return Err(EvalError::msg(format!(
            "the '{clause}' clause is not supported yet"
        )));
    }
    let t = match it.eval(&s.from).await? {
        Value::Table(t) => t,
        Value::DfsTable { db, table } => {
            let dfs = it
                .dfs
                .clone()
                .ok_or_else(|| EvalError::msg("this node serves no dfs:// databases"))?;
            Rc::new(dfs.scan(&db, &table).await?)
        }
        _ => return Err(EvalError::msg("select ... from needs a table").at(s.from.pos)),
    };
    let mut table: Rc<Table> = t;
    let scope = |t: &Table| {
        t.columns
            .iter()
            .map(|(n, c)| (n.clone(), Value::Vector(c.clone())))
            .collect::<HashMap<_, _>>()
    };
    // where
    if !s.filters.is_empty() {
        it.push_scope(scope(&table));
        let mut keep: Option<Vec<bool>> = None;
        for f in &s.filters {
            let c = column_of(it, f, table.rows()).await;
            let c = match c {
                Ok(c) => c,
                Err(e) => {
                    it.pop_scope();
                    return Err(e);
                }
            };
            let mask: Vec<bool> = (0..c.len())
                .map(|i| super::ops::scalar_f64(&c, i).is_some_and(|x| x != 0.0 && x.is_finite()))
                .collect();
            keep = Some(match keep {
                None => mask,
                Some(k) => k.iter().zip(&mask).map(|(a, b)| *a && *b).collect(),
            });
        }
        it.pop_scope();
        let idx: Vec<usize> = keep
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter(|(_, k)| **k)
            .map(|(i, _)| i)
            .collect();
        table = Rc::new(Table {
            columns: table
                .columns
                .iter()
                .map(|(n, c)| (n.clone(), gather(c, &idx)))
                .collect(),
        });
    }
    let rows = table.rows();
    it.push_scope(scope(&table));
    let result = run_projection(it, s, &table, rows).await;
    it.pop_scope();
    let out = result?;
    if s.exec {
        if let [(_, c)] = out.columns.as_slice() {
            return Ok(Value::Vector(c.clone()));
        }
    }
    Ok(Value::Table(Rc::new(out)))
}

async fn run_projection(
    it: &mut Interp,
    s: &Select,
    table: &Table,
    rows: usize,
) -> Result<Table, EvalError> {
    let mut columns: Vec<(String, Column)> = Vec::new();
    if s.group_by.is_empty() {
        let all_agg = s
            .items
            .iter()
            .all(|i| aggregate_call(strip_alias(i)).is_some());
        for item in &s.items {
            if matches!(item.kind, ExprKind::Star) {
                columns.extend(table.columns.iter().cloned());
                continue;
            }
            let name = default_name(item);
            let e = strip_alias(item);
            let c = match aggregate_call(e) {
                Some((f, arg)) if all_agg => {
                    let arg = match arg {
                        Some(a) => column_of(it, a, rows).await?,
                        None => Column {
                            ty: DataType::Long,
                            data: ColumnData::I64(vec![0; rows]),
                        },
                    };
                    aggregate_groups(f, &arg, &vec![0; rows], 1)?
                }
                _ => column_of(it, e, rows).await?,
            };
            columns.push((name, c));
        }
        return Ok(Table { columns });
    }
    // group by: dense ids per key, combined into group ids.
    let mut keys: Vec<(String, Column)> = Vec::new();
    for k in &s.group_by {
        keys.push((default_name(k), column_of(it, strip_alias(k), rows).await?));
    }
    let key_id_cols: Vec<Vec<u64>> = keys.iter().map(|(_, c)| key_ids(c)).collect();
    let mut map: HashMap<Vec<u64>, u32> = HashMap::new();
    let mut first_row: Vec<usize> = Vec::new();
    let mut groups: Vec<u32> = Vec::with_capacity(rows);
    let mut key = Vec::with_capacity(key_id_cols.len());
    for row in 0..rows {
        key.clear();
        key.extend(key_id_cols.iter().map(|k| k[row]));
        let next = map.len() as u32;
        let g = *map.entry(key.clone()).or_insert_with(|| {
            first_row.push(row);
            next
        });
        groups.push(g);
    }
    let ngroups = first_row.len();
    // Order groups by their key values.
    let key_cols: Vec<Column> = keys.iter().map(|(_, c)| gather(c, &first_row)).collect();
    let mut order: Vec<usize> = (0..ngroups).collect();
    order.sort_by(|a, b| {
        for c in &key_cols {
            let o = match (c.bytes_at(*a), c.bytes_at(*b)) {
                (Some(x), Some(y)) => x.cmp(y),
                _ => super::ops::scalar_f64(c, *a)
                    .unwrap_or(0.0)
                    .total_cmp(&super::ops::scalar_f64(c, *b).unwrap_or(0.0)),
            };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    for ((name, _), c) in keys.iter().zip(&key_cols) {
        columns.push((name.clone(), gather(c, &order)));
    }
    for item in &s.items {
        let name = default_name(item);
        let e = strip_alias(item);
        let Some((f, arg)) = aggregate_call(e) else {
            return Err(EvalError::msg(format!("'{name}' must be an aggregate (count, first, last, max, min, sum, avg) in a group by query")).at(item.pos));
        };
        let arg = match arg {
            Some(a) => column_of(it, a, rows).await?,
            None => Column {
                ty: DataType::Long,
                data: ColumnData::I64(vec![0; rows]),
            },
        };
        let agg = aggregate_groups(f, &arg, &groups, ngroups)?;
        columns.push((name, gather(&agg, &order)));
    }
    Ok(Table { columns })
}
