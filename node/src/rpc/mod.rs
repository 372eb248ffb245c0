//! Node RPC: the one framed binary protocol every node-to-node call uses (controller Raft
//! traffic, heartbeats over TCP, 2PC, sub-queries), over `rt` TCP.
//!
//! Frame (little-endian, 24-byte header read with zerocopy, then the payload):
//!
//! ```text
//! 0  [4] magic "PRPC"     8  u64 request id
//! 4  u8  version (3)      16 u32 payload length (<= FRAME_PAYLOAD_BYTES_MAX)
//! 5  u8  kind             20 u32 crc32 of bytes 0..20, then of the payload
//! 6  u16 method
//! ```
//!
//! An error answer's payload is `bincode(crate::error::RemoteError)`: a typed code, never text
//! to match (version 3; version 2's error payload was the message).
//!
//! Invariants:
//! - Anything a peer sends that is not a well-formed frame (bad magic, version, kind, length
//!   over the bound, crc mismatch, a response to nothing) closes *that* connection only; the
//!   length is checked before any buffer is allocated.
//! - A connection carries many calls at once: each request has an id never used before on
//!   that connection, the server handles up to `SERVER_INFLIGHT_MAX` of a connection's
//!   requests concurrently and answers each as it finishes, and the client hands every answer
//!   to the call that sent its id (`client`, `server`). An answer to an id never sent ends the
//!   connection; a late answer to a call that gave up is discarded.
//! - At most `inflight_max` calls wait on one client; more fail fast with `Overloaded`.
//! - A connection whose first request opens a *stream* (Raft's pipelined appends,
//!   `controller::raft::stream`) is not served this way: every frame on it belongs to the
//!   stream, and responses come back strictly in request order, each naming its request id,
//!   which both ends check.

mod client;
mod frame;
mod server;

pub use client::{answer_payload, call_once, RpcClient, RpcClientConfig};
pub use frame::{
    decode_datagram, encode as encode_frame, read_frame, write_frame, Frame, FrameHeader,
    FrameReader, Kind, FRAME_HEADER_BYTES, FRAME_PAYLOAD_BYTES_MAX, FRAME_VERSION,
};
pub use server::{
    read_request, respond, serve_connection, serve_connection_after, SERVER_INFLIGHT_MAX,
};

/// Encodes a node-RPC payload (bincode).
pub fn encode_payload<T: serde::Serialize>(v: &T) -> Vec<u8> {
    bincode::serialize(v).expect("node RPC payloads encode")
}

/// Decodes a node-RPC payload; malformed input is an error, never a panic, and a hostile
/// length prefix cannot make bincode allocate more than the frame justifies.
pub fn decode_payload<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, String> {
    decode_borrowed(b)
}

/// [`decode_payload`] into a value that may borrow from `b` (byte strings are not copied).
pub fn decode_borrowed<'a, T: serde::Deserialize<'a>>(b: &'a [u8]) -> Result<T, String> {
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .with_limit(b.len() as u64 * 4 + 1024)
        .deserialize(b)
        .map_err(|e| e.to_string())
}

/// Decodes a request's payload as a server does: malformed input is the caller's error
/// (`BadRequest`), answered, never a panic.
pub fn decode_request<T: serde::de::DeserializeOwned>(
    payload: &[u8],
) -> Result<T, crate::error::RemoteError> {
    decode_payload(payload).map_err(|e| {
        crate::error::RemoteError::new(
            crate::error::ErrorCode::BadRequest,
            format!("undecodable request: {e}"),
        )
    })
}

/// RPC failures, each with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("RPC-001 cannot reach {peer}: {reason}")]
    Connect { peer: String, reason: String },
    #[error("RPC-002 call to {peer} timed out after {timeout_ms} ms")]
    Timeout { peer: String, timeout_ms: u64 },
    #[error("RPC-003 connection to {peer} failed: {reason}")]
    Io { peer: String, reason: String },
    #[error("RPC-004 malformed frame: {0}")]
    Protocol(String),
    /// The peer handled the call and answered with an error (typed: `crate::error`).
    #[error("{0}")]
    Remote(crate::error::RemoteError),
    #[error("RPC-005 {peer} has {inflight_max} calls in flight already; try again")]
    Overloaded { peer: String, inflight_max: usize },
}

impl RpcError {
    pub fn code(&self) -> &'static str {
        match self {
            RpcError::Connect { .. } => "RPC-001",
            RpcError::Timeout { .. } => "RPC-002",
            RpcError::Io { .. } => "RPC-003",
            RpcError::Protocol(_) => "RPC-004",
            RpcError::Remote(e) => e.code.name(),
            RpcError::Overloaded { .. } => "RPC-005",
        }
    }
}
