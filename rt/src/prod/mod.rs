//! Production backend: glommio executors, io_uring net and O_DIRECT DMA files.

pub(crate) mod disk;
pub(crate) mod exec;
pub(crate) mod net;
pub(crate) mod preflight;

pub(crate) const BACKEND: &str = "glommio";

pub(crate) mod task {
    use std::future::Future;
    use std::task::{Context, Poll};

    use crate::task::Cancelled;

    pub(crate) type JoinHandle<T> = glommio::task::JoinHandle<T>;

    pub(crate) fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        glommio::spawn_local(future).detach()
    }

    pub(crate) fn abort<T>(h: &JoinHandle<T>) {
        h.cancel()
    }

    pub(crate) fn poll_join<T>(
        h: &mut JoinHandle<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, Cancelled>> {
        std::pin::Pin::new(h).poll(cx).map(|r| r.ok_or(Cancelled))
    }
}

pub(crate) mod time {
    use std::time::Duration;

    pub(crate) type Instant = std::time::Instant;

    pub(crate) fn now() -> Instant {
        std::time::Instant::now()
    }

    pub(crate) fn unix_time_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    pub(crate) async fn sleep(d: Duration) {
        glommio::timer::sleep(d).await;
    }
}

pub(crate) mod rand {
    /// OS entropy (falls back to clock and pid if /dev/urandom is unreadable).
    pub(crate) fn seed() -> u64 {
        let mut buf = [0u8; 8];
        if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
            use std::io::Read;
            if f.read_exact(&mut buf).is_ok() {
                return u64::from_le_bytes(buf);
            }
        }
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ ((std::process::id() as u64) << 32)
    }
}
