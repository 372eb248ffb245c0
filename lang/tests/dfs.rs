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

/// Runs `body` on a runtime of its own, with a session (seeded `seed`) over a fresh store in
/// the scratch directory `name`.
fn on_dfs(
    name: &'static str,
    seed: u64,
    body: fn(Interp) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    rt::Runtime::new(name)
        .run(move |_s: rt::shard::Shard<()>| {
            let dir = dir.clone();
            async move {
                let mut it = Interp::new(seed);
                it.dfs = Some(open(&dir).await);
                body(it).await
            }
        })
        .unwrap();
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

/// Runs `src`; returns the console text of its value.
async fn show(it: &mut Interp, src: &str) -> String {
    match it.run(src).await {
        Ok(v) => lang::display::format(&v),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn every_partition_scheme_routes_rows_and_queries_prune() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dfs-schemes");
    let _ = std::fs::remove_dir_all(&dir);
    rt::Runtime::new("dfs-schemes")
        .run(move |_s: rt::shard::Shard<()>| {
            let dir = dir.clone();
            async move {
                let mut it = Interp::new(7);
                let dfs = open(&dir).await;
                it.dfs = Some(dfs.clone());
                it.run("login(`admin, `123456)\nt = table(2023.01.01 2023.01.01 2023.02.15 2023.03.31 as d, 1 5 12 20 as id, `A`B`C`D as sym, 1.0 2.0 3.0 4.0 as px)").await.unwrap();

                // RANGE on id: [0, 10) and [10, 30); a row outside fails the whole append.
                it.run("db = database(\"dfs://r\", RANGE, 0 10 30)\npt = db.createPartitionedTable(t, `pt, `id)\npt.append!(t)").await.unwrap();
                assert_eq!(show(&mut it, "exec count(*) from loadTable(\"dfs://r\", `pt)").await, "4");
                assert_eq!(show(&mut it, "exec id from loadTable(\"dfs://r\", `pt) where id >= 10").await, "[12,20]");
                assert_eq!(it.partitions_read, 1, "id >= 10 reads only [10, 30)");
                let e = show(&mut it, "loadTable(\"dfs://r\", `pt).append!(table(2023.01.01 as d, 30 as id, `E as sym, 5.0 as px))").await;
                assert!(e.contains("outside the RANGE partitions"), "{e}");
                assert_eq!(show(&mut it, "exec count(*) from loadTable(\"dfs://r\", `pt)").await, "4");

                // HASH on sym, 3 buckets: equality prunes to one bucket.
                it.run("db = database(\"dfs://h\", HASH, [SYMBOL, 3])\npt = db.createPartitionedTable(t, `pt, `sym)\npt.append!(t)").await.unwrap();
                assert_eq!(show(&mut it, "exec id from loadTable(\"dfs://h\", `pt) where sym == `C").await, "[12]");
                assert_eq!(it.partitions_read, 1);

                // LIST on sym.
                it.run("db = database(\"dfs://l\", LIST, [`A`B, `C, `D])\npt = db.createPartitionedTable(t, `pt, `sym)\npt.append!(t)").await.unwrap();
                assert_eq!(show(&mut it, "exec id from loadTable(\"dfs://l\", `pt) where sym in `A`D").await, "[1,20]");
                assert_eq!(it.partitions_read, 2);

                // VALUE by month over a DATE column, with new months added.
                it.run("db = database(\"dfs://v\", VALUE, 2023.01M 2023.02M)\npt = db.createPartitionedTable(t, `pt, `d)\npt.append!(t)").await.unwrap();
                assert_eq!(show(&mut it, "exec id from loadTable(\"dfs://v\", `pt) where d between 2023.02.01 : 2023.02.28").await, "[12]");
                assert_eq!(it.partitions_read, 1, "only 2023.02M");
                assert_eq!(
                    show(&mut it, "select count(*) from loadTable(\"dfs://v\", `pt) group by month(d)").await,
                    "month_d  count\n-------- -----\n2023.01M 2\n2023.02M 1\n2023.03M 1\n",
                    "three months, the third (2023.03M) added on append"
                );

                // newValuePartitionPolicy: skip leaves the row out, fail refuses the append.
                let row = "table(2024.05.01 as d, 1 as id, `Z as sym, 1.0 as px)";
                dfs.set_new_values(lang::partition::NewValues::Skip);
                assert_eq!(show(&mut it, &format!("tableInsert(loadTable(\"dfs://v\", `pt), {row})")).await, "0");
                dfs.set_new_values(lang::partition::NewValues::Fail);
                let e = show(&mut it, &format!("tableInsert(loadTable(\"dfs://v\", `pt), {row})")).await;
                assert!(e.contains("newValuePartitionPolicy=fail"), "{e}");
                dfs.set_new_values(lang::partition::NewValues::Add);
                assert_eq!(show(&mut it, &format!("tableInsert(loadTable(\"dfs://v\", `pt), {row})")).await, "1");

                // COMPO: VALUE by date, then HASH by sym; both levels prune.
                it.run("db1 = database(\"\", VALUE, 2023.01.01..2023.01.02)\ndb2 = database(\"\", HASH, [SYMBOL, 2])\ndb = database(\"dfs://c\", COMPO, [db1, db2])\npt = db.createPartitionedTable(t, `pt, `d`sym)\npt.append!(t)").await.unwrap();
                assert_eq!(show(&mut it, "exec count(*) from loadTable(\"dfs://c\", `pt)").await, "4");
                assert_eq!(show(&mut it, "exec id from loadTable(\"dfs://c\", `pt) where d == 2023.01.01, sym == `B").await, "[5]");
                assert_eq!(it.partitions_read, 1);
                let s = show(&mut it, "schema(loadTable(\"dfs://c\", `pt)).partitionType").await;
                assert_eq!(s, "(1,5)");
                // A scheme is refused when it cannot work.
                let e = show(&mut it, "database(\"dfs://bad\", RANGE, 5 1)").await;
                assert!(e.contains("increasing"), "{e}");
                let e = show(&mut it, "db = database(\"dfs://c2\", COMPO, [db1, db2])\ndb.createPartitionedTable(t, `pt, `d)").await;
                assert!(e.contains("2 column(s), 1 given"), "{e}");

                // A dimension table (createTable): one partition, every row.
                it.run("dim = database(\"dfs://r\").createTable(table(1 2 3 as k, `x`y`z as name), `dim)\ndim.append!(table(1 2 3 as k, `x`y`z as name))").await.unwrap();
                assert_eq!(show(&mut it, "exec name from loadTable(\"dfs://r\", `dim) where k >= 2").await, "[\"y\",\"z\"]");
                assert_eq!(show(&mut it, "select count(*) from loadTable(\"dfs://r\", `dim)").await, "count\n-----\n3\n");
                let s = show(&mut it, "schema(loadTable(\"dfs://r\", `dim))").await;
                assert!(s.contains("colDefs") && !s.contains("partitionColumnName"), "{s}");

                // Everything survives a restart: the catalog keeps the schemes.
                drop(it);
                let mut again = Interp::new(8);
                again.dfs = Some(open(&dir).await);
                again.run("login(`admin, `123456)").await.unwrap();
                assert_eq!(show(&mut again, "exec id from loadTable(\"dfs://c\", `pt) where sym == `D").await, "[20]");
                assert_eq!(show(&mut again, "exec id from loadTable(\"dfs://r\", `pt) where id < 10").await, "[1,5]");
                assert_eq!(again.partitions_read, 1);
                assert_eq!(show(&mut again, "exec sum(k) from loadTable(\"dfs://r\", `dim)").await, "6");
                // dropPartition by a first-level value takes every partition below it;
                // dropTable the rest.
                again.run("dropPartition(database(\"dfs://c\"), 2023.01.01, `pt)").await.unwrap();
                assert_eq!(show(&mut again, "exec count(*) from loadTable(\"dfs://c\", `pt)").await, "2");
                assert_eq!(show(&mut again, "exec count(*) from loadTable(\"dfs://c\", `pt) where d == 2023.01.01").await, "0");
                again.run("dropTable(database(\"dfs://c\"), `pt)").await.unwrap();
                assert_eq!(show(&mut again, "existsTable(\"dfs://c\", `pt)").await, "false");
            }
        })
        .unwrap();
}

/// The same table text, floats equal up to summation order (partials are summed per
/// partition, then merged).
fn same_numbers(a: &str, b: &str) -> bool {
    let ta: Vec<&str> = a
        .split_whitespace()
        .filter(|t| !t.starts_with('-') || t.parse::<f64>().is_ok())
        .collect();
    let tb: Vec<&str> = b
        .split_whitespace()
        .filter(|t| !t.starts_with('-') || t.parse::<f64>().is_ok())
        .collect();
    ta.len() == tb.len()
        && ta.iter().zip(&tb).all(|(x, y)| {
            x == y
                || matches!((x.parse::<f64>(), y.parse::<f64>()), (Ok(p), Ok(q)) if (p - q).abs() <= 1e-9 * p.abs().max(1.0))
        })
}

#[test]
fn partition_wise_aggregation_equals_the_general_path() {
    on_dfs("dfs-partial", 9, |mut it| {
        Box::pin(async move {
            it.run("login(`admin, `123456)
n = 3000
t = table(2023.01.08T09:30:00 + (0..(n-1)) * 97 as DateTime, take(`A`B`C`D`E, n) as sym, rand(100.0, n) as px, take(1 NULL 3, n) as vol)
update t set px = NULL where vol == 3
db = database(\"dfs://p1\", VALUE, 2023.01.08..2023.01.10)
pt = db.createPartitionedTable(t, `pt, `DateTime)
pt.append!(t)
db2 = database(\"dfs://p2\", HASH, [SYMBOL, 2])
ph = db2.createPartitionedTable(t, `ph, `sym)
ph.append!(t)
db3 = database(\"dfs://p3\", VALUE, 2023.01.10 2023.01.09)
pd = db3.createPartitionedTable(t, `pd, `DateTime)
pd.append!(t)
db4 = database(\"dfs://p4\", VALUE, 2023.01.08..2023.01.11)
ts = select DateTime, symbol(sym) as sym, px, vol from t order by date(DateTime), sym
pr = db4.createPartitionedTable(ts, `pr, `DateTime)
pr.append!(ts)").await.unwrap();
            let queries = [
                    "select count(*) from TBL group by date(DateTime)",
                    "select first(px) as Open, max(px) as High, min(px) as Low, last(px) as Close from TBL group by date(DateTime) as Date, sym",
                    "select count(*), count(px), sum(vol), avg(px) from TBL group by sym",
                    "select count(*), sum(px), first(DateTime), last(sym) from TBL",
                    "select avg(vol), min(DateTime) from TBL group by date(DateTime), sym",
                ];
            // pd's partitions come out of date order (the days before and after its domain
            // were added as they arrived): merging them must sort them. pr's are stored
            // by sym, a SYMBOL: its groups come in runs (D94).
            for table in ["pt", "ph", "pd", "pr"] {
                for q in queries {
                    let fast = show(&mut it, &q.replace("TBL", table)).await;
                    let read = it.partitions_read;
                    let general = show(
                        &mut it,
                        &format!("{} where 1 == 1", q.replace("TBL", table)),
                    )
                    .await;
                    if table == "pr" {
                        // A pushed-down `where` takes the partition-wise path too: check
                        // the run path against the in-memory table pr was loaded from
                        // (whose row order is pr's partition order).
                        let memory = show(&mut it, &q.replace("TBL", "ts")).await;
                        assert!(same_numbers(&fast, &memory), "{q}\n{fast}\n{memory}");
                    }
                    assert!(
                        same_numbers(&fast, &general),
                        "{table}: {q}\n{fast}\n{general}"
                    );
                    assert!(!fast.starts_with("error"), "{fast}");
                    assert!(read >= 2, "{q}: read {read} partitions");
                }
            }
        })
    });
}

/// Whether two tables hold the same columns and values (floats up to summation order).
fn same_table(a: &lang::eval::Table, b: &lang::eval::Table) -> Result<(), String> {
    let names =
        |t: &lang::eval::Table| t.columns.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    if names(a) != names(b) || a.rows() != b.rows() {
        return Err(format!(
            "{:?} x {} vs {:?} x {}",
            names(a),
            a.rows(),
            names(b),
            b.rows()
        ));
    }
    for ((n, x), (_, y)) in a.columns.iter().zip(&b.columns) {
        for i in 0..x.len() {
            let (p, q) = (lang::display::cell(x, i), lang::display::cell(y, i));
            let close = matches!((p.parse::<f64>(), q.parse::<f64>()), (Ok(u), Ok(v)) if (u - v).abs() <= 1e-9 * u.abs().max(1.0));
            if p != q && !close {
                return Err(format!("column {n}, row {i}: {p} vs {q}"));
            }
        }
    }
    Ok(())
}

/// Any query whose `group by` / `context by` keys cover the partitioning runs partition by
/// partition (`partitionwise.rs`); its answer must be the whole in-memory table's.
#[test]
fn partition_by_partition_queries_equal_the_whole_table() {
    on_dfs("dfs-partitionwise", 5, |mut it| {
        Box::pin(async move {
            it.run("login(`admin, `123456)
n = 3000
t = table(2023.01.08T09:30:00 + (0..(n-1)) * 97 as DateTime, take(`A`B`C`D`E, n) as sym, rand(100.0, n) as px, take(1 NULL 3, n) as vol)
db = database(\"dfs://w1\", VALUE, 2023.01.08..2023.01.10)
pt = db.createPartitionedTable(t, `pt, `DateTime)
pt.append!(t)
db2 = database(\"dfs://w2\", HASH, [SYMBOL, 3])
ph = db2.createPartitionedTable(t, `ph, `sym)
ph.append!(t)
db3 = database(\"dfs://p3\", VALUE, 2023.01.10 2023.01.09)
pd = db3.createPartitionedTable(t, `pd, `DateTime)
pd.append!(t)").await.unwrap();
            let queries = [
                    "select sym, DateTime, mavg(px, 3) as m, cumsum(vol) as c from TBL context by sym",
                    "select sym, px, rank(px) as r from TBL context by date(DateTime), sym csort px",
                    "select sym, count(*) as n, percentile(px, 50) as p, mad(px) as m from TBL group by sym",
                    "select med(px) as m from TBL group by date(DateTime) as d, sym order by m desc limit 4",
                    "select * from TBL context by sym having px > avg(px) limit 2",
                    "select first(px) as o, last(px) as c from TBL where vol == 1 group by sym, bar(DateTime, 1H) as h",
                    "select sym, DateTime, prev(px) as p from TBL where px > 50 context by date(DateTime), sym order by p desc limit 5",
                    // Top-k: each partition's first k travel, the merge keeps k (tie-free keys:
                    // a HASH table's partitions are not in insertion order).
                    "select top 5 * from TBL order by px desc",
                    "select sym, px * 2 as p from TBL where vol == 1 order by px limit 7",
                    "select sym, px from TBL order by DateTime desc limit 2",
                    "select DateTime, px from TBL order by sym, px limit -4",
                    // Distinct per partition, then over the merge.
                    "select distinct sym, vol from TBL order by sym, vol",
                ];
            // pd's partitions come out of date order (the days before and after its domain
            // were added as they arrived): merging them must sort them.
            for table in ["pt", "ph", "pd"] {
                for q in queries {
                    let got = it
                        .run(&q.replace("TBL", table))
                        .await
                        .unwrap_or_else(|e| panic!("{table}: {q}: {e}"));
                    let read = it.partitions_read;
                    let want = it.run(&q.replace("TBL", "t")).await.unwrap();
                    if let Err(e) = same_table(&table_of(&got), &table_of(&want)) {
                        panic!("{table}: {q}: {e}");
                    }
                    assert!(read >= 2, "{table}: {q}: read {read} partitions");
                }
            }
            // Over days in insertion order, ties and no order at all keep the table's order.
            for q in [
                "select top 3 DateTime, px from TBL",
                "select * from TBL order by vol limit 9",
                "select sym, vol from TBL where px > 20 order by vol desc, sym limit -6",
                "select top 4 * from TBL where DateTime > 2023.01.09T00:00:00",
                "select distinct sym from TBL",
                "select distinct vol, sym from TBL where px > 10",
                "select top 3 distinct vol from TBL order by vol desc",
            ] {
                let got = it
                    .run(&q.replace("TBL", "pt"))
                    .await
                    .unwrap_or_else(|e| panic!("{q}: {e}"));
                let want = it.run(&q.replace("TBL", "t")).await.unwrap();
                if let Err(e) = same_table(&table_of(&got), &table_of(&want)) {
                    panic!("{q}: {e}");
                }
            }
        })
    });
}

fn table_of(v: &Value) -> lang::eval::Table {
    table(v)
}

#[test]
fn sql_ds_splits_by_partition_and_mr_folds_the_map_results() {
    on_dfs("dfs-mapreduce", 6, |mut it| {
        Box::pin(async move {
            it.run("login(`admin, `123456)
n = 3000
t = table(2023.01.08T09:30:00 + (0..(n-1)) * 97 as DateTime, take(`A`B`C`D`E, n) as sym, rand(100.0, n) as px, take(1 NULL 3, n) as vol)
db = database(\"dfs://mr\", VALUE, 2023.01.08..2023.01.10)
pt = db.createPartitionedTable(t, `pt, `DateTime)
pt.append!(t)").await.unwrap();
            // One data source per partition the query touches.
            // 3000 rows 97 s apart span four days.
            assert_eq!(
                show(&mut it, "ds = sqlDS(<select * from pt>)\nsize(ds)").await,
                "4"
            );
            assert_eq!(show(&mut it, "typestr(ds)").await, "ANY VECTOR");
            assert_eq!(
                show(&mut it, "ds[1]").await,
                "DataSource< select from pt [partition = /mr/20230109] >"
            );
            assert_eq!(
                show(
                    &mut it,
                    "size(sqlDS(<select px from pt where date(DateTime) = 2023.01.09>))"
                )
                .await,
                "1"
            );
            // Map-reduce over the partitions equals the whole table's answer.
            let sum = show(
                &mut it,
                "mr(sqlDS(<select px from pt>), def(t) { return sum(t.px) }, +)",
            )
            .await;
            let want = show(&mut it, "sum(t.px)").await;
            assert!(same_numbers(&sum, &want), "{sum} vs {want}");
            let rows = show(
                &mut it,
                "mr(sqlDS(<select * from pt where vol > 0>), rows, add, def(x) { return x * 2 })",
            )
            .await;
            let want = show(&mut it, "2 * exec count(*) from t where vol > 0").await;
            assert_eq!(rows, want);
            // Without parallel, one partition at a time: the same answer.
            let serial = show(&mut it, "mr(sqlDS(<select * from pt where vol > 0>), rows, add, def(x) { return x * 2 }, false)").await;
            assert_eq!(serial, want);
            // No reduce: the map results as a tuple, in partition order.
            assert_eq!(
                show(&mut it, "mr(sqlDS(<select * from pt>), rows)").await,
                show(
                    &mut it,
                    "(select count(*) as n from t group by date(DateTime)).n"
                )
                .await
                .replace("[", "(")
                .replace("]", ")")
            );
            // A query that names a user function reads the rows and runs here.
            it.run("def twice(x) { return 2 * x }").await.unwrap();
            let user = show(
                &mut it,
                "mr(sqlDS(<select twice(px) as p from pt>), def(t) { return sum(t.p) }, +)",
            )
            .await;
            let want = show(&mut it, "2 * sum(t.px)").await;
            assert!(same_numbers(&user, &want), "{user} vs {want}");
            // An in-memory table is one data source.
            assert_eq!(show(&mut it, "size(sqlDS(<select * from t>))").await, "1");
            assert_eq!(
                show(&mut it, "mr(sqlDS(<select * from t>), rows, +)").await,
                "3000"
            );
            // Queries that cannot be split are refused unless forced.
            let e = show(&mut it, "sqlDS(<select count(*) from pt group by sym>)").await;
            assert!(e.contains("forcePartition"), "{e}");
            let e = show(&mut it, "sqlDS(<select * from pt order by px>)").await;
            assert!(e.contains("forcePartition"), "{e}");
            let per_part = show(&mut it, "mr(sqlDS(<select count(*) as n from pt group by sym>, true), def(t) { return sum(t.n) }, +)").await;
            assert_eq!(per_part, "3000");
            let e = show(&mut it, "mr(sqlDS(<select * from pt>)[0], rows)").await;
            assert!(e.contains("tuple"), "{e}");
        })
    });
}

/// `ej`, `lj` and `lsj` of two tables of one database, on keys that include the partitioning
/// column, run partition by partition (ARCHITECTURE D95), in SQL's join syntax too, and equal the joins of the in-memory
/// tables they were loaded from; a join whose keys miss the partitioning column takes the
/// general path, with the same answer.
#[test]
fn co_partitioned_joins_run_partition_by_partition_and_equal_the_whole_join() {
    on_dfs("dfs-copartition", 5, |mut it| {
        Box::pin(async move {
            it.run("login(`admin, `123456)
n = 2000
t = table(2023.01.08T09:30:00 + (0..(n-1)) * 300 as DateTime, take(`A`B`C`D, n) as sym, rand(100.0, n) as px)
q = select DateTime, sym, rand(10, size(DateTime)) as qty from t where DateTime < 2023.01.12T00:00:00, sym != `D
db = database(\"dfs://j1\", VALUE, 2023.01.08..2023.01.15)
pt = db.createPartitionedTable(t, `pt, `DateTime)
pt.append!(t)
pq = db.createPartitionedTable(q, `pq, `DateTime)
pq.append!(q)").await.unwrap();
            let cases = [
                ("select * from ej(L, R, `DateTime`sym)", true),
                ("select * from lj(L, R, `DateTime`sym)", true),
                ("select * from lsj(L, R, `DateTime`sym)", true),
                // SQL's join syntax is the same call.
                (
                    "select * from L left join R on L.DateTime = R.DateTime and L.sym = R.sym",
                    true,
                ),
                (
                    "select sym, sum(px * qty) as v from ej(L, R, `sym`DateTime) group by sym",
                    true,
                ),
                (
                    "select count(*) from ej(L, R, `DateTime`sym, `DateTime`sym) where px > 50",
                    true,
                ),
                // The right table's partitions the left lacks add nothing to a left join.
                ("select * from lj(R, L, `DateTime`sym)", true),
                // Keys without the partitioning column: rows of two days may match.
                ("select count(*) from ej(L, R, `sym)", false),
            ];
            for (q, pushed) in cases {
                let before = it.pushed_joins;
                let dfs = show(&mut it, &q.replace('L', "pt").replace('R', "pq")).await;
                assert_eq!(it.pushed_joins > before, pushed, "{q}");
                let memory = show(&mut it, &q.replace('L', "t").replace('R', "q")).await;
                assert!(!dfs.starts_with("error"), "{q}: {dfs}");
                assert!(same_numbers(&dfs, &memory), "{q}\n{dfs}\n{memory}");
            }
        })
    });
}
