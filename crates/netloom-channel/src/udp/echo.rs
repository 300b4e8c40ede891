//! A UDP echo server over tracked peers (`netloom echo --udp`).
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use super::{UdpBootstrap, UdpConfig, UdpStats};
use netloom_codec::Framer;

use crate::{ChannelError, EchoHandler, EventLoopGroup, FramingHandler};

/// Settings of [`serve_echo`].
///
/// ```
/// let o = netloom_channel::udp::EchoOptions::new("127.0.0.1:0".parse().unwrap());
/// assert_eq!(o.report_interval, std::time::Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct EchoOptions {
    /// Address to bind (port 0 picks one).
    pub listen: SocketAddr,
    /// Peer limits and timeouts.
    pub config: UdpConfig,
    /// How often the peer counts are reported.
    pub report_interval: Duration,
    /// Report as JSON lines instead of text.
    pub json: bool,
    /// Decode each peer's datagrams with this framer and echo each frame re-encoded
    /// (default: each datagram is echoed as one frame).
    pub framing: Option<Framer>,
}

impl EchoOptions {
    /// Defaults: `UdpConfig::default()`, a report every 5 s, text.
    ///
    /// ```
    /// let o = netloom_channel::udp::EchoOptions::new("[::1]:0".parse().unwrap());
    /// assert!(!o.json);
    /// ```
    pub fn new(listen: SocketAddr) -> EchoOptions {
        EchoOptions {
            listen,
            config: UdpConfig::default(),
            report_interval: Duration::from_secs(5),
            json: false,
            framing: None,
        }
    }
}

fn report(stats: &UdpStats, json: bool, last: bool) -> String {
    let when = if last { "final" } else { "periodic" };
    if json {
        format!(
            "{{\"report\":\"{when}\",\"peers\":{},\"peak_peers\":{},\"accepted\":{},\"rejected\":{},\"refused\":{},\"evicted\":{},\"expired\":{},\"closed\":{},\"datagrams_in\":{},\"datagrams_out\":{},\"truncated\":{},\"send_errors\":{}}}",
            stats.peers,
            stats.peak_peers,
            stats.accepted,
            stats.rejected,
            stats.refused,
            stats.evicted,
            stats.expired,
            stats.closed,
            stats.datagrams_in,
            stats.datagrams_out,
            stats.truncated,
            stats.send_errors
        )
    } else {
        format!("udp echo {when}: {stats}")
    }
}

/// Echoes every datagram back to its sender, each sender a tracked peer with its own
/// pipeline. Writes the bound address as the first line of `out`, the peer counts to
/// `reports` every `report_interval` and once more on exit, and runs until SIGINT or
/// SIGTERM; returns the final counts.
///
/// ```no_run
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use netloom_channel::udp::{EchoOptions, serve_echo};
/// let stats = serve_echo(&EchoOptions::new("127.0.0.1:7007".parse().unwrap()), &mut std::io::stdout(), &mut std::io::stderr())?;
/// println!("served {} peers", stats.accepted);
/// # Ok(()) }
/// ```
pub fn serve_echo(
    options: &EchoOptions,
    out: &mut dyn Write,
    reports: &mut dyn Write,
) -> Result<UdpStats, ChannelError> {
    let write_err = |source| ChannelError::Io {
        op: "write",
        channel: "(echo report)".into(),
        source,
    };
    if options.report_interval.is_zero() {
        return Err(ChannelError::InvalidOption {
            name: "report_interval",
            reason: "must be above zero".into(),
        });
    }
    options.config.validate()?;
    let group = EventLoopGroup::new(1, "udp-echo")?;
    let endpoint = UdpBootstrap::new(&group)
        .config(options.config.clone())
        .handler({
            let framing = options.framing.clone();
            move |p| {
                if let Some(f) = &framing {
                    p.add_last("framing", FramingHandler::new(f.clone(), f.clone()))?;
                }
                p.add_last("echo", EchoHandler)?;
                Ok(())
            }
        })
        .bind(options.listen)
        .sync()?;
    writeln!(out, "{}", endpoint.local_addr()).map_err(write_err)?;
    out.flush().map_err(write_err)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ChannelError::Io {
            op: "start signal runtime",
            channel: "(echo)".into(),
            source,
        })?;
    let signal_err = |source| ChannelError::Io {
        op: "listen for signals",
        channel: "(echo)".into(),
        source,
    };
    rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt()).map_err(signal_err)?;
        let mut term = signal(SignalKind::terminate()).map_err(signal_err)?;
        let mut tick = tokio::time::interval(options.report_interval);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = int.recv() => break,
                _ = term.recv() => break,
                _ = tick.tick() => {
                    writeln!(reports, "{}", report(&endpoint.stats(), options.json, false)).map_err(write_err)?;
                }
            }
        }
        Ok::<(), ChannelError>(())
    })?;
    endpoint.close();
    rt.block_on(std::future::IntoFuture::into_future(
        endpoint.close_future(),
    ));
    let stats = endpoint.stats();
    writeln!(reports, "{}", report(&stats, options.json, true)).map_err(write_err)?;
    let _ = group
        .shutdown_gracefully(Duration::ZERO, Duration::from_secs(1))
        .sync();
    Ok(stats)
}
