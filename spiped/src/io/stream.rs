//! One byte-stream socket type for TCP and UNIX sockets, and non-blocking connect.
//!
//! Contract: every [`Stream`] is non-blocking and registered edge-triggered; callers read and
//! write until `WouldBlock`. [`connect`] never blocks: it returns a socket whose connection is
//! in progress, and [`Stream::connect_result`] tells when it finished.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::addr::Target;

/// A connected (or connecting) stream socket.
#[derive(Debug)]
pub enum Stream {
    /// TCP over IPv4/IPv6.
    Tcp(TcpStream),
    /// UNIX-domain stream socket.
    Unix(UnixStream),
}

impl Stream {
    /// Sets TCP_NODELAY and, if asked, SO_KEEPALIVE (spiped sets both on both sockets of a
    /// connection; `-j` turns keep-alives off). No-op on UNIX sockets.
    pub fn set_options(&self, keepalive: bool) -> io::Result<()> {
        if let Stream::Tcp(s) = self {
            s.set_nodelay(true)?;
            if keepalive {
                SockRef::from(s).set_keepalive(true)?;
            }
        }
        Ok(())
    }

    /// Makes close() send a TCP reset instead of a FIN (SO_LINGER 0). No-op on UNIX sockets.
    pub fn reset_on_close(&self) {
        if let Stream::Tcp(s) = self {
            let _ = SockRef::from(s).set_linger(Some(std::time::Duration::ZERO));
        }
    }

    /// `None` while a non-blocking connect is in progress, then its outcome.
    pub fn connect_result(&self) -> Option<io::Result<()>> {
        match self {
            Stream::Tcp(s) => {
                // mio's recipe: a pending error means failure; a peer address means success;
                // NotConnected means "still connecting".
                match s.take_error() {
                    Ok(Some(e)) | Err(e) => return Some(Err(e)),
                    Ok(None) => {}
                }
                match s.peer_addr() {
                    Ok(_) => Some(Ok(())),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => None,
                    Err(e) => Some(Err(e)),
                }
            }
            Stream::Unix(s) => match s.take_error() {
                Ok(Some(e)) | Err(e) => Some(Err(e)),
                Ok(None) => Some(Ok(())),
            },
        }
    }

    /// Writes `buf` as the last bytes before [`Stream::shutdown_write`]: on TCP with MSG_MORE,
    /// so the kernel holds them for the FIN and both leave in one segment (the peer wakes once
    /// for the close record and the end of stream, not twice). The caller must shut down (or
    /// write again) right after; the hint only ever delays bytes until then.
    pub fn write_before_fin(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => SockRef::from(&*s).send_with_flags(buf, nix::libc::MSG_MORE | nix::libc::MSG_NOSIGNAL),
            Stream::Unix(s) => s.write(buf),
        }
    }

    /// Half-closes the sending direction. ENOTCONN (the peer already went away) is not an error,
    /// as in spiped.
    pub fn shutdown_write(&self) -> io::Result<()> {
        let r = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
        };
        match r {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            r => r,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}

/// Why an outgoing connection could not even be started.
fn family_mismatch(bind: SocketAddr, to: SocketAddr) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("bind address {bind} (-b) and target {to} are of different address families"),
    )
}

/// Starts a non-blocking connect to `to`, bound to `bind` first if given.
pub fn connect(to: &Target, bind: Option<SocketAddr>) -> io::Result<Stream> {
    match to {
        Target::Inet(addr) => {
            if let Some(b) = bind {
                if b.is_ipv4() != addr.is_ipv4() {
                    return Err(family_mismatch(b, *addr));
                }
            }
            // Non-blocking and close-on-exec from socket(2) itself (SOCK_NONBLOCK; socket2 sets
            // SOCK_CLOEXEC): no fcntl calls per connection.
            let sock = Socket::new(Domain::for_address(*addr), Type::STREAM.nonblocking(), Some(Protocol::TCP))?;
            if let Some(b) = bind {
                sock.bind(&b.into())?;
            }
            match sock.connect(&(*addr).into()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc_einprogress()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            Ok(Stream::Tcp(TcpStream::from_std(std::net::TcpStream::from(sock))))
        }
        Target::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path)?)),
    }
}

fn libc_einprogress() -> i32 {
    nix::errno::Errno::EINPROGRESS as i32
}
