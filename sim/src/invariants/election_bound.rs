//! Invariant: **a new leader is elected within a bounded time while a majority is up.**
//!
//! The scenario notes when the group lost its leader (the leader was killed, cut off or
//! clogged) and when a controller of the majority next became leader. The gap must stay under
//! the bound: a few election timeouts (randomised timeouts may collide and need a retry), never
//! an unbounded stall.

use std::time::Duration;

/// `lost_at` / `elected_at`: simulated instants (ms); `None` = never elected.
pub fn check(lost_at_ms: u64, elected_at_ms: Option<u64>, bound: Duration) -> Result<(), String> {
    match elected_at_ms {
        None => Err(format!(
            "no new leader elected (leader lost at {lost_at_ms} ms, bound {} ms)",
            bound.as_millis()
        )),
        Some(t) if t.saturating_sub(lost_at_ms) > bound.as_millis() as u64 => Err(format!(
            "a new leader took {} ms (bound {} ms)",
            t - lost_at_ms,
            bound.as_millis()
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_or_missing_elections_are_caught() {
        let b = Duration::from_secs(5);
        assert!(check(1000, Some(3000), b).is_ok());
        assert!(check(1000, Some(7000), b).is_err());
        assert!(check(1000, None, b).is_err());
    }
}
