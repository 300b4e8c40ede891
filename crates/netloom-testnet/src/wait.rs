//! Small helpers every crate's tests share: polling for a condition, reading a process's
//! resident memory.
use std::time::{Duration, Instant};

/// Polls `cond` (every 2 ms) until it holds; panics naming `what` after `limit`.
///
/// ```
/// let start = std::time::Instant::now();
/// netloom_testnet::wait_until("10 ms to pass", std::time::Duration::from_secs(1), || {
///     start.elapsed() >= std::time::Duration::from_millis(10)
/// });
/// ```
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The resident memory (`VmRSS`) of process `pid` in KiB (`None`: this process); panics if
/// the process is gone.
///
/// ```
/// assert!(netloom_testnet::rss_kib(None) > 0);
/// ```
pub fn rss_kib(pid: Option<u32>) -> u64 {
    let path = pid.map_or_else(
        || "/proc/self/status".into(),
        |p| format!("/proc/{p}/status"),
    );
    let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {path}"))
}
