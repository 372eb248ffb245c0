//! Shards: one executor per core, sharing nothing, talking by messages.
//!
//! A [`Shard`] is handed to the per-shard entry function by [`Runtime::run`](crate::Runtime::run)
//! (one pinned glommio executor per shard in production) or by
//! [`Runtime::run_local`](crate::Runtime::run_local) (all shards as tasks of the current
//! executor — how simulated hosts run, and handy in tests).
//!
//! Invariants: every shard-to-shard queue is bounded by `channel_capacity`; a message from
//! shard `a` to shard `b` is delivered at most once and in send order relative to other
//! messages from `a` to `b`.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use crate::sync;

/// Messages addressed to a shard that is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("shard {to} is closed")]
pub struct ShardClosed {
    pub to: usize,
}

/// Sending side of a cross-executor mesh (type-erased so that `Shard<M>` needs no `M: Send`
/// bound in the single-executor case).
pub(crate) trait RemoteOutbox<M> {
    fn send_to<'a>(&'a self, to: usize, msg: M) -> Pin<Box<dyn Future<Output = bool> + 'a>>;
    fn peers(&self) -> usize;
}

pub(crate) enum Outbox<M> {
    /// All shards live on this executor.
    Local(Rc<Vec<sync::Sender<(usize, M)>>>),
    /// Shards on other executors (production): a glommio channel mesh; messages to self
    /// short-circuit through `own`.
    #[cfg_attr(madsim, allow(dead_code))]
    Mesh {
        mesh: Rc<dyn RemoteOutbox<M>>,
        own: sync::Sender<(usize, M)>,
    },
}

impl<M> Clone for Outbox<M> {
    fn clone(&self) -> Self {
        match self {
            Outbox::Local(v) => Outbox::Local(v.clone()),
            Outbox::Mesh { mesh, own } => Outbox::Mesh {
                mesh: mesh.clone(),
                own: own.clone(),
            },
        }
    }
}

/// A cloneable handle for sending to any shard of this runtime.
pub struct ShardSender<M> {
    from: usize,
    outbox: Outbox<M>,
}

impl<M> Clone for ShardSender<M> {
    fn clone(&self) -> Self {
        ShardSender {
            from: self.from,
            outbox: self.outbox.clone(),
        }
    }
}

impl<M> ShardSender<M> {
    /// Sends `msg` to shard `to`, waiting while its queue is full.
    pub async fn send(&self, to: usize, msg: M) -> Result<(), ShardClosed> {
        match &self.outbox {
            Outbox::Local(senders) => {
                let s = senders.get(to).ok_or(ShardClosed { to })?;
                s.send((self.from, msg))
                    .await
                    .map_err(|_| ShardClosed { to })
            }
            Outbox::Mesh { mesh, own } => {
                if to == self.from {
                    own.send((self.from, msg))
                        .await
                        .map_err(|_| ShardClosed { to })
                } else if to < mesh.peers() && mesh.send_to(to, msg).await {
                    Ok(())
                } else {
                    Err(ShardClosed { to })
                }
            }
        }
    }
}

/// This shard's identity, its inbox and a sender to every shard.
pub struct Shard<M> {
    id: usize,
    count: usize,
    sender: ShardSender<M>,
    inbox: sync::Receiver<(usize, M)>,
}

impl<M> Shard<M> {
    pub(crate) fn new(
        id: usize,
        count: usize,
        outbox: Outbox<M>,
        inbox: sync::Receiver<(usize, M)>,
    ) -> Self {
        assert!(id < count, "shard id {id} out of range 0..{count}");
        Shard {
            id,
            count,
            sender: ShardSender { from: id, outbox },
            inbox,
        }
    }

    /// This shard's index, `0..count()`.
    pub fn id(&self) -> usize {
        self.id
    }

    /// How many shards the runtime has.
    pub fn count(&self) -> usize {
        self.count
    }

    /// A cloneable sender, for tasks that need to message other shards.
    pub fn sender(&self) -> ShardSender<M> {
        self.sender.clone()
    }

    /// Sends `msg` to shard `to` (may be this shard).
    pub async fn send(&self, to: usize, msg: M) -> Result<(), ShardClosed> {
        self.sender.send(to, msg).await
    }

    /// The next message and the shard it came from; `None` when no shard can send any more.
    pub async fn recv(&mut self) -> Option<(usize, M)> {
        self.inbox.recv().await
    }
}

/// Builds `count` shards that all live on the current executor.
pub(crate) fn local_mesh<M>(count: usize, capacity: usize) -> Vec<Shard<M>> {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..count).map(|_| sync::channel(capacity)).unzip();
    let senders = Rc::new(senders);
    receivers
        .into_iter()
        .enumerate()
        .map(|(id, inbox)| Shard::new(id, count, Outbox::Local(senders.clone()), inbox))
        .collect()
}
