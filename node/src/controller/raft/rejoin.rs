//! How a controller with no Raft log and no vote joins its group — a first start, or a
//! controller whose `raft/` was lost or wiped (ARCHITECTURE D61) — as pure decisions over what
//! its peers answer to a probe, in the openraft engine's style: facts in, a decision out.
//!
//! Raft's safety assumes a voter never forgets what it voted for or acknowledged. A controller
//! that has forgotten both could, unchecked, vote a candidate lacking entries it had helped
//! commit into office, or vote twice in one term. So a controller that may have forgotten:
//!
//! 1. **takes no part until it knows a term floor**: the highest vote term among answers from
//!    a majority of the configuration *not counting itself*. Every election it took part in
//!    and every leader it acknowledged had a majority, which meets any such set of answers in
//!    a member whose vote term is at least that term; so it adopts a vote for itself in the
//!    floor term (it then grants no other vote in it, and ignores leaders of lower terms);
//! 2. **grants no vote until it has caught up**: until it has applied an entry of the term of
//!    the leader it follows. That leader holds every committed entry (Leader Completeness),
//!    and committing an entry of its own term means every entry before it is committed and
//!    now in this controller's log. Until then it does not campaign either.
//!
//! It acknowledges appends while catching up: every entry it acknowledges is then on its disk,
//! and by (1) it acknowledges only leaders of terms at least the floor, so no acknowledgement
//! counts for a leader whose term it might have voted against before forgetting.
//!
//! A controller with nothing on disk tells a first start from a lost log by asking: if any peer
//! is *active* (has followed a leader, holds entries past the initial membership, or is itself
//! rejoining) the group has run before and it rejoins; if a majority of the configuration,
//! itself included, is untouched, nobody can have committed anything and it initialises.

use serde::{Deserialize, Serialize};

/// A controller's answer to a probe: what it holds, for a peer deciding how to join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub vote_term: u64,
    /// Its vote is a leader's (it has followed, or been, a leader of that term).
    pub vote_committed: bool,
    pub last_log_index: Option<u64>,
    pub last_applied_index: Option<u64>,
    /// It is itself rejoining after losing its log.
    pub rejoining: bool,
}

impl Probe {
    /// Whether the group has run on this member: anything beyond the initial membership.
    /// (Initialising commits a vote in term 0 for oneself; only a later term counts.)
    pub fn active(&self) -> bool {
        (self.vote_committed && self.vote_term > 0)
            || self.last_log_index.unwrap_or(0) > 0
            || self.last_applied_index.unwrap_or(0) > 0
            || self.rejoining
    }
}

/// What a controller with no log and no vote does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// Nobody can have committed anything: propose the initial membership.
    Initialize,
    /// The group has run: adopt a vote for itself in `term_floor`, then catch up.
    Rejoin { term_floor: u64 },
    /// Not enough answers yet to decide safely: probe again.
    Wait,
}

/// Majority of `members` voters.
pub fn quorum(members: usize) -> usize {
    members / 2 + 1
}

/// Decides how to join from the peers' `answers` (one per peer that answered; never this
/// controller's own). `lost` is true when this controller knows it lost state (a checkpoint or
/// a durable rejoining mark survived): it then never initialises.
pub fn decide(members: usize, lost: bool, answers: &[Probe]) -> Join {
    assert!(members >= 1, "a group has a member");
    assert!(
        answers.len() < members,
        "answers come from the other members"
    );
    if members == 1 {
        // A group of one has nothing to protect from itself.
        return Join::Initialize;
    }
    if lost || answers.iter().any(Probe::active) {
        if answers.len() >= quorum(members) {
            let term_floor = answers.iter().map(|a| a.vote_term).max().unwrap_or(0);
            return Join::Rejoin { term_floor };
        }
        return Join::Wait;
    }
    if 1 + answers.len() >= quorum(members) {
        return Join::Initialize;
    }
    Join::Wait
}

/// Whether a rejoining controller has caught up: it follows a leader (its vote is committed)
/// and has applied an entry of that leader's term.
pub fn caught_up(vote_term: u64, vote_committed: bool, last_applied_term: Option<u64>) -> bool {
    vote_committed && last_applied_term == Some(vote_term)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn untouched() -> Probe {
        Probe {
            vote_term: 0,
            vote_committed: false,
            last_log_index: None,
            last_applied_index: None,
            rejoining: false,
        }
    }

    fn active(term: u64) -> Probe {
        Probe {
            vote_term: term,
            vote_committed: true,
            last_log_index: Some(40),
            last_applied_index: Some(40),
            rejoining: false,
        }
    }

    #[test]
    fn a_first_start_initialises_once_a_majority_is_untouched() {
        assert_eq!(decide(1, false, &[]), Join::Initialize);
        assert_eq!(decide(3, false, &[]), Join::Wait);
        assert_eq!(decide(3, false, &[untouched()]), Join::Initialize);
        // A peer that initialised (a committed vote in term 0, the membership at index 0) and
        // maybe campaigned, but never followed a leader, is still untouched.
        let initialised = Probe {
            vote_term: 0,
            vote_committed: true,
            last_log_index: Some(0),
            ..untouched()
        };
        assert_eq!(decide(3, false, &[initialised]), Join::Initialize);
        let campaigned = Probe {
            vote_term: 1,
            last_log_index: Some(0),
            ..untouched()
        };
        assert_eq!(decide(3, false, &[campaigned]), Join::Initialize);
        assert_eq!(decide(5, false, &[untouched()]), Join::Wait);
        assert_eq!(
            decide(5, false, &[untouched(), untouched()]),
            Join::Initialize
        );
    }

    #[test]
    fn a_lost_log_rejoins_only_with_a_majority_of_the_others_answering() {
        // One active peer of two: the other may hold a higher term this one voted in.
        assert_eq!(decide(3, false, &[active(4)]), Join::Wait);
        assert_eq!(
            decide(3, false, &[active(4), active(6)]),
            Join::Rejoin { term_floor: 6 }
        );
        assert_eq!(
            decide(3, false, &[untouched(), active(2)]),
            Join::Rejoin { term_floor: 2 }
        );
        // Five members: three of the other four must answer.
        assert_eq!(decide(5, false, &[active(3), active(3)]), Join::Wait);
        assert_eq!(
            decide(5, false, &[active(3), active(5), untouched()]),
            Join::Rejoin { term_floor: 5 }
        );
        // A surviving checkpoint or rejoining mark means state was lost: never initialise.
        assert_eq!(decide(3, true, &[untouched()]), Join::Wait);
        assert_eq!(
            decide(3, true, &[untouched(), untouched()]),
            Join::Rejoin { term_floor: 0 }
        );
        let rejoining = Probe {
            rejoining: true,
            ..untouched()
        };
        assert_eq!(decide(3, false, &[rejoining]), Join::Wait);
    }

    #[test]
    fn caught_up_needs_an_applied_entry_of_the_followed_leaders_term() {
        assert!(!caught_up(5, false, Some(5)), "no leader followed");
        assert!(!caught_up(5, true, Some(4)), "only older entries applied");
        assert!(!caught_up(5, true, None));
        assert!(caught_up(5, true, Some(5)));
    }

    proptest::proptest! {
        /// Whatever the answers, a controller that knows it lost state never initialises, and
        /// a rejoin's floor is at least every answering member's term.
        #[test]
        fn rejoin_floor_covers_every_answer(
            members in proptest::sample::select(vec![3usize, 5]),
            terms in proptest::collection::vec((0u64..20, proptest::bool::ANY), 0..4),
        ) {
            let answers: Vec<Probe> = terms
                .iter()
                .take(members - 1)
                .map(|(t, c)| Probe { vote_term: *t, vote_committed: *c, ..untouched() })
                .collect();
            match decide(members, true, &answers) {
                Join::Initialize => proptest::prop_assert!(false, "initialised after a loss"),
                Join::Rejoin { term_floor } => {
                    proptest::prop_assert!(answers.len() >= quorum(members));
                    proptest::prop_assert!(answers.iter().all(|a| a.vote_term <= term_floor));
                }
                Join::Wait => proptest::prop_assert!(answers.len() < quorum(members)),
            }
        }
    }
}
