//! `netloom trace`: a traceroute with mtr's flags and mtr's `--report` layout.
//!
//! Exit codes: 0 the target answered; 1 it did not (the report is printed either way);
//! 2 a usage error (checked before any probe is sent) or a failure to start.
use std::io::IsTerminal as _;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use netloom::probe::Protocol;
use netloom::probe::trace::{self, TraceConfig};

use super::probe::{PathSettings, ProbeSettings};

pub mod live;
mod names;
mod report;

/// Arguments of `netloom trace`; the short flags are mtr's where they mean the same.
#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// Host name or address to trace.
    pub host: String,
    /// Report mode: probe `-c` cycles, then print the table (what output that is not a
    /// terminal gets). Without it, a terminal gets the live view.
    #[arg(long, short = 'r')]
    pub report: bool,
    /// Wide report: never truncate host names.
    #[arg(long = "report-wide", short = 'w')]
    pub report_wide: bool,
    /// Numeric output: show addresses, do not look names up. Without it every responder's
    /// name is looked up (reverse DNS, cached, never holding probes back).
    #[arg(long = "no-dns", short = 'n')]
    pub no_dns: bool,
    /// Show each responder's AS number and AS name (DNS TXT lookups at origin.asn.cymru.com
    /// and AS<n>.asn.cymru.com, as mtr and trippy do).
    #[arg(long = "aslookup", short = 'z')]
    pub aslookup: bool,
    /// Rounds of probes (one per hop each), 1..=1000000 [default: 10 for a report,
    /// unlimited in the live view].
    #[arg(long = "report-cycles", short = 'c', visible_alias = "cycles",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub cycles: Option<u32>,
    /// Largest TTL probed, 1..=255.
    #[arg(long = "max-ttl", short = 'm', default_value_t = 30, value_parser = clap::value_parser!(u8).range(1..))]
    pub max_ttl: u8,
    /// First TTL probed, 1..=255 (at most --max-ttl).
    #[arg(long = "first-ttl", short = 'f', default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
    pub first_ttl: u8,
    /// Seconds between the starts of two cycles, 0..=3600.
    #[arg(long, short = 'i', default_value_t = 1.0, value_parser = parse_seconds)]
    pub interval: f64,
    /// Seconds to wait for each probe's answer, 0..=3600.
    #[arg(long, short = 'Z', default_value_t = 2.0, value_parser = parse_seconds)]
    pub timeout: f64,
    /// TCP SYN probes instead of ICMP echo.
    #[arg(long, short = 'T', conflicts_with_all = ["udp", "sctp"])]
    pub tcp: bool,
    /// UDP probes instead of ICMP echo.
    #[arg(long, short = 'u', conflicts_with = "sctp")]
    pub udp: bool,
    /// SCTP probes instead of ICMP echo.
    #[arg(long)]
    pub sctp: bool,
    /// Destination port of TCP/UDP/SCTP probes, 1..=65535.
    #[arg(long, short = 'P', value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Source port of TCP/UDP/SCTP probes, 1..=65535.
    #[arg(long = "localport", short = 'L', value_parser = clap::value_parser!(u16).range(1..))]
    pub local_port: Option<u16>,
    /// Size of each probe packet (IP header included) in bytes, 28..=9000.
    #[arg(long = "psize", short = 's', value_parser = clap::value_parser!(u16).range(28..=9000))]
    pub size: Option<u16>,
    /// Byte the payload is filled with, 0..=255.
    #[arg(long = "bitpattern", short = 'B', default_value_t = 0)]
    pub bit_pattern: u8,
    /// IPv4 type of service / IPv6 traffic class, 0..=255.
    #[arg(long, short = 'Q', default_value_t = 0)]
    pub tos: u8,
    /// Routing mark (SO_MARK, needs CAP_NET_ADMIN), 1..=4294967295.
    #[arg(long, short = 'M', value_parser = clap::value_parser!(u32).range(1..))]
    pub mark: Option<u32>,
    /// Source address of the probes.
    #[arg(long, short = 'a')]
    pub address: Option<IpAddr>,
    /// Send through this interface only.
    #[arg(long, short = 'I')]
    pub interface: Option<String>,
    /// Paris/Dublin multipath: run N UDP flows at once (source ports -L/--localport, default
    /// 40000, and up; constant within a flow), and show per hop every responder and the
    /// flows it answered, 1..=256. Needs -u; the live view shows the flows together.
    #[arg(long, requires = "udp", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub flows: Option<u16>,
    /// Multipath Detection Algorithm over UDP flows: per hop, as many flows as needed to
    /// find every next hop at 95 % confidence (6 for one, 11 for two, ...). Needs -u;
    /// always a report; the probe count is printed.
    #[arg(long, requires = "udp", conflicts_with = "flows")]
    pub mda: bool,
    /// Path MTU per hop, as tracepath finds it: before the trace, ICMP probes with the
    /// Don't Fragment bit, hop by hop, as large as the egress interface allows, resent at
    /// the size an ICMP "fragmentation needed" / ICMPv6 "packet too big" names; shown as
    /// a PMTU column (report, CSV, live view) and "pmtu" per hop (JSON). Needs raw sockets.
    #[arg(long)]
    pub pmtu: bool,
    /// Address family, flow and socket choices (the same flags for `probe` and `trace`).
    #[command(flatten)]
    pub path: PathSettings,
    /// Print the report as JSON.
    #[arg(long, short = 'j', conflicts_with = "csv")]
    pub json: bool,
    /// Print the report as CSV, mtr's columns.
    #[arg(long, short = 'C')]
    pub csv: bool,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds in 0..=3600")),
    }
}

impl TraceArgs {
    fn protocol(&self) -> Protocol {
        if self.tcp {
            Protocol::Tcp
        } else if self.udp {
            Protocol::Udp
        } else if self.sctp {
            Protocol::Sctp
        } else {
            Protocol::Icmp
        }
    }

    /// The checks clap cannot express; failing one is a usage error (exit 2).
    fn validate(&self) -> Result<(), String> {
        if self.first_ttl > self.max_ttl {
            return Err(format!(
                "--first-ttl {} is above --max-ttl {}",
                self.first_ttl, self.max_ttl
            ));
        }
        if self.protocol() == Protocol::Icmp {
            for (given, flag) in [
                (self.port.is_some(), "-P/--port"),
                (self.local_port.is_some(), "-L/--localport"),
            ] {
                if given {
                    return Err(format!(
                        "{flag} applies to -T/--tcp, -u/--udp or --sctp probes, not ICMP"
                    ));
                }
            }
        }
        Ok(())
    }

    fn settings(&self) -> ProbeSettings {
        ProbeSettings {
            protocol: self.protocol(),
            port: self.port,
            local_port: self.local_port,
            timeout: self.timeout,
            size: self.size.map(usize::from),
            bit_pattern: self.bit_pattern,
            tos: self.tos,
            mark: self.mark,
            local: self.address,
            device: self.interface.clone(),
            path: self.path.clone(),
        }
    }
}

/// Runs the trace, then prints the report (exit codes in the module documentation).
pub fn run(args: TraceArgs) -> anyhow::Result<ExitCode> {
    if let Err(why) = args.validate() {
        eprintln!("netloom trace: {why}");
        return Ok(ExitCode::from(2));
    }
    let settings = args.settings();
    let start = std::time::SystemTime::now();
    let live =
        !(args.report || args.json || args.csv || args.mda) && std::io::stdout().is_terminal();
    let cycles = args
        .cycles
        .unwrap_or(if live { u32::MAX } else { DEFAULT_CYCLES });
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let (target, prober) = rt.block_on(settings.open(&args.host))?;
    let config = TraceConfig {
        cycles,
        first_ttl: args.first_ttl,
        max_ttl: args.max_ttl,
        interval: Duration::from_secs_f64(args.interval),
        probe: settings.options(args.max_ttl),
    };
    if live {
        let names = {
            let _inside = rt.enter();
            lookups(&args)?
        };
        let (dns, asn) = (!args.no_dns, args.aslookup);
        let label: Option<live::Label> =
            names.map(|n| -> live::Label { Box::new(move |ip| n.label(ip, dns, asn)) });
        let flows = args
            .flows
            .map(|n| (n, args.local_port.unwrap_or(FLOW_PORT)));
        let pmtu = args.pmtu.then(|| pmtu_config(&args));
        return run_live(&rt, args.host, prober, target, (config, flows, pmtu), label);
    }
    rt.block_on(async {
        let bar = ProgressBar::new(u64::from(cycles) * u64::from(args.max_ttl));
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}] {pos} probes")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let mtus = if args.pmtu {
            bar.set_message(format!("path MTU towards {} ({target})", args.host));
            let mtus = trace::discover_pmtu(target, &pmtu_config(&args)).await?;
            warn_of_black_holes(&mtus);
            mtus
        } else {
            Vec::new()
        };
        bar.set_message(format!("tracing {} ({target})", args.host));
        let mut mda_probes = None;
        let (mut trace, flows) = match args.flows {
            None if args.mda => {
                let first = args.local_port.unwrap_or(FLOW_PORT);
                let (flows, probes) = trace::run_mda(&prober, target, &config, first).await?;
                mda_probes = Some(probes);
                (flows.merged(), Some(flows))
            }
            Some(n) => {
                let first = args.local_port.unwrap_or(FLOW_PORT);
                let flows = trace::run_flows(&prober, target, &config, n, first, |_, done| {
                    bar.set_position(done);
                })
                .await?;
                (flows.merged(), Some(flows))
            }
            None => {
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
                (trace, None)
            }
        };
        bar.finish_and_clear();
        trace.set_pmtu(&mtus);
        let rows = trace.report();
        let local = report::local_host_name();
        let names = lookups(&args)?;
        if let Some(n) = &names {
            let ips: Vec<IpAddr> = rows.iter().flat_map(|r| r.hosts.iter().copied()).collect();
            n.settle(&ips, !args.no_dns, args.aslookup, NAMES_LIMIT)
                .await;
        }
        let plain = |ip: IpAddr| ip.to_string();
        let named = |ip: IpAddr| match &names {
            Some(n) => n.label(ip, !args.no_dns, args.aslookup),
            None => ip.to_string(),
        };
        let label: report::Label<'_> = if names.is_some() { &named } else { &plain };
        if args.json {
            let doc = serde_json::json!({
                "local_host": local,
                "host": args.host,
                "target": target,
                "protocol": settings.protocol,
                "cycles": cycles,
                "reached_at": trace.reached_at(),
                "hops": rows,
            });
            let mut doc = doc;
            if let Some(f) = &flows {
                doc["flows"] = flow_map(f, &rows);
            }
            if let Some(p) = mda_probes {
                doc["mda_probes"] = p.into();
            }
            if let Some(n) = &names {
                let mut map = serde_json::Map::new();
                for r in &rows {
                    for ip in &r.hosts {
                        let mut entry = serde_json::Map::new();
                        if let Some(name) = n.name(*ip).filter(|_| !args.no_dns) {
                            entry.insert("name".into(), name.into());
                        }
                        if args.aslookup
                            && let Some(asn) = n.asn(*ip)
                        {
                            entry.insert("asn".into(), asn.into());
                            if let Some(as_name) = n.as_name(*ip) {
                                entry.insert("as_name".into(), as_name.into());
                            }
                        }
                        map.insert(ip.to_string(), entry.into());
                    }
                }
                doc["names"] = map.into();
            }
            println!("{}", serde_json::to_string(&doc)?);
        } else if args.csv {
            print!("{}", report::csv(&args.host, start, &rows, label));
        } else {
            println!("Start: {}", report::iso_time(start));
            print!("{}", report::table(&local, &rows, args.report_wide, label));
            if let Some(f) = &flows {
                print!("{}", report::flows(f, &rows));
            }
            if let Some(p) = mda_probes {
                println!("MDA (95 %): {p} probes");
            }
        }
        Ok(exit_code(&trace))
    })
}

/// The path MTU probes' settings: the trace's TTL range and timeout.
/// Names, on stderr, each hop found behind a PMTU black hole (the report's PMTU column
/// stays a number for scripts; JSON says `"pmtu_black_hole": true`).
fn warn_of_black_holes(mtus: &[trace::HopMtu]) {
    for h in mtus.iter().filter(|h| h.black_hole) {
        let who = h
            .responder
            .map_or_else(|| "?".to_owned(), |a| a.to_string());
        let size = h.mtu.unwrap_or(0);
        eprintln!(
            "netloom trace: path MTU black hole before hop {} ({who}): packets over {size} bytes vanish without an ICMP error",
            h.ttl
        );
    }
}

fn pmtu_config(args: &TraceArgs) -> trace::PmtuConfig {
    trace::PmtuConfig {
        first_ttl: args.first_ttl,
        max_ttl: args.max_ttl,
        timeout: Duration::from_secs_f64(args.timeout),
        ..Default::default()
    }
}

/// How long a report waits for names after the last probe.
const NAMES_LIMIT: Duration = Duration::from_secs(3);

/// The name lookups, unless `-n`.
fn lookups(args: &TraceArgs) -> anyhow::Result<Option<names::Names>> {
    if args.no_dns && !args.aslookup {
        return Ok(None);
    }
    names::Names::from_system(tokio::runtime::Handle::current()).map(Some)
}

/// Source port of flow 0 when `--flows` is given without `-L`.
const FLOW_PORT: u16 = 40_000;

/// `[{"hop": 2, "responders": [{"address": "...", "flows": [0, 3]}]}]`.
fn flow_map(f: &trace::FlowTrace, rows: &[trace::HopReport]) -> serde_json::Value {
    rows.iter()
        .map(|r| {
            let responders: Vec<serde_json::Value> = f
                .responders(r.hop)
                .into_iter()
                .map(|(address, flows)| serde_json::json!({"address": address, "flows": flows}))
                .collect();
            serde_json::json!({"hop": r.hop, "responders": responders})
        })
        .collect()
}

/// Cycles of a report when `-c` is not given (mtr's default).
const DEFAULT_CYCLES: u32 = 10;

fn exit_code(trace: &trace::Trace) -> ExitCode {
    if trace.reached_at().is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The live view: the trace runs on the runtime's workers and publishes a copy (all flows
/// merged) at most every [`PUBLISH_EVERY`] and when it ends; the view (this thread) draws
/// the latest copy, so it never delays a probe.
fn run_live(
    rt: &tokio::runtime::Runtime,
    host: String,
    prober: netloom::probe::Prober,
    target: IpAddr,
    (config, flows, pmtu): (TraceConfig, Option<(u16, u16)>, Option<trace::PmtuConfig>),
    label: Option<live::Label>,
) -> anyhow::Result<ExitCode> {
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(live::Snapshot {
        trace: trace::Trace::new(target, config.max_ttl),
        flows: None,
    }));
    let reset = Arc::new(AtomicBool::new(false));
    let reset_asked = reset.clone();
    let task = rt.spawn(async move {
        let mtus = match &pmtu {
            Some(c) => trace::discover_pmtu(target, c).await?,
            None => Vec::new(),
        };
        let mut published = tokio::time::Instant::now();
        let mut publish = |traces: &mut [trace::Trace], last: bool| {
            if reset_asked.swap(false, Ordering::Relaxed) {
                traces.iter_mut().for_each(trace::Trace::reset);
            }
            if last || published.elapsed() >= PUBLISH_EVERY {
                published = tokio::time::Instant::now();
                let mut copy = merged(traces, target, config.max_ttl);
                copy.set_pmtu(&mtus);
                let flows = flows.map(|(_, first_port)| trace::FlowTrace {
                    first_port,
                    traces: traces.to_vec(),
                });
                let snapshot = Arc::new(live::Snapshot { trace: copy, flows });
                // The old copy is dropped here, after the channel's lock is released.
                drop(tx.send_replace(snapshot));
            }
        };
        let mut traces = match flows {
            None => vec![
                trace::run(&prober, target, &config, |t, _| {
                    publish(std::slice::from_mut(t), false);
                })
                .await?,
            ],
            Some((n, first)) => {
                trace::run_flows(&prober, target, &config, n, first, |t, _| {
                    publish(t, false);
                })
                .await?
                .traces
            }
        };
        publish(&mut traces, true);
        Ok::<(), netloom::probe::ProbeError>(())
    });
    let shown = live::run(host, rx.clone(), reset, label).context("drawing the live view");
    task.abort();
    shown?;
    let last = rx.borrow().trace.clone();
    Ok(exit_code(&last))
}

/// How often the live view's copy of the trace is refreshed (it draws every 100 ms).
const PUBLISH_EVERY: Duration = Duration::from_millis(20);

/// Every flow's statistics together (one flow: a copy of it).
fn merged(traces: &[trace::Trace], target: IpAddr, max_ttl: u8) -> trace::Trace {
    match traces {
        [one] => one.clone(),
        [] => trace::Trace::new(target, max_ttl),
        many => trace::FlowTrace {
            first_port: 0,
            traces: many.to_vec(),
        }
        .merged(),
    }
}
