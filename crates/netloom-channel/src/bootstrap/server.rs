//! [`ServerBootstrap`] and the [`ServerChannel`] it binds: a parent group accepts, a child
//! group runs the accepted channels.
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use socket2::SockRef;
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::Notify;

use super::socket::{Accepted, Listener, accept_loop, apply_options, hand_over, tcp_listener};
use super::{Initializer, no_handlers};
use crate::channel::CloseSignal;
use crate::task::register_with_peer;
use crate::{
    BindFuture, ChannelAddr, ChannelError, ChannelOptions, CloseFuture, EventLoopGroup, LoopFuture,
    Pipeline, Termination, Transport,
};

struct ServerShared {
    local: ChannelAddr,
    stop: Notify,
    close: Arc<CloseSignal>,
    /// The bootstrap's groups, for `shutdown_gracefully`.
    parent: EventLoopGroup,
    child: EventLoopGroup,
}

/// A listening socket accepting child channels.
///
/// ```no_run
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use netloom_channel::{EventLoopGroup, ServerBootstrap};
/// let group = EventLoopGroup::new(1, "server")?;
/// let server = ServerBootstrap::new(&group, &group).bind("127.0.0.1:0".parse().unwrap()).sync()?;
/// println!("listening on {}", server.local_addr());
/// server.close();
/// server.close_future().sync()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServerChannel(Arc<ServerShared>);

impl ServerChannel {
    /// The bound address (with the port the system picked for port 0).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// # let g = netloom_channel::EventLoopGroup::new(1, "s")?;
    /// let s = netloom_channel::ServerBootstrap::new(&g, &g).bind("127.0.0.1:0".parse().unwrap()).sync()?;
    /// assert_ne!(s.local_addr().inet().unwrap().port(), 0);
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self) -> &ChannelAddr {
        &self.0.local
    }

    /// Stops accepting (accepted channels keep running).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// # let g = netloom_channel::EventLoopGroup::new(1, "s")?;
    /// let s = netloom_channel::ServerBootstrap::new(&g, &g).bind("127.0.0.1:0".parse().unwrap()).sync()?;
    /// s.close();
    /// # Ok(()) }
    /// ```
    pub fn close(&self) {
        self.0.stop.notify_one();
    }

    /// Graceful shutdown (what a CLI does on SIGINT / SIGTERM): stops accepting, then
    /// shuts the bootstrap's event loop groups down — every channel on them is closed
    /// gracefully (its pending writes go out, then a FIN), and whatever is still open
    /// after `grace` is closed hard when the loops stop. The returned [`Termination`]
    /// completes (`.sync()` blocks) once the loop threads have exited, within `grace` plus
    /// the time a loop takes to stop. Other servers and channels on the same groups go
    /// down with them.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use std::time::Duration;
    /// use netloom_channel::{EchoHandler, EventLoopGroup, ServerBootstrap};
    /// let g = EventLoopGroup::new(1, "s")?;
    /// let s = ServerBootstrap::new(&g, &g)
    ///     .child_handler(|p| { p.add_last("echo", EchoHandler)?; Ok(()) })
    ///     .bind("127.0.0.1:0".parse().unwrap())
    ///     .sync()?;
    /// s.shutdown_gracefully(Duration::from_secs(5)).sync()?; // the loop threads have exited
    /// # Ok(()) }
    /// ```
    pub fn shutdown_gracefully(&self, grace: Duration) -> Termination {
        self.close();
        let child = self.0.child.shutdown_gracefully(Duration::ZERO, grace);
        if self.0.parent.same_group(&self.0.child) {
            child
        } else {
            child.and(self.0.parent.shutdown_gracefully(Duration::ZERO, grace))
        }
    }

    /// Whether it still accepts.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// # let g = netloom_channel::EventLoopGroup::new(1, "s")?;
    /// let s = netloom_channel::ServerBootstrap::new(&g, &g).bind("127.0.0.1:0".parse().unwrap()).sync()?;
    /// assert!(s.is_open());
    /// # Ok(()) }
    /// ```
    pub fn is_open(&self) -> bool {
        !self.0.close.is_signalled()
    }

    /// Completes when the server stopped accepting.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// # let g = netloom_channel::EventLoopGroup::new(1, "s")?;
    /// let s = netloom_channel::ServerBootstrap::new(&g, &g).bind("127.0.0.1:0".parse().unwrap()).sync()?;
    /// s.close();
    /// s.close_future().sync()?;
    /// # Ok(()) }
    /// ```
    pub fn close_future(&self) -> CloseFuture {
        CloseFuture(self.0.close.clone())
    }
}

/// Binds servers: a parent group accepts, a child group runs the accepted channels.
///
/// ```no_run
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use netloom_channel::{EchoHandler, EventLoopGroup, ServerBootstrap};
/// let acceptor = EventLoopGroup::new(1, "acceptor")?;
/// let workers = EventLoopGroup::new(2, "worker")?;
/// let server = ServerBootstrap::new(&acceptor, &workers)
///     .child_handler(|p| { p.add_last("echo", EchoHandler)?; Ok(()) })
///     .bind("[::1]:0".parse().unwrap())
///     .sync()?;
/// server.close_future().sync()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServerBootstrap {
    parent: EventLoopGroup,
    child: EventLoopGroup,
    /// Shared by the accepted channels whose options name no budget of their own.
    budget: Option<crate::MemoryBudget>,
    /// Accepted connections open at most at once (`None`: no cap).
    max_connections: Option<usize>,
    init: Initializer,
    options: ChannelOptions,
    backlog: i32,
}

impl ServerBootstrap {
    /// A server accepting on `parent` and serving on `child` (they may be the same group).
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// let g = netloom_channel::EventLoopGroup::new(1, "s")?;
    /// let _sb = netloom_channel::ServerBootstrap::new(&g, &g);
    /// # Ok(()) }
    /// ```
    pub fn new(parent: &EventLoopGroup, child: &EventLoopGroup) -> ServerBootstrap {
        ServerBootstrap {
            parent: parent.clone(),
            child: child.clone(),
            budget: Some(crate::MemoryBudget::new(crate::DEFAULT_MEMORY_BUDGET)),
            max_connections: None,
            init: no_handlers(),
            options: ChannelOptions::default(),
            backlog: 1024,
        }
    }

    /// Sets the initializer of accepted channels' pipelines.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use netloom_channel::EchoHandler;
    /// let g = netloom_channel::EventLoopGroup::new(1, "s")?;
    /// let _sb = netloom_channel::ServerBootstrap::new(&g, &g)
    ///     .child_handler(|p| { p.add_last("echo", EchoHandler)?; Ok(()) });
    /// # Ok(()) }
    /// ```
    pub fn child_handler(
        mut self,
        init: impl Fn(&mut Pipeline) -> Result<(), ChannelError> + Send + Sync + 'static,
    ) -> ServerBootstrap {
        self.init = Arc::new(init);
        self
    }

    /// Sets the options of accepted channels (buffer sizes also apply to the listener).
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use netloom_channel::ChannelOptions;
    /// let g = netloom_channel::EventLoopGroup::new(1, "s")?;
    /// let _sb = netloom_channel::ServerBootstrap::new(&g, &g)
    ///     .child_options(ChannelOptions { auto_read: false, ..Default::default() });
    /// # Ok(()) }
    /// ```
    pub fn child_options(mut self, options: ChannelOptions) -> ServerBootstrap {
        self.options = options;
        self
    }

    /// Closes accepted channels after `timeout` without a read or a write (sets
    /// [`ChannelOptions::idle_timeout`] of the child options; set the options first).
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use std::time::Duration;
    /// let g = netloom_channel::EventLoopGroup::new(1, "s")?;
    /// let _sb = netloom_channel::ServerBootstrap::new(&g, &g).idle_timeout(Duration::from_secs(300));
    /// # Ok(()) }
    /// ```
    pub fn idle_timeout(mut self, timeout: Duration) -> ServerBootstrap {
        self.options.idle_timeout = Some(timeout);
        self
    }

    /// Turns on TCP keep-alive probes after `idle` on accepted connections (sets
    /// [`ChannelOptions::tcp_keepalive`] of the child options; set the options first).
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use std::time::Duration;
    /// let g = netloom_channel::EventLoopGroup::new(1, "s")?;
    /// let _sb = netloom_channel::ServerBootstrap::new(&g, &g).tcp_keepalive(Duration::from_secs(60));
    /// # Ok(()) }
    /// ```
    pub fn tcp_keepalive(mut self, idle: Duration) -> ServerBootstrap {
        self.options.tcp_keepalive = Some(idle);
        self
    }

    /// Sets the budget of bytes the accepted connections may buffer together (decoders
    /// holding incomplete frames); a connection whose read would pass it is closed with
    /// an error naming `memory_budget`. Default
    /// [`DEFAULT_MEMORY_BUDGET`](crate::DEFAULT_MEMORY_BUDGET) (256 MiB); `None` turns it
    /// off. A budget in the child options takes precedence.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// let g = netloom_channel::EventLoopGroup::new(1, "s")?;
    /// let _sb = netloom_channel::ServerBootstrap::new(&g, &g).memory_budget(Some(64 << 20));
    /// # Ok(()) }
    /// ```
    pub fn memory_budget(mut self, bytes: Option<usize>) -> ServerBootstrap {
        self.budget = bytes.map(crate::MemoryBudget::new);
        self
    }

    /// Caps the accepted connections open at once: past `max`, a new connection is
    /// closed right after accepting it (with a rate-limited warning naming
    /// `max_connections`). Default: no cap.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// let g = netloom_channel::EventLoopGroup::new(1, "s")?;
    /// let _sb = netloom_channel::ServerBootstrap::new(&g, &g).max_connections(10_000);
    /// # Ok(()) }
    /// ```
    pub fn max_connections(mut self, max: usize) -> ServerBootstrap {
        self.max_connections = Some(max);
        self
    }

    /// Sets the listen backlog (default 1024).
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// let g = netloom_channel::EventLoopGroup::new(1, "s")?;
    /// let _sb = netloom_channel::ServerBootstrap::new(&g, &g).backlog(4096);
    /// # Ok(()) }
    /// ```
    pub fn backlog(mut self, backlog: i32) -> ServerBootstrap {
        self.backlog = backlog;
        self
    }

    /// Binds a TCP listener (IPv4 or IPv6; port 0 picks a free port).
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// let g = netloom_channel::EventLoopGroup::new(1, "s")?;
    /// let s = netloom_channel::ServerBootstrap::new(&g, &g).bind("127.0.0.1:0".parse().unwrap()).sync()?;
    /// assert!(s.local_addr().inet().is_some());
    /// # Ok(()) }
    /// ```
    pub fn bind(&self, addr: SocketAddr) -> BindFuture {
        let sb = self.clone();
        self.start(move || {
            let listener = tcp_listener(addr, sb.backlog, &sb.options, |_| Ok(()))?;
            let local = listener
                .local_addr()
                .map(ChannelAddr::Inet)
                .map_err(|source| ChannelError::Bind {
                    addr: addr.to_string(),
                    source,
                })?;
            Ok((local, Listener::Tcp(listener), sb))
        })
    }

    /// Binds a Unix socket listener at `path` (which must not exist).
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// let g = netloom_channel::EventLoopGroup::new(1, "s")?;
    /// let dir = std::env::temp_dir().join(format!("netloom-doc-{}", std::process::id()));
    /// let _ = std::fs::create_dir_all(&dir);
    /// let path = dir.join("bind.sock");
    /// let _ = std::fs::remove_file(&path);
    /// let s = netloom_channel::ServerBootstrap::new(&g, &g).bind_unix(&path).sync()?;
    /// s.close();
    /// # let _ = std::fs::remove_file(&path);
    /// # Ok(()) }
    /// ```
    pub fn bind_unix(&self, path: impl AsRef<Path>) -> BindFuture {
        let path = path.as_ref().to_path_buf();
        let sb = self.clone();
        self.start(move || {
            let listener = UnixListener::bind(&path).map_err(|source| ChannelError::Bind {
                addr: path.display().to_string(),
                source,
            })?;
            Ok((ChannelAddr::Unix(Some(path)), Listener::Unix(listener), sb))
        })
    }

    fn start(
        &self,
        make: impl FnOnce() -> Result<(ChannelAddr, Listener, ServerBootstrap), ChannelError>
        + Send
        + 'static,
    ) -> BindFuture {
        if let Err(e) = self.options.validate() {
            return LoopFuture::ready(Err(e));
        }
        let (tx, done) = LoopFuture::pending();
        let job = move || match make() {
            Ok((local, listener, sb)) => {
                let server = ServerChannel(Arc::new(ServerShared {
                    local,
                    stop: Notify::new(),
                    close: Arc::new(CloseSignal::default()),
                    parent: sb.parent.clone(),
                    child: sb.child.clone(),
                }));
                let _ = tx.send(Ok(server.clone()));
                tokio::task::spawn_local(serve(listener, server, sb));
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        };
        match self.parent.next().execute(job) {
            Ok(()) => done,
            Err(e) => LoopFuture::ready(Err(e)),
        }
    }
}

/// Holds one of the `max_connections` slots while its channel's pipeline lives.
struct ConnectionSlot(Arc<AtomicUsize>);

#[crate::handler]
impl crate::Handler for ConnectionSlot {}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The server's accept loop: refuses connections past `max_connections`, applies the
/// child options and hands each connection to the next child loop.
async fn serve(listener: Listener, server: ServerChannel, mut sb: ServerBootstrap) {
    if sb.options.memory_budget.is_none() {
        sb.options.memory_budget = sb.budget.clone();
    }
    let options = Arc::new(sb.options.clone());
    let open = Arc::new(AtomicUsize::new(0));
    if sb.max_connections.is_some() {
        let (init, open) = (sb.init.clone(), open.clone());
        sb.init = Arc::new(move |p: &mut Pipeline| {
            // Counted from here; the slot's drop (with the pipeline) gives it back.
            open.fetch_add(1, Ordering::AcqRel);
            p.add_first("connection-slot", ConnectionSlot(open.clone()))?;
            init(p)
        });
    }
    let mut refusals = crate::log_limit::LogLimit::default();
    let local = &server.0.local;
    accept_loop(listener, local, &server.0.stop, |accepted| {
        if let Some(max) = sb.max_connections
            && open.load(Ordering::Acquire) >= max
        {
            // Dropping the stream closes it.
            if let Some(suppressed) = refusals.hit() {
                tracing::warn!(server = %local, max_connections = max, suppressed, "connection refused: max_connections reached");
            }
            return;
        }
        let el = sb.child.next();
        match accepted {
            Accepted::Tcp(stream, peer) => {
                if let Err(e) = apply_options(SockRef::from(&stream), &options, true) {
                    tracing::debug!(%peer, err = %e, "setting options on an accepted socket failed");
                    return;
                }
                let register = registration(&options, &sb.init, Some(ChannelAddr::Inet(peer)));
                hand_over(&el, stream, TcpStream::into_std, TcpStream::from_std, register);
            }
            Accepted::Unix(stream) => {
                let register = registration(&options, &sb.init, None);
                hand_over(&el, stream, UnixStream::into_std, UnixStream::from_std, register);
            }
        }
    })
    .await;
    server.0.close.signal();
}

/// Registers an accepted stream as a channel (on the loop the hand-over runs it on);
/// `peer` is the address `accept(2)` gave, if any.
fn registration<S: Transport>(
    options: &Arc<ChannelOptions>,
    init: &Initializer,
    peer: Option<ChannelAddr>,
) -> impl FnOnce(S) + Send + 'static {
    let (options, init) = (options.clone(), init.clone());
    move |stream| {
        if let Err(e) = register_with_peer(stream, peer, &options, |p| init(p)) {
            tracing::warn!(err = %e, "initializing an accepted channel failed");
        }
    }
}
