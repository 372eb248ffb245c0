//! Calling a peer: one reused connection, re-established after failures.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::time::Duration;

use rt::net::TcpStream;

use super::frame::{read_frame_buffered, write_frame, Frame, Kind};
use super::RpcError;

/// Limits of a client.
#[derive(Debug, Clone, Copy)]
pub struct RpcClientConfig {
    pub connect_timeout: Duration,
    pub call_timeout: Duration,
    /// Most calls waiting on this peer at once (the one on the wire included).
    pub inflight_max: usize,
}

impl Default for RpcClientConfig {
    fn default() -> Self {
        RpcClientConfig {
            connect_timeout: Duration::from_secs(2),
            call_timeout: Duration::from_secs(10),
            inflight_max: 256,
        }
    }
}

/// A client for one peer. Calls on one client go out one at a time over one connection.
pub struct RpcClient {
    peer: SocketAddr,
    cfg: RpcClientConfig,
    /// The reused connection and the bytes read from it past the last answer (none in
    /// practice: one request is in flight at a time).
    conn: RefCell<Option<(TcpStream, Vec<u8>)>>,
    turn: rt::sync::Lock,
    waiting: Cell<usize>,
    next_id: Cell<u64>,
    connects: Cell<u64>,
}

/// Decrements the waiting count however the call ends (also when it is cancelled).
struct Waiting<'a>(&'a Cell<usize>);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl RpcClient {
    pub fn new(peer: SocketAddr, cfg: RpcClientConfig) -> RpcClient {
        assert!(cfg.inflight_max >= 1, "inflight_max must be at least 1");
        RpcClient {
            peer,
            cfg,
            conn: RefCell::new(None),
            turn: rt::sync::Lock::new(),
            waiting: Cell::new(0),
            next_id: Cell::new(1),
            connects: Cell::new(0),
        }
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// How many connections this client has opened (1 while the first one stays healthy).
    pub fn connects(&self) -> u64 {
        self.connects.get()
    }

    /// Calls `method` with `payload` and returns the peer's answer.
    pub async fn call(&self, method: u16, payload: Vec<u8>) -> Result<Vec<u8>, RpcError> {
        if self.waiting.get() >= self.cfg.inflight_max {
            return Err(RpcError::Overloaded {
                peer: self.peer.to_string(),
                inflight_max: self.cfg.inflight_max,
            });
        }
        self.waiting.set(self.waiting.get() + 1);
        let _waiting = Waiting(&self.waiting);
        let _turn = self.turn.lock().await;
        let peer = self.peer.to_string();
        let existing = self.conn.borrow_mut().take();
        let (mut conn, mut buf) = match existing {
            Some(c) => c,
            None => {
                let c = TcpStream::connect(self.peer, self.cfg.connect_timeout)
                    .await
                    .map_err(|e| RpcError::Connect {
                        peer: peer.clone(),
                        reason: e.to_string(),
                    })?;
                let _ = c.set_nodelay(true);
                self.connects.set(self.connects.get() + 1);
                (c, Vec::new())
            }
        };
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let req = Frame {
            kind: Kind::Request,
            method,
            request_id: id,
            payload,
        };
        let result = rt::time::timeout(
            self.cfg.call_timeout,
            exchange(&mut conn, &mut buf, &req, &peer),
        )
        .await;
        let frame = match result {
            Err(_) => {
                return Err(RpcError::Timeout {
                    peer,
                    timeout_ms: self.cfg.call_timeout.as_millis() as u64,
                });
            }
            Ok(r) => r?,
        };
        // A well-formed answer: the connection is healthy and goes back for the next call.
        *self.conn.borrow_mut() = Some((conn, buf));
        answer(frame)
    }
}

/// Sends `req` and reads its answer: a well-formed frame answering this very request. `buf`
/// holds bytes read from `conn` and not consumed yet; reading through it takes one receive
/// per small answer instead of one for the header and one for the payload.
async fn exchange(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    req: &Frame,
    peer: &str,
) -> Result<Frame, RpcError> {
    write_frame(conn, req).await.map_err(|e| RpcError::Io {
        peer: peer.to_string(),
        reason: e.to_string(),
    })?;
    let Some(frame) = read_frame_buffered(conn, buf).await? else {
        return Err(RpcError::Io {
            peer: peer.to_string(),
            reason: "the peer closed the connection".into(),
        });
    };
    if frame.request_id != req.request_id || frame.kind == Kind::Request {
        return Err(RpcError::Protocol(format!(
            "answer to request {} while {} was waiting",
            frame.request_id, req.request_id
        )));
    }
    Ok(frame)
}

/// The payload of a response, or the peer's error.
fn answer(frame: Frame) -> Result<Vec<u8>, RpcError> {
    match frame.kind {
        Kind::Response => Ok(frame.payload),
        _ => Err(RpcError::Remote(
            String::from_utf8_lossy(&frame.payload).into_owned(),
        )),
    }
}

/// One call on a fresh connection, closed afterwards: for tools and tests that make few
/// calls. Unlike [`RpcClient`] the future holds no shared state, so it is `Send` whenever the
/// backend's streams are (simulated clients run it on their own host).
pub async fn call_once(
    peer: SocketAddr,
    method: u16,
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<Vec<u8>, RpcError> {
    let name = peer.to_string();
    let call = async {
        let mut conn = TcpStream::connect(peer, timeout)
            .await
            .map_err(|e| RpcError::Connect {
                peer: name.clone(),
                reason: e.to_string(),
            })?;
        let _ = conn.set_nodelay(true);
        let req = Frame {
            kind: Kind::Request,
            method,
            request_id: 1,
            payload,
        };
        answer(exchange(&mut conn, &mut Vec::new(), &req, &name).await?)
    };
    match rt::time::timeout(timeout, call).await {
        Ok(r) => r,
        Err(_) => Err(RpcError::Timeout {
            peer: name,
            timeout_ms: timeout.as_millis() as u64,
        }),
    }
}
