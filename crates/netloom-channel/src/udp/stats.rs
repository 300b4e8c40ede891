//! Counters of a UDP endpoint.
use std::sync::atomic::{AtomicU64, Ordering};

/// What a UDP endpoint has done since it was bound (a snapshot; see
/// [`UdpEndpoint::stats`](crate::udp::UdpEndpoint::stats)).
///
/// ```
/// let s = netloom_channel::udp::UdpStats::default();
/// assert_eq!(s.peers, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Peers tracked now.
    pub peers: u64,
    /// The most peers tracked at once.
    pub peak_peers: u64,
    /// Peers accepted (inbound) or connected (outgoing).
    pub accepted: u64,
    /// Peers an acceptor rejected (their datagrams were dropped).
    pub rejected: u64,
    /// New peers refused at `max_peers` with `Eviction::RejectNew`.
    pub refused: u64,
    /// Datagrams from unknown peers while no acceptor was set (dropped).
    pub unsolicited: u64,
    /// Peers closed to make room at `max_peers` (`Eviction::LeastRecentlyActive`).
    pub evicted: u64,
    /// Peers closed after `idle_timeout` without traffic.
    pub expired: u64,
    /// Peers closed by a handler or a `Channel::close`.
    pub closed: u64,
    /// Datagrams received and delivered.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Datagrams longer than `max_datagram_len` (detected with `MSG_TRUNC`, dropped).
    pub truncated: u64,
    /// Sends that failed (each reached the peer's `exception_caught`).
    pub send_errors: u64,
}

macro_rules! counters {
    ($($field:ident),*) => {
        /// The live counters behind [`UdpStats`].
        #[derive(Default)]
        pub(crate) struct Counters { $(pub(crate) $field: AtomicU64,)* }

        impl Counters {
            pub(crate) fn snapshot(&self) -> UdpStats {
                UdpStats { $($field: self.$field.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters!(
    peers,
    peak_peers,
    accepted,
    rejected,
    refused,
    unsolicited,
    evicted,
    expired,
    closed,
    datagrams_in,
    datagrams_out,
    truncated,
    send_errors
);

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl std::fmt::Display for UdpStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "peers={} peak={} accepted={} rejected={} refused={} evicted={} expired={} closed={} in={} out={} truncated={} send_errors={}",
            self.peers,
            self.peak_peers,
            self.accepted,
            self.rejected,
            self.refused,
            self.evicted,
            self.expired,
            self.closed,
            self.datagrams_in,
            self.datagrams_out,
            self.truncated,
            self.send_errors
        )
    }
}
