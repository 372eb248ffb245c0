//! Built-in functions. Unknown names, wrong argument counts and wrong types give
//! DolphinDB-style messages naming the function.

use std::rc::Rc;

use storage::column::{Column, ColumnData};
use storage::types::{null, DataType};

pub(super) use super::access::date_column;
pub use super::access::{cast, element, gather, index};
use super::interp::{to_vector, Interp};
use super::ops::{self, from_num, to_num, Num};
use super::value::{Table, Value};
use super::EvalError;
use crate::parse::ast::{Expr, ExprKind};
use crate::parse::Pos;

const NAMES: &[&str] = &[
    "login",
    "logout",
    "changePwd",
    "each",
    "createUser",
    "resetPwd",
    "deleteUser",
    "version",
    "print",
    "typestr",
    "size",
    "count",
    "take",
    "til",
    "seq",
    "rand",
    "round",
    "lpad",
    "string",
    "symbol",
    "int",
    "long",
    "double",
    "date",
    "join",
    "join!",
    "cj",
    "table",
    "first",
    "last",
    "max",
    "min",
    "sum",
    "avg",
    "mean",
    "neg",
    "not",
    "abs",
    "sqrt",
    "isNull",
    "cumsum",
    "sort",
    "distinct",
    "upper",
    "lower",
    "strlen",
    "in",
    "cast",
    "existsDatabase",
    "add",
    "sub",
    "mul",
    "div",
    "database",
    "dropDatabase",
    "loadTable",
    "createPartitionedTable",
    "createTable",
    "existsTable",
    "dropTable",
    "dropPartition",
    "getClusterChunksStatus",
    "getRecoveryTaskStatus",
    "getChunksMeta",
    "getTabletsMeta",
    "addColumn",
    "setAtomicLevel",
    "getClusterDFSDatabases",
    "getClusterDFSTables",
    "getDFSDirectoryContent",
    "append!",
    "tableInsert",
    "schema",
    "undef",
    "getNodeAlias",
    "getControllerAlias",
    "getClusterPerf",
    "sleep",
    "rpc",
    "pnodeRun",
    "sqlDS",
    "mr",
    "getNodeType",
    "getActiveMaster",
    "isNodeInitialized",
    "getRequiredAPIVersion",
];

/// Most elements a generator (`take`, `til`, `rand`, `seq`) may produce: a guard until
/// per-session memory accounting (`maxMemSize`) arrives.
pub const GENERATED_ROWS_MAX: i64 = 1 << 28;

fn bounded(name: &str, n: i64) -> Result<usize, EvalError> {
    if n > GENERATED_ROWS_MAX {
        return Err(EvalError::msg(format!(
            "The function [{name}] would create {n} elements, more than {GENERATED_ROWS_MAX}"
        )));
    }
    Ok(n.max(0) as usize)
}

/// Whether `name` is a built-in function.
pub fn is_builtin(name: &str) -> bool {
    NAMES.contains(&name)
        || super::forms::NAMES.contains(&name)
        || super::funcs::NAMES.contains(&name)
        || super::objs::NAMES.contains(&name)
        || super::cluster_fns::NAMES.contains(&name)
        || super::server_log::NAMES.contains(&name)
        || super::series::NAMES.contains(&name)
        || super::strings::NAMES.contains(&name)
        || super::stats::NAMES.contains(&name)
        || super::joins::NAMES.contains(&name)
        || super::calendar::NAMES.contains(&name)
        || super::windows::NAMES.contains(&name)
}

/// `<NoPrivilege>` unless the session is the administrator's.
pub(super) fn require_admin(it: &Interp, name: &str) -> Result<(), EvalError> {
    if it.user.as_deref().is_some_and(|u| it.users.is_admin(u)) {
        return Ok(());
    }
    Err(EvalError::msg(format!(
        "<NoPrivilege>Only the administrator may call {name}"
    )))
}

pub(super) fn arity(name: &str, args: &[Value], lo: usize, hi: usize) -> Result<(), EvalError> {
    if args.len() < lo || args.len() > hi {
        let want = if lo == hi {
            lo.to_string()
        } else {
            format!("{lo} to {hi}")
        };
        return Err(EvalError::msg(format!(
            "The function [{name}] expects {want} argument(s), but the actual number of arguments is {}",
            args.len()
        )));
    }
    Ok(())
}

pub(super) fn col<'a>(name: &str, v: &'a Value) -> Result<&'a Column, EvalError> {
    v.column().ok_or_else(|| {
        EvalError::msg(format!(
            "The function [{name}] does not accept a {} argument",
            v.typestr()
        ))
    })
}

pub(super) fn same_form(template: &Value, c: Column) -> Value {
    match template {
        Value::Scalar(_) => Value::Scalar(c),
        _ => Value::Vector(c),
    }
}

/// A scalar as an integer.
/// `addColumn`'s names (a string or strings) and types (a type or a vector of types), paired.
fn new_columns(names: &Value, types: &Value) -> Result<Vec<(String, DataType)>, EvalError> {
    let names: Vec<String> = match names {
        Value::Scalar(_) => vec![super::builtins::scalar_string(names)?],
        v => {
            let c = v
                .column()
                .ok_or_else(|| EvalError::msg("addColumn: colNames must be strings"))?;
            (0..c.len())
                .map(|i| String::from_utf8_lossy(c.bytes_at(i).unwrap_or_default()).into_owned())
                .collect()
        }
    };
    let types: Vec<DataType> = match types {
        Value::Type(t) => vec![*t],
        Value::Tuple(ts) => ts
            .iter()
            .map(|t| match t {
                Value::Type(t) => Ok(*t),
                _ => Err(EvalError::msg("addColumn: colTypes must be types")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(EvalError::msg("addColumn: colTypes must be types")),
    };
    if names.len() != types.len() {
        return Err(EvalError::msg(format!(
            "addColumn: {} column names for {} types",
            names.len(),
            types.len()
        )));
    }
    if let Some(bad) = names.iter().find(|n| {
        n.is_empty()
            || !n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    }) {
        return Err(EvalError::msg(format!(
            "addColumn: '{bad}' is not a valid column name"
        )));
    }
    Ok(names.into_iter().zip(types).collect())
}

pub fn scalar_i64(v: &Value) -> Result<i64, EvalError> {
    match v.column() {
        Some(c) if c.len() == 1 => match to_num(c).map_err(EvalError::msg)? {
            Num::I(x) => Ok(x[0]),
            Num::F(x) => Ok(x[0] as i64),
        },
        _ => Err(EvalError::msg(format!(
            "expected an integer scalar, got {}",
            v.typestr()
        ))),
    }
}

/// A scalar as a string.
pub fn scalar_string(v: &Value) -> Result<String, EvalError> {
    match v.column() {
        Some(c) if c.len() == 1 => match c.bytes_at(0) {
            Some(b) => Ok(String::from_utf8_lossy(b).into_owned()),
            None => Ok(render(c, 0)),
        },
        _ => Err(EvalError::msg(format!(
            "expected a string scalar, got {}",
            v.typestr()
        ))),
    }
}

/// Value `i` of a column as DolphinDB prints it.
pub fn render(c: &Column, i: usize) -> String {
    crate::display::cell(c, i)
}

/// Whether each element is null (an empty string for STRING and SYMBOL).
pub(crate) fn null_mask(c: &Column) -> Vec<bool> {
    (0..c.len())
        .map(|i| match c.bytes_at(i) {
            Some(b) => b.is_empty(),
            None => ops::scalar_f64(c, i) == Some(f64::NEG_INFINITY),
        })
        .collect()
}

fn aggregate(name: &str, c: &Column) -> Result<Column, EvalError> {
    let n = c.len();
    if name == "count" {
        return Ok(Column {
            ty: DataType::Long,
            data: ColumnData::I64(vec![n as i64]),
        });
    }
    if matches!(name, "first" | "last") {
        return Ok(if n == 0 {
            Column::nulls(c.ty, 1)
        } else if name == "first" {
            c.slice(0, 1)
        } else {
            c.slice(n - 1, n)
        });
    }
    let num = to_num(c).map_err(|e| EvalError::msg(format!("The function [{name}] {e}")))?;
    let f: Vec<f64> = match &num {
        Num::I(v) => v
            .iter()
            .filter(|x| **x != i64::MIN)
            .map(|x| *x as f64)
            .collect(),
        Num::F(v) => v.iter().filter(|x| !x.is_nan()).copied().collect(),
    };
    let out = match name {
        "sum" => {
            if let Num::I(v) = &num {
                let s: i64 = v.iter().filter(|x| **x != i64::MIN).sum();
                return Ok(from_num(Num::I(vec![s]), DataType::Long));
            }
            f.iter().sum::<f64>()
        }
        "avg" | "mean" => {
            if f.is_empty() {
                f64::NAN
            } else {
                f.iter().sum::<f64>() / f.len() as f64
            }
        }
        "max" | "min" => {
            let pick = f.iter().copied().fold(None, |acc: Option<f64>, x| {
                Some(match acc {
                    None => x,
                    Some(a) => {
                        if name == "max" {
                            a.max(x)
                        } else {
                            a.min(x)
                        }
                    }
                })
            });
            return Ok(from_num(Num::F(vec![pick.unwrap_or(f64::NAN)]), c.ty));
        }
        _ => {
            return Err(EvalError::msg(format!(
                "The function [{name}] is not an aggregate"
            )))
        }
    };
    Ok(from_num(Num::F(vec![out]), DataType::Double))
}

/// Column names for `table(...)` arguments: a variable keeps its name, `x as n` takes `n`.
fn column_name(expr: Option<&(Option<String>, Expr)>, i: usize) -> String {
    match expr.map(|(_, e)| &e.kind) {
        Some(ExprKind::Ident(n)) => n.clone(),
        Some(ExprKind::Alias { name, .. }) => name.clone(),
        _ => format!("col{}", i + 1),
    }
}

pub(super) fn dfs_unsupported(name: &str) -> EvalError {
    EvalError::msg(format!(
        "The function [{name}] needs DFS databases, which this build of Porpoise does not serve yet"
    ))
}

pub(super) fn table_value(t: Table) -> Value {
    Value::Table(Rc::new(t))
}

/// Calls built-in `name`.
pub async fn call(
    it: &mut Interp,
    name: &str,
    args: Vec<Value>,
    exprs: &[(Option<String>, Expr)],
    _pos: Pos,
) -> Result<Value, EvalError> {
    match name {
        "login" => {
            arity(name, &args, 2, 3)?;
            let (user, pass) = (scalar_string(&args[0])?, scalar_string(&args[1])?);
            if !it.users.verify(&user, &pass) {
                return Err(EvalError::msg("The user name or password is incorrect."));
            }
            it.user = Some(user);
            Ok(Value::Void)
        }
        "each" => {
            arity(name, &args, 2, 2)?;
            let (f, v) = (args[0].clone(), &args[1]);
            let mut out = Vec::with_capacity(v.size().min(1 << 20));
            for i in 0..v.size() {
                let x = element(v, i)?;
                out.push(Box::pin(it.apply(f.clone(), vec![x], &[], _pos)).await?);
            }
            to_vector(out)
        }
        "changePwd" => {
            arity(name, &args, 2, 2)?;
            let (old, new) = (scalar_string(&args[0])?, scalar_string(&args[1])?);
            let Some(user) = it.user.clone() else {
                return Err(EvalError::msg("changePwd: log in first"));
            };
            if !it.users.verify(&user, &old) {
                return Err(EvalError::msg("The old password is incorrect."));
            }
            it.users.clone().set_password(&user, &new).await?;
            Ok(Value::Void)
        }
        "createUser" | "resetPwd" | "deleteUser" => {
            arity(name, &args, if name == "deleteUser" { 1 } else { 2 }, 2)?;
            require_admin(it, name)?;
            let user = scalar_string(&args[0])?;
            let users = it.users.clone();
            match name {
                "createUser" => users.create(&user, &scalar_string(&args[1])?).await?,
                "resetPwd" => users.set_password(&user, &scalar_string(&args[1])?).await?,
                _ => users.delete(&user).await?,
            }
            Ok(Value::Void)
        }
        "logout" => {
            it.user = None;
            Ok(Value::Void)
        }
        "version" => Ok(Value::string(&format!(
            "porpoise {}",
            env!("CARGO_PKG_VERSION")
        ))),
        "print" => {
            let text = args.iter().map(|a| match a.column() {
                Some(c) => (0..c.len())
                    .map(|i| render(c, i))
                    .collect::<Vec<_>>()
                    .join(" "),
                None => a.typestr(),
            });
            it.output.push(text.collect::<Vec<_>>().join(" "));
            Ok(Value::Void)
        }
        "typestr" => {
            arity(name, &args, 1, 1)?;
            Ok(Value::string(&args[0].typestr()))
        }
        "size" | "count" if args.len() == 1 && !matches!(args[0], Value::Void) => {
            Ok(Value::int(args[0].size() as i64))
        }
        "til" => {
            arity(name, &args, 1, 1)?;
            let n = bounded(name, scalar_i64(&args[0])?)?;
            Ok(Value::Vector(Column {
                ty: DataType::Int,
                data: ColumnData::I32((0..n as i32).collect()),
            }))
        }
        "seq" => {
            arity(name, &args, 2, 2)?;
            let (a, b) = (col(name, &args[0])?, col(name, &args[1])?);
            let (x, y) = (scalar_i64(&args[0])?, scalar_i64(&args[1])?);
            bounded(
                name,
                (y as i128 - x as i128).unsigned_abs().min(i64::MAX as u128) as i64,
            )?;
            let vals: Vec<i64> = if x <= y {
                (x..=y).collect()
            } else {
                (y..=x).rev().collect()
            };
            let ty = if a.ty == b.ty && a.ty != DataType::Long {
                a.ty
            } else {
                DataType::Long
            };
            Ok(Value::Vector(from_num(
                Num::I(vals),
                if ty == DataType::Bool {
                    DataType::Int
                } else {
                    ty
                },
            )))
        }
        "take" => {
            arity(name, &args, 2, 2)?;
            let n = bounded(name, scalar_i64(&args[1])?)?;
            let c = col(name, &args[0])?;
            if c.is_empty() {
                return Err(EvalError::msg(
                    "The function [take] cannot take from an empty vector",
                ));
            }
            let mut out = Column::empty(c.ty);
            let mut left = n;
            while left > 0 {
                let k = left.min(c.len());
                out.append(&c.slice(0, k)).map_err(EvalError::msg)?;
                left -= k;
            }
            Ok(Value::Vector(out))
        }
        "rand" => {
            arity(name, &args, 2, 2)?;
            let n = bounded(name, scalar_i64(&args[1])?)?;
            let c = col(name, &args[0])?;
            if matches!(args[0], Value::Vector(_)) {
                let mut idx = Vec::with_capacity(n);
                for _ in 0..n {
                    idx.push(it.rng.below(c.len().max(1) as u64) as usize);
                }
                return Ok(Value::Vector(gather(c, &idx)));
            }
            match to_num(c).map_err(EvalError::msg)? {
                Num::F(x) => Ok(Value::Vector(from_num(
                    Num::F(
                        (0..n)
                            .map(|_| (it.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * x[0])
                            .collect(),
                    ),
                    DataType::Double,
                ))),
                Num::I(x) => Ok(Value::Vector(from_num(
                    Num::I(
                        (0..n)
                            .map(|_| it.rng.below(x[0].max(1) as u64) as i64)
                            .collect(),
                    ),
                    c.ty,
                ))),
            }
        }
        "round" => {
            arity(name, &args, 1, 2)?;
            let digits = if args.len() == 2 {
                scalar_i64(&args[1])?
            } else {
                0
            };
            let c = col(name, &args[0])?;
            let scale = 10f64.powi(digits as i32);
            let Num::F(v) = to_num(c).map_err(EvalError::msg)? else {
                return Ok(args[0].clone());
            };
            Ok(same_form(
                &args[0],
                from_num(
                    Num::F(v.iter().map(|x| (x * scale).round() / scale).collect()),
                    DataType::Double,
                ),
            ))
        }
        "lpad" => {
            arity(name, &args, 2, 3)?;
            let c = col(name, &args[0])?;
            let len = scalar_i64(&args[1])?.max(0) as usize;
            let pad = if args.len() == 3 {
                scalar_string(&args[2])?
            } else {
                " ".into()
            };
            let pad = pad.chars().next().unwrap_or(' ');
            let out: Vec<String> = (0..c.len())
                .map(|i| {
                    let s = render(c, i);
                    let n = s.chars().count();
                    if n >= len {
                        s
                    } else {
                        std::iter::repeat_n(pad, len - n).chain(s.chars()).collect()
                    }
                })
                .collect();
            Ok(same_form(
                &args[0],
                Column::from_strings(DataType::String, &out),
            ))
        }
        "string" | "symbol" | "int" | "long" | "double" => {
            arity(name, &args, 1, 1)?;
            let ty = match name {
                "string" => DataType::String,
                "symbol" => DataType::Symbol,
                "int" => DataType::Int,
                "long" => DataType::Long,
                _ => DataType::Double,
            };
            Ok(same_form(&args[0], cast(col(name, &args[0])?, ty)?))
        }
        "cast" => {
            arity(name, &args, 2, 2)?;
            let Value::Type(t) = args[1] else {
                return Err(EvalError::msg("cast needs a type"));
            };
            Ok(same_form(&args[0], cast(col(name, &args[0])?, t)?))
        }
        "date" => {
            arity(name, &args, 1, 1)?;
            let c = col(name, &args[0])?;
            Ok(same_form(&args[0], date_column(c)?))
        }
        "join" | "join!" => {
            arity(name, &args, 2, 2)?;
            match (&args[0], &args[1]) {
                (Value::Table(a), Value::Table(b)) => {
                    if a.rows() != b.rows() {
                        return Err(EvalError::msg(format!(
                            "The function [{name}] needs tables of the same size ({} vs {})",
                            a.rows(),
                            b.rows()
                        )));
                    }
                    let mut t = (**a).clone();
                    t.columns.extend(b.columns.iter().cloned());
                    let v = table_value(t);
                    if name == "join!" {
                        if let Some((_, e)) = exprs.first() {
                            if let ExprKind::Ident(var) = &e.kind {
                                let _ = var; // the caller rebinds through the returned value
                            }
                        }
                    }
                    Ok(v)
                }
                _ => to_vector(vec![args[0].clone(), args[1].clone()]),
            }
        }
        "cj" => {
            arity(name, &args, 2, 2)?;
            let (Value::Table(a), Value::Table(b)) = (&args[0], &args[1]) else {
                return Err(EvalError::msg("The function [cj] needs two tables"));
            };
            let (n, m) = (a.rows(), b.rows());
            let left: Vec<usize> = (0..n).flat_map(|i| std::iter::repeat_n(i, m)).collect();
            let right: Vec<usize> = (0..n).flat_map(|_| 0..m).collect();
            let mut columns: Vec<(String, Column)> = a
                .columns
                .iter()
                .map(|(k, c)| (k.clone(), gather(c, &left)))
                .collect();
            columns.extend(
                b.columns
                    .iter()
                    .map(|(k, c)| (k.clone(), gather(c, &right))),
            );
            Ok(table_value(Table { columns }))
        }
        "table" => {
            // table(1:0, colNames, colTypes): an empty table with a schema.
            if let (3, Value::Pair(..)) = (args.len(), &args[0]) {
                let names = args[1]
                    .column()
                    .ok_or_else(|| EvalError::msg("table: column names must be a vector"))?;
                let Value::Tuple(types) = &args[2] else {
                    return Err(EvalError::msg(
                        "table: column types must be a vector of types",
                    ));
                };
                let mut columns = Vec::new();
                for (i, t) in types.iter().enumerate() {
                    let Value::Type(t) = t else {
                        return Err(EvalError::msg("table: column types must be types"));
                    };
                    let n = names
                        .bytes_at(i)
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_else(|| format!("col{}", i + 1));
                    columns.push((n, Column::empty(*t)));
                }
                return Ok(table_value(Table { columns }));
            }
            let mut columns = Vec::new();
            for (i, a) in args.iter().enumerate() {
                let c = a.column().ok_or_else(|| {
                    EvalError::msg(format!(
                        "table: argument {} is a {}, not a vector",
                        i + 1,
                        a.typestr()
                    ))
                })?;
                columns.push((column_name(exprs.get(i), i), c.clone()));
            }
            if columns.windows(2).any(|w| w[0].1.len() != w[1].1.len()) {
                return Err(EvalError::msg(
                    "table: all columns must have the same length",
                ));
            }
            Ok(table_value(Table { columns }))
        }
        "first" | "last" | "max" | "min" | "sum" | "avg" | "mean" | "count" => {
            arity(name, &args, 1, 1)?;
            let c = col(name, &args[0])?;
            Ok(Value::Scalar(aggregate(name, c)?))
        }
        "add" | "sub" | "mul" | "div" => {
            arity(name, &args, 2, 2)?;
            let op = match name {
                "add" => "+",
                "sub" => "-",
                "mul" => "*",
                _ => "/",
            };
            let (a, b) = (col(name, &args[0])?, col(name, &args[1])?);
            let c = ops::arith(op, a, b)?;
            Ok(
                if matches!((&args[0], &args[1]), (Value::Scalar(_), Value::Scalar(_))) {
                    Value::Scalar(c)
                } else {
                    Value::Vector(c)
                },
            )
        }
        "neg" => {
            let c = col(name, &args[0])?;
            let zero = Column {
                ty: DataType::Int,
                data: ColumnData::I32(vec![0]),
            };
            Ok(same_form(&args[0], ops::arith("-", &zero, c)?))
        }
        "not" => {
            let c = col(name, &args[0])?;
            let zero = Column {
                ty: DataType::Int,
                data: ColumnData::I32(vec![0]),
            };
            Ok(same_form(&args[0], ops::compare("==", c, &zero)?))
        }
        "abs" | "sqrt" => {
            let c = col(name, &args[0])?;
            let out = match to_num(c).map_err(EvalError::msg)? {
                Num::I(v) if name == "abs" => from_num(
                    Num::I(
                        v.iter()
                            .map(|x| if *x == i64::MIN { *x } else { x.abs() })
                            .collect(),
                    ),
                    c.ty,
                ),
                n => {
                    let f: Vec<f64> = match n {
                        Num::F(v) => v,
                        Num::I(v) => v
                            .iter()
                            .map(|x| if *x == i64::MIN { f64::NAN } else { *x as f64 })
                            .collect(),
                    };
                    from_num(
                        Num::F(
                            f.iter()
                                .map(|x| if name == "abs" { x.abs() } else { x.sqrt() })
                                .collect(),
                        ),
                        DataType::Double,
                    )
                }
            };
            Ok(same_form(&args[0], out))
        }
        "isNull" => {
            let c = col(name, &args[0])?;
            let v: Vec<i8> = null_mask(c).into_iter().map(|n| n as i8).collect();
            Ok(same_form(
                &args[0],
                Column {
                    ty: DataType::Bool,
                    data: ColumnData::I8(v),
                },
            ))
        }
        "cumsum" => {
            let c = col(name, &args[0])?;
            let out = match to_num(c).map_err(EvalError::msg)? {
                Num::I(v) => {
                    let mut s = 0i64;
                    from_num(
                        Num::I(
                            v.iter()
                                .map(|x| {
                                    if *x != i64::MIN {
                                        s += x;
                                    }
                                    s
                                })
                                .collect(),
                        ),
                        DataType::Long,
                    )
                }
                Num::F(v) => {
                    let mut s = 0f64;
                    from_num(
                        Num::F(
                            v.iter()
                                .map(|x| {
                                    if !x.is_nan() {
                                        s += x;
                                    }
                                    s
                                })
                                .collect(),
                        ),
                        DataType::Double,
                    )
                }
            };
            Ok(Value::Vector(out))
        }
        "sort" | "distinct" => {
            let c = col(name, &args[0])?;
            let mut idx: Vec<usize> = (0..c.len()).collect();
            idx.sort_by(|a, b| match (c.bytes_at(*a), c.bytes_at(*b)) {
                (Some(x), Some(y)) => x.cmp(y),
                _ => ops::scalar_f64(c, *a)
                    .unwrap_or(0.0)
                    .total_cmp(&ops::scalar_f64(c, *b).unwrap_or(0.0)),
            });
            if name == "distinct" {
                // Equal neighbours after the sort, compared by bytes or value (no text built).
                idx.dedup_by(|a, b| match (c.bytes_at(*a), c.bytes_at(*b)) {
                    (Some(x), Some(y)) => x == y,
                    _ => {
                        ops::scalar_f64(c, *a).map(f64::to_bits)
                            == ops::scalar_f64(c, *b).map(f64::to_bits)
                    }
                });
            }
            Ok(Value::Vector(gather(c, &idx)))
        }
        "upper" | "lower" | "strlen" => {
            let c = col(name, &args[0])?;
            let strs: Vec<String> = (0..c.len()).map(|i| render(c, i)).collect();
            Ok(same_form(
                &args[0],
                match name {
                    "upper" => Column::from_strings(
                        c.ty,
                        &strs.iter().map(|s| s.to_uppercase()).collect::<Vec<_>>(),
                    ),
                    "lower" => Column::from_strings(
                        c.ty,
                        &strs.iter().map(|s| s.to_lowercase()).collect::<Vec<_>>(),
                    ),
                    _ => Column {
                        ty: DataType::Int,
                        data: ColumnData::I32(strs.iter().map(|s| s.len() as i32).collect()),
                    },
                },
            ))
        }
        "in" => {
            arity(name, &args, 2, 2)?;
            let (a, b) = (col(name, &args[0])?, col(name, &args[1])?);
            let text = |c: &Column| matches!(c.ty, DataType::String | DataType::Symbol);
            // Membership by bytes (STRING, SYMBOL), by integer (integral and temporal types) or
            // by value (floats): no text is built per row.
            let v: Vec<i8> = if text(a) && text(b) {
                let set: std::collections::HashSet<&[u8]> =
                    (0..b.len()).filter_map(|i| b.bytes_at(i)).collect();
                (0..a.len())
                    .map(|i| a.bytes_at(i).is_some_and(|x| set.contains(x)) as i8)
                    .collect()
            } else if let (Some(x), Some(y), false, false) =
                (super::column_i64(a), super::column_i64(b), text(a), text(b))
            {
                let set: std::collections::HashSet<i64> = y.into_iter().collect();
                x.iter().map(|v| set.contains(v) as i8).collect()
            } else if !text(a) && !text(b) {
                let bits = |c: &Column, i: usize| ops::scalar_f64(c, i).map(f64::to_bits);
                let set: std::collections::HashSet<Option<u64>> =
                    (0..b.len()).map(|i| bits(b, i)).collect();
                (0..a.len())
                    .map(|i| set.contains(&bits(a, i)) as i8)
                    .collect()
            } else {
                let set: std::collections::HashSet<String> =
                    (0..b.len()).map(|i| render(b, i)).collect();
                (0..a.len())
                    .map(|i| set.contains(&render(a, i)) as i8)
                    .collect()
            };
            Ok(same_form(
                &args[0],
                Column {
                    ty: DataType::Bool,
                    data: ColumnData::I8(v),
                },
            ))
        }
        "append!" | "tableInsert" if matches!(args.first(), Some(Value::Table(_))) => {
            arity(name, &args, 2, 2)?;
            let Value::Table(t) = &args[0] else {
                unreachable!()
            };
            let rows: Vec<Column> = match &args[1] {
                Value::Table(u) => u.columns.iter().map(|(_, c)| c.clone()).collect(),
                Value::Tuple(items) => items
                    .iter()
                    .map(|v| {
                        v.column().cloned().ok_or_else(|| {
                            EvalError::msg(format!("The function [{name}] needs columns"))
                        })
                    })
                    .collect::<Result<_, _>>()?,
                other => {
                    return Err(EvalError::msg(format!(
                        "The function [{name}] cannot append a {}",
                        other.typestr()
                    )))
                }
            };
            if rows.len() != t.columns.len() {
                return Err(EvalError::msg(format!(
                    "The function [{name}] got {} columns for a table of {}",
                    rows.len(),
                    t.columns.len()
                )));
            }
            let mut out = (**t).clone();
            let mut added = 0;
            for ((_, c), r) in out.columns.iter_mut().zip(&rows) {
                let r = if r.ty == c.ty {
                    r.clone()
                } else {
                    cast(r, c.ty)?
                };
                added = r.len();
                c.append(&r).map_err(EvalError::msg)?;
            }
            // Tables are values: write the grown table back to the variable it came from.
            if let Some((
                _,
                Expr {
                    kind: ExprKind::Ident(var),
                    ..
                },
            )) = exprs.first()
            {
                it.set(var, table_value(out.clone()));
            }
            Ok(if name == "tableInsert" {
                Value::int(added as i64)
            } else {
                table_value(out)
            })
        }
        "addColumn" => {
            // addColumn(table, colNames, colTypes): new columns of nulls.
            arity(name, &args, 3, 3)?;
            let added = new_columns(&args[1], &args[2])?;
            if let (Value::DfsTable { db, table }, Some(dfs)) = (&args[0], it.dfs.clone()) {
                if it.user.is_none() {
                    return Err(EvalError::msg(
                        "<NoPrivilege>Not granted to create or delete databases: log in first with login(userId, password)",
                    ));
                }
                dfs.add_columns(db, table, added).await?;
                return Ok(Value::Void);
            }
            let Value::Table(t) = &args[0] else {
                return Err(EvalError::msg("The function [addColumn] needs a table"));
            };
            let mut out = (**t).clone();
            let rows = out.rows();
            for (n, ty) in added {
                if out.columns.iter().any(|(c, _)| c.eq_ignore_ascii_case(&n)) {
                    return Err(EvalError::msg(format!(
                        "The column [{n}] already exists in the table"
                    )));
                }
                out.columns.push((n, Column::nulls(ty, rows)));
            }
            // Tables are values: write the widened table back to its variable.
            if let Some((
                _,
                Expr {
                    kind: ExprKind::Ident(var),
                    ..
                },
            )) = exprs.first()
            {
                it.set(var, table_value(out));
            }
            Ok(Value::Void)
        }
        "schema" => {
            arity(name, &args, 1, 1)?;
            if let (Value::DfsTable { db, table }, Some(dfs)) = (&args[0], it.dfs.clone()) {
                return super::dfs_fns::schema(&*dfs, db, table).await;
            }
            if let (Value::Database(db), Some(dfs)) = (&args[0], it.dfs.clone()) {
                return super::dfs_fns::database_schema(&*dfs, db).await;
            }
            let Value::Table(t) = &args[0] else {
                return Err(EvalError::msg("The function [schema] needs a table"));
            };
            let col_defs = col_defs(t.columns.iter().map(|(n, c)| (n.as_str(), c.ty)));
            let mut d = std::collections::BTreeMap::new();
            d.insert("colDefs".to_string(), table_value(col_defs));
            Ok(Value::Dict(d))
        }
        "undef" => {
            arity(name, &args, 1, 2)?;
            let var = scalar_string(&args[0])?;
            it.unset(&var);
            Ok(Value::Void)
        }
        "getNodeAlias" => Ok(Value::string(&it.node.alias)),
        "getControllerAlias" => Ok(Value::string(&it.node.controller_alias)),
        "isNodeInitialized" => Ok(Value::bool(true)),
        "getRequiredAPIVersion" => Err(EvalError::msg(
            "getRequiredAPIVersion is not required by this server",
        )),
        n if super::mapreduce::NAMES.contains(&n) => {
            Box::pin(super::mapreduce::call(it, n, args, _pos)).await
        }
        n if super::objs::NAMES.contains(&n) => Ok(super::objs::call(it, n, &args)),
        n if super::server_log::NAMES.contains(&n) => {
            Box::pin(super::server_log::call(it, n, args, _pos)).await
        }
        n if super::cluster_fns::NAMES.contains(&n) => {
            Box::pin(super::cluster_fns::call(it, n, args, _pos)).await
        }
        "existsDatabase"
        | "database"
        | "dropDatabase"
        | "loadTable"
        | "createPartitionedTable"
        | "createTable"
        | "existsTable"
        | "dropTable"
        | "dropPartition"
        | "getClusterChunksStatus"
        | "getRecoveryTaskStatus"
        | "getChunksMeta"
        | "getTabletsMeta"
        | "setAtomicLevel"
        | "getClusterDFSDatabases"
        | "getClusterDFSTables"
        | "getDFSDirectoryContent"
        | "append!"
        | "tableInsert" => {
            let Some(dfs) = it.dfs.clone() else {
                return Err(dfs_unsupported(name));
            };
            super::dfs_fns::call(it, &*dfs, name, args, exprs).await
        }
        n if super::forms::NAMES.contains(&n) => super::forms::call(n, args),
        n if super::funcs::NAMES.contains(&n) => super::funcs::call(n, args),
        n if super::series::NAMES.contains(&n) => super::series::call(n, args, exprs),
        n if super::strings::NAMES.contains(&n) => super::strings::call(n, args),
        n if super::stats::NAMES.contains(&n) => super::stats::call(n, args, exprs),
        n if super::calendar::NAMES.contains(&n) => super::calendar::call(n, args, exprs),
        n if super::windows::NAMES.contains(&n) => {
            Box::pin(super::windows::call(it, n, args, exprs, _pos)).await
        }
        n if super::joins::NAMES.contains(&n) => {
            Box::pin(super::joins::call(it, n, args, exprs)).await
        }
        _ => Err(EvalError::msg(format!(
            "Syntax Error: Cannot recognize the token {name}"
        ))),
    }
}

/// Arguments of `params` by position and by name (`tableName=tbName`).
pub(super) fn named_args(
    name: &str,
    args: Vec<Value>,
    exprs: &[(Option<String>, Expr)],
    params: &[&str],
) -> Result<Vec<Option<Value>>, EvalError> {
    let mut out: Vec<Option<Value>> = vec![None; params.len()];
    let mut next = 0;
    for (i, v) in args.into_iter().enumerate() {
        let slot = match exprs.get(i).and_then(|(n, _)| n.as_deref()) {
            Some(n) => params
                .iter()
                .position(|p| p.eq_ignore_ascii_case(n))
                .ok_or_else(|| {
                    EvalError::msg(format!("The function [{name}] has no parameter {n}"))
                })?,
            None => {
                let s = next;
                next += 1;
                s
            }
        };
        if slot >= out.len() {
            return Err(EvalError::msg(format!(
                "The function [{name}] takes at most {} arguments",
                params.len()
            )));
        }
        out[slot] = Some(v);
    }
    Ok(out)
}

/// The `colDefs` table of `schema(t)`: name, typeString, typeInt, extra, comment per column.
pub(super) fn col_defs<'a>(columns: impl Iterator<Item = (&'a str, DataType)>) -> Table {
    let (names, types): (Vec<&str>, Vec<DataType>) = columns.unzip();
    let n = names.len();
    Table {
        columns: vec![
            (
                "name".into(),
                Column::from_strings(DataType::String, &names),
            ),
            (
                "typeString".into(),
                Column::from_strings(
                    DataType::String,
                    &types.iter().map(|t| t.name()).collect::<Vec<_>>(),
                ),
            ),
            (
                "typeInt".into(),
                Column {
                    ty: DataType::Int,
                    data: ColumnData::I32(types.iter().map(|t| *t as i32).collect()),
                },
            ),
            (
                "extra".into(),
                Column {
                    ty: DataType::Int,
                    data: ColumnData::I32(vec![null::I32; n]),
                },
            ),
            (
                "comment".into(),
                Column::from_strings(DataType::String, &vec![""; n]),
            ),
        ],
    }
}
