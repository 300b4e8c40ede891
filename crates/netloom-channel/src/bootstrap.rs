//! Bootstraps: connect a client channel, or bind a server that accepts child channels.
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UnixListener, UnixStream};
use tokio::sync::{Notify, oneshot};

use crate::channel::CloseSignal;
use crate::event_loop::check_blocking;
use crate::task::register_local;
use crate::{
    Channel, ChannelAddr, ChannelError, ChannelOptions, CloseFuture, EventLoop, EventLoopGroup,
    Pipeline, Termination, Transport,
};

/// Builds a new channel's pipeline; runs on the channel's event loop thread.
///
/// ```
/// use std::sync::Arc;
/// use netloom_channel::{EchoHandler, Initializer};
/// let init: Initializer = Arc::new(|p| { p.add_last("echo", EchoHandler)?; Ok(()) });
/// ```
pub type Initializer = Arc<dyn Fn(&mut Pipeline) -> Result<(), ChannelError> + Send + Sync>;

/// The result of work done on an event loop: `.await` it, or block with [`LoopFuture::sync`].
///
/// ```no_run
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use netloom_channel::{Bootstrap, EventLoopGroup};
/// let group = EventLoopGroup::new(1, "c")?;
/// let fut = Bootstrap::new(&group).connect("127.0.0.1:7000");
/// let channel = fut.sync()?;
/// # Ok(()) }
/// ```
pub struct LoopFuture<T>(oneshot::Receiver<Result<T, ChannelError>>);

/// A future channel (from `Bootstrap::connect` or `EventLoop::register`).
///
/// ```no_run
/// # async fn f(group: netloom_channel::EventLoopGroup) -> Result<(), netloom_channel::ChannelError> {
/// let fut: netloom_channel::ChannelFuture = netloom_channel::Bootstrap::new(&group).connect("127.0.0.1:7000");
/// let channel = fut.await?;
/// # Ok(()) }
/// ```
pub type ChannelFuture = LoopFuture<Channel>;

/// A future server channel (from `ServerBootstrap::bind`).
///
/// ```no_run
/// # async fn f(group: netloom_channel::EventLoopGroup) -> Result<(), netloom_channel::ChannelError> {
/// let fut: netloom_channel::BindFuture = netloom_channel::ServerBootstrap::new(&group, &group).bind("127.0.0.1:0".parse().unwrap());
/// let server = fut.await?;
/// # Ok(()) }
/// ```
pub type BindFuture = LoopFuture<ServerChannel>;

impl<T> LoopFuture<T> {
    fn failed(err: ChannelError) -> LoopFuture<T> {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Err(err));
        LoopFuture(rx)
    }

    /// Blocks the calling thread until the result is there (not on an event loop thread).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use netloom_channel::{EventLoopGroup, ServerBootstrap};
    /// let group = EventLoopGroup::new(1, "s")?;
    /// let server = ServerBootstrap::new(&group, &group).bind("127.0.0.1:0".parse().unwrap()).sync()?;
    /// # Ok(()) }
    /// ```
    pub fn sync(self) -> Result<T, ChannelError> {
        check_blocking("LoopFuture")?;
        futures::executor::block_on(self)
    }
}

impl<T> Future for LoopFuture<T> {
    type Output = Result<T, ChannelError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                Err(ChannelError::EventLoopShutDown(
                    "(the loop stopped before finishing)".into(),
                ))
            })
        })
    }
}

impl EventLoop {
    /// Creates a channel over a transport made by `make` on this loop, builds its pipeline
    /// with `init`, and starts it. This is how other transports (UDP peers, ...) become
    /// channels.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use netloom_channel::{ChannelError, ChannelOptions, EventLoopGroup};
    /// let group = EventLoopGroup::new(1, "io")?;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// let ch = group.next().register(
    ///     ChannelOptions::default(),
    ///     move || {
    ///         let s = std::net::TcpStream::connect(addr).map_err(|e| ChannelError::Connect { addr: addr.to_string(), source: e })?;
    ///         s.set_nonblocking(true).map_err(|e| ChannelError::Connect { addr: addr.to_string(), source: e })?;
    ///         tokio::net::TcpStream::from_std(s).map_err(|e| ChannelError::Connect { addr: addr.to_string(), source: e })
    ///     },
    ///     |_pipeline| Ok(()),
    /// ).sync()?;
    /// assert!(ch.is_open());
    /// # Ok(()) }
    /// ```
    pub fn register<T, M, F>(&self, options: ChannelOptions, make: M, init: F) -> ChannelFuture
    where
        T: Transport,
        M: FnOnce() -> Result<T, ChannelError> + Send + 'static,
        F: FnOnce(&mut Pipeline) -> Result<(), ChannelError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job = move || {
            let result = make().and_then(|t| register_local(t, &options, init));
            let _ = tx.send(result);
        };
        match self.execute(job) {
            Ok(()) => LoopFuture(rx),
            Err(e) => LoopFuture::failed(e),
        }
    }

    /// Like [`register`](EventLoop::register), for a transport that already lives on the
    /// calling event loop thread (it need not be `Send`). Fails off a loop thread.
    ///
    /// ```
    /// use netloom_channel::{ChannelOptions, EventLoop};
    /// # let stream: Option<tokio::net::TcpStream> = None;
    /// // Off an event loop thread this is an error:
    /// if let Some(s) = stream {
    ///     assert!(EventLoop::register_here(s, &ChannelOptions::default(), |_| Ok(())).is_err());
    /// }
    /// ```
    pub fn register_here<T: Transport>(
        transport: T,
        options: &ChannelOptions,
        init: impl FnOnce(&mut Pipeline) -> Result<(), ChannelError>,
    ) -> Result<Channel, ChannelError> {
        register_local(transport, options, init)
    }
}

/// Where to connect: a socket address or `host:port`.
///
/// ```
/// use netloom_channel::RemoteAddr;
/// let a: RemoteAddr = "localhost:443".into();
/// assert_eq!(a.to_string(), "localhost:443");
/// let b: RemoteAddr = ("::1", 80).into();
/// assert_eq!(b.to_string(), "[::1]:80");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteAddr {
    /// An address.
    Socket(SocketAddr),
    /// A name and port, resolved when connecting.
    Host(String, u16),
    /// Unparsed `host:port`.
    Text(String),
}

impl std::fmt::Display for RemoteAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteAddr::Socket(a) => write!(f, "{a}"),
            RemoteAddr::Host(h, p) if h.contains(':') => write!(f, "[{h}]:{p}"),
            RemoteAddr::Host(h, p) => write!(f, "{h}:{p}"),
            RemoteAddr::Text(t) => f.write_str(t),
        }
    }
}

impl From<SocketAddr> for RemoteAddr {
    fn from(a: SocketAddr) -> Self {
        RemoteAddr::Socket(a)
    }
}
impl From<&str> for RemoteAddr {
    fn from(s: &str) -> Self {
        match s.parse() {
            Ok(a) => RemoteAddr::Socket(a),
            Err(_) => RemoteAddr::Text(s.to_owned()),
        }
    }
}
impl From<String> for RemoteAddr {
    fn from(s: String) -> Self {
        RemoteAddr::from(s.as_str())
    }
}
impl From<(&str, u16)> for RemoteAddr {
    fn from((h, p): (&str, u16)) -> Self {
        match h.parse() {
            Ok(ip) => RemoteAddr::Socket(SocketAddr::new(ip, p)),
            Err(_) => RemoteAddr::Host(h.to_owned(), p),
        }
    }
}

impl RemoteAddr {
    /// The host part (for TLS server names).
    ///
    /// ```
    /// use netloom_channel::RemoteAddr;
    /// assert_eq!(RemoteAddr::from("example.com:443").host(), "example.com");
    /// assert_eq!(RemoteAddr::from("127.0.0.1:1").host(), "127.0.0.1");
    /// ```
    pub fn host(&self) -> String {
        match self {
            RemoteAddr::Socket(a) => a.ip().to_string(),
            RemoteAddr::Host(h, _) => h.clone(),
            RemoteAddr::Text(t) => t
                .rsplit_once(':')
                .map_or(t.as_str(), |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        }
    }

    async fn resolve(&self) -> Result<Vec<SocketAddr>, ChannelError> {
        let resolved = match self {
            RemoteAddr::Socket(a) => return Ok(vec![*a]),
            RemoteAddr::Host(h, p) => tokio::net::lookup_host((h.as_str(), *p))
                .await
                .map(|it| it.collect::<Vec<_>>()),
            RemoteAddr::Text(t) => tokio::net::lookup_host(t.as_str())
                .await
                .map(|it| it.collect::<Vec<_>>()),
        };
        let addrs: Vec<SocketAddr> = resolved.map_err(|source| ChannelError::Resolve {
            host: self.to_string(),
            source,
        })?;
        if addrs.is_empty() {
            return Err(ChannelError::Resolve {
                host: self.to_string(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
            });
        }
        Ok(addrs)
    }
}

fn no_handlers() -> Initializer {
    Arc::new(|_| Ok(()))
}

/// Applies socket options to a connected stream socket.
pub(crate) fn apply_options(
    sock: SockRef<'_>,
    opts: &ChannelOptions,
    tcp: bool,
) -> std::io::Result<()> {
    if tcp {
        sock.set_tcp_nodelay(opts.tcp_nodelay)?;
        if let Some(idle) = opts.tcp_keepalive {
            sock.set_tcp_keepalive(&TcpKeepalive::new().with_time(idle))?;
        }
        if let Some(bytes) = opts.tcp_notsent_lowat {
            sock.set_tcp_notsent_lowat(bytes)?;
        }
    }
    if let Some(n) = opts.send_buffer_size {
        sock.set_send_buffer_size(n)?;
    }
    if let Some(n) = opts.recv_buffer_size {
        sock.set_recv_buffer_size(n)?;
    }
    Ok(())
}

/// Connects client channels.
///
/// ```no_run
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use std::time::Duration;
/// use netloom_channel::{Bootstrap, ChannelOptions, EventLoopGroup};
/// let group = EventLoopGroup::new(1, "client")?;
/// let channel = Bootstrap::new(&group)
///     .options(ChannelOptions { connect_timeout: Duration::from_secs(2), ..Default::default() })
///     .handler(|_pipeline| Ok(()))
///     .connect("127.0.0.1:7000")
///     .sync()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Bootstrap {
    group: Option<EventLoopGroup>,
    event_loop: Option<EventLoop>,
    init: Initializer,
    options: ChannelOptions,
}

impl Bootstrap {
    /// A bootstrap whose channels go to `group`'s loops in turn.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// let g = netloom_channel::EventLoopGroup::new(1, "c")?;
    /// let _b = netloom_channel::Bootstrap::new(&g);
    /// # Ok(()) }
    /// ```
    pub fn new(group: &EventLoopGroup) -> Bootstrap {
        Bootstrap {
            group: Some(group.clone()),
            event_loop: None,
            init: no_handlers(),
            options: ChannelOptions::default(),
        }
    }

    /// A bootstrap whose channels all go to one loop (a proxy connects on the loop of its
    /// inbound channel, so both ends share a thread).
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// let g = netloom_channel::EventLoopGroup::new(1, "c")?;
    /// let _b = netloom_channel::Bootstrap::on_loop(g.next());
    /// # Ok(()) }
    /// ```
    pub fn on_loop(el: EventLoop) -> Bootstrap {
        Bootstrap {
            group: None,
            event_loop: Some(el),
            init: no_handlers(),
            options: ChannelOptions::default(),
        }
    }

    /// Pins new channels to one loop (a proxy uses its inbound channel's loop).
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// let g = netloom_channel::EventLoopGroup::new(2, "c")?;
    /// let _b = netloom_channel::Bootstrap::new(&g).event_loop(g.next());
    /// # Ok(()) }
    /// ```
    pub fn event_loop(mut self, el: EventLoop) -> Bootstrap {
        self.event_loop = Some(el);
        self
    }

    /// Sets the pipeline initializer.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use netloom_channel::Handler;
    /// struct App;
    /// impl Handler for App {}
    /// let g = netloom_channel::EventLoopGroup::new(1, "c")?;
    /// let _b = netloom_channel::Bootstrap::new(&g).handler(|p| { p.add_last("app", App)?; Ok(()) });
    /// # Ok(()) }
    /// ```
    pub fn handler(
        mut self,
        init: impl Fn(&mut Pipeline) -> Result<(), ChannelError> + Send + Sync + 'static,
    ) -> Bootstrap {
        self.init = Arc::new(init);
        self
    }

    /// Sets the channel options.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use netloom_channel::ChannelOptions;
    /// let g = netloom_channel::EventLoopGroup::new(1, "c")?;
    /// let _b = netloom_channel::Bootstrap::new(&g).options(ChannelOptions { tcp_nodelay: false, ..Default::default() });
    /// # Ok(()) }
    /// ```
    pub fn options(mut self, options: ChannelOptions) -> Bootstrap {
        self.options = options;
        self
    }

    fn target_loop(&self) -> Option<EventLoop> {
        match (&self.event_loop, &self.group) {
            (Some(el), _) => Some(el.clone()),
            (None, Some(g)) => Some(g.next()),
            (None, None) => None,
        }
    }

    fn run_on_loop(
        &self,
        job: impl FnOnce() + Send + 'static,
        rx: oneshot::Receiver<Result<Channel, ChannelError>>,
    ) -> ChannelFuture {
        let Some(el) = self.target_loop() else {
            return LoopFuture::failed(ChannelError::NotOnEventLoop {
                what: "Bootstrap without a group or an event loop",
            });
        };
        match el.execute(job) {
            Ok(()) => LoopFuture(rx),
            Err(e) => LoopFuture::failed(e),
        }
    }

    /// Connects over TCP (trying each resolved address). A refused or timed-out connect is
    /// an error, never an inactive channel.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use netloom_channel::{Bootstrap, ChannelError, EventLoopGroup};
    /// let g = EventLoopGroup::new(1, "c")?;
    /// // Port 1 on loopback: nobody listens.
    /// let err = Bootstrap::new(&g).connect("127.0.0.1:1").sync().unwrap_err();
    /// assert!(matches!(err, ChannelError::Connect { .. }));
    /// # Ok(()) }
    /// ```
    pub fn connect(&self, addr: impl Into<RemoteAddr>) -> ChannelFuture {
        let addr = addr.into();
        let (tx, rx) = oneshot::channel();
        let init = self.init.clone();
        let options = self.options.clone();
        let job = move || {
            tokio::task::spawn_local(async move {
                let _ = tx.send(connect_tcp(addr, options, init).await);
            });
        };
        self.run_on_loop(job, rx)
    }

    /// Connects to a Unix socket.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use netloom_channel::{Bootstrap, EventLoopGroup};
    /// let g = EventLoopGroup::new(1, "c")?;
    /// assert!(Bootstrap::new(&g).connect_unix("/nonexistent/sock").sync().is_err());
    /// # Ok(()) }
    /// ```
    pub fn connect_unix(&self, path: impl AsRef<Path>) -> ChannelFuture {
        let path = path.as_ref().to_path_buf();
        let (tx, rx) = oneshot::channel();
        let init = self.init.clone();
        let options = self.options.clone();
        let job = move || {
            tokio::task::spawn_local(async move {
                let _ = tx.send(connect_unix(path, options, init).await);
            });
        };
        self.run_on_loop(job, rx)
    }
}

async fn connect_tcp(
    addr: RemoteAddr,
    options: ChannelOptions,
    init: Initializer,
) -> Result<Channel, ChannelError> {
    options.validate()?;
    let mut last = None;
    for target in addr.resolve().await? {
        let connect_err = |source| ChannelError::Connect {
            addr: target.to_string(),
            source,
        };
        let socket = if target.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(connect_err)?;
        apply_options(SockRef::from(&socket), &options, true).map_err(connect_err)?;
        match tokio::time::timeout(options.connect_timeout, socket.connect(target)).await {
            Ok(Ok(stream)) => return register_local(stream, &options, |p| init(p)),
            Ok(Err(source)) => last = Some(connect_err(source)),
            Err(_) => {
                last = Some(ChannelError::ConnectTimeout {
                    addr: target.to_string(),
                    timeout: options.connect_timeout,
                })
            }
        }
    }
    Err(last.unwrap_or_else(|| ChannelError::Resolve {
        host: addr.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
    }))
}

async fn connect_unix(
    path: PathBuf,
    options: ChannelOptions,
    init: Initializer,
) -> Result<Channel, ChannelError> {
    options.validate()?;
    let addr = path.display().to_string();
    match tokio::time::timeout(options.connect_timeout, UnixStream::connect(&path)).await {
        Ok(Ok(stream)) => {
            apply_options(SockRef::from(&stream), &options, false).map_err(|source| {
                ChannelError::Connect {
                    addr: addr.clone(),
                    source,
                }
            })?;
            register_local(stream, &options, |p| init(p))
        }
        Ok(Err(source)) => Err(ChannelError::Connect { addr, source }),
        Err(_) => Err(ChannelError::ConnectTimeout {
            addr,
            timeout: options.connect_timeout,
        }),
    }
}

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
            let listener = tcp_listener(addr, sb.backlog, &sb.options)?;
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
            return LoopFuture::failed(e);
        }
        let (tx, rx) = oneshot::channel();
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
                tokio::task::spawn_local(accept_loop(listener, server, sb));
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        };
        match self.parent.next().execute(job) {
            Ok(()) => LoopFuture(rx),
            Err(e) => LoopFuture::failed(e),
        }
    }
}

fn tcp_listener(
    addr: SocketAddr,
    backlog: i32,
    opts: &ChannelOptions,
) -> Result<TcpListener, ChannelError> {
    let bind_err = |source| ChannelError::Bind {
        addr: addr.to_string(),
        source,
    };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .map_err(bind_err)?;
    socket.set_reuse_address(true).map_err(bind_err)?;
    if let Some(n) = opts.recv_buffer_size {
        socket.set_recv_buffer_size(n).map_err(bind_err)?;
    }
    socket.set_nonblocking(true).map_err(bind_err)?;
    socket.bind(&addr.into()).map_err(bind_err)?;
    socket.listen(backlog).map_err(bind_err)?;
    TcpListener::from_std(socket.into()).map_err(bind_err)
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

enum Accepted {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Listener {
    async fn accept(&self) -> std::io::Result<Accepted> {
        match self {
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| Accepted::Tcp(s)),
            Listener::Unix(l) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        }
    }
}

/// Holds one of the `max_connections` slots while its channel's pipeline lives.
struct ConnectionSlot(Arc<AtomicUsize>);

impl crate::Handler for ConnectionSlot {
    fn interest(&self) -> crate::Interest {
        crate::Interest::UNREGISTERED
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn accept_loop(listener: Listener, server: ServerChannel, mut sb: ServerBootstrap) {
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
    let mut failures = crate::log_limit::LogLimit::default();
    let mut refusals = crate::log_limit::LogLimit::default();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = server.0.stop.notified() => break,
            r = listener.accept() => r,
        };
        if let (Ok(_), Some(max)) = (&accepted, sb.max_connections)
            && open.load(Ordering::Acquire) >= max
        {
            // Dropping the stream closes it.
            if let Some(suppressed) = refusals.hit() {
                tracing::warn!(server = %server.0.local, max_connections = max, suppressed, "connection refused: max_connections reached");
            }
            continue;
        }
        match accepted {
            Ok(Accepted::Tcp(stream)) => {
                if let Err(e) = apply_options(SockRef::from(&stream), &options, true) {
                    tracing::debug!(err = %e, "setting options on an accepted socket failed");
                    continue;
                }
                hand_over(
                    &sb.child,
                    stream,
                    TcpStream::into_std,
                    TcpStream::from_std,
                    &options,
                    &sb.init,
                );
            }
            Ok(Accepted::Unix(stream)) => {
                hand_over(
                    &sb.child,
                    stream,
                    UnixStream::into_std,
                    UnixStream::from_std,
                    &options,
                    &sb.init,
                );
            }
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                if let Some(suppressed) = failures.hit() {
                    tracing::warn!(server = %server.0.local, err = %e, suppressed, "accept failed (at most one line per second)");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    drop(listener);
    server.0.close.signal();
}

/// Registers an accepted stream on the next child loop (moving it there if needed).
fn hand_over<S, Std>(
    child: &EventLoopGroup,
    stream: S,
    into_std: fn(S) -> std::io::Result<Std>,
    from_std: fn(Std) -> std::io::Result<S>,
    options: &Arc<ChannelOptions>,
    init: &Initializer,
) where
    S: Transport,
    Std: Send + 'static,
{
    let el = child.next();
    if el.in_event_loop() {
        if let Err(e) = register_local(stream, options, |p| init(p)) {
            tracing::warn!(err = %e, "initializing an accepted channel failed");
        }
        return;
    }
    let std = match into_std(stream) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(err = %e, "moving an accepted socket failed");
            return;
        }
    };
    let options = options.clone();
    let init = init.clone();
    let job = move || match from_std(std) {
        Ok(s) => {
            if let Err(e) = register_local(s, &options, |p| init(p)) {
                tracing::warn!(err = %e, "initializing an accepted channel failed");
            }
        }
        Err(e) => tracing::warn!(err = %e, "registering an accepted socket failed"),
    };
    if let Err(e) = el.execute(job) {
        tracing::warn!(err = %e, "child loop is shut down; connection dropped");
    }
}
