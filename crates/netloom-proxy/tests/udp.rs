//! UDP proxies over real UDP sockets on loopback: boundaries, per-peer upstream sockets,
//! expiry, the peer cap, every UDP toxic (tolerances that hold on a loaded 2-core machine),
//! seeded decisions, the HTTP API.
mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use common::{http, json, start};
use netloom_proxy::{ProxyServer, ServerOptions, ToxicSpec, UdpSettings};
use netloom_testnet::wait_until;

fn server(seed: u64) -> ProxyServer {
    ProxyServer::new(ServerOptions {
        seed,
        ..Default::default()
    })
    .unwrap()
}

fn client() -> UdpSocket {
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c
}

/// An upstream that answers each datagram with the same bytes.
fn echo() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = s.local_addr().unwrap();
    thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
        }
    });
    a
}

/// An upstream that answers each datagram with the source address it came from.
fn whoami() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = s.local_addr().unwrap();
    thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok((_, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(from.to_string().as_bytes(), from);
        }
    });
    a
}

/// An upstream that records what it receives.
fn sink() -> (SocketAddr, Receiver<(SocketAddr, Vec<u8>)>) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = s.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            if tx.send((from, buf[..n].to_vec())).is_err() {
                return;
            }
        }
    });
    (a, rx)
}

fn ask(c: &UdpSocket, to: SocketAddr, data: &[u8]) -> Vec<u8> {
    c.send_to(data, to).unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, from) = c.recv_from(&mut buf).expect("an answer through the proxy");
    assert_eq!(from, to, "answers come from the proxy's listen address");
    buf[..n].to_vec()
}

/// Sends datagrams `0..n` (u32 big-endian sequence numbers, padded to `size`), at most
/// 32 KiB (and 64 datagrams) ahead of what the proxy has received, so no socket buffer
/// overflows on a loaded machine.
fn send_numbered(s: &ProxyServer, proxy: &str, c: &UdpSocket, to: SocketAddr, n: u32, size: usize) {
    let m = s.metrics(proxy).unwrap();
    let base = m.udp().received().0;
    let window = (32_768 / size.max(4)).clamp(4, 64) as u64;
    for i in 0..n {
        if m.udp().received().0 - base + window < u64::from(i) {
            wait_until("the proxy to read", Duration::from_secs(20), || {
                m.udp().received().0 - base + window >= u64::from(i)
            });
        }
        let mut d = i.to_be_bytes().to_vec();
        d.resize(size.max(4), 0);
        c.send_to(&d, to).unwrap();
    }
}

/// Collects sequence numbers until `quiet` passes without a datagram.
fn collect(rx: &Receiver<(SocketAddr, Vec<u8>)>, quiet: Duration) -> Vec<u32> {
    let mut v = Vec::new();
    while let Ok((_, d)) = rx.recv_timeout(quiet) {
        v.push(u32::from_be_bytes([d[0], d[1], d[2], d[3]]));
    }
    v
}

#[test]
fn datagram_boundaries_are_kept_both_ways() {
    let s = server(1);
    let p = s
        .udp_proxy("b", "127.0.0.1:0", &echo().to_string())
        .unwrap();
    let c = client();
    for size in [1usize, 3, 100, 1400, 9000, 65_000] {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        assert_eq!(ask(&c, p.listen(), &data), data, "a {size}-byte datagram");
    }
    // Several in flight at once stay several.
    for i in 0..5u8 {
        c.send_to(&vec![i; 10 + i as usize], p.listen()).unwrap();
    }
    let mut buf = [0u8; 100];
    for i in 0..5u8 {
        let (n, _) = c.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &vec![i; 10 + i as usize][..]);
    }
    let m = s.metrics("b").unwrap();
    assert_eq!(m.udp().datagrams(), (11, 11));
    assert_eq!(m.udp().peers(), 1);
}

#[test]
fn each_client_has_its_own_upstream_socket() {
    let s = server(1);
    let p = s
        .udp_proxy("w", "127.0.0.1:0", &whoami().to_string())
        .unwrap();
    let (a, b) = (client(), client());
    let seen_a = String::from_utf8(ask(&a, p.listen(), b"x")).unwrap();
    let seen_b = String::from_utf8(ask(&b, p.listen(), b"x")).unwrap();
    assert_ne!(seen_a, seen_b, "two clients, two upstream source ports");
    assert_ne!(seen_a, p.listen().to_string());
    // The same client keeps its upstream socket.
    assert_eq!(
        String::from_utf8(ask(&a, p.listen(), b"y")).unwrap(),
        seen_a
    );
    assert_eq!(s.metrics("w").unwrap().udp().peers(), 2);
}

#[test]
fn idle_peers_expire_with_their_upstream_socket() {
    let s = server(1);
    let limits = UdpSettings {
        idle_timeout_ms: 300,
        ..UdpSettings::default()
    };
    let p = s
        .udp_proxy_with("e", "127.0.0.1:0", &whoami().to_string(), limits)
        .unwrap();
    let c = client();
    let first = ask(&c, p.listen(), b"x");
    let m = s.metrics("e").unwrap();
    assert_eq!(m.udp().peers(), 1);
    wait_until("the idle peer to expire", Duration::from_secs(10), || {
        m.udp().peers() == 0
    });
    // A new peer, with a new upstream socket.
    let second = ask(&c, p.listen(), b"x");
    assert_ne!(first, second);
    assert_eq!(m.udp().peers_total(), 2);
}

#[test]
fn new_clients_beyond_max_peers_are_refused_and_counted() {
    let s = server(1);
    let limits = UdpSettings {
        max_peers: 1,
        ..UdpSettings::default()
    };
    let p = s
        .udp_proxy_with("cap", "127.0.0.1:0", &echo().to_string(), limits)
        .unwrap();
    let (a, b) = (client(), client());
    assert_eq!(ask(&a, p.listen(), b"a"), b"a");
    b.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    b.send_to(b"b", p.listen()).unwrap();
    assert!(
        b.recv_from(&mut [0u8; 10]).is_err(),
        "no answer beyond max_peers"
    );
    let m = s.metrics("cap").unwrap();
    wait_until("the refusal to be counted", Duration::from_secs(5), || {
        m.udp().peers_refused() >= 1
    });
    assert!(
        s.metrics_text()
            .contains("netloom_proxy_udp_peers_refused_total{proxy=\"cap\"} 1")
    );
    // The tracked client is still served.
    assert_eq!(ask(&a, p.listen(), b"a2"), b"a2");
}

fn loss_run(seed: u64) -> (Vec<u32>, u64) {
    let s = server(seed);
    let (up, rx) = sink();
    let p = s.udp_proxy("loss", "127.0.0.1:0", &up.to_string()).unwrap();
    p.add(ToxicSpec::loss(0.5).upstream()).unwrap();
    let c = client();
    send_numbered(&s, p.name(), &c, p.listen(), 2000, 16);
    let m = s.metrics("loss").unwrap();
    wait_until("2,000 loss decisions", Duration::from_secs(20), || {
        m.udp().datagrams().0 + m.udp().dropped().0 == 2000
    });
    let got = collect(&rx, Duration::from_millis(500));
    assert_eq!(got.len() as u64, m.udp().datagrams().0);
    (got, m.udp().dropped().0)
}

#[test]
fn loss_drops_within_a_binomial_bound_and_the_seed_repeats_it() {
    let (a, dropped) = loss_run(42);
    // Binomial(2000, 0.5): mean 1000, sd 22.4; 5 sd either way.
    assert!((888..=1112).contains(&dropped), "dropped {dropped}");
    assert_eq!(a.len() as u64 + dropped, 2000);
    let (b, _) = loss_run(42);
    assert_eq!(a, b, "same seed, same datagrams: same ones dropped");
    let (c, _) = loss_run(43);
    assert_ne!(a, c, "another seed drops others");
}

#[test]
fn duplicate_sends_copies_and_counts_them() {
    let s = server(5);
    let (up, rx) = sink();
    let p = s.udp_proxy("dup", "127.0.0.1:0", &up.to_string()).unwrap();
    p.add(ToxicSpec::duplicate(0.3).upstream()).unwrap();
    let c = client();
    send_numbered(&s, p.name(), &c, p.listen(), 500, 16);
    let m = s.metrics("dup").unwrap();
    wait_until(
        "500 datagrams and their copies sent",
        Duration::from_secs(20),
        || m.udp().received().0 == 500 && m.udp().datagrams().0 == 500 + m.udp().duplicated(),
    );
    let got = collect(&rx, Duration::from_millis(500));
    let dups = m.udp().duplicated();
    // Binomial(500, 0.3): mean 150, sd 10.2; 5 sd either way.
    assert!((99..=201).contains(&dups), "duplicated {dups}");
    assert_eq!(got.len() as u64, 500 + dups);
    let distinct: BTreeSet<u32> = got.iter().copied().collect();
    assert_eq!(distinct.len(), 500, "every datagram arrived at least once");
    assert!(s.metrics_text().contains(&format!(
        "netloom_proxy_udp_duplicated_total{{proxy=\"dup\"}} {dups}"
    )));
}

#[test]
fn reorder_is_observable_and_loses_nothing() {
    let s = server(9);
    let (up, rx) = sink();
    let p = s.udp_proxy("ro", "127.0.0.1:0", &up.to_string()).unwrap();
    p.add(ToxicSpec::reorder(0.2, 2).upstream()).unwrap();
    let c = client();
    send_numbered(&s, p.name(), &c, p.listen(), 300, 16);
    let m = s.metrics("ro").unwrap();
    // The last held ones leave at their 1 s deadline.
    wait_until("300 datagrams sent", Duration::from_secs(20), || {
        m.udp().datagrams().0 == 300
    });
    let got = collect(&rx, Duration::from_millis(500));
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..300).collect::<Vec<_>>(),
        "nothing lost or doubled"
    );
    let moved = got.windows(2).filter(|w| w[0] > w[1]).count();
    // About 60 of 300 are held back (each makes one descent); 20 is far below.
    assert!(moved >= 20, "only {moved} datagrams came out of order");
    // A held datagram comes out after at most `gap` (2) later ones, unless its deadline
    // released it: position shifts stay small.
    for (pos, seq) in got.iter().enumerate() {
        assert!((*seq as i64 - pos as i64).abs() <= 10, "{seq} at {pos}");
    }
}

#[test]
fn latency_delays_each_datagram_both_ways() {
    let s = server(1);
    let p = s
        .udp_proxy("lat", "127.0.0.1:0", &echo().to_string())
        .unwrap();
    p.add(ToxicSpec::latency(60, 0)).unwrap();
    p.add(ToxicSpec::latency(40, 0).upstream()).unwrap();
    let c = client();
    for i in 0..5u8 {
        let t = Instant::now();
        assert_eq!(ask(&c, p.listen(), &[i]), vec![i]);
        let rtt = t.elapsed();
        assert!(rtt >= Duration::from_millis(100), "round trip {rtt:?}");
    }
}

/// Jitter over real sockets: each datagram waits latency ± jitter (here 30 ± 20 ms, one
/// way), so round trips fall in 10..=50 ms plus scheduling slack and spread out.
#[test]
fn jitter_spreads_each_datagrams_delay_within_its_bounds() {
    let s = server(3);
    let p = s
        .udp_proxy("jit", "127.0.0.1:0", &echo().to_string())
        .unwrap();
    p.add(ToxicSpec::latency(30, 20)).unwrap();
    let c = client();
    let mut rtts = Vec::new();
    for i in 0..20u8 {
        let t = Instant::now();
        assert_eq!(ask(&c, p.listen(), &[i]), vec![i]);
        rtts.push(t.elapsed());
    }
    let (min, max) = (*rtts.iter().min().unwrap(), *rtts.iter().max().unwrap());
    assert!(min >= Duration::from_millis(10), "{rtts:?}");
    assert!(max <= Duration::from_millis(50 + 150), "{rtts:?}");
    assert!(
        max - min >= Duration::from_millis(5),
        "jitter spreads the delays: {rtts:?}"
    );
}

#[test]
fn bandwidth_paces_whole_datagrams() {
    let s = server(1);
    let (up, rx) = sink();
    let p = s.udp_proxy("bw", "127.0.0.1:0", &up.to_string()).unwrap();
    // 100 KB/s: 50 datagrams of 1,000 bytes take 500 ms.
    p.add(ToxicSpec::bandwidth(100).upstream()).unwrap();
    let c = client();
    let t = Instant::now();
    send_numbered(&s, p.name(), &c, p.listen(), 50, 1000);
    let mut n = 0;
    while n < 50 {
        let (_, d) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("all 50 arrive");
        assert_eq!(d.len(), 1000, "datagrams are not cut");
        n += 1;
    }
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(450),
        "50 KB at 100 KB/s in {took:?}"
    );
}

#[test]
fn limit_data_passes_whole_datagrams_then_closes_the_peer() {
    let s = server(1);
    let (up, rx) = sink();
    let p = s.udp_proxy("lim", "127.0.0.1:0", &up.to_string()).unwrap();
    p.add(ToxicSpec::limit_data(1000).upstream()).unwrap();
    let c = client();
    for i in 0..4u32 {
        let mut d = i.to_be_bytes().to_vec();
        d.resize(300, 0);
        c.send_to(&d, p.listen()).unwrap();
        thread::sleep(Duration::from_millis(20));
    }
    let m = s.metrics("lim").unwrap();
    wait_until("4 datagrams handled", Duration::from_secs(10), || {
        m.udp().datagrams().0 + m.udp().dropped().0 == 4
    });
    let got = collect(&rx, Duration::from_millis(400));
    assert_eq!(
        got,
        vec![0, 1, 2],
        "900 bytes fit in 1,000; the 4th does not"
    );
    assert_eq!(m.udp().dropped().0, 1);
    wait_until("the peer to close", Duration::from_secs(5), || {
        m.udp().peers() == 0
    });
    // The client's next datagram is a new peer with a fresh limit.
    c.send_to(&[0u8; 10], p.listen()).unwrap();
    let (_, d) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(d.len(), 10);
    assert_eq!(m.udp().peers_total(), 2);
}

#[test]
fn a_disabled_udp_proxy_drops_and_comes_back_on_the_same_port() {
    let s = server(1);
    let p = s
        .udp_proxy("down", "127.0.0.1:0", &echo().to_string())
        .unwrap();
    let c = client();
    assert_eq!(ask(&c, p.listen(), b"1"), b"1");
    p.set_enabled(false).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let _ = c.send_to(b"2", p.listen());
    let mut buf = [0u8; 10];
    // Nothing answers (an ICMP port unreachable may surface as an error instead).
    assert!(c.recv_from(&mut buf).is_err());
    p.set_enabled(true).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(ask(&c, p.listen(), b"3"), b"3");
}

#[test]
fn the_http_api_creates_udp_proxies_and_refuses_what_udp_cannot_do() {
    let (_s, api) = start(3, false);
    let up = echo();
    let body = format!(
        r#"{{"name": "u", "listen": "127.0.0.1:0", "upstream": "{up}", "protocol": "udp", "udp": {{"max_peers": 8}}}}"#
    );
    let (st, b) = http(api, "POST", "/proxies", Some(&body));
    assert_eq!(st, 201, "{b}");
    let v = json(&b);
    assert_eq!(v["protocol"], "udp");
    assert_eq!(v["udp"]["max_peers"], 8);
    assert_eq!(v["udp"]["idle_timeout_ms"], 60_000);
    let listen: SocketAddr = v["listen"].as_str().unwrap().parse().unwrap();
    let (st, b) = http(api, "GET", "/proxies/u", None);
    assert_eq!((st, json(&b)["protocol"].clone()), (200, "udp".into()));

    // Toxics through the API act on the datagrams.
    let (st, b) = http(
        api,
        "POST",
        "/proxies/u/toxics",
        Some(r#"{"type": "loss", "stream": "upstream", "attributes": {"probability": 1.0}}"#),
    );
    assert_eq!(st, 200, "{b}");
    let c = client();
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    c.send_to(b"x", listen).unwrap();
    assert!(c.recv_from(&mut [0u8; 4]).is_err(), "loss 1.0 drops it");
    let (st, _) = http(api, "DELETE", "/proxies/u/toxics/loss_upstream", None);
    assert_eq!(st, 204);
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(ask(&c, listen, b"y"), b"y");

    // Refused, each with a 400 naming why.
    for kind in ["slicer", "slow_close", "timeout", "reset_peer"] {
        let (st, b) = http(
            api,
            "POST",
            "/proxies/u/toxics",
            Some(&format!(r#"{{"type": "{kind}"}}"#)),
        );
        assert_eq!(st, 400, "{kind}: {b}");
        assert!(b.contains("udp"), "{kind}: {b}");
    }
    let (st, b) = http(
        api,
        "POST",
        "/proxies/u/toxics",
        Some(r#"{"type": "latency", "after": {"frames": 1, "framing": "lines"}}"#),
    );
    assert_eq!(st, 400, "{b}");
    let (st, b) = http(
        api,
        "POST",
        "/proxies",
        Some(r#"{"name": "bad", "upstream": "127.0.0.1:1", "protocol": "sctp"}"#),
    );
    assert_eq!(st, 400, "{b}");
    assert!(b.contains("sctp"), "{b}");
    let (st, b) = http(
        api,
        "POST",
        "/proxies",
        Some(r#"{"name": "t", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}"#),
    );
    assert_eq!(st, 201, "{b}");
    assert!(
        json(&b).get("protocol").is_none(),
        "TCP proxies look as in Toxiproxy"
    );
    for kind in ["duplicate", "reorder"] {
        let (st, b) = http(
            api,
            "POST",
            "/proxies/t/toxics",
            Some(&format!(r#"{{"type": "{kind}"}}"#)),
        );
        assert_eq!(st, 400, "{kind}: {b}");
        assert!(b.contains("tcp"), "{kind}: {b}");
    }
    let (st, b) = http(api, "PATCH", "/proxies/u", Some(r#"{"protocol": "tcp"}"#));
    assert_eq!(st, 400, "{b}");
    let (st, b) = http(
        api,
        "POST",
        "/proxies",
        Some(
            r#"{"name": "v", "upstream": "127.0.0.1:1", "protocol": "udp", "udp": {"max_peers": 0}}"#,
        ),
    );
    assert_eq!(st, 400, "{b}");
    assert!(b.contains("udp.max_peers"), "{b}");

    // PATCH listen rebinds; /reset re-enables a disabled UDP proxy; populate keeps it.
    let (st, b) = http(
        api,
        "PATCH",
        "/proxies/u",
        Some(r#"{"listen": "127.0.0.1:0"}"#),
    );
    assert_eq!(st, 200, "{b}");
    let moved: SocketAddr = json(&b)["listen"].as_str().unwrap().parse().unwrap();
    assert_eq!(json(&b)["protocol"], "udp");
    assert_eq!(ask(&c, moved, b"z"), b"z");
    let (st, _) = http(api, "PATCH", "/proxies/u", Some(r#"{"enabled": false}"#));
    assert_eq!(st, 200);
    let (st, _) = http(api, "POST", "/reset", None);
    assert_eq!(st, 204);
    assert_eq!(ask(&c, moved, b"r"), b"r");
    let (st, b) = http(
        api,
        "POST",
        "/populate",
        Some(&format!(
            r#"[{{"name": "u", "listen": "{moved}", "upstream": "{up}", "protocol": "udp"}},
               {{"name": "u2", "listen": "127.0.0.1:0", "upstream": "{up}", "protocol": "udp"}}]"#
        )),
    );
    assert_eq!(st, 201, "{b}");
    let made = json(&b);
    let u2: SocketAddr = made["proxies"]
        .as_array()
        .and_then(|l| l.iter().find(|p| p["name"] == "u2"))
        .and_then(|p| p["listen"].as_str())
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("u2 in {made}"));
    assert_eq!(ask(&c, moved, b"kept"), b"kept");
    assert_eq!(ask(&c, u2, b"new"), b"new");

    let (_, text) = http(api, "GET", "/metrics", None);
    assert!(
        text.contains("netloom_proxy_udp_datagrams_total{proxy=\"u\",direction=\"upstream\"} 4"),
        "{text}"
    );
    assert!(text.contains("netloom_proxy_udp_dropped_total{proxy=\"u\",reason=\"toxic\"} 1"));
    assert!(!text.contains("netloom_proxy_udp_peers{proxy=\"t\"}"));
}

#[test]
fn the_queue_limit_drops_what_does_not_fit_and_counts_it() {
    let s = server(1);
    let (up, rx) = sink();
    let limits = UdpSettings {
        max_queued_bytes: 1024,
        ..UdpSettings::default()
    };
    let p = s
        .udp_proxy_with("q", "127.0.0.1:0", &up.to_string(), limits)
        .unwrap();
    // Held 300 ms each: 5 datagrams of 200 bytes fit in 1,024 bytes, the rest do not.
    p.add(ToxicSpec::latency(300, 0).upstream()).unwrap();
    let c = client();
    for i in 0..10u32 {
        let mut d = i.to_be_bytes().to_vec();
        d.resize(200, 0);
        c.send_to(&d, p.listen()).unwrap();
    }
    let m = s.metrics("q").unwrap();
    wait_until("10 datagrams handled", Duration::from_secs(10), || {
        m.udp().datagrams().0 + m.udp().dropped().1 == 10
    });
    let got = collect(&rx, Duration::from_millis(500));
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
    assert_eq!(m.udp().dropped(), (0, 5));
    assert!(
        s.metrics_text()
            .contains("netloom_proxy_udp_dropped_total{proxy=\"q\",reason=\"queue\"} 5")
    );
}

#[test]
fn toxicity_and_clients_are_decided_per_peer() {
    let s = server(1);
    let p = s
        .udp_proxy("tc", "127.0.0.1:0", &echo().to_string())
        .unwrap();
    // Neither acts on this client: toxicity 0, and a client filter it is not in.
    p.add(ToxicSpec::loss(1.0).upstream().named("never").toxicity(0.0))
        .unwrap();
    p.add(
        ToxicSpec::loss(1.0)
            .upstream()
            .named("others")
            .client("10.0.0.0/8"),
    )
    .unwrap();
    let c = client();
    for i in 0..20u8 {
        assert_eq!(ask(&c, p.listen(), &[i]), vec![i]);
    }
    // One that does act on it.
    p.add(
        ToxicSpec::loss(1.0)
            .upstream()
            .named("me")
            .client("127.0.0.0/8"),
    )
    .unwrap();
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    c.send_to(b"x", p.listen()).unwrap();
    assert!(c.recv_from(&mut [0u8; 4]).is_err());
    assert_eq!(s.metrics("tc").unwrap().udp().dropped().0, 1);
}

#[test]
fn ipv6_clients_and_upstream() {
    let Ok(up) = UdpSocket::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    let up_addr = up.local_addr().unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = up.recv_from(&mut buf) {
            let _ = up.send_to(&buf[..n], from);
        }
    });
    let s = server(1);
    let p = s.udp_proxy("v6", "[::1]:0", &up_addr.to_string()).unwrap();
    assert!(p.listen().is_ipv6());
    let c = UdpSocket::bind("[::1]:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(ask(&c, p.listen(), b"six"), b"six");
}

/// UDP sockets this process holds: its socket fds whose inode /proc/net/udp{,6} lists.
fn udp_fds() -> usize {
    let mut inodes = BTreeSet::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            if let Some(inode) = line.split_whitespace().nth(9) {
                inodes.insert(format!("socket:[{inode}]"));
            }
        }
    }
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|p| inodes.contains(&p.display().to_string()))
        .count()
}

#[test]
fn deleting_a_udp_proxy_closes_every_upstream_socket() {
    let s = server(1);
    let up = echo();
    let clients: Vec<UdpSocket> = (0..40).map(|_| client()).collect();
    let before = udp_fds();
    assert!(before >= 41, "40 clients and the upstream: {before}");
    {
        let p = s.udp_proxy("fd", "127.0.0.1:0", &up.to_string()).unwrap();
        for c in &clients {
            assert_eq!(ask(c, p.listen(), b"x"), b"x");
        }
        assert_eq!(s.metrics("fd").unwrap().udp().peers(), 40);
        // The listen socket and one upstream socket per client.
        assert_eq!(udp_fds(), before + 41);
    }
    assert!(s.get("fd").is_err());
    wait_until(
        "the upstream sockets to close",
        Duration::from_secs(10),
        || udp_fds() == before,
    );
}

#[test]
fn a_burst_released_at_once_is_sent_whole() {
    // An upstream with a receive buffer that holds the whole burst.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    sock.set_recv_buffer_size(4 << 20).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let up = UdpSocket::from(sock);
    let up_addr = up.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = up.recv_from(&mut buf) {
            if tx.send((from, buf[..n].to_vec())).is_err() {
                return;
            }
        }
    });
    // Sockets that hold the whole burst: the kernel drops nothing, so what the proxy
    // drops is the proxy's doing.
    let s = ProxyServer::new(ServerOptions {
        seed: 1,
        channel: netloom_channel::ChannelOptions {
            recv_buffer_size: Some(4 << 20),
            send_buffer_size: Some(4 << 20),
            ..ServerOptions::default().channel
        },
        ..Default::default()
    })
    .unwrap();
    let limits = UdpSettings {
        max_queued_bytes: 4 << 20,
        ..UdpSettings::default()
    };
    let p = s
        .udp_proxy_with("burst", "127.0.0.1:0", &up_addr.to_string(), limits)
        .unwrap();
    // 200 ms of latency: everything sent meanwhile leaves in a few large bursts, far more
    // than a peer channel's 64 KiB high water mark each.
    p.add(ToxicSpec::latency(200, 0).upstream()).unwrap();
    let c = client();
    for i in 0..300u32 {
        let mut d = i.to_be_bytes().to_vec();
        d.resize(2000, 0);
        c.send_to(&d, p.listen()).unwrap();
    }
    let m = s.metrics("burst").unwrap();
    wait_until("300 datagrams handled", Duration::from_secs(20), || {
        let u = m.udp();
        u.datagrams().0 + u.dropped().1 == 300
    });
    assert_eq!(
        m.udp().dropped(),
        (0, 0),
        "nothing dropped for an idle socket"
    );
    let got = collect(&rx, Duration::from_millis(500));
    assert_eq!(got, (0..300).collect::<Vec<_>>());
}

#[test]
fn toxiproxy_rust_lists_udp_proxies() {
    let (s, api) = start(1, false);
    let p = s
        .udp_proxy("u", "127.0.0.1:0", &echo().to_string())
        .unwrap();
    p.add(ToxicSpec::latency(5, 1)).unwrap();
    let client = toxiproxy_rust::client::Client::new(api);
    let all = client.all().unwrap();
    assert_eq!(all["u"].proxy_pack.listen, p.listen().to_string());
    assert_eq!(all["u"].proxy_pack.toxics.len(), 1);
    let found = client.find_proxy("u").unwrap();
    assert_eq!(found.toxics().unwrap()[0].attributes["latency"], 5);
}

#[test]
fn an_upstream_that_does_not_resolve_closes_the_peer_and_counts() {
    let s = server(1);
    let p = s.udp_proxy("bad", "127.0.0.1:0", "no-port-here").unwrap();
    let c = client();
    c.send_to(b"x", p.listen()).unwrap();
    let m = s.metrics("bad").unwrap();
    wait_until("the failure to be counted", Duration::from_secs(10), || {
        m.upstream_failures() == 1 && m.udp().peers() == 0
    });
    // The proxy keeps serving: the next datagram is a new peer, and fails the same way.
    c.send_to(b"y", p.listen()).unwrap();
    wait_until("the second failure", Duration::from_secs(10), || {
        m.upstream_failures() == 2
    });
    assert_eq!(m.udp().peers_total(), 2);
}
