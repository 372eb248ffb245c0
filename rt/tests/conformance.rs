//! The `rt` conformance suite. It runs unchanged against both backends:
//!
//! ```text
//! cargo test -p rt --test conformance                                   # glommio
//! CARGO_TARGET_DIR=target/sim RUSTFLAGS="--cfg madsim" \
//!     cargo test -p rt --test conformance                               # madsim
//! ```
//!
//! Nothing here may name a backend: if a behaviour differs between them, the facade is wrong.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rt::disk::{self, File, OpenMode, ALIGN};
use rt::net::{TcpListener, TcpStream, UdpSocket};
use rt::shard::Shard;
use rt::{task, time, Runtime};

/// Runs `body` as the only shard of a fresh runtime.
fn on_rt<F, Fut>(body: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    Runtime::new("conformance")
        .run(move |_shard: Shard<()>| body())
        .expect("runtime starts");
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A fresh directory for disk tests (a real ext4/xfs directory in production: O_DIRECT needs one).
fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("rt-conformance-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn tasks_run_join_and_abort() {
    on_rt(|| async {
        let h = task::spawn_local(async { 40 + 2 });
        assert_eq!(h.await, Ok(42));

        // Dropping a handle detaches: the task still runs to completion.
        let (tx, mut rx) = rt::sync::channel::<u32>(1);
        drop(task::spawn_local(async move {
            tx.send(7).await.unwrap();
        }));
        assert_eq!(rx.recv().await, Some(7));

        // Abort cancels: awaiting yields Cancelled and the body never finishes.
        let h = task::spawn_local(async {
            time::sleep(Duration::from_secs(3600)).await;
            1
        });
        task::yield_now().await;
        h.abort();
        assert_eq!(h.await, Err(task::Cancelled));
    });
}

#[test]
fn yield_now_lets_other_tasks_run() {
    // A task that only yields must let another runnable task run: within one yield on
    // glommio's FIFO queues, within a few under madsim, which picks runnable tasks at random
    // (so the bound is loose there; a yield that returned at once would exhaust it).
    on_rt(|| async {
        let b_ran = std::rc::Rc::new(std::cell::Cell::new(false));
        let seen = b_ran.clone();
        let a = task::spawn_local(async move {
            for yields in 0..1000u32 {
                if seen.get() {
                    return Some(yields);
                }
                task::yield_now().await;
            }
            None
        });
        let b = task::spawn_local(async move { b_ran.set(true) });
        let yields = a.await.unwrap();
        b.await.unwrap();
        assert!(
            yields.is_some(),
            "the yielding task never let the other run"
        );
        #[cfg(not(madsim))]
        assert_eq!(yields, Some(1), "FIFO: one yield lets the other task run");
    });
}

#[test]
fn timers_sleep_and_timeout() {
    on_rt(|| async {
        let start = time::now();
        time::sleep(Duration::from_millis(30)).await;
        assert!(time::now() - start >= Duration::from_millis(30));

        let slow = time::timeout(
            Duration::from_millis(10),
            time::sleep(Duration::from_secs(60)),
        )
        .await;
        assert_eq!(slow, Err(time::Elapsed { timeout_ms: 10 }));

        let fast = time::timeout(Duration::from_secs(60), async { 5 }).await;
        assert_eq!(fast, Ok(5));

        assert!(
            time::unix_time_ms() > 1_600_000_000_000,
            "wall clock is after 2020"
        );
    });
}

#[test]
fn bounded_channel_applies_backpressure() {
    on_rt(|| async {
        let (tx, mut rx) = rt::sync::channel::<u32>(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert!(tx.try_send(3).is_err(), "a full channel refuses");
        // A blocked sender resumes once the receiver makes room.
        let h = task::spawn_local(async move { tx.send(3).await.is_ok() });
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(h.await, Ok(true));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, Some(3));
        assert_eq!(rx.recv().await, None, "all senders gone");
    });
}

#[test]
fn tcp_echo_with_deadlines() {
    on_rt(|| async {
        let listener = TcpListener::bind(loopback()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = task::spawn_local(async move {
            // First connection: echo until EOF.
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).await.unwrap();
            }
            // Second connection: never answer, so the client's read deadline fires.
            let (s2, _) = listener.accept().await.unwrap();
            time::sleep(Duration::from_millis(300)).await;
            drop(s2);
        });

        let mut c = TcpStream::connect(addr, Duration::from_secs(5))
            .await
            .unwrap();
        c.set_nodelay(true).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5)));
        let msg = b"hello, porpoise";
        c.write_all(msg).await.unwrap();
        let mut back = [0u8; 15];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, msg);
        assert_eq!(c.peer_addr().unwrap(), addr);
        c.shutdown_write().await.unwrap();
        drop(c);

        let mut quiet = TcpStream::connect(addr, Duration::from_secs(5))
            .await
            .unwrap();
        quiet.set_read_timeout(Some(Duration::from_millis(50)));
        let mut one = [0u8; 1];
        let err = quiet.read(&mut one).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        server.await.unwrap();
    });
}

#[test]
fn tcp_split_halves_read_and_write_at_once() {
    use rt::net::{Read, Write};
    const END: u64 = u64::MAX;
    on_rt(|| async {
        let listener = TcpListener::bind(loopback()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The server answers each 8-byte request with its number + 1000, but only after it has
        // read the *next* request, so the client must keep writing while its reader waits.
        let server = task::spawn_local(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (mut rd, mut wr) = s.into_split();
            let mut held: Option<u64> = None;
            loop {
                let mut b = [0u8; 8];
                rd.read_exact(&mut b).await.unwrap();
                let n = u64::from_le_bytes(b);
                if let Some(prev) = held.take() {
                    wr.write_all(&(prev + 1000).to_le_bytes()).await.unwrap();
                }
                if n == END {
                    break;
                }
                held = Some(n);
            }
        });
        let c = TcpStream::connect(addr, Duration::from_secs(5))
            .await
            .unwrap();
        let (mut rd, mut wr) = c.into_split();
        let reader = task::spawn_local(async move {
            let mut got = Vec::new();
            let mut b = [0u8; 8];
            while got.len() < 20 {
                rd.read_exact(&mut b).await.unwrap();
                got.push(u64::from_le_bytes(b));
            }
            got
        });
        for i in (0..20u64).chain([END]) {
            wr.write_all(&i.to_le_bytes()).await.unwrap();
            task::yield_now().await;
        }
        server.await.unwrap();
        assert_eq!(reader.await.unwrap(), (1000..1020).collect::<Vec<u64>>());
    });
}

#[test]
fn tcp_connect_to_closed_port_fails() {
    on_rt(|| async {
        // Bind then drop, so the port is known to be free.
        let addr = {
            let l = TcpListener::bind(loopback()).await.unwrap();
            l.local_addr().unwrap()
        };
        time::sleep(Duration::from_millis(1)).await;
        assert!(TcpStream::connect(addr, Duration::from_secs(2))
            .await
            .is_err());
    });
}

#[test]
fn udp_send_receive_with_deadline() {
    on_rt(|| async {
        let a = UdpSocket::bind(loopback()).await.unwrap();
        let mut b = UdpSocket::bind(loopback()).await.unwrap();
        let b_addr = b.local_addr().unwrap();
        a.send_to(b"heartbeat", b_addr).await.unwrap();
        let mut buf = [0u8; 64];
        b.set_read_timeout(Some(Duration::from_secs(5)));
        let (n, from) = b.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"heartbeat");
        assert_eq!(from.port(), a.local_addr().unwrap().port());

        b.set_read_timeout(Some(Duration::from_millis(20)));
        let err = b.recv_from(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);

        let huge = vec![0u8; rt::net::UDP_DATAGRAM_BYTES_MAX + 1];
        assert_eq!(
            a.send_to(&huge, b_addr).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    });
}

#[test]
fn disk_write_sync_read_rename_list_remove() {
    let dir = scratch_dir("basic");
    on_rt(move || {
        let dir = dir.clone();
        async move {
            disk::create_dir_all(&dir).await.unwrap();
            let path = dir.join("a.dat");
            let f = File::open(&path, OpenMode::CreateNew).await.unwrap();
            let mut block = vec![0u8; 2 * ALIGN];
            for (i, b) in block.iter_mut().enumerate() {
                *b = (i % 251) as u8;
            }
            f.write_at(0, &block).await.unwrap();
            f.sync().await.unwrap();
            assert_eq!(f.size().await.unwrap(), 2 * ALIGN as u64);
            // Unaligned reads are fine; a read past the end is short.
            assert_eq!(f.read_at(10, 100).await.unwrap(), block[10..110].to_vec());
            assert_eq!(
                f.read_at(2 * ALIGN as u64 - 5, 100).await.unwrap(),
                block[2 * ALIGN - 5..].to_vec()
            );
            // Unaligned writes are refused on every backend.
            assert_eq!(
                f.write_at(1, &block[..ALIGN]).await.unwrap_err().kind(),
                ErrorKind::InvalidInput
            );
            assert_eq!(
                f.write_at(0, &block[..100]).await.unwrap_err().kind(),
                ErrorKind::InvalidInput
            );
            f.preallocate(8 * ALIGN as u64).await.unwrap();
            f.truncate(ALIGN as u64).await.unwrap();
            assert_eq!(f.size().await.unwrap(), ALIGN as u64);
            f.sync().await.unwrap();
            f.close().await.unwrap();

            assert_eq!(
                File::open(&path, OpenMode::CreateNew)
                    .await
                    .err()
                    .map(|e| e.kind()),
                Some(ErrorKind::AlreadyExists)
            );
            assert_eq!(
                File::open(dir.join("missing"), OpenMode::Existing)
                    .await
                    .err()
                    .map(|e| e.kind()),
                Some(ErrorKind::NotFound)
            );

            let renamed = dir.join("b.dat");
            disk::rename(&path, &renamed).await.unwrap();
            disk::sync_dir(&dir).await.unwrap();
            assert!(!disk::exists(&path).await.unwrap());
            assert!(disk::exists(&renamed).await.unwrap());
            disk::create_dir_all(dir.join("sub")).await.unwrap();
            assert_eq!(
                disk::list_dir(&dir).await.unwrap(),
                vec!["b.dat".to_string(), "sub".to_string()]
            );

            let f = File::open(&renamed, OpenMode::Existing).await.unwrap();
            assert_eq!(f.read_at(0, ALIGN).await.unwrap(), block[..ALIGN].to_vec());
            f.close().await.unwrap();
            disk::remove(&renamed).await.unwrap();
            assert!(!disk::exists(&renamed).await.unwrap());
            assert_eq!(disk::list_dir(&dir).await.unwrap(), vec!["sub".to_string()]);
            disk::remove_dir(dir.join("sub")).await.unwrap();
            assert!(disk::list_dir(&dir).await.unwrap().is_empty());
        }
    });
}

#[test]
fn disk_refuses_oversized_reads() {
    let dir = scratch_dir("oversized");
    on_rt(move || {
        let dir = dir.clone();
        async move {
            disk::create_dir_all(&dir).await.unwrap();
            let f = File::open(dir.join("x"), OpenMode::CreateOrOpen)
                .await
                .unwrap();
            let err = f.read_at(0, disk::READ_BYTES_MAX + 1).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            f.close().await.unwrap();
        }
    });
}

#[test]
fn shards_exchange_messages() {
    let outputs = Runtime::new("mesh")
        .shards(2)
        .channel_capacity(16)
        .run(|mut shard: Shard<(usize, u64)>| async move {
            let me = shard.id();
            let peer = 1 - me;
            assert_eq!(shard.count(), 2);
            for i in 0..10u64 {
                shard.send(peer, (me, i)).await.unwrap();
            }
            shard.send(me, (me, 99)).await.unwrap();
            let mut from_peer = Vec::new();
            let mut from_self = 0;
            while from_peer.len() < 10 || from_self < 1 {
                let (from, (origin, i)) = shard.recv().await.expect("mesh open");
                assert_eq!(from, origin, "the sender id travels with the message");
                if from == me {
                    from_self += 1;
                } else {
                    from_peer.push(i);
                }
            }
            assert_eq!(from_peer, (0..10).collect::<Vec<_>>(), "per-sender FIFO");
            assert!(shard.send(5, (me, 0)).await.is_err(), "no shard 5");
            me
        })
        .unwrap();
    assert_eq!(outputs, vec![0, 1]);
}

#[test]
fn runtime_rejects_bad_config() {
    let err = Runtime::new("bad")
        .shards(0)
        .run(|_s: Shard<()>| async {})
        .unwrap_err();
    assert_eq!(err.code(), "RT-004");
}

#[test]
fn rng_is_seedable() {
    on_rt(|| async {
        let mut a = rt::rand::Rng::with_seed(9);
        let mut b = rt::rand::Rng::with_seed(9);
        assert_eq!(a.next_u64(), b.next_u64());
        let mut r = rt::rand::Rng::new();
        let v: Vec<u64> = (0..4).map(|_| r.below(10)).collect();
        assert!(v.iter().all(|x| *x < 10));
    });
}
