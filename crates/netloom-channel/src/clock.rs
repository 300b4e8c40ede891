//! The event loop's clock: one reading per batch of channel polls, shared by every channel
//! polled in that batch.
//!
//! Idle and read timeouts stamp each read and write; at tens of thousands of messages a
//! second, a clock read per stamp was a measurable share of an echo server's CPU
//! (docs/benchmarks.md, issue 17). On an event loop the stamps take the time the batch
//! started instead, so a stamp may be early by at most one batch's run time (a few
//! milliseconds with thousands of busy channels) — a timeout may end that much sooner.
//! Off the loop (an `EmbeddedChannel`, a plain thread) each call reads the clock.
use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Instant;

thread_local! {
    /// When the batch running on this thread started, while one runs.
    static BATCH_START: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The same as nanoseconds since [`epoch`] (0 while no batch runs).
    static BATCH_NANOS: Cell<u64> = const { Cell::new(0) };
}

/// The instant that [`nanos`] counts from (the first time it is asked for).
pub(crate) fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// [`now`] as nanoseconds since [`epoch`]: inside a batch a plain thread-local read, for
/// stamps taken on every read and write.
pub(crate) fn nanos() -> u64 {
    match BATCH_NANOS.get() {
        0 => since_epoch(Instant::now()),
        batch => batch,
    }
}

fn since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

/// The start of the batch being run on this event loop thread, else the clock.
///
/// A timer that tokio reports due is also due by this time: the batch starts after the
/// runtime's driver turn that fired it.
pub(crate) fn now() -> Instant {
    BATCH_START.get().unwrap_or_else(Instant::now)
}

/// Runs `batch` with [`now`] fixed at the time it starts.
pub(crate) fn in_batch<R>(batch: impl FnOnce() -> R) -> R {
    /// Lets the clock run again when the batch ends, by return or by unwinding.
    struct Running;
    impl Drop for Running {
        fn drop(&mut self) {
            BATCH_START.set(None);
            BATCH_NANOS.set(0);
        }
    }
    epoch(); // fixed before the batch starts, so its stamps count from an earlier instant
    let start = Instant::now();
    BATCH_START.set(Some(start));
    // At least 1: 0 means "no batch".
    BATCH_NANOS.set(since_epoch(start).max(1));
    let _running = Running;
    batch()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_a_batch_the_clock_stands_still_and_outside_it_runs() {
        let (first, second, stamps) = in_batch(|| {
            let first = (now(), nanos());
            std::thread::sleep(std::time::Duration::from_millis(2));
            let second = (now(), nanos());
            (first.0, second.0, (first.1, second.1))
        });
        assert_eq!(first, second);
        assert_eq!(stamps.0, stamps.1);
        assert_eq!(epoch() + std::time::Duration::from_nanos(stamps.0), first);
        let after = now();
        assert!(after > second);
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(now() > after);
    }
}
