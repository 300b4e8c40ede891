//! `echo-load`: the verifying echo load client; prints one JSON report.
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::{Parser, Subcommand};
use netloom_bench::idle::IdleConfig;
use netloom_bench::load::{LoadConfig, Mode};

/// Load an echo server and check every echo byte for byte.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// N connections x K messages in flight (or streaming); reports msg/s and round trips.
    Run {
        /// The echo server (loopback only).
        #[arg(long)]
        addr: SocketAddr,
        /// Connections.
        #[arg(long, default_value_t = 1)]
        connections: usize,
        /// Messages in flight per connection.
        #[arg(long, default_value_t = 1)]
        in_flight: usize,
        /// Stream: never wait for echoes (ignores --in-flight).
        #[arg(long)]
        stream: bool,
        /// Message size in bytes.
        #[arg(long, default_value_t = 32)]
        size: usize,
        /// Warm-up seconds (not measured).
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Measured seconds.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// End the measurement after this many echoed messages.
        #[arg(long, default_value_t = u64::MAX)]
        max_messages: u64,
        /// Source address for the connections (repeat to spread over several).
        #[arg(long)]
        source: Vec<IpAddr>,
        /// The server's pid: its CPU time per message is reported.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Offered load in msg/s across all connections (default: as fast as echoes come
        /// back). Each connection sends on a fixed schedule while its window has room.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Opens N connections, exchanges one message on each and reports the server's RSS growth.
    Idle {
        /// The echo server (loopback only).
        #[arg(long)]
        addr: SocketAddr,
        /// The server's pid (its VmRSS is read).
        #[arg(long)]
        server_pid: u32,
        /// Idle connections.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let report = match Args::parse().command {
        Command::Run {
            addr,
            connections,
            in_flight,
            stream,
            size,
            warmup,
            duration,
            max_messages,
            source,
            server_pid,
            rate,
        } => {
            loopback_only(addr)?;
            let mode = if stream {
                Mode::Streaming
            } else {
                Mode::Pipelined { in_flight }
            };
            let mut config = LoadConfig::new(addr, connections, mode, size);
            config.warmup = seconds("--warmup", warmup)?;
            config.duration = seconds("--duration", duration)?;
            config.max_messages = max_messages;
            config.sources = source;
            config.server_pid = server_pid;
            config.rate = rate;
            serde_json::to_string_pretty(&netloom_bench::load::run(&config)?)?
        }
        Command::Idle {
            addr,
            server_pid,
            connections,
        } => {
            loopback_only(addr)?;
            netloom_bench::compare::raise_nofile_limit()?;
            let config = IdleConfig::new(addr, server_pid, connections);
            serde_json::to_string_pretty(&netloom_bench::idle::measure(&config)?)?
        }
    };
    println!("{report}");
    Ok(())
}

fn loopback_only(addr: SocketAddr) -> anyhow::Result<()> {
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "--addr {addr} is not loopback: this benchmark only sends to 127.0.0.0/8 or ::1"
    );
    Ok(())
}

fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|err| anyhow::anyhow!("{flag} {value}: not a duration in seconds: {err}"))
}
