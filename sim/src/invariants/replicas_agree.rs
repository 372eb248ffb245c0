//! Invariant: **a transaction's rows are on all of its replicas or none, matching the
//! metadata.**
//!
//! Once every node is back and every outcome delivered, each chunk's replicas (the data nodes
//! the metadata names) hold the version the metadata records and the same rows — the same
//! count and, where the nodes report a content digest, the same content in the same order; no
//! data node still holds a transaction prepared; and a node the metadata does not name for a
//! chunk holds no committed rows of it.

use std::collections::BTreeMap;

/// What one data node reports of one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub version: u64,
    pub rows: u64,
    /// A transaction holding it prepared (0: none).
    pub txn: u64,
    /// The CRC-32 of its rows at `version` (`GET /chunks?digest`), [`UNREADABLE`] when the
    /// node could not read them, `None` when not asked for.
    pub digest: Option<u64>,
}

/// The digest of a chunk its node could not read (no CRC-32 reaches it).
pub const UNREADABLE: u64 = u64::MAX;

/// `meta`: chunk → (version, replica aliases) as the leader records them; `reports`: alias →
/// chunk → what that data node holds.
pub fn check(
    meta: &BTreeMap<u64, (u64, Vec<String>)>,
    reports: &BTreeMap<String, BTreeMap<u64, Held>>,
) -> Result<(), String> {
    for (alias, held) in reports {
        if let Some((chunk, h)) = held.iter().find(|(_, h)| h.txn != 0) {
            return Err(format!(
                "{alias} still holds transaction {} prepared on chunk {chunk}",
                h.txn
            ));
        }
    }
    for (chunk, (version, replicas)) in meta {
        let mut rows = None;
        for alias in replicas {
            let h = reports
                .get(alias)
                .and_then(|r| r.get(chunk))
                .copied()
                .unwrap_or(Held {
                    version: 0,
                    rows: 0,
                    txn: 0,
                    digest: None,
                });
            if h.version != *version {
                return Err(format!(
                    "chunk {chunk}: {alias} is at version {}, the metadata at {version}",
                    h.version
                ));
            }
            if h.digest == Some(UNREADABLE) {
                return Err(format!("chunk {chunk}: {alias} cannot read its rows"));
            }
            match rows {
                None => rows = Some((h.rows, h.digest, alias)),
                Some((r, _, first)) if r != h.rows => {
                    return Err(format!(
                        "chunk {chunk}: replicas disagree ({r} rows on {first} and {} on {alias})",
                        h.rows
                    ))
                }
                Some((_, Some(d), first)) if h.digest.is_some_and(|x| x != d) => {
                    return Err(format!(
                        "chunk {chunk}: {first} and {alias} hold {} rows at version {version} \
                         with different content",
                        h.rows
                    ))
                }
                Some(_) => {}
            }
        }
        for (alias, held) in reports {
            if !replicas.contains(alias) && held.get(chunk).is_some_and(|h| h.rows > 0) {
                return Err(format!(
                    "chunk {chunk}: {alias} holds rows but is not one of its replicas"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(version: u64, rows: u64, txn: u64) -> Held {
        Held {
            version,
            rows,
            txn,
            digest: None,
        }
    }

    #[test]
    fn a_replica_behind_or_apart_or_still_prepared_is_caught() {
        let meta: BTreeMap<u64, (u64, Vec<String>)> =
            [(1, (2, vec!["a".to_string(), "b".to_string()]))].into();
        let good: BTreeMap<String, BTreeMap<u64, Held>> = [
            ("a".to_string(), [(1, held(2, 10, 0))].into()),
            ("b".to_string(), [(1, held(2, 10, 0))].into()),
            ("c".to_string(), [(1, held(0, 0, 0))].into()),
        ]
        .into();
        check(&meta, &good).unwrap();
        let mut behind = good.clone();
        behind.get_mut("b").unwrap().insert(1, held(1, 5, 0));
        assert!(check(&meta, &behind).unwrap_err().contains("version 1"));
        let mut prepared = good.clone();
        prepared.get_mut("a").unwrap().insert(1, held(2, 10, 7));
        assert!(check(&meta, &prepared).unwrap_err().contains("prepared"));
        let mut stray = good.clone();
        stray.get_mut("c").unwrap().insert(1, held(2, 10, 0));
        assert!(check(&meta, &stray)
            .unwrap_err()
            .contains("not one of its replicas"));
    }

    #[test]
    fn replicas_with_equal_counts_and_different_content_are_caught() {
        let meta: BTreeMap<u64, (u64, Vec<String>)> =
            [(1, (2, vec!["a".to_string(), "b".to_string()]))].into();
        let with = |d: u64| Held {
            digest: Some(d),
            ..held(2, 10, 0)
        };
        let same: BTreeMap<String, BTreeMap<u64, Held>> = [
            ("a".to_string(), [(1, with(77))].into()),
            ("b".to_string(), [(1, with(77))].into()),
        ]
        .into();
        check(&meta, &same).unwrap();
        let mut apart = same.clone();
        apart.get_mut("b").unwrap().insert(1, with(78));
        assert!(check(&meta, &apart)
            .unwrap_err()
            .contains("different content"));
        let mut unreadable = same.clone();
        unreadable.get_mut("a").unwrap().insert(1, with(UNREADABLE));
        assert!(check(&meta, &unreadable)
            .unwrap_err()
            .contains("cannot read"));
    }
}
