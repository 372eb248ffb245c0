//! Engine behaviours beyond the model test, on the real runtime: corruption detected with file
//! and offset and repaired from a replica copy, transactions locking chunks, truncate / drop /
//! copy / install, the cache bound, and refusing unknown formats.
#![cfg(not(madsim))]

use std::future::Future;
use std::path::PathBuf;

use storage::column::{Column, ColumnData};
use storage::types::DataType;
use storage::{Batch, Engine, EngineConfig, Schema, StorageError};

fn run(name: &str, body: fn(PathBuf) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("engine-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    rt::Runtime::new(name)
        .run(move |_s: rt::shard::Shard<()>| body(dir.clone()))
        .unwrap();
}

fn schema() -> Schema {
    Schema::new(&[("id", DataType::Long), ("sym", DataType::Symbol)])
}

fn rows(from: i64, n: i64) -> Batch {
    let syms: Vec<String> = (from..from + n).map(|i| format!("S{}", i % 3)).collect();
    Batch {
        columns: vec![
            Column {
                ty: DataType::Long,
                data: ColumnData::I64((from..from + n).collect()),
            },
            Column::from_strings(DataType::Symbol, &syms),
        ],
    }
}

fn ids(cols: &[Column]) -> Vec<i64> {
    match &cols[0].data {
        ColumnData::I64(v) => v.clone(),
        _ => panic!("not LONG"),
    }
}

fn cfg(dir: &std::path::Path) -> EngineConfig {
    let mut c = EngineConfig::in_dir(dir);
    c.block_rows = 100;
    c
}

#[test]
fn a_corrupt_block_is_reported_with_file_and_offset_and_repaired_from_a_replica() {
    run("corrupt", |dir| {
        Box::pin(async move {
            let primary = Engine::open(cfg(&dir.join("a"))).await.unwrap();
            let replica = Engine::open(cfg(&dir.join("b"))).await.unwrap();
            for e in [&primary, &replica] {
                e.create_chunk(7, schema()).await.unwrap();
                e.append(7, rows(0, 250)).await.unwrap();
                e.flush().await.unwrap();
            }
            drop(primary);
            // Flip one byte inside the first block of column 0 (just past its 28-byte header).
            let seg = dir.join("a/storage/CHUNKS/00000000000000000007/0000000001.seg");
            let mut bytes = std::fs::read(&seg).unwrap();
            bytes[30] ^= 0x04;
            std::fs::write(&seg, &bytes).unwrap();

            let primary = Engine::open(cfg(&dir.join("a"))).await.unwrap();
            match primary.scan(7, &[0]).await {
                Err(StorageError::Corrupt {
                    chunk,
                    file,
                    offset,
                    ..
                }) => {
                    assert_eq!(chunk, 7);
                    assert_eq!(file, seg);
                    assert!(offset.is_some());
                }
                other => panic!("a corrupt block must be reported, got {other:?}"),
            }
            assert!(
                matches!(primary.chunk_info(7), Err(StorageError::Corrupt { .. })),
                "the chunk stays marked"
            );
            assert!(matches!(
                primary.append(7, rows(250, 1)).await,
                Err(StorageError::Corrupt { .. })
            ));

            // Repair from the replica at its version.
            let (version, schema, batch) = replica.copy_chunk(7, None).await.unwrap();
            assert_eq!(version, 1);
            primary
                .install_chunk(7, Some(version), schema, batch)
                .await
                .unwrap();
            assert_eq!(
                ids(&primary.scan(7, &[0]).await.unwrap()),
                (0..250).collect::<Vec<_>>()
            );
            assert_eq!(primary.chunk_info(7).unwrap().version, 1);
            primary.append(7, rows(250, 10)).await.unwrap();
            assert_eq!(primary.chunk_info(7).unwrap().version, 2);
            assert!(matches!(
                replica.copy_chunk(7, Some(5)).await,
                Err(StorageError::VersionMismatch {
                    wanted: 5,
                    actual: 1,
                    ..
                })
            ));
        })
    });
}

#[test]
fn verify_reads_past_the_caches_and_marks_a_damaged_chunk_until_it_is_reinstalled() {
    run("verify", |dir| {
        Box::pin(async move {
            let e = Engine::open(cfg(&dir)).await.unwrap();
            e.create_chunk(7, schema()).await.unwrap();
            e.append(7, rows(0, 250)).await.unwrap();
            e.flush().await.unwrap();
            // Read once, so the decoded spans are cached: the flip below is then invisible to
            // scans, and only a verify that goes to the disk finds it.
            assert_eq!(ids(&e.scan(7, &[0]).await.unwrap()).len(), 250);
            e.verify_chunk(7).await.unwrap();
            let seg = dir.join("storage/CHUNKS/00000000000000000007/0000000001.seg");
            let mut bytes = std::fs::read(&seg).unwrap();
            bytes[30] ^= 0x04;
            std::fs::write(&seg, &bytes).unwrap();
            match e.verify_chunk(7).await {
                Err(StorageError::Corrupt { chunk, file, .. }) => {
                    assert_eq!((chunk, file), (7, seg.clone()));
                }
                other => panic!("the flipped bit must be found, got {other:?}"),
            }
            assert!(
                matches!(e.scan(7, &[0]).await, Err(StorageError::Corrupt { .. })),
                "a damaged chunk is never served, cached or not"
            );
            e.install_chunk(7, Some(1), schema(), rows(0, 250))
                .await
                .unwrap();
            e.verify_chunk(7).await.unwrap();
            assert_eq!(
                ids(&e.scan(7, &[0]).await.unwrap()),
                (0..250).collect::<Vec<_>>()
            );
        })
    });
}

#[test]
fn a_version_flushed_together_with_later_commits_is_refused_not_served_whole() {
    run("compacted", |dir| {
        Box::pin(async move {
            let e = Engine::open(cfg(&dir)).await.unwrap();
            e.create_chunk(7, schema()).await.unwrap();
            e.append(7, rows(0, 10)).await.unwrap();
            e.append(7, rows(10, 5)).await.unwrap();
            assert_eq!(ids(&e.scan_at(7, &[0], Some(1)).await.unwrap()).len(), 10);
            // One segment holds versions 1 and 2 now: version 1 cannot be cut out of it.
            e.flush().await.unwrap();
            assert!(matches!(
                e.scan_at(7, &[0], Some(1)).await,
                Err(StorageError::VersionCompacted {
                    chunk: 7,
                    wanted: 1,
                    through: 2
                })
            ));
            assert_eq!(ids(&e.scan_at(7, &[0], Some(2)).await.unwrap()).len(), 15);
            assert_eq!(e.rows_at(7, 0).unwrap(), 0);
        })
    });
}

#[test]
fn prepared_transactions_lock_chunks_and_survive_restart() {
    run("twopc", |dir| {
        Box::pin(async move {
            let e = Engine::open(cfg(&dir)).await.unwrap();
            e.create_chunk(1, schema()).await.unwrap();
            e.create_chunk(2, schema()).await.unwrap();
            e.append(1, rows(0, 5)).await.unwrap();
            e.prepare(100, 1, rows(5, 5)).await.unwrap();
            e.prepare(100, 2, rows(10, 5)).await.unwrap();
            // Invisible until committed; the chunk refuses other writers.
            assert_eq!(
                ids(&e.scan(1, &[0]).await.unwrap()),
                (0..5).collect::<Vec<_>>()
            );
            let err = e.append(1, rows(99, 1)).await.unwrap_err();
            assert!(err.to_string().contains("<ChunkInTransaction>"), "{err}");
            assert_eq!(e.chunk_info(1).unwrap().in_transaction, Some(100));
            drop(e);

            let e = Engine::open(cfg(&dir)).await.unwrap();
            assert_eq!(e.prepared(), vec![100]);
            e.commit(100).await.unwrap();
            assert_eq!(
                ids(&e.scan(1, &[0]).await.unwrap()),
                (0..10).collect::<Vec<_>>()
            );
            assert_eq!(
                ids(&e.scan(2, &[0]).await.unwrap()),
                (10..15).collect::<Vec<_>>()
            );
            assert_eq!(e.chunk_info(1).unwrap().version, 2);
            // One transaction may prepare a chunk in several batches (a large append is sent in
            // pieces); another still may not write to it, and each batch is one version.
            e.prepare(102, 1, rows(40, 2)).await.unwrap();
            e.prepare(102, 1, rows(42, 2)).await.unwrap();
            let err = e.prepare(103, 1, rows(50, 1)).await.unwrap_err();
            assert!(err.to_string().contains("<ChunkInTransaction>"), "{err}");
            e.commit(102).await.unwrap();
            assert_eq!(e.chunk_info(1).unwrap().version, 4);
            assert_eq!(e.chunk_info(1).unwrap().rows, 14);
            // A reader's snapshot: version 2 of chunk 1 is its first ten rows, though version 4
            // is committed; a version not reached yet is refused.
            assert_eq!(
                ids(&e.scan_at(1, &[0], Some(2)).await.unwrap()),
                (0..10).collect::<Vec<_>>()
            );
            assert_eq!(e.rows_at(1, 2).unwrap(), 10);
            assert_eq!(e.rows_at(1, 3).unwrap(), 12);
            assert!(matches!(
                e.scan_at(1, &[0], Some(5)).await,
                Err(StorageError::VersionMismatch {
                    wanted: 5,
                    actual: 4,
                    ..
                })
            ));
            e.prepare(101, 2, rows(20, 3)).await.unwrap();
            e.abort(101).await.unwrap();
            assert!(matches!(
                e.commit(101).await,
                Err(StorageError::NoSuchTransaction(101))
            ));
            e.append(2, rows(30, 1)).await.unwrap();
            drop(e);

            let e = Engine::open(cfg(&dir)).await.unwrap();
            assert!(e.prepared().is_empty());
            assert_eq!(
                ids(&e.scan(2, &[0]).await.unwrap()),
                vec![10, 11, 12, 13, 14, 30]
            );
            assert_eq!(
                e.chunk_info(1).unwrap().version,
                4,
                "replayed batch by batch"
            );
            assert_eq!(
                ids(&e.scan(1, &[0]).await.unwrap()),
                (0..10).chain(40..44).collect::<Vec<_>>()
            );
        })
    });
}

#[test]
fn truncate_drop_and_symbols_across_segments() {
    run("admin", |dir| {
        Box::pin(async move {
            let e = Engine::open(cfg(&dir)).await.unwrap();
            e.create_chunk(3, schema()).await.unwrap();
            assert!(matches!(
                e.create_chunk(3, schema()).await,
                Err(StorageError::ChunkExists(3))
            ));
            e.append(3, rows(0, 150)).await.unwrap(); // direct: one segment
            e.append(3, rows(150, 20)).await.unwrap(); // cached
            e.flush().await.unwrap();
            e.append(3, rows(170, 5)).await.unwrap(); // cached, not flushed
            let cols = e.scan(3, &[0, 1]).await.unwrap();
            assert_eq!(ids(&cols), (0..175).collect::<Vec<_>>());
            for (k, id) in (0..175).enumerate() {
                assert_eq!(
                    cols[1].bytes_at(k).unwrap(),
                    format!("S{}", id % 3).as_bytes()
                );
            }
            let v = e.truncate(3).await.unwrap();
            assert_eq!(e.chunk_info(3).unwrap().rows, 0);
            drop(e);
            let e = Engine::open(cfg(&dir)).await.unwrap();
            assert_eq!(e.chunk_info(3).unwrap().rows, 0, "truncation is durable");
            assert_eq!(e.chunk_info(3).unwrap().version, v);
            e.drop_chunk(3).await.unwrap();
            assert!(matches!(
                e.scan(3, &[0]).await,
                Err(StorageError::NoSuchChunk(3))
            ));
            assert!(!dir.join("storage/CHUNKS/00000000000000000003").exists());
            drop(e);
            let e = Engine::open(cfg(&dir)).await.unwrap();
            assert!(e.chunks().is_empty(), "dropped chunks stay dropped");
        })
    });
}

#[test]
fn the_cache_is_bounded() {
    run("cache", |dir| {
        Box::pin(async move {
            let mut c = cfg(&dir);
            c.cache_bytes_max = 16 << 10;
            c.block_rows = 10_000;
            let e = Engine::open(c).await.unwrap();
            e.create_chunk(1, schema()).await.unwrap();
            for i in 0..200 {
                e.append(1, rows(i * 20, 20)).await.unwrap();
                assert!(
                    e.cache_bytes() <= 16 << 10,
                    "cache {} bytes",
                    e.cache_bytes()
                );
            }
            assert_eq!(e.chunk_info(1).unwrap().rows, 4000);
            // One write bigger than the whole cache (but under a block) is refused clearly.
            let big = rows(0, 5000);
            let err = e.prepare(9, 1, big).await.unwrap_err();
            assert!(err.to_string().contains("OLAPCacheEngineSize"), "{err}");
        })
    });
}

#[test]
fn unknown_formats_are_refused_not_guessed() {
    run("format", |dir| {
        Box::pin(async move {
            let e = Engine::open(cfg(&dir)).await.unwrap();
            e.create_chunk(5, schema()).await.unwrap();
            drop(e);
            let meta = dir.join("storage/CHUNK_METADATA/00000000000000000005.meta");
            let mut bytes = std::fs::read(&meta).unwrap();
            bytes[4] = 3; // format byte
            std::fs::write(&meta, &bytes).unwrap();
            let e = Engine::open(cfg(&dir)).await.unwrap();
            let err = e.chunk_info(5).unwrap_err();
            assert!(
                err.to_string().contains("format 3 is not supported"),
                "{err}"
            );
        })
    });
}

#[test]
fn a_widened_chunk_keeps_its_rows_and_version_with_nulls_in_the_new_columns() {
    run("widen", |dir| {
        Box::pin(async move {
            let wide = Schema::new(&[
                ("id", DataType::Long),
                ("sym", DataType::Symbol),
                ("px", DataType::Double),
            ]);
            let e = Engine::open(cfg(&dir)).await.unwrap();
            e.create_chunk(3, schema()).await.unwrap();
            e.append(3, rows(0, 250)).await.unwrap();
            e.flush().await.unwrap();
            // Committed rows still in the cache engine too.
            e.prepare(1, 3, rows(250, 20)).await.unwrap();
            assert!(
                matches!(
                    e.widen_chunk(3, wide.clone()).await,
                    Err(StorageError::ChunkInTransaction { tid: 1, .. })
                ),
                "a prepared chunk is not widened under its transaction"
            );
            e.commit(1).await.unwrap();
            let version = e.chunk_info(3).unwrap().version;
            let narrower = Schema::new(&[("id", DataType::Long)]);
            assert!(
                e.widen_chunk(3, narrower).await.is_err(),
                "columns are only added"
            );
            e.widen_chunk(3, wide.clone()).await.unwrap();
            let check = |e: &Engine| {
                let i = e.chunk_info(3).unwrap();
                assert_eq!((i.version, i.rows), (version, 270));
                assert_eq!(i.schema, wide);
            };
            check(&e);
            let cols = e.scan(3, &[0, 2]).await.unwrap();
            assert_eq!(ids(&cols), (0..270).collect::<Vec<_>>());
            match &cols[1].data {
                ColumnData::F64(v) => assert!(v.iter().all(|x| *x == storage::types::null::F64)),
                other => panic!("DOUBLE nulls, got {other:?}"),
            }
            // Writes of the new width follow; all of it survives a reopen (the redo log's
            // narrower records before the widening are not replayed over it).
            let mut more = rows(270, 5);
            more.columns.push(Column {
                ty: DataType::Double,
                data: ColumnData::F64(vec![1.5; 5]),
            });
            e.append(3, more).await.unwrap();
            drop(e);
            let e = Engine::open(cfg(&dir)).await.unwrap();
            let i = e.chunk_info(3).unwrap();
            assert_eq!((i.version, i.rows), (version + 1, 275));
            let cols = e.scan(3, &[0, 2]).await.unwrap();
            assert_eq!(ids(&cols), (0..275).collect::<Vec<_>>());
            let ColumnData::F64(px) = &cols[1].data else {
                panic!("DOUBLE")
            };
            assert_eq!(&px[270..], &[1.5; 5]);
        })
    });
}

/// The segment files in chunk `chunk`'s directory.
fn segment_files(dir: &std::path::Path, chunk: u64) -> usize {
    std::fs::read_dir(dir.join(format!("storage/CHUNKS/{chunk:020}")))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn check_symbols(cols: &[Column]) {
    for (k, id) in ids(cols).into_iter().enumerate() {
        assert_eq!(
            cols[1].bytes_at(k).unwrap(),
            format!("S{}", id % 3).as_bytes()
        );
    }
}

/// D80: a prepared batch of at least a block is written as a segment of its own, invisible
/// until its commit adds it to the chunk (after the rows cached before it, before the rows the
/// transaction logs after it); it survives a restart prepared, a snapshot of an older version
/// does not see it, and an abort deletes its file.
#[test]
fn a_large_prepare_is_staged_as_a_segment_until_its_commit() {
    run("staged", |dir| {
        Box::pin(async move {
            let e = Engine::open(cfg(&dir)).await.unwrap();
            e.create_chunk(7, schema()).await.unwrap();
            e.append(7, rows(0, 20)).await.unwrap(); // cached, version 1
            e.prepare(1, 7, rows(20, 150)).await.unwrap(); // staged: a block or more
            assert_eq!(
                e.cache_bytes(),
                0,
                "the cached rows were flushed, the batch not cached"
            );
            assert_eq!(
                segment_files(&dir, 7),
                2,
                "the flushed rows' segment and the staged one"
            );
            e.prepare(1, 7, rows(170, 10)).await.unwrap(); // logged, after the staged batch
            assert!(matches!(
                e.append(7, rows(500, 1)).await,
                Err(StorageError::ChunkInTransaction { chunk: 7, tid: 1 })
            ));
            assert_eq!(
                ids(&e.scan(7, &[0, 1]).await.unwrap()),
                (0..20).collect::<Vec<_>>()
            );
            drop(e);

            let e = Engine::open(cfg(&dir)).await.unwrap();
            assert_eq!(e.prepared(), vec![1], "still prepared after a restart");
            assert_eq!(segment_files(&dir, 7), 2, "the staged file is kept at open");
            assert_eq!(e.chunk_info(7).unwrap().version, 1);
            e.commit(1).await.unwrap();
            let cols = e.scan(7, &[0, 1]).await.unwrap();
            assert_eq!(ids(&cols), (0..180).collect::<Vec<_>>());
            check_symbols(&cols);
            assert_eq!(e.chunk_info(7).unwrap().version, 3, "one version per batch");
            // Snapshots: version 1 is the cached rows only, 2 adds the staged segment.
            assert_eq!(e.rows_at(7, 1).unwrap(), 20);
            assert_eq!(e.rows_at(7, 2).unwrap(), 170);
            assert_eq!(e.rows_at(7, 3).unwrap(), 180);
            let old = e.scan_at(7, &[0, 1], Some(1)).await.unwrap();
            assert_eq!(ids(&old), (0..20).collect::<Vec<_>>());
            drop(e);

            let e = Engine::open(cfg(&dir)).await.unwrap();
            let cols = e.scan(7, &[0, 1]).await.unwrap();
            assert_eq!(
                ids(&cols),
                (0..180).collect::<Vec<_>>(),
                "replayed over the install"
            );
            check_symbols(&cols);
            assert_eq!(e.chunk_info(7).unwrap().version, 3);
            assert_eq!(
                e.rows_at(7, 2).unwrap(),
                170,
                "segment versions are durable"
            );
            e.flush().await.unwrap();
            let files = segment_files(&dir, 7);

            // Aborted, live and after a restart: the staged file is deleted.
            e.prepare(2, 7, rows(180, 150)).await.unwrap();
            assert_eq!(segment_files(&dir, 7), files + 1);
            e.abort(2).await.unwrap();
            assert_eq!(segment_files(&dir, 7), files);
            e.prepare(3, 7, rows(180, 150)).await.unwrap();
            drop(e);
            let e = Engine::open(cfg(&dir)).await.unwrap();
            assert_eq!(e.prepared(), vec![3]);
            e.abort(3).await.unwrap();
            assert_eq!(segment_files(&dir, 7), files);
            assert_eq!(e.chunk_info(7).unwrap().version, 3);
            e.append(7, rows(180, 5)).await.unwrap();
            drop(e);
            let e = Engine::open(cfg(&dir)).await.unwrap();
            assert!(e.prepared().is_empty());
            let cols = e.scan(7, &[0, 1]).await.unwrap();
            assert_eq!(ids(&cols), (0..185).collect::<Vec<_>>());
            check_symbols(&cols);
        })
    });
}

/// A staging cut short (its caller went away mid-write) leaves the chunk writable: nothing of
/// the transaction was prepared, so no outcome would ever release it.
#[test]
fn a_staging_dropped_halfway_releases_its_chunk() {
    run("staged-drop", |dir| {
        Box::pin(async move {
            let e = Engine::open(cfg(&dir)).await.unwrap();
            e.create_chunk(7, schema()).await.unwrap();
            let mut cut = Box::pin(e.prepare(4, 7, rows(0, 150)));
            let first =
                std::future::poll_fn(|cx| std::task::Poll::Ready(cut.as_mut().poll(cx))).await;
            assert!(
                first.is_pending(),
                "the staging waits for its segment's write"
            );
            drop(cut);
            assert!(e.prepared().is_empty());
            assert_eq!(e.chunk_info(7).unwrap().in_transaction, None);
            e.append(7, rows(0, 5)).await.unwrap();
            drop(e);
            let e = Engine::open(cfg(&dir)).await.unwrap();
            assert_eq!(
                ids(&e.scan(7, &[0, 1]).await.unwrap()),
                (0..5).collect::<Vec<_>>()
            );
            assert_eq!(
                segment_files(&dir, 7),
                0,
                "the half-written segment is gone"
            );
        })
    });
}

#[test]
fn a_log_waiter_dropped_mid_write_neither_wedges_the_log_nor_loses_its_records() {
    run("wal-cancel", |dir| {
        Box::pin(async move {
            use storage::wal::{Record, Wal};
            std::fs::create_dir_all(&dir).unwrap();
            let (wal, _) = Wal::open(&dir, true).await.unwrap();
            let first = wal.append(&Record::Abort { tid: 1 }).unwrap();
            let mut cut = Box::pin(wal.wait_durable(first));
            let polled =
                std::future::poll_fn(|cx| std::task::Poll::Ready(cut.as_mut().poll(cx))).await;
            assert!(polled.is_pending(), "the group's write is under way");
            // Its caller goes away while the group is being written.
            drop(cut);
            let second = wal.append(&Record::Abort { tid: 2 }).unwrap();
            rt::time::timeout(std::time::Duration::from_secs(10), wal.wait_durable(second))
                .await
                .expect("a later waiter is not stranded behind the dropped one")
                .unwrap();
            assert!(wal.durable_lsn() >= second);
            drop(wal);
            let (_, records) = Wal::open(&dir, true).await.unwrap();
            let tids: Vec<u64> = records
                .iter()
                .map(|r| match r {
                    Record::Abort { tid } => *tid,
                    other => panic!("unexpected record {other:?}"),
                })
                .collect();
            assert_eq!(
                tids,
                vec![1, 2],
                "the dropped waiter's record was written too"
            );
        })
    });
}
