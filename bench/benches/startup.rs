//! Configuration resolution cost: parse + resolve the tutorial's controller.cfg, and check the
//! tutorial's cluster.cfg against every node of cluster.nodes (what a controller does at start).

use criterion::{criterion_group, criterion_main, Criterion};
use node::config;

fn resolve_configs(c: &mut Criterion) {
    let dir = bench::repo_root().join("configs/cluster/P1/config");
    let controller_text = std::fs::read_to_string(dir.join("controller.cfg")).unwrap();
    let nodes = config::load_nodes(&dir.join("cluster.nodes")).unwrap();
    let cluster_cfg = config::load_file(&dir.join("cluster.cfg")).unwrap();
    let home = std::path::Path::new("/srv/porpoise/data");

    c.bench_function("resolve controller.cfg", |b| {
        b.iter(|| {
            let f = config::kv::parse(
                config::Source::File("controller.cfg".into()),
                &controller_text,
            )
            .unwrap();
            config::resolve(home, &[f]).unwrap()
        })
    });
    c.bench_function("check cluster.cfg for all nodes", |b| {
        b.iter(|| node::launch::check_cluster_cfg(home, &nodes, &cluster_cfg).unwrap())
    });
}

criterion_group!(benches, resolve_configs);
criterion_main!(benches);
