//! Invariant: **at most one leader per term** (Raft's election safety).
//!
//! Every controller reports each term in which it became leader (from its own Raft metrics, so
//! nothing is missed between samples). Two different controllers leading in the same term is a
//! split brain.

use std::collections::BTreeMap;

/// `(term, node id)` for every time a controller became leader.
pub fn check(became_leader: &[(u64, u64)]) -> Result<(), String> {
    let mut by_term: BTreeMap<u64, u64> = BTreeMap::new();
    for &(term, id) in became_leader {
        match by_term.insert(term, id) {
            Some(other) if other != id => {
                return Err(format!(
                    "two leaders in term {term}: controllers {other} and {id}"
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_brain_is_caught() {
        assert!(check(&[(1, 1), (2, 2), (2, 2), (3, 1)]).is_ok());
        assert!(check(&[(1, 1), (2, 2), (2, 3)])
            .unwrap_err()
            .contains("term 2"));
    }
}
