//! `mtr-window`: drives mtr-packet-compatible programs side by side with the same command
//! stream, keeping a window of W probes outstanding, on a namespace topology it builds.
//!
//! For every program × target × protocol × window it reports probes/s, the program's CPU
//! time per probe (utime + stime from /proc/PID/stat, all threads, measured from after its
//! first reply to after its last), and how many replies were errors or `probes-exhausted`.
//! A window is *sustained* when every probe got the expected reply (`reply` from the
//! answering host, `no-reply` from the blackhole) and the program did not die.
//!
//! ```text
//! mtr-window --program debian=/usr/bin/mtr-packet --program netloom=target/release/mtr-packet \
//!            --target host --protocol icmp --window 1024 --probes 100000
//! ```
#![forbid(unsafe_code)]
use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::IpAddr;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use netloom_testnet::{CLOSED_TCP_PORT, CLOSED_UDP_PORT, Topology};

/// Drive mtr-packet-compatible programs with a window of outstanding probes.
#[derive(Parser, Debug)]
#[command(name = "mtr-window")]
struct Args {
    /// `NAME=PATH` of a program speaking mtr-packet's protocol (repeatable; run in order).
    #[arg(long = "program", required = true)]
    programs: Vec<String>,
    /// What to probe (repeatable).
    #[arg(long = "target", value_enum, default_values_t = [Target::Host])]
    targets: Vec<Target>,
    /// Probe protocol (repeatable).
    #[arg(long = "protocol", value_enum, default_values_t = [Proto::Icmp])]
    protocols: Vec<Proto>,
    /// Probes outstanding at once (repeatable).
    #[arg(long = "window", default_values_t = [1024])]
    windows: Vec<usize>,
    /// Probes per run to the answering host.
    #[arg(long, default_value_t = 100_000)]
    probes: usize,
    /// Probes per run to the blackhole, as a multiple of the window.
    #[arg(long, default_value_t = 3)]
    blackhole_rounds: usize,
    /// `timeout` argument of every probe, seconds.
    #[arg(long, default_value_t = 2)]
    timeout: u64,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 120)]
    deadline: u64,
    /// IPv6 instead of IPv4.
    #[arg(long)]
    ipv6: bool,
    /// Routers between source and destination.
    #[arg(long, default_value_t = 2)]
    routers: usize,
    /// Pin each program to this CPU (`taskset -c`).
    #[arg(long)]
    program_cpu: Option<u32>,
    /// Steer the topology's packet processing (RPS) to these CPUs (hex mask, e.g. `2`), so
    /// the simulated routers' work is not charged to the program measured.
    #[arg(long)]
    network_cpus: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Target {
    /// The answering host (ICMP echo, closed TCP/UDP port: every probe gets `reply`).
    Host,
    /// The blackholed address (every probe gets `no-reply`).
    Blackhole,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Proto {
    Icmp,
    Udp,
    Tcp,
}

/// The outcome of one run.
#[derive(Debug, Default)]
struct RunResult {
    sent: usize,
    replies: HashMap<String, usize>,
    wall: Duration,
    user: Duration,
    sys: Duration,
    died: bool,
    timed_out: bool,
}

impl RunResult {
    fn count(&self, word: &str) -> usize {
        self.replies.get(word).copied().unwrap_or(0)
    }

    fn completed(&self) -> usize {
        self.replies.values().sum()
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let net = match Topology::builder().routers(args.routers).build() {
        Ok(net) => net,
        Err(e) => {
            eprintln!("mtr-window: cannot build the topology: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(Err(e)) = args
        .network_cpus
        .as_deref()
        .map(|mask| net.steer_packet_processing(mask))
    {
        eprintln!("mtr-window: cannot steer packet processing: {e}");
        return std::process::ExitCode::FAILURE;
    }
    println!(
        "| program | target | protocol | window | probes | expected replies | errors | probes-exhausted | expected/s | CPU µs/probe | user | sys | sustained |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for &target in &args.targets {
        for &proto in &args.protocols {
            for &window in &args.windows {
                for program in &args.programs {
                    let (name, path) = program.split_once('=').unwrap_or((program, program));
                    let r = run(&net, &args, path, target, proto, window);
                    report(name, target, proto, window, &r);
                }
            }
        }
    }
    std::process::ExitCode::SUCCESS
}

fn report(name: &str, target: Target, proto: Proto, window: usize, r: &RunResult) {
    let expected_word = match target {
        Target::Host => "reply",
        Target::Blackhole => "no-reply",
    };
    let expected = r.count(expected_word);
    let exhausted = r.count("probes-exhausted");
    let errors = r.completed() - expected - exhausted;
    let secs = r.wall.as_secs_f64().max(1e-9);
    // Only probes that got the expected reply count as done.
    let rate = expected as f64 / secs;
    let per_probe = |d: Duration| {
        if r.completed() > 0 {
            d.as_secs_f64() * 1e6 / r.completed() as f64
        } else {
            f64::NAN
        }
    };
    let (user, sys) = (per_probe(r.user), per_probe(r.sys));
    let sustained = !r.died && !r.timed_out && expected == r.sent;
    let mut note = if r.died {
        "no (program died)".to_owned()
    } else if r.timed_out {
        "no (deadline)".to_owned()
    } else if sustained {
        "yes".to_owned()
    } else {
        "no".to_owned()
    };
    let mut others: Vec<_> = r
        .replies
        .iter()
        .filter(|(w, _)| w.as_str() != expected_word)
        .collect();
    others.sort();
    for (word, n) in others {
        note.push_str(&format!(", {n} {word}"));
    }
    println!(
        "| {name} | {target:?} | {proto:?} | {window} | {} | {expected} | {errors} | {exhausted} | {rate:.0} | {:.2} | {user:.2} | {sys:.2} | {note} |",
        r.sent,
        user + sys
    );
}

/// Reads (utime, stime) of `pid` (all threads) from /proc.
fn cpu_time(pid: u32) -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = Some(rustix::param::clock_ticks_per_second()).filter(|t| *t > 0)?;
    let d = |t: u64| Duration::from_nanos(t * 1_000_000_000 / ticks);
    Some((d(utime), d(stime)))
}

fn command_line(token: u64, addr: IpAddr, proto: Proto, timeout: u64) -> String {
    let ip = if addr.is_ipv4() { "ip-4" } else { "ip-6" };
    let tail = match proto {
        Proto::Icmp => String::new(),
        Proto::Udp => format!(" protocol udp port {CLOSED_UDP_PORT}"),
        Proto::Tcp => format!(" protocol tcp port {CLOSED_TCP_PORT}"),
    };
    format!("{token} send-probe {ip} {addr} timeout {timeout}{tail}\n")
}

fn run(
    net: &Topology,
    args: &Args,
    program: &str,
    target: Target,
    proto: Proto,
    window: usize,
) -> RunResult {
    let addr = match (target, args.ipv6) {
        (Target::Host, false) => net.destination_v4(),
        (Target::Host, true) => net.destination_v6(),
        (Target::Blackhole, false) => net.blackhole_v4(),
        (Target::Blackhole, true) => net.blackhole_v6(),
    };
    let total = match target {
        Target::Host => args.probes,
        Target::Blackhole => window * args.blackhole_rounds,
    };
    let mut result = RunResult::default();
    let mut cmd = match args.program_cpu {
        Some(cpu) => {
            let mut c = net.source().command("taskset");
            c.args(["-c", &cpu.to_string(), program]);
            c
        }
        None => net.source().command(program),
    };
    let mut child: Child = match cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mtr-window: cannot start {program}: {e}");
            result.died = true;
            return result;
        }
    };
    let pid = child.id();
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        result.died = true;
        return result;
    };
    let mut stdin = BufWriter::with_capacity(1 << 20, stdin);
    let (tx, rx) = mpsc::channel::<Option<String>>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::with_capacity(1 << 20, stdout).lines() {
            let Ok(line) = line else { break };
            let word = line.split(' ').nth(1).unwrap_or("").to_owned();
            if tx.send(Some(word)).is_err() {
                return;
            }
        }
        let _ = tx.send(None);
    });
    // Warm up: one check-support round trip, so start-up cost is not counted.
    let ready = writeln!(stdin, "0 check-support feature send-probe").and_then(|()| stdin.flush());
    if ready.is_err() || !matches!(rx.recv(), Ok(Some(_))) {
        result.died = true;
        return finish(child, reader, result);
    }
    let cpu_start = cpu_time(pid).unwrap_or_default();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.deadline);
    let mut next_token: u64 = 1;
    let mut outstanding = 0usize;
    let mut send = |n: usize, stdin: &mut BufWriter<_>, sent: &mut usize| -> bool {
        for _ in 0..n {
            let line = command_line(next_token, addr, proto, args.timeout);
            next_token = next_token % 2_000_000_000 + 1;
            if stdin.write_all(line.as_bytes()).is_err() {
                return false;
            }
            *sent += 1;
        }
        stdin.flush().is_ok()
    };
    let first = window.min(total);
    if !send(first, &mut stdin, &mut result.sent) {
        result.died = true;
        return finish(child, reader, result);
    }
    outstanding += first;
    while outstanding > 0 {
        let now = Instant::now();
        if now >= deadline {
            result.timed_out = true;
            break;
        }
        let mut done = 0usize;
        match rx.recv_timeout(deadline - now) {
            Ok(Some(word)) => {
                *result.replies.entry(word).or_default() += 1;
                done += 1;
            }
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                result.died = true;
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
        }
        while let Ok(Some(word)) = rx.try_recv() {
            *result.replies.entry(word).or_default() += 1;
            done += 1;
        }
        outstanding -= done.min(outstanding);
        let more = done.min(total - result.sent);
        if more > 0 {
            if !send(more, &mut stdin, &mut result.sent) {
                result.died = true;
                break;
            }
            outstanding += more;
        }
    }
    result.wall = start.elapsed();
    let cpu_end = cpu_time(pid).unwrap_or_default();
    result.user = cpu_end.0.saturating_sub(cpu_start.0);
    result.sys = cpu_end.1.saturating_sub(cpu_start.1);
    drop(stdin);
    finish(child, reader, result)
}

/// Ends the child (stdin closed, then killed if it lingers) and the reader thread.
fn finish(
    mut child: Child,
    reader: std::thread::JoinHandle<()>,
    mut result: RunResult,
) -> RunResult {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    result.died = true;
                }
                break;
            }
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    let _ = reader.join();
    result
}
