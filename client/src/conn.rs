//! One connection to one server: blocking `std::net` I/O (a client library and a command-line
//! shell need no runtime; ARCHITECTURE D37), the `connect` handshake with an inline login,
//! and request/reply exchange over [`crate::protocol`].

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use value::Value;

use crate::protocol::{self, Reply};
use crate::sites::Site;
use crate::ClientError;

/// Largest reply a connection buffers before giving up on it.
pub const REPLY_BYTES_MAX: usize = 1 << 30;

/// An open session on one server.
pub struct Connection {
    stream: TcpStream,
    site: Site,
    session: u64,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("site", &self.site)
            .field("session", &self.session)
            .finish()
    }
}

impl Connection {
    /// Connects to `site`, opens a session and logs in when `login` is given.
    pub fn open(
        site: &Site,
        login: Option<(&str, &str)>,
        timeout_ms: u64,
    ) -> Result<Connection, ClientError> {
        let timeout = Duration::from_millis(timeout_ms.max(1));
        let addr = (site.host.as_str(), site.port)
            .to_socket_addrs()
            .map_err(|e| ClientError::Io(format!("{site}: {e}")))?
            .next()
            .ok_or_else(|| ClientError::Io(format!("{site}: no address")))?;
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| ClientError::Io(format!("{site}: {e}")))?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|_| stream.set_write_timeout(Some(timeout)))
            .and_then(|_| stream.set_nodelay(true))
            .map_err(|e| ClientError::Io(format!("{site}: {e}")))?;
        let mut c = Connection {
            stream,
            site: site.clone(),
            session: 0,
            buf: Vec::new(),
        };
        let reply = c.exchange(&protocol::connect_text(login), &[])?;
        c.session = reply.session;
        match reply.result {
            Ok(_) => Ok(c),
            Err(e) if login.is_some() => Err(ClientError::Auth(e)),
            Err(e) => Err(ClientError::Server(e)),
        }
    }

    pub fn site(&self) -> &Site {
        &self.site
    }

    pub fn session(&self) -> u64 {
        self.session
    }

    /// Sends one request and reads its reply. An I/O or framing error leaves the connection
    /// unusable (the caller drops it); a server error is a normal reply.
    pub fn exchange(&mut self, text: &str, objects: &[Value]) -> Result<Reply, ClientError> {
        self.exchange_tagged(text, objects, None)
    }

    /// [`Connection::exchange`] with a high-availability tag (`protocol::encode_tagged_request`).
    pub fn exchange_tagged(
        &mut self,
        text: &str,
        objects: &[Value],
        tag: Option<(&str, i64)>,
    ) -> Result<Reply, ClientError> {
        let req = protocol::encode_tagged_request(self.session, text, objects, tag)
            .map_err(|e| ClientError::Encode(e.to_string()))?;
        let io = |e: std::io::Error| ClientError::Io(format!("{}: {e}", self.site));
        self.stream.write_all(&req).map_err(io)?;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match protocol::parse_reply(&self.buf) {
                Ok(Some((reply, used))) => {
                    self.buf.drain(..used);
                    self.session = reply.session;
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => return Err(ClientError::Protocol(e.to_string())),
            }
            if self.buf.len() > REPLY_BYTES_MAX {
                return Err(ClientError::Protocol("reply over the size limit".into()));
            }
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| ClientError::Io(format!("{}: {e}", self.site)))?;
            if n == 0 {
                return Err(ClientError::Io(format!(
                    "{}: the server closed the connection",
                    self.site
                )));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
