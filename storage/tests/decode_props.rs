//! Property tests for the decoders the fuzz target (`fuzz/fuzz_targets/storage.rs`) drives:
//! arbitrary and mutated bytes give errors, never panics; any column round-trips through a block.
#![cfg(not(madsim))]

use std::sync::Arc;

use proptest::prelude::*;
use storage::codec::{decode_block, encode_block};
use storage::column::{Column, ColumnData, SymbolBase};
use storage::meta::ChunkMeta;
use storage::types::DataType;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let base = Arc::new(SymbolBase::with_null());
        for ty in [DataType::Int, DataType::Double, DataType::Symbol, DataType::String, DataType::Bool, DataType::Long] {
            let _ = decode_block(&data, ty, Some(&base));
        }
        let _ = ChunkMeta::decode(&data);
        let _ = storage::wal::scan(&data);
    }

    #[test]
    fn mutated_blocks_are_rejected_or_equal(v in prop::collection::vec(any::<i64>(), 0..300), flip in any::<prop::sample::Index>()) {
        let col = Column { ty: DataType::Long, data: ColumnData::I64(v) };
        let block = encode_block(&col);
        let (back, _) = decode_block(&block, DataType::Long, None).unwrap();
        prop_assert_eq!(&back, &col);
        let mut bad = block.clone();
        let i = flip.index(bad.len());
        bad[i] ^= 0x40;
        prop_assert!(decode_block(&bad, DataType::Long, None).is_err());
    }

    #[test]
    fn doubles_and_strings_round_trip(x in prop::collection::vec(prop::num::f64::ANY, 0..200), s in prop::collection::vec("[a-z]{0,6}", 0..200)) {
        let col = Column { ty: DataType::Double, data: ColumnData::F64(x) };
        let (back, _) = decode_block(&encode_block(&col), DataType::Double, None).unwrap();
        // Compare bit patterns: NaN != NaN, but every bit must survive.
        let (ColumnData::F64(a), ColumnData::F64(b)) = (&back.data, &col.data) else { unreachable!() };
        prop_assert!(a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits()) && a.len() == b.len());
        let col = Column::from_strings(DataType::String, &s);
        prop_assert_eq!(decode_block(&encode_block(&col), DataType::String, None).unwrap().0, col);
    }
}
