//! Pipelined replication: openraft's append stream carried over one node-RPC connection.
//!
//! openraft's replication task produces AppendEntries requests as a stream (a new one as soon
//! as the leader has new entries or a new commit index). The leader side ([`open`]) writes
//! each one the moment it exists, without waiting for the answers to the requests before it,
//! and at most [`STREAM_INFLIGHT_MAX`] stay unanswered. The follower side ([`serve`]) hands
//! them to its Raft in arrival order (`Raft::stream_append`), so its log flushes overlap the
//! leader's next sends and one fsync covers whatever arrived meanwhile. With one request per
//! round trip, a follower's fsync and the leader's batching alternated instead of overlapping.
//!
//! Wire: every frame of the connection has method [`APPEND_STREAM`]. Requests carry
//! `bincode(AppendEntriesRequest)` and ids 1, 2, 3…; a response carries
//! `bincode(StreamAppendResult)` and the id of the request it answers; an error frame carries
//! the follower's fatal error as text.
//!
//! Invariants:
//! - requests go out in the order openraft produced them, on one connection, and the follower
//!   submits them to its Raft in that order;
//! - responses come back in request order; the leader checks each one's id against its oldest
//!   unanswered request, so an answer is never applied to another request's log range;
//! - a stream ends at its first error (a conflict or a higher vote, as openraft requires, or
//!   any I/O, timeout or protocol error), and both ends then drop the connection;
//! - the request writer lives inside the response stream (it is polled with it, not spawned),
//!   so when openraft drops the stream nothing keeps consuming its requests.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};
use openraft::base::{BoxFuture, BoxStream};
use openraft::errors::RPCError;
use openraft::network::RPCOption;
use openraft::raft::StreamAppendResult;
use rt::net::TcpStream;

use super::net::{decode, encode, method::APPEND_STREAM, rpc_error};
use super::{AppendEntriesRequest, LogId, Raft, TypeConfig};
use crate::rpc::{
    read_request, respond, write_frame, Frame, FrameReader, Kind, RpcClientConfig, RpcError,
};

/// Most appends one stream has sent and not yet had answered; the writer waits beyond that.
pub const STREAM_INFLIGHT_MAX: usize = 16;

/// Times an entry-less append yields to the shard's other tasks before it is written. openraft
/// sends one to every follower whenever the commit index moves; written at once, the two
/// notices (and then their answers) took the leader's thread just when the commit's apply and
/// the client's answer were due (ARCHITECTURE D59).
const COMMIT_NOTICE_YIELDS: usize = 3;

type Answer = Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>;

/// What the reader must know of a request it has not seen answered.
struct Sent {
    id: u64,
    prev: Option<LogId>,
    last: Option<LogId>,
}

/// Opens a pipelined append stream to controller `target` at `peer` (`None` when its
/// address is unusable) carrying `input`; see the module header.
pub fn open<'s, S>(
    peer: Option<SocketAddr>,
    target: u64,
    cfg: RpcClientConfig,
    input: S,
    option: RPCOption,
) -> BoxFuture<'s, Result<BoxStream<'s, Answer>, RPCError<TypeConfig>>>
where
    S: Stream<Item = AppendEntriesRequest> + Unpin + 'static,
{
    Box::pin(async move {
        let Some(peer) = peer else {
            return Err(rpc_error(RpcError::Connect {
                peer: format!("controller {target}"),
                reason: "no usable address".into(),
            }));
        };
        let name = peer.to_string();
        let conn = TcpStream::connect(peer, cfg.connect_timeout)
            .await
            .map_err(|e| {
                rpc_error(RpcError::Connect {
                    peer: name.clone(),
                    reason: e.to_string(),
                })
            })?;
        let _ = conn.set_nodelay(true);
        let (rd, mut wr) = conn.into_split();
        let (sent_tx, sent_rx) = rt::sync::channel::<Sent>(STREAM_INFLIGHT_MAX);

        let writer_peer = name.clone();
        let writer = async move {
            let mut input = input;
            let mut id = 0u64;
            while let Some(req) = input.next().await {
                if req.entries.is_empty() {
                    // A commit notice: let the work the same commit woke on this shard (the
                    // apply, the client's answer) go first; nobody waits on the notice.
                    for _ in 0..COMMIT_NOTICE_YIELDS {
                        rt::task::yield_now().await;
                    }
                }
                id += 1;
                let prev = req.prev_log_id;
                let last = req.entries.last().map(|e| e.log_id).or(prev);
                // Waits while STREAM_INFLIGHT_MAX requests are unanswered; fails only when the
                // reader is gone, which ends the stream anyway.
                if sent_tx.send(Sent { id, prev, last }).await.is_err() {
                    return Ok(());
                }
                let frame = Frame {
                    kind: Kind::Request,
                    method: APPEND_STREAM,
                    request_id: id,
                    payload: encode(&req),
                };
                write_frame(&mut wr, &frame).await.map_err(|e| {
                    rpc_error(RpcError::Io {
                        peer: writer_peer.clone(),
                        reason: e.to_string(),
                    })
                })?;
            }
            Ok(())
        };

        let ttl = option.soft_ttl();
        let state = (rd, sent_rx, FrameReader::new(Vec::new()));
        let reader =
            futures_util::stream::unfold(state, move |(mut rd, mut sent_rx, mut input)| {
                let name = name.clone();
                async move {
                    // `None` once the writer has ended and every request it sent is answered.
                    let sent = sent_rx.recv().await?;
                    let read = rt::time::timeout(ttl, input.read_frame(&mut rd)).await;
                    Some((answer(&name, &sent, read), (rd, sent_rx, input)))
                }
            });
        let stream: BoxStream<'s, Answer> = Box::pin(AppendStream {
            writer: Some(Box::pin(writer)),
            writer_error: None,
            reader: Box::pin(reader),
            done: false,
        });
        Ok(stream)
    })
}

/// Checks one response frame against the request it must answer.
fn answer(
    peer: &str,
    sent: &Sent,
    read: Result<Result<Option<Frame>, RpcError>, rt::time::Elapsed>,
) -> Answer {
    let frame = match read {
        Err(e) => {
            return Err(rpc_error(RpcError::Timeout {
                peer: peer.to_string(),
                timeout_ms: e.timeout_ms,
            }))
        }
        Ok(Err(e)) => return Err(rpc_error(e)),
        Ok(Ok(None)) => {
            return Err(rpc_error(RpcError::Io {
                peer: peer.to_string(),
                reason: "the follower closed the append stream".into(),
            }))
        }
        Ok(Ok(Some(f))) => f,
    };
    if frame.request_id != sent.id || frame.method != APPEND_STREAM {
        return Err(rpc_error(RpcError::Protocol(format!(
            "append stream answer {} (method {}) while request {} was the oldest unanswered",
            frame.request_id, frame.method, sent.id
        ))));
    }
    match frame.kind {
        Kind::Response => {
            let r: StreamAppendResult<TypeConfig> =
                decode(&frame.payload).map_err(|e| rpc_error(RpcError::Protocol(e)))?;
            // A success must acknowledge exactly what was sent (or a prefix of it).
            if let Ok(Some(acked)) = &r {
                if Some(*acked) > sent.last || Some(*acked) < sent.prev {
                    return Err(rpc_error(RpcError::Protocol(format!(
                        "follower acknowledged {acked} for a request covering ({:?}, {:?}]",
                        sent.prev, sent.last
                    ))));
                }
            }
            Ok(r)
        }
        _ => Err(rpc_error(
            crate::rpc::answer_payload(frame).expect_err("not a response"),
        )),
    }
}

/// The response stream, driving the request writer each time it is polled.
struct AppendStream<'s> {
    writer: Option<BoxFuture<'s, Result<(), RPCError<TypeConfig>>>>,
    writer_error: Option<RPCError<TypeConfig>>,
    reader: BoxStream<'s, Answer>,
    done: bool,
}

impl Stream for AppendStream<'_> {
    type Item = Answer;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Answer>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(w) = self.writer.as_mut() {
            match w.as_mut().poll(cx) {
                Poll::Pending => {}
                Poll::Ready(r) => {
                    // Dropping the writer closes the queue of sent requests: the reader ends
                    // after answering the ones already on the wire.
                    self.writer = None;
                    self.writer_error = r.err();
                }
            }
        }
        match self.reader.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(a)) => {
                // openraft ends a stream at its first error of either kind.
                self.done = !matches!(a, Ok(Ok(_)));
                Poll::Ready(Some(a))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(self.writer_error.take().map(Err))
            }
        }
    }
}

/// Serves an append stream whose first request (`first`) was just read from `conn` (`input`
/// holds any bytes read past it); see the module header.
pub async fn serve(
    raft: &Raft,
    conn: TcpStream,
    mut input: FrameReader,
    first: Frame,
) -> Result<(), RpcError> {
    let (mut rd, mut wr) = conn.into_split();
    let ids: Rc<RefCell<VecDeque<u64>>> = Rc::default();
    let (req_tx, mut req_rx) = rt::sync::channel::<AppendEntriesRequest>(STREAM_INFLIGHT_MAX);

    let reader_ids = ids.clone();
    let reader = async move {
        let mut next = Some(first);
        loop {
            let frame = match next.take() {
                Some(f) => f,
                None => match read_request(&mut rd, &mut input).await? {
                    Some(f) => f,
                    None => return Ok(()),
                },
            };
            if frame.method != APPEND_STREAM {
                return Err(RpcError::Protocol(format!(
                    "method {} inside an append stream",
                    frame.method
                )));
            }
            let req: AppendEntriesRequest = decode(&frame.payload).map_err(RpcError::Protocol)?;
            reader_ids.borrow_mut().push_back(frame.request_id);
            if req_tx.send(req).await.is_err() {
                return Ok(());
            }
        }
    };

    let writer = async move {
        let input = futures_util::stream::poll_fn(move |cx| req_rx.poll_recv(cx));
        let answers = raft.stream_append(input);
        let mut answers = std::pin::pin!(answers);
        while let Some(item) = answers.next().await {
            let id = ids
                .borrow_mut()
                .pop_front()
                .expect("openraft answers each request it was given, once");
            let (result, last) = match item {
                Ok(r) => {
                    let last = r.is_err();
                    (Ok(encode(&r)), last)
                }
                Err(fatal) => (
                    Err(crate::error::RemoteError::new(
                        crate::error::ErrorCode::RaftFailed,
                        fatal.to_string(),
                    )),
                    true,
                ),
            };
            respond(&mut wr, APPEND_STREAM, id, result).await?;
            if last {
                break;
            }
        }
        Ok(())
    };
    // Whichever side ends first ends the stream; the connection closes with both halves.
    let reader = std::pin::pin!(reader);
    let writer = std::pin::pin!(writer);
    match futures_util::future::select(reader, writer).await {
        futures_util::future::Either::Left((r, _))
        | futures_util::future::Either::Right((r, _)) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::raft::StreamAppendError;
    use openraft::vote::leader_id_std::CommittedLeaderId;

    fn log_id(index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(1), index)
    }

    fn sent(id: u64, prev: u64, last: u64) -> Sent {
        Sent {
            id,
            prev: Some(log_id(prev)),
            last: Some(log_id(last)),
        }
    }

    fn frame(kind: Kind, request_id: u64, payload: Vec<u8>) -> Result<Option<Frame>, RpcError> {
        Ok(Some(Frame {
            kind,
            method: APPEND_STREAM,
            request_id,
            payload,
        }))
    }

    fn ok(r: StreamAppendResult<TypeConfig>) -> Vec<u8> {
        encode(&r)
    }

    #[test]
    fn answers_are_matched_to_the_oldest_unanswered_request() {
        let s = sent(7, 10, 14);
        let good = answer(
            "f",
            &s,
            Ok(frame(Kind::Response, 7, ok(Ok(Some(log_id(14)))))),
        );
        assert_eq!(good.unwrap(), Ok(Some(log_id(14))));
        let partial = answer(
            "f",
            &s,
            Ok(frame(Kind::Response, 7, ok(Ok(Some(log_id(12)))))),
        );
        assert_eq!(
            partial.unwrap(),
            Ok(Some(log_id(12))),
            "a prefix may be acknowledged"
        );
        let conflict = answer(
            "f",
            &s,
            Ok(frame(
                Kind::Response,
                7,
                ok(Err(StreamAppendError::Conflict(log_id(10)))),
            )),
        );
        assert!(matches!(conflict, Ok(Err(StreamAppendError::Conflict(_)))));
    }

    #[test]
    fn a_wrong_id_range_or_frame_ends_the_stream_with_an_error() {
        let s = sent(7, 10, 14);
        let other = answer("f", &s, Ok(frame(Kind::Response, 8, ok(Ok(None)))));
        assert!(other.unwrap_err().to_string().contains("request 7"));
        let beyond = answer(
            "f",
            &s,
            Ok(frame(Kind::Response, 7, ok(Ok(Some(log_id(15)))))),
        );
        assert!(beyond.unwrap_err().to_string().contains("acknowledged"));
        let garbage = answer("f", &s, Ok(frame(Kind::Response, 7, vec![0xff; 3])));
        assert!(garbage.is_err());
        let stopped =
            crate::error::RemoteError::new(crate::error::ErrorCode::RaftFailed, "raft stopped");
        let remote = answer(
            "f",
            &s,
            Ok(frame(Kind::Error, 7, crate::rpc::encode_payload(&stopped))),
        );
        assert!(remote.unwrap_err().to_string().contains("raft stopped"));
        // An error answer that is not a typed error is a protocol violation.
        let untyped = answer("f", &s, Ok(frame(Kind::Error, 7, b"raft stopped".to_vec())));
        assert!(untyped
            .unwrap_err()
            .to_string()
            .contains("undecodable error"));
        let closed = answer("f", &s, Ok(Ok(None)));
        assert!(closed.unwrap_err().to_string().contains("closed"));
    }
}
