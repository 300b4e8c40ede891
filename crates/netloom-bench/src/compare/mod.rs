//! The side-by-side comparison: every server through every case, in one run.
pub mod server;
pub mod table;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::BenchError;
use crate::idle::{IdleConfig, IdleReport};
use crate::load::{LoadConfig, Mode};
use crate::procfs::ProcSample;
use crate::report::LoadReport;
use server::{ServerProcess, ServerSpec};

/// One load shape, run against every server.
///
/// ```
/// let cases = netloom_bench::compare::Case::standard();
/// assert_eq!(cases.len(), 6);
/// assert_eq!(cases[0].name, "1 conn x 1 in flight, 32 B");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Case {
    /// Title of the case's table.
    pub name: String,
    /// Connections.
    pub connections: usize,
    /// Messages in flight per connection, or streaming.
    pub mode: Mode,
    /// Message size in bytes.
    pub size: usize,
}

impl Case {
    /// A case named after its shape.
    pub fn new(connections: usize, mode: Mode, size: usize) -> Self {
        let conns = if connections == 1 { "conn" } else { "conns" };
        let size_text = if size > 1024 && size.is_multiple_of(1024) {
            format!("{} KiB", size / 1024)
        } else {
            format!("{size} B")
        };
        Self {
            name: format!("{connections} {conns} x {mode}, {size_text}"),
            connections,
            mode,
            size,
        }
    }

    /// The cases of the netloom-channel issue: 1x1 at 32 B and 1024 B, 64x1, 512x1,
    /// 64x16 pipelined, 16 connections streaming 64 KiB messages.
    pub fn standard() -> Vec<Case> {
        let one = Mode::Pipelined { in_flight: 1 };
        vec![
            Case::new(1, one, 32),
            Case::new(1, one, 1024),
            Case::new(64, one, 32),
            Case::new(512, one, 32),
            Case::new(64, Mode::Pipelined { in_flight: 16 }, 32),
            Case::new(16, Mode::Streaming, 64 * 1024),
        ]
    }
}

/// How the comparison runs.
///
/// ```
/// let plan = netloom_bench::compare::Plan::new(vec!["tokio=tokio-echo".parse()?]);
/// assert_eq!((plan.server_cpu, plan.client_cpu), (0, 1));
/// # Ok::<(), netloom_bench::BenchError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Plan {
    /// The servers, in table order.
    pub servers: Vec<ServerSpec>,
    /// The load cases.
    pub cases: Vec<Case>,
    /// Core the servers are pinned to.
    pub server_cpu: usize,
    /// Core the client is pinned to (the caller pins itself).
    pub client_cpu: usize,
    /// Warm-up of each case.
    pub warmup: Duration,
    /// Measurement of each case.
    pub duration: Duration,
    /// Load on a fresh server before its first case (JIT and allocator warm-up).
    pub server_warmup: Duration,
    /// Idle connections for the memory measurement (0 skips it).
    pub idle_connections: usize,
    /// Where server stderr logs go.
    pub log_dir: PathBuf,
    /// How long a server may take to start listening.
    pub start_timeout: Duration,
}

impl Plan {
    /// The standard cases, 1 s warm-up + 5 s per case, 10,000 idle connections.
    pub fn new(servers: Vec<ServerSpec>) -> Self {
        Self {
            servers,
            cases: Case::standard(),
            server_cpu: 0,
            client_cpu: 1,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(5),
            server_warmup: Duration::from_secs(2),
            idle_connections: 10_000,
            log_dir: PathBuf::from("."),
            start_timeout: Duration::from_secs(30),
        }
    }
}

/// Everything measured for one server.
#[derive(Debug, Clone, Serialize)]
pub struct ServerResult {
    /// The server's name.
    pub name: String,
    /// The command that ran it.
    pub command: Vec<String>,
    /// Threads of the server process while under load (from /proc).
    pub threads: Option<u64>,
    /// One entry per case, in plan order: the report, or why the case failed.
    pub cases: Vec<Result<LoadReport, String>>,
    /// Idle-connection memory, or why it failed (None when skipped).
    pub idle: Option<Result<IdleReport, String>>,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The cases, in order.
    pub cases: Vec<Case>,
    /// One result per server, in order.
    pub servers: Vec<ServerResult>,
    /// Seconds of warm-up and measurement per case.
    pub warmup_secs: f64,
    /// Seconds measured per case.
    pub duration_secs: f64,
}

/// Runs every server of `plan` through every case; `progress` hears about each step.
///
/// A server that fails to start or a case that fails is recorded as an error and the run
/// goes on.
///
/// ```no_run
/// use netloom_bench::compare::{run, Plan};
/// let plan = Plan::new(vec!["tokio=target/release/tokio-echo --threads 1".parse()?]);
/// let comparison = run(&plan, |line| eprintln!("{line}"));
/// println!("{}", netloom_bench::compare::table::markdown(&comparison));
/// # Ok::<(), netloom_bench::BenchError>(())
/// ```
pub fn run(plan: &Plan, mut progress: impl FnMut(&str)) -> Comparison {
    let servers = plan
        .servers
        .iter()
        .map(|spec| run_server(plan, spec, &mut progress))
        .collect();
    Comparison {
        cases: plan.cases.clone(),
        servers,
        warmup_secs: plan.warmup.as_secs_f64(),
        duration_secs: plan.duration.as_secs_f64(),
    }
}

fn run_server(plan: &Plan, spec: &ServerSpec, progress: &mut impl FnMut(&str)) -> ServerResult {
    let log = plan.log_dir.join(format!("{}.stderr.log", spec.name));
    let start = || ServerProcess::start(spec, plan.server_cpu, &log, plan.start_timeout);
    let idle = (plan.idle_connections > 0).then(|| {
        progress(&format!(
            "{}: {} idle connections",
            spec.name, plan.idle_connections
        ));
        let server = start()?;
        crate::idle::measure(&IdleConfig::new(
            server.addr(),
            server.pid(),
            plan.idle_connections,
        ))
    });
    let idle = idle.map(|result| result.map_err(|err| err.to_string()));
    let mut result = ServerResult {
        name: spec.name.clone(),
        command: spec.command.clone(),
        threads: None,
        cases: Vec::new(),
        idle,
    };
    let server = match start() {
        Ok(server) => server,
        Err(err) => {
            let err = err.to_string();
            result.cases = plan.cases.iter().map(|_| Err(err.clone())).collect();
            return result;
        }
    };
    let load = |connections, mode, size, warmup: Duration, duration| {
        let mut config = LoadConfig::new(server.addr(), connections, mode, size);
        config.warmup = warmup;
        config.duration = duration;
        config.server_pid = Some(server.pid());
        crate::load::run(&config)
    };
    progress(&format!("{}: warming up", spec.name));
    let warm = load(
        64,
        Mode::Pipelined { in_flight: 16 },
        32,
        Duration::ZERO,
        plan.server_warmup,
    );
    if let Err(err) = warm {
        progress(&format!("{}: warm-up failed: {err}", spec.name));
    }
    for case in &plan.cases {
        progress(&format!("{}: {}", spec.name, case.name));
        let outcome = load(
            case.connections,
            case.mode,
            case.size,
            plan.warmup,
            plan.duration,
        )
        .map_err(|err| err.to_string());
        if let Ok(report) = &outcome {
            progress(&format!(
                "  {:.0} msg/s, p50 {:.1} µs, p99 {:.1} µs, {} errors",
                report.msgs_per_sec, report.latency_us.p50, report.latency_us.p99, report.errors
            ));
        }
        if result.threads.is_none() {
            result.threads = ProcSample::read(server.pid()).ok().map(|s| s.threads);
        }
        result.cases.push(outcome);
    }
    result
}

/// Pins the calling thread (and threads it starts later) to `cpu`.
///
/// ```no_run
/// netloom_bench::compare::pin_current_thread(1)?;
/// # Ok::<(), netloom_bench::BenchError>(())
/// ```
pub fn pin_current_thread(cpu: usize) -> Result<(), BenchError> {
    use nix::sched::{CpuSet, sched_setaffinity};
    let mut set = CpuSet::new();
    set.set(cpu)
        .and_then(|()| sched_setaffinity(nix::unistd::Pid::from_raw(0), &set))
        .map_err(|errno| BenchError::io(format!("pinning to CPU {cpu}"), errno.into()))
}

/// Raises this process's open-file soft limit to its hard limit (children inherit it) and
/// returns the new limit.
///
/// ```no_run
/// let limit = netloom_bench::compare::raise_nofile_limit()?;
/// assert!(limit >= 1024);
/// # Ok::<(), netloom_bench::BenchError>(())
/// ```
pub fn raise_nofile_limit() -> Result<u64, BenchError> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let err = |errno: nix::errno::Errno| BenchError::io("raising RLIMIT_NOFILE", errno.into());
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(err)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(err)?;
    Ok(hard)
}
