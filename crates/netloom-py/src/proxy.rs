//! `netloom.proxy`: netloom-proxy's in-process chaos proxy (Toxiproxy's toxics) as Python
//! objects. A proxy is deleted (its listener and connections closed) on `close()` or when
//! the object is collected.
use std::collections::HashMap;
use std::sync::Mutex;

use netloom_proxy::{ProxyError, ProxyGuard, ProxyServer, ServerOptions, ToxicSpec};
use pyo3::prelude::*;

use crate::error::{Error, catch};

fn proxy_error(err: ProxyError) -> PyErr {
    let msg = err.to_string();
    match err {
        ProxyError::BadRequestBody(_)
        | ProxyError::MissingField(_)
        | ProxyError::InvalidStream(_)
        | ProxyError::InvalidToxicType(_)
        | ProxyError::InvalidAttribute { .. } => Error::new("InvalidArgument", msg),
        _ => Error::new("ProxyError", msg),
    }
    .into()
}

/// A set of proxies sharing event-loop threads (netloom-proxy's `ProxyServer`).
#[pyclass(module = "netloom._native", name = "ProxyServer")]
pub(crate) struct PyProxyServer {
    server: ProxyServer,
}

#[pymethods]
impl PyProxyServer {
    /// Starts the event-loop threads; `seed` fixes every random decision (jitter,
    /// toxicity, slicer sizes).
    #[new]
    #[pyo3(signature = (*, seed=None, threads=1))]
    fn new(seed: Option<u64>, threads: usize) -> PyResult<PyProxyServer> {
        if threads == 0 || threads > 64 {
            return Err(Error::new(
                "InvalidArgument",
                format!("threads={threads}: expected 1..=64"),
            )
            .into());
        }
        let defaults = ServerOptions::default();
        let options = ServerOptions {
            seed: seed.unwrap_or(defaults.seed),
            threads,
            ..defaults
        };
        catch(|| {
            ProxyServer::new(options)
                .map(|server| PyProxyServer { server })
                .map_err(proxy_error)
        })
    }

    /// The seed of every random decision.
    #[getter]
    fn seed(&self) -> u64 {
        self.server.seed()
    }

    /// Creates proxy `name` listening on `listen` (`"127.0.0.1:0"`: a free port) and
    /// forwarding to `upstream` (`HOST:PORT`).
    fn proxy(&self, py: Python<'_>, name: &str, listen: &str, upstream: &str) -> PyResult<PyProxy> {
        catch(|| {
            py.detach(|| self.server.proxy(name, listen, upstream))
                .map(|guard| PyProxy {
                    name: guard.name().to_owned(),
                    listen: guard.listen().to_string(),
                    server: self.server.clone(),
                    guard: Mutex::new(Some(guard)),
                })
                .map_err(proxy_error)
        })
    }
}

/// One proxy with its toxics.
#[pyclass(module = "netloom._native", name = "Proxy")]
pub(crate) struct PyProxy {
    name: String,
    listen: String,
    server: ProxyServer,
    guard: Mutex<Option<ProxyGuard>>,
}

/// A toxic attribute given as a keyword argument, or its default.
fn attr(
    attrs: &HashMap<String, u64>,
    kind: &str,
    name: &str,
    default: Option<u64>,
) -> PyResult<u64> {
    attrs.get(name).copied().or(default).ok_or_else(|| {
        Error::new(
            "InvalidArgument",
            format!("toxic {kind} needs the attribute {name}"),
        )
        .into()
    })
}

/// The typed toxic for `kind` and its attributes; unknown attributes are refused.
fn spec(kind: &str, attrs: &HashMap<String, u64>) -> PyResult<ToxicSpec> {
    let known: &[&str] = match kind {
        "latency" => &["latency", "jitter"],
        "bandwidth" => &["rate"],
        "slow_close" => &["delay"],
        "timeout" | "reset_peer" => &["timeout"],
        "slicer" => &["average_size", "size_variation", "delay"],
        "limit_data" => &["bytes"],
        other => {
            return Err(Error::new(
                "InvalidArgument",
                format!(
                    "toxic type {other:?}: expected latency, bandwidth, slow_close, timeout, reset_peer, slicer or limit_data"
                ),
            )
            .into());
        }
    };
    if let Some(extra) = attrs.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(Error::new(
            "InvalidArgument",
            format!("toxic {kind} has no attribute {extra:?} (it has {known:?})"),
        )
        .into());
    }
    let a = |name, default| attr(attrs, kind, name, default);
    Ok(match kind {
        "latency" => ToxicSpec::latency(a("latency", None)?, a("jitter", Some(0))?),
        "bandwidth" => ToxicSpec::bandwidth(a("rate", None)?),
        "slow_close" => ToxicSpec::slow_close(a("delay", None)?),
        "timeout" => ToxicSpec::timeout(a("timeout", Some(0))?),
        "reset_peer" => ToxicSpec::reset_peer(a("timeout", Some(0))?),
        "slicer" => ToxicSpec::slicer(
            a("average_size", None)?,
            a("size_variation", Some(0))?,
            a("delay", Some(0))?,
        ),
        _ => ToxicSpec::limit_data(a("bytes", None)?),
    })
}

impl PyProxy {
    fn with_guard<T>(&self, f: impl FnOnce(&ProxyGuard) -> Result<T, ProxyError>) -> PyResult<T> {
        let guard = self.guard.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(g) => catch(|| f(g).map_err(proxy_error)),
            None => Err(Error::new("StateError", format!("proxy {} is closed", self.name)).into()),
        }
    }
}

#[pymethods]
impl PyProxy {
    /// The proxy's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The address clients connect to (`HOST:PORT`).
    #[getter]
    fn listen(&self) -> &str {
        &self.listen
    }

    /// Adds a toxic of type `kind` with integer `attrs` (Toxiproxy's names and units);
    /// returns its name.
    #[pyo3(signature = (kind, attrs, *, upstream=false, name=None, toxicity=1.0, after_bytes=0, after_ms=0, for_ms=None))]
    #[allow(clippy::too_many_arguments)]
    fn add(
        &self,
        py: Python<'_>,
        kind: &str,
        attrs: HashMap<String, u64>,
        upstream: bool,
        name: Option<&str>,
        toxicity: f64,
        after_bytes: u64,
        after_ms: u64,
        for_ms: Option<u64>,
    ) -> PyResult<String> {
        let mut toxic = spec(kind, &attrs)?.toxicity(toxicity);
        if upstream {
            toxic = toxic.upstream();
        }
        if let Some(name) = name {
            toxic = toxic.named(name);
        }
        if after_bytes > 0 {
            toxic = toxic.after_bytes(after_bytes);
        }
        if after_ms > 0 {
            toxic = toxic.after_ms(after_ms);
        }
        if let Some(ms) = for_ms {
            toxic = toxic.for_ms(ms);
        }
        py.detach(|| self.with_guard(|g| g.add(toxic)))
    }

    /// Removes toxic `name`.
    fn remove(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        py.detach(|| self.with_guard(|g| g.remove(name)))
    }

    /// The toxics as Toxiproxy's JSON list.
    fn toxics_json(&self, py: Python<'_>) -> PyResult<String> {
        py.detach(|| self.with_guard(|_| self.server.toxics(&self.name).map(|v| v.to_string())))
    }

    /// Enables or disables (Toxiproxy's "down": listener closed, connections cut) the proxy.
    fn set_enabled(&self, py: Python<'_>, enabled: bool) -> PyResult<()> {
        py.detach(|| self.with_guard(|g| g.set_enabled(enabled)))
    }

    /// Whether `close()` has not run yet.
    #[getter]
    fn open(&self) -> bool {
        self.guard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Deletes the proxy: its listener and connections close. A second call does nothing.
    fn close(&self, py: Python<'_>) {
        let guard = self.guard.lock().unwrap_or_else(|p| p.into_inner()).take();
        py.detach(|| drop(guard));
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyProxyServer>()?;
    m.add_class::<PyProxy>()?;
    Ok(())
}
