//! openraft's `AsyncRuntime` over this crate's facade, so the controllers' Raft group runs on
//! glommio in production and on madsim in simulation with one implementation.
//!
//! [`RaftRt`] is written only against `rt`'s own tasks, clock and RNG; the backend difference
//! is confined to [`RaftRt::new`]/`block_on` (a glommio `LocalExecutor` or a madsim `Runtime`),
//! which openraft itself never calls (only its conformance suite and tests do).
//!
//! Invariants:
//! - **Single-threaded.** openraft is built with its `single-threaded` feature: nothing here is
//!   `Send`, matching the thread-per-core executors. Tasks spawn on the current shard.
//! - **Replayable.** Time comes from `rt::time` (virtual under madsim, where std's clock is the
//!   simulator's too) and randomness from [`crate::rand::Rng`] seeded by the backend, so
//!   election timeouts replay from the simulation seed.
//! - **Runtime-neutral channels.** mpsc, oneshot and the mutex are tokio's `sync` primitives,
//!   which need no tokio runtime: wake-ups go through whatever executor polls them. The watch
//!   channel is [`crate::watch`], because tokio's wakes its receivers in an order drawn from a
//!   process-wide RNG, which a replay cannot reproduce.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use openraft_rt::{
    mpsc, oneshot, watch, AsyncRuntime, Mpsc, MpscReceiver, MpscSender, MpscWeakSender,
    OneshotSender, TryRecvError, Watch, WatchReceiver, WatchSender,
};
use tokio::sync as ts;

use crate::task::{Cancelled, JoinHandle};
use crate::time::Elapsed;

pub use openraft_rt;

/// The openraft runtime for Porpoise: tasks, time and RNG from `rt`.
pub struct RaftRt {
    exec: Executor,
}

#[cfg(not(madsim))]
type Executor = glommio::LocalExecutor;
#[cfg(madsim)]
type Executor = madsim::runtime::Runtime;

impl fmt::Debug for RaftRt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RaftRt({})", crate::BACKEND)
    }
}

/// The clock openraft reads. Under madsim std's clock is the virtual one (madsim overrides
/// `clock_gettime`), so this is `rt::time::Instant` under both backends.
pub type RaftInstant = std::time::Instant;

const _: fn() = || {
    // The alias above is only sound while `rt`'s instant is std's under both backends.
    let _same: fn() -> crate::time::Instant = std::time::Instant::now;
};

/// A sleep that openraft can name.
pub struct Sleep {
    inner: Pin<Box<dyn Future<Output = ()>>>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx)
    }
}

fn sleep_for(d: Duration) -> Sleep {
    Sleep {
        inner: Box::pin(crate::time::sleep(d)),
    }
}

/// `future` with a deadline; the work is polled first, so finishing exactly at the deadline
/// counts as finishing.
pub struct Timeout<R, F> {
    future: Pin<Box<F>>,
    sleep: Sleep,
    timeout_ms: u64,
    _out: PhantomData<fn() -> R>,
}

impl<R, F: Future<Output = R>> Future for Timeout<R, F> {
    type Output = Result<R, Elapsed>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(v) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(&mut self.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed {
                timeout_ms: self.timeout_ms,
            })),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// openraft's per-thread RNG: a fresh [`crate::rand::Rng`] seeded by the backend.
pub struct RaftRng(crate::rand::Rng);

impl rand_core::TryRng for RaftRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.0.next_u64() >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill(dst);
        Ok(())
    }
}

fn until(deadline: RaftInstant) -> Duration {
    deadline.saturating_duration_since(crate::time::now())
}

impl AsyncRuntime for RaftRt {
    type JoinError = Cancelled;
    type JoinHandle<T: 'static> = JoinHandle<T>;
    type Sleep = Sleep;
    type Instant = RaftInstant;
    type TimeoutError = Elapsed;
    type Timeout<R, T: Future<Output = R>> = Timeout<R, T>;
    type ThreadLocalRng = RaftRng;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + 'static,
        T::Output: 'static,
    {
        crate::task::spawn_local(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        sleep_for(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        sleep_for(until(deadline))
    }

    fn timeout<R, F: Future<Output = R>>(duration: Duration, future: F) -> Self::Timeout<R, F> {
        Timeout {
            future: Box::pin(future),
            sleep: sleep_for(duration),
            timeout_ms: duration.as_millis() as u64,
            _out: PhantomData,
        }
    }

    fn timeout_at<R, F: Future<Output = R>>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Self::timeout(until(deadline), future)
    }

    fn is_panic(_: &Self::JoinError) -> bool {
        // A panicking task takes its shard down (thread-per-core); a join error is always a
        // cancellation.
        false
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        RaftRng(crate::rand::Rng::new())
    }

    type Mpsc = Channels;
    type Watch = Channels;
    type Oneshot = Channels;
    type Mutex<T: 'static> = Mutex<T>;

    fn new(_threads: usize) -> Self {
        RaftRt {
            exec: new_executor(),
        }
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        #[cfg(not(madsim))]
        {
            self.exec.run(future)
        }
        #[cfg(madsim)]
        {
            self.exec.block_on(future)
        }
    }
}

#[cfg(not(madsim))]
fn new_executor() -> Executor {
    // Small io_uring buffers: tests create these next to the node's own executors and
    // `ulimit -l` is a few MiB.
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(512 << 10)
        .make()
        .expect("cannot create a glommio executor for openraft's runtime")
}

#[cfg(madsim)]
fn new_executor() -> Executor {
    // Outside a simulation there is no simulator RNG to draw from: the seed comes from
    // MADSIM_TEST_SEED like every other simulated test.
    let seed = crate::simb::world::seeds_from_env(&[1])[0];
    madsim::runtime::Runtime::with_seed_and_config(seed, Default::default())
}

/// The channel families (tokio `sync`, runtime-neutral).
pub struct Channels;

pub struct MpscTx<T>(ts::mpsc::Sender<T>);
pub struct MpscRx<T>(ts::mpsc::Receiver<T>);
pub struct MpscWeak<T>(ts::mpsc::WeakSender<T>);

impl<T> Clone for MpscTx<T> {
    fn clone(&self) -> Self {
        MpscTx(self.0.clone())
    }
}

impl<T> Clone for MpscWeak<T> {
    fn clone(&self) -> Self {
        MpscWeak(self.0.clone())
    }
}

impl Mpsc for Channels {
    type Sender<T> = MpscTx<T>;
    type Receiver<T> = MpscRx<T>;
    type WeakSender<T> = MpscWeak<T>;

    fn channel<T>(buffer: usize) -> (Self::Sender<T>, Self::Receiver<T>) {
        let (tx, rx) = ts::mpsc::channel(buffer);
        (MpscTx(tx), MpscRx(rx))
    }
}

impl<T> MpscSender<Channels, T> for MpscTx<T> {
    async fn send(&self, msg: T) -> Result<(), mpsc::SendError<T>> {
        self.0.send(msg).await.map_err(|e| mpsc::SendError(e.0))
    }

    fn downgrade(&self) -> MpscWeak<T> {
        MpscWeak(self.0.downgrade())
    }
}

impl<T> MpscReceiver<T> for MpscRx<T> {
    async fn recv(&mut self) -> Option<T> {
        self.0.recv().await
    }

    fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.0.try_recv().map_err(|e| match e {
            ts::mpsc::error::TryRecvError::Empty => TryRecvError::Empty,
            ts::mpsc::error::TryRecvError::Disconnected => TryRecvError::Disconnected,
        })
    }
}

impl<T> MpscWeakSender<Channels, T> for MpscWeak<T> {
    fn upgrade(&self) -> Option<MpscTx<T>> {
        self.0.upgrade().map(MpscTx)
    }
}

pub struct WatchTx<T>(crate::watch::Sender<T>);
pub struct WatchRx<T>(crate::watch::Receiver<T>);

impl<T> Clone for WatchTx<T> {
    fn clone(&self) -> Self {
        WatchTx(self.0.clone())
    }
}

impl<T> Clone for WatchRx<T> {
    fn clone(&self) -> Self {
        WatchRx(self.0.clone())
    }
}

impl Watch for Channels {
    type Sender<T> = WatchTx<T>;
    type Receiver<T> = WatchRx<T>;
    type Ref<'a, T: 'a> = std::cell::Ref<'a, T>;

    fn channel<T>(init: T) -> (Self::Sender<T>, Self::Receiver<T>) {
        let (tx, rx) = crate::watch::channel(init);
        (WatchTx(tx), WatchRx(rx))
    }
}

impl<T> WatchSender<Channels, T> for WatchTx<T> {
    fn send(&self, value: T) -> Result<(), watch::SendError<T>> {
        self.0.send(value).map_err(|e| watch::SendError(e.0))
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        self.0.send_if_modified(modify)
    }

    fn borrow_watched(&self) -> std::cell::Ref<'_, T> {
        self.0.borrow()
    }

    fn subscribe(&self) -> WatchRx<T> {
        WatchRx(self.0.subscribe())
    }
}

impl<T> WatchReceiver<Channels, T> for WatchRx<T> {
    async fn changed(&mut self) -> Result<(), watch::RecvError> {
        self.0.changed().await.map_err(|_| watch::RecvError(()))
    }

    fn borrow_watched(&self) -> std::cell::Ref<'_, T> {
        self.0.borrow()
    }

    fn borrow_and_update(&mut self) -> std::cell::Ref<'_, T> {
        self.0.borrow_and_update()
    }
}

pub struct OneshotTx<T>(ts::oneshot::Sender<T>);

impl<T> From<ts::oneshot::Sender<T>> for OneshotTx<T> {
    fn from(tx: ts::oneshot::Sender<T>) -> Self {
        OneshotTx(tx)
    }
}

impl oneshot::Oneshot for Channels {
    type Sender<T> = OneshotTx<T>;
    type Receiver<T> = ts::oneshot::Receiver<T>;
    type ReceiverError = ts::oneshot::error::RecvError;

    fn channel<T>() -> (Self::Sender<T>, Self::Receiver<T>) {
        let (tx, rx) = ts::oneshot::channel();
        (OneshotTx(tx), rx)
    }
}

impl<T> OneshotSender<T> for OneshotTx<T> {
    fn send(self, t: T) -> Result<(), T> {
        self.0.send(t)
    }
}

/// An async mutex (tokio's, fair and runtime-neutral).
pub struct Mutex<T>(ts::Mutex<T>);

impl<T: 'static> openraft_rt::Mutex<T> for Mutex<T> {
    type Guard<'a> = ts::MutexGuard<'a, T>;

    fn new(value: T) -> Self {
        Mutex(ts::Mutex::new(value))
    }

    fn lock(&self) -> impl Future<Output = Self::Guard<'_>> {
        self.0.lock()
    }
}
