//! The leader's housekeeping of transaction records, each monitor round: forget the finished
//! ones (`TXN_DONE`, aborts — D77), and settle the ones left behind — a transaction begun and
//! never decided (a retried `TXN_BEGIN`, a coordinator gone before any participant prepared,
//! so no one ever asks) is aborted after [`STALE_TXN_MS`]; a committed one some participant
//! was not told about is told again, and forgotten once every participant acknowledged.
//! Which records are stale is `decide::resolve_abandoned`'s pure decision.

use std::rc::Rc;

use super::decide::{self, Resolution};
use super::dfs::DATA_NODE_CALL;
use super::meta::{Command, TxnState};
use super::service::ControllerService;
use crate::dfs_proto::method;
use crate::rpc::{encode_payload, RpcClient};

/// A transaction record this leader has not seen move for this long is settled. Far beyond
/// any prepare's time, so a live coordinator is never overtaken (participants that prepared
/// ask much sooner: `dfs::TXN_ABANDON_MS`).
pub const STALE_TXN_MS: u64 = 600_000;
/// Most aborted records swept up in one round.
const FORGET_PER_ROUND_MAX: usize = 1_024;
/// Most stale records settled in one round.
const SETTLE_PER_ROUND_MAX: usize = 64;

impl ControllerService {
    /// One round of housekeeping (the monitor's, on the leader that took over at `since`).
    pub(super) async fn settle_transactions(self: &Rc<Self>, since: u64, now: u64) {
        // Aborted records may go whenever (an unknown transaction is presumed aborted).
        let aborted: Vec<u64> = self.ctl.sm.read(|m| {
            m.txns
                .iter()
                .filter(|(_, t)| t.state == TxnState::Aborted)
                .map(|(id, _)| *id)
                .take(FORGET_PER_ROUND_MAX)
                .collect()
        });
        let ids: Vec<u64> = {
            let mut v = self.volatile.borrow_mut();
            v.finished.extend(aborted);
            let ids: Vec<u64> = std::mem::take(&mut v.finished).into_iter().collect();
            for id in &ids {
                v.began.remove(id);
                v.coordinators.remove(id);
            }
            ids
        };
        if !ids.is_empty() {
            let _ = self.ctl.write(Command::ForgetTxns { ids }).await;
        }
        let stale: Vec<Resolution> = {
            let v = self.volatile.borrow();
            self.ctl
                .sm
                .read(|m| decide::resolve_abandoned(&m.txns, &v.began, since, now, STALE_TXN_MS))
        };
        for r in stale.into_iter().take(SETTLE_PER_ROUND_MAX) {
            match r {
                Resolution::Abort { tid, .. } => {
                    // No commit was recorded: aborting loses nothing acknowledged. The record
                    // goes with the next round's sweep of aborted ones (if the abort was refused
                    // because a commit won, it stays).
                    if let Ok(Ok(_)) = self.ctl.write(Command::AbortTxn { id: tid }).await {
                        self.log.warn(
                            "txn_stale",
                            &format!("transaction {tid} was never decided; aborted"),
                            &[],
                        );
                    }
                }
                Resolution::Commit { tid, participants } => {
                    if self.volatile.borrow_mut().telling.insert(tid) {
                        drop(rt::task::spawn_local(
                            self.clone().tell_commit(tid, participants),
                        ));
                    }
                }
            }
        }
    }

    /// Tells every participant of committed `tid` to commit (idempotent there); once all
    /// acknowledged, the record is finished.
    async fn tell_commit(self: Rc<Self>, tid: u64, participants: Vec<String>) {
        let sites: Vec<(String, u16)> = self.ctl.sm.read(|m| {
            participants
                .iter()
                .filter_map(|a| m.nodes.get(a).map(|n| (n.host.clone(), n.port)))
                .collect()
        });
        let mut all = sites.len() == participants.len();
        for (host, port) in sites {
            let told = match crate::server::resolve_addr(&host, port) {
                Ok(addr) => RpcClient::new(addr, DATA_NODE_CALL)
                    .call(method::CHUNK_COMMIT, encode_payload(&tid))
                    .await
                    .is_ok(),
                Err(_) => false,
            };
            all &= told;
        }
        let committed = self.ctl.sm.read(|m| {
            m.txns
                .get(&tid)
                .is_some_and(|t| t.state == TxnState::Committed)
        });
        let mut v = self.volatile.borrow_mut();
        v.telling.remove(&tid);
        if all && committed {
            v.finished.insert(tid);
            v.began.remove(&tid);
        } else {
            // Not everyone heard: ask again a full period later.
            v.began.insert(tid, rt::time::unix_time_ms());
        }
    }
}
