//! The HTTP JSON endpoint that runs DolphinDB script: `POST /api/execute` with the script as
//! the body. A reply names its session (`X-Session` header and `sessionId` field); sending the
//! header back continues the session, so variables persist between requests.
//!
//! ```text
//! curl -s -X POST --data-binary 'x = 1..3; sum(x)' http://127.0.0.1:8848/api/execute
//! {"sessionId":"1","ok":true,"output":[],"result":{"form":"scalar","type":"LONG","value":6}}
//! ```
//!
//! Invariants: at most [`SESSIONS_MAX`] sessions (the oldest is evicted); results carry at most
//! [`RESULT_ROWS_MAX`] rows (the reply says how many there were); a script error is a reply
//! with `ok:false` and the message (line and column included), never a dropped connection.

use std::cell::RefCell;
use std::collections::BTreeMap;

use lang::eval::{render_value, EvalError, Interp, NodeInfo, Value};
use storage::column::Column;

/// Most live sessions per node.
pub const SESSIONS_MAX: usize = 256;
/// Most rows of a result returned in one reply.
pub const RESULT_ROWS_MAX: usize = 1000;

/// The node's script sessions.
pub struct ScriptSessions {
    next_id: std::cell::Cell<u64>,
    sessions: RefCell<BTreeMap<u64, Interp>>,
    node: NodeInfo,
    dfs: Option<std::rc::Rc<dyn lang::catalog::Catalog>>,
    users: std::rc::Rc<lang::users::Users>,
    cluster: Option<std::rc::Rc<dyn lang::cluster::Cluster>>,
    /// Scripts running now: when each started (ms), by a sequence number.
    pub(crate) jobs: RefCell<BTreeMap<u64, u64>>,
    job_seq: std::cell::Cell<u64>,
    /// How long each finished script took (`GET /metrics`).
    script_seconds: crate::metrics::Latency,
}

impl Default for ScriptSessions {
    fn default() -> Self {
        ScriptSessions::new(NodeInfo::default(), None)
    }
}

pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_cell(c: &Column, i: usize) -> String {
    if c.bytes_at(i).is_some() {
        return json_str(&render_value(c, i));
    }
    let s = render_value(c, i);
    if s.is_empty() {
        "null".into()
    } else if s.parse::<f64>().is_ok_and(|f| f.is_finite()) {
        s
    } else {
        json_str(&s)
    }
}

fn json_vector(c: &Column) -> String {
    let n = c.len().min(RESULT_ROWS_MAX);
    let cells: Vec<String> = (0..n).map(|i| json_cell(c, i)).collect();
    format!("[{}]", cells.join(","))
}

/// A value as JSON: scalars, vectors (first [`RESULT_ROWS_MAX`] elements), tables.
pub fn value_json(v: &Value) -> String {
    match v {
        Value::Void => r#"{"form":"void"}"#.into(),
        Value::Scalar(c) => format!(
            r#"{{"form":"scalar","type":{},"value":{}}}"#,
            json_str(c.ty.name()),
            json_cell(c, 0)
        ),
        Value::Vector(c) => format!(
            r#"{{"form":"vector","type":{},"size":{},"value":{}}}"#,
            json_str(c.ty.name()),
            c.len(),
            json_vector(c)
        ),
        Value::Table(t) => {
            let cols: Vec<String> = t
                .columns
                .iter()
                .map(|(n, c)| {
                    format!(
                        r#"{{"name":{},"type":{},"value":{}}}"#,
                        json_str(n),
                        json_str(c.ty.name()),
                        json_vector(c)
                    )
                })
                .collect();
            format!(
                r#"{{"form":"table","rows":{},"columns":[{}]}}"#,
                t.rows(),
                cols.join(",")
            )
        }
        Value::Tuple(items) => format!(
            r#"{{"form":"tuple","value":[{}]}}"#,
            items
                .iter()
                .take(RESULT_ROWS_MAX)
                .map(value_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Pair(a, b) => format!(
            r#"{{"form":"pair","value":[{},{}]}}"#,
            value_json(a),
            value_json(b)
        ),
        Value::Set(c) => format!(
            r#"{{"form":"set","type":{},"size":{},"value":{}}}"#,
            json_str(c.ty.name()),
            c.len(),
            json_vector(c)
        ),
        Value::Dict(d) => format!(
            r#"{{"form":"dictionary","value":{{{}}}}}"#,
            d.iter()
                .take(RESULT_ROWS_MAX)
                .map(|(k, v)| format!("{}:{}", json_str(k), value_json(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Matrix(m) => {
            let cols: Vec<String> = (0..m.cols)
                .map(|j| json_vector(&m.data.slice(j * m.rows, (j + 1) * m.rows)))
                .collect();
            format!(
                r#"{{"form":"matrix","type":{},"rows":{},"cols":{},"value":[{}]}}"#,
                json_str(m.data.ty.name()),
                m.rows,
                m.cols,
                cols.join(",")
            )
        }
        other => format!(r#"{{"form":{}}}"#, json_str(&other.typestr())),
    }
}

impl ScriptSessions {
    /// Sessions of the node described by `node`.
    pub fn new(
        node: NodeInfo,
        dfs: Option<std::rc::Rc<dyn lang::catalog::Catalog>>,
    ) -> ScriptSessions {
        ScriptSessions {
            next_id: std::cell::Cell::new(1),
            sessions: RefCell::new(BTreeMap::new()),
            node,
            dfs,
            users: lang::users::default_users(),
            cluster: None,
            jobs: RefCell::new(BTreeMap::new()),
            job_seq: std::cell::Cell::new(0),
            script_seconds: Default::default(),
        }
    }

    /// Sessions reach the other nodes through `cluster` (`rpc`, `pnodeRun`, `getClusterPerf`).
    pub fn with_cluster(mut self, cluster: std::rc::Rc<dyn lang::cluster::Cluster>) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// Runs a call another node sent (`rpc`, `pnodeRun`) in a session of its own.
    pub async fn run_call(&self, call: &[u8]) -> Result<lang::eval::Value, String> {
        let mut it = self.new_interp();
        it.run_as_admin();
        let job = self.job_started();
        let r = lang::cluster::run_call(&mut it, call).await;
        self.job_finished(job);
        r.map_err(|e| e.to_string())
    }

    fn job_started(&self) -> u64 {
        let n = self.job_seq.get() + 1;
        self.job_seq.set(n);
        self.jobs.borrow_mut().insert(n, rt::time::unix_time_ms());
        n
    }

    fn job_finished(&self, job: u64) {
        if let Some(started_ms) = self.jobs.borrow_mut().remove(&job) {
            let ms = rt::time::unix_time_ms().saturating_sub(started_ms);
            self.script_seconds.observe(ms as f64 / 1e3);
        }
    }

    /// The sessions' part of `GET /metrics`.
    pub fn metrics(&self, out: &mut crate::metrics::Exposition) {
        out.gauge(
            "porpoise_sessions",
            "Script sessions open on this node (API and HTTP).",
            &[],
            self.sessions.borrow().len() as f64,
        );
        out.gauge(
            "porpoise_running_jobs",
            "Scripts running now.",
            &[],
            self.jobs.borrow().len() as f64,
        );
        out.histogram(
            "porpoise_script_seconds",
            "Time to run one script or call (queries, appends and all).",
            &self.script_seconds.get(),
        );
    }

    /// Uses `users` for logins (the node's persisted accounts).
    pub fn with_users(mut self, users: std::rc::Rc<lang::users::Users>) -> ScriptSessions {
        self.users = users;
        self
    }

    fn new_interp(&self) -> Interp {
        let mut it = Interp::new(rt::rand::seed());
        it.node = self.node.clone();
        it.dfs = self.dfs.clone();
        it.users = self.users.clone();
        it.cluster = self.cluster.clone();
        it
    }

    /// Runs a start-up script (`-script file.dos`) in its own session, logged in as `admin`
    /// as DolphinDB runs `startup.dos`; returns what it printed, or the error with its line
    /// and column.
    pub async fn run_startup(&self, src: &str) -> (Vec<String>, Result<(), String>) {
        let mut it = self.new_interp();
        it.run_as_admin();
        let r = it.run(src).await.map(|_| ()).map_err(|e| e.to_string());
        (std::mem::take(&mut it.output), r)
    }

    /// Opens a new session; returns its id.
    pub fn open(&self) -> u64 {
        let mut sessions = self.sessions.borrow_mut();
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        if sessions.len() >= SESSIONS_MAX {
            let oldest = *sessions.keys().next().expect("non-empty");
            sessions.remove(&oldest);
        }
        sessions.insert(id, self.new_interp());
        id
    }

    /// Runs `script` in session `session` (a new one when `None` or unknown); returns the
    /// session id and the JSON reply.
    pub async fn execute(&self, session: Option<u64>, script: &str) -> (u64, String) {
        // `run` opens a session for an unknown id; ids start at 1, so 0 is always new.
        let (id, (output, result)) = self
            .run(session.unwrap_or(0), |mut it| async move {
                let r = it.run(script).await;
                (it, r)
            })
            .await;
        let output: Vec<String> = output.iter().map(|s| json_str(s)).collect();
        let body = match result {
            Ok(v) => format!(
                r#"{{"sessionId":"{id}","ok":true,"output":[{}],"result":{}}}"#,
                output.join(","),
                value_json(&v)
            ),
            Err(EvalError { pos, message }) => {
                let (line, col) = pos.map(|p| (p.line, p.col)).unwrap_or((0, 0));
                let text = EvalError {
                    pos,
                    message: message.clone(),
                }
                .to_string();
                format!(
                    r#"{{"sessionId":"{id}","ok":false,"output":[{}],"error":{},"line":{line},"column":{col}}}"#,
                    output.join(","),
                    json_str(&text)
                )
            }
        };
        (id, body)
    }

    /// Runs `work` on session `id` (opened if unknown). The interpreter is moved out of the
    /// table while it runs — so other sessions proceed meanwhile — and `work` hands it back.
    /// Returns the id, the text the script printed, and the work's result.
    pub async fn run<R, F, Fut>(&self, id: u64, work: F) -> (u64, (Vec<String>, R))
    where
        F: FnOnce(Interp) -> Fut,
        Fut: std::future::Future<Output = (Interp, R)>,
    {
        let id = if self.sessions.borrow().contains_key(&id) {
            id
        } else {
            self.open()
        };
        let mut it = self
            .sessions
            .borrow_mut()
            .remove(&id)
            .expect("just ensured");
        it.output.clear();
        let job = self.job_started();
        let (mut it, r) = work(it).await;
        self.job_finished(job);
        let output = std::mem::take(&mut it.output);
        self.sessions.borrow_mut().insert(id, it);
        (id, (output, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_keep_variables_and_report_errors() {
        // Sessions seed their RNG from the runtime, so run where one exists (both backends).
        rt::Runtime::new("sessions")
            .run(|_s: rt::shard::Shard<()>| async {
                let s = ScriptSessions::default();
                let (id, body) = s.execute(None, "x = 1..3\nsum(x)").await;
                assert!(
                    body.contains(r#""ok":true"#) && body.contains(r#""value":6"#),
                    "{body}"
                );
                let (same, body) = s.execute(Some(id), "x * 2").await;
                assert_eq!(same, id);
                assert!(body.contains("[2,4,6]"), "{body}");
                let (other, body) = s.execute(None, "x").await;
                assert_ne!(other, id);
                assert!(
                    body.contains(r#""ok":false"#) && body.contains("Cannot recognize the token x"),
                    "{body}"
                );
                let (_, body) = s.execute(Some(id), "y = 1\nz = (2 +").await;
                assert!(body.contains(r#""line":2"#), "{body}");
                let script = "print(`hi)\ntable(1 2 as a, `x`y as b)";
                let (_, body) = s.execute(Some(id), script).await;
                assert!(
                    body.contains(r#""output":["hi"]"#)
                        && body.contains(r#""form":"table","rows":2"#),
                    "{body}"
                );
            })
            .unwrap();
    }
}
