//! Fuzzes the storage decoders with arbitrary bytes: a column block (as every type), a chunk
//! metadata record, and a redo log. Errors are expected; panics and huge allocations are bugs.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use storage::codec::decode_block;
use storage::column::SymbolBase;
use storage::meta::ChunkMeta;
use storage::types::DataType;

fuzz_target!(|data: &[u8]| {
    let base = Arc::new(SymbolBase::with_null());
    for id in 0..=32u8 {
        if let Some(ty) = DataType::from_id(id).filter(|t| t.storable()) {
            let _ = decode_block(data, ty, Some(&base));
        }
    }
    let _ = ChunkMeta::decode(data);
    let _ = storage::wal::scan(data);
});
