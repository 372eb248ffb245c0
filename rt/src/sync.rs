//! Single-shard synchronisation: a bounded multi-producer, single-consumer channel for tasks
//! on the same shard.
//!
//! Invariants:
//! - a channel never holds more than `capacity` messages; a sender waits until there is room,
//!   so producers cannot outrun a slow consumer;
//! - **no lost wake-ups, even under cancellation.** A waiter can be dropped between its
//!   wake-up and its next poll (a timeout or `select` around it fires in the same turn); a
//!   wake-up given to it alone would die with it, leaving the others asleep beside a free lock
//!   or a channel with room. So when room appears every waiting sender is woken, in the order
//!   they started waiting, and the ones that lose the race register again (senders of one
//!   channel are a handful, and no caller orders messages of concurrently blocked senders);
//! - **the [`Lock`] is first come, first served**: a release hands it to the longest waiter,
//!   and a waiter dropped after it was handed the lock hands it on, so order holds whatever
//!   order the scheduler (madsim's is random) runs the waiters in.

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
            // All of them (see the module header): the first may have been dropped meanwhile.
            let waiting = std::mem::take(&mut inner.sender_wakers);
            drop(inner);
            for w in waiting {
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

/// An async mutual-exclusion lock for tasks of one shard. Strictly first come, first served:
/// a release hands the lock to the longest waiter (callers rely on it — the Raft log's file
/// writes happen in the order they asked for the lock, whatever order the scheduler runs the
/// waiters in), and a waiter dropped while queued leaves the queue, or, if the lock was handed
/// to it already, hands it on (see the module header).
#[derive(Clone, Default)]
pub struct Lock {
    inner: Rc<RefCell<LockInner>>,
}

#[derive(Default)]
struct LockInner {
    locked: bool,
    /// Waiters in arrival order: an id, and the waker of its latest poll.
    queue: VecDeque<(u64, Waker)>,
    /// The waiter the lock was handed to, until it polls (the lock stays locked meanwhile).
    granted: Option<u64>,
    next_id: u64,
}

impl LockInner {
    /// Gives the lock to the longest waiter, or frees it when none waits.
    fn hand_on(&mut self) -> Option<Waker> {
        debug_assert!(self.locked && self.granted.is_none());
        match self.queue.pop_front() {
            Some((id, w)) => {
                self.granted = Some(id);
                Some(w)
            }
            None => {
                self.locked = false;
                None
            }
        }
    }
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
    pub fn lock(&self) -> LockFuture {
        LockFuture {
            inner: self.inner.clone(),
            id: None,
            done: false,
        }
    }
}

/// [`Lock::lock`]'s future.
pub struct LockFuture {
    inner: Rc<RefCell<LockInner>>,
    /// Its place in the queue, once it waits.
    id: Option<u64>,
    done: bool,
}

impl std::future::Future for LockFuture {
    type Output = LockGuard;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<LockGuard> {
        let this = &mut *self;
        let mut inner = this.inner.borrow_mut();
        let ready = match this.id {
            // The first poll takes a free lock only if nobody waits for it.
            None if !inner.locked && inner.queue.is_empty() && inner.granted.is_none() => {
                inner.locked = true;
                true
            }
            None => {
                let id = inner.next_id;
                inner.next_id += 1;
                inner.queue.push_back((id, cx.waker().clone()));
                this.id = Some(id);
                false
            }
            Some(id) if inner.granted == Some(id) => {
                inner.granted = None;
                true
            }
            Some(id) => {
                if let Some(slot) = inner.queue.iter_mut().find(|(i, _)| *i == id) {
                    slot.1 = cx.waker().clone();
                }
                false
            }
        };
        drop(inner);
        if !ready {
            return Poll::Pending;
        }
        this.done = true;
        Poll::Ready(LockGuard {
            inner: this.inner.clone(),
        })
    }
}

impl Drop for LockFuture {
    fn drop(&mut self) {
        let (Some(id), false) = (self.id, self.done) else {
            return;
        };
        let mut inner = self.inner.borrow_mut();
        let wake = if inner.granted == Some(id) {
            // Handed the lock but gone before taking it: the next waiter gets it.
            inner.granted = None;
            inner.hand_on()
        } else {
            inner.queue.retain(|(i, _)| *i != id);
            None
        };
        drop(inner);
        if let Some(w) = wake {
            w.wake();
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let wake = self.inner.borrow_mut().hand_on();
        if let Some(w) = wake {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wakes::Count;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::Context;

    fn poll_with<F: Future + ?Sized>(f: Pin<&mut F>, count: &Arc<Count>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(&count.waker()))
    }

    fn counter() -> Arc<Count> {
        Count::new()
    }

    #[test]
    fn a_lock_waiter_dropped_after_its_wake_up_does_not_strand_the_next() {
        let lock = Lock::new();
        let mut held = Box::pin(lock.lock());
        let Poll::Ready(guard) = poll_with(held.as_mut(), &counter()) else {
            panic!("a free lock is taken at once");
        };
        let (b, c) = (counter(), counter());
        let mut wait_b = Box::pin(lock.lock());
        let mut wait_c = Box::pin(lock.lock());
        assert!(poll_with(wait_b.as_mut(), &b).is_pending());
        assert!(poll_with(wait_c.as_mut(), &c).is_pending());
        drop(guard);
        // b is woken, then cancelled before it runs (a timeout around it fired).
        assert_eq!(b.get(), 1);
        drop(wait_b);
        assert_eq!(c.get(), 1, "c must be woken to find the lock free");
        assert!(poll_with(wait_c.as_mut(), &c).is_ready());
    }

    #[test]
    fn a_sender_dropped_after_its_wake_up_does_not_strand_the_next() {
        let (tx, mut rx) = channel::<u32>(1);
        tx.try_send(0).unwrap();
        let (a, b) = (counter(), counter());
        let tx_b = tx.clone();
        let mut send_a = Box::pin(tx.send(1));
        let mut send_b = Box::pin(tx_b.send(2));
        assert!(poll_with(send_a.as_mut(), &a).is_pending());
        assert!(poll_with(send_b.as_mut(), &b).is_pending());
        let mut recv = Box::pin(rx.recv());
        assert_eq!(poll_with(recv.as_mut(), &counter()), Poll::Ready(Some(0)));
        drop(recv);
        assert_eq!(a.get(), 1);
        drop(send_a);
        assert_eq!(b.get(), 1, "b must be woken to find the room");
        assert_eq!(poll_with(send_b.as_mut(), &b), Poll::Ready(Ok(())));
        drop(send_b);
        assert_eq!(rx.len(), 1);
    }

    /// The lock goes to the longest waiter even when a later one is polled first.
    #[test]
    fn the_lock_is_handed_to_waiters_in_arrival_order() {
        let lock = Lock::new();
        let mut first = Box::pin(lock.lock());
        let Poll::Ready(guard) = poll_with(first.as_mut(), &counter()) else {
            panic!("a free lock is taken at once");
        };
        let (a, b) = (counter(), counter());
        let mut wait_a = Box::pin(lock.lock());
        let mut wait_b = Box::pin(lock.lock());
        assert!(poll_with(wait_a.as_mut(), &a).is_pending());
        assert!(poll_with(wait_b.as_mut(), &b).is_pending());
        drop(guard);
        assert_eq!((a.get(), b.get()), (1, 0), "only the first waiter is woken");
        assert!(poll_with(wait_b.as_mut(), &b).is_pending(), "b came later");
        let mut late = Box::pin(lock.lock());
        assert!(
            poll_with(late.as_mut(), &counter()).is_pending(),
            "no overtaking either"
        );
        let Poll::Ready(held) = poll_with(wait_a.as_mut(), &a) else {
            panic!("a was handed the lock");
        };
        drop(held);
        assert_eq!(b.get(), 1);
        assert!(poll_with(wait_b.as_mut(), &b).is_ready());
    }
}
