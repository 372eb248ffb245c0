//! Values as plain data: what the wire carries and the console shows. The interpreter's own
//! values (`lang::eval::Value`) add functions, types used as values, database handles and
//! the like, and convert to these at the edge (`lang::wire`).

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::column::{Column, ColumnData};
use crate::types::DataType;

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
    /// A LONG scalar.
    pub fn int(v: i64) -> Value {
        Value::Scalar(Column {
            ty: DataType::Long,
            data: ColumnData::I64(vec![v]),
        })
    }

    /// A DOUBLE scalar.
    pub fn double(v: f64) -> Value {
        Value::Scalar(Column {
            ty: DataType::Double,
            data: ColumnData::F64(vec![v]),
        })
    }

    /// A BOOL scalar.
    pub fn bool(v: bool) -> Value {
        Value::Scalar(Column {
            ty: DataType::Bool,
            data: ColumnData::I8(vec![v as i8]),
        })
    }

    /// A STRING scalar.
    pub fn string(s: &str) -> Value {
        Value::Scalar(Column::from_strings(DataType::String, &[s]))
    }

    /// The column of a scalar or vector.
    pub fn column(&self) -> Option<&Column> {
        match self {
            Value::Scalar(c) | Value::Vector(c) => Some(c),
            _ => None,
        }
    }
}
