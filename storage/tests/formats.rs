//! Golden bytes of the data node's on-disk formats (docs/FORMAT.md): chunk metadata and column
//! blocks, each encoded from a fixed value and compared with `tests/golden/*.hex`
//! (`storage::golden`; the redo log's are pinned beside its codec, in `wal`'s unit tests). A newer format than the build reads is refused
//! with the file and both format numbers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use storage::column::{Column, ColumnData, SymbolBase};
use storage::meta::{BlockRef, ChunkMeta, SegmentMeta};
use storage::types::DataType;
use storage::wal::Record;
use storage::Schema;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.hex"))
}

fn sample_meta() -> ChunkMeta {
    let mut base = SymbolBase::with_null();
    let mut index = std::collections::HashMap::new();
    base.intern(&mut index, b"AAPL");
    ChunkMeta {
        chunk: 42,
        version: 7,
        volume: 1,
        schema: Schema::new(&[("sym", DataType::Symbol), ("price", DataType::Double)]),
        bases: vec![Some(Arc::new(base)), None],
        segments: vec![SegmentMeta {
            id: 3,
            rows: 2,
            version: 7,
            blocks: vec![
                vec![BlockRef {
                    offset: 0,
                    len: 40,
                    rows: 2,
                }],
                vec![BlockRef {
                    offset: 40,
                    len: 44,
                    rows: 2,
                }],
            ],
        }],
    }
}

#[test]
fn chunk_metadata_bytes_are_pinned() {
    let m = sample_meta();
    let bytes = m.encode();
    storage::golden::check(&golden("chunk_meta"), &bytes);
    assert_eq!(ChunkMeta::decode(&bytes).unwrap(), m);
}

/// Format 1 metadata (no segment versions) is still read: its segments are at version 0,
/// served to every reader as format 1 builds served them.
#[test]
fn chunk_metadata_format_1_is_still_read() {
    let bytes = storage::golden::read(&golden("chunk_meta_v1"));
    assert_eq!(bytes[4], storage::meta::META_FORMAT_V1);
    let mut want = sample_meta();
    want.segments[0].version = 0;
    assert_eq!(ChunkMeta::decode(&bytes).unwrap(), want);
    assert_eq!(want.segments_at(1), Some(1));
}

/// A reader's snapshot takes the segments up to the first that reaches its version: a staged
/// transaction's segment (one version) is exact; a version inside a flush's (several) cannot
/// be served from it.
#[test]
fn a_snapshot_takes_the_segments_up_to_its_version() {
    let mut m = sample_meta();
    let seg = |id: u64, version: u64| SegmentMeta {
        id,
        rows: 2,
        version,
        blocks: m.segments[0].blocks.clone(),
    };
    // Segment 1 holds versions 1..=3 (a flush), 2 holds 4, 3 holds 5 (staged).
    m.segments = vec![seg(1, 3), seg(2, 4), seg(3, 5)];
    m.version = 5;
    assert_eq!(m.check(), Ok(()));
    let seen: Vec<Option<usize>> = (0..=6).map(|v| m.segments_at(v)).collect();
    assert_eq!(
        seen,
        vec![Some(0), None, None, Some(1), Some(2), Some(3), Some(3)]
    );
    assert_eq!(m.rows_of(2), 4);
    // Versions must not go down, nor past the chunk's.
    m.segments[2].version = 2;
    assert!(m.check().is_err());
    m.segments[2].version = 6;
    assert!(m.check().is_err());
}

#[test]
fn column_block_bytes_are_pinned() {
    let ints = Column {
        ty: DataType::Int,
        data: ColumnData::I32(vec![1, 2, 3, i32::MIN, 5]),
    };
    let doubles = Column {
        ty: DataType::Double,
        data: ColumnData::F64(vec![1.5, -f64::MAX, 2.25]),
    };
    let strings = Column::from_strings(DataType::String, &["a", "", "ccc"]);
    let mut all = Vec::new();
    for c in [&ints, &doubles, &strings] {
        let block = storage::codec::encode_block(c);
        let (back, used) = storage::codec::decode_block(&block, c.ty, None).unwrap();
        assert_eq!((&back, used), (c, block.len()));
        all.extend_from_slice(&block);
    }
    storage::golden::check(&golden("column_blocks"), &all);
}

fn run<F, Fut>(name: &str, body: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    rt::Runtime::new(name)
        .run(move |_s: rt::shard::Shard<()>| body())
        .unwrap();
}

fn scratch(name: &str) -> PathBuf {
    #[cfg(not(madsim))]
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("formats-{name}"));
    #[cfg(madsim)]
    let p = PathBuf::from(format!("/formats-{name}"));
    p
}

#[test]
fn newer_metadata_and_redo_log_formats_are_refused_by_name() {
    run("newer", || async {
        let dir = scratch("newer");
        #[cfg(not(madsim))]
        let _ = std::fs::remove_dir_all(&dir);
        rt::disk::create_dir_all(&dir).await.unwrap();
        // Chunk metadata of format 3, with a valid header checksum.
        let mut bytes = sample_meta().encode();
        bytes[4] = 3;
        let crc = crc32fast::hash(&bytes[..16]);
        bytes[16..20].copy_from_slice(&crc.to_le_bytes());
        let path = dir.join("00000000000000000042.meta");
        rt::disk::replace_file(&path, &bytes).await.unwrap();
        let e = storage::meta::read_meta(&path, 42)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("STO-010")
                && e.contains(&path.display().to_string())
                && e.contains("format 3, but this build reads format 2")
                && e.contains("newer Porpoise"),
            "{e}"
        );
        // A redo log of format 2 is refused, not cut as a torn tail.
        let redo = dir.join("redo");
        rt::disk::create_dir_all(&redo).await.unwrap();
        let mut group = storage::wal::encode_group(1, &[Record::Abort { tid: 1 }]);
        group[4] = 2;
        let crc = crc32fast::hash(&group[..24]);
        group[24..28].copy_from_slice(&crc.to_le_bytes());
        let log = redo.join("redo.00000000000000000001.log");
        rt::disk::replace_file(&log, &group).await.unwrap();
        let e = storage::wal::Wal::open(&redo, true)
            .await
            .err()
            .expect("refused")
            .to_string();
        assert!(
            e.contains("redo log format 2, but this build reads format 1"),
            "{e}"
        );
        assert_eq!(
            rt::disk::read_file(&log).await.unwrap(),
            group,
            "left as it was"
        );
        // A complete group (checksums hold) whose record this build does not know is refused
        // too: it is no torn tail, and cutting it would drop acknowledged records.
        let unknown = redo.join("unknown");
        rt::disk::create_dir_all(&unknown).await.unwrap();
        let good = storage::wal::encode_group(1, &[Record::Abort { tid: 1 }]);
        let mut bad = storage::wal::encode_group(2, &[Record::Abort { tid: 2 }]);
        bad[32 + 1] = 99; // the record's kind byte, after the group header and its length
        let crc = crc32fast::hash(&bad[32..32 + 10]);
        bad[20..24].copy_from_slice(&crc.to_le_bytes());
        let crc = crc32fast::hash(&bad[..24]);
        bad[24..28].copy_from_slice(&crc.to_le_bytes());
        let log = unknown.join("redo.00000000000000000001.log");
        let bytes = [good, bad].concat();
        rt::disk::replace_file(&log, &bytes).await.unwrap();
        let e = storage::wal::Wal::open(&unknown, true)
            .await
            .err()
            .expect("refused")
            .to_string();
        assert!(
            e.contains("is complete but its records do not parse"),
            "{e}"
        );
        assert_eq!(rt::disk::read_file(&log).await.unwrap(), bytes, "not cut");
    });
}
