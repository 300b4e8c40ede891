//! Idle detection and read timeouts, as handlers.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::clock;

use crate::{ChannelError, CloseMode, Context, Handler, HandlerResult, IdleState, Msg, UserEvent};

/// Fires `UserEvent::Idle(..)` when nothing was read (`ReaderIdle`), written (`WriterIdle`)
/// or either (`AllIdle`) for the configured time, and again after every further period of
/// idleness. A zero duration disables that kind.
///
/// ```
/// use std::time::Duration;
/// use netloom_channel::{EmbeddedChannel, IdleStateHandler};
/// let ch = EmbeddedChannel::new(|p| {
///     p.add_last("idle", IdleStateHandler::new(Duration::from_secs(30), Duration::ZERO, Duration::ZERO))?;
///     Ok(())
/// }).unwrap();
/// ```
pub struct IdleStateHandler {
    limits: [Duration; 3],
    /// Last activity per kind (reads, writes, both), pushed forward when an event fires.
    marks: [Instant; 3],
}

const KINDS: [IdleState; 3] = [
    IdleState::ReaderIdle,
    IdleState::WriterIdle,
    IdleState::AllIdle,
];

impl IdleStateHandler {
    /// Reader, writer and all idle times (zero disables).
    ///
    /// ```
    /// use std::time::Duration;
    /// let _h = netloom_channel::IdleStateHandler::new(Duration::from_secs(5), Duration::ZERO, Duration::ZERO);
    /// ```
    pub fn new(reader: Duration, writer: Duration, all: Duration) -> IdleStateHandler {
        let now = clock::now();
        IdleStateHandler {
            limits: [reader, writer, all],
            marks: [now; 3],
        }
    }

    fn schedule(&self, ctx: &mut Context<'_>) {
        let now = clock::now();
        let next = (0..3)
            .filter(|&i| !self.limits[i].is_zero())
            .map(|i| (self.marks[i] + self.limits[i]).saturating_duration_since(now))
            .min();
        if let Some(after) = next {
            ctx.schedule_timer(after);
        }
    }

    fn touch(&mut self, kinds: &[usize]) {
        let now = clock::now();
        for &i in kinds {
            self.marks[i] = now;
        }
    }
}

#[crate::handler]
impl Handler for IdleStateHandler {
    fn handler_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.touch(&[0, 1, 2]);
        self.schedule(ctx);
        Ok(())
    }

    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        self.touch(&[0, 2]);
        ctx.fire_channel_read(msg);
        Ok(())
    }

    fn write(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        self.touch(&[1, 2]);
        ctx.write(msg);
        Ok(())
    }

    fn timer_expired(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let now = clock::now();
        for ((limit, mark), kind) in self.limits.iter().zip(&mut self.marks).zip(KINDS) {
            if !limit.is_zero() && now >= *mark + *limit {
                *mark = now;
                ctx.fire_user_event(UserEvent::Idle(kind));
            }
        }
        if ctx.channel().is_open() {
            self.schedule(ctx);
        }
        Ok(())
    }

    fn channel_inactive(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.cancel_timer();
        ctx.fire_channel_inactive();
        Ok(())
    }
}

/// Raises [`ChannelError::ReadTimeout`] and closes the channel when nothing was read for
/// the timeout.
///
/// ```
/// use std::time::Duration;
/// use netloom_channel::{EmbeddedChannel, ReadTimeoutHandler};
/// let ch = EmbeddedChannel::new(|p| {
///     p.add_last("timeout", ReadTimeoutHandler::new(Duration::from_secs(30)))?;
///     Ok(())
/// }).unwrap();
/// ```
pub struct ReadTimeoutHandler {
    timeout: Duration,
    last_read: Instant,
    fired: bool,
}

impl ReadTimeoutHandler {
    /// Closes after `timeout` without reads.
    ///
    /// ```
    /// let _h = netloom_channel::ReadTimeoutHandler::new(std::time::Duration::from_secs(10));
    /// ```
    pub fn new(timeout: Duration) -> ReadTimeoutHandler {
        ReadTimeoutHandler {
            timeout,
            last_read: clock::now(),
            fired: false,
        }
    }
}

#[crate::handler]
impl Handler for ReadTimeoutHandler {
    fn handler_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.last_read = clock::now();
        ctx.schedule_timer(self.timeout);
        Ok(())
    }

    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        self.last_read = clock::now();
        ctx.fire_channel_read(msg);
        Ok(())
    }

    fn timer_expired(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let deadline = self.last_read + self.timeout;
        let now = clock::now();
        if now < deadline {
            ctx.schedule_timer(deadline - now);
        } else if !self.fired {
            self.fired = true;
            ctx.fire_exception_caught(ChannelError::ReadTimeout(self.timeout));
            ctx.close_with(CloseMode::Forced);
        }
        Ok(())
    }
}

/// When a channel last read or wrote, for `ChannelOptions::idle_timeout`: the channel task
/// notes each read and the pipeline each write that reaches the transport, with the loop's
/// batch clock — a relaxed store, where a handler first in the pipeline cost every read
/// and write a hop through the pipeline's queue (docs/benchmarks.md, issue 17).
pub(crate) struct Activity {
    /// Nanoseconds from `clock::epoch()` to the last read or write, at least 1; 0 while
    /// off (one word, not an `Option`: every channel carries it, idle UDP peers included).
    last: AtomicU64,
}

impl Activity {
    /// Noting from now on (`on`), or off for good.
    pub(crate) fn new(on: bool) -> Activity {
        let activity = Activity {
            last: AtomicU64::new(u64::from(on)),
        };
        activity.note();
        activity
    }

    /// Stamps a read or a write (nothing while off).
    pub(crate) fn note(&self) {
        if self.last.load(Ordering::Relaxed) != 0 {
            self.last.store(clock::nanos().max(1), Ordering::Relaxed);
        }
    }

    /// The last read or write, if on.
    pub(crate) fn last(&self) -> Option<Instant> {
        match self.last.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(clock::epoch() + Duration::from_nanos(nanos)),
        }
    }
}

/// Closes its channel after `ChannelOptions::idle_timeout` without a read or a write (as
/// noted in [`Activity`]); added first in the pipeline by the channel itself when that
/// option is set. It takes no reads or writes, so they pass it by; it takes
/// `channel_inactive` to cancel its timer.
pub(crate) struct IdleTimeoutHandler {
    timeout: Duration,
}

impl IdleTimeoutHandler {
    pub(crate) const NAME: &'static str = "idle-timeout";

    pub(crate) fn new(timeout: Duration) -> IdleTimeoutHandler {
        IdleTimeoutHandler { timeout }
    }
}

#[crate::handler]
impl Handler for IdleTimeoutHandler {
    fn handler_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.channel().note_activity();
        ctx.schedule_timer(self.timeout);
        Ok(())
    }

    fn timer_expired(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let Some(last) = ctx.channel().last_activity() else {
            return Ok(());
        };
        let deadline = last + self.timeout;
        let now = clock::now();
        if now < deadline {
            ctx.schedule_timer(deadline - now);
            return Ok(());
        }
        tracing::debug!(channel = %ctx.channel(), timeout = ?self.timeout, "idle_timeout: closing");
        ctx.fire_exception_caught(ChannelError::IdleTimeout(self.timeout));
        ctx.close_with(CloseMode::Forced);
        Ok(())
    }

    fn channel_inactive(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.cancel_timer();
        ctx.fire_channel_inactive();
        Ok(())
    }
}
