//! The channel handle: a cheap, cloneable, thread-safe reference to one connection.
use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Notify;

use crate::channel_waker::ChannelWaker;
use crate::idle::Activity;
use crate::{ChannelError, ChannelOptions, CloseMode, EventLoop, Msg, Pipeline, UserEvent};

/// A channel's local or remote address.
///
/// ```
/// use netloom_channel::ChannelAddr;
/// let a = ChannelAddr::Inet("127.0.0.1:80".parse().unwrap());
/// assert_eq!(a.to_string(), "127.0.0.1:80");
/// assert_eq!(a.inet(), Some("127.0.0.1:80".parse().unwrap()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChannelAddr {
    /// An IPv4 or IPv6 socket address.
    Inet(std::net::SocketAddr),
    /// A Unix socket path (`None` for unnamed sockets).
    Unix(Option<PathBuf>),
    /// An in-memory channel ([`EmbeddedChannel`](crate::EmbeddedChannel)).
    Embedded,
}

impl ChannelAddr {
    /// The IP socket address, if this is one.
    ///
    /// ```
    /// use netloom_channel::ChannelAddr;
    /// assert_eq!(ChannelAddr::Embedded.inet(), None);
    /// ```
    pub fn inet(&self) -> Option<std::net::SocketAddr> {
        match self {
            ChannelAddr::Inet(a) => Some(*a),
            _ => None,
        }
    }
}

impl fmt::Display for ChannelAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelAddr::Inet(a) => write!(f, "{a}"),
            ChannelAddr::Unix(Some(p)) => write!(f, "unix:{}", p.display()),
            ChannelAddr::Unix(None) => f.write_str("unix:(unnamed)"),
            ChannelAddr::Embedded => f.write_str("embedded"),
        }
    }
}

/// Work handed to a channel's task from outside its pipeline.
pub(crate) enum Command {
    Write {
        msg: Msg,
        flush: bool,
        accounted: usize,
    },
    Flush,
    Close(CloseMode),
    UserEvent(UserEvent),
    Run(Box<dyn FnOnce(&mut Pipeline) + Send>),
}

pub(crate) struct Shared {
    id: u64,
    event_loop: Option<EventLoop>,
    local: Option<ChannelAddr>,
    peer: Option<ChannelAddr>,
    pub(crate) active: AtomicBool,
    writable: AtomicBool,
    auto_read: AtomicBool,
    pending: AtomicUsize,
    high: usize,
    low: usize,
    /// `ChannelOptions::write_message_overhead`.
    overhead: usize,
    /// `ChannelOptions::memory_budget`.
    budget: Option<crate::MemoryBudget>,
    commands: Mutex<Vec<Command>>,
    has_commands: AtomicBool,
    pub(crate) waker: ChannelWaker,
    /// Inline (not its own `Arc`): a [`CloseFuture`] holds the whole `Shared`.
    close: CloseSignal,
    fd: RwLock<Option<RawFd>>,
    /// The last read or write, when `ChannelOptions::idle_timeout` is set (off otherwise).
    activity: Activity,
}

/// A handle to a channel (a connection and its pipeline). Cloning is cheap; every method
/// may be called from any thread. Operations are handed to the channel's event loop and
/// enter the pipeline at its application end.
///
/// ```no_run
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use bytes::Bytes;
/// use netloom_channel::{Bootstrap, EventLoopGroup};
///
/// let group = EventLoopGroup::new(1, "client")?;
/// let ch = Bootstrap::new(&group).connect("127.0.0.1:7000").sync()?;
/// ch.write_and_flush(Bytes::from_static(b"hello\n"))?;
/// ch.close();
/// ch.close_future().sync()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Channel(pub(crate) Arc<Shared>);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Channel {
    pub(crate) fn new(
        event_loop: Option<EventLoop>,
        local: Option<ChannelAddr>,
        peer: Option<ChannelAddr>,
        fd: Option<RawFd>,
        options: &ChannelOptions,
    ) -> Channel {
        Channel(Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            event_loop,
            local,
            peer,
            active: AtomicBool::new(false),
            writable: AtomicBool::new(true),
            auto_read: AtomicBool::new(options.auto_read),
            pending: AtomicUsize::new(0),
            high: options.write_buffer_high_water_mark,
            low: options.write_buffer_low_water_mark,
            overhead: options.write_message_overhead,
            budget: options.memory_budget.clone(),
            commands: Mutex::new(Vec::new()),
            has_commands: AtomicBool::new(false),
            waker: ChannelWaker::default(),
            close: CloseSignal::default(),
            fd: RwLock::new(fd),
            activity: Activity::new(options.idle_timeout.is_some()),
        }))
    }

    /// A process-wide unique id.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let a = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// let b = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// assert_ne!(a.channel().id(), b.channel().id());
    /// ```
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The event loop the channel is pinned to (`None` for an embedded channel).
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// assert!(EmbeddedChannel::new(|_| Ok(())).unwrap().channel().event_loop().is_none());
    /// ```
    pub fn event_loop(&self) -> Option<&EventLoop> {
        self.0.event_loop.as_ref()
    }

    /// The local address.
    ///
    /// ```
    /// use netloom_channel::{ChannelAddr, EmbeddedChannel};
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// assert_eq!(ch.channel().local_addr(), Some(&ChannelAddr::Embedded));
    /// ```
    pub fn local_addr(&self) -> Option<&ChannelAddr> {
        self.0.local.as_ref()
    }

    /// The remote address.
    ///
    /// ```
    /// use netloom_channel::{ChannelAddr, EmbeddedChannel};
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// assert_eq!(ch.channel().peer_addr(), Some(&ChannelAddr::Embedded));
    /// ```
    pub fn peer_addr(&self) -> Option<&ChannelAddr> {
        self.0.peer.as_ref()
    }

    /// Connected and not closed.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// assert!(EmbeddedChannel::new(|_| Ok(())).unwrap().channel().is_active());
    /// ```
    pub fn is_active(&self) -> bool {
        self.0.active.load(Ordering::Acquire)
    }

    /// Not closed yet.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// assert!(EmbeddedChannel::new(|_| Ok(())).unwrap().channel().is_open());
    /// ```
    pub fn is_open(&self) -> bool {
        !self.0.close.is_signalled()
    }

    /// Pending outbound bytes are below the high water mark (or went back below the low one).
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// assert!(EmbeddedChannel::new(|_| Ok(())).unwrap().channel().is_writable());
    /// ```
    pub fn is_writable(&self) -> bool {
        self.0.writable.load(Ordering::Acquire)
    }

    /// Bytes written but not yet on the socket (including writes queued from other threads).
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// assert_eq!(EmbeddedChannel::new(|_| Ok(())).unwrap().channel().pending_outbound_bytes(), 0);
    /// ```
    pub fn pending_outbound_bytes(&self) -> usize {
        self.0.pending.load(Ordering::Acquire)
    }

    /// Whether the channel reads as data arrives.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// assert!(EmbeddedChannel::new(|_| Ok(())).unwrap().channel().auto_read());
    /// ```
    pub fn auto_read(&self) -> bool {
        self.0.auto_read.load(Ordering::Acquire)
    }

    /// Turns reading on or off; off stops reading from the socket (the peer's writes then
    /// back up in the kernel and eventually block it).
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.channel().set_auto_read(false);
    /// assert!(!ch.channel().auto_read());
    /// ```
    pub fn set_auto_read(&self, on: bool) {
        let was = self.0.auto_read.swap(on, Ordering::AcqRel);
        if on && !was {
            self.0.waker.wake();
        }
    }

    /// Writes a message from the application end of the pipeline, without flushing.
    /// Fails only if the channel is closed.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.channel().write(Bytes::from_static(b"x")).unwrap();
    /// ch.run_pending();
    /// assert_eq!(ch.read_outbound(), None); // written, not flushed yet
    /// ch.channel().flush();
    /// ch.run_pending();
    /// assert_eq!(ch.read_outbound(), Some(Bytes::from_static(b"x")));
    /// ```
    pub fn write(&self, msg: impl Into<Msg>) -> Result<(), ChannelError> {
        self.queue_write(msg.into(), false)
    }

    /// Writes and flushes.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netloom_channel::EmbeddedChannel;
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.channel().write_and_flush(Bytes::from_static(b"x")).unwrap();
    /// ```
    pub fn write_and_flush(&self, msg: impl Into<Msg>) -> Result<(), ChannelError> {
        self.queue_write(msg.into(), true)
    }

    /// Flushes written messages.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.channel().flush();
    /// ```
    pub fn flush(&self) {
        let _ = self.push(Command::Flush);
    }

    /// Closes gracefully: pending writes are written, then the connection is shut down.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.channel().close();
    /// ch.run_pending();
    /// assert!(!ch.channel().is_open());
    /// ```
    pub fn close(&self) {
        let _ = self.push(Command::Close(CloseMode::Graceful));
    }

    /// Closes now, dropping pending writes.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.channel().close_forced();
    /// ch.run_pending();
    /// assert!(!ch.channel().is_open());
    /// ```
    pub fn close_forced(&self) {
        let _ = self.push(Command::Close(CloseMode::Forced));
    }

    /// Half-closes: writes what is pending, then shuts down the output (TCP FIN) and
    /// keeps reading ([`CloseMode::Output`], through the outbound handlers). Pair it with
    /// [`ChannelOptions::allow_half_closure`] to keep reading after the peer's FIN too.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.channel().shutdown_output();
    /// ch.run_pending();
    /// assert!(ch.channel().is_open()); // in memory there is no output to shut
    /// ```
    pub fn shutdown_output(&self) {
        let _ = self.push(Command::Close(CloseMode::Output));
    }

    /// Sends a user event through the pipeline (from its transport end).
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, UserEvent};
    /// let ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.channel().fire_user_event(UserEvent::Custom(Box::new("wake up"))).unwrap();
    /// ```
    pub fn fire_user_event(&self, event: UserEvent) -> Result<(), ChannelError> {
        self.push(Command::UserEvent(event))
    }

    /// Runs `f` with the pipeline on the channel's event loop (to add or remove handlers
    /// from outside).
    ///
    /// ```
    /// use netloom_channel::{EmbeddedChannel, Handler};
    /// struct Nop;
    /// impl Handler for Nop {}
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.channel().with_pipeline(|p| { let _ = p.add_last("late", Nop); }).unwrap();
    /// ch.run_pending();
    /// assert!(ch.pipeline().contains("late"));
    /// ```
    pub fn with_pipeline(
        &self,
        f: impl FnOnce(&mut Pipeline) + Send + 'static,
    ) -> Result<(), ChannelError> {
        self.push(Command::Run(Box::new(f)))
    }

    /// A future that completes when the channel is closed; `.sync()` blocks on it.
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.channel().close();
    /// ch.run_pending();
    /// ch.channel().close_future().sync().unwrap();
    /// ```
    pub fn close_future(&self) -> CloseFuture {
        CloseFuture(self.0.clone())
    }

    /// A duplicate of the channel's socket file descriptor (TCP and Unix channels), for
    /// socket options or resets from outside (`netloom-fault`).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use netloom_channel::{Bootstrap, EventLoopGroup};
    /// let group = EventLoopGroup::new(1, "c")?;
    /// let ch = Bootstrap::new(&group).connect("127.0.0.1:7000").sync()?;
    /// let fd = ch.try_clone_fd()?;
    /// let sock = socket2::Socket::from(fd);
    /// sock.set_linger(Some(std::time::Duration::ZERO))?;
    /// # Ok(()) }
    /// ```
    pub fn try_clone_fd(&self) -> io::Result<OwnedFd> {
        let guard = self.0.fd.read().unwrap_or_else(|e| e.into_inner());
        match *guard {
            Some(fd) => {
                // SAFETY: the channel task closes the socket only after taking the write lock
                // and clearing this field, so `fd` is open while we hold the read lock.
                let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
                borrowed.try_clone_to_owned()
            }
            None if !self.is_open() => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("channel {self} is closed"),
            )),
            None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("channel {self} has no socket of its own"),
            )),
        }
    }

    // ---- crate internals ----------------------------------------------------------------

    fn queue_write(&self, msg: Msg, flush: bool) -> Result<(), ChannelError> {
        let accounted = msg.as_bytes().map_or(0, |b| b.len() + self.0.overhead);
        if accounted > 0 {
            let pending = self.0.pending.fetch_add(accounted, Ordering::AcqRel) + accounted;
            if pending > self.0.high {
                self.0.writable.store(false, Ordering::Release);
            }
        }
        let result = self.push(Command::Write {
            msg,
            flush,
            accounted,
        });
        if result.is_err() {
            self.0.pending.fetch_sub(accounted, Ordering::AcqRel);
        }
        result
    }

    fn push(&self, cmd: Command) -> Result<(), ChannelError> {
        if !self.is_open() {
            return Err(ChannelError::ChannelClosed(self.to_string()));
        }
        self.0
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(cmd);
        self.0.has_commands.store(true, Ordering::Release);
        self.0.waker.wake();
        Ok(())
    }

    /// Moves queued commands into `into` (which should be empty).
    #[inline]
    pub(crate) fn take_commands(&self, into: &mut Vec<Command>) -> bool {
        // A plain load first: the common case (nothing queued) needs no atomic write.
        self.0.has_commands.load(Ordering::Acquire) && self.take_queued_commands(into)
    }

    #[cold]
    fn take_queued_commands(&self, into: &mut Vec<Command>) -> bool {
        if !self.0.has_commands.swap(false, Ordering::AcqRel) {
            return false;
        }
        let mut guard = self.0.commands.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *guard, into);
        true
    }

    /// `ChannelOptions::memory_budget`.
    pub(crate) fn memory_budget(&self) -> Option<&crate::MemoryBudget> {
        self.0.budget.as_ref()
    }

    /// `ChannelOptions::write_message_overhead`.
    pub(crate) fn message_overhead(&self) -> usize {
        self.0.overhead
    }

    pub(crate) fn account_pending(&self, added: usize) {
        self.0.pending.fetch_add(added, Ordering::AcqRel);
        // A write reached the transport's end of the pipeline.
        self.note_activity();
    }

    /// Notes a read or a write for the idle timeout (nothing when it is off).
    pub(crate) fn note_activity(&self) {
        self.0.activity.note();
    }

    /// The last read or write noted, if the idle timeout is on.
    pub(crate) fn last_activity(&self) -> Option<std::time::Instant> {
        self.0.activity.last()
    }

    pub(crate) fn release_pending(&self, removed: usize) {
        self.0.pending.fetch_sub(removed, Ordering::AcqRel);
    }

    /// Marks the channel unwritable (without an event yet: the task fires it at the end of
    /// the round) if its pending bytes plus `extra` are above the high water mark, so
    /// `is_writable` turns false in the callback whose write crosses the mark.
    #[inline]
    pub(crate) fn check_high_water(&self, extra: usize) {
        if self.0.pending.load(Ordering::Relaxed) + extra > self.0.high {
            self.0.writable.store(false, Ordering::Release);
        }
    }

    /// Whether the pending count is above the high water mark right now.
    #[inline]
    pub(crate) fn over_high_water(&self) -> bool {
        self.0.pending.load(Ordering::Relaxed) > self.0.high
    }

    /// Counts bytes a handler holds ([`PendingWrites`](crate::PendingWrites)); above the
    /// high water mark the channel reads as unwritable at once (the event follows at the
    /// end of the task's round).
    pub(crate) fn hold_pending(&self, added: usize) {
        if added == 0 {
            return;
        }
        let pending = self.0.pending.fetch_add(added, Ordering::AcqRel) + added;
        if pending > self.0.high && self.0.writable.swap(false, Ordering::AcqRel) {
            // Held from another thread: the task must see it to fire the event.
            self.0.waker.wake();
        }
    }

    /// Releases held bytes; when that may make the channel writable again, the task is
    /// woken to tell the pipeline (the release may happen off the task, e.g. a dropped queue).
    pub(crate) fn release_held(&self, removed: usize) {
        if removed == 0 {
            return;
        }
        let pending = self.0.pending.fetch_sub(removed, Ordering::AcqRel) - removed;
        if pending < self.0.low && !self.is_writable() {
            self.0.waker.wake();
        }
    }

    /// The next writability state after `fired` (the last state the pipeline was told), if
    /// it changes. A write queued from another thread may have cleared the shared flag
    /// already: that counts as unwritable, so a `true` event always follows later.
    /// The shared flag only goes back to `true` together with an event.
    pub(crate) fn writability_transition(&self, fired: bool) -> Option<bool> {
        let pending = self.pending_outbound_bytes();
        if fired {
            if !self.is_writable() || pending > self.0.high {
                self.0.writable.store(false, Ordering::Release);
                return Some(false);
            }
            None
        } else if pending < self.0.low || pending == 0 {
            self.0.writable.store(true, Ordering::Release);
            Some(true)
        } else {
            None
        }
    }

    pub(crate) fn set_active(&self, on: bool) {
        self.0.active.store(on, Ordering::Release);
    }

    /// Marks the channel closed, forgets its descriptor (then `release` closes the socket)
    /// and wakes close futures.
    pub(crate) fn mark_closed(&self, release: impl FnOnce()) {
        {
            let mut fd = self.0.fd.write().unwrap_or_else(|e| e.into_inner());
            *fd = None;
            release();
        }
        self.0.active.store(false, Ordering::Release);
        let dropped: Vec<Command> =
            std::mem::take(&mut *self.0.commands.lock().unwrap_or_else(|e| e.into_inner()));
        for cmd in dropped {
            if let Command::Write { accounted, .. } = cmd {
                self.release_pending(accounted);
            }
        }
        self.0.close.signal();
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[id: {:#x}", self.0.id)?;
        if let Some(l) = &self.0.local {
            write!(f, ", L:{l}")?;
        }
        if let Some(r) = &self.0.peer {
            write!(f, " - R:{r}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A one-way "closed" flag with waiters.
#[derive(Default)]
pub(crate) struct CloseSignal {
    closed: AtomicBool,
    notify: Notify,
}

/// Something that holds a [`CloseSignal`]: the signal itself, or a channel's shared state
/// that keeps it inline (saving a separate allocation per channel).
pub(crate) trait HoldsCloseSignal: Send + Sync {
    fn close_signal(&self) -> &CloseSignal;
}

impl HoldsCloseSignal for CloseSignal {
    fn close_signal(&self) -> &CloseSignal {
        self
    }
}

impl HoldsCloseSignal for Shared {
    fn close_signal(&self) -> &CloseSignal {
        &self.close
    }
}

impl CloseSignal {
    pub(crate) fn signal(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    pub(crate) fn is_signalled(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// Completes when its channel (or server channel) is closed. `.await` it, or block with
/// [`CloseFuture::sync`].
///
/// ```
/// use netloom_channel::EmbeddedChannel;
/// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
/// let done = ch.channel().close_future();
/// ch.channel().close();
/// ch.run_pending();
/// done.sync().unwrap();
/// ```
pub struct CloseFuture(pub(crate) Arc<dyn HoldsCloseSignal>);

impl CloseFuture {
    /// Blocks the calling thread until the channel is closed (not allowed on an event loop
    /// thread, where it would deadlock).
    ///
    /// ```
    /// use netloom_channel::EmbeddedChannel;
    /// let mut ch = EmbeddedChannel::new(|_| Ok(())).unwrap();
    /// ch.channel().close_forced();
    /// ch.run_pending();
    /// assert!(ch.channel().close_future().sync().is_ok());
    /// ```
    pub fn sync(self) -> Result<(), ChannelError> {
        crate::event_loop::check_blocking("CloseFuture")?;
        futures::executor::block_on(self.into_future());
        Ok(())
    }
}

impl IntoFuture for CloseFuture {
    type Output = ();
    type IntoFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let holder = self.0;
        Box::pin(async move {
            let signal = holder.close_signal();
            loop {
                let notified = signal.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if signal.is_signalled() {
                    return;
                }
                notified.await;
            }
        })
    }
}
