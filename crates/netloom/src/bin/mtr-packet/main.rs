//! A drop-in `mtr-packet`: speaks mtr's probe command protocol on stdin/stdout.
//!
//! Point mtr or Python's mtrpacket at it with `MTR_PACKET=/path/to/mtr-packet`. It reads
//! commands until stdin closes, then exits once every outstanding probe has been answered
//! or has timed out. Logs go to stderr (`RUST_LOG=debug` for more). The reply dialect
//! follows the mtr that started it, or `NETLOOM_MTR_PACKET_DIALECT` (see `dialect.rs`).
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
mod dialect;

use dialect::DialectArg;
use netloom_probe::mtr_packet::{
    DEFAULT_COMMAND_BUFFER_SIZE, ParseLimits, PipeReader, PipeWriter, Session, SessionConfig,
    Support, Turn,
};
use netloom_probe::{PrivilegeMode, Prober, ProberConfig};

/// Send and receive network probes for mtr and mtrpacket (mtr-packet's stdin/stdout
/// command protocol).
#[derive(Parser, Debug)]
#[command(name = "mtr-packet", version)]
struct Args {
    /// Reply words to use: `auto` (the default: `NETLOOM_MTR_PACKET_DIALECT` if set, else
    /// `0.95` when started by mtr 0.95 or older, else `current`), `current` (mtr 0.96+:
    /// no-route-host, no-route-network, host-down) or `0.95` (Debian 12's mtr: no-route).
    #[arg(long, value_enum, default_value_t = DialectArg::Auto)]
    dialect: DialectArg,
    /// Most probes in flight; more get `probes-exhausted`. At most 100,000: in raw mode the
    /// receive ring holds a frame for every answer of a full burst.
    #[arg(long, default_value_t = 16_384, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_in_flight: u32,
    /// Command buffer size in bytes; a longer line gets `0 command-buffer-overflow`.
    #[arg(long, default_value_t = DEFAULT_COMMAND_BUFFER_SIZE as u32, value_parser = clap::value_parser!(u32).range(64..=1_048_576))]
    command_buffer_size: u32,
    /// Largest `size` a probe may ask for, in bytes.
    #[arg(long, default_value_t = 9_000)]
    max_packet_size: u16,
    /// Answer `invalid-argument` to unknown `send-probe` arguments (mtr-packet ignores them).
    #[arg(long)]
    strict_arguments: bool,
    /// Sockets to use: `auto` (raw if permitted), `raw`, or `unprivileged` (ICMP datagram
    /// sockets, see net.ipv4.ping_group_range).
    #[arg(long, value_enum, default_value_t = PrivilegeArg::Auto)]
    privilege: PrivilegeArg,
    /// Send every ICMP/UDP probe through the raw IP sockets. By default probes to a plain
    /// Ethernet next hop leave through a packet socket, which is cheaper but skips the
    /// OUTPUT / POSTROUTING netfilter hooks.
    #[arg(long)]
    no_packet_socket: bool,
    /// Microseconds to wait after a turn that answered little while probes are in flight,
    /// so that replies and commands are handled in batches (less CPU per probe; replies
    /// written up to this much later; round-trip times unaffected). 0 turns it off.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    coalesce_us: u32,
}

/// The sequence number of a session's first ICMP probe (mtr-packet 0.95's `MIN_PORT`);
/// the next ones count up to 65,535 and wrap back to it.
const MTR_PACKET_FIRST_SEQUENCE: u16 = 33_000;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PrivilegeArg {
    Auto,
    Raw,
    Unprivileged,
}

fn main() -> ExitCode {
    main_with(std::env::args_os().collect())
}

/// Parses `argv` (the program name first) and serves the protocol until stdin closes. The
/// Python wheel's `mtr-packet` console script enters here through
/// `netloom::cli_entry::run_mtr_packet`.
pub(crate) fn main_with(argv: Vec<std::ffi::OsString>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = Args::parse_from(argv);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mtr-packet: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let dialect = dialect::resolve(args.dialect).map_err(anyhow::Error::msg)?;
    let max_in_flight = args.max_in_flight as usize;
    let max_packet_size = usize::from(args.max_packet_size);
    let prober_config = ProberConfig {
        max_in_flight,
        max_packet_size,
        privilege: match args.privilege {
            PrivilegeArg::Auto => PrivilegeMode::Auto,
            PrivilegeArg::Raw => PrivilegeMode::Raw,
            PrivilegeArg::Unprivileged => PrivilegeMode::Unprivileged,
        },
        // mtr-packet 0.95's numbering: mtr's test harness finds the first probe by it.
        icmp_sequence: Some(MTR_PACKET_FIRST_SEQUENCE..=u16::MAX),
        ..ProberConfig::default()
    };
    let config = SessionConfig {
        dialect,
        max_in_flight,
        command_buffer_size: args.command_buffer_size as usize,
        limits: ParseLimits {
            max_packet_size,
            strict_arguments: args.strict_arguments,
            ..ParseLimits::default()
        },
        packet_socket: !args.no_packet_socket,
    };
    let coalesce = std::time::Duration::from_micros(u64::from(args.coalesce_us));
    // After a quiet turn (replies are about 50 bytes: under 1,500 is fewer than ~30) while
    // probes are in flight, block this thread (the session's own) for `--coalesce-us`, so
    // that answers and commands gather and go through in batches.
    let pace = move |turn: Turn| {
        if !coalesce.is_zero() && turn.reply_bytes < 1500 && turn.in_flight > 0 {
            std::thread::sleep(coalesce);
        }
    };
    // One thread: the session and the engine's receive tasks share it, which costs the
    // least CPU per probe.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let prober = Prober::open(prober_config)
            .await
            .context("opening probe sockets")?;
        let session = Session::new(prober, config, Support::detect());
        // Pipes (how mtr and mtrpacket connect us) are read and written directly on the
        // reactor; anything else (a file, a terminal) through tokio's blocking stdio.
        let pipes = (PipeReader::stdin()?, PipeWriter::stdout()?);
        let stats = match pipes {
            (Some(input), Some(output)) => session.run_paced(input, output, pace).await,
            (Some(input), None) => session.run_paced(input, tokio::io::stdout(), pace).await,
            (None, Some(output)) => session.run_paced(tokio::io::stdin(), output, pace).await,
            (None, None) => {
                session
                    .run_paced(tokio::io::stdin(), tokio::io::stdout(), pace)
                    .await
            }
        }
        .context("reading commands / writing replies")?;
        tracing::info!(?stats, "command stream closed, all probes finished");
        Ok(())
    })
}
