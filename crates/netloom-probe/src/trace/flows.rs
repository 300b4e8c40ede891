//! Paris/Dublin-style flows: several traces at once, each keeping its flow identifier (the
//! UDP source port) constant, the flows differing from each other — so a load balancer
//! that hashes the 5-tuple sends each flow one way, and different flows reveal the
//! different paths.

use std::net::IpAddr;

use super::{HopStats, Trace, TraceConfig, check_ttls, schedule};
use crate::{ProbeError, Prober, Protocol};

/// Most flows one [`run_flows`] takes.
pub const MAX_FLOWS: u16 = 256;

/// The traces of every flow, flow `i` having used source port `first_port + i`.
///
/// ```
/// use netloom_probe::trace::{FlowTrace, Trace};
/// let t = FlowTrace { first_port: 33_000, traces: vec![Trace::new("10.0.0.1".parse().unwrap(), 3)] };
/// assert!(t.merged().report().is_empty());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FlowTrace {
    /// Source port of flow 0.
    pub first_port: u16,
    /// One trace per flow.
    pub traces: Vec<Trace>,
}

impl FlowTrace {
    /// All flows' statistics together, per hop: every responder, loss and times over
    /// every probe of every flow.
    ///
    /// ```
    /// # use netloom_probe::trace::{FlowTrace, Trace};
    /// let t = FlowTrace { first_port: 1, traces: vec![] };
    /// assert_eq!(t.merged().hop(1), None);
    /// ```
    pub fn merged(&self) -> Trace {
        let Some(first) = self.traces.first() else {
            return Trace::new(IpAddr::from([0, 0, 0, 0]), 0);
        };
        let mut all = Trace::new(
            first.target,
            u8::try_from(first.hops.len()).unwrap_or(u8::MAX),
        );
        for t in &self.traces {
            for (mine, theirs) in all.hops.iter_mut().zip(&t.hops) {
                mine.merge(theirs);
            }
            all.reached_at = match (all.reached_at, t.reached_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        all
    }

    /// Who answered at `ttl`, and on which flows (indices), in the order first seen.
    ///
    /// ```
    /// # use netloom_probe::trace::{FlowTrace, Trace};
    /// let t = FlowTrace { first_port: 1, traces: vec![Trace::new("10.0.0.1".parse().unwrap(), 3)] };
    /// assert!(t.responders(1).is_empty());
    /// ```
    pub fn responders(&self, ttl: u8) -> Vec<(IpAddr, Vec<u16>)> {
        let mut out: Vec<(IpAddr, Vec<u16>)> = Vec::new();
        for (flow, t) in self.traces.iter().enumerate() {
            let flow = u16::try_from(flow).unwrap_or(u16::MAX);
            for r in t
                .hop(ttl)
                .map(|h| h.responders.as_slice())
                .unwrap_or_default()
            {
                match out.iter_mut().find(|(a, _)| a == r) {
                    Some((_, flows)) => flows.push(flow),
                    None => out.push((*r, vec![flow])),
                }
            }
        }
        out
    }
}

impl HopStats {
    /// Adds `other`'s probes to these statistics (Chan's parallel mean and variance).
    fn merge(&mut self, other: &HopStats) {
        for r in &other.responders {
            if !self.responders.contains(r) {
                self.responders.push(*r);
            }
        }
        let timed = |h: &HopStats| if h.last.is_some() { h.received } else { 0 };
        let (n1, n2) = (f64::from(timed(self)), f64::from(timed(other)));
        if n2 > 0.0 {
            let n = n1 + n2;
            let delta = other.mean_ms - self.mean_ms;
            self.mean_ms += delta * n2 / n;
            self.m2 += other.m2 + delta * delta * n1 * n2 / n;
        }
        self.sent += other.sent;
        self.received += other.received;
        self.last = other.last.or(self.last);
        self.best = match (self.best, other.best) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.worst = self.worst.max(other.worst);
        if !other.mpls.is_empty() {
            self.mpls.clone_from(&other.mpls);
        }
        self.last_outcome = other.last_outcome.or(self.last_outcome);
        self.jitter = other.jitter.or(self.jitter);
        self.jitter_sum_ms += other.jitter_sum_ms;
        self.jitter_count += other.jitter_count;
        self.pmtu = self.pmtu.or(other.pmtu);
    }
}

/// Runs `flows` traces of UDP probes at once, flow `i` from source port `first_port + i`
/// (destination port and everything else constant), every flow's cycle `k` starting at
/// `start + k × interval` as in [`run`](super::run) (the cycle's probes of every flow
/// spread over the interval together). `progress` is called after every
/// answer or timeout with every flow's trace so far (which it may reset) and the number of
/// probes done. Fails with
/// [`ProbeError::InvalidArgument`] for another protocol, zero or more than [`MAX_FLOWS`]
/// flows, or ports past 65,535.
///
/// ```no_run
/// # async fn demo() -> Result<(), netloom_probe::ProbeError> {
/// use netloom_probe::{Prober, Protocol, trace::{run_flows, TraceConfig}};
/// let prober = Prober::open(Default::default()).await?;
/// let mut config = TraceConfig::default();
/// config.probe.protocol = Protocol::Udp;
/// let t = run_flows(&prober, "192.0.2.1".parse().unwrap(), &config, 16, 40_000, |_, _| {}).await?;
/// for (addr, flows) in t.responders(2) {
///     println!("hop 2: {addr} on flows {flows:?}");
/// }
/// # Ok(()) }
/// ```
pub async fn run_flows(
    prober: &Prober,
    target: IpAddr,
    config: &TraceConfig,
    flows: u16,
    first_port: u16,
    progress: impl FnMut(&mut [Trace], u64),
) -> Result<FlowTrace, ProbeError> {
    if config.probe.protocol != Protocol::Udp {
        return Err(ProbeError::InvalidArgument {
            what: format!("flows need UDP probes, not {:?}", config.probe.protocol),
        });
    }
    if !(1..=MAX_FLOWS).contains(&flows) || first_port.checked_add(flows - 1).is_none() {
        return Err(ProbeError::InvalidArgument {
            what: format!(
                "{flows} flows from source port {first_port} (1..={MAX_FLOWS} flows, ports up to 65535)"
            ),
        });
    }
    check_ttls(config)?;
    let templates: Vec<_> = (0..flows)
        .map(|i| {
            let mut probe = config.probe.clone();
            probe.local_port = Some(first_port + i);
            probe
        })
        .collect();
    let traces = schedule::drive(prober, target, config, &templates, progress).await?;
    Ok(FlowTrace { first_port, traces })
}

/// The Multipath Detection Algorithm's stopping rule at 95 % confidence: how many flows
/// must have been sent through a hop where `seen` next hops answered, before concluding
/// there is no other (the smallest `n` with `(seen + 1) (seen / (seen + 1))^n <= 0.05`,
/// as in scamper and Dublin traceroute: 6, 11, 16, 21, 27, ...).
///
/// ```
/// use netloom_probe::trace::mda_flows_needed;
/// assert_eq!((1..=5).map(mda_flows_needed).collect::<Vec<_>>(), [6, 11, 16, 21, 27]);
/// ```
pub fn mda_flows_needed(seen: usize) -> u16 {
    let k = seen.max(1) as f64;
    let mut n = 1u16;
    while (k + 1.0) * (k / (k + 1.0)).powi(i32::from(n)) > 0.05 && n < MAX_FLOWS {
        n += 1;
    }
    n
}

/// Hop-by-hop MDA over UDP flows (source port `first_port + flow`): at each TTL, probes of
/// new flows until [`mda_flows_needed`] for the responders seen there is met (one probe
/// per flow and hop), up to the TTL where the target answered. Returns the flows' traces
/// (a flow has entries only at the hops it was needed) and the number of probes sent.
///
/// ```no_run
/// # async fn demo() -> Result<(), netloom_probe::ProbeError> {
/// use netloom_probe::{Prober, Protocol, trace::{run_mda, TraceConfig}};
/// let prober = Prober::open(Default::default()).await?;
/// let mut config = TraceConfig::default();
/// config.probe.protocol = Protocol::Udp;
/// let (t, probes) = run_mda(&prober, "192.0.2.1".parse().unwrap(), &config, 40_000).await?;
/// println!("{probes} probes, hop 2: {:?}", t.responders(2));
/// # Ok(()) }
/// ```
pub async fn run_mda(
    prober: &Prober,
    target: IpAddr,
    config: &TraceConfig,
    first_port: u16,
) -> Result<(FlowTrace, u64), ProbeError> {
    if config.probe.protocol != Protocol::Udp {
        return Err(ProbeError::InvalidArgument {
            what: format!("MDA needs UDP probes, not {:?}", config.probe.protocol),
        });
    }
    if first_port.checked_add(MAX_FLOWS - 1).is_none() {
        return Err(ProbeError::InvalidArgument {
            what: format!("MDA source port {first_port}: needs {MAX_FLOWS} ports up to 65535"),
        });
    }
    let mut traces: Vec<Trace> = Vec::new();
    let mut probes = 0u64;
    for ttl in config.first_ttl..=config.max_ttl {
        let mut sent = 0u16;
        loop {
            let seen = FlowTrace {
                first_port,
                traces: traces.clone(),
            }
            .responders(ttl)
            .len();
            let needed = mda_flows_needed(seen);
            if sent >= needed {
                break;
            }
            let batch = (sent..needed).map(|flow| {
                let mut opts = config.probe.clone();
                opts.ttl = ttl;
                opts.local_port = Some(first_port + flow);
                async move { (flow, prober.probe(target, opts).await) }
            });
            for (flow, reply) in futures::future::join_all(batch).await {
                let reply = reply?;
                let i = usize::from(flow);
                while traces.len() <= i {
                    traces.push(Trace::new(target, config.max_ttl));
                }
                traces[i].record(ttl, &reply);
                probes += 1;
            }
            sent = needed;
        }
        let merged = FlowTrace {
            first_port,
            traces: traces.clone(),
        }
        .merged();
        if merged.reached_at().is_some() {
            break;
        }
    }
    Ok((FlowTrace { first_port, traces }, probes))
}
