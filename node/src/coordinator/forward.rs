//! Writes on a node that stores nothing (a compute node, or a controller running a script):
//! an append's rows, or a rewrite's partitions (`update`, `delete`), are handed to a live data
//! node, which coordinates the two-phase commit, so every transaction's coordinator is a node
//! that announces its restarts to the leader (D72).
//!
//! Invariant: an append is sent again to another data node only when the first cannot have
//! run it — the data node runs a forwarded append when its `last` part arrives, so a failure
//! before that part was delivered left nothing behind. A failure once it was sent is answered
//! as an unknown outcome, never retried (the append might have committed).

use std::time::Duration;

use lang::eval::{EvalError, Table};
use storage::column::Column;

use super::{eval_err, ClusterCatalog, PREPARE_BYTES_MAX};
use crate::dfs_proto::*;
use crate::error::{ErrorCode, RemoteError};
use crate::rpc::{decode_payload, encode_payload, RpcClient, RpcClientConfig, RpcError};

/// A forwarded append runs a whole two-phase commit before its last part is answered.
const FORWARD_CALL: RpcClientConfig = RpcClientConfig {
    connect_timeout: Duration::from_secs(2),
    call_timeout: Duration::from_secs(600),
    inflight_max: 4,
};

/// Why a forward failed, and whether another data node may be asked.
enum Failed {
    /// Nothing ran: ask another.
    Before(String),
    /// It may have run: tell the caller.
    After(EvalError),
}

/// Row ranges of `data` of at most about [`PREPARE_BYTES_MAX`] each (at least one).
fn pieces(data: &Table) -> Vec<(usize, usize)> {
    let rows = data.rows();
    let bytes: usize = data.columns.iter().map(|(_, c)| c.heap_bytes()).sum();
    let n = bytes.div_ceil(PREPARE_BYTES_MAX / 2).clamp(1, rows.max(1));
    let step = rows.div_ceil(n).max(1);
    (0..n)
        .map(|i| (i * step, ((i + 1) * step).min(rows)))
        .filter(|(a, b)| a < b || rows == 0)
        .collect()
}

impl ClusterCatalog {
    /// Hands `data` to a live data node to append as one transaction; the rows it added.
    pub(super) async fn forward_append(
        &self,
        db: &str,
        table: &str,
        data: &Table,
        tag: Option<Tag>,
    ) -> Result<usize, EvalError> {
        self.forward(db, table, &[(None, data)], tag).await
    }

    /// Hands a rewrite (each partition with its new rows, in schema order) to a live data
    /// node to run as one transaction.
    pub(super) async fn forward_rewrite(
        &self,
        db: &str,
        table: &str,
        rewrites: Vec<(lang::catalog::Partition, Vec<Column>)>,
        tag: Option<Tag>,
    ) -> Result<(), EvalError> {
        // The schema the rows were computed in: remembered from the snapshot they were read at.
        let known = rewrites
            .first()
            .and_then(|(p, _)| self.sites.borrow().get(&p.chunk).map(|s| s.schema.clone()));
        let schema = match known {
            Some(s) => s,
            None => std::rc::Rc::new(self.snapshot(db, table).await?.0.schema.clone()),
        };
        let names: Vec<String> = schema.columns.iter().map(|(n, _)| n.clone()).collect();
        let units: Vec<(Option<Rewrites>, Table)> = rewrites
            .into_iter()
            .map(|(p, cols)| {
                (
                    Some((p.name, p.chunk, p.version)),
                    Table {
                        columns: names.iter().cloned().zip(cols).collect(),
                    },
                )
            })
            .collect();
        let refs: Vec<(Option<Rewrites>, &Table)> =
            units.iter().map(|(p, t)| (p.clone(), t)).collect();
        self.forward(db, table, &refs, tag).await.map(|_| ())
    }

    /// Sends `units` (rows, each for a partition it rewrites or none) to a live data node.
    async fn forward(
        &self,
        db: &str,
        table: &str,
        units: &[(Option<Rewrites>, &Table)],
        tag: Option<Tag>,
    ) -> Result<usize, EvalError> {
        let nodes = match self.read(DfsRead::DataNodes).await? {
            DfsReadReply::Nodes(n) => n,
            _ => return Err(EvalError::msg("a bad controller reply")),
        };
        let live: Vec<Replica> = nodes.into_iter().filter(|n| n.live).collect();
        let first = self.forwards.get();
        self.forwards.set(first.wrapping_add(1));
        let mut why = Vec::new();
        for i in 0..live.len() {
            let node = &live[(first as usize + i) % live.len()];
            match self.forward_to(node, db, table, units, &tag).await {
                Ok(rows) => return Ok(rows),
                Err(Failed::Before(e)) => why.push(format!("{}: {e}", node.alias)),
                Err(Failed::After(e)) => return Err(e),
            }
        }
        Err(eval_err(RemoteError::new(
            ErrorCode::DataNodeNotAvail,
            format!(
                "No data node is available to take the append ({})",
                if why.is_empty() {
                    "none is live".to_string()
                } else {
                    why.join("; ")
                }
            ),
        )))
    }

    async fn forward_to(
        &self,
        node: &Replica,
        db: &str,
        table: &str,
        units: &[(Option<Rewrites>, &Table)],
        tag: &Option<Tag>,
    ) -> Result<usize, Failed> {
        let addr = crate::server::resolve_addr(&node.host, node.port)
            .map_err(|e| Failed::Before(e.to_string()))?;
        let client = RpcClient::new(addr, FORWARD_CALL);
        let session = self.session_id();
        let sends: Vec<(&Option<Rewrites>, &Table, usize, usize)> = units
            .iter()
            .flat_map(|(p, t)| pieces(t).into_iter().map(move |(a, b)| (p, *t, a, b)))
            .collect();
        for (i, (rewrite, data, from, to)) in sends.iter().enumerate() {
            let names: Vec<String> = data.columns.iter().map(|(n, _)| n.clone()).collect();
            let last = i + 1 == sends.len();
            let cols: Vec<Column> = data
                .columns
                .iter()
                .map(|(_, c)| {
                    if *from == 0 && *to == c.len() {
                        c.clone()
                    } else {
                        c.slice(*from, *to)
                    }
                })
                .collect();
            let part = ForwardedAppend {
                session,
                db: db.to_string(),
                table: table.to_string(),
                names,
                columns: encode_columns(cols),
                last,
                rewrite: (*rewrite).clone(),
                tag: tag.clone(),
            };
            match client
                .call(method::APPEND_FORWARD, encode_payload(&part))
                .await
            {
                Ok(reply) if last => {
                    let rows: Option<u64> = decode_payload(&reply).map_err(|e| {
                        Failed::After(EvalError::msg(format!("a bad data node reply: {e}")))
                    })?;
                    return Ok(rows.unwrap_or(0) as usize);
                }
                Ok(_) => {}
                // The append ran there and failed (or was refused): its own answer.
                Err(RpcError::Remote(e)) if last => {
                    return Err(Failed::After(match e.code {
                        // The script error as the data node gave it, word for word.
                        ErrorCode::AppendFailed => EvalError::msg(e.message),
                        _ => eval_err(e),
                    }));
                }
                Err(e @ RpcError::Connect { .. }) => return Err(Failed::Before(e.to_string())),
                Err(e) if last => {
                    return Err(Failed::After(EvalError::msg(format!(
                        "the outcome of the append forwarded to {} is not known ({e})",
                        node.alias
                    ))))
                }
                Err(e) => return Err(Failed::Before(e.to_string())),
            }
        }
        unreachable!("pieces() gives at least one part")
    }

    fn session_id(&self) -> u64 {
        // Unique among this process's forwards, and unlikely to meet another process's.
        let n = self.forwards.get();
        self.forwards.set(n.wrapping_add(1));
        rt::time::unix_time_ms()
            .rotate_left(20)
            .wrapping_add(u64::from(std::process::id()) << 40)
            ^ n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::types::DataType;

    #[test]
    fn an_append_is_cut_into_parts_under_the_prepare_limit_covering_every_row() {
        let n = 3_000_000usize;
        let ids: Vec<i64> = (0..n as i64).collect();
        let col = Column {
            ty: DataType::Long,
            data: storage::column::ColumnData::I64(ids),
        };
        let t = Table {
            columns: vec![("a".into(), col.clone()), ("b".into(), col)],
        };
        let p = pieces(&t);
        assert!(
            p.len() >= 3,
            "48 MB of rows in parts of at most 8 MiB: {p:?}"
        );
        assert_eq!(p.first().unwrap().0, 0);
        assert_eq!(p.last().unwrap().1, n);
        assert!(p.windows(2).all(|w| w[0].1 == w[1].0), "contiguous: {p:?}");
        let empty = Table {
            columns: vec![("a".into(), Column::empty(DataType::Long))],
        };
        assert_eq!(pieces(&empty), vec![(0, 0)], "an empty append is one part");
    }
}
