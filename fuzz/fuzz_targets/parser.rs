//! Fuzzes the DolphinDB script parser: any bytes give a tree or a syntax error with a
//! position — never a panic, a hang or unbounded recursion.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        let _ = lang::parse::parse(src);
        let _ = lang::parse::parse_expr(src);
    }
});
