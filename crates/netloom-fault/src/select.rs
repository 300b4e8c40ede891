//! Listing the connections a [`Filter`] matches: inet_diag dump + roles + owners.
use std::collections::HashMap;
use std::net::SocketAddr;

use crate::conn::{Connection, TcpState};
use crate::diag::DiagSocket;
use crate::error::Result;
use crate::filter::{Filter, Role};
use crate::procfs::{FdRef, socket_inodes};

/// A connection a filter matched, with its role and (when known) the process holding it.
///
/// ```
/// let mine = netloom_fault::list_matches(&netloom_fault::Filter::new().pid(std::process::id())).unwrap();
/// assert!(mine.iter().all(|m| m.owner.is_some()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Matched {
    /// The socket.
    #[serde(flatten)]
    pub connection: Connection,
    /// Client or server (accepted on a local listening port).
    pub role: Role,
    /// A process and descriptor holding it, if the filter named a pid.
    pub owner: Option<FdRef>,
}

/// Every TCP connection (IPv4 and IPv6, every process) that `filter` matches. Needs no
/// privilege; with a pid filter, `/proc/PID/fd` must be readable (own user, or root).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use netloom_fault::{Filter, Role, list_matches};
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let _client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let _server = listener.accept()?;
/// let port = listener.local_addr()?.port();
/// let mine = Filter::new().pid(std::process::id());
/// let servers = list_matches(&mine.clone().local(netloom_fault::Endpoint { ip: None, port: Some(port) }))?;
/// assert_eq!(servers.len(), 1);
/// assert_eq!(servers[0].role, Role::Server);
/// # Ok(()) }
/// ```
pub fn list_matches(filter: &Filter) -> Result<Vec<Matched>> {
    let mask = filter.state_mask() | 1u32 << TcpState::Listen as u8;
    // The two dumps and the /proc scan are independent: run them side by side.
    let (v4, v6, owners) = std::thread::scope(|s| {
        let v6 = s.spawn(|| DiagSocket::new()?.dump(libc::AF_INET6 as u8, mask));
        let owners = s.spawn(|| filter.pid.map(sockets_of_pid).transpose());
        let v4 = DiagSocket::new().and_then(|mut d| d.dump(libc::AF_INET as u8, mask));
        (v4, join(v6), join(owners))
    });
    let mut all = v4?;
    all.extend(v6?);
    let owners: Option<HashMap<u32, i32>> = owners?;
    let listeners: Vec<SocketAddr> = all
        .iter()
        .filter(|c| c.state == TcpState::Listen)
        .map(|c| c.local)
        .collect();
    let mut out = Vec::new();
    for conn in all {
        if !filter.matches_socket(&conn) {
            continue;
        }
        let owner = match (&owners, filter.pid) {
            (Some(map), Some(pid)) => match map.get(&conn.inode) {
                Some(fd) if conn.inode != 0 => Some(FdRef { pid, fd: *fd }),
                _ => continue,
            },
            _ => None,
        };
        let role = role_of(&conn, &listeners);
        if filter.role.is_some_and(|r| r != role) {
            continue;
        }
        out.push(Matched {
            connection: conn,
            role,
            owner,
        });
    }
    Ok(out)
}

/// Joins a scoped thread, turning a panic into an error instead of propagating it.
/// The sockets process `pid` holds; none when no such process runs (it holds nothing,
/// so nothing matches).
fn sockets_of_pid(pid: u32) -> Result<HashMap<u32, i32>> {
    match socket_inodes(pid) {
        Err(crate::error::FaultError::Proc { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(HashMap::new())
        }
        other => other,
    }
}

/// Joins a listing worker; a panic in it becomes an error.
pub(crate) fn join<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    handle.join().unwrap_or_else(|_| {
        Err(crate::error::FaultError::Netlink {
            operation: "listing sockets",
            source: std::io::Error::other("worker thread panicked"),
        })
    })
}

/// The sockets `filter` matches, without roles or owners. Needs no privilege.
///
/// ```
/// # fn main() -> netloom_fault::Result<()> {
/// let established = netloom_fault::list_connections(&netloom_fault::Filter::new())?;
/// # let _ = established;
/// # Ok(()) }
/// ```
pub fn list_connections(filter: &Filter) -> Result<Vec<Connection>> {
    Ok(list_matches(filter)?
        .into_iter()
        .map(|m| m.connection)
        .collect())
}

/// Server when some listener accepts on the socket's local address and port.
pub(crate) fn role_of(conn: &Connection, listeners: &[SocketAddr]) -> Role {
    if conn.state == TcpState::Listen {
        return Role::Server;
    }
    let accepted_here = listeners.iter().any(|l| {
        l.port() == conn.local.port() && (l.ip().is_unspecified() || l.ip() == conn.local.ip())
    });
    if accepted_here {
        Role::Server
    } else {
        Role::Client
    }
}
