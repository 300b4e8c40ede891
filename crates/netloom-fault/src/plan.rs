//! Resetting many connections: choosing a method per connection, then running each method once
//! over all its connections (batched SOCK_DESTROY, descriptor resets spread over the CPUs).
use std::collections::HashSet;
use std::net::SocketAddr;
use std::os::fd::AsFd;

use crate::caps::Capability;
use crate::diag::{DestroyOptions, DiagSocket};
use crate::error::{FaultError, Result};
use crate::filter::Filter;
use crate::inject::{InjectOptions, inject_reset};
use crate::method::Method;
use crate::pidfd::borrow_socket;
use crate::procfs::{FdRef, find_owners, socket_inodes};
use crate::select::{Matched, join, list_matches};

/// Options of [`reset_connections`].
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use netloom_fault::{Filter, Method, ResetOptions, reset_connections};
/// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// # let client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// # let _server = listener.accept()?;
/// // A dry run says what would be reset and how, and touches nothing.
/// let look = ResetOptions { method: Method::Fd, dry_run: true, ..Default::default() };
/// let reports = reset_connections(&Filter::new().local(client.local_addr()?.into()), look)?;
/// assert_eq!((reports.len(), reports[0].method), (1, Method::Fd));
/// client.set_nonblocking(true)?;
/// let still_open = std::io::Read::read(&mut &client, &mut [0u8; 1]).unwrap_err();
/// assert_eq!(still_open.kind(), std::io::ErrorKind::WouldBlock);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResetOptions {
    /// The method (default: auto).
    pub method: Method,
    /// List what would be reset, and by which method, without resetting.
    pub dry_run: bool,
    /// SOCK_DESTROY batching.
    pub destroy: DestroyOptions,
    /// RST injection timing.
    pub inject: InjectOptions,
}

/// What happened to one connection.
///
/// ```no_run
/// # fn main() -> netloom_fault::Result<()> {
/// let filter = netloom_fault::Filter::new().remote(":6379".parse()?);
/// for r in netloom_fault::reset_connections(&filter, Default::default())? {
///     println!("{} via {}: {:?}", r.matched.connection, r.method, r.error);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, serde::Serialize)]
pub struct ResetReport {
    /// The connection.
    #[serde(flatten)]
    pub matched: Matched,
    /// The method that ran (or would run, in a dry run).
    pub method: Method,
    /// `None` on success; otherwise what failed.
    pub error: Option<String>,
}

impl ResetReport {
    /// Whether the reset succeeded (or, in a dry run, has what it needs: the capability,
    /// or access to the process holding the socket).
    ///
    /// ```no_run
    /// # fn main() -> netloom_fault::Result<()> {
    /// let reports = netloom_fault::reset_connections(&netloom_fault::Filter::new(), Default::default())?;
    /// assert!(reports.iter().all(|r| r.ok()));
    /// # Ok(()) }
    /// ```
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Resets every connection `filter` matches, in any process, and reports per connection which
/// method ran. The privilege needed depends on the method (see [`Method`]); a method this
/// process may not use fails before anything is touched.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::io::Read;
/// use netloom_fault::{Filter, Method, ResetOptions, reset_connections};
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let (mut server, _) = listener.accept()?;
/// let filter = Filter::new().pid(std::process::id()).local(client.local_addr()?.into());
/// // Our own socket: method fd needs no privilege.
/// let reports = reset_connections(&filter, ResetOptions { method: Method::Fd, ..Default::default() })?;
/// assert_eq!(reports.len(), 1);
/// assert_eq!(reports[0].method, Method::Fd);
/// assert!(server.read(&mut [0u8; 4]).is_err());
/// # Ok(()) }
/// ```
pub fn reset_connections(filter: &Filter, opts: ResetOptions) -> Result<Vec<ResetReport>> {
    opts.method.check_allowed()?;
    // A kernel socket dump that takes several reads resumes by position in a hash chain:
    // when other sockets of that chain close meanwhile, it skips one (seen: 599 of 600
    // connections while other tests opened and closed theirs). A second listing, merged,
    // catches what one missed. Both are taken side by side (two CPUs take the second
    // almost for free) and before anything is reset, so a connection made after a reset
    // (a client reconnecting) is never caught by them.
    let (first, second) = std::thread::scope(|s| {
        let second = s.spawn(|| list_matches(filter));
        (list_matches(filter), join(second))
    });
    let mut matched = first?;
    let seen: HashSet<(SocketAddr, SocketAddr)> = matched
        .iter()
        .map(|m| (m.connection.local, m.connection.remote))
        .collect();
    matched.extend(
        second?
            .into_iter()
            .filter(|m| !seen.contains(&(m.connection.local, m.connection.remote))),
    );
    reset_matched(matched, opts)
}

/// Resets connections already listed (by [`list_matches`] or a tracker).
pub(crate) fn reset_matched(
    mut matched: Vec<Matched>,
    opts: ResetOptions,
) -> Result<Vec<ResetReport>> {
    opts.method.check_allowed()?;
    let can_destroy = Capability::NetAdmin.is_effective()?;
    if opts.method != Method::Auto || !can_destroy {
        fill_owners(&mut matched, opts.method)?;
    }
    let can_inject = Capability::NetRaw.is_effective()?;
    let me = std::process::id();
    let plan: Vec<(Matched, Method)> = matched
        .into_iter()
        .map(|m| {
            let method = match opts.method {
                Method::Auto => {
                    if can_destroy {
                        Method::Destroy
                    } else if m.owner.is_some_and(|o| o.pid == me) {
                        Method::Fd
                    } else if m.owner.is_some() {
                        Method::Pidfd
                    } else if can_inject {
                        Method::Inject
                    } else {
                        Method::Pidfd
                    }
                }
                other => other,
            };
            (m, method)
        })
        .collect();
    if opts.dry_run {
        // What the real run would need, checked without resetting: the capability of
        // destroy / inject (checked above), and for fd / pidfd that the socket's holder is
        // known and its descriptor can be borrowed (pidfd_getfd's ptrace check), the
        // borrowed copy closed at once.
        return Ok(plan
            .into_iter()
            .map(|(matched, method)| {
                let error = match method {
                    Method::Fd | Method::Pidfd => borrow_for_reset(&matched, method, me)
                        .err()
                        .map(|e| e.to_string()),
                    _ => None,
                };
                ResetReport {
                    matched,
                    method,
                    error,
                }
            })
            .collect());
    }
    let mut errors: Vec<Option<String>> = vec![None; plan.len()];
    let destroy_idx: Vec<usize> = (0..plan.len())
        .filter(|i| plan[*i].1 == Method::Destroy)
        .collect();
    if !destroy_idx.is_empty() {
        let conns: Vec<_> = destroy_idx
            .iter()
            .map(|i| plan[*i].0.connection.clone())
            .collect();
        let results = destroy_in_parallel(&conns, opts.destroy)?;
        for (i, r) in destroy_idx.iter().zip(results) {
            errors[*i] = r.err().map(|e| format!("SOCK_DESTROY: {e}"));
        }
    }
    let fd_idx: Vec<usize> = (0..plan.len())
        .filter(|i| matches!(plan[*i].1, Method::Fd | Method::Pidfd))
        .collect();
    for (i, result) in fd_idx.iter().zip(reset_fds_in_parallel(&plan, &fd_idx, me)) {
        errors[*i] = result.err().map(|e| e.to_string());
    }
    for (i, (m, method)) in plan.iter().enumerate() {
        if *method == Method::Inject {
            errors[i] = inject_reset(&m.connection, opts.inject)
                .err()
                .map(|e| e.to_string());
        }
    }
    Ok(plan
        .into_iter()
        .zip(errors)
        .map(|((matched, method), error)| {
            match &error {
                None => tracing::info!(conn = %matched.connection, %method, "reset"),
                // The report carries the error; the caller prints it once.
                Some(e) => {
                    tracing::debug!(conn = %matched.connection, %method, error = %e, "reset failed")
                }
            }
            ResetReport {
                matched,
                method,
                error,
            }
        })
        .collect())
}

/// Below this many resets (descriptor or SOCK_DESTROY), one thread does them all.
const PARALLEL_FROM: usize = 512;

/// Threads for large reset batches: the CPUs, at most four.
fn worker_count(jobs: usize) -> usize {
    if jobs < PARALLEL_FROM {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// SOCK_DESTROY over one netlink socket per worker thread: the kernel's work per socket (an
/// RST sent and, on loopback, received) is most of the cost, and it runs on the caller's CPU.
fn destroy_in_parallel(
    conns: &[crate::conn::Connection],
    opts: DestroyOptions,
) -> Result<Vec<std::io::Result<()>>> {
    let threads = worker_count(conns.len());
    if threads == 1 {
        return DiagSocket::new()?.destroy(conns, opts);
    }
    let chunk = conns.len().div_ceil(threads);
    std::thread::scope(|s| {
        let workers: Vec<_> = conns
            .chunks(chunk)
            .map(|part| s.spawn(move || DiagSocket::new()?.destroy(part, opts)))
            .collect();
        let mut out = Vec::with_capacity(conns.len());
        for w in workers {
            let part = w.join().unwrap_or_else(|_| {
                Err(FaultError::Netlink {
                    operation: "SOCK_DESTROY",
                    source: std::io::Error::other("worker thread panicked"),
                })
            })?;
            out.extend(part);
        }
        Ok(out)
    })
}

/// Descriptor resets cost the kernel an RST each; with many, spread them over the CPUs.
fn reset_fds_in_parallel(plan: &[(Matched, Method)], idx: &[usize], me: u32) -> Vec<Result<()>> {
    let threads = worker_count(idx.len());
    if threads == 1 {
        return idx
            .iter()
            .map(|i| reset_through_fd(&plan[*i].0, plan[*i].1, me))
            .collect();
    }
    let chunk = idx.len().div_ceil(threads);
    std::thread::scope(|s| {
        let workers: Vec<_> = idx
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|i| reset_through_fd(&plan[*i].0, plan[*i].1, me))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .zip(idx.chunks(chunk))
            .flat_map(|(w, part)| {
                w.join().unwrap_or_else(|_| {
                    part.iter()
                        .map(|_| {
                            Err(FaultError::socket(
                                "resetting",
                                "a descriptor",
                                std::io::Error::other("reset thread panicked"),
                            ))
                        })
                        .collect()
                })
            })
            .collect()
    })
}

fn reset_through_fd(m: &Matched, method: Method, me: u32) -> Result<()> {
    let fd = borrow_for_reset(m, method, me)?;
    crate::reset::disconnect(fd.as_fd())
}

/// The descriptor of `m`'s socket that a reset by `method` goes through (a copy made
/// with pidfd_getfd for another process's socket), or why there is none.
fn borrow_for_reset(m: &Matched, method: Method, me: u32) -> Result<std::os::fd::OwnedFd> {
    let conn = &m.connection;
    let owner = m.owner.ok_or_else(|| FaultError::NotApplicable {
        method,
        connection: conn.to_string(),
        reason: "no process of ours holds this socket (it may belong to another user or be \
                 TIME-WAIT); use method destroy (CAP_NET_ADMIN) or inject (CAP_NET_RAW)"
            .into(),
    })?;
    if method == Method::Fd && owner.pid != me {
        return Err(FaultError::NotApplicable {
            method,
            connection: conn.to_string(),
            reason: format!(
                "held by pid {}, not this process; use method pidfd",
                owner.pid
            ),
        });
    }
    // The inode check in borrow_socket proves it is the TCP socket inet_diag listed.
    borrow_socket(owner, conn.inode)
}

/// Finds who holds each socket when the method needs a descriptor.
fn fill_owners(matched: &mut [Matched], method: Method) -> Result<()> {
    if !matches!(method, Method::Auto | Method::Fd | Method::Pidfd) {
        return Ok(());
    }
    if matched.iter().all(|m| m.owner.is_some()) {
        return Ok(());
    }
    let me = std::process::id();
    let mine = socket_inodes(me)?;
    let mut unknown = HashSet::new();
    for m in matched.iter_mut().filter(|m| m.owner.is_none()) {
        match mine.get(&m.connection.inode) {
            Some(fd) if m.connection.inode != 0 => m.owner = Some(FdRef { pid: me, fd: *fd }),
            _ => {
                unknown.insert(m.connection.inode);
            }
        }
    }
    let need_scan = method == Method::Pidfd || method == Method::Auto;
    if need_scan && !unknown.is_empty() {
        let owners = find_owners(&unknown)?;
        for m in matched.iter_mut().filter(|m| m.owner.is_none()) {
            m.owner = owners.get(&m.connection.inode).copied();
        }
    }
    Ok(())
}
