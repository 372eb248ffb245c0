//! The agent role: starts and stops its host's data and compute nodes as child processes on a
//! controller's command (`startDataNode` / `stopDataNode`, issue 18), with the command line
//! DolphinDB's agents use and `configs/cluster/*/startDataNode.sh` spells out:
//!
//! ```text
//! porpoise -console 0 -mode datanode -home data -localSite <site> \
//!     -controllerSite <the agent's controllerSite> -clusterConfig config/cluster.cfg \
//!     -logFile log/<alias>.log
//! ```
//!
//! run from the agent's own directory (the host's), so every node of a host shares its
//! `config/` and keeps its log under the host's `log/`.
//!
//! Invariants:
//! - at most one child per alias: starting a node whose child still runs is a no-op, so a
//!   repeated click or a retried call never starts a second process on the same port;
//! - a child that exited is reaped (never left a zombie) and forgotten, so it can be started
//!   again;
//! - the agent starts only nodes of its own host: the controller sends the site, and a site on
//!   another host is refused.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, RemoteError};

/// What a controller asks an agent to start or stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCommand {
    /// `host:port:alias`.
    pub site: String,
    /// `datanode` or `computenode`.
    pub mode: String,
}

/// A host's agent: the nodes it started, by alias.
pub struct Agent {
    host: String,
    /// The agent's `controllerSite`, handed to every node it starts.
    #[cfg_attr(madsim, allow(dead_code))]
    controller_site: String,
    /// Where the nodes run from (the agent's working directory).
    #[cfg_attr(madsim, allow(dead_code))]
    dir: PathBuf,
    children: RefCell<BTreeMap<String, std::process::Child>>,
    /// Children told to stop that had not exited yet: reaped by the next `reap`.
    exiting: RefCell<Vec<std::process::Child>>,
}

impl Agent {
    pub fn new(host: &str, controller_site: &str) -> Agent {
        Agent {
            host: host.to_string(),
            controller_site: controller_site.to_string(),
            dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            children: RefCell::new(BTreeMap::new()),
            exiting: RefCell::new(Vec::new()),
        }
    }

    /// Forgets children that exited (reaping them).
    pub fn reap(&self) {
        self.children
            .borrow_mut()
            .retain(|_, c| matches!(c.try_wait(), Ok(None)));
        self.exiting
            .borrow_mut()
            .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
    }

    /// Whether the agent runs `alias` now.
    pub fn runs(&self, alias: &str) -> bool {
        self.reap();
        self.children.borrow().contains_key(alias)
    }

    /// Starts the node `cmd` names, unless it runs already; answers whether it started one.
    pub fn start(&self, cmd: &NodeCommand) -> Result<bool, RemoteError> {
        let refused = |m: String| RemoteError::new(ErrorCode::BadRequest, m);
        let site = crate::config::Site::parse(&cmd.site)
            .map_err(|e| refused(format!("{} is not a host:port:alias site: {e}", cmd.site)))?;
        let (host, alias) = (site.host.as_str(), site.alias.as_str());
        if host != self.host {
            return Err(refused(format!(
                "{alias} is on host {host}; this agent starts the nodes of {}",
                self.host
            )));
        }
        if !matches!(cmd.mode.as_str(), "datanode" | "computenode") {
            return Err(refused(format!(
                "an agent does not start a {} node",
                cmd.mode
            )));
        }
        if self.runs(alias) {
            return Ok(false);
        }
        let child = spawn(self, cmd, alias).map_err(|e| {
            RemoteError::new(
                ErrorCode::QueryFailed,
                format!("the agent could not start {alias}: {e}"),
            )
        })?;
        self.children.borrow_mut().insert(alias.to_string(), child);
        Ok(true)
    }

    /// Stops node `alias` if this agent runs it (SIGTERM, as `stopAllNode.sh` does; the node
    /// exits at once); answers whether it was running.
    pub fn stop(&self, alias: &str) -> bool {
        self.reap();
        let Some(mut child) = self.children.borrow_mut().remove(alias) else {
            return false;
        };
        // SAFETY: kill(2) on the pid of a child this agent has not reaped yet.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        // Reaped now if it already exited, else by a later `reap`.
        if matches!(child.try_wait(), Ok(None)) {
            self.exiting.borrow_mut().push(child);
        }
        true
    }
}

#[cfg(not(madsim))]
fn spawn(agent: &Agent, cmd: &NodeCommand, alias: &str) -> std::io::Result<std::process::Child> {
    let exe = std::env::current_exe()?;
    std::fs::create_dir_all(agent.dir.join("log"))?;
    std::fs::create_dir_all(agent.dir.join("data"))?;
    let out = std::fs::File::create(agent.dir.join(format!("{alias}.nohup")))?;
    std::process::Command::new(exe)
        .current_dir(&agent.dir)
        .args([
            "-console",
            "0",
            "-mode",
            &cmd.mode,
            "-home",
            "data",
            "-localSite",
        ])
        .arg(&cmd.site)
        .args(["-controllerSite", &agent.controller_site])
        .args(["-clusterConfig", "config/cluster.cfg", "-logFile"])
        .arg(format!("log/{alias}.log"))
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
}

/// Simulated hosts start no processes: the simulation starts its nodes itself.
#[cfg(madsim)]
fn spawn(_: &Agent, _: &NodeCommand, alias: &str) -> std::io::Result<std::process::Child> {
    Err(std::io::Error::other(format!(
        "a simulated agent does not start processes ({alias})"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(site: &str, mode: &str) -> NodeCommand {
        NodeCommand {
            site: site.into(),
            mode: mode.into(),
        }
    }

    #[test]
    fn an_agent_starts_only_data_and_compute_nodes_of_its_own_host() {
        let a = Agent::new("127.0.0.80", "127.0.0.80:8800:controller1");
        let refused = |c: NodeCommand| a.start(&c).unwrap_err().message;
        assert!(
            refused(cmd("127.0.0.81:8802:datanode2", "datanode")).contains("on host 127.0.0.81")
        );
        assert!(refused(cmd("127.0.0.80:8800:controller1", "controller")).contains("controller"));
        assert!(refused(cmd("127.0.0.80:x:datanode1", "datanode")).contains("host:port:alias"));
        assert!(refused(cmd("datanode1", "datanode")).contains("host:port:alias"));
        assert!(!a.runs("datanode1"));
        assert!(!a.stop("datanode1"), "nothing to stop");
    }
}
