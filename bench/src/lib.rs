//! `bench` — Porpoise's criterion benchmarks (`cargo bench -p bench`) and the helpers that run
//! the tutorial workload beside the peers measured by `../shared/peers/peer_bench.py` in the
//! same run (`bash bench/compare.sh`). Speed targets live here as benchmark figures, never as
//! timed assertions in tests.
//!
//! Benchmarks:
//! - `startup`: resolving a node's configuration from the tutorial's files;
//! - `storage`: durable append of the tutorial's 1.21M rows (dataSync=1, then flushed), full
//!   scans of a DOUBLE and of the SYMBOL column, and bytes on disk per row;
//! - `query`: the tutorial's Q1 and Q2 over 1 and 20 days of `dfs://` data on the single node;
//! - `cluster_query`: the same on the local 3-host cluster, through `computenode1`;
//! - `ingest`: durable appends on the local 3-host cluster.

use std::path::{Path, PathBuf};

pub mod cluster;
pub mod tutorial;

/// The repository root (benches read the sample configs under `configs/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}

/// A scratch directory on the target's filesystem (O_DIRECT needs a real block device, so not
/// tmpfs).
pub fn scratch(name: &str) -> PathBuf {
    let dir = repo_root().join("target").join("bench-scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the bench scratch directory");
    dir
}

/// Total bytes of regular files under `dir`.
pub fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => total += disk_bytes(&p),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}
