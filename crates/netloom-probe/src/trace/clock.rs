//! The timer that starts each cycle: a `timerfd` watched by the runtime's reactor, so a
//! cycle starts within tens of microseconds of its due time (tokio's own timer wheel
//! rounds every deadline up to the next millisecond, which alone would put a probe up to
//! 1 ms off its schedule). Where no timerfd can be made, tokio's timer is used.

use std::os::fd::OwnedFd;

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// Sleeps until an instant, precisely.
pub(super) struct Clock {
    fd: Option<AsyncFd<OwnedFd>>,
    /// The instant the timer is set for and has not yet reported (a wait that was
    /// cancelled leaves it set; waiting again for the same instant does not re-arm it).
    armed: Option<Instant>,
}

impl Clock {
    /// A clock on a fresh timerfd (tokio's timer if that fails). Must be called inside a
    /// tokio runtime.
    pub(super) fn new() -> Self {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .ok()
        .and_then(|fd| register(fd).ok());
        Clock { fd, armed: None }
    }

    /// Returns at `due` (at once if it has passed).
    pub(super) async fn until(&mut self, due: Instant) {
        let Some(fd) = &self.fd else {
            return tokio::time::sleep_until(due).await;
        };
        let left = due.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        if self.armed != Some(due) {
            if !arm(fd, left) {
                return tokio::time::sleep_until(due).await;
            }
            self.armed = Some(due);
        }
        loop {
            let Ok(mut ready) = fd.readable().await else {
                self.armed = None;
                return tokio::time::sleep_until(due).await;
            };
            let mut expirations = [0u8; 8];
            match rustix::io::read(fd.get_ref(), &mut expirations) {
                Ok(_) => {
                    self.armed = None;
                    return;
                }
                Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
                Err(_) => {
                    self.armed = None;
                    return tokio::time::sleep_until(due).await;
                }
            }
        }
    }
}

/// Sets the timer to expire once, `left` from now; false if that failed.
fn arm(fd: &AsyncFd<OwnedFd>, left: std::time::Duration) -> bool {
    let value = Timespec {
        tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(left.subsec_nanos()),
    };
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let spec = Itimerspec {
        it_interval: zero,
        it_value: value,
    };
    timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &spec).is_ok()
}

/// Registers the timer with the reactor.
fn register(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the `OwnedFd` owns its descriptor and closes it only when dropped; the
    // `AsyncFd` owns the `OwnedFd`, so the descriptor stays open and the same for the
    // registration's whole life.
    unsafe { AsyncFd::register(fd) }.map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn returns_not_before_the_due_time_and_at_once_when_it_passed() {
        let mut clock = Clock::new();
        assert!(clock.fd.is_some(), "Linux has timerfd");
        for ms in [1, 5, 20] {
            let due = Instant::now() + Duration::from_millis(ms);
            clock.until(due).await;
            assert!(Instant::now() >= due, "{ms} ms");
        }
        // A due time that has passed returns without arming the timer.
        clock.until(Instant::now()).await;
        // A wait cancelled before its time, then resumed, still ends at that time.
        let due = Instant::now() + Duration::from_millis(10);
        let cancelled = tokio::time::timeout(Duration::from_millis(1), clock.until(due)).await;
        assert!(cancelled.is_err());
        clock.until(due).await;
        assert!(Instant::now() >= due);
    }
}
