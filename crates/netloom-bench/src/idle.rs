//! Resident memory a server spends per idle connection.
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::BenchError;
use crate::connect::{connect, source_for};
use crate::payload::{EchoChecker, Pattern};
use crate::procfs::ProcSample;

/// Most idle connections one measurement opens.
pub const MAX_IDLE_CONNECTIONS: usize = 60_000;

/// One idle-memory measurement.
///
/// ```
/// let config = netloom_bench::idle::IdleConfig::new("127.0.0.1:7".parse().unwrap(), 1234, 10_000);
/// assert_eq!(config.sources.len(), 4);
/// ```
#[derive(Debug, Clone)]
pub struct IdleConfig {
    /// The echo server.
    pub addr: SocketAddr,
    /// Its process id (its VmRSS is read).
    pub server_pid: u32,
    /// Connections to open and keep idle.
    pub connections: usize,
    /// Size of the one message exchanged on each connection.
    pub size: usize,
    /// Source addresses, round robin (several give more ephemeral ports).
    pub sources: Vec<IpAddr>,
    /// Timeout of opening all connections and exchanging on each (each connect and each
    /// exchange gets what is left of it).
    pub timeout: Duration,
    /// Pause before each RSS reading, for the server to finish its work.
    pub settle: Duration,
}

impl IdleConfig {
    /// `connections` idle connections from 127.0.0.1..=127.0.0.4, one 32-byte exchange each.
    pub fn new(addr: SocketAddr, server_pid: u32, connections: usize) -> Self {
        Self {
            addr,
            server_pid,
            connections,
            size: 32,
            sources: crate::connect::loopback_sources(4),
            timeout: Duration::from_secs(120),
            settle: Duration::from_millis(500),
        }
    }
}

/// Server memory before and after opening the idle connections.
///
/// ```
/// # use netloom_bench::idle::IdleReport;
/// fn per_conn(report: &IdleReport) -> f64 { report.kib_per_connection }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdleReport {
    /// Connections held open.
    pub connections: usize,
    /// Server VmRSS after one warm-up connection came and went, in KiB.
    pub baseline_rss_kib: u64,
    /// Server VmRSS with every connection open and idle, in KiB.
    pub loaded_rss_kib: u64,
    /// (loaded - baseline) / connections.
    pub kib_per_connection: f64,
    /// Server threads while loaded.
    pub server_threads: u64,
}

/// Opens `config.connections` connections, exchanges one checked message on each, and reads
/// the server's RSS growth while they sit idle; then closes them.
///
/// ```no_run
/// use netloom_bench::idle::{measure, IdleConfig};
/// let report = measure(&IdleConfig::new("127.0.0.1:7".parse().unwrap(), 1234, 10_000))?;
/// println!("{:.1} KiB per idle connection", report.kib_per_connection);
/// # Ok::<(), netloom_bench::BenchError>(())
/// ```
pub fn measure(config: &IdleConfig) -> Result<IdleReport, BenchError> {
    if config.connections == 0 || config.connections > MAX_IDLE_CONNECTIONS {
        return Err(BenchError::InvalidConfig {
            what: format!(
                "idle connections is {}, must be 1..={MAX_IDLE_CONNECTIONS}",
                config.connections
            ),
        });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| BenchError::io("starting the client runtime", err))?;
    runtime.block_on(async {
        let opened = std::time::Instant::now();
        let left = || config.timeout.saturating_sub(opened.elapsed());
        let pattern = Arc::new(Pattern::new(config.size));
        let warm = open_and_exchange(config, &pattern, usize::MAX, None, left()).await?;
        drop(warm);
        tokio::time::sleep(config.settle).await;
        let baseline = ProcSample::read(config.server_pid)?;
        let mut streams = Vec::with_capacity(config.connections);
        for index in 0..config.connections {
            let from = source_for(&config.sources, index);
            streams.push(open_and_exchange(config, &pattern, index, from, left()).await?);
        }
        tokio::time::sleep(config.settle).await;
        let loaded = ProcSample::read(config.server_pid)?;
        drop(streams);
        let grown = loaded.rss_kib.saturating_sub(baseline.rss_kib);
        Ok(IdleReport {
            connections: config.connections,
            baseline_rss_kib: baseline.rss_kib,
            loaded_rss_kib: loaded.rss_kib,
            kib_per_connection: grown as f64 / config.connections as f64,
            server_threads: loaded.threads,
        })
    })
}

async fn open_and_exchange(
    config: &IdleConfig,
    pattern: &Arc<Pattern>,
    index: usize,
    from: Option<IpAddr>,
    timeout: Duration,
) -> Result<TcpStream, BenchError> {
    let mut stream = connect(from, config.addr, timeout).await?;
    let echo_err = |what: String| BenchError::Echo {
        connection: index,
        what,
    };
    let mut msg = vec![0u8; pattern.size()];
    pattern.fill(index as u64, 0, &mut msg);
    let mut checker = EchoChecker::new(Arc::clone(pattern), index as u64);
    let exchange = async {
        stream
            .write_all(&msg)
            .await
            .map_err(|err| echo_err(format!("write: {err}")))?;
        let mut buf = vec![0u8; msg.len()];
        while checker.next_seq() == 0 {
            let n = stream
                .read(&mut buf)
                .await
                .map_err(|err| echo_err(format!("read: {err}")))?;
            if n == 0 {
                return Err(echo_err("server closed before echoing".into()));
            }
            checker
                .feed(&buf[..n])
                .map_err(|mismatch| echo_err(mismatch.to_string()))?;
        }
        Ok(())
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| echo_err(format!("no echo within {timeout:?}")))??;
    Ok(stream)
}
