//! Golden bytes: each on-disk encoding is pinned by a test that encodes a fixed value and
//! compares the bytes with a checked-in `.hex` file, so an accidental change — ours, or a
//! dependency's serialization (bincode of openraft's types) — fails a test, not a cluster.
//! A deliberate change bumps the file's format number and re-blesses the golden with
//! `PORPOISE_BLESS=1`.

use std::path::Path;

/// Bytes as hex, 32 bytes a line.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::new();
    for line in bytes.chunks(32) {
        for b in line {
            out.push_str(&format!("{b:02x}"));
        }
        out.push('\n');
    }
    out
}

/// Compares `bytes` with the golden file at `path` (written instead when `PORPOISE_BLESS=1`).
/// Panics with both hex forms on a difference.
pub fn check(path: &Path, bytes: &[u8]) {
    let hex = to_hex(bytes);
    if std::env::var("PORPOISE_BLESS").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().expect("golden files live in a directory"))
            .expect("create the golden directory");
        std::fs::write(path, &hex).expect("write the golden file");
        return;
    }
    let want = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with PORPOISE_BLESS=1 to create it",
            path.display()
        )
    });
    assert!(
        want == hex,
        "{} changed: an on-disk format changed without a new format number.\nwant:\n{want}\ngot:\n{hex}",
        path.display()
    );
}

/// The bytes of a golden file (to decode a format an older build wrote).
pub fn read(path: &Path) -> Vec<u8> {
    let hex: String = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .split_whitespace()
        .collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("a golden file is hex"))
        .collect()
}
