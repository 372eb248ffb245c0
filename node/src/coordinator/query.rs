//! Distributed queries: a plan fragment (`lang::fragment`) split into one task per data node,
//! each task naming the partitions that node computes over its own replicas.
//!
//! Planning is a pure function ([`assign`]): partitions and their replicas in, tasks out.
//! Each partition goes to a live replica not yet failed in this query, the least loaded first
//! — load being the tasks this coordinator already has in flight to the node plus the
//! partitions this plan gave it, ties broken by the node's recent time per partition and then
//! by the chunk id (so equal nodes share the work). DolphinDB bundles a node's partitions into
//! one remote task the same way.
//!
//! Invariants:
//! - Every partition's table comes from exactly one task that answered whole (a data node's
//!   task is all or nothing, `datanode::query`), so a task rerun on another replica after a
//!   node's loss neither misses a partition nor counts one twice.
//! - A node whose task failed is not given work again in this query; a partition without a
//!   replica left fails the query with `<DataNodeNotAvail>` naming the chunk — never a partial
//!   answer. Rounds are bounded by [`ROUNDS_MAX`].

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use lang::eval::{EvalError, Table};
use lang::fragment::Fragment;

use super::{ClusterCatalog, Target};
use crate::dfs_proto::{method, Replica};
use crate::error::{ErrorCode, RemoteError, Retry};
use crate::rpc::{encode_payload, RpcError};

/// Most rounds of task sends one fragment takes (a round reruns what failed in the last).
pub const ROUNDS_MAX: usize = 4;

/// What the coordinator knows of each data node's recent work, by alias.
#[derive(Default)]
pub struct Loads {
    nodes: RefCell<HashMap<String, NodeLoad>>,
}

#[derive(Default, Clone, Copy)]
struct NodeLoad {
    /// Tasks sent and not yet answered.
    inflight: u32,
    /// Recent milliseconds per partition, smoothed (0: no answer yet).
    ms_per_part: f64,
}

impl Loads {
    fn get(&self, alias: &str) -> NodeLoad {
        self.nodes.borrow().get(alias).copied().unwrap_or_default()
    }

    fn start(&self, alias: &str) {
        self.nodes
            .borrow_mut()
            .entry(alias.to_string())
            .or_default()
            .inflight += 1;
    }

    fn finish(&self, alias: &str, parts: usize, elapsed_ms: f64, ok: bool) {
        let mut nodes = self.nodes.borrow_mut();
        let n = nodes.entry(alias.to_string()).or_default();
        n.inflight = n.inflight.saturating_sub(1);
        if ok && parts > 0 {
            let per = elapsed_ms / parts as f64;
            n.ms_per_part = if n.ms_per_part == 0.0 {
                per
            } else {
                0.8 * n.ms_per_part + 0.2 * per
            };
        }
    }
}

/// One partition as planning sees it: its chunk and the replicas that may compute it.
pub struct PartSites<'a> {
    pub chunk: u64,
    pub replicas: &'a [Replica],
}

/// Tasks by data node alias: the indexes (into `parts`) each computes. `Err(i)`: partition `i`
/// has no replica left outside `failed`.
pub fn assign(
    parts: &[PartSites<'_>],
    pending: &[usize],
    failed: &BTreeSet<String>,
    load: &dyn Fn(&str) -> (u32, f64),
) -> Result<BTreeMap<String, Vec<usize>>, usize> {
    let mut tasks: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for &i in pending {
        let p = &parts[i];
        let usable: Vec<&Replica> = p
            .replicas
            .iter()
            .filter(|r| !failed.contains(&r.alias))
            .collect();
        // Live replicas first; the leader's view may lag, so a replica it thinks down is
        // still worth asking when it is the last one.
        let live: Vec<&Replica> = usable.iter().copied().filter(|r| r.live).collect();
        let candidates = if live.is_empty() { usable } else { live };
        let n = candidates.len();
        let best = candidates
            .iter()
            .enumerate()
            .min_by(|(ia, a), (ib, b)| {
                let key = |r: &Replica, at: usize| {
                    let (inflight, ms) = load(&r.alias);
                    let given = tasks.get(&r.alias).map_or(0, |t| t.len());
                    // Rotation by chunk id: equal nodes take turns.
                    let turn = (at + n - (p.chunk as usize % n.max(1))) % n.max(1);
                    (inflight as usize + given, ms, turn)
                };
                let (ka, kb) = (key(a, *ia), key(b, *ib));
                ka.0.cmp(&kb.0)
                    .then(ka.1.total_cmp(&kb.1))
                    .then(ka.2.cmp(&kb.2))
            })
            .map(|(_, r)| *r)
            .ok_or(i)?;
        tasks.entry(best.alias.clone()).or_default().push(i);
    }
    Ok(tasks)
}

impl Target {
    async fn execute(&self, f: &Fragment) -> Result<Vec<Table>, RpcError> {
        match self {
            Target::Local(s) => s.execute(f).await.map_err(RpcError::Remote),
            Target::Remote(c) => {
                let payload = f.encode().map_err(|e| {
                    RpcError::Remote(RemoteError::new(ErrorCode::QueryFailed, e.to_string()))
                })?;
                let b = c.call(method::QUERY_FRAGMENT, payload).await?;
                let bytes = match b.split_first() {
                    Some((0, whole)) => whole.to_vec(),
                    Some((1, rest)) if rest.len() >= 16 => {
                        let token = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
                        let total = u64::from_le_bytes(rest[8..16].try_into().expect("8 bytes"));
                        let total = usize::try_from(total)
                            .map_err(|_| RpcError::Protocol("an answer too large".into()))?;
                        let mut bytes = Vec::with_capacity(total);
                        bytes.extend_from_slice(&rest[16..]);
                        while bytes.len() < total {
                            let more = c
                                .call(
                                    method::QUERY_MORE,
                                    encode_payload(&(token, bytes.len() as u64)),
                                )
                                .await?;
                            if more.is_empty() {
                                return Err(RpcError::Protocol("a query answer cut short".into()));
                            }
                            bytes.extend_from_slice(&more);
                        }
                        bytes
                    }
                    _ => return Err(RpcError::Protocol("a bad query answer".into())),
                };
                lang::fragment::decode_tables(&bytes).map_err(RpcError::Protocol)
            }
        }
    }
}

impl ClusterCatalog {
    /// The replicas that may compute each partition of `f`: its chunk's, and for a join only
    /// those that hold the paired right chunk too (D95).
    pub(super) fn fragment_sites(&self, f: &Fragment) -> Result<Vec<Vec<Replica>>, EvalError> {
        let known = self.sites.borrow();
        let of = |p: &lang::catalog::Partition| {
            known
                .get(&p.chunk)
                .map(|s| s.replicas.clone())
                .ok_or_else(|| {
                    EvalError::msg(format!(
                        "chunk {} of partition {} is unknown here",
                        p.chunk, p.name
                    ))
                })
        };
        f.parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut replicas = of(p)?;
                if let Some(right) = f.join.as_ref().and_then(|j| j.parts[i].as_ref()) {
                    let theirs = of(right)?;
                    replicas.retain(|r| theirs.iter().any(|t| t.alias == r.alias));
                }
                Ok(replicas)
            })
            .collect()
    }

    /// Runs `f` over its partitions on the data nodes holding them.
    pub(super) async fn execute_fragment(&self, f: &Fragment) -> Result<Vec<Table>, EvalError> {
        let sites = self.fragment_sites(f)?;
        let parts: Vec<PartSites<'_>> = f
            .parts
            .iter()
            .zip(&sites)
            .map(|(p, r)| PartSites {
                chunk: p.chunk,
                replicas: r,
            })
            .collect();
        let mut results: Vec<Option<Table>> = (0..f.parts.len()).map(|_| None).collect();
        let mut pending: Vec<usize> = (0..f.parts.len()).collect();
        let mut failed: BTreeSet<String> = BTreeSet::new();
        let mut why: Vec<String> = Vec::new();
        for _round in 0..ROUNDS_MAX {
            if pending.is_empty() {
                break;
            }
            let load = |a: &str| {
                let l = self.loads.get(a);
                (l.inflight, l.ms_per_part)
            };
            let tasks =
                assign(&parts, &pending, &failed, &load).map_err(|i| no_replica(f, i, &why))?;
            pending.clear();
            let mut sent = Vec::with_capacity(tasks.len());
            for (alias, idx) in tasks {
                let replica = sites[idx[0]]
                    .iter()
                    .find(|r| r.alias == alias)
                    .expect("assigned among the partition's replicas")
                    .clone();
                let task = f.over(idx.iter().map(|i| f.parts[*i].clone()).collect());
                sent.push(async move {
                    let Some(target) = self.node(&replica) else {
                        let e = RpcError::Protocol(format!(
                            "{}: the address does not resolve",
                            replica.alias
                        ));
                        return (alias, idx, Err(e));
                    };
                    self.loads.start(&alias);
                    let started = rt::time::now();
                    let r = target.execute(&task).await;
                    let ms = (rt::time::now() - started).as_secs_f64() * 1e3;
                    self.loads.finish(&alias, idx.len(), ms, r.is_ok());
                    (alias, idx, r)
                });
            }
            for (alias, idx, r) in futures_util::future::join_all(sent).await {
                match r {
                    Ok(tables) if tables.len() == idx.len() => {
                        for (i, t) in idx.into_iter().zip(tables) {
                            results[i] = Some(t);
                        }
                    }
                    Ok(tables) => {
                        let m = format!(
                            "{alias}: {} tables for {} partitions",
                            tables.len(),
                            idx.len()
                        );
                        return Err(EvalError::msg(format!("a bad data node reply: {m}")));
                    }
                    Err(RpcError::Remote(e)) if e.retry() == Retry::Never => {
                        // The query itself failed: every replica would say the same.
                        return Err(EvalError::msg(e.message));
                    }
                    Err(e) => {
                        self.log.warn(
                            "query_task_failed",
                            &format!("a query task on {alias} failed; its partitions go to other replicas: {e}"),
                            &[("node", &alias), ("partitions", &idx.len().to_string())],
                        );
                        why.push(format!("{alias}: {e}"));
                        failed.insert(alias);
                        pending.extend(idx);
                    }
                }
            }
        }
        if let Some(&i) = pending.first() {
            return Err(no_replica(f, i, &why));
        }
        Ok(results
            .into_iter()
            .map(|t| t.expect("every partition answered"))
            .collect())
    }
}

fn no_replica(f: &Fragment, i: usize, why: &[String]) -> EvalError {
    let p = &f.parts[i];
    EvalError::msg(format!(
        "<DataNodeNotAvail>no replica of chunk {} (partition {}) is available to run the query{}",
        p.chunk,
        f.info.scheme.display_path(&p.name),
        if why.is_empty() {
            String::new()
        } else {
            format!("; {}", why.join("; "))
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(alias: &str, live: bool) -> Replica {
        Replica {
            alias: alias.into(),
            host: "127.0.0.1".into(),
            port: 1,
            live,
        }
    }

    fn idle(_: &str) -> (u32, f64) {
        (0, 0.0)
    }

    #[test]
    fn equal_nodes_share_the_partitions() {
        let reps = [
            vec![r("a", true), r("b", true)],
            vec![r("b", true), r("c", true)],
        ];
        let parts: Vec<PartSites<'_>> = (0..6)
            .map(|i| PartSites {
                chunk: i,
                replicas: &reps[(i % 2) as usize],
            })
            .collect();
        let all: Vec<usize> = (0..6).collect();
        let t = assign(&parts, &all, &BTreeSet::new(), &idle).unwrap();
        let sizes: Vec<usize> = t.values().map(|v| v.len()).collect();
        assert_eq!(sizes, vec![2, 2, 2], "{t:?}");
    }

    #[test]
    fn a_failed_node_gets_nothing_and_its_partitions_move() {
        let reps = vec![r("a", true), r("b", true)];
        let parts: Vec<PartSites<'_>> = (0..4)
            .map(|i| PartSites {
                chunk: i,
                replicas: &reps,
            })
            .collect();
        let failed: BTreeSet<String> = ["a".to_string()].into();
        let t = assign(&parts, &[0, 1, 2, 3], &failed, &idle).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t["b"], vec![0, 1, 2, 3]);
    }

    #[test]
    fn no_replica_left_names_the_partition() {
        let reps = vec![r("a", true), r("b", false)];
        let parts = [PartSites {
            chunk: 9,
            replicas: &reps,
        }];
        let failed: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
        assert_eq!(assign(&parts, &[0], &failed, &idle), Err(0));
    }

    #[test]
    fn live_replicas_first_then_a_down_one_when_it_is_the_last() {
        let reps = vec![r("a", false), r("b", true)];
        let parts = [PartSites {
            chunk: 0,
            replicas: &reps,
        }];
        let t = assign(&parts, &[0], &BTreeSet::new(), &idle).unwrap();
        assert_eq!(t.keys().collect::<Vec<_>>(), vec!["b"]);
        let failed: BTreeSet<String> = ["b".to_string()].into();
        let t = assign(&parts, &[0], &failed, &idle).unwrap();
        assert_eq!(t.keys().collect::<Vec<_>>(), vec!["a"]);
    }

    #[test]
    fn a_busier_or_slower_node_gets_less() {
        let reps = vec![r("a", true), r("b", true)];
        let parts: Vec<PartSites<'_>> = (0..4)
            .map(|i| PartSites {
                chunk: i,
                replicas: &reps,
            })
            .collect();
        let busy = |a: &str| if a == "a" { (3, 0.0) } else { (0, 0.0) };
        let t = assign(&parts, &[0, 1, 2, 3], &BTreeSet::new(), &busy).unwrap();
        // Three in flight on a: b takes three before a ties with it.
        assert!(t["b"].len() >= 3, "{t:?}");
        let slow = |a: &str| if a == "a" { (0, 50.0) } else { (0, 5.0) };
        let t = assign(&parts, &[0], &BTreeSet::new(), &slow).unwrap();
        assert_eq!(t.keys().collect::<Vec<_>>(), vec!["b"]);
    }
}
