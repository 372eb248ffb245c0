//! Typed configuration values, parsed according to the key table.

use std::path::{Path, PathBuf};

use super::error::ErrorKind;
use super::keys::{KeyDef, Kind};
use super::site::Site;
use super::Mode;

/// A parsed configuration value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Site(Site),
    Sites(Vec<(Site, Mode)>),
    Paths(Vec<PathBuf>),
    Path(PathBuf),
}

/// Replaces `<ALIAS>` with the node's alias.
pub fn substitute_alias(raw: &str, alias: &str) -> String {
    raw.replace("<ALIAS>", alias)
}

/// Parses `raw` for key `def` on the node `alias` whose home is `home`.
pub fn parse(def: &KeyDef, raw: &str, alias: &str, home: &Path) -> Result<Value, ErrorKind> {
    let wrong = || ErrorKind::WrongType {
        key: def.name.to_string(),
        value: raw.to_string(),
        expected: def.kind.describe(),
    };
    let raw_sub = substitute_alias(raw, alias);
    let v = raw_sub.trim();
    Ok(match def.kind {
        Kind::Int { min, max } => {
            let n: i64 = v.parse().map_err(|_| wrong())?;
            if n < min || n > max {
                return Err(wrong());
            }
            Value::Int(n)
        }
        Kind::Float { min, max } => {
            let n: f64 = v.parse().map_err(|_| wrong())?;
            if !n.is_finite() || n < min || n > max {
                return Err(wrong());
            }
            Value::Float(n)
        }
        Kind::Bool => match v.to_ascii_lowercase().as_str() {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(wrong()),
        },
        Kind::Str => Value::Str(v.to_string()),
        Kind::Choice(choices) => {
            let c = choices
                .iter()
                .find(|c| c.eq_ignore_ascii_case(v))
                .ok_or_else(wrong)?;
            Value::Str(c.to_string())
        }
        Kind::Site => Value::Site(Site::parse(v).map_err(|reason| ErrorKind::MalformedSite {
            value: v.to_string(),
            reason,
        })?),
        Kind::Sites => {
            let mut out = Vec::new();
            for part in v.split(',').filter(|p| !p.trim().is_empty()) {
                out.push(Site::parse_with_mode(part).map_err(|reason| {
                    ErrorKind::MalformedSite {
                        value: part.trim().to_string(),
                        reason,
                    }
                })?);
            }
            if out.is_empty() {
                return Err(wrong());
            }
            Value::Sites(out)
        }
        Kind::AbsPaths => {
            let mut out = Vec::new();
            for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let p = PathBuf::from(part);
                if !p.is_absolute() {
                    return Err(ErrorKind::RelativePath {
                        key: def.name.to_string(),
                        value: raw.to_string(),
                    });
                }
                out.push(p);
            }
            if out.is_empty() {
                return Err(wrong());
            }
            Value::Paths(out)
        }
        Kind::Path => {
            if v.is_empty() {
                return Err(wrong());
            }
            let p = PathBuf::from(v);
            Value::Path(if p.is_absolute() { p } else { home.join(p) })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::keys::lookup;
    use super::*;

    fn p(key: &str, raw: &str) -> Result<Value, ErrorKind> {
        parse(
            lookup(key).unwrap(),
            raw,
            "datanode1",
            Path::new("/home/ddb/data"),
        )
    }

    #[test]
    fn typed_values() {
        assert_eq!(p("workerNum", "4"), Ok(Value::Int(4)));
        assert!(matches!(
            p("workerNum", "four"),
            Err(ErrorKind::WrongType { .. })
        ));
        assert!(matches!(
            p("workerNum", "0"),
            Err(ErrorKind::WrongType { .. })
        ));
        assert_eq!(p("maxMemSize", "0.5"), Ok(Value::Float(0.5)));
        assert!(p("maxMemSize", "NaN").is_err());
        assert_eq!(p("lanCluster", "0"), Ok(Value::Bool(false)));
        assert_eq!(
            p("enableChunkGranularityConfig", "true"),
            Ok(Value::Bool(true))
        );
        assert!(p("lanCluster", "yes").is_err());
        assert_eq!(p("dfsHAMode", "raft"), Ok(Value::Str("Raft".into())));
        assert_eq!(
            p("newValuePartitionPolicy", "add"),
            Ok(Value::Str("add".into()))
        );
    }

    #[test]
    fn volumes_substitute_alias_and_must_be_absolute() {
        assert_eq!(
            p("volumes", "/VOL1/<ALIAS>,/VOL2/<ALIAS>"),
            Ok(Value::Paths(vec![
                "/VOL1/datanode1".into(),
                "/VOL2/datanode1".into()
            ]))
        );
        assert!(matches!(
            p("volumes", "VOL1/<ALIAS>"),
            Err(ErrorKind::RelativePath { .. })
        ));
        assert!(matches!(
            p("volumes", "/ok,rel"),
            Err(ErrorKind::RelativePath { .. })
        ));
        assert_eq!(
            p("chunkMetaDir", "meta"),
            Ok(Value::Path("/home/ddb/data/meta".into()))
        );
        assert_eq!(
            p("publicName", "<ALIAS>.example.com"),
            Ok(Value::Str("datanode1.example.com".into()))
        );
    }
}
