//! `ForwardConfig::with_client_handlers` / `with_target_handlers`: user handlers on each
//! side of a forwarded connection, over real sockets.
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use common::{echo_server, read_exact_timeout};
use netloom_channel::{
    ChannelOptions, CloseMode, Context, EventLoopGroup, ForwardConfig, Forwarder, Handler,
    HandlerResult, Interest, Msg, PendingWrites,
};

/// Maps each byte read with `map` and counts the bytes written through it.
struct Rewrite {
    map: fn(u8) -> u8,
    written: Arc<AtomicUsize>,
}

impl Handler for Rewrite {
    fn interest(&self) -> Interest {
        Interest::READ | Interest::WRITE
    }
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let Some(bytes) = msg.as_bytes() else {
            ctx.fire_channel_read(msg);
            return Ok(());
        };
        let mapped: Vec<u8> = bytes.iter().map(|&b| (self.map)(b)).collect();
        ctx.fire_channel_read(Bytes::from(mapped));
        Ok(())
    }
    fn write(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let n = msg.as_bytes().map_or(0, |b| b.len());
        self.written.fetch_add(n, Ordering::Relaxed);
        ctx.write(msg);
        Ok(())
    }
}

#[test]
fn user_handlers_see_both_directions_on_each_side() {
    let group = EventLoopGroup::new(2, "hooks").unwrap();
    let echo = echo_server(&group, "127.0.0.1:0");
    let to_client = Arc::new(AtomicUsize::new(0));
    let to_target = Arc::new(AtomicUsize::new(0));
    let (tc, tt) = (to_client.clone(), to_target.clone());
    let config = ForwardConfig::new(echo)
        .with_client_handlers(move |p| {
            // What the client sends is upper-cased before it goes to the target.
            p.add_last(
                "upper",
                Rewrite {
                    map: |b| b.to_ascii_uppercase(),
                    written: tc.clone(),
                },
            )?;
            Ok(())
        })
        .with_target_handlers(move |p| {
            // What the target answers has its L's turned into 1's.
            p.add_last(
                "l-to-1",
                Rewrite {
                    map: |b| if b == b'L' { b'1' } else { b },
                    written: tt.clone(),
                },
            )?;
            Ok(())
        });
    let fwd = Forwarder::bind(&group, "127.0.0.1:0".parse().unwrap(), config).unwrap();
    let mut c = TcpStream::connect(fwd.local_addr()).unwrap();
    c.write_all(b"hello world").unwrap();
    assert_eq!(read_exact_timeout(&mut c, 11), b"HE11O WOR1D");
    // The outbound side of each hook saw the bytes going to its peer.
    assert_eq!(to_target.load(Ordering::Relaxed), 11);
    assert_eq!(to_client.load(Ordering::Relaxed), 11);
}

#[test]
fn a_failing_target_initializer_closes_the_client() {
    let group = EventLoopGroup::new(1, "hooks-fail").unwrap();
    let echo = echo_server(&group, "127.0.0.1:0");
    let config = ForwardConfig::new(echo).with_target_handlers(|_| {
        Err(netloom_channel::ChannelError::NoSuchHandler(
            "refused on purpose".into(),
        ))
    });
    let fwd = Forwarder::bind(&group, "127.0.0.1:0".parse().unwrap(), config).unwrap();
    let mut c = TcpStream::connect(fwd.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 16];
    // EOF or reset, never a hang.
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
}

/// Holds what goes to the target for `delay`, then writes the batch on (a latency toxic).
/// A close or an output shutdown (the forwarder passing the client's FIN on) waits for
/// the held writes.
struct Delay {
    delay: Duration,
    held: Option<PendingWrites>,
    close: Option<CloseMode>,
    peak: Arc<AtomicUsize>,
}

impl Handler for Delay {
    fn interest(&self) -> Interest {
        Interest::WRITE | Interest::FLUSH | Interest::CLOSE
    }
    fn close(&mut self, ctx: &mut Context<'_>, mode: CloseMode) -> HandlerResult {
        match &self.held {
            Some(held) if !held.is_empty() && mode != CloseMode::Forced => {
                self.close = Some(mode);
            }
            _ => ctx.close_with(mode),
        }
        Ok(())
    }
    fn write(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let held = self.held.get_or_insert_with(|| ctx.pending_writes());
        if held.is_empty() {
            ctx.schedule_timer(self.delay);
        }
        held.push_msg(msg);
        self.peak.fetch_max(held.bytes(), Ordering::Relaxed);
        Ok(())
    }
    fn flush(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        Ok(())
    }
    fn timer_expired(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if let Some(held) = &mut self.held
            && held.write_all(ctx) > 0
        {
            ctx.flush();
        }
        if let Some(mode) = self.close.take() {
            ctx.close_with(mode);
        }
        Ok(())
    }
}

#[test]
fn a_delaying_target_handler_backpressures_the_client_with_bounded_memory() {
    let total = 16 << 20;
    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = sink.local_addr().unwrap();
    let consumer = thread::spawn(move || {
        let (mut s, _) = sink.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0usize;
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                return got;
            }
            assert!(
                buf[..n]
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| b == ((got + i) % 251) as u8),
                "corrupted near offset {got}"
            );
            got += n;
        }
    });
    let peak = Arc::new(AtomicUsize::new(0));
    let p = peak.clone();
    let config = ForwardConfig::new(target).with_target_handlers(move |pipe| {
        pipe.add_last(
            "delay",
            Delay {
                delay: Duration::from_millis(2),
                held: None,
                close: None,
                peak: p.clone(),
            },
        )?;
        Ok(())
    });
    let group = EventLoopGroup::new(1, "hooks-delay").unwrap();
    let fwd = Forwarder::bind(&group, "127.0.0.1:0".parse().unwrap(), config).unwrap();
    let mut client = TcpStream::connect(fwd.local_addr()).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = ((sent + i) % 251) as u8;
        }
        client.write_all(&buf).unwrap();
        sent += buf.len();
    }
    client.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(consumer.join().unwrap(), total);
    let peak = peak.load(Ordering::Relaxed);
    let o = ChannelOptions::default();
    eprintln!("the delay handler held at most {peak} bytes");
    // High water mark plus one read: the forwarder stopped reading the client while the
    // held bytes kept the target side unwritable.
    assert!(
        peak <= o.write_buffer_high_water_mark + o.read_chunk_size,
        "held {peak} bytes"
    );
}
