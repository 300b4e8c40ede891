//! A TCP (optionally TLS) port forwarder with backpressure both ways.
//!
//! Each accepted connection opens a connection to the target on the same event loop.
//! Bytes read on one side are written to the other; when the other side becomes unwritable
//! (its pending bytes passed the high water mark), reading stops on this side until it is
//! writable again. Memory per connection pair is bounded by the water marks.
//!
//! # Cross-pipeline writes
//!
//! A forwarded connection is two channels with a pipeline each:
//!
//! ```text
//!  client ─▶ tls ─▶ client handlers ─▶ forward ── write_and_flush ──┐   (client pipeline,
//!                                                                   │    inbound)
//!  target ◀─ tls ◀─ target handlers ◀── application end ◀──────────┘   (target pipeline,
//!                                                                         outbound)
//! ```
//!
//! and the same the other way (target → target handlers → forward → the client pipeline's
//! application end → client handlers → client).
//!
//! The `forward` handler at the application end of one pipeline hands each message it
//! reads to the *other* channel with [`Channel::write_and_flush`]. Such a write does not
//! run the other pipeline's handlers on the spot: it is queued as a command for the other
//! channel's task (both channels share one event loop thread here), counted in the other
//! channel's [`pending_outbound_bytes`](Channel::pending_outbound_bytes) at once, and
//! enters the other pipeline at its application end when that task runs, travelling
//! through its outbound handlers (`write`, `flush`) to the socket. Writes from one handler
//! to one channel keep their order; nothing is ever re-entered.
//!
//! Backpressure closes the loop: when the other channel is unwritable after a write,
//! `forward` stops reading on its own channel (`set_auto_read(false)`); the other
//! channel's `channel_writability_changed(true)` turns reading back on.
//!
//! # Handlers of your own on each side
//!
//! [`ForwardConfig::with_client_handlers`] and [`ForwardConfig::with_target_handlers`] add
//! handlers between TLS and `forward` on each side. A handler on one side sees, as inbound
//! `channel_read`, what that side's peer sends, and, as outbound `write`, what is about to
//! be sent to that peer. A handler that holds messages back (a delay, a rate limit) should
//! hold them in a [`PendingWrites`](crate::PendingWrites) queue: the held bytes then count
//! against that channel's writability, so the forwarder stops reading the other side while
//! they wait, and memory stays bounded. Such a handler should also hold back a `close`
//! that is not [`CloseMode::Forced`](crate::CloseMode::Forced) until it has written what
//! it holds: the forwarder passes a peer's half-close on as
//! [`CloseMode::Output`](crate::CloseMode::Output), and writes after it are dropped.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::{
    Bootstrap, Channel, ChannelError, ChannelOptions, CloseFuture, Context, EventLoopGroup,
    Handler, HandlerResult, Initializer, Msg, Pipeline, RemoteAddr, ServerBootstrap, ServerChannel,
    TlsClientConfig, TlsHandler, TlsServerConfig, UserEvent,
};

/// What to forward where.
///
/// ```
/// use netloom_channel::ForwardConfig;
/// let cfg = ForwardConfig::new("127.0.0.1:8080");
/// assert!(cfg.tls_to.is_none());
/// ```
#[derive(Clone)]
pub struct ForwardConfig {
    /// The target.
    pub to: RemoteAddr,
    /// Speak TLS to the target (verifying its certificate).
    pub tls_to: Option<TlsClientConfig>,
    /// The name to verify and send as SNI (default: the target's host).
    pub tls_server_name: Option<String>,
    /// Terminate TLS on the listening side.
    pub tls_listen: Option<TlsServerConfig>,
    /// Options of both sides' channels (`allow_half_closure` is always on: the forwarder
    /// passes half-closes on).
    pub options: ChannelOptions,
    /// After one side ended its output (a half-close, passed on to the other side as a
    /// TCP FIN), how long the other direction may go on before both connections are
    /// closed (socat's `-t`). Default 10 s; at most [`ForwardConfig::MAX_LINGER`].
    pub half_close_linger: Duration,
    /// The TLS handshake timeout of both sides' TLS handlers (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`](crate::DEFAULT_HANDSHAKE_TIMEOUT); `None` waits
    /// forever). The idle timeout and TCP keep-alive are in `options`.
    pub tls_handshake_timeout: Option<Duration>,
    /// Adds user handlers to each client-side pipeline (see `with_client_handlers`).
    client_handlers: Option<Initializer>,
    /// Adds user handlers to each target-side pipeline (see `with_target_handlers`).
    target_handlers: Option<Initializer>,
}

impl ForwardConfig {
    /// The longest [`half_close_linger`](ForwardConfig::half_close_linger) accepted: 1 hour.
    pub const MAX_LINGER: Duration = Duration::from_secs(3600);

    /// Checks the configuration; the error names the offending option.
    ///
    /// ```
    /// use std::time::Duration;
    /// use netloom_channel::ForwardConfig;
    /// let mut cfg = ForwardConfig::new("127.0.0.1:80");
    /// assert!(cfg.validate().is_ok());
    /// cfg.half_close_linger = Duration::from_secs(7200);
    /// assert!(cfg.validate().unwrap_err().to_string().contains("half_close_linger"));
    /// ```
    pub fn validate(&self) -> Result<(), ChannelError> {
        self.options.validate()?;
        if self.half_close_linger > Self::MAX_LINGER {
            return Err(ChannelError::InvalidOption {
                name: "half_close_linger",
                reason: format!(
                    "{:?} is above the maximum of {:?}",
                    self.half_close_linger,
                    Self::MAX_LINGER
                ),
            });
        }
        Ok(())
    }

    /// Plain TCP to `to`.
    ///
    /// ```
    /// let cfg = netloom_channel::ForwardConfig::new("example.com:443");
    /// assert_eq!(cfg.to.to_string(), "example.com:443");
    /// ```
    pub fn new(to: impl Into<RemoteAddr>) -> ForwardConfig {
        ForwardConfig {
            to: to.into(),
            tls_to: None,
            tls_server_name: None,
            tls_listen: None,
            options: ChannelOptions::default(),
            half_close_linger: Duration::from_secs(10),
            tls_handshake_timeout: Some(crate::DEFAULT_HANDSHAKE_TIMEOUT),
            client_handlers: None,
            target_handlers: None,
        }
    }

    /// Calls `init` on every client-side pipeline (the accepted connection), after the TLS
    /// handler (if any) and before `forward`: the handlers it adds see what the client
    /// sends as `channel_read` and what goes back to the client as `write`. An `Err`
    /// refuses the connection.
    ///
    /// ```
    /// use netloom_channel::{Context, ForwardConfig, Handler, HandlerResult, Msg};
    ///
    /// /// Logs the size of every message from the client.
    /// struct Sizes;
    /// impl Handler for Sizes {
    ///     fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
    ///         tracing::info!(len = msg.as_bytes().map_or(0, |b| b.len()), "from client");
    ///         ctx.fire_channel_read(msg);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let cfg = ForwardConfig::new("127.0.0.1:8080").with_client_handlers(|p| {
    ///     p.add_last("sizes", Sizes)?;
    ///     Ok(())
    /// });
    /// ```
    pub fn with_client_handlers(
        mut self,
        init: impl Fn(&mut Pipeline) -> Result<(), ChannelError> + Send + Sync + 'static,
    ) -> ForwardConfig {
        self.client_handlers = Some(Arc::new(init));
        self
    }

    /// Calls `init` on every target-side pipeline (the connection to the target), after
    /// the TLS handler (if any) and before `forward`: the handlers it adds see what the
    /// target sends as `channel_read` and what goes to the target as `write`. An `Err`
    /// fails the connection to the target (and closes the client).
    ///
    /// ```
    /// use netloom_channel::{Context, ForwardConfig, Handler, HandlerResult, Interest, Msg};
    ///
    /// /// Drops everything the client sends to the target.
    /// struct Blackhole;
    /// impl Handler for Blackhole {
    ///     fn interest(&self) -> Interest {
    ///         Interest::WRITE
    ///     }
    ///     fn write(&mut self, _ctx: &mut Context<'_>, _msg: Msg) -> HandlerResult {
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let cfg = ForwardConfig::new("127.0.0.1:8080").with_target_handlers(|p| {
    ///     p.add_last("blackhole", Blackhole)?;
    ///     Ok(())
    /// });
    /// ```
    pub fn with_target_handlers(
        mut self,
        init: impl Fn(&mut Pipeline) -> Result<(), ChannelError> + Send + Sync + 'static,
    ) -> ForwardConfig {
        self.target_handlers = Some(Arc::new(init));
        self
    }
}

/// Counters of a running forwarder.
///
/// ```
/// let stats = netloom_channel::ForwardStats::default();
/// assert_eq!(stats.connections(), 0);
/// ```
#[derive(Debug, Default)]
pub struct ForwardStats {
    connections: AtomicU64,
    bytes_to_target: AtomicU64,
    bytes_to_client: AtomicU64,
    peak_pending: AtomicUsize,
}

impl ForwardStats {
    /// Connections accepted so far.
    ///
    /// ```
    /// assert_eq!(netloom_channel::ForwardStats::default().connections(), 0);
    /// ```
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Bytes forwarded to the target.
    ///
    /// ```
    /// assert_eq!(netloom_channel::ForwardStats::default().bytes_to_target(), 0);
    /// ```
    pub fn bytes_to_target(&self) -> u64 {
        self.bytes_to_target.load(Ordering::Relaxed)
    }

    /// Bytes forwarded back to clients.
    ///
    /// ```
    /// assert_eq!(netloom_channel::ForwardStats::default().bytes_to_client(), 0);
    /// ```
    pub fn bytes_to_client(&self) -> u64 {
        self.bytes_to_client.load(Ordering::Relaxed)
    }

    /// The most bytes any one side ever held waiting for its socket: bounded by the high
    /// water mark plus one read when backpressure works.
    ///
    /// ```
    /// assert_eq!(netloom_channel::ForwardStats::default().peak_pending_bytes(), 0);
    /// ```
    pub fn peak_pending_bytes(&self) -> usize {
        self.peak_pending.load(Ordering::Relaxed)
    }
}

/// A running forwarder.
///
/// ```no_run
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use netloom_channel::{EventLoopGroup, ForwardConfig, Forwarder};
/// let group = EventLoopGroup::new(2, "forward")?;
/// let fwd = Forwarder::bind(&group, "127.0.0.1:8443".parse().unwrap(), ForwardConfig::new("127.0.0.1:443"))?;
/// println!("{}", fwd.local_addr());
/// fwd.close_future().sync()?;
/// # Ok(()) }
/// ```
pub struct Forwarder {
    server: ServerChannel,
    stats: Arc<ForwardStats>,
}

impl Forwarder {
    /// Listens on `listen` (blocking until bound; not on an event loop thread).
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use netloom_channel::{EventLoopGroup, ForwardConfig, Forwarder};
    /// let group = EventLoopGroup::new(1, "fwd")?;
    /// let fwd = Forwarder::bind(&group, "127.0.0.1:0".parse().unwrap(), ForwardConfig::new("127.0.0.1:9"))?;
    /// assert_eq!(fwd.stats().connections(), 0);
    /// fwd.close();
    /// # Ok(()) }
    /// ```
    pub fn bind(
        group: &EventLoopGroup,
        listen: SocketAddr,
        config: ForwardConfig,
    ) -> Result<Forwarder, ChannelError> {
        config.validate()?;
        let mut config = config;
        config.options.allow_half_closure = true;
        let stats = Arc::new(ForwardStats::default());
        let config = Arc::new(config);
        let (cfg, st) = (config.clone(), stats.clone());
        let server = ServerBootstrap::new(group, group)
            .child_options(config.options.clone())
            .child_handler(move |p| {
                if let Some(tls) = &cfg.tls_listen {
                    p.add_last(
                        "tls",
                        TlsHandler::server(tls)?
                            .handshake_timeout(cfg.tls_handshake_timeout)
                            .half_close(true),
                    )?;
                }
                if let Some(init) = &cfg.client_handlers {
                    init(p)?;
                }
                st.connections.fetch_add(1, Ordering::Relaxed);
                p.add_last(
                    "forward",
                    Inbound {
                        config: cfg.clone(),
                        stats: st.clone(),
                        target: None,
                        inactive: false,
                        input_ended: false,
                    },
                )?;
                Ok(())
            })
            .bind(listen)
            .sync()?;
        Ok(Forwarder { server, stats })
    }

    /// The listening address.
    ///
    /// ```no_run
    /// # fn f(fwd: netloom_channel::Forwarder) {
    /// println!("{}", fwd.local_addr());
    /// # }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.server
            .local_addr()
            .inet()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The counters.
    ///
    /// ```no_run
    /// # fn f(fwd: netloom_channel::Forwarder) {
    /// println!("{} connections", fwd.stats().connections());
    /// # }
    /// ```
    pub fn stats(&self) -> &ForwardStats {
        &self.stats
    }

    /// Stops accepting (forwarded connections continue).
    ///
    /// ```no_run
    /// # fn f(fwd: netloom_channel::Forwarder) {
    /// fwd.close();
    /// # }
    /// ```
    pub fn close(&self) {
        self.server.close();
    }

    /// Graceful shutdown: stops accepting, closes every forwarded connection gracefully
    /// and stops the group's loops, within `grace` (see
    /// [`ServerChannel::shutdown_gracefully`]).
    ///
    /// ```no_run
    /// # fn f(fwd: netloom_channel::Forwarder) -> Result<(), netloom_channel::ChannelError> {
    /// fwd.shutdown_gracefully(std::time::Duration::from_secs(5)).sync()
    /// # }
    /// ```
    pub fn shutdown_gracefully(&self, grace: Duration) -> crate::Termination {
        self.server.shutdown_gracefully(grace)
    }

    /// Completes when the forwarder stopped accepting.
    ///
    /// ```no_run
    /// # fn f(fwd: netloom_channel::Forwarder) -> Result<(), netloom_channel::ChannelError> {
    /// fwd.close_future().sync()
    /// # }
    /// ```
    pub fn close_future(&self) -> CloseFuture {
        self.server.close_future()
    }
}

/// Writes `msg` to `other`; stops reading on `ctx` while `other` is unwritable.
fn relay(
    ctx: &mut Context<'_>,
    other: &Channel,
    msg: Msg,
    counter: &AtomicU64,
    stats: &ForwardStats,
) -> HandlerResult {
    let n = msg.as_bytes().map_or(0, |b| b.len());
    if other.write_and_flush(msg).is_err() {
        ctx.close();
        return Ok(());
    }
    counter.fetch_add(n as u64, Ordering::Relaxed);
    stats
        .peak_pending
        .fetch_max(other.pending_outbound_bytes(), Ordering::Relaxed);
    if !other.is_writable() {
        ctx.set_auto_read(false);
        // It may have drained in between (another thread): don't stall forever.
        if other.is_writable() {
            ctx.set_auto_read(true);
        }
    }
    Ok(())
}

/// The target connection, handed to the inbound handler once connected.
struct Connected(Channel);

struct Inbound {
    config: Arc<ForwardConfig>,
    stats: Arc<ForwardStats>,
    target: Option<Channel>,
    inactive: bool,
    /// The client ended its output (FIN) before the target connection was up.
    input_ended: bool,
}

#[crate::handler]
impl Handler for Inbound {
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.set_auto_read(false);
        let inbound = ctx.channel().clone();
        let Some(el) = inbound.event_loop().cloned() else {
            return Err("forwarding needs a channel on an event loop".into());
        };
        let cfg = self.config.clone();
        let stats = self.stats.clone();
        let client = inbound.clone();
        let connect = Bootstrap::on_loop(el)
            .options(cfg.options.clone())
            .handler(move |p| {
                if let Some(tls) = &cfg.tls_to {
                    let name = cfg.tls_server_name.clone().unwrap_or_else(|| cfg.to.host());
                    p.add_last(
                        "tls",
                        TlsHandler::client(tls, &name)?
                            .handshake_timeout(cfg.tls_handshake_timeout)
                            .half_close(true),
                    )?;
                }
                if let Some(init) = &cfg.target_handlers {
                    init(p)?;
                }
                p.add_last(
                    "forward",
                    Outbound {
                        client: client.clone(),
                        stats: stats.clone(),
                        linger: cfg.half_close_linger,
                        to: cfg.to.clone(),
                    },
                )?;
                Ok(())
            })
            .connect(self.config.to.clone());
        tokio::task::spawn_local(async move {
            match connect.await {
                Ok(target) => {
                    if let Err(e) = inbound
                        .fire_user_event(UserEvent::Custom(Box::new(Connected(target.clone()))))
                    {
                        tracing::debug!(err = %e, "client left before the target connected");
                        target.close();
                    }
                }
                Err(e) => {
                    tracing::warn!(client = %inbound, err = %e, "connecting to the target failed");
                    inbound.close();
                }
            }
        });
        ctx.fire_channel_active();
        Ok(())
    }

    fn user_event(&mut self, ctx: &mut Context<'_>, event: UserEvent) -> HandlerResult {
        match event {
            UserEvent::Custom(b) => match b.downcast::<Connected>() {
                Ok(connected) => {
                    let target = connected.0;
                    if self.inactive {
                        target.close();
                    } else {
                        if self.input_ended {
                            target.shutdown_output();
                        }
                        self.target = Some(target);
                        ctx.set_auto_read(true);
                    }
                }
                Err(other) => ctx.fire_user_event(UserEvent::Custom(other)),
            },
            UserEvent::InputShutdown => {
                // The client is done sending: pass the FIN on, keep the answer coming.
                match &self.target {
                    Some(target) => target.shutdown_output(),
                    None => self.input_ended = true,
                }
                ctx.schedule_timer(self.config.half_close_linger);
                ctx.fire_user_event(UserEvent::InputShutdown);
            }
            other => ctx.fire_user_event(other),
        }
        Ok(())
    }

    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        match &self.target {
            Some(target) => relay(ctx, target, msg, &self.stats.bytes_to_target, &self.stats),
            None => Err("data before the target connection was up".into()),
        }
    }

    fn channel_writability_changed(
        &mut self,
        ctx: &mut Context<'_>,
        writable: bool,
    ) -> HandlerResult {
        if let Some(target) = &self.target {
            target.set_auto_read(writable);
        }
        ctx.fire_channel_writability_changed(writable);
        Ok(())
    }

    fn channel_inactive(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.inactive = true;
        if let Some(target) = &self.target {
            target.close();
        }
        ctx.fire_channel_inactive();
        Ok(())
    }

    fn exception_caught(&mut self, ctx: &mut Context<'_>, error: ChannelError) -> HandlerResult {
        tracing::debug!(channel = %ctx.channel(), %error, "client side failed");
        ctx.close();
        Ok(())
    }

    /// The half-close linger ran out.
    fn timer_expired(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        tracing::debug!(channel = %ctx.channel(), "half-close linger over; closing");
        ctx.close();
        Ok(())
    }
}

struct Outbound {
    client: Channel,
    stats: Arc<ForwardStats>,
    linger: Duration,
    /// The target as configured (for the log).
    to: RemoteAddr,
}

#[crate::handler]
impl Handler for Outbound {
    fn user_event(&mut self, ctx: &mut Context<'_>, event: UserEvent) -> HandlerResult {
        if let UserEvent::InputShutdown = event {
            // The target is done sending: pass the FIN on to the client.
            self.client.shutdown_output();
            ctx.schedule_timer(self.linger);
        }
        ctx.fire_user_event(event);
        Ok(())
    }

    /// The half-close linger ran out.
    fn timer_expired(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        tracing::debug!(channel = %ctx.channel(), "half-close linger over; closing");
        ctx.close();
        Ok(())
    }

    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        relay(
            ctx,
            &self.client,
            msg,
            &self.stats.bytes_to_client,
            &self.stats,
        )
    }

    fn channel_writability_changed(
        &mut self,
        ctx: &mut Context<'_>,
        writable: bool,
    ) -> HandlerResult {
        self.client.set_auto_read(writable);
        ctx.fire_channel_writability_changed(writable);
        Ok(())
    }

    fn channel_inactive(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.client.close();
        ctx.fire_channel_inactive();
        Ok(())
    }

    fn exception_caught(&mut self, ctx: &mut Context<'_>, error: ChannelError) -> HandlerResult {
        match error.tls_error() {
            // A certificate that does not verify, an alert, a handshake that never ends:
            // the operator must see it (the client only sees its connection closed). The
            // TLS handler reports a failure once, so this is one line per connection.
            Some(error) => tracing::warn!(
                to = %self.to,
                target_channel = %ctx.channel(),
                client = %self.client,
                reason = %plain_tls_reason(error),
                "TLS toward the target failed; closing the client"
            ),
            None if matches!(error, ChannelError::TlsHandshakeTimeout(_)) => tracing::warn!(
                to = %self.to,
                client = %self.client,
                reason = %error,
                "TLS toward the target failed; closing the client"
            ),
            None => tracing::debug!(channel = %ctx.channel(), %error, "target side failed"),
        }
        ctx.close();
        Ok(())
    }
}

/// A failed TLS verification in words an operator acts on, with rustls's own text after
/// it: `certificate not signed by a trusted CA (add its CA to the trusted roots): invalid
/// peer certificate: UnknownIssuer`.
fn plain_tls_reason(error: &rustls::Error) -> String {
    use rustls::CertificateError as E;
    let hint = match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            E::UnknownIssuer => {
                Some("certificate not signed by a trusted CA (add its CA to the trusted roots)")
            }
            E::Expired | E::ExpiredContext { .. } => Some("certificate expired"),
            E::NotValidYet | E::NotValidYetContext { .. } => Some("certificate not valid yet"),
            E::BadSignature => Some("certificate signature does not verify"),
            E::Revoked => Some("certificate revoked"),
            _ => None,
        },
        _ => None,
    };
    match hint {
        Some(hint) => format!("{hint}: {error}"),
        None => error.to_string(),
    }
}
