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
        // Chunk metadata of format 2, with a valid header checksum.
        let mut bytes = sample_meta().encode();
        bytes[4] = 2;
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
                && e.contains("format 2, but this build reads format 1")
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
    });
}
