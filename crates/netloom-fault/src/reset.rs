//! Reset primitives on a socket descriptor: `connect(AF_UNSPEC)` and the abortive close.
//!
//! What each end observes on Linux 6.x (asserted by `tests/methods.rs` on every run):
//!
//! | primitive | this end, next `read` | this end, then `write` | the peer's next `read` |
//! |---|---|---|---|
//! | [`reset`] | `ECONNRESET` | `EPIPE` | `ECONNRESET` (it received an RST) |
//! | [`abortive_close`] | (descriptor closed) | (descriptor closed) | `ECONNRESET` |
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{SockRef, Type};

use crate::error::{FaultError, Result};

/// Resets a TCP connection through its descriptor with `connect(fd, AF_UNSPEC)`.
///
/// The kernel's `tcp_disconnect` sends an RST to the peer and marks this socket with
/// `ECONNRESET`; the descriptor stays valid (and could be reconnected). Works on any socket
/// type implementing [`AsFd`]: std, tokio, socket2. Needs no privilege. Fails for sockets that
/// are not TCP.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::io::Read;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let (mut server, _) = listener.accept()?;
/// netloom_fault::reset(&client)?;
/// let err = server.read(&mut [0u8; 8]).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
/// # Ok(()) }
/// ```
pub fn reset(sock: &impl AsFd) -> Result<()> {
    let fd = sock.as_fd();
    ensure_tcp(fd)?;
    disconnect(fd)
}

/// `connect(fd, AF_UNSPEC)` on a descriptor already known to be a TCP socket.
pub(crate) fn disconnect(fd: BorrowedFd<'_>) -> Result<()> {
    if let Err(e) = rustix::net::connect_unspec(fd) {
        return Err(FaultError::socket(
            "connect(AF_UNSPEC)",
            describe_fd(fd),
            e.into(),
        ));
    }
    tracing::debug!(fd = fd.as_raw_fd(), "reset with connect(AF_UNSPEC)");
    Ok(())
}

/// Abortive close: `SO_LINGER` with a zero timeout, then `close`. The kernel drops unsent
/// data and sends the peer an RST instead of a FIN. Takes ownership, since the descriptor is
/// gone afterwards. Needs no privilege.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::io::Read;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let (mut server, _) = listener.accept()?;
/// netloom_fault::abortive_close(client)?;
/// assert!(server.read(&mut [0u8; 8]).is_err());
/// # Ok(()) }
/// ```
pub fn abortive_close(sock: impl Into<OwnedFd>) -> Result<()> {
    let fd: OwnedFd = sock.into();
    ensure_tcp(fd.as_fd())?;
    SockRef::from(&fd)
        .set_linger(Some(Duration::ZERO))
        .map_err(|e| FaultError::socket("setsockopt(SO_LINGER, 0)", describe_fd(fd.as_fd()), e))?;
    drop(fd);
    Ok(())
}

/// [`reset`] from async code: resets after `delay` without blocking the runtime, e.g. to cut a
/// connection while a request is in flight. Needs no privilege.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tokio::io::AsyncReadExt;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let mut client = tokio::net::TcpStream::connect(listener.local_addr()?).await?;
/// let (server, _) = listener.accept().await?;
/// let mut buf = [0u8; 8];
/// let (reset, read) = tokio::join!(
///     netloom_fault::reset_after(&server, std::time::Duration::from_millis(20)),
///     client.read(&mut buf),
/// );
/// reset?;
/// assert_eq!(read.unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
/// # Ok(()) }
/// ```
pub async fn reset_after(sock: &impl AsFd, delay: Duration) -> Result<()> {
    tokio::time::sleep(delay).await;
    reset(sock)
}

/// Resets in the background (netsplode's `blocking=False`): duplicates the descriptor and
/// resets it from a thread after `delay`; join the handle for the result. The caller keeps its
/// own descriptor. Needs no privilege.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::io::Read;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let (server, _) = listener.accept()?;
/// let handle = netloom_fault::reset_in_background(&server, std::time::Duration::from_millis(20))?;
/// // The read blocks until the background reset arrives.
/// assert_eq!(client.read(&mut [0u8; 8]).unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
/// handle.join().expect("reset thread")?;
/// # Ok(()) }
/// ```
pub fn reset_in_background(sock: &impl AsFd, delay: Duration) -> Result<JoinHandle<Result<()>>> {
    let fd = sock.as_fd();
    ensure_tcp(fd)?;
    let owned = fd
        .try_clone_to_owned()
        .map_err(|e| FaultError::socket("dup", describe_fd(fd), e))?;
    std::thread::Builder::new()
        .name("netloom-reset".into())
        .spawn(move || {
            std::thread::sleep(delay);
            reset(&owned)
        })
        .map_err(|e| FaultError::socket("spawning the reset thread", describe_fd(fd), e))
}

fn ensure_tcp(fd: BorrowedFd<'_>) -> Result<()> {
    let sock = SockRef::from(&fd);
    let ty = sock
        .r#type()
        .map_err(|e| FaultError::socket("getsockopt(SO_TYPE)", describe_fd(fd), e))?;
    let proto = sock
        .protocol()
        .map_err(|e| FaultError::socket("getsockopt(SO_PROTOCOL)", describe_fd(fd), e))?;
    if ty != Type::STREAM || proto.is_some_and(|p| p != socket2::Protocol::TCP) {
        return Err(FaultError::socket(
            "checking the socket type",
            describe_fd(fd),
            io::Error::new(io::ErrorKind::InvalidInput, "not a TCP socket"),
        ));
    }
    Ok(())
}

pub(crate) fn describe_fd(fd: BorrowedFd<'_>) -> String {
    let sock = SockRef::from(&fd);
    match (sock.local_addr(), sock.peer_addr()) {
        (Ok(l), Ok(p)) => match (l.as_socket(), p.as_socket()) {
            (Some(l), Some(p)) => format!("fd {} ({l} -> {p})", fd.as_raw_fd()),
            _ => format!("fd {}", fd.as_raw_fd()),
        },
        _ => format!("fd {}", fd.as_raw_fd()),
    }
}
