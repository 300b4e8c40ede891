//! A chaos proxy that speaks Toxiproxy v2's HTTP API, built on netloom-channel.
//!
//! Clients of Toxiproxy (any language) drive it unchanged: proxies are created with
//! `POST /proxies`, toxics added with `POST /proxies/{name}/toxics`. Every Toxiproxy toxic
//! is here (latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data, noop), with
//! Toxiproxy's attributes and units, and netloom's extensions: triggers (`after`,
//! `until`), per-client toxics (`clients`), seeded randomness, and UDP proxies
//! (`"protocol": "udp"`: each client a tracked peer with its own upstream socket, toxics on
//! whole datagrams including `loss`, `duplicate` and `reorder`; see [`toxic::udp`] and
//! [`ProxyServer::udp_proxy`]).
//!
//! From Rust tests, no HTTP is needed:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::io::{Read, Write};
//! use netloom_proxy::{ProxyServer, ServerOptions, ToxicSpec};
//!
//! // An upstream that answers "pong".
//! let upstream = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let up = upstream.local_addr()?.to_string();
//! std::thread::spawn(move || {
//!     let (mut s, _) = upstream.accept().unwrap();
//!     s.write_all(b"pong").unwrap();
//! });
//!
//! let server = ProxyServer::new(ServerOptions { seed: 1, ..Default::default() })?;
//! let proxy = server.proxy("demo", "127.0.0.1:0", &up)?; // deleted on drop
//! proxy.add(ToxicSpec::latency(50, 0))?;
//! let start = std::time::Instant::now();
//! let mut c = std::net::TcpStream::connect(proxy.listen())?;
//! let mut buf = [0u8; 4];
//! c.read_exact(&mut buf)?;
//! assert_eq!(&buf, b"pong");
//! assert!(start.elapsed() >= std::time::Duration::from_millis(50));
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod api;
mod client;
mod conn;
mod deadline;
mod error;
mod link;
mod metrics;
mod rng;
mod server;
mod spec;
mod splice;
pub mod toxic;
mod typed;
mod udp;

pub use client::ApiClient;
pub use error::ProxyError;
pub use metrics::ProxyMetrics;
pub use rng::Rng;
pub use server::{ProxyGuard, ProxyServer, ServerOptions};
pub use spec::{ClientNet, Protocol, Stream, ToxicEntry, Trigger};
pub use typed::ToxicSpec;
pub use udp::{UdpMetrics, UdpSettings};
