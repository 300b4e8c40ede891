//! What the servers (`echo`, `forward`) share: the per-connection limits (idle and
//! handshake timeouts, keep-alive, a connection cap), `-v` connection logs, and the
//! graceful stop on SIGINT/SIGTERM.
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use netloom_channel::{
    ChannelOptions, CloseFuture, Context, Handler, HandlerResult, Pipeline, TlsServerConfig,
};

use super::ranges;

/// Keep-alive and the graceful stop: what `echo` and `forward` share.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// TCP keep-alive: probe a silent peer after this many seconds, so connections whose
    /// peer vanished are closed by the kernel (0 turns it off) [range: 0..=86400].
    #[arg(long, default_value = "60", value_name = "SECS",
          value_parser = ranges::secs_in(ranges::KEEPALIVE_SECS))]
    pub keepalive: Duration,

    /// On SIGINT/SIGTERM/SIGHUP: stop accepting, let open connections finish for up to
    /// this many seconds, then close them gracefully (pending bytes written, then FIN)
    /// [range: 0..=3600].
    #[arg(long, default_value = "5", value_name = "SECS",
          value_parser = ranges::secs_in(ranges::GRACE_SECS))]
    pub grace: Duration,
}

impl ServeArgs {
    /// Sets keep-alive on `options`.
    pub fn apply(&self, options: &mut ChannelOptions) {
        options.tcp_keepalive = (!self.keepalive.is_zero()).then_some(self.keepalive);
    }
}

/// TLS on the listening side and the event loop threads: what `echo` and `forward` share.
#[derive(clap::Args, Debug, Clone)]
pub struct ListenArgs {
    /// Serve TLS on the listening side with this PEM certificate chain.
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,

    /// Event loop threads (default: the CPUs this process may use) [range: 1..=256].
    #[arg(long, value_name = "N", value_parser = ranges::usize_in(ranges::THREADS))]
    pub threads: Option<usize>,
}

impl ListenArgs {
    /// The TLS server configuration of --tls-cert/--tls-key, if given; a file that cannot
    /// be read or does not match is a usage error.
    pub fn tls(&self) -> anyhow::Result<Option<TlsServerConfig>> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(
                TlsServerConfig::from_pem_files(cert, key)
                    .map_err(|e| super::output::usage(e.to_string()))?,
            )),
            _ => Ok(None),
        }
    }

    /// --threads, or the CPUs this process may use.
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
    }
}

/// Connection limits: idle and TLS handshake timeouts and the buffer budget (enforced by
/// the channel), the connection cap (by the [`guard`] handler).
#[derive(clap::Args, Debug, Clone)]
pub struct GuardArgs {
    /// Close a connection after this many seconds without a byte in either direction
    /// (0 keeps idle connections forever) [range: 0..=86400].
    #[arg(long, default_value = "300", value_name = "SECS",
          value_parser = ranges::secs_in(ranges::IDLE_TIMEOUT_SECS))]
    pub idle_timeout: Duration,

    /// Close a TLS connection whose handshake has not completed after this many seconds
    /// [range: 0.1..=600].
    #[arg(long, default_value = "10", value_name = "SECS",
          value_parser = ranges::secs_in(ranges::HANDSHAKE_TIMEOUT_SECS))]
    pub tls_handshake_timeout: Duration,

    /// Serve at most this many connections at once; more are closed as they arrive
    /// [range: 1..=1000000]. Lowered to what the open-files limit (`ulimit -n`) allows,
    /// keeping 32 + 4 per thread for the process (a forwarded connection takes two), so
    /// that a client past the limit is closed at once instead of hanging unaccepted.
    #[arg(long, default_value = "10000", value_name = "N",
          value_parser = ranges::usize_in(ranges::MAX_CONNECTIONS))]
    pub max_connections: usize,

    /// Bytes that all connections together may hold in partly received frames; a read
    /// that would pass it closes that connection (default 256 MiB)
    /// [range: 65536..=68719476736].
    #[arg(long, default_value_t = netloom_channel::DEFAULT_MEMORY_BUDGET, value_name = "BYTES",
          value_parser = ranges::usize_in(ranges::BUFFER_BUDGET))]
    pub buffer_budget: usize,
}

/// `max` (`--max-connections`), lowered to what the open-files limit allows when each
/// connection takes `fds_per_connection` descriptors and `threads` event loops run. At the
/// limit the kernel still completes new clients' handshakes, and they would hang in the
/// accept queue; under it, the guard closes them at once (issue 13, defect 15).
pub fn fd_capped(max: usize, fds_per_connection: usize, threads: usize) -> usize {
    let Some(limit) = open_files_limit() else {
        return max;
    };
    let reserved = 32 + 4 * threads;
    let allowed = (limit.saturating_sub(reserved) / fds_per_connection.max(1)).max(1);
    if allowed < max {
        tracing::info!(
            max_connections = allowed,
            open_files_limit = limit,
            "--max-connections lowered to what the open-files limit allows (raise it with ulimit -n)"
        );
        return allowed;
    }
    max
}

/// The soft limit of open files (`ulimit -n`), from /proc/self/limits.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Open connections of one server.
#[derive(Debug, Default)]
pub struct OpenCount(AtomicUsize);

impl OpenCount {
    /// Connections open now.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl GuardArgs {
    /// Sets the idle timeout and one memory budget shared by every connection on
    /// `options` (the channel enforces both).
    pub fn apply(&self, options: &mut ChannelOptions) {
        options.idle_timeout = (!self.idle_timeout.is_zero()).then_some(self.idle_timeout);
        options.memory_budget = Some(netloom_channel::MemoryBudget::new(self.buffer_budget));
    }
}

/// Adds the connection guard to a child pipeline: it counts the connection in `open`,
/// logs it at info (`-v`) and closes it when more than `max` are open.
pub fn guard(
    p: &mut Pipeline,
    max: usize,
    open: &Arc<OpenCount>,
) -> Result<(), netloom_channel::ChannelError> {
    p.add_last(
        "guard",
        Guard {
            open: open.clone(),
            max,
            counted: false,
        },
    )?;
    Ok(())
}

/// See [`guard`].
struct Guard {
    open: Arc<OpenCount>,
    max: usize,
    counted: bool,
}

#[netloom_channel::handler]
impl Handler for Guard {
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let peer = peer(ctx);
        let now = self.open.0.fetch_add(1, Ordering::Relaxed) + 1;
        self.counted = true;
        if now > self.max {
            tracing::info!(%peer, max = self.max, "connection refused: --max-connections reached");
            ctx.close();
            return Ok(());
        }
        tracing::info!(%peer, open = now, "connection accepted");
        ctx.fire_channel_active();
        Ok(())
    }

    fn channel_inactive(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if std::mem::take(&mut self.counted) {
            self.open.0.fetch_sub(1, Ordering::Relaxed);
        }
        tracing::info!(peer = %peer(ctx), "connection closed");
        ctx.fire_channel_inactive();
        Ok(())
    }
}

fn peer(ctx: &Context<'_>) -> String {
    ctx.channel()
        .peer_addr()
        .map_or_else(|| "?".into(), |a| a.to_string())
}

/// How a server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT, SIGTERM or SIGHUP arrived.
    Signal,
    /// The listening socket closed on its own.
    Closed,
}

/// The stop signals (SIGINT, SIGTERM, SIGHUP), caught from the moment they are installed:
/// install them before binding, so a signal sent as soon as the address is printed stops
/// the server gracefully instead of killing it. Signals are handled here, in the CLI: the
/// libraries install none.
pub struct StopSignals {
    /// The runtime that drives the signal streams (and the caller's timers).
    pub rt: tokio::runtime::Runtime,
    /// The streams.
    pub signals: Signals,
}

/// The three stop signal streams.
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Completes at the next stop signal.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
    }
}

impl StopSignals {
    /// Starts catching the stop signals.
    pub fn install() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let signals = {
            let _in_rt = rt.enter();
            Signals {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
                hup: signal(SignalKind::hangup())?,
            }
        };
        Ok(StopSignals { rt, signals })
    }

    /// Blocks until a stop signal or until `closed` completes.
    pub fn wait(mut self, closed: CloseFuture) -> Stop {
        self.rt.block_on(async {
            tokio::select! {
                _ = self.signals.recv() => Stop::Signal,
                _ = std::future::IntoFuture::into_future(closed) => Stop::Closed,
            }
        })
    }
}

/// After a stop signal: waits up to `grace` for the open connections to finish, checking
/// every 20 ms.
pub fn drain(open: &OpenCount, grace: Duration) {
    let deadline = std::time::Instant::now() + grace;
    while open.get() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if open.get() > 0 {
        tracing::info!(
            open = open.get(),
            "grace time over: closing the open connections"
        );
    }
}
