//! The anchor: a plain, idiomatic tokio echo server (accept, spawn, read / write_all).
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::BenchError;

/// Size of each connection's read buffer.
pub const READ_BUFFER: usize = 16 * 1024;

/// Accepts connections on `listener` forever, echoing each on its own task (TCP_NODELAY on).
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// tokio::spawn(netloom_bench::tokio_echo::serve(listener));
/// # Ok(()) }
/// ```
pub async fn serve(listener: TcpListener) -> Result<(), BenchError> {
    loop {
        let (stream, peer) = listener
            .accept()
            .await
            .map_err(|err| BenchError::io("accepting", err))?;
        tokio::spawn(async move {
            if let Err(err) = echo(stream).await {
                tracing::debug!(%peer, %err, "connection ended with an error");
            }
        });
    }
}

/// Echoes one connection until the peer closes it.
async fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

/// Binds `addr` on a multi-thread runtime with `threads` workers, calls `bound` with the
/// bound address, then serves forever.
///
/// ```no_run
/// netloom_bench::tokio_echo::run("127.0.0.1:0".parse().unwrap(), 1, |addr| println!("{addr}"))?;
/// # Ok::<(), netloom_bench::BenchError>(())
/// ```
pub fn run(
    addr: SocketAddr,
    threads: usize,
    bound: impl FnOnce(SocketAddr),
) -> Result<(), BenchError> {
    if threads == 0 {
        return Err(BenchError::InvalidConfig {
            what: "threads must be at least 1".into(),
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|err| BenchError::io("starting the tokio runtime", err))?;
    runtime.block_on(async {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|err| BenchError::io(format!("binding {addr}"), err))?;
        let local = listener
            .local_addr()
            .map_err(|err| BenchError::io("reading the bound address", err))?;
        bound(local);
        serve(listener).await
    })
}
