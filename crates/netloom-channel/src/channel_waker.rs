//! How other threads wake a channel's task.
use std::sync::OnceLock;
use std::sync::atomic::{Ordering, fence};
use std::task::Waker;

use futures::task::AtomicWaker;

use crate::task_set::same_waker;

/// The waker of a channel's task, for other threads (commands, `set_auto_read`).
///
/// A channel task on the loop's task set always has the same waker, so it is stored once
/// and later polls only compare it: no atomic read-modify-write per message, as an
/// `AtomicWaker` registration would cost. Drivers that hand out a new waker each time
/// (UDP peers) register through the `AtomicWaker` instead.
#[derive(Default)]
pub(crate) struct ChannelWaker {
    fixed: OnceLock<Waker>,
    other: AtomicWaker,
}

impl ChannelWaker {
    /// Registers the waker of a task whose waker does not change between polls.
    pub(crate) fn register_fixed(&self, waker: &Waker) {
        match self.fixed.get() {
            Some(fixed) if same_waker(fixed, waker) => {}
            Some(_) => self.other.register(waker),
            None => {
                if self.fixed.set(waker.clone()).is_err() {
                    self.other.register(waker);
                }
                // Pairs with the fence in `wake`: either the waking thread sees this
                // waker, or the task, reading its flags next, sees what that thread set.
                fence(Ordering::SeqCst);
            }
        }
    }

    /// Registers a waker that is consumed by the next wake.
    pub(crate) fn register(&self, waker: &Waker) {
        self.other.register(waker);
    }

    /// Wakes the task; call after publishing what the task should look at.
    pub(crate) fn wake(&self) {
        fence(Ordering::SeqCst);
        if let Some(fixed) = self.fixed.get() {
            fixed.wake_by_ref();
        }
        self.other.wake();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_fixed_waker_is_woken_every_time_and_a_consumed_one_once() {
        let fixed = Arc::new(Count(AtomicUsize::new(0)));
        let once = Arc::new(Count(AtomicUsize::new(0)));
        let w = ChannelWaker::default();
        w.register_fixed(&Waker::from(fixed.clone()));
        w.register_fixed(&Waker::from(fixed.clone()));
        w.register(&Waker::from(once.clone()));
        w.wake();
        w.wake();
        assert_eq!(fixed.0.load(Ordering::SeqCst), 2);
        assert_eq!(once.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_different_waker_after_the_fixed_one_is_still_woken() {
        let first = Arc::new(Count(AtomicUsize::new(0)));
        let second = Arc::new(Count(AtomicUsize::new(0)));
        let w = ChannelWaker::default();
        w.register_fixed(&Waker::from(first.clone()));
        w.register_fixed(&Waker::from(second.clone()));
        w.wake();
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
    }
}
