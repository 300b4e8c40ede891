//! Counters of each proxy, shown by `GET /metrics` in Prometheus' text format.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::udp::UdpMetrics;

/// The counters of one proxy.
///
/// ```
/// let m = netloom_proxy::ProxyMetrics::default();
/// assert_eq!(m.connections(), 0);
/// ```
#[derive(Debug, Default)]
pub struct ProxyMetrics {
    pub(crate) connections: AtomicU64,
    pub(crate) bytes_upstream: AtomicU64,
    pub(crate) bytes_downstream: AtomicU64,
    pub(crate) spliced_upstream: AtomicU64,
    pub(crate) spliced_downstream: AtomicU64,
    pub(crate) upstream_failures: AtomicU64,
    activations: Mutex<BTreeMap<String, u64>>,
    udp: UdpMetrics,
}

impl ProxyMetrics {
    /// Client connections accepted.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ProxyMetrics::default().connections(), 0);
    /// ```
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Connections to the upstream that failed (refused, unresolvable, timed out); each
    /// closed its client.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ProxyMetrics::default().upstream_failures(), 0);
    /// ```
    pub fn upstream_failures(&self) -> u64 {
        self.upstream_failures.load(Ordering::Relaxed)
    }

    /// Bytes written to the upstream / to clients.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ProxyMetrics::default().bytes(), (0, 0));
    /// ```
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.bytes_upstream.load(Ordering::Relaxed),
            self.bytes_downstream.load(Ordering::Relaxed),
        )
    }

    /// Of [`bytes`](Self::bytes), those moved without a copy through user space
    /// (`splice(2)`, while a direction of a plaintext TCP proxy has no toxic), to the
    /// upstream / to clients.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ProxyMetrics::default().spliced(), (0, 0));
    /// ```
    pub fn spliced(&self) -> (u64, u64) {
        (
            self.spliced_upstream.load(Ordering::Relaxed),
            self.spliced_downstream.load(Ordering::Relaxed),
        )
    }

    /// How often toxics of type `kind` became active on a connection.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ProxyMetrics::default().activations("latency"), 0);
    /// ```
    pub fn activations(&self, kind: &str) -> u64 {
        let a = self.activations.lock().unwrap_or_else(|e| e.into_inner());
        a.get(kind).copied().unwrap_or(0)
    }

    /// The counters of a UDP proxy (datagrams, peers, drops).
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ProxyMetrics::default().udp().duplicated(), 0);
    /// ```
    pub fn udp(&self) -> &UdpMetrics {
        &self.udp
    }

    /// Counts `n` bytes written to the upstream (`to_upstream`) or to a client, `spliced`
    /// or copied.
    pub(crate) fn wrote(&self, to_upstream: bool, n: usize, spliced: bool) {
        let (bytes, by_splice) = if to_upstream {
            (&self.bytes_upstream, &self.spliced_upstream)
        } else {
            (&self.bytes_downstream, &self.spliced_downstream)
        };
        bytes.fetch_add(n as u64, Ordering::Relaxed);
        if spliced {
            by_splice.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    pub(crate) fn activation(&self, kind: &str) {
        let mut a = self.activations.lock().unwrap_or_else(|e| e.into_inner());
        *a.entry(kind.to_owned()).or_default() += 1;
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders the counters of every proxy.
pub(crate) fn render<'a>(proxies: impl Iterator<Item = (&'a str, &'a ProxyMetrics)>) -> String {
    let proxies: Vec<_> = proxies.collect();
    let mut out = String::new();
    let mut family = |name: &str, help: &str, value: &dyn Fn(&ProxyMetrics, &str) -> String| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (p, m) in &proxies {
            out.push_str(&value(m, &escape(p)));
        }
    };
    family(
        "netloom_proxy_connections_total",
        "Client connections accepted.",
        &|m, p| {
            format!(
                "netloom_proxy_connections_total{{proxy=\"{p}\"}} {}\n",
                m.connections()
            )
        },
    );
    family(
        "netloom_proxy_upstream_failures_total",
        "Upstream connections that failed (the client was closed).",
        &|m, p| {
            format!(
                "netloom_proxy_upstream_failures_total{{proxy=\"{p}\"}} {}\n",
                m.upstream_failures()
            )
        },
    );
    family(
        "netloom_proxy_bytes_total",
        "Bytes written, by direction.",
        &|m, p| {
            let (up, down) = m.bytes();
            format!(
                "netloom_proxy_bytes_total{{proxy=\"{p}\",direction=\"upstream\"}} {up}\n\
                 netloom_proxy_bytes_total{{proxy=\"{p}\",direction=\"downstream\"}} {down}\n"
            )
        },
    );
    family(
        "netloom_proxy_spliced_bytes_total",
        "Of the bytes written, those moved by splice(2) (no toxic on that direction), by direction.",
        &|m, p| {
            let (up, down) = m.spliced();
            format!(
                "netloom_proxy_spliced_bytes_total{{proxy=\"{p}\",direction=\"upstream\"}} {up}\n\
                 netloom_proxy_spliced_bytes_total{{proxy=\"{p}\",direction=\"downstream\"}} {down}\n"
            )
        },
    );
    family(
        "netloom_proxy_toxic_activations_total",
        "Toxics that became active on a connection, by type.",
        &|m, p| {
            let a = m.activations.lock().unwrap_or_else(|e| e.into_inner());
            a.iter()
                .map(|(k, v)| {
                    format!(
                        "netloom_proxy_toxic_activations_total{{proxy=\"{p}\",type=\"{}\"}} {v}\n",
                        escape(k)
                    )
                })
                .collect()
        },
    );
    crate::udp::metrics::render(&mut out, &proxies, escape);
    out
}
