//! Tendril's connection tracking, done right: one application serves TCP and UDP with the
//! same handlers, because UDP exchanges are tracked as connections per peer.
//!
//! - A [`Registry`] holds one [`Manager`] per protocol and local endpoint
//!   (`registry.manager("udp", "[::1]:5353".parse()?)`); `"tcp"` and `"udp"` are built in,
//!   other protocols plug in as [`Protocol`]s.
//! - A manager [`start`](Manager::start)s with or without an [`Acceptor`],
//!   [`connect`](Manager::connect)s out (for UDP: a tracked peer), [`find`](Manager::find)s
//!   a live connection by (local, remote), and [`stop`](Manager::stop)s for real — the
//!   listener or socket closes and every connection with it (Tendril's `stop()` never did).
//! - An [`Acceptor`] sees each new peer ([`NewPeer`]), TCP or UDP, and returns the
//!   application ([`Verdict::Accept`]) or rejects it ([`Verdict::Reject`]: the peer is
//!   dropped and counted). It may set framers (default: each read or datagram is a frame)
//!   and apply wrappers.
//! - A [`Wrapper`] changes a socket (options; TLS handlers in the pipeline);
//!   [`WrapperChain`] applies several in order. The one passed to `start` wraps the
//!   listening (TCP) or shared (UDP) socket before `bind`; the one passed to `connect`
//!   wraps the outgoing connection before it becomes active; an acceptor wraps accepted
//!   connections with [`NewPeer::wrap`].
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use netloom_channel::{EchoHandler, EventLoopGroup};
//! use netloom_channel::tracking::{Acceptor, NewPeer, Registry, Verdict};
//! use netloom_codec::Framer;
//!
//! let group = EventLoopGroup::new(2, "app")?;
//! let registry = Registry::new(&group);
//! let acceptor: Arc<dyn Acceptor> = Arc::new(|peer: &mut NewPeer<'_>| {
//!     if peer.protocol() == "tcp" {
//!         peer.set_framer(Framer::from_name("length-field:u32be").unwrap());
//!     }
//!     Verdict::app(EchoHandler)
//! });
//! for proto in ["tcp", "udp"] {
//!     let m = registry.manager(proto, "127.0.0.1:7000".parse()?)?;
//!     m.start(Some(acceptor.clone()), None).sync()?;
//! }
//! # Ok(()) }
//! ```
mod acceptor;
mod manager;
mod tcp;
mod udp;
mod wrapper;

pub(crate) use acceptor::admit;
pub use acceptor::{Acceptor, AppInit, NewPeer, Verdict};
pub use manager::{Manager, ManagerStats, Protocol, Registry};
pub use tcp::TcpProtocol;
pub use udp::UdpProtocol;
pub(crate) use wrapper::wrap_listening;
pub use wrapper::{SocketRole, WrapSocket, Wrapper, WrapperChain};
