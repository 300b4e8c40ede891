//! The connection tracker and test fixture (netsplode's "netsploder"): remembers which sockets
//! a process held when created, and later lists, resets or blackholes the ones opened since —
//! including connections opened inside third-party client crates, with no code changes.
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::blackhole::Blackhole;
use crate::error::Result;
use crate::filter::{Endpoint, Filter, Role};
use crate::plan::{ResetOptions, ResetReport, reset_matched};
use crate::procfs::socket_inodes;
use crate::select::{Matched, list_matches};

/// Tracks the TCP connections a process opens from now on. An RAII test fixture: create it at
/// the start of a `#[test]` or `#[tokio::test]`; blackholes it installed are removed when it
/// drops. Everything it does is synchronous and short (one netlink dump, a `/proc` scan), so it
/// is fine to call from async tests too.
///
/// Privilege: none for this process's own sockets (method `fd`); see [`Method`](crate::Method)
/// for other processes.
///
/// The tracker sees every socket of the process. Tests that run as threads of one process
/// (`cargo test`) see each other's connections; run them one process per test (`cargo
/// nextest`) or narrow the tracker with [`with_filter`](Self::with_filter).
///
/// Resetting a redis connection mid-test and checking that the client reconnected:
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use netloom_fault::Tracker;
/// let tracker = Tracker::new()?;
/// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
/// let mut redis = redis::aio::ConnectionManager::new(client).await?;
/// let _: () = redis::cmd("SET").arg("k").arg("v").query_async(&mut redis).await?;
///
/// let reports = tracker.reset_client_tcp_connections()?;
/// assert_eq!(reports.len(), 1);
/// // The first command after the reset fails; the manager reconnects behind it.
/// let _ = redis::cmd("GET").arg("k").query_async::<String>(&mut redis).await;
/// let v: String = redis::cmd("GET").arg("k").query_async(&mut redis).await?;
/// assert_eq!(v, "v");
/// assert_eq!(tracker.reestablished("127.0.0.1:6379".parse()?)?, 1);
/// # Ok(()) }
/// ```
pub struct Tracker {
    pid: u32,
    filter: Filter,
    baseline: HashSet<u32>,
    at_last_reset: Mutex<HashSet<u32>>,
    options: ResetOptions,
    blackholes: Mutex<Vec<Blackhole>>,
}

impl Tracker {
    /// Snapshots the sockets of this process. Needs no privilege.
    ///
    /// ```
    /// let tracker = netloom_fault::Tracker::new().unwrap();
    /// assert!(tracker.connections().unwrap().is_empty());
    /// ```
    pub fn new() -> Result<Tracker> {
        Tracker::for_pid(std::process::id())
    }

    /// Snapshots the sockets of process `pid` (its `/proc/PID/fd` must be readable: same
    /// user or root).
    ///
    /// ```no_run
    /// let tracker = netloom_fault::Tracker::for_pid(4242).unwrap();
    /// ```
    pub fn for_pid(pid: u32) -> Result<Tracker> {
        let baseline: HashSet<u32> = socket_inodes(pid)?.into_keys().collect();
        tracing::debug!(pid, sockets = baseline.len(), "tracker snapshot");
        Ok(Tracker {
            pid,
            filter: Filter::new(),
            baseline,
            at_last_reset: Mutex::new(HashSet::new()),
            options: ResetOptions::default(),
            blackholes: Mutex::new(Vec::new()),
        })
    }

    /// Uses these options (method, batching) for resets instead of the defaults.
    ///
    /// ```
    /// use netloom_fault::{Method, ResetOptions, Tracker};
    /// let t = Tracker::new().unwrap().with_options(ResetOptions { method: Method::Fd, ..Default::default() });
    /// # let _ = t;
    /// ```
    pub fn with_options(mut self, options: ResetOptions) -> Tracker {
        self.options = options;
        self
    }

    /// Only tracks connections that also match `filter` (its pid and role are ignored).
    ///
    /// ```
    /// use netloom_fault::{Filter, Tracker};
    /// let redis_only = Tracker::new().unwrap()
    ///     .with_filter(Filter::new().remote("127.0.0.1:6379".parse().unwrap()));
    /// # let _ = redis_only;
    /// ```
    pub fn with_filter(mut self, filter: Filter) -> Tracker {
        self.filter = filter;
        self
    }

    /// The tracked process.
    ///
    /// ```
    /// let t = netloom_fault::Tracker::new().unwrap();
    /// assert_eq!(t.pid(), std::process::id());
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Connections the process opened since the tracker was created (connected states only).
    ///
    /// ```
    /// let t = netloom_fault::Tracker::new().unwrap();
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let _s = l.accept().unwrap();
    /// assert_eq!(t.connections().unwrap().len(), 2); // both ends are ours
    /// ```
    pub fn connections(&self) -> Result<Vec<Matched>> {
        self.opened_since(None)
    }

    /// Resets every connection opened since creation; reports which method ran for each.
    ///
    /// ```
    /// let t = netloom_fault::Tracker::new().unwrap();
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let _s = l.accept().unwrap();
    /// assert_eq!(t.reset_tcp_connections().unwrap().len(), 2);
    /// ```
    pub fn reset_tcp_connections(&self) -> Result<Vec<ResetReport>> {
        self.reset_role(None)
    }

    /// Resets the client connections (opened with `connect`) opened since creation.
    ///
    /// ```
    /// let t = netloom_fault::Tracker::new().unwrap();
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let _s = l.accept().unwrap();
    /// let reports = t.reset_client_tcp_connections().unwrap();
    /// assert_eq!(reports[0].matched.role, netloom_fault::Role::Client);
    /// ```
    pub fn reset_client_tcp_connections(&self) -> Result<Vec<ResetReport>> {
        self.reset_role(Some(Role::Client))
    }

    /// Resets the server connections (accepted on a local listening port) opened since creation.
    ///
    /// ```
    /// let t = netloom_fault::Tracker::new().unwrap();
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let _s = l.accept().unwrap();
    /// let reports = t.reset_server_tcp_connections().unwrap();
    /// assert_eq!(reports[0].matched.role, netloom_fault::Role::Server);
    /// ```
    pub fn reset_server_tcp_connections(&self) -> Result<Vec<ResetReport>> {
        self.reset_role(Some(Role::Server))
    }

    /// Blackholes the client connections opened since creation (see [`Blackhole`]); the rules
    /// stay until the tracker drops. Needs `CAP_NET_ADMIN`. Returns how many were blackholed.
    ///
    /// ```no_run
    /// let t = netloom_fault::Tracker::new().unwrap();
    /// // ... code under test connects somewhere ...
    /// let silenced = t.blackhole_client_tcp_connections().unwrap();
    /// drop(t); // the rules go away
    /// ```
    pub fn blackhole_client_tcp_connections(&self) -> Result<usize> {
        let conns: Vec<_> = self
            .opened_since(Some(Role::Client))?
            .into_iter()
            .map(|m| m.connection)
            .collect();
        let n = conns.len();
        if n > 0 {
            let hole = Blackhole::connections_of(conns)?;
            self.blackholes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(hole);
        }
        Ok(n)
    }

    /// How many connections to `peer` the process opened since the last reset this tracker
    /// made (or since creation): the reconnects that followed a fault. Connections that were
    /// open at the last reset but not reset (another role, or the reset failed) don't count.
    ///
    /// ```
    /// let t = netloom_fault::Tracker::new().unwrap();
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let peer = l.local_addr().unwrap();
    /// let _first = std::net::TcpStream::connect(peer).unwrap();
    /// t.reset_client_tcp_connections().unwrap();
    /// let _again = std::net::TcpStream::connect(peer).unwrap();
    /// assert_eq!(t.reestablished(peer.into()).unwrap(), 1);
    /// ```
    pub fn reestablished(&self, peer: Endpoint) -> Result<usize> {
        let before = self
            .at_last_reset
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok(self
            .opened_since(None)?
            .into_iter()
            .filter(|m| peer.matches(m.connection.remote) && !before.contains(&m.connection.inode))
            .count())
    }

    /// Polls [`reestablished`](Self::reestablished) every 10 ms until it reaches `count` or
    /// `timeout` passes; returns the last count. Blocks the calling thread.
    ///
    /// ```no_run
    /// let t = netloom_fault::Tracker::new().unwrap();
    /// let peer: std::net::SocketAddr = "127.0.0.1:6379".parse().unwrap();
    /// let n = t.wait_reestablished(peer.into(), 1, std::time::Duration::from_secs(2)).unwrap();
    /// ```
    pub fn wait_reestablished(
        &self,
        peer: Endpoint,
        count: usize,
        timeout: Duration,
    ) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.reestablished(peer)?;
            if n >= count || Instant::now() >= deadline {
                return Ok(n);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn reset_role(&self, role: Option<Role>) -> Result<Vec<ResetReport>> {
        let all = self.opened_since(None)?;
        self.at_last_reset
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(all.iter().map(|m| m.connection.inode));
        let matched = all
            .into_iter()
            .filter(|m| role.is_none_or(|r| r == m.role))
            .collect();
        reset_matched(matched, self.options)
    }

    fn opened_since(&self, role: Option<Role>) -> Result<Vec<Matched>> {
        let mut filter = self.filter.clone().pid(self.pid);
        filter.role = role;
        Ok(list_matches(&filter)?
            .into_iter()
            .filter(|m| !self.baseline.contains(&m.connection.inode))
            .collect())
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let holes = std::mem::take(&mut *self.blackholes.lock().unwrap_or_else(|p| p.into_inner()));
        if !holes.is_empty() {
            tracing::debug!(count = holes.len(), "tracker removes its blackholes");
        }
    }
}
