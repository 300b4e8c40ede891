//! Acceptors: decide what application serves each new peer, TCP or UDP.
use std::net::SocketAddr;

use netloom_codec::Framer;
use socket2::SockRef;

use crate::tracking::{SocketRole, WrapSocket, Wrapper};
use crate::{ChannelError, FramingHandler, Handler, Pipeline};

/// Builds the application's part of a pipeline (Tendril: the `Application` instance).
///
/// ```
/// use netloom_channel::{EchoHandler, tracking::AppInit};
/// let init: AppInit = Box::new(|p| { p.add_last("echo", EchoHandler)?; Ok(()) });
/// ```
pub type AppInit = Box<dyn FnOnce(&mut Pipeline) -> Result<(), ChannelError>>;

/// An acceptor's decision about a new peer.
///
/// ```
/// use netloom_channel::{EchoHandler, tracking::Verdict};
/// let accept = Verdict::app(EchoHandler);
/// let reject = Verdict::reject("not on the allow list");
/// assert!(matches!(reject, Verdict::Reject(_)));
/// # let _ = accept;
/// ```
pub enum Verdict {
    /// Serve the peer; the closure adds the application's handlers at the end of the
    /// pipeline.
    Accept(AppInit),
    /// Drop the peer (a TCP connection is closed, a UDP peer's datagram is discarded); the
    /// manager counts it. The reason is logged.
    Reject(String),
}

impl Verdict {
    /// Accepts with one application handler, added last under the name `"app"`.
    ///
    /// ```
    /// use netloom_channel::{EchoHandler, tracking::Verdict};
    /// assert!(matches!(Verdict::app(EchoHandler), Verdict::Accept(_)));
    /// ```
    pub fn app(handler: impl Handler) -> Verdict {
        Verdict::Accept(Box::new(move |p| {
            p.add_last("app", handler)?;
            Ok(())
        }))
    }

    /// Accepts with a pipeline initializer of its own.
    ///
    /// ```
    /// use netloom_channel::{EchoHandler, tracking::Verdict};
    /// let v = Verdict::init(|p| { p.add_last("echo", EchoHandler)?; Ok(()) });
    /// assert!(matches!(v, Verdict::Accept(_)));
    /// ```
    pub fn init(f: impl FnOnce(&mut Pipeline) -> Result<(), ChannelError> + 'static) -> Verdict {
        Verdict::Accept(Box::new(f))
    }

    /// Rejects the peer.
    ///
    /// ```
    /// use netloom_channel::tracking::Verdict;
    /// assert!(matches!(Verdict::reject("full"), Verdict::Reject(r) if r == "full"));
    /// ```
    pub fn reject(reason: impl Into<String>) -> Verdict {
        Verdict::Reject(reason.into())
    }
}

/// Decides, for each new peer, which application serves it (Tendril's acceptor). Runs on
/// the peer's event loop thread before the channel becomes active; it may set framers,
/// apply wrappers, add handlers, or reject. Closures `Fn(&mut NewPeer) -> Verdict` are
/// acceptors.
///
/// ```
/// use netloom_channel::{EchoHandler, tracking::{Acceptor, NewPeer, Verdict}};
///
/// /// Echoes for loopback peers, rejects everyone else.
/// fn loopback_only(peer: &mut NewPeer<'_>) -> Verdict {
///     if peer.remote_addr().ip().is_loopback() { Verdict::app(EchoHandler) } else { Verdict::reject("not loopback") }
/// }
/// fn takes(_: impl Acceptor) {}
/// takes(loopback_only);
/// ```
pub trait Acceptor: Send + Sync + 'static {
    /// Decides about one new peer.
    fn accept(&self, peer: &mut NewPeer<'_>) -> Verdict;
}

impl<F> Acceptor for F
where
    F: Fn(&mut NewPeer<'_>) -> Verdict + Send + Sync + 'static,
{
    fn accept(&self, peer: &mut NewPeer<'_>) -> Verdict {
        self(peer)
    }
}

/// A new peer as its acceptor sees it: addresses, the pipeline under construction, framers
/// and wrappers.
///
/// ```
/// use netloom_channel::tracking::{NewPeer, Verdict};
/// use netloom_channel::EchoHandler;
/// use netloom_codec::Framer;
///
/// fn acceptor(peer: &mut NewPeer<'_>) -> Verdict {
///     if peer.protocol() == "tcp" {
///         // A byte stream needs framing; a UDP datagram is already one message.
///         peer.set_framer(Framer::from_name("length-field:u32be").unwrap());
///     }
///     Verdict::app(EchoHandler)
/// }
/// ```
pub struct NewPeer<'a> {
    pub(crate) protocol: &'a str,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) role: SocketRole,
    pub(crate) socket: SockRef<'a>,
    pub(crate) pipeline: &'a mut Pipeline,
    pub(crate) framers: Option<(Framer, Framer)>,
    /// The last handler (in pipeline order) a wrapper added: the framer goes after it.
    pub(crate) last_wrapped: Option<String>,
}

impl<'a> NewPeer<'a> {
    /// `"tcp"`, `"udp"`, or a plug-in protocol's name.
    ///
    /// ```
    /// # use netloom_channel::tracking::NewPeer;
    /// fn is_udp(p: &NewPeer<'_>) -> bool { p.protocol() == "udp" }
    /// ```
    pub fn protocol(&self) -> &str {
        self.protocol
    }

    /// The local endpoint.
    ///
    /// ```
    /// # use netloom_channel::tracking::NewPeer;
    /// fn port(p: &NewPeer<'_>) -> u16 { p.local_addr().port() }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The remote endpoint.
    ///
    /// ```
    /// # use netloom_channel::tracking::NewPeer;
    /// fn v6(p: &NewPeer<'_>) -> bool { p.remote_addr().is_ipv6() }
    /// ```
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// Whether this is an outgoing connection (from `Manager::connect`) rather than one
    /// the manager accepted.
    ///
    /// ```
    /// # use netloom_channel::tracking::NewPeer;
    /// fn outgoing(p: &NewPeer<'_>) -> bool { p.is_outgoing() }
    /// ```
    pub fn is_outgoing(&self) -> bool {
        self.role == SocketRole::Outgoing
    }

    /// The pipeline being built (add handlers before the application's).
    ///
    /// ```
    /// # use netloom_channel::tracking::NewPeer;
    /// # use netloom_channel::IdleStateHandler;
    /// # use std::time::Duration;
    /// fn add_idle(p: &mut NewPeer<'_>) -> Result<(), netloom_channel::ChannelError> {
    ///     p.pipeline().add_last("idle", IdleStateHandler::new(Duration::from_secs(5), Duration::ZERO, Duration::ZERO))?;
    ///     Ok(())
    /// }
    /// ```
    pub fn pipeline(&mut self) -> &mut Pipeline {
        self.pipeline
    }

    /// Frames both directions with `framer` (a `FramingHandler` named `"framer"` at the
    /// transport end, after any handler a wrapper added). Without a framer, each read (TCP)
    /// or datagram (UDP) is one frame.
    ///
    /// ```
    /// # use netloom_channel::tracking::NewPeer;
    /// fn lines(p: &mut NewPeer<'_>) { p.set_framer(netloom_codec::Framer::from_name("lines").unwrap()); }
    /// ```
    pub fn set_framer(&mut self, framer: Framer) {
        self.framers = Some((framer.clone(), framer));
    }

    /// Frames received bytes with `recv` and sent frames with `send`.
    ///
    /// ```
    /// # use netloom_channel::tracking::NewPeer;
    /// use netloom_codec::Framer;
    /// fn split(p: &mut NewPeer<'_>) {
    ///     p.set_framers(Framer::from_name("lines").unwrap(), Framer::from_name("netstring").unwrap());
    /// }
    /// ```
    pub fn set_framers(&mut self, recv: Framer, send: Framer) {
        self.framers = Some((recv, send));
    }

    /// Applies a wrapper to this connection's socket and pipeline now (see [`Wrapper`]).
    /// Handlers it adds (TLS) stay in front of the framer. On a UDP peer the socket is shared
    /// by all peers of the manager.
    ///
    /// ```
    /// # use netloom_channel::tracking::{NewPeer, WrapperChain};
    /// fn wrap(p: &mut NewPeer<'_>, chain: &WrapperChain) -> Result<(), netloom_channel::ChannelError> {
    ///     p.wrap(chain)
    /// }
    /// ```
    pub fn wrap(&mut self, wrapper: &dyn Wrapper) -> Result<(), ChannelError> {
        let before: Vec<String> = self
            .pipeline
            .names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        wrapper.wrap(&mut WrapSocket {
            role: self.role,
            protocol: self.protocol,
            socket: SockRef::from(&*self.socket),
            pipeline: Some(&mut *self.pipeline),
        })?;
        let added = self
            .pipeline
            .names()
            .into_iter()
            .rev()
            .find(|n| !before.iter().any(|b| b == n))
            .map(str::to_owned);
        if added.is_some() {
            self.last_wrapped = added;
        }
        Ok(())
    }
}

/// Runs `acceptor` (and `wrapper`, for outgoing connections) for a new peer and builds its
/// pipeline: framer first, then what the acceptor added, then the application.
pub(crate) fn admit(
    acceptor: &dyn Acceptor,
    wrapper: Option<&dyn Wrapper>,
    mut peer: NewPeer<'_>,
) -> Result<(), ChannelError> {
    if let Some(w) = wrapper {
        peer.wrap(w)?;
    }
    match acceptor.accept(&mut peer) {
        Verdict::Accept(init) => {
            if let Some((recv, send)) = peer.framers.take() {
                let framer = FramingHandler::<Framer, Framer>::new(recv, send);
                // Wrapper layers (TLS) stay at the transport end, before the framer.
                match peer.last_wrapped.take() {
                    Some(layer) => peer.pipeline.add_after(&layer, "framer", framer)?,
                    None => peer.pipeline.add_first("framer", framer)?,
                };
            }

            init(peer.pipeline)
        }
        Verdict::Reject(reason) => Err(ChannelError::PeerRejected {
            peer: peer.remote.to_string(),
            reason,
        }),
    }
}
