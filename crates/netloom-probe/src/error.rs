//! [`ProbeError`]: everything that can go wrong opening a prober or sending a probe.
use std::io;
use std::net::{IpAddr, SocketAddr};

/// Which kind of route is missing, for [`ProbeError::NoRoute`].
///
/// ```
/// use netloom_probe::RouteScope;
/// assert_eq!(RouteScope::Network.to_string(), "network");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteScope {
    /// No route to the host (`EHOSTUNREACH`).
    Host,
    /// No route to the network (`ENETUNREACH`).
    Network,
}

impl std::fmt::Display for RouteScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RouteScope::Host => "host",
            RouteScope::Network => "network",
        })
    }
}

/// The error type of this crate: one variant per failure, each naming its input.
///
/// Outcomes reported by the network (ttl-expired, unreachable, no reply) are not errors:
/// they are [`Outcome`](crate::Outcome)s. Errors are what stops a probe from being sent.
///
/// ```
/// use netloom_probe::ProbeError;
/// let err = ProbeError::ProbesExhausted { limit: 10_240 };
/// assert!(err.to_string().contains("10240"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// `max_in_flight` probes are already outstanding.
    #[error(
        "probes exhausted: {limit} probes already in flight (the limit is ProberConfig::max_in_flight)"
    )]
    ProbesExhausted {
        /// The configured limit.
        limit: usize,
    },
    /// The process lacks a capability the operation needs.
    #[error("permission denied: {what} needs {needs}; unprivileged alternative: {alternative}")]
    PermissionDenied {
        /// What was attempted.
        what: String,
        /// The missing capability, e.g. `CAP_NET_RAW`.
        needs: &'static str,
        /// What works without it.
        alternative: String,
    },
    /// An argument is out of range or inconsistent.
    #[error("invalid argument: {what}")]
    InvalidArgument {
        /// Which argument, with its value.
        what: String,
    },
    /// The network is down (`ENETDOWN`).
    #[error("network down sending to {target}")]
    NetworkDown {
        /// The probed address.
        target: IpAddr,
    },
    /// The local routing table has no route (`ENETUNREACH` / `EHOSTUNREACH`).
    #[error("no route to {scope} {target}")]
    NoRoute {
        /// The probed address.
        target: IpAddr,
        /// Host or network.
        scope: RouteScope,
    },
    /// The host is known to be down (`EHOSTDOWN`).
    #[error("host {target} is down")]
    HostDown {
        /// The probed address.
        target: IpAddr,
    },
    /// The local address/port is already in use (`EADDRINUSE`).
    #[error("local address {addr} is already in use")]
    AddressInUse {
        /// The local address the probe was to be sent from.
        addr: SocketAddr,
    },
    /// The local address is not on this host (`EADDRNOTAVAIL`).
    #[error("local address {addr} is not available")]
    AddressNotAvailable {
        /// The local address the probe was to be sent from.
        addr: IpAddr,
    },
    /// The protocol or feature is not supported here (e.g. SCTP without kernel support).
    #[error("not supported: {what}")]
    NotSupported {
        /// What is missing.
        what: String,
    },
    /// A host name did not resolve to an address of the wanted version.
    #[error("cannot resolve host name {name:?}: {reason}")]
    Resolve {
        /// The name looked up.
        name: String,
        /// Why it failed.
        reason: String,
    },
    /// Any other system call failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with which input.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl ProbeError {
    /// Wraps an I/O error with what was being done.
    ///
    /// ```
    /// use netloom_probe::ProbeError;
    /// let err = ProbeError::io("opening socket", std::io::Error::other("boom"));
    /// assert_eq!(err.to_string(), "opening socket: boom");
    /// ```
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        ProbeError::Io {
            context: context.into(),
            source,
        }
    }

    /// Maps a send/connect failure to the variant mtr-packet reports for that errno.
    pub(crate) fn from_send(err: io::Error, target: IpAddr, local: SocketAddr) -> Self {
        match err.raw_os_error() {
            Some(libc::ENETDOWN) => ProbeError::NetworkDown { target },
            Some(libc::ENETUNREACH) => ProbeError::NoRoute {
                target,
                scope: RouteScope::Network,
            },
            Some(libc::EHOSTUNREACH) => ProbeError::NoRoute {
                target,
                scope: RouteScope::Host,
            },
            Some(libc::EHOSTDOWN) => ProbeError::HostDown { target },
            Some(libc::EADDRINUSE) => ProbeError::AddressInUse { addr: local },
            Some(libc::EADDRNOTAVAIL) => ProbeError::AddressNotAvailable { addr: local.ip() },
            Some(libc::EPERM) | Some(libc::EACCES) => ProbeError::PermissionDenied {
                what: format!("sending a probe to {target}"),
                // A mark is set (and refused) before sending, so EPERM here is the
                // local firewall's output rules.
                needs: "a local firewall (nftables/iptables) output rule that lets it out",
                alternative: "check the output rules (nft list ruleset)".into(),
            },
            Some(libc::EINVAL) => ProbeError::InvalidArgument {
                what: format!("the kernel rejected the probe to {target} (EINVAL)"),
            },
            _ => ProbeError::io(format!("sending a probe to {target}"), err),
        }
    }
}
