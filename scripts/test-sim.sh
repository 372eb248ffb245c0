#!/usr/bin/env bash
# Simulation tests: the rt conformance suite and the sim scenarios under madsim, built into
# target/sim so the two builds do not evict each other.
#   MADSIM_TEST_SEED=<n>   replay one seed (as printed by a failure)
#   MADSIM_TEST_NUM=<k>    run k seeds (from MADSIM_TEST_SEED, else from the first CI seed)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=target/sim
export RUSTFLAGS="--cfg madsim"
cargo test -p rt -p storage -p node -p sim --tests "$@"
