//! A peer flooding tiny frames without reading (issue 13, defect 10), two more holes:
//! reading must stop while the channel is over its high water mark — also the first read
//! of each wake-up, or the decoder piles up one read per wake-up — and one channel's
//! backlog must not keep the loop from the others (a poll runs at most
//! a few rounds). Counts, not times: the latency target is measured by
//! `scripts/bench-attack` on a release build.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use netloom_channel::{
    ChannelOptions, Context, EchoHandler, EventLoopGroup, Handler, HandlerResult, MemoryBudget,
    Msg, ServerBootstrap,
};

/// Counts every frame the server decodes; remembers the count when it sees `ping`.
struct Count {
    frames: Arc<AtomicUsize>,
    at_ping: Arc<AtomicUsize>,
}

impl Handler for Count {
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let n = self.frames.fetch_add(1, Ordering::Relaxed);
        if msg.as_bytes().is_some_and(|b| &b[..] == b"ping") {
            self.at_ping.store(n, Ordering::Relaxed);
        }
        ctx.fire_channel_read(msg);
        Ok(())
    }
}

/// A `lines` echo server on `group` (one loop) whose decoders charge `budget`.
fn lines_echo(
    group: &EventLoopGroup,
    options: ChannelOptions,
    frames: &Arc<AtomicUsize>,
    at_ping: &Arc<AtomicUsize>,
) -> std::net::SocketAddr {
    let (f, a) = (frames.clone(), at_ping.clone());
    // An echo: it pauses its reads while its own answers are pending, as `netloom echo` does.
    let options = ChannelOptions {
        pause_reads_while_unwritable: true,
        ..options
    };
    let server = ServerBootstrap::new(group, group)
        .child_options(options)
        .child_handler(move |p| {
            p.add_last("framing", common::lines_framing())?
                .add_last(
                    "count",
                    Count {
                        frames: f.clone(),
                        at_ping: a.clone(),
                    },
                )?
                .add_last("echo", EchoHandler)?;
            Ok(())
        });
    common::bind_local(server).1
}

/// A client with a `buf`-byte receive buffer that never reads.
fn flooder(addr: std::net::SocketAddr, buf: usize) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(buf).unwrap();
    sock.set_send_buffer_size(buf).unwrap();
    sock.connect(&addr.into()).unwrap();
    TcpStream::from(sock)
}

#[test]
fn an_unwritable_channel_reads_nothing_more_so_the_decoder_backlog_stays_bounded() {
    let group = EventLoopGroup::new(1, "flood-read").unwrap();
    let budget = MemoryBudget::new(1 << 30);
    let (frames, at_ping) = Default::default();
    // Default kernel buffers on the server: its echoes keep draining into them for a
    // while, and each such write used to wake a round whose first read added a whole
    // chunk to a decoder that then decoded only up to the high water mark.
    let addr = lines_echo(
        &group,
        ChannelOptions {
            memory_budget: Some(budget.clone()),
            ..ChannelOptions::default()
        },
        &frames,
        &at_ping,
    );
    let mut c = flooder(addr, 1 << 20);
    c.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (d, b) = (done.clone(), budget.clone());
    let sampler = thread::spawn(move || {
        let mut peak = 0;
        while !d.load(Ordering::Relaxed) {
            peak = peak.max(b.used());
            thread::sleep(Duration::from_micros(200));
        }
        peak
    });
    // Empty lines until the server stops taking them (blocked for 2 s), at most 16 MiB.
    let chunk = vec![b'\n'; 64 * 1024];
    let mut sent = 0usize;
    while sent < 16 << 20 {
        match c.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    done.store(true, Ordering::Relaxed);
    let peak_buffered = sampler.join().unwrap();
    eprintln!(
        "sent {} KiB before the server stopped reading; decoder backlog peak {} KiB",
        sent / 1024,
        peak_buffered / 1024
    );
    // One read chunk (128 KiB) waits in the decoder at most (it was two and more).
    let o = ChannelOptions::default();
    assert!(
        peak_buffered <= o.read_chunk_size * 3 / 2,
        "the decoder held {peak_buffered} bytes"
    );
}

#[test]
fn a_flooding_channel_yields_to_a_new_client_after_a_bounded_amount_of_work() {
    let group = EventLoopGroup::new(1, "flood-fair").unwrap();
    let (frames, at_ping) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let addr = lines_echo(&group, ChannelOptions::default(), &frames, &at_ping);
    // 4 MiB of empty lines toward a server whose echoes the big kernel buffers absorb for
    // a long while: millions of frames of work, queued before the new client arrives.
    let mut c = flooder(addr, 8 << 20);
    let flood = vec![b'\n'; 4 << 20];
    let writer = thread::spawn(move || {
        let _ = c.write_all(&flood);
        c
    });
    common::wait_until("the flood is being echoed", Duration::from_secs(10), || {
        frames.load(Ordering::Relaxed) > 0
    });
    let before = frames.load(Ordering::Relaxed);
    let mut probe = TcpStream::connect(addr).unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    probe.write_all(b"ping\n").unwrap();
    let mut got = [0u8; 5];
    probe.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping\n");
    let between = at_ping.load(Ordering::Relaxed) - before;
    let o = ChannelOptions::default();
    // Per poll of the flooder: one round (the task's MAX_ROUNDS_PER_POLL), each
    // decoding up to the high water mark (counted with the per-message overhead); a few
    // polls of slack for the accept and the registration of the new channel. Without the
    // cap, a poll went on until the kernel buffers were full (over 200,000 frames).
    let per_round = o.write_buffer_high_water_mark / (1 + o.write_message_overhead) + 1;
    let bound = 8 * per_round;
    eprintln!("{between} flood frames were handled before the new client's (bound {bound})");
    assert!(
        between <= bound,
        "{between} flood frames were handled before the new client's"
    );
    drop(writer);
}
