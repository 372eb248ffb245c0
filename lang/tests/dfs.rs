//! The tutorial's Step 5 and Step 6 scripts, verbatim, on a single node's `dfs://` database over
//! the storage engine (real runtime, O_DIRECT files): 1,210,000 rows for 2023.01.08, the OHLC
//! result equal to an independent computation, and everything still there after a restart.
#![cfg(not(madsim))]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use lang::dfs::Dfs;
use lang::eval::{Interp, Value};
use storage::column::ColumnData;
use storage::{Engine, EngineConfig};

fn script(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/scripts/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn open(dir: &PathBuf) -> Rc<Dfs> {
    let engine = Engine::open(EngineConfig::in_dir(dir)).await.unwrap();
    Dfs::open(engine, dir.join("storage/CHUNK_METADATA/dfs.catalog"))
        .await
        .unwrap()
}

fn table(v: &Value) -> lang::eval::Table {
    match v {
        Value::Table(t) => (**t).clone(),
        other => panic!("expected a table, got {}", other.typestr()),
    }
}

#[test]
fn tutorial_steps_5_and_6_verbatim_on_dfs() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dfs-tutorial");
    let _ = std::fs::remove_dir_all(&dir);
    rt::Runtime::new("dfs")
        .run(move |_s: rt::shard::Shard<()>| {
            let dir = dir.clone();
            async move {
                let mut it = Interp::new(11);
                it.dfs = Some(open(&dir).await);
                it.run(&script("tutorial_step5.dos")).await.unwrap_or_else(|e| panic!("step 5: {e}"));
                it.run(&script("tutorial_step6.dos")).await.unwrap_or_else(|e| panic!("step 6: {e}"));
                let q1 = table(&it.run("select count(*) from pt group by date(DateTime) as Date").await.unwrap());
                assert_eq!(q1.columns[1].1.data, ColumnData::I64(vec![1_210_000]));
                let result = table(it.var("result").unwrap());
                assert_eq!(result.rows(), 5000);

                // Independent OHLC from the generated in-memory table `t`.
                let t = table(it.var("t").unwrap());
                let sec = t.column("SecurityID").unwrap();
                let ColumnData::F64(last) = &t.column("LastPx").unwrap().data else { panic!() };
                let mut want: BTreeMap<Vec<u8>, (f64, f64, f64, f64)> = BTreeMap::new();
                for (i, p) in last.iter().enumerate() {
                    let k = sec.bytes_at(i).unwrap().to_vec();
                    want.entry(k).and_modify(|e| { e.1 = e.1.max(*p); e.2 = e.2.min(*p); e.3 = *p; }).or_insert((*p, *p, *p, *p));
                }
                let ids = &result.columns[1].1;
                let f = |i: usize| match &result.columns[i].1.data { ColumnData::F64(v) => v.clone(), _ => panic!() };
                let (o, h, l, c) = (f(2), f(3), f(4), f(5));
                for (k, (id, w)) in want.iter().enumerate() {
                    assert_eq!(ids.bytes_at(k).unwrap(), id.as_slice());
                    assert_eq!((o[k], h[k], l[k], c[k]), *w);
                }

                // A restart: the database, the table and every row are still there.
                drop(it);
                let mut again = Interp::new(12);
                again.dfs = Some(open(&dir).await);
                let q1 = table(&again.run("login(`admin, `123456)\npt = loadTable(\"dfs://testDB\", \"testTB\")\nselect count(*) from pt group by date(DateTime) as Date").await.unwrap());
                assert_eq!(q1.columns[1].1.data, ColumnData::I64(vec![1_210_000]));
                // Step 5 again drops and recreates the database: still one day of rows.
                again.run(&script("tutorial_step5.dos")).await.unwrap();
                let q1 = table(&again.run("select count(*) from loadTable(\"dfs://testDB\", \"testTB\") group by date(DateTime) as Date").await.unwrap());
                assert_eq!(q1.columns[1].1.data, ColumnData::I64(vec![1_210_000]));
                let e = again.run("loadTable(\"dfs://nosuch\", \"t\")").await.unwrap_err();
                assert!(e.to_string().contains("does not exist"), "{e}");
            }
        })
        .unwrap();
}
