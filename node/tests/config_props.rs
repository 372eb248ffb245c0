//! Property tests: the configuration parsers never panic, whatever the input, and a generated
//! valid configuration resolves to exactly the values it was generated with. The same parsers
//! are fuzzed by `fuzz/fuzz_targets/config.rs`.

use std::path::Path;

use node::config::{kv, nodes, resolve, Mode, Source};
use proptest::prelude::*;

fn src() -> Source {
    Source::File("gen.cfg".into())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn kv_parser_never_panics(text in "\\PC{0,300}") {
        if let Ok(f) = kv::parse(src(), &text) {
            let _ = resolve(Path::new("/h"), &[f]);
        }
    }

    #[test]
    fn kv_parser_never_panics_on_config_like_text(
        lines in prop::collection::vec("[a-zA-Z%?.<>]{0,12}=[ -~]{0,24}|#.*|", 0..12)
    ) {
        let text = lines.join("\n");
        if let Ok(f) = kv::parse(src(), &text) {
            let _ = resolve(Path::new("/h"), &[f]);
        }
    }

    #[test]
    fn nodes_parser_never_panics(text in "(localSite,mode\n)?([0-9.:a-z]{0,20},[a-z]{0,12}\n){0,8}") {
        let _ = nodes::parse(src(), &text);
    }

    #[test]
    fn generated_settings_resolve_to_their_values(
        workers in 1i64..=1024,
        conns in 1i64..=65536,
        mem_tenths in 0u32..1000,
        lan in any::<bool>(),
        port in 1u16..=65535,
        alias in "[a-z][a-z0-9_-]{0,15}",
        a in 0u8..=255, b in 0u8..=255,
    ) {
        let text = format!(
            "mode=datanode\nlocalSite={a}.{b}.0.1:{port}:{alias}\nworkerNum={workers}\nmaxConnections={conns}\n\
             maxMemSize={}\nlanCluster={}\nvolumes=/v1/<ALIAS>,/v2\n",
            mem_tenths as f64 / 10.0,
            if lan { 1 } else { 0 }
        );
        let f = kv::parse(src(), &text).unwrap();
        let s = resolve(Path::new("/h"), &[f]).unwrap();
        prop_assert_eq!(s.mode(), Mode::DataNode);
        prop_assert_eq!(s.alias(), alias.as_str());
        prop_assert_eq!(s.site().port, port);
        prop_assert_eq!(s.worker_num() as i64, workers);
        prop_assert_eq!(s.max_connections() as i64, conns);
        prop_assert_eq!(s.lan_cluster(), lan);
        prop_assert_eq!(s.volumes(), vec![Path::new("/v1").join(&alias), "/v2".into()]);
        prop_assert!(s.warnings().is_empty());
    }
}
