//! `netloom echo`: an echo server on plain tokio (the channel crate will rebuild it).
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use netloom_codec::{CodecError, FramedConn, Framer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
        let framing = args.framing.clone();
        tokio::spawn(async move {
            let result = match framing {
                Some(framer) => echo_frames(stream, framer).await,
                None => echo_bytes(stream).await.map_err(CodecError::from),
            };
            if let Err(err) = result {
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

/// Echoes every decoded frame re-encoded with the same framer. Errors the framer recovers
/// from (an oversize frame, a malformed COBS frame) are logged and the connection goes on.
async fn echo_frames(stream: TcpStream, framer: Framer) -> Result<(), CodecError> {
    stream.set_nodelay(true)?;
    let mut conn = FramedConn::with_codec(stream, framer);
    while let Some(frame) = conn.next().await {
        let sent = match frame {
            Ok(frame) => conn.send(frame).await,
            Err(err) => Err(err),
        };
        match sent {
            Ok(()) => {}
            Err(err) if err.can_continue() => tracing::warn!(%err, "frame skipped"),
            Err(err) => return Err(err),
        }
    }
    conn.close().await
}
