//! A program that only talks to Porpoise builds without the server: the client's dependencies,
//! and those of the `value` crate under it, name no server crate.

fn dependencies(manifest: &str) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut out = Vec::new();
    let mut in_deps = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && !line.is_empty() && !line.starts_with('#') {
            out.push(line.split(['=', '.', ' ']).next().unwrap().to_string());
        }
    }
    out
}

#[test]
fn the_client_and_its_values_depend_on_no_server_crate() {
    let root = env!("CARGO_MANIFEST_DIR");
    for manifest in [
        format!("{root}/Cargo.toml"),
        format!("{root}/../value/Cargo.toml"),
    ] {
        let deps = dependencies(&manifest);
        assert!(!deps.is_empty(), "{manifest}: no [dependencies] read");
        for server in [
            "lang", "storage", "rt", "node", "glommio", "openraft", "zstd",
        ] {
            assert!(
                !deps.iter().any(|d| d == server),
                "{manifest} depends on {server}: {deps:?}"
            );
        }
    }
}
