//! `rt` — the Porpoise runtime facade.
//!
//! Every other Porpoise crate is written against this crate and never against glommio, madsim,
//! tokio or `std::time` directly. The backend is chosen at compile time:
//!
//! | | production (default) | simulation (`RUSTFLAGS="--cfg madsim"`) |
//! |---|---|---|
//! | executor | one glommio `LocalExecutor` per shard, pinned to a core | madsim node tasks |
//! | net | glommio TCP / UDP (io_uring) | madsim virtual network |
//! | disk | glommio `DmaFile` (O_DIRECT, io_uring) | [`SimDisk`](sim::SimDisk), in memory per node |
//! | time, RNG | real clock, entropy-seeded | virtual clock, seeded by the simulation |
//!
//! Invariants this crate owns:
//! - **One API, two backends.** Every public item has the same signature under both backends;
//!   `rt/tests/conformance.rs` runs unchanged against both.
//! - **Aligned disk writes.** [`disk::File::write_at`] accepts only offsets and lengths that are
//!   multiples of [`disk::ALIGN`] under *both* backends, so code that passes simulation also
//!   satisfies O_DIRECT in production.
//! - **Bounded queues.** Every channel has a capacity; senders wait when it is full.
//! - **Fail fast at start-up.** If io_uring cannot be used, [`Runtime::run`] returns
//!   [`RtError::IoUringUnavailable`] / [`RtError::MemlockTooLow`] naming the cause and the fix,
//!   before any executor is spawned.

pub mod disk;
mod error;
pub mod net;
pub mod raft;
pub mod rand;
mod runtime;
pub mod shard;
pub mod sync;
pub mod task;
pub mod time;
pub mod watch;

#[cfg(not(madsim))]
mod prod;
#[cfg(not(madsim))]
use prod as imp;

#[cfg(madsim)]
mod simb;
#[cfg(madsim)]
use simb as imp;

/// Simulation control surface: hosts, kill/restart, partitions, clogging and [`sim::SimDisk`].
/// Only present under `--cfg madsim`; the `sim` crate builds its harness on it.
#[cfg(madsim)]
pub mod sim {
    pub use crate::simb::disk::{DiskFaults, DiskStats, SimDisk};
    pub use crate::simb::world::{run_seeds, seeds_from_env, Host, World};
}

pub use error::RtError;
pub use runtime::Runtime;

/// Which backend this build of `rt` uses: `"glommio"` or `"madsim"`.
pub const BACKEND: &str = imp::BACKEND;
