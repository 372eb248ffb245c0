//! Helpers for tests that run controllers as real processes on the tutorial's hosts
//! (127.0.0.80-82), each from its own copy of `configs/cluster/<host>`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_porpoise")
}

pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn scratch(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("controllers-{name}"))
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// `METHOD path` with `body`; returns (status, body).
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    http_within(addr, method, path, body, Duration::from_secs(5))
}

/// [`http`] waiting up to `wait` for the answer.
pub fn http_within(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    wait: Duration,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    s.set_read_timeout(Some(wait)).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

pub fn field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let start = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &json[start..];
    let end = rest.find([',', '}'])?;
    Some(rest[..end].trim_matches('"'))
}

/// One controller host directory (P1, P2 or P3) copied from configs/, started the way its
/// startController.sh starts it.
pub fn start_controller(dir: &Path) -> Proc {
    std::fs::create_dir_all(dir.join("log")).unwrap();
    let child = Command::new(bin())
        .current_dir(dir)
        .args(["-console", "0", "-mode", "controller", "-home", "data"])
        .args([
            "-config",
            "config/controller.cfg",
            "-logFile",
            "log/controller.log",
        ])
        .args([
            "-nodesFile",
            "config/cluster.nodes",
            "-clusterConfig",
            "config/cluster.cfg",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(dir.join("stderr.txt"))
                .map(Stdio::from)
                .unwrap(),
        )
        .spawn()
        .unwrap();
    Proc(child)
}

pub fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

/// Waits until every listed controller answers /raft naming the same leader, which is one of
/// them and says it leads. Returns (leader site, leader address, term).
pub fn agreed_leader(controllers: &[SocketAddr]) -> (String, SocketAddr, u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "no agreed leader among {controllers:?}"
        );
        let views: Vec<Option<String>> = controllers
            .iter()
            .map(|a| http(*a, "GET", "/raft", "").map(|(_, b)| b))
            .collect();
        let sites: Vec<Option<&str>> = views
            .iter()
            .map(|v| v.as_deref().and_then(|v| field(v, "leaderSite")))
            .collect();
        if let Some(Some(site)) = sites.first() {
            if *site != "null" && sites.iter().all(|s| s == &Some(*site)) {
                let leader = controllers
                    .iter()
                    .zip(&views)
                    .find(|(_, v)| v.as_deref().and_then(|v| field(v, "state")) == Some("leader"));
                if let Some((a, v)) = leader {
                    let term = field(v.as_deref().unwrap(), "term")
                        .unwrap()
                        .parse()
                        .unwrap();
                    return (site.to_string(), *a, term);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn wait_ports_free(addrs: &[SocketAddr]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    for a in addrs {
        while TcpStream::connect_timeout(a, Duration::from_millis(100)).is_ok() {
            assert!(Instant::now() < deadline, "{a} still accepts connections");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The tutorial's three controller hosts.
pub const HOSTS: [&str; 3] = ["P1", "P2", "P3"];
pub const IPS: [&str; 3] = ["127.0.0.80", "127.0.0.81", "127.0.0.82"];

/// A fresh `scratch(name)` holding a copy of `configs/cluster/<host>` for each of [`HOSTS`];
/// returns it and the controllers' addresses.
pub fn tutorial_hosts(name: &str) -> (PathBuf, Vec<SocketAddr>) {
    let root = scratch(name);
    let _ = std::fs::remove_dir_all(&root);
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/cluster");
    for h in HOSTS {
        copy_dir(&configs.join(h), &root.join(h));
    }
    (root, IPS.iter().map(|ip| addr(ip, 8800)).collect())
}

/// Data node `i` (1-based) of host directory `dir`, started with the command line an agent
/// uses: `-mode datanode -home data -localSite ... -controllerSite ... -clusterConfig ...`.
pub fn start_datanode(dir: &Path, i: usize) -> Proc {
    std::fs::create_dir_all(dir.join("log")).unwrap();
    let ip = IPS[i - 1];
    let child = Command::new(bin())
        .current_dir(dir)
        .args(["-console", "0", "-mode", "datanode", "-home", "data"])
        .args(["-localSite", &format!("{ip}:8802:datanode{i}")])
        .args(["-controllerSite", &format!("{ip}:8800:controller{i}")])
        .args(["-clusterConfig", "config/cluster.cfg"])
        .args(["-logFile", &format!("log/datanode{i}.log")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(dir.join(format!("datanode{i}.stderr.txt")))
                .map(Stdio::from)
                .unwrap(),
        )
        .spawn()
        .unwrap();
    Proc(child)
}

/// Compute node `i` (1-based) of host directory `dir`, started as an agent starts it.
pub fn start_computenode(dir: &Path, i: usize) -> Proc {
    std::fs::create_dir_all(dir.join("log")).unwrap();
    let ip = IPS[i - 1];
    let child = Command::new(bin())
        .current_dir(dir)
        .args(["-console", "0", "-mode", "computenode", "-home", "data"])
        .args(["-localSite", &format!("{ip}:8803:computenode{i}")])
        .args(["-controllerSite", &format!("{ip}:8800:controller{i}")])
        .args(["-clusterConfig", "config/cluster.cfg"])
        .args(["-logFile", &format!("log/computenode{i}.log")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(dir.join(format!("computenode{i}.stderr.txt")))
                .map(Stdio::from)
                .unwrap(),
        )
        .spawn()
        .unwrap();
    Proc(child)
}

/// Runs `script` on `node` through `POST /api/execute`; the JSON answer.
pub fn execute(node: SocketAddr, script: &str) -> String {
    let (status, body) = http_within(
        node,
        "POST",
        "/api/execute",
        script,
        Duration::from_secs(300),
    )
    .unwrap_or_else(|| panic!("{node} did not answer"));
    assert_eq!(status, 200, "{body}");
    body
}
