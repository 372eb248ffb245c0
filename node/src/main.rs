//! `porpoise`: one binary for every role — controller, agent, data node, compute node, single.

use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;

use node::cli::{self, Command};
use node::config::keys;
use node::launch;
use node::log::{Level, Logger};

fn main() -> ExitCode {
    rt::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("shell") {
        return ExitCode::from(node::shell::main(&args[1..]));
    }
    let run = match cli::parse(&args) {
        Ok(Command::Help) => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!(
                "porpoise {} (DolphinDB-compatible; runtime {})",
                node::VERSION,
                rt::BACKEND
            );
            return ExitCode::SUCCESS;
        }
        Ok(Command::ConfigReference) => {
            print!("{}", keys::reference_markdown());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(run)) => run,
        Err(e) => {
            eprintln!("porpoise: {e}");
            return ExitCode::from(2);
        }
    };
    let loaded = match launch::load(&run) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("porpoise: {e}");
            return ExitCode::from(2);
        }
    };
    if run.print_config {
        print!("{}", loaded.settings.describe());
        for w in &loaded.warnings {
            println!("# warning: {w}");
        }
        return ExitCode::SUCCESS;
    }
    let settings = loaded.settings.clone();
    let log = match Logger::open(
        &loaded.log_file,
        settings.alias(),
        Level::parse(&settings.log_level()),
        loaded.console,
    ) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "porpoise: cannot open the log file {}: {e}",
                loaded.log_file.display()
            );
            return ExitCode::from(2);
        }
    };
    for w in &loaded.warnings {
        log.warn("config_warning", &w.to_string(), &[]);
    }
    if let Some(script) = &loaded.script {
        if !script.is_file() {
            log.warn(
                "script_missing",
                &format!(
                    "start-up script {} does not exist; starting without it",
                    script.display()
                ),
                &[],
            );
        }
    }
    log.info(
        "starting",
        &format!("porpoise {} starting as {}", node::VERSION, settings.mode()),
        &[
            ("site", &settings.site().to_string()),
            ("home", &settings.home().display().to_string()),
        ],
    );
    if let Err(e) = std::fs::create_dir_all(settings.home()) {
        log.error(
            "home_unusable",
            &format!("cannot create home {}: {e}", settings.home().display()),
            &[],
        );
        return ExitCode::from(1);
    }

    let startup = loaded.script.clone().filter(|s| s.is_file());
    if loaded.console
        && matches!(
            settings.mode(),
            node::config::Mode::Single
                | node::config::Mode::DataNode
                | node::config::Mode::ComputeNode
        )
    {
        node::shell::spawn_console(settings.site().host.clone(), settings.site().port);
    }
    let settings = Arc::new(settings);
    let nodes = loaded.nodes.clone();
    let config_files = loaded.config_files.clone();
    let node_log = log.clone();
    // Nodes that hold chunks run one shard per core (`workerNum`, by default the cores):
    // shard 0 serves the node, the others compute query tasks (node::workers).
    let shards = match settings.mode() {
        node::config::Mode::Single | node::config::Mode::DataNode => {
            settings.worker_num().clamp(1, rt::SHARDS_MAX)
        }
        _ => 1,
    };
    let outcome = rt::Runtime::new(settings.alias().to_string())
        .shards(shards)
        .run(move |shard: rt::shard::Shard<node::workers::Work>| {
            let settings = Rc::new((*settings).clone());
            let log = node_log.clone();
            let startup = startup.clone();
            let nodes = nodes.clone();
            let config_files = config_files.clone();
            async move {
                if shard.id() > 0 {
                    node::workers::serve(shard).await;
                    return Ok(());
                }
                let workers = (shard.count() > 1).then(|| node::workers::Workers::start(shard));
                let opts = node::start::StartOptions {
                    startup,
                    workers,
                    config_files,
                    ..Default::default()
                };
                node::start::start(settings, nodes.as_ref(), log.clone(), opts)
                    .await
                    .map_err(|e| log.error(e.event(), &e.to_string(), &[]))
            }
        });
    match outcome {
        Ok(results) if results.iter().all(Result::is_ok) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            log.error("runtime_failed", &e.to_string(), &[("code", e.code())]);
            ExitCode::from(1)
        }
    }
}
