//! Heartbeats from agents, data nodes and compute nodes to the leader controller.
//!
//! - `lanCluster=0` (TCP): a call over node RPC to the controller this node believes leads.
//!   A follower answers `<NotLeader>host:port:alias` and the node moves to that leader; an
//!   unreachable controller moves it to the next one it knows (`controllerSite`, then the
//!   controllers in `sites`).
//! - `lanCluster=1` (UDP): the heartbeat frame is sent as one datagram to every controller;
//!   followers ignore it, so no leader discovery is needed.
//!
//! Each beat carries the node's identity, so its first one registers it.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::{Mode, Settings};
use crate::controller::service::{method, role_of, Heartbeat};
use crate::log::Logger;
use crate::rpc::{encode_frame, Frame, Kind, RpcClient, RpcClientConfig, RpcError};

/// The controllers a node knows: `controllerSite` first, then those in `sites`.
pub fn controller_addrs(settings: &Settings) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    let sites = settings.controller_site().into_iter().chain(
        settings
            .sites()
            .into_iter()
            .filter(|(_, m)| *m == Mode::Controller)
            .map(|(s, _)| s),
    );
    for s in sites {
        if let Ok(a) = crate::server::resolve_addr(&s.host, s.port) {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

/// The heartbeat this node sends.
pub fn beat_of(settings: &Settings) -> Heartbeat {
    Heartbeat {
        alias: settings.alias().to_string(),
        host: settings.site().host.clone(),
        port: settings.site().port,
        role: role_of(settings.mode()),
    }
}

/// The leader a refusal redirects to (`<NotLeader>host:port:alias`), by its code.
pub fn redirect_target(e: &crate::error::RemoteError) -> Option<SocketAddr> {
    match e.retry() {
        crate::error::Retry::Redirect => {
            crate::controller::raft::net::site_addr(e.leader.as_deref()?)
        }
        _ => None,
    }
}

/// Sends heartbeats forever.
pub async fn run(settings: std::rc::Rc<Settings>, log: Logger) {
    let controllers = controller_addrs(&settings);
    if controllers.is_empty() {
        log.warn(
            "no_controller",
            "no controllerSite or controller in sites; not sending heartbeats",
            &[],
        );
        return;
    }
    let interval = Duration::from_millis(settings.heartbeat_interval_ms());
    let payload = crate::controller::raft::net::encode(&beat_of(&settings));
    if settings.lan_cluster() {
        run_udp(&controllers, interval, payload, &log).await
    } else {
        run_tcp(&controllers, interval, payload, &log).await
    }
}

async fn run_tcp(controllers: &[SocketAddr], interval: Duration, payload: Vec<u8>, log: &Logger) {
    let cfg = RpcClientConfig {
        connect_timeout: interval.max(Duration::from_millis(200)),
        call_timeout: interval.max(Duration::from_millis(500)) * 2,
        inflight_max: 1,
    };
    let mut next = 0usize;
    let mut client = RpcClient::new(controllers[0], cfg);
    let mut was_ok = false;
    loop {
        match client.call(method::HEARTBEAT, payload.clone()).await {
            Ok(_) => {
                if !was_ok {
                    log.info("controller_found", &client.peer().to_string(), &[]);
                }
                was_ok = true;
                rt::time::sleep(interval).await;
            }
            Err(RpcError::Remote(msg)) if redirect_target(&msg).is_some() => {
                let to = redirect_target(&msg).expect("checked");
                if to != client.peer() {
                    client = RpcClient::new(to, cfg);
                } else {
                    rt::time::sleep(interval).await;
                }
            }
            Err(e) => {
                if was_ok {
                    log.warn("heartbeat_failed", &e.to_string(), &[]);
                }
                was_ok = false;
                // Not the leader and no leader known (an election), or unreachable: next one.
                next = (next + 1) % controllers.len();
                client = RpcClient::new(controllers[next], cfg);
                rt::time::sleep(interval / 2).await;
            }
        }
    }
}

async fn run_udp(controllers: &[SocketAddr], interval: Duration, payload: Vec<u8>, log: &Logger) {
    let any: SocketAddr = if controllers[0].is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let sock = match rt::net::UdpSocket::bind(any).await {
        Ok(s) => s,
        Err(e) => {
            log.error("heartbeat_socket", &e.to_string(), &[]);
            return;
        }
    };
    let frame = encode_frame(&Frame {
        kind: Kind::Request,
        method: method::HEARTBEAT,
        request_id: 0,
        payload,
    });
    loop {
        for c in controllers {
            let _ = sock.send_to(&frame, *c).await;
        }
        rt::time::sleep(interval).await;
    }
}
