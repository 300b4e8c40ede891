//! The crate's one error type.
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong while driving an echo benchmark.
///
/// ```
/// use netloom_bench::BenchError;
/// let err = BenchError::InvalidConfig { what: "connections must be at least 1".into() };
/// assert!(err.to_string().contains("connections"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A benchmark parameter is out of range.
    #[error("invalid benchmark configuration: {what}")]
    InvalidConfig {
        /// Which parameter and why.
        what: String,
    },
    /// Connecting to the server under test failed or timed out.
    #[error("connecting from {from:?} to {to} failed: {source}")]
    Connect {
        /// Source address the socket was bound to, if any.
        from: Option<SocketAddr>,
        /// The server's address.
        to: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An I/O error outside a single connection (runtime start, listener, socket setup).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file under /proc could not be read or parsed.
    #[error("reading {path}: {what}")]
    Proc {
        /// The /proc file.
        path: PathBuf,
        /// What failed.
        what: String,
    },
    /// A server process could not be started or never announced its address.
    #[error("server {name}: {what}")]
    Server {
        /// The server's name in the comparison.
        name: String,
        /// What failed.
        what: String,
    },
    /// A connection's echo did not match what was sent, or the connection ended early
    /// (only returned where one failed connection aborts the operation, e.g. idle setup).
    #[error("echo check failed on connection {connection}: {what}")]
    Echo {
        /// Index of the connection.
        connection: usize,
        /// What differed.
        what: String,
    },
}

impl BenchError {
    /// Wraps an I/O error with a description of what was being done.
    ///
    /// ```
    /// use netloom_bench::BenchError;
    /// let err = BenchError::io("binding 127.0.0.1:1", std::io::ErrorKind::PermissionDenied.into());
    /// assert!(err.to_string().starts_with("binding 127.0.0.1:1"));
    /// ```
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
