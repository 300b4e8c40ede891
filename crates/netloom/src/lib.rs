//! netloom: build, frame, probe and break network connections.
//!
//! This facade re-exports the parts; each lives in its own crate:
//!
//! | module | crate | what it holds |
//! |---|---|---|
//! | [`codec`] | `netloom-codec` | framers: bytes <-> frames |
//! | [`channel`] | `netloom-channel` | event loops, bootstraps, pipelines, transports |
//! | [`probe`] | `netloom-probe` | ICMP/UDP/TCP probes, traceroute, `mtr-packet` |
//! | [`fault`] | `netloom-fault` | connection resets, blackholes, the test fixture |
#![forbid(unsafe_code)]

// Left out of the library's test build: the binaries' own tests already run once.
#[cfg(not(test))]
pub mod cli_entry;
// The CLI sources that `cli_entry` compiles in name this crate `netloom::`, as binaries do.
#[cfg(not(test))]
extern crate self as netloom;

pub use netloom_channel as channel;
pub use netloom_codec as codec;
pub use netloom_fault as fault;
pub use netloom_probe as probe;
