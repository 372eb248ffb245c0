//! madsim TCP and UDP (virtual network: latency, loss, partitions, clogging).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub(crate) struct RawListener {
    inner: madsim::net::TcpListener,
}

/// Linux's default ephemeral port range.
const EPHEMERAL_PORTS: std::ops::Range<u16> = 32768..61000;

/// Binds like Linux does for port 0: a random free port from the ephemeral range. madsim
/// itself hands out the lowest free port, which an outgoing connection (also bound to the
/// lowest free port) can then collide with — a connect to a just-closed listener would
/// "succeed" by connecting the client to itself.
async fn bind_like_linux<T, F, Fut>(addr: SocketAddr, bind: F) -> io::Result<T>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = io::Result<T>>,
{
    if addr.port() != 0 {
        return bind(addr).await;
    }
    let mut last = None;
    for _ in 0..64 {
        let span = (EPHEMERAL_PORTS.end - EPHEMERAL_PORTS.start) as u64;
        let port = EPHEMERAL_PORTS.start + (madsim::rand::random::<u64>() % span) as u16;
        match bind(SocketAddr::new(addr.ip(), port)).await {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

impl RawListener {
    pub(crate) async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Ok(RawListener {
            inner: bind_like_linux(addr, madsim::net::TcpListener::bind).await?,
        })
    }

    pub(crate) async fn accept(&self) -> io::Result<(RawStream, SocketAddr)> {
        let (s, peer) = self.inner.accept().await?;
        Ok((RawStream { inner: s }, peer))
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

pub(crate) struct RawStream {
    inner: madsim::net::TcpStream,
}

impl RawStream {
    pub(crate) async fn connect(addr: SocketAddr) -> io::Result<Self> {
        Ok(RawStream {
            inner: madsim::net::TcpStream::connect(addr).await?,
        })
    }

    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut rb = ReadBuf::new(buf);
        match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    pub(crate) async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_write(cx, buf)).await
    }

    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| Pin::new(&mut self.inner).poll_flush(cx)).await
    }

    pub(crate) async fn shutdown_write(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| Pin::new(&mut self.inner).poll_shutdown(cx)).await
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    pub(crate) fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on)
    }
}

pub(crate) struct RawUdp {
    inner: madsim::net::UdpSocket,
}

impl RawUdp {
    pub(crate) async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Ok(RawUdp {
            inner: bind_like_linux(addr, madsim::net::UdpSocket::bind).await?,
        })
    }

    pub(crate) async fn send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<()> {
        self.inner.send_to(target, buf).await
    }

    pub(crate) async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.recv_from(buf).await
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}
