//! [`LoopFuture`]: the one future type for work done on an event loop (connects, binds,
//! registrations, tracked-connection managers, UDP endpoints).
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use tokio::sync::oneshot;

use crate::event_loop::check_blocking;
use crate::{Channel, ChannelError, EventLoop, ServerChannel};

/// The result of work done on an event loop — a connect, a bind, a registration, an
/// operation of a [`tracking`](crate::tracking) manager or a UDP endpoint: `.await` it, or
/// block with [`LoopFuture::sync`] (not on an event loop thread: it would deadlock).
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
    /// A future and the sender that completes it.
    pub(crate) fn pending() -> (oneshot::Sender<Result<T, ChannelError>>, LoopFuture<T>) {
        let (tx, rx) = oneshot::channel();
        (tx, LoopFuture(rx))
    }

    /// A future that is already complete.
    pub(crate) fn ready(result: Result<T, ChannelError>) -> LoopFuture<T> {
        let (tx, fut) = LoopFuture::pending();
        let _ = tx.send(result);
        fut
    }

    /// Runs `fut` on `event_loop` and completes with its result.
    pub(crate) fn spawn(
        event_loop: &EventLoop,
        fut: impl Future<Output = Result<T, ChannelError>> + Send + 'static,
    ) -> LoopFuture<T>
    where
        T: Send + 'static,
    {
        let (tx, done) = LoopFuture::pending();
        match event_loop.spawn(async move {
            let _ = tx.send(fut.await);
        }) {
            Ok(()) => done,
            Err(e) => LoopFuture::ready(Err(e)),
        }
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
