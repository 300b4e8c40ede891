//! One application, two transports: a small key-value service served over TCP (messages
//! framed with a 4-byte big-endian length) and over UDP (one datagram per message) by ONE
//! handler type. UDP peers are tracked as connections, so the handler cannot tell the
//! difference; the acceptor only picks the framer.
//!
//! Requests: `SET key value`, `GET key`, `DEL key`; responses: `OK`, `VALUE value`,
//! `NOT_FOUND`, `ERR reason`. The store is shared by every connection of both transports.
//!
//! ```text
//! cargo run -p netloom-channel --example two_transports -- 127.0.0.1:7000
//! ```
//! prints `tcp ADDR` and `udp ADDR`, serves until standard input is closed, then stops
//! both managers and prints what they served.
use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use netloom_channel::tracking::{Acceptor, NewPeer, Registry, Verdict};
use netloom_channel::{Context, EventLoopGroup, Handler, HandlerResult, Msg};
use netloom_codec::Framer;

type Store = Arc<Mutex<HashMap<String, String>>>;

/// The application: one request in, one response out, whatever the transport.
struct KvApp {
    store: Store,
}

impl Handler for KvApp {
    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let request = msg
            .downcast::<Bytes>()
            .map_err(|m| format!("expected bytes, got {}", m.type_name()))?;
        let response = self.answer(&request);
        ctx.write(Bytes::from(response));
        Ok(())
    }

    fn channel_read_complete(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.flush();
        Ok(())
    }
}

impl KvApp {
    fn answer(&self, request: &[u8]) -> String {
        let Ok(text) = std::str::from_utf8(request) else {
            return "ERR request is not UTF-8".into();
        };
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let mut words = text.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("SET"), Some(k), Some(v)) => {
                store.insert(k.to_owned(), v.to_owned());
                "OK".into()
            }
            (Some("GET"), Some(k), None) => match store.get(k) {
                Some(v) => format!("VALUE {v}"),
                None => "NOT_FOUND".into(),
            },
            (Some("DEL"), Some(k), None) => match store.remove(k) {
                Some(_) => "OK".into(),
                None => "NOT_FOUND".into(),
            },
            _ => format!("ERR unknown request {text:?}"),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()?;
    let group = EventLoopGroup::new(2, "kv")?;
    let registry = Registry::new(&group);
    let store = Store::default();
    let acceptor: Arc<dyn Acceptor> = Arc::new(move |peer: &mut NewPeer<'_>| {
        if peer.protocol() == "tcp" {
            // A byte stream needs framing; a datagram already is one message.
            match Framer::from_name("length-field:u32be,max=64k") {
                Ok(f) => peer.set_framer(f),
                Err(e) => return Verdict::reject(e.to_string()),
            }
        }
        Verdict::app(KvApp {
            store: store.clone(),
        })
    });
    let tcp = registry.manager("tcp", listen)?;
    let tcp_addr = tcp.start(Some(acceptor.clone()), None).sync()?;
    // The same port for UDP when it is free.
    let same_port = registry.manager("udp", tcp_addr)?;
    let (udp, udp_addr) = match same_port.start(Some(acceptor.clone()), None).sync() {
        Ok(a) => (same_port, a),
        Err(_) => {
            let any_port = registry.manager("udp", SocketAddr::new(tcp_addr.ip(), 0))?;
            let a = any_port.start(Some(acceptor), None).sync()?;
            (any_port, a)
        }
    };
    println!("tcp {tcp_addr}");
    println!("udp {udp_addr}");
    // Serve until standard input is closed.
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    println!(
        "stopping: {} tcp connections, {} udp peers",
        tcp.connections(),
        udp.connections()
    );
    registry.stop_all().sync()?;
    Ok(())
}
