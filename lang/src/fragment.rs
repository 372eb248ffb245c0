//! Plan fragments: the part of a query over a `dfs://` table that runs where the table's chunks
//! are. A coordinator (a compute node, a data node, or the single node) builds a [`Fragment`]
//! — the table's snapshot, the partitions it covers, the query as a syntax tree and the values
//! of the session variables the query names — and hands it to `Catalog::execute`, which runs
//! it on data nodes holding live replicas; each partition's result comes back as a table and
//! the coordinator merges them.
//!
//! A fragment may carry the right side of a co-partitioned join ([`JoinSide`], ARCHITECTURE
//! D95): each of its partitions is then joined with the right table's partition of the same
//! name where both chunks are, and the joined rows come back.
//!
//! Three modes:
//! - [`Mode::Rows`]: each partition's rows that pass the query's `where` conditions, only the
//!   columns the query names (the coordinator runs the rest of the query over them);
//! - [`Mode::Partial`]: each partition's partial aggregates per group (`eval::partial`);
//! - [`Mode::Whole`]: the whole query over each partition, when its `group by` / `context by`
//!   keys cover the partitioning so no group spans two partitions (`eval::partitionwise`).
//!
//! Invariants:
//! - A fragment is self-contained: it names its chunks with the snapshot's versions and carries
//!   every non-column value it uses, so any replica's node computes the same tables, and a task
//!   rerun elsewhere after a node's loss gives the same answer.
//! - What travels is pushed down only when per-partition evaluation cannot change the answer:
//!   a `where` condition travels only if it is row-wise ([`row_wise`]), and a query that names a
//!   user function, a lambda or a sub-query does not travel at all ([`bindings`] says `None`).
//! - Results come back one table per partition, in the fragment's partition order, so a
//!   merge that follows it keeps `first` / `last` in insertion order.

use std::rc::Rc;

use storage::batch::{Batch, Schema};
use storage::bytes::{Reader, Writer};
use storage::column::Column;

use crate::catalog::{ChunkSource, Partition, TableInfo};
use crate::eval::{EvalError, Interp, Table, Value};
use crate::parse::ast::{Expr, ExprKind, Select};
use crate::parse::codec;
use crate::partition::Scheme;

/// What each partition of a fragment computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Rows,
    Partial,
    Whole,
}

/// A piece of a query that runs over some partitions of one table.
#[derive(Debug, Clone)]
pub struct Fragment {
    pub mode: Mode,
    /// The table's schema, partitioning and scheme (its `partitions` are not sent: `parts` are).
    pub info: Rc<TableInfo>,
    /// The partitions to run over, each with the snapshot's chunk version.
    pub parts: Vec<Partition>,
    /// The query: for `Rows`, the columns it names and its `where`; otherwise all of it.
    pub query: Select,
    /// Session variables the query names, as plain values.
    pub bindings: Vec<(String, value::Value)>,
    /// The right table of a co-partitioned join: each partition's result is then its rows
    /// joined with the right table's same partition (`Mode::Rows`, no query of its own).
    pub join: Option<Rc<JoinSide>>,
}

/// The right side of a co-partitioned join (`ej`, `lj`, `lsj` on keys that include every
/// partitioning column, so no pair of rows that match lies in two different partitions).
#[derive(Debug, Clone, PartialEq)]
pub struct JoinSide {
    pub func: String,
    pub info: Rc<TableInfo>,
    /// The right table's partition of the same name as each of the fragment's, if it has one.
    pub parts: Vec<Option<Partition>>,
    pub left_keys: Vec<String>,
    pub right_keys: Vec<String>,
}

/// Join functions that decompose over co-partitioned tables, each partition pair on its own:
/// the rows each keeps depend only on the left rows and the right rows with the same keys.
pub const PARTITION_WISE_JOINS: &[&str] = &["ej", "lj", "lsj"];

/// Functions that compute each row from that row alone: a condition made of these (and of
/// operators) gives the same rows per partition as over the whole table.
const ROW_WISE_FUNCS: &[&str] = &[
    "date",
    "month",
    "year",
    "hour",
    "minute",
    "second",
    "time",
    "datetime",
    "timestamp",
    "nanotime",
    "nanotimestamp",
    "datehour",
    "monthOfYear",
    "dayOfMonth",
    "dayOfYear",
    "dayOfWeek",
    "weekday",
    "hourOfDay",
    "minuteOfHour",
    "secondOfMinute",
    "millisecond",
    "monthBegin",
    "monthEnd",
    "yearBegin",
    "yearEnd",
    "businessDay",
    "bar",
    "temporalAdd",
    "between",
    "in",
    "like",
    "ilike",
    "isNull",
    "isValid",
    "not",
    "and",
    "or",
    "abs",
    "neg",
    "log",
    "exp",
    "sqrt",
    "round",
    "floor",
    "ceil",
    "iif",
    "nullFill",
    "upper",
    "lower",
    "toUpper",
    "toLower",
    "strlen",
    "left",
    "right",
    "substr",
    "startsWith",
    "endsWith",
    "trim",
    "ltrim",
    "rtrim",
    "string",
    "symbol",
    "int",
    "long",
    "short",
    "double",
    "float",
    "bool",
    "char",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "strFind",
    "regexFind",
    "regexCount",
    "strReplace",
    "concat",
    "cast",
];

/// Operators that are row-wise (the binary forms the parser produces).
const ROW_WISE_OPS: &[&str] = &[
    "+", "-", "*", "/", "\\", "%", "==", "=", "!=", "<>", "<", ">", "<=", ">=", "&&", "||", "and",
    "or", "&", "|", "^", "<<", ">>", "in", "like", "ilike", "between", ":", "not in",
];

/// Whether `e` computes each row from that row alone.
pub fn row_wise(e: &Expr) -> bool {
    let ok = |n: &str| ROW_WISE_FUNCS.iter().any(|f| f.eq_ignore_ascii_case(n));
    match &e.kind {
        ExprKind::Lit(_) | ExprKind::Ident(_) => true,
        ExprKind::Vector(items) | ExprKind::Tuple(items) => items.iter().all(row_wise),
        ExprKind::Unary { expr, .. } => row_wise(expr),
        ExprKind::Binary { op, left, right } => {
            ROW_WISE_OPS.contains(&op.as_str()) && row_wise(left) && row_wise(right)
        }
        ExprKind::Call { func, args } => {
            matches!(&func.kind, ExprKind::Ident(f) if ok(f))
                && args.iter().all(|a| row_wise(&a.value))
        }
        ExprKind::Method { obj, name, args } => {
            ok(name) && row_wise(obj) && args.iter().flatten().all(|a| row_wise(&a.value))
        }
        _ => false,
    }
}

/// The session variables `s` names that are not columns of `schema`, as plain values; `None`
/// when the query cannot run elsewhere: it holds a lambda or a sub-query, or names a user
/// function or a value the wire cannot carry (a table handle, a duration).
pub fn bindings(it: &Interp, s: &Select, schema: &Schema) -> Option<Vec<(String, value::Value)>> {
    let exprs = s.exprs();
    let mut names: Vec<String> = Vec::new();
    let mut local = true;
    for e in exprs {
        crate::parse::ast::walk(e, &mut |x| match &x.kind {
            ExprKind::Ident(n) => names.push(n.clone()),
            // A method call names a function too (`x.myFunc()`).
            ExprKind::Method {
                name,
                args: Some(_),
                ..
            } => names.push(name.clone()),
            ExprKind::Select(_) | ExprKind::Lambda { .. } | ExprKind::Meta(_) => local = false,
            _ => {}
        });
    }
    if !local {
        return None;
    }
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for n in names {
        if schema
            .columns
            .iter()
            .any(|(c, _)| c.eq_ignore_ascii_case(&n))
        {
            continue;
        }
        let Some(v) = it.var(&n) else {
            // A built-in function's name (or an unknown one, an error wherever it runs).
            continue;
        };
        let plain = crate::wire::to_plain(v);
        if matches!(plain, value::Value::Opaque(_)) {
            return None;
        }
        out.push((n, plain));
    }
    Some(out)
}

/// Schema indexes of the columns `s` names (every column when it may name any; at least one,
/// so a partition's row count survives).
pub fn read_columns(s: &Select, schema: &Schema) -> Vec<usize> {
    let wanted = crate::eval::referenced_columns(s);
    let mut read: Vec<usize> = (0..schema.columns.len())
        .filter(|i| {
            wanted.as_ref().is_none_or(|w| {
                w.iter()
                    .any(|n| n.eq_ignore_ascii_case(&schema.columns[*i].0))
            })
        })
        .collect();
    if read.is_empty() {
        read.push(0);
    }
    read
}

/// What each partition of `f` reads: the schema indexes of its columns, or `None` when only
/// its row count is needed (`count(*)` grouped by keys the partitioning fixes).
pub fn reads(f: &Fragment) -> Result<Option<Vec<usize>>, EvalError> {
    Ok(match f.mode {
        Mode::Partial => {
            let plan = crate::eval::PartialPlan::of(&f.query, &f.info)
                .ok_or_else(|| EvalError::msg("a partial-aggregate fragment of another shape"))?;
            (!plan.read.is_empty()).then_some(plan.read)
        }
        Mode::Rows | Mode::Whole => Some(read_columns(&f.query, &f.info.schema)),
    })
}

/// Runs `f` over its partitions, reading chunks from `src`: one table per partition, in order.
pub async fn run(f: &Fragment, src: &dyn ChunkSource) -> Result<Vec<Table>, EvalError> {
    let mut it = Interp::new(1);
    for (n, v) in &f.bindings {
        it.set(n, crate::wire::from_plain(v.clone()));
    }
    let schema = &f.info.schema;
    let mut out = Vec::with_capacity(f.parts.len());
    match f.mode {
        Mode::Partial => {
            let plan = crate::eval::PartialPlan::of(&f.query, &f.info)
                .ok_or_else(|| EvalError::msg("a partial-aggregate fragment of another shape"))?;
            for p in &f.parts {
                if plan.read.is_empty() {
                    let rows = src.rows(schema, p).await?;
                    out.push(
                        crate::eval::partition_partial(
                            &mut it, &plan, &f.query, &f.info, &p.name, None, rows,
                        )
                        .await?,
                    );
                    continue;
                }
                // Piece by piece (a store's decoded spans, not copied), then combined.
                let mut pieces = src.pieces(schema, p, &plan.read).await?;
                if pieces.is_empty() {
                    pieces.push(
                        plan.read
                            .iter()
                            .map(|c| std::sync::Arc::new(Column::empty(schema.columns[*c].1)))
                            .collect(),
                    );
                }
                let mut partials = Vec::with_capacity(pieces.len());
                for cols in pieces {
                    partials.push(
                        crate::eval::partition_partial(
                            &mut it,
                            &plan,
                            &f.query,
                            &f.info,
                            &p.name,
                            Some(cols),
                            0,
                        )
                        .await?,
                    );
                }
                out.push(if partials.len() == 1 {
                    partials.pop().expect("one")
                } else {
                    crate::eval::combine_partials(&plan, partials)?
                });
            }
        }
        Mode::Rows if f.join.is_some() => {
            let j = f.join.as_deref().expect("checked");
            let all = |s: &Schema| (0..s.columns.len()).collect::<Vec<usize>>();
            for (p, rp) in f.parts.iter().zip(&j.parts) {
                let left = table_of(
                    schema,
                    &all(schema),
                    src.columns(schema, p, &all(schema)).await?,
                );
                let rs = &j.info.schema;
                let right = match rp {
                    Some(rp) => table_of(rs, &all(rs), src.columns(rs, rp, &all(rs)).await?),
                    None => empty_table(rs),
                };
                out.push(
                    crate::eval::join_tables(
                        &mut it,
                        &j.func,
                        left,
                        right,
                        &j.left_keys,
                        &j.right_keys,
                    )
                    .await?,
                );
            }
        }
        Mode::Rows | Mode::Whole => {
            let read = read_columns(&f.query, schema);
            for p in &f.parts {
                let cols = src.columns(schema, p, &read).await?;
                let rows = Rc::new(Table {
                    columns: read
                        .iter()
                        .map(|i| schema.columns[*i].0.clone())
                        .zip(cols)
                        .collect(),
                });
                let t = if f.mode == Mode::Whole {
                    match Box::pin(crate::eval::select_on(&mut it, &f.query, rows)).await? {
                        Value::Table(t) => Rc::unwrap_or_clone(t),
                        other => {
                            return Err(EvalError::msg(format!(
                                "a partition's query gave a {}",
                                other.typestr()
                            )))
                        }
                    }
                } else if f.query.filters.is_empty() {
                    Rc::unwrap_or_clone(rows)
                } else {
                    crate::eval::filtered(&mut it, &rows, &f.query.filters).await?
                };
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// A table of `schema`'s columns and no rows.
pub fn empty_table(schema: &Schema) -> Rc<Table> {
    Rc::new(Table {
        columns: schema
            .columns
            .iter()
            .map(|(n, t)| (n.clone(), Column::empty(*t)))
            .collect(),
    })
}

/// Columns `read` of `schema`, as a table.
fn table_of(schema: &Schema, read: &[usize], cols: Vec<Column>) -> Rc<Table> {
    Rc::new(Table {
        columns: read
            .iter()
            .map(|i| schema.columns[*i].0.clone())
            .zip(cols)
            .collect(),
    })
}

/// One partition's table from those its row ranges gave, in row order (a `Partial` fragment
/// only: partial aggregates combine; rows and whole queries do not split).
pub fn combine(f: &Fragment, ranges: Vec<Table>) -> Result<Table, EvalError> {
    let plan = match f.mode {
        Mode::Partial => crate::eval::PartialPlan::of(&f.query, &f.info),
        Mode::Rows | Mode::Whole => None,
    }
    .ok_or_else(|| EvalError::msg("only partial aggregates combine over row ranges"))?;
    crate::eval::combine_partials(&plan, ranges)
}

/// Whether a partition of `f` may be computed in row ranges and [`combine`]d.
pub fn splits(f: &Fragment) -> bool {
    f.mode == Mode::Partial
        && crate::eval::PartialPlan::of(&f.query, &f.info).is_some_and(|p| !p.read.is_empty())
}

impl Fragment {
    /// The same fragment over other partitions (a task of it).
    pub fn over(&self, parts: Vec<Partition>) -> Fragment {
        // A join's right partitions follow the left ones they pair with.
        let join = self.join.as_ref().map(|j| {
            let paired: Vec<Option<Partition>> = parts
                .iter()
                .map(|p| {
                    self.parts
                        .iter()
                        .position(|q| q == p)
                        .and_then(|i| j.parts[i].clone())
                })
                .collect();
            Rc::new(JoinSide {
                parts: paired,
                ..JoinSide::clone(j)
            })
        });
        Fragment {
            mode: self.mode,
            info: self.info.clone(),
            parts,
            query: self.query.clone(),
            bindings: self.bindings.clone(),
            join,
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, EvalError> {
        let mut w = Writer::default();
        w.u8(match self.mode {
            Mode::Rows => 0,
            Mode::Partial => 1,
            Mode::Whole => 2,
        });
        encode_info(&self.info, &mut w);
        w.varint(self.parts.len() as u64);
        for p in &self.parts {
            encode_part(p, &mut w);
        }
        codec::encode_select(&self.query, &mut w);
        w.varint(self.bindings.len() as u64);
        for (n, v) in &self.bindings {
            w.blob(n.as_bytes());
            let mut b = Vec::new();
            value::wire::encode(v, &mut b)
                .map_err(|e| EvalError::msg(format!("variable {n} cannot travel: {e}")))?;
            w.blob(&b);
        }
        match &self.join {
            None => w.u8(0),
            Some(j) => {
                w.u8(1);
                w.blob(j.func.as_bytes());
                encode_info(&j.info, &mut w);
                w.varint(j.parts.len() as u64);
                for p in &j.parts {
                    match p {
                        None => w.u8(0),
                        Some(p) => {
                            w.u8(1);
                            encode_part(p, &mut w);
                        }
                    }
                }
                for keys in [&j.left_keys, &j.right_keys] {
                    w.varint(keys.len() as u64);
                    for k in keys {
                        w.blob(k.as_bytes());
                    }
                }
            }
        }
        Ok(w.buf)
    }

    /// Decodes [`Fragment::encode`]'s bytes; anything malformed is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Fragment, String> {
        let e = |e: storage::bytes::DecodeError| e.to_string();
        let mut r = Reader::new(bytes);
        let mode = match r.u8().map_err(e)? {
            0 => Mode::Rows,
            1 => Mode::Partial,
            2 => Mode::Whole,
            m => return Err(format!("a fragment mode {m}")),
        };
        let info = decode_info(&mut r)?;
        let n = r.count(r.remaining()).map_err(e)?;
        let mut parts = Vec::with_capacity(n);
        for _ in 0..n {
            parts.push(decode_part(&mut r)?);
        }
        let query = codec::Decoder::new(&mut r).select()?;
        let n = r.count(r.remaining()).map_err(e)?;
        let mut bindings = Vec::with_capacity(n);
        for _ in 0..n {
            let name = String::from_utf8(r.blob().map_err(e)?.to_vec())
                .map_err(|_| "a variable name that is not UTF-8")?;
            let (v, _) = value::wire::decode(r.blob().map_err(e)?).map_err(|x| x.to_string())?;
            bindings.push((name, v));
        }
        let join = match r.u8().map_err(e)? {
            0 => None,
            1 => {
                let func = utf8(r.blob().map_err(e)?, "a join function")?;
                if !PARTITION_WISE_JOINS.contains(&func.as_str()) {
                    return Err(format!("a partition-wise {func} join"));
                }
                let info = decode_info(&mut r)?;
                let n = r.count(r.remaining()).map_err(e)?;
                if n != parts.len() {
                    return Err(format!("{n} right partitions for {}", parts.len()));
                }
                let mut right = Vec::with_capacity(n);
                for _ in 0..n {
                    right.push(match r.u8().map_err(e)? {
                        0 => None,
                        1 => Some(decode_part(&mut r)?),
                        b => return Err(format!("a right-partition tag {b}")),
                    });
                }
                let mut keys = [Vec::new(), Vec::new()];
                for side in &mut keys {
                    let n = r.count(r.remaining()).map_err(e)?;
                    for _ in 0..n {
                        side.push(utf8(r.blob().map_err(e)?, "a join key")?);
                    }
                }
                let [left_keys, right_keys] = keys;
                Some(Rc::new(JoinSide {
                    func,
                    info,
                    parts: right,
                    left_keys,
                    right_keys,
                }))
            }
            b => return Err(format!("a join tag {b}")),
        };
        if r.remaining() != 0 {
            return Err(format!("{} bytes after a fragment", r.remaining()));
        }
        Ok(Fragment {
            mode,
            info,
            parts,
            query,
            bindings,
            join,
        })
    }
}

fn utf8(b: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| format!("{what} that is not UTF-8"))
}

/// A table's schema, partitioning columns and scheme (not its partitions: a fragment names
/// those it runs over).
fn encode_info(info: &TableInfo, w: &mut Writer) {
    info.schema.encode(w);
    w.varint(info.partition_columns.len() as u64);
    for c in &info.partition_columns {
        w.varint(*c as u64);
    }
    info.scheme.encode(w);
}

fn decode_info(r: &mut Reader<'_>) -> Result<Rc<TableInfo>, String> {
    let e = |e: storage::bytes::DecodeError| e.to_string();
    let schema = Schema::decode(r).map_err(e)?;
    let n = r.count(r.remaining()).map_err(e)?;
    let mut partition_columns = Vec::with_capacity(n);
    for _ in 0..n {
        let c = r.varint().map_err(e)? as usize;
        if c >= schema.columns.len() {
            return Err(format!("a partitioning column {c} beyond the schema"));
        }
        partition_columns.push(c);
    }
    let scheme = Scheme::decode(r)?;
    Ok(Rc::new(TableInfo {
        schema,
        partition_columns,
        scheme,
        partitions: Vec::new(),
    }))
}

fn encode_part(p: &Partition, w: &mut Writer) {
    w.blob(p.name.as_bytes());
    w.u64(p.chunk);
    w.u64(p.version);
}

fn decode_part(r: &mut Reader<'_>) -> Result<Partition, String> {
    let e = |e: storage::bytes::DecodeError| e.to_string();
    Ok(Partition {
        name: utf8(r.blob().map_err(e)?, "a partition name")?,
        chunk: r.u64().map_err(e)?,
        version: r.u64().map_err(e)?,
    })
}

/// Partition results as bytes: storable columns in bulk (the redo log's batch encoding), any
/// other table through the client wire format.
pub fn encode_tables(tables: &[Table]) -> Result<Vec<u8>, EvalError> {
    let mut w = Writer::default();
    w.varint(tables.len() as u64);
    for t in tables {
        if t.columns.iter().all(|(_, c)| c.ty.storable()) {
            w.u8(0);
            w.varint(t.columns.len() as u64);
            for (n, _) in &t.columns {
                w.blob(n.as_bytes());
            }
            let cols: Vec<Column> = t.columns.iter().map(|(_, c)| c.clone()).collect();
            Batch::encode_columns(&cols, &mut w);
        } else {
            w.u8(1);
            let mut b = Vec::new();
            value::wire::encode(&value::Value::Table(Rc::new(t.clone())), &mut b)
                .map_err(|e| EvalError::msg(format!("a partition's result cannot travel: {e}")))?;
            w.blob(&b);
        }
    }
    Ok(w.buf)
}

pub fn decode_tables(bytes: &[u8]) -> Result<Vec<Table>, String> {
    let e = |e: storage::bytes::DecodeError| e.to_string();
    let mut r = Reader::new(bytes);
    let n = r.count(r.remaining()).map_err(e)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        match r.u8().map_err(e)? {
            0 => {
                let k = r.count(r.remaining()).map_err(e)?;
                let mut names = Vec::with_capacity(k);
                for _ in 0..k {
                    names.push(
                        String::from_utf8(r.blob().map_err(e)?.to_vec())
                            .map_err(|_| "a column name that is not UTF-8")?,
                    );
                }
                let b = Batch::decode(&mut r).map_err(e)?;
                if b.columns.len() != names.len() {
                    return Err("a result with names and columns that differ".into());
                }
                out.push(Table {
                    columns: names.into_iter().zip(b.columns).collect(),
                });
            }
            1 => {
                let (v, _) =
                    value::wire::decode(r.blob().map_err(e)?).map_err(|x| x.to_string())?;
                let value::Value::Table(t) = v else {
                    return Err("a partition's result that is not a table".into());
                };
                out.push(Rc::unwrap_or_clone(t));
            }
            t => return Err(format!("a result tag {t}")),
        }
    }
    if r.remaining() != 0 {
        return Err(format!("{} bytes after the results", r.remaining()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::types::DataType;

    fn part(name: &str, chunk: u64) -> Partition {
        Partition {
            name: name.into(),
            chunk,
            version: chunk * 10,
        }
    }

    fn info(columns: &[(&str, DataType)]) -> Rc<TableInfo> {
        Rc::new(TableInfo {
            schema: Schema::new(columns),
            partition_columns: vec![0],
            scheme: Scheme::Value {
                ty: DataType::Int,
                keys: Vec::new(),
            },
            partitions: Vec::new(),
        })
    }

    /// A join fragment travels whole: the right side, its partition pairs (absent ones
    /// included) and keys come back as sent, `over` keeps each pair with its left partition,
    /// and every truncation of the bytes is an error, never a panic.
    #[test]
    fn a_join_fragment_round_trips_and_splits_by_pair() {
        let left = info(&[("k", DataType::Int), ("px", DataType::Double)]);
        let f = Fragment {
            mode: Mode::Rows,
            info: left.clone(),
            parts: vec![part("1", 1), part("2", 2), part("3", 3)],
            query: Select::over(Expr {
                kind: ExprKind::Ident("pt".into()),
                pos: crate::parse::Pos { line: 1, col: 1 },
            }),
            bindings: Vec::new(),
            join: Some(Rc::new(JoinSide {
                func: "lj".into(),
                info: info(&[("k", DataType::Int), ("qty", DataType::Int)]),
                parts: vec![Some(part("1", 7)), None, Some(part("3", 9))],
                left_keys: vec!["k".into()],
                right_keys: vec!["K".into()],
            })),
        };
        let bytes = f.encode().unwrap();
        let back = Fragment::decode(&bytes).unwrap();
        assert_eq!(back.parts, f.parts);
        assert_eq!(back.info.schema, left.schema);
        assert_eq!(back.join, f.join);
        let task = f.over(vec![part("3", 3), part("2", 2)]);
        let j = task.join.as_deref().unwrap();
        assert_eq!(j.parts, vec![Some(part("3", 9)), None]);
        for n in 0..bytes.len() {
            assert!(Fragment::decode(&bytes[..n]).is_err(), "{n} bytes");
        }
    }
}
