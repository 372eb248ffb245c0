//! The simulated world: hosts (madsim nodes with IPs), kill/restart, partitions, clogged links
//! and disk faults, plus the seed plumbing every simulation test uses.
//!
//! Invariant: everything that happens in a [`World`] is a function of its seed. A failing run
//! prints `MADSIM_TEST_SEED=<seed>` and replays exactly with that variable set.

use std::future::Future;
use std::net::IpAddr;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle, Runtime};

use super::disk::{DiskFaults, DiskStats, SimDisk};

/// One simulated machine: its own IP, disk and processes.
#[derive(Clone)]
pub struct Host {
    name: String,
    ip: IpAddr,
    node: NodeHandle,
}

impl Host {
    /// The name given at creation.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host's IP address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Spawns a `Send` task on this host (e.g. a client driving a workload from it).
    pub fn spawn<F>(&self, future: F) -> madsim::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.node.spawn(future)
    }
}

/// The supervisor's view of a running simulation.
#[derive(Clone)]
pub struct World {
    handle: Handle,
    seed: u64,
}

/// Seeds to run: `MADSIM_TEST_SEED` (and `MADSIM_TEST_NUM - 1` consecutive seeds after it) when
/// set, else `defaults` (the fixed CI list).
pub fn seeds_from_env(defaults: &[u64]) -> Vec<u64> {
    let num: u64 = std::env::var("MADSIM_TEST_NUM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1);
    match std::env::var("MADSIM_TEST_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(seed) => (seed..seed + num).collect(),
        None if num > 1 => {
            let start = defaults.first().copied().unwrap_or(1);
            (start..start + num).collect()
        }
        None => defaults.to_vec(),
    }
}

/// Stack of the thread each simulation of [`run_seeds`] and [`World::check_determinism`] runs
/// on. madsim polls every task of every simulated host on that one thread, and debug builds keep
/// whole async state machines on the stack: the test harness's 2 MiB overflowed in a fresh CI
/// build of `restart_a_follower_mid_snapshot` (4 MiB sufficed; this leaves room to grow).
const SIM_THREAD_STACK_BYTES: usize = 64 << 20;

/// Runs `f` on a fresh thread with [`SIM_THREAD_STACK_BYTES`] of stack, named after the caller
/// (the test), and re-raises its panic. A fresh thread also gets fresh std hash keys, which
/// madsim seeds from the simulation seed (D53), so every run starts like a replay does.
fn on_sim_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let name = std::thread::current().name().unwrap_or("sim").to_string();
    std::thread::scope(|s| {
        let thread = std::thread::Builder::new()
            .name(name)
            .stack_size(SIM_THREAD_STACK_BYTES)
            .spawn_scoped(s, f)
            .expect("cannot start the simulation thread");
        match thread.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Runs `scenario` once per seed from [`seeds_from_env`]`(defaults)`, each on a fresh thread.
pub fn run_seeds<F, Fut>(defaults: &[u64], scenario: F)
where
    F: Fn(World) -> Fut + Sync,
    Fut: Future<Output = ()>,
{
    for seed in seeds_from_env(defaults) {
        on_sim_thread(|| World::run_seed(seed, &scenario));
    }
}

impl World {
    /// Runs `scenario` as the supervisor of a fresh simulation seeded with `seed`.
    /// On panic prints `MADSIM_TEST_SEED=<seed>` and re-raises.
    pub fn run_seed<T, F, Fut>(seed: u64, scenario: F) -> T
    where
        F: FnOnce(World) -> Fut,
        Fut: Future<Output = T>,
    {
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut rt = Runtime::with_seed_and_config(seed, madsim::Config::default());
            rt.add_simulator::<SimDisk>();
            if let Some(limit) = std::env::var("MADSIM_TEST_TIME_LIMIT")
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
            {
                rt.set_time_limit(Duration::from_secs_f64(limit));
            }
            let world = World {
                handle: rt.handle().clone(),
                seed,
            };
            rt.block_on(scenario(world))
        }));
        match result {
            Ok(v) => v,
            Err(panic) => {
                eprintln!("MADSIM_TEST_SEED={seed}");
                eprintln!("note: run with `MADSIM_TEST_SEED={seed}` to reproduce this failure");
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// Runs `scenario` twice with the same seed and asserts both runs return the same trace.
    ///
    /// Each run gets a fresh thread: std seeds its HashMap keys once per thread, so a second
    /// run on the same thread iterates hash maps (madsim's own included) in another order and
    /// drifts from the first for reasons that are not the code under test.
    pub fn check_determinism<F, Fut, T>(seed: u64, scenario: F) -> T
    where
        F: Fn(World) -> Fut + Sync,
        Fut: Future<Output = T>,
        T: PartialEq + std::fmt::Debug + Send,
    {
        let run = || on_sim_thread(|| World::run_seed(seed, &scenario));
        let first = run();
        let second = run();
        if first != second {
            eprintln!("MADSIM_TEST_SEED={seed}");
            panic!("non-deterministic simulation for seed {seed}:\nfirst:  {first:?}\nsecond: {second:?}");
        }
        first
    }

    /// The seed of this simulation.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Creates a host with `ip` whose processes start by running `init` — again after every
    /// [`restart`](World::restart). `init` need not produce a `Send` future.
    pub fn create_host<F, Fut>(&self, name: &str, ip: IpAddr, init: F) -> Host
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let node = self
            .handle
            .create_node()
            .name(name)
            .ip(ip)
            .init(init)
            .build();
        Host {
            name: name.to_string(),
            ip,
            node,
        }
    }

    /// Creates a host with no initial process (tasks are spawned on it with [`Host::spawn`]).
    pub fn create_idle_host(&self, name: &str, ip: IpAddr) -> Host {
        let node = self.handle.create_node().name(name).ip(ip).build();
        Host {
            name: name.to_string(),
            ip,
            node,
        }
    }

    /// Power-fails the host: its tasks stop, its connections break, its disk crashes.
    pub fn kill(&self, host: &Host) {
        self.handle.kill(host.node.id());
    }

    /// Power-fails the host and boots it again (its `init` runs anew on the crashed disk).
    pub fn restart(&self, host: &Host) {
        // madsim's own `restart` does not reset the node's simulators (network, disk); `kill`
        // does. Kill first, so a restart is a real power cycle.
        self.handle.kill(host.node.id());
        self.handle.restart(host.node.id());
    }

    /// Cuts every link between a host in `a` and a host in `b`, both directions.
    pub fn partition(&self, a: &[&Host], b: &[&Host]) {
        let net = NetSim::current();
        for x in a {
            for y in b {
                net.clog_link(x.node.id(), y.node.id());
                net.clog_link(y.node.id(), x.node.id());
            }
        }
    }

    /// Restores every link between a host in `a` and a host in `b`.
    pub fn heal(&self, a: &[&Host], b: &[&Host]) {
        let net = NetSim::current();
        for x in a {
            for y in b {
                net.unclog_link(x.node.id(), y.node.id());
                net.unclog_link(y.node.id(), x.node.id());
            }
        }
    }

    /// Holds every packet from `src` to `dst` until [`unclog_link`](World::unclog_link).
    pub fn clog_link(&self, src: &Host, dst: &Host) {
        NetSim::current().clog_link(src.node.id(), dst.node.id());
    }

    /// Releases a clogged link.
    pub fn unclog_link(&self, src: &Host, dst: &Host) {
        NetSim::current().unclog_link(src.node.id(), dst.node.id());
    }

    /// Isolates a host from everyone (both directions) until [`unclog_host`](World::unclog_host).
    pub fn clog_host(&self, host: &Host) {
        NetSim::current().clog_node(host.node.id());
    }

    /// Reconnects an isolated host.
    pub fn unclog_host(&self, host: &Host) {
        NetSim::current().unclog_node(host.node.id());
    }

    /// Sets the one-way latency range and packet loss of the whole network.
    pub fn set_network(&self, latency: Range<Duration>, packet_loss: f64) {
        NetSim::current().update_config(|c| {
            c.send_latency = latency;
            c.packet_loss_rate = packet_loss;
        });
    }

    /// Sets the disk faults of `host`.
    pub fn set_disk_faults(&self, host: &Host, faults: DiskFaults) {
        SimDisk::current().set_faults(host.node.id(), faults);
    }

    /// Removes everything under `dir` on `host`'s disk (an operator wiping a directory of a
    /// stopped host). Kill the host first.
    pub fn wipe_dir(&self, host: &Host, dir: &std::path::Path) {
        SimDisk::current().wipe_dir(host.node.id(), dir);
    }

    /// Files under `dir` on `host`'s disk, with their sizes.
    pub fn files_under(
        &self,
        host: &Host,
        dir: &std::path::Path,
    ) -> Vec<(std::path::PathBuf, u64)> {
        SimDisk::current().files_under(host.node.id(), dir)
    }

    /// Flips bits of one byte of a file on `host`'s disk, synced contents included.
    pub fn flip_byte(&self, host: &Host, path: &std::path::Path, offset: u64, mask: u8) -> bool {
        SimDisk::current().flip_byte(host.node.id(), path, offset, mask)
    }

    /// What `host`'s disk has done so far.
    pub fn disk_stats(&self, host: &Host) -> DiskStats {
        SimDisk::current().stats(host.node.id())
    }
}
