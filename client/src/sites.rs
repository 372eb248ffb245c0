//! HA site lists, as the official clients take them: `"host:port"` strings.

/// One server address a client may connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Parses `"host:port"`; the host may be a name or an IPv4 address.
pub fn parse_site(s: &str) -> Result<Site, String> {
    let (host, port) = s
        .trim()
        .rsplit_once(':')
        .ok_or_else(|| format!("site '{s}' is not host:port"))?;
    if host.is_empty() {
        return Err(format!("site '{s}' has an empty host"));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("site '{s}' has an invalid port '{port}'"))?;
    Ok(Site {
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_tutorial_sites() {
        let s = parse_site("10.0.0.80:8902").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("10.0.0.80", 8902));
        assert!(parse_site("10.0.0.80").is_err());
        assert!(parse_site(":8902").is_err());
        assert!(parse_site("h:0").is_err());
        assert!(parse_site("h:99999").is_err());
    }
}
