//! Writes a handler holds back, counted against its channel's writability (Netty's
//! `PendingWriteQueue`).
use std::collections::VecDeque;
use std::fmt;

use crate::{Channel, Context, Msg};

/// A queue of messages a handler holds instead of passing on right away (a delaying
/// handler, a rate limiter, a handler waiting for a handshake), whose bytes count as the
/// channel's pending outbound bytes.
///
/// Without it, held messages are invisible to flow control: the channel stays writable, the
/// application keeps writing, and the handler's queue grows without bound. With it:
///
/// - [`push`](Self::push) adds the item's size to
///   [`Channel::pending_outbound_bytes`]; above the high water mark
///   [`Channel::is_writable`] turns false at once and `channel_writability_changed(false)`
///   reaches the pipeline at the end of the current round, as for bytes waiting for the
///   socket;
/// - [`pop`](Self::pop), [`write_next`](Self::write_next), [`write_all`](Self::write_all),
///   [`clear`](Self::clear) and dropping the queue (with its handler, when the handler is
///   removed or the channel closes) release what they take; below the low water mark the
///   channel becomes writable again.
///
/// Items written on with `write_next` / `write_all` go to the next outbound handler, where
/// they are counted again until the socket takes them, so the channel's total never has a
/// gap. The queue may count against any channel: the handler's own (`ctx.pending_writes()`,
/// for outbound messages it holds), or the channel the held messages are bound for (a
/// handler that delays inbound messages a `forward` will write to the other side).
///
/// Each item counts the number of bytes it stands for (payload length, usually) plus the
/// channel's [`write_message_overhead`](crate::ChannelOptions::write_message_overhead), as a
/// message waiting for the socket does; [`bytes`](Self::bytes) reports the sizes alone.
///
/// ```
/// use std::time::Duration;
/// use netloom_channel::{Context, Handler, HandlerResult, Interest, Msg, PendingWrites};
///
/// /// Holds every outbound message for 10 ms, then writes the batch on.
/// #[derive(Default)]
/// struct Delay {
///     held: Option<PendingWrites>,
/// }
///
/// impl Handler for Delay {
///     fn interest(&self) -> Interest {
///         Interest::WRITE | Interest::FLUSH
///     }
///     fn handler_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
///         self.held = Some(ctx.pending_writes());
///         Ok(())
///     }
///     fn write(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
///         let held = self.held.get_or_insert_with(|| ctx.pending_writes());
///         if held.is_empty() {
///             ctx.schedule_timer(Duration::from_millis(10));
///         }
///         held.push_msg(msg);
///         Ok(())
///     }
///     fn flush(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
///         Ok(()) // the timer flushes
///     }
///     fn timer_expired(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
///         if let Some(held) = &mut self.held {
///             held.write_all(ctx);
///         }
///         ctx.flush();
///         Ok(())
///     }
/// }
///
/// // The counting, on an in-memory channel:
/// use bytes::Bytes;
/// use netloom_channel::EmbeddedChannel;
/// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
/// let mut held: PendingWrites = PendingWrites::new(ch.channel());
/// held.push_msg(Msg::from(Bytes::from(vec![0u8; 100 * 1024])));
/// // Its bytes plus the per-message overhead (`ChannelOptions::write_message_overhead`).
/// assert_eq!(ch.channel().pending_outbound_bytes(), 100 * 1024 + 96);
/// assert!(!ch.channel().is_writable());
/// drop(held);
/// assert_eq!(ch.channel().pending_outbound_bytes(), 0);
/// ```
pub struct PendingWrites<T = Msg> {
    channel: Channel,
    items: VecDeque<(T, usize)>,
    bytes: usize,
}

impl<T> PendingWrites<T> {
    /// An empty queue counting against `channel`.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, PendingWrites};
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// let held: PendingWrites<u32> = PendingWrites::new(ch.channel());
    /// assert!(held.is_empty());
    /// ```
    pub fn new(channel: &Channel) -> PendingWrites<T> {
        PendingWrites {
            channel: channel.clone(),
            items: VecDeque::new(),
            bytes: 0,
        }
    }

    /// The channel the held bytes count against.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, PendingWrites};
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// let held: PendingWrites = PendingWrites::new(ch.channel());
    /// assert_eq!(held.channel().id(), ch.channel().id());
    /// ```
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Holds `item`, counting `size` bytes against the channel.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, PendingWrites};
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// let mut held = PendingWrites::new(ch.channel());
    /// held.push("abc", 3);
    /// assert_eq!((held.len(), held.bytes()), (1, 3));
    /// ```
    pub fn push(&mut self, item: T, size: usize) {
        // Counted like a message waiting for the socket: its bytes plus the channel's
        // `write_message_overhead`.
        let cost = size + self.channel.message_overhead();
        self.bytes += size;
        self.channel.hold_pending(cost);
        self.items.push_back((item, size));
    }

    /// The oldest item, still held.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, PendingWrites};
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// let mut held = PendingWrites::new(ch.channel());
    /// held.push(7u8, 1);
    /// assert_eq!(held.front(), Some(&7));
    /// ```
    pub fn front(&self) -> Option<&T> {
        self.items.front().map(|(item, _)| item)
    }

    /// Takes the oldest item, releasing its bytes.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, PendingWrites};
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// let mut held = PendingWrites::new(ch.channel());
    /// held.push(7u8, 1);
    /// assert_eq!(held.pop(), Some(7));
    /// assert_eq!(ch.channel().pending_outbound_bytes(), 0);
    /// ```
    pub fn pop(&mut self) -> Option<T> {
        let (item, size) = self.items.pop_front()?;
        self.bytes -= size;
        self.channel
            .release_held(size + self.channel.message_overhead());
        if self.items.is_empty() && self.items.capacity() > 64 {
            self.items = VecDeque::new();
        }
        Some(item)
    }

    /// Items held.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, PendingWrites};
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// let held: PendingWrites = PendingWrites::new(ch.channel());
    /// assert_eq!(held.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is held.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, PendingWrites};
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// assert!(PendingWrites::<()>::new(ch.channel()).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes held (the sum of the sizes pushed and not yet taken).
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, PendingWrites};
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// let mut held = PendingWrites::new(ch.channel());
    /// held.push((), 10);
    /// held.push((), 5);
    /// assert_eq!(held.bytes(), 15);
    /// ```
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops every held item, releasing their bytes; returns how many bytes that was.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, PendingWrites};
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// let mut held = PendingWrites::new(ch.channel());
    /// held.push((), 10);
    /// assert_eq!(held.clear(), 10);
    /// assert_eq!(ch.channel().pending_outbound_bytes(), 0);
    /// ```
    pub fn clear(&mut self) -> usize {
        let bytes = std::mem::take(&mut self.bytes);
        let cost = bytes + self.items.len() * self.channel.message_overhead();
        self.items = VecDeque::new();
        self.channel.release_held(cost);
        bytes
    }
}

impl PendingWrites<Msg> {
    /// Holds a message, counting its payload length (0 for a message that is not bytes).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netloom_channel::{EmbeddedChannel, Msg, PendingWrites};
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// let mut held: PendingWrites = PendingWrites::new(ch.channel());
    /// held.push_msg(Msg::from(Bytes::from_static(b"hello")));
    /// assert_eq!(ch.channel().pending_outbound_bytes(), 5 + 96); // + the overhead
    /// ```
    pub fn push_msg(&mut self, msg: Msg) {
        let size = msg.as_bytes().map_or(0, |b| b.len());
        self.push(msg, size);
    }
}

impl<T: Into<Msg>> PendingWrites<T> {
    /// Writes the oldest item on (to the next outbound handler, as `ctx.write` does);
    /// returns false when nothing was held. Not flushed.
    ///
    /// ```
    /// # use netloom_channel::{Context, Handler, HandlerResult, PendingWrites};
    /// /// Lets one held message through per timer tick.
    /// struct Pace(PendingWrites);
    /// impl Handler for Pace {
    ///     fn timer_expired(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
    ///         if self.0.write_next(ctx) {
    ///             ctx.flush();
    ///         }
    ///         ctx.schedule_timer(std::time::Duration::from_millis(1));
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn write_next(&mut self, ctx: &mut Context<'_>) -> bool {
        match self.pop() {
            Some(item) => {
                ctx.write(item);
                true
            }
            None => false,
        }
    }

    /// Writes every held item on, oldest first; returns how many. Not flushed.
    ///
    /// ```
    /// # use netloom_channel::{Context, Handler, HandlerResult, PendingWrites};
    /// /// Releases everything held when the timer fires.
    /// struct Batch(PendingWrites);
    /// impl Handler for Batch {
    ///     fn timer_expired(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
    ///         if self.0.write_all(ctx) > 0 {
    ///             ctx.flush();
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn write_all(&mut self, ctx: &mut Context<'_>) -> usize {
        let mut n = 0;
        while self.write_next(ctx) {
            n += 1;
        }
        n
    }
}

impl<T> Drop for PendingWrites<T> {
    fn drop(&mut self) {
        let cost = self.bytes + self.items.len() * self.channel.message_overhead();
        if cost > 0 {
            self.channel.release_held(cost);
        }
    }
}

impl<T> fmt::Debug for PendingWrites<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingWrites")
            .field("channel", &self.channel)
            .field("items", &self.items.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}
