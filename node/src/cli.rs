//! The `porpoise` command line, DolphinDB style: `-key value` pairs.
//!
//! Options Porpoise itself uses: `-mode`, `-home`, `-config`, `-logFile`, `-nodesFile`,
//! `-clusterConfig`, `-console 0|1`, `-script`. Every other `-key value` is a configuration
//! override with the highest precedence (e.g. `-localSite 127.0.0.1:8848:local8848`,
//! `-maxMemSize 4`), exactly as DolphinDB accepts them.

use std::path::PathBuf;

use crate::config::{ConfigError, ConfigFile, Entry, ErrorKind, Mode, Source};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Help,
    Version,
    /// Print the configuration reference (Markdown).
    ConfigReference,
    Run(RunArgs),
}

/// Arguments of a node run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunArgs {
    pub mode: Option<Mode>,
    pub home: PathBuf,
    pub config: Option<PathBuf>,
    pub log_file: Option<PathBuf>,
    pub nodes_file: Option<PathBuf>,
    pub cluster_config: Option<PathBuf>,
    pub console: bool,
    pub script: Option<PathBuf>,
    /// Print the effective configuration and exit.
    pub print_config: bool,
    /// Every other `-key value`, as the highest-precedence configuration layer.
    pub overrides: ConfigFile,
}

/// Usage text for `--help`.
pub const USAGE: &str = "\
porpoise — an open-source DolphinDB-compatible HA time-series database cluster

USAGE:
    porpoise -mode <role> [-home DIR] [-config FILE] [-logFile FILE] [-nodesFile FILE]
             [-clusterConfig FILE] [-console 0|1] [-script FILE] [-<key> <value>]...
    porpoise shell [-host H] [-port P] [-user U -password W] [-e SCRIPT | FILE]
                                     a DolphinDB console on a running node (`porpoise shell -h`)
    porpoise --help | --version | --config-reference
    porpoise ... --print-config      resolve the configuration, print it with sources, exit

ROLES (-mode):
    single        one process with local storage (default port 8848)
    controller    metadata and cluster management (a Raft group with dfsHAMode=Raft)
    agent         starts and stops the data and compute nodes of its host
    datanode      stores chunks and runs sub-queries
    computenode   plans and merges queries; stores nothing

FILES (as DolphinDB names them):
    -config         controller.cfg, agent.cfg or dolphindb.cfg (single; default ./dolphindb.cfg)
    -nodesFile      cluster.nodes (controller; default: next to -config)
    -clusterConfig  cluster.cfg (controller, data and compute nodes; default: next to -config)
    -logFile        where the structured log goes (default: <home>/<alias>.log)
    -home           the node's home directory (default: the working directory)

Any other -key value overrides that configuration key, e.g. -localSite 127.0.0.1:8848:local8848.
";

fn bad(msg: String) -> ConfigError {
    ConfigError::new(Source::CommandLine, 0, ErrorKind::BadArgument(msg))
}

/// Parses `args` (without the program name).
pub fn parse(args: &[String]) -> Result<Command, ConfigError> {
    let mut run = RunArgs {
        mode: None,
        home: PathBuf::from("."),
        config: None,
        log_file: None,
        nodes_file: None,
        cluster_config: None,
        console: false,
        script: None,
        print_config: false,
        overrides: ConfigFile {
            source: Source::CommandLine,
            entries: Vec::new(),
        },
    };
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        match arg {
            "--help" | "-help" | "-h" => return Ok(Command::Help),
            "--version" | "-version" | "-v" => return Ok(Command::Version),
            "--config-reference" => return Ok(Command::ConfigReference),
            "--print-config" => {
                run.print_config = true;
                i += 1;
                continue;
            }
            _ => {}
        }
        let Some(key) = arg
            .strip_prefix('-')
            .filter(|k| !k.is_empty() && !k.starts_with('-'))
        else {
            return Err(bad(format!(
                "unexpected argument '{arg}' (options look like -key value)"
            )));
        };
        let value = args
            .get(i + 1)
            .ok_or_else(|| bad(format!("option -{key} needs a value")))?
            .clone();
        i += 2;
        match key {
            "mode" => {
                let mode = Mode::parse(&value).ok_or_else(|| {
                    ConfigError::new(
                        Source::CommandLine,
                        0,
                        ErrorKind::UnknownMode(value.clone()),
                    )
                })?;
                run.mode = Some(mode);
                run.overrides.entries.push(Entry {
                    alias_pattern: None,
                    key: "mode".into(),
                    value: mode.as_str().into(),
                    line: 0,
                });
            }
            "home" => run.home = PathBuf::from(value),
            "config" => run.config = Some(PathBuf::from(value)),
            "logFile" => run.log_file = Some(PathBuf::from(value)),
            "nodesFile" => run.nodes_file = Some(PathBuf::from(value)),
            "clusterConfig" => run.cluster_config = Some(PathBuf::from(value)),
            "console" => {
                run.console = match value.as_str() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(bad(format!("-console takes 0 or 1, not '{value}'"))),
                }
            }
            "script" => run.script = Some(PathBuf::from(value)),
            _ => run.overrides.entries.push(Entry {
                alias_pattern: None,
                key: key.to_string(),
                value,
                line: 0,
            }),
        }
    }
    Ok(Command::Run(run))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_the_tutorial_controller_command_line() {
        let c = parse(&args(
            "-console 0 -mode controller -home data -script dolphindb.dos -config config/controller.cfg \
             -logFile log/controller.log -nodesFile config/cluster.nodes -clusterConfig config/cluster.cfg",
        ))
        .unwrap();
        let Command::Run(r) = c else {
            panic!("expected a run")
        };
        assert_eq!(r.mode, Some(Mode::Controller));
        assert_eq!(r.home, PathBuf::from("data"));
        assert_eq!(r.config, Some(PathBuf::from("config/controller.cfg")));
        assert_eq!(r.nodes_file, Some(PathBuf::from("config/cluster.nodes")));
        assert_eq!(r.cluster_config, Some(PathBuf::from("config/cluster.cfg")));
        assert_eq!(r.log_file, Some(PathBuf::from("log/controller.log")));
        assert_eq!(r.script, Some(PathBuf::from("dolphindb.dos")));
        assert!(!r.console);
    }

    #[test]
    fn other_options_become_overrides() {
        let Command::Run(r) = parse(&args(
            "-mode single -localSite 127.0.0.1:9000:n1 -maxMemSize 4",
        ))
        .unwrap() else {
            panic!()
        };
        let keys: Vec<_> = r
            .overrides
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("mode", "single"),
                ("localSite", "127.0.0.1:9000:n1"),
                ("maxMemSize", "4")
            ]
        );
    }

    #[test]
    fn help_version_and_errors() {
        assert_eq!(parse(&args("--help")).unwrap(), Command::Help);
        assert_eq!(parse(&args("--version")).unwrap(), Command::Version);
        assert_eq!(parse(&args("-mode boss")).unwrap_err().code(), "CFG-006");
        assert_eq!(parse(&args("-mode")).unwrap_err().code(), "CFG-012");
        assert_eq!(parse(&args("stray")).unwrap_err().code(), "CFG-012");
        assert_eq!(parse(&args("-console 2")).unwrap_err().code(), "CFG-012");
    }
}
