//! What a DFS scenario reads back from the cluster: table answers of `POST /api/execute` as
//! JSON, a data node's `GET /chunks` report, and the leader's `getClusterChunksStatus()`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use rt::sim::Host;

use crate::cluster::http_post;
use crate::invariants::replicas_agree;

pub const LOGIN: &str = "login(`admin, `123456)\n";
/// How long a scenario's client waits for one script's answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// The JSON values of column `name` of a table answer.
pub fn column(json: &str, name: &str) -> Option<Vec<String>> {
    let at = json.find(&format!("{{\"name\":\"{name}\""))?;
    let rest = &json[at..];
    let v = rest.find("\"value\":[")? + 9;
    let body = &rest[v..v + rest[v..].find(']')?];
    Some(if body.starts_with('"') {
        body.trim_matches('"')
            .split("\",\"")
            .map(str::to_string)
            .collect()
    } else {
        body.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
}

/// Batch → rows of one `select count(*) ... group by b` answer; `None` if it failed.
pub fn batch_counts(json: &str) -> Option<BTreeMap<i64, u64>> {
    if !json.contains("\"ok\":true") {
        return None;
    }
    let b = column(json, "b")?;
    let n = column(json, "n")?;
    Some(
        b.iter()
            .zip(&n)
            .map(|(b, n)| (b.parse().unwrap(), n.parse().unwrap()))
            .collect(),
    )
}

/// Runs `script` on `addr`; the JSON answer, or "" when none came within [`CALL_TIMEOUT`].
pub async fn run(addr: SocketAddr, script: &str) -> String {
    http_post(addr, "/api/execute", script, CALL_TIMEOUT)
        .await
        .unwrap_or_default()
}

/// A data node's `GET /chunks[?digest]` (`chunk,version,rows,txn[,digest]` lines) as chunk →
/// what it holds.
pub fn parse_chunks(text: &str) -> BTreeMap<u64, replicas_agree::Held> {
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or(text);
    body.lines()
        .filter_map(|l| {
            let mut fields = l.split(',');
            let f: Vec<u64> = fields
                .by_ref()
                .take(4)
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            // A prepared chunk carries none (an empty field).
            let digest = fields
                .next()
                .filter(|d| !d.is_empty())
                .map(|d| d.parse().unwrap_or(replicas_agree::UNREADABLE));
            Some((
                *f.first()?,
                replicas_agree::Held {
                    version: *f.get(1)?,
                    rows: *f.get(2)?,
                    txn: *f.get(3)?,
                    digest,
                },
            ))
        })
        .collect()
}

/// chunk → (version, replica aliases) from `getClusterChunksStatus()`.
pub fn parse_status(json: &str) -> Option<BTreeMap<u64, (u64, Vec<String>)>> {
    if !json.contains("\"ok\":true") {
        return None;
    }
    let ids = column(json, "chunkId")?;
    let versions = column(json, "version")?;
    let replicas = column(json, "replicas")?;
    let mut out = BTreeMap::new();
    for ((id, v), r) in ids.iter().zip(&versions).zip(&replicas) {
        let chunk = u64::from_str_radix(id.rsplit('-').next()?, 16).ok()?;
        let aliases = r
            .split(',')
            .filter_map(|x| x.split(':').next())
            .map(str::to_string)
            .collect();
        out.insert(chunk, (v.parse().ok()?, aliases));
    }
    Some(out)
}

/// The error of a failed answer (`"ok":false`), if it carries one.
pub fn error_of(json: &str) -> Option<String> {
    if !json.contains("\"ok\":false") {
        return None;
    }
    let at = json.find("\"error\":\"")? + 9;
    let rest = &json[at..];
    Some(rest[..rest.find('"').unwrap_or(rest.len())].to_string())
}

/// The scenarios' table `dfs://t`.`pt` (`p`, `b`, `i` INT, VALUE-partitioned by `p` over
/// 1..4), created through `addr` from `client` once the cluster takes it (a leader elected,
/// data nodes live).
pub async fn create_table(client: &Host, addr: SocketAddr) {
    let create = format!(
        "{LOGIN}db = database(\"dfs://t\", VALUE, 1..4)\n\
         db.createPartitionedTable(table(1:0, `p`b`i, [INT, INT, INT]), `pt, `p)"
    );
    client
        .spawn(async move {
            for _ in 0..120 {
                let out = run(addr, &create).await;
                if out.contains("\"ok\":true") || out.contains("already exists") {
                    return;
                }
                rt::time::sleep(Duration::from_millis(500)).await;
            }
            panic!("the cluster never created the table");
        })
        .await
        .unwrap();
}

/// The scenarios' read: each batch's rows in `dfs://t`.`pt`.
pub const COUNTS: &str = "select count(*) as n from loadTable(\"dfs://t\", `pt) group by b";

/// [`COUNTS`] through `addr`, run from `client` (`None`: it failed).
pub async fn counts_via(client: &Host, addr: SocketAddr) -> Option<BTreeMap<i64, u64>> {
    client
        .spawn(async move { batch_counts(&run(addr, &format!("{LOGIN}{COUNTS}")).await) })
        .await
        .unwrap()
}
