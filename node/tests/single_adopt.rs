//! A single node's data written before it became a one-node cluster (the `DFSMasterMeta.catalog`
//! of `lang::dfs`) is adopted at start: every database, table, partition and row is there,
//! appends go on through two-phase commit, and a restart does not adopt twice.
#![cfg(not(madsim))]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::cluster::{execute, http};
use node::config::{self, Source};

const SITE: &str = "127.0.0.1:18891:adopt1";

fn count(out: &str) -> String {
    let at = out.find("\"value\":").unwrap_or_else(|| panic!("{out}")) + 8;
    out[at..].split(['}', ',']).next().unwrap().to_string()
}

fn start(home: &std::path::Path) -> common::cluster::Proc {
    let child = std::process::Command::new(common::cluster::bin())
        .args(["-console", "0", "-mode", "single", "-home"])
        .arg(home)
        .args(["-localSite", SITE])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(home.join("stderr.txt")).unwrap())
        .spawn()
        .unwrap();
    let addr = "127.0.0.1:18891".parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(addr, "POST", "/api/execute", "1").is_none_or(|(s, _)| s != 200) {
        assert!(Instant::now() < deadline, "the single node did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    common::cluster::Proc(child)
}

#[test]
fn an_old_single_node_catalog_is_adopted_once_with_every_row() {
    let home = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("single-adopt");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    // Written the way builds before D71 wrote it: lang::dfs over the node's own engine paths.
    rt::Runtime::new("adopt")
        .run({
            let home = home.clone();
            move |_s: rt::shard::Shard<()>| {
                let home = home.clone();
                async move {
                    let cmdline = config::kv::parse(
                        Source::CommandLine,
                        &format!("mode=single\nlocalSite={SITE}\n"),
                    )
                    .unwrap();
                    let settings = config::resolve(&home, &[cmdline]).unwrap();
                    let engine = node::server::open_engine(&settings).await.unwrap();
                    rt::disk::create_dir_all(&settings.dfs_meta_dir())
                        .await
                        .unwrap();
                    let dfs = lang::dfs::Dfs::open(
                        engine,
                        settings.dfs_meta_dir().join(node::single::OLD_CATALOG),
                    )
                    .await
                    .unwrap();
                    let mut it = lang::eval::Interp::new(1);
                    it.dfs = Some(dfs);
                    it.run(
                        "login(`admin, `123456)\n\
                     db = database(\"dfs://old\", VALUE, 2024.01.01..2024.01.03)\n\
                     t = table(2024.01.01 + (0..299) % 3 as d, 0..299 as id)\n\
                     pt = db.createPartitionedTable(t, `pt, `d)\n\
                     pt.append!(t)\n\
                     pt.append!(t)",
                    )
                    .await
                    .unwrap();
                }
            }
        })
        .unwrap();

    let node = start(&home);
    let addr = "127.0.0.1:18891".parse().unwrap();
    let login = "login(`admin, `123456)\n";
    let q = format!("{login}exec count(*) from loadTable(\"dfs://old\", `pt)");
    assert_eq!(count(&execute(addr, &q)), "600");
    let by_day = execute(
        addr,
        &format!("{login}exec count(*) from loadTable(\"dfs://old\", `pt) where d = 2024.01.02"),
    );
    assert_eq!(count(&by_day), "200", "partitions keep their chunks");
    execute(
        addr,
        &format!("{login}loadTable(\"dfs://old\", `pt).append!(table(2024.01.04 2024.01.01 as d, 7 8 as id))"),
    );
    assert_eq!(count(&execute(addr, &q)), "602");
    // The single node holds every chunk: three adopted, one new.
    let meta = execute(addr, &format!("{login}exec count(*) from getChunksMeta()"));
    assert_eq!(count(&meta), "4", "{meta}");
    // getTabletsMeta: the chunks holding rows, with their rows, filtered by path and table.
    let rows = execute(
        addr,
        &format!("{login}exec sum(rowNum) from getTabletsMeta(\"/old/%\", `pt, true)"),
    );
    assert_eq!(count(&rows), "602", "{rows}");
    let none = execute(
        addr,
        &format!("{login}exec count(*) from getTabletsMeta(\"%\", `nosuch)"),
    );
    assert_eq!(count(&none), "0", "{none}");
    let meta = home.join("adopt1/dfsMeta");
    let adopted = std::fs::read_dir(home.join("adopt1"))
        .unwrap()
        .chain(std::fs::read_dir(&meta).into_iter().flatten())
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".adopted"));
    assert!(adopted, "the old catalog is kept, renamed");
    drop(node);

    let node = start(&home);
    assert_eq!(
        count(&execute(addr, &q)),
        "602",
        "a restart adopts nothing again"
    );
    drop(node);
}
