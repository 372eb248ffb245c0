//! The named steps of the coordinator's two-phase commit. In production `reached` does
//! nothing; under madsim the simulation can hold a coordinator at a step (`hold_at`), crash a
//! node of its choosing while it is held — the coordinator itself, a participant or the leader
//! — and then let it go (`release`), so every step of 2PC meets every kind of crash
//! deterministically (`sim/tests/twopc.rs`).

/// Where a transaction is, from its coordinator's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// The leader began the transaction; no participant has prepared.
    Begun,
    /// One participant voted; others may still be preparing.
    OnePrepared,
    /// The leader answered the decision (the commit point, if it is a commit).
    Decided,
    /// One participant was told the outcome; others may not be yet.
    OneTold,
    /// Every participant was told; the client is not answered yet.
    Answering,
}

impl Step {
    pub const ALL: [Step; 5] = [
        Step::Begun,
        Step::OnePrepared,
        Step::Decided,
        Step::OneTold,
        Step::Answering,
    ];
}

/// Called by the coordinator (`alias`) as transaction `tid` passes `step`.
#[cfg(not(madsim))]
#[inline(always)]
pub async fn reached(_alias: &str, _step: Step, _tid: u64) {}

#[cfg(madsim)]
pub use held::{hold_at, holding, release};

#[cfg(madsim)]
pub async fn reached(alias: &str, step: Step, tid: u64) {
    if !held::catch(alias, step, tid) {
        return;
    }
    while held::is_held(alias) {
        rt::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[cfg(madsim)]
mod held {
    use std::cell::RefCell;

    use super::Step;

    #[derive(Default)]
    struct Hold {
        /// Hold the next transaction of this coordinator that reaches this step.
        armed: Option<(String, Step)>,
        /// The transaction held: coordinator, step, transaction id.
        holding: Option<(String, Step, u64)>,
    }

    // madsim runs every simulated node on one thread: one hold for the whole world.
    thread_local! {
        static HOLD: RefCell<Hold> = RefCell::new(Hold::default());
    }

    /// Holds the next transaction `alias` coordinates when it reaches `step`.
    pub fn hold_at(alias: &str, step: Step) {
        HOLD.with(|h| {
            *h.borrow_mut() = Hold {
                armed: Some((alias.to_string(), step)),
                holding: None,
            }
        });
    }

    /// The transaction held, once one is.
    pub fn holding() -> Option<(String, Step, u64)> {
        HOLD.with(|h| h.borrow().holding.clone())
    }

    /// Lets the held coordinator go on (or forgets it, if it was crashed).
    pub fn release() {
        HOLD.with(|h| *h.borrow_mut() = Hold::default());
    }

    pub(super) fn catch(alias: &str, step: Step, tid: u64) -> bool {
        HOLD.with(|h| {
            let mut h = h.borrow_mut();
            let hit = h
                .armed
                .as_ref()
                .is_some_and(|(a, s)| a == alias && *s == step);
            if hit {
                h.armed = None;
                h.holding = Some((alias.to_string(), step, tid));
            }
            hit
        })
    }

    pub(super) fn is_held(alias: &str) -> bool {
        HOLD.with(|h| {
            h.borrow()
                .holding
                .as_ref()
                .is_some_and(|(a, _, _)| a == alias)
        })
    }
}
