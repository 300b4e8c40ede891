//! The pipeline: an ordered list of named handlers and the event queue that drives them.
//!
//! Events never call handlers re-entrantly: `ctx.fire_*` and `ctx.write` put the event on
//! the pipeline's queue, addressed to the next handler, and the pipeline delivers queued
//! events one at a time, in order. A handler may therefore add, remove or replace handlers
//! (itself included) from inside any callback.
use std::borrow::Cow;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::outbound::OutboundBuffer;
use crate::tail::{LogTail, Tail};
use crate::{Channel, ChannelError, CloseMode, Handler, HandlerResult, Interest, Msg, UserEvent};

/// An event on its way to a handler.
pub(crate) enum Ev {
    Added,
    Registered,
    Unregistered,
    Active,
    Inactive,
    Read(Msg),
    ReadComplete,
    Writability(bool),
    User(UserEvent),
    Exception(ChannelError),
    Timer,
    Resume,
    Write(Msg),
    Flush,
    Close(CloseMode),
}

impl Ev {
    fn is_outbound(&self) -> bool {
        matches!(self, Ev::Write(_) | Ev::Flush | Ev::Close(_))
    }

    /// `handler_added`, timers and resumes: addressed to one handler, which is called
    /// whatever its interest set (even an empty one).
    fn is_addressed(&self) -> bool {
        matches!(self, Ev::Added | Ev::Timer | Ev::Resume)
    }

    /// The callback this event calls. `handler_added`, timers and resumes are addressed to
    /// one handler and are never skipped: they count as every callback.
    fn interest(&self) -> Interest {
        match self {
            Ev::Added | Ev::Timer | Ev::Resume => Interest::ALL,
            Ev::Registered => Interest::REGISTERED,
            Ev::Unregistered => Interest::UNREGISTERED,
            Ev::Active => Interest::ACTIVE,
            Ev::Inactive => Interest::INACTIVE,
            Ev::Read(_) => Interest::READ,
            Ev::ReadComplete => Interest::READ_COMPLETE,
            Ev::Writability(_) => Interest::WRITABILITY,
            Ev::User(_) => Interest::USER_EVENT,
            Ev::Exception(_) => Interest::EXCEPTION,
            Ev::Write(_) => Interest::WRITE,
            Ev::Flush => Interest::FLUSH,
            Ev::Close(_) => Interest::CLOSE,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Slot(u64),
    Head,
    Tail,
}

struct Queued {
    target: Target,
    ev: Ev,
}

struct Slot {
    id: u64,
    name: Cow<'static, str>,
    handler: Option<Box<dyn Handler>>,
    /// The callbacks the handler implements (read once, when it was added).
    interest: Interest,
    /// Removed while its handler was running; dropped when the callback returns.
    removed: bool,
    replaced_by: Option<u64>,
    timer: Option<Instant>,
}

impl Slot {
    /// Whether events of `kind` stop at this handler.
    fn wants(&self, kind: Interest) -> bool {
        !self.removed && self.interest.intersects(kind)
    }
}

/// The transport end of the pipeline: where outbound operations land. Private to the
/// pipeline: the driver of a channel (its task, the UDP driver) reads the requests through
/// `Pipeline`'s methods and keeps its own state.
#[derive(Default)]
pub(crate) struct Head {
    out: OutboundBuffer,
    flush_requested: bool,
    /// `Forced` or `Graceful` (never `Output`, which sets `shutdown_output`).
    close_requested: Option<CloseMode>,
    /// The output was shut down (or is to be, once what was written before is out):
    /// later writes are dropped.
    shutdown_output: bool,
    closed: bool,
}

/// A channel's ordered list of named handlers — and the contract every handler can rely
/// on.
///
/// Initializers build it; handlers change it at run time through [`Context::pipeline`].
///
/// # Flow
///
/// ```text
///                 application end (Channel::write, Pipeline::write, ...)
///                              |  outbound: write, flush, close
///   +--------------------------v---------------------------+
///   |  handler N   (last added with add_last)              |
///   |     ^                         |                      |
///   |  handler ...                 ...                     |
///   |     |                         v                      |
///   |  handler 1   (first)                                 |
///   +-----^-------------------------|----------------------+
///         | inbound: channel_*,      v  head: the outbound buffer, the
///         | user_event, exception      socket write, shutdown, close
///   [ transport: socket reads ]      [ transport: socket writes ]
/// ```
///
/// Inbound events (`channel_registered`, `channel_active`, `channel_read`,
/// `channel_read_complete`, `channel_writability_changed`, `user_event`,
/// `exception_caught`, `channel_inactive`, `channel_unregistered`) start at the first
/// handler and go towards the last; an unhandled message reaching the end is dropped (a
/// debug line), an unhandled error closes the channel. Outbound operations (`write`,
/// `flush`, `close`) start at the handler that issues them (or the last handler, from a
/// [`Channel`] handle) and go towards the transport. Each callback's default passes the
/// event on; a handler stops an event by not passing it.
///
/// # The two ends
///
/// The pipeline holds intents, its channel's driver acts on them. At the transport end,
/// written messages must be bytes by then (anything else is
/// [`ChannelError::UnsupportedMessage`], an error like any other) and wait in the outbound
/// buffer; flushes, close and output-shutdown requests are recorded. The driver — the
/// channel's task, or the UDP endpoint for its peers — reads the transport, writes flushed
/// bytes, keeps the watermarks, and owns the close and shutdown state. At the application
/// end, what no handler took is reported (logged) and dropped; an error also closes the
/// channel. Every channel works this way, an
/// [`EmbeddedChannel`](crate::EmbeddedChannel) included: it is the channel task over an
/// in-memory transport, and it keeps what reaches the application end for the test
/// instead of logging it.
///
/// # Ordering and re-entrancy
///
/// `ctx.fire_*`, `ctx.write` and the other operations do not call the next handler on the
/// spot: they queue the event, and the pipeline delivers queued events one at a time, in
/// the order they were issued. So a handler is never re-entered, events issued by one
/// callback keep their order (a `flush` never overtakes the `write` before it), and a
/// handler may add, remove or replace handlers — itself included — from inside any
/// callback; events already queued for a removed handler go to its neighbour.
/// `handler_added` runs before any other event reaches a new handler; bytes a removed
/// decoder buffered ([`Handler::take_buffered`]) go to the next handler first.
///
/// # Interest sets
///
/// [`Handler::interest`] lists the callbacks a handler implements; events it does not list
/// pass it by without a call (Netty's `@Skip`). Listing too much costs a call; listing too
/// little means an overridden callback is never called. Marking the impl with
/// [`#[handler]`](crate::handler) computes the set from the callbacks written, so it cannot
/// be wrong (every handler of this workspace whose interest is fixed is written that way).
/// `handler_added`, `timer_expired` and `resumed` are always delivered.
///
/// # Cross-pipeline writes
///
/// A handler writing to *another* channel (a proxy writing what it read to the far side,
/// see [`Forwarder`](crate::Forwarder)) uses that channel's [`Channel`] handle:
/// [`Channel::write`] queues a command for the other channel's task, counts the message in
/// the other channel's pending bytes at once (so `is_writable()` on the handle is current),
/// and the message enters the other pipeline at its application end when that task runs.
/// Writes from one thread to one channel keep their order. Never hold a `Context` of one
/// pipeline while touching another: handles are the only way across.
///
/// # Backpressure
///
/// Bytes written and not yet taken by the socket — plus
/// [`ChannelOptions::write_message_overhead`](crate::ChannelOptions::write_message_overhead)
/// per message, plus what handlers hold in [`PendingWrites`](crate::PendingWrites) — are the
/// channel's pending bytes. Above the high water mark `is_writable()` turns false at once
/// (in the callback whose write crossed it) and `channel_writability_changed(false)` follows
/// at the end of the task's round; below the low mark, `true`. A producer writes while
/// `is_writable()`, resumes on `channel_writability_changed(true)`, and stops reading its
/// source (`set_auto_read(false)`) meanwhile, as [`EchoHandler`](crate::EchoHandler) and the
/// forwarder do. Decoders stop decoding while the channel is unwritable, and a read burst
/// stops there too, so a peer sending tiny messages it never reads the answers to cannot
/// make the channel hold more than the marks allow.
///
/// ```
/// use netloom_channel::{EmbeddedChannel, Handler};
///
/// struct Nop;
/// impl Handler for Nop {}
///
/// let ch = EmbeddedChannel::new(|p| {
///     p.add_last("a", Nop)?.add_last("c", Nop)?.add_after("a", "b", Nop)?;
///     Ok(())
/// })
/// .unwrap();
/// assert_eq!(ch.pipeline().names(), ["a", "b", "c"]);
/// ```
pub struct Pipeline {
    slots: Vec<Slot>,
    next_id: u64,
    queue: VecDeque<Queued>,
    /// Callbacks on the stack right now (a handler being added runs inside its adder). A
    /// running handler is the one whose slot has lent out its `handler`.
    running: u32,
    pub(crate) channel: Channel,
    head: Head,
    /// Where what no handler took is reported.
    tail: Box<dyn Tail>,
    /// A handler set or moved its timer since the driver last asked.
    timers_changed: bool,
    /// Bytes of `Write` events waiting in `queue`: they count towards the high water mark
    /// (so `is_writable` turns false in the callback that crosses it), not towards the
    /// channel's pending bytes.
    queued_write_bytes: usize,
}

impl Pipeline {
    pub(crate) fn new(channel: Channel) -> Pipeline {
        let head = Head {
            out: OutboundBuffer::new(false, channel.message_overhead()),
            ..Head::default()
        };
        Pipeline {
            slots: Vec::new(),
            next_id: 1,
            queue: VecDeque::new(),
            running: 0,
            channel,
            head,
            tail: Box::new(LogTail),
            timers_changed: false,
            queued_write_bytes: 0,
        }
    }

    /// The channel this pipeline belongs to.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// assert!(ch.pipeline().channel().is_active());
    /// ```
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The handler names, first (transport end) to last (application end).
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// assert!(ch.pipeline().names().is_empty());
    /// ```
    pub fn names(&self) -> Vec<&str> {
        self.slots
            .iter()
            .filter(|s| !s.removed)
            .map(|s| &*s.name)
            .collect()
    }

    /// Whether a handler with this name is in the pipeline.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, Handler};
    /// struct Nop;
    /// impl Handler for Nop {}
    /// let ch = EmbeddedChannel::new(|p| { p.add_last("x", Nop)?; Ok(()) }).unwrap();
    /// assert!(ch.pipeline().contains("x"));
    /// ```
    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// Adds a handler at the transport end.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, Handler};
    /// struct Nop;
    /// impl Handler for Nop {}
    /// let ch = EmbeddedChannel::new(|p| { p.add_last("b", Nop)?.add_first("a", Nop)?; Ok(()) }).unwrap();
    /// assert_eq!(ch.pipeline().names(), ["a", "b"]);
    /// ```
    pub fn add_first(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        handler: impl Handler,
    ) -> Result<&mut Self, ChannelError> {
        self.insert(0, name.into(), Box::new(handler))?;
        Ok(self)
    }

    /// Adds a handler at the application end.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, Handler};
    /// struct Nop;
    /// impl Handler for Nop {}
    /// let ch = EmbeddedChannel::new(|p| { p.add_last("a", Nop)?; Ok(()) }).unwrap();
    /// assert_eq!(ch.pipeline().names(), ["a"]);
    /// ```
    pub fn add_last(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        handler: impl Handler,
    ) -> Result<&mut Self, ChannelError> {
        let at = self.slots.len();
        self.insert(at, name.into(), Box::new(handler))?;
        Ok(self)
    }

    /// Adds a handler just before (towards the transport) the handler `base`.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, Handler};
    /// struct Nop;
    /// impl Handler for Nop {}
    /// let ch = EmbeddedChannel::new(|p| { p.add_last("b", Nop)?.add_before("b", "a", Nop)?; Ok(()) }).unwrap();
    /// assert_eq!(ch.pipeline().names(), ["a", "b"]);
    /// ```
    pub fn add_before(
        &mut self,
        base: &str,
        name: impl Into<Cow<'static, str>>,
        handler: impl Handler,
    ) -> Result<&mut Self, ChannelError> {
        let at = self.require(base)?;
        self.insert(at, name.into(), Box::new(handler))?;
        Ok(self)
    }

    /// Adds a handler just after (towards the application) the handler `base`.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, Handler};
    /// struct Nop;
    /// impl Handler for Nop {}
    /// let ch = EmbeddedChannel::new(|p| { p.add_last("a", Nop)?.add_after("a", "b", Nop)?; Ok(()) }).unwrap();
    /// assert_eq!(ch.pipeline().names(), ["a", "b"]);
    /// ```
    pub fn add_after(
        &mut self,
        base: &str,
        name: impl Into<Cow<'static, str>>,
        handler: impl Handler,
    ) -> Result<&mut Self, ChannelError> {
        let at = self.require(base)? + 1;
        self.insert(at, name.into(), Box::new(handler))?;
        Ok(self)
    }

    /// Removes the handler `name` (it may be the handler that is running). Bytes it had
    /// buffered ([`Handler::take_buffered`]) go to the next handler.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, Handler};
    /// struct Nop;
    /// impl Handler for Nop {}
    /// let mut ch = EmbeddedChannel::new(|p| { p.add_last("a", Nop)?; Ok(()) }).unwrap();
    /// ch.pipeline_mut().remove("a").unwrap();
    /// assert!(ch.pipeline_mut().remove("a").is_err());
    /// ```
    pub fn remove(&mut self, name: &str) -> Result<&mut Self, ChannelError> {
        let idx = self.require(name)?;
        self.remove_at(idx, None);
        Ok(self)
    }

    /// Replaces the handler `old` by `handler` named `new_name`, at the same place. Bytes the
    /// old handler had buffered are delivered to the new one first.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, Handler};
    /// struct Nop;
    /// impl Handler for Nop {}
    /// let mut ch = EmbeddedChannel::new(|p| { p.add_last("a", Nop)?; Ok(()) }).unwrap();
    /// ch.pipeline_mut().replace("a", "b", Nop).unwrap();
    /// assert_eq!(ch.pipeline().names(), ["b"]);
    /// ```
    pub fn replace(
        &mut self,
        old: &str,
        new_name: impl Into<Cow<'static, str>>,
        handler: impl Handler,
    ) -> Result<&mut Self, ChannelError> {
        let idx = self.require(old)?;
        let new_name = new_name.into();
        if new_name != old && self.position(&new_name).is_some() {
            return Err(ChannelError::DuplicateHandler(new_name.into_owned()));
        }
        let id = self.insert_unchecked(idx + 1, new_name, Box::new(handler));
        self.remove_at(idx, Some(id));
        Ok(self)
    }

    /// Sends a user event from the transport end through every handler.
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, UserEvent};
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.pipeline_mut().fire_user_event(UserEvent::Custom(Box::new(1u8)));
    /// ```
    pub fn fire_user_event(&mut self, event: UserEvent) {
        self.fire_inbound(Ev::User(event));
    }

    /// Writes a message from the application end (through every outbound handler), without
    /// flushing.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netloom_channel::{EmbeddedChannel, Msg};
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.pipeline_mut().write(Msg::from(Bytes::from_static(b"x")));
    /// ```
    pub fn write(&mut self, msg: Msg) {
        self.fire_outbound(Ev::Write(msg));
    }

    /// Flushes from the application end.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.pipeline_mut().flush();
    /// ```
    pub fn flush(&mut self) {
        self.fire_outbound(Ev::Flush);
    }

    /// Closes from the application end (through every outbound handler, so TLS can say
    /// goodbye).
    ///
    /// ```
    /// use netloom_channel::{CloseMode, EmbeddedChannel};
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.pipeline_mut().close(CloseMode::Graceful);
    /// ch.run_pending();
    /// assert!(!ch.channel().is_open());
    /// ```
    pub fn close(&mut self, mode: CloseMode) {
        self.fire_outbound(Ev::Close(mode));
    }

    // ---- internals -------------------------------------------------------------------

    fn position(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| !s.removed && s.name == name)
    }

    fn require(&self, name: &str) -> Result<usize, ChannelError> {
        self.position(name)
            .ok_or_else(|| ChannelError::NoSuchHandler(name.to_owned()))
    }

    fn index_of(&self, id: u64) -> Option<usize> {
        self.slots.iter().position(|s| s.id == id)
    }

    /// `index_of`, trying `hint` first.
    fn index_near(&self, id: u64, hint: usize) -> Option<usize> {
        match self.slots.get(hint) {
            Some(s) if s.id == id => Some(hint),
            _ => self.index_of(id),
        }
    }

    fn insert(
        &mut self,
        at: usize,
        name: Cow<'static, str>,
        handler: Box<dyn Handler>,
    ) -> Result<u64, ChannelError> {
        if self.position(&name).is_some() {
            return Err(ChannelError::DuplicateHandler(name.into_owned()));
        }
        Ok(self.insert_unchecked(at, name, handler))
    }

    fn insert_unchecked(
        &mut self,
        at: usize,
        name: Cow<'static, str>,
        handler: Box<dyn Handler>,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let interest = handler.interest();
        self.slots.insert(
            at.min(self.slots.len()),
            Slot {
                id,
                name,
                interest,
                handler: Some(handler),
                removed: false,
                replaced_by: None,
                timer: None,
            },
        );
        // handler_added runs now, before any other event can reach the new handler.
        self.deliver(id, Ev::Added);
        id
    }

    fn remove_at(&mut self, idx: usize, replaced_by: Option<u64>) {
        let slot = &mut self.slots[idx];
        slot.replaced_by = replaced_by;
        if slot.handler.is_none() {
            // Running right now: finished when its callback returns.
            slot.removed = true;
            return;
        }
        let slot = self.slots.remove(idx);
        if let Some(handler) = slot.handler {
            self.finish_removal(slot.id, idx, replaced_by, handler);
        }
    }

    /// Retargets events queued for a removed handler and hands its buffered bytes on.
    /// `idx` is where the slot was (it is already out of `slots`).
    fn finish_removal(
        &mut self,
        id: u64,
        idx: usize,
        replaced_by: Option<u64>,
        mut handler: Box<dyn Handler>,
    ) {
        let next = replaced_by.map(Target::Slot).unwrap_or_else(|| {
            self.slots[idx..]
                .iter()
                .find(|s| !s.removed)
                .map_or(Target::Tail, |s| Target::Slot(s.id))
        });
        let prev = replaced_by.map(Target::Slot).unwrap_or_else(|| {
            self.slots[..idx]
                .iter()
                .rev()
                .find(|s| !s.removed)
                .map_or(Target::Head, |s| Target::Slot(s.id))
        });
        for q in self.queue.iter_mut() {
            if q.target == Target::Slot(id) {
                if matches!(q.ev, Ev::Added | Ev::Timer | Ev::Resume) {
                    q.target = Target::Tail; // meaningless for the others; dropped at the tail
                    q.ev = Ev::ReadComplete;
                } else {
                    q.target = if q.ev.is_outbound() { prev } else { next };
                }
            }
        }
        if let Some(bytes) = handler.take_buffered().filter(|b| !b.is_empty()) {
            self.queue.push_front(Queued {
                target: next,
                ev: Ev::Read(Msg::from(bytes)),
            });
        }
    }

    /// The next handler after `id` (towards the application) that takes `kind`.
    fn next_after(&self, id: u64, hint: usize, kind: Interest) -> Target {
        let Some(idx) = self.index_near(id, hint) else {
            return Target::Tail;
        };
        self.slots[idx + 1..]
            .iter()
            .find(|s| s.wants(kind))
            .map_or(Target::Tail, |s| Target::Slot(s.id))
    }

    /// The next handler before `id` (towards the transport) that takes `kind`.
    fn prev_before(&self, id: u64, hint: usize, kind: Interest) -> Target {
        let Some(idx) = self.index_near(id, hint) else {
            return Target::Head;
        };
        self.slots[..idx]
            .iter()
            .rev()
            .find(|s| s.wants(kind))
            .map_or(Target::Head, |s| Target::Slot(s.id))
    }

    /// The handlers an event of `kind` may go to: those that take it, or, while events are
    /// queued, every handler. Passing a handler by is only safe when nothing is queued for
    /// it: an event that skipped ahead could overtake one queued earlier (a flush its write).
    fn reach(&self, kind: Interest) -> Interest {
        if self.queue.is_empty() {
            kind
        } else {
            Interest::ALL
        }
    }

    /// Queues an inbound event at the first handler that takes it.
    pub(crate) fn fire_inbound(&mut self, ev: Ev) {
        let kind = self.reach(ev.interest());
        let target = self
            .slots
            .iter()
            .find(|s| s.wants(kind))
            .map_or(Target::Tail, |s| Target::Slot(s.id));
        self.queue.push_back(Queued { target, ev });
    }

    /// Queues an outbound event at the last handler that takes it.
    pub(crate) fn fire_outbound(&mut self, ev: Ev) {
        let kind = self.reach(ev.interest());
        let target = self
            .slots
            .iter()
            .rev()
            .find(|s| s.wants(kind))
            .map_or(Target::Head, |s| Target::Slot(s.id));
        self.push_outbound(target, ev);
    }

    /// Queues an outbound event; a write's bytes count towards the high water mark while
    /// it waits.
    fn push_outbound(&mut self, target: Target, ev: Ev) {
        if let Ev::Write(msg) = &ev {
            let len = msg.as_bytes().map_or(0, |b| b.len());
            if len > 0 {
                self.queued_write_bytes += len;
                self.channel.check_high_water(self.queued_write_bytes);
            }
        }
        self.queue.push_back(Queued { target, ev });
    }

    /// Fires an inbound event at the first handler and runs the pipeline until it is idle.
    /// When nothing is queued and no handler is running (the task's read path), the event
    /// goes straight to the handler instead of through the queue: same order, less copying.
    pub(crate) fn dispatch_inbound(&mut self, ev: Ev) {
        if self.queue.is_empty() && self.running == 0 {
            let kind = ev.interest();
            match self.slots.iter().position(|s| s.wants(kind)) {
                Some(idx) => self.deliver_at(idx, ev),
                None => self.at_tail(ev),
            }
        } else {
            self.fire_inbound(ev);
        }
        self.run();
    }

    /// `dispatch_inbound` of a read, calling `channel_read` directly (the hot path: no
    /// event to build and match).
    pub(crate) fn dispatch_read(&mut self, msg: Msg) {
        if self.queue.is_empty() && self.running == 0 {
            match self.slots.iter().position(|s| s.wants(Interest::READ)) {
                Some(idx) => self.call_at(idx, false, |h, ctx| h.channel_read(ctx, msg)),
                None => self.tail_read(msg),
            }
        } else {
            self.fire_inbound(Ev::Read(msg));
        }
        self.run();
    }

    /// Whether any handler takes events of `kind` (when none does, the task need not
    /// build the event: `channel_read_complete` for most pipelines).
    pub(crate) fn takes(&self, kind: Interest) -> bool {
        self.slots.iter().any(|s| s.wants(kind))
    }

    pub(crate) fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Delivers queued events until the queue is empty.
    pub(crate) fn run(&mut self) {
        while let Some(q) = self.queue.pop_front() {
            if let Ev::Write(msg) = &q.ev {
                self.queued_write_bytes -= msg.as_bytes().map_or(0, |b| b.len());
            }
            match q.target {
                Target::Head => self.at_head(q.ev),
                Target::Tail => self.at_tail(q.ev),
                Target::Slot(id) => self.deliver(id, q.ev),
            }
        }
    }

    fn deliver(&mut self, id: u64, ev: Ev) {
        match self.index_of(id) {
            Some(idx) => self.deliver_at(idx, ev),
            None => tracing::trace!(id, "event for a handler that is gone"),
        }
    }

    /// Delivers `ev` to the handler at `idx`, or passes it on if that handler does not take it.
    fn deliver_at(&mut self, idx: usize, ev: Ev) {
        let id = self.slots[idx].id;
        let kind = ev.interest();
        if !ev.is_addressed() && !self.slots[idx].interest.intersects(kind) {
            // Addressed to a handler that does not take it (the neighbour of a handler that
            // forwarded while events were queued, a retargeted event, an error for a handler
            // without `exception_caught`): passed on as its default callback would.
            let reach = self.reach(kind);
            let target = if ev.is_outbound() {
                self.prev_before(id, idx, reach)
            } else {
                self.next_after(id, idx, reach)
            };
            match target {
                Target::Head => self.at_head(ev),
                Target::Tail => self.at_tail(ev),
                target if ev.is_outbound() => self.push_outbound(target, ev),
                target => self.queue.push_back(Queued { target, ev }),
            }
            return;
        }
        let was_exception = matches!(ev, Ev::Exception(_));
        self.call_at(idx, was_exception, |h, ctx| invoke(h, ctx, ev));
    }

    /// Runs `callback` on the handler at `idx`; an error or a panic goes to the handler's
    /// `exception_caught` (or closes the channel if `was_exception`). A running handler
    /// gets nothing: events never re-enter it.
    fn call_at(
        &mut self,
        idx: usize,
        was_exception: bool,
        callback: impl FnOnce(&mut dyn Handler, &mut Context<'_>) -> HandlerResult,
    ) {
        let id = self.slots[idx].id;
        let Some(mut handler) = self.slots[idx].handler.take() else {
            return;
        };
        self.running += 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut ctx = Context {
                p: self,
                id,
                hint: idx,
            };
            callback(&mut *handler, &mut ctx)
        }));
        self.running -= 1;
        // Put the handler back, or finish its removal.
        let mut removed_name = None;
        match self.index_near(id, idx) {
            Some(i) if !self.slots[i].removed => self.slots[i].handler = Some(handler),
            Some(i) => {
                let slot = self.slots.remove(i);
                removed_name = Some(slot.name);
                self.finish_removal(id, i, slot.replaced_by, handler);
            }
            None => {}
        }
        if matches!(outcome, Ok(Ok(()))) {
            return;
        }
        let name = match (removed_name, self.index_of(id)) {
            (Some(n), _) => n.into_owned(),
            (None, Some(i)) => self.slots[i].name.to_string(),
            (None, None) => String::new(),
        };
        let error = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(source)) => ChannelError::Handler {
                handler: name,
                source,
            },
            Err(panic) => ChannelError::HandlerPanicked {
                handler: name,
                message: panic_message(&*panic),
            },
        };
        if was_exception {
            tracing::warn!(channel = %self.channel, %error, "exception_caught failed; closing");
            self.request_close(CloseMode::Forced);
            return;
        }
        let target = match self.index_of(id) {
            Some(_) => Target::Slot(id),
            None => Target::Tail,
        };
        self.queue.push_back(Queued {
            target,
            ev: Ev::Exception(error),
        });
    }

    fn at_head(&mut self, ev: Ev) {
        match ev {
            Ev::Write(msg) => self.head_write(msg),
            Ev::Flush => self.head_flush(),
            Ev::Close(CloseMode::Output) => self.head.shutdown_output = true,
            Ev::Close(mode) => self.request_close(mode),
            _ => {}
        }
    }

    // ---- the head, as the channel's driver sees it ----------------------------------

    /// Asks for a close (what a `close` reaching the head does): `Forced` wins over
    /// `Graceful`; `Output` is a half-close and asks for an output shutdown instead.
    pub(crate) fn request_close(&mut self, mode: CloseMode) {
        if mode == CloseMode::Output {
            self.head.shutdown_output = true;
            return;
        }
        let next = match (self.head.close_requested, mode) {
            (Some(CloseMode::Forced), _) | (_, CloseMode::Forced) => CloseMode::Forced,
            _ => CloseMode::Graceful,
        };
        self.head.close_requested = Some(next);
    }

    /// The close asked for so far (`Graceful` or `Forced`).
    pub(crate) fn close_requested(&self) -> Option<CloseMode> {
        self.head.close_requested
    }

    /// Whether an output shutdown (`CloseMode::Output`) was asked for.
    pub(crate) fn output_shutdown_requested(&self) -> bool {
        self.head.shutdown_output
    }

    /// Whether a flush reached the head since the last `take_flush_request`.
    pub(crate) fn flush_requested(&self) -> bool {
        self.head.flush_requested
    }

    /// Clears the flush request (the driver is about to write).
    pub(crate) fn take_flush_request(&mut self) -> bool {
        std::mem::take(&mut self.head.flush_requested)
    }

    /// The channel is closed: writes reaching the head from now on are dropped.
    pub(crate) fn mark_head_closed(&mut self) {
        self.head.closed = true;
    }

    /// The outbound buffer: written messages waiting for the transport.
    pub(crate) fn outbound(&self) -> &OutboundBuffer {
        &self.head.out
    }

    /// The outbound buffer, for the driver that writes it to the transport.
    pub(crate) fn outbound_mut(&mut self) -> &mut OutboundBuffer {
        &mut self.head.out
    }

    /// A write reached the transport end: its bytes join the outbound buffer.
    fn head_write(&mut self, msg: Msg) {
        if self.head.closed || self.head.shutdown_output {
            tracing::trace!(channel = %self.channel, "write after close or output shutdown dropped");
        } else {
            match msg.into_bytes() {
                Ok(bytes) => {
                    self.channel
                        .account_pending(bytes.len() + self.channel.message_overhead());
                    self.channel.check_high_water(0);
                    self.head.out.push(bytes);
                }
                Err(msg) => {
                    let err = ChannelError::UnsupportedMessage {
                        type_name: msg.type_name(),
                        channel: self.channel.to_string(),
                    };
                    self.fire_inbound(Ev::Exception(err));
                }
            }
        }
    }

    /// A flush reached the transport end.
    fn head_flush(&mut self) {
        self.head.out.mark_flushed();
        self.head.flush_requested = true;
    }

    /// The application end: only messages and errors that no handler took need anything.
    #[inline]
    fn at_tail(&mut self, ev: Ev) {
        match ev {
            Ev::Read(msg) => self.tail_read(msg),
            Ev::Exception(err) => self.tail_exception(err),
            _ => {}
        }
    }

    #[cold]
    fn tail_read(&mut self, msg: Msg) {
        self.tail.read(&self.channel, msg);
    }

    /// An unhandled error closes the channel (forced), whatever the tail reports.
    #[cold]
    fn tail_exception(&mut self, err: ChannelError) {
        self.request_close(CloseMode::Forced);
        self.tail.exception(&self.channel, err);
    }

    /// Replaces where unhandled messages and errors are reported (the driver does it once,
    /// before the channel starts).
    pub(crate) fn set_tail(&mut self, tail: Box<dyn Tail>) {
        self.tail = tail;
    }

    /// Whether a handler set or moved its timer since the last call (the driver re-arms
    /// its alarm).
    pub(crate) fn take_timers_changed(&mut self) -> bool {
        std::mem::take(&mut self.timers_changed)
    }

    /// Whether a handler set or moved its timer since the last `take_timers_changed`.
    pub(crate) fn timers_changed(&self) -> bool {
        self.timers_changed
    }

    /// Frees the event queue, scratch and write buffer capacity of a pipeline with nothing
    /// queued (UDP peers: thousands of idle pipelines must stay small).
    pub(crate) fn shrink_idle(&mut self) {
        if self.queue.is_empty() && self.queue.capacity() > 0 {
            self.queue = VecDeque::new();
        }
        if self.head.out.is_empty() {
            self.head.out = self.head.out.emptied();
        }
        self.slots.shrink_to_fit();
    }

    /// The earliest handler timer.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|s| s.timer).min()
    }

    /// Queues `timer_expired` for every handler whose timer is due.
    pub(crate) fn fire_due_timers(&mut self, now: Instant) {
        for slot in self.slots.iter_mut() {
            if slot.timer.is_some_and(|t| t <= now) {
                slot.timer = None;
                self.queue.push_back(Queued {
                    target: Target::Slot(slot.id),
                    ev: Ev::Timer,
                });
            }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

fn invoke(h: &mut dyn Handler, ctx: &mut Context<'_>, ev: Ev) -> HandlerResult {
    match ev {
        Ev::Added => h.handler_added(ctx),
        Ev::Registered => h.channel_registered(ctx),
        Ev::Unregistered => h.channel_unregistered(ctx),
        Ev::Active => h.channel_active(ctx),
        Ev::Inactive => h.channel_inactive(ctx),
        Ev::Read(msg) => h.channel_read(ctx, msg),
        Ev::ReadComplete => h.channel_read_complete(ctx),
        Ev::Writability(w) => h.channel_writability_changed(ctx, w),
        Ev::User(e) => h.user_event(ctx, e),
        Ev::Exception(e) => h.exception_caught(ctx, e),
        Ev::Timer => h.timer_expired(ctx),
        Ev::Resume => h.resumed(ctx),
        Ev::Write(msg) => h.write(ctx, msg),
        Ev::Flush => h.flush(ctx),
        Ev::Close(mode) => h.close(ctx, mode),
    }
}

/// A handler's view of its pipeline during a callback: pass events on, write, close,
/// change the pipeline, set a timer.
///
/// ```
/// use netloom_channel::{Context, Handler, HandlerResult, Msg};
///
/// /// Echoes every message, flushing once per read burst.
/// struct Echo;
/// impl Handler for Echo {
///     fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
///         ctx.write(msg);
///         Ok(())
///     }
///     fn channel_read_complete(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
///         ctx.flush();
///         Ok(())
///     }
/// }
/// ```
pub struct Context<'a> {
    p: &'a mut Pipeline,
    id: u64,
    /// Where the handler was when the callback started (checked before use).
    hint: usize,
}

macro_rules! fire_inbound_fn {
    ($(#[$doc:meta])* $name:ident => $ev:expr) => {
        $(#[$doc])*
        pub fn $name(&mut self) {
            self.forward_inbound($ev);
        }
    };
}

impl Context<'_> {
    // The head and the tail run no handler code, so events for them are handled right
    // away instead of taking a trip through the queue.
    fn forward_inbound(&mut self, ev: Ev) {
        match self
            .p
            .next_after(self.id, self.hint, self.p.reach(ev.interest()))
        {
            Target::Tail => self.p.at_tail(ev),
            target => self.p.queue.push_back(Queued { target, ev }),
        }
    }

    fn forward_outbound(&mut self, ev: Ev) {
        match self
            .p
            .prev_before(self.id, self.hint, self.p.reach(ev.interest()))
        {
            Target::Head => self.p.at_head(ev),
            target => self.p.push_outbound(target, ev),
        }
    }

    /// This handler's name.
    ///
    /// ```
    /// # use netloom_channel::{Context, Handler, HandlerResult};
    /// struct Named;
    /// impl Handler for Named {
    ///     fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
    ///         tracing::info!(handler = ctx.name(), "active");
    ///         ctx.fire_channel_active();
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn name(&self) -> &str {
        self.p
            .index_near(self.id, self.hint)
            .map_or("", |i| &*self.p.slots[i].name)
    }

    /// The channel.
    ///
    /// ```
    /// # use netloom_channel::{Context, Handler, HandlerResult};
    /// struct Log;
    /// impl Handler for Log {
    ///     fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
    ///         println!("connected: {}", ctx.channel());
    ///         ctx.fire_channel_active();
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn channel(&self) -> &Channel {
        &self.p.channel
    }

    /// The pipeline, to add, remove or replace handlers (this one included).
    ///
    /// ```
    /// # use netloom_channel::{Context, Handler, HandlerResult, Msg};
    /// /// Removes itself after the first message.
    /// struct Once;
    /// impl Handler for Once {
    ///     fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
    ///         let name = ctx.name().to_owned();
    ///         ctx.pipeline().remove(&name)?;
    ///         ctx.fire_channel_read(msg);
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn pipeline(&mut self) -> &mut Pipeline {
        self.p
    }

    fire_inbound_fn!(
        /// Passes `channel_registered` to the next handler.
        ///
        /// ```
        /// # use netloom_channel::{Context, Handler, HandlerResult};
        /// struct H;
        /// impl Handler for H {
        ///     fn channel_registered(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ///         ctx.fire_channel_registered();
        ///         Ok(())
        ///     }
        /// }
        /// ```
        fire_channel_registered => Ev::Registered
    );
    fire_inbound_fn!(
        /// Passes `channel_unregistered` to the next handler.
        ///
        /// ```
        /// # use netloom_channel::{Context, Handler, HandlerResult};
        /// struct H;
        /// impl Handler for H {
        ///     fn channel_unregistered(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ///         ctx.fire_channel_unregistered();
        ///         Ok(())
        ///     }
        /// }
        /// ```
        fire_channel_unregistered => Ev::Unregistered
    );
    fire_inbound_fn!(
        /// Passes `channel_active` to the next handler.
        ///
        /// ```
        /// # use netloom_channel::{Context, Handler, HandlerResult};
        /// struct H;
        /// impl Handler for H {
        ///     fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ///         ctx.fire_channel_active();
        ///         Ok(())
        ///     }
        /// }
        /// ```
        fire_channel_active => Ev::Active
    );
    fire_inbound_fn!(
        /// Passes `channel_inactive` to the next handler.
        ///
        /// ```
        /// # use netloom_channel::{Context, Handler, HandlerResult};
        /// struct H;
        /// impl Handler for H {
        ///     fn channel_inactive(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ///         ctx.fire_channel_inactive();
        ///         Ok(())
        ///     }
        /// }
        /// ```
        fire_channel_inactive => Ev::Inactive
    );
    fire_inbound_fn!(
        /// Passes `channel_read_complete` to the next handler.
        ///
        /// ```
        /// # use netloom_channel::{Context, Handler, HandlerResult};
        /// struct H;
        /// impl Handler for H {
        ///     fn channel_read_complete(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ///         ctx.fire_channel_read_complete();
        ///         Ok(())
        ///     }
        /// }
        /// ```
        fire_channel_read_complete => Ev::ReadComplete
    );

    /// Passes a message to the next handler.
    ///
    /// ```
    /// # use netloom_channel::{Context, Handler, HandlerResult, Msg};
    /// struct H;
    /// impl Handler for H {
    ///     fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
    ///         ctx.fire_channel_read(msg);
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn fire_channel_read(&mut self, msg: impl Into<Msg>) {
        self.forward_inbound(Ev::Read(msg.into()));
    }

    /// Passes a writability change to the next handler.
    ///
    /// ```
    /// # use netloom_channel::{Context, Handler, HandlerResult};
    /// struct H;
    /// impl Handler for H {
    ///     fn channel_writability_changed(&mut self, ctx: &mut Context<'_>, w: bool) -> HandlerResult {
    ///         ctx.fire_channel_writability_changed(w);
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn fire_channel_writability_changed(&mut self, writable: bool) {
        self.forward_inbound(Ev::Writability(writable));
    }

    /// Passes a user event to the next handler.
    ///
    /// ```
    /// # use netloom_channel::{Context, Handler, HandlerResult, UserEvent};
    /// struct H;
    /// impl Handler for H {
    ///     fn user_event(&mut self, ctx: &mut Context<'_>, ev: UserEvent) -> HandlerResult {
    ///         ctx.fire_user_event(ev);
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn fire_user_event(&mut self, event: UserEvent) {
        self.forward_inbound(Ev::User(event));
    }

    /// Passes an error to the next handler's `exception_caught`.
    ///
    /// ```
    /// # use netloom_channel::{ChannelError, Context, Handler, HandlerResult};
    /// struct H;
    /// impl Handler for H {
    ///     fn exception_caught(&mut self, ctx: &mut Context<'_>, e: ChannelError) -> HandlerResult {
    ///         ctx.fire_exception_caught(e);
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn fire_exception_caught(&mut self, error: ChannelError) {
        self.forward_inbound(Ev::Exception(error));
    }

    /// Writes a message towards the transport (not flushed yet).
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use netloom_channel::{Context, Handler, HandlerResult};
    /// struct Greeter;
    /// impl Handler for Greeter {
    ///     fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
    ///         ctx.write(Bytes::from_static(b"hello\n"));
    ///         ctx.flush();
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn write(&mut self, msg: impl Into<Msg>) {
        // The usual case, a handler right after the head, skips building an event.
        match self
            .p
            .prev_before(self.id, self.hint, self.p.reach(Interest::WRITE))
        {
            Target::Head => self.p.head_write(msg.into()),
            target => self.p.push_outbound(target, Ev::Write(msg.into())),
        }
    }

    /// Flushes written messages.
    ///
    /// ```
    /// # use netloom_channel::{Context, Handler, HandlerResult};
    /// struct H;
    /// impl Handler for H {
    ///     fn channel_read_complete(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
    ///         ctx.flush();
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn flush(&mut self) {
        match self
            .p
            .prev_before(self.id, self.hint, self.p.reach(Interest::FLUSH))
        {
            Target::Head => self.p.head_flush(),
            target => self.p.queue.push_back(Queued {
                target,
                ev: Ev::Flush,
            }),
        }
    }

    /// Writes and flushes.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use netloom_channel::{Context, Handler, HandlerResult};
    /// struct H;
    /// impl Handler for H {
    ///     fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
    ///         ctx.write_and_flush(Bytes::from_static(b"hi"));
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn write_and_flush(&mut self, msg: impl Into<Msg>) {
        self.write(msg);
        self.flush();
    }

    /// Closes the channel gracefully (pending writes are written first).
    ///
    /// ```
    /// # use netloom_channel::{ChannelError, Context, Handler, HandlerResult};
    /// struct H;
    /// impl Handler for H {
    ///     fn exception_caught(&mut self, ctx: &mut Context<'_>, _e: ChannelError) -> HandlerResult {
    ///         ctx.close();
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn close(&mut self) {
        self.close_with(CloseMode::Graceful);
    }

    /// Closes the channel, gracefully or forced.
    ///
    /// ```
    /// # use netloom_channel::{ChannelError, CloseMode, Context, Handler, HandlerResult};
    /// struct H;
    /// impl Handler for H {
    ///     fn exception_caught(&mut self, ctx: &mut Context<'_>, _e: ChannelError) -> HandlerResult {
    ///         ctx.close_with(CloseMode::Forced);
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn close_with(&mut self, mode: CloseMode) {
        self.forward_outbound(Ev::Close(mode));
    }

    /// Turns reading from the socket on or off (backpressure).
    ///
    /// ```
    /// # use netloom_channel::{Context, Handler, HandlerResult};
    /// struct H;
    /// impl Handler for H {
    ///     fn channel_writability_changed(&mut self, ctx: &mut Context<'_>, w: bool) -> HandlerResult {
    ///         ctx.set_auto_read(w);
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn set_auto_read(&mut self, on: bool) {
        self.p.channel.set_auto_read(on);
    }

    /// Calls this handler's `timer_expired` after `after` (replacing its previous timer).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use netloom_channel::{Context, Handler, HandlerResult};
    /// struct Tick;
    /// impl Handler for Tick {
    ///     fn handler_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
    ///         ctx.schedule_timer(Duration::from_secs(1));
    ///         Ok(())
    ///     }
    ///     fn timer_expired(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
    ///         ctx.schedule_timer(Duration::from_secs(1));
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn schedule_timer(&mut self, after: Duration) {
        if let Some(i) = self.p.index_near(self.id, self.hint) {
            self.p.slots[i].timer = Some(Instant::now() + after);
            self.p.timers_changed = true;
        }
    }

    /// Calls this handler's [`Handler::resumed`] after the events queued so far have been
    /// delivered: a decoder emits one frame, lets the next handlers react (they might replace
    /// the decoder), then continues.
    ///
    /// ```
    /// # use netloom_channel::{Context, Handler, HandlerResult, Msg};
    /// struct OneAtATime(Vec<Msg>);
    /// impl Handler for OneAtATime {
    ///     fn resumed(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
    ///         if let Some(m) = self.0.pop() {
    ///             ctx.fire_channel_read(m);
    ///             ctx.resume_later();
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn resume_later(&mut self) {
        self.p.queue.push_back(Queued {
            target: Target::Slot(self.id),
            ev: Ev::Resume,
        });
    }

    /// An empty [`PendingWrites`](crate::PendingWrites) queue counting against this
    /// channel: messages this handler holds back count towards its writability.
    ///
    /// ```
    /// # use netloom_channel::{Context, Handler, HandlerResult, Msg, PendingWrites};
    /// /// Holds every outbound message until the channel's first read.
    /// #[derive(Default)]
    /// struct HoldUntilRead(Option<PendingWrites>);
    /// impl Handler for HoldUntilRead {
    ///     fn write(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
    ///         self.0.get_or_insert_with(|| ctx.pending_writes()).push_msg(msg);
    ///         Ok(())
    ///     }
    ///     fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
    ///         if let Some(held) = &mut self.0 {
    ///             held.write_all(ctx);
    ///             ctx.flush();
    ///         }
    ///         ctx.fire_channel_read(msg);
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn pending_writes<T>(&self) -> crate::PendingWrites<T> {
        crate::PendingWrites::new(&self.p.channel)
    }

    /// Cancels this handler's timer.
    ///
    /// ```
    /// # use netloom_channel::{Context, Handler, HandlerResult};
    /// struct H;
    /// impl Handler for H {
    ///     fn channel_inactive(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
    ///         ctx.cancel_timer();
    ///         ctx.fire_channel_inactive();
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn cancel_timer(&mut self) {
        if let Some(i) = self.p.index_of(self.id) {
            self.p.slots[i].timer = None;
        }
    }
}
