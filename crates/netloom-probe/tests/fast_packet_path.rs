//! The `mtr-packet` session's submit path and its packet-socket sends, on a namespace
//! topology (source → 2 routers → destination, plus a blackholed address): ttl-expired
//! from each hop, the answering host, the blackhole's no-reply, IPv4 and IPv6, ICMP and
//! UDP — the same replies with the packet socket as through the raw IP sockets — and two
//! sessions at once that never take each other's replies. Needs root; every namespace is
//! removed on drop.
mod common;

use netloom_testnet::{Requirement::*, skip_unless};
use std::collections::BTreeMap;
use std::net::IpAddr;

use common::in_namespace;
use netloom_probe::mtr_packet::{Session, SessionConfig, SessionStats, Support};
use netloom_probe::{PrivilegeMode, Prober, ProberConfig};
use netloom_testnet::{CLOSED_UDP_PORT, Topology};

const ROUTERS: usize = 2;

/// Runs `script` through a fresh session; returns each token's reply without its
/// round-trip time, and the session's counters.
async fn session(script: &str, packet_socket: bool) -> (BTreeMap<i32, String>, SessionStats) {
    let prober = Prober::open(ProberConfig {
        privilege: PrivilegeMode::Raw,
        ..Default::default()
    })
    .await
    .expect("raw sockets (tests run as root)");
    let config = SessionConfig {
        packet_socket,
        ..Default::default()
    };
    let mut out = Vec::new();
    let stats = Session::new(prober, config, Support::detect())
        .run(script.as_bytes(), &mut out)
        .await
        .expect("session");
    let text = String::from_utf8(out).expect("replies are text");
    let replies = text
        .lines()
        .map(|line| {
            let (token, rest) = line.split_once(' ').expect("token");
            let rest = rest.split(" round-trip-time").next().unwrap_or(rest);
            (token.parse().expect("numeric token"), rest.to_string())
        })
        .collect();
    (replies, stats)
}

/// The probes of one script: (token, command) for every hop and the blackhole, ICMP and
/// UDP, IPv4 and IPv6, and the replies expected.
fn script(net: &Topology, first_token: i32) -> (String, BTreeMap<i32, String>) {
    let mut lines = String::new();
    let mut want = BTreeMap::new();
    let mut token = first_token;
    for (ip, dest, hop, hole) in [
        (
            "ip-4",
            net.destination_v4(),
            (1..=ROUTERS).map(|h| net.router_v4(h)).collect::<Vec<_>>(),
            net.blackhole_v4(),
        ),
        (
            "ip-6",
            net.destination_v6(),
            (1..=ROUTERS).map(|h| net.router_v6(h)).collect::<Vec<_>>(),
            net.blackhole_v6(),
        ),
    ] {
        for proto in ["icmp", "udp"] {
            let port = if proto == "udp" {
                format!(" port {CLOSED_UDP_PORT}")
            } else {
                String::new()
            };
            let mut add = |ttl: usize, target: IpAddr, timeout: u32, reply: String| {
                lines.push_str(&format!(
                    "{token} send-probe {ip} {target} protocol {proto}{port} ttl {ttl} timeout {timeout}\n"
                ));
                want.insert(token, reply);
                token += 1;
            };
            for (i, router) in hop.iter().enumerate() {
                let router = router.expect("router address");
                add(i + 1, dest, 5, format!("ttl-expired {ip} {router}"));
            }
            // The echo reply, or the closed port's port unreachable: both `reply`.
            add(ROUTERS + 1, dest, 5, format!("reply {ip} {dest}"));
            add(64, hole, 1, "no-reply".to_string());
        }
    }
    (lines, want)
}

/// Resolves the source's next hop (ARP / neighbour discovery) so that the packet socket
/// has a path from the first probe of the sessions under test.
async fn warm_up(net_dest: (IpAddr, IpAddr)) {
    let (v4, v6) = net_dest;
    let warm = format!(
        "1 send-probe ip-4 {v4} protocol icmp timeout 5\n2 send-probe ip-6 {v6} protocol icmp timeout 5\n"
    );
    let (replies, _) = session(&warm, false).await;
    assert!(
        replies.values().all(|r| r.starts_with("reply")),
        "{replies:?}"
    );
}

#[test]
fn packet_socket_replies_match_raw_socket_replies_v4_v6() {
    skip_unless!(Root, Namespaces);
    let net = Topology::builder()
        .routers(ROUTERS)
        .build()
        .expect("topology");
    let (lines, want) = script(&net, 100);
    let dest = (net.destination_v4(), net.destination_v6());
    let probes = want.len() as u64;
    in_namespace(net.source(), || async move {
        warm_up(dest).await;
        let (fast, stats) = session(&lines, true).await;
        assert_eq!(fast, want, "through the packet socket");
        assert_eq!(stats.probes, probes);
        assert_eq!(
            stats.packet_socket_sends, probes,
            "every probe left through the packet socket"
        );
        let (raw, stats) = session(&lines, false).await;
        assert_eq!(raw, want, "through the raw IP sockets");
        assert_eq!(stats.packet_socket_sends, 0);
    });
}

#[test]
fn two_sessions_at_once_never_take_each_others_replies() {
    skip_unless!(Root, Namespaces);
    let net = Topology::builder()
        .routers(ROUTERS)
        .build()
        .expect("topology");
    let (a_lines, a_want) = script(&net, 1000);
    let (b_lines, b_want) = script(&net, 1000);
    // Many answered probes each, interleaved in time, to the same target.
    let dest = net.destination_v4();
    let more = |from: i32| {
        (from..from + 200)
            .map(|t| format!("{t} send-probe ip-4 {dest} protocol icmp timeout 5\n"))
            .collect::<String>()
    };
    let (a_lines, b_lines) = (a_lines + &more(5000), b_lines + &more(5000));
    let dest6 = net.destination_v6();
    in_namespace(net.source(), || async move {
        warm_up((dest, dest6)).await;
        let ((a, a_stats), (b, b_stats)) =
            tokio::join!(session(&a_lines, true), session(&b_lines, true));
        for (replies, want, stats) in [(a, a_want, a_stats), (b, b_want, b_stats)] {
            assert_eq!(replies.len(), want.len() + 200, "one reply per probe");
            for (token, reply) in &want {
                assert_eq!(replies.get(token), Some(reply), "token {token}");
            }
            for t in 5000..5200 {
                assert_eq!(replies[&t], format!("reply ip-4 {dest}"), "token {t}");
            }
            assert!(stats.packet_socket_sends > 0);
        }
    });
}
