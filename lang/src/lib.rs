//! `lang` — DolphinDB script for Porpoise: types, values, the parser, the vectorised
//! interpreter, built-in functions and the SQL operators that data nodes run per chunk.
//!
//! The parser and interpreter arrive with the script-language issue. This crate already owns
//! the DolphinDB *type system's* identifiers, because configuration, storage and the wire
//! protocol all name types by these ids and they must agree everywhere.

pub mod types;
