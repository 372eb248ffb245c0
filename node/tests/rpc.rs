//! The node RPC layer on both runtimes (`cargo test -p node --test rpc`, and under madsim via
//! scripts/test-sim.sh): reuse, reconnection, timeouts, bounded in-flight calls, remote errors,
//! and garbage closing only its own connection.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use node::rpc::{serve_connection, RpcClient, RpcClientConfig, RpcError, FRAME_HEADER_BYTES};
use rt::net::{TcpListener, TcpStream};
use rt::shard::Shard;

const ECHO: u16 = 1;
const SLOW: u16 = 2;
const FAIL: u16 = 3;

/// Starts a server on loopback; returns its address and a counter of connections that ended
/// with a protocol error.
async fn start_server() -> (SocketAddr, Rc<Cell<u32>>, Rc<Cell<u32>>) {
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
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
                        FAIL => Err("<NotLeader>127.0.0.81:8800:controller2".to_string()),
                        m => Err(format!("unknown method {m}")),
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
        assert_eq!(
            err,
            RpcError::Remote("<NotLeader>127.0.0.81:8800:controller2".into())
        );
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
        head[4] = 1;
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
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            l.local_addr().unwrap()
        };
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
