//! Raft traffic over the node RPC protocol: openraft's network (client side) and the handler
//! a controller runs for its peers' calls (server side). Payloads are bincode.
//!
//! Every replication stream gets its own [`RpcClient`] (its own reused connection), so a
//! slow snapshot transfer to one follower never delays votes or appends to another.
//!
//! Appends are pipelined over a connection of their own, which the follower then serves as a
//! stream: [`super::stream`].

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::Stream;
use openraft::base::{BoxFuture, BoxStream};
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::v2::RaftNetworkV2;
use openraft::network::RPCOption;
use openraft::{BasicNode, RaftNetworkFactory};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    AppendEntriesRequest, AppendEntriesResponse, NodeId, Raft, Snapshot, SnapshotResponse,
    TypeConfig, Vote, VoteRequest, VoteResponse,
};
use crate::rpc::{RpcClient, RpcClientConfig, RpcError};

type StreamAnswer = Result<openraft::raft::StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>;

/// RPC method numbers of the controllers' Raft group.
pub mod method {
    pub const APPEND: u16 = 1;
    pub const VOTE: u16 = 2;
    pub const SNAPSHOT: u16 = 3;
    /// Every frame of a pipelined append stream (see the module header).
    pub const APPEND_STREAM: u16 = 4;
    /// A joining controller's question: what do you hold? (`rejoin::Probe`)
    pub const PROBE: u16 = 5;
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Wire(String);

/// Encodes an RPC payload.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    crate::rpc::encode_payload(v)
}

/// Decodes an RPC payload; malformed input is an error, never a panic.
pub fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, String> {
    crate::rpc::decode_payload(b).map_err(|e| format!("RAFT-001 undecodable raft message: {e}"))
}

/// `host:port:alias` (a member's address, the target of a `<NotLeader>`) → the socket address.
pub fn site_addr(site: &str) -> Option<SocketAddr> {
    let site = crate::config::Site::parse(site.trim()).ok()?;
    crate::server::resolve_addr(&site.host, site.port).ok()
}

/// openraft's network factory: one RPC client per replication stream.
#[derive(Clone)]
pub struct Network {
    pub rpc: RpcClientConfig,
}

pub struct Conn {
    client: Option<RpcClient>,
    target: NodeId,
    rpc: RpcClientConfig,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Conn;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Conn {
        Conn {
            client: site_addr(&node.addr).map(|a| RpcClient::new(a, self.rpc)),
            target,
            rpc: self.rpc,
        }
    }
}

pub(super) fn rpc_error(e: RpcError) -> RPCError<TypeConfig> {
    match e {
        RpcError::Connect { .. } | RpcError::Timeout { .. } | RpcError::Overloaded { .. } => {
            RPCError::Unreachable(Unreachable::new(&Wire(e.to_string())))
        }
        _ => RPCError::Network(NetworkError::new(&Wire(e.to_string()))),
    }
}

impl Conn {
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: u16,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        let Some(client) = &self.client else {
            return Err(RPCError::Unreachable(Unreachable::new(&Wire(format!(
                "controller {} has no usable address",
                self.target
            )))));
        };
        let reply = rt::time::timeout(ttl, client.call(method, encode(req)))
            .await
            .map_err(|e| {
                rpc_error(RpcError::Timeout {
                    peer: client.peer().to_string(),
                    timeout_ms: e.timeout_ms,
                })
            })?
            .map_err(rpc_error)?;
        decode(&reply).map_err(|e| RPCError::Network(NetworkError::new(&Wire(e))))
    }
}

impl RaftNetworkV2<TypeConfig> for Conn {
    type SnapshotData = std::io::Cursor<Vec<u8>>;

    /// Pipelined appends over a connection of their own: [`super::stream`].
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Result<BoxStream<'s, StreamAnswer>, RPCError<TypeConfig>>>
    where
        S: Stream<Item = AppendEntriesRequest> + Unpin + 'static,
    {
        let peer = self.client.as_ref().map(|c| c.peer());
        super::stream::open(peer, self.target, self.rpc, input, option)
    }

    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse, RPCError<TypeConfig>> {
        self.call(method::APPEND, &req, option.soft_ttl()).await
    }

    async fn vote(
        &mut self,
        req: VoteRequest,
        option: RPCOption,
    ) -> Result<VoteResponse, RPCError<TypeConfig>> {
        self.call(method::VOTE, &req, option.soft_ttl()).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse, StreamingError<TypeConfig>> {
        let req = (vote, snapshot.meta, snapshot.snapshot.into_inner());
        let r = self.call(method::SNAPSHOT, &req, option.hard_ttl()).await;
        r.map_err(|e| match e {
            RPCError::Unreachable(u) => StreamingError::Unreachable(u),
            RPCError::Timeout(t) => StreamingError::Timeout(t),
            RPCError::Network(n) => StreamingError::Network(n),
            RPCError::RemoteError(r) => {
                StreamingError::Network(NetworkError::new(&Wire(r.to_string())))
            }
        })
    }
}

/// Serves one Raft RPC from a peer controller. `None` when `method` is not a Raft method.
pub async fn serve(
    raft: &Raft,
    method: u16,
    payload: &[u8],
) -> Option<Result<Vec<u8>, crate::error::RemoteError>> {
    let r = match method {
        method::APPEND => match decode::<AppendEntriesRequest>(payload) {
            Ok(req) => raft
                .append_entries(req)
                .await
                .map(|r| encode(&r))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        },
        method::VOTE => match decode::<VoteRequest>(payload) {
            Ok(req) => raft
                .vote(req)
                .await
                .map(|r| encode(&r))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        },
        method::SNAPSHOT => match decode::<(Vote, super::SnapshotMeta, Vec<u8>)>(payload) {
            Ok((vote, meta, data)) => raft
                .install_full_snapshot(
                    vote,
                    Snapshot {
                        meta,
                        snapshot: std::io::Cursor::new(data),
                    },
                )
                .await
                .map(|r| encode(&r))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        },
        _ => return None,
    };
    Some(r.map_err(|m| crate::error::RemoteError::new(crate::error::ErrorCode::RaftFailed, m)))
}
