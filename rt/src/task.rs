//! Tasks: `spawn_local`, join handles and `yield_now`.
//!
//! Semantics are the same under both backends: dropping a [`JoinHandle`] *detaches* the task
//! (it keeps running); [`JoinHandle::abort`] cancels it, and awaiting a cancelled task yields
//! [`Cancelled`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::imp;

/// The task was cancelled (aborted, or its executor shut down) before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("task was cancelled before it finished")]
pub struct Cancelled;

/// An owned permission to await a task's output.
pub struct JoinHandle<T> {
    inner: imp::task::JoinHandle<T>,
}

impl<T> JoinHandle<T> {
    /// Cancels the task. Awaiting the handle afterwards yields `Err(Cancelled)`.
    pub fn abort(&self) {
        imp::task::abort(&self.inner)
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, Cancelled>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        imp::task::poll_join(&mut self.inner, cx)
    }
}

/// Spawns a task on the current shard's executor. The future need not be `Send`: shards share
/// nothing, so a task never moves between threads.
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    JoinHandle {
        inner: imp::task::spawn_local(future),
    }
}

/// Lets other tasks on this shard run before continuing.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}
