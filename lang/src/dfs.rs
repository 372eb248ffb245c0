//! `dfs://` databases on one node: a catalog of databases, partitioned tables and their chunks,
//! persisted beside the chunk metadata, over the storage engine. Appends are routed to
//! partitions by value; each partition of each table is one chunk.
//!
//! Partitioning follows the database's scheme (`crate::partition`: VALUE, RANGE, HASH, LIST,
//! COMPO); `scan` reads only the partitions a query's conditions can touch.
//!
//! Catalog format (v2, magic `PCA2`; v1 `PCAT` catalogs — VALUE only — are still read):
//! `magic u32, next_chunk u64, varint databases, { blob name, blob kind, scheme,
//! varint tables, { blob name, schema, varint levels, varint column index per level,
//! varint chunks, { blob partition name, u64 chunk id } } }, crc32 u32`, padded to 4 KiB
//! with its length in the first 8 bytes.
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

use crate::catalog::{self, LocalFuture, Partition, TableInfo};
use crate::eval::value::Table;
use crate::eval::EvalError;
use crate::partition::{NewValues, Scheme};

/// The one partition of a dimension table (`createTable`).
pub const DIMENSION_PARTITION: &str = "DIM";

/// A partitioned table.
#[derive(Debug, Clone, PartialEq)]
pub struct DfsTable {
    pub schema: Schema,
    /// The partitioning column of each scheme level.
    pub partition_columns: Vec<usize>,
    /// Partition name → chunk id.
    pub chunks: BTreeMap<String, u64>,
}

/// A database: its partition scheme and tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Database {
    pub scheme: Scheme,
    pub tables: BTreeMap<String, DfsTable>,
}

/// The catalog format this build writes (its magic is `PCA<format>`; format 1 is `PCAT`).
pub const CATALOG_FORMAT: u32 = 2;

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
    /// `newValuePartitionPolicy`.
    new_values: std::cell::Cell<NewValues>,
}

fn err(e: StorageError) -> EvalError {
    EvalError::msg(e.to_string())
}

impl Catalog {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u32(u32::from_le_bytes(*b"PCA2"));
        w.u64(self.next_chunk);
        w.varint(self.databases.len() as u64);
        for (name, db) in &self.databases {
            w.blob(name.as_bytes());
            w.blob(db.scheme.kind().as_bytes());
            db.scheme.encode(&mut w);
            w.varint(db.tables.len() as u64);
            for (tname, t) in &db.tables {
                w.blob(tname.as_bytes());
                t.schema.encode(&mut w);
                w.varint(t.partition_columns.len() as u64);
                for c in &t.partition_columns {
                    w.varint(*c as u64);
                }
                w.varint(t.chunks.len() as u64);
                for (k, c) in &t.chunks {
                    w.blob(k.as_bytes());
                    w.u64(*c);
                }
            }
        }
        let crc = crc32fast::hash(&w.buf);
        w.u32(crc);
        w.buf
    }

    fn decode(b: &[u8]) -> Result<Catalog, String> {
        if b.len() < 8
            || crc32fast::hash(&b[..b.len() - 4])
                != u32::from_le_bytes(b[b.len() - 4..].try_into().expect("4"))
        {
            return Err("the DFS catalog fails its checksum".into());
        }
        let mut r = Reader::new(&b[..b.len() - 4]);
        let e = |e: storage::bytes::DecodeError| e.to_string();
        let magic = r.u32().map_err(e)?.to_le_bytes();
        let v2 = match &magic {
            b"PCA2" => true,
            b"PCAT" => false,
            [b'P', b'C', b'A', d @ b'3'..=b'9'] => {
                return Err(storage::format_refusal(
                    "DFS catalog",
                    (d - b'0') as u32,
                    CATALOG_FORMAT,
                ))
            }
            _ => return Err("not a DFS catalog".into()),
        };
        let next_chunk = r.u64().map_err(e)?;
        let mut databases = BTreeMap::new();
        for _ in 0..r.count(r.remaining()).map_err(e)? {
            let name = String::from_utf8_lossy(r.blob().map_err(e)?).into_owned();
            let _kind = r.blob().map_err(e)?;
            let scheme = if v2 {
                Scheme::decode(&mut r)?
            } else {
                Scheme::Value {
                    ty: DataType::Date,
                    keys: Vec::new(),
                }
            };
            let mut tables = BTreeMap::new();
            for _ in 0..r.count(r.remaining()).map_err(e)? {
                let tname = String::from_utf8_lossy(r.blob().map_err(e)?).into_owned();
                let schema = Schema::decode(&mut r).map_err(e)?;
                let partition_columns = if v2 {
                    let n = r.count(r.remaining()).map_err(e)?;
                    let mut cols = Vec::with_capacity(n);
                    for _ in 0..n {
                        cols.push(r.varint().map_err(e)? as usize);
                    }
                    cols
                } else {
                    vec![r.varint().map_err(e)? as usize]
                };
                if partition_columns.iter().any(|c| *c >= schema.columns.len()) {
                    return Err("a partitioning column outside the table's schema".into());
                }
                let mut chunks = BTreeMap::new();
                for _ in 0..r.count(r.remaining()).map_err(e)? {
                    let k = String::from_utf8_lossy(r.blob().map_err(e)?).into_owned();
                    chunks.insert(k, r.u64().map_err(e)?);
                }
                tables.insert(
                    tname,
                    DfsTable {
                        schema,
                        partition_columns,
                        chunks,
                    },
                );
            }
            databases.insert(name, Database { scheme, tables });
        }
        Ok(Catalog {
            next_chunk,
            databases,
        })
    }
}

/// Decodes a catalog body (without the length prefix and padding) and encodes it again; the
/// bytes must come back identical. For the fuzz target and property tests: whatever is on disk,
/// decoding never panics and a catalog that decodes is one this code would have written.
pub fn check_catalog(body: &[u8]) -> Result<(), String> {
    let c = Catalog::decode(body)?;
    let again = c.encode();
    let back = Catalog::decode(&again)?;
    if back != c {
        return Err("the catalog does not survive a re-encode".into());
    }
    Ok(())
}

/// A catalog file's databases (`None`: no such file). For the single node's adoption of a
/// catalog written before it became a one-node cluster (`node::single`).
pub async fn load_catalog(
    path: &std::path::Path,
) -> Result<Option<BTreeMap<String, Database>>, EvalError> {
    Ok(read_catalog(path).await?.map(|c| c.databases))
}

async fn read_catalog(catalog_path: &std::path::Path) -> Result<Option<Catalog>, EvalError> {
    match rt::disk::File::open(catalog_path, rt::disk::OpenMode::Existing).await {
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
            Catalog::decode(body)
                .map_err(|e| EvalError::msg(format!("{}: {e}", catalog_path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => Err(EvalError::msg(e.to_string())),
    }
    .map(Some)
}

impl Dfs {
    /// Opens the DFS on `engine`, with its catalog at `catalog_path`.
    pub async fn open(engine: Engine, catalog_path: PathBuf) -> Result<Rc<Dfs>, EvalError> {
        let catalog = read_catalog(&catalog_path).await?.unwrap_or(Catalog {
            next_chunk: 1,
            databases: BTreeMap::new(),
        });
        Ok(Rc::new(Dfs {
            engine,
            catalog_path,
            catalog: RefCell::new(catalog),
            catalog_lock: rt::sync::Lock::new(),
            new_values: std::cell::Cell::new(NewValues::Add),
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

    /// Sets `newValuePartitionPolicy` (what VALUE schemes do with values they have no
    /// partition for).
    pub fn set_new_values(&self, policy: NewValues) {
        self.new_values.set(policy);
    }

    pub fn has_database(&self, name: &str) -> bool {
        self.catalog.borrow().databases.contains_key(name)
    }

    pub fn has_table(&self, db: &str, table: &str) -> bool {
        self.catalog
            .borrow()
            .databases
            .get(db)
            .is_some_and(|d| d.tables.contains_key(table))
    }

    /// Creates database `name` with `scheme`, or opens the existing one.
    async fn create_database(&self, name: &str, scheme: Option<Scheme>) -> Result<(), EvalError> {
        if !name.starts_with("dfs://") {
            return Err(EvalError::msg(format!(
                "The database path {name} must start with dfs://"
            )));
        }
        let _guard = self.catalog_lock.lock().await;
        if self.has_database(name) {
            return Ok(());
        }
        let scheme = scheme.ok_or_else(|| {
            EvalError::msg(format!(
                "The database {name} does not exist; give a partition type and scheme to create it"
            ))
        })?;
        self.catalog.borrow_mut().databases.insert(
            name.to_string(),
            Database {
                scheme,
                tables: BTreeMap::new(),
            },
        );
        self.save().await
    }

    async fn remove_database(&self, name: &str) -> Result<(), EvalError> {
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

    async fn add_table(
        &self,
        db: &str,
        table: &str,
        schema: Schema,
        partition_columns: &[String],
    ) -> Result<(), EvalError> {
        let mut idx = Vec::with_capacity(partition_columns.len());
        for pc in partition_columns {
            idx.push(
                schema
                    .columns
                    .iter()
                    .position(|(n, _)| n.eq_ignore_ascii_case(pc))
                    .ok_or_else(|| {
                        EvalError::msg(format!("The partitioning column {pc} is not in the table"))
                    })?,
            );
        }
        let _guard = self.catalog_lock.lock().await;
        {
            let mut cat = self.catalog.borrow_mut();
            let d = cat
                .databases
                .get_mut(db)
                .ok_or_else(|| EvalError::msg(format!("The database {db} does not exist")))?;
            // No partitioning columns: a dimension table (one partition, `createTable`).
            if !idx.is_empty() && d.scheme.levels() != idx.len() {
                return Err(EvalError::msg(format!(
                    "The database {db} partitions by {} column(s), {} given",
                    d.scheme.levels(),
                    idx.len()
                )));
            }
            if d.tables.contains_key(table) {
                return Err(EvalError::msg(format!(
                    "The table {table} already exists in {db}"
                )));
            }
            d.tables.insert(
                table.to_string(),
                DfsTable {
                    schema,
                    partition_columns: idx,
                    chunks: BTreeMap::new(),
                },
            );
        }
        self.save().await
    }

    /// The database's scheme.
    fn scheme_of(&self, db: &str) -> Result<Scheme, EvalError> {
        self.catalog
            .borrow()
            .databases
            .get(db)
            .map(|d| d.scheme.clone())
            .ok_or_else(|| EvalError::msg(format!("The database {db} does not exist")))
    }

    /// Removes `partitions` of a table (`None`: the whole table) from the catalog, then their
    /// chunks.
    async fn remove_partitions(
        &self,
        db: &str,
        table: &str,
        partitions: Option<Vec<String>>,
    ) -> Result<(), EvalError> {
        let _guard = self.catalog_lock.lock().await;
        let dropped: Vec<u64> = {
            let mut cat = self.catalog.borrow_mut();
            let d = cat
                .databases
                .get_mut(db)
                .ok_or_else(|| EvalError::msg(format!("The database {db} does not exist")))?;
            let t = d.tables.get_mut(table).ok_or_else(|| {
                EvalError::msg(format!("The table {table} does not exist in {db}"))
            })?;
            match partitions {
                None => {
                    let chunks = t.chunks.values().copied().collect();
                    d.tables.remove(table);
                    chunks
                }
                Some(names) => names.iter().filter_map(|n| t.chunks.remove(n)).collect(),
            }
        };
        self.save().await?;
        for c in dropped {
            self.engine.drop_chunk(c).await.map_err(err)?;
        }
        Ok(())
    }

    /// A snapshot of the table's metadata.
    pub fn table_info(&self, db: &str, table: &str) -> Result<TableInfo, EvalError> {
        let cat = self.catalog.borrow();
        let d = cat
            .databases
            .get(db)
            .ok_or_else(|| EvalError::msg(format!("The database {db} does not exist")))?;
        let t = d
            .tables
            .get(table)
            .ok_or_else(|| EvalError::msg(format!("The table {table} does not exist in {db}")))?;
        Ok(TableInfo {
            schema: t.schema.clone(),
            partition_columns: t.partition_columns.clone(),
            scheme: d.scheme.clone(),
            partitions: t
                .chunks
                .iter()
                .map(|(name, chunk)| Partition {
                    name: name.clone(),
                    chunk: *chunk,
                    version: 0,
                })
                .collect(),
        })
    }

    /// Appends `data` (columns in schema order), routing rows to partitions; returns rows added.
    pub async fn append(&self, db: &str, table: &str, data: &Table) -> Result<usize, EvalError> {
        let info = self.table_info(db, table)?;
        let (cols, parts) = crate::catalog::route(&info, data, self.new_values.get())?;
        let guard = self.catalog_lock.lock().await;
        let mut new_keys = Vec::new();
        {
            let mut cat = self.catalog.borrow_mut();
            let mut next = cat.next_chunk;
            let t = cat
                .databases
                .get_mut(db)
                .and_then(|d| d.tables.get_mut(table))
                .ok_or_else(|| {
                    EvalError::msg(format!("The table {table} does not exist in {db}"))
                })?;
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
                    .create_chunk(*c, info.schema.clone())
                    .await
                    .map_err(err)?;
            }
        }
        drop(guard);
        let mut appended = 0;
        for (k, rows) in parts {
            let chunk = self.catalog.borrow().databases[db].tables[table].chunks[&k];
            let batch = Batch {
                columns: cols
                    .iter()
                    .map(|c| crate::eval::gather_rows(c, &rows))
                    .collect(),
            };
            appended += rows.len();
            self.engine.append(chunk, batch).await.map_err(err)?;
        }
        Ok(appended)
    }
}

/// The in-crate store runs fragments itself: its chunks are all here.
impl catalog::ChunkSource for Dfs {
    fn rows<'a>(
        &'a self,
        _schema: &'a storage::Schema,
        part: &'a Partition,
    ) -> LocalFuture<'a, Result<usize, EvalError>> {
        catalog::Catalog::chunk_rows(self, part)
    }

    fn columns<'a>(
        &'a self,
        _schema: &'a storage::Schema,
        part: &'a Partition,
        columns: &'a [usize],
    ) -> LocalFuture<'a, Result<Vec<Column>, EvalError>> {
        catalog::Catalog::scan_chunk(self, part, columns)
    }
}

impl catalog::Catalog for Dfs {
    fn exists_database<'a>(&'a self, name: &'a str) -> LocalFuture<'a, Result<bool, EvalError>> {
        Box::pin(async move { Ok(self.has_database(name)) })
    }

    fn exists_table<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
    ) -> LocalFuture<'a, Result<bool, EvalError>> {
        Box::pin(async move { Ok(self.has_table(db, table)) })
    }

    fn database<'a>(
        &'a self,
        name: &'a str,
        scheme: Option<Scheme>,
    ) -> LocalFuture<'a, Result<(), EvalError>> {
        Box::pin(self.create_database(name, scheme))
    }

    fn drop_database<'a>(&'a self, name: &'a str) -> LocalFuture<'a, Result<(), EvalError>> {
        Box::pin(self.remove_database(name))
    }

    fn scheme<'a>(&'a self, db: &'a str) -> LocalFuture<'a, Result<Scheme, EvalError>> {
        Box::pin(async move { self.scheme_of(db) })
    }

    fn create_table<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
        schema: Schema,
        partition_columns: &'a [String],
    ) -> LocalFuture<'a, Result<(), EvalError>> {
        Box::pin(self.add_table(db, table, schema, partition_columns))
    }

    fn table<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
    ) -> LocalFuture<'a, Result<Rc<TableInfo>, EvalError>> {
        Box::pin(async move { self.table_info(db, table).map(Rc::new) })
    }

    fn drop_table<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
    ) -> LocalFuture<'a, Result<(), EvalError>> {
        Box::pin(self.remove_partitions(db, table, None))
    }

    fn drop_partitions<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
        partitions: Vec<String>,
    ) -> LocalFuture<'a, Result<(), EvalError>> {
        Box::pin(self.remove_partitions(db, table, Some(partitions)))
    }

    fn add_columns<'a>(
        &'a self,
        _db: &'a str,
        _table: &'a str,
        _columns: Vec<(String, DataType)>,
    ) -> LocalFuture<'a, Result<(), EvalError>> {
        // This store only reads catalogs of earlier builds (the node adopts them, D71).
        Box::pin(async {
            Err(EvalError::msg(
                "addColumn needs the cluster catalog; this store predates it",
            ))
        })
    }

    fn atomic_chunk<'a>(&'a self, _db: &'a str) -> LocalFuture<'a, Result<bool, EvalError>> {
        Box::pin(async { Ok(false) })
    }

    fn set_atomic_level<'a>(
        &'a self,
        _db: &'a str,
        chunk: bool,
    ) -> LocalFuture<'a, Result<(), EvalError>> {
        // This store writes one chunk at a time under one lock: 'TRANS' is all it knows.
        Box::pin(async move {
            if chunk {
                Err(EvalError::msg(
                    "atomic='CHUNK' needs the cluster catalog; this store predates it",
                ))
            } else {
                Ok(())
            }
        })
    }

    fn rewrite<'a>(
        &'a self,
        _db: &'a str,
        _table: &'a str,
        _rewrites: Vec<(Partition, Vec<Column>)>,
        _tag: Option<crate::catalog::WriteTag>,
    ) -> LocalFuture<'a, Result<(), EvalError>> {
        Box::pin(async {
            Err(EvalError::msg(
                "update and delete need the cluster catalog; this store predates it",
            ))
        })
    }

    fn chunk_rows<'a>(&'a self, part: &'a Partition) -> LocalFuture<'a, Result<usize, EvalError>> {
        Box::pin(async move { Ok(self.engine.chunk_info(part.chunk).map_err(err)?.rows as usize) })
    }

    fn scan_chunk<'a>(
        &'a self,
        part: &'a Partition,
        columns: &'a [usize],
    ) -> LocalFuture<'a, Result<Vec<Column>, EvalError>> {
        Box::pin(async move { self.engine.scan(part.chunk, columns).await.map_err(err) })
    }

    fn execute<'a>(
        &'a self,
        f: &'a crate::fragment::Fragment,
    ) -> LocalFuture<'a, Result<Vec<Table>, EvalError>> {
        Box::pin(crate::fragment::run(f, self))
    }

    fn append<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
        data: &'a Table,
    ) -> LocalFuture<'a, Result<usize, EvalError>> {
        Box::pin(Dfs::append(self, db, table, data))
    }

    fn flush(&self) -> LocalFuture<'_, Result<(), EvalError>> {
        Box::pin(async move { self.engine.flush().await.map_err(err) })
    }

    fn chunks(&self) -> LocalFuture<'_, Result<Vec<catalog::ChunkRow>, EvalError>> {
        Box::pin(async move {
            let cat = self.catalog.borrow();
            let mut out = Vec::new();
            for (db, d) in &cat.databases {
                for (tname, t) in &d.tables {
                    for (pname, chunk) in &t.chunks {
                        let info = self.engine.chunk_info(*chunk).ok();
                        out.push(catalog::ChunkRow {
                            chunk: *chunk,
                            file: format!(
                                "{}/{}/{tname}",
                                db.trim_start_matches("dfs:/"),
                                d.scheme.display_path(pname)
                            ),
                            version: info.as_ref().map(|i| i.version).unwrap_or(0),
                            replicas: Vec::new(),
                            in_txn: info.as_ref().is_some_and(|i| i.in_transaction.is_some()),
                            stale: Vec::new(),
                            held: info.map(|i| catalog::Held {
                                rows: i.rows,
                                path: i.dir.display().to_string(),
                                disk_bytes: i.disk_bytes,
                            }),
                        });
                    }
                }
            }
            Ok(out)
        })
    }

    fn local_chunks(&self) -> LocalFuture<'_, Result<Vec<catalog::ChunkRow>, EvalError>> {
        // A single node holds every chunk it knows.
        self.chunks()
    }

    fn names(&self, tables: bool) -> LocalFuture<'_, Result<Vec<String>, EvalError>> {
        Box::pin(async move {
            let cat = self.catalog.borrow();
            Ok(if tables {
                cat.databases
                    .iter()
                    .flat_map(|(db, d)| d.tables.keys().map(move |t| format!("{db}/{t}")))
                    .collect()
            } else {
                cat.databases.keys().cloned().collect()
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_encoding_is_pinned_and_newer_formats_are_refused() {
        let mut chunks = BTreeMap::new();
        chunks.insert("20200601/Key3".to_string(), 7);
        let table = DfsTable {
            schema: Schema::new(&[
                ("SecurityID", DataType::Symbol),
                ("DateTime", DataType::DateTime),
            ]),
            partition_columns: vec![1, 0],
            chunks,
        };
        let mut databases = BTreeMap::new();
        databases.insert(
            "dfs://testDB".to_string(),
            Database {
                scheme: Scheme::Hash {
                    ty: DataType::Symbol,
                    buckets: 10,
                },
                tables: [("testTB".to_string(), table)].into_iter().collect(),
            },
        );
        let c = Catalog {
            next_chunk: 8,
            databases,
        };
        let bytes = c.encode();
        storage::golden::check(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/dfs_catalog.hex"),
            &bytes,
        );
        assert_eq!(Catalog::decode(&bytes).unwrap(), c);
        let mut newer = bytes.clone();
        newer[3] = b'3';
        let n = newer.len();
        let crc = crc32fast::hash(&newer[..n - 4]);
        newer[n - 4..].copy_from_slice(&crc.to_le_bytes());
        let e = Catalog::decode(&newer).unwrap_err();
        assert!(e.contains("format 3, but this build reads format 2"), "{e}");
    }
}
