//! `storage` — what a data node keeps its data in: volumes, columnar chunk files, the cache
//! engine with its redo log, chunk metadata (`CHUNK_METADATA`) and crash recovery.
//!
//! All I/O goes through `rt::disk`, so the engine runs on io_uring DMA files in production
//! and on `SimDisk` (with injected faults) in simulation. The on-disk formats are documented
//! byte by byte in `docs/FORMAT.md`.

pub mod batch;
pub mod bytes;
pub mod codec;
pub mod engine;
mod error;
pub mod golden;
pub mod layout;
pub mod meta;
pub mod wal;

// Values are plain data below the engine (the `value` crate); the paths stay `storage::…`.
pub use value::{column, types};

pub use batch::{Batch, Schema};
pub use engine::{ChunkInfo, Engine, EngineConfig, Piece, SpanCache, Spans};
pub use error::{format_refusal, StorageError};
