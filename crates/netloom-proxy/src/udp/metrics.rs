//! Counters of a UDP proxy, shown by `GET /metrics` next to the TCP ones.
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::ProxyMetrics;

/// The UDP counters of one proxy (all zero on a TCP proxy). Bytes per direction are in
/// [`ProxyMetrics::bytes`].
///
/// ```
/// let m = netloom_proxy::ProxyMetrics::default();
/// assert_eq!(m.udp().datagrams(), (0, 0));
/// assert_eq!(m.udp().peers(), 0);
/// ```
#[derive(Debug, Default)]
pub struct UdpMetrics {
    pub(crate) is_udp: AtomicBool,
    pub(crate) datagrams_upstream: AtomicU64,
    pub(crate) datagrams_downstream: AtomicU64,
    pub(crate) received_upstream: AtomicU64,
    pub(crate) received_downstream: AtomicU64,
    pub(crate) peers: AtomicU64,
    pub(crate) peers_total: AtomicU64,
    pub(crate) peers_refused: AtomicU64,
    pub(crate) dropped_toxic: AtomicU64,
    pub(crate) dropped_queue: AtomicU64,
    pub(crate) duplicated: AtomicU64,
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl UdpMetrics {
    /// Datagrams sent to the upstream / to clients.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ProxyMetrics::default().udp().datagrams(), (0, 0));
    /// ```
    pub fn datagrams(&self) -> (u64, u64) {
        (
            get(&self.datagrams_upstream),
            get(&self.datagrams_downstream),
        )
    }

    /// Datagrams received from clients / from the upstream (before toxics).
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ProxyMetrics::default().udp().received(), (0, 0));
    /// ```
    pub fn received(&self) -> (u64, u64) {
        (get(&self.received_upstream), get(&self.received_downstream))
    }

    /// Client peers tracked now.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ProxyMetrics::default().udp().peers(), 0);
    /// ```
    pub fn peers(&self) -> u64 {
        get(&self.peers)
    }

    /// Client peers tracked since the proxy was created.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ProxyMetrics::default().udp().peers_total(), 0);
    /// ```
    pub fn peers_total(&self) -> u64 {
        get(&self.peers_total)
    }

    /// New client peers refused because `udp.max_peers` were tracked (their datagrams
    /// were dropped).
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ProxyMetrics::default().udp().peers_refused(), 0);
    /// ```
    pub fn peers_refused(&self) -> u64 {
        get(&self.peers_refused)
    }

    /// Datagrams dropped by toxics (`loss`, `limit_data`) / because a peer's queue was
    /// full (`udp.max_queued_bytes`, or the socket's send buffer).
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ProxyMetrics::default().udp().dropped(), (0, 0));
    /// ```
    pub fn dropped(&self) -> (u64, u64) {
        (get(&self.dropped_toxic), get(&self.dropped_queue))
    }

    /// Extra copies made by `duplicate`.
    ///
    /// ```
    /// assert_eq!(netloom_proxy::ProxyMetrics::default().udp().duplicated(), 0);
    /// ```
    pub fn duplicated(&self) -> u64 {
        get(&self.duplicated)
    }
}

/// Appends the UDP families for the UDP proxies among `proxies`.
pub(crate) fn render(
    out: &mut String,
    proxies: &[(&str, &ProxyMetrics)],
    escape: fn(&str) -> String,
) {
    let udp: Vec<(String, &UdpMetrics)> = proxies
        .iter()
        .filter(|(_, m)| m.udp().is_udp.load(Ordering::Relaxed))
        .map(|(p, m)| (escape(p), m.udp()))
        .collect();
    if udp.is_empty() {
        return;
    }
    let mut family =
        |name: &str, kind: &str, help: &str, lines: &dyn Fn(&str, &UdpMetrics) -> String| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (p, m) in &udp {
                out.push_str(&lines(p, m));
            }
        };
    family(
        "netloom_proxy_udp_datagrams_total",
        "counter",
        "Datagrams sent by a UDP proxy, by direction.",
        &|p, m| {
            let (up, down) = m.datagrams();
            format!(
                "netloom_proxy_udp_datagrams_total{{proxy=\"{p}\",direction=\"upstream\"}} {up}\n\
                 netloom_proxy_udp_datagrams_total{{proxy=\"{p}\",direction=\"downstream\"}} {down}\n"
            )
        },
    );
    family(
        "netloom_proxy_udp_received_total",
        "counter",
        "Datagrams a UDP proxy received, by direction of travel (before toxics).",
        &|p, m| {
            let (up, down) = m.received();
            format!(
                "netloom_proxy_udp_received_total{{proxy=\"{p}\",direction=\"upstream\"}} {up}\n\
                 netloom_proxy_udp_received_total{{proxy=\"{p}\",direction=\"downstream\"}} {down}\n"
            )
        },
    );
    family(
        "netloom_proxy_udp_peers",
        "gauge",
        "Client peers a UDP proxy tracks now.",
        &|p, m| format!("netloom_proxy_udp_peers{{proxy=\"{p}\"}} {}\n", m.peers()),
    );
    family(
        "netloom_proxy_udp_peers_total",
        "counter",
        "Client peers a UDP proxy tracked.",
        &|p, m| {
            format!(
                "netloom_proxy_udp_peers_total{{proxy=\"{p}\"}} {}\n",
                m.peers_total()
            )
        },
    );
    family(
        "netloom_proxy_udp_peers_refused_total",
        "counter",
        "New client peers refused at the udp.max_peers limit.",
        &|p, m| {
            format!(
                "netloom_proxy_udp_peers_refused_total{{proxy=\"{p}\"}} {}\n",
                m.peers_refused()
            )
        },
    );
    family(
        "netloom_proxy_udp_dropped_total",
        "counter",
        "Datagrams dropped, by reason (toxic: loss or limit_data; queue: udp.max_queued_bytes or a full socket buffer).",
        &|p, m| {
            let (toxic, queue) = m.dropped();
            format!(
                "netloom_proxy_udp_dropped_total{{proxy=\"{p}\",reason=\"toxic\"}} {toxic}\n\
                 netloom_proxy_udp_dropped_total{{proxy=\"{p}\",reason=\"queue\"}} {queue}\n"
            )
        },
    );
    family(
        "netloom_proxy_udp_duplicated_total",
        "counter",
        "Extra datagram copies made by the duplicate toxic.",
        &|p, m| {
            format!(
                "netloom_proxy_udp_duplicated_total{{proxy=\"{p}\"}} {}\n",
                m.duplicated()
            )
        },
    );
}
