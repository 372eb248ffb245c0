//! `cluster.nodes`: CSV with the header `localSite,mode`, one node per line.
//!
//! Invariants checked here: the first line is the header (an empty first line is the
//! tutorial's FAQ failure), every site is well formed, every mode is known, and aliases are
//! unique (case-sensitively).

use std::collections::HashMap;

use super::error::{ConfigError, ErrorKind, Source};
use super::site::Site;
use super::Mode;

/// Most nodes a cluster.nodes may list.
pub const NODES_MAX: usize = 4096;

/// One line of cluster.nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    pub site: Site,
    pub mode: Mode,
    pub line: usize,
}

/// A parsed cluster.nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodesFile {
    pub source: Source,
    pub nodes: Vec<NodeEntry>,
}

impl NodesFile {
    /// The node with this alias.
    pub fn get(&self, alias: &str) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.site.alias == alias)
    }

    /// The nodes of one mode, in file order.
    pub fn of_mode(&self, mode: Mode) -> impl Iterator<Item = &NodeEntry> {
        self.nodes.iter().filter(move |n| n.mode == mode)
    }
}

/// Parses the text of a cluster.nodes file.
pub fn parse(source: Source, text: &str) -> Result<NodesFile, ConfigError> {
    let err = |line, kind| ConfigError::new(source.clone(), line, kind);
    let mut lines = text.lines().enumerate();
    let header = match lines.next() {
        None => return Err(err(1, ErrorKind::EmptyNodesFile)),
        Some((_, h)) if h.trim().trim_start_matches('\u{feff}').is_empty() => {
            return Err(err(1, ErrorKind::EmptyNodesFile))
        }
        Some((_, h)) => h.trim().trim_start_matches('\u{feff}'),
    };
    let cols: Vec<String> = header
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    if cols != ["localsite", "mode"] {
        return Err(err(1, ErrorKind::BadNodesHeader(header.to_string())));
    }
    let mut nodes: Vec<NodeEntry> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, raw) in lines {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let (site, mode) = t.split_once(',').ok_or_else(|| {
            err(
                line,
                ErrorKind::Syntax(format!("{t} (expected localSite,mode)")),
            )
        })?;
        let site = Site::parse(site).map_err(|reason| {
            err(
                line,
                ErrorKind::MalformedSite {
                    value: site.trim().to_string(),
                    reason,
                },
            )
        })?;
        let mode = Mode::parse(mode.trim())
            .ok_or_else(|| err(line, ErrorKind::UnknownMode(mode.trim().to_string())))?;
        if let Some(first_line) = seen.get(&site.alias) {
            return Err(err(
                line,
                ErrorKind::DuplicateAlias {
                    alias: site.alias.clone(),
                    first_line: *first_line,
                },
            ));
        }
        if nodes.len() >= NODES_MAX {
            return Err(err(
                line,
                ErrorKind::Syntax(format!("more than {NODES_MAX} nodes")),
            ));
        }
        seen.insert(site.alias.clone(), line);
        nodes.push(NodeEntry { site, mode, line });
    }
    Ok(NodesFile { source, nodes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> Source {
        Source::File("/cfg/cluster.nodes".into())
    }

    const TUTORIAL: &str = "localSite,mode
10.0.0.80:8800:controller1,controller
10.0.0.81:8800:controller2,controller
10.0.0.82:8800:controller3,controller
10.0.0.80:8801:agent1,agent
10.0.0.80:8802:datanode1,datanode
10.0.0.80:8803:computenode1,computenode
";

    #[test]
    fn parses_the_tutorial_nodes() {
        let f = parse(src(), TUTORIAL).unwrap();
        assert_eq!(f.nodes.len(), 6);
        assert_eq!(f.of_mode(Mode::Controller).count(), 3);
        assert_eq!(f.get("datanode1").unwrap().site.port, 8802);
        assert_eq!(f.get("datanode1").unwrap().line, 6);
    }

    #[test]
    fn empty_first_line_is_the_faq_error() {
        let e = parse(src(), &format!("\n{TUTORIAL}")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::EmptyNodesFile);
        let msg = e.to_string();
        assert!(
            msg.contains("Failed to load the nodes file [/cfg/cluster.nodes] with error: The input file is empty"),
            "{msg}"
        );
        assert!(msg.contains("remove the empty line"), "{msg}");
        assert_eq!(
            parse(src(), "").unwrap_err().kind,
            ErrorKind::EmptyNodesFile
        );
        assert_eq!(
            parse(src(), "   \r\n").unwrap_err().kind,
            ErrorKind::EmptyNodesFile
        );
    }

    #[test]
    fn duplicate_aliases_are_case_sensitive() {
        let dup = format!("{TUTORIAL}10.0.0.81:8802:datanode1,datanode\n");
        let e = parse(src(), &dup).unwrap_err();
        assert_eq!(e.location.line, 8);
        assert!(e.to_string().contains("already used on line 6"), "{e}");
        let differs_by_case = format!("{TUTORIAL}10.0.0.81:8802:DataNode1,datanode\n");
        assert!(parse(src(), &differs_by_case).is_ok());
    }

    #[test]
    fn bad_lines_name_their_line() {
        let e = parse(src(), "localSite,mode\n10.0.0.80:8800,controller\n").unwrap_err();
        assert_eq!((e.code(), e.location.line), ("CFG-005", 2));
        let e = parse(src(), "localSite,mode\n10.0.0.80:8800:c1,boss\n").unwrap_err();
        assert_eq!((e.code(), e.location.line), ("CFG-006", 2));
        let e = parse(src(), "site,mode\n").unwrap_err();
        assert_eq!(e.code(), "CFG-011");
    }
}
