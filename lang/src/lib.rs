//! `lang` — DolphinDB script for Porpoise: types, values, the parser, the vectorised
//! interpreter, built-in functions and the SQL operators that data nodes run per chunk.
//!
//! Built so far: the parser (`parse`) and the in-memory core of the interpreter (`eval`).
//! DFS databases arrive with the rest of the script-language issue. The DolphinDB type
//! system's identifiers live in `storage` (the lowest crate that stores typed data) and are
//! re-exported here, so configuration, storage, scripts and the wire protocol agree on them.

pub mod dfs;
pub mod display;
pub mod eval;
pub mod parse;
pub mod partition;
pub mod users;
pub mod wire;

pub use storage::types;
