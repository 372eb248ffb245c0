//! A metadata client for scenarios: writes `key=value` pairs to the controllers' nodes
//! configuration the way a node would, following `<NotLeader>` redirects and moving to the
//! next controller it knows when one is unreachable. It records what it attempted, what was
//! acknowledged (and when), and every redirect it followed, for the invariants to judge.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use node::controller::meta::{Command, Meta};
use node::controller::raft::net::{self, site_addr};
use node::controller::raft::Reply;
use node::controller::service::method;
use node::rpc::{call_once, RpcError};

/// What a writer observed.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    pub attempted: BTreeMap<String, String>,
    pub acked: BTreeMap<String, String>,
    /// Virtual ms at which each acknowledged key was acknowledged.
    pub acked_at: BTreeMap<String, u64>,
    /// The `host:port:alias` named by every redirect followed.
    pub redirects: Vec<String>,
    pub failures: u64,
}

impl Observed {
    /// Adds what a later writer observed (its keys are its own).
    pub fn merge(&mut self, later: Observed) {
        self.attempted.extend(later.attempted);
        self.acked.extend(later.acked);
        self.acked_at.extend(later.acked_at);
        self.redirects.extend(later.redirects);
        self.failures += later.failures;
    }
}

/// One write, following at most `hops_max` redirects. `Ok(())` only when acknowledged.
pub async fn write_once(
    controllers: &[SocketAddr],
    start: usize,
    cmd: &Command,
    timeout: Duration,
    redirects: &mut Vec<String>,
) -> Result<(), String> {
    let mut target = controllers[start % controllers.len()];
    let payload = net::encode(cmd);
    for _ in 0..4 {
        match call_once(target, method::META_WRITE, payload.clone(), timeout).await {
            Ok(bytes) => {
                let reply: Reply = net::decode(&bytes)?;
                return reply.map(|_| ()).map_err(|e| e.to_string());
            }
            // Decided by the error's code, not its text.
            Err(RpcError::Remote(e)) => match (e.retry(), e.leader.as_deref()) {
                (node::error::Retry::Redirect, Some(site)) => {
                    redirects.push(site.to_string());
                    target = site_addr(site).ok_or_else(|| format!("bad redirect {e}"))?;
                }
                _ => return Err(e.to_string()),
            },
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("too many redirects".into())
}

/// Writes `count` keys `<prefix><i>` one after another (pausing `pause` between writes and
/// retrying each until acknowledged or `attempts_max` failed tries), into `out`.
pub async fn run_writer(
    controllers: Vec<SocketAddr>,
    prefix: String,
    count: usize,
    pause: Duration,
    attempts_max: u32,
    out: Arc<Mutex<Observed>>,
) {
    let mut at = 0usize;
    for i in 0..count {
        let key = format!("{prefix}{i}");
        let value = format!("v{i}");
        out.lock()
            .unwrap()
            .attempted
            .insert(key.clone(), value.clone());
        let cmd = Command::SetConfig {
            controller: false,
            key: key.clone(),
            value: value.clone(),
        };
        for _ in 0..attempts_max {
            let mut redirects = Vec::new();
            let r = write_once(
                &controllers,
                at,
                &cmd,
                Duration::from_secs(2),
                &mut redirects,
            )
            .await;
            let acked = {
                let mut o = out.lock().unwrap();
                o.redirects.extend(redirects);
                match r {
                    Ok(()) => {
                        o.acked.insert(key.clone(), value.clone());
                        o.acked_at.insert(key.clone(), rt::time::unix_time_ms());
                        true
                    }
                    Err(_) => {
                        o.failures += 1;
                        at += 1; // try the next controller it knows
                        false
                    }
                }
            };
            if acked {
                break;
            }
            rt::time::sleep(Duration::from_millis(200)).await;
        }
        rt::time::sleep(pause).await;
    }
}

/// Reads the metadata from whichever controller leads (linearizable read on the leader).
pub async fn read_meta(controllers: &[SocketAddr]) -> Option<Meta> {
    for _ in 0..50 {
        for c in controllers {
            match call_once(*c, method::META_READ, Vec::new(), Duration::from_secs(2)).await {
                Ok(bytes) => return net::decode(&bytes).ok(),
                Err(_) => continue,
            }
        }
        rt::time::sleep(Duration::from_millis(200)).await;
    }
    None
}
