//! WebSocket (RFC 6455) on a node's own port, carrying DolphinDB API frames: what DolphinDB's
//! web client and the official JavaScript API (`npm install dolphindb`) speak. The HTTP
//! `Upgrade` is answered here; after it, each WebSocket data message carries request bytes
//! exactly as a raw API connection would, and each reply goes out as its own binary messages —
//! one per print block (`MSG\n…\0`), then one for the status line and objects, which is how
//! the JavaScript API tells them apart (D105).
//!
//! Invariants: a client frame that is not masked, a control frame over 125 bytes or split, an
//! unknown opcode, a reserved bit, or a message over [`MESSAGE_BYTES_MAX`] closes this
//! connection only (with close code 1002 or 1009); a ping is answered with a pong carrying the
//! same bytes; a close is answered with a close before the connection ends. Server frames are
//! never masked.

use rt::net::TcpStream;

use crate::api::{Reply, Transport};

/// The largest message a client may send: an API request's header, text and objects.
pub const MESSAGE_BYTES_MAX: usize =
    crate::api::HEADER_BYTES_MAX + crate::api::TEXT_BYTES_MAX + crate::api::OBJECT_BYTES_MAX;

/// Control frames carry at most this many payload bytes (RFC 6455 §5.5).
const CONTROL_BYTES_MAX: usize = 125;

/// The GUID every server appends to the client's key (RFC 6455 §1.3).
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

const CLOSE_PROTOCOL_ERROR: u16 = 1002;
const CLOSE_TOO_BIG: u16 = 1009;

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut input = key.trim().as_bytes().to_vec();
    input.extend_from_slice(ACCEPT_GUID.as_bytes());
    base64(&sha1(&input))
}

/// The `101 Switching Protocols` answer to an upgrade request with this key.
pub fn handshake_response(key: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    )
}

/// One frame header as read off the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameHead {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    len: u64,
    /// Bytes the header itself took.
    head_len: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum Parse {
    /// More bytes are needed to read the header.
    Incomplete,
    Head(FrameHead),
    /// A frame this server refuses: the close code and why.
    Refuse(u16, &'static str),
}

/// Parses a frame header from the start of `b`.
fn parse_head(b: &[u8]) -> Parse {
    if b.len() < 2 {
        return Parse::Incomplete;
    }
    let (fin, rsv, opcode) = (b[0] & 0x80 != 0, b[0] & 0x70, b[0] & 0x0F);
    let masked = b[1] & 0x80 != 0;
    if rsv != 0 {
        // No extension was agreed (permessage-deflate is never accepted).
        return Parse::Refuse(CLOSE_PROTOCOL_ERROR, "reserved bits set");
    }
    if !matches!(
        opcode,
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
    ) {
        return Parse::Refuse(CLOSE_PROTOCOL_ERROR, "unknown opcode");
    }
    if !masked {
        return Parse::Refuse(CLOSE_PROTOCOL_ERROR, "client frames must be masked");
    }
    let (len, mut at) = match b[1] & 0x7F {
        126 if b.len() < 4 => return Parse::Incomplete,
        126 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
        127 if b.len() < 10 => return Parse::Incomplete,
        127 => (
            u64::from_be_bytes(b[2..10].try_into().expect("eight bytes")),
            10,
        ),
        n => (u64::from(n), 2),
    };
    let control = opcode >= OP_CLOSE;
    if control && (!fin || len > CONTROL_BYTES_MAX as u64) {
        return Parse::Refuse(CLOSE_PROTOCOL_ERROR, "bad control frame");
    }
    if len > MESSAGE_BYTES_MAX as u64 {
        return Parse::Refuse(CLOSE_TOO_BIG, "frame over the message limit");
    }
    if b.len() < at + 4 {
        return Parse::Incomplete;
    }
    let mask = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    at += 4;
    Parse::Head(FrameHead {
        fin,
        opcode,
        mask,
        len,
        head_len: at,
    })
}

/// A server frame: never masked.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// API requests over WebSocket messages on an upgraded connection.
pub struct Socket<'a> {
    stream: &'a mut TcpStream,
    /// Bytes read off the stream and not yet parsed into frames.
    pending: Vec<u8>,
    closed: bool,
}

impl<'a> Socket<'a> {
    /// `pending` holds what the client sent after its upgrade request's head.
    pub fn new(stream: &'a mut TcpStream, pending: Vec<u8>) -> Self {
        Socket {
            stream,
            pending,
            closed: false,
        }
    }

    async fn read_more(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.pending.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    async fn close(&mut self, code: u16, why: &str) -> std::io::Result<()> {
        self.closed = true;
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(&why.as_bytes()[..why.len().min(CONTROL_BYTES_MAX - 2)]);
        self.stream.write_all(&frame(OP_CLOSE, &payload)).await
    }

    /// The next whole data message, answering control frames on the way; `None` once the
    /// connection is closed (by the client, or by this side after a refused frame).
    async fn message(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut message: Vec<u8> = Vec::new();
        let mut in_message = false;
        while !self.closed {
            let head = match parse_head(&self.pending) {
                Parse::Incomplete => {
                    if !self.read_more().await? {
                        return Ok(None);
                    }
                    continue;
                }
                Parse::Refuse(code, why) => {
                    self.close(code, why).await?;
                    return Ok(None);
                }
                Parse::Head(h) => h,
            };
            let total = head.head_len + head.len as usize;
            while self.pending.len() < total {
                if !self.read_more().await? {
                    return Ok(None);
                }
            }
            let mut payload: Vec<u8> = self.pending.drain(..total).skip(head.head_len).collect();
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= head.mask[i % 4];
            }
            match head.opcode {
                OP_PING => self.stream.write_all(&frame(OP_PONG, &payload)).await?,
                OP_PONG => {}
                OP_CLOSE => {
                    // Echo the client's status code, as RFC 6455 §5.5.1 asks.
                    self.closed = true;
                    let echo = &payload[..payload.len().min(2)];
                    self.stream.write_all(&frame(OP_CLOSE, echo)).await?;
                    return Ok(None);
                }
                op => {
                    let starts = op != OP_CONTINUATION;
                    if starts == in_message {
                        self.close(CLOSE_PROTOCOL_ERROR, "bad continuation").await?;
                        return Ok(None);
                    }
                    if message.len() + payload.len() > MESSAGE_BYTES_MAX {
                        self.close(CLOSE_TOO_BIG, "message over the limit").await?;
                        return Ok(None);
                    }
                    in_message = true;
                    message.extend_from_slice(&payload);
                    if head.fin {
                        return Ok(Some(message));
                    }
                }
            }
        }
        Ok(None)
    }
}

impl Transport for Socket<'_> {
    async fn more(&mut self, buf: &mut Vec<u8>) -> std::io::Result<bool> {
        // An empty message adds nothing: wait for one that does.
        loop {
            match self.message().await? {
                None => return Ok(false),
                Some(m) if m.is_empty() => continue,
                Some(m) => {
                    buf.extend_from_slice(&m);
                    return Ok(true);
                }
            }
        }
    }

    async fn send(&mut self, reply: Reply) -> std::io::Result<()> {
        let mut out = Vec::new();
        for m in &reply.messages {
            let mut block = Vec::new();
            client::protocol::encode_message(m, &mut block);
            out.extend_from_slice(&frame(OP_BINARY, &block));
        }
        out.extend_from_slice(&frame(OP_BINARY, &reply.body));
        self.stream.write_all(&out).await
    }
}

/// SHA-1 (FIPS 180-4): only for the handshake's accept key, where RFC 6455 prescribes it.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes(word.try_into().expect("four bytes"));
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 0x3F) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_the_one_in_rfc_6455() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn sha1_and_base64_match_their_standards_vectors() {
        let hex = |b: [u8; 20]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(hex(sha1(long)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want, "{input:?}");
        }
    }

    fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xFA, 0x21, 0x3D];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn headers_of_every_length_form_parse_and_partial_ones_wait() {
        for len in [0usize, 125, 126, 65535, 65536] {
            let f = masked(true, OP_BINARY, &vec![7u8; len]);
            let Parse::Head(h) = parse_head(&f) else {
                panic!("{len}: {:?}", parse_head(&f))
            };
            assert_eq!((h.len as usize, h.opcode, h.fin), (len, OP_BINARY, true));
            assert_eq!(h.head_len + len, f.len(), "{len}");
            for cut in 0..h.head_len {
                assert_eq!(
                    parse_head(&f[..cut]),
                    Parse::Incomplete,
                    "{len} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn frames_a_server_must_refuse_are_refused() {
        let unmasked = frame(OP_BINARY, b"API2");
        assert!(matches!(parse_head(&unmasked), Parse::Refuse(1002, _)));
        let mut rsv = masked(true, OP_BINARY, b"x");
        rsv[0] |= 0x40;
        assert!(matches!(parse_head(&rsv), Parse::Refuse(1002, _)));
        assert!(matches!(
            parse_head(&masked(true, 0x3, b"x")),
            Parse::Refuse(1002, _)
        ));
        assert!(matches!(
            parse_head(&masked(false, OP_PING, b"x")),
            Parse::Refuse(1002, _)
        ));
        assert!(matches!(
            parse_head(&masked(true, OP_PING, &[0; 126])),
            Parse::Refuse(1002, _)
        ));
        let mut huge = vec![0x80 | OP_BINARY, 0x80 | 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        huge.extend_from_slice(&[0; 4]);
        assert!(matches!(parse_head(&huge), Parse::Refuse(1009, _)));
    }

    #[test]
    fn server_frames_use_the_shortest_length_and_no_mask() {
        assert_eq!(frame(OP_BINARY, b"ab"), vec![0x82, 2, b'a', b'b']);
        let f = frame(OP_BINARY, &[0; 300]);
        assert_eq!(&f[..4], &[0x82, 126, 1, 44]);
        let f = frame(OP_BINARY, &[0; 70000]);
        assert_eq!(f[1], 127);
        assert_eq!(f.len(), 70000 + 10);
    }
}
