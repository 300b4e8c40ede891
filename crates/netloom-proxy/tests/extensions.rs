//! Extensions beyond Toxiproxy not covered in tests/toxics.rs: the `after.ms` trigger
//! (also through the HTTP JSON), and per-client toxics for single addresses and IPv6
//! clients. Over real loopback sockets.
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{echo, http, json, start};
use netloom_proxy::{ProxyServer, ServerOptions, ToxicSpec};

fn server() -> ProxyServer {
    ProxyServer::new(ServerOptions {
        seed: 1,
        ..Default::default()
    })
    .unwrap()
}

fn rtt(c: &mut TcpStream) -> Duration {
    let t = Instant::now();
    c.write_all(b"ping").unwrap();
    let mut b = [0u8; 4];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ping");
    t.elapsed()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.set_nodelay(true).unwrap();
    c
}

#[test]
fn after_ms_starts_the_toxic_that_long_after_it_met_the_connection() {
    let (s, api) = start(1, false);
    let p = s.proxy("late", "127.0.0.1:0", &echo().to_string()).unwrap();
    let body = r#"{"type":"latency","attributes":{"latency":300},"after":{"ms":400}}"#;
    let (st, out) = http(api, "POST", "/proxies/late/toxics", Some(body));
    assert_eq!(st, 200, "{out}");
    assert_eq!(json(&out)["after"]["ms"], 400);
    let t0 = Instant::now();
    let mut c = connect(p.listen());
    assert!(rtt(&mut c) < Duration::from_millis(250), "not yet");
    std::thread::sleep(Duration::from_millis(400).saturating_sub(t0.elapsed()));
    std::thread::sleep(Duration::from_millis(50));
    assert!(rtt(&mut c) >= Duration::from_millis(300), "started");
    // A connection opened later meets it later: its own 400 ms pass first.
    let mut late = connect(p.listen());
    assert!(rtt(&mut late) < Duration::from_millis(250));
}

#[test]
fn after_ms_and_until_ms_make_a_window() {
    let s = server();
    let p = s.proxy("win", "127.0.0.1:0", &echo().to_string()).unwrap();
    p.add(ToxicSpec::latency(200, 0).after_ms(300).for_ms(600))
        .unwrap();
    let t0 = Instant::now();
    let mut c = connect(p.listen());
    assert!(
        rtt(&mut c) < Duration::from_millis(150),
        "before the window"
    );
    std::thread::sleep(Duration::from_millis(350).saturating_sub(t0.elapsed()));
    assert!(rtt(&mut c) >= Duration::from_millis(200), "in the window");
    std::thread::sleep(Duration::from_millis(1000).saturating_sub(t0.elapsed()));
    assert!(rtt(&mut c) < Duration::from_millis(150), "after the window");
}

#[test]
fn per_client_single_addresses_and_ipv6() {
    let s = server();
    let Ok(p6) = s.proxy("v6", "[::1]:0", &echo().to_string()) else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    p6.add(
        ToxicSpec::latency(300, 0)
            .named("v4only")
            .client("127.0.0.1"),
    )
    .unwrap();
    let mut c = connect(p6.listen());
    assert!(
        rtt(&mut c) < Duration::from_millis(200),
        "an IPv4 block spares ::1"
    );
    p6.add(ToxicSpec::latency(300, 0).named("v6").client("::1"))
        .unwrap();
    assert!(rtt(&mut c) >= Duration::from_millis(300), "::1 is hit");
    let p4 = s.proxy("v4", "127.0.0.1:0", &echo().to_string()).unwrap();
    p4.add(ToxicSpec::latency(300, 0).client("127.0.0.1"))
        .unwrap();
    let mut c4 = connect(p4.listen());
    assert!(
        rtt(&mut c4) >= Duration::from_millis(300),
        "127.0.0.1 is hit"
    );
    let bad = p4.add(ToxicSpec::latency(1, 0).named("bad").client("10.0.0.0/33"));
    assert_eq!(bad.unwrap_err().status(), 400);
}

/// Toxiproxy issue #603: with a reset_peer present, a connection that ends before the
/// toxic's timeout closes cleanly (Toxiproxy sets SO_LINGER 0 at open, so every close
/// becomes an RST).
#[test]
fn a_pending_reset_peer_leaves_normal_closes_clean() {
    let s = server();
    let p = s
        .proxy(
            "clean",
            "127.0.0.1:0",
            &common::sender(b"bye".to_vec()).to_string(),
        )
        .unwrap();
    p.add(ToxicSpec::reset_peer(60_000)).unwrap();
    p.add(ToxicSpec::reset_peer(60_000).upstream()).unwrap();
    for _ in 0..5 {
        let mut c = connect(p.listen());
        let mut got = Vec::new();
        let r = c.read_to_end(&mut got).map_err(|e| e.kind());
        assert_eq!((got.as_slice(), r), (&b"bye"[..], Ok(3)), "a FIN, no RST");
    }
}

/// The in-process guard: dropping it deletes the proxy (port closed, connections closed,
/// name free).
#[test]
fn guards_remove_their_proxies_on_drop() {
    let s = server();
    let p = s.proxy("g", "127.0.0.1:0", &echo().to_string()).unwrap();
    let addr = p.listen();
    let mut c = connect(addr);
    assert!(rtt(&mut c) < Duration::from_secs(5));
    drop(p);
    assert!(TcpStream::connect(addr).is_err(), "port closed");
    assert_eq!(s.get("g").unwrap_err().status(), 404);
    let mut b = [0u8; 1];
    assert!(
        !matches!(c.read(&mut b), Ok(n) if n > 0),
        "the live connection was closed"
    );
    let again = s.proxy("g", "127.0.0.1:0", &echo().to_string());
    assert!(again.is_ok(), "the name is free again");
}
