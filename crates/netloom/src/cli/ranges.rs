//! The accepted range of every numeric option, in one place, as clap value parsers.
//!
//! A value outside its range is a usage error (exit 2) that names the flag and the range;
//! `--help` shows each range next to its option. Other subcommands use these parsers too.
use std::ops::RangeInclusive;
use std::time::Duration;

/// Event loop threads (`--threads`).
pub const THREADS: RangeInclusive<u64> = 1..=256;
/// Bytes per read system call (`--read-chunk-size`); the channel needs at least 64.
pub const READ_CHUNK_SIZE: RangeInclusive<u64> = 64..=(16 << 20);
/// Bytes per write system call (`--max-bytes-per-gathering-write`).
pub const GATHERING_WRITE: RangeInclusive<u64> = 1..=(16 << 20);
/// `TCP_NOTSENT_LOWAT` bytes (`--tcp-notsent-lowat`; 0 = the system's default).
pub const NOTSENT_LOWAT: RangeInclusive<u64> = 0..=(64 << 20);
/// Tracked UDP peers (`--udp-max-peers`).
pub const UDP_MAX_PEERS: RangeInclusive<u64> = 1..=(1 << 20);
/// Connections served at once (`--max-connections`).
pub const MAX_CONNECTIONS: RangeInclusive<u64> = 1..=1_000_000;
/// Bytes all connections may buffer together (`--buffer-budget`).
pub const BUFFER_BUDGET: RangeInclusive<u64> = (64 << 10)..=(64 << 30);
/// Seconds a connection may stay silent (`--idle-timeout`; 0 = never closed for idleness).
pub const IDLE_TIMEOUT_SECS: RangeInclusive<f64> = 0.0..=86_400.0;
/// Seconds a TLS handshake may take (`--tls-handshake-timeout`).
pub const HANDSHAKE_TIMEOUT_SECS: RangeInclusive<f64> = 0.1..=600.0;
/// Seconds of silence before TCP keep-alive probes start (`--keepalive`; 0 = off).
pub const KEEPALIVE_SECS: RangeInclusive<f64> = 0.0..=86_400.0;
/// Seconds connections get to finish after SIGINT/SIGTERM (`--grace`).
pub const GRACE_SECS: RangeInclusive<f64> = 0.0..=3_600.0;
/// Seconds the other direction may go on after one side half-closed (`forward
/// --half-close-linger`; the library's `ForwardConfig::MAX_LINGER` is the top).
pub const HALF_CLOSE_LINGER_SECS: RangeInclusive<f64> = 0.0..=3_600.0;
/// Seconds a UDP peer may stay silent (`--udp-idle-timeout`).
pub const UDP_IDLE_SECS: RangeInclusive<f64> = 0.01..=86_400.0;
/// Seconds between UDP peer-count reports (`--udp-report-interval`).
pub const REPORT_INTERVAL_SECS: RangeInclusive<f64> = 0.01..=86_400.0;
/// Seconds `connect` waits for the connection (`--connect-timeout`).
pub const CONNECT_TIMEOUT_SECS: RangeInclusive<f64> = 0.1..=600.0;
/// Seconds `connect` keeps reading after stdin ended (`-q`, like `nc -q`).
pub const QUIT_AFTER_EOF_SECS: RangeInclusive<f64> = 0.0..=86_400.0;

/// Parses an integer flag and checks `range`; the message shows the range (and says
/// "too large" in words instead of Rust's `number too large to fit in target type`).
fn integer(s: &str, range: &RangeInclusive<u64>) -> Result<u64, String> {
    let digits = s.trim().replace('_', "");
    let n: u64 = digits.parse().map_err(|e: std::num::ParseIntError| {
        use std::num::IntErrorKind::{Empty, PosOverflow};
        match e.kind() {
            PosOverflow => format!("{s} is too large (expected {})", show(range)),
            Empty => format!("a number is needed (expected {})", show(range)),
            _ => format!("{s:?} is not a whole number (expected {})", show(range)),
        }
    })?;
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} is out of range (expected {})", show(range)))
    }
}

fn show(range: &RangeInclusive<u64>) -> String {
    format!("{}..={}", range.start(), range.end())
}

/// A clap value parser for a `usize` within `range`.
pub fn usize_in(range: RangeInclusive<u64>) -> impl Fn(&str) -> Result<usize, String> + Clone {
    move |s| integer(s, &range).map(|n| n as usize)
}

/// A clap value parser for a `u32` within `range` (the range's end must fit a `u32`).
pub fn u32_in(range: RangeInclusive<u64>) -> impl Fn(&str) -> Result<u32, String> + Clone {
    move |s| integer(s, &range).map(|n| n as u32)
}

/// A clap value parser for seconds (fractions allowed) within `range`, as a `Duration`.
pub fn secs_in(range: RangeInclusive<f64>) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |s| {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a number of seconds"))?;
        if range.contains(&v) {
            Ok(Duration::from_secs_f64(v))
        } else {
            Err(format!(
                "{v} s is out of range (expected {}..={} seconds)",
                range.start(),
                range.end()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_out_of_range_or_too_large_name_the_range() {
        let p = usize_in(READ_CHUNK_SIZE);
        assert_eq!(p("65536"), Ok(65536));
        assert_eq!(p("64"), Ok(64));
        let err = p("99999999999999999999").unwrap_err();
        assert_eq!(
            err,
            "99999999999999999999 is too large (expected 64..=16777216)"
        );
        assert!(p("63").unwrap_err().contains("out of range"));
        assert!(p("-1").unwrap_err().contains("not a whole number"));
    }

    #[test]
    fn seconds_take_fractions_and_refuse_nan_and_negatives() {
        let p = secs_in(GRACE_SECS);
        assert_eq!(p("0.5"), Ok(Duration::from_millis(500)));
        assert!(p("NaN").is_err());
        assert!(p("-1").is_err());
        assert!(p("inf").is_err());
        assert!(p("3601").unwrap_err().contains("0..=3600 seconds"));
    }
}
