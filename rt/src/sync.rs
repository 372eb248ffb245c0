//! Single-shard synchronisation: a bounded multi-producer, single-consumer channel for tasks
//! on the same shard.
//!
//! Invariant: a channel never holds more than `capacity` messages; a sender waits (in FIFO
//! order of wake-ups) until there is room, so producers cannot outrun a slow consumer.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::{Poll, Waker};

struct Inner<T> {
    queue: VecDeque<T>,
    capacity: usize,
    receiver_waker: Option<Waker>,
    sender_wakers: VecDeque<Waker>,
    senders: usize,
    receiver_alive: bool,
}

/// Sending half; clone it for more producers.
pub struct Sender<T> {
    inner: Rc<RefCell<Inner<T>>>,
}

/// Receiving half.
pub struct Receiver<T> {
    inner: Rc<RefCell<Inner<T>>>,
}

/// The receiver is gone; the message is handed back.
#[derive(Debug, PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// Creates a bounded channel holding at most `capacity` (>= 1) messages.
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity >= 1, "channel capacity must be at least 1");
    let inner = Rc::new(RefCell::new(Inner {
        queue: VecDeque::with_capacity(capacity.min(1024)),
        capacity,
        receiver_waker: None,
        sender_wakers: VecDeque::new(),
        senders: 1,
        receiver_alive: true,
    }));
    (
        Sender {
            inner: inner.clone(),
        },
        Receiver { inner },
    )
}

impl<T> Sender<T> {
    /// Sends `msg`, waiting while the channel is full.
    pub async fn send(&self, msg: T) -> Result<(), SendError<T>> {
        let mut msg = Some(msg);
        std::future::poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            if !inner.receiver_alive {
                return Poll::Ready(Err(SendError(msg.take().expect("polled after completion"))));
            }
            if inner.queue.len() < inner.capacity {
                inner
                    .queue
                    .push_back(msg.take().expect("polled after completion"));
                if let Some(w) = inner.receiver_waker.take() {
                    w.wake();
                }
                return Poll::Ready(Ok(()));
            }
            inner.sender_wakers.push_back(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Sends without waiting; fails (returning the message) when full or closed.
    pub fn try_send(&self, msg: T) -> Result<(), SendError<T>> {
        let mut inner = self.inner.borrow_mut();
        if !inner.receiver_alive || inner.queue.len() >= inner.capacity {
            return Err(SendError(msg));
        }
        inner.queue.push_back(msg);
        if let Some(w) = inner.receiver_waker.take() {
            w.wake();
        }
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.inner.borrow_mut().senders += 1;
        Sender {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut inner = self.inner.borrow_mut();
        inner.senders -= 1;
        if inner.senders == 0 {
            if let Some(w) = inner.receiver_waker.take() {
                w.wake();
            }
        }
    }
}

impl<T> Receiver<T> {
    /// Receives the next message; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Receiver::recv) as a poll (to make the receiver a `Stream`); registers the
    /// waker when nothing is queued.
    pub fn poll_recv(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Option<T>> {
        let mut inner = self.inner.borrow_mut();
        if let Some(msg) = inner.queue.pop_front() {
            if let Some(w) = inner.sender_wakers.pop_front() {
                w.wake();
            }
            return Poll::Ready(Some(msg));
        }
        if inner.senders == 0 {
            return Poll::Ready(None);
        }
        inner.receiver_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Messages waiting right now.
    pub fn len(&self) -> usize {
        self.inner.borrow().queue.len()
    }

    /// Whether no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut inner = self.inner.borrow_mut();
        inner.receiver_alive = false;
        for w in inner.sender_wakers.drain(..) {
            w.wake();
        }
    }
}

/// An async mutual-exclusion lock for tasks of one shard (FIFO wake-up).
#[derive(Clone, Default)]
pub struct Lock {
    inner: Rc<RefCell<LockInner>>,
}

#[derive(Default)]
struct LockInner {
    locked: bool,
    waiters: VecDeque<Waker>,
}

/// Holds a [`Lock`] until dropped.
pub struct LockGuard {
    inner: Rc<RefCell<LockInner>>,
}

impl Lock {
    pub fn new() -> Lock {
        Lock::default()
    }

    /// Waits until the lock is free and takes it.
    pub async fn lock(&self) -> LockGuard {
        std::future::poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            if !inner.locked {
                inner.locked = true;
                return Poll::Ready(());
            }
            inner.waiters.push_back(cx.waker().clone());
            Poll::Pending
        })
        .await;
        LockGuard {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let mut inner = self.inner.borrow_mut();
        inner.locked = false;
        if let Some(w) = inner.waiters.pop_front() {
            w.wake();
        }
    }
}
