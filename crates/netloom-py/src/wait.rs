//! Blocking waits that Ctrl-C interrupts.
//!
//! A blocking call (`sync()`, `wait()`) runs its future on the shared tokio runtime and
//! waits for it with the GIL released, waking every [`SIGNAL_CHECK`] to let Python run its
//! signal handlers: a `KeyboardInterrupt` (or any exception a handler raises) cancels the
//! future and propagates.
use std::future::Future;
use std::time::Duration;

use pyo3::prelude::*;

use crate::error::catch_future;

/// How often a blocking wait checks for signals.
pub const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Runs `fut` to completion on the runtime, blocking the calling thread without the GIL;
/// returns early with the signal handler's exception (e.g. `KeyboardInterrupt`).
pub fn block_on<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let task = runtime().spawn(async move {
        let _ = tx.send(catch_future(fut).await);
    });
    let mut rx = rx;
    loop {
        // The receiver moves into the GIL-free closure and back (it is `Send`, not `Sync`).
        let (back, step) = py.detach(move || {
            let step = rx.recv_timeout(SIGNAL_CHECK);
            (rx, step)
        });
        rx = back;
        match step {
            Ok(result) => return result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Err(err) = py.check_signals() {
                    task.abort();
                    return Err(err);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(crate::error::Error::new(
                    "InternalError",
                    "the runtime dropped a blocking call's task",
                )
                .into());
            }
        }
    }
}

/// The tokio runtime every native operation runs on (pyo3-async-runtimes' shared one).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Makes [`runtime`] one worker thread (`TOKIO_WORKER_THREADS` overrides it): the probe
/// engine's receive tasks and the probes they answer then run on one thread, instead of
/// each answer waking a second worker (cross-thread wake-ups cost a probe batch ~30 % more
/// CPU, docs/benchmarks.md). Called at import, before anything uses the runtime; the
/// netloom.channel event loops are threads of their own.
pub(crate) fn configure_runtime() {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("netloom-runtime");
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(1);
    }
    pyo3_async_runtimes::tokio::init(builder);
}

/// `sleep(seconds)`: blocks for `seconds` (interruptible by Ctrl-C): the plain case of
/// every blocking wait, for tests.
#[pyfunction]
fn _sleep_for_test(py: Python<'_>, seconds: f64) -> PyResult<()> {
    let d = Duration::try_from_secs_f64(seconds).map_err(|e| {
        crate::error::Error::new("InvalidArgument", format!("seconds={seconds}: {e}"))
    })?;
    block_on(py, async move {
        tokio::time::sleep(d).await;
        Ok(())
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_sleep_for_test, m)?)?;
    Ok(())
}
