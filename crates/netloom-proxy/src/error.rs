//! The crate's error type; each variant maps to the HTTP status Toxiproxy answers with.
use std::io;

/// What went wrong, with the input that caused it.
///
/// ```
/// use netloom_proxy::ProxyError;
/// let e = ProxyError::ProxyNotFound("redis".into());
/// assert_eq!(e.status(), 404);
/// assert_eq!(e.to_string(), "proxy not found: redis");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The request body is not what the endpoint takes (JSON syntax, types, unknown fields
    /// in strict mode).
    #[error("bad request body: {0}")]
    BadRequestBody(String),
    /// A required field is absent or empty.
    #[error("missing required field: {0}")]
    MissingField(String),
    /// No proxy of that name.
    #[error("proxy not found: {0}")]
    ProxyNotFound(String),
    /// A proxy of that name exists.
    #[error("proxy already exists: {0}")]
    ProxyExists(String),
    /// `stream` is neither `upstream` nor `downstream`.
    #[error("stream was invalid, can be either upstream or downstream: {0:?}")]
    InvalidStream(String),
    /// No toxic of that type.
    #[error("invalid toxic type: {0:?}")]
    InvalidToxicType(String),
    /// A toxic type that exists only for proxies of the other protocol (e.g. `slicer` on a
    /// UDP proxy, `duplicate` on a TCP one).
    #[error("invalid toxic type for a {protocol} proxy: {toxic:?} works on {only} proxies only")]
    ToxicProtocol {
        /// The toxic type.
        toxic: String,
        /// The proxy's protocol.
        protocol: &'static str,
        /// The protocol the type belongs to.
        only: &'static str,
    },
    /// A toxic of that name exists on the proxy.
    #[error("toxic already exists: {0}")]
    ToxicExists(String),
    /// No toxic of that name on the proxy.
    #[error("toxic not found: {0}")]
    ToxicNotFound(String),
    /// An attribute (or the toxicity) is out of range or of the wrong type.
    #[error("invalid attribute {attribute} of toxic type {toxic}: {reason}")]
    InvalidAttribute {
        /// The toxic type.
        toxic: String,
        /// The attribute.
        attribute: String,
        /// Why it was refused.
        reason: String,
    },
    /// The listen address cannot be parsed, resolved or bound.
    #[error("listen {addr}: {source}")]
    Listen {
        /// The address as given.
        addr: String,
        /// The OS error.
        source: io::Error,
    },
    /// `/reset` could not restore some proxies (each named with its error).
    #[error("reset failed for: {}", .0.iter().map(|(n, e)| format!("{n} ({e})")).collect::<Vec<_>>().join(", "))]
    ResetFailed(Vec<(String, String)>),
    /// An event-loop or socket operation failed.
    #[error("channel: {0}")]
    Channel(#[from] netloom_channel::ChannelError),
    /// A toxic that acts in the kernel (TCP `loss`) could not install its rules: 403 when
    /// the server lacks a capability (the message names it, e.g. `CAP_NET_ADMIN`), 500
    /// otherwise.
    #[error("toxic {toxic}: {source}")]
    Kernel {
        /// The toxic type.
        toxic: String,
        /// What failed.
        source: netloom_fault::FaultError,
    },
    /// An I/O error outside a listen address (config file, HTTP API socket).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: io::Error,
    },
}

impl ProxyError {
    /// The HTTP status Toxiproxy gives this error.
    ///
    /// ```
    /// use netloom_proxy::ProxyError;
    /// assert_eq!(ProxyError::ToxicExists("x".into()).status(), 409);
    /// assert_eq!(ProxyError::MissingField("name".into()).status(), 400);
    /// ```
    pub fn status(&self) -> u16 {
        match self {
            ProxyError::BadRequestBody(_)
            | ProxyError::MissingField(_)
            | ProxyError::InvalidStream(_)
            | ProxyError::InvalidToxicType(_)
            | ProxyError::ToxicProtocol { .. }
            | ProxyError::InvalidAttribute { .. } => 400,
            ProxyError::ProxyNotFound(_) | ProxyError::ToxicNotFound(_) => 404,
            ProxyError::Kernel {
                source: netloom_fault::FaultError::MissingCapability { .. },
                ..
            } => 403,
            ProxyError::Kernel { .. } => 500,
            ProxyError::ProxyExists(_) | ProxyError::ToxicExists(_) => 409,
            ProxyError::Listen { .. }
            | ProxyError::ResetFailed(_)
            | ProxyError::Channel(_)
            | ProxyError::Io { .. } => 500,
        }
    }

    pub(crate) fn attr(toxic: &str, attribute: &str, reason: impl Into<String>) -> ProxyError {
        ProxyError::InvalidAttribute {
            toxic: toxic.to_owned(),
            attribute: attribute.to_owned(),
            reason: reason.into(),
        }
    }
}
