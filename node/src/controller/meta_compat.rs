//! The metadata as older checkpoint formats encoded it, to read them (ARCHITECTURE D63):
//! format 1 had no `atomic_chunk` and `next_txn`, format 2 no stale replicas. bincode encodes
//! fields in order with no names, so each format needs its own types; a checkpoint is always
//! written in the newest.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::meta::{Chunk, DatabaseMeta, Meta, NodeEntry, Txn};

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
