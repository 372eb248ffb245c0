//! Partition-wise queries over a `dfs://` table (issue 19: "partition-wise where the
//! partitioning allows"). When the `group by` or `context by` keys include every partitioning
//! column (or `date(col)` of a DATE level), no group spans two partitions, so the query runs
//! over one partition's rows at a time — any function, window or join inside it — and only one
//! partition's rows are in memory at once, not the table's.
//!
//! Invariant: the answer equals the whole-table query's. Each partition's groups are complete;
//! the pieces are merged back into key order (a stable sort on the keys: `group by` keys are
//! the result's first columns, `context by` keys ride along as hidden columns that are then
//! dropped), and `order by`, and `top`/`limit` of a `group by`, apply to the merged result, as
//! they would to the whole table's. `context by`'s `top`/`limit` are per group, so they stay
//! inside each partition's query.
//!
//! `partial.rs` remains the faster path for plain aggregates (it merges partial states and
//! reads no rows for keys the partitioning fixes); this path is for everything else.

use std::rc::Rc;

use storage::column::Column;

use super::interp::Interp;
use super::sql::{compare_rows, strip_alias};
use super::value::{Table, Value};
use super::EvalError;
use crate::parse::ast::{Expr, ExprKind, Select};

/// The hidden column carrying `context by` key `i` through a partition's query.
fn hidden(i: usize) -> String {
    format!("__porpoise_key{i}")
}

/// The `dfs://` table a query reads, when its `from` is a variable holding a handle or
/// `loadTable(...)` (cheap: a handle), with its metadata; `None` for anything else.
pub(super) async fn dfs_source(
    it: &mut Interp,
    s: &Select,
) -> Result<
    Option<(
        Rc<dyn crate::catalog::Catalog>,
        Rc<crate::catalog::TableInfo>,
    )>,
    EvalError,
> {
    let from = match &s.from.kind {
        ExprKind::Ident(n) => it.var(n).cloned(),
        ExprKind::Call { func, .. } if matches!(&func.kind, ExprKind::Ident(f) if f == "loadTable") => {
            Some(it.eval(&s.from).await?)
        }
        _ => None,
    };
    let Some(Value::DfsTable { db, table }) = from else {
        return Ok(None);
    };
    let Some(dfs) = it.dfs.clone() else {
        return Ok(None);
    };
    let info = dfs.table(&db, &table).await?;
    Ok(Some((dfs, info)))
}

/// Per-partition tables stacked in order (a later piece's column cast to the first's type);
/// `None` for no pieces.
pub(super) fn stack(pieces: Vec<Table>) -> Result<Option<Table>, EvalError> {
    let mut merged: Option<Table> = None;
    for piece in pieces {
        merged = Some(match merged {
            None => piece,
            Some(mut m) => {
                for ((_, c), (_, add)) in m.columns.iter_mut().zip(&piece.columns) {
                    let add = if add.ty == c.ty {
                        add.clone()
                    } else {
                        super::builtins::cast(add, c.ty)?
                    };
                    c.append(&add).map_err(EvalError::msg)?;
                }
                m
            }
        });
    }
    Ok(merged)
}

/// Whether grouping `keys` name every partitioning column (a day's `date(DateTime)` names
/// a DATE level's column), so that no group spans two partitions.
pub(super) fn keys_cover(keys: &[Expr], info: &crate::catalog::TableInfo) -> bool {
    let types = info.scheme.types();
    info.partition_columns
        .iter()
        .enumerate()
        .all(|(level, col)| {
            let name = info.schema.columns[*col].0.as_str();
            keys.iter()
                .any(|k| super::sql::names_column(strip_alias(k), name, types[level]))
        })
}

pub(super) async fn try_select(it: &mut Interp, s: &Select) -> Result<Option<Value>, EvalError> {
    let context = !s.context_by.is_empty();
    // Exactly one of group by and context by.
    let grouped = !s.group_by.is_empty();
    if s.exec || !s.pivot_by.is_empty() || !s.cgroup_by.is_empty() || context == grouped {
        return Ok(None);
    }
    let Some((dfs, info)) = dfs_source(it, s).await? else {
        return Ok(None);
    };
    let keys = if context { &s.context_by } else { &s.group_by };
    let names: Vec<&str> = info
        .schema
        .columns
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    if !keys_cover(keys, &info) {
        return Ok(None);
    }
    let preds = super::sql::partition_preds(it, &info, &s.filters).await?;
    let parts = crate::catalog::prune(&info, &preds);
    if parts.len() < 2 {
        return Ok(None);
    }
    // Each partition's query: no order, no result-wide top/limit, context keys carried along.
    let mut q = s.clone();
    q.order_by.clear();
    if !context {
        q.top = None;
        q.limit = None;
    }
    for (i, k) in s.context_by.iter().enumerate() {
        q.items.push(Expr {
            kind: ExprKind::Alias {
                expr: Box::new(strip_alias(k).clone()),
                name: hidden(i),
            },
            pos: k.pos,
        });
    }
    let pieces: Vec<Table> = match crate::fragment::bindings(it, &q, &info.schema) {
        // Each partition's query runs where its chunk is.
        Some(bindings) => {
            let f = crate::fragment::Fragment {
                mode: crate::fragment::Mode::Whole,
                info: info.clone(),
                parts: parts.iter().map(|p| (*p).clone()).collect(),
                query: q,
                bindings,
                join: None,
            };
            dfs.execute(&f).await?
        }
        // It names a user function or a lambda: it runs here, in this session.
        None => {
            let read = crate::fragment::read_columns(s, &info.schema);
            let mut pieces = Vec::with_capacity(parts.len());
            for p in &parts {
                let cols = dfs.scan_chunk(p, &read).await?;
                let rows = Rc::new(Table {
                    columns: read
                        .iter()
                        .map(|i| names[*i].to_string())
                        .zip(cols)
                        .collect(),
                });
                let Value::Table(piece) = Box::pin(super::sql::select_on(it, &q, rows)).await?
                else {
                    return Err(EvalError::msg("a partition's query gave no table"));
                };
                pieces.push(Rc::unwrap_or_clone(piece));
            }
            pieces
        }
    };
    it.partitions_read = parts.len();
    let merged = stack(pieces)?.expect("at least two partitions");
    // Back into key order: stable, so rows keep their order inside each group.
    let nkeys = keys.len();
    let width = merged.columns.len();
    let key_cols: Vec<&Column> = if context {
        merged.columns[width - nkeys..]
            .iter()
            .map(|(_, c)| c)
            .collect()
    } else {
        merged.columns[..nkeys].iter().map(|(_, c)| c).collect()
    };
    let mut order: Vec<usize> = (0..merged.rows()).collect();
    order.sort_by(|a, b| {
        key_cols
            .iter()
            .map(|c| compare_rows(c, *a, *b))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let kept = if context { width - nkeys } else { width };
    let out = Rc::new(Table {
        columns: merged.columns[..kept]
            .iter()
            .map(|(n, c)| (n.clone(), super::builtins::gather(c, &order)))
            .collect(),
    });
    if s.order_by.is_empty() && (context || (s.top.is_none() && s.limit.is_none())) {
        return Ok(Some(Value::Table(out)));
    }
    // `order by` (and a group by's top/limit) over the merged result.
    let last = Select {
        top: if context { None } else { s.top.clone() },
        order_by: s.order_by.clone(),
        limit: if context { None } else { s.limit.clone() },
        ..Select::over(s.from.clone())
    };
    Box::pin(super::sql::select_on(it, &last, out))
        .await
        .map(Some)
}
