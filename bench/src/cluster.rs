//! The tutorial's local 3-host cluster for benchmarks: on each of 127.0.0.80–82 a controller
//! and a data node (and, when asked, a compute node), each host under its own directory with
//! its own `config/` (copied from `configs/cluster/<host>`) and `data` home, as the tutorial
//! lays them out. The processes are the release binary, killed when the [`Cluster`] drops.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const HOSTS: [&str; 3] = ["P1", "P2", "P3"];
pub const IPS: [&str; 3] = ["127.0.0.80", "127.0.0.81", "127.0.0.82"];

/// How long the cluster may take to elect a leader and take logins.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Running processes of the local cluster.
pub struct Cluster {
    procs: Vec<Child>,
    pub root: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.procs {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The release binary, which the cluster benches need built first.
pub fn binary() -> PathBuf {
    let bin = crate::repo_root().join("target/release/porpoise");
    assert!(
        bin.exists(),
        "build the release binary first: cargo build --release -p node"
    );
    bin
}

impl Cluster {
    /// Starts the cluster under `root`, keeping what an earlier run left there (the hosts'
    /// homes survive a restart, as a real cluster's do). `compute` adds computenode1–3.
    pub fn start(root: &Path, compute: bool) -> Cluster {
        let bin = binary();
        let mut procs = Vec::new();
        for (i, (h, ip)) in HOSTS.iter().zip(IPS).enumerate() {
            let n = i + 1;
            let dir = root.join(h);
            std::fs::create_dir_all(dir.join("log")).unwrap();
            std::fs::create_dir_all(dir.join("config")).unwrap();
            let cfg = crate::repo_root().join(format!("configs/cluster/{h}/config"));
            for f in std::fs::read_dir(&cfg).unwrap().flatten() {
                std::fs::copy(f.path(), dir.join("config").join(f.file_name())).unwrap();
            }
            let run = |args: &[&str]| {
                Command::new(&bin)
                    .current_dir(&dir)
                    .args(["-console", "0", "-home", "data"])
                    .args(args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            };
            procs.push(run(&[
                "-mode",
                "controller",
                "-config",
                "config/controller.cfg",
                "-logFile",
                "log/controller.log",
                "-nodesFile",
                "config/cluster.nodes",
                "-clusterConfig",
                "config/cluster.cfg",
            ]));
            let controller = format!("{ip}:8800:controller{n}");
            let mut node = |mode: &str, port: u16| {
                procs.push(run(&[
                    "-mode",
                    mode,
                    "-localSite",
                    &format!("{ip}:{port}:{mode}{n}"),
                    "-controllerSite",
                    &controller,
                    "-clusterConfig",
                    "config/cluster.cfg",
                    "-logFile",
                    &format!("log/{mode}{n}.log"),
                ]))
            };
            node("datanode", 8802);
            if compute {
                node("computenode", 8803);
            }
        }
        Cluster {
            procs,
            root: root.to_path_buf(),
        }
    }

    /// A session on `site` as admin, once the node takes a login and `ready` (a script)
    /// succeeds there; waiting for a login, not a TCP accept (a killed io_uring process can
    /// hold its socket a moment).
    pub fn session(&self, site: &str, ready: &str) -> client::Client {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let cfg = client::Config::new(site)
                .login("admin", "123456")
                .timeout_ms(600_000);
            let mut last = String::new();
            match client::Client::connect(cfg) {
                Ok(mut c) => match c.run(ready) {
                    Ok(_) => return c,
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last.push_str(&e.to_string()),
            }
            assert!(
                Instant::now() < deadline,
                "{site} did not become ready: {last}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}
