//! A re-armable timer: one `Sleep` that follows the earliest deadline of its owner.
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

impl Alarm {
    /// Earlier of two optional deadlines.
    pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Arms the alarm for `next` (disarms it for `None`) and polls it; true if it is due.
    pub(crate) fn poll_at(&mut self, next: Option<Instant>, cx: &mut Context<'_>) -> bool {
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
    pub(crate) fn is_armed(&self) -> bool {
        self.sleep.is_some()
    }
}
