//! Configuration edited through the controllers — the web manager's Controller Config and Nodes
//! Config pages, `saveControllerConfigs` and `saveClusterNodesConfigs` — and written back to
//! every controller's controller.cfg and cluster.cfg (D103).
//!
//! An edit is a set of `lhs=value` lines, `lhs` being `key` or `alias.key` (`%`/`?`
//! patterns): a key set, as DolphinDB's web keeps it, since within a file a more specific
//! `lhs` wins whatever the order (`super` module invariant) and a repeated `lhs` would only
//! let the last line win.
//!
//! Invariants:
//! - an edit is checked like a file before anything is kept: every line is `key=value`, names
//!   a known key and has a value of its type; an error names the line (its place in the list);
//! - writing back keeps a file's own layout: comments, blank lines and the order of the keys
//!   it has stay; a key the edit dropped is removed, a changed one rewritten in place, a new
//!   one appended. So a file already matching the edit is left byte for byte as it is;
//! - each controller's own identity (`localSite`, `publicName` of controller.cfg: the
//!   [`CONTROLLER_OWN_KEYS`]) is never shared: an edit of the controller configuration
//!   neither records nor rewrites them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, ErrorKind, Source};
use super::{keys, kv, value};

/// Keys of controller.cfg that differ per controller and stay in each controller's own file.
pub const CONTROLLER_OWN_KEYS: &[&str] = &["localSite", "publicName"];

/// Which file an edit is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// controller.cfg, the controllers' own settings.
    Controller,
    /// cluster.cfg, the data and compute nodes' settings.
    Nodes,
}

impl Which {
    pub fn file_name(self) -> &'static str {
        match self {
            Which::Controller => "controller.cfg",
            Which::Nodes => "cluster.cfg",
        }
    }

    /// Whether `lhs` is recorded for every controller (not one controller's own).
    pub fn shared(self, lhs: &str) -> bool {
        self == Which::Nodes || !CONTROLLER_OWN_KEYS.contains(&lhs)
    }
}

/// The `lhs` of an entry: `key` or `alias.key`.
fn lhs(e: &kv::Entry) -> String {
    match &e.alias_pattern {
        Some(p) => format!("{p}.{}", e.key),
        None => e.key.clone(),
    }
}

/// Checks edited `lines` as `which` and returns their shared keys (`lhs` → value). A value is
/// checked against its key's type, paths relative to `home`.
pub fn validate(
    which: Which,
    lines: &[String],
    home: &Path,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let source = Source::File(PathBuf::from(which.file_name()));
    for (i, line) in lines.iter().enumerate() {
        if line.contains('\n') {
            return Err(ConfigError::new(
                source,
                i + 1,
                ErrorKind::Syntax(line.replace('\n', "\\n")),
            ));
        }
    }
    let file = kv::parse(source.clone(), &lines.join("\n"))?;
    let mut out = BTreeMap::new();
    for e in &file.entries {
        let Some(def) = keys::lookup(&e.key) else {
            return Err(ConfigError::new(
                source,
                e.line,
                ErrorKind::UnknownKey {
                    key: e.key.clone(),
                    hint: keys::lookup_case_insensitive(&e.key).map(|k| k.name.to_string()),
                },
            ));
        };
        value::parse(def, &e.value, "ALIAS", home)
            .map_err(|kind| ConfigError::new(source.clone(), e.line, kind))?;
        let lhs = lhs(e);
        if which.shared(&lhs) {
            out.insert(lhs, e.value.clone());
        }
    }
    if which == Which::Controller && out.get("mode").map(String::as_str) != Some("controller") {
        return Err(ConfigError::new(
            source,
            0,
            ErrorKind::MissingKey {
                key: "mode=controller".into(),
                mode: "controller".into(),
            },
        ));
    }
    Ok(out)
}

/// The shared keys a file's text holds now (`lhs` → value; the last line of a repeated `lhs`
/// wins). Lines that do not parse are skipped: the file was checked when the node started.
pub fn shared_keys(which: Which, text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Ok(f) = kv::parse(Source::Default, line) {
            for e in &f.entries {
                let lhs = lhs(e);
                if which.shared(&lhs) {
                    out.insert(lhs, e.value.clone());
                }
            }
        }
    }
    out
}

/// A controller.cfg's own lines ([`CONTROLLER_OWN_KEYS`]), as `lhs=value`.
pub fn own_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        if let Ok(f) = kv::parse(Source::Default, line) {
            for e in &f.entries {
                let lhs = lhs(e);
                if !Which::Controller.shared(&lhs) {
                    out.push(format!("{lhs}={}", e.value));
                }
            }
        }
    }
    out
}

/// `lhs=value` lines of a key set, in key order (`loadControllerConfigs`' answer).
pub fn lines_of(keys: &BTreeMap<String, String>) -> Vec<String> {
    keys.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The text a file must have to hold exactly `wanted` as its shared keys, keeping its layout
/// (module invariants). `current` is the file's text now.
pub fn render(which: Which, current: &str, wanted: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(current.len() + 64);
    let mut written = std::collections::BTreeSet::new();
    for line in current.lines() {
        let entry = kv::parse(Source::Default, line)
            .ok()
            .and_then(|f| f.entries.into_iter().next());
        let Some(e) = entry else {
            // A comment, a blank line (or a line that does not parse: kept as the user wrote it).
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let lhs = lhs(&e);
        if !which.shared(&lhs) {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        match wanted.get(&lhs) {
            // A repeated line of a kept key is dropped: the one kept carries the value.
            Some(_) if written.contains(&lhs) => {}
            Some(v) if *v == e.value => {
                out.push_str(line);
                out.push('\n');
                written.insert(lhs);
            }
            Some(v) => {
                out.push_str(&format!("{lhs}={v}\n"));
                written.insert(lhs);
            }
            None => {}
        }
    }
    for (k, v) in wanted {
        if !written.contains(k) {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &[&str]) -> Vec<String> {
        s.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn an_edit_is_checked_like_a_file_and_names_its_line() {
        let home = Path::new("/tmp");
        let ok = validate(
            Which::Nodes,
            &lines(&[
                "maxMemSize=16",
                "datanode1.volumes=/v1",
                "%node?.workerNum=2",
            ]),
            home,
        )
        .unwrap();
        assert_eq!(ok.len(), 3);
        assert_eq!(ok["datanode1.volumes"], "/v1");
        let e = validate(
            Which::Nodes,
            &lines(&["maxMemSize=16", "workerNum=many"]),
            home,
        )
        .unwrap_err();
        assert_eq!((e.code(), e.location.line), ("CFG-008", 2), "{e}");
        assert!(e.to_string().contains("cluster.cfg:2"), "{e}");
        let e = validate(Which::Nodes, &lines(&["maxmemsize=16"]), home).unwrap_err();
        assert_eq!(e.code(), "CFG-013");
        assert!(e.to_string().contains("did you mean 'maxMemSize'"), "{e}");
        let e = validate(Which::Nodes, &lines(&["a b"]), home).unwrap_err();
        assert_eq!(e.code(), "CFG-002");
        let e = validate(Which::Nodes, &lines(&["x=1\nmode=single"]), home).unwrap_err();
        assert_eq!(e.code(), "CFG-002");
    }

    #[test]
    fn a_controller_edit_keeps_each_controllers_identity_out() {
        let home = Path::new("/tmp");
        let kept = validate(
            Which::Controller,
            &lines(&[
                "mode=controller",
                "localSite=127.0.0.80:8800:controller1",
                "dfsReplicationFactor=2",
            ]),
            home,
        )
        .unwrap();
        assert_eq!(
            kept.keys().collect::<Vec<_>>(),
            ["dfsReplicationFactor", "mode"]
        );
        // Without mode=controller the file would no longer start a controller.
        let e = validate(Which::Controller, &lines(&["dfsReplicationFactor=2"]), home).unwrap_err();
        assert_eq!(e.code(), "CFG-010");
    }

    #[test]
    fn writing_back_keeps_the_files_layout() {
        let current = "mode=controller\nlocalSite=127.0.0.81:8800:controller2\n# replicas\ndfsReplicationFactor=2\nmaxMemSize=8\n\nlanCluster=0\n";
        let mut wanted = shared_keys(Which::Controller, current);
        assert!(!wanted.contains_key("localSite"));
        assert_eq!(
            own_lines(current),
            ["localSite=127.0.0.81:8800:controller2"]
        );
        // Unchanged: byte for byte.
        assert_eq!(render(Which::Controller, current, &wanted), current);
        wanted.insert("maxMemSize".into(), "16".into());
        wanted.remove("lanCluster");
        wanted.insert("workerNum".into(), "4".into());
        assert_eq!(
            render(Which::Controller, current, &wanted),
            "mode=controller\nlocalSite=127.0.0.81:8800:controller2\n# replicas\ndfsReplicationFactor=2\nmaxMemSize=16\n\nworkerNum=4\n"
        );
        // A controller's own keys survive an edit without them.
        let only_mode: BTreeMap<_, _> = [("mode".to_string(), "controller".to_string())].into();
        assert_eq!(
            render(Which::Controller, current, &only_mode),
            "mode=controller\nlocalSite=127.0.0.81:8800:controller2\n# replicas\n\n"
        );
    }

    #[test]
    fn a_repeated_key_is_written_once() {
        let current = "maxMemSize=8\nworkerNum=2\nmaxMemSize=9\n";
        let wanted: BTreeMap<_, _> = [
            ("maxMemSize".to_string(), "9".to_string()),
            ("workerNum".to_string(), "2".to_string()),
        ]
        .into();
        assert_eq!(shared_keys(Which::Nodes, current), wanted);
        assert_eq!(
            render(Which::Nodes, current, &wanted),
            "maxMemSize=9\nworkerNum=2\n"
        );
    }
}
