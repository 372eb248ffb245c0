//! Invariant: **no read sees half a transaction.**
//!
//! Reads run while appends commit and nodes fail. A read may fail with a clear error; one that
//! answers shows every batch it shows whole.

use std::collections::BTreeMap;

/// `read`: batch → rows one read found.
pub fn check(read: &BTreeMap<i64, u64>, rows_of: impl Fn(i64) -> u64) -> Result<(), String> {
    match read.iter().find(|(b, n)| **n != rows_of(**b)) {
        Some((b, n)) => Err(format!(
            "a read saw {n} of batch {b}'s {} rows: half a transaction",
            rows_of(*b)
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_partial_batch_is_caught() {
        super::check(&[(1, 8), (2, 8)].into(), |_| 8).unwrap();
        assert!(super::check(&[(1, 8), (2, 3)].into(), |_| 8).is_err());
    }
}
