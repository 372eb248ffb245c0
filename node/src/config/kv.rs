//! The `key=value` file format of controller.cfg, agent.cfg, cluster.cfg and dolphindb.cfg.
//!
//! - One setting per line; blank lines and lines starting with `#` are ignored; leading and
//!   trailing spaces are trimmed (the tutorial indents ` publicName=...`).
//! - `alias.key=value` applies to the nodes whose alias matches `alias` (wildcards `%`, `?`).
//! - Everything after the first `=` is the value (values may contain `=`, `:` and `,`).

use super::error::{ConfigError, ErrorKind, Source};
use super::site::check_alias;

/// Longest configuration file accepted.
pub const CONFIG_BYTES_MAX: usize = 4 << 20;

/// One `key=value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The alias pattern of an `alias.key=value` override, if any.
    pub alias_pattern: Option<String>,
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// A parsed configuration source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub source: Source,
    pub entries: Vec<Entry>,
}

fn is_key(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses the text of a `key=value` file.
pub fn parse(source: Source, text: &str) -> Result<ConfigFile, ConfigError> {
    if text.len() > CONFIG_BYTES_MAX {
        return Err(ConfigError::new(
            source,
            0,
            ErrorKind::Io(format!("file is larger than {CONFIG_BYTES_MAX} bytes")),
        ));
    }
    let mut entries = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim().trim_start_matches('\u{feff}');
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let syntax = || ConfigError::new(source.clone(), line, ErrorKind::Syntax(t.to_string()));
        let (lhs, value) = t.split_once('=').ok_or_else(syntax)?;
        let lhs = lhs.trim();
        let (alias_pattern, key) = match lhs.rsplit_once('.') {
            Some((pattern, key)) => {
                let plain = pattern.replace(['%', '?'], "a");
                let all_wild = !pattern.is_empty() && pattern.chars().all(|c| c == '%');
                if pattern.is_empty() || (check_alias(&plain).is_err() && !all_wild) {
                    return Err(syntax());
                }
                (Some(pattern.to_string()), key)
            }
            None => (None, lhs),
        };
        if !is_key(key) {
            return Err(syntax());
        }
        entries.push(Entry {
            alias_pattern,
            key: key.to_string(),
            value: value.trim().to_string(),
            line,
        });
    }
    Ok(ConfigFile { source, entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> Source {
        Source::File("cluster.cfg".into())
    }

    #[test]
    fn parses_keys_overrides_and_comments() {
        let f = parse(
            src(),
            "# comment\nmaxMemSize=32\n\n datanode1.publicName=19.56.128.21\n%-datanode.volumes=/VOL1\nsites=a:1:b:agent,c:2:d:controller\nx=a=b\n",
        )
        .unwrap();
        assert_eq!(f.entries.len(), 5);
        assert_eq!(f.entries[0].key, "maxMemSize");
        assert_eq!(f.entries[0].line, 2);
        assert_eq!(f.entries[1].alias_pattern.as_deref(), Some("datanode1"));
        assert_eq!(f.entries[1].line, 4);
        assert_eq!(f.entries[2].alias_pattern.as_deref(), Some("%-datanode"));
        assert_eq!(f.entries[4].value, "a=b");
    }

    #[test]
    fn reports_the_line_of_a_syntax_error() {
        let e = parse(src(), "a=1\nnot a setting\n").unwrap_err();
        assert_eq!(e.location.line, 2);
        assert_eq!(e.code(), "CFG-002");
        assert!(e.to_string().contains("cluster.cfg:2"), "{e}");
        assert!(parse(src(), "=5").is_err());
        assert!(parse(src(), "a b=5").is_err());
        assert!(parse(src(), ".key=5").is_err());
    }
}
