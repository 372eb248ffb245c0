//! Invariant: **an append is all or nothing, and nothing acknowledged is lost.**
//!
//! The workload appends batches, each a fixed number of rows over several partitions (so every
//! append is a transaction over several chunks on several data nodes), each tagged with its
//! batch number. At the end, read through any node: every batch present has exactly its rows,
//! every acknowledged batch is present, and no batch appears that was never sent.

use std::collections::{BTreeMap, BTreeSet};

/// `counts`: batch → rows the final read found; `rows_of`: rows each batch's append wrote.
pub fn check(
    counts: &BTreeMap<i64, u64>,
    rows_of: impl Fn(i64) -> u64,
    acked: &BTreeSet<i64>,
    attempted: &BTreeSet<i64>,
) -> Result<(), String> {
    for (b, n) in counts {
        let rows_per_batch = rows_of(*b);
        if *n != rows_per_batch {
            return Err(format!(
                "batch {b} has {n} of its {rows_per_batch} rows: an append applied in part"
            ));
        }
        if !attempted.contains(b) {
            return Err(format!("batch {b} is present but was never appended"));
        }
    }
    if let Some(b) = acked.iter().find(|b| !counts.contains_key(b)) {
        return Err(format!("acknowledged batch {b} is lost"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_of_a_batch_lost_batches_and_invented_ones_are_caught() {
        let attempted: BTreeSet<i64> = (0..4).collect();
        let acked: BTreeSet<i64> = [0, 1].into();
        let ok: BTreeMap<i64, u64> = [(0, 8), (1, 8), (3, 8)].into();
        check(&ok, |_| 8, &acked, &attempted).unwrap();
        let half: BTreeMap<i64, u64> = [(0, 8), (1, 4)].into();
        assert!(check(&half, |_| 8, &acked, &attempted)
            .unwrap_err()
            .contains("in part"));
        let lost: BTreeMap<i64, u64> = [(0, 8)].into();
        assert!(check(&lost, |_| 8, &acked, &attempted)
            .unwrap_err()
            .contains("lost"));
        let invented: BTreeMap<i64, u64> = [(0, 8), (1, 8), (9, 8)].into();
        assert!(check(&invented, |_| 8, &acked, &attempted)
            .unwrap_err()
            .contains("never"));
    }
}
