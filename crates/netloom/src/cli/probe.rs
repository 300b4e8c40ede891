//! `netloom probe`: send one probe (mtr-packet's send-probe options) and print the result.
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use netloom::probe::{
    IpVersion, PrivilegeMode, ProbeOptions, ProbeReply, Prober, ProberConfig, Protocol, resolve,
};

/// Probe settings shared by `probe` and `trace`.
#[derive(clap::Args, Debug, Clone)]
pub struct ProbeSettings {
    /// Protocol, one of `Protocol::ALL` by name (icmp, udp, tcp, sctp).
    #[arg(long, short = 'P', default_value = "icmp", value_parser = parse_protocol,
          help = protocol_help())]
    pub protocol: Protocol,
    /// Destination port, 1-65535 (udp/tcp/sctp only; refused with icmp).
    #[arg(long, short = 'p', value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Source port, 1-65535 (udp/tcp/sctp only; refused with icmp).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub local_port: Option<u16>,
    /// Seconds to wait for an answer, 0-3600 (fractions allowed).
    #[arg(long, default_value_t = 2.0, value_parser = parse_seconds)]
    pub timeout: f64,
    /// Size of the whole IP packet in bytes, 0-9000 (raised to the headers' size if
    /// smaller).
    #[arg(long, short = 's', value_parser = parse_size)]
    pub size: Option<usize>,
    /// Byte the payload is filled with, 0-255.
    #[arg(long, default_value_t = 0)]
    pub bit_pattern: u8,
    /// IPv4 type of service / IPv6 traffic class, 0-255.
    #[arg(long, default_value_t = 0)]
    pub tos: u8,
    /// Routing mark, 0-4294967295 (SO_MARK, needs CAP_NET_ADMIN).
    #[arg(long)]
    pub mark: Option<u32>,
    /// Source address (one of this host's addresses).
    #[arg(long)]
    pub local: Option<IpAddr>,
    /// Send through this interface only.
    #[arg(long)]
    pub device: Option<String>,
    /// Address family, flow and socket choices (the same flags for `probe` and `trace`).
    #[command(flatten)]
    pub path: PathSettings,
}

/// The flags `probe` and `trace` share as they are: family, flow and socket kind.
#[derive(clap::Args, Debug, Clone)]
pub struct PathSettings {
    /// Paris traceroute: keep the flow identifiers constant across probes.
    #[arg(long)]
    pub constant_flow: bool,
    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Never use raw sockets (ICMP datagram sockets allowed by ping_group_range).
    #[arg(long)]
    pub unprivileged: bool,
}

/// `-P`'s help, listing `Protocol::ALL`.
fn protocol_help() -> String {
    let names: Vec<&str> = Protocol::ALL.iter().map(Protocol::name).collect();
    format!("Protocol: one of {}", names.join(", "))
}

fn parse_protocol(s: &str) -> Result<Protocol, String> {
    s.parse()
        .map_err(|e: netloom::probe::ProbeError| e.to_string())
}

/// `-s/--size`: 0 up to the prober's largest probe.
fn parse_size(s: &str) -> Result<usize, String> {
    let max = ProberConfig::default().max_packet_size;
    match s.parse::<usize>() {
        Ok(v) if v <= max => Ok(v),
        _ => Err(format!(
            "-s/--size {s:?} is not a probe size in 0..={max} bytes"
        )),
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds in 0..=3600")),
    }
}

impl ProbeSettings {
    /// The IP version asked for with -4 / -6.
    pub fn version(&self) -> Option<IpVersion> {
        match (self.path.ipv4, self.path.ipv6) {
            (true, _) => Some(IpVersion::V4),
            (_, true) => Some(IpVersion::V6),
            _ => None,
        }
    }

    /// The library options for one probe with `ttl`.
    pub fn options(&self, ttl: u8) -> ProbeOptions {
        ProbeOptions {
            protocol: self.protocol,
            ttl,
            port: self.port,
            local_addr: self.local,
            local_port: self.local_port,
            timeout: Duration::from_secs_f64(self.timeout),
            size: self.size,
            bit_pattern: self.bit_pattern,
            tos: self.tos,
            mark: self.mark,
            device: self.device.clone(),
            constant_flow: self.path.constant_flow,
        }
    }

    /// Refuses settings that do not go together: a port with ICMP, a source address
    /// that is not this host's.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.protocol == Protocol::Icmp {
            if self.port.is_some() {
                anyhow::bail!(
                    "-p/--port does not apply to ICMP probes: give -P udp, tcp or sctp with it, or leave it out"
                );
            }
            if self.local_port.is_some() {
                anyhow::bail!(
                    "--local-port does not apply to ICMP probes: give -P udp, tcp or sctp with it, or leave it out"
                );
            }
        }
        if let Some(local) = self.local
            && let Err(err) = std::net::UdpSocket::bind((local, 0))
        {
            if err.kind() == std::io::ErrorKind::AddrNotAvailable {
                anyhow::bail!(
                    "--local {local} is not an address of this host (`ip address` lists them)"
                );
            }
            anyhow::bail!("--local {local}: {err}");
        }
        Ok(())
    }

    /// Checks the settings, resolves `host` and opens a prober.
    pub async fn open(&self, host: &str) -> anyhow::Result<(IpAddr, Prober)> {
        self.open_for(host, ProberConfig::default().max_in_flight)
            .await
    }

    /// As [`ProbeSettings::open`], for at most `max_in_flight` probes at once (the raw-mode
    /// receive ring is sized for that many answers, so fewer start faster).
    pub async fn open_for(
        &self,
        host: &str,
        max_in_flight: usize,
    ) -> anyhow::Result<(IpAddr, Prober)> {
        self.check()?;
        let target = resolve(host, self.version()).await?;
        let privilege = if self.path.unprivileged {
            PrivilegeMode::Unprivileged
        } else {
            PrivilegeMode::Auto
        };
        let prober = Prober::open(ProberConfig {
            privilege,
            max_in_flight,
            ..Default::default()
        })
        .await
        .context("opening the prober")?;
        Ok((target, prober))
    }
}

/// Arguments of `netloom probe`.
#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// Host name or address to probe.
    pub host: String,
    /// Time to live (hop limit), 1-255.
    #[arg(long, short = 't', default_value_t = 64, value_parser = clap::value_parser!(u8).range(1..))]
    pub ttl: u8,
    #[command(flatten)]
    pub settings: ProbeSettings,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Sends the probe and prints its outcome; exit code 0 if the target answered, 1 if not.
pub fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    rt.block_on(async {
        // One probe: the smallest receive ring.
        let (target, prober) = args.settings.open_for(&args.host, 1).await?;
        let reply = prober
            .probe(target, args.settings.options(args.ttl))
            .await?;
        if args.json {
            println!("{}", serde_json::to_string(&json(target, &reply))?);
        } else {
            println!("{}", describe(target, &reply));
        }
        Ok(if reply.outcome.reached_target() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

fn json(target: IpAddr, r: &ProbeReply) -> serde_json::Value {
    serde_json::json!({
        "target": target,
        "outcome": r.outcome,
        "responder": r.responder,
        "rtt_ms": r.rtt.map(|d| d.as_secs_f64() * 1e3),
        "mpls": r.mpls,
    })
}

fn describe(target: IpAddr, r: &ProbeReply) -> String {
    let outcome = serde_json::to_value(r.outcome)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let mut line = format!("{target}: {outcome}");
    if let Some(from) = r.responder {
        line += &format!(" from {from}");
    }
    if let Some(rtt) = r.rtt {
        line += &format!(" in {:.3} ms", rtt.as_secs_f64() * 1e3);
    }
    if let netloom::probe::Outcome::Unreachable(kind) = r.outcome {
        line += &format!(" ({kind:?})");
    }
    for l in &r.mpls {
        line += &format!(" [MPLS: {l}]");
    }
    line
}
