//! Values as plain data: what the wire carries and the console shows. The interpreter's own
//! values (`lang::eval::Value`) add functions, types used as values, database handles and
//! the like, and convert to these at the edge (`lang::wire`).

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::column::Column;

/// An in-memory table: named columns of equal length.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<(String, Column)>,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.columns.first().map(|(_, c)| c.len()).unwrap_or(0)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, c)| c)
    }
}

/// A matrix: `rows x cols` values stored column by column, with optional labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    /// Column-major: element (r, c) is `data[c * rows + r]`.
    pub data: Column,
    pub row_labels: Option<Column>,
    pub col_labels: Option<Column>,
}

/// A value as plain data.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Void,
    Scalar(Column),
    Vector(Column),
    Pair(Box<Value>, Box<Value>),
    Tuple(Vec<Value>),
    Matrix(Rc<Matrix>),
    /// A set: distinct elements in first-seen order.
    Set(Column),
    Dict(BTreeMap<String, Value>),
    Table(Rc<Table>),
    /// A value only a server holds (a function, a database handle, …), by the name the
    /// console shows for it. The wire refuses to carry it.
    Opaque(String),
}

impl Value {
    /// The column of a scalar or vector.
    pub fn column(&self) -> Option<&Column> {
        match self {
            Value::Scalar(c) | Value::Vector(c) => Some(c),
            _ => None,
        }
    }
}
