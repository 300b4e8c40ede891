//! The task that drives one channel: reads the transport, runs the pipeline, writes.
use std::cell::RefCell;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::alarm::{Alarm, Wakeup};
use crate::channel::Command;
use crate::pipeline::Ev;
use crate::{
    Channel, ChannelAddr, ChannelError, ChannelOptions, CloseMode, EventLoop, Interest, Msg,
    Pipeline, Transport, UserEvent,
};

/// At most this many buffers per vectored write.
const MAX_IOV: usize = 64;
/// Reserve a new read chunk when less than this is left in the loop's read buffer.
const MIN_READ_SPARE: usize = 2048;

thread_local! {
    /// One read buffer per event loop thread, shared by its channels: reads are split off it
    /// as `Bytes`, and the space is reused once they are dropped. An idle channel owns none.
    static READ_BUF: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Applies a command from a `Channel` handle to the pipeline.
pub(crate) fn apply_command(pipeline: &mut Pipeline, cmd: Command) {
    match cmd {
        Command::Write {
            msg,
            flush,
            accounted,
        } => {
            pipeline.channel.release_pending(accounted);
            pipeline.fire_outbound(Ev::Write(msg));
            if flush {
                pipeline.fire_outbound(Ev::Flush);
            }
        }
        Command::Flush => pipeline.fire_outbound(Ev::Flush),
        Command::Close(mode) => pipeline.fire_outbound(Ev::Close(mode)),
        Command::UserEvent(ev) => pipeline.fire_inbound(Ev::User(ev)),
        Command::Run(f) => f(pipeline),
    }
}

/// Creates a channel over `transport` on the calling event loop thread and starts its task.
pub(crate) fn register_local<T: Transport>(
    transport: T,
    options: &ChannelOptions,
    init: impl FnOnce(&mut Pipeline) -> Result<(), ChannelError>,
) -> Result<Channel, ChannelError> {
    register_with_peer(transport, None, options, init)
}

/// [`register_local`] with the peer's address as `accept(2)` reported it: a connection reset
/// before it was registered has none to ask the socket for any more, and its channel (and
/// every log line about it) would name no peer.
pub(crate) fn register_with_peer<T: Transport>(
    transport: T,
    peer: Option<ChannelAddr>,
    options: &ChannelOptions,
    init: impl FnOnce(&mut Pipeline) -> Result<(), ChannelError>,
) -> Result<Channel, ChannelError> {
    let el = EventLoop::current().ok_or(ChannelError::NotOnEventLoop {
        what: "registering a channel (EventLoop::register_here)",
    })?;
    options.validate()?;
    let channel = Channel::new(
        Some(el),
        transport.local_addr(),
        peer.or_else(|| transport.peer_addr()),
        transport.raw_fd(),
        options,
    );
    let mut pipeline = Pipeline::new(channel.clone());
    let init = |p: &mut Pipeline| {
        if let Some(timeout) = options.idle_timeout {
            p.add_first(
                crate::idle::IdleTimeoutHandler::NAME,
                crate::idle::IdleTimeoutHandler::new(timeout),
            )?;
        }
        init(p)
    };
    if let Err(err) = init(&mut pipeline) {
        channel.mark_closed(|| drop(transport));
        return Err(err);
    }
    EventLoop::track_channel(&channel);
    channel.set_active(true);
    crate::event_loop::spawn_channel_task(ChannelTask::<T, Alarm>::new(
        transport, pipeline, options,
    ));
    Ok(channel)
}

/// How a read burst ended.
#[derive(PartialEq, Eq)]
enum Burst {
    /// The socket said "nothing more" (or reading is off).
    Done,
    /// Reading waits for the outbound backlog (over the high water mark, or unwritable with
    /// `pause_reads_while_unwritable`). Once this round's writes clear it, read on: no read
    /// was left pending, so new input would not wake the task (and may never come: the
    /// peer can be waiting for our reads).
    Backlog,
    /// The read budget is used up: poll again later.
    Budget,
    /// A short read: probably drained; read once more after writing.
    Short,
}

/// Where the channel's output (our sending side) is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    Open,
    /// `CloseMode::Output` was requested: the shutdown follows once the pending writes are out.
    ShuttingDown,
    /// Shut down (FIN sent).
    Closed,
}

/// Drives one channel: a future on its event loop (waiting with an [`Alarm`]), or polled
/// by an [`EmbeddedChannel`](crate::EmbeddedChannel) over an in-memory transport.
pub(crate) struct ChannelTask<T: Transport, A: Wakeup> {
    transport: Option<T>,
    pipeline: Pipeline,
    max_reads: usize,
    /// [`ChannelOptions::pause_reads_while_unwritable`].
    pause_unwritable: bool,
    read_chunk: usize,
    /// Bytes per write system call at most (not applied to datagrams, which go whole).
    max_write: usize,
    graceful_timeout: Duration,
    /// `ChannelOptions::allow_half_closure`.
    half_closure: bool,
    started: bool,
    input_closed: bool,
    output: Output,
    closing: Option<CloseMode>,
    close_deadline: Option<Instant>,
    writable: bool,
    finished: bool,
    /// The last read did not fill the buffer: ask for readiness before reading again.
    maybe_drained: bool,
    alarm: A,
    scratch: Vec<Command>,
}

enum ReadResult {
    /// Bytes read; `short` when they did not fill the buffer (the socket is probably drained).
    Data(bytes::Bytes, bool),
    Eof,
    Pending,
    Error(io::Error),
}

impl<T: Transport, A: Wakeup> ChannelTask<T, A> {
    /// A task for a channel whose pipeline `init` has built; the channel is active. It
    /// fires `channel_registered` and `channel_active` when first polled.
    pub(crate) fn new(transport: T, mut pipeline: Pipeline, options: &ChannelOptions) -> Self {
        if transport.preserves_boundaries() {
            pipeline.outbound_mut().set_datagrams(true);
        }
        ChannelTask {
            transport: Some(transport),
            pipeline,
            max_reads: options.max_reads_per_poll,
            pause_unwritable: options.pause_reads_while_unwritable,
            read_chunk: options.read_chunk_size,
            max_write: options.max_bytes_per_gathering_write,
            graceful_timeout: options.graceful_close_timeout,
            half_closure: options.allow_half_closure,
            started: false,
            input_closed: false,
            output: Output::Open,
            closing: None,
            close_deadline: None,
            writable: true,
            finished: false,
            maybe_drained: false,
            alarm: A::default(),
            scratch: Vec::new(),
        }
    }

    /// The channel's pipeline.
    pub(crate) fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The channel's pipeline, to change it (the next poll runs what that queued).
    pub(crate) fn pipeline_mut(&mut self) -> &mut Pipeline {
        &mut self.pipeline
    }

    fn io_error(&self, op: &'static str, source: io::Error) -> ChannelError {
        ChannelError::Io {
            op,
            channel: self.pipeline.channel.to_string(),
            source,
        }
    }

    fn drain_commands(&mut self) {
        if self.pipeline.channel.take_commands(&mut self.scratch) {
            for cmd in self.scratch.drain(..) {
                apply_command(&mut self.pipeline, cmd);
            }
        }
    }

    /// A read failed: the error goes to the pipeline and the channel is force-closed.
    fn read_failed(&mut self, e: io::Error) {
        self.input_closed = true;
        let err = self.io_error("read", e);
        self.pipeline.fire_inbound(Ev::Exception(err));
        self.pipeline.request_close(CloseMode::Forced);
    }

    /// Whether a read may find data now. After a short read the socket is probably drained,
    /// so the answer comes from a readiness check (which also registers the task for the
    /// next data) instead of a read that comes back empty or another round of the loop.
    /// A failed check closes input (see `read_failed`) and counts as "read": the next round
    /// delivers the error.
    fn may_read(&mut self, cx: &mut TaskContext<'_>) -> bool {
        if !std::mem::take(&mut self.maybe_drained) {
            return true;
        }
        let Some(transport) = self.transport.as_mut() else {
            return false;
        };
        match transport.poll_read_ready(cx) {
            Poll::Pending => false,
            Poll::Ready(Ok(())) => true,
            Poll::Ready(Err(e)) => {
                self.read_failed(e);
                true
            }
        }
    }

    /// Whether reading waits for the outbound backlog, `reads` reads into the burst.
    fn backlogged(&self, reads: usize) -> bool {
        let channel = &self.pipeline.channel;
        // Over the high water mark even after writing what it could: what was read is not
        // answered yet; the rest of the burst waits (the handlers hear of it at the end of
        // the round). A bulk echo whose answer the socket took at once reads on.
        ((reads > 0 || self.pause_unwritable) && channel.over_high_water())
            // With `pause_reads_while_unwritable`, a round starts reading only when
            // writable: decoders pause while the channel is unwritable (until below the low
            // water mark), and one read per wake-up into a paused decoder piled up unbounded
            // input (issue 13, defect 10). Off, a forwarder's two channels cannot each wait
            // for the other to read.
            || (self.pause_unwritable && reads == 0 && !channel.is_writable())
    }

    /// Whether a burst the backlog stopped may read again: below the high water mark, and
    /// writable if reads pause while unwritable.
    fn backlog_cleared(&self) -> bool {
        let channel = &self.pipeline.channel;
        !channel.over_high_water() && (!self.pause_unwritable || channel.is_writable())
    }

    /// Reads until the socket has nothing more, the budget is used or reading stops.
    /// Like Netty, a read that does not fill the buffer ends the burst (`Burst::Short`): the
    /// replies go out before the read that confirms the socket is drained.
    fn read_burst(&mut self, cx: &mut TaskContext<'_>) -> Burst {
        let mut reads = 0;
        let mut outcome = Burst::Done;
        loop {
            if self.input_closed
                || self.closing.is_some()
                || self.pipeline.close_requested().is_some()
                || !self.pipeline.channel.auto_read()
            {
                break;
            }
            if self.backlogged(reads) {
                outcome = Burst::Backlog;
                break;
            }
            if reads == self.max_reads {
                outcome = Burst::Budget;
                break;
            }
            if !self.may_read(cx) || self.input_closed {
                break;
            }
            let Some(transport) = self.transport.as_mut() else {
                break;
            };
            let chunk = self.read_chunk;
            let result = READ_BUF.with(|cell| {
                let mut buf = cell.borrow_mut();
                if buf.capacity() - buf.len() < MIN_READ_SPARE {
                    buf.reserve(chunk);
                }
                let spare = buf.capacity() - buf.len();
                match transport.poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(0)) => ReadResult::Eof,
                    Poll::Ready(Ok(n)) => ReadResult::Data(buf.split().freeze(), n < spare),
                    Poll::Ready(Err(e)) => ReadResult::Error(e),
                    Poll::Pending => ReadResult::Pending,
                }
            });
            match result {
                ReadResult::Data(bytes, short) => {
                    reads += 1;
                    self.pipeline.channel.note_activity();
                    self.pipeline.dispatch_read(Msg::from(bytes));
                    // A full chunk's worth flushed: write it now, while it is still in the
                    // cache, instead of after the whole burst (up to `max_reads` chunks).
                    if self.pipeline.outbound().has_flushed()
                        && self.pipeline.outbound().total_bytes() >= self.read_chunk
                    {
                        self.write_out(cx);
                    }
                    if short {
                        self.maybe_drained = true;
                        outcome = Burst::Short;
                        break;
                    }
                }
                ReadResult::Pending => break,
                ReadResult::Eof => {
                    self.input_closed = true;
                    if self.half_closure && self.output != Output::Closed {
                        self.pipeline
                            .dispatch_inbound(Ev::User(UserEvent::InputShutdown));
                    } else {
                        self.pipeline.request_close(CloseMode::Graceful);
                    }
                    break;
                }
                ReadResult::Error(e) => {
                    self.read_failed(e);
                    break;
                }
            }
        }
        if reads > 0 && self.pipeline.takes(Interest::READ_COMPLETE) {
            self.pipeline.dispatch_inbound(Ev::ReadComplete);
        }
        outcome
    }

    /// Writes flushed data; on an error the channel is force-closed.
    fn write_out(&mut self, cx: &mut TaskContext<'_>) {
        let Some(transport) = self.transport.as_mut() else {
            return;
        };
        let boundaries = transport.preserves_boundaries();
        let max_bytes = if boundaries {
            usize::MAX
        } else {
            self.max_write
        };
        while self.pipeline.outbound().has_flushed() {
            let out = self.pipeline.outbound();
            let (wanted, result) = if boundaries || out.flushed_entries() == 1 {
                // One buffer (the common case): no 64-slot array to fill.
                poll_write_slices::<_, 1>(transport, cx, out, max_bytes)
            } else {
                poll_write_slices::<_, MAX_IOV>(transport, cx, out, max_bytes)
            };
            match result {
                Poll::Ready(Ok(0)) if wanted > 0 => {
                    let err = io::Error::new(io::ErrorKind::WriteZero, "socket accepted no bytes");
                    self.fail_write(err);
                    return;
                }
                Poll::Ready(Ok(written)) => {
                    if boundaries && written < wanted {
                        let err = io::Error::new(
                            io::ErrorKind::WriteZero,
                            format!("message of {wanted} bytes written partly ({written})"),
                        );
                        self.fail_write(err);
                        return;
                    }
                    let cost = if boundaries {
                        self.pipeline.outbound_mut().pop_datagram()
                    } else {
                        self.pipeline.outbound_mut().consume(written)
                    };
                    self.pipeline.channel.release_pending(cost);
                }
                Poll::Ready(Err(e)) => {
                    self.fail_write(e);
                    return;
                }
                Poll::Pending => return,
            }
        }
    }

    fn fail_write(&mut self, e: io::Error) {
        let err = self.io_error("write", e);
        self.pipeline.fire_inbound(Ev::Exception(err));
        self.pipeline.request_close(CloseMode::Forced);
        let dropped = self.pipeline.outbound_mut().clear();
        self.pipeline.channel.release_pending(dropped);
        self.pipeline.run();
    }

    fn update_writability(&mut self) {
        // At most false-then-true per round: no flapping.
        for _ in 0..2 {
            let Some(w) = self.pipeline.channel.writability_transition(self.writable) else {
                break;
            };
            self.writable = w;
            self.pipeline.fire_inbound(Ev::Writability(w));
            self.pipeline.run();
        }
    }

    /// Moves a close request from the pipeline head into the task's close state.
    fn take_close_request(&mut self) {
        let Some(mode) = self.pipeline.close_requested() else {
            return;
        };
        match (self.closing, mode) {
            (Some(CloseMode::Forced), _) => {}
            (_, CloseMode::Forced) => self.closing = Some(CloseMode::Forced),
            (None, CloseMode::Graceful) => {
                self.closing = Some(CloseMode::Graceful);
                self.close_deadline = Some(Instant::now() + self.graceful_timeout);
            }
            // `close_requested` never holds `Output` (the head keeps it apart), and
            // `closing` only what came from there.
            _ => {}
        }
        if self.closing == Some(CloseMode::Graceful) {
            // Everything written so far goes out, flushed or not.
            self.pipeline.outbound_mut().mark_flushed();
        }
    }

    /// Starts an output shutdown the pipeline asked for (`CloseMode::Output`).
    fn take_output_shutdown(&mut self) {
        if self.pipeline.output_shutdown_requested() && self.output == Output::Open {
            self.output = Output::ShuttingDown;
            // Everything written so far goes out first, flushed or not.
            self.pipeline.outbound_mut().mark_flushed();
        }
    }

    /// Shuts the output down once the writes before the request are out. When the input
    /// has ended too, the channel closes.
    fn progress_output_shutdown(&mut self, cx: &mut TaskContext<'_>) {
        if self.output != Output::ShuttingDown
            || self.closing.is_some()
            || !self.pipeline.outbound().is_empty()
        {
            return;
        }
        let Some(t) = self.transport.as_mut() else {
            return;
        };
        match t.poll_shutdown(cx) {
            Poll::Pending => return,
            Poll::Ready(Err(e)) => {
                tracing::debug!(channel = %self.pipeline.channel, err = %e, "output shutdown failed")
            }
            Poll::Ready(Ok(())) => {}
        }
        self.output = Output::Closed;
        if self.input_closed {
            self.pipeline.request_close(CloseMode::Graceful);
        }
    }

    /// Advances a close; returns true once the channel is closed.
    fn progress_close(&mut self, cx: &mut TaskContext<'_>) -> bool {
        match self.closing {
            None | Some(CloseMode::Output) => false,
            Some(CloseMode::Forced) => {
                self.finish();
                true
            }
            Some(CloseMode::Graceful) => {
                if self.close_deadline.is_some_and(|d| Instant::now() >= d) {
                    tracing::debug!(channel = %self.pipeline.channel, "graceful close timed out; forcing");
                    self.finish();
                    return true;
                }
                if !self.pipeline.outbound().is_empty() {
                    return false;
                }
                if let Some(t) = self
                    .transport
                    .as_mut()
                    .filter(|_| self.output != Output::Closed)
                {
                    match t.poll_shutdown(cx) {
                        Poll::Pending => return false,
                        Poll::Ready(Err(e)) => {
                            tracing::debug!(channel = %self.pipeline.channel, err = %e, "shutdown failed")
                        }
                        Poll::Ready(Ok(())) => {}
                    }
                }
                self.finish();
                true
            }
        }
    }

    /// Closes the socket and tells the pipeline.
    fn finish(&mut self) {
        let channel = self.pipeline.channel.clone();
        let was_active = channel.is_active();
        let dropped = self.pipeline.outbound_mut().clear();
        channel.release_pending(dropped);
        self.pipeline.mark_head_closed();
        let transport = self.transport.take();
        channel.mark_closed(|| drop(transport));
        if was_active {
            self.pipeline.fire_inbound(Ev::Inactive);
        }
        self.pipeline.fire_inbound(Ev::Unregistered);
        self.pipeline.run();
        self.finished = true;
        EventLoop::untrack_channel(channel.id());
    }

    /// Arms the alarm for the earliest timer; returns true if one is already due.
    fn poll_timers(&mut self, cx: &mut TaskContext<'_>) -> bool {
        if !self.pipeline.take_timers_changed()
            && !self.alarm.is_armed()
            && self.close_deadline.is_none()
        {
            return false;
        }
        let next = Alarm::earliest(self.pipeline.next_timer(), self.close_deadline);
        self.alarm.poll_at(next, cx)
    }
}

/// Offers up to `N` flushed buffers, `max_bytes` in all at most, to the transport; returns
/// (bytes offered, result).
fn poll_write_slices<T: Transport, const N: usize>(
    transport: &mut T,
    cx: &mut TaskContext<'_>,
    out: &crate::outbound::OutboundBuffer,
    max_bytes: usize,
) -> (usize, Poll<io::Result<usize>>) {
    let mut slices = [IoSlice::new(&[]); N];
    let n = out.fill_slices(&mut slices, max_bytes);
    let wanted = slices[..n].iter().map(|s| s.len()).sum();
    (wanted, transport.poll_write_vectored(cx, &slices[..n]))
}

// The channel task's poll loop.
//
// One round, repeated while it makes progress:
//
//   commands (Channel handle) -> pipeline.run -> due timers -> read burst
//        -> close request? -> write out -> writability events -> output shutdown?
//        -> close request? -> more queued events or flushes? next round
//        -> advance a close -> arm the timer alarm -> Pending
//
// One round runs per poll (`MAX_ROUNDS_PER_POLL`): a channel with more to do (a decoder
// with a backlog of tiny frames, resumed after each write, ~700 frames a round) wakes
// itself and yields, so the loop's other channels (a new client) are served in between
// (a new client's wait under tiny-frame flooders: docs/benchmarks.md).
// A bulk transfer is unaffected: its reads come in bursts of `max_reads_per_poll` within
// one round.
//
// | state               | reads                          | writes                 | leaves it when                                   |
// |---------------------|--------------------------------|------------------------|--------------------------------------------------|
// | open                | while auto_read and writable,  | flushed bytes, up to   | EOF, a read/write error, close, CloseMode::Output |
// |                     | max_reads_per_poll per round   | max_bytes_per_gathering_write per call |                  |
// | input ended (EOF),  | no                             | yes                    | its output shuts down -> closing (graceful)      |
// |   half-closure on   | (UserEvent::InputShutdown fired)|                       | or a close                                       |
// | output shutting down| yes                            | what was written before the request, then FIN; later writes dropped | FIN sent -> output closed |
// | output closed       | yes                            | no                     | EOF -> closing (graceful), or a close            |
// | closing (graceful)  | no                             | everything written so far, flushed or not | buffer empty -> FIN -> finished; or graceful_close_timeout -> finished |
// | closing (forced)    | no                             | no (dropped)           | at once -> finished                              |
// | finished            | -                              | -                      | (Ready: inactive and unregistered fired)         |
//
// EOF without half-closure, a read error and an unhandled error all request a close
// (graceful for EOF, forced otherwise). Writability is decided once per round, after
// writing: at most one false-then-true pair per round, so no flapping.
/// Rounds one poll of a channel task may run before it yields (see above).
const MAX_ROUNDS_PER_POLL: usize = 1;

impl<T: Transport, A: Wakeup> Future for ChannelTask<T, A> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(());
        }
        this.pipeline.channel.0.waker.register_fixed(cx.waker());
        if !this.started {
            this.started = true;
            this.pipeline.fire_inbound(Ev::Registered);
            this.pipeline.fire_inbound(Ev::Active);
            this.pipeline.run();
        }
        let mut rounds = 0;
        loop {
            rounds += 1;
            this.drain_commands();
            this.pipeline.run();
            if this.pipeline.timers_changed() || this.alarm.may_be_due() {
                this.pipeline.fire_due_timers(crate::clock::now());
                this.pipeline.run();
            }
            let more = this.read_burst(cx);
            this.take_close_request();
            this.pipeline.take_flush_request();
            this.write_out(cx);
            this.update_writability();
            this.take_output_shutdown();
            this.progress_output_shutdown(cx);
            this.take_close_request();
            let again = this.pipeline.has_queued()
                || this.pipeline.flush_requested()
                || (more == Burst::Short && this.may_read(cx))
                // The writes cleared the backlog that stopped reading: read on. (Still
                // backlogged, a write is pending and its readiness wakes the task.)
                || (more == Burst::Backlog && this.backlog_cleared());
            if again && rounds >= MAX_ROUNDS_PER_POLL {
                // Fair to the loop's other channels: the rest waits for the next poll.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if again {
                continue;
            }
            if this.progress_close(cx) {
                return Poll::Ready(());
            }
            if this.poll_timers(cx) {
                continue;
            }
            if more == Burst::Budget {
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
    }
}

impl<T: Transport, A: Wakeup> Drop for ChannelTask<T, A> {
    fn drop(&mut self) {
        if !self.finished {
            // The loop is shutting down: close without calling handlers.
            let transport = self.transport.take();
            self.pipeline.channel.mark_closed(|| drop(transport));
            EventLoop::untrack_channel(self.pipeline.channel.id());
        }
    }
}
