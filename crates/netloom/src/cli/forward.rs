//! `netloom forward`: a TCP / TLS port forwarder with backpressure both ways.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use netloom_channel::{EventLoopGroup, ForwardConfig, Forwarder, TlsClientConfig, TlsServerConfig};

/// Arguments of `netloom forward`.
#[derive(clap::Args)]
pub struct ForwardArgs {
    /// Address to listen on; port 0 picks a free port. The bound address is printed first.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Where to forward to, as HOST:PORT.
    #[arg(long)]
    pub to: String,
    /// Speak TLS to the target, verifying its certificate (system roots unless --tls-ca).
    #[arg(long)]
    pub tls_to: bool,
    /// PEM file of the CA certificates to trust for --tls-to.
    #[arg(long, requires = "tls_to")]
    pub tls_ca: Option<PathBuf>,
    /// The name to verify and send as SNI with --tls-to (default: the host of --to).
    #[arg(long, requires = "tls_to")]
    pub tls_server_name: Option<String>,
    /// Terminate TLS on the listening side with this PEM certificate chain.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Event loop threads (default: the CPUs this process may use).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs the forwarder until interrupted.
pub fn run(args: ForwardArgs) -> anyhow::Result<ExitCode> {
    let mut config = ForwardConfig::new(args.to.as_str());
    if args.tls_to {
        let roots = match &args.tls_ca {
            Some(path) => {
                let pem =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                TlsClientConfig::from_roots_pem(&pem)?
            }
            None => TlsClientConfig::system_roots()?,
        };
        config.tls_to = Some(roots);
        config.tls_server_name = args.tls_server_name;
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls_listen = Some(TlsServerConfig::from_pem_files(cert, key)?);
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let group = EventLoopGroup::new(threads, "forward")?;
    let fwd = Forwarder::bind(&group, args.listen, config)
        .with_context(|| format!("listening on {}", args.listen))?;
    println!("{}", fwd.local_addr());
    fwd.close_future().sync()?;
    Ok(ExitCode::SUCCESS)
}
