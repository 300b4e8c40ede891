//! Wrappers: change a socket before it is used (socket options, TLS), alone or in chains.
use std::sync::Arc;

use socket2::SockRef;

use crate::{ChannelError, Pipeline};

/// Which socket a wrapper is applied to.
///
/// ```
/// use netloom_channel::tracking::SocketRole;
/// assert_ne!(SocketRole::Listening, SocketRole::Accepted);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketRole {
    /// A manager's own socket: the TCP listener (after creation, before `bind`), or the UDP
    /// socket all peers share (after creation, before `bind`). No pipeline.
    Listening,
    /// A connection a manager accepted (TCP: the accepted socket; UDP: a new peer on the
    /// shared socket). Applied from the acceptor with [`NewPeer::wrap`](crate::tracking::NewPeer::wrap),
    /// before the channel becomes active.
    Accepted,
    /// An outgoing connection from `Manager::connect` (TCP: after the connection is
    /// established, before the channel becomes active; UDP: the shared socket and the new
    /// peer's pipeline).
    Outgoing,
}

/// A socket handed to a [`Wrapper`]: its options (through `socket2`), and for connections
/// the pipeline, where a wrapper adds transport-end handlers (TLS, for instance).
///
/// On a UDP peer the socket is the one all peers of the manager share: options set on it
/// apply to every peer.
///
/// ```
/// use netloom_channel::tracking::{WrapSocket, SocketRole};
/// fn describe(s: &WrapSocket<'_>) -> String {
///     format!("{:?} {}", s.role(), s.protocol())
/// }
/// ```
pub struct WrapSocket<'a> {
    pub(crate) role: SocketRole,
    pub(crate) protocol: &'a str,
    pub(crate) socket: SockRef<'a>,
    pub(crate) pipeline: Option<&'a mut Pipeline>,
}

impl<'a> WrapSocket<'a> {
    /// Which socket this is.
    ///
    /// ```
    /// # use netloom_channel::tracking::{WrapSocket, SocketRole};
    /// fn listening(s: &WrapSocket<'_>) -> bool { s.role() == SocketRole::Listening }
    /// ```
    pub fn role(&self) -> SocketRole {
        self.role
    }

    /// The manager's protocol (`"tcp"`, `"udp"`, or a plug-in's name).
    ///
    /// ```
    /// # use netloom_channel::tracking::WrapSocket;
    /// fn is_tcp(s: &WrapSocket<'_>) -> bool { s.protocol() == "tcp" }
    /// ```
    pub fn protocol(&self) -> &str {
        self.protocol
    }

    /// The socket, to read or set options.
    ///
    /// ```
    /// # use netloom_channel::tracking::WrapSocket;
    /// fn ttl(s: &WrapSocket<'_>) -> std::io::Result<u32> { s.socket().ttl_v4() }
    /// ```
    pub fn socket(&self) -> &SockRef<'a> {
        &self.socket
    }

    /// The connection's pipeline (`None` for a listening socket).
    ///
    /// ```
    /// # use netloom_channel::tracking::WrapSocket;
    /// fn has_tls(s: &mut WrapSocket<'_>) -> bool { s.pipeline().is_some_and(|p| p.contains("tls")) }
    /// ```
    pub fn pipeline(&mut self) -> Option<&mut Pipeline> {
        self.pipeline.as_deref_mut()
    }
}

/// Changes a socket before it is used: sets options, or adds handlers at the transport end
/// of the pipeline (TLS). Tendril's wrappers return a new socket object; here the socket is
/// changed in place and the pipeline carries any new layer. Closures
/// `Fn(&mut WrapSocket) -> Result<(), ChannelError>` are wrappers.
///
/// Where wrappers are applied: the one given to `Manager::start` to the listening (TCP) or
/// shared (UDP) socket; the one given to `Manager::connect` to the outgoing connection; an
/// acceptor applies wrappers to an accepted connection with
/// [`NewPeer::wrap`](crate::tracking::NewPeer::wrap).
///
/// ```
/// use netloom_channel::{ChannelError, tracking::{Wrapper, WrapSocket}};
///
/// /// Sets the IPv4 TTL.
/// struct Ttl(u32);
/// impl Wrapper for Ttl {
///     fn wrap(&self, s: &mut WrapSocket<'_>) -> Result<(), ChannelError> {
///         s.socket().set_ttl_v4(self.0).map_err(|e| ChannelError::InvalidOption {
///             name: "ttl", reason: e.to_string(),
///         })
///     }
/// }
/// ```
pub trait Wrapper: Send + Sync + 'static {
    /// Changes the socket (and, for connections, the pipeline).
    fn wrap(&self, socket: &mut WrapSocket<'_>) -> Result<(), ChannelError>;
}

impl<F> Wrapper for F
where
    F: Fn(&mut WrapSocket<'_>) -> Result<(), ChannelError> + Send + Sync + 'static,
{
    fn wrap(&self, socket: &mut WrapSocket<'_>) -> Result<(), ChannelError> {
        self(socket)
    }
}

/// Several wrappers applied in order (Tendril's `WrapperChain`); the first error stops it.
///
/// ```
/// use netloom_channel::{ChannelError, tracking::{WrapSocket, Wrapper, WrapperChain}};
///
/// let chain = WrapperChain::new()
///     .chain(|s: &mut WrapSocket<'_>| s.socket().set_reuse_address(true).map_err(|e| ChannelError::InvalidOption { name: "SO_REUSEADDR", reason: e.to_string() }))
///     .chain(|s: &mut WrapSocket<'_>| s.socket().set_ttl_v4(32).map_err(|e| ChannelError::InvalidOption { name: "IP_TTL", reason: e.to_string() }));
/// assert_eq!(chain.len(), 2);
/// ```
#[derive(Clone, Default)]
pub struct WrapperChain(Vec<Arc<dyn Wrapper>>);

impl WrapperChain {
    /// An empty chain (changes nothing).
    ///
    /// ```
    /// assert!(netloom_channel::tracking::WrapperChain::new().is_empty());
    /// ```
    pub fn new() -> WrapperChain {
        WrapperChain(Vec::new())
    }

    /// Appends a wrapper; it runs after those already in the chain.
    ///
    /// ```
    /// use netloom_channel::{ChannelError, tracking::{WrapSocket, WrapperChain}};
    /// let c = WrapperChain::new().chain(|_: &mut WrapSocket<'_>| Ok::<(), ChannelError>(()));
    /// assert_eq!(c.len(), 1);
    /// ```
    pub fn chain(mut self, wrapper: impl Wrapper) -> WrapperChain {
        self.0.push(Arc::new(wrapper));
        self
    }

    /// How many wrappers the chain holds.
    ///
    /// ```
    /// assert_eq!(netloom_channel::tracking::WrapperChain::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the chain is empty.
    ///
    /// ```
    /// assert!(netloom_channel::tracking::WrapperChain::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Wrapper for WrapperChain {
    fn wrap(&self, socket: &mut WrapSocket<'_>) -> Result<(), ChannelError> {
        self.0.iter().try_for_each(|w| w.wrap(socket))
    }
}

/// Applies `wrapper` (if any) to a socket without a pipeline.
pub(crate) fn wrap_listening(
    wrapper: Option<&Arc<dyn Wrapper>>,
    protocol: &str,
    socket: SockRef<'_>,
) -> Result<(), ChannelError> {
    match wrapper {
        Some(w) => w.wrap(&mut WrapSocket {
            role: SocketRole::Listening,
            protocol,
            socket,
            pipeline: None,
        }),
        None => Ok(()),
    }
}
