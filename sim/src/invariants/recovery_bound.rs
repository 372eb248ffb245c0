//! Invariant: **recovery ends within a bounded time once the faults heal.**
//!
//! After the last fault heals (every node up, every link whole), every chunk's replicas are
//! current again — `getClusterChunksStatus()` shows each COMPLETE — within `bound` of
//! simulated time. A replica stuck RECOVERING (a task that never finishes, a copy that never
//! gets an answer) fails it with the chunks still waiting.

use std::time::Duration;

/// `took`: from the heal until the first status with every chunk COMPLETE (`None`: never,
/// within the time the scenario waited); `waiting`: the states last seen.
pub fn check(took: Option<Duration>, bound: Duration, waiting: &[String]) -> Result<(), String> {
    match took {
        Some(t) if t <= bound => Ok(()),
        Some(t) => Err(format!(
            "recovery took {:.1} s after the faults healed, over the bound of {:.1} s",
            t.as_secs_f64(),
            bound.as_secs_f64()
        )),
        None => Err(format!(
            "recovery never ended within {:.1} s of the heal; states last seen: {waiting:?}",
            bound.as_secs_f64()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_or_never_is_caught() {
        let bound = Duration::from_secs(60);
        check(Some(Duration::from_secs(3)), bound, &[]).unwrap();
        assert!(check(Some(Duration::from_secs(61)), bound, &[])
            .unwrap_err()
            .contains("over the bound"));
        let never = check(None, bound, &["RECOVERING".into()]).unwrap_err();
        assert!(never.contains("RECOVERING"), "{never}");
    }
}
