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

/// Prefix of every blackhole table's name.
const TABLE_PREFIX: &str = "netloom_bh_";

/// A blackhole: an nftables table (its own, uniquely named
/// `netloom_bh_<pid>_<starttime>_<n>` after the process that owns it) that drops both
/// directions of some connections as they arrive (input hook). Neither end gets an error:
/// the connection goes silent (half-open) until [`Keepalive`](crate::Keepalive) or the
/// application's own timeout notices. The table is deleted when the value is dropped.
///
/// A process killed before it could drop the value (SIGKILL, a crash) leaves its table;
/// the owner's pid and start time in the name tell such a table from a live one:
/// [`Blackhole::list_tables`] shows them, [`Blackhole::clear_orphans`] removes them, and
/// every new blackhole sweeps them first.
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
        let table = install_table(
            "blackhole (nftables rules)",
            "without it, reset the connection instead (method fd or pidfd), \
             or run the peer in a network namespace you control",
            |table| ruleset(table, &connections),
        )?;
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
        delete_table(&self.table)
    }

    /// Every blackhole table in this network namespace, also those of other processes
    /// (and the tables of [`PacketLoss`](crate::PacketLoss), named the same way), with
    /// whether its owner still runs. Needs `CAP_NET_ADMIN` and `nft`.
    ///
    /// ```no_run
    /// # fn main() -> netloom_fault::Result<()> {
    /// for t in netloom_fault::Blackhole::list_tables()? {
    ///     println!("{} (pid {}, running: {})", t.name, t.owner_pid, t.owner_running);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list_tables() -> Result<Vec<BlackholeTable>> {
        let out = nft_output(&["list", "tables", "inet"], "list")?;
        Ok(out
            .lines()
            .filter_map(|line| line.trim().strip_prefix("table inet "))
            .filter_map(BlackholeTable::from_name)
            .collect())
    }

    /// Removes the tables whose owner is gone (killed or crashed before removing them)
    /// and returns them; tables of running processes are left to their owners.
    ///
    /// ```no_run
    /// # fn main() -> netloom_fault::Result<()> {
    /// let removed = netloom_fault::Blackhole::clear_orphans()?;
    /// println!("removed {} stale blackholes", removed.len());
    /// # Ok(()) }
    /// ```
    pub fn clear_orphans() -> Result<Vec<BlackholeTable>> {
        let orphans: Vec<BlackholeTable> = Blackhole::list_tables()?
            .into_iter()
            .filter(|t| !t.owner_running)
            .collect();
        for t in &orphans {
            match delete_table(&t.name) {
                Ok(()) => {}
                // Swept meanwhile by another process: gone either way.
                Err(_) if !table_exists(&t.name)? => {}
                Err(e) => return Err(e),
            }
        }
        Ok(orphans)
    }
}

/// A blackhole's nftables table as [`Blackhole::list_tables`] finds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct BlackholeTable {
    /// The table's name (`nft list table inet NAME` shows its rules).
    pub name: String,
    /// The process that made it.
    pub owner_pid: u32,
    /// True while that process (the same one: its start time is in the name) runs.
    pub owner_running: bool,
}

impl BlackholeTable {
    /// Reads `netloom_bh_<pid>_<starttime>_<n>` (or the older `netloom_bh_<pid>_<n>`,
    /// whose owner counts as running while any process has that pid).
    fn from_name(name: &str) -> Option<BlackholeTable> {
        let fields: Vec<u64> = name
            .strip_prefix(TABLE_PREFIX)?
            .split('_')
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let (pid, started) = match fields[..] {
            [pid, started, _] => (pid, Some(started)),
            [pid, _] => (pid, None),
            _ => return None,
        };
        let owner_pid = u32::try_from(pid).ok()?;
        let owner_running = match (start_time(owner_pid), started) {
            (None, _) => false,
            (Some(now), Some(then)) => now == then,
            (Some(_), None) => true,
        };
        Some(BlackholeTable {
            name: name.to_string(),
            owner_pid,
            owner_running,
        })
    }
}

/// Checks `CAP_NET_ADMIN` (refusing `operation` with `alternative` without it), sweeps the
/// tables of processes that are gone, and adds the table `script(name)` describes under a
/// new name `netloom_bh_<pid>_<starttime>_<n>` owned by this process; returns the name.
/// Every table made here is listed by [`Blackhole::list_tables`] and swept when orphaned.
pub(crate) fn install_table(
    operation: &'static str,
    alternative: &'static str,
    script: impl FnOnce(&str) -> String,
) -> Result<String> {
    if !Capability::NetAdmin.is_effective()? {
        return Err(FaultError::MissingCapability {
            operation,
            capability: Capability::NetAdmin,
            alternative,
        });
    }
    match Blackhole::clear_orphans() {
        Ok(swept) => {
            for t in swept {
                tracing::info!(table = %t.name, pid = t.owner_pid, "removed the nftables table of a process that is gone");
            }
        }
        Err(err) => tracing::debug!(%err, "could not sweep orphaned nftables tables"),
    }
    let pid = std::process::id();
    let table = format!(
        "{TABLE_PREFIX}{pid}_{}_{}",
        start_time(pid).unwrap_or(0),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    nft(&script(&table), "add")?;
    Ok(table)
}

/// Deletes a table made by [`install_table`].
pub(crate) fn delete_table(table: &str) -> Result<()> {
    nft(&format!("delete table inet {table}\n"), "delete")
}

/// When process `pid` started, in clock ticks after boot (`/proc/PID/stat` field 22);
/// None if no such process runs.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces and parentheses) start at
    // field 3, the state.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

fn table_exists(name: &str) -> Result<bool> {
    let out = nft_output(&["list", "tables", "inet"], "list")?;
    Ok(out
        .lines()
        .any(|line| line.trim().strip_prefix("table inet ") == Some(name)))
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        if !self.removed
            && let Err(e) = delete_table(&self.table)
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

/// Runs `nft ARGS` and returns what it printed.
fn nft_output(args: &[&str], action: &'static str) -> Result<String> {
    run_nft(args, None, action)
}

/// Applies an nft `script` (`nft -f -`).
fn nft(script: &str, action: &'static str) -> Result<()> {
    run_nft(&["-f", "-"], Some(script), action).map(drop)
}

/// Runs `nft ARGS` with `script` on its stdin (none: stdin closed); returns its stdout, or
/// an error naming `action` with nft's exit status and stderr.
fn run_nft(args: &[&str], script: Option<&str>, action: &'static str) -> Result<String> {
    let failed = |status: String| FaultError::Nft {
        action,
        status,
        stderr: String::new(),
    };
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if script.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("spawning nft: {e}")))?;
    if let (Some(script), Some(mut stdin)) = (script, child.stdin.take()) {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| failed(format!("writing to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(format!("waiting for nft: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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

    #[test]
    fn table_names_carry_their_owner_and_its_start_time() {
        let me = std::process::id();
        let started = start_time(me).expect("this process runs");
        let live = BlackholeTable::from_name(&format!("netloom_bh_{me}_{started}_3")).unwrap();
        assert_eq!(live.owner_pid, me);
        assert!(live.owner_running);
        // Same pid, another start time: a process that reused the pid.
        let reused = BlackholeTable::from_name(&format!("netloom_bh_{me}_{}_3", started + 1));
        assert!(!reused.unwrap().owner_running);
        // No such process (pids stop below 2^22).
        let gone = BlackholeTable::from_name("netloom_bh_4294967_5_0").unwrap();
        assert!(!gone.owner_running);
        // The older form without a start time.
        assert!(
            BlackholeTable::from_name(&format!("netloom_bh_{me}_0"))
                .unwrap()
                .owner_running
        );
        for other in [
            "netloom_bh_",
            "netloom_bh_x_1",
            "netloom_bh_1_2_3_4",
            "filter",
            "netloom_bh_99999999999_1",
        ] {
            assert_eq!(BlackholeTable::from_name(other), None, "{other}");
        }
    }
}
