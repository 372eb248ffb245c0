//! The storage model test under madsim with SimDisk: real power-loss semantics on every
//! crash (unsynced writes lost or torn, unsynced directory entries reverted) and, in the second
//! scenario, running faults — bit flips on read, EIO on read/write/sync, and a full disk. Each
//! fault must be reported as an error or survived; never silently wrong data.
#![cfg(madsim)]

mod common;

use std::path::PathBuf;

use rt::rand::Rng;
use rt::sim::{seeds_from_env, DiskFaults, SimDisk, World};

/// The CI seeds. 1 and 5 found lost-data bugs (a transient read fault marked a chunk corrupt and
/// the next checkpoint dropped its log records); 142 found EIO during recovery being taken
/// for corruption. They stay as regression cases.
const SEEDS: &[u64] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 142];

fn dir() -> PathBuf {
    PathBuf::from("/porpoise/data/datanode1")
}

#[test]
fn acknowledged_rows_survive_power_loss() {
    for seed in seeds_from_env(SEEDS) {
        World::run_seed(seed, |_world: World| async move {
            let disk = SimDisk::current();
            disk.set_faults_here(DiskFaults {
                tear_on_crash: true,
                ..DiskFaults::default()
            });
            let ops = common::gen_ops(&mut Rng::new(), 150);
            let out =
                common::run_model(dir(), ops, || SimDisk::current().crash_here(), false).await;
            assert_eq!(out.ops_failed, 0);
            let stats = disk.stats_here();
            assert!(
                stats.crashes as usize > out.reopens,
                "every reopen was a power loss"
            );
        });
    }
}

#[test]
fn disk_faults_are_reported_or_survived_never_served() {
    let mut failed_ops = 0;
    let mut injected = 0;
    for seed in seeds_from_env(SEEDS) {
        let (f, i) = World::run_seed(seed, |_world: World| async move {
            let disk = SimDisk::current();
            disk.set_faults_here(DiskFaults {
                read_bitflip_chance: 0.02,
                read_eio_chance: 0.01,
                write_eio_chance: 0.01,
                sync_eio_chance: 0.01,
                capacity_bytes: None,
                tear_on_crash: true,
                faults_max: 12,
            });
            let ops = common::gen_ops(&mut Rng::new(), 150);
            let out = common::run_model(dir(), ops, || SimDisk::current().crash_here(), true).await;
            let s = disk.stats_here();
            (out.ops_failed, s.bitflips + s.eio)
        });
        failed_ops += f;
        injected += i;
    }
    assert!(
        injected > 0,
        "no fault was injected over the seeds: the test tests nothing"
    );
    assert!(
        failed_ops > 0,
        "faults were injected but no operation ever reported one"
    );
}

#[test]
fn a_full_disk_fails_writes_cleanly() {
    for seed in seeds_from_env(&[1, 2, 3]) {
        World::run_seed(seed, |_world: World| async move {
            let disk = SimDisk::current();
            disk.set_faults_here(DiskFaults {
                capacity_bytes: Some(160 << 10),
                ..DiskFaults::default()
            });
            let mut rng = Rng::new();
            let ops: Vec<common::Op> = (0..200)
                .map(|_| common::Op::Append {
                    chunk: rng.below(common::CHUNKS),
                    rows: 40,
                })
                .collect();
            let out = common::run_model(dir(), ops, || SimDisk::current().crash_here(), true).await;
            assert!(disk.stats_here().full > 0, "the disk never filled up");
            assert!(out.ops_failed > 0);
        });
    }
}
