//! The channel tasks of one event loop and the queue of those that were woken.
//!
//! Like `futures::stream::FuturesUnordered`, but it never asks to be polled again just
//! because it polled every task once (FuturesUnordered does, to bound its own work per poll;
//! with one busy connection that turned every wake-up into two trips through the runtime's
//! driver). Here a batch is exactly the tasks woken before it started; tasks woken while it
//! runs wait for the next batch.
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, RawWaker, RawWakerVTable, Waker};

/// A boxed channel task.
pub(crate) type LocalTask = Pin<Box<dyn Future<Output = ()>>>;

/// Task slots woken since the last batch, and whom to tell when the first one arrives.
#[derive(Default)]
struct ReadyQueue {
    woken: Mutex<Woken>,
    /// Whether `woken.slots` is non-empty: read without the lock after a batch.
    any: AtomicBool,
}

#[derive(Default)]
struct Woken {
    slots: Vec<usize>,
    owner: Option<Waker>,
}

/// One task's waker: queues the task's slot once until the task is polled again.
struct TaskWaker {
    slot: usize,
    queued: AtomicBool,
    ready: Arc<ReadyQueue>,
}

impl TaskWaker {
    fn wake(&self) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut woken = self.ready.woken.lock().unwrap_or_else(|e| e.into_inner());
        woken.slots.push(self.slot);
        if woken.slots.len() == 1 {
            self.ready.any.store(true, Ordering::Release);
            if let Some(owner) = &woken.owner {
                owner.wake_by_ref();
            }
        }
    }
}

/// The one vtable of every task waker. `Waker::from(Arc<_>)` would work too, but its clones
/// carry a vtable at another address than the original, so `Waker::will_wake` never holds
/// between them and tokio's I/O registration and `AtomicWaker` clone the waker on every
/// poll. A single static gives every clone the same vtable address.
static TASK_WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(clone_raw, wake_raw, wake_by_ref_raw, drop_raw);

/// A `Waker` owning one reference to `state`.
fn task_waker(state: Arc<TaskWaker>) -> Waker {
    let raw = RawWaker::new(Arc::into_raw(state).cast(), &TASK_WAKER_VTABLE);
    // SAFETY: the data pointer comes from `Arc::into_raw(Arc<TaskWaker>)`, and every
    // function of TASK_WAKER_VTABLE treats it as exactly that, keeping the count balanced:
    // clone adds a reference, wake and drop give one back, wake_by_ref borrows.
    unsafe { Waker::from_raw(raw) }
}

/// # Safety
/// `data` comes from `Arc::into_raw(Arc<TaskWaker>)` and still owns its reference.
unsafe fn clone_raw(data: *const ()) -> RawWaker {
    // SAFETY: `data` is a live `Arc<TaskWaker>` pointer (see `task_waker`).
    unsafe { Arc::increment_strong_count(data.cast::<TaskWaker>()) };
    RawWaker::new(data, &TASK_WAKER_VTABLE)
}

/// # Safety
/// `data` comes from `Arc::into_raw(Arc<TaskWaker>)` and still owns its reference.
unsafe fn wake_raw(data: *const ()) {
    // SAFETY: `data` is a live `Arc<TaskWaker>` pointer whose reference this call consumes.
    let state = unsafe { Arc::from_raw(data.cast::<TaskWaker>()) };
    state.wake();
}

/// # Safety
/// `data` comes from `Arc::into_raw(Arc<TaskWaker>)` and still owns its reference.
unsafe fn wake_by_ref_raw(data: *const ()) {
    // SAFETY: `data` is a live `Arc<TaskWaker>` pointer; the reference stays with the waker.
    let state = ManuallyDrop::new(unsafe { Arc::from_raw(data.cast::<TaskWaker>()) });
    state.wake();
}

/// # Safety
/// `data` comes from `Arc::into_raw(Arc<TaskWaker>)` and still owns its reference.
unsafe fn drop_raw(data: *const ()) {
    // SAFETY: `data` is a live `Arc<TaskWaker>` pointer whose reference this call gives back.
    drop(unsafe { Arc::from_raw(data.cast::<TaskWaker>()) });
}

struct Entry {
    task: LocalTask,
    /// The task's waker state, and the same as a `Waker` (made once, not per poll).
    state: Arc<TaskWaker>,
    waker: Waker,
}

/// A set of `!Send` tasks polled in place, each only after its waker fired. A new task is
/// polled in the next batch; a finished one leaves the set.
#[derive(Default)]
pub(crate) struct TaskSet {
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    ready: Arc<ReadyQueue>,
    /// The batch being run (kept to reuse its allocation).
    batch: Vec<usize>,
}

impl TaskSet {
    /// Adds a task; it is polled in the next batch.
    pub(crate) fn push(&mut self, task: LocalTask) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.entries.push(None);
            self.entries.len() - 1
        });
        let waker = Arc::new(TaskWaker {
            slot,
            queued: AtomicBool::new(false),
            ready: self.ready.clone(),
        });
        self.entries[slot] = Some(Entry {
            task,
            state: waker.clone(),
            waker: task_waker(waker.clone()),
        });
        waker.wake();
    }

    /// Polls every task woken so far (each at most once) and removes those that finished.
    /// Returns true if tasks were woken meanwhile: the caller should come back soon.
    pub(crate) fn poll_woken(&mut self, cx: &mut Context<'_>) -> bool {
        {
            let mut woken = self.ready.woken.lock().unwrap_or_else(|e| e.into_inner());
            if !woken
                .owner
                .as_ref()
                .is_some_and(|w| same_waker(w, cx.waker()))
            {
                woken.owner = Some(cx.waker().clone());
            }
            std::mem::swap(&mut woken.slots, &mut self.batch);
            self.ready.any.store(false, Ordering::Relaxed);
        }
        for i in 0..self.batch.len() {
            let slot = self.batch[i];
            // A stale waker of a finished task may name a free or reused slot: a reused
            // slot's task gets a spurious poll, which futures allow.
            let Some(entry) = self.entries.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            entry.state.queued.store(false, Ordering::Release);
            let mut task_cx = Context::from_waker(&entry.waker);
            if entry.task.as_mut().poll(&mut task_cx).is_ready() {
                self.entries[slot] = None;
                self.free.push(slot);
            }
        }
        self.batch.clear();
        self.ready.any.load(Ordering::Acquire)
    }

    /// Whether a task was woken since the last batch.
    pub(crate) fn has_woken(&self) -> bool {
        self.ready.any.load(Ordering::Acquire)
    }

    /// The number of live tasks.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }
}

/// Whether two wakers wake the same thing. `Waker::will_wake` compares vtable addresses
/// too, which differ between codegen units for the same waker type; the data pointer (the
/// `Arc` behind the waker) is what identifies it.
pub(crate) fn same_waker(a: &Waker, b: &Waker) -> bool {
    a.will_wake(b) || a.data() == b.data()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::task::{Poll, Wake};

    use super::*;

    /// A task that stays pending until `gate` opens, counting its polls.
    fn gated(
        gate: Rc<Cell<Option<Waker>>>,
        polls: Rc<Cell<u32>>,
        open: Rc<Cell<bool>>,
    ) -> LocalTask {
        Box::pin(std::future::poll_fn(move |cx| {
            polls.set(polls.get() + 1);
            if open.get() {
                Poll::Ready(())
            } else {
                gate.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        }))
    }

    #[test]
    fn polls_only_woken_tasks_and_drops_finished_ones() {
        let owner = Arc::new(Counter::default());
        let owner_waker = Waker::from(owner.clone());
        let mut cx = Context::from_waker(&owner_waker);
        let mut set = TaskSet::default();
        let (gate, polls, open) = (
            Rc::default(),
            Rc::new(Cell::new(0)),
            Rc::new(Cell::new(false)),
        );
        set.push(gated(Rc::clone(&gate), Rc::clone(&polls), Rc::clone(&open)));
        assert!(!set.poll_woken(&mut cx));
        assert_eq!((polls.get(), set.len()), (1, 1));
        // Not woken: not polled.
        assert!(!set.poll_woken(&mut cx));
        assert_eq!(polls.get(), 1);
        // Woken twice before the next batch: polled once; the owner was told once.
        let w: Waker = gate.take().unwrap();
        w.wake_by_ref();
        w.wake_by_ref();
        assert_eq!(owner.0.load(Ordering::Acquire), 1);
        open.set(true);
        assert!(!set.poll_woken(&mut cx));
        assert_eq!((polls.get(), set.len()), (2, 0));
        // A stale waker of the finished task does nothing.
        w.wake();
        assert!(!set.poll_woken(&mut cx));
    }

    #[test]
    fn a_task_that_wakes_itself_runs_again_in_the_next_batch() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut set = TaskSet::default();
        let polls = Rc::new(Cell::new(0));
        let p = Rc::clone(&polls);
        set.push(Box::pin(std::future::poll_fn(move |cx| {
            p.set(p.get() + 1);
            if p.get() < 3 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })));
        assert!(set.poll_woken(&mut cx));
        assert!(set.poll_woken(&mut cx));
        assert!(!set.poll_woken(&mut cx));
        assert_eq!((polls.get(), set.len()), (3, 0));
    }

    #[test]
    fn clones_of_a_task_waker_will_wake_each_other() {
        let mut set = TaskSet::default();
        set.push(Box::pin(std::future::pending()));
        let waker = &set.entries[0].as_ref().unwrap().waker;
        let clone = waker.clone();
        assert!(clone.will_wake(waker) && clone.clone().will_wake(&clone));
        clone.wake();
        // Already queued by `push`: the wake adds nothing.
        assert_eq!(set.ready.woken.lock().unwrap().slots, [0]);
    }

    /// Wakers cloned, woken and dropped on other threads while the set polls and then drops
    /// its tasks: every task runs to its end, and (under Miri, `scripts/miri`) no reference
    /// count is off, nothing leaks and no access races.
    #[test]
    fn wakers_used_from_other_threads_while_the_set_polls() {
        let owner = Arc::new(Counter::default());
        let owner_waker = Waker::from(owner.clone());
        let mut cx = Context::from_waker(&owner_waker);
        let mut set = TaskSet::default();
        let (tx, rx) = std::sync::mpsc::channel::<Waker>();
        for _ in 0..4 {
            let tx = tx.clone();
            let mut sent = false;
            set.push(Box::pin(std::future::poll_fn(move |cx| {
                if sent {
                    Poll::Ready(())
                } else {
                    sent = true;
                    tx.send(cx.waker().clone()).unwrap();
                    Poll::Pending
                }
            })));
        }
        let wakers = std::thread::spawn(move || {
            for waker in rx.iter().take(4) {
                let clone = waker.clone();
                clone.wake_by_ref();
                drop(clone);
                waker.wake();
            }
        });
        set.poll_woken(&mut cx);
        wakers.join().unwrap();
        while set.len() > 0 {
            set.poll_woken(&mut cx);
        }
        // A waker outliving its set (the set's references go first).
        set.push(Box::pin(std::future::pending()));
        let late = set.entries.iter().flatten().next().unwrap().waker.clone();
        drop(set);
        std::thread::spawn(move || late.wake()).join().unwrap();
    }

    #[derive(Default)]
    struct Counter(std::sync::atomic::AtomicU32);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::AcqRel);
        }
    }
}
