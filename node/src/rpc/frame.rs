//! RPC frames: a fixed zerocopy header and a checksummed payload.

use rt::net::{Read, Write};
use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::RpcError;

pub const FRAME_MAGIC: [u8; 4] = *b"PRPC";
/// 2: the checksum covers the header's other fields too (1 covered only the payload, so a
/// corrupted request id or method went unnoticed).
pub const FRAME_VERSION: u8 = 3;
pub const FRAME_HEADER_BYTES: usize = 24;
/// Largest payload accepted; a header claiming more closes the connection before allocating.
pub const FRAME_PAYLOAD_BYTES_MAX: usize = 64 << 20;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Request = 1,
    Response = 2,
    /// A response carrying an error message (UTF-8).
    Error = 3,
}

/// The wire header.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct FrameHeader {
    pub magic: [u8; 4],
    pub version: u8,
    pub kind: u8,
    pub method: U16,
    pub request_id: U64,
    pub len: U32,
    pub crc: U32,
}

const _: () = assert!(std::mem::size_of::<FrameHeader>() == FRAME_HEADER_BYTES);

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub method: u16,
    pub request_id: u64,
    pub payload: Vec<u8>,
}

fn protocol(msg: impl Into<String>) -> RpcError {
    RpcError::Protocol(msg.into())
}

/// Checks a header; returns the kind and payload length.
pub fn check_header(h: &FrameHeader) -> Result<(Kind, usize), RpcError> {
    if h.magic != FRAME_MAGIC {
        return Err(protocol(format!("bad magic {:02x?}", h.magic)));
    }
    if h.version != FRAME_VERSION {
        return Err(protocol(format!(
            "version {} (this node speaks {FRAME_VERSION})",
            h.version
        )));
    }
    let kind = match h.kind {
        1 => Kind::Request,
        2 => Kind::Response,
        3 => Kind::Error,
        k => return Err(protocol(format!("unknown kind {k}"))),
    };
    let len = h.len.get() as usize;
    if len > FRAME_PAYLOAD_BYTES_MAX {
        return Err(protocol(format!(
            "payload of {len} bytes exceeds {FRAME_PAYLOAD_BYTES_MAX}"
        )));
    }
    Ok((kind, len))
}

/// A frame's header, its checksum covering the payload.
fn header_of(frame: &Frame) -> FrameHeader {
    assert!(
        frame.payload.len() <= FRAME_PAYLOAD_BYTES_MAX,
        "payload over FRAME_PAYLOAD_BYTES_MAX"
    );
    let mut h = FrameHeader {
        magic: FRAME_MAGIC,
        version: FRAME_VERSION,
        kind: frame.kind as u8,
        method: U16::new(frame.method),
        request_id: U64::new(frame.request_id),
        len: U32::new(frame.payload.len() as u32),
        crc: U32::new(0),
    };
    h.crc = U32::new(frame_crc(&h, &frame.payload));
    debug_assert!(check_header(&h).is_ok());
    h
}

/// Encodes a frame (header + payload) into one buffer.
pub fn encode(frame: &Frame) -> Vec<u8> {
    let h = encode_header(frame);
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + frame.payload.len());
    out.extend_from_slice(&h);
    out.extend_from_slice(&frame.payload);
    out
}

/// The header of `frame` (its checksum covers the payload).
pub fn encode_header(frame: &Frame) -> [u8; FRAME_HEADER_BYTES] {
    header_of(frame)
        .as_bytes()
        .try_into()
        .expect("a header is FRAME_HEADER_BYTES long")
}

/// Writes one frame.
pub async fn write_frame(s: &mut impl Write, frame: &Frame) -> std::io::Result<()> {
    s.write_all(&encode(frame)).await
}

fn io_error(e: std::io::Error) -> RpcError {
    RpcError::Io {
        peer: "peer".into(),
        reason: e.to_string(),
    }
}

/// Reads and checks the header at the start of `bytes` (at least [`FRAME_HEADER_BYTES`]);
/// returns it with the frame's kind and payload length.
fn parse_header(bytes: &[u8]) -> Result<(FrameHeader, Kind, usize), RpcError> {
    let h = FrameHeader::read_from_bytes(&bytes[..FRAME_HEADER_BYTES])
        .map_err(|_| protocol("short header"))?;
    let (kind, len) = check_header(&h)?;
    Ok((h, kind, len))
}

/// Bytes of the header the checksum covers: all but the checksum itself.
const HEADER_CRC_COVERS: usize = FRAME_HEADER_BYTES - 4;

/// crc32 of the header's fields before the checksum, then the payload.
fn frame_crc(h: &FrameHeader, payload: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&h.as_bytes()[..HEADER_CRC_COVERS]);
    crc.update(payload);
    crc.finalize()
}

/// The frame `h` announced, once the header and payload match the header's checksum.
fn verified(h: &FrameHeader, kind: Kind, payload: Vec<u8>) -> Result<Frame, RpcError> {
    if frame_crc(h, &payload) != h.crc.get() {
        return Err(protocol("frame checksum mismatch"));
    }
    Ok(Frame {
        kind,
        method: h.method.get(),
        request_id: h.request_id.get(),
        payload,
    })
}

/// Reads one frame. `Ok(None)` on a clean end of stream before a header.
pub async fn read_frame(s: &mut impl Read) -> Result<Option<Frame>, RpcError> {
    let mut head = [0u8; FRAME_HEADER_BYTES];
    let n = s.read(&mut head).await.map_err(io_error)?;
    if n == 0 {
        return Ok(None);
    }
    if n < FRAME_HEADER_BYTES {
        s.read_exact(&mut head[n..]).await.map_err(io_error)?;
    }
    let (h, kind, len) = parse_header(&head)?;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.map_err(io_error)?;
    verified(&h, kind, payload).map(Some)
}

/// Bytes read from one connection and not yet taken as frames: the input side of every
/// connection that reads more than one frame — the poll-driven state machines
/// ([`super::server`], [`super::client`]) through [`FrameReader::poll_fill`], and the
/// in-order append stream and a connection's first request through
/// [`FrameReader::read_frame`]. Reads go through one chunk allocated (and zeroed) once per
/// connection, not once per frame, and bytes read past a frame stay for the next one. A large
/// payload is read straight into a vector of its own, sized once from the header, which
/// becomes the frame's payload: no growing buffer, no copy out of it.
pub struct FrameReader {
    buf: Vec<u8>,
    /// Where the next frame starts in `buf`.
    start: usize,
    chunk: Box<[u8]>,
    /// A large frame whose header has arrived, and the part of its payload read so far.
    big: Option<(FrameHeader, Kind, usize, Vec<u8>)>,
}

/// Bytes one read may take from the socket.
const READ_CHUNK_BYTES: usize = 64 << 10;
/// Bytes one read may take into a large payload.
const BIG_READ_BYTES: usize = 1 << 20;

impl FrameReader {
    /// A reader whose first bytes (`prefix`) were already read from the connection.
    pub fn new(prefix: Vec<u8>) -> FrameReader {
        FrameReader {
            buf: prefix,
            start: 0,
            chunk: vec![0u8; READ_CHUNK_BYTES].into_boxed_slice(),
            big: None,
        }
    }

    /// True when no byte of a next frame has arrived (a clean place for the peer to close).
    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len() && self.big.is_none()
    }

    /// Takes the next whole frame, if one has arrived. A bad header is an error as soon as
    /// it arrives, before its payload.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, RpcError> {
        if let Some((_, _, len, payload)) = &self.big {
            if payload.len() < *len {
                return Ok(None);
            }
            let (h, kind, _, payload) = self.big.take().expect("checked above");
            return verified(&h, kind, payload).map(Some);
        }
        let rest = &self.buf[self.start..];
        if rest.len() < FRAME_HEADER_BYTES {
            return Ok(None);
        }
        let (h, kind, len) = parse_header(rest)?;
        if rest.len() < FRAME_HEADER_BYTES + len {
            if len > READ_CHUNK_BYTES {
                // The rest of this payload is read into its own vector.
                let mut payload = Vec::with_capacity(len);
                payload.extend_from_slice(&rest[FRAME_HEADER_BYTES..]);
                self.buf.clear();
                self.start = 0;
                self.big = Some((h, kind, len, payload));
            }
            return Ok(None);
        }
        let payload = rest[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len].to_vec();
        self.start += FRAME_HEADER_BYTES + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        verified(&h, kind, payload).map(Some)
    }

    /// The part of a large payload still to come, zeroed and ready for a read of at most
    /// [`BIG_READ_BYTES`] (never past the payload's end, so no byte of the next frame lands in
    /// it); [`FrameReader::keep_big`] then keeps what the read delivered.
    fn big_window(&mut self) -> Option<&mut [u8]> {
        let (_, _, len, payload) = self.big.as_mut()?;
        let have = payload.len();
        payload.resize(have + (*len - have).min(BIG_READ_BYTES), 0);
        Some(&mut payload[have..])
    }

    /// After a read into [`FrameReader::big_window`] of `window` bytes delivered `n`.
    fn keep_big(&mut self, window: usize, n: usize) {
        if let Some((_, _, _, payload)) = self.big.as_mut() {
            payload.truncate(payload.len() - window + n);
        }
    }

    /// Polls `rd` for more bytes: `Ok(0)` when the peer closed its side.
    pub fn poll_fill(
        &mut self,
        cx: &mut std::task::Context<'_>,
        rd: &mut rt::net::ReadHalf,
    ) -> std::task::Poll<std::io::Result<usize>> {
        if let Some(window) = self.big_window() {
            let len = window.len();
            let r = rd.poll_read(cx, window);
            let n = match &r {
                std::task::Poll::Ready(Ok(n)) => *n,
                _ => 0,
            };
            self.keep_big(len, n);
            return r;
        }
        let n = std::task::ready!(rd.poll_read(cx, &mut self.chunk))?;
        self.take_chunk(n);
        std::task::Poll::Ready(Ok(n))
    }

    /// Reads until the next whole frame has arrived and takes it. `Ok(None)` on a clean end
    /// of stream (the peer closed between frames); a close inside a frame is an error.
    pub async fn read_frame(&mut self, s: &mut impl Read) -> Result<Option<Frame>, RpcError> {
        loop {
            if let Some(frame) = self.next_frame()? {
                return Ok(Some(frame));
            }
            let n = match self.big_window() {
                Some(window) => {
                    let len = window.len();
                    let n = s.read(window).await;
                    self.keep_big(len, *n.as_ref().unwrap_or(&0));
                    n.map_err(io_error)?
                }
                None => {
                    let n = s.read(&mut self.chunk).await.map_err(io_error)?;
                    self.take_chunk(n);
                    n
                }
            };
            if n == 0 {
                return if self.is_empty() {
                    Ok(None)
                } else {
                    Err(protocol("connection closed inside a frame"))
                };
            }
        }
    }

    /// Appends the first `n` bytes of the chunk (just read) to the unread bytes.
    fn take_chunk(&mut self, n: usize) {
        if self.start > 0 {
            // Consumed frames leave the buffer before it grows.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(&self.chunk[..n]);
    }
}

/// Bytes waiting to be written to one connection: the output side of a connection's
/// poll-driven state machine, [`FrameReader`]'s counterpart. A large payload is queued as the
/// vector it came in, never copied (a prepare call carries tens of megabytes); small frames
/// are gathered into one buffer, so a burst of them is one write.
#[derive(Default)]
pub struct FrameWriter {
    bufs: std::collections::VecDeque<Vec<u8>>,
    /// Whether the last buffer is ours to extend (not a caller's payload).
    last_open: bool,
    /// How much of the first buffer the socket has taken.
    written: usize,
    /// Bytes queued and not yet taken by the socket.
    pending: usize,
    /// Everything was written but not yet flushed.
    unflushed: bool,
}

/// Payloads up to this size are copied into the shared buffer; larger ones are queued whole.
const GATHER_BYTES_MAX: usize = 64 << 10;

impl FrameWriter {
    /// Queues bytes behind those already waiting.
    pub fn push(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match self.bufs.back_mut() {
            Some(last) if self.last_open && last.len() < GATHER_BYTES_MAX => {
                last.extend_from_slice(bytes)
            }
            _ => {
                self.bufs.push_back(bytes.to_vec());
                self.last_open = true;
            }
        }
        self.pending += bytes.len();
    }

    /// Queues one frame: its header, then its payload (moved, not copied, when large).
    pub fn push_frame(&mut self, frame: Frame) {
        let header = encode_header(&frame);
        self.push(&header);
        if frame.payload.len() <= GATHER_BYTES_MAX {
            self.push(&frame.payload);
        } else {
            self.pending += frame.payload.len();
            self.bufs.push_back(frame.payload);
            self.last_open = false;
        }
    }

    /// Bytes queued and not yet taken by the socket.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// True when everything queued has been written and flushed.
    pub fn is_idle(&self) -> bool {
        self.pending() == 0 && !self.unflushed
    }

    /// Hands the socket what it takes now, and flushes once all is written. `Ok(true)` when
    /// some bytes went out; the waker is registered for whatever is still pending.
    pub fn poll_write_out(
        &mut self,
        cx: &mut std::task::Context<'_>,
        wr: &mut rt::net::WriteHalf,
    ) -> std::io::Result<bool> {
        use std::task::Poll;
        let mut progressed = false;
        while let Some(front) = self.bufs.front() {
            match wr.poll_write(cx, &front[self.written..]) {
                Poll::Ready(Ok(0)) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::WriteZero,
                        "the peer stopped reading",
                    ))
                }
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    self.pending -= n;
                    progressed = true;
                    if self.written == front.len() {
                        self.bufs.pop_front();
                        self.written = 0;
                        if self.bufs.is_empty() {
                            self.last_open = false;
                            self.unflushed = true;
                        }
                    }
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
        }
        if self.unflushed {
            if let Poll::Ready(r) = wr.poll_flush(cx) {
                r?;
                self.unflushed = false;
            }
        }
        Ok(progressed)
    }
}

/// Decodes one frame held whole in `bytes` (a datagram); anything else is an error.
pub fn decode_datagram(bytes: &[u8]) -> Result<Frame, RpcError> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return Err(protocol("short datagram"));
    }
    let (h, kind, len) = parse_header(bytes)?;
    let payload = &bytes[FRAME_HEADER_BYTES..];
    if payload.len() != len {
        return Err(protocol("datagram length does not match its header"));
    }
    verified(&h, kind, payload.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_bad_ones_are_named() {
        let f = Frame {
            kind: Kind::Request,
            method: 7,
            request_id: 42,
            payload: b"hi".to_vec(),
        };
        let bytes = encode(&f);
        let h = FrameHeader::read_from_bytes(&bytes[..FRAME_HEADER_BYTES]).unwrap();
        assert_eq!(check_header(&h).unwrap(), (Kind::Request, 2));
        assert_eq!((h.method.get(), h.request_id.get()), (7, 42));
        let mut bad = h;
        bad.len = U32::new(u32::MAX);
        assert!(check_header(&bad)
            .unwrap_err()
            .to_string()
            .contains("exceeds"));
        let mut bad = h;
        bad.magic = *b"GET ";
        assert!(check_header(&bad).is_err());
        let mut bad = h;
        bad.kind = 9;
        assert!(check_header(&bad).is_err());
    }

    /// A payload larger than a read chunk is read into a vector of its own, no further than
    /// its end, and the frame after it is read as usual.
    #[test]
    fn a_large_payload_is_read_into_its_own_vector_and_the_next_frame_follows() {
        let big = Frame {
            kind: Kind::Request,
            method: 3,
            request_id: 1,
            payload: (0..300_000u32).map(|i| (i % 251) as u8).collect(),
        };
        let small = Frame {
            kind: Kind::Response,
            method: 4,
            request_id: 2,
            payload: b"next".to_vec(),
        };
        let bytes = [encode(&big), encode(&small)].concat();
        let mut input = FrameReader::new(bytes[..1000].to_vec());
        let (mut at, mut got) = (1000, Vec::new());
        while got.len() < 2 {
            if let Some(f) = input.next_frame().unwrap() {
                got.push(f);
                continue;
            }
            // One read, of an odd size.
            let n = (bytes.len() - at).min(70_001);
            match input.big_window() {
                Some(w) => {
                    let len = w.len();
                    let k = n.min(len);
                    w[..k].copy_from_slice(&bytes[at..at + k]);
                    input.keep_big(len, k);
                    at += k;
                }
                None => {
                    let k = n.min(READ_CHUNK_BYTES);
                    input.chunk[..k].copy_from_slice(&bytes[at..at + k]);
                    input.take_chunk(k);
                    at += k;
                }
            }
        }
        assert_eq!(got, vec![big, small]);
        assert_eq!(at, bytes.len());
        assert!(input.is_empty());
    }

    use proptest::prelude::*;

    fn arb_frame() -> impl Strategy<Value = Frame> {
        (
            prop_oneof![Just(Kind::Request), Just(Kind::Response), Just(Kind::Error)],
            any::<u16>(),
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(kind, method, request_id, payload)| Frame {
                kind,
                method,
                request_id,
                payload,
            })
    }

    /// Takes frames from `bytes` until the reader wants more or refuses (the flag), checking
    /// that every frame it accepted re-encodes to exactly the bytes it consumed (so garbage
    /// can never be taken for a different frame than was sent).
    fn read_all(bytes: &[u8]) -> (Vec<Frame>, bool) {
        let mut input = FrameReader::new(bytes.to_vec());
        let (mut frames, mut at) = (Vec::new(), 0);
        loop {
            match input.next_frame() {
                Ok(Some(f)) => {
                    let encoded = encode(&f);
                    assert_eq!(&bytes[at..at + encoded.len()], &encoded[..]);
                    at += encoded.len();
                    frames.push(f);
                }
                Ok(None) => return (frames, false),
                Err(_) => return (frames, true),
            }
        }
    }

    proptest! {
        /// Glued-together frames come back whole and in order; one corrupted byte anywhere
        /// costs at most the frames from the one it hit on, never a panic or a wrong frame,
        /// and the bytes of a datagram are held to the same checks.
        #[test]
        fn a_reader_takes_back_what_was_sent_and_refuses_corruption(
            frames in proptest::collection::vec(arb_frame(), 1..8),
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let bytes: Vec<u8> = frames.iter().flat_map(encode).collect();
            let (got, refused) = read_all(&bytes);
            prop_assert!(!refused);
            prop_assert_eq!(&got, &frames);

            let mut bad = bytes.clone();
            let i = flip.index(bad.len());
            bad[i] ^= 1 << bit;
            let (got, _) = read_all(&bad);
            // The frame the flipped byte lies in: every frame before it ends at or before `i`.
            let hit = frames
                .iter()
                .scan(0, |end, f| { *end += encode(f).len(); Some(*end) })
                .position(|end| end > i)
                .unwrap();
            prop_assert!(got.len() >= hit, "frames wholly before the flipped byte survive");
            prop_assert_eq!(&got[..hit], &frames[..hit]);
            // The frame the flip landed in is never accepted (its crc or header catches it).
            prop_assert!(got.len() <= hit);
            let first = encode(&frames[0]);
            let mut dgram = first.clone();
            let j = i % dgram.len();
            dgram[j] ^= 1 << bit;
            prop_assert!(decode_datagram(&dgram).is_err());
            prop_assert_eq!(decode_datagram(&first).unwrap(), frames[0].clone());
        }
    }
}
