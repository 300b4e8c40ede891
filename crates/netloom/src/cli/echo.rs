//! `netloom echo`: an echo server on netloom-channel (bytes, frames, optionally over TLS).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use netloom_channel::{
    EchoHandler, EventLoopGroup, FramingHandler, ServerBootstrap, TlsHandler, TlsServerConfig,
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
}

/// Runs the echo server until interrupted.
pub fn run(args: EchoArgs) -> anyhow::Result<ExitCode> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsServerConfig::from_pem_files(cert, key)?),
        _ => None,
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let group = EventLoopGroup::new(threads, "echo")?;
    let framing = args.framing;
    let server = ServerBootstrap::new(&group, &group)
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
