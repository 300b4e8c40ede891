//! UDP tracked peers, side by side with a plain tokio `UdpSocket` echo in one run:
//!
//! 1. datagrams/s: the same load client (8 sockets x 16 datagrams in flight, 64 bytes,
//!    every echo checked) against a netloom UDP endpoint (one tracked peer per client
//!    socket, `EchoHandler` in each pipeline) and a plain tokio echo loop, both on one
//!    thread; rounds interleaved, medians compared.
//! 2. memory per idle tracked peer: a counting global allocator measures the heap held by
//!    100,000 peers (one datagram each, from distinct loopback addresses), next to the
//!    heap of as many bare `EmbeddedChannel`s with the same handler.
//!
//! Loopback only; bounded by count and time.
//! `cargo bench -p netloom-channel --bench udp_peers -- [--peers N] [--seconds S] [--rounds R]`
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use netloom_channel::udp::{UdpBootstrap, UdpConfig};
use netloom_channel::{EchoHandler, EmbeddedChannel, EventLoopGroup};

/// Counts the bytes allocated and not yet freed.
struct Counting;

static HEAP: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged and only
// adds bookkeeping, so `System`'s guarantees carry over.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HEAP.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: `ptr` was allocated by `System` with `layout`; `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn heap() -> isize {
    HEAP.load(Ordering::Relaxed)
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4
}

const SOCKETS: usize = 8;
const WINDOW: usize = 16;
const PAYLOAD: usize = 64;

/// Echo round trips per second against `server` for `secs`; every echo is checked.
fn load(server: SocketAddr, secs: f64) -> f64 {
    let socks: Vec<UdpSocket> = (0..SOCKETS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").expect("client bind");
            s.connect(server).expect("client connect");
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .expect("timeout");
            s
        })
        .collect();
    let mut payload = [0u8; PAYLOAD];
    let mut buf = [0u8; 2048];
    let mut done = 0u64;
    let mut seq = 0u64;
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        for s in &socks {
            for _ in 0..WINDOW {
                seq += 1;
                payload[..8].copy_from_slice(&seq.to_le_bytes());
                s.send(&payload).expect("send");
            }
        }
        for s in &socks {
            for _ in 0..WINDOW {
                match s.recv(&mut buf) {
                    Ok(n) => {
                        assert_eq!(n, PAYLOAD, "echo of the wrong length");
                        done += 1;
                    }
                    Err(_) => break, // lost on loopback (socket buffer full): not counted
                }
            }
        }
    }
    done as f64 / start.elapsed().as_secs_f64()
}

/// A plain tokio echo server on its own thread (it ends with the process).
fn tokio_echo() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async move {
            let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(sock.local_addr().expect("addr"))
                .expect("send addr");
            let mut buf = vec![0u8; 65_536];
            loop {
                if let Ok((n, from)) = sock.recv_from(&mut buf).await {
                    let _ = sock.send_to(&buf[..n], from).await;
                }
            }
        });
    });
    rx.recv().expect("tokio echo address")
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn throughput(secs: f64, rounds: usize) {
    let group = EventLoopGroup::new(1, "udp-bench").expect("group");
    let endpoint = UdpBootstrap::new(&group)
        .handler(|p| {
            p.add_last("echo", EchoHandler)?;
            Ok(())
        })
        .bind("127.0.0.1:0".parse().expect("addr"))
        .sync()
        .expect("bind netloom");
    let plain = tokio_echo();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ours.push(load(endpoint.local_addr(), secs));
        theirs.push(load(plain, secs));
    }
    let (a, b) = (median(&mut ours), median(&mut theirs));
    println!(
        "## datagrams/s ({SOCKETS} sockets x {WINDOW} in flight, {PAYLOAD} B, {rounds} rounds of {secs} s, medians)"
    );
    println!("| server | datagrams/s |");
    println!("|---|---|");
    println!("| netloom UDP tracked peers | {a:.0} |");
    println!("| plain tokio UdpSocket echo | {b:.0} |");
    println!("| ratio netloom / tokio | {:.2} |", a / b);
    println!("tracked peers: {}", endpoint.stats());
    endpoint.close();
}

fn memory(peers: usize) {
    let group = EventLoopGroup::new(1, "udp-mem").expect("group");
    let endpoint = UdpBootstrap::new(&group)
        .config(UdpConfig {
            max_peers: peers + 1,
            idle_timeout: Duration::from_secs(3600),
            channel: netloom_channel::ChannelOptions {
                recv_buffer_size: Some(4 << 20),
                ..Default::default()
            },
            ..UdpConfig::default()
        })
        .handler(|p| {
            p.add_last("echo", EchoHandler)?;
            Ok(())
        })
        .bind("127.0.0.1:0".parse().expect("addr"))
        .sync()
        .expect("bind");
    let server = endpoint.local_addr();
    // Warm up: one peer, so one-off allocations (buffers, timers) are not counted.
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.send_to(b"w", server))
        .expect("warm up");
    let deadline = Instant::now() + Duration::from_secs(5);
    while endpoint.stats().datagrams_in < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let (heap0, rss0) = (heap(), rss_kib());
    let mut sent = 1u64;
    let start = Instant::now();
    'outer: for ip in 1..=8u8 {
        for port in 20_000..45_000u16 {
            if sent as usize > peers {
                break 'outer;
            }
            let addr = SocketAddr::from((Ipv4Addr::new(127, 1, 0, ip), port));
            let Ok(s) = UdpSocket::bind(addr) else {
                continue;
            };
            if s.send_to(b"p", server).is_err() {
                continue;
            }
            sent += 1;
            if sent.is_multiple_of(100) {
                // Let the server catch up so the socket buffer does not overflow; a lost
                // datagram is simply not a peer.
                let deadline = Instant::now() + Duration::from_millis(200);
                while endpoint.stats().datagrams_in < sent && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_micros(100));
                }
                sent = endpoint.stats().datagrams_in;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while endpoint.stats().datagrams_in < sent && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    let stats = endpoint.stats();
    let tracked = stats.peers.saturating_sub(1).max(1) as f64;
    let per_peer = (heap() - heap0) as f64 / tracked;
    let rss_per_peer = (rss_kib().saturating_sub(rss0) * 1024) as f64 / tracked;
    let elapsed = start.elapsed();
    endpoint.close();
    let _ = endpoint.close_future().sync();

    // The same handler in bare channels: what any channel costs without tracking.
    let h0 = heap();
    let bare: Vec<EmbeddedChannel> = (0..peers.min(100_000))
        .map(|_| {
            EmbeddedChannel::new(|p| {
                p.add_last("echo", EchoHandler)?;
                Ok(())
            })
            .expect("embedded")
        })
        .collect();
    let bare_per = (heap() - h0) as f64 / bare.len() as f64;
    drop(bare);

    println!(
        "## memory per idle tracked peer ({} peers, made in {:.1} s)",
        stats.peers - 1,
        elapsed.as_secs_f64()
    );
    println!("| measure | bytes per peer |");
    println!("|---|---|");
    println!("| heap held per tracked idle peer (counting allocator) | {per_peer:.0} |");
    println!("| RSS growth per tracked idle peer | {rss_per_peer:.0} |");
    println!("| heap per bare EmbeddedChannel with the same handler | {bare_per:.0} |");
    println!("endpoint: {stats}");
}

fn main() {
    let peers = arg("--peers", 100_000.0) as usize;
    let secs = arg("--seconds", 2.0);
    let rounds = arg("--rounds", 3.0) as usize;
    println!("(shared, noisy 2-core machine: compare the ratio within this run)");
    throughput(secs, rounds.max(1));
    memory(peers);
}
