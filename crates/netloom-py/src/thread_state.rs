//! Persistent Python thread states for the threads netloom starts (event loops, the
//! tokio runtime) that call into Python over and over.

thread_local! {
    /// Whether this thread keeps a Python thread state (see [`prime_thread`]).
    static PRIMED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Gives the calling thread a Python thread state that outlives each callback.
/// Without it every `Python::attach` on a thread Python does not know creates a thread
/// state and deletes it again on release, which costs more than a short callback itself.
/// Called on event loop and runtime threads before they enter Python; `netloom`'s atexit
/// hook stops the loops and keeps runtime tasks out of Python before the interpreter
/// finalizes.
pub(crate) fn prime_thread() {
    PRIMED.with(|primed| {
        if primed.get() {
            return;
        }
        primed.set(true);
        // SAFETY: the interpreter is initialized (the caller holds Python objects it is
        // about to use) and this thread holds no GIL (callers prime before attaching): `PyGILState_Ensure` makes a
        // thread state for it and takes the GIL; `PyEval_SaveThread` releases the GIL and
        // keeps the state (its gilstate counter stays at 1), so later `Python::attach`
        // calls on this thread reuse it. The state is never used after this call except
        // through `PyGILState_Ensure`/`Release` pairs that pyo3 makes.
        unsafe {
            let _state = pyo3::ffi::PyGILState_Ensure();
            pyo3::ffi::PyEval_SaveThread();
        }
    });
}
