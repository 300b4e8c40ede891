//! The send schedule of a trace: cycle `k` starts at `start + k × interval`, whether or
//! not the answers of earlier cycles are in, and its probes are spread evenly over the
//! interval (no burst for routers to rate-limit; each probe leaves at its own time).
//!
//! ```text
//!  time ───────────────────────────────────────────────────────────────▶
//!  cycle 0  │ttl1 ttl2 … ttlN│ ····· answers / timeouts ·····
//!  cycle 1                   │ttl1 ttl2 … ttlN│ ····· answers ·····
//!  cycle 2                                    │ttl1 …
//!           └─── interval ───┘
//! ```
//!
//! One loop owns every flow's probes: it waits for whichever comes first, the next
//! probe's due time or an answer (a timeout) of a probe in flight, and records answers as
//! they arrive, so each hop's statistics hold every probe once, whatever cycle it was
//! sent in. As mtr's `-c`, `cycles` counts the probes sent to each hop; after the last
//! cycle the loop waits for the answers still due, each within its own timeout.
//!
//! | state | next cycle due | probe answered / timed out |
//! |---|---|---|
//! | probes left, room in the prober | send the probes now due | record, call `progress` |
//! | probes left, prober full | (waits: the probe goes out late) | record, call `progress` |
//! | all cycles sent | — | record; done when none is left |
//!
//! A probe goes out late only when the prober's `max_in_flight` has no room for it (a
//! long timeout with a short interval): the schedule then waits for answers instead of
//! failing.

use std::net::IpAddr;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::time::Instant;

use super::clock::Clock;
use super::{Trace, TraceConfig};
use crate::{ProbeError, ProbeOptions, ProbeReply, Prober};

/// Runs `config.cycles` cycles of every flow in `flows` (one probe template each; its TTL
/// is set per hop). Cycle `k` starts at `start + k × interval`; its `n` probes (flow by
/// flow, hop by hop) are spread evenly over the interval, probe `j` due at
/// `start + k × interval + j × interval / n`. Flow `f`'s cycle probes `first_ttl` up to
/// the lowest TTL where flow `f` reached the target when the cycle starts (or `max_ttl`).
pub(super) async fn drive(
    prober: &Prober,
    target: IpAddr,
    config: &TraceConfig,
    flows: &[ProbeOptions],
    mut progress: impl FnMut(&mut [Trace], u64),
) -> Result<Vec<Trace>, ProbeError> {
    let mut traces = vec![Trace::new(target, config.max_ttl); flows.len()];
    let capacity = prober.engine().config.max_in_flight;
    let mut clock = Clock::new();
    let mut pending = FuturesUnordered::new();
    let mut done = 0u64;
    let start = Instant::now();
    // The cycle being sent: its start, its probes (flow, ttl), the next one to send.
    let mut cycle = 0u32;
    let mut cycle_start = start;
    let mut plan: Vec<(usize, u8)> = Vec::new();
    let mut next = 0usize;
    loop {
        if next == plan.len() && cycle < config.cycles {
            cycle_start = start + scaled(config.interval, cycle);
            plan = traces
                .iter()
                .enumerate()
                .flat_map(|(f, t)| {
                    let last = t.reached_at().unwrap_or(config.max_ttl);
                    (config.first_ttl..=last).map(move |ttl| (f, ttl))
                })
                .collect();
            next = 0;
            cycle += 1;
        }
        let due_at = |j: usize| cycle_start + slot(config.interval, j, plan.len());
        let due = (next < plan.len()).then(|| due_at(next));
        let room = pending.is_empty() || prober.in_flight() < capacity;
        let answered: Option<(usize, u8, Result<ProbeReply, ProbeError>)> = match due {
            Some(due) if room => {
                tokio::select! {
                    biased;
                    () = clock.until(due) => None,
                    Some(answer) = pending.next() => Some(answer),
                }
            }
            _ => match pending.next().await {
                Some(answer) => Some(answer),
                None if due.is_none() => break,
                None => None,
            },
        };
        if let Some((f, ttl, reply)) = answered {
            traces[f].record(ttl, &reply?);
            done += 1;
            progress(&mut traces, done);
        }
        // Every probe whose time has come — checked after an answer too, so a run of
        // answers never holds a probe back until the timer's readiness is seen.
        let now = Instant::now();
        while next < plan.len()
            && due_at(next) <= now
            && (pending.is_empty() || prober.in_flight() + pending.len() < capacity)
        {
            let (f, ttl) = plan[next];
            let opts = ProbeOptions {
                ttl,
                ..flows[f].clone()
            };
            pending.push(async move { (f, ttl, prober.probe(target, opts).await) });
            next += 1;
        }
    }
    Ok(traces)
}

/// `interval × cycle`, saturating at about 136 years.
fn scaled(interval: Duration, cycle: u32) -> Duration {
    interval
        .checked_mul(cycle)
        .unwrap_or(Duration::from_secs(u64::from(u32::MAX)))
}

/// Offset of probe `j` of `n` in a cycle: `j × interval / n`.
fn slot(interval: Duration, j: usize, n: usize) -> Duration {
    let nanos = interval.as_nanos() * j as u128 / n.max(1) as u128;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use netloom_testnet::{Requirement, Topology, skip_unless};

    use crate::trace::{TraceConfig, run};
    use crate::{PrivilegeMode, ProbeOptions, Prober, ProberConfig, Protocol};

    /// Towards a blackholed address the hops past the routers never answer; with a 4 s
    /// timeout and a 1 s interval, every cycle must be on the wire before the first
    /// timeout of cycle 0 is recorded (the old loop, each cycle waiting for the previous
    /// one's timeouts, had sent one cycle by then), and the probes of a cycle leave one by
    /// one, 250 ms apart: when router 1's answer to the first probe comes back, only that
    /// probe has been sent.
    #[test]
    fn later_cycles_go_out_while_earlier_ones_wait_for_their_timeouts() {
        skip_unless!(Requirement::Namespaces, Requirement::NetRaw);
        const CYCLES: u32 = 3;
        const MAX_TTL: u8 = 4;
        let net = Topology::builder()
            .routers(2)
            .open_ports(false)
            .build()
            .expect("topology");
        let hole = net.blackhole_v4();
        let r1 = net.router_v4(1);
        let (trace, sent_at_first_timeout, sent_at_first_answer, stats) = net
            .source()
            .run(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let prober = Prober::open(ProberConfig {
                        privilege: PrivilegeMode::Raw,
                        ..Default::default()
                    })
                    .await
                    .expect("raw prober");
                    let config = TraceConfig {
                        cycles: CYCLES,
                        first_ttl: 1,
                        max_ttl: MAX_TTL,
                        interval: Duration::from_secs(1),
                        probe: ProbeOptions::default()
                            .with_protocol(Protocol::Icmp)
                            .with_timeout(Duration::from_secs(4)),
                    };
                    let mut at_first_timeout = None;
                    let mut at_first_answer = None;
                    let trace = run(&prober, hole, &config, |t, _| {
                        if at_first_answer.is_none() {
                            at_first_answer = Some(prober.stats().sent);
                        }
                        let timed_out =
                            (2..=MAX_TTL).any(|ttl| t.hop(ttl).is_some_and(|h| h.sent > 0));
                        if timed_out && at_first_timeout.is_none() {
                            at_first_timeout = Some(prober.stats().sent);
                        }
                    })
                    .await
                    .expect("trace");
                    (trace, at_first_timeout, at_first_answer, prober.stats())
                })
            })
            .expect("thread in the source namespace");
        assert_eq!(
            sent_at_first_answer,
            Some(1),
            "a cycle's probes are spread over the interval, not sent at once"
        );
        let every = u64::from(CYCLES) * u64::from(MAX_TTL);
        assert_eq!(
            sent_at_first_timeout,
            Some(every),
            "all {CYCLES} cycles sent before cycle 0's first timeout"
        );
        assert_eq!(stats.sent, every);
        // Statistics per hop: each hop got one probe per cycle (mtr's -c), router 1
        // answered all of them, the hops behind the blackhole none.
        let hop1 = trace.hop(1).expect("hop 1");
        assert_eq!((hop1.sent, hop1.received), (CYCLES, CYCLES));
        assert_eq!(hop1.responders.first().copied(), r1);
        for ttl in 2..=MAX_TTL {
            let h = trace.hop(ttl).expect("hop");
            assert_eq!((h.sent, h.received), (CYCLES, 0), "hop {ttl}");
        }
    }
}
