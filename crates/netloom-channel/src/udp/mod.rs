//! UDP peers tracked as channels (Tendril's connection tracking, done right).
//!
//! A [`UdpEndpoint`] is one bound socket on one event loop. Every remote address that sends
//! to it (and every address it [`connect`](UdpEndpoint::connect)s to) becomes a
//! [`Channel`](crate::Channel) with its own [`Pipeline`](crate::Pipeline) and the same
//! callbacks as a TCP channel: `channel_registered` and `channel_active` before the first
//! datagram, `channel_read` once per datagram, `channel_inactive` on expiry, eviction or
//! close. An [`Acceptor`](crate::tracking::Acceptor) decides about each new peer, may set a
//! framer (by default each datagram is one frame) and may reject it.
//!
//! Limits, each in [`UdpConfig`]:
//! - **Idle timeout** (default 60 s): a peer with no datagram received or sent for that long
//!   is closed. Peers sit in a list ordered by last activity, so expiry is O(1) per peer and
//!   one timer per endpoint serves them all.
//! - **Maximum peers** (default 65,536) with an [`Eviction`] policy: by default the least
//!   recently active peer is closed to make room; `RejectNew` drops new peers instead.
//! - **Datagram size**: the receive buffer holds `max_datagram_len` (default 65,536) bytes;
//!   a longer datagram is detected with `MSG_TRUNC`, dropped and reported to the peer's
//!   `exception_caught` (`ChannelError::DatagramTruncated`) — never delivered cut short.
//! - A failed send reaches `exception_caught` as `ChannelError::Io { op: "send", .. }`.
//!
//! Peers are cheap: no task, no read buffer and no timer of their own; an idle peer's
//! pipeline is shrunk to its handlers. `auto_read` does not apply (the socket is shared).
//!
//! ```no_run
//! # fn main() -> Result<(), netloom_channel::ChannelError> {
//! use std::time::Duration;
//! use netloom_channel::{EchoHandler, EventLoopGroup};
//! use netloom_channel::udp::{UdpBootstrap, UdpConfig};
//!
//! let group = EventLoopGroup::new(1, "udp")?;
//! let endpoint = UdpBootstrap::new(&group)
//!     .config(UdpConfig { idle_timeout: Duration::from_secs(30), max_peers: 10_000, ..UdpConfig::default() })
//!     .handler(|p| { p.add_last("echo", EchoHandler)?; Ok(()) })
//!     .bind("[::1]:0".parse().unwrap())
//!     .sync()?;
//! println!("{} tracks {} peers", endpoint.local_addr(), endpoint.stats().peers);
//! # Ok(()) }
//! ```
mod config;
mod driver;
mod endpoint;
mod stats;
mod table;

pub use config::{Eviction, UdpConfig};
pub use endpoint::{UdpBootstrap, UdpEndpoint};
pub use stats::UdpStats;
