//! `netloom.channel`: py-netty's API over netloom-channel. Event loop groups, server and
//! client bootstraps (TCP, TLS), and Python handlers as pipeline stages next to netloom's
//! framers. The Python module (`python/netloom/channel.py`) gives these py-netty's names
//! and defaults.
mod handler;
mod objects;

use std::net::ToSocketAddrs as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netloom_channel::{
    Bootstrap, ChannelError, EventLoopGroup, FramingHandler, LoopOptions, Pipeline,
    ServerBootstrap, TlsClientConfig, TlsHandler, TlsServerConfig,
};
use netloom_codec::Framer;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::error::{Error, catch};
use crate::wait::block_on;
use handler::PyHandler;
use objects::{PyChannel, PyCloseFuture, PyContext, PyServerChannel, channel_error};

/// Every group made from Python, shut down by `_shutdown_channels` at exit so that no
/// event loop thread enters Python while the interpreter finalizes.
static GROUPS: Mutex<Vec<EventLoopGroup>> = Mutex::new(Vec::new());

/// A set of event loop threads (py-netty's `EventLoopGroup`).
#[pyclass(module = "netloom._native", name = "EventLoopGroup", frozen)]
pub(crate) struct PyGroup {
    group: EventLoopGroup,
}

#[pymethods]
impl PyGroup {
    /// `threads` event loops named `name-N`, each polling for `busy_poll` seconds after its
    /// last work before it sleeps (0 to 0.01; `LoopOptions::busy_poll`).
    #[new]
    #[pyo3(signature = (threads, name, busy_poll=0.0))]
    fn new(threads: usize, name: &str, busy_poll: f64) -> PyResult<PyGroup> {
        if !(1..=256).contains(&threads) {
            return Err(Error::new(
                "InvalidArgument",
                format!("num={threads}: expected 1..=256 event loop threads"),
            )
            .into());
        }
        let max = LoopOptions::MAX_BUSY_POLL.as_secs_f64();
        // Written so that NaN fails too.
        if !(0.0..=max).contains(&busy_poll) {
            return Err(Error::new(
                "InvalidArgument",
                format!("busy_poll={busy_poll}: expected 0 to {max} seconds"),
            )
            .into());
        }
        let options = LoopOptions {
            busy_poll: Duration::from_secs_f64(busy_poll),
        };
        let group = EventLoopGroup::with_options(threads, name, options).map_err(channel_error)?;
        GROUPS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(group.clone());
        Ok(PyGroup { group })
    }

    /// How many event loops.
    fn __len__(&self) -> usize {
        self.group.len()
    }

    /// Stops the loops (closing their channels) and waits up to `timeout` seconds.
    #[pyo3(signature = (timeout=5.0))]
    fn shutdown_gracefully(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let timeout = Duration::try_from_secs_f64(timeout)
            .map_err(|e| Error::new("InvalidArgument", format!("timeout={timeout}: {e}")))?;
        let done = self.group.shutdown_gracefully(Duration::ZERO, timeout);
        py.detach(|| done.sync()).map_err(channel_error)
    }
}

/// Stops every group (called by `netloom`'s atexit hook before the interpreter goes).
#[pyfunction]
fn _shutdown_channels(py: Python<'_>) {
    let groups = std::mem::take(&mut *GROUPS.lock().unwrap_or_else(|p| p.into_inner()));
    py.detach(|| {
        for g in &groups {
            let _ = g
                .shutdown_gracefully(Duration::ZERO, Duration::from_secs(2))
                .sync();
        }
    });
}

/// One pipeline stage as the Python initializer describes it.
enum Stage {
    /// A Python handler, its overridden-method mask, name and context.
    Py(Py<PyAny>, u32, String, Py<PyContext>),
    /// A framer: decode and encode names, stage name.
    Framer(String, String, String),
}

/// Calls the Python `initializer` (it returns a list of `("py", handler, mask, name)` /
/// `("framer", decode, encode, name)` tuples) and adds the stages to `p`, after TLS.
fn init_pipeline(
    p: &mut Pipeline,
    initializer: &Py<PyAny>,
    tls: Option<&dyn Fn() -> Result<TlsHandler, ChannelError>>,
) -> Result<(), ChannelError> {
    if let Some(make) = tls {
        p.add_last("tls", make()?)?;
    }
    let channel = p.channel().clone();
    crate::thread_state::prime_thread();
    let stages = Python::attach(|py| -> PyResult<Vec<Stage>> {
        let pych = Py::new(py, PyChannel { channel })?;
        let made = initializer.bind(py).call0()?;
        let mut out = Vec::new();
        for item in made.cast::<PyList>()?.iter() {
            let t = item.cast::<PyTuple>()?;
            let kind: String = t.get_item(0)?.extract()?;
            let name: String = t.get_item(3)?.extract()?;
            if kind == "framer" {
                out.push(Stage::Framer(
                    t.get_item(1)?.extract()?,
                    t.get_item(2)?.extract()?,
                    name,
                ));
            } else {
                let ctx = Py::new(
                    py,
                    PyContext {
                        channel: pych.clone_ref(py),
                        ops: Mutex::new(None),
                        name: name.clone(),
                    },
                )?;
                out.push(Stage::Py(
                    t.get_item(1)?.unbind(),
                    t.get_item(2)?.extract()?,
                    name,
                    ctx,
                ));
            }
        }
        Ok(out)
    })
    .map_err(|e| ChannelError::Handler {
        handler: "handler_initializer".to_owned(),
        source: Box::new(e),
    })?;
    for stage in stages {
        match stage {
            Stage::Py(obj, mask, name, ctx) => {
                p.add_last(name, PyHandler::new(obj, ctx, mask))?;
            }
            Stage::Framer(dec, enc, name) => {
                let framing =
                    FramingHandler::<_, _>::new(Framer::from_name(&dec)?, Framer::from_name(&enc)?);
                p.add_last(name, framing)?;
            }
        }
    }
    Ok(())
}

fn resolve(address: &str, port: u16) -> PyResult<std::net::SocketAddr> {
    (address, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            Error::new(
                "InvalidArgument",
                format!("address={address:?}, port={port}: does not resolve"),
            )
            .into()
        })
}

/// Binds a server (py-netty's `ServerBootstrap.bind`); blocks until it listens.
#[pyfunction]
#[pyo3(signature = (parent, child, address, port, initializer, certfile=None, keyfile=None))]
#[allow(clippy::too_many_arguments)]
fn bind(
    py: Python<'_>,
    parent: &PyGroup,
    child: &PyGroup,
    address: &str,
    port: u16,
    initializer: Py<PyAny>,
    certfile: Option<String>,
    keyfile: Option<String>,
) -> PyResult<PyServerChannel> {
    let addr = resolve(address, port)?;
    let tls = match (certfile, keyfile) {
        (Some(c), Some(k)) => Some(TlsServerConfig::from_pem_files(c, k).map_err(channel_error)?),
        (None, None) => None,
        _ => {
            return Err(Error::new(
                "InvalidArgument",
                "certfile and keyfile go together (both or neither)",
            )
            .into());
        }
    };
    let init = Arc::new(initializer);
    let sb = ServerBootstrap::new(&parent.group, &child.group).child_handler(move |p| {
        let make = tls.as_ref().map(|cfg| move || TlsHandler::server(cfg));
        init_pipeline(p, &init, make.as_ref().map(|f| f as &dyn Fn() -> _))
    });
    let fut = sb.bind(addr);
    catch(|| {
        block_on(py, async move { fut.await.map_err(channel_error) })
            .map(|server| PyServerChannel { server })
    })
}

/// Connects (py-netty's `Bootstrap.connect`); `sync()` of the result blocks until
/// connected (TLS: the handshake goes on after).
#[pyfunction]
#[pyo3(signature = (group, address, port, initializer, tls=false, verify=true, cafile=None, server_hostname=None))]
#[allow(clippy::too_many_arguments)]
fn connect(
    py: Python<'_>,
    group: &PyGroup,
    address: &str,
    port: u16,
    initializer: Py<PyAny>,
    tls: bool,
    verify: bool,
    cafile: Option<String>,
    server_hostname: Option<String>,
) -> PyResult<PyChannel> {
    let tls_config = if !tls {
        None
    } else if !verify {
        return Err(Error::new(
            "NotSupported",
            "verify=False: netloom always verifies TLS servers; pass cafile= with the server's CA (or its self-signed certificate) instead",
        )
        .into());
    } else {
        Some(match cafile {
            Some(path) => {
                let pem = std::fs::read(&path)
                    .map_err(|e| Error::new("InvalidArgument", format!("cafile={path:?}: {e}")))?;
                TlsClientConfig::from_roots_pem(&pem).map_err(channel_error)?
            }
            None => TlsClientConfig::system_roots().map_err(channel_error)?,
        })
    };
    let name = server_hostname.unwrap_or_else(|| address.to_owned());
    let init = Arc::new(initializer);
    let b = Bootstrap::new(&group.group).handler(move |p| {
        let make = tls_config
            .as_ref()
            .map(|cfg| || TlsHandler::client(cfg, &name));
        init_pipeline(p, &init, make.as_ref().map(|f| f as &dyn Fn() -> _))
    });
    let fut = b.connect((address, port));
    catch(|| {
        block_on(py, async move { fut.await.map_err(channel_error) })
            .map(|channel| PyChannel { channel })
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGroup>()?;
    m.add_class::<PyChannel>()?;
    m.add_class::<PyServerChannel>()?;
    m.add_class::<PyCloseFuture>()?;
    m.add_class::<PyContext>()?;
    m.add_function(wrap_pyfunction!(bind, m)?)?;
    m.add_function(wrap_pyfunction!(connect, m)?)?;
    m.add_function(wrap_pyfunction!(_shutdown_channels, m)?)?;
    Ok(())
}
