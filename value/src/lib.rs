//! `value` — what a value is, with nothing of the server: DolphinDB's data types and their
//! nulls (`types`), typed columns (`column`), values as plain data (`value`), DolphinDB's
//! wire serialization of them (`wire`) and the console's display (`display`). The storage
//! engine, the interpreter and the client all build on it, so a program that only talks to
//! Porpoise links no engine, runtime or Raft.

pub mod column;
pub mod display;
pub mod types;
#[allow(clippy::module_inception)]
pub mod value;
pub mod wire;

pub use value::{Matrix, Table, Value};
