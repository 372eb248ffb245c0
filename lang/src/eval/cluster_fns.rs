//! Cluster functions (`rpc`, `pnodeRun`, `getClusterPerf`, `getNodeType`, `getActiveMaster`)
//! over [`crate::cluster::Cluster`]; without a cluster (a single node, a test) they answer for
//! this node alone, as a one-node cluster would.

use std::collections::BTreeMap;
use std::rc::Rc;

use storage::column::Column;
use storage::types::DataType;

use super::builtins::{scalar_string, table_value};
use super::interp::Interp;
use super::value::{Table, Value};
use super::EvalError;
use crate::cluster::{perf_table, NodePerf};
use crate::parse::Pos;

pub(super) const NAMES: &[&str] = &[
    "rpc",
    "pnodeRun",
    "getClusterPerf",
    "getClusterNodesCfg",
    "getNodeType",
    "getActiveMaster",
    "startDataNode",
    "stopDataNode",
    "sleep",
    "loadControllerConfigs",
    "loadClusterNodesConfigs",
    "saveControllerConfigs",
    "saveClusterNodesConfigs",
];

/// This node's own row, when no cluster answers for it.
fn own_row(it: &Interp) -> NodePerf {
    let n = &it.node;
    NodePerf {
        name: n.alias.clone(),
        host: n.host.clone(),
        port: n.port,
        mode: n.mode_code,
        state: true,
        max_connections: n.max_connections as i32,
        worker_num: n.worker_num as i32,
        executor_num: n.worker_num.saturating_sub(1) as i32,
        connection_num: 1,
        running_jobs: 1,
        ..NodePerf::default()
    }
}

/// Whether `alias` names this node (or its controller, whose cluster functions this node
/// answers the same way: every cluster function here speaks for the whole cluster).
fn is_here(it: &Interp, alias: &str) -> bool {
    alias.is_empty() || alias == it.node.alias || alias == it.node.controller_alias
}

/// The strings of a STRING or SYMBOL scalar or vector.
fn texts(v: &Value) -> Option<Vec<String>> {
    let c = v
        .column()
        .filter(|c| matches!(c.ty, DataType::String | DataType::Symbol))?;
    Some(
        (0..c.len())
            .filter_map(|i| {
                c.bytes_at(i)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            })
            .collect(),
    )
}

/// The cluster a controller-kept setting is reached through.
fn cluster_of(it: &Interp, name: &str) -> Result<Rc<dyn crate::cluster::Cluster>, EvalError> {
    it.cluster.clone().ok_or_else(|| {
        EvalError::msg(format!(
            "The function [{name}] needs a cluster: the controllers keep its configuration"
        ))
    })
}

pub(super) async fn call(
    it: &mut Interp,
    name: &str,
    mut args: Vec<Value>,
    pos: Pos,
) -> Result<Value, EvalError> {
    match name {
        "startDataNode" | "stopDataNode" => {
            super::builtins::arity(name, &args, 1, 1)?;
            let nodes = texts(&args[0]).ok_or_else(|| {
                EvalError::msg(format!(
                    "The function [{name}]: nodes must be a node alias or \"host:port\", or a vector of them"
                ))
            })?;
            let Some(c) = it.cluster.clone() else {
                return Err(EvalError::msg(format!(
                    "The function [{name}] runs on a controller of a cluster"
                )));
            };
            c.start_nodes(&nodes, name == "startDataNode").await?;
            Ok(Value::Void)
        }
        "loadControllerConfigs" | "loadClusterNodesConfigs" => {
            super::builtins::arity(name, &args, 0, 0)?;
            let c = cluster_of(it, name)?;
            let lines = c.load_config(name == "loadControllerConfigs").await?;
            Ok(Value::Vector(Column::from_strings(
                DataType::String,
                &lines,
            )))
        }
        "saveControllerConfigs" | "saveClusterNodesConfigs" => {
            super::builtins::arity(name, &args, 1, 1)?;
            super::builtins::require_admin(it, name)?;
            let lines = texts(&args[0]).ok_or_else(|| {
                EvalError::msg(format!(
                    "The function [{name}]: the configuration must be a STRING vector of key=value lines"
                ))
            })?;
            let c = cluster_of(it, name)?;
            c.save_config(name == "saveControllerConfigs", &lines)
                .await?;
            Ok(Value::Void)
        }
        "getNodeType" => Ok(Value::scalar(
            DataType::Int,
            storage::column::ColumnData::I32(vec![it.node.mode_code as i32]),
        )),
        // sleep(milliseconds): waits without blocking other sessions.
        "sleep" => {
            super::builtins::arity(name, &args, 1, 1)?;
            let ms = super::builtins::scalar_i64(&args[0])?;
            if ms > 0 {
                rt::time::sleep(std::time::Duration::from_millis(ms as u64)).await;
            }
            Ok(Value::Void)
        }
        "getActiveMaster" => match it.cluster.clone() {
            Some(c) => Ok(Value::string(&c.active_master().await?)),
            None => Ok(Value::string(&it.node.alias)),
        },
        "getClusterPerf" => {
            let controllers = match args.first() {
                Some(v) => it.truthy(v)?,
                None => false,
            };
            let rows = match it.cluster.clone() {
                Some(c) => c.perf(controllers).await?,
                None => vec![own_row(it)],
            };
            Ok(table_value(perf_table(&rows)))
        }
        "getClusterNodesCfg" => {
            // cluster.nodes' lines (`host:port:alias,mode`), as DolphinDB's web Nodes config
            // page reads them.
            let rows = match it.cluster.clone() {
                Some(c) => c.perf(true).await?,
                None => vec![own_row(it)],
            };
            let lines: Vec<String> = rows
                .iter()
                .map(|p| {
                    let mode = match p.mode {
                        1 => "agent",
                        2 => "controller",
                        4 => "computenode",
                        _ => "datanode",
                    };
                    format!("{}:{}:{},{mode}", p.host, p.port, p.name)
                })
                .collect();
            Ok(Value::Vector(Column::from_strings(
                DataType::String,
                &lines,
            )))
        }
        "rpc" => {
            if args.len() < 2 {
                return Err(EvalError::msg(
                    "The function [rpc] needs a node alias and a function",
                ));
            }
            let alias = scalar_string(&args[0])?;
            let rest = args.split_off(2);
            let f = args.pop().expect("two arguments");
            run_on(it, &alias, f, rest, pos).await
        }
        "pnodeRun" => {
            let Some(f) = args.first().cloned() else {
                return Err(EvalError::msg("The function [pnodeRun] needs a function"));
            };
            let nodes: Vec<String> = match args.get(1) {
                Some(Value::Void) | None => match it.cluster.clone() {
                    // Every live data and compute node, as DolphinDB's default.
                    Some(c) => c
                        .perf(false)
                        .await?
                        .into_iter()
                        .filter(|p| p.state && matches!(p.mode, 0 | 4))
                        .map(|p| p.name)
                        .collect(),
                    None => vec![it.node.alias.clone()],
                },
                Some(v) => match v.column() {
                    Some(c) => (0..c.len())
                        .map(|i| {
                            c.bytes_at(i)
                                .map(|b| String::from_utf8_lossy(b).into_owned())
                                .ok_or_else(|| EvalError::msg("pnodeRun's nodes are aliases"))
                        })
                        .collect::<Result<_, _>>()?,
                    None => return Err(EvalError::msg("pnodeRun's nodes are aliases")),
                },
            };
            let add_alias = match args.get(2) {
                Some(v) => it.truthy(v)?,
                None => true,
            };
            let mut results = Vec::with_capacity(nodes.len());
            for n in &nodes {
                results.push((n.clone(), run_on(it, n, f.clone(), Vec::new(), pos).await?));
            }
            merge(results, add_alias)
        }
        _ => unreachable!("{name} is not a cluster function"),
    }
}

pub(super) async fn run_on(
    it: &mut Interp,
    alias: &str,
    f: Value,
    args: Vec<Value>,
    pos: Pos,
) -> Result<Value, EvalError> {
    if is_here(it, alias) {
        return Box::pin(it.apply(f, args, &[], pos)).await;
    }
    let Some(cluster) = it.cluster.clone() else {
        return Err(EvalError::msg(format!(
            "<DataNodeNotAvail>node {alias} is not reachable from this node"
        )));
    };
    let call = crate::cluster::encode_call(&f, &args)?;
    Ok(crate::wire::from_plain(cluster.run_on(alias, call).await?))
}

/// pnodeRun's merge: tables are stacked (with a `node` column first when `add_alias`),
/// scalars become a table of `node` and `value`, nothing stays nothing, anything else is a
/// dictionary by node.
fn merge(results: Vec<(String, Value)>, add_alias: bool) -> Result<Value, EvalError> {
    if results.iter().all(|(_, v)| matches!(v, Value::Void)) {
        return Ok(Value::Void);
    }
    if results.iter().all(|(_, v)| matches!(v, Value::Table(_))) {
        let mut out: Option<Table> = None;
        for (node, v) in results {
            let Value::Table(t) = v else { unreachable!() };
            let mut t = Rc::unwrap_or_clone(t);
            if add_alias {
                let names = vec![node.as_str(); t.rows()];
                t.columns.insert(
                    0,
                    (
                        "node".into(),
                        Column::from_strings(DataType::String, &names),
                    ),
                );
            }
            out = Some(match out {
                None => t,
                Some(mut acc) => {
                    if acc.columns.len() != t.columns.len() {
                        return Err(EvalError::msg(
                            "pnodeRun: the nodes returned tables of different shapes",
                        ));
                    }
                    for ((_, a), (_, c)) in acc.columns.iter_mut().zip(&t.columns) {
                        let c = if a.ty == c.ty {
                            c.clone()
                        } else {
                            super::builtins::cast(c, a.ty)?
                        };
                        a.append(&c).map_err(EvalError::msg)?;
                    }
                    acc
                }
            });
        }
        return Ok(table_value(out.expect("at least one table")));
    }
    if results.iter().all(|(_, v)| matches!(v, Value::Scalar(_))) {
        let nodes: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
        let mut values: Option<Column> = None;
        for (_, v) in &results {
            let Value::Scalar(c) = v else { unreachable!() };
            match &mut values {
                None => values = Some(c.clone()),
                Some(acc) => {
                    let c = if acc.ty == c.ty {
                        c.clone()
                    } else {
                        super::builtins::cast(c, acc.ty)?
                    };
                    acc.append(&c).map_err(EvalError::msg)?;
                }
            }
        }
        return Ok(table_value(Table {
            columns: vec![
                (
                    "node".into(),
                    Column::from_strings(DataType::String, &nodes),
                ),
                ("value".into(), values.expect("at least one scalar")),
            ],
        }));
    }
    Ok(Value::Dict(results.into_iter().collect::<BTreeMap<_, _>>()))
}
