//! `netloom.fault.Tracker`: the TCP connections opened by this process *and its child
//! processes* since the tracker was made, read from the kernel's socket tables (so
//! connections made by C extensions and subprocesses count too); reset or blackhole them.
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use netloom_fault::{
    Blackhole, Endpoint, FdRef, Filter, Matched, ResetOptions, reset_connections, socket_inodes,
};
use pyo3::prelude::*;

use crate::blackhole::PyBlackhole;
use crate::error::{Error, catch};
use crate::fault::{fault_error, filter};

/// A tracked connection: `(local, remote, state, role, pid, fd)`.
type TrackedTuple = (String, String, String, String, u32, i32);
/// One reset: `(local, remote, role, method, error or None)`.
type ResetTuple = (String, String, String, String, Option<String>);

/// Tracks the TCP connections opened from now on by a process and its descendants.
#[pyclass(module = "netloom._native", name = "Tracker")]
pub(crate) struct PyTracker {
    pid: u32,
    children: bool,
    filter: Filter,
    baseline: HashSet<u32>,
    at_last_reset: Mutex<HashSet<u32>>,
}

/// `pid` and, when `children`, every process descending from it (read from
/// `/proc/PID/task/TID/children`); processes that exit meanwhile are skipped.
fn process_tree(pid: u32, children: bool) -> Vec<u32> {
    let mut out = vec![pid];
    let mut next = 0;
    while children && next < out.len() {
        let parent = out[next];
        next += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(list) = std::fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            for child in list.split_whitespace().filter_map(|c| c.parse().ok()) {
                if !out.contains(&child) {
                    out.push(child);
                }
            }
        }
    }
    out
}

/// Socket inode -> a process and descriptor holding it, over `pids` (the first holder
/// wins: a socket inherited across `fork` is one connection). A process that is gone
/// holds nothing.
fn holders(pids: &[u32]) -> netloom_fault::Result<HashMap<u32, FdRef>> {
    let mut map = HashMap::new();
    for &pid in pids {
        match socket_inodes(pid) {
            Ok(inodes) => {
                for (inode, fd) in inodes {
                    map.entry(inode).or_insert(FdRef { pid, fd });
                }
            }
            Err(netloom_fault::FaultError::Proc { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(map)
}

impl PyTracker {
    /// The connections opened since creation, each with its holder.
    fn opened(
        &self,
        role: Option<netloom_fault::Role>,
    ) -> netloom_fault::Result<Vec<(Matched, FdRef)>> {
        let held = holders(&process_tree(self.pid, self.children))?;
        let mut filter = self.filter.clone();
        filter.pid = None;
        filter.role = role;
        Ok(netloom_fault::list_matches(&filter)?
            .into_iter()
            .filter(|m| !self.baseline.contains(&m.connection.inode))
            .filter_map(|m| {
                let holder = *held.get(&m.connection.inode)?;
                Some((m, holder))
            })
            .collect())
    }
}

#[pymethods]
impl PyTracker {
    /// Snapshots the sockets of process `pid` (default: this one) and, with `children`,
    /// of its descendants; `local` / `remote` narrow what is tracked.
    #[new]
    #[pyo3(signature = (*, pid=None, children=true, local=None, remote=None))]
    fn new(
        py: Python<'_>,
        pid: Option<u32>,
        children: bool,
        local: Option<&str>,
        remote: Option<&str>,
    ) -> PyResult<PyTracker> {
        let filter = filter(local, remote, None, None)?;
        let pid = pid.unwrap_or_else(std::process::id);
        let baseline = catch(|| {
            py.detach(|| holders(&process_tree(pid, children)))
                .map_err(fault_error)
        })?;
        Ok(PyTracker {
            pid,
            children,
            filter,
            baseline: baseline.into_keys().collect(),
            at_last_reset: Mutex::new(HashSet::new()),
        })
    }

    /// The tracked process.
    #[getter]
    fn pid(&self) -> u32 {
        self.pid
    }

    /// Connections opened since creation (connected states), optionally only one role:
    /// `(local, remote, state, role, pid, fd)`.
    #[pyo3(signature = (role=None))]
    fn connections(&self, py: Python<'_>, role: Option<&str>) -> PyResult<Vec<TrackedTuple>> {
        let role = crate::fault::role(role)?;
        let opened = catch(|| py.detach(|| self.opened(role)).map_err(fault_error))?;
        Ok(opened
            .into_iter()
            .map(|(m, h)| {
                (
                    m.connection.local.to_string(),
                    m.connection.remote.to_string(),
                    m.connection.state.to_string(),
                    m.role.to_string(),
                    h.pid,
                    h.fd,
                )
            })
            .collect())
    }

    /// Resets the connections opened since creation (all, or one role); both ends see the
    /// reset. Returns what was reset and how.
    #[pyo3(signature = (role=None))]
    fn reset(&self, py: Python<'_>, role: Option<&str>) -> PyResult<Vec<ResetTuple>> {
        let role = crate::fault::role(role)?;
        catch(|| {
            py.detach(|| -> netloom_fault::Result<Vec<ResetTuple>> {
                let all = self.opened(None)?;
                self.at_last_reset
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(all.iter().map(|(m, _)| m.connection.inode));
                let mut out = Vec::new();
                for (m, holder) in all {
                    if role.is_some_and(|r| r != m.role) {
                        continue;
                    }
                    // Exactly this connection, in the process that holds it (the method
                    // then follows the privilege: own descriptor, pidfd or SOCK_DESTROY).
                    let one = Filter::new()
                        .pid(holder.pid)
                        .local(Endpoint::from(m.connection.local))
                        .remote(Endpoint::from(m.connection.remote));
                    for r in reset_connections(&one, ResetOptions::default())? {
                        out.push((
                            r.matched.connection.local.to_string(),
                            r.matched.connection.remote.to_string(),
                            r.matched.role.to_string(),
                            r.method.to_string(),
                            r.error,
                        ));
                    }
                }
                Ok(out)
            })
            .map_err(fault_error)
        })
    }

    /// Blackholes the connections opened since creation (all, or one role; only those to
    /// `peer` when given) until the returned object's `remove()`. Needs CAP_NET_ADMIN. No
    /// connection is `InvalidArgument`.
    #[pyo3(signature = (role=None, peer=None))]
    fn blackhole(
        &self,
        py: Python<'_>,
        role: Option<&str>,
        peer: Option<&str>,
    ) -> PyResult<PyBlackhole> {
        let role = crate::fault::role(role)?;
        let peer = filter(None, peer, None, None)?.remote.unwrap_or_default();
        catch(|| {
            py.detach(|| -> netloom_fault::Result<Option<Blackhole>> {
                let conns: Vec<_> = self
                    .opened(role)?
                    .into_iter()
                    .map(|(m, _)| m.connection)
                    .filter(|c| peer.matches(c.remote))
                    .collect();
                if conns.is_empty() {
                    return Ok(None);
                }
                Blackhole::connections_of(conns).map(Some)
            })
            .map_err(fault_error)?
            .map(PyBlackhole::new)
            .ok_or_else(|| {
                Error::new(
                    "InvalidArgument",
                    "the tracker has no connection to blackhole (none opened since it was made, of that role, to that peer)",
                )
                .into()
            })
        })
    }

    /// How many connections to `peer` (`HOST:PORT`, `HOST`, `:PORT`) were opened since the
    /// last `reset()` (or since creation): the reconnects that followed a fault.
    fn reestablished(&self, py: Python<'_>, peer: &str) -> PyResult<usize> {
        let peer = filter(None, Some(peer), None, None)?
            .remote
            .unwrap_or_default();
        catch(|| {
            let before = self
                .at_last_reset
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            py.detach(|| self.opened(None))
                .map(|all| {
                    all.iter()
                        .filter(|(m, _)| {
                            peer.matches(m.connection.remote)
                                && !before.contains(&m.connection.inode)
                        })
                        .count()
                })
                .map_err(fault_error)
        })
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTracker>()?;
    Ok(())
}
