//! Errors that cross node RPC: one code space for every role (GreptimeDB's `status_code.rs`),
//! each code with a stable name, DolphinDB's tag where one exists and what a caller should do
//! about it ([`Retry`]). Callers decide by the code, never by matching message text; the
//! message is for people.
//!
//! On the wire an error answer's payload is `bincode(RemoteError)` (node RPC frame version 3).
//! Displayed, an error starts with its tag (`<NotLeader>host:port:alias`,
//! `<ControllerNotReady>…`), which is also what the DolphinDB API and HTTP answer, so the
//! official clients' tag matching keeps working where the error reaches them.

use serde::{Deserialize, Serialize};

/// What a caller can do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Trying again will not help: report it.
    Never,
    /// Send the same call to the node the error names (`RemoteError::leader`).
    Redirect,
    /// Try another node: this one cannot serve the call now.
    OtherNode,
    /// Try the same node again after a pause: what it waits for is transient.
    Later,
}

/// Stable error codes of node RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// This controller is not the leader; the leader it knows is in `leader`.
    NotLeader,
    /// This controller knows no leader yet (an election, or a group without a quorum).
    ControllerNotReady,
    /// This controller is joining its group and takes no Raft traffic yet (ARCHITECTURE D61).
    Joining,
    /// The metadata refused a command (a missing database, a bad table, a transaction step).
    MetaRefused,
    /// The Raft group did not complete a write (storage failure, shutdown).
    RaftFailed,
    /// The request could not be decoded.
    BadRequest,
    /// The node does not serve this method.
    UnknownMethod,
    /// New replicas cannot be placed as dfsReplicationFactor and dfsReplicaReliabilityLevel
    /// ask (too few live data nodes or hosts).
    PlacementFailed,
    /// Another transaction holds the chunk.
    ChunkInTransaction,
    /// No live replica of a chunk could serve the call.
    DataNodeNotAvail,
    /// The data node's storage engine failed the call (corruption, disk, a bad batch).
    StorageFailed,
    /// A forwarded append ran and failed; the message is the script error as the coordinating
    /// data node gave it.
    AppendFailed,
    /// A query fragment ran and failed; the message is the script error as the data node gave
    /// it (another replica would fail the same way).
    QueryFailed,
    /// The answer would not fit in one frame (`FRAME_PAYLOAD_BYTES_MAX`): the caller asks
    /// for less at a time.
    AnswerTooLarge,
    /// This data node's copy of the chunk failed a checksum (D101): another replica serves it
    /// while this one is repaired.
    ReplicaDamaged,
}

impl ErrorCode {
    /// The stable name logs and messages carry.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::NotLeader => "RPC-101",
            ErrorCode::ControllerNotReady => "RPC-102",
            ErrorCode::Joining => "RAFT-010",
            ErrorCode::MetaRefused => "META-000",
            ErrorCode::RaftFailed => "RAFT-002",
            ErrorCode::BadRequest => "RPC-006",
            ErrorCode::UnknownMethod => "RPC-007",
            ErrorCode::PlacementFailed => "CTL-000",
            ErrorCode::ChunkInTransaction => "DFS-001",
            ErrorCode::DataNodeNotAvail => "DFS-002",
            ErrorCode::StorageFailed => "DFS-003",
            ErrorCode::AppendFailed => "DFS-004",
            ErrorCode::QueryFailed => "DFS-005",
            ErrorCode::AnswerTooLarge => "RPC-008",
            ErrorCode::ReplicaDamaged => "DFS-006",
        }
    }

    /// DolphinDB's tag for it, where one exists (what the official clients match).
    pub fn tag(self) -> Option<&'static str> {
        match self {
            ErrorCode::NotLeader => Some("<NotLeader>"),
            ErrorCode::ControllerNotReady | ErrorCode::Joining => Some("<ControllerNotReady>"),
            ErrorCode::ChunkInTransaction => Some("<ChunkInTransaction>"),
            ErrorCode::DataNodeNotAvail => Some("<DataNodeNotAvail>"),
            _ => None,
        }
    }

    pub fn retry(self) -> Retry {
        match self {
            ErrorCode::NotLeader => Retry::Redirect,
            ErrorCode::ControllerNotReady | ErrorCode::Joining => Retry::OtherNode,
            ErrorCode::RaftFailed | ErrorCode::ChunkInTransaction => Retry::Later,
            ErrorCode::DataNodeNotAvail | ErrorCode::ReplicaDamaged => Retry::OtherNode,
            ErrorCode::MetaRefused
            | ErrorCode::BadRequest
            | ErrorCode::UnknownMethod
            | ErrorCode::PlacementFailed
            | ErrorCode::StorageFailed
            | ErrorCode::AppendFailed
            | ErrorCode::QueryFailed
            | ErrorCode::AnswerTooLarge => Retry::Never,
        }
    }
}

/// An error a peer answered a call with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteError {
    pub code: ErrorCode,
    pub message: String,
    /// With [`ErrorCode::NotLeader`]: the leader, as `host:port:alias`.
    pub leader: Option<String>,
}

impl RemoteError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> RemoteError {
        RemoteError {
            code,
            message: message.into(),
            leader: None,
        }
    }

    /// Not the leader: the leader this node knows, or [`ErrorCode::ControllerNotReady`] when it
    /// knows none (a bare `<NotLeader>` names nowhere to go).
    pub fn not_leader(leader: Option<String>) -> RemoteError {
        match leader {
            Some(site) => RemoteError {
                code: ErrorCode::NotLeader,
                message: String::new(),
                leader: Some(site),
            },
            None => RemoteError::new(
                ErrorCode::ControllerNotReady,
                "this controller knows no leader yet; try another controller",
            ),
        }
    }

    pub fn retry(&self) -> Retry {
        self.code.retry()
    }
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, &self.leader) {
            // Exactly the form DolphinDB writes, which the official clients parse.
            (ErrorCode::NotLeader, Some(site)) => write!(f, "<NotLeader>{site}"),
            (code, _) => match code.tag() {
                Some(tag) => write!(f, "{tag}{} {}", code.name(), self.message),
                None => write!(f, "{} {}", code.name(), self.message),
            },
        }
    }
}

impl std::error::Error for RemoteError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_leader_is_a_redirect_and_no_leader_is_not_ready() {
        let e = RemoteError::not_leader(Some("127.0.0.81:8800:controller2".into()));
        assert_eq!(e.to_string(), "<NotLeader>127.0.0.81:8800:controller2");
        assert_eq!(e.retry(), Retry::Redirect);
        let e = RemoteError::not_leader(None);
        assert!(e.to_string().starts_with("<ControllerNotReady>"), "{e}");
        assert_eq!(e.retry(), Retry::OtherNode);
        let e = RemoteError::new(ErrorCode::UnknownMethod, "unknown method 99");
        assert_eq!(e.to_string(), "RPC-007 unknown method 99");
        assert_eq!(e.retry(), Retry::Never);
    }
}
