//! Rust futures as asyncio futures, safe at interpreter exit.
//!
//! pyo3-async-runtimes' `future_into_py` leaves tokio worker threads free to touch Python
//! after the interpreter started finalizing (a process that just returned from
//! `asyncio.run` crashed at exit about one run in five). Here every bridged task is
//! counted, and it settles its asyncio future only under [`Python::attach`] while the
//! interpreter is not shutting down: `netloom`'s `atexit` hook calls [`_shutdown`], which
//! waits (GIL released) for the running tasks, then tells the stragglers to leak their
//! Python references instead of touching Python.
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::IntoPyObjectExt as _;
use pyo3::prelude::*;

use crate::error::catch_future;
use crate::wait::runtime;

/// `netloom._native._drain`, looked up once.
static DRAIN: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();

/// Makes a settled task's value (or exception) on the loop thread, under the GIL.
type Settle = Box<dyn for<'py> FnOnce(Python<'py>) -> (bool, Py<PyAny>) + Send>;

/// Results waiting to be delivered on one asyncio loop. Tasks push onto it; the first push
/// after a drain schedules one `_drain` callback (`call_soon_threadsafe`), so a burst of
/// results costs one wake-up of the loop and one GIL hand-over instead of one each.
#[pyclass(module = "netloom._native", name = "_SettleQueue", frozen)]
pub(crate) struct SettleQueue {
    /// The futures and how to settle each; `scheduled` says a `_drain` is on its way.
    items: std::sync::Mutex<Queued>,
    /// Tasks made by [`awaitable_batched`] on the loop thread since the last `_flush`
    /// (only the loop thread touches it, under the GIL).
    pending: std::sync::Mutex<Vec<Start>>,
}

/// A bridged task, running.
type Task = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;
/// Makes a bridged task. Called on a runtime thread, so that the task's state (the
/// future's, often kilobytes) is allocated and freed there, not on the loop thread.
type Start = Box<dyn FnOnce() -> Task + Send>;

/// The futures with how to settle each, and whether a `_drain` is scheduled.
type Queued = (Vec<(Py<PyAny>, Settle)>, bool);

/// The settle queue of `event_loop` (kept as an attribute of the loop), or a fresh one
/// for loops that take no attributes.
fn queue_of(event_loop: &Bound<'_, PyAny>) -> PyResult<Py<SettleQueue>> {
    let attr = pyo3::intern!(event_loop.py(), "_netloom_settle_queue");
    if let Ok(q) = event_loop.getattr(attr)
        && let Ok(q) = q.cast_into::<SettleQueue>()
    {
        return Ok(q.unbind());
    }
    let q = Py::new(
        event_loop.py(),
        SettleQueue {
            items: std::sync::Mutex::new((Vec::new(), false)),
            pending: std::sync::Mutex::new(Vec::new()),
        },
    )?;
    let _ = event_loop.setattr(attr, q.clone_ref(event_loop.py()));
    Ok(q)
}

/// Settles every queued future of `queue` (run on its loop by `call_soon_threadsafe`).
#[pyfunction]
fn _drain(py: Python<'_>, queue: &Bound<'_, SettleQueue>) -> PyResult<()> {
    let items = {
        let mut guard = queue.get().items.lock().unwrap_or_else(|p| p.into_inner());
        guard.1 = false;
        std::mem::take(&mut guard.0)
    };
    for (fut, settle) in items {
        let (ok, value) = settle(py);
        let fut = fut.bind(py);
        let method = if ok {
            pyo3::intern!(py, "set_result")
        } else {
            pyo3::intern!(py, "set_exception")
        };
        // One call per result; a future cancelled meanwhile refuses it (InvalidStateError).
        // Any other failure is reported and the other futures still get their results.
        if let Err(e) = fut.call_method1(method, (value,))
            && !fut
                .call_method0(pyo3::intern!(py, "done"))
                .and_then(|d| d.is_truthy())
                .unwrap_or(false)
        {
            e.write_unraisable(py, Some(fut));
        }
    }
    Ok(())
}

/// Hands the tasks [`awaitable_batched`] queued on this loop to the runtime: one task (and
/// one wake-up of a runtime thread) for all of them. Run on the loop by `call_soon`.
#[pyfunction]
fn _flush(queue: &Bound<'_, SettleQueue>) {
    let starts = std::mem::take(
        &mut *queue
            .get()
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    start_all(starts);
}

/// Runs `starts` as one runtime task.
fn start_all(starts: Vec<Start>) {
    if starts.is_empty() {
        return;
    }
    runtime().spawn(async move {
        let mut running: futures::stream::FuturesUnordered<Task> =
            starts.into_iter().map(|start| start()).collect();
        while futures::StreamExt::next(&mut running).await.is_some() {}
    });
}

/// Bridged tasks still running or settling.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// Set by [`_shutdown`]: no task may enter Python any more.
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

struct Active;

impl Active {
    fn enter() -> Active {
        ACTIVE.fetch_add(1, Ordering::SeqCst);
        Active
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs `fut` on the runtime and returns an asyncio future (of the running loop) that
/// completes with its value or exception. A panic becomes `InternalError`.
pub fn awaitable<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let (py_fut, _, start) = bridged(py, move || fut)?;
    runtime().spawn(start());
    Ok(py_fut)
}

/// Like [`awaitable`], but the task starts when the loop runs the callbacks that are ready
/// now, or when [`BATCH_LIMIT`] tasks wait: the awaitables a burst of coroutines makes in
/// one loop iteration (say the probes of an `asyncio.gather`) reach the runtime together,
/// with one wake-up of a runtime thread per run instead of one each.
/// `make` makes the future on a runtime thread.
pub fn awaitable_batched<'py, M, F, T>(py: Python<'py>, make: M) -> PyResult<Bound<'py, PyAny>>
where
    M: FnOnce() -> F + Send + 'static,
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let (py_fut, event_loop, start) = bridged(py, make)?;
    let queue = queue_of(&event_loop)?;
    let (first, full) = {
        let mut pending = queue
            .get()
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        pending.push(start);
        let first = pending.len() == 1;
        let full = if pending.len() >= BATCH_LIMIT {
            std::mem::take(&mut *pending)
        } else {
            Vec::new()
        };
        (first, full)
    };
    start_all(full);
    if first {
        let flush = FLUSH.import(py, "netloom._native", "_flush")?;
        event_loop.call_method1(pyo3::intern!(py, "call_soon"), (flush, queue))?;
    }
    Ok(py_fut)
}

/// Tasks [`awaitable_batched`] holds back at most: a long burst is handed over in runs of
/// this many, so the runtime starts sending while the loop still makes the rest (64 cost
/// ~10% less CPU per probe than one hand-over per burst in the probe benchmark, whose
/// bursts are 256: the runtime thread parks less often).
const BATCH_LIMIT: usize = 64;

/// `asyncio.get_running_loop`, looked up once.
static GET_RUNNING_LOOP: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
/// `netloom._native._flush`, looked up once.
static FLUSH: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();

/// The asyncio future of the running loop, the loop, and what makes the task that runs
/// the future `make` returns and settles the asyncio future through the loop's
/// [`SettleQueue`].
fn bridged<'py, M, F, T>(
    py: Python<'py>,
    make: M,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Start)>
where
    M: FnOnce() -> F + Send + 'static,
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let event_loop = GET_RUNNING_LOOP
        .import(py, "asyncio", "get_running_loop")?
        .call0()?;
    let py_fut = event_loop.call_method0(pyo3::intern!(py, "create_future"))?;
    let queue = queue_of(&event_loop)?;
    let loop_ref = event_loop.clone().unbind();
    let fut_ref = py_fut.clone().unbind();
    let active = Active::enter();
    let start: Start = Box::new(move || {
        Box::pin(async move {
            let result = catch_future(make()).await;
            if SHUTTING_DOWN.load(Ordering::SeqCst) {
                // The interpreter is going away: touching it (even to drop a reference)
                // could crash the process.
                std::mem::forget((loop_ref, fut_ref, result, queue));
                drop(active);
                return;
            }
            let settle: Settle = Box::new(move |py| match result.and_then(|v| v.into_py_any(py)) {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_any()),
            });
            let schedule = {
                let mut guard = queue.get().items.lock().unwrap_or_else(|p| p.into_inner());
                guard.0.push((fut_ref, settle));
                !std::mem::replace(&mut guard.1, true)
            };
            if schedule {
                crate::thread_state::prime_thread();
                Python::attach(|py| {
                    let scheduled =
                        DRAIN
                            .import(py, "netloom._native", "_drain")
                            .and_then(|drain| {
                                loop_ref.call_method1(
                                    py,
                                    "call_soon_threadsafe",
                                    (drain, queue.clone_ref(py)),
                                )
                            });
                    if let Err(e) = scheduled {
                        // The loop is closed: nobody awaits these results any more.
                        let mut guard = queue.get().items.lock().unwrap_or_else(|p| p.into_inner());
                        guard.1 = false;
                        guard.0.clear();
                        drop(guard);
                        e.write_unraisable(py, None);
                    }
                    drop((loop_ref, queue));
                });
            } else {
                // Dropped without the GIL: pyo3 defers the decrements to the next holder.
                drop((loop_ref, queue));
            }
            drop(active);
        }) as Task
    });
    Ok((py_fut, event_loop, start))
}

/// Called at interpreter exit: waits up to `timeout` seconds for running tasks, then stops
/// every task from entering Python. Returns how many were still running.
#[pyfunction]
#[pyo3(signature = (timeout=2.0))]
fn _shutdown(py: Python<'_>, timeout: f64) -> usize {
    let deadline = Instant::now() + Duration::from_secs_f64(timeout.clamp(0.0, 60.0));
    py.detach(|| {
        while ACTIVE.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    SHUTTING_DOWN.store(true, Ordering::SeqCst);
    // A task that saw the flag clear just before may be inside `attach` now: wait for it
    // with the GIL released so that it can finish.
    py.detach(|| {
        let deadline = Instant::now() + Duration::from_millis(200);
        while ACTIVE.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    ACTIVE.load(Ordering::SeqCst)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_drain, m)?)?;
    m.add_function(wrap_pyfunction!(_flush, m)?)?;
    m.add_class::<SettleQueue>()?;
    m.add_function(wrap_pyfunction!(_shutdown, m)?)?;
    Ok(())
}
