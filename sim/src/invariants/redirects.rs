//! Invariant: **clients reach the new leader through redirects.**
//!
//! The client is configured with one controller only. Every `<NotLeader>host:port:alias` it
//! receives must name a controller of the group, and after a failover its writes must succeed
//! — which, starting from a single address, is only possible by following redirects.

/// `redirects`: the targets named by every `<NotLeader>` the client followed; `members`: the
/// controllers' `host:port:alias`; `acked_after_failover`: writes acknowledged after the
/// leader was lost.
pub fn check(
    redirects: &[String],
    members: &[String],
    acked_after_failover: usize,
) -> Result<(), String> {
    if let Some(bad) = redirects.iter().find(|r| !members.contains(r)) {
        return Err(format!("a redirect named {bad}, which is not a controller"));
    }
    if acked_after_failover == 0 {
        return Err("no write succeeded after the failover".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_targets_and_stuck_clients_are_caught() {
        let members = vec!["10.0.0.80:8800:controller1".to_string()];
        assert!(check(&members.clone(), &members, 3).is_ok());
        assert!(check(&["1.2.3.4:1:x".into()], &members, 3).is_err());
        assert!(check(&[], &members, 0).is_err());
    }
}
