//! `client` — the Rust client for Porpoise and DolphinDB servers over the DolphinDB API
//! protocol: connect (with login and a start-up script), run scripts, call functions, upload
//! variables, and — with high availability on — switch sites the way the official clients do.
//! `porpoise shell` is built on it.
//!
//! ```no_run
//! let mut c = client::Client::connect(client::Config::new("127.0.0.1:8848").login("admin", "123456"))?;
//! let v = c.run("select count(*) from loadTable('dfs://testDB', 'testTB')")?;
//! println!("{}", value::display::format(&v));
//! # Ok::<(), client::ClientError>(())
//! ```
//!
//! Failover (with `high_availability`): a lost connection or a reply tagged `<NotLeader>`,
//! `<DataNodeNotAvail>`, `<DataNodeNotReady>`, `<ControllerNotReady>`, `<ControllerNotAvail>`
//! or `DFS is not enabled` moves the client to another site (the named leader for
//! `<NotLeader>host:port:alias`), where it logs in again, re-runs the start-up script and
//! resends the request. `<ChunkInTransaction>` waits and retries. Like the official clients,
//! a request whose reply was lost is sent again; as they do, each request then carries the
//! client's id and a sequence number, negated on a resend, so a Porpoise cluster applies a
//! resent write once whichever node took the first attempt (ARCHITECTURE D100). Against
//! another server a script that is not idempotent may still apply twice.

#[cfg(feature = "arrow2")]
pub mod arrow;
pub mod conn;
pub mod protocol;
pub mod sites;

use std::time::Duration;

pub use conn::Connection;
pub use sites::{parse_site, Site};
use value::Value;

/// Errors, with stable codes (`code()`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("CLI-001 connection: {0}")]
    Io(String),
    #[error("CLI-002 login refused: {0}")]
    Auth(String),
    #[error("{0}")]
    Server(String),
    #[error("CLI-003 protocol: {0}")]
    Protocol(String),
    #[error("CLI-004 cannot send the value: {0}")]
    Encode(String),
    #[error("CLI-005 configuration: {0}")]
    Config(String),
    #[error(
        "CLI-006 no site could serve the request after {attempts} attempts; last error: {last}"
    )]
    Exhausted { attempts: u32, last: String },
}

impl ClientError {
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::Io(_) => "CLI-001",
            ClientError::Auth(_) => "CLI-002",
            ClientError::Server(_) => "SERVER",
            ClientError::Protocol(_) => "CLI-003",
            ClientError::Encode(_) => "CLI-004",
            ClientError::Config(_) => "CLI-005",
            ClientError::Exhausted { .. } => "CLI-006",
        }
    }
}

/// How to reach the server(s).
#[derive(Debug, Clone)]
pub struct Config {
    /// The first site is tried first; with high availability the others are failover targets.
    pub sites: Vec<Site>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Script run after every (re)connect, e.g. to define functions the session relies on.
    pub startup: Option<String>,
    pub high_availability: bool,
    /// Connect, read and write timeout.
    pub timeout_ms: u64,
    /// Attempts at a request across sites before giving up (with high availability).
    pub attempts_max: u32,
    /// Pause between failover attempts.
    pub retry_pause_ms: u64,
}

impl Config {
    /// One site, `"host:port"`. Panics on a malformed site: use [`Config::try_new`] for input.
    pub fn new(site: &str) -> Config {
        Config::try_new(site).expect("a host:port site")
    }

    pub fn try_new(site: &str) -> Result<Config, ClientError> {
        Ok(Config {
            sites: vec![parse_site(site).map_err(ClientError::Config)?],
            user: None,
            password: None,
            startup: None,
            high_availability: false,
            timeout_ms: 30_000,
            attempts_max: 10,
            retry_pause_ms: 200,
        })
    }

    pub fn login(mut self, user: &str, password: &str) -> Config {
        self.user = Some(user.into());
        self.password = Some(password.into());
        self
    }

    pub fn startup(mut self, script: &str) -> Config {
        self.startup = Some(script.into());
        self
    }

    /// Turns on failover across `sites` (added after the first).
    pub fn high_availability(mut self, sites: &[&str]) -> Result<Config, ClientError> {
        for s in sites {
            let s = parse_site(s).map_err(ClientError::Config)?;
            if !self.sites.contains(&s) {
                self.sites.push(s);
            }
        }
        self.high_availability = true;
        Ok(self)
    }

    pub fn timeout_ms(mut self, ms: u64) -> Config {
        self.timeout_ms = ms;
        self
    }
}

/// What a failed attempt tells the client to do next.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Give the error to the caller.
    Fail,
    /// Try the next site in the list.
    Another,
    /// Go to this site (a `<NotLeader>` redirect).
    Goto(Site),
    /// Wait and try the same site again.
    Wait,
}

const SWITCH_TAGS: [&str; 5] = [
    "<DataNodeNotAvail>",
    "<DataNodeNotReady>",
    "<ControllerNotReady>",
    "<ControllerNotAvail>",
    "DFS is not enabled",
];

/// Classifies a server error the way the official clients do (tags at the start).
fn next_for_server_error(msg: &str) -> Next {
    if let Some(rest) = msg.strip_prefix("<NotLeader>") {
        let mut parts = rest.trim().split(':');
        if let (Some(host), Some(port)) = (parts.next(), parts.next()) {
            if let Ok(site) = parse_site(&format!("{host}:{port}")) {
                return Next::Goto(site);
            }
        }
        return Next::Another;
    }
    if msg.starts_with("<ChunkInTransaction>") {
        return Next::Wait;
    }
    if SWITCH_TAGS.iter().any(|t| msg.starts_with(t)) {
        return Next::Another;
    }
    Next::Fail
}

/// A session with failover.
#[derive(Debug)]
pub struct Client {
    cfg: Config,
    conn: Option<Connection>,
    /// Index into `cfg.sites` of the site in use.
    current: usize,
    output: Vec<String>,
    /// With high availability: this client's id (uuid-shaped) and its last request's number.
    id: String,
    seq: i64,
}

/// A uuid-shaped id, unique enough to tell this client's requests from every other's.
fn client_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut bits = [0u64; 2];
    for (i, b) in bits.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        h.write_usize(i);
        *b = h.finish();
    }
    let hex = format!("{:016x}{:016x}", bits[0], bits[1]);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

impl Client {
    /// Connects to the first site that answers (with high availability; else the first site).
    pub fn connect(cfg: Config) -> Result<Client, ClientError> {
        if cfg.sites.is_empty() {
            return Err(ClientError::Config("no site to connect to".into()));
        }
        let mut c = Client {
            id: client_id(),
            seq: 0,
            cfg,
            conn: None,
            current: 0,
            output: Vec::new(),
        };
        let tries = if c.cfg.high_availability {
            c.cfg.sites.len()
        } else {
            1
        };
        let mut last = None;
        for _ in 0..tries {
            match c.open_current() {
                Ok(()) => return Ok(c),
                Err(e @ ClientError::Auth(_)) => return Err(e),
                Err(e) => last = Some(e),
            }
            c.current = (c.current + 1) % c.cfg.sites.len();
        }
        Err(last.expect("at least one attempt"))
    }

    fn open_current(&mut self) -> Result<(), ClientError> {
        self.conn = None;
        let site = self.cfg.sites[self.current].clone();
        let login = match (&self.cfg.user, &self.cfg.password) {
            (Some(u), Some(p)) => Some((u.as_str(), p.as_str())),
            _ => None,
        };
        let mut conn = Connection::open(&site, login, self.cfg.timeout_ms)?;
        if let Some(s) = &self.cfg.startup {
            let r = conn.exchange(&protocol::script_text(s), &[])?;
            self.output.extend(r.messages);
            r.result.map_err(ClientError::Server)?;
        }
        self.conn = Some(conn);
        Ok(())
    }

    /// The site this client is talking to.
    pub fn site(&self) -> &Site {
        &self.cfg.sites[self.current]
    }

    /// The server's session id.
    pub fn session(&self) -> Option<u64> {
        self.conn.as_ref().map(|c| c.session())
    }

    /// `print` output received since the last call.
    pub fn take_output(&mut self) -> Vec<String> {
        std::mem::take(&mut self.output)
    }

    /// Runs a script; returns its value (`Value::Void` when it has none).
    pub fn run(&mut self, script: &str) -> Result<Value, ClientError> {
        self.request(&protocol::script_text(script), &[])
            .map(|mut v| v.pop().unwrap_or(Value::Void))
    }

    /// Calls a function (a name or any expression yielding one) with uploaded arguments.
    pub fn call(&mut self, function: &str, args: &[Value]) -> Result<Value, ClientError> {
        self.request(&protocol::function_text(function, args.len()), args)
            .map(|mut v| v.pop().unwrap_or(Value::Void))
    }

    /// Uploads values as session variables.
    pub fn upload(&mut self, vars: &[(&str, Value)]) -> Result<(), ClientError> {
        let names: Vec<&str> = vars.iter().map(|(n, _)| *n).collect();
        let values: Vec<Value> = vars.iter().map(|(_, v)| v.clone()).collect();
        self.request(&protocol::variable_text(&names), &values)
            .map(|_| ())
    }

    /// Sends a request, failing over as the configuration allows.
    fn request(&mut self, text: &str, objects: &[Value]) -> Result<Vec<Value>, ClientError> {
        let attempts_max = if self.cfg.high_availability {
            self.cfg.attempts_max.max(1)
        } else {
            1
        };
        let mut last = String::new();
        self.seq += 1;
        for attempt in 0..attempts_max {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(self.cfg.retry_pause_ms));
            }
            // A resend is negated: the first attempt may have run (its reply was lost).
            let tag = self.cfg.high_availability.then(|| {
                let seq = if attempt == 0 { self.seq } else { -self.seq };
                (self.id.clone(), seq)
            });
            let next =
                match self.try_once(text, objects, tag.as_ref().map(|(u, s)| (u.as_str(), *s))) {
                    Ok(Ok(values)) => return Ok(values),
                    Ok(Err(msg)) => match next_for_server_error(&msg) {
                        Next::Fail => return Err(ClientError::Server(msg)),
                        _ if !self.cfg.high_availability => return Err(ClientError::Server(msg)),
                        next => {
                            last = msg;
                            next
                        }
                    },
                    Err(e @ (ClientError::Io(_) | ClientError::Protocol(_))) => {
                        // The connection is unusable; without high availability the next request
                        // reconnects to the same site.
                        self.conn = None;
                        if !self.cfg.high_availability {
                            return Err(e);
                        }
                        last = e.to_string();
                        Next::Another
                    }
                    Err(e) => return Err(e),
                };
            match next {
                Next::Goto(site) => {
                    self.current = match self.cfg.sites.iter().position(|s| *s == site) {
                        Some(i) => i,
                        None => {
                            self.cfg.sites.push(site);
                            self.cfg.sites.len() - 1
                        }
                    };
                    self.conn = None;
                }
                Next::Another => {
                    self.current = (self.current + 1) % self.cfg.sites.len();
                    self.conn = None;
                }
                Next::Wait | Next::Fail => {}
            }
        }
        Err(ClientError::Exhausted {
            attempts: attempts_max,
            last,
        })
    }

    /// One attempt on the current site: `Ok(Err(msg))` is a server error reply.
    fn try_once(
        &mut self,
        text: &str,
        objects: &[Value],
        tag: Option<(&str, i64)>,
    ) -> Result<Result<Vec<Value>, String>, ClientError> {
        if self.conn.is_none() {
            self.open_current()?;
        }
        let conn = self.conn.as_mut().expect("opened above");
        let reply = conn.exchange_tagged(text, objects, tag)?;
        self.output.extend(reply.messages);
        Ok(reply.result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_map_to_the_official_clients_moves() {
        assert_eq!(
            next_for_server_error("<NotLeader>10.0.0.81:8800:controller2"),
            Next::Goto(parse_site("10.0.0.81:8800").unwrap())
        );
        assert_eq!(next_for_server_error("<NotLeader>garbage"), Next::Another);
        assert_eq!(
            next_for_server_error("<DataNodeNotAvail>dnode1 is down"),
            Next::Another
        );
        assert_eq!(
            next_for_server_error("<ChunkInTransaction>chunk 7"),
            Next::Wait
        );
        assert_eq!(next_for_server_error("Syntax Error: x"), Next::Fail);
    }

    /// Reads one request (header line and `len` bytes of text) from `s`; returns its header.
    fn read_request(s: &mut std::net::TcpStream) -> Option<String> {
        use std::io::Read;
        let mut header = Vec::new();
        let mut byte = [0u8; 1];
        while s.read(&mut byte).ok()? == 1 && byte[0] != b'\n' {
            header.push(byte[0]);
        }
        let header = String::from_utf8(header).ok()?;
        let len: usize = header.split(' ').nth(2)?.parse().ok()?;
        let mut text = vec![0u8; len];
        s.read_exact(&mut text).ok()?;
        Some(header)
    }

    #[test]
    fn with_high_availability_each_request_is_tagged_and_a_resend_negated() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // A server that loses the reply to the first script (its connection closes), then
        // answers everything: it keeps each script's header.
        let server = std::thread::spawn(move || {
            let mut headers = Vec::new();
            for conn in 0..2 {
                let (mut s, _) = listener.accept().unwrap();
                read_request(&mut s).unwrap();
                s.write_all(&protocol::encode_reply(7, &[], Ok(&[])))
                    .unwrap();
                let scripts = if conn == 0 { 1 } else { 2 };
                for _ in 0..scripts {
                    headers.push(read_request(&mut s).unwrap());
                    if conn == 0 {
                        break;
                    }
                    s.write_all(&protocol::encode_reply(7, &[], Ok(&[Value::Void])))
                        .unwrap();
                }
            }
            headers
        });
        let cfg = Config::new(&format!("127.0.0.1:{port}"))
            .high_availability(&[])
            .unwrap();
        let mut c = Client::connect(cfg).unwrap();
        c.run("append!(t, x)").unwrap();
        c.run("1").unwrap();
        let headers = server.join().unwrap();
        let id = c.id.clone();
        assert_eq!(id.len(), 36, "uuid-shaped: {id}");
        assert_eq!(
            headers,
            [
                format!(
                    "API 7 {} / 32_1_4_2__0__{id}_1",
                    "script\nappend!(t, x)".len()
                ),
                format!(
                    "API 7 {} / 32_1_4_2__0__{id}_-1",
                    "script\nappend!(t, x)".len()
                ),
                format!("API 7 {} / 32_1_4_2__0__{id}_2", "script\n1".len()),
            ]
        );
        assert_ne!(client_id(), id, "every client has its own id");
    }

    #[test]
    fn ha_sites_are_deduplicated_and_validated() {
        let c = Config::new("127.0.0.1:1")
            .high_availability(&["127.0.0.1:1", "127.0.0.1:2"])
            .unwrap();
        assert_eq!(c.sites.len(), 2);
        assert!(Config::new("127.0.0.1:1")
            .high_availability(&["nope"])
            .is_err());
    }
}
