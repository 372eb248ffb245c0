//! End-to-end start-up of the real `porpoise` binary on 127.0.0.x: a controller from
//! `configs/` binds its port and answers /health; the tutorial's FAQ failures (empty first line
//! of cluster.nodes, port in use) exit non-zero with the messages the tutorial shows.
// Real processes on real loopback addresses: not meaningful inside the simulator.
#![cfg(not(madsim))]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_porpoise")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A scratch directory unique to the test.
fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("startup-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Kills the child when dropped, so a failing test leaves no server behind.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn wait_for_health(addr: SocketAddr, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(resp) = http_get(addr, "/health") {
            return resp;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("porpoise exited early with {status}");
        }
        assert!(Instant::now() < deadline, "{addr} never answered /health");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn controller_cmd(dir: &Path, home: &Path, nodes: &Path) -> Command {
    let cfg = repo().join("configs/cluster/P1/config");
    let mut c = Command::new(bin());
    c.current_dir(dir)
        .args(["-console", "0", "-mode", "controller", "-home"])
        .arg(home)
        .arg("-config")
        .arg(cfg.join("controller.cfg"))
        .arg("-nodesFile")
        .arg(nodes)
        .arg("-clusterConfig")
        .arg(cfg.join("cluster.cfg"))
        .arg("-logFile")
        .arg(dir.join("log/controller.log"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn finish(child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "porpoise did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn tutorial_controller_binds_its_port_and_a_second_one_cannot() {
    let dir = scratch("controller");
    let nodes = repo().join("configs/cluster/P1/config/cluster.nodes");
    // A home directory with spaces must work.
    let home = dir.join("data dir");
    let child = controller_cmd(&dir, &home, &nodes).spawn().unwrap();
    let mut node = Node(child);
    let addr: SocketAddr = "127.0.0.80:8800".parse().unwrap();
    let resp = wait_for_health(addr, &mut node.0);
    assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
    assert!(resp.contains(r#""alias":"controller1""#), "{resp}");
    assert!(resp.contains(r#""mode":"controller""#), "{resp}");
    assert!(home.is_dir(), "home with spaces was created");

    // Binary API clients can connect; with its two peers down this controller cannot be the
    // leader and knows none, so a script is refused with <ControllerNotReady> (the official
    // clients' "try another node"; a bare <NotLeader> would name nowhere to go), and the node
    // survives garbage.
    let mut api = TcpStream::connect(addr).unwrap();
    api.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    api.write_all(b"API 0 32 / 32_1_4_2\nconnect\nlogin\nadmin\n123456\nfalse")
        .unwrap();
    let mut reply = [0u8; 256];
    let n = api.read(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply[..n]).into_owned();
    assert!(reply.contains(" 1\nOK\n"), "{reply}");
    let session = reply.split_whitespace().next().unwrap().to_string();
    api.write_all(format!("API {session} 7\nscript\n1+1").as_bytes())
        .unwrap();
    let mut refusal = [0u8; 256];
    let n = api.read(&mut refusal).unwrap();
    let refusal = String::from_utf8_lossy(&refusal[..n]).into_owned();
    assert!(refusal.contains("<ControllerNotReady>"), "{refusal}");
    assert!(!refusal.contains("<NotLeader>"), "{refusal}");
    let mut junk = TcpStream::connect(addr).unwrap();
    junk.write_all(&[0xff; 64]).unwrap();
    drop(junk);
    assert!(http_get(addr, "/version").unwrap().contains("porpoise"));

    // The same port again: exit non-zero, naming address, port and errno as in the FAQ.
    let second = controller_cmd(&dir, &dir.join("data2"), &nodes)
        .spawn()
        .unwrap();
    let out = finish(second);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Failed to bind the socket on port 8800 with error code 98")
            && stderr.contains("127.0.0.80:8800"),
        "{stderr}"
    );
    let log = std::fs::read_to_string(dir.join("log/controller.log")).unwrap();
    assert!(log.contains("event=listening"), "{log}");
    assert!(log.contains("event=bind_failed"), "{log}");
    assert!(
        http_get(addr, "/health").is_ok(),
        "the first controller is unaffected"
    );
}

#[test]
fn empty_first_line_in_cluster_nodes_is_refused() {
    let dir = scratch("empty-first-line");
    let good =
        std::fs::read_to_string(repo().join("configs/cluster/P1/config/cluster.nodes")).unwrap();
    let nodes = dir.join("cluster.nodes");
    std::fs::write(&nodes, format!("\n{good}")).unwrap();
    let out = finish(
        controller_cmd(&dir, &dir.join("data"), &nodes)
            .spawn()
            .unwrap(),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "Failed to load the nodes file [{}] with error: The input file is empty",
            nodes.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("remove the empty line"), "{stderr}");
}

#[test]
fn config_errors_exit_with_file_and_line() {
    let dir = scratch("bad-config");
    let cfg = dir.join("dolphindb.cfg");
    std::fs::write(
        &cfg,
        "mode=single\nlocalSite=127.0.0.1:18848:single1\nworkerNum=many\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .current_dir(&dir)
        .args(["-mode", "single", "-home", "data", "-config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:3: workerNum=many is invalid", cfg.display())),
        "{stderr}"
    );
}

#[test]
fn print_config_shows_values_and_sources() {
    let dir = scratch("print-config");
    let cfg = repo().join("configs/single/dolphindb.cfg");
    let out = Command::new(bin())
        .current_dir(&dir)
        .args(["-home", "data", "-config"])
        .arg(&cfg)
        .args(["-workerNum", "3", "--print-config"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("localSite=127.0.0.1:8848:local8848"),
        "{stdout}"
    );
    assert!(stdout.contains("workerNum=3    # command line"), "{stdout}");
}

#[test]
fn help_and_version() {
    let out = Command::new(bin()).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("porpoise "));
    let out = Command::new(bin()).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("-mode <role>"));
    let out = Command::new(bin())
        .args(["-mode", "wizard"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown mode 'wizard'"));
}

#[test]
fn tutorial_scripts_start_and_stop_a_host() {
    let host = repo().join("configs/cluster/P2");
    let run = |script: &str| {
        let out = Command::new("sh")
            .arg(host.join(script))
            .env("PORPOISE_BIN", bin())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run("startController.sh");
    run("startagent.sh");
    let deadline = Instant::now() + Duration::from_secs(20);
    for (addr, alias) in [
        ("127.0.0.81:8800", "controller2"),
        ("127.0.0.81:8801", "agent2"),
    ] {
        let addr: SocketAddr = addr.parse().unwrap();
        loop {
            if let Ok(resp) = http_get(addr, "/health") {
                assert!(resp.contains(&format!(r#""alias":"{alias}""#)), "{resp}");
                break;
            }
            assert!(Instant::now() < deadline, "{alias} did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    run("stopAllNode.sh");
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get("127.0.0.81:8800".parse().unwrap(), "/health").is_ok() {
        assert!(
            Instant::now() < deadline,
            "stopAllNode.sh did not stop the controller"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(host.join("log/controller.log")).unwrap();
    assert!(log.contains("event=listening"), "{log}");
    for d in ["log", "data"] {
        let _ = std::fs::remove_dir_all(host.join(d));
    }
    for f in ["controller.nohup", "agent.nohup"] {
        let _ = std::fs::remove_file(host.join(f));
    }
}

fn http_post(addr: SocketAddr, path: &str, session: Option<&str>, body: &str) -> (String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let extra = session
        .map(|id| format!("X-Session: {id}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let session = out
        .lines()
        .find_map(|l| l.strip_prefix("X-Session: "))
        .unwrap_or_default()
        .to_string();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (session, body)
}

#[test]
fn single_node_runs_scripts_over_http() {
    let dir = scratch("single-http");
    let child = Command::new(bin())
        .current_dir(&dir)
        .args([
            "-mode",
            "single",
            "-home",
            "data",
            "-localSite",
            "127.0.0.1:18851:single1",
            "-logFile",
        ])
        .arg(dir.join("single.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut node = Node(child);
    let addr: SocketAddr = "127.0.0.1:18851".parse().unwrap();
    wait_for_health(addr, &mut node.0);

    let (sid, body) = http_post(addr, "/api/execute", None, "x = 1..3\nsum(x)");
    assert!(
        body.contains(r#""ok":true"#) && body.contains(r#""value":6"#),
        "{body}"
    );
    let (same, body) = http_post(addr, "/api/execute", Some(&sid), "x * 10");
    assert_eq!(same, sid);
    assert!(body.contains("[10,20,30]"), "{body}");
    let (_, body) = http_post(addr, "/api/execute", Some(&sid), "matrix(1 2, 3 4)");
    assert!(
        body.contains(r#""form":"matrix""#) && body.contains("[[1,2],[3,4]]"),
        "{body}"
    );
    let (_, body) = http_post(addr, "/api/execute", Some(&sid), "dict(`a`b, 1 2)");
    assert!(
        body.contains(r#""form":"dictionary""#) && body.contains(r#""a":"#),
        "{body}"
    );
    let (_, body) = http_post(addr, "/api/execute", Some(&sid), "y = 1\ny = (2 +");
    assert!(
        body.contains(r#""ok":false"#) && body.contains(r#""line":2"#),
        "{body}"
    );

    // The tutorial's data generation (verbatim) and its OHLC query, in memory.
    let step5 =
        std::fs::read_to_string(repo().join("lang/tests/scripts/tutorial_step5.dos")).unwrap();
    let start = step5.find("n = 1210000").unwrap();
    let end = step5
        .find("dbName = \"dfs://testDB\"\ntbName = \"testTB\"\nloadTable")
        .unwrap();
    let script = format!(
        "{}\nresult = select first(LastPx) as Open, max(LastPx) as High, min(LastPx) as Low, last(LastPx) as Close from t group by date(DateTime) as Date, SecurityID\nsize(result)",
        &step5[start..end]
    );
    let (_, body) = http_post(addr, "/api/execute", None, &script);
    assert!(body.contains(r#""value":5000"#), "{body}");
}
