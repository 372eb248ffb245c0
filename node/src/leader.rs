//! A client of "the leader controller", whichever controller that is now: every role below the
//! controllers (coordinator, data node) reaches the metadata through it.
//!
//! It follows `<NotLeader>host:port:alias` redirects, moves to the next known controller when
//! one is unreachable or knows no leader (`<ControllerNotReady>`), and gives up after
//! `LEADER_WAIT_MS` with `<ControllerNotReady>` — a call never waits forever. Callers send only
//! calls that are safe to repeat (the controller's DFS methods are idempotent), since a call
//! that timed out may have been applied.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use crate::dfs_proto::MetaServer;
use crate::error::{ErrorCode, RemoteError, Retry};
use crate::rpc::{RpcClient, RpcClientConfig, RpcError};

/// How long a call looks for a leader before it fails (an election takes a few seconds).
pub const LEADER_WAIT_MS: u64 = 20_000;
/// Pause before trying the next controller when none answered as leader.
const LEADER_RETRY_PAUSE_MS: u64 = 200;

pub struct LeaderClient {
    /// The controller in this process (the single node's one-member group): called directly.
    local: Option<Rc<dyn MetaServer>>,
    controllers: Vec<SocketAddr>,
    cfg: RpcClientConfig,
    /// The controller believed to lead, and its client.
    current: RefCell<(usize, Option<SocketAddr>, Option<Rc<RpcClient>>)>,
}

impl LeaderClient {
    /// A client of the group `controllers` (in the order to try them).
    pub fn new(controllers: Vec<SocketAddr>) -> LeaderClient {
        LeaderClient {
            local: None,
            controllers,
            cfg: RpcClientConfig {
                connect_timeout: Duration::from_secs(2),
                call_timeout: Duration::from_secs(30),
                inflight_max: 256,
            },
            current: RefCell::new((0, None, None)),
        }
    }

    /// A client of the controller in this process, which leads a group of one.
    pub fn local(server: Rc<dyn MetaServer>) -> LeaderClient {
        LeaderClient {
            local: Some(server),
            ..LeaderClient::new(Vec::new())
        }
    }

    fn client(&self) -> Option<Rc<RpcClient>> {
        let mut cur = self.current.borrow_mut();
        if cur.2.is_none() {
            let addr = cur.1.or_else(|| self.controllers.get(cur.0).copied())?;
            cur.1 = Some(addr);
            cur.2 = Some(Rc::new(RpcClient::new(addr, self.cfg)));
        }
        cur.2.clone()
    }

    fn move_to(&self, addr: Option<SocketAddr>) {
        let mut cur = self.current.borrow_mut();
        match addr {
            Some(a) => cur.1 = Some(a),
            None => {
                cur.0 = (cur.0 + 1) % self.controllers.len().max(1);
                cur.1 = None;
            }
        }
        cur.2 = None;
    }

    /// Calls `method` on the leader.
    pub async fn call(&self, method: u16, payload: Vec<u8>) -> Result<Vec<u8>, RemoteError> {
        let deadline = rt::time::now() + Duration::from_millis(LEADER_WAIT_MS);
        let mut last = String::from("no controller is configured (controllerSite)");
        while rt::time::now() < deadline {
            let (answer, peer) = match &self.local {
                Some(local) => (
                    local
                        .handle(method, payload.clone())
                        .await
                        .map_err(RpcError::Remote),
                    None,
                ),
                None => {
                    let Some(client) = self.client() else {
                        break;
                    };
                    (
                        client.call(method, payload.clone()).await,
                        Some(client.peer()),
                    )
                }
            };
            match answer {
                Ok(reply) => return Ok(reply),
                Err(RpcError::Remote(e)) => match e.retry() {
                    Retry::Redirect => {
                        let to = e.leader.as_deref().and_then(site_addr);
                        if to.is_none() || to == peer {
                            rt::time::sleep(Duration::from_millis(LEADER_RETRY_PAUSE_MS)).await;
                        }
                        self.move_to(to);
                        last = e.to_string();
                    }
                    Retry::OtherNode | Retry::Later => {
                        last = e.to_string();
                        self.move_to(None);
                        rt::time::sleep(Duration::from_millis(LEADER_RETRY_PAUSE_MS)).await;
                    }
                    Retry::Never => return Err(e),
                },
                Err(e) => {
                    last = e.to_string();
                    self.move_to(None);
                    rt::time::sleep(Duration::from_millis(LEADER_RETRY_PAUSE_MS)).await;
                }
            }
        }
        Err(RemoteError::new(
            ErrorCode::ControllerNotReady,
            format!("no controller answered as leader within {LEADER_WAIT_MS} ms: {last}"),
        ))
    }
}

/// The address of a `host:port:alias` site.
pub fn site_addr(site: &str) -> Option<SocketAddr> {
    let site = crate::config::Site::parse(site.trim()).ok()?;
    crate::server::resolve_addr(&site.host, site.port).ok()
}
