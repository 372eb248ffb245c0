//! glommio TCP and UDP.

use std::io;
use std::net::SocketAddr;

use std::os::fd::{FromRawFd, IntoRawFd};

use futures_lite::{AsyncReadExt, AsyncWriteExt};

pub(crate) struct RawListener {
    inner: glommio::net::TcpListener,
}

fn to_io(e: glommio::GlommioError<()>) -> io::Error {
    e.into()
}

impl RawListener {
    pub(crate) async fn bind(addr: SocketAddr) -> io::Result<Self> {
        // Bind with std rather than glommio: glommio sets SO_REUSEPORT, which would let a
        // second node bind a port another process already serves (the tutorial's FAQ case must
        // fail with EADDRINUSE instead).
        let std_listener = std::net::TcpListener::bind(addr)?;
        // SAFETY: we own the bound, listening fd and hand its ownership to glommio.
        let inner = unsafe { glommio::net::TcpListener::from_raw_fd(std_listener.into_raw_fd()) };
        Ok(RawListener { inner })
    }

    pub(crate) async fn accept(&self) -> io::Result<(RawStream, SocketAddr)> {
        let s = self.inner.accept().await.map_err(to_io)?;
        let peer = s.peer_addr()?;
        Ok((RawStream { inner: s }, peer))
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr().map_err(to_io)
    }
}

pub(crate) struct RawStream {
    inner: glommio::net::TcpStream,
}

impl RawStream {
    pub(crate) async fn connect(addr: SocketAddr) -> io::Result<Self> {
        Ok(RawStream {
            inner: glommio::net::TcpStream::connect(addr)
                .await
                .map_err(to_io)?,
        })
    }

    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).await
    }

    pub(crate) async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).await
    }

    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().await
    }

    pub(crate) async fn shutdown_write(&mut self) -> io::Result<()> {
        self.inner
            .shutdown(std::net::Shutdown::Write)
            .await
            .map_err(to_io)
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr().map_err(to_io)
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr().map_err(to_io)
    }

    pub(crate) fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on).map_err(to_io)
    }
}

pub(crate) struct RawUdp {
    inner: glommio::net::UdpSocket,
}

impl RawUdp {
    pub(crate) async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Ok(RawUdp {
            // As for TCP: no SO_REUSEPORT, so a taken port is an error.
            // SAFETY: we own the bound fd and hand its ownership to glommio.
            inner: unsafe {
                glommio::net::UdpSocket::from_raw_fd(std::net::UdpSocket::bind(addr)?.into_raw_fd())
            },
        })
    }

    pub(crate) async fn send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<()> {
        let n = self.inner.send_to(buf, target).await.map_err(to_io)?;
        if n != buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "datagram truncated on send",
            ));
        }
        Ok(())
    }

    pub(crate) async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.recv_from(buf).await.map_err(to_io)
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr().map_err(to_io)
    }
}
