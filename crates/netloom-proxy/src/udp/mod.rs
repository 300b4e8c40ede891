//! UDP proxies (a netloom extension: `"protocol": "udp"` on a proxy).
//!
//! The listen socket is a netloom-channel [`UdpEndpoint`](netloom_channel::udp::UdpEndpoint):
//! every client address that sends to it is tracked as a peer channel, and each peer gets
//! its own upstream socket (a one-peer endpoint bound to a fresh port), so the upstream sees
//! one source port per client and its replies find their way back. Datagram boundaries are
//! kept both ways; toxics act on whole datagrams ([`crate::toxic::udp`]).
//!
//! Limits, set per proxy in its `"udp"` object (all optional):
//!
//! | field | default | range | what |
//! |---|---|---|---|
//! | `idle_timeout_ms` | 60,000 | 1 – 31,536,000,000 | a peer with no datagram received or sent for this long is closed, with its upstream socket (netloom's UDP tracking) |
//! | `max_peers` | 1,024 | 1 – 65,536 | client peers tracked at once; a new client beyond it has its datagrams dropped (`netloom_proxy_udp_peers_refused_total`) |
//! | `max_queued_bytes` | 262,144 | 1,024 – 67,108,864 | bytes a peer's direction may hold in toxics (latency, bandwidth, reorder); beyond it datagrams are dropped (`netloom_proxy_udp_dropped_total{reason="queue"}`) |
mod link;
pub(crate) mod metrics;
mod peer;
mod settings;

pub use metrics::UdpMetrics;
pub(crate) use peer::start;
pub use settings::UdpSettings;
