//! `--seed`: the same seed and the same traffic give the same random decisions for every
//! random TCP toxic — jitter and slicer sizes here (toxicity in tests/toxics.rs, UDP loss
//! in tests/udp.rs) — and another seed gives others. Over real loopback sockets.
mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
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

/// Round trips of 8 pings through a latency 100 ± 90 ms toxic under `seed`.
fn jitter_run(seed: u64) -> Vec<Duration> {
    let s = server(seed);
    let p = s.proxy("jit", "127.0.0.1:0", &echo().to_string()).unwrap();
    p.add(ToxicSpec::latency(100, 90)).unwrap();
    let mut c = TcpStream::connect(p.listen()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.set_nodelay(true).unwrap();
    (0..8u8)
        .map(|i| {
            let t = Instant::now();
            c.write_all(&[i]).unwrap();
            let mut b = [0u8; 1];
            c.read_exact(&mut b).unwrap();
            assert_eq!(b, [i]);
            t.elapsed()
        })
        .collect()
}

fn gaps(a: &[Duration], b: &[Duration]) -> Vec<u128> {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.as_millis().abs_diff(y.as_millis()))
        .collect()
}

#[test]
fn the_seed_repeats_jitter() {
    let a = jitter_run(42);
    let b = jitter_run(42);
    let c = jitter_run(43);
    let spread = a
        .iter()
        .max()
        .unwrap()
        .saturating_sub(*a.iter().min().unwrap());
    assert!(spread > Duration::from_millis(40), "jitter varies: {a:?}");
    let same = gaps(&a, &b);
    assert!(
        same.iter().all(|g| *g < 30),
        "same seed, same delays: {a:?} {b:?}"
    );
    let other = gaps(&a, &c);
    assert!(
        other.iter().any(|g| *g > 40),
        "another seed, other delays: {a:?} {c:?}"
    );
}

/// The offsets at which the client's reads of 3,000 sliced bytes ended, under `seed`.
/// Slices leave 20 ms apart, so each read is one slice; a slow reader could merge two
/// (dropping a cut, never adding one).
fn slicer_cuts(seed: u64) -> BTreeSet<usize> {
    let s = server(seed);
    let payload: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let p = s
        .proxy("sl", "127.0.0.1:0", &sender(payload.clone()).to_string())
        .unwrap();
    p.add(ToxicSpec::slicer(100, 80, 20_000)).unwrap();
    let mut c = TcpStream::connect(p.listen()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut cuts = BTreeSet::new();
    let mut buf = [0u8; 65536];
    loop {
        match c.read(&mut buf).unwrap() {
            0 => break,
            n => {
                got.extend_from_slice(&buf[..n]);
                cuts.insert(got.len());
            }
        }
    }
    assert_eq!(got, payload);
    cuts
}

#[test]
fn the_seed_repeats_slicer_sizes() {
    // Two tries, in case a slow reader merged two slices in one of the runs.
    let mut last = String::new();
    for _ in 0..2 {
        let a = slicer_cuts(42);
        let b = slicer_cuts(42);
        let c = slicer_cuts(43);
        assert!(a.len() >= 15, "sliced: {a:?}");
        if a == b {
            assert_ne!(a, c, "another seed, other sizes");
            return;
        }
        last = format!("{a:?}\n{b:?}");
    }
    panic!("same seed, different slices:\n{last}");
}
