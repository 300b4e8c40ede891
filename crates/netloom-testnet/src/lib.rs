//! Network-namespace test topologies for netloom's tests and benchmarks (dev-only, never
//! published).
//!
//! Tests of probes and faults need real routers, real ICMP and real servers, but may only
//! send traffic to loopback or to namespaces they created. This crate builds those
//! namespaces with `ip netns` / veth pairs (iproute2, installed by
//! `scripts/install-test-deps`), and removes every one of them when its guard is dropped,
//! also while a failing test unwinds. Names are unique per process and call, so tests run
//! in parallel. Everything needs root (the tests run as root in CI).
//!
//! * [`Namespace`] — one namespace: run `ip` commands in it, spawn a child process in it
//!   ([`Namespace::command`]), run a closure in it ([`Namespace::run`], a thread that
//!   `setns`es), set sysctls.
//! * [`Topology`] — source → N routers → destination, IPv4 and IPv6, with a blackholed
//!   address, an unreachable address, open and closed TCP/UDP ports, ICMP rate limits off.
//! * [`skip_unless!`] / [`Requirement`] — a test that needs root, a capability, namespaces,
//!   nftables or a program skips with a one-line reason where it is missing (fails instead
//!   under `NETLOOM_TEST_STRICT=1`, as in CI), so `cargo test` passes for an ordinary user.
//! * [`OpenPorts`] — a TCP listener and a UDP socket served inside a namespace.
//!
//! ```no_run
//! use netloom_testnet::{Topology, CLOSED_TCP_PORT};
//! let net = Topology::builder().routers(3).build()?;
//! // A closure inside the source namespace: connect to a closed port on the destination.
//! let dst = net.destination_v4();
//! let refused = net.source().run(move || {
//!     std::net::TcpStream::connect((dst, CLOSED_TCP_PORT)).is_err()
//! })?;
//! assert!(refused);
//! // A child process inside the source namespace.
//! let ok = net.source().command("ip").args(["route"]).status().expect("spawn").success();
//! assert!(ok);
//! # Ok::<(), netloom_testnet::TestnetError>(())
//! ```
#![forbid(unsafe_code)]

pub mod ecmp;
mod error;
mod listeners;
pub mod mtu;
mod namespace;
mod require;
mod topology;
mod wait;

pub use error::{Result, TestnetError};
pub use listeners::OpenPorts;
pub use namespace::Namespace;
pub use require::{Requirement, STRICT_ENV, current_test, missing, require, strict};
pub use topology::{
    CLOSED_TCP_PORT, CLOSED_UDP_PORT, MAX_ROUTERS, OPEN_TCP_PORT, OPEN_UDP_PORT, Topology,
    TopologyBuilder,
};
pub use wait::{rss_kib, wait_until};
