//! Time: [`Instant`], [`now`], [`sleep`], [`timeout`] and wall-clock [`unix_time_ms`].
//!
//! Under madsim the clock is virtual (and deterministic); production uses the OS clock.
//! Code outside `rt` must take time only from here.

use std::future::Future;
use std::task::{Context, Poll};

pub use std::time::Duration;

use crate::imp;

/// A monotonic instant from the backend's clock.
pub type Instant = imp::time::Instant;

/// The current monotonic instant.
pub fn now() -> Instant {
    imp::time::now()
}

/// Milliseconds since the Unix epoch from the backend's wall clock (virtual under madsim).
pub fn unix_time_ms() -> u64 {
    imp::time::unix_time_ms()
}

/// Completes after `duration` has elapsed.
pub async fn sleep(duration: Duration) {
    imp::time::sleep(duration).await
}

/// The deadline passed before the future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline of {timeout_ms} ms elapsed")]
pub struct Elapsed {
    pub timeout_ms: u64,
}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// Runs `future`, giving up after `duration`.
pub async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, Elapsed> {
    let mut future = std::pin::pin!(future);
    // Pinned on the stack, not boxed: the timeout future is `Send` whenever the backend's sleep
    // is (madsim), so simulated clients can run it on `Host::spawn`.
    let mut timer = std::pin::pin!(imp::time::sleep(duration));
    std::future::poll_fn(|cx: &mut Context<'_>| {
        // Poll the work first: a future that is ready exactly at its deadline has succeeded.
        if let Poll::Ready(v) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed {
                timeout_ms: duration.as_millis() as u64,
            })),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Like [`timeout`] but with an optional limit: `None` waits forever.
pub async fn maybe_timeout<F: Future>(
    limit: Option<Duration>,
    future: F,
) -> Result<F::Output, Elapsed> {
    match limit {
        Some(d) => timeout(d, future).await,
        None => Ok(future.await),
    }
}
