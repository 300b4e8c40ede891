//! The crate's error type.
use std::io;
use std::time::Duration;

/// A boxed error a handler callback may return; `?` converts most errors into it.
///
/// ```
/// use netloom_channel::BoxError;
/// let err: BoxError = "parse failed".into();
/// assert_eq!(err.to_string(), "parse failed");
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What every handler callback returns. An `Err` reaches `exception_caught`.
///
/// ```
/// use netloom_channel::HandlerResult;
/// fn check(n: usize) -> HandlerResult {
///     if n > 10 { return Err("too long".into()); }
///     Ok(())
/// }
/// assert!(check(11).is_err());
/// ```
pub type HandlerResult = Result<(), BoxError>;

/// Everything that can fail in `netloom-channel`; each variant names what failed and the input.
///
/// ```
/// use netloom_channel::ChannelError;
/// let err = ChannelError::NoSuchHandler("decoder".into());
/// assert_eq!(err.to_string(), "no handler named \"decoder\" in the pipeline");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// Binding a listening socket failed.
    #[error("binding {addr} failed: {source}")]
    Bind {
        /// The address or path.
        addr: String,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// Connecting failed (refused, unreachable, ...).
    #[error("connecting to {addr} failed: {source}")]
    Connect {
        /// The remote address.
        addr: String,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// Connecting took longer than the connect timeout.
    #[error("connecting to {addr} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The remote address.
        addr: String,
        /// The configured timeout (`ChannelOptions::connect_timeout`).
        timeout: Duration,
    },
    /// A host name did not resolve.
    #[error("resolving {host} failed: {source}")]
    Resolve {
        /// The name.
        host: String,
        /// The resolver error.
        #[source]
        source: io::Error,
    },
    /// Reading from, writing to or configuring a channel's socket failed.
    #[error("{op} on channel {channel} failed: {source}")]
    Io {
        /// What was being done (`read`, `write`, `shutdown`, ...).
        op: &'static str,
        /// The channel, as `[id L:local R:remote]`.
        channel: String,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// A handler callback returned an error.
    #[error("handler {handler:?} failed: {source}")]
    Handler {
        /// The handler's name in the pipeline.
        handler: String,
        /// The error it returned.
        #[source]
        source: BoxError,
    },
    /// A handler callback panicked; the panic was caught.
    #[error("handler {handler:?} panicked: {message}")]
    HandlerPanicked {
        /// The handler's name in the pipeline.
        handler: String,
        /// The panic message.
        message: String,
    },
    /// A handler name is already used in this pipeline.
    #[error("a handler named {0:?} already exists in the pipeline")]
    DuplicateHandler(String),
    /// No handler with this name.
    #[error("no handler named {0:?} in the pipeline")]
    NoSuchHandler(String),
    /// A message that is not `Bytes` reached the transport.
    #[error(
        "a message of type {type_name} reached the transport of channel {channel}; only Bytes can be written (add an encoder)"
    )]
    UnsupportedMessage {
        /// The message's Rust type.
        type_name: &'static str,
        /// The channel.
        channel: String,
    },
    /// A TLS protocol error (bad certificate, wrong host name, alert from the peer, ...).
    #[error("TLS on channel {channel} failed: {source}")]
    Tls {
        /// The channel.
        channel: String,
        /// The rustls error (boxed: it is large and errors travel through pipelines).
        #[source]
        source: Box<rustls::Error>,
    },
    /// Building a TLS configuration failed.
    #[error("TLS configuration: {what}: {reason}")]
    TlsConfig {
        /// What was being loaded (`certificate PEM`, `server name "x"`, ...).
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// Building a framer failed (an unknown framing name, a bad option, ...).
    #[error("framer: {0}")]
    Codec(#[source] Box<netloom_codec::CodecError>),
    /// A configured limit was exceeded.
    #[error("{limit} exceeded: {value} bytes, limit {max}")]
    LimitExceeded {
        /// The limit's name (`DecoderHandler::max_buffered`, ...).
        limit: &'static str,
        /// The value that went over.
        value: usize,
        /// The configured maximum.
        max: usize,
    },
    /// An option has an invalid value.
    #[error("invalid option {name}: {reason}")]
    InvalidOption {
        /// The option's name (`write_buffer_low_water_mark`, ...).
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// The event loop no longer accepts work.
    #[error("event loop {0} is shut down")]
    EventLoopShutDown(String),
    /// An operation that must run on an event loop thread was called elsewhere.
    #[error("{what} must be called on an event loop thread")]
    NotOnEventLoop {
        /// The operation.
        what: &'static str,
    },
    /// The channel is closed.
    #[error("channel {0} is closed")]
    ChannelClosed(String),
    /// A blocking wait was called on an event loop thread (it would deadlock).
    #[error("{what}.sync() called on event loop thread {thread}; await it instead")]
    BlockingOnEventLoop {
        /// What was waited for.
        what: &'static str,
        /// The thread's name.
        thread: String,
    },
    /// No data was read within the read timeout (`ReadTimeoutHandler`).
    #[error("no data read for {0:?} (read timeout)")]
    ReadTimeout(Duration),
    /// Nothing was read or written for `ChannelOptions::idle_timeout`.
    #[error("nothing read or written for {0:?} (idle_timeout); closed")]
    IdleTimeout(Duration),
    /// The TLS handshake did not complete within `TlsHandler::handshake_timeout`.
    #[error("TLS handshake not complete after {0:?} (handshake_timeout); closed")]
    TlsHandshakeTimeout(Duration),
    /// Starting an event loop thread failed.
    #[error("starting event loop thread {name} failed: {source}")]
    ThreadSpawn {
        /// The thread's name.
        name: String,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// The transport cannot do this operation.
    #[error("{op} is not supported by channel {channel}")]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// The channel.
        channel: String,
    },
    /// A datagram did not fit the receive buffer (`MSG_TRUNC`); it was dropped, not delivered
    /// cut short.
    #[error("datagram from {peer} is longer than max_datagram_len {limit} bytes; dropped")]
    DatagramTruncated {
        /// The sender.
        peer: String,
        /// The configured limit (`UdpConfig::max_datagram_len`).
        limit: usize,
    },
    /// A new peer was refused because the endpoint tracks `max_peers` already.
    #[error("peer {peer} not tracked: max_peers {limit} reached")]
    PeerLimit {
        /// The peer.
        peer: String,
        /// The configured limit (`UdpConfig::max_peers`).
        limit: usize,
    },
    /// An acceptor rejected a peer.
    #[error("peer {peer} rejected by the acceptor: {reason}")]
    PeerRejected {
        /// The peer.
        peer: String,
        /// The acceptor's reason.
        reason: String,
    },
    /// No manager plug-in is registered for a protocol.
    #[error("unknown protocol {protocol:?} (registered: {known})")]
    UnknownProtocol {
        /// The protocol asked for.
        protocol: String,
        /// The registered protocols.
        known: String,
    },
    /// A connection manager was used in a state that does not allow the operation.
    #[error("{protocol} manager on {local}: {what}")]
    ManagerState {
        /// The manager's protocol.
        protocol: String,
        /// The manager's local endpoint.
        local: String,
        /// What is wrong (`not running`, `already running`).
        what: &'static str,
    },
}

impl From<netloom_codec::CodecError> for ChannelError {
    fn from(e: netloom_codec::CodecError) -> Self {
        ChannelError::Codec(Box::new(e))
    }
}

impl ChannelError {
    /// The rustls error, if this is a TLS failure.
    ///
    /// ```
    /// use netloom_channel::ChannelError;
    /// let err = ChannelError::Tls { channel: "[1]".into(), source: Box::new(rustls::Error::HandshakeNotComplete) };
    /// assert!(err.tls_error().is_some());
    /// ```
    pub fn tls_error(&self) -> Option<&rustls::Error> {
        match self {
            ChannelError::Tls { source, .. } => Some(&**source),
            ChannelError::Handler { source, .. } => source
                .downcast_ref::<ChannelError>()
                .and_then(ChannelError::tls_error),
            _ => None,
        }
    }
}

impl ChannelError {
    /// Whether this is how connections routinely end — the peer reset or vanished, a
    /// timeout this crate enforces — rather than a fault worth a warning. Unhandled
    /// routine errors are logged at DEBUG, the others at WARN.
    ///
    /// ```
    /// use std::io;
    /// use std::time::Duration;
    /// use netloom_channel::ChannelError;
    /// let reset = ChannelError::Io {
    ///     op: "read",
    ///     channel: "c".into(),
    ///     source: io::Error::from(io::ErrorKind::ConnectionReset),
    /// };
    /// assert!(reset.is_routine());
    /// assert!(ChannelError::IdleTimeout(Duration::from_secs(1)).is_routine());
    /// assert!(!ChannelError::NoSuchHandler("x".into()).is_routine());
    /// ```
    pub fn is_routine(&self) -> bool {
        match self {
            ChannelError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::NotConnected
            ),
            ChannelError::IdleTimeout(_)
            | ChannelError::ReadTimeout(_)
            | ChannelError::TlsHandshakeTimeout(_) => true,
            _ => false,
        }
    }
}
