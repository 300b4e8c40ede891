//! Traceroute sessions: probe every TTL for several cycles and keep mtr `--report`
//! statistics per hop (loss, sent, last, average, best, worst, standard deviation, MPLS).
//!
//! ```
//! use std::time::Duration;
//! use netloom_probe::trace::Trace;
//! use netloom_probe::{Outcome, ProbeReply};
//! let target = "10.0.0.9".parse().unwrap();
//! let mut t = Trace::new(target, 30);
//! let hop = |outcome, from: &str, ms| ProbeReply {
//!     outcome,
//!     responder: Some(from.parse().unwrap()),
//!     rtt: Some(Duration::from_millis(ms)),
//!     mpls: vec![],
//! };
//! t.record(1, &hop(Outcome::TtlExpired, "10.0.0.1", 1));
//! t.record(2, &hop(Outcome::Reply, "10.0.0.9", 3));
//! t.record(2, &ProbeReply::no_reply());
//! let report = t.report();
//! assert_eq!(report.len(), 2);
//! assert_eq!(report[1].loss_percent, 50.0);
//! assert_eq!(report[1].avg_ms, 3.0);
//! ```
use std::net::IpAddr;
use std::time::Duration;

use crate::{MplsLabel, Outcome, ProbeError, ProbeOptions, ProbeReply, Prober};

mod clock;
mod flows;
mod pmtu;
mod schedule;

pub use flows::{FlowTrace, MAX_FLOWS, mda_flows_needed, run_flows, run_mda};
pub use pmtu::{HopMtu, PmtuConfig, SILENT_HOPS, discover_pmtu};

/// How a traceroute runs.
///
/// ```
/// let c = netloom_probe::trace::TraceConfig::default();
/// assert_eq!((c.cycles, c.max_ttl), (10, 30));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceConfig {
    /// Rounds of probes, one probe per TTL each (mtr `--report-cycles`, default 10).
    pub cycles: u32,
    /// First TTL probed (default 1).
    pub first_ttl: u8,
    /// Last TTL probed (default 30).
    pub max_ttl: u8,
    /// Time between the starts of two cycles (default 1 s): cycle `k` starts at
    /// `start + k × interval` whether or not earlier cycles' answers are in, its probes
    /// spread evenly over the interval (0: every cycle at once, as far as the prober's
    /// `max_in_flight` allows).
    pub interval: Duration,
    /// Settings of every probe; its `ttl` is replaced per hop.
    pub probe: ProbeOptions,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            cycles: 10,
            first_ttl: 1,
            max_ttl: 30,
            interval: Duration::from_secs(1),
            probe: ProbeOptions {
                timeout: Duration::from_secs(2),
                ..Default::default()
            },
        }
    }
}

/// Statistics of one hop (one TTL).
///
/// ```
/// let h = netloom_probe::trace::HopStats::default();
/// assert_eq!(h.loss_percent(), 0.0);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HopStats {
    /// Addresses that answered at this TTL, in the order first seen.
    pub responders: Vec<IpAddr>,
    /// Probes sent.
    pub sent: u32,
    /// Probes answered (reply, ttl-expired or unreachable).
    pub received: u32,
    /// Latest round-trip time.
    pub last: Option<Duration>,
    /// Smallest round-trip time.
    pub best: Option<Duration>,
    /// Largest round-trip time.
    pub worst: Option<Duration>,
    /// Latest MPLS label stack seen.
    pub mpls: Vec<MplsLabel>,
    /// Latest outcome other than no-reply.
    pub last_outcome: Option<Outcome>,
    /// Latest jitter: how far the latest round-trip time is from the one before (mtr's
    /// `Jttr`).
    pub jitter: Option<Duration>,
    /// Path MTU up to this hop, when measured ([`discover_pmtu`], [`Trace::set_pmtu`]).
    pub pmtu: Option<u32>,
    /// `pmtu` sits behind a PMTU black hole ([`HopMtu::black_hole`]).
    pub pmtu_black_hole: bool,
    mean_ms: f64,
    m2: f64,
    jitter_sum_ms: f64,
    jitter_count: u32,
}

impl HopStats {
    /// Adds one probe result.
    ///
    /// ```
    /// let mut h = netloom_probe::trace::HopStats::default();
    /// h.record(&netloom_probe::ProbeReply::no_reply());
    /// assert_eq!((h.sent, h.received, h.loss_percent()), (1, 0, 100.0));
    /// ```
    pub fn record(&mut self, reply: &ProbeReply) {
        self.sent += 1;
        if reply.outcome == Outcome::NoReply {
            return;
        }
        self.received += 1;
        self.last_outcome = Some(reply.outcome);
        if let Some(r) = reply.responder
            && !self.responders.contains(&r)
        {
            self.responders.push(r);
        }
        if !reply.mpls.is_empty() {
            self.mpls.clone_from(&reply.mpls);
        }
        if let Some(rtt) = reply.rtt {
            if let Some(last) = self.last {
                let jitter = rtt.abs_diff(last);
                self.jitter = Some(jitter);
                self.jitter_sum_ms += jitter.as_secs_f64() * 1e3;
                self.jitter_count += 1;
            }
            self.last = Some(rtt);
            self.best = Some(self.best.map_or(rtt, |b| b.min(rtt)));
            self.worst = Some(self.worst.map_or(rtt, |w| w.max(rtt)));
            // Welford's running mean and sum of squared deviations.
            let ms = rtt.as_secs_f64() * 1e3;
            let n = f64::from(self.received);
            let delta = ms - self.mean_ms;
            self.mean_ms += delta / n;
            self.m2 += delta * (ms - self.mean_ms);
        }
    }

    /// Mean jitter in milliseconds (mtr's `Javg`); 0 before two answers.
    ///
    /// ```
    /// use std::time::Duration;
    /// use netloom_probe::{trace::HopStats, Outcome, ProbeReply};
    /// let mut h = HopStats::default();
    /// for ms in [10, 14, 12] {
    ///     h.record(&ProbeReply {
    ///         outcome: Outcome::Reply,
    ///         responder: Some("10.0.0.1".parse().unwrap()),
    ///         rtt: Some(Duration::from_millis(ms)),
    ///         mpls: vec![],
    ///     });
    /// }
    /// assert_eq!(h.jitter, Some(Duration::from_millis(2)));
    /// assert!((h.jitter_avg_ms() - 3.0).abs() < 1e-9);
    /// ```
    pub fn jitter_avg_ms(&self) -> f64 {
        if self.jitter_count == 0 {
            0.0
        } else {
            self.jitter_sum_ms / f64::from(self.jitter_count)
        }
    }

    /// Percentage of probes without an answer.
    ///
    /// ```
    /// assert_eq!(netloom_probe::trace::HopStats::default().loss_percent(), 0.0);
    /// ```
    pub fn loss_percent(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            f64::from(self.sent - self.received) * 100.0 / f64::from(self.sent)
        }
    }

    /// Mean round-trip time in milliseconds (0 without answers).
    ///
    /// ```
    /// assert_eq!(netloom_probe::trace::HopStats::default().avg_ms(), 0.0);
    /// ```
    pub fn avg_ms(&self) -> f64 {
        self.mean_ms
    }

    /// Sample standard deviation of the round-trip times in milliseconds, as mtr
    /// computes it (0 with fewer than two answers).
    ///
    /// ```
    /// assert_eq!(netloom_probe::trace::HopStats::default().stdev_ms(), 0.0);
    /// ```
    pub fn stdev_ms(&self) -> f64 {
        if self.received < 2 {
            0.0
        } else {
            (self.m2 / f64::from(self.received - 1)).sqrt()
        }
    }
}

/// One row of an mtr `--report`, ready to print or serialize.
///
/// ```
/// let t = netloom_probe::trace::Trace::new("10.0.0.1".parse().unwrap(), 3);
/// assert!(t.report().is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HopReport {
    /// TTL of the hop.
    pub hop: u8,
    /// Addresses that answered (empty: `???`).
    pub hosts: Vec<IpAddr>,
    /// Loss percentage.
    pub loss_percent: f64,
    /// Probes sent.
    pub sent: u32,
    /// Probes answered.
    pub received: u32,
    /// Last round-trip time, ms.
    pub last_ms: f64,
    /// Mean, ms.
    pub avg_ms: f64,
    /// Best, ms.
    pub best_ms: f64,
    /// Worst, ms.
    pub worst_ms: f64,
    /// Sample standard deviation, ms.
    pub stdev_ms: f64,
    /// Latest MPLS label stack.
    pub mpls: Vec<MplsLabel>,
    /// Latest answer kind other than no-reply.
    pub outcome: Option<Outcome>,
    /// Path MTU up to this hop, when measured (left out of JSON otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pmtu: Option<u32>,
    /// `pmtu` sits behind a PMTU black hole: larger packets vanish without an ICMP error
    /// (in JSON only when true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pmtu_black_hole: bool,
}

/// The state of a traceroute: statistics for TTLs 1..=max_ttl.
///
/// ```
/// let t = netloom_probe::trace::Trace::new("::1".parse().unwrap(), 5);
/// assert_eq!(t.target().to_string(), "::1");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    target: IpAddr,
    hops: Vec<HopStats>,
    /// Lowest TTL at which the target answered.
    reached_at: Option<u8>,
}

impl Trace {
    /// An empty trace towards `target` for TTLs up to `max_ttl`.
    ///
    /// ```
    /// let t = netloom_probe::trace::Trace::new("10.0.0.1".parse().unwrap(), 4);
    /// assert_eq!(t.reached_at(), None);
    /// ```
    pub fn new(target: IpAddr, max_ttl: u8) -> Self {
        Trace {
            target,
            hops: vec![HopStats::default(); usize::from(max_ttl)],
            reached_at: None,
        }
    }

    /// The traced address.
    ///
    /// ```
    /// let t = netloom_probe::trace::Trace::new("10.0.0.1".parse().unwrap(), 4);
    /// assert!(t.target().is_ipv4());
    /// ```
    pub fn target(&self) -> IpAddr {
        self.target
    }

    /// The lowest TTL at which the target itself answered.
    ///
    /// ```
    /// # use netloom_probe::{trace::Trace, Outcome, ProbeReply};
    /// let mut t = Trace::new("10.0.0.1".parse().unwrap(), 4);
    /// t.record(3, &ProbeReply { outcome: Outcome::Reply, responder: Some(t.target()), rtt: None, mpls: vec![] });
    /// assert_eq!(t.reached_at(), Some(3));
    /// ```
    pub fn reached_at(&self) -> Option<u8> {
        self.reached_at
    }

    /// Records the result of a probe sent with `ttl` (1-based; others are ignored).
    ///
    /// ```
    /// # use netloom_probe::{trace::Trace, ProbeReply};
    /// let mut t = Trace::new("10.0.0.1".parse().unwrap(), 2);
    /// t.record(9, &ProbeReply::no_reply());
    /// assert!(t.report().is_empty());
    /// ```
    pub fn record(&mut self, ttl: u8, reply: &ProbeReply) {
        let Some(hop) = usize::from(ttl)
            .checked_sub(1)
            .and_then(|i| self.hops.get_mut(i))
        else {
            return;
        };
        hop.record(reply);
        if reply.outcome == Outcome::Reply && reply.responder == Some(self.target) {
            self.reached_at = Some(self.reached_at.map_or(ttl, |r| r.min(ttl)));
        }
    }

    /// Forgets every statistic (as mtr's `r` key does); the target stays.
    ///
    /// ```
    /// # use netloom_probe::{trace::Trace, ProbeReply};
    /// let mut t = Trace::new("10.0.0.1".parse().unwrap(), 2);
    /// t.record(1, &ProbeReply::no_reply());
    /// t.reset();
    /// assert_eq!(t.hop(1).unwrap().sent, 0);
    /// ```
    pub fn reset(&mut self) {
        let pmtu: Vec<(Option<u32>, bool)> = self
            .hops
            .iter()
            .map(|h| (h.pmtu, h.pmtu_black_hole))
            .collect();
        *self = Trace::new(
            self.target,
            u8::try_from(self.hops.len()).unwrap_or(u8::MAX),
        );
        for (h, (m, black_hole)) in self.hops.iter_mut().zip(pmtu) {
            h.pmtu = m;
            h.pmtu_black_hole = black_hole;
        }
    }

    /// Sets the path MTU of every hop [`discover_pmtu`] measured (kept across
    /// [`reset`](Trace::reset)).
    ///
    /// ```
    /// # use netloom_probe::trace::{HopMtu, Trace};
    /// let mut t = Trace::new("10.0.0.1".parse().unwrap(), 3);
    /// t.set_pmtu(&[HopMtu { ttl: 2, responder: None, mtu: Some(1280), black_hole: false }]);
    /// t.reset();
    /// assert_eq!(t.hop(2).unwrap().pmtu, Some(1280));
    /// ```
    pub fn set_pmtu(&mut self, hops: &[HopMtu]) {
        for h in hops {
            if let Some(stats) = usize::from(h.ttl)
                .checked_sub(1)
                .and_then(|i| self.hops.get_mut(i))
            {
                stats.pmtu = h.mtu;
                stats.pmtu_black_hole = h.black_hole;
            }
        }
    }

    /// Statistics of the hop at `ttl`.
    ///
    /// ```
    /// let t = netloom_probe::trace::Trace::new("10.0.0.1".parse().unwrap(), 2);
    /// assert_eq!(t.hop(1).unwrap().sent, 0);
    /// ```
    pub fn hop(&self, ttl: u8) -> Option<&HopStats> {
        usize::from(ttl)
            .checked_sub(1)
            .and_then(|i| self.hops.get(i))
    }

    /// The report rows, as mtr's report chooses them (`net_max`): hops that were probed,
    /// up to the target once reached, or up to the first hop that answered with an ICMP
    /// error (destination unreachable); otherwise up to the last hop that answered plus
    /// one silent hop, shown as `???` with 100 % loss. Nothing answered: no rows.
    ///
    /// ```
    /// # use netloom_probe::{trace::Trace, Outcome, ProbeReply};
    /// let mut t = Trace::new("10.0.0.9".parse().unwrap(), 30);
    /// assert!(t.report().is_empty());
    /// let router = ProbeReply {
    ///     outcome: Outcome::TtlExpired,
    ///     responder: Some("10.0.0.1".parse().unwrap()),
    ///     rtt: None,
    ///     mpls: vec![],
    /// };
    /// t.record(1, &router);
    /// for ttl in 2..=30 {
    ///     t.record(ttl, &ProbeReply::no_reply());
    /// }
    /// let rows = t.report();
    /// assert_eq!(rows.len(), 2);
    /// assert!(rows[1].hosts.is_empty() && rows[1].loss_percent == 100.0);
    /// ```
    pub fn report(&self) -> Vec<HopReport> {
        let mut end = 0;
        for (i, h) in self.hops.iter().enumerate() {
            let ttl = u8::try_from(i + 1).unwrap_or(u8::MAX);
            if self.reached_at == Some(ttl)
                || matches!(h.last_outcome, Some(Outcome::Unreachable(_)))
            {
                end = i + 1;
                break;
            }
            if h.received > 0 {
                end = i + 2;
            }
        }
        let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
        self.hops[..end.min(self.hops.len())]
            .iter()
            .enumerate()
            .filter(|(_, h)| h.sent > 0)
            .map(|(i, h)| HopReport {
                hop: u8::try_from(i + 1).unwrap_or(u8::MAX),
                hosts: h.responders.clone(),
                loss_percent: h.loss_percent(),
                sent: h.sent,
                received: h.received,
                last_ms: ms(h.last),
                avg_ms: h.avg_ms(),
                best_ms: ms(h.best),
                worst_ms: ms(h.worst),
                stdev_ms: h.stdev_ms(),
                mpls: h.mpls.clone(),
                outcome: h.last_outcome,
                pmtu: h.pmtu,
                pmtu_black_hole: h.pmtu_black_hole,
            })
            .collect()
    }
}

/// Runs a traceroute: `config.cycles` rounds, each probing every TTL from `first_ttl`
/// to `max_ttl` (or to the hop where the target answered), round `k` starting at
/// `start + k × interval` while earlier rounds' answers may still be pending, its probes
/// spread evenly over the interval (see [`TraceConfig::interval`]). Returns when every probe was answered or
/// timed out. `progress` is called after every answer or timeout with the trace so far
/// (which it may [reset](Trace::reset)) and the number of probes done.
///
/// ```no_run
/// # async fn demo() -> Result<(), netloom_probe::ProbeError> {
/// use netloom_probe::{Prober, trace::{run, TraceConfig}};
/// let prober = Prober::open(Default::default()).await?;
/// let trace = run(&prober, "127.0.0.1".parse().unwrap(), &TraceConfig::default(), |_, _| {}).await?;
/// for row in trace.report() {
///     println!("{} {:?} {:.1}%", row.hop, row.hosts, row.loss_percent);
/// }
/// # Ok(()) }
/// ```
pub async fn run(
    prober: &Prober,
    target: IpAddr,
    config: &TraceConfig,
    mut progress: impl FnMut(&mut Trace, u64),
) -> Result<Trace, ProbeError> {
    check_ttls(config)?;
    let flows = [config.probe.clone()];
    let traces = schedule::drive(prober, target, config, &flows, |t, done| {
        progress(&mut t[0], done);
    })
    .await?;
    Ok(traces
        .into_iter()
        .next()
        .unwrap_or_else(|| Trace::new(target, config.max_ttl)))
}

/// Fails for an empty TTL range.
fn check_ttls(config: &TraceConfig) -> Result<(), ProbeError> {
    if config.first_ttl == 0 || config.first_ttl > config.max_ttl {
        return Err(ProbeError::InvalidArgument {
            what: format!(
                "ttl range {}..={} (first ttl must be 1..=max ttl)",
                config.first_ttl, config.max_ttl
            ),
        });
    }
    Ok(())
}
