//! The DFS catalog and partition-scheme decoders face whatever is on disk: arbitrary bytes give
//! an error, never a panic, and a damaged real catalog is refused by its checksum.
#![cfg(not(madsim))]

use lang::partition::{Key, Scheme};
use proptest::prelude::*;
use storage::bytes::{Reader, Writer};
use storage::types::DataType;

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_catalog_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = lang::dfs::check_catalog(&data);
        let _ = Scheme::decode(&mut Reader::new(&data));
    }

    /// Past the checksum: random contents behind a valid magic and crc reach every decoder.
    #[test]
    fn checksummed_garbage_never_panics(data in prop::collection::vec(any::<u8>(), 0..400), v2 in any::<bool>()) {
        let mut body = if v2 { b"PCA2".to_vec() } else { b"PCAT".to_vec() };
        body.extend_from_slice(&data);
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        let _ = lang::dfs::check_catalog(&body);
    }

    #[test]
    fn schemes_round_trip_and_truncations_fail(bounds in prop::collection::btree_set(-1000i64..1000, 2..12), buckets in 1u32..64) {
        let s = Scheme::Compo(vec![
            Scheme::new("RANGE", DataType::Int, &bounds.iter().map(|b| Key::I(*b)).collect::<Vec<_>>(), vec![]).unwrap(),
            Scheme::Hash { ty: DataType::Symbol, buckets },
        ]);
        let mut w = Writer::default();
        s.encode(&mut w);
        prop_assert_eq!(Scheme::decode(&mut Reader::new(&w.buf)).unwrap(), s);
        for cut in 0..w.buf.len() {
            prop_assert!(Scheme::decode(&mut Reader::new(&w.buf[..cut])).is_err());
        }
    }
}
