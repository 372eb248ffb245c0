//! [`Runtime`]: how a process (or a simulated host) starts its shards.

use std::future::Future;

use crate::error::RtError;
use crate::imp;
use crate::shard::{local_mesh, Shard};

/// Most shards a runtime may start.
pub const SHARDS_MAX: usize = 256;

/// Runtime configuration; [`Runtime::run`] starts it.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub(crate) name: String,
    pub(crate) shards: usize,
    pub(crate) pin_to_cores: bool,
    pub(crate) io_memory_bytes: usize,
    pub(crate) channel_capacity: usize,
    pub(crate) seed: Option<u64>,
}

impl Runtime {
    /// A runtime named `name` (used for thread names) with one shard.
    pub fn new(name: impl Into<String>) -> Self {
        Runtime {
            name: name.into(),
            shards: 1,
            pin_to_cores: false,
            io_memory_bytes: 1 << 20,
            channel_capacity: 1024,
            seed: None,
        }
    }

    /// The runtime's name (executor threads are named `<name>-<shard>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of shards (executors) to start, `1..=SHARDS_MAX`.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// Pin shard `i` to CPU `i % ncpu` (production only; the default is unpinned).
    pub fn pin_to_cores(mut self, pin: bool) -> Self {
        self.pin_to_cores = pin;
        self
    }

    /// Locked memory each executor registers for io_uring buffers (production only).
    pub fn io_memory_bytes(mut self, bytes: usize) -> Self {
        self.io_memory_bytes = bytes;
        self
    }

    /// Capacity of each shard's inbox.
    pub fn channel_capacity(mut self, capacity: usize) -> Self {
        self.channel_capacity = capacity;
        self
    }

    /// Seed for the simulation (madsim only; production ignores it). Without it the seed
    /// comes from `MADSIM_TEST_SEED`, else 1.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), RtError> {
        if self.shards == 0 || self.shards > SHARDS_MAX {
            return Err(RtError::InvalidConfig(format!(
                "shards must be in 1..={SHARDS_MAX}, got {}",
                self.shards
            )));
        }
        if self.channel_capacity == 0 {
            return Err(RtError::InvalidConfig(
                "channel_capacity must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Starts the shards and blocks until every shard's `entry` future has finished; returns
    /// their outputs in shard order.
    ///
    /// Production: checks io_uring first, then runs one glommio executor per shard on its own
    /// thread. Simulation: builds a fresh seeded madsim runtime (with SimDisk) and runs the
    /// shards inside it.
    pub fn run<M, T, F, Fut>(&self, entry: F) -> Result<Vec<T>, RtError>
    where
        M: Send + 'static,
        T: Send + 'static,
        F: Fn(Shard<M>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + 'static,
    {
        self.validate()?;
        imp::exec::run(self, entry)
    }

    /// Runs the shards as tasks of the *current* executor and waits for all of them. This is
    /// how a simulated host runs its node; production uses it for single-executor tools.
    pub async fn run_local<M, T, F, Fut>(&self, entry: F) -> Result<Vec<T>, RtError>
    where
        M: 'static,
        T: 'static,
        F: Fn(Shard<M>) -> Fut,
        Fut: Future<Output = T> + 'static,
    {
        self.validate()?;
        let handles: Vec<_> = local_mesh::<M>(self.shards, self.channel_capacity)
            .into_iter()
            .map(|shard| crate::task::spawn_local(entry(shard)))
            .collect();
        let mut out = Vec::with_capacity(handles.len());
        for (i, h) in handles.into_iter().enumerate() {
            out.push(h.await.map_err(|e| RtError::ShardFailed {
                shard: i,
                message: e.to_string(),
            })?);
        }
        Ok(out)
    }
}
