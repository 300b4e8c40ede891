//! What a test needs from the machine (root, capabilities, namespaces, nftables, a program),
//! and the [`skip_unless!`](crate::skip_unless) macro that skips a test with a one-line reason
//! when the machine lacks it — or fails it when `NETLOOM_TEST_STRICT=1` (CI, running as root,
//! sets it, so a missing requirement there is a failure, never a silent skip).
use std::fmt;
use std::path::Path;

/// The environment variable that turns a missing requirement into a test failure.
pub const STRICT_ENV: &str = "NETLOOM_TEST_STRICT";

/// One thing a test needs.
///
/// ```
/// use netloom_testnet::{Requirement, missing};
/// // Every machine has a `sh`.
/// assert_eq!(missing(&[Requirement::Program("sh")]), None);
/// assert!(missing(&[Requirement::Program("no-such-program-here")]).is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Requirement {
    /// Effective user id 0.
    Root,
    /// `CAP_NET_ADMIN` in the effective set (SOCK_DESTROY, nftables, routes, marks).
    NetAdmin,
    /// `CAP_NET_RAW` in the effective set (raw and packet sockets).
    NetRaw,
    /// ICMP probing: `CAP_NET_RAW`, or ICMP datagram sockets, which
    /// `net.ipv4.ping_group_range` allows for this process's group (what netloom-probe's
    /// unprivileged mode uses).
    PingSockets,
    /// Creating network namespaces: `CAP_SYS_ADMIN` and `CAP_NET_ADMIN`, and `ip` (iproute2).
    Namespaces,
    /// Adding nftables tables: `CAP_NET_ADMIN` and the `nft` program.
    Nftables,
    /// A program on `PATH` (e.g. `redis-server`, `mtr-packet`).
    Program(&'static str),
    /// At least this many open descriptors (`RLIMIT_NOFILE`): the soft limit is raised, up to
    /// the hard limit, when it is lower.
    OpenFiles(u64),
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Root => f.write_str("root"),
            Requirement::NetAdmin => f.write_str("CAP_NET_ADMIN"),
            Requirement::NetRaw => f.write_str("CAP_NET_RAW"),
            Requirement::PingSockets => {
                f.write_str("CAP_NET_RAW or ICMP datagram sockets (net.ipv4.ping_group_range)")
            }
            Requirement::Namespaces => f.write_str("network namespaces (CAP_SYS_ADMIN, `ip`)"),
            Requirement::Nftables => f.write_str("nftables (CAP_NET_ADMIN, `nft`)"),
            Requirement::Program(name) => write!(f, "`{name}` on PATH"),
            Requirement::OpenFiles(n) => write!(f, "RLIMIT_NOFILE of at least {n}"),
        }
    }
}

use rustix::thread::CapabilitySet;

impl Requirement {
    /// Whether this machine and process meet it.
    ///
    /// ```
    /// assert!(netloom_testnet::Requirement::Program("sh").is_met());
    /// ```
    pub fn is_met(self) -> bool {
        match self {
            Requirement::Root => nix::unistd::geteuid().is_root(),
            Requirement::NetAdmin => has_capability(CapabilitySet::NET_ADMIN),
            Requirement::NetRaw => has_capability(CapabilitySet::NET_RAW),
            Requirement::PingSockets => {
                has_capability(CapabilitySet::NET_RAW)
                    || ping_socket_opens(false)
                    || ping_socket_opens(true)
            }
            Requirement::Namespaces => {
                has_capability(CapabilitySet::SYS_ADMIN)
                    && has_capability(CapabilitySet::NET_ADMIN)
                    && on_path("ip")
            }
            Requirement::Nftables => has_capability(CapabilitySet::NET_ADMIN) && on_path("nft"),
            Requirement::Program(name) => on_path(name),
            Requirement::OpenFiles(n) => raise_nofile(n),
        }
    }
}

/// The first of `requirements` this machine does not meet, as a one-line reason; `None` when
/// all are met.
///
/// ```
/// use netloom_testnet::{Requirement, missing};
/// let reason = missing(&[Requirement::Program("sh"), Requirement::Program("nope-nope")]);
/// assert_eq!(reason.as_deref(), Some("needs `nope-nope` on PATH"));
/// ```
pub fn missing(requirements: &[Requirement]) -> Option<String> {
    requirements
        .iter()
        .find(|r| !r.is_met())
        .map(|r| format!("needs {r}"))
}

/// Whether `NETLOOM_TEST_STRICT` is set to `1`: a missing requirement fails the test.
///
/// ```
/// use netloom_testnet::{Requirement, require, strict};
/// // A missing requirement: skipped (false), or under NETLOOM_TEST_STRICT=1 a panic.
/// let outcome = std::panic::catch_unwind(|| require("demo", &[Requirement::Program("nl-none")]));
/// assert_eq!(outcome.is_err(), strict());
/// ```
pub fn strict() -> bool {
    std::env::var_os(STRICT_ENV).is_some_and(|v| v == "1")
}

/// What [`skip_unless!`](crate::skip_unless) does: `true` to run the test; `false` after
/// printing `SKIPPED <test>: needs ...` to stderr; panics instead when [`strict`].
///
/// ```
/// use netloom_testnet::{Requirement, require};
/// assert!(require("demo", &[Requirement::Program("sh")]));
/// ```
pub fn require(test: &str, requirements: &[Requirement]) -> bool {
    let Some(reason) = missing(requirements) else {
        return true;
    };
    if strict() {
        panic!("{test}: {reason} ({STRICT_ENV}=1 makes a missing requirement a failure)");
    }
    eprintln!("SKIPPED {test}: {reason}");
    false
}

/// Returns early from a test (skips it, with a one-line reason on stderr) unless the machine
/// meets every requirement; with `NETLOOM_TEST_STRICT=1` the test fails instead. For tests
/// returning `()`; append `; value` to return something else (e.g. `; Ok(())`).
///
/// ```
/// use netloom_testnet::{Requirement, skip_unless};
/// fn needs_root_and_nft() {
///     skip_unless!(Requirement::Root, Requirement::Nftables);
///     // ... runs only as root with nft installed
/// }
/// needs_root_and_nft();
/// ```
#[macro_export]
macro_rules! skip_unless {
    ($($requirement:expr),+ $(,)? ; $ret:expr) => {
        if !$crate::require(&$crate::current_test(module_path!()), &[$($requirement),+]) {
            return $ret;
        }
    };
    ($($requirement:expr),+ $(,)?) => {
        if !$crate::require(&$crate::current_test(module_path!()), &[$($requirement),+]) {
            return;
        }
    };
}

/// Raises the soft `RLIMIT_NOFILE` to `n` if the hard limit allows; whether it is now `n` or
/// more.
fn raise_nofile(n: u64) -> bool {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return false;
    };
    soft >= n || (hard >= n && setrlimit(Resource::RLIMIT_NOFILE, n, hard).is_ok())
}

/// The running test's name: libtest names each test's thread after it; `fallback` (the
/// macro passes its `module_path!()`) elsewhere.
///
/// ```
/// // A thread nobody named (not a libtest test thread) gets the fallback.
/// let name = std::thread::spawn(|| netloom_testnet::current_test("my_crate::tests"))
///     .join()
///     .unwrap();
/// assert_eq!(name, "my_crate::tests");
/// ```
pub fn current_test(fallback: &str) -> String {
    std::thread::current().name().unwrap_or(fallback).to_owned()
}

/// Whether `cap` is in this thread's effective set (`capget`).
fn has_capability(cap: CapabilitySet) -> bool {
    rustix::thread::capabilities(None).is_ok_and(|sets| sets.effective.contains(cap))
}

/// Whether an ICMP (`v6`: ICMPv6) datagram socket opens: the kernel allows it when the
/// process's group is in `net.ipv4.ping_group_range` (one range for both versions).
fn ping_socket_opens(v6: bool) -> bool {
    use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, socket};
    let (family, protocol) = if v6 {
        (AddressFamily::Inet6, SockProtocol::IcmpV6)
    } else {
        (AddressFamily::Inet, SockProtocol::Icmp)
    };
    socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, protocol).is_ok()
}

fn on_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_capabilities_agree_with_the_kernel() {
        // Root normally holds every capability; an unprivileged user none of these.
        let root = Requirement::Root.is_met();
        let admin = Requirement::NetAdmin.is_met();
        if root {
            assert!(
                admin,
                "root without CAP_NET_ADMIN (a dropped-capability run?)"
            );
        }
        // A raw socket opens exactly when CAP_NET_RAW is held.
        let raw = socket_raw_opens();
        assert_eq!(Requirement::NetRaw.is_met(), raw);
    }

    fn socket_raw_opens() -> bool {
        nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Raw,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            nix::sys::socket::SockProtocol::Icmp,
        )
        .is_ok()
    }

    #[test]
    fn ping_sockets_follow_cap_net_raw_and_ping_group_range() {
        // The kernel's rule, read independently: one of our groups in the sysctl's range.
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
        let bounds: Vec<u32> = range
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        let mut groups = nix::unistd::getgroups().unwrap();
        groups.push(nix::unistd::getegid());
        let in_range = groups
            .iter()
            .any(|g| (bounds[0]..=bounds[1]).contains(&g.as_raw()));
        assert_eq!(
            Requirement::PingSockets.is_met(),
            Requirement::NetRaw.is_met() || in_range
        );
    }

    #[test]
    fn open_files_raises_the_soft_limit_within_the_hard_one() {
        use nix::sys::resource::{Resource, getrlimit};
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert!(Requirement::OpenFiles(hard.min(4096)).is_met());
        assert!(getrlimit(Resource::RLIMIT_NOFILE).unwrap().0 >= hard.min(4096));
        if hard < u64::MAX {
            assert!(!Requirement::OpenFiles(hard + 1).is_met());
        }
    }

    #[test]
    fn reasons_name_the_first_missing_requirement() {
        assert_eq!(missing(&[]), None);
        assert_eq!(
            missing(&[Requirement::Program("sh"), Requirement::Program("nl-none")]).as_deref(),
            Some("needs `nl-none` on PATH")
        );
    }
}
