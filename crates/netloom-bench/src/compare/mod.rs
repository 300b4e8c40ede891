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
/// assert_eq!(cases[0].key(), "1x1-32");
/// assert_eq!(cases[5].key(), "16xstream-65536");
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

    /// A short name for the command line: `CONNECTIONSxIN_FLIGHT-SIZE`, with `stream` for
    /// streaming (`64x16-32`, `16xstream-65536`).
    pub fn key(&self) -> String {
        let depth = match self.mode {
            Mode::Pipelined { in_flight } => in_flight.to_string(),
            Mode::Streaming => "stream".to_string(),
        };
        format!("{}x{depth}-{}", self.connections, self.size)
    }

    /// The case a [`key`](Case::key) names: `CONNECTIONSxIN_FLIGHT-SIZE` or
    /// `CONNECTIONSxstream-SIZE`, each number at least 1 (`4096x1-32`).
    ///
    /// ```
    /// use netloom_bench::compare::Case;
    /// assert_eq!(Case::parse_key("4096x1-32").unwrap().connections, 4096);
    /// assert!(Case::parse_key("0x1-32").is_none() && Case::parse_key("64x16").is_none());
    /// ```
    pub fn parse_key(key: &str) -> Option<Case> {
        let (connections, rest) = key.split_once('x')?;
        let (depth, size) = rest.split_once('-')?;
        let positive = |text: &str| text.parse::<usize>().ok().filter(|n| *n > 0);
        let mode = match depth {
            "stream" => Mode::Streaming,
            n => Mode::Pipelined {
                in_flight: positive(n)?,
            },
        };
        Some(Case::new(positive(connections)?, mode, positive(size)?))
    }

    /// The cases whose [`key`](Case::key)s are listed: the standard ones in the standard
    /// order, then any other shape by its key (e.g. `4096x1-32`); an empty list selects the
    /// standard cases. A key that names no shape is an error that lists the standard ones.
    ///
    /// ```
    /// use netloom_bench::compare::Case;
    /// let picked = Case::select(&["4096x1-32".into(), "16xstream-65536".into(), "1x1-32".into()])?;
    /// let keys: Vec<String> = picked.iter().map(Case::key).collect();
    /// assert_eq!(keys, ["1x1-32", "16xstream-65536", "4096x1-32"]);
    /// assert!(Case::select(&["1y2-32".into()]).is_err());
    /// # Ok::<(), netloom_bench::BenchError>(())
    /// ```
    pub fn select(keys: &[String]) -> Result<Vec<Case>, BenchError> {
        let all = Case::standard();
        if keys.is_empty() {
            return Ok(all);
        }
        let mut extra = Vec::new();
        for key in keys.iter().filter(|k| all.iter().all(|c| c.key() != **k)) {
            let case = Case::parse_key(key).ok_or_else(|| BenchError::InvalidConfig {
                what: format!(
                    "case {key:?} is not CONNECTIONSxIN_FLIGHT-SIZE (or CONNECTIONSxstream-SIZE); \
                     the standard cases are {}",
                    all.iter().map(Case::key).collect::<Vec<_>>().join(", ")
                ),
            })?;
            extra.push(case);
        }
        let mut picked: Vec<Case> = all
            .into_iter()
            .filter(|c| keys.contains(&c.key()))
            .collect();
        picked.extend(extra);
        Ok(picked)
    }
}

/// How the comparison runs.
///
/// ```
/// let plan = netloom_bench::compare::Plan::new(vec!["tokio=tokio-echo".parse()?]);
/// assert_eq!((plan.server_cpu, plan.client_cpu, plan.rounds), (0, 1, 5));
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
    /// Warm-up of each run.
    pub warmup: Duration,
    /// Measurement of each run.
    pub duration: Duration,
    /// Rounds: each round runs every case on every server, servers interleaved within a
    /// case (in a rotated order) so that machine noise hits them alike; tables show the
    /// median round.
    pub rounds: usize,
    /// Load on each fresh server before the first round (JIT and allocator warm-up).
    pub server_warmup: Duration,
    /// Idle connections for the memory measurement (0 skips it).
    pub idle_connections: usize,
    /// Where server stderr logs go.
    pub log_dir: PathBuf,
    /// How long a server may take to start listening.
    pub start_timeout: Duration,
    /// Offered load of every case in msg/s ([`LoadConfig::rate`]), or `None` for as fast
    /// as each server echoes.
    pub rate: Option<f64>,
}

impl Plan {
    /// The standard cases, 5 rounds of 1 s warm-up + 4 s measurement, 10,000 idle
    /// connections.
    pub fn new(servers: Vec<ServerSpec>) -> Self {
        Self {
            servers,
            cases: Case::standard(),
            server_cpu: 0,
            client_cpu: 1,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(4),
            rounds: 5,
            server_warmup: Duration::from_secs(2),
            idle_connections: 10_000,
            log_dir: PathBuf::from("."),
            start_timeout: Duration::from_secs(30),
            rate: None,
        }
    }
}

/// Every round of one case on one server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CaseResult {
    /// One entry per round: the report, or why the run failed.
    pub rounds: Vec<Result<LoadReport, String>>,
}

impl CaseResult {
    /// The successful round with the median msg/s (the lower middle for an even count).
    ///
    /// ```
    /// let empty = netloom_bench::compare::CaseResult::default();
    /// assert!(empty.median().is_none());
    /// ```
    pub fn median(&self) -> Option<&LoadReport> {
        let mut ok: Vec<&LoadReport> = self.rounds.iter().filter_map(|r| r.as_ref().ok()).collect();
        ok.sort_by(|a, b| a.msgs_per_sec.total_cmp(&b.msgs_per_sec));
        ok.get(ok.len().saturating_sub(1) / 2).copied()
    }

    /// Lowest and highest msg/s over the successful rounds.
    pub fn msgs_range(&self) -> Option<(f64, f64)> {
        self.rounds
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|r| (r.msgs_per_sec, r.msgs_per_sec))
            .reduce(|(lo, hi), (a, b)| (lo.min(a), hi.max(b)))
    }

    /// Failed connections over all rounds, plus rounds that failed outright.
    pub fn errors(&self) -> u64 {
        self.rounds
            .iter()
            .map(|r| r.as_ref().map_or(1, |report| report.errors))
            .sum()
    }

    /// The first failure described, if any round failed or saw errors.
    pub fn first_failure(&self) -> Option<String> {
        self.rounds.iter().find_map(|r| match r {
            Err(err) => Some(err.clone()),
            Ok(report) => report.error_samples.first().cloned(),
        })
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
    /// One entry per case, in plan order.
    pub cases: Vec<CaseResult>,
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
    /// Seconds of warm-up per run.
    pub warmup_secs: f64,
    /// Seconds measured per run.
    pub duration_secs: f64,
    /// Rounds run.
    pub rounds: usize,
    /// Offered load of every case in msg/s, or `None` when unpaced.
    pub rate: Option<f64>,
    /// The network namespace's TCP settings, read at the end of the run
    /// ([`crate::procfs::tcp_settings`]).
    pub tcp: String,
}

/// Runs every server of `plan` through every case; `progress` hears about each step.
///
/// First each server's idle-connection memory (one fresh process at a time), then all
/// servers are started fresh and warmed up, and the rounds run case by case with the
/// servers interleaved. A server that fails to start or a run that fails is recorded as an
/// error and the comparison goes on.
///
/// ```no_run
/// use netloom_bench::compare::{run, Plan};
/// let plan = Plan::new(vec!["tokio=target/release/tokio-echo --threads 1".parse()?]);
/// let comparison = run(&plan, |line| eprintln!("{line}"));
/// println!("{}", netloom_bench::compare::table::markdown(&comparison));
/// # Ok::<(), netloom_bench::BenchError>(())
/// ```
pub fn run(plan: &Plan, mut progress: impl FnMut(&str)) -> Comparison {
    let start = |spec: &ServerSpec| {
        let log = plan.log_dir.join(format!("{}.stderr.log", spec.name));
        ServerProcess::start(spec, plan.server_cpu, &log, plan.start_timeout)
    };
    let mut results: Vec<ServerResult> = plan
        .servers
        .iter()
        .map(|spec| ServerResult {
            name: spec.name.clone(),
            command: spec.command.clone(),
            threads: None,
            cases: vec![CaseResult::default(); plan.cases.len()],
            idle: (plan.idle_connections > 0).then(|| {
                progress(&format!(
                    "{}: {} idle connections",
                    spec.name, plan.idle_connections
                ));
                start(spec)
                    .and_then(|server| {
                        crate::idle::measure(&IdleConfig::new(
                            server.addr(),
                            server.pid(),
                            plan.idle_connections,
                        ))
                    })
                    .map_err(|err| err.to_string())
            }),
        })
        .collect();

    let servers: Vec<Result<ServerProcess, String>> = plan
        .servers
        .iter()
        .map(|spec| {
            let server = start(spec).map_err(|err| err.to_string())?;
            progress(&format!("{}: warming up", spec.name));
            let warm = Case::new(64, Mode::Pipelined { in_flight: 16 }, 32);
            let unpaced = Plan {
                warmup: Duration::ZERO,
                duration: plan.server_warmup,
                rate: None,
                ..plan.clone()
            };
            if let Err(err) = load(&server, &warm, &unpaced) {
                progress(&format!("{}: warm-up failed: {err}", spec.name));
            }
            Ok(server)
        })
        .collect();

    for round in 0..plan.rounds {
        for (case_index, case) in plan.cases.iter().enumerate() {
            for k in 0..servers.len() {
                let index = (k + round + case_index) % servers.len();
                let outcome = match &servers[index] {
                    Ok(server) => {
                        let outcome = load(server, case, plan);
                        let result = &mut results[index];
                        if result.threads.is_none() {
                            result.threads = ProcSample::read(server.pid()).ok().map(|s| s.threads);
                        }
                        outcome.map_err(|err| err.to_string())
                    }
                    Err(err) => Err(err.clone()),
                };
                progress(&format!(
                    "round {}/{}, {}, {}: {}",
                    round + 1,
                    plan.rounds,
                    case.name,
                    results[index].name,
                    match &outcome {
                        Ok(r) => format!(
                            "{:.0} msg/s, p50 {:.1} µs, {} errors",
                            r.msgs_per_sec, r.latency_us.p50, r.errors
                        ),
                        Err(err) => format!("failed: {err}"),
                    }
                ));
                results[index].cases[case_index].rounds.push(outcome);
            }
        }
    }
    Comparison {
        cases: plan.cases.clone(),
        servers: results,
        warmup_secs: plan.warmup.as_secs_f64(),
        duration_secs: plan.duration.as_secs_f64(),
        rounds: plan.rounds,
        rate: plan.rate,
        tcp: crate::procfs::tcp_settings(),
    }
}

/// One load run of `case` against `server` with the plan's warm-up, duration and rate,
/// reading the server's CPU time.
fn load(server: &ServerProcess, case: &Case, plan: &Plan) -> Result<LoadReport, BenchError> {
    let mut config = LoadConfig::new(server.addr(), case.connections, case.mode, case.size);
    config.warmup = plan.warmup;
    config.duration = plan.duration;
    config.rate = plan.rate;
    config.server_pid = Some(server.pid());
    crate::load::run(&config)
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
