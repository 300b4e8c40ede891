//! `PendingWrites`: bytes a handler holds count against its channel's writability, over
//! real sockets.
mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use common::{Log, pattern, wait_until};
use netloom_channel::{
    Channel, ChannelOptions, Context, EventLoopGroup, Handler, HandlerResult, Interest, Msg,
    PendingWrites, ServerBootstrap,
};

const CHUNK: usize = 1024;

/// Holds every outbound message; when `release_every` is set, writes the held batch on at
/// that period. Records the most bytes it ever held.
struct Holder {
    held: Option<PendingWrites>,
    release_every: Option<Duration>,
    peak: Arc<AtomicUsize>,
}

impl Handler for Holder {
    fn interest(&self) -> Interest {
        Interest::WRITE | Interest::FLUSH
    }
    fn handler_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.held = Some(ctx.pending_writes());
        if let Some(every) = self.release_every {
            ctx.schedule_timer(every);
        }
        Ok(())
    }
    fn write(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let held = self.held.get_or_insert_with(|| ctx.pending_writes());
        held.push_msg(msg);
        self.peak.fetch_max(held.bytes(), Ordering::Relaxed);
        Ok(())
    }
    fn flush(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        Ok(()) // the timer writes and flushes
    }
    fn timer_expired(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if let Some(held) = &mut self.held
            && held.write_all(ctx) > 0
        {
            ctx.flush();
        }
        if let Some(every) = self.release_every {
            ctx.schedule_timer(every);
        }
        Ok(())
    }
}

/// Writes patterned chunks while the channel is writable, up to `total` bytes; logs each
/// writability change with the pending bytes at that moment.
struct Producer {
    total: usize,
    sent: usize,
    log: Log,
    channel: Arc<Mutex<Option<Channel>>>,
}

impl Producer {
    fn produce(&mut self, ctx: &mut Context<'_>) {
        let mut wrote = false;
        while self.sent < self.total && ctx.channel().is_writable() {
            let n = CHUNK.min(self.total - self.sent);
            let mut buf = vec![0u8; n];
            pattern(self.sent, &mut buf);
            ctx.write(Bytes::from(buf));
            self.sent += n;
            wrote = true;
        }
        if wrote {
            ctx.flush();
        }
    }
}

impl Handler for Producer {
    fn interest(&self) -> Interest {
        Interest::ACTIVE | Interest::WRITABILITY
    }
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        *self.channel.lock().unwrap() = Some(ctx.channel().clone());
        self.produce(ctx);
        Ok(())
    }
    fn channel_writability_changed(&mut self, ctx: &mut Context<'_>, w: bool) -> HandlerResult {
        self.log.push(format!(
            "writable:{w}:{}",
            ctx.channel().pending_outbound_bytes()
        ));
        if w {
            self.produce(ctx);
        }
        Ok(())
    }
}

struct Server {
    addr: SocketAddr,
    log: Log,
    peak_held: Arc<AtomicUsize>,
    channel: Arc<Mutex<Option<Channel>>>,
    _group: EventLoopGroup,
}

fn server(total: usize, release_every: Option<Duration>) -> Server {
    let group = EventLoopGroup::new(1, "pending").unwrap();
    let log = Log::default();
    let peak_held = Arc::new(AtomicUsize::new(0));
    let channel = Arc::new(Mutex::new(None));
    let (l, p, c) = (log.clone(), peak_held.clone(), channel.clone());
    let options = ChannelOptions {
        send_buffer_size: Some(64 * 1024),
        ..ChannelOptions::default()
    };
    let server = ServerBootstrap::new(&group, &group)
        .child_options(options)
        .child_handler(move |pipe| {
            pipe.add_last(
                "hold",
                Holder {
                    held: None,
                    release_every,
                    peak: p.clone(),
                },
            )?;
            pipe.add_last(
                "produce",
                Producer {
                    total,
                    sent: 0,
                    log: l.clone(),
                    channel: c.clone(),
                },
            )?;
            Ok(())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let addr = server.local_addr().inet().unwrap();
    std::mem::forget(server); // closed with the group
    Server {
        addr,
        log,
        peak_held,
        channel,
        _group: group,
    }
}

#[test]
fn held_writes_make_the_channel_unwritable_and_stay_bounded_for_a_slow_reader() {
    let total = 8 << 20;
    let high = ChannelOptions::default().write_buffer_high_water_mark;
    let srv = server(total, Some(Duration::from_millis(5)));
    let mut client = TcpStream::connect(srv.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // A slow reader: 4 KiB at a time, a pause every 16 reads.
    let mut buf = vec![0u8; 4096];
    let mut expected = vec![0u8; 4096];
    let mut got = 0;
    let mut reads = 0u64;
    while got < total {
        let n = client.read(&mut buf).unwrap();
        assert!(n > 0, "EOF after {got} of {total} bytes");
        pattern(got, &mut expected[..n]);
        assert!(buf[..n] == expected[..n], "corrupted at offset {got}");
        got += n;
        reads += 1;
        if reads.is_multiple_of(16) {
            thread::sleep(Duration::from_millis(1));
        }
    }
    let events = srv.log.events();
    let unwritable: Vec<_> = events
        .iter()
        .filter(|e| e.starts_with("writable:false"))
        .collect();
    assert!(
        !unwritable.is_empty(),
        "held writes never made the channel unwritable"
    );
    assert!(events.iter().any(|e| e.starts_with("writable:true")));
    // Unwritable because of the held bytes: the pending count at the event passed the mark.
    let first: usize = unwritable[0].rsplit(':').next().unwrap().parse().unwrap();
    assert!(first > high, "unwritable at {first} pending bytes");
    let peak = srv.peak_held.load(Ordering::Relaxed);
    eprintln!(
        "{} unwritable events, peak held {peak} bytes",
        unwritable.len()
    );
    // Bounded by the high water mark plus one chunk (plus what waits for the socket,
    // which also counts), never the whole 8 MiB the producer had to send.
    assert!(
        peak <= high + CHUNK,
        "the handler held {peak} bytes (high water mark {high})"
    );
}

#[test]
fn dropping_held_writes_releases_them_and_the_channel_becomes_writable() {
    let high = ChannelOptions::default().write_buffer_high_water_mark;
    let srv = server(1 << 20, None);
    let client = TcpStream::connect(srv.addr).unwrap();
    srv.log.wait_for_prefix("writable:false");
    let channel = srv.channel.lock().unwrap().clone().unwrap();
    assert!(!channel.is_writable());
    let pending = channel.pending_outbound_bytes();
    assert!(pending > high, "{pending} bytes pending");
    // Exactly what the holder holds: its bytes plus the per-message overhead.
    let held = srv.peak_held.load(Ordering::Relaxed);
    let overhead = ChannelOptions::default().write_message_overhead;
    assert_eq!(pending, held + held / CHUNK * overhead);
    // The holder leaves with what it holds (dropped, never written).
    channel
        .with_pipeline(|p| {
            p.remove("hold").unwrap();
        })
        .unwrap();
    // Only the release can bring the count below the low water mark.
    srv.log.wait_for_prefix("writable:true");
    // Closing accounts for everything: what waits for the socket and what was held.
    drop(client);
    wait_until("the channel to close", Duration::from_secs(10), || {
        !channel.is_open()
    });
    assert_eq!(channel.pending_outbound_bytes(), 0);
}
