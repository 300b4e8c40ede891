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
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
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
