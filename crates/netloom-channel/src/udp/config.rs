//! Limits and policies of a UDP endpoint.
use std::time::Duration;

use crate::{ChannelError, ChannelOptions};

/// What happens when a datagram from a new peer arrives while `max_peers` are tracked.
///
/// ```
/// use netloom_channel::udp::Eviction;
/// assert_eq!(Eviction::default(), Eviction::LeastRecentlyActive);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Eviction {
    /// The peer that has been quiet longest is closed (`channel_inactive`, counted in
    /// `UdpStats::evicted`) to make room: new peers always get served, and a flood of new
    /// source addresses churns through the table without growing it. The default.
    #[default]
    LeastRecentlyActive,
    /// The new peer's datagram is dropped (counted in `UdpStats::refused`) and tracked peers
    /// keep their state; `connect` fails with `ChannelError::PeerLimit`.
    RejectNew,
}

/// Configuration of a UDP endpoint (one bound socket, many tracked peers). Build with struct
/// update syntax and check with [`UdpConfig::validate`].
///
/// ```
/// use std::time::Duration;
/// use netloom_channel::udp::UdpConfig;
/// let config = UdpConfig { idle_timeout: Duration::from_secs(10), max_peers: 1000, ..UdpConfig::default() };
/// assert!(config.validate().is_ok());
/// assert_eq!(UdpConfig::default().idle_timeout, Duration::from_secs(60));
/// ```
#[derive(Debug, Clone)]
pub struct UdpConfig {
    /// A peer with no datagram received or sent for this long is closed (default 60 s).
    pub idle_timeout: Duration,
    /// At most this many peers are tracked at once (default 65,536).
    pub max_peers: usize,
    /// What to do at `max_peers` (default: evict the least recently active peer).
    pub eviction: Eviction,
    /// The receive buffer: longer datagrams are detected (`MSG_TRUNC`), dropped and reported,
    /// never delivered cut short. Default 65,536, which holds any UDP datagram that is not
    /// an IPv6 jumbogram. At least 64.
    pub max_datagram_len: usize,
    /// Datagrams handled per wakeup before yielding to other tasks of the loop (default 64).
    pub max_datagrams_per_poll: usize,
    /// Per-peer channel options; the write buffer water marks apply per peer. Only
    /// `send_buffer_size` / `recv_buffer_size` touch the shared socket.
    pub channel: ChannelOptions,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            idle_timeout: Duration::from_secs(60),
            max_peers: 65_536,
            eviction: Eviction::default(),
            max_datagram_len: 65_536,
            max_datagrams_per_poll: 64,
            channel: ChannelOptions::default(),
        }
    }
}

impl UdpConfig {
    /// Checks the configuration; the error names the offending setting.
    ///
    /// ```
    /// use netloom_channel::udp::UdpConfig;
    /// let bad = UdpConfig { max_peers: 0, ..UdpConfig::default() };
    /// assert!(bad.validate().unwrap_err().to_string().contains("max_peers"));
    /// ```
    pub fn validate(&self) -> Result<(), ChannelError> {
        let invalid = |name, reason: String| Err(ChannelError::InvalidOption { name, reason });
        if self.idle_timeout.is_zero() {
            return invalid("idle_timeout", "must be above zero".into());
        }
        if self.idle_timeout > Duration::from_secs(365 * 24 * 3600) {
            return invalid(
                "idle_timeout",
                format!("{:?} is above the maximum of one year", self.idle_timeout),
            );
        }
        if self.max_peers == 0 || self.max_peers > u32::MAX as usize - 1 {
            return invalid(
                "max_peers",
                format!("{} is outside 1..={}", self.max_peers, u32::MAX - 1),
            );
        }
        if !(64..=1 << 20).contains(&self.max_datagram_len) {
            return invalid(
                "max_datagram_len",
                format!("{} is outside 64..=1048576", self.max_datagram_len),
            );
        }
        if self.max_datagrams_per_poll == 0 {
            return invalid("max_datagrams_per_poll", "must be at least 1".into());
        }
        self.channel.validate()
    }
}
