//! `Runtime::run` under madsim: a fresh seeded simulation with SimDisk, running the shards as
//! tasks of the supervisor node. Failures print `MADSIM_TEST_SEED=<seed>`.

use std::future::Future;

use crate::error::RtError;
use crate::shard::Shard;
use crate::Runtime;

pub(crate) fn run<M, T, F, Fut>(rt: &Runtime, entry: F) -> Result<Vec<T>, RtError>
where
    M: Send + 'static,
    T: Send + 'static,
    F: Fn(Shard<M>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + 'static,
{
    let seed = rt
        .seed
        .or_else(|| super::world::seeds_from_env(&[1]).first().copied())
        .unwrap_or(1);
    let rt = rt.clone();
    super::world::World::run_seed(seed, move |_world| async move { rt.run_local(entry).await })
}
