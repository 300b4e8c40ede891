//! The session loop: commands in, probes through the engine, replies out.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::Poll;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::command::{ParseLimits, Request, SendProbe, parse_line};
use super::lines::{DEFAULT_COMMAND_BUFFER_SIZE, LineEvent, LineSplitter};
use super::reply::{Dialect, ErrorReply, Reply};
use crate::engine::fast::{self, FastProbes};
use crate::options::Transport;
use crate::{ProbeOptions, Prober, Protocol};

/// Settings of a [`Session`]; every limit is enforced with the reply mtr-packet uses.
///
/// ```
/// use netloom_probe::mtr_packet::SessionConfig;
/// let c = SessionConfig::default();
/// assert_eq!((c.max_in_flight, c.command_buffer_size), (16_384, 4096));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Which mtr-packet's words to speak.
    pub dialect: Dialect,
    /// Most probes outstanding; more get `probes-exhausted` (mtr-packet 0.95: 1,024).
    pub max_in_flight: usize,
    /// The command buffer: a line of this size minus one without a newline gets
    /// `0 command-buffer-overflow` (mtr-packet: 4,096).
    pub command_buffer_size: usize,
    /// Argument limits and strictness.
    pub limits: ParseLimits,
    /// Send ICMP/UDP probes (raw mode, no mark or device) through a packet socket when
    /// the path to the target is a plain Ethernet next hop: the IP output path is
    /// skipped, and with it the OUTPUT / POSTROUTING netfilter hooks. Off: every probe
    /// goes through the raw IP sockets.
    pub packet_socket: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            dialect: Dialect::Current,
            max_in_flight: 16_384,
            command_buffer_size: DEFAULT_COMMAND_BUFFER_SIZE,
            limits: ParseLimits::default(),
            packet_socket: true,
        }
    }
}

/// What this host can do, for `check-support` and for refusing probes up front.
///
/// ```
/// use netloom_probe::mtr_packet::Support;
/// let s = Support { ip4: true, ip6: false, sctp: false };
/// assert_eq!(s.feature("ip-6", "0.96"), "no");
/// assert_eq!(s.feature("udp", "0.96"), "ok");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    /// IPv4 sockets can be opened.
    pub ip4: bool,
    /// IPv6 sockets can be opened.
    pub ip6: bool,
    /// The kernel has SCTP.
    pub sctp: bool,
}

impl Support {
    /// Asks the kernel, as mtr-packet does: can an IPv4 / IPv6 socket and an SCTP socket be
    /// created.
    ///
    /// ```
    /// let s = netloom_probe::mtr_packet::Support::detect();
    /// assert!(s.ip4 || s.ip6);
    /// ```
    pub fn detect() -> Self {
        use socket2::{Domain, Protocol as P, Socket, Type};
        let can = |d, t, p| Socket::new(d, t, Some(p)).is_ok();
        Support {
            ip4: can(Domain::IPV4, Type::DGRAM, P::UDP),
            ip6: can(Domain::IPV6, Type::DGRAM, P::UDP),
            sctp: can(Domain::IPV4, Type::STREAM, P::from(libc::IPPROTO_SCTP)),
        }
    }

    /// The `support` value for a feature name (`command.c`'s `check_support`). Every
    /// protocol of [`Protocol::ALL`] is a feature: `ok`, or for a protocol probed over a
    /// socket of its own (SCTP), whether the kernel has it.
    ///
    /// ```
    /// use netloom_probe::mtr_packet::Support;
    /// let s = Support { ip4: true, ip6: true, sctp: false };
    /// assert_eq!(s.feature("version", "0.95"), "0.95");
    /// assert_eq!(s.feature("sctp", "0.95"), "no");
    /// assert_eq!(s.feature("tcp", "0.95"), "ok");
    /// assert_eq!(s.feature("teleport", "0.95"), "no");
    /// ```
    pub fn feature(&self, name: &str, version: &'static str) -> &'static str {
        let yes = |b: bool| if b { "ok" } else { "no" };
        match name {
            "version" => version,
            "ip-4" => yes(self.ip4),
            "ip-6" => yes(self.ip6),
            "send-probe" | "mark" => "ok",
            "sctp" => yes(self.sctp),
            other => match Protocol::named(other.as_bytes()).map(Protocol::transport) {
                Some(Transport::Stream { ip_proto, .. }) => {
                    yes(crate::engine::sockets::stream_supported(ip_proto))
                }
                Some(_) => "ok",
                None => "no",
            },
        }
    }
}

/// Counters of one session.
///
/// ```
/// assert_eq!(netloom_probe::mtr_packet::SessionStats::default().commands, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Lines read (including malformed ones).
    pub commands: u64,
    /// Probes handed to the engine.
    pub probes: u64,
    /// Lines answered with `0 command-parse-error`.
    pub parse_errors: u64,
    /// `0 command-buffer-overflow` replies.
    pub overflows: u64,
    /// Probes refused with `probes-exhausted`.
    pub exhausted: u64,
    /// Probes sent through the packet socket (see [`SessionConfig::packet_socket`]).
    pub packet_socket_sends: u64,
}

/// One mtr-packet session over a command stream and a reply stream.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use netloom_probe::{Prober, mtr_packet::{Session, SessionConfig, Support}};
/// let prober = Prober::open(Default::default()).await?;
/// let session = Session::new(prober, SessionConfig::default(), Support::detect());
/// let stats = session.run(tokio::io::stdin(), tokio::io::stdout()).await?;
/// eprintln!("{} probes", stats.probes);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Session {
    prober: Prober,
    config: SessionConfig,
    support: Support,
}

/// What one turn of [`Session::run_paced`] did (a turn: the commands of one read, or the
/// answers that arrived together, and the replies written for them), as its pacing hook
/// sees it once the replies are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Turn {
    /// Bytes of replies the turn wrote (a reply is about 50 bytes).
    pub reply_bytes: usize,
    /// Probes still in flight.
    pub in_flight: usize,
}

/// Probes in flight that need a future of their own (TCP/SCTP, a mark or device,
/// unprivileged mode), polled by the session's own task (no task spawn per probe).
type InFlight = FuturesUnordered<Pin<Box<dyn Future<Output = fast::Finished<i32>>>>>;

/// Where a new probe goes: the engine's submit path when it takes the options, else a
/// probe future.
struct Probes<'a> {
    slow: &'a mut InFlight,
    fast: &'a mut FastProbes<i32>,
}

impl Probes<'_> {
    fn len(&self) -> usize {
        self.slow.len() + self.fast.len()
    }
}

impl Session {
    /// A session that sends its probes through `prober`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), netloom_probe::ProbeError> {
    /// use netloom_probe::mtr_packet::{Dialect, Session, SessionConfig, Support};
    /// let prober = netloom_probe::Prober::open(Default::default()).await?;
    /// let config = SessionConfig { dialect: Dialect::Mtr095, ..Default::default() };
    /// let session = Session::new(prober, config, Support::detect());
    /// # let _ = session; Ok(()) }
    /// ```
    pub fn new(prober: Prober, config: SessionConfig, support: Support) -> Self {
        Session {
            prober,
            config,
            support,
        }
    }

    /// Reads commands from `input` until it ends, answers each on `output`, and returns
    /// once every probe sent has been answered or has timed out. Fails only when the
    /// streams fail.
    ///
    /// ```no_run
    /// # async fn demo(session: netloom_probe::mtr_packet::Session) -> std::io::Result<()> {
    /// let input: &[u8] = b"1 check-support feature version\n";
    /// let mut output = Vec::new();
    /// session.run(input, &mut output).await?;
    /// assert_eq!(output, b"1 feature-support support 0.96\n");
    /// # Ok(()) }
    /// ```
    pub async fn run<R, W>(&self, input: R, output: W) -> io::Result<SessionStats>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        self.run_paced(input, output, |_| {}).await
    }

    /// [`run`](Session::run), calling `pace` after each turn's replies are written: a hook
    /// for the caller's own pacing. The `mtr-packet` binary blocks its thread for a few
    /// microseconds after a quiet turn while probes are in flight, so that answers and
    /// commands gather and go through in batches (fewer system calls per probe); that
    /// blocking belongs to a runtime dedicated to the session, so it lives in the binary.
    ///
    /// ```no_run
    /// # async fn demo(session: netloom_probe::mtr_packet::Session) -> std::io::Result<()> {
    /// let input: &[u8] = b"1 check-support feature version\n";
    /// let mut turns = 0;
    /// session.run_paced(input, Vec::new(), |turn| turns += usize::from(turn.reply_bytes > 0)).await?;
    /// assert_eq!(turns, 1);
    /// # Ok(()) }
    /// ```
    pub async fn run_paced<R, W>(
        &self,
        mut input: R,
        mut output: W,
        mut pace: impl FnMut(Turn),
    ) -> io::Result<SessionStats>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut splitter = LineSplitter::new(self.config.command_buffer_size);
        let mut in_flight = InFlight::new();
        let mut fast = FastProbes::new(self.prober.engine().clone(), self.config.packet_socket);
        let mut stats = SessionStats::default();
        let mut read_buf = vec![0u8; 64 * 1024];
        let mut out = String::with_capacity(64 * 1024);
        let mut input_open = true;
        while input_open || !in_flight.is_empty() || fast.len() > 0 {
            tokio::select! {
                biased;
                () = std::future::poll_fn(|cx| {
                    fast.poll_finished(cx, &mut |done| self.write_finished(done, &mut out))
                }) => {}
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    self.write_finished(done, &mut out);
                    // Take every other finished probe now, so replies go out in one write.
                    std::future::poll_fn(|cx| {
                        while let Poll::Ready(Some(done)) = in_flight.poll_next_unpin(cx) {
                            self.write_finished(done, &mut out);
                        }
                        Poll::Ready(())
                    })
                    .await;
                }
                read = input.read(&mut read_buf), if input_open => {
                    let n = read?;
                    if n == 0 {
                        input_open = false;
                    } else {
                        let mut probes = Probes { slow: &mut in_flight, fast: &mut fast };
                        splitter.push(&read_buf[..n], |event| {
                            self.handle(event, &mut probes, &mut stats, &mut out);
                        });
                    }
                }
            }
            // This turn's probes leave together.
            fast.flush(&mut |done| self.write_finished(done, &mut out));
            let turn = Turn {
                reply_bytes: out.len(),
                in_flight: in_flight.len() + fast.len(),
            };
            if !out.is_empty() {
                output.write_all(out.as_bytes()).await?;
                output.flush().await?;
                out.clear();
            }
            pace(turn);
        }
        stats.packet_socket_sends = fast.packet_socket_sends();
        Ok(stats)
    }

    fn write_finished(&self, (token, result): fast::Finished<i32>, out: &mut String) {
        match result {
            Ok(reply) => Reply::Probe { token, reply },
            Err(error) => {
                tracing::debug!(token, %error, "probe failed");
                Reply::Error {
                    token,
                    error: ErrorReply::from_probe_error(&error),
                }
            }
        }
        .write_line(self.config.dialect, out);
    }

    fn handle(
        &self,
        event: LineEvent<'_>,
        in_flight: &mut Probes<'_>,
        stats: &mut SessionStats,
        out: &mut String,
    ) {
        let dialect = self.config.dialect;
        let line = match event {
            LineEvent::Line(line) => line,
            LineEvent::Overflow => {
                stats.overflows += 1;
                Reply::CommandBufferOverflow.write_line(dialect, out);
                return;
            }
        };
        stats.commands += 1;
        let command = match parse_line(line) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "command parse error");
                stats.parse_errors += 1;
                Reply::CommandParseError.write_line(dialect, out);
                return;
            }
        };
        let token = command.token;
        let reply = match Request::decode(&command, &self.config.limits) {
            Request::Unknown => Reply::UnknownCommand { token },
            Request::InvalidArgument => Reply::Error {
                token,
                error: ErrorReply::InvalidArgument,
            },
            Request::CheckSupport { feature } => Reply::FeatureSupport {
                token,
                support: self.support.feature(&feature, dialect.version()),
            },
            Request::SendProbe(probe) => match self.start_probe(token, probe, in_flight) {
                Ok(()) => {
                    stats.probes += 1;
                    return;
                }
                Err(error) => {
                    if error == ErrorReply::ProbesExhausted {
                        stats.exhausted += 1;
                    }
                    Reply::Error { token, error }
                }
            },
        };
        reply.write_line(dialect, out);
    }

    /// `send_probe_command()`: the checks in mtr-packet's order, then the engine.
    fn start_probe(
        &self,
        token: i32,
        p: SendProbe,
        in_flight: &mut Probes<'_>,
    ) -> Result<(), ErrorReply> {
        let version_ok = match p.ip_version {
            4 => self.support.ip4,
            6 => self.support.ip6,
            _ => false,
        };
        if !version_ok {
            return Err(ErrorReply::IpVersionNotSupported);
        }
        if p.protocol == Protocol::Sctp && !self.support.sctp {
            return Err(ErrorReply::ProtocolNotSupported);
        }
        if in_flight.len() >= self.config.max_in_flight {
            return Err(ErrorReply::ProbesExhausted);
        }
        if p.out_of_range {
            return Err(ErrorReply::InvalidArgument);
        }
        let target = p.remote().ok_or(ErrorReply::InvalidArgument)?;
        let local_addr = p.local().map_err(|()| ErrorReply::InvalidArgument)?;
        let options = ProbeOptions {
            protocol: p.protocol,
            ttl: p.ttl,
            port: (p.port != 0).then_some(p.port),
            local_addr,
            local_port: (p.local_port != 0).then_some(p.local_port),
            timeout: std::time::Duration::from_secs(p.timeout_secs),
            size: Some(p.size),
            bit_pattern: p.bit_pattern,
            tos: p.tos,
            mark: (p.mark != 0).then_some(p.mark),
            device: p.device,
            constant_flow: false,
        };
        if in_flight.fast.accepts(&options) {
            return in_flight
                .fast
                .submit(token, target, &options)
                .map_err(|e| ErrorReply::from_probe_error(&e));
        }
        let prober = self.prober.clone();
        // The engine picks TCP source ports itself (a free port of its pool, never one
        // still in use), so a probe needs no retry here.
        in_flight.slow.push(Box::pin(async move {
            (token, prober.probe(target, options).await)
        }));
        Ok(())
    }
}
