//! Socket enumeration and destruction through netlink sock_diag (inet_diag).
//!
//! [`DiagSocket::dump`] lists TCP sockets of every process (no privilege needed);
//! [`DiagSocket::destroy`] resets them with `SOCK_DESTROY` (needs `CAP_NET_ADMIN` and a kernel
//! built with `CONFIG_INET_DIAG_DESTROY`).
mod netlink;
/// The bytes of sock_diag requests and replies.
///
/// ```
/// assert_eq!(netloom_fault::diag::wire::DIAG_MSG_LEN, 72);
/// ```
pub mod wire;

pub use netlink::{DestroyOptions, DiagSocket, MAX_BATCH};
