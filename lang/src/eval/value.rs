//! Runtime values. Vectors and scalars are `storage` columns (DolphinDB's sentinel nulls, so
//! the same arrays flow between storage, the interpreter and the wire); a scalar is a column of
//! length one marked as a scalar.

use std::collections::BTreeMap;
use std::rc::Rc;

use storage::column::{Column, ColumnData};
use storage::types::DataType;

use crate::parse::ast::{Expr, Stmt};

/// A user-defined function or lambda, with partially applied arguments.
#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub params: Vec<String>,
    pub body: Rc<Vec<Stmt>>,
    /// Bound arguments from partial application (`f{a, }`): `None` slots are open.
    pub bound: Vec<Option<Value>>,
}

/// A named built-in, possibly partially applied.
#[derive(Debug, Clone)]
pub struct Builtin {
    pub name: String,
    pub bound: Vec<Option<Value>>,
    /// The expressions of the bound arguments (so `tableInsert{t}` still knows it is `t`).
    pub bound_exprs: Vec<Option<Expr>>,
}

// Tables and matrices are plain data, shared with the wire and the client.
pub use value::{Matrix, Table};

#[derive(Debug, Clone)]
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
    Func(Rc<Function>),
    Builtin(Rc<Builtin>),
    /// A data type used as a value (`INT`, `SYMBOL`, ...).
    Type(DataType),
    /// A partition scheme kind (`VALUE`, `RANGE`, `HASH`, `LIST`, `COMPO`).
    PartitionType(String),
    /// An unevaluated expression (SQL meta-programming, `table(x)` column naming).
    Code(Rc<Expr>),
    /// A duration (`5m`, `1d`): a count of a unit from `calendar::UNITS`.
    Duration(i64, &'static str),
    /// A `dfs://` database handle.
    Database(String),
    /// A partitioning level defined by `database("", ...)`, for a COMPO database.
    PartitionSpec(Rc<crate::partition::Scheme>),
    /// A partitioned table (only its name: rows are read when a query needs them).
    DfsTable {
        db: String,
        table: String,
    },
    /// One partition's share of a query (`sqlDS`, `mr`).
    DataSource(Rc<super::mapreduce::DataSource>),
}

impl Value {
    pub fn scalar(ty: DataType, data: ColumnData) -> Value {
        Value::Scalar(Column { ty, data })
    }

    pub fn int(v: i64) -> Value {
        Value::scalar(DataType::Long, ColumnData::I64(vec![v]))
    }

    pub fn double(v: f64) -> Value {
        Value::scalar(DataType::Double, ColumnData::F64(vec![v]))
    }

    pub fn bool(v: bool) -> Value {
        Value::scalar(DataType::Bool, ColumnData::I8(vec![v as i8]))
    }

    pub fn string(s: &str) -> Value {
        Value::Scalar(Column::from_strings(DataType::String, &[s]))
    }

    /// The column behind a scalar or vector.
    pub fn column(&self) -> Option<&Column> {
        match self {
            Value::Scalar(c) | Value::Vector(c) | Value::Set(c) => Some(c),
            _ => None,
        }
    }

    /// DolphinDB's name for the value's form and type, as `typestr` prints it.
    pub fn typestr(&self) -> String {
        match self {
            Value::Void => "VOID".into(),
            Value::Scalar(c) => c.ty.name().to_string(),
            Value::Vector(c) => format!("FAST {} VECTOR", c.ty.name()),
            Value::Pair(..) => "PAIR".into(),
            Value::Tuple(_) => "ANY VECTOR".into(),
            Value::Matrix(m) => format!("FAST {} MATRIX", m.data.ty.name()),
            Value::Set(c) => format!("{} SET", c.ty.name()),
            Value::Dict(_) => "DICTIONARY".into(),
            Value::Table(_) => "IN-MEMORY TABLE".into(),
            Value::Func(_) | Value::Builtin(_) => "FUNCTION".into(),
            Value::Type(_) => "INT".into(),
            Value::PartitionType(_) => "INT".into(),
            Value::Code(_) => "CODE".into(),
            Value::Duration(..) => "DURATION".into(),
            Value::Database(_) | Value::PartitionSpec(_) => "HANDLE".into(),
            Value::DfsTable { .. } => "SEGMENTED TABLE".into(),
            Value::DataSource(_) => "DATASOURCE".into(),
        }
    }

    /// The form's length: 1 for scalars, rows for tables.
    pub fn size(&self) -> usize {
        match self {
            Value::Scalar(_) => 1,
            Value::Vector(c) => c.len(),
            Value::Tuple(v) => v.len(),
            Value::Matrix(m) => m.rows * m.cols,
            Value::Set(c) => c.len(),
            Value::Dict(d) => d.len(),
            Value::Table(t) => t.rows(),
            Value::Pair(..) => 2,
            _ => 1,
        }
    }
}
