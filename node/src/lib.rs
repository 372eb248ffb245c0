//! `node` — the `porpoise` binary's library: configuration, command line, logging and the
//! node roles (controller, agent, data node, compute node, single) served on one port.

pub mod agent;
pub mod api;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod controller;
pub mod coordinator;
pub mod datanode;
pub mod dfs_proto;
pub mod error;
pub mod heartbeat;
pub mod launch;
pub mod leader;
pub mod log;
pub mod metrics;
pub mod rpc;
pub mod script_http;
pub mod server;
pub mod shell;
pub mod single;
pub mod start;
pub mod web;
pub mod websocket;
pub mod workers;

/// Porpoise's version, reported by `--version` and the `version()` script function.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
