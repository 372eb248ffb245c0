//! Property tests for the DolphinDB object codec (the fuzz target `fuzz/fuzz_targets/wire.rs`
//! drives the same decoder): every value round-trips, and arbitrary or truncated bytes give an
//! error — never a panic or an allocation the input cannot back.

use std::rc::Rc;

use lang::eval::value::Matrix;
use lang::eval::{Table, Value};
use lang::wire::{decode, encode, WireError};
use proptest::prelude::*;
use storage::column::{Column, ColumnData};
use storage::types::DataType;

fn arb_column() -> impl Strategy<Value = Column> {
    prop_oneof![
        prop::collection::vec(any::<i32>(), 0..20).prop_map(|v| Column {
            ty: DataType::Int,
            data: ColumnData::I32(v)
        }),
        prop::collection::vec(any::<i64>(), 0..20).prop_map(|v| Column {
            ty: DataType::Timestamp,
            data: ColumnData::I64(v)
        }),
        prop::collection::vec(any::<i32>(), 0..20).prop_map(|v| Column {
            ty: DataType::DateTime,
            data: ColumnData::I32(v)
        }),
        prop::collection::vec(-1e12f64..1e12, 0..20).prop_map(|v| Column {
            ty: DataType::Double,
            data: ColumnData::F64(v)
        }),
        prop::collection::vec(any::<i16>(), 0..20).prop_map(|v| Column {
            ty: DataType::Short,
            data: ColumnData::I16(v)
        }),
        prop::collection::vec(prop::sample::select(vec![0i8, 1, i8::MIN]), 0..20).prop_map(|v| {
            Column {
                ty: DataType::Bool,
                data: ColumnData::I8(v),
            }
        }),
        prop::collection::vec("[a-z0-9]{0,5}", 0..20)
            .prop_map(|v| Column::from_strings(DataType::String, &v)),
        prop::collection::vec("[A-C]{1,2}", 0..20)
            .prop_map(|v| Column::from_strings(DataType::Symbol, &v)),
    ]
}

fn strings(c: &Column) -> Option<Vec<Vec<u8>>> {
    (0..c.len())
        .map(|i| c.bytes_at(i).map(|b| b.to_vec()))
        .collect()
}

fn same(a: &Column, b: &Column) -> bool {
    match (strings(a), strings(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn vectors_and_tables_round_trip(cols in prop::collection::vec(arb_column(), 1..4)) {
        for c in &cols {
            let mut buf = Vec::new();
            encode(&Value::Vector(c.clone()), &mut buf).unwrap();
            let (back, used) = decode(&buf).unwrap();
            prop_assert_eq!(used, buf.len());
            let Value::Vector(d) = back else { panic!("not a vector") };
            prop_assert!(same(c, &d), "{:?} != {:?}", c, d);
            if !c.is_empty() {
                let mut buf = Vec::new();
                encode(&Value::Scalar(c.slice(0, 1)), &mut buf).unwrap();
                let (Value::Scalar(s), _) = decode(&buf).unwrap() else { panic!("not a scalar") };
                prop_assert!(same(&c.slice(0, 1), &s));
            }
        }
        let rows = cols[0].len();
        let cols: Vec<Column> = cols.into_iter().filter(|c| c.len() == rows).collect();
        let t = Table { columns: cols.iter().enumerate().map(|(i, c)| (format!("c{i}"), c.clone())).collect() };
        let mut buf = Vec::new();
        encode(&Value::Table(Rc::new(t.clone())), &mut buf).unwrap();
        let (Value::Table(back), _) = decode(&buf).unwrap() else { panic!("not a table") };
        prop_assert_eq!(back.rows(), rows);
        for ((n1, c1), (n2, c2)) in t.columns.iter().zip(&back.columns) {
            prop_assert_eq!(n1, n2);
            prop_assert!(same(c1, c2));
        }
        // Every strict prefix is incomplete, never garbage and never a panic.
        for cut in 0..buf.len() {
            prop_assert!(decode(&buf[..cut]).is_err());
        }
    }

    #[test]
    fn matrices_and_sets_round_trip(
        c in arb_column(),
        cols in 1usize..4,
        labelled in any::<(bool, bool)>(),
    ) {
        // Sets: distinct keys, any type.
        let keys = lang::eval::set_of(&c);
        let mut buf = Vec::new();
        encode(&Value::Set(keys.clone()), &mut buf).unwrap();
        let (Value::Set(back), used) = decode(&buf).unwrap() else { panic!("not a set") };
        prop_assert_eq!(used, buf.len());
        prop_assert!(same(&keys, &back));
        // Matrices: numeric data, `cols` columns of the column's values, optional labels.
        if c.is_empty() || c.bytes_at(0).is_none() {
            let rows = c.len();
            let mut data = c.clone();
            for _ in 1..cols {
                data.append(&c).unwrap();
            }
            let m = Matrix {
                rows,
                cols,
                data,
                row_labels: labelled.0.then(|| Column::from_strings(DataType::String, &vec!["r"; rows])),
                col_labels: labelled.1.then(|| Column { ty: DataType::Int, data: ColumnData::I32((0..cols as i32).collect()) }),
            };
            let mut buf = Vec::new();
            encode(&Value::Matrix(Rc::new(m.clone())), &mut buf).unwrap();
            let (Value::Matrix(back), used) = decode(&buf).unwrap() else { panic!("not a matrix") };
            prop_assert_eq!(used, buf.len());
            prop_assert_eq!((back.rows, back.cols), (m.rows, m.cols));
            prop_assert!(same(&back.data, &m.data));
            prop_assert_eq!(back.row_labels.is_some(), labelled.0);
            prop_assert_eq!(back.col_labels.as_ref(), m.col_labels.as_ref());
            for cut in 0..buf.len() {
                prop_assert!(decode(&buf[..cut]).is_err());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&data);
    }
}

#[test]
fn a_huge_count_is_not_allocated() {
    // An INT vector claiming 2^31-1 rows with 8 bytes present: incomplete, not an allocation.
    let mut b = vec![DataType::Int as u8, 1];
    b.extend_from_slice(&i32::MAX.to_le_bytes());
    b.extend_from_slice(&1i32.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    assert_eq!(decode(&b).unwrap_err(), WireError::Incomplete);
    let mut b = vec![DataType::Int as u8, 1];
    b.extend_from_slice(&(-5i32).to_le_bytes());
    assert!(matches!(decode(&b).unwrap_err(), WireError::Malformed(_)));
}
