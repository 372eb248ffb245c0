//! The cluster as a script sees it: `rpc`, `pnodeRun`, `getClusterPerf`, `getActiveMaster`.
//! The interpreter reaches other nodes only through the [`Cluster`] trait, which the node
//! implements over node RPC (`node::cluster`); a single node has none and answers for itself.
//!
//! A call travels as a [`RemoteCall`]: a built-in's name, or a user function's definition (its
//! syntax tree, `parse::codec`), with its bound and passed arguments as plain values — the
//! receiving node needs nothing of the caller's session.

use std::rc::Rc;

use storage::bytes::{Reader, Writer};
use storage::column::{Column, ColumnData};
use storage::types::DataType;

use crate::catalog::LocalFuture;
use crate::eval::value::{Builtin, Function};
use crate::eval::{EvalError, Interp, Table, Value};
use crate::parse::codec;

/// One node's row of `getClusterPerf`, with DolphinDB's column names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodePerf {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// 0 data node, 1 agent, 2 controller, 3 single node, 4 compute node.
    pub mode: u8,
    pub state: bool,
    pub agent_site: String,
    pub max_connections: i32,
    /// GB.
    pub max_mem_size: f64,
    pub worker_num: i32,
    pub executor_num: i32,
    pub connection_num: i32,
    /// Bytes resident now, and the most resident so far.
    pub memory_used: i64,
    pub memory_alloc: i64,
    /// Percent of one core since the last sample.
    pub cpu_usage: f64,
    pub avg_load: f64,
    /// Nanoseconds the longest-running script has run.
    pub max_running_query_time: i64,
    pub running_jobs: i32,
    pub queued_jobs: i32,
    pub running_tasks: i32,
    pub queued_tasks: i32,
    pub job_load: f64,
    pub disk_capacity: i64,
    pub disk_free_space: i64,
    pub disk_free_space_ratio: f64,
    pub is_leader: bool,
}

/// What a script needs of the cluster it runs in.
pub trait Cluster {
    /// Every data and compute node (and agents; with `controllers`, the controllers), each
    /// with its own figures when it answered, `state` 0 when it did not.
    fn perf(&self, controllers: bool) -> LocalFuture<'_, Result<Vec<NodePerf>, EvalError>>;

    /// Runs an encoded [`RemoteCall`] on node `alias`.
    fn run_on<'a>(
        &'a self,
        alias: &'a str,
        call: Vec<u8>,
    ) -> LocalFuture<'a, Result<value::Value, EvalError>>;

    /// The leader controller's alias.
    fn active_master(&self) -> LocalFuture<'_, Result<String, EvalError>>;

    /// Starts (`start`) or stops data and compute nodes — each an alias or `host:port` —
    /// through the agents of their hosts (`startDataNode`, `stopDataNode`).
    fn start_nodes<'a>(
        &'a self,
        nodes: &'a [String],
        start: bool,
    ) -> LocalFuture<'a, Result<(), EvalError>>;

    /// controller.cfg's (`controller`) or cluster.cfg's configuration as the controllers keep
    /// it, as `key=value` lines (`loadControllerConfigs`, `loadClusterNodesConfigs`).
    fn load_config(&self, controller: bool) -> LocalFuture<'_, Result<Vec<String>, EvalError>>;

    /// Replaces that configuration, through the controllers' Raft group, and so every
    /// controller's file (`saveControllerConfigs`, `saveClusterNodesConfigs`).
    fn save_config<'a>(
        &'a self,
        controller: bool,
        lines: &'a [String],
    ) -> LocalFuture<'a, Result<(), EvalError>>;
}

/// `getClusterPerf`'s table.
pub fn perf_table(rows: &[NodePerf]) -> Table {
    let s = |f: &dyn Fn(&NodePerf) -> String| {
        let v: Vec<String> = rows.iter().map(f).collect();
        Column::from_strings(
            DataType::String,
            &v.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    let i = |f: &dyn Fn(&NodePerf) -> i32| Column {
        ty: DataType::Int,
        data: ColumnData::I32(rows.iter().map(f).collect()),
    };
    let l = |f: &dyn Fn(&NodePerf) -> i64| Column {
        ty: DataType::Long,
        data: ColumnData::I64(rows.iter().map(f).collect()),
    };
    let d = |f: &dyn Fn(&NodePerf) -> f64| Column {
        ty: DataType::Double,
        data: ColumnData::F64(rows.iter().map(f).collect()),
    };
    let b = |f: &dyn Fn(&NodePerf) -> bool| Column {
        ty: DataType::Bool,
        data: ColumnData::I8(rows.iter().map(|r| f(r) as i8).collect()),
    };
    Table {
        columns: vec![
            ("host".into(), s(&|r| r.host.clone())),
            ("port".into(), i(&|r| r.port as i32)),
            (
                "site".into(),
                s(&|r| format!("{}:{}:{}", r.host, r.port, r.name)),
            ),
            ("mode".into(), i(&|r| r.mode as i32)),
            // INT, as DolphinDB sends it: the official clients compare it with 1.
            ("state".into(), i(&|r| r.state as i32)),
            ("agentSite".into(), s(&|r| r.agent_site.clone())),
            ("maxConnections".into(), i(&|r| r.max_connections)),
            ("maxMemSize".into(), d(&|r| r.max_mem_size)),
            ("workerNum".into(), i(&|r| r.worker_num)),
            ("executorNum".into(), i(&|r| r.executor_num)),
            ("connectionNum".into(), i(&|r| r.connection_num)),
            ("name".into(), s(&|r| r.name.clone())),
            ("memoryUsed".into(), l(&|r| r.memory_used)),
            ("memoryAlloc".into(), l(&|r| r.memory_alloc)),
            ("cpuUsage".into(), d(&|r| r.cpu_usage)),
            ("avgLoad".into(), d(&|r| r.avg_load)),
            (
                "maxRunningQueryTime".into(),
                l(&|r| r.max_running_query_time),
            ),
            ("runningJobs".into(), i(&|r| r.running_jobs)),
            ("queuedJobs".into(), i(&|r| r.queued_jobs)),
            ("runningTasks".into(), i(&|r| r.running_tasks)),
            ("queuedTasks".into(), i(&|r| r.queued_tasks)),
            ("jobLoad".into(), d(&|r| r.job_load)),
            ("diskCapacity".into(), l(&|r| r.disk_capacity)),
            ("diskFreeSpace".into(), l(&|r| r.disk_free_space)),
            ("diskFreeSpaceRatio".into(), d(&|r| r.disk_free_space_ratio)),
            ("publicName".into(), s(&|r| r.host.clone())),
            ("isLeader".into(), b(&|r| r.is_leader)),
        ],
    }
}

/// The rows of a [`perf_table`] (how a node's own row travels).
pub fn perf_rows(t: &Table) -> Result<Vec<NodePerf>, String> {
    let col = |n: &str| {
        t.columns
            .iter()
            .find(|(c, _)| c == n)
            .map(|(_, c)| c)
            .ok_or_else(|| format!("a perf table without {n}"))
    };
    let s = |n: &str, i: usize| -> Result<String, String> {
        Ok(col(n)?
            .bytes_at(i)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default())
    };
    let num = |n: &str, i: usize| -> Result<f64, String> {
        Ok(crate::eval::scalar_f64(col(n)?, i).unwrap_or(0.0))
    };
    let mut out = Vec::new();
    for i in 0..t.rows() {
        out.push(NodePerf {
            name: s("name", i)?,
            host: s("host", i)?,
            port: num("port", i)? as u16,
            mode: num("mode", i)? as u8,
            state: num("state", i)? != 0.0,
            agent_site: s("agentSite", i)?,
            max_connections: num("maxConnections", i)? as i32,
            max_mem_size: num("maxMemSize", i)?,
            worker_num: num("workerNum", i)? as i32,
            executor_num: num("executorNum", i)? as i32,
            connection_num: num("connectionNum", i)? as i32,
            memory_used: num("memoryUsed", i)? as i64,
            memory_alloc: num("memoryAlloc", i)? as i64,
            cpu_usage: num("cpuUsage", i)?,
            avg_load: num("avgLoad", i)?,
            max_running_query_time: num("maxRunningQueryTime", i)? as i64,
            running_jobs: num("runningJobs", i)? as i32,
            queued_jobs: num("queuedJobs", i)? as i32,
            running_tasks: num("runningTasks", i)? as i32,
            queued_tasks: num("queuedTasks", i)? as i32,
            job_load: num("jobLoad", i)?,
            disk_capacity: num("diskCapacity", i)? as i64,
            disk_free_space: num("diskFreeSpace", i)? as i64,
            disk_free_space_ratio: num("diskFreeSpaceRatio", i)?,
            is_leader: num("isLeader", i)? != 0.0,
        });
    }
    Ok(out)
}

/// Encodes `f(args…)` for another node. Functions that close over this session (a lambda
/// bound to local state, a table handle) are refused: the other node could not run them.
pub fn encode_call(f: &Value, args: &[Value]) -> Result<Vec<u8>, EvalError> {
    let mut w = Writer::default();
    let value = |w: &mut Writer, v: &Value| -> Result<(), EvalError> {
        let plain = crate::wire::to_plain(v);
        if let value::Value::Opaque(what) = &plain {
            return Err(EvalError::msg(format!(
                "a {what} cannot be sent to another node"
            )));
        }
        let mut b = Vec::new();
        value::wire::encode(&plain, &mut b).map_err(|e| EvalError::msg(e.to_string()))?;
        w.blob(&b);
        Ok(())
    };
    let bound = |w: &mut Writer, b: &[Option<Value>]| -> Result<(), EvalError> {
        w.varint(b.len() as u64);
        for slot in b {
            match slot {
                None => w.u8(0),
                Some(v) => {
                    w.u8(1);
                    value(w, v)?;
                }
            }
        }
        Ok(())
    };
    match f {
        Value::Builtin(b) => {
            w.u8(0);
            w.blob(b.name.as_bytes());
            bound(&mut w, &b.bound)?;
        }
        Value::Func(func) => {
            w.u8(1);
            w.blob(func.name.as_bytes());
            w.varint(func.params.len() as u64);
            for p in &func.params {
                w.blob(p.as_bytes());
            }
            w.varint(func.body.len() as u64);
            for s in func.body.iter() {
                codec::encode_stmt(s, &mut w);
            }
            bound(&mut w, &func.bound)?;
        }
        other => {
            return Err(EvalError::msg(format!(
                "rpc needs a function, not a {}",
                other.typestr()
            )))
        }
    }
    w.varint(args.len() as u64);
    for a in args {
        value(&mut w, a)?;
    }
    Ok(w.buf)
}

/// Runs an encoded call in `it` (a session of the receiving node).
pub async fn run_call(it: &mut Interp, bytes: &[u8]) -> Result<Value, EvalError> {
    let bad = |e: String| EvalError::msg(format!("a bad remote call: {e}"));
    let de = |e: storage::bytes::DecodeError| bad(e.to_string());
    let mut r = Reader::new(bytes);
    let text = |r: &mut Reader<'_>| -> Result<String, EvalError> {
        String::from_utf8(r.blob().map_err(de)?.to_vec()).map_err(|_| bad("not UTF-8".into()))
    };
    let value = |r: &mut Reader<'_>| -> Result<Value, EvalError> {
        let (v, _) = value::wire::decode(r.blob().map_err(de)?).map_err(|e| bad(e.to_string()))?;
        Ok(crate::wire::from_plain(v))
    };
    let bound = |r: &mut Reader<'_>| -> Result<Vec<Option<Value>>, EvalError> {
        let n = r.count(r.remaining()).map_err(de)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(match r.u8().map_err(de)? {
                0 => None,
                _ => Some(value(r)?),
            });
        }
        Ok(out)
    };
    let f = match r.u8().map_err(de)? {
        0 => {
            let name = text(&mut r)?;
            let bound = bound(&mut r)?;
            let exprs = vec![None; bound.len()];
            Value::Builtin(Rc::new(Builtin {
                name,
                bound,
                bound_exprs: exprs,
            }))
        }
        1 => {
            let name = text(&mut r)?;
            let n = r.count(r.remaining()).map_err(de)?;
            let mut params = Vec::with_capacity(n);
            for _ in 0..n {
                params.push(text(&mut r)?);
            }
            let n = r.count(r.remaining()).map_err(de)?;
            let mut body = Vec::with_capacity(n);
            {
                let mut d = codec::Decoder::new(&mut r);
                for _ in 0..n {
                    body.push(d.stmt().map_err(bad)?);
                }
            }
            let bound = bound(&mut r)?;
            Value::Func(Rc::new(Function {
                name,
                params,
                body: Rc::new(body),
                bound,
            }))
        }
        t => return Err(bad(format!("a function tag {t}"))),
    };
    let n = r.count(r.remaining()).map_err(de)?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        args.push(value(&mut r)?);
    }
    it.apply(f, args, &[], crate::parse::Pos { line: 1, col: 1 })
        .await
}
