//! The reset methods, and the check that this process may use one.
use std::fmt;
use std::str::FromStr;

use crate::caps::Capability;
use crate::error::{FaultError, Result};

/// How to reset a connection.
///
/// | method | needs | reaches | this end sees | peer sees |
/// |---|---|---|---|---|
/// | `Fd` | nothing | sockets of this process | `ECONNRESET` | `ECONNRESET` |
/// | `Destroy` | `CAP_NET_ADMIN`, `CONFIG_INET_DIAG_DESTROY` | any socket | `ECONNABORTED` | `ECONNRESET` |
/// | `Pidfd` | ptrace rights over the owner | sockets of children / ptraceable processes | `ECONNRESET` | `ECONNRESET` |
/// | `Inject` | `CAP_NET_RAW` | any connection with a local end | `ECONNRESET` | `ECONNRESET` |
///
/// `Auto` picks, per connection, the first that applies: `Destroy` (batched, reaches every
/// socket), then `Fd` for this process's sockets, `Pidfd` for sockets of processes we may
/// ptrace, `Inject`.
///
/// ```
/// use netloom_fault::Method;
/// assert_eq!("destroy".parse::<Method>().unwrap(), Method::Destroy);
/// assert!("sweep".parse::<Method>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Method {
    /// The best method allowed, chosen per connection.
    #[default]
    Auto,
    /// `connect(AF_UNSPEC)` on a descriptor of this process.
    Fd,
    /// netlink `SOCK_DESTROY`.
    Destroy,
    /// Raw-socket RSTs with exact sequence numbers.
    Inject,
    /// `pidfd_getfd` from the owning process, then `connect(AF_UNSPEC)`.
    Pidfd,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Auto => "auto",
            Method::Fd => "fd",
            Method::Destroy => "destroy",
            Method::Inject => "inject",
            Method::Pidfd => "pidfd",
        })
    }
}

impl FromStr for Method {
    type Err = FaultError;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auto" => Method::Auto,
            "fd" => Method::Fd,
            "destroy" => Method::Destroy,
            "inject" => Method::Inject,
            "pidfd" => Method::Pidfd,
            _ => {
                return Err(FaultError::invalid(
                    "method",
                    s,
                    "expected auto, fd, destroy, inject or pidfd",
                ));
            }
        })
    }
}

impl Method {
    /// Fails up front, naming the capability and the alternative, when this process may not
    /// use the method. `Fd`, `Pidfd` and `Auto` need no capability.
    ///
    /// ```
    /// netloom_fault::Method::Fd.check_allowed().unwrap();
    /// ```
    pub fn check_allowed(self) -> Result<()> {
        let (cap, alternative) = match self {
            Method::Destroy => (
                Capability::NetAdmin,
                "without it use method fd (this process's sockets) or pidfd (a child or ptraceable process)",
            ),
            Method::Inject => (
                Capability::NetRaw,
                "without it use method fd (this process's sockets) or pidfd (a child or ptraceable process)",
            ),
            Method::Auto | Method::Fd | Method::Pidfd => return Ok(()),
        };
        if cap.is_effective()? {
            Ok(())
        } else {
            Err(FaultError::MissingCapability {
                operation: if self == Method::Destroy {
                    "method destroy"
                } else {
                    "method inject"
                },
                capability: cap,
                alternative,
            })
        }
    }
}
