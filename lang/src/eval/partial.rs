//! Aggregate queries over partitioned tables, partition by partition: each partition computes
//! partial aggregates per group (count, sum, min, max, first, last; avg as sum and count), and
//! the coordinator merges the partials by group key — the split a compute node will use across
//! data nodes.
//!
//! A group key that the partitioning fixes (`date(DateTime)` on a table VALUE-partitioned by
//! DATE, or the partitioning column itself under VALUE) is a constant within a partition: it
//! comes from the partition's name, its column is not read, and `count(*)` of such groups is
//! the partition's row count from the chunk metadata.
//!
//! Used for `select <aggregates> from <partitioned table> [group by <keys>]` where every key
//! is a column or `date(column)` and every item is `count(*)` or an aggregate of a column;
//! anything else takes the general path (`sql::select`). Both give the same answer (tested).
//!
//! Invariant: partitions are visited in partition-name order and merged in that order, so
//! `first` / `last` across partitions follow it, as a full scan would.

use std::rc::Rc;

use storage::column::{Column, ColumnData};
use storage::types::DataType;

use super::builtins::gather;
use super::interp::Interp;
use super::value::{Table, Value};
use super::EvalError;
use crate::parse::ast::{Expr, ExprKind, Select};
use crate::partition::Scheme;

const MERGEABLE: [&str; 8] = ["count", "sum", "avg", "mean", "min", "max", "first", "last"];

/// One group key: a column, optionally through `date()`.
struct KeySpec {
    name: String,
    column: usize,
    date: bool,
    /// The key's type in the result (DATE through `date()`).
    ty: DataType,
    /// The partitioning level that fixes this key within a partition, if any.
    constant_level: Option<usize>,
}

/// One aggregate item.
struct AggSpec {
    name: String,
    func: &'static str,
    /// `None` for `count(*)`.
    column: Option<usize>,
}

fn ident(e: &Expr) -> Option<&str> {
    match &e.kind {
        ExprKind::Ident(n) => Some(n),
        _ => None,
    }
}

fn column_index(schema: &storage::Schema, name: &str) -> Option<usize> {
    schema
        .columns
        .iter()
        .position(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// The plan, or `None` when the query is not of the supported shape.
fn plan(
    s: &Select,
    schema: &storage::Schema,
    scheme: &Scheme,
    pcols: &[usize],
) -> Option<(Vec<KeySpec>, Vec<AggSpec>)> {
    if s.exec
        || !s.context_by.is_empty()
        || !s.cgroup_by.is_empty()
        || !s.pivot_by.is_empty()
        || s.having.is_some()
        || !s.order_by.is_empty()
        || s.top.is_some()
        || s.limit.is_some()
        || s.items.is_empty()
    {
        return None;
    }
    let levels: Vec<&Scheme> = match scheme {
        Scheme::Compo(l) => l.iter().collect(),
        s => vec![s],
    };
    let mut keys = Vec::new();
    for k in &s.group_by {
        let name = super::sql::default_name(k);
        let e = super::sql::strip_alias(k);
        let (col, date) = match &e.kind {
            ExprKind::Ident(n) => (column_index(schema, n)?, false),
            ExprKind::Call { func, args } if args.len() == 1 && ident(func) == Some("date") => {
                (column_index(schema, ident(&args[0].value)?)?, true)
            }
            _ => return None,
        };
        let col_ty = schema.columns[col].1;
        if date
            && !matches!(
                col_ty,
                DataType::Date | DataType::DateTime | DataType::Timestamp | DataType::NanoTimestamp
            )
        {
            return None;
        }
        let constant_level = pcols.iter().zip(&levels).position(|(pc, level)| {
            *pc == col
                && matches!(level, Scheme::Value { ty, .. }
                    if (date && *ty == DataType::Date) || (!date && *ty == col_ty))
        });
        keys.push(KeySpec {
            name,
            column: col,
            date,
            ty: if date { DataType::Date } else { col_ty },
            constant_level,
        });
    }
    let mut aggs = Vec::new();
    for item in &s.items {
        let name = super::sql::default_name(item);
        let (f, arg) = super::sql::aggregate_call(super::sql::strip_alias(item))?;
        let func = MERGEABLE.iter().find(|m| **m == f)?;
        let column = match arg {
            None => None,
            Some(a) => Some(column_index(schema, ident(a)?)?),
        };
        if column.is_none() && *func != "count" {
            return None;
        }
        aggs.push(AggSpec { name, func, column });
    }
    Some((keys, aggs))
}

/// The constant key column (one row) of `key` in partition `part`.
fn constant_key(
    scheme: &Scheme,
    level: usize,
    part: &str,
    key: &KeySpec,
    schema: &storage::Schema,
) -> Option<Column> {
    let ty = scheme.types()[level];
    let text = part.split('/').nth(level)?;
    if matches!(ty, DataType::String | DataType::Symbol) {
        return Some(Column::from_strings(schema.columns[key.column].1, &[text]));
    }
    let v: i64 = text.parse().ok()?;
    let ty = if key.date { DataType::Date } else { ty };
    Some(super::ops::from_num(super::ops::Num::I(vec![v]), ty))
}

/// A partial-aggregate plan: what each partition computes and how the pieces merge.
pub(crate) struct PartialPlan {
    keys: Vec<KeySpec>,
    aggs: Vec<AggSpec>,
    /// Schema indexes read from each partition: keys the partitioning does not fix, the
    /// aggregates' arguments and the columns the pushed `where` conditions name (empty: only
    /// the row count is needed).
    pub(crate) read: Vec<usize>,
}

impl PartialPlan {
    /// The plan for `s` over a table of `info`'s shape, or `None` when the query is not of the
    /// supported shape. `filters` are the `where` conditions each partition applies (the
    /// caller has checked they are row-wise).
    pub(crate) fn of(s: &Select, info: &crate::catalog::TableInfo) -> Option<PartialPlan> {
        let (schema, pcols, scheme) = (&info.schema, &info.partition_columns, &info.scheme);
        let (keys, aggs) = plan(s, schema, scheme, pcols)?;
        let filter_cols = super::sql::names_in(&s.filters)?;
        let mut read: Vec<usize> = keys
            .iter()
            .filter(|k| k.constant_level.is_none())
            .map(|k| k.column)
            .chain(aggs.iter().filter_map(|a| a.column))
            .chain(filter_cols.iter().filter_map(|n| column_index(schema, n)))
            .collect();
        read.sort_unstable();
        read.dedup();
        Some(PartialPlan { keys, aggs, read })
    }

    fn slot(&self, c: usize) -> usize {
        self.read.iter().position(|r| *r == c).expect("read")
    }
}

/// Runs the query partition by partition when it has the supported shape: each partition's
/// partial aggregates are computed where its chunk is (`Catalog::execute`), then merged here.
pub(crate) async fn try_select(it: &mut Interp, s: &Select) -> Result<Option<Value>, EvalError> {
    let (db, table) = match &s.from.kind {
        ExprKind::Ident(n) => match it.var(n) {
            Some(Value::DfsTable { db, table }) => (db.clone(), table.clone()),
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    let Some(dfs) = it.dfs.clone() else {
        return Ok(None);
    };
    let info = dfs.table(&db, &table).await?;
    let Some(plan) = PartialPlan::of(s, &info) else {
        return Ok(None);
    };
    let Some(bindings) = crate::fragment::bindings(it, s, &info.schema) else {
        return Ok(None);
    };
    if !s.filters.iter().all(crate::fragment::row_wise) {
        return Ok(None);
    }
    let preds = super::sql::partition_preds(it, &info, &s.filters).await?;
    let parts = crate::catalog::prune(&info, &preds);
    it.partitions_read = parts.len();
    let f = crate::fragment::Fragment {
        mode: crate::fragment::Mode::Partial,
        info: info.clone(),
        parts: parts.into_iter().cloned().collect(),
        query: s.clone(),
        bindings,
        join: None,
    };
    let pieces = dfs.execute(&f).await?;
    merge_partials(&plan, pieces).map(|t| Some(Value::Table(Rc::new(t))))
}

/// One partition's partial aggregates: its key columns, then each aggregate's partial columns
/// (avg: sum and count), one row per group of the partition. `cols` are `plan.read`'s
/// columns, or `None` with `rows` when only the row count was needed.
pub(crate) async fn partition_partial(
    it: &mut Interp,
    plan: &PartialPlan,
    s: &Select,
    info: &crate::catalog::TableInfo,
    part: &str,
    cols: Option<Vec<std::sync::Arc<Column>>>,
    rows: usize,
) -> Result<Table, EvalError> {
    let (schema, scheme) = (&info.schema, &info.scheme);
    let (keys, aggs) = (&plan.keys, &plan.aggs);
    let (cols, rows) = match cols {
        Some(cols) if !s.filters.is_empty() => {
            let t = Rc::new(Table {
                columns: plan
                    .read
                    .iter()
                    .map(|i| schema.columns[*i].0.clone())
                    .zip(cols.into_iter().map(std::sync::Arc::unwrap_or_clone))
                    .collect(),
            });
            let keep = super::sql::filter_mask(it, &t, &s.filters).await?;
            let idx: Vec<usize> = (0..keep.len()).filter(|i| keep[*i]).collect();
            let n = idx.len();
            let cols = t
                .columns
                .iter()
                .map(|(_, c)| std::sync::Arc::new(gather(c, &idx)))
                .collect();
            (cols, n)
        }
        Some(cols) => {
            let n = cols.first().map_or(0, |c| c.len());
            (cols, n)
        }
        None => (Vec::new(), rows),
    };
    let mut out: Vec<(String, Column)> = Vec::new();
    if rows == 0 {
        return Ok(Table { columns: out });
    }
    let slot = |c: usize| plan.slot(c);
    // Group by the keys that vary within the partition.
    let mut varying: Vec<std::borrow::Cow<'_, Column>> = Vec::new();
    for k in keys.iter().filter(|k| k.constant_level.is_none()) {
        let c = &cols[slot(k.column)];
        varying.push(if k.date {
            std::borrow::Cow::Owned(super::builtins::date_column(c)?)
        } else {
            std::borrow::Cow::Borrowed(c)
        });
    }
    // Groups, and their order by key: each partition's partials come out sorted, so the
    // merge can often just concatenate them (`merge_partials`).
    let refs: Vec<&Column> = varying.iter().map(|c| c.as_ref()).collect();
    let runs = match refs.as_slice() {
        [key] => super::group::symbol_runs(key, rows / RUN_ROWS_MIN),
        _ => None,
    };
    let (members, first, order) = if let Some((runs, first)) = runs {
        let order = super::group::key_order(&refs, &first);
        (Membership::runs(runs, rows), first, order)
    } else if varying.is_empty() {
        let n = if plan.read.is_empty() { 0 } else { rows };
        (Membership::Rows(vec![0u32; n]), vec![0usize], vec![0usize])
    } else {
        let g = super::group::group_rows(&refs, rows);
        (Membership::Rows(g.groups), g.first, g.order)
    };
    let ngroups = first.len();
    let mut v = 0;
    for (i, k) in keys.iter().enumerate() {
        let c = match k.constant_level {
            Some(level) => {
                let one = constant_key(scheme, level, part, k, schema)
                    .ok_or_else(|| EvalError::msg(format!("partition {part} has no key")))?;
                gather(&one, &vec![0; ngroups])
            }
            None => {
                v += 1;
                gather(&varying[v - 1], &first)
            }
        };
        out.push((format!("k{i}"), c));
    }
    // Aggregates of one DOUBLE column share a single pass over it.
    let fused = fused_double(aggs, &cols, &slot, &members, ngroups);
    for (ai, a) in aggs.iter().enumerate() {
        let pieces: Vec<Column> = match (a.func, a.column) {
            (_, Some(_)) if fused[ai].is_some() => fused[ai].clone().expect("checked"),
            ("count", None) if members.is_empty() => vec![Column {
                ty: DataType::Long,
                data: ColumnData::I64(vec![rows as i64]),
            }],
            ("count", None) => vec![Column {
                ty: DataType::Long,
                data: ColumnData::I64(members.counts(ngroups)),
            }],
            (f, Some(c)) => {
                // A column is read, so every row has its group.
                let col = &cols[slot(c)];
                let of_row = members.of_row();
                match f {
                    "avg" | "mean" => vec![
                        super::sql::aggregate_groups("sum", col, of_row, ngroups)?,
                        super::sql::aggregate_groups("count", col, of_row, ngroups)?,
                    ],
                    f => vec![super::sql::aggregate_groups(f, col, of_row, ngroups)?],
                }
            }
            (f, None) => {
                return Err(EvalError::msg(format!(
                    "a partial {f} needs a column (planned wrongly)"
                )))
            }
        };
        for (j, p) in pieces.into_iter().enumerate() {
            out.push((format!("a{ai}_{j}"), p));
        }
    }
    // In key order.
    if order.iter().enumerate().any(|(i, g)| i != *g) {
        for (_, c) in out.iter_mut() {
            *c = gather(c, &order);
        }
    }
    Ok(Table { columns: out })
}

/// Merges the partitions' partial tables (in partition order, so `first` / `last` across
/// partitions follow it) into the query's result, ordered by key.
/// Each partial column of `pieces`, concatenated in their order (each column reserved for all
/// the rows first: one copy of each piece, no regrowth).
fn concat_partials(pieces: &[Table]) -> Result<Vec<Column>, EvalError> {
    let width = pieces.first().map_or(0, |t| t.columns.len());
    let total: usize = pieces.iter().map(|t| t.rows()).sum();
    let mut joined: Vec<Column> = Vec::with_capacity(width);
    for c in 0..width {
        let mut acc = pieces[0].columns[c].1.clone();
        acc.reserve(total - acc.len());
        for p in &pieces[1..] {
            let add = p
                .columns
                .get(c)
                .map(|(_, x)| x)
                .ok_or_else(|| EvalError::msg("partial results of different shapes"))?;
            if add.ty == acc.ty {
                acc.append(add)
            } else {
                acc.append(&super::builtins::cast(add, acc.ty)?)
            }
            .map_err(EvalError::msg)?;
        }
        joined.push(acc);
    }
    Ok(joined)
}

/// One partition's partial aggregates from those of its row ranges, given in row order: the
/// form [`partition_partial`] gives for the whole partition (one row per group, sorted by
/// key; avg as its sum and count), so a partition split over shards merges like any other.
/// `first` and `last` come from the earliest and latest range holding the group.
pub(crate) fn combine_partials(plan: &PartialPlan, pieces: Vec<Table>) -> Result<Table, EvalError> {
    let Some(shape) = pieces.first().cloned() else {
        return Err(EvalError::msg("no partial results to combine"));
    };
    let pieces: Vec<Table> = pieces.into_iter().filter(|t| t.rows() > 0).collect();
    if pieces.len() <= 1 {
        return Ok(pieces.into_iter().next().unwrap_or(shape));
    }
    let total: usize = pieces.iter().map(|t| t.rows()).sum();
    let mut joined = concat_partials(&pieces)?.into_iter();
    let partial_keys: Vec<Column> = joined.by_ref().take(plan.keys.len()).collect();
    let (groups, firsts, order) = if partial_keys.is_empty() {
        (vec![0u32; total], vec![0usize], vec![0usize])
    } else {
        let g = super::group::group_rows(&partial_keys.iter().collect::<Vec<_>>(), total);
        let firsts: Vec<usize> = g.order.iter().map(|k| g.first[*k]).collect();
        (g.groups, firsts, g.order)
    };
    let ngroups = order.len();
    let mut columns: Vec<Column> = partial_keys.iter().map(|c| gather(c, &firsts)).collect();
    for a in &plan.aggs {
        if matches!(a.func, "avg" | "mean") {
            // Sums and counts add up; the division waits for the final merge.
            for part in joined.by_ref().take(2) {
                let c = super::sql::aggregate_groups("sum", &part, &groups, ngroups)?;
                columns.push(gather(&c, &order));
            }
        } else {
            let part: Vec<Column> = joined.by_ref().take(1).collect();
            let c = merge(a.func, &part, &groups, ngroups, total)?;
            columns.push(gather(&c, &order));
        }
    }
    Ok(Table {
        columns: shape
            .columns
            .into_iter()
            .map(|(n, _)| n)
            .zip(columns)
            .collect(),
    })
}

pub(crate) fn merge_partials(plan: &PartialPlan, pieces: Vec<Table>) -> Result<Table, EvalError> {
    let (keys, aggs) = (&plan.keys, &plan.aggs);
    let mut pieces: Vec<Table> = pieces.into_iter().filter(|t| t.rows() > 0).collect();
    let total: usize = pieces.iter().map(|t| t.rows()).sum();
    // Each piece sorted and its groups its own: the pieces in the order of their first key are
    // the result's rows, each partial row final as it is (an average still divides). Put in
    // that order before the one concatenation below, nothing is gathered after it — regrouping
    // 100,000 one-row groups cost Q2 over 20 days 10 ms here, a gather of them 1 ms more.
    let disjoint = !keys.is_empty() && total > 0 && {
        match disjoint_order(keys, &pieces) {
            Some(order) => {
                let mut slots: Vec<Option<Table>> = pieces.into_iter().map(Some).collect();
                pieces = order
                    .iter()
                    .map(|p| slots[*p].take().expect("a permutation"))
                    .collect();
                true
            }
            None => false,
        }
    };
    // Each partial column, concatenated over the partitions.
    let joined = concat_partials(&pieces)?;
    let nkeys = keys.len();
    let (partial_keys, rest) = if joined.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let mut k = joined;
        let rest = k.split_off(nkeys);
        (k, rest)
    };
    // Each aggregate's partial columns (avg has two).
    let mut partial_aggs: Vec<Vec<Column>> = Vec::with_capacity(aggs.len());
    let mut rest = rest.into_iter();
    for a in aggs {
        let n = if matches!(a.func, "avg" | "mean") {
            2
        } else {
            1
        };
        partial_aggs.push(rest.by_ref().take(n).collect());
    }
    let mut columns: Vec<(String, Column)> = Vec::new();
    if keys.is_empty() {
        let groups = vec![0u32; total];
        for (a, parts) in aggs.iter().zip(&partial_aggs) {
            let c = merge(a.func, parts, &groups, 1, total)?;
            columns.push((a.name.clone(), c));
        }
        return Ok(Table { columns });
    }
    if total == 0 {
        // No rows: the keys' and aggregates' columns, empty.
        for k in keys {
            columns.push((k.name.clone(), Column::empty(k.ty)));
        }
        for a in aggs {
            let ty = if a.func == "count" {
                DataType::Long
            } else {
                DataType::Double
            };
            columns.push((a.name.clone(), Column::empty(ty)));
        }
        return Ok(Table { columns });
    }
    if disjoint {
        for (k, c) in keys.iter().zip(partial_keys) {
            columns.push((k.name.clone(), c));
        }
        for (a, mut parts) in aggs.iter().zip(partial_aggs) {
            let c = match a.func {
                "avg" | "mean" => super::ops::arith("\\", &parts[0], &parts[1])?,
                _ => parts.swap_remove(0),
            };
            columns.push((a.name.clone(), c));
        }
        return Ok(Table { columns });
    }
    let g = super::group::group_rows(&partial_keys.iter().collect::<Vec<_>>(), total);
    let firsts: Vec<usize> = g.order.iter().map(|k| g.first[*k]).collect();
    for (k, c) in keys.iter().zip(&partial_keys) {
        columns.push((k.name.clone(), gather(c, &firsts)));
    }
    for (a, parts) in aggs.iter().zip(&partial_aggs) {
        let c = merge(a.func, parts, &g.groups, g.first.len(), total)?;
        columns.push((a.name.clone(), gather(&c, &g.order)));
    }
    Ok(Table { columns })
}
/// When the first key is fixed per partition and no two pieces share its value, no group spans
/// two pieces: the order of the pieces by that value (each piece is sorted by key already).
fn disjoint_order(keys: &[KeySpec], pieces: &[Table]) -> Option<Vec<usize>> {
    keys.first()?.constant_level?;
    let mut heads = pieces.first()?.columns.first()?.1.slice(0, 0);
    for p in pieces {
        let k = &p.columns.first()?.1;
        if k.ty != heads.ty {
            return None;
        }
        heads.append(&k.slice(0, 1)).ok()?;
    }
    let mut order: Vec<usize> = (0..pieces.len()).collect();
    order.sort_by(|a, b| super::sql::compare_rows(&heads, *a, *b));
    let distinct = order
        .windows(2)
        .all(|w| super::sql::compare_rows(&heads, w[0], w[1]).is_ne());
    distinct.then_some(order)
}

/// For aggregates over DOUBLE columns: min, max, first, last, sum, count (and avg as sum and
/// count) of every such column computed in one pass per column. `None` where an aggregate is
/// not of that kind (it takes the general per-aggregate path).
///
/// Rows of one group usually come in runs (a partition is stored in its sort key's order, as
/// the tutorial's is by SecurityID): when runs are long, each run is one slice whose first and
/// last rows are read directly and whose statistics fold without a per-row group lookup. The
/// result is bit-identical to the row-by-row pass: sums add in row order (a run starts from
/// the group's sum so far, an empty one from -0.0, which adds exactly), and nulls count for
/// `first`/`last` only.
fn fused_double(
    aggs: &[AggSpec],
    cols: &[std::sync::Arc<Column>],
    slot: &dyn Fn(usize) -> usize,
    members: &Membership,
    ngroups: usize,
) -> Vec<Option<Vec<Column>>> {
    let mut out: Vec<Option<Vec<Column>>> = vec![None; aggs.len()];
    let mut done: Vec<usize> = Vec::new();
    // Worked out once, for the first DOUBLE column.
    let mut runs = None;
    for a in aggs {
        let Some(c) = a.column else { continue };
        if done.contains(&c) {
            continue;
        }
        done.push(c);
        let ColumnData::F64(v) = &cols[slot(c)].data else {
            continue;
        };
        // Only the statistics some aggregate of this column needs.
        let wants = |f: &[&str]| {
            aggs.iter()
                .any(|b| b.column == Some(c) && f.contains(&b.func))
        };
        let need_ends = wants(&["first", "last"]);
        let need_sum = wants(&["sum", "avg"]);
        let need_stats = need_sum || wants(&["min", "max", "count"]);
        let st = match runs.get_or_insert_with(|| members.long_runs()) {
            Some(runs) => DoubleStats::by_runs(v, runs, ngroups, need_ends, need_stats, need_sum),
            None => DoubleStats::by_rows(v, members.of_row(), ngroups),
        };
        let d = |v: &Vec<f64>| Column {
            ty: DataType::Double,
            data: ColumnData::F64(v.clone()),
        };
        let n = Column {
            ty: DataType::Long,
            data: ColumnData::I64(st.count.clone()),
        };
        for (i, b) in aggs.iter().enumerate() {
            if b.column != Some(c) {
                continue;
            }
            out[i] = Some(match b.func {
                "min" => vec![d(&st.min)],
                "max" => vec![d(&st.max)],
                "first" => vec![d(&st.first)],
                "last" => vec![d(&st.last)],
                "sum" => vec![d(&st.sum)],
                "count" => vec![n.clone()],
                _ => vec![d(&st.sum), n.clone()],
            });
        }
    }
    out
}

/// Average run length from which the run path pays for itself.
const RUN_ROWS_MIN: usize = 8;

/// Each row's group within a partition: an array of one group per row, or — when the rows of
/// a group come in runs (a partition stored in its key's order) — the runs themselves, read
/// straight from the key's codes (D94): the per-row array is then built only for an aggregate
/// that needs it, and the fused DOUBLE statistics never touch it. Writing and re-reading that
/// array was a third of the memory a Q2 partition moved, and the two shards share the bus.
enum Membership {
    Rows(Vec<u32>),
    Runs {
        runs: Vec<super::group::Run>,
        rows: usize,
        of_row: std::cell::OnceCell<Vec<u32>>,
        long: bool,
    },
}

impl Membership {
    fn runs(runs: Vec<super::group::Run>, rows: usize) -> Membership {
        debug_assert_eq!(runs.last().map_or(0, |r| r.2), rows, "runs cover every row");
        Membership::Runs {
            long: runs.len() * RUN_ROWS_MIN <= rows,
            runs,
            rows,
            of_row: std::cell::OnceCell::new(),
        }
    }

    /// Whether no row is grouped (only the row count is needed).
    fn is_empty(&self) -> bool {
        match self {
            Membership::Rows(g) => g.is_empty(),
            Membership::Runs { rows, .. } => *rows == 0,
        }
    }

    /// Each row's group.
    fn of_row(&self) -> &[u32] {
        match self {
            Membership::Rows(g) => g,
            Membership::Runs {
                runs, rows, of_row, ..
            } => of_row.get_or_init(|| {
                let mut g = Vec::with_capacity(*rows);
                for (group, start, end) in runs {
                    g.resize(g.len() + (end - start), *group as u32);
                }
                g
            }),
        }
    }

    /// The runs, when they are long enough for the run path to pay.
    fn long_runs(&self) -> Option<std::borrow::Cow<'_, [super::group::Run]>> {
        match self {
            Membership::Runs { runs, long, .. } => long.then_some(std::borrow::Cow::Borrowed(runs)),
            Membership::Rows(g) => {
                let runs = runs_of(g);
                (runs.len() * RUN_ROWS_MIN <= g.len()).then_some(std::borrow::Cow::Owned(runs))
            }
        }
    }

    /// Rows per group.
    fn counts(&self, ngroups: usize) -> Vec<i64> {
        let mut n = vec![0i64; ngroups];
        match self {
            Membership::Rows(g) => g.iter().for_each(|g| n[*g as usize] += 1),
            Membership::Runs { runs, .. } => runs
                .iter()
                .for_each(|(g, start, end)| n[*g] += (end - start) as i64),
        }
        n
    }
}

/// Maximal runs of rows of one group: (group, first row, end row).
fn runs_of(of_row: &[u32]) -> Vec<(usize, usize, usize)> {
    let mut runs = Vec::new();
    let Some(&first) = of_row.first() else {
        return runs;
    };
    let (mut start, mut cur) = (0, first);
    for (i, &g) in of_row.iter().enumerate().skip(1) {
        if g != cur {
            runs.push((cur as usize, start, i));
            (start, cur) = (i, g);
        }
    }
    runs.push((cur as usize, start, of_row.len()));
    runs
}

/// Non-null count, min and max of `xs`, in four independent lanes (min and max do not depend
/// on order, so the lanes only break the loop's dependency chain). Comparisons, not
/// `f64::min`, so each step is one `minpd`/`maxpd`: a DOUBLE column holds no NaN (its null is
/// `-f64::MAX`, the least value, which leaves a maximum alone and is kept out of a minimum).
fn min_max_count(xs: &[f64], null: f64) -> (i64, f64, f64) {
    const LANES: usize = 4;
    let mut n = [0i64; LANES];
    let mut lo = [f64::INFINITY; LANES];
    let mut hi = [f64::NEG_INFINITY; LANES];
    let step =
        |l: usize, x: f64, n: &mut [i64; LANES], lo: &mut [f64; LANES], hi: &mut [f64; LANES]| {
            let ok = x != null;
            n[l] += ok as i64;
            let y = if ok { x } else { f64::INFINITY };
            lo[l] = if y < lo[l] { y } else { lo[l] };
            hi[l] = if x > hi[l] { x } else { hi[l] };
        };
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (l, &x) in c.iter().enumerate() {
            step(l, x, &mut n, &mut lo, &mut hi);
        }
    }
    for &x in tail {
        step(0, x, &mut n, &mut lo, &mut hi);
    }
    let lo = lo
        .iter()
        .copied()
        .fold(f64::INFINITY, |a, b| if b < a { b } else { a });
    let hi = hi
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, |a, b| if b > a { b } else { a });
    (n.iter().sum(), lo, hi)
}

/// Per-group statistics of a DOUBLE column (nulls are DolphinDB's `-f64::MAX`).
struct DoubleStats {
    min: Vec<f64>,
    max: Vec<f64>,
    sum: Vec<f64>,
    first: Vec<f64>,
    last: Vec<f64>,
    count: Vec<i64>,
}

impl DoubleStats {
    fn new(ngroups: usize) -> DoubleStats {
        let null = storage::types::null::F64;
        DoubleStats {
            min: vec![null; ngroups],
            max: vec![null; ngroups],
            sum: vec![null; ngroups],
            first: vec![null; ngroups],
            last: vec![null; ngroups],
            count: vec![0; ngroups],
        }
    }

    fn by_rows(v: &[f64], of_row: &[u32], ngroups: usize) -> DoubleStats {
        let null = storage::types::null::F64;
        let mut st = DoubleStats::new(ngroups);
        let mut seen = vec![false; ngroups];
        for (x, g) in v.iter().zip(of_row) {
            let g = *g as usize;
            // first/last take the group's first and last rows, nulls included (DolphinDB).
            if !seen[g] {
                seen[g] = true;
                st.first[g] = *x;
            }
            st.last[g] = *x;
            if *x == null {
                continue;
            }
            st.count[g] += 1;
            if st.count[g] == 1 {
                st.sum[g] = *x;
                st.min[g] = *x;
                st.max[g] = *x;
            } else {
                st.sum[g] += x;
                st.min[g] = st.min[g].min(*x);
                st.max[g] = st.max[g].max(*x);
            }
        }
        st
    }

    fn by_runs(
        v: &[f64],
        runs: &[(usize, usize, usize)],
        ngroups: usize,
        need_ends: bool,
        need_stats: bool,
        need_sum: bool,
    ) -> DoubleStats {
        let null = storage::types::null::F64;
        let mut st = DoubleStats::new(ngroups);
        let mut seen = vec![false; ngroups];
        for &(g, start, end) in runs {
            let xs = &v[start..end];
            if need_ends {
                if !seen[g] {
                    seen[g] = true;
                    st.first[g] = xs[0];
                }
                st.last[g] = xs[xs.len() - 1];
            }
            if !need_stats {
                continue;
            }
            let before = st.count[g];
            let (n, lo, hi) = min_max_count(xs, null);
            if n == 0 {
                continue;
            }
            if need_sum {
                // In row order, so the sum is the row-by-row pass's to the bit.
                let mut sum = if before == 0 { -0.0 } else { st.sum[g] };
                for &x in xs {
                    sum += if x != null { x } else { -0.0 };
                }
                st.sum[g] = sum;
            }
            st.count[g] = before + n;
            if before == 0 {
                st.min[g] = lo;
                st.max[g] = hi;
            } else {
                st.min[g] = st.min[g].min(lo);
                st.max[g] = st.max[g].max(hi);
            }
        }
        st
    }
}

/// Merges one aggregate's partial columns by group.
fn merge(
    func: &str,
    parts: &[Column],
    groups: &[u32],
    ngroups: usize,
    total: usize,
) -> Result<Column, EvalError> {
    if parts.is_empty() || total == 0 {
        // No rows at all: count is 0, everything else null.
        return Ok(match func {
            "count" => Column {
                ty: DataType::Long,
                data: ColumnData::I64(vec![0; ngroups]),
            },
            _ => Column::nulls(DataType::Double, ngroups),
        });
    }
    match func {
        "count" => super::sql::aggregate_groups("sum", &parts[0], groups, ngroups),
        "avg" | "mean" => {
            let sum = super::sql::aggregate_groups("sum", &parts[0], groups, ngroups)?;
            let n = super::sql::aggregate_groups("sum", &parts[1], groups, ngroups)?;
            super::ops::arith("\\", &sum, &n)
        }
        f => super::sql::aggregate_groups(f, &parts[0], groups, ngroups),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The run path gives bit-for-bit the row-by-row path's statistics, nulls, groups
        /// split over several runs and single-row runs included.
        #[test]
        fn runs_and_rows_agree(
            rows in proptest::collection::vec((0u32..6, 0u8..40, -1000i32..1000), 0..300),
        ) {
            let null = storage::types::null::F64;
            let of_row: Vec<u32> = rows.iter().map(|r| r.0).collect();
            let v: Vec<f64> = rows
                .iter()
                .map(|r| if r.1 == 0 { null } else { r.2 as f64 / 7.0 })
                .collect();
            let ngroups = 6;
            let a = DoubleStats::by_rows(&v, &of_row, ngroups);
            let b = DoubleStats::by_runs(&v, &runs_of(&of_row), ngroups, true, true, true);
            let bits = |x: &[f64]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&a.min), bits(&b.min));
            prop_assert_eq!(bits(&a.max), bits(&b.max));
            prop_assert_eq!(bits(&a.sum), bits(&b.sum));
            prop_assert_eq!(bits(&a.first), bits(&b.first));
            prop_assert_eq!(bits(&a.last), bits(&b.last));
            prop_assert_eq!(a.count, b.count);
        }
    }

    #[test]
    fn runs_cover_every_row_once() {
        assert_eq!(runs_of(&[]), vec![]);
        assert_eq!(
            runs_of(&[2, 2, 0, 2]),
            vec![(2, 0, 2), (0, 2, 3), (2, 3, 4)]
        );
    }

    /// Pieces whose first key is fixed per piece and distinct merge by concatenation, in the
    /// order of that key whatever order the pieces come in; an average divides its parts.
    #[test]
    fn disjoint_pieces_merge_in_key_order() {
        let plan = PartialPlan {
            keys: vec![
                KeySpec {
                    name: "d".into(),
                    column: 0,
                    date: false,
                    ty: DataType::Int,
                    constant_level: Some(0),
                },
                KeySpec {
                    name: "s".into(),
                    column: 1,
                    date: false,
                    ty: DataType::Int,
                    constant_level: None,
                },
            ],
            aggs: vec![
                AggSpec {
                    name: "hi".into(),
                    func: "max",
                    column: Some(2),
                },
                AggSpec {
                    name: "m".into(),
                    func: "avg",
                    column: Some(2),
                },
            ],
            read: vec![],
        };
        let ints = |v: Vec<i32>| Column {
            ty: DataType::Int,
            data: ColumnData::I32(v),
        };
        let doubles = |v: Vec<f64>| Column {
            ty: DataType::Double,
            data: ColumnData::F64(v),
        };
        // One piece per day, sorted by (d, s) within; the days arrive 3, 1, 2.
        let piece = |d: i32, hi: Vec<f64>, sum: Vec<f64>, n: Vec<f64>| Table {
            columns: vec![
                ("d".into(), ints(vec![d; hi.len()])),
                ("s".into(), ints((0..hi.len() as i32).collect())),
                ("hi".into(), doubles(hi)),
                ("m_sum".into(), doubles(sum)),
                ("m_n".into(), doubles(n)),
            ],
        };
        let pieces = vec![
            piece(3, vec![30.0], vec![9.0], vec![3.0]),
            piece(1, vec![10.0, 11.0], vec![4.0, 6.0], vec![2.0, 3.0]),
            piece(2, vec![20.0], vec![5.0], vec![1.0]),
        ];
        let t = merge_partials(&plan, pieces).unwrap();
        let col = |name: &str| {
            t.columns
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, c)| c.data.clone())
                .unwrap()
        };
        assert_eq!(col("d"), ColumnData::I32(vec![1, 1, 2, 3]));
        assert_eq!(col("s"), ColumnData::I32(vec![0, 1, 0, 0]));
        assert_eq!(col("hi"), ColumnData::F64(vec![10.0, 11.0, 20.0, 30.0]));
        assert_eq!(col("m"), ColumnData::F64(vec![2.0, 2.0, 5.0, 3.0]));
    }
}
