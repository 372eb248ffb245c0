//! The DolphinDB API protocol's framing, both directions, without I/O: what a client sends
//! (`encode_request`) and parses back (`parse_reply`), and what a server sends
//! (`encode_reply`). The server (`node::api`) and this client share these functions, so the
//! fuzz target `fuzz/fuzz_targets/client_reply.rs` and the property tests exercise the code
//! both sides run. Objects inside the frames are `value::wire` objects.
//!
//! ```text
//! request: API <session> <len> / <flags>_1_<priority>_<parallelism>\n
//!          <len bytes of text> [objects, for `function` and `variable`, no length prefix]
//! reply:   [MSG\n<printed text>\0]* <session> <nObjects> <1 = little-endian>\n
//!          OK | <error text>\n [objects]
//! ```
//!
//! Invariant: `parse_reply` never panics and never allocates more than its input holds; a
//! truncated reply is `Ok(None)` (read more and call again), anything else malformed is an
//! error.

use value::wire::{self, WireError};
use value::Value;

/// Flag bits of a request header (see the protocol notes).
pub const FLAG_API_CLIENT: u64 = 32;

/// Longest reply header line (session, object count, endianness) or `MSG` block accepted.
pub const REPLY_LINE_BYTES_MAX: usize = 1 << 20;
/// Most objects a reply may claim.
pub const REPLY_OBJECTS_MAX: usize = 1 << 16;

/// One parsed reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub session: u64,
    /// `print` output, in order.
    pub messages: Vec<String>,
    /// The objects on `OK`, or the server's error text.
    pub result: Result<Vec<Value>, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("malformed reply: {0}")]
    Malformed(String),
    #[error("reply object: {0}")]
    Object(WireError),
}

/// A request: header line, `text`, then the objects.
pub fn encode_request(session: u64, text: &str, objects: &[Value]) -> Result<Vec<u8>, WireError> {
    encode_tagged_request(session, text, objects, None)
}

/// [`encode_request`] with the high-availability tag the official clients send, `(uuid,
/// seq)`: the client's id and the request's sequence number, negated when the request is sent
/// again after a failover. A Porpoise cluster applies a resent write once (ARCHITECTURE D100).
pub fn encode_tagged_request(
    session: u64,
    text: &str,
    objects: &[Value],
    tag: Option<(&str, i64)>,
) -> Result<Vec<u8>, WireError> {
    let flags = match tag {
        Some((uuid, seq)) => format!("{FLAG_API_CLIENT}_1_4_2__0__{uuid}_{seq}"),
        None => format!("{FLAG_API_CLIENT}_1_4_2"),
    };
    let mut out = format!("API {session} {} / {flags}\n", text.len()).into_bytes();
    out.extend_from_slice(text.as_bytes());
    for o in objects {
        wire::encode(o, &mut out)?;
    }
    Ok(out)
}

/// The text of a `script` request.
pub fn script_text(script: &str) -> String {
    format!("script\n{script}")
}

/// The text of a `function` request: `name` may be any expression that yields a function.
pub fn function_text(name: &str, nargs: usize) -> String {
    format!("function\n{name}\n{nargs}\n1")
}

/// The text of a `variable` upload.
pub fn variable_text(names: &[&str]) -> String {
    format!("variable\n{}\n{}\n1", names.join(","), names.len())
}

/// The text of a `connect`, with an inline login when credentials are given.
pub fn connect_text(login: Option<(&str, &str)>) -> String {
    match login {
        Some((user, password)) => format!("connect\nlogin\n{user}\n{password}\nfalse"),
        None => "connect\n".into(),
    }
}

/// A reply; an object that cannot be encoded turns the reply into an error reply.
/// One print block (`MSG\n<text>\0`) of a reply; a NUL inside the text would end it early.
pub fn encode_message(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"MSG\n");
    out.extend_from_slice(text.replace('\0', " ").as_bytes());
    out.push(0);
}

pub fn encode_reply(session: u64, messages: &[String], result: Result<&[Value], &str>) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        encode_message(m, &mut out);
    }
    match result {
        Ok(objects) => {
            let mut body = Vec::new();
            for o in objects {
                if let Err(e) = wire::encode(o, &mut body) {
                    return encode_reply(session, &[], Err(&e.to_string()));
                }
            }
            out.extend_from_slice(format!("{session} {} 1\nOK\n", objects.len()).as_bytes());
            out.extend_from_slice(&body);
        }
        Err(e) => {
            let mut e = e.replace(['\n', '\r'], " ");
            if e == "OK" {
                // "OK" alone on the status line means success: never send it as an error.
                e = "Error: OK".into();
            }
            out.extend_from_slice(format!("{session} 0 1\n{e}\n").as_bytes())
        }
    }
    out
}

fn line(b: &[u8], from: usize, terminator: u8) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    match b[from..].iter().position(|c| *c == terminator) {
        Some(n) if n > REPLY_LINE_BYTES_MAX => {
            Err(ProtocolError::Malformed("line too long".into()))
        }
        Some(n) => Ok(Some((&b[from..from + n], from + n + 1))),
        None if b.len() - from > REPLY_LINE_BYTES_MAX => {
            Err(ProtocolError::Malformed("line too long".into()))
        }
        None => Ok(None),
    }
}

/// Parses one reply from the front of `b`: `Ok(None)` when more bytes are needed, else the
/// reply and the bytes it used.
pub fn parse_reply(b: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
    let mut i = 0;
    let mut messages = Vec::new();
    loop {
        if b.len() - i < 4 {
            // Could still be the start of "MSG\n" or of a short header.
            if b[i..].iter().all(|c| *c != b'\n') {
                return Ok(None);
            }
        }
        if b[i..].starts_with(b"MSG\n") {
            match line(b, i + 4, 0)? {
                Some((text, next)) => {
                    messages.push(String::from_utf8_lossy(text).into_owned());
                    i = next;
                    continue;
                }
                None => return Ok(None),
            }
        }
        break;
    }
    let Some((header, next)) = line(b, i, b'\n')? else {
        return Ok(None);
    };
    let header = String::from_utf8_lossy(header);
    let parts: Vec<&str> = header.split_whitespace().collect();
    let bad = || ProtocolError::Malformed(format!("reply header {header:?}"));
    if parts.len() < 2 {
        return Err(bad());
    }
    let session: u64 = parts[0].parse().map_err(|_| bad())?;
    let n: usize = parts[1].parse().map_err(|_| bad())?;
    if n > REPLY_OBJECTS_MAX {
        return Err(bad());
    }
    if parts.get(2).is_some_and(|e| *e == "0") {
        return Err(ProtocolError::Malformed(
            "big-endian replies are not supported".into(),
        ));
    }
    let Some((status, mut i)) = line(b, next, b'\n')? else {
        return Ok(None);
    };
    let status = String::from_utf8_lossy(status).into_owned();
    if status != "OK" {
        return Ok(Some((
            Reply {
                session,
                messages,
                result: Err(status),
            },
            i,
        )));
    }
    let mut objects = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        match wire::decode(&b[i..]) {
            Ok((v, used)) => {
                objects.push(v);
                i += used;
            }
            Err(WireError::Incomplete) => return Ok(None),
            Err(e) => return Err(ProtocolError::Object(e)),
        }
    }
    Ok(Some((
        Reply {
            session,
            messages,
            result: Ok(objects),
        },
        i,
    )))
}
