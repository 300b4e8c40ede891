//! Helpers shared by the UDP and tracking tests.
#![allow(dead_code)]
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use netloom_channel::{ChannelError, Context, Handler, HandlerResult, Msg};

/// Records every callback as a string and echoes what it reads.
#[derive(Clone, Default)]
pub struct Recorder {
    pub events: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
    fn push(&self, e: String) {
        self.events.lock().unwrap().push(e);
    }
    pub fn count(&self, prefix: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e.starts_with(prefix))
            .count()
    }
}

impl Handler for Recorder {
    fn channel_registered(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.push("registered".into());
        ctx.fire_channel_registered();
        Ok(())
    }
    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.push(format!(
            "active {}",
            ctx.channel()
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default()
        ));
        ctx.fire_channel_active();
        Ok(())
    }
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let b = msg.downcast_ref::<Bytes>().cloned().unwrap_or_default();
        self.push(format!(
            "read {}",
            String::from_utf8_lossy(&b[..b.len().min(32)])
        ));
        ctx.write(msg);
        Ok(())
    }
    fn channel_read_complete(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.flush();
        Ok(())
    }
    fn channel_inactive(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.push(format!(
            "inactive {}",
            ctx.channel()
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default()
        ));
        ctx.fire_channel_inactive();
        Ok(())
    }
    fn channel_unregistered(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.push("unregistered".into());
        ctx.fire_channel_unregistered();
        Ok(())
    }
    fn user_event(
        &mut self,
        ctx: &mut Context<'_>,
        event: netloom_channel::UserEvent,
    ) -> HandlerResult {
        self.push(format!("user {event:?}"));
        ctx.fire_user_event(event);
        Ok(())
    }
    fn exception_caught(&mut self, _ctx: &mut Context<'_>, error: ChannelError) -> HandlerResult {
        self.push(format!("exception {error}"));
        Ok(())
    }
}

/// A client socket on loopback with a receive timeout.
pub fn client(server: SocketAddr) -> UdpSocket {
    let bind: SocketAddr = if server.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    }
    .parse()
    .unwrap();
    let s = UdpSocket::bind(bind).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s
}

/// Sends `data` and returns the echo.
pub fn round_trip(s: &UdpSocket, server: SocketAddr, data: &[u8]) -> Vec<u8> {
    s.send_to(data, server).unwrap();
    let mut buf = vec![0u8; 70_000];
    let (n, from) = s.recv_from(&mut buf).expect("echo");
    assert_eq!(from, server);
    buf.truncate(n);
    buf
}

/// Polls `cond` for up to 5 s (netloom_testnet::wait_until with the UDP tests' limit).
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    netloom_testnet::wait_until(what, Duration::from_secs(5), cond);
}

/// Records what it reads as `got TEXT`, without answering (a client's end).
pub struct Sink(pub Recorder);

impl Handler for Sink {
    fn channel_read(&mut self, _ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let b = msg.downcast::<Bytes>().map_err(|_| "not bytes")?;
        self.0.push(format!("got {}", String::from_utf8_lossy(&b)));
        Ok(())
    }
}
