//! The cluster stores data, as the tutorial's user meets it: three controllers and three data
//! nodes on 127.0.0.80–82, each host from its own copy of `configs/cluster/<host>`, the data
//! nodes started with the command line an agent uses.
//!
//! - Step 5 verbatim on `datanode1`; the leader's `getClusterChunksStatus()` shows every
//!   partition on two distinct hosts; `datanode2` counts 1,210,000; DDL from any data node.
//! - `kill -9` of the coordinator in the middle of an append leaves all of it or none of it, on
//!   every replica, once the killed node is back.
//! - Writes go on with a data node killed, and its replicas catch up when it returns; a damaged
//!   block is answered from another replica and repaired from it; the Rust client's session
//!   carries on when the data node under it is killed.
#![cfg(not(madsim))]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::*;

fn wait_for(what: &str, secs: u64, ok: impl FnMut() -> bool) {
    wait_for_showing(what, secs, String::new, ok)
}

/// [`wait_for`], naming what it last saw when it gives up.
fn wait_for_showing(
    what: &str,
    secs: u64,
    seen: impl Fn() -> String,
    mut ok: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last seen: {}",
            seen()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn datanode_addr(i: usize) -> SocketAddr {
    addr(IPS[i - 1], 8802)
}

/// The tests share the tutorial's addresses: one cluster at a time.
static ONE_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_cluster() -> std::sync::MutexGuard<'static, ()> {
    let guard = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let mut addrs: Vec<SocketAddr> = IPS.iter().map(|ip| addr(ip, 8800)).collect();
    addrs.extend((1..=3).map(datanode_addr));
    wait_ports_free(&addrs);
    guard
}

/// Starts the tutorial's controllers and data nodes; waits until the leader sees every data
/// node live. Returns the processes (controllers, then data nodes) and the leader's address.
fn start_cluster(root: &Path, all: &[SocketAddr]) -> (Vec<Proc>, Vec<Option<Proc>>, SocketAddr) {
    let ctls: Vec<Proc> = HOSTS
        .iter()
        .map(|h| start_controller(&root.join(h)))
        .collect();
    let dns: Vec<Option<Proc>> = HOSTS
        .iter()
        .enumerate()
        .map(|(i, h)| Some(start_datanode(&root.join(h), i + 1)))
        .collect();
    let (_, leader, _) = agreed_leader(all);
    wait_for("every data node to be live", 30, || {
        http(leader, "GET", "/nodes", "").is_some_and(|(_, b)| {
            (1..=3).all(|i| b.contains(&format!("datanode{i},{},8802,DataNode,true", IPS[i - 1])))
        })
    });
    (ctls, dns, leader)
}

/// The JSON values of column `name` in a table answer, as raw strings.
fn column(json: &str, name: &str) -> Vec<String> {
    let key = format!("{{\"name\":\"{name}\"");
    let at = json
        .find(&key)
        .unwrap_or_else(|| panic!("no column {name} in {json}"));
    let rest = &json[at..];
    let v = rest.find("\"value\":[").unwrap() + 9;
    let end = rest[v..].find(']').unwrap();
    let body = &rest[v..v + end];
    if body.starts_with('"') {
        // Strings may hold commas: split between quoted values.
        body.trim_matches('"')
            .split("\",\"")
            .map(str::to_string)
            .collect()
    } else {
        body.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

fn scalar(json: &str) -> String {
    let at = json
        .find("\"value\":")
        .unwrap_or_else(|| panic!("no value in {json}"))
        + 8;
    json[at..]
        .split(['}', ','])
        .next()
        .unwrap()
        .trim_matches('"')
        .to_string()
}

fn script(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../lang/tests/scripts/{name}")),
    )
    .unwrap()
}

/// One data node's `chunk → (version, rows, transaction holding it prepared or 0)`.
type Report = BTreeMap<u64, (u64, u64, u64)>;

/// Each data node's report (`None`: it did not answer).
fn reports() -> Vec<Option<Report>> {
    (1..=3)
        .map(|i| {
            let (_, body) = http(datanode_addr(i), "GET", "/chunks", "")?;
            Some(
                body.lines()
                    .map(|l| {
                        let f: Vec<u64> = l.split(',').map(|x| x.parse().unwrap()).collect();
                        (f[0], (f[1], f[2], f[3]))
                    })
                    .collect(),
            )
        })
        .collect()
}

const LOGIN: &str = "login(\"admin\", \"123456\")\n";
const COUNT: &str = "exec count(*) from loadTable(\"dfs://testDB\", \"testTB\")";

#[test]
fn step_5_on_datanode1_puts_each_partition_on_two_hosts_and_datanode2_counts_it() {
    let _one = one_cluster();
    let (root, all) = tutorial_hosts("dfs-step5");
    let (mut _ctls, _dns, leader) = start_cluster(&root, &all);

    // Step 5, then (in its session) the rows read back in the order they were appended: the
    // append crosses several prepare calls per replica, sent at once.
    let out = execute(
        datanode_addr(1),
        &format!(
            "{}\nr = select SecurityID, DateTime from loadTable(dbName, tbName)\n\
             sum(string(r.SecurityID) != t.SecurityID) + sum(r.DateTime != t.DateTime)",
            script("tutorial_step5.dos")
        ),
    );
    assert!(out.contains("\"ok\":true"), "{out}");
    assert_eq!(scalar(&out), "0", "rows out of order: {out}");

    // On the leader controller, as in DolphinDB: every chunk on two distinct hosts.
    let status = execute(leader, &format!("{LOGIN}getClusterChunksStatus()"));
    let replicas = column(&status, "replicas");
    assert!(!replicas.is_empty(), "{status}");
    for r in &replicas {
        let hosts: std::collections::BTreeSet<&str> = r
            .split(',')
            .map(|rep| rep.split(':').next().unwrap())
            .collect();
        assert_eq!(
            hosts.len(),
            2,
            "two distinct data nodes (one per host): {r}"
        );
    }
    assert!(column(&status, "state").iter().all(|s| s == "COMPLETE"));
    // Named as DolphinDB names it: the partition's date, not its internal key.
    assert_eq!(
        column(&status, "file"),
        ["/testDB/20230108/testTB"],
        "{status}"
    );
    // Each replica at the version its data node reported (`alias:version:0`): the metadata's.
    let versions = column(&status, "version");
    for (r, v) in replicas.iter().zip(&versions) {
        for rep in r.split(',') {
            assert_eq!(rep.split(':').nth(1), Some(v.as_str()), "{r}");
        }
    }

    let q = execute(
        datanode_addr(2),
        &format!("{LOGIN}select count(*) from loadTable(\"dfs://testDB\", \"testTB\") group by date(DateTime)"),
    );
    assert_eq!(column(&q, "count"), ["1210000"], "{q}");
    // Both replicas hold every row, at the version the metadata records.
    let versions = column(&status, "version");
    let r = reports();
    for (i, rep) in replicas.iter().enumerate() {
        for alias in rep.split(',').map(|x| x.split(':').next().unwrap()) {
            let n: usize = alias.trim_start_matches("datanode").parse().unwrap();
            let held = r[n - 1].as_ref().unwrap();
            let (version, rows, txn) = held.values().next().copied().unwrap();
            assert_eq!(txn, 0, "no transaction left prepared");
            assert_eq!(version.to_string(), versions[i]);
            assert_eq!(rows, 1_210_000, "{alias}");
        }
    }

    // getChunksMeta on each data node lists the chunks it holds: two replicas in all, at the
    // metadata's version; a path pattern filters them.
    let mut held = 0;
    for i in 1..=3 {
        let meta = execute(datanode_addr(i), &format!("{LOGIN}getChunksMeta()"));
        let paths = column(&meta, "dfsPath");
        assert!(paths.iter().all(|p| p.ends_with("/testTB")), "{meta}");
        assert!(
            column(&meta, "version").iter().all(|v| *v == versions[0]),
            "{meta}"
        );
        let filtered = execute(
            datanode_addr(i),
            &format!("{LOGIN}getChunksMeta(\"%testTB\")"),
        );
        assert_eq!(column(&filtered, "dfsPath").len(), paths.len());
        // getTabletsMeta: the same chunks, by partition path and table, with their rows.
        let tablets = execute(
            datanode_addr(i),
            &format!("{LOGIN}getTabletsMeta(\"/testDB/%\", `testTB, true)"),
        );
        let rows: Vec<String> = column(&tablets, "rowNum");
        assert_eq!(rows.len(), paths.len(), "{tablets}");
        assert!(rows.iter().all(|r| r == "1210000"), "{tablets}");
        assert!(column(&tablets, "tableName").iter().all(|t| t == "testTB"));
        assert_eq!(
            column(&tablets, "diskUsage").len(),
            paths.len(),
            "{tablets}"
        );
        let none = execute(
            datanode_addr(i),
            &format!("{LOGIN}getChunksMeta(\"%nosuch%\")"),
        );
        assert!(column(&none, "dfsPath").is_empty(), "{none}");
        held += paths.len();
    }
    assert_eq!(held, 2, "dfsReplicationFactor=2");

    // DDL and appends from any data node, across partitions; every node sees every row.
    let ddl = format!(
        "{LOGIN}db = database(\"dfs://days\", VALUE, 2024.01.01..2024.01.05)\n\
         t = table(2024.01.01 + (0..9999) % 5 as d, 0..9999 as id, take(`A`B`C, 10000) as sym)\n\
         pt = db.createPartitionedTable(t, `pt, `d)\n\
         pt.append!(t)\n\
         exec count(*) from loadTable(\"dfs://days\", `pt) where d = 2024.01.03"
    );
    assert_eq!(scalar(&execute(datanode_addr(3), &ddl)), "2000");
    let more = format!(
        "{LOGIN}tableInsert(loadTable(\"dfs://days\", `pt), table(2024.01.05 2024.01.06 as d, 1 2 as id, `X`Y as sym))"
    );
    assert_eq!(scalar(&execute(datanode_addr(2), &more)), "2");
    for i in 1..=3 {
        let sum = execute(
            datanode_addr(i),
            &format!("{LOGIN}exec sum(id) from loadTable(\"dfs://days\", `pt)"),
        );
        assert_eq!(
            scalar(&sum),
            (9999 * 10000 / 2 + 3).to_string(),
            "datanode{i}"
        );
    }
    let again = execute(
        datanode_addr(1),
        &format!("{LOGIN}db = database(\"dfs://days\")\ndb.createPartitionedTable(table(1:0, `d`id`sym, [DATE, INT, SYMBOL]), `pt, `d)"),
    );
    assert!(again.contains("already exists"), "{again}");
    let dbs = execute(
        datanode_addr(1),
        &format!("{LOGIN}getClusterDFSDatabases()"),
    );
    assert!(
        dbs.contains("dfs://days") && dbs.contains("dfs://testDB"),
        "{dbs}"
    );
    // A compute node stores nothing: its appends are forwarded to a data node, which
    // coordinates them; one larger than a prepare call goes in parts, as one transaction.
    let _compute = start_computenode(&root.join(HOSTS[0]), 1);
    let compute = addr(IPS[0], 8803);
    wait_for("computenode1 to log in", 30, || {
        http(compute, "POST", "/api/execute", LOGIN).is_some_and(|(_, b)| b.contains("\"ok\":true"))
    });
    let big = format!(
        "{LOGIN}n = 1500000\n\
         t = table(take(2024.01.01..2024.01.05, n) as d, 0..(n - 1) as id, take(`A`B, n) as sym)\n\
         loadTable(\"dfs://days\", `pt).append!(t)\n\
         exec count(*) from loadTable(\"dfs://days\", `pt)"
    );
    assert_eq!(
        scalar(&execute(compute, &big)),
        (10002 + 1_500_000).to_string()
    );
    assert!(
        !std::fs::read_dir(root.join(HOSTS[0]).join("data/computenode1"))
            .map(|d| d.flatten().any(|e| e.file_name() == "storage"))
            .unwrap_or(false),
        "a compute node has no chunk storage"
    );
    let wrong = execute(
        compute,
        &format!("{LOGIN}loadTable(\"dfs://days\", `pt).append!(table(1 2 as x))"),
    );
    assert!(wrong.contains("\"ok\":false"), "{wrong}");
    // addColumn through the leader: existing rows read nulls in it, on every node; appends
    // of the new width go to the old chunks (each replica widens its chunk first) and to new
    // partitions.
    execute(
        datanode_addr(3),
        &format!("{LOGIN}addColumn(loadTable(\"dfs://days\", `pt), `px, DOUBLE)"),
    );
    let wide = format!(
        "{LOGIN}pt = loadTable(\"dfs://days\", `pt)\n\
         tableInsert(pt, table(2024.01.02 2024.01.07 as d, 5 6 as id, `P`Q as sym, 1.5 2.5 as px))\n\
         exec count(*) from pt"
    );
    assert_eq!(scalar(&execute(datanode_addr(1), &wide)), "1510004");
    for i in 1..=3 {
        let q = execute(
            datanode_addr(i),
            &format!("{LOGIN}select count(*) as n, sum(px) as s from loadTable(\"dfs://days\", `pt) where isNull(px)"),
        );
        assert_eq!(
            column(&q, "n"),
            [(1_510_002).to_string()],
            "datanode{i}: {q}"
        );
        let q = execute(
            datanode_addr(i),
            &format!("{LOGIN}exec sum(px) from loadTable(\"dfs://days\", `pt)"),
        );
        assert_eq!(scalar(&q), "4", "datanode{i}: {q}");
    }
    let dup = execute(
        datanode_addr(2),
        &format!("{LOGIN}addColumn(loadTable(\"dfs://days\", `pt), `PX, INT)"),
    );
    assert!(dup.contains("already exists"), "{dup}");

    // update and delete on the dfs table, each one transaction rewriting the partitions it
    // touches on both replicas; every node reads the result.
    let run = |i: usize, q: &str| {
        execute(
            datanode_addr(i),
            &format!("{LOGIN}pt = loadTable(\"dfs://days\", `pt)\n{q}"),
        )
    };
    let done = |i: usize, q: &str| {
        let out = run(i, q);
        assert!(out.contains("\"ok\":true"), "{q}: {out}");
    };
    let on = |i: usize, q: &str| scalar(&run(i, q));
    done(2, "update pt set px = 2.0 where sym = \"X\"");
    done(3, "delete from pt where sym = \"Q\"");
    // On the compute node: forwarded to a data node, which coordinates the rewrite.
    let on_compute = execute(
        compute,
        &format!(
            "{LOGIN}pt = loadTable(\"dfs://days\", `pt)\nupdate pt set px = 7.0 where sym = \"P\""
        ),
    );
    assert!(on_compute.contains("\"ok\":true"), "{on_compute}");
    let doomed: u64 = on(1, "exec count(*) from pt where sym = \"B\", d = 2024.01.01")
        .parse()
        .unwrap();
    assert!(doomed > 100_000, "{doomed}");
    done(1, "delete from pt where sym = \"B\", d = 2024.01.01");
    for i in 1..=3 {
        assert_eq!(on(i, "exec sum(px) from pt"), "9", "datanode{i}");
        assert_eq!(
            on(i, "exec count(*) from pt"),
            (1_510_003 - doomed).to_string(),
            "datanode{i}"
        );
        assert_eq!(
            on(i, "exec count(*) from pt where sym = \"B\", d = 2024.01.01"),
            "0"
        );
    }
    let refused = execute(
        datanode_addr(1),
        &format!(
            "{LOGIN}pt = loadTable(\"dfs://days\", `pt)\nupdate pt set d = 2024.02.01 where id = 1"
        ),
    );
    assert!(refused.contains("cannot be updated"), "{refused}");
    // The replicas of each chunk agree on version and rows.
    let mut seen: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for m in reports().into_iter().flatten() {
        for (chunk, (version, rows, txn)) in m {
            assert_eq!(txn, 0, "chunk {chunk} left prepared");
            seen.entry(chunk).or_default().push((version, rows));
        }
    }
    for (chunk, replicas) in &seen {
        assert!(
            replicas.windows(2).all(|w| w[0] == w[1]),
            "chunk {chunk}: {replicas:?}"
        );
    }
    // atomic='CHUNK': concurrent appends to one partition from two coordinators all land (a
    // chunk another transaction holds is tried again); a bad level is refused.
    let bad = execute(
        datanode_addr(1),
        &format!("{LOGIN}database(\"dfs://bad\", VALUE, 1 2, atomic='ALL')"),
    );
    assert!(bad.contains("'TRANS' or 'CHUNK'"), "{bad}");
    execute(
        datanode_addr(1),
        &format!(
            "{LOGIN}db = database(\"dfs://chunky\", VALUE, 1 2, engine='OLAP', atomic='CHUNK')\n\
                  db.createPartitionedTable(table(1:0, `k`v, [INT, LONG]), `pt, `k)"
        ),
    );
    let writers: Vec<_> = (1..=2usize)
        .map(|i| {
            std::thread::spawn(move || {
                (0..4)
                    .map(|_| {
                        execute(
                            datanode_addr(i),
                            &format!("{LOGIN}tableInsert(loadTable(\"dfs://chunky\", `pt), table(take(1, 300000) as k, 0..299999 as v))"),
                        )
                    })
                    .collect::<Vec<String>>()
            })
        })
        .collect();
    for w in writers {
        for out in w.join().unwrap() {
            assert_eq!(scalar(&out), "300000", "every append lands: {out}");
        }
    }
    assert_eq!(
        scalar(&execute(
            datanode_addr(3),
            &format!("{LOGIN}exec count(*) from loadTable(\"dfs://chunky\", `pt)")
        )),
        "2400000"
    );
    // schema(db) shows the level; setAtomicLevel changes it, from any node.
    let level = |i: usize| {
        scalar(&execute(
            datanode_addr(i),
            &format!("{LOGIN}schema(database(\"dfs://chunky\"))[\"atomic\"]"),
        ))
    };
    assert_eq!(level(3), "CHUNK");
    execute(
        datanode_addr(3),
        &format!("{LOGIN}setAtomicLevel(database(\"dfs://chunky\"), `TRANS)"),
    );
    assert_eq!(level(1), "TRANS");
    execute(
        datanode_addr(2),
        &format!("{LOGIN}dropDatabase(\"dfs://chunky\")"),
    );
    // dropPartition by value and dropTable, from another node than the one reading.
    execute(
        datanode_addr(1),
        &format!("{LOGIN}dropPartition(database(\"dfs://days\"), 2024.01.03 2024.01.06, `pt)"),
    );
    let left = execute(
        datanode_addr(3),
        &format!("{LOGIN}exec count(*) from loadTable(\"dfs://days\", `pt)"),
    );
    // The compute node's 1.5M rows were spread over the 5 days, 300 000 on the 3rd.
    assert_eq!(
        scalar(&left),
        (8001 + 1_200_000 + 2 - 1 - doomed).to_string(),
        "2000 + 300 000 + 1 rows dropped"
    );
    // By path, as DolphinDB names the partition (`/20240105`, a DATE as yyyyMMdd).
    let day5: u64 = scalar(&execute(
        datanode_addr(3),
        &format!("{LOGIN}exec count(*) from loadTable(\"dfs://days\", `pt) where d = 2024.01.05"),
    ))
    .parse()
    .unwrap();
    assert!(day5 > 0);
    execute(
        datanode_addr(2),
        &format!("{LOGIN}dropPartition(database(\"dfs://days\"), \"/20240105\", `pt)"),
    );
    let after: u64 = scalar(&execute(
        datanode_addr(1),
        &format!("{LOGIN}exec count(*) from loadTable(\"dfs://days\", `pt)"),
    ))
    .parse()
    .unwrap();
    assert_eq!(
        after + day5,
        scalar(&left).parse::<u64>().unwrap(),
        "the partition named by its DolphinDB path went"
    );
    execute(
        datanode_addr(2),
        &format!("{LOGIN}dropTable(database(\"dfs://days\"), `pt)"),
    );
    let gone = execute(
        datanode_addr(1),
        &format!("{LOGIN}existsTable(\"dfs://days\", `pt)"),
    );
    assert_eq!(scalar(&gone), "false");
    execute(
        datanode_addr(2),
        &format!("{LOGIN}dropDatabase(\"dfs://days\")"),
    );
    let gone = execute(
        datanode_addr(3),
        &format!("{LOGIN}existsDatabase(\"dfs://days\")"),
    );
    assert_eq!(scalar(&gone), "false");
    // Every transaction finished and every participant was told: the leader forgot them all
    // (the metadata does not grow with each append).
    wait_for("the leader to forget finished transactions", 30, || {
        http(leader, "GET", "/raft", "").is_some_and(|(_, b)| b.contains("\"transactions\":0"))
    });
    // The data nodes deleted the dropped chunks: only testDB's stay.
    wait_for("the dropped chunks' files to go", 30, || {
        reports()
            .iter()
            .map(|r| r.as_ref().map_or(usize::MAX, |m| m.len()))
            .sum::<usize>()
            == 2
    });

    // A new leader asks every data node for its chunks: the view still shows each replica's
    // version (from the new reports) after the old leader is gone.
    let old = ctls_index(leader);
    _ctls[old].0.kill().unwrap();
    let rest: Vec<SocketAddr> = all.iter().copied().filter(|a| *a != leader).collect();
    let (_, new_leader, _) = agreed_leader(&rest);
    wait_for("the new leader's view of the replicas", 60, || {
        let status = execute(new_leader, &format!("{LOGIN}getClusterChunksStatus()"));
        let r = column(&status, "replicas");
        r.len() == 1
            && r[0]
                .split(',')
                .all(|rep| rep.split(':').nth(1) == Some(versions[0].as_str()))
    });
}

/// The index in `HOSTS` of the controller at `addr`.
fn ctls_index(addr: SocketAddr) -> usize {
    IPS.iter()
        .position(|ip| addr.ip().to_string() == *ip)
        .unwrap()
}

#[test]
fn kill_9_of_the_coordinator_mid_append_leaves_all_or_none_on_every_replica() {
    let _one = one_cluster();
    let (root, all) = tutorial_hosts("dfs-kill");
    let (_ctls, mut dns, _leader) = start_cluster(&root, &all);
    // The tutorial's table, empty.
    let step5 = script("tutorial_step5.dos");
    let (create, append) = step5.split_at(step5.find("// simulate").unwrap());
    execute(datanode_addr(1), create);
    let loader = std::thread::spawn({
        let append = format!("{LOGIN}{append}");
        move || {
            http_within(
                datanode_addr(1),
                "POST",
                "/api/execute",
                &append,
                Duration::from_secs(300),
            )
        }
    });
    // Kill the coordinator once another participant has begun to prepare (its chunk exists,
    // empty), plus a short varying delay: between prepares, or after the decision.
    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !reports()[1..].iter().flatten().any(|m| !m.is_empty()) {
        assert!(Instant::now() < deadline, "no participant prepared");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(std::process::id() as u64 % 150));
    let kill_after_ms = started.elapsed().as_millis();
    let mut coordinator = dns[0].take().unwrap();
    coordinator.0.kill().unwrap();
    coordinator.0.wait().unwrap();
    // Usually the client's connection died with the node and it was told nothing; if the
    // append beat the kill, it must be there in full.
    let answered = loader.join().unwrap();
    let acked = answered
        .as_ref()
        .is_some_and(|(_, b)| b.contains("\"ok\":true"));

    // Reads elsewhere see none of it or all of it, never part.
    let count = || {
        let out = execute(datanode_addr(2), &format!("{LOGIN}{COUNT}"));
        out.contains("\"ok\":true").then(|| scalar(&out))
    };
    let seen = count().expect("datanode2 answers");
    assert!(seen == "0" || seen == "1210000", "{seen}");

    // Back, the killed node learns the outcome; the replicas agree with each other and with
    // what the cluster answers.
    dns[0] = Some(start_datanode(&root.join(HOSTS[0]), 1));
    let last = std::cell::RefCell::new(Vec::new());
    wait_for_showing(
        "the replicas to agree",
        90,
        || format!("{:?}", last.borrow()),
        || {
            let r = reports();
            *last.borrow_mut() = r.clone();
            if r.iter().any(Option::is_none) {
                return false;
            }
            let rows = |m: &Report| m.values().map(|v| v.1).sum::<u64>();
            // No replica still holds the transaction prepared: every one learned the outcome.
            if r.iter().flatten().any(|m| m.values().any(|v| v.2 != 0)) {
                return false;
            }
            let all_rows: Vec<u64> = r.iter().flatten().map(rows).collect();
            let total: u64 = all_rows.iter().sum();
            // Every replica holding a chunk at one version (those without rows at 0).
            let mut versions: BTreeMap<u64, std::collections::BTreeSet<u64>> = BTreeMap::new();
            for m in r.iter().flatten() {
                for (chunk, (version, rows, _)) in m {
                    if *rows > 0 {
                        versions.entry(*chunk).or_default().insert(*version);
                    }
                }
            }
            // RF 2: the rows are on exactly two nodes, or on none.
            (total == 0 || total == 2 * 1_210_000)
                && all_rows.iter().all(|n| *n == 0 || *n == 1_210_000)
                && versions.values().all(|v| v.len() == 1)
        },
    );
    let after = count().unwrap();
    eprintln!(
        "killed after {kill_after_ms} ms (answered: {acked}): {seen} rows seen, {after} after recovery"
    );
    assert!(after == "0" || after == "1210000", "{after}");
    if seen == "1210000" || acked {
        assert_eq!(after, "1210000", "a committed append stays");
    }
    if after == "0" {
        // Aborted because the leader learned the coordinator's run was gone (its restart's
        // report, or its heartbeats stopping), not by waiting out the abandon timeout.
        let logs: String = HOSTS
            .iter()
            .map(|h| {
                std::fs::read_to_string(root.join(h).join("log/controller.log")).unwrap_or_default()
            })
            .collect();
        assert!(
            logs.contains("event=txn_orphaned"),
            "no txn_orphaned in the controllers' logs"
        );
    }
}

/// Rows for days 2023.01.08–10 of the tutorial's table, `n` per day, Volume 1..n each day.
fn days_append(n: usize) -> String {
    format!(
        "{LOGIN}n = {n}\n\
         d = (2023.01.08T09:30:00 + 0..2 * 86400)\n\
         DateTime = take(d, 3 * n)\n\
         SecurityID = symbol(lpad(string(take(0..999, 3 * n)), 6, `0))\n\
         p = take(10.5, 3 * n)\n\
         Volume = int(take(1..n, 3 * n))\n\
         t = table(SecurityID, DateTime, p as PreClosePx, p as OpenPx, p as HighPx, p as LowPx, p as LastPx, Volume, p * Volume as Amount)\n\
         loadTable(\"dfs://testDB\", \"testTB\").append!(t)\n\
         size(t)"
    )
}

#[test]
fn writes_go_on_with_a_data_node_killed_and_its_replicas_catch_up_when_it_returns() {
    let _one = one_cluster();
    let (root, all) = tutorial_hosts("dfs-recover");
    let (_ctls, mut dns, leader) = start_cluster(&root, &all);
    let step5 = script("tutorial_step5.dos");
    let (create, _) = step5.split_at(step5.find("// simulate").unwrap());
    execute(datanode_addr(1), create);
    let append = |n: usize| {
        let out = execute(datanode_addr(1), &days_append(n));
        assert!(out.contains("\"ok\":true"), "the append failed: {out}");
    };
    // Three days, each on two of the three data nodes.
    append(1_000);
    let status = execute(leader, &format!("{LOGIN}getClusterChunksStatus()"));
    let on_three = column(&status, "replicas")
        .iter()
        .filter(|r| r.contains("datanode3"))
        .count();
    assert!(
        on_three > 0,
        "some partition has a replica on datanode3: {status}"
    );

    // kill -9 datanode3. An append at once meets a refused connection during prepare; one
    // after the leader marked the node down leaves it out from the start. Both commit.
    let mut dn3 = dns[2].take().unwrap();
    dn3.0.kill().unwrap();
    dn3.0.wait().unwrap();
    let started = Instant::now();
    append(2_000);
    let first_ms = started.elapsed().as_millis();
    wait_for("the leader to mark datanode3 down", 60, || {
        http(leader, "GET", "/nodes", "")
            .is_some_and(|(_, b)| b.contains("datanode3,127.0.0.82,8802,DataNode,false"))
    });
    append(3_000);
    // 3 days × (1,000 + 2,000 + 3,000) rows; Volume sums 1..n per day and append.
    let tri = |n: u64| n * (n + 1) / 2;
    let want_sum = 3 * (tri(1_000) + tri(2_000) + tri(3_000));
    let check = |node: usize| {
        let out = execute(
            datanode_addr(node),
            &format!("{LOGIN}select count(*) as n, sum(long(Volume)) as v from loadTable(\"dfs://testDB\", \"testTB\")"),
        );
        assert_eq!(column(&out, "n"), ["18000"], "{out}");
        assert_eq!(column(&out, "v"), [want_sum.to_string()], "{out}");
    };
    check(2);
    let status = execute(leader, &format!("{LOGIN}getClusterChunksStatus()"));
    let states = column(&status, "state");
    assert_eq!(
        states.iter().filter(|s| *s == "RECOVERING").count(),
        on_three,
        "every partition with a replica on datanode3 waits for it: {status}"
    );

    // Back: each stale replica catches up from a live one, only what it missed.
    let back = Instant::now();
    dns[2] = Some(start_datanode(&root.join(HOSTS[2]), 3));
    let last = std::cell::RefCell::new(String::new());
    wait_for_showing(
        "every chunk COMPLETE",
        90,
        || last.borrow().clone(),
        || {
            let s = execute(leader, &format!("{LOGIN}getClusterChunksStatus()"));
            let done = column(&s, "state").iter().all(|s| s == "COMPLETE");
            *last.borrow_mut() = s;
            done
        },
    );
    let recovered_ms = back.elapsed().as_millis();
    // Every replica of a chunk at one version with the same rows.
    let r = reports();
    let mut held: BTreeMap<u64, std::collections::BTreeSet<(u64, u64)>> = BTreeMap::new();
    for m in r.iter().flatten() {
        for (chunk, (version, rows, _)) in m {
            held.entry(*chunk).or_default().insert((*version, *rows));
        }
    }
    assert!(
        held.values().all(|v| v.len() == 1),
        "replicas disagree: {r:?}"
    );
    let tasks = execute(leader, &format!("{LOGIN}getRecoveryTaskStatus()"));
    let dest = column(&tasks, "Dest");
    assert_eq!(dest.len(), on_three, "{tasks}");
    assert!(dest.iter().all(|d| d == "datanode3"), "{tasks}");
    assert!(
        column(&tasks, "Status").iter().all(|s| s == "Finished"),
        "{tasks}"
    );
    assert!(
        column(&tasks, "IsIncrementalRecovery")
            .iter()
            .all(|s| s == "true"),
        "it held the first append's rows: {tasks}"
    );
    assert!(
        column(&tasks, "RowsDone").iter().all(|n| n == "5000"),
        "only the 5,000 rows it missed were copied: {tasks}"
    );

    // The recovered replicas serve reads: without datanode1, its partitions shared with
    // datanode3 are read there.
    let mut dn1 = dns[0].take().unwrap();
    dn1.0.kill().unwrap();
    dn1.0.wait().unwrap();
    check(2);
    eprintln!(
        "first degraded append: {first_ms} ms; recovery of {on_three} replicas: {recovered_ms} ms after the restart"
    );
}

/// Every `.seg` file under `dir`.
fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(segment_files(&p));
        } else if p.extension().is_some_and(|x| x == "seg") {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_damaged_block_is_answered_from_another_replica_and_repaired_from_it() {
    let _one = one_cluster();
    let (root, all) = tutorial_hosts("dfs-damage");
    let (_ctls, mut dns, leader) = start_cluster(&root, &all);
    // One partition of 70,000 rows, more than a block: its transaction writes a segment file.
    let out = execute(
        datanode_addr(1),
        &format!(
            "{LOGIN}db = database(\"dfs://bits\", VALUE, 1..2)\n\
             db.createPartitionedTable(table(1:0, `p`i, [INT, INT]), `t, `p)\n\
             tableInsert(loadTable(\"dfs://bits\", `t), table(take(1, 70000) as p, 1..70000 as i))"
        ),
    );
    assert!(out.contains("\"ok\":true"), "{out}");
    let status = execute(leader, &format!("{LOGIN}getClusterChunksStatus()"));
    let replicas = column(&status, "replicas");
    assert_eq!(replicas.len(), 1, "{status}");
    // The replica a coordinator with no history asks first: equal replicas take turns by
    // chunk id (`coordinator::query::assign`).
    let chunk = u64::from_str_radix(
        column(&status, "chunkId")[0].rsplit('-').next().unwrap(),
        16,
    )
    .unwrap();
    let aliases: Vec<&str> = replicas[0]
        .split(',')
        .filter_map(|r| r.split(':').next())
        .collect();
    let victim: usize = aliases[chunk as usize % aliases.len()]
        .strip_prefix("datanode")
        .and_then(|i| i.parse().ok())
        .expect("a datanode alias");
    let home = root.join(HOSTS[victim - 1]).join("data");
    let segs = segment_files(&home);
    assert!(
        !segs.is_empty(),
        "datanode{victim} wrote segments under {home:?}"
    );
    // Flip a bit in every 97 bytes of each of its segment files (sequences compress to a few
    // hundred bytes a column), so every column's blocks are hit; and restart it, so no cache
    // holds the good bytes.
    let mut dn = dns[victim - 1].take().unwrap();
    dn.0.kill().unwrap();
    dn.0.wait().unwrap();
    for s in &segs {
        let mut bytes = std::fs::read(s).unwrap();
        for at in (30..bytes.len()).step_by(97) {
            bytes[at] ^= 0x04;
        }
        std::fs::write(s, &bytes).unwrap();
    }
    dns[victim - 1] = Some(start_datanode(&root.join(HOSTS[victim - 1]), victim));
    wait_for("the damaged node to take a login", 60, || {
        http(
            datanode_addr(victim),
            "POST",
            "/api/execute",
            &format!("{LOGIN}1"),
        )
        .is_some_and(|(_, b)| b.contains("\"ok\":true"))
    });

    // Every answer is right, through every data node: the damaged copy is never served.
    // (The filter makes every replica read the rows: a count and a sum alone may come from
    // the blocks' statistics, without their payloads.)
    let sum = format!(
        "{LOGIN}select count(*) as n, sum(long(i)) as s from loadTable(\"dfs://bits\", `t) where i % 7 != 100"
    );
    for round in 0..3 {
        for i in 1..=3 {
            let out = execute(datanode_addr(i), &sum);
            assert_eq!(
                column(&out, "n"),
                ["70000"],
                "round {round} via datanode{i}: {out}"
            );
            assert_eq!(
                column(&out, "s"),
                [(70_000u64 * 70_001 / 2).to_string()],
                "round {round} via datanode{i}: {out}"
            );
        }
    }
    // Found on read, marked, and copied back whole from the good replica.
    wait_for("the damaged replica to be repaired", 60, || {
        let tasks = execute(leader, &format!("{LOGIN}getRecoveryTaskStatus()"));
        let dest = column(&tasks, "Dest");
        let done = column(&tasks, "Status");
        dest.iter()
            .zip(&done)
            .any(|(d, s)| *d == format!("datanode{victim}") && s == "Finished")
    });
    let tasks = execute(leader, &format!("{LOGIN}getRecoveryTaskStatus()"));
    assert_eq!(
        column(&tasks, "IsIncrementalRecovery"),
        ["false"],
        "a full copy: {tasks}"
    );
    let status = execute(leader, &format!("{LOGIN}getClusterChunksStatus()"));
    assert_eq!(column(&status, "state"), ["COMPLETE"], "{status}");
    let log = std::fs::read_to_string(
        root.join(HOSTS[victim - 1])
            .join(format!("log/datanode{victim}.log")),
    )
    .unwrap();
    assert!(log.contains("event=replica_damaged"), "{log}");
    // The repaired copy answers alone: with the other replica's node gone, reads go to it.
    let other: usize = (1..=3)
        .find(|i| *i != victim && replicas[0].contains(&format!("datanode{i}:")))
        .unwrap();
    let mut dn = dns[other - 1].take().unwrap();
    dn.0.kill().unwrap();
    dn.0.wait().unwrap();
    let out = execute(datanode_addr(victim), &sum);
    assert_eq!(column(&out, "n"), ["70000"], "{out}");
    assert_eq!(
        column(&out, "s"),
        [(70_000u64 * 70_001 / 2).to_string()],
        "{out}"
    );
}

#[test]
fn the_rust_client_carries_on_when_the_data_node_under_it_is_killed() {
    let _one = one_cluster();
    let (root, all) = tutorial_hosts("dfs-rust-client");
    let (_ctls, mut dns, _leader) = start_cluster(&root, &all);
    let step5 = script("tutorial_step5.dos");
    let (create, _) = step5.split_at(step5.find("// simulate").unwrap());
    let sites: Vec<String> = (2..=3).map(|i| datanode_addr(i).to_string()).collect();
    let sites: Vec<&str> = sites.iter().map(String::as_str).collect();
    let cfg = client::Config::new(&datanode_addr(1).to_string())
        .login("admin", "123456")
        .high_availability(&sites)
        .unwrap();
    let mut c = client::Client::connect(cfg).unwrap();
    c.run(create).unwrap();
    c.run(&days_append(1_000)).unwrap();
    assert_eq!(c.site().to_string(), datanode_addr(1).to_string());
    // kill -9 of the node under the session: the next script fails over and completes, once.
    let mut dn1 = dns[0].take().unwrap();
    dn1.0.kill().unwrap();
    dn1.0.wait().unwrap();
    c.run(&days_append(2_000)).unwrap();
    assert_ne!(c.site().to_string(), datanode_addr(1).to_string());
    let n = c.run(COUNT).unwrap();
    assert_eq!(
        value::display::format(&n),
        "9000",
        "3 days × (1,000 + 2,000)"
    );
}
