//! Tables as arrow2 columns, both ways (feature `arrow2`, on by default).
//!
//! DolphinDB nulls are sentinels (D20); Arrow nulls are validity bits. Export turns every
//! sentinel — and the empty STRING/SYMBOL, which is DolphinDB's string null — into a null bit;
//! import turns null bits back into sentinels. Each field carries its DolphinDB type in the
//! metadata key [`TYPE_KEY`], so types Arrow lacks (MONTH, MINUTE) and SYMBOL (a dictionary
//! array) come back exactly; fields without the key are mapped from their Arrow type.

use std::rc::Rc;

use arrow2::array::{Array, BooleanArray, DictionaryArray, PrimitiveArray, Utf8Array};
use arrow2::bitmap::Bitmap;
use arrow2::chunk::Chunk;
use arrow2::datatypes::{DataType as Arrow, Field, IntegerType, Metadata, Schema, TimeUnit};
use arrow2::types::NativeType;
use value::column::{Column, ColumnData};
use value::types::{null, DataType};
use value::{Table, Value};

use crate::ClientError;

/// Field metadata key holding the DolphinDB type name (`"MONTH"`, `"SYMBOL"`, ...).
pub const TYPE_KEY: &str = "dolphindb.type";

fn arrow_type(ty: DataType) -> Result<Arrow, ClientError> {
    Ok(match ty {
        DataType::Bool => Arrow::Boolean,
        DataType::Char => Arrow::Int8,
        DataType::Short => Arrow::Int16,
        DataType::Int | DataType::Month | DataType::Minute => Arrow::Int32,
        DataType::Long => Arrow::Int64,
        DataType::Date => Arrow::Date32,
        DataType::Time => Arrow::Time32(TimeUnit::Millisecond),
        DataType::Second => Arrow::Time32(TimeUnit::Second),
        DataType::NanoTime => Arrow::Time64(TimeUnit::Nanosecond),
        DataType::DateTime => Arrow::Timestamp(TimeUnit::Second, None),
        DataType::Timestamp => Arrow::Timestamp(TimeUnit::Millisecond, None),
        DataType::NanoTimestamp => Arrow::Timestamp(TimeUnit::Nanosecond, None),
        DataType::Float => Arrow::Float32,
        DataType::Double => Arrow::Float64,
        DataType::String => Arrow::Utf8,
        DataType::Symbol => Arrow::Dictionary(IntegerType::Int32, Box::new(Arrow::Utf8), false),
        other => {
            return Err(ClientError::Encode(format!(
                "{} columns have no Arrow form here",
                other.name()
            )))
        }
    })
}

fn from_arrow_type(a: &Arrow) -> Option<DataType> {
    Some(match a {
        Arrow::Boolean => DataType::Bool,
        Arrow::Int8 => DataType::Char,
        Arrow::Int16 => DataType::Short,
        Arrow::Int32 => DataType::Int,
        Arrow::Int64 => DataType::Long,
        Arrow::Date32 => DataType::Date,
        Arrow::Time32(TimeUnit::Millisecond) => DataType::Time,
        Arrow::Time32(TimeUnit::Second) => DataType::Second,
        Arrow::Time64(TimeUnit::Nanosecond) => DataType::NanoTime,
        Arrow::Timestamp(TimeUnit::Second, _) => DataType::DateTime,
        Arrow::Timestamp(TimeUnit::Millisecond, _) => DataType::Timestamp,
        Arrow::Timestamp(TimeUnit::Nanosecond, _) => DataType::NanoTimestamp,
        Arrow::Float32 => DataType::Float,
        Arrow::Float64 => DataType::Double,
        Arrow::Utf8 | Arrow::LargeUtf8 => DataType::String,
        Arrow::Dictionary(..) => DataType::Symbol,
        _ => return None,
    })
}

fn primitive<T: NativeType>(v: Vec<T>, null: T, dt: Arrow) -> Box<dyn Array> {
    let validity: Option<Bitmap> = v
        .contains(&null)
        .then(|| v.iter().map(|x| *x != null).collect());
    Box::new(PrimitiveArray::<T>::new(dt, v.into(), validity))
}

fn strings(c: &Column) -> Vec<Option<String>> {
    (0..c.len())
        .map(|i| {
            let b = c.bytes_at(i).unwrap_or_default();
            (!b.is_empty()).then(|| String::from_utf8_lossy(b).into_owned())
        })
        .collect()
}

/// One column as an Arrow array.
pub fn column_to_arrow(c: &Column) -> Result<Box<dyn Array>, ClientError> {
    let dt = arrow_type(c.ty)?;
    Ok(match (&c.data, c.ty) {
        (ColumnData::I8(v), DataType::Bool) => Box::new(BooleanArray::from(
            v.iter()
                .map(|x| (*x != null::I8).then_some(*x != 0))
                .collect::<Vec<_>>(),
        )),
        (ColumnData::I8(v), _) => primitive(v.clone(), null::I8, dt),
        (ColumnData::I16(v), _) => primitive(v.clone(), null::I16, dt),
        // DATETIME is 32-bit in DolphinDB, 64-bit in Arrow.
        (ColumnData::I32(v), DataType::DateTime) => primitive(
            v.iter()
                .map(|x| {
                    if *x == null::I32 {
                        null::I64
                    } else {
                        *x as i64
                    }
                })
                .collect(),
            null::I64,
            dt,
        ),
        (ColumnData::I32(v), _) => primitive(v.clone(), null::I32, dt),
        (ColumnData::I64(v), _) => primitive(v.clone(), null::I64, dt),
        (ColumnData::F32(v), _) => primitive(v.clone(), null::F32, dt),
        (ColumnData::F64(v), _) => primitive(v.clone(), null::F64, dt),
        (ColumnData::Symbol { codes, base }, _) => {
            let values = Utf8Array::<i32>::from(
                base.strings
                    .iter()
                    .map(|s| Some(String::from_utf8_lossy(s).into_owned()))
                    .collect::<Vec<_>>(),
            );
            // The empty string is DolphinDB's null symbol.
            let keys = PrimitiveArray::<i32>::from(
                codes
                    .iter()
                    .map(|k| (!base.strings[*k as usize].is_empty()).then_some(*k as i32))
                    .collect::<Vec<_>>(),
            );
            Box::new(
                DictionaryArray::try_from_keys(keys, values.boxed())
                    .map_err(|e| ClientError::Encode(e.to_string()))?,
            )
        }
        (ColumnData::Bytes { .. }, _) => Box::new(Utf8Array::<i32>::from(strings(c))),
    })
}

fn unprimitive<T: NativeType>(a: &dyn Array, null: T) -> Option<Vec<T>> {
    let p = a.as_any().downcast_ref::<PrimitiveArray<T>>()?;
    Some(p.iter().map(|x| x.copied().unwrap_or(null)).collect())
}

fn utf8_values(a: &dyn Array) -> Option<Vec<String>> {
    if let Some(u) = a.as_any().downcast_ref::<Utf8Array<i32>>() {
        return Some(u.iter().map(|s| s.unwrap_or("").to_string()).collect());
    }
    let u = a.as_any().downcast_ref::<Utf8Array<i64>>()?;
    Some(u.iter().map(|s| s.unwrap_or("").to_string()).collect())
}

/// One Arrow array as a column of type `ty`.
pub fn column_from_arrow(a: &dyn Array, ty: DataType) -> Result<Column, ClientError> {
    let bad = || {
        ClientError::Encode(format!(
            "an Arrow {:?} array cannot become a {} column",
            a.data_type(),
            ty.name()
        ))
    };
    let data = match ty {
        DataType::Bool => {
            let b = a.as_any().downcast_ref::<BooleanArray>().ok_or_else(bad)?;
            ColumnData::I8(
                b.iter()
                    .map(|x| x.map(|x| x as i8).unwrap_or(null::I8))
                    .collect(),
            )
        }
        DataType::Symbol => {
            let d = a
                .as_any()
                .downcast_ref::<DictionaryArray<i32>>()
                .ok_or_else(bad)?;
            let values = utf8_values(d.values().as_ref()).ok_or_else(bad)?;
            let rows: Vec<&str> = d
                .keys()
                .iter()
                .map(|k| k.map(|k| values[*k as usize].as_str()).unwrap_or(""))
                .collect();
            return Ok(Column::from_strings(DataType::Symbol, &rows));
        }
        DataType::String => {
            let rows = utf8_values(a).ok_or_else(bad)?;
            return Ok(Column::from_strings(DataType::String, &rows));
        }
        DataType::DateTime => ColumnData::I32(
            unprimitive::<i64>(a, null::I64)
                .ok_or_else(bad)?
                .into_iter()
                .map(|x| if x == null::I64 { null::I32 } else { x as i32 })
                .collect(),
        ),
        _ => match ty.physical() {
            value::types::Physical::I8 => ColumnData::I8(unprimitive(a, null::I8).ok_or_else(bad)?),
            value::types::Physical::I16 => {
                ColumnData::I16(unprimitive(a, null::I16).ok_or_else(bad)?)
            }
            value::types::Physical::I32 => {
                ColumnData::I32(unprimitive(a, null::I32).ok_or_else(bad)?)
            }
            value::types::Physical::I64 => {
                ColumnData::I64(unprimitive(a, null::I64).ok_or_else(bad)?)
            }
            value::types::Physical::F32 => {
                ColumnData::F32(unprimitive(a, null::F32).ok_or_else(bad)?)
            }
            value::types::Physical::F64 => {
                ColumnData::F64(unprimitive(a, null::F64).ok_or_else(bad)?)
            }
            _ => return Err(bad()),
        },
    };
    Ok(Column { ty, data })
}

/// A table as an Arrow schema and chunk.
pub fn table_to_arrow(t: &Table) -> Result<(Schema, Chunk<Box<dyn Array>>), ClientError> {
    let mut fields = Vec::with_capacity(t.columns.len());
    let mut arrays = Vec::with_capacity(t.columns.len());
    for (name, c) in &t.columns {
        let mut meta = Metadata::new();
        meta.insert(TYPE_KEY.into(), c.ty.name().into());
        fields.push(Field::new(name, arrow_type(c.ty)?, true).with_metadata(meta));
        arrays.push(column_to_arrow(c)?);
    }
    let chunk = Chunk::try_new(arrays).map_err(|e| ClientError::Encode(e.to_string()))?;
    Ok((Schema::from(fields), chunk))
}

/// An Arrow schema and chunk as a table (a value to upload with [`crate::Client::upload`]).
pub fn table_from_arrow(
    schema: &Schema,
    chunk: &Chunk<Box<dyn Array>>,
) -> Result<Value, ClientError> {
    if schema.fields.len() != chunk.arrays().len() {
        return Err(ClientError::Encode(
            "the schema and the chunk disagree on the number of columns".into(),
        ));
    }
    let mut columns = Vec::with_capacity(schema.fields.len());
    for (f, a) in schema.fields.iter().zip(chunk.arrays()) {
        let ty = f
            .metadata
            .get(TYPE_KEY)
            .and_then(|n| DataType::from_name(n))
            .or_else(|| from_arrow_type(f.data_type()))
            .ok_or_else(|| {
                ClientError::Encode(format!(
                    "column {}: Arrow type {:?} has no DolphinDB form",
                    f.name,
                    f.data_type()
                ))
            })?;
        columns.push((f.name.clone(), column_from_arrow(a.as_ref(), ty)?));
    }
    Ok(Value::Table(Rc::new(Table { columns })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let c = |ty, data| Column { ty, data };
        Table {
            columns: vec![
                (
                    "b".into(),
                    c(DataType::Bool, ColumnData::I8(vec![1, null::I8, 0])),
                ),
                (
                    "i".into(),
                    c(DataType::Int, ColumnData::I32(vec![1, null::I32, 3])),
                ),
                (
                    "m".into(),
                    c(DataType::Month, ColumnData::I32(vec![24_276, 0, null::I32])),
                ),
                (
                    "dt".into(),
                    c(DataType::DateTime, ColumnData::I32(vec![-1, null::I32, 5])),
                ),
                (
                    "ts".into(),
                    c(
                        DataType::NanoTimestamp,
                        ColumnData::I64(vec![1, 2, null::I64]),
                    ),
                ),
                (
                    "d".into(),
                    c(
                        DataType::Double,
                        ColumnData::F64(vec![0.5, null::F64, -1.0]),
                    ),
                ),
                (
                    "sym".into(),
                    Column::from_strings(DataType::Symbol, &["A", "", "B"]),
                ),
                (
                    "s".into(),
                    Column::from_strings(DataType::String, &["x", "yy", ""]),
                ),
            ],
        }
    }

    #[test]
    fn tables_round_trip_through_arrow_with_nulls() {
        let t = table();
        let (schema, chunk) = table_to_arrow(&t).unwrap();
        assert_eq!(chunk.len(), 3);
        // Sentinels became validity bits.
        assert_eq!(chunk.arrays()[1].null_count(), 1);
        assert_eq!(chunk.arrays()[6].null_count(), 1);
        assert_eq!(schema.fields[2].metadata[TYPE_KEY], "MONTH");
        let Value::Table(back) = table_from_arrow(&schema, &chunk).unwrap() else {
            panic!("not a table")
        };
        for ((n1, c1), (n2, c2)) in t.columns.iter().zip(&back.columns) {
            assert_eq!(n1, n2);
            assert_eq!(c1.ty, c2.ty, "{n1}");
            assert_eq!(
                value::display::format(&Value::Vector(c1.clone())),
                value::display::format(&Value::Vector(c2.clone())),
                "{n1}"
            );
        }
    }

    #[test]
    fn plain_arrow_types_map_without_metadata() {
        let a: Box<dyn Array> = Box::new(PrimitiveArray::<i64>::from(vec![Some(7), None]));
        let schema = Schema::from(vec![Field::new("x", Arrow::Int64, true)]);
        let Value::Table(t) = table_from_arrow(&schema, &Chunk::new(vec![a])).unwrap() else {
            panic!()
        };
        assert_eq!(t.columns[0].1.data, ColumnData::I64(vec![7, null::I64]));
        let bad = Schema::from(vec![Field::new("x", Arrow::Binary, true)]);
        let arr: Box<dyn Array> =
            Box::new(arrow2::array::BinaryArray::<i32>::from(vec![Some(b"x")]));
        assert!(table_from_arrow(&bad, &Chunk::new(vec![arr])).is_err());
    }
}
