//! The coordinator role: a data or compute node's `dfs://` catalog in a cluster. It implements
//! `lang::catalog::Catalog` over node RPC — the namespace and transaction records at the leader
//! controller, the rows at the data nodes holding each chunk's replicas — so the interpreter
//! runs the same code as on a single node.
//!
//! Every write is one two-phase commit (ARCHITECTURE D70, `txn`): the rows routed to chunks,
//! a transaction begun at the leader, every replica prepared, the decision recorded by the
//! leader (the commit point), participants told. Nodes that store nothing forward their
//! appends to a data node instead (`forward`, D73).
//!
//! Invariants:
//! - A read asks each replica for exactly the version its table snapshot saw (the data node
//!   shows no later commit, and refuses while behind), so a transaction over several chunks is
//!   read whole or not at all.

mod forward;
pub mod query;
pub mod steps;
mod txn;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::time::Duration;

use lang::catalog::{Catalog, LocalFuture, Partition, TableInfo};
use lang::eval::{EvalError, Table};
use lang::partition::{NewValues, Scheme};
use storage::bytes::{Reader, Writer};
use storage::column::Column;
use storage::types::DataType;
use storage::Schema;

use crate::dfs_proto::*;
use crate::error::{ErrorCode, RemoteError, Retry};
use crate::leader::LeaderClient;
use crate::log::Logger;
use crate::rpc::{decode_payload, encode_payload, RpcClient, RpcClientConfig, RpcError};

/// One prepare call carries at most this many bytes of rows (the frame limit is 64 MiB).
pub const PREPARE_BYTES_MAX: usize = 16 << 20;
/// A read of a replica that is behind its snapshot is retried this many times.
const BEHIND_RETRIES_MAX: u32 = 50;
const BEHIND_PAUSE_MS: u64 = 100;

fn eval_err(e: RemoteError) -> EvalError {
    EvalError::msg(e.to_string())
}

/// What the coordinator remembers of a chunk from the last snapshot that named it.
#[derive(Clone)]
struct ChunkSites {
    replicas: Vec<Replica>,
    schema: Rc<Schema>,
}

/// A data node as the coordinator reaches it.
#[derive(Clone)]
enum Target {
    /// This process's own data node.
    Local(Rc<dyn ChunkServer>),
    Remote(Rc<RpcClient>),
}

impl Target {
    async fn call(&self, method: u16, payload: Vec<u8>) -> Result<Vec<u8>, RpcError> {
        match self {
            Target::Local(s) => s.handle(method, payload).await.map_err(RpcError::Remote),
            Target::Remote(c) => c.call(method, payload).await,
        }
    }

    async fn scan(&self, s: Scan) -> Result<Vec<Column>, RpcError> {
        match self {
            Target::Local(l) => l.scan(s).await.map_err(RpcError::Remote),
            Target::Remote(c) => {
                let b = c.call(method::CHUNK_SCAN, encode_payload(&s)).await?;
                decode_columns(&b).map_err(RpcError::Protocol)
            }
        }
    }
}

/// What a chunk read answered.
enum Read {
    Rows(u64),
    Columns(Vec<Column>),
}

pub struct ClusterCatalog {
    leader: Rc<LeaderClient>,
    /// This node's own data node (alias, service), reached in-process.
    local: Option<(String, Rc<dyn ChunkServer>)>,
    /// Data node clients by `host:port`.
    nodes: RefCell<HashMap<(String, u16), Rc<RpcClient>>>,
    sites: RefCell<HashMap<u64, ChunkSites>>,
    new_values: NewValues,
    log: Logger,
    /// This node's run, named in the transactions it begins, if it reports itself to the
    /// leader when it restarts (a data node): the leader then aborts what an earlier run left.
    me: Option<Incarnation>,
    /// Appends forwarded so far (spreads them over the data nodes).
    forwards: Cell<u64>,
    /// Each data node's queue and recent speed, for placing query tasks.
    loads: query::Loads,
    /// Tables' metadata by (database, table): the leader's version of it and the decoded
    /// snapshot, reused while the leader answers that the version is unchanged.
    tables: RefCell<HashMap<(String, String), CachedTable>>,
}

type CachedTable = (u64, Rc<TableInfo>, Rc<TableSnapshot>);

/// Tables whose metadata one node caches; past it the cache starts over (a bound, not an
/// eviction policy: a node querying more tables than this refetches some).
const TABLES_CACHED_MAX: usize = 1024;

impl ClusterCatalog {
    /// A coordinator reaching the leader through `leader`; `local` is this node's own data
    /// node, if it is one (its replicas are read and written in-process).
    pub fn new(
        leader: Rc<LeaderClient>,
        local: Option<(String, Rc<dyn ChunkServer>)>,
        new_values: NewValues,
        log: Logger,
        me: Option<Incarnation>,
    ) -> ClusterCatalog {
        ClusterCatalog {
            leader,
            local,
            nodes: RefCell::new(HashMap::new()),
            sites: RefCell::new(HashMap::new()),
            new_values,
            log,
            me,
            forwards: Cell::new(0),
            loads: query::Loads::default(),
            tables: RefCell::default(),
        }
    }

    async fn leader_call<T: serde::de::DeserializeOwned>(
        &self,
        method: u16,
        req: &impl serde::Serialize,
    ) -> Result<T, EvalError> {
        let reply = self
            .leader
            .call(method, encode_payload(req))
            .await
            .map_err(eval_err)?;
        decode_payload(&reply).map_err(|e| EvalError::msg(format!("a bad controller reply: {e}")))
    }

    async fn read(&self, q: DfsRead) -> Result<DfsReadReply, EvalError> {
        self.leader_call(method::DFS_READ, &q).await
    }

    async fn ddl(&self, d: Ddl) -> Result<(), EvalError> {
        self.leader_call::<()>(method::DDL, &d).await
    }

    fn is_local(&self, r: &Replica) -> bool {
        self.local
            .as_ref()
            .is_some_and(|(alias, _)| *alias == r.alias)
    }

    /// How to reach the data node holding replica `r`: in-process when it is this node.
    fn node(&self, r: &Replica) -> Option<Target> {
        if let Some((alias, server)) = &self.local {
            if *alias == r.alias {
                return Some(Target::Local(server.clone()));
            }
        }
        let key = (r.host.clone(), r.port);
        if let Some(c) = self.nodes.borrow().get(&key) {
            return Some(Target::Remote(c.clone()));
        }
        let addr = crate::server::resolve_addr(&r.host, r.port).ok()?;
        let c = Rc::new(RpcClient::new(
            addr,
            RpcClientConfig {
                connect_timeout: Duration::from_secs(2),
                call_timeout: Duration::from_secs(60),
                inflight_max: 256,
            },
        ));
        self.nodes.borrow_mut().insert(key, c.clone());
        Some(Target::Remote(c))
    }

    /// Reads `s` (its rows, or with `rows` false its columns) from a replica of `part` that
    /// holds its snapshot's version: live replicas first, starting from one chosen by the
    /// chunk id (spreading reads), moving on when one is unreachable and waiting briefly when
    /// one is behind.
    async fn read_chunk(&self, part: &Partition, s: Scan, rows: bool) -> Result<Read, EvalError> {
        let sites = self
            .sites
            .borrow()
            .get(&part.chunk)
            .cloned()
            .ok_or_else(|| {
                EvalError::msg(format!(
                    "chunk {} of partition {} is unknown here",
                    part.chunk, part.name
                ))
            })?;
        let mut order: Vec<&Replica> = sites.replicas.iter().collect();
        if !order.is_empty() {
            let n = order.len();
            order.rotate_left(part.chunk as usize % n);
        }
        order.sort_by_key(|r| !r.live);
        let mut last = String::from("it has no replica");
        for r in order {
            let Some(target) = self.node(r) else {
                last = format!("{}: the address does not resolve", r.alias);
                continue;
            };
            let mut behind = 0;
            loop {
                let answer = if rows {
                    target
                        .call(method::CHUNK_ROWS, encode_payload(&s))
                        .await
                        .and_then(|b| {
                            decode_payload::<u64>(&b)
                                .map(Read::Rows)
                                .map_err(RpcError::Protocol)
                        })
                } else {
                    target.scan(s.clone()).await.map(Read::Columns)
                };
                match answer {
                    Ok(read) => return Ok(read),
                    Err(RpcError::Remote(e))
                        if e.code == ErrorCode::ChunkInTransaction
                            && behind < BEHIND_RETRIES_MAX =>
                    {
                        behind += 1;
                        rt::time::sleep(Duration::from_millis(BEHIND_PAUSE_MS)).await;
                    }
                    Err(RpcError::Remote(e)) if e.retry() == Retry::Never => {
                        return Err(EvalError::msg(e.to_string()))
                    }
                    Err(e) => {
                        last = format!("{}: {e}", r.alias);
                        break;
                    }
                }
            }
        }
        Err(EvalError::msg(format!(
            "<DataNodeNotAvail>no replica of chunk {} (partition {}) could be read; last: {last}",
            part.chunk, part.name
        )))
    }

    fn remember(&self, partitions: &[PartitionSnapshot], schema: &Rc<Schema>) {
        let mut sites = self.sites.borrow_mut();
        for p in partitions {
            sites.insert(
                p.chunk,
                ChunkSites {
                    replicas: p.replicas.clone(),
                    schema: schema.clone(),
                },
            );
        }
    }

    /// The table's metadata as the leader holds it now (a linearizable read), from this
    /// node's cache when the leader says its version is unchanged (`DfsRead::TableSince`).
    async fn snapshot(
        &self,
        db: &str,
        table: &str,
    ) -> Result<(Rc<TableInfo>, Rc<TableSnapshot>), EvalError> {
        let key = (db.to_string(), table.to_string());
        let cached = self.tables.borrow().get(&key).cloned();
        let q = DfsRead::TableSince {
            db: db.to_string(),
            table: table.to_string(),
            known: cached.as_ref().map_or(0, |c| c.0),
        };
        let (version, t) = match self.read(q).await? {
            DfsReadReply::TableUnchanged => match cached {
                Some((_, info, snap)) => return Ok((info, snap)),
                None => return Err(EvalError::msg("a bad controller reply: nothing was cached")),
            },
            DfsReadReply::TableAt(version, t) => (version, t),
            _ => return Err(EvalError::msg("a bad controller reply: not a table")),
        };
        let (info, snap) = self.decode_snapshot(table, t)?;
        let mut tables = self.tables.borrow_mut();
        if tables.len() >= TABLES_CACHED_MAX && !tables.contains_key(&key) {
            tables.clear();
        }
        tables.insert(key, (version, info.clone(), snap.clone()));
        Ok((info, snap))
    }

    fn decode_snapshot(
        &self,
        table: &str,
        t: TableSnapshot,
    ) -> Result<(Rc<TableInfo>, Rc<TableSnapshot>), EvalError> {
        let mut columns = Vec::with_capacity(t.columns.len());
        for (n, ty) in &t.columns {
            let ty = DataType::from_id(*ty)
                .ok_or_else(|| EvalError::msg(format!("column {n} has an unknown type id {ty}")))?;
            columns.push((n.clone(), ty));
        }
        let schema = Schema { columns };
        let partition_columns = t
            .partition_columns
            .iter()
            .map(|p| {
                schema
                    .columns
                    .iter()
                    .position(|(n, _)| n == p)
                    .ok_or_else(|| {
                        EvalError::msg(format!("partitioning column {p} is not in {table}"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let scheme = Scheme::decode(&mut Reader::new(&t.scheme)).map_err(EvalError::msg)?;
        let info = TableInfo {
            schema: schema.clone(),
            partition_columns,
            scheme,
            partitions: t
                .partitions
                .iter()
                .map(|p| Partition {
                    name: p.name.clone(),
                    chunk: p.chunk,
                    version: p.version,
                })
                .collect(),
        };
        self.remember(&t.partitions, &Rc::new(schema));
        Ok((Rc::new(info), Rc::new(t)))
    }
}

fn empty_columns(schema: &Schema, columns: &[usize]) -> Vec<Column> {
    columns
        .iter()
        .map(|c| Column::empty(schema.columns[*c].1))
        .collect()
}

impl Catalog for ClusterCatalog {
    fn exists_database<'a>(&'a self, name: &'a str) -> LocalFuture<'a, Result<bool, EvalError>> {
        Box::pin(async move {
            match self.read(DfsRead::ExistsDatabase(name.to_string())).await? {
                DfsReadReply::Bool(b) => Ok(b),
                _ => Err(EvalError::msg("a bad controller reply")),
            }
        })
    }

    fn exists_table<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
    ) -> LocalFuture<'a, Result<bool, EvalError>> {
        Box::pin(async move {
            let q = DfsRead::ExistsTable {
                db: db.to_string(),
                table: table.to_string(),
            };
            match self.read(q).await? {
                DfsReadReply::Bool(b) => Ok(b),
                _ => Err(EvalError::msg("a bad controller reply")),
            }
        })
    }

    fn database<'a>(
        &'a self,
        name: &'a str,
        scheme: Option<Scheme>,
    ) -> LocalFuture<'a, Result<(), EvalError>> {
        Box::pin(async move {
            if !name.starts_with("dfs://") {
                return Err(EvalError::msg(format!(
                    "The database path {name} must start with dfs://"
                )));
            }
            let Some(scheme) = scheme else {
                return if self.exists_database(name).await? {
                    Ok(())
                } else {
                    Err(EvalError::msg(format!(
                        "The database {name} does not exist; give a partition type and scheme to create it"
                    )))
                };
            };
            let mut w = Writer::default();
            scheme.encode(&mut w);
            self.ddl(Ddl::CreateDatabase {
                name: name.to_string(),
                scheme: w.buf,
            })
            .await
        })
    }

    fn drop_database<'a>(&'a self, name: &'a str) -> LocalFuture<'a, Result<(), EvalError>> {
        Box::pin(self.ddl(Ddl::DropDatabase {
            name: name.to_string(),
        }))
    }

    fn scheme<'a>(&'a self, db: &'a str) -> LocalFuture<'a, Result<Scheme, EvalError>> {
        Box::pin(async move {
            match self.read(DfsRead::Scheme(db.to_string())).await? {
                DfsReadReply::Scheme(b) => {
                    Scheme::decode(&mut Reader::new(&b)).map_err(EvalError::msg)
                }
                _ => Err(EvalError::msg("a bad controller reply")),
            }
        })
    }

    fn create_table<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
        schema: Schema,
        partition_columns: &'a [String],
    ) -> LocalFuture<'a, Result<(), EvalError>> {
        Box::pin(async move {
            let scheme = self.scheme(db).await?;
            let mut names = Vec::with_capacity(partition_columns.len());
            for pc in partition_columns {
                let (n, _) = schema
                    .columns
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(pc))
                    .ok_or_else(|| {
                        EvalError::msg(format!("The partitioning column {pc} is not in the table"))
                    })?;
                names.push(n.clone());
            }
            if !names.is_empty() && scheme.levels() != names.len() {
                return Err(EvalError::msg(format!(
                    "The database {db} partitions by {} column(s), {} given",
                    scheme.levels(),
                    names.len()
                )));
            }
            let distinct: BTreeSet<&String> = names.iter().collect();
            if distinct.len() != names.len() {
                return Err(EvalError::msg("A partitioning column is named twice"));
            }
            self.ddl(Ddl::CreateTable {
                db: db.to_string(),
                table: table.to_string(),
                columns: schema
                    .columns
                    .iter()
                    .map(|(n, t)| (n.clone(), *t as u8))
                    .collect(),
                partition_columns: names,
            })
            .await
        })
    }

    fn table<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
    ) -> LocalFuture<'a, Result<Rc<TableInfo>, EvalError>> {
        Box::pin(async move { Ok(self.snapshot(db, table).await?.0) })
    }

    fn drop_table<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
    ) -> LocalFuture<'a, Result<(), EvalError>> {
        Box::pin(self.ddl(Ddl::DropTable {
            db: db.to_string(),
            table: table.to_string(),
        }))
    }

    fn add_columns<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
        columns: Vec<(String, DataType)>,
    ) -> LocalFuture<'a, Result<(), EvalError>> {
        Box::pin(self.ddl(Ddl::AddColumns {
            db: db.to_string(),
            table: table.to_string(),
            columns: columns.into_iter().map(|(n, t)| (n, t as u8)).collect(),
        }))
    }

    fn atomic_chunk<'a>(&'a self, db: &'a str) -> LocalFuture<'a, Result<bool, EvalError>> {
        Box::pin(async move {
            match self.read(DfsRead::AtomicChunk(db.to_string())).await? {
                DfsReadReply::Bool(b) => Ok(b),
                _ => Err(EvalError::msg("a bad controller reply")),
            }
        })
    }

    fn set_atomic_level<'a>(
        &'a self,
        db: &'a str,
        chunk: bool,
    ) -> LocalFuture<'a, Result<(), EvalError>> {
        Box::pin(self.ddl(Ddl::SetAtomicLevel {
            db: db.to_string(),
            chunk,
        }))
    }

    fn rewrite<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
        rewrites: Vec<(Partition, Vec<Column>)>,
        tag: Option<lang::catalog::WriteTag>,
    ) -> LocalFuture<'a, Result<(), EvalError>> {
        let tag = tag.as_ref().map(tag_wire);
        Box::pin(async move {
            if self.local.is_some() {
                self.rewrite_txn(db, table, rewrites, tag).await
            } else {
                // A node that stores nothing does not coordinate (D73).
                self.forward_rewrite(db, table, rewrites, tag).await
            }
        })
    }

    fn drop_partitions<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
        partitions: Vec<String>,
    ) -> LocalFuture<'a, Result<(), EvalError>> {
        Box::pin(self.ddl(Ddl::DropPartitions {
            db: db.to_string(),
            table: table.to_string(),
            partitions,
        }))
    }

    fn chunk_rows<'a>(&'a self, part: &'a Partition) -> LocalFuture<'a, Result<usize, EvalError>> {
        Box::pin(async move {
            let req = Scan {
                chunk: part.chunk,
                version: part.version,
                columns: Vec::new(),
                types: Vec::new(),
            };
            match self.read_chunk(part, req, true).await? {
                Read::Rows(n) => Ok(n as usize),
                Read::Columns(_) => Err(EvalError::msg("a bad data node reply")),
            }
        })
    }

    fn scan_chunk<'a>(
        &'a self,
        part: &'a Partition,
        columns: &'a [usize],
    ) -> LocalFuture<'a, Result<Vec<Column>, EvalError>> {
        Box::pin(async move {
            let schema = self
                .sites
                .borrow()
                .get(&part.chunk)
                .map(|s| s.schema.clone())
                .ok_or_else(|| EvalError::msg(format!("chunk {} is unknown here", part.chunk)))?;
            let req = Scan::of(&schema, part, columns);
            let Read::Columns(cols) = self.read_chunk(part, req, false).await? else {
                return Err(EvalError::msg("a bad data node reply"));
            };
            if cols.is_empty() && !columns.is_empty() {
                return Ok(empty_columns(&schema, columns));
            }
            Ok(cols)
        })
    }

    fn execute<'a>(
        &'a self,
        f: &'a lang::fragment::Fragment,
    ) -> LocalFuture<'a, Result<Vec<Table>, EvalError>> {
        Box::pin(self.execute_fragment(f))
    }

    fn colocated(&self, f: &lang::fragment::Fragment) -> bool {
        self.fragment_sites(f)
            .is_ok_and(|sites| sites.iter().all(|s| !s.is_empty()))
    }

    fn append<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
        data: &'a Table,
    ) -> LocalFuture<'a, Result<usize, EvalError>> {
        self.append_tagged(db, table, data, None)
    }

    fn append_tagged<'a>(
        &'a self,
        db: &'a str,
        table: &'a str,
        data: &'a Table,
        tag: Option<lang::catalog::WriteTag>,
    ) -> LocalFuture<'a, Result<usize, EvalError>> {
        let tag = tag.as_ref().map(tag_wire);
        Box::pin(async move {
            if self.local.is_some() {
                self.append_txn(db, table, data, tag).await
            } else {
                // A node that stores nothing does not coordinate: a data node does (D73).
                self.forward_append(db, table, data, tag).await
            }
        })
    }

    fn written<'a>(
        &'a self,
        tag: &'a lang::catalog::WriteTag,
    ) -> LocalFuture<'a, Result<Option<usize>, EvalError>> {
        Box::pin(async move {
            match self.read(DfsRead::Written(tag_wire(tag))).await? {
                DfsReadReply::Written(rows) => Ok(rows.map(|r| r as usize)),
                _ => Err(EvalError::msg("a bad controller reply")),
            }
        })
    }

    fn flush(&self) -> LocalFuture<'_, Result<(), EvalError>> {
        // This node's own data node, if it is one; each flushes its own cache engine.
        Box::pin(async move {
            match &self.local {
                Some((_, l)) => l.flush().await.map_err(eval_err),
                None => Ok(()),
            }
        })
    }

    fn chunks(&self) -> LocalFuture<'_, Result<Vec<lang::catalog::ChunkRow>, EvalError>> {
        Box::pin(async move {
            match self.read(DfsRead::Chunks).await? {
                DfsReadReply::Chunks(c) => Ok(c
                    .into_iter()
                    .map(|c| lang::catalog::ChunkRow {
                        chunk: c.chunk,
                        file: c.file,
                        version: c.version,
                        replicas: c.replicas,
                        in_txn: c.in_txn,
                        stale: c.stale,
                        held: None,
                    })
                    .collect()),
                _ => Err(EvalError::msg("a bad controller reply")),
            }
        })
    }

    fn recovery_tasks(
        &self,
    ) -> LocalFuture<'_, Result<Vec<lang::catalog::RecoveryTask>, EvalError>> {
        Box::pin(async move {
            match self.read(DfsRead::RecoveryTasks).await? {
                DfsReadReply::RecoveryTasks(t) => Ok(t.into_iter().map(Into::into).collect()),
                _ => Err(EvalError::msg("a bad controller reply")),
            }
        })
    }

    fn local_chunks(&self) -> LocalFuture<'_, Result<Vec<lang::catalog::ChunkRow>, EvalError>> {
        Box::pin(async move {
            let Some((_, local)) = &self.local else {
                // A compute node or controller holds no chunks.
                return Ok(Vec::new());
            };
            let held = local.report();
            if held.is_empty() {
                return Ok(Vec::new());
            }
            // The leader knows which partition of which table each chunk is.
            let files: HashMap<u64, String> = self
                .chunks()
                .await?
                .into_iter()
                .map(|c| (c.chunk, c.file))
                .collect();
            Ok(held
                .into_iter()
                .map(|c| lang::catalog::ChunkRow {
                    chunk: c.chunk,
                    file: files.get(&c.chunk).cloned().unwrap_or_default(),
                    version: c.version,
                    replicas: Vec::new(),
                    in_txn: c.txn.is_some(),
                    stale: Vec::new(),
                    held: Some(lang::catalog::Held {
                        rows: c.rows,
                        path: c.path,
                        disk_bytes: c.disk_bytes,
                    }),
                })
                .collect())
        })
    }

    fn names(&self, tables: bool) -> LocalFuture<'_, Result<Vec<String>, EvalError>> {
        Box::pin(async move {
            let q = if tables {
                DfsRead::Tables
            } else {
                DfsRead::Databases
            };
            match self.read(q).await? {
                DfsReadReply::Names(n) => Ok(n),
                _ => Err(EvalError::msg("a bad controller reply")),
            }
        })
    }
}
