//! Serving RPC frames on one connection.

use std::future::Future;

use rt::net::TcpStream;

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
    loop {
        let Some(req) = read_frame_buffered(&mut stream, &mut buf).await? else {
            return Ok(());
        };
        if req.kind != Kind::Request {
            return Err(RpcError::Protocol(format!(
                "a client sent a {:?} frame",
                req.kind
            )));
        }
        let (kind, payload) = match handler(req.method, req.payload).await {
            Ok(p) => (Kind::Response, p),
            Err(msg) => (Kind::Error, msg.into_bytes()),
        };
        let resp = Frame {
            kind,
            method: req.method,
            request_id: req.request_id,
            payload,
        };
        write_frame(&mut stream, &resp)
            .await
            .map_err(|e| RpcError::Io {
                peer: "client".into(),
                reason: e.to_string(),
            })?;
    }
}
