//! Serving RPC frames on one connection.

use std::future::Future;

use rt::net::{Read, TcpStream, Write};

use super::frame::{read_frame_buffered, write_frame, Frame, Kind};
use super::RpcError;

/// Serves requests on `stream` one after another until the peer closes it. A malformed frame
/// ends this connection (and only it) with the error.
pub async fn serve_connection<H, Fut>(stream: TcpStream, handler: &H) -> Result<(), RpcError>
where
    H: Fn(u16, Vec<u8>) -> Fut,
    Fut: Future<Output = Result<Vec<u8>, String>>,
{
    serve_connection_after(stream, Vec::new(), handler).await
}

/// Like [`serve_connection`], for a connection whose first bytes (`prefix`) were already read
/// while finding out which protocol it speaks.
pub async fn serve_connection_after<H, Fut>(
    mut stream: TcpStream,
    prefix: Vec<u8>,
    handler: &H,
) -> Result<(), RpcError>
where
    H: Fn(u16, Vec<u8>) -> Fut,
    Fut: Future<Output = Result<Vec<u8>, String>>,
{
    let _ = stream.set_nodelay(true);
    let mut buf = prefix;
    while let Some(req) = read_request(&mut stream, &mut buf).await? {
        let result = handler(req.method, req.payload).await;
        respond(&mut stream, req.method, req.request_id, result).await?;
    }
    Ok(())
}

/// Reads the next request through `buf` (bytes already read stay there). `Ok(None)` when the
/// peer closed the connection between frames; any frame but a request is a protocol error.
pub async fn read_request(
    stream: &mut impl Read,
    buf: &mut Vec<u8>,
) -> Result<Option<Frame>, RpcError> {
    let Some(req) = read_frame_buffered(stream, buf).await? else {
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

/// Answers request `request_id` of `method`: a response frame, or an error frame carrying the
/// message.
pub async fn respond(
    stream: &mut impl Write,
    method: u16,
    request_id: u64,
    result: Result<Vec<u8>, String>,
) -> Result<(), RpcError> {
    let (kind, payload) = match result {
        Ok(p) => (Kind::Response, p),
        Err(msg) => (Kind::Error, msg.into_bytes()),
    };
    let resp = Frame {
        kind,
        method,
        request_id,
        payload,
    };
    write_frame(stream, &resp).await.map_err(|e| RpcError::Io {
        peer: "client".into(),
        reason: e.to_string(),
    })
}
