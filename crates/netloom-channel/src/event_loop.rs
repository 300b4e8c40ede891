//! Event loops: named threads, each running a single-threaded tokio runtime.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::task_set::{LocalTask, TaskSet, same_waker};
use crate::{Channel, ChannelError};

type Job = Box<dyn FnOnce() + Send>;

enum Message {
    Run(Job),
    Shutdown {
        quiet: Duration,
        timeout: Duration,
        done: oneshot::Sender<()>,
    },
}

struct LoopInner {
    name: String,
    tx: mpsc::UnboundedSender<Message>,
    thread: OnceLock<ThreadId>,
}

/// One event loop: a thread with a single-threaded tokio runtime. Every channel is pinned to
/// one loop for its life, so its handlers run on that thread only.
///
/// ```
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use netloom_channel::EventLoopGroup;
/// let group = EventLoopGroup::new(1, "worker")?;
/// let el = group.next();
/// let (tx, rx) = std::sync::mpsc::channel();
/// el.execute(move || { let _ = tx.send(std::thread::current().name().map(str::to_owned)); })?;
/// assert_eq!(rx.recv().unwrap().as_deref(), Some("worker-0"));
/// group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1)).sync()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EventLoop(Arc<LoopInner>);

thread_local! {
    static CURRENT: RefCell<Option<EventLoop>> = const { RefCell::new(None) };
    static CHANNELS: RefCell<HashMap<u64, Channel>> = RefCell::new(HashMap::new());
    /// Channel tasks started on this loop thread, waiting to join the loop's task set.
    static SPAWNED: RefCell<Vec<LocalTask>> = const { RefCell::new(Vec::new()) };
    /// Whether `SPAWNED` may hold tasks: a flag without a destructor is a plain load to
    /// check, unlike the `Vec` behind a `RefCell`.
    static SPAWNED_ANY: Cell<bool> = const { Cell::new(false) };
    /// Wakes the loop's main future (to adopt newly spawned channel tasks).
    static MAIN_WAKER: RefCell<Option<Waker>> = const { RefCell::new(None) };
}

/// Starts a channel task on the calling loop thread. Channel tasks are polled directly by
/// the loop's main future (a [`TaskSet`]), not as tokio tasks: a wakeup costs a couple of
/// atomics instead of a trip through tokio's local scheduler.
pub(crate) fn spawn_channel_task(task: impl Future<Output = ()> + 'static) {
    SPAWNED.with(|s| s.borrow_mut().push(Box::pin(task)));
    SPAWNED_ANY.set(true);
    MAIN_WAKER.with(|w| {
        if let Some(w) = &*w.borrow() {
            w.wake_by_ref();
        }
    });
}

/// A waker for one side of the loop's main future (the job queue, the local task set): it
/// remembers that it fired, so that side is polled only after one of its own wake-ups, not
/// on every channel wake-up.
#[derive(Default)]
struct FlagWake {
    woken: AtomicBool,
    main: Mutex<Option<Waker>>,
}

impl FlagWake {
    fn new_woken() -> Arc<FlagWake> {
        let wake = Arc::new(FlagWake::default());
        wake.woken.store(true, Ordering::Release);
        wake
    }

    /// Clears the flag; true if it was set.
    fn take(&self) -> bool {
        self.woken.load(Ordering::Acquire) && self.woken.swap(false, Ordering::AcqRel)
    }

    fn set_main(&self, waker: &Waker) {
        *self.main.lock().unwrap_or_else(|e| e.into_inner()) = Some(waker.clone());
    }
}

impl Wake for FlagWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if let Some(w) = &*self.main.lock().unwrap_or_else(|e| e.into_inner()) {
            w.wake_by_ref();
        }
    }
}

/// The loop's main future: polls `inner` (the job queue), the loop's `LocalSet` (accept
/// loops, UDP drivers, user futures) and every channel task — each only when woken.
///
/// The `LocalSet` is polled as a plain future (its context is entered once for the whole
/// thread) instead of wrapping the loop in `LocalSet::run_until`, which would enter it and
/// tick its scheduler on every channel wake-up.
struct WithChannels<F> {
    inner: Pin<Box<F>>,
    local: tokio::task::LocalSet,
    tasks: TaskSet,
    jobs: Arc<FlagWake>,
    jobs_waker: Waker,
    locals: Arc<FlagWake>,
    locals_waker: Waker,
    main_waker: Option<Waker>,
    /// `LoopOptions::busy_poll`.
    busy_poll: Duration,
    /// When the loop last had work (kept only while busy-polling).
    last_work: Instant,
}

impl<F: Future> WithChannels<F> {
    fn new(inner: F, local: tokio::task::LocalSet, busy_poll: Duration) -> Self {
        let jobs = FlagWake::new_woken();
        let locals = FlagWake::new_woken();
        WithChannels {
            inner: Box::pin(inner),
            local,
            tasks: TaskSet::default(),
            jobs_waker: Waker::from(jobs.clone()),
            jobs,
            locals_waker: Waker::from(locals.clone()),
            locals,
            main_waker: None,
            busy_poll,
            last_work: Instant::now(),
        }
    }
}

impl<F> WithChannels<F> {
    /// Whether a job, a local task or a newly spawned channel task waits for this loop.
    fn has_queued_work(&self) -> bool {
        SPAWNED_ANY.get()
            || self.jobs.woken.load(Ordering::Acquire)
            || self.locals.woken.load(Ordering::Acquire)
    }
}

impl<F: Future> Future for WithChannels<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        if !this
            .main_waker
            .as_ref()
            .is_some_and(|w| same_waker(w, cx.waker()))
        {
            this.main_waker = Some(cx.waker().clone());
            this.jobs.set_main(cx.waker());
            this.locals.set_main(cx.waker());
            MAIN_WAKER.with(|w| *w.borrow_mut() = Some(cx.waker().clone()));
        }
        loop {
            if !this.busy_poll.is_zero() && (this.tasks.has_woken() || this.has_queued_work()) {
                this.last_work = Instant::now();
            }
            if this.jobs.take() {
                let mut jobs_cx = TaskContext::from_waker(&this.jobs_waker);
                if let Poll::Ready(out) = this.inner.as_mut().poll(&mut jobs_cx) {
                    return Poll::Ready(out);
                }
            }
            if this.locals.take() {
                // Ready only means "no local task left": more may be spawned later.
                let mut locals_cx = TaskContext::from_waker(&this.locals_waker);
                let _ = Pin::new(&mut this.local).poll(&mut locals_cx);
            }
            if SPAWNED_ANY.replace(false) {
                SPAWNED.with(|s| {
                    for task in s.borrow_mut().drain(..) {
                        this.tasks.push(task);
                    }
                });
            }
            // Unconstrained by tokio's cooperative budget: each channel task bounds its own
            // work per poll (`max_reads_per_poll`). Set once per batch, not per task.
            let tasks = &mut this.tasks;
            let batch = std::pin::pin!(tokio::task::unconstrained(std::future::poll_fn(|cx| {
                Poll::Ready(tasks.poll_woken(cx))
            })));
            // One clock reading for the batch: the idle and read timeouts of every channel
            // polled in it stamp their reads and writes with it (`clock`).
            let woke_meanwhile =
                crate::clock::in_batch(|| matches!(batch.poll(cx), Poll::Ready(true)));
            if woke_meanwhile {
                // Tasks woke while the batch ran (one used up its read budget): let the
                // runtime poll the driver first, then come back.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if !this.has_queued_work() {
                if !this.busy_poll.is_zero() && this.last_work.elapsed() < this.busy_poll {
                    // Busy-polling: come back after the runtime has polled the driver
                    // (without blocking, since this future is woken) instead of sleeping.
                    cx.waker().wake_by_ref();
                }
                return Poll::Pending;
            }
        }
    }
}

impl EventLoop {
    /// The loop's thread name.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// let group = netloom_channel::EventLoopGroup::new(2, "io")?;
    /// assert_eq!(group.next().name(), "io-0");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The loop running the calling thread, if any.
    ///
    /// ```
    /// assert!(netloom_channel::EventLoop::current().is_none());
    /// ```
    pub fn current() -> Option<EventLoop> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// Whether the calling thread is this loop's thread.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// let group = netloom_channel::EventLoopGroup::new(1, "io")?;
    /// assert!(!group.next().in_event_loop());
    /// # Ok(()) }
    /// ```
    pub fn in_event_loop(&self) -> bool {
        self.0.thread.get() == Some(&std::thread::current().id())
    }

    /// Runs `f` on the loop thread, after the work already submitted. `f` may call
    /// `tokio::task::spawn_local` for futures that are not `Send`.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// let group = netloom_channel::EventLoopGroup::new(1, "io")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// group.next().execute(move || { let _ = tx.send(1); })?;
    /// assert_eq!(rx.recv().unwrap(), 1);
    /// # Ok(()) }
    /// ```
    pub fn execute(&self, f: impl FnOnce() + Send + 'static) -> Result<(), ChannelError> {
        self.0
            .tx
            .send(Message::Run(Box::new(f)))
            .map_err(|_| ChannelError::EventLoopShutDown(self.0.name.clone()))
    }

    /// Runs `f` on the loop thread after `delay`.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use std::time::{Duration, Instant};
    /// let group = netloom_channel::EventLoopGroup::new(1, "io")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let start = Instant::now();
    /// group.next().schedule(Duration::from_millis(20), move || { let _ = tx.send(()); })?;
    /// rx.recv().unwrap();
    /// assert!(start.elapsed() >= Duration::from_millis(20));
    /// # Ok(()) }
    /// ```
    pub fn schedule(
        &self,
        delay: Duration,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<(), ChannelError> {
        self.execute(move || {
            tokio::task::spawn_local(async move {
                tokio::time::sleep(delay).await;
                f();
            });
        })
    }

    /// Runs a future on the loop thread.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// let group = netloom_channel::EventLoopGroup::new(1, "io")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// group.next().spawn(async move {
    ///     tokio::task::yield_now().await;
    ///     let _ = tx.send(2);
    /// })?;
    /// assert_eq!(rx.recv().unwrap(), 2);
    /// # Ok(()) }
    /// ```
    pub fn spawn(
        &self,
        fut: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ChannelError> {
        self.execute(move || {
            tokio::task::spawn_local(fut);
        })
    }

    /// Remembers a channel of the calling loop thread (closed at shutdown).
    pub(crate) fn track_channel(channel: &Channel) {
        CHANNELS.with(|c| c.borrow_mut().insert(channel.id(), channel.clone()));
    }

    pub(crate) fn untrack_channel(id: u64) {
        // `try_with`: the registry may already be gone while the thread exits.
        let _ = CHANNELS.try_with(|c| {
            if let Ok(mut map) = c.try_borrow_mut() {
                map.remove(&id);
            }
        });
    }
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("EventLoop").field(&self.0.name).finish()
    }
}

impl std::fmt::Debug for EventLoopGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoopGroup")
            .field("name", &self.0.name)
            .field("loops", &self.0.loops.len())
            .finish()
    }
}

/// Fails if the calling thread is an event loop thread (a blocking wait would deadlock it).
pub(crate) fn check_blocking(what: &'static str) -> Result<(), ChannelError> {
    match EventLoop::current() {
        Some(el) => Err(ChannelError::BlockingOnEventLoop {
            what,
            thread: el.name().to_owned(),
        }),
        None => Ok(()),
    }
}

struct GroupInner {
    name: String,
    loops: Vec<EventLoop>,
    next: AtomicUsize,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// How each loop of an [`EventLoopGroup`] runs.
///
/// ```
/// let options = netloom_channel::LoopOptions::default();
/// assert!(options.busy_poll.is_zero()); // sleeps as soon as it has nothing to do
/// ```
#[derive(Debug, Clone, Default)]
pub struct LoopOptions {
    /// After its last work (a woken channel, a job, a local task), a loop keeps polling its
    /// sockets without sleeping for this long, 0..=10 ms (default 0: it sleeps at once).
    /// A message answered within the budget then meets a loop that is awake: no wake-up
    /// of a sleeping thread (on a virtual machine, of a halted CPU) on its path, at the
    /// price of a CPU kept busy while traffic flows and for `busy_poll` after it, as Go's
    /// scheduler spins before parking. For the lowest added latency of a proxy or a
    /// forwarder; docs/benchmarks.md has what it saves.
    pub busy_poll: Duration,
}

impl LoopOptions {
    /// The largest [`busy_poll`](LoopOptions::busy_poll) budget.
    pub const MAX_BUSY_POLL: Duration = Duration::from_millis(10);
}

/// A group of event loops. New channels go to the loops in turn.
///
/// ```
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use netloom_channel::EventLoopGroup;
/// let group = EventLoopGroup::new(2, "worker")?;
/// assert_eq!(group.len(), 2);
/// assert_ne!(group.next().name(), group.next().name());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EventLoopGroup(Arc<GroupInner>);

impl EventLoopGroup {
    /// Starts `threads` loops named `{name}-0`, `{name}-1`, ...
    ///
    /// ```
    /// let err = netloom_channel::EventLoopGroup::new(0, "none").unwrap_err();
    /// assert!(err.to_string().contains("threads"));
    /// ```
    pub fn new(threads: usize, name: &str) -> Result<EventLoopGroup, ChannelError> {
        EventLoopGroup::with_options(threads, name, LoopOptions::default())
    }

    /// [`new`](EventLoopGroup::new) with `options` for every loop.
    ///
    /// ```
    /// use std::time::Duration;
    /// use netloom_channel::{EventLoopGroup, LoopOptions};
    /// let options = LoopOptions { busy_poll: Duration::from_micros(200), ..LoopOptions::default() };
    /// let group = EventLoopGroup::with_options(1, "spin", options)?;
    /// assert_eq!(group.len(), 1);
    /// let too_long = LoopOptions { busy_poll: Duration::from_secs(1), ..LoopOptions::default() };
    /// let err = EventLoopGroup::with_options(1, "spin", too_long).unwrap_err();
    /// assert!(err.to_string().contains("busy_poll"));
    /// # Ok::<(), netloom_channel::ChannelError>(())
    /// ```
    pub fn with_options(
        threads: usize,
        name: &str,
        options: LoopOptions,
    ) -> Result<EventLoopGroup, ChannelError> {
        if options.busy_poll > LoopOptions::MAX_BUSY_POLL {
            return Err(ChannelError::InvalidOption {
                name: "busy_poll",
                reason: format!(
                    "{:?} is above the largest busy-poll budget, {:?}",
                    options.busy_poll,
                    LoopOptions::MAX_BUSY_POLL
                ),
            });
        }
        if threads == 0 {
            return Err(ChannelError::InvalidOption {
                name: "threads",
                reason: "an event loop group needs at least one thread".into(),
            });
        }
        let mut loops = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let thread_name = format!("{name}-{i}");
            let (tx, rx) = mpsc::unbounded_channel();
            let el = EventLoop(Arc::new(LoopInner {
                name: thread_name.clone(),
                tx,
                thread: OnceLock::new(),
            }));
            let el_for_thread = el.clone();
            let handle = std::thread::Builder::new()
                .name(thread_name.clone())
                .spawn(move || run_thread(el_for_thread, rx, options.busy_poll))
                .map_err(|source| ChannelError::ThreadSpawn {
                    name: thread_name,
                    source,
                })?;
            loops.push(el);
            handles.push(handle);
        }
        Ok(EventLoopGroup(Arc::new(GroupInner {
            name: name.to_owned(),
            loops,
            next: AtomicUsize::new(0),
            threads: Mutex::new(handles),
        })))
    }

    /// The group's name.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// assert_eq!(netloom_channel::EventLoopGroup::new(1, "acceptor")?.name(), "acceptor");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The number of loops.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// assert_eq!(netloom_channel::EventLoopGroup::new(3, "w")?.len(), 3);
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        self.0.loops.len()
    }

    /// Always false: a group has at least one loop.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// assert!(!netloom_channel::EventLoopGroup::new(1, "w")?.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.loops.is_empty()
    }

    /// The next loop, round robin.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// let g = netloom_channel::EventLoopGroup::new(1, "w")?;
    /// assert_eq!(g.next().name(), g.next().name());
    /// # Ok(()) }
    /// ```
    pub fn next(&self) -> EventLoop {
        let i = self.0.next.fetch_add(1, Ordering::Relaxed) % self.0.loops.len();
        self.0.loops[i].clone()
    }

    /// All loops.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// let g = netloom_channel::EventLoopGroup::new(2, "w")?;
    /// assert_eq!(g.loops().len(), 2);
    /// # Ok(()) }
    /// ```
    pub fn loops(&self) -> &[EventLoop] {
        &self.0.loops
    }

    /// Whether both handles are the same group.
    pub(crate) fn same_group(&self, other: &EventLoopGroup) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Shuts every loop down: channels are closed gracefully, then each loop runs until no
    /// work was submitted for `quiet` and its channels are gone — or `timeout` passed.
    /// Returns a future; `.sync()` blocks until every thread has exited.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use std::time::Duration;
    /// let g = netloom_channel::EventLoopGroup::new(2, "w")?;
    /// g.shutdown_gracefully(Duration::from_millis(10), Duration::from_secs(2)).sync()?;
    /// assert!(g.next().execute(|| {}).is_err());
    /// # Ok(()) }
    /// ```
    pub fn shutdown_gracefully(&self, quiet: Duration, timeout: Duration) -> Termination {
        let mut waits = Vec::new();
        for el in &self.0.loops {
            let (done, rx) = oneshot::channel();
            if el
                .0
                .tx
                .send(Message::Shutdown {
                    quiet,
                    timeout,
                    done,
                })
                .is_ok()
            {
                waits.push(rx);
            }
        }
        let threads =
            std::mem::take(&mut *self.0.threads.lock().unwrap_or_else(|e| e.into_inner()));
        Termination { waits, threads }
    }
}

/// Completes when the loops of a group have shut down; `.sync()` also joins their threads.
///
/// ```
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use std::time::Duration;
/// let g = netloom_channel::EventLoopGroup::new(1, "w")?;
/// let t = g.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
/// t.sync()?;
/// # Ok(()) }
/// ```
pub struct Termination {
    waits: Vec<oneshot::Receiver<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Termination {
    /// Both terminations.
    pub(crate) fn and(mut self, other: Termination) -> Termination {
        self.waits.extend(other.waits);
        self.threads.extend(other.threads);
        self
    }

    /// Blocks until every loop thread has exited.
    ///
    /// ```
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// let g = netloom_channel::EventLoopGroup::new(1, "w")?;
    /// g.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1)).sync()?;
    /// # Ok(()) }
    /// ```
    pub fn sync(self) -> Result<(), ChannelError> {
        check_blocking("Termination")?;
        for handle in self.threads {
            let _ = handle.join();
        }
        Ok(())
    }
}

impl IntoFuture for Termination {
    type Output = ();
    type IntoFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            for w in self.waits {
                let _ = w.await;
            }
        })
    }
}

fn run_thread(el: EventLoop, mut rx: mpsc::UnboundedReceiver<Message>, busy_poll: Duration) {
    let _ = el.0.thread.set(std::thread::current().id());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            tracing::error!(loop_name = %el.name(), %err, "cannot start the event loop runtime");
            return;
        }
    };
    CURRENT.with(|c| *c.borrow_mut() = Some(el.clone()));
    let local = tokio::task::LocalSet::new();
    // `spawn_local` works anywhere on this thread from here on.
    let local_guard = local.enter();
    let jobs = async move {
        let (quiet, timeout, done) = loop {
            match rx.recv().await {
                Some(Message::Run(job)) => job(),
                Some(Message::Shutdown {
                    quiet,
                    timeout,
                    done,
                }) => break (quiet, timeout, done),
                None => return None,
            }
        };
        drain(&mut rx, quiet, timeout).await;
        Some(done)
    };
    let main = WithChannels::new(jobs, local, busy_poll);
    // Returning drops the remaining channel tasks (their sockets close) and local tasks.
    let done = runtime.block_on(main);
    SPAWNED.with(|s| s.borrow_mut().clear());
    MAIN_WAKER.with(|w| *w.borrow_mut() = None);
    drop(local_guard);
    drop(runtime);
    CHANNELS.with(|c| c.borrow_mut().clear());
    CURRENT.with(|c| *c.borrow_mut() = None);
    if let Some(done) = done {
        let _ = done.send(());
    }
}

/// The shutdown phase: close channels, keep running jobs until quiet, bounded by `timeout`.
async fn drain(rx: &mut mpsc::UnboundedReceiver<Message>, quiet: Duration, timeout: Duration) {
    let channels: Vec<Channel> = CHANNELS.with(|c| c.borrow().values().cloned().collect());
    for ch in &channels {
        ch.close();
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_activity = tokio::time::Instant::now();
    let tick = quiet.clamp(Duration::from_millis(1), Duration::from_millis(50));
    loop {
        let now = tokio::time::Instant::now();
        let idle = CHANNELS.with(|c| c.borrow().is_empty());
        if now >= deadline || (idle && now.duration_since(last_activity) >= quiet) {
            break;
        }
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Message::Run(job)) => {
                    job();
                    last_activity = tokio::time::Instant::now();
                }
                Some(Message::Shutdown { done, .. }) => {
                    let _ = done.send(());
                }
                None => tokio::time::sleep(tick).await,
            },
            _ = tokio::time::sleep(tick) => {}
        }
    }
    rx.close();
}
