//! Simulation backend: madsim tasks, virtual time and network, and [`disk::SimDisk`].

pub(crate) mod disk;
pub(crate) mod exec;
pub(crate) mod net;
pub(crate) mod world;

pub(crate) const BACKEND: &str = "madsim";

pub(crate) mod task {
    use std::future::Future;
    use std::task::{Context, Poll};

    use crate::task::Cancelled;

    pub(crate) type JoinHandle<T> = madsim::task::JoinHandle<T>;

    pub(crate) fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        madsim::task::spawn_local(future)
    }

    pub(crate) fn abort<T>(h: &JoinHandle<T>) {
        h.abort()
    }

    pub(crate) fn poll_join<T>(
        h: &mut JoinHandle<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, Cancelled>> {
        std::pin::Pin::new(h)
            .poll(cx)
            .map(|r| r.map_err(|_| Cancelled))
    }
}

pub(crate) mod time {
    use std::time::Duration;

    pub(crate) type Instant = madsim::time::Instant;

    pub(crate) fn now() -> Instant {
        madsim::time::TimeHandle::current().now_instant()
    }

    pub(crate) fn unix_time_ms() -> u64 {
        madsim::time::TimeHandle::current()
            .now_time()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    pub(crate) async fn sleep(d: Duration) {
        madsim::time::sleep(d).await
    }
}

pub(crate) mod rand {
    pub(crate) fn seed() -> u64 {
        madsim::rand::random::<u64>()
    }
}
