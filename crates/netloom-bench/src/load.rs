//! The load client: N connections, each with K messages in flight (or streaming), every echo
//! checked byte for byte, round-trip times in an HDR histogram.
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, watch};

use crate::BenchError;
use crate::connect::{connect, source_for};
use crate::payload::{EchoChecker, Pattern};
use crate::procfs::ProcSample;
use crate::report::{Latency, LoadReport};

/// Most messages a streaming connection may have sent and not yet seen echoed; a safety cap,
/// TCP back-pressure is what normally holds the writer back.
pub const STREAM_MAX_IN_FLIGHT: usize = 1024;
/// Most connections one load run opens.
pub const MAX_CONNECTIONS: usize = 100_000;
/// Largest message size.
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;
/// Longest warm-up or measurement.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Most bytes the writer sends in one batch of pipelined messages.
const MAX_BATCH_BYTES: usize = 64 * 1024;
/// How many error descriptions a report keeps.
const ERROR_SAMPLES: usize = 5;
/// Highest offered load (`LoadConfig::rate`), in messages per second.
pub const MAX_RATE: f64 = 10_000_000.0;

/// How each connection sends its messages.
///
/// ```
/// use netloom_bench::load::Mode;
/// assert_eq!(Mode::Pipelined { in_flight: 16 }.in_flight(), 16);
/// assert_eq!(Mode::Streaming.to_string(), "streaming");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// At most `in_flight` messages sent and not yet echoed, per connection.
    Pipelined {
        /// Messages in flight per connection (1 = request/response).
        in_flight: usize,
    },
    /// The writer never waits for echoes: only TCP back-pressure (and
    /// [`STREAM_MAX_IN_FLIGHT`]) holds it back.
    Streaming,
}

impl Mode {
    /// The cap on messages in flight per connection.
    pub fn in_flight(self) -> usize {
        match self {
            Mode::Pipelined { in_flight } => in_flight,
            Mode::Streaming => STREAM_MAX_IN_FLIGHT,
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Pipelined { in_flight } => write!(f, "{in_flight} in flight"),
            Mode::Streaming => f.write_str("streaming"),
        }
    }
}

/// One load run against one echo server.
///
/// ```
/// use netloom_bench::load::{LoadConfig, Mode};
/// let config = LoadConfig::new("127.0.0.1:7".parse().unwrap(), 64, Mode::Pipelined { in_flight: 16 }, 32);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The echo server.
    pub addr: SocketAddr,
    /// Number of connections.
    pub connections: usize,
    /// How messages are sent.
    pub mode: Mode,
    /// Message size in bytes.
    pub size: usize,
    /// Traffic before measuring starts (not recorded).
    pub warmup: Duration,
    /// Length of the measurement.
    pub duration: Duration,
    /// Measurement also ends once this many messages were echoed in it.
    pub max_messages: u64,
    /// Connect timeout of each connection, and of opening all of them together.
    pub connect_timeout: Duration,
    /// After the measurement, how long to wait for outstanding echoes (still checked).
    pub drain_timeout: Duration,
    /// Source addresses, round robin over connections; empty lets the kernel choose.
    pub sources: Vec<IpAddr>,
    /// The server's process id: its CPU time is read before and after the measurement.
    pub server_pid: Option<u32>,
    /// Offered load in messages per second across all connections, or `None` to send as
    /// fast as echoes come back. Paced, each connection sends one message every
    /// `connections / rate` seconds (the connections' schedules spread evenly over that
    /// period), as long as its window has room: below either side's saturation every
    /// server then sees the same load, and its CPU per message compares at that load.
    pub rate: Option<f64>,
}

impl LoadConfig {
    /// A configuration with 1 s warm-up, 5 s measurement and generous timeouts.
    pub fn new(addr: SocketAddr, connections: usize, mode: Mode, size: usize) -> Self {
        Self {
            addr,
            connections,
            mode,
            size,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(5),
            max_messages: u64::MAX,
            connect_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(5),
            sources: Vec::new(),
            server_pid: None,
            rate: None,
        }
    }

    /// Checks every limit, naming the one that is exceeded.
    pub fn validate(&self) -> Result<(), BenchError> {
        let bad = |what: String| Err(BenchError::InvalidConfig { what });
        if self.connections == 0 || self.connections > MAX_CONNECTIONS {
            return bad(format!(
                "connections is {}, must be 1..={MAX_CONNECTIONS}",
                self.connections
            ));
        }
        if self.size == 0 || self.size > MAX_MESSAGE_SIZE {
            return bad(format!(
                "message size is {}, must be 1..={MAX_MESSAGE_SIZE}",
                self.size
            ));
        }
        let in_flight = self.mode.in_flight();
        if in_flight == 0 || in_flight > STREAM_MAX_IN_FLIGHT {
            return bad(format!(
                "in flight is {in_flight}, must be 1..={STREAM_MAX_IN_FLIGHT}"
            ));
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION || self.warmup > MAX_DURATION {
            return bad(format!(
                "warm-up {:?} / duration {:?}: duration must be non-zero, both at most {MAX_DURATION:?}",
                self.warmup, self.duration
            ));
        }
        if self.max_messages == 0 {
            return bad("max messages must be at least 1".into());
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
                return bad(format!(
                    "rate is {rate} msg/s, must be above 0 and at most {MAX_RATE}"
                ));
            }
            if !self.fits_one_batch() {
                return bad(format!(
                    "rate needs a window of at most {MAX_BATCH_BYTES} bytes (in flight x size), \
                     not {} x {} ({})",
                    in_flight, self.size, self.mode
                ));
            }
        }
        Ok(())
    }
}

impl LoadConfig {
    /// Whether every connection's window fits in one write (request/response and shallow
    /// pipelines), so one task drives the connection ([`drive_window`]).
    fn fits_one_batch(&self) -> bool {
        matches!(self.mode, Mode::Pipelined { in_flight } if in_flight * self.size <= MAX_BATCH_BYTES)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Measure,
    Stop,
}

/// State shared by all connections of one run (all on one thread).
struct Shared {
    phase: Cell<Phase>,
    histogram: RefCell<Histogram<u64>>,
    measured: Cell<u64>,
    max_messages: u64,
    limit_reached: Notify,
    stop: watch::Receiver<bool>,
}

impl Shared {
    fn record(&self, rtt: Duration) {
        if self.phase.get() != Phase::Measure {
            return;
        }
        let nanos = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.histogram.borrow_mut().saturating_record(nanos);
        self.measured.set(self.measured.get() + 1);
        if self.measured.get() >= self.max_messages {
            self.limit_reached.notify_one();
        }
    }
}

/// Runs `config` on a new single-threaded runtime (the client uses one core) and reports.
///
/// ```no_run
/// use netloom_bench::load::{run, LoadConfig, Mode};
/// let config = LoadConfig::new("127.0.0.1:7".parse().unwrap(), 1, Mode::Pipelined { in_flight: 1 }, 32);
/// let report = run(&config)?;
/// println!("{:.0} msg/s, p50 {:.1} µs", report.msgs_per_sec, report.latency_us.p50);
/// # Ok::<(), netloom_bench::BenchError>(())
/// ```
pub fn run(config: &LoadConfig) -> Result<LoadReport, BenchError> {
    config.validate()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| BenchError::io("starting the client runtime", err))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run_local(config))
}

async fn run_local(config: &LoadConfig) -> Result<LoadReport, BenchError> {
    let opened = Instant::now();
    let mut streams = Vec::with_capacity(config.connections);
    for index in 0..config.connections {
        let from = source_for(&config.sources, index);
        let left = config.connect_timeout.saturating_sub(opened.elapsed());
        streams.push(connect(from, config.addr, left).await?);
    }
    let histogram = Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(|err| {
        BenchError::InvalidConfig {
            what: format!("histogram bounds: {err}"),
        }
    })?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Rc::new(Shared {
        phase: Cell::new(Phase::Warmup),
        histogram: RefCell::new(histogram),
        measured: Cell::new(0),
        max_messages: config.max_messages,
        limit_reached: Notify::new(),
        stop: stop_rx,
    });
    let pattern = Arc::new(Pattern::new(config.size));
    let mut tasks = tokio::task::JoinSet::new();
    let paced_from = tokio::time::Instant::now();
    let one_batch = config.fits_one_batch();
    for (index, stream) in streams.into_iter().enumerate() {
        let shared = Rc::clone(&shared);
        let pattern = Arc::clone(&pattern);
        let (mode, drain) = (config.mode, config.drain_timeout);
        let pace = config
            .rate
            .map(|rate| Pace::new(paced_from, rate, index, config.connections));
        tasks.spawn_local(async move {
            let result = match mode {
                Mode::Pipelined { in_flight } if one_batch => {
                    let window = Window { in_flight, pace };
                    drive_window(index, stream, window, pattern, drain, &shared).await
                }
                _ => drive_connection(index, stream, mode, pattern, drain, &shared).await,
            };
            result.map_err(|what| format!("connection {index}: {what}"))
        });
    }

    tokio::time::sleep(config.warmup).await;
    let cpu_before = server_cpu(config.server_pid)?;
    let client_before = client_cpu_us();
    let started = Instant::now();
    shared.phase.set(Phase::Measure);
    tokio::select! {
        () = tokio::time::sleep(config.duration) => {}
        () = shared.limit_reached.notified() => {}
    }
    shared.phase.set(Phase::Stop);
    let elapsed = started.elapsed();
    let cpu_after = server_cpu(config.server_pid)?;
    let client_after = client_cpu_us();
    // Every receiver is held by `shared`, so this cannot fail.
    let _ = stop_tx.send(true);

    let mut errors = 0;
    let mut error_samples = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let failure = match joined {
            Ok(Ok(())) => continue,
            Ok(Err(what)) => what,
            Err(join_error) => format!("connection task failed: {join_error}"),
        };
        errors += 1;
        if error_samples.len() < ERROR_SAMPLES {
            error_samples.push(failure);
        }
    }

    let messages = shared.measured.get();
    let secs = elapsed.as_secs_f64();
    let server_cpu_us = cpu_before.zip(cpu_after).map(|(b, a)| a.saturating_sub(b));
    let histogram = shared.histogram.borrow();
    Ok(LoadReport {
        connections: config.connections,
        mode: config.mode,
        size: config.size,
        duration_secs: secs,
        messages,
        msgs_per_sec: messages as f64 / secs,
        bytes_per_sec: (messages as f64 * config.size as f64) / secs,
        latency_us: Latency::from_histogram_nanos(&histogram),
        errors,
        error_samples,
        server_cpu_us,
        server_cpu_us_per_msg: server_cpu_us
            .filter(|_| messages > 0)
            .map(|us| us as f64 / messages as f64),
        client_cpu_percent: client_after.saturating_sub(client_before) as f64 / secs / 1e4,
    })
}

fn server_cpu(pid: Option<u32>) -> Result<Option<u64>, BenchError> {
    pid.map(|pid| ProcSample::read(pid).map(|s| s.cpu_us))
        .transpose()
}

/// This process's user + system CPU time in µs (0 if unavailable).
fn client_cpu_us() -> u64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|usage| {
            let us = |tv: nix::sys::time::TimeVal| {
                (tv.tv_sec().max(0) as u64) * 1_000_000 + tv.tv_usec().max(0) as u64
            };
            us(usage.user_time()) + us(usage.system_time())
        })
        .unwrap_or(0)
}

/// How [`drive_window`] keeps a connection's window full.
struct Window {
    /// Messages in flight at most.
    in_flight: usize,
    /// The connection's send schedule under an offered load, or `None` to top the window
    /// up as soon as echoes come back.
    pace: Option<Pace>,
}

/// One connection's share of an offered load: a send slot every `period`.
struct Pace {
    next: tokio::time::Instant,
    period: Duration,
}

impl Pace {
    /// Connection `index` of `connections` sharing `rate` msg/s: one message per
    /// `connections / rate` seconds each, the first slots spread evenly over that period.
    fn new(from: tokio::time::Instant, rate: f64, index: usize, connections: usize) -> Pace {
        let period = Duration::from_secs_f64(connections as f64 / rate);
        Pace {
            next: from + period.mul_f64(index as f64 / connections as f64),
            period,
        }
    }

    /// Takes the slots due by now, at most `room`. Slots missed while the window was full
    /// (a late echo) are sent as soon as it has room, but at most one period's worth: a
    /// server that fell behind (saturated, or still warming up) is not sent a banked
    /// backlog later, and its msg/s falls below the offered load instead.
    fn take_due(&mut self, room: usize) -> usize {
        let now = tokio::time::Instant::now();
        if let Some(floor) = now.checked_sub(self.period) {
            self.next = self.next.max(floor);
        }
        let mut due = 0;
        while due < room && self.next <= now {
            self.next += self.period;
            due += 1;
        }
        due
    }
}

/// A window that fits in one batch (request/response, shallow pipelines): one task that
/// tops the window up in one write, then reads — no second half, semaphore or `select!` per
/// message, so the client spends less per message than the servers it measures. The
/// whole window fits in the socket buffers, so writing it before reading cannot deadlock.
/// Paced ([`Pace`]), the window is topped up only with the slots that are due, and a read
/// also ends at the next slot.
async fn drive_window(
    index: usize,
    mut stream: TcpStream,
    mut window: Window,
    pattern: Arc<Pattern>,
    drain_timeout: Duration,
    shared: &Shared,
) -> Result<(), String> {
    let id = index as u64;
    let size = pattern.size();
    let in_flight = window.in_flight;
    let mut checker = EchoChecker::new(Arc::clone(&pattern), id);
    let mut buf = vec![0u8; size.clamp(4096, 64 * 1024)];
    let mut batch = Vec::with_capacity(in_flight * size);
    let mut sent_at = VecDeque::with_capacity(in_flight);
    let mut seq = 0u64;
    let mut drain_deadline = None;
    loop {
        if drain_deadline.is_none() && shared.phase.get() == Phase::Stop {
            drain_deadline = Some(tokio::time::Instant::now() + drain_timeout);
        }
        let room = in_flight - sent_at.len();
        if drain_deadline.is_none() && room > 0 {
            let count = match window.pace.as_mut() {
                Some(pace) => pace.take_due(room),
                None => room,
            };
            if count > 0 {
                fill_batch(&mut batch, &mut sent_at, &pattern, (id, seq), count);
                stream.write_all(&batch).await.map_err(|err| {
                    format!("write of messages {seq}..{}: {err}", seq + count as u64)
                })?;
                seq += count as u64;
            }
        }
        let read = match (drain_deadline, window.pace.as_ref()) {
            (Some(_), _) if sent_at.is_empty() => return Ok(()),
            (Some(deadline), _) => tokio::time::timeout_at(deadline, stream.read(&mut buf))
                .await
                .map_err(|_| {
                    format!(
                        "{} echoes still missing {drain_timeout:?} after the end",
                        sent_at.len()
                    )
                })?,
            (None, Some(pace)) if sent_at.len() < in_flight => {
                let next = pace.next;
                tokio::select! {
                    read = stream.read(&mut buf) => read,
                    () = tokio::time::sleep_until(next) => continue,
                }
            }
            (None, _) => stream.read(&mut buf).await,
        };
        let n = read.map_err(|err| format!("read: {err}"))?;
        take_echoes(&buf[..n], &mut checker, &mut sent_at, shared)?;
    }
}

/// Fills `batch` with messages `seq..seq + count` of connection `id` and notes their send
/// time.
fn fill_batch(
    batch: &mut Vec<u8>,
    sent_at: &mut VecDeque<Instant>,
    pattern: &Pattern,
    (id, seq): (u64, u64),
    count: usize,
) {
    batch.resize(count * pattern.size(), 0);
    for (k, msg) in batch.chunks_mut(pattern.size()).enumerate() {
        pattern.fill(id, seq + k as u64, msg);
    }
    sent_at.extend(std::iter::repeat_n(Instant::now(), count));
}

/// Checks a read (`data`, empty when the server closed) against the echoes expected and
/// records the round trip of every message it completes; returns how many it completed.
fn take_echoes(
    data: &[u8],
    checker: &mut EchoChecker,
    sent_at: &mut VecDeque<Instant>,
    shared: &Shared,
) -> Result<u64, String> {
    if data.is_empty() {
        return Err(format!(
            "server closed the connection with {} echoes outstanding",
            sent_at.len()
        ));
    }
    let completed = checker.feed(data).map_err(|m| m.to_string())?;
    let now = Instant::now();
    for _ in 0..completed {
        let sent = sent_at.pop_front().ok_or_else(|| {
            format!(
                "echo of message {} arrived before it was sent",
                checker.next_seq() - 1
            )
        })?;
        shared.record(now - sent);
    }
    Ok(completed)
}

/// Per-connection state shared by its writer and reader halves.
struct Conn {
    window: Semaphore,
    sent_at: RefCell<VecDeque<Instant>>,
    writer_done: Cell<bool>,
    writer_finished: Notify,
}

/// Sends messages until the run stops, reads and checks every echo, then drains.
async fn drive_connection(
    index: usize,
    mut stream: TcpStream,
    mode: Mode,
    pattern: Arc<Pattern>,
    drain_timeout: Duration,
    shared: &Shared,
) -> Result<(), String> {
    let size = pattern.size();
    let conn = Conn {
        window: Semaphore::new(mode.in_flight()),
        sent_at: RefCell::new(VecDeque::with_capacity(mode.in_flight())),
        writer_done: Cell::new(false),
        writer_finished: Notify::new(),
    };
    let (mut rd, mut wr) = stream.split();
    let id = index as u64;
    let writer = async {
        let result = write_messages(id, &mut wr, &pattern, &conn, shared.stop.clone()).await;
        conn.writer_done.set(true);
        conn.writer_finished.notify_one();
        result
    };
    let reader = async {
        let mut stop = shared.stop.clone();
        let mut checker = EchoChecker::new(Arc::clone(&pattern), id);
        let mut buf = vec![0u8; size.clamp(4096, 64 * 1024)];
        let mut drain_deadline = None;
        loop {
            if conn.writer_done.get() && conn.sent_at.borrow().is_empty() {
                return Ok(());
            }
            if drain_deadline.is_none() && *stop.borrow() {
                drain_deadline = Some(tokio::time::Instant::now() + drain_timeout);
            }
            let n = tokio::select! {
                read = rd.read(&mut buf) => read.map_err(|err| format!("read: {err}"))?,
                () = conn.writer_finished.notified() => continue,
                _ = stop.changed(), if drain_deadline.is_none() => continue,
                () = sleep_until(drain_deadline) => {
                    return Err(format!(
                        "{} echoes still missing {drain_timeout:?} after the end",
                        conn.sent_at.borrow().len()
                    ));
                }
            };
            let completed = take_echoes(
                &buf[..n],
                &mut checker,
                &mut conn.sent_at.borrow_mut(),
                shared,
            )?;
            conn.window.add_permits(completed as usize);
        }
    };
    // The reader ends by the drain deadline; the writer may be stuck in a write the server
    // never reads, so the first error ends both.
    tokio::try_join!(writer, reader).map(|_| ())
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn write_messages(
    id: u64,
    wr: &mut tokio::net::tcp::WriteHalf<'_>,
    pattern: &Pattern,
    conn: &Conn,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let size = pattern.size();
    // Messages whose permits are at hand go out in one write, as a pipelining client does.
    let mut batch = Vec::with_capacity(size);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
            permit = conn.window.acquire() => match permit {
                Ok(permit) => permit.forget(),
                Err(_) => return Ok(()),
            },
        }
        let mut count = 1;
        while batch_room(count, size) {
            match conn.window.try_acquire() {
                Ok(permit) => permit.forget(),
                Err(_) => break,
            }
            count += 1;
        }
        fill_batch(
            &mut batch,
            &mut conn.sent_at.borrow_mut(),
            pattern,
            (id, seq),
            count,
        );
        wr.write_all(&batch)
            .await
            .map_err(|err| format!("write of messages {seq}..{}: {err}", seq + count as u64))?;
        seq += count as u64;
    }
}

/// Whether a batch of `count` messages of `size` bytes may take one more.
fn batch_room(count: usize, size: usize) -> bool {
    (count + 1) * size <= MAX_BATCH_BYTES
}
