//! User events and close modes.
use std::any::Any;
use std::fmt;

/// Which kind of idleness an [`IdleStateHandler`](crate::IdleStateHandler) detected.
///
/// ```
/// use netloom_channel::IdleState;
/// assert_ne!(IdleState::ReaderIdle, IdleState::WriterIdle);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdleState {
    /// Nothing was read for the reader idle time.
    ReaderIdle,
    /// Nothing was written for the writer idle time.
    WriterIdle,
    /// Nothing was read or written for the all idle time.
    AllIdle,
}

/// What a completed TLS handshake negotiated.
///
/// ```
/// use netloom_channel::TlsInfo;
/// let info = TlsInfo::default();
/// assert!(info.alpn.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// The protocol version, like `TLSv1_3`.
    pub protocol_version: Option<String>,
    /// The cipher suite.
    pub cipher_suite: Option<String>,
    /// The ALPN protocol, if one was negotiated.
    pub alpn: Option<Vec<u8>>,
    /// The SNI name the client sent (server side) or used (client side).
    pub server_name: Option<String>,
}

/// An event that travels inbound through the pipeline to `user_event`.
///
/// ```
/// use netloom_channel::{IdleState, UserEvent};
/// let ev = UserEvent::Idle(IdleState::AllIdle);
/// assert!(matches!(ev, UserEvent::Idle(IdleState::AllIdle)));
/// ```
#[non_exhaustive]
pub enum UserEvent {
    /// The channel was idle (from an `IdleStateHandler`).
    Idle(IdleState),
    /// The peer ended its output (TCP FIN) on a channel with
    /// [`ChannelOptions::allow_half_closure`](crate::ChannelOptions::allow_half_closure):
    /// nothing more will be read, and the channel stays open for writing until it is
    /// closed (or its output is shut down too, with [`CloseMode::Output`]).
    InputShutdown,
    /// The TLS handshake completed successfully.
    TlsHandshakeComplete(Box<TlsInfo>),
    /// Any other event.
    Custom(Box<dyn Any + Send>),
}

impl fmt::Debug for UserEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserEvent::Idle(s) => f.debug_tuple("Idle").field(s).finish(),
            UserEvent::InputShutdown => f.write_str("InputShutdown"),
            UserEvent::TlsHandshakeComplete(i) => {
                f.debug_tuple("TlsHandshakeComplete").field(i).finish()
            }
            UserEvent::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// How to close a channel.
///
/// ```
/// use netloom_channel::CloseMode;
/// assert_ne!(CloseMode::Graceful, CloseMode::Forced);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseMode {
    /// Stop reading, write everything pending (flushed or not), send FIN, then close
    /// (forced after `ChannelOptions::graceful_close_timeout`).
    Graceful,
    /// Drop pending writes and close now.
    Forced,
    /// Half-close: write everything pending (flushed or not), then shut down the output
    /// (TCP FIN) and keep reading; later writes are dropped. The channel closes when its
    /// input has ended too (see [`UserEvent::InputShutdown`]) or when it is closed.
    /// Transports without a half-close (UDP peers, in-memory channels) ignore it.
    Output,
}
