//! Thread-per-core query work: a data node (and the single node) runs on shard 0 — network,
//! storage engine, Raft — and hands query tasks' partitions to the other shards, one per core,
//! which compute them and send the tables back (`rt::shard`, messages only).
//!
//! Shard 0 reads each partition's columns as the engine's decoded spans (`storage::Spans`:
//! immutable, shared, so the read is a reference, not a copy) and sends them with the encoded
//! fragment; a worker joins the spans, runs the fragment (`lang::fragment::run`) and answers.
//!
//! Invariants:
//! - A worker owns nothing between tasks: everything a task needs travels in its message, so
//!   a worker's answer depends on the message alone, as a data node's task does.
//! - Every task sent is answered exactly once (a result or an error); a worker that cannot
//!   decode its task, or panics running it, answers the error, never drops it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use lang::catalog::{ChunkSource, LocalFuture, Partition};
use lang::eval::{EvalError, Table};
use storage::batch::Schema;
use storage::column::Column;
use storage::Spans;

/// What a partition of a task brings: its row count, or its columns as spans.
pub enum Input {
    Rows(usize),
    Columns(Vec<Spans>),
}

/// Messages between shard 0 and its workers.
pub enum Work {
    Task {
        id: u64,
        fragment: Vec<u8>,
        /// One per partition of the fragment, in its order.
        inputs: Vec<Input>,
    },
    Done {
        id: u64,
        result: Result<Vec<Table>, String>,
    },
    /// The worker's loop ends (a test's or a tool's runtime winding down).
    Stop,
}

/// A task's answer as it comes back from a worker.
type Answered = Result<Vec<Table>, String>;

/// Shard 0's handle on the workers.
pub struct Workers {
    sender: rt::shard::ShardSender<Work>,
    count: usize,
    next: Cell<u64>,
    /// Tasks handed to workers so far.
    sent: Cell<u64>,
    pending: Rc<RefCell<HashMap<u64, rt::sync::Sender<Answered>>>>,
}

impl Workers {
    /// Takes shard 0's end of the mesh; answers are routed by a task of their own.
    pub fn start(mut shard: rt::shard::Shard<Work>) -> Rc<Workers> {
        let pending: Rc<RefCell<HashMap<u64, rt::sync::Sender<_>>>> = Rc::default();
        let w = Rc::new(Workers {
            sender: shard.sender(),
            count: shard.count(),
            next: Cell::new(0),
            sent: Cell::new(0),
            pending: pending.clone(),
        });
        drop(rt::task::spawn_local(async move {
            while let Some((_, msg)) = shard.recv().await {
                if let Work::Done { id, result } = msg {
                    let waiting = pending.borrow_mut().remove(&id);
                    if let Some(tx) = waiting {
                        let _ = tx.try_send(result);
                    }
                }
            }
        }));
        w
    }

    /// Shards in all, this one included.
    pub fn shards(&self) -> usize {
        self.count
    }

    /// Tasks handed to workers so far.
    pub fn tasks_sent(&self) -> u64 {
        self.sent.get()
    }

    /// Ends every worker's loop.
    pub async fn stop(&self) {
        for to in 1..self.count {
            let _ = self.sender.send(to, Work::Stop).await;
        }
    }

    /// Hands `fragment` (encoded) over `inputs` to worker shard `to` (1 ..); the answer comes
    /// through the returned [`Answer`]. The task is on its way when this returns, so work done
    /// here meanwhile overlaps it.
    pub async fn submit(
        &self,
        to: usize,
        fragment: Vec<u8>,
        inputs: Vec<Input>,
    ) -> Result<Answer, String> {
        assert!(
            to > 0 && to < self.count,
            "worker shard {to} of {}",
            self.count
        );
        let id = self.next.get() + 1;
        self.next.set(id);
        let (tx, rx) = rt::sync::channel(1);
        self.pending.borrow_mut().insert(id, tx);
        let sent = self
            .sender
            .send(
                to,
                Work::Task {
                    id,
                    fragment,
                    inputs,
                },
            )
            .await;
        if sent.is_err() {
            self.pending.borrow_mut().remove(&id);
            return Err(format!("worker shard {to} is gone"));
        }
        self.sent.set(self.sent.get() + 1);
        Ok(Answer { to, rx })
    }
}

/// A task's answer, to wait for.
pub struct Answer {
    to: usize,
    rx: rt::sync::Receiver<Answered>,
}

impl Answer {
    pub async fn wait(mut self) -> Result<Vec<Table>, String> {
        let to = self.to;
        self.rx
            .recv()
            .await
            .unwrap_or_else(|| Err(format!("worker shard {to} did not answer")))
    }
}

/// A worker shard's loop: each task runs as it arrives, its answer sent back to its sender.
pub async fn serve(mut shard: rt::shard::Shard<Work>) {
    // Its own cache of decoded spans (spans never change, D88), its share of the node's.
    let share = crate::server::span_cache_share(shard.count());
    let cache = Rc::new(RefCell::new(storage::SpanCache::new(share)));
    while let Some((from, msg)) = shard.recv().await {
        let (id, fragment, inputs) = match msg {
            Work::Task {
                id,
                fragment,
                inputs,
            } => (id, fragment, inputs),
            Work::Stop => return,
            Work::Done { .. } => continue,
        };
        let sender = shard.sender();
        let cache = cache.clone();
        drop(rt::task::spawn_local(async move {
            // A bug that panics in one task answers that task with the panic, so the
            // coordinator reruns it elsewhere or fails the query, and the shard lives on.
            let result = match Unwinding(Box::pin(run_task(&fragment, inputs, cache))).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(panic) => Err(format!("worker shard panicked: {panic}")),
            };
            let _ = sender.send(from, Work::Done { id, result }).await;
        }));
    }
}

/// A future whose panic is caught and answered as its message.
struct Unwinding<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for Unwinding<F> {
    type Output = Result<F::Output, String>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(p) => std::task::Poll::Ready(Err(panic_message(&*p))),
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

async fn run_task(
    fragment: &[u8],
    inputs: Vec<Input>,
    cache: Rc<RefCell<storage::SpanCache>>,
) -> Result<Vec<Table>, EvalError> {
    let f = lang::fragment::Fragment::decode(fragment).map_err(EvalError::msg)?;
    run_inputs(&f, inputs, Some(cache)).await
}

/// Runs `f` over `inputs` (one per partition, in its order), as a worker runs a task; spans
/// still on disk are decoded into `cache` when one is given.
pub async fn run_inputs(
    f: &lang::fragment::Fragment,
    inputs: Vec<Input>,
    cache: Option<Rc<RefCell<storage::SpanCache>>>,
) -> Result<Vec<Table>, EvalError> {
    if inputs.len() != f.parts.len() {
        return Err(EvalError::msg("a task whose inputs and partitions differ"));
    }
    let given = Given {
        cache,
        inputs: RefCell::new(
            f.parts
                .iter()
                .map(|p| p.chunk)
                .zip(inputs.into_iter().map(Some))
                .collect(),
        ),
    };
    lang::fragment::run(f, &given).await
}

/// The partitions' inputs as a chunk source: each read once, in the fragment's order.
struct Given {
    cache: Option<Rc<RefCell<storage::SpanCache>>>,
    inputs: RefCell<Vec<(u64, Option<Input>)>>,
}

impl Given {
    fn take(&self, part: &Partition) -> Result<Input, EvalError> {
        let mut inputs = self.inputs.borrow_mut();
        inputs
            .iter_mut()
            .find(|(c, i)| *c == part.chunk && i.is_some())
            .and_then(|(_, i)| i.take())
            .ok_or_else(|| EvalError::msg(format!("chunk {} was not sent", part.chunk)))
    }
}

/// Each column's pieces (column-major) as pieces of every column (piece-major); `None` when the
/// columns are not cut alike (then they are joined instead).
pub fn line_up(cols: Vec<Vec<std::sync::Arc<Column>>>) -> Option<Vec<Vec<std::sync::Arc<Column>>>> {
    let first = cols.first()?;
    let lens: Vec<usize> = first.iter().map(|c| c.len()).collect();
    let aligned = cols
        .iter()
        .all(|c| c.len() == lens.len() && c.iter().zip(&lens).all(|(p, n)| p.len() == *n));
    if !aligned {
        return None;
    }
    let mut out: Vec<Vec<std::sync::Arc<Column>>> = (0..lens.len())
        .map(|_| Vec::with_capacity(cols.len()))
        .collect();
    for col in cols {
        for (k, piece) in col.into_iter().enumerate() {
            out[k].push(piece);
        }
    }
    Some(out)
}

/// Spans as pieces of every column, shared where decoded (`ChunkSource::pieces`).
pub async fn spans_pieces(
    spans: Vec<Spans>,
    cache: Option<&RefCell<storage::SpanCache>>,
    chunk: u64,
) -> Result<Vec<Vec<std::sync::Arc<Column>>>, EvalError> {
    let unreadable = |e: storage::StorageError| {
        EvalError::msg(format!(
            "<DataNodeNotAvail>chunk {chunk} cannot be read here: {e}"
        ))
    };
    let mut cols = Vec::with_capacity(spans.len());
    for s in &spans {
        cols.push(s.clone().load_pieces(cache).await.map_err(unreadable)?);
    }
    if let Some(p) = line_up(cols) {
        return Ok(p);
    }
    let mut joined = Vec::with_capacity(spans.len());
    for s in spans {
        joined.push(std::sync::Arc::new(
            s.load(cache).await.map_err(unreadable)?,
        ));
    }
    Ok(vec![joined])
}

impl ChunkSource for Given {
    fn rows<'a>(
        &'a self,
        _schema: &'a Schema,
        part: &'a Partition,
    ) -> LocalFuture<'a, Result<usize, EvalError>> {
        Box::pin(async move {
            match self.take(part)? {
                Input::Rows(n) => Ok(n),
                Input::Columns(c) => Ok(c.first().map_or(0, Spans::rows)),
            }
        })
    }

    fn columns<'a>(
        &'a self,
        _schema: &'a Schema,
        part: &'a Partition,
        _columns: &'a [usize],
    ) -> LocalFuture<'a, Result<Vec<Column>, EvalError>> {
        Box::pin(async move {
            match self.take(part)? {
                Input::Columns(spans) => {
                    let mut out = Vec::with_capacity(spans.len());
                    for s in spans {
                        // A damaged span fails the task: the coordinator asks another replica.
                        out.push(s.load(self.cache.as_deref()).await.map_err(|e| {
                            EvalError::msg(format!(
                                "<DataNodeNotAvail>chunk {} cannot be read here: {e}",
                                part.chunk
                            ))
                        })?);
                    }
                    Ok(out)
                }
                Input::Rows(_) => Err(EvalError::msg("columns asked of a row count")),
            }
        })
    }

    fn pieces<'a>(
        &'a self,
        _schema: &'a Schema,
        part: &'a Partition,
        _columns: &'a [usize],
    ) -> LocalFuture<'a, Result<Vec<Vec<std::sync::Arc<Column>>>, EvalError>> {
        Box::pin(async move {
            match self.take(part)? {
                Input::Columns(spans) => {
                    spans_pieces(spans, self.cache.as_deref(), part.chunk).await
                }
                Input::Rows(_) => Err(EvalError::msg("columns asked of a row count")),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    #[test]
    fn a_panicking_task_answers_its_panic() {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut f = Unwinding(Box::pin(async { panic!("chunk 7 decoded badly") }));
        let got: std::task::Poll<Result<(), String>> = std::pin::Pin::new(&mut f).poll(&mut cx);
        assert_eq!(
            got,
            std::task::Poll::Ready(Err("chunk 7 decoded badly".to_string()))
        );
        let mut ok = Unwinding(Box::pin(async { 3 }));
        assert_eq!(
            std::pin::Pin::new(&mut ok).poll(&mut cx),
            std::task::Poll::Ready(Ok(3))
        );
    }
}
