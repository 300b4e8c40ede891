//! Side-by-side echo benchmarks for netloom.
//!
//! - [`load`]: the load client (N connections x K in flight or streaming, HDR histogram of
//!   round trips, every echo checked byte for byte by [`payload::EchoChecker`]).
//! - [`idle`]: resident memory of many idle connections on a server.
//! - [`tokio_echo`]: the plain tokio echo server used as the anchor.
//! - [`compare`]: runs every server through every case and renders the tables.
//! - [`procfs`]: server CPU time, RSS and threads from /proc.
//!
//! ```no_run
//! use netloom_bench::load::{run, LoadConfig, Mode};
//! let report = run(&LoadConfig::new("127.0.0.1:7".parse().unwrap(), 64, Mode::Pipelined { in_flight: 16 }, 32))?;
//! assert_eq!(report.errors, 0);
//! # Ok::<(), netloom_bench::BenchError>(())
//! ```
#![forbid(unsafe_code)]

pub mod compare;
pub mod connect;
mod error;
pub mod idle;
pub mod load;
pub mod payload;
pub mod procfs;
pub mod report;
pub mod tokio_echo;

pub use error::BenchError;
