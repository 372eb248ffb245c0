//! Columns: typed vectors with DolphinDB's sentinel nulls (see [`crate::types::null`]).
//!
//! Invariants: a column's data variant always matches its type's [`Physical`]; `Bytes` offsets
//! start at 0, never decrease and end at `data.len()`; `Symbol` codes index into their base.

use std::sync::Arc;

use crate::types::{DataType, Physical};

/// A symbol dictionary: code `i` means `strings[i]`; code 0 is always the empty string (null).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SymbolBase {
    pub strings: Vec<Vec<u8>>,
}

/// The values of a column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    /// Codes into `base`.
    Symbol {
        codes: Vec<u32>,
        base: Arc<SymbolBase>,
    },
    /// Variable-length values: value `i` is `data[offsets[i]..offsets[i + 1]]`.
    Bytes {
        offsets: Vec<u32>,
        data: Vec<u8>,
    },
}

/// A typed column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub ty: DataType,
    pub data: ColumnData,
}

impl Column {
    /// An empty column of type `ty`.
    pub fn empty(ty: DataType) -> Column {
        let data = match ty.physical() {
            Physical::I8 => ColumnData::I8(Vec::new()),
            Physical::I16 => ColumnData::I16(Vec::new()),
            Physical::I32 => ColumnData::I32(Vec::new()),
            Physical::I64 => ColumnData::I64(Vec::new()),
            Physical::F32 => ColumnData::F32(Vec::new()),
            Physical::F64 => ColumnData::F64(Vec::new()),
            Physical::Symbol => ColumnData::Symbol {
                codes: Vec::new(),
                base: Arc::new(SymbolBase::with_null()),
            },
            Physical::Bytes => ColumnData::Bytes {
                offsets: vec![0],
                data: Vec::new(),
            },
        };
        Column { ty, data }
    }

    /// `n` nulls of type `ty`.
    pub fn nulls(ty: DataType, n: usize) -> Column {
        use crate::types::null;
        let data = match ty.physical() {
            Physical::I8 => ColumnData::I8(vec![null::I8; n]),
            Physical::I16 => ColumnData::I16(vec![null::I16; n]),
            Physical::I32 => ColumnData::I32(vec![null::I32; n]),
            Physical::I64 => ColumnData::I64(vec![null::I64; n]),
            Physical::F32 => ColumnData::F32(vec![null::F32; n]),
            Physical::F64 => ColumnData::F64(vec![null::F64; n]),
            Physical::Symbol => ColumnData::Symbol {
                codes: vec![0; n],
                base: Arc::new(SymbolBase::with_null()),
            },
            Physical::Bytes => ColumnData::Bytes {
                offsets: vec![0; n + 1],
                data: Vec::new(),
            },
        };
        Column { ty, data }
    }

    /// A column of strings (STRING/BLOB, or SYMBOL with a fresh base).
    pub fn from_strings<S: AsRef<[u8]>>(ty: DataType, values: &[S]) -> Column {
        match ty.physical() {
            Physical::Symbol => {
                let mut base = SymbolBase::with_null();
                let mut index = std::collections::HashMap::new();
                let codes = values
                    .iter()
                    .map(|v| base.intern(&mut index, v.as_ref()))
                    .collect();
                Column {
                    ty,
                    data: ColumnData::Symbol {
                        codes,
                        base: Arc::new(base),
                    },
                }
            }
            _ => {
                let mut offsets = Vec::with_capacity(values.len() + 1);
                let mut data = Vec::new();
                offsets.push(0);
                for v in values {
                    data.extend_from_slice(v.as_ref());
                    offsets.push(data.len() as u32);
                }
                Column {
                    ty,
                    data: ColumnData::Bytes { offsets, data },
                }
            }
        }
    }

    /// The same values as a column of `ty` (SYMBOL, STRING or BLOB), if this one holds text:
    /// no value is copied into an intermediate string, and a run of one value is interned
    /// once (appends often repeat a symbol row after row).
    pub fn text_as(&self, ty: DataType) -> Option<Column> {
        let n = self.len();
        let text = |i: usize| self.bytes_at(i).unwrap_or_default();
        match (&self.data, ty.physical()) {
            (ColumnData::Bytes { .. } | ColumnData::Symbol { .. }, Physical::Symbol) => {
                let mut base = SymbolBase::with_null();
                // The empty string is the null symbol, code 0.
                let mut index = base.index();
                let mut codes = Vec::with_capacity(n);
                let mut last: Option<(&[u8], u32)> = None;
                for i in 0..n {
                    let s = text(i);
                    let code = match last {
                        Some((p, c)) if p == s => c,
                        _ => base.intern(&mut index, s),
                    };
                    last = Some((s, code));
                    codes.push(code);
                }
                Some(Column {
                    ty,
                    data: ColumnData::Symbol {
                        codes,
                        base: Arc::new(base),
                    },
                })
            }
            (ColumnData::Bytes { .. } | ColumnData::Symbol { .. }, Physical::Bytes) => {
                let mut offsets = Vec::with_capacity(n + 1);
                let mut data = Vec::new();
                offsets.push(0);
                for i in 0..n {
                    data.extend_from_slice(text(i));
                    offsets.push(data.len() as u32);
                }
                Some(Column {
                    ty,
                    data: ColumnData::Bytes { offsets, data },
                })
            }
            _ => None,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match &self.data {
            ColumnData::I8(v) => v.len(),
            ColumnData::I16(v) => v.len(),
            ColumnData::I32(v) => v.len(),
            ColumnData::I64(v) => v.len(),
            ColumnData::F32(v) => v.len(),
            ColumnData::F64(v) => v.len(),
            ColumnData::Symbol { codes, .. } => codes.len(),
            ColumnData::Bytes { offsets, .. } => offsets.len().saturating_sub(1),
        }
    }

    /// Whether the column has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` of a SYMBOL/STRING/BLOB column as bytes.
    pub fn bytes_at(&self, i: usize) -> Option<&[u8]> {
        match &self.data {
            ColumnData::Symbol { codes, base } => base
                .strings
                .get(*codes.get(i)? as usize)
                .map(|s| s.as_slice()),
            ColumnData::Bytes { offsets, data } => {
                let (a, b) = (*offsets.get(i)? as usize, *offsets.get(i + 1)? as usize);
                data.get(a..b)
            }
            _ => None,
        }
    }

    /// Checks the structural invariants (used after decoding and in debug builds).
    pub fn validate(&self) -> Result<(), String> {
        let ok = match (&self.data, self.ty.physical()) {
            (ColumnData::I8(_), Physical::I8)
            | (ColumnData::I16(_), Physical::I16)
            | (ColumnData::I32(_), Physical::I32)
            | (ColumnData::I64(_), Physical::I64)
            | (ColumnData::F32(_), Physical::F32)
            | (ColumnData::F64(_), Physical::F64) => true,
            (ColumnData::Symbol { codes, base }, Physical::Symbol) => {
                let n = base.strings.len() as u32;
                codes.iter().all(|c| *c < n)
            }
            (ColumnData::Bytes { offsets, data }, Physical::Bytes) => {
                offsets.first() == Some(&0)
                    && offsets.windows(2).all(|w| w[0] <= w[1])
                    && offsets.last().map(|l| *l as usize) == Some(data.len())
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "column of type {} has inconsistent data",
                self.ty.name()
            ))
        }
    }

    /// Rows `start..end` as a new column (SYMBOL shares its base).
    pub fn slice(&self, start: usize, end: usize) -> Column {
        let data = match &self.data {
            ColumnData::I8(v) => ColumnData::I8(v[start..end].to_vec()),
            ColumnData::I16(v) => ColumnData::I16(v[start..end].to_vec()),
            ColumnData::I32(v) => ColumnData::I32(v[start..end].to_vec()),
            ColumnData::I64(v) => ColumnData::I64(v[start..end].to_vec()),
            ColumnData::F32(v) => ColumnData::F32(v[start..end].to_vec()),
            ColumnData::F64(v) => ColumnData::F64(v[start..end].to_vec()),
            ColumnData::Symbol { codes, base } => ColumnData::Symbol {
                codes: codes[start..end].to_vec(),
                base: base.clone(),
            },
            ColumnData::Bytes { offsets, data } => {
                let (a, b) = (offsets[start] as usize, offsets[end] as usize);
                ColumnData::Bytes {
                    offsets: offsets[start..=end].iter().map(|o| o - a as u32).collect(),
                    data: data[a..b].to_vec(),
                }
            }
        };
        Column { ty: self.ty, data }
    }

    /// Room for `rows` more rows without reallocating (a column assembled from known pieces).
    pub fn reserve(&mut self, rows: usize) {
        match &mut self.data {
            ColumnData::I8(v) => v.reserve(rows),
            ColumnData::I16(v) => v.reserve(rows),
            ColumnData::I32(v) => v.reserve(rows),
            ColumnData::I64(v) => v.reserve(rows),
            ColumnData::F32(v) => v.reserve(rows),
            ColumnData::F64(v) => v.reserve(rows),
            ColumnData::Symbol { codes, .. } => codes.reserve(rows),
            ColumnData::Bytes { offsets, .. } => offsets.reserve(rows),
        }
    }

    /// Appends `other` (same type). SYMBOL codes are re-mapped into this column's base.
    pub fn append(&mut self, other: &Column) -> Result<(), String> {
        if self.ty != other.ty {
            return Err(format!(
                "cannot append a {} column to a {} column",
                other.ty.name(),
                self.ty.name()
            ));
        }
        match (&mut self.data, &other.data) {
            (ColumnData::I8(a), ColumnData::I8(b)) => a.extend_from_slice(b),
            (ColumnData::I16(a), ColumnData::I16(b)) => a.extend_from_slice(b),
            (ColumnData::I32(a), ColumnData::I32(b)) => a.extend_from_slice(b),
            (ColumnData::I64(a), ColumnData::I64(b)) => a.extend_from_slice(b),
            (ColumnData::F32(a), ColumnData::F32(b)) => a.extend_from_slice(b),
            (ColumnData::F64(a), ColumnData::F64(b)) => a.extend_from_slice(b),
            (
                ColumnData::Symbol { codes, base },
                ColumnData::Symbol {
                    codes: oc,
                    base: ob,
                },
            ) => {
                // Partitions of one table usually hold the same symbols in the same order (a
                // chunk's base grows as it first meets each): then the codes carry over as
                // they are, without re-interning every string.
                let (mine_n, theirs_n) = (base.strings.len(), ob.strings.len());
                let shared = mine_n.min(theirs_n);
                if Arc::ptr_eq(base, ob) || base.strings[..shared] == ob.strings[..shared] {
                    // One base extends the other: codes keep their meaning once this base
                    // holds the other's extra strings too.
                    if theirs_n > mine_n {
                        Arc::make_mut(base)
                            .strings
                            .extend_from_slice(&ob.strings[mine_n..]);
                    }
                    codes.extend_from_slice(oc);
                } else {
                    let mine = Arc::make_mut(base);
                    let mut index = mine.index();
                    let map: Vec<u32> = ob
                        .strings
                        .iter()
                        .map(|s| mine.intern(&mut index, s))
                        .collect();
                    codes.extend(oc.iter().map(|c| map[*c as usize]));
                }
            }
            (
                ColumnData::Bytes { offsets, data },
                ColumnData::Bytes {
                    offsets: oo,
                    data: od,
                },
            ) => {
                let shift = data.len() as u32;
                data.extend_from_slice(od);
                offsets.extend(oo[1..].iter().map(|o| o + shift));
            }
            _ => return Err("column data does not match its type".into()),
        }
        Ok(())
    }

    /// Approximate heap bytes held (for cache accounting).
    pub fn heap_bytes(&self) -> usize {
        match &self.data {
            ColumnData::I8(v) => v.len(),
            ColumnData::I16(v) => v.len() * 2,
            ColumnData::I32(v) => v.len() * 4,
            ColumnData::I64(v) => v.len() * 8,
            ColumnData::F32(v) => v.len() * 4,
            ColumnData::F64(v) => v.len() * 8,
            ColumnData::Symbol { codes, .. } => codes.len() * 4,
            ColumnData::Bytes { offsets, data } => offsets.len() * 4 + data.len(),
        }
    }
}

impl SymbolBase {
    /// A base holding only the null symbol `""` at code 0.
    pub fn with_null() -> SymbolBase {
        SymbolBase {
            strings: vec![Vec::new()],
        }
    }

    /// A lookup index from string to code.
    pub fn index(&self) -> std::collections::HashMap<Vec<u8>, u32> {
        self.strings
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect()
    }

    /// The code of `s`, adding it if new.
    pub fn intern(&mut self, index: &mut std::collections::HashMap<Vec<u8>, u32>, s: &[u8]) -> u32 {
        if let Some(c) = index.get(s) {
            return *c;
        }
        let c = self.strings.len() as u32;
        self.strings.push(s.to_vec());
        index.insert(s.to_vec(), c);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_symbols_keep_their_strings_whatever_the_bases() {
        let sym = |v: &[&str]| Column::from_strings(DataType::Symbol, v);
        let cases: [(&[&str], &[&str]); 4] = [
            (&["A", "B", "A"], &["B", "A", "B"]), // different order: re-interned
            (&["A", "B"], &["A", "B", "A"]),      // equal bases
            (&["A"], &["A", "B", "C"]),           // theirs extends ours
            (&["A", "B", "C", "A"], &["A", "B", "A"]), // ours extends theirs
        ];
        for (a, b) in cases {
            let mut c = sym(a);
            c.append(&sym(b)).unwrap();
            let got: Vec<&[u8]> = (0..c.len()).map(|i| c.bytes_at(i).unwrap()).collect();
            let want: Vec<&[u8]> = a.iter().chain(b).map(|s| s.as_bytes()).collect();
            assert_eq!(got, want, "{a:?} + {b:?}");
            let ColumnData::Symbol { base, .. } = &c.data else {
                panic!("a symbol column")
            };
            let mut seen = std::collections::HashSet::new();
            assert!(
                base.strings.iter().all(|s| seen.insert(s)),
                "no string twice"
            );
        }
    }

    #[test]
    fn text_converts_between_string_and_symbol_keeping_values_and_nulls() {
        let vals = ["AAPL", "AAPL", "", "MSFT", "AAPL", "MSFT", "MSFT"];
        let s = Column::from_strings(DataType::String, &vals);
        let sym = s.text_as(DataType::Symbol).unwrap();
        let ColumnData::Symbol { codes, base } = &sym.data else {
            panic!("a symbol column")
        };
        assert_eq!(
            base.strings.len(),
            3,
            "null, AAPL, MSFT: each interned once"
        );
        assert_eq!(codes[2], 0, "the empty string is the null symbol");
        let back = sym.text_as(DataType::String).unwrap();
        for (i, v) in vals.iter().enumerate() {
            assert_eq!(sym.bytes_at(i).unwrap(), v.as_bytes());
            assert_eq!(back.bytes_at(i).unwrap(), v.as_bytes());
        }
        let ints = Column::nulls(DataType::Int, 2);
        assert!(
            ints.text_as(DataType::Symbol).is_none(),
            "numbers render first"
        );
    }
}
