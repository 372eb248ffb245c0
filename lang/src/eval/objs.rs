//! `objs([shared=false])`: the session's variables as a table, with DolphinDB's columns (name,
//! type, form, rows, columns, bytes, shared, extra, owner) — what the web Shell's Local
//! Variables panel lists. No object is shared across sessions here, so `objs(true)` lists the
//! same variables. Functions a session defined are not variables and are not listed.

use storage::column::{Column, ColumnData};
use storage::types::DataType;

use super::interp::Interp;
use super::value::{Table, Value};

pub(super) const NAMES: &[&str] = &["objs"];

/// DolphinDB's type and form names of a value, and its rows and columns.
fn shape(v: &Value) -> (String, &'static str, i64, i64) {
    match v {
        Value::Scalar(c) => (c.ty.name().to_string(), "SCALAR", 1, 1),
        Value::Vector(c) => (c.ty.name().to_string(), "VECTOR", c.len() as i64, 1),
        Value::Pair(a, _) => (
            a.column().map_or("ANY", |c| c.ty.name()).to_string(),
            "PAIR",
            2,
            1,
        ),
        Value::Tuple(items) => ("ANY".into(), "VECTOR", items.len() as i64, 1),
        Value::Matrix(m) => (
            m.data.ty.name().to_string(),
            "MATRIX",
            m.rows as i64,
            m.cols as i64,
        ),
        Value::Set(c) => (c.ty.name().to_string(), "SET", c.len() as i64, 1),
        Value::Dict(d) => ("ANY".into(), "DICTIONARY", d.len() as i64, 1),
        Value::Table(t) => (
            "BASIC".into(),
            "TABLE",
            t.rows() as i64,
            t.columns.len() as i64,
        ),
        Value::DfsTable { .. } => ("SEGMENTED".into(), "TABLE", 0, 0),
        Value::Database(_) | Value::PartitionSpec(_) => ("HANDLE".into(), "SCALAR", 1, 1),
        Value::Func(_) | Value::Builtin(_) => ("FUNCTIONDEF".into(), "SCALAR", 1, 1),
        other => (other.typestr(), "SCALAR", 1, 1),
    }
}

/// The bytes a value holds in memory (its columns' buffers; 16 for anything else).
fn bytes(v: &Value) -> i64 {
    let b = match v {
        Value::Scalar(c) | Value::Vector(c) | Value::Set(c) => c.heap_bytes(),
        Value::Matrix(m) => m.data.heap_bytes(),
        Value::Table(t) => t.columns.iter().map(|(_, c)| c.heap_bytes()).sum(),
        Value::Tuple(items) => items.iter().map(|i| bytes(i) as usize).sum(),
        Value::Pair(a, b) => (bytes(a) + bytes(b)) as usize,
        Value::Dict(d) => d.iter().map(|(k, v)| k.len() + bytes(v) as usize).sum(),
        _ => 16,
    };
    b as i64
}

pub(super) fn call(it: &Interp, _name: &str, _args: &[Value]) -> Value {
    let mut vars: Vec<(&String, &Value)> = it
        .global_vars()
        .filter(|(_, v)| !matches!(v, Value::Func(_) | Value::Builtin(_)))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(b.0));
    let text = |f: &dyn Fn(&(&String, &Value)) -> String| {
        let v: Vec<String> = vars.iter().map(f).collect();
        Column::from_strings(DataType::String, &v)
    };
    let long = |f: &dyn Fn(&(&String, &Value)) -> i64| Column {
        ty: DataType::Long,
        data: ColumnData::I64(vars.iter().map(f).collect()),
    };
    let int = |f: &dyn Fn(&(&String, &Value)) -> i64| Column {
        ty: DataType::Int,
        data: ColumnData::I32(vars.iter().map(|v| f(v) as i32).collect()),
    };
    let owner = it.user.clone().unwrap_or_else(|| "guest".into());
    Value::Table(std::rc::Rc::new(Table {
        columns: vec![
            ("name".into(), text(&|(n, _)| n.to_string())),
            ("type".into(), text(&|(_, v)| shape(v).0)),
            ("form".into(), text(&|(_, v)| shape(v).1.to_string())),
            ("rows".into(), int(&|(_, v)| shape(v).2)),
            ("columns".into(), int(&|(_, v)| shape(v).3)),
            ("bytes".into(), long(&|(_, v)| bytes(v))),
            (
                "shared".into(),
                Column {
                    ty: DataType::Bool,
                    data: ColumnData::I8(vec![0; vars.len()]),
                },
            ),
            (
                "extra".into(),
                text(&|(_, v)| match v {
                    Value::DfsTable { db, table } => format!("{db}/{table}"),
                    Value::Database(db) => db.clone(),
                    _ => String::new(),
                }),
            ),
            ("owner".into(), text(&|_| owner.clone())),
        ],
    }))
}
