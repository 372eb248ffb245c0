//! Controller scenarios under madsim: the tutorial's cluster.nodes (three hosts, each with a
//! controller, an agent, a data node and a compute node), a client writing metadata, and one
//! fault per scenario. Every scenario checks the invariants in `sim::invariants`:
//! at most one leader per term, acknowledged changes never lost, a bounded election while a
//! majority is up, clients reaching the leader through redirects, and no writes without a
//! majority.
//!
//! Scenarios: kill the leader; partition the leader from the rest; kill and restart a follower
//! while snapshots are being built and the log purged; clog the leader's links; restart all
//! three; wipe one controller's raft/ mid-run. Seeds: `SEEDS` in CI, `MADSIM_TEST_SEED` / `MADSIM_TEST_NUM` for more.
#![cfg(madsim)]

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use node::config::Mode;
use node::controller::meta::Meta;
use rt::sim::{run_seeds, Host, World};
use sim::cluster::{
    check_one_leader_per_term, http_get, leaders_elected, reset_observations, snapshots_held,
    wait_voter, Options, SimCluster,
};
use sim::invariants::{acked_not_lost, election_bound, minority_refuses, redirects};
use sim::workload::{read_meta, run_writer, Observed};

/// The fixed CI seed list.
const SEEDS: &[u64] = &[1, 2, 3, 4, 5];
/// How long the majority may take to elect a new leader (timeouts are 0.6–1.2 s).
const ELECTION_BOUND: Duration = Duration::from_secs(8);

fn tutorial_nodes() -> String {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/cluster/P1/config/cluster.nodes");
    std::fs::read_to_string(p).expect("configs/cluster/P1/config/cluster.nodes")
}

struct Setup {
    world: World,
    cluster: SimCluster,
    /// Controller addresses, in cluster.nodes order (Raft id = index + 1).
    controllers: Vec<SocketAddr>,
    members: Vec<String>,
}

impl Setup {
    /// The tutorial's cluster.
    fn new(world: World, opts: Options) -> Setup {
        Setup::with_nodes(world, &tutorial_nodes(), opts)
    }

    fn with_nodes(world: World, nodes_text: &str, opts: Options) -> Setup {
        reset_observations();
        world.set_network(Duration::from_millis(1)..Duration::from_millis(5), 0.0);
        let cluster = SimCluster::start_with(&world, nodes_text, opts);
        let ctl: Vec<_> = cluster
            .nodes
            .iter()
            .filter(|n| n.mode == Mode::Controller)
            .cloned()
            .collect();
        Setup {
            world,
            controllers: ctl.iter().map(|n| n.addr).collect(),
            members: ctl.iter().map(|n| n.site.to_string()).collect(),
            cluster,
        }
    }

    fn host_of_id(&self, id: u64) -> &Host {
        &self.cluster.hosts[&self.controllers[id as usize - 1].ip()]
    }

    fn client(&self, name: &str, last_octet: u8) -> Host {
        let ip: IpAddr = format!("10.0.0.{last_octet}").parse().unwrap();
        self.world.create_idle_host(name, ip)
    }
}

/// The first `(term, id, at_ms)` a controller became leader at or after `since_ms` (a leader
/// restarted with its committed vote may lead again in the same term, so time, not the term,
/// tells a new leadership).
async fn leader_since(since_ms: u64, wait: Duration) -> Option<(u64, u64, u64)> {
    let deadline = rt::time::now() + wait;
    loop {
        if let Some(l) = leaders_elected().into_iter().find(|l| l.2 >= since_ms) {
            return Some(l);
        }
        if rt::time::now() > deadline {
            return None;
        }
        rt::time::sleep(Duration::from_millis(20)).await;
    }
}

fn spawn_writer(
    host: &Host,
    controllers: Vec<SocketAddr>,
    prefix: &str,
    count: usize,
    pause: Duration,
    attempts_max: u32,
) -> (Arc<Mutex<Observed>>, impl std::future::Future<Output = ()>) {
    let out = Arc::new(Mutex::new(Observed::default()));
    let h = host.spawn(run_writer(
        controllers,
        prefix.to_string(),
        count,
        pause,
        attempts_max,
        out.clone(),
    ));
    (out, async move {
        h.await.expect("the writer finishes");
    })
}

/// Reads the final state from the leader and checks that nothing acknowledged was lost and
/// that no term had two leaders.
async fn check_state(s: &Setup, client: &Host, w: &Observed) -> Meta {
    let controllers = s.controllers.clone();
    let meta = client
        .spawn(async move { read_meta(&controllers).await })
        .await
        .unwrap()
        .expect("a leader answers a metadata read");
    acked_not_lost::check(&w.acked, &w.attempted, &meta.nodes_config).unwrap();
    check_one_leader_per_term().unwrap();
    meta
}

/// [`check_state`] plus the invariants every tutorial-cluster scenario shares.
async fn check_final(s: &Setup, client: &Host, w: &Observed, lost_at_ms: Option<u64>) {
    let meta = check_state(s, client, w).await;
    if let Some(lost) = lost_at_ms {
        let after = w.acked_at.values().filter(|t| **t > lost).count();
        redirects::check(&w.redirects, &s.members, after).unwrap();
    }
    // Heartbeats found the leader after every fault: data nodes are registered and live.
    for alias in ["datanode1", "datanode2", "datanode3"] {
        let n = meta
            .nodes
            .get(alias)
            .unwrap_or_else(|| panic!("{alias} is registered"));
        assert!(n.live, "{alias} heartbeats reach the current leader");
    }
}

#[test]
fn kill_the_leader() {
    run_seeds(SEEDS, |world: World| async move {
        let s = Setup::new(world.clone(), Options::default());
        let (term0, id0, _) = leader_since(0, Duration::from_secs(10))
            .await
            .expect("first leader");
        let client = s.client("client", 99);
        let (w, done) = spawn_writer(
            &client,
            s.controllers.clone(),
            "k",
            60,
            Duration::from_millis(100),
            40,
        );
        rt::time::sleep(Duration::from_millis(
            1500 + rt::rand::Rng::new().below(1000),
        ))
        .await;
        let lost_at = rt::time::unix_time_ms();
        world.kill(s.host_of_id(id0));
        let elected = leader_since(lost_at, ELECTION_BOUND * 2).await;
        election_bound::check(lost_at, elected.map(|l| l.2), ELECTION_BOUND).unwrap();
        let (term, id, _) = elected.unwrap();
        assert!(
            term > term0 && id != id0,
            "a new leader ({id}, term {term}) replaces {id0}"
        );
        rt::time::sleep(Duration::from_secs(2)).await;
        world.restart(s.host_of_id(id0));
        done.await;
        rt::time::sleep(Duration::from_secs(6)).await;
        let w = w.lock().unwrap().clone();
        assert!(!w.acked.is_empty());
        check_final(&s, &client, &w, Some(lost_at)).await;
    });
}

#[test]
fn partition_the_leader_from_the_rest() {
    run_seeds(SEEDS, |world: World| async move {
        let s = Setup::new(world.clone(), Options::default());
        let (term0, id0, _) = leader_since(0, Duration::from_secs(10))
            .await
            .expect("first leader");
        let client = s.client("client", 99);
        let minority_client = s.client("minority-client", 98);
        let (w, done) = spawn_writer(
            &client,
            s.controllers.clone(),
            "k",
            60,
            Duration::from_millis(100),
            40,
        );
        rt::time::sleep(Duration::from_secs(1)).await;
        let old = s.host_of_id(id0);
        let others: Vec<&Host> = s
            .cluster
            .hosts
            .values()
            .filter(|h| h.ip() != old.ip())
            .collect();
        let mut majority = others.clone();
        majority.push(&client);
        let lost_at = rt::time::unix_time_ms();
        world.partition(&[old, &minority_client], &majority);
        // A client that can reach only the deposed leader keeps writing to it.
        let old_addr = s.controllers[id0 as usize - 1];
        let (m, m_done) = spawn_writer(
            &minority_client,
            vec![old_addr],
            "m",
            8,
            Duration::from_millis(100),
            2,
        );
        let elected = leader_since(lost_at, ELECTION_BOUND * 2).await;
        election_bound::check(lost_at, elected.map(|l| l.2), ELECTION_BOUND).unwrap();
        let (term, id, _) = elected.unwrap();
        assert!(
            term > term0 && id != id0,
            "the majority elects a new leader"
        );
        rt::time::sleep(Duration::from_secs(3)).await;
        let acked_in_minority: Vec<String> = m.lock().unwrap().acked.keys().cloned().collect();
        minority_refuses::check(&acked_in_minority).unwrap();
        world.heal(&[old, &minority_client], &majority);
        done.await;
        m_done.await;
        rt::time::sleep(Duration::from_secs(6)).await;
        let mut w = w.lock().unwrap().clone();
        // The minority client's keys were attempted too (unacknowledged: may or may not land).
        w.attempted.extend(m.lock().unwrap().attempted.clone());
        check_final(&s, &client, &w, Some(lost_at)).await;
    });
}

#[test]
fn restart_a_follower_mid_snapshot() {
    run_seeds(SEEDS, |world: World| async move {
        let mut opts = Options::default();
        // Snapshots every 40 entries, 10 kept behind: a follower away for a while must be
        // sent a snapshot, and one killed while building one must recover from its files.
        opts.timing.snapshot_every_entries = 40;
        opts.timing.keep_after_snapshot = 10;
        let s = Setup::new(world.clone(), opts);
        let (_, leader, _) = leader_since(0, Duration::from_secs(10))
            .await
            .expect("first leader");
        let client = s.client("client", 99);
        let (w, done) = spawn_writer(
            &client,
            s.controllers.clone(),
            "k",
            200,
            Duration::from_millis(10),
            40,
        );
        let follower = if leader == 1 { 2 } else { 1 };
        rt::time::sleep(Duration::from_millis(
            500 + rt::rand::Rng::new().below(1500),
        ))
        .await;
        world.kill(s.host_of_id(follower));
        rt::time::sleep(Duration::from_millis(1500)).await;
        world.restart(s.host_of_id(follower));
        done.await;
        // The follower converges to the leader's state.
        let f_addr = s.controllers[follower as usize - 1];
        let controllers = s.controllers.clone();
        let converged = client
            .spawn(async move {
                for _ in 0..100 {
                    let mine = http_get(f_addr, "/config/nodes", Duration::from_secs(1)).await;
                    let meta = read_meta(&controllers).await;
                    if let (Ok(mine), Some(meta)) = (mine, meta) {
                        let want: String = meta
                            .nodes_config
                            .iter()
                            .map(|(k, v)| format!("{k}={v}\n"))
                            .collect();
                        if mine.ends_with(&want) && !want.is_empty() {
                            return true;
                        }
                    }
                    rt::time::sleep(Duration::from_millis(200)).await;
                }
                false
            })
            .await
            .unwrap();
        assert!(
            converged,
            "the restarted follower caught up with the leader"
        );
        let snaps = snapshots_held();
        assert!(
            snaps.get(&follower).copied().unwrap_or(0) > 0
                && snaps.get(&leader).copied().unwrap_or(0) > 0,
            "snapshots were built and reached the restarted follower: {snaps:?}"
        );
        // Snapshots every 40 entries never stalled the leader's heartbeats: no election.
        let leaderships = leaders_elected();
        assert!(
            leaderships.iter().all(|(_, id, _)| *id == leader),
            "leadership changed while only a follower failed: {leaderships:?}"
        );
        let w = w.lock().unwrap().clone();
        check_final(&s, &client, &w, None).await;
    });
}

#[test]
fn clog_the_leaders_links() {
    run_seeds(SEEDS, |world: World| async move {
        let s = Setup::new(world.clone(), Options::default());
        let (term0, id0, _) = leader_since(0, Duration::from_secs(10))
            .await
            .expect("first leader");
        let client = s.client("client", 99);
        let (w, done) = spawn_writer(
            &client,
            s.controllers.clone(),
            "k",
            50,
            Duration::from_millis(100),
            40,
        );
        rt::time::sleep(Duration::from_secs(1)).await;
        let lost_at = rt::time::unix_time_ms();
        world.clog_host(s.host_of_id(id0));
        let elected = leader_since(lost_at, ELECTION_BOUND * 2).await;
        election_bound::check(lost_at, elected.map(|l| l.2), ELECTION_BOUND).unwrap();
        let (term, id, _) = elected.unwrap();
        assert!(term > term0 && id != id0, "the others elect a new leader");
        rt::time::sleep(Duration::from_secs(2)).await;
        world.unclog_host(s.host_of_id(id0));
        done.await;
        rt::time::sleep(Duration::from_secs(6)).await;
        let w = w.lock().unwrap().clone();
        check_final(&s, &client, &w, Some(lost_at)).await;
    });
}

#[test]
fn wipe_a_controllers_raft_dir_mid_run() {
    // A controller loses its raft/ (a replaced disk, an operator following the guide) while
    // writes go on; it rejoins, catches up, votes again; then the leader dies and the group,
    // with its vote, elects a leader holding every acknowledged write (ARCHITECTURE D61).
    run_seeds(SEEDS, |world: World| async move {
        let s = Setup::new(world.clone(), Options::default());
        let _ = leader_since(0, Duration::from_secs(10))
            .await
            .expect("first leader");
        let client = s.client("client", 99);
        let (w, done) = spawn_writer(
            &client,
            s.controllers.clone(),
            "k",
            120,
            Duration::from_millis(30),
            60,
        );
        rt::time::sleep(Duration::from_millis(
            800 + rt::rand::Rng::new().below(1500),
        ))
        .await;
        // Any controller, the leader included.
        let victim = 1 + rt::rand::Rng::new().below(3);
        let host = s.host_of_id(victim);
        world.kill(host);
        let raft_dir = Path::new(sim::cluster::SIM_HOME).join(format!("controller{victim}/raft"));
        assert!(
            !world.files_under(host, &raft_dir).is_empty(),
            "the victim had a raft log"
        );
        world.wipe_dir(host, &raft_dir);
        rt::time::sleep(Duration::from_millis(
            300 + rt::rand::Rng::new().below(1000),
        ))
        .await;
        world.restart(host);
        let addr = s.controllers[victim as usize - 1];
        assert!(
            wait_voter(&client, addr, Duration::from_secs(30)).await,
            "the wiped controller rejoined as a voter"
        );
        done.await;
        // Now its vote counts: kill whoever leads, and the two left must agree on a leader
        // that has everything acknowledged.
        let (_, leader, _) = leaders_elected().last().copied().expect("a leader");
        let lost_at = rt::time::unix_time_ms();
        world.kill(s.host_of_id(leader));
        let elected = leader_since(lost_at, ELECTION_BOUND * 2).await;
        election_bound::check(lost_at, elected.map(|l| l.2), ELECTION_BOUND).unwrap();
        let (w2, done2) = spawn_writer(
            &client,
            s.controllers.clone(),
            "after",
            5,
            Duration::from_millis(20),
            60,
        );
        done2.await;
        world.restart(s.host_of_id(leader));
        rt::time::sleep(Duration::from_secs(6)).await;
        let mut all = w.lock().unwrap().clone();
        let w2 = w2.lock().unwrap().clone();
        assert_eq!(
            w2.acked.len(),
            5,
            "writes after the failover are acknowledged"
        );
        all.merge(w2);
        check_final(&s, &client, &all, None).await;
    });
}

#[test]
fn restart_all_three() {
    run_seeds(SEEDS, |world: World| async move {
        let s = Setup::new(world.clone(), Options::default());
        let _first = leader_since(0, Duration::from_secs(10))
            .await
            .expect("first leader");
        let client = s.client("client", 99);
        let (w, done) = spawn_writer(
            &client,
            s.controllers.clone(),
            "k",
            30,
            Duration::from_millis(20),
            40,
        );
        done.await;
        for h in s.cluster.hosts.values() {
            world.kill(h);
        }
        rt::time::sleep(Duration::from_secs(1)).await;
        let restarted_at = rt::time::unix_time_ms();
        for h in s.cluster.hosts.values() {
            world.restart(h);
        }
        let elected = leader_since(restarted_at, Duration::from_secs(20)).await;
        assert!(elected.is_some(), "the restarted group elects a leader");
        // Writes work again, and nothing acknowledged before the restart is lost.
        let (w2, done2) = spawn_writer(
            &client,
            s.controllers.clone(),
            "after",
            5,
            Duration::from_millis(20),
            40,
        );
        done2.await;
        rt::time::sleep(Duration::from_secs(6)).await;
        let mut all = w.lock().unwrap().clone();
        let w2 = w2.lock().unwrap().clone();
        assert_eq!(
            w2.acked.len(),
            5,
            "writes after the restart are acknowledged"
        );
        all.merge(w2);
        check_final(&s, &client, &all, None).await;
    });
}

#[test]
fn five_controllers_tolerate_two_failures_and_refuse_writes_with_three_down() {
    run_seeds(&SEEDS[..3], |world: World| async move {
        let mut text = String::from("localSite,mode\n");
        for i in 0..5 {
            text.push_str(&format!(
                "127.0.0.{}:8800:controller{},controller\n",
                80 + i,
                i + 1
            ));
        }
        text.push_str("127.0.0.80:8802:datanode1,datanode\n");
        let s = Setup::with_nodes(world.clone(), &text, Options::default());
        let controllers = s.controllers.clone();
        let host = |id: u64| s.host_of_id(id).clone();
        let (term0, id0, _) = leader_since(0, Duration::from_secs(10))
            .await
            .expect("first leader");
        let client = s.client("client", 99);
        // Two down, the leader among them: the other three elect a leader and take writes.
        let other = if id0 == 1 { 2 } else { 1 };
        let lost_at = rt::time::unix_time_ms();
        world.kill(&host(id0));
        world.kill(&host(other));
        let elected = leader_since(lost_at, ELECTION_BOUND * 2).await;
        election_bound::check(lost_at, elected.map(|l| l.2), ELECTION_BOUND).unwrap();
        let (term1, id1, _) = elected.unwrap();
        assert!(term1 > term0 && id1 != id0 && id1 != other);
        let (w, done) = spawn_writer(
            &client,
            controllers.clone(),
            "k",
            5,
            Duration::from_millis(50),
            40,
        );
        done.await;
        assert_eq!(
            w.lock().unwrap().acked.len(),
            5,
            "three of five take writes"
        );
        // A third down: two of five cannot commit anything.
        world.kill(&host(id1));
        rt::time::sleep(Duration::from_secs(2)).await;
        let (m, m_done) = spawn_writer(
            &client,
            controllers.clone(),
            "minority",
            3,
            Duration::from_millis(50),
            3,
        );
        m_done.await;
        let acked: Vec<String> = m.lock().unwrap().acked.keys().cloned().collect();
        minority_refuses::check(&acked).unwrap();
        // One back: a majority again, and nothing acknowledged was lost.
        world.restart(&host(id0));
        let (w2, done2) = spawn_writer(
            &client,
            controllers.clone(),
            "after",
            3,
            Duration::from_millis(50),
            40,
        );
        done2.await;
        let mut all = w.lock().unwrap().clone();
        let w2 = w2.lock().unwrap().clone();
        assert_eq!(w2.acked.len(), 3, "writes resume with a majority");
        all.acked.extend(w2.acked);
        all.attempted.extend(w2.attempted);
        all.attempted.extend(m.lock().unwrap().attempted.clone());
        check_state(&s, &client, &all).await;
    });
}
