//! The controller and nodes configuration held in Raft (D103): `loadControllerConfigs`,
//! `saveControllerConfigs`, `loadClusterNodesConfigs`, `saveClusterNodesConfigs` on the
//! leader, and every controller writing the saved sets back to its own controller.cfg and
//! cluster.cfg — as the tutorial's chapter 2 has it: edited on the web, kept by the Raft group,
//! synchronised to every configuration file, in effect when a node restarts.
//!
//! Invariants:
//! - until an edit is saved the files are the configuration (a load reads the leader's own);
//!   once saved, the metadata's set is ([`super::meta::CONFIG_MANAGED`]) and each controller's
//!   files follow it: at the save on the leader, and within [`WRITE_BACK_INTERVAL`] on every
//!   controller, including one that was down and caught up from the log;
//! - a file is replaced whole (`rt::disk::replace_file`: a synced temporary file renamed over
//!   it), so a crash leaves the old file or the new one, never half of each, and a file that
//!   already matches is not touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use crate::config::edit::{self, Which};
use crate::error::{ErrorCode, RemoteError};

use super::meta::{Command, CONFIG_MANAGED};
use super::service::ControllerService;

/// How often every controller compares its files with the saved configuration.
pub const WRITE_BACK_INTERVAL: Duration = Duration::from_secs(1);

/// A controller's configuration files, as its command line named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    pub controller: PathBuf,
    pub cluster: PathBuf,
    /// Where values' relative paths are taken from (`-home`).
    pub home: PathBuf,
}

impl Files {
    fn path(&self, which: Which) -> &Path {
        match which {
            Which::Controller => &self.controller,
            Which::Nodes => &self.cluster,
        }
    }
}

async fn read(path: &Path) -> String {
    // A missing cluster.cfg is an empty one (a controller may start without it).
    rt::disk::read_file(path)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

impl ControllerService {
    /// Where this controller's files are, once `start` named them (the single node's
    /// in-process controller and the simulation's have none: their edits live in Raft only).
    pub fn use_config_files(self: &Rc<Self>, files: Files) {
        *self.config_files.borrow_mut() = Some(files);
        let me = Rc::downgrade(self);
        drop(rt::task::spawn_local(async move {
            while let Some(svc) = me.upgrade() {
                svc.write_back_configs().await;
                drop(svc);
                rt::time::sleep(WRITE_BACK_INTERVAL).await;
            }
        }));
    }

    /// The saved set of `which`, when an edit saved one.
    fn saved(&self, which: Which) -> Option<BTreeMap<String, String>> {
        self.ctl.sm.read(|m| {
            let set = match which {
                Which::Controller => &m.controller_config,
                Which::Nodes => &m.nodes_config,
            };
            set.contains_key(CONFIG_MANAGED).then(|| {
                let mut set = set.clone();
                set.remove(CONFIG_MANAGED);
                set
            })
        })
    }

    /// `loadControllerConfigs()` / `loadClusterNodesConfigs()`: the configuration as
    /// `key=value` lines — for controller.cfg this controller's own keys first.
    pub async fn load_config(&self, which: Which) -> Result<Vec<String>, RemoteError> {
        if let Some(e) = self.not_leader_error() {
            return Err(e);
        }
        let files = self.config_files.borrow().clone();
        let own_text = match &files {
            Some(f) => read(f.path(which)).await,
            None => String::new(),
        };
        let shared = self
            .saved(which)
            .unwrap_or_else(|| edit::shared_keys(which, &own_text));
        // localSite and publicName as this controller's own file has them.
        let mut lines = if which == Which::Controller {
            edit::own_lines(&own_text)
        } else {
            Vec::new()
        };
        lines.extend(edit::lines_of(&shared));
        Ok(lines)
    }

    /// `saveControllerConfigs(lines)` / `saveClusterNodesConfigs(lines)`: checks the lines,
    /// records them through Raft and rewrites this controller's file; the others follow
    /// ([`WRITE_BACK_INTERVAL`]).
    pub async fn save_config(&self, which: Which, lines: &[String]) -> Result<(), RemoteError> {
        if let Some(e) = self.not_leader_error() {
            return Err(e);
        }
        let home = self
            .config_files
            .borrow()
            .as_ref()
            .map(|f| f.home.clone())
            .unwrap_or_else(|| PathBuf::from("."));
        let keys = edit::validate(which, lines, &home)
            .map_err(|e| RemoteError::new(ErrorCode::BadRequest, e.to_string()))?;
        let n = keys.len();
        match self
            .ctl
            .write(Command::SaveConfig {
                controller: which == Which::Controller,
                keys,
            })
            .await?
        {
            Ok(_) => {}
            Err(e) => return Err(RemoteError::new(ErrorCode::MetaRefused, e.to_string())),
        }
        self.log.info(
            "config_saved",
            &format!("{} now has {n} shared keys", which.file_name()),
            &[],
        );
        self.write_back_configs().await;
        Ok(())
    }

    /// Rewrites each of this controller's files that differs from its saved set.
    pub async fn write_back_configs(&self) {
        let Some(files) = self.config_files.borrow().clone() else {
            return;
        };
        for which in [Which::Controller, Which::Nodes] {
            let Some(wanted) = self.saved(which) else {
                continue;
            };
            let path = files.path(which);
            let current = read(path).await;
            let text = edit::render(which, &current, &wanted);
            if text == current {
                continue;
            }
            match rt::disk::replace_file(path, text.as_bytes()).await {
                Ok(()) => self.log.info(
                    "config_written",
                    &format!(
                        "{} rewritten to match the saved configuration",
                        path.display()
                    ),
                    &[],
                ),
                Err(e) => self.log.warn(
                    "config_write_failed",
                    &format!("cannot rewrite {}: {e}", path.display()),
                    &[],
                ),
            }
        }
    }
}
