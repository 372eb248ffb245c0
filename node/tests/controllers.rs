//! Controllers as real processes: three `porpoise -mode controller` started from `configs/`
//! (127.0.0.80-82, exactly as the tutorial's startController.sh does) elect a leader; a
//! follower answers `<NotLeader>host:port:alias` over HTTP and the DolphinDB API; killing the
//! leader yields a new leader with every acknowledged change; the old leader catches up when it
//! returns. And data / compute nodes heartbeat over TCP and UDP and are marked down when they
//! stop.
#![cfg(not(madsim))]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::*;

#[test]
fn three_controllers_from_configs_elect_fail_over_and_keep_metadata() {
    let (root, all) = tutorial_hosts("tutorial");
    let hosts = HOSTS;
    let mut procs: Vec<Option<Proc>> = hosts
        .iter()
        .map(|h| Some(start_controller(&root.join(h))))
        .collect();

    let (leader_site, leader, term) = agreed_leader(&all);
    assert!(leader_site.ends_with(&format!(
        ":8800:controller{}",
        all.iter().position(|a| *a == leader).unwrap() + 1
    )));

    // Writes go to the leader; a follower refuses and names it.
    let (status, body) = http(
        leader,
        "POST",
        "/config/nodes",
        "maxMemSize=16\nworkerNum=8",
    )
    .unwrap();
    assert_eq!((status, body.as_str()), (200, "{\"changed\":2}"));
    let follower = *all.iter().find(|a| **a != leader).unwrap();
    let (status, body) = http(follower, "POST", "/config/nodes", "maxMemSize=1").unwrap();
    assert_eq!(status, 421);
    assert_eq!(body, format!("<NotLeader>{leader_site}"));

    // The DolphinDB API: a follower answers every request with <NotLeader>, the leader runs it.
    let mut c = client::Client::connect(client::Config::new(&follower.to_string()))
        .expect("connect to a follower (connect itself is allowed)");
    let err = c.run("1+1").unwrap_err().to_string();
    assert!(err.contains(&format!("<NotLeader>{leader_site}")), "{err}");
    // With high availability the client follows the redirect to the leader.
    let cfg = client::Config::new(&follower.to_string())
        .high_availability(&[&follower.to_string()])
        .unwrap();
    let mut ha = client::Client::connect(cfg).unwrap();
    let two = ha.run("1+1").unwrap();
    assert_eq!(
        lang::eval::column_i64(two.column().expect("a value")).unwrap(),
        vec![2]
    );
    assert_eq!(ha.site().to_string(), leader.to_string());

    // Garbage inside an append stream closes that connection only: the follower stays in the
    // group and the leader keeps replicating to it.
    let mut junk = TcpStream::connect(follower).unwrap();
    junk.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let frame = node::rpc::encode_frame(&node::rpc::Frame {
        kind: node::rpc::Kind::Request,
        method: node::controller::raft::net::method::APPEND_STREAM,
        request_id: 1,
        payload: vec![0xff; 40],
    });
    junk.write_all(&frame).unwrap();
    let mut one = [0u8; 1];
    assert!(
        matches!(junk.read(&mut one), Ok(0) | Err(_)),
        "the follower closes a stream it cannot decode"
    );
    let (status, _) = http(leader, "POST", "/config/nodes", "maxMemSize=17").unwrap();
    assert_eq!(status, 200);
    assert_eq!(agreed_leader(&all).1, leader, "nobody noticed the garbage");
    let start = Instant::now();
    loop {
        let cfg = http(follower, "GET", "/config/nodes", "").map(|(_, b)| b);
        if cfg.as_deref().is_some_and(|c| c.contains("maxMemSize=17")) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the follower stopped replicating: {cfg:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Kill the leader: the other two elect a new one, which has the acknowledged change.
    let li = all.iter().position(|a| *a == leader).unwrap();
    drop(procs[li].take());
    let rest: Vec<SocketAddr> = all.iter().copied().filter(|a| *a != leader).collect();
    let (new_site, new_leader, new_term) = agreed_leader(&rest);
    assert_ne!(new_leader, leader);
    assert_ne!(new_site, leader_site);
    assert!(
        new_term > term,
        "a new leader has a newer term ({new_term} vs {term})"
    );
    let (_, cfg) = http(new_leader, "GET", "/config/nodes", "").unwrap();
    assert_eq!(cfg, "maxMemSize=17\nworkerNum=8\n");
    let (status, _) = http(new_leader, "POST", "/config/nodes", "workerNum=").unwrap();
    assert_eq!(
        status, 200,
        "the new leader takes writes with two of three up"
    );

    // The old leader comes back as a follower and catches up from the log.
    procs[li] = Some(start_controller(&root.join(hosts[li])));
    let (site, _, _) = agreed_leader(&all);
    assert_eq!(
        site, new_site,
        "the returning controller follows the new leader"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let cfg = http(leader, "GET", "/config/nodes", "").map(|(_, b)| b);
        if cfg.as_deref() == Some("maxMemSize=17\n") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old leader did not catch up: {cfg:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Its Raft state is where the tutorial's backup step copies it from.
    let raft = root
        .join(hosts[li])
        .join(format!("data/controller{}/raft", li + 1));
    assert!(
        raft.join("log").is_file() && raft.join("state").is_file(),
        "{raft:?}"
    );

    // Leave the tutorial's addresses free for the next test binary: a killed glommio process
    // keeps its listening socket until the kernel has torn its io_uring down (D43).
    drop(procs);
    wait_ports_free(&all);
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn node_state(controller: SocketAddr, alias: &str) -> Option<String> {
    let (_, nodes) = http(controller, "GET", "/nodes", "")?;
    nodes
        .lines()
        .find(|l| l.starts_with(&format!("{alias},")))
        .map(|l| l.rsplit(',').next().unwrap().to_string())
}

fn wait_state(controller: SocketAddr, alias: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = node_state(controller, alias);
        if got.as_deref() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{alias} never became live={want} (is {got:?})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn nodes_heartbeat_over_tcp_and_udp_and_are_marked_down() {
    let root = scratch("heartbeats");
    let _ = std::fs::remove_dir_all(&root);
    let ip = "127.0.0.83";
    write(
        &root.join("config/cluster.nodes"),
        &format!(
            "localSite,mode\n{ip}:8910:ctl,controller\n{ip}:8911:dn_tcp,datanode\n{ip}:8912:cn_udp,computenode\n"
        ),
    );
    write(
        &root.join("config/controller.cfg"),
        &format!(
            "mode=controller\nlocalSite={ip}:8910:ctl\ndfsHAMode=Raft\ndataSync=1\nnodeHeartbeatTimeout=1500\nlanCluster=1\n"
        ),
    );
    let ctl = Proc(
        Command::new(bin())
            .current_dir(&root)
            .args([
                "-mode",
                "controller",
                "-home",
                "data",
                "-config",
                "config/controller.cfg",
            ])
            .args(["-logFile", "controller.log"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let controller = addr(ip, 8910);
    agreed_leader(&[controller]);
    let node = |alias: &str, port: u16, mode: &str, lan: &str| {
        Proc(
            Command::new(bin())
                .current_dir(&root)
                .args(["-mode", mode, "-home", "data"])
                .arg("-localSite")
                .arg(format!("{ip}:{port}:{alias}"))
                .arg("-controllerSite")
                .arg(format!("{ip}:8910:ctl"))
                .args(["-lanCluster", lan, "-heartbeatInterval", "200"])
                .arg("-logFile")
                .arg(format!("{alias}.log"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    // Listed in cluster.nodes, so registered (down) before they ever beat.
    wait_state(controller, "dn_tcp", "false");
    let dn = node("dn_tcp", 8911, "datanode", "false");
    let cn = node("cn_udp", 8912, "computenode", "true");
    wait_state(controller, "dn_tcp", "true");
    wait_state(controller, "cn_udp", "true");
    drop(dn);
    wait_state(controller, "dn_tcp", "false");
    assert_eq!(node_state(controller, "cn_udp").as_deref(), Some("true"));
    drop(cn);
    wait_state(controller, "cn_udp", "false");
    drop(ctl);
}
