//! String functions with DolphinDB's semantics (issue 19, strings family): `strReplace`,
//! `left`, `right`, `trim`, `ltrim`, `rtrim`, `startsWith`, `endsWith`, `strFind`, and
//! `toUpper` / `toLower` as the aliases of `upper` / `lower`. Each works on a STRING or SYMBOL
//! scalar or vector, element by element; an empty string is the null string, and stays null.
//! Positions and lengths count characters (UTF-8), not bytes.
//!
//! Also `split(str, [delimiter])` (no delimiter: into characters), `regexFind(str, pattern,
//! [offset=0])` (the first match's position, -1 for none), `regexReplace(str, pattern,
//! replacement, [offset=0])` (`$1` names a group), `regexCount`, `rpad`, `repeat`, and
//! `format(X, format)`: numbers by a pattern of `0` (a digit), `#` (a digit if any), `,`
//! (thousands), `.`, `%` and `E0`; temporal values as `temporalFormat`.
//! Regular expressions are Rust's `regex` (linear time: a hostile pattern cannot hang the
//! node), compiled once per call.

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
    "split",
    "regexFind",
    "regexReplace",
    "regexCount",
    "rpad",
    "repeat",
    "format",
];

/// Longest pattern accepted by the regex functions, and the compiled size they may use.
const REGEX_PATTERN_MAX: usize = 4096;
const REGEX_SIZE_MAX: usize = 1 << 20;

fn regex(name: &str, v: &Value) -> Result<regex::Regex, EvalError> {
    let p = scalar_string(v)?;
    if p.len() > REGEX_PATTERN_MAX {
        return Err(EvalError::msg(format!(
            "The function [{name}]: the pattern is longer than {REGEX_PATTERN_MAX} bytes"
        )));
    }
    regex::RegexBuilder::new(&p)
        .size_limit(REGEX_SIZE_MAX)
        .build()
        .map_err(|e| {
            // The regex crate's message draws the pattern over lines; its last line says why.
            let why = e.to_string();
            let why = why
                .lines()
                .last()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string();
            EvalError::msg(format!("The function [{name}]: bad pattern '{p}': {why}"))
        })
}

/// The byte offset of character `n` of `s` (its length past the end).
fn char_offset(s: &str, n: usize) -> usize {
    s.char_indices().nth(n).map_or(s.len(), |(b, _)| b)
}

fn ints(template: &Value, v: Vec<i32>) -> Value {
    same_form(
        template,
        Column {
            ty: DataType::Int,
            data: ColumnData::I32(v),
        },
    )
}

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
        "split" => (1, 2),
        "regexFind" | "rpad" => (2, 3),
        "regexReplace" => (3, 4),
        _ => (2, 2),
    };
    arity(name, &args, lo, hi)?;
    if name == "format" {
        return format(&args[0], &scalar_string(&args[1])?);
    }
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
        "split" => {
            let delim = match args.get(1) {
                Some(d) => Some(scalar_string(d)?),
                None => None,
            };
            let parts = |s: &str| -> Column {
                match &delim {
                    None => Column {
                        ty: DataType::Char,
                        data: ColumnData::I8(s.bytes().map(|b| b as i8).collect()),
                    },
                    Some(d) if d.is_empty() => {
                        let v: Vec<String> = s.chars().map(String::from).collect();
                        Column::from_strings(DataType::String, &v)
                    }
                    Some(d) => {
                        let v: Vec<&str> = s.split(d.as_str()).collect();
                        Column::from_strings(DataType::String, &v)
                    }
                }
            };
            match &args[0] {
                Value::Scalar(_) => Value::Vector(parts(&strs[0])),
                _ => Value::Tuple(strs.iter().map(|s| Value::Vector(parts(s))).collect()),
            }
        }
        "regexFind" | "regexCount" => {
            let re = regex(name, &args[1])?;
            let from = match args.get(2) {
                Some(o) => count(name, o)?,
                None => 0,
            };
            let out = strs
                .iter()
                .map(|s| {
                    if name == "regexCount" {
                        return re.find_iter(s).count() as i32;
                    }
                    let start = char_offset(s, from);
                    match re.find(&s[start..]) {
                        Some(m) => s[..start + m.start()].chars().count() as i32,
                        None => -1,
                    }
                })
                .collect();
            ints(&args[0], out)
        }
        "regexReplace" => {
            let re = regex(name, &args[1])?;
            let with = scalar_string(&args[2])?;
            let from = match args.get(3) {
                Some(o) => count(name, o)?,
                None => 0,
            };
            map(&|s| {
                let start = char_offset(s, from);
                format!(
                    "{}{}",
                    &s[..start],
                    re.replace_all(&s[start..], with.as_str())
                )
            })
        }
        "rpad" => {
            let n = count(name, &args[1])?;
            let pad = match args.get(2) {
                Some(p) => scalar_string(p)?,
                None => " ".into(),
            };
            if pad.is_empty() {
                return Err(EvalError::msg(
                    "The function [rpad] expects a non-empty pad",
                ));
            }
            map(&|s| {
                let len = s.chars().count();
                if len >= n {
                    return s.chars().take(n).collect();
                }
                let fill: String = pad.chars().cycle().take(n - len).collect();
                format!("{s}{fill}")
            })
        }
        "repeat" => {
            let n = count(name, &args[1])?;
            if strs
                .iter()
                .map(|s| s.len())
                .max()
                .unwrap_or(0)
                .saturating_mul(n)
                > 1 << 26
            {
                return Err(EvalError::msg(
                    "The function [repeat] would make a string over 64 MiB",
                ));
            }
            map(&|s| s.repeat(n))
        }
        _ => unreachable!("{name} is not a string function"),
    })
}

/// `format(X, pattern)`: numbers by a decimal pattern, temporal values by a date pattern.
fn format(x: &Value, pattern: &str) -> Result<Value, EvalError> {
    let c = x
        .column()
        .ok_or_else(|| EvalError::msg("The function [format] expects a scalar or a vector"))?;
    if super::ops::is_temporal(c.ty) {
        let args = vec![x.clone(), Value::string(pattern)];
        return super::calendar::call("temporalFormat", args, &[]);
    }
    let v = super::funcs::floats("format", c)?;
    let out: Vec<String> = v
        .iter()
        .map(|x| {
            if x.is_nan() {
                String::new()
            } else {
                decimal(*x, pattern)
            }
        })
        .collect();
    Ok(same_form(x, Column::from_strings(DataType::String, &out)))
}

/// One number by a decimal pattern (`0.00`, `#,##0.0`, `0.00%`, `0.000E0`).
fn decimal(x: f64, pattern: &str) -> String {
    let (body, percent) = match pattern.strip_suffix('%') {
        Some(b) => (b, true),
        None => (pattern, false),
    };
    let x = if percent { x * 100.0 } else { x };
    let (mantissa_pat, exp) = match body.split_once(['E', 'e']) {
        Some((m, e)) => (m, Some(e.len().max(1))),
        None => (body, None),
    };
    let (int_pat, frac_pat) = mantissa_pat.split_once('.').unwrap_or((mantissa_pat, ""));
    let min_frac = frac_pat.chars().filter(|c| *c == '0').count();
    let max_frac = frac_pat.chars().filter(|c| matches!(c, '0' | '#')).count();
    let min_int = int_pat.chars().filter(|c| *c == '0').count();
    let grouping = int_pat.contains(',');
    let (x, e) = match exp {
        Some(_) if x != 0.0 => {
            let e = x.abs().log10().floor() as i32 - (min_int.max(1) as i32 - 1);
            (x / 10f64.powi(e), Some(e))
        }
        Some(_) => (0.0, Some(0)),
        None => (x, None),
    };
    let mut s = format!("{:.*}", max_frac, x.abs());
    // Drop optional (`#`) fraction digits that are zero.
    if let Some(dot) = s.find('.') {
        while s.len() > dot + 1 + min_frac && s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    let (int_part, frac_part) = match s.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f.to_string())),
        None => (s.clone(), None),
    };
    let mut int_part = if int_part == "0" && min_int == 0 {
        String::new()
    } else {
        format!("{int_part:0>min_int$}")
    };
    if grouping {
        let digits: Vec<char> = int_part.chars().collect();
        let mut g = String::new();
        for (i, d) in digits.iter().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                g.push(',');
            }
            g.push(*d);
        }
        int_part = g;
    }
    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    out.push_str(&int_part);
    if let Some(f) = frac_part {
        out.push('.');
        out.push_str(&f);
    }
    if let (Some(e), Some(width)) = (e, exp) {
        out.push('E');
        if e < 0 {
            out.push('-');
        }
        out.push_str(&format!("{:0width$}", e.abs()));
    }
    if percent {
        out.push('%');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimal_patterns() {
        assert_eq!(decimal(1.23456, "0.00"), "1.23");
        assert_eq!(decimal(1234567.891, "#,##0.0"), "1,234,567.9");
        assert_eq!(decimal(0.256, "0.0%"), "25.6%");
        assert_eq!(decimal(12345.0, "0.00E0"), "1.23E4");
        assert_eq!(decimal(-2.5, "0.###"), "-2.5");
        assert_eq!(decimal(7.0, "000"), "007");
        assert_eq!(decimal(0.5, "#.00"), ".50");
    }
}
