//! What a load run reports (serialized as JSON by `echo-load`).
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::load::Mode;

/// Round-trip time percentiles, in microseconds.
///
/// ```
/// let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
/// h.record(20_000).unwrap(); // 20 µs in ns
/// let latency = netloom_bench::report::Latency::from_histogram_nanos(&h);
/// assert!((latency.p50 - 20.0).abs() < 0.1);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    /// Summarizes a histogram of nanoseconds (all zeros when it is empty).
    pub fn from_histogram_nanos(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Self {
            p50: us(histogram.value_at_quantile(0.50)),
            p90: us(histogram.value_at_quantile(0.90)),
            p99: us(histogram.value_at_quantile(0.99)),
            max: us(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }
}

/// The result of one load run.
///
/// ```
/// # use netloom_bench::report::LoadReport;
/// fn healthy(report: &LoadReport) -> bool {
///     report.errors == 0 && report.messages > 0
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    /// Connections used.
    pub connections: usize,
    /// How messages were sent.
    pub mode: Mode,
    /// Message size in bytes.
    pub size: usize,
    /// Measured time, in seconds.
    pub duration_secs: f64,
    /// Messages echoed (and checked) during the measurement.
    pub messages: u64,
    /// Messages per second.
    pub msgs_per_sec: f64,
    /// Payload bytes per second, each direction.
    pub bytes_per_sec: f64,
    /// Round-trip times of the measured messages.
    pub latency_us: Latency,
    /// Connections that failed: a wrong echo, an early close, an I/O error, a missing echo.
    pub errors: u64,
    /// The first few failures, described.
    pub error_samples: Vec<String>,
    /// Server CPU time (utime + stime) during the measurement, in µs, if its pid was given.
    pub server_cpu_us: Option<u64>,
    /// Server CPU µs per echoed message.
    pub server_cpu_us_per_msg: Option<f64>,
    /// This client's CPU use during the measurement, in percent of one core (near 100 means
    /// the client, not the server, may be the bottleneck).
    pub client_cpu_percent: f64,
}
