//! Silent peers: nftables rules that drop every packet of chosen connections, removed on drop.
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::caps::Capability;
use crate::conn::Connection;
use crate::error::{FaultError, Result};
use crate::filter::Filter;
use crate::select::list_connections;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A blackhole: an nftables table (its own, uniquely named `netloom_bh_<pid>_<n>`) that drops
/// both directions of some connections as they arrive (input hook). Neither end gets an
/// error: the connection goes silent (half-open) until [`Keepalive`](crate::Keepalive) or the
/// application's own timeout notices. The table is deleted when the value is dropped.
///
/// Drops happen on arrival, like a broken network, not on departure: a packet dropped in the
/// output hook fails the local send with `EPERM`, which TCP treats as local congestion and
/// never times out. On loopback both directions arrive here, so both ends go silent. With a
/// remote peer, our segments still leave and its answers vanish: each side hears nothing back.
///
/// Needs `CAP_NET_ADMIN` and the `nft` tool (package `nftables`).
///
/// ```no_run
/// # fn main() -> netloom_fault::Result<()> {
/// use netloom_fault::{Blackhole, Filter};
/// let hole = Blackhole::matching(&Filter::new().remote("127.0.0.1:6379".parse()?))?;
/// println!("dropping {} connections", hole.connections().len());
/// drop(hole); // traffic flows again
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Blackhole {
    table: String,
    connections: Vec<Connection>,
    removed: bool,
}

impl Blackhole {
    /// Blackholes every connection `filter` matches now (new connections are not affected).
    /// A filter that matches nothing is an error.
    ///
    /// ```no_run
    /// # fn main() -> netloom_fault::Result<()> {
    /// let hole = netloom_fault::Blackhole::matching(&netloom_fault::Filter::new().local(":6379".parse()?));
    /// # Ok(()) }
    /// ```
    pub fn matching(filter: &Filter) -> Result<Blackhole> {
        let conns = list_connections(filter)?;
        if conns.is_empty() {
            return Err(FaultError::invalid(
                "blackhole filter",
                filter,
                "matches no connection",
            ));
        }
        Blackhole::connections_of(conns)
    }

    /// Blackholes exactly these connections.
    ///
    /// ```no_run
    /// # fn main() -> netloom_fault::Result<()> {
    /// use netloom_fault::{list_connections, Blackhole, Filter};
    /// let first = list_connections(&Filter::new().remote(":5432".parse()?))?.into_iter().take(1).collect();
    /// let hole = Blackhole::connections_of(first)?;
    /// # Ok(()) }
    /// ```
    pub fn connections_of(connections: Vec<Connection>) -> Result<Blackhole> {
        if !Capability::NetAdmin.is_effective()? {
            return Err(FaultError::MissingCapability {
                operation: "blackhole (nftables rules)",
                capability: Capability::NetAdmin,
                alternative: "without it, reset the connection instead (method fd or pidfd), \
                              or run the peer in a network namespace you control",
            });
        }
        let table = format!(
            "netloom_bh_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let script = ruleset(&table, &connections);
        nft(&script, "add")?;
        tracing::info!(%table, count = connections.len(), "blackhole installed");
        Ok(Blackhole {
            table,
            connections,
            removed: false,
        })
    }

    /// Removes the rules after `duration` from a background thread, and returns at once.
    /// Dropping the handle earlier removes them earlier.
    ///
    /// ```no_run
    /// # fn main() -> netloom_fault::Result<()> {
    /// # let filter = netloom_fault::Filter::new();
    /// netloom_fault::Blackhole::matching(&filter)?.expire_after(std::time::Duration::from_secs(5));
    /// # Ok(()) }
    /// ```
    pub fn expire_after(self, duration: Duration) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            std::thread::sleep(duration);
            drop(self);
        })
    }

    /// The connections being dropped.
    ///
    /// ```no_run
    /// # fn main() -> netloom_fault::Result<()> {
    /// let hole = netloom_fault::Blackhole::matching(&netloom_fault::Filter::new().local(":80".parse()?))?;
    /// for c in hole.connections() { println!("silenced {c}"); }
    /// # Ok(()) }
    /// ```
    pub fn connections(&self) -> &[Connection] {
        &self.connections
    }

    /// The nftables table name (`nft list table inet NAME` shows the rules).
    ///
    /// ```no_run
    /// # fn main() -> netloom_fault::Result<()> {
    /// let hole = netloom_fault::Blackhole::matching(&netloom_fault::Filter::new().local(":80".parse()?))?;
    /// assert!(hole.table().starts_with("netloom_bh_"));
    /// # Ok(()) }
    /// ```
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Removes the rules now, reporting failure (dropping does the same but can only log).
    ///
    /// ```no_run
    /// # fn main() -> netloom_fault::Result<()> {
    /// let hole = netloom_fault::Blackhole::matching(&netloom_fault::Filter::new().local(":80".parse()?))?;
    /// hole.remove()?;
    /// # Ok(()) }
    /// ```
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        nft(&format!("delete table inet {}\n", self.table), "delete")
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        if !self.removed
            && let Err(e) = nft(&format!("delete table inet {}\n", self.table), "delete")
        {
            tracing::error!(table = %self.table, error = %e, "could not remove blackhole");
        }
    }
}

fn ruleset(table: &str, conns: &[Connection]) -> String {
    let mut s = format!(
        "table inet {table} {{\n  chain input {{ type filter hook input priority -300; policy accept;\n"
    );
    for c in conns {
        for r in [rule(c.remote, c.local), rule(c.local, c.remote)] {
            s.push_str(&format!("    {r} drop\n"));
        }
    }
    s.push_str("  }\n}\n");
    s
}

/// An nft match for packets from `src` to `dst` (IPv4 also matches the IPv4-mapped form).
fn rule(src: SocketAddr, dst: SocketAddr) -> String {
    let proto = if src.is_ipv4() { "ip" } else { "ip6" };
    format!(
        "{proto} saddr {} {proto} daddr {} tcp sport {} tcp dport {}",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
}

fn nft(script: &str, action: &'static str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| FaultError::Nft {
            action,
            status: format!("spawning nft: {e}"),
            stderr: String::new(),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| FaultError::Nft {
                action,
                status: format!("writing to nft: {e}"),
                stderr: String::new(),
            })?;
    }
    let out = child.wait_with_output().map_err(|e| FaultError::Nft {
        action,
        status: format!("waiting for nft: {e}"),
        stderr: String::new(),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(FaultError::Nft {
            action,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_cover_both_directions() {
        let r = rule(
            "127.0.0.1:5".parse().unwrap(),
            "127.0.0.2:6".parse().unwrap(),
        );
        assert_eq!(
            r,
            "ip saddr 127.0.0.1 ip daddr 127.0.0.2 tcp sport 5 tcp dport 6"
        );
        let r = rule("[::1]:5".parse().unwrap(), "[::1]:6".parse().unwrap());
        assert!(r.starts_with("ip6 saddr ::1"));
    }
}
