//! Waiting for a deadline: a re-armable timer (one `Sleep` that follows the earliest
//! deadline of its owner), and its stand-in for drivers that poll on their own.
use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::Instant;

use tokio::time::Sleep;

/// One lazily allocated `Sleep`, reset only when the wanted deadline changes.
#[derive(Default)]
pub(crate) struct Alarm {
    sleep: Option<Pin<Box<Sleep>>>,
    at: Option<Instant>,
}

/// How a channel's driver waits for its next deadline (handler timers, a graceful close).
pub(crate) trait Wakeup: Default + Unpin {
    /// Arms for `next` (disarms for `None`) and polls; true if it is due.
    fn poll_at(&mut self, next: Option<Instant>, cx: &mut Context<'_>) -> bool;

    /// Whether a deadline is armed.
    fn is_armed(&self) -> bool;
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
            return false;
        };
        if self.at != Some(at) {
            let deadline = tokio::time::Instant::from_std(at);
            match self.sleep.as_mut() {
                Some(s) => s.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.at = Some(at);
        }
        match self.sleep.as_mut() {
            Some(s) => s.as_mut().poll(cx).is_ready(),
            None => false,
        }
    }

    /// Whether a deadline is armed.
    fn is_armed(&self) -> bool {
        self.sleep.is_some()
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

    fn is_armed(&self) -> bool {
        self.at.is_some()
    }
}
