//! Property test: the storage engine against an in-memory reference on the real runtime
//! (glommio, O_DIRECT files). Crash-and-reopen here drops and reopens the engine; power-loss
//! semantics are exercised by `model_sim.rs` under madsim's SimDisk.
#![cfg(not(madsim))]

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use rt::rand::Rng;

static CASE: AtomicUsize = AtomicUsize::new(0);

fn run(seed: u64, n: usize) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "storage-model-{}-{}",
        std::process::id(),
        CASE.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.clone();
    rt::Runtime::new("model")
        .run(move |_s: rt::shard::Shard<()>| {
            let d = d.clone();
            async move {
                let ops = common::gen_ops(&mut Rng::with_seed(seed), n);
                let out = common::run_model(d, ops, || {}, false).await;
                assert_eq!(out.ops_failed, 0);
            }
        })
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_reference(seed in any::<u64>(), n in 1usize..120) {
        run(seed, n);
    }
}

#[test]
fn long_sequence() {
    run(42, 600);
}
