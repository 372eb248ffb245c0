//! Invariant: **acknowledged metadata changes are never lost.**
//!
//! The workload writes `key=value` pairs to the controllers' nodes configuration, each key
//! once. Whatever the faults, every write the group acknowledged must be in the final state
//! with its value. Writes that failed or timed out may or may not be there (the client cannot
//! know), but none may appear with a value that was never written.

use std::collections::BTreeMap;

/// `acked`: writes the group acknowledged; `attempted`: every write sent (acknowledged or
/// not); `state`: the configuration the leader holds at the end.
pub fn check(
    acked: &BTreeMap<String, String>,
    attempted: &BTreeMap<String, String>,
    state: &BTreeMap<String, String>,
) -> Result<(), String> {
    for (k, v) in acked {
        match state.get(k) {
            Some(got) if got == v => {}
            Some(got) => return Err(format!("acknowledged {k}={v} but the state has {k}={got}")),
            None => return Err(format!("acknowledged {k}={v} is lost")),
        }
    }
    for (k, v) in state {
        if attempted.get(k) != Some(v) {
            return Err(format!("{k}={v} is in the state but was never written"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn losses_and_inventions_are_caught() {
        let attempted = m(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let acked = m(&[("a", "1"), ("b", "2")]);
        assert!(check(
            &acked,
            &attempted,
            &m(&[("a", "1"), ("b", "2"), ("c", "3")])
        )
        .is_ok());
        assert!(check(&acked, &attempted, &m(&[("a", "1"), ("b", "2")])).is_ok());
        assert!(check(&acked, &attempted, &m(&[("a", "1")]))
            .unwrap_err()
            .contains("lost"));
        assert!(check(&acked, &attempted, &m(&[("a", "1"), ("b", "9")])).is_err());
        assert!(check(
            &acked,
            &attempted,
            &m(&[("a", "1"), ("b", "2"), ("z", "0")])
        )
        .unwrap_err()
        .contains("never written"));
    }
}
