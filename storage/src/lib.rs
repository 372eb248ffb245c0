//! `storage` — what a data node keeps its data in: volumes, columnar chunk files, the cache
//! engine with its redo log, chunk metadata (`CHUNK_METADATA`) and crash recovery.
//!
//! All I/O goes through `rt::disk`, so the engine runs on io_uring DMA files in production
//! and on `SimDisk` (with injected faults) in simulation. The engine itself arrives with the
//! storage issue; this crate currently owns the on-disk *layout* of a node's storage
//! directories, which configuration resolution and the metadata backup steps already rely on.

pub mod layout;
