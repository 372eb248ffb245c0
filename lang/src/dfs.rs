//! `dfs://` databases on one node: a catalog of databases, partitioned tables and their chunks,
//! persisted beside the chunk metadata, over the storage engine. Appends are routed to
//! partitions by value; each partition of each table is one chunk.
//!
//! Built so far: VALUE partitioning (on DATE values of a DATE/DATETIME/TIMESTAMP column, or
//! on the column's own integer/string values), `newValuePartitionPolicy=add`. RANGE, HASH,
//! LIST and COMPO schemes, pruning and per-partition aggregation come next.
//!
//! Invariant: the catalog names a chunk before any row is written to it (the catalog is
//! written atomically, then the chunk is created), so every chunk on disk belongs to a
//! partition the catalog knows.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use storage::batch::Schema;
use storage::bytes::{Reader, Writer};
use storage::column::Column;
use storage::types::DataType;
use storage::{Batch, Engine, StorageError};

use crate::eval::value::Table;
use crate::eval::EvalError;

/// A partitioned table.
#[derive(Debug, Clone, PartialEq)]
pub struct DfsTable {
    pub schema: Schema,
    pub partition_column: usize,
    /// Partition key → chunk id.
    pub chunks: BTreeMap<String, u64>,
}

/// A database: its partition scheme and tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Database {
    pub kind: String,
    pub tables: BTreeMap<String, DfsTable>,
}

#[derive(Debug, Default, Clone, PartialEq)]
struct Catalog {
    next_chunk: u64,
    databases: BTreeMap<String, Database>,
}

/// The node's DFS: catalog + storage engine.
pub struct Dfs {
    engine: Engine,
    catalog_path: PathBuf,
    catalog: RefCell<Catalog>,
    /// Serialises catalog changes: sessions append concurrently, and a new partition must be in
    /// the saved catalog and created in the engine before anyone writes to it.
    catalog_lock: rt::sync::Lock,
}

fn err(e: StorageError) -> EvalError {
    EvalError::msg(e.to_string())
}

impl Catalog {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u32(u32::from_le_bytes(*b"PCAT"));
        w.u64(self.next_chunk);
        w.varint(self.databases.len() as u64);
        for (name, db) in &self.databases {
            w.blob(name.as_bytes());
            w.blob(db.kind.as_bytes());
            w.varint(db.tables.len() as u64);
            for (tname, t) in &db.tables {
                w.blob(tname.as_bytes());
                t.schema.encode(&mut w);
                w.varint(t.partition_column as u64);
                w.varint(t.chunks.len() as u64);
                for (k, c) in &t.chunks {
                    w.blob(k.as_bytes());
                    w.u64(*c);
                }
            }
        }
        let crc = crc32(&w.buf);
        w.u32(crc);
        w.buf
    }

    fn decode(b: &[u8]) -> Result<Catalog, String> {
        if b.len() < 8
            || crc32(&b[..b.len() - 4])
                != u32::from_le_bytes(b[b.len() - 4..].try_into().expect("4"))
        {
            return Err("the DFS catalog fails its checksum".into());
        }
        let mut r = Reader::new(&b[..b.len() - 4]);
        let e = |e: storage::bytes::DecodeError| e.to_string();
        if r.u32().map_err(e)? != u32::from_le_bytes(*b"PCAT") {
            return Err("not a DFS catalog".into());
        }
        let next_chunk = r.u64().map_err(e)?;
        let mut databases = BTreeMap::new();
        for _ in 0..r.count(r.remaining()).map_err(e)? {
            let name = String::from_utf8_lossy(r.blob().map_err(e)?).into_owned();
            let kind = String::from_utf8_lossy(r.blob().map_err(e)?).into_owned();
            let mut tables = BTreeMap::new();
            for _ in 0..r.count(r.remaining()).map_err(e)? {
                let tname = String::from_utf8_lossy(r.blob().map_err(e)?).into_owned();
                let schema = Schema::decode(&mut r).map_err(e)?;
                let partition_column = r.varint().map_err(e)? as usize;
                let mut chunks = BTreeMap::new();
                for _ in 0..r.count(r.remaining()).map_err(e)? {
                    let k = String::from_utf8_lossy(r.blob().map_err(e)?).into_owned();
                    chunks.insert(k, r.u64().map_err(e)?);
                }
                tables.insert(
                    tname,
                    DfsTable {
                        schema,
                        partition_column,
                        chunks,
                    },
                );
            }
            databases.insert(name, Database { kind, tables });
        }
        Ok(Catalog {
            next_chunk,
            databases,
        })
    }
}

fn crc32(b: &[u8]) -> u32 {
    // A small table-less CRC-32 (IEEE); the catalog is tiny.
    let mut c = 0xFFFF_FFFFu32;
    for &x in b {
        c ^= x as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Rows grouped by their partition key (VALUE partitioning; temporal columns by day).
fn partition_rows(c: &Column) -> BTreeMap<String, Vec<usize>> {
    let per_day = match c.ty {
        DataType::DateTime => Some(86_400i64),
        DataType::Timestamp => Some(86_400_000),
        DataType::NanoTimestamp => Some(86_400_000_000_000),
        _ => None,
    };
    if let Some(vals) = crate::eval::column_i64(c) {
        // Group on integers first; only the few distinct keys become strings.
        let mut by: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (i, v) in vals.iter().enumerate() {
            let k = match per_day {
                Some(d) if *v != i64::MIN => v.div_euclid(d),
                _ => *v,
            };
            by.entry(k).or_default().push(i);
        }
        return by.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    }
    let mut by: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for i in 0..c.len() {
        by.entry(crate::eval::render_value(c, i))
            .or_default()
            .push(i);
    }
    by
}

impl Dfs {
    /// Opens the DFS on `engine`, with its catalog at `catalog_path`.
    pub async fn open(engine: Engine, catalog_path: PathBuf) -> Result<Rc<Dfs>, EvalError> {
        let catalog = match rt::disk::File::open(&catalog_path, rt::disk::OpenMode::Existing).await
        {
            Ok(f) => {
                let size = f.size().await.map_err(|e| EvalError::msg(e.to_string()))? as usize;
                let bytes = f
                    .read_at(0, size)
                    .await
                    .map_err(|e| EvalError::msg(e.to_string()))?;
                // The file is padded to 4 KiB: the first 8 bytes hold the real length.
                let len = u64::from_le_bytes(
                    bytes
                        .get(..8)
                        .and_then(|b| b.try_into().ok())
                        .unwrap_or([0; 8]),
                ) as usize;
                let body = bytes
                    .get(8..8 + len)
                    .ok_or_else(|| EvalError::msg("the DFS catalog is truncated"))?;
                Catalog::decode(body).map_err(EvalError::msg)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Catalog {
                next_chunk: 1,
                databases: BTreeMap::new(),
            },
            Err(e) => return Err(EvalError::msg(e.to_string())),
        };
        Ok(Rc::new(Dfs {
            engine,
            catalog_path,
            catalog: RefCell::new(catalog),
            catalog_lock: rt::sync::Lock::new(),
        }))
    }

    async fn save(&self) -> Result<(), EvalError> {
        let body = self.catalog.borrow().encode();
        let mut bytes = (body.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&body);
        storage::meta::write_atomic(&self.catalog_path, &bytes)
            .await
            .map_err(err)
    }

    pub fn exists_database(&self, name: &str) -> bool {
        self.catalog.borrow().databases.contains_key(name)
    }

    pub fn exists_table(&self, db: &str, table: &str) -> bool {
        self.catalog
            .borrow()
            .databases
            .get(db)
            .is_some_and(|d| d.tables.contains_key(table))
    }

    /// Creates database `name` (or returns the existing one) with partition kind `kind`.
    pub async fn database(&self, name: &str, kind: &str) -> Result<(), EvalError> {
        if !name.starts_with("dfs://") {
            return Err(EvalError::msg(format!(
                "The database path {name} must start with dfs://"
            )));
        }
        if kind != "VALUE" {
            return Err(EvalError::msg(format!(
                "{kind} partitioning is not supported yet; use VALUE"
            )));
        }
        let _guard = self.catalog_lock.lock().await;
        if self.exists_database(name) {
            return Ok(());
        }
        self.catalog.borrow_mut().databases.insert(
            name.to_string(),
            Database {
                kind: kind.to_string(),
                tables: BTreeMap::new(),
            },
        );
        self.save().await
    }

    pub async fn drop_database(&self, name: &str) -> Result<(), EvalError> {
        let _guard = self.catalog_lock.lock().await;
        let db = self
            .catalog
            .borrow_mut()
            .databases
            .remove(name)
            .ok_or_else(|| EvalError::msg(format!("The database {name} does not exist")))?;
        self.save().await?;
        for t in db.tables.values() {
            for c in t.chunks.values() {
                self.engine.drop_chunk(*c).await.map_err(err)?;
            }
        }
        Ok(())
    }

    pub async fn create_table(
        &self,
        db: &str,
        table: &str,
        schema: Schema,
        partition_column: &str,
    ) -> Result<(), EvalError> {
        let idx = schema
            .columns
            .iter()
            .position(|(n, _)| n == partition_column)
            .ok_or_else(|| {
                EvalError::msg(format!(
                    "The partitioning column {partition_column} is not in the table"
                ))
            })?;
        {
            let mut cat = self.catalog.borrow_mut();
            let d = cat
                .databases
                .get_mut(db)
                .ok_or_else(|| EvalError::msg(format!("The database {db} does not exist")))?;
            if d.tables.contains_key(table) {
                return Err(EvalError::msg(format!(
                    "The table {table} already exists in {db}"
                )));
            }
            d.tables.insert(
                table.to_string(),
                DfsTable {
                    schema,
                    partition_column: idx,
                    chunks: BTreeMap::new(),
                },
            );
        }
        self.save().await
    }

    pub fn table_schema(&self, db: &str, table: &str) -> Result<(Schema, usize), EvalError> {
        let cat = self.catalog.borrow();
        let t = cat
            .databases
            .get(db)
            .and_then(|d| d.tables.get(table))
            .ok_or_else(|| EvalError::msg(format!("The table {table} does not exist in {db}")))?;
        Ok((t.schema.clone(), t.partition_column))
    }

    /// The table's partition keys (for `schema`).
    pub fn partition_keys(&self, db: &str, table: &str) -> Result<Vec<String>, EvalError> {
        self.table_schema(db, table)?;
        Ok(self.catalog.borrow().databases[db].tables[table]
            .chunks
            .keys()
            .cloned()
            .collect())
    }

    /// Appends `data` (columns in schema order), routing rows to partitions; returns rows added.
    pub async fn append(&self, db: &str, table: &str, data: &Table) -> Result<usize, EvalError> {
        let (schema, pcol) = self.table_schema(db, table)?;
        if data.columns.len() != schema.columns.len() {
            return Err(EvalError::msg(format!(
                "The data has {} columns, the table {}",
                data.columns.len(),
                schema.columns.len()
            )));
        }
        let mut cols = Vec::with_capacity(schema.columns.len());
        for ((_, ty), (_, c)) in schema.columns.iter().zip(&data.columns) {
            cols.push(if c.ty == *ty {
                c.clone()
            } else {
                crate::eval::cast_column(c, *ty)?
            });
        }
        let parts = partition_rows(&cols[pcol]);
        let guard = self.catalog_lock.lock().await;
        let mut new_keys = Vec::new();
        {
            let mut cat = self.catalog.borrow_mut();
            let mut next = cat.next_chunk;
            let t = cat
                .databases
                .get_mut(db)
                .and_then(|d| d.tables.get_mut(table))
                .expect("checked above");
            for k in parts.keys() {
                if !t.chunks.contains_key(k) {
                    t.chunks.insert(k.clone(), next);
                    new_keys.push(next);
                    next += 1;
                }
            }
            cat.next_chunk = next;
        }
        if !new_keys.is_empty() {
            self.save().await?;
            for c in &new_keys {
                self.engine
                    .create_chunk(*c, schema.clone())
                    .await
                    .map_err(err)?;
            }
        }
        drop(guard);
        for (k, rows) in parts {
            let chunk = self.catalog.borrow().databases[db].tables[table].chunks[&k];
            let batch = Batch {
                columns: cols
                    .iter()
                    .map(|c| crate::eval::gather_rows(c, &rows))
                    .collect(),
            };
            self.engine.append(chunk, batch).await.map_err(err)?;
        }
        Ok(data.rows())
    }

    /// Every row of the table, partition by partition.
    pub async fn scan(&self, db: &str, table: &str) -> Result<Table, EvalError> {
        let (schema, _) = self.table_schema(db, table)?;
        let chunks: Vec<u64> = self.catalog.borrow().databases[db].tables[table]
            .chunks
            .values()
            .copied()
            .collect();
        let all: Vec<usize> = (0..schema.columns.len()).collect();
        let mut out: Vec<(String, Column)> = schema
            .columns
            .iter()
            .map(|(n, t)| (n.clone(), Column::empty(*t)))
            .collect();
        for c in chunks {
            let cols = self.engine.scan(c, &all).await.map_err(err)?;
            for ((_, o), c) in out.iter_mut().zip(&cols) {
                o.append(c).map_err(EvalError::msg)?;
            }
        }
        Ok(Table { columns: out })
    }
}
