//! `bench` — Porpoise's criterion benchmarks (`cargo bench -p bench`) and, as the engine grows,
//! the harness that runs the tutorial workload beside the peers measured by
//! `../shared/peers/peer_bench.py` in the same run. Speed targets live here as benchmark
//! figures, never as timed assertions in tests.
//!
//! Benchmarks so far:
//! - `startup`: resolving a node's configuration from the tutorial's files (paid on every
//!   node start and by the controller for every node in cluster.cfg).

use std::path::{Path, PathBuf};

/// The repository root (benches read the sample configs under `configs/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}
