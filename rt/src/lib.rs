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

#[cfg(test)]
mod wakes;

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
pub use runtime::{Runtime, SHARDS_MAX};

/// Which backend this build of `rt` uses: `"glommio"` or `"madsim"`.
pub const BACKEND: &str = imp::BACKEND;

/// Keeps freed heap memory in the process instead of returning it to the kernel after every
/// large free (glibc serves allocations over 128 KiB to 32 MiB with fresh `mmap`s, which the
/// kernel zeroes page by page on first touch). A node moves appends of tens of MiB through
/// several buffers each; profiling the cluster's ingest showed a fifth of its time in the
/// kernel's `clear_page`. Call once at process start, before any thread. Nothing on other
/// allocators or under the simulation.
pub fn keep_freed_memory() {
    #[cfg(all(not(madsim), target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's thresholds; called before other threads.
    unsafe {
        // Large blocks from the heap, not mmap; trim the heap's top only past 1 GiB free.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
