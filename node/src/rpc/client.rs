//! Calling a peer: one reused connection carrying many calls at once, re-established after
//! failures.
//!
//! Calls are multiplexed: each request goes out with a fresh id the moment it is made, and a
//! driver task (one per connection) writes what callers queued and hands every answer to the
//! call waiting on its id, in whatever order the peer answers. Requests queued together leave
//! in one write; answers that arrive together are taken from one read.
//!
//! Invariants:
//! - ids on a connection are never reused, and an answer is delivered only to the call that
//!   sent its id; an answer to an id never sent is a protocol error that ends the connection;
//!   an answer to a call that gave up (timed out or was dropped) is discarded;
//! - at most `inflight_max` calls wait on one client; more fail fast with `Overloaded`;
//! - a connection ends at its first I/O or protocol error, failing every call waiting on it,
//!   and the next call connects again; a call that times out with nothing heard on its
//!   connection since it was sent also ends the connection (the peer may be gone without a
//!   reset), while a timeout on a connection that keeps answering leaves it to the others;
//! - one connection attempt at a time: calls that wait behind an attempt use the connection it
//!   opened, or fail with its error, rather than each waiting out a connect timeout of its own;
//! - the driver ends with its connection: when the connection fails, or when the client that
//!   owns it is dropped.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use rt::net::TcpStream;
use tokio::sync::oneshot;

use super::frame::{
    read_frame, write_frame, Frame, FrameReader, FrameWriter, Kind, FRAME_PAYLOAD_BYTES_MAX,
};
use super::RpcError;

/// Limits of a client.
#[derive(Debug, Clone, Copy)]
pub struct RpcClientConfig {
    pub connect_timeout: Duration,
    pub call_timeout: Duration,
    /// Most calls waiting on this peer at once.
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

/// A client for one peer: calls from any number of tasks of this shard share one connection.
pub struct RpcClient {
    peer: SocketAddr,
    cfg: RpcClientConfig,
    conn: RefCell<Option<Rc<Conn>>>,
    /// Held while connecting, so concurrent first calls open one connection, not many.
    connecting: rt::sync::Lock,
    /// Connection attempts finished, and why the last one failed (if it did).
    attempts: Cell<u64>,
    connect_error: RefCell<Option<RpcError>>,
    waiting: Cell<usize>,
    connects: Cell<u64>,
}

/// One connection's state, shared by its callers and its driver.
struct Conn {
    peer: String,
    state: RefCell<ConnState>,
}

type AnswerTx = oneshot::Sender<Result<Frame, RpcError>>;

struct ConnState {
    /// Calls waiting for an answer, by request id.
    calls: HashMap<u64, AnswerTx>,
    /// Encoded requests not yet handed to the socket (the driver writes them).
    out: FrameWriter,
    next_id: u64,
    /// Frames received so far (a call that times out checks whether anything arrived).
    heard: u64,
    /// Why the connection ended, once it has.
    ended: Option<RpcError>,
    driver: Option<Waker>,
}

impl Conn {
    fn is_open(&self) -> bool {
        self.state.borrow().ended.is_none()
    }

    /// Queues a request; returns its id and where its answer will arrive.
    fn send(
        &self,
        method: u16,
        payload: Vec<u8>,
    ) -> Result<(u64, oneshot::Receiver<Result<Frame, RpcError>>), RpcError> {
        too_large(payload.len())?;
        let mut s = self.state.borrow_mut();
        if let Some(e) = &s.ended {
            return Err(e.clone());
        }
        s.next_id += 1;
        let id = s.next_id;
        s.out.push_frame(Frame {
            kind: Kind::Request,
            method,
            request_id: id,
            payload,
        });
        let (tx, rx) = oneshot::channel();
        s.calls.insert(id, tx);
        if let Some(w) = s.driver.take() {
            w.wake();
        }
        Ok((id, rx))
    }

    /// Ends the connection: every waiting call fails with `why`, and the driver stops.
    fn end(&self, why: RpcError) {
        let (calls, driver) = {
            let mut s = self.state.borrow_mut();
            if s.ended.is_some() {
                return;
            }
            s.ended = Some(why.clone());
            s.out = FrameWriter::default();
            (std::mem::take(&mut s.calls), s.driver.take())
        };
        for (_, tx) in calls {
            let _ = tx.send(Err(why.clone()));
        }
        if let Some(w) = driver {
            w.wake();
        }
    }

    fn io_error(&self, reason: impl ToString) -> RpcError {
        RpcError::Io {
            peer: self.peer.clone(),
            reason: reason.to_string(),
        }
    }

    /// Delivers one frame from the peer to the call waiting on it.
    fn deliver(&self, frame: Frame) -> Result<(), RpcError> {
        let mut s = self.state.borrow_mut();
        if frame.kind == Kind::Request || frame.request_id == 0 || frame.request_id > s.next_id {
            return Err(RpcError::Protocol(format!(
                "{} sent a {:?} frame for request {}, which was never sent",
                self.peer, frame.kind, frame.request_id
            )));
        }
        s.heard += 1;
        if let Some(tx) = s.calls.remove(&frame.request_id) {
            let _ = tx.send(Ok(frame));
        }
        Ok(())
    }
}

/// Decrements the waiting count however the call ends (also when it is cancelled).
struct Waiting<'a>(&'a Cell<usize>);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Forgets a call's id once it stops waiting (answered, timed out or dropped), so a late
/// answer finds nobody.
struct Forget<'a> {
    conn: &'a Conn,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.conn.state.borrow_mut().calls.remove(&self.id);
    }
}

/// Steps one poll of a connection's driver may take before it lets other tasks run.
const POLL_STEPS_MAX: usize = 32;

/// Drives one connection: writes queued requests, reads answers, until it ends.
async fn drive(conn: Rc<Conn>, stream: TcpStream) {
    let (mut rd, mut wr) = stream.into_split();
    let mut input = FrameReader::new(Vec::new());
    let result = std::future::poll_fn(|cx| {
        let mut steps = 0;
        loop {
            if conn.state.borrow().ended.is_some() {
                return Poll::Ready(Ok(()));
            }
            let mut progressed = match conn.state.borrow_mut().out.poll_write_out(cx, &mut wr) {
                Ok(wrote) => wrote,
                Err(e) => return Poll::Ready(Err(conn.io_error(e))),
            };
            match input.poll_fill(cx, &mut rd) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(conn.io_error("the peer closed the connection")))
                }
                Poll::Ready(Ok(_)) => {
                    progressed = true;
                    loop {
                        match input.next_frame() {
                            Ok(Some(frame)) => {
                                if let Err(e) = conn.deliver(frame) {
                                    return Poll::Ready(Err(e));
                                }
                            }
                            Ok(None) => break,
                            Err(e) => return Poll::Ready(Err(e)),
                        }
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(conn.io_error(e))),
                Poll::Pending => {}
            }
            if !progressed {
                // Callers queueing a request wake the driver through this.
                conn.state.borrow_mut().driver = Some(cx.waker().clone());
                return Poll::Pending;
            }
            steps += 1;
            if steps == POLL_STEPS_MAX {
                // Still busy: come back after the other tasks of this shard had their turn.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    })
    .await;
    if let Err(e) = result {
        conn.end(e);
    }
}

impl RpcClient {
    pub fn new(peer: SocketAddr, cfg: RpcClientConfig) -> RpcClient {
        assert!(cfg.inflight_max >= 1, "inflight_max must be at least 1");
        RpcClient {
            peer,
            cfg,
            conn: RefCell::new(None),
            connecting: rt::sync::Lock::new(),
            attempts: Cell::new(0),
            connect_error: RefCell::new(None),
            waiting: Cell::new(0),
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

    /// How many connection attempts of this client have finished (successfully or not).
    pub fn connect_attempts(&self) -> u64 {
        self.attempts.get()
    }

    /// The open connection, or a new one.
    async fn connection(&self) -> Result<Rc<Conn>, RpcError> {
        let open = || self.conn.borrow().as_ref().filter(|c| c.is_open()).cloned();
        if let Some(c) = open() {
            return Ok(c);
        }
        let attempts_before = self.attempts.get();
        let _connecting = self.connecting.lock().await;
        if let Some(c) = open() {
            return Ok(c);
        }
        if self.attempts.get() != attempts_before {
            // An attempt made while this call waited failed: share its answer rather than
            // have every queued call wait out a connect timeout of its own.
            if let Some(e) = self.connect_error.borrow().clone() {
                return Err(e);
            }
        }
        let peer = self.peer.to_string();
        let attempt = TcpStream::connect(self.peer, self.cfg.connect_timeout).await;
        // Counted once finished: a call that started waiting during an attempt shares it.
        self.attempts.set(self.attempts.get() + 1);
        let stream = match attempt {
            Ok(s) => s,
            Err(e) => {
                let e = RpcError::Connect {
                    peer: peer.clone(),
                    reason: e.to_string(),
                };
                *self.connect_error.borrow_mut() = Some(e.clone());
                return Err(e);
            }
        };
        *self.connect_error.borrow_mut() = None;
        let _ = stream.set_nodelay(true);
        self.connects.set(self.connects.get() + 1);
        let conn = Rc::new(Conn {
            peer,
            state: RefCell::new(ConnState {
                calls: HashMap::new(),
                out: FrameWriter::default(),
                next_id: 0,
                heard: 0,
                ended: None,
                driver: None,
            }),
        });
        drop(rt::task::spawn_local(drive(conn.clone(), stream)));
        *self.conn.borrow_mut() = Some(conn.clone());
        Ok(conn)
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
        let conn = self.connection().await?;
        let (id, rx) = conn.send(method, payload)?;
        let _forget = Forget { conn: &conn, id };
        let heard_before = conn.state.borrow().heard;
        match rt::time::timeout(self.cfg.call_timeout, rx).await {
            Ok(Ok(answer_or_error)) => answer_payload(answer_or_error?),
            Ok(Err(_)) => Err(conn.io_error("the connection ended")),
            Err(_) => {
                let timeout = RpcError::Timeout {
                    peer: conn.peer.clone(),
                    timeout_ms: self.cfg.call_timeout.as_millis() as u64,
                };
                if conn.state.borrow().heard == heard_before {
                    // Silence since this call was sent: the peer may be gone without a reset.
                    conn.end(timeout.clone());
                }
                Err(timeout)
            }
        }
    }
}

impl Drop for RpcClient {
    fn drop(&mut self) {
        if let Some(c) = self.conn.get_mut().take() {
            c.end(RpcError::Io {
                peer: c.peer.clone(),
                reason: "the client was dropped".into(),
            });
        }
    }
}

/// A request too large for one frame is refused here, before any byte is sent.
fn too_large(len: usize) -> Result<(), RpcError> {
    if len > FRAME_PAYLOAD_BYTES_MAX {
        return Err(RpcError::Protocol(format!(
            "a request of {len} bytes is over the frame limit of {FRAME_PAYLOAD_BYTES_MAX}"
        )));
    }
    Ok(())
}

/// The payload of a response, or the peer's (typed) error.
pub fn answer_payload(frame: Frame) -> Result<Vec<u8>, RpcError> {
    match frame.kind {
        Kind::Response => Ok(frame.payload),
        _ => match super::decode_payload::<crate::error::RemoteError>(&frame.payload) {
            Ok(e) => Err(RpcError::Remote(e)),
            Err(why) => Err(RpcError::Protocol(format!(
                "an undecodable error answer: {why}"
            ))),
        },
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
        too_large(payload.len())?;
        let req = Frame {
            kind: Kind::Request,
            method,
            request_id: 1,
            payload,
        };
        let io = |reason: String| RpcError::Io {
            peer: name.clone(),
            reason,
        };
        write_frame(&mut conn, &req)
            .await
            .map_err(|e| io(e.to_string()))?;
        // One frame on a connection used once: nothing past it needs keeping.
        let Some(frame) = read_frame(&mut conn).await? else {
            return Err(io("the peer closed the connection".into()));
        };
        if frame.request_id != req.request_id || frame.kind == Kind::Request {
            return Err(RpcError::Protocol(format!(
                "answer to request {} while {} was waiting",
                frame.request_id, req.request_id
            )));
        }
        answer_payload(frame)
    };
    match rt::time::timeout(timeout, call).await {
        Ok(r) => r,
        Err(_) => Err(RpcError::Timeout {
            peer: name,
            timeout_ms: timeout.as_millis() as u64,
        }),
    }
}
