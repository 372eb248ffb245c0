//! Schemas and batches of rows, with the plain (uncompressed) encoding the redo log uses.
//!
//! Invariant: a [`Batch`] matches its schema — one column per schema column, of the same type,
//! all of the same length. [`Batch::check`] enforces it at every API boundary.

use std::sync::Arc;

use zerocopy::IntoBytes;

use crate::bytes::{DecodeError, Reader, Writer};
use crate::column::{Column, ColumnData, SymbolBase};
use crate::types::DataType;

/// Most columns a table may have.
pub const COLUMNS_MAX: usize = 4096;
/// Most rows one batch (one append) may carry.
pub const BATCH_ROWS_MAX: usize = 1 << 27;

/// Column names and types of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub columns: Vec<(String, DataType)>,
}

impl Schema {
    pub fn new(columns: &[(&str, DataType)]) -> Schema {
        Schema {
            columns: columns.iter().map(|(n, t)| (n.to_string(), *t)).collect(),
        }
    }

    pub fn encode(&self, w: &mut Writer) {
        w.varint(self.columns.len() as u64);
        for (name, ty) in &self.columns {
            w.blob(name.as_bytes());
            w.u8(*ty as u8);
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Schema, DecodeError> {
        let n = r.count(COLUMNS_MAX)?;
        let mut columns = Vec::with_capacity(n);
        for _ in 0..n {
            let name = String::from_utf8(r.blob()?.to_vec())
                .map_err(|_| r.err("column name is not UTF-8"))?;
            let id = r.u8()?;
            let ty = DataType::from_id(id)
                .filter(|t| t.storable())
                .ok_or_else(|| r.err(format!("bad column type {id}")))?;
            columns.push((name, ty));
        }
        Ok(Schema { columns })
    }
}

/// Rows to append: one column per schema column.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub columns: Vec<Column>,
}

impl Batch {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.columns.first().map(|c| c.len()).unwrap_or(0)
    }

    /// Checks the batch against `schema`.
    pub fn check(&self, schema: &Schema) -> Result<(), String> {
        if self.columns.len() != schema.columns.len() {
            return Err(format!(
                "the batch has {} columns, the table {}",
                self.columns.len(),
                schema.columns.len()
            ));
        }
        let rows = self.rows();
        if rows > BATCH_ROWS_MAX {
            return Err(format!(
                "a batch of {rows} rows exceeds {BATCH_ROWS_MAX}; split the append"
            ));
        }
        for (c, (name, ty)) in self.columns.iter().zip(&schema.columns) {
            if c.ty != *ty {
                return Err(format!(
                    "column {name} is {}, the batch has {}",
                    ty.name(),
                    c.ty.name()
                ));
            }
            if c.len() != rows {
                return Err(format!(
                    "column {name} has {} rows, expected {rows}",
                    c.len()
                ));
            }
            c.validate()?;
        }
        Ok(())
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.columns.iter().map(Column::heap_bytes).sum()
    }

    /// Plain encoding (for the redo log).
    pub fn encode(&self, w: &mut Writer) {
        Batch::encode_columns(&self.columns, w)
    }

    /// [`Batch::encode`] of borrowed columns.
    pub fn encode_columns(columns: &[Column], w: &mut Writer) {
        w.varint(columns.len() as u64);
        w.buf
            .reserve(columns.iter().map(Column::heap_bytes).sum::<usize>() + 16);
        for c in columns {
            w.u8(c.ty as u8);
            w.varint(c.len() as u64);
            match &c.data {
                ColumnData::I8(v) => w.buf.extend(v.iter().map(|x| *x as u8)),
                ColumnData::I16(v) => le_bytes(w, v, |x| x.to_le_bytes()),
                ColumnData::I32(v) => le_bytes(w, v, |x| x.to_le_bytes()),
                ColumnData::I64(v) => le_bytes(w, v, |x| x.to_le_bytes()),
                ColumnData::F32(v) => le_bytes(w, v, |x| x.to_le_bytes()),
                ColumnData::F64(v) => le_bytes(w, v, |x| x.to_le_bytes()),
                ColumnData::Symbol { codes, base } => {
                    w.varint(base.strings.len() as u64);
                    for s in &base.strings {
                        w.blob(s);
                    }
                    le_bytes(w, codes, |x| x.to_le_bytes());
                }
                ColumnData::Bytes { offsets, data } => {
                    for p in offsets.windows(2) {
                        w.blob(&data[p[0] as usize..p[1] as usize]);
                    }
                }
            }
        }
    }

    /// Decodes [`Batch::encode`]'s output; every size is checked against the input length.
    pub fn decode(r: &mut Reader<'_>) -> Result<Batch, DecodeError> {
        let ncols = r.count(COLUMNS_MAX)?;
        let mut columns = Vec::with_capacity(ncols);
        for _ in 0..ncols {
            let id = r.u8()?;
            let ty = DataType::from_id(id)
                .filter(|t| t.storable())
                .ok_or_else(|| r.err(format!("bad column type {id}")))?;
            let rows = r.count(BATCH_ROWS_MAX.min(r.remaining()))?;
            /// `rows` little-endian values, copied in bulk (byte-swapped only on a big-endian
            /// host): a batch's columns are tens of megabytes on the prepare path.
            fn fixed<T>(
                r: &mut Reader<'_>,
                rows: usize,
                from_le: fn(T) -> T,
            ) -> Result<Vec<T>, DecodeError>
            where
                T: zerocopy::FromBytes + IntoBytes + Copy + Default,
            {
                let width = std::mem::size_of::<T>();
                let b = r.take(rows.checked_mul(width).ok_or_else(|| r.err("overflow"))?)?;
                let mut v = vec![T::default(); rows];
                v.as_mut_bytes().copy_from_slice(b);
                if cfg!(target_endian = "big") {
                    v.iter_mut().for_each(|x| *x = from_le(*x));
                }
                Ok(v)
            }
            let data = match ty.physical() {
                crate::types::Physical::I8 => ColumnData::I8(fixed(r, rows, |x: i8| x)?),
                crate::types::Physical::I16 => ColumnData::I16(fixed(r, rows, i16::from_le)?),
                crate::types::Physical::I32 => ColumnData::I32(fixed(r, rows, i32::from_le)?),
                crate::types::Physical::I64 => ColumnData::I64(fixed(r, rows, i64::from_le)?),
                crate::types::Physical::F32 => ColumnData::F32(fixed(r, rows, |x: f32| {
                    f32::from_bits(u32::from_le(x.to_bits()))
                })?),
                crate::types::Physical::F64 => ColumnData::F64(fixed(r, rows, |x: f64| {
                    f64::from_bits(u64::from_le(x.to_bits()))
                })?),
                crate::types::Physical::Symbol => {
                    let n = r.count(r.remaining())?;
                    let mut strings = Vec::with_capacity(n);
                    for _ in 0..n {
                        strings.push(r.blob()?.to_vec());
                    }
                    let codes = fixed(r, rows, u32::from_le)?;
                    ColumnData::Symbol {
                        codes,
                        base: Arc::new(SymbolBase { strings }),
                    }
                }
                crate::types::Physical::Bytes => {
                    let mut offsets = Vec::with_capacity(rows + 1);
                    let mut data = Vec::new();
                    offsets.push(0);
                    for _ in 0..rows {
                        data.extend_from_slice(r.blob()?);
                        offsets.push(data.len() as u32);
                    }
                    ColumnData::Bytes { offsets, data }
                }
            };
            let col = Column { ty, data };
            col.validate().map_err(|e| r.err(e))?;
            columns.push(col);
        }
        let b = Batch { columns };
        if b.columns.iter().any(|c| c.len() != b.rows()) {
            return Err(r.err("columns of different lengths"));
        }
        Ok(b)
    }
}

/// Appends `v` little-endian: one copy of the slice's bytes on a little-endian machine (the
/// encoding is the memory layout), element by element elsewhere.
fn le_bytes<T: zerocopy::IntoBytes + zerocopy::Immutable + Copy, const W: usize>(
    w: &mut Writer,
    v: &[T],
    each: fn(T) -> [u8; W],
) {
    if cfg!(target_endian = "little") {
        w.buf.extend_from_slice(v.as_bytes());
    } else {
        v.iter().for_each(|x| w.bytes(&each(*x)));
    }
}
