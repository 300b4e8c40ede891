//! Helpers shared by the integration tests.
#![allow(dead_code)]
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netloom_channel::{
    ChannelError, Context, EchoHandler, EventLoopGroup, Handler, HandlerResult, Msg,
    ServerBootstrap, UserEvent,
};

/// Starts an `EchoHandler` server on `group` at `addr` (port 0 allowed); returns where it
/// listens.
pub fn echo_server(group: &EventLoopGroup, addr: &str) -> SocketAddr {
    let server = ServerBootstrap::new(group, group)
        .child_handler(|p| {
            p.add_last("echo", EchoHandler)?;
            Ok(())
        })
        .bind(addr.parse().unwrap())
        .sync()
        .unwrap();
    server.local_addr().inet().unwrap()
}

/// Waits until `cond` holds (polling), failing after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
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
