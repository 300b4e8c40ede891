//! `netloom.fault`: resets of one socket or of connections matched by host/port pairs.
use std::os::fd::BorrowedFd;

use netloom_fault::{Endpoint, FaultError, Filter, ResetOptions, Role};
use pyo3::prelude::*;

use crate::error::{Attr, Error};

/// The Python exception for a fault error.
pub(crate) fn fault_error(err: FaultError) -> PyErr {
    let msg = err.to_string();
    match err {
        FaultError::MissingCapability {
            capability,
            alternative,
            ..
        } => Error::new("NetloomPermissionError", msg)
            .attr("capability", Attr::Str(capability.to_string()))
            .attr("alternative", Attr::Str(alternative.to_owned())),
        FaultError::KernelFeature { .. } => Error::new("NotSupported", msg),
        FaultError::InvalidInput { .. } => Error::new("InvalidArgument", msg),
        _ => Error::new("FaultError", msg),
    }
    .into()
}

/// Resets the TCP connection of the socket with descriptor `fd`: the peer reads
/// `ECONNRESET`, and so does this socket. Needs no privilege.
#[pyfunction]
fn reset_fd(py: Python<'_>, fd: i32) -> PyResult<()> {
    if fd < 0 {
        return Err(Error::new("InvalidArgument", format!("fd={fd}: not a descriptor")).into());
    }
    crate::error::catch(|| {
        // SAFETY: the Python wrapper passes `sock.fileno()` of a socket object it holds a
        // reference to for the whole call, so the descriptor stays open while borrowed; the
        // call only issues socket options on it and never closes it.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        py.detach(|| netloom_fault::reset(&fd)).map_err(fault_error)
    })
}

fn endpoint(name: &str, s: Option<&str>) -> PyResult<Option<Endpoint>> {
    s.map(|v| {
        v.parse::<Endpoint>()
            .map_err(|e| PyErr::from(Error::new("InvalidArgument", format!("{name}={v:?}: {e}"))))
    })
    .transpose()
}

/// `"client"` / `"server"` as a [`Role`]; anything else is `InvalidArgument`.
pub(crate) fn role(role: Option<&str>) -> PyResult<Option<Role>> {
    match role {
        None => Ok(None),
        Some("client") => Ok(Some(Role::Client)),
        Some("server") => Ok(Some(Role::Server)),
        Some(other) => Err(Error::new(
            "InvalidArgument",
            format!("role={other:?}: expected 'client' or 'server'"),
        )
        .into()),
    }
}

/// A [`Filter`] from the keyword arguments the Python functions share.
pub(crate) fn filter(
    local: Option<&str>,
    remote: Option<&str>,
    pid: Option<u32>,
    role_name: Option<&str>,
) -> PyResult<Filter> {
    let mut filter = Filter::new();
    if let Some(e) = endpoint("local", local)? {
        filter = filter.local(e);
    }
    if let Some(e) = endpoint("remote", remote)? {
        filter = filter.remote(e);
    }
    if let Some(pid) = pid {
        filter = filter.pid(pid);
    }
    if let Some(r) = role(role_name)? {
        filter = filter.role(r);
    }
    Ok(filter)
}

/// One reset connection: `(local, remote, role, method, error or None)`.
type ReportTuple = (String, String, String, String, Option<String>);

/// Resets every TCP connection (any process) matching `local` / `remote` endpoints
/// (`HOST:PORT`, `HOST`, `:PORT`), `pid` and `role`; returns what was reset and how.
#[pyfunction]
#[pyo3(signature = (*, local=None, remote=None, pid=None, role=None, dry_run=false))]
fn reset_connections(
    py: Python<'_>,
    local: Option<&str>,
    remote: Option<&str>,
    pid: Option<u32>,
    role: Option<&str>,
    dry_run: bool,
) -> PyResult<Vec<ReportTuple>> {
    let filter = filter(local, remote, pid, role)?;
    if local.is_none() && remote.is_none() && pid.is_none() {
        return Err(Error::new(
            "InvalidArgument",
            "reset_connections needs at least one of local=, remote=, pid= (refusing to reset every connection of the host)",
        )
        .into());
    }
    let opts = ResetOptions {
        dry_run,
        ..ResetOptions::default()
    };
    let reports = crate::error::catch(|| {
        py.detach(|| netloom_fault::reset_connections(&filter, opts))
            .map_err(fault_error)
    })?;
    Ok(reports
        .into_iter()
        .map(|r| {
            (
                r.matched.connection.local.to_string(),
                r.matched.connection.remote.to_string(),
                r.matched.role.to_string(),
                r.method.to_string(),
                r.error,
            )
        })
        .collect())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(reset_fd, m)?)?;
    m.add_function(wrap_pyfunction!(reset_connections, m)?)?;
    Ok(())
}
