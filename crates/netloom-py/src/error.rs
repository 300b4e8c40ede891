//! Rust errors and panics as instances of `netloom.errors` classes.
//!
//! The classes are defined in Python (`python/netloom/errors.py`) so that they can have
//! several bases (`NetloomPermissionError` is also a builtin `PermissionError`); this
//! module looks them up by name when it raises one. A panic never leaves as pyo3's
//! `PanicException` (a `BaseException`): [`catch`] and [`catch_future`] turn it into
//! `netloom.errors.InternalError`.
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt as _;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// One error on its way to Python: the `netloom.errors` class name, the message and the
/// attributes set on the exception.
#[derive(Debug)]
pub struct Error {
    class: &'static str,
    message: String,
    attrs: Vec<(&'static str, Attr)>,
}

/// An attribute value of a raised exception.
#[derive(Debug, Clone)]
pub enum Attr {
    /// A `str`.
    Str(String),
    /// An `int`.
    Int(i128),
    /// A `bool`.
    Bool(bool),
}

impl Error {
    /// An error of class `class` (a name in `netloom.errors`) saying `message`.
    pub fn new(class: &'static str, message: impl Into<String>) -> Self {
        Error {
            class,
            message: message.into(),
            attrs: Vec::new(),
        }
    }

    /// Adds an attribute to set on the exception.
    pub fn attr(mut self, name: &'static str, value: Attr) -> Self {
        self.attrs.push((name, value));
        self
    }

    fn into_pyerr(self, py: Python<'_>) -> PyResult<PyErr> {
        let class = py.import("netloom.errors")?.getattr(self.class)?;
        let value = class.call1((self.message,))?;
        for (name, attr) in self.attrs {
            match attr {
                Attr::Str(s) => value.setattr(name, s)?,
                Attr::Int(i) => value.setattr(name, i)?,
                Attr::Bool(b) => value.setattr(name, b)?,
            }
        }
        Ok(PyErr::from_value(value))
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        Python::attach(|py| {
            let fallback = format!("{}: {}", err.class, err.message);
            err.into_pyerr(py).unwrap_or_else(|lookup| {
                // Only when the pure-Python package is missing (the native module imported
                // on its own): still an exception, naming both failures.
                pyo3::exceptions::PyRuntimeError::new_err(format!(
                    "{fallback} (and netloom.errors could not be used: {lookup})"
                ))
            })
        })
    }
}

/// The message of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

fn internal(payload: &(dyn std::any::Any + Send)) -> PyErr {
    Error::new(
        "InternalError",
        format!(
            "netloom panicked (a bug; please report it): {}",
            panic_message(payload)
        ),
    )
    .into()
}

/// Runs `f`, turning a panic into `netloom.errors.InternalError`.
pub fn catch<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(internal(&*p)))
}

/// Awaits `fut`, turning a panic into `netloom.errors.InternalError`.
pub async fn catch_future<T>(fut: impl Future<Output = PyResult<T>>) -> PyResult<T> {
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .unwrap_or_else(|p| Err(internal(&*p)))
}

/// Panics with `message` on purpose, so tests can check that a panic arrives as
/// `netloom.errors.InternalError` (sync) .
#[pyfunction]
fn _panic_for_test(message: String) -> PyResult<()> {
    catch(|| panic!("{message}"))
}

/// Like [`_panic_for_test`], inside an awaitable.
#[pyfunction]
fn _panic_in_future_for_test(py: Python<'_>, message: String) -> PyResult<Bound<'_, PyAny>> {
    crate::bridge::awaitable(
        py,
        catch_future(async move {
            if !message.is_empty() {
                panic!("{message}");
            }
            Ok(())
        }),
    )
}

/// The error-class names `netloom.errors` must define (checked by the tests).
#[pyfunction]
fn _error_classes(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    for name in CLASSES {
        d.set_item(name, true)?;
    }
    Ok(d)
}

/// Every class name this crate raises.
const CLASSES: &[&str] = &[
    "NetloomError",
    "InternalError",
    "NetloomPermissionError",
    "InvalidArgument",
    "NotSupported",
    "CodecError",
    "FrameTooLong",
    "TruncatedFrame",
    "ProbeError",
    "ProbesExhausted",
    "HostResolveError",
    "StateError",
    "FaultError",
    "ChannelError",
    "ProxyError",
];

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_in_future_for_test, m)?)?;
    m.add_function(wrap_pyfunction!(_error_classes, m)?)?;
    Ok(())
}
