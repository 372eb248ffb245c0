//! The DolphinDB script interpreter: values, vectorised operators, built-in functions and SQL
//! over in-memory tables.
//!
//! `interp` evaluates statements and expressions; `builtins`, `funcs`, `forms` and `dfs_fns`
//! hold the built-in functions; `sql` runs queries (`group` groups rows, `partial` aggregates
//! partitioned tables partition by partition); `dml` runs update/delete/insert.

mod access;
mod builtins;
mod calendar;
mod cluster_fns;
mod copartition;
mod dfs_fns;
mod dml;
mod forms;
mod funcs;
mod group;
mod interp;
mod joins;
mod mapreduce;
mod objs;
mod ops;
mod partial;
mod partitionwise;
mod series;
mod server_log;
mod sql;
mod sql_forms;
mod stats;
mod strings;
mod topk;
pub mod value;
mod windows;

pub use builtins::{
    element as element_of, render as render_value, scalar_string as scalar_string_of,
};
pub use calendar::UNITS as DURATION_UNITS;
pub(crate) use copartition::join_tables;
pub use interp::{Interp, NodeInfo};
pub(crate) use ops::scalar_f64;
pub(crate) use partial::{combine_partials, partition_partial, PartialPlan};
pub(crate) use sql::{filtered, referenced_columns, select_on};

/// The distinct elements of `c` in first-seen order (a set's keys).
pub fn set_of(c: &storage::column::Column) -> storage::column::Column {
    forms::distinct_in_order(c)
}

/// Converts a column to `ty` (DolphinDB casting rules).
pub fn cast_column(
    c: &storage::column::Column,
    ty: storage::types::DataType,
) -> Result<storage::column::Column, EvalError> {
    builtins::cast(c, ty)
}

/// Rows `idx` of a column.
pub fn gather_rows(c: &storage::column::Column, idx: &[usize]) -> storage::column::Column {
    builtins::gather(c, idx)
}

/// An integral or temporal column's values as i64 (nulls as `i64::MIN`); `None` otherwise.
pub fn column_i64(c: &storage::column::Column) -> Option<Vec<i64>> {
    match ops::to_num(c).ok()? {
        ops::Num::I(v) => Some(v),
        ops::Num::F(_) => None,
    }
}
pub use value::{Table, Value};

use crate::parse::{ParseError, Pos};

/// A script error: what went wrong and, when known, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    pub pos: Option<Pos>,
    pub message: String,
}

impl EvalError {
    pub fn msg(m: impl Into<String>) -> EvalError {
        EvalError {
            pos: None,
            message: m.into(),
        }
    }

    /// Attaches `pos` unless the error already has a (more precise) position.
    pub fn at(mut self, pos: Pos) -> EvalError {
        self.pos.get_or_insert(pos);
        self
    }
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pos {
            Some(p) => write!(f, "[line #{}, column #{}] {}", p.line, p.col, self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for EvalError {}

impl From<ParseError> for EvalError {
    fn from(e: ParseError) -> Self {
        EvalError {
            pos: Some(e.pos),
            message: format!("Syntax Error: {}", e.message),
        }
    }
}
