//! Toxiproxy's own Rust client (`toxiproxy_rust` from crates.io), unmodified, against
//! netloom's server.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{echo, start};
use toxiproxy_rust::client::Client;
use toxiproxy_rust::proxy::ProxyPack;

fn rtt(addr: &str) -> Duration {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t = Instant::now();
    c.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    t.elapsed()
}

#[test]
fn toxiproxy_rust_drives_netloom() {
    let (_s, api) = start(1, false);
    let client = Client::new(api);
    assert!(client.is_running());
    assert!(client.version().unwrap().contains("version"));
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = free.local_addr().unwrap().to_string();
    drop(free);
    let up = echo().to_string();
    let proxies = client
        .populate(vec![ProxyPack::new(
            "echo".into(),
            listen.clone(),
            up.clone(),
        )])
        .unwrap();
    assert_eq!(proxies.len(), 1);
    assert_eq!(proxies[0].proxy_pack.listen, listen);
    let all = client.all().unwrap();
    assert!(all.contains_key("echo"));
    assert!(all["echo"].proxy_pack.enabled);

    let proxy = client.find_and_reset_proxy("echo").unwrap();
    assert!(rtt(&listen) < Duration::from_millis(200));
    proxy
        .with_latency("downstream".into(), 200, 0, 1.0)
        .apply(|| {
            assert!(rtt(&listen) >= Duration::from_millis(200));
        })
        .unwrap();
    assert!(
        proxy.toxics().unwrap().is_empty(),
        "apply removed its toxics"
    );
    assert!(rtt(&listen) < Duration::from_millis(200));

    proxy
        .with_bandwidth("upstream".into(), 32, 1.0)
        .with_slicer("downstream".into(), 2, 1, 0, 1.0)
        .with_limit_data("upstream".into(), 1 << 20, 1.0)
        .with_slow_close("downstream".into(), 10, 1.0)
        .with_timeout("upstream".into(), 60_000, 0.0);
    let toxics = proxy.toxics().unwrap();
    assert_eq!(toxics.len(), 5);
    let slicer = toxics
        .iter()
        .find(|t| t.name == "slicer_downstream")
        .unwrap();
    assert_eq!(slicer.attributes["average_size"], 2);
    assert!(
        rtt(&listen) < Duration::from_secs(2),
        "the toxicity-0 timeout did not act"
    );
    proxy.delete_all_toxics().unwrap();

    proxy
        .with_down(|| {
            assert!(
                TcpStream::connect(&listen).is_err(),
                "down refuses connections"
            );
        })
        .unwrap();
    assert!(rtt(&listen) < Duration::from_millis(200));
    client.reset().unwrap();
    proxy.delete().unwrap();
    assert!(client.find_proxy("echo").is_err());
}
