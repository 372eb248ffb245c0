//! Fuzzes every configuration parser with arbitrary bytes: `key=value` files (and resolving
//! them), `cluster.nodes`, sites and the command line. Errors are fine; panics, hangs and huge
//! allocations are bugs. `node/tests/config_props.rs` runs the same parsers on generated input
//! in the normal test suite.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use node::config::{kv, nodes, resolve, Site, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(f) = kv::parse(Source::File("fuzz.cfg".into()), text) {
        let _ = resolve(Path::new("/fuzz home"), &[f]);
    }
    let _ = nodes::parse(Source::File("cluster.nodes".into()), text);
    for line in text.lines().take(64) {
        let _ = Site::parse(line);
        let _ = Site::parse_with_mode(line);
    }
    let args: Vec<String> = text.split_whitespace().take(64).map(String::from).collect();
    let _ = node::cli::parse(&args);
});
