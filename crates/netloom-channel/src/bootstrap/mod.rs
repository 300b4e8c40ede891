//! Bootstraps: connect a client channel ([`Bootstrap`]), bind a server that accepts child
//! channels ([`ServerBootstrap`]), or register any [`Transport`] as a channel
//! ([`EventLoop::register`]); each answers with a [`LoopFuture`].
//!
//! - `address`: [`RemoteAddr`], where a client connects;
//! - `future`: [`LoopFuture`], the one future type for work done on a loop;
//! - `socket`: what every bootstrap and the `tracking` managers share — socket options,
//!   listeners, the accept loop, the hand-over to a child loop, connect with a timeout;
//! - `client`, `server`: the two bootstraps.
use std::sync::Arc;

use crate::task::register_local;
use crate::{Channel, ChannelError, ChannelOptions, EventLoop, Pipeline, Transport};

mod address;
mod client;
mod future;
mod server;
pub(crate) mod socket;

pub use address::RemoteAddr;
pub use client::Bootstrap;
pub use future::{BindFuture, ChannelFuture, LoopFuture};
pub use server::{ServerBootstrap, ServerChannel};

/// Builds a new channel's pipeline; runs on the channel's event loop thread.
///
/// ```
/// use std::sync::Arc;
/// use netloom_channel::{EchoHandler, Initializer};
/// let init: Initializer = Arc::new(|p| { p.add_last("echo", EchoHandler)?; Ok(()) });
/// ```
pub type Initializer = Arc<dyn Fn(&mut Pipeline) -> Result<(), ChannelError> + Send + Sync>;

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
        let (tx, done) = LoopFuture::pending();
        let job = move || {
            let result = make().and_then(|t| register_local(t, &options, init));
            let _ = tx.send(result);
        };
        match self.execute(job) {
            Ok(()) => done,
            Err(e) => LoopFuture::ready(Err(e)),
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

fn no_handlers() -> Initializer {
    Arc::new(|_| Ok(()))
}
