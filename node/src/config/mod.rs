//! DolphinDB-compatible configuration: controller.cfg, agent.cfg, cluster.cfg, cluster.nodes
//! and a single node's dolphindb.cfg, resolved into one typed [`Settings`] per node.
//!
//! Invariants:
//! - Every error names its file and line and says what to do ([`ConfigError`]).
//! - Unknown keys are reported as warnings, never silently dropped.
//! - Precedence, lowest to highest: built-in default < each file in the order given (later
//!   files win) < command line. Within one file, `alias.key` beats `%wild.key` beats `key`,
//!   and among equals the later line wins.

pub mod edit;
pub mod error;
pub mod keys;
pub mod kv;
pub mod nodes;
pub mod pattern;
mod resolve;
pub mod site;
mod value;

pub use error::{ConfigError, ConfigWarning, ErrorKind, Location, Source};
pub use kv::{ConfigFile, Entry};
pub use nodes::{NodeEntry, NodesFile};
pub use resolve::{check_controller_membership, resolve, Settings};
pub use site::Site;
pub use value::Value;

use std::fmt;

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    Controller,
    Agent,
    DataNode,
    ComputeNode,
    Single,
}

impl Mode {
    /// Parses a mode as written in configs and on the command line (case-insensitive).
    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "controller" => Some(Mode::Controller),
            "agent" => Some(Mode::Agent),
            "datanode" => Some(Mode::DataNode),
            "computenode" => Some(Mode::ComputeNode),
            "single" => Some(Mode::Single),
            _ => None,
        }
    }

    /// The spelling DolphinDB uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Controller => "controller",
            Mode::Agent => "agent",
            Mode::DataNode => "datanode",
            Mode::ComputeNode => "computenode",
            Mode::Single => "single",
        }
    }

    /// This mode's bit in [`keys::role`].
    pub fn role_bit(self) -> u8 {
        match self {
            Mode::Controller => keys::role::CONTROLLER,
            Mode::Agent => keys::role::AGENT,
            Mode::DataNode => keys::role::DATANODE,
            Mode::ComputeNode => keys::role::COMPUTENODE,
            Mode::Single => keys::role::SINGLE,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads and parses a `key=value` file.
pub fn load_file(path: &std::path::Path) -> Result<ConfigFile, ConfigError> {
    let source = Source::File(path.to_path_buf());
    let text = read(path, &source)?;
    kv::parse(source, &text)
}

/// Reads and parses a cluster.nodes file.
pub fn load_nodes(path: &std::path::Path) -> Result<NodesFile, ConfigError> {
    let source = Source::File(path.to_path_buf());
    let text = read(path, &source)?;
    nodes::parse(source, &text)
}

fn read(path: &std::path::Path, source: &Source) -> Result<String, ConfigError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ConfigError::new(source.clone(), 0, ErrorKind::Io(e.to_string())))?;
    if meta.len() > kv::CONFIG_BYTES_MAX as u64 {
        return Err(ConfigError::new(
            source.clone(),
            0,
            ErrorKind::Io(format!(
                "file is larger than {} bytes",
                kv::CONFIG_BYTES_MAX
            )),
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::new(source.clone(), 0, ErrorKind::Io(e.to_string())))?;
    String::from_utf8(bytes).map_err(|e| {
        ConfigError::new(
            source.clone(),
            0,
            ErrorKind::Io(format!("not UTF-8 text: {e}")),
        )
    })
}
