//! Invariant: **a query during faults gives the right answer or a clear error.**
//!
//! A read of the batches' counts that answers shows every batch acknowledged before it was
//! sent, each whole, and nothing never appended (it may or may not show a batch whose append
//! was still running). A read that fails says why (an error message); one that gets no answer
//! at all is a failure unless the node it was sent to was killed meanwhile.

use std::collections::{BTreeMap, BTreeSet};

/// One read as the scenario saw it.
#[derive(Debug, Clone, Default)]
pub struct Read {
    /// Batches acknowledged before the read was sent.
    pub acked_before: BTreeSet<i64>,
    /// Batches sent (acknowledged or not) by the time the answer came.
    pub attempted_by_end: BTreeSet<i64>,
    /// batch → rows, when it answered.
    pub counts: Option<BTreeMap<i64, u64>>,
    /// The error it answered with, when it failed.
    pub error: Option<String>,
    /// The node it was sent to was killed while it ran.
    pub target_killed: bool,
}

pub fn check(r: &Read, rows_of: impl Fn(i64) -> u64) -> Result<(), String> {
    match (&r.counts, &r.error) {
        (Some(counts), _) => {
            super::whole_reads::check(counts, &rows_of)?;
            if let Some(b) = r.acked_before.iter().find(|b| !counts.contains_key(b)) {
                return Err(format!(
                    "a read misses batch {b}, acknowledged before it was sent"
                ));
            }
            if let Some(b) = counts.keys().find(|b| !r.attempted_by_end.contains(b)) {
                return Err(format!("a read shows batch {b}, which was never appended"));
            }
            Ok(())
        }
        (None, Some(e)) if !e.trim().is_empty() => Ok(()),
        (None, _) if r.target_killed => Ok(()),
        (None, _) => Err("a read got no answer from a node that stayed up".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(counts: Option<&[(i64, u64)]>, error: Option<&str>, killed: bool) -> Read {
        Read {
            acked_before: [1, 2].into(),
            attempted_by_end: [1, 2, 3].into(),
            counts: counts.map(|c| c.iter().copied().collect()),
            error: error.map(str::to_string),
            target_killed: killed,
        }
    }

    #[test]
    fn a_wrong_answer_or_a_silent_failure_is_caught() {
        check(&read(Some(&[(1, 8), (2, 8)]), None, false), |_| 8).unwrap();
        check(&read(Some(&[(1, 8), (2, 8), (3, 8)]), None, false), |_| 8).unwrap();
        check(
            &read(None, Some("<DataNodeNotAvail>no replica"), false),
            |_| 8,
        )
        .unwrap();
        check(&read(None, None, true), |_| 8).unwrap();
        let missing = check(&read(Some(&[(1, 8)]), None, false), |_| 8).unwrap_err();
        assert!(missing.contains("misses batch 2"), "{missing}");
        let invented = check(&read(Some(&[(1, 8), (2, 8), (9, 8)]), None, false), |_| 8);
        assert!(invented.unwrap_err().contains("never appended"));
        assert!(check(&read(Some(&[(1, 8), (2, 4)]), None, false), |_| 8).is_err());
        let silent = check(&read(None, None, false), |_| 8).unwrap_err();
        assert!(silent.contains("no answer"), "{silent}");
    }
}
