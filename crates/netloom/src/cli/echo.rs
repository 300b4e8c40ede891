//! `netloom echo`: an echo server on netloom-channel (bytes, frames, optionally over TLS).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use netloom_channel::{
    ChannelOptions, EchoHandler, EventLoopGroup, FramingHandler, ServerBootstrap, TlsHandler,
    TlsServerConfig,
};
use netloom_codec::Framer;

/// Arguments of `netloom echo`.
#[derive(clap::Args)]
pub struct EchoArgs {
    /// Address to listen on; port 0 picks a free port. The bound address is printed first.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Decode incoming bytes into frames with this framer and echo each frame re-encoded
    /// (e.g. `lines`, `length-field:u16be`, `cobs`; the names are in docs/framers.md).
    /// Without it, bytes are echoed as they come.
    #[arg(long, value_name = "NAME")]
    pub framing: Option<Framer>,

    /// Serve TLS with this PEM certificate chain.
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,

    /// Event loop threads (default: the CPUs this process may use).
    #[arg(long)]
    pub threads: Option<usize>,

    /// TCP_NOTSENT_LOWAT of every connection: at most this many bytes wait unsent in the
    /// kernel; the rest waits in the channel, whose back-pressure stops reading (0: the
    /// system's default, no limit). 128 KiB keeps bulk echoes from queueing megabytes in
    /// the kernel: see docs/benchmarks.md.
    #[arg(long, default_value_t = 128 * 1024, value_name = "BYTES")]
    pub tcp_notsent_lowat: u32,

    /// Bytes read per system call at most (ChannelOptions::read_chunk_size, at least 64).
    /// Smaller reads cost more CPU per byte for bulk echoes: see docs/benchmarks.md.
    #[arg(long, default_value_t = ChannelOptions::default().read_chunk_size, value_name = "BYTES")]
    pub read_chunk_size: usize,

    /// Bytes one write system call offers at most
    /// (ChannelOptions::max_bytes_per_gathering_write, at least 1). The default stays below
    /// the 64 KiB TCP segment: see docs/benchmarks.md.
    #[arg(
        long,
        default_value_t = ChannelOptions::default().max_bytes_per_gathering_write,
        value_name = "BYTES"
    )]
    pub max_bytes_per_gathering_write: usize,

    /// Echo UDP datagrams instead: each sender is a tracked peer with its own pipeline;
    /// peer counts go to stderr periodically and on exit (SIGINT/SIGTERM).
    #[arg(long, conflicts_with_all = ["tls_cert", "threads"])]
    pub udp: bool,

    /// UDP: close a peer after this many seconds without traffic.
    #[arg(long, default_value_t = 60.0, value_name = "SECS", requires = "udp")]
    pub udp_idle_timeout: f64,

    /// UDP: track at most this many peers (the least recently active one is evicted).
    #[arg(long, default_value_t = 65_536, value_name = "N", requires = "udp")]
    pub udp_max_peers: usize,

    /// UDP: seconds between peer-count reports on stderr.
    #[arg(long, default_value_t = 5.0, value_name = "SECS", requires = "udp")]
    pub udp_report_interval: f64,

    /// UDP: report peer counts as JSON lines.
    #[arg(long, requires = "udp")]
    pub json: bool,
}

/// Runs the echo server until interrupted.
pub fn run(args: EchoArgs) -> anyhow::Result<ExitCode> {
    if args.udp {
        return run_udp(&args);
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsServerConfig::from_pem_files(cert, key)?),
        _ => None,
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let group = EventLoopGroup::new(threads, "echo")?;
    let options = child_options(&args);
    let framing = args.framing;
    let server = ServerBootstrap::new(&group, &group)
        .child_options(options)
        .child_handler(move |p| {
            if let Some(tls) = &tls {
                p.add_last("tls", TlsHandler::server(tls)?)?;
            }
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
    server.close_future().sync()?;
    Ok(ExitCode::SUCCESS)
}

/// The options of every accepted connection.
fn child_options(args: &EchoArgs) -> ChannelOptions {
    ChannelOptions {
        tcp_notsent_lowat: (args.tcp_notsent_lowat > 0).then_some(args.tcp_notsent_lowat),
        read_chunk_size: args.read_chunk_size,
        max_bytes_per_gathering_write: args.max_bytes_per_gathering_write,
        ..ChannelOptions::default()
    }
}

/// `--udp`: the echo server over tracked UDP peers (`netloom_channel::udp::serve_echo`).
fn run_udp(args: &EchoArgs) -> anyhow::Result<ExitCode> {
    let secs = |name: &str, v: f64| {
        std::time::Duration::try_from_secs_f64(v).with_context(|| format!("{name} {v}"))
    };
    let mut options = netloom_channel::udp::EchoOptions::new(args.listen);
    options.config.idle_timeout = secs("--udp-idle-timeout", args.udp_idle_timeout)?;
    options.config.max_peers = args.udp_max_peers;
    options.report_interval = secs("--udp-report-interval", args.udp_report_interval)?;
    options.json = args.json;
    options.framing = args.framing.clone();
    netloom_channel::udp::serve_echo(&options, &mut std::io::stdout(), &mut std::io::stderr())
        .with_context(|| format!("UDP echo on {}", args.listen))?;
    Ok(ExitCode::SUCCESS)
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

    fn options(argv: &[&str]) -> ChannelOptions {
        let cli = Cli::try_parse_from(std::iter::once("echo").chain(argv.iter().copied())).unwrap();
        child_options(&cli.echo)
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
    fn read_and_write_sizes_default_to_the_channel_defaults_and_bad_ones_are_named() {
        assert_eq!(options(&[]).read_chunk_size, 128 * 1024);
        assert_eq!(options(&[]).max_bytes_per_gathering_write, 63 * 1024);
        let uncapped = options(&["--max-bytes-per-gathering-write", "1048576"]);
        assert_eq!(uncapped.max_bytes_per_gathering_write, 1 << 20);
        let err = options(&["--max-bytes-per-gathering-write", "0"])
            .validate()
            .unwrap_err();
        assert!(
            err.to_string().contains("max_bytes_per_gathering_write"),
            "{err}"
        );
        let big = options(&["--read-chunk-size", "262144"]);
        assert_eq!(big.read_chunk_size, 256 * 1024);
        assert!(big.validate().is_ok());
        let err = options(&["--read-chunk-size", "8"]).validate().unwrap_err();
        assert!(err.to_string().contains("read_chunk_size"), "{err}");
    }
}
