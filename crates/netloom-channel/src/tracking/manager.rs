//! Managers (one per protocol and local endpoint) and the registry of protocol plug-ins.
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use crate::tracking::{Acceptor, TcpProtocol, UdpProtocol, Wrapper};
use crate::{Channel, ChannelError, EventLoopGroup, LoopFuture};

/// Accepts and makes connections of one protocol on one local endpoint, and tracks them
/// (Tendril's `TendrilManager`). Get one from a [`Registry`].
///
/// - [`start`](Manager::start) with an acceptor listens (TCP) or takes new peers (UDP);
///   without one it only makes outgoing connections. Starting binds the local endpoint
///   (port 0 picks one) and returns the bound address.
/// - [`connect`](Manager::connect) makes an outgoing connection whose pipeline the acceptor
///   builds (for UDP: a tracked peer on the manager's socket).
/// - [`find`](Manager::find) returns a live connection by local and remote address.
/// - [`stop`](Manager::stop) really stops: the listener or socket is closed and every
///   connection closed; the manager can be started again.
///
/// ```no_run
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use std::sync::Arc;
/// use netloom_channel::{EchoHandler, EventLoopGroup, tracking::{NewPeer, Registry, Verdict}};
/// let group = EventLoopGroup::new(2, "io")?;
/// let registry = Registry::new(&group);
/// let tcp = registry.manager("tcp", "127.0.0.1:7000".parse().unwrap())?;
/// tcp.start(Some(Arc::new(|_: &mut NewPeer<'_>| Verdict::app(EchoHandler))), None).sync()?;
/// println!("{} connections", tcp.connections());
/// tcp.stop().sync()?;
/// # Ok(()) }
/// ```
pub trait Manager: Send + Sync + 'static {
    /// The protocol's name (`"tcp"`, `"udp"`, ...).
    fn protocol(&self) -> &str;

    /// The bound local address while running, else the one asked for.
    fn local_addr(&self) -> SocketAddr;

    /// Whether the manager is started.
    fn is_running(&self) -> bool;

    /// Starts: binds the local endpoint; with an acceptor, accepts connections or peers.
    /// The wrapper applies to the listening (TCP) or shared (UDP) socket. Fails with
    /// `ChannelError::ManagerState` if already running.
    fn start(
        &self,
        acceptor: Option<Arc<dyn Acceptor>>,
        wrapper: Option<Arc<dyn Wrapper>>,
    ) -> LoopFuture<SocketAddr>;

    /// Connects to `target`; `acceptor` builds the connection's pipeline and `wrapper`
    /// applies to the outgoing connection. The manager must be running.
    fn connect(
        &self,
        target: SocketAddr,
        acceptor: Arc<dyn Acceptor>,
        wrapper: Option<Arc<dyn Wrapper>>,
    ) -> LoopFuture<Channel>;

    /// The live connection between `local` and `remote`, if this manager tracks it.
    fn find(&self, local: SocketAddr, remote: SocketAddr) -> LoopFuture<Option<Channel>>;

    /// How many connections are tracked now.
    fn connections(&self) -> usize;

    /// What the manager has admitted and rejected so far.
    fn stats(&self) -> ManagerStats;

    /// Stops for real: closes the listener or socket and every connection; completes when
    /// all are closed. Stopping a stopped manager does nothing.
    fn stop(&self) -> LoopFuture<()>;
}

/// Counters of a [`Manager`] since it was made.
///
/// ```
/// let s = netloom_channel::tracking::ManagerStats::default();
/// assert_eq!(s.rejected, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ManagerStats {
    /// Connections tracked now.
    pub connections: u64,
    /// Connections (or peers) an acceptor admitted, inbound and outgoing.
    pub accepted: u64,
    /// Connections (or peers) an acceptor rejected; they were dropped.
    pub rejected: u64,
}

/// A protocol plug-in: makes managers for its protocol (Tendril's `tendril.manager` entry
/// points). Register with [`Registry::register`].
///
/// ```
/// use std::net::SocketAddr;
/// use std::sync::Arc;
/// use netloom_channel::{ChannelError, EventLoopGroup};
/// use netloom_channel::tracking::{Manager, Protocol, Registry, UdpProtocol};
///
/// /// "udp-lowlimit": UDP with at most 16 peers per manager.
/// struct SmallUdp;
/// impl Protocol for SmallUdp {
///     fn name(&self) -> &str { "udp-lowlimit" }
///     fn manager(&self, group: &EventLoopGroup, local: SocketAddr) -> Result<Arc<dyn Manager>, ChannelError> {
///         let config = netloom_channel::udp::UdpConfig { max_peers: 16, ..Default::default() };
///         UdpProtocol::new(config).manager(group, local)
///     }
/// }
/// let group = EventLoopGroup::new(1, "io").unwrap();
/// let registry = Registry::new(&group);
/// registry.register(SmallUdp);
/// assert!(registry.protocols().contains(&"udp-lowlimit".to_string()));
/// ```
pub trait Protocol: Send + Sync + 'static {
    /// The name managers are asked for by.
    fn name(&self) -> &str;

    /// A new, stopped manager for `local`.
    fn manager(
        &self,
        group: &EventLoopGroup,
        local: SocketAddr,
    ) -> Result<Arc<dyn Manager>, ChannelError>;
}

/// Managers by protocol and local endpoint, and the protocols that make them. `"tcp"` and
/// `"udp"` are built in; [`register`](Registry::register) adds plug-ins.
///
/// ```
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use netloom_channel::{EventLoopGroup, tracking::Registry};
/// let group = EventLoopGroup::new(1, "io")?;
/// let registry = Registry::new(&group);
/// let a = registry.manager("udp", "127.0.0.1:0".parse().unwrap())?;
/// let b = registry.manager("udp", "127.0.0.1:0".parse().unwrap())?;
/// assert!(std::sync::Arc::ptr_eq(&a, &b)); // one manager per (protocol, local endpoint)
/// assert!(registry.manager("sctp", "127.0.0.1:0".parse().unwrap()).is_err());
/// # Ok(()) }
/// ```
pub struct Registry {
    group: EventLoopGroup,
    protocols: RwLock<BTreeMap<String, Arc<dyn Protocol>>>,
    managers: Mutex<HashMap<(String, SocketAddr), Arc<dyn Manager>>>,
}

impl Registry {
    /// A registry whose managers run on `group`, with `"tcp"` and `"udp"` registered
    /// (default options and limits).
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "io").unwrap();
    /// let r = netloom_channel::tracking::Registry::new(&group);
    /// assert_eq!(r.protocols(), ["tcp", "udp"]);
    /// ```
    pub fn new(group: &EventLoopGroup) -> Registry {
        let registry = Registry {
            group: group.clone(),
            protocols: RwLock::new(BTreeMap::new()),
            managers: Mutex::new(HashMap::new()),
        };
        registry.register(TcpProtocol::default());
        registry.register(UdpProtocol::default());
        registry
    }

    /// Adds a protocol plug-in (replacing one of the same name for managers made from now on).
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "io").unwrap();
    /// use netloom_channel::{udp::UdpConfig, tracking::{Registry, UdpProtocol}};
    /// let r = Registry::new(&group);
    /// r.register(UdpProtocol::new(UdpConfig { max_peers: 100, ..UdpConfig::default() }));
    /// ```
    pub fn register(&self, protocol: impl Protocol) {
        let mut protocols = self.protocols.write().unwrap_or_else(|e| e.into_inner());
        protocols.insert(protocol.name().to_owned(), Arc::new(protocol));
    }

    /// The registered protocol names, sorted.
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "io").unwrap();
    /// assert!(netloom_channel::tracking::Registry::new(&group).protocols().contains(&"tcp".to_string()));
    /// ```
    pub fn protocols(&self) -> Vec<String> {
        let protocols = self.protocols.read().unwrap_or_else(|e| e.into_inner());
        protocols.keys().cloned().collect()
    }

    /// The manager for `protocol` on `local` (IPv4 or IPv6), made on first use; it is not
    /// started. Fails with `ChannelError::UnknownProtocol` for an unregistered protocol.
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "io").unwrap();
    /// let r = netloom_channel::tracking::Registry::new(&group);
    /// let m = r.manager("tcp", "[::1]:0".parse().unwrap()).unwrap();
    /// assert!(!m.is_running());
    /// ```
    pub fn manager(
        &self,
        protocol: &str,
        local: SocketAddr,
    ) -> Result<Arc<dyn Manager>, ChannelError> {
        let key = (protocol.to_owned(), local);
        let mut managers = self.managers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = managers.get(&key) {
            return Ok(m.clone());
        }
        let factory = {
            let protocols = self.protocols.read().unwrap_or_else(|e| e.into_inner());
            protocols
                .get(protocol)
                .cloned()
                .ok_or_else(|| ChannelError::UnknownProtocol {
                    protocol: protocol.to_owned(),
                    known: protocols.keys().cloned().collect::<Vec<_>>().join(", "),
                })?
        };
        let manager = factory.manager(&self.group, local)?;
        managers.insert(key, manager.clone());
        Ok(manager)
    }

    /// The live connection of `protocol` between `local` and `remote`, from whichever
    /// manager tracks it.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// # let group = netloom_channel::EventLoopGroup::new(1, "io")?;
    /// let r = netloom_channel::tracking::Registry::new(&group);
    /// let found = r.find("udp", "127.0.0.1:7000".parse().unwrap(), "127.0.0.1:40000".parse().unwrap()).sync()?;
    /// # Ok(()) }
    /// ```
    pub fn find(
        &self,
        protocol: &str,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> LoopFuture<Option<Channel>> {
        let candidates: Vec<Arc<dyn Manager>> = {
            let managers = self.managers.lock().unwrap_or_else(|e| e.into_inner());
            managers
                .iter()
                .filter(|((p, _), m)| p == protocol && m.is_running())
                .map(|(_, m)| m.clone())
                .collect()
        };
        LoopFuture::spawn(&self.group.next(), async move {
            for m in candidates {
                if let Some(ch) = m.find(local, remote).await? {
                    return Ok(Some(ch));
                }
            }
            Ok(None)
        })
    }

    /// Stops every manager.
    ///
    /// ```
    /// # let group = netloom_channel::EventLoopGroup::new(1, "io").unwrap();
    /// netloom_channel::tracking::Registry::new(&group).stop_all().sync().unwrap();
    /// ```
    pub fn stop_all(&self) -> LoopFuture<()> {
        let all: Vec<Arc<dyn Manager>> = {
            let managers = self.managers.lock().unwrap_or_else(|e| e.into_inner());
            managers.values().cloned().collect()
        };
        LoopFuture::spawn(&self.group.next(), async move {
            for m in all {
                m.stop().await?;
            }
            Ok(())
        })
    }
}

/// The error for an operation in the wrong state.
pub(crate) fn state_error(protocol: &str, local: SocketAddr, what: &'static str) -> ChannelError {
    ChannelError::ManagerState {
        protocol: protocol.to_owned(),
        local: local.to_string(),
        what,
    }
}
