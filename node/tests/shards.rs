//! Thread-per-core query work (ARCHITECTURE D88): the single node on two shards deals each
//! query task's partitions over both, and every query answers exactly what the same query over
//! the same rows in memory answers — aggregates, filters, partition-wise windows, whole rows —
//! with the second shard having done part of the work.
#![cfg(not(madsim))]

use lang::eval::{Interp, Value};

const QUERIES: &[&str] = &[
    "select count(*) from T group by date(ts)",
    "select first(px) as o, max(px) as h, min(px) as l, last(px) as c, sum(q) as v, avg(px) as a from T group by date(ts) as d, sym",
    "select count(*) as n, sum(q) as v from T where px > 50.0, sym in `A`C group by sym",
    "select sym, ts, mavg(px, 3) as m from T where q > 3 context by date(ts), sym",
    "select * from T where q between 2:5, sym != `B",
    "select top 7 sym, px from T where px < 20.0 order by px desc, ts",
];

/// Over one partition of 300,000 rows, which two shards compute as two row ranges.
const ONE_PARTITION: &[&str] = &[
    "select first(px) as o, max(px) as h, min(px) as l, last(px) as c, sum(q) as v, avg(px) as a, count(px) as n from T group by date(ts) as d, sym",
    "select first(px) as o, last(q) as c, max(q) as h from T where q > 1 group by sym",
    "select sum(px) as s, min(ts) as t from T",
];

fn script() -> String {
    // Six days of minute rows over three symbols, partitioned by day.
    "n = 6000\n\
     ts = 2023.01.02T09:30:00 + (0..(n-1)) * 87\n\
     sym = take(`A`B`C, n)\n\
     px = 10.0 + (0..(n-1)) % 97 * 1.0\n\
     q = (0..(n-1)) % 7\n\
     mem = table(ts, sym, px, q)\n\
     db = database(\"dfs://shards\", VALUE, 2023.01.01..2023.01.10)\n\
     pt = db.createPartitionedTable(mem, `pt, `ts)\n\
     pt.append!(mem)\n\
     pt = loadTable(\"dfs://shards\", `pt)\n\
     m = 300000\n\
     mem1 = table(2023.01.02T00:00:00 + (0..(m-1)) / 4 as ts, take(`A`B`C`D`E, m) as sym, 10.0 + (0..(m-1)) % 89 * 1.0 as px, (0..(m-1)) % 11 as q)\n\
     db1 = database(\"dfs://shards1p\", VALUE, 2023.01.01..2023.01.03)\n\
     p1 = db1.createPartitionedTable(mem1, `p1, `ts)\n\
     p1.append!(mem1)\n"
        .to_string()
}

fn same(a: &Value, b: &Value) -> bool {
    format!("{:?}", lang::wire::to_plain(a)) == format!("{:?}", lang::wire::to_plain(b))
}

#[test]
fn two_shards_answer_what_one_table_in_memory_answers() {
    let dir = std::env::temp_dir().join(format!("porpoise-shards-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.clone();
    let out = rt::Runtime::new("shards")
        .shards(2)
        .run(move |shard: rt::shard::Shard<node::workers::Work>| {
            let d = d.clone();
            async move {
                if shard.id() > 0 {
                    node::workers::serve(shard).await;
                    return None;
                }
                let workers = node::workers::Workers::start(shard);
                let cmdline = node::config::kv::parse(
                    node::config::Source::CommandLine,
                    "mode=single\nlocalSite=127.0.0.1:18998:shards1\n",
                )
                .unwrap();
                let settings = node::config::resolve(&d, &[cmdline]).unwrap();
                let log = node::log::Logger::silent("shards1");
                let one = node::single::open(&settings, &log, Default::default())
                    .await
                    .unwrap();
                one.datanode.use_workers(workers.clone());
                let mut it = Interp::new(1);
                it.dfs = Some(one.catalog.clone());
                it.run_as_admin();
                it.run(&script()).await.unwrap();
                let mut failures = Vec::new();
                // Rows in the cache engine, then in column files: the second shard reads the
                // cached rows it is sent, then decodes segment spans itself (twice: the second
                // pass from its own span cache).
                for pass in 0..3 {
                    if pass == 1 {
                        one.catalog.flush().await.unwrap();
                    }
                    let cases = QUERIES
                        .iter()
                        .map(|q| (q, "pt", "mem"))
                        .chain(ONE_PARTITION.iter().map(|q| (q, "p1", "mem1")));
                    for (q, dfs_name, mem_name) in cases {
                        let dfs = it.run(&q.replace('T', dfs_name)).await.unwrap();
                        let mem = it.run(&q.replace('T', mem_name)).await.unwrap();
                        if !same(&dfs, &mem) {
                            failures.push(format!("pass {pass}, {q}:\n dfs {dfs:?}\n mem {mem:?}"));
                        }
                    }
                }
                let sent = workers.tasks_sent();
                workers.stop().await;
                Some((failures, sent))
            }
        })
        .unwrap();
    let (failures, sent) = out.into_iter().flatten().next().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every query but the first (row counts from chunk metadata, not worth a message); each
    // one-partition query sends the second shard its row range.
    assert!(
        sent >= 3 * (QUERIES.len() + ONE_PARTITION.len() - 1) as u64,
        "the second shard ran {sent} tasks"
    );
}
