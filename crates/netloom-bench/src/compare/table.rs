//! Markdown tables of a [`Comparison`], with the ratios the netloom-channel targets use.
use std::fmt::Write;

use super::{Comparison, ServerResult};
use crate::report::LoadReport;

/// The server whose ratios are reported.
pub const SUBJECT: &str = "netloom";
/// The plain tokio anchor.
pub const TOKIO: &str = "tokio";
/// The Java Netty anchor.
pub const NETTY: &str = "netty";
/// Target: p50 at most this times tokio's.
pub const P50_TARGET: f64 = 1.1;
/// Target: idle RSS per connection at most this many KiB.
pub const IDLE_KIB_TARGET: f64 = 8.0;

/// Renders every case's table, the targets summary and the idle-memory table.
///
/// ```
/// use netloom_bench::compare::{Comparison, table::markdown};
/// let empty = Comparison { cases: vec![], servers: vec![], warmup_secs: 1.0, duration_secs: 5.0, rounds: 3, rate: None, tcp: String::new() };
/// assert!(markdown(&empty).contains("Targets"));
/// ```
pub fn markdown(comparison: &Comparison) -> String {
    let mut out = format!(
        "Each run: {} s warm-up, then {} s measured. {} rounds; within a round each case runs on \
         every server back to back (order rotated), and the tables show each server's median \
         round by msg/s, with the range over all rounds. The ratios are paired: each is the \
         median over rounds of that round's ratio, so a slow drift of the machine, which moves \
         servers run back to back alike, cancels out. TCP: {}.\n\n",
        comparison.warmup_secs, comparison.duration_secs, comparison.rounds, comparison.tcp
    );
    if let Some(rate) = comparison.rate {
        let _ = writeln!(
            out,
            "Offered load: {} msg/s in every case, spread evenly over its connections (each \
             sends one message per connections / rate seconds while its window has room). \
             Below saturation every server sees the same load, so msg/s matches it and \
             server CPU µs/msg is the comparison; a server's msg/s below it means that \
             server saturated.\n",
            thousands(rate)
        );
    }
    servers_table(&mut out, comparison);
    for (index, case) in comparison.cases.iter().enumerate() {
        let _ = writeln!(out, "\n### {}\n", case.name);
        let _ = writeln!(
            out,
            "| server | msg/s (median round) | msg/s all rounds | MB/s | p50 µs | p90 µs | p99 µs | max µs | server CPU µs/msg | client CPU % | errors |"
        );
        let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for server in &comparison.servers {
            case_row(&mut out, server, index);
        }
        let ratios = Ratios::of(comparison, index);
        let _ = writeln!(
            out,
            "\nnetloom / tokio: msg/s {}, p50 {}, CPU/msg {} · netloom / max(tokio, Netty) msg/s: {}",
            times(ratios.msgs_vs_tokio),
            times(ratios.p50_vs_tokio),
            times(ratios.cpu_vs_tokio),
            times(ratios.msgs_vs_best),
        );
    }
    targets_table(&mut out, comparison);
    idle_table(&mut out, comparison);
    out
}

fn servers_table(out: &mut String, comparison: &Comparison) {
    let _ = writeln!(
        out,
        "| server | threads (from /proc, under load) | command |"
    );
    let _ = writeln!(out, "|---|--:|---|");
    for server in &comparison.servers {
        let threads = server.threads.map_or("?".into(), |t| t.to_string());
        let _ = writeln!(
            out,
            "| {} | {threads} | `{}` |",
            server.name,
            server.command.join(" ")
        );
    }
}

fn case_row(out: &mut String, server: &ServerResult, index: usize) {
    let Some(case) = server.cases.get(index) else {
        let _ = writeln!(out, "| {} | not run ||||||||||", server.name);
        return;
    };
    let Some(r) = case.median() else {
        let why = case.first_failure().unwrap_or_else(|| "not run".into());
        let _ = writeln!(
            out,
            "| {} | failed: {} ||||||||||",
            server.name,
            one_line(&why)
        );
        return;
    };
    let (lo, hi) = case.msgs_range().unwrap_or_default();
    let _ = writeln!(
        out,
        "| {} | {} | {}–{} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {:.0} | {} |",
        server.name,
        thousands(r.msgs_per_sec),
        thousands(lo),
        thousands(hi),
        r.bytes_per_sec / 1e6,
        r.latency_us.p50,
        r.latency_us.p90,
        r.latency_us.p99,
        r.latency_us.max,
        r.server_cpu_us_per_msg
            .map_or("?".into(), |cpu| format!("{cpu:.2}")),
        r.client_cpu_percent,
        case.errors(),
    );
}

/// netloom's ratios in one case (None where a side is missing or failed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ratios {
    /// netloom msg/s over tokio's (target ≥ 1).
    pub msgs_vs_tokio: Option<f64>,
    /// netloom msg/s over the better of tokio and Netty (target ≥ 1).
    pub msgs_vs_best: Option<f64>,
    /// netloom p50 over tokio's (target ≤ 1.1).
    pub p50_vs_tokio: Option<f64>,
    /// netloom server CPU per message over tokio's (target ≤ 1).
    pub cpu_vs_tokio: Option<f64>,
    /// The per-round ratios behind each median, in round order.
    pub rounds: RoundRatios,
}

/// One ratio per round in which netloom and the anchor(s) ran, for each of [`Ratios`]'
/// medians.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoundRatios {
    /// netloom msg/s over tokio's.
    pub msgs_vs_tokio: Vec<f64>,
    /// netloom msg/s over the better of tokio and Netty.
    pub msgs_vs_best: Vec<f64>,
    /// netloom p50 over tokio's.
    pub p50_vs_tokio: Vec<f64>,
    /// netloom server CPU per message over tokio's.
    pub cpu_vs_tokio: Vec<f64>,
}

impl Ratios {
    /// The ratios of case `index`: each the median over rounds of one round's ratio
    /// (netloom's run against the anchors' runs of the same round). A case with errors in
    /// any round has no ratios.
    ///
    /// ```
    /// use netloom_bench::compare::{Comparison, table::Ratios};
    /// let empty = Comparison { cases: vec![], servers: vec![], warmup_secs: 1.0, duration_secs: 5.0, rounds: 3, rate: None, tcp: String::new() };
    /// assert_eq!(Ratios::of(&empty, 0).msgs_vs_tokio, None);
    /// ```
    pub fn of(comparison: &Comparison, index: usize) -> Self {
        let rounds = |name: &str| -> Option<Vec<Option<&LoadReport>>> {
            let server = comparison.servers.iter().find(|s| s.name == name)?;
            let case = server.cases.get(index).filter(|c| c.errors() == 0)?;
            Some(
                case.rounds
                    .iter()
                    .map(|r| r.as_ref().ok().filter(|r| r.messages > 0))
                    .collect(),
            )
        };
        let Some(subject) = rounds(SUBJECT) else {
            return Self::default();
        };
        let tokio = rounds(TOKIO).unwrap_or_default();
        let netty = rounds(NETTY).unwrap_or_default();
        fn at<'a>(side: &[Option<&'a LoadReport>], r: usize) -> Option<&'a LoadReport> {
            side.get(r).copied().flatten()
        }
        // One ratio per round in which netloom and the anchor(s) ran.
        let paired = |ratio: &dyn Fn(&LoadReport, usize) -> Option<f64>| -> Vec<f64> {
            (0..subject.len())
                .filter_map(|r| ratio(at(&subject, r)?, r))
                .collect()
        };
        let rounds = RoundRatios {
            msgs_vs_tokio: paired(&|s, r| Some(s.msgs_per_sec / at(&tokio, r)?.msgs_per_sec)),
            msgs_vs_best: paired(&|s, r| {
                let best = [at(&tokio, r), at(&netty, r)]
                    .into_iter()
                    .flatten()
                    .map(|a| a.msgs_per_sec)
                    .reduce(f64::max)?;
                Some(s.msgs_per_sec / best)
            }),
            p50_vs_tokio: paired(&|s, r| Some(s.latency_us.p50 / at(&tokio, r)?.latency_us.p50)),
            cpu_vs_tokio: paired(&|s, r| {
                Some(s.server_cpu_us_per_msg? / at(&tokio, r)?.server_cpu_us_per_msg?)
            }),
        };
        Self {
            msgs_vs_tokio: median(rounds.msgs_vs_tokio.clone()),
            msgs_vs_best: median(rounds.msgs_vs_best.clone()),
            p50_vs_tokio: median(rounds.p50_vs_tokio.clone()),
            cpu_vs_tokio: median(rounds.cpu_vs_tokio.clone()),
            rounds,
        }
    }
}

/// The median (the mean of the middle two for an even count); `None` for no values.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// The widest spread of rounds (highest msg/s over lowest) among netloom and its anchors in
/// case `index`; above [`STEADY_SPREAD`] the machine was disturbed and the ratios mean little.
///
/// ```
/// use netloom_bench::compare::{Comparison, table::rounds_spread};
/// let empty = Comparison { cases: vec![], servers: vec![], warmup_secs: 1.0, duration_secs: 5.0, rounds: 3, rate: None, tcp: String::new() };
/// assert_eq!(rounds_spread(&empty, 0), None);
/// ```
pub fn rounds_spread(comparison: &Comparison, index: usize) -> Option<f64> {
    comparison
        .servers
        .iter()
        .filter(|s| [SUBJECT, TOKIO, NETTY].contains(&s.name.as_str()))
        .filter_map(|s| s.cases.get(index)?.msgs_range())
        .filter(|&(lo, _)| lo > 0.0)
        .map(|(lo, hi)| hi / lo)
        .reduce(f64::max)
}

/// Rounds that spread wider than this (highest msg/s over lowest, any of netloom, tokio,
/// Netty) mark a case as disturbed.
pub const STEADY_SPREAD: f64 = 1.10;

fn targets_table(out: &mut String, comparison: &Comparison) {
    let _ = writeln!(out, "\n### Targets (netloom vs the anchors)\n");
    let _ = writeln!(
        out,
        "Each cell: the median of the per-round ratios, whether it meets the target, and in how \
         many rounds the ratio met it.\n"
    );
    let _ = writeln!(
        out,
        "| case | msg/s ÷ max(tokio, Netty) (≥ 1) | p50 ÷ tokio (≤ {P50_TARGET}) | CPU/msg ÷ tokio (≤ 1) | rounds spread (≤ {STEADY_SPREAD}: steady) |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|");
    for (index, case) in comparison.cases.iter().enumerate() {
        let r = Ratios::of(comparison, index);
        let spread = match rounds_spread(comparison, index) {
            Some(x) if x > STEADY_SPREAD => format!("{x:.2}x disturbed: rerun"),
            Some(x) => format!("{x:.2}x"),
            None => "—".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {spread} |",
            case.name,
            verdict(r.msgs_vs_best, &r.rounds.msgs_vs_best, |x| x >= 1.0),
            verdict(r.p50_vs_tokio, &r.rounds.p50_vs_tokio, |x| x <= P50_TARGET),
            verdict(r.cpu_vs_tokio, &r.rounds.cpu_vs_tokio, |x| x <= 1.0),
        );
    }
}

fn idle_table(out: &mut String, comparison: &Comparison) {
    let _ = writeln!(out, "\n### Idle connections: server RSS\n");
    let _ = writeln!(
        out,
        "| server | connections | baseline RSS KiB | RSS with connections KiB | KiB per connection (target netloom ≤ {IDLE_KIB_TARGET}) |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|");
    for server in &comparison.servers {
        match &server.idle {
            Some(Ok(idle)) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.2} |",
                    server.name,
                    idle.connections,
                    idle.baseline_rss_kib,
                    idle.loaded_rss_kib,
                    idle.kib_per_connection
                );
            }
            Some(Err(err)) => {
                let _ = writeln!(out, "| {} | failed: {} ||||", server.name, one_line(err));
            }
            None => {
                let _ = writeln!(out, "| {} | skipped ||||", server.name);
            }
        }
    }
}

fn times(ratio: Option<f64>) -> String {
    ratio.map_or("n/a".into(), |r| format!("**{r:.2}x**"))
}

/// The median ratio, whether it meets the target, and in how many rounds it was met.
fn verdict(ratio: Option<f64>, rounds: &[f64], met: impl Fn(f64) -> bool) -> String {
    let tally = format!(
        "{}/{} rounds",
        rounds.iter().filter(|&&x| met(x)).count(),
        rounds.len()
    );
    match ratio {
        Some(r) if met(r) => format!("{r:.3}x ✔ {tally}"),
        Some(r) => format!("{r:.3}x ✘ {tally}"),
        None => "n/a".into(),
    }
}

/// `1234567.8` -> `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '|'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{Case, CaseResult};
    use crate::load::Mode;
    use crate::report::Latency;

    fn report(msgs_per_sec: f64, p50: f64, cpu: f64, errors: u64) -> LoadReport {
        LoadReport {
            connections: 1,
            mode: Mode::Pipelined { in_flight: 1 },
            size: 32,
            duration_secs: 1.0,
            messages: msgs_per_sec as u64,
            msgs_per_sec,
            bytes_per_sec: msgs_per_sec * 32.0,
            latency_us: Latency {
                p50,
                ..Latency::default()
            },
            errors,
            error_samples: Vec::new(),
            server_cpu_us: None,
            server_cpu_us_per_msg: Some(cpu),
            client_cpu_percent: 50.0,
        }
    }

    fn server(name: &str, rounds: Vec<Result<LoadReport, String>>) -> ServerResult {
        ServerResult {
            name: name.into(),
            command: vec![name.into()],
            threads: Some(2),
            cases: vec![CaseResult { rounds }],
            idle: None,
        }
    }

    fn comparison(servers: Vec<ServerResult>) -> Comparison {
        Comparison {
            cases: vec![Case::new(1, Mode::Pipelined { in_flight: 1 }, 32)],
            servers,
            warmup_secs: 1.0,
            duration_secs: 4.0,
            rounds: 3,
            rate: None,
            tcp: "congestion control cubic, tcp_rmem 4096 131072 6291456, tcp_wmem 4096 16384 4194304".into(),
        }
    }

    #[test]
    fn ratios_are_paired_by_round_and_use_the_better_anchor() {
        let c = comparison(vec![
            server(
                SUBJECT,
                vec![
                    Ok(report(90.0, 1.0, 1.0, 0)),
                    Ok(report(300.0, 9.0, 9.0, 0)),
                    Ok(report(120.0, 11.0, 2.0, 0)),
                ],
            ),
            // Round 2 ran on a slower machine for everyone: pairing cancels it.
            server(
                TOKIO,
                vec![
                    Ok(report(100.0, 10.0, 1.0, 0)),
                    Ok(report(250.0, 10.0, 3.0, 0)),
                    Ok(report(100.0, 10.0, 1.0, 0)),
                ],
            ),
            server(
                NETTY,
                vec![
                    Ok(report(150.0, 10.0, 1.0, 0)),
                    Ok(report(200.0, 10.0, 1.0, 0)),
                    Ok(report(150.0, 10.0, 1.0, 0)),
                ],
            ),
        ]);
        let r = Ratios::of(&c, 0);
        // msg/s vs tokio per round: 0.9, 1.2, 1.2; vs the better anchor: 0.6, 1.2, 0.8.
        assert_eq!(r.msgs_vs_tokio, Some(1.2));
        assert_eq!(r.msgs_vs_best, Some(0.8));
        // p50: 0.1, 0.9, 1.1; CPU: 1.0, 3.0, 2.0.
        assert_eq!(r.p50_vs_tokio, Some(0.9));
        assert_eq!(r.cpu_vs_tokio, Some(2.0));
        assert_eq!(r.rounds.msgs_vs_best, vec![0.6, 1.2, 0.8]);
        let md = markdown(&c);
        assert!(
            md.contains(
                "| 1 conn x 1 in flight, 32 B | 0.800x ✘ 1/3 rounds | 0.900x ✔ 3/3 rounds | 2.000x ✘ 1/3 rounds | 3.33x disturbed: rerun |"
            ),
            "{md}"
        );
        assert!(
            md.contains("TCP: congestion control cubic, tcp_rmem 4096 131072 6291456,"),
            "{md}"
        );
    }

    #[test]
    fn steady_rounds_are_not_flagged() {
        let c = comparison(vec![
            server(
                SUBJECT,
                vec![
                    Ok(report(100.0, 1.0, 1.0, 0)),
                    Ok(report(104.0, 1.0, 1.0, 0)),
                ],
            ),
            server(
                TOKIO,
                vec![
                    Ok(report(100.0, 1.0, 1.0, 0)),
                    Ok(report(105.0, 1.0, 1.0, 0)),
                ],
            ),
        ]);
        assert_eq!(rounds_spread(&c, 0), Some(1.05));
        assert!(markdown(&c).contains("| 1.05x |"));
    }

    #[test]
    fn a_round_with_errors_voids_the_ratios_and_shows_in_the_table() {
        let c = comparison(vec![
            server(
                SUBJECT,
                vec![Ok(report(90.0, 1.0, 1.0, 2)), Err("refused".into())],
            ),
            server(TOKIO, vec![Ok(report(100.0, 10.0, 1.0, 0))]),
        ]);
        assert_eq!(Ratios::of(&c, 0), Ratios::default());
        let md = markdown(&c);
        assert!(md.contains("| 3 |"), "{md}");
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
    }
}
