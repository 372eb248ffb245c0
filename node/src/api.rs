//! The DolphinDB binary API protocol (what the official clients speak), default mode:
//! `connect` (with inline login), `script`, `function` (the name may be an expression such as
//! `tableInsert{loadTable('dfs://db','t')}`), `variable` uploads, `MSG` print blocks and error
//! replies. See `../shared/dolphindb-api-protocol.md` in the steering repository.
//!
//! Request: `API|API2 <session> <len> / <flags>_1_<priority>_<parallelism>[...]\n` + `len` bytes
//! of text + (for `function` / `variable`) binary objects with no length prefix.
//! Reply: `[MSG\n<text>\0]* <session> <nObjects> 1\n` + `OK` or the error text + `\n` + objects.
//!
//! Invariants: the header line is at most [`HEADER_BYTES_MAX`], the text at most
//! [`TEXT_BYTES_MAX`], a request's objects at most [`OBJECT_BYTES_MAX`] — a header claiming more is
//! refused before anything is allocated; anything malformed closes this connection only; options
//! not implemented (pickle, arrow, compression, async) get an error reply, never a hang.

use lang::eval::{Interp, Value};
use lang::wire::{self, WireError};
use rt::net::TcpStream;

use crate::script_http::ScriptSessions;

pub const HEADER_BYTES_MAX: usize = 4096;
pub const TEXT_BYTES_MAX: usize = 64 << 20;
pub const OBJECT_BYTES_MAX: usize = 256 << 20;

const FLAG_ASYNC: u64 = 4;
const FLAG_PICKLE: u64 = 8;
const FLAG_COMPRESS: u64 = 64;
const FLAG_ARROW: u64 = 32768;

fn bad(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// Where API requests come from and where their replies go: a raw TCP connection, or the
/// messages of a WebSocket ([`crate::websocket`]).
pub(crate) trait Transport {
    /// Appends more request bytes to `buf`; `false` once the peer has gone.
    async fn more(&mut self, buf: &mut Vec<u8>) -> std::io::Result<bool>;
    /// Sends one reply.
    async fn send(&mut self, reply: Reply) -> std::io::Result<()>;
}

/// One request's answer: the print output it made, then its status line and objects.
pub struct Reply {
    pub messages: Vec<String>,
    pub body: Vec<u8>,
}

/// A raw API connection: the replies' print blocks and bodies go out back to back.
struct Raw<'a>(&'a mut TcpStream);

impl Transport for Raw<'_> {
    async fn more(&mut self, buf: &mut Vec<u8>) -> std::io::Result<bool> {
        let mut chunk = [0u8; 64 * 1024];
        let k = self.0.read(&mut chunk).await?;
        buf.extend_from_slice(&chunk[..k]);
        Ok(k > 0)
    }

    async fn send(&mut self, reply: Reply) -> std::io::Result<()> {
        let mut out = Vec::new();
        for m in &reply.messages {
            client::protocol::encode_message(m, &mut out);
        }
        out.extend_from_slice(&reply.body);
        self.0.write_all(&out).await
    }
}

/// Reads until `buf` holds at least `n` bytes.
async fn fill(t: &mut impl Transport, buf: &mut Vec<u8>, n: usize) -> std::io::Result<bool> {
    while buf.len() < n {
        if !t.more(buf).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn reply(session: u64, messages: Vec<String>, result: Result<Vec<Value>, String>) -> Reply {
    let body = match &result {
        Ok(objects) => {
            // Plain data on the wire: tables are shared, not copied.
            let plain: Vec<value::Value> = objects.iter().map(lang::wire::to_plain).collect();
            client::protocol::encode_reply(session, &[], Ok(&plain))
        }
        Err(e) => client::protocol::encode_reply(session, &[], Err(e)),
    };
    Reply { messages, body }
}

fn script_result(v: Value) -> Vec<Value> {
    match v {
        // Handles (a database, a partitioned table) stay on the server: nothing to send, as a
        // statement like `db.createPartitionedTable(...)` must not fail the script.
        Value::Void | Value::Database(_) | Value::PartitionSpec(_) | Value::DfsTable { .. } => {
            Vec::new()
        }
        v => vec![v],
    }
}

/// Serves API requests on `s`; `buf` holds the bytes already read.
pub async fn serve(
    s: &mut TcpStream,
    buf: Vec<u8>,
    sessions: &ScriptSessions,
) -> std::io::Result<()> {
    serve_gated(s, buf, sessions, &|| None).await
}

/// Like [`serve`], but every request other than `connect` is first put to `gate`; when it
/// answers `Some(error)` (a controller that is not the leader: `<NotLeader>host:port:alias`)
/// the request gets that error instead of running.
pub async fn serve_gated(
    s: &mut TcpStream,
    buf: Vec<u8>,
    sessions: &ScriptSessions,
    gate: &dyn Fn() -> Option<String>,
) -> std::io::Result<()> {
    serve_on(&mut Raw(s), buf, sessions, gate).await
}

/// Serves API requests arriving on `t`, gated as in [`serve_gated`].
pub(crate) async fn serve_on(
    t: &mut impl Transport,
    mut buf: Vec<u8>,
    sessions: &ScriptSessions,
    gate: &dyn Fn() -> Option<String>,
) -> std::io::Result<()> {
    loop {
        // Header line.
        let nl = loop {
            if let Some(p) = buf.iter().position(|b| *b == b'\n') {
                break p;
            }
            if buf.len() > HEADER_BYTES_MAX {
                return Err(bad("API header line too long"));
            }
            let want = buf.len() + 1;
            if !fill(t, &mut buf, want).await? {
                return Ok(());
            }
        };
        if nl > HEADER_BYTES_MAX {
            return Err(bad("API header line too long"));
        }
        let header = String::from_utf8_lossy(&buf[..nl]).into_owned();
        let parts: Vec<&str> = header.split_whitespace().collect();
        if parts.len() < 3 || !(parts[0] == "API" || parts[0] == "API2") {
            return Err(bad(format!("not an API request header: {header:?}")));
        }
        let session: u64 = parts[1].parse().map_err(|_| bad("bad session id"))?;
        let len: usize = parts[2].parse().map_err(|_| bad("bad length"))?;
        if len > TEXT_BYTES_MAX {
            return Err(bad(format!(
                "request text of {len} bytes is over the limit"
            )));
        }
        let flags: u64 = parts
            .get(4)
            .and_then(|f| f.split('_').next())
            .and_then(|f| f.parse().ok())
            .unwrap_or(0);
        if !fill(t, &mut buf, nl + 1 + len).await? {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&buf[nl + 1..nl + 1 + len]).into_owned();
        buf.drain(..nl + 1 + len);
        let mut lines = text.splitn(2, '\n');
        let cmd = lines.next().unwrap_or_default().trim().to_string();
        let rest = lines.next().unwrap_or_default().to_string();

        // Objects that follow `function` and `variable` requests.
        let nobjects = match cmd.as_str() {
            "function" | "variable" => rest
                .lines()
                .nth(1)
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0),
            _ => 0,
        };
        let mut args = Vec::with_capacity(nobjects.min(1024));
        for _ in 0..nobjects {
            loop {
                match wire::decode(&buf) {
                    Ok((v, used)) => {
                        buf.drain(..used);
                        args.push(v);
                        break;
                    }
                    Err(WireError::Incomplete) => {
                        if buf.len() > OBJECT_BYTES_MAX {
                            return Err(bad("request objects over the limit"));
                        }
                        let want = buf.len() + 1;
                        if !fill(t, &mut buf, want).await? {
                            return Ok(());
                        }
                    }
                    Err(e) => return Err(bad(e.to_string())),
                }
            }
        }

        // `__<fetchSize>` after the flags asks for the result in blocks (0 = all at once).
        let fetch_size: u64 = parts
            .get(4)
            .and_then(|f| f.split("__").nth(1))
            .and_then(|f| f.parse().ok())
            .unwrap_or(0);
        let unsupported = [
            (FLAG_PICKLE, "pickle"),
            (FLAG_ARROW, "arrow"),
            (FLAG_COMPRESS, "compression"),
            (FLAG_ASYNC, "asynchronous mode"),
        ]
        .iter()
        .find(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .or((fetch_size > 0).then_some("fetchSize"));
        let tag = parts.get(4).and_then(|f| request_tag(f));
        let out = if let Some(opt) = unsupported {
            reply(
                session,
                Vec::new(),
                Err(format!(
                    "Porpoise does not support the {opt} protocol option yet; use the client without it"
                )),
            )
        } else if let Some(refusal) = (cmd != "connect").then(gate).flatten() {
            reply(session, Vec::new(), Err(refusal))
        } else {
            handle(&cmd, &rest, args, session, sessions, tag).await
        };
        t.send(out).await?;
    }
}

/// The high-availability tag of a request's flags field
/// (`<flags>_1_<priority>_<parallelism>__<fetchSize>__<uuid>_<seqNo>`): the client's session
/// uuid and the request's sequence number, negative when resent after a failover (D100).
fn request_tag(flags: &str) -> Option<(String, i64)> {
    let (uuid, seq) = flags.split("__").nth(2)?.rsplit_once('_')?;
    let seq: i64 = seq.parse().ok()?;
    (!uuid.is_empty() && seq != 0).then(|| (uuid.to_string(), seq))
}

async fn run_in<F, Fut>(sessions: &ScriptSessions, session: u64, f: F) -> Reply
where
    F: FnOnce(Interp) -> Fut,
    Fut: std::future::Future<Output = (Interp, Result<Vec<Value>, String>)>,
{
    let (id, (msgs, result)) = sessions.run(session, f).await;
    reply(id, msgs, result)
}

async fn handle(
    cmd: &str,
    rest: &str,
    args: Vec<Value>,
    session: u64,
    sessions: &ScriptSessions,
    tag: Option<(String, i64)>,
) -> Reply {
    match cmd {
        "connect" => {
            let lines: Vec<&str> = rest.lines().collect();
            let id = sessions.open();
            if lines.first() == Some(&"login") {
                let (user, pass) = (
                    lines.get(1).copied().unwrap_or(""),
                    lines.get(2).copied().unwrap_or(""),
                );
                let script = format!("login({user:?}, {pass:?})");
                return run_in(sessions, id, |mut it| async move {
                    let r = it
                        .run(&script)
                        .await
                        .map(|_| vec![Value::bool(true)])
                        .map_err(|e| e.message);
                    (it, r)
                })
                .await;
            }
            reply(id, Vec::new(), Ok(Vec::new()))
        }
        "script" => {
            run_in(sessions, session, |mut it| async move {
                it.begin_request(tag);
                let r = it
                    .run(rest)
                    .await
                    .map(script_result)
                    .map_err(|e| e.to_string());
                (it, r)
            })
            .await
        }
        "function" => {
            let name = rest.lines().next().unwrap_or_default().trim().to_string();
            match name.as_str() {
                "getRequiredAPIVersion" => reply(
                    session,
                    Vec::new(),
                    Err("getRequiredAPIVersion is not required by this server".into()),
                ),
                "isNodeInitialized" => reply(session, Vec::new(), Ok(vec![Value::bool(true)])),
                _ => {
                    run_in(sessions, session, |mut it| async move {
                        it.begin_request(tag);
                        let mut call = String::new();
                        for (i, a) in args.into_iter().enumerate() {
                            let var = format!("__porpoise_arg{i}");
                            it.set(&var, a);
                            call.push_str(if i == 0 { "" } else { ", " });
                            call.push_str(&var);
                        }
                        let r = it
                            .run(&format!("({name})({call})"))
                            .await
                            .map(script_result)
                            .map_err(|e| e.to_string());
                        it.clear_args();
                        (it, r)
                    })
                    .await
                }
            }
        }
        "variable" => {
            let names: Vec<String> = rest
                .lines()
                .next()
                .unwrap_or_default()
                .split(',')
                .map(|n| n.trim().to_string())
                .collect();
            if names.len() != args.len() {
                return reply(
                    session,
                    Vec::new(),
                    Err(format!("{} names for {} objects", names.len(), args.len())),
                );
            }
            run_in(sessions, session, |mut it| async move {
                for (n, v) in names.iter().zip(args) {
                    it.set(n, v);
                }
                (it, Ok(Vec::new()))
            })
            .await
        }
        other => reply(
            session,
            Vec::new(),
            Err(format!("unknown API request '{other}'")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::request_tag;

    #[test]
    fn the_high_availability_tag_is_read_from_the_flags_field() {
        let uuid = "5f1f7b2c-0a4e-4a8e-9d4e-1c2b3a4d5e6f";
        assert_eq!(
            request_tag(&format!("32_1_4_64__0__{uuid}_17")),
            Some((uuid.to_string(), 17))
        );
        assert_eq!(
            request_tag(&format!("32_1_4_64__0__{uuid}_-17")),
            Some((uuid.to_string(), -17)),
            "a resend"
        );
        assert_eq!(request_tag("32_1_4_64__0"), None);
        assert_eq!(request_tag("32_1_4_2"), None);
        assert_eq!(request_tag("32_1_4_64__0__nonsense"), None);
        assert_eq!(request_tag(&format!("32_1_4_64__0__{uuid}_x")), None);
    }
}
