//! Table joins (issue 19's fifth family), with DolphinDB's semantics and result columns:
//!
//! - `ej` (equi join), `lj` (left join: every left row, all its matches), `lsj` (left semi
//!   join: every left row, its first match), `fj` (full join) as
//!   `f(leftTable, rightTable, matchingCols, [rightMatchingCols], [leftFilter], [rightFilter])`
//!   (a filter is a condition on its table's rows, `t1.id > 3`);
//! - `aj(leftTable, rightTable, matchingCols, [rightMatchingCols])`: the last matching column
//!   is the time; each left row takes the last right row, among those equal on the other
//!   matching columns, whose time is at most its own;
//! - `wj` / `pwj(leftTable, rightTable, window, aggs, matchingCols, [rightMatchingCols])`:
//!   each left row aggregates the right rows whose time is in `[t + w1, t + w2]`; `pwj`
//!   also takes the prevailing row (the last one at or before `t + w1`) as the window's first.
//!
//! Result columns: the left table's, then the right table's other columns. A right column
//! whose name the left table already has is prefixed with the right table's name (`t2_qty`);
//! `fj` keeps the right matching columns and `aj` the right time column, prefixed likewise.
//!
//! Keys are matched by value through one grouping over the left and right key columns
//! appended (the right ones cast to the left's types), so every key type matches as
//! `group by` would. `aj` and `wj` sort each right group by time once (stable) and binary
//! search it per left row: O((n + m) log m). The manual asks for a sorted right table; a
//! sorted copy gives the same answer when it is, and the right one when it is not.

use std::rc::Rc;

use storage::column::Column;
use storage::types::DataType;

use super::builtins::gather;
use super::interp::Interp;
use super::ops::{to_num, Num};
use super::value::{Table, Value};
use super::EvalError;
use crate::parse::ast::{Expr, ExprKind};

pub const NAMES: &[&str] = &["ej", "lj", "lsj", "fj", "aj", "wj", "pwj"];

/// A join's inputs, resolved: the tables, their key column indices and the right table's
/// name for prefixes.
struct Sides {
    left: Rc<Table>,
    right: Rc<Table>,
    lkeys: Vec<usize>,
    rkeys: Vec<usize>,
    rname: String,
}

/// The name a table argument goes by (`t2` for `ej(t1, t2, ...)`).
pub(super) fn table_name(e: Option<&Expr>, default: &str) -> String {
    match e.map(|e| &e.kind) {
        Some(ExprKind::Ident(n)) => n.clone(),
        _ => default.into(),
    }
}

pub(super) fn names_of(name: &str, v: &Value) -> Result<Vec<String>, EvalError> {
    let c = v.column().ok_or_else(|| {
        EvalError::msg(format!(
            "The function [{name}]: matchingCols must be a string or strings"
        ))
    })?;
    (0..c.len())
        .map(|i| match c.bytes_at(i) {
            Some(b) => Ok(String::from_utf8_lossy(b).into_owned()),
            None => Err(EvalError::msg(format!(
                "The function [{name}]: matchingCols must be a string or strings"
            ))),
        })
        .collect()
}

async fn table_arg(it: &mut Interp, name: &str, v: &Value) -> Result<Rc<Table>, EvalError> {
    match v {
        Value::Table(t) => Ok(t.clone()),
        Value::DfsTable { db, table } => {
            let dfs = it
                .dfs
                .clone()
                .ok_or_else(|| super::builtins::dfs_unsupported(name))?;
            let info = dfs.table(db, table).await?;
            let (rows, _) = crate::catalog::scan(&*dfs, &info, &[], None).await?;
            Ok(Rc::new(rows))
        }
        other => Err(EvalError::msg(format!(
            "The function [{name}] joins tables, not a {}",
            other.typestr()
        ))),
    }
}

async fn sides(
    it: &mut Interp,
    name: &str,
    args: &[Value],
    exprs: &[(Option<String>, Expr)],
    keys_at: usize,
) -> Result<Sides, EvalError> {
    let left = table_arg(it, name, &args[0]).await?;
    let right = table_arg(it, name, &args[1]).await?;
    let lnames = names_of(name, &args[keys_at])?;
    let rnames = match args.get(keys_at + 1) {
        Some(Value::Void) | None => lnames.clone(),
        Some(v) => names_of(name, v)?,
    };
    if lnames.is_empty() || lnames.len() != rnames.len() {
        return Err(EvalError::msg(format!(
            "The function [{name}]: matchingCols and rightMatchingCols must name the same number of columns"
        )));
    }
    let find = |t: &Table, n: &str, side: &str| {
        t.columns
            .iter()
            .position(|(c, _)| c.eq_ignore_ascii_case(n))
            .ok_or_else(|| {
                EvalError::msg(format!(
                    "The function [{name}]: the {side} table has no column {n}"
                ))
            })
    };
    let lkeys = lnames
        .iter()
        .map(|n| find(&left, n, "left"))
        .collect::<Result<_, _>>()?;
    let rkeys = rnames
        .iter()
        .map(|n| find(&right, n, "right"))
        .collect::<Result<_, _>>()?;
    Ok(Sides {
        left,
        right,
        lkeys,
        rkeys,
        rname: table_name(exprs.get(1).map(|(_, e)| e), "right"),
    })
}

/// Dense ids of the key values of every left row and every right row, in one id space.
fn key_ids(
    left: &Table,
    lkeys: &[usize],
    right: &Table,
    rkeys: &[usize],
) -> Result<(Vec<u32>, Vec<u32>, usize), EvalError> {
    let nl = left.rows();
    let mut both = Vec::with_capacity(lkeys.len());
    for (l, r) in lkeys.iter().zip(rkeys) {
        let mut c = left.columns[*l].1.clone();
        let rc = &right.columns[*r].1;
        let rc = if rc.ty == c.ty {
            rc.clone()
        } else {
            super::builtins::cast(rc, c.ty)?
        };
        c.append(&rc).map_err(EvalError::msg)?;
        both.push(c);
    }
    if both.is_empty() {
        // No grouping columns (an `aj` on time alone): every row in one group.
        return Ok((vec![0; nl], vec![0; right.rows()], 1));
    }
    let refs: Vec<&Column> = both.iter().collect();
    let g = super::group::group(&refs, nl + right.rows());
    let n = g.len();
    let mut ids = g.of_row;
    let r = ids.split_off(nl);
    Ok((ids, r, n))
}

/// Rows of `c`, a null where the row is `None`.
fn gather_opt(c: &Column, rows: &[Option<usize>]) -> Column {
    use storage::column::ColumnData as D;
    use storage::types::null;
    // Every row in order (the left side of `aj`, `lj` without misses): the column itself.
    if rows.len() == c.len() && rows.iter().enumerate().all(|(i, r)| *r == Some(i)) {
        return c.clone();
    }
    fn pick<T: Copy>(v: &[T], rows: &[Option<usize>], null: T) -> Vec<T> {
        rows.iter().map(|r| r.map_or(null, |r| v[r])).collect()
    }
    let data = match &c.data {
        D::I8(v) => D::I8(pick(v, rows, null::I8)),
        D::I16(v) => D::I16(pick(v, rows, null::I16)),
        D::I32(v) => D::I32(pick(v, rows, null::I32)),
        D::I64(v) => D::I64(pick(v, rows, null::I64)),
        D::F32(v) => D::F32(pick(v, rows, null::F32)),
        D::F64(v) => D::F64(pick(v, rows, null::F64)),
        D::Symbol { .. } | D::Bytes { .. } => {
            // Text: the null is a row appended for the misses.
            let n = c.len();
            let mut padded = c.clone();
            padded
                .append(&Column::nulls(c.ty, 1))
                .expect("a column accepts a null of its own type");
            let idx: Vec<usize> = rows.iter().map(|r| r.unwrap_or(n)).collect();
            return gather(&padded, &idx);
        }
    };
    Column { ty: c.ty, data }
}

/// The joined table: the left columns at `lrows`, then the right columns at `rrows` (all but
/// the right keys, except `keep_right` of them), prefixed where the left has the name.
fn assemble(
    s: &Sides,
    lrows: &[Option<usize>],
    rrows: &[Option<usize>],
    keep_right: &[usize],
) -> Table {
    let mut columns: Vec<(String, Column)> = s
        .left
        .columns
        .iter()
        .map(|(n, c)| (n.clone(), gather_opt(c, lrows)))
        .collect();
    for (i, (n, c)) in s.right.columns.iter().enumerate() {
        if s.rkeys.contains(&i) && !keep_right.contains(&i) {
            continue;
        }
        let taken = columns.iter().any(|(m, _)| m.eq_ignore_ascii_case(n));
        let name = if taken {
            format!("{}_{n}", s.rname)
        } else {
            n.clone()
        };
        columns.push((name, gather_opt(c, rrows)));
    }
    Table { columns }
}

/// The right rows of each key id, in row order.
fn buckets(rids: &[u32], n: usize) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); n];
    for (row, id) in rids.iter().enumerate() {
        out[*id as usize].push(row);
    }
    out
}

/// `ej`, `lj`, `lsj`, `fj`.
fn equi(name: &str, s: &Sides) -> Result<Table, EvalError> {
    let (lids, rids, n) = key_ids(&s.left, &s.lkeys, &s.right, &s.rkeys)?;
    let by_key = buckets(&rids, n);
    let nulls: Vec<Vec<bool>> = s
        .lkeys
        .iter()
        .map(|k| super::builtins::null_mask(&s.left.columns[*k].1))
        .collect();
    let (mut lrows, mut rrows) = (Vec::new(), Vec::new());
    let mut matched = vec![false; s.right.rows()];
    for (row, id) in lids.iter().enumerate() {
        // A null key matches nothing, as in SQL.
        let null_key = nulls.iter().any(|m| m[row]);
        let hits: &[usize] = if null_key { &[] } else { &by_key[*id as usize] };
        let hits = if name == "lsj" && !hits.is_empty() {
            &hits[..1]
        } else {
            hits
        };
        if hits.is_empty() && name != "ej" {
            lrows.push(Some(row));
            rrows.push(None);
        }
        for r in hits {
            lrows.push(Some(row));
            rrows.push(Some(*r));
            matched[*r] = true;
        }
    }
    if name == "fj" {
        for (r, m) in matched.iter().enumerate() {
            if !m {
                lrows.push(None);
                rrows.push(Some(r));
            }
        }
    }
    let keep: &[usize] = if name == "fj" { &s.rkeys } else { &[] };
    Ok(assemble(s, &lrows, &rrows, keep))
}

/// A time column's values as ordered integers (nulls first).
fn times(name: &str, c: &Column) -> Result<Vec<i64>, EvalError> {
    match to_num(c).map_err(|e| EvalError::msg(format!("The function [{name}] {e}")))? {
        Num::I(v) => Ok(v),
        Num::F(_) => Err(EvalError::msg(format!(
            "The function [{name}]: the last matching column must be temporal or integral, not {}",
            c.ty.name()
        ))),
    }
}

/// Each group's right rows sorted by time (stable), with their times.
fn sorted_groups(rids: &[u32], n: usize, rt: &[i64]) -> Vec<(Vec<usize>, Vec<i64>)> {
    buckets(rids, n)
        .into_iter()
        .map(|mut rows| {
            rows.sort_by_key(|r| rt[*r]);
            let t = rows.iter().map(|r| rt[*r]).collect();
            (rows, t)
        })
        .collect()
}

/// Splits the keys into the grouping keys and the time key (the last one).
fn split_time(s: &Sides) -> (Vec<usize>, Vec<usize>, usize, usize) {
    let (lt, rt) = (
        *s.lkeys.last().expect("at least one key"),
        *s.rkeys.last().expect("at least one key"),
    );
    let n = s.lkeys.len() - 1;
    (s.lkeys[..n].to_vec(), s.rkeys[..n].to_vec(), lt, rt)
}

fn asof(s: &Sides) -> Result<Table, EvalError> {
    let (lk, rk, lt, rt) = split_time(s);
    let (lids, rids, n) = key_ids(&s.left, &lk, &s.right, &rk)?;
    let ltimes = times("aj", &s.left.columns[lt].1)?;
    let rtimes = times("aj", &s.right.columns[rt].1)?;
    let groups = sorted_groups(&rids, n, &rtimes);
    let mut rrows = Vec::with_capacity(lids.len());
    for (row, id) in lids.iter().enumerate() {
        let t = ltimes[row];
        let (rows, ts) = &groups[*id as usize];
        // The last right row at or before t (a null time matches nothing).
        let k = ts.partition_point(|x| *x <= t);
        rrows.push((t != i64::MIN && k > 0 && ts[k - 1] != i64::MIN).then(|| rows[k - 1]));
    }
    let lrows: Vec<Option<usize>> = (0..lids.len()).map(Some).collect();
    Ok(assemble(s, &lrows, &rrows, &[rt]))
}

/// The window's bounds as integers in the time column's unit (durations converted).
fn window_of(name: &str, w: &Value, ty: DataType) -> Result<(i64, i64), EvalError> {
    use super::calendar::interval_ticks;
    match w {
        Value::Pair(a, b) => Ok((interval_ticks(name, ty, a)?, interval_ticks(name, ty, b)?)),
        other => Err(EvalError::msg(format!(
            "The function [{name}]: window must be a pair of integers such as -5:0, not a {}",
            other.typestr()
        ))),
    }
}

/// The aggregate expressions of `aggs` (metacode, a tuple of it, or `<[a, b]>`).
fn aggs_of(name: &str, v: &Value) -> Result<Vec<Expr>, EvalError> {
    let bad = || {
        EvalError::msg(format!(
            "The function [{name}]: aggs must be metacode such as <avg(price)>"
        ))
    };
    match v {
        Value::Code(e) => Ok(match &e.kind {
            ExprKind::Vector(items) => items.clone(),
            _ => vec![e.as_ref().clone()],
        }),
        Value::Tuple(items) => items
            .iter()
            .map(|i| match i {
                Value::Code(e) => Ok(e.as_ref().clone()),
                _ => Err(bad()),
            })
            .collect(),
        _ => Err(bad()),
    }
}

async fn window(
    it: &mut Interp,
    name: &str,
    s: &Sides,
    (w1, w2): (i64, i64),
    aggs: &[Expr],
) -> Result<Table, EvalError> {
    if w1 > w2 {
        return Err(EvalError::msg(format!(
            "The function [{name}]: the window's start {w1} is after its end {w2}"
        )));
    }
    let (lk, rk, lt, rt) = split_time(s);
    let (lids, rids, n) = key_ids(&s.left, &lk, &s.right, &rk)?;
    let ltimes = times(name, &s.left.columns[lt].1)?;
    let rtimes = times(name, &s.right.columns[rt].1)?;
    let groups = sorted_groups(&rids, n, &rtimes);
    let mut values: Vec<Vec<Value>> = vec![Vec::with_capacity(lids.len()); aggs.len()];
    for (row, id) in lids.iter().enumerate() {
        let t = ltimes[row];
        let (rows, ts) = &groups[*id as usize];
        let (lo_t, hi_t) = (t.saturating_add(w1), t.saturating_add(w2));
        let mut lo = ts.partition_point(|x| *x < lo_t);
        let hi = ts.partition_point(|x| *x <= hi_t);
        if name == "pwj" {
            // The prevailing row: the last at or before the window's start stands for it.
            let at_start = ts.partition_point(|x| *x <= lo_t);
            if at_start > 0 {
                lo = at_start - 1;
            }
        }
        let window: Vec<usize> = if t == i64::MIN || lo >= hi {
            Vec::new()
        } else {
            rows[lo..hi].to_vec()
        };
        let sub = Rc::new(Table {
            columns: s
                .right
                .columns
                .iter()
                .map(|(n, c)| (n.clone(), gather(c, &window)))
                .collect(),
        });
        for (k, e) in aggs.iter().enumerate() {
            values[k].push(super::sql::eval_over(it, &sub, e).await?);
        }
    }
    let mut out = (*s.left).clone();
    for (e, vals) in aggs.iter().zip(values) {
        let col = match super::interp::to_vector(vals)? {
            Value::Vector(c) => c,
            _ if lids.is_empty() => Column::empty(DataType::Double),
            _ => {
                return Err(EvalError::msg(format!(
                    "The function [{name}]: an aggregate must give one value per window"
                ))
                .at(e.pos))
            }
        };
        out.columns.push((super::sql::default_name(e), col));
    }
    Ok(out)
}

/// The table names on the left of a join expression (nested joins included).
fn left_names(e: &Expr, out: &mut Vec<String>) {
    match &e.kind {
        ExprKind::Ident(n) => out.push(n.clone()),
        ExprKind::Call { func, args } if is_join(func) => {
            for a in args.iter().take(2) {
                left_names(&a.value, out);
            }
        }
        _ => {}
    }
}

fn is_join(func: &Expr) -> bool {
    matches!(&func.kind, ExprKind::Ident(f) if NAMES.contains(&f.as_str()) || f == "cj")
}

/// A query whose `from` joins named tables (`from t1 left join t2 on ...`, or
/// `from ej(t1, t2, ...)`): the joined table, and the query with each qualified column
/// (`t2.qty`) replaced by the joined table's column it is.
pub(super) async fn sql_source(
    it: &mut Interp,
    s: &crate::parse::ast::Select,
) -> Result<Option<(Rc<Table>, crate::parse::ast::Select)>, EvalError> {
    let ExprKind::Call { func, args } = &s.from.kind else {
        return Ok(None);
    };
    if !is_join(func) || args.len() < 2 {
        return Ok(None);
    }
    let Value::Table(joined) = it.eval(&s.from).await? else {
        return Err(EvalError::msg("a join gave no table").at(s.from.pos));
    };
    let mut lefts = Vec::new();
    left_names(&args[0].value, &mut lefts);
    let right = match &args[1].value.kind {
        ExprKind::Ident(n) => n.clone(),
        _ => String::new(),
    };
    // The right matching columns and the left ones they equal.
    let keys = |k: usize| -> Vec<String> {
        match args.get(k).map(|a| &a.value.kind) {
            Some(ExprKind::Lit(crate::parse::ast::Lit::SymbolVec(v))) => v.clone(),
            Some(ExprKind::Lit(crate::parse::ast::Lit::Symbol(v))) => vec![v.clone()],
            _ => Vec::new(),
        }
    };
    let at = if matches!(&func.kind, ExprKind::Ident(f) if f == "wj" || f == "pwj") {
        4
    } else {
        2
    };
    let lkeys = keys(at);
    let rkeys = if args.len() > at + 1 {
        keys(at + 1)
    } else {
        lkeys.clone()
    };
    let has = |n: &str| {
        joined
            .columns
            .iter()
            .any(|(c, _)| c.eq_ignore_ascii_case(n))
    };
    let resolve = |t: &str, c: &str| -> Option<String> {
        if !right.is_empty() && t == right {
            let prefixed = format!("{right}_{c}");
            if has(&prefixed) {
                return Some(prefixed);
            }
            if !has(c) {
                if let Some(i) = rkeys.iter().position(|k| k.eq_ignore_ascii_case(c)) {
                    return lkeys.get(i).cloned();
                }
            }
            return Some(c.to_string());
        }
        lefts.iter().any(|l| l == t).then(|| c.to_string())
    };
    let mut q = s.clone();
    let mut rewrite = |e: &mut Expr| -> bool {
        if let ExprKind::Method {
            obj,
            name,
            args: None,
        } = &e.kind
        {
            if let ExprKind::Ident(t) = &obj.kind {
                if let Some(col) = resolve(t, name) {
                    e.kind = ExprKind::Ident(col);
                    return true;
                }
            }
        }
        false
    };
    for e in q
        .items
        .iter_mut()
        .chain(&mut q.filters)
        .chain(&mut q.group_by)
        .chain(&mut q.context_by)
        .chain(&mut q.cgroup_by)
        .chain(&mut q.pivot_by)
        .chain(q.csort.iter_mut().map(|(e, _)| e))
        .chain(&mut q.having)
        .chain(q.order_by.iter_mut().map(|(e, _)| e))
    {
        crate::parse::ast::walk_mut(e, &mut rewrite);
    }
    Ok(Some((joined, q)))
}

pub async fn call(
    it: &mut Interp,
    name: &str,
    args: Vec<Value>,
    exprs: &[(Option<String>, Expr)],
) -> Result<Value, EvalError> {
    let (lo, hi, keys_at) = match name {
        "wj" | "pwj" => (5, 6, 4),
        "aj" => (3, 4, 2),
        // ej, lj, lsj, fj: then leftFilter and rightFilter.
        _ => (3, 6, 2),
    };
    super::builtins::arity(name, &args, lo, hi)?;
    if let Some(t) = super::copartition::pushed_down(it, name, &args).await? {
        return Ok(Value::Table(Rc::new(t)));
    }
    let mut s = sides(it, name, &args, exprs, keys_at).await?;
    // ej, lj, lsj, fj: arguments 4 and 5 are the filters (wj's are its keys).
    let filters: &[(usize, &str)] = if matches!(name, "ej" | "lj" | "lsj" | "fj") {
        &[(4, "left"), (5, "right")]
    } else {
        &[]
    };
    for &(k, side) in filters {
        let Some(f) = args.get(k).filter(|f| !matches!(f, Value::Void)) else {
            continue;
        };
        let t = if side == "left" { &s.left } else { &s.right };
        let keep = match f.column() {
            Some(c) if c.ty == DataType::Bool && c.len() == t.rows() => {
                super::builtins::null_mask(c)
                    .iter()
                    .enumerate()
                    .filter(|(i, null)| !**null && super::ops::scalar_f64(c, *i) == Some(1.0))
                    .map(|(i, _)| i)
                    .collect::<Vec<usize>>()
            }
            _ => {
                return Err(EvalError::msg(format!(
                    "The function [{name}]: {side}Filter must be a condition on the {side} table's rows, such as t1.id > 3"
                )))
            }
        };
        let filtered = Rc::new(Table {
            columns: t
                .columns
                .iter()
                .map(|(n, c)| (n.clone(), gather(c, &keep)))
                .collect(),
        });
        if side == "left" {
            s.left = filtered;
        } else {
            s.right = filtered;
        }
    }
    let t = match name {
        "aj" => asof(&s)?,
        "wj" | "pwj" => {
            let time = &s.left.columns[*s.lkeys.last().expect("a key")].1;
            let w = window_of(name, &args[2], time.ty)?;
            let aggs = aggs_of(name, &args[3])?;
            window(it, name, &s, w, &aggs).await?
        }
        _ => equi(name, &s)?,
    };
    Ok(Value::Table(Rc::new(t)))
}
