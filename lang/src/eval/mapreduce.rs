//! DolphinDB's generic distributed computing: `sqlDS(<select …>, [forcePartition=false])`
//! splits a query over a partitioned table into one data source per partition it touches, and
//! `mr(ds, mapFunc, [reduceFunc], [finalFunc], [parallel=true])` materializes each data source,
//! maps it, folds the map results pairwise with `reduceFunc` and hands the result (or, with no
//! reduce, the tuple of map results) to `finalFunc`.
//!
//! A data source is the query and one partition of the table at the snapshot `sqlDS` took.
//! Materializing it runs the query where that partition's chunk is, as a `Whole` plan fragment
//! over that partition alone (`crate::fragment`); `mr` with `parallel` materializes all of a
//! query's data sources as one fragment, so the data nodes compute them at the same time. A
//! query that names a user function or a lambda reads the partition's rows and runs here, as
//! every fragment that cannot travel does. The map, reduce and final functions run on the
//! node that called `mr`.
//!
//! Invariant: a data source reads exactly its partition at its snapshot version, so the map
//! results over `sqlDS`'s data sources cover every row the query touches exactly once.

use std::rc::Rc;

use super::interp::Interp;
use super::value::{Table, Value};
use super::EvalError;
use crate::catalog::{Partition, TableInfo};
use crate::parse::ast::{ExprKind, Select};
use crate::parse::Pos;

pub(super) const NAMES: &[&str] = &["sqlDS", "mr"];

/// One partition's share of a query (what `sqlDS` returns a tuple of).
#[derive(Debug)]
pub struct DataSource {
    /// Shared by every data source of one `sqlDS` call.
    pub query: Rc<Select>,
    pub origin: Origin,
}

#[derive(Debug)]
pub enum Origin {
    /// A partition of a `dfs://` table.
    Partition {
        db: String,
        table: String,
        info: Rc<TableInfo>,
        part: Partition,
    },
    /// An in-memory table: the whole query is its one data source.
    Memory(Rc<Table>),
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.query.exec { "exec" } else { "select" };
        match &self.origin {
            Origin::Partition {
                db,
                table,
                info,
                part,
            } => write!(
                f,
                "DataSource< {what} from {table} [partition = /{}/{}] >",
                db.strip_prefix("dfs://").unwrap_or(db),
                info.scheme.display_path(&part.name)
            ),
            Origin::Memory(t) => {
                write!(f, "DataSource< {what} from a table of {} rows >", t.rows())
            }
        }
    }
}

pub(super) async fn call(
    it: &mut Interp,
    name: &str,
    args: Vec<Value>,
    pos: Pos,
) -> Result<Value, EvalError> {
    match name {
        "sqlDS" => sql_ds(it, args).await,
        _ => mr(it, args, pos).await,
    }
}

async fn sql_ds(it: &mut Interp, args: Vec<Value>) -> Result<Value, EvalError> {
    super::builtins::arity("sqlDS", &args, 1, 2)?;
    let query = match &args[0] {
        Value::Code(e) => match &e.kind {
            ExprKind::Select(s) => Rc::new(s.as_ref().clone()),
            _ => return Err(EvalError::msg("The function [sqlDS] needs SQL metacode")),
        },
        _ => return Err(EvalError::msg("The function [sqlDS] needs SQL metacode")),
    };
    let force = match args.get(1) {
        Some(Value::Void) | None => false,
        Some(v) => it.truthy(v)?,
    };
    match it.eval(&query.from).await? {
        Value::Table(t) => Ok(Value::Tuple(vec![Value::DataSource(Rc::new(DataSource {
            query,
            origin: Origin::Memory(t),
        }))])),
        Value::DfsTable { db, table } => {
            let dfs = it
                .dfs
                .clone()
                .ok_or_else(|| EvalError::msg("this node serves no dfs:// databases"))?;
            let info = dfs.table(&db, &table).await?;
            if !force {
                if !query.order_by.is_empty() {
                    return Err(EvalError::msg(
                        "sqlDS: a query with order by cannot be split into queries over partitions; set forcePartition=true to split it anyway",
                    ));
                }
                let keys = if query.context_by.is_empty() {
                    &query.group_by
                } else {
                    &query.context_by
                };
                if !keys.is_empty() && !super::partitionwise::keys_cover(keys, &info) {
                    return Err(EvalError::msg(
                        "sqlDS: the grouping columns are not the partitioning columns, so the query cannot be split into queries over partitions; set forcePartition=true to split it anyway",
                    ));
                }
            }
            let preds = super::sql::partition_preds(it, &info, &query.filters).await?;
            let parts: Vec<Partition> = crate::catalog::prune(&info, &preds)
                .into_iter()
                .cloned()
                .collect();
            Ok(Value::Tuple(
                parts
                    .into_iter()
                    .map(|part| {
                        Value::DataSource(Rc::new(DataSource {
                            query: query.clone(),
                            origin: Origin::Partition {
                                db: db.clone(),
                                table: table.clone(),
                                info: info.clone(),
                                part,
                            },
                        }))
                    })
                    .collect(),
            ))
        }
        other => Err(EvalError::msg(format!(
            "sqlDS: the query reads a {}, not a table",
            other.typestr()
        ))),
    }
}

/// `mr`'s optional function argument: absent when omitted or left empty (`mr(ds, f, , g)`).
fn optional(args: &[Value], i: usize) -> Option<Value> {
    args.get(i).filter(|v| !matches!(v, Value::Void)).cloned()
}

async fn mr(it: &mut Interp, args: Vec<Value>, pos: Pos) -> Result<Value, EvalError> {
    super::builtins::arity("mr", &args, 2, 5)?;
    let sources: Vec<Rc<DataSource>> = match &args[0] {
        Value::Tuple(items) => items
            .iter()
            .map(|v| match v {
                Value::DataSource(d) => Ok(d.clone()),
                other => Err(EvalError::msg(format!(
                    "mr: ds must be a tuple of data sources, not of {}",
                    other.typestr()
                ))),
            })
            .collect::<Result<_, _>>()?,
        Value::DataSource(_) => {
            return Err(EvalError::msg(
                "mr: ds must be a tuple of data sources (wrap a single one: [ds])",
            ))
        }
        other => {
            return Err(EvalError::msg(format!(
                "mr: ds must be a tuple of data sources, not a {}",
                other.typestr()
            )))
        }
    };
    let map = args[1].clone();
    let reduce = optional(&args, 2);
    let finalize = optional(&args, 3);
    let parallel = match optional(&args, 4) {
        Some(v) => it.truthy(&v)?,
        None => true,
    };
    let mut mapped = Vec::with_capacity(sources.len());
    let mut i = 0;
    while i < sources.len() {
        // With `parallel`, a run of one query's partitions is materialized as one fragment.
        let run = if parallel {
            sources[i..]
                .iter()
                .take_while(|d| same_query(d, &sources[i]))
                .count()
                .max(1)
        } else {
            1
        };
        for data in materialize(it, &sources[i..i + run]).await? {
            mapped.push(it.apply(map.clone(), vec![data], &[], pos).await?);
        }
        i += run;
    }
    let folded = match reduce {
        Some(r) => {
            let mut results = mapped.into_iter();
            let Some(mut acc) = results.next() else {
                return Err(EvalError::msg("mr: no data source to reduce"));
            };
            for next in results {
                acc = it.apply(r.clone(), vec![acc, next], &[], pos).await?;
            }
            acc
        }
        None => Value::Tuple(mapped),
    };
    match finalize {
        Some(f) => it.apply(f, vec![folded], &[], pos).await,
        None => Ok(folded),
    }
}

/// Whether two data sources are partitions of one `sqlDS` call's query.
fn same_query(a: &DataSource, b: &DataSource) -> bool {
    Rc::ptr_eq(&a.query, &b.query)
        && matches!(
            (&a.origin, &b.origin),
            (Origin::Partition { .. }, Origin::Partition { .. })
        )
}

/// Each data source's data: the query's result over its partition. `sources` share one query
/// (`same_query`) when there is more than one.
async fn materialize(it: &mut Interp, sources: &[Rc<DataSource>]) -> Result<Vec<Value>, EvalError> {
    let first = &sources[0];
    let query = &first.query;
    let info = match &first.origin {
        Origin::Memory(t) => {
            return Ok(vec![
                Box::pin(super::sql::select_on(it, query, t.clone())).await?,
            ])
        }
        Origin::Partition { info, .. } => info.clone(),
    };
    let parts: Vec<Partition> = sources
        .iter()
        .filter_map(|d| match &d.origin {
            Origin::Partition { part, .. } => Some(part.clone()),
            Origin::Memory(_) => None,
        })
        .collect();
    let dfs = it
        .dfs
        .clone()
        .ok_or_else(|| EvalError::msg("this node serves no dfs:// databases"))?;
    // The whole query travels to each partition's chunk unless it names something only this
    // session has, or answers with something other than a table (`exec`).
    if !query.exec {
        if let Some(bindings) = crate::fragment::bindings(it, query, &info.schema) {
            let f = crate::fragment::Fragment {
                mode: crate::fragment::Mode::Whole,
                info: info.clone(),
                parts,
                query: query.as_ref().clone(),
                bindings,
                join: None,
            };
            let tables = dfs.execute(&f).await?;
            return Ok(tables
                .into_iter()
                .map(|t| Value::Table(Rc::new(t)))
                .collect());
        }
    }
    let read = crate::fragment::read_columns(query, &info.schema);
    let mut out = Vec::with_capacity(parts.len());
    for p in &parts {
        let cols = dfs.scan_chunk(p, &read).await?;
        let rows = Rc::new(Table {
            columns: read
                .iter()
                .map(|i| info.schema.columns[*i].0.clone())
                .zip(cols)
                .collect(),
        });
        out.push(Box::pin(super::sql::select_on(it, query, rows)).await?);
    }
    Ok(out)
}
