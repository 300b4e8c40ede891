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
}

/// The futures with how to settle each, and whether a `_drain` is scheduled.
type Queued = (Vec<(Py<PyAny>, Settle)>, bool);

/// The settle queue of `event_loop` (kept as an attribute of the loop), or a fresh one
/// for loops that take no attributes.
fn queue_of(event_loop: &Bound<'_, PyAny>) -> PyResult<Py<SettleQueue>> {
    const ATTR: &str = "_netloom_settle_queue";
    if let Ok(q) = event_loop.getattr(ATTR)
        && let Ok(q) = q.cast_into::<SettleQueue>()
    {
        return Ok(q.unbind());
    }
    let q = Py::new(
        event_loop.py(),
        SettleQueue {
            items: std::sync::Mutex::new((Vec::new(), false)),
        },
    )?;
    let _ = event_loop.setattr(ATTR, q.clone_ref(event_loop.py()));
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
        _settle(fut.bind(py), ok, value.bind(py))?;
    }
    Ok(())
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
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let py_fut = event_loop.call_method0("create_future")?;
    let queue = queue_of(&event_loop)?;
    let loop_ref = event_loop.unbind();
    let fut_ref = py_fut.clone().unbind();
    let active = Active::enter();
    runtime().spawn(async move {
        let result = catch_future(fut).await;
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
                let scheduled = DRAIN
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
    });
    Ok(py_fut)
}

/// Completes `fut` with `value` (or raises it when `ok` is false) unless it was cancelled.
#[pyfunction]
fn _settle(fut: &Bound<'_, PyAny>, ok: bool, value: &Bound<'_, PyAny>) -> PyResult<()> {
    if fut.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    if ok {
        fut.call_method1("set_result", (value,))?;
    } else {
        fut.call_method1("set_exception", (value,))?;
    }
    Ok(())
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
    m.add_function(wrap_pyfunction!(_settle, m)?)?;
    m.add_function(wrap_pyfunction!(_drain, m)?)?;
    m.add_class::<SettleQueue>()?;
    m.add_function(wrap_pyfunction!(_shutdown, m)?)?;
    Ok(())
}
