//! netloom's `mtr-packet` against real clients on a namespace topology (source → 2 routers
//! → answering host, plus a blackhole and an unreachable range), IPv4 and IPv6:
//!
//! * the same command script through Debian's `/usr/bin/mtr-packet` (mtr 0.95) and ours
//!   with `--dialect 0.95` gives the same replies (round-trip times aside);
//! * the unmodified Python `mtrpacket` from PyPI, pointed at ours with `MTR_PACKET`, gets
//!   the same results as with Debian's;
//! * Debian's `mtr --report`, pointed at ours with `MTR_PACKET`, shows every hop.
//!
//! Needs root and `scripts/install-test-deps` (mtr-tiny, iproute2, nftables, mtrpacket).

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Output, Stdio};

use netloom_testnet::{
    CLOSED_TCP_PORT, CLOSED_UDP_PORT, Namespace, OPEN_TCP_PORT, OPEN_UDP_PORT, Requirement::*,
    Topology, skip_unless,
};

const OURS: &str = env!("CARGO_BIN_EXE_mtr-packet");
const DEBIAN: &str = "/usr/bin/mtr-packet";

/// Every address of interest for one IP version.
struct Addrs {
    v: &'static str,
    dst: IpAddr,
    r1: IpAddr,
    r2: IpAddr,
    hole: IpAddr,
    unreach: IpAddr,
}

fn addrs(net: &Topology, v6: bool) -> Addrs {
    let pick = |a: Option<IpAddr>| a.expect("router exists");
    if v6 {
        Addrs {
            v: "ip-6",
            dst: net.destination_v6(),
            r1: pick(net.router_v6(1)),
            r2: pick(net.router_v6(2)),
            hole: net.blackhole_v6(),
            unreach: net.unreachable_v6(),
        }
    } else {
        Addrs {
            v: "ip-4",
            dst: net.destination_v4(),
            r1: pick(net.router_v4(1)),
            r2: pick(net.router_v4(2)),
            hole: net.blackhole_v4(),
            unreach: net.unreachable_v4(),
        }
    }
}

/// Runs `cmd` (already inside the namespace) with a 60 s cap, feeding `input`.
fn run_capped(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn inside the namespace");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input).expect("write input");
    drop(stdin);
    child.wait_with_output().expect("child finishes")
}

/// Runs an mtr-packet program over `script` in the source namespace; returns its replies
/// with round-trip times blanked, sorted.
fn replies(net: &Topology, program: &str, extra: &[&str], script: &str) -> Vec<String> {
    let mut lines: Vec<String> = replies_in(net.source(), program, extra, script)
        .iter()
        .map(|l| match l.split_once(" round-trip-time ") {
            Some((head, tail)) => {
                let rest = tail.split_once(' ').map(|(_, r)| r).unwrap_or("");
                format!("{head} round-trip-time _ {rest}")
                    .trim_end()
                    .to_owned()
            }
            None => l.clone(),
        })
        .collect();
    lines.sort();
    lines
}

fn comparison_script(a: &Addrs) -> String {
    let Addrs {
        v,
        dst,
        hole,
        unreach,
        ..
    } = a;
    format!(
        "1 send-probe {v} {dst} ttl 1\n\
         2 send-probe {v} {dst} ttl 2\n\
         3 send-probe {v} {dst}\n\
         4 send-probe {v} {dst} protocol udp port {CLOSED_UDP_PORT} ttl 1\n\
         5 send-probe {v} {dst} protocol udp port {CLOSED_UDP_PORT}\n\
         6 send-probe {v} {dst} protocol udp port {OPEN_UDP_PORT} timeout 1\n\
         7 send-probe {v} {dst} protocol tcp port {CLOSED_TCP_PORT} ttl 2\n\
         8 send-probe {v} {dst} protocol tcp port {CLOSED_TCP_PORT}\n\
         9 send-probe {v} {dst} protocol tcp port {OPEN_TCP_PORT}\n\
         10 send-probe {v} {hole} timeout 1\n\
         11 send-probe {v} {hole} protocol tcp port 80 timeout 1\n\
         12 send-probe {v} {unreach} timeout 5\n\
         13 send-probe {v} {unreach} protocol udp port 53 timeout 5\n\
         14 send-probe {v} {dst} size 200 bit-pattern 170 tos 16\n\
         15 check-support feature {v}\n\
         16 check-support feature sctp\n\
         17 send-probe {v} {dst} protocol sctp\n\
         18 send-probe {v} not-an-address\n\
         19 frobnicate\n\
         junk\n\
         20 send-probe {v} {dst} protocol udp local-port 100\n\
         21 send-probe {v} {dst} protocol quic\n\
         22 check-support feature version\n\
         23 check-support\n\
         24 send-probe ttl 3\n\
         25 send-probe {v} {dst} ttl\n"
    )
}

#[test]
fn same_replies_as_debians_mtr_packet() {
    skip_unless!(Namespaces, Program("mtr-packet"));
    let net = Topology::builder().routers(2).build().expect("topology");
    for v6 in [false, true] {
        let a = addrs(&net, v6);
        let script = comparison_script(&a);
        let (theirs, ours) = std::thread::scope(|s| {
            let theirs = s.spawn(|| replies(&net, DEBIAN, &[], &script));
            let ours = s.spawn(|| replies(&net, OURS, &["--dialect", "0.95"], &script));
            (
                theirs.join().expect("debian run"),
                ours.join().expect("our run"),
            )
        });
        assert_eq!(ours, theirs, "ours (left) vs Debian's mtr-packet (right)");
        // Sanity: the script exercised what it meant to.
        let (v, r1, r2, dst) = (a.v, a.r1, a.r2, a.dst);
        for want in [
            format!("1 ttl-expired {v} {r1} round-trip-time _"),
            format!("2 ttl-expired {v} {r2} round-trip-time _"),
            format!("3 reply {v} {dst} round-trip-time _"),
            "10 no-reply".to_owned(),
            format!("12 no-route {v} {r2} round-trip-time _"),
            "0 command-parse-error".to_owned(),
        ] {
            assert!(ours.contains(&want), "missing {want:?} in {ours:#?}");
        }
    }
}

#[test]
fn in_flight_limit_is_enforced() {
    skip_unless!(Namespaces);
    let net = Topology::builder().routers(1).build().expect("topology");
    let hole = net.blackhole_v4();
    let script = format!(
        "1 send-probe ip-4 {hole} timeout 1\n2 send-probe ip-4 {hole} timeout 1\n\
         3 send-probe ip-4 {hole} timeout 1\n"
    );
    let got = replies(&net, OURS, &["--max-in-flight", "2"], &script);
    assert_eq!(got, ["1 no-reply", "2 no-reply", "3 probes-exhausted"]);
}

#[test]
fn current_dialect_names_the_unreachable_kind() {
    skip_unless!(Namespaces);
    // 5 s, not less: in a fresh topology the first IPv6 packets wait about a second for
    // neighbour discovery at each hop.
    let net = Topology::builder().routers(2).build().expect("topology");
    for v6 in [false, true] {
        let a = addrs(&net, v6);
        let script = format!(
            "1 send-probe {v} {u} timeout 5\n2 check-support feature version\n",
            v = a.v,
            u = a.unreach
        );
        let got = replies(&net, OURS, &[], &script);
        assert_eq!(
            got,
            [
                format!("1 no-route-host {} {} round-trip-time _", a.v, a.r2),
                "2 feature-support support 0.96".to_owned(),
            ]
        );
    }
}

/// Runs an mtr-packet program over `script` inside `ns`; returns its sorted replies.
fn replies_in(ns: &Namespace, program: &str, extra: &[&str], script: &str) -> Vec<String> {
    let mut cmd = ns.command("timeout");
    cmd.arg("60").arg(program).args(extra);
    let out = run_capped(cmd, script.as_bytes());
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[test]
fn no_local_route_is_reported_like_mtr_packet() {
    skip_unless!(Namespaces, Program("mtr-packet"));
    // A namespace with only loopback: nothing is routable.
    let ns = Namespace::create("bare").expect("namespace");
    let script = "1 send-probe ip-4 192.0.2.1\n\
                  2 send-probe ip-6 2001:db8::1\n\
                  3 send-probe ip-4 192.0.2.1 protocol udp\n\
                  4 send-probe ip-4 192.0.2.1 protocol tcp\n";
    let theirs = replies_in(&ns, DEBIAN, &[], script);
    let ours = replies_in(&ns, OURS, &["--dialect", "0.95"], script);
    assert_eq!(ours, theirs, "ours (left) vs Debian's mtr-packet (right)");
    let current = replies_in(&ns, OURS, &[], script);
    assert_eq!(
        current,
        (1..=4)
            .map(|t| format!("{t} no-route-network"))
            .collect::<Vec<_>>()
    );
}

/// A small deterministic generator (xorshift), so the differential script is the same on
/// every run and needs no extra crate.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random command lines that never ask for a probe that could be sent: `send-probe`
/// appears only without an address family or with a malformed argument list.
fn random_script(seed: u64, lines: usize) -> Vec<u8> {
    const WORDS: &[&[u8]] = &[
        b"check-support",
        b"feature",
        b"version",
        b"ip-4",
        b"ip-6",
        b"send-probe",
        b"icmp",
        b"udp",
        b"tcp",
        b"sctp",
        b"mark",
        b"ttl",
        b"frobnicate",
        b"0",
        b"-1",
        b"+7",
        b"12abc",
        b"99999999999",
        b"99999999999999999999",
        b"4294967297",
        b"-2147483649",
        b"\xff\xfe",
        b"a\rb",
        b"x",
    ];
    const SPACES: &[&[u8]] = &[b" ", b"  ", b"\t", b"\x0b", b"\x0c", b"\r"];
    let mut rng = Xorshift(seed);
    let mut out = Vec::new();
    for _ in 0..lines {
        let mut line: Vec<u8> = Vec::new();
        match rng.below(20) {
            // An over-long line: a buffer overflow, then its tail as a command.
            0 => line.extend(std::iter::repeat_n(b'7', 4000 + rng.below(300))),
            _ => {
                for i in 0..rng.below(40) {
                    if i > 0 || rng.below(4) == 0 {
                        line.extend_from_slice(SPACES[rng.below(SPACES.len())]);
                    }
                    line.extend_from_slice(WORDS[rng.below(WORDS.len())]);
                }
            }
        }
        // Anything that names an address family in a send-probe could send a packet.
        let text = String::from_utf8_lossy(&line).into_owned();
        if text.contains("send-probe") && text.contains("ip-") {
            continue;
        }
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    out
}

#[test]
fn random_lines_get_the_same_replies_as_debians() {
    skip_unless!(Namespaces, Program("mtr-packet"));
    // Only loopback here, and no line asks for a sendable probe anyway.
    let ns = Namespace::create("fuzz").expect("namespace");
    for seed in [1, 0x9e37_79b9_7f4a_7c15, 42_4242] {
        let script = random_script(seed, 400);
        let run = |program: &str, extra: &[&str]| {
            let mut cmd = ns.command("timeout");
            cmd.arg("60").arg(program).args(extra);
            let out = run_capped(cmd, &script);
            assert!(out.status.success(), "{program} failed");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let theirs = run(DEBIAN, &[]);
        let ours = run(OURS, &["--dialect", "0.95"]);
        let n = theirs.lines().count();
        assert!(n > 200, "the script exercised little: {n} replies");
        assert_eq!(ours, theirs, "seed {seed}: ours (left) vs Debian's (right)");
    }
}

const PYTHON_CLIENT: &str = r#"
import asyncio, json, sys
import mtrpacket

async def main(dst, hole, udp_port, tcp_port):
    out = {}
    async with mtrpacket.MtrPacket() as mtr:
        out["udp"] = await mtr.check_support("udp")
        out["sctp"] = await mtr.check_support("sctp")
        trace = []
        for ttl in (1, 2, 3):
            r = await mtr.probe(dst, ttl=ttl)
            trace.append([r.success, r.result, r.responder, r.time_ms is not None])
        out["trace"] = trace
        r = await mtr.probe(dst, protocol="tcp", port=int(tcp_port))
        out["tcp"] = [r.success, r.result, r.responder]
        r = await mtr.probe(dst, protocol="udp", port=int(udp_port), ttl=1)
        out["udp_ttl1"] = [r.success, r.result]
        r = await mtr.probe(hole, timeout=1)
        out["hole"] = [r.success, r.result, r.responder]
        many = await asyncio.gather(*[mtr.probe(dst, ttl=1 + i % 3) for i in range(60)])
        out["many"] = sorted({(p.result, p.responder) for p in many})
    print(json.dumps(out))

asyncio.run(main(*sys.argv[1:]))
"#;

/// Runs the Python client with `MTR_PACKET=program`; returns its JSON line.
fn python_client(net: &Topology, program: &str, a: &Addrs) -> String {
    let mut cmd = net.source().command("timeout");
    cmd.args(["60", "python3", "-c", PYTHON_CLIENT])
        .arg(a.dst.to_string())
        .arg(a.hole.to_string())
        .arg(CLOSED_UDP_PORT.to_string())
        .arg(CLOSED_TCP_PORT.to_string())
        .env("MTR_PACKET", program);
    let out = run_capped(cmd, b"");
    assert!(
        out.status.success(),
        "python mtrpacket with {program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn python_mtrpacket_gets_the_same_results() {
    skip_unless!(Namespaces, Program("mtr-packet"), Program("python3"));
    let net = Topology::builder().routers(2).build().expect("topology");
    for v6 in [false, true] {
        let a = addrs(&net, v6);
        let ours = python_client(&net, OURS, &a);
        let theirs = python_client(&net, DEBIAN, &a);
        assert_eq!(
            ours, theirs,
            "mtrpacket via ours (left) vs Debian's (right)"
        );
        let (r1, r2, dst) = (a.r1, a.r2, a.dst);
        assert!(
            ours.contains(&format!(
                r#""trace": [[false, "ttl-expired", "{r1}", true], [false, "ttl-expired", "{r2}", true], [true, "reply", "{dst}", true]]"#
            )),
            "{ours}"
        );
        assert!(
            ours.contains(r#""hole": [false, "no-reply", null]"#),
            "{ours}"
        );
        assert!(ours.contains(r#""udp": true, "sctp": false"#), "{ours}");
    }
}

/// Runs `mtr --report` against `target` with `MTR_PACKET=program`; returns the hosts of
/// the hop lines and their loss column.
fn mtr_report(
    net: &Topology,
    program: &str,
    target: IpAddr,
    extra: &[&str],
) -> Vec<(String, String)> {
    let mut cmd = net.source().command("timeout");
    cmd.args([
        "60",
        "mtr",
        "--report",
        "--report-cycles",
        "3",
        "--interval",
        "0.1",
    ])
    .args(["--gracetime", "2", "--no-dns"])
    .args(extra)
    .arg(target.to_string())
    .env("MTR_PACKET", program);
    let out = run_capped(cmd, b"");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "mtr with {program}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Hop lines look like "  1.|-- 198.18.0.2   0.0%     3    0.1 ...".
    text.lines()
        .filter_map(|l| l.split_once("|-- "))
        .filter_map(|(_, rest)| {
            let mut f = rest.split_whitespace();
            Some((f.next()?.to_owned(), f.next()?.to_owned()))
        })
        .collect()
}

#[test]
fn mtr_report_through_ours_shows_every_hop() {
    skip_unless!(Namespaces, Program("mtr-packet"), Program("mtr"));
    let net = Topology::builder().routers(2).build().expect("topology");
    for (v6, extra) in [
        (false, &[][..]),
        (true, &[][..]),
        (false, &["--tcp", "--port", "8081"][..]),
        (false, &["--udp"][..]),
    ] {
        let a = addrs(&net, v6);
        let (hops, theirs) = std::thread::scope(|s| {
            let ours = s.spawn(|| mtr_report(&net, OURS, a.dst, extra));
            let theirs = s.spawn(|| mtr_report(&net, DEBIAN, a.dst, extra));
            (
                ours.join().expect("mtr via ours"),
                theirs.join().expect("mtr via Debian's"),
            )
        });
        let want: Vec<(String, String)> = [a.r1, a.r2, a.dst]
            .iter()
            .map(|h| (h.to_string(), "0.0%".to_owned()))
            .collect();
        assert_eq!(hops, want, "mtr {extra:?} via ours");
        assert_eq!(
            hops, theirs,
            "mtr {extra:?}: ours (left) vs Debian's (right)"
        );
    }
}

/// Issue 13 defect 4: Debian 12's mtr 0.95, through ours with no flag (`MTR_PACKET` cannot
/// pass one), shows a hop that answers "destination unreachable" as it does through
/// Debian's mtr-packet, IPv4 and IPv6.
#[test]
fn mtr_095_shows_an_unreachable_hop_as_through_debians() {
    skip_unless!(Namespaces, Program("mtr-packet"), Program("mtr"));
    let net = Topology::builder().routers(2).build().expect("topology");
    for v6 in [false, true] {
        let a = addrs(&net, v6);
        let (ours, theirs) = std::thread::scope(|s| {
            let ours = s.spawn(|| mtr_report(&net, OURS, a.unreach, &[]));
            let theirs = s.spawn(|| mtr_report(&net, DEBIAN, a.unreach, &[]));
            (ours.join().expect("ours"), theirs.join().expect("theirs"))
        });
        assert!(
            theirs.iter().any(|(host, _)| *host == a.r2.to_string()),
            "Debian's shows the router that answers unreachable: {theirs:?}"
        );
        assert_eq!(ours, theirs, "ours (left) vs Debian's (right)");
    }
}

/// `NETLOOM_MTR_PACKET_DIALECT` picks the dialect where no flag can be given, and beats
/// the parent detection both ways: `current` makes mtr 0.95 lose the unreachable hop,
/// `0.95` gives a non-mtr client the old word; a bad value is refused naming the variable.
#[test]
fn dialect_environment_variable_is_honoured() {
    skip_unless!(Namespaces, Program("mtr"));
    let net = Topology::builder().routers(2).build().expect("topology");
    let a = addrs(&net, false);
    let mut cmd = net.source().command("timeout");
    cmd.args([
        "60",
        "env",
        "NETLOOM_MTR_PACKET_DIALECT=current",
        "mtr",
        "--report",
        "--report-cycles",
        "3",
        "--interval",
        "0.1",
        "--gracetime",
        "2",
        "--no-dns",
        &a.unreach.to_string(),
    ])
    .env("MTR_PACKET", OURS);
    let out = run_capped(cmd, b"");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().rfind(|l| l.contains("|-- "));
    assert!(
        last.is_some_and(|l| l.contains("|-- ???") && l.contains("100.0")),
        "with the current dialect mtr 0.95 drops the unreachable answers: {text}"
    );

    let script = format!("1 send-probe {} {} timeout 5\n", a.v, a.unreach);
    let mut cmd = net.source().command("env");
    cmd.args(["NETLOOM_MTR_PACKET_DIALECT=0.95", "timeout", "60", OURS]);
    let out = run_capped(cmd, script.as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .split(" round-trip-time")
            .next(),
        Some(format!("1 no-route {} {}", a.v, a.r2).as_str())
    );

    let mut cmd = net.source().command("env");
    cmd.args(["NETLOOM_MTR_PACKET_DIALECT=0.97", OURS]);
    let out = run_capped(cmd, b"");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("NETLOOM_MTR_PACKET_DIALECT") && err.contains("0.95"),
        "{err}"
    );
}
