//! The storage model test, shared by the proptest run on the real runtime
//! (`tests/model.rs`) and the seeded fault-injection run under madsim (`tests/model_sim.rs`).
//!
//! A random sequence of append / prepare / rewrite / commit / abort / flush / scan /
//! crash-and-reopen runs
//! against the engine and against a plain in-memory reference. Operations that fail (only
//! under injected faults) make their effect *uncertain*; the node then crashes and reopens, and
//! the engine may show the uncertain effect or not — but every acknowledged row must be there,
//! in order, no aborted or unprepared row may be, and a scan returns either exactly the
//! reference rows or an error, never different data.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use rt::rand::Rng;
use storage::column::{Column, ColumnData};
use storage::types::DataType;
use storage::{Batch, Engine, EngineConfig, Schema, StorageError};

#[derive(Debug, Clone)]
pub enum Op {
    Append {
        chunk: u64,
        rows: usize,
    },
    Prepare {
        chunk: u64,
        rows: usize,
    },
    /// A transaction that rewrites the chunk (`update`/`delete`): keeps every `keep`-th
    /// visible row and adds `rows` new ones.
    Rewrite {
        chunk: u64,
        keep: usize,
        rows: usize,
    },
    Commit,
    Abort,
    Flush,
    Scan {
        chunk: u64,
    },
    Reopen,
}

pub const CHUNKS: u64 = 3;

pub fn gen_ops(rng: &mut Rng, n: usize) -> Vec<Op> {
    (0..n)
        .map(|_| match rng.below(18) {
            16..=17 => Op::Rewrite {
                chunk: rng.below(CHUNKS),
                keep: 1 + rng.below(3) as usize,
                rows: rng.below(5) as usize,
            },
            0..=4 => Op::Append {
                chunk: rng.below(CHUNKS),
                rows: 1 + rng.below(40) as usize,
            },
            5..=6 => Op::Prepare {
                chunk: rng.below(CHUNKS),
                rows: 1 + rng.below(20) as usize,
            },
            7..=8 => Op::Commit,
            9 => Op::Abort,
            10 => Op::Flush,
            11..=13 => Op::Scan {
                chunk: rng.below(CHUNKS),
            },
            _ => Op::Reopen,
        })
        .collect()
}

fn schema() -> Schema {
    Schema::new(&[
        ("v", DataType::Int),
        ("s", DataType::Symbol),
        ("x", DataType::Double),
        ("t", DataType::String),
    ])
}

/// Rows `first..first+n`: every value derives from the row's unique id.
fn batch(first: i32, n: usize) -> Batch {
    batch_of((first..first + n as i32).collect())
}

/// Rows with these ids.
fn batch_of(ids: Vec<i32>) -> Batch {
    let syms: Vec<String> = ids.iter().map(|i| format!("S{}", i % 7)).collect();
    let strs: Vec<String> = ids
        .iter()
        .map(|i| {
            if i % 5 == 0 {
                String::new()
            } else {
                format!("t{i}")
            }
        })
        .collect();
    Batch {
        columns: vec![
            Column {
                ty: DataType::Int,
                data: ColumnData::I32(ids.clone()),
            },
            Column::from_strings(DataType::Symbol, &syms),
            Column {
                ty: DataType::Double,
                data: ColumnData::F64(ids.iter().map(|i| *i as f64 * 0.5).collect()),
            },
            Column::from_strings(DataType::String, &strs),
        ],
    }
}

/// Checks that scanned columns hold exactly rows `ids`, all columns consistent.
fn check_rows(cols: &[Column], ids: &[i32]) -> Result<(), String> {
    let ColumnData::I32(v) = &cols[0].data else {
        return Err("v is not INT".into());
    };
    if v != ids {
        return Err(format!("ids {v:?} != expected {ids:?}"));
    }
    for (k, id) in ids.iter().enumerate() {
        let sym = cols[1].bytes_at(k).ok_or("symbol out of range")?;
        if sym != format!("S{}", id % 7).as_bytes() {
            return Err(format!(
                "row {k}: symbol {:?}",
                String::from_utf8_lossy(sym)
            ));
        }
        let ColumnData::F64(x) = &cols[2].data else {
            return Err("x is not DOUBLE".into());
        };
        if x[k] != *id as f64 * 0.5 {
            return Err(format!("row {k}: x {}", x[k]));
        }
        let t = cols[3].bytes_at(k).ok_or("string out of range")?;
        let want = if id % 5 == 0 {
            String::new()
        } else {
            format!("t{id}")
        };
        if t != want.as_bytes() {
            return Err(format!("row {k}: t {:?}", String::from_utf8_lossy(t)));
        }
    }
    Ok(())
}

/// What the reference knows.
#[derive(Default)]
struct Model {
    visible: BTreeMap<u64, Vec<i32>>,
    /// Acknowledged prepares not yet resolved: tid → (chunk, ids, whether they replace the
    /// chunk's rows).
    open: BTreeMap<u64, (u64, Vec<i32>, bool)>,
    /// An operation that failed: its effect may or may not have happened.
    uncertain: Option<Uncertain>,
}

impl Model {
    fn commit(&mut self, chunk: u64, ids: Vec<i32>, replace: bool) {
        let v = self.visible.get_mut(&chunk).unwrap();
        if replace {
            *v = ids;
        } else {
            v.extend(&ids);
        }
    }
}

#[derive(Debug, Clone)]
enum Uncertain {
    Append {
        chunk: u64,
        ids: Vec<i32>,
    },
    Prepare {
        tid: u64,
        chunk: u64,
        ids: Vec<i32>,
        replace: bool,
    },
    Commit {
        tid: u64,
    },
    Abort {
        tid: u64,
    },
}

pub struct Outcome {
    pub ops_ok: usize,
    pub ops_failed: usize,
    pub reopens: usize,
}

fn config(dir: &PathBuf) -> EngineConfig {
    let mut c = EngineConfig::in_dir(dir);
    c.volumes.push(dir.join("vol2"));
    c.block_rows = 16; // many blocks, even for small tests
    c.cache_bytes_max = 64 << 10; // small, so appends also trigger flushes
    c
}

async fn open(dir: &PathBuf, faults: bool) -> Engine {
    for attempt in 0.. {
        match Engine::open(config(dir)).await {
            Ok(e) => return e,
            Err(e) if faults && attempt < 100 => {
                let _ = e; // an injected read error during recovery: try again
            }
            Err(e) => panic!("reopen failed: {e}"),
        }
    }
    unreachable!()
}

/// Runs `ops`; `crash` models power loss between dropping and reopening the engine.
pub async fn run_model(dir: PathBuf, ops: Vec<Op>, crash: impl Fn(), faults: bool) -> Outcome {
    let mut engine = open(&dir, faults).await;
    let mut m = Model::default();
    for c in 0..CHUNKS {
        loop {
            match engine.create_chunk(c, schema()).await {
                Ok(()) | Err(StorageError::ChunkExists(_)) => break,
                Err(e) if faults => {
                    let _ = e;
                    drop(engine);
                    crash();
                    engine = open(&dir, faults).await;
                }
                Err(e) => panic!("create_chunk: {e}"),
            }
        }
        m.visible.insert(c, Vec::new());
    }
    let mut next_id = 0i32;
    let mut next_tid = 1u64;
    let mut out = Outcome {
        ops_ok: 0,
        ops_failed: 0,
        reopens: 0,
    };
    let trace = std::env::var("PORPOISE_MODEL_TRACE").is_ok();
    for op in ops {
        if trace {
            eprintln!(
                "op {op:?} next_id={next_id} next_tid={next_tid} open={:?} uncertain={:?}",
                m.open.keys().collect::<Vec<_>>(),
                m.uncertain
            );
        }
        let mut failed = false;
        match op {
            Op::Append { chunk, rows } => {
                let ids: Vec<i32> = (next_id..next_id + rows as i32).collect();
                let b = batch(next_id, rows);
                next_id += rows as i32;
                match engine.append(chunk, b).await {
                    Ok(_) => m.visible.get_mut(&chunk).unwrap().extend(&ids),
                    Err(StorageError::ChunkInTransaction { .. }) => {
                        assert!(
                            m.open.values().any(|(c, _, _)| *c == chunk) || m.uncertain.is_some()
                        )
                    }
                    Err(e) if faults => {
                        let _ = e;
                        m.uncertain = Some(Uncertain::Append { chunk, ids });
                        failed = true;
                    }
                    Err(e) => panic!("append: {e}"),
                }
            }
            Op::Prepare { chunk, rows } => {
                let tid = next_tid;
                next_tid += 1;
                let ids: Vec<i32> = (next_id..next_id + rows as i32).collect();
                let b = batch(next_id, rows);
                next_id += rows as i32;
                match engine.prepare(tid, chunk, b).await {
                    Ok(()) => {
                        m.open.insert(tid, (chunk, ids, false));
                    }
                    Err(StorageError::ChunkInTransaction { .. }) => {}
                    Err(e) if faults => {
                        let _ = e;
                        m.uncertain = Some(Uncertain::Prepare {
                            tid,
                            chunk,
                            ids,
                            replace: false,
                        });
                        failed = true;
                    }
                    Err(e) => panic!("prepare: {e}"),
                }
            }
            Op::Rewrite { chunk, keep, rows } => {
                let tid = next_tid;
                next_tid += 1;
                let mut ids: Vec<i32> = m.visible[&chunk].iter().step_by(keep).copied().collect();
                ids.extend(next_id..next_id + rows as i32);
                next_id += rows as i32;
                let version = engine.chunk_info(chunk).map(|i| i.version).unwrap_or(0);
                match engine
                    .prepare_replace(tid, chunk, version, batch_of(ids.clone()))
                    .await
                {
                    Ok(()) => {
                        m.open.insert(tid, (chunk, ids, true));
                    }
                    Err(StorageError::ChunkInTransaction { .. })
                    | Err(StorageError::VersionMismatch { .. }) => {
                        assert!(
                            m.open.values().any(|(c, _, _)| *c == chunk) || m.uncertain.is_some(),
                            "a rewrite refused with no transaction on chunk {chunk}"
                        )
                    }
                    Err(e) if faults => {
                        let _ = e;
                        m.uncertain = Some(Uncertain::Prepare {
                            tid,
                            chunk,
                            ids,
                            replace: true,
                        });
                        failed = true;
                    }
                    Err(e) => panic!("prepare_replace: {e}"),
                }
            }
            Op::Commit | Op::Abort => {
                let Some((&tid, _)) = m.open.iter().next() else {
                    continue;
                };
                let commit = matches!(op, Op::Commit);
                let r = if commit {
                    engine.commit(tid).await
                } else {
                    engine.abort(tid).await
                };
                match r {
                    Ok(()) => {
                        let (chunk, ids, replace) = m.open.remove(&tid).unwrap();
                        if commit {
                            m.commit(chunk, ids, replace);
                        }
                    }
                    Err(e) if faults => {
                        let _ = e;
                        m.uncertain = Some(if commit {
                            Uncertain::Commit { tid }
                        } else {
                            Uncertain::Abort { tid }
                        });
                        failed = true;
                    }
                    Err(e) => panic!("commit/abort: {e}"),
                }
            }
            Op::Flush => {
                if let Err(e) = engine.flush().await {
                    assert!(faults, "flush: {e}");
                    failed = true; // a failed flush loses nothing acknowledged: the log still has it
                }
            }
            Op::Scan { chunk } => match engine.scan(chunk, &[0, 1, 2, 3]).await {
                Ok(cols) => {
                    if let Err(e) = check_rows(&cols, &m.visible[&chunk]) {
                        panic!("scan of chunk {chunk} returned wrong data: {e}");
                    }
                }
                Err(e) => {
                    assert!(faults, "scan: {e}");
                    failed = true;
                }
            },
            Op::Reopen => {}
        }
        if trace {
            eprintln!("   -> failed={failed} uncertain={:?}", m.uncertain);
        }
        if failed {
            out.ops_failed += 1;
        } else {
            out.ops_ok += 1;
        }
        if failed || matches!(op, Op::Reopen) {
            drop(engine);
            crash();
            engine = open(&dir, faults).await;
            out.reopens += 1;
            reconcile(&engine, &mut m, faults).await;
        }
    }
    // Final verdict after one more crash.
    drop(engine);
    crash();
    let engine = open(&dir, faults).await;
    reconcile(&engine, &mut m, faults).await;
    out
}

/// After a reopen: settle the uncertain operation from what the engine shows, then require
/// that the engine shows exactly the reference.
async fn reconcile(engine: &Engine, m: &mut Model, faults: bool) {
    let prepared = engine.prepared();
    match m.uncertain.take() {
        Some(Uncertain::Append { chunk, ids }) => {
            let info = engine.chunk_info(chunk).expect("chunk info");
            let want = m.visible[&chunk].len() as u64;
            if info.rows == want + ids.len() as u64 {
                m.visible.get_mut(&chunk).unwrap().extend(&ids);
            } else {
                assert_eq!(
                    info.rows, want,
                    "chunk {chunk}: an acknowledged row is missing or a partial append shows"
                );
            }
        }
        Some(Uncertain::Prepare {
            tid,
            chunk,
            ids,
            replace,
        }) if prepared.contains(&tid) => {
            m.open.insert(tid, (chunk, ids, replace));
        }
        Some(Uncertain::Commit { tid }) if !prepared.contains(&tid) => {
            let (chunk, ids, replace) = m.open.remove(&tid).unwrap();
            m.commit(chunk, ids, replace);
        }
        Some(Uncertain::Abort { tid }) if !prepared.contains(&tid) => {
            m.open.remove(&tid);
        }
        _ => {}
    }
    let mut want: Vec<u64> = m.open.keys().copied().collect();
    want.sort_unstable();
    assert_eq!(
        prepared, want,
        "prepared-but-unresolved transactions after reopen"
    );
    for (chunk, ids) in &m.visible {
        let r = engine.scan(*chunk, &[0, 1, 2, 3]).await;
        if std::env::var("PORPOISE_MODEL_TRACE").is_ok() {
            eprintln!(
                "   reconcile chunk {chunk}: {:?} info={:?}",
                r.as_ref().map(|c| c[0].len()).map_err(|e| e.to_string()),
                engine
                    .chunk_info(*chunk)
                    .map(|i| (i.version, i.rows))
                    .map_err(|e| e.to_string())
            );
        }
        match r {
            Ok(cols) => check_rows(&cols, ids)
                .unwrap_or_else(|e| panic!("after reopen, chunk {chunk}: {e}")),
            // A read fault (EIO / bit flip) is reported, never served; the bytes on disk are
            // intact, so the next reopen reads them again.
            Err(StorageError::Corrupt { .. }) | Err(StorageError::Io(_)) if faults => {}
            Err(e) => panic!("after reopen, scan of chunk {chunk} failed: {e}"),
        }
    }
}
