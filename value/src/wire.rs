//! DolphinDB's object serialization (the binary API protocol, default non-pickle mode), both
//! directions. Layout: a type byte and a form byte, then the form's body, little-endian:
//! scalar values; vectors as `i32 rows, i32 cols(1)` then values (STRING `\0`-terminated,
//! SYMBOL vectors as type 145 with a symbol base whose entry 0 is `""`); tables as
//! `i32 rows, i32 cols`, table name, column names, then each column as a vector object.
//!
//! Invariant: decoding untrusted bytes never panics and never allocates more than the input
//! can hold (counts are checked against the bytes remaining); truncated input is
//! [`WireError::Incomplete`], so a server can read more and retry.

use std::rc::Rc;

use crate::column::{Column, ColumnData, SymbolBase};
use crate::types::{DataType, Physical};
use crate::value::{Matrix, Table, Value};

const FORM_SCALAR: u8 = 0;
const FORM_VECTOR: u8 = 1;
const FORM_PAIR: u8 = 2;
const FORM_MATRIX: u8 = 3;
const FORM_SET: u8 = 4;
const FORM_DICT: u8 = 5;
const FORM_TABLE: u8 = 6;
const TYPE_ANY: u8 = 25;
const SYMBOL_VECTOR: u8 = 128 + 17;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the object is truncated")]
    Incomplete,
    #[error("malformed object: {0}")]
    Malformed(String),
    #[error("{0} is not supported by this server yet")]
    Unsupported(String),
}

fn physical_bytes(c: &Column, out: &mut Vec<u8>) {
    match &c.data {
        ColumnData::I8(v) => out.extend(v.iter().map(|x| *x as u8)),
        ColumnData::I16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        ColumnData::I32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        ColumnData::I64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        ColumnData::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        ColumnData::F64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        ColumnData::Symbol { .. } | ColumnData::Bytes { .. } => {
            for i in 0..c.len() {
                out.extend_from_slice(c.bytes_at(i).unwrap_or_default());
                out.push(0);
            }
        }
    }
}

/// The type byte a column travels as (SYMBOL values outside a symbol vector go as STRING).
fn wire_type(c: &Column) -> u8 {
    if c.ty == DataType::Symbol {
        DataType::String as u8
    } else {
        c.ty as u8
    }
}

fn encode_vector(c: &Column, form: u8, out: &mut Vec<u8>) {
    if let ColumnData::Symbol { codes, base } = &c.data {
        out.extend_from_slice(&[SYMBOL_VECTOR, form]);
        out.extend_from_slice(&(c.len() as i32).to_le_bytes());
        out.extend_from_slice(&1i32.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes()); // base id
        out.extend_from_slice(&(base.strings.len() as i32).to_le_bytes());
        for s in &base.strings {
            out.extend_from_slice(s);
            out.push(0);
        }
        codes
            .iter()
            .for_each(|x| out.extend_from_slice(&(*x as i32).to_le_bytes()));
        return;
    }
    let ty = if c.ty == DataType::Symbol {
        DataType::String
    } else {
        c.ty
    };
    out.extend_from_slice(&[ty as u8, form]);
    out.extend_from_slice(&(c.len() as i32).to_le_bytes());
    out.extend_from_slice(&1i32.to_le_bytes());
    physical_bytes(c, out);
}

/// Serializes a value.
pub fn encode(v: &Value, out: &mut Vec<u8>) -> Result<(), WireError> {
    match v {
        Value::Void => out.extend_from_slice(&[0, FORM_SCALAR, 0]),
        Value::Scalar(c) => {
            let ty = if c.ty == DataType::Symbol {
                DataType::String
            } else {
                c.ty
            };
            out.extend_from_slice(&[ty as u8, FORM_SCALAR]);
            physical_bytes(c, out);
        }
        Value::Vector(c) => encode_vector(c, FORM_VECTOR, out),
        Value::Pair(a, b) => {
            let (Some(x), Some(y)) = (a.column(), b.column()) else {
                return Err(WireError::Unsupported("a pair of non-scalars".into()));
            };
            let mut c = x.clone();
            c.append(y).map_err(WireError::Malformed)?;
            encode_vector(&c, FORM_PAIR, out);
        }
        Value::Tuple(items) => {
            out.extend_from_slice(&[TYPE_ANY, FORM_VECTOR]);
            out.extend_from_slice(&(items.len() as i32).to_le_bytes());
            out.extend_from_slice(&1i32.to_le_bytes());
            for i in items {
                encode(i, out)?;
            }
        }
        Value::Table(t) => {
            out.extend_from_slice(&[0, FORM_TABLE]);
            out.extend_from_slice(&(t.rows() as i32).to_le_bytes());
            out.extend_from_slice(&(t.columns.len() as i32).to_le_bytes());
            out.push(0); // table name ""
            for (n, _) in &t.columns {
                out.extend_from_slice(n.as_bytes());
                out.push(0);
            }
            for (_, c) in &t.columns {
                encode_vector(c, FORM_VECTOR, out);
            }
        }
        Value::Set(c) => {
            out.extend_from_slice(&[wire_type(c), FORM_SET]);
            encode_vector(c, FORM_VECTOR, out);
        }
        Value::Matrix(m) => {
            let ty = wire_type(&m.data);
            out.extend_from_slice(&[ty, FORM_MATRIX]);
            out.push(m.row_labels.is_some() as u8 | (m.col_labels.is_some() as u8) << 1);
            for l in [&m.row_labels, &m.col_labels].into_iter().flatten() {
                encode_vector(l, FORM_VECTOR, out);
            }
            out.extend_from_slice(&[ty, FORM_MATRIX]);
            out.extend_from_slice(&(m.rows as i32).to_le_bytes());
            out.extend_from_slice(&(m.cols as i32).to_le_bytes());
            physical_bytes(&m.data, out);
        }
        Value::Dict(d) => {
            let keys: Vec<&String> = d.keys().collect();
            let vals: Vec<Value> = d.values().cloned().collect();
            out.extend_from_slice(&[TYPE_ANY, FORM_DICT]);
            encode_vector(
                &Column::from_strings(DataType::String, &keys),
                FORM_VECTOR,
                out,
            );
            encode(&Value::Tuple(vals), out)?;
        }
        Value::Opaque(name) => return Err(WireError::Unsupported(format!("sending a {name}"))),
    }
    Ok(())
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.b.len() - self.i < n {
            return Err(WireError::Incomplete);
        }
        let s = &self.b[self.i..self.i + n];
        self.i += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn i32(&mut self) -> Result<i32, WireError> {
        Ok(i32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn cstr(&mut self) -> Result<&'a [u8], WireError> {
        let rest = &self.b[self.i..];
        let end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or(WireError::Incomplete)?;
        self.i += end + 1;
        Ok(&rest[..end])
    }
    fn count(&mut self, min_bytes_each: usize) -> Result<usize, WireError> {
        let n = self.i32()?;
        if n < 0 {
            return Err(WireError::Malformed(format!("negative count {n}")));
        }
        let n = n as usize;
        if n.saturating_mul(min_bytes_each) > self.b.len() - self.i {
            // Not here yet (or a lie): never allocate for it before the bytes exist.
            return Err(WireError::Incomplete);
        }
        Ok(n)
    }
}

fn width(ty: DataType) -> usize {
    match ty.physical() {
        Physical::I8 => 1,
        Physical::I16 => 2,
        Physical::I32 | Physical::F32 => 4,
        Physical::I64 | Physical::F64 => 8,
        _ => 1,
    }
}

fn decode_values(r: &mut Reader<'_>, ty: DataType, n: usize) -> Result<Column, WireError> {
    if matches!(ty.physical(), Physical::Bytes | Physical::Symbol) {
        if ty == DataType::Blob || ty == DataType::Uuid {
            return Err(WireError::Unsupported(format!("{} values", ty.name())));
        }
        let mut vals = Vec::with_capacity(n.min(r.b.len()));
        for _ in 0..n {
            vals.push(r.cstr()?.to_vec());
        }
        return Ok(Column::from_strings(DataType::String, &vals));
    }
    let b = r.take(n.checked_mul(width(ty)).ok_or(WireError::Incomplete)?)?;
    let data = match ty.physical() {
        Physical::I8 => ColumnData::I8(b.iter().map(|x| *x as i8).collect()),
        Physical::I16 => ColumnData::I16(
            b.chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
        Physical::I32 => ColumnData::I32(
            b.chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().expect("4")))
                .collect(),
        ),
        Physical::I64 => ColumnData::I64(
            b.chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8")))
                .collect(),
        ),
        Physical::F32 => ColumnData::F32(
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
                .collect(),
        ),
        Physical::F64 => ColumnData::F64(
            b.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8")))
                .collect(),
        ),
        _ => unreachable!("handled above"),
    };
    Ok(Column { ty, data })
}

fn decode_vector_body(r: &mut Reader<'_>, type_byte: u8) -> Result<Column, WireError> {
    if type_byte == SYMBOL_VECTOR {
        let rows = r.count(4)?;
        r.i32()?;
        let _base_id = r.i32()?;
        let nbase = r.count(1)?;
        let mut strings = Vec::with_capacity(nbase);
        for _ in 0..nbase {
            strings.push(r.cstr()?.to_vec());
        }
        if strings.first().is_some_and(|s| !s.is_empty()) {
            return Err(WireError::Malformed(
                "a symbol base's first key must be empty string".into(),
            ));
        }
        let mut codes = Vec::with_capacity(rows);
        for _ in 0..rows {
            let c = r.i32()?;
            if c < 0 || c as usize >= strings.len().max(1) {
                return Err(WireError::Malformed(format!(
                    "symbol index {c} outside its base"
                )));
            }
            codes.push(c as u32);
        }
        if strings.is_empty() {
            strings.push(Vec::new());
        }
        return Ok(Column {
            ty: DataType::Symbol,
            data: ColumnData::Symbol {
                codes,
                base: std::sync::Arc::new(SymbolBase { strings }),
            },
        });
    }
    let ty = DataType::from_id(type_byte)
        .filter(|t| t.storable())
        .ok_or_else(|| WireError::Unsupported(format!("type {type_byte}")))?;
    let rows = r.count(1)?;
    let _cols = r.i32()?;
    decode_values(r, ty, rows)
}

fn decode_one(r: &mut Reader<'_>, depth: usize) -> Result<Value, WireError> {
    if depth > 64 {
        return Err(WireError::Malformed("objects nested too deeply".into()));
    }
    let ty = r.u8()?;
    let form = r.u8()?;
    match form {
        FORM_SCALAR => {
            if ty == 0 {
                r.u8()?;
                return Ok(Value::Void);
            }
            let t = DataType::from_id(ty)
                .filter(|t| t.storable())
                .ok_or_else(|| WireError::Unsupported(format!("type {ty}")))?;
            Ok(Value::Scalar(decode_values(r, t, 1)?))
        }
        FORM_VECTOR | FORM_PAIR if ty == TYPE_ANY => {
            let n = r.count(2)?;
            r.i32()?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(decode_one(r, depth + 1)?);
            }
            Ok(Value::Tuple(items))
        }
        FORM_VECTOR => Ok(Value::Vector(decode_vector_body(r, ty)?)),
        FORM_PAIR => {
            let c = decode_vector_body(r, ty)?;
            if c.len() != 2 {
                return Err(WireError::Malformed("a pair has two elements".into()));
            }
            Ok(Value::Pair(
                Box::new(Value::Scalar(c.slice(0, 1))),
                Box::new(Value::Scalar(c.slice(1, 2))),
            ))
        }
        FORM_TABLE => {
            let rows = r.i32()?;
            let ncols = r.count(2)?;
            r.cstr()?;
            let mut names = Vec::with_capacity(ncols);
            for _ in 0..ncols {
                names.push(String::from_utf8_lossy(r.cstr()?).into_owned());
            }
            let mut columns = Vec::with_capacity(ncols);
            for name in names {
                let t = r.u8()?;
                let f = r.u8()?;
                if f != FORM_VECTOR {
                    return Err(WireError::Malformed(
                        "a table column must be a vector".into(),
                    ));
                }
                let c = decode_vector_body(r, t)?;
                if c.len() as i64 != rows as i64 {
                    return Err(WireError::Malformed(format!(
                        "column {name} has {} rows, the table {rows}",
                        c.len()
                    )));
                }
                columns.push((name, c));
            }
            Ok(Value::Table(Rc::new(Table { columns })))
        }
        FORM_SET => {
            let keys = decode_labels(r)?;
            Ok(Value::Set(keys))
        }
        FORM_MATRIX => {
            let labels = r.u8()?;
            if labels > 3 {
                return Err(WireError::Malformed(format!("matrix label flags {labels}")));
            }
            let row_labels = if labels & 1 != 0 {
                Some(decode_labels(r)?)
            } else {
                None
            };
            let col_labels = if labels & 2 != 0 {
                Some(decode_labels(r)?)
            } else {
                None
            };
            let t = r.u8()?;
            let _form = r.u8()?;
            let t = DataType::from_id(t)
                .filter(|t| t.storable() && *t != DataType::Symbol)
                .ok_or_else(|| WireError::Unsupported(format!("matrix of type {t}")))?;
            let rows = r.count(0)?;
            let cols = r.count(0)?;
            let n = rows
                .checked_mul(cols)
                .filter(|n| n.saturating_mul(width(t).max(1)) <= r.b.len() - r.i)
                .ok_or(WireError::Incomplete)?;
            let data = decode_values(r, t, n)?;
            for (l, want, what) in [(&row_labels, rows, "row"), (&col_labels, cols, "column")] {
                if l.as_ref().is_some_and(|l| l.len() != want) {
                    return Err(WireError::Malformed(format!(
                        "{what} labels do not match the matrix shape"
                    )));
                }
            }
            Ok(Value::Matrix(Rc::new(Matrix {
                rows,
                cols,
                data,
                row_labels,
                col_labels,
            })))
        }
        FORM_DICT => {
            let keys = decode_one(r, depth + 1)?;
            let vals = decode_one(r, depth + 1)?;
            let mut d = std::collections::BTreeMap::new();
            for i in 0..elements(&keys) {
                let k = key_text(&element(&keys, i)?)?;
                d.insert(k, element(&vals, i)?);
            }
            Ok(Value::Dict(d))
        }
        f => Err(WireError::Unsupported(format!("form {f}"))),
    }
}

/// How many elements a dictionary's keys or values hold.
fn elements(v: &Value) -> usize {
    match v {
        Value::Vector(c) | Value::Set(c) => c.len(),
        Value::Tuple(items) => items.len(),
        Value::Pair(..) => 2,
        Value::Void => 0,
        _ => 1,
    }
}

/// Element `i` of a dictionary's keys or values.
fn element(v: &Value, i: usize) -> Result<Value, WireError> {
    let out_of_range = || WireError::Malformed(format!("a dictionary has no element {i}"));
    match v {
        Value::Vector(c) | Value::Set(c) if i < c.len() => Ok(Value::Scalar(c.slice(i, i + 1))),
        Value::Scalar(c) => Ok(Value::Scalar(c.clone())),
        Value::Tuple(items) => items.get(i).cloned().ok_or_else(out_of_range),
        Value::Pair(a, b) => Ok(if i == 0 { (**a).clone() } else { (**b).clone() }),
        _ => Err(out_of_range()),
    }
}

/// A dictionary key as text (the dictionary's keys are strings).
fn key_text(k: &Value) -> Result<String, WireError> {
    match k.column() {
        Some(c) if c.len() == 1 => Ok(match c.bytes_at(0) {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => crate::display::cell(c, 0),
        }),
        _ => Err(WireError::Malformed(
            "a dictionary key is not a scalar".into(),
        )),
    }
}

/// A full vector object (type, form, body), as set keys and matrix labels travel.
fn decode_labels(r: &mut Reader<'_>) -> Result<Column, WireError> {
    let t = r.u8()?;
    if r.u8()? != FORM_VECTOR {
        return Err(WireError::Malformed(
            "labels and set keys must be vectors".into(),
        ));
    }
    decode_vector_body(r, t)
}

/// Decodes one object from the front of `bytes`; returns it and the bytes it used.
pub fn decode(bytes: &[u8]) -> Result<(Value, usize), WireError> {
    let mut r = Reader { b: bytes, i: 0 };
    let v = decode_one(&mut r, 0)?;
    Ok((v, r.i))
}
