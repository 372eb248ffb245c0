//! `lang` — DolphinDB script for Porpoise: types, values, the parser, the vectorised
//! interpreter, built-in functions and the SQL operators that data nodes run per chunk.
//!
//! The parser and interpreter arrive with the script-language issue. The DolphinDB type
//! system's identifiers live in `storage` (the lowest crate that stores typed data) and are
//! re-exported here, so configuration, storage, scripts and the wire protocol agree on them.

pub use storage::types;
