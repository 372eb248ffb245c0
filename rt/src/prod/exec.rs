//! One glommio `LocalExecutor` per shard, joined by a bounded channel mesh.

use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};

use crate::error::RtError;
use crate::shard::{Outbox, RemoteOutbox, Shard};
use crate::{sync, Runtime};

impl<M: Send> RemoteOutbox<M> for glommio::channels::channel_mesh::Senders<M> {
    fn send_to<'a>(
        &'a self,
        to: usize,
        msg: M,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + 'a>> {
        Box::pin(async move {
            glommio::channels::channel_mesh::Senders::send_to(self, to, msg)
                .await
                .is_ok()
        })
    }

    fn peers(&self) -> usize {
        self.nr_consumers()
    }
}

pub(crate) fn run<M, T, F, Fut>(rt: &Runtime, entry: F) -> Result<Vec<T>, RtError>
where
    M: Send + 'static,
    T: Send + 'static,
    F: Fn(Shard<M>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + 'static,
{
    super::preflight::check(rt.shards, rt.io_memory_bytes)?;
    keep_freed_memory();
    let entry = Arc::new(entry);
    let mesh: MeshBuilder<M, glommio::channels::channel_mesh::Full> =
        MeshBuilder::full(rt.shards, rt.channel_capacity);
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut handles = Vec::with_capacity(rt.shards);
    for i in 0..rt.shards {
        let placement = if rt.pin_to_cores {
            Placement::Fixed(i % ncpu)
        } else {
            Placement::Unbound
        };
        let entry = entry.clone();
        let mesh = mesh.clone();
        let capacity = rt.channel_capacity;
        let count = rt.shards;
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("{}-{i}", rt.name))
            .io_memory(rt.io_memory_bytes)
            .spawn(move || async move {
                let (senders, mut receivers) = mesh
                    .join()
                    .await
                    .map_err(|e| format!("shard {i} could not join the channel mesh: {e}"))?;
                let id = senders.peer_id();
                let (own_tx, inbox) = sync::channel::<(usize, M)>(capacity);
                // Forward every peer's stream into this shard's single inbox.
                for (peer, stream) in receivers.streams() {
                    let tx = own_tx.clone();
                    glommio::spawn_local(async move {
                        while let Some(msg) = stream.recv().await {
                            if tx.send((peer, msg)).await.is_err() {
                                break;
                            }
                        }
                    })
                    .detach();
                }
                let outbox = Outbox::Mesh {
                    mesh: Rc::new(senders),
                    own: own_tx,
                };
                Ok::<(usize, T), String>((id, entry(Shard::new(id, count, outbox, inbox)).await))
            })
            .map_err(|e| RtError::ShardFailed {
                shard: i,
                message: e.to_string(),
            })?;
        handles.push(handle);
    }
    let mut out = Vec::with_capacity(handles.len());
    let mut first_err = None;
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(v)) => out.push(v),
            Ok(Err(message)) => {
                first_err.get_or_insert(RtError::ShardFailed { shard: i, message });
            }
            Err(e) => {
                first_err.get_or_insert(RtError::ShardFailed {
                    shard: i,
                    message: e.to_string(),
                });
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => {
            // Mesh ids follow join order, not spawn order: return outputs in shard-id order.
            out.sort_by_key(|(id, _)| *id);
            Ok(out.into_iter().map(|(_, v)| v).collect())
        }
    }
}

/// Large allocations: glibc serves them with fresh `mmap`s and returns freed heap tops to the
/// kernel, so a query that builds tens of megabytes of columns page-faults every page of them
/// again on each run — measured at a fifth of the tutorial's OHLC query, with the shards'
/// threads contending on the process's page-table lock. Serving large blocks from the heap
/// and keeping freed memory for reuse removes that; the memory stays with the process, bounded
/// by what a query held at its peak (`maxMemSize` is the budget for that).
fn keep_freed_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        /// Blocks above this are still `mmap`ed (a single huge one is better returned).
        const MMAP_THRESHOLD: libc::c_int = 1 << 30;
        // SAFETY: mallopt only sets allocator parameters, under glibc's arena locks.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        }
    });
}
