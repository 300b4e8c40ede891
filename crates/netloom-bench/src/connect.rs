//! Opening the client side of benchmark connections, spread over loopback source addresses.
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

use crate::BenchError;

/// Connects to `to` from `from` (port chosen by the kernel), with TCP_NODELAY set.
///
/// Several source addresses (127.0.0.2, 127.0.0.3, ...) give each its own range of
/// ephemeral ports when one address would run short.
///
/// ```no_run
/// # async fn demo() -> Result<(), netloom_bench::BenchError> {
/// use std::time::Duration;
/// let to = "127.0.0.1:7".parse().unwrap();
/// let stream = netloom_bench::connect::connect(None, to, Duration::from_secs(1)).await?;
/// # drop(stream); Ok(()) }
/// ```
pub async fn connect(
    from: Option<IpAddr>,
    to: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, BenchError> {
    let err = |source| BenchError::Connect {
        from: from.map(|ip| SocketAddr::new(ip, 0)),
        to,
        source,
    };
    let socket = if to.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(err)?;
    if let Some(ip) = from {
        socket.bind(SocketAddr::new(ip, 0)).map_err(err)?;
    }
    let stream = tokio::time::timeout(timeout, socket.connect(to))
        .await
        .map_err(|_| err(std::io::ErrorKind::TimedOut.into()))?
        .map_err(err)?;
    stream.set_nodelay(true).map_err(err)?;
    Ok(stream)
}

/// The source address for connection `index`: round robin over `sources`, or the kernel's
/// choice when `sources` is empty.
///
/// ```
/// use netloom_bench::connect::source_for;
/// let sources = ["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()];
/// assert_eq!(source_for(&sources, 3), Some(sources[1]));
/// assert_eq!(source_for(&[], 3), None);
/// ```
pub fn source_for(sources: &[IpAddr], index: usize) -> Option<IpAddr> {
    if sources.is_empty() {
        None
    } else {
        Some(sources[index % sources.len()])
    }
}

/// Loopback source addresses 127.0.0.1 .. 127.0.0.`count` (at most 254).
///
/// ```
/// let sources = netloom_bench::connect::loopback_sources(2);
/// assert_eq!(sources.len(), 2);
/// assert_eq!(sources[1].to_string(), "127.0.0.2");
/// ```
pub fn loopback_sources(count: u8) -> Vec<IpAddr> {
    (1..=count.min(254))
        .map(|last| IpAddr::from([127, 0, 0, last]))
        .collect()
}
