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
        let std_listener = bind_reuse_addr(addr)?;
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

/// A listening socket with SO_REUSEADDR (so a restarted node binds its port while the
/// previous run's connections sit in TIME_WAIT) and without SO_REUSEPORT (so a second live
/// process on the same port still fails with EADDRINUSE, as the tutorial's FAQ expects).
fn bind_reuse_addr(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use std::os::fd::FromRawFd;
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2); the fd is owned by `listener` below or closed on error.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket we own; the listener closes it when dropped.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with a valid pointer to an int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let rc = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: a valid sockaddr_in of the size passed.
            unsafe {
                libc::bind(
                    fd,
                    &sin as *const libc::sockaddr_in as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: a valid sockaddr_in6 of the size passed.
            unsafe {
                libc::bind(
                    fd,
                    &sin6 as *const libc::sockaddr_in6 as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: listen(2) on the bound socket.
    if unsafe { libc::listen(fd, 1024) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(listener)
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

    pub(crate) fn poll_read(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<usize>> {
        futures_lite::AsyncRead::poll_read(std::pin::Pin::new(&mut self.inner), cx, buf)
    }

    pub(crate) fn poll_write(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        futures_lite::AsyncWrite::poll_write(std::pin::Pin::new(&mut self.inner), cx, buf)
    }

    pub(crate) fn poll_flush(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        futures_lite::AsyncWrite::poll_flush(std::pin::Pin::new(&mut self.inner), cx)
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
