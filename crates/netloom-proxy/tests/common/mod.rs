//! Helpers shared by the proxy tests: an API server on a loopback port, upstream servers,
//! and a raw HTTP/1.1 client.
#![allow(dead_code)]
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use netloom_proxy::{ProxyServer, ServerOptions};

/// Serves the HTTP API over `server` on 127.0.0.1:<free port> from a background thread.
pub fn api(server: ProxyServer) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            netloom_proxy::api::serve(server, l).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// A server with `seed` and its API.
pub fn start(seed: u64, strict: bool) -> (ProxyServer, SocketAddr) {
    let s = ProxyServer::new(ServerOptions {
        seed,
        strict,
        ..Default::default()
    })
    .unwrap();
    let a = api(s.clone());
    (s, a)
}

/// An echo server; returns its address.
pub fn echo() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut s);
            });
        }
    });
    a
}

/// A server that sends `data` to each client and closes.
pub fn sender(data: Vec<u8>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let d = data.clone();
            thread::spawn(move || {
                let _ = s.write_all(&d);
            });
        }
    });
    a
}

/// One HTTP request; returns (status, body).
pub fn http(api: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    http_ua(api, method, path, body, "netloom-test")
}

/// One HTTP request with a User-Agent; returns (status, body).
pub fn http_ua(
    api: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    ua: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(api).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: {ua}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(req.as_bytes());
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |x| x.1).to_owned();
    (status, body)
}

/// Parses a JSON body.
pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}
