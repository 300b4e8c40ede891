//! Server CPU time, resident memory and thread count, and the TCP settings, read from /proc.
use std::path::PathBuf;

use crate::BenchError;

/// The TCP settings of this network namespace that shape loopback results: the congestion
/// control and the `tcp_rmem` / `tcp_wmem` limits (min, default, max bytes), from
/// /proc/sys/net/ipv4. A setting that cannot be read shows as `?`.
///
/// ```
/// let line = netloom_bench::procfs::tcp_settings();
/// assert!(line.starts_with("congestion control "));
/// ```
pub fn tcp_settings() -> String {
    let get = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "?".into())
    };
    format!(
        "congestion control {}, tcp_rmem {}, tcp_wmem {}",
        get("tcp_congestion_control"),
        get("tcp_rmem"),
        get("tcp_wmem")
    )
}

/// A snapshot of one process's counters.
///
/// ```no_run
/// let before = netloom_bench::procfs::ProcSample::read(std::process::id())?;
/// // ... load the process ...
/// let after = netloom_bench::procfs::ProcSample::read(std::process::id())?;
/// println!("{} µs of CPU", after.cpu_us - before.cpu_us);
/// # Ok::<(), netloom_bench::BenchError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    /// CPU time of all the process's threads, in µs: read from the process's CPU-time
    /// clock (`clock_getcpuclockid`, nanosecond resolution), or from utime + stime in
    /// /proc/PID/stat (10 ms ticks) where that clock cannot be read.
    pub cpu_us: u64,
    /// Resident set size (VmRSS), in KiB.
    pub rss_kib: u64,
    /// Number of threads.
    pub threads: u64,
}

impl ProcSample {
    /// Reads the process's CPU-time clock, /proc/`pid`/stat and /proc/`pid`/status.
    pub fn read(pid: u32) -> Result<Self, BenchError> {
        let stat_path = PathBuf::from(format!("/proc/{pid}/stat"));
        let stat = read(&stat_path)?;
        let ticks = parse_cpu_ticks(&stat).ok_or_else(|| BenchError::Proc {
            path: stat_path.clone(),
            what: "no utime/stime fields".into(),
        })?;
        let cpu_us = cpu_clock_us(pid)
            .unwrap_or_else(|| ticks.saturating_mul(1_000_000) / clock_ticks_per_second());
        let status_path = PathBuf::from(format!("/proc/{pid}/status"));
        let status = read(&status_path)?;
        let field = |name: &str| {
            status_field_kib(&status, name).ok_or_else(|| BenchError::Proc {
                path: status_path.clone(),
                what: format!("no {name} line"),
            })
        };
        Ok(Self {
            cpu_us,
            rss_kib: field("VmRSS:")?,
            threads: field("Threads:")?,
        })
    }
}

/// The process's CPU time in µs from its CPU-time clock (all threads, also ones that
/// ended), or `None` where the clock cannot be read.
fn cpu_clock_us(pid: u32) -> Option<u64> {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).ok()?);
    let clock = nix::time::clock_getcpuclockid(pid).ok()?;
    let t = nix::time::clock_gettime(clock).ok()?;
    let us = i128::from(t.tv_sec()) * 1_000_000 + i128::from(t.tv_nsec()) / 1_000;
    u64::try_from(us).ok()
}

fn read(path: &PathBuf) -> Result<String, BenchError> {
    std::fs::read_to_string(path).map_err(|err| BenchError::Proc {
        path: path.clone(),
        what: err.to_string(),
    })
}

/// utime + stime (fields 14 and 15 of /proc/PID/stat), in clock ticks.
///
/// The command name (field 2) may hold spaces and parentheses, so fields are counted after
/// the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The number on the line of /proc/PID/status that starts with `name` (e.g. `VmRSS:`).
fn status_field_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

fn clock_ticks_per_second() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(ticks)) if ticks > 0 => ticks.unsigned_abs(),
        _ => 100,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_a_tricky_command_name() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 3 0 99";
        assert_eq!(parse_cpu_ticks(stat), Some(280));
    }

    #[test]
    fn cpu_clock_agrees_with_the_tick_counters() {
        // Burn 50 ms of this process's CPU (not of wall time: a loaded machine may not
        // schedule us), so both readings are well above one tick. Bounded by 10 s of wall time.
        let pid = std::process::id();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while cpu_clock_us(pid).expect("the process CPU clock is readable") < 50_000
            && start.elapsed() < std::time::Duration::from_secs(10)
        {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        let clock = cpu_clock_us(pid).expect("the process CPU clock is readable");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let ticks_us = parse_cpu_ticks(&stat).unwrap() * 1_000_000 / clock_ticks_per_second();
        assert!(clock >= 50_000, "{clock} µs of CPU after spinning for 10 s");
        // The tick counters round down to 10 ms per thread; test threads come and go.
        assert!(
            clock + 50_000 >= ticks_us && ticks_us + 50_000 >= clock,
            "{clock} vs {ticks_us}"
        );
    }

    #[test]
    fn reads_this_process() {
        let sample = ProcSample::read(std::process::id()).unwrap();
        assert!(sample.rss_kib > 0);
        assert!(sample.threads >= 1);
    }
}
