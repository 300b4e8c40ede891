//! TCP SYN probes (raw mode) across a namespace topology (source → 2 routers →
//! destination): SYN-ACK from an open port and RST from a closed one count as replies,
//! ttl-expired from each router, no reply from a blackholed address, IPv4 and IPv6; the
//! target is left without a connection; two probers never take each other's answers;
//! a given local port is held for the probe. Also the `connect()` path of unprivileged
//! mode when the kernel gives up on the SYN (ETIMEDOUT): no reply, as mtr-packet.
//! Needs root (namespaces, raw sockets); every namespace is removed on drop.
mod common;

use netloom_testnet::{Requirement::*, skip_unless};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::time::Duration;

use common::{count_expected, in_namespace};
use netloom_probe::{
    Outcome, PrivilegeMode, ProbeError, ProbeOptions, ProbeReply, Prober, ProberConfig, Protocol,
};
use netloom_testnet::{CLOSED_TCP_PORT, OPEN_TCP_PORT, Topology};

const ROUTERS: usize = 2;

async fn prober(privilege: PrivilegeMode) -> Prober {
    Prober::open(ProberConfig {
        privilege,
        ..Default::default()
    })
    .await
    .expect("sockets (tests run as root)")
}

/// TCP to `port` with `ttl`; 5 s for answers (a fresh topology's first IPv6 packets
/// wait about 1 s per hop for neighbour discovery).
fn tcp(port: u16, ttl: u8) -> ProbeOptions {
    ProbeOptions::default()
        .with_protocol(Protocol::Tcp)
        .with_port(port)
        .with_ttl(ttl)
        .with_timeout(Duration::from_secs(5))
}

fn check(r: &ProbeReply, outcome: Outcome, from: Option<IpAddr>, what: &str) {
    assert_eq!(
        (r.outcome, r.responder, r.rtt.is_some()),
        (outcome, from, from.is_some()),
        "{what}: {r:?}"
    );
}

#[test]
fn syn_probes_open_closed_each_hop_and_blackhole_v4_v6() {
    skip_unless!(Root, Namespaces);
    let net = Topology::builder()
        .routers(ROUTERS)
        .open_ports(true)
        .build()
        .expect("topology");
    let families: Vec<_> = [false, true]
        .into_iter()
        .map(|v6| {
            let hops: Vec<_> = (1..=ROUTERS)
                .map(|h| {
                    if v6 {
                        net.router_v6(h)
                    } else {
                        net.router_v4(h)
                    }
                })
                .collect();
            let (dst, hole) = if v6 {
                (net.destination_v6(), net.blackhole_v6())
            } else {
                (net.destination_v4(), net.blackhole_v4())
            };
            (dst, hole, hops)
        })
        .collect();
    in_namespace(net.source(), || async move {
        let p = prober(PrivilegeMode::Raw).await;
        for (dst, hole, hops) in &families {
            for (i, hop) in hops.iter().enumerate() {
                let ttl = u8::try_from(i + 1).unwrap();
                let r = p.probe(*dst, tcp(CLOSED_TCP_PORT, ttl)).await.unwrap();
                check(
                    &r,
                    Outcome::TtlExpired,
                    *hop,
                    &format!("ttl {ttl} to {dst}"),
                );
            }
            let r = p.probe(*dst, tcp(OPEN_TCP_PORT, 64)).await.unwrap();
            check(&r, Outcome::Reply, Some(*dst), "open port (SYN-ACK)");
            let r = p.probe(*dst, tcp(CLOSED_TCP_PORT, 64)).await.unwrap();
            check(&r, Outcome::Reply, Some(*dst), "closed port (RST)");
            let quick = tcp(80, 64).with_timeout(Duration::from_millis(400));
            let r = p.probe(*hole, quick).await.unwrap();
            check(&r, Outcome::NoReply, None, "blackhole");
        }
        let s = p.stats();
        assert_eq!((s.malformed, s.answered, s.timed_out), (0, 8, 2), "{s:?}");
    });
}

#[test]
fn a_syn_probe_leaves_no_connection_on_the_target() {
    skip_unless!(Root, Namespaces);
    let net = Topology::builder().routers(1).build().expect("topology");
    let dst = net.destination_v4();
    let listener = net
        .destination()
        .run(|| TcpListener::bind(SocketAddr::new(dst, 0)))
        .expect("thread in the destination")
        .expect("listener");
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    in_namespace(net.source(), || async move {
        let p = prober(PrivilegeMode::Raw).await;
        let probes = (0..20).map(|_| p.probe(dst, tcp(port, 64)));
        for r in futures::future::join_all(probes).await {
            check(&r.unwrap(), Outcome::Reply, Some(dst), "open port");
        }
    });
    // The source's kernel reset every SYN-ACK: no handshake completed, nothing to accept
    // (a connect() probe would have left 20 connections in the accept queue).
    std::thread::sleep(Duration::from_millis(100));
    let err = listener.accept().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{err}");
}

#[test]
fn two_probers_to_one_target_never_take_each_others_answers() {
    skip_unless!(Root, Namespaces);
    let net = Topology::builder()
        .routers(ROUTERS)
        .open_ports(true)
        .build()
        .expect("topology");
    let (v4, v6) = (net.destination_v4(), net.destination_v6());
    in_namespace(net.source(), || async move {
        let n = 300;
        let (a, b) = (
            prober(PrivilegeMode::Raw).await,
            prober(PrivilegeMode::Raw).await,
        );
        // Neighbour discovery first: a fresh hop queues only a few packets while it
        // resolves IPv6 neighbours and drops the rest of a burst.
        for dst in [v4, v6] {
            let r = a.probe(dst, tcp(CLOSED_TCP_PORT, 64)).await.unwrap();
            check(&r, Outcome::Reply, Some(dst), "warm-up");
        }
        let a = prober(PrivilegeMode::Raw).await;
        // Same targets, same ports, same time: a's probes expire at the first router,
        // b's reach the host (open and closed port alternately).
        let run = |p: Prober, ttl: u8| async move {
            let futs = (0..n).map(|i| {
                let dst = if i % 2 == 0 { v4 } else { v6 };
                let port = if i % 4 < 2 {
                    OPEN_TCP_PORT
                } else {
                    CLOSED_TCP_PORT
                };
                p.probe(dst, tcp(port, ttl))
            });
            let ok = count_expected(ttl, futs).await;
            (ok, p.stats())
        };
        let ((ok_a, sa), (ok_b, sb)) = tokio::join!(run(a, 1), run(b, 64));
        assert_eq!((ok_a, ok_b), (n, n), "{sa:?} {sb:?}");
        assert_eq!((sa.answered, sb.answered), (n as u64, n as u64));
        // a saw b's SYN-ACKs and resets on its raw TCP socket and left them alone.
        assert!(sa.unmatched > 0, "{sa:?}");
    });
}

#[test]
fn a_given_local_port_is_held_for_the_probe() {
    skip_unless!(Root, Namespaces);
    let net = Topology::builder().routers(1).build().expect("topology");
    let dst = net.destination_v4();
    in_namespace(net.source(), || async move {
        let p = prober(PrivilegeMode::Raw).await;
        // A free port: bind one, note it, let it go.
        let port = TcpListener::bind("0.0.0.0:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut o = tcp(CLOSED_TCP_PORT, 64);
        o.local_port = Some(port);
        let r = p.probe(dst, o.clone()).await.unwrap();
        check(&r, Outcome::Reply, Some(dst), "from a given local port");
        // While a probe holds the port, a second one from it is refused, as a second
        // probe socket bound to it would be.
        let (first, second) = tokio::join!(p.probe(dst, o.clone()), async {
            tokio::task::yield_now().await;
            p.probe(dst, o.clone()).await
        });
        check(&first.unwrap(), Outcome::Reply, Some(dst), "first");
        assert!(
            matches!(second, Err(ProbeError::AddressInUse { .. })),
            "{second:?}"
        );
        // Someone else's port: refused too.
        let taken = TcpListener::bind("0.0.0.0:0").unwrap();
        o.local_port = Some(taken.local_addr().unwrap().port());
        let r = p.probe(dst, o).await;
        assert!(matches!(r, Err(ProbeError::AddressInUse { .. })), "{r:?}");
    });
}

#[test]
fn connect_path_reports_no_reply_when_the_kernel_gives_up_the_syn() {
    skip_unless!(Root, Namespaces);
    let net = Topology::builder().routers(1).build().expect("topology");
    let hole = net.blackhole_v4();
    // One SYN retransmission: the kernel fails the connect with ETIMEDOUT after ~3 s,
    // before the probe's 5 s timeout.
    net.source()
        .sysctl(&[
            ("net.ipv4.tcp_syn_retries", "1"),
            ("net.ipv4.ping_group_range", "0 2147483647"),
        ])
        .expect("sysctls in the source namespace");
    in_namespace(net.source(), || async move {
        let p = prober(PrivilegeMode::Unprivileged).await;
        assert!(!p.is_raw());
        let started = std::time::Instant::now();
        let r = p.probe(hole, tcp(80, 64)).await.unwrap();
        check(
            &r,
            Outcome::NoReply,
            None,
            "connect timed out by the kernel",
        );
        // Reported when the probe's own timeout ends, as mtr-packet does.
        assert!(started.elapsed() >= Duration::from_secs(5));
    });
}
