//! One module per subcommand; each holds its clap arguments and a `run` function. Shared
//! parts: `addr` (addresses as users type them), `ranges` (every numeric option's range),
//! `output` (exit codes, logs, error text), `serve` (server limits and graceful stop).
pub mod addr;
pub mod blackhole;
pub mod connect;
pub mod echo;
pub mod echo_udp;
pub mod forward;
pub mod output;
pub mod probe;
pub mod proxy;
pub mod ranges;
pub mod reset;
pub mod serve;
pub mod trace;
