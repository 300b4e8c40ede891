//! Socket enumeration and destruction through netlink sock_diag (inet_diag).
//!
//! [`DiagSocket::dump`](crate::diag::DiagSocket::dump) lists TCP sockets of every process (no privilege needed);
//! [`DiagSocket::destroy`](crate::diag::DiagSocket::destroy) resets them with `SOCK_DESTROY` (needs `CAP_NET_ADMIN` and a kernel
//! built with `CONFIG_INET_DIAG_DESTROY`).
mod netlink;
/// The bytes of sock_diag requests and replies; reached from outside only by the fuzz targets
/// (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
pub mod wire;
#[cfg(not(feature = "fuzzing"))]
pub(crate) mod wire;

pub use netlink::{DestroyOptions, DiagSocket, MAX_BATCH};
pub use wire::ParseError;
