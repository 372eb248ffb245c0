//! Resolving a node's effective settings: the one function [`resolve`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, ConfigWarning, ErrorKind, Location, Source};
use super::keys::{self, KeyDef, KEYS};
use super::kv::{ConfigFile, Entry};
use super::nodes::NodesFile;
use super::pattern;
use super::site::Site;
use super::value::{self, Value};
use super::Mode;

/// Alias used to type-check overrides meant for other nodes.
const PLACEHOLDER_ALIAS: &str = "ALIAS";

/// The single-node default site.
pub const SINGLE_DEFAULT_SITE: &str = "localhost:8848:local8848";

#[derive(Debug, Clone, PartialEq)]
struct Resolved {
    value: Value,
    location: Location,
}

/// A node's effective configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    mode: Mode,
    site: Site,
    home: PathBuf,
    values: BTreeMap<&'static str, Resolved>,
    warnings: Vec<ConfigWarning>,
}

/// Rank of an entry for this alias: `None` if it does not apply.
fn rank(entry: &Entry, alias: Option<&str>) -> Option<u8> {
    match (&entry.alias_pattern, alias) {
        (None, _) => Some(0),
        (Some(_), None) => None,
        (Some(p), Some(a)) if pattern::is_wildcard(p) => pattern::matches(p, a).then_some(1),
        (Some(p), Some(a)) => (p == a).then_some(2),
    }
}

/// The winning entry for `key` across `layers` (later layers win; within a layer, higher rank,
/// then later line).
fn winner<'a>(
    layers: &'a [ConfigFile],
    key: &str,
    alias: Option<&str>,
) -> Option<(&'a Source, &'a Entry)> {
    let mut best: Option<(&Source, &Entry)> = None;
    for layer in layers {
        let mut layer_best: Option<(u8, &Entry)> = None;
        for e in layer.entries.iter().filter(|e| e.key == key) {
            if let Some(r) = rank(e, alias) {
                if layer_best.is_none_or(|(br, _)| r >= br) {
                    layer_best = Some((r, e));
                }
            }
        }
        if let Some((_, e)) = layer_best {
            best = Some((&layer.source, e));
        }
    }
    best
}

/// A required key is absent: reported against the node's main configuration file.
fn missing(layers: &[ConfigFile], key: &str, mode: Mode) -> ConfigError {
    let source = layers
        .first()
        .map(|l| l.source.clone())
        .unwrap_or(Source::CommandLine);
    ConfigError::new(
        source,
        0,
        ErrorKind::MissingKey {
            key: key.into(),
            mode: mode.to_string(),
        },
    )
}

/// Resolves the effective settings of one node from its configuration `layers` (in increasing
/// precedence: e.g. `[cluster.cfg, command line]` for a data node, `[controller.cfg, command
/// line]` for a controller). The node's mode and alias come from the layers themselves
/// (`mode` / `-mode`, `localSite` / `-localSite`).
pub fn resolve(home: &Path, layers: &[ConfigFile]) -> Result<Settings, ConfigError> {
    let mut warnings = Vec::new();

    // 1. Check every line of every layer: unknown keys warn, bad values fail.
    for layer in layers {
        for e in &layer.entries {
            let location = Location {
                source: layer.source.clone(),
                line: e.line,
            };
            let Some(def) = keys::lookup(&e.key) else {
                let hint = keys::lookup_case_insensitive(&e.key)
                    .map(|k| format!(" (did you mean '{}'? keys are case-sensitive)", k.name))
                    .unwrap_or_default();
                warnings.push(ConfigWarning {
                    location,
                    message: format!("unknown configuration key '{}' is ignored{hint}", e.key),
                });
                continue;
            };
            value::parse(def, &e.value, PLACEHOLDER_ALIAS, home).map_err(|kind| ConfigError {
                location: location.clone(),
                kind,
            })?;
        }
    }

    // 2. Mode and identity come from plain (non-override) settings.
    let mode = match winner(layers, "mode", None) {
        Some((_, e)) => Mode::parse(&e.value).expect("validated above"),
        None => Mode::Single,
    };
    let site = match winner(layers, "localSite", None) {
        Some((_, e)) => Site::parse(&e.value).expect("validated above"),
        None if mode == Mode::Single => Site::parse(SINGLE_DEFAULT_SITE).expect("valid default"),
        None => return Err(missing(layers, "localSite", mode)),
    };

    // 3. Every known key: its winning entry for this alias, parsed with the real alias.
    let mut values = BTreeMap::new();
    for def in KEYS {
        if let Some((source, e)) = winner(layers, def.name, Some(&site.alias)) {
            let location = Location {
                source: source.clone(),
                line: e.line,
            };
            let value =
                value::parse(def, &e.value, &site.alias, home).map_err(|kind| ConfigError {
                    location: location.clone(),
                    kind,
                })?;
            values.insert(def.name, Resolved { value, location });
        }
    }

    let settings = Settings {
        mode,
        site,
        home: home.to_path_buf(),
        values,
        warnings,
    };

    // 4. Keys each role cannot start without.
    if mode == Mode::Agent && settings.controller_site().is_none() {
        return Err(missing(layers, "controllerSite", mode));
    }
    Ok(settings)
}

/// Checks that a controller's alias is listed as a controller in cluster.nodes.
pub fn check_controller_membership(
    settings: &Settings,
    nodes: &NodesFile,
) -> Result<(), ConfigError> {
    let alias = &settings.site.alias;
    match nodes.get(alias) {
        Some(n) if n.mode == Mode::Controller => Ok(()),
        _ => {
            let location = settings
                .values
                .get("localSite")
                .map(|r| r.location.clone())
                .unwrap_or(Location {
                    source: Source::CommandLine,
                    line: 0,
                });
            let nodes_file = match &nodes.source {
                Source::File(p) => p.clone(),
                other => PathBuf::from(other.to_string()),
            };
            Err(ConfigError {
                location,
                kind: ErrorKind::ControllerNotInNodes {
                    alias: alias.clone(),
                    nodes_file,
                },
            })
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl Settings {
    /// This node's role.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// This node's `ip:port:alias`.
    pub fn site(&self) -> &Site {
        &self.site
    }

    /// This node's alias.
    pub fn alias(&self) -> &str {
        &self.site.alias
    }

    /// The `-home` directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Warnings found while resolving (unknown keys, ...).
    pub fn warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    /// The raw resolved value of `key` and where it came from.
    pub fn get(&self, key: &str) -> Option<(&Value, &Location)> {
        self.values.get(key).map(|r| (&r.value, &r.location))
    }

    fn int(&self, key: &str) -> Option<i64> {
        match self.values.get(key).map(|r| &r.value) {
            Some(Value::Int(n)) => Some(*n),
            _ => None,
        }
    }

    fn int_or_default(&self, key: &str) -> i64 {
        self.int(key).unwrap_or_else(|| {
            let def: &KeyDef = keys::lookup(key).expect("known key");
            def.default.parse().expect("integer default")
        })
    }

    fn float_or_default(&self, key: &str) -> f64 {
        match self.values.get(key).map(|r| &r.value) {
            Some(Value::Float(n)) => *n,
            _ => keys::lookup(key)
                .expect("known key")
                .default
                .parse()
                .expect("numeric default"),
        }
    }

    fn bool_or_default(&self, key: &str) -> bool {
        match self.values.get(key).map(|r| &r.value) {
            Some(Value::Bool(b)) => *b,
            _ => keys::lookup(key).expect("known key").default == "true",
        }
    }

    fn str_or_default(&self, key: &str) -> String {
        match self.values.get(key).map(|r| &r.value) {
            Some(Value::Str(s)) => s.clone(),
            _ => keys::lookup(key).expect("known key").default.to_string(),
        }
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        match self.values.get(key).map(|r| &r.value) {
            Some(Value::Path(p)) => Some(p.clone()),
            _ => None,
        }
    }

    /// `dfsReplicationFactor`.
    pub fn replication_factor(&self) -> usize {
        self.int_or_default("dfsReplicationFactor") as usize
    }

    /// `dfsReplicaReliabilityLevel`.
    pub fn replica_reliability_level(&self) -> u8 {
        self.int_or_default("dfsReplicaReliabilityLevel") as u8
    }

    /// `dfsRecoveryWaitTime` (ms; 0: replicas of an offline node are never rebuilt elsewhere).
    pub fn recovery_wait_ms(&self) -> u64 {
        self.int_or_default("dfsRecoveryWaitTime") as u64
    }

    /// `dfsRecoveryConcurrency`, if set.
    pub fn recovery_concurrency(&self) -> Option<usize> {
        self.int("dfsRecoveryConcurrency").map(|n| n as usize)
    }

    /// `dfsSyncRecoveryChunkRowSize`.
    pub fn sync_recovery_rows(&self) -> u64 {
        self.int_or_default("dfsSyncRecoveryChunkRowSize") as u64
    }

    /// `dataSync=1`: fsync before acknowledging.
    pub fn data_sync(&self) -> bool {
        self.int_or_default("dataSync") == 1
    }

    /// `workerNum` (default: CPU cores).
    pub fn worker_num(&self) -> usize {
        self.int("workerNum")
            .map(|n| n as usize)
            .unwrap_or_else(cores)
    }

    /// `localExecutors` (default: workerNum - 1).
    pub fn local_executors(&self) -> usize {
        self.int("localExecutors")
            .map(|n| n as usize)
            .unwrap_or_else(|| self.worker_num().saturating_sub(1))
    }

    /// `maxBatchJobWorker` (default: workerNum).
    pub fn max_batch_job_worker(&self) -> usize {
        self.int("maxBatchJobWorker")
            .map(|n| n as usize)
            .unwrap_or_else(|| self.worker_num())
    }

    /// `maxConnections`.
    pub fn max_connections(&self) -> usize {
        self.int_or_default("maxConnections") as usize
    }

    /// `maxMemSize` in bytes; `None` when unlimited (0).
    pub fn max_mem_bytes(&self) -> Option<u64> {
        let gb = self.float_or_default("maxMemSize");
        (gb > 0.0).then_some((gb * (1u64 << 30) as f64) as u64)
    }

    /// `OLAPCacheEngineSize` in bytes.
    pub fn olap_cache_engine_bytes(&self) -> u64 {
        (self.float_or_default("OLAPCacheEngineSize") * (1u64 << 30) as f64) as u64
    }

    /// `TSDBCacheEngineSize` in bytes.
    pub fn tsdb_cache_engine_bytes(&self) -> u64 {
        (self.float_or_default("TSDBCacheEngineSize") * (1u64 << 30) as f64) as u64
    }

    /// `dfsHAMode=Raft`.
    pub fn raft_enabled(&self) -> bool {
        self.str_or_default("dfsHAMode") == "Raft"
    }

    /// `lanCluster`: UDP heartbeats when true.
    /// `nodeHeartbeatTimeout` in milliseconds.
    pub fn node_heartbeat_timeout_ms(&self) -> u64 {
        self.int_or_default("nodeHeartbeatTimeout") as u64
    }

    /// `heartbeatInterval` in milliseconds.
    pub fn heartbeat_interval_ms(&self) -> u64 {
        self.int_or_default("heartbeatInterval") as u64
    }

    pub fn lan_cluster(&self) -> bool {
        self.bool_or_default("lanCluster")
    }

    /// `publicName`, if set.
    pub fn public_name(&self) -> Option<String> {
        Some(self.str_or_default("publicName")).filter(|s| !s.is_empty())
    }

    /// `newValuePartitionPolicy`: add, skip or fail.
    pub fn new_value_partition_policy(&self) -> String {
        self.str_or_default("newValuePartitionPolicy")
    }

    /// `maxPubConnections`.
    pub fn max_pub_connections(&self) -> usize {
        self.int_or_default("maxPubConnections") as usize
    }

    /// `subExecutors`.
    pub fn sub_executors(&self) -> usize {
        self.int_or_default("subExecutors") as usize
    }

    /// `enableChunkGranularityConfig`.
    pub fn chunk_granularity_config(&self) -> bool {
        self.bool_or_default("enableChunkGranularityConfig")
    }

    /// `logLevel`.
    pub fn log_level(&self) -> String {
        self.str_or_default("logLevel")
    }

    /// `maxLogSize` in bytes.
    pub fn max_log_bytes(&self) -> u64 {
        self.int_or_default("maxLogSize") as u64 * (1 << 20)
    }

    /// `controllerSite`, if set.
    pub fn controller_site(&self) -> Option<Site> {
        match self.values.get("controllerSite").map(|r| &r.value) {
            Some(Value::Site(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// `sites` (an agent's own site and the controllers), if set.
    pub fn sites(&self) -> Vec<(Site, Mode)> {
        match self.values.get("sites").map(|r| &r.value) {
            Some(Value::Sites(s)) => s.clone(),
            _ => Vec::new(),
        }
    }

    /// `volumes`, defaulting to `<home>/<alias>/storage`.
    pub fn volumes(&self) -> Vec<PathBuf> {
        match self.values.get("volumes").map(|r| &r.value) {
            Some(Value::Paths(p)) => p.clone(),
            _ => vec![storage::layout::default_volume(&self.home, self.alias())],
        }
    }

    /// Where CHUNK_METADATA lives: `chunkMetaDir/CHUNK_METADATA`, else under the default volume.
    pub fn chunk_meta_dir(&self) -> PathBuf {
        match self.path("chunkMetaDir") {
            Some(dir) => dir.join(storage::layout::CHUNK_METADATA_DIR),
            None => storage::layout::default_chunk_meta_dir(&self.home, self.alias()),
        }
    }

    /// The controller's DFS metadata directory.
    pub fn dfs_meta_dir(&self) -> PathBuf {
        self.path("dfsMetaDir")
            .unwrap_or_else(|| storage::layout::default_dfs_meta_dir(&self.home, self.alias()))
    }

    /// The controller's Raft directory, `<home>/<alias>/raft`.
    pub fn raft_dir(&self) -> PathBuf {
        storage::layout::raft_dir(&self.home, self.alias())
    }

    /// Every key with its effective value and source, for `--print-config`.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "# effective configuration of {} ({}), home {}\n",
            self.site,
            self.mode,
            self.home.display()
        );
        for def in KEYS {
            match self.values.get(def.name) {
                Some(r) => out.push_str(&format!(
                    "{}={}    # {}\n",
                    def.name,
                    show(&r.value),
                    r.location
                )),
                None => out.push_str(&format!("# {}={}    # default\n", def.name, def.default)),
            }
        }
        out
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Int(n) => n.to_string(),
        Value::Float(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Str(s) => s.clone(),
        Value::Site(s) => s.to_string(),
        Value::Sites(s) => s
            .iter()
            .map(|(s, m)| format!("{s}:{m}"))
            .collect::<Vec<_>>()
            .join(","),
        Value::Paths(p) => p
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(","),
        Value::Path(p) => p.display().to_string(),
    }
}
