//! Idle timeout, TLS handshake timeout and keep-alive options (issue 13, defect 15).
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Log, Recorder, bind_local, time_until_closed};
use netloom_channel::{
    ChannelOptions, Context, EchoHandler, EventLoopGroup, Handler, HandlerResult, ServerBootstrap,
    TlsHandler, TlsServerConfig,
};

/// The server closed `c` after its timeout (300 ms in these tests), not at once, and said
/// which limit it was.
fn assert_closed_by_timeout(c: &mut TcpStream, log: &Log, limit: &str) {
    let waited = time_until_closed(c);
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(10),
        "closed after {waited:?}"
    );
    log.wait_for("inactive");
    log.assert_exception_naming(limit);
}

fn echo_with_idle_timeout(group: &EventLoopGroup, timeout: Duration, log: &Log) -> SocketAddr {
    with_idle_timeout(group, timeout, log, || EchoHandler)
}

/// A server with `timeout` as its idle timeout, a recorder, then the handler `last` makes.
fn with_idle_timeout<H: Handler + 'static>(
    group: &EventLoopGroup,
    timeout: Duration,
    log: &Log,
    last: impl Fn() -> H + Send + Sync + 'static,
) -> SocketAddr {
    let l = log.clone();
    let server = ServerBootstrap::new(group, group)
        .idle_timeout(timeout)
        .tcp_keepalive(Duration::from_secs(60))
        .child_handler(move |p| {
            p.add_last("rec", Recorder(l.clone()))?
                .add_last("last", last())?;
            Ok(())
        });
    bind_local(server).1
}

#[test]
fn a_slowloris_client_is_closed_after_the_idle_timeout() {
    let group = EventLoopGroup::new(1, "idle").unwrap();
    let log = Log::default();
    let addr = echo_with_idle_timeout(&group, Duration::from_millis(300), &log);
    let mut c = TcpStream::connect(addr).unwrap();
    // Half a request line, then silence.
    c.write_all(b"GET / HTTP/1.1\r\nHost: x").unwrap();
    assert_closed_by_timeout(&mut c, &log, "idle_timeout");
}

#[test]
fn a_talking_client_is_not_closed_by_the_idle_timeout() {
    let group = EventLoopGroup::new(1, "idle-ok").unwrap();
    let log = Log::default();
    let addr = echo_with_idle_timeout(&group, Duration::from_millis(400), &log);
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // 1.2 s of traffic, one message every 100 ms: three timeouts' worth, never idle.
    for _ in 0..12 {
        c.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!log.contains("inactive"), "{:?}", log.events());
}

/// Writes one byte every 100 ms, from channel_active on; takes nothing else.
struct Ticker;

#[netloom_channel::handler]
impl Handler for Ticker {
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.schedule_timer(Duration::from_millis(100));
        ctx.fire_channel_active();
        Ok(())
    }

    fn timer_expired(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.write_and_flush(Bytes::from_static(b"t"));
        ctx.schedule_timer(Duration::from_millis(100));
        Ok(())
    }
}

#[test]
fn a_server_that_keeps_writing_is_not_closed_by_the_idle_timeout() {
    // The channel notes writes as activity, not only reads: a client that only listens
    // (a feed, a long download) stays open while the server writes.
    let group = EventLoopGroup::new(1, "idle-writes").unwrap();
    let log = Log::default();
    let addr = with_idle_timeout(&group, Duration::from_millis(400), &log, || Ticker);
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // 1.2 s of the server's writes, three timeouts' worth, and not a byte from the client.
    let mut got = [0u8; 12];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"tttttttttttt");
    assert!(!log.contains("inactive"), "{:?}", log.events());
}

#[test]
fn a_zero_or_huge_idle_timeout_is_refused_by_name() {
    for bad in [Duration::ZERO, ChannelOptions::MAX_TIMEOUT * 2] {
        let opts = ChannelOptions {
            idle_timeout: Some(bad),
            ..ChannelOptions::default()
        };
        let err = opts.validate().unwrap_err().to_string();
        assert!(err.contains("idle_timeout"), "{err}");
    }
    let opts = ChannelOptions {
        tcp_keepalive: Some(Duration::ZERO),
        ..ChannelOptions::default()
    };
    assert!(
        opts.validate()
            .unwrap_err()
            .to_string()
            .contains("tcp_keepalive")
    );
}

/// A ClientHello as a real client sends it.
fn client_hello() -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    assert!(hello.len() > 100);
    hello
}

#[test]
fn a_tls_client_hello_then_silence_is_closed_after_the_handshake_timeout() {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cfg = TlsServerConfig::from_pem(
        key.cert.pem().as_bytes(),
        key.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let group = EventLoopGroup::new(1, "handshake").unwrap();
    let log = Log::default();
    let l = log.clone();
    let server = ServerBootstrap::new(&group, &group).child_handler(move |p| {
        p.add_last(
            "tls",
            TlsHandler::server(&cfg)?.handshake_timeout(Some(Duration::from_millis(300))),
        )?
        .add_last("rec", Recorder(l.clone()))?;
        Ok(())
    });
    let (_server, addr) = bind_local(server);
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(&client_hello()).unwrap();
    // The server answers the hello (ServerHello ...), then waits for the client's part.
    assert_closed_by_timeout(&mut c, &log, "handshake_timeout");
}
