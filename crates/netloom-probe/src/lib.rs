//! Async network probes (ICMP, UDP, TCP, SCTP) with TTL, traceroute sessions and the
//! `mtr-packet` protocol.
//!
//! Open a [`Prober`] once, then call [`Prober::probe`] many times concurrently: thousands
//! of probes share a few raw sockets, replies are matched in O(1) and checked against the
//! probed destination. [`Prober::probe_many`] sends a whole batch with the same options
//! for less CPU per probe.
//!
//! ```no_run
//! # async fn demo() -> Result<(), netloom_probe::ProbeError> {
//! use netloom_probe::{Prober, ProberConfig, ProbeOptions, Protocol};
//! let prober = Prober::open(ProberConfig::default()).await?;
//! let reply = prober
//!     .probe("127.0.0.1".parse().unwrap(), ProbeOptions::default().with_ttl(8))
//!     .await?;
//! println!("{:?} from {:?} in {:?}", reply.outcome, reply.responder, reply.rtt);
//! # Ok(()) }
//! ```

mod config;
mod engine;
mod error;
pub mod mtr_packet;
mod options;
/// The reply parsers the engine matches with; reached from outside only by the fuzz targets,
/// this crate's integration tests and benchmarks (feature `fuzzing`, not a public API).
#[cfg(feature = "fuzzing")]
pub mod parse;
#[cfg(not(feature = "fuzzing"))]
pub(crate) mod parse;
mod prober;
mod reply;
mod resolve;
pub mod trace;
pub mod wire;

pub use config::{PrivilegeMode, ProberConfig};
pub use error::{ProbeError, RouteScope};
pub use options::{IpVersion, ProbeOptions, Protocol};
pub use prober::{Prober, ProberStats};
pub use reply::{MplsLabel, Outcome, ProbeReply, UnreachableKind};
pub use resolve::resolve;
