//! Single-shard watch channel: one value, many readers told when it changes.
//!
//! This exists because tokio's `watch` is not replayable. Its sender wakes its receivers through
//! one of eight `Notify` shards chosen by a thread-local RNG that tokio seeds from a
//! process-wide counter, so the second simulation of a seed in one process woke openraft's
//! replication tasks in another order than the first (found as `MADSIM_TEST_SEED=16` of
//! `same_seed_same_trace`; see docs/ARCHITECTURE.md D54).
//!
//! Invariants:
//! - **Replayable wake order.** Waiting receivers are woken in the order they started waiting,
//!   and nothing here draws randomness or reads a clock.
//! - **Versions only grow.** Every accepted change bumps `version`; a receiver reports a change
//!   exactly when the version differs from the one it last saw, so no change is missed and none
//!   is reported twice.
//! - **Bounded waiters.** A task registers at most one waker (duplicates are recognised with
//!   `Waker::will_wake`), and every notification drains the list.
//! - **Closing is observable.** When the last sender goes, every waiter wakes and `changed`
//!   returns [`Closed`] once it has reported the final change.

use std::cell::{Cell, Ref, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

struct Shared<T> {
    value: RefCell<T>,
    version: Cell<u64>,
    senders: Cell<usize>,
    receivers: Cell<usize>,
    waiters: RefCell<Vec<Waker>>,
}

impl<T> Shared<T> {
    fn notify(&self) {
        // Take the list first: a woken task may register again while we wake the rest.
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            w.wake();
        }
    }
}

/// Writing half; clones share the value.
pub struct Sender<T> {
    shared: Rc<Shared<T>>,
}

/// Reading half; each receiver remembers which version it has seen.
pub struct Receiver<T> {
    shared: Rc<Shared<T>>,
    seen: u64,
}

/// No receiver is left; the value is handed back and the channel is unchanged.
#[derive(Debug, PartialEq, Eq)]
pub struct NoReceivers<T>(pub T);

/// Every sender is gone and the last change has been reported.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed;

/// Creates a channel holding `init`; the receiver starts having seen it.
pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
    let shared = Rc::new(Shared {
        value: RefCell::new(init),
        version: Cell::new(0),
        senders: Cell::new(1),
        receivers: Cell::new(1),
        waiters: RefCell::new(Vec::new()),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared, seen: 0 },
    )
}

impl<T> Sender<T> {
    /// Replaces the value and wakes the receivers; refused when none is left.
    pub fn send(&self, value: T) -> Result<(), NoReceivers<T>> {
        if self.shared.receivers.get() == 0 {
            return Err(NoReceivers(value));
        }
        self.send_replace(value);
        Ok(())
    }

    /// Replaces the value whether or not anyone listens; returns the old one.
    pub fn send_replace(&self, value: T) -> T {
        let old = std::mem::replace(&mut *self.shared.value.borrow_mut(), value);
        self.bump();
        old
    }

    /// Lets `modify` edit the value in place; receivers hear of it only if it returns true.
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let modified = modify(&mut self.shared.value.borrow_mut());
        if modified {
            self.bump();
        }
        modified
    }

    /// The current value. Do not hold it across a send: the value is a `RefCell`.
    pub fn borrow(&self) -> Ref<'_, T> {
        self.shared.value.borrow()
    }

    /// A new receiver that has seen the current value.
    pub fn subscribe(&self) -> Receiver<T> {
        self.shared.receivers.set(self.shared.receivers.get() + 1);
        Receiver {
            shared: self.shared.clone(),
            seen: self.shared.version.get(),
        }
    }

    /// Receivers still alive.
    pub fn receiver_count(&self) -> usize {
        self.shared.receivers.get()
    }

    fn bump(&self) {
        let before = self.shared.version.get();
        self.shared.version.set(before + 1);
        debug_assert!(self.shared.version.get() > before, "versions only grow");
        self.shared.notify();
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.set(self.shared.senders.get() + 1);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let left = self.shared.senders.get() - 1;
        self.shared.senders.set(left);
        if left == 0 {
            self.shared.notify();
        }
    }
}

impl<T> Receiver<T> {
    /// Waits until the value changes from the version this receiver last saw, and marks the new
    /// version seen. Returns [`Closed`] once the senders are gone and nothing new is left.
    pub async fn changed(&mut self) -> Result<(), Closed> {
        poll_fn(|cx| {
            let version = self.shared.version.get();
            if version != self.seen {
                debug_assert!(version > self.seen, "a receiver never sees the future");
                self.seen = version;
                return Poll::Ready(Ok(()));
            }
            if self.shared.senders.get() == 0 {
                return Poll::Ready(Err(Closed));
            }
            let mut waiters = self.shared.waiters.borrow_mut();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// The current value, without marking it seen.
    pub fn borrow(&self) -> Ref<'_, T> {
        self.shared.value.borrow()
    }

    /// The current value, marked seen.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        self.seen = self.shared.version.get();
        self.shared.value.borrow()
    }

    /// Whether the value changed since this receiver last looked.
    pub fn has_changed(&self) -> bool {
        self.shared.version.get() != self.seen
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.set(self.shared.receivers.get() + 1);
        Receiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.receivers.set(self.shared.receivers.get() - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wakes::Count;
    use std::future::Future;
    use std::sync::Arc;
    use std::task::{Context, Wake};

    fn poll_changed(rx: &mut Receiver<u32>, waker: &Waker) -> Poll<Result<(), Closed>> {
        let mut fut = std::pin::pin!(rx.changed());
        fut.as_mut().poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn changes_are_reported_once_and_closing_after_the_last() {
        let (tx, mut rx) = channel(1u32);
        let count = Count::new();
        let waker = count.waker();
        assert!(poll_changed(&mut rx, &waker).is_pending());
        tx.send(2).unwrap();
        assert_eq!(count.get(), 1, "the waiter woke");
        assert_eq!(poll_changed(&mut rx, &waker), Poll::Ready(Ok(())));
        assert_eq!(*rx.borrow(), 2);
        assert!(poll_changed(&mut rx, &waker).is_pending(), "seen once");
        assert!(
            !tx.send_if_modified(|_| false),
            "an unmodified value wakes nobody"
        );
        assert_eq!(count.get(), 1);
        tx.send(3).unwrap();
        drop(tx);
        assert_eq!(
            poll_changed(&mut rx, &waker),
            Poll::Ready(Ok(())),
            "last change first"
        );
        assert_eq!(poll_changed(&mut rx, &waker), Poll::Ready(Err(Closed)));
    }

    #[test]
    fn waiters_wake_in_the_order_they_waited_and_register_once() {
        struct Log(Arc<std::sync::Mutex<Vec<char>>>, char);
        impl Wake for Log {
            fn wake(self: Arc<Self>) {
                self.0.lock().unwrap().push(self.1);
            }
        }
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let wa = Waker::from(Arc::new(Log(order.clone(), 'a')));
        let wb = Waker::from(Arc::new(Log(order.clone(), 'b')));
        let (tx, mut a) = channel(0u32);
        let mut b = tx.subscribe();
        assert!(poll_changed(&mut b, &wb).is_pending());
        assert!(poll_changed(&mut a, &wa).is_pending());
        assert!(poll_changed(&mut a, &wa.clone()).is_pending());
        assert_eq!(tx.shared.waiters.borrow().len(), 2, "one waker per task");
        tx.send(1).unwrap();
        assert_eq!(*order.lock().unwrap(), vec!['b', 'a']);
        assert!(
            tx.shared.waiters.borrow().is_empty(),
            "a notification drains the list"
        );
    }

    #[test]
    fn send_without_receivers_is_refused_and_subscribers_start_current() {
        let (tx, rx) = channel(5u32);
        drop(rx);
        assert_eq!(tx.send(6), Err(NoReceivers(6)));
        assert_eq!(*tx.borrow(), 5, "a refused send changes nothing");
        assert!(tx.send_if_modified(|v| {
            *v = 7;
            true
        }));
        let mut late = tx.subscribe();
        assert!(
            !late.has_changed(),
            "a subscriber has seen the current value"
        );
        tx.send(8).unwrap();
        assert!(late.has_changed());
        assert_eq!(*late.borrow_and_update(), 8);
        assert!(!late.has_changed());
    }
}
