//! The `dfs://` built-ins: `database` (every partition scheme, and `database("")` level
//! definitions for COMPO), `createPartitionedTable`, `loadTable`, `append!` / `tableInsert`
//! into partitioned tables, `existsDatabase`, `existsTable`, `dropDatabase`, and `schema()` of a
//! partitioned table with its partition fields. Rights: a session that has not logged in may
//! only ask what exists.

use std::collections::BTreeMap;
use std::rc::Rc;

use storage::column::{Column, ColumnData};
use storage::types::DataType;

use super::builtins::{
    arity, col_defs, dfs_unsupported, named_args, scalar_i64, scalar_string, table_value,
};
use super::interp::Interp;
use super::value::{Table, Value};
use super::EvalError;
use crate::catalog::ChunkRow;
use crate::parse::ast::Expr;
use crate::partition::{keys_of, Key, Scheme};

/// `atomic`'s value: whether it is `'CHUNK'` (else `'TRANS'`).
fn atomic_level(s: &str) -> Result<bool, EvalError> {
    match s.to_ascii_uppercase().as_str() {
        "TRANS" => Ok(false),
        "CHUNK" => Ok(true),
        _ => Err(EvalError::msg(format!(
            "The atomic level must be 'TRANS' or 'CHUNK', not '{s}'"
        ))),
    }
}

fn db_name(v: &Value) -> Result<String, EvalError> {
    match v {
        Value::Database(d) => Ok(d.clone()),
        other => scalar_string(other),
    }
}

pub(super) async fn call(
    it: &mut Interp,
    dfs: &dyn crate::catalog::Catalog,
    name: &str,
    args: Vec<Value>,
    exprs: &[(Option<String>, Expr)],
) -> Result<Value, EvalError> {
    // Rights: a session that has not logged in may ask what exists, nothing more.
    if it.user.is_none() {
        let what = match name {
            "existsDatabase" | "existsTable" => None,
            "getClusterChunksStatus"
            | "getRecoveryTaskStatus"
            | "getClusterDFSDatabases"
            | "getClusterDFSTables"
            | "getDFSDirectoryContent"
            | "getChunksMeta"
            | "getTabletsMeta" => Some("read the cluster's metadata"),
            "database"
            | "dropDatabase"
            | "createPartitionedTable"
            | "createTable"
            | "dropTable"
            | "dropPartition"
            | "setAtomicLevel" => Some("create or delete databases"),
            "loadTable" => Some("read tables"),
            _ => Some("write tables"),
        };
        if let Some(what) = what {
            return Err(EvalError::msg(format!(
                "<NoPrivilege>Not granted to {what}: log in first with login(userId, password)"
            )));
        }
    }
    let need = |v: &Option<Value>, p: &str| {
        v.clone()
            .ok_or_else(|| EvalError::msg(format!("The function [{name}] needs {p}")))
    };
    match name {
        "existsDatabase" => Ok(Value::bool(
            dfs.exists_database(&scalar_string(&need(
                &args.first().cloned(),
                "a database path",
            )?)?)
            .await?,
        )),
        "existsTable" => {
            arity(name, &args, 2, 2)?;
            Ok(Value::bool(
                dfs.exists_table(&db_name(&args[0])?, &scalar_string(&args[1])?)
                    .await?,
            ))
        }
        "getClusterDFSDatabases" | "getClusterDFSTables" => {
            arity(name, &args, 0, 0)?;
            let names = dfs.names(name == "getClusterDFSTables").await?;
            Ok(Value::Vector(Column::from_strings(
                DataType::String,
                &names,
            )))
        }
        "getClusterChunksStatus" => {
            arity(name, &args, 0, 0)?;
            Ok(chunks_status(it, dfs.chunks().await?))
        }
        "getDFSDirectoryContent" => {
            arity(name, &args, 1, 1)?;
            let dir = scalar_string(&args[0])?;
            let databases = dfs.names(false).await?;
            Ok(directory_content(&dir, &databases, &dfs.chunks().await?))
        }
        "getRecoveryTaskStatus" => {
            arity(name, &args, 0, 0)?;
            Ok(recovery_tasks(dfs.recovery_tasks().await?))
        }
        "getChunksMeta" => {
            // getChunksMeta([chunkPath], [top=1024]): this node's chunks.
            arity(name, &args, 0, 2)?;
            let pattern = args.first().map(scalar_string).transpose()?;
            let top = match args.get(1) {
                Some(v) => scalar_i64(v)?,
                None => 1024,
            };
            let mut rows = dfs.local_chunks().await?;
            if let Some(p) = pattern {
                // `%` and `*` match any run of characters.
                let p = p.replace('*', "%");
                rows.retain(|r| super::funcs::like(r.file.as_bytes(), p.as_bytes()));
            }
            if top >= 0 {
                rows.truncate(top as usize);
            }
            Ok(chunks_meta(it, rows))
        }
        "getTabletsMeta" => {
            // getTabletsMeta([chunkPath], [tableName], [diskUsage=false], [top=1024]): this
            // node's chunks that hold rows.
            arity(name, &args, 0, 4)?;
            let pattern = match args.first() {
                Some(Value::Void) | None => None,
                Some(v) => Some(scalar_string(v)?),
            };
            let table = match args.get(1) {
                Some(Value::Void) | None => None,
                Some(v) => Some(scalar_string(v)?),
            };
            let disk_usage = match args.get(2) {
                Some(Value::Void) | None => false,
                Some(v) => it.truthy(v)?,
            };
            let top = match args.get(3) {
                Some(v) => scalar_i64(v)?,
                None => 1024,
            };
            let mut rows: Vec<ChunkRow> = dfs
                .local_chunks()
                .await?
                .into_iter()
                .filter(|r| r.held.as_ref().is_some_and(|h| h.rows > 0))
                .filter(|r| table.as_deref().is_none_or(|t| tablet_of(r).1 == t))
                .collect();
            if let Some(p) = pattern {
                let p = p.replace('*', "%");
                rows.retain(|r| super::funcs::like(tablet_of(r).0.as_bytes(), p.as_bytes()));
            }
            if top >= 0 {
                rows.truncate(top as usize);
            }
            Ok(tablets_meta(rows, disk_usage))
        }
        "dropTable" => {
            // dropTable(dbHandle, tableName)
            arity(name, &args, 2, 2)?;
            dfs.drop_table(&db_name(&args[0])?, &scalar_string(&args[1])?)
                .await?;
            Ok(Value::Void)
        }
        "dropPartition" => {
            // dropPartition(dbHandle, partitionPaths, tableName, [forceDelete], [deleteSchema]):
            // partitions by value (a scalar or vector of the first level's type; every
            // partition below a COMPO database's first level goes with it) or by path
            // ("/<partition name>").
            arity(name, &args, 3, 5)?;
            let db = db_name(&args[0])?;
            let table = scalar_string(&args[2])?;
            let info = dfs.table(&db, &table).await?;
            let values = args[1]
                .column()
                .ok_or_else(|| EvalError::msg("dropPartition needs partition values or paths"))?;
            let firsts: Vec<String> = if matches!(values.ty, DataType::String) && {
                let v = super::builtins::render(values, 0);
                v.starts_with('/')
            } {
                (0..values.len())
                    .map(|i| {
                        super::builtins::render(values, i)
                            .trim_start_matches('/')
                            .to_string()
                    })
                    .collect()
            } else {
                info.scheme.first_level_names(values)?
            };
            let names: Vec<String> = info
                .partitions
                .iter()
                .filter(|p| {
                    // A path may name a partition as DolphinDB shows it (`20230108`).
                    let shown = info.scheme.display_path(&p.name);
                    firsts.iter().any(|f| {
                        [&p.name, &shown]
                            .iter()
                            .any(|n| *n == f || n.starts_with(&format!("{f}/")))
                    })
                })
                .map(|p| p.name.clone())
                .collect();
            dfs.drop_partitions(&db, &table, names).await?;
            Ok(Value::Void)
        }
        "dropDatabase" => {
            arity(name, &args, 1, 1)?;
            dfs.drop_database(&scalar_string(&args[0])?).await?;
            Ok(Value::Void)
        }
        "database" => {
            let a = named_args(
                name,
                args,
                exprs,
                &[
                    "directory",
                    "partitionType",
                    "partitionScheme",
                    "locations",
                    "engine",
                    "atomic",
                ],
            )?;
            let path = scalar_string(&need(&a[0], "a directory")?)?;
            let scheme = match (&a[1], &a[2]) {
                (Some(Value::PartitionType(kind)), Some(spec)) => Some(scheme_of(dfs, kind, spec).await?),
                (Some(Value::PartitionType(kind)), None) => {
                    return Err(EvalError::msg(format!(
                        "The function [database] needs a partition scheme for {kind}"
                    )))
                }
                (None, _) => None,
                _ => return Err(EvalError::msg("The function [database] needs a partition type (VALUE, RANGE, HASH, LIST, COMPO)")),
            };
            // `database("", ...)` defines a level of a COMPO database; nothing is created.
            if path.is_empty() {
                let scheme = scheme.ok_or_else(|| {
                    EvalError::msg("database(\"\") needs a partition type and scheme")
                })?;
                return Ok(Value::PartitionSpec(Rc::new(scheme)));
            }
            let atomic = match &a[5] {
                None => None,
                Some(v) => Some(atomic_level(&scalar_string(v)?)?),
            };
            let creates = scheme.is_some();
            dfs.database(&path, scheme).await?;
            if let (true, Some(chunk)) = (creates, atomic) {
                dfs.set_atomic_level(&path, chunk).await?;
            }
            Ok(Value::Database(path))
        }
        "setAtomicLevel" => {
            // setAtomicLevel(dbHandle, atomic)
            arity(name, &args, 2, 2)?;
            let chunk = atomic_level(&scalar_string(&args[1])?)?;
            dfs.set_atomic_level(&db_name(&args[0])?, chunk).await?;
            Ok(Value::Void)
        }
        "createTable" => {
            // A dimension table: not partitioned, all rows in one chunk.
            let a = named_args(name, args, exprs, &["dbHandle", "table", "tableName"])?;
            let db = db_name(&need(&a[0], "a database handle")?)?;
            let Value::Table(t) = need(&a[1], "a schema table")? else {
                return Err(EvalError::msg("createTable: table must be a table"));
            };
            let tname = scalar_string(&need(&a[2], "tableName")?)?;
            let schema = storage::Schema {
                columns: t.columns.iter().map(|(n, c)| (n.clone(), c.ty)).collect(),
            };
            dfs.create_table(&db, &tname, schema, &[]).await?;
            Ok(Value::DfsTable { db, table: tname })
        }
        "createPartitionedTable" => {
            let a = named_args(
                name,
                args,
                exprs,
                &["dbHandle", "table", "tableName", "partitionColumns"],
            )?;
            let db = db_name(&need(&a[0], "a database handle")?)?;
            let Value::Table(t) = need(&a[1], "a schema table")? else {
                return Err(EvalError::msg(
                    "createPartitionedTable: table must be a table",
                ));
            };
            let tname = scalar_string(&need(&a[2], "tableName")?)?;
            let pcols = match need(&a[3], "partitionColumns")? {
                Value::Vector(c) => (0..c.len())
                    .map(|i| super::builtins::render(&c, i))
                    .collect(),
                v => vec![scalar_string(&v)?],
            };
            let schema = storage::Schema {
                columns: t.columns.iter().map(|(n, c)| (n.clone(), c.ty)).collect(),
            };
            dfs.create_table(&db, &tname, schema, &pcols).await?;
            Ok(Value::DfsTable { db, table: tname })
        }
        "loadTable" => {
            // loadTable(db, table[, partitions, memoryMode]): partitions and memory mode are
            // accepted and ignored (tables are always read on demand).
            arity(name, &args, 2, 4)?;
            let (db, table) = (db_name(&args[0])?, scalar_string(&args[1])?);
            dfs.table(&db, &table).await?;
            Ok(Value::DfsTable { db, table })
        }
        "append!" | "tableInsert" => {
            arity(name, &args, 2, 2)?;
            let Value::DfsTable { db, table } = &args[0] else {
                return Err(EvalError::msg(format!(
                    "The function [{name}] needs a table"
                )));
            };
            let data = match &args[1] {
                Value::Table(t) => t.clone(),
                other => {
                    return Err(EvalError::msg(format!(
                        "The function [{name}] cannot append a {}",
                        other.typestr()
                    )))
                }
            };
            let (tag, done) = it.next_write(dfs).await?;
            let n = match done {
                Some(n) => n,
                None => dfs.append_tagged(db, table, &data, tag).await?,
            };
            // DolphinDB's append! on a DFS table yields nothing to display; tableInsert the count.
            Ok(if name == "tableInsert" {
                Value::int(n as i64)
            } else {
                Value::Void
            })
        }
        _ => Err(dfs_unsupported(name)),
    }
}

/// A table with one row per chunk (or task), built column by column (the chunk views).
struct ChunkTable<'a, T = ChunkRow> {
    rows: &'a [T],
    columns: Vec<(String, Column)>,
}

impl<'a, T> ChunkTable<'a, T> {
    fn new(rows: &'a [T]) -> Self {
        ChunkTable {
            rows,
            columns: Vec::new(),
        }
    }

    fn text(mut self, name: &str, f: impl Fn(&T) -> String) -> Self {
        let v: Vec<String> = self.rows.iter().map(f).collect();
        let c = Column::from_strings(DataType::String, &v);
        self.columns.push((name.to_string(), c));
        self
    }

    fn long(self, name: &str, f: impl Fn(&T) -> i64) -> Self {
        self.typed(name, DataType::Long, f)
    }

    /// A column of integers of type `ty` (BOOL, TIMESTAMP, …).
    fn typed(mut self, name: &str, ty: DataType, f: impl Fn(&T) -> i64) -> Self {
        let v = super::ops::Num::I(self.rows.iter().map(f).collect());
        let c = super::ops::from_num(v, ty);
        self.columns.push((name.to_string(), c));
        self
    }

    fn value(self) -> Value {
        table_value(super::value::Table {
            columns: self.columns,
        })
    }
}

/// DolphinDB's chunk ids are UUIDs; ours are integers, shown in UUID form.
fn chunk_uuid(r: &ChunkRow) -> String {
    format!("00000000-0000-0000-0000-{:012x}", r.chunk)
}

/// `getDFSDirectoryContent(path)`: what the DFS holds directly under `path` (`/`,
/// `/testDB/`, `/testDB/20230108/`; a `dfs://` prefix is taken off), with DolphinDB's columns
/// and file types: 0 a directory (a database, or a partition level with more below), 4 a
/// partition's chunk (`chunks` its id, `sites` the nodes holding a replica).
fn directory_content(dir: &str, databases: &[String], chunks: &[ChunkRow]) -> Value {
    let dir = dir.strip_prefix("dfs:/").unwrap_or(dir);
    let dir = format!("/{}/", dir.trim_matches('/'));
    let dir = if dir == "//" { "/".to_string() } else { dir };
    // name -> (file type, chunk ids, sites)
    let mut entries: BTreeMap<String, (i32, Vec<String>, Vec<String>)> = BTreeMap::new();
    if dir == "/" {
        for db in databases {
            let name = db.trim_start_matches("dfs://").trim_matches('/');
            entries
                .entry(name.to_string())
                .or_insert((0, vec![], vec![]));
        }
    }
    for r in chunks {
        let Some(rest) = r.file.strip_prefix(&dir) else {
            continue;
        };
        let (name, below) = match rest.split_once('/') {
            Some((n, b)) => (n, !b.is_empty()),
            None => (rest, false),
        };
        if name.is_empty() {
            continue;
        }
        let e = entries
            .entry(name.to_string())
            .or_insert((0, vec![], vec![]));
        if !below {
            e.0 = 4;
            e.1.push(chunk_uuid(r));
            for (alias, _) in &r.replicas {
                if !e.2.contains(alias) {
                    e.2.push(alias.clone());
                }
            }
        }
    }
    let names: Vec<&String> = entries.keys().collect();
    Value::Table(std::rc::Rc::new(Table {
        columns: vec![
            (
                "filename".into(),
                Column::from_strings(DataType::String, &names),
            ),
            (
                "filetype".into(),
                Column {
                    ty: DataType::Int,
                    data: ColumnData::I32(entries.values().map(|e| e.0).collect()),
                },
            ),
            (
                "size".into(),
                Column {
                    ty: DataType::Long,
                    data: ColumnData::I64(vec![0; entries.len()]),
                },
            ),
            (
                "chunks".into(),
                Column::from_strings(
                    DataType::String,
                    &entries.values().map(|e| e.1.join(",")).collect::<Vec<_>>(),
                ),
            ),
            (
                "sites".into(),
                Column::from_strings(
                    DataType::String,
                    &entries.values().map(|e| e.2.join(",")).collect::<Vec<_>>(),
                ),
            ),
        ],
    }))
}

/// `getClusterChunksStatus()`: DolphinDB's columns, one row per chunk.
fn chunks_status(it: &Interp, rows: Vec<ChunkRow>) -> Value {
    // Each replica at the version its node reported, else the one the metadata recorded.
    let replicas = |r: &ChunkRow| -> Vec<(String, u64)> {
        if r.replicas.is_empty() {
            vec![(it.node.alias.clone(), r.version)]
        } else {
            r.replicas
                .iter()
                .map(|(a, v)| (a.clone(), v.unwrap_or(r.version)))
                .collect()
        }
    };
    ChunkTable::new(&rows)
        .text("chunkId", chunk_uuid)
        .text("file", |r| r.file.clone())
        .long("size", |_| 0)
        .long("version", |r| r.version as i64)
        .long("vcLength", |_| 1)
        .text("versionChain", |r| {
            format!("{}:0:{} ->", r.chunk, r.version)
        })
        .text("state", |r| {
            if r.in_txn {
                "CONSTRUCTING"
            } else if !r.stale.is_empty() {
                "RECOVERING"
            } else {
                "COMPLETE"
            }
            .into()
        })
        .text("replicas", |r| {
            replicas(r)
                .iter()
                .map(|(a, v)| format!("{a}:{v}:0"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .long("replicaCount", |r| replicas(r).len() as i64)
        .text("permission", |_| "READ_WRITE".into())
        .value()
}

/// `getRecoveryTaskStatus()`: DolphinDB's columns, then progress (rows and bytes copied, the
/// rows the replica holds at the end, and an estimate of the seconds left).
fn recovery_tasks(rows: Vec<crate::catalog::RecoveryTask>) -> Value {
    use crate::catalog::RecoveryTask as T;
    // Null (0 rows known, or finished) unless a rate and a remainder are known.
    let left = |t: &T| -> i64 {
        let ms = t.now_ms.saturating_sub(t.last_start_ms);
        if t.status != "In-Progress" || t.rows_done == 0 || ms == 0 || t.rows_total < t.rows_done {
            return i64::MIN;
        }
        let per_ms = t.rows_done as f64 / ms as f64;
        ((t.rows_total - t.rows_done) as f64 / per_ms / 1000.0).ceil() as i64
    };
    let ts = |ms: u64| if ms == 0 { i64::MIN } else { ms as i64 };
    ChunkTable::new(&rows)
        .text("TaskId", |t: &T| format!("{}", t.id))
        .text("TaskType", |_| "ChunkRecovery".into())
        .text("ChunkId", |t| {
            format!("00000000-0000-0000-0000-{:012x}", t.chunk)
        })
        .text("ChunkPath", |t| t.path.clone())
        .text("Source", |t| t.source.clone())
        .text("Dest", |t| t.dest.clone())
        .text("Status", |t| t.status.clone())
        .long("AttemptCount", |t| i64::from(t.attempts))
        .typed("DeleteSource", DataType::Bool, |_| 0)
        .typed("StartTime", DataType::Timestamp, |t| ts(t.start_ms))
        .typed("LastDequeueTime", DataType::Timestamp, |t| {
            ts(t.last_start_ms)
        })
        .typed(
            "LastStartTime",
            DataType::Timestamp,
            |t| ts(t.last_start_ms),
        )
        .typed("FinishTime", DataType::Timestamp, |t| ts(t.finish_ms))
        .typed("IsIncrementalRecovery", DataType::Bool, |t| {
            i64::from(t.incremental)
        })
        .typed("IsAsyncRecovery", DataType::Bool, |_| 1)
        .typed("ChangeFromIncrementalToFull", DataType::Bool, |t| {
            i64::from(t.fell_back)
        })
        .typed("ChangeToSyncTime", DataType::Timestamp, |t| ts(t.sync_ms))
        .text("FailureReason", |t| t.failure.clone())
        .long("RowsDone", |t| t.rows_done as i64)
        .long("BytesDone", |t| t.bytes_done as i64)
        .long("RowsTotal", |t| t.rows_total as i64)
        .long("SecondsLeft", left)
        .value()
}

/// `getChunksMeta()`: DolphinDB's columns, one row per chunk this node holds.
fn chunks_meta(it: &Interp, rows: Vec<ChunkRow>) -> Value {
    ChunkTable::new(&rows)
        .text("site", |_| it.node.alias.clone())
        .text("chunkId", chunk_uuid)
        .text("path", |r| {
            r.held.as_ref().map(|h| h.path.clone()).unwrap_or_default()
        })
        .text("dfsPath", |r| r.file.clone())
        // 0: a file chunk; flag 0: not marked deleted.
        .long("type", |_| 0)
        .long("flag", |_| 0)
        .long("size", |_| 0)
        .long("version", |r| r.version as i64)
        // 0: final; 1: a transaction holds it before its commit.
        .long("state", |r| i64::from(r.in_txn))
        .text("versionList", |r| format!("{}:0:{}", r.chunk, r.version))
        .value()
}

/// A chunk's partition path and table (`/testDB/20200601/testTB` → `/testDB/20200601`,
/// `testTB`): DolphinDB names a tablet by its partition's path and its table.
fn tablet_of(r: &ChunkRow) -> (&str, &str) {
    r.file.rsplit_once('/').unwrap_or((r.file.as_str(), ""))
}

/// `getTabletsMeta()`: DolphinDB's columns, one row per tablet (a table's chunk in a
/// partition) this node holds.
fn tablets_meta(rows: Vec<ChunkRow>, disk_usage: bool) -> Value {
    let held = |r: &ChunkRow| r.held.clone().expect("local chunks are held");
    let t = ChunkTable::new(&rows)
        .text("chunkId", chunk_uuid)
        .text("path", |r| held(r).path)
        .text("dfsPath", |r| tablet_of(r).0.to_string())
        .text("tableName", |r| tablet_of(r).1.to_string())
        .long("version", |r| r.version as i64)
        .long("rowNum", |r| held(r).rows as i64)
        // No update or delete has made a column-level version (cid) of it.
        .text("createCids", |_| "[]".into())
        .text("latestPhysicalDir", |r| {
            format!("{}_{}", tablet_of(r).1, r.version)
        });
    if disk_usage {
        t.long("diskUsage", |r| held(r).disk_bytes as i64).value()
    } else {
        t.value()
    }
}

/// `schema(loadTable(...))`: colDefs plus the partition fields the official clients read.
/// One level's `schema()` fields: column name, column index, partition type, column type,
/// scheme.
type Level = (Value, Value, Value, Value, Value);

pub(super) async fn schema(
    dfs: &dyn crate::catalog::Catalog,
    db: &str,
    table: &str,
) -> Result<Value, EvalError> {
    let info = dfs.table(db, table).await?;
    let (schema, pcols, scheme) = (&info.schema, &info.partition_columns, &info.scheme);
    let names: Vec<&str> = info.partitions.iter().map(|p| p.name.as_str()).collect();
    let col_defs = col_defs(schema.columns.iter().map(|(n, t)| (n.as_str(), *t)));
    if pcols.is_empty() {
        // A dimension table has no partition fields.
        let mut d = std::collections::BTreeMap::new();
        d.insert("colDefs".to_string(), table_value(col_defs));
        return Ok(Value::Dict(d));
    }
    let levels: Vec<&Scheme> = match scheme {
        Scheme::Compo(l) => l.iter().collect(),
        s => vec![s],
    };
    let int = |v: i32| Value::scalar(DataType::Int, ColumnData::I32(vec![v]));
    let mut per_level: Vec<Level> = Vec::new();
    for (level, (s, col)) in levels.iter().zip(pcols).enumerate() {
        let (pname, _) = &schema.columns[*col];
        let ty = s.types()[0];
        let spec = match s {
            // VALUE: the declared values and every value a partition exists for.
            Scheme::Value { keys, .. } => {
                let mut all: Vec<Key> = keys.clone();
                for n in &names {
                    if let Some(part) = n.split('/').nth(level) {
                        let k = if matches!(ty, DataType::String | DataType::Symbol) {
                            Key::S(part.as_bytes().to_vec())
                        } else {
                            match part.parse() {
                                Ok(v) => Key::I(v),
                                Err(_) => continue,
                            }
                        };
                        if !all.contains(&k) {
                            all.push(k);
                        }
                    }
                }
                all.sort();
                keys_value(ty, &all)
            }
            Scheme::Range { bounds, .. } => keys_value(ty, bounds),
            Scheme::Hash { buckets, .. } => int(*buckets as i32),
            Scheme::List { lists, .. } => {
                Value::Tuple(lists.iter().map(|l| keys_value(ty, l)).collect())
            }
            Scheme::Compo(_) => Value::Void,
        };
        per_level.push((
            Value::string(pname),
            int(*col as i32),
            int(s.type_codes()[0]),
            int(ty as i32),
            spec,
        ));
    }
    let pick = |f: &dyn Fn(&Level) -> Value| -> Value {
        if per_level.len() == 1 {
            f(&per_level[0])
        } else {
            Value::Tuple(per_level.iter().map(f).collect())
        }
    };
    let mut d = std::collections::BTreeMap::new();
    d.insert("colDefs".to_string(), table_value(col_defs));
    // DolphinDB's partition type codes: SEQ 0, VALUE 1, RANGE 2, LIST 3, COMPO 4, HASH 5.
    d.insert("partitionColumnName".to_string(), pick(&|l| l.0.clone()));
    d.insert("partitionColumnIndex".to_string(), pick(&|l| l.1.clone()));
    d.insert("partitionType".to_string(), pick(&|l| l.2.clone()));
    d.insert("partitionColumnType".to_string(), pick(&|l| l.3.clone()));
    d.insert("partitionSchema".to_string(), pick(&|l| l.4.clone()));
    Ok(Value::Dict(d))
}

/// `schema(db)`: the database's partitioning and settings, with DolphinDB's keys.
pub(super) async fn database_schema(
    dfs: &dyn crate::catalog::Catalog,
    db: &str,
) -> Result<Value, EvalError> {
    let scheme = dfs.scheme(db).await?;
    let chunk = dfs.atomic_chunk(db).await?;
    let levels: Vec<&Scheme> = match &scheme {
        Scheme::Compo(l) => l.iter().collect(),
        s => vec![s],
    };
    let int = |v: i32| Value::scalar(DataType::Int, ColumnData::I32(vec![v]));
    let spec = |s: &Scheme| -> Value {
        let ty = s.types()[0];
        match s {
            Scheme::Value { keys, .. } => keys_value(ty, keys),
            Scheme::Range { bounds, .. } => keys_value(ty, bounds),
            Scheme::Hash { buckets, .. } => int(*buckets as i32),
            Scheme::List { lists, .. } => {
                Value::Tuple(lists.iter().map(|l| keys_value(ty, l)).collect())
            }
            Scheme::Compo(_) => Value::Void,
        }
    };
    let pick = |f: &dyn Fn(&Scheme) -> Value| -> Value {
        if levels.len() == 1 {
            f(levels[0])
        } else {
            Value::Tuple(levels.iter().map(|l| f(l)).collect())
        }
    };
    let mut d = std::collections::BTreeMap::new();
    d.insert("databaseDir".to_string(), Value::string(db));
    d.insert("partitionSchema".to_string(), pick(&spec));
    d.insert(
        "partitionTypeName".to_string(),
        pick(&|s: &Scheme| Value::string(s.kind())),
    );
    d.insert(
        "partitionType".to_string(),
        pick(&|s: &Scheme| int(s.type_codes()[0])),
    );
    d.insert(
        "partitionColumnType".to_string(),
        pick(&|s: &Scheme| int(s.types()[0] as i32)),
    );
    d.insert("partitionSites".to_string(), Value::Void);
    d.insert(
        "atomic".to_string(),
        Value::string(if chunk { "CHUNK" } else { "TRANS" }),
    );
    d.insert("engineType".to_string(), Value::string("OLAP"));
    d.insert("chunkGranularity".to_string(), Value::string("TABLE"));
    Ok(Value::Dict(d))
}

/// Keys as a vector of the scheme's type.
fn keys_value(ty: DataType, keys: &[Key]) -> Value {
    if matches!(ty, DataType::String | DataType::Symbol) {
        let s: Vec<&[u8]> = keys
            .iter()
            .map(|k| match k {
                Key::S(s) => s.as_slice(),
                _ => b"",
            })
            .collect();
        return Value::Vector(Column::from_strings(DataType::String, &s));
    }
    let v: Vec<i64> = keys
        .iter()
        .map(|k| match k {
            Key::I(v) => *v,
            _ => i64::MIN,
        })
        .collect();
    Value::Vector(super::ops::from_num(super::ops::Num::I(v), ty))
}

/// The scheme `database(path, kind, spec)` describes.
async fn scheme_of(
    dfs: &dyn crate::catalog::Catalog,
    kind: &str,
    spec: &Value,
) -> Result<Scheme, EvalError> {
    let column_keys = |v: &Value| -> Result<(DataType, Vec<Key>), EvalError> {
        let c = v.column().ok_or_else(|| {
            EvalError::msg(format!(
                "a {kind} scheme needs a vector of values, not a {}",
                v.typestr()
            ))
        })?;
        Ok((c.ty, keys_of(c.ty, c)?))
    };
    match kind {
        "VALUE" | "RANGE" => {
            let (ty, keys) = column_keys(spec)?;
            Scheme::new(kind, ty, &keys, Vec::new())
        }
        "LIST" => {
            let items: Vec<Value> = match spec {
                Value::Tuple(items) => items.clone(),
                v => (0..v.size())
                    .map(|i| super::builtins::element(v, i))
                    .collect::<Result<_, _>>()?,
            };
            let mut ty = None;
            let mut lists = Vec::new();
            for item in &items {
                let (t, keys) = column_keys(item)?;
                ty.get_or_insert(t);
                lists.push(keys);
            }
            Scheme::new(kind, ty.unwrap_or(DataType::Int), &[], lists)
        }
        "HASH" => match spec {
            Value::Tuple(items) if items.len() == 2 => match &items[0] {
                Value::Type(ty) => {
                    let n = scalar_i64(&items[1])?;
                    if !(1..=crate::partition::PARTITIONS_MAX as i64).contains(&n) {
                        return Err(EvalError::msg(format!(
                            "HASH partitioning needs 1 to {} buckets, not {n}",
                            crate::partition::PARTITIONS_MAX
                        )));
                    }
                    Ok(Scheme::Hash {
                        ty: *ty,
                        buckets: n as u32,
                    })
                }
                _ => Err(EvalError::msg(
                    "HASH partitioning needs [type, buckets], e.g. [INT, 10]",
                )),
            },
            _ => Err(EvalError::msg(
                "HASH partitioning needs [type, buckets], e.g. [INT, 10]",
            )),
        },
        "COMPO" => {
            let items: Vec<Value> = match spec {
                Value::Tuple(items) => items.clone(),
                other => vec![other.clone()],
            };
            let mut levels = Vec::new();
            for item in &items {
                levels.push(match item {
                    Value::PartitionSpec(s) => (**s).clone(),
                    Value::Database(path) => dfs.scheme(path).await?,
                    other => {
                        return Err(EvalError::msg(format!(
                            "COMPO partitioning needs database handles, not a {}",
                            other.typestr()
                        )))
                    }
                });
            }
            if !(2..=3).contains(&levels.len())
                || levels.iter().any(|l| matches!(l, Scheme::Compo(_)))
            {
                return Err(EvalError::msg(
                    "COMPO partitioning needs two or three non-COMPO levels",
                ));
            }
            Ok(Scheme::Compo(levels))
        }
        other => Err(EvalError::msg(format!("unknown partition type {other}"))),
    }
}
