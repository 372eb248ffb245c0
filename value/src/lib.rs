//! `value` — what a value is, with nothing of the server: DolphinDB's data types and their
//! nulls (`types`), typed columns (`column`). The storage engine, the interpreter and the
//! client all build on it, so a program that only talks to Porpoise links no engine, runtime
//! or Raft.

pub mod column;
pub mod types;
