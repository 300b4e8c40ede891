//! The `"udp"` protocol: a manager over one [`UdpEndpoint`].
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::tracking::manager::state_error;
use crate::tracking::{Acceptor, Manager, ManagerStats, Protocol, Wrapper};
use crate::udp::{UdpBootstrap, UdpConfig, UdpEndpoint};
use crate::{Channel, ChannelError, EventLoopGroup, LoopFuture};

/// The `"udp"` plug-in: managers whose connections are tracked UDP peers, with the limits
/// of a [`UdpConfig`].
///
/// ```
/// use netloom_channel::{tracking::{Protocol, UdpProtocol}, udp::UdpConfig};
/// let p = UdpProtocol::new(UdpConfig { max_peers: 1000, ..UdpConfig::default() });
/// assert_eq!(p.name(), "udp");
/// ```
#[derive(Debug, Clone, Default)]
pub struct UdpProtocol {
    config: UdpConfig,
}

impl UdpProtocol {
    /// Managers made by this plug-in use `config`.
    ///
    /// ```
    /// let p = netloom_channel::tracking::UdpProtocol::new(Default::default());
    /// ```
    pub fn new(config: UdpConfig) -> UdpProtocol {
        UdpProtocol { config }
    }
}

impl Protocol for UdpProtocol {
    fn name(&self) -> &str {
        "udp"
    }

    fn manager(
        &self,
        group: &EventLoopGroup,
        local: SocketAddr,
    ) -> Result<Arc<dyn Manager>, ChannelError> {
        self.config.validate()?;
        Ok(Arc::new(UdpManager {
            group: group.clone(),
            requested: local,
            config: self.config.clone(),
            endpoint: Arc::new(Mutex::new(None)),
            past: Mutex::new(ManagerStats::default()),
        }))
    }
}

struct UdpManager {
    group: EventLoopGroup,
    requested: SocketAddr,
    config: UdpConfig,
    endpoint: Arc<Mutex<Option<UdpEndpoint>>>,
    /// Counts of endpoints that were stopped (a restart binds a new endpoint).
    past: Mutex<ManagerStats>,
}

impl UdpManager {
    fn running(&self) -> Option<UdpEndpoint> {
        let ep = self.endpoint.lock().unwrap_or_else(|e| e.into_inner());
        ep.clone().filter(UdpEndpoint::is_open)
    }
}

impl Manager for UdpManager {
    fn protocol(&self) -> &str {
        "udp"
    }

    fn local_addr(&self) -> SocketAddr {
        self.running().map_or(self.requested, |ep| ep.local_addr())
    }

    fn is_running(&self) -> bool {
        self.running().is_some()
    }

    fn start(
        &self,
        acceptor: Option<Arc<dyn Acceptor>>,
        wrapper: Option<Arc<dyn Wrapper>>,
    ) -> LoopFuture<SocketAddr> {
        if self.is_running() {
            return LoopFuture::ready(Err(state_error("udp", self.requested, "already running")));
        }
        let bind = UdpBootstrap::new(&self.group)
            .config(self.config.clone())
            .shared_acceptor(acceptor)
            .shared_wrapper(wrapper)
            .bind(self.requested);
        let slot = self.endpoint.clone();
        LoopFuture::spawn(&self.group.next(), async move {
            let ep = bind.await?;
            let local = ep.local_addr();
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(ep);
            Ok(local)
        })
    }

    fn connect(
        &self,
        target: SocketAddr,
        acceptor: Arc<dyn Acceptor>,
        wrapper: Option<Arc<dyn Wrapper>>,
    ) -> LoopFuture<Channel> {
        match self.running() {
            Some(ep) => ep.connect_with(target, acceptor, wrapper),
            None => LoopFuture::ready(Err(state_error("udp", self.requested, "not running"))),
        }
    }

    fn find(&self, local: SocketAddr, remote: SocketAddr) -> LoopFuture<Option<Channel>> {
        match self.running() {
            Some(ep) if ep.local_addr() == local => ep.find(remote),
            _ => LoopFuture::ready(Ok(None)),
        }
    }

    fn connections(&self) -> usize {
        self.running().map_or(0, |ep| ep.stats().peers as usize)
    }

    fn stats(&self) -> ManagerStats {
        let past = *self.past.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.running().map(|ep| ep.stats()).unwrap_or_default();
        ManagerStats {
            connections: now.peers,
            accepted: past.accepted + now.accepted,
            rejected: past.rejected + now.rejected,
        }
    }

    fn stop(&self) -> LoopFuture<()> {
        let Some(ep) = self
            .endpoint
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return LoopFuture::ready(Ok(()));
        };
        {
            let s = ep.stats();
            let mut past = self.past.lock().unwrap_or_else(|e| e.into_inner());
            past.accepted += s.accepted;
            past.rejected += s.rejected;
        }
        ep.close();
        LoopFuture::spawn(&self.group.next(), async move {
            ep.close_future().await;
            Ok(())
        })
    }
}
