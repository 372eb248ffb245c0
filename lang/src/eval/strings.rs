//! String functions with DolphinDB's semantics (issue 19, strings family): `strReplace`,
//! `left`, `right`, `trim`, `ltrim`, `rtrim`, `startsWith`, `endsWith`, `strFind`, and
//! `toUpper` / `toLower` as the aliases of `upper` / `lower`. Each works on a STRING or SYMBOL
//! scalar or vector, element by element; an empty string is the null string, and stays null.
//! Positions and lengths count characters (UTF-8), not bytes.

use storage::column::{Column, ColumnData};
use storage::types::DataType;

use super::builtins::{arity, same_form, scalar_i64, scalar_string};
use super::value::Value;
use super::EvalError;

pub const NAMES: &[&str] = &[
    "strReplace",
    "left",
    "right",
    "trim",
    "ltrim",
    "rtrim",
    "startsWith",
    "endsWith",
    "strFind",
    "toUpper",
    "toLower",
];

/// The text of every element of a STRING or SYMBOL argument.
fn texts(name: &str, v: &Value) -> Result<(DataType, Vec<String>), EvalError> {
    let c = v
        .column()
        .filter(|c| matches!(c.ty, DataType::String | DataType::Symbol))
        .ok_or_else(|| {
            EvalError::msg(format!(
                "The function [{name}] expects a STRING or SYMBOL argument, not {}",
                v.typestr()
            ))
        })?;
    let strs = (0..c.len())
        .map(|i| String::from_utf8_lossy(c.bytes_at(i).unwrap_or_default()).into_owned())
        .collect();
    Ok((c.ty, strs))
}

/// A count argument: a non-negative integer.
fn count(name: &str, v: &Value) -> Result<usize, EvalError> {
    let n = scalar_i64(v)?;
    usize::try_from(n).map_err(|_| {
        EvalError::msg(format!(
            "The function [{name}] expects a non-negative length, not {n}"
        ))
    })
}

pub fn call(name: &str, args: Vec<Value>) -> Result<Value, EvalError> {
    let (lo, hi) = match name {
        "trim" | "ltrim" | "rtrim" | "toUpper" | "toLower" => (1, 1),
        "strReplace" => (3, 3),
        "strFind" => (2, 3),
        _ => (2, 2),
    };
    arity(name, &args, lo, hi)?;
    let (ty, strs) = texts(name, &args[0])?;
    let map = |f: &dyn Fn(&str) -> String| -> Value {
        let out: Vec<String> = strs.iter().map(|s| f(s)).collect();
        same_form(&args[0], Column::from_strings(ty, &out))
    };
    Ok(match name {
        "toUpper" => map(&|s| s.to_uppercase()),
        "toLower" => map(&|s| s.to_lowercase()),
        "trim" => map(&|s| s.trim_matches(' ').to_string()),
        "ltrim" => map(&|s| s.trim_start_matches(' ').to_string()),
        "rtrim" => map(&|s| s.trim_end_matches(' ').to_string()),
        "left" => {
            let n = count(name, &args[1])?;
            map(&|s| s.chars().take(n).collect())
        }
        "right" => {
            let n = count(name, &args[1])?;
            map(&|s| {
                let len = s.chars().count();
                s.chars().skip(len.saturating_sub(n)).collect()
            })
        }
        "strReplace" => {
            let (from, to) = (scalar_string(&args[1])?, scalar_string(&args[2])?);
            if from.is_empty() {
                return Err(EvalError::msg(
                    "The function [strReplace] expects a non-empty pattern",
                ));
            }
            map(&|s| s.replace(&from, &to))
        }
        "startsWith" | "endsWith" => {
            let affix = scalar_string(&args[1])?;
            let starts = name == "startsWith";
            let out: Vec<i8> = strs
                .iter()
                .map(|s| {
                    i8::from(if starts {
                        s.starts_with(&affix)
                    } else {
                        s.ends_with(&affix)
                    })
                })
                .collect();
            same_form(
                &args[0],
                Column {
                    ty: DataType::Bool,
                    data: ColumnData::I8(out),
                },
            )
        }
        "strFind" => {
            let needle = scalar_string(&args[1])?;
            let from = match args.get(2) {
                Some(o) => count(name, o)?,
                None => 0,
            };
            let out: Vec<i32> = strs
                .iter()
                .map(|s| {
                    // A character position: the byte offset of the match, back to characters.
                    let start = s.char_indices().nth(from).map_or(s.len(), |(b, _)| b);
                    match s[start..].find(&needle) {
                        Some(at) => s[..start + at].chars().count() as i32,
                        None => -1,
                    }
                })
                .collect();
            same_form(
                &args[0],
                Column {
                    ty: DataType::Int,
                    data: ColumnData::I32(out),
                },
            )
        }
        _ => unreachable!("{name} is not a string function"),
    })
}
