//! From command line to resolved configuration: which files a role reads, where they default
//! to, and the cross-file checks (a controller must be listed in cluster.nodes; cluster.cfg
//! must be valid for every data and compute node it configures).

use std::path::{Path, PathBuf};

use crate::cli::RunArgs;
use crate::config::{
    self, check_controller_membership, resolve, ConfigError, ConfigFile, ConfigWarning, Entry,
    ErrorKind, Mode, NodesFile, Settings, Source,
};

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    /// cluster.nodes (controllers).
    pub nodes: Option<NodesFile>,
    /// cluster.cfg as the controllers hold it (the "nodes config").
    pub cluster_cfg: Option<ConfigFile>,
    /// Warnings from every file read, including cluster.cfg checks for other nodes.
    pub warnings: Vec<ConfigWarning>,
    pub log_file: PathBuf,
    pub script: Option<PathBuf>,
    pub console: bool,
    /// A controller's controller.cfg and cluster.cfg, which saved edits rewrite (D103).
    pub config_files: Option<crate::controller::configs::Files>,
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

fn sibling(config: Option<&Path>, name: &str) -> PathBuf {
    config
        .and_then(|c| c.parent())
        .map(|d| d.join(name))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn need(flag: &str, mode: Mode) -> ConfigError {
    ConfigError::new(
        Source::CommandLine,
        0,
        ErrorKind::BadArgument(format!("a {mode} needs -{flag} <file>")),
    )
}

/// Checks cluster.cfg for every data and compute node listed in cluster.nodes, so a bad
/// override for another node is reported now rather than when that node starts.
pub fn check_cluster_cfg(
    home: &Path,
    nodes: &NodesFile,
    cluster_cfg: &ConfigFile,
) -> Result<Vec<ConfigWarning>, ConfigError> {
    let mut warnings = Vec::new();
    for n in nodes
        .nodes
        .iter()
        .filter(|n| matches!(n.mode, Mode::DataNode | Mode::ComputeNode))
    {
        let identity = ConfigFile {
            source: nodes.source.clone(),
            entries: vec![
                Entry {
                    alias_pattern: None,
                    key: "mode".into(),
                    value: n.mode.as_str().into(),
                    line: n.line,
                },
                Entry {
                    alias_pattern: None,
                    key: "localSite".into(),
                    value: n.site.to_string(),
                    line: n.line,
                },
            ],
        };
        let s = resolve(home, &[cluster_cfg.clone(), identity])?;
        for w in s.warnings() {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
    }
    Ok(warnings)
}

/// Resolves the configuration for the node the command line describes.
pub fn load(run: &RunArgs) -> Result<Loaded, ConfigError> {
    let home = absolute(&run.home);
    let config_path = run.config.as_deref().map(absolute);

    // The mode: -mode, else the config file's `mode=`, else single.
    let config_file = match &config_path {
        Some(p) => Some(config::load_file(p)?),
        None => {
            let default = absolute(Path::new("dolphindb.cfg"));
            if run.mode.unwrap_or(Mode::Single) == Mode::Single && default.is_file() {
                Some(config::load_file(&default)?)
            } else {
                None
            }
        }
    };
    let mode = run.mode.unwrap_or_else(|| {
        config_file
            .as_ref()
            .and_then(|f| {
                f.entries
                    .iter()
                    .rev()
                    .find(|e| e.key == "mode" && e.alias_pattern.is_none())
            })
            .and_then(|e| Mode::parse(&e.value))
            .unwrap_or(Mode::Single)
    });

    let mut layers = Vec::new();
    let mut nodes = None;
    let mut cluster_cfg = None;
    let mut config_files = None;
    let mut warnings = Vec::new();
    match mode {
        Mode::Controller => {
            let cfg = config_file.ok_or_else(|| need("config", mode))?;
            layers.push(cfg);
            let nodes_path = run
                .nodes_file
                .as_deref()
                .map(absolute)
                .unwrap_or_else(|| sibling(config_path.as_deref(), "cluster.nodes"));
            let n = config::load_nodes(&nodes_path)?;
            let cc_path = run
                .cluster_config
                .as_deref()
                .map(absolute)
                .unwrap_or_else(|| sibling(config_path.as_deref(), "cluster.cfg"));
            if run.cluster_config.is_some() || cc_path.is_file() {
                let cc = config::load_file(&cc_path)?;
                warnings.extend(check_cluster_cfg(&home, &n, &cc)?);
                cluster_cfg = Some(cc);
            }
            config_files =
                config_path
                    .clone()
                    .map(|controller| crate::controller::configs::Files {
                        controller,
                        cluster: cc_path,
                        home: home.clone(),
                    });
            nodes = Some(n);
        }
        Mode::Agent => layers.push(config_file.ok_or_else(|| need("config", mode))?),
        Mode::DataNode | Mode::ComputeNode => {
            if let Some(cc) = &run.cluster_config {
                layers.push(config::load_file(&absolute(cc))?);
            }
            layers.extend(config_file);
        }
        Mode::Single => layers.extend(config_file),
    }
    layers.push(run.overrides.clone());

    let settings = resolve(&home, &layers)?;
    if settings.mode() != mode {
        // Cannot happen while -mode travels in the command-line layer; refuse rather than guess.
        return Err(ConfigError::new(
            Source::CommandLine,
            0,
            ErrorKind::BadArgument(format!(
                "mode resolved to {} but {mode} was requested",
                settings.mode()
            )),
        ));
    }
    if let Some(n) = &nodes {
        check_controller_membership(&settings, n)?;
    }
    if settings.mode() == Mode::Controller && settings.raft_enabled() {
        let controllers = nodes
            .as_ref()
            .map(|n| n.of_mode(Mode::Controller).count())
            .unwrap_or(0);
        if controllers % 2 == 0 {
            warnings.push(ConfigWarning {
                location: config::Location { source: Source::CommandLine, line: 0 },
                message: format!(
                    "dfsHAMode=Raft with {controllers} controllers: use an odd number (1, 3 or 5) so a \
                     majority survives failures"
                ),
            });
        }
    }
    warnings.splice(0..0, settings.warnings().iter().cloned());
    let log_file = run
        .log_file
        .as_deref()
        .map(absolute)
        .unwrap_or_else(|| home.join(format!("{}.log", settings.alias())));
    let script = run.script.as_deref().map(absolute);
    Ok(Loaded {
        settings,
        nodes,
        cluster_cfg,
        warnings,
        log_file,
        script,
        console: run.console,
        config_files,
    })
}
