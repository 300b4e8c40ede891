//! Benchmark (issue 16, "Speed"): does `netloom trace` send its probes on schedule while
//! the live view redraws?
//!
//! Each round runs the real `netloom trace -n -u --flows 10 -m 30 -i 0.1 -c CYCLES` in a
//! real terminal (a tmux pane, keys pressed every second so the view switches and
//! redraws) inside a fresh network namespace whose default route leads into a veth whose
//! other end drops everything: the
//! target never answers, so every cycle sends all 30 TTLs of all 10 flows (300 probes per
//! 0.1 s). A packet socket in the namespace takes the kernel's timestamp (SO_TIMESTAMPNS)
//! of every probe as it leaves. Probe `(flow f, ttl h)`'s n-th appearance belongs to cycle
//! n and is due at `t0 + n × 0.1 s + j × 0.1 s / 300`, `j = 30 f + h - 1` (the trace
//! spreads a cycle's probes evenly, flow by flow, hop by hop); `t0` is chosen so that the
//! earliest probe is exactly on time (the schedule's origin is not visible on the wire),
//! so every deviation is a lateness. Printed per round: deviation p50 / p99 / max and
//! how many probes were more than 1 ms late.
//!
//! ```sh
//! cargo build --release -p netloom --bin netloom --example trace_schedule
//! sudo $CARGO_TARGET_DIR/release/examples/trace_schedule [ROUNDS] [CYCLES]
//! ```
//!
//! Needs root (namespaces, packet sockets) and tmux. `NETLOOM` overrides the binary
//! (default: `netloom` next to this example's directory). `NETLOOM_BENCH_FIFO=N` runs it
//! under `chrt -f N` (real-time priority N), to tell the trace's own lateness from waiting
//! for a CPU on a busy machine.
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use netloom_testnet::Namespace;
use socket2::{Domain, Protocol, Socket, Type};

const FLOWS: usize = 10;
const HOPS: usize = 30;
const INTERVAL: Duration = Duration::from_millis(100);
const TARGET: [u8; 4] = [198, 19, 0, 1];

/// One probe seen leaving: kernel time, TTL, UDP source port.
struct Seen {
    at: SystemTime,
    ttl: u8,
    port: u16,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("control") {
        control();
        return Ok(());
    }
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(Ok(3), |a| a.parse())?;
    let cycles: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    let netloom = match std::env::var_os("NETLOOM") {
        Some(p) => p.into(),
        None => std::env::current_exe()?
            .parent()
            .and_then(|examples| examples.parent())
            .ok_or("no directory above this example")?
            .join("netloom"),
    };
    println!(
        "netloom trace -u --flows {FLOWS} -m {HOPS} -i {} -c {cycles}, live view in tmux; {rounds} rounds",
        INTERVAL.as_secs_f64()
    );
    println!("round  probes  late p50 µs  late p99 µs  late max µs  over 1 ms");
    for round in 1..=rounds {
        let seen = one_round(&netloom, cycles)?;
        let r = analyse(&seen);
        println!(
            "{round:>5}  {:>6}  {:>11}  {:>11}  {:>11}  {:>9}",
            seen.len(),
            r.p50,
            r.p99,
            r.max,
            r.over_1ms
        );
        if seen.len() != FLOWS * HOPS * cycles {
            eprintln!(
                "round {round}: expected {} probes, saw {}",
                FLOWS * HOPS * cycles,
                seen.len()
            );
        }
    }
    Ok(())
}

/// The machine's own floor: a thread that only sleeps to the same 30,000 due times
/// (`thread::sleep`, no probes, no runtime) and measures how late it wakes.
fn control() {
    let n = FLOWS * HOPS * 100;
    let step = INTERVAL / (FLOWS * HOPS) as u32;
    let t0 = Instant::now() + Duration::from_millis(10);
    let mut late: Vec<u64> = (0..n)
        .map(|j| {
            let due = t0 + step * j as u32;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            Instant::now().duration_since(due).as_micros() as u64
        })
        .collect();
    late.sort_unstable();
    let pct = |p: usize| late[(late.len() - 1) * p / 100];
    println!(
        "control (sleeping thread, {n} wake-ups): late p50 {} µs, p99 {} µs, max {} µs, {} over 1 ms",
        pct(50),
        pct(99),
        pct(100),
        late.iter().filter(|l| **l > 1000).count()
    );
}

/// A tmux server of the benchmark's own, killed on drop.
struct Tmux(String);

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        Command::new("tmux")
            .args(["-L", &self.0])
            .args(args)
            .output()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn one_round(
    netloom: &std::path::Path,
    cycles: usize,
) -> Result<Vec<Seen>, Box<dyn std::error::Error>> {
    let ns = Namespace::create("sched")?;
    // The sink: a veth whose peer (in a namespace of its own) drops every frame, since
    // they are addressed to a MAC nobody has.
    let hole = Namespace::create("hole")?;
    ns.ip_batch(&[
        format!(
            "link add sink0 type veth peer name drop0 netns {}",
            hole.name()
        ),
        "addr add 198.18.200.1/24 dev sink0".into(),
        "link set sink0 up".into(),
        "neigh add 198.18.200.2 lladdr 02:00:00:00:00:02 dev sink0 nud permanent".into(),
        "route add default via 198.18.200.2".into(),
    ])?;
    hole.ip(&["link", "set", "drop0", "up"])?;
    let capture = ns.run(open_capture)??;
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || read_probes(&capture, &stop))
    };
    let tmux = Tmux(format!("netloom-sched-{}", std::process::id()));
    let fifo = std::env::var("NETLOOM_BENCH_FIFO")
        .ok()
        .and_then(|p| p.parse::<u8>().ok())
        .map_or_else(String::new, |p| format!("chrt -f {p} "));
    // Extra flags for comparisons, e.g. `-r` (a report: no live view).
    let extra = std::env::var("NETLOOM_BENCH_EXTRA").unwrap_or_default();
    let command = format!(
        "ip netns exec {} {fifo}{} trace -n -u --flows {FLOWS} -m {HOPS} -i {} -c {cycles} {extra} {}",
        ns.name(),
        netloom.display(),
        INTERVAL.as_secs_f64(),
        std::net::Ipv4Addr::from(TARGET),
    );
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "live",
        "-x",
        "120",
        "-y",
        "45",
        &command,
    ])?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
    }
    // The last cycle is sent at (cycles - 1) × interval; its 2 s timeouts follow.
    let end = Instant::now() + INTERVAL * u32::try_from(cycles)? + Duration::from_secs(3);
    let mut next_key = Instant::now();
    while Instant::now() < end {
        if Instant::now() >= next_key {
            // Switch table / history / responders: a redraw of a new kind each second.
            tmux.cmd(&["send-keys", "-t", "live", "d"])?;
            next_key += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tmux.cmd(&["send-keys", "-t", "live", "q"])?;
    stop.store(true, Ordering::Relaxed);
    let seen = reader.join().map_err(|_| "capture thread panicked")??;
    drop(tmux);
    Ok(seen)
}

/// A packet socket (every protocol — only those see outgoing packets —, every interface of
/// the namespace it is made in) with kernel timestamps and a 200 ms read timeout.
fn open_capture() -> std::io::Result<Socket> {
    let eth_p_all = i32::from((libc::ETH_P_ALL as u16).to_be());
    let s = Socket::new(Domain::PACKET, Type::DGRAM, Some(Protocol::from(eth_p_all)))?;
    s.set_recv_buffer_size(32 << 20)?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    let one: libc::c_int = 1;
    // SAFETY: the descriptor is open (owned by `s`); the option value is a live c_int
    // whose size is passed.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(s)
}

/// Reads packets until `stop`; keeps the UDP probes to [`TARGET`].
fn read_probes(s: &Socket, stop: &AtomicBool) -> std::io::Result<Vec<Seen>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    // u64 elements: aligned for the cmsghdr the kernel writes.
    let mut control = [0u64; 16];
    while !stop.load(Ordering::Relaxed) {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: `msg` points at `iov` (over `buf`) and `control`, all live and as
        // long as the lengths say, for the duration of the call.
        let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            match err.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => continue,
                _ => return Err(err),
            }
        }
        let packet = &buf[..usize::try_from(n).unwrap_or(0)];
        let Some((ttl, port)) = probe_fields(packet) else {
            continue;
        };
        if let Some(at) = timestamp(&msg) {
            out.push(Seen { at, ttl, port });
        }
    }
    Ok(out)
}

/// TTL and UDP source port of an IPv4 UDP packet to [`TARGET`].
fn probe_fields(p: &[u8]) -> Option<(u8, u16)> {
    let ihl = usize::from(*p.first()? & 0x0f) * 4;
    if p.first()? >> 4 != 4 || *p.get(9)? != 17 || p.get(16..20)? != TARGET {
        return None;
    }
    let port = u16::from_be_bytes(p.get(ihl..ihl + 2)?.try_into().ok()?);
    Some((*p.get(8)?, port))
}

/// The SCM_TIMESTAMPNS time of a received message.
fn timestamp(msg: &libc::msghdr) -> Option<SystemTime> {
    // SAFETY: `msg` was filled by recvmsg: its control pointer and length describe the
    // control messages the kernel wrote, which CMSG_FIRSTHDR / CMSG_NXTHDR walk within.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !c.is_null() {
        // SAFETY: `c` is a non-null header inside the control buffer (see above).
        let hdr = unsafe { &*c };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_TIMESTAMPNS {
            // SAFETY: an SCM_TIMESTAMPNS message carries one timespec; read_unaligned
            // because the data need not be aligned for it.
            let ts: libc::timespec = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c).cast()) };
            return Some(
                SystemTime::UNIX_EPOCH
                    + Duration::new(
                        u64::try_from(ts.tv_sec).ok()?,
                        u32::try_from(ts.tv_nsec).ok()?,
                    ),
            );
        }
        // SAFETY: as for CMSG_FIRSTHDR; returns null after the last header.
        c = unsafe { libc::CMSG_NXTHDR(msg, c) };
    }
    None
}

/// Lateness against the schedule, in µs.
struct Figures {
    p50: u64,
    p99: u64,
    max: u64,
    over_1ms: usize,
}

fn analyse(seen: &[Seen]) -> Figures {
    let first_port = 40_000u16;
    let per_cycle = (FLOWS * HOPS) as u32;
    let mut count: HashMap<(u16, u8), u32> = HashMap::new();
    // (time, its nominal offset from the schedule's origin)
    let timed: Vec<(SystemTime, Duration)> = seen
        .iter()
        .map(|s| {
            let n = count.entry((s.port, s.ttl)).or_insert(0);
            let cycle = *n;
            *n += 1;
            let j = u32::from(s.port.saturating_sub(first_port)) * HOPS as u32
                + u32::from(s.ttl.saturating_sub(1));
            (s.at, INTERVAL * cycle + INTERVAL * j / per_cycle)
        })
        .collect();
    let Some(t0) = timed.iter().map(|(at, nominal)| *at - *nominal).min() else {
        return Figures {
            p50: 0,
            p99: 0,
            max: 0,
            over_1ms: 0,
        };
    };
    let mut late: Vec<u64> = timed
        .iter()
        .map(|(at, nominal)| {
            at.duration_since(t0 + *nominal)
                .unwrap_or_default()
                .as_micros() as u64
        })
        .collect();
    if std::env::var_os("NETLOOM_BENCH_DEBUG").is_some() {
        let mut by_cycle: std::collections::BTreeMap<u64, usize> = Default::default();
        for ((at, nominal), l) in timed.iter().zip(&late) {
            let _ = at;
            if *l > 1000 {
                *by_cycle
                    .entry((nominal.as_millis() / 100) as u64)
                    .or_default() += 1;
            }
        }
        eprintln!("late > 1 ms per cycle: {by_cycle:?}");
    }
    late.sort_unstable();
    let pct = |p: usize| late[(late.len() - 1) * p / 100];
    Figures {
        p50: pct(50),
        p99: pct(99),
        max: pct(100),
        over_1ms: late.iter().filter(|l| **l > 1000).count(),
    }
}
