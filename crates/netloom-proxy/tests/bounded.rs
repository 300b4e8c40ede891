//! Memory stays bounded when a toxic slows a direction down: a fast sender pushes a large
//! transfer through a bandwidth toxic; the process's RSS (from /proc) may grow by less than
//! 4 MiB. The size is 128 MiB by default; `NETLOOM_PROXY_RSS_BYTES=1073741824` runs the
//! 1 GiB case of the issue.
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use netloom_proxy::{ProxyServer, ServerOptions, ToxicSpec};

fn rss_bytes() -> u64 {
    netloom_testnet::rss_kib(None) * 1024
}

#[test]
fn bandwidth_toxic_keeps_rss_growth_under_4_mib() {
    let total: u64 = std::env::var("NETLOOM_PROXY_RSS_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128 << 20);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let buf = vec![0x5au8; 64 * 1024];
        let mut sent = 0u64;
        while sent < total {
            let n = (total - sent).min(buf.len() as u64) as usize;
            if s.write_all(&buf[..n]).is_err() {
                return;
            }
            sent += n as u64;
        }
    });
    let server = ProxyServer::new(ServerOptions {
        seed: 1,
        ..Default::default()
    })
    .unwrap();
    let p = server.proxy("bounded", "127.0.0.1:0", &up).unwrap();
    // 20 MB/s: well below what the sender and the proxy can push, so the toxic holds the line.
    p.add(ToxicSpec::bandwidth(20_000)).unwrap();
    let mut c = TcpStream::connect(p.listen()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    // Warm up: the loop's buffers and the toxic's first slices exist before the baseline.
    let mut got = 0u64;
    while got < 8 << 20 {
        got += c.read(&mut buf).unwrap() as u64;
    }
    let base = rss_bytes();
    let peak = Arc::new(AtomicU64::new(base));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let start = Instant::now();
    loop {
        match c.read(&mut buf).unwrap() {
            0 => break,
            n => got += n as u64,
        }
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let growth = peak.load(Ordering::Relaxed).saturating_sub(base);
    println!(
        "{} MiB in {:?}; RSS {} KiB at start, growth {} KiB",
        total >> 20,
        start.elapsed(),
        base / 1024,
        growth / 1024
    );
    assert_eq!(got, total);
    assert!(growth < 4 << 20, "RSS grew by {growth} bytes");
}

/// Bytes written by a sender that never stops into `toxic`'s proxy, while the client reads
/// nothing for 1.5 s.
fn sent_while_the_client_waits(toxic: ToxicSpec) -> u64 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = l.local_addr().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (s2, st2) = (sent.clone(), stop.clone());
    std::thread::spawn(move || {
        let Ok((mut c, _)) = l.accept() else { return };
        c.set_write_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let buf = vec![3u8; 64 * 1024];
        while !st2.load(Ordering::Relaxed) {
            match c.write(&buf) {
                Ok(n) => {
                    s2.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
        }
    });
    let s = ProxyServer::new(ServerOptions {
        seed: 1,
        ..Default::default()
    })
    .unwrap();
    let p = s.proxy("held", "127.0.0.1:0", &up.to_string()).unwrap();
    p.add(toxic).unwrap();
    let _c = TcpStream::connect(p.listen()).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let n = sent.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    n
}

/// What latency and slicer hold counts against the client channel's writability too: a
/// sender that never stops gets through no more than the sockets' buffers and one window
/// (4.3 MB measured here; the bound allows for 32 MiB receive buffers), where an unbounded
/// queue would take everything it sends (hundreds of MiB in 1.5 s).
#[test]
fn latency_and_slicer_push_back_to_the_sender() {
    for toxic in [ToxicSpec::latency(1000, 0), ToxicSpec::slicer(10, 0, 1000)] {
        let name = toxic.to_json()["type"].clone();
        let sent = sent_while_the_client_waits(toxic);
        assert!(
            sent < 64 << 20,
            "{name}: the sender got {sent} bytes through"
        );
        assert!(sent > 0, "{name}: the sender wrote nothing");
    }
}
