//! Fuzzes the DolphinDB object decoder the API server uses for uploads and function arguments.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lang::wire::decode(data);
});
