//! Helpers shared by the test files: running in a namespace, counting answers, and
//! skipping (with a one-line reason) tests that need privileges this run lacks.
use std::future::Future;

use netloom_probe::{Outcome, ProbeError, ProbeReply};
use netloom_testnet::Namespace;

/// True (after printing why) when this process is not root: namespaces, nftables and
/// sysctls need it. Every test that needs them starts with
/// `if common::skip_unless_root() { return; }`.
#[allow(dead_code)]
pub fn skip_unless_root() -> bool {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
            .unwrap_or(false)
    });
    if !root {
        eprintln!("skipped: needs root (network namespaces, CAP_NET_ADMIN and CAP_NET_RAW)");
    }
    !root
}

/// True (after printing why) when this process may not open raw sockets (no
/// CAP_NET_RAW): raw-mode probes cannot run.
#[allow(dead_code)]
pub fn skip_without_raw_sockets() -> bool {
    let raw = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::RAW,
        Some(socket2::Protocol::ICMPV4),
    )
    .is_ok();
    if !raw {
        eprintln!("skipped: raw-mode probes need CAP_NET_RAW (run as root)");
    }
    !raw
}

/// Runs `f` on a current-thread runtime on a thread inside `ns`, so every socket the
/// prober opens (shared and per-probe) lives in that namespace; returns what `f` returns.
#[allow(dead_code)]
pub fn in_namespace<F, Fut, R>(ns: &Namespace, f: F) -> R
where
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = R>,
    R: Send,
{
    ns.run(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f())
    })
    .expect("thread inside the namespace")
}

/// Awaits `probes` together and counts those that got what a probe with `ttl` gets on the
/// topologies: ttl-expired from the first router at TTL 1, an answer from the host
/// otherwise. (Not every test file that includes this module uses it.)
#[allow(dead_code)]
pub async fn count_expected<F>(ttl: u8, probes: impl Iterator<Item = F>) -> usize
where
    F: Future<Output = Result<ProbeReply, ProbeError>>,
{
    let want = if ttl == 1 {
        Outcome::TtlExpired
    } else {
        Outcome::Reply
    };
    futures::future::join_all(probes)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(r) if r.outcome == want))
        .count()
}
