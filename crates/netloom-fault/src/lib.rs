//! Reset connections on purpose — own sockets, other processes, host/port pairs — plus
//! blackholes, keep-alive helpers and a test fixture that tracks the connections code under
//! test opens.
//!
//! | want to | use | privilege |
//! |---|---|---|
//! | reset a socket you hold | [`reset`], [`abortive_close`], [`reset_after`], [`reset_in_background`] | none |
//! | reset a netloom channel | [`reset`] on `channel.try_clone_fd()?` (any [`AsFd`](std::os::fd::AsFd)) | none |
//! | list connections | [`list_connections`], [`list_matches`] | none |
//! | reset everything matching a [`Filter`] | [`reset_connections`] with a [`Method`] | by method |
//! | reset what your test's code opened | [`Tracker`] | none for own sockets |
//! | make a peer go silent | [`Blackhole`] | `CAP_NET_ADMIN` |
//! | notice a silent peer fast | [`Keepalive`] | none |
//! | drop a share of a local port's TCP segments | [`PacketLoss`] | `CAP_NET_ADMIN` |
//!
//! What each end observes, per method, is in the [`Method`] table; the integration tests
//! assert all of it against redis-server and a loopback echo server, over IPv4 and IPv6.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::io::Read;
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let client = std::net::TcpStream::connect(listener.local_addr()?)?;
//! let (mut server, _) = listener.accept()?;
//! netloom_fault::reset(&client)?;
//! assert_eq!(server.read(&mut [0; 1]).unwrap_err().kind(), std::io::ErrorKind::ConnectionReset);
//! # Ok(()) }
//! ```

mod blackhole;
mod caps;
mod conn;
/// Socket enumeration and SOCK_DESTROY over netlink sock_diag.
///
/// ```
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let port = listener.local_addr().unwrap().port();
/// // Every listening IPv4 TCP socket of the host (state bit 10: LISTEN), ours among them.
/// let mut diag = netloom_fault::diag::DiagSocket::new().unwrap();
/// let listening = diag.dump(libc::AF_INET as u8, 1 << 10).unwrap();
/// assert!(listening.iter().any(|c| c.local.port() == port));
/// ```
pub mod diag;
mod error;
mod filter;
/// RST injection with raw sockets: [`inject::inject_reset`].
///
/// ```
/// use netloom_fault::{Capability, Method};
/// // Injection needs CAP_NET_RAW: the method is allowed exactly when the capability is held.
/// assert_eq!(Method::Inject.check_allowed().is_ok(), Capability::NetRaw.is_effective()?);
/// # Ok::<(), netloom_fault::FaultError>(())
/// ```
pub mod inject;
mod keepalive;
mod loss;
mod method;
/// Borrowing another process's socket with `pidfd_getfd`.
///
/// ```no_run
/// let fd = netloom_fault::pidfd::borrow_socket(netloom_fault::FdRef { pid: 1234, fd: 5 }, 98765).unwrap();
/// # let _ = fd;
/// ```
pub mod pidfd;
mod plan;
mod procfs;
mod reset;
mod select;
mod sys;
mod tracker;

pub use blackhole::{Blackhole, BlackholeTable};
pub use caps::Capability;
pub use conn::{Connection, TcpState};
pub use error::{FaultError, Result};
pub use filter::{Endpoint, Filter, IpFamily, Role};
pub use keepalive::Keepalive;
pub use loss::{LossDirection, PacketLoss};
pub use method::Method;
pub use plan::{ResetOptions, ResetReport, reset_connections};
pub use procfs::{FdRef, socket_inodes};
pub use reset::{abortive_close, reset, reset_after, reset_in_background};
pub use select::{Matched, list_connections, list_matches};
pub use tracker::Tracker;
