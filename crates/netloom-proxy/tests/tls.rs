//! TLS on both sides of a proxy: one proxy terminates TLS (`tls`), another originates it
//! (`upstream_tls`, verifying by default); toxics act on the plaintext in between.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::echo;
use netloom_proxy::{ProxyServer, ServerOptions, ToxicSpec};
use serde_json::json;

/// A self-signed certificate for `localhost` and its key, as PEM files in `dir`.
fn self_signed(dir: &tempfile::TempDir) -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let path = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();
    (path(cert), path(key))
}

/// Proxy `tls-in` on `s`: terminates TLS with `cert`/`key`, plaintext to an echo server.
fn tls_echo(s: &ProxyServer, cert: &str, key: &str) -> serde_json::Value {
    s.create(
        &json!({"name": "tls-in", "listen": "127.0.0.1:0", "upstream": echo().to_string(),
        "tls": {"cert": cert, "key": key}}),
    )
    .unwrap()
}

fn server() -> ProxyServer {
    ProxyServer::new(ServerOptions {
        seed: 1,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn terminate_and_originate_tls_with_verification() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(&dir);
    let (cert, key) = (cert.as_str(), key.as_str());

    let s = server();
    // TLS in, plaintext to the echo server.
    let inner = tls_echo(&s, cert, key);
    let inner_addr = inner["listen"].as_str().unwrap().to_owned();
    assert_eq!(inner["tls"]["cert"], cert);
    // Plaintext in, TLS to the inner proxy, verified against the self-signed certificate.
    let outer = s
        .create(
            &json!({"name": "tls-out", "listen": "127.0.0.1:0", "upstream": inner_addr,
            "upstream_tls": {"ca": cert, "server_name": "localhost"}}),
        )
        .unwrap();
    s.add_toxic("tls-in", &ToxicSpec::latency(100, 0).to_json())
        .unwrap();
    let mut c = TcpStream::connect(outer["listen"].as_str().unwrap()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t = Instant::now();
    c.write_all(b"secret").unwrap();
    let mut buf = [0u8; 6];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"secret");
    assert!(
        t.elapsed() >= Duration::from_millis(100),
        "the toxic acted on plaintext"
    );

    // A name the certificate does not carry: verification fails, nothing comes back.
    let wrong = s
        .create(
            &json!({"name": "tls-wrong", "listen": "127.0.0.1:0", "upstream": inner_addr,
            "upstream_tls": {"ca": cert, "server_name": "example.org"}}),
        )
        .unwrap();
    let mut c = TcpStream::connect(wrong["listen"].as_str().unwrap()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = c.write_all(b"secret");
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    assert!(got.is_empty(), "no data past a failed verification");

    // A certificate file that does not exist is a 400 naming it.
    let e = s
        .create(&json!({"name": "bad", "upstream": "127.0.0.1:9",
            "tls": {"cert": "/nonexistent.pem", "key": key}}))
        .unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(e.to_string().contains("/nonexistent.pem"));
}

/// Originating TLS verifies by default: with no `ca`, the system roots (which do not hold a
/// self-signed certificate) refuse the upstream; with the `ca` and no `server_name`, the
/// name verified (and sent as SNI) is the upstream's host.
#[test]
fn upstream_tls_verifies_with_the_system_roots_and_the_upstream_host_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(&dir);
    let (cert, key) = (cert.as_str(), key.as_str());
    let s = server();
    let inner = tls_echo(&s, cert, key);
    let port = inner["listen"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let round_trip = |proxy: &serde_json::Value| {
        let mut c = TcpStream::connect(proxy["listen"].as_str().unwrap()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = c.write_all(b"secret");
        let mut got = Vec::new();
        let mut buf = [0u8; 6];
        if c.read_exact(&mut buf).is_ok() {
            got.extend_from_slice(&buf);
        }
        got
    };
    // No `ca`: the system roots. The self-signed upstream is refused.
    let system = s
        .create(&json!({"name": "system-roots", "listen": "127.0.0.1:0",
            "upstream": format!("localhost:{port}"), "upstream_tls": {}}))
        .unwrap();
    assert!(
        round_trip(&system).is_empty(),
        "verified against the system roots"
    );
    // The `ca`, no `server_name`: `localhost` from the upstream address is the name.
    let by_host = s
        .create(&json!({"name": "by-host", "listen": "127.0.0.1:0",
            "upstream": format!("localhost:{port}"), "upstream_tls": {"ca": cert}}))
        .unwrap();
    assert_eq!(round_trip(&by_host), b"secret");
    // The same `ca` with the upstream as an address: the certificate's name does not match.
    let by_addr = s
        .create(&json!({"name": "by-addr", "listen": "127.0.0.1:0",
            "upstream": format!("127.0.0.1:{port}"), "upstream_tls": {"ca": cert}}))
        .unwrap();
    assert!(
        round_trip(&by_addr).is_empty(),
        "127.0.0.1 is not the certificate's name"
    );
}
