//! `select` / `exec` over in-memory tables: filter, group by with aggregates, projection.
//!
//! Grouping assigns each row a dense group id from its key values (SYMBOL and STRING keys by
//! their bytes, numbers by value) and every aggregate is computed in one pass over the rows
//! with per-group accumulators — the same partial-aggregate shape the per-chunk operators of a
//! distributed query will use. Groups come out ordered by key.

use std::rc::Rc;

use storage::column::{Column, ColumnData};
use storage::types::DataType;

use super::builtins::gather;
pub(crate) use super::group::compare_rows;
use super::group::{group_rows, Grouping};
use super::interp::Interp;
use super::ops::{from_num, to_num, Num};
use super::value::{Table, Value};
use super::EvalError;
use crate::parse::ast::{Expr, ExprKind, Select};

const AGGREGATES: [&str; 8] = ["count", "first", "last", "max", "min", "sum", "avg", "mean"];

pub(crate) fn default_name(e: &Expr) -> String {
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

pub(crate) fn strip_alias(e: &Expr) -> &Expr {
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

/// Like [`column_of`], but a bare column name borrows the table's column instead of copying
/// it (an aggregate's argument, a group key: `first(LastPx)` over 24M rows is 194 MB).
async fn column_ref<'a>(
    it: &mut Interp,
    table: &'a Table,
    e: &Expr,
    rows: usize,
) -> Result<std::borrow::Cow<'a, Column>, EvalError> {
    if let ExprKind::Ident(n) = &e.kind {
        if let Some(c) = table.column(n).filter(|c| c.len() == rows) {
            return Ok(std::borrow::Cow::Borrowed(c));
        }
    }
    Ok(std::borrow::Cow::Owned(column_of(it, e, rows).await?))
}

pub(crate) fn aggregate_groups(
    name: &str,
    c: &Column,
    groups: &[u32],
    ngroups: usize,
) -> Result<Column, EvalError> {
    match name {
        "count" => {
            // Non-null values, as DolphinDB's count(col); count(*) passes a column of zeros.
            let mut n = vec![0i64; ngroups];
            let nulls = super::builtins::null_mask(c);
            for (g, null) in groups.iter().zip(&nulls) {
                n[*g as usize] += (!null) as i64;
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
        "max" | "min" | "sum" | "avg" | "mean" if matches!(c.data, ColumnData::F64(_)) => {
            // DOUBLE columns (prices): one pass, no conversion.
            let ColumnData::F64(v) = &c.data else {
                unreachable!("matched above")
            };
            let null = storage::types::null::F64;
            let mut acc = vec![null; ngroups];
            let mut cnt = vec![0u32; ngroups];
            for (x, g) in v.iter().zip(groups) {
                if *x == null {
                    continue;
                }
                let g = *g as usize;
                let a = &mut acc[g];
                *a = if *a == null {
                    *x
                } else {
                    match name {
                        "max" => a.max(*x),
                        "min" => a.min(*x),
                        _ => *a + x,
                    }
                };
                cnt[g] += 1;
            }
            if matches!(name, "avg" | "mean") {
                for (a, n) in acc.iter_mut().zip(&cnt) {
                    if *n > 0 {
                        *a /= *n as f64;
                    }
                }
            }
            Ok(Column {
                ty: DataType::Double,
                data: ColumnData::F64(acc),
            })
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

pub(crate) fn aggregate_call(e: &Expr) -> Option<(&str, Option<&Expr>)> {
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

/// Rows `idx` of every column.
fn take_rows(t: &Table, idx: &[usize]) -> Table {
    Table {
        columns: t
            .columns
            .iter()
            .map(|(n, c)| (n.clone(), gather(c, idx)))
            .collect(),
    }
}

/// Evaluates `e` over `t`'s columns.
pub(crate) async fn eval_over(
    it: &mut Interp,
    t: &Rc<Table>,
    e: &Expr,
) -> Result<Value, EvalError> {
    it.push_tables(vec![t.clone()]);
    let r = it.eval(e).await;
    it.pop_scope();
    r
}

/// Whether each row passes every `where` condition (rows with a null condition do not).
pub(crate) async fn filter_mask(
    it: &mut Interp,
    t: &Rc<Table>,
    filters: &[Expr],
) -> Result<Vec<bool>, EvalError> {
    let rows = t.rows();
    let mut keep = vec![true; rows];
    it.push_tables(vec![t.clone()]);
    for f in filters {
        let c = match column_of(it, f, rows).await {
            Ok(c) => c,
            Err(e) => {
                it.pop_scope();
                return Err(e);
            }
        };
        for (i, k) in keep.iter_mut().enumerate() {
            *k = *k && super::ops::scalar_f64(&c, i).is_some_and(|x| x != 0.0 && x.is_finite());
        }
    }
    it.pop_scope();
    Ok(keep)
}

/// The rows of `t` that pass every condition.
pub(crate) async fn filtered(
    it: &mut Interp,
    t: &Rc<Table>,
    filters: &[Expr],
) -> Result<Table, EvalError> {
    let keep = filter_mask(it, t, filters).await?;
    let idx: Vec<usize> = (0..keep.len()).filter(|i| keep[*i]).collect();
    Ok(take_rows(t, &idx))
}

/// The table a query reads: an in-memory table, or the rows of the partitions of a
/// partitioned table that the `where` conditions can touch. For a partitioned table the
/// row-wise conditions are applied where the chunks are (`crate::fragment`); the second value
/// says which conditions the rows already passed.
pub(crate) async fn source(
    it: &mut Interp,
    from: &Expr,
    filters: &[Expr],
    columns: Option<&[String]>,
) -> Result<(Rc<Table>, Vec<bool>), EvalError> {
    match it.eval(from).await? {
        Value::Table(t) => Ok((t, vec![false; filters.len()])),
        Value::DfsTable { db, table } => {
            let dfs = it
                .dfs
                .clone()
                .ok_or_else(|| EvalError::msg("this node serves no dfs:// databases"))?;
            let info = dfs.table(&db, &table).await?;
            let preds = partition_preds(it, &info, filters).await?;
            let parts = crate::catalog::prune(&info, &preds);
            it.partitions_read = parts.len();
            let applied: Vec<bool> = filters.iter().map(crate::fragment::row_wise).collect();
            let items = match columns {
                None => vec![Expr {
                    kind: ExprKind::Star,
                    pos: from.pos,
                }],
                Some(names) => names
                    .iter()
                    .map(|n| Expr {
                        kind: ExprKind::Ident(n.clone()),
                        pos: from.pos,
                    })
                    .collect(),
            };
            let query = Select {
                items,
                filters: filters
                    .iter()
                    .zip(&applied)
                    .filter(|(_, a)| **a)
                    .map(|(f, _)| f.clone())
                    .collect(),
                ..Select::over(from.clone())
            };
            let (query, bindings, applied) =
                match crate::fragment::bindings(it, &query, &info.schema) {
                    Some(b) => (query, b, applied),
                    // A condition names a user function: the rows travel, every condition is
                    // applied here.
                    None => {
                        let mut q = query;
                        q.filters.clear();
                        (q, Vec::new(), vec![false; filters.len()])
                    }
                };
            let f = crate::fragment::Fragment {
                mode: crate::fragment::Mode::Rows,
                info: info.clone(),
                parts: parts.into_iter().cloned().collect(),
                query,
                bindings,
                join: None,
            };
            let read = crate::fragment::read_columns(&f.query, &info.schema);
            let mut out: Vec<(String, Column)> = read
                .iter()
                .map(|i| {
                    let (n, t) = &info.schema.columns[*i];
                    (n.clone(), Column::empty(*t))
                })
                .collect();
            for piece in dfs.execute(&f).await? {
                for ((_, o), (_, c)) in out.iter_mut().zip(piece.columns) {
                    if o.is_empty() {
                        *o = c;
                    } else {
                        o.append(&c).map_err(EvalError::msg)?;
                    }
                }
            }
            Ok((Rc::new(Table { columns: out }), applied))
        }
        _ => Err(EvalError::msg("select ... from needs a table").at(from.pos)),
    }
}

/// The names a query may read as columns (`None`: it may read any, e.g. `select *`). A
/// partitioned table is read for these columns only.
pub(crate) fn referenced_columns(s: &Select) -> Option<Vec<String>> {
    if s.items.iter().any(|i| matches!(i.kind, ExprKind::Star)) {
        return None;
    }
    let exprs = s.exprs();
    names_in(exprs)
}

/// The identifiers `exprs` name, or `None` when one holds a sub-query or a lambda (which may
/// name any column).
pub(crate) fn names_in<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut all = false;
    for e in exprs {
        crate::parse::ast::walk(e, &mut |x| match &x.kind {
            ExprKind::Ident(n) => names.push(n.clone()),
            ExprKind::Select(_) | ExprKind::Lambda { .. } => all = true,
            _ => {}
        });
    }
    (!all).then_some(names)
}

/// Whether `e` names any of `names` (then it is not a constant of the query).
fn mentions(e: &Expr, names: &[&str]) -> bool {
    let mut found = false;
    crate::parse::ast::walk(e, &mut |x| match &x.kind {
        ExprKind::Ident(n) => found |= names.iter().any(|c| c.eq_ignore_ascii_case(n)),
        // A sub-query or a lambda might read the columns: not a constant.
        ExprKind::Select(_) | ExprKind::Lambda { .. } => found = true,
        _ => {}
    });
    found
}

/// The partitioning column a side of a comparison names: `col`, or `date(col)` for a DATE
/// level (the same keys).
pub(super) fn names_column(e: &Expr, col: &str, level_ty: DataType) -> bool {
    match &e.kind {
        ExprKind::Ident(n) => n.eq_ignore_ascii_case(col),
        ExprKind::Call { func, args } if level_ty == DataType::Date && args.len() == 1 => {
            matches!(&func.kind, ExprKind::Ident(f) if f == "date")
                && matches!(&args[0].value.kind, ExprKind::Ident(n) if n.eq_ignore_ascii_case(col))
        }
        _ => false,
    }
}

/// What the `where` conditions allow of each partitioning column: `col op constant`,
/// `constant op col`, `col between a:b` and `col in v` are used; anything else reads every
/// partition (conservative: pruning never drops a partition with a matching row).
pub(super) async fn partition_preds(
    it: &mut Interp,
    info: &crate::catalog::TableInfo,
    filters: &[Expr],
) -> Result<Vec<(usize, crate::partition::Pred)>, EvalError> {
    use crate::partition::{keys_of, Key, Pred};
    let (schema, pcols) = (&info.schema, &info.partition_columns);
    let types = info.scheme.types();
    let names: Vec<&str> = schema.columns.iter().map(|(n, _)| n.as_str()).collect();
    let mut out = Vec::new();
    for f in filters {
        let ExprKind::Binary { op, left, right } = &f.kind else {
            continue;
        };
        for (level, col) in pcols.iter().enumerate() {
            let (cname, ty) = (names[*col], types[level]);
            let (other, op) = if names_column(left, cname, ty) {
                (right, op.as_str())
            } else if names_column(right, cname, ty) {
                let flipped = match op.as_str() {
                    "<" => ">",
                    "<=" => ">=",
                    ">" => "<",
                    ">=" => "<=",
                    // In a `where` clause `=` compares, as `==` does.
                    "==" | "=" => "==",
                    _ => continue,
                };
                (left, flipped)
            } else {
                continue;
            };
            if mentions(other, &names) {
                continue;
            }
            let Ok(v) = it.eval(other).await else {
                continue;
            };
            // `x < c` is `x <= c - 1` when keys are the values themselves (same integral type);
            // a key mapped from another type (a DATETIME to its day) stays inclusive.
            let strict = |op: &str, k: Key, v: &Value| match (k, v.column().map(|c| c.ty)) {
                (Key::I(x), Some(t)) if t == ty && op == "<" => Key::I(x.saturating_sub(1)),
                (Key::I(x), Some(t)) if t == ty && op == ">" => Key::I(x.saturating_add(1)),
                (k, _) => k,
            };
            let keys = |v: &Value| -> Option<Vec<Key>> {
                let k = keys_of(ty, v.column()?).ok()?;
                (!k.is_empty() && !k.contains(&Key::Null)).then_some(k)
            };
            let pred = match (op, &v) {
                ("between", Value::Pair(a, b)) => match (keys(a), keys(b)) {
                    (Some(a), Some(b)) => Pred::Between(a.into_iter().min(), b.into_iter().max()),
                    _ => continue,
                },
                (_, Value::Pair(..)) => continue,
                ("==" | "=" | "in", v) => match keys(v) {
                    Some(k) => Pred::In(k),
                    None => continue,
                },
                ("<" | "<=", v) => match keys(v) {
                    Some(k) => Pred::Between(None, k.into_iter().max().map(|k| strict(op, k, v))),
                    None => continue,
                },
                (">" | ">=", v) => match keys(v) {
                    Some(k) => Pred::Between(k.into_iter().min().map(|k| strict(op, k, v)), None),
                    None => continue,
                },
                _ => continue,
            };
            out.push((level, pred));
        }
    }
    Ok(out)
}

/// Runs a `select` / `exec`.
pub async fn select(it: &mut Interp, s: &Select) -> Result<Value, EvalError> {
    if s.distinct && !(s.group_by.is_empty() && s.context_by.is_empty() && s.pivot_by.is_empty()) {
        return Err(EvalError::msg(
            "The keyword distinct cannot be used with group by, context by or pivot by",
        )
        .at(s.from.pos));
    }
    if let Some(v) = super::partial::try_select(it, s).await? {
        return Ok(v);
    }
    if let Some(v) = super::partitionwise::try_select(it, s).await? {
        return Ok(v);
    }
    if let Some(v) = super::topk::try_select(it, s).await? {
        return Ok(v);
    }
    if let Some((joined, s)) = super::joins::sql_source(it, s).await? {
        return select_over(it, &s, Some(joined)).await;
    }
    select_over(it, s, None).await
}

/// The columns of `t` a query reads (every stage copies the columns it sees into its scope,
/// so a query over 3 of 9 columns copies 3). The first column stays, so the row count does.
fn narrowed(t: Rc<Table>, names: &[String]) -> Rc<Table> {
    let read = |n: &str| names.iter().any(|m| m.eq_ignore_ascii_case(n));
    if t.columns.iter().all(|(n, _)| read(n)) {
        return t;
    }
    Rc::new(Table {
        columns: t
            .columns
            .iter()
            .enumerate()
            .filter(|(i, (n, _))| *i == 0 || read(n))
            .map(|(_, c)| c.clone())
            .collect(),
    })
}

/// Runs a query over `table` instead of its `from` (its `where` still applies).
pub(crate) async fn select_on(
    it: &mut Interp,
    s: &Select,
    table: Rc<Table>,
) -> Result<Value, EvalError> {
    select_over(it, s, Some(table)).await
}

/// Runs a query over `joined` (a join already computed) or over its `from`.
async fn select_over(
    it: &mut Interp,
    s: &Select,
    joined: Option<Rc<Table>>,
) -> Result<Value, EvalError> {
    let columns = referenced_columns(s);
    let (mut table, applied) = match joined {
        Some(t) => (t, vec![false; s.filters.len()]),
        None => source(it, &s.from, &s.filters, columns.as_deref()).await?,
    };
    if let Some(names) = &columns {
        table = narrowed(table, names);
    }
    let left: Vec<Expr> = s
        .filters
        .iter()
        .zip(&applied)
        .filter(|(_, a)| !**a)
        .map(|(f, _)| f.clone())
        .collect();
    if !left.is_empty() {
        let keep = filter_mask(it, &table, &left).await?;
        let idx: Vec<usize> = (0..keep.len()).filter(|i| keep[*i]).collect();
        table = Rc::new(take_rows(&table, &idx));
    }
    if !s.pivot_by.is_empty() {
        return super::sql_forms::pivot(it, s, table).await;
    }
    let rows = table.rows();
    let (out, row_aligned, mut groups) = if !s.context_by.is_empty() {
        let (out, sizes) = context_by(it, s, &table).await?;
        (out, false, Some(sizes))
    } else if !s.cgroup_by.is_empty() {
        (super::sql_forms::cgroup(it, s, &table).await?, false, None)
    } else {
        it.push_tables(vec![table.clone()]);
        let r = run_projection(it, s, &table, rows).await;
        it.pop_scope();
        let out = r?;
        let aligned = s.group_by.is_empty() && out.rows() == rows;
        (out, aligned, None)
    };
    let (mut out, row_aligned) = if s.distinct {
        let before = out.rows();
        let kept = distinct_rows(&out);
        let aligned = row_aligned && kept.len() == before;
        (take_rows(&out, &kept), aligned)
    } else {
        (out, row_aligned)
    };
    // With `context by`, `top` and `limit` take rows of each group (before `order by`, which
    // sorts what they kept); otherwise rows of the result, after it.
    if let Some(sizes) = groups.as_mut() {
        for e in [&s.top, &s.limit].into_iter().flatten() {
            let n = super::builtins::scalar_i64(&it.eval(e).await?).map_err(|e2| e2.at(e.pos))?;
            let mut idx = Vec::new();
            let mut start = 0;
            for size in sizes.iter_mut() {
                let kept = limited(*size, n);
                idx.extend(start + kept.start..start + kept.end);
                start += *size;
                *size = kept.len();
            }
            out = take_rows(&out, &idx);
        }
    }
    if !s.order_by.is_empty() {
        out = order_by(it, s, &table, out, row_aligned).await?;
    }
    if groups.is_none() {
        for e in [&s.top, &s.limit].into_iter().flatten() {
            let n = super::builtins::scalar_i64(&it.eval(e).await?).map_err(|e2| e2.at(e.pos))?;
            let idx: Vec<usize> = limited(out.rows(), n).collect();
            out = take_rows(&out, &idx);
        }
    }
    if s.exec {
        if let [(_, c)] = out.columns.as_slice() {
            // `exec sum(x) from t` is a scalar, `exec x from t` a vector.
            let one_aggregate = s.group_by.is_empty()
                && s.context_by.is_empty()
                && c.len() == 1
                && aggregate_call(strip_alias(&s.items[0])).is_some();
            return Ok(if one_aggregate {
                Value::Scalar(c.clone())
            } else {
                Value::Vector(c.clone())
            });
        }
    }
    Ok(Value::Table(Rc::new(out)))
}

/// `distinct`: the first row of each distinct combination of `t`'s columns, in row order.
pub(super) fn distinct_rows(t: &Table) -> Vec<usize> {
    let keys: Vec<&Column> = t.columns.iter().map(|(_, c)| c).collect();
    let mut first = super::group::group(&keys, t.rows()).first;
    first.sort_unstable();
    first
}

/// The rows `limit n` keeps of `rows`: the first `n`, or with a negative `n` the last `-n`.
fn limited(rows: usize, n: i64) -> std::ops::Range<usize> {
    let rows = rows as i64;
    if n >= 0 {
        0..n.min(rows) as usize
    } else {
        (rows + n).max(0) as usize..rows as usize
    }
}

/// Sorts the result by the `order by` keys (stable; nulls first when ascending, as DolphinDB).
async fn order_by(
    it: &mut Interp,
    s: &Select,
    source: &Rc<Table>,
    out: Table,
    row_aligned: bool,
) -> Result<Table, EvalError> {
    let rows = out.rows();
    let out = Rc::new(out);
    // Keys see the result's columns, and — when rows still match the source's — its columns.
    let mut tables = vec![out.clone()];
    if row_aligned {
        tables.push(source.clone());
    }
    let idx = sorted_by(it, tables, rows, &s.order_by).await?;
    Ok(take_rows(&out, &idx))
}

/// `having`: keeps the groups (in `order`) whose condition holds.
async fn keep_groups(
    it: &mut Interp,
    cond: &Expr,
    table: &Table,
    g: &mut Grouping,
) -> Result<(), EvalError> {
    let verdicts = per_group(it, cond, table, g).await?;
    let mut kept = Vec::new();
    for (k, v) in g.order.iter().zip(verdicts) {
        if it.truthy(&v)? {
            kept.push(*k);
        }
    }
    g.order = kept;
    Ok(())
}

/// Evaluates `e` once per group (in `order`) over that group's rows.
async fn per_group(
    it: &mut Interp,
    e: &Expr,
    table: &Table,
    g: &Grouping,
) -> Result<Vec<Value>, EvalError> {
    // Each group sees only the columns `e` names (all of them if it holds a lambda or a
    // sub-query, which may name any).
    let names = names_in([e]);
    let read: Vec<&(String, Column)> = table
        .columns
        .iter()
        .filter(|(n, _)| {
            names
                .as_ref()
                .is_none_or(|w| w.iter().any(|m| m.eq_ignore_ascii_case(n)))
        })
        .collect();
    let mut out = Vec::with_capacity(g.order.len());
    for &k in &g.order {
        let rows = &g.members()[k];
        let sub = Table {
            columns: read
                .iter()
                .map(|(n, c)| (n.clone(), gather(c, rows)))
                .collect(),
        };
        out.push(eval_over(it, &Rc::new(sub), e).await?);
    }
    Ok(out)
}

fn scalars_to_column(
    name: &str,
    values: Vec<Value>,
    pos: crate::parse::Pos,
) -> Result<Column, EvalError> {
    if let Some(v) = values
        .iter()
        .find(|v| !matches!(v, Value::Scalar(_) | Value::Void))
    {
        return Err(EvalError::msg(format!(
            "'{name}' gives a {} per group; a group by query needs one value per group",
            v.typestr()
        ))
        .at(pos));
    }
    match super::interp::to_vector(values)? {
        Value::Vector(c) => Ok(c),
        _ => Err(EvalError::msg(format!("'{name}' gives values of different types")).at(pos)),
    }
}

async fn key_columns(
    it: &mut Interp,
    table: &Rc<Table>,
    keys: &[Expr],
) -> Result<Vec<(String, Column)>, EvalError> {
    let rows = table.rows();
    it.push_tables(vec![table.clone()]);
    let mut out = Vec::new();
    for k in keys {
        match column_of(it, strip_alias(k), rows).await {
            Ok(c) => out.push((default_name(k), c)),
            Err(e) => {
                it.pop_scope();
                return Err(e);
            }
        }
    }
    it.pop_scope();
    Ok(out)
}

/// `context by`: every item is evaluated per group and stays one value per row (a group's
/// scalar is repeated over its rows); groups come out in key order, rows in table order.
/// Returns the table and each group's rows, in its order.
async fn context_by(
    it: &mut Interp,
    s: &Select,
    table: &Rc<Table>,
) -> Result<(Table, Vec<usize>), EvalError> {
    // `csort`: each group's rows in the csort keys' order (a stable sort of the whole table
    // keeps them so within every group).
    let sorted;
    let table = if s.csort.is_empty() {
        table
    } else {
        let idx = sorted_rows(it, table, &s.csort).await?;
        sorted = Rc::new(take_rows(table, &idx));
        &sorted
    };
    let keys = key_columns(it, table, &s.context_by).await?;
    let key_cols: Vec<&Column> = keys.iter().map(|(_, c)| c).collect();
    let mut g = group_rows(&key_cols, table.rows());
    // `having`: a value per group keeps or drops the group; a value per row keeps the rows
    // where it holds (the items still see the whole group).
    let mut masks: Vec<Option<Vec<bool>>> = vec![None; g.order.len()];
    if let Some(h) = &s.having {
        let verdicts = per_group(it, h, table, &g).await?;
        let (mut order, mut kept) = (Vec::new(), Vec::new());
        for (k, v) in g.order.clone().into_iter().zip(verdicts) {
            let n = g.members()[k].len();
            match &v {
                Value::Vector(c) if c.len() == n => {
                    let mask: Vec<bool> = (0..n)
                        .map(|i| {
                            super::ops::scalar_f64(c, i).is_some_and(|x| x != 0.0 && x.is_finite())
                        })
                        .collect();
                    if mask.iter().any(|m| *m) {
                        order.push(k);
                        kept.push(Some(mask));
                    }
                }
                v => {
                    if it.truthy(v)? {
                        order.push(k);
                        kept.push(None);
                    }
                }
            }
        }
        g.order = order;
        masks = kept;
    }
    let kept_of = |pos: usize, n: usize| -> Vec<usize> {
        match &masks[pos] {
            Some(m) => (0..n).filter(|i| m[*i]).collect(),
            None => (0..n).collect(),
        }
    };
    let row_order: Vec<usize> = g
        .order
        .iter()
        .enumerate()
        .flat_map(|(pos, k)| {
            let rows = &g.members()[*k];
            kept_of(pos, rows.len())
                .into_iter()
                .map(|i| rows[i])
                .collect::<Vec<_>>()
        })
        .collect();
    let mut columns = Vec::new();
    for item in &s.items {
        if matches!(item.kind, ExprKind::Star) {
            columns.extend(take_rows(table, &row_order).columns);
            continue;
        }
        let name = default_name(item);
        // A bare column is its rows in group order.
        if let ExprKind::Ident(n) = &strip_alias(item).kind {
            if let Some(c) = table.column(n) {
                columns.push((name, gather(c, &row_order)));
                continue;
            }
        }
        let values = per_group(it, strip_alias(item), table, &g).await?;
        let mut col: Option<Column> = None;
        for (pos, (k, v)) in g.order.iter().zip(values).enumerate() {
            let n = g.members()[*k].len();
            let piece = match v {
                Value::Scalar(c) => gather(&c, &vec![0; n]),
                Value::Vector(c) if c.len() == n => c,
                other => {
                    return Err(EvalError::msg(format!(
                        "'{name}' gives a {} of size {} for a group of {n} rows",
                        other.typestr(),
                        other.size()
                    ))
                    .at(item.pos))
                }
            };
            let piece = match &masks[pos] {
                Some(_) => gather(&piece, &kept_of(pos, n)),
                None => piece,
            };
            match &mut col {
                None => col = Some(piece),
                Some(c) => {
                    let piece = if piece.ty == c.ty {
                        piece
                    } else {
                        super::builtins::cast(&piece, c.ty)?
                    };
                    c.append(&piece).map_err(EvalError::msg)?;
                }
            }
        }
        let col = col.unwrap_or_else(|| Column::empty(DataType::Long));
        columns.push((name, col));
    }
    let sizes = g
        .order
        .iter()
        .enumerate()
        .map(|(pos, k)| kept_of(pos, g.members()[*k].len()).len())
        .collect();
    Ok((Table { columns }, sizes))
}

/// The table's rows in the order of `keys` (stable; nulls first when ascending).
pub(super) async fn sorted_rows(
    it: &mut Interp,
    table: &Rc<Table>,
    keys: &[(Expr, bool)],
) -> Result<Vec<usize>, EvalError> {
    sorted_by(it, vec![table.clone()], table.rows(), keys).await
}

/// Rows `0..rows` in the order of `keys`, evaluated over `tables`' columns (stable; nulls
/// first when ascending, as DolphinDB).
async fn sorted_by(
    it: &mut Interp,
    tables: Vec<Rc<Table>>,
    rows: usize,
    keys: &[(Expr, bool)],
) -> Result<Vec<usize>, EvalError> {
    it.push_tables(tables);
    let mut cols = Vec::new();
    for (e, asc) in keys {
        match column_of(it, e, rows).await {
            Ok(c) => cols.push((c, *asc)),
            Err(err) => {
                it.pop_scope();
                return Err(err);
            }
        }
    }
    it.pop_scope();
    let mut idx: Vec<usize> = (0..rows).collect();
    idx.sort_by(|a, b| {
        cols.iter()
            .map(|(c, asc)| {
                let o = compare_rows(c, *a, *b);
                if *asc {
                    o
                } else {
                    o.reverse()
                }
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(idx)
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
                        Some(a) => column_ref(it, table, a, rows).await?,
                        None => std::borrow::Cow::Owned(Column {
                            ty: DataType::Long,
                            data: ColumnData::I64(vec![0; rows]),
                        }),
                    };
                    aggregate_groups(f, &arg, &vec![0; rows], 1)?
                }
                _ => match it.eval(e).await? {
                    // An aggregate-like expression (`max(x) - min(x)`) gives one row.
                    Value::Scalar(c) if !all_agg && s.items.len() == 1 => c,
                    Value::Vector(c) if c.len() == rows => c,
                    Value::Scalar(c) => gather(&c, &vec![0; rows]),
                    other => {
                        return Err(EvalError::msg(format!(
                            "a select expression gave a {} of size {}, expected {rows} rows",
                            other.typestr(),
                            other.size()
                        ))
                        .at(e.pos))
                    }
                },
            };
            columns.push((name, c));
        }
        return Ok(Table { columns });
    }
    // group by: dense ids per key; plain aggregates in one pass over the rows, anything else
    // evaluated per group.
    let mut keys = Vec::new();
    for k in &s.group_by {
        keys.push((
            default_name(k),
            column_ref(it, table, strip_alias(k), rows).await?,
        ));
    }
    let key_cols: Vec<&Column> = keys.iter().map(|(_, c)| c.as_ref()).collect();
    let mut g = group_rows(&key_cols, rows);
    if let Some(h) = &s.having {
        keep_groups(it, h, table, &mut g).await?;
    }
    let first: Vec<usize> = g.order.iter().map(|k| g.first[*k]).collect();
    for (name, c) in &keys {
        columns.push((name.clone(), gather(c, &first)));
    }
    let ngroups = g.first.len();
    for item in &s.items {
        let name = default_name(item);
        let e = strip_alias(item);
        // A group key selected again (`select sym, count(*) ... group by sym`) is already the
        // result's key column, as in DolphinDB.
        if let ExprKind::Ident(n) = &e.kind {
            let is_key = |k: &Expr| match &strip_alias(k).kind {
                ExprKind::Ident(m) => m.eq_ignore_ascii_case(n),
                _ => false,
            };
            if s.group_by.iter().any(is_key) && matches!(item.kind, ExprKind::Ident(_)) {
                continue;
            }
        }
        let c = match aggregate_call(e) {
            Some((f, arg)) => {
                let arg = match arg {
                    Some(a) => column_ref(it, table, a, rows).await?,
                    None => std::borrow::Cow::Owned(Column {
                        ty: DataType::Long,
                        data: ColumnData::I64(vec![0; rows]),
                    }),
                };
                let agg = aggregate_groups(f, &arg, &g.groups, ngroups)?;
                gather(&agg, &g.order)
            }
            None => {
                let values = per_group(it, e, table, &g).await?;
                scalars_to_column(&name, values, item.pos)?
            }
        };
        columns.push((name, c));
    }
    let out = Table { columns };
    // `group by interval(X, duration, fill)`: rows for the empty windows too.
    for (ki, k) in s.group_by.iter().enumerate() {
        if let ExprKind::Call { func, args } = &strip_alias(k).kind {
            if matches!(&func.kind, ExprKind::Ident(f) if f == "interval") && args.len() == 3 {
                let ty = out.columns[ki].1.ty;
                let step = super::calendar::interval_ticks(
                    "interval",
                    ty,
                    &it.eval(&args[1].value).await?,
                )?;
                let fill = super::calendar::Fill::of(&it.eval(&args[2].value).await?)?;
                let filled =
                    super::calendar::fill_intervals(out, ki, s.group_by.len(), step, &fill)?;
                return Ok(filled);
            }
        }
    }
    Ok(out)
}
