//! `bench-echo`: every echo server through every case, side by side, in one run.
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use netloom_bench::compare::server::ServerSpec;
use netloom_bench::compare::{Plan, table};

/// Runs the echo comparison and writes results.md and results.json.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// A server as NAME=PROGRAM ARG... (repeatable, in table order). `{port}` in an argument
    /// is replaced by a port held for the server (it must set SO_REUSEADDR to listen there);
    /// otherwise the server prints its address first.
    #[arg(long = "server", required = true)]
    servers: Vec<ServerSpec>,
    /// Core the servers are pinned to.
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    /// Core this client is pinned to.
    #[arg(long, default_value_t = 1)]
    client_cpu: usize,
    /// Warm-up seconds per case.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Measured seconds per case.
    #[arg(long, default_value_t = 4.0)]
    duration: f64,
    /// Rounds (servers interleaved within each case; tables show the median round, ratios
    /// the median of per-round ratios).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Idle connections for the memory measurement (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    idle_connections: usize,
    /// Run only this case (repeatable; default: the standard ones): `1x1-32`, `1x1-1024`,
    /// `64x1-32`, `512x1-32`, `64x16-32`, `16xstream-65536`, or any other shape by its key,
    /// `CONNECTIONSxIN_FLIGHT-SIZE` (`4096x1-32`).
    #[arg(long = "case")]
    cases: Vec<String>,
    /// Offered load in messages per second across each case's connections (e.g. 100000):
    /// each connection sends on a fixed schedule instead of as soon as its echo returns.
    /// Below either side's saturation, every server gets the same load and its CPU per
    /// message is compared at that load. Needs a window of at most 64 KiB per connection.
    #[arg(long)]
    rate: Option<f64>,
    /// Directory for results.md, results.json and server logs.
    #[arg(long, default_value = "target/bench-echo")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let secs = |flag: &str, value: f64| {
        Duration::try_from_secs_f64(value).with_context(|| format!("{flag} {value}"))
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let nofile = netloom_bench::compare::raise_nofile_limit()?;
    anyhow::ensure!(
        nofile as usize > args.idle_connections + 100,
        "RLIMIT_NOFILE hard limit {nofile} is too low for {} idle connections (run `ulimit -n 65536` as root)",
        args.idle_connections
    );
    netloom_bench::compare::pin_current_thread(args.client_cpu)?;
    anyhow::ensure!(
        (1..=20).contains(&args.rounds),
        "--rounds {} must be 1..=20",
        args.rounds
    );
    for (i, spec) in args.servers.iter().enumerate() {
        anyhow::ensure!(
            args.servers[..i]
                .iter()
                .all(|other| other.name != spec.name),
            "--server name {:?} is given twice",
            spec.name
        );
    }
    let mut plan = Plan::new(args.servers);
    plan.cases = netloom_bench::compare::Case::select(&args.cases)?;
    plan.server_cpu = args.server_cpu;
    plan.client_cpu = args.client_cpu;
    plan.warmup = secs("--warmup", args.warmup)?;
    plan.duration = secs("--duration", args.duration)?;
    plan.rounds = args.rounds;
    plan.idle_connections = args.idle_connections;
    plan.rate = args.rate;
    plan.log_dir = args.out.clone();
    let comparison = netloom_bench::compare::run(&plan, |line| eprintln!("bench-echo: {line}"));
    let markdown = table::markdown(&comparison);
    let md_path = args.out.join("results.md");
    std::fs::write(&md_path, &markdown)
        .with_context(|| format!("writing {}", md_path.display()))?;
    let json_path = args.out.join("results.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&comparison)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    println!("{markdown}");
    eprintln!(
        "bench-echo: wrote {} and {}",
        md_path.display(),
        json_path.display()
    );
    Ok(())
}
