//! Toxics of UDP proxies: they act on whole datagrams, never on bytes.
//!
//! A UDP toxic is one file holding a type that implements [`Toxic`](super::Toxic) (for its
//! attributes, and [`Toxic::udp`](super::Toxic::udp) returning itself) and [`UdpToxic`],
//! plus one line in [`UDP_REGISTRY`]. The proxy's protocol picks the registry: a toxic type
//! found only in the other one is refused with a 400 naming the protocol.
//!
//! | type | on UDP | attributes |
//! |---|---|---|
//! | `latency` | each datagram delayed by `latency` ± `jitter` ms, order kept | latency, jitter (ms) |
//! | `bandwidth` | whole datagrams paced at `rate` KB/s (1 KB = 1000 bytes) | rate |
//! | `limit_data` | datagrams pass while their total fits in `bytes`; then the peer is closed | bytes |
//! | `loss` | each datagram dropped with `probability` | probability |
//! | `duplicate` | each datagram sent twice with `probability` | probability |
//! | `reorder` | a datagram held back, with `probability`, until `gap` later ones passed | probability, gap, max_hold (ms) |
//!
//! Refused on UDP (no connection to slow-close, time out, reset or slice):
//! `slow_close`, `timeout`, `reset_peer`, `slicer`.
use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::Rng;

mod bandwidth;
mod duplicate;
mod latency;
mod limit_data;
mod loss;
mod reorder;

/// Every toxic type of UDP proxies by name: adding one is one file and one line here.
pub const UDP_REGISTRY: &[(&str, super::ParseFn)] = &[
    ("latency", latency::parse),
    ("bandwidth", bandwidth::parse),
    ("limit_data", limit_data::parse),
    ("loss", loss::parse),
    ("duplicate", duplicate::parse),
    ("reorder", reorder::parse),
];

/// The parser of UDP toxic type `name`.
///
/// ```
/// use netloom_proxy::toxic::udp;
/// assert!(udp::lookup("loss").is_some());
/// assert!(udp::lookup("slicer").is_none());
/// ```
pub fn lookup(name: &str) -> Option<super::ParseFn> {
    UDP_REGISTRY
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

/// A datagram a toxic holds back, released after `left` more datagrams passed the toxic
/// or at `deadline`, whichever comes first.
#[derive(Debug, Clone)]
pub struct Held {
    /// Datagrams still to pass before this one is released.
    pub left: u64,
    /// Released at this time at the latest.
    pub deadline: Instant,
    /// The datagram.
    pub data: Bytes,
}

/// The per-peer, per-direction state of one UDP toxic. It survives attribute updates, and is
/// made fresh for each peer.
///
/// ```
/// use std::time::Instant;
/// let st = netloom_proxy::toxic::udp::UdpState::new(netloom_proxy::Rng::new(1), Instant::now());
/// assert_eq!(st.bytes, 0);
/// assert!(st.held.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct UdpState {
    /// Random decisions of this toxic for this peer and direction.
    pub rng: Rng,
    /// Bytes this toxic let through so far.
    pub bytes: u64,
    /// When the last emitted datagram leaves (to keep order and pace).
    pub busy_until: Instant,
    /// Datagrams held back (oldest first).
    pub held: VecDeque<Held>,
}

impl UdpState {
    /// Fresh state; nothing emitted before `now`.
    ///
    /// ```
    /// # use std::time::Instant;
    /// let now = Instant::now();
    /// let st = netloom_proxy::toxic::udp::UdpState::new(netloom_proxy::Rng::new(1), now);
    /// assert_eq!(st.busy_until, now);
    /// ```
    pub fn new(rng: Rng, now: Instant) -> UdpState {
        UdpState {
            rng,
            bytes: 0,
            busy_until: now,
            held: VecDeque::new(),
        }
    }
}

/// What a UDP toxic emits for one datagram.
///
/// ```
/// let out = netloom_proxy::toxic::udp::UdpOutput::default();
/// assert!(out.datagrams.is_empty() && !out.close);
/// ```
#[derive(Debug, Default)]
pub struct UdpOutput {
    /// Datagrams with the time each may leave (each stays one datagram).
    pub datagrams: Vec<(Instant, Bytes)>,
    /// Datagrams the toxic dropped.
    pub dropped: u64,
    /// Extra copies the toxic made.
    pub duplicated: u64,
    /// Close the peer (and its upstream socket) once what was emitted is sent.
    pub close: bool,
}

/// One toxic type of UDP proxies.
///
/// ```
/// use std::time::Instant;
/// use bytes::Bytes;
/// use netloom_proxy::toxic::{Attrs, udp::{self, UdpOutput, UdpState}};
/// let mut attrs = Attrs::new("loss", serde_json::json!({"probability": 1.0}).as_object().unwrap().clone());
/// let t = udp::lookup("loss").unwrap()(&mut attrs).unwrap();
/// let now = Instant::now();
/// let mut st = UdpState::new(netloom_proxy::Rng::new(0), now);
/// let mut out = UdpOutput::default();
/// t.udp().unwrap().datagram(&mut st, now, Bytes::from_static(b"hi"), &mut out);
/// assert_eq!((out.datagrams.len(), out.dropped), (0, 1));
/// ```
pub trait UdpToxic: Send + Sync + std::fmt::Debug {
    /// Handles one datagram that reached this toxic at `at`.
    fn datagram(&self, st: &mut UdpState, at: Instant, data: Bytes, out: &mut UdpOutput);
}
