//! `netloom.fault.blackhole`: nftables rules that silence connections, as a Python object
//! whose rules go away on `remove()` (the context manager's exit) or when it is collected.
use std::sync::Mutex;

use netloom_fault::{Blackhole, Connection};
use pyo3::prelude::*;

use crate::error::{Error, catch};
use crate::fault::{fault_error, filter};

/// One silenced connection: `(local, remote, state)`.
pub(crate) type ConnTuple = (String, String, String);

fn conn_tuple(c: &Connection) -> ConnTuple {
    (
        c.local.to_string(),
        c.remote.to_string(),
        c.state.to_string(),
    )
}

/// Installed blackhole rules (see `netloom.fault.blackhole`); `remove()` deletes them.
#[pyclass(module = "netloom._native", name = "Blackhole")]
pub(crate) struct PyBlackhole {
    table: String,
    connections: Vec<ConnTuple>,
    inner: Mutex<Option<Blackhole>>,
}

impl PyBlackhole {
    /// Wraps installed rules.
    pub(crate) fn new(hole: Blackhole) -> PyBlackhole {
        PyBlackhole {
            table: hole.table().to_owned(),
            connections: hole.connections().iter().map(conn_tuple).collect(),
            inner: Mutex::new(Some(hole)),
        }
    }
}

#[pymethods]
impl PyBlackhole {
    /// The nftables table holding the rules (`nft list table inet NAME`).
    #[getter]
    fn table(&self) -> &str {
        &self.table
    }

    /// The silenced connections, as `(local, remote, state)`.
    #[getter]
    fn connections(&self) -> Vec<ConnTuple> {
        self.connections.clone()
    }

    /// Whether the rules are still installed.
    #[getter]
    fn active(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Deletes the rules now (a second call does nothing); raises `FaultError` when `nft`
    /// fails.
    fn remove(&self, py: Python<'_>) -> PyResult<()> {
        let hole = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        match hole {
            None => Ok(()),
            Some(hole) => catch(|| py.detach(|| hole.remove()).map_err(fault_error)),
        }
    }
}

/// Blackholes the TCP connections (any process) matching the filter now; a filter that
/// matches nothing is `InvalidArgument`. Needs CAP_NET_ADMIN and `nft`.
#[pyfunction]
#[pyo3(signature = (*, local=None, remote=None, pid=None, role=None))]
fn blackhole(
    py: Python<'_>,
    local: Option<&str>,
    remote: Option<&str>,
    pid: Option<u32>,
    role: Option<&str>,
) -> PyResult<PyBlackhole> {
    if local.is_none() && remote.is_none() && pid.is_none() {
        return Err(Error::new(
            "InvalidArgument",
            "blackhole needs at least one of local=, remote=, pid= (refusing to silence every connection of the host)",
        )
        .into());
    }
    let filter = filter(local, remote, pid, role)?;
    catch(|| {
        py.detach(|| Blackhole::matching(&filter))
            .map(PyBlackhole::new)
            .map_err(fault_error)
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBlackhole>()?;
    m.add_function(wrap_pyfunction!(blackhole, m)?)?;
    Ok(())
}
