//! Co-partitioned joins (ARCHITECTURE D95): `ej`, `lj` and `lsj` of two `dfs://` tables of one
//! database, on keys that include every partitioning column, run partition by partition where
//! the chunks are — each of the left table's partitions joined with the right table's
//! partition of the same name — and only the joined rows travel, as DolphinDB joins tables of
//! one database partition-wise.
//!
//! Invariant: the answer equals the join of the whole tables. Two rows can only match when
//! their partitioning columns are equal, so they lie in partitions of the same name (the tables
//! share the database's scheme); `ej` keeps the pairs of partitions both tables have, `lj` and
//! `lsj` every left partition (joined with an empty right one where the right table has none);
//! the pieces come back in the left table's partition order and are stacked. Where that
//! cannot be shown — other join functions, filters, tables of two databases or schemes, keys
//! that miss a partitioning column, a partition pair no node holds both of — the join takes
//! the general path (both tables' rows to the caller).

use std::collections::HashMap;
use std::rc::Rc;

use storage::column::Column;
use storage::types::DataType;

use super::interp::Interp;
use super::value::{Table, Value};
use super::EvalError;
use crate::fragment::{Fragment, JoinSide, Mode, PARTITION_WISE_JOINS};
use crate::parse::ast::{Expr, ExprKind, Select};

/// The join of `args` computed partition-wise, or `None` when it does not decompose (the
/// caller then joins the whole tables).
pub(super) async fn pushed_down(
    it: &mut Interp,
    name: &str,
    args: &[Value],
) -> Result<Option<Table>, EvalError> {
    // Keys, and optionally the right table's keys: no filters (they are evaluated whole).
    if !PARTITION_WISE_JOINS.contains(&name) || !(3..=4).contains(&args.len()) {
        return Ok(None);
    }
    let (
        Value::DfsTable {
            db: ldb,
            table: ltable,
        },
        Value::DfsTable {
            db: rdb,
            table: rtable,
        },
    ) = (&args[0], &args[1])
    else {
        return Ok(None);
    };
    let Some(dfs) = it.dfs.clone() else {
        return Ok(None);
    };
    if ldb != rdb {
        return Ok(None);
    }
    let left_keys = super::joins::names_of(name, &args[2])?;
    let right_keys = match args.get(3) {
        None | Some(Value::Void) => left_keys.clone(),
        Some(v) => super::joins::names_of(name, v)?,
    };
    if left_keys.is_empty() || left_keys.len() != right_keys.len() {
        return Ok(None); // the general path reports it
    }
    let left = dfs.table(ldb, ltable).await?;
    let right = dfs.table(rdb, rtable).await?;
    if left.partition_columns.is_empty()
        || left.scheme != right.scheme
        || left.partition_columns.len() != right.partition_columns.len()
    {
        return Ok(None);
    }
    // Every level's partitioning column on the left is matched with the right's.
    let matched = left
        .partition_columns
        .iter()
        .zip(&right.partition_columns)
        .all(|(l, r)| {
            let (ln, rn) = (&left.schema.columns[*l].0, &right.schema.columns[*r].0);
            left_keys
                .iter()
                .zip(&right_keys)
                .any(|(a, b)| a.eq_ignore_ascii_case(ln) && b.eq_ignore_ascii_case(rn))
        });
    if !matched {
        return Ok(None);
    }
    let by_name: HashMap<&str, &crate::catalog::Partition> = right
        .partitions
        .iter()
        .map(|p| (p.name.as_str(), p))
        .collect();
    let (mut parts, mut paired) = (Vec::new(), Vec::new());
    for p in &left.partitions {
        let r = by_name.get(p.name.as_str()).map(|r| (*r).clone());
        if name == "ej" && r.is_none() {
            continue; // no right rows: no pairs
        }
        parts.push(p.clone());
        paired.push(r);
    }
    let f = Fragment {
        mode: Mode::Rows,
        info: left.clone(),
        parts,
        query: Select::over(Expr {
            kind: ExprKind::Ident(ltable.clone()),
            pos: crate::parse::Pos { line: 1, col: 1 },
        }),
        bindings: Vec::new(),
        join: Some(Rc::new(JoinSide {
            func: name.to_string(),
            info: right.clone(),
            parts: paired,
            left_keys,
            right_keys,
        })),
    };
    if !dfs.colocated(&f) {
        return Ok(None);
    }
    it.partitions_read += f.parts.len();
    it.pushed_joins += 1;
    let pieces = dfs.execute(&f).await?;
    Ok(Some(match super::partitionwise::stack(pieces)? {
        Some(t) => t,
        // No partition pairs: the join of the empty tables gives the right columns.
        None => {
            let j = f.join.as_deref().expect("built above");
            join_tables(
                it,
                name,
                crate::fragment::empty_table(&left.schema),
                crate::fragment::empty_table(&right.schema),
                &j.left_keys,
                &j.right_keys,
            )
            .await?
        }
    }))
}

/// `func(left, right, leftKeys, rightKeys)` over two in-memory tables (one partition pair).
pub(crate) async fn join_tables(
    it: &mut Interp,
    func: &str,
    left: Rc<Table>,
    right: Rc<Table>,
    left_keys: &[String],
    right_keys: &[String],
) -> Result<Table, EvalError> {
    let keys = |k: &[String]| Value::Vector(Column::from_strings(DataType::String, k));
    let args = vec![
        Value::Table(left),
        Value::Table(right),
        keys(left_keys),
        keys(right_keys),
    ];
    match Box::pin(super::joins::call(it, func, args, &[])).await? {
        Value::Table(t) => Ok(Rc::unwrap_or_clone(t)),
        other => Err(EvalError::msg(format!(
            "a partition's {func} gave a {}",
            other.typestr()
        ))),
    }
}
