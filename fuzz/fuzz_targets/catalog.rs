//! Fuzzes the DFS catalog decoder (and the partition schemes inside it): bytes from disk never
//! panic the node, and a catalog that decodes re-encodes to the same catalog.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lang::dfs::check_catalog(data);
});
