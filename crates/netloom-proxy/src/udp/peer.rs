//! The two handlers of a proxied UDP peer: one on the client's peer channel (on the listen
//! endpoint), one on the peer channel of its own upstream endpoint. Each reads datagrams
//! from its side, runs them through its direction's [`UdpLink`] and sends what the link
//! releases to the other side, one datagram for one datagram.
//!
//! Lifetime: the client peer drives it. It is created by the first datagram of a new client
//! address, expires after `udp.idle_timeout_ms` without a datagram either way (netloom's UDP
//! tracking), and closing it closes its upstream endpoint. If the upstream endpoint goes
//! first, the client peer is closed too. No backpressure exists for datagrams: a queue over
//! `udp.max_queued_bytes`, or a socket buffer that is full, drops (and counts) datagrams.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use netloom_channel::tracking::{NewPeer, Verdict};
use netloom_channel::udp::{Eviction, UdpBootstrap, UdpConfig, UdpEndpoint};
use netloom_channel::{
    Channel, ChannelError, Context, EventLoopGroup, Handler, HandlerResult, Msg, UserEvent,
};

use super::UdpSettings;
use super::link::{UdpLink, UdpLinkKey};
use crate::ProxyError;
use crate::conn::{Shared, Wake};
use crate::spec::Stream;

/// What every peer of one UDP proxy shares.
struct Proxy {
    shared: Arc<Shared>,
    group: EventLoopGroup,
    settings: UdpSettings,
}

/// The upstream endpoint and its one peer channel, handed to the client side.
struct Connected(UdpEndpoint, Channel);

/// Binds the listen endpoint of a UDP proxy on `addr`.
pub(crate) fn start(
    group: &EventLoopGroup,
    shared: Arc<Shared>,
    settings: UdpSettings,
    addr: SocketAddr,
) -> Result<UdpEndpoint, ChannelError> {
    shared.metrics.udp().is_udp.store(true, Ordering::Relaxed);
    let proxy = Arc::new(Proxy {
        shared,
        group: group.clone(),
        settings,
    });
    let config = UdpConfig {
        idle_timeout: settings.idle_timeout(),
        // The acceptor enforces max_peers (so it can count and name the refusal); the
        // table's own limit is a backstop one above it.
        max_peers: settings.max_peers as usize + 1,
        eviction: Eviction::RejectNew,
        channel: proxy.shared.options.clone(),
        ..UdpConfig::default()
    };
    UdpBootstrap::new(group)
        .config(config)
        .acceptor(move |_: &mut NewPeer<'_>| proxy.accept())
        .bind(addr)
        .sync()
}

impl Proxy {
    fn accept(self: &Arc<Self>) -> Verdict {
        let udp = self.shared.metrics.udp();
        if udp.peers.load(Ordering::Relaxed) >= self.settings.max_peers {
            let n = udp.peers_refused.fetch_add(1, Ordering::Relaxed) + 1;
            // Logged at the 1st, 2nd, 4th, 8th... refusal: a flood does not flood the log.
            if n.is_power_of_two() {
                tracing::warn!(proxy = %self.shared.name, max_peers = self.settings.max_peers, refused = n,
                    "udp.max_peers reached: datagrams of new clients are dropped");
            }
            return Verdict::reject(format!(
                "udp.max_peers ({}) reached",
                self.settings.max_peers
            ));
        }
        Verdict::app(UdpSide::new(self.clone(), true, None, None))
    }

    fn link(&self, stream: Stream, peer: u64, client: Option<std::net::IpAddr>) -> UdpLink {
        let now = Instant::now();
        let key = UdpLinkKey {
            seed: self.shared.seed,
            proxy: self.shared.name.clone(),
            peer,
            client,
        };
        let mut link = UdpLink::new(stream, key, self.settings.max_queued_bytes as usize);
        let (_, toxics) = self.shared.snapshot();
        link.sync(&toxics, now);
        link
    }
}

/// One side of a proxied UDP peer.
struct UdpSide {
    proxy: Arc<Proxy>,
    client_side: bool,
    link: Option<UdpLink>,
    /// Where released datagrams go.
    peer: Option<Channel>,
    /// The client side's upstream endpoint, closed with the peer.
    upstream: Option<UdpEndpoint>,
    generation: u64,
    conn_id: Option<u64>,
}

impl UdpSide {
    fn new(
        proxy: Arc<Proxy>,
        client_side: bool,
        link: Option<UdpLink>,
        peer: Option<Channel>,
    ) -> UdpSide {
        let generation = proxy.shared.generation.load(Ordering::Acquire);
        UdpSide {
            proxy,
            client_side,
            link,
            peer,
            upstream: None,
            generation,
            conn_id: None,
        }
    }

    /// Takes the proxy's toxics when they changed.
    fn refresh(&mut self, now: Instant) {
        let shared = &self.proxy.shared;
        if shared.generation.load(Ordering::Acquire) != self.generation
            && let Some(link) = &mut self.link
        {
            let (g, toxics) = shared.snapshot();
            self.generation = g;
            link.sync(&toxics, now);
        }
    }

    /// Sends what is due to the other side, counts, closes when a toxic asked, sets the timer.
    fn pump(&mut self, ctx: &mut Context<'_>) {
        let now = Instant::now();
        self.refresh(now);
        let metrics = &self.proxy.shared.metrics;
        let Some(link) = &mut self.link else {
            return;
        };
        link.tick(now);
        for kind in link.take_activations() {
            metrics.activation(&kind);
        }
        if let Some(peer) = &self.peer {
            let (mut n, mut bytes) = (0u64, 0u64);
            // Decided once per burst: what this burst writes is only sent after the handler
            // returns, so the channel's pending bytes grow with it whatever the socket does.
            // Over the high water mark before the burst means the socket is backed up; a
            // datagram network then drops rather than waits. A burst is at most
            // `udp.max_queued_bytes`, so pending bytes stay bounded.
            let writable = peer.is_writable();
            while let Some(b) = link.pop_due(now) {
                if !writable {
                    metrics.udp().dropped_queue.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                bytes += b.len() as u64;
                n += 1;
                if peer.write(b).is_err() {
                    ctx.close();
                    return;
                }
            }
            if n > 0 {
                peer.flush();
                let udp = metrics.udp();
                let (d, b) = if self.client_side {
                    (&udp.datagrams_upstream, &metrics.bytes_upstream)
                } else {
                    (&udp.datagrams_downstream, &metrics.bytes_downstream)
                };
                d.fetch_add(n, Ordering::Relaxed);
                b.fetch_add(bytes, Ordering::Relaxed);
            }
        }
        let c = link.take_counts();
        let udp = metrics.udp();
        udp.dropped_toxic
            .fetch_add(c.dropped_toxic, Ordering::Relaxed);
        udp.dropped_queue
            .fetch_add(c.dropped_queue, Ordering::Relaxed);
        udp.duplicated.fetch_add(c.duplicated, Ordering::Relaxed);
        if link.wants_close() {
            if let Some(peer) = &self.peer {
                peer.close();
            }
            ctx.close();
            return;
        }
        match link.next_deadline() {
            Some(t) => ctx.schedule_timer(
                t.saturating_duration_since(now)
                    .max(Duration::from_micros(100)),
            ),
            None => ctx.cancel_timer(),
        }
    }

    /// The client side is active: track it and open its upstream socket.
    fn client_active(&mut self, ctx: &mut Context<'_>) {
        let proxy = self.proxy.clone();
        let shared = &proxy.shared;
        let udp = shared.metrics.udp();
        udp.peers.fetch_add(1, Ordering::Relaxed);
        udp.peers_total.fetch_add(1, Ordering::Relaxed);
        shared.metrics.connections.fetch_add(1, Ordering::Relaxed);
        let client = ctx.channel().clone();
        let peer_no = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        let client_ip = client.peer_addr().and_then(|a| a.inet()).map(|a| a.ip());
        self.link = Some(proxy.link(Stream::Upstream, peer_no, client_ip));
        self.conn_id = Some(client.id());
        shared
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(client.id(), (client.clone(), None));
        tokio::task::spawn_local(async move {
            match connect(&proxy, &client, peer_no, client_ip).await {
                Ok((ep, ch)) => {
                    let event = UserEvent::Custom(Box::new(Connected(ep.clone(), ch)));
                    if client.fire_user_event(event).is_err() {
                        ep.close();
                    }
                }
                Err(e) => {
                    proxy
                        .shared
                        .metrics
                        .upstream_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(proxy = %proxy.shared.name, upstream = %proxy.shared.upstream, err = %e,
                        "opening the upstream socket of a UDP peer failed; closing the peer");
                    client.close();
                }
            }
        });
    }
}

/// Resolves the upstream, binds a fresh socket for this peer and tracks the upstream on it.
async fn connect(
    proxy: &Arc<Proxy>,
    client: &Channel,
    peer_no: u64,
    client_ip: Option<std::net::IpAddr>,
) -> Result<(UdpEndpoint, Channel), ProxyError> {
    let upstream = proxy.shared.upstream.as_str();
    let target = match upstream.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => tokio::net::lookup_host(upstream)
            .await
            .map_err(|source| ProxyError::Io {
                what: format!("resolving upstream {upstream}"),
                source,
            })?
            .next()
            .ok_or_else(|| ProxyError::Io {
                what: format!("resolving upstream {upstream}"),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            })?,
    };
    let local: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let config = UdpConfig {
        // The client peer decides when this one ends.
        idle_timeout: Duration::from_secs(365 * 24 * 3600),
        max_peers: 1,
        eviction: Eviction::RejectNew,
        channel: proxy.shared.options.clone(),
        ..UdpConfig::default()
    };
    let ep = UdpBootstrap::new(&proxy.group)
        .config(config)
        .bind(local)
        .await?;
    let p = proxy.clone();
    let cl = client.clone();
    let ch = ep
        .connect(target, move |_: &mut NewPeer<'_>| {
            let link = p.link(Stream::Downstream, peer_no, client_ip);
            Verdict::app(UdpSide::new(p.clone(), false, Some(link), Some(cl.clone())))
        })
        .await;
    match ch {
        Ok(ch) => Ok((ep, ch)),
        Err(e) => {
            ep.close();
            Err(e.into())
        }
    }
}

#[netloom_channel::handler]
impl Handler for UdpSide {
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if self.client_side {
            self.client_active(ctx);
        } else {
            self.pump(ctx);
        }
        ctx.fire_channel_active();
        Ok(())
    }

    fn user_event(&mut self, ctx: &mut Context<'_>, event: UserEvent) -> HandlerResult {
        match event {
            UserEvent::Custom(b) if b.is::<Wake>() => self.pump(ctx),
            UserEvent::Custom(b) if b.is::<Connected>() => {
                if let Ok(c) = b.downcast::<Connected>() {
                    let Connected(ep, up) = *c;
                    self.proxy.shared.set_upstream(self.conn_id, &up);
                    self.upstream = Some(ep);
                    self.peer = Some(up);
                    self.pump(ctx);
                }
            }
            other => ctx.fire_user_event(other),
        }
        Ok(())
    }

    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let Some(bytes) = msg.as_bytes().cloned() else {
            return Err("the UDP proxy handler takes datagrams as bytes".into());
        };
        let now = Instant::now();
        self.refresh(now);
        let udp = self.proxy.shared.metrics.udp();
        let received = if self.client_side {
            &udp.received_upstream
        } else {
            &udp.received_downstream
        };
        received.fetch_add(1, Ordering::Relaxed);
        if let Some(link) = &mut self.link {
            link.push(now, bytes);
        }
        self.pump(ctx);
        Ok(())
    }

    fn timer_expired(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.pump(ctx);
        Ok(())
    }

    fn channel_inactive(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if self.client_side {
            let shared = &self.proxy.shared;
            shared.metrics.udp().peers.fetch_sub(1, Ordering::Relaxed);
            if let Some(id) = self.conn_id {
                shared
                    .conns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
            }
            if let Some(ep) = self.upstream.take() {
                ep.close();
            }
        } else if let Some(client) = &self.peer {
            client.close();
        }
        self.link = None;
        self.peer = None;
        ctx.fire_channel_inactive();
        Ok(())
    }

    fn exception_caught(&mut self, ctx: &mut Context<'_>, error: ChannelError) -> HandlerResult {
        // A datagram that failed (too long, refused by the network) is a lost datagram, not
        // the end of the peer.
        tracing::debug!(channel = %ctx.channel(), %error, "UDP proxy datagram failed");
        Ok(())
    }
}
