//! The swarm (TigerBeetle's VOPR, `src/vopr.zig`): each seed draws a cluster and its faults.
//!
//! Per seed: 1, 3 or 5 controllers; snapshot cadence, network latency and a writer's pace and
//! length; then a run of faults drawn one after another — kill and restart a member (its disk
//! loses or tears unsynced writes), partition one from the rest, clog one, and, on at most one
//! member at a time and only while all the others are up, wipe its `raft/` or flip a bit in a
//! synced file of a stopped member. A member that refuses to start after a flip is brought back
//! the way docs/OPERATIONS.md says (its `raft/` and `dfsMeta/` moved aside, restarted). Checked:
//! at most one leader per term, every acknowledged write in the final state, no value never
//! written, a start refused only after a flip, and every wiped member a voter again.
//!
//! CI runs `SWARM_SEEDS` seeds from 1 (about five minutes on the 2-core machine: 300 seeds took
//! 210 s); each prints a line with what it drew (`--nocapture`);
//! `MADSIM_TEST_SEED=<n> MADSIM_TEST_NUM=<k>` runs others. Data nodes join the swarm with the
//! data-node issue.
//!
//! Seeds that found bugs, kept inside the CI range: 134 (a follower that installed a snapshot
//! ahead of its log appended after a gap its purge covered, and then refused to reopen the log,
//! ARCHITECTURE D98).
#![cfg(madsim)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use node::config::Mode;
use rt::rand::Rng;
use rt::sim::{run_seeds, DiskFaults, Host, World};
use sim::cluster::{
    check_one_leader_per_term, leaders_elected, refused_starts, reset_observations, wait_voter,
    Options, SimCluster, SIM_HOME,
};
use sim::invariants::acked_not_lost;
use sim::workload::{read_meta, run_writer, Observed};

/// Seeds CI runs (1..=SWARM_SEEDS).
const SWARM_SEEDS: u64 = 400;

fn controllers_nodes(n: usize) -> String {
    let mut text = String::from("localSite,mode\n");
    for i in 0..n {
        text.push_str(&format!(
            "127.0.0.{}:8800:controller{},controller\n",
            80 + i,
            i + 1
        ));
    }
    text
}

fn pick(rng: &mut Rng, lo: u64, hi: u64) -> u64 {
    lo + rng.below(hi - lo)
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

struct Swarm {
    world: World,
    hosts: Vec<Host>,
    addrs: Vec<SocketAddr>,
    up: Vec<bool>,
}

impl Swarm {
    fn down(&self) -> usize {
        self.up.iter().filter(|u| !**u).count()
    }

    fn kill(&mut self, i: usize) {
        self.world.kill(&self.hosts[i]);
        self.up[i] = false;
    }

    fn restart(&mut self, i: usize) {
        self.world.restart(&self.hosts[i]);
        self.up[i] = true;
    }

    fn dirs(i: usize) -> [PathBuf; 2] {
        let home = Path::new(SIM_HOME).join(format!("controller{}", i + 1));
        [home.join("raft"), home.join("dfsMeta")]
    }

    /// docs/OPERATIONS.md: move the refused `raft/` (and `dfsMeta/`) aside and start again.
    fn guide(&mut self, i: usize) {
        self.kill(i);
        for d in Swarm::dirs(i) {
            self.world.wipe_dir(&self.hosts[i], &d);
        }
        self.restart(i);
    }
}

#[test]
fn swarm() {
    let defaults: Vec<u64> = (1..=SWARM_SEEDS).collect();
    run_seeds(&defaults, |world: World| async move {
        reset_observations();
        let mut rng = Rng::new();
        let n = [1usize, 3, 5][rng.below(3) as usize];
        let mut opts = Options::default();
        opts.timing.snapshot_every_entries = pick(&mut rng, 30, 400);
        opts.timing.keep_after_snapshot = pick(&mut rng, 5, 30);
        let latency_max = pick(&mut rng, 2, 12);
        world.set_network(ms(1)..ms(latency_max), 0.0);
        let cluster = SimCluster::start_with(&world, &controllers_nodes(n), opts);
        let ctl: Vec<_> = cluster
            .nodes
            .iter()
            .filter(|c| c.mode == Mode::Controller)
            .cloned()
            .collect();
        let mut s = Swarm {
            world: world.clone(),
            hosts: ctl
                .iter()
                .map(|c| cluster.hosts[&c.addr.ip()].clone())
                .collect(),
            addrs: ctl.iter().map(|c| c.addr).collect(),
            up: vec![true; n],
        };
        for h in &s.hosts {
            world.set_disk_faults(
                h,
                DiskFaults {
                    tear_on_crash: true,
                    ..DiskFaults::default()
                },
            );
        }
        let client_ip: IpAddr = "10.0.0.99".parse().unwrap();
        let client = world.create_idle_host("client", client_ip);
        let out = Arc::new(Mutex::new(Observed::default()));
        let writer = client.spawn(run_writer(
            s.addrs.clone(),
            "k".into(),
            pick(&mut rng, 40, 160) as usize,
            ms(pick(&mut rng, 5, 40)),
            400,
            out.clone(),
        ));

        let minority = (n - 1) / 2;
        let mut flipped: Vec<String> = Vec::new();
        let mut damaged: Vec<usize> = Vec::new();
        let faults = pick(&mut rng, 4, 16);
        for _ in 0..faults {
            rt::time::sleep(ms(pick(&mut rng, 100, 1200))).await;
            // Half the faults hit the member that leads now, when there is one.
            let leader = leaders_elected().last().map(|l| l.1 as usize - 1);
            let i = match leader {
                Some(l) if rng.below(2) == 0 => l,
                _ => rng.below(n as u64) as usize,
            };
            match rng.below(6) {
                // Kill a member; it stays down until a later fault (or the end) restarts it,
                // so up to a minority can be down at once.
                0 | 5 => {
                    if !s.up[i] {
                        s.restart(i);
                    } else if s.down() < minority {
                        s.kill(i);
                    } else {
                        s.kill(i);
                        rt::time::sleep(ms(pick(&mut rng, 100, 1500))).await;
                        s.restart(i);
                    }
                }
                // Partition one member from the rest.
                1 => {
                    let rest: Vec<&Host> =
                        (0..n).filter(|j| *j != i).map(|j| &s.hosts[j]).collect();
                    world.partition(&[&s.hosts[i]], &rest);
                    rt::time::sleep(ms(pick(&mut rng, 300, 2500))).await;
                    world.heal(&[&s.hosts[i]], &rest);
                }
                // Clog one member's links.
                2 => {
                    world.clog_host(&s.hosts[i]);
                    rt::time::sleep(ms(pick(&mut rng, 200, 1200))).await;
                    world.unclog_host(&s.hosts[i]);
                }
                // Wipe a member's raft/ (one at a time, all others up).
                3 if n > 1 && damaged.is_empty() && s.down() == 0 => {
                    s.kill(i);
                    world.wipe_dir(&s.hosts[i], &Swarm::dirs(i)[0]);
                    rt::time::sleep(ms(pick(&mut rng, 100, 1000))).await;
                    s.restart(i);
                    damaged.push(i);
                }
                // Flip a bit in a synced file of a stopped member (same limits).
                4 if n > 1 && damaged.is_empty() && s.down() == 0 => {
                    s.kill(i);
                    let mut files = Vec::new();
                    for d in Swarm::dirs(i) {
                        files.extend(world.files_under(&s.hosts[i], &d));
                    }
                    files.retain(|(_, size)| *size > 0);
                    if !files.is_empty() {
                        let (path, size) = files[rng.below(files.len() as u64) as usize].clone();
                        // Half the flips land in the first 16 KiB, where the records are (the
                        // log is zero-filled 1 MiB ahead of them).
                        let span = if rng.below(2) == 0 {
                            size.min(16 << 10)
                        } else {
                            size
                        };
                        let at = rng.below(span);
                        let mask = 1u8 << rng.below(8);
                        assert!(world.flip_byte(&s.hosts[i], &path, at, mask));
                        flipped.push(format!("controller{}", i + 1));
                    }
                    let before = refused_starts().len();
                    s.restart(i);
                    rt::time::sleep(ms(500)).await;
                    if refused_starts().len() > before {
                        s.guide(i);
                    }
                    damaged.push(i);
                }
                _ => {}
            }
        }
        for i in 0..n {
            if !s.up[i] {
                s.restart(i);
            }
        }
        writer.await.expect("the writer finishes");
        let damaged_count = damaged.len();
        for i in damaged {
            // A refusal found late (a flip read only at the next restart) is handled alike.
            let alias = format!("controller{}", i + 1);
            if refused_starts().iter().any(|(a, _)| *a == alias) && !s.up[i] {
                s.guide(i);
            }
            assert!(
                wait_voter(&client, s.addrs[i], Duration::from_secs(40)).await,
                "{alias} is a voter again after its loss"
            );
        }
        rt::time::sleep(Duration::from_secs(4)).await;

        for (alias, e) in refused_starts() {
            assert!(
                flipped.contains(&alias),
                "{alias} refused to start with no damage injected: {e}"
            );
        }
        check_one_leader_per_term().unwrap();
        let addrs = s.addrs.clone();
        let meta = client
            .spawn(async move {
                for _ in 0..50 {
                    if let Some(m) = read_meta(&addrs).await {
                        return Some(m);
                    }
                    rt::time::sleep(ms(200)).await;
                }
                None
            })
            .await
            .unwrap()
            .expect("a leader answers once every fault is healed");
        let w = out.lock().unwrap().clone();
        acked_not_lost::check(&w.acked, &w.attempted, &meta.nodes_config).unwrap();
        eprintln!(
            "swarm seed {}: {n} controllers, {faults} faults ({} wiped or flipped, {} refused \
             starts), {} writes acknowledged of {}, {} leaderships",
            world.seed(),
            damaged_count,
            refused_starts().len(),
            w.acked.len(),
            w.attempted.len(),
            leaders_elected().len()
        );
    });
}
