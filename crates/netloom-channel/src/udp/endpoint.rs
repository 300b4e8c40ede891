//! [`UdpBootstrap`] binds a [`UdpEndpoint`]: one socket whose peers are channels.
use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::sync::mpsc;

use super::driver::{Control, Driver, EndpointShared};
use super::{UdpConfig, UdpStats};
use crate::tracking::{Acceptor, Verdict, Wrapper, wrap_listening};
use crate::{Channel, ChannelError, CloseFuture, EventLoop, EventLoopGroup, LoopFuture, Pipeline};

/// Binds a UDP endpoint: one socket on one event loop, each remote address a channel with
/// its own pipeline.
///
/// ```no_run
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use netloom_channel::{EchoHandler, EventLoopGroup, udp::UdpBootstrap};
/// let group = EventLoopGroup::new(1, "udp")?;
/// let endpoint = UdpBootstrap::new(&group)
///     .handler(|p| { p.add_last("echo", EchoHandler)?; Ok(()) })
///     .bind("127.0.0.1:0".parse().unwrap())
///     .sync()?;
/// println!("echoing on {}", endpoint.local_addr());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct UdpBootstrap {
    event_loop: EventLoop,
    config: UdpConfig,
    acceptor: Option<Arc<dyn Acceptor>>,
    wrapper: Option<Arc<dyn Wrapper>>,
}

impl UdpBootstrap {
    /// A bootstrap on the group's next loop, with the default [`UdpConfig`] and no
    /// acceptor (datagrams from unknown peers are dropped; `connect` still works).
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "udp").unwrap();
    /// let b = netloom_channel::udp::UdpBootstrap::new(&group);
    /// ```
    pub fn new(group: &EventLoopGroup) -> UdpBootstrap {
        UdpBootstrap {
            event_loop: group.next(),
            config: UdpConfig::default(),
            acceptor: None,
            wrapper: None,
        }
    }

    /// Limits and policies.
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "udp").unwrap();
    /// use netloom_channel::udp::{UdpBootstrap, UdpConfig};
    /// let b = UdpBootstrap::new(&group).config(UdpConfig { max_peers: 10, ..UdpConfig::default() });
    /// ```
    pub fn config(mut self, config: UdpConfig) -> UdpBootstrap {
        self.config = config;
        self
    }

    /// Decides about each new peer (see [`Acceptor`]).
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "udp").unwrap();
    /// use netloom_channel::{EchoHandler, tracking::{NewPeer, Verdict}, udp::UdpBootstrap};
    /// let b = UdpBootstrap::new(&group).acceptor(|_: &mut NewPeer<'_>| Verdict::app(EchoHandler));
    /// ```
    pub fn acceptor(mut self, acceptor: impl Acceptor) -> UdpBootstrap {
        self.acceptor = Some(Arc::new(acceptor));
        self
    }

    /// Like [`acceptor`](UdpBootstrap::acceptor), with an acceptor already shared.
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "udp").unwrap();
    /// use std::sync::Arc;
    /// use netloom_channel::{EchoHandler, tracking::{Acceptor, NewPeer, Verdict}, udp::UdpBootstrap};
    /// let a: Arc<dyn Acceptor> = Arc::new(|_: &mut NewPeer<'_>| Verdict::app(EchoHandler));
    /// let b = UdpBootstrap::new(&group).shared_acceptor(Some(a));
    /// ```
    pub fn shared_acceptor(mut self, acceptor: Option<Arc<dyn Acceptor>>) -> UdpBootstrap {
        self.acceptor = acceptor;
        self
    }

    /// Accepts every peer and builds its pipeline with `init` (as
    /// `ServerBootstrap::child_handler` does for TCP).
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "udp").unwrap();
    /// use netloom_channel::{EchoHandler, udp::UdpBootstrap};
    /// let b = UdpBootstrap::new(&group).handler(|p| { p.add_last("echo", EchoHandler)?; Ok(()) });
    /// ```
    pub fn handler(
        self,
        init: impl Fn(&mut Pipeline) -> Result<(), ChannelError> + Send + Sync + 'static,
    ) -> UdpBootstrap {
        let init = Arc::new(init);
        self.acceptor(move |_: &mut crate::tracking::NewPeer<'_>| {
            let init = init.clone();
            Verdict::init(move |p| init(p))
        })
    }

    /// Applied to the socket after it is created and before it is bound
    /// ([`SocketRole::Listening`](crate::tracking::SocketRole::Listening)).
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "udp").unwrap();
    /// use netloom_channel::{ChannelError, tracking::WrapSocket, udp::UdpBootstrap};
    /// let b = UdpBootstrap::new(&group).wrapper(|s: &mut WrapSocket<'_>| {
    ///     s.socket().set_reuse_address(true).map_err(|e| ChannelError::InvalidOption { name: "SO_REUSEADDR", reason: e.to_string() })
    /// });
    /// ```
    pub fn wrapper(mut self, wrapper: impl Wrapper) -> UdpBootstrap {
        self.wrapper = Some(Arc::new(wrapper));
        self
    }

    /// Like [`wrapper`](UdpBootstrap::wrapper), with a wrapper already shared.
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "udp").unwrap();
    /// let b = netloom_channel::udp::UdpBootstrap::new(&group).shared_wrapper(None);
    /// ```
    pub fn shared_wrapper(mut self, wrapper: Option<Arc<dyn Wrapper>>) -> UdpBootstrap {
        self.wrapper = wrapper;
        self
    }

    /// Binds the socket (IPv4 or IPv6; port 0 picks a free port) and starts serving.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// # let group = netloom_channel::EventLoopGroup::new(1, "udp")?;
    /// let ep = netloom_channel::udp::UdpBootstrap::new(&group).bind("[::1]:0".parse().unwrap()).sync()?;
    /// assert!(ep.local_addr().is_ipv6());
    /// ep.close();
    /// # Ok(()) }
    /// ```
    pub fn bind(&self, addr: SocketAddr) -> LoopFuture<UdpEndpoint> {
        if let Err(e) = self.config.validate() {
            return LoopFuture::ready(Err(e));
        }
        let (tx, reply) = LoopFuture::pending();
        let this = self.clone();
        let job = move || {
            let result = this.bind_here(addr);
            let _ = tx.send(result);
        };
        match self.event_loop.execute(job) {
            Ok(()) => reply,
            Err(e) => LoopFuture::ready(Err(e)),
        }
    }

    /// Binds on the calling event loop thread.
    fn bind_here(self, addr: SocketAddr) -> Result<UdpEndpoint, ChannelError> {
        let bind_err = |source| ChannelError::Bind {
            addr: addr.to_string(),
            source,
        };
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
            .map_err(bind_err)?;
        if let Some(n) = self.config.channel.recv_buffer_size {
            socket.set_recv_buffer_size(n).map_err(bind_err)?;
        }
        if let Some(n) = self.config.channel.send_buffer_size {
            socket.set_send_buffer_size(n).map_err(bind_err)?;
        }
        wrap_listening(self.wrapper.as_ref(), "udp", SockRef::from(&socket))?;
        socket.set_nonblocking(true).map_err(bind_err)?;
        socket.bind(&addr.into()).map_err(bind_err)?;
        let socket = tokio::net::UdpSocket::from_std(socket.into()).map_err(bind_err)?;
        let local = socket.local_addr().map_err(bind_err)?;
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let shared = EndpointShared::new(local, control_tx);
        let driver = Driver::new(
            socket,
            shared.clone(),
            control_rx,
            self.config,
            self.acceptor,
            self.event_loop,
        );
        tokio::task::spawn_local(driver);
        Ok(UdpEndpoint(shared))
    }
}

/// A bound UDP socket whose remote peers are tracked as channels. Cloning is cheap; every
/// method may be called from any thread.
///
/// Each new remote address becomes a channel with its own pipeline: `channel_registered`
/// and `channel_active` before its first datagram, one `channel_read` per datagram (one
/// frame, unless the acceptor set a framer), `channel_inactive` when it expires, is evicted,
/// or is closed. Writes are sent one message per datagram.
///
/// ```no_run
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use bytes::Bytes;
/// use netloom_channel::{EchoHandler, EventLoopGroup, tracking::{NewPeer, Verdict}, udp::UdpBootstrap};
/// let group = EventLoopGroup::new(1, "udp")?;
/// let client = UdpBootstrap::new(&group).bind("127.0.0.1:0".parse().unwrap()).sync()?;
/// let ch = client.connect("127.0.0.1:7000".parse().unwrap(), |_: &mut NewPeer<'_>| Verdict::app(EchoHandler)).sync()?;
/// ch.write_and_flush(Bytes::from_static(b"ping"))?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct UdpEndpoint(Arc<EndpointShared>);

impl UdpEndpoint {
    /// The bound address.
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "udp").unwrap();
    /// let ep = netloom_channel::udp::UdpBootstrap::new(&group).bind("127.0.0.1:0".parse().unwrap()).sync().unwrap();
    /// assert_ne!(ep.local_addr().port(), 0);
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local
    }

    /// Tracks `remote` as an outgoing peer whose pipeline `acceptor` builds; returns its
    /// channel, active at once (an already tracked peer's channel is returned as is). At
    /// `max_peers` the eviction policy applies (`ChannelError::PeerLimit` with `RejectNew`).
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// # let group = netloom_channel::EventLoopGroup::new(1, "udp")?;
    /// use netloom_channel::{EchoHandler, tracking::{NewPeer, Verdict}, udp::UdpBootstrap};
    /// let ep = UdpBootstrap::new(&group).bind("127.0.0.1:0".parse().unwrap()).sync()?;
    /// let ch = ep.connect("127.0.0.1:9".parse().unwrap(), |_: &mut NewPeer<'_>| Verdict::app(EchoHandler)).sync()?;
    /// assert!(ch.is_active());
    /// # Ok(()) }
    /// ```
    pub fn connect(&self, remote: SocketAddr, acceptor: impl Acceptor) -> LoopFuture<Channel> {
        self.connect_with(remote, Arc::new(acceptor), None)
    }

    /// [`connect`](UdpEndpoint::connect) with a shared acceptor and a wrapper applied to the
    /// new peer ([`SocketRole::Outgoing`](crate::tracking::SocketRole::Outgoing)).
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// # let group = netloom_channel::EventLoopGroup::new(1, "udp")?;
    /// use std::sync::Arc;
    /// use netloom_channel::{EchoHandler, tracking::{NewPeer, Verdict}, udp::UdpBootstrap};
    /// let ep = UdpBootstrap::new(&group).bind("127.0.0.1:0".parse().unwrap()).sync()?;
    /// let ch = ep.connect_with("127.0.0.1:9".parse().unwrap(), Arc::new(|_: &mut NewPeer<'_>| Verdict::app(EchoHandler)), None).sync()?;
    /// # Ok(()) }
    /// ```
    pub fn connect_with(
        &self,
        remote: SocketAddr,
        acceptor: Arc<dyn Acceptor>,
        wrapper: Option<Arc<dyn Wrapper>>,
    ) -> LoopFuture<Channel> {
        let (tx, reply) = LoopFuture::pending();
        self.request(
            Control::Connect {
                remote,
                acceptor,
                wrapper,
                reply: tx,
            },
            reply,
        )
    }

    /// The live channel of a tracked peer.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// # let group = netloom_channel::EventLoopGroup::new(1, "udp")?;
    /// let ep = netloom_channel::udp::UdpBootstrap::new(&group).bind("127.0.0.1:0".parse().unwrap()).sync()?;
    /// assert!(ep.find("127.0.0.1:9".parse().unwrap()).sync()?.is_none());
    /// # Ok(()) }
    /// ```
    pub fn find(&self, remote: SocketAddr) -> LoopFuture<Option<Channel>> {
        let (tx, reply) = LoopFuture::pending();
        self.request(Control::Find { remote, reply: tx }, reply)
    }

    fn request<T>(&self, control: Control, reply: LoopFuture<T>) -> LoopFuture<T> {
        if self.0.closed.is_signalled() || self.0.control.send(control).is_err() {
            return LoopFuture::ready(Err(ChannelError::ChannelClosed(format!(
                "udp endpoint {}",
                self.0.local
            ))));
        }
        reply
    }

    /// Counters: peers tracked, accepted, rejected, evicted, expired, datagrams...
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "udp").unwrap();
    /// let ep = netloom_channel::udp::UdpBootstrap::new(&group).bind("127.0.0.1:0".parse().unwrap()).sync().unwrap();
    /// assert_eq!(ep.stats().peers, 0);
    /// ```
    pub fn stats(&self) -> UdpStats {
        self.0.counters.snapshot()
    }

    /// Closes every peer (`channel_inactive`), then the socket.
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "udp").unwrap();
    /// let ep = netloom_channel::udp::UdpBootstrap::new(&group).bind("127.0.0.1:0".parse().unwrap()).sync().unwrap();
    /// ep.close();
    /// ep.close_future().sync().unwrap();
    /// assert!(!ep.is_open());
    /// ```
    pub fn close(&self) {
        let _ = self.0.control.send(Control::Close);
    }

    /// Not closed yet.
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "udp").unwrap();
    /// let ep = netloom_channel::udp::UdpBootstrap::new(&group).bind("127.0.0.1:0".parse().unwrap()).sync().unwrap();
    /// assert!(ep.is_open());
    /// ```
    pub fn is_open(&self) -> bool {
        !self.0.closed.is_signalled()
    }

    /// Completes when the endpoint is closed.
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "udp").unwrap();
    /// let ep = netloom_channel::udp::UdpBootstrap::new(&group).bind("127.0.0.1:0".parse().unwrap()).sync().unwrap();
    /// let done = ep.close_future();
    /// ep.close();
    /// done.sync().unwrap();
    /// ```
    pub fn close_future(&self) -> CloseFuture {
        CloseFuture(self.0.closed.clone())
    }
}
