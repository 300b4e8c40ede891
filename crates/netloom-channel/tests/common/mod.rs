//! Helpers shared by the integration tests (polling and memory readers come from
//! netloom-testnet, shared with the other crates' tests).
#![allow(dead_code, unused_imports)]
pub mod tls;

pub use netloom_testnet::{rss_kib, wait_until};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use netloom_channel::{
    Bootstrap, ChannelError, Context, DecoderHandler, EchoHandler, EventLoopGroup, FramingHandler,
    Handler, HandlerResult, Msg, ServerBootstrap, ServerChannel, UserEvent,
};
use netloom_codec::Framer;

/// A handler that frames both ways as `lines` (the CLI's `--framing lines`).
pub fn lines_framing() -> FramingHandler<Framer, Framer> {
    FramingHandler::new(
        Framer::from_name("lines").unwrap(),
        Framer::from_name("lines").unwrap(),
    )
}

/// On the frame `SWITCH`, replaces the decoder named `dec` by a decoder of the framer
/// named `.0` (e.g. `fixed:3`), mid-stream.
pub struct Switcher(pub &'static str);

impl Handler for Switcher {
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        if msg
            .downcast_ref::<Bytes>()
            .is_some_and(|b| &b[..] == b"SWITCH")
        {
            ctx.pipeline().replace(
                "dec",
                "dec",
                DecoderHandler::new(Framer::from_name(self.0)?),
            )?;
        }
        ctx.fire_channel_read(msg);
        Ok(())
    }
}

/// A client bootstrap whose channels record into `log`.
pub fn recording_client(group: &EventLoopGroup, log: &Log) -> Bootstrap {
    let l = log.clone();
    Bootstrap::new(group).handler(move |p| {
        p.add_last("rec", Recorder(l.clone()))?;
        Ok(())
    })
}

/// Starts an `EchoHandler` server on `group` at `addr` (port 0 allowed); returns where it
/// listens.
pub fn echo_server(group: &EventLoopGroup, addr: &str) -> SocketAddr {
    let server = ServerBootstrap::new(group, group).child_handler(|p| {
        p.add_last("echo", EchoHandler)?;
        Ok(())
    });
    let server = server.bind(addr.parse().unwrap()).sync().unwrap();
    server.local_addr().inet().unwrap()
}

/// Binds `server` on 127.0.0.1, on a port the system picks (the server holds it, so no
/// other process can take it); returns the server and its address.
pub fn bind_local(server: ServerBootstrap) -> (ServerChannel, SocketAddr) {
    let server = server.bind("127.0.0.1:0".parse().unwrap()).sync().unwrap();
    let addr = server.local_addr().inet().unwrap();
    (server, addr)
}

/// An address that refuses TCP connections for as long as the returned socket lives: it
/// is bound (so nobody else gets the port) but not listening.
pub fn refusing_addr(ip: &str) -> (socket2::Socket, SocketAddr) {
    let addr: SocketAddr = SocketAddr::new(ip.parse().unwrap(), 0);
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .unwrap();
    socket.bind(&addr.into()).unwrap();
    let bound = socket.local_addr().unwrap().as_socket().unwrap();
    (socket, bound)
}

/// Reads until EOF or a reset; returns how long that took. Fails if the peer has not
/// closed within 20 s.
pub fn time_until_closed(c: &mut TcpStream) -> Duration {
    read_until_closed(c).1
}

/// Reads until EOF or a reset; returns the bytes read and how long that took. Fails if the
/// peer has not closed within 20 s.
pub fn read_until_closed(c: &mut TcpStream) -> (Vec<u8>, Duration) {
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return (got, start.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                panic!("not closed after {:?}", start.elapsed())
            }
            Err(_) => return (got, start.elapsed()),
        }
    }
}

/// Fills `buf` with the byte pattern `(offset + i) % 251`, so a stream's bytes can be
/// checked for order and loss at any offset.
pub fn pattern(offset: usize, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = ((offset + i) % 251) as u8;
    }
}

/// A shared event log.
#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    pub fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    pub fn contains(&self, s: &str) -> bool {
        self.0.lock().unwrap().iter().any(|e| e == s)
    }
    pub fn wait_for_prefix(&self, p: &str) {
        wait_until(p, Duration::from_secs(10), || {
            self.0.lock().unwrap().iter().any(|e| e.starts_with(p))
        });
    }
    pub fn wait_for(&self, s: &str) {
        wait_until(s, Duration::from_secs(10), || self.contains(s));
    }
    /// Fails unless an `exception:` event names `what` (a limit, an option).
    pub fn assert_exception_naming(&self, what: &str) {
        let events = self.events();
        assert!(
            events
                .iter()
                .any(|e| e.starts_with("exception:") && e.contains(what)),
            "no exception naming {what}: {events:?}"
        );
    }
}

/// Records every inbound callback and passes it on.
pub struct Recorder(pub Log);

impl Handler for Recorder {
    fn handler_added(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        self.0.push("added");
        Ok(())
    }
    fn channel_registered(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.0.push("registered");
        ctx.fire_channel_registered();
        Ok(())
    }
    fn channel_unregistered(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.0.push("unregistered");
        ctx.fire_channel_unregistered();
        Ok(())
    }
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.0.push("active");
        ctx.fire_channel_active();
        Ok(())
    }
    fn channel_inactive(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.0.push("inactive");
        ctx.fire_channel_inactive();
        Ok(())
    }
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        match msg.as_bytes() {
            Some(b) => self.0.push(format!("read:{}", String::from_utf8_lossy(b))),
            None => self.0.push(format!("read:{}", msg.type_name())),
        }
        ctx.fire_channel_read(msg);
        Ok(())
    }
    fn channel_read_complete(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.0.push("read_complete");
        ctx.fire_channel_read_complete();
        Ok(())
    }
    fn channel_writability_changed(&mut self, ctx: &mut Context<'_>, w: bool) -> HandlerResult {
        self.0.push(format!(
            "writable:{w}:{}",
            ctx.channel().pending_outbound_bytes()
        ));
        ctx.fire_channel_writability_changed(w);
        Ok(())
    }
    fn user_event(&mut self, ctx: &mut Context<'_>, event: UserEvent) -> HandlerResult {
        let text = match &event {
            UserEvent::Idle(s) => format!("event:{s:?}"),
            UserEvent::TlsHandshakeComplete(_) => "event:tls_handshake_complete".to_owned(),
            UserEvent::Custom(_) => "event:custom".to_owned(),
            UserEvent::InputShutdown => "event:input_shutdown".to_owned(),
            _ => "event:other".to_owned(),
        };
        self.0.push(text);
        ctx.fire_user_event(event);
        Ok(())
    }
    fn exception_caught(&mut self, ctx: &mut Context<'_>, error: ChannelError) -> HandlerResult {
        self.0.push(format!("exception:{error}"));
        ctx.fire_exception_caught(error);
        Ok(())
    }
}

/// Reads from a blocking stream until `n` bytes arrived.
pub fn read_exact_timeout(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; n];
    stream.read_exact(&mut buf).unwrap();
    buf
}

/// Sends `msg` and expects it echoed back.
pub fn round_trip(stream: &mut TcpStream, msg: &[u8]) {
    stream.write_all(msg).unwrap();
    assert_eq!(read_exact_timeout(stream, msg.len()), msg);
}

/// Reads until EOF (or error); returns the bytes read.
pub fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}
