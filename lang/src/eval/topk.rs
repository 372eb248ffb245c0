//! Top-k and `distinct` pushdown over a `dfs://` table: `select top k … [order by …]`,
//! `… limit n` and `select distinct …` without grouping run whole in each partition (a `Whole`
//! plan fragment, where the chunk is), so each partition sends back at most k rows, or its
//! distinct rows, instead of every row; the coordinator merges what came back.
//!
//! `distinct` first: each partition's distinct rows in row order, concatenated in partition
//! order, are deduplicated again keeping first occurrences, which is the whole table's first
//! occurrences in its order; `order by`, `top` and `limit` then apply to that, as they do
//! after `distinct` over the whole table.
//!
//! Invariant: the answer equals the whole-table query's, ties included. Each partition's rows
//! come back sorted stably and in partition order, so a stable sort of their concatenation
//! orders tied rows by partition, then by insertion, as a stable sort of the whole table
//! does; and every row of the whole table's first k is among its own partition's first k.
//! A negative `limit` (the last rows) holds the same way from the other end. The `order by`
//! keys travel as hidden columns, so a key that is not a result column still orders the
//! merge.

use std::rc::Rc;

use super::interp::Interp;
use super::value::Value;
use super::EvalError;
use crate::parse::ast::{Expr, ExprKind, Select};

/// The hidden column carrying `order by` key `i` through a partition's query.
fn hidden(i: usize) -> String {
    format!("__porpoise_order{i}")
}

/// Whether a select item computes row by row (so one partition's rows give its rows).
fn row_wise_item(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Star => true,
        ExprKind::Alias { expr, .. } => crate::fragment::row_wise(expr),
        _ => crate::fragment::row_wise(e),
    }
}

pub(super) async fn try_select(it: &mut Interp, s: &Select) -> Result<Option<Value>, EvalError> {
    let plain = s.group_by.is_empty()
        && s.context_by.is_empty()
        && s.cgroup_by.is_empty()
        && s.pivot_by.is_empty()
        && s.having.is_none();
    if s.exec || !plain || (s.top.is_none() && s.limit.is_none() && !s.distinct) {
        return Ok(None);
    }
    if !s.items.iter().all(row_wise_item)
        || !s.filters.iter().all(crate::fragment::row_wise)
        || !s.order_by.iter().all(|(e, _)| crate::fragment::row_wise(e))
    {
        return Ok(None);
    }
    // `top` and `limit` take a count, which must be known here to mean the same everywhere.
    for e in [&s.top, &s.limit].into_iter().flatten() {
        if !matches!(it.eval(e).await?, Value::Scalar(_)) {
            return Ok(None);
        }
    }
    let Some((dfs, info)) = super::partitionwise::dfs_source(it, s).await? else {
        return Ok(None);
    };
    let preds = super::sql::partition_preds(it, &info, &s.filters).await?;
    let parts = crate::catalog::prune(&info, &preds);
    if parts.len() < 2 {
        return Ok(None);
    }
    let mut q = s.clone();
    // With `distinct`, each partition drops its duplicates; the rest applies after the merge.
    let hidden_keys = if s.distinct {
        q.order_by.clear();
        q.top = None;
        q.limit = None;
        &[][..]
    } else {
        &s.order_by[..]
    };
    for (i, (k, _)) in hidden_keys.iter().enumerate() {
        q.items.push(Expr {
            kind: ExprKind::Alias {
                expr: Box::new(k.clone()),
                name: hidden(i),
            },
            pos: k.pos,
        });
    }
    let Some(bindings) = crate::fragment::bindings(it, &q, &info.schema) else {
        return Ok(None);
    };
    it.partitions_read = parts.len();
    let f = crate::fragment::Fragment {
        mode: crate::fragment::Mode::Whole,
        info: info.clone(),
        parts: parts.into_iter().cloned().collect(),
        query: q,
        bindings,
        join: None,
    };
    let merged = super::partitionwise::stack(dfs.execute(&f).await?)?;
    let merged = Rc::new(merged.expect("at least two partitions"));
    let mut last = Select::over(s.from.clone());
    last.top = s.top.clone();
    last.limit = s.limit.clone();
    if s.distinct {
        last.distinct = true;
        last.order_by = s.order_by.clone();
        return match Box::pin(super::sql::select_on(it, &last, merged)).await? {
            v @ Value::Table(_) => Ok(Some(v)),
            _ => Err(EvalError::msg("a distinct merge gave no table")),
        };
    }
    // The first k of the concatenation, in the keys' order.
    last.order_by = s
        .order_by
        .iter()
        .enumerate()
        .map(|(i, (k, asc))| {
            (
                Expr {
                    kind: ExprKind::Ident(hidden(i)),
                    pos: k.pos,
                },
                *asc,
            )
        })
        .collect();
    let Value::Table(kept) = Box::pin(super::sql::select_on(it, &last, merged)).await? else {
        return Err(EvalError::msg("a top-k merge gave no table"));
    };
    let width = kept.columns.len() - s.order_by.len();
    let mut kept = Rc::unwrap_or_clone(kept);
    kept.columns.truncate(width);
    Ok(Some(Value::Table(Rc::new(kept))))
}
