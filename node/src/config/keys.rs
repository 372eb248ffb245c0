//! Every configuration key Porpoise understands: its type, bounds, default, which roles read it,
//! and what it does. README's configuration reference is generated from this table
//! (`porpoise --config-reference`), and a test keeps the two in step.

/// Roles a key applies to (bit set).
pub mod role {
    pub const CONTROLLER: u8 = 1;
    pub const AGENT: u8 = 2;
    pub const DATANODE: u8 = 4;
    pub const COMPUTENODE: u8 = 8;
    pub const SINGLE: u8 = 16;
    pub const DATA_AND_COMPUTE: u8 = DATANODE | COMPUTENODE | SINGLE;
    pub const ALL: u8 = CONTROLLER | AGENT | DATANODE | COMPUTENODE | SINGLE;
}

/// The type of a key's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// An integer within `min..=max`.
    Int { min: i64, max: i64 },
    /// A number (sizes in GB) within `min..=max`.
    Float { min: f64, max: f64 },
    /// `true`/`false` or `1`/`0`.
    Bool,
    /// Free text (`<ALIAS>` is substituted).
    Str,
    /// One of the listed words (case-insensitive).
    Choice(&'static [&'static str]),
    /// `ip:port:alias`.
    Site,
    /// Comma-separated `ip:port:alias:mode`.
    Sites,
    /// Comma-separated absolute paths (`<ALIAS>` is substituted).
    AbsPaths,
    /// A path; a relative one is taken relative to `-home`.
    Path,
}

impl Kind {
    /// How the type is described in messages and the reference.
    pub fn describe(&self) -> String {
        match self {
            Kind::Int { min, max } => format!("an integer in {min}..{max}"),
            Kind::Float { min, max } => format!("a number in {min}..{max}"),
            Kind::Bool => "true/false or 1/0".into(),
            Kind::Str => "text".into(),
            Kind::Choice(c) => format!("one of {}", c.join(", ")),
            Kind::Site => "ip:port:alias".into(),
            Kind::Sites => "a comma-separated list of ip:port:alias:mode".into(),
            Kind::AbsPaths => "a comma-separated list of absolute paths".into(),
            Kind::Path => "a path".into(),
        }
    }
}

/// One configuration key.
#[derive(Debug, Clone, Copy)]
pub struct KeyDef {
    pub name: &'static str,
    pub kind: Kind,
    /// The default as documented; empty when the key has none or it is computed (see `doc`).
    pub default: &'static str,
    pub roles: u8,
    pub doc: &'static str,
}

use role::*;

const fn key(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    roles: u8,
    doc: &'static str,
) -> KeyDef {
    KeyDef {
        name,
        kind,
        default,
        roles,
        doc,
    }
}

const INT_COUNT: Kind = Kind::Int { min: 0, max: 1024 };

/// The key table, in reference order.
pub const KEYS: &[KeyDef] = &[
    key("mode", Kind::Choice(&["controller", "agent", "datanode", "computenode", "single"]), "single", ALL,
        "Node role. The -mode command-line option takes precedence."),
    key("localSite", Kind::Site, "", ALL,
        "This node's ip:port:alias. Single mode defaults to localhost:8848:local8848."),
    key("controllerSite", Kind::Site, "", AGENT | DATANODE | COMPUTENODE,
        "The controller an agent (or node) contacts first; it follows <NotLeader> redirects from there."),
    key("sites", Kind::Sites, "", AGENT | DATANODE | COMPUTENODE,
        "This agent followed by every controller, as ip:port:alias:mode; nodes find a new leader controller among them."),
    key("dfsReplicationFactor", Kind::Int { min: 1, max: 16 }, "2", CONTROLLER | SINGLE,
        "Replicas kept of every chunk."),
    key("dfsReplicaReliabilityLevel", Kind::Int { min: 0, max: 2 }, "0", CONTROLLER | SINGLE,
        "1: replicas of a chunk must be on distinct hosts (an error when impossible); 2: on distinct hosts where possible; 0: no constraint."),
    key("dfsRecoveryWaitTime", Kind::Int { min: 0, max: 86_400_000 }, "0", CONTROLLER,
        "Milliseconds a data node may stay offline before its replicas are rebuilt on other nodes; 0: never (they wait for it)."),
    key("dfsRecoveryConcurrency", INT_COUNT, "", CONTROLLER,
        "Replica recovery tasks running at once. Default: twice the number of nodes other than agents."),
    key("dfsSyncRecoveryChunkRowSize", Kind::Int { min: 0, max: 1_000_000_000 }, "1000", CONTROLLER,
        "Online recovery turns synchronous (the chunk's writes wait) once a round has at most this many rows left to copy."),
    key("dataSync", Kind::Int { min: 0, max: 1 }, "0", ALL,
        "1: fsync the redo log and Raft log before acknowledging a write."),
    key("workerNum", Kind::Int { min: 1, max: 1024 }, "", ALL,
        "Worker threads for client requests. Default: the number of CPU cores."),
    key("localExecutors", INT_COUNT, "", ALL,
        "Local executors for parallel sub-tasks. Default: workerNum - 1."),
    key("maxConnections", Kind::Int { min: 1, max: 65536 }, "512", ALL,
        "Most concurrent client connections."),
    key("maxMemSize", Kind::Float { min: 0.0, max: 1.0e6 }, "0", ALL,
        "Memory limit in GB; 0 means no limit."),
    key("dfsHAMode", Kind::Choice(&["Raft", "None"]), "None", CONTROLLER,
        "Raft: the controllers listed in cluster.nodes form a Raft group."),
    key("lanCluster", Kind::Bool, "true", ALL,
        "true: heartbeats over UDP; false (cloud): heartbeats over TCP."),
    key("nodeHeartbeatTimeout", Kind::Int { min: 500, max: 3_600_000 }, "10000", CONTROLLER,
        "Milliseconds without a heartbeat after which the leader controller marks a node down."),
    key("heartbeatInterval", Kind::Int { min: 50, max: 60_000 }, "1000", ALL,
        "Milliseconds between a node's heartbeats to the leader controller."),
    key("publicName", Kind::Str, "", ALL,
        "External address for the web interface."),
    key("maxBatchJobWorker", INT_COUNT, "", DATA_AND_COMPUTE,
        "Batch job workers. Default: workerNum."),
    key("OLAPCacheEngineSize", Kind::Float { min: 0.0, max: 1.0e5 }, "1", DATANODE | SINGLE,
        "OLAP cache engine size in GB (appends held in memory before flushing to column files)."),
    key("TSDBCacheEngineSize", Kind::Float { min: 0.0, max: 1.0e5 }, "1", DATANODE | SINGLE,
        "TSDB cache engine size in GB."),
    key("newValuePartitionPolicy", Kind::Choice(&["add", "skip", "fail"]), "add", DATA_AND_COMPUTE | CONTROLLER,
        "VALUE partitions for new values: add them, skip the rows, or fail the append (DolphinDB defaults to skip; Porpoise adds, so rows are never dropped silently)."),
    key("maxPubConnections", Kind::Int { min: 0, max: 65536 }, "0", DATA_AND_COMPUTE,
        "Most streaming subscribers this node publishes to."),
    key("subExecutors", INT_COUNT, "1", DATA_AND_COMPUTE,
        "Threads handling streaming subscriptions."),
    key("enableChunkGranularityConfig", Kind::Bool, "false", CONTROLLER | DATA_AND_COMPUTE,
        "Allow chunk granularity to be set per database."),
    key("volumes", Kind::AbsPaths, "", DATANODE | SINGLE,
        "Data volumes, one per disk; absolute paths, <ALIAS> is replaced by the node alias. Default: <home>/<alias>/storage."),
    key("chunkMetaDir", Kind::Path, "", DATANODE | SINGLE,
        "Where CHUNK_METADATA lives. Default: <home>/<alias>/storage."),
    key("dfsMetaDir", Kind::Path, "", CONTROLLER | SINGLE,
        "Where the controller keeps DFS metadata checkpoints. Default: <home>/<alias>/dfsMeta."),
    key("logLevel", Kind::Choice(&["DEBUG", "INFO", "WARNING", "ERROR"]), "INFO", ALL,
        "Least severe log level written."),
    key("maxLogSize", Kind::Int { min: 1, max: 1_048_576 }, "1024", ALL,
        "Log file size in MB at which it is rotated."),
];

/// The definition of `name` (exact, case-sensitive — DolphinDB keys are).
pub fn lookup(name: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|k| k.name == name)
}

/// A key with the same spelling but different case, for "did you mean" warnings.
pub fn lookup_case_insensitive(name: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|k| k.name.eq_ignore_ascii_case(name))
}

/// The configuration reference as Markdown (the table in README.md).
pub fn reference_markdown() -> String {
    let mut s = String::from("| key | type | default | roles | meaning |\n|---|---|---|---|---|\n");
    for k in KEYS {
        let mut roles = Vec::new();
        for (bit, name) in [
            (CONTROLLER, "controller"),
            (AGENT, "agent"),
            (DATANODE, "datanode"),
            (COMPUTENODE, "computenode"),
            (SINGLE, "single"),
        ] {
            if k.roles & bit != 0 {
                roles.push(name);
            }
        }
        let default = if k.default.is_empty() {
            "—".to_string()
        } else {
            format!("`{}`", k.default)
        };
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            k.name,
            k.kind.describe(),
            default,
            roles.join(", "),
            k.doc.replace('<', "&lt;").replace('>', "&gt;")
        ));
    }
    s
}
