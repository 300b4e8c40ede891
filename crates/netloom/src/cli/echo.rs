//! `netloom echo`: an echo server on plain tokio (the channel crate will rebuild it).
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Arguments of `netloom echo`.
#[derive(clap::Args)]
pub struct EchoArgs {
    /// Address to listen on; port 0 picks a free port. The bound address is printed first.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
}

/// Runs the echo server until interrupted.
pub fn run(args: EchoArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    rt.block_on(serve(args))
}

async fn serve(args: EchoArgs) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    println!("{}", listener.local_addr()?);
    loop {
        let (stream, peer) = listener.accept().await.context("accepting")?;
        tokio::spawn(async move {
            if let Err(err) = echo_bytes(stream).await {
                tracing::debug!(%peer, %err, "connection ended with an error");
            }
        });
    }
}

async fn echo_bytes(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}
