//! Every toxic over real loopback sockets (ported from the assertions of Toxiproxy's
//! toxics/*_test.go and link_test.go, with tolerances for a 2-core CI machine), and the
//! Toxiproxy defects netloom does not have.
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{echo, sender};
use netloom_proxy::{ProxyServer, ServerOptions, ToxicSpec};

fn server(seed: u64) -> ProxyServer {
    ProxyServer::new(ServerOptions {
        seed,
        ..Default::default()
    })
    .unwrap()
}

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

/// Reads until EOF or error; returns the bytes and the error kind, if any.
fn read_all(c: &mut TcpStream) -> (Vec<u8>, Option<ErrorKind>) {
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

fn round_trip(c: &mut TcpStream, msg: &[u8]) -> Duration {
    let t = Instant::now();
    c.write_all(msg).unwrap();
    let mut buf = vec![0u8; msg.len()];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(buf, msg);
    t.elapsed()
}

#[test]
fn no_toxics_passes_bytes_both_ways() {
    let s = server(1);
    let p = s.proxy("echo", "127.0.0.1:0", &echo().to_string()).unwrap();
    let mut c = connect(p.listen());
    for i in 0..50u8 {
        round_trip(&mut c, &[i; 1000]);
    }
    drop(c);
    let m = s.metrics("echo").unwrap();
    assert_eq!(m.connections(), 1);
}

#[test]
fn latency_upstream_and_downstream() {
    let s = server(1);
    let p = s.proxy("lat", "127.0.0.1:0", &echo().to_string()).unwrap();
    let mut c = connect(p.listen());
    round_trip(&mut c, b"warm");
    p.add(ToxicSpec::latency(100, 0)).unwrap();
    p.add(ToxicSpec::latency(50, 0).upstream()).unwrap();
    let rtt = round_trip(&mut c, b"hello");
    assert!(rtt >= Duration::from_millis(150), "{rtt:?}");
    assert!(rtt < Duration::from_millis(1000), "{rtt:?}");
    p.remove("latency_downstream").unwrap();
    p.remove("latency_upstream").unwrap();
    let rtt = round_trip(&mut c, b"again");
    assert!(rtt < Duration::from_millis(100), "{rtt:?}");
}

#[test]
fn bandwidth_rate_is_kept() {
    // 100 KB/s for 150,000 bytes: 1.5 s (Toxiproxy's bandwidth_test tolerance ~10%).
    let s = server(1);
    let p = s
        .proxy("bw", "127.0.0.1:0", &sender(vec![7u8; 150_000]).to_string())
        .unwrap();
    p.add(ToxicSpec::bandwidth(100)).unwrap();
    let t = Instant::now();
    let mut c = connect(p.listen());
    let (data, err) = read_all(&mut c);
    let took = t.elapsed();
    assert_eq!((data.len(), err), (150_000, None));
    assert!(took >= Duration::from_millis(1400), "{took:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
}

#[test]
fn limit_data_closes_after_n_bytes() {
    let s = server(1);
    let p = s
        .proxy("lim", "127.0.0.1:0", &sender(vec![1u8; 10_000]).to_string())
        .unwrap();
    p.add(ToxicSpec::limit_data(1234)).unwrap();
    let mut c = connect(p.listen());
    let (data, _) = read_all(&mut c);
    assert_eq!(data.len(), 1234);
}

#[test]
fn slicer_delivers_everything_in_pieces() {
    let s = server(1);
    let payload: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let p = s
        .proxy("sl", "127.0.0.1:0", &sender(payload.clone()).to_string())
        .unwrap();
    p.add(ToxicSpec::slicer(100, 50, 1000)).unwrap();
    let mut c = connect(p.listen());
    let mut got = Vec::new();
    let mut reads = 0;
    let mut buf = [0u8; 65536];
    loop {
        match c.read(&mut buf).unwrap() {
            0 => break,
            n => {
                reads += 1;
                got.extend_from_slice(&buf[..n]);
            }
        }
    }
    assert_eq!(got, payload);
    assert!(reads > 10, "sliced into pieces: {reads} reads");
}

#[test]
fn timeout_zero_holds_and_removing_it_closes() {
    let s = server(1);
    let p = s.proxy("to", "127.0.0.1:0", &echo().to_string()).unwrap();
    let mut c = connect(p.listen());
    round_trip(&mut c, b"x");
    p.add(ToxicSpec::timeout(0)).unwrap();
    c.write_all(b"dropped").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 16];
    let e = c.read(&mut buf).unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));
    let t = Instant::now();
    p.remove("timeout_downstream").unwrap();
    // The defect this catches blocks for as long as the toxic holds data (forever for
    // a timeout of 0): a second is far from it and safe on a loaded 2-core machine.
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "removal never blocks: {:?}",
        t.elapsed()
    );
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (data, _) = read_all(&mut c);
    assert!(data.is_empty(), "closed without the dropped bytes");
}

#[test]
fn timeout_closes_after_its_time() {
    let s = server(1);
    let p = s.proxy("to2", "127.0.0.1:0", &echo().to_string()).unwrap();
    p.add(ToxicSpec::timeout(200)).unwrap();
    let t = Instant::now();
    let mut c = connect(p.listen());
    let (data, _) = read_all(&mut c);
    assert!(data.is_empty());
    assert!(
        t.elapsed() >= Duration::from_millis(190),
        "{:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[test]
fn reset_peer_added_after_open_still_resets() {
    let s = server(1);
    let p = s.proxy("rp", "127.0.0.1:0", &echo().to_string()).unwrap();
    let mut c = connect(p.listen());
    round_trip(&mut c, b"open");
    p.add(ToxicSpec::reset_peer(50)).unwrap();
    let (_, err) = read_all(&mut c);
    assert_eq!(err, Some(ErrorKind::ConnectionReset));
    assert_eq!(s.metrics("rp").unwrap().activations("reset_peer"), 1);
}

#[test]
fn reset_peer_with_toxicity_zero_never_fires() {
    let s = server(1);
    let p = s
        .proxy("rp0", "127.0.0.1:0", &sender(b"bye".to_vec()).to_string())
        .unwrap();
    p.add(ToxicSpec::reset_peer(0).toxicity(0.0)).unwrap();
    for _ in 0..20 {
        let mut c = connect(p.listen());
        let (data, err) = read_all(&mut c);
        assert_eq!(
            (data.as_slice(), err),
            (&b"bye"[..], None),
            "a clean close, no RST"
        );
    }
    assert_eq!(s.metrics("rp0").unwrap().activations("reset_peer"), 0);
}

#[test]
fn slow_close_delays_the_close() {
    let s = server(1);
    let p = s
        .proxy("sc", "127.0.0.1:0", &sender(b"data".to_vec()).to_string())
        .unwrap();
    p.add(ToxicSpec::slow_close(300)).unwrap();
    let t = Instant::now();
    let mut c = connect(p.listen());
    let (data, _) = read_all(&mut c);
    assert_eq!(data, b"data");
    assert!(
        t.elapsed() >= Duration::from_millis(290),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn disabled_proxy_is_down_and_comes_back() {
    let s = server(1);
    let p = s.proxy("down", "127.0.0.1:0", &echo().to_string()).unwrap();
    let mut c = connect(p.listen());
    round_trip(&mut c, b"up");
    p.set_enabled(false).unwrap();
    let (_, _) = read_all(&mut c);
    assert!(TcpStream::connect(p.listen()).is_err(), "listener closed");
    p.set_enabled(true).unwrap();
    let mut c = connect(p.listen());
    round_trip(&mut c, b"back");
}

#[test]
fn refused_upstream_closes_the_client_and_is_counted() {
    let s = server(1);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up = dead.local_addr().unwrap().to_string();
    drop(dead);
    let p = s.proxy("dead", "127.0.0.1:0", &up).unwrap();
    let unresolvable = s
        .proxy("nx", "127.0.0.1:0", "no-such-host.invalid:80")
        .unwrap();
    for addr in [p.listen(), unresolvable.listen()] {
        let mut c = connect(addr);
        let (data, _) = read_all(&mut c);
        assert!(data.is_empty());
    }
    assert_eq!(s.metrics("dead").unwrap().upstream_failures(), 1);
    assert_eq!(s.metrics("nx").unwrap().upstream_failures(), 1);
    // The proxy keeps serving.
    s.update("dead", &serde_json::json!({"upstream": echo().to_string()}))
        .unwrap();
    let addr: std::net::SocketAddr = s.get("dead").unwrap()["listen"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    round_trip(&mut connect(addr), b"alive");
}

#[test]
fn triggers_after_bytes_and_until() {
    let s = server(1);
    let p = s
        .proxy("trig", "127.0.0.1:0", &sender(vec![5u8; 5000]).to_string())
        .unwrap();
    // The first 1000 bytes pass untouched, then limit_data lets 10 more through.
    p.add(ToxicSpec::limit_data(10).after_bytes(1000)).unwrap();
    let (data, _) = read_all(&mut connect(p.listen()));
    assert_eq!(data.len(), 1010);
    p.remove("limit_data_downstream").unwrap();
    // Latency for the first 200 ms of a connection only.
    let e = s
        .proxy("trig2", "127.0.0.1:0", &echo().to_string())
        .unwrap();
    e.add(ToxicSpec::latency(300, 0).for_ms(200)).unwrap();
    let mut c = connect(e.listen());
    assert!(round_trip(&mut c, b"a") >= Duration::from_millis(300));
    std::thread::sleep(Duration::from_millis(100));
    assert!(round_trip(&mut c, b"b") < Duration::from_millis(150));
}

#[test]
fn trigger_after_the_nth_frame() {
    let s = server(1);
    let p = s
        .proxy(
            "frames",
            "127.0.0.1:0",
            &sender(b"a\nbb\nccc\ndddd\n".to_vec()).to_string(),
        )
        .unwrap();
    p.add(ToxicSpec::limit_data(2).after_frames(3, "lines"))
        .unwrap();
    let (data, _) = read_all(&mut connect(p.listen()));
    assert_eq!(data, b"a\nbb\nccc\ndd");
    let bad = p.add(
        ToxicSpec::timeout(0)
            .named("t")
            .after_frames(1, "no-such-framing"),
    );
    assert_eq!(bad.unwrap_err().status(), 400);
}

#[test]
fn per_client_toxic_spares_other_clients() {
    let s = server(1);
    let p = s.proxy("pc", "127.0.0.1:0", &echo().to_string()).unwrap();
    p.add(ToxicSpec::latency(300, 0).client("10.0.0.0/8"))
        .unwrap();
    let mut c = connect(p.listen());
    assert!(round_trip(&mut c, b"x") < Duration::from_millis(200));
    p.add(ToxicSpec::latency(300, 0).upstream().client("127.0.0.0/8"))
        .unwrap();
    assert!(round_trip(&mut c, b"y") >= Duration::from_millis(300));
}

/// Which of `n` connections a toxicity-0.5 `limit_data` toxic cut, under `seed`.
fn toxicity_pattern(seed: u64, n: usize) -> Vec<bool> {
    let s = server(seed);
    let p = s
        .proxy("seeded", "127.0.0.1:0", &sender(vec![0u8; 100]).to_string())
        .unwrap();
    p.add(ToxicSpec::limit_data(1).toxicity(0.5)).unwrap();
    (0..n)
        .map(|_| {
            let (data, _) = read_all(&mut connect(p.listen()));
            data.len() == 1
        })
        .collect()
}

#[test]
fn seed_makes_random_decisions_reproducible() {
    let a = toxicity_pattern(42, 24);
    let b = toxicity_pattern(42, 24);
    let c = toxicity_pattern(43, 24);
    assert_eq!(a, b, "same seed, same decisions");
    assert_ne!(a, c, "another seed, other decisions");
    assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x), "{a:?}");
}

#[test]
fn live_toxic_changes_never_drop_duplicate_or_reorder() {
    let s = server(3);
    let p = s.proxy("live", "127.0.0.1:0", &echo().to_string()).unwrap();
    let addr = p.listen();
    let total = 4 << 20;
    let payload: Vec<u8> = (0..total as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut c = connect(addr);
    let mut r = c.try_clone().unwrap();
    let expect = payload.clone();
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; expect.len()];
        r.read_exact(&mut got).unwrap();
        assert!(got == expect, "bytes differ");
    });
    let writer = std::thread::spawn(move || {
        // Paced so that toxics come and go during the whole transfer.
        for chunk in payload.chunks(64 * 1024) {
            c.write_all(chunk).unwrap();
            std::thread::sleep(Duration::from_millis(15));
        }
        c
    });
    let specs = [
        ToxicSpec::latency(5, 5),
        ToxicSpec::latency(3, 2).upstream(),
        ToxicSpec::slicer(500, 400, 20),
        ToxicSpec::bandwidth(20_000).upstream(),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut round = 0;
    while !reader.is_finished() && Instant::now() < deadline {
        let spec = specs[round % specs.len()].clone();
        let name = p.add(spec).unwrap();
        std::thread::sleep(Duration::from_millis(15));
        s.update_toxic("live", &name, &serde_json::json!({"toxicity": 1.0}))
            .unwrap();
        std::thread::sleep(Duration::from_millis(15));
        p.remove(&name).unwrap();
        round += 1;
    }
    reader.join().unwrap();
    drop(writer.join().unwrap());
    assert!(
        round >= 3,
        "toxics changed {round} times during the transfer"
    );
}
