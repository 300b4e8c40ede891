//! Writability, closing and idle events over loopback sockets.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use common::{Log, Recorder, read_to_end, wait_until};
use netloom_channel::{
    ChannelOptions, CloseMode, Context, EventLoopGroup, Handler, HandlerResult, IdleStateHandler,
    ReadTimeoutHandler, ServerBootstrap, ServerChannel,
};

/// Writes `total` bytes in 16 KiB chunks when active, then optionally closes.
struct Flood {
    total: usize,
    close: Option<CloseMode>,
}

impl Handler for Flood {
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
        for _ in 0..self.total / chunk.len() {
            ctx.write(chunk.clone());
        }
        ctx.flush();
        if let Some(mode) = self.close {
            ctx.close_with(mode);
        }
        ctx.fire_channel_active();
        Ok(())
    }
}

fn flood_server(
    group: &EventLoopGroup,
    log: &Log,
    total: usize,
    close: Option<CloseMode>,
) -> ServerChannel {
    let l = log.clone();
    ServerBootstrap::new(group, group)
        .child_options(ChannelOptions {
            send_buffer_size: Some(16 * 1024),
            ..Default::default()
        })
        .child_handler(move |p| {
            p.add_last("rec", Recorder(l.clone()))?
                .add_last("flood", Flood { total, close })?;
            Ok(())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap()
}

fn slow_client(addr: std::net::SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(16 * 1024).unwrap();
    sock.connect(&addr.into()).unwrap();
    sock.into()
}

#[test]
fn writability_has_hysteresis_with_a_slow_reader() {
    let group = EventLoopGroup::new(1, "writability").unwrap();
    let log = Log::default();
    let total = 1 << 20;
    let server = flood_server(&group, &log, total, None);
    let mut client = slow_client(server.local_addr().inet().unwrap());
    wait_until("unwritable", Duration::from_secs(5), || {
        log.events().iter().any(|e| e.starts_with("writable:false"))
    });
    // Read slowly until everything arrived.
    let mut got = 0;
    let mut buf = vec![0u8; 8 * 1024];
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while got < total {
        let n = client.read(&mut buf).unwrap();
        assert!(n > 0, "server closed early");
        got += n;
        if got % (128 * 1024) < n {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    log.wait_for_prefix("writable:true");
    let changes: Vec<(bool, usize)> = log
        .events()
        .iter()
        .filter_map(|e| e.strip_prefix("writable:"))
        .map(|e| {
            let (w, pending) = e.split_once(':').unwrap();
            (w == "true", pending.parse().unwrap())
        })
        .collect();
    assert_eq!(
        changes.len(),
        2,
        "one change each way, no flapping: {changes:?}"
    );
    assert!(!changes[0].0 && changes[0].1 > 64 * 1024, "{changes:?}");
    assert!(changes[1].0 && changes[1].1 < 32 * 1024, "{changes:?}");
}

#[test]
fn graceful_close_writes_everything_first() {
    let group = EventLoopGroup::new(1, "graceful").unwrap();
    let log = Log::default();
    let total = 4 << 20;
    let server = flood_server(&group, &log, total, Some(CloseMode::Graceful));
    let mut client = slow_client(server.local_addr().inet().unwrap());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(read_to_end(&mut client).len(), total);
    log.wait_for("unregistered");
}

#[test]
fn forced_close_drops_pending_writes() {
    let group = EventLoopGroup::new(1, "forced").unwrap();
    let log = Log::default();
    let total = 16 << 20;
    let server = flood_server(&group, &log, total, Some(CloseMode::Forced));
    let mut client = slow_client(server.local_addr().inet().unwrap());
    log.wait_for("unregistered");
    let got = read_to_end(&mut client).len();
    assert!(
        got < total,
        "forced close should drop pending data, got all {got} bytes"
    );
}

/// Writes buffers of uneven sizes, each of its own byte pattern, then closes gracefully.
struct Patterned(Vec<usize>);

impl Patterned {
    fn expected(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for (i, &len) in self.0.iter().enumerate() {
            all.extend((0..len).map(|j| (i * 31 + j * 7) as u8));
        }
        all
    }
}

impl Handler for Patterned {
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        for (i, &len) in self.0.iter().enumerate() {
            let buf: Vec<u8> = (0..len).map(|j| (i * 31 + j * 7) as u8).collect();
            ctx.write(Bytes::from(buf));
        }
        ctx.flush();
        ctx.close_with(CloseMode::Graceful);
        Ok(())
    }
}

#[test]
fn capped_gathering_writes_split_buffers_without_losing_or_reordering_bytes() {
    let group = EventLoopGroup::new(1, "write-cap").unwrap();
    let sizes = vec![3000, 17, 1, 70 * 1024, 999, 1000, 1001, 200 * 1024, 5];
    let expected = Patterned(sizes.clone()).expected();
    let server = ServerBootstrap::new(&group, &group)
        .child_options(ChannelOptions {
            max_bytes_per_gathering_write: 1000,
            ..Default::default()
        })
        .child_handler(move |p| {
            p.add_last("patterned", Patterned(sizes.clone()))?;
            Ok(())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let mut client = slow_client(server.local_addr().inet().unwrap());
    let got = read_to_end(&mut client);
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "bytes differ from what was written");
}

#[test]
fn a_zero_write_cap_is_refused_by_name() {
    let group = EventLoopGroup::new(1, "write-cap-zero").unwrap();
    let err = ServerBootstrap::new(&group, &group)
        .child_options(ChannelOptions {
            max_bytes_per_gathering_write: 0,
            ..Default::default()
        })
        .child_handler(|_| Ok(()))
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .err()
        .expect("a zero write cap must not bind");
    assert!(
        err.to_string().contains("max_bytes_per_gathering_write"),
        "{err}"
    );
}

fn idle_server(
    group: &EventLoopGroup,
    log: &Log,
    handler: impl Fn() -> IdleStateHandler + Send + Sync + 'static,
) -> ServerChannel {
    let l = log.clone();
    ServerBootstrap::new(group, group)
        .child_handler(move |p| {
            p.add_last("idle", handler())?
                .add_last("rec", Recorder(l.clone()))?;
            Ok(())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap()
}

#[test]
fn idle_events_fire_for_each_kind() {
    let group = EventLoopGroup::new(1, "idle").unwrap();
    let ms = Duration::from_millis;
    let t = Duration::from_millis(80);
    let z = Duration::ZERO;
    let cases = [
        ([t, z, z], "event:ReaderIdle"),
        ([z, t, z], "event:WriterIdle"),
        ([z, z, t], "event:AllIdle"),
    ];
    for ([r, w, a], expected) in cases {
        let log = Log::default();
        let server = idle_server(&group, &log, move || IdleStateHandler::new(r, w, a));
        let _c = TcpStream::connect(server.local_addr().inet().unwrap()).unwrap();
        log.wait_for(expected);
        // It fires again after another idle period.
        wait_until("a second idle event", ms(5000), || {
            log.events().iter().filter(|e| *e == expected).count() >= 2
        });
    }
}

#[test]
fn reads_keep_the_reader_from_going_idle() {
    let group = EventLoopGroup::new(1, "busy").unwrap();
    let log = Log::default();
    let server = idle_server(&group, &log, || {
        IdleStateHandler::new(Duration::from_millis(800), Duration::ZERO, Duration::ZERO)
    });
    let mut c = TcpStream::connect(server.local_addr().inet().unwrap()).unwrap();
    for _ in 0..40 {
        c.write_all(b".").unwrap();
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(!log.contains("event:ReaderIdle"), "{:?}", log.events());
    log.wait_for("event:ReaderIdle");
}

#[test]
fn read_timeout_raises_and_closes() {
    let group = EventLoopGroup::new(1, "read-timeout").unwrap();
    let log = Log::default();
    let l = log.clone();
    let server = ServerBootstrap::new(&group, &group)
        .child_handler(move |p| {
            p.add_last(
                "timeout",
                ReadTimeoutHandler::new(Duration::from_millis(100)),
            )?
            .add_last("rec", Recorder(l.clone()))?;
            Ok(())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let mut c = TcpStream::connect(server.local_addr().inet().unwrap()).unwrap();
    assert!(read_to_end(&mut c).is_empty());
    wait_until("read timeout", Duration::from_secs(5), || {
        log.events().iter().any(|e| e.contains("read timeout"))
    });
    log.wait_for("unregistered");
}
