//! openraft's own runtime conformance suite against [`rt::raft::RaftRt`]: spawn and join,
//! sleep and timeouts, select, mpsc/watch/oneshot/mutex semantics, task locals, and the
//! deterministic-RNG checks. Runs under both backends (`scripts/test-sim.sh` for madsim).

use rt::raft::openraft_rt::testing::Suite;
use rt::raft::RaftRt;

#[test]
fn openraft_runtime_conformance() {
    Suite::<RaftRt>::test_all();
}
