//! Tiny frames and flow control (issue 13, defect 10): clients that send empty lines and
//! never read must not make the server hold unbounded memory, and the server keeps
//! answering others.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::rss_kib;
use netloom_channel::{
    Channel, ChannelOptions, Context, EchoHandler, EventLoopGroup, Handler, HandlerResult,
    Interest, ServerBootstrap,
};

/// Sends a line and expects it back, waiting up to 60 s (an unoptimized build on a busy
/// machine is slow; the latency target is checked by a release benchmark, not here).
fn round_trip(c: &mut TcpStream, line: &[u8]) {
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    c.write_all(line).unwrap();
    let mut got = vec![0u8; line.len()];
    c.read_exact(&mut got).unwrap();
    assert_eq!(got, line);
}

/// Remembers each accepted channel, to read the server's own accounting.
struct Track(Arc<Mutex<Vec<Channel>>>);

impl Handler for Track {
    fn interest(&self) -> Interest {
        Interest::ACTIVE
    }
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.0.lock().unwrap().push(ctx.channel().clone());
        ctx.fire_channel_active();
        Ok(())
    }
}

#[test]
fn clients_sending_empty_lines_without_reading_keep_the_server_bounded() {
    const CLIENTS: usize = 20;
    let group = EventLoopGroup::new(1, "tiny").unwrap();
    let channels = Arc::new(Mutex::new(Vec::new()));
    let ch = channels.clone();
    // Small kernel buffers, so the flood backs up into the server quickly (with the
    // defaults, loopback buffers take megabytes of echoes first, which an unoptimized
    // test build spends seconds decoding).
    let server = ServerBootstrap::new(&group, &group)
        .child_options(ChannelOptions {
            send_buffer_size: Some(4 * 1024),
            recv_buffer_size: Some(4 * 1024),
            pause_reads_while_unwritable: true,
            ..ChannelOptions::default()
        })
        .child_handler(move |p| {
            p.add_last("track", Track(ch.clone()))?
                .add_last("framing", common::lines_framing())?
                .add_last("echo", EchoHandler)?;
            Ok(())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let addr = server.local_addr().inet().unwrap();
    let rss_before = rss_kib(None);
    // Each client writes empty lines until the server stops taking them (up to 4 MiB).
    let flooders: Vec<_> = (0..CLIENTS)
        .map(|_| {
            thread::spawn(move || {
                let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                    .unwrap();
                sock.set_recv_buffer_size(4 * 1024).unwrap();
                sock.connect(&addr.into()).unwrap();
                let mut c = TcpStream::from(sock);
                c.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
                let chunk = vec![b'\n'; 64 * 1024];
                let mut sent = 0;
                while sent < 4 << 20 {
                    match c.write(&chunk) {
                        Ok(n) => sent += n,
                        Err(_) => break, // blocked: the server stopped reading
                    }
                }
                (c, sent)
            })
        })
        .collect();
    // Meanwhile a well-behaved client is still answered.
    let mut worst = Duration::ZERO;
    let mut probe = TcpStream::connect(addr).unwrap();
    let mut peak_rss = rss_before;
    while !flooders.iter().all(|f| f.is_finished()) {
        let t = Instant::now();
        round_trip(&mut probe, b"still there?\n");
        worst = worst.max(t.elapsed());
        peak_rss = peak_rss.max(rss_kib(None));
        thread::sleep(Duration::from_millis(20));
    }
    let clients: Vec<(TcpStream, usize)> =
        flooders.into_iter().map(|f| f.join().unwrap()).collect();
    let t = Instant::now();
    let mut fresh = TcpStream::connect(addr).unwrap();
    round_trip(&mut fresh, b"new client\n");
    worst = worst.max(t.elapsed());
    peak_rss = peak_rss.max(rss_kib(None));
    let o = ChannelOptions::default();
    let pending: Vec<usize> = channels
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.pending_outbound_bytes())
        .collect();
    let max_pending = pending.iter().copied().max().unwrap_or(0);
    let sent: usize = clients.iter().map(|(_, s)| s).sum();
    let growth_mib = peak_rss.saturating_sub(rss_before) / 1024;
    eprintln!(
        "{CLIENTS} flooders sent {} KiB of empty lines; max pending per connection {max_pending} B; \
         RSS growth {growth_mib} MiB; worst round trip of another client {worst:?}",
        sent / 1024
    );
    // The water mark holds in what a message costs: a few messages past the mark at most
    // (those already on their way through the pipeline when it was crossed).
    assert!(
        max_pending <= o.write_buffer_high_water_mark + 4 * (1 + o.write_message_overhead),
        "{max_pending} bytes pending on one connection"
    );
    assert!(growth_mib < 100, "RSS grew by {growth_mib} MiB");
    drop(clients);
}
