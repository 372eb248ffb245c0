//! Invariant: **the group refuses writes without a majority.**
//!
//! While a controller is cut off from the others, a client on its side of the partition keeps
//! writing to it. None of those writes may be acknowledged: a deposed leader that still
//! believes it leads cannot commit without a quorum.

/// `acked_in_minority`: writes acknowledged through the cut-off controller while partitioned.
pub fn check(acked_in_minority: &[String]) -> Result<(), String> {
    match acked_in_minority.first() {
        None => Ok(()),
        Some(k) => Err(format!(
            "{} write(s) acknowledged without a majority, first {k}",
            acked_in_minority.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn any_minority_ack_is_a_violation() {
        assert!(super::check(&[]).is_ok());
        assert!(super::check(&["k1".into()]).is_err());
    }
}
