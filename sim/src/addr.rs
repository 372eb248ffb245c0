//! Host addresses inside the simulation.
//!
//! madsim routes every loopback address (127.0.0.0/8) back into the *same* simulated node, so
//! the tutorial's hosts as configured for one real machine (127.0.0.80/81/82) would all collapse
//! into one. The harness therefore maps `127.0.0.N` to the virtual address `10.0.0.N` (the
//! tutorial's own addresses). These exist only inside madsim; no packet leaves the process.

use std::net::{IpAddr, Ipv4Addr};

/// The simulated address of a configured host.
pub fn sim_ip(host: &str) -> Option<IpAddr> {
    let ip: IpAddr = if host == "localhost" {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse().ok()?
    };
    Some(match ip {
        IpAddr::V4(v4) if v4.is_loopback() => {
            let [_, _, _, d] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, d))
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_become_distinct_virtual_hosts() {
        assert_eq!(sim_ip("127.0.0.80"), Some("10.0.0.80".parse().unwrap()));
        assert_eq!(sim_ip("127.0.0.82"), Some("10.0.0.82".parse().unwrap()));
        assert_eq!(sim_ip("10.0.0.81"), Some("10.0.0.81".parse().unwrap()));
        assert_eq!(sim_ip("localhost"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(sim_ip("not an ip"), None);
    }
}
