//! [`Bootstrap`]: connects client channels over TCP or Unix sockets.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use socket2::SockRef;
use tokio::net::UnixStream;

use super::socket::{apply_options, connect_tcp};
use super::{Initializer, no_handlers};
use crate::task::register_local;
use crate::{
    Channel, ChannelError, ChannelFuture, ChannelOptions, EventLoop, EventLoopGroup, LoopFuture,
    Pipeline, RemoteAddr,
};

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

    /// Runs `connect` on the target loop.
    fn run_on_loop(
        &self,
        connect: impl Future<Output = Result<Channel, ChannelError>> + Send + 'static,
    ) -> ChannelFuture {
        match self.target_loop() {
            Some(el) => LoopFuture::spawn(&el, connect),
            None => LoopFuture::ready(Err(ChannelError::NotOnEventLoop {
                what: "Bootstrap without a group or an event loop",
            })),
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
        let (options, init) = (self.options.clone(), self.init.clone());
        self.run_on_loop(connect_resolved(addr.into(), options, init))
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
        let (options, init) = (self.options.clone(), self.init.clone());
        self.run_on_loop(connect_unix(path.as_ref().to_path_buf(), options, init))
    }
}

/// Connects to each address `addr` resolves to in turn; the first that connects becomes
/// the channel, else the last error is returned.
async fn connect_resolved(
    addr: RemoteAddr,
    options: ChannelOptions,
    init: Initializer,
) -> Result<Channel, ChannelError> {
    options.validate()?;
    let mut last = None;
    for target in addr.resolve().await? {
        match connect_tcp(target, None, &options).await {
            Ok(stream) => return register_local(stream, &options, |p| init(p)),
            Err(e) => last = Some(e),
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
