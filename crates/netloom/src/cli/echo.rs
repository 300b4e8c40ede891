//! `netloom echo`: an echo server on netloom-channel (bytes, frames, optionally over TLS).
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use netloom_channel::{
    ChannelOptions, EchoHandler, EventLoopGroup, FramingHandler, ServerBootstrap, TlsHandler,
};
use netloom_codec::Framer;

use super::serve::{self, GuardArgs, ListenArgs, OpenCount, ServeArgs, Stop, StopSignals};
use super::{addr, echo_udp, ranges};

/// Arguments of `netloom echo`.
#[derive(clap::Args)]
pub struct EchoArgs {
    /// Address to listen on: PORT or :PORT (127.0.0.1), HOST:PORT with a name or an
    /// address, [IPv6]:PORT; 0.0.0.0:PORT listens on every interface; port 0 picks a free
    /// port. The bound address is printed first, on stdout.
    #[arg(long, short = 'l', default_value = "127.0.0.1:0", value_name = "ADDR",
          value_parser = addr::listen)]
    pub listen: SocketAddr,

    /// Decode incoming bytes into frames with this framer and echo each frame re-encoded
    /// (e.g. `lines`, `length-field:u16be`, `cobs`; the names are in docs/framers.md).
    /// Without it, bytes are echoed as they come.
    #[arg(long, value_name = "NAME", long_help = framing_help())]
    pub framing: Option<Framer>,

    /// TLS on the listening side and the event loop threads.
    #[command(flatten)]
    pub listen_side: ListenArgs,

    /// TCP_NOTSENT_LOWAT of every connection: at most this many bytes wait unsent in the
    /// kernel; the rest waits in the channel, whose back-pressure stops reading (0: the
    /// system's default, no limit). 128 KiB keeps bulk echoes from queueing megabytes in
    /// the kernel: see docs/benchmarks.md [range: 0..=67108864].
    #[arg(long, default_value_t = 128 * 1024, value_name = "BYTES",
          value_parser = ranges::u32_in(ranges::NOTSENT_LOWAT))]
    pub tcp_notsent_lowat: u32,

    /// Bytes read per system call at most. Smaller reads cost more CPU per byte for bulk
    /// echoes: see docs/benchmarks.md [range: 64..=16777216].
    #[arg(long, default_value_t = ChannelOptions::default().read_chunk_size, value_name = "BYTES",
          value_parser = ranges::usize_in(ranges::READ_CHUNK_SIZE))]
    pub read_chunk_size: usize,

    /// Bytes one write system call offers at most. The default stays below the 64 KiB TCP
    /// segment: see docs/benchmarks.md [range: 1..=16777216].
    #[arg(
        long,
        default_value_t = ChannelOptions::default().max_bytes_per_gathering_write,
        value_name = "BYTES",
        value_parser = ranges::usize_in(ranges::GATHERING_WRITE)
    )]
    pub max_bytes_per_gathering_write: usize,

    /// Keep-alive and the graceful stop (TCP).
    #[command(flatten)]
    pub serve: ServeArgs,

    /// Per-connection limits (TCP).
    #[command(flatten)]
    pub guard: GuardArgs,

    /// Echo UDP datagrams instead: each sender is a tracked peer with its own pipeline;
    /// peer counts are reported periodically and on exit (SIGINT/SIGTERM).
    #[arg(long, conflicts_with_all = [
        "tls_cert", "threads", "tcp_notsent_lowat", "read_chunk_size",
        "max_bytes_per_gathering_write", "keepalive", "grace", "idle_timeout",
        "tls_handshake_timeout", "max_connections",
    ])]
    pub udp: bool,

    /// UDP: close a peer after this many seconds without traffic [range: 0.01..=86400].
    #[arg(long, default_value = "60", value_name = "SECS", requires = "udp",
          value_parser = ranges::secs_in(ranges::UDP_IDLE_SECS))]
    pub udp_idle_timeout: Duration,

    /// UDP: track at most this many peers (the least recently active one is evicted)
    /// [range: 1..=1048576].
    #[arg(long, default_value_t = 65_536, value_name = "N", requires = "udp",
          value_parser = ranges::usize_in(ranges::UDP_MAX_PEERS))]
    pub udp_max_peers: usize,

    /// UDP: seconds between peer-count reports [range: 0.01..=86400].
    #[arg(long, default_value = "5", value_name = "SECS", requires = "udp",
          value_parser = ranges::secs_in(ranges::REPORT_INTERVAL_SECS))]
    pub udp_report_interval: Duration,

    /// UDP: peer counts as JSON lines on stdout (after the address line) instead of text
    /// on stderr.
    #[arg(long, requires = "udp")]
    pub json: bool,
}

/// `--framing`'s long help: what it does, then every framer kind and option from the
/// codec's registry.
fn framing_help() -> String {
    format!(
        "Decode incoming bytes into frames with this framer and echo each frame re-encoded. \
         Without it, bytes are echoed as they come.\n\n{}",
        netloom_codec::registry::help()
    )
}

/// Runs the echo server until SIGINT/SIGTERM/SIGHUP, then stops gracefully (exit 0).
pub fn run(args: EchoArgs) -> anyhow::Result<ExitCode> {
    let stop = StopSignals::install()?;
    if args.udp {
        return echo_udp::run(&args, stop);
    }
    let tls = args.listen_side.tls()?;
    let threads = args.listen_side.threads();
    let group = EventLoopGroup::new(threads, "echo")?;
    let options = child_options(&args);
    let framing = args.framing.clone();
    let (handshake, max_connections) = (
        args.guard.tls_handshake_timeout,
        serve::fd_capped(args.guard.max_connections, 1, threads),
    );
    let open = Arc::new(OpenCount::default());
    let counted = open.clone();
    let server = ServerBootstrap::new(&group, &group)
        .child_options(options)
        .child_handler(move |p| {
            if let Some(tls) = &tls {
                p.add_last(
                    "tls",
                    TlsHandler::server(tls)?.handshake_timeout(Some(handshake)),
                )?;
            }
            serve::guard(p, max_connections, &counted)?;
            if let Some(framer) = &framing {
                p.add_last(
                    "framing",
                    FramingHandler::new(framer.clone(), framer.clone()),
                )?;
            }
            p.add_last("echo", EchoHandler)?;
            Ok(())
        })
        .bind(args.listen)
        .sync()
        .with_context(|| format!("listening on {}", args.listen))?;
    println!("{}", server.local_addr());
    if stop.wait(server.close_future()) == Stop::Signal {
        server.close();
        serve::drain(&open, args.serve.grace);
    }
    // What is still open is closed gracefully: pending bytes written, then FIN.
    server.shutdown_gracefully(Duration::from_secs(1)).sync()?;
    Ok(ExitCode::SUCCESS)
}

/// The options of every accepted connection.
fn child_options(args: &EchoArgs) -> ChannelOptions {
    let mut options = ChannelOptions {
        tcp_notsent_lowat: (args.tcp_notsent_lowat > 0).then_some(args.tcp_notsent_lowat),
        read_chunk_size: args.read_chunk_size,
        max_bytes_per_gathering_write: args.max_bytes_per_gathering_write,
        // An echo answers on the channel it reads: its own pending answers throttle it.
        pause_reads_while_unwritable: true,
        ..ChannelOptions::default()
    };
    args.serve.apply(&mut options);
    args.guard.apply(&mut options);
    options
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        echo: EchoArgs,
    }

    fn parse(argv: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("echo").chain(argv.iter().copied()))
    }

    fn options(argv: &[&str]) -> ChannelOptions {
        child_options(&parse(argv).unwrap().echo)
    }

    #[test]
    fn connections_keep_at_most_128_kib_unsent_in_the_kernel_by_default() {
        assert_eq!(options(&[]).tcp_notsent_lowat, Some(128 * 1024));
        assert_eq!(
            options(&["--tcp-notsent-lowat", "4096"]).tcp_notsent_lowat,
            Some(4096)
        );
        assert_eq!(
            options(&["--tcp-notsent-lowat", "0"]).tcp_notsent_lowat,
            None
        );
    }

    #[test]
    fn read_and_write_sizes_default_to_the_channel_defaults_and_bad_ones_are_refused() {
        assert_eq!(options(&[]).read_chunk_size, 128 * 1024);
        assert_eq!(options(&[]).max_bytes_per_gathering_write, 63 * 1024);
        let uncapped = options(&["--max-bytes-per-gathering-write", "1048576"]);
        assert_eq!(uncapped.max_bytes_per_gathering_write, 1 << 20);
        let big = options(&["--read-chunk-size", "262144"]);
        assert!(big.validate().is_ok());
        for bad in [
            ["--max-bytes-per-gathering-write", "0"],
            ["--read-chunk-size", "8"],
        ] {
            let err = parse(&bad).err().expect("refused");
            assert!(err.to_string().contains(bad[0]), "{err}");
        }
    }

    #[test]
    fn keepalive_defaults_to_60_s_and_0_turns_it_off() {
        assert_eq!(options(&[]).tcp_keepalive, Some(Duration::from_secs(60)));
        assert_eq!(options(&["--keepalive", "0"]).tcp_keepalive, None);
    }

    #[test]
    fn tcp_only_options_are_refused_with_udp() {
        assert!(parse(&["--udp"]).is_ok());
        for flag in [
            "--idle-timeout=5",
            "--keepalive=5",
            "--read-chunk-size=4096",
        ] {
            let err = parse(&["--udp", flag]).err().expect("refused");
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{flag}"
            );
        }
    }

    #[test]
    fn idle_timeout_defaults_to_300_s_and_0_turns_it_off() {
        assert_eq!(options(&[]).idle_timeout, Some(Duration::from_secs(300)));
        assert_eq!(options(&["--idle-timeout", "0"]).idle_timeout, None);
        assert!(options(&[]).validate().is_ok());
    }

    #[test]
    fn every_connection_shares_one_buffer_budget_of_256_mib_by_default() {
        let budget = options(&[]).memory_budget.expect("a budget");
        assert_eq!(budget.limit(), netloom_channel::DEFAULT_MEMORY_BUDGET);
        let small = options(&["--buffer-budget", "65536"])
            .memory_budget
            .unwrap();
        assert_eq!(small.limit(), 65536);
        assert!(parse(&["--buffer-budget", "1000"]).is_err());
    }
}
