//! `sim` — Porpoise's deterministic simulation harness (build with `--cfg madsim`).
//!
//! A [`cluster::SimCluster`] is built from a `cluster.nodes`: one simulated host per IP (with
//! that host's own disk), running the real node start-up path of every node on it. Scenarios
//! drive workloads and inject faults; invariants (one per file in [`invariants`]) judge the
//! outcome. Everything is a function of the seed: a failure prints `MADSIM_TEST_SEED=<n>` and
//! replays exactly (`MADSIM_TEST_SEED=<n> bash scripts/test-sim.sh`).
//!
//! Faults the harness injects (see `rt::sim` for the mechanics):
//! - **host crash / restart** — all processes of a host stop, its connections break, its disk
//!   loses or tears every write not yet synced and reverts unsynced directory entries;
//! - **network partition** — every link between two groups of hosts is cut both ways;
//! - **clogged links** — packets on a link are held until it is unclogged;
//! - **latency and loss** — one-way latency range and packet-loss rate for the whole network;
//! - **disk faults** — bit flips on read, EIO on read/write/sync, disk full (per host, bounded).
//!
//! Without `--cfg madsim` this crate only exposes what does not need the simulator (address
//! mapping), so `cargo test` on the real runtime builds it too.

pub mod addr;
#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
pub mod dfs;
pub mod invariants;
#[cfg(madsim)]
pub mod workload;
