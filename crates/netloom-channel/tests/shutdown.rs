//! Graceful shutdown of a server (issue 13, defect 18): stop accepting, drain, close within
//! a bounded grace time.
mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{bind_local, round_trip};
use netloom_channel::{
    Context, EchoHandler, EventLoopGroup, ForwardConfig, Forwarder, Handler, HandlerResult,
    Interest, ServerBootstrap,
};

#[test]
fn a_graceful_shutdown_stops_accepting_and_ends_connections_with_a_fin() {
    let group = EventLoopGroup::new(2, "shutdown").unwrap();
    let (server, addr) = bind_local(ServerBootstrap::new(&group, &group).child_handler(|p| {
        p.add_last("echo", EchoHandler)?;
        Ok(())
    }));
    let mut clients: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for c in &mut clients {
        round_trip(c, b"before the signal");
    }
    let start = Instant::now();
    server
        .shutdown_gracefully(Duration::from_secs(5))
        .sync()
        .unwrap();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    for c in &mut clients {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        // A FIN (EOF), not a reset.
        assert_eq!(c.read(&mut buf).unwrap(), 0);
    }
    assert!(!server.is_open());
    assert!(TcpStream::connect(addr).is_err(), "still accepting");
}

/// Writes 32 MiB on connect: with a client that never reads, the graceful close can never
/// finish writing it.
struct Flood;

impl Handler for Flood {
    fn interest(&self) -> Interest {
        Interest::ACTIVE
    }
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.write_and_flush(Bytes::from(vec![7u8; 32 << 20]));
        ctx.fire_channel_active();
        Ok(())
    }
}

#[test]
fn a_graceful_shutdown_is_bounded_by_the_grace_time() {
    let group = EventLoopGroup::new(1, "shutdown-grace").unwrap();
    let (server, addr) = bind_local(ServerBootstrap::new(&group, &group).child_handler(|p| {
        p.add_last("flood", Flood)?;
        Ok(())
    }));
    let c = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    server
        .shutdown_gracefully(Duration::from_millis(300))
        .sync()
        .unwrap();
    let took = start.elapsed();
    // It waited for the writes (the grace time), then stopped anyway.
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "shutdown took {took:?}"
    );
    drop(c);
}

#[test]
fn a_forwarder_shuts_down_gracefully() {
    let group = EventLoopGroup::new(1, "shutdown-fwd").unwrap();
    let echo_group = EventLoopGroup::new(1, "shutdown-echo").unwrap();
    let echo = common::echo_server(&echo_group, "127.0.0.1:0");
    let fwd = Forwarder::bind(
        &group,
        "127.0.0.1:0".parse().unwrap(),
        ForwardConfig::new(echo),
    )
    .unwrap();
    let mut c = TcpStream::connect(fwd.local_addr()).unwrap();
    round_trip(&mut c, b"through");
    fwd.shutdown_gracefully(Duration::from_secs(5))
        .sync()
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(c.read(&mut buf).unwrap(), 0);
}
