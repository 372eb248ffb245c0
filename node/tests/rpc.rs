//! The node RPC layer on both runtimes (`cargo test -p node --test rpc`, and under madsim via
//! scripts/test-sim.sh): reuse, reconnection, timeouts, bounded in-flight calls, remote errors,
//! and garbage closing only its own connection.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use node::error::{ErrorCode, RemoteError};
use node::rpc::{
    encode_frame, read_frame, serve_connection, Frame, FrameReader, Kind, RpcClient,
    RpcClientConfig, RpcError, FRAME_HEADER_BYTES, FRAME_PAYLOAD_BYTES_MAX, FRAME_VERSION,
    SERVER_INFLIGHT_MAX,
};
use rt::net::{TcpListener, TcpStream};
use rt::shard::Shard;

const ECHO: u16 = 1;
const SLOW: u16 = 2;
const FAIL: u16 = 3;
/// Echoes after `payload[0]` milliseconds.
const DELAY: u16 = 4;
/// Sleeps 1 s and echoes; counts how many run at once. (The simulated network delivers a
/// connection's requests about 0.5 ms apart, so 1 s lets all of the test's arrive while the
/// first ones still run.)
const COUNTED: u16 = 5;
/// Answers more bytes than a frame may carry.
const HUGE: u16 = 6;

thread_local! {
    static RUNNING: Cell<usize> = const { Cell::new(0) };
    static RUNNING_MAX: Cell<usize> = const { Cell::new(0) };
}

/// A listener on a free loopback port, and its address.
async fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Starts a server on loopback; returns its address and a counter of connections that ended
/// with a protocol error.
async fn start_server() -> (SocketAddr, Rc<Cell<u32>>, Rc<Cell<u32>>) {
    let (listener, addr) = listen().await;
    let accepted = Rc::new(Cell::new(0));
    let rejected = Rc::new(Cell::new(0));
    let (a, r) = (accepted.clone(), rejected.clone());
    drop(rt::task::spawn_local(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            a.set(a.get() + 1);
            let r = r.clone();
            drop(rt::task::spawn_local(async move {
                let handler = |method: u16, payload: Vec<u8>| async move {
                    match method {
                        ECHO => Ok(payload),
                        SLOW => {
                            rt::time::sleep(Duration::from_millis(300)).await;
                            Ok(payload)
                        }
                        FAIL => Err(RemoteError::not_leader(Some(
                            "127.0.0.81:8800:controller2".into(),
                        ))),
                        DELAY => {
                            let ms = payload.first().copied().unwrap_or(0) as u64;
                            rt::time::sleep(Duration::from_millis(ms)).await;
                            Ok(payload)
                        }
                        COUNTED => {
                            let now = RUNNING.with(|r| {
                                r.set(r.get() + 1);
                                r.get()
                            });
                            RUNNING_MAX.with(|m| m.set(m.get().max(now)));
                            rt::time::sleep(Duration::from_secs(1)).await;
                            RUNNING.with(|r| r.set(r.get() - 1));
                            Ok(payload)
                        }
                        HUGE => Ok(vec![1u8; FRAME_PAYLOAD_BYTES_MAX + 1]),
                        m => Err(RemoteError::new(
                            ErrorCode::UnknownMethod,
                            format!("unknown method {m}"),
                        )),
                    }
                };
                if serve_connection(stream, &handler).await.is_err() {
                    r.set(r.get() + 1);
                }
            }));
        }
    }));
    (addr, accepted, rejected)
}

fn on_rt<F, Fut>(body: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    rt::Runtime::new("rpc")
        .run(move |_s: Shard<()>| body())
        .unwrap();
}

fn cfg() -> RpcClientConfig {
    RpcClientConfig {
        connect_timeout: Duration::from_secs(1),
        call_timeout: Duration::from_millis(150),
        inflight_max: 2,
    }
}

#[test]
fn calls_reuse_one_connection_and_carry_remote_errors() {
    on_rt(|| async {
        let (addr, accepted, _) = start_server().await;
        let client = RpcClient::new(addr, cfg());
        for i in 0..50u32 {
            let msg = i.to_le_bytes().to_vec();
            assert_eq!(client.call(ECHO, msg.clone()).await.unwrap(), msg);
        }
        let big = vec![7u8; 1 << 20];
        assert_eq!(client.call(ECHO, big.clone()).await.unwrap(), big);
        let err = client.call(FAIL, Vec::new()).await.unwrap_err();
        // The error arrives typed: its code, and the leader to go to.
        let RpcError::Remote(remote) = &err else {
            panic!("a remote error, not {err}");
        };
        assert_eq!(remote.code, ErrorCode::NotLeader);
        assert_eq!(remote.retry(), node::error::Retry::Redirect);
        assert_eq!(
            remote.leader.as_deref(),
            Some("127.0.0.81:8800:controller2")
        );
        assert_eq!(err.to_string(), "<NotLeader>127.0.0.81:8800:controller2");
        assert_eq!(
            client.call(ECHO, b"after".to_vec()).await.unwrap(),
            b"after"
        );
        assert_eq!(
            (client.connects(), accepted.get()),
            (1, 1),
            "one connection, reused"
        );
    });
}

#[test]
fn an_answer_or_request_over_the_frame_limit_is_an_error_not_a_hang() {
    on_rt(|| async {
        let (addr, accepted, rejected) = start_server().await;
        let client = RpcClient::new(addr, cfg());
        // The server cannot send it: the caller hears why, at once, on the same connection.
        let err = client.call(HUGE, Vec::new()).await.unwrap_err();
        let RpcError::Remote(remote) = &err else {
            panic!("a remote error, not {err}");
        };
        assert_eq!(remote.code, ErrorCode::AnswerTooLarge, "{err}");
        assert!(err.to_string().starts_with("RPC-008"), "{err}");
        // Nor can the client: refused before a byte is sent.
        let err = client
            .call(ECHO, vec![0u8; FRAME_PAYLOAD_BYTES_MAX + 1])
            .await
            .unwrap_err();
        assert!(matches!(err, RpcError::Protocol(_)), "{err}");
        assert_eq!(client.call(ECHO, b"on".to_vec()).await.unwrap(), b"on");
        assert_eq!(
            (client.connects(), accepted.get(), rejected.get()),
            (1, 1, 0)
        );
    });
}

#[test]
fn a_timeout_drops_the_connection_and_the_next_call_reconnects() {
    on_rt(|| async {
        let (addr, accepted, _) = start_server().await;
        let client = RpcClient::new(addr, cfg());
        let err = client.call(SLOW, b"late".to_vec()).await.unwrap_err();
        assert_eq!(err.code(), "RPC-002");
        // The late answer must not be mistaken for this call's.
        assert_eq!(
            client.call(ECHO, b"fresh".to_vec()).await.unwrap(),
            b"fresh"
        );
        assert_eq!(client.connects(), 2);
        assert_eq!(accepted.get(), 2);
    });
}

#[test]
fn in_flight_calls_are_bounded() {
    on_rt(|| async {
        let (addr, _, _) = start_server().await;
        let client = Rc::new(RpcClient::new(
            addr,
            RpcClientConfig {
                call_timeout: Duration::from_secs(5),
                inflight_max: 2,
                ..cfg()
            },
        ));
        let handles: Vec<_> = (0..5)
            .map(|i| {
                let c = client.clone();
                rt::task::spawn_local(async move { c.call(SLOW, vec![i]).await })
            })
            .collect();
        let mut ok = 0;
        let mut overloaded = 0;
        for h in handles {
            match h.await.unwrap() {
                Ok(_) => ok += 1,
                Err(RpcError::Overloaded {
                    inflight_max: 2, ..
                }) => overloaded += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!((ok, overloaded), (2, 3));
    });
}

#[test]
fn garbage_closes_only_its_own_connection() {
    on_rt(|| async {
        let (addr, _, rejected) = start_server().await;
        let client = RpcClient::new(addr, cfg());
        assert_eq!(
            client.call(ECHO, b"before".to_vec()).await.unwrap(),
            b"before"
        );

        // Not a frame at all.
        let mut junk = TcpStream::connect(addr, Duration::from_secs(1))
            .await
            .unwrap();
        junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        junk.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 16];
        assert!(
            matches!(junk.read(&mut buf).await, Ok(0) | Err(_)),
            "the server closes it"
        );

        // A valid-looking header that claims a 4 GiB payload: refused before allocating.
        let mut huge = TcpStream::connect(addr, Duration::from_secs(1))
            .await
            .unwrap();
        let mut head = vec![0u8; FRAME_HEADER_BYTES];
        head[..4].copy_from_slice(b"PRPC");
        head[4] = FRAME_VERSION;
        head[5] = 1;
        head[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        huge.write_all(&head).await.unwrap();
        huge.set_read_timeout(Some(Duration::from_secs(2)));
        assert!(matches!(huge.read(&mut buf).await, Ok(0) | Err(_)));

        // A frame whose payload does not match its checksum.
        let mut bad = TcpStream::connect(addr, Duration::from_secs(1))
            .await
            .unwrap();
        let mut frame = head.clone();
        frame[16..20].copy_from_slice(&3u32.to_le_bytes());
        frame[20..24].copy_from_slice(&0xdead_beefu32.to_le_bytes());
        frame.extend_from_slice(b"abc");
        bad.write_all(&frame).await.unwrap();
        bad.set_read_timeout(Some(Duration::from_secs(2)));
        assert!(matches!(bad.read(&mut buf).await, Ok(0) | Err(_)));

        rt::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            rejected.get(),
            3,
            "each bad connection was closed with a protocol error"
        );
        assert_eq!(
            client.call(ECHO, b"after".to_vec()).await.unwrap(),
            b"after"
        );
        assert_eq!(
            client.connects(),
            1,
            "the good connection was never disturbed"
        );
    });
}

#[test]
fn an_unreachable_peer_is_reported() {
    on_rt(|| async {
        let addr = listen().await.1; // bound, then closed: nothing listens there
        let client = RpcClient::new(addr, cfg());
        let err = client.call(ECHO, Vec::new()).await.unwrap_err();
        assert_eq!(err.code(), "RPC-001");
        // Once a server appears there, the client connects.
        let listener = TcpListener::bind(addr).await.unwrap();
        drop(rt::task::spawn_local(async move {
            let (s, _) = listener.accept().await.unwrap();
            let h = |_m: u16, p: Vec<u8>| async move { Ok(p) };
            let _ = serve_connection(s, &h).await;
        }));
        assert_eq!(client.call(ECHO, b"x".to_vec()).await.unwrap(), b"x");
    });
}

#[test]
fn concurrent_calls_share_one_connection_and_get_their_own_answers() {
    on_rt(|| async {
        let (addr, accepted, _) = start_server().await;
        let client = Rc::new(RpcClient::new(
            addr,
            RpcClientConfig {
                call_timeout: Duration::from_secs(5),
                inflight_max: 64,
                ..cfg()
            },
        ));
        // Later calls answer first: answers come back in the reverse order of the requests.
        let handles: Vec<_> = (0..40u8)
            .map(|i| {
                let c = client.clone();
                rt::task::spawn_local(async move {
                    let payload = vec![2 * (40 - i), i];
                    (payload.clone(), c.call(DELAY, payload).await)
                })
            })
            .collect();
        for h in handles {
            let (sent, got) = h.await.unwrap();
            assert_eq!(
                got.unwrap(),
                sent,
                "each call gets the answer to its own request"
            );
        }
        assert_eq!((client.connects(), accepted.get()), (1, 1));
    });
}

#[test]
fn a_timeout_on_a_connection_that_keeps_answering_leaves_it_open() {
    on_rt(|| async {
        let (addr, accepted, _) = start_server().await;
        let client = Rc::new(RpcClient::new(addr, cfg()));
        let slow = {
            let c = client.clone();
            rt::task::spawn_local(async move { c.call(SLOW, b"late".to_vec()).await })
        };
        for i in 0..20u8 {
            assert_eq!(client.call(ECHO, vec![i]).await.unwrap(), vec![i]);
            rt::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(slow.await.unwrap().unwrap_err().code(), "RPC-002");
        // The late answer (at 300 ms) arrived meanwhile and was discarded.
        assert_eq!(
            client.call(ECHO, b"after".to_vec()).await.unwrap(),
            b"after"
        );
        assert_eq!((client.connects(), accepted.get()), (1, 1));
    });
}

#[test]
fn a_server_handles_a_connection_s_requests_concurrently_up_to_its_bound() {
    on_rt(|| async {
        let (addr, _, _) = start_server().await;
        let client = Rc::new(RpcClient::new(
            addr,
            RpcClientConfig {
                call_timeout: Duration::from_secs(20),
                inflight_max: 2 * SERVER_INFLIGHT_MAX,
                ..cfg()
            },
        ));
        let calls = SERVER_INFLIGHT_MAX + 100;
        let handles: Vec<_> = (0..calls)
            .map(|i| {
                let c = client.clone();
                rt::task::spawn_local(async move {
                    c.call(COUNTED, (i as u32).to_le_bytes().to_vec()).await
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.await.unwrap().unwrap(), (i as u32).to_le_bytes());
        }
        assert_eq!(
            RUNNING_MAX.with(|m| m.get()),
            SERVER_INFLIGHT_MAX,
            "one connection's requests run at once, never more than the bound"
        );
        assert_eq!(client.connects(), 1);
    });
}

#[test]
fn an_answer_to_a_request_never_sent_ends_the_connection() {
    on_rt(|| async {
        let (listener, addr) = listen().await;
        // Answers its first connection's request with a made-up id, echoes on the next ones.
        drop(rt::task::spawn_local(async move {
            let mut first = true;
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let lie = std::mem::take(&mut first);
                drop(rt::task::spawn_local(async move {
                    while let Ok(Some(req)) = read_frame(&mut s).await {
                        let answer = Frame {
                            kind: Kind::Response,
                            request_id: if lie {
                                req.request_id + 1000
                            } else {
                                req.request_id
                            },
                            ..req
                        };
                        if s.write_all(&encode_frame(&answer)).await.is_err() {
                            return;
                        }
                    }
                }));
            }
        }));
        let client = RpcClient::new(addr, cfg());
        let err = client.call(ECHO, b"x".to_vec()).await.unwrap_err();
        assert_eq!(err.code(), "RPC-004", "{err}");
        assert_eq!(client.call(ECHO, b"y".to_vec()).await.unwrap(), b"y");
        assert_eq!(client.connects(), 2);
    });
}

#[test]
fn dropping_a_client_closes_its_connection() {
    on_rt(|| async {
        let (listener, addr) = listen().await;
        let served = Rc::new(Cell::new(false));
        let done = served.clone();
        drop(rt::task::spawn_local(async move {
            let (s, _) = listener.accept().await.unwrap();
            let h = |_m: u16, p: Vec<u8>| async move { Ok(p) };
            serve_connection(s, &h).await.unwrap();
            done.set(true);
        }));
        let client = RpcClient::new(addr, cfg());
        assert_eq!(client.call(ECHO, b"x".to_vec()).await.unwrap(), b"x");
        drop(client);
        for _ in 0..100 {
            if served.get() {
                return;
            }
            rt::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the server still sees the connection of a dropped client");
    });
}

#[test]
fn calls_queued_behind_a_failed_connect_share_its_error() {
    on_rt(|| async {
        let addr = listen().await.1; // bound, then closed: nothing listens there
        let client = Rc::new(RpcClient::new(
            addr,
            RpcClientConfig {
                inflight_max: 16,
                ..cfg()
            },
        ));
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let c = client.clone();
                rt::task::spawn_local(async move { c.call(ECHO, Vec::new()).await })
            })
            .collect();
        for h in handles {
            assert_eq!(h.await.unwrap().unwrap_err().code(), "RPC-001");
        }
        assert_eq!(
            client.connect_attempts(),
            1,
            "one attempt answered all ten calls"
        );
        // A later call tries again.
        assert_eq!(
            client.call(ECHO, Vec::new()).await.unwrap_err().code(),
            "RPC-001"
        );
        assert_eq!(client.connect_attempts(), 2);
    });
}

/// A `FrameReader` keeps what it read past a frame for the next one (frames arrive glued
/// together and split anywhere, and bytes sniffed before it took over count too), ends
/// cleanly when the peer closes between frames, and calls a close inside a frame an error.
#[test]
fn a_frame_reader_keeps_bytes_read_past_a_frame() {
    on_rt(|| async {
        let (listener, addr) = listen().await;
        let frame = |id: u64, len: usize| Frame {
            kind: Kind::Request,
            method: ECHO,
            request_id: id,
            payload: vec![id as u8; len],
        };
        let mut bytes = Vec::new();
        for (id, len) in [(1, 10), (2, 100_000), (3, 0), (4, 7)] {
            bytes.extend(encode_frame(&frame(id, len)));
        }
        let half = encode_frame(&frame(5, 50));
        let sent = bytes.clone();
        drop(rt::task::spawn_local(async move {
            // First connection: four whole frames in odd-sized pieces, then half of a fifth.
            let mut s = TcpStream::connect(addr, Duration::from_secs(1))
                .await
                .unwrap();
            for piece in sent.chunks(7_001) {
                s.write_all(piece).await.unwrap();
            }
            s.write_all(&half[..30]).await.unwrap();
            drop(s);
            // Second connection: one frame, then a clean close.
            let mut s = TcpStream::connect(addr, Duration::from_secs(1))
                .await
                .unwrap();
            s.write_all(&encode_frame(&frame(6, 3))).await.unwrap();
        }));

        let (mut s, _) = listener.accept().await.unwrap();
        // The first 5 bytes were read before the reader took over (as when a connection's
        // protocol is sniffed).
        let mut prefix = vec![0u8; 5];
        s.read_exact(&mut prefix).await.unwrap();
        let mut input = FrameReader::new(prefix);
        for (id, len) in [(1, 10), (2, 100_000), (3, 0), (4, 7)] {
            let f = input.read_frame(&mut s).await.unwrap().expect("a frame");
            assert_eq!((f.request_id, f.payload.len()), (id, len));
            assert!(f.payload.iter().all(|&b| b == id as u8));
        }
        let err = input.read_frame(&mut s).await.unwrap_err();
        assert_eq!(err.code(), "RPC-004", "{err}");

        let (mut s, _) = listener.accept().await.unwrap();
        let mut input = FrameReader::new(Vec::new());
        assert_eq!(
            input.read_frame(&mut s).await.unwrap().unwrap().request_id,
            6
        );
        assert!(input.read_frame(&mut s).await.unwrap().is_none());
    });
}
