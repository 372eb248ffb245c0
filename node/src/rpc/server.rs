//! Serving RPC frames on one connection: requests are handled concurrently (at most
//! [`SERVER_INFLIGHT_MAX`] at once) and each answer is written as soon as it is ready, in
//! whatever order the handlers finish; the answer names its request id.
//!
//! One task drives the whole connection as a poll-driven state machine (read, start handlers,
//! collect answers, write), so answers that finish together leave in one write and requests
//! that arrive together are taken from one read.
//!
//! Invariants:
//! - at most `SERVER_INFLIGHT_MAX` handlers run per connection, and reading stops while that
//!   many run or while `OUT_BYTES_MAX` bytes of answers wait for the peer to read them, so a
//!   peer that floods requests or never reads is held back by TCP instead of memory;
//! - a malformed frame, or any frame but a request, ends this connection (and only it) with the
//!   error; handlers still running are dropped with it;
//! - when the peer closes its side, the handlers already started finish and their answers are
//!   written before the connection ends.

use std::future::Future;
use std::task::Poll;

use futures_util::stream::{FuturesUnordered, StreamExt};
use rt::net::{Read, TcpStream, Write};

use super::frame::{write_frame, Frame, FrameReader, FrameWriter, Kind, FRAME_PAYLOAD_BYTES_MAX};
use super::RpcError;
use crate::error::{ErrorCode, RemoteError};

/// Most requests of one connection handled at once.
pub const SERVER_INFLIGHT_MAX: usize = 256;
/// Answers waiting to be written beyond this many bytes stop the reading of new requests.
const OUT_BYTES_MAX: usize = 4 << 20;
/// Steps one poll of a connection may take before it lets other tasks run.
const POLL_STEPS_MAX: usize = 32;

/// Serves requests on `stream` until the peer closes it; see the module header.
pub async fn serve_connection<H, Fut>(stream: TcpStream, handler: &H) -> Result<(), RpcError>
where
    H: Fn(u16, Vec<u8>) -> Fut,
    Fut: Future<Output = Result<Vec<u8>, RemoteError>>,
{
    serve_connection_after(stream, FrameReader::new(Vec::new()), None, handler).await
}

/// Like [`serve_connection`], for a connection whose first bytes were already read (into
/// `input`) while finding out which protocol it speaks, and whose first request (`first`) may
/// already have been taken from them.
pub async fn serve_connection_after<H, Fut>(
    stream: TcpStream,
    mut input: FrameReader,
    first: Option<Frame>,
    handler: &H,
) -> Result<(), RpcError>
where
    H: Fn(u16, Vec<u8>) -> Fut,
    Fut: Future<Output = Result<Vec<u8>, RemoteError>>,
{
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut handling = FuturesUnordered::new();
    let start = |req: Frame| {
        let answer = handler(req.method, req.payload);
        async move { (req.method, req.request_id, answer.await) }
    };
    if let Some(req) = first {
        handling.push(start(req));
    }
    let mut out = FrameWriter::default();
    let mut peer_closed = false;
    std::future::poll_fn(|cx| {
        for _ in 0..POLL_STEPS_MAX {
            let mut progressed = false;
            while let Poll::Ready(Some((method, id, result))) = handling.poll_next_unpin(cx) {
                out.push_frame(answer_frame(method, id, result));
                progressed = true;
            }
            match out.poll_write_out(cx, &mut wr) {
                Ok(wrote) => progressed |= wrote,
                Err(e) => return Poll::Ready(Err(io(e))),
            }
            while handling.len() < SERVER_INFLIGHT_MAX {
                match input.next_frame() {
                    Ok(Some(req)) if req.kind == Kind::Request => {
                        handling.push(start(req));
                        progressed = true;
                    }
                    Ok(Some(f)) => {
                        return Poll::Ready(Err(RpcError::Protocol(format!(
                            "a client sent a {:?} frame",
                            f.kind
                        ))))
                    }
                    Ok(None) => break,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            if !peer_closed && handling.len() < SERVER_INFLIGHT_MAX && out.pending() < OUT_BYTES_MAX
            {
                match input.poll_fill(cx, &mut rd) {
                    Poll::Ready(Ok(0)) => {
                        if !input.is_empty() {
                            return Poll::Ready(Err(RpcError::Protocol(
                                "connection closed inside a frame".into(),
                            )));
                        }
                        peer_closed = true;
                        progressed = true;
                    }
                    Poll::Ready(Ok(_)) => progressed = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(io(e))),
                    Poll::Pending => {}
                }
            }
            if peer_closed && handling.is_empty() && out.is_idle() {
                return Poll::Ready(Ok(()));
            }
            if !progressed {
                return Poll::Pending;
            }
        }
        // Still busy: come back after the other tasks of this shard had their turn.
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

fn io(e: impl ToString) -> RpcError {
    RpcError::Io {
        peer: "client".into(),
        reason: e.to_string(),
    }
}

/// The frame answering request `request_id` of `method`: a response, or an error frame
/// carrying the typed error. An answer too large for a frame is an error too: the caller
/// hears why instead of waiting for a frame that can never be sent.
fn answer_frame(method: u16, request_id: u64, result: Result<Vec<u8>, RemoteError>) -> Frame {
    let result = match result {
        Ok(p) if p.len() > FRAME_PAYLOAD_BYTES_MAX => Err(RemoteError::new(
            ErrorCode::AnswerTooLarge,
            format!(
                "the answer to method {method} is {} bytes, over the frame limit of {FRAME_PAYLOAD_BYTES_MAX}",
                p.len()
            ),
        )),
        r => r,
    };
    let (kind, payload) = match result {
        Ok(p) => (Kind::Response, p),
        Err(e) => (Kind::Error, super::encode_payload(&e)),
    };
    Frame {
        kind,
        method,
        request_id,
        payload,
    }
}

/// Reads the next request through `input` (bytes read past it stay there). `Ok(None)` when
/// the peer closed the connection between frames; any frame but a request is a protocol error.
pub async fn read_request(
    stream: &mut impl Read,
    input: &mut FrameReader,
) -> Result<Option<Frame>, RpcError> {
    let Some(req) = input.read_frame(stream).await? else {
        return Ok(None);
    };
    if req.kind != Kind::Request {
        return Err(RpcError::Protocol(format!(
            "a client sent a {:?} frame",
            req.kind
        )));
    }
    Ok(Some(req))
}

/// Answers request `request_id` of `method` on a connection served one request at a time
/// (an append stream): a response frame, or an error frame carrying the message.
pub async fn respond(
    stream: &mut impl Write,
    method: u16,
    request_id: u64,
    result: Result<Vec<u8>, RemoteError>,
) -> Result<(), RpcError> {
    write_frame(stream, &answer_frame(method, request_id, result))
        .await
        .map_err(io)
}
