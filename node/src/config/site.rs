//! Sites: `ip:port:alias`, and the `sites=` list form `ip:port:alias:mode`.

use std::fmt;

use super::Mode;

/// A node's network identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Site {
    /// IPv4/IPv6 address or host name.
    pub host: String,
    pub port: u16,
    /// Case-sensitive, unique within a cluster.
    pub alias: String,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.host, self.port, self.alias)
    }
}

/// Longest alias accepted.
pub const ALIAS_BYTES_MAX: usize = 64;

/// Checks an alias: letters, digits, `_` and `-` only (a `.` would be read as an override
/// separator in `alias.key=value`).
pub fn check_alias(alias: &str) -> Result<(), String> {
    if alias.is_empty() {
        return Err("the alias is empty".into());
    }
    if alias.len() > ALIAS_BYTES_MAX {
        return Err(format!("the alias is longer than {ALIAS_BYTES_MAX} bytes"));
    }
    if let Some(c) = alias
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "the alias contains '{c}'; use letters, digits, '_' and '-'"
        ));
    }
    Ok(())
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        Ok(())
    } else {
        Err(format!("'{host}' is neither an IP address nor a host name"))
    }
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("port '{p}' is not a number in 1..65535")),
        Ok(port) => Ok(port),
    }
}

impl Site {
    /// Parses `ip:port:alias`.
    pub fn parse(s: &str) -> Result<Site, String> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        if parts.len() != 3 {
            return Err(format!(
                "expected 3 parts separated by ':', found {}",
                parts.len()
            ));
        }
        check_host(parts[0])?;
        let port = parse_port(parts[1])?;
        check_alias(parts[2])?;
        Ok(Site {
            host: parts[0].to_string(),
            port,
            alias: parts[2].to_string(),
        })
    }

    /// Parses `ip:port:alias:mode` (an entry of `sites=`).
    pub fn parse_with_mode(s: &str) -> Result<(Site, Mode), String> {
        let t = s.trim();
        let (site, mode) = t
            .rsplit_once(':')
            .ok_or_else(|| "expected ip:port:alias:mode".to_string())?;
        let site = Site::parse(site)?;
        let mode = Mode::parse(mode).ok_or_else(|| format!("unknown mode '{mode}'"))?;
        Ok((site, mode))
    }

    /// `host:port`, for binding and connecting.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tutorial_sites() {
        let s = Site::parse("10.0.0.80:8800:controller1").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.alias.as_str()),
            ("10.0.0.80", 8800, "controller1")
        );
        assert_eq!(s.to_string(), "10.0.0.80:8800:controller1");
        let (s, m) = Site::parse_with_mode("10.0.0.80:8801:agent1:agent").unwrap();
        assert_eq!((s.alias.as_str(), m), ("agent1", Mode::Agent));
        assert!(Site::parse("P1-datanode.example:8802:P1-datanode").is_ok());
    }

    #[test]
    fn rejects_malformed_sites() {
        for bad in [
            "10.0.0.80:8800",
            "10.0.0.80:8800:a:b",
            "10.0.0.80:0:a",
            "10.0.0.80:70000:a",
            "10.0.0.80:x:a",
            ":8800:a",
            "10.0.0.80:8800:",
            "10.0.0.80:8800:a.b",
            "10.0.0.80:8800:a b",
            "bad host:8800:a",
        ] {
            assert!(Site::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(Site::parse_with_mode("10.0.0.80:8801:agent1:robot").is_err());
    }
}
