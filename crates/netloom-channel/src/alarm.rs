//! Waiting for a deadline: a re-armable timer (one `Sleep` that follows the earliest
//! deadline of its owner), and its stand-in for drivers that poll on their own.
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Instant;

use tokio::time::Sleep;

use crate::clock;
use crate::task_set::same_waker;

/// One lazily allocated `Sleep`, reset only when the wanted deadline changes.
#[derive(Default)]
pub(crate) struct Alarm {
    sleep: Option<Pin<Box<Sleep>>>,
    at: Option<Instant>,
    /// The waker the `Sleep` was last polled with: it wakes that one when due.
    waker: Option<Waker>,
}

/// How a channel's driver waits for its next deadline (handler timers, a graceful close).
pub(crate) trait Wakeup: Default + Unpin {
    /// Arms for `next` (disarms for `None`) and polls; true if it is due.
    fn poll_at(&mut self, next: Option<Instant>, cx: &mut Context<'_>) -> bool;

    /// The armed deadline, if any.
    fn deadline(&self) -> Option<Instant>;

    /// Whether a deadline is armed.
    fn is_armed(&self) -> bool {
        self.deadline().is_some()
    }

    /// Whether the armed deadline has passed by the event loop's batch clock
    /// ([`clock::now`]): the owner's timers need a look only then (or when they changed).
    fn may_be_due(&self) -> bool {
        self.deadline().is_some_and(|at| clock::now() >= at)
    }
}

impl Alarm {
    /// Earlier of two optional deadlines.
    pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Wakeup for Alarm {
    /// Arms the alarm for `next` (disarms it for `None`) and polls it; true if it is due.
    fn poll_at(&mut self, next: Option<Instant>, cx: &mut Context<'_>) -> bool {
        let Some(at) = next else {
            self.sleep = None;
            self.at = None;
            self.waker = None;
            return false;
        };
        if self.at == Some(at)
            && self
                .waker
                .as_ref()
                .is_some_and(|w| same_waker(w, cx.waker()))
            && !self.may_be_due()
        {
            // Armed for this deadline and this waker, and not due yet: polling the `Sleep`
            // again (once per wake-up of a busy channel) would only register the same waker.
            // Once tokio fires it, the batch clock has passed `at` (see `clock::now`).
            return false;
        }
        if self.at != Some(at) {
            let deadline = tokio::time::Instant::from_std(at);
            match self.sleep.as_mut() {
                Some(s) => s.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.at = Some(at);
        }
        if !self
            .waker
            .as_ref()
            .is_some_and(|w| same_waker(w, cx.waker()))
        {
            self.waker = Some(cx.waker().clone());
        }
        match self.sleep.as_mut() {
            Some(s) => s.as_mut().poll(cx).is_ready(),
            None => false,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        // `at` and `sleep` are set and cleared together.
        self.at
    }
}

/// A deadline without a timer: due once it has passed when polled. For a driver that polls
/// the channel on its own schedule ([`EmbeddedChannel`](crate::EmbeddedChannel)), not for
/// a task that sleeps until woken.
#[derive(Default)]
pub(crate) struct Polled {
    at: Option<Instant>,
}

impl Wakeup for Polled {
    fn poll_at(&mut self, next: Option<Instant>, _cx: &mut Context<'_>) -> bool {
        self.at = next;
        next.is_some_and(|at| at <= Instant::now())
    }

    fn deadline(&self) -> Option<Instant> {
        self.at
    }
}
