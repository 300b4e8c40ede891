//! The one error type of this crate.

use std::io;

/// Everything that can go wrong while building or using a test topology.
///
/// ```
/// use netloom_testnet::TestnetError;
/// let e = TestnetError::Command {
///     command: "ip netns add x".into(),
///     status: "exit status: 1".into(),
///     stderr: "File exists".into(),
/// };
/// assert!(e.to_string().contains("ip netns add x"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestnetError {
    /// A helper program (`ip`) could not be started at all.
    #[error(
        "cannot run `{command}`: {source} (is iproute2 installed? see scripts/install-test-deps)"
    )]
    Spawn {
        /// The command line that failed to start.
        command: String,
        /// Why it could not start.
        source: io::Error,
    },
    /// A helper program ran but failed.
    #[error("`{command}` failed with {status}: {stderr}")]
    Command {
        /// The command line that failed.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Entering a namespace (`setns`) failed, usually for lack of CAP_SYS_ADMIN.
    #[error("cannot enter network namespace {namespace}: {source} (needs root / CAP_SYS_ADMIN)")]
    Enter {
        /// The namespace name.
        namespace: String,
        /// The system error.
        source: io::Error,
    },
    /// Writing a sysctl inside a namespace failed.
    #[error("cannot set sysctl {key}={value} in namespace {namespace}: {source}")]
    Sysctl {
        /// The namespace name.
        namespace: String,
        /// The sysctl key, dotted (`net.ipv4.ip_forward`).
        key: String,
        /// The value written.
        value: String,
        /// The system error.
        source: io::Error,
    },
    /// Binding a listener inside a namespace failed.
    #[error("cannot listen on {address} in namespace {namespace}: {source}")]
    Listen {
        /// The namespace name.
        namespace: String,
        /// The address and port.
        address: String,
        /// The system error.
        source: io::Error,
    },
    /// A topology was asked for with a parameter outside its range.
    #[error("invalid topology: {0}")]
    InvalidTopology(String),
    /// The closure run inside a namespace panicked.
    #[error("the closure run inside namespace {0} panicked")]
    Panicked(String),
}

/// Shorthand for results of this crate.
///
/// ```no_run
/// fn router_namespace() -> netloom_testnet::Result<netloom_testnet::Namespace> {
///     let ns = netloom_testnet::Namespace::create("router")?;
///     ns.sysctl(&[("net.ipv4.ip_forward", "1")])?;
///     Ok(ns)
/// }
/// ```
pub type Result<T, E = TestnetError> = std::result::Result<T, E>;
