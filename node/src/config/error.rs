//! Configuration errors and warnings.
//!
//! Invariant: every error names the file (or "command line") and, where it comes from a line,
//! the 1-based line number, and says what to do. Each kind has a stable code `CFG-xxx`.

use std::fmt;
use std::path::PathBuf;

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A configuration file.
    File(PathBuf),
    /// The process's command line.
    CommandLine,
    /// Porpoise's built-in default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::CommandLine => write!(f, "command line"),
            Source::Default => write!(f, "default"),
        }
    }
}

/// A position in a configuration source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub source: Source,
    /// 1-based line number; 0 when the problem is not on one line.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}", self.source, self.line)
        } else {
            write!(f, "{}", self.source)
        }
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read.
    Io(String),
    /// A line is not `key=value`.
    Syntax(String),
    /// cluster.nodes is empty or starts with an empty line (the tutorial's FAQ Q1).
    EmptyNodesFile,
    /// cluster.nodes does not start with the header `localSite,mode`.
    BadNodesHeader(String),
    /// Two nodes share an alias (aliases are case-sensitive).
    DuplicateAlias { alias: String, first_line: usize },
    /// A site is not `ip:port:alias` (or `ip:port:alias:mode` in `sites`).
    MalformedSite { value: String, reason: String },
    /// A mode other than controller, agent, datanode, computenode, single.
    UnknownMode(String),
    /// This controller's alias is not listed as a controller in cluster.nodes.
    ControllerNotInNodes { alias: String, nodes_file: PathBuf },
    /// A value does not have the type its key needs.
    WrongType {
        key: String,
        value: String,
        expected: String,
    },
    /// A volume (or other absolute-only path) is relative.
    RelativePath { key: String, value: String },
    /// A key the node needs is missing.
    MissingKey { key: String, mode: String },
    /// The command line is malformed.
    BadArgument(String),
    /// An edited configuration (`saveControllerConfigs`, `saveClusterNodesConfigs`) names a key
    /// Porpoise does not know; `hint` is the key with the same spelling in another case.
    UnknownKey { key: String, hint: Option<String> },
}

/// A configuration error with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub location: Location,
    pub kind: ErrorKind,
}

impl ConfigError {
    pub fn new(source: Source, line: usize, kind: ErrorKind) -> Self {
        ConfigError {
            location: Location { source, line },
            kind,
        }
    }

    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self.kind {
            ErrorKind::Io(_) => "CFG-001",
            ErrorKind::Syntax(_) => "CFG-002",
            ErrorKind::EmptyNodesFile => "CFG-003",
            ErrorKind::DuplicateAlias { .. } => "CFG-004",
            ErrorKind::MalformedSite { .. } => "CFG-005",
            ErrorKind::UnknownMode(_) => "CFG-006",
            ErrorKind::ControllerNotInNodes { .. } => "CFG-007",
            ErrorKind::WrongType { .. } => "CFG-008",
            ErrorKind::RelativePath { .. } => "CFG-009",
            ErrorKind::MissingKey { .. } => "CFG-010",
            ErrorKind::BadNodesHeader(_) => "CFG-011",
            ErrorKind::BadArgument(_) => "CFG-012",
            ErrorKind::UnknownKey { .. } => "CFG-013",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loc = &self.location;
        let code = self.code();
        match &self.kind {
            ErrorKind::Io(e) => write!(f, "{code} {loc}: cannot read the file: {e}. Check the path and its permissions"),
            ErrorKind::Syntax(line) => write!(
                f,
                "{code} {loc}: expected key=value, found '{line}'. Fix the line or comment it out with #"
            ),
            ErrorKind::EmptyNodesFile => write!(
                f,
                "{code} Failed to load the nodes file [{}] with error: The input file is empty. \
                 ({loc}: the first line must be the header 'localSite,mode'; remove the empty \
                 line and restart the node)",
                loc.source
            ),
            ErrorKind::BadNodesHeader(h) => write!(
                f,
                "{code} {loc}: the first line of the nodes file must be 'localSite,mode', found '{h}'"
            ),
            ErrorKind::DuplicateAlias { alias, first_line } => write!(
                f,
                "{code} {loc}: alias '{alias}' is already used on line {first_line}. Node aliases \
                 are case-sensitive and must be unique in a cluster: rename one of them"
            ),
            ErrorKind::MalformedSite { value, reason } => write!(
                f,
                "{code} {loc}: '{value}' is not a valid site ({reason}). Write it as ip:port:alias, \
                 e.g. 10.0.0.80:8800:controller1"
            ),
            ErrorKind::UnknownMode(m) => write!(
                f,
                "{code} {loc}: unknown mode '{m}'. Use one of controller, agent, datanode, \
                 computenode, single"
            ),
            ErrorKind::ControllerNotInNodes { alias, nodes_file } => write!(
                f,
                "{code} {loc}: controller '{alias}' (from localSite) is not listed as a controller \
                 in {}. Add '<ip>:<port>:{alias},controller' to it, or fix localSite",
                nodes_file.display()
            ),
            ErrorKind::WrongType { key, value, expected } => write!(
                f,
                "{code} {loc}: {key}={value} is invalid: expected {expected}"
            ),
            ErrorKind::RelativePath { key, value } => write!(
                f,
                "{code} {loc}: {key}={value}: only absolute paths are allowed (e.g. /VOL1/<ALIAS>)"
            ),
            ErrorKind::MissingKey { key, mode } => write!(
                f,
                "{code} {loc}: a {mode} needs '{key}'. Add {key}=... to its configuration file \
                 or pass -{key} on the command line"
            ),
            ErrorKind::BadArgument(msg) => write!(f, "{code} {loc}: {msg}. Run `porpoise --help` for usage"),
            ErrorKind::UnknownKey { key, hint } => match hint {
                Some(h) => write!(f, "{code} {loc}: unknown configuration key '{key}' (did you mean '{h}'? keys are case-sensitive)"),
                None => write!(f, "{code} {loc}: unknown configuration key '{key}'. `porpoise --config-reference` lists every key"),
            },
        }
    }
}

impl std::error::Error for ConfigError {}

/// Something suspicious but not fatal (unknown keys above all: never silently dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub location: Location,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}
