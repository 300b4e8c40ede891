//! Engine benchmarks.
//!
//! * `parse/*`: the ICMP reply parser on an echo reply, a time-exceeded with an RFC 4950
//!   MPLS stack, and an ICMPv6 port unreachable (wall time per packet).
//! * `loopback_cpu/*`: whole probes to 127.0.0.1 / ::1 through the real engine, a window of
//!   256 in flight, on a current-thread runtime; the measured "time" is the process CPU
//!   time (user + system, from getrusage) so the per-element figure is CPU per answered
//!   probe, kernel work for the loopback reply included. Needs CAP_NET_RAW.
//! * before those, one long run (400 windows) prints the user / system split of the CPU
//!   per probe: user time is the engine's own code (building, matching, parsing, waking)
//!   without the kernel's network stack. getrusage samples the split per tick, so it needs
//!   a run this long rather than criterion's short samples.
//! * `loopback_wall/*`: the same, wall time (probes per second).
//!
//! Run: `cargo bench -p netloom-probe --bench engine`
#![allow(
    missing_docs,
    reason = "criterion_main! generates an undocumented `pub fn main`"
)]
use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netloom_probe::parse::{parse_icmpv6, parse_ipv4_icmp};
use netloom_probe::wire::{
    IcmpRepr, Ipv4Repr, Ipv6Repr, MPLS_CLASS, MPLS_CTYPE, UdpRepr, emit_extensions,
};
use netloom_probe::{Outcome, PrivilegeMode, ProbeOptions, Prober, ProberConfig};

const WINDOW: usize = 256;

fn packets() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (me, dst, hop) = (
        [10, 0, 0, 1].into(),
        [10, 0, 9, 9].into(),
        [10, 0, 1, 1].into(),
    );
    let echo = IcmpRepr::echo(0, 0x1234, 7).emit_v4(&[0; 36]);
    let echo = Ipv4Repr {
        src: dst,
        dst: me,
        protocol: 1,
        ttl: 60,
        tos: 0,
        ident: 0,
    }
    .emit(&echo);
    let udp = UdpRepr {
        src_port: 40_000,
        dst_port: 33_434,
    }
    .emit(me.into(), dst.into(), &[0; 36]);
    let orig = Ipv4Repr {
        src: me,
        dst,
        protocol: 17,
        ttl: 1,
        tos: 0,
        ident: 0,
    }
    .emit(&udp);
    let ext = emit_extensions(&[(MPLS_CLASS, MPLS_CTYPE, &[0x05, 0xdc, 0x11, 0x01][..])]);
    let mut r = IcmpRepr::error(11, 0);
    let body = r.rfc4884_body(&orig, &ext, 4);
    let te = Ipv4Repr {
        src: hop,
        dst: me,
        protocol: 1,
        ttl: 64,
        tos: 0,
        ident: 0,
    }
    .emit(&r.emit_v4(&body));
    let (me6, dst6) = (
        "2001:db8::1".parse().unwrap(),
        "2001:db8::9".parse().unwrap(),
    );
    let udp6 = UdpRepr {
        src_port: 40_000,
        dst_port: 33_434,
    }
    .emit(IpAddr::V6(me6), IpAddr::V6(dst6), &[0; 36]);
    let orig6 = Ipv6Repr {
        src: me6,
        dst: dst6,
        next_header: 17,
        hop_limit: 1,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(&udp6);
    let pu6 = IcmpRepr::error(1, 4).emit_v6(dst6, me6, &orig6);
    (echo, te, pu6)
}

fn parse(c: &mut Criterion) {
    let (echo, te, pu6) = packets();
    let responder: IpAddr = "2001:db8::9".parse().unwrap();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("echo_reply_v4", |b| {
        b.iter(|| parse_ipv4_icmp(black_box(&echo)))
    });
    g.bench_function("time_exceeded_mpls_v4", |b| {
        b.iter(|| parse_ipv4_icmp(black_box(&te)))
    });
    g.bench_function("port_unreachable_v6", |b| {
        b.iter(|| parse_icmpv6(black_box(&pu6), responder))
    });
    g.finish();
}

/// (user, user + system) CPU time of the process so far.
fn cpu_time() -> (Duration, Duration) {
    // SAFETY: rusage is plain old data and `ru` is a live local for the call.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(ru.ru_utime), tv(ru.ru_utime) + tv(ru.ru_stime))
}

async fn window(prober: &Prober, target: IpAddr) {
    let opts = ProbeOptions::default().with_timeout(Duration::from_secs(2));
    let replies =
        futures::future::join_all((0..WINDOW).map(|_| prober.probe(target, opts.clone()))).await;
    for r in replies {
        assert_eq!(r.map(|r| r.outcome).ok(), Some(Outcome::Reply));
    }
}

/// Prints user and system CPU per probe over one long run.
fn split_cpu(rt: &tokio::runtime::Runtime, prober: &Prober, name: &str, target: IpAddr) {
    const RUNS: u32 = 400;
    let (u0, t0) = cpu_time();
    for _ in 0..RUNS {
        rt.block_on(window(prober, target));
    }
    let (u1, t1) = cpu_time();
    let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(RUNS) / WINDOW as f64;
    println!(
        "loopback_cpu_split/{name}: user {:.2} µs/probe, system {:.2} µs/probe, total {:.2} µs/probe ({} probes)",
        per(u1 - u0),
        per((t1 - t0) - (u1 - u0)),
        per(t1 - t0),
        RUNS as usize * WINDOW
    );
}

fn loopback(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let prober = match rt.block_on(Prober::open(ProberConfig {
        privilege: PrivilegeMode::Raw,
        ..Default::default()
    })) {
        Ok(p) => p,
        Err(err) => {
            eprintln!("skipping loopback benchmarks: {err}");
            return;
        }
    };
    for (name, target) in [("icmp_v4", "127.0.0.1"), ("icmp_v6", "::1")] {
        let target: IpAddr = target.parse().expect("literal");
        split_cpu(&rt, &prober, name, target);
        let mut g = c.benchmark_group("loopback_cpu");
        g.throughput(Throughput::Elements(WINDOW as u64));
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = cpu_time().1;
                for _ in 0..iters {
                    rt.block_on(window(&prober, target));
                }
                cpu_time().1 - start
            })
        });
        g.finish();
        let mut g = c.benchmark_group("loopback_wall");
        g.throughput(Throughput::Elements(WINDOW as u64));
        g.bench_function(name, |b| b.iter(|| rt.block_on(window(&prober, target))));
        g.finish();
    }
}

criterion_group!(benches, parse, loopback);
criterion_main!(benches);
