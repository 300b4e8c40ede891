//! `tokio-echo`: the plain tokio echo server the comparison uses as its anchor.
use std::net::SocketAddr;

use clap::Parser;

/// A plain tokio echo server (multi-thread runtime, read / write_all, TCP_NODELAY).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free port. The bound address is printed first.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Worker threads of the tokio runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    netloom_bench::tokio_echo::run(args.listen, args.threads, |addr| println!("{addr}"))?;
    Ok(())
}
