//! `lang` — DolphinDB script for Porpoise: types, values, the parser, the vectorised
//! interpreter, built-in functions and the SQL operators that data nodes run per chunk.
//!
//! Modules: `parse` (script to syntax tree), `eval` (values, operators, built-ins, SQL, the
//! partition-wise aggregation), `partition` (VALUE/RANGE/HASH/LIST/COMPO placement and
//! pruning), `dfs` (a node's `dfs://` catalog over the storage engine), `wire` (DolphinDB's
//! object serialization), `display` (values as the console prints them), `users` (accounts).
//! The DolphinDB type system's identifiers live in `storage` (the lowest crate that stores
//! typed data) and are re-exported here, so configuration, storage, scripts and the wire
//! protocol agree on them.

pub mod catalog;
pub mod cluster;
pub mod dfs;
pub mod display;
pub mod eval;
pub mod fragment;
pub mod parse;
pub mod partition;
pub mod users;
pub mod wire;

pub use storage::types;
