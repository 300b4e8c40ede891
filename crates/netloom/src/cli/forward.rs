//! `netloom forward`: a TCP / TLS port forwarder with backpressure both ways.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use netloom_channel::{ChannelOptions, EventLoopGroup, ForwardConfig, Forwarder, TlsClientConfig};

use super::output::usage;
use super::serve::{self, GuardArgs, ListenArgs, OpenCount, ServeArgs, Stop, StopSignals};
use super::{addr, ranges};

/// Arguments of `netloom forward`.
#[derive(clap::Args)]
pub struct ForwardArgs {
    /// Address to listen on: PORT or :PORT (127.0.0.1), HOST:PORT with a name or an
    /// address, [IPv6]:PORT; 0.0.0.0:PORT listens on every interface; port 0 picks a free
    /// port. The bound address is printed first, on stdout.
    #[arg(long, short = 'l', default_value = "127.0.0.1:0", value_name = "ADDR",
          value_parser = addr::listen)]
    pub listen: SocketAddr,
    /// Where to forward to, as HOST:PORT or [IPv6]:PORT (port 1..=65535); the host must
    /// resolve when the forwarder starts.
    #[arg(long, value_name = "HOST:PORT", value_parser = addr::target)]
    pub to: String,
    /// Speak TLS to the target, verifying its certificate (system roots unless --tls-ca).
    /// A failed verification is logged at WARN and the client's connection is closed.
    #[arg(long)]
    pub tls_to: bool,
    /// PEM file of the CA certificates to trust for --tls-to.
    #[arg(long, requires = "tls_to", value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
    /// The name to verify and send as SNI with --tls-to (default: the host of --to).
    #[arg(long, requires = "tls_to", value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// TLS on the listening side and the event loop threads.
    #[command(flatten)]
    pub listen_side: ListenArgs,
    /// After one side ends its output (its FIN is passed on), how many seconds the other
    /// direction may go on before both connections close, as socat's `-t` [range:
    /// 0..=3600].
    #[arg(long, value_name = "SECS", default_value = "10",
          value_parser = ranges::secs_in(ranges::HALF_CLOSE_LINGER_SECS))]
    pub half_close_linger: Duration,
    /// Keep-alive and the graceful stop.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Per-connection limits (on the client side; the target side shares the idle timeout).
    #[command(flatten)]
    pub guard: GuardArgs,
}

/// Runs the forwarder until SIGINT/SIGTERM/SIGHUP, then stops gracefully (exit 0).
pub fn run(args: ForwardArgs) -> anyhow::Result<ExitCode> {
    let stop = StopSignals::install()?;
    let mut config = ForwardConfig::new(args.to.as_str());
    config.half_close_linger = args.half_close_linger;
    if args.tls_to {
        let roots = match &args.tls_ca {
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("reading --tls-ca {}", path.display()))?;
                TlsClientConfig::from_roots_pem(&pem)
                    .map_err(|e| usage(format!("--tls-ca {}: {e}", path.display())))?
            }
            None => TlsClientConfig::system_roots()?,
        };
        config.tls_to = Some(roots);
        config.tls_server_name = args.tls_server_name;
    }
    config.tls_listen = args.listen_side.tls()?;
    let mut options = ChannelOptions::default();
    args.serve.apply(&mut options);
    args.guard.apply(&mut options);
    config.options = options;
    config.tls_handshake_timeout = Some(args.guard.tls_handshake_timeout);
    let threads = args.listen_side.threads();
    let open = Arc::new(OpenCount::default());
    let counted = open.clone();
    // Two descriptors per forwarded connection: the client's and the target's.
    let max = serve::fd_capped(args.guard.max_connections, 2, threads);
    let config = config.with_client_handlers(move |p| serve::guard(p, max, &counted));
    let group = EventLoopGroup::new(threads, "forward")?;
    let fwd = Forwarder::bind(&group, args.listen, config)
        .with_context(|| format!("listening on {}", args.listen))?;
    println!("{}", fwd.local_addr());
    if stop.wait(fwd.close_future()) == Stop::Signal {
        fwd.close();
        serve::drain(&open, args.serve.grace);
    }
    // What is still open is closed gracefully: pending bytes written, then FIN.
    fwd.shutdown_gracefully(Duration::from_secs(1)).sync()?;
    Ok(ExitCode::SUCCESS)
}
