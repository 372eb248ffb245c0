//! The metadata as older checkpoint formats encoded it, to read them (ARCHITECTURE D63):
//! format 1 had no `atomic_chunk` and `next_txn`, format 2 no stale replicas and client
//! requests, format 3 keyed a request's writes by write alone (no chunk). bincode encodes
//! fields in order with no names, so each format needs its own types; a checkpoint is always
//! written in the newest.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::meta::{Chunk, ClientRequest, DatabaseMeta, Meta, NodeEntry, Txn};

/// A chunk before stale replicas (formats 1 and 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkV2 {
    pub replicas: BTreeSet<String>,
    pub version: u64,
}

impl From<ChunkV2> for Chunk {
    fn from(c: ChunkV2) -> Chunk {
        Chunk {
            replicas: c.replicas,
            version: c.version,
            stale: BTreeMap::new(),
        }
    }
}

/// [`Meta`] as checkpoint format 1 encoded it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetaV1 {
    pub nodes: BTreeMap<String, NodeEntry>,
    pub controller_config: BTreeMap<String, String>,
    pub nodes_config: BTreeMap<String, String>,
    pub databases: BTreeMap<String, DatabaseMeta>,
    pub chunks: BTreeMap<u64, ChunkV2>,
    pub txns: BTreeMap<u64, Txn>,
    pub next_chunk: u64,
}

/// [`Meta`] as checkpoint format 2 encoded it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetaV2 {
    pub nodes: BTreeMap<String, NodeEntry>,
    pub controller_config: BTreeMap<String, String>,
    pub nodes_config: BTreeMap<String, String>,
    pub databases: BTreeMap<String, DatabaseMeta>,
    pub chunks: BTreeMap<u64, ChunkV2>,
    pub txns: BTreeMap<u64, Txn>,
    pub next_chunk: u64,
    pub atomic_chunk: BTreeSet<String>,
    pub next_txn: u64,
}

impl From<MetaV1> for Meta {
    fn from(m: MetaV1) -> Meta {
        let next_txn = m.txns.keys().next_back().map_or(1, |t| t + 1);
        MetaV2 {
            nodes: m.nodes,
            controller_config: m.controller_config,
            nodes_config: m.nodes_config,
            databases: m.databases,
            chunks: m.chunks,
            txns: m.txns,
            next_chunk: m.next_chunk,
            atomic_chunk: BTreeSet::new(),
            next_txn,
        }
        .into()
    }
}

impl From<MetaV2> for Meta {
    fn from(m: MetaV2) -> Meta {
        Meta {
            nodes: m.nodes,
            controller_config: m.controller_config,
            nodes_config: m.nodes_config,
            databases: m.databases,
            chunks: m.chunks.into_iter().map(|(id, c)| (id, c.into())).collect(),
            txns: m.txns,
            next_chunk: m.next_chunk,
            atomic_chunk: m.atomic_chunk,
            next_txn: m.next_txn,
            requests: BTreeMap::new(),
        }
    }
}

/// A client request's writes as format 3 recorded them: by write alone.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClientRequestV3 {
    pub request: u64,
    pub rows: BTreeMap<u32, u64>,
    pub stamp: u64,
}

/// [`Meta`] as checkpoint format 3 encoded it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetaV3 {
    pub nodes: BTreeMap<String, NodeEntry>,
    pub controller_config: BTreeMap<String, String>,
    pub nodes_config: BTreeMap<String, String>,
    pub databases: BTreeMap<String, DatabaseMeta>,
    pub chunks: BTreeMap<u64, Chunk>,
    pub txns: BTreeMap<u64, Txn>,
    pub next_chunk: u64,
    pub atomic_chunk: BTreeSet<String>,
    pub next_txn: u64,
    pub requests: BTreeMap<String, ClientRequestV3>,
}

impl From<MetaV3> for Meta {
    fn from(m: MetaV3) -> Meta {
        Meta {
            nodes: m.nodes,
            controller_config: m.controller_config,
            nodes_config: m.nodes_config,
            databases: m.databases,
            chunks: m.chunks,
            txns: m.txns,
            next_chunk: m.next_chunk,
            atomic_chunk: m.atomic_chunk,
            next_txn: m.next_txn,
            // A write of format 3 was always one transaction: chunk 0.
            requests: m
                .requests
                .into_iter()
                .map(|(client, r)| {
                    let rows = r.rows.into_iter().map(|(w, n)| ((w, 0), n)).collect();
                    (
                        client,
                        ClientRequest {
                            request: r.request,
                            rows,
                            stamp: r.stamp,
                        },
                    )
                })
                .collect(),
        }
    }
}
