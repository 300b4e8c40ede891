//! The crate's one error type.
use std::io;
use std::path::PathBuf;

use crate::caps::Capability;
use crate::method::Method;

/// Everything that can fail in `netloom-fault`; each variant says what failed and with which input.
///
/// ```
/// use netloom_fault::{Capability, FaultError};
/// let err = FaultError::MissingCapability {
///     operation: "method destroy",
///     capability: Capability::NetAdmin,
///     alternative: "use Method::Fd or Method::Pidfd",
/// };
/// assert!(err.to_string().contains("CAP_NET_ADMIN"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FaultError {
    /// An operation needs a capability the calling process does not have in its effective set.
    #[error("{operation} needs {capability}, which this process does not have; {alternative}")]
    MissingCapability {
        /// What was asked for (`method destroy`, `blackhole`, ...).
        operation: &'static str,
        /// The capability it needs.
        capability: Capability,
        /// What to do instead.
        alternative: &'static str,
    },
    /// The running kernel lacks a feature the method needs.
    #[error("{operation} is not supported by this kernel: {feature} is missing")]
    KernelFeature {
        /// What was attempted.
        operation: &'static str,
        /// The missing kernel option or feature.
        feature: &'static str,
    },
    /// A system call on a socket failed.
    #[error("{operation} failed on {target}: {source}")]
    Socket {
        /// The system call or step.
        operation: &'static str,
        /// The socket (fd, connection) it ran on.
        target: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Talking to the kernel over netlink (sock_diag) failed.
    #[error("netlink {operation} failed: {source}")]
    Netlink {
        /// The netlink request.
        operation: &'static str,
        /// The OS error (or the error the kernel sent back).
        #[source]
        source: io::Error,
    },
    /// The kernel sent a netlink reply this crate cannot parse.
    #[error("malformed netlink reply: {0}")]
    Parse(#[from] crate::diag::ParseError),
    /// Reading `/proc` failed.
    #[error("reading {path} failed: {source}")]
    Proc {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A filter, address or option given by the user is invalid.
    #[error("invalid {what} `{input}`: {reason}")]
    InvalidInput {
        /// What was being parsed.
        what: &'static str,
        /// The input as given.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The method cannot be used on this connection (not a privilege problem).
    #[error("method `{method}` cannot reset {connection}: {reason}")]
    NotApplicable {
        /// The method that was asked for.
        method: Method,
        /// The connection.
        connection: String,
        /// Why not.
        reason: String,
    },
    /// RST injection could not learn the sequence numbers of a connection.
    #[error("no challenge ACK from {connection} after {attempts} attempts over {waited_ms} ms")]
    NoChallengeAck {
        /// The connection.
        connection: String,
        /// Probes sent.
        attempts: u32,
        /// Time waited in total.
        waited_ms: u64,
    },
    /// Running the `nft` tool failed.
    #[error("nft {action} failed ({status}): {stderr}")]
    Nft {
        /// What the rules were for.
        action: &'static str,
        /// Exit status or spawn error.
        status: String,
        /// What nft printed.
        stderr: String,
    },
}

/// Result alias of this crate.
///
/// ```
/// fn parse(s: &str) -> netloom_fault::Result<netloom_fault::Endpoint> { s.parse() }
/// assert!(parse(":80").is_ok());
/// ```
pub type Result<T, E = FaultError> = std::result::Result<T, E>;

impl FaultError {
    pub(crate) fn socket(
        operation: &'static str,
        target: impl ToString,
        source: io::Error,
    ) -> Self {
        FaultError::Socket {
            operation,
            target: target.to_string(),
            source,
        }
    }

    pub(crate) fn proc(path: impl Into<PathBuf>, source: io::Error) -> Self {
        FaultError::Proc {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: &'static str, input: impl ToString, reason: impl ToString) -> Self {
        FaultError::InvalidInput {
            what,
            input: input.to_string(),
            reason: reason.to_string(),
        }
    }
}
