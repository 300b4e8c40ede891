//! The handler trait: every callback of a pipeline stage.
use bytes::Bytes;

use crate::{ChannelError, CloseMode, Context, HandlerResult, Interest, Msg, UserEvent};

/// A pipeline stage. Every callback has a default that passes the event on, so a handler
/// overrides only what it cares about. Inbound events (`channel_*`, `user_event`,
/// `exception_caught`) travel from the socket towards the last handler; outbound operations
/// (`write`, `flush`, `close`) travel from the last handler towards the socket.
///
/// A handler lives on its channel's event loop thread and is never called re-entrantly, so
/// it needs neither `Send` nor `Sync`. An `Err` or a panic from a callback is delivered to
/// the same handler's `exception_caught`; when no handler handles it, the channel closes.
///
/// ```
/// use netloom_channel::{Context, Handler, HandlerResult, Msg};
///
/// /// Counts inbound messages and passes them on.
/// struct Counter(usize);
///
/// impl Handler for Counter {
///     fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
///         self.0 += 1;
///         ctx.fire_channel_read(msg);
///         Ok(())
///     }
/// }
/// ```
#[allow(unused_variables)]
pub trait Handler: 'static {
    /// The callbacks this handler implements; the pipeline passes every other event by
    /// without calling it (see [`Interest`]). Read once, when the handler is added. The
    /// default lists them all.
    ///
    /// ```
    /// use netloom_channel::{Context, Handler, HandlerResult, Interest};
    /// struct Flusher;
    /// impl Handler for Flusher {
    ///     fn interest(&self) -> Interest {
    ///         Interest::READ_COMPLETE
    ///     }
    ///     fn channel_read_complete(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
    ///         ctx.flush();
    ///         ctx.fire_channel_read_complete();
    ///         Ok(())
    ///     }
    /// }
    /// assert_eq!(Flusher.interest(), Interest::READ_COMPLETE);
    /// ```
    fn interest(&self) -> Interest {
        Interest::ALL
    }
    /// The handler was added to a pipeline (before any other callback).
    fn handler_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        Ok(())
    }
    /// The channel was registered with its event loop.
    fn channel_registered(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.fire_channel_registered();
        Ok(())
    }
    /// The channel was deregistered from its event loop (the last callback).
    fn channel_unregistered(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.fire_channel_unregistered();
        Ok(())
    }
    /// The channel is connected.
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.fire_channel_active();
        Ok(())
    }
    /// The channel is closed.
    fn channel_inactive(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.fire_channel_inactive();
        Ok(())
    }
    /// A message arrived (`Bytes` from the socket, or what a decoder made of them).
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        ctx.fire_channel_read(msg);
        Ok(())
    }
    /// A burst of reads ended: the place to flush.
    fn channel_read_complete(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.fire_channel_read_complete();
        Ok(())
    }
    /// Pending outbound bytes crossed a water mark; `writable` is the new state.
    fn channel_writability_changed(
        &mut self,
        ctx: &mut Context<'_>,
        writable: bool,
    ) -> HandlerResult {
        ctx.fire_channel_writability_changed(writable);
        Ok(())
    }
    /// A user event (idle, TLS handshake complete, custom).
    fn user_event(&mut self, ctx: &mut Context<'_>, event: UserEvent) -> HandlerResult {
        ctx.fire_user_event(event);
        Ok(())
    }
    /// An error happened; the default passes it on, and the end of the pipeline closes
    /// the channel.
    fn exception_caught(&mut self, ctx: &mut Context<'_>, error: ChannelError) -> HandlerResult {
        ctx.fire_exception_caught(error);
        Ok(())
    }
    /// The timer set with [`Context::schedule_timer`] expired.
    fn timer_expired(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        Ok(())
    }
    /// Called back after [`Context::resume_later`].
    fn resumed(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        Ok(())
    }
    /// Outbound: write a message (not yet flushed).
    fn write(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        ctx.write(msg);
        Ok(())
    }
    /// Outbound: flush written messages to the socket.
    fn flush(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.flush();
        Ok(())
    }
    /// Outbound: close the channel.
    fn close(&mut self, ctx: &mut Context<'_>, mode: CloseMode) -> HandlerResult {
        ctx.close_with(mode);
        Ok(())
    }
    /// Called when the handler is removed or replaced: bytes it buffered (a decoder's
    /// partial frame) are handed to its replacement, or to the next handler.
    fn take_buffered(&mut self) -> Option<Bytes> {
        None
    }
}
