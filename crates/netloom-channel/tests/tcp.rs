//! Event loops, bootstraps and the pipeline over real loopback sockets.
mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use common::{
    Log, Recorder, bind_local, echo_server, read_exact_timeout, read_to_end, recording_client,
    round_trip, wait_until,
};
use netloom_channel::{
    Bootstrap, ChannelError, ChannelOptions, Context, EchoHandler, EventLoopGroup, Handler,
    HandlerResult, Msg, ServerBootstrap,
};

#[test]
fn echoes_over_ipv4_and_ipv6() {
    let group = EventLoopGroup::new(2, "echo").unwrap();
    for addr in ["127.0.0.1:0", "[::1]:0"] {
        let bound = echo_server(&group, addr);
        assert_ne!(bound.port(), 0);
        let mut client = TcpStream::connect(bound).unwrap();
        round_trip(&mut client, b"hello");
        let big = vec![7u8; 1 << 20];
        round_trip(&mut client, &big);
    }
}

#[test]
fn server_callbacks_arrive_in_order() {
    let group = EventLoopGroup::new(1, "cb").unwrap();
    let log = Log::default();
    let l = log.clone();
    let server = ServerBootstrap::new(&group, &group)
        .child_handler(move |p| {
            p.add_last("rec", Recorder(l.clone()))?;
            Ok(())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    let mut client = TcpStream::connect(server.local_addr().inet().unwrap()).unwrap();
    log.wait_for("active");
    client.write_all(b"hi").unwrap();
    log.wait_for("read_complete");
    drop(client);
    log.wait_for("unregistered");
    assert_eq!(
        log.events(),
        [
            "added",
            "registered",
            "active",
            "read:hi",
            "read_complete",
            "inactive",
            "unregistered"
        ]
    );
}

#[test]
fn client_bootstrap_reads_and_writes() {
    let group = EventLoopGroup::new(1, "client").unwrap();
    let bound = echo_server(&group, "127.0.0.1:0");
    let log = Log::default();
    let ch = recording_client(&group, &log)
        .connect(bound)
        .sync()
        .unwrap();
    assert!(ch.is_active());
    assert_eq!(ch.peer_addr().and_then(|a| a.inet()), Some(bound));
    ch.write_and_flush(Bytes::from_static(b"ping")).unwrap();
    log.wait_for("read:ping");
    ch.close();
    ch.close_future().sync().unwrap();
    assert!(!ch.is_open());
    log.wait_for("unregistered");
    assert!(ch.write(Bytes::from_static(b"late")).is_err());
}

#[test]
fn refused_connect_is_an_error() {
    let group = EventLoopGroup::new(1, "refused").unwrap();
    // Bound and held, never listening: nothing else can take the port, and it refuses.
    let (_held, refusing) = common::refusing_addr("127.0.0.1");
    let err = Bootstrap::new(&group)
        .connect(("127.0.0.1", refusing.port()))
        .sync()
        .unwrap_err();
    match err {
        ChannelError::Connect { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused)
        }
        other => panic!("expected a refused connect, got {other}"),
    }
}

#[test]
fn connect_times_out_against_a_full_backlog() {
    let group = EventLoopGroup::new(1, "timeout").unwrap();
    // A listener with a backlog of 0 that never accepts: once its queue is full, the
    // kernel drops further SYNs and connects hang.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&addr.into());
        fillers.push(s);
    }
    std::thread::sleep(Duration::from_millis(50));
    let opts = ChannelOptions {
        connect_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let err = Bootstrap::new(&group)
        .options(opts)
        .connect(addr)
        .sync()
        .unwrap_err();
    assert!(
        matches!(err, ChannelError::ConnectTimeout { .. }),
        "expected a timeout, got {err}"
    );
}

struct PanicOn(&'static [u8]);

impl Handler for PanicOn {
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        if msg.as_bytes().is_some_and(|b| b.starts_with(self.0)) {
            panic!("asked to panic");
        }
        ctx.fire_channel_read(msg);
        Ok(())
    }
}

#[test]
fn a_handler_panic_closes_only_its_channel() {
    let group = EventLoopGroup::new(1, "panic").unwrap();
    let log = Log::default();
    let l = log.clone();
    let (_server, addr) = bind_local(ServerBootstrap::new(&group, &group).child_handler(
        move |p| {
            p.add_last("panic", PanicOn(b"boom"))?
                .add_last("rec", Recorder(l.clone()))?
                .add_last("echo", EchoHandler)?;
            Ok(())
        },
    ));
    let mut good = TcpStream::connect(addr).unwrap();
    let mut bad = TcpStream::connect(addr).unwrap();
    round_trip(&mut good, b"before");
    bad.write_all(b"boom").unwrap();
    assert!(
        read_to_end(&mut bad).is_empty(),
        "the panicking channel is closed"
    );
    wait_until("exception", Duration::from_secs(5), || {
        log.events()
            .iter()
            .any(|e| e.contains("panicked: asked to panic"))
    });
    round_trip(&mut good, b"after");
    let mut third = TcpStream::connect(addr).unwrap();
    round_trip(&mut third, b"new connections still served");
}

#[test]
fn unix_socket_echo() {
    let group = EventLoopGroup::new(1, "unix").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let server = ServerBootstrap::new(&group, &group)
        .child_handler(|p| {
            p.add_last("echo", EchoHandler)?;
            Ok(())
        })
        .bind_unix(&path)
        .sync()
        .unwrap();
    let log = Log::default();
    let ch = recording_client(&group, &log)
        .connect_unix(&path)
        .sync()
        .unwrap();
    ch.write_and_flush(Bytes::from_static(b"over unix"))
        .unwrap();
    log.wait_for("read:over unix");
    server.close();
    server.close_future().sync().unwrap();
}

#[test]
fn try_clone_fd_duplicates_the_socket() {
    let group = EventLoopGroup::new(1, "fd").unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ch = Bootstrap::new(&group).connect(addr).sync().unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    let fd = ch.try_clone_fd().unwrap();
    let sock = socket2::Socket::from(fd);
    assert_eq!(
        sock.local_addr().unwrap().as_socket(),
        ch.local_addr().and_then(|a| a.inet())
    );
    // Reset the connection through the duplicate: the peer sees ECONNRESET.
    sock.set_linger(Some(Duration::ZERO)).unwrap();
    drop(sock);
    ch.close_forced();
    ch.close_future().sync().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1];
    let err = std::io::Read::read(&mut peer, &mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(ch.try_clone_fd().is_err());
}

#[test]
fn group_shutdown_closes_channels_and_rejects_work() {
    let group = EventLoopGroup::new(2, "shut").unwrap();
    let bound = echo_server(&group, "127.0.0.1:0");
    let mut client = TcpStream::connect(bound).unwrap();
    round_trip(&mut client, b"x");
    group
        .shutdown_gracefully(Duration::from_millis(20), Duration::from_secs(5))
        .sync()
        .unwrap();
    assert!(read_to_end(&mut client).is_empty());
    assert!(matches!(
        group.next().execute(|| {}),
        Err(ChannelError::EventLoopShutDown(_))
    ));
    let _ = read_exact_timeout;
}

#[test]
fn registering_off_an_event_loop_says_so_not_shut_down() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt.block_on(async {
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        netloom_channel::EventLoop::register_here(s, &ChannelOptions::default(), |_| Ok(()))
            .err()
            .unwrap()
    });
    assert!(matches!(err, ChannelError::NotOnEventLoop { .. }), "{err}");
    assert!(err.to_string().contains("event loop thread"));
}

/// Logs the peer each channel names when it becomes active.
struct PeerRecorder(Log);

impl Handler for PeerRecorder {
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let peer = ctx.channel().peer_addr().map(|a| a.to_string());
        self.0
            .push(format!("active:{}", peer.as_deref().unwrap_or("?")));
        ctx.fire_channel_active();
        Ok(())
    }
}

/// A connection reset before the server registered it still names its peer: the address
/// `accept(2)` returned, since the socket can no longer say (its channel, and every log
/// line about it, said `?`).
#[test]
fn a_connection_reset_before_registration_still_names_its_peer() {
    let boss = EventLoopGroup::new(1, "reset-boss").unwrap();
    let child = EventLoopGroup::new(1, "reset-child").unwrap();
    let log = Log::default();
    let l = log.clone();
    let server = ServerBootstrap::new(&boss, &child)
        .child_handler(move |p| {
            p.add_last("peer", PeerRecorder(l.clone()))?;
            Ok(())
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .sync()
        .unwrap();
    // Hold the accept loop's thread while a client connects and resets.
    let (release, held) = std::sync::mpsc::channel::<()>();
    boss.next()
        .execute(move || {
            let _ = held.recv_timeout(Duration::from_secs(10));
        })
        .unwrap();
    let client = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    client
        .connect(&server.local_addr().inet().unwrap().into())
        .unwrap();
    let local = client.local_addr().unwrap().as_socket().unwrap();
    client.set_linger(Some(Duration::ZERO)).unwrap();
    drop(client);
    std::thread::sleep(Duration::from_millis(50));
    release.send(()).unwrap();
    log.wait_for_prefix("active:");
    assert_eq!(log.events(), [format!("active:{local}")]);
}
