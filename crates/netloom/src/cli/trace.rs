//! `netloom trace`: an mtr `--report`-style traceroute with live progress.
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use netloom::probe::trace::{self, HopReport, TraceConfig};

use super::probe::ProbeSettings;

/// Arguments of `netloom trace`.
#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// Host name or address to trace.
    pub host: String,
    /// Rounds of probes (one per hop each).
    #[arg(long, short = 'c', default_value_t = 10)]
    pub cycles: u32,
    /// Largest TTL probed.
    #[arg(long, short = 'm', default_value_t = 30, value_parser = clap::value_parser!(u8).range(1..))]
    pub max_ttl: u8,
    /// First TTL probed.
    #[arg(long, short = 'f', default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
    pub first_ttl: u8,
    /// Seconds between the starts of two cycles.
    #[arg(long, short = 'i', default_value_t = 1.0)]
    pub interval: f64,
    #[command(flatten)]
    pub settings: ProbeSettings,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the trace, then prints the report.
pub fn run(args: TraceArgs) -> anyhow::Result<ExitCode> {
    if !(args.interval.is_finite() && (0.0..=3600.0).contains(&args.interval)) {
        anyhow::bail!(
            "--interval {} is not a number of seconds in 0..=3600",
            args.interval
        );
    }
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    rt.block_on(async {
        let (target, prober) = args.settings.open(&args.host).await?;
        let config = TraceConfig {
            cycles: args.cycles,
            first_ttl: args.first_ttl,
            max_ttl: args.max_ttl,
            interval: Duration::from_secs_f64(args.interval),
            probe: args.settings.options(args.max_ttl),
        };
        let bar = ProgressBar::new(u64::from(args.cycles) * u64::from(args.max_ttl));
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}] {pos} probes")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(format!("tracing {} ({target})", args.host));
        let trace = trace::run(&prober, target, &config, |t, done| {
            bar.set_position(done);
            if let Some(hop) = t.reached_at() {
                bar.set_message(format!(
                    "tracing {} ({target}): reached at hop {hop}",
                    args.host
                ));
            }
        })
        .await?;
        bar.finish_and_clear();
        let report = trace.report();
        if args.json {
            let doc = serde_json::json!({
                "host": args.host,
                "target": target,
                "protocol": args.settings.protocol,
                "cycles": args.cycles,
                "reached_at": trace.reached_at(),
                "hops": report,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        } else {
            print!("{}", table(&args.host, &report));
        }
        Ok(if trace.reached_at().is_some() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

/// The report in mtr `--report` layout.
fn table(host: &str, rows: &[HopReport]) -> String {
    let mut out = format!(
        "HOST: {host:<30} {:>6} {:>5} {:>6} {:>6} {:>6} {:>6} {:>6}\n",
        "Loss%", "Snt", "Last", "Avg", "Best", "Wrst", "StDev"
    );
    for r in rows {
        let name = match r.hosts.first() {
            Some(h) => h.to_string(),
            None => "???".into(),
        };
        out += &format!(
            "{:>3}.|-- {:<28} {:>5.1}% {:>5} {:>6.1} {:>6.1} {:>6.1} {:>6.1} {:>6.1}\n",
            r.hop,
            name,
            r.loss_percent,
            r.sent,
            r.last_ms,
            r.avg_ms,
            r.best_ms,
            r.worst_ms,
            r.stdev_ms
        );
        for other in r.hosts.iter().skip(1) {
            out += &format!("      {other}\n");
        }
        for l in &r.mpls {
            out += &format!("       [MPLS: {l}]\n");
        }
    }
    out
}
