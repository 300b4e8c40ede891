//! Both receive paths of a raw-mode prober — the packet socket's ring (the default) and the
//! raw ICMP socket (`ProberConfig::receive_ring: false`) — give the same answers on a
//! namespace topology (source → 2 routers → destination): ttl-expired from each hop, the
//! destination's reply, the blackhole's no-reply, ICMP and UDP, IPv4 and IPv6. Needs root;
//! every namespace is removed on drop.
mod common;

use netloom_testnet::{Requirement::*, skip_unless};
use std::net::IpAddr;
use std::time::Duration;

use futures::future::join_all;
use netloom_probe::{Outcome, PrivilegeMode, ProbeOptions, Prober, ProberConfig, Protocol};
use netloom_testnet::{CLOSED_UDP_PORT, Topology};

const ROUTERS: usize = 2;

/// (target, ttl, protocol, expected outcome, expected responder) for every case.
type Case = (IpAddr, u8, Protocol, Outcome, Option<IpAddr>);

fn cases(net: &Topology) -> Vec<Case> {
    let mut out = Vec::new();
    for v6 in [false, true] {
        let (dest, hole) = if v6 {
            (net.destination_v6(), net.blackhole_v6())
        } else {
            (net.destination_v4(), net.blackhole_v4())
        };
        for proto in [Protocol::Icmp, Protocol::Udp] {
            for hop in 1..=ROUTERS {
                let router = if v6 {
                    net.router_v6(hop)
                } else {
                    net.router_v4(hop)
                };
                out.push((dest, hop as u8, proto, Outcome::TtlExpired, router));
            }
            let ttl = (ROUTERS + 1) as u8;
            out.push((dest, ttl, proto, Outcome::Reply, Some(dest)));
            out.push((hole, 64, proto, Outcome::NoReply, None));
        }
    }
    out
}

fn probe_all(net: &Topology, receive_ring: bool) {
    let cases = cases(net);
    net.source()
        .run(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async move {
                    let prober = Prober::open(ProberConfig {
                        privilege: PrivilegeMode::Raw,
                        receive_ring,
                        ..Default::default()
                    })
                    .await
                    .expect("raw sockets (tests run as root)");
                    let replies = join_all(cases.iter().map(|&(target, ttl, proto, want, _)| {
                        // 5 s: a fresh topology's IPv6 neighbour discovery takes ~1 s per
                        // hop; the blackhole only needs to time out.
                        let timeout = if want == Outcome::NoReply { 1 } else { 5 };
                        let opts = ProbeOptions::default()
                            .with_protocol(proto)
                            .with_ttl(ttl)
                            .with_port(CLOSED_UDP_PORT)
                            .with_timeout(Duration::from_secs(timeout));
                        prober.probe(target, opts)
                    }))
                    .await;
                    for (case, reply) in cases.iter().zip(replies) {
                        let reply = reply.expect("probe sent");
                        let (_, _, _, outcome, responder) = *case;
                        assert_eq!(reply.outcome, outcome, "ring {receive_ring}: {case:?}");
                        assert_eq!(reply.responder, responder, "ring {receive_ring}: {case:?}");
                    }
                    assert_eq!(prober.stats().malformed, 0);
                })
        })
        .expect("thread inside the namespace");
}

#[test]
fn ring_and_raw_socket_receive_give_the_same_answers() {
    skip_unless!(Root, Namespaces);
    let net = Topology::builder()
        .routers(ROUTERS)
        .build()
        .expect("topology");
    probe_all(&net, true);
    probe_all(&net, false);
}
