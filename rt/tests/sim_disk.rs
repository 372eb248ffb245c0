//! SimDisk's crash model for write-through files (`File::open_write_through`): each write is
//! durable when it completes, so a crash right after it keeps it, while an ordinary file's
//! unsynced writes are each kept, lost or torn by the seeded RNG.
#![cfg(madsim)]

use std::path::PathBuf;

use rt::disk::{self, File, OpenMode, ALIGN};
use rt::sim::{seeds_from_env, SimDisk, World};

const WRITES: u64 = 24;

async fn write_blocks(f: &File) {
    for i in 0..WRITES {
        f.write_at(i * ALIGN as u64, &vec![i as u8 + 1; ALIGN])
            .await
            .unwrap();
    }
}

/// How many of the blocks `write_blocks` wrote are still there.
async fn blocks_kept(path: &PathBuf) -> u64 {
    let f = File::open(path, OpenMode::Existing).await.unwrap();
    let bytes = f.read_at(0, WRITES as usize * ALIGN).await.unwrap();
    (0..WRITES)
        .filter(|&i| {
            let at = i as usize * ALIGN;
            bytes.len() >= at + ALIGN && bytes[at..at + ALIGN].iter().all(|&b| b == i as u8 + 1)
        })
        .count() as u64
}

#[test]
fn write_through_writes_survive_a_crash_without_sync() {
    for seed in seeds_from_env(&[1, 2, 3]) {
        World::run_seed(seed, |_world: World| async move {
            let dir = PathBuf::from("/porpoise/data/wt");
            disk::create_dir_all(&dir).await.unwrap();
            let (through, plain) = (dir.join("through"), dir.join("plain"));
            for p in [&through, &plain] {
                // The files themselves (their directory entries) are made durable first.
                File::open(p, OpenMode::CreateNew).await.unwrap();
            }
            disk::sync_dir(&dir).await.unwrap();

            let f = File::open_write_through(&through, OpenMode::Existing)
                .await
                .unwrap();
            write_blocks(&f).await;
            let g = File::open(&plain, OpenMode::Existing).await.unwrap();
            write_blocks(&g).await;
            SimDisk::current().crash_here();

            assert_eq!(blocks_kept(&through).await, WRITES, "every completed write");
            assert!(
                blocks_kept(&plain).await < WRITES,
                "an unsynced ordinary file loses some of {WRITES} writes (each kept 1 in 3)"
            );
        });
    }
}
