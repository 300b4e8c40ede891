//! A wake-up at a precise instant for a proxied connection (a `timerfd`), instead of the
//! runtime's timer.
//!
//! tokio's timer has a resolution of one millisecond: a deadline is rounded up to the next
//! tick, and the driver then sleeps whole milliseconds counted from the last tick, so a
//! timer fires 0 to 2 ms late (1 ms on average). That made a 10 ms `latency` toxic give an
//! 11.3 ms round trip. A `timerfd` (CLOCK_MONOTONIC, the clock of `std::time::Instant`)
//! is armed with nanoseconds and wakes the event loop through the reactor, late only by the
//! kernel's timer slack (50 µs by default).
//!
//! One timerfd per connection side, made the first time that side has a deadline (a chunk
//! held by a toxic, a trigger); sides whose toxics never hold anything never make one.
use std::io;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;

/// A timerfd and the local task that calls `wake` each time it expires; the task ends when
/// the value is dropped or `wake` returns false.
pub(crate) struct Deadline {
    fd: Rc<AsyncFd<OwnedFd>>,
    task: JoinHandle<()>,
}

impl Deadline {
    /// A disarmed timer; must be called on a thread running a tokio `LocalSet` with I/O
    /// enabled (an event loop's thread).
    pub(crate) fn new(wake: impl Fn() -> bool + 'static) -> io::Result<Deadline> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // SAFETY: `fd` is an `OwnedFd` moved into the AsyncFd: it stays open and names the
        // same timerfd until the AsyncFd drops it, as `register_with_interest` requires.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(io::Error::from)?;
        let fd = Rc::new(fd);
        let afd = fd.clone();
        let task = tokio::task::spawn_local(async move {
            loop {
                let Ok(mut guard) = afd.readable().await else {
                    return;
                };
                // The expiration count: read it to re-arm readiness (an error means the
                // timer was re-armed in between; nothing to read).
                let mut count = [0u8; 8];
                let _ = rustix::io::read(afd.get_ref(), &mut count);
                guard.clear_ready();
                if !wake() {
                    return;
                }
            }
        });
        Ok(Deadline { fd, task })
    }

    /// Fires once at `at` (at once if it has passed), replacing any earlier setting.
    pub(crate) fn arm(&self, at: Instant) -> io::Result<()> {
        // A zero value disarms a timerfd: the earliest is 1 ns from now.
        let after = at
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        self.set(after)
    }

    /// Stops it.
    pub(crate) fn disarm(&self) -> io::Result<()> {
        self.set(Duration::ZERO)
    }

    fn set(&self, after: Duration) -> io::Result<()> {
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let value = Timespec {
            tv_sec: after.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: after.subsec_nanos().into(),
        };
        let spec = Itimerspec {
            it_interval: zero,
            it_value: value,
        };
        timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
        Ok(())
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Runs `f` in a current-thread runtime with a LocalSet, as on an event loop.
    fn on_loop<F: std::future::Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&rt, f)
    }

    #[test]
    fn fires_at_its_deadline_not_a_tick_later() {
        // tokio's timer fires 0-2 ms late (median ~1 ms); this one must not be early, and
        // its median lateness must stay well under the 1 ms tick.
        let late = on_loop(async {
            let fired: Rc<RefCell<Vec<Instant>>> = Rc::default();
            let f = fired.clone();
            let d = Deadline::new(move || {
                f.borrow_mut().push(Instant::now());
                true
            })
            .unwrap();
            let mut late = Vec::new();
            for i in 0..31u32 {
                // Deadlines at varying fractions of a millisecond.
                let at = Instant::now() + Duration::from_micros(2_000 + 37 * u64::from(i));
                d.arm(at).unwrap();
                while fired.borrow().is_empty() {
                    tokio::time::sleep(Duration::from_micros(100)).await;
                    if Instant::now() > at + Duration::from_secs(5) {
                        panic!("the timer never fired");
                    }
                }
                let t = fired.borrow_mut().remove(0);
                assert!(t >= at, "fired {:?} early", at - t);
                late.push(t - at);
            }
            late
        });
        let mut sorted = late.clone();
        sorted.sort();
        assert!(
            sorted[sorted.len() / 2] < Duration::from_micros(700),
            "median lateness {:?} (all: {late:?})",
            sorted[sorted.len() / 2]
        );
    }

    #[test]
    fn disarm_and_drop_stop_it() {
        on_loop(async {
            let fired = Rc::new(RefCell::new(0u32));
            let f = fired.clone();
            let d = Deadline::new(move || {
                *f.borrow_mut() += 1;
                true
            })
            .unwrap();
            d.arm(Instant::now() + Duration::from_millis(5)).unwrap();
            d.disarm().unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(*fired.borrow(), 0);
            d.arm(Instant::now()).unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(*fired.borrow(), 1);
            drop(d);
            // The task is gone: only this test's handle holds the counter.
            tokio::task::yield_now().await;
            assert_eq!(Rc::strong_count(&fired), 1);
        });
    }
}
