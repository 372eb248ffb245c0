//! The floor of a replicated durable commit on this machine: the least any 3-way Raft commit
//! can cost here, measured with the same runtime, transport and disk as the real group, but
//! without Raft.
//!
//! Three replicas run on threads of their own (127.0.0.80-82, `FLOOR_PORT`), each with a
//! write-through (O_DSYNC) log file, as the controllers' logs are with `dataSync=1`. A client
//! call to replica 0 (the "leader") does exactly what a commit must:
//! 1. the request crosses to the leader;
//! 2. the leader sends the entry to both followers and writes it durably itself, all at once;
//! 3. each follower writes it durably and answers;
//! 4. as soon as two of the three writes are durable (a majority), the leader answers.
//!
//! Nothing else happens: no terms, no log index bookkeeping, no state machine, no task hops
//! beyond the transport's own. So `commit/1_client` minus `floor/1_client` is what Raft
//! (openraft and our log, stream and state machine) adds, and `floor/1_client` itself is what
//! the hardware asks: four loopback legs and the second of three durable writes that share one
//! disk.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use node::error::{ErrorCode, RemoteError};
use node::rpc::{serve_connection, RpcClient};

use super::{rpc_cfg, HOSTS};

pub const FLOOR_PORT: u16 = 18900;
/// Follower: write the payload durably, then answer.
const REPLICATE: u16 = 1;
/// Leader: replicate the payload to a majority, then answer.
const COMMIT: u16 = 2;
/// The log is overwritten in place over this many 4 KiB blocks (as the Raft log is
/// preallocated).
const LOG_BLOCKS: u64 = 256;

pub fn addr(i: usize) -> SocketAddr {
    format!("{}:{FLOOR_PORT}", HOSTS[i]).parse().unwrap()
}

/// One replica's log: write-through 4 KiB blocks, the next one after the last.
struct Log {
    file: rt::disk::File,
    next_block: std::cell::Cell<u64>,
}

impl Log {
    async fn append(&self, payload: &[u8]) {
        let mut block = vec![0u8; rt::disk::ALIGN];
        let n = payload.len().min(block.len());
        block[..n].copy_from_slice(&payload[..n]);
        let b = self.next_block.get();
        self.next_block.set((b + 1) % LOG_BLOCKS);
        self.file
            .write_at(b * rt::disk::ALIGN as u64, &block)
            .await
            .expect("floor log write");
    }
}

/// Starts replica `i` on its own thread; replica 0 leads. Runs until the process exits.
pub fn start_replica(i: usize, dir: PathBuf) {
    std::thread::spawn(move || {
        let _ = rt::Runtime::new(format!("floor{i}"))
            .io_memory_bytes(512 << 10)
            .run(move |_s: rt::shard::Shard<()>| {
                let dir = dir.clone();
                async move {
                    let file = rt::disk::File::open_write_through(
                        &dir.join(format!("floor-log-{i}")),
                        rt::disk::OpenMode::CreateOrOpen,
                    )
                    .await
                    .expect("floor log");
                    let log = Rc::new(Log {
                        file,
                        next_block: std::cell::Cell::new(0),
                    });
                    let followers: Rc<Vec<RpcClient>> = Rc::new(if i == 0 {
                        (1..3).map(|k| RpcClient::new(addr(k), rpc_cfg())).collect()
                    } else {
                        Vec::new()
                    });
                    let listener = rt::net::TcpListener::bind(addr(i)).await.expect("bind");
                    while let Ok((stream, _)) = listener.accept().await {
                        let (log, followers) = (log.clone(), followers.clone());
                        drop(rt::task::spawn_local(async move {
                            let handler = |method: u16, payload: Vec<u8>| {
                                let (log, followers) = (log.clone(), followers.clone());
                                async move {
                                    match method {
                                        REPLICATE => log.append(&payload).await,
                                        COMMIT => {
                                            replicate(&log, &followers, payload).await.map_err(
                                                |m| RemoteError::new(ErrorCode::RaftFailed, m),
                                            )?
                                        }
                                        _ => {
                                            return Err(RemoteError::new(
                                                ErrorCode::UnknownMethod,
                                                format!("unknown method {method}"),
                                            ))
                                        }
                                    }
                                    Ok(Vec::new())
                                }
                            };
                            let _ = serve_connection(stream, &handler).await;
                        }));
                    }
                }
            });
    });
}

/// Sends `payload` to both followers and writes it locally, all at once; returns when two of
/// the three are durable. The third finishes on its own.
async fn replicate(
    log: &Rc<Log>,
    followers: &Rc<Vec<RpcClient>>,
    payload: Vec<u8>,
) -> Result<(), String> {
    let (done, mut durable) = rt::sync::channel::<()>(3);
    for k in 0..followers.len() {
        let (followers, payload, done) = (followers.clone(), payload.clone(), done.clone());
        drop(rt::task::spawn_local(async move {
            // A follower that is not up yet never counts: the client retries until it is.
            if followers[k].call(REPLICATE, payload).await.is_ok() {
                let _ = done.send(()).await;
            }
        }));
    }
    let local = log.clone();
    drop(rt::task::spawn_local(async move {
        local.append(&payload).await;
        let _ = done.send(()).await;
    }));
    for _ in 0..2 {
        durable.recv().await.ok_or("no majority")?;
    }
    Ok(())
}

/// Where the plain TCP echo of [`start_echo`] listens.
pub fn echo_addr() -> SocketAddr {
    format!("{}:{}", HOSTS[1], FLOOR_PORT + 1).parse().unwrap()
}

/// Size of one echoed message: about a small node-RPC frame.
pub const ECHO_BYTES: usize = 32;

/// Starts a plain `rt::net` TCP echo server on its own thread and executor: the runtime's own
/// floor of a hop, under the node-RPC layer (framing, multiplexing, the connection driver).
pub fn start_echo() {
    std::thread::spawn(move || {
        let _ = rt::Runtime::new("echo").io_memory_bytes(512 << 10).run(
            move |_s: rt::shard::Shard<()>| async move {
                let listener = rt::net::TcpListener::bind(echo_addr()).await.expect("bind");
                while let Ok((mut stream, _)) = listener.accept().await {
                    let _ = stream.set_nodelay(true);
                    drop(rt::task::spawn_local(async move {
                        let mut msg = [0u8; ECHO_BYTES];
                        while stream.read_exact(&mut msg).await.is_ok() {
                            if stream.write_all(&msg).await.is_err() {
                                return;
                            }
                        }
                    }));
                }
            },
        );
    });
}

/// A client of the floor leader, connected once it answers.
pub async fn leader_client() -> RpcClient {
    for _ in 0..600 {
        let c = RpcClient::new(addr(0), rpc_cfg());
        if c.call(COMMIT, vec![1; 64]).await.is_ok() {
            return c;
        }
        rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the floor replicas never answered");
}

/// One commit through the floor leader: a 64-byte entry, about a `SetConfig` command's size.
pub async fn commit(c: &RpcClient) {
    c.call(COMMIT, vec![1; 64]).await.expect("floor commit");
}
