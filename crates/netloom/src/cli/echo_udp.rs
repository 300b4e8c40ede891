//! `netloom echo --udp`: every sender is a tracked peer with its own pipeline
//! (netloom-channel's `UdpBootstrap`); this module is the application around it: the
//! signals, the periodic peer-count reports and their JSON.
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use netloom_channel::udp::{UdpBootstrap, UdpConfig, UdpStats};
use netloom_channel::{EchoHandler, EventLoopGroup, FramingHandler};

use super::echo::EchoArgs;
use super::output;
use super::serve::StopSignals;

/// One report: text for stderr, or one JSON object per line for stdout.
fn report(stats: &UdpStats, json: bool, last: bool) -> String {
    let when = if last { "final" } else { "periodic" };
    if json {
        serde_json::json!({
            "report": when,
            "peers": stats.peers,
            "peak_peers": stats.peak_peers,
            "accepted": stats.accepted,
            "rejected": stats.rejected,
            "refused": stats.refused,
            "evicted": stats.evicted,
            "expired": stats.expired,
            "closed": stats.closed,
            "datagrams_in": stats.datagrams_in,
            "datagrams_out": stats.datagrams_out,
            "truncated": stats.truncated,
            "send_errors": stats.send_errors,
        })
        .to_string()
    } else {
        format!("udp echo {when}: {stats}")
    }
}

/// Writes a report line where it belongs: JSON to stdout, text to stderr.
fn emit(stats: &UdpStats, json: bool, last: bool) -> std::io::Result<()> {
    let line = report(stats, json, last);
    if json {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()
    } else {
        writeln!(std::io::stderr(), "{line}")
    }
}

/// Echoes datagrams until SIGINT/SIGTERM/SIGHUP, then prints the final counts; exit 0.
pub fn run(args: &EchoArgs, stop: StopSignals) -> anyhow::Result<ExitCode> {
    let mut config = UdpConfig {
        idle_timeout: args.udp_idle_timeout,
        max_peers: args.udp_max_peers,
        ..UdpConfig::default()
    };
    // One budget for what every peer's framer holds of unfinished frames (`--buffer-budget`).
    config.channel.memory_budget =
        Some(netloom_channel::MemoryBudget::new(args.guard.buffer_budget));
    config
        .validate()
        .map_err(|e| output::usage(e.to_string()))?;
    let group = EventLoopGroup::new(1, "udp-echo")?;
    let framing = args.framing.clone();
    let endpoint = UdpBootstrap::new(&group)
        .config(config)
        .handler(move |p| {
            if let Some(f) = &framing {
                p.add_last("framing", FramingHandler::new(f.clone(), f.clone()))?;
            }
            p.add_last("echo", EchoHandler)?;
            Ok(())
        })
        .bind(args.listen)
        .sync()
        .with_context(|| format!("UDP echo on {}", args.listen))?;
    println!("{}", endpoint.local_addr());
    let StopSignals { rt, mut signals } = stop;
    rt.block_on(async {
        let mut tick = tokio::time::interval(args.udp_report_interval);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = signals.recv() => break,
                _ = tick.tick() => emit(&endpoint.stats(), args.json, false)?,
            }
        }
        anyhow::Ok(())
    })?;
    endpoint.close();
    rt.block_on(std::future::IntoFuture::into_future(
        endpoint.close_future(),
    ));
    emit(&endpoint.stats(), args.json, true)?;
    group
        .shutdown_gracefully(Duration::ZERO, Duration::from_secs(1))
        .sync()?;
    Ok(ExitCode::SUCCESS)
}
