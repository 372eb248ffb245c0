//! Networking: TCP listener/stream and UDP socket, each operation bounded by a deadline.
//!
//! Deadlines are applied here, identically for both backends: a read or write that does not
//! complete within the configured timeout fails with `io::ErrorKind::TimedOut` and leaves the
//! stream unusable (the caller must drop it — partial I/O may have happened).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::imp;
use crate::time::maybe_timeout;

/// A listening TCP socket.
pub struct TcpListener {
    inner: imp::net::RawListener,
}

impl TcpListener {
    /// Binds to `addr`. Port 0 picks a free port (see [`TcpListener::local_addr`]).
    pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: imp::net::RawListener::bind(addr).await?,
        })
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (raw, peer) = self.inner.accept().await?;
        Ok((TcpStream::from_raw(raw), peer))
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A connected TCP stream with optional per-operation read and write deadlines.
pub struct TcpStream {
    inner: imp::net::RawStream,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl TcpStream {
    fn from_raw(inner: imp::net::RawStream) -> Self {
        TcpStream {
            inner,
            read_timeout: None,
            write_timeout: None,
        }
    }

    /// Connects to `addr`, failing with `TimedOut` after `connect_timeout`.
    pub async fn connect(addr: SocketAddr, connect_timeout: Duration) -> io::Result<TcpStream> {
        let raw =
            crate::time::timeout(connect_timeout, imp::net::RawStream::connect(addr)).await??;
        Ok(TcpStream::from_raw(raw))
    }

    /// Deadline for each subsequent read (`None`: wait forever).
    pub fn set_read_timeout(&mut self, limit: Option<Duration>) {
        self.read_timeout = limit;
    }

    /// Deadline for each subsequent write (`None`: wait forever).
    pub fn set_write_timeout(&mut self, limit: Option<Duration>) {
        self.write_timeout = limit;
    }

    /// Reads some bytes; `Ok(0)` means the peer closed its side.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        maybe_timeout(self.read_timeout, self.inner.read(buf)).await?
    }

    /// Reads exactly `buf.len()` bytes, or fails with `UnexpectedEof`.
    pub async fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        Read::read_exact(self, buf).await
    }

    /// Writes all of `buf` (each underlying write bounded by the write deadline).
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut written = 0;
        while written < buf.len() {
            let n = maybe_timeout(self.write_timeout, self.inner.write(&buf[written..])).await??;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "peer stopped reading",
                ));
            }
            written += n;
        }
        maybe_timeout(self.write_timeout, self.inner.flush()).await?
    }

    /// Half-closes the write side, so the peer reads end-of-stream.
    pub async fn shutdown_write(&mut self) -> io::Result<()> {
        self.inner.shutdown_write().await
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Disables Nagle's algorithm (small RPC frames go out at once).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on)
    }

    /// Splits the stream so one task can read while another writes (a pipelined exchange).
    /// Each half keeps the deadline of its direction.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        let shared = Rc::new(RefCell::new(self.inner));
        (
            ReadHalf {
                inner: shared.clone(),
                read_timeout: self.read_timeout,
            },
            WriteHalf {
                inner: shared,
                write_timeout: self.write_timeout,
            },
        )
    }
}

/// Something bytes are read from: a whole [`TcpStream`] or its [`ReadHalf`].
pub trait Read {
    /// Reads some bytes; `Ok(0)` means the peer closed its side.
    fn read(&mut self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>>;

    /// Reads exactly `buf.len()` bytes, or fails with `UnexpectedEof`.
    fn read_exact(&mut self, buf: &mut [u8]) -> impl Future<Output = io::Result<()>> {
        async move {
            let mut filled = 0;
            while filled < buf.len() {
                let n = self.read(&mut buf[filled..]).await?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("peer closed after {filled} of {} bytes", buf.len()),
                    ));
                }
                filled += n;
            }
            Ok(())
        }
    }
}

/// Something bytes are written to: a whole [`TcpStream`] or its [`WriteHalf`].
pub trait Write {
    /// Writes all of `buf` and hands it to the network.
    fn write_all(&mut self, buf: &[u8]) -> impl Future<Output = io::Result<()>>;
}

impl Read for TcpStream {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        TcpStream::read(self, buf).await
    }
}

impl Write for TcpStream {
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        TcpStream::write_all(self, buf).await
    }
}

/// The reading side of a split [`TcpStream`].
///
/// Both halves share the socket through a `RefCell` that is borrowed only inside one poll, so
/// a read waiting for bytes never blocks the writer (the backends keep separate wakers for
/// the two directions).
pub struct ReadHalf {
    inner: Rc<RefCell<imp::net::RawStream>>,
    read_timeout: Option<Duration>,
}

/// The writing side of a split [`TcpStream`]; dropping both halves closes the connection.
pub struct WriteHalf {
    inner: Rc<RefCell<imp::net::RawStream>>,
    write_timeout: Option<Duration>,
}

impl ReadHalf {
    /// Polls for some bytes (`Ok(0)`: the peer closed its side). No deadline applies: this is
    /// for a connection's own state machine, which decides itself when to give up.
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.inner.borrow_mut().poll_read(cx, buf)
    }
}

impl WriteHalf {
    /// Polls to write some of `buf`; returns how many bytes were taken. No deadline applies
    /// (see [`ReadHalf::poll_read`]).
    pub fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.inner.borrow_mut().poll_write(cx, buf)
    }

    /// Polls to hand everything written so far to the network.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.borrow_mut().poll_flush(cx)
    }
}

impl Read for ReadHalf {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let inner = &self.inner;
        let read = std::future::poll_fn(|cx| inner.borrow_mut().poll_read(cx, buf));
        maybe_timeout(self.read_timeout, read).await?
    }
}

impl Write for WriteHalf {
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let inner = &self.inner;
        let mut written = 0;
        while written < buf.len() {
            let rest = &buf[written..];
            let write = std::future::poll_fn(|cx| inner.borrow_mut().poll_write(cx, rest));
            let n = maybe_timeout(self.write_timeout, write).await??;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "peer stopped reading",
                ));
            }
            written += n;
        }
        let flush = std::future::poll_fn(|cx| inner.borrow_mut().poll_flush(cx));
        maybe_timeout(self.write_timeout, flush).await?
    }
}

/// A UDP socket (heartbeats when `lanCluster=1`).
pub struct UdpSocket {
    inner: imp::net::RawUdp,
    read_timeout: Option<Duration>,
}

/// Largest datagram Porpoise sends or accepts.
pub const UDP_DATAGRAM_BYTES_MAX: usize = 8 * 1024;

impl UdpSocket {
    /// Binds to `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            inner: imp::net::RawUdp::bind(addr).await?,
            read_timeout: None,
        })
    }

    /// Deadline for each subsequent receive.
    pub fn set_read_timeout(&mut self, limit: Option<Duration>) {
        self.read_timeout = limit;
    }

    /// Sends one datagram of at most [`UDP_DATAGRAM_BYTES_MAX`] bytes.
    pub async fn send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<()> {
        if buf.len() > UDP_DATAGRAM_BYTES_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "datagram of {} bytes exceeds {UDP_DATAGRAM_BYTES_MAX}",
                    buf.len()
                ),
            ));
        }
        self.inner.send_to(buf, target).await
    }

    /// Receives one datagram into `buf`.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        maybe_timeout(self.read_timeout, self.inner.recv_from(buf)).await?
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}
