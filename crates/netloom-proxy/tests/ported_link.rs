//! The cases of Toxiproxy's link_test.go, proxy_test.go and toxics/*_test.go not already
//! in tests/toxics.rs, over real loopback sockets, with tolerances for a 2-core CI machine.
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::{echo, sender};
use netloom_proxy::{ProxyServer, ServerOptions, ToxicSpec};
use serde_json::json;

fn server() -> ProxyServer {
    ProxyServer::new(ServerOptions {
        seed: 7,
        ..Default::default()
    })
    .unwrap()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

/// An upstream that hands each accepted connection to the test.
fn upstream() -> (SocketAddr, Receiver<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            if tx.send(s).is_err() {
                return;
            }
        }
    });
    (a, rx)
}

/// A client connection through `listen` and the upstream's side of it.
fn pair(listen: SocketAddr, rx: &Receiver<TcpStream>) -> (TcpStream, TcpStream) {
    let c = connect(listen);
    let s = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    (c, s)
}

/// Toxiproxy's AssertEchoResponse: a line each way.
fn echo_both_ways(c: &mut TcpStream, s: &mut TcpStream) {
    c.write_all(b"hello world\n").unwrap();
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello world\n");
    s.write_all(b"hello world\n").unwrap();
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello world\n");
}

fn read_to_end(c: &mut TcpStream) -> (Vec<u8>, Option<ErrorKind>) {
    let mut v = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return (v, None),
            Ok(n) => v.extend_from_slice(&buf[..n]),
            Err(e) => return (v, Some(e.kind())),
        }
    }
}

/// link_test.go TestNoDataDropped: 65,535 two-byte writes while a 1 s latency toxic is
/// added and removed as fast as the API allows; every value arrives once, in order, then EOF.
#[test]
fn no_data_dropped_while_a_one_second_latency_comes_and_goes() {
    let s = server();
    let (up, rx) = upstream();
    let p = s.proxy("nodrop", "127.0.0.1:0", &up.to_string()).unwrap();
    let (mut c, srv) = pair(p.listen(), &rx);
    let writer = std::thread::spawn(move || {
        let mut srv = srv;
        for i in 0..=u16::MAX - 1 {
            srv.write_all(&i.to_be_bytes()).unwrap();
        }
    });
    let (stop_tx, stop_rx) = channel::<()>();
    let s2 = s.clone();
    let toggler = std::thread::spawn(move || {
        let mut rounds = 0u32;
        let deadline = Instant::now() + Duration::from_secs(60);
        while stop_rx.try_recv().is_err() && Instant::now() < deadline && rounds < 100_000 {
            s2.add_toxic("nodrop", &ToxicSpec::latency(1000, 0).to_json())
                .unwrap();
            s2.remove_toxic("nodrop", "latency_downstream").unwrap();
            rounds += 1;
        }
        rounds
    });
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 2];
    for i in 0..=u16::MAX - 1 {
        c.read_exact(&mut buf).unwrap();
        assert_eq!(u16::from_be_bytes(buf), i, "value {i}");
    }
    stop_tx.send(()).unwrap();
    let rounds = toggler.join().unwrap();
    writer.join().unwrap();
    assert!(rounds >= 10, "the toxic came and went only {rounds} times");
    assert_eq!(
        read_to_end(&mut c),
        (Vec::new(), None),
        "EOF after the last value"
    );
}

/// link_test.go TestToxicity: a toxicity-0 timeout lets bytes through; updated to
/// toxicity 1 and 100 ms it closes the live connection.
#[test]
fn toxicity_update_reaches_live_connections() {
    let s = server();
    let p = s.proxy("tox", "127.0.0.1:0", &echo().to_string()).unwrap();
    let mut c = connect(p.listen());
    p.add(ToxicSpec::timeout(0).toxicity(0.0)).unwrap();
    c.write_all(&[42]).unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    assert_eq!(b, [42]);
    s.update_toxic(
        "tox",
        "timeout_downstream",
        &json!({"toxicity": 1.0, "attributes": {"timeout": 100}}),
    )
    .unwrap();
    let t = Instant::now();
    c.write_all(&[42]).unwrap();
    let (data, err) = read_to_end(&mut c);
    assert_eq!((data.len(), err), (0, None), "EOF, the byte dropped");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

/// reset_peer_test.go: the client gets ECONNRESET (then EOF) whichever stream the toxic is
/// on, `timeout` ms after it met the connection.
#[test]
fn reset_peer_resets_the_client_on_either_stream() {
    for (stream, timeout) in [("upstream", 0), ("upstream", 100), ("downstream", 100)] {
        let s = server();
        let (up, rx) = upstream();
        let p = s.proxy("reset", "127.0.0.1:0", &up.to_string()).unwrap();
        let mut spec = ToxicSpec::reset_peer(timeout);
        if stream == "upstream" {
            spec = spec.upstream();
        }
        let t = Instant::now();
        p.add(spec).unwrap();
        let (mut c, _srv) = pair(p.listen(), &rx);
        // The RST may arrive before the write: then the write reports it (once), else the
        // read does.
        let mut tmp = [0u8; 1000];
        let first = match c.write_all(b"hello\n") {
            Err(e) => Err(e.kind()),
            Ok(()) => c.read(&mut tmp).map_err(|e| e.kind()),
        };
        assert_eq!(first, Err(ErrorKind::ConnectionReset), "{stream} {timeout}");
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(timeout), "{stream}: {took:?}");
        assert!(
            took < Duration::from_millis(timeout + 1000),
            "{stream}: {took:?}"
        );
        assert_eq!(c.read(&mut tmp).unwrap(), 0, "EOF after the reset");
    }
}

/// limit_data_test.go: chunks below, at and above the limit; a second chunk that would
/// overflow it is cut; limit 0 passes nothing.
#[test]
fn limit_data_cuts_at_the_limit() {
    let s = server();
    for (limit, chunks, want) in [
        (100u64, vec![50usize], 50usize),
        (100, vec![100], 100),
        (100, vec![150], 100),
        (100, vec![25, 25, 25, 25], 100),
        (100, vec![90, 20], 100),
        (0, vec![100], 0),
    ] {
        let (up, rx) = upstream();
        let name = format!("lim{limit}_{}", chunks.len());
        let p = s.proxy(&name, "127.0.0.1:0", &up.to_string()).unwrap();
        p.add(ToxicSpec::limit_data(limit)).unwrap();
        let (mut c, mut srv) = pair(p.listen(), &rx);
        let total: usize = chunks.iter().sum();
        for (i, n) in chunks.iter().enumerate() {
            let _ = srv.write_all(&vec![i as u8 + 1; *n]);
            std::thread::sleep(Duration::from_millis(20));
        }
        if total < limit as usize {
            drop(srv);
        }
        let (data, _) = read_to_end(&mut c);
        assert_eq!(data.len(), want, "limit {limit}, chunks {chunks:?}");
        let expect: Vec<u8> = chunks
            .iter()
            .enumerate()
            .flat_map(|(i, n)| vec![i as u8 + 1; *n])
            .take(want)
            .collect();
        assert_eq!(data, expect);
    }
}

/// limit_data_test.go TestLimitDataToxicMayBeRestarted: an update of the toxic keeps the
/// count of what it let through (90, then 10 of the next 20).
#[test]
fn limit_data_keeps_counting_across_an_update() {
    let s = server();
    let (up, rx) = upstream();
    let p = s.proxy("limup", "127.0.0.1:0", &up.to_string()).unwrap();
    p.add(ToxicSpec::limit_data(100)).unwrap();
    let (mut c, mut srv) = pair(p.listen(), &rx);
    srv.write_all(&[1u8; 90]).unwrap();
    let mut got = vec![0u8; 90];
    c.read_exact(&mut got).unwrap();
    s.update_toxic("limup", "limit_data_downstream", &json!({"toxicity": 1.0}))
        .unwrap();
    srv.write_all(&[2u8; 20]).unwrap();
    let (rest, _) = read_to_end(&mut c);
    assert_eq!(rest, vec![2u8; 10]);
}

/// timeout_test.go TestTimeoutToxicClosesConnectionOnRemove: both the client and the
/// upstream see EOF within a second of the removal.
#[test]
fn removing_a_timeout_closes_both_sides() {
    let s = server();
    let (up, rx) = upstream();
    let p = s.proxy("tormv", "127.0.0.1:0", &up.to_string()).unwrap();
    let (mut c, mut srv) = pair(p.listen(), &rx);
    echo_both_ways(&mut c, &mut srv);
    p.add(ToxicSpec::timeout(0).upstream()).unwrap();
    p.remove("timeout_upstream").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    srv.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(c.read(&mut b).unwrap(), 0, "client EOF");
    assert_eq!(srv.read(&mut b).unwrap(), 0, "upstream EOF");
}

/// timeout_test.go TestTimeoutToxicDoesNotCauseHang: with a latency toxic in front of a
/// holding timeout, removing the latency returns within a second.
#[test]
fn removing_a_latency_before_a_timeout_does_not_hang() {
    let s = server();
    let (up, rx) = upstream();
    let p = s.proxy("hang", "127.0.0.1:0", &up.to_string()).unwrap();
    let (mut c, _srv) = pair(p.listen(), &rx);
    p.add(ToxicSpec::latency(10, 0).named("might_block").upstream())
        .unwrap();
    p.add(ToxicSpec::timeout(0).upstream()).unwrap();
    for _ in 0..5 {
        c.write_all(b"hello").unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = Instant::now();
    p.remove("might_block").unwrap();
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

/// toxic_test.go TestPersistentConnections and TestToxicAddRemove: a connection outlives
/// resets of the toxics and noop toxics coming and going on both streams.
#[test]
fn connections_persist_across_toxic_resets_and_churn() {
    let s = server();
    let (up, rx) = upstream();
    let p = s.proxy("persist", "127.0.0.1:0", &up.to_string()).unwrap();
    let (mut c, mut srv) = pair(p.listen(), &rx);
    for _ in 0..2 {
        p.add(ToxicSpec::noop().named("noop_up").upstream())
            .unwrap();
        p.add(ToxicSpec::noop().named("noop_down")).unwrap();
        echo_both_ways(&mut c, &mut srv);
        s.reset().unwrap();
        echo_both_ways(&mut c, &mut srv);
    }
    let (stop_tx, stop_rx) = channel::<()>();
    let s2 = s.clone();
    let churn = std::thread::spawn(move || {
        let mut enabled = false;
        let mut n = 0u32;
        while stop_rx.try_recv().is_err() && n < 100_000 {
            if enabled {
                let up = ToxicSpec::noop().named("noop_up").upstream();
                s2.add_toxic("persist", &up.to_json()).unwrap();
                let _ = s2.remove_toxic("persist", "noop_down");
            } else {
                let _ = s2.remove_toxic("persist", "noop_up");
                let down = ToxicSpec::noop().named("noop_down");
                s2.add_toxic("persist", &down.to_json()).unwrap();
            }
            enabled = !enabled;
            n += 1;
        }
    });
    for _ in 0..100 {
        echo_both_ways(&mut c, &mut srv);
    }
    stop_tx.send(()).unwrap();
    churn.join().unwrap();
}

/// proxy_test.go TestProxyUpdate and TestProxyUpdateWithHostname: a new listen address
/// moves the proxy; the same address spelled `localhost:PORT` keeps it and its connections.
#[test]
fn updating_listen_moves_the_proxy_unless_it_is_the_same_address() {
    let s = server();
    let (up, rx) = upstream();
    let p = s.proxy("upd", "127.0.0.1:0", &up.to_string()).unwrap();
    let before = p.listen();
    let moved = s.update("upd", &json!({"listen": "localhost:0"})).unwrap();
    let after: SocketAddr = moved["listen"].as_str().unwrap().parse().unwrap();
    assert_ne!(after, before);
    assert!(
        TcpStream::connect(before).is_err(),
        "the old address is closed"
    );
    let (mut c, mut srv) = pair(after, &rx);
    echo_both_ways(&mut c, &mut srv);
    let same = format!("localhost:{}", after.port());
    let v = s
        .update("upd", &json!({"listen": same, "enabled": true}))
        .unwrap();
    assert_eq!(v["listen"], after.to_string());
    echo_both_ways(&mut c, &mut srv);
    s.update("upd", &json!({"enabled": false})).unwrap();
    assert!(TcpStream::connect(after).is_err());
}

/// proxy_test.go TestRestartFailedToStartProxy: a proxy whose port was taken starts once
/// it is free.
#[test]
fn a_proxy_that_could_not_bind_starts_once_the_port_is_free() {
    let s = server();
    let (up, _rx) = upstream();
    let a = s.proxy("conflict", "127.0.0.1:0", &up.to_string()).unwrap();
    let port = a.listen();
    s.create(&json!({"name": "late", "listen": port.to_string(), "upstream": up.to_string(), "enabled": false}))
        .unwrap();
    let e = s.update("late", &json!({"enabled": true})).unwrap_err();
    assert_eq!(e.status(), 500, "{e}");
    assert_eq!(s.get("late").unwrap()["enabled"], false);
    s.delete("conflict").unwrap();
    assert!(TcpStream::connect(port).is_err());
    s.update("late", &json!({"enabled": true})).unwrap();
    assert!(TcpStream::connect(port).is_ok());
    s.update("late", &json!({"enabled": false})).unwrap();
    assert!(TcpStream::connect(port).is_err());
}

/// slicer_test.go TestSlicerToxicZeroSizeVariation: average_size 10 with no variation
/// delivers every byte, in order.
#[test]
fn slicer_without_variation_delivers_everything() {
    let s = server();
    let payload: Vec<u8> = (0..5_000u32).map(|i| (i % 253) as u8).collect();
    let p = s
        .proxy("slz", "127.0.0.1:0", &sender(payload.clone()).to_string())
        .unwrap();
    p.add(ToxicSpec::slicer(10, 0, 0)).unwrap();
    let (data, err) = read_to_end(&mut connect(p.listen()));
    assert_eq!((data, err), (payload, None));
}

/// "Adding, changing or removing toxics on live connections never drops, duplicates or
/// reorders a byte", under load: four connections each echo 4 MiB while toxics are added,
/// updated (attributes and toxicity) and removed on both streams as fast as the API
/// allows; every byte comes back once and in order (compared in full at the end).
#[test]
fn toxic_churn_under_load_on_four_connections_loses_nothing() {
    let s = server();
    let p = s
        .proxy("churn", "127.0.0.1:0", &echo().to_string())
        .unwrap();
    let total = 4 << 20;
    let clients: Vec<_> = (0..4u32)
        .map(|k| {
            let payload: Vec<u8> = (0..total as u32)
                .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(k) >> 13) as u8)
                .collect();
            let mut c = connect(p.listen());
            c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            let mut r = c.try_clone().unwrap();
            let expect = payload.clone();
            let reader = std::thread::spawn(move || {
                let mut got = vec![0u8; expect.len()];
                r.read_exact(&mut got).unwrap();
                let first_diff = got.iter().zip(&expect).position(|(a, b)| a != b);
                assert_eq!(first_diff, None, "connection {k}: bytes differ");
                let mut more = [0u8; 1];
                r.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                assert!(
                    !matches!(r.read(&mut more), Ok(n) if n > 0),
                    "connection {k}: bytes duplicated"
                );
            });
            let writer = std::thread::spawn(move || {
                for chunk in payload.chunks(16 * 1024) {
                    c.write_all(chunk).unwrap();
                }
                c
            });
            (reader, writer)
        })
        .collect();
    let specs = [
        ToxicSpec::latency(2, 2),
        ToxicSpec::latency(1, 1).upstream(),
        ToxicSpec::slicer(700, 600, 10),
        ToxicSpec::slicer(300, 100, 0).upstream(),
        ToxicSpec::bandwidth(50_000),
        ToxicSpec::noop().upstream(),
        ToxicSpec::limit_data(1 << 40).toxicity(0.5),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut changes = 0u32;
    let mut live: Vec<String> = Vec::new();
    while !clients.iter().all(|(r, _)| r.is_finished()) && Instant::now() < deadline {
        let spec = specs[changes as usize % specs.len()].clone();
        let name = format!("t{}", changes % 5);
        if live.contains(&name) {
            let body = if changes.is_multiple_of(2) {
                json!({"toxicity": 0.5})
            } else {
                json!({"toxicity": 1.0})
            };
            s.update_toxic("churn", &name, &body).unwrap();
            if changes.is_multiple_of(3) {
                p.remove(&name).unwrap();
                live.retain(|n| *n != name);
            }
        } else {
            p.add(spec.named(&name)).unwrap();
            live.push(name);
        }
        changes += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    for (r, w) in clients {
        r.join().unwrap();
        drop(w.join().unwrap());
    }
    assert!(
        changes >= 50,
        "only {changes} toxic changes during the transfer"
    );
}

/// Deleting a toxic, a proxy, or resetting never waits for a reader that stopped reading
/// (Toxiproxy issues #159, #412, #558): a bandwidth toxic holds bytes for a client that
/// reads nothing, and every API call returns at once.
#[test]
fn api_calls_never_wait_for_a_stalled_reader() {
    let s = server();
    let payload = vec![9u8; 8 << 20];
    let p = s
        .proxy("stall", "127.0.0.1:0", &sender(payload).to_string())
        .unwrap();
    p.add(ToxicSpec::bandwidth(1)).unwrap();
    p.add(ToxicSpec::latency(60_000, 0).upstream()).unwrap();
    let _stalled: Vec<TcpStream> = (0..4).map(|_| connect(p.listen())).collect();
    let c = connect(p.listen());
    c.try_clone().unwrap().write_all(b"held upstream").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    p.remove("bandwidth_downstream").unwrap();
    p.remove("latency_upstream").unwrap();
    p.add(ToxicSpec::timeout(0)).unwrap();
    s.reset().unwrap();
    s.delete("stall").unwrap();
    // Blocked, these calls would wait for the 60 s latency or forever.
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "the API waited {:?}",
        t.elapsed()
    );
}

/// latency_test.go TestLatencyToxicBandwidth: a latency toxic delays bytes but does not
/// cap the rate at high water mark / latency (640 KB/s before; Toxiproxy asserts 100 MB/s
/// for its release build, this debug build on a shared 2-core machine asserts 10 MB/s).
#[test]
fn latency_does_not_cap_the_rate() {
    let s = server();
    let (up, rx) = upstream();
    let p = s.proxy("latbw", "127.0.0.1:0", &up.to_string()).unwrap();
    let (mut c, mut srv) = pair(p.listen(), &rx);
    let payload = b"hello world ".repeat(1000);
    std::thread::spawn(move || while srv.write_all(&payload).is_ok() {});
    p.add(ToxicSpec::latency(100, 0)).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let mut buf = vec![0u8; 12_000];
    let t = Instant::now();
    let mut count = 0usize;
    while count < 24_000_000 && t.elapsed() < Duration::from_secs(10) {
        c.read_exact(&mut buf).unwrap();
        count += buf.len();
    }
    let took = t.elapsed();
    let rate = count as f64 / took.as_secs_f64();
    assert!(rate > 10e6, "{count} bytes in {took:?}: {rate:.0} B/s");
}
