//! Resolving effective settings from the files in `configs/` and from crafted files: precedence,
//! overrides, wildcards, `<ALIAS>`, and errors that name file and line.

use std::path::{Path, PathBuf};

use node::config::{self, kv, resolve, ConfigFile, Entry, ErrorKind, Mode, Source};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn cfg(name: &str, text: &str) -> ConfigFile {
    kv::parse(Source::File(PathBuf::from(name)), text).unwrap()
}

fn cmdline(pairs: &[(&str, &str)]) -> ConfigFile {
    ConfigFile {
        source: Source::CommandLine,
        entries: pairs
            .iter()
            .map(|(k, v)| Entry {
                alias_pattern: None,
                key: k.to_string(),
                value: v.to_string(),
                line: 0,
            })
            .collect(),
    }
}

const HOME: &str = "/srv/porpoise/data";

#[test]
fn tutorial_controller_config_resolves() {
    let p1 = repo().join("configs/cluster/P1/config");
    let ctl = config::load_file(&p1.join("controller.cfg")).unwrap();
    let s = resolve(Path::new(HOME), &[ctl, cmdline(&[("mode", "controller")])]).unwrap();
    assert_eq!(s.mode(), Mode::Controller);
    assert_eq!(s.site().to_string(), "127.0.0.80:8800:controller1");
    assert_eq!(s.replication_factor(), 2);
    assert_eq!(s.replica_reliability_level(), 1);
    assert!(s.data_sync());
    assert!(s.raft_enabled());
    assert!(!s.lan_cluster());
    assert_eq!(
        (s.worker_num(), s.local_executors(), s.max_connections()),
        (4, 3, 512)
    );
    assert_eq!(s.max_mem_bytes(), Some(8 << 30));
    assert_eq!(
        s.raft_dir(),
        Path::new("/srv/porpoise/data/controller1/raft")
    );
    assert_eq!(
        s.dfs_meta_dir(),
        Path::new("/srv/porpoise/data/controller1/dfsMeta")
    );
    assert!(s.warnings().is_empty(), "{:?}", s.warnings());

    let nodes = config::load_nodes(&p1.join("cluster.nodes")).unwrap();
    config::check_controller_membership(&s, &nodes).unwrap();
    assert_eq!(nodes.of_mode(Mode::Controller).count(), 3);
    assert_eq!(nodes.of_mode(Mode::DataNode).count(), 3);
}

#[test]
fn tutorial_agent_config_resolves() {
    let agent = config::load_file(&repo().join("configs/cluster/P2/config/agent.cfg")).unwrap();
    let s = resolve(Path::new(HOME), &[agent]).unwrap();
    assert_eq!(s.mode(), Mode::Agent);
    assert_eq!(s.alias(), "agent2");
    assert_eq!(s.controller_site().unwrap().alias, "controller2");
    let sites = s.sites();
    assert_eq!(sites.len(), 4);
    assert_eq!(
        (sites[0].0.alias.as_str(), sites[0].1),
        ("agent2", Mode::Agent)
    );
    assert!(sites[1..].iter().all(|(_, m)| *m == Mode::Controller));
}

#[test]
fn data_node_settings_from_cluster_cfg_with_overrides() {
    let cluster = cfg(
        "cluster.cfg",
        "maxMemSize=32
workerNum=4
OLAPCacheEngineSize=2
newValuePartitionPolicy=add
volumes=/VOL1/<ALIAS>,/VOL2/<ALIAS>
datanode1.publicName=19.56.128.21
datanode2.publicName=19.56.128.22
%-datanode.maxMemSize=16
datanode?.workerNum=8
datanode1.workerNum=6
",
    );
    let dn1 = resolve(
        Path::new(HOME),
        &[
            cluster.clone(),
            cmdline(&[
                ("mode", "datanode"),
                ("localSite", "127.0.0.80:8802:datanode1"),
            ]),
        ],
    )
    .unwrap();
    assert_eq!(dn1.public_name().as_deref(), Some("19.56.128.21"));
    assert_eq!(
        dn1.worker_num(),
        6,
        "exact alias beats wildcard beats plain"
    );
    assert_eq!(
        dn1.max_mem_bytes(),
        Some(32 << 30),
        "%-datanode does not match datanode1"
    );
    assert_eq!(dn1.olap_cache_engine_bytes(), 2 << 30);
    assert_eq!(dn1.new_value_partition_policy(), "add");
    assert_eq!(
        dn1.volumes(),
        vec![
            PathBuf::from("/VOL1/datanode1"),
            PathBuf::from("/VOL2/datanode1")
        ]
    );
    let (_, loc) = dn1.get("workerNum").unwrap();
    assert_eq!(loc.line, 10);

    let dn2 = resolve(
        Path::new(HOME),
        &[
            cluster.clone(),
            cmdline(&[
                ("mode", "datanode"),
                ("localSite", "127.0.0.81:8802:datanode2"),
            ]),
        ],
    )
    .unwrap();
    assert_eq!(dn2.worker_num(), 8, "datanode? matches datanode2");
    assert_eq!(dn2.public_name().as_deref(), Some("19.56.128.22"));

    let p1 = resolve(
        Path::new(HOME),
        &[
            cluster.clone(),
            cmdline(&[
                ("mode", "datanode"),
                ("localSite", "127.0.0.80:8802:P1-datanode"),
            ]),
        ],
    )
    .unwrap();
    assert_eq!(
        p1.max_mem_bytes(),
        Some(16 << 30),
        "%-datanode matches P1-datanode"
    );
    assert_eq!(p1.worker_num(), 4);

    // The command line beats every file.
    let cli = resolve(
        Path::new(HOME),
        &[
            cluster,
            cmdline(&[
                ("mode", "datanode"),
                ("localSite", "127.0.0.80:8802:datanode1"),
                ("workerNum", "2"),
            ]),
        ],
    )
    .unwrap();
    assert_eq!(cli.worker_num(), 2);
}

#[test]
fn later_line_wins_within_a_file_and_later_file_wins() {
    let a = cfg("a.cfg", "mode=single\nworkerNum=3\nworkerNum=5\n");
    let b = cfg("b.cfg", "workerNum=7\n");
    assert_eq!(
        resolve(Path::new(HOME), std::slice::from_ref(&a))
            .unwrap()
            .worker_num(),
        5
    );
    assert_eq!(resolve(Path::new(HOME), &[a, b]).unwrap().worker_num(), 7);
}

#[test]
fn defaults_for_a_single_node() {
    let s = resolve(Path::new(HOME), &[cfg("dolphindb.cfg", "")]).unwrap();
    assert_eq!(s.mode(), Mode::Single);
    assert_eq!(s.site().to_string(), "localhost:8848:local8848");
    assert_eq!(
        s.volumes(),
        vec![PathBuf::from("/srv/porpoise/data/local8848/storage")]
    );
    assert_eq!(
        s.chunk_meta_dir(),
        Path::new("/srv/porpoise/data/local8848/storage/CHUNK_METADATA")
    );
    assert_eq!(s.replication_factor(), 2);
    assert!(!s.data_sync());
    assert!(s.lan_cluster());
    assert_eq!(
        s.new_value_partition_policy(),
        "add",
        "Porpoise never drops rows by default"
    );
    assert_eq!(s.local_executors(), s.worker_num() - 1);
}

#[test]
fn unknown_keys_warn_with_file_and_line() {
    let s = resolve(
        Path::new(HOME),
        &[cfg(
            "dolphindb.cfg",
            "workerNum=2\nmaxmemsize=4\nfrobnicate=1\n",
        )],
    )
    .unwrap();
    let w: Vec<String> = s.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].starts_with("dolphindb.cfg:2:") && w[0].contains("did you mean 'maxMemSize'"),
        "{w:?}"
    );
    assert!(
        w[1].starts_with("dolphindb.cfg:3:") && w[1].contains("frobnicate"),
        "{w:?}"
    );
}

#[test]
fn errors_name_file_line_and_fix() {
    let e = resolve(
        Path::new(HOME),
        &[cfg("cluster.cfg", "workerNum=4\nmaxMemSize=lots\n")],
    )
    .unwrap_err();
    assert_eq!((e.code(), e.location.line), ("CFG-008", 2));
    assert!(
        e.to_string()
            .starts_with("CFG-008 cluster.cfg:2: maxMemSize=lots is invalid"),
        "{e}"
    );

    let e = resolve(
        Path::new(HOME),
        &[cfg("cluster.cfg", "\n\nvolumes=VOL1/<ALIAS>\n")],
    )
    .unwrap_err();
    assert!(matches!(e.kind, ErrorKind::RelativePath { .. }));
    assert_eq!(e.location.line, 3);
    assert!(e.to_string().contains("only absolute paths"), "{e}");

    // An override for another node is checked too: cluster.cfg is shared by every node.
    let e = resolve(
        Path::new(HOME),
        &[cfg("cluster.cfg", "datanode9.workerNum=many\n")],
    )
    .unwrap_err();
    assert_eq!((e.code(), e.location.line), ("CFG-008", 1));

    let e = resolve(
        Path::new(HOME),
        &[cfg(
            "controller.cfg",
            "mode=controller\nlocalSite=10.0.0.80:8800\n",
        )],
    )
    .unwrap_err();
    assert_eq!((e.code(), e.location.line), ("CFG-005", 2));

    let e = resolve(Path::new(HOME), &[cfg("controller.cfg", "mode=master\n")]).unwrap_err();
    assert_eq!((e.code(), e.location.line), ("CFG-008", 1));

    let e = resolve(
        Path::new(HOME),
        &[cfg("controller.cfg", "mode=controller\n")],
    )
    .unwrap_err();
    assert_eq!(e.code(), "CFG-010");
    assert!(e.to_string().contains("needs 'localSite'"), "{e}");

    let e = resolve(
        Path::new(HOME),
        &[cfg(
            "agent.cfg",
            "mode=agent\nlocalSite=127.0.0.80:8801:agent1\n",
        )],
    )
    .unwrap_err();
    assert!(e.to_string().contains("needs 'controllerSite'"), "{e}");
}

#[test]
fn controller_missing_from_cluster_nodes_is_refused() {
    let ctl = cfg(
        "controller.cfg",
        "mode=controller\nlocalSite=127.0.0.80:8800:controller9\n",
    );
    let s = resolve(Path::new(HOME), &[ctl]).unwrap();
    let nodes =
        config::load_nodes(&repo().join("configs/cluster/P1/config/cluster.nodes")).unwrap();
    let e = config::check_controller_membership(&s, &nodes).unwrap_err();
    assert_eq!((e.code(), e.location.line), ("CFG-007", 2));
    assert!(e.to_string().contains("controller9"), "{e}");
    // A data node's alias is not a controller either.
    let dn = resolve(
        Path::new(HOME),
        &[cfg(
            "c.cfg",
            "mode=controller\nlocalSite=127.0.0.80:8802:datanode1\n",
        )],
    )
    .unwrap();
    assert!(config::check_controller_membership(&dn, &nodes).is_err());
}

#[test]
fn a_home_with_spaces_works() {
    let s = resolve(
        Path::new("/srv/my data/porpoise home"),
        &[cfg("dolphindb.cfg", "chunkMetaDir=meta dir\n")],
    )
    .unwrap();
    assert_eq!(
        s.volumes(),
        vec![PathBuf::from(
            "/srv/my data/porpoise home/local8848/storage"
        )]
    );
    assert_eq!(
        s.chunk_meta_dir(),
        Path::new("/srv/my data/porpoise home/meta dir/CHUNK_METADATA")
    );
}

#[test]
fn readme_documents_every_key() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for k in config::keys::KEYS {
        assert!(
            readme.contains(&format!("`{}`", k.name)),
            "README.md does not document `{}`",
            k.name
        );
    }
    assert!(
        readme.contains(&config::keys::reference_markdown()),
        "README's configuration reference is stale: regenerate it with `porpoise --config-reference`"
    );
}
