//! A `latency` toxic delays each chunk by its latency, not by the latency plus a timer tick:
//! tokio's millisecond timer fired 0-2 ms late (1 ms typically), so a 10 ms toxic gave
//! 11.3 ms round trips. The proxy now wakes with a timerfd. The bound is on the lower
//! quartile of the round trips, which load on a shared CI machine moves least: with the
//! millisecond timer it sat ~0.7 ms above the latency (plus the loopback round trip).
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use netloom_proxy::{ProxyServer, ServerOptions, ToxicSpec};

fn echo_upstream() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            c.set_nodelay(true).unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = c.read(&mut buf) {
                    if c.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Round trips of 32-byte messages through `addr`, sorted.
fn round_trips(addr: std::net::SocketAddr, n: usize) -> Vec<Duration> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::with_capacity(n);
    let mut buf = [0u8; 32];
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(&[7u8; 32]).unwrap();
        s.read_exact(&mut buf).unwrap();
        out.push(t.elapsed());
    }
    out.sort();
    out
}

#[test]
fn latency_toxic_adds_its_latency_not_a_timer_tick_more() {
    let server = ProxyServer::new(ServerOptions {
        seed: 1,
        ..Default::default()
    })
    .unwrap();
    let proxy = server
        .proxy("lat", "127.0.0.1:0", &echo_upstream())
        .unwrap();
    round_trips(proxy.listen(), 20); // warm up
    let base = round_trips(proxy.listen(), 40);
    let base_q1 = base[base.len() / 4];
    proxy.add(ToxicSpec::latency(5, 0)).unwrap();
    let latency = Duration::from_millis(5);
    let bound = latency + base_q1 + Duration::from_micros(400);
    // Up to 5 rounds: a loaded machine may delay a round's wake-ups (scheduling, not the
    // timer); the millisecond timer put every round's quartile ~1 ms late.
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let rtt = round_trips(proxy.listen(), 40);
        assert!(rtt[0] >= latency, "a chunk left early: {:?}", rtt[0]);
        let q1 = rtt[rtt.len() / 4];
        eprintln!(
            "round trips with a 5 ms toxic: lower quartile {q1:?}, median {:?}; {base_q1:?} without",
            rtt[rtt.len() / 2]
        );
        rounds.push(q1);
        if q1 < bound {
            return;
        }
    }
    panic!(
        "lower quartiles {rounds:?} with a 5 ms toxic, all above {bound:?} ({base_q1:?} without)"
    );
}
