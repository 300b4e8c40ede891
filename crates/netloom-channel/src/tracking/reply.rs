//! [`Reply`]: the answer of work done on an event loop.
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use tokio::sync::oneshot;

use crate::ChannelError;

/// The result of a manager or UDP endpoint operation, computed on its event loop: `.await`
/// it, or block with [`Reply::sync`] (not on an event loop thread).
///
/// ```no_run
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use netloom_channel::{EventLoopGroup, tracking::Registry};
/// let group = EventLoopGroup::new(1, "io")?;
/// let registry = Registry::new(&group);
/// let manager = registry.manager("udp", "127.0.0.1:0".parse().unwrap())?;
/// let bound = manager.start(None, None).sync()?;
/// # Ok(()) }
/// ```
pub struct Reply<T>(oneshot::Receiver<Result<T, ChannelError>>);

impl<T> Reply<T> {
    pub(crate) fn channel() -> (oneshot::Sender<Result<T, ChannelError>>, Reply<T>) {
        let (tx, rx) = oneshot::channel();
        (tx, Reply(rx))
    }

    pub(crate) fn ready(result: Result<T, ChannelError>) -> Reply<T> {
        let (tx, reply) = Reply::channel();
        let _ = tx.send(result);
        reply
    }

    /// Blocks until the result is there; fails on an event loop thread (it would deadlock).
    ///
    /// ```
    /// # use netloom_channel::{EventLoopGroup, tracking::Registry};
    /// # let group = EventLoopGroup::new(1, "io").unwrap();
    /// let registry = Registry::new(&group);
    /// let manager = registry.manager("tcp", "127.0.0.1:0".parse().unwrap()).unwrap();
    /// assert!(manager.stop().sync().is_ok()); // stopping a stopped manager is fine
    /// ```
    pub fn sync(self) -> Result<T, ChannelError> {
        crate::event_loop::check_blocking("Reply")?;
        futures::executor::block_on(self)
    }
}

impl<T> Future for Reply<T> {
    type Output = Result<T, ChannelError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                Err(ChannelError::EventLoopShutDown(
                    "(the loop stopped before answering)".into(),
                ))
            })
        })
    }
}

/// Runs `fut` on `event_loop` and answers with its result.
pub(crate) fn spawn_reply<T: Send + 'static>(
    event_loop: &crate::EventLoop,
    fut: impl Future<Output = Result<T, ChannelError>> + Send + 'static,
) -> Reply<T> {
    let (tx, reply) = Reply::channel();
    match event_loop.spawn(async move {
        let _ = tx.send(fut.await);
    }) {
        Ok(()) => reply,
        Err(e) => Reply::ready(Err(e)),
    }
}
