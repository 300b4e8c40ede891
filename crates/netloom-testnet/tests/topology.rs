//! The topology really routes: per-hop time-exceeded, an answering host, a blackhole, an
//! unreachable range, open and closed ports — checked with Debian's own `mtr-packet` and
//! plain std sockets, IPv4 and IPv6. Needs root (CI runs as root).

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use netloom_testnet::Requirement::{Namespaces, Program};
use netloom_testnet::{CLOSED_TCP_PORT, OPEN_TCP_PORT, Topology, skip_unless};

/// Runs `script` (mtr-packet commands) through Debian's mtr-packet inside the source
/// namespace and returns the reply lines sorted by token.
fn debian_mtr_packet(net: &Topology, script: &str) -> Vec<String> {
    let mut child = net
        .source()
        .command("/usr/bin/mtr-packet")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("mtr-packet (mtr-tiny) is installed by scripts/install-test-deps");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(script.as_bytes()).expect("write commands");
    drop(stdin);
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut lines: Vec<String> = stdout.lines().map(|l| l.expect("utf-8 line")).collect();
    child.wait().expect("mtr-packet exits");
    lines.sort_by_key(|l| l.split(' ').next().and_then(|t| t.parse::<u32>().ok()));
    lines
}

/// Drops the round-trip time so lines compare.
fn strip_rtt(line: &str) -> String {
    match line.find(" round-trip-time ") {
        Some(i) => line[..i].to_owned(),
        None => line.to_owned(),
    }
}

fn ip_word(a: IpAddr) -> &'static str {
    if a.is_ipv4() { "ip-4" } else { "ip-6" }
}

#[test]
fn routes_answers_and_drops_like_a_real_network() {
    skip_unless!(Namespaces, Program("mtr-packet"));
    let net = Topology::builder().routers(2).build().expect("topology");
    for (dst, r1, r2, hole, unreach) in [
        (
            net.destination_v4(),
            net.router_v4(1),
            net.router_v4(2),
            net.blackhole_v4(),
            net.unreachable_v4(),
        ),
        (
            net.destination_v6(),
            net.router_v6(1),
            net.router_v6(2),
            net.blackhole_v6(),
            net.unreachable_v6(),
        ),
    ] {
        let (r1, r2) = (r1.expect("router 1"), r2.expect("router 2"));
        let v = ip_word(dst);
        let script = format!(
            "1 send-probe {v} {dst} ttl 1\n2 send-probe {v} {dst} ttl 2\n\
             3 send-probe {v} {dst} ttl 3\n4 send-probe {v} {hole} timeout 1\n\
             5 send-probe {v} {unreach} timeout 2\n"
        );
        let got: Vec<String> = debian_mtr_packet(&net, &script)
            .iter()
            .map(|l| strip_rtt(l))
            .collect();
        assert_eq!(
            got[..4],
            [
                format!("1 ttl-expired {v} {r1}"),
                format!("2 ttl-expired {v} {r2}"),
                format!("3 reply {v} {dst}"),
                "4 no-reply".to_owned(),
            ],
            "{got:?}"
        );
        assert!(
            got[4].starts_with(&format!("5 no-route {v} {r2}")),
            "{got:?}"
        );

        // Open and closed TCP ports, from a closure inside the source namespace.
        let (open, closed) = net
            .source()
            .run(move || {
                let t = Duration::from_secs(2);
                (
                    TcpStream::connect_timeout(&SocketAddr::new(dst, OPEN_TCP_PORT), t),
                    TcpStream::connect_timeout(&SocketAddr::new(dst, CLOSED_TCP_PORT), t),
                )
            })
            .expect("run in namespace");
        assert!(open.is_ok(), "{dst} open port: {open:?}");
        let err = closed.expect_err("closed port refuses");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}

#[test]
fn dropping_removes_every_namespace_also_on_panic() {
    skip_unless!(Namespaces);
    let mut names = Vec::new();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let net = Topology::builder().routers(1).build().expect("topology");
        names.push(net.source().name().to_owned());
        names.extend(net.routers().iter().map(|r| r.name().to_owned()));
        names.push(net.destination().name().to_owned());
        for n in &names {
            assert!(Path::new("/run/netns").join(n).exists(), "{n} exists");
        }
        panic!("a failing test");
    }));
    assert!(caught.is_err());
    assert_eq!(names.len(), 3);
    for n in &names {
        assert!(!Path::new("/run/netns").join(n).exists(), "{n} was removed");
    }
}

#[test]
fn rejects_a_topology_without_routers() {
    let err = Topology::builder()
        .routers(0)
        .build()
        .expect_err("0 routers");
    assert!(err.to_string().contains("routers = 0"), "{err}");
}
